//! The generated sequential code of every library NF, compiled, for the equivalence tests
//! (`tests/`) and the generated-vs-interpreter benchmark (`benches/`). `build.rs`
//! generates the modules with `maestro_generator::generate_seq`.

use maestro_runtime::{InputPacket, Observation};

/// The helpers every generated NF imports as `crate::support`.
pub mod support {
    include!(concat!(env!("OUT_DIR"), "/support.rs"));
}

include!(concat!(env!("OUT_DIR"), "/modules.rs"));
include!(concat!(env!("OUT_DIR"), "/registry.rs"));

/// What the tests need of any generated NF.
pub trait GeneratedNf {
    fn process(&mut self, packet: &InputPacket) -> Observation;
    fn fault_count(&self) -> u64;
}

macro_rules! generated_nf {
    ($($m:ident),+) => {$(
        impl GeneratedNf for $m::Nf {
            fn process(&mut self, packet: &InputPacket) -> Observation {
                $m::Nf::process(self, packet)
            }
            fn fault_count(&self) -> u64 {
                $m::Nf::fault_count(self)
            }
        }
    )+};
}

generated_nf!(
    nop_default,
    sbridge_default,
    bridge_default,
    bridge_small,
    pol_default,
    pol_small,
    fw_default,
    fw_small,
    nat_default,
    nat_small,
    lb_default,
    lb_small,
    cl_default,
    cl_small,
    psd_default,
    psd_small
);
