//! The generated binaries' `main` (`exec::driver`), driven through `run_cli` with a small
//! hand-written NAT-like NF: `run` on captures, `record` into record files (renaming
//! included), `info`, and the errors a user can make.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use maestro_runtime::capture::{CaptureFormat, CaptureItem, CaptureReader, CaptureWriter};
use maestro_runtime::exec::driver::{run_cli, CliOutput, DriverError};
use maestro_runtime::exec::engine::commit_order;
use maestro_runtime::exec::nic::{NicConfig, NicModel};
use maestro_runtime::exec::wire::{write_packets, RecordFile, RecordFileWriter};
use maestro_runtime::exec::{
    AccessLog, GeneratedNf, NeedsWrite, Refresh, RefreshLog, RenamedField, StateObjectInfo,
    Strategy,
};
use maestro_runtime::packet::{PacketMut, PacketView, ParseMode};
use maestro_runtime::state::StateError;
use maestro_runtime::{InputPacket, Observation};
use tempfile::TempDir;

// ---------------------------------------------------------------------------------------
// A NAT-like NF: LAN flows get an external port from a counter (1000, 1001, ...); WAN
// replies addressed to that port go back to the LAN host. No expiry.
// ---------------------------------------------------------------------------------------

const EXT_IP: u32 = 0xc000_0201;
const BASE_PORT: u16 = 1000;
const CAPACITY: u32 = 64;
/// Frames with this EtherType are an NF fault (dropped and counted).
const FAULT_ETHERTYPE: u16 = 0x9999;

type Flow = (u32, u16, u32, u16);

struct MiniNat {
    mode: ParseMode,
    capacity: usize,
    flows: HashMap<Flow, u16>,
    back: HashMap<u16, Flow>,
    faults: u64,
    log: Option<AccessLog>,
}

/// Why the read-only pass stops.
enum Need {
    Allocate(Flow),
    Fault,
}

impl MiniNat {
    /// The decision for a packet that needs no state change, or what it needs.
    fn decide(&self, packet: &InputPacket) -> Result<Observation, Need> {
        let view = PacketView::new(&packet.data, self.mode);
        if view.eth_type() == FAULT_ETHERTYPE {
            return Err(Need::Fault);
        }
        let (Some(ip), Some((sport, dport))) = (view.ipv4(), view.l4_ports()) else {
            return Ok(Observation::Drop);
        };
        match packet.port {
            0 => {
                let flow = (ip.src_u32(), sport, ip.dst_u32(), dport);
                match self.flows.get(&flow) {
                    Some(&ext) => Ok(self.rewrite(packet, 1, EXT_IP, true, ext)),
                    None => Err(Need::Allocate(flow)),
                }
            }
            1 => Ok(match self.back.get(&dport) {
                Some(&(host, hport, _, _)) => self.rewrite(packet, 0, host, false, hport),
                None => Observation::Drop,
            }),
            _ => Ok(Observation::Drop),
        }
    }

    /// Outbound: source address and port; inbound: destination address and port.
    fn rewrite(
        &self,
        packet: &InputPacket,
        out: u16,
        ip: u32,
        src: bool,
        port: u16,
    ) -> Observation {
        let mut bytes = packet.data.clone();
        let mut p = PacketMut::new(&mut bytes, self.mode);
        if src {
            p.set_ip_src(ip);
            p.set_l4_sport(port);
        } else {
            p.set_ip_dst(ip);
            p.set_l4_dport(port);
        }
        p.finish();
        Observation::Forward { port: out, bytes }
    }

    fn touch(&mut self, packet: &InputPacket) {
        let Some(log) = self.log.as_mut() else {
            return;
        };
        let view = PacketView::new(&packet.data, self.mode);
        if let (Some(ip), Some((s, d))) = (view.ipv4(), view.l4_ports()) {
            match packet.port {
                0 => log.touch(0, AccessLog::key_of(&(ip.src_u32(), s, ip.dst_u32(), d))),
                _ => log.touch(1, AccessLog::key_of(&d)),
            }
        }
    }
}

impl GeneratedNf for MiniNat {
    const NAME: &'static str = "mininat";
    const STATE: &'static [StateObjectInfo] = &[
        StateObjectInfo {
            name: "flows",
            kind: "map",
            capacity: CAPACITY,
            sharded: true,
        },
        StateObjectInfo {
            name: "ports",
            kind: "dchain",
            capacity: CAPACITY,
            sharded: true,
        },
    ];
    const PORT_COUNT: u16 = 2;
    const LAN_PORT: u16 = 0;
    const WAN_PORT: u16 = 1;
    const RENAMED: &'static [RenamedField] = &[RenamedField {
        out_field: "l4.sport",
        in_field: "l4.dport",
        in_ports: &[1],
    }];

    fn with_shards(mode: ParseMode, shards: usize) -> Result<Self, StateError> {
        Ok(MiniNat {
            mode,
            capacity: maestro_runtime::exec::shard_capacity(CAPACITY, shards) as usize,
            flows: HashMap::new(),
            back: HashMap::new(),
            faults: 0,
            log: None,
        })
    }

    fn process(&mut self, packet: &InputPacket) -> Observation {
        self.touch(packet);
        match self.decide(packet) {
            Ok(o) => o,
            Err(Need::Fault) => {
                self.faults += 1;
                Observation::Drop
            }
            Err(Need::Allocate(flow)) => {
                if self.flows.len() >= self.capacity {
                    return Observation::Drop;
                }
                let ext = BASE_PORT + self.flows.len() as u16;
                self.flows.insert(flow, ext);
                self.back.insert(ext, flow);
                self.rewrite(packet, 1, EXT_IP, true, ext)
            }
        }
    }

    fn process_read(
        &self,
        packet: &InputPacket,
        _log: &mut RefreshLog,
    ) -> Result<Observation, NeedsWrite> {
        self.decide(packet).map_err(|_| NeedsWrite)
    }

    fn apply_refresh(&mut self, _refresh: &Refresh) {}

    fn fault_count(&self) -> u64 {
        self.faults
    }

    fn set_instrumented(&mut self, on: bool) {
        self.log = on.then(AccessLog::default);
    }

    fn access_log(&self) -> Option<&AccessLog> {
        self.log.as_ref()
    }
}

// ---------------------------------------------------------------------------------------
// Frames, files, the command line
// ---------------------------------------------------------------------------------------

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
    f
}

fn host(i: u32) -> u32 {
    0x0a00_0000 + 1 + i
}

fn cli(args: &[&str]) -> Result<CliOutput, DriverError> {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    run_cli::<MiniNat>(&args)
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("temp paths are UTF-8")
}

/// `n` LAN requests (flow `i` from host `i`), then a WAN reply to each addressed to the
/// port the sequential NAT gives it (1000 + i), plus one fault frame.
fn nat_trace(n: u32, server: impl Fn(u32) -> u32) -> Vec<InputPacket> {
    let mut t = Vec::new();
    let mut time = 1_000;
    let mut push = |port, data| {
        t.push(InputPacket {
            port,
            time_ns: time,
            data,
        });
        time += 1_000;
    };
    for i in 0..n {
        push(0, udp(host(i), server(i), 5000, 53));
    }
    let mut fault = udp(host(0), server(0), 1, 2);
    fault[12..14].copy_from_slice(&FAULT_ETHERTYPE.to_be_bytes());
    push(0, fault);
    for i in 0..n {
        push(1, udp(server(i), EXT_IP, 53, BASE_PORT + i as u16));
    }
    t
}

/// The NIC of the parallel record tests: the default key spread over 2 cores.
fn two_core_nic() -> NicConfig {
    NicConfig::default_for(2).with_cores(2)
}

/// A server address per flow such that the request (port 0) and its reply (port 1) hash
/// to the same core: what a co-locating RSS configuration guarantees.
fn colocated_server(nic: &NicModel, i: u32) -> u32 {
    (0..10_000u32)
        .map(|k| 0xc633_6400 + k)
        .find(|&s| {
            let req = nic.steer(0, &udp(host(i), s, 5000, 53)).core;
            let rep = nic.steer(1, &udp(s, EXT_IP, 53, BASE_PORT + i as u16)).core;
            req == rep && req == (i % 2) as u16
        })
        .expect("some server address co-locates")
}

struct Files {
    dir: TempDir,
}

impl Files {
    fn new() -> Files {
        Files {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn rss(&self, cfg: &NicConfig) -> PathBuf {
        let p = self.path("rss.json");
        std::fs::write(&p, serde_json::to_string(cfg).unwrap()).unwrap();
        p
    }
}

fn record(files: &Files, name: &str, packets: &Path, extra: &[&str]) -> RecordFile {
    let out = files.path(name);
    let mut args = vec![
        "record",
        "--input",
        path_str(packets),
        "--output",
        path_str(&out),
    ];
    args.extend_from_slice(extra);
    let res = cli(&args).unwrap();
    assert!(res.stdout.contains("recorded"), "{}", res.stdout);
    RecordFile::read(&out).unwrap()
}

fn exit_code(r: Result<CliOutput, DriverError>) -> (u8, String) {
    let e = r.expect_err("the command must fail");
    (e.exit_code(), e.to_string())
}

// ---------------------------------------------------------------------------------------
// info, help, usage errors
// ---------------------------------------------------------------------------------------

#[test]
fn info_describes_state_and_renamed_fields() {
    let out = cli(&["info"]).unwrap();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["nf"], "mininat");
    assert_eq!(v["port_count"], 2);
    assert_eq!(v["state"][0]["name"], "flows");
    assert_eq!(v["state"][1]["kind"], "dchain");
    assert_eq!(v["state"][0]["capacity"], CAPACITY);
    assert_eq!(v["state"][0]["sharded"], true);
    assert_eq!(v["renamed"][0]["out_field"], "l4.sport");
    assert_eq!(v["renamed"][0]["in_field"], "l4.dport");
    assert_eq!(v["renamed"][0]["in_ports"][0], 1);
}

#[test]
fn help_lists_commands_and_options() {
    let general = cli(&["--help"]).unwrap().stdout;
    for c in ["run", "record", "info"] {
        assert!(general.contains(c), "{general}");
    }
    let run = cli(&["run", "--help"]).unwrap().stdout;
    for o in [
        "--pcap",
        "--strategy",
        "--rss",
        "--device-map",
        "--json",
        "--no-pin",
    ] {
        assert!(run.contains(o), "{run}");
    }
    let record = cli(&["record", "-h"]).unwrap().stdout;
    for o in [
        "--input",
        "--schedule",
        "--mutant",
        "--no-rename",
        "--instrument",
    ] {
        assert!(record.contains(o), "{record}");
    }
}

#[test]
fn bad_command_lines_are_usage_errors() {
    let cases: &[(&[&str], &str)] = &[
        (&[], "missing command"),
        (&["frobnicate"], "unknown command `frobnicate`"),
        (
            &["run", "--pcap", "x.pcap", "--bogus"],
            "unknown option `--bogus` for `run`",
        ),
        (&["run", "--pcap"], "`--pcap` needs a value"),
        (&["run", "--pcap", "--json"], "`--pcap` needs a value"),
        (
            &["run", "--json=yes", "--pcap", "x"],
            "`--json` takes no value",
        ),
        (
            &["run", "--pcap", "a", "--pcap", "b"],
            "`--pcap` is given twice",
        ),
        (
            &["run", "--strategy", "sn"],
            "missing required option `--pcap`",
        ),
        (
            &["run", "stray", "--pcap", "a"],
            "unexpected argument `stray`",
        ),
        (
            &["record", "--input", "p.bin"],
            "missing required option `--output`",
        ),
        (&["info", "--json"], "unknown option `--json` for `info`"),
    ];
    for (args, message) in cases {
        let (code, text) = exit_code(cli(args));
        assert_eq!(code, 2, "{args:?}");
        assert!(text.contains(message), "{args:?}: {text}");
        assert!(text.contains("usage: mininat"), "{args:?}: {text}");
    }
}

#[test]
fn malformed_values_are_input_errors() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["run", "--pcap", "x", "--cores", "abc"],
            "invalid value `abc` for --cores",
        ),
        (&["run", "--pcap", "x", "--cores", "0"], "from 1 to 1024"),
        (
            &["run", "--pcap", "x", "--strategy", "fast"],
            "expected seq, sn, locks or tm",
        ),
        (
            &["run", "--pcap", "x", "--batch=-1"],
            "invalid value `-1` for --batch",
        ),
        (
            &["run", "--pcap", "x", "--parse-mode", "lax"],
            "strict or compat",
        ),
        (
            &["run", "--pcap", "x", "--device-map", "port:x"],
            "--device-map",
        ),
        (
            &[
                "record",
                "--input",
                "a",
                "--output",
                "b",
                "--schedule",
                "seed:",
            ],
            "threads or seed:N",
        ),
        (
            &[
                "record", "--input", "a", "--output", "b", "--mutant", "evil",
            ],
            "keep-aborted-decision",
        ),
    ];
    for (args, message) in cases {
        let (code, text) = exit_code(cli(args));
        assert_eq!(code, 2, "{args:?}");
        assert!(text.contains(message), "{args:?}: {text}");
    }
}

// ---------------------------------------------------------------------------------------
// run
// ---------------------------------------------------------------------------------------

/// A capture of the NAT trace on interfaces 0/1, one record on interface 2 (no such port)
/// and one record older than its predecessor.
fn nat_capture(files: &Files) -> (PathBuf, usize) {
    let path = files.path("in.pcapng");
    let mut w = CaptureWriter::create(&path, CaptureFormat::PcapNg, 3).unwrap();
    let trace = nat_trace(4, |i| 0xc633_6401 + i);
    for p in &trace {
        w.write_input(p).unwrap();
    }
    w.write(2, 99_000, &udp(1, 2, 3, 4)).unwrap();
    w.write(0, 500, &udp(host(0), 0xc633_6401, 5000, 53))
        .unwrap();
    w.finish().unwrap();
    (path, trace.len())
}

#[test]
fn run_seq_summarizes_and_writes_outputs() {
    let files = Files::new();
    let (pcap, n) = nat_capture(&files);
    let out = files.path("out.pcapng");
    let res = cli(&[
        "run",
        "--pcap",
        path_str(&pcap),
        "--out",
        path_str(&out),
        "--json",
    ])
    .unwrap();
    assert!(res.warnings.is_empty(), "{:?}", res.warnings);
    let s: serde_json::Value = serde_json::from_str(&res.stdout).unwrap();
    assert_eq!(s["nf"], "mininat");
    assert_eq!(s["strategy"], "seq");
    assert_eq!(s["records"], n as u64 + 2);
    assert_eq!(s["refused"], 1);
    assert!(s["refused_examples"][0]
        .as_str()
        .unwrap()
        .contains("input port 2 does not exist"));
    assert_eq!(s["packets"], n as u64 + 1);
    assert_eq!(s["time_clamped"], 1);
    // 4 requests + 4 replies + the late repeat of flow 0 forwarded; the fault dropped.
    assert_eq!(s["forwarded"], 9);
    assert_eq!(s["forwarded_per_port"]["1"], 5);
    assert_eq!(s["forwarded_per_port"]["0"], 4);
    assert_eq!(s["dropped"], 1);
    assert_eq!(s["nf_faults"], 1);
    assert_eq!(s["packets_per_core"], serde_json::json!([n as u64 + 1]));
    assert_eq!(s["rtm"], "not applicable");
    assert_eq!(s["written"], 9);
    let chunked = cli(&["run", "--pcap", path_str(&pcap), "--chunk", "2", "--json"]).unwrap();
    let c: serde_json::Value = serde_json::from_str(&chunked.stdout).unwrap();
    for key in [
        "records",
        "packets",
        "refused",
        "forwarded",
        "dropped",
        "nf_faults",
        "time_clamped",
    ] {
        assert_eq!(c[key], s[key], "{key}");
    }

    let written: Vec<_> = CaptureReader::open(&out)
        .unwrap()
        .map(|item| match item {
            CaptureItem::Packet(p) => p,
            CaptureItem::Refused(r) => panic!("{r}"),
        })
        .collect();
    assert_eq!(written.len(), 9);
    // The first request left on port 1 with the external port 1000.
    assert_eq!(written[0].interface, Some(1));
    assert_eq!(&written[0].data[34..36], &BASE_PORT.to_be_bytes());
    assert_eq!(written.iter().filter(|p| p.interface == Some(0)).count(), 4);
}

#[test]
fn run_text_summary_and_parallel_warning() {
    let files = Files::new();
    let (pcap, n) = nat_capture(&files);
    for strategy in ["sn", "locks", "tm"] {
        let res = cli(&[
            "run",
            "--pcap",
            path_str(&pcap),
            "--strategy",
            strategy,
            "--cores",
            "2",
            "--no-pin",
        ])
        .unwrap();
        assert!(
            res.warnings.iter().any(|w| w.contains("no --rss")),
            "{strategy}: {:?}",
            res.warnings
        );
        let t = &res.stdout;
        assert!(
            t.contains(&format!(
                "mininat on {} ({strategy}, 2 core(s))",
                pcap.display()
            )),
            "{t}"
        );
        assert!(
            t.contains(&format!("({} packets, 1 refused)", n + 1)),
            "{t}"
        );
        assert!(t.contains("Mpps"), "{t}");
        assert!(t.contains("core 0: "), "{t}");
        assert_eq!(t.contains("RTM"), strategy == "tm", "{t}");
        // Whatever the interleaving: every packet is accounted for exactly once.
        let count = |label: &str| -> u64 {
            let line = t
                .lines()
                .find(|l| l.trim_start().starts_with(label))
                .unwrap();
            line.split_whitespace().nth(1).unwrap().parse().unwrap()
        };
        assert_eq!(
            count("forwarded") + count("flooded") + count("dropped"),
            n as u64 + 1,
            "{t}"
        );
    }
    let res = cli(&["run", "--pcap", path_str(&pcap), "--cores", "4"]).unwrap();
    assert!(
        res.warnings[0].contains("--cores 4 ignored"),
        "{:?}",
        res.warnings
    );
}

#[test]
fn run_input_errors_name_the_file() {
    let files = Files::new();
    let missing = files.path("nope.pcap");
    let (code, text) = exit_code(cli(&["run", "--pcap", path_str(&missing)]));
    assert_eq!(code, 2);
    assert!(text.contains(path_str(&missing)), "{text}");

    let junk = files.path("junk.pcap");
    std::fs::write(&junk, b"this is not a capture").unwrap();
    let (code, text) = exit_code(cli(&["run", "--pcap", path_str(&junk)]));
    assert_eq!(code, 2);
    assert!(text.contains("not a pcap or pcapng file"), "{text}");

    let (pcap, _) = nat_capture(&files);
    let bad_rss = files.path("bad.json");
    std::fs::write(&bad_rss, "{ not json").unwrap();
    let (code, text) = exit_code(cli(&[
        "run",
        "--pcap",
        path_str(&pcap),
        "--strategy",
        "sn",
        "--cores",
        "2",
        "--rss",
        path_str(&bad_rss),
    ]));
    assert_eq!(code, 2);
    assert!(text.contains(path_str(&bad_rss)), "{text}");

    // A RETA for 4 cores does not fit a 2-core run.
    let rss4 = files.rss(&NicConfig::default_for(2).with_cores(4));
    let (code, text) = exit_code(cli(&[
        "run",
        "--pcap",
        path_str(&pcap),
        "--strategy",
        "sn",
        "--cores",
        "2",
        "--rss",
        path_str(&rss4),
    ]));
    assert_eq!(code, 2);
    assert!(text.contains("core(s)"), "{text}");
}

// ---------------------------------------------------------------------------------------
// record
// ---------------------------------------------------------------------------------------

#[test]
fn record_seq_writes_every_packet_in_order() {
    let files = Files::new();
    let trace = nat_trace(3, |i| 0xc633_6401 + i);
    let packets = files.path("p.bin");
    write_packets(&packets, &trace).unwrap();
    let rec = record(&files, "seq.bin", &packets, &[]);
    let h = &rec.header;
    assert_eq!(h.nf, "mininat");
    assert_eq!(h.strategy, Strategy::Seq);
    assert_eq!(h.cores, 1);
    assert_eq!(h.schedule, "threads");
    assert_eq!(h.mutant, None);
    assert_eq!(h.rtm, "not applicable");
    assert_eq!(h.parse_mode, "strict");
    assert_eq!(
        h.renamed,
        vec![("l4.sport".to_string(), "l4.dport".to_string())]
    );
    assert_eq!(rec.entries.len(), trace.len());
    // Each observation is the sequential NF's, in input order.
    let mut nf = MiniNat::with_shards(ParseMode::Strict, 1).unwrap();
    for (i, (e, p)) in rec.entries.iter().zip(&trace).enumerate() {
        assert_eq!(e.observation, nf.process(p), "packet {i}");
        assert_eq!(e.record.queue_pos, i as u64);
        assert_eq!(e.record.now, p.time_ns);
        assert!(e.translations.is_empty());
    }
    assert_eq!(rec.trailer.faults, 1);
    assert!(rec.trailer.conflicts.is_empty());
    // Chunk boundaries change nothing for seq (state and queue positions carry over).
    let chunked = record(&files, "seq2.bin", &packets, &["--chunk", "2"]);
    assert_eq!(chunked.entries, rec.entries);
    assert_eq!(chunked.trailer.faults, 1);
    let packets_stat = rec
        .trailer
        .stats
        .iter()
        .find(|(k, _)| k == "per_core.0.packets")
        .map(|(_, v)| *v);
    assert_eq!(packets_stat, Some(trace.len() as u64));
}

/// The sn run on 2 cores with a co-locating NIC: each core allocates from 1000, so the
/// replies must be renamed to reach their flows.
fn sn_setup(files: &Files, flows: u32) -> (Vec<InputPacket>, PathBuf, PathBuf) {
    let cfg = two_core_nic();
    let nic = NicModel::new(&cfg, 2).unwrap();
    let trace = nat_trace(flows, |i| colocated_server(&nic, i));
    let packets = files.path("p.bin");
    write_packets(&packets, &trace).unwrap();
    (trace, packets, files.rss(&cfg))
}

#[test]
fn record_sn_per_core_allocators_conflict() {
    // Each core numbers its own flows from 1000: two sequential ports map onto one
    // parallel port, which the renamer must report rather than paper over.
    let files = Files::new();
    let flows = 6;
    let (trace, packets, rss) = sn_setup(&files, flows);
    let seq = record(&files, "seq.bin", &packets, &[]);
    let args = [
        "--strategy",
        "sn",
        "--cores",
        "2",
        "--rss",
        path_str(&rss),
        "--instrument",
        "--schedule",
        "seed:2",
    ];
    let par = record(&files, "sn.bin", &packets, &args);
    assert_eq!(par.header.strategy, Strategy::Sn);
    assert_eq!(par.header.cores, 2);
    assert_eq!(par.entries.len(), trace.len());
    for i in 0..flows as usize {
        let req = &par.entries[i];
        assert_eq!(req.record.core, (i % 2) as u16, "flows alternate cores");
        assert_eq!(
            sport(&req.observation),
            BASE_PORT + (i / 2) as u16,
            "request {i}"
        );
        assert_eq!(sport(&seq.entries[i].observation), BASE_PORT + i as u16);
    }
    let conflicts = &par.trailer.conflicts;
    assert!(!conflicts.is_empty());
    for c in conflicts {
        let i = c.index as usize;
        assert!(i < flows as usize, "only requests teach: {c:?}");
        assert_eq!(c.field, 0);
        assert_eq!(c.seq, u64::from(BASE_PORT) + c.index);
        assert_eq!(c.par, u64::from(sport(&par.entries[i].observation)));
    }
    // Instrumented sn: one access log per core, each with its own flows.
    assert_eq!(par.trailer.access_logs.len(), 2);
    for log in &par.trailer.access_logs {
        let log = log.as_ref().expect("instrumented");
        assert!(log.iter().any(|c| c.object == 0), "{log:?}");
    }
}

fn sport(o: &Observation) -> u16 {
    match o {
        Observation::Forward { bytes, .. } => u16::from_be_bytes([bytes[34], bytes[35]]),
        other => panic!("not forwarded: {other:?}"),
    }
}

#[test]
fn record_locks_renames_replies_to_the_parallel_ports() {
    // One shared allocator, but the cores' interleaving numbers flows out of input order:
    // replies must be translated to the ports the parallel run chose.
    let files = Files::new();
    let flows = 8;
    let (_, packets, rss) = sn_setup(&files, flows);
    let seq = record(&files, "seq.bin", &packets, &[]);
    let reply0 = flows as usize + 1;
    let mut renamed_runs = 0;
    for (seed, chunk) in (0..16).flat_map(|s| [(s, "262144"), (s, "3")]) {
        let schedule = format!("seed:{seed}");
        let args = [
            "--strategy",
            "locks",
            "--cores",
            "2",
            "--rss",
            path_str(&rss),
            "--schedule",
            &schedule,
            "--chunk",
            chunk,
        ];
        let par = record(&files, "locks.bin", &packets, &args);
        assert!(
            par.trailer.conflicts.is_empty(),
            "{:?}",
            par.trailer.conflicts
        );
        for i in 0..flows as usize {
            let rep = &par.entries[reply0 + i];
            let seq_port = u64::from(BASE_PORT) + i as u64;
            let par_port = u64::from(sport(&par.entries[i].observation));
            let got: Vec<_> = rep
                .translations
                .iter()
                .map(|t| (t.index, t.field, t.old, t.new))
                .collect();
            let want = if seq_port == par_port {
                vec![]
            } else {
                vec![((reply0 + i) as u64, 0, seq_port, par_port)]
            };
            assert_eq!(got, want, "seed {seed} reply {i}");
            // Translated, the reply reaches its host exactly as in the sequential run.
            assert_eq!(
                rep.observation,
                seq.entries[reply0 + i].observation,
                "seed {seed} reply {i}"
            );
        }
        renamed_runs += usize::from(par.entries.iter().any(|e| !e.translations.is_empty()));
    }
    assert!(
        renamed_runs > 0,
        "some interleaving must reorder the allocations"
    );
}

#[test]
fn record_sn_without_renaming_misroutes_replies() {
    let files = Files::new();
    let flows = 6;
    let (_, packets, rss) = sn_setup(&files, flows);
    let seq = record(&files, "seq.bin", &packets, &[]);
    let args = [
        "--strategy",
        "sn",
        "--cores",
        "2",
        "--rss",
        path_str(&rss),
        "--no-rename",
    ];
    let par = record(&files, "sn.bin", &packets, &args);
    let reply0 = flows as usize + 1;
    let differing = (0..flows as usize)
        .filter(|i| par.entries[reply0 + i].observation != seq.entries[reply0 + i].observation)
        .count();
    assert!(
        differing > 0,
        "without renaming some replies must go astray"
    );
    assert!(par.entries.iter().all(|e| e.translations.is_empty()));
}

#[test]
fn record_locks_deterministic_header_and_commit_order() {
    let files = Files::new();
    let (trace, packets, rss) = sn_setup(&files, 4);
    let args = [
        "--strategy",
        "locks",
        "--cores",
        "2",
        "--rss",
        path_str(&rss),
        "--schedule",
        "seed:5",
        "--batch",
        "2",
    ];
    let a = record(&files, "a.bin", &packets, &args);
    let b = record(&files, "b.bin", &packets, &args);
    assert_eq!(a, b, "a seeded schedule is reproducible");
    assert_eq!(a.header.schedule, "seed:5");
    // Replaying the sequential NF in the recorded commit order, on the translated inputs
    // at the recorded times, gives the recorded observations.
    let mut nf = MiniNat::with_shards(ParseMode::Strict, 1).unwrap();
    let records: Vec<_> = a.entries.iter().map(|e| e.record).collect();
    for i in commit_order(Strategy::Locks, &records) {
        let mut p = trace[i].clone();
        for t in &a.entries[i].translations {
            let mut m = PacketMut::new(&mut p.data, ParseMode::Strict);
            assert!(m.set_l4_dport(t.new as u16));
            m.finish();
        }
        p.time_ns = records[i].now;
        assert_eq!(a.entries[i].observation, nf.process(&p), "packet {i}");
    }
    let stat = |name: &str| {
        a.trailer
            .stats
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| *v)
    };
    assert_eq!(
        stat("per_core.0.packets").unwrap() + stat("per_core.1.packets").unwrap(),
        trace.len() as u64
    );
}

#[test]
fn record_mutants_and_tm_are_labelled() {
    let files = Files::new();
    let (_, packets, rss) = sn_setup(&files, 2);
    let r = record(
        &files,
        "m.bin",
        &packets,
        &[
            "--strategy",
            "locks",
            "--cores",
            "2",
            "--rss",
            path_str(&rss),
            "--schedule",
            "seed:1",
            "--mutant",
            "read-lock-on-write",
        ],
    );
    assert_eq!(r.header.mutant.as_deref(), Some("read-lock-on-write"));
    // The read-lock mutant needs the deterministic schedule: an input error, not a run.
    let out = files.path("never.bin");
    let (code, text) = exit_code(cli(&[
        "record",
        "--input",
        path_str(&packets),
        "--output",
        path_str(&out),
        "--strategy",
        "locks",
        "--cores",
        "2",
        "--rss",
        path_str(&rss),
        "--mutant",
        "read-lock-on-write",
    ]));
    assert_eq!(code, 2);
    assert!(text.contains("deterministic"), "{text}");
    assert!(!out.exists());

    let tm = record(
        &files,
        "tm.bin",
        &packets,
        &[
            "--strategy",
            "tm",
            "--cores",
            "2",
            "--rss",
            path_str(&rss),
            "--no-pin",
        ],
    );
    assert_eq!(tm.header.schedule, "threads-unpinned");
    assert!(
        tm.header.rtm == "used" || tm.header.rtm.starts_with("unavailable"),
        "{}",
        tm.header.rtm
    );
    assert!(tm.entries.iter().all(|e| e.record.wrote));
}

#[test]
fn record_input_errors() {
    let files = Files::new();
    let out = files.path("r.bin");
    let missing = files.path("missing.bin");
    let (code, text) = exit_code(cli(&[
        "record",
        "--input",
        path_str(&missing),
        "--output",
        path_str(&out),
    ]));
    assert_eq!(code, 2);
    assert!(text.contains(path_str(&missing)), "{text}");

    // A packet file cut inside its second packet: the error names the file, the offset
    // and the packet, and no half-written record file is left behind.
    let packets = files.path("p.bin");
    write_packets(&packets, &nat_trace(2, |i| 0xc633_6401 + i)).unwrap();
    let bytes = std::fs::read(&packets).unwrap();
    std::fs::write(&packets, &bytes[..12 + 60 + 20]).unwrap();
    let (code, text) = exit_code(cli(&[
        "record",
        "--input",
        path_str(&packets),
        "--output",
        path_str(&out),
    ]));
    assert_eq!(code, 2);
    assert!(text.contains(path_str(&packets)), "{text}");
    assert!(text.contains("byte offset"), "{text}");
    assert!(text.contains("packet #1"), "{text}");
    assert!(!out.exists(), "partial record file removed");

    std::fs::write(&packets, b"MSTRECS\0garbage").unwrap();
    let (code, text) = exit_code(cli(&[
        "record",
        "--input",
        path_str(&packets),
        "--output",
        path_str(&out),
    ]));
    assert_eq!(code, 2);
    assert!(text.contains("byte offset 0: expected the magic"), "{text}");
}

#[test]
fn recorded_files_are_the_writers_own_encoding() {
    // `record` encodes observations on the workers and stitches entries together in
    // input order; the file must be byte for byte what the writer makes of the same
    // entries, whole or patched, whatever the chunking.
    let files = Files::new();
    let (trace, packets, rss) = sn_setup(&files, 12);
    let runs: Vec<Vec<&str>> = vec![
        vec![],
        vec!["--strategy", "sn", "--cores", "2", "--rss", path_str(&rss)],
        vec![
            "--strategy",
            "sn",
            "--cores",
            "2",
            "--rss",
            path_str(&rss),
            "--no-rename",
            "--instrument",
        ],
        vec![
            "--strategy",
            "locks",
            "--cores",
            "2",
            "--schedule",
            "seed:3",
        ],
    ];
    for run in &runs {
        for patch in [false, true] {
            for chunk in ["1", "5", "16384"] {
                let out = files.path("r.bin");
                let mut args = vec![
                    "record",
                    "--input",
                    path_str(&packets),
                    "--output",
                    path_str(&out),
                    "--chunk",
                    chunk,
                ];
                args.extend_from_slice(run);
                if patch {
                    args.push("--patch-frames");
                }
                cli(&args).unwrap();
                let bytes = std::fs::read(&out).unwrap();
                let file = RecordFile::read_with_inputs(&out, &trace).unwrap();
                assert_eq!(file.entries.len(), trace.len());
                let again = files.path("again.bin");
                let mut w = RecordFileWriter::create(&again, &file.header).unwrap();
                for (e, p) in file.entries.iter().zip(&trace) {
                    w.entry_with_input(e, Some(&p.data)).unwrap();
                }
                w.finish(&file.trailer).unwrap();
                assert!(
                    std::fs::read(&again).unwrap() == bytes,
                    "{run:?}, patched {patch}, chunk {chunk}"
                );
            }
        }
    }
}
