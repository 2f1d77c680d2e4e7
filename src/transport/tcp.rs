//! Plain streams (TCP, and Unix stream sockets on Unix): edge-triggered
//! reads and writes over a connection's buffers.
//!
//! mio reports readiness once per edge, so [`Plain`] keeps a [`Readiness`]
//! and reads or writes until the kernel says `WouldBlock` — or until a
//! short read or write shows the socket drained or full, which on Linux
//! guarantees a new edge when that changes.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};

use mio::event::{Event, Source};
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};

use super::Transport;
use crate::rt::buf::{BufPool, ReadBuf, WriteBuf};
use crate::Detached;

/// What is known of one socket's readiness.
#[derive(Clone, Copy, Debug, Default)]
struct Readiness {
    /// Not known to be drained: reading may find bytes.
    readable: bool,
    /// Not known to be full: writing may succeed.
    writable: bool,
    /// The peer's FIN (or a reset) was reported: read until 0 or the
    /// error even after a short read.
    read_closed: bool,
    /// An error event came and no read or write has reported it yet.
    error: bool,
}

/// A stream socket the plain transport can drive: TCP, or a Unix stream
/// socket. Generic, so plain TCP pays no branch for Unix sockets.
pub(crate) trait Socket: Read + Write + Source {
    /// Shuts our direction down.
    fn shutdown_write(&self);
    /// The socket's pending error (`SO_ERROR`).
    fn take_error(&self) -> io::Result<Option<io::Error>>;
    /// The stream handed over, if this kind can be ([`Detached`] holds a
    /// TCP stream).
    fn detach(self, read_buf: Vec<u8>) -> Option<Detached>;
}

impl Socket for TcpStream {
    fn shutdown_write(&self) {
        let _ = self.shutdown(Shutdown::Write);
    }

    fn take_error(&self) -> io::Result<Option<io::Error>> {
        TcpStream::take_error(self)
    }

    fn detach(self, read_buf: Vec<u8>) -> Option<Detached> {
        Some(Detached::new(self.into(), read_buf))
    }
}

#[cfg(unix)]
impl Socket for mio::net::UnixStream {
    fn shutdown_write(&self) {
        let _ = self.shutdown(Shutdown::Write);
    }

    fn take_error(&self) -> io::Result<Option<io::Error>> {
        mio::net::UnixStream::take_error(self)
    }

    fn detach(self, _read_buf: Vec<u8>) -> Option<Detached> {
        None
    }
}

/// A plain (unencrypted) connection over socket `S`.
pub(crate) struct Plain<S> {
    sock: S,
    ready: Readiness,
}

/// A TCP connection.
pub(crate) type Tcp = Plain<TcpStream>;

/// A connection on a Unix stream socket.
#[cfg(unix)]
pub(crate) type Unix = Plain<mio::net::UnixStream>;

impl<S: Socket> Plain<S> {
    /// An accepted connection: writable, nothing known to read yet.
    pub(crate) fn new(sock: S) -> Plain<S> {
        Plain {
            sock,
            ready: Readiness {
                writable: true,
                ..Readiness::default()
            },
        }
    }
}

impl Tcp {
    /// An accepted connection: writable, nothing known to read yet.
    pub(crate) fn accepted(sock: TcpStream, nodelay: bool) -> Tcp {
        if nodelay {
            let _ = sock.set_nodelay(true);
        }
        Plain::new(sock)
    }

    /// Starts connecting to `addr` (non-blocking: an event says when it
    /// is done; see [`connect_result`](Self::connect_result)).
    pub(crate) fn connect(addr: SocketAddr) -> io::Result<Tcp> {
        Ok(Plain {
            sock: TcpStream::connect(addr)?,
            ready: Readiness::default(),
        })
    }

    /// After an event on a connecting socket: `Some(Ok)` connected,
    /// `Some(Err)` failed, `None` not yet (a spurious event).
    pub(crate) fn connect_result(&mut self) -> Option<io::Result<()>> {
        match self.sock.take_error() {
            Ok(Some(e)) | Err(e) => Some(Err(e)),
            Ok(None) => match self.sock.peer_addr() {
                Ok(_) => {
                    let _ = self.sock.set_nodelay(true);
                    // Connected: whatever the event said about errors was
                    // about connecting.
                    self.ready.error = false;
                    Some(Ok(()))
                }
                Err(e) if e.kind() == io::ErrorKind::NotConnected => None,
                Err(e) => Some(Err(e)),
            },
        }
    }
}

impl<S: Socket> Plain<S> {
    /// Reads once into `buf` (not empty): `Some(0)` at the end of input,
    /// `Some(n)` for `n` bytes, `None` when it would block. Keeps the
    /// readiness: a short read means drained, and a new edge will come.
    #[inline]
    pub(crate) fn read_some(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        let ready = &mut self.ready;
        let room = buf.len();
        loop {
            match self.sock.read(buf) {
                Ok(0) => {
                    ready.readable = false;
                    return Ok(Some(0));
                }
                Ok(n) => {
                    if n < room && !ready.read_closed {
                        // Drained: with edge-triggered readiness, new bytes
                        // bring a new event. (After a FIN we read on to see 0.)
                        ready.readable = false;
                    }
                    return Ok(Some(n));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    ready.readable = false;
                    return Ok(None);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    ready.error = false;
                    return Err(e);
                }
            }
        }
    }

    /// Writes once from `buf` (not empty); returns how much went out, 0
    /// when the socket is full. Keeps the readiness: a short write means
    /// full, and a new edge will come.
    #[inline]
    pub(crate) fn write_some(&mut self, buf: &[u8]) -> io::Result<usize> {
        loop {
            match self.sock.write(buf) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    if n < buf.len() {
                        // The socket buffer is full; the next edge says when not.
                        self.ready.writable = false;
                    }
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.ready.writable = false;
                    return Ok(0);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.ready.error = false;
                    return Err(e);
                }
            }
        }
    }
}

impl<S: Socket> Transport for Plain<S> {
    fn update(&mut self, event: &Event) {
        let r = &mut self.ready;
        r.readable |= event.is_readable() || event.is_read_closed();
        r.writable |= event.is_writable();
        r.read_closed |= event.is_read_closed();
        if event.is_error() || event.is_write_closed() {
            // Read what arrived before it; the read then reports it.
            r.readable = true;
            r.read_closed = true;
            r.error |= event.is_error();
        }
    }

    fn may_read(&self) -> bool {
        self.ready.readable
    }

    fn may_write(&self) -> bool {
        self.ready.writable
    }

    fn fill(
        &mut self,
        rbuf: &mut ReadBuf,
        pool: &mut BufPool,
        input_closed: &mut bool,
    ) -> io::Result<bool> {
        if !self.ready.readable || *input_closed {
            return Ok(false);
        }
        pool.attach_read(rbuf);
        let spare = rbuf.spare();
        if spare.is_empty() {
            // Full, and the machine is not consuming: the read is still owed.
            return Ok(false);
        }
        match self.read_some(spare)? {
            Some(0) => {
                *input_closed = true;
                Ok(true)
            }
            Some(n) => {
                rbuf.filled(n);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn flush(&mut self, wbuf: &mut WriteBuf, _pool: &mut BufPool) -> io::Result<usize> {
        let mut written = 0;
        while !wbuf.is_empty() {
            let n = self.write_some(wbuf.pending())?;
            written += n;
            wbuf.advance(n);
            if !self.ready.writable {
                break;
            }
        }
        Ok(written)
    }

    fn shutdown_write(&mut self, _pool: &mut BufPool) {
        self.sock.shutdown_write();
    }

    fn pending_error(&mut self) -> Option<io::Error> {
        if !std::mem::take(&mut self.ready.error) {
            return None;
        }
        Some(
            self.sock
                .take_error()
                .ok()
                .flatten()
                .unwrap_or_else(|| io::ErrorKind::ConnectionReset.into()),
        )
    }

    fn detach(self, read_buf: Vec<u8>) -> Option<Detached> {
        self.sock.detach(read_buf)
    }
}

impl<S: Socket> Source for Plain<S> {
    fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        self.sock.register(registry, token, interests)
    }

    fn reregister(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        self.sock.reregister(registry, token, interests)
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        self.sock.deregister(registry)
    }
}
