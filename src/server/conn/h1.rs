//! One connection: its buffers, its deadline and the exchange state
//! machine. No socket I/O happens here — the event loop reads into `rbuf`,
//! writes out of `wbuf`, and asks [`Conn::advance`] what to do next — so
//! the whole machine can be driven by tests and fuzzers with plain bytes.
//!
//! Every change of [`Phase`] goes through [`Conn::set_phase`], which also
//! sets the deadline that belongs to the new phase.

use std::cell::Cell;
use std::mem::MaybeUninit;
use std::time::Instant;

use crate::control::Shared;
use crate::error::{Error, ParseError};
use crate::next::Interest;
use crate::proto::date::DateCache;
use crate::proto::h1::decode::BodyDecoder;
use crate::proto::h1::drain::{self, Drained};
use crate::proto::h1::encode::BodyEncoder;
use crate::proto::h1::request::{self as head, Limits, Scan};
use crate::proto::h1::response::status_line;
use crate::proto::h1::Switch;
use crate::proto::status::reason;
use crate::proto::{self, Version};
use crate::rt::buf::{BufPool, ReadBuf, WriteBuf};
use crate::rt::guard::guard;
use crate::rt::machine::Bufs;
use crate::rt::timer::{after, Deadline, Timers};
use crate::rt::Machine;
pub(crate) use crate::rt::Want;
use crate::server::response::ResponseContext;
use crate::server::{Addrs, Handler, HandlerFactory, Request, Response, Settings};
use crate::{Decoder, Encoder, Next};

/// Upper bound of the `max_headers` setting: the parser's field array
/// lives on the stack.
pub(crate) const MAX_HEADERS: usize = 128;
/// `on_response_writable` calls per connection per loop turn, at most;
/// then the others get their turn.
const WRITES_PER_TURN: usize = 64;

/// Everything a connection borrows from its loop while it runs.
pub(crate) struct Ctx<'a, F> {
    pub factory: &'a mut F,
    pub shared: &'static Shared,
    pub settings: &'a Settings,
    pub date: &'a DateCache,
    pub pool: &'a mut BufPool,
    pub timers: &'a mut Timers,
    pub clock: &'a Clock,
    pub shutting_down: bool,
    /// The loop's exchange slots (slot -> connection key): an HTTP/2
    /// connection takes one per stream.
    pub exchanges: &'a mut slab::Slab<usize>,
    /// The loop's HTTP/2 header scratch (made at the first HTTP/2
    /// connection).
    pub h2_scratch: &'a mut Option<Box<crate::proto::h2::Scratch>>,
}

/// The time of this loop turn, and the deadlines the fixed timeouts give
/// from it: computed once per turn, not once per request.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Clock {
    pub now: Instant,
    io: Option<Instant>,
    keep_alive: Option<Instant>,
    head: Option<Instant>,
    linger: Option<Instant>,
}

impl Clock {
    pub(crate) fn new(now: Instant, settings: &Settings) -> Clock {
        Clock {
            now,
            io: after(now, settings.io_timeout),
            keep_alive: after(now, settings.keep_alive_timeout),
            head: after(now, settings.head_timeout),
            linger: after(now, settings.linger_timeout),
        }
    }
}

enum Phase<H> {
    /// Waiting for a request head. `started`: some of it has arrived and
    /// the head timeout runs; otherwise the connection is idle. `scan`: how
    /// far its lines have been checked.
    Head { started: bool, scan: Scan },
    /// A handler owns the connection.
    Exchange(Exchange<H>),
    /// The response is done; skipping the rest of an unread request body.
    Drain { decoder: BodyDecoder, budget: u64 },
    /// Write what is buffered, then shut down the write side.
    Closing,
    /// Write side shut down; discarding input until the peer closes, so it
    /// reads our last response instead of a reset (RFC 9112 §9.6).
    Lingering,
}

struct Exchange<H> {
    handler: H,
    interest: Interest,
    /// When the timeout of the handler's last `Next` expires.
    timeout: Option<Instant>,
    /// A `Control::ready` that came before the handler asked to wait.
    early_wake: Option<Next>,
    decoder: BodyDecoder,
    /// The handler has been called with the body already complete.
    saw_body_end: bool,
    /// The handler has asked to read the body at some point.
    asked_to_read: bool,
    body_error: Option<proto::Error>,
    /// Body bytes the body may still bring (`max_body_size`; `u64::MAX`:
    /// no limit).
    budget: u64,
    /// `None` until `on_response` has produced the head.
    encoder: Option<BodyEncoder>,
    version: Version,
    keep_alive: bool,
    is_head: bool,
    expect: Expect,
    /// What the request may switch to (raw mode once a head that takes it
    /// up is written: the encoder is then `BodyEncoder::Raw`).
    switch: Option<Switch>,
    /// `Response::notify_sent`: `on_response_sent` is owed.
    notify_sent: bool,
    /// Everything written must go out before the exchange goes on.
    drain: Option<Drain>,
    /// The head switched the exchange to raw bytes (its encoder is
    /// `BodyEncoder::Raw`, its decoder `BodyDecoder::raw()`).
    raw: bool,
    /// Raw mode: our write side is shut (after `Next::end()`).
    write_shut: bool,
    /// Raw mode: a wake-up asked to read; `on_request_readable` is called
    /// once even with nothing new to read (the handler may hold bytes of
    /// its own to pass on: a tunnel whose upstream was full).
    poked: bool,
}

/// Why an exchange waits for its output to be written out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Drain {
    /// The response is over and `on_response_sent` is owed.
    Ended,
    /// Raw mode, `Next::end()`: then shut the write side.
    ShutWrite,
}

impl<H> Exchange<H> {
    /// Has the exchange switched to raw bytes (upgrade, tunnel)?
    fn is_raw(&self) -> bool {
        self.raw
    }

    /// May the connection stay open after this exchange, as far as the
    /// request, the server and the body allow? `will_read`: the handler
    /// has just asked to read the body.
    fn may_keep_alive<F>(&self, will_read: bool, ctx: &Ctx<'_, F>) -> bool {
        let body_pending = !self.decoder.is_done();
        let will_read = will_read || self.asked_to_read;
        self.keep_alive
            && !ctx.shutting_down
            // A client told nothing about its body may still send it.
            && !(body_pending && self.expect == Expect::Pending && !will_read)
            // A body the handler shows no sign of reading, too long to drain.
            && !(body_pending && !will_read && !drain::fits(&self.decoder, ctx.settings.max_drain))
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Expect {
    None,
    /// `Expect: 100-continue`, no `100 Continue` sent yet.
    Pending,
    Sent,
}

/// What the connection's deadline is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Timer {
    /// The phase's own: keep-alive, head, linger.
    Phase,
    /// No byte moved for `io_timeout`; restarted by progress.
    Stall,
    /// The timeout of the handler's `Next` (or none while it waits).
    Handler,
}

/// One connection.
pub(crate) struct Conn<H> {
    pub key: usize,
    /// The exchange slot its `Control`s address (one for the connection's
    /// life; each exchange is a new generation of it).
    pub slot: usize,
    pub rbuf: ReadBuf,
    pub wbuf: WriteBuf,
    pub deadline: Deadline,
    /// The peer will send nothing more (FIN seen).
    pub input_closed: bool,
    /// Requests served since the loop last started running this connection.
    served: usize,
    /// `on_response_writable` calls since then.
    writes: usize,
    /// No request has begun yet and the HTTP/2 preface may still come
    /// (cleartext, HTTP/2 on): `conn/mod.rs` looks before this parses.
    pub may_be_h2: bool,
    phase: Phase<H>,
    timer: Timer,
    pub addrs: Addrs,
    /// What the TLS handshake settled (`None` in clear, or until then).
    #[cfg(feature = "__tls")]
    pub tls: Option<Box<crate::tls::TlsInfo>>,
}

/// What a `Next` means in raw mode, where each direction ends on its own:
/// `end()` shuts our write side (once what is written is out) and reading
/// goes on, until an `end()` after the client's FIN has been read ends the
/// exchange; once shut, asking to write is asking to read.
fn raw_interest<H>(ex: &mut Exchange<H>, interest: Interest) -> Interest {
    match interest {
        Interest::End if ex.saw_body_end || ex.write_shut || ex.drain.is_some() => Interest::End,
        Interest::End => {
            ex.drain = Some(Drain::ShutWrite);
            Interest::Read
        }
        // (While the write side is being shut, nothing but that.)
        Interest::Write | Interest::ReadWrite | Interest::Wait if ex.drain.is_some() => {
            Interest::Read
        }
        Interest::Write | Interest::ReadWrite if ex.write_shut => Interest::Read,
        other => other,
    }
}

/// Drops a handler, containing a panic in its `Drop`.
fn drop_handler<H>(handler: H) {
    let _ = guard(move || drop(handler));
}

impl<H: Handler> Conn<H> {
    /// A new connection; `secure`: a TLS handshake comes first, under the
    /// head timeout (as if its head had begun).
    pub(crate) fn new(
        key: usize,
        slot: usize,
        addrs: Addrs,
        secure: bool,
        timers: &mut Timers,
        clock: &Clock,
    ) -> Self {
        let mut conn = Conn {
            key,
            slot,
            rbuf: ReadBuf::default(),
            wbuf: WriteBuf::default(),
            deadline: Deadline::default(),
            input_closed: false,
            served: 0,
            writes: 0,
            may_be_h2: false,
            phase: Phase::Head {
                started: secure,
                scan: Scan::default(),
            },
            timer: Timer::Phase,
            addrs,
            #[cfg(feature = "__tls")]
            tls: None,
        };
        let deadline = if secure { clock.head } else { clock.keep_alive };
        conn.deadline.set(deadline, key, timers);
        conn
    }

    /// Is the connection idle between requests (nothing buffered, no handler)?
    /// A TLS connection that has not given a byte of a request yet is (its
    /// head is `started` only for the head timeout; a handshake is no
    /// request that a shutdown should wait for).
    pub(crate) fn is_idle(&self) -> bool {
        matches!(self.phase, Phase::Head { .. }) && self.rbuf.is_empty() && self.wbuf.is_empty()
    }

    /// The connection is being dropped: ends the exchange, if any, and
    /// hands its handler over for `on_remove`.
    ///
    /// (The read buffer keeps what no exchange consumed: the handler gets
    /// those bytes with the connection.)
    pub(crate) fn remove(&mut self, shared: &Shared) -> Option<H> {
        match std::mem::replace(&mut self.phase, Phase::Closing) {
            Phase::Exchange(ex) => {
                shared.retire(self.slot);
                Some(ex.handler)
            }
            _ => None,
        }
    }

    /// The one place phases change; arms the deadline of the new phase.
    fn set_phase<F>(&mut self, phase: Phase<H>, ctx: &mut Ctx<'_, F>) {
        self.phase = phase;
        self.arm(ctx);
    }

    /// Sets the deadline the connection runs under now:
    /// - in an exchange, the handler's own `Next` timeout (a wait without
    ///   one has the io timeout, see `apply`; none after `wait_forever`);
    ///   without one, the stall timer while it reads or writes;
    /// - otherwise, while output is still pending, the stall timer: the
    ///   phase's own timer (keep-alive, head, linger) starts only once
    ///   everything is written, so a slow reader never has a response cut
    ///   or a pipelined request answered 408 behind it.
    fn arm<F>(&mut self, ctx: &mut Ctx<'_, F>) {
        let c = ctx.clock;
        let (timer, deadline) = match &self.phase {
            Phase::Exchange(ex) => match ex.timeout {
                Some(at) => (Timer::Handler, Some(at)),
                None if ex.interest == Interest::Wait => (Timer::Handler, None),
                None => (Timer::Stall, c.io),
            },
            _ if !self.wbuf.is_empty() => (Timer::Stall, c.io),
            Phase::Head { started: false, .. } => (Timer::Phase, c.keep_alive),
            Phase::Head { started: true, .. } | Phase::Drain { .. } => (Timer::Phase, c.head),
            Phase::Closing | Phase::Lingering => (Timer::Phase, c.linger),
        };
        self.timer = timer;
        self.deadline.set(deadline, self.key, ctx.timers);
    }

    /// Bytes were written: a stall timer starts over (and once the output
    /// has drained, the phase's own timer takes over).
    pub(crate) fn on_written<F>(&mut self, ctx: &mut Ctx<'_, F>) {
        if self.timer == Timer::Stall {
            self.arm(ctx);
        }
    }

    /// Bytes were read: progress of an exchange (its body). Between
    /// exchanges the stall timer guards output the client is not taking,
    /// and what it sends must not keep that alive (nor put off the head
    /// timeout that way).
    pub(crate) fn on_read<F>(&mut self, ctx: &mut Ctx<'_, F>) {
        if matches!(self.phase, Phase::Exchange(_)) {
            self.on_written(ctx);
        }
    }

    /// Runs the connection as far as buffered input and output room allow.
    pub(crate) fn advance<F: HandlerFactory<Output = H>>(&mut self, ctx: &mut Ctx<'_, F>) -> Want {
        loop {
            let want = match self.phase {
                Phase::Head { started, .. } => self.step_head(started, ctx),
                Phase::Exchange(_) => self.step_exchange(ctx),
                Phase::Drain { .. } => self.step_drain(ctx),
                Phase::Closing => Some(Want::Close),
                Phase::Lingering => Some(Want::Discard),
            };
            if let Some(want) = want {
                return want;
            }
        }
    }

    /// The loop starts running this connection: a new share of requests
    /// and body writes.
    pub(crate) fn start_turn(&mut self) {
        self.served = 0;
        self.writes = 0;
    }

    fn step_head<F: HandlerFactory<Output = H>>(
        &mut self,
        started: bool,
        ctx: &mut Ctx<'_, F>,
    ) -> Option<Want> {
        if self.served >= ctx.settings.max_pipelined {
            return Some(Want::Yield);
        }
        if self.wbuf.len() >= ctx.settings.write_high_water {
            return Some(Want::Flush);
        }
        if !started {
            // Empty lines before a request line are ignored (RFC 9112
            // §2.2); they leave the connection idle, its deadline as it was.
            let blank = head::empty_lines(self.rbuf.data());
            if blank > 0 {
                self.rbuf.consume(blank);
            }
        }
        // (A CR alone may be the first half of one more empty line.)
        if self.rbuf.is_empty() || !started && !head::starts_request(self.rbuf.data()) {
            if self.input_closed || ctx.shutting_down {
                self.set_phase(Phase::Closing, ctx);
                return None;
            }
            return Some(Want::Read);
        }
        if !started {
            self.set_phase(
                Phase::Head {
                    started: true,
                    scan: Scan::default(),
                },
                ctx,
            );
        }
        let limits = Limits {
            max_head: ctx.settings.max_head_size,
        };
        let mut fields = [MaybeUninit::uninit(); MAX_HEADERS];
        let fields = &mut fields[..ctx.settings.max_headers];
        let Phase::Head { scan, .. } = &mut self.phase else {
            unreachable!("step_head outside a head")
        };
        let (len, head) = match scan.parse(self.rbuf.data(), fields, limits) {
            Ok(Some(parsed)) => parsed,
            Ok(None) if self.input_closed => {
                // A partial head and the peer has gone: nobody to answer.
                self.rbuf.consume(self.rbuf.len());
                self.set_phase(Phase::Closing, ctx);
                return None;
            }
            Ok(None) => return Some(Want::Read),
            Err(e) => {
                self.fail(e.into(), ctx);
                return None;
            }
        };
        let (framing, version) = (head.framing, head.version);
        let (is_head, expect_continue) = (head.is_head, head.expect_continue);
        let switch = Switch::of(head.method, head.target, head.upgrade, framing.body);
        let control = ctx.shared.control(self.slot);
        let factory = &mut *ctx.factory;
        let addrs = &self.addrs;
        let limit = Cell::new(ctx.settings.max_body_size);
        #[cfg(feature = "__tls")]
        let tls = self.tls.as_deref();
        let result = guard(|| {
            let mut handler = factory.create(control);
            let req = Request::new(&head, addrs, &limit);
            #[cfg(feature = "__tls")]
            let req = req.with_tls(tls);
            let next = handler.on_request(req);
            (handler, next)
        });
        self.rbuf.consume(len);
        let Ok((handler, next)) = result else {
            self.retire(ctx);
            self.fail_status(500, "handler panicked", is_head, ctx);
            return None;
        };
        let decoder = framing.body.decoder(ctx.settings.max_head_size);
        let expect = if expect_continue && !decoder.is_done() {
            Expect::Pending
        } else {
            Expect::None
        };
        let ex = Exchange {
            handler,
            interest: Interest::Wait,
            timeout: None,
            early_wake: None,
            decoder,
            saw_body_end: false,
            asked_to_read: false,
            body_error: None,
            // (A declared length over the limit never gets this far.)
            budget: limit.get().unwrap_or(u64::MAX),
            encoder: None,
            version,
            keep_alive: framing.keep_alive,
            is_head,
            expect,
            switch,
            notify_sent: false,
            drain: None,
            raw: false,
            write_shut: false,
            poked: false,
        };
        self.set_phase(Phase::Exchange(ex), ctx);
        if let Some(max) = limit.get() {
            if framing.body.length().is_some_and(|n| n > max) && next.interest != Interest::Remove {
                // Refused before a byte of it is read (and before any `100`).
                self.body_failed(proto::Error::BodyTooLarge, ctx);
                return None;
            }
        }
        self.apply(next, ctx);
        None
    }

    /// Follows a handler's `Next`: records the interest and its timeout.
    #[inline]
    fn apply<F>(&mut self, next: Next, ctx: &mut Ctx<'_, F>) {
        if matches!(&self.phase, Phase::Exchange(ex) if ex.raw) {
            // Out of line, so the HTTP path saves no registers for it.
            return self.apply_raw(next, ctx);
        }
        self.apply_http(next, ctx);
    }

    /// [`apply`](Self::apply) in raw mode: what the `Next` means there
    /// first (see [`raw_interest`]).
    #[cold]
    #[inline(never)]
    fn apply_raw<F>(&mut self, mut next: Next, ctx: &mut Ctx<'_, F>) {
        if let Phase::Exchange(ex) = &mut self.phase {
            next.interest = raw_interest(ex, next.interest);
        }
        self.apply_http(next, ctx);
    }

    #[inline(always)]
    fn apply_http<F>(&mut self, mut next: Next, ctx: &mut Ctx<'_, F>) {
        let Phase::Exchange(ex) = &mut self.phase else {
            return;
        };
        if ex.encoder == Some(BodyEncoder::Suppressed)
            && matches!(next.interest, Interest::Write | Interest::Wait)
        {
            // The head was all of it (HEAD, 204, 304): nothing written or
            // waited for can change the response, and the requests behind
            // it must not wait (an event stream parks for ever).
            next = Next::end();
        }
        ex.interest = next.interest;
        ex.asked_to_read |= matches!(next.interest, Interest::Read | Interest::ReadWrite);
        if next.interest == Interest::Wait {
            if let Some(early) = ex.early_wake.take() {
                self.apply(early, ctx);
                return self.poke();
            }
        }
        let timeout = match next.timeout {
            Some(d) => after(ctx.clock.now, d),
            // A wait of no deadline of its own runs under the io timeout: a
            // waker that panicked or dropped its `Control` must not hang the
            // client for ever (`Next::wait_forever` opts out).
            None if next.interest == Interest::Wait => ctx.clock.io,
            None => None,
        };
        // Still transferring under the stall timer, with no timeout of its
        // own: the running stall deadline stands (a handler's return is
        // not I/O progress), so there is nothing to re-arm.
        // (Not once it has fired: then it is re-armed for another round.)
        let unchanged = timeout.is_none()
            && ex.timeout.is_none()
            && next.interest != Interest::Wait
            && self.timer == Timer::Stall
            && self.deadline.at.is_some();
        ex.timeout = timeout;
        if !unchanged {
            self.arm(ctx);
        }
    }

    fn step_exchange<F: HandlerFactory<Output = H>>(
        &mut self,
        ctx: &mut Ctx<'_, F>,
    ) -> Option<Want> {
        let Phase::Exchange(ex) = &mut self.phase else {
            unreachable!("step_exchange outside an exchange");
        };
        let interest = ex.interest;
        let head_written = ex.encoder.is_some();
        match interest {
            // Responses already finished go out first (RFC 9112 §9.3.2:
            // in order, none lost), under the stall timer.
            Interest::Remove => Some(Want::FlushRemove),
            Interest::Wait => Some(Want::Idle),
            Interest::End if head_written => {
                if ex.notify_sent || ex.drain.is_some() {
                    return self.end_when_sent();
                }
                self.end_exchange(ctx);
                None
            }
            // Body writes that never fill the buffer (a body suppressed for
            // HEAD, a client reading as fast as we write) would otherwise
            // keep the loop here.
            Interest::Write | Interest::ReadWrite
                if head_written && self.writes >= WRITES_PER_TURN =>
            {
                Some(Want::Yield)
            }
            // Raw mode, `Next::end()`: written out and shut first.
            Interest::Read if ex.drain.is_some() => Some(Want::Drain),
            Interest::Read => self.step_read(ctx),
            Interest::Write | Interest::End => self.step_write(ctx),
            Interest::ReadWrite => {
                if self.body_readable() {
                    match self.step_read(ctx) {
                        // Read nothing: try the write side, if still wanted.
                        Some(Want::Read) if self.interest() == Some(Interest::ReadWrite) => {}
                        want => return want,
                    }
                }
                self.send_continue_if_owed(ctx);
                match self.step_write(ctx) {
                    // Nothing to write either: wait for input.
                    Some(Want::Yield) => Some(Want::Read),
                    want => want,
                }
            }
        }
    }

    /// `Next::end()` of a response whose handler is to be told when it is
    /// sent: the last bytes (a last chunk) go into the buffer now, and the
    /// exchange ends once they are written (`on_drained`).
    #[cold]
    fn end_when_sent(&mut self) -> Option<Want> {
        let Phase::Exchange(ex) = &mut self.phase else {
            unreachable!()
        };
        if ex.drain.is_none() {
            if let Some(encoder) = &mut ex.encoder {
                if encoder.finish(&mut self.wbuf.buf).is_err() {
                    ex.keep_alive = false;
                }
            }
            ex.drain = Some(Drain::Ended);
        }
        Some(Want::Drain)
    }

    /// What the current handler last asked for.
    fn interest(&self) -> Option<Interest> {
        match &self.phase {
            Phase::Exchange(ex) => Some(ex.interest),
            _ => None,
        }
    }

    /// Would `on_request_readable` see something new (bytes or the end)?
    /// (Or, in raw mode, was it woken to read?)
    fn body_readable(&mut self) -> bool {
        let Phase::Exchange(ex) = &mut self.phase else {
            return false;
        };
        if ex.poked {
            return true;
        }
        if ex.body_error.is_some() {
            return false;
        }
        // Consume framing (chunk sizes) so that only body bytes count.
        match ex.decoder.decode(self.rbuf.data(), 0) {
            Ok(step) => self.rbuf.consume(step.consumed),
            Err(e) => {
                ex.body_error = Some(e);
                return true;
            }
        }
        if ex.decoder.is_done() {
            !ex.saw_body_end
        } else {
            !self.rbuf.is_empty() || self.input_closed
        }
    }

    /// Sends `100 Continue` if the client is waiting for it before sending
    /// its body, and the handler now wants that body.
    fn send_continue_if_owed<F>(&mut self, ctx: &mut Ctx<'_, F>) {
        let Phase::Exchange(ex) = &mut self.phase else {
            return;
        };
        if ex.expect == Expect::Pending && ex.encoder.is_none() && !ex.decoder.is_done() {
            ex.expect = Expect::Sent;
            ctx.pool.attach_write(&mut self.wbuf);
            self.wbuf
                .buf
                .extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
        }
    }

    /// The handler wants the body. `Some(Want::Read)` when nothing could
    /// be read: wait for input (the handler read nothing of what is there,
    /// or nothing is there yet).
    fn step_read<F: HandlerFactory<Output = H>>(&mut self, ctx: &mut Ctx<'_, F>) -> Option<Want> {
        if !self.body_readable() {
            let Phase::Exchange(ex) = &mut self.phase else {
                unreachable!()
            };
            if ex.decoder.is_done() {
                if ex.encoder.is_none() {
                    // The handler has seen the end; asking to read again
                    // means it is ready to answer.
                    ex.interest = Interest::Write;
                    return None;
                }
                // Answering, and asks for a body that is over: nothing
                // will come; park until a wake-up or its deadline.
                return Some(Want::Idle);
            }
            self.send_continue_if_owed(ctx);
            return Some(Want::Read);
        }
        let Phase::Exchange(ex) = &mut self.phase else {
            unreachable!()
        };
        // Called even when the framing is already known to be malformed:
        // `read` reports it, so the handler learns of it the same way
        // however the bytes were split.
        ex.poked = false;
        let before = (self.rbuf.len(), ex.decoder.clone());
        let mut body = Decoder::new(
            &mut ex.decoder,
            &mut self.rbuf,
            self.input_closed,
            &mut ex.body_error,
        );
        body.budget = Some(&mut ex.budget);
        let handler = &mut ex.handler;
        let Ok((next, ended)) = guard(|| {
            let next = handler.on_request_readable(&mut body);
            (next, body.ended)
        }) else {
            self.handler_panicked(ctx);
            return None;
        };
        // Only a `read` that returned the end tells the handler: a handler
        // that read the last bytes into a full buffer has not been told.
        ex.saw_body_end |= ended;
        let stuck = matches!(next.interest, Interest::Read | Interest::ReadWrite)
            && before == (self.rbuf.len(), ex.decoder.clone())
            && !ended
            && ex.body_error.is_none();
        self.apply(next, ctx);
        let Phase::Exchange(ex) = &mut self.phase else {
            return None;
        };
        // A malformed body (400) or one over the limit (413) is the
        // server's to answer if no head went out, whatever the handler
        // asked for after `read` told it.
        let malformed = ex.body_error.is_some();
        if !malformed && next.interest == Interest::Remove {
            // The handler's choice stands, whatever state its body is in.
            return None;
        }
        if !malformed
            && self.input_closed
            && self.rbuf.is_empty()
            && !ex.decoder.is_done()
            && !ex.decoder.is_raw()
        {
            // The body can never complete, whatever the handler asks next.
            ex.body_error = Some(proto::Error::Truncated);
        }
        if let Some(e) = ex.body_error {
            self.body_failed(e, ctx);
            return None;
        }
        // Read nothing yet asks to read: wait for more input.
        stuck.then_some(Want::Read)
    }

    fn step_write<F: HandlerFactory<Output = H>>(&mut self, ctx: &mut Ctx<'_, F>) -> Option<Want> {
        if self.wbuf.len() >= ctx.settings.write_high_water {
            return Some(Want::Flush);
        }
        ctx.pool.attach_write(&mut self.wbuf);
        let Phase::Exchange(ex) = &mut self.phase else {
            unreachable!()
        };
        let Some(encoder) = &mut ex.encoder else {
            // The head: on_response, then the server's fields and framing.
            let start = self.wbuf.buf.len();
            let exchange = ResponseContext {
                version: ex.version,
                // As if the handler will not start reading now; `finish`
                // redoes the fields in the rare case it does.
                keep_alive: ex.may_keep_alive(false, ctx),
                head: ex.is_head,
                date: ctx.date,
                switch: ex.switch,
            };
            let mut res = Response::new(&mut self.wbuf.buf, exchange);
            let handler = &mut ex.handler;
            let result = guard(|| {
                let next = handler.on_response(&mut res);
                if next.interest == Interest::End {
                    res.ended_without_body();
                }
                next
            });
            let Ok(next) = result else {
                self.wbuf.buf.truncate(start);
                self.handler_panicked(ctx);
                return None;
            };
            let will_read = matches!(next.interest, Interest::Read | Interest::ReadWrite);
            let finished = res.finish(ex.may_keep_alive(will_read, ctx));
            ex.keep_alive = finished.keep_alive;
            ex.encoder = Some(finished.encoder);
            ex.notify_sent = finished.notify_sent;
            if finished.encoder == BodyEncoder::Raw {
                // Raw mode: what the client sends from here on (what is
                // buffered behind the head first) is the handler's.
                ex.decoder = BodyDecoder::raw();
                ex.budget = u64::MAX;
                ex.keep_alive = false;
                ex.raw = true;
            }
            self.apply(next, ctx);
            return None;
        };
        if *encoder == BodyEncoder::Suppressed {
            // No body goes out (HEAD, 204, 304): writing one would only be
            // thrown away, so the exchange ends with its head.
            ex.interest = Interest::End;
            return None;
        }
        self.writes += 1;
        let mut body = Encoder::new(encoder, &mut self.wbuf, ctx.settings.write_high_water);
        let handler = &mut ex.handler;
        let result = guard(|| {
            let next = handler.on_response_writable(&mut body);
            (next, body.accepted)
        });
        // Closes the chunk the callback wrote (even if it panicked).
        drop(body);
        let Ok((next, accepted)) = result else {
            self.handler_panicked(ctx);
            return None;
        };
        let stuck = matches!(next.interest, Interest::Write | Interest::ReadWrite) && accepted == 0;
        self.apply(next, ctx);
        // Wrote nothing yet asks to write: try again next turn, not in a spin.
        stuck.then_some(Want::Yield)
    }

    /// `Next::end()` after the head: finish the body and move on.
    fn end_exchange<F>(&mut self, ctx: &mut Ctx<'_, F>) {
        let Phase::Exchange(mut ex) = std::mem::replace(&mut self.phase, Phase::Closing) else {
            unreachable!()
        };
        if let Some(encoder) = &mut ex.encoder {
            if encoder.finish(&mut self.wbuf.buf).is_err() {
                // Shorter than its Content-Length: only closing tells the client.
                ex.keep_alive = false;
            }
        }
        self.retire(ctx);
        drop_handler(ex.handler);
        self.served += 1;
        let next = if !ex.keep_alive || ctx.shutting_down {
            Phase::Closing
        } else if ex.decoder.is_done() {
            self.next_head()
        } else if ex.expect == Expect::Pending {
            // We never asked for the body: it may or may not come.
            Phase::Closing
        } else {
            Phase::Drain {
                decoder: ex.decoder,
                budget: ctx.settings.max_drain,
            }
        };
        self.set_phase(next, ctx);
    }

    /// Waiting for the next head after an exchange: started if anything
    /// but empty lines is buffered (a CRLF that some clients send after a
    /// body does not start a request).
    #[inline]
    fn next_head(&self) -> Phase<H> {
        Phase::Head {
            started: head::starts_request(self.rbuf.data()),
            scan: Scan::default(),
        }
    }

    fn step_drain<F>(&mut self, ctx: &mut Ctx<'_, F>) -> Option<Want> {
        let Phase::Drain { decoder, budget } = &mut self.phase else {
            unreachable!()
        };
        let (taken, drained) = drain::step(decoder, budget, self.rbuf.data());
        self.rbuf.consume(taken);
        match drained {
            Drained::Done => {
                self.set_phase(self.next_head(), ctx);
                return None;
            }
            Drained::More if !self.input_closed => return Some(Want::Read),
            Drained::More | Drained::Failed => {}
        }
        // Malformed, too long, or cut short: close instead.
        self.rbuf.consume(self.rbuf.len());
        self.set_phase(Phase::Closing, ctx);
        None
    }

    /// The handler panicked: answer 500 if no head went out, else close.
    fn handler_panicked<F>(&mut self, ctx: &mut Ctx<'_, F>) {
        let Phase::Exchange(ex) = std::mem::replace(&mut self.phase, Phase::Closing) else {
            unreachable!()
        };
        self.retire(ctx);
        let head_sent = ex.encoder.is_some();
        drop_handler(ex.handler);
        if head_sent {
            self.set_phase(Phase::Closing, ctx);
        } else {
            self.fail_status(500, "handler panicked", ex.is_head, ctx);
        }
    }

    /// The request body is malformed, cut short or too large: the handler
    /// is told, then the client (if no head went out), and the connection
    /// closes.
    fn body_failed<F>(&mut self, e: proto::Error, ctx: &mut Ctx<'_, F>) {
        let e = ParseError::from(e);
        if let Phase::Exchange(ex) = &mut self.phase {
            let handler = &mut ex.handler;
            let _ = guard(|| handler.on_error(Error::Parse(e)));
        }
        self.fail(e, ctx);
    }

    /// A bad request: answer its status (if no head went out), then close.
    fn fail<F>(&mut self, e: ParseError, ctx: &mut Ctx<'_, F>) {
        log::debug!("{}: {} {e}; closing", self.addrs.remote, e.status());
        let mut head = false;
        if let Phase::Exchange(ex) = std::mem::replace(&mut self.phase, Phase::Closing) {
            self.retire(ctx);
            let head_sent = ex.encoder.is_some();
            head = ex.is_head;
            drop_handler(ex.handler);
            if head_sent {
                self.set_phase(Phase::Closing, ctx);
                return;
            }
        }
        self.fail_status(e.status(), &e.to_string(), head, ctx);
    }

    /// Writes a complete `status` response with `detail` as its text body
    /// (only the head if it answers a HEAD request) and moves to `Closing`.
    fn fail_status<F>(&mut self, status: u16, detail: &str, head: bool, ctx: &mut Ctx<'_, F>) {
        ctx.pool.attach_write(&mut self.wbuf);
        let buf = &mut self.wbuf.buf;
        let line = status_line(status);
        let reason = reason(status);
        let body_len = reason.len() + 2 + detail.len() + 1;
        buf.extend_from_slice(line.as_slice());
        buf.extend_from_slice(ctx.date.field());
        buf.extend_from_slice(b"Content-Type: text/plain; charset=utf-8\r\nContent-Length: ");
        buf.extend_from_slice(body_len.to_string().as_bytes());
        buf.extend_from_slice(b"\r\nConnection: close\r\n\r\n");
        if !head {
            buf.extend_from_slice(reason.as_bytes());
            buf.extend_from_slice(b": ");
            buf.extend_from_slice(detail.as_bytes());
            buf.push(b'\n');
        }
        self.set_phase(Phase::Closing, ctx);
    }

    /// Ends the current exchange's generation: its `Control`s go stale.
    fn retire<F>(&self, ctx: &mut Ctx<'_, F>) {
        ctx.shared.retire(self.slot);
    }

    /// A `Control::ready` for the current exchange.
    pub(crate) fn wake<F>(&mut self, next: Next, ctx: &mut Ctx<'_, F>) {
        if let Phase::Exchange(ex) = &mut self.phase {
            if ex.interest == Interest::Wait {
                self.apply(next, ctx);
                self.poke();
            } else {
                ex.early_wake = Some(next);
            }
        }
    }

    /// A wake-up was applied: in raw mode, one that asks to read gets
    /// `on_request_readable` even with nothing new to read.
    fn poke(&mut self) {
        if let Phase::Exchange(ex) = &mut self.phase {
            ex.poked = ex.is_raw() && matches!(ex.interest, Interest::Read | Interest::ReadWrite);
        }
    }

    /// The deadline of the current phase expired.
    pub(crate) fn on_deadline<F>(&mut self, ctx: &mut Ctx<'_, F>) -> Option<Want> {
        let stalled = self.timer == Timer::Stall;
        match &mut self.phase {
            // Removed, and the output before it is not taken: give up.
            Phase::Exchange(ex) if ex.interest == Interest::Remove => return Some(Want::Remove),
            Phase::Exchange(_) => {}
            // The client stopped reading our output: nobody to answer.
            _ if stalled => {
                log::debug!(
                    "connection {}: output stalled past io_timeout; closing",
                    self.key
                );
                return Some(Want::Remove);
            }
            _ => {}
        }
        match &mut self.phase {
            Phase::Head { started: false, .. } | Phase::Closing | Phase::Lingering => {
                Some(Want::Remove)
            }
            Phase::Head { started: true, .. } => {
                self.fail(ParseError::HeadTimeout, ctx);
                None
            }
            Phase::Drain { .. } => {
                self.set_phase(Phase::Closing, ctx);
                None
            }
            Phase::Exchange(ex) => {
                log::debug!(
                    "connection {}: exchange timed out ({:?})",
                    self.key,
                    ex.interest
                );
                let handler = &mut ex.handler;
                match guard(|| handler.on_error(Error::Timeout)) {
                    Ok(next) => self.apply(next, ctx),
                    Err(()) => self.handler_panicked(ctx),
                }
                None
            }
        }
    }

    /// The peer reset the connection or another I/O error happened: tell
    /// the handler, if any. The loop then removes the connection.
    pub(crate) fn on_io_error(&mut self, err: std::io::Error) {
        if let Phase::Exchange(ex) = &mut self.phase {
            let handler = &mut ex.handler;
            let _ = guard(|| handler.on_error(Error::Io(err)));
        }
    }

    /// The grace period of a shutdown is over.
    pub(crate) fn on_shutdown_deadline(&mut self) {
        if let Phase::Exchange(ex) = &mut self.phase {
            let handler = &mut ex.handler;
            let _ = guard(|| handler.on_error(Error::Shutdown));
        }
    }

    /// Everything written is out, as `Want::Drain` asked, at `at`: tells
    /// the handler if it asked, and goes on. `true`: shut the write side
    /// down now (raw mode, `Next::end()`).
    pub(crate) fn on_drained<F>(&mut self, at: Instant, ctx: &mut Ctx<'_, F>) -> bool {
        let Phase::Exchange(ex) = &mut self.phase else {
            return false;
        };
        let Some(drain) = ex.drain.take() else {
            return false;
        };
        if std::mem::take(&mut ex.notify_sent) {
            let handler = &mut ex.handler;
            if guard(|| handler.on_response_sent(at)).is_err() {
                self.handler_panicked(ctx);
                return false;
            }
        }
        match drain {
            // `End` stands: the exchange ends next.
            Drain::Ended => false,
            Drain::ShutWrite => {
                ex.write_shut = true;
                true
            }
        }
    }

    /// The write side is shut down after a flush: start lingering.
    pub(crate) fn start_linger<F>(&mut self, ctx: &mut Ctx<'_, F>) {
        self.rbuf.clear();
        self.set_phase(Phase::Lingering, ctx);
    }
}

impl<'a, F: HandlerFactory> Machine<Ctx<'a, F>> for Conn<F::Output> {
    fn bufs(&mut self) -> Bufs<'_> {
        Bufs {
            rbuf: &mut self.rbuf,
            wbuf: &mut self.wbuf,
            input_closed: &mut self.input_closed,
        }
    }

    fn pool<'c>(ctx: &'c mut Ctx<'a, F>) -> &'c mut BufPool {
        ctx.pool
    }

    fn start_turn(&mut self) {
        Conn::start_turn(self);
    }

    fn advance(&mut self, ctx: &mut Ctx<'a, F>) -> Want {
        Conn::advance(self, ctx)
    }

    fn on_read(&mut self, ctx: &mut Ctx<'a, F>) {
        Conn::on_read(self, ctx);
    }

    fn on_written(&mut self, ctx: &mut Ctx<'a, F>) -> bool {
        Conn::on_written(self, ctx);
        // A writer over the high-water mark says `Flush`, and the reactor
        // goes on once below it: nothing is held back behind a read.
        false
    }

    fn on_io_error(&mut self, err: std::io::Error, _ctx: &mut Ctx<'a, F>) {
        Conn::on_io_error(self, err);
    }

    fn start_linger(&mut self, ctx: &mut Ctx<'a, F>) {
        Conn::start_linger(self, ctx);
    }

    fn on_drained(&mut self, at: Instant, ctx: &mut Ctx<'a, F>) -> bool {
        Conn::on_drained(self, at, ctx)
    }

    #[cfg(feature = "__tls")]
    fn on_tls(&mut self, info: Box<crate::tls::TlsInfo>) {
        self.tls = Some(info);
    }
}

/// The transition function, phase by phase, driven with plain bytes.
#[cfg(test)]
mod tests {
    use crate::fuzzing::{Driver, Summary};
    use crate::server::{Handler, HandlerFactory, Response};
    use crate::Next;

    /// Answers `ok` without reading the body.
    struct Ignore;

    impl Handler for Ignore {
        fn on_response(&mut self, res: &mut Response<'_>) -> Next {
            res.body(b"ok");
            Next::end()
        }
    }

    /// The status codes in `out`, in order (bodies here never contain
    /// a status line).
    fn statuses(out: &[u8]) -> Vec<u16> {
        let text = String::from_utf8_lossy(out);
        text.match_indices("HTTP/1.1 ")
            .map(|(i, _)| text[i + 9..i + 12].parse().unwrap())
            .collect()
    }

    fn text(out: &[u8]) -> &str {
        std::str::from_utf8(out).unwrap()
    }

    const GET: &[u8] = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n";

    mod head {
        use super::*;

        fn setup() -> Driver<impl HandlerFactory<Output = Summary>> {
            Driver::new(Summary::factory())
        }

        #[test]
        fn partial_head_waits_then_is_answered() {
            let mut d = setup();
            d.feed(&GET[..10]);
            assert!(d.output.is_empty());
            d.feed(&GET[10..]);
            assert_eq!(statuses(&d.output), [200]);
            assert!(!d.removed);
        }

        #[test]
        fn empty_lines_before_the_request_line_are_skipped() {
            let mut d = setup();
            d.feed(b"\r\n\r\n");
            d.feed(GET);
            assert_eq!(statuses(&d.output), [200]);
        }

        #[test]
        fn bad_head_is_answered_then_the_rest_is_discarded() {
            let mut d = setup();
            d.feed(b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1, 2\r\n\r\n");
            assert_eq!(statuses(&d.output), [400]);
            assert!(text(&d.output).contains("Connection: close\r\n"));
            let before = d.output.len();
            d.feed(GET);
            assert_eq!(
                d.output.len(),
                before,
                "a request after the error was served"
            );
            d.close_input();
            assert!(d.removed);
        }

        #[test]
        fn peer_closing_mid_head_gets_no_answer() {
            let mut d = setup();
            d.feed(&GET[..12]);
            d.close_input();
            assert!(d.output.is_empty());
            assert!(d.removed);
        }
    }

    mod exchange {
        use super::*;

        fn setup() -> Driver<impl HandlerFactory<Output = Summary>> {
            Driver::new(Summary::factory())
        }

        #[test]
        fn body_arriving_in_pieces_is_read_whole() {
            let mut d = setup();
            d.feed(b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\nab");
            assert!(d.output.is_empty());
            d.feed(b"cdef");
            assert!(text(&d.output).contains("POST /p len=6"));
        }

        #[test]
        fn expect_continue_sends_100_only_when_the_body_is_wanted() {
            let mut d = setup();
            d.feed(
                b"PUT /p HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n",
            );
            assert_eq!(text(&d.output), "HTTP/1.1 100 Continue\r\n\r\n");
            d.feed(b"hi");
            assert_eq!(statuses(&d.output), [100, 200]);
        }

        #[test]
        fn body_cut_short_by_the_peer_ends_the_connection() {
            let mut d = setup();
            d.feed(b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\nab");
            d.close_input();
            // Summary removes the connection when its read fails.
            assert!(d.removed);
            assert!(d.output.is_empty());
        }

        #[test]
        fn pipelined_requests_are_answered_in_order() {
            let mut d = setup();
            let mut input = Vec::new();
            for i in 0..40 {
                input.extend_from_slice(format!("GET /{i} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes());
            }
            d.feed(&input);
            let out = text(&d.output);
            let mut pos = 0;
            for i in 0..40 {
                let line = format!("GET /{i} len=0");
                pos += out[pos..].find(&line).expect("in order");
            }
        }
    }

    /// Reads into a buffer exactly as long as the body, so its last read
    /// fills the buffer and it does not read again to see the end; writes
    /// what it holds; always asks for both.
    struct ExactDuplex {
        buf: [u8; 4],
        len: usize,
        ended: bool,
    }

    impl Handler for ExactDuplex {
        fn on_request(&mut self, _req: crate::server::Request<'_>) -> Next {
            Next::read_and_write()
        }

        fn on_request_readable(&mut self, body: &mut crate::Decoder<'_>) -> Next {
            use std::io::Read;
            while self.len < self.buf.len() {
                match body.read(&mut self.buf[self.len..]) {
                    Ok(0) => self.ended = true,
                    Ok(n) => self.len += n,
                    Err(_) => break,
                }
                if self.ended {
                    break;
                }
            }
            self.next()
        }

        fn on_response(&mut self, _res: &mut Response<'_>) -> Next {
            self.next()
        }

        fn on_response_writable(&mut self, body: &mut crate::Encoder<'_>) -> Next {
            use std::io::Write;
            if let Ok(n) = body.write(&self.buf[..self.len]) {
                self.buf.copy_within(n..self.len, 0);
                self.len -= n;
            }
            self.next()
        }
    }

    impl ExactDuplex {
        fn next(&self) -> Next {
            if self.ended && self.len == 0 {
                Next::end()
            } else {
                Next::read_and_write()
            }
        }
    }

    /// A handler that read the last body bytes without seeing `Ok(0)` is
    /// offered the body again until `read` tells it the end (it used to be
    /// marked as told and the exchange parked for good).
    #[test]
    fn the_end_of_a_body_is_told_by_read_not_assumed() {
        let mut d = Driver::new(|_| ExactDuplex {
            buf: [0; 4],
            len: 0,
            ended: false,
        });
        d.feed(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nabcd");
        assert!(
            text(&d.output).ends_with("4\r\nabcd\r\n0\r\n\r\n"),
            "{}",
            text(&d.output)
        );
    }

    mod drain {
        use super::*;

        fn setup() -> Driver<impl HandlerFactory<Output = Ignore>> {
            Driver::new(|_| Ignore)
        }

        #[test]
        fn small_unread_body_is_skipped_not_parsed() {
            let mut d = setup();
            let head = format!(
                "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
                GET.len()
            );
            d.feed(head.as_bytes());
            assert_eq!(statuses(&d.output), [200]);
            // The body looks like a request; it must be drained, not served.
            d.feed(GET);
            assert_eq!(statuses(&d.output), [200]);
            d.feed(GET);
            assert_eq!(statuses(&d.output), [200, 200]);
        }

        #[test]
        fn unread_body_over_the_limit_closes() {
            let mut d = setup();
            d.feed(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n");
            assert!(text(&d.output).contains("Connection: close\r\n"));
            d.feed(GET);
            assert_eq!(statuses(&d.output), [200]);
        }
    }

    mod closing {
        use super::*;

        fn setup() -> Driver<impl HandlerFactory<Output = Ignore>> {
            Driver::new(|_| Ignore)
        }

        #[test]
        fn connection_close_stops_after_the_response() {
            let mut d = setup();
            d.feed(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            d.feed(GET);
            assert_eq!(statuses(&d.output), [200]);
            assert!(!d.removed, "lingers until the peer closes");
            d.close_input();
            assert!(d.removed);
        }

        #[test]
        fn http10_without_keep_alive_closes() {
            let mut d = setup();
            d.feed(b"GET / HTTP/1.0\r\n\r\n");
            assert!(text(&d.output).contains("Connection: close\r\n"));
            d.feed(b"GET / HTTP/1.0\r\n\r\n");
            assert_eq!(statuses(&d.output), [200]);
        }

        #[test]
        fn peer_closing_an_idle_connection_closes_it() {
            let mut d = setup();
            d.feed(GET);
            d.close_input();
            assert_eq!(statuses(&d.output), [200]);
            assert!(d.removed);
        }
    }
}
