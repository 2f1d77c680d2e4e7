//! The wake protocol between a [`Bridge`](super::bridge::Bridge) on the
//! loop thread and the blocking side of its exchange ([`Request`] and
//! [`Response`] on a worker thread).
//!
//! Bytes travel through bounded crossbeam channels; this file decides who
//! wakes whom. The rule that keeps it correct: **the worker calls
//! [`Control::ready`] only when the bridge is parked** — it returned
//! [`Next::wait()`] with nothing it could do — and the worker is the one
//! that clears the parked bit. So every wake-up reaches a handler that is
//! waiting, never one that is reading or writing (the core would keep such
//! a wake as an "early wake" and could apply it later, out of date), and a
//! burst of chunks costs one wake-up.
//!
//! The bridge parks with a re-check (park, look again, un-park itself if
//! something arrived meanwhile), so a chunk sent between its look and its
//! park is never missed.
//!
//! A wake asks for [`Next::read()`] only while the request body is still
//! open: after the bridge has seen the body's end, the core would turn a
//! read into a call of `on_response`, which needs a head the worker may not
//! have written yet. `INPUT_CLOSED` and `PARKED` share one atomic, so the
//! worker sees both or neither.
//!
//! [`Request`]: super::Request
//! [`Response`]: super::Response

use std::sync::atomic::{AtomicU8, Ordering::SeqCst};

use crate::{Control, Next};

/// The bridge returned `Next::wait()` and nobody has woken it yet.
const PARKED: u8 = 1;
/// The bridge reads no more request body (complete, failed, or unwanted).
const INPUT_CLOSED: u8 = 2;
/// The worker is blocked waiting for a body chunk.
const WAITING: u8 = 4;
/// Why the body ended early, in the two bits above the flags
/// ([`InputEnd`] as a number; 0 means it ended well).
const END_SHIFT: u8 = 3;
const END_MASK: u8 = 0b11 << END_SHIFT;

/// How the request body ended, as the worker's reads report it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum InputEnd {
    /// All of it arrived.
    Complete = 0,
    /// Malformed framing (the server answers 400).
    Malformed = 1,
    /// The client closed its side before the body was complete.
    CutShort = 2,
    /// The connection is gone.
    Gone = 3,
}

/// Shared by a bridge and its worker side.
pub(crate) struct Link {
    state: AtomicU8,
    control: Control,
}

impl Link {
    pub(crate) fn new(control: Control) -> Link {
        Link {
            state: AtomicU8::new(0),
            control,
        }
    }

    // ---- loop side ----

    /// Marks the bridge parked. The caller then looks again for work and,
    /// if it finds some, calls [`unpark`](Self::unpark).
    pub(crate) fn park(&self) {
        self.state.fetch_or(PARKED, SeqCst);
    }

    /// Takes the parked bit back. `false`: the worker took it first and a
    /// wake-up is on its way, so the bridge must return `Next::wait()`.
    pub(crate) fn unpark(&self) -> bool {
        self.state.fetch_and(!PARKED, SeqCst) & PARKED != 0
    }

    /// Is the worker blocked until a body chunk arrives?
    pub(crate) fn worker_waiting(&self) -> bool {
        self.state.load(SeqCst) & WAITING != 0
    }

    /// No more body will be read. Call before dropping the chunk sender,
    /// so that a worker seeing the channel disconnected also sees why.
    pub(crate) fn close_input(&self, end: InputEnd) {
        self.state
            .fetch_or(INPUT_CLOSED | ((end as u8) << END_SHIFT), SeqCst);
    }

    // ---- worker side ----

    /// The worker is about to block for a body chunk: wake the bridge if it
    /// is parked and still reading.
    pub(crate) fn begin_waiting(&self) {
        self.state.fetch_or(WAITING, SeqCst);
        let woke = self.state.fetch_update(SeqCst, SeqCst, |s| {
            (s & PARKED != 0 && s & INPUT_CLOSED == 0).then_some(s & !PARKED)
        });
        if woke.is_ok() {
            // Gone: the connection ended; the worker's channels say so.
            let _ = self.control.ready(Next::read());
        }
    }

    /// The worker has its chunk (or the body's end).
    pub(crate) fn end_waiting(&self) {
        self.state.fetch_and(!WAITING, SeqCst);
    }

    /// The worker queued output: wake the bridge if it is parked.
    pub(crate) fn output_queued(&self) {
        let woke = self
            .state
            .fetch_update(SeqCst, SeqCst, |s| (s & PARKED != 0).then_some(s & !PARKED));
        if woke.is_ok() {
            let _ = self.control.ready(Next::write());
        }
    }

    /// How the body ended (meaningful once the chunk channel is closed).
    pub(crate) fn input_end(&self) -> InputEnd {
        match (self.state.load(SeqCst) & END_MASK) >> END_SHIFT {
            0 => InputEnd::Complete,
            1 => InputEnd::Malformed,
            2 => InputEnd::CutShort,
            _ => InputEnd::Gone,
        }
    }
}
