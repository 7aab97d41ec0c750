//! Synthetic traffic for maestro: seeded, streaming traces of IPv4 UDP/TCP flows.
//!
//! A [`TraceConfig`] (with its [`FlowSpec`]) describes the trace; [`TraceGen`] turns it
//! into an iterator of [`maestro_runtime::InputPacket`]s, and [`write_pcap`] into a
//! pcap/pcapng file. The same config always yields the same bytes (for a given crate
//! version), so benchmarks and tests are reproducible from a seed.
//!
//! What a trace is, in short:
//! - `flows.count` distinct 5-tuples, fixed up front; each packet picks one uniformly at
//!   random (skewed popularity and flow churn are planned, not implemented yet).
//! - A flow's first packet always comes from the LAN side (`lan_port`), so stateful NFs
//!   (firewall, NAT) see conversations opened from inside. After that, a packet is the
//!   flow's reply (reversed 5-tuple on `wan_port`) with probability `reply_ratio`.
//! - Every frame is `frame_size - 4` bytes: `frame_size` counts the FCS, as "64-byte
//!   packets" do, but frames (like captures and NF inputs) exclude it.
//! - Timestamps advance at exactly `rate_pps`: packet `i` is at
//!   `start_ns + floor(i * 1e9 / rate_pps)`.
//!
//! ```no_run
//! use maestro_trafficgen::{TraceConfig, TraceGen};
//! let config = TraceConfig { packets: 1_000, ..TraceConfig::default() };
//! let packets: Vec<_> = TraceGen::new(config)?.collect();
//! # Ok::<(), maestro_trafficgen::TraceError>(())
//! ```

mod config;
mod gen;
mod pcap;

pub use config::{
    is_usable_unicast, Cidr, FlowSpec, TraceConfig, TraceError, FCS_LEN, MAX_FLOWS, MAX_FRAME_SIZE,
    MIN_FRAME_SIZE,
};
pub use gen::{host_mac, nf_mac, TraceGen};
pub use pcap::write_pcap;
