//! One client connection: its buffers, its deadline, the exchanges in
//! flight on it (in request order), and the keep-alive decision. No socket
//! I/O happens here — the event loop connects, reads into `rbuf`, writes
//! out of `wbuf`, and asks [`Conn::advance`] what to do next — so the
//! machine can be driven with plain bytes.
//!
//! Every change of [`Phase`] goes through [`Conn::set_phase`]; the
//! deadline that goes with the phase (and, while active, with where the
//! front exchange is) is computed in one place, [`Conn::arm`].
//!
//! Exchanges in flight: the **writer** is the last one (only it may still
//! be writing its request), the **reader** the first (responses come back
//! in request order). Without pipelining they are the same exchange.
//!
//! A connection that speaks HTTP/2 (prior knowledge, or ALPN `h2`) is
//! driven by `conn/h2.rs` instead: the same phases, deadline and buffers,
//! its exchanges in flight each on a stream of their own, in any order.

use std::collections::VecDeque;
use std::io;
use std::mem::MaybeUninit;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use slab::Slab;

use crate::client::exchange::{self, Exchange, Info, Raw, RawOut, Req, Res, Timer};
use crate::client::request::Request;
use crate::client::response::Response;
use crate::client::{Error, Settings};
use crate::control::Shared;
use crate::next::Interest;
use crate::proto::h1::decode::BodyDecoder;
use crate::proto::h1::drain::{self, Drained};
use crate::proto::h1::response::{self as response_head, Asked};
use crate::proto::h1::BodyKind;
use crate::rt::buf::{BufPool, ReadBuf, WriteBuf};
use crate::rt::guard::guard;
use crate::rt::machine::Bufs;
use crate::rt::timer::{after, Deadline, Timers};
use crate::rt::Machine;
pub(crate) use crate::rt::Want;
use crate::Next;
use crate::{proto, Decoder, Encoder};

mod h2;

pub(crate) use h2::read_size;

/// Upper bound of the `max_headers` setting: the parser's field array
/// lives on the stack.
pub(crate) const MAX_HEADERS: usize = 128;

/// How often an exchange is sent again on a fresh connection at most.
const MAX_RETRIES: u8 = 3;

/// Strings reused for every request head (method and target), so that
/// building one allocates nothing.
#[derive(Default)]
pub(crate) struct Scratch {
    pub method: String,
    pub target: String,
    /// An HTTP/2 request head as written (HTTP/1 text), before it is
    /// turned into HEADERS.
    pub head: Vec<u8>,
    /// HTTP/2 header decoding space, one per loop.
    pub h2: Option<Box<proto::h2::Scratch>>,
}

/// Everything a connection borrows from its loop while it runs.
pub(crate) struct Ctx<'a> {
    pub exchanges: &'a mut Slab<Exchange>,
    pub shared: &'static Shared,
    pub settings: &'a Settings,
    pub pool: &'a mut BufPool,
    pub timers: &'a mut Timers<Timer>,
    pub scratch: &'a mut Scratch,
    pub now: Instant,
    /// Exchanges to send again on another connection, in request order.
    pub requeue: &'a mut Vec<usize>,
}

/// The result of one step of the machine.
enum Step {
    /// Something changed: step again.
    Progress,
    /// Stuck until the loop does this.
    Want(Want),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// The loop is connecting the socket.
    Connecting,
    /// Connected; the TLS handshake runs, and its ALPN answer will say
    /// which protocol the connection speaks.
    Handshake,
    /// Connected, nothing in flight: in the pool, reusable.
    Idle,
    /// Exchanges in flight, or the rest of an unread body being drained.
    Active,
    /// Not usable any more: the loop removes it.
    Closed,
}

/// Why a connection ends before its exchanges are done.
pub(crate) enum Cause {
    /// The server closed or reset the connection.
    PeerClosed,
    /// Another I/O error.
    Io(Option<io::Error>),
    Malformed(proto::Error),
    ResponseTimeout,
    ReadTimeout,
    /// The response that came first said `Connection: close`: the server
    /// processes nothing behind it, so the requests behind were not served.
    NotServed,
    /// We gave the connection up (an unread body too long to drain, an
    /// answer before the request body was done): the requests behind may
    /// have been processed, so only those never sent or idempotent are
    /// sent again.
    Abandoned,
    /// HTTP/2: a connection error with this code — ours (the server
    /// broke the protocol; GOAWAY told it) or the server's GOAWAY.
    H2(u32),
    /// Exchange `.0` broke the connection: it panicked (`None`: dropped
    /// without a word), asked for `Next::remove()` (the loop hands it the
    /// socket), or cut its request body short (it is told why).
    Exchange(usize, Option<Error>),
}

/// Of what the writer and the reader want, the one the loop must do:
/// dropping the connection over running again, over reading, over
/// flushing, over waiting.
fn stronger(a: Want, b: Want) -> Want {
    let rank = |w: Want| match w {
        Want::Remove => 4,
        Want::ReadOrYield => 3,
        Want::Read => 2,
        Want::Flush | Want::Close => 1,
        _ => 0,
    };
    if rank(a) >= rank(b) {
        a
    } else {
        b
    }
}

/// Where a connection connects to: its host's addresses, the one being
/// tried, and the next to try if that fails.
pub(crate) struct Dial {
    pub addrs: Arc<[SocketAddr]>,
    pub next: usize,
    pub addr: SocketAddr,
}

/// One client connection.
pub(crate) struct Conn {
    pub key: usize,
    /// The host pool it belongs to.
    pub host: usize,
    pub rbuf: ReadBuf,
    pub wbuf: WriteBuf,
    pub deadline: Deadline,
    /// The server will send nothing more (FIN seen).
    pub input_closed: bool,
    /// The last time bytes moved or a handler acted.
    pub last_io: Instant,
    /// The exchange that returned `Next::remove()`: it gets the socket.
    pub remover: Option<usize>,
    /// Where it connects to (set by the loop).
    pub dial: Option<Dial>,
    /// Writing failed: nothing more is sent on this connection.
    output_closed: bool,
    /// The exchange whose request body the write failure cut short, and
    /// the error: what it is told if its response does not complete.
    cut: Option<(usize, io::Error)>,
    phase: Phase,
    /// When the current phase began.
    since: Instant,
    /// Exchange keys, in request order.
    inflight: VecDeque<usize>,
    /// An exchange has completed on this connection: a close before any
    /// response may just be the server's keep-alive timeout.
    reused: bool,
    /// May carry another exchange after those in flight.
    reusable: bool,
    /// A response said `Connection: close`: nothing after it is processed.
    server_closes: bool,
    /// The unread rest of a finished response's body, and how much more
    /// of it may be skipped.
    drain: Option<(BodyDecoder, u64)>,
    /// When the front exchange's response head is due.
    head_due: Option<Instant>,
    /// When the writer stops waiting for `100 Continue`.
    continue_due: Option<Instant>,
    /// The connection will carry no new exchange (it went raw, or its
    /// HTTP/2 server sent GOAWAY) and its host has not been told yet (it
    /// leaves the host's count: see [`Conn::take_left_pool`]).
    left_pool: bool,
    /// The TLS handshake's ALPN answer, until the machine acts on it:
    /// `true` for `h2`.
    alpn_h2: Option<bool>,
    /// Counted as connecting by its host until the protocol is known
    /// (the TLS handshake is done).
    settling: bool,
    /// The protocol became known (`true`: HTTP/2) and the host has not
    /// been told yet ([`Conn::take_settled`]).
    settled: Option<bool>,
    /// Why the TLS handshake failed, for the first exchange waiting for
    /// the host ([`Conn::take_handshake_error`]).
    handshake_error: Option<Error>,
    /// The HTTP/2 side, once the connection speaks it.
    h2: Option<Box<h2::H2>>,
}

impl Conn {
    /// A connection being connected, under the connect timeout.
    pub(crate) fn new(
        key: usize,
        host: usize,
        settings: &Settings,
        timers: &mut Timers<Timer>,
        now: Instant,
    ) -> Conn {
        let mut conn = Conn {
            key,
            host,
            rbuf: ReadBuf::default(),
            wbuf: WriteBuf::default(),
            deadline: Deadline::default(),
            input_closed: false,
            last_io: now,
            remover: None,
            dial: None,
            output_closed: false,
            cut: None,
            phase: Phase::Connecting,
            since: now,
            inflight: VecDeque::with_capacity(settings.max_pipelined),
            reused: false,
            reusable: true,
            server_closes: false,
            drain: None,
            head_due: None,
            continue_due: None,
            left_pool: false,
            alpn_h2: None,
            settling: false,
            settled: None,
            handshake_error: None,
            h2: None,
        };
        conn.deadline.set(
            after(now, settings.connect_timeout),
            Timer::Conn(key),
            timers,
        );
        conn
    }

    pub(crate) fn is_connecting(&self) -> bool {
        self.phase == Phase::Connecting
    }

    /// Request bytes went out. The response timeout, if it runs, counts
    /// from the last byte sent: a request still leaving the buffer (a slow
    /// server reading it) is not yet waiting for its answer.
    pub(crate) fn on_sent(&mut self, ctx: &mut Ctx<'_>) {
        if self.head_due.is_some() {
            self.head_due = after(ctx.now, ctx.settings.response_timeout);
            self.arm(ctx);
        }
    }

    /// Connecting again, to the next address: the connect timeout starts
    /// over.
    pub(crate) fn restart_connect(
        &mut self,
        now: Instant,
        settings: &Settings,
        timers: &mut Timers<Timer>,
    ) {
        self.since = now;
        self.deadline.set(
            after(now, settings.connect_timeout),
            Timer::Conn(self.key),
            timers,
        );
    }

    /// Does the connection speak HTTP/2?
    pub(crate) fn is_h2(&self) -> bool {
        self.h2.is_some()
    }

    /// In the pool, ready for an exchange.
    pub(crate) fn is_idle(&self) -> bool {
        self.phase == Phase::Idle
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }

    /// Has an exchange completed on this connection? A retried exchange
    /// takes only a connection that has not (see `pool.rs`). An HTTP/2
    /// connection never counts as used: one the server stops serving
    /// says so (GOAWAY) and leaves the pool.
    pub(crate) fn is_reused(&self) -> bool {
        self.reused && self.h2.is_none()
    }

    /// Has the connection just left the pool (gone raw, or an HTTP/2
    /// GOAWAY)? `true` once: it then leaves its host's pool and count (it
    /// will never carry another exchange).
    pub(crate) fn take_left_pool(&mut self) -> bool {
        std::mem::take(&mut self.left_pool)
    }

    /// Has the TLS handshake just said which protocol the connection
    /// speaks (`Some(true)`: HTTP/2)? Once: the host then counts it as
    /// connecting no more, and knows what the origin speaks.
    pub(crate) fn take_settled(&mut self) -> Option<bool> {
        self.settled.take()
    }

    /// Why the connection's TLS handshake failed, if it did: the host
    /// tells the first exchange waiting for it, as it would a failed
    /// connect.
    pub(crate) fn take_handshake_error(&mut self) -> Option<Error> {
        self.handshake_error.take()
    }

    /// Is the connection still counted as connecting by its host (its
    /// TLS handshake has not said which protocol it speaks)?
    pub(crate) fn is_settling(&self) -> bool {
        self.settling
    }

    /// Writing has failed: the loop sends nothing more.
    pub(crate) fn output_closed(&self) -> bool {
        self.output_closed
    }

    /// Closes an idle connection to make room for a fresh one.
    pub(crate) fn close_idle(&mut self, ctx: &mut Ctx<'_>) {
        debug_assert!(self.is_idle(), "closing a busy connection");
        self.set_phase(Phase::Closed, ctx);
    }

    /// Can another request be pipelined behind those in flight? Only
    /// behind complete idempotent requests (RFC 9112 §9.3.2), on a
    /// connection still good for more.
    pub(crate) fn can_pipeline(&self, exchanges: &Slab<Exchange>, settings: &Settings) -> bool {
        self.phase == Phase::Active
            && self.h2.is_none()
            && self.reusable
            && !self.input_closed
            && self.remover.is_none()
            && self.inflight.len() < settings.max_pipelined
            && self.inflight.iter().all(|&k| {
                exchanges
                    .get(k)
                    .is_some_and(|ex| ex.req_done() && ex.info.idempotent && !ex.info.upgrade)
            })
    }

    /// The socket is connected. `alpn`: a TLS handshake offering `h2`
    /// follows, and its answer decides the protocol (the host counts the
    /// connection as connecting until then); `h2_prior`: HTTP/2 with
    /// prior knowledge.
    pub(crate) fn connected(&mut self, alpn: bool, h2_prior: bool, ctx: &mut Ctx<'_>) {
        if alpn {
            self.settling = true;
            self.set_phase(Phase::Handshake, ctx);
        } else {
            if h2_prior {
                self.start_h2(ctx);
            }
            self.set_phase(Phase::Idle, ctx);
        }
    }

    /// Puts exchange `key` on this connection, behind those in flight.
    pub(crate) fn start(&mut self, key: usize, ctx: &mut Ctx<'_>) {
        ctx.exchanges[key].conn = Some(self.key);
        self.inflight.push_back(key);
        if self.phase == Phase::Idle {
            self.last_io = ctx.now;
            self.set_phase(Phase::Active, ctx);
        }
    }

    /// The one place phases change.
    fn set_phase(&mut self, phase: Phase, ctx: &mut Ctx<'_>) {
        self.phase = phase;
        self.since = ctx.now;
        if phase != Phase::Active {
            self.head_due = None;
            self.continue_due = None;
        }
        self.arm(ctx);
    }

    /// Sets the deadline the phase runs under: connect timeout, idle
    /// timeout, or while active the earliest of the `100 Continue` wait,
    /// the response head's due time and the read timeout (counted from
    /// the last progress, and only while the loop, not a parked handler,
    /// is what the exchange waits for).
    fn arm(&mut self, ctx: &mut Ctx<'_>) {
        let s = ctx.settings;
        if self.h2.is_some() {
            let at = self.h2_due(ctx);
            self.deadline.set(at, Timer::Conn(self.key), ctx.timers);
            return;
        }
        let at = match self.phase {
            Phase::Connecting | Phase::Handshake => after(self.since, s.connect_timeout),
            Phase::Idle => after(self.since, s.idle_timeout),
            Phase::Closed => None,
            Phase::Active => [self.continue_due, self.head_due, self.io_due(ctx)]
                .into_iter()
                .flatten()
                .min(),
        };
        self.deadline.set(at, Timer::Conn(self.key), ctx.timers);
    }

    /// When the read timeout fires, if it applies now.
    fn io_due(&self, ctx: &Ctx<'_>) -> Option<Instant> {
        let waiting_on_io = match self.inflight.front().map(|&k| &ctx.exchanges[k]) {
            None => self.drain.is_some(),
            Some(ex) if ex.interest == Interest::Wait => self.drain.is_some(),
            Some(ex) => match (&ex.req, &ex.res) {
                (_, Res::Body { .. }) => true,
                // Raw mode runs on the handler's own timeouts; only the
                // last bytes of a finished one are bounded here.
                (_, Res::Raw(raw)) => raw.done,
                (
                    Req::Body {
                        waiting_continue: false,
                        ..
                    },
                    _,
                ) => true,
                _ => self.drain.is_some(),
            },
        };
        waiting_on_io
            .then(|| after(self.last_io, ctx.settings.read_timeout))
            .flatten()
    }

    /// Runs the connection as far as buffered input and output room allow.
    pub(crate) fn advance(&mut self, ctx: &mut Ctx<'_>) -> Want {
        let want = loop {
            let step = match self.phase {
                Phase::Connecting => Step::Want(Want::Idle),
                // An HTTP/2 connection's last frames (GOAWAY) go out first.
                Phase::Closed if self.h2.is_some() => Step::Want(Want::FlushRemove),
                Phase::Closed => Step::Want(Want::Remove),
                Phase::Handshake => self.step_handshake(ctx),
                Phase::Idle | Phase::Active if self.h2.is_some() => self.step_h2(ctx),
                Phase::Idle if !self.rbuf.is_empty() || self.input_closed => {
                    // Bytes nobody asked for, or the server closed: gone.
                    self.set_phase(Phase::Closed, ctx);
                    Step::Progress
                }
                // Read while idle, to notice the server closing.
                Phase::Idle => Step::Want(Want::Read),
                Phase::Active => self.step(ctx),
            };
            if let Step::Want(want) = step {
                break want;
            }
        };
        self.arm(ctx);
        want
    }

    /// The TLS handshake: once its ALPN answer is in, the connection is
    /// HTTP/2 or HTTP/1 and goes idle, ready for exchanges.
    fn step_handshake(&mut self, ctx: &mut Ctx<'_>) -> Step {
        let Some(h2) = self.alpn_h2.take() else {
            if self.input_closed {
                self.fail(Cause::PeerClosed, ctx);
                return Step::Progress;
            }
            return Step::Want(Want::Read);
        };
        self.settling = false;
        self.settled = Some(h2);
        if h2 {
            self.start_h2(ctx);
        }
        self.set_phase(Phase::Idle, ctx);
        Step::Progress
    }

    fn step(&mut self, ctx: &mut Ctx<'_>) -> Step {
        if self.inflight.is_empty() && self.drain.is_none() {
            let next = if self.reusable && !self.input_closed && self.rbuf.is_empty() {
                Phase::Idle
            } else {
                Phase::Closed
            };
            self.set_phase(next, ctx);
            return Step::Progress;
        }
        let write = self.step_write(ctx);
        if matches!(write, Step::Progress) || self.phase != Phase::Active {
            return Step::Progress;
        }
        let read = self.step_read(ctx);
        if matches!(read, Step::Progress) || self.phase != Phase::Active {
            return Step::Progress;
        }
        match (write, read) {
            (Step::Want(a), Step::Want(b)) => Step::Want(stronger(a, b)),
            _ => Step::Progress,
        }
    }

    // ---- the writer: the last exchange in flight ----

    fn step_write(&mut self, ctx: &mut Ctx<'_>) -> Step {
        let Some(&w) = self.inflight.back() else {
            return Step::Want(Want::Idle);
        };
        let ex = &ctx.exchanges[w];
        match ex.req {
            Req::Done => Step::Want(Want::Idle),
            Req::Head => self.write_head(w, ctx),
            Req::Body {
                waiting_continue, ..
            } => match ex.interest {
                Interest::Wait => Step::Want(Want::Idle),
                Interest::Remove => self.give_up(w, true, ctx),
                Interest::Write | Interest::ReadWrite if waiting_continue => Step::Want(Want::Idle),
                Interest::Write | Interest::ReadWrite => self.write_body(w, ctx),
                // Asked by the request side: the body is complete.
                Interest::Read | Interest::End if ex.writing => {
                    self.end_body(w, ctx);
                    Step::Progress
                }
                // Asked by the response side (`on_response` or after): the
                // handler moved on without finishing the body.
                Interest::Read | Interest::End => {
                    self.cut_body(w, ctx);
                    Step::Progress
                }
            },
        }
    }

    /// `on_request`: the head goes into the write buffer.
    fn write_head(&mut self, w: usize, ctx: &mut Ctx<'_>) -> Step {
        if self.wbuf.len() >= ctx.settings.write_high_water {
            return Step::Want(Want::Flush);
        }
        ctx.pool.attach_write(&mut self.wbuf);
        let start = self.wbuf.buf.len();
        let ex = &mut ctx.exchanges[w];
        let Exchange { handler, url, .. } = ex;
        let mut req = Request::new(
            &mut self.wbuf.buf,
            &mut ctx.scratch.method,
            &mut ctx.scratch.target,
            url,
            ctx.shared,
            w,
        );
        let Ok(next) = guard(|| handler.on_request(&mut req)) else {
            // Nothing of this request went out (its head is dropped), so the
            // connection is as it was: only this exchange ends.
            self.wbuf.buf.truncate(start);
            self.inflight.pop_back();
            exchange::end(ctx.exchanges, w, ctx.shared);
            return Step::Progress;
        };
        let body = matches!(next.interest, Interest::Write | Interest::ReadWrite);
        let finished = req.finish(body);
        ex.info = Info {
            is_head: finished.is_head,
            is_connect: finished.is_connect,
            idempotent: finished.idempotent,
            keep_alive: finished.keep_alive,
            upgrade: finished.upgrade,
        };
        ex.req = Req::Body {
            encoder: finished.encoder,
            waiting_continue: finished.expect_continue,
        };
        if finished.expect_continue {
            self.continue_due = after(ctx.now, ctx.settings.continue_timeout);
        }
        if !finished.keep_alive {
            self.reusable = false;
        }
        ex.writing = true;
        ex.apply(w, next, ctx.now, ctx.timers);
        self.last_io = ctx.now;
        if finished.is_connect {
            // A CONNECT has no body: its head is the whole request, and
            // what the handler asked for waits for the answer.
            self.request_over(w, ctx);
        }
        Step::Progress
    }

    /// `on_request_writable`.
    fn write_body(&mut self, w: usize, ctx: &mut Ctx<'_>) -> Step {
        if self.wbuf.len() >= ctx.settings.write_high_water {
            return Step::Want(Want::Flush);
        }
        ctx.pool.attach_write(&mut self.wbuf);
        let ex = &mut ctx.exchanges[w];
        let Req::Body { encoder, .. } = &mut ex.req else {
            unreachable!("write_body without a body");
        };
        let mut body = Encoder::new(encoder, &mut self.wbuf, ctx.settings.write_high_water);
        let handler = &mut ex.handler;
        let result = guard(|| {
            let next = handler.on_request_writable(&mut body);
            (next, body.accepted)
        });
        // Closes the chunk the callback wrote (even if it panicked).
        drop(body);
        let Ok((next, accepted)) = result else {
            return self.give_up(w, false, ctx);
        };
        ex.body_started = true;
        ex.writing = true;
        // Wrote nothing and asks to write on: whichever way it asks.
        let stuck = matches!(next.interest, Interest::Write | Interest::ReadWrite) && accepted == 0;
        ex.apply(w, next, ctx.now, ctx.timers);
        self.last_io = ctx.now;
        if stuck {
            // Wrote nothing yet asks to write: again next turn, not in a spin.
            Step::Want(Want::ReadOrYield)
        } else {
            Step::Progress
        }
    }

    /// The handler says the request is complete: the last chunk, if chunked.
    fn end_body(&mut self, w: usize, ctx: &mut Ctx<'_>) {
        ctx.pool.attach_write(&mut self.wbuf);
        let ex = &mut ctx.exchanges[w];
        let Req::Body { encoder, .. } = &mut ex.req else {
            return;
        };
        let finished = encoder.finish(&mut self.wbuf.buf).is_ok();
        let answered = !matches!(ex.res, Res::Head);
        if !finished && !answered {
            let err = Error::InvalidRequest("request body shorter than its Content-Length");
            self.fail(Cause::Exchange(w, Some(err)), ctx);
            return;
        }
        if !finished {
            // The server answered already; the rest of the body will never
            // be sent, so the connection cannot carry another request.
            self.reusable = false;
        }
        self.request_over(w, ctx);
    }

    /// The request body ends unfinished: the handler moved on to the
    /// response without completing it, gave up, or writing failed. No
    /// last chunk is written — the server must not take a cut-short body
    /// for a whole one — and unless all of a declared length went out,
    /// the server still waits for the rest, so the connection carries
    /// nothing more (it closes after the response).
    fn cut_body(&mut self, w: usize, ctx: &mut Ctx<'_>) {
        if let Req::Body { encoder, .. } = &ctx.exchanges[w].req {
            if encoder.remaining() != Some(0) {
                self.reusable = false;
            }
        }
        self.request_over(w, ctx);
    }

    /// Request `w` is over, whole or not: on to its response, which is due
    /// within the response timeout if it is the next to come.
    fn request_over(&mut self, w: usize, ctx: &mut Ctx<'_>) {
        let ex = &mut ctx.exchanges[w];
        ex.req = Req::Done;
        self.continue_due = None;
        if self.inflight.front() == Some(&w) && matches!(ex.res, Res::Head) {
            self.head_due = after(ctx.now, ctx.settings.response_timeout);
        }
    }

    // ---- the reader: the first exchange in flight ----

    fn step_read(&mut self, ctx: &mut Ctx<'_>) -> Step {
        if self.drain.is_some() {
            return self.step_drain(ctx);
        }
        let Some(&r) = self.inflight.front() else {
            return Step::Want(Want::Idle);
        };
        match ctx.exchanges[r].res {
            Res::Head => self.read_head(r, ctx),
            Res::Body { .. } => self.read_body(r, ctx),
            Res::Raw(_) => self.step_raw(r, ctx),
        }
    }

    /// Skips the unread rest of a finished response's body.
    fn step_drain(&mut self, ctx: &mut Ctx<'_>) -> Step {
        let Some((decoder, budget)) = &mut self.drain else {
            return Step::Progress;
        };
        let (taken, drained) = drain::step(decoder, budget, self.rbuf.data());
        self.rbuf.consume(taken);
        if taken > 0 {
            self.last_io = ctx.now;
        }
        match drained {
            Drained::Done => {
                self.drain = None;
                return Step::Progress;
            }
            Drained::More if !self.input_closed => return Step::Want(Want::Read),
            Drained::More | Drained::Failed => {}
        }
        // Malformed, too long, or cut short: the connection is done.
        self.drain = None;
        self.reusable = false;
        if self.inflight.is_empty() {
            self.set_phase(Phase::Closed, ctx);
        } else {
            self.fail(self.unserved_cause(), ctx);
        }
        Step::Progress
    }

    /// Parses the front exchange's response head; `on_response`.
    fn read_head(&mut self, r: usize, ctx: &mut Ctx<'_>) -> Step {
        if matches!(ctx.exchanges[r].req, Req::Head) {
            return Step::Want(Want::Idle);
        }
        if self.rbuf.is_empty() {
            if self.input_closed {
                self.fail(Cause::PeerClosed, ctx);
                return Step::Progress;
            }
            return Step::Want(Want::Read);
        }
        let s = ctx.settings;
        let mut fields = [MaybeUninit::uninit(); MAX_HEADERS];
        let fields = &mut fields[..s.max_headers];
        let (len, head) = match response_head::parse(self.rbuf.data_mut(), fields, s.max_head_size)
        {
            Ok(Some(parsed)) => parsed,
            Ok(None) if self.input_closed => {
                self.fail(Cause::PeerClosed, ctx);
                return Step::Progress;
            }
            Ok(None) => return Step::Want(Want::Read),
            Err(m) => {
                self.fail(Cause::Malformed(m), ctx);
                return Step::Progress;
            }
        };
        let ex = &mut ctx.exchanges[r];
        if head.is_interim() {
            let is_continue = head.status == 100;
            self.rbuf.consume(len);
            if let Req::Body {
                waiting_continue, ..
            } = &mut ex.req
            {
                if is_continue && *waiting_continue {
                    *waiting_continue = false;
                    self.continue_due = None;
                }
            }
            self.last_io = ctx.now;
            return Step::Progress;
        }
        if ex.interest == Interest::Wait {
            // Delivered when the handler is woken; the head stays buffered.
            return Step::Want(Want::Idle);
        }
        let asked = Asked {
            head: ex.info.is_head,
            connect: ex.info.is_connect,
        };
        let framing = match head.framing(asked) {
            Ok(framing) => framing,
            Err(m) => {
                self.fail(Cause::Malformed(m), ctx);
                return Step::Progress;
            }
        };
        // Raw mode: a 101 to a request with `Upgrade`, a 2xx to CONNECT.
        let raw = match head.status {
            101 if ex.info.upgrade => true,
            101 => {
                let m =
                    proto::Error::Malformed("101 Switching Protocols to a request without Upgrade");
                self.fail(Cause::Malformed(m), ctx);
                return Step::Progress;
            }
            200..=299 => ex.info.is_connect,
            _ => false,
        };
        if raw && !ex.req_done() {
            if !matches!(&ex.req, Req::Body { encoder, .. } if encoder.remaining() == Some(0)) {
                // What follows our head would be taken for the new
                // protocol's bytes.
                let m = proto::Error::Malformed(
                    "switched protocols before the request body was complete",
                );
                self.fail(Cause::Malformed(m), ctx);
                return Step::Progress;
            }
            // All of a declared length is out: the body is complete.
            ex.req = Req::Done;
        }
        if let Req::Body {
            waiting_continue: true,
            ..
        } = ex.req
        {
            // A final answer to `Expect: 100-continue`: the body is never
            // sent, and the server expects no more of this request.
            ex.req = Req::Done;
            self.reusable = false;
            self.continue_due = None;
        }
        if !framing.keep_alive || !ex.info.keep_alive {
            self.reusable = false;
        }
        self.server_closes |= !framing.keep_alive;
        if raw {
            self.reusable = false;
            self.left_pool = true;
        }
        // In raw mode the body is what the server sends until it closes.
        let body = if raw { BodyKind::Eof } else { framing.body };
        let handler = &mut ex.handler;
        let result = guard(|| handler.on_response(Response::new(&head, body, raw)));
        self.rbuf.consume(len);
        self.head_due = None;
        self.last_io = ctx.now;
        let Ok(next) = result else {
            self.fail(Cause::Exchange(r, None), ctx);
            return Step::Progress;
        };
        ex.res = if raw {
            Res::Raw(Raw::new())
        } else {
            Res::Body {
                decoder: framing.body.decoder(s.max_head_size),
                saw_end: false,
                error: None,
            }
        };
        ex.writing = false;
        ex.apply(r, next, ctx.now, ctx.timers);
        Step::Progress
    }

    /// `on_response_readable`, or the end of the exchange.
    fn read_body(&mut self, r: usize, ctx: &mut Ctx<'_>) -> Step {
        let ex = &ctx.exchanges[r];
        match ex.interest {
            Interest::Read | Interest::ReadWrite => {}
            Interest::Write if ex.req_done() => {}
            Interest::Write | Interest::Wait => return Step::Want(Want::Idle),
            Interest::Remove => return self.removed(r, ctx),
            Interest::End => {
                self.end_exchange(r, ctx);
                return Step::Progress;
            }
        }
        if !self.body_readable(r, ctx.exchanges) {
            let Res::Body { decoder, .. } = &ctx.exchanges[r].res else {
                unreachable!()
            };
            if decoder.is_done() {
                // The handler has seen the end and asks to read on: done.
                self.end_exchange(r, ctx);
                return Step::Progress;
            }
            return Step::Want(Want::Read);
        }
        let ex = &mut ctx.exchanges[r];
        let req_done = ex.req_done();
        let Res::Body {
            decoder,
            saw_end,
            error,
        } = &mut ex.res
        else {
            unreachable!()
        };
        let before = (self.rbuf.len(), decoder.clone());
        let mut body = Decoder::new(decoder, &mut self.rbuf, self.input_closed, error);
        let handler = &mut ex.handler;
        let Ok((next, ended)) = guard(|| {
            let next = handler.on_response_readable(&mut body);
            (next, body.ended)
        }) else {
            self.fail(Cause::Exchange(r, None), ctx);
            return Step::Progress;
        };
        // Only a `read` that returned the end tells the handler.
        *saw_end |= ended;
        // Read nothing and reading goes on, whichever way it asks: wait
        // for input rather than call it again at once.
        let reads_on = match next.interest {
            Interest::Read | Interest::ReadWrite => true,
            Interest::Write => req_done,
            Interest::Wait | Interest::End | Interest::Remove => false,
        };
        let stuck =
            reads_on && before == (self.rbuf.len(), decoder.clone()) && !ended && error.is_none();
        if let Some(m) = *error {
            self.fail(Cause::Malformed(m), ctx);
            return Step::Progress;
        }
        if self.input_closed && self.rbuf.is_empty() && !decoder.is_done() && !decoder.eof_reached()
        {
            // The body can never complete.
            self.fail(Cause::PeerClosed, ctx);
            return Step::Progress;
        }
        ex.writing = false;
        ex.apply(r, next, ctx.now, ctx.timers);
        self.last_io = ctx.now;
        if next.interest == Interest::Remove {
            return self.removed(r, ctx);
        }
        if stuck {
            // Read nothing yet asks to read: wait for more input.
            return Step::Want(Want::Read);
        }
        Step::Progress
    }

    // ---- raw mode: the front (and only) exchange after a switch ----

    /// Raw mode: `on_response_readable` with the server's bytes (first
    /// those that came after the head) and `on_request_writable` for ours,
    /// as the handler asks; our write side shut after `Next::end()` from
    /// the writable callback, the connection closed once the handler is
    /// done (`Next::end()` from anywhere else).
    fn step_raw(&mut self, r: usize, ctx: &mut Ctx<'_>) -> Step {
        let ex = &mut ctx.exchanges[r];
        let Res::Raw(raw) = &mut ex.res else {
            unreachable!("step_raw without raw mode")
        };
        if raw.done {
            // No callback follows, so no timeout of the handler's either.
            ex.deadline.set(None, Timer::Exchange(r), ctx.timers);
            if raw.out == RawOut::Open {
                raw.out = RawOut::Shutting;
            }
        }
        let reading = matches!(
            ex.interest,
            Interest::Read | Interest::Write | Interest::ReadWrite
        );
        if raw.out == RawOut::Shutting
            && ex.interest != Interest::Remove
            && (self.wbuf.is_empty() || raw.done || !reading)
        {
            // The loop writes what is buffered, shuts the write side and
            // calls `start_linger` (reading meanwhile only while the
            // handler reads: the reads run the machine again).
            return Step::Want(Want::Close);
        }
        if raw.done {
            // Our FIN is out: the connection closes.
            self.inflight.pop_front();
            exchange::end(ctx.exchanges, r, ctx.shared);
            self.set_phase(Phase::Closed, ctx);
            return Step::Progress;
        }
        match ex.interest {
            Interest::Remove => return self.removed(r, ctx),
            Interest::End => {
                raw.done = true;
                return Step::Progress;
            }
            Interest::Wait => return Step::Want(Want::Idle),
            Interest::Read | Interest::Write | Interest::ReadWrite => {}
        }
        let open = raw.out == RawOut::Open;
        let write = open && matches!(ex.interest, Interest::Write | Interest::ReadWrite);
        // Once our side is shut, asking to write is asking to read.
        let read = !open || matches!(ex.interest, Interest::Read | Interest::ReadWrite);
        let mut want = Want::Idle;
        if write {
            match self.raw_write(r, ctx) {
                Step::Progress => return Step::Progress,
                Step::Want(w) => want = w,
            }
        }
        if read {
            match self.raw_read(r, write, ctx) {
                Step::Progress => return Step::Progress,
                Step::Want(w) => want = stronger(want, w),
            }
        }
        Step::Want(want)
    }

    /// Raw mode: `on_request_writable`, the bytes written as they are.
    /// `Next::end()` from it shuts our write side; reading goes on.
    fn raw_write(&mut self, r: usize, ctx: &mut Ctx<'_>) -> Step {
        if self.wbuf.len() >= ctx.settings.write_high_water {
            return Step::Want(Want::Flush);
        }
        ctx.pool.attach_write(&mut self.wbuf);
        let ex = &mut ctx.exchanges[r];
        let Exchange { handler, res, .. } = ex;
        let Res::Raw(raw) = res else {
            unreachable!("raw_write without raw mode")
        };
        let mut body = Encoder::new(
            &mut raw.encoder,
            &mut self.wbuf,
            ctx.settings.write_high_water,
        );
        let result = guard(|| {
            let next = handler.on_request_writable(&mut body);
            (next, body.accepted)
        });
        drop(body);
        let Ok((mut next, accepted)) = result else {
            self.fail(Cause::Exchange(r, None), ctx);
            return Step::Progress;
        };
        if next.interest == Interest::End {
            // A half-close: our FIN once the bytes are out.
            raw.out = RawOut::Shutting;
            next.interest = Interest::Read;
        }
        let stuck = matches!(next.interest, Interest::Write | Interest::ReadWrite) && accepted == 0;
        ex.writing = false;
        ex.apply(r, next, ctx.now, ctx.timers);
        self.last_io = ctx.now;
        if stuck {
            // Wrote nothing yet asks to write: again next turn, not in a spin.
            Step::Want(Want::ReadOrYield)
        } else {
            Step::Progress
        }
    }

    /// Raw mode: `on_response_readable` when bytes or the server's FIN
    /// are there to see. `writing`: the handler also asked to write (an
    /// end it has seen then leaves it to the writer).
    fn raw_read(&mut self, r: usize, writing: bool, ctx: &mut Ctx<'_>) -> Step {
        let ex = &mut ctx.exchanges[r];
        let Exchange { handler, res, .. } = ex;
        let Res::Raw(raw) = res else {
            unreachable!("raw_read without raw mode")
        };
        let fresh = !self.rbuf.is_empty() || (self.input_closed && !raw.saw_end);
        if !fresh {
            if raw.saw_end {
                if writing {
                    return Step::Want(Want::Idle);
                }
                // It has seen the end and asks to read on: it is done.
                raw.done = true;
                return Step::Progress;
            }
            return Step::Want(Want::Read);
        }
        let before = self.rbuf.len();
        let mut error = None;
        let mut body = Decoder::new(
            &mut raw.decoder,
            &mut self.rbuf,
            self.input_closed,
            &mut error,
        );
        let result = guard(|| {
            let next = handler.on_response_readable(&mut body);
            (next, body.ended)
        });
        let Ok((next, ended)) = result else {
            self.fail(Cause::Exchange(r, None), ctx);
            return Step::Progress;
        };
        raw.saw_end |= ended;
        let reads_on = matches!(next.interest, Interest::Read | Interest::ReadWrite);
        let stuck = reads_on && before == self.rbuf.len() && !ended;
        ex.writing = false;
        ex.apply(r, next, ctx.now, ctx.timers);
        self.last_io = ctx.now;
        if next.interest == Interest::Remove {
            return self.removed(r, ctx);
        }
        if stuck {
            // Read nothing yet asks to read: wait for more input.
            return Step::Want(Want::Read);
        }
        Step::Progress
    }

    /// The loop has shut our write side down (after a [`Want::Close`]).
    fn write_shut(&mut self, ctx: &mut Ctx<'_>) {
        let front = self
            .inflight
            .front()
            .and_then(|&k| ctx.exchanges.get_mut(k));
        if let Some(Exchange {
            res: Res::Raw(raw), ..
        }) = front
        {
            raw.out = RawOut::Shut;
        }
    }

    /// Would `on_response_readable` see something new (bytes or the end)?
    fn body_readable(&mut self, r: usize, exchanges: &mut Slab<Exchange>) -> bool {
        let Res::Body {
            decoder,
            saw_end,
            error,
        } = &mut exchanges[r].res
        else {
            return false;
        };
        if error.is_some() {
            return false;
        }
        // Consume framing (chunk sizes) so that only body bytes count.
        match decoder.decode(self.rbuf.data(), 0) {
            Ok(step) => self.rbuf.consume(step.consumed),
            Err(e) => {
                *error = Some(e);
                return true;
            }
        }
        if decoder.is_done() {
            !*saw_end
        } else {
            !self.rbuf.is_empty() || self.input_closed
        }
    }

    /// The front exchange is over: keep-alive decision, drain what is
    /// left of its body, move on to the next one.
    fn end_exchange(&mut self, r: usize, ctx: &mut Ctx<'_>) {
        let ex = &ctx.exchanges[r];
        if !ex.req_done() {
            // Answered before its body was complete; the body is dropped.
            self.reusable = false;
        }
        if let Res::Body { decoder, .. } = &ex.res {
            if !decoder.is_done() && self.reusable {
                let budget = ctx.settings.max_drain;
                if drain::fits(decoder, budget) {
                    self.drain = Some((decoder.clone(), budget));
                } else {
                    self.reusable = false;
                }
            }
        }
        self.inflight.pop_front();
        exchange::end(ctx.exchanges, r, ctx.shared);
        self.reused = true;
        self.head_due = None;
        if !self.reusable {
            self.drain = None;
            if self.inflight.is_empty() {
                self.set_phase(Phase::Closed, ctx);
            } else {
                self.fail(self.unserved_cause(), ctx);
            }
            return;
        }
        if let Some(&next) = self.inflight.front() {
            if ctx.exchanges[next].req_done() {
                self.head_due = after(ctx.now, ctx.settings.response_timeout);
            }
        }
    }

    /// Exchange `k` returned `Next::remove()`.
    fn removed(&mut self, k: usize, ctx: &mut Ctx<'_>) -> Step {
        self.remover = Some(k);
        self.fail(Cause::Exchange(k, None), ctx);
        Step::Want(Want::Remove)
    }

    /// Exchange `k` gives up: it asked for `Next::remove()` (`remove`),
    /// panicked, or ended while its response is still to come. At the
    /// front it takes the connection with it (its response, or the rest
    /// of it, is still on the way; with `remove` it gets the socket).
    /// Behind others — pipelined — it must not cost them their responses:
    /// it is detached instead, and the connection goes on.
    fn give_up(&mut self, k: usize, remove: bool, ctx: &mut Ctx<'_>) -> Step {
        if self.h2.is_some() {
            return self.h2_give_up(k, ctx);
        }
        if self.inflight.front() == Some(&k) {
            if remove {
                return self.removed(k, ctx);
            }
            self.fail(Cause::Exchange(k, None), ctx);
            return Step::Progress;
        }
        if matches!(ctx.exchanges[k].req, Req::Head) {
            // Nothing of it went out: it simply leaves.
            self.inflight.retain(|&x| x != k);
            exchange::end(ctx.exchanges, k, ctx.shared);
            return Step::Progress;
        }
        if !ctx.exchanges[k].req_done() {
            self.cut_body(k, ctx);
        }
        // Its response will still come, in its turn: read and thrown away.
        ctx.exchanges[k].detach(k, ctx.shared, ctx.timers);
        Step::Progress
    }

    /// Follows what exchange `k`'s handler asked outside its callbacks'
    /// turn — from `on_error(Timeout)` or a wake-up (`None`: it
    /// panicked). With the request complete and the response head still
    /// to come, `Next::end()` cannot mean "the body is complete": the
    /// handler gives up the exchange, and gets no other callback.
    fn follow(&mut self, k: usize, next: Option<Next>, ctx: &mut Ctx<'_>) {
        let ex = &mut ctx.exchanges[k];
        let awaiting_head = ex.req_done() && matches!(ex.res, Res::Head);
        // A wake-up that came early is taken by `wait()`: it is followed
        // here as if it came now (an `end()` or `remove()` gives up).
        let next = match next {
            Some(n) if n.interest == Interest::Wait => ex.early_wake.take().or(Some(n)),
            other => other,
        };
        match next {
            None => {
                self.give_up(k, false, ctx);
            }
            Some(next) if next.interest == Interest::Remove => {
                self.give_up(k, true, ctx);
            }
            Some(next) if next.interest == Interest::End && awaiting_head => {
                self.give_up(k, false, ctx);
            }
            Some(next) => ex.apply(k, next, ctx.now, ctx.timers),
        }
    }

    // ---- events from the loop ----

    /// The deadline of the current phase passed (connecting is the loop's
    /// business).
    pub(crate) fn on_deadline(&mut self, ctx: &mut Ctx<'_>) {
        let now = ctx.now;
        if self.h2.is_some() {
            return self.h2_on_deadline(ctx);
        }
        match self.phase {
            Phase::Connecting | Phase::Closed => {}
            Phase::Idle => self.set_phase(Phase::Closed, ctx),
            Phase::Handshake => self.fail(Cause::ResponseTimeout, ctx),
            Phase::Active => {
                if self.continue_due.is_some_and(|at| at <= now) {
                    // No `100 Continue` in time: send the body anyway.
                    self.continue_due = None;
                    if let Some(&w) = self.inflight.back() {
                        if let Req::Body {
                            waiting_continue, ..
                        } = &mut ctx.exchanges[w].req
                        {
                            *waiting_continue = false;
                        }
                    }
                } else if self.head_due.is_some_and(|at| at <= now) {
                    self.fail(Cause::ResponseTimeout, ctx);
                } else if self.io_due(ctx).is_some_and(|at| at <= now) {
                    self.fail(Cause::ReadTimeout, ctx);
                }
                if self.phase == Phase::Active {
                    self.arm(ctx);
                }
            }
        }
    }

    /// The timeout of exchange `k`'s own `Next` passed.
    pub(crate) fn on_handler_timeout(&mut self, k: usize, ctx: &mut Ctx<'_>) {
        let Some(ex) = ctx.exchanges.get_mut(k) else {
            return;
        };
        let next = ex.tell(Error::Timeout);
        self.follow(k, next, ctx);
    }

    /// A `Control::ready` for exchange `k`, which is on this connection.
    pub(crate) fn on_wake(&mut self, k: usize, next: Next, ctx: &mut Ctx<'_>) {
        let Some(ex) = ctx.exchanges.get_mut(k) else {
            return;
        };
        if ex.interest == Interest::Wait {
            self.follow(k, Some(next), ctx);
        } else {
            // Kept for when it asks to wait.
            ex.early_wake = Some(next);
        }
    }

    /// Reading or writing failed: the connection is over.
    pub(crate) fn on_io_error(&mut self, err: io::Error, ctx: &mut Ctx<'_>) {
        #[cfg(feature = "__tls")]
        if err.get_ref().is_some_and(|e| e.is::<rustls::Error>()) {
            // A certificate or handshake failure: told as it is.
            return self.fail(Cause::Io(Some(err)), ctx);
        }
        let cause = match err.kind() {
            io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::UnexpectedEof => Cause::PeerClosed,
            _ => Cause::Io(Some(err)),
        };
        self.fail(cause, ctx);
    }

    /// Writing failed (the server stopped reading, or reset): nothing more
    /// is sent, and what was waiting to go is dropped. The request being
    /// written is over — its handler is not asked to write again — and
    /// the responses are read on, since the server's answer may be
    /// waiting; whether it is or the connection ends is what the
    /// exchanges learn. One whose request is cut short and whose response
    /// then does not complete is told `err`.
    pub(crate) fn on_write_error(&mut self, err: io::Error, ctx: &mut Ctx<'_>) {
        let front = self.inflight.front().and_then(|&k| ctx.exchanges.get(k));
        if self.h2.is_some() || front.is_some_and(|ex| matches!(ex.res, Res::Raw(_))) {
            // Raw mode: no answer is on its way that reading could save;
            // the handler learns why its bytes cannot go.
            return self.fail(Cause::Io(Some(err)), ctx);
        }
        self.output_closed = true;
        self.reusable = false;
        self.wbuf.clear();
        self.continue_due = None;
        let Some(&w) = self.inflight.back() else {
            return;
        };
        match ctx.exchanges[w].req {
            Req::Done => {}
            Req::Head => {
                // Its head was never written: another connection takes it.
                self.inflight.pop_back();
                let ex = &mut ctx.exchanges[w];
                if ex.retries < MAX_RETRIES {
                    ex.reset_for_retry(w, ctx.timers);
                    ctx.requeue.push(w);
                } else {
                    exchange::fail(ctx.exchanges, w, Error::Io(err), ctx.shared);
                }
            }
            Req::Body { .. } => {
                self.cut_body(w, ctx);
                self.cut = Some((w, err));
            }
        }
    }

    /// Why the requests behind the front end with the connection: the
    /// server said it closes (they were not served), or we gave up.
    fn unserved_cause(&self) -> Cause {
        if self.server_closes {
            Cause::NotServed
        } else {
            Cause::Abandoned
        }
    }

    /// Ends the connection: every exchange still on it is sent again on
    /// another connection if that is safe, else told why it failed.
    pub(crate) fn fail(&mut self, mut cause: Cause, ctx: &mut Ctx<'_>) {
        if self.h2.is_some() {
            return self.h2_fail(cause, ctx);
        }
        if self.phase == Phase::Handshake {
            self.handshake_error = Some(match &mut cause {
                Cause::Io(e @ Some(_)) => Error::from_io(e.take().expect("some")),
                Cause::ResponseTimeout | Cause::ReadTimeout => Error::ConnectTimeout,
                _ => Error::Handshake("the server closed the connection".into()),
            });
        }
        let not_served = matches!(cause, Cause::NotServed);
        let abandoned = matches!(cause, Cause::Abandoned);
        let mut first = true;
        while let Some(k) = self.inflight.pop_front() {
            let is_front = std::mem::replace(&mut first, false);
            if self.remover == Some(k) {
                continue;
            }
            if let Cause::Exchange(culprit, err) = &mut cause {
                if *culprit == k {
                    match err.take() {
                        Some(err) => exchange::fail(ctx.exchanges, k, err, ctx.shared),
                        None => exchange::end(ctx.exchanges, k, ctx.shared),
                    }
                    continue;
                }
            }
            let Some(ex) = ctx.exchanges.get_mut(k) else {
                continue;
            };
            if ex.detached {
                // Nobody waits for its response any more.
                exchange::end(ctx.exchanges, k, ctx.shared);
                continue;
            }
            let unanswered = matches!(ex.res, Res::Head);
            let raw = matches!(ex.res, Res::Raw(_));
            let never_sent = matches!(ex.req, Req::Head);
            let retry = if is_front && !not_served && !abandoned {
                // The front got nothing: a reused connection the server
                // closed just as we sent (its keep-alive timeout).
                matches!(cause, Cause::PeerClosed)
                    && unanswered
                    && self.reused
                    && self.rbuf.is_empty()
                    && ex.info.idempotent
                    && !ex.body_started
                    && ex.retries == 0
            } else {
                // Behind the front: never answered.
                unanswered
                    && !ex.body_started
                    && ex.retries < MAX_RETRIES
                    && (never_sent || ex.info.idempotent || not_served)
            };
            if retry {
                ex.reset_for_retry(k, ctx.timers);
                ctx.requeue.push(k);
                continue;
            }
            let cut = self.cut.take_if(|(c, _)| *c == k).map(|(_, e)| e);
            let err = if let Some(e) = cut {
                // Its request was cut short by this error, and its
                // response did not complete.
                Error::Io(e)
            } else if is_front && !not_served && !abandoned {
                match &mut cause {
                    Cause::PeerClosed if unanswered || raw => Error::Closed,
                    Cause::PeerClosed => Error::Incomplete,
                    Cause::Io(e) => e.take().map_or(Error::Closed, Error::from_io),
                    Cause::Malformed(m) => Error::Malformed(m.reason()),
                    Cause::ResponseTimeout => Error::ResponseTimeout,
                    Cause::ReadTimeout => Error::ReadTimeout,
                    Cause::NotServed => Error::Closed,
                    Cause::H2(code) => Error::Http2(*code),
                    Cause::Abandoned | Cause::Exchange(..) => Error::Aborted,
                }
            } else {
                // Behind the front: `Closed` only if the server ended the
                // connection; if we did, the front's failure is why.
                match &cause {
                    Cause::NotServed | Cause::PeerClosed | Cause::Io(_) => Error::Closed,
                    Cause::Malformed(_)
                    | Cause::H2(_)
                    | Cause::ResponseTimeout
                    | Cause::ReadTimeout
                    | Cause::Abandoned
                    | Cause::Exchange(..) => Error::Aborted,
                }
            };
            exchange::fail(ctx.exchanges, k, err, ctx.shared);
        }
        self.drain = None;
        self.reusable = false;
        self.set_phase(Phase::Closed, ctx);
    }
}

/// The transitions, driven with plain bytes and no sockets.
impl<'a> Machine<Ctx<'a>> for Conn {
    fn bufs(&mut self) -> Bufs<'_> {
        Bufs {
            rbuf: &mut self.rbuf,
            wbuf: &mut self.wbuf,
            input_closed: &mut self.input_closed,
        }
    }

    fn pool<'c>(ctx: &'c mut Ctx<'a>) -> &'c mut BufPool {
        ctx.pool
    }

    fn advance(&mut self, ctx: &mut Ctx<'a>) -> Want {
        Conn::advance(self, ctx)
    }

    fn on_read(&mut self, ctx: &mut Ctx<'a>) {
        self.last_io = ctx.now;
    }

    fn on_written(&mut self, ctx: &mut Ctx<'a>) -> bool {
        self.last_io = ctx.now;
        self.on_sent(ctx);
        if let Some(h2) = &mut self.h2 {
            if self.wbuf.is_empty() {
                // Acks are out: the engine reads PING and SETTINGS again.
                h2.engine.flushed();
            }
        }
        // The reader and the writer share the connection: a writer held
        // back by the high-water mark may go on now, even if the reader
        // finds nothing to read.
        self.wbuf.len() < ctx.settings.write_high_water
    }

    fn on_write_error(&mut self, err: io::Error, ctx: &mut Ctx<'a>) -> Option<io::Error> {
        // The server stopped reading; its answer may still be on its way:
        // the machine stops the request being written and reads on.
        Conn::on_write_error(self, err, ctx);
        None
    }

    fn output_closed(&self) -> bool {
        Conn::output_closed(self)
    }

    fn on_io_error(&mut self, err: io::Error, ctx: &mut Ctx<'a>) {
        Conn::on_io_error(self, err, ctx);
    }

    fn is_connecting(&self) -> bool {
        Conn::is_connecting(self)
    }

    fn start_linger(&mut self, ctx: &mut Ctx<'a>) {
        // Only raw mode asks for `Want::Close`: a half-close, not a linger.
        self.write_shut(ctx);
    }

    #[cfg(feature = "__tls")]
    fn on_tls(&mut self, info: Box<crate::tls::TlsInfo>) {
        if self.phase == Phase::Handshake {
            self.alpn_h2 = Some(info.alpn() == Some(crate::tls::ALPN_H2));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::handler::Boxed;
    use crate::client::url::Url;
    use crate::client::{Handler, Response};
    use crate::control::Lease;
    use crate::Next;
    use std::io::{Read, Write};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    /// What a test handler saw.
    #[derive(Default, Debug)]
    struct Seen {
        status: Option<u16>,
        body: Vec<u8>,
        error: Option<String>,
        requests: usize,
    }

    /// GETs (or sends `body` with `method`), reads the whole response.
    struct Get {
        seen: Arc<Mutex<Seen>>,
        method: &'static str,
        body: &'static [u8],
        expect: bool,
    }

    impl Handler for Get {
        fn on_request(&mut self, req: &mut crate::client::Request<'_>) -> Next {
            self.seen.lock().unwrap().requests += 1;
            req.set_method(self.method);
            if self.body.is_empty() {
                return Next::read();
            }
            req.set_content_length(self.body.len() as u64);
            if self.expect {
                req.expect_continue();
            }
            Next::write()
        }

        fn on_request_writable(&mut self, body: &mut Encoder<'_>) -> Next {
            body.write_all(self.body).unwrap();
            Next::read()
        }

        fn on_response(&mut self, res: Response<'_>) -> Next {
            self.seen.lock().unwrap().status = Some(res.status());
            Next::read()
        }

        fn on_response_readable(&mut self, body: &mut Decoder<'_>) -> Next {
            let mut buf = [0; 64];
            loop {
                match body.read(&mut buf) {
                    Ok(0) => return Next::end(),
                    Ok(n) => self.seen.lock().unwrap().body.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Next::read(),
                    Err(_) => return Next::read(),
                }
            }
        }

        fn on_error(&mut self, err: Error) -> Next {
            self.seen.lock().unwrap().error = Some(err.to_string());
            Next::remove()
        }
    }

    /// A connection and everything its loop would lend it.
    struct Driver {
        _poll: mio::Poll,
        settings: Settings,
        exchanges: Slab<Exchange>,
        pool: BufPool,
        timers: Timers<Timer>,
        scratch: Scratch,
        requeue: Vec<usize>,
        now: Instant,
        conn: Conn,
        /// Everything the client wrote.
        output: Vec<u8>,
        /// Last, so that it is given back after the connection is dropped.
        lease: Lease,
    }

    impl Driver {
        fn new(settings: Settings) -> Driver {
            let poll = mio::Poll::new().unwrap();
            let waker = mio::Waker::new(poll.registry(), mio::Token(0)).unwrap();
            let lease = Lease::take(waker, 16);
            let mut timers = Timers::default();
            let now = Instant::now();
            let conn = Conn::new(0, 0, &settings, &mut timers, now);
            let mut d = Driver {
                _poll: poll,
                lease,
                pool: BufPool::new(settings.max_head_size, 1 << 20, 4),
                settings,
                exchanges: Slab::new(),
                timers,
                scratch: Scratch::default(),
                requeue: Vec::new(),
                now,
                conn,
                output: Vec::new(),
            };
            d.with(|conn, ctx| conn.connected(false, false, ctx));
            d
        }

        fn with<R>(&mut self, f: impl FnOnce(&mut Conn, &mut Ctx<'_>) -> R) -> R {
            let mut ctx = Ctx {
                exchanges: &mut self.exchanges,
                shared: self.lease.shared(),
                settings: &self.settings,
                pool: &mut self.pool,
                timers: &mut self.timers,
                scratch: &mut self.scratch,
                now: self.now,
                requeue: &mut self.requeue,
            };
            f(&mut self.conn, &mut ctx)
        }

        /// Submits a handler and starts it on the connection.
        fn request(&mut self, handler: Get) -> usize {
            let url = Url::parse("http://h/p").unwrap();
            let boxed: Box<dyn Boxed> = Box::new(handler);
            let k = self.exchanges.insert(Exchange::new(boxed, url, 0));
            self.with(|conn, ctx| conn.start(k, ctx));
            self.run();
            k
        }

        /// Advances until the connection needs input; collects output.
        fn run(&mut self) -> Want {
            loop {
                let want = self.with(|conn, ctx| conn.advance(ctx));
                let pending = self.conn.wbuf.pending().to_vec();
                self.output.extend_from_slice(&pending);
                self.conn.wbuf.advance(pending.len());
                if want != Want::Flush && want != Want::ReadOrYield {
                    return want;
                }
            }
        }

        fn feed(&mut self, bytes: &[u8]) -> Want {
            self.pool.attach_read(&mut self.conn.rbuf);
            let spare = self.conn.rbuf.spare();
            spare[..bytes.len()].copy_from_slice(bytes);
            self.conn.rbuf.filled(bytes.len());
            self.run()
        }

        fn close_input(&mut self) -> Want {
            self.conn.input_closed = true;
            self.run()
        }

        fn fire_deadline(&mut self, after: Duration) -> Want {
            self.now += after;
            self.with(|conn, ctx| conn.on_deadline(ctx));
            self.run()
        }
    }

    fn get(seen: &Arc<Mutex<Seen>>) -> Get {
        Get {
            seen: Arc::clone(seen),
            method: "GET",
            body: b"",
            expect: false,
        }
    }

    fn output(d: &Driver) -> &str {
        std::str::from_utf8(&d.output).unwrap()
    }

    mod exchange {
        use super::*;

        #[test]
        fn request_then_response_split_at_every_byte_then_idle() {
            let response = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
            for split in 1..response.len() {
                let mut d = Driver::new(Settings::default());
                let seen = Arc::default();
                d.request(get(&seen));
                assert_eq!(output(&d), "GET /p HTTP/1.1\r\nHost: h\r\n\r\n");
                for piece in response.chunks(split) {
                    d.feed(piece);
                }
                let seen = seen.lock().unwrap();
                assert_eq!(seen.status, Some(200), "split {split}");
                assert_eq!(seen.body, b"abcde", "split {split}");
                assert!(d.conn.is_idle(), "split {split}");
                assert!(d.exchanges.is_empty());
            }
        }

        #[test]
        fn close_delimited_body_ends_at_eof_and_closes() {
            let mut d = Driver::new(Settings::default());
            let seen = Arc::default();
            d.request(get(&seen));
            d.feed(b"HTTP/1.0 200 OK\r\n\r\nhello ");
            d.feed(b"world");
            assert!(seen.lock().unwrap().status.is_some());
            assert_eq!(d.close_input(), Want::Remove);
            let seen = seen.lock().unwrap();
            assert_eq!(seen.body, b"hello world");
            assert_eq!(seen.error, None);
        }

        #[test]
        fn head_response_has_no_body_whatever_its_length() {
            let mut d = Driver::new(Settings::default());
            let seen = Arc::default();
            d.request(Get {
                method: "HEAD",
                ..get(&seen)
            });
            d.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n");
            assert!(d.conn.is_idle());
            assert_eq!(seen.lock().unwrap().status, Some(200));
        }

        #[test]
        fn interim_responses_are_skipped() {
            let mut d = Driver::new(Settings::default());
            let seen = Arc::default();
            d.request(get(&seen));
            d.feed(
                b"HTTP/1.1 103 Early Hints\r\nLink: </s>\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
            );
            assert_eq!(seen.lock().unwrap().status, Some(204));
            assert!(d.conn.is_idle());
        }

        #[test]
        fn unread_body_is_drained_then_the_connection_is_idle() {
            struct Ignore;
            impl Handler for Ignore {
                fn on_response(&mut self, _: Response<'_>) -> Next {
                    Next::end()
                }
            }
            let mut d = Driver::new(Settings::default());
            let url = Url::parse("http://h/").unwrap();
            let k = d.exchanges.insert(Exchange::new(Box::new(Ignore), url, 0));
            d.with(|c, ctx| c.start(k, ctx));
            d.run();
            assert_eq!(
                d.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n12345"),
                Want::Read
            );
            assert!(!d.conn.is_idle());
            d.feed(b"67890");
            assert!(d.conn.is_idle());
        }
    }

    mod expect {
        use super::*;

        fn put(seen: &Arc<Mutex<Seen>>) -> Get {
            Get {
                method: "PUT",
                body: b"data",
                expect: true,
                ..get(seen)
            }
        }

        #[test]
        fn body_waits_for_100_continue() {
            let mut d = Driver::new(Settings::default());
            let seen = Arc::default();
            d.request(put(&seen));
            assert!(output(&d).ends_with("Expect: 100-continue\r\n\r\n"));
            d.feed(b"HTTP/1.1 100 Continue\r\n\r\n");
            assert!(output(&d).ends_with("\r\n\r\ndata"));
            d.feed(b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n");
            assert_eq!(seen.lock().unwrap().status, Some(201));
            assert!(d.conn.is_idle());
        }

        #[test]
        fn body_goes_anyway_after_the_continue_timeout() {
            let mut d = Driver::new(Settings::default());
            let seen = Arc::default();
            d.request(put(&seen));
            assert!(!output(&d).ends_with("data"));
            d.fire_deadline(Duration::from_secs(2));
            assert!(output(&d).ends_with("\r\n\r\ndata"));
        }

        #[test]
        fn final_answer_instead_of_100_skips_the_body_and_closes() {
            let mut d = Driver::new(Settings::default());
            let seen = Arc::default();
            d.request(put(&seen));
            let want = d.feed(b"HTTP/1.1 417 Expectation Failed\r\nContent-Length: 0\r\n\r\n");
            assert_eq!(want, Want::Remove);
            assert!(!output(&d).ends_with("data"));
            assert_eq!(seen.lock().unwrap().status, Some(417));
        }
    }

    mod failure {
        use super::*;

        #[test]
        fn malformed_head_is_an_error_and_closes() {
            let mut d = Driver::new(Settings::default());
            let seen = Arc::default();
            d.request(get(&seen));
            assert_eq!(d.feed(b"HTTP/1.1 2x0 OK\r\n\r\n"), Want::Remove);
            let err = seen.lock().unwrap().error.clone().unwrap();
            assert!(err.starts_with("malformed response"), "{err}");
        }

        #[test]
        fn cut_short_body_is_incomplete() {
            let mut d = Driver::new(Settings::default());
            let seen = Arc::default();
            d.request(get(&seen));
            d.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");
            assert_eq!(d.close_input(), Want::Remove);
            assert_eq!(
                seen.lock().unwrap().error.as_deref(),
                Some(Error::Incomplete.to_string().as_str())
            );
        }

        #[test]
        fn response_timeout() {
            let mut d = Driver::new(Settings::default());
            let seen = Arc::default();
            d.request(get(&seen));
            assert_eq!(d.fire_deadline(Duration::from_secs(31)), Want::Remove);
            assert_eq!(
                seen.lock().unwrap().error.as_deref(),
                Some(Error::ResponseTimeout.to_string().as_str())
            );
        }

        #[test]
        fn response_timeout_counts_from_the_last_byte_sent() {
            let mut d = Driver::new(Settings::default());
            let timeout = d.settings.response_timeout;
            let seen = Arc::default();
            d.request(get(&seen));
            // A slow server: the last request bytes leave the buffer later.
            d.now += timeout * 2 / 3;
            d.with(|conn, ctx| conn.on_sent(ctx));
            // Past the timeout since the request was written, not since sent.
            assert_ne!(d.fire_deadline(timeout * 2 / 3), Want::Remove);
            assert_eq!(seen.lock().unwrap().error, None);
            assert_eq!(
                d.fire_deadline(timeout / 3 + Duration::from_secs(1)),
                Want::Remove
            );
            assert_eq!(
                seen.lock().unwrap().error.as_deref(),
                Some(Error::ResponseTimeout.to_string().as_str())
            );
        }

        #[test]
        fn close_on_a_reused_connection_retries_an_idempotent_request() {
            let mut d = Driver::new(Settings::default());
            let first = Arc::default();
            d.request(get(&first));
            d.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
            assert!(d.conn.is_idle());
            let second = Arc::default();
            let k = d.request(get(&second));
            assert_eq!(d.close_input(), Want::Remove);
            assert_eq!(d.requeue, [k]);
            assert_eq!(second.lock().unwrap().error, None);
        }

        #[test]
        fn close_on_a_fresh_connection_is_an_error() {
            let mut d = Driver::new(Settings::default());
            let seen = Arc::default();
            d.request(get(&seen));
            assert_eq!(d.close_input(), Want::Remove);
            assert!(d.requeue.is_empty());
            assert_eq!(
                seen.lock().unwrap().error.as_deref(),
                Some(Error::Closed.to_string().as_str())
            );
        }
    }

    /// Raw mode after a switch, without sockets: the bytes after the
    /// head at every split, CONNECT framing, the write side's shutdown.
    mod raw {
        use super::*;

        /// Upgrades (or CONNECTs), writes `send` after the switch and
        /// half-closes, reads to the server's FIN.
        struct Switch {
            seen: Arc<Mutex<Seen>>,
            connect: bool,
            send: &'static [u8],
        }

        impl Handler for Switch {
            fn on_request(&mut self, req: &mut crate::client::Request<'_>) -> Next {
                if self.connect {
                    req.set_method("CONNECT").set_target("h:1");
                    // Asking for a body changes nothing for a CONNECT.
                    return Next::write();
                }
                req.set_method("POST").header("Upgrade", "x");
                Next::read()
            }

            fn on_response(&mut self, res: Response<'_>) -> Next {
                assert!(res.upgraded());
                self.seen.lock().unwrap().status = Some(res.status());
                Next::read_and_write()
            }

            fn on_request_writable(&mut self, body: &mut Encoder<'_>) -> Next {
                body.write_all(self.send).unwrap();
                Next::end()
            }

            fn on_response_readable(&mut self, body: &mut Decoder<'_>) -> Next {
                let mut buf = [0; 64];
                loop {
                    match body.read(&mut buf) {
                        Ok(0) => return Next::end(),
                        Ok(n) => self.seen.lock().unwrap().body.extend_from_slice(&buf[..n]),
                        Err(_) => return Next::read(),
                    }
                }
            }

            fn on_error(&mut self, err: Error) -> Next {
                self.seen.lock().unwrap().error = Some(err.to_string());
                Next::end()
            }
        }

        fn start(d: &mut Driver, handler: Switch) -> Want {
            let url = Url::parse("http://h/p").unwrap();
            let k = d.exchanges.insert(Exchange::new(Box::new(handler), url, 0));
            d.with(|conn, ctx| conn.start(k, ctx));
            d.run()
        }

        /// The loop shuts the write side when asked. `want` came with our
        /// bytes still buffered: the loop, having written them, runs the
        /// machine again first.
        fn shut(d: &mut Driver, want: Want) -> Want {
            let want = if want == Want::Read { d.run() } else { want };
            assert_eq!(want, Want::Close);
            d.with(|conn, ctx| Machine::start_linger(conn, ctx));
            d.run()
        }

        #[test]
        fn the_bytes_after_the_101_head_are_read_first_at_every_split() {
            let response = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\nEARLY bytes";
            for split in 1..response.len() {
                let mut d = Driver::new(Settings::default());
                let seen = Arc::default();
                let switch = Switch {
                    seen: Arc::clone(&seen),
                    connect: false,
                    send: b"ours",
                };
                start(&mut d, switch);
                // No framing field on an upgrade without a body, POST or not.
                assert_eq!(
                    output(&d),
                    "POST /p HTTP/1.1\r\nHost: h\r\nUpgrade: x\r\n\r\n"
                );
                let mut want = Want::Read;
                for piece in response.chunks(split) {
                    want = d.feed(piece);
                }
                // Our bytes went out raw; the half-close is asked for.
                assert!(output(&d).ends_with("\r\n\r\nours"), "split {split}");
                let want = shut(&mut d, want);
                assert_eq!(want, Want::Read, "split {split}");
                assert_eq!(seen.lock().unwrap().body, b"EARLY bytes", "split {split}");
                // The server's FIN ends the read side, and the exchange.
                assert_eq!(d.close_input(), Want::Remove, "split {split}");
                assert!(d.exchanges.is_empty());
                assert_eq!(seen.lock().unwrap().error, None);
            }
        }

        #[test]
        fn a_connect_has_no_framing_and_its_2xx_body_fields_are_ignored() {
            let mut d = Driver::new(Settings::default());
            let seen = Arc::default();
            let switch = Switch {
                seen: Arc::clone(&seen),
                connect: true,
                send: b"",
            };
            start(&mut d, switch);
            assert_eq!(output(&d), "CONNECT h:1 HTTP/1.1\r\nHost: h:1\r\n\r\n");
            // RFC 9110 §9.3.6: a client ignores them in a 2xx to CONNECT.
            let want = d.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\ntunnelled");
            assert_eq!(seen.lock().unwrap().status, Some(200));
            assert_eq!(shut(&mut d, want), Want::Read);
            assert_eq!(seen.lock().unwrap().body, b"tunnelled");
            assert_eq!(d.close_input(), Want::Remove);
            assert!(!d.conn.can_pipeline(&d.exchanges, &d.settings));
        }
    }

    mod pipelining {
        use super::*;

        #[test]
        fn responses_are_matched_in_order_and_close_requeues_the_rest() {
            let settings = Settings {
                max_pipelined: 4,
                ..Settings::default()
            };
            let mut d = Driver::new(settings);
            let seen: Vec<Arc<Mutex<Seen>>> = (0..3).map(|_| Arc::default()).collect();
            let mut keys = Vec::new();
            for s in &seen {
                keys.push(d.request(get(s)));
                assert!(d.conn.can_pipeline(&d.exchanges, &d.settings));
            }
            assert_eq!(output(&d).matches("GET /p").count(), 3);
            d.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\naHTTP/1.1 201 OK\r\nContent-Length: 1\r\nConnection: close\r\n\r\nb");
            assert_eq!(seen[0].lock().unwrap().body, b"a");
            assert_eq!(seen[1].lock().unwrap().body, b"b");
            assert_eq!(seen[1].lock().unwrap().status, Some(201));
            // The third was never answered: it goes to another connection.
            assert_eq!(d.requeue, [keys[2]]);
            assert!(d.conn.is_closed());
        }
    }

    /// Exchanges cut short, without sockets: an upload ended by an early
    /// answer or a write error, a pipelined exchange giving up or timing
    /// out, `Next::end()` from `on_error`.
    mod cut_short {
        use super::*;

        /// Writes one chunk of a chunked body, then nothing more while
        /// asking to write on; `on_response` answers `after_head`,
        /// `on_error` `on_error`.
        struct Partial {
            seen: Arc<Mutex<Seen>>,
            after_head: Next,
            on_error: Next,
            wrote: bool,
        }

        impl Handler for Partial {
            fn on_request(&mut self, req: &mut crate::client::Request<'_>) -> Next {
                req.set_method("POST");
                Next::write()
            }

            fn on_request_writable(&mut self, body: &mut Encoder<'_>) -> Next {
                if !std::mem::replace(&mut self.wrote, true) {
                    body.write_all(b"abc").unwrap();
                }
                Next::write()
            }

            fn on_response(&mut self, res: Response<'_>) -> Next {
                self.seen.lock().unwrap().status = Some(res.status());
                self.after_head
            }

            fn on_response_readable(&mut self, body: &mut Decoder<'_>) -> Next {
                let mut buf = [0; 64];
                match body.read(&mut buf) {
                    Ok(0) => Next::end(),
                    Ok(n) => {
                        self.seen.lock().unwrap().body.extend_from_slice(&buf[..n]);
                        Next::read()
                    }
                    Err(_) => Next::read(),
                }
            }

            fn on_error(&mut self, err: Error) -> Next {
                self.seen.lock().unwrap().error = Some(err.to_string());
                self.on_error
            }
        }

        fn partial(seen: &Arc<Mutex<Seen>>, after_head: Next) -> Partial {
            Partial {
                seen: Arc::clone(seen),
                after_head,
                on_error: Next::remove(),
                wrote: false,
            }
        }

        /// Starts `handler` and advances once: the request head and what
        /// the handler writes go out (a writer that then writes nothing
        /// would make [`Driver::run`] spin).
        fn start(d: &mut Driver, handler: impl Handler) -> (usize, Want) {
            let url = Url::parse("http://h/p").unwrap();
            let k = d.exchanges.insert(Exchange::new(Box::new(handler), url, 0));
            d.with(|conn, ctx| conn.start(k, ctx));
            let want = d.with(|conn, ctx| conn.advance(ctx));
            let pending = d.conn.wbuf.pending().to_vec();
            d.output.extend_from_slice(&pending);
            d.conn.wbuf.advance(pending.len());
            (k, want)
        }

        #[test]
        fn moving_on_from_an_early_answer_cuts_the_body_without_a_last_chunk() {
            for after_head in [Next::read(), Next::end()] {
                let mut d = Driver::new(Settings::default());
                let seen = Arc::default();
                assert_eq!(
                    start(&mut d, partial(&seen, after_head)).1,
                    Want::ReadOrYield
                );
                assert!(output(&d).ends_with("\r\n\r\n00003\r\nabc\r\n"));
                let want = d.feed(b"HTTP/1.1 413 Too Large\r\nContent-Length: 2\r\n\r\nno");
                assert_eq!(seen.lock().unwrap().status, Some(413));
                assert!(!output(&d).contains("0\r\n\r\n"), "{}", output(&d));
                // The server still waits for the rest: never reused.
                assert_eq!(want, Want::Remove);
                assert!(d.exchanges.is_empty());
                assert_eq!(seen.lock().unwrap().error, None);
            }
        }

        #[test]
        fn the_request_side_ending_the_body_still_writes_the_last_chunk() {
            struct Duplex(Arc<Mutex<Seen>>);
            impl Handler for Duplex {
                fn on_request(&mut self, _: &mut crate::client::Request<'_>) -> Next {
                    Next::write()
                }
                fn on_request_writable(&mut self, body: &mut Encoder<'_>) -> Next {
                    let mut seen = self.0.lock().unwrap();
                    if seen.status.is_some() {
                        return Next::read();
                    }
                    if seen.requests == 0 {
                        seen.requests = 1;
                        body.write_all(b"abc").unwrap();
                    }
                    Next::write()
                }
                fn on_response(&mut self, res: Response<'_>) -> Next {
                    self.0.lock().unwrap().status = Some(res.status());
                    // Full duplex: finish the body, then read.
                    Next::write()
                }
            }
            let mut d = Driver::new(Settings::default());
            let seen = Arc::default();
            assert_eq!(
                start(&mut d, Duplex(Arc::clone(&seen))).1,
                Want::ReadOrYield
            );
            d.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
            assert!(output(&d).ends_with("00003\r\nabc\r\n0\r\n\r\n"));
            assert!(d.conn.is_idle());
        }

        #[test]
        fn a_write_error_stops_the_writer_and_the_response_is_still_read() {
            let mut d = Driver::new(Settings::default());
            let seen = Arc::default();
            let (k, _) = start(&mut d, partial(&seen, Next::write()));
            let err = io::Error::from(io::ErrorKind::BrokenPipe);
            d.with(|conn, ctx| conn.on_write_error(err, ctx));
            assert!(d.exchanges[k].req_done());
            // The handler asked to write on; it is read instead.
            assert_eq!(
                d.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
                Want::Remove
            );
            let seen = seen.lock().unwrap();
            assert_eq!((seen.status, seen.body.as_slice()), (Some(200), &b"ok"[..]));
            assert_eq!(seen.error, None);
        }

        #[test]
        fn a_write_error_is_what_an_incomplete_response_is_failed_with() {
            let mut d = Driver::new(Settings::default());
            let seen = Arc::default();
            start(&mut d, partial(&seen, Next::write()));
            let err = io::Error::new(io::ErrorKind::BrokenPipe, "the write failed");
            d.with(|conn, ctx| conn.on_write_error(err, ctx));
            d.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nok");
            assert_eq!(d.close_input(), Want::Remove);
            let error = seen.lock().unwrap().error.clone().unwrap();
            assert!(error.contains("the write failed"), "{error}");
        }

        fn pipelined() -> (Driver, Vec<Arc<Mutex<Seen>>>, Vec<usize>) {
            let settings = Settings {
                max_pipelined: 2,
                ..Settings::default()
            };
            let mut d = Driver::new(settings);
            let seen: Vec<Arc<Mutex<Seen>>> = (0..2).map(|_| Arc::default()).collect();
            let keys = seen.iter().map(|s| d.request(get(s))).collect();
            assert_eq!(output(&d).matches("GET /p").count(), 2);
            (d, seen, keys)
        }

        #[test]
        fn a_pipelined_exchange_giving_up_is_detached_and_its_response_skipped() {
            let (mut d, seen, keys) = pipelined();
            // The second's own timeout; its `on_error` asks for remove.
            d.with(|conn, ctx| conn.on_handler_timeout(keys[1], ctx));
            assert_eq!(
                seen[1].lock().unwrap().error.as_deref(),
                Some(Error::Timeout.to_string().as_str())
            );
            d.run();
            assert!(!d.conn.is_closed());
            d.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na");
            assert_eq!(seen[0].lock().unwrap().body, b"a");
            assert_eq!(seen[0].lock().unwrap().error, None);
            d.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nb");
            // Skipped: no callback, and the connection is reusable.
            assert_eq!(seen[1].lock().unwrap().status, None);
            assert!(d.conn.is_idle());
            assert!(d.exchanges.is_empty());
        }

        #[test]
        fn the_front_timing_out_fails_a_post_behind_as_aborted_and_resends_a_get() {
            for (method, body) in [("POST", &b"x"[..]), ("GET", b"")] {
                let settings = Settings {
                    max_pipelined: 2,
                    ..Settings::default()
                };
                let mut d = Driver::new(settings);
                let (front, behind) = (Arc::default(), Arc::default());
                d.request(get(&front));
                let k = d.request(Get {
                    method,
                    body,
                    ..get(&behind)
                });
                assert_eq!(d.fire_deadline(Duration::from_secs(31)), Want::Remove);
                assert_eq!(
                    front.lock().unwrap().error.as_deref(),
                    Some(Error::ResponseTimeout.to_string().as_str())
                );
                if method == "POST" {
                    // We closed the connection, not the server.
                    assert_eq!(
                        behind.lock().unwrap().error.as_deref(),
                        Some(Error::Aborted.to_string().as_str())
                    );
                    assert!(d.requeue.is_empty());
                } else {
                    assert_eq!(behind.lock().unwrap().error, None);
                    assert_eq!(d.requeue, [k]);
                }
            }
        }

        #[test]
        fn end_from_on_error_while_awaiting_the_head_ends_the_exchange() {
            let mut d = Driver::new(Settings::default());
            let seen = Arc::default();
            let handler = Partial {
                on_error: Next::end(),
                ..partial(&seen, Next::read())
            };
            struct NoBody(Partial);
            impl Handler for NoBody {
                fn on_request(&mut self, _: &mut crate::client::Request<'_>) -> Next {
                    Next::read()
                }
                fn on_response(&mut self, res: Response<'_>) -> Next {
                    self.0.on_response(res)
                }
                fn on_error(&mut self, err: Error) -> Next {
                    self.0.on_error(err)
                }
            }
            let (k, _) = start(&mut d, NoBody(handler));
            d.with(|conn, ctx| conn.on_handler_timeout(k, ctx));
            assert_eq!(d.run(), Want::Remove);
            assert!(d.exchanges.is_empty());
            d.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
            assert_eq!(seen.lock().unwrap().status, None);
        }
    }
}
