//! Process-wide allocator settings for the programs that stream millions of packets:
//! the equivalence checker and the generated binaries' `record`.
//!
//! Both allocate buffers of tens of megabytes per run or per chunk (record files,
//! observation tables, chunk queues) and free them soon after. glibc's defaults serve
//! such buffers with fresh `mmap`s and give freed heap tops back to the kernel, so every
//! run faults all of its pages in again: about 30,000 page faults per million packets in
//! the checker. Keeping freed memory in the process trades a peak-sized footprint for
//! not paying that again.

/// Serves allocations up to 32 MiB (glibc's largest mmap threshold) from the heap and
/// never trims freed memory back to the kernel. Call it once, early in `main`; it
/// changes nothing on allocators other than glibc's.
pub fn retain_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; any value is accepted or refused
    // (returning 0), and both are harmless.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, libc::c_int::MAX);
    }
}
