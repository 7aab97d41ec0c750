//! The maestro runtime: everything an NF needs at packet time.
//!
//! It is shared by the reference interpreter (which defines what an NF means) and, later,
//! by generated code, so both run on the very same data structures and packet views.
//!
//! - [`state`]: the libVig-style state types (expiring table, map, vector, dchain, CHT,
//!   count-min sketch, bounded sets), with the exact semantics of `nf-semantics.md` §2.
//! - [`hash`]: the CRC32C struct hash that makes the load balancer's and the sketch's
//!   choices match the C NFs.
//! - [`packet`]: zero-copy header views with the NF acceptance rules, field rewrites and
//!   checksum recomputation.
//! - [`capture`]: pcap/pcapng reading and writing, and the rule that gives each captured
//!   packet its input port.
//! - [`rss`]: the Toeplitz hash and RETA lookup exactly as NICs compute them.
//! - [`trace`]: the input packet and observation types every stage of maestro speaks.
//! - [`memory`]: allocator settings for the processes that stream millions of packets.

pub mod capture;
pub mod exec;
pub mod hash;
pub mod memory;
pub mod packet;
pub mod rss;
pub mod state;
pub mod trace;

pub use trace::{InputPacket, Observation};
