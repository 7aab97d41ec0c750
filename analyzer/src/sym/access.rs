//! The state-access model: which call sites touch which object, read or write, and what
//! selects the entry they touch.
//!
//! A site is one state call in the source as executed for packets of one input port. Its
//! entry is selected by a *key form*: a key built from the packet (possibly through an
//! index that a `get`/`add` of that key returned: `flows.value(i)` touches the entry of
//! the key that gave `i`), an allocator index read straight from packet fields (the NAT's
//! external port: rule R5), an index read from state (unknown to RSS), a freshly
//! allocated index, or no entry in particular (expiry, size, a CHT scanning its backends).

use super::classes::PacketClass;
use super::exec::{access_of, Access, Op, PortExec, Provenance};
use super::term::Term;
use crate::lang::diag::Span;
use crate::lang::ir::{Method, NfProgram, StateId, StateKind};
use std::collections::BTreeSet;

/// What selects the entry a state operation touches.
#[derive(Clone, Debug)]
pub enum KeyForm {
    /// A key: its scalar components (field path, term) in declaration order. `via` names
    /// the call that returned the index the operation used, if it used one.
    Key {
        leaves: Vec<(String, Term)>,
        via: Option<String>,
    },
    /// An index of an allocator-backed object (table, dchain) computed from packet fields
    /// alone: the NF interprets its own allocation indexes as packet fields (R5).
    PacketIndex {
        index: Term,
    },
    /// An index that comes from state (a value read, a CHT choice).
    StateIndex {
        index: Term,
        from: String,
    },
    /// An index the packet itself just allocated.
    FreshIndex {
        from: String,
    },
    /// Every entry may be read (a CHT reading the liveness of its backends).
    Global {
        reason: String,
    },
    Expiry,
    /// Takes a free index (`dchain.allocate`).
    Allocation,
    /// `size()`, `full()`: depends on every entry.
    Aggregate,
}

impl KeyForm {
    pub fn name(&self) -> &'static str {
        match self {
            KeyForm::Key { .. } => "key",
            KeyForm::PacketIndex { .. } => "packet-index",
            KeyForm::StateIndex { .. } => "state-index",
            KeyForm::FreshIndex { .. } => "fresh-index",
            KeyForm::Global { .. } => "global",
            KeyForm::Expiry => "expiry",
            KeyForm::Allocation => "allocation",
            KeyForm::Aggregate => "aggregate",
        }
    }

    /// A text that identifies the form (to merge equal forms of one site).
    pub fn signature(&self) -> String {
        match self {
            KeyForm::Key { leaves, via } => {
                let parts: Vec<String> = leaves.iter().map(|(n, t)| format!("{n}={t}")).collect();
                format!(
                    "key[{}]{}",
                    parts.join(","),
                    via.clone().unwrap_or_default()
                )
            }
            KeyForm::PacketIndex { index } => format!("pidx[{index}]"),
            KeyForm::StateIndex { index, from } => format!("sidx[{index}]{from}"),
            KeyForm::FreshIndex { from } => format!("fresh[{from}]"),
            KeyForm::Global { reason } => format!("global[{reason}]"),
            other => other.name().to_string(),
        }
    }
}

/// One access site.
#[derive(Clone, Debug)]
pub struct Site {
    /// 1-based.
    pub id: usize,
    pub port: u16,
    pub state: StateId,
    pub method: Method,
    pub span: Span,
    pub label: String,
    pub access: Access,
    pub implicit: bool,
    /// Distinct key forms over the site's paths.
    pub forms: Vec<KeyForm>,
    /// Global path ids (1-based).
    pub paths: Vec<usize>,
    pub classes: BTreeSet<PacketClass>,
}

impl Site {
    /// Changes the object in a way that matters for sharding (expiry does not: each core
    /// expires its own entries).
    pub fn is_write(&self) -> bool {
        self.access == Access::Write && !self.forms.iter().all(|f| matches!(f, KeyForm::Expiry))
    }
}

/// The sites of an NF, plus the global path numbering.
pub struct AccessModel {
    pub sites: Vec<Site>,
    /// `path_ids[port_index][path_index]`: the global 1-based id.
    pub path_ids: Vec<Vec<usize>>,
}

impl AccessModel {
    /// The site an op of a path belongs to.
    pub fn site_of(&self, port: u16, op: &Op) -> Option<&Site> {
        self.sites.iter().find(|s| {
            s.port == port && s.state == op.state && s.span == op.span && s.implicit == op.implicit
        })
    }
}

fn is_allocator(kind: &StateKind) -> bool {
    matches!(kind, StateKind::Table { .. } | StateKind::DChain { .. })
}

/// What selects the entry of one operation.
pub fn key_form(prog: &NfProgram, op: &Op) -> KeyForm {
    use Method::*;
    if op.implicit {
        let cht = prog
            .states
            .iter()
            .find(|s| matches!(s.kind, StateKind::Cht { backends, .. } if backends == op.state))
            .map(|s| s.name.clone())
            .unwrap_or_else(|| "a CHT".into());
        let table = prog
            .states
            .get(op.state.0 as usize)
            .map(|s| s.name.clone())
            .unwrap_or_default();
        return KeyForm::Global {
            reason: format!(
                "`{cht}.find` returns the first live backend of a row: it reads whether entries of `{table}` are allocated, whichever the packet"
            ),
        };
    }
    match op.method {
        TableExpire | DChainExpire | SketchExpire => return KeyForm::Expiry,
        DChainAllocate => return KeyForm::Allocation,
        TableFull | TableSize | MapSize => return KeyForm::Aggregate,
        _ => {}
    }
    if let Some(k) = &op.key {
        return KeyForm::Key {
            leaves: k.leaves(&prog.records),
            via: None,
        };
    }
    let Some(index) = &op.index else {
        return KeyForm::Aggregate;
    };
    match &op.index_origin {
        Some(Provenance::Key { key, label, .. }) => KeyForm::Key {
            leaves: key.leaves(&prog.records),
            via: Some(label.clone()),
        },
        Some(Provenance::Fresh { label, .. }) => KeyForm::FreshIndex {
            from: label.clone(),
        },
        Some(Provenance::Chosen { label, .. }) => KeyForm::StateIndex {
            index: index.clone(),
            from: format!("chosen by {label}"),
        },
        None => {
            let others = index.other_syms();
            if !others.is_empty() {
                let from: Vec<String> = others.into_iter().collect();
                KeyForm::StateIndex {
                    index: index.clone(),
                    from: format!("computed from {}", from.join(", ")),
                }
            } else if index.packet_fields().is_empty() {
                // A constant index: one entry every packet shares.
                KeyForm::Key {
                    leaves: vec![(String::new(), index.clone())],
                    via: None,
                }
            } else if prog
                .states
                .get(op.state.0 as usize)
                .is_some_and(|s| is_allocator(&s.kind))
            {
                KeyForm::PacketIndex {
                    index: index.clone(),
                }
            } else {
                // A vector or set indexed by packet fields: the index is the key.
                KeyForm::Key {
                    leaves: vec![(String::new(), index.clone())],
                    via: None,
                }
            }
        }
    }
}

/// Groups the operations of every path into sites.
pub fn build(prog: &NfProgram, ports: &[PortExec]) -> AccessModel {
    let mut sites: Vec<Site> = Vec::new();
    let mut path_ids = Vec::new();
    let mut next_id = 1;
    for px in ports {
        let mut ids = Vec::new();
        for path in &px.paths {
            let pid = next_id;
            next_id += 1;
            ids.push(pid);
            for op in &path.ops {
                let form = key_form(prog, op);
                let pos = sites.iter().position(|s| {
                    s.port == px.port
                        && s.state == op.state
                        && s.span == op.span
                        && s.implicit == op.implicit
                });
                let i = match pos {
                    Some(i) => i,
                    None => {
                        sites.push(Site {
                            id: sites.len() + 1,
                            port: px.port,
                            state: op.state,
                            method: op.method,
                            span: op.span,
                            label: op.label.clone(),
                            access: if op.implicit {
                                Access::Read
                            } else {
                                access_of(op.method)
                            },
                            implicit: op.implicit,
                            forms: Vec::new(),
                            paths: Vec::new(),
                            classes: BTreeSet::new(),
                        });
                        sites.len() - 1
                    }
                };
                let site = &mut sites[i];
                let sig = form.signature();
                if !site.forms.iter().any(|f| f.signature() == sig) {
                    site.forms.push(form);
                }
                if site.paths.last() != Some(&pid) {
                    site.paths.push(pid);
                }
                site.classes.extend(path.classes.iter().copied());
            }
        }
        path_ids.push(ids);
    }
    AccessModel { sites, path_ids }
}
