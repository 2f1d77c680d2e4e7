//! [`Reader`]: the receiving half of the codec. It is fed bytes as they
//! arrive, in pieces of any size, and yields [`Event`]s: message payload
//! as it comes (unmasked in place in the caller's buffer), and whole
//! control frames. It holds no buffer but a header's 14 bytes and a
//! control frame's 125, and allocates nothing.
//!
//! Every rule about a frame in its context is judged here, in one place:
//! the role's masking, the fragmentation rules, control frames between
//! fragments, the limits, UTF-8 of text across frames and reads, the
//! close frame's code and reason.

use super::close::CloseFrame;
use super::error::Error;
use super::frame::{FrameHeader, OpCode, Parsed, MAX_HEADER_LEN};
use super::mask::apply_mask;
use super::utf8::Utf8;
use super::{Limits, Role};

/// What the peer sent, as far as it has arrived.
#[derive(Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// Payload bytes of a text or binary message, in order, as they
    /// arrive: one frame's payload may come in several pieces and a
    /// message in several frames. Text is valid UTF-8 so far, but a
    /// piece may end inside a code point.
    Data {
        /// Text or binary.
        kind: MessageKind,
        /// The bytes, unmasked (possibly empty: an empty message, or the
        /// end of one).
        payload: &'a [u8],
        /// The first piece of its message.
        first: bool,
        /// The last piece of its message: the message is complete (and,
        /// for text, all of it valid UTF-8).
        last: bool,
    },
    /// A ping: answer with a pong carrying the same payload (RFC 6455
    /// §5.5.2), unless a close has been sent.
    Ping(&'a [u8]),
    /// A pong (an answer to a ping, or unsolicited: a heartbeat).
    Pong(&'a [u8]),
    /// The peer's close frame. Answer with a close frame (echoing the
    /// code is usual), then close; the reader ignores whatever follows.
    Close(CloseFrame<'a>),
}

/// The type of a data message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MessageKind {
    /// UTF-8 text.
    Text,
    /// Binary data.
    Binary,
}

impl MessageKind {
    /// The opcode of a message's first frame.
    pub fn opcode(self) -> OpCode {
        match self {
            MessageKind::Text => OpCode::Text,
            MessageKind::Binary => OpCode::Binary,
        }
    }
}

/// The outcome of one [`Reader::read`]: how many input bytes it took,
/// and the event they completed, if any.
#[derive(Debug)]
pub struct Step<'a> {
    /// Input bytes used; the caller passes the rest on the next call.
    /// Never 0 for a non-empty input.
    pub consumed: usize,
    /// What those bytes brought.
    pub event: Option<Event<'a>>,
}

/// Where the reader is in the stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Between frames, or inside a header (its bytes so far in
    /// `header[..header_len]`).
    Header,
    /// Inside a frame's payload.
    Payload(Frame),
    /// A close frame arrived: nothing more is read.
    Closed,
    /// The peer broke the protocol: the same error for every read.
    Failed(Error),
}

/// The frame whose payload is being read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Frame {
    opcode: OpCode,
    fin: bool,
    /// The masking key, if the frame is masked.
    mask: Option<[u8; 4]>,
    /// Payload bytes read so far.
    read: u64,
    len: u64,
}

/// An event found by [`Reader::step`], described without borrowing, so
/// that the error path may still change the state.
enum Found {
    Data {
        kind: MessageKind,
        start: usize,
        end: usize,
        first: bool,
        last: bool,
    },
    Ping,
    Pong,
    Close,
}

/// The receiving half of a WebSocket connection, for either role.
///
/// ```
/// use nextloop::ws::{Event, Limits, Reader, Role};
///
/// // A masked "Hello" from a client (RFC 6455 §5.7), in two reads.
/// let mut reader = Reader::new(Role::Server, Limits::default());
/// let mut wire = *b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58";
/// let (first, second) = wire.split_at_mut(8);
/// let mut text = Vec::new();
/// for input in [first, second] {
///     let mut at = 0;
///     while at < input.len() {
///         let step = reader.read(&mut input[at..]).expect("valid");
///         at += step.consumed;
///         if let Some(Event::Data { payload, .. }) = step.event {
///             text.extend_from_slice(payload);
///         }
///     }
/// }
/// assert_eq!(text, b"Hello");
/// ```
#[derive(Clone, Debug)]
pub struct Reader {
    role: Role,
    limits: Limits,
    state: State,
    header: [u8; MAX_HEADER_LEN],
    header_len: u8,
    /// The data message in progress, if any.
    message: Option<MessageKind>,
    /// Whether an event has been yielded for the message in progress.
    message_started: bool,
    /// The message's payload so far, declared by its frames' headers.
    message_len: u64,
    utf8: Utf8,
    control: [u8; 125],
    control_len: u8,
}

impl Reader {
    /// A reader for `role`'s side: a server reads masked frames only, a
    /// client unmasked ones only.
    pub fn new(role: Role, limits: Limits) -> Reader {
        Reader {
            role,
            limits,
            state: State::Header,
            header: [0; MAX_HEADER_LEN],
            header_len: 0,
            message: None,
            message_started: false,
            message_len: 0,
            utf8: Utf8::default(),
            control: [0; 125],
            control_len: 0,
        }
    }

    /// Reads from the start of `input`: a header, payload, or the part of
    /// either that has arrived. Call it again with the rest of the input
    /// (`input[step.consumed..]`) until all is used: each call yields at
    /// most one event. Payload is unmasked in place in `input` and
    /// returned from it.
    ///
    /// After an error the connection must fail: every later call returns
    /// the same error. After a [`Event::Close`], input is ignored.
    pub fn read<'a>(&'a mut self, input: &'a mut [u8]) -> Result<Step<'a>, Error> {
        match self.step(input) {
            Err(e) => {
                self.state = State::Failed(e);
                Err(e)
            }
            Ok((consumed, found)) => {
                let event = found.map(|found| match found {
                    Found::Data {
                        kind,
                        start,
                        end,
                        first,
                        last,
                    } => Event::Data {
                        kind,
                        payload: &input[start..end],
                        first,
                        last,
                    },
                    Found::Ping => Event::Ping(&self.control[..usize::from(self.control_len)]),
                    Found::Pong => Event::Pong(&self.control[..usize::from(self.control_len)]),
                    Found::Close => Event::Close(
                        // Validated when it completed.
                        CloseFrame::parse(&self.control[..usize::from(self.control_len)])
                            .unwrap_or(CloseFrame {
                                code: None,
                                reason: "",
                            }),
                    ),
                });
                Ok(Step { consumed, event })
            }
        }
    }

    /// Is a fragmented message in progress (its last frame not yet read)?
    pub fn in_message(&self) -> bool {
        self.message.is_some()
    }

    /// Has the peer's close frame been read?
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// The peer closed the connection (TCP) now: is that in the middle
    /// of a frame or a message? Either way the closure is abnormal (1006)
    /// unless a close frame came first.
    pub fn is_between_messages(&self) -> bool {
        self.state == State::Header && self.header_len == 0 && self.message.is_none()
    }

    fn step(&mut self, input: &mut [u8]) -> Result<(usize, Option<Found>), Error> {
        match self.state {
            State::Failed(e) => Err(e),
            State::Closed => Ok((input.len(), None)),
            State::Header => self.header(input),
            State::Payload(frame) => {
                let left = frame.len - frame.read;
                let n = usize::try_from(left).unwrap_or(usize::MAX).min(input.len());
                let found = self.payload(frame, &mut input[..n])?;
                Ok((n, found))
            }
        }
    }

    /// Reads a header, or as much of one as there is.
    fn header(&mut self, input: &mut [u8]) -> Result<(usize, Option<Found>), Error> {
        let had = usize::from(self.header_len);
        let (header, consumed) = if had == 0 {
            match FrameHeader::parse(input)? {
                Parsed::Header(h, n) => (h, n),
                Parsed::Partial => {
                    // Shorter than the header it begins: keep it all.
                    self.header[..input.len()].copy_from_slice(input);
                    self.header_len = input.len() as u8;
                    return Ok((input.len(), None));
                }
            }
        } else {
            let take = (MAX_HEADER_LEN - had).min(input.len());
            self.header[had..had + take].copy_from_slice(&input[..take]);
            match FrameHeader::parse(&self.header[..had + take])? {
                Parsed::Header(h, n) => {
                    self.header_len = 0;
                    (h, n - had)
                }
                Parsed::Partial => {
                    self.header_len = (had + take) as u8;
                    return Ok((take, None));
                }
            }
        };
        let frame = self.begin(header)?;
        if frame.len > 0 {
            self.state = State::Payload(frame);
            return Ok((consumed, None));
        }
        // An empty payload: the frame is complete with its header.
        let found = self.payload(frame, &mut [])?;
        let found = match found {
            Some(Found::Data {
                kind, first, last, ..
            }) => Some(Found::Data {
                kind,
                start: consumed,
                end: consumed,
                first,
                last,
            }),
            other => other,
        };
        Ok((consumed, found))
    }

    /// Judges a complete header in its context; the frame to read.
    fn begin(&mut self, h: FrameHeader) -> Result<Frame, Error> {
        match (self.role, h.mask) {
            (Role::Server, None) => return Err(Error::protocol("client frame not masked")),
            (Role::Client, Some(_)) => return Err(Error::protocol("server frame masked")),
            _ => {}
        }
        let data = match h.opcode {
            OpCode::Continuation if self.message.is_none() => {
                return Err(Error::protocol("continuation frame outside a message"))
            }
            OpCode::Text | OpCode::Binary if self.message.is_some() => {
                return Err(Error::protocol("new message before the last one ended"))
            }
            OpCode::Continuation => true,
            OpCode::Text | OpCode::Binary => {
                self.message = Some(if h.opcode == OpCode::Text {
                    MessageKind::Text
                } else {
                    MessageKind::Binary
                });
                self.message_started = false;
                self.message_len = 0;
                true
            }
            OpCode::Close | OpCode::Ping | OpCode::Pong => {
                self.control_len = 0;
                false
            }
        };
        if data {
            if h.len > self.limits.max_frame {
                return Err(Error::too_big("frame too big"));
            }
            self.message_len = self.message_len.saturating_add(h.len);
            if self.message_len > self.limits.max_message {
                return Err(Error::too_big("message too big"));
            }
        }
        Ok(Frame {
            opcode: h.opcode,
            fin: h.fin,
            mask: h.mask,
            read: 0,
            len: h.len,
        })
    }

    /// Takes `chunk`, the next payload bytes of `frame` (no more than it
    /// has left).
    fn payload(&mut self, mut frame: Frame, chunk: &mut [u8]) -> Result<Option<Found>, Error> {
        if let Some(key) = frame.mask {
            apply_mask(chunk, key, (frame.read % 4) as usize);
        }
        frame.read += chunk.len() as u64;
        let frame_done = frame.read == frame.len;
        self.state = if frame_done {
            State::Header
        } else {
            State::Payload(frame)
        };
        if frame.opcode.is_control() {
            let have = usize::from(self.control_len);
            self.control[have..have + chunk.len()].copy_from_slice(chunk);
            self.control_len = (have + chunk.len()) as u8;
            if !frame_done {
                return Ok(None);
            }
            return Ok(Some(match frame.opcode {
                OpCode::Ping => Found::Ping,
                OpCode::Pong => Found::Pong,
                _ => {
                    CloseFrame::parse(&self.control[..usize::from(self.control_len)])?;
                    self.state = State::Closed;
                    Found::Close
                }
            }));
        }
        let Some(kind) = self.message else {
            return Ok(None); // unreachable: `begin` saw to it
        };
        if kind == MessageKind::Text {
            self.utf8
                .feed(chunk)
                .map_err(|_| Error::invalid_data("text not UTF-8"))?;
        }
        let last = frame_done && frame.fin;
        if last {
            if kind == MessageKind::Text {
                self.utf8
                    .finish()
                    .map_err(|_| Error::invalid_data("text not UTF-8"))?;
            }
            self.message = None;
        }
        let first = !self.message_started;
        if chunk.is_empty() && !first && !last {
            return Ok(None); // an empty fragment in the middle: nothing to say
        }
        self.message_started = true;
        Ok(Some(Found::Data {
            kind,
            start: 0,
            end: chunk.len(),
            first,
            last,
        }))
    }
}
