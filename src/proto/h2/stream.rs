//! Streams (RFC 9113 §5.1): each one's state and windows, the one
//! function that moves a stream between states, and the fixed-capacity
//! table that holds the streams in use.
//!
//! Memory: one [`Stream`] is 40 bytes (asserted in a test); the table
//! grows to the most streams held at once (at most our
//! MAX_CONCURRENT_STREAMS) and keeps that capacity, so new streams on a
//! busy connection allocate nothing; [`Streams::release_idle`] gives it
//! back once none are held.

use super::error::{stream, ErrorCode, H2Error};

/// Where a stream is (§5.1; the reserved states belong to push, which
/// we never use).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Both ends may send.
    Open,
    /// We may send; the peer has ended its side (END_STREAM received).
    HalfClosedRemote,
    /// The peer may send; we have ended ours.
    HalfClosedLocal,
    /// Neither may send: both ended, or a reset either way.
    Closed,
}

/// What happens to a stream: the input of [`Stream::transition`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// The peer sent a frame that carries END_STREAM or not.
    Recv { end: bool },
    /// We sent a frame that carries END_STREAM or not.
    Send { end: bool },
    /// A reset, either way.
    Reset,
}

/// One stream in use.
#[derive(Clone, Debug)]
pub(crate) struct Stream {
    pub id: u32,
    pub state: State,
    /// What we may still send (may go negative after a SETTINGS change).
    pub send_window: i32,
    /// What the peer may still send.
    pub recv_window: i32,
    /// Body bytes the owner has read and we have not yet granted back.
    pub unreleased: u32,
    /// Body bytes handed to the owner and not yet read (released).
    pub held: u32,
    /// The body bytes still due by content-length (`u64::MAX`: none).
    pub remaining: u64,
    /// The owner knows the stream (an event named it).
    pub surfaced: bool,
    /// The owner wants to send DATA on it (for the scheduler).
    pub wants_send: bool,
    /// A reset happened (either way).
    pub reset: bool,
    /// The final head was sent (server) or received (client).
    pub head_done: bool,
    /// The peer opened it (not us).
    pub remote: bool,
    /// We opened it with a HEAD request: its response has no content,
    /// whatever its content-length says (RFC 9110 §9.3.2).
    pub head_request: bool,
}

impl Stream {
    pub(crate) fn new(id: u32, send_window: u32, recv_window: u32, remote: bool) -> Stream {
        Stream {
            id,
            state: State::Open,
            send_window: send_window as i32,
            recv_window: recv_window as i32,
            unreleased: 0,
            held: 0,
            remaining: u64::MAX,
            surfaced: false,
            wants_send: false,
            reset: false,
            head_done: false,
            remote,
            head_request: false,
        }
    }

    /// May the peer still send on it?
    pub(crate) fn recv_open(&self) -> bool {
        matches!(self.state, State::Open | State::HalfClosedLocal)
    }

    /// May we still send on it?
    pub(crate) fn send_open(&self) -> bool {
        matches!(self.state, State::Open | State::HalfClosedRemote)
    }

    /// The one place a stream changes state. A frame from the peer on a
    /// side it has closed is a stream error STREAM_CLOSED (§5.1); a send
    /// on a side we closed is the owner's bug, refused the same way.
    pub(crate) fn transition(&mut self, step: Step) -> Result<(), H2Error> {
        use State::*;
        let next = match (self.state, step) {
            (_, Step::Reset) => {
                self.reset = true;
                self.wants_send = false;
                Closed
            }
            (Open, Step::Recv { end }) => {
                if end {
                    HalfClosedRemote
                } else {
                    Open
                }
            }
            (HalfClosedLocal, Step::Recv { end }) => {
                if end {
                    Closed
                } else {
                    HalfClosedLocal
                }
            }
            (Open, Step::Send { end }) => {
                if end {
                    HalfClosedLocal
                } else {
                    Open
                }
            }
            (HalfClosedRemote, Step::Send { end }) => {
                if end {
                    Closed
                } else {
                    HalfClosedRemote
                }
            }
            (HalfClosedRemote | Closed, Step::Recv { .. }) => {
                return Err(stream(
                    self.id,
                    ErrorCode::STREAM_CLOSED,
                    "frame after END_STREAM",
                ))
            }
            (HalfClosedLocal | Closed, Step::Send { .. }) => {
                return Err(stream(
                    self.id,
                    ErrorCode::STREAM_CLOSED,
                    "send after END_STREAM",
                ))
            }
        };
        if next != self.state {
            log::trace!(
                "h2 stream {}: {:?} -> {:?} on {:?}",
                self.id,
                self.state,
                next,
                step
            );
        }
        if matches!(next, HalfClosedLocal | Closed) {
            self.wants_send = false;
        }
        self.state = next;
        Ok(())
    }
}

/// The streams in use, in a table of at most `max` slots.
pub(crate) struct Streams {
    slots: Vec<Stream>,
    max: usize,
}

impl Streams {
    pub(crate) fn new(max: usize) -> Streams {
        Streams {
            slots: Vec::new(),
            max,
        }
    }

    /// How many streams are held.
    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    /// Is there room for another stream?
    pub(crate) fn has_room(&self) -> bool {
        self.slots.len() < self.max
    }

    /// The slot holding `id`.
    #[inline]
    pub(crate) fn find(&self, id: u32) -> Option<usize> {
        self.slots.iter().position(|s| s.id == id)
    }

    pub(crate) fn get_mut(&mut self, id: u32) -> Option<&mut Stream> {
        self.slots.iter_mut().find(|s| s.id == id)
    }

    pub(crate) fn get(&self, id: u32) -> Option<&Stream> {
        self.slots.iter().find(|s| s.id == id)
    }

    /// Adds a stream; the caller checked [`has_room`](Self::has_room).
    pub(crate) fn insert(&mut self, s: Stream) {
        debug_assert!(self.has_room());
        if self.slots.capacity() == 0 {
            // The first stream: a few slots, grown by doubling to the max.
            self.slots.reserve_exact(self.max.min(4));
        }
        self.slots.push(s);
    }

    /// Frees the slot of `id`; order among the rest is kept (the
    /// scheduler's round-robin depends on it).
    pub(crate) fn remove(&mut self, id: u32) -> Option<Stream> {
        let i = self.find(id)?;
        Some(self.slots.remove(i))
    }

    pub(crate) fn iter_mut(&mut self) -> std::slice::IterMut<'_, Stream> {
        self.slots.iter_mut()
    }

    pub(crate) fn iter(&self) -> std::slice::Iter<'_, Stream> {
        self.slots.iter()
    }

    pub(crate) fn slot(&self, i: usize) -> &Stream {
        &self.slots[i]
    }

    /// Gives the table's memory back when no stream is held.
    pub(crate) fn release_idle(&mut self) {
        if self.slots.is_empty() {
            self.slots = Vec::new();
        }
    }

    /// Heap bytes held.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<Stream>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_is_small() {
        assert!(
            std::mem::size_of::<Stream>() <= 40,
            "{}",
            std::mem::size_of::<Stream>()
        );
    }

    #[test]
    fn states_follow_end_stream_both_ways() {
        let mut s = Stream::new(1, 10, 10, true);
        s.transition(Step::Recv { end: false }).unwrap();
        assert_eq!(s.state, State::Open);
        s.transition(Step::Recv { end: true }).unwrap();
        assert_eq!(s.state, State::HalfClosedRemote);
        assert!(matches!(
            s.transition(Step::Recv { end: false }),
            Err(H2Error::Stream {
                code: ErrorCode::STREAM_CLOSED,
                ..
            })
        ));
        s.transition(Step::Send { end: false }).unwrap();
        s.transition(Step::Send { end: true }).unwrap();
        assert_eq!(s.state, State::Closed);
        assert!(s.transition(Step::Send { end: true }).is_err());

        let mut s = Stream::new(3, 10, 10, true);
        s.transition(Step::Send { end: true }).unwrap();
        assert_eq!(s.state, State::HalfClosedLocal);
        assert!(s.recv_open() && !s.send_open());
        s.transition(Step::Recv { end: true }).unwrap();
        assert_eq!(s.state, State::Closed);

        let mut s = Stream::new(5, 10, 10, true);
        s.wants_send = true;
        s.transition(Step::Reset).unwrap();
        assert_eq!(s.state, State::Closed);
        assert!(s.reset && !s.wants_send);
    }
}
