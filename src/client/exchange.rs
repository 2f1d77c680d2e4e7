//! One exchange as the client loop keeps it: the handler, the URL, and how
//! far the request and the response have got. The connection machine
//! (`conn.rs`) moves it along; this file holds its state and the few
//! operations that do not need a connection.

use std::time::Instant;

use slab::Slab;

use crate::client::handler::Boxed;
use crate::client::url::Url;
use crate::client::{Error, Handler, Response};
use crate::control::Shared;
use crate::next::Interest;
use crate::proto;
use crate::proto::h1::decode::BodyDecoder;
use crate::proto::h1::encode::BodyEncoder;
use crate::rt::guard::guard;
use crate::rt::timer::after;
use crate::rt::timer::{Deadline, Timers};
use crate::Next;

/// What a deadline in the client loop's heap belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Timer {
    /// A connection's (connect, idle, response, read timeouts).
    Conn(usize),
    /// The timeout of an exchange's own `Next`.
    Exchange(usize),
    /// A host's name lookup.
    Host(usize),
}

/// Where the request is.
#[derive(Debug)]
pub(crate) enum Req {
    /// `on_request` not called yet.
    Head,
    /// The head is out; the handler writes the body.
    Body {
        encoder: BodyEncoder,
        /// `Expect: 100-continue` sent and neither `100` nor a final
        /// response seen yet (nor the continue timeout passed).
        waiting_continue: bool,
    },
    /// The whole request is written (or will never be).
    Done,
}

/// Where the response is.
#[derive(Debug)]
pub(crate) enum Res {
    /// Waiting for the (final) response head.
    Head,
    /// `on_response` was called; the body follows.
    Body {
        decoder: BodyDecoder,
        /// The handler has been called with the body already complete.
        saw_end: bool,
        error: Option<proto::Error>,
    },
    /// The connection left HTTP (a `101` to a request with `Upgrade`, a
    /// `2xx` to `CONNECT`): raw bytes both ways until the handler is done.
    Raw(Raw),
}

/// An exchange in raw mode. The read side is the server's bytes up to
/// its FIN, the write side ours up to our shutdown; each ends on its own.
#[derive(Debug)]
pub(crate) struct Raw {
    /// Everything until the server closes (an EOF-delimited decoder).
    pub decoder: BodyDecoder,
    /// A `read` has returned the end (`Ok(0)`): the handler knows.
    pub saw_end: bool,
    /// Bytes as written (a close-delimited encoder).
    pub encoder: BodyEncoder,
    pub out: RawOut,
    /// The handler is done: once the write side is shut, the connection
    /// closes and the exchange ends.
    pub done: bool,
}

/// Our write side in raw mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RawOut {
    Open,
    /// To be shut down once what was written has gone out.
    Shutting,
    /// Shut down (our FIN sent).
    Shut,
}

impl Raw {
    pub(crate) fn new() -> Raw {
        Raw {
            decoder: BodyDecoder::eof(),
            saw_end: false,
            encoder: BodyEncoder::CloseDelimited,
            out: RawOut::Open,
            done: false,
        }
    }
}

/// What the finished request head said, for framing and reuse.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Info {
    pub is_head: bool,
    pub is_connect: bool,
    pub idempotent: bool,
    /// The request did not ask for `Connection: close`.
    pub keep_alive: bool,
    /// The request has an `Upgrade` field: a `101` switches to raw mode.
    pub upgrade: bool,
}

pub(crate) struct Exchange {
    pub handler: Box<dyn Boxed>,
    pub url: Url,
    /// The host pool it belongs to.
    pub host: usize,
    /// The connection it is on, once it has one.
    pub conn: Option<usize>,
    pub interest: Interest,
    /// A `Control::ready` that came before the handler asked to wait.
    pub early_wake: Option<Next>,
    /// The handler's own `Next` timeout.
    pub deadline: Deadline,
    pub req: Req,
    pub res: Res,
    pub info: Info,
    /// Times it was sent again on another connection.
    pub retries: u8,
    /// `on_request_writable` has been called: the body cannot be replayed.
    pub body_started: bool,
    /// The current `interest` answers the request side (`on_request`,
    /// `on_request_writable`, or a wake-up or timeout after one of them):
    /// a `Next::read()` or `Next::end()` then says the request body is
    /// complete. From the response side it says the handler has moved on
    /// without finishing it.
    pub writing: bool,
    /// The handler gave up while its response was still to come behind
    /// others on the connection ([`Exchange::detach`]): the response is
    /// read and thrown away, and the exchange is never sent again.
    pub detached: bool,
}

impl Exchange {
    pub(crate) fn new(handler: Box<dyn Boxed>, url: Url, host: usize) -> Exchange {
        Exchange {
            handler,
            url,
            host,
            conn: None,
            // Not `Wait`: a wake-up before `on_request` is kept for later.
            interest: Interest::Write,
            early_wake: None,
            deadline: Deadline::default(),
            req: Req::Head,
            res: Res::Head,
            info: Info::default(),
            retries: 0,
            body_started: false,
            writing: true,
            detached: false,
        }
    }

    /// The request is complete (or abandoned).
    pub(crate) fn req_done(&self) -> bool {
        matches!(self.req, Req::Done)
    }

    /// Follows a handler's `Next`: records the interest and its timeout.
    pub(crate) fn apply(
        &mut self,
        key: usize,
        next: Next,
        now: Instant,
        timers: &mut Timers<Timer>,
    ) {
        self.interest = next.interest;
        if next.interest == Interest::Wait {
            if let Some(early) = self.early_wake.take() {
                return self.apply(key, early, now, timers);
            }
        }
        let at = next.timeout.and_then(|d| after(now, d));
        self.deadline.set(at, Timer::Exchange(key), timers);
    }

    /// A `Control::ready` for this exchange.
    pub(crate) fn wake(
        &mut self,
        key: usize,
        next: Next,
        now: Instant,
        timers: &mut Timers<Timer>,
    ) {
        if self.interest == Interest::Wait {
            self.apply(key, next, now, timers);
        } else {
            self.early_wake = Some(next);
        }
    }

    /// Back to the start, to be sent again on another connection: the
    /// handler's `on_request` will be called again.
    pub(crate) fn reset_for_retry(&mut self, key: usize, timers: &mut Timers<Timer>) {
        self.conn = None;
        self.interest = Interest::Write;
        self.req = Req::Head;
        self.res = Res::Head;
        self.retries += 1;
        self.writing = true;
        self.deadline.set(None, Timer::Exchange(key), timers);
    }

    /// The handler gives up while its response is still to come on a
    /// connection that exchanges ahead of it still need: it is dropped now
    /// (its `Control`s go stale, no callback follows) and a handler that
    /// discards the response takes its place, so that the response, when
    /// it comes, is read past like any other.
    pub(crate) fn detach(&mut self, key: usize, shared: &Shared, timers: &mut Timers<Timer>) {
        let handler = std::mem::replace(&mut self.handler, Box::new(Discard));
        shared.retire(key);
        let _ = guard(move || drop(handler));
        self.detached = true;
        self.interest = Interest::Read;
        self.writing = false;
        self.early_wake = None;
        self.deadline.set(None, Timer::Exchange(key), timers);
    }

    /// Tells the handler its exchange failed; returns what it asked next.
    pub(crate) fn tell(&mut self, err: Error) -> Option<Next> {
        let handler = &mut self.handler;
        guard(|| handler.on_error(err)).ok()
    }
}

/// The handler of a detached exchange: its response is skipped (drained
/// if small, else the connection is closed), its errors ignored.
struct Discard;

impl Handler for Discard {
    fn on_response(&mut self, _: Response<'_>) -> Next {
        Next::end()
    }

    fn on_error(&mut self, _: Error) -> Next {
        Next::end()
    }
}

/// Ends exchange `key`: its `Control`s go stale and its handler is
/// dropped (a panic in its `Drop` contained).
pub(crate) fn end(exchanges: &mut Slab<Exchange>, key: usize, shared: &Shared) {
    if let Some(ex) = exchanges.try_remove(key) {
        shared.retire(key);
        let _ = guard(move || drop(ex));
    }
}

/// Ends exchange `key` with `err`: `on_error`, then [`end`].
pub(crate) fn fail(exchanges: &mut Slab<Exchange>, key: usize, err: Error, shared: &Shared) {
    if let Some(ex) = exchanges.get_mut(key) {
        ex.tell(err);
    }
    end(exchanges, key, shared);
}
