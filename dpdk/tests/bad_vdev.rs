//! A virtual device that cannot probe is an init error that quotes the driver (EAL
//! itself would carry on without the port), and EAL cannot be started twice.

use maestro_dpdk::{DpdkError, Eal};

#[test]
fn a_vdev_that_fails_to_probe_is_named() {
    let missing = std::env::temp_dir().join("maestro-dpdk-no-such-capture.pcap");
    let _ = std::fs::remove_file(&missing);
    let vdev = format!("--vdev=net_pcap0,rx_pcap={}", missing.display());
    let args = [
        "--no-huge",
        "-m",
        "128",
        "--no-pci",
        "--no-shconf",
        "--no-telemetry",
        "-l",
        "0",
        vdev.as_str(),
    ];
    match Eal::init(args) {
        Err(DpdkError::BadVdev { reason, log }) => {
            assert!(reason.contains("net_pcap0"), "{reason}");
            assert!(
                reason.contains("no-such-capture"),
                "the driver's complaint: {reason}"
            );
            assert!(
                log.contains("failed to initialize"),
                "EAL's log is kept: {log}"
            );
        }
        Err(e @ (DpdkError::SharedConfig { .. } | DpdkError::NoHugepages { .. })) => {
            eprintln!("SKIPPED: DPDK's EAL cannot start on this machine: {e}");
            return;
        }
        Err(e) => panic!("expected a BadVdev error, got: {e}"),
        Ok(eal) => panic!("a missing capture was accepted: {}", eal.init_log()),
    }
    assert!(matches!(
        Eal::init(["--no-huge"]),
        Err(DpdkError::AlreadyInitialized)
    ));
    assert!(matches!(
        Eal::init(["--vdev=a\0b"]),
        Err(DpdkError::NulInArgument { .. })
    ));
}
