//! An HTTP/2 connection (RFC 9113) on the server: the sans-IO engine of
//! `proto::h2` driven with this connection's buffers, one handler per
//! stream.
//!
//! - Frames are read while the output is below the high-water mark and
//!   no PING or SETTINGS ack waits to be flushed (then reading stops:
//!   a client that never reads stalls itself).
//! - Each request is a [`Stream`] (`h2/stream.rs`) with its own handler,
//!   exchange slot (its `Control` wakes that stream only), deadline and
//!   body buffers; streams are run round-robin, each a step at a time.
//! - A stream counts against MAX_CONCURRENT_STREAMS until its handler
//!   is dropped (`Connection::stream_done`).
//! - The connection's one deadline is the earliest of its streams' and
//!   its own (idle, an unacknowledged SETTINGS, output stalled).

mod stream;

use std::time::Instant;

use self::stream::{drop_handler, Expect, Io, Step, Stream};
use super::{h1, Ctx, Want, MAX_HEADERS};
use crate::error::Error;
use crate::next::Interest;
use crate::proto::h1::BodyKind;
use crate::proto::h2::{
    Connection, ErrorCode, Event, Head, HeadKind, Role, Scratch, Settings, IDLE_RELEASE,
};
use crate::rt::buf::{ReadBuf, WriteBuf};
use crate::rt::guard::guard;
use crate::rt::machine::Bufs;
use crate::rt::timer::{after, Deadline};
use crate::server::{Addrs, Handler, HandlerFactory, Http2, Request};
use crate::Next;

/// Stream callbacks per connection per loop turn, at most; then the
/// other connections get their turn.
const STEPS_PER_TURN: usize = 256;

/// What the connection as a whole is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Running,
    /// Flush what is buffered (GOAWAY last), then shut down the write side.
    Closing,
    /// Write side shut down; discarding input until the peer closes.
    Lingering,
}

/// The engine's settings for ours.
pub(crate) fn engine_settings(h2: &Http2, read_size: usize) -> Settings {
    Settings {
        max_concurrent_streams: h2.max_concurrent_streams,
        // A stream's unread body lives in one read buffer: its window
        // never promises more.
        initial_window_size: h2.initial_stream_window.min(read_size as u32 & !1023),
        connection_window_size: h2.initial_connection_window,
        max_frame_size: h2.max_frame_size,
        max_header_list_size: h2.max_header_list_size,
        header_table_size: h2.header_table_size,
        ..Settings::default()
    }
}

/// One HTTP/2 connection.
pub(crate) struct Conn<H> {
    pub key: usize,
    /// The connection's own exchange slot (its streams have theirs).
    pub slot: usize,
    pub rbuf: ReadBuf,
    pub wbuf: WriteBuf,
    pub deadline: Deadline,
    pub input_closed: bool,
    pub addrs: Addrs,
    #[cfg(feature = "__tls")]
    pub tls: Option<Box<crate::tls::TlsInfo>>,
    /// Made at the first `advance` (it writes our SETTINGS).
    engine: Option<Connection>,
    s: Streams<H>,
    phase: Phase,
    /// When our SETTINGS went out (their ack is due within the ping
    /// timeout), or a graceful shutdown's PING.
    ack_since: Option<Instant>,
    /// Since when no stream is open.
    idle_since: Option<Instant>,
}

/// The streams of a connection and what running them needs.
struct Streams<H> {
    list: Vec<Stream<H>>,
    /// A response head being turned into HEADERS.
    head: Vec<u8>,
    /// Where the round-robin goes on.
    cursor: usize,
    /// Streams accepted (for `max_requests`).
    served: u64,
    /// Stream steps this turn.
    steps: usize,
}

/// What a new stream's `Request` borrows from its connection.
struct Origin<'c> {
    key: usize,
    addrs: &'c Addrs,
    #[cfg(feature = "__tls")]
    tls: Option<&'c crate::tls::TlsInfo>,
}

impl<H: Handler> Conn<H> {
    /// Takes over an HTTP/1 connection that has not begun a request: its
    /// buffers (and the bytes in them: the preface), deadline and TLS
    /// facts.
    pub(crate) fn from_h1(c: &mut h1::Conn<H>) -> Conn<H> {
        Conn {
            key: c.key,
            slot: c.slot,
            rbuf: std::mem::take(&mut c.rbuf),
            wbuf: std::mem::take(&mut c.wbuf),
            deadline: std::mem::take(&mut c.deadline),
            input_closed: c.input_closed,
            addrs: c.addrs,
            #[cfg(feature = "__tls")]
            tls: c.tls.take(),
            engine: None,
            s: Streams {
                list: Vec::new(),
                head: Vec::new(),
                cursor: 0,
                served: 0,
                steps: 0,
            },
            phase: Phase::Running,
            ack_since: None,
            idle_since: None,
        }
    }

    pub(crate) fn bufs(&mut self) -> Bufs<'_> {
        Bufs {
            rbuf: &mut self.rbuf,
            wbuf: &mut self.wbuf,
            input_closed: &mut self.input_closed,
        }
    }

    /// Never idle for a shutdown: it says GOAWAY first.
    pub(crate) fn is_idle(&self) -> bool {
        false
    }

    /// The connection is dropped: every stream's handler goes, and its
    /// slot.
    pub(crate) fn remove<F>(&mut self, ctx: &mut Ctx<'_, F>) {
        for s in self.s.list.drain(..) {
            ctx.shared.retire(s.slot);
            ctx.exchanges.try_remove(s.slot);
            drop_handler(s.handler);
        }
    }

    pub(crate) fn start_turn(&mut self) {
        self.s.steps = 0;
    }

    /// A `Control::ready` for the stream in `slot`.
    pub(crate) fn wake<F: HandlerFactory<Output = H>>(
        &mut self,
        slot: usize,
        next: Next,
        ctx: &mut Ctx<'_, F>,
    ) {
        if let Some(s) = self.s.list.iter_mut().find(|s| s.slot == slot) {
            s.wake(next, ctx);
        }
        self.arm(ctx);
    }

    /// A graceful shutdown: GOAWAY(2^31-1) and a PING, GOAWAY(last id)
    /// after its ack; open streams finish.
    pub(crate) fn begin_shutdown<F>(&mut self, ctx: &mut Ctx<'_, F>) {
        let Some(engine) = &mut self.engine else {
            self.phase = Phase::Closing;
            return;
        };
        ctx.pool.attach_write(&mut self.wbuf);
        if self.s.list.is_empty() {
            engine.go_away(ErrorCode::NO_ERROR, &mut self.wbuf.buf);
        } else {
            engine.go_away_gracefully(&mut self.wbuf.buf);
            self.ack_since = Some(ctx.clock.now);
        }
    }

    /// The grace period of a shutdown is over.
    pub(crate) fn on_shutdown_deadline(&mut self) {
        for s in &mut self.s.list {
            s.fail(Error::Shutdown);
        }
    }

    /// The peer reset the connection (or another I/O error).
    pub(crate) fn on_io_error<F>(&mut self, err: std::io::Error, _ctx: &mut Ctx<'_, F>) {
        for s in &mut self.s.list {
            s.fail(Error::Io(std::io::Error::new(err.kind(), err.to_string())));
        }
    }

    pub(crate) fn on_read<F>(&mut self, _ctx: &mut Ctx<'_, F>) {}

    /// Output went out: an ack is flushed once all of it is; a stalled
    /// output's timer starts over.
    pub(crate) fn on_written<F>(&mut self, ctx: &mut Ctx<'_, F>) -> bool {
        let mut unblocked = false;
        if self.wbuf.is_empty() {
            if let Some(engine) = &mut self.engine {
                unblocked = engine.must_flush();
                engine.flushed();
            }
        }
        self.arm(ctx);
        // Streams parked on a full output may go on.
        unblocked || !self.s.list.is_empty()
    }

    pub(crate) fn start_linger<F>(&mut self, ctx: &mut Ctx<'_, F>) {
        self.rbuf.clear();
        self.phase = Phase::Lingering;
        self.arm(ctx);
    }

    /// The deadline fired: streams past theirs get `on_error(Timeout)`;
    /// the connection's own (idle, ack, stall) closes it.
    pub(crate) fn on_deadline<F: HandlerFactory<Output = H>>(
        &mut self,
        ctx: &mut Ctx<'_, F>,
    ) -> Option<Want> {
        let now = ctx.clock.now;
        if self.phase != Phase::Running {
            return Some(Want::Remove);
        }
        let Some(engine) = &mut self.engine else {
            return Some(Want::Remove);
        };
        if !self.wbuf.is_empty() && self.deadline.is_due(now) {
            log::debug!("h2 connection {}: output stalled; closing", self.key);
            return Some(Want::Remove);
        }
        ctx.pool.attach_write(&mut self.wbuf);
        let mut i = 0;
        while i < self.s.list.len() {
            let s = &mut self.s.list[i];
            if s.timeout.is_some_and(|at| at <= now) && s.on_timeout(ctx) == Step::Done {
                self.s.finish(i, engine, &mut self.wbuf, ctx);
                continue;
            }
            i += 1;
        }
        let idle_for = self.idle_since.map(|t| now.saturating_duration_since(t));
        if self.s.list.is_empty()
            && self.s.list.capacity() > 0
            && idle_for.is_some_and(|d| d >= IDLE_RELEASE)
        {
            // Idle a while: the tables go.
            self.s.list = Vec::new();
            self.s.head = Vec::new();
            engine.release_idle();
        }
        let own = own_deadline(&self.s, &self.wbuf, self.ack_since, self.idle_since, ctx);
        if let Some(at) = own {
            if at <= now {
                if engine.settings_pending() {
                    // Our SETTINGS were never acknowledged.
                    engine.go_away(ErrorCode::SETTINGS_TIMEOUT, &mut self.wbuf.buf);
                    self.phase = Phase::Closing;
                } else {
                    // Idle past the keep-alive timeout, or a shutdown's
                    // PING never answered: the final GOAWAY; open streams
                    // still finish.
                    engine.go_away(ErrorCode::NO_ERROR, &mut self.wbuf.buf);
                    self.ack_since = None;
                    if self.s.list.is_empty() {
                        self.phase = Phase::Closing;
                    }
                }
            }
        }
        self.arm(ctx);
        None
    }

    /// Arms the earliest deadline of the connection and its streams.
    fn arm<F>(&mut self, ctx: &mut Ctx<'_, F>) {
        let at = match self.phase {
            Phase::Closing | Phase::Lingering => after(ctx.clock.now, ctx.settings.linger_timeout),
            Phase::Running => {
                let streams = self.s.list.iter().filter_map(|s| s.timeout).min();
                earliest(
                    own_deadline(&self.s, &self.wbuf, self.ack_since, self.idle_since, ctx),
                    streams,
                )
            }
        };
        self.deadline.set(at, self.key, ctx.timers);
    }

    /// Runs the connection as far as buffered input and output room allow.
    pub(crate) fn advance<F: HandlerFactory<Output = H>>(&mut self, ctx: &mut Ctx<'_, F>) -> Want {
        let want = self.advance_inner(ctx);
        self.arm(ctx);
        want
    }

    fn advance_inner<F: HandlerFactory<Output = H>>(&mut self, ctx: &mut Ctx<'_, F>) -> Want {
        loop {
            match self.phase {
                Phase::Lingering => return Want::Discard,
                Phase::Closing => return Want::Close,
                Phase::Running => {}
            }
            ctx.pool.attach_write(&mut self.wbuf);
            let Some(h2) = ctx.settings.http2 else {
                self.phase = Phase::Closing;
                continue;
            };
            let settings = engine_settings(&h2, super::read_size(ctx.settings));
            if self.engine.is_none() {
                self.engine = Some(Connection::new(
                    Role::Server,
                    settings.clone(),
                    &mut self.wbuf.buf,
                ));
                self.ack_since = Some(ctx.clock.now);
            }
            let mut scratch = ctx
                .h2_scratch
                .take()
                .unwrap_or_else(|| Box::new(Scratch::new(&settings)));
            let failed = self.read_frames(&mut scratch, ctx);
            *ctx.h2_scratch = Some(scratch);
            let engine = self.engine.as_mut().expect("made above");
            if failed {
                self.s.fail_all(engine, &mut self.wbuf, ctx);
                self.phase = Phase::Closing;
                continue;
            }
            let progress = self.s.run(engine, &mut self.wbuf, ctx);
            if self.ack_since.is_some() && !engine.settings_pending() && !engine.ping_pending() {
                self.ack_since = None;
            }
            if engine.is_finished() {
                self.phase = Phase::Closing;
                continue;
            }
            if self.input_closed && self.rbuf.is_empty() {
                // The client has gone: its streams cannot be answered.
                self.s.fail_all(engine, &mut self.wbuf, ctx);
                self.phase = Phase::Closing;
                continue;
            }
            if self.wbuf.len() >= ctx.settings.write_high_water {
                return Want::Flush;
            }
            if self.s.steps >= STEPS_PER_TURN {
                return Want::Yield;
            }
            if progress {
                continue;
            }
            match (self.s.list.is_empty(), self.idle_since) {
                (true, None) => self.idle_since = Some(ctx.clock.now),
                (false, Some(_)) => self.idle_since = None,
                _ => {}
            }
            return Want::Read;
        }
    }

    /// Reads frames and acts on their events, while the output has room.
    /// `true`: a connection error (GOAWAY is written).
    fn read_frames<F: HandlerFactory<Output = H>>(
        &mut self,
        scratch: &mut Scratch,
        ctx: &mut Ctx<'_, F>,
    ) -> bool {
        let engine = self.engine.as_mut().expect("made in advance");
        let origin = Origin {
            key: self.key,
            addrs: &self.addrs,
            #[cfg(feature = "__tls")]
            tls: self.tls.as_deref(),
        };
        while self.wbuf.len() < ctx.settings.write_high_water {
            let r = match engine.recv(self.rbuf.data(), scratch, &mut self.wbuf.buf) {
                Ok(r) => r,
                Err(e) => {
                    log::debug!("{}: {e}", self.addrs.remote);
                    return true;
                }
            };
            let consumed = r.consumed;
            let Some(event) = r.event else {
                self.rbuf.consume(consumed);
                return false;
            };
            self.s.on_event(event, engine, &mut self.wbuf, &origin, ctx);
            self.rbuf.consume(consumed);
            if !self.s.list.is_empty() {
                self.idle_since = None;
            }
        }
        false
    }
}

/// The earlier of two deadlines.
fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The connection's own deadline: output stalled, an ack overdue, or
/// idle with no stream.
fn own_deadline<H, F>(
    s: &Streams<H>,
    wbuf: &WriteBuf,
    ack_since: Option<Instant>,
    idle_since: Option<Instant>,
    ctx: &Ctx<'_, F>,
) -> Option<Instant> {
    let settings = ctx.settings;
    let ping = settings.http2.map(|h| h.ping_timeout).unwrap_or_default();
    let ack = ack_since.and_then(|t| after(t, ping));
    let own = if !wbuf.is_empty() {
        after(ctx.clock.now, settings.io_timeout)
    } else if s.list.is_empty() {
        let since = idle_since.unwrap_or(ctx.clock.now);
        if s.list.capacity() > 0 {
            // First the tables go, then (later) the connection.
            after(since, IDLE_RELEASE.min(settings.keep_alive_timeout))
        } else {
            after(since, settings.keep_alive_timeout)
        }
    } else {
        None
    };
    earliest(own, ack)
}

impl<H: Handler> Streams<H> {
    fn find(&self, id: u32) -> Option<usize> {
        self.list.iter().position(|s| s.id == id)
    }

    /// Stream `i` is done: its handler goes, its slot is retired and the
    /// engine frees its place (resetting it if it is not closed).
    fn finish<F>(
        &mut self,
        i: usize,
        engine: &mut Connection,
        wbuf: &mut WriteBuf,
        ctx: &mut Ctx<'_, F>,
    ) {
        let mut s = self.list.swap_remove(i);
        ctx.shared.retire(s.slot);
        ctx.exchanges.try_remove(s.slot);
        engine.stream_done(s.id, &mut wbuf.buf);
        s.body.clear();
        s.pending.clear();
        ctx.pool.release(&mut s.body, &mut s.pending);
        drop_handler(s.handler);
    }

    /// Every stream ends with the connection.
    fn fail_all<F>(&mut self, engine: &mut Connection, wbuf: &mut WriteBuf, ctx: &mut Ctx<'_, F>) {
        for s in &mut self.list {
            s.fail(Error::Io(std::io::ErrorKind::ConnectionAborted.into()));
        }
        while !self.list.is_empty() {
            self.finish(0, engine, wbuf, ctx);
        }
    }

    fn on_event<F: HandlerFactory<Output = H>>(
        &mut self,
        event: Event<'_>,
        engine: &mut Connection,
        wbuf: &mut WriteBuf,
        origin: &Origin<'_>,
        ctx: &mut Ctx<'_, F>,
    ) {
        match event {
            Event::Head {
                id,
                head,
                end_stream,
            } => match head.kind() {
                HeadKind::Request => self.open(id, &head, end_stream, engine, wbuf, origin, ctx),
                HeadKind::Trailers => {
                    // (The handler API has no request trailers: the end of
                    // the body is what they tell.)
                    if let Some(i) = self.find(id) {
                        self.list[i].end_received = true;
                    }
                }
                HeadKind::Response | HeadKind::Informational => {}
            },
            Event::Data {
                id,
                data,
                end_stream,
            } => {
                let Some(i) = self.find(id) else {
                    // Its handler is gone: the window comes back at once.
                    engine.release(id, data.len(), &mut wbuf.buf);
                    return;
                };
                let s = &mut self.list[i];
                if !data.is_empty() {
                    // (Within the window, as the engine checked.)
                    ctx.pool.attach_read(&mut s.body);
                    s.body.push_all(data);
                }
                s.end_received |= end_stream;
            }
            Event::Reset { id, .. } => {
                if let Some(i) = self.find(id) {
                    let s = &mut self.list[i];
                    s.fail(Error::Io(std::io::ErrorKind::ConnectionReset.into()));
                    self.finish(i, engine, wbuf, ctx);
                }
            }
            Event::WindowOpened { .. }
            | Event::GoAway { .. }
            | Event::Settings
            | Event::SettingsAcked
            | Event::PingAck { .. } => {}
        }
    }

    /// A request head: a new stream and its handler.
    #[allow(clippy::too_many_arguments)]
    fn open<F: HandlerFactory<Output = H>>(
        &mut self,
        id: u32,
        head: &Head<'_>,
        end_stream: bool,
        engine: &mut Connection,
        wbuf: &mut WriteBuf,
        origin: &Origin<'_>,
        ctx: &mut Ctx<'_, F>,
    ) {
        let out = &mut wbuf.buf;
        if ctx.exchanges.len() >= ctx.shared.slots() {
            // No slot a `Control` could address: refused, safe to retry.
            engine.reset(id, ErrorCode::REFUSED_STREAM, out);
            engine.stream_done(id, out);
            return;
        }
        let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let max = ctx.settings.max_headers.min(MAX_HEADERS);
        let Some(n) = crate::proto::h2::text::head_fields(head, &mut fields[..max]) else {
            let _ = engine.send_response(id, 431, std::iter::empty(), true, out);
            engine.stream_done(id, out);
            return;
        };
        fn text(b: Option<&[u8]>) -> Option<&str> {
            b.and_then(|b| std::str::from_utf8(b).ok())
        }
        let method = text(head.method()).unwrap_or("");
        let authority = text(head.authority());
        let target = match method {
            "CONNECT" => authority.unwrap_or(""),
            _ => text(head.path()).unwrap_or(""),
        };
        let scheme = text(head.scheme());
        let body = match (end_stream, head.content_length()) {
            (true, _) => BodyKind::Length(0),
            (false, Some(n)) => BodyKind::Length(n),
            (false, None) => BodyKind::Eof,
        };
        let is_head = method == "HEAD";
        let expect = head
            .field("expect")
            .is_some_and(|v| v.eq_ignore_ascii_case(b"100-continue"));
        let slot = ctx.exchanges.insert(origin.key);
        let control = ctx.shared.control(slot);
        let limit = std::cell::Cell::new(ctx.settings.max_body_size);
        let factory = &mut *ctx.factory;
        let result = guard(|| {
            let mut handler = factory.create(control);
            let req = Request::h2(
                method,
                target,
                authority,
                scheme,
                &fields[..n],
                body,
                origin.addrs,
                &limit,
            );
            #[cfg(feature = "__tls")]
            let req = req.with_tls(origin.tls);
            let next = handler.on_request(req);
            (handler, next)
        });
        let Ok((handler, next)) = result else {
            ctx.shared.retire(slot);
            ctx.exchanges.remove(slot);
            let _ = engine.send_response(id, 500, std::iter::empty(), true, out);
            engine.stream_done(id, out);
            return;
        };
        self.served += 1;
        let decoder = body.decoder(0);
        let mut s = Stream {
            id,
            slot,
            handler,
            interest: Interest::Wait,
            timeout: None,
            early_wake: None,
            expect: if expect && !decoder.is_done() {
                Expect::Pending
            } else {
                Expect::None
            },
            decoder,
            body: ReadBuf::default(),
            end_received: end_stream,
            saw_body_end: false,
            body_error: None,
            budget: limit.get().unwrap_or(u64::MAX),
            encoder: None,
            pending: WriteBuf::default(),
            ended: false,
            is_head,
        };
        let too_large = limit
            .get()
            .is_some_and(|max| body.length().is_some_and(|n| n > max));
        if too_large && next.interest != Interest::Remove {
            // Refused before a byte of it is read.
            let _ = engine.send_response(id, 413, std::iter::empty(), true, out);
            s.fail(Error::Parse(crate::ParseError::from(
                crate::proto::Error::BodyTooLarge,
            )));
            self.list.push(s);
            let i = self.list.len() - 1;
            self.finish(i, engine, wbuf, ctx);
            return;
        }
        s.apply(next, ctx);
        self.list.push(s);
        if ctx
            .settings
            .http2
            .and_then(|h| h.max_requests)
            .is_some_and(|max| self.served >= max)
        {
            engine.go_away_gracefully(out);
        }
    }

    /// Runs the streams round-robin, a step each per pass, until none
    /// makes progress (or the turn's share or the output is used up).
    /// `true` if any did.
    fn run<F: HandlerFactory<Output = H>>(
        &mut self,
        engine: &mut Connection,
        wbuf: &mut WriteBuf,
        ctx: &mut Ctx<'_, F>,
    ) -> bool {
        let mut any = false;
        loop {
            let mut progress = false;
            let len = self.list.len();
            let mut k = 0;
            while k < len.min(self.list.len()) {
                if self.steps >= STEPS_PER_TURN || wbuf.len() >= ctx.settings.write_high_water {
                    return any || progress;
                }
                let i = (self.cursor + k) % self.list.len();
                let mut io = Io {
                    engine,
                    out: wbuf,
                    head: &mut self.head,
                    ctx,
                };
                let step = self.list[i].step(&mut io);
                match step {
                    Step::Idle => k += 1,
                    Step::Progress => {
                        self.steps += 1;
                        progress = true;
                        k += 1;
                    }
                    Step::Done => {
                        self.steps += 1;
                        progress = true;
                        self.finish(i, engine, wbuf, ctx);
                    }
                }
            }
            if !self.list.is_empty() {
                self.cursor = (self.cursor + 1) % self.list.len();
            }
            any |= progress;
            if !progress {
                return any;
            }
        }
    }
}
