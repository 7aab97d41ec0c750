//! Maestro's big-reader lock (`boilerplate/locks.c`): one reader token per core, each on
//! its own cache line, and one writer flag.
//!
//! A reader touches only its own token, so read-mostly traffic scales with the cores (no
//! shared cache line bounces between readers). A writer raises the writer flag, which
//! stops new readers, and then waits for every token to clear.
//!
//! Next to each token, on the same line and written only by its core, sits the `now` of
//! that core's latest committed read pass. The `locks` writer reads these once it holds
//! the lock, to give its packet a time no earlier than any read pass it follows.
//!
//! # Memory orderings
//! The token/writer handshake is Dekker-style: the reader *stores* its token and then
//! *loads* the writer flag; the writer *stores* the flag and then *loads* every token.
//! Mutual exclusion needs that at least one side sees the other's store, which only a
//! total order over these stores and loads guarantees: with acquire/release alone both
//! loads may be satisfied before the other core's store becomes visible (store buffers
//! make x86 do exactly this) and both would enter. So these four operations are
//! `SeqCst`. Releases (`token = false`, `writer = false`) are `Release` so that the
//! critical section's writes are visible to whoever enters next, whose `SeqCst` loads
//! also acquire. The per-core `now` slots are `Relaxed`: they are written inside the
//! reader's critical section and read inside the writer's, ordered by the lock itself.

use std::hint::spin_loop;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Waits politely: spins briefly, then yields the CPU, so that a spinning thread does
/// not starve a lock holder that shares its CPU (more workers than CPUs).
#[derive(Debug, Default)]
pub(crate) struct Backoff(u32);

impl Backoff {
    pub(crate) fn snooze(&mut self) {
        if self.0 < 64 {
            self.0 += 1;
            spin_loop();
        } else {
            std::thread::yield_now();
        }
    }
}

/// One core's cache line: its reader token and the `now` of its latest read pass.
#[repr(align(128))]
#[derive(Debug, Default)]
struct CoreSlot {
    token: AtomicBool,
    reader_now: AtomicU64,
}

/// The writer flag, alone on its cache line so that readers polling it do not share a
/// line with any token.
#[repr(align(128))]
#[derive(Debug, Default)]
struct WriterFlag(AtomicBool);

/// A big-reader lock for `cores` cores. Core `c` must be used by one thread at a time
/// (its worker); any thread may write.
#[derive(Debug)]
pub struct BigReaderLock {
    slots: Box<[CoreSlot]>,
    writer: WriterFlag,
}

impl BigReaderLock {
    /// A lock for cores `0..cores` (at least one).
    pub fn new(cores: usize) -> BigReaderLock {
        BigReaderLock {
            slots: (0..cores.max(1)).map(|_| CoreSlot::default()).collect(),
            writer: WriterFlag::default(),
        }
    }

    /// The number of reader tokens.
    pub fn cores(&self) -> usize {
        self.slots.len()
    }

    /// Takes core `core`'s reader token (blocks while a writer holds or wants the lock).
    /// A core must not take its token twice, nor take the write lock while holding it
    /// (that would wait for itself).
    ///
    /// # Panics
    /// If `core >= cores()`: a caller bug, not a data condition.
    pub fn read(&self, core: usize) -> ReadGuard<'_> {
        let slot = &self.slots[core];
        let mut backoff = Backoff::default();
        loop {
            while self.writer.0.load(Ordering::Relaxed) {
                backoff.snooze();
            }
            slot.token.store(true, Ordering::SeqCst);
            if !self.writer.0.load(Ordering::SeqCst) {
                return ReadGuard { slot };
            }
            // A writer came first: back off so that it can finish.
            slot.token.store(false, Ordering::Release);
        }
    }

    /// Takes the write lock: the writer flag, then waits for every reader token to clear.
    pub fn write(&self) -> WriteGuard<'_> {
        let mut backoff = Backoff::default();
        while self
            .writer
            .0
            .compare_exchange_weak(false, true, Ordering::SeqCst, Ordering::Relaxed)
            .is_err()
        {
            backoff.snooze();
        }
        for slot in self.slots.iter() {
            while slot.token.load(Ordering::SeqCst) {
                backoff.snooze();
            }
        }
        WriteGuard { lock: self }
    }
}

/// A held reader token; released on drop.
#[derive(Debug)]
pub struct ReadGuard<'a> {
    slot: &'a CoreSlot,
}

impl ReadGuard<'_> {
    /// Records the `now` of a committed read pass of this core (kept as the maximum, so
    /// a writer never runs earlier than a read pass it follows).
    pub fn publish_now(&self, now: u64) {
        let slot = self.slot;
        if now > slot.reader_now.load(Ordering::Relaxed) {
            slot.reader_now.store(now, Ordering::Relaxed);
        }
    }
}

impl Drop for ReadGuard<'_> {
    fn drop(&mut self) {
        self.slot.token.store(false, Ordering::Release);
    }
}

/// The held write lock (no reader is inside); released on drop.
#[derive(Debug)]
pub struct WriteGuard<'a> {
    lock: &'a BigReaderLock,
}

impl WriteGuard<'_> {
    /// The largest `now` any core's read passes published so far.
    pub fn max_reader_now(&self) -> u64 {
        self.lock
            .slots
            .iter()
            .map(|s| s.reader_now.load(Ordering::Relaxed))
            .max()
            .unwrap_or(0)
    }
}

impl Drop for WriteGuard<'_> {
    fn drop(&mut self) {
        self.lock.writer.0.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_cache_line_sized() {
        assert_eq!(std::mem::align_of::<CoreSlot>(), 128);
        assert_eq!(std::mem::size_of::<CoreSlot>(), 128);
    }

    #[test]
    fn reader_now_is_the_maximum() {
        let lock = BigReaderLock::new(2);
        {
            let g = lock.read(0);
            g.publish_now(10);
            g.publish_now(7);
        }
        {
            let g = lock.read(1);
            g.publish_now(3);
        }
        assert_eq!(lock.write().max_reader_now(), 10);
        // Released: readers may enter again.
        drop(lock.read(0));
    }
}
