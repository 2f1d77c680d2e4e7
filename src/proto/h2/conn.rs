//! The connection engine: bytes in, [`Event`]s out; frames written
//! straight into the owner's output buffer. Every frame rule of
//! RFC 9113 is applied here, in [`Connection::recv`], on the state it
//! changes; stream states change only in [`Stream::transition`].

use std::time::Duration;

use super::budget::Budget;
use super::error::{conn, stream, ConnError, ErrorCode, H2Error};
use super::frame::{self, flag, kind, Header, HEADER_LEN, MAX_WINDOW, PREFACE};
use super::head::{Head, HeadKind, Scratch};
use super::hpack;
use super::settings::{PeerSettings, Settings, DEFAULT_WINDOW};
use super::stream::{State, Step, Stream, Streams};

/// Which end of the connection we are: it decides who opens which
/// stream ids (clients odd, servers even, RFC 9113 §5.1.1) and which
/// heads we expect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// We accept requests.
    Server,
    /// We send requests.
    Client,
}

/// Something the owner must act on, from [`Connection::recv`]. Slices
/// borrow the input or the loop's [`Scratch`] until the next call.
#[derive(Debug)]
pub enum Event<'a> {
    /// A header block, decoded and checked: a request (a new stream), a
    /// response, a 1xx, or trailers.
    Head {
        /// The stream.
        id: u32,
        /// The fields.
        head: Head<'a>,
        /// The peer has ended its side with it.
        end_stream: bool,
    },
    /// Body bytes of a stream (padding removed). Give the window back
    /// with [`Connection::release`] as the reader consumes them.
    Data {
        /// The stream.
        id: u32,
        /// The bytes (may be empty when only `end_stream` is news).
        data: &'a [u8],
        /// The peer has ended its side.
        end_stream: bool,
    },
    /// The stream was reset: by the peer (`remote`), or by us for a rule
    /// the peer broke on it (RST_STREAM already written). Its slot stays
    /// held until [`Connection::stream_done`].
    Reset {
        /// The stream.
        id: u32,
        /// The code.
        code: ErrorCode,
        /// The peer sent the RST_STREAM.
        remote: bool,
    },
    /// A send window opened from zero or below: the stream's, or the
    /// connection's (`None`, every stream may try again).
    WindowOpened {
        /// The stream, or `None` for the connection.
        id: Option<u32>,
    },
    /// The peer sends GOAWAY: no new streams; those above `last_id` that
    /// we opened were not processed (safe to retry).
    GoAway {
        /// The last stream the peer processed.
        last_id: u32,
        /// Why.
        code: ErrorCode,
        /// The peer's debug data.
        debug: &'a [u8],
    },
    /// The peer's SETTINGS were applied (and acknowledged):
    /// [`Connection::peer_settings`] has them.
    Settings,
    /// The peer acknowledged our SETTINGS: they are in force.
    SettingsAcked,
    /// The peer answered one of our PINGs.
    PingAck {
        /// Its payload.
        payload: [u8; 8],
    },
}

/// What [`Connection::recv`] did.
#[derive(Debug)]
pub struct Recv<'a> {
    /// Input bytes used: drop them from the read buffer (after handling
    /// the event, which may borrow them).
    pub consumed: usize,
    /// What happened, if anything. `None` means: more input is needed
    /// (a frame or header block is incomplete) — or, when
    /// [`Connection::must_flush`] says so, the output must be flushed
    /// first (one PING and one SETTINGS ack at most are left unflushed).
    pub event: Option<Event<'a>>,
}

/// Why a send was refused: the owner's view of the stream is stale.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendError {
    /// No such stream is held (never opened, or already done).
    NoStream,
    /// Our side of the stream is closed (ended or reset).
    Closed,
    /// No new stream may be opened now (GOAWAY, or the peer's limit).
    Refused,
}

/// An event without borrows, made into an [`Event`] at the end of
/// `recv` (so the frame loop holds no borrow of the scratch).
#[derive(Clone, Copy, Debug)]
enum Outcome {
    Head {
        id: u32,
        kind: HeadKind,
        end_stream: bool,
    },
    Data {
        id: u32,
        from: usize,
        to: usize,
        end_stream: bool,
    },
    Reset {
        id: u32,
        code: ErrorCode,
        remote: bool,
    },
    Window(Option<u32>),
    GoAway {
        last_id: u32,
        code: ErrorCode,
        from: usize,
        to: usize,
    },
    Settings,
    SettingsAcked,
    PingAck([u8; 8]),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Server: the client's 24-octet preface is due.
    Preface,
    /// The peer's first frame must be SETTINGS.
    FirstSettings,
    Running,
    /// A connection error was sent: nothing more is read.
    Failed(ConnError),
}

/// How long a connection without streams keeps its stream table (and
/// the owner its per-stream scratch) before giving it back.
pub(crate) const IDLE_RELEASE: Duration = Duration::from_secs(1);

/// The PING payload of a graceful shutdown.
const SHUTDOWN_PING: [u8; 8] = *b"nl-shutd";

/// Streams ended lately, remembered in a fixed ring (like h2's bounded
/// reset set): frames in flight on one we reset are dropped quietly
/// (§5.1, "closed"); on one that ended normally they are STREAM_CLOSED.
const RECENT: usize = 16;

/// A stream in the ring of those ended lately.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Ended {
    id: u32,
    /// Ended by a reset (either way), not by END_STREAM both ways.
    reset: bool,
}

/// One HTTP/2 connection's state, sans-IO.
///
/// Heap: the HPACK decoding table (allocated at the first block that
/// indexes a field: 4,096 B + 768 B until the peer acknowledges our
/// SETTINGS, then [`Settings::header_table_size`] + 3/16 of it: 1,216 B
/// for the default 1,024), the encoder's table (none by default), and the
/// stream table (see `stream.rs`: 36 B per stream held at most at once,
/// released with [`release_idle`](Self::release_idle)). Header decoding
/// uses the loop's [`Scratch`].
pub struct Connection {
    role: Role,
    ours: Settings,
    peer: PeerSettings,
    /// Our SETTINGS were sent and not yet acknowledged.
    settings_unacked: bool,
    /// The frame size and stream window we hold the peer to now.
    local_max_frame: u32,
    local_initial_window: u32,
    decoder: hpack::Decoder,
    encoder: hpack::Encoder,
    streams: Streams,
    /// Connection send window (may go negative: never below what the
    /// peer's window updates allow).
    send_window: i32,
    /// What the peer may still send on the connection.
    recv_window: i32,
    /// Consumed and not yet granted back on the connection.
    unreleased: u32,
    /// The highest stream id the peer opened.
    last_peer_id: u32,
    /// The next id we open (client: odd).
    next_local_id: u32,
    /// The last id of the GOAWAY we sent, if any.
    goaway_sent: Option<u32>,
    /// The last id of the GOAWAY we received, if any.
    goaway_received: Option<u32>,
    /// A graceful shutdown waits for its PING's ack.
    shutdown_ping: bool,
    phase: Phase,
    /// An ack (PING or SETTINGS) written and not yet flushed.
    ack_unflushed: bool,
    /// A PING of ours awaits its ack.
    ping_out: bool,
    budget: Budget,
    recent: [Ended; RECENT],
    recent_at: usize,
    /// The scheduler's position in the stream table.
    cursor: usize,
}

impl Connection {
    /// A connection in `role` with our `settings`. Writes what we must
    /// send first to `out`: a client's preface, our SETTINGS, and the
    /// WINDOW_UPDATE that opens the connection window to
    /// [`Settings::connection_window_size`].
    pub fn new(role: Role, settings: Settings, out: &mut Vec<u8>) -> Connection {
        let ours = settings.clamped();
        if role == Role::Client {
            out.extend_from_slice(PREFACE);
        }
        ours.write(out, role == Role::Client);
        let extra = ours.connection_window_size - DEFAULT_WINDOW;
        if extra > 0 {
            frame::write_window_update(out, 0, extra);
        }
        Connection {
            role,
            peer: PeerSettings::default(),
            settings_unacked: true,
            local_max_frame: frame::MIN_MAX_FRAME_SIZE,
            local_initial_window: DEFAULT_WINDOW,
            // The peer may use 4,096 until it acknowledges ours.
            decoder: hpack::Decoder::lazy(
                hpack::DEFAULT_TABLE_SIZE.max(ours.header_table_size as usize),
            ),
            encoder: hpack::Encoder::new(ours.encoder_table_size as usize),
            streams: Streams::new(ours.max_concurrent_streams as usize),
            send_window: DEFAULT_WINDOW as i32,
            recv_window: ours.connection_window_size as i32,
            unreleased: 0,
            last_peer_id: 0,
            next_local_id: if role == Role::Client { 1 } else { 2 },
            goaway_sent: None,
            goaway_received: None,
            shutdown_ping: false,
            phase: if role == Role::Server {
                Phase::Preface
            } else {
                Phase::FirstSettings
            },
            ack_unflushed: false,
            ping_out: false,
            budget: Budget::default(),
            recent: [Ended::default(); RECENT],
            recent_at: 0,
            cursor: 0,
            ours,
        }
    }

    /// Our role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Our settings (clamped to what the protocol allows).
    pub fn settings(&self) -> &Settings {
        &self.ours
    }

    /// The peer's settings as last applied.
    pub fn peer_settings(&self) -> &PeerSettings {
        &self.peer
    }

    /// Are our SETTINGS still unacknowledged (for a SETTINGS timeout)?
    pub fn settings_pending(&self) -> bool {
        self.settings_unacked
    }

    /// Is a PING of ours waiting for its ack (for a ping timeout)?
    pub fn ping_pending(&self) -> bool {
        self.ping_out
    }

    /// Must the output be flushed before more is read? An ack is
    /// unflushed, and [`recv`](Self::recv) stops at the next PING or
    /// SETTINGS until [`flushed`](Self::flushed) is called.
    pub fn must_flush(&self) -> bool {
        self.ack_unflushed
    }

    /// The owner wrote all of the output to the peer.
    pub fn flushed(&mut self) {
        self.ack_unflushed = false;
    }

    /// Streams held (open, or closed and not yet
    /// [`done`](Self::stream_done)).
    pub fn streams_held(&self) -> usize {
        self.streams.len()
    }

    /// The highest stream id the peer opened.
    pub fn last_peer_id(&self) -> u32 {
        self.last_peer_id
    }

    /// Is the connection finished: a connection error, or a GOAWAY either
    /// way (the final one, for a graceful shutdown of ours) and no stream
    /// held? The owner then flushes and closes.
    pub fn is_finished(&self) -> bool {
        matches!(self.phase, Phase::Failed(_))
            || self.streams.len() == 0
                && (self.goaway_received.is_some()
                    || self.goaway_sent.is_some_and(|l| l != MAX_WINDOW))
    }

    /// Can a new stream be opened by us now (client)?
    pub fn can_open(&self) -> bool {
        self.goaway_received.is_none()
            && self.goaway_sent.is_none()
            && !matches!(self.phase, Phase::Failed(_))
            && self.streams.has_room()
            && (self.streams.iter().filter(|s| !s.remote).count() as u64)
                < u64::from(self.peer.max_concurrent_streams)
            && self.next_local_id <= MAX_WINDOW
    }

    /// Heap bytes this connection holds (tables and stream slots).
    pub fn heap_bytes(&self) -> usize {
        self.decoder.heap_bytes() + self.encoder.heap_bytes() + self.streams.heap_bytes()
    }

    /// Gives the stream table's memory back if no stream is held (for an
    /// idle connection; the next stream allocates it again). Owners call
    /// it once a connection has been without streams for
    /// [`IDLE_RELEASE`], so that one request at a time does not make the
    /// table anew each time.
    pub fn release_idle(&mut self) {
        self.streams.release_idle();
    }

    /// Would [`release_idle`](Self::release_idle) give memory back?
    pub fn holds_idle_table(&self) -> bool {
        self.streams.len() == 0 && self.streams.heap_bytes() > 0
    }

    // ----- Reading -------------------------------------------------------

    /// Reads frames from `input` until one yields an [`Event`], or the
    /// input ends inside a frame (or header block). Replies the protocol
    /// requires (SETTINGS and PING acks, RST_STREAM for stream errors,
    /// window updates for dropped DATA) are written to `out`.
    ///
    /// A connection error writes GOAWAY to `out` and returns it; the owner
    /// flushes and closes (later calls return the same error).
    pub fn recv<'a>(
        &mut self,
        input: &'a [u8],
        scratch: &'a mut Scratch,
        out: &mut Vec<u8>,
    ) -> Result<Recv<'a>, ConnError> {
        if let Phase::Failed(e) = self.phase {
            return Err(e);
        }
        let mut pos = 0;
        let outcome = loop {
            match self.step(&input[pos..], pos, scratch, out) {
                Ok((0, _)) => break None,
                Ok((n, Some(o))) => {
                    pos += n;
                    break Some(o);
                }
                Ok((n, None)) => pos += n,
                Err(H2Error::Conn(e)) => return Err(self.fail(e, out)),
                Err(H2Error::Stream { .. }) => unreachable!("stream errors are handled in step"),
            }
        };
        let event = outcome.map(|o| match o {
            Outcome::Head {
                id,
                kind,
                end_stream,
            } => Event::Head {
                id,
                head: scratch.head(kind),
                end_stream,
            },
            Outcome::Data {
                id,
                from,
                to,
                end_stream,
            } => Event::Data {
                id,
                data: &input[from..to],
                end_stream,
            },
            Outcome::Reset { id, code, remote } => Event::Reset { id, code, remote },
            Outcome::Window(id) => Event::WindowOpened { id },
            Outcome::GoAway {
                last_id,
                code,
                from,
                to,
            } => Event::GoAway {
                last_id,
                code,
                debug: &input[from..to],
            },
            Outcome::Settings => Event::Settings,
            Outcome::SettingsAcked => Event::SettingsAcked,
            Outcome::PingAck(payload) => Event::PingAck { payload },
        });
        Ok(Recv {
            consumed: pos,
            event,
        })
    }

    /// Ends the connection for `e`: GOAWAY(last processed stream, code).
    fn fail(&mut self, e: ConnError, out: &mut Vec<u8>) -> ConnError {
        log::debug!("h2 connection error {}: {}", e.code, e.reason);
        frame::write_goaway(out, self.last_peer_id, e.code, e.reason.as_bytes());
        self.goaway_sent = Some(self.last_peer_id);
        self.phase = Phase::Failed(e);
        e
    }

    /// One frame (or the preface, or a whole header block) at the start
    /// of `input` (which sits at `base` in the caller's input): the bytes
    /// it spans (0: incomplete, or reading waits for a flush) and its
    /// outcome. Stream errors are answered here.
    fn step(
        &mut self,
        input: &[u8],
        base: usize,
        scratch: &mut Scratch,
        out: &mut Vec<u8>,
    ) -> Result<(usize, Option<Outcome>), H2Error> {
        if self.phase == Phase::Preface {
            let n = input.len().min(PREFACE.len());
            if input[..n] != PREFACE[..n] {
                return Err(conn(ErrorCode::PROTOCOL_ERROR, "bad client preface"));
            }
            if n < PREFACE.len() {
                return Ok((0, None));
            }
            self.phase = Phase::FirstSettings;
            return Ok((PREFACE.len(), None));
        }
        let Some(h) = Header::parse(input) else {
            return Ok((0, None));
        };
        if h.len > self.local_max_frame as usize {
            return Err(conn(
                ErrorCode::FRAME_SIZE_ERROR,
                "frame larger than MAX_FRAME_SIZE",
            ));
        }
        if self.phase == Phase::FirstSettings && (h.kind != kind::SETTINGS || h.has(flag::ACK)) {
            return Err(conn(ErrorCode::PROTOCOL_ERROR, "first frame not SETTINGS"));
        }
        if self.ack_unflushed && matches!(h.kind, kind::PING | kind::SETTINGS) && !h.has(flag::ACK)
        {
            return Ok((0, None));
        }
        let span = if h.kind == kind::HEADERS && !h.has(flag::END_HEADERS) {
            match self.block_span(input, &h)? {
                Some(span) => span,
                None => return Ok((0, None)),
            }
        } else {
            HEADER_LEN + h.len
        };
        if input.len() < span {
            return Ok((0, None));
        }
        let payload = &input[HEADER_LEN..HEADER_LEN + h.len];
        let result = match h.kind {
            kind::DATA => self.on_data(&h, payload, base + HEADER_LEN, out),
            kind::HEADERS => self.on_headers(&h, &input[..span], scratch, out),
            kind::PRIORITY => self.on_priority(&h, payload),
            kind::RST_STREAM => self.on_rst(&h, payload),
            kind::SETTINGS => self.on_settings(&h, payload, out),
            kind::PUSH_PROMISE => Err(conn(ErrorCode::PROTOCOL_ERROR, "PUSH_PROMISE received")),
            kind::PING => self.on_ping(&h, payload, out),
            kind::GOAWAY => self.on_goaway(&h, payload, base + HEADER_LEN),
            kind::WINDOW_UPDATE => self.on_window_update(&h, payload),
            kind::CONTINUATION => Err(conn(
                ErrorCode::PROTOCOL_ERROR,
                "CONTINUATION without HEADERS",
            )),
            _ => {
                self.budget.frame(h.len, 0)?;
                Ok(None)
            }
        };
        match result {
            Ok(o) => Ok((span, o)),
            Err(H2Error::Stream { id, code, reason }) => {
                Ok((span, self.stream_error(id, code, reason, out)?))
            }
            Err(e) => Err(e),
        }
    }

    /// The bytes a HEADERS frame and its CONTINUATIONs span, once all are
    /// in `input`; the budgets on the compressed block (bytes with frame
    /// headers, frame count) are checked as far as the input goes, so a
    /// CONTINUATION flood ends before it is buffered.
    fn block_span(&self, input: &[u8], first: &Header) -> Result<Option<usize>, H2Error> {
        // What the owner's read buffer holds (`Settings::read_buffer_size`),
        // less the room for the header of the frame that goes past it.
        let limit = (self.local_max_frame as usize + HEADER_LEN)
            .max(self.ours.max_header_list_size as usize);
        let max_frames =
            (self.ours.max_header_list_size / self.local_max_frame * 5 / 4).max(5) as usize + 1;
        let mut pos = HEADER_LEN + first.len;
        for _ in 1..max_frames {
            let Some(h) = input.get(pos..).and_then(Header::parse) else {
                return Ok(None);
            };
            if h.kind != kind::CONTINUATION || h.id != first.id {
                return Err(conn(ErrorCode::PROTOCOL_ERROR, "header block interrupted"));
            }
            // Checked on the frame header, before its payload is waited for.
            pos += HEADER_LEN + h.len;
            if pos > limit {
                return Err(conn(ErrorCode::ENHANCE_YOUR_CALM, "header block too large"));
            }
            if h.has(flag::END_HEADERS) {
                return Ok(Some(pos));
            }
        }
        Err(conn(
            ErrorCode::ENHANCE_YOUR_CALM,
            "too many CONTINUATION frames",
        ))
    }

    /// Is `id` a stream that was never opened (idle, §5.1)?
    fn is_idle(&self, id: u32) -> bool {
        let peer_opens = (id % 2 == 1) == (self.role == Role::Server);
        if peer_opens {
            id > self.last_peer_id
        } else {
            id >= self.next_local_id
        }
    }

    fn recently_reset(&self, id: u32) -> bool {
        self.recent.contains(&Ended { id, reset: true })
    }

    fn recently_closed(&self, id: u32) -> bool {
        self.recent.contains(&Ended { id, reset: false })
    }

    fn remember(&mut self, id: u32, reset: bool) {
        if let Some(e) = self.recent.iter_mut().find(|e| e.id == id) {
            e.reset |= reset;
            return;
        }
        self.recent[self.recent_at] = Ended { id, reset };
        self.recent_at = (self.recent_at + 1) % RECENT;
    }

    fn remember_reset(&mut self, id: u32) {
        self.remember(id, true);
    }

    /// Answers a stream error: RST_STREAM, counted against the provoked
    /// resets budget; the owner hears of it if it knows the stream.
    fn stream_error(
        &mut self,
        id: u32,
        code: ErrorCode,
        reason: &'static str,
        out: &mut Vec<u8>,
    ) -> Result<Option<Outcome>, H2Error> {
        log::debug!("h2 stream {id} error {code}: {reason}");
        frame::write_rst(out, id, code);
        self.remember_reset(id);
        self.budget.local_reset(self.ours.max_local_resets)?;
        let Some(s) = self.streams.get_mut(id) else {
            return Ok(None);
        };
        let _ = s.transition(Step::Reset);
        if s.surfaced {
            return Ok(Some(Outcome::Reset {
                id,
                code,
                remote: false,
            }));
        }
        self.streams.remove(id);
        Ok(None)
    }

    fn on_data(
        &mut self,
        h: &Header,
        payload: &[u8],
        at: usize,
        out: &mut Vec<u8>,
    ) -> Result<Option<Outcome>, H2Error> {
        let id = h.id;
        if id == 0 {
            return Err(conn(ErrorCode::PROTOCOL_ERROR, "DATA on stream 0"));
        }
        let (from, to) = padded(h, payload)?;
        let len = payload.len();
        let data_len = to - from;
        self.budget.frame(len, data_len)?;
        if len as i64 > i64::from(self.recv_window) {
            return Err(conn(
                ErrorCode::FLOW_CONTROL_ERROR,
                "DATA beyond the connection window",
            ));
        }
        self.recv_window -= len as i32;
        if self.is_idle(id) {
            return Err(conn(ErrorCode::PROTOCOL_ERROR, "DATA on an idle stream"));
        }
        let Some(s) = self.streams.get_mut(id).filter(|s| !s.reset) else {
            // Reset or done: the bytes count, and are granted back at once.
            self.release_conn(len as u32, out);
            if self.recently_reset(id) || self.streams.get(id).is_some() {
                return Ok(None);
            }
            return Err(stream(
                id,
                ErrorCode::STREAM_CLOSED,
                "DATA on a closed stream",
            ));
        };
        if !s.recv_open() {
            self.release_conn(len as u32, out);
            return Err(stream(
                id,
                ErrorCode::STREAM_CLOSED,
                "DATA after END_STREAM",
            ));
        }
        if len as i64 > i64::from(s.recv_window) {
            self.release_conn(len as u32, out);
            return Err(stream(
                id,
                ErrorCode::FLOW_CONTROL_ERROR,
                "DATA beyond the stream window",
            ));
        }
        s.recv_window -= len as i32;
        let end = h.has(flag::END_STREAM);
        if s.remaining != u64::MAX {
            if data_len as u64 > s.remaining || end && s.remaining != data_len as u64 {
                self.release_conn(len as u32, out);
                return Err(stream(
                    id,
                    ErrorCode::PROTOCOL_ERROR,
                    "body length differs from content-length",
                ));
            }
            s.remaining -= data_len as u64;
        }
        s.transition(Step::Recv { end })?;
        s.held += data_len as u32;
        // Padding is not the reader's: granted back now.
        let padding = (len - data_len) as u32;
        if padding > 0 {
            s.unreleased += padding;
            self.release(id, 0, out);
            self.release_conn(padding, out);
        }
        if data_len == 0 && !end {
            return Ok(None);
        }
        Ok(Some(Outcome::Data {
            id,
            from: at + from,
            to: at + to,
            end_stream: end,
        }))
    }

    fn on_headers(
        &mut self,
        h: &Header,
        frames: &[u8],
        scratch: &mut Scratch,
        out: &mut Vec<u8>,
    ) -> Result<Option<Outcome>, H2Error> {
        let id = h.id;
        if id == 0 {
            return Err(conn(ErrorCode::PROTOCOL_ERROR, "HEADERS on stream 0"));
        }
        let peer_opens = (id % 2 == 1) == (self.role == Role::Server);
        if !peer_opens && self.role == Role::Server {
            return Err(conn(
                ErrorCode::PROTOCOL_ERROR,
                "HEADERS on an even stream id",
            ));
        }
        if !peer_opens && id >= self.next_local_id || peer_opens && self.role == Role::Client {
            return Err(conn(
                ErrorCode::PROTOCOL_ERROR,
                "HEADERS on a stream we did not open",
            ));
        }
        let held = self.streams.find(id);
        let new = peer_opens && id > self.last_peer_id;
        if held.is_none() && !new && !self.recently_reset(id) {
            if self.recently_closed(id) {
                return Err(conn(ErrorCode::STREAM_CLOSED, "HEADERS on a closed stream"));
            }
            return Err(conn(
                ErrorCode::PROTOCOL_ERROR,
                "HEADERS on a lower stream id",
            ));
        }
        // The first frame's fragment, past padding and priority.
        let payload = &frames[HEADER_LEN..HEADER_LEN + h.len];
        let (mut from, to) = padded(h, payload)?;
        let mut depends_on_itself = false;
        if h.has(flag::PRIORITY) {
            if to - from < 5 {
                return Err(conn(
                    ErrorCode::FRAME_SIZE_ERROR,
                    "HEADERS too short for its priority",
                ));
            }
            let dep = u32::from_be_bytes(payload[from..from + 4].try_into().unwrap()) & MAX_WINDOW;
            depends_on_itself = dep == id;
            from += 5;
        }
        let end_stream = h.has(flag::END_STREAM);
        let kind = match held.map(|i| self.streams.slot(i)) {
            Some(s) if self.role == Role::Client && !s.head_done => HeadKind::Response,
            None if new => HeadKind::Request,
            _ => HeadKind::Trailers,
        };
        // Decode the whole block, whatever becomes of the stream: the
        // HPACK context is the connection's.
        let single = frames.len() == HEADER_LEN + h.len;
        let (block_buf, _) = scratch.block_and_hpack();
        let mut useful = to - from;
        if !single {
            block_buf.clear();
            block_buf.extend_from_slice(&payload[from..to]);
            let mut pos = HEADER_LEN + h.len;
            while pos < frames.len() {
                let c = Header::parse(&frames[pos..]).unwrap();
                block_buf.extend_from_slice(&frames[pos + HEADER_LEN..pos + HEADER_LEN + c.len]);
                useful += c.len;
                pos += HEADER_LEN + c.len;
            }
        }
        self.budget.frame(frames.len() - HEADER_LEN, useful)?;
        let max_list = self.ours.max_header_list_size as usize;
        let connect_protocol = self.ours.enable_connect_protocol;
        let (block_buf, hpack_scratch, mut fields) = scratch.decode_parts();
        let block: &[u8] = if single {
            &payload[from..to]
        } else {
            block_buf
        };
        let decoded = self
            .decoder
            .decode(block, hpack_scratch, max_list, |n, v, sensitive| {
                fields.field(kind, n, v, sensitive, connect_protocol)
            });
        let too_large = match decoded {
            Ok(()) => false,
            Err(hpack::Error::ListTooLarge) => true,
            Err(e) => {
                let code = ErrorCode(e.connection_error().unwrap_or(hpack::COMPRESSION_ERROR));
                return Err(conn(code, "header block not decodable"));
            }
        };
        let malformed = fields.finish(kind, end_stream);
        let status = fields.status();
        let content_length = fields.content_length();
        // The stream's fate.
        if new {
            self.last_peer_id = id;
            if self.goaway_sent.is_some_and(|last| id > last) {
                // Ignored (§6.8); its DATA in flight is dropped quietly.
                self.remember_reset(id);
                return Ok(None);
            }
        }
        if held.is_none() && !new {
            // Reset lately: the block kept HPACK in sync; nothing else.
            return Ok(None);
        }
        if depends_on_itself {
            return Err(stream(
                id,
                ErrorCode::PROTOCOL_ERROR,
                "stream depends on itself",
            ));
        }
        if new {
            if too_large {
                self.refuse_too_large(id, end_stream, out)?;
                return Ok(None);
            }
            if let Some(why) = malformed {
                return Err(stream(id, ErrorCode::PROTOCOL_ERROR, why));
            }
            if content_length.is_some_and(|n| n > 0) && end_stream {
                return Err(stream(
                    id,
                    ErrorCode::PROTOCOL_ERROR,
                    "content-length without a body",
                ));
            }
            if !self.streams.has_room() {
                return Err(stream(
                    id,
                    ErrorCode::REFUSED_STREAM,
                    "over MAX_CONCURRENT_STREAMS",
                ));
            }
            let mut s = Stream::new(
                id,
                self.peer.initial_window_size,
                self.local_initial_window,
                true,
            );
            s.remaining = content_length.unwrap_or(u64::MAX);
            s.surfaced = true;
            s.transition(Step::Recv { end: end_stream })?;
            self.streams.insert(s);
            return Ok(Some(Outcome::Head {
                id,
                kind,
                end_stream,
            }));
        }
        let s = self.streams.get_mut(id).expect("held");
        if s.reset {
            return Ok(None);
        }
        if too_large {
            return Err(stream(
                id,
                ErrorCode::PROTOCOL_ERROR,
                "header list too large",
            ));
        }
        if let Some(why) = malformed {
            return Err(stream(id, ErrorCode::PROTOCOL_ERROR, why));
        }
        if !s.recv_open() {
            return Err(stream(
                id,
                ErrorCode::STREAM_CLOSED,
                "HEADERS after END_STREAM",
            ));
        }
        let kind = match kind {
            HeadKind::Response if status.is_some_and(|s| s < 200) => HeadKind::Informational,
            HeadKind::Response => {
                s.head_done = true;
                s.remaining = content_length.unwrap_or(u64::MAX);
                if s.head_request || matches!(status, Some(204 | 304)) {
                    // No content, whatever the content-length says
                    // (RFC 9113 §8.1.1): DATA with any is malformed.
                    s.remaining = 0;
                } else if s.remaining != u64::MAX && s.remaining > 0 && end_stream {
                    return Err(stream(
                        id,
                        ErrorCode::PROTOCOL_ERROR,
                        "content-length without a body",
                    ));
                }
                HeadKind::Response
            }
            k => {
                if s.remaining != u64::MAX && s.remaining != 0 {
                    return Err(stream(
                        id,
                        ErrorCode::PROTOCOL_ERROR,
                        "body shorter than content-length",
                    ));
                }
                k
            }
        };
        s.transition(Step::Recv { end: end_stream })?;
        Ok(Some(Outcome::Head {
            id,
            kind,
            end_stream,
        }))
    }

    /// A request whose fields exceed our list size: 431 and the stream
    /// ended (RFC 9113 §10.5.1), counted as a provoked reset.
    fn refuse_too_large(
        &mut self,
        id: u32,
        end_stream: bool,
        out: &mut Vec<u8>,
    ) -> Result<(), H2Error> {
        if self.role == Role::Client {
            return Err(stream(
                id,
                ErrorCode::PROTOCOL_ERROR,
                "header list too large",
            ));
        }
        self.budget.local_reset(self.ours.max_local_resets)?;
        self.write_head(id, &[(b":status", b"431")], std::iter::empty(), true, out);
        if !end_stream {
            frame::write_rst(out, id, ErrorCode::NO_ERROR);
        }
        self.remember_reset(id);
        Ok(())
    }

    fn on_priority(&mut self, h: &Header, payload: &[u8]) -> Result<Option<Outcome>, H2Error> {
        self.budget.frame(h.len, 0)?;
        if h.id == 0 {
            return Err(conn(ErrorCode::PROTOCOL_ERROR, "PRIORITY on stream 0"));
        }
        if payload.len() != 5 {
            return Err(stream(
                h.id,
                ErrorCode::FRAME_SIZE_ERROR,
                "PRIORITY not 5 octets",
            ));
        }
        let dep = u32::from_be_bytes(payload[..4].try_into().unwrap()) & MAX_WINDOW;
        if dep == h.id {
            return Err(stream(
                h.id,
                ErrorCode::PROTOCOL_ERROR,
                "stream depends on itself",
            ));
        }
        Ok(None)
    }

    fn on_rst(&mut self, h: &Header, payload: &[u8]) -> Result<Option<Outcome>, H2Error> {
        self.budget.frame(h.len, 0)?;
        if payload.len() != 4 {
            return Err(conn(ErrorCode::FRAME_SIZE_ERROR, "RST_STREAM not 4 octets"));
        }
        if h.id == 0 {
            return Err(conn(ErrorCode::PROTOCOL_ERROR, "RST_STREAM on stream 0"));
        }
        if self.is_idle(h.id) {
            return Err(conn(
                ErrorCode::PROTOCOL_ERROR,
                "RST_STREAM on an idle stream",
            ));
        }
        let code = ErrorCode(u32::from_be_bytes(payload.try_into().unwrap()));
        let max = self.ours.max_peer_resets;
        let Some(s) = self.streams.get_mut(h.id).filter(|s| !s.reset) else {
            return Ok(None);
        };
        // A server's response cut short costs the budget (a client's
        // streams reset by the server are no attack on us).
        let unfinished = self.role == Role::Server && s.send_open();
        let surfaced = s.surfaced;
        s.transition(Step::Reset)?;
        if unfinished {
            self.budget.peer_reset(max)?;
        }
        if !surfaced {
            self.streams.remove(h.id);
            return Ok(None);
        }
        Ok(Some(Outcome::Reset {
            id: h.id,
            code,
            remote: true,
        }))
    }

    fn on_settings(
        &mut self,
        h: &Header,
        payload: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<Option<Outcome>, H2Error> {
        self.budget.frame(h.len, 0)?;
        if h.id != 0 {
            return Err(conn(ErrorCode::PROTOCOL_ERROR, "SETTINGS on a stream"));
        }
        if h.has(flag::ACK) {
            if !payload.is_empty() {
                return Err(conn(
                    ErrorCode::FRAME_SIZE_ERROR,
                    "SETTINGS ACK with a payload",
                ));
            }
            if !self.settings_unacked {
                return Ok(None);
            }
            self.apply_ours();
            return Ok(Some(Outcome::SettingsAcked));
        }
        if payload.len() % 6 != 0 {
            return Err(conn(
                ErrorCode::FRAME_SIZE_ERROR,
                "SETTINGS not a multiple of 6 octets",
            ));
        }
        self.phase = Phase::Running;
        let old_window = self.peer.initial_window_size;
        for entry in payload.chunks_exact(6) {
            let id = u16::from_be_bytes([entry[0], entry[1]]);
            let value = u32::from_be_bytes([entry[2], entry[3], entry[4], entry[5]]);
            self.peer.apply(id, value)?;
            if id == super::settings::id::ENABLE_PUSH && value == 1 && self.role == Role::Client {
                return Err(conn(ErrorCode::PROTOCOL_ERROR, "ENABLE_PUSH from a server"));
            }
        }
        self.encoder
            .set_peer_limit(self.peer.header_table_size as usize);
        let delta = i64::from(self.peer.initial_window_size) - i64::from(old_window);
        if delta != 0 {
            for s in self.streams.iter_mut() {
                let w = i64::from(s.send_window) + delta;
                if w > i64::from(MAX_WINDOW) {
                    return Err(conn(
                        ErrorCode::FLOW_CONTROL_ERROR,
                        "INITIAL_WINDOW_SIZE overflows a window",
                    ));
                }
                s.send_window = w as i32;
            }
        }
        frame::write_settings_ack(out);
        self.ack_unflushed = true;
        Ok(Some(Outcome::Settings))
    }

    /// Our SETTINGS were acknowledged: hold the peer to them.
    fn apply_ours(&mut self) {
        self.settings_unacked = false;
        self.local_max_frame = self.ours.max_frame_size;
        let delta = i64::from(self.ours.initial_window_size) - i64::from(self.local_initial_window);
        self.local_initial_window = self.ours.initial_window_size;
        for s in self.streams.iter_mut() {
            s.recv_window = (i64::from(s.recv_window) + delta) as i32;
        }
        self.decoder.shrink_to(self.ours.header_table_size as usize);
    }

    fn on_ping(
        &mut self,
        h: &Header,
        payload: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<Option<Outcome>, H2Error> {
        self.budget.frame(h.len, 0)?;
        if payload.len() != 8 {
            return Err(conn(ErrorCode::FRAME_SIZE_ERROR, "PING not 8 octets"));
        }
        if h.id != 0 {
            return Err(conn(ErrorCode::PROTOCOL_ERROR, "PING on a stream"));
        }
        let data: [u8; 8] = payload.try_into().unwrap();
        if h.has(flag::ACK) {
            if self.shutdown_ping && data == SHUTDOWN_PING {
                // Graceful shutdown, second step: the streams the peer
                // opened before it saw the first GOAWAY are all here.
                self.shutdown_ping = false;
                frame::write_goaway(out, self.last_peer_id, ErrorCode::NO_ERROR, b"");
                self.goaway_sent = Some(self.last_peer_id);
                return Ok(None);
            }
            if !self.ping_out {
                return Ok(None);
            }
            self.ping_out = false;
            return Ok(Some(Outcome::PingAck(data)));
        }
        frame::write_ping(out, true, data);
        self.ack_unflushed = true;
        Ok(None)
    }

    fn on_goaway(
        &mut self,
        h: &Header,
        payload: &[u8],
        at: usize,
    ) -> Result<Option<Outcome>, H2Error> {
        self.budget.frame(h.len, 0)?;
        if h.id != 0 {
            return Err(conn(ErrorCode::PROTOCOL_ERROR, "GOAWAY on a stream"));
        }
        if payload.len() < 8 {
            return Err(conn(
                ErrorCode::FRAME_SIZE_ERROR,
                "GOAWAY shorter than 8 octets",
            ));
        }
        let last_id = u32::from_be_bytes(payload[..4].try_into().unwrap()) & MAX_WINDOW;
        let code = ErrorCode(u32::from_be_bytes(payload[4..8].try_into().unwrap()));
        self.goaway_received = Some(self.goaway_received.map_or(last_id, |l| l.min(last_id)));
        Ok(Some(Outcome::GoAway {
            last_id,
            code,
            from: at + 8,
            to: at + payload.len(),
        }))
    }

    fn on_window_update(&mut self, h: &Header, payload: &[u8]) -> Result<Option<Outcome>, H2Error> {
        self.budget.frame(h.len, 0)?;
        if payload.len() != 4 {
            return Err(conn(
                ErrorCode::FRAME_SIZE_ERROR,
                "WINDOW_UPDATE not 4 octets",
            ));
        }
        let inc = u32::from_be_bytes(payload.try_into().unwrap()) & MAX_WINDOW;
        if h.id == 0 {
            if inc == 0 {
                return Err(conn(ErrorCode::PROTOCOL_ERROR, "WINDOW_UPDATE of 0"));
            }
            let w = i64::from(self.send_window) + i64::from(inc);
            if w > i64::from(MAX_WINDOW) {
                return Err(conn(
                    ErrorCode::FLOW_CONTROL_ERROR,
                    "connection window over 2^31-1",
                ));
            }
            let opened = self.send_window <= 0 && w > 0;
            self.send_window = w as i32;
            return Ok(opened.then_some(Outcome::Window(None)));
        }
        if self.is_idle(h.id) {
            return Err(conn(
                ErrorCode::PROTOCOL_ERROR,
                "WINDOW_UPDATE on an idle stream",
            ));
        }
        let Some(s) = self.streams.get_mut(h.id).filter(|s| !s.reset) else {
            return Ok(None);
        };
        if inc == 0 {
            return Err(stream(
                h.id,
                ErrorCode::PROTOCOL_ERROR,
                "WINDOW_UPDATE of 0",
            ));
        }
        let w = i64::from(s.send_window) + i64::from(inc);
        if w > i64::from(MAX_WINDOW) {
            return Err(stream(
                h.id,
                ErrorCode::FLOW_CONTROL_ERROR,
                "stream window over 2^31-1",
            ));
        }
        let opened = s.send_window <= 0 && w > 0 && s.send_open() && s.surfaced;
        s.send_window = w as i32;
        Ok(opened.then_some(Outcome::Window(Some(h.id))))
    }

    // ----- Flow control on receipt ----------------------------------------

    /// The owner's reader consumed `n` body bytes of stream `id`: grants
    /// them back, in batches (a WINDOW_UPDATE once half a window is
    /// due), for the stream and the connection. After
    /// [`stream_done`](Self::stream_done) there is nothing to release.
    pub fn release(&mut self, id: u32, n: usize, out: &mut Vec<u8>) {
        let target = self.local_initial_window / 2;
        // A stream done had its unread bytes granted back then.
        let Some(s) = self.streams.get_mut(id) else {
            return;
        };
        let n = (n as u32).min(s.held);
        s.held -= n;
        s.unreleased += n;
        if s.recv_open() && !s.reset && s.unreleased > 0 && s.unreleased >= target {
            frame::write_window_update(out, id, s.unreleased);
            s.recv_window += s.unreleased as i32;
            s.unreleased = 0;
        }
        self.release_conn(n, out);
    }

    fn release_conn(&mut self, n: u32, out: &mut Vec<u8>) {
        self.unreleased += n;
        if self.unreleased > 0 && self.unreleased >= self.ours.connection_window_size / 2 {
            frame::write_window_update(out, 0, self.unreleased);
            self.recv_window += self.unreleased as i32;
            self.unreleased = 0;
        }
    }

    // ----- Writing -----------------------------------------------------------

    /// Appends a header block for `id` (HEADERS, and CONTINUATIONs past
    /// the peer's frame size): `pseudo` first, then `fields` with names
    /// lowercased and connection-specific fields dropped (§8.2.2).
    fn write_head<'f>(
        &mut self,
        id: u32,
        pseudo: &[(&[u8], &[u8])],
        fields: impl IntoIterator<Item = (&'f [u8], &'f [u8])>,
        end_stream: bool,
        out: &mut Vec<u8>,
    ) {
        let at = out.len();
        out.extend_from_slice(&[0; HEADER_LEN]);
        self.encoder.start_block(out);
        for &(n, v) in pseudo {
            self.encoder.field(n, v, false, out);
        }
        let mut lower = [0u8; 256];
        for (name, value) in fields {
            let name = if name.iter().any(u8::is_ascii_uppercase) {
                let Some(buf) = lower.get_mut(..name.len()) else {
                    log::warn!("h2: a field name over 256 bytes with uppercase letters is dropped");
                    continue;
                };
                buf.copy_from_slice(name);
                buf.make_ascii_lowercase();
                &*buf
            } else {
                name
            };
            if matches!(
                name,
                b"connection"
                    | b"keep-alive"
                    | b"proxy-connection"
                    | b"transfer-encoding"
                    | b"upgrade"
            ) {
                continue;
            }
            self.encoder.field(name, value, false, out);
        }
        frame::finish_header_block(out, at, id, end_stream, self.peer.max_frame_size as usize);
    }

    fn sendable(&mut self, id: u32) -> Result<&mut Stream, SendError> {
        let s = self.streams.get_mut(id).ok_or(SendError::NoStream)?;
        if !s.send_open() {
            return Err(SendError::Closed);
        }
        Ok(s)
    }

    /// Sends a response head on `id` (server): `status` and `fields`
    /// (lowercased as needed; connection-specific ones dropped). A 1xx
    /// may come before the final one; `end_stream` ends the response
    /// with its head (HEAD, 204, 304, or no body).
    pub fn send_response<'f>(
        &mut self,
        id: u32,
        status: u16,
        fields: impl IntoIterator<Item = (&'f [u8], &'f [u8])>,
        end_stream: bool,
        out: &mut Vec<u8>,
    ) -> Result<(), SendError> {
        let informational = (100..200).contains(&status);
        let s = self.sendable(id)?;
        if informational && end_stream {
            return Err(SendError::Closed);
        }
        if !informational {
            s.head_done = true;
        }
        s.transition(Step::Send { end: end_stream })
            .map_err(|_| SendError::Closed)?;
        let digits = [
            b'0' + (status / 100 % 10) as u8,
            b'0' + (status / 10 % 10) as u8,
            b'0' + (status % 10) as u8,
        ];
        self.write_head(id, &[(b":status", &digits)], fields, end_stream, out);
        Ok(())
    }

    /// Opens a stream with a request head (client): the new stream's id.
    /// For CONNECT leave `scheme` and `path` empty.
    #[allow(clippy::too_many_arguments)]
    pub fn send_request<'f>(
        &mut self,
        method: &[u8],
        scheme: &[u8],
        authority: &[u8],
        path: &[u8],
        fields: impl IntoIterator<Item = (&'f [u8], &'f [u8])>,
        end_stream: bool,
        out: &mut Vec<u8>,
    ) -> Result<u32, SendError> {
        if !self.can_open() {
            return Err(SendError::Refused);
        }
        let id = self.next_local_id;
        self.next_local_id += 2;
        let mut s = Stream::new(
            id,
            self.peer.initial_window_size,
            self.local_initial_window,
            false,
        );
        s.surfaced = true;
        s.head_request = method == b"HEAD";
        let _ = s.transition(Step::Send { end: end_stream });
        self.streams.insert(s);
        let mut pseudo: [(&[u8], &[u8]); 4] = [(b":method", method); 4];
        let mut n = 1;
        for (name, value) in [
            (&b":scheme"[..], scheme),
            (b":authority", authority),
            (b":path", path),
        ] {
            if !value.is_empty() {
                pseudo[n] = (name, value);
                n += 1;
            }
        }
        self.write_head(id, &pseudo[..n], fields, end_stream, out);
        Ok(id)
    }

    /// Sends trailers on `id`, ending our side.
    pub fn send_trailers<'f>(
        &mut self,
        id: u32,
        fields: impl IntoIterator<Item = (&'f [u8], &'f [u8])>,
        out: &mut Vec<u8>,
    ) -> Result<(), SendError> {
        self.sendable(id)?
            .transition(Step::Send { end: true })
            .map_err(|_| SendError::Closed)?;
        self.write_head(id, &[], fields, true, out);
        Ok(())
    }

    /// How many body bytes `id` may send now: the smaller of its window
    /// and the connection's (0 when either is closed or negative).
    pub fn send_capacity(&self, id: u32) -> usize {
        self.streams
            .get(id)
            .filter(|s| s.send_open())
            .map_or(0, |s| s.send_window.min(self.send_window).max(0) as usize)
    }

    /// Sends as much of `data` on `id` as both windows allow, in frames
    /// of the peer's MAX_FRAME_SIZE: the bytes taken. `end_stream` ends
    /// our side once all of `data` went (an empty `data` with it always
    /// goes: an empty DATA takes no window).
    pub fn send_data(
        &mut self,
        id: u32,
        data: &[u8],
        end_stream: bool,
        out: &mut Vec<u8>,
    ) -> Result<usize, SendError> {
        let cap = self.send_capacity(id);
        let max_frame = self.peer.max_frame_size as usize;
        let s = self.sendable(id)?;
        let n = data.len().min(cap);
        let end = end_stream && n == data.len();
        if n == 0 && !end {
            return Ok(0);
        }
        s.transition(Step::Send { end })
            .map_err(|_| SendError::Closed)?;
        s.send_window -= n as i32;
        self.send_window -= n as i32;
        let mut rest = &data[..n];
        loop {
            let len = rest.len().min(max_frame);
            let last = len == rest.len();
            let flags = if last && end { flag::END_STREAM } else { 0 };
            frame::write_header(out, len, kind::DATA, flags, id);
            out.extend_from_slice(&rest[..len]);
            rest = &rest[len..];
            if last {
                break;
            }
        }
        Ok(n)
    }

    /// Resets `id` with `code` (the owner gave up on it, e.g.
    /// `Next::remove()`). Its slot stays held until
    /// [`stream_done`](Self::stream_done).
    pub fn reset(&mut self, id: u32, code: ErrorCode, out: &mut Vec<u8>) {
        let Some(s) = self.streams.get_mut(id) else {
            return;
        };
        if s.reset || s.state == State::Closed {
            return;
        }
        let _ = s.transition(Step::Reset);
        frame::write_rst(out, id, code);
        self.remember_reset(id);
    }

    /// The owner is finished with `id` (its handler is gone): only now is
    /// its slot free (a stream counts against MAX_CONCURRENT_STREAMS until
    /// here). A stream not closed both ways is reset first: NO_ERROR if
    /// our side ended (the peer need not send the rest, §8.1), else
    /// CANCEL. Body bytes never read are granted back to the connection.
    pub fn stream_done(&mut self, id: u32, out: &mut Vec<u8>) {
        let Some(s) = self.streams.remove(id) else {
            return;
        };
        if s.state != State::Closed {
            let code = if s.send_open() {
                ErrorCode::CANCEL
            } else {
                ErrorCode::NO_ERROR
            };
            frame::write_rst(out, id, code);
            self.remember_reset(id);
        } else if !s.reset {
            self.budget.completed();
            self.remember(id, false);
        }
        // What was read went back as it was read; what was not, now.
        self.release_conn(s.held, out);
    }

    /// Marks whether `id` has DATA waiting for window, for
    /// [`next_to_send`](Self::next_to_send).
    pub fn set_wants_send(&mut self, id: u32, wants: bool) {
        if let Some(s) = self.streams.get_mut(id) {
            s.wants_send = wants && s.send_open();
        }
    }

    /// The next stream, round-robin, that wants to send and has window
    /// (its own and the connection's): fair scheduling among streams.
    pub fn next_to_send(&mut self) -> Option<u32> {
        if self.send_window <= 0 {
            return None;
        }
        let len = self.streams.len();
        for k in 0..len {
            let i = (self.cursor + k) % len;
            let s = self.streams.slot(i);
            if s.wants_send && s.send_window > 0 {
                self.cursor = i + 1;
                return Some(s.id);
            }
        }
        None
    }

    /// Sends a PING (e.g. a keep-alive probe); its ack comes as
    /// [`Event::PingAck`].
    pub fn ping(&mut self, payload: [u8; 8], out: &mut Vec<u8>) {
        frame::write_ping(out, false, payload);
        self.ping_out = true;
    }

    /// Starts a graceful shutdown: GOAWAY(2^31-1) and a PING; when its
    /// ack arrives, GOAWAY(last stream id) follows by itself. Streams
    /// opened until then are served; later ones are ignored.
    pub fn go_away_gracefully(&mut self, out: &mut Vec<u8>) {
        if self.goaway_sent.is_some() {
            return;
        }
        frame::write_goaway(out, MAX_WINDOW, ErrorCode::NO_ERROR, b"");
        frame::write_ping(out, false, SHUTDOWN_PING);
        self.goaway_sent = Some(MAX_WINDOW);
        self.shutdown_ping = true;
    }

    /// Sends GOAWAY(last stream id, `code`) now: no stream above it will
    /// be served. With NO_ERROR the open streams may finish.
    pub fn go_away(&mut self, code: ErrorCode, out: &mut Vec<u8>) {
        if self.goaway_sent.is_some_and(|l| l != MAX_WINDOW) {
            return;
        }
        frame::write_goaway(out, self.last_peer_id, code, b"");
        self.goaway_sent = Some(self.last_peer_id);
        self.shutdown_ping = false;
    }
}

/// The data range of a padded frame's payload (§6.1): past the pad
/// length octet, before the padding.
fn padded(h: &Header, payload: &[u8]) -> Result<(usize, usize), H2Error> {
    if !h.has(flag::PADDED) {
        return Ok((0, payload.len()));
    }
    let Some(&pad) = payload.first() else {
        return Err(conn(
            ErrorCode::FRAME_SIZE_ERROR,
            "padded frame without a pad length",
        ));
    };
    let pad = usize::from(pad);
    if pad >= payload.len() {
        return Err(conn(
            ErrorCode::PROTOCOL_ERROR,
            "padding as long as the payload",
        ));
    }
    Ok((1, payload.len() - pad))
}
