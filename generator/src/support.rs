//! Helpers shared by every generated NF.
//!
//! The generator emits this file once per generated crate as `crate::support` (it is
//! `maestro_generator::SUPPORT_SOURCE`), so generated NFs depend only on
//! `maestro-runtime` and the code below is not repeated per NF. Every helper mirrors one
//! rule of the reference interpreter (`interpreter/src/lib.rs`) bit for bit.

use maestro_runtime::exec::{NeedsWrite, Refresh, RefreshLog};
use maestro_runtime::hash::StructHasher;
use maestro_runtime::packet::{PacketMut, PacketView, ParseMode};
use maestro_runtime::state::{CountMinSketch, DChain, SKETCH_ROWS};
use maestro_runtime::Observation;

/// What a path of `process` ended with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Drop,
    Flood,
    Forward(u16),
}

/// Header writes of the current path, applied when the packet leaves (dropped packets
/// are never copied). Reads of a written field see the written value.
#[derive(Clone, Copy, Debug, Default)]
pub struct Writes {
    pub any: bool,
    pub eth_dst: Option<[u8; 6]>,
    pub eth_src: Option<[u8; 6]>,
    pub ip_src: Option<u32>,
    pub ip_dst: Option<u32>,
    pub ip_ttl: Option<u8>,
    pub ip_tos: Option<u8>,
    pub sport: Option<u16>,
    pub dport: Option<u16>,
}

impl Writes {
    // The accessors are `#[inline]`: measured, the hint is what gets them and `apply`
    // folded into `process` (about 10 instructions a packet on fw).
    #[inline]
    pub fn set_eth_dst(&mut self, v: [u8; 6]) {
        self.any = true;
        self.eth_dst = Some(v);
    }
    #[inline]
    pub fn set_eth_src(&mut self, v: [u8; 6]) {
        self.any = true;
        self.eth_src = Some(v);
    }
    #[inline]
    pub fn set_ip_src(&mut self, v: u32) {
        self.any = true;
        self.ip_src = Some(v);
    }
    #[inline]
    pub fn set_ip_dst(&mut self, v: u32) {
        self.any = true;
        self.ip_dst = Some(v);
    }
    #[inline]
    pub fn set_ip_ttl(&mut self, v: u8) {
        self.any = true;
        self.ip_ttl = Some(v);
    }
    #[inline]
    pub fn set_ip_tos(&mut self, v: u8) {
        self.any = true;
        self.ip_tos = Some(v);
    }
    #[inline]
    pub fn set_l4_sport(&mut self, v: u16) {
        self.any = true;
        self.sport = Some(v);
    }
    #[inline]
    pub fn set_l4_dport(&mut self, v: u16) {
        self.any = true;
        self.dport = Some(v);
    }

    #[inline]
    pub fn eth_dst(&self, v: &PacketView) -> [u8; 6] {
        self.eth_dst.unwrap_or_else(|| v.eth_dst())
    }
    #[inline]
    pub fn eth_src(&self, v: &PacketView) -> [u8; 6] {
        self.eth_src.unwrap_or_else(|| v.eth_src())
    }
    #[inline]
    pub fn ip_src(&self, v: &PacketView) -> u32 {
        self.ip_src
            .unwrap_or_else(|| v.ipv4().map_or(0, |i| i.src_u32()))
    }
    #[inline]
    pub fn ip_dst(&self, v: &PacketView) -> u32 {
        self.ip_dst
            .unwrap_or_else(|| v.ipv4().map_or(0, |i| i.dst_u32()))
    }
    #[inline]
    pub fn ip_ttl(&self, v: &PacketView) -> u8 {
        self.ip_ttl
            .unwrap_or_else(|| v.ipv4().map_or(0, |i| i.ttl()))
    }
    #[inline]
    pub fn ip_tos(&self, v: &PacketView) -> u8 {
        self.ip_tos
            .unwrap_or_else(|| v.ipv4().map_or(0, |i| i.tos()))
    }
    #[inline]
    pub fn l4_sport(&self, v: &PacketView) -> u16 {
        self.sport
            .unwrap_or_else(|| v.l4_ports().map_or(0, |p| p.0))
    }
    #[inline]
    pub fn l4_dport(&self, v: &PacketView) -> u16 {
        self.dport
            .unwrap_or_else(|| v.l4_ports().map_or(0, |p| p.1))
    }

    /// The outgoing frame: the input with the writes applied and checksums fixed.
    ///
    /// Always inlined (with [`observe`]) into the generated `process`, where the compiler
    /// sees which fields the packet's path set: the checks for the others fold away and
    /// a MAC rewrite costs what the two copies cost. Writes that touch a checksum take
    /// the out-of-line `rewrite`.
    #[inline(always)]
    pub fn apply(&self, data: &[u8], mode: ParseMode) -> Vec<u8> {
        let mut bytes = data.to_vec();
        if !self.any {
            return bytes;
        }
        if self.ip_src.is_some()
            || self.ip_dst.is_some()
            || self.ip_ttl.is_some()
            || self.ip_tos.is_some()
            || self.sport.is_some()
            || self.dport.is_some()
        {
            self.rewrite(&mut bytes, mode);
            return bytes;
        }
        // Only MAC rewrites (the common forwarding case): no checksum is affected, so
        // skip parsing the frame again. Same guard as `PacketMut`: frames shorter than an
        // Ethernet header are left alone.
        if bytes.len() >= 14 {
            if let Some(m) = self.eth_dst {
                bytes[0..6].copy_from_slice(&m);
            }
            if let Some(m) = self.eth_src {
                bytes[6..12].copy_from_slice(&m);
            }
        }
        bytes
    }

    /// Applies writes that include an IPv4 or L4 field through the runtime's
    /// `PacketMut`, which recomputes the checksums they invalidate.
    #[inline(never)]
    fn rewrite(&self, bytes: &mut [u8], mode: ParseMode) {
        let mut p = PacketMut::new(bytes, mode);
        if let Some(m) = self.eth_dst {
            p.set_eth_dst(m);
        }
        if let Some(m) = self.eth_src {
            p.set_eth_src(m);
        }
        // The setters refuse only without an IPv4/L4 header, which the checker rules out
        // on every path that writes them.
        if let Some(a) = self.ip_src {
            p.set_ip_src(a);
        }
        if let Some(a) = self.ip_dst {
            p.set_ip_dst(a);
        }
        if let Some(v) = self.ip_ttl {
            p.set_ip_ttl(v);
        }
        if let Some(v) = self.ip_tos {
            p.set_ip_tos(v);
        }
        if let Some(v) = self.sport {
            p.set_l4_sport(v);
        }
        if let Some(v) = self.dport {
            p.set_l4_dport(v);
        }
        p.finish();
    }
}

/// Read-only packet fields (never written by an NF).
pub fn len(v: &PacketView) -> u16 {
    v.len().min(u16::MAX as usize) as u16
}
pub fn eth_type(v: &PacketView) -> u16 {
    v.eth_type()
}
pub fn ip_proto(v: &PacketView) -> u8 {
    v.ipv4().map_or(0, |i| i.proto())
}
pub fn ip_ihl(v: &PacketView) -> u8 {
    v.ipv4().map_or(0, |i| i.ihl())
}
pub fn ip_len(v: &PacketView) -> u16 {
    v.ipv4().map_or(0, |i| i.total_len())
}
pub fn ip_id(v: &PacketView) -> u16 {
    v.ipv4().map_or(0, |i| i.id())
}
pub fn ip_frag(v: &PacketView) -> u16 {
    v.ipv4().map_or(0, |i| i.frag())
}

/// Turns the path's action into the observation (inlined: see [`Writes::apply`]).
#[inline(always)]
pub fn observe(action: Action, data: &[u8], w: &Writes, mode: ParseMode) -> Observation {
    match action {
        Action::Drop => Observation::Drop,
        Action::Flood => Observation::Flood {
            bytes: w.apply(data, mode),
        },
        Action::Forward(port) => Observation::Forward {
            port,
            bytes: w.apply(data, mode),
        },
    }
}

/// A run-time fault of the NF (the packet is still processed with the documented
/// fallback). Same locations and messages as the interpreter's faults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fault {
    pub location: &'static str,
    pub message: String,
}

/// Counts faults and keeps the last one; messages are built only when a fault happens.
#[derive(Clone, Debug, Default)]
pub struct FaultLog {
    pub count: u64,
    pub last: Option<Fault>,
}

impl FaultLog {
    pub fn record(&mut self, location: &'static str, message: String) {
        self.count += 1;
        self.last = Some(Fault { location, message });
    }

    /// A state call through an index outside `0..limit`.
    #[cold]
    pub fn out_of_range(&mut self, location: &'static str, call: &str, index: u64, limit: u64) {
        self.record(
            location,
            format!("`{call}` with index {index}, outside 0..{limit}"),
        );
    }
}

/// `forward(port)`: the input port means drop (libVig); a port the NF lacks is a fault
/// and a drop.
pub fn forward(
    port: u64,
    in_port: u16,
    port_count: u16,
    faults: &mut FaultLog,
    location: &'static str,
) -> Action {
    if port == in_port as u64 {
        Action::Drop
    } else if port >= port_count as u64 {
        let n = port_count;
        faults.record(
            location,
            format!("forward to port {port}, but the NF has {n} ports (0..{n}); dropped"),
        );
        Action::Drop
    } else {
        Action::Forward(port as u16)
    }
}

/// `forward(port)` in the read-only pass: a forward to a missing port is a fault, which
/// only the write pass may record.
#[inline]
pub fn forward_read(port: u64, in_port: u16, port_count: u16) -> Result<Action, NeedsWrite> {
    if port == in_port as u64 {
        Ok(Action::Drop)
    } else if port >= port_count as u64 {
        Err(NeedsWrite)
    } else {
        Ok(Action::Forward(port as u16))
    }
}

/// A mutating state call reached by the read-only pass: the packet needs the write
/// lock. The arguments are taken so that the pass evaluates them as the write pass does.
#[cold]
pub fn write_attempt<T, A>(_args: A) -> Result<T, NeedsWrite> {
    Err(NeedsWrite)
}

/// `expire()` in the read-only pass: nothing would be freed at `now`, so it frees
/// nothing (count 0); otherwise the packet needs the write lock.
#[inline]
pub fn expire_read<T: Default>(would_expire: bool) -> Result<T, NeedsWrite> {
    if would_expire {
        Err(NeedsWrite)
    } else {
        Ok(T::default())
    }
}

/// `refresh(i)` in the read-only pass: an allocated index is logged (the writer applies
/// it before its own packet) and gives `true`; a free one gives `false`, as `refresh`.
#[inline]
pub fn log_refresh(
    log: &mut RefreshLog,
    object: u16,
    index: u32,
    now: u64,
    allocated: bool,
) -> Result<bool, NeedsWrite> {
    if !allocated {
        return Ok(false);
    }
    log.push(Refresh { object, index, now })?;
    Ok(true)
}

/// A sketch `refresh(k)` in the read-only pass, logged with the key's struct hash as the
/// index; nothing to log when none of its cells is present (the refresh is a no-op).
#[inline]
pub fn log_sketch_refresh(
    log: &mut RefreshLog,
    object: u16,
    sketch: &CountMinSketch,
    key_hash: u32,
    now: u64,
) -> Result<(), NeedsWrite> {
    let present = sketch
        .cells(key_hash)
        .into_iter()
        .enumerate()
        .any(|(r, c)| sketch.cell(r as u32, c).is_some());
    if present {
        log.push(Refresh {
            object,
            index: key_hash,
            now,
        })?;
    }
    Ok(())
}

/// Whether `sketch.expire(now)` would make a cell absent (a present cell stamped
/// before `now - ttl`). Scans the present cells: the sketch does not expose its rows'
/// oldest cells.
pub fn sketch_would_expire(sketch: &CountMinSketch, now: u64) -> bool {
    if sketch.present() == 0 {
        return false;
    }
    let threshold = now.saturating_sub(sketch.ttl());
    (0..SKETCH_ROWS as u32)
        .any(|r| (0..sketch.width()).any(|c| sketch.cell(r, c).is_some_and(|(_, t)| t < threshold)))
}

/// `dchain.expire()`: frees every index older than the TTL, oldest first; the count.
pub fn dchain_expire(d: &mut DChain, now: u64, ttl: u64) -> u32 {
    let threshold = now.saturating_sub(ttl);
    let mut n = 0u32;
    while d.expire_one(threshold).is_some() {
        n = n.saturating_add(1);
    }
    n
}

/// The bits of a MAC address as an integer (for casts).
pub fn mac_to_u64(m: [u8; 6]) -> u64 {
    m.iter().fold(0u64, |acc, &b| (acc << 8) | b as u64)
}

/// The low 48 bits of an integer as a MAC address (for casts).
pub fn u64_to_mac(x: u64) -> [u8; 6] {
    let b = x.to_be_bytes();
    [b[2], b[3], b[4], b[5], b[6], b[7]]
}

/// Feeds a value to the struct hash as the interpreter's `feed_hash` does: scalars as the
/// little-endian reading of their network-order bytes, a MAC one byte per word, 64-bit
/// values high half first, records field by field. `ip4` is a `u32` and `device` a
/// `u16` in generated code; they hash exactly like those integers.
pub trait FeedHash {
    fn feed(&self, h: &mut StructHasher);
}

impl FeedHash for u8 {
    fn feed(&self, h: &mut StructHasher) {
        h.word(*self as u32);
    }
}
impl FeedHash for u16 {
    fn feed(&self, h: &mut StructHasher) {
        h.word(self.swap_bytes() as u32);
    }
}
impl FeedHash for u32 {
    fn feed(&self, h: &mut StructHasher) {
        h.word(self.swap_bytes());
    }
}
impl FeedHash for u64 {
    fn feed(&self, h: &mut StructHasher) {
        h.word(((*self >> 32) as u32).swap_bytes());
        h.word((*self as u32).swap_bytes());
    }
}
impl FeedHash for i64 {
    fn feed(&self, h: &mut StructHasher) {
        (*self as u64).feed(h);
    }
}
impl FeedHash for bool {
    fn feed(&self, h: &mut StructHasher) {
        h.word(*self as u32);
    }
}
impl FeedHash for [u8; 6] {
    fn feed(&self, h: &mut StructHasher) {
        for b in self {
            h.word(*b as u32);
        }
    }
}

/// `hash(a, b, ...)` feeds its arguments in order: a tuple feeds its elements in order.
macro_rules! feed_tuple {
    ($($t:ident $i:tt),+) => {
        impl<$($t: FeedHash),+> FeedHash for ($($t,)+) {
            fn feed(&self, h: &mut StructHasher) {
                $(self.$i.feed(h);)+
            }
        }
    };
}
feed_tuple!(A 0);
feed_tuple!(A 0, B 1);
feed_tuple!(A 0, B 1, C 2);
feed_tuple!(A 0, B 1, C 2, D 3);
feed_tuple!(A 0, B 1, C 2, D 3, E 4);
feed_tuple!(A 0, B 1, C 2, D 3, E 4, F 5);

/// The struct hash of a value: what `hash(v)` gives and what sketches are fed with.
pub fn hash_of<T: FeedHash + ?Sized>(v: &T) -> u32 {
    let mut h = StructHasher::new();
    v.feed(&mut h);
    h.finish()
}

/// Integer operators whose NF meaning differs from Rust's operators: `x / 0 == 0`,
/// `x % 0 == x` (eBPF), shift amounts modulo the width, `mul_div` exact and saturating.
pub trait NfInt: Copy {
    fn nf_div(self, y: Self) -> Self;
    fn nf_rem(self, y: Self) -> Self;
    fn nf_shl(self, y: u64) -> Self;
    fn nf_shr(self, y: u64) -> Self;
    fn nf_mul_div(self, b: Self, c: Self) -> Self;
}

macro_rules! nf_uint {
    ($($t:ty),+) => {$(
        impl NfInt for $t {
            #[inline]
            fn nf_div(self, y: Self) -> Self {
                if y == 0 { 0 } else { self / y }
            }
            #[inline]
            fn nf_rem(self, y: Self) -> Self {
                if y == 0 { self } else { self % y }
            }
            #[inline]
            fn nf_shl(self, y: u64) -> Self {
                self.wrapping_shl((y % <$t>::BITS as u64) as u32)
            }
            #[inline]
            fn nf_shr(self, y: u64) -> Self {
                self.wrapping_shr((y % <$t>::BITS as u64) as u32)
            }
            #[inline]
            fn nf_mul_div(self, b: Self, c: Self) -> Self {
                if c == 0 {
                    return 0;
                }
                let q = (self as u128) * (b as u128) / (c as u128);
                q.min(<$t>::MAX as u128) as $t
            }
        }
    )+};
}
nf_uint!(u8, u16, u32, u64);

impl NfInt for i64 {
    #[inline]
    fn nf_div(self, y: Self) -> Self {
        if y == 0 {
            0
        } else {
            self.wrapping_div(y)
        }
    }
    #[inline]
    fn nf_rem(self, y: Self) -> Self {
        if y == 0 {
            self
        } else {
            self.wrapping_rem(y)
        }
    }
    #[inline]
    fn nf_shl(self, y: u64) -> Self {
        self.wrapping_shl((y % 64) as u32)
    }
    #[inline]
    fn nf_shr(self, y: u64) -> Self {
        self.wrapping_shr((y % 64) as u32)
    }
    #[inline]
    fn nf_mul_div(self, b: Self, c: Self) -> Self {
        if c == 0 {
            return 0;
        }
        let q = (self as i128) * (b as i128) / (c as i128);
        q.clamp(i64::MIN as i128, i64::MAX as i128) as i64
    }
}
