//! DPDK's Environment Abstraction Layer: initialised once per process, from the thread
//! that becomes the main lcore.

use std::ffi::{c_char, c_int, CString};
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, Ordering};

use dpdk_sys as sys;

use crate::error::{log_tail, DpdkError};

/// Set by the first [`Eal::init`]: DPDK cannot be initialised twice in one process, not
/// even after a failed attempt or `rte_eal_cleanup`.
static STARTED: AtomicBool = AtomicBool::new(false);

/// The initialised EAL. Owned by the thread that called [`Eal::init`], which is DPDK's
/// main lcore (hence not `Send`): runs must be started from it. Dropping it calls
/// `rte_eal_cleanup`; ports and mempools borrow it, so they are released first.
#[derive(Debug)]
pub struct Eal {
    log: String,
    lcores: Vec<u32>,
    ports: u16,
    _main_thread: PhantomData<*const ()>,
}

impl Eal {
    /// Initialises EAL with `args` (without a program name), e.g.
    /// `["--no-huge", "-m", "256", "--no-pci", "--no-shconf", "-l", "0-1",
    /// "--vdev=net_null0"]`. EAL's log during init is captured (see [`Eal::init_log`])
    /// and quoted in errors, which name the cause: missing hugepages, a virtual device
    /// that failed to probe, EAL's runtime files, or a bad argument.
    pub fn init<I, S>(args: I) -> Result<Eal, DpdkError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut owned = vec![CString::new("maestro-dpdk").unwrap_or_default()];
        for a in args {
            let a = a.as_ref();
            owned.push(CString::new(a).map_err(|_| DpdkError::NulInArgument { arg: a.into() })?);
        }
        if STARTED.swap(true, Ordering::SeqCst) {
            return Err(DpdkError::AlreadyInitialized);
        }
        // EAL permutes argv and may keep pointers into it: both live as long as the
        // process (a few bytes, once).
        let argv: &'static mut [*mut c_char] = Box::leak(
            owned
                .into_iter()
                .map(CString::into_raw)
                .collect::<Vec<_>>()
                .into_boxed_slice(),
        );
        let argc = c_int::try_from(argv.len()).unwrap_or(c_int::MAX);
        let capture = LogCapture::start();
        // SAFETY: argv holds `argc` valid NUL-terminated strings that are never freed.
        let ret = unsafe { sys::rte_eal_init(argc, argv.as_mut_ptr()) };
        // SAFETY: reads this thread's rte_errno.
        let errno = unsafe { sys::maestro_errno() };
        let log = capture.finish();
        if ret < 0 {
            return Err(init_error(errno, log));
        }
        if let Some(reason) = failed_probe(&log) {
            // EAL carries on without a device that failed to probe; a run would then use
            // the wrong ports, so this is an error here.
            // SAFETY: EAL is initialised and nothing else uses it yet.
            unsafe { sys::rte_eal_cleanup() };
            return Err(DpdkError::BadVdev {
                reason,
                log: log_tail(&log),
            });
        }
        // SAFETY: EAL is initialised.
        let (lcores, ports) = unsafe {
            let main = sys::rte_get_main_lcore();
            let mut lcores = vec![main];
            let mut i = sys::rte_get_next_lcore(u32::MAX, 1, 0);
            while i < sys::RTE_MAX_LCORE {
                lcores.push(i);
                i = sys::rte_get_next_lcore(i, 1, 0);
            }
            (lcores, sys::rte_eth_dev_count_avail())
        };
        Ok(Eal {
            log,
            lcores,
            ports,
            _main_thread: PhantomData,
        })
    }

    /// EAL's log lines written during init (device probes, memory, IOVA mode).
    pub fn init_log(&self) -> &str {
        &self.log
    }

    /// The lcores EAL runs, the main lcore (this thread) first: core `c` of a run
    /// executes on `lcores()[c]`.
    pub fn lcores(&self) -> &[u32] {
        &self.lcores
    }

    /// Ethernet ports DPDK found (probed NICs and `--vdev`s), numbered from 0.
    pub fn port_count(&self) -> u16 {
        self.ports
    }

    /// Fails with the fix when DPDK found no ports.
    pub fn require_ports(&self) -> Result<u16, DpdkError> {
        if self.ports == 0 {
            Err(DpdkError::NoPorts)
        } else {
            Ok(self.ports)
        }
    }
}

impl Drop for Eal {
    fn drop(&mut self) {
        // SAFETY: called once, from the main lcore (Eal is not Send), after every port
        // and mempool (they borrow the Eal) is gone.
        unsafe { sys::rte_eal_cleanup() };
    }
}

/// Sorts a failed init by its log: the fixes differ.
fn init_error(errno: i32, log: String) -> DpdkError {
    let lower = log.to_ascii_lowercase();
    let line_with = |needle: &str| {
        log.lines()
            .find(|l| l.to_ascii_lowercase().contains(needle))
            .map(|l| l.trim().to_string())
    };
    let tail = log_tail(&log);
    if lower.contains("hugepage") {
        let reason = line_with("cannot get hugepage")
            .or_else(|| line_with("hugepage"))
            .unwrap_or_default();
        return DpdkError::NoHugepages { reason, log: tail };
    }
    if let Some(reason) = line_with("parse device").or_else(|| failed_probe(&log)) {
        return DpdkError::BadVdev { reason, log: tail };
    }
    if let Some(reason) = line_with("cannot create lock")
        .or_else(|| line_with("/var/run/dpdk"))
        .or_else(|| line_with("cannot init config"))
    {
        return DpdkError::SharedConfig { reason, log: tail };
    }
    let reason = log
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty() && !l.starts_with(' '))
        .map(|l| l.trim().to_string())
        .unwrap_or_else(|| crate::error::strerror(errno));
    DpdkError::EalInit {
        errno,
        reason,
        log: tail,
    }
}

/// A device that EAL could not probe: the driver's own complaint and EAL's line.
fn failed_probe(log: &str) -> Option<String> {
    let lines: Vec<&str> = log.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.contains("failed to initialize") && l.contains("device"))?;
    let before = at
        .checked_sub(1)
        .map(|b| lines[b].trim())
        .filter(|l| !l.starts_with("EAL:"));
    Some(match before {
        Some(cause) => format!("{}: {cause}", lines[at].trim()),
        None => lines[at].trim().to_string(),
    })
}

/// EAL's log sent to memory (open_memstream) while it initialises.
struct LogCapture {
    file: *mut libc::FILE,
    buf: Box<(*mut c_char, libc::size_t)>,
}

impl LogCapture {
    fn start() -> LogCapture {
        let mut buf = Box::new((std::ptr::null_mut::<c_char>(), 0usize));
        // SAFETY: open_memstream writes the buffer pointer and size into `buf`, which
        // is boxed so that the addresses stay valid until `finish`.
        let file = unsafe { libc::open_memstream(&mut buf.0, &mut buf.1) };
        if !file.is_null() {
            // SAFETY: a valid stream; EAL writes its log there until reset.
            unsafe { sys::rte_openlog_stream(file.cast()) };
        }
        LogCapture { file, buf }
    }

    /// Restores EAL's own log stream and returns what was captured.
    fn finish(self) -> String {
        if self.file.is_null() {
            return String::new();
        }
        // SAFETY: back to EAL's default stream before the memstream is closed; then
        // fclose publishes the final buffer and size, which we copy and free.
        unsafe {
            sys::rte_openlog_stream(std::ptr::null_mut());
            libc::fclose(self.file);
            let (ptr, len) = *self.buf;
            if ptr.is_null() {
                return String::new();
            }
            let bytes = std::slice::from_raw_parts(ptr.cast::<u8>(), len);
            let text = String::from_utf8_lossy(bytes).into_owned();
            libc::free(ptr.cast());
            text
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_errors_name_their_cause() {
        let huge = "EAL: Detected CPU lcores: 2\nEAL: No free 2048 kB hugepages reported on node 0\n\
                    EAL: FATAL: Cannot get hugepage information.\nEAL: Cannot get hugepage information.\n";
        match init_error(13, huge.into()) {
            DpdkError::NoHugepages { reason, .. } => {
                assert!(
                    reason.contains("Cannot get hugepage information"),
                    "{reason}"
                )
            }
            e => panic!("{e}"),
        }
        let vdev = "EAL: Detected CPU lcores: 2\nEAL: failed to parse device \"net_foo0\"\n\
                    EAL: Unable to parse device 'net_foo0'\n";
        match init_error(19, vdev.into()) {
            DpdkError::BadVdev { reason, .. } => assert!(reason.contains("net_foo0"), "{reason}"),
            e => panic!("{e}"),
        }
        let other = "EAL: Detected CPU lcores: 2\nEAL: Option --legacy-mem is not compatible with --in-memory\n";
        match init_error(22, other.into()) {
            DpdkError::EalInit { reason, errno, .. } => {
                assert_eq!(errno, 22);
                assert!(reason.contains("--legacy-mem"), "{reason}");
            }
            e => panic!("{e}"),
        }
    }

    #[test]
    fn failed_probes_quote_the_driver() {
        let log = "EAL: Selected IOVA mode 'VA'\n\
                   open_single_rx_pcap(): Couldn't open /x.pcap: No such file or directory\n\
                   vdev_probe(): failed to initialize net_pcap0 device\n\
                   EAL: Bus (vdev) probe failed.\n";
        let reason = failed_probe(log).unwrap_or_default();
        assert!(reason.contains("net_pcap0"), "{reason}");
        assert!(reason.contains("/x.pcap"), "{reason}");
        assert_eq!(failed_probe("EAL: Selected IOVA mode 'VA'\n"), None);
    }
}
