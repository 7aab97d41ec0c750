//! Synthetic traffic for maestro: seeded, streaming traces of IPv4 UDP/TCP flows with
//! controllable popularity skew, churn, sizes, rates and replies.
//!
//! A [`TraceConfig`] (with its [`FlowSpec`]) describes the trace; [`TraceGen`] turns it
//! into an iterator of [`maestro_runtime::InputPacket`]s (or, reusing one buffer,
//! [`TraceGen::next_into`]), and [`write_pcap`] into a pcap/pcapng file. The same config
//! always yields the same bytes (for a given crate version), so benchmarks and tests are
//! reproducible from a seed. Memory is O(flows), never O(packets).
//!
//! What a trace is, in short (details on [`TraceGen`] and the fields of [`TraceConfig`];
//! the commands the bench lab uses are in the crate's README):
//! - `flows.count` active flows with distinct 5-tuples; each packet picks one uniformly
//!   or by Zipf popularity of exponent `zipf_s` (exact alias sampling over all flows,
//!   ranks a random permutation of the flows).
//! - A flow's first packet always comes from the LAN side (`lan_port`), so stateful NFs
//!   (firewall, NAT) see conversations opened from inside. After `reply_delay_ns`, a packet
//!   is the flow's reply (reversed 5-tuple on `wan_port`) with probability `reply_ratio`.
//! - Churn, as in Maestro's evaluation: `churn_fpm` flows per minute of trace time are
//!   retired for good and replaced by fresh 5-tuples. `expiry_ns`, the NF's expiry time,
//!   adds keep-alives so that no active flow expires in the NF: the NF sees exactly the
//!   requested churn.
//! - Sizes: `frame_size` (which counts the FCS, as "64-byte packets" do, while frames,
//!   like captures and NF inputs, exclude it), CSIT's IMIX, or any weighted mix, e.g. one
//!   measured from a capture ([`SizeMix::from_capture`]).
//! - Timestamps advance exactly at `rate_pps`, or at `rate_bps` on the wire.
//! - [`TraceGen::with_stats`] measures what was generated ([`TraceStats`]): flows,
//!   heaviest flows' share, rank-frequency slope, observed churn, silences.
//!
//! ```no_run
//! use maestro_trafficgen::{TraceConfig, TraceGen};
//! let config = TraceConfig { packets: 1_000, zipf_s: 1.26, ..TraceConfig::default() };
//! let packets: Vec<_> = TraceGen::new(config)?.collect();
//! # Ok::<(), maestro_trafficgen::TraceError>(())
//! ```

mod alias;
mod config;
mod gen;
mod pcap;
mod stats;
mod units;

pub use config::{
    is_usable_unicast, wire_bits, Cidr, FlowSpec, SizeMix, TraceConfig, TraceError, FCS_LEN,
    IMIX_V4_1, MAX_FLOWS, MAX_FRAME_SIZE, MAX_ZIPF_S, MIN_FRAME_SIZE,
};
pub use gen::{host_mac, nf_mac, TraceGen};
pub use pcap::{write_file, write_pcap};
pub use stats::{rank_fit, RankFit, TraceStats, MIN_FIT_COUNT, TOP_FLOWS};
pub use units::{parse_bit_rate, parse_count, parse_duration_ns};
