//! The reference interpreter: the executable meaning of NF programs.
//!
//! An [`Interpreter`] owns a checked [`NfProgram`] and all its state objects (the runtime's
//! libVig-style types), and turns each [`InputPacket`] into exactly one [`Observation`].
//! It is deterministic (time is the packet's timestamp) and never panics on packet bytes:
//! out-of-range indexes and forwards to missing ports are recorded as [`Fault`]s and the
//! program carries on, as `docs/nf-language.md` prescribes.
//!
//! Evaluation walks the checked IR directly: names are already slots and ids, so the per-
//! packet path does no string lookups; header writes are buffered and applied (with
//! checksum updates) only when a packet leaves, so dropped packets are never copied.

mod key;
mod state;
#[cfg(test)]
mod trace_tests;

use maestro_analyzer::lang::ast::{BinOp, Layer, UnOp};
use maestro_analyzer::lang::ops;
use maestro_analyzer::{
    Action as IrAction, Builtin, ConfigValue, Decision, Expr, ExprKind, IntTy, Method, NfProgram,
    PathTrace, PktField, Span, StateCall, Stmt, StmtKind, Value,
};
use maestro_runtime::hash::StructHasher;
use maestro_runtime::packet::{PacketMut, PacketView, ParseMode, ETH_LEN, IPV4_MIN_LEN};
pub use maestro_runtime::{InputPacket, Observation};
use state::StateObj;
use std::fmt;

/// Interpreter settings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InterpOptions {
    /// Header acceptance rules (strict Vigor rules by default).
    pub parse_mode: ParseMode,
    /// Replace every count-min sketch by its collision-free limit (one exact counter per
    /// key). Not the NF's meaning: the checker's "no capacity limit" models use it,
    /// because a sketch's collisions are how its finite width shows.
    pub ideal_sketches: bool,
}

/// Errors raised while setting up the state of a program.
#[derive(Debug, thiserror::Error)]
pub enum InterpError {
    /// A state object could not be allocated with its parameters.
    #[error("cannot allocate state `{state}` (a {kind}): parameter `{param}`: {source}")]
    State {
        state: String,
        kind: &'static str,
        param: &'static str,
        #[source]
        source: maestro_runtime::state::StateError,
    },
    /// A `map` init entry was refused (the map is full or the key repeats).
    #[error("cannot fill map `{state}` from {path}: entry {entry} was refused (full map or repeated key)")]
    MapInit {
        state: String,
        path: String,
        entry: usize,
    },
}

/// A run-time error of the NF itself (not of the interpreter): the packet is still
/// processed, with the documented fallback (zero value, `false`, drop).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fault {
    /// `file:line:col` of the offending call or action.
    pub location: String,
    pub message: String,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: NF fault: {}", self.location, self.message)
    }
}

/// Records up to this many fields are assigned to locals in place
/// ([`Machine::assign_record`]).
const MAX_IN_PLACE_FIELDS: usize = 8;

/// How many faults are kept in [`Interpreter::faults`]; later ones are only counted.
pub const MAX_KEPT_FAULTS: usize = 1024;

/// Runs one NF over a sequence of packets, keeping its state between packets.
pub struct Interpreter {
    program: NfProgram,
    machine: Machine,
}

/// Everything but the code, so that the code can be borrowed while the machine mutates.
struct Machine {
    configs: Vec<Value>,
    devices: Vec<Value>,
    states: Vec<StateObj>,
    /// The frame of `process`: one slot per local.
    locals: Vec<Value>,
    /// The fields of a record being assigned ([`Machine::assign_record`]).
    scratch: Vec<Value>,
    port_count: u16,
    mode: ParseMode,
    source: maestro_analyzer::lang::diag::SharedSource,
    /// Faults of the current packet.
    packet_faults: Vec<Fault>,
    kept_faults: Vec<Fault>,
    last_fault: Option<Fault>,
    fault_count: u64,
    /// The decisions of the current packet, when path tracing is on (`None`: off, and
    /// the per-packet path pays one predictable branch per decision).
    trace: Option<PathTrace>,
}

/// The packet being processed: its bytes (read-only) and the buffered header writes.
struct Packet<'a> {
    view: PacketView<'a>,
    /// The fixed IPv4 header and the L4 ports, found once per packet.
    ip: Option<&'a [u8; IPV4_MIN_LEN]>,
    l4: Option<&'a [u8; 4]>,
    in_port: u16,
    now: u64,
    writes: Writes,
}

/// Header writes of the current path, applied when the packet leaves. Fields are
/// disjoint, so the order of writes does not matter; the last write of a field wins.
#[derive(Default)]
struct Writes {
    any: bool,
    /// An IPv4 or L4 field was written (else only MACs, which need no checksum work).
    headers: bool,
    eth_dst: Option<[u8; 6]>,
    eth_src: Option<[u8; 6]>,
    ip_src: Option<u32>,
    ip_dst: Option<u32>,
    ip_ttl: Option<u8>,
    ip_tos: Option<u8>,
    sport: Option<u16>,
    dport: Option<u16>,
}

/// What a statement leaves to do ([`Machine::exec`]).
enum Step<'b> {
    /// Go on with the next statement.
    Next,
    /// Run this block, then the statements after the current one.
    Enter(&'b [Stmt]),
    /// The path ended with an action.
    Done(Action),
}

/// How many unfinished blocks [`Machine::exec_block`] keeps without recursing (the
/// firewall and the NAT need two).
const BLOCK_STACK: usize = 4;

/// What the NF did with a packet ([`Interpreter::process_into`]); the output frame, if
/// any, is in the caller's buffer. [`Observation`] is this plus an owned frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Dropped (explicitly, by forwarding to its own input port, or by a fault).
    Drop,
    /// Sent to every port but the input port.
    Flood,
    /// Sent out of this port.
    Forward(u16),
}

impl Action {
    /// The observation of this action with output frame `frame` (ignored for `Drop`).
    pub fn into_observation(self, frame: Vec<u8>) -> Observation {
        match self {
            Action::Drop => Observation::Drop,
            Action::Flood => Observation::Flood { bytes: frame },
            Action::Forward(port) => Observation::Forward { port, bytes: frame },
        }
    }
}

impl Interpreter {
    /// Allocates the program's state (filling `map`s from their init files).
    pub fn new(program: &NfProgram, options: InterpOptions) -> Result<Interpreter, InterpError> {
        let configs = program
            .configs
            .iter()
            .map(|c| match &c.value {
                ConfigValue::Value(v) => v.clone(),
                ConfigValue::File { .. } => Value::Bool(false),
            })
            .collect();
        let devices = program
            .devices
            .iter()
            .map(|d| Value::Device(d.port))
            .collect();
        let records: std::sync::Arc<[maestro_analyzer::RecordDef]> = program.records.clone().into();
        let mut states = Vec::with_capacity(program.states.len());
        for decl in &program.states {
            states.push(StateObj::new(decl, &records, options.ideal_sketches)?);
        }
        let locals = program
            .locals
            .iter()
            .map(|l| Value::zero(l.ty, &program.records))
            .collect();
        Ok(Interpreter {
            machine: Machine {
                configs,
                devices,
                states,
                locals,
                scratch: Vec::with_capacity(MAX_IN_PLACE_FIELDS),
                port_count: program.port_count,
                mode: options.parse_mode,
                source: program.source.clone(),
                packet_faults: Vec::new(),
                kept_faults: Vec::new(),
                last_fault: None,
                fault_count: 0,
                trace: None,
            },
            program: program.clone(),
        })
    }

    pub fn program(&self) -> &NfProgram {
        &self.program
    }

    /// Processes one packet.
    pub fn process(&mut self, packet: &InputPacket) -> Observation {
        // `Vec::new` does not allocate: a dropped packet costs no allocation, a sent one
        // exactly one (the frame, which the observation takes over).
        let mut frame = Vec::new();
        self.process_into(packet, &mut frame)
            .into_observation(frame)
    }

    /// Processes one packet like [`Interpreter::process`], but writes the output frame
    /// into `frame` (cleared first; left empty for [`Action::Drop`]) instead of
    /// allocating one, so a caller that only inspects the frame can reuse one buffer
    /// for a whole trace.
    pub fn process_into(&mut self, packet: &InputPacket, frame: &mut Vec<u8>) -> Action {
        self.machine.packet_faults.clear();
        self.machine
            .run_packet(&self.program.process, packet, frame)
    }

    /// Processes one packet and also returns the faults it raised.
    pub fn process_with_report(&mut self, packet: &InputPacket) -> (Observation, Vec<Fault>) {
        let obs = self.process(packet);
        (obs, std::mem::take(&mut self.machine.packet_faults))
    }

    /// Processes packets in order, one observation each.
    pub fn run<'a>(
        &mut self,
        packets: impl IntoIterator<Item = &'a InputPacket>,
    ) -> Vec<Observation> {
        packets.into_iter().map(|p| self.process(p)).collect()
    }

    /// Turns path tracing on or off. While on, every packet records the branch decisions
    /// it takes and its action ([`Interpreter::last_path`]), so path coverage can be
    /// measured against the analyzer's feasible paths (`PathSet::classify`). Off by
    /// default: the ordinary hot path records nothing.
    pub fn set_path_tracing(&mut self, on: bool) {
        self.machine.trace = if on {
            Some(self.machine.trace.take().unwrap_or_default())
        } else {
            None
        };
    }

    /// Whether path tracing is on.
    pub fn path_tracing(&self) -> bool {
        self.machine.trace.is_some()
    }

    /// The path the last processed packet took; `None` while tracing is off.
    pub fn last_path(&self) -> Option<&PathTrace> {
        self.machine.trace.as_ref()
    }

    /// Processes one packet and returns the path it took, whether or not tracing is on
    /// (tracing is left as it was).
    pub fn process_traced(&mut self, packet: &InputPacket) -> (Observation, PathTrace) {
        let was_on = self.path_tracing();
        if !was_on {
            self.set_path_tracing(true);
        }
        let obs = self.process(packet);
        let trace = if was_on {
            self.machine.trace.clone().unwrap_or_default()
        } else {
            // Taking the trace turns tracing back off.
            self.machine.trace.take().unwrap_or_default()
        };
        (obs, trace)
    }

    /// The first [`MAX_KEPT_FAULTS`] faults since the start.
    pub fn faults(&self) -> &[Fault] {
        &self.machine.kept_faults
    }

    /// How many faults happened since the start.
    pub fn fault_count(&self) -> u64 {
        self.machine.fault_count
    }

    /// The most recent fault, if any.
    pub fn last_fault(&self) -> Option<&Fault> {
        self.machine.last_fault.as_ref()
    }
}

impl Machine {
    fn fault(&mut self, span: Span, message: String) {
        let (l, c) = self.source.line_col(span.lo);
        let fault = Fault {
            location: format!("{}:{}:{}", self.source.name, l, c),
            message,
        };
        self.fault_count += 1;
        if self.kept_faults.len() < MAX_KEPT_FAULTS {
            self.kept_faults.push(fault.clone());
        }
        self.last_fault = Some(fault.clone());
        self.packet_faults.push(fault);
    }

    /// Runs the program on `input`; for a sent packet the output frame goes to `frame`
    /// (cleared first, left empty on drop).
    fn run_packet(&mut self, body: &[Stmt], input: &InputPacket, frame: &mut Vec<u8>) -> Action {
        frame.clear();
        if let Some(t) = &mut self.trace {
            t.port = input.port;
            t.decisions.clear();
            t.action = u32::MAX;
        }
        let view = PacketView::new(&input.data, self.mode);
        let mut pkt = Packet {
            view,
            ip: ipv4_header(&view),
            l4: l4_header(&view),
            in_port: input.port,
            now: input.time_ns,
            writes: Writes::default(),
        };
        // The checker guarantees an action on every path; a hand-built program may lack
        // one.
        let action = self.exec_block(body, &mut pkt).unwrap_or(Action::Drop);
        if action != Action::Drop {
            if frame.capacity() == 0 {
                // A fresh buffer (`process`): one exact allocation, without the growth
                // path `extend_from_slice` takes on an empty vector.
                *frame = input.data.to_vec();
            } else {
                frame.extend_from_slice(&input.data);
            }
            self.apply_writes(frame, &pkt.writes);
        }
        action
    }

    /// Turns `bytes` (a copy of the input frame) into the outgoing frame: applies the
    /// buffered header writes in place and recomputes the checksums they invalidate.
    #[inline]
    fn apply_writes(&self, bytes: &mut [u8], w: &Writes) {
        if !w.any {
            return;
        }
        // MAC writes alone (a forwarding NF's usual edit) change no checksum: write them
        // as `PacketMut` would (only into a whole Ethernet header) without parsing the
        // frame again.
        if !w.headers {
            if let Some(eth) = bytes.get_mut(..ETH_LEN) {
                if let Some(m) = w.eth_dst {
                    eth[..6].copy_from_slice(&m);
                }
                if let Some(m) = w.eth_src {
                    eth[6..12].copy_from_slice(&m);
                }
            }
            return;
        }
        self.apply_header_writes(bytes, w);
    }

    /// The general case of [`Machine::apply_writes`]: IPv4/L4 writes, through `PacketMut`
    /// so that the checksum rules are the runtime's. Out of line: it is the rare path of
    /// most NFs and its size would crowd the common one.
    #[inline(never)]
    fn apply_header_writes(&self, bytes: &mut [u8], w: &Writes) {
        let mut p = PacketMut::new(bytes, self.mode);
        if let Some(m) = w.eth_dst {
            p.set_eth_dst(m);
        }
        if let Some(m) = w.eth_src {
            p.set_eth_src(m);
        }
        // The setters refuse (return false) only without an IPv4/L4 header, which the
        // checker rules out on every path that writes them.
        if let Some(a) = w.ip_src {
            p.set_ip_src(a);
        }
        if let Some(a) = w.ip_dst {
            p.set_ip_dst(a);
        }
        if let Some(v) = w.ip_ttl {
            p.set_ip_ttl(v);
        }
        if let Some(v) = w.ip_tos {
            p.set_ip_tos(v);
        }
        if let Some(v) = w.sport {
            p.set_l4_sport(v);
        }
        if let Some(v) = w.dport {
            p.set_l4_dport(v);
        }
        p.finish();
    }

    /// Runs a block; `Some` when the path ended in an action.
    ///
    /// One loop for the whole path: entering a branch pushes what is left of the current
    /// block (if anything) on a small stack instead of recursing, so a branch costs no
    /// call frame. Deeper nesting than the stack holds recurses.
    fn exec_block<'b>(&mut self, block: &'b [Stmt], pkt: &mut Packet) -> Option<Action> {
        let mut rest: [&'b [Stmt]; BLOCK_STACK] = [&[]; BLOCK_STACK];
        let mut depth = 0usize;
        let mut cur = block;
        loop {
            let Some((s, tail)) = cur.split_first() else {
                if depth == 0 {
                    return None;
                }
                depth -= 1;
                cur = rest[depth];
                continue;
            };
            cur = tail;
            match self.exec(s, pkt) {
                Step::Next => {}
                Step::Done(o) => return Some(o),
                Step::Enter(b) => {
                    if cur.is_empty() {
                        // Nothing to come back to: the branch replaces the block.
                        cur = b;
                    } else if depth < BLOCK_STACK {
                        rest[depth] = cur;
                        depth += 1;
                        cur = b;
                    } else if let Some(o) = self.exec_block(b, pkt) {
                        return Some(o);
                    }
                }
            }
        }
    }

    /// Runs one statement; a branch is returned for [`Machine::exec_block`] to enter.
    #[inline(always)]
    fn exec<'b>(&mut self, s: &'b Stmt, pkt: &mut Packet) -> Step<'b> {
        match &s.kind {
            StmtKind::Let { local, value } | StmtKind::Assign { local, value } => {
                if let ExprKind::Record(_, fields) = &value.kind {
                    if fields.len() <= MAX_IN_PLACE_FIELDS {
                        self.assign_record(local.0 as usize, fields, pkt);
                        return Step::Next;
                    }
                }
                if let ExprKind::Call(c) = &value.kind {
                    if c.method == Method::TableKey && self.key_in_place(local.0 as usize, c) {
                        return Step::Next;
                    }
                }
                let v = self.eval(value, pkt);
                self.locals[local.0 as usize] = v;
                Step::Next
            }
            StmtKind::SetField { field, value } => {
                let v = self.eval(value, pkt);
                let w = &mut pkt.writes;
                w.any = true;
                match (field, &v) {
                    (PktField::EthDst, Value::Mac(m)) => w.eth_dst = Some(*m),
                    (PktField::EthSrc, Value::Mac(m)) => w.eth_src = Some(*m),
                    (PktField::IpSrc, _) => (w.ip_src, w.headers) = (Some(v.bits() as u32), true),
                    (PktField::IpDst, _) => (w.ip_dst, w.headers) = (Some(v.bits() as u32), true),
                    (PktField::IpTtl, _) => (w.ip_ttl, w.headers) = (Some(v.bits() as u8), true),
                    (PktField::IpTos, _) => (w.ip_tos, w.headers) = (Some(v.bits() as u8), true),
                    (PktField::L4Sport, _) => (w.sport, w.headers) = (Some(v.bits() as u16), true),
                    (PktField::L4Dport, _) => (w.dport, w.headers) = (Some(v.bits() as u16), true),
                    _ => {}
                }
                Step::Next
            }
            StmtKind::If { cond, then, els } => {
                let yes = self.eval_cond(cond, pkt);
                self.decide(s, yes);
                Step::Enter(if yes { then } else { els })
            }
            StmtKind::IfLet {
                local,
                call,
                then,
                els,
            } => {
                let r = self.call(call, pkt);
                self.decide(s, r.is_some());
                match r {
                    Some(v) => {
                        self.locals[local.0 as usize] = v;
                        Step::Enter(then)
                    }
                    None => Step::Enter(els),
                }
            }
            StmtKind::Parse { layer, els } => {
                let l = pkt.view.layout();
                let ok = match layer {
                    Layer::Ipv4 => l.ipv4.is_some(),
                    Layer::L4 => l.l4.is_some(),
                };
                self.decide(s, ok);
                if ok {
                    Step::Next
                } else {
                    Step::Enter(els)
                }
            }
            StmtKind::Call(call) => {
                self.call(call, pkt);
                Step::Next
            }
            StmtKind::Action(a) => {
                if let Some(t) = &mut self.trace {
                    t.action = s.span.lo;
                }
                Step::Done(self.exec_action(s, a, pkt))
            }
        }
    }

    /// `eval(cond).as_bool()`. A comparison of two leaves (`in == wan`) compares them in
    /// place, without a call of the evaluator or a boolean value in between.
    #[inline(always)]
    fn eval_cond(&mut self, cond: &Expr, pkt: &mut Packet) -> bool {
        if let ExprKind::Binary(op @ (BinOp::Eq | BinOp::Ne), a, b) = &cond.kind {
            if is_leaf(a) && is_leaf(b) {
                let x = self.eval(a, pkt);
                let y = self.eval(b, pkt);
                return (x == y) == (*op == BinOp::Eq);
            }
        }
        self.eval_cond_compound(cond, pkt)
    }

    /// [`Machine::eval_cond`] of any condition: `&&`, `||`, `!` and comparisons give
    /// their truth directly instead of as a boolean value that is then tested.
    #[inline(never)]
    fn eval_cond_compound(&mut self, cond: &Expr, pkt: &mut Packet) -> bool {
        match &cond.kind {
            // `ops` and `eval` short-circuit the same way, on `as_bool` of each side.
            ExprKind::Binary(BinOp::And, a, b) => {
                self.eval_cond_compound(a, pkt) && self.eval_cond_compound(b, pkt)
            }
            ExprKind::Binary(BinOp::Or, a, b) => {
                self.eval_cond_compound(a, pkt) || self.eval_cond_compound(b, pkt)
            }
            ExprKind::Binary(op, a, b) => {
                let x = self.eval(a, pkt);
                let y = self.eval(b, pkt);
                match op {
                    BinOp::Eq => x == y,
                    BinOp::Ne => x != y,
                    _ => ops::binary(*op, &x, &y).as_bool(),
                }
            }
            // `!b` is true iff `b` is `false`; `!` of anything else is not a boolean.
            ExprKind::Unary(UnOp::Not, a) => matches!(self.eval(a, pkt), Value::Bool(false)),
            _ => self.eval(cond, pkt).as_bool(),
        }
    }

    /// `locals[slot] = Record { fields }`, reusing the local's previous record when
    /// nothing else holds it. NFs build a flow key per packet in the same local; a fresh
    /// shared record each time cost an allocation and a free per packet (a tenth of the
    /// interpreter's time on the firewall). Values are immutable to the program, and a
    /// record still held elsewhere (stored in state, or in one of the new fields) is
    /// left alone and replaced, so the meaning is the same.
    fn assign_record(&mut self, slot: usize, fields: &[Expr], pkt: &mut Packet) {
        // The usual flow key: fields that are leaves other than the local itself. They
        // cannot see the local, so each goes straight into its place.
        if fields
            .iter()
            .all(|f| is_leaf(f) && !matches!(f.kind, ExprKind::Local(id) if id.0 as usize == slot))
        {
            if let Some(local) = self.locals.get_mut(slot) {
                let mut old = std::mem::replace(local, Value::Bool(false));
                if let Value::Record(r) = &mut old {
                    if r.len() == fields.len() {
                        if let Some(dst) = std::sync::Arc::get_mut(r) {
                            for (d, f) in dst.iter_mut().zip(fields) {
                                *d = self.eval(f, pkt);
                            }
                            self.locals[slot] = old;
                            return;
                        }
                    }
                }
                self.locals[slot] = old;
            }
        }
        // All fields first: they may read the local itself. Into a buffer kept across
        // packets, so that this costs no allocation either.
        let mut vals = std::mem::take(&mut self.scratch);
        vals.clear();
        for f in fields {
            let v = self.eval(f, pkt);
            vals.push(v);
        }
        if let Some(local) = self.locals.get_mut(slot) {
            let reused = match local {
                Value::Record(r) if r.len() == vals.len() => match std::sync::Arc::get_mut(r) {
                    Some(dst) => {
                        // The old fields go to the buffer and are dropped with `clear`.
                        dst.swap_with_slice(&mut vals);
                        true
                    }
                    None => false,
                },
                _ => false,
            };
            if !reused {
                // One allocation: the slice iterator has an exact length.
                *local = Value::Record(
                    vals.iter_mut()
                        .map(|v| std::mem::replace(v, Value::Bool(false)))
                        .collect(),
                );
            }
        }
        vals.clear();
        self.scratch = vals;
    }

    /// `locals[slot] = t.key(i)` for an index that is a leaf, decoding a packed key into
    /// the local's record when nothing else holds it (as [`Machine::assign_record`]
    /// does): the NAT reads the flow of every reply this way, and a fresh record cost an
    /// allocation and a free each time. `false` (nothing done) for other calls.
    fn key_in_place(&mut self, slot: usize, c: &StateCall) -> bool {
        let [a] = c.args.as_slice() else {
            return false;
        };
        let Some(i) = leaf_ref(&self.locals, &self.configs, a).map(Value::bits) else {
            return false;
        };
        let Some(dst) = self.locals.get_mut(slot) else {
            return false;
        };
        match state::table_key_into(&mut self.states, c.state.0 as usize, i, dst) {
            None => false,
            Some(Ok(())) => true,
            Some(Err(e)) => {
                let v = self.out_of_range(c, e).unwrap_or(Value::Bool(false));
                self.locals[slot] = v;
                true
            }
        }
    }

    /// Records a branch decision when tracing.
    #[inline(always)]
    fn decide(&mut self, s: &Stmt, taken: bool) {
        if let Some(t) = &mut self.trace {
            t.decisions.push(Decision {
                at: s.span.lo,
                taken,
            });
        }
    }

    fn exec_action(&mut self, s: &Stmt, a: &IrAction, pkt: &mut Packet) -> Action {
        match a {
            IrAction::Drop => Action::Drop,
            IrAction::Flood => Action::Flood,
            IrAction::Forward(e) => {
                let port = self.eval(e, pkt).bits();
                if port == pkt.in_port as u64 {
                    // libVig: returning the input device means drop.
                    Action::Drop
                } else if port >= self.port_count as u64 {
                    let n = self.port_count;
                    self.fault(
                        s.span,
                        format!(
                            "forward to port {port}, but the NF has {n} ports (0..{n}); dropped"
                        ),
                    );
                    Action::Drop
                } else {
                    Action::Forward(port as u16)
                }
            }
        }
    }

    /// Evaluates an expression. The leaves (most evaluations) are inline in the caller;
    /// a call of the whole evaluator saved and restored a dozen registers for each.
    #[inline(always)]
    fn eval(&mut self, e: &Expr, pkt: &mut Packet) -> Value {
        match &e.kind {
            ExprKind::Const(v) => v.clone(),
            ExprKind::Config(id) => self.configs[id.0 as usize].clone(),
            ExprKind::Device(id) => self.devices[id.0 as usize].clone(),
            ExprKind::Local(id) => self.locals[id.0 as usize].clone(),
            ExprKind::In => Value::Device(pkt.in_port),
            ExprKind::Now => Value::Int(IntTy::U64, pkt.now),
            ExprKind::Packet(f) => read_field(*f, pkt),
            _ => self.eval_compound(e, pkt),
        }
    }

    /// Evaluates an expression that is not a leaf.
    #[inline(never)]
    fn eval_compound(&mut self, e: &Expr, pkt: &mut Packet) -> Value {
        match &e.kind {
            ExprKind::Const(_)
            | ExprKind::Config(_)
            | ExprKind::Device(_)
            | ExprKind::Local(_)
            | ExprKind::In
            | ExprKind::Now
            | ExprKind::Packet(_) => self.eval(e, pkt),
            ExprKind::Unary(op, a) => {
                let v = self.eval(a, pkt);
                ops::unary(*op, &v)
            }
            ExprKind::Binary(BinOp::And, a, b) => {
                Value::Bool(self.eval(a, pkt).as_bool() && self.eval(b, pkt).as_bool())
            }
            ExprKind::Binary(BinOp::Or, a, b) => {
                Value::Bool(self.eval(a, pkt).as_bool() || self.eval(b, pkt).as_bool())
            }
            ExprKind::Binary(op, a, b) => {
                let x = self.eval(a, pkt);
                let y = self.eval(b, pkt);
                ops::binary(*op, &x, &y)
            }
            ExprKind::Cast(a) => {
                let v = self.eval(a, pkt);
                ops::cast(&v, e.ty)
            }
            ExprKind::Builtin(Builtin::Hash, args) => {
                let mut h = StructHasher::new();
                for a in args {
                    let v = self.eval(a, pkt);
                    feed_hash(&mut h, &v);
                }
                Value::Int(IntTy::U32, h.finish() as u64)
            }
            ExprKind::Builtin(b, args) => {
                // At most three operands: evaluate without allocating.
                let mut vals: [Value; 3] =
                    [Value::Bool(false), Value::Bool(false), Value::Bool(false)];
                for (slot, a) in vals.iter_mut().zip(args) {
                    *slot = self.eval(a, pkt);
                }
                ops::builtin(*b, &vals[..args.len().min(3)])
            }
            // One allocation: the slice iterator has an exact length.
            ExprKind::Record(_, fields) => {
                Value::Record(fields.iter().map(|f| self.eval(f, pkt)).collect())
            }
            ExprKind::Field(r, i) => {
                // A field of a local (`mapping.dst_ip`) is read in place: no clone and
                // drop of the shared record.
                if let Some(v) = leaf_ref(&self.locals, &self.configs, r) {
                    return match v {
                        Value::Record(fs) => {
                            fs.get(*i as usize).cloned().unwrap_or(Value::Bool(false))
                        }
                        other => other.clone(),
                    };
                }
                match self.eval(r, pkt) {
                    Value::Record(fs) => fs.get(*i as usize).cloned().unwrap_or(Value::Bool(false)),
                    other => other,
                }
            }
            // Non-opt calls always give a value.
            ExprKind::Call(c) => self.call(c, pkt).unwrap_or(Value::Bool(false)),
        }
    }

    /// Performs a state call; `None` is "no result" of an *opt* call (and of calls
    /// without a result).
    fn call(&mut self, c: &StateCall, pkt: &mut Packet) -> Option<Value> {
        let now = pkt.now;
        let sid = c.state.0 as usize;
        let m = c.method;
        // State calls take at most two arguments. The first is only read (a key or an
        // index), so a local or a constant is passed by reference: no clone and drop of
        // a shared record per lookup. Otherwise it is evaluated first, as written.
        let leaf = match c.args.as_slice() {
            [] => Some(None),
            [a] => leaf_ref(&self.locals, &self.configs, a).map(Some),
            _ => None,
        };
        let fast = leaf.and_then(|a0| state::table_call_unary(&mut self.states, sid, m, a0, now));
        let result = match fast {
            Some(r) => r,
            None => self.call_general(c, pkt),
        };
        match result {
            Ok(v) => v,
            Err(e) => self.out_of_range(c, e),
        }
    }

    /// [`Machine::call`] of any method.
    #[inline(never)]
    fn call_general(
        &mut self,
        c: &StateCall,
        pkt: &mut Packet,
    ) -> Result<Option<Value>, state::OutOfRange> {
        let now = pkt.now;
        let sid = c.state.0 as usize;
        let m = c.method;
        let (e0, e1) = (c.args.first(), c.args.get(1));
        let own0 = match e0 {
            Some(e) if leaf_ref(&self.locals, &self.configs, e).is_none() => {
                Some(self.eval(e, pkt))
            }
            _ => None,
        };
        // Reading a local cannot be affected by the second argument (expressions do not
        // assign locals), so taking the reference after evaluating it keeps the meaning.
        let a1 = e1.map(|e| self.eval(e, pkt));
        let a0 = match (&own0, e0) {
            (Some(v), _) => Some(v),
            (None, Some(e)) => leaf_ref(&self.locals, &self.configs, e),
            (None, None) => None,
        };
        state::call(&mut self.states, sid, m, a0, a1, now)
    }

    /// Reports a call through an out-of-range index; its fallback result.
    #[cold]
    #[inline(never)]
    fn out_of_range(&mut self, c: &StateCall, e: state::OutOfRange) -> Option<Value> {
        let state::OutOfRange {
            index,
            limit,
            fallback,
        } = e;
        let name = self
            .states
            .get(c.state.0 as usize)
            .map(|s| s.name().to_string())
            .unwrap_or_default();
        self.fault(
            c.span,
            format!(
                "`{}.{}` with index {index}, outside 0..{limit}",
                name,
                method_name(c.method)
            ),
        );
        fallback
    }
}

/// Whether [`Machine::eval`] evaluates `e` inline (no call of the evaluator).
#[inline(always)]
fn is_leaf(e: &Expr) -> bool {
    matches!(
        e.kind,
        ExprKind::Const(_)
            | ExprKind::Config(_)
            | ExprKind::Device(_)
            | ExprKind::Local(_)
            | ExprKind::In
            | ExprKind::Now
            | ExprKind::Packet(_)
    )
}

/// The value of an argument that names a local, a config or a constant, by reference.
#[inline]
fn leaf_ref<'a>(locals: &'a [Value], configs: &'a [Value], e: &'a Expr) -> Option<&'a Value> {
    match &e.kind {
        ExprKind::Local(id) => locals.get(id.0 as usize),
        ExprKind::Config(id) => configs.get(id.0 as usize),
        ExprKind::Const(v) => Some(v),
        _ => None,
    }
}

fn method_name(m: Method) -> &'static str {
    m.name()
}

/// Reads a packet field, seeing the writes made so far on this path.
///
/// Reads the bytes as `PacketView`'s accessors do, but from the fixed-size headers the
/// parse guarantees (20 IPv4 bytes, 4 L4 bytes), found once per packet, so each read is
/// one load instead of a header lookup and a bounds-checked loop per byte.
#[inline]
fn read_field(f: PktField, pkt: &Packet) -> Value {
    let v = &pkt.view;
    let w = &pkt.writes;
    let ip = pkt.ip;
    let u8v = |x: u8| Value::Int(IntTy::U8, x as u64);
    let u16v = |x: u16| Value::Int(IntTy::U16, x as u64);
    let ip16 = |off: usize| ip.map_or(0, |h| u16::from_be_bytes([h[off], h[off + 1]]));
    let ip32 = |off: usize| {
        ip.map_or(0, |h| {
            u32::from_be_bytes([h[off], h[off + 1], h[off + 2], h[off + 3]])
        })
    };
    let port = |off: usize| {
        pkt.l4
            .map_or(0, |h| u16::from_be_bytes([h[off], h[off + 1]]))
    };
    match f {
        PktField::Len => u16v(v.len().min(u16::MAX as usize) as u16),
        PktField::EthDst => Value::Mac(w.eth_dst.unwrap_or_else(|| v.eth_dst())),
        PktField::EthSrc => Value::Mac(w.eth_src.unwrap_or_else(|| v.eth_src())),
        PktField::EthType => u16v(v.eth_type()),
        PktField::IpSrc => Value::Ip4(w.ip_src.unwrap_or_else(|| ip32(12))),
        PktField::IpDst => Value::Ip4(w.ip_dst.unwrap_or_else(|| ip32(16))),
        PktField::IpProto => u8v(ip.map_or(0, |h| h[9])),
        PktField::IpTtl => u8v(w.ip_ttl.unwrap_or_else(|| ip.map_or(0, |h| h[8]))),
        PktField::IpTos => u8v(w.ip_tos.unwrap_or_else(|| ip.map_or(0, |h| h[1]))),
        PktField::IpIhl => u8v(ip.map_or(0, |h| h[0] & 0x0f)),
        PktField::IpLen => u16v(ip16(2)),
        PktField::IpId => u16v(ip16(4)),
        PktField::IpFrag => u16v(ip16(6)),
        PktField::L4Sport => u16v(w.sport.unwrap_or_else(|| port(0))),
        PktField::L4Dport => u16v(w.dport.unwrap_or_else(|| port(2))),
    }
}

/// The fixed 20 bytes of the IPv4 header, if `parse ipv4` succeeds (`PacketView::ipv4`).
#[inline]
fn ipv4_header<'a>(v: &PacketView<'a>) -> Option<&'a [u8; IPV4_MIN_LEN]> {
    v.ipv4()?.bytes().get(..IPV4_MIN_LEN)?.try_into().ok()
}

/// The port bytes of the L4 header, if `parse l4` succeeds (`PacketView::l4_ports`).
#[inline]
fn l4_header<'a>(v: &PacketView<'a>) -> Option<&'a [u8; 4]> {
    let off = v.layout().l4?;
    v.bytes().get(off..off.checked_add(4)?)?.try_into().ok()
}

/// Feeds a value to the struct hash as the C NFs would (`nf-semantics.md` §1.6): each
/// scalar as the little-endian reading of its network-order bytes (so a port or address
/// read from a packet hashes as in C), a MAC one byte per word, record fields in
/// declaration order. 64-bit values are two words (high half first, as on the wire).
pub fn feed_hash(h: &mut StructHasher, v: &Value) {
    match v {
        Value::Int(IntTy::U8, x) => h.word(*x as u8 as u32),
        Value::Int(IntTy::U16, x) => h.word((*x as u16).swap_bytes() as u32),
        Value::Int(IntTy::U32, x) => h.word((*x as u32).swap_bytes()),
        Value::Int(IntTy::U64 | IntTy::I64, x) => {
            let b = x.to_be_bytes();
            h.word(u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
            h.word(u32::from_le_bytes([b[4], b[5], b[6], b[7]]));
        }
        Value::Bool(b) => h.word(*b as u32),
        Value::Mac(m) => {
            for b in m {
                h.word(*b as u32);
            }
        }
        Value::Ip4(a) => h.word(a.swap_bytes()),
        Value::Device(d) => h.word(d.swap_bytes() as u32),
        Value::Record(fields) => {
            for f in fields.iter() {
                feed_hash(h, f);
            }
        }
    }
}

/// The struct hash of a value (what `hash(v)` gives).
pub fn hash_value(v: &Value) -> u32 {
    let mut h = StructHasher::new();
    feed_hash(&mut h, v);
    h.finish()
}
