//! Shrinking a failing trace to a few packets, and writing it as a capture.
//!
//! [`minimize`] first tries cheap cuts that usually remove almost everything (keep only
//! the packets up to the divergence, then only those of the flows involved), then runs
//! delta debugging ([`ddmin`], Zeller and Hildebrandt 2002) on what is left. Packets keep
//! their relative order and their timestamps: a subsequence of a trace is a trace.
//!
//! The predicate says whether a candidate still diverges. It is called on candidates
//! only (never on the input, which is assumed to fail), its answers are cached by the
//! set of packets tested, and a call budget bounds the work: when it runs out the
//! smallest failing trace found so far is returned.

use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::path::Path;

use maestro_runtime::capture::{CaptureError, CaptureFormat, CaptureWriter};
use maestro_runtime::packet::{PacketView, ParseMode};
use maestro_runtime::InputPacket;

/// Limits of one minimization.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MinimizeOptions {
    /// Predicate calls allowed (cache hits are free).
    pub max_calls: usize,
}

impl Default for MinimizeOptions {
    fn default() -> Self {
        MinimizeOptions { max_calls: 2_000 }
    }
}

/// The result of a minimization.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Minimized<T> {
    /// The smallest failing list found (the input itself if nothing smaller fails).
    pub items: Vec<T>,
    /// Indexes of `items` in the input.
    pub kept: Vec<usize>,
    /// Predicate calls made.
    pub calls: usize,
    /// Whether the result is 1-minimal (removing any single item makes it pass), i.e.
    /// ddmin ran to completion within the budget.
    pub one_minimal: bool,
}

/// Counts and caches predicate calls over index sets.
struct Oracle<'a, T, F: FnMut(&[T]) -> bool> {
    input: &'a [T],
    test: F,
    calls: usize,
    max_calls: usize,
    cache: HashSet<Vec<usize>>,
}

impl<T: Clone, F: FnMut(&[T]) -> bool> Oracle<'_, T, F> {
    /// Whether the subsequence `idx` fails; `None` when the budget is spent. Passing
    /// sets are cached (failing ones are adopted by the caller and never retested).
    fn fails(&mut self, idx: &[usize]) -> Option<bool> {
        if self.cache.contains(idx) {
            return Some(false);
        }
        if self.calls >= self.max_calls {
            return None;
        }
        self.calls += 1;
        let items: Vec<T> = idx.iter().map(|&i| self.input[i].clone()).collect();
        let failed = (self.test)(&items);
        if !failed {
            self.cache.insert(idx.to_vec());
        }
        Some(failed)
    }
}

/// Splits `v` into `n` nearly equal contiguous chunks (the first ones one longer).
fn chunks(v: &[usize], n: usize) -> Vec<Vec<usize>> {
    let n = n.clamp(1, v.len().max(1));
    let (q, r) = (v.len() / n, v.len() % n);
    let mut out = Vec::with_capacity(n);
    let mut at = 0;
    for k in 0..n {
        let len = q + usize::from(k < r);
        out.push(v[at..at + len].to_vec());
        at += len;
    }
    out
}

/// ddmin over the index list `current` (which fails); returns the reduced list and
/// whether it is 1-minimal.
fn ddmin_indexes<T: Clone, F: FnMut(&[T]) -> bool>(
    oracle: &mut Oracle<'_, T, F>,
    mut current: Vec<usize>,
) -> (Vec<usize>, bool) {
    let mut n = 2usize;
    while current.len() >= 2 {
        let parts = chunks(&current, n);
        let mut reduced = false;
        // Reduce to a subset.
        for part in &parts {
            match oracle.fails(part) {
                None => return (current, false),
                Some(true) => {
                    current = part.clone();
                    n = 2;
                    reduced = true;
                    break;
                }
                Some(false) => {}
            }
        }
        if reduced {
            continue;
        }
        // Reduce to a complement (for n == 2 the complements are the subsets: skip).
        if n > 2 {
            for k in 0..parts.len() {
                let complement: Vec<usize> = parts
                    .iter()
                    .enumerate()
                    .filter(|&(j, _)| j != k)
                    .flat_map(|(_, p)| p.iter().copied())
                    .collect();
                match oracle.fails(&complement) {
                    None => return (current, false),
                    Some(true) => {
                        current = complement;
                        n = (n - 1).max(2);
                        reduced = true;
                        break;
                    }
                    Some(false) => {}
                }
            }
        }
        if reduced {
            continue;
        }
        if n >= current.len() {
            return (current, true);
        }
        n = (2 * n).min(current.len());
    }
    // A single item (or none) is 1-minimal by definition.
    (current, true)
}

/// Delta debugging: the smallest subsequence of `input` (which must fail) that
/// `still_fails`, 1-minimal unless the budget ran out. Worst case O(n²) predicate calls;
/// a failure caused by k items needs about 2·k·log2(n) of them.
pub fn ddmin<T: Clone>(
    input: &[T],
    still_fails: impl FnMut(&[T]) -> bool,
    opts: MinimizeOptions,
) -> Minimized<T> {
    let mut oracle = Oracle {
        input,
        test: still_fails,
        calls: 0,
        max_calls: opts.max_calls,
        cache: HashSet::new(),
    };
    let (kept, one_minimal) = ddmin_indexes(&mut oracle, (0..input.len()).collect());
    Minimized {
        items: kept.iter().map(|&i| input[i].clone()).collect(),
        kept,
        calls: oracle.calls,
        one_minimal,
    }
}

/// A packet's IPv4 addresses (as the NF's strict parser reads them), if it has any.
fn addresses(p: &InputPacket) -> Option<(Ipv4Addr, Ipv4Addr)> {
    let view = PacketView::new(&p.data, ParseMode::Strict);
    view.ipv4()
        .map(|ip| (Ipv4Addr::from(ip.src()), Ipv4Addr::from(ip.dst())))
}

/// The unordered 5-tuple of a packet (IPv4 with ports when it has them).
fn conversation(p: &InputPacket) -> Option<(u32, u32, u16, u16, u8)> {
    let view = PacketView::new(&p.data, ParseMode::Strict);
    let ip = view.ipv4()?;
    let (sp, dp) = view.l4_ports().unwrap_or((0, 0));
    let a = (ip.src_u32(), sp);
    let b = (ip.dst_u32(), dp);
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    Some((lo.0, hi.0, lo.1, hi.1, ip.proto()))
}

/// The cheap first cuts for a divergence at `at` (an index into `packets`), smallest
/// first: (1) packets up to `at` of the same conversation (unordered 5-tuple) as packet
/// `at`; (2) packets up to `at` sharing an IPv4 address with it (a NAT reply shares only
/// the server's address with its request); (3) every packet up to `at`. Each is a list of
/// indexes into `packets`, ending with `at`.
pub fn first_cuts(packets: &[InputPacket], at: usize) -> Vec<Vec<usize>> {
    let Some(target) = packets.get(at) else {
        return Vec::new();
    };
    let mut cuts = Vec::new();
    if let Some(conv) = conversation(target) {
        cuts.push(
            (0..=at)
                .filter(|&i| conversation(&packets[i]) == Some(conv))
                .collect(),
        );
    }
    if let Some((s, d)) = addresses(target) {
        cuts.push(
            (0..=at)
                .filter(|&i| {
                    addresses(&packets[i])
                        .is_some_and(|(a, b)| a == s || a == d || b == s || b == d)
                })
                .collect(),
        );
    }
    cuts.push((0..=at).collect());
    cuts.dedup();
    cuts
}

/// Minimizes a failing trace: the cheap cuts of [`first_cuts`] around `divergence_at`
/// (when given), the first (smallest) that still fails is kept, then [`ddmin`] on it.
/// `still_fails` must be deterministic (run the NFs under a deterministic schedule).
pub fn minimize(
    packets: &[InputPacket],
    divergence_at: Option<usize>,
    mut still_fails: impl FnMut(&[InputPacket]) -> bool,
    opts: MinimizeOptions,
) -> Minimized<InputPacket> {
    let mut calls = 0;
    let mut base: Vec<usize> = (0..packets.len()).collect();
    if let Some(at) = divergence_at {
        for cut in first_cuts(packets, at) {
            if cut.len() >= base.len() || calls >= opts.max_calls {
                continue;
            }
            calls += 1;
            let items: Vec<InputPacket> = cut.iter().map(|&i| packets[i].clone()).collect();
            if still_fails(&items) {
                base = cut;
                break;
            }
        }
    }
    let reduced: Vec<InputPacket> = base.iter().map(|&i| packets[i].clone()).collect();
    let inner = ddmin(
        &reduced,
        still_fails,
        MinimizeOptions {
            max_calls: opts.max_calls.saturating_sub(calls),
        },
    );
    Minimized {
        kept: inner.kept.iter().map(|&k| base[k]).collect(),
        items: inner.items,
        calls: calls + inner.calls,
        one_minimal: inner.one_minimal,
    }
}

/// Writes `packets` as pcapng with one interface per port (interface id = input port,
/// named `port0`, `port1`…, nanosecond timestamps), so that Wireshark shows where each
/// packet entered and `maestro run --device-map interface` restores the ports. `ports`
/// is the NF's port count; it grows to cover every packet's port.
pub fn write_counterexample(
    path: &Path,
    packets: &[InputPacket],
    ports: u16,
) -> Result<(), CaptureError> {
    let needed = packets
        .iter()
        .map(|p| p.port.saturating_add(1))
        .max()
        .unwrap_or(0);
    let mut w = CaptureWriter::create(path, CaptureFormat::PcapNg, ports.max(needed).max(1))?;
    for p in packets {
        w.write_input(p)?;
    }
    w.finish()?;
    Ok(())
}
