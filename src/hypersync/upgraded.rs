//! [`Upgraded`]: a connection that switched protocols, as a blocking
//! `Read + Write` — the client's ([`RequestBuilder::upgrade`]) and the
//! server's ([`Response::upgrade`]) alike.
//!
//! [`RequestBuilder::upgrade`]: super::RequestBuilder::upgrade
//! [`Response::upgrade`]: super::Response::upgrade

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};

use crate::Detached;

/// A connection that switched protocols — after a `101 Switching
/// Protocols` to a request with `Upgrade`, or a `2xx` to `CONNECT` — as
/// blocking [`Read`] + [`Write`] on the socket, the event loop left
/// behind. The client gets one from
/// [`RequestBuilder::upgrade`](super::RequestBuilder::upgrade), a server
/// handler from [`Response::upgrade`](super::Response::upgrade).
///
/// `read` returns first the bytes the peer sent right behind the head
/// (they often come in the same packet as the head), then what the stream
/// gives; `Ok(0)` is the peer's FIN. `write` goes straight to the socket:
/// nothing is buffered in between, so a peer that reads slowly makes
/// `write` block (memory stays bounded by the kernel's socket buffers).
/// [`shutdown_write`](Self::shutdown_write) sends our FIN while reading
/// goes on (a half-close); dropping it closes the connection.
///
/// It is plain TCP: over TLS the session cannot leave the event loop, and
/// the upgrade is refused before anything is sent (see each side's
/// method).
pub struct Upgraded {
    conn: Detached,
}

impl Upgraded {
    /// The connection the loop handed over, made blocking.
    pub(crate) fn new(conn: Detached) -> io::Result<Upgraded> {
        conn.stream().set_nonblocking(false)?;
        Ok(Upgraded { conn })
    }

    /// The socket (blocking). Set timeouts here:
    /// `conn.stream().set_read_timeout(Some(d))`.
    pub fn stream(&self) -> &TcpStream {
        self.conn.stream()
    }

    /// Bytes the peer sent behind the head that `read` has not returned
    /// yet.
    pub fn read_buf(&self) -> &[u8] {
        self.conn.read_buf()
    }

    /// Ends our side (sends FIN): the peer reads its end, we may still
    /// read.
    pub fn shutdown_write(&self) -> io::Result<()> {
        self.conn.stream().shutdown(Shutdown::Write)
    }

    /// The socket and the early bytes not read yet (to hand both to code
    /// of your own, a WebSocket library for example).
    pub fn into_parts(self) -> (TcpStream, Vec<u8>) {
        self.conn.into_parts()
    }
}

impl Read for Upgraded {
    /// The early bytes first, then the stream.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.conn.read(buf)
    }
}

impl Write for Upgraded {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.conn.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.conn.flush()
    }
}

impl fmt::Debug for Upgraded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Upgraded")
            .field("stream", self.conn.stream())
            .field("read_buf", &self.conn.read_buf().len())
            .finish()
    }
}
