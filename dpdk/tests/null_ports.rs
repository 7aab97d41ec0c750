//! EAL with net_null vdevs (endless packet sources and sinks with an emulated RETA):
//! RSS configuration mapped from maestro's NIC model and read back from the device,
//! the configuration errors, and two-core runs (`sn` stopped by a flag, `locks` by a
//! packet count, `tm` by a duration) with every packet accounted for. One test
//! function: EAL initialises once per process.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{eal_or_skip, eal_without_nic, FlowFw};
use maestro_dpdk::{
    fit_reta, port_info, run, Clock, DpdkError, DpdkRunOptions, Mempool, Port, PortConfig,
    RssConfig, StopWhen, MAX_BURST,
};
use maestro_runtime::exec::{GeneratedNf, NicConfig, Strategy};

#[test]
fn null_ports_take_the_nic_model_and_run() {
    let mut args = eal_without_nic();
    args.extend((0..5).map(|i| format!("--vdev=net_null{i}")));
    let Some(eal) = eal_or_skip(args) else {
        return;
    };
    assert_eq!(eal.require_ports().expect("ports"), 5);
    let info = port_info(&eal, 0).expect("info");
    assert_eq!(info.driver, "net_null");
    assert!(info.has_rss(), "net_null emulates a RETA: {info:?}");
    assert!(matches!(
        port_info(&eal, 9),
        Err(DpdkError::NoSuchPort {
            port: 9,
            available: 5
        })
    ));
    let pool = Arc::new(Mempool::new(&eal, "null", 8191, 256).expect("mempool"));
    assert!(matches!(
        Mempool::new(&eal, "a-name-longer-than-dpdk-allows", 64, 0),
        Err(DpdkError::MempoolName { .. })
    ));

    // The NIC model's configuration (a 512-entry round-robin RETA over 2 cores, as
    // `maestro rss --cores 2` makes it) lands in the device's 128-entry table.
    let mut cfg = NicConfig::default_for(3).with_cores(2);
    cfg.reta = (0..512).map(|i| (i % 2) as u16).collect();
    let rss = RssConfig::from_nic(&cfg, 0);
    let port0 = Port::configure(&eal, 0, &PortConfig::new(2).with_rss(rss.clone()), &pool)
        .expect("configure with RSS");
    let want = fit_reta(&cfg.reta, usize::from(info.reta_size)).expect("periodic");
    assert_eq!(port0.reta(), Some(&want[..]));
    assert_eq!(port0.device_reta().expect("query"), Some(want.clone()));

    // What does not fit is refused before DPDK sees it, naming the fix.
    let mut skewed = rss.clone();
    skewed.reta = (0..512).map(|i| u16::from(i % 3 == 0)).collect();
    let e = Port::configure(&eal, 1, &PortConfig::new(2).with_rss(skewed), &pool)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(e.contains("--reta-size 128"), "{e}");
    let mut wide = rss.clone();
    wide.reta = (0..128).map(|i| (i % 4) as u16).collect();
    assert!(matches!(
        Port::configure(&eal, 1, &PortConfig::new(2).with_rss(wide), &pool),
        Err(DpdkError::RetaQueue {
            queue: 2,
            queues: 2,
            ..
        })
    ));
    let mut short_key = rss.clone();
    short_key.key.truncate(16);
    assert!(matches!(
        Port::configure(&eal, 1, &PortConfig::new(2).with_rss(short_key), &pool),
        Err(DpdkError::KeyLength { len: 16, .. })
    ));
    assert!(matches!(
        Port::configure(&eal, 1, &PortConfig::new(5000), &pool),
        Err(DpdkError::TooManyQueues { .. })
    ));

    // A queue has one user at a time.
    let q = port0.rx_queue(1).expect("free queue");
    assert!(port0.rx_queue(1).is_none(), "claimed twice");
    drop(q);
    assert!(port0.rx_queue(1).is_some(), "released on drop");
    assert!(port0.rx_queue(2).is_none(), "no such queue");

    // A run on three ports: port 0 hashed by the model, ports 1 and 2 unlisted
    // (everything to reta[0]). net_null delivers endless non-IP frames: port 0's are
    // flooded (one mbuf reused, one copied), the others' dropped.
    let mut ports = vec![port0];
    for id in 1..FlowFw::PORT_COUNT {
        let rss = RssConfig::from_nic(&cfg, id + 10);
        ports.push(
            Port::configure(&eal, id, &PortConfig::new(2).with_rss(rss), &pool).expect("configure"),
        );
    }
    let flag = Arc::new(AtomicBool::new(false));
    let stopper = {
        let flag = Arc::clone(&flag);
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            flag.store(true, Ordering::Relaxed);
        })
    };
    let opts = DpdkRunOptions {
        strategy: Strategy::Sn,
        cores: 2,
        clock: Clock::Auto,
        stop: StopWhen {
            flag: Some(flag),
            ..StopWhen::default()
        },
        ..DpdkRunOptions::default()
    };
    let report = run::<FlowFw>(&eal, &ports, &opts).expect("run");
    stopper.join().expect("stopper");
    report.check_accounting().expect("accounting");
    assert_eq!(report.per_core.len(), 2);
    for c in &report.per_core {
        assert!(c.rx > 1000, "core {} received: {c:?}", c.core);
        assert!(c.flooded > 0 && c.dropped > 0, "{c:?}");
        assert_eq!(c.untimed, c.rx, "net_null has no timestamps: TSC time");
    }
    for p in &report.per_port {
        assert_eq!(
            p.device.ipackets, p.rx,
            "port {}: device and run agree",
            p.port
        );
        assert_eq!(p.device.opackets, p.tx, "port {}", p.port);
    }
    assert_eq!(report.per_port[0].tx, 0, "nothing is sent to port 0");
    assert!(report.per_port[1].tx > 0 && report.per_port[2].tx > 0);
    assert!(report.mpps() > 0.0);
    eprintln!(
        "net_null, 2 cores: {} packets in {:.3} s, {:.2} Mpps",
        report.rx(),
        report.seconds,
        report.mpps()
    );

    // locks and tm run the runtime's protocols on the lcores. net_null's frames are
    // not IP: port 0's are flooded by the read pass (no write needed), the others
    // dropped, so every packet is a successful read (locks) or a transaction (tm).
    // Stopped by a packet count, then by a duration.
    let locks = DpdkRunOptions {
        strategy: Strategy::Locks,
        stop: StopWhen {
            packets: Some(200_000),
            ..StopWhen::default()
        },
        ..opts.clone()
    };
    let report = run::<FlowFw>(&eal, &ports, &locks).expect("locks run");
    report.check_accounting().expect("locks accounting");
    assert!(
        report.rx() >= 200_000,
        "stopped at the count: {}",
        report.rx()
    );
    assert!(
        report.rx() < 200_000 + 4 * MAX_BURST as u64 * 2,
        "stopped soon after the count: {}",
        report.rx()
    );
    for c in &report.per_core {
        assert!(c.rx > 0, "core {} ran: {c:?}", c.core);
        assert_eq!(c.protocol.packets, c.rx, "{c:?}");
        assert_eq!(c.protocol.read_passes, c.rx, "every packet starts reading");
        assert_eq!((c.protocol.aborts, c.protocol.writes), (0, 0), "{c:?}");
        assert!(c.records.is_empty(), "records only when asked for");
    }
    let tm = DpdkRunOptions {
        strategy: Strategy::Tm,
        stop: StopWhen {
            duration: Some(Duration::from_millis(200)),
            ..StopWhen::default()
        },
        ..opts.clone()
    };
    let report = run::<FlowFw>(&eal, &ports, &tm).expect("tm run");
    report.check_accounting().expect("tm accounting");
    assert!(
        (0.15..5.0).contains(&report.seconds),
        "stopped by the duration: {} s",
        report.seconds
    );
    for c in &report.per_core {
        assert!(c.rx > 0, "core {} ran: {c:?}", c.core);
        assert_eq!(
            c.protocol.tm_commits + c.protocol.tm_fallbacks,
            c.rx,
            "one critical section per packet: {c:?}"
        );
    }
    eprintln!("tm on net_null: RTM {:?}", report.rtm);

    // Shapes the backend refuses.
    let seq = DpdkRunOptions {
        strategy: Strategy::Seq,
        ..opts.clone()
    };
    assert!(matches!(
        run::<FlowFw>(&eal, &ports, &seq),
        Err(DpdkError::QueuesPerCore {
            have: 2,
            cores: 1,
            ..
        })
    ));
    let three = DpdkRunOptions {
        cores: 3,
        ..opts.clone()
    };
    assert!(matches!(
        run::<FlowFw>(&eal, &ports, &three),
        Err(DpdkError::QueuesPerCore { .. }) | Err(DpdkError::NotEnoughLcores { .. })
    ));
    assert!(matches!(
        run::<FlowFw>(&eal, &ports[..2], &opts),
        Err(DpdkError::PortCount {
            want: 3,
            got: 2,
            ..
        })
    ));
    for p in ports {
        p.close().expect("close");
    }
    assert_eq!(pool.in_use(), 0, "every mbuf went back to the pool");
}
