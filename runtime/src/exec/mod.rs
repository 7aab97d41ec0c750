//! Running generated NFs on cores: the strategies, the NIC model that feeds them, and
//! what every run records for the equivalence checker.
//!
//! - [`nf`]: the contract generated code implements ([`GeneratedNf`]) and the small types
//!   it shares with the executors.

pub mod nf;

pub use nf::{
    shard_capacity, AccessLog, GeneratedNf, NeedsWrite, Refresh, RefreshLog, RenamedField,
    StateObjectInfo, Strategy,
};
