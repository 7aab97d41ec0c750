//! `maestro verify`: checks that a parallel NF preserves the meaning of its sequential
//! original, explains every divergence, and carries the traffic that finds them.
//!
//! Definitions: `shared/spec/equivalence.md`. The modules:
//! - [`report`]: divergences, their classes, and the verification report (text, JSON);
//! - [`compare`]: the oracles: strict, modulo renaming, serializable, envelopes;
//! - [`minimize`]: delta debugging of a failing trace down to a few packets;
//! - [`adversarial`]: traffic built from the analysis and the RSS configuration
//!   (co-location pairs, RETA-bucket collisions, expiry boundaries, odd packets,
//!   table-full sequences, random traces);
//! - [`paths`]: path coverage: which feasible paths of the symbolic model a trace
//!   exercises, and packet sequences that reach the others;
//! - [`reference`]: the interpreter's observations of a trace, stored as patches of its inputs;
//! - [`mutants`]: the built-in known-bad parallelizations the checker must reject.

pub mod adversarial;
pub mod binary;
pub mod compare;
pub mod minimize;
pub mod mutants;
pub mod paths;
pub mod reference;
pub mod report;
pub mod verify;
