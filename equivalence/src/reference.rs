//! The reference interpreter's observations for one trace, kept small.
//!
//! Most NFs send a packet out with a few header bytes changed (fw rewrites the two MAC
//! addresses), so an observation is stored as patches of its input frame, in exactly the
//! encoding record files use for `--patch-frames` ([`frame_patches`]). On a million
//! packets that is about a third of the memory of one `Vec<u8>` per frame, and the
//! checker, which runs the interpreter beside the generated binaries on a few cores,
//! spends its time on the NF's work instead of on allocating, faulting in and evicting
//! frames it only compares once.
//!
//! Observations are compared with a record file's ([`ObservationRef`]) in place: the
//! encoding is a function of the input and the output frame, so when both sides are
//! patches their bytes are compared and neither frame is rebuilt. The oracles that need
//! real [`Observation`]s get them from [`CompactReference::observations`].

use maestro_interpreter::Action as Sent;
use maestro_runtime::exec::wire::{frame_patches, FrameRef, ObservationRef, PatchMemo, RecordRun};
use maestro_runtime::{InputPacket, Observation};

/// What the NF did with one packet, with where its frame lives in `bytes`.
#[derive(Clone, Copy, Debug)]
struct Entry {
    action: Action,
    /// Output port (`Forward` only).
    port: u16,
    frame: Frame,
    /// Start of the frame's data in `bytes` (patches or whole bytes).
    at: usize,
    /// Length of that data.
    len: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    Drop,
    Forward,
    Flood,
}

#[derive(Clone, Copy, Debug)]
enum Frame {
    /// No frame (a drop).
    None,
    /// The input frame with `count` patches, as [`frame_patches`] encodes them.
    Patched { count: u8 },
    /// Its own bytes (another length than the input, or no shorter as patches).
    Whole,
}

/// The observations of one trace, in input order, each relative to its input frame.
#[derive(Debug, Default)]
pub struct CompactReference {
    entries: Vec<Entry>,
    bytes: Vec<u8>,
    memo: PatchMemo,
}

impl CompactReference {
    pub fn with_capacity(packets: usize) -> CompactReference {
        CompactReference {
            entries: Vec::with_capacity(packets),
            ..CompactReference::default()
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Appends the observation of the next packet, `input`.
    pub fn push(&mut self, input: &[u8], o: &Observation) {
        match o {
            Observation::Drop => self.push_action(input, Sent::Drop, &[]),
            Observation::Forward { port, bytes } => {
                self.push_action(input, Sent::Forward(*port), bytes)
            }
            Observation::Flood { bytes } => self.push_action(input, Sent::Flood, bytes),
        }
    }

    /// [`CompactReference::push`] for what the interpreter's `process_into` gives: the
    /// action, and the frame in a buffer the caller reuses (ignored for a drop).
    pub fn push_action(&mut self, input: &[u8], sent: Sent, frame: &[u8]) {
        let (action, port) = match sent {
            Sent::Drop => (Action::Drop, 0),
            Sent::Forward(port) => (Action::Forward, port),
            Sent::Flood => (Action::Flood, 0),
        };
        let at = self.bytes.len();
        let frame = if action == Action::Drop {
            Frame::None
        } else if let Some(count) =
            frame_patches(input, frame, &mut self.bytes, Some(&mut self.memo))
        {
            Frame::Patched { count }
        } else {
            self.bytes.extend_from_slice(frame);
            Frame::Whole
        };
        self.entries.push(Entry {
            action,
            port,
            frame,
            at,
            len: self.bytes.len() - at,
        });
    }

    /// Entry `e`'s frame as a record file would hold it (input `input`).
    fn frame_ref<'a>(&'a self, e: &Entry, input: &'a [u8]) -> FrameRef<'a> {
        let data = &self.bytes[e.at..e.at + e.len];
        match e.frame {
            Frame::Patched { count } => FrameRef::Patched {
                base: input,
                count,
                patches: data,
            },
            Frame::None | Frame::Whole => FrameRef::Whole(data),
        }
    }

    /// Observation `i` (of input `input`, the frame it was pushed with).
    pub fn observation(&self, i: usize, input: &[u8]) -> Option<Observation> {
        let e = self.entries.get(i)?;
        let bytes = || self.frame_ref(e, input).to_vec();
        Some(match e.action {
            Action::Drop => Observation::Drop,
            Action::Forward => Observation::Forward {
                port: e.port,
                bytes: bytes(),
            },
            Action::Flood => Observation::Flood { bytes: bytes() },
        })
    }

    /// Every observation, for the oracles that work on whole observations.
    pub fn observations(&self, inputs: &[InputPacket]) -> Vec<Observation> {
        self.entries
            .iter()
            .zip(inputs)
            .enumerate()
            .filter_map(|(i, (_, p))| self.observation(i, &p.data))
            .collect()
    }

    /// Whether `run` (over the same `inputs`) observed exactly what the reference did, for
    /// every packet. Long runs are checked in two halves at once: the last run's check is
    /// what a check waits for at its end, with a core to spare.
    pub fn matches_run(&self, inputs: &[InputPacket], run: &RecordRun<'_>) -> bool {
        /// Below this many packets a second thread costs more than it saves.
        const SPLIT: usize = 1 << 16;
        let n = self.len();
        if run.len() != n || inputs.len() != n {
            return false;
        }
        if n < SPLIT {
            return self.matches_range(inputs, run, 0..n);
        }
        std::thread::scope(|s| {
            let upper = s.spawn(|| self.matches_range(inputs, run, n / 2..n));
            let lower = self.matches_range(inputs, run, 0..n / 2);
            // A panic in the upper half (none is expected) counts as a mismatch: the full
            // comparison that follows then decides.
            lower && upper.join().unwrap_or(false)
        })
    }

    /// [`CompactReference::matches_run`] over the packets in `range` (within bounds).
    fn matches_range(
        &self,
        inputs: &[InputPacket],
        run: &RecordRun<'_>,
        range: std::ops::Range<usize>,
    ) -> bool {
        let pairs = self.entries[range.clone()]
            .iter()
            .zip(&inputs[range.clone()]);
        pairs.zip(range).all(|((e, p), i)| {
            let Some(actual) = run.observation(i) else {
                return false;
            };
            match (e.action, actual) {
                (Action::Drop, ObservationRef::Drop) => true,
                (Action::Forward, ObservationRef::Forward { port, frame }) if port == e.port => {
                    self.frame_matches(e, &p.data, &frame)
                }
                (Action::Flood, ObservationRef::Flood { frame }) => {
                    self.frame_matches(e, &p.data, &frame)
                }
                _ => false,
            }
        })
    }

    /// Whether entry `e`'s frame is `actual`: by the encodings where both are patches or
    /// both whole (each encoding stands for one frame), else by rebuilding ours.
    fn frame_matches(&self, e: &Entry, input: &[u8], actual: &FrameRef<'_>) -> bool {
        let ours = &self.bytes[e.at..e.at + e.len];
        match (e.frame, actual) {
            (
                Frame::Patched { count },
                FrameRef::Patched {
                    count: c, patches, ..
                },
            ) => count == *c && patches.get(..ours.len()) == Some(ours),
            (Frame::Whole, FrameRef::Whole(b)) => *b == ours,
            _ => actual.eq_bytes(&self.frame_ref(e, input).to_vec()),
        }
    }

    /// Bytes held, for the record.
    pub fn heap_bytes(&self) -> usize {
        self.bytes.capacity() + self.entries.capacity() * std::mem::size_of::<Entry>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(n: usize, seed: u8) -> Vec<u8> {
        (0..n)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    }

    /// Every kind of observation comes back exactly as pushed.
    #[test]
    fn round_trips_every_shape() {
        let input = frame(64, 1);
        let mut changed = input.clone();
        changed[0] ^= 0xff; // first byte
        changed[5] ^= 1; // merged with the first (gap 4)
        changed[30] = 7; // its own patch
        changed[63] ^= 2; // last byte
        let mut all_changed = input.clone();
        for b in &mut all_changed {
            *b ^= 0x55;
        }
        let cases = vec![
            Observation::Drop,
            Observation::Forward {
                port: 1,
                bytes: input.clone(),
            },
            Observation::Forward {
                port: 3,
                bytes: changed.clone(),
            },
            Observation::Flood {
                bytes: changed.clone(),
            },
            Observation::Forward {
                port: 0,
                bytes: all_changed,
            },
            Observation::Forward {
                port: 2,
                bytes: frame(80, 9),
            },
            Observation::Forward {
                port: 2,
                bytes: Vec::new(),
            },
        ];
        let mut r = CompactReference::default();
        for o in &cases {
            r.push(&input, o);
        }
        assert_eq!(r.len(), cases.len());
        for (i, o) in cases.iter().enumerate() {
            assert_eq!(r.observation(i, &input).as_ref(), Some(o), "case {i}");
        }
        assert!(r.observation(cases.len(), &input).is_none());
    }

    proptest::proptest! {
        /// Any output frame, of the input's length with any bytes changed or of another
        /// length, comes back exactly.
        #[test]
        fn any_frame_round_trips(
            input in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200),
            changes in proptest::collection::vec((0usize..200, proptest::prelude::any::<u8>()), 0..12),
            other in proptest::option::of(proptest::collection::vec(proptest::prelude::any::<u8>(), 0..80)),
        ) {
            let out = other.unwrap_or_else(|| {
                let mut out = input.clone();
                for (at, b) in &changes {
                    if let Some(x) = out.get_mut(*at) {
                        *x = *b;
                    }
                }
                out
            });
            let o = Observation::Forward { port: 1, bytes: out };
            let mut r = CompactReference::default();
            r.push(&input, &o);
            proptest::prop_assert_eq!(r.observation(0, &input), Some(o));
        }
    }

    /// A frame with four bytes changed is stored in far fewer bytes than the frame.
    #[test]
    fn small_changes_are_stored_as_patches() {
        let input = frame(1500, 3);
        let mut out = input.clone();
        out[..4].copy_from_slice(&[9, 9, 9, 9]);
        let mut r = CompactReference::default();
        r.push(
            &input,
            &Observation::Forward {
                port: 1,
                bytes: out,
            },
        );
        assert!(r.bytes.len() < 16, "{} bytes", r.bytes.len());
    }
}

#[cfg(test)]
mod record_tests {
    use super::*;
    use maestro_runtime::exec::wire::{
        FrameEncoding, RecordEntry, RecordFileWriter, RecordHeader, RecordTrailer,
    };
    use maestro_runtime::exec::{PacketRecord, Strategy};

    fn inputs() -> Vec<InputPacket> {
        (0..6u8)
            .map(|k| InputPacket {
                port: u16::from(k % 2),
                time_ns: u64::from(k),
                data: (0..60).map(|i: u8| i ^ k).collect(),
            })
            .collect()
    }

    /// Observations a run might make: unchanged, rewritten, dropped, flooded, resized.
    fn outputs(inputs: &[InputPacket]) -> Vec<Observation> {
        inputs
            .iter()
            .enumerate()
            .map(|(k, p)| {
                let mut bytes = p.data.clone();
                match k {
                    0 => Observation::Forward { port: 1, bytes },
                    1 => {
                        bytes[0..12].reverse();
                        Observation::Forward { port: 0, bytes }
                    }
                    2 => Observation::Drop,
                    3 => {
                        bytes[59] = 0xee;
                        Observation::Flood { bytes }
                    }
                    4 => {
                        bytes.truncate(20);
                        Observation::Forward { port: 1, bytes }
                    }
                    _ => Observation::Forward { port: 2, bytes },
                }
            })
            .collect()
    }

    fn record_file(
        dir: &std::path::Path,
        inputs: &[InputPacket],
        obs: &[Observation],
    ) -> std::path::PathBuf {
        record_file_as(dir, inputs, obs, FrameEncoding::InputPatches)
    }

    fn record_file_as(
        dir: &std::path::Path,
        inputs: &[InputPacket],
        obs: &[Observation],
        frames: FrameEncoding,
    ) -> std::path::PathBuf {
        let path = dir.join("records.bin");
        let header = RecordHeader {
            nf: "test".into(),
            strategy: Strategy::Seq,
            cores: 1,
            schedule: "threads".into(),
            mutant: None,
            rtm: "not applicable".into(),
            parse_mode: "strict".into(),
            renamed: Vec::new(),
            frames,
        };
        let mut w = RecordFileWriter::create(&path, &header).expect("create");
        for (p, o) in inputs.iter().zip(obs) {
            let entry = RecordEntry {
                observation: o.clone(),
                record: PacketRecord::default(),
                translations: Vec::new(),
            };
            w.entry_with_input(&entry, Some(&p.data)).expect("entry");
        }
        w.finish(&RecordTrailer::default()).expect("finish");
        path
    }

    /// Long runs are checked in two halves: a difference in either is found.
    #[test]
    fn long_runs_are_checked_in_both_halves() {
        let dir = tempfile::tempdir().expect("tempdir");
        let n = 70_000;
        let inputs: Vec<InputPacket> = (0..n)
            .map(|k| InputPacket {
                port: 0,
                time_ns: k as u64,
                data: (k as u32).to_le_bytes().repeat(4),
            })
            .collect();
        let expected: Vec<Observation> = inputs
            .iter()
            .map(|p| {
                let mut bytes = p.data.clone();
                bytes[0] ^= 0xff;
                Observation::Forward { port: 1, bytes }
            })
            .collect();
        let mut reference = CompactReference::default();
        for (p, o) in inputs.iter().zip(&expected) {
            reference.push(&p.data, o);
        }
        let run_of = |obs: &[Observation]| {
            let path = record_file(dir.path(), &inputs, obs);
            std::fs::read(path).expect("read")
        };
        let same = run_of(&expected);
        let run = RecordRun::from_bytes("same", same, &inputs).expect("parse");
        assert!(reference.matches_run(&inputs, &run));
        for at in [10, n - 10] {
            let mut other = expected.clone();
            other[at] = Observation::Drop;
            let run = RecordRun::from_bytes("other", run_of(&other), &inputs).expect("parse");
            assert!(!reference.matches_run(&inputs, &run), "packet {at}");
        }
    }

    /// A run that observed what the reference did matches it; one changed byte, port or
    /// action, or a missing packet, does not.
    #[test]
    fn matches_a_record_file_exactly() {
        let dir = tempfile::tempdir().expect("tempdir");
        let inputs = inputs();
        let expected = outputs(&inputs);
        let mut reference = CompactReference::default();
        for (p, o) in inputs.iter().zip(&expected) {
            reference.push(&p.data, o);
        }
        let path = record_file(dir.path(), &inputs, &expected);
        let run = RecordRun::read(&path, &inputs).expect("read");
        assert!(reference.matches_run(&inputs, &run));
        assert_eq!(reference.observations(&inputs), expected);

        let mut changes: Vec<Vec<Observation>> = Vec::new();
        let mut byte = expected.clone();
        if let Observation::Forward { bytes, .. } = &mut byte[1] {
            bytes[30] ^= 1;
        }
        changes.push(byte);
        let mut port = expected.clone();
        port[0] = Observation::Forward {
            port: 0,
            bytes: inputs[0].data.clone(),
        };
        changes.push(port);
        let mut action = expected.clone();
        action[2] = Observation::Flood {
            bytes: inputs[2].data.clone(),
        };
        changes.push(action);
        for (k, other) in changes.iter().enumerate() {
            let path = record_file(dir.path(), &inputs, other);
            let run = RecordRun::read(&path, &inputs).expect("read");
            assert!(!reference.matches_run(&inputs, &run), "change {k}");
        }
        // Frames stored whole are compared by rebuilding ours.
        let path = record_file_as(dir.path(), &inputs, &expected, FrameEncoding::Whole);
        let run = RecordRun::read(&path, &inputs).expect("read");
        assert!(reference.matches_run(&inputs, &run), "whole frames");
        let path = record_file_as(dir.path(), &inputs, &changes[0], FrameEncoding::Whole);
        let run = RecordRun::read(&path, &inputs).expect("read");
        assert!(
            !reference.matches_run(&inputs, &run),
            "whole frames, one byte changed"
        );

        let path = record_file(dir.path(), &inputs[..5], &expected[..5]);
        let run = RecordRun::read(&path, &inputs[..5]).expect("read");
        assert!(!reference.matches_run(&inputs, &run), "a missing packet");
    }
}
