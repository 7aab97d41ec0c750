//! maestro on DPDK: a small safe API over `dpdk-sys` and a backend that runs generated
//! NFs (the runtime's [`GeneratedNf`](maestro_runtime::exec::GeneratedNf)) on DPDK lcores.
//!
//! - [`Eal`]: `rte_eal_init` once per process, with errors that name the cause (no
//!   hugepages, a vdev that failed to probe, no ports) and the fix.
//! - [`Mempool`], [`Mbuf`]: packet buffers; frame bytes in place.
//! - [`Port`]: configuration from maestro's NIC model (key, hash types and RETA of
//!   `maestro rss --format json`, fitted to the device's key and RETA sizes and read
//!   back), queues claimed by one thread each, receive/transmit bursts.
//! - [`run`]: the NF on lcores, one queue per core per port, under any strategy
//!   (`seq`, `sn`, and `locks`/`tm` through the runtime's own per-packet protocols),
//!   with counters that account for every packet.
//! - [`pcap`]: replaying captures through `net_pcap` vdevs, steered per queue by the
//!   NIC model, for tests and development without a NIC.
//! - [`driver`]: the `dpdk` command of generated binaries built with their `dpdk`
//!   feature (`<nf> dpdk --eal "..." --strategy locks --cores 4`).
//!
//! See `dpdk/README.md` for running on a real NIC.

mod backend;
pub mod driver;
mod eal;
mod error;
mod mbuf;
pub mod pcap;
mod port;

pub use backend::{
    run, Clock, CoreReport, DpdkRunOptions, PortReport, RunReport, RxOrder, StopWhen,
};
pub use eal::Eal;
pub use error::DpdkError;
pub use mbuf::{Mbuf, Mempool, DATA_ROOM};
pub use port::{
    fit_reta, port_info, rss_type_bit, Port, PortConfig, PortInfo, PortStats, RssConfig, RxQueue,
    TxQueue, MAX_BURST,
};
