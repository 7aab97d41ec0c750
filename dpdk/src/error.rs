//! Errors of the DPDK backend. Each names the DPDK call or the device, DPDK's reason
//! (`rte_strerror`), and the fix.

use maestro_runtime::exec::ExecError;

/// The last lines of EAL's log kept in an error (the whole log is in
/// [`crate::Eal::init_log`] on success).
pub(crate) const LOG_TAIL_LINES: usize = 12;

#[derive(Debug, thiserror::Error)]
pub enum DpdkError {
    #[error(
        "DPDK's EAL is already initialised in this process: rte_eal_init runs once per \
         process; keep the one `Eal` and pass it around (tests: one EAL test binary each, \
         or one test function)"
    )]
    AlreadyInitialized,

    #[error("EAL argument {arg:?} contains a NUL byte; remove it")]
    NulInArgument { arg: String },

    #[error(
        "EAL init failed: no usable hugepages ({reason}). For tests and development pass \
         `--no-huge -m 256` (and `--no-shconf`); for speed mount hugetlbfs and reserve pages: \
         `mount -t hugetlbfs nodev /dev/hugepages` and \
         `echo 1024 > /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages`.\nEAL log:\n{log}"
    )]
    NoHugepages { reason: String, log: String },

    #[error(
        "EAL init failed: a virtual device could not be created ({reason}). Check the --vdev \
         spelling (`net_pcap0,rx_pcap=IN.pcap,tx_pcap=OUT.pcap`, `net_ring0`, `net_null0`), \
         that the files it names exist and are readable, and that its driver is in DPDK's \
         plugin folder (Debian: /usr/lib/x86_64-linux-gnu/dpdk/pmds-23.0, package \
         librte-net-pcap23 etc.; another folder: pass `-d <folder>`).\nEAL log:\n{log}"
    )]
    BadVdev { reason: String, log: String },

    #[error(
        "EAL init failed: cannot create its runtime files ({reason}). Pass `--no-shconf` (or \
         `--in-memory` with hugepages), or give each process its own `--file-prefix`; as \
         non-root, /var/run/dpdk must be writable.\nEAL log:\n{log}"
    )]
    SharedConfig { reason: String, log: String },

    #[error("EAL init failed: {reason} (rte_errno {errno}).\nEAL log:\n{log}")]
    EalInit {
        errno: i32,
        reason: String,
        log: String,
    },

    #[error(
        "no Ethernet ports: DPDK found no device. Bind a NIC to vfio-pci \
         (`dpdk-devbind.py --bind=vfio-pci 0000:03:00.0`) or add virtual devices \
         (`--vdev=net_pcap0,rx_pcap=IN.pcap,tx_pcap=OUT.pcap`, `--vdev=net_null0`)"
    )]
    NoPorts,

    #[error(
        "port {port} does not exist: DPDK has {available} port(s) (0..{available}); check \
         the port list against `--vdev`/bound NICs"
    )]
    NoSuchPort { port: u16, available: u16 },

    #[error("port {port}: {call} failed: {reason} ({code}); {fix}")]
    PortCall {
        port: u16,
        call: &'static str,
        code: i32,
        reason: String,
        fix: &'static str,
    },

    #[error(
        "port {port} ({driver}): {what} {wanted} queue(s) but the device has at most {max}; \
         run on fewer cores, or give a pcap vdev one rx_pcap/tx_pcap per queue"
    )]
    TooManyQueues {
        port: u16,
        driver: String,
        what: &'static str,
        wanted: u16,
        max: u16,
    },

    #[error(
        "port {port} ({driver}) has no RSS (reta_size {reta_size}, hash types {offloads:#x}) \
         but {queues} receive queues were asked for with an RSS configuration; use one queue, \
         or feed the queues yourself (pcap vdevs: one rx_pcap per queue, split with \
         maestro_dpdk::pcap::split_capture) and configure without RSS"
    )]
    NoRss {
        port: u16,
        driver: String,
        reta_size: u16,
        offloads: u64,
        queues: u16,
    },

    #[error(
        "port {port} ({driver}) cannot hash {missing}: it supports {supported}. The NIC would \
         steer such packets differently from maestro's NIC model; solve the RSS configuration \
         with hash types this NIC has"
    )]
    RssTypesUnsupported {
        port: u16,
        driver: String,
        missing: String,
        supported: String,
    },

    #[error(
        "port {port} ({driver}): the {ours}-entry RETA does not fit the device's {device}-entry \
         table exactly (it repeats only if the smaller divides it and the larger is periodic); \
         solve with `maestro rss --reta-size {device}`"
    )]
    RetaSize {
        port: u16,
        driver: String,
        ours: usize,
        device: u16,
    },

    #[error(
        "port {port} ({driver}): RETA entry {bucket} names queue {queue}, but the port has \
         {queues} receive queue(s); solve the RSS configuration for this many cores"
    )]
    RetaQueue {
        port: u16,
        driver: String,
        bucket: usize,
        queue: u16,
        queues: u16,
    },

    #[error(
        "port {port} ({driver}): RSS key of {len} bytes, but maestro's keys are 40 or 52 \
         bytes (and the device takes {device})"
    )]
    KeyLength {
        port: u16,
        driver: String,
        len: usize,
        device: u8,
    },

    #[error(
        "port {port} ({driver}): the RETA read back differs from the one written at bucket \
         {bucket} (wrote queue {wrote}, device has {read}); the PMD ignored the update"
    )]
    RetaReadBack {
        port: u16,
        driver: String,
        bucket: usize,
        wrote: u16,
        read: u16,
    },

    #[error(
        "cannot create mempool {name:?} of {mbufs} mbufs: {reason} ({code}); give EAL more \
         memory (`-m 512`, more hugepages) or ask for fewer mbufs"
    )]
    Mempool {
        name: String,
        mbufs: u32,
        code: i32,
        reason: String,
    },

    #[error("mempool name {name:?} must be 1..=25 ASCII characters without NUL (DPDK's limit)")]
    MempoolName { name: String },

    #[error(
        "the run needs {cores} lcore(s) but EAL has {lcores}: start EAL with `-l 0-{last}` \
         (or `--lcores` mapping several lcores to fewer CPUs)"
    )]
    NotEnoughLcores {
        cores: usize,
        lcores: usize,
        last: usize,
    },

    #[error("lcore {lcore} is busy (rte_eal_remote_launch returned {code}); one run at a time")]
    LcoreBusy { lcore: u32, code: i32 },

    #[error(
        "{nf} has {want} port(s) but the run was given {got}: pass one configured DPDK port \
         per NF port, in NF port order"
    )]
    PortCount {
        nf: &'static str,
        want: u16,
        got: usize,
    },

    #[error(
        "port {port} has {have} {what} queue(s) but the run uses {cores} core(s): configure \
         each port with one receive and one transmit queue per core"
    )]
    QueuesPerCore {
        port: u16,
        what: &'static str,
        have: u16,
        cores: usize,
    },

    #[error("a run needs at least one core and a burst of 1..=512 packets (DPDK uses 32)")]
    BadRunShape,

    #[error("NIC configuration: {0}")]
    Nic(#[from] ExecError),

    #[error("cannot allocate {nf}'s state: {reason}")]
    NfState { nf: &'static str, reason: String },

    #[error("a core panicked while running the NF: {message}")]
    CorePanicked { message: String },

    #[error("{path}: {reason}")]
    Capture { path: String, reason: String },
}

/// DPDK's text for an errno value (positive or negative).
pub(crate) fn strerror(code: i32) -> String {
    // SAFETY: rte_strerror returns a pointer to a static or thread-local string.
    let p = unsafe { dpdk_sys::rte_strerror(code.abs()) };
    if p.is_null() {
        return format!("error {code}");
    }
    // SAFETY: a NUL-terminated C string owned by DPDK.
    unsafe { std::ffi::CStr::from_ptr(p) }
        .to_string_lossy()
        .into_owned()
}

/// The last `LOG_TAIL_LINES` lines of a log.
pub(crate) fn log_tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    let start = lines.len().saturating_sub(LOG_TAIL_LINES);
    lines[start..].join("\n")
}
