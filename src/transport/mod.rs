//! Transports: the only code that touches sockets.
//!
//! A connection machine never sees a socket. The reactor (`rt/`) moves
//! bytes between a [`Transport`] and the machine's buffers: [`fill`]
//! appends what the peer sent to the read buffer, [`flush`] writes the
//! write buffer out, [`shutdown_write`] ends our side. The reactor holds a
//! [`Stream`]: plain TCP ([`Tcp`]), a Unix stream socket (`Unix`, the
//! same code over another socket type) or TLS over TCP (`Tls`, in
//! `tls.rs`, features `tls` and `tls-ring`), so plain TCP pays one branch
//! for the others. TLS over a Unix socket is not offered.
//!
//! What TLS (rustls is sans-IO) does with the same calls:
//!
//! - `fill` reads ciphertext until the socket is drained (or the read
//!   buffer is full) and hands the machine the plaintext; the records a
//!   read provokes (handshake replies, alerts, tickets) are written before
//!   it returns, and whatever could not go out makes
//!   [`wants_flush`](Transport::wants_flush) true, so the reactor flushes
//!   even with an empty write buffer;
//! - plaintext already decrypted but not yet delivered makes
//!   [`may_read`](Transport::may_read) true, so the reactor delivers it
//!   without waiting for a readiness event that will not come;
//! - `shutdown_write` queues `close_notify` before the TCP shutdown;
//! - [`release`](Transport::release) gives the record buffers back to the
//!   pool while the connection is parked.
//!
//! A QUIC stream would implement the same calls over its connection's
//! stream buffers.
//!
//! [`fill`]: Transport::fill
//! [`flush`]: Transport::flush
//! [`shutdown_write`]: Transport::shutdown_write

use std::io;

use crate::rt::buf::{BufPool, ReadBuf, WriteBuf};
use crate::Detached;

pub(crate) mod listener;
mod tcp;
#[cfg(feature = "__tls")]
pub(crate) mod tls;

#[cfg(unix)]
pub(crate) use tcp::Unix;
pub(crate) use tcp::{Plain, Tcp};
#[cfg(feature = "__tls")]
pub(crate) use tls::Tls;

/// One connection's byte stream, as the reactor drives it.
///
/// mio is edge-triggered: a readiness event is reported once, so a
/// transport remembers what it knows (see [`update`](Transport::update))
/// and the reactor reads or writes until the transport says it would
/// block.
pub(crate) trait Transport: mio::event::Source {
    /// Records a readiness event. An error or hang-up never discards
    /// input: it makes the transport readable, and the read that follows
    /// returns what arrived before it, then the end or the error.
    fn update(&mut self, event: &mio::event::Event);

    /// May reading find bytes (or the end) without a new event?
    fn may_read(&self) -> bool;

    /// May writing make progress without a new event?
    fn may_write(&self) -> bool;

    /// Has the transport output of its own to write (TLS records), so the
    /// reactor must flush even when the write buffer is empty?
    fn wants_flush(&self) -> bool {
        false
    }

    /// Reads once into `rbuf` (giving it storage from `pool` if it has
    /// none). `Ok(true)`: bytes arrived or the input ended (`*input_closed`
    /// is then set), and the connection should run again. `Ok(false)`:
    /// nothing now (drained, or the buffer is full and the machine must
    /// consume first).
    fn fill(
        &mut self,
        rbuf: &mut ReadBuf,
        pool: &mut BufPool,
        input_closed: &mut bool,
    ) -> io::Result<bool>;

    /// Writes buffered output until done or it would block; returns how
    /// many bytes of `wbuf` were taken (written, or encrypted to be).
    fn flush(&mut self, wbuf: &mut WriteBuf, pool: &mut BufPool) -> io::Result<usize>;

    /// Ends our direction of the stream (after everything is flushed).
    fn shutdown_write(&mut self, pool: &mut BufPool);

    /// The connection is parked: buffers of the transport's own that are
    /// empty go back to `pool`.
    fn release(&mut self, pool: &mut BufPool) {
        let _ = pool;
    }

    /// A reset or socket error reported by an event and not yet seen by a
    /// read or write: the connection is over even if its machine is not
    /// reading now.
    fn pending_error(&mut self) -> Option<io::Error>;

    /// Hands the stream over, with `read_buf`: the bytes read from it
    /// that no machine consumed. `None`: this transport cannot be handed
    /// over (TLS: its session state does not leave the loop), and the
    /// stream is closed instead.
    fn detach(self, read_buf: Vec<u8>) -> Option<Detached>;
}

/// A connection's transport as the reactor holds it.
pub(crate) enum Stream {
    /// Plain TCP.
    Tcp(Tcp),
    /// A Unix stream socket (server side).
    #[cfg(unix)]
    Unix(Unix),
    /// TLS over TCP (boxed: plain connections stay small).
    #[cfg(feature = "__tls")]
    Tls(Box<Tls>),
}

impl Stream {
    /// The TCP connection under it (a client's: never a Unix socket).
    pub(crate) fn tcp(&mut self) -> &mut Tcp {
        match self {
            Stream::Tcp(tcp) => tcp,
            #[cfg(unix)]
            Stream::Unix(_) => unreachable!("a client connection is TCP"),
            #[cfg(feature = "__tls")]
            Stream::Tls(tls) => tls.tcp(),
        }
    }

    /// What the TLS handshake settled, once, when it has just completed.
    #[cfg(feature = "__tls")]
    #[inline]
    pub(crate) fn take_tls_info(&mut self) -> Option<Box<crate::tls::TlsInfo>> {
        match self {
            Stream::Tls(tls) => tls.take_info(),
            _ => None,
        }
    }
}

/// Calls `$call` on whichever transport `$self` holds.
macro_rules! each {
    ($self:expr, $io:ident => $call:expr) => {
        match $self {
            Stream::Tcp($io) => $call,
            #[cfg(unix)]
            Stream::Unix($io) => $call,
            #[cfg(feature = "__tls")]
            Stream::Tls($io) => $call,
        }
    };
}

impl Transport for Stream {
    #[inline]
    fn update(&mut self, event: &mio::event::Event) {
        each!(self, io => io.update(event))
    }

    #[inline]
    fn may_read(&self) -> bool {
        each!(self, io => io.may_read())
    }

    #[inline]
    fn may_write(&self) -> bool {
        each!(self, io => io.may_write())
    }

    #[inline]
    fn wants_flush(&self) -> bool {
        each!(self, io => io.wants_flush())
    }

    #[inline]
    fn fill(
        &mut self,
        rbuf: &mut ReadBuf,
        pool: &mut BufPool,
        input_closed: &mut bool,
    ) -> io::Result<bool> {
        each!(self, io => io.fill(rbuf, pool, input_closed))
    }

    #[inline]
    fn flush(&mut self, wbuf: &mut WriteBuf, pool: &mut BufPool) -> io::Result<usize> {
        each!(self, io => io.flush(wbuf, pool))
    }

    fn shutdown_write(&mut self, pool: &mut BufPool) {
        each!(self, io => io.shutdown_write(pool))
    }

    #[inline]
    fn release(&mut self, pool: &mut BufPool) {
        each!(self, io => io.release(pool))
    }

    fn pending_error(&mut self) -> Option<io::Error> {
        each!(self, io => io.pending_error())
    }

    fn detach(self, read_buf: Vec<u8>) -> Option<Detached> {
        match self {
            Stream::Tcp(io) => io.detach(read_buf),
            #[cfg(unix)]
            Stream::Unix(io) => io.detach(read_buf),
            #[cfg(feature = "__tls")]
            Stream::Tls(io) => io.detach(read_buf),
        }
    }
}

impl mio::event::Source for Stream {
    fn register(
        &mut self,
        registry: &mio::Registry,
        token: mio::Token,
        interests: mio::Interest,
    ) -> io::Result<()> {
        each!(self, io => io.register(registry, token, interests))
    }

    fn reregister(
        &mut self,
        registry: &mio::Registry,
        token: mio::Token,
        interests: mio::Interest,
    ) -> io::Result<()> {
        each!(self, io => io.reregister(registry, token, interests))
    }

    fn deregister(&mut self, registry: &mio::Registry) -> io::Result<()> {
        each!(self, io => io.deregister(registry))
    }
}
