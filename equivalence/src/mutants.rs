//! The built-in known-bad parallelizations (`equivalence.md`, "The checker checks
//! itself"). A checker that never fails proves nothing: `maestro verify --mutants` runs
//! each mutant that applies to the NF and must report a divergence for it.
//!
//! This module is the catalog: what each mutant is, where it applies, and how to apply
//! it ([`MutantKind`]). NIC mutants are implemented here as edits of the runtime's
//! [`NicConfig`]; the others are switches of the runtime ([`RuntimeMutant`]), of the
//! generator (`GenOptions { expiry_off_by_one: true }`) or of the driver (`--no-rename`),
//! which the runner in `verify.rs` sets.

use maestro_analyzer::sym::report::Analysis;
use maestro_runtime::exec::engine::RuntimeMutant;
use maestro_runtime::exec::nic::{NicConfig, NicModel};
use maestro_runtime::exec::Strategy;
use maestro_runtime::rss::MICROSOFT_KEY;
use maestro_runtime::InputPacket;

use crate::adversarial::{constrained_peer, equalities, frame, odd_frame, OddKind, Rng, TCP, UDP};
use crate::compare::Renamed;

/// Why a mutant cannot be applied.
#[derive(Debug, thiserror::Error)]
pub enum MutantError {
    #[error("mutant {mutant}: {why}")]
    NotApplicable { mutant: &'static str, why: String },
}

/// How a mutant is applied.
#[derive(Clone, Copy, Debug)]
pub enum MutantKind {
    /// Edit the NIC configuration the parallel run steers with.
    Nic(fn(&NicConfig, &MutantInput<'_>) -> Result<NicConfig, MutantError>),
    /// Run the `locks` engine with this runtime mutant (deterministic schedule for
    /// `ReadLockOnWrite`).
    Runtime(RuntimeMutant),
    /// Generate the NF with `GenOptions { expiry_off_by_one: true }`.
    Generator,
    /// Run the generated binary with `--no-rename`: WAN replies reach the parallel NF
    /// with the sequential NF's values.
    NoRename,
}

/// What the applicability checks and NIC edits read.
#[derive(Clone, Copy, Debug)]
pub struct MutantInput<'a> {
    pub analysis: &'a Analysis,
    /// The NF's `RENAMED` fields.
    pub renamed: &'a [Renamed],
    pub cores: usize,
    pub seed: u64,
}

/// One known-bad parallelization.
#[derive(Clone, Copy, Debug)]
pub struct Mutant {
    pub name: &'static str,
    /// What is wrong, in plain words.
    pub description: &'static str,
    /// The strategy it is run with.
    pub strategy: Strategy,
    pub kind: MutantKind,
}

impl Mutant {
    /// `None` when the mutant applies to the NF; otherwise why not (reported as
    /// "skipped", and left out of the kill rate). NIC mutants apply when the edited
    /// configuration really separates some pair of packets a constraint requires to
    /// co-locate ([`split_pair`]); the others when the NF has what they break.
    pub fn skip_reason(&self, base: &NicConfig, input: &MutantInput<'_>) -> Option<String> {
        let a = input.analysis;
        let writes = a.summary.writing_paths > 0;
        match self.kind {
            MutantKind::Nic(edit) => {
                if a.verdict.strategy != "shared-nothing" {
                    return Some(format!(
                        "the NF's verdict is `{}`: no shared-nothing run to mis-steer",
                        a.verdict.strategy
                    ));
                }
                if input.cores < 2 {
                    return Some("one core: steering cannot separate packets".to_string());
                }
                match edit(base, input) {
                    Err(e) => Some(e.to_string()),
                    Ok(cfg) => match split_pair(&cfg, input) {
                        Some(_) => None,
                        None => Some("the edited configuration still co-locates every constrained pair tried".to_string()),
                    },
                }
            }
            MutantKind::Runtime(_) => (!writes).then(|| {
                "no path writes state: the lock protocol has nothing to get wrong".to_string()
            }),
            MutantKind::Generator => {
                let expiring = a.sites.iter().any(|s| s.method == "expire");
                (!expiring).then(|| "the NF has no expiring state".to_string())
            }
            MutantKind::NoRename => {
                if input.renamed.is_empty() {
                    Some("the NF writes no value it chose itself (no RENAMED fields): nothing to rename".to_string())
                } else if a.verdict.strategy != "shared-nothing" {
                    Some(format!(
                        "the NF's verdict is `{}`: no per-core allocators",
                        a.verdict.strategy
                    ))
                } else {
                    None
                }
            }
        }
    }

    /// The NIC configuration of the mutant run (`base` unchanged for non-NIC mutants).
    pub fn nic(&self, base: &NicConfig, input: &MutantInput<'_>) -> Result<NicConfig, MutantError> {
        match self.kind {
            MutantKind::Nic(edit) => edit(base, input),
            _ => Ok(base.clone()),
        }
    }
}

/// The catalog, in the order of `equivalence.md`.
pub fn catalog() -> Vec<Mutant> {
    vec![
        Mutant {
            name: "ms-default-key",
            description: "Microsoft's default RSS key on every port: it does not hash the two directions of a flow alike, nor ignore the fields a state key leaves out",
            strategy: Strategy::Sn,
            kind: MutantKind::Nic(ms_default_key),
        },
        Mutant {
            name: "key-ignores-field",
            description: "one port's key no longer hashes a field the co-location constraint needs (its RETA-bit key columns zeroed); the other port still does",
            strategy: Strategy::Sn,
            kind: MutantKind::Nic(key_ignores_field),
        },
        Mutant {
            name: "reta-differs",
            description: "the second port's RETA is the shared one rotated by one entry: the two ports of a co-locating pair disagree on every bucket",
            strategy: Strategy::Sn,
            kind: MutantKind::Nic(reta_differs),
        },
        Mutant {
            name: "unhashed-icmp-fragments",
            description: "only TCP/UDP non-fragments are hashed (Maestro's choice): ICMP, fragments and other IPv4 land on reta[0] although the NF keys state on them",
            strategy: Strategy::Sn,
            kind: MutantKind::Nic(unhashed_icmp_fragments),
        },
        Mutant {
            name: "locks-read-on-write",
            description: "a writing packet runs holding only its read token, racing with other readers (deterministic schedule)",
            strategy: Strategy::Locks,
            kind: MutantKind::Runtime(RuntimeMutant::ReadLockOnWrite),
        },
        Mutant {
            name: "locks-keep-aborted-decision",
            description: "the write re-run happens, but the packet's fate is the aborted read pass's bail-out (the shadowed dst_device of Maestro's lock code)",
            strategy: Strategy::Locks,
            kind: MutantKind::Runtime(RuntimeMutant::KeepAbortedDecision),
        },
        Mutant {
            name: "per-core-allocators-without-renaming",
            description: "per-core allocators choose their own values (NAT ports) but replies are not translated: WAN replies carry the sequential NF's ports",
            strategy: Strategy::Sn,
            kind: MutantKind::NoRename,
        },
        Mutant {
            name: "expiry-off-by-one",
            description: "expiry frees entries whose time is exactly now - ttl (one nanosecond early)",
            strategy: Strategy::Sn,
            kind: MutantKind::Generator,
        },
    ]
}

/// The mutant of a given name.
pub fn by_name(name: &str) -> Option<Mutant> {
    catalog().into_iter().find(|m| m.name == name)
}

// ---------------------------------------------------------------------------------------
// NIC edits
// ---------------------------------------------------------------------------------------

/// Every port gets Microsoft's 40-byte key; hash types and RETAs stay.
pub fn ms_default_key(
    base: &NicConfig,
    _input: &MutantInput<'_>,
) -> Result<NicConfig, MutantError> {
    let mut cfg = base.clone();
    for p in &mut cfg.ports {
        p.key = MICROSOFT_KEY.to_vec();
    }
    Ok(cfg)
}

/// A field a cross-port constraint equates, its port (packet 1's side), and that port's
/// RETA size: the target of [`key_ignores_field`].
fn ignored_field(base: &NicConfig, a: &Analysis) -> Option<(u16, maestro_rss::Field)> {
    for pc in a
        .constraints
        .pairs
        .iter()
        .filter(|pc| pc.ports[0] != pc.ports[1])
    {
        let port = pc.ports[0];
        let Some(p) = base.ports.iter().find(|p| p.port == port) else {
            continue;
        };
        let reta = p.reta.as_ref().map_or(base.reta.len(), Vec::len);
        let bits = reta.trailing_zeros() as usize;
        let cols = maestro_rss::reta_columns(&p.key, bits);
        for (f1, _) in equalities(pc) {
            if (f1.offset()..f1.offset() + f1.width()).any(|i| cols[i] != 0) {
                return Some((port, f1));
            }
        }
    }
    None
}

/// On the first port of a cross-port constraint, the key bits that make up the RETA-bit
/// columns of one equated field are zeroed: the RETA index no longer depends on it
/// there, while the other port still hashes the matching field.
pub fn key_ignores_field(
    base: &NicConfig,
    input: &MutantInput<'_>,
) -> Result<NicConfig, MutantError> {
    let Some((port, field)) = ignored_field(base, input.analysis) else {
        return Err(MutantError::NotApplicable {
            mutant: "key-ignores-field",
            why: "no cross-port constraint equates a field the key hashes on its RETA bits"
                .to_string(),
        });
    };
    let mut cfg = base.clone();
    let shared = cfg.reta.len();
    let Some(p) = cfg.ports.iter_mut().find(|p| p.port == port) else {
        return Err(MutantError::NotApplicable {
            mutant: "key-ignores-field",
            why: format!("port {port} has no RSS configuration"),
        });
    };
    let bits = p.reta.as_ref().map_or(shared, Vec::len).trailing_zeros() as usize;
    // Column i on RETA bit r (r < bits, LSB = 0) is key bit i + 31 - r.
    for i in field.offset()..field.offset() + field.width() {
        for r in 0..bits {
            let k = i + 31 - r;
            if let Some(byte) = p.key.get_mut(k / 8) {
                *byte &= !(0x80u8 >> (k % 8));
            }
        }
    }
    Ok(cfg)
}

/// The second configured port (in port order) gets its own RETA: the shared one rotated
/// left by one entry.
pub fn reta_differs(base: &NicConfig, input: &MutantInput<'_>) -> Result<NicConfig, MutantError> {
    let cross = input
        .analysis
        .constraints
        .pairs
        .iter()
        .find(|pc| pc.ports[0] != pc.ports[1]);
    let Some(pc) = cross else {
        return Err(MutantError::NotApplicable {
            mutant: "reta-differs",
            why: "no constraint spans two ports: one port's RETA cannot disagree with another's"
                .to_string(),
        });
    };
    let mut cfg = base.clone();
    let shared = cfg.reta.clone();
    let target = pc.ports[1];
    let Some(p) = cfg.ports.iter_mut().find(|p| p.port == target) else {
        return Err(MutantError::NotApplicable {
            mutant: "reta-differs",
            why: format!("port {target} has no RSS configuration"),
        });
    };
    let mut reta = p.reta.clone().unwrap_or(shared);
    reta.rotate_left(1);
    p.reta = Some(reta);
    Ok(cfg)
}

/// Hash types that cover fragments, ICMP and other IPv4.
const NON_TCP_UDP_V4: [&str; 3] = ["FRAG_IPV4", "NONFRAG_IPV4_OTHER", "IPV4"];

/// Every port keeps only its TCP/UDP (and IPv6) hash types.
pub fn unhashed_icmp_fragments(
    base: &NicConfig,
    _input: &MutantInput<'_>,
) -> Result<NicConfig, MutantError> {
    let mut cfg = base.clone();
    for p in &mut cfg.ports {
        p.rss_types.retain(|t| {
            let t = t
                .trim_start_matches("RTE_ETH_RSS_")
                .trim_start_matches("ETH_RSS_");
            !NON_TCP_UDP_V4.contains(&t)
        });
    }
    Ok(cfg)
}

// ---------------------------------------------------------------------------------------
// Witnesses
// ---------------------------------------------------------------------------------------

/// Two packets a constraint requires to reach one core, and the cores a NIC sends them to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SplitPair {
    /// The constraint, as `lan-wan`.
    pub constraint: String,
    pub first: InputPacket,
    pub second: InputPacket,
    pub cores: (u16, u16),
}

/// Whether the NF keys state on a non-TCP/UDP class on `port` (the analysis lists the
/// hash type the port needs for it).
fn keys_class(a: &Analysis, port: u16, ty: &str) -> bool {
    a.port_fields(port).is_some_and(|f| {
        f.rss_types
            .iter()
            .flat_map(|t| t.split('|'))
            .any(|t| t.trim() == ty)
    })
}

/// A pair of packets that some constraint of the analysis requires to co-locate but
/// that `cfg` steers to different cores, if one is found among deterministic candidates:
/// TCP/UDP pairs per constraint, plus fragment/ICMP versions of packet 1 for the classes
/// the NF keys state on. `None` means every candidate co-located (the configuration
/// looks correct for these constraints).
pub fn split_pair(cfg: &NicConfig, input: &MutantInput<'_>) -> Option<SplitPair> {
    let nic = NicModel::new(cfg, input.cores).ok()?;
    let a = input.analysis;
    for pc in &a.constraints.pairs {
        let eqs = equalities(pc);
        let [pa, pb] = pc.ports;
        let name = format!("{}-{}", pc.devices[0], pc.devices[1]);
        let mut rng = Rng::new(input.seed, &format!("witness:{pa}:{pb}"));
        for k in 0..256u32 {
            let p1 = rng.tuple(if k.is_multiple_of(2) { TCP } else { UDP });
            let p2 = constrained_peer(&eqs, &p1, &mut rng, false);
            let mut firsts = vec![frame(&p1, pa)];
            if keys_class(a, pa, "FRAG_IPV4") {
                firsts.push(odd_frame(OddKind::LaterFragment, &p1, pa));
            }
            if keys_class(a, pa, "NONFRAG_IPV4_OTHER") || keys_class(a, pa, "IPV4") {
                firsts.push(odd_frame(OddKind::Icmp, &p1, pa));
            }
            let second = frame(&p2, pb);
            let c2 = nic.steer(pb, &second).core;
            for first in firsts {
                let c1 = nic.steer(pa, &first).core;
                if c1 != c2 {
                    return Some(SplitPair {
                        constraint: name,
                        first: InputPacket {
                            port: pa,
                            time_ns: 0,
                            data: first,
                        },
                        second: InputPacket {
                            port: pb,
                            time_ns: 0,
                            data: second,
                        },
                        cores: (c1, c2),
                    });
                }
            }
        }
    }
    None
}
