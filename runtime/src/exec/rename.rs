//! Input renaming for NFs that write values they chose themselves (the NAT's external
//! port), so that a parallel run can be replayed against the sequential one
//! (`shared/spec/equivalence.md`, "modulo renaming").
//!
//! The sequential run of the same input comes first. While the parallel run goes, the
//! [`Renamer`] learns a renaming rho from each packet's two observations (sequential
//! value of the output field -> parallel value) and rewrites input fields that carry such
//! a value back (a WAN reply addressed to the external port) before the parallel NF sees
//! them. What it rewrote ([`Translation`]) and where rho would have to map one value two
//! ways or two values onto one ([`RenameConflict`]) go into the record file for the
//! checker.
//!
//! Supported fields: `l4.sport`, `l4.dport` (TCP/UDP ports, values 0..=65535) and
//! `ip.src`, `ip.dst` (IPv4 addresses as numbers, `10.0.0.1` = `0x0a000001`). Values are
//! read with the run's parse mode, exactly as the NF reads them.
//!
//! Rules (chosen so the map mirrors the NF's allocator, see [`Renamer::after`]):
//! - rho is learned only from packets that did *not* arrive on one of the field's
//!   `in_ports` (those carry values back; the values are chosen on the other side), and
//!   only when both observations have bytes (forward or flood) whose headers hold the
//!   field. Equal values are learned too (identity pairs), so that injectivity is checked
//!   against every value the parallel NF handed out.
//! - A pair that contradicts rho is recorded as a conflict and rho keeps its first pair.
//! - A mapping is applied to a packet only if it was learned before the packet started,
//!   as in a deployment, where a reply cannot be addressed to a port before the request
//!   carrying it left.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError, RwLock};

use thiserror::Error;

use super::engine::Translator;
use super::nf::RenamedField;
use crate::packet::{PacketMut, PacketView, ParseMode};
use crate::trace::{InputPacket, Observation};

/// A header field a renaming can read and rewrite.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Field {
    L4Sport,
    L4Dport,
    IpSrc,
    IpDst,
}

impl Field {
    /// The field of a name in the NF language (`l4.sport`, `l4.dport`, `ip.src`, `ip.dst`).
    pub fn parse(name: &str) -> Option<Field> {
        match name {
            "l4.sport" => Some(Field::L4Sport),
            "l4.dport" => Some(Field::L4Dport),
            "ip.src" => Some(Field::IpSrc),
            "ip.dst" => Some(Field::IpDst),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Field::L4Sport => "l4.sport",
            Field::L4Dport => "l4.dport",
            Field::IpSrc => "ip.src",
            Field::IpDst => "ip.dst",
        }
    }

    /// The field's value in `frame`, if the frame's headers (parsed with `mode`) hold it.
    pub fn read(self, frame: &[u8], mode: ParseMode) -> Option<u64> {
        let view = PacketView::new(frame, mode);
        match self {
            Field::L4Sport => view.l4_ports().map(|(s, _)| u64::from(s)),
            Field::L4Dport => view.l4_ports().map(|(_, d)| u64::from(d)),
            Field::IpSrc => view.ipv4().map(|ip| u64::from(ip.src_u32())),
            Field::IpDst => view.ipv4().map(|ip| u64::from(ip.dst_u32())),
        }
    }

    /// Writes `value` into `frame` and fixes the checksums; false if the headers do not
    /// hold the field or the value does not fit it.
    pub fn write(self, frame: &mut [u8], mode: ParseMode, value: u64) -> bool {
        let mut p = PacketMut::new(frame, mode);
        let done = match self {
            Field::L4Sport => u16::try_from(value).is_ok_and(|v| p.set_l4_sport(v)),
            Field::L4Dport => u16::try_from(value).is_ok_and(|v| p.set_l4_dport(v)),
            Field::IpSrc => u32::try_from(value).is_ok_and(|v| p.set_ip_src(v)),
            Field::IpDst => u32::try_from(value).is_ok_and(|v| p.set_ip_dst(v)),
        };
        p.finish();
        done
    }
}

/// A renamed field the NF declares that this module cannot handle.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("renamed field `{name}` (declared by the NF's RENAMED list) is not supported; the renamer handles l4.sport, l4.dport, ip.src and ip.dst: extend runtime/src/exec/rename.rs or run with --no-rename")]
pub struct UnsupportedField {
    pub name: String,
}

/// An input field the renamer rewrote: packet `index`, entry `field` of the NF's
/// `RENAMED` list, value `old` (sequential) replaced by `new` (parallel).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Translation {
    pub index: u64,
    pub field: u16,
    pub old: u64,
    pub new: u64,
}

/// How a learned pair contradicts rho.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConflictKind {
    /// rho already maps the sequential value to another parallel value.
    SeqAlreadyMapped { existing_par: u64 },
    /// Another sequential value already maps to this parallel value.
    ParAlreadyTaken { existing_seq: u64 },
}

/// Packet `index` would need rho(`seq`) = `par` for entry `field` of `RENAMED`, which
/// contradicts what rho already holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RenameConflict {
    pub index: u64,
    pub field: u16,
    pub seq: u64,
    pub par: u64,
    pub kind: ConflictKind,
}

/// One renamed field, resolved.
#[derive(Clone, Debug)]
struct Rule {
    out_field: Field,
    in_field: Field,
    in_ports: Vec<u16>,
}

/// The renaming seq value -> par value over input order, with the latest inverse for
/// conflict reports.
///
/// Every pair is kept with the input index of the packet that taught it, and a packet is
/// translated with the pair its value had *at that packet's index* (the latest pair
/// taught by an earlier packet). That makes translation independent of how far ahead
/// another core runs: a sequential value reused after expiry by a later flow on another
/// core cannot overwrite what an earlier reply on this core needs.
///
/// Conflicts are reported, never enforced: a shared-nothing NF's per-core allocators
/// legitimately give one parallel value to flows of different cores (injective per core,
/// not globally), and a sequential value is reused once its entry expires; the checker
/// judges consistency per core and per flow lifetime (`maestro_equivalence::compare`).
#[derive(Clone, Debug, Default)]
struct Bijection {
    /// seq value -> (teaching input index, par value), sorted by index.
    forward: HashMap<u64, Vec<(u64, u64)>>,
    backward: HashMap<u64, u64>,
}

impl Bijection {
    /// The par value of `seq` as taught before input index `before`.
    fn at(&self, seq: u64, before: u64) -> Option<u64> {
        let pairs = self.forward.get(&seq)?;
        let n = pairs.partition_point(|&(i, _)| i < before);
        n.checked_sub(1).map(|k| pairs[k].1)
    }

    /// The newest pair of every seq value.
    fn latest(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.forward
            .iter()
            .filter_map(|(&s, v)| v.last().map(|&(_, p)| (s, p)))
    }

    /// Records `seq -> par` taught by packet `index`; `Err` names the pair it
    /// contradicts at that index.
    fn learn(&mut self, index: u64, seq: u64, par: u64) -> Result<(), ConflictKind> {
        let verdict = match (self.at(seq, index), self.backward.get(&par)) {
            (Some(p), _) if p == par => return Ok(()),
            (Some(p), _) => Err(ConflictKind::SeqAlreadyMapped { existing_par: p }),
            (None, Some(&s)) if s != seq => Err(ConflictKind::ParAlreadyTaken { existing_seq: s }),
            _ => Ok(()),
        };
        let pairs = self.forward.entry(seq).or_default();
        let at = pairs.partition_point(|&(i, _)| i < index);
        pairs.insert(at, (index, par));
        self.backward.insert(par, seq);
        verdict
    }
}

/// The sequential observations of a window of input indexes.
#[derive(Debug, Default)]
struct SeqWindow {
    base: u64,
    observations: Vec<Observation>,
}

impl SeqWindow {
    fn get(&self, index: u64) -> Option<&Observation> {
        let i = usize::try_from(index.checked_sub(self.base)?).ok()?;
        self.observations.get(i)
    }
}

/// What the renamer did so far.
#[derive(Debug, Default)]
struct Log {
    translations: Vec<Translation>,
    conflicts: Vec<RenameConflict>,
}

/// Learns rho from sequential vs parallel observations and translates inputs through it.
/// Thread-safe: workers of every core call it concurrently.
#[derive(Debug)]
pub struct Renamer {
    rules: Vec<Rule>,
    mode: ParseMode,
    seq: RwLock<SeqWindow>,
    maps: RwLock<Vec<Bijection>>,
    log: Mutex<Log>,
}

impl Renamer {
    /// A renamer for `fields` (the NF's `RENAMED`), with the sequential observations of
    /// the input from index 0 on.
    pub fn new(
        fields: &[RenamedField],
        sequential: Vec<Observation>,
        mode: ParseMode,
    ) -> Result<Renamer, UnsupportedField> {
        let rules = fields.iter().map(resolve).collect::<Result<Vec<_>, _>>()?;
        let maps = vec![Bijection::default(); rules.len()];
        Ok(Renamer {
            rules,
            mode,
            seq: RwLock::new(SeqWindow {
                base: 0,
                observations: sequential,
            }),
            maps: RwLock::new(maps),
            log: Mutex::new(Log::default()),
        })
    }

    /// Replaces the sequential observations with those of indexes `base..`, for runs that
    /// go chunk by chunk (rho and the logs are kept).
    pub fn set_sequential(&self, base: u64, sequential: Vec<Observation>) {
        let mut w = self.seq.write().unwrap_or_else(PoisonError::into_inner);
        *w = SeqWindow {
            base,
            observations: sequential,
        };
    }

    /// Rewrites the in fields of packet `index` whose value rho maps (only for packets on
    /// one of the field's `in_ports`), and remembers what it rewrote.
    pub fn before(&self, index: u64, packet: &mut InputPacket) {
        let mut done = Vec::new();
        {
            let maps = self.maps.read().unwrap_or_else(PoisonError::into_inner);
            for (i, rule) in self.rules.iter().enumerate() {
                if !rule.in_ports.contains(&packet.port) {
                    continue;
                }
                let Some(old) = rule.in_field.read(&packet.data, self.mode) else {
                    continue;
                };
                let Some(new) = maps[i].at(old, index) else {
                    continue;
                };
                if new != old && rule.in_field.write(&mut packet.data, self.mode, new) {
                    done.push(Translation {
                        index,
                        field: field_index(i),
                        old,
                        new,
                    });
                }
            }
        }
        if !done.is_empty() {
            self.lock_log().translations.extend(done);
        }
    }

    /// Learns rho(seq value) = par value from packet `index`'s parallel `observation`
    /// and its sequential one; contradictions become conflicts.
    pub fn after(&self, index: u64, packet: &InputPacket, observation: &Observation) {
        let Some(par_bytes) = observation.bytes() else {
            return;
        };
        let pairs = self.pairs_of(index, packet.port, par_bytes);
        if pairs.is_empty() {
            return;
        }
        let mut conflicts = Vec::new();
        {
            let mut maps = self.maps.write().unwrap_or_else(PoisonError::into_inner);
            for (i, seq, par) in pairs {
                if let Err(kind) = maps[i].learn(index, seq, par) {
                    conflicts.push(RenameConflict {
                        index,
                        field: field_index(i),
                        seq,
                        par,
                        kind,
                    });
                }
            }
        }
        if !conflicts.is_empty() {
            self.lock_log().conflicts.extend(conflicts);
        }
    }

    /// `(rule, seq value, par value)` for every rule packet `index` can teach.
    fn pairs_of(&self, index: u64, port: u16, par_bytes: &[u8]) -> Vec<(usize, u64, u64)> {
        let seq = self.seq.read().unwrap_or_else(PoisonError::into_inner);
        let Some(seq_bytes) = seq.get(index).and_then(Observation::bytes) else {
            return Vec::new();
        };
        self.rules
            .iter()
            .enumerate()
            .filter(|(_, rule)| !rule.in_ports.contains(&port))
            .filter_map(|(i, rule)| {
                let s = rule.out_field.read(seq_bytes, self.mode)?;
                let p = rule.out_field.read(par_bytes, self.mode)?;
                Some((i, s, p))
            })
            .collect()
    }

    /// Takes the translations made so far, sorted by packet index.
    pub fn take_translations(&self) -> Vec<Translation> {
        let mut t = std::mem::take(&mut self.lock_log().translations);
        t.sort_by_key(|t| (t.index, t.field));
        t
    }

    /// The conflicts recorded so far, sorted by packet index.
    pub fn conflicts(&self) -> Vec<RenameConflict> {
        let mut c = self.lock_log().conflicts.clone();
        c.sort_by_key(|c| (c.index, c.field));
        c
    }

    /// rho for entry `field` of `RENAMED`, as sorted (seq, par) pairs.
    pub fn mapping(&self, field: usize) -> Vec<(u64, u64)> {
        let maps = self.maps.read().unwrap_or_else(PoisonError::into_inner);
        let mut v: Vec<(u64, u64)> = maps
            .get(field)
            .map(|m| m.latest().collect())
            .unwrap_or_default();
        v.sort_unstable();
        v
    }

    fn lock_log(&self) -> std::sync::MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Translator for Renamer {
    fn before(&self, index: u64, packet: &mut InputPacket) {
        Renamer::before(self, index, packet);
    }

    fn after(&self, index: u64, packet: &InputPacket, observation: &Observation) {
        Renamer::after(self, index, packet, observation);
    }
}

fn resolve(f: &RenamedField) -> Result<Rule, UnsupportedField> {
    let field = |name: &str| {
        Field::parse(name).ok_or_else(|| UnsupportedField {
            name: name.to_string(),
        })
    };
    Ok(Rule {
        out_field: field(f.out_field)?,
        in_field: field(f.in_field)?,
        in_ports: f.in_ports.to_vec(),
    })
}

/// Rule numbers are stored as `u16` in the record file; NFs have a handful.
fn field_index(i: usize) -> u16 {
    u16::try_from(i).unwrap_or(u16::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::l4_checksum_ipv4;
    use crate::packet::layout;

    const NAT: [RenamedField; 1] = [RenamedField {
        out_field: "l4.sport",
        in_field: "l4.dport",
        in_ports: &[1],
    }];

    /// An Ethernet/IPv4/UDP frame with a valid UDP checksum.
    fn udp(src: u32, dst: u32, sport: u16, dport: u16) -> Vec<u8> {
        let mut f = vec![0u8; 14 + 20 + 8 + 4];
        f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        f[14] = 0x45;
        f[16..18].copy_from_slice(&32u16.to_be_bytes());
        f[22] = 64;
        f[23] = 17;
        f[26..30].copy_from_slice(&src.to_be_bytes());
        f[30..34].copy_from_slice(&dst.to_be_bytes());
        f[34..36].copy_from_slice(&sport.to_be_bytes());
        f[36..38].copy_from_slice(&dport.to_be_bytes());
        f[38..40].copy_from_slice(&12u16.to_be_bytes());
        f[42..46].copy_from_slice(b"data");
        let mut p = PacketMut::new(&mut f, ParseMode::Strict);
        p.set_l4_sport(sport);
        p.finish();
        f
    }

    fn fwd(port: u16, bytes: Vec<u8>) -> Observation {
        Observation::Forward { port, bytes }
    }

    fn input(port: u16, data: Vec<u8>) -> InputPacket {
        InputPacket {
            port,
            time_ns: 0,
            data,
        }
    }

    const LAN_HOST: u32 = 0x0a00_0001;
    const SERVER: u32 = 0xc633_6401;
    const EXT: u32 = 0xc000_0201;

    #[test]
    fn unsupported_fields_are_refused() {
        let bad = [RenamedField {
            out_field: "ip.ttl",
            in_field: "l4.dport",
            in_ports: &[1],
        }];
        let err = Renamer::new(&bad, Vec::new(), ParseMode::Strict).unwrap_err();
        assert_eq!(err.name, "ip.ttl");
        assert!(err.to_string().contains("--no-rename"));
    }

    #[test]
    fn wan_reply_is_translated_through_the_learned_port() {
        // Packet 0: LAN request, the sequential NAT chose port 1000, the parallel one 2000.
        // Packet 1: the WAN reply, addressed (in the input) to the sequential port 1000.
        let request = udp(LAN_HOST, SERVER, 5555, 53);
        let reply = udp(SERVER, EXT, 53, 1000);
        let seq = vec![
            fwd(1, udp(EXT, SERVER, 1000, 53)),
            fwd(0, udp(SERVER, LAN_HOST, 53, 5555)),
        ];
        let r = Renamer::new(&NAT, seq, ParseMode::Strict).unwrap();

        let mut p0 = input(0, request.clone());
        r.before(0, &mut p0);
        assert_eq!(p0.data, request, "LAN packets are never rewritten");
        r.after(0, &p0, &fwd(1, udp(EXT, SERVER, 2000, 53)));
        assert_eq!(r.mapping(0), vec![(1000, 2000)]);

        let mut p1 = input(1, reply.clone());
        r.before(1, &mut p1);
        assert_eq!(Field::L4Dport.read(&p1.data, ParseMode::Strict), Some(2000));
        let lay = layout(&p1.data, ParseMode::Strict);
        let sum = l4_checksum_ipv4(&p1.data, &lay).unwrap();
        assert_eq!(&p1.data[40..42], &sum.to_be_bytes(), "UDP checksum fixed");
        assert_eq!(
            r.take_translations(),
            vec![Translation {
                index: 1,
                field: 0,
                old: 1000,
                new: 2000
            }]
        );
        assert!(r.take_translations().is_empty(), "taken once");
        // The reply's own output teaches nothing (it arrived on an in port).
        r.after(1, &p1, &fwd(0, udp(SERVER, LAN_HOST, 53, 5555)));
        assert_eq!(r.mapping(0), vec![(1000, 2000)]);
        assert!(r.conflicts().is_empty());
    }

    #[test]
    fn unknown_values_and_other_ports_pass_unchanged() {
        let seq = vec![fwd(1, udp(EXT, SERVER, 1000, 53))];
        let r = Renamer::new(&NAT, seq, ParseMode::Strict).unwrap();
        r.after(
            0,
            &input(0, udp(LAN_HOST, SERVER, 1, 53)),
            &fwd(1, udp(EXT, SERVER, 7, 53)),
        );
        let reply = udp(SERVER, EXT, 53, 1001);
        let mut p = input(1, reply.clone());
        r.before(5, &mut p);
        assert_eq!(p.data, reply, "1001 is not in rho's domain");
        let on_lan = udp(SERVER, EXT, 53, 1000);
        let mut p = input(0, on_lan.clone());
        r.before(6, &mut p);
        assert_eq!(p.data, on_lan, "port 0 is not an in port");
        assert!(r.take_translations().is_empty());
    }

    #[test]
    fn drops_and_unparsable_outputs_teach_nothing() {
        let seq = vec![
            Observation::Drop,
            fwd(1, udp(EXT, SERVER, 1000, 53)),
            fwd(1, vec![0u8; 20]),
        ];
        let r = Renamer::new(&NAT, seq, ParseMode::Strict).unwrap();
        let lan = input(0, udp(LAN_HOST, SERVER, 1, 53));
        r.after(0, &lan, &fwd(1, udp(EXT, SERVER, 5, 53)));
        r.after(1, &lan, &Observation::Drop);
        r.after(2, &lan, &fwd(1, udp(EXT, SERVER, 6, 53)));
        r.after(9, &lan, &fwd(1, udp(EXT, SERVER, 7, 53))); // outside the window
        assert!(r.mapping(0).is_empty());
    }

    #[test]
    fn conflicts_are_recorded_and_the_newest_pair_wins() {
        let seq = vec![
            fwd(1, udp(EXT, SERVER, 1000, 53)),
            fwd(1, udp(EXT, SERVER, 1000, 53)),
            fwd(1, udp(EXT, SERVER, 1001, 53)),
            fwd(1, udp(EXT, SERVER, 1000, 53)),
        ];
        let r = Renamer::new(&NAT, seq, ParseMode::Strict).unwrap();
        let lan = input(0, udp(LAN_HOST, SERVER, 1, 53));
        r.after(0, &lan, &fwd(1, udp(EXT, SERVER, 2000, 53)));
        r.after(1, &lan, &fwd(1, udp(EXT, SERVER, 2001, 53))); // 1000 remapped
        r.after(2, &lan, &fwd(1, udp(EXT, SERVER, 2001, 53))); // two onto 2001
        r.after(3, &lan, &fwd(1, udp(EXT, SERVER, 2000, 53))); // 1000 back to 2000
        let mut m = r.mapping(0);
        m.sort_unstable();
        assert_eq!(m, vec![(1000, 2000), (1001, 2001)]);
        assert_eq!(
            r.conflicts(),
            vec![
                RenameConflict {
                    index: 1,
                    field: 0,
                    seq: 1000,
                    par: 2001,
                    kind: ConflictKind::SeqAlreadyMapped { existing_par: 2000 }
                },
                RenameConflict {
                    index: 2,
                    field: 0,
                    seq: 1001,
                    par: 2001,
                    kind: ConflictKind::ParAlreadyTaken { existing_seq: 1000 }
                },
                RenameConflict {
                    index: 3,
                    field: 0,
                    seq: 1000,
                    par: 2000,
                    kind: ConflictKind::SeqAlreadyMapped { existing_par: 2001 }
                },
            ]
        );
    }

    /// A later flow (another core, running ahead) reusing a sequential value must not
    /// change how an earlier reply is translated: translation follows input order.
    #[test]
    fn a_reply_uses_the_pair_taught_before_it_in_input_order() {
        let mut seq = vec![Observation::Drop; 21];
        seq[10] = fwd(1, udp(EXT, SERVER, 2, 53));
        seq[20] = fwd(1, udp(EXT, SERVER, 2, 53)); // port 2 reused after expiry
        let r = Renamer::new(&NAT, seq, ParseMode::Strict).unwrap();
        let lan = input(0, udp(LAN_HOST, SERVER, 1, 53));
        r.after(10, &lan, &fwd(1, udp(EXT, SERVER, 1, 53))); // core 0: 2 -> 1
        r.after(20, &lan, &fwd(1, udp(EXT, SERVER, 2, 53))); // core 1, ahead: 2 -> 2
        let mut reply = input(1, udp(SERVER, EXT, 53, 2));
        r.before(15, &mut reply);
        assert_eq!(Field::L4Dport.read(&reply.data, ParseMode::Strict), Some(1));
        let mut late = input(1, udp(SERVER, EXT, 53, 2));
        r.before(25, &mut late);
        assert_eq!(Field::L4Dport.read(&late.data, ParseMode::Strict), Some(2));
        let mut early = input(1, udp(SERVER, EXT, 53, 2));
        r.before(5, &mut early);
        assert_eq!(
            Field::L4Dport.read(&early.data, ParseMode::Strict),
            Some(2),
            "nothing taught yet"
        );
    }

    #[test]
    fn windows_shift_with_chunks() {
        let r = Renamer::new(&NAT, Vec::new(), ParseMode::Strict).unwrap();
        r.set_sequential(100, vec![fwd(1, udp(EXT, SERVER, 1000, 53))]);
        let lan = input(0, udp(LAN_HOST, SERVER, 1, 53));
        r.after(0, &lan, &fwd(1, udp(EXT, SERVER, 3000, 53)));
        assert!(r.mapping(0).is_empty(), "index 0 is before the window");
        r.after(100, &lan, &fwd(1, udp(EXT, SERVER, 3000, 53)));
        assert_eq!(r.mapping(0), vec![(1000, 3000)]);
    }

    #[test]
    fn address_fields_round_trip() {
        let mut f = udp(LAN_HOST, SERVER, 1, 2);
        assert_eq!(
            Field::IpSrc.read(&f, ParseMode::Strict),
            Some(u64::from(LAN_HOST))
        );
        assert!(Field::IpDst.write(&mut f, ParseMode::Strict, u64::from(EXT)));
        assert_eq!(
            Field::IpDst.read(&f, ParseMode::Strict),
            Some(u64::from(EXT))
        );
        assert!(
            !Field::L4Sport.write(&mut f, ParseMode::Strict, 70_000),
            "does not fit"
        );
        assert_eq!(Field::parse("ip.dst"), Some(Field::IpDst));
        assert_eq!(Field::L4Dport.name(), "l4.dport");
    }
}
