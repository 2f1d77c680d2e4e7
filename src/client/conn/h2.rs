//! HTTP/2 on a client connection (RFC 9113): the sans-IO engine of
//! `proto::h2` driven with this connection's buffers, each exchange in
//! flight on a stream of its own — the same handler callbacks, in the
//! same order, as over HTTP/1.1.
//!
//! - The exchanges given to the connection wait in `inflight` until the
//!   engine may open a stream (the server's `MAX_CONCURRENT_STREAMS`);
//!   then `on_request` writes the head, which goes out as HEADERS.
//! - Request body bytes go to the stream's own buffer, and from there
//!   into DATA as the send windows allow: a full one parks
//!   `on_request_writable` like a full socket. Response DATA goes to the
//!   stream's own buffer; the window is granted back as the handler reads.
//! - A stream's deadline is its response head's (the response timeout,
//!   from the end of the request) or its body's (the read timeout); the
//!   connection's is the earliest of them, the SETTINGS ack's, the idle
//!   timeout, the keep-alive PING's (`Builder::http2_keep_alive`: an idle
//!   connection is PINGed every interval; an ack later than the timeout
//!   gives the connection up) and the release of an idle stream table.
//! - GOAWAY: the streams the server did not process, and the exchanges
//!   not yet sent, go to another connection (when their body had not
//!   begun); the others finish. A `REFUSED_STREAM` is sent again the
//!   same way. Any other reset fails only its exchange.

use std::time::{Duration, Instant};

use super::{Cause, Conn, Ctx, Phase, Step, Want, MAX_HEADERS, MAX_RETRIES};
use crate::client::exchange::{self, Info, Req, Res};
use crate::client::request::Request;
use crate::client::response::Response;
use crate::client::{Error, Settings};
use crate::next::Interest;
use crate::proto;
use crate::proto::h1::decode::BodyDecoder;
use crate::proto::h1::encode::BodyEncoder;
use crate::proto::h1::BodyKind;
use crate::proto::h2::text::{head_fields, text_fields};
use crate::proto::h2::{Connection, ErrorCode, Event, Head, HeadKind, Role, Scratch, IDLE_RELEASE};
use crate::rt::buf::{ReadBuf, WriteBuf};
use crate::rt::guard::guard;
use crate::rt::timer::after;
use crate::{Decoder, Encoder};

/// Request body bytes a stream holds for sending at most: past it,
/// `on_request_writable` waits (for the window, or the socket).
const STREAM_HIGH_WATER: usize = 16 * 1024;

/// How long the last frames of a closing connection (GOAWAY) may take
/// to go out before it is dropped anyway.
const CLOSE_FLUSH: Duration = Duration::from_secs(1);

/// The engine's settings for ours: our concurrency cap, and a stream
/// window no larger than the buffer a stream's unread body lives in.
fn engine_settings(s: &Settings) -> proto::h2::Settings {
    let base = proto::h2::Settings {
        max_concurrent_streams: s.h2_max_streams,
        max_header_list_size: u32::try_from(s.max_head_size).unwrap_or(u32::MAX),
        ..proto::h2::Settings::default()
    };
    let window = (read_size(s) as u32 & !1023).min(base.initial_window_size);
    proto::h2::Settings {
        initial_window_size: window,
        ..base
    }
}

/// The size of the loop's read buffers: a response head, and one whole
/// HTTP/2 frame or header block (what the engine reads at once; a
/// stream's unread body is held in one too).
pub(crate) fn read_size(s: &Settings) -> usize {
    let base = proto::h2::Settings {
        max_header_list_size: u32::try_from(s.max_head_size).unwrap_or(u32::MAX),
        ..proto::h2::Settings::default()
    };
    s.max_head_size.max(base.read_buffer_size())
}

/// The HTTP/2 side of a connection.
pub(crate) struct H2 {
    pub engine: Connection,
    /// The streams open, each with its exchange.
    streams: Vec<Stream>,
    /// The server sent GOAWAY: no new streams.
    goaway: bool,
    /// When our SETTINGS went out, until the server acknowledges them.
    settings_since: Option<Instant>,
    /// Where the round-robin over the exchanges goes on.
    cursor: usize,
    /// The keep-alive PING of an idle connection.
    ping: Ping,
}

/// Where an idle connection's keep-alive stands.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Ping {
    /// None sent since the connection went idle.
    None,
    /// One is out since then, waiting for its ack.
    Sent(Instant),
    /// The last one's ack came then.
    Acked(Instant),
}

/// The payload of our keep-alive PINGs.
const KEEP_ALIVE: [u8; 8] = *b"nl-alive";

/// One exchange's stream.
struct Stream {
    id: u32,
    /// The exchange.
    key: usize,
    /// Response DATA received and not yet read.
    body: ReadBuf,
    /// The server ended its side.
    end_received: bool,
    /// Request body bytes waiting for window.
    pending: WriteBuf,
    /// The handler ended the request body: END_STREAM once `pending` is
    /// out.
    ending: bool,
    /// Our END_STREAM has gone out.
    ended: bool,
    /// When the response head (or, while the body is read, more of it)
    /// is due.
    due: Option<Instant>,
}

impl H2 {
    fn find(&self, key: usize) -> Option<usize> {
        self.streams.iter().position(|s| s.key == key)
    }

    fn find_id(&self, id: u32) -> Option<usize> {
        self.streams.iter().position(|s| s.id == id)
    }
}

impl Conn {
    /// The connection speaks HTTP/2 from now on: the preface and our
    /// SETTINGS go out first.
    pub(super) fn start_h2(&mut self, ctx: &mut Ctx<'_>) {
        ctx.pool.attach_write(&mut self.wbuf);
        let engine = Connection::new(
            Role::Client,
            engine_settings(ctx.settings),
            &mut self.wbuf.buf,
        );
        self.h2 = Some(Box::new(H2 {
            engine,
            streams: Vec::new(),
            goaway: false,
            settings_since: Some(ctx.now),
            cursor: 0,
            ping: Ping::None,
        }));
    }

    /// Can this HTTP/2 connection take another exchange now?
    pub(crate) fn h2_room(&self, settings: &Settings) -> bool {
        let Some(h2) = &self.h2 else {
            return false;
        };
        let limit = h2
            .engine
            .peer_settings()
            .max_concurrent_streams
            .min(settings.h2_max_streams) as usize;
        matches!(self.phase, Phase::Idle | Phase::Active)
            && !h2.goaway
            && !self.input_closed
            && self.inflight.len() < limit
    }

    /// When the connection must be looked at again: the earliest stream
    /// deadline, the SETTINGS ack, the idle timeout, the keep-alive PING,
    /// the release of an idle stream table.
    pub(super) fn h2_due(&self, ctx: &Ctx<'_>) -> Option<Instant> {
        let h2 = self.h2.as_ref()?;
        let s = ctx.settings;
        let own = match self.phase {
            Phase::Closed => after(self.since, CLOSE_FLUSH),
            Phase::Idle => after(self.since, s.idle_timeout),
            _ => None,
        };
        let ack = h2.settings_since.and_then(|t| after(t, s.h2_ack_timeout));
        let release = (self.phase == Phase::Idle && h2.engine.holds_idle_table())
            .then(|| after(self.since, IDLE_RELEASE))
            .flatten();
        [own, ack, release, self.ping_due(ctx)]
            .into_iter()
            .chain(h2.streams.iter().map(|st| st.due))
            .flatten()
            .min()
    }

    /// When the keep-alive wants the connection: the next PING of an
    /// idle one, or the outstanding one's ack timeout.
    fn ping_due(&self, ctx: &Ctx<'_>) -> Option<Instant> {
        let (interval, timeout) = ctx.settings.h2_keep_alive?;
        let h2 = self.h2.as_ref()?;
        match (self.phase, h2.ping) {
            (_, Ping::Sent(t)) => after(t, timeout),
            (Phase::Idle, Ping::None) => after(self.since, interval),
            (Phase::Idle, Ping::Acked(t)) => after(t, interval),
            _ => None,
        }
    }

    /// One step of an HTTP/2 connection: frames in, then each exchange a
    /// step, round-robin.
    pub(super) fn step_h2(&mut self, ctx: &mut Ctx<'_>) -> Step {
        ctx.pool.attach_write(&mut self.wbuf);
        if self.read_frames(ctx) {
            return Step::Progress;
        }
        if self.phase == Phase::Closed {
            return Step::Progress;
        }
        let mut progress = false;
        let mut again = false;
        let n = self.inflight.len();
        for _ in 0..n {
            if self.phase == Phase::Closed {
                return Step::Progress;
            }
            let Some(h2) = &mut self.h2 else {
                return Step::Progress;
            };
            if self.inflight.is_empty() {
                break;
            }
            let at = h2.cursor % self.inflight.len();
            h2.cursor = at + 1;
            let k = self.inflight[at];
            match self.h2_step_exchange(k, ctx) {
                Step::Progress => progress = true,
                // Wrote nothing yet asks to write: again after the others.
                Step::Want(Want::ReadOrYield) => again = true,
                Step::Want(_) => {}
            }
        }
        let Some(h2) = &mut self.h2 else {
            return Step::Progress;
        };
        if self.phase == Phase::Closed {
            return Step::Progress;
        }
        if h2.engine.is_finished() || h2.goaway && self.inflight.is_empty() {
            self.h2_close(ctx);
            return Step::Progress;
        }
        if self.input_closed && self.rbuf.is_empty() {
            self.fail(Cause::PeerClosed, ctx);
            return Step::Progress;
        }
        match (self.phase, self.inflight.is_empty()) {
            (Phase::Active, true) => {
                self.set_phase(Phase::Idle, ctx);
                return Step::Progress;
            }
            (Phase::Idle, false) => {
                h2.ping = match h2.ping {
                    // Its ack still proves the peer alive.
                    sent @ Ping::Sent(_) => sent,
                    _ => Ping::None,
                };
                self.set_phase(Phase::Active, ctx);
                return Step::Progress;
            }
            _ => {}
        }
        if self.wbuf.len() >= ctx.settings.write_high_water {
            return Step::Want(Want::Flush);
        }
        if progress {
            Step::Progress
        } else if again {
            Step::Want(Want::ReadOrYield)
        } else {
            Step::Want(Want::Read)
        }
    }

    /// Reads frames and acts on their events while the output has room.
    /// `true`: the connection failed (its exchanges are told).
    fn read_frames(&mut self, ctx: &mut Ctx<'_>) -> bool {
        let Some(h2) = self.h2.as_ref() else {
            return false;
        };
        let mut scratch = ctx
            .scratch
            .h2
            .take()
            .unwrap_or_else(|| Box::new(Scratch::new(h2.engine.settings())));
        // The input is taken out while its events, which borrow it, are
        // acted on.
        let mut rbuf = std::mem::take(&mut self.rbuf);
        let mut failed = None;
        while self.wbuf.len() < ctx.settings.write_high_water && self.phase != Phase::Closed {
            let Some(h2) = self.h2.as_mut() else {
                break;
            };
            let r = match h2
                .engine
                .recv(rbuf.data(), &mut scratch, &mut self.wbuf.buf)
            {
                Ok(r) => r,
                Err(e) => {
                    log::debug!("h2 client: {e}");
                    failed = Some(e.code.0);
                    break;
                }
            };
            let consumed = r.consumed;
            let Some(event) = r.event else {
                rbuf.consume(consumed);
                break;
            };
            if consumed > 0 {
                self.last_io = ctx.now;
            }
            let goaway = self.on_event(event, ctx);
            rbuf.consume(consumed);
            if let Some(code) = goaway {
                self.on_goaway(code, ctx);
            }
        }
        self.rbuf = rbuf;
        ctx.scratch.h2 = Some(scratch);
        if let Some(code) = failed {
            self.fail(Cause::H2(code), ctx);
            return true;
        }
        false
    }

    /// Acts on one event; a GOAWAY's last id and code come back (acted
    /// on once the event's borrow of the input is over).
    fn on_event(&mut self, event: Event<'_>, ctx: &mut Ctx<'_>) -> Option<(u32, u32)> {
        let h2 = self.h2.as_mut().expect("an HTTP/2 connection");
        match event {
            Event::Head {
                id,
                head,
                end_stream,
            } => {
                let i = h2.find_id(id)?;
                match head.kind() {
                    HeadKind::Informational | HeadKind::Request => {}
                    // (The handler API has no response trailers: the end
                    // of the body is what they tell.)
                    HeadKind::Trailers => h2.streams[i].end_received = true,
                    HeadKind::Response => self.on_response_head(i, &head, end_stream, ctx),
                }
            }
            Event::Data {
                id,
                data,
                end_stream,
            } => {
                let Some(i) = h2.find_id(id) else {
                    // Its exchange is gone: the window comes back at once.
                    h2.engine.release(id, data.len(), &mut self.wbuf.buf);
                    return None;
                };
                let s = &mut h2.streams[i];
                if !data.is_empty() {
                    // (Within the window, as the engine checked.)
                    ctx.pool.attach_read(&mut s.body);
                    s.body.push_all(data);
                    s.due = after(ctx.now, ctx.settings.read_timeout);
                }
                s.end_received |= end_stream;
                if s.end_received {
                    s.due = None;
                }
            }
            Event::Reset { id, code, remote } => {
                let i = h2.find_id(id)?;
                let key = h2.streams[i].key;
                let ex = &ctx.exchanges[key];
                let retry = remote
                    && code == ErrorCode::REFUSED_STREAM
                    && matches!(ex.res, Res::Head)
                    && !ex.body_started
                    && ex.retries < MAX_RETRIES;
                if retry {
                    self.h2_retry(key, ctx);
                } else if remote {
                    self.h2_finish(key, Some(Error::StreamReset(code.0)), ctx);
                } else {
                    let err = Error::Malformed("the response broke an HTTP/2 stream rule");
                    self.h2_finish(key, Some(err), ctx);
                }
            }
            Event::GoAway { last_id, code, .. } => return Some((last_id, code.0)),
            Event::SettingsAcked => h2.settings_since = None,
            Event::PingAck { .. } => {
                if matches!(h2.ping, Ping::Sent(_)) {
                    h2.ping = Ping::Acked(ctx.now);
                }
            }
            Event::WindowOpened { .. } | Event::Settings => {}
        }
        None
    }

    /// The final response head of stream `i`: `on_response`.
    fn on_response_head(&mut self, i: usize, head: &Head<'_>, end: bool, ctx: &mut Ctx<'_>) {
        let h2 = self.h2.as_mut().expect("an HTTP/2 connection");
        let key = h2.streams[i].key;
        let ex = &mut ctx.exchanges[key];
        if !matches!(ex.res, Res::Head) {
            return;
        }
        let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let max = ctx.settings.max_headers;
        let Some(n) = head_fields(head, &mut fields[..max]) else {
            let id = h2.streams[i].id;
            h2.engine.reset(id, ErrorCode::CANCEL, &mut self.wbuf.buf);
            self.h2_finish(key, Some(Error::Malformed("too many header fields")), ctx);
            return;
        };
        let status = head.status().unwrap_or(0);
        let kind = if ex.info.is_head || status == 204 || status == 304 {
            BodyKind::None
        } else if let Some(n) = head.content_length() {
            BodyKind::Length(n)
        } else if end {
            BodyKind::Length(0)
        } else {
            BodyKind::Eof
        };
        let s = &mut h2.streams[i];
        s.end_received |= end;
        s.due = if s.end_received {
            None
        } else {
            after(ctx.now, ctx.settings.read_timeout)
        };
        let handler = &mut ex.handler;
        let result = guard(|| handler.on_response(Response::h2(status, &fields[..n], kind)));
        self.head_due = None;
        let Ok(next) = result else {
            self.h2_finish(key, None, ctx);
            return;
        };
        ex.res = Res::Body {
            decoder: if kind == BodyKind::None {
                kind.decoder(0)
            } else {
                BodyDecoder::eof()
            },
            saw_end: false,
            error: None,
        };
        ex.writing = false;
        ex.apply(key, next, ctx.now, ctx.timers);
    }

    /// GOAWAY(`last_id`, `code`): nothing new goes on this connection;
    /// what the server did not process is sent again elsewhere.
    fn on_goaway(&mut self, (last_id, code): (u32, u32), ctx: &mut Ctx<'_>) {
        let h2 = self.h2.as_mut().expect("an HTTP/2 connection");
        if !h2.goaway {
            h2.goaway = true;
            self.left_pool = true;
            self.reusable = false;
        }
        let keys: Vec<usize> = self.inflight.iter().copied().collect();
        for k in keys {
            let Some(h2) = self.h2.as_ref() else {
                return;
            };
            let processed = h2.find(k).is_some_and(|i| h2.streams[i].id <= last_id);
            if processed {
                continue;
            }
            let ex = &ctx.exchanges[k];
            if !ex.body_started && ex.retries < MAX_RETRIES {
                self.h2_retry(k, ctx);
            } else {
                self.h2_finish(k, Some(Error::Http2(code)), ctx);
            }
        }
    }

    /// One step of exchange `k`: its request, then its response.
    fn h2_step_exchange(&mut self, k: usize, ctx: &mut Ctx<'_>) -> Step {
        let ex = &ctx.exchanges[k];
        let write = match ex.req {
            Req::Head => return self.h2_write_head(k, ctx),
            Req::Done => Step::Want(Want::Idle),
            Req::Body { .. } => match ex.interest {
                Interest::Wait => Step::Want(Want::Idle),
                Interest::Remove => return self.h2_give_up(k, ctx),
                Interest::Write | Interest::ReadWrite => self.h2_write_body(k, ctx),
                Interest::Read | Interest::End => {
                    self.h2_end_body(k, ctx);
                    Step::Progress
                }
            },
        };
        if self.send_pending(k, ctx) {
            return Step::Progress;
        }
        if let Step::Progress = write {
            return write;
        }
        if !ctx.exchanges.contains(k) || !self.inflight.contains(&k) {
            return Step::Progress;
        }
        match ctx.exchanges[k].res {
            Res::Body { .. } => self.h2_read_body(k, ctx),
            Res::Head | Res::Raw(_) => Step::Want(Want::Idle),
        }
    }

    /// `on_request`: the head goes out as HEADERS on a new stream.
    fn h2_write_head(&mut self, k: usize, ctx: &mut Ctx<'_>) -> Step {
        let h2 = self.h2.as_mut().expect("an HTTP/2 connection");
        if h2.goaway {
            // (Sent elsewhere by `on_goaway`.)
            return Step::Want(Want::Idle);
        }
        if !h2.engine.can_open() || self.wbuf.len() >= ctx.settings.write_high_water {
            return Step::Want(Want::Idle);
        }
        let scratch = &mut *ctx.scratch;
        scratch.head.clear();
        let ex = &mut ctx.exchanges[k];
        let mut req = Request::new(
            &mut scratch.head,
            &mut scratch.method,
            &mut scratch.target,
            &ex.url,
            ctx.shared,
            k,
        );
        let handler = &mut ex.handler;
        let Ok(next) = guard(|| handler.on_request(&mut req)) else {
            self.inflight.retain(|&x| x != k);
            exchange::end(ctx.exchanges, k, ctx.shared);
            return Step::Progress;
        };
        let body = matches!(next.interest, Interest::Write | Interest::ReadWrite);
        let finished = req.finish(body);
        if finished.is_connect || finished.upgrade {
            self.inflight.retain(|&x| x != k);
            let err = Error::InvalidRequest(
                "CONNECT and Upgrade are not supported over HTTP/2 (use an HTTP/1.1 connection)",
            );
            exchange::fail(ctx.exchanges, k, err, ctx.shared);
            return Step::Progress;
        }
        ex.info = Info {
            is_head: finished.is_head,
            is_connect: false,
            idempotent: finished.idempotent,
            keep_alive: true,
            upgrade: false,
        };
        // HTTP/2 frames the body itself: raw bytes, a declared length
        // still enforced.
        let encoder = match finished.encoder {
            BodyEncoder::Chunked => BodyEncoder::CloseDelimited,
            e => e,
        };
        let end_with_head = encoder == BodyEncoder::Length(0);
        let (fields, _) = text_fields(&scratch.head);
        let authority = fields
            .clone()
            .find(|(name, _)| name.eq_ignore_ascii_case(b"host"))
            .map_or(&b""[..], |(_, value)| value);
        let others = fields.filter(|(name, _)| !name.eq_ignore_ascii_case(b"host"));
        let scheme: &[u8] = if ex.url.is_https() { b"https" } else { b"http" };
        let sent = h2.engine.send_request(
            scratch.method.as_bytes(),
            scheme,
            authority,
            scratch.target.as_bytes(),
            others,
            end_with_head,
            &mut self.wbuf.buf,
        );
        let Ok(id) = sent else {
            // (`can_open` said yes: not reached.)
            return Step::Want(Want::Idle);
        };
        h2.streams.push(Stream {
            id,
            key: k,
            body: ReadBuf::default(),
            end_received: false,
            pending: WriteBuf::default(),
            ending: false,
            ended: end_with_head,
            due: None,
        });
        ex.req = Req::Body {
            encoder,
            waiting_continue: false,
        };
        ex.writing = true;
        ex.apply(k, next, ctx.now, ctx.timers);
        self.last_io = ctx.now;
        if end_with_head {
            self.h2_request_over(k, ctx);
        }
        Step::Progress
    }

    /// `on_request_writable`, into the stream's buffer.
    fn h2_write_body(&mut self, k: usize, ctx: &mut Ctx<'_>) -> Step {
        let h2 = self.h2.as_mut().expect("an HTTP/2 connection");
        let Some(i) = h2.find(k) else {
            return Step::Want(Want::Idle);
        };
        let s = &mut h2.streams[i];
        if s.pending.len() >= STREAM_HIGH_WATER {
            // The window (or the socket) is full: park like a full socket.
            return Step::Want(Want::Idle);
        }
        ctx.pool.attach_write(&mut s.pending);
        let ex = &mut ctx.exchanges[k];
        let Req::Body { encoder, .. } = &mut ex.req else {
            unreachable!("h2_write_body without a body");
        };
        let mut body = Encoder::new(encoder, &mut s.pending, STREAM_HIGH_WATER);
        let handler = &mut ex.handler;
        let result = guard(|| {
            let next = handler.on_request_writable(&mut body);
            (next, body.accepted)
        });
        drop(body);
        let Ok((next, accepted)) = result else {
            return self.h2_give_up(k, ctx);
        };
        ex.body_started = true;
        ex.writing = true;
        ex.apply(k, next, ctx.now, ctx.timers);
        self.last_io = ctx.now;
        if accepted == 0 && matches!(next.interest, Interest::Write | Interest::ReadWrite) {
            Step::Want(Want::ReadOrYield)
        } else {
            Step::Progress
        }
    }

    /// The handler says the request body is complete: END_STREAM once
    /// the buffered bytes are out; one shorter than its declared length
    /// fails (and its stream is reset). Or it moved on to the response
    /// without finishing it (`Next::read()` from the response side): the
    /// request is over but never ended — the server must not take a
    /// cut-short body for a whole one — and the stream is reset when the
    /// exchange ends.
    fn h2_end_body(&mut self, k: usize, ctx: &mut Ctx<'_>) {
        let ex = &ctx.exchanges[k];
        let Req::Body { encoder, .. } = &ex.req else {
            return;
        };
        if ex.writing {
            if encoder.remaining().is_some_and(|n| n > 0) {
                let err = Error::InvalidRequest("request body shorter than its Content-Length");
                self.h2_finish(k, Some(err), ctx);
                return;
            }
            let h2 = self.h2.as_mut().expect("an HTTP/2 connection");
            if let Some(i) = h2.find(k) {
                h2.streams[i].ending = true;
            }
        }
        self.h2_request_over(k, ctx);
    }

    /// Request `k` is over: its response head is due within the response
    /// timeout.
    fn h2_request_over(&mut self, k: usize, ctx: &mut Ctx<'_>) {
        let ex = &mut ctx.exchanges[k];
        ex.req = Req::Done;
        if !matches!(ex.res, Res::Head) {
            return;
        }
        let h2 = self.h2.as_mut().expect("an HTTP/2 connection");
        if let Some(i) = h2.find(k) {
            h2.streams[i].due = after(ctx.now, ctx.settings.response_timeout);
        }
    }

    /// Sends exchange `k`'s buffered body bytes as the windows allow, one
    /// frame's worth (the other streams get theirs in between); then its
    /// END_STREAM once the handler has ended and all is out. `true`: a
    /// frame went.
    fn send_pending(&mut self, k: usize, ctx: &mut Ctx<'_>) -> bool {
        let Some(h2) = self.h2.as_mut() else {
            return false;
        };
        let Some(i) = h2.find(k) else {
            return false;
        };
        let s = &mut h2.streams[i];
        if s.ended || self.wbuf.len() >= ctx.settings.write_high_water {
            return false;
        }
        let pending = s.pending.pending();
        if pending.is_empty() && !s.ending {
            return false;
        }
        let max = h2.engine.peer_settings().max_frame_size as usize;
        let len = pending.len().min(max);
        let end = s.ending && len == pending.len();
        ctx.pool.attach_write(&mut self.wbuf);
        let sent = match h2
            .engine
            .send_data(s.id, &pending[..len], end, &mut self.wbuf.buf)
        {
            Ok(n) => n,
            Err(_) => {
                // Our side was closed under it (a reset): nothing more goes.
                s.ended = true;
                s.pending.clear();
                return false;
            }
        };
        s.pending.advance(sent);
        if end && sent == len {
            s.ended = true;
        }
        if s.pending.is_empty() {
            ctx.pool.release(&mut ReadBuf::default(), &mut s.pending);
        }
        if sent > 0 || s.ended {
            self.last_io = ctx.now;
            true
        } else {
            false
        }
    }

    /// `on_response_readable`, or the end of the exchange.
    fn h2_read_body(&mut self, k: usize, ctx: &mut Ctx<'_>) -> Step {
        let ex = &ctx.exchanges[k];
        match ex.interest {
            Interest::Read | Interest::ReadWrite => {}
            Interest::Write if ex.req_done() => {}
            Interest::Write | Interest::Wait => return Step::Want(Want::Idle),
            Interest::Remove => return self.h2_give_up(k, ctx),
            Interest::End => {
                self.h2_finish(k, None, ctx);
                return Step::Progress;
            }
        }
        let h2 = self.h2.as_mut().expect("an HTTP/2 connection");
        let Some(i) = h2.find(k) else {
            return Step::Want(Want::Idle);
        };
        let s = &mut h2.streams[i];
        let ex = &mut ctx.exchanges[k];
        let req_done = ex.req_done();
        let Res::Body {
            decoder,
            saw_end,
            error,
        } = &mut ex.res
        else {
            unreachable!("h2_read_body without a body")
        };
        let readable = if decoder.is_done() {
            !*saw_end
        } else {
            !s.body.is_empty() || s.end_received
        };
        if !readable {
            if *saw_end || decoder.is_done() {
                // The handler has seen the end and asks to read on: done.
                self.h2_finish(k, None, ctx);
                return Step::Progress;
            }
            return Step::Want(Want::Idle);
        }
        let before = s.body.len();
        let mut body = Decoder::new(decoder, &mut s.body, s.end_received, error);
        let handler = &mut ex.handler;
        let Ok((next, ended)) = guard(|| {
            let next = handler.on_response_readable(&mut body);
            (next, body.ended)
        }) else {
            return self.h2_give_up(k, ctx);
        };
        *saw_end |= ended;
        let taken = before - s.body.len();
        if taken > 0 {
            // The window comes back as the handler reads.
            h2.engine.release(s.id, taken, &mut self.wbuf.buf);
        }
        if s.body.is_empty() {
            ctx.pool.release(&mut s.body, &mut WriteBuf::default());
        }
        if let Some(m) = *error {
            self.h2_finish(k, Some(Error::Malformed(m.reason())), ctx);
            return Step::Progress;
        }
        ex.writing = false;
        ex.apply(k, next, ctx.now, ctx.timers);
        self.last_io = ctx.now;
        let reads_on = match next.interest {
            Interest::Read | Interest::ReadWrite => true,
            Interest::Write => req_done,
            Interest::Wait | Interest::End | Interest::Remove => false,
        };
        if reads_on && taken == 0 && !ended {
            // Read nothing yet asks to read: wait for DATA.
            return Step::Want(Want::Idle);
        }
        Step::Progress
    }

    /// Exchange `k` gives up (panicked, `Next::remove()`, or ended while
    /// its response is still to come): its stream is reset; the
    /// connection and the other streams go on.
    pub(super) fn h2_give_up(&mut self, k: usize, ctx: &mut Ctx<'_>) -> Step {
        self.h2_finish(k, None, ctx);
        Step::Progress
    }

    /// Exchange `k` is over (`err`: it failed, and is told): its stream is
    /// done (reset if not closed both ways), its buffers go back, it
    /// leaves the connection.
    fn h2_finish(&mut self, k: usize, err: Option<Error>, ctx: &mut Ctx<'_>) {
        self.h2_drop_stream(k, ctx);
        self.inflight.retain(|&x| x != k);
        match err {
            Some(err) => exchange::fail(ctx.exchanges, k, err, ctx.shared),
            None => {
                self.reused = true;
                exchange::end(ctx.exchanges, k, ctx.shared);
            }
        }
    }

    /// Exchange `k` goes to another connection (or, for a refused
    /// stream, perhaps this one again), its `on_request` called anew.
    fn h2_retry(&mut self, k: usize, ctx: &mut Ctx<'_>) {
        self.h2_drop_stream(k, ctx);
        self.inflight.retain(|&x| x != k);
        ctx.exchanges[k].reset_for_retry(k, ctx.timers);
        ctx.requeue.push(k);
    }

    fn h2_drop_stream(&mut self, k: usize, ctx: &mut Ctx<'_>) {
        let Some(h2) = self.h2.as_mut() else {
            return;
        };
        if let Some(i) = h2.find(k) {
            ctx.pool.attach_write(&mut self.wbuf);
            let mut s = h2.streams.swap_remove(i);
            h2.engine.stream_done(s.id, &mut self.wbuf.buf);
            s.body.clear();
            s.pending.clear();
            ctx.pool.release(&mut s.body, &mut s.pending);
        }
    }

    /// The deadline passed: streams overdue fail (the others go on), an
    /// unacknowledged SETTINGS or an idle connection closes it, a
    /// keep-alive PING goes out (or, unanswered in time, fails the
    /// connection), an idle stream table is given back, and a closing one
    /// that could not flush is dropped.
    pub(super) fn h2_on_deadline(&mut self, ctx: &mut Ctx<'_>) {
        let now = ctx.now;
        if self.h2.is_none() {
            return;
        }
        match self.phase {
            Phase::Closed => {
                // Its GOAWAY did not go out in time: dropped as it is.
                self.h2 = None;
                return;
            }
            Phase::Idle
                if after(self.since, ctx.settings.idle_timeout).is_some_and(|t| t <= now) =>
            {
                return self.h2_close(ctx);
            }
            _ => {}
        }
        let ping_due = self.ping_due(ctx).is_some_and(|t| t <= now);
        let idle_for = now.saturating_duration_since(self.since);
        let Some(h2) = self.h2.as_mut() else {
            return;
        };
        if self.phase == Phase::Idle && idle_for >= IDLE_RELEASE {
            // Idle a while: the stream table goes (a client sending one
            // request at a time does not make it anew each time).
            h2.engine.release_idle();
        }
        if ping_due {
            if matches!(h2.ping, Ping::Sent(_)) {
                // No ack in time: the peer is gone, or too slow to use.
                return self.h2_fail(Cause::ResponseTimeout, ctx);
            }
            ctx.pool.attach_write(&mut self.wbuf);
            h2.engine.ping(KEEP_ALIVE, &mut self.wbuf.buf);
            h2.ping = Ping::Sent(now);
        }
        let ack = h2
            .settings_since
            .and_then(|t| after(t, ctx.settings.h2_ack_timeout));
        if ack.is_some_and(|t| t <= now) {
            ctx.pool.attach_write(&mut self.wbuf);
            h2.engine
                .go_away(ErrorCode::SETTINGS_TIMEOUT, &mut self.wbuf.buf);
            return self.fail(Cause::H2(ErrorCode::SETTINGS_TIMEOUT.0), ctx);
        }
        let overdue: Vec<(usize, bool)> = h2
            .streams
            .iter()
            .filter(|s| s.due.is_some_and(|t| t <= now))
            .map(|s| (s.key, matches!(ctx.exchanges[s.key].res, Res::Head)))
            .collect();
        for (k, head) in overdue {
            let err = if head {
                Error::ResponseTimeout
            } else {
                Error::ReadTimeout
            };
            self.h2_finish(k, Some(err), ctx);
        }
        self.arm(ctx);
    }

    /// Closes the connection: GOAWAY(NO_ERROR), flushed before the close
    /// (bounded by [`CLOSE_FLUSH`]). Any exchange still on it fails.
    fn h2_close(&mut self, ctx: &mut Ctx<'_>) {
        ctx.pool.attach_write(&mut self.wbuf);
        if let Some(h2) = self.h2.as_mut() {
            h2.engine.go_away(ErrorCode::NO_ERROR, &mut self.wbuf.buf);
        }
        self.h2_fail(Cause::Abandoned, ctx);
    }

    /// The connection is over: each exchange on it is sent again on
    /// another connection when that is safe (never sent; or the server
    /// closed a connection we had used before any answer, the request
    /// idempotent and its body not begun), else told why it failed.
    pub(super) fn h2_fail(&mut self, mut cause: Cause, ctx: &mut Ctx<'_>) {
        while let Some(k) = self.inflight.pop_front() {
            if let Cause::Exchange(culprit, err) = &mut cause {
                if *culprit == k {
                    self.h2_drop_stream(k, ctx);
                    match err.take() {
                        Some(err) => exchange::fail(ctx.exchanges, k, err, ctx.shared),
                        None => exchange::end(ctx.exchanges, k, ctx.shared),
                    }
                    continue;
                }
            }
            let Some(ex) = ctx.exchanges.get(k) else {
                continue;
            };
            let unanswered = matches!(ex.res, Res::Head);
            let never_sent = matches!(ex.req, Req::Head);
            let retry = ex.retries < MAX_RETRIES
                && !ex.body_started
                && (never_sent
                    || matches!(cause, Cause::PeerClosed)
                        && unanswered
                        && self.reused
                        && ex.info.idempotent);
            if retry {
                self.h2_drop_stream(k, ctx);
                ctx.exchanges[k].reset_for_retry(k, ctx.timers);
                ctx.requeue.push(k);
                continue;
            }
            let err = match &mut cause {
                Cause::PeerClosed if unanswered => Error::Closed,
                Cause::PeerClosed => Error::Incomplete,
                Cause::Io(e) => e.take().map_or(Error::Closed, Error::from_io),
                Cause::Malformed(m) => Error::Malformed(m.reason()),
                Cause::H2(code) => Error::Http2(*code),
                Cause::ResponseTimeout => Error::ResponseTimeout,
                Cause::ReadTimeout => Error::ReadTimeout,
                Cause::NotServed => Error::Closed,
                Cause::Abandoned | Cause::Exchange(..) => Error::Aborted,
            };
            self.h2_drop_stream(k, ctx);
            exchange::fail(ctx.exchanges, k, err, ctx.shared);
        }
        if let Some(h2) = self.h2.as_mut() {
            for mut s in h2.streams.drain(..) {
                s.body.clear();
                s.pending.clear();
                ctx.pool.release(&mut s.body, &mut s.pending);
            }
        }
        self.reusable = false;
        self.set_phase(Phase::Closed, ctx);
    }
}
