//! The libVig-style state types of `nf-semantics.md` §2, as NFs use them.
//!
//! Every NF's state is built from these, so the interpreter and generated code see the same
//! behaviour, including the observable parts: the LIFO index policy of [`DChain`] (NAT
//! ports, LB backend indexes), strict expiry (`timestamp < now - ttl`), stale values after
//! expiry, the CHT fill order and the sketch's cell choice.
//!
//! Unlike the C code, nothing here has undefined behaviour: out-of-range indexes read as
//! absent (`None`/`false`), inserting into a full structure or a duplicate key fails without
//! changing anything, and capacities are checked at construction.
//!
//! All times are `u64` nanoseconds and must be non-decreasing across calls (the dchain
//! contract); expiry is only correct under that assumption.

mod age_list;
mod cht;
mod dchain;
mod map;
mod sets;
mod sketch;
mod table;

pub use cht::{Cht, CHT_MAX_CELLS, CHT_MAX_HEIGHT};
pub use dchain::{DChain, DCHAIN_MAX_CAPACITY};
pub use map::{Map, Vector};
pub use sets::{BoundedSets, SETS_MAX_PER_SET};
pub use sketch::{CountMinSketch, SKETCH_MAX_WIDTH, SKETCH_ROWS};
pub use table::ExpiringTable;

/// Largest capacity accepted for maps, vectors and the number of bounded sets. Far above
/// what the NFs use (65536); it only guards against allocating gigabytes by mistake.
pub const MAX_CAPACITY: u32 = 1 << 24;

/// Why a state object could not be created. Raised at NF start-up, never per packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    /// A capacity (or width, height, set size) of 0 was requested.
    #[error("capacity of {what} must be > 0: declare it with a positive capacity")]
    ZeroCapacity {
        /// Which object or parameter, e.g. "table".
        what: &'static str,
    },
    /// A capacity above the structure's limit was requested.
    #[error(
        "capacity of {what} is {capacity}, above the limit of {max}: declare a capacity of at most {max}"
    )]
    CapacityTooLarge {
        /// Which object or parameter, e.g. "dchain".
        what: &'static str,
        /// The requested value.
        capacity: u64,
        /// The largest accepted value.
        max: u64,
    },
    /// The CHT height is not a prime > 1, so the backend permutations would not cover
    /// every row.
    #[error(
        "cht height {height} is not a prime > 1: the backend permutations need a prime height; use a prime such as 97"
    )]
    NotPrime {
        /// The requested height.
        height: u32,
    },
}

/// Checks `0 < capacity <= max`.
pub(crate) fn check_capacity(
    what: &'static str,
    capacity: u32,
    max: u32,
) -> Result<(), StateError> {
    if capacity == 0 {
        return Err(StateError::ZeroCapacity { what });
    }
    if capacity > max {
        return Err(StateError::CapacityTooLarge {
            what,
            capacity: u64::from(capacity),
            max: u64::from(max),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_messages_say_what_and_how() {
        let e = StateError::ZeroCapacity { what: "table" };
        assert_eq!(
            e.to_string(),
            "capacity of table must be > 0: declare it with a positive capacity"
        );
        let e = StateError::CapacityTooLarge {
            what: "dchain",
            capacity: 2_000_000,
            max: 1 << 20,
        };
        assert!(e.to_string().contains("2000000"));
        assert!(e.to_string().contains("at most 1048576"));
        let e = StateError::NotPrime { height: 96 };
        assert!(e.to_string().contains("96"));
        assert!(e.to_string().contains("prime"));
    }

    #[test]
    fn check_capacity_bounds() {
        assert!(check_capacity("x", 1, 1).is_ok());
        assert_eq!(
            check_capacity("x", 0, 1),
            Err(StateError::ZeroCapacity { what: "x" })
        );
        assert!(matches!(
            check_capacity("x", 2, 1),
            Err(StateError::CapacityTooLarge {
                capacity: 2,
                max: 1,
                ..
            })
        ));
    }
}
