//! The solver queries the analysis asks, over terms translated by [`super::encode`].
//!
//! A query about two packets names the symbols of each side in its own namespace
//! (`p1!pkt.ip.src`, `p2!pkt.ip.src`).

use super::encode::{Namespace, TermEncoder};
use super::term::Term;
use z3::{Context, Params, SatResult, Solver};

/// Which packet a term speaks about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Ns {
    /// The one packet of a path.
    One,
    /// The first of two packets (pairwise sharding queries).
    P1,
    /// The second of two packets.
    P2,
}

impl Namespace for Ns {
    fn symbol(self, name: &str) -> String {
        match self {
            Ns::One => name.to_string(),
            Ns::P1 => format!("p1!{name}"),
            Ns::P2 => format!("p2!{name}"),
        }
    }

    fn position(self) -> u64 {
        match self {
            Ns::One | Ns::P1 => 0,
            Ns::P2 => 1,
        }
    }
}

/// A Z3 solver with its term translator.
pub struct Smt<'c> {
    solver: Solver<'c>,
    enc: TermEncoder<'c, Ns>,
    /// Number of `check` calls so far.
    pub queries: u64,
}

impl<'c> Smt<'c> {
    /// A solver whose every query gives up after `timeout_ms` milliseconds.
    pub fn new(ctx: &'c Context, timeout_ms: u32) -> Smt<'c> {
        let solver = Solver::new(ctx);
        let mut p = Params::new(ctx);
        p.set_u32("timeout", timeout_ms.max(1));
        solver.set_params(&p);
        Smt {
            solver,
            enc: TermEncoder::new(ctx),
            queries: 0,
        }
    }

    pub fn push(&self) {
        self.solver.push();
    }

    pub fn pop(&self) {
        self.solver.pop(1);
    }

    /// Asserts a `bool` term in the current scope.
    pub fn assert(&mut self, t: &Term, ns: Ns) {
        let b = self.enc.boolean(t, ns);
        self.solver.assert(&b);
    }

    /// Whether the assertions so far are satisfiable; `Err` carries Z3's reason when it
    /// gives up (timeout, resource limit).
    pub fn check(&mut self) -> Result<bool, String> {
        self.queries += 1;
        match self.solver.check() {
            SatResult::Sat => Ok(true),
            SatResult::Unsat => Ok(false),
            SatResult::Unknown => Err(self
                .solver
                .get_reason_unknown()
                .unwrap_or_else(|| "unknown".to_string())),
        }
    }

    /// Whether the assertions so far plus `extra` (in namespace `ns`) are satisfiable.
    pub fn check_with(&mut self, extra: &[Term], ns: Ns) -> Result<bool, String> {
        self.push();
        for t in extra {
            self.assert(t, ns);
        }
        let r = self.check();
        self.pop();
        r
    }

    /// Asserts terms given with their own namespaces, checks, and retracts them.
    pub fn check_mixed(&mut self, extra: &[(Term, Ns)]) -> Result<bool, String> {
        self.push();
        for (t, ns) in extra {
            self.assert(t, *ns);
        }
        let r = self.check();
        self.pop();
        r
    }
}
