//! Published throughput figures (from `shared/spec/perf-anchors.md`) that plots may draw
//! for orientation, only on request (`--baselines`) and only on 64-byte plots. They were
//! measured on other hardware with real NICs, so every label says "published" and the
//! caption names the source: they are never our measurements.

/// One published series: Mpps at core counts.
#[derive(Clone, Debug, PartialEq)]
pub struct Published {
    pub label: &'static str,
    /// Where the numbers come from and under which conditions.
    pub source: &'static str,
    pub points: &'static [(usize, f64)],
}

/// The published figures the plots can draw.
pub const PUBLISHED: &[Published] = &[
    Published {
        label: "published, other hardware: VPP, one stateful NF (flow counter)",
        source: "VPP with one stateful NF, median Mpps at 1/2/4/8/16 cores, from the FAJITA-experiments \
                 repository (graphs/eval-v2/cores-var/csvs), as quoted in perf-anchors.md A.5; \
                 100G testbed with a Tofino2 traffic replicator; the packet size behind that CSV is not \
                 recorded (64 B or 1000 B)",
        points: &[(1, 8.47), (2, 17.14), (4, 37.35), (8, 84.28), (16, 158.75)],
    },
    Published {
        label: "published, other hardware: VPP ACL plugin, stateful, 1 core",
        source: "FD.io CSIT 19.04, ethip4udp-ip4base-iacl1sf-10kflows, 64 B, one 2.5 GHz Skylake core: \
                 11.06 Mpps (226 cycles/packet), from FDio/vpp docs/usecases/acls.rst, as quoted in \
                 perf-anchors.md A.3",
        points: &[(1, 11.06)],
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_published_series_says_so() {
        for p in PUBLISHED {
            assert!(p.label.starts_with("published, other hardware"));
            assert!(!p.source.is_empty() && !p.points.is_empty());
        }
    }
}
