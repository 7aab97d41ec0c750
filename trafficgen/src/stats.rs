//! What a generated trace turned out to contain: [`TraceStats`], measured packet by packet
//! as the generator emits them (see [`TraceGen::with_stats`](crate::TraceGen::with_stats)),
//! in memory that does not grow with the trace.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt;

use serde::Serialize;

/// How many of the heaviest flows [`TraceStats::top_flows`] keeps.
pub const TOP_FLOWS: usize = 1000;

/// Ranks whose packet count is below this are left out of the rank-frequency fit: their
/// counts are too noisy (Poisson noise of 10% at 100 packets).
pub const MIN_FIT_COUNT: u64 = 100;

/// Statistics of a generated trace.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TraceStats {
    /// Packets generated.
    pub packets: u64,
    /// Of which replies (on the WAN port).
    pub replies: u64,
    /// Of which keep-alives: LAN packets forced so that no active flow stays silent past
    /// half the expiry time (see [`TraceConfig::expiry_ns`](crate::TraceConfig::expiry_ns)).
    pub keepalives: u64,
    /// Bytes of the frames as written (FCS excluded).
    pub frame_bytes: u64,
    /// Timestamp of the first packet.
    pub start_ns: u64,
    /// Where the next packet would have been: the trace covers `start_ns..end_ns`.
    pub end_ns: u64,
    /// Distinct flows that sent at least one packet.
    pub flows: u64,
    /// Flows the trace keeps active at any time (`flows.count`).
    pub flow_slots: u32,
    /// Flows created by churn that sent at least one packet: the observed churn.
    pub new_flows: u64,
    /// Churn replacements made (a flow retired, its slot given a fresh 5-tuple).
    pub replacements: u64,
    /// The requested churn, flows per minute.
    pub requested_churn_fpm: u64,
    /// The requested Zipf exponent (0 is uniform).
    pub zipf_s: f64,
    /// The NF expiry the trace was built for, if any.
    pub expiry_ns: Option<u64>,
    /// Longest silence between two consecutive packets (either direction) of one flow.
    pub max_gap_ns: u64,
    /// Silences longer than `expiry_ns`: an NF with that expiry sees the flow come back as
    /// a new one. Always 0 when keep-alives run.
    pub gaps_over_expiry: u64,
    /// `(frame size with FCS, packets)` for each size that occurred.
    pub sizes: Vec<(u16, u64)>,
    /// Packet counts of the heaviest flows, at most [`TOP_FLOWS`], heaviest first.
    pub top_flows: Vec<u64>,
}

/// A least-squares line through the rank-frequency plot `ln(count) = a + slope * ln(rank)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RankFit {
    /// The slope; `-s` for Zipf traffic of exponent `s`, near 0 for uniform traffic.
    pub slope: f64,
    /// Ranks fitted, `1..=ranks`.
    pub ranks: usize,
}

impl TraceStats {
    /// Length of trace time covered, in ns.
    pub fn duration_ns(&self) -> u64 {
        self.end_ns - self.start_ns
    }

    fn per_minute(&self, n: u64) -> f64 {
        match self.duration_ns() {
            0 => 0.0,
            d => n as f64 * 60e9 / d as f64,
        }
    }

    /// Observed churn: new flows (created by churn, seen in the trace) per minute of
    /// trace time.
    pub fn churn_fpm(&self) -> f64 {
        self.per_minute(self.new_flows)
    }

    /// The churn an NF with expiry `expiry_ns` sees: new flows plus flows that come back
    /// after a silence past the expiry, per minute of trace time.
    pub fn nf_churn_fpm(&self) -> f64 {
        self.per_minute(self.new_flows + self.gaps_over_expiry)
    }

    /// Share of all packets sent by the `k` heaviest flows (`k <= TOP_FLOWS`).
    pub fn top_share(&self, k: usize) -> f64 {
        if self.packets == 0 {
            return 0.0;
        }
        self.top_flows.iter().take(k).sum::<u64>() as f64 / self.packets as f64
    }

    /// Mean frame size, FCS included.
    pub fn mean_frame_size(&self) -> f64 {
        if self.packets == 0 {
            return 0.0;
        }
        (self.frame_bytes + 4 * self.packets) as f64 / self.packets as f64
    }

    /// The rank-frequency slope over the heaviest flows with at least [`MIN_FIT_COUNT`]
    /// packets (at least 3 ranks, else `None`).
    pub fn rank_fit(&self) -> Option<RankFit> {
        rank_fit(&self.top_flows)
    }
}

/// Least-squares slope of `ln(count)` over `ln(rank)` for `counts` (heaviest first), over
/// the leading ranks with at least [`MIN_FIT_COUNT`] packets; `None` under 3 ranks.
pub fn rank_fit(counts: &[u64]) -> Option<RankFit> {
    let ranks = counts.iter().take_while(|&&c| c >= MIN_FIT_COUNT).count();
    if ranks < 3 {
        return None;
    }
    let pts: Vec<(f64, f64)> = counts[..ranks]
        .iter()
        .enumerate()
        .map(|(i, &c)| (((i + 1) as f64).ln(), (c as f64).ln()))
        .collect();
    let n = ranks as f64;
    let mx = pts.iter().map(|p| p.0).sum::<f64>() / n;
    let my = pts.iter().map(|p| p.1).sum::<f64>() / n;
    let sxy: f64 = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let sxx: f64 = pts.iter().map(|p| (p.0 - mx).powi(2)).sum();
    Some(RankFit {
        slope: sxy / sxx,
        ranks,
    })
}

/// `1234567` → `"1,234,567"`.
fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

fn human_ns(ns: u64) -> String {
    match ns {
        n if n >= 1_000_000_000 => format!("{:.3} s", n as f64 / 1e9),
        n if n >= 1_000_000 => format!("{:.3} ms", n as f64 / 1e6),
        n if n >= 1_000 => format!("{:.3} us", n as f64 / 1e3),
        n => format!("{n} ns"),
    }
}

impl fmt::Display for TraceStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pct = |n: u64| {
            if self.packets == 0 {
                0.0
            } else {
                100.0 * n as f64 / self.packets as f64
            }
        };
        writeln!(
            f,
            "packets     {} ({} replies, {:.1}%; {} keep-alives)",
            thousands(self.packets),
            thousands(self.replies),
            pct(self.replies),
            thousands(self.keepalives)
        )?;
        let secs = self.duration_ns() as f64 / 1e9;
        let (pps, gbps) = if secs > 0.0 {
            (
                self.packets as f64 / secs,
                (self.frame_bytes + 24 * self.packets) as f64 * 8.0 / secs / 1e9,
            )
        } else {
            (0.0, 0.0)
        };
        writeln!(
            f,
            "time        {} of trace time ({:.0} packets/s, {:.3} Gbit/s on the wire)",
            human_ns(self.duration_ns()),
            pps,
            gbps
        )?;
        writeln!(
            f,
            "bytes       {} in frames without FCS (mean frame {:.2} B with FCS)",
            thousands(self.frame_bytes),
            self.mean_frame_size()
        )?;
        let mut sizes: Vec<String> = self
            .sizes
            .iter()
            .take(8)
            .map(|&(s, n)| format!("{s} B {:.2}%", pct(n)))
            .collect();
        if self.sizes.len() > 8 {
            sizes.push(format!("+{} more sizes", self.sizes.len() - 8));
        }
        writeln!(f, "sizes       {}", sizes.join(", "))?;
        writeln!(
            f,
            "flows       {} distinct ({} active at a time)",
            thousands(self.flows),
            thousands(u64::from(self.flow_slots))
        )?;
        let share = |k: usize| {
            let p = 100.0 * self.top_share(k);
            if p < 0.1 {
                format!("{p:.4}%")
            } else {
                format!("{p:.2}%")
            }
        };
        writeln!(
            f,
            "heaviest    top 1 {}, top 10 {}, top 100 {}, top 1000 {} of packets",
            share(1),
            share(10),
            share(100),
            share(1000)
        )?;
        match self.rank_fit() {
            Some(fit) => writeln!(
                f,
                "skew        rank-frequency slope {:.3} over ranks 1..{} (Zipf s = {} requested)",
                fit.slope, fit.ranks, self.zipf_s
            )?,
            None => writeln!(
                f,
                "skew        too few flows with {MIN_FIT_COUNT}+ packets to fit a slope \
                 (Zipf s = {} requested)",
                self.zipf_s
            )?,
        }
        writeln!(
            f,
            "churn       {} flows/min observed ({} new flows), {} requested",
            thousands(self.churn_fpm().round() as u64),
            thousands(self.new_flows),
            thousands(self.requested_churn_fpm)
        )?;
        match self.expiry_ns {
            Some(e) => write!(
                f,
                "expiry      {}: longest silence of a flow {}, {} silences past the expiry; \
                 an NF with this expiry sees {} new flows/min",
                human_ns(e),
                human_ns(self.max_gap_ns),
                thousands(self.gaps_over_expiry),
                thousands(self.nf_churn_fpm().round() as u64)
            ),
            None => write!(
                f,
                "expiry      none given; longest silence of a flow {}",
                human_ns(self.max_gap_ns)
            ),
        }
    }
}

/// Per-slot bookkeeping behind [`TraceStats`]: O(flows) memory, O(1) per packet.
pub(crate) struct Recorder {
    count: Vec<u64>,
    last: Vec<u64>,
    from_churn: Vec<bool>,
    /// Packet counts of retired flows: the heaviest [`TOP_FLOWS`], as a min-heap.
    retired: BinaryHeap<Reverse<u64>>,
    class_counts: Vec<u64>,
    packets: u64,
    replies: u64,
    keepalives: u64,
    frame_bytes: u64,
    flows: u64,
    new_flows: u64,
    replacements: u64,
    max_gap_ns: u64,
    gaps_over_expiry: u64,
    expiry_ns: u64,
}

impl Recorder {
    pub(crate) fn new(slots: usize, classes: usize, expiry_ns: Option<u64>) -> Recorder {
        Recorder {
            count: vec![0; slots],
            last: vec![0; slots],
            from_churn: vec![false; slots],
            retired: BinaryHeap::with_capacity(TOP_FLOWS + 1),
            class_counts: vec![0; classes],
            packets: 0,
            replies: 0,
            keepalives: 0,
            frame_bytes: 0,
            flows: 0,
            new_flows: 0,
            replacements: 0,
            max_gap_ns: 0,
            gaps_over_expiry: 0,
            expiry_ns: expiry_ns.unwrap_or(u64::MAX),
        }
    }

    #[inline]
    pub(crate) fn record(
        &mut self,
        slot: usize,
        class: usize,
        frame_len: usize,
        reply: bool,
        keepalive: bool,
        now: u64,
    ) {
        self.packets += 1;
        self.replies += u64::from(reply);
        self.keepalives += u64::from(keepalive);
        self.frame_bytes += frame_len as u64;
        self.class_counts[class] += 1;
        if self.count[slot] == 0 {
            self.flows += 1;
            self.new_flows += u64::from(self.from_churn[slot]);
        } else {
            let gap = now - self.last[slot];
            self.max_gap_ns = self.max_gap_ns.max(gap);
            self.gaps_over_expiry += u64::from(gap > self.expiry_ns);
        }
        self.count[slot] += 1;
        self.last[slot] = now;
    }

    /// The flow in `slot` is retired; a fresh one from churn takes its place.
    pub(crate) fn replace(&mut self, slot: usize) {
        self.replacements += 1;
        push_top(&mut self.retired, self.count[slot]);
        self.count[slot] = 0;
        self.from_churn[slot] = true;
    }

    pub(crate) fn finish(
        &self,
        start_ns: u64,
        end_ns: u64,
        sizes: &[u16],
        requested_churn_fpm: u64,
        zipf_s: f64,
        expiry_ns: Option<u64>,
    ) -> TraceStats {
        let mut top = self.retired.clone();
        for &c in &self.count {
            push_top(&mut top, c);
        }
        let mut top_flows: Vec<u64> = top.into_iter().map(|Reverse(c)| c).collect();
        top_flows.sort_unstable_by(|a, b| b.cmp(a));
        TraceStats {
            packets: self.packets,
            replies: self.replies,
            keepalives: self.keepalives,
            frame_bytes: self.frame_bytes,
            start_ns,
            end_ns,
            flows: self.flows,
            flow_slots: self.count.len() as u32,
            new_flows: self.new_flows,
            replacements: self.replacements,
            requested_churn_fpm,
            zipf_s,
            expiry_ns,
            max_gap_ns: self.max_gap_ns,
            gaps_over_expiry: self.gaps_over_expiry,
            sizes: sizes
                .iter()
                .zip(&self.class_counts)
                .filter(|&(_, &n)| n > 0)
                .map(|(&s, &n)| (s, n))
                .collect(),
            top_flows,
        }
    }
}

fn push_top(heap: &mut BinaryHeap<Reverse<u64>>, count: u64) {
    if count == 0 {
        return;
    }
    if heap.len() < TOP_FLOWS {
        heap.push(Reverse(count));
    } else if heap.peek().is_some_and(|&Reverse(min)| count > min) {
        heap.pop();
        heap.push(Reverse(count));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(88_462_000), "88,462,000");
    }

    #[test]
    fn fit_recovers_an_exact_power_law() {
        let counts: Vec<u64> = (1..=500)
            .map(|r| (1e9 * (r as f64).powf(-1.26)).round() as u64)
            .collect();
        let fit = rank_fit(&counts).unwrap();
        assert!((fit.slope + 1.26).abs() < 1e-3, "{fit:?}");
        assert_eq!(fit.ranks, 500);
        assert!(rank_fit(&[1000, 999]).is_none());
    }
}
