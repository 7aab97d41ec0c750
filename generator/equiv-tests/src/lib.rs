//! The generated code of every library NF, compiled, for the equivalence tests
//! (`tests/`) and the benchmarks (`benches/`). `build.rs` generates the modules with
//! `maestro_generator::generate_seq`; each implements
//! `maestro_runtime::exec::GeneratedNf` (every strategy).

use maestro_runtime::exec::{GeneratedNf, NeedsWrite, Refresh, RefreshLog};
use maestro_runtime::{InputPacket, Observation};

/// The helpers every generated NF imports as `crate::support`.
pub mod support {
    include!(concat!(env!("OUT_DIR"), "/support.rs"));
}

pub mod handwritten_fw;

include!(concat!(env!("OUT_DIR"), "/modules.rs"));
include!(concat!(env!("OUT_DIR"), "/registry.rs"));

/// The object-safe part of [`GeneratedNf`], so that tests can hold any variant.
pub trait DynNf: Send {
    fn process(&mut self, packet: &InputPacket) -> Observation;
    fn process_read(
        &self,
        packet: &InputPacket,
        log: &mut RefreshLog,
    ) -> Result<Observation, NeedsWrite>;
    fn apply_refresh(&mut self, refresh: &Refresh);
    fn fault_count(&self) -> u64;
}

impl<N: GeneratedNf> DynNf for N {
    fn process(&mut self, packet: &InputPacket) -> Observation {
        GeneratedNf::process(self, packet)
    }
    fn process_read(
        &self,
        packet: &InputPacket,
        log: &mut RefreshLog,
    ) -> Result<Observation, NeedsWrite> {
        GeneratedNf::process_read(self, packet, log)
    }
    fn apply_refresh(&mut self, refresh: &Refresh) {
        GeneratedNf::apply_refresh(self, refresh)
    }
    fn fault_count(&self) -> u64 {
        GeneratedNf::fault_count(self)
    }
}

/// Something done once per generated variant with its concrete type (see [`visit_all`]).
pub trait Visitor {
    fn visit<N: GeneratedNf>(&mut self, nf: &str, variant: &str, sets: &[(&str, &str)]);
}
