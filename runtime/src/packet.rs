//! Zero-copy packet views with the NFs' header acceptance rules, field rewrites and
//! checksum recomputation.
//!
//! The acceptance rules are those of `nf-semantics.md` §1.4, reproduced byte for byte
//! rather than delegated to a general parser: the NFs accept frames a strict parser
//! would reject (any IP version nibble, bad checksums, fragments), and equivalence
//! with the C NFs depends on accepting exactly the same frames.
//!
//! Every accessor works on any byte slice: missing bytes read as zero or as "header
//! absent", and nothing here panics on packet data.

use std::fmt;
use std::str::FromStr;

/// Length of the Ethernet header; the NFs always take the first 14 bytes.
pub const ETH_LEN: usize = 14;
/// Length of an IPv4 header without options.
pub const IPV4_MIN_LEN: usize = 20;
/// IP protocol number of TCP.
pub const PROTO_TCP: u8 = 6;
/// IP protocol number of UDP.
pub const PROTO_UDP: u8 = 17;
/// The EtherType of IPv4.
pub const ETHERTYPE_IPV4: u16 = 0x0800;

/// Which header parser the NF uses (`nf-semantics.md` §1.4 and quirk Q1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ParseMode {
    /// Vigor's rules (the default): IHL ≥ 5, `total_length` ≤ bytes after Ethernet, and
    /// L4 starts after the IP options (14 + 4·IHL).
    #[default]
    Strict,
    /// Maestro's rules, to replay Maestro's results: no IHL or length check, and L4 is
    /// always at offset 34 whatever the IHL.
    MaestroCompat,
}

impl fmt::Display for ParseMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ParseMode::Strict => "strict",
            ParseMode::MaestroCompat => "maestro-compat",
        })
    }
}

impl FromStr for ParseMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "strict" => Ok(ParseMode::Strict),
            "maestro-compat" | "maestro_compat" => Ok(ParseMode::MaestroCompat),
            _ => Err(format!(
                "unknown parse mode `{s}`: expected `strict` (Vigor's rules) or `maestro-compat`"
            )),
        }
    }
}

/// Where the headers the NF can parse sit in a frame (byte offsets into the frame).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Layout {
    /// `Some(14)` iff `parse ipv4` succeeds.
    pub ipv4: Option<usize>,
    /// `Some(offset)` iff `parse l4` succeeds: 14 + 4·IHL in strict mode, 34 in
    /// maestro-compat mode.
    pub l4: Option<usize>,
    /// IPv4 was parsed and its `total_length` is at most the bytes after the Ethernet
    /// header (Vigor's length check). Always true for a parsed IPv4 header in strict mode;
    /// in maestro-compat mode it tells whether Vigor would have accepted the length.
    pub ip_total_len_ok: bool,
}

/// Reads a big-endian u16 at `off`; bytes past the end read as zero.
fn be16(b: &[u8], off: usize) -> u16 {
    let hi = b.get(off).copied().unwrap_or(0);
    let lo = b.get(off.wrapping_add(1)).copied().unwrap_or(0);
    u16::from_be_bytes([hi, lo])
}

/// Copies `N` bytes at `off`; bytes past the end read as zero.
fn bytes_at<const N: usize>(b: &[u8], off: usize) -> [u8; N] {
    let mut out = [0u8; N];
    for (i, o) in out.iter_mut().enumerate() {
        *o = off
            .checked_add(i)
            .and_then(|j| b.get(j))
            .copied()
            .unwrap_or(0);
    }
    out
}

/// Writes `src` at `off` if it fits entirely; returns whether it was written.
fn put(frame: &mut [u8], off: usize, src: &[u8]) -> bool {
    match off
        .checked_add(src.len())
        .and_then(|end| frame.get_mut(off..end))
    {
        Some(dst) => {
            dst.copy_from_slice(src);
            true
        }
        None => false,
    }
}

/// Applies the NF acceptance rules (`nf-semantics.md` §1.4) to a frame.
///
/// - IPv4 iff EtherType is 0x0800 and at least 20 bytes follow the Ethernet header; in
///   strict mode also IHL ≥ 5 and `total_length` ≤ the bytes after Ethernet. The version
///   nibble is never checked (no NF checks it).
/// - L4 iff IPv4, protocol 6 or 17, and 4 bytes present at the L4 offset (14 + 4·IHL in
///   strict mode, 34 in maestro-compat mode).
pub fn layout(frame: &[u8], mode: ParseMode) -> Layout {
    let mut l = Layout::default();
    if frame.len() < ETH_LEN + IPV4_MIN_LEN || be16(frame, 12) != ETHERTYPE_IPV4 {
        return l;
    }
    let after_eth = frame.len() - ETH_LEN;
    let ihl = usize::from(frame[ETH_LEN] & 0x0f);
    let total_len = usize::from(be16(frame, ETH_LEN + 2));
    let len_ok = total_len <= after_eth;
    let l4_off = match mode {
        ParseMode::Strict => {
            if ihl < 5 || !len_ok {
                return l;
            }
            ETH_LEN + 4 * ihl
        }
        ParseMode::MaestroCompat => ETH_LEN + IPV4_MIN_LEN,
    };
    l.ipv4 = Some(ETH_LEN);
    l.ip_total_len_ok = len_ok;
    let proto = frame[ETH_LEN + 9];
    if (proto == PROTO_TCP || proto == PROTO_UDP) && frame.len() >= l4_off + 4 {
        l.l4 = Some(l4_off);
    }
    l
}

/// A read-only view of a frame with the NF's parse results.
#[derive(Clone, Copy, Debug)]
pub struct PacketView<'a> {
    frame: &'a [u8],
    layout: Layout,
}

// The small getters are `#[inline]`: generated NFs call them from another crate on every
// packet, where a call costs more than the read.
impl<'a> PacketView<'a> {
    #[inline]
    pub fn new(frame: &'a [u8], mode: ParseMode) -> Self {
        PacketView {
            frame,
            layout: layout(frame, mode),
        }
    }

    #[inline]
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The frame length (`pkt.len`): Ethernet header included, FCS excluded.
    #[inline]
    pub fn len(&self) -> usize {
        self.frame.len()
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.frame.is_empty()
    }

    /// The whole frame.
    #[inline]
    pub fn bytes(&self) -> &'a [u8] {
        self.frame
    }

    /// Destination MAC; missing bytes of a short frame read as zero.
    #[inline]
    pub fn eth_dst(&self) -> [u8; 6] {
        bytes_at(self.frame, 0)
    }

    /// Source MAC; missing bytes of a short frame read as zero.
    #[inline]
    pub fn eth_src(&self) -> [u8; 6] {
        bytes_at(self.frame, 6)
    }

    /// EtherType; missing bytes of a short frame read as zero.
    #[inline]
    pub fn eth_type(&self) -> u16 {
        be16(self.frame, 12)
    }

    /// The IPv4 header, if `parse ipv4` succeeds.
    #[inline]
    pub fn ipv4(&self) -> Option<Ipv4View<'a>> {
        let off = self.layout.ipv4?;
        let hdr = self.frame.get(off..)?;
        (hdr.len() >= IPV4_MIN_LEN).then_some(Ipv4View { hdr })
    }

    /// `(sport, dport)`, if `parse l4` succeeds.
    #[inline]
    pub fn l4_ports(&self) -> Option<(u16, u16)> {
        let off = self.layout.l4?;
        let p = self.frame.get(off..off.checked_add(4)?)?;
        Some((be16(p, 0), be16(p, 2)))
    }
}

/// The fixed 20-byte part of an IPv4 header (options are not interpreted).
#[derive(Clone, Copy, Debug)]
pub struct Ipv4View<'a> {
    /// From the start of the IPv4 header to the end of the frame (at least 20 bytes).
    hdr: &'a [u8],
}

impl<'a> Ipv4View<'a> {
    /// The header and everything after it in the frame.
    #[inline]
    pub fn bytes(&self) -> &'a [u8] {
        self.hdr
    }

    /// The version nibble (never checked by the NFs).
    #[inline]
    pub fn version(&self) -> u8 {
        bytes_at::<1>(self.hdr, 0)[0] >> 4
    }

    #[inline]
    pub fn ihl(&self) -> u8 {
        bytes_at::<1>(self.hdr, 0)[0] & 0x0f
    }

    #[inline]
    pub fn tos(&self) -> u8 {
        bytes_at::<1>(self.hdr, 1)[0]
    }

    #[inline]
    pub fn total_len(&self) -> u16 {
        be16(self.hdr, 2)
    }

    #[inline]
    pub fn id(&self) -> u16 {
        be16(self.hdr, 4)
    }

    /// Flags and fragment offset, as the 16-bit word on the wire.
    #[inline]
    pub fn frag(&self) -> u16 {
        be16(self.hdr, 6)
    }

    #[inline]
    pub fn ttl(&self) -> u8 {
        bytes_at::<1>(self.hdr, 8)[0]
    }

    #[inline]
    pub fn proto(&self) -> u8 {
        bytes_at::<1>(self.hdr, 9)[0]
    }

    #[inline]
    pub fn checksum(&self) -> u16 {
        be16(self.hdr, 10)
    }

    #[inline]
    pub fn src(&self) -> [u8; 4] {
        bytes_at(self.hdr, 12)
    }

    /// Source address as a number (`10.0.0.1` is `0x0a000001`).
    #[inline]
    pub fn src_u32(&self) -> u32 {
        u32::from_be_bytes(self.src())
    }

    #[inline]
    pub fn dst(&self) -> [u8; 4] {
        bytes_at(self.hdr, 16)
    }

    /// Destination address as a number (`10.0.0.1` is `0x0a000001`).
    #[inline]
    pub fn dst_u32(&self) -> u32 {
        u32::from_be_bytes(self.dst())
    }
}

/// A writable view: the NF's header writes, then [`PacketMut::finish`] fixes the
/// checksums the writes invalidated (docs/nf-language.md "Checksums").
#[derive(Debug)]
pub struct PacketMut<'a> {
    frame: &'a mut [u8],
    layout: Layout,
    /// An IPv4 header field was written: the IPv4 header checksum must be recomputed.
    l3_dirty: bool,
    /// An IPv4 address or an L4 port was written: the TCP/UDP checksum must be recomputed.
    l4_dirty: bool,
}

impl<'a> PacketMut<'a> {
    pub fn new(frame: &'a mut [u8], mode: ParseMode) -> Self {
        let layout = layout(frame, mode);
        PacketMut {
            frame,
            layout,
            l3_dirty: false,
            l4_dirty: false,
        }
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// A read-only view of the current bytes (writes included, checksums not yet fixed).
    pub fn view(&self) -> PacketView<'_> {
        PacketView {
            frame: self.frame,
            layout: self.layout,
        }
    }

    /// Sets the destination MAC; ignored on frames shorter than 14 bytes.
    pub fn set_eth_dst(&mut self, m: [u8; 6]) {
        if self.frame.len() >= ETH_LEN {
            put(self.frame, 0, &m);
        }
    }

    /// Sets the source MAC; ignored on frames shorter than 14 bytes.
    pub fn set_eth_src(&mut self, m: [u8; 6]) {
        if self.frame.len() >= ETH_LEN {
            put(self.frame, 6, &m);
        }
    }

    /// Writes `src` at `off` inside the IPv4 header; false if IPv4 was not parsed.
    fn write_ip(&mut self, off: usize, src: &[u8], address: bool) -> bool {
        let Some(ip) = self.layout.ipv4 else {
            return false;
        };
        if !put(self.frame, ip + off, src) {
            return false;
        }
        self.l3_dirty = true;
        self.l4_dirty |= address;
        true
    }

    /// Sets the source address (`0x0a000001` is `10.0.0.1`); false if not IPv4.
    pub fn set_ip_src(&mut self, a: u32) -> bool {
        self.write_ip(12, &a.to_be_bytes(), true)
    }

    /// Sets the destination address; false if not IPv4.
    pub fn set_ip_dst(&mut self, a: u32) -> bool {
        self.write_ip(16, &a.to_be_bytes(), true)
    }

    pub fn set_ip_ttl(&mut self, v: u8) -> bool {
        self.write_ip(8, &[v], false)
    }

    pub fn set_ip_tos(&mut self, v: u8) -> bool {
        self.write_ip(1, &[v], false)
    }

    fn write_port(&mut self, off: usize, p: u16) -> bool {
        let Some(l4) = self.layout.l4 else {
            return false;
        };
        if !put(self.frame, l4 + off, &p.to_be_bytes()) {
            return false;
        }
        self.l4_dirty = true;
        true
    }

    /// Sets the TCP/UDP source port; false if `parse l4` fails.
    pub fn set_l4_sport(&mut self, p: u16) -> bool {
        self.write_port(0, p)
    }

    /// Sets the TCP/UDP destination port; false if `parse l4` fails.
    pub fn set_l4_dport(&mut self, p: u16) -> bool {
        self.write_port(2, p)
    }

    /// Recomputes the checksums the writes invalidated: the L4 checksum when an address
    /// or port was written and the frame holds the whole L4 segment (a capture cut by its
    /// snap length keeps its old L4 checksum), then the IPv4 header checksum when any IPv4
    /// field was written. MAC writes change no checksum.
    pub fn finish(self) {
        let PacketMut {
            frame,
            layout,
            l3_dirty,
            l4_dirty,
        } = self;
        if l4_dirty {
            if let (Some(l4), Some(sum)) = (layout.l4, l4_checksum_ipv4(frame, &layout)) {
                if let Some(off) = l4_checksum_offset(frame) {
                    put(frame, l4 + off, &sum.to_be_bytes());
                }
            }
        }
        if l3_dirty {
            if let Some(ip) = layout.ipv4 {
                let len = ipv4_header_len_for_checksum(frame, ip);
                if let Some(hdr) = frame.get(ip..ip + len) {
                    let sum = ipv4_header_checksum(hdr);
                    put(frame, ip + 10, &sum.to_be_bytes());
                }
            }
        }
    }
}

/// The bytes the IPv4 header checksum covers: 4·IHL when IHL ≥ 5 and the options are in
/// the frame, else the fixed 20 bytes (only reachable in maestro-compat mode).
fn ipv4_header_len_for_checksum(frame: &[u8], ip: usize) -> usize {
    let ihl_len = 4 * usize::from(bytes_at::<1>(frame, ip)[0] & 0x0f);
    if ihl_len >= IPV4_MIN_LEN && ip + ihl_len <= frame.len() {
        ihl_len
    } else {
        IPV4_MIN_LEN
    }
}

/// Offset of the checksum field inside the L4 header of an IPv4 frame (TCP 16, UDP 6).
fn l4_checksum_offset(frame: &[u8]) -> Option<usize> {
    match bytes_at::<1>(frame, ETH_LEN + 9)[0] {
        PROTO_TCP => Some(16),
        PROTO_UDP => Some(6),
        _ => None,
    }
}

/// Adds big-endian 16-bit words of `data` to `acc` (an odd last byte is padded with zero).
fn sum_words(mut acc: u64, data: &[u8]) -> u64 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        acc += u64::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        acc += u64::from(u16::from_be_bytes([*last, 0]));
    }
    acc
}

/// Folds a one's-complement sum to 16 bits.
fn fold(mut acc: u64) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// The IPv4 header checksum of `header` (the IPv4 header, options included), counting
/// its checksum field (bytes 10..12) as zero, so it can both compute and verify.
pub fn ipv4_header_checksum(header: &[u8]) -> u16 {
    let mut acc = 0;
    if header.len() >= 12 {
        acc = sum_words(acc, &header[..10]);
        acc = sum_words(acc, &header[12..]);
    } else {
        acc = sum_words(acc, header.get(..10).unwrap_or(header));
    }
    !fold(acc)
}

/// The TCP/UDP checksum DPDK's `rte_ipv4_udptcp_cksum` would write: the pseudo-header
/// plus `total_length - 4·IHL` bytes from the L4 offset, counting the checksum field as
/// zero; a computed 0 becomes 0xFFFF (for UDP and TCP alike).
///
/// `None` when `parse l4` failed, when `total_length < 4·IHL`, when the frame does not
/// hold the whole segment (a snap-length cut), or when the segment is too short to hold
/// its checksum field.
pub fn l4_checksum_ipv4(frame: &[u8], layout: &Layout) -> Option<u16> {
    let ip = layout.ipv4?;
    let l4 = layout.l4?;
    let csum_off = l4_checksum_offset(frame)?;
    let ihl_len = 4 * usize::from(*frame.get(ip)? & 0x0f);
    let total_len = usize::from(be16(frame, ip + 2));
    let l4_len = total_len.checked_sub(ihl_len)?;
    let segment = frame.get(l4..l4.checked_add(l4_len)?)?;
    if l4_len < csum_off + 2 {
        return None;
    }
    let hdr = frame.get(ip..ip + IPV4_MIN_LEN)?;
    let mut acc = sum_words(0, &hdr[12..20]);
    acc += u64::from(hdr[9]);
    acc += l4_len as u64;
    acc = sum_words(acc, &segment[..csum_off]);
    acc = sum_words(acc, &segment[csum_off + 2..]);
    let sum = !fold(acc);
    Some(if sum == 0 { 0xffff } else { sum })
}
