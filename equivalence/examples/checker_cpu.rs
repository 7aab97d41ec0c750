//! The checker benchmark's workload (`benches/checker.rs`: 1M fw packets, interpreter +
//! `seq` + `sn` on 2 cores + compare) run a few times, printing each iteration's wall
//! time and the CPU time it cost, this process and its children (the generated binaries)
//! apart. CPU time is what a busy machine shares out, so it is the figure to compare
//! while other work runs; the wall time is only meaningful on a quiet machine.
//!
//! `cargo run --release -p maestro-equivalence --example checker_cpu [ITERATIONS]`

use std::time::{Duration, Instant};

#[path = "../benches/support/workload.rs"]
mod workload;
use workload::Workload;

/// CPU time (user + system) and minor page faults so far of this process or (`kids`) of
/// its waited-for children.
fn usage(kids: bool) -> (Duration, i64) {
    let who = if kids {
        libc::RUSAGE_CHILDREN
    } else {
        libc::RUSAGE_SELF
    };
    // SAFETY: getrusage fills the plain struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(who, &mut u) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    (tv(u.ru_utime) + tv(u.ru_stime), u.ru_minflt)
}

fn main() {
    let iterations: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(5);
    let workload = Workload::prepare();
    println!("iteration  wall_ms  checker_cpu_ms  binaries_cpu_ms  total_cpu_ms  checker_faults  binaries_faults");
    for k in 0..iterations {
        let ((self0, sf0), (kids0, kf0)) = (usage(false), usage(true));
        let t = Instant::now();
        workload.check();
        let wall = t.elapsed();
        let ((self1, sf1), (kids1, kf1)) = (usage(false), usage(true));
        let (me, kids) = (self1 - self0, kids1 - kids0);
        println!(
            "{k:9}  {:7.0}  {:14.0}  {:15.0}  {:12.0}  {:14}  {:15}",
            wall.as_secs_f64() * 1e3,
            me.as_secs_f64() * 1e3,
            kids.as_secs_f64() * 1e3,
            (me + kids).as_secs_f64() * 1e3,
            sf1 - sf0,
            kf1 - kf0
        );
    }
}
