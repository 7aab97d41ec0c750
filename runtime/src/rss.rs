//! Receive Side Scaling: the Toeplitz hash and the redirection table (RETA), exactly as
//! NICs compute them, so that the solver, the generated NFs and the tests agree with the
//! hardware bit for bit (`shared/spec/rss.md`).
//!
//! Conventions (all checked against the Microsoft / Intel 82599 vectors in the tests):
//! - **Bits.** Key bit 0 is the most significant bit of key byte 0; input bit 0 is the
//!   most significant bit of the first input byte. For every input bit `i` that is 1 the
//!   hash XORs in the 32-bit key window that starts at key bit `i` ([`key_window`]).
//! - **Input.** The selected fields in network byte order, source before destination:
//!   IPv4 `src | dst [| sport | dport]` (8 or 12 bytes), IPv6 the same with 16-byte
//!   addresses (32 or 36 bytes). See [`HashType`] and [`HashInput`].
//! - **Keys** may have any length of at least 4 bytes; an input of `n` bytes needs
//!   `n + 4` key bytes (40-byte 82599/mlx5 keys and 52-byte i40e/ice keys both cover
//!   IPv6 with ports). A 52-byte key hashes these inputs like its 40-byte prefix.
//! - **RETA.** The queue of a packet is `reta[hash & (reta_size - 1)]`: NICs index the
//!   table with the *low* bits of the hash ([`Reta::index`]). Sizes are powers of two
//!   (128 on 82599 and ice VFs, 512 on i40e/mlx5, 2048 on ice PFs); read them from the
//!   device, never assume one.
//! - **DPDK.** [`softrss`] reproduces `rte_softrss` (host-order 32-bit words, the tuple
//!   struct's third word is `sport << 16 | dport`) and [`softrss_be`] reproduces
//!   `rte_softrss_be` (words as a little-endian CPU reads network-order bytes, key first
//!   converted by [`convert_rss_key`]), so code ported from DPDK can be checked against
//!   the byte-oriented hash here.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Errors from building a hasher or a RETA; each says what was wrong and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RssError {
    #[error("RSS key is {len} bytes; a Toeplitz key needs at least 4 bytes (NICs use 40 or 52)")]
    KeyTooShort { len: usize },
    #[error(
        "RSS key of {key_len} bytes can hash at most {max} input bytes, but the input has \
         {input_len} bytes; use a key of at least {need} bytes (40 covers IPv6 with ports)",
        max = key_len.saturating_sub(4),
        need = input_len + 4
    )]
    InputTooLong { key_len: usize, input_len: usize },
    #[error("RSS key `{text}` is not hexadecimal: {why}; write it as 80 or 104 hex digits, optionally separated by `:`")]
    BadKeyHex { text: String, why: String },
    #[error(
        "RETA size {size} is not a power of two between 2 and 65536; NICs use 64, 128, 512 or 2048"
    )]
    BadRetaSize { size: usize },
    #[error("RETA with {queues} queues: need at least one queue")]
    NoQueues { queues: usize },
}

/// The 32-bit window of `key` that starts at key bit `bit` (MSB first), with bits past
/// the end of the key read as zero. This is the matrix column the Toeplitz hash XORs in
/// for input bit `bit`; the solver reasons about keys through it.
pub fn key_window(key: &[u8], bit: usize) -> u32 {
    let byte = bit / 8;
    let shift = bit % 8;
    let mut w: u64 = 0;
    for k in 0..5 {
        w = (w << 8) | u64::from(key.get(byte + k).copied().unwrap_or(0));
    }
    // w holds 40 bits starting at key bit 8*byte; keep the 32 starting at `shift`.
    ((w >> (8 - shift)) & 0xffff_ffff) as u32
}

/// The textbook bit-by-bit Toeplitz hash: the reference every faster form is tested
/// against. Input bits past what the key covers use zero windows (no error): callers that
/// care use [`Toeplitz::hash_bytes`], which checks lengths.
pub fn toeplitz_bitwise(key: &[u8], input: &[u8]) -> u32 {
    let mut h = 0u32;
    for (i, &b) in input.iter().enumerate() {
        for j in 0..8 {
            if b & (0x80 >> j) != 0 {
                h ^= key_window(key, i * 8 + j);
            }
        }
    }
    h
}

/// `rte_softrss`: the input as host-order 32-bit words (IPv4: `src`, `dst`,
/// `sport << 16 | dport`), the key as raw bytes.
pub fn softrss(words: &[u32], key: &[u8]) -> u32 {
    let mut h = 0u32;
    for (j, &w) in words.iter().enumerate() {
        for i in 0..32 {
            if w & (1u32 << (31 - i)) != 0 {
                h ^= key_window(key, j * 32 + i);
            }
        }
    }
    h
}

/// `rte_convert_rss_key`: the key as big-endian 32-bit words, the form
/// [`softrss_be`] needs. Trailing bytes that do not fill a word are dropped, as in DPDK.
pub fn convert_rss_key(key: &[u8]) -> Vec<u32> {
    key.chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// `rte_softrss_be` on a little-endian CPU: `words` are network-order bytes read as
/// little-endian `u32` (what `*(uint32_t *)` yields on x86), `key` comes from
/// [`convert_rss_key`]. Written platform-independently so the test means the same
/// everywhere.
pub fn softrss_be(words: &[u32], key: &[u32]) -> u32 {
    let mut h = 0u32;
    for (j, &w) in words.iter().enumerate() {
        let k0 = key.get(j).copied().unwrap_or(0);
        let k1 = key.get(j + 1).copied().unwrap_or(0);
        for i in 0..32 {
            // rte_cpu_to_be_32(1 << (31 - i)) on a little-endian CPU.
            if w & (1u32 << (31 - i)).swap_bytes() != 0 {
                h ^= (k0 << i) | ((u64::from(k1) >> (32 - i)) as u32);
            }
        }
    }
    h
}

/// Network-order bytes as a little-endian CPU reads them into 32-bit words: the input
/// [`softrss_be`] expects.
pub fn le_words(bytes: &[u8]) -> Vec<u32> {
    bytes
        .chunks(4)
        .map(|c| {
            let mut w = [0u8; 4];
            w[..c.len()].copy_from_slice(c);
            u32::from_le_bytes(w)
        })
        .collect()
}

/// A Toeplitz key with per-byte-position lookup tables: `tables[p][b]` is the hash of an
/// input whose only non-zero byte is `b` at position `p`. By linearity the hash of any
/// input is the XOR of one lookup per byte, 8x fewer steps than bit by bit.
#[derive(Clone)]
pub struct Toeplitz {
    key: Vec<u8>,
    tables: Vec<[u32; 256]>,
}

impl fmt::Debug for Toeplitz {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Toeplitz({})", hex(&self.key))
    }
}

impl Toeplitz {
    /// Precomputes the tables for `key` (at least 4 bytes).
    pub fn new(key: &[u8]) -> Result<Self, RssError> {
        if key.len() < 4 {
            return Err(RssError::KeyTooShort { len: key.len() });
        }
        let positions = key.len() - 4;
        let mut tables = Vec::with_capacity(positions);
        for p in 0..positions {
            let mut t = [0u32; 256];
            for b in 1..256usize {
                let low = b.trailing_zeros() as usize; // bit 7 - low of the byte, MSB first
                t[b] = t[b & (b - 1)] ^ key_window(key, p * 8 + (7 - low));
            }
            tables.push(t);
        }
        Ok(Toeplitz {
            key: key.to_vec(),
            tables,
        })
    }

    /// Parses a key written in hex (`6d5a56da...` or `6d:5a:56:...`).
    pub fn from_hex(text: &str) -> Result<Self, RssError> {
        Self::new(&parse_hex(text)?)
    }

    pub fn key(&self) -> &[u8] {
        &self.key
    }

    /// The longest input this key can hash (key length - 4).
    pub fn max_input(&self) -> usize {
        self.tables.len()
    }

    /// Hashes `input`, refusing inputs longer than the key covers.
    pub fn hash_bytes(&self, input: &[u8]) -> Result<u32, RssError> {
        if input.len() > self.tables.len() {
            return Err(RssError::InputTooLong {
                key_len: self.key.len(),
                input_len: input.len(),
            });
        }
        Ok(self.hash_unchecked(input))
    }

    /// Hashes a [`HashInput`]; its length was fixed by the hash type, so the check is
    /// the same as [`Toeplitz::hash_bytes`].
    pub fn hash(&self, input: &HashInput) -> Result<u32, RssError> {
        self.hash_bytes(input.as_bytes())
    }

    /// The hot path: bytes beyond [`Toeplitz::max_input`] are ignored, so callers check
    /// the length once (e.g. with [`Toeplitz::supports`]) instead of per packet.
    #[inline]
    pub fn hash_unchecked(&self, input: &[u8]) -> u32 {
        let mut h = 0u32;
        for (t, &b) in self.tables.iter().zip(input) {
            h ^= t[b as usize];
        }
        h
    }

    /// Whether this key is long enough for every input of `ty`.
    pub fn supports(&self, ty: HashType) -> bool {
        ty.input_len() <= self.tables.len()
    }
}

/// Which header fields the NIC hashes (one DPDK `rss_hf` / ethtool `rx-flow-hash` choice).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HashType {
    /// IPv4 addresses only (`src | dst`, 8 bytes): IPv4 "other", fragments, or TCP/UDP
    /// with ports deselected (`ethtool rx-flow-hash udp4 sd`).
    Ipv4,
    /// IPv4 TCP/UDP 4-tuple (`src | dst | sport | dport`, 12 bytes).
    Ipv4Ports,
    /// IPv6 addresses only (32 bytes).
    Ipv6,
    /// IPv6 TCP/UDP 4-tuple (36 bytes).
    Ipv6Ports,
}

impl HashType {
    /// Bytes of hash input.
    pub fn input_len(self) -> usize {
        match self {
            HashType::Ipv4 => 8,
            HashType::Ipv4Ports => 12,
            HashType::Ipv6 => 32,
            HashType::Ipv6Ports => 36,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            HashType::Ipv4 => "ipv4",
            HashType::Ipv4Ports => "ipv4-l4",
            HashType::Ipv6 => "ipv6",
            HashType::Ipv6Ports => "ipv6-l4",
        }
    }
}

/// The bytes the NIC feeds to Toeplitz for one packet, built without allocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HashInput {
    buf: [u8; 36],
    len: u8,
}

impl HashInput {
    /// IPv4 input; the ports are used only for [`HashType::Ipv4Ports`] (the IPv6 types
    /// are treated as their IPv4 counterparts).
    pub fn ipv4(src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16, ports: bool) -> Self {
        let mut buf = [0u8; 36];
        buf[0..4].copy_from_slice(&src.octets());
        buf[4..8].copy_from_slice(&dst.octets());
        let len = if ports {
            buf[8..10].copy_from_slice(&sport.to_be_bytes());
            buf[10..12].copy_from_slice(&dport.to_be_bytes());
            12
        } else {
            8
        };
        HashInput { buf, len }
    }

    /// IPv6 input; ports only when `ports`.
    pub fn ipv6(src: Ipv6Addr, dst: Ipv6Addr, sport: u16, dport: u16, ports: bool) -> Self {
        let mut buf = [0u8; 36];
        buf[0..16].copy_from_slice(&src.octets());
        buf[16..32].copy_from_slice(&dst.octets());
        let len = if ports {
            buf[32..34].copy_from_slice(&sport.to_be_bytes());
            buf[34..36].copy_from_slice(&dport.to_be_bytes());
            36
        } else {
            32
        };
        HashInput { buf, len }
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len as usize]
    }
}

/// A redirection table: `entries[hash & (len - 1)]` is the packet's queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reta {
    entries: Vec<u16>,
}

impl Reta {
    /// Checks that `size` is a power of two the hardware could have (2..=65536).
    pub fn check_size(size: usize) -> Result<(), RssError> {
        if size.is_power_of_two() && (2..=65536).contains(&size) {
            Ok(())
        } else {
            Err(RssError::BadRetaSize { size })
        }
    }

    /// A table from explicit entries (queue numbers).
    pub fn new(entries: Vec<u16>) -> Result<Self, RssError> {
        Self::check_size(entries.len())?;
        Ok(Reta { entries })
    }

    /// `entries[b] = b % queues`, the default of NIC drivers and DPDK apps (`equal N`).
    pub fn round_robin(size: usize, queues: u16) -> Result<Self, RssError> {
        Self::check_size(size)?;
        if queues == 0 {
            return Err(RssError::NoQueues { queues: 0 });
        }
        Ok(Reta {
            entries: (0..size).map(|b| (b % queues as usize) as u16).collect(),
        })
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn entries(&self) -> &[u16] {
        &self.entries
    }

    /// The RETA index of a hash: its low `log2(len)` bits, as the NIC takes them.
    #[inline]
    pub fn index(&self, hash: u32) -> usize {
        hash as usize & (self.entries.len() - 1)
    }

    /// The queue (core) a hash reaches.
    #[inline]
    pub fn queue(&self, hash: u32) -> u16 {
        self.entries[self.index(hash)]
    }
}

/// Parses hex with optional `:`, `-` or whitespace separators (ethtool and DPDK styles).
pub fn parse_hex(text: &str) -> Result<Vec<u8>, RssError> {
    let digits: Vec<char> = text
        .trim()
        .trim_start_matches("0x")
        .chars()
        .filter(|c| !matches!(c, ':' | '-' | ' ' | '_'))
        .collect();
    let bad = |why: String| RssError::BadKeyHex {
        text: text.to_string(),
        why,
    };
    if !digits.len().is_multiple_of(2) {
        return Err(bad(format!("odd number of digits ({})", digits.len())));
    }
    digits
        .chunks(2)
        .map(|p| {
            let hi = p[0].to_digit(16);
            let lo = p[1].to_digit(16);
            match (hi, lo) {
                (Some(h), Some(l)) => Ok((h * 16 + l) as u8),
                _ => Err(bad(format!("`{}{}` is not a hex byte", p[0], p[1]))),
            }
        })
        .collect()
}

/// Lower-case hex without separators.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The default key of Microsoft's RSS specification and the 82599 datasheet vectors.
pub const MICROSOFT_KEY: [u8; 40] = [
    0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0,
    0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c,
    0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
];
