//! A server connection, and the choice of what it speaks: HTTP/1 (`h1`)
//! or HTTP/2 (`h2`).
//!
//! The choice is made before any HTTP/1 parsing:
//! - in clear, by the first bytes: the 24-byte HTTP/2 client preface
//!   (RFC 9113 §3.4) makes it HTTP/2; a partial match waits for more; any
//!   other byte leaves it HTTP/1, with every byte kept for its parser;
//! - over TLS, by ALPN: `h2` makes it HTTP/2 (the preface must then
//!   follow), anything else HTTP/1.
//!
//! `Upgrade: h2c` (RFC 9113 §3.1 deprecates it) is not honoured: such a
//! request is served as HTTP/1.1.
//!
//! The HTTP/2 state is boxed so that the HTTP/1 variant keeps its size.

mod h1;
mod h2;

use std::io;

use crate::rt::buf::BufPool;
use crate::rt::machine::Bufs;
use crate::rt::timer::{Deadline, Timers};
use crate::rt::Machine;
use crate::server::{Addrs, Handler, HandlerFactory, Settings};
use crate::Next;

pub(crate) use h1::{Clock, Ctx, Want, MAX_HEADERS};

/// The client preface of HTTP/2 (RFC 9113 §3.4).
pub(crate) const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The size of every read buffer of a loop: a request head, and with
/// HTTP/2 on, one whole frame or header block (what the engine reads at
/// once; a stream's unread body is held in one too).
pub(crate) fn read_size(settings: &Settings) -> usize {
    match &settings.http2 {
        Some(h2) => {
            let engine = h2::engine_settings(h2, usize::MAX);
            settings.max_head_size.max(engine.read_buffer_size())
        }
        None => settings.max_head_size,
    }
}

/// What the first bytes of a cleartext connection say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Sniff {
    /// The whole preface: HTTP/2.
    H2,
    /// A strict prefix of the preface (or nothing yet): wait.
    Partial,
    /// Anything else: HTTP/1.
    H1,
}

/// Looks at the start of a cleartext connection.
pub(crate) fn sniff(data: &[u8]) -> Sniff {
    let n = data.len().min(PREFACE.len());
    if data[..n] != PREFACE[..n] {
        Sniff::H1
    } else if n == PREFACE.len() {
        Sniff::H2
    } else {
        Sniff::Partial
    }
}

/// One server connection: HTTP/1, or HTTP/2 (boxed).
#[allow(clippy::large_enum_variant)] // HTTP/1 is the common case: not boxed
pub(crate) enum Conn<H> {
    /// HTTP/1.x (and the start of every cleartext connection until its
    /// first bytes have been seen).
    H1(h1::Conn<H>),
    /// HTTP/2.
    H2(Box<h2::Conn<H>>),
}

impl<H: Handler> Conn<H> {
    /// A new connection; `secure`: a TLS handshake comes first. `h2`:
    /// HTTP/2 is on (the preface is looked for in clear).
    pub(crate) fn new(
        key: usize,
        slot: usize,
        addrs: Addrs,
        secure: bool,
        h2: bool,
        timers: &mut Timers,
        clock: &Clock,
    ) -> Self {
        let mut conn = h1::Conn::new(key, slot, addrs, secure, timers, clock);
        conn.may_be_h2 = h2 && !secure;
        Conn::H1(conn)
    }

    /// The connection's deadline.
    pub(crate) fn deadline(&mut self) -> &mut Deadline {
        match self {
            Conn::H1(c) => &mut c.deadline,
            Conn::H2(c) => &mut c.deadline,
        }
    }

    /// Owns the timer entry at `at`?
    pub(crate) fn owns_deadline(&self, at: std::time::Instant) -> bool {
        match self {
            Conn::H1(c) => c.deadline.owns(at),
            Conn::H2(c) => c.deadline.owns(at),
        }
    }

    /// The exchange slot the connection itself holds (HTTP/1: the one its
    /// exchanges run in; HTTP/2: none of its streams').
    pub(crate) fn slot(&self) -> usize {
        match self {
            Conn::H1(c) => c.slot,
            Conn::H2(c) => c.slot,
        }
    }

    /// Is the connection idle (no exchange, nothing buffered)?
    pub(crate) fn is_idle(&self) -> bool {
        match self {
            Conn::H1(c) => c.is_idle(),
            Conn::H2(c) => c.is_idle(),
        }
    }

    /// The connection is being dropped: its exchanges end; an HTTP/1
    /// handler is handed over for `on_remove`.
    pub(crate) fn remove<F>(&mut self, ctx: &mut Ctx<'_, F>) -> Option<H> {
        match self {
            Conn::H1(c) => c.remove(ctx.shared),
            Conn::H2(c) => {
                c.remove(ctx);
                None
            }
        }
    }

    /// A `Control::ready` for the exchange in `slot`.
    pub(crate) fn wake<F: HandlerFactory<Output = H>>(
        &mut self,
        slot: usize,
        next: Next,
        ctx: &mut Ctx<'_, F>,
    ) {
        match self {
            Conn::H1(c) => c.wake(next, ctx),
            Conn::H2(c) => c.wake(slot, next, ctx),
        }
    }

    /// The connection's deadline expired.
    pub(crate) fn on_deadline<F: HandlerFactory<Output = H>>(
        &mut self,
        ctx: &mut Ctx<'_, F>,
    ) -> Option<Want> {
        match self {
            Conn::H1(c) => c.on_deadline(ctx),
            Conn::H2(c) => c.on_deadline(ctx),
        }
    }

    /// A graceful shutdown begins (HTTP/2: GOAWAY and PING; HTTP/1 closes
    /// after its exchange anyway).
    pub(crate) fn begin_shutdown<F>(&mut self, ctx: &mut Ctx<'_, F>) {
        if let Conn::H2(c) = self {
            c.begin_shutdown(ctx);
        }
    }

    /// The grace period of a shutdown is over.
    pub(crate) fn on_shutdown_deadline(&mut self) {
        match self {
            Conn::H1(c) => c.on_shutdown_deadline(),
            Conn::H2(c) => c.on_shutdown_deadline(),
        }
    }

    /// Its buffers (for the socket-free driver).
    pub(crate) fn buffers(&mut self) -> Bufs<'_> {
        match self {
            Conn::H1(c) => Bufs {
                rbuf: &mut c.rbuf,
                wbuf: &mut c.wbuf,
                input_closed: &mut c.input_closed,
            },
            Conn::H2(c) => c.bufs(),
        }
    }

    /// The reactor starts running it: a new share of the turn.
    pub(crate) fn start_turn(&mut self) {
        match self {
            Conn::H1(c) => c.start_turn(),
            Conn::H2(c) => c.start_turn(),
        }
    }

    /// Becomes HTTP/2, keeping the buffers (and what they hold), the
    /// deadline and the TLS facts.
    fn switch_to_h2(&mut self) {
        let Conn::H1(c) = self else {
            return;
        };
        let h2 = h2::Conn::from_h1(c);
        *self = Conn::H2(Box::new(h2));
    }

    /// In clear, before the first request: the preface decides.
    /// `Some(want)`: wait with that.
    fn choose(&mut self) -> Option<Want> {
        let Conn::H1(c) = self else {
            return None;
        };
        if !c.may_be_h2 {
            return None;
        }
        match sniff(c.rbuf.data()) {
            Sniff::H2 => self.switch_to_h2(),
            Sniff::Partial if !c.input_closed => return Some(Want::Read),
            // (A partial preface and the end: HTTP/1 closes it.)
            Sniff::Partial | Sniff::H1 => c.may_be_h2 = false,
        }
        None
    }
}

impl<'a, F: HandlerFactory> Machine<Ctx<'a, F>> for Conn<F::Output> {
    fn bufs(&mut self) -> Bufs<'_> {
        self.buffers()
    }

    fn pool<'c>(ctx: &'c mut Ctx<'a, F>) -> &'c mut BufPool {
        ctx.pool
    }

    fn start_turn(&mut self) {
        Conn::start_turn(self);
    }

    fn advance(&mut self, ctx: &mut Ctx<'a, F>) -> Want {
        if let Some(want) = self.choose() {
            return want;
        }
        match self {
            Conn::H1(c) => c.advance(ctx),
            Conn::H2(c) => c.advance(ctx),
        }
    }

    fn on_read(&mut self, ctx: &mut Ctx<'a, F>) {
        match self {
            Conn::H1(c) => c.on_read(ctx),
            Conn::H2(c) => c.on_read(ctx),
        }
    }

    fn on_written(&mut self, ctx: &mut Ctx<'a, F>) -> bool {
        match self {
            Conn::H1(c) => {
                c.on_written(ctx);
                // A writer over the high-water mark says `Flush`, and the
                // reactor goes on once below it.
                false
            }
            Conn::H2(c) => c.on_written(ctx),
        }
    }

    fn on_drained(&mut self, at: std::time::Instant, ctx: &mut Ctx<'a, F>) -> bool {
        match self {
            Conn::H1(c) => c.on_drained(at, ctx),
            // HTTP/2 never asks for `Want::Drain`.
            Conn::H2(_) => false,
        }
    }

    fn on_io_error(&mut self, err: io::Error, ctx: &mut Ctx<'a, F>) {
        match self {
            Conn::H1(c) => c.on_io_error(err),
            Conn::H2(c) => c.on_io_error(err, ctx),
        }
    }

    fn start_linger(&mut self, ctx: &mut Ctx<'a, F>) {
        match self {
            Conn::H1(c) => c.start_linger(ctx),
            Conn::H2(c) => c.start_linger(ctx),
        }
    }

    #[cfg(feature = "__tls")]
    fn on_tls(&mut self, info: Box<crate::tls::TlsInfo>) {
        let h2 = info.alpn() == Some(crate::tls::ALPN_H2);
        match self {
            Conn::H1(c) => c.tls = Some(info),
            Conn::H2(c) => c.tls = Some(info),
        }
        if h2 {
            self.switch_to_h2();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_preface_is_chosen_at_once_waited_for_in_part_and_refused_at_the_first_other_byte() {
        assert_eq!(sniff(b""), Sniff::Partial);
        assert_eq!(sniff(b"PRI * HTTP/2.0\r\n"), Sniff::Partial);
        assert_eq!(sniff(PREFACE), Sniff::H2);
        let mut more = PREFACE.to_vec();
        more.extend_from_slice(&[0, 0, 0, 4]);
        assert_eq!(sniff(&more), Sniff::H2);
        assert_eq!(sniff(b"PRI * HTTP/1.1\r\n"), Sniff::H1);
        assert_eq!(sniff(b"GET / HTTP/1.1\r\n"), Sniff::H1);
        assert_eq!(sniff(b"P"), Sniff::Partial);
        assert_eq!(sniff(b"\r\n"), Sniff::H1);
    }

    /// The HTTP/1 variant is no larger than an HTTP/1 connection was.
    #[test]
    fn the_http1_variant_keeps_its_size() {
        use crate::server::Response;
        struct H;
        impl Handler for H {
            fn on_response(&mut self, _: &mut Response<'_>) -> Next {
                Next::end()
            }
        }
        assert_eq!(
            std::mem::size_of::<Conn<H>>(),
            std::mem::size_of::<h1::Conn<H>>()
        );
    }
}
