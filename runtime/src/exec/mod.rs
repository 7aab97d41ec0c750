//! Running generated NFs on cores: the strategies, the NIC model that feeds them, and
//! what every run records for the equivalence checker.
//!
//! - [`nf`]: the contract generated code implements ([`GeneratedNf`]) and the small types
//!   it shares with the executors.
//! - [`nic`]: the NIC model: hash types, Toeplitz, RETA, exactly as the hardware steers.
//! - [`engine`]: the executors (seq, sn, locks, tm) on pinned threads or under a
//!   deterministic seeded schedule, with per-packet records (core, commit order); their
//!   per-packet protocols as [`SharedNf`]/[`NfCore`], for backends with threads of their
//!   own (DPDK lcores).
//! - [`lock`]: the big-reader lock of the `locks` strategy.
//! - [`rtm`]: Intel RTM detection and transactions for the `tm` strategy.
//! - [`options`]: the command-line parser of generated binaries' commands.
//! - [`wire`]: the binary packet and record files between the checker and generated
//!   binaries.
//! - [`rename`]: the input renaming hook for NFs that write values they chose (NAT ports).
//! - [`driver`]: the `main` of every generated binary.

pub mod driver;
pub mod engine;
pub mod lock;
pub mod nf;
pub mod nic;
pub mod options;
pub mod rename;
pub mod rtm;
pub mod wire;

pub use engine::{
    commit_order, ChunkOutput, ChunkPhases, ChunkResults, CoreStats, Dispatched, EncodedResults,
    Engine, EngineStats, ExecError, NfCore, ObservationEncoder, PacketRecord, Processed,
    RunOptions, RuntimeMutant, Schedule, SharedNf, Translator,
};
pub use nf::{
    shard_capacity, AccessCounts, AccessLog, GeneratedNf, KeyHasher, NeedsWrite, Refresh,
    RefreshLog, RenamedField, StateObjectInfo, Strategy,
};
pub use nic::{HashClass, NicConfig, NicModel, PortRss, Steer};
pub use rtm::{rtm_available, RtmStatus};
