//! What can stop the analysis. Every error names the construct and its source position.

/// Why an NF could not be analysed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnalysisError {
    /// A construct the symbolic executor does not model.
    #[error("{location}: cannot analyse {construct}: {reason}")]
    Unsupported {
        /// `file:line:col`.
        location: String,
        construct: String,
        reason: String,
    },
    /// Z3 gave up on a query (timeout or resource limit).
    #[error("{location}: the solver gave up ({reason}) on {what}; raise the solver timeout (now {timeout_ms} ms) or simplify the condition")]
    Solver {
        location: String,
        what: String,
        reason: String,
        timeout_ms: u32,
    },
    /// The NF has more paths than the configured limit.
    #[error("{location}: the path ending here goes over the limit of {limit} paths; the analysis stops rather than run away (raise the limit if the NF really has that many)")]
    TooManyPaths { location: String, limit: usize },
}
