//! The result of the analysis: plain, serializable data (`docs/analysis-json.md`).
//!
//! Terms appear as the text the NF language would write (`pkt.ip.dst`,
//! `flows.get@30.hit`), packet fields by their language path (`pkt.ip.src`), lines are
//! 1-based. Lists are in a deterministic order (ports, then discovery order), so the JSON
//! of an NF is byte-for-byte stable between runs.

use super::classes::PacketClass;
use serde::{Deserialize, Serialize};

/// The JSON schema name and version written in every result.
pub const SCHEMA: &str = "maestro-analysis";
pub const VERSION: u32 = 1;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Analysis {
    /// Always `maestro-analysis`.
    pub schema: String,
    /// Bumped on any incompatible change.
    pub version: u32,
    pub nf: NfInfo,
    pub summary: Summary,
    /// One exploration per input port: its execution tree and its paths.
    pub ports: Vec<PortPaths>,
    pub objects: Vec<ObjectInfo>,
    /// State access sites: one per (input port, call in the source).
    pub sites: Vec<SiteInfo>,
    /// Per input port and packet class: the paths it can take and the state it reaches.
    pub classes: Vec<ClassInfo>,
    /// Allocator indexes read from packet fields (R5), one entry per object and port.
    pub r5: Vec<R5Check>,
    pub constraints: Constraints,
    pub verdict: Verdict,
    /// Modelling choices that matter for reading the result.
    pub notes: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NfInfo {
    pub name: String,
    pub description: String,
    /// The source file as given to the loader.
    pub file: String,
    /// Number of ports (`max(port) + 1`).
    pub ports: u16,
    pub devices: Vec<DeviceInfo>,
}

impl NfInfo {
    /// The device name(s) of a port (`lan`, `lan/wan` when both are bound to it, `port 3`).
    pub fn device_name(&self, port: u16) -> String {
        device_label(self.devices.iter().map(|d| (d.name.as_str(), d.port)), port)
    }
}

/// The name(s) of the devices bound to `port`, joined by `/`, or `port N` when none is.
pub fn device_label<'a>(devices: impl Iterator<Item = (&'a str, u16)>, port: u16) -> String {
    let names: Vec<&str> = devices
        .filter(|&(_, p)| p == port)
        .map(|(name, _)| name)
        .collect();
    if names.is_empty() {
        format!("port {port}")
    } else {
        names.join("/")
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceInfo {
    pub name: String,
    pub port: u16,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Feasible paths over all input ports.
    pub paths: usize,
    pub paths_per_port: Vec<PortCount>,
    /// Branch sides proven infeasible (pruned) by the solver.
    pub pruned_branches: usize,
    /// Paths that change some state object (expiry aside).
    pub writing_paths: usize,
    /// Paths that only read state, or touch none (expiry aside).
    pub read_only_paths: usize,
    /// Solver queries asked (feasibility, classes, sharding).
    pub solver_queries: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortCount {
    pub port: u16,
    pub device: String,
    pub paths: usize,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortPaths {
    pub port: u16,
    /// The device name(s) bound to the port (`lan`; `port 3` when unnamed).
    pub device: String,
    pub paths: Vec<PathInfo>,
    pub tree: Tree,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tree {
    /// The first node (absent only for an NF without ports).
    pub root: Option<usize>,
    /// Indexed by node id.
    pub nodes: Vec<TreeNode>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum TreeNode {
    /// A symbolic branch. `then`/`else` is absent when that side is infeasible (pruned).
    Branch {
        id: usize,
        /// `if`, `if let`, `parse ipv4`, `parse l4`.
        what: String,
        /// The condition of the `then` side.
        cond: String,
        line: u32,
        then: Option<usize>,
        #[serde(rename = "else")]
        els: Option<usize>,
    },
    /// A state operation, then the next node.
    Op {
        id: usize,
        op: OpInfo,
        next: Option<usize>,
    },
    /// The end of a path.
    End {
        id: usize,
        path: usize,
        action: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathInfo {
    /// 1-based, unique over the NF.
    pub id: usize,
    pub port: u16,
    pub device: String,
    /// The branch sides taken, in order (modelling facts left out).
    pub conditions: Vec<CondInfo>,
    /// State operations in execution order.
    pub ops: Vec<OpInfo>,
    pub header_writes: Vec<HeaderWrite>,
    /// `drop`, `flood`, `forward(<port or expression>)`.
    pub action: String,
    pub action_line: u32,
    /// Why a `forward` is a drop here (input port, missing port).
    pub action_note: Option<String>,
    /// The path changes some state object other than by expiry.
    pub writes_state: bool,
    /// The path runs an expiry.
    pub expires: bool,
    /// Packet classes that can take the path.
    pub classes: Vec<PacketClass>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CondInfo {
    /// The condition that holds on the path.
    pub expr: String,
    pub line: u32,
    /// `if`, `if-let`, `parse`.
    pub kind: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeaderWrite {
    pub field: String,
    pub value: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpInfo {
    /// `flows.get@30` (the prefix of its result symbols).
    pub label: String,
    pub object: String,
    pub method: String,
    /// `read` or `write`.
    pub access: String,
    pub line: u32,
    pub col: u32,
    pub key: Option<String>,
    pub index: Option<String>,
    /// The value stored, or the set element.
    pub arg: Option<String>,
    /// The result: hit flag of *opt* calls, or the value.
    pub result: Option<String>,
    /// Set when the call runs only under this condition (right of `&&`/`||`).
    pub guard: Option<String>,
    /// Added by the analysis (a CHT scanning its backend table).
    pub implicit: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectInfo {
    pub name: String,
    /// `table`, `map`, `vector`, `dchain`, `cht`, `sketch`, `sets`.
    pub kind: String,
    pub line: u32,
    /// Never changed by a packet (expiry aside): imposes no sharding constraint.
    pub read_only: bool,
    /// Site ids of its reads and writes.
    pub reads: Vec<usize>,
    pub writes: Vec<usize>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteInfo {
    /// 1-based.
    pub id: usize,
    pub port: u16,
    pub device: String,
    pub object: String,
    pub method: String,
    pub label: String,
    /// `read` or `write`.
    pub access: String,
    pub line: u32,
    pub col: u32,
    /// What selects the entry, per distinct form seen on the site's paths.
    pub keys: Vec<KeyInfo>,
    pub paths: Vec<usize>,
    pub classes: Vec<PacketClass>,
    pub implicit: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyInfo {
    /// `key` (a key built by the packet, possibly through an index returned for it),
    /// `packet-index` (an allocator index read from packet fields: R5),
    /// `state-index` (an index read from state: unknown dependency),
    /// `fresh-index` (an index the packet just allocated), `global` (reads every entry),
    /// `expiry`, `allocation` (takes a free index), `aggregate` (size/full).
    pub form: String,
    /// The key or index as an expression.
    pub expr: Option<String>,
    /// The key's scalar components (for `key`).
    pub components: Vec<ComponentInfo>,
    /// For keys reached through an index: the call that returned it.
    pub via: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComponentInfo {
    /// Field path inside the key (`src_ip`), empty for a scalar key.
    pub name: String,
    pub expr: String,
    /// `field` (exactly a packet field), `const`, `derived` (a function of packet fields),
    /// `state` (depends on state or time).
    pub form: String,
    pub fields: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassInfo {
    pub port: u16,
    pub device: String,
    pub class: PacketClass,
    pub paths: Vec<usize>,
    /// Some path of the class reads or writes state (expiry aside).
    pub touches_state: bool,
    /// The objects it reaches (expiry aside).
    pub objects: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct R5Check {
    pub object: String,
    pub port: u16,
    pub device: String,
    /// The index expression (`(pkt.l4.dport as u32) - 0`).
    pub index: String,
    /// Line of the allocation check (`has_index`, `is_allocated`).
    pub guard_line: Option<u32>,
    pub accepted: bool,
    /// Paths where the index is not allocated.
    pub miss_paths: Vec<usize>,
    /// Allocated, but the packet is dropped with no state change after the check.
    pub silent_paths: Vec<usize>,
    /// Allocated and the entry is used.
    pub use_paths: Vec<usize>,
    /// Entry key fields that the use paths prove equal to packet fields.
    pub compared: Vec<Compared>,
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Compared {
    /// Component of the entry's key (`dst_ip`).
    pub component: String,
    /// The packet field it equals on every use path (`pkt.ip.src`).
    pub field: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Constraints {
    /// R1 after R2: for each pair of input ports whose packets can share state, the field
    /// equalities under which two packets must reach the same core.
    pub pairs: Vec<PairConstraint>,
    /// Per input port: the fields its RSS hash may use.
    pub fields: Vec<PortFields>,
    /// R2: constraints that a coarser key subsumes.
    pub subsumed: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairConstraint {
    /// Ports of packet 1 and packet 2 (`ports[0] <= ports[1]`).
    pub ports: [u16; 2],
    pub devices: [String; 2],
    /// "p1 on ports[0] and p2 on ports[1] with all these equal go to the same core".
    pub equalities: Vec<FieldEq>,
    /// The site pairs (R1) behind the constraint.
    pub sources: Vec<ConstraintSource>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldEq {
    pub p1: String,
    pub p2: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConstraintSource {
    pub object: String,
    /// The sites of packet 1 and of packet 2 (accesses with the same key form are
    /// grouped: a `get`, the `refresh` of its index and an `add` of the same key).
    pub sites: [Vec<usize>; 2],
    /// Their source lines, sorted.
    pub lines: [Vec<u32>; 2],
    /// What key equality alone implies (before intersecting with other constraints).
    pub equalities: Vec<FieldEq>,
    /// Key components equal under the constraint that RSS cannot hash (`pkt.ip.proto`).
    pub unhashable: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortFields {
    pub port: u16,
    pub device: String,
    /// Fields the port's hash may use so that TCP/UDP packets sharing state meet.
    pub fields: Vec<String>,
    /// The same, restricted so that every class reaching state on the port (ICMP,
    /// fragments) is hashed consistently with its TCP/UDP peers.
    pub all_classes_fields: Vec<String>,
    /// RSS hash types the port needs: one per class that reaches state.
    pub rss_types: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// `shared-nothing` or `locks`.
    pub strategy: String,
    /// The rule that forced locks: `R3`, `R4` or `R5`.
    pub rule: Option<String>,
    /// One paragraph in plain words.
    pub summary: String,
    pub objects: Vec<ObjectVerdict>,
    /// Set when some objects could be sharded and others not.
    pub hybrid: Option<String>,
    /// Classes that reach state and what RSS must do for them.
    pub class_caveats: Vec<ClassCaveat>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectVerdict {
    pub object: String,
    /// `unused`, `read-only`, `shared-nothing` or `locks`.
    pub strategy: String,
    pub rule: Option<String>,
    pub reason: String,
    /// The access sites the reason is about.
    pub sites: Vec<SiteRef>,
    /// When shardable alone: per port, the fields its hash may use.
    pub fields: Vec<PortFields>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteRef {
    pub site: usize,
    pub label: String,
    pub device: String,
    pub line: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassCaveat {
    pub port: u16,
    pub device: String,
    pub class: PacketClass,
    pub objects: Vec<String>,
    /// `consistent` (hashable by the fields the state needs, if its RSS type is enabled)
    /// or `inconsistent` (the NIC cannot hash it by those fields).
    pub status: String,
    pub explanation: String,
}

impl Analysis {
    /// The JSON form (`docs/analysis-json.md`), pretty-printed.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }

    /// Reads the JSON form back.
    pub fn from_json(text: &str) -> Result<Analysis, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// All paths of all ports, in id order.
    pub fn all_paths(&self) -> impl Iterator<Item = &PathInfo> {
        self.ports.iter().flat_map(|p| p.paths.iter())
    }

    /// The verdict of one object.
    pub fn object_verdict(&self, name: &str) -> Option<&ObjectVerdict> {
        self.verdict.objects.iter().find(|o| o.object == name)
    }

    /// The constraint between two ports (in either order).
    pub fn pair(&self, a: u16, b: u16) -> Option<&PairConstraint> {
        let (x, y) = if a <= b { (a, b) } else { (b, a) };
        self.constraints.pairs.iter().find(|p| p.ports == [x, y])
    }

    /// The fields a port's hash may use.
    pub fn port_fields(&self, port: u16) -> Option<&PortFields> {
        self.constraints.fields.iter().find(|f| f.port == port)
    }
}
