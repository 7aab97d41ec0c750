//! Intel RTM (TSX) for the `tm` strategy: detection, transactions, and the global
//! fallback lock that Maestro's `boilerplate/tm.c` uses after `HTM_SGL_INIT_BUDGET`
//! failed attempts.
//!
//! Transactions are written with inline `asm!` (`xbegin`/`xend`/`xabort`/`xtest`); the
//! `_xbegin` intrinsics are unstable. `xbegin`'s abort target is the instruction right
//! after it, so one `asm!` block returns in both cases, like the C intrinsic: `eax` stays
//! `u32::MAX` when the transaction started and holds the abort status otherwise. On an
//! abort the CPU restores every register and discards every transactional write, so the
//! program is back in the state the compiler expects right after that `asm!` block.
//!
//! Without RTM (other CPUs, other architectures, TSX disabled by the OS) every critical
//! section takes the fallback lock, and [`rtm_status`] says why.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

use super::lock::Backoff;

/// Whether a `tm` run used hardware transactions.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RtmStatus {
    /// Critical sections ran as RTM transactions (the fallback lock after retries).
    Used,
    /// No RTM; every critical section took the fallback lock. Says why.
    Unavailable(String),
    /// The strategy is not `tm`.
    NotApplicable,
}

/// The abort code a transaction uses when it finds the fallback lock held.
pub const ABORT_LOCK_HELD: u8 = 0xff;

/// Whether this CPU runs RTM transactions (listed by CPUID and not always aborting).
/// Probed once per process.
pub fn rtm_available() -> bool {
    rtm_status() == RtmStatus::Used
}

/// [`RtmStatus::Used`] when transactions work here, else why not. Probed once.
pub fn rtm_status() -> RtmStatus {
    static STATUS: OnceLock<RtmStatus> = OnceLock::new();
    STATUS.get_or_init(probe).clone()
}

#[cfg(target_arch = "x86_64")]
fn probe() -> RtmStatus {
    use std::arch::x86_64::{__cpuid_count, __get_cpuid_max};
    // Leaf 7 is read only if the maximum basic leaf says it exists.
    let (max, _) = __get_cpuid_max(0);
    let listed = max >= 7 && __cpuid_count(7, 0).ebx & (1 << 11) != 0;
    if !listed {
        return RtmStatus::Unavailable("the CPU does not list Intel RTM (TSX) in CPUID".into());
    }
    // With TSX disabled by microcode or the kernel (`tsx=off`, RTM_ALWAYS_ABORT) CPUID
    // may still list RTM while every transaction aborts with status 0.
    for _ in 0..3 {
        // SAFETY: CPUID lists RTM, so xbegin/xend are valid instructions; the
        // transaction is empty.
        let status = unsafe { x86::xbegin() };
        if status == x86::STARTED {
            // SAFETY: inside the transaction that just started.
            unsafe { x86::xend() };
            return RtmStatus::Used;
        }
        if status != 0 {
            // A transient abort (interrupt, conflict): transactions can commit.
            return RtmStatus::Used;
        }
    }
    RtmStatus::Unavailable("RTM listed but every transaction aborts (tsx=off?)".into())
}

#[cfg(not(target_arch = "x86_64"))]
fn probe() -> RtmStatus {
    RtmStatus::Unavailable("Intel RTM (TSX) exists only on x86_64".into())
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use core::arch::asm;

    /// `xbegin`'s result when the transaction started.
    pub const STARTED: u32 = u32::MAX;

    /// Starts a transaction: [`STARTED`], or the abort status after an abort.
    ///
    /// # Safety
    /// The CPU must support RTM (else `#UD`).
    #[inline(always)]
    pub unsafe fn xbegin() -> u32 {
        let status: u32;
        asm!("mov eax, -1", "xbegin 2f", "2:", out("eax") status, options(nostack));
        status
    }

    /// Commits the current transaction.
    ///
    /// # Safety
    /// Only inside a transaction (else `#GP`).
    #[inline(always)]
    pub unsafe fn xend() {
        asm!("xend", options(nostack));
    }

    /// Aborts the current transaction with code [`super::ABORT_LOCK_HELD`] (a no-op
    /// outside a transaction).
    ///
    /// # Safety
    /// The CPU must support RTM.
    #[inline(always)]
    pub unsafe fn xabort_lock_held() {
        asm!("xabort 0xff", options(nostack));
    }

    /// Whether the CPU is inside a transaction.
    ///
    /// # Safety
    /// The CPU must support RTM.
    #[inline(always)]
    pub unsafe fn xtest() -> bool {
        let inside: u8;
        asm!("xtest", "setnz {0}", out(reg_byte) inside, options(nostack, nomem));
        inside != 0
    }

    /// The explicit-abort bit of the status and its code.
    pub fn explicit_code(status: u32) -> Option<u8> {
        (status & 1 != 0).then_some((status >> 24) as u8)
    }
}

/// Whether the calling code runs inside an RTM transaction (always false without RTM).
pub fn in_transaction() -> bool {
    #[cfg(target_arch = "x86_64")]
    if rtm_available() {
        // SAFETY: RTM is available.
        return unsafe { x86::xtest() };
    }
    false
}

/// How one critical section ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TmOutcome {
    /// Committed as a transaction (false: ran under the fallback lock).
    pub committed: bool,
    /// Transactions that aborted before.
    pub aborts: u32,
}

/// The `tm` critical section: RTM transactions that abort while the fallback lock is
/// held, `retries` attempts, then the global fallback lock (a test-and-test-and-set spin
/// lock on its own cache line).
#[derive(Debug)]
pub struct TmLock {
    word: FallbackWord,
    use_rtm: bool,
}

#[repr(align(128))]
#[derive(Debug, Default)]
struct FallbackWord(AtomicBool);

impl TmLock {
    /// A lock that uses RTM iff `use_rtm` and the CPU has it.
    pub fn new(use_rtm: bool) -> TmLock {
        TmLock {
            word: FallbackWord::default(),
            use_rtm: use_rtm && rtm_available(),
        }
    }

    /// Whether critical sections try hardware transactions first.
    pub fn uses_rtm(&self) -> bool {
        self.use_rtm
    }

    fn lock_fallback(&self) {
        let mut backoff = Backoff::default();
        loop {
            if self
                .word
                .0
                .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                return;
            }
            while self.word.0.load(Ordering::Relaxed) {
                backoff.snooze();
            }
        }
    }

    fn unlock_fallback(&self) {
        self.word.0.store(false, Ordering::Release);
    }

    /// Runs `f` atomically with respect to every other critical section of this lock.
    /// `f` may run (and be rolled back) several times; only the run that commits, or the
    /// one under the fallback lock, has effects. It must not do what aborts every
    /// transaction (system calls, I/O) if transactions are to commit.
    pub fn run<R>(&self, retries: u32, mut f: impl FnMut() -> R) -> (R, TmOutcome) {
        let mut aborts = 0u32;
        #[cfg(target_arch = "x86_64")]
        if self.use_rtm {
            for _ in 0..retries {
                // SAFETY: `use_rtm` implies the CPU has RTM (checked in `new`).
                let status = unsafe { x86::xbegin() };
                if status == x86::STARTED {
                    // Reading the lock word puts it in the read set: a thread taking the
                    // fallback lock later aborts this transaction.
                    if self.word.0.load(Ordering::Relaxed) {
                        // SAFETY: inside the transaction started above.
                        unsafe { x86::xabort_lock_held() };
                    }
                    let r = f();
                    // SAFETY: still inside the transaction (an abort would have jumped
                    // back to xbegin).
                    unsafe { x86::xend() };
                    return (
                        r,
                        TmOutcome {
                            committed: true,
                            aborts,
                        },
                    );
                }
                aborts += 1;
                if x86::explicit_code(status) == Some(ABORT_LOCK_HELD) {
                    // Wait for the holder instead of burning attempts against it.
                    let mut backoff = Backoff::default();
                    while self.word.0.load(Ordering::Relaxed) {
                        backoff.snooze();
                    }
                }
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = retries;
        self.lock_fallback();
        // Unlocks even if `f` panics, so that the other workers do not spin forever.
        struct Unlock<'a>(&'a TmLock);
        impl Drop for Unlock<'_> {
            fn drop(&mut self) {
                self.0.unlock_fallback();
            }
        }
        let unlock = Unlock(self);
        let r = f();
        drop(unlock);
        (
            r,
            TmOutcome {
                committed: false,
                aborts,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_is_consistent() {
        match rtm_status() {
            RtmStatus::Used => assert!(rtm_available()),
            RtmStatus::Unavailable(why) => {
                assert!(!rtm_available());
                assert!(!why.is_empty());
                assert!(!in_transaction());
            }
            RtmStatus::NotApplicable => panic!("the probe never says NotApplicable"),
        }
    }

    #[test]
    fn fallback_runs_once() {
        let lock = TmLock::new(false);
        let mut runs = 0;
        let (r, out) = lock.run(2, || {
            runs += 1;
            7
        });
        assert_eq!((r, runs), (7, 1));
        assert!(!out.committed);
        assert_eq!(out.aborts, 0);
    }
}
