//! [`Detached`]: a connection handed over by the loop, with the bytes it
//! had already read.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::TcpStream;

/// A connection taken out of the event loop: the stream, and every byte
/// the loop had read from it that no HTTP exchange consumed.
///
/// A handler gets one in `on_remove` after it returned
/// [`Next::remove()`](crate::Next::remove) (server and client alike).
/// Bytes that arrived in the same read as the request head — the first
/// bytes of another protocol after an upgrade, for example — are in
/// [`read_buf`](Detached::read_buf), and [`Read`] returns them before
/// anything more from the stream, so nothing the peer sent is lost.
///
/// The stream is still in **non-blocking** mode, as the loop used it:
/// `on_remove` runs on the loop thread, which must not block. Move it to a
/// thread of its own and call
/// [`set_nonblocking(false)`](TcpStream::set_nonblocking) for blocking use.
///
/// ```no_run
/// use std::io::{Read, Write};
/// use nextloop::Detached;
///
/// fn relay(conn: Detached) {
///     std::thread::spawn(move || {
///         let mut conn = conn;
///         conn.stream().set_nonblocking(false).unwrap();
///         let mut buf = [0; 4096];
///         // First the bytes the loop had read, then the stream.
///         while let Ok(n @ 1..) = conn.read(&mut buf) {
///             if conn.write_all(&buf[..n]).is_err() {
///                 break;
///             }
///         }
///     });
/// }
/// ```
pub struct Detached {
    stream: TcpStream,
    read_buf: Vec<u8>,
    /// How much of `read_buf` [`Read`] has returned.
    pos: usize,
}

impl Detached {
    pub(crate) fn new(stream: TcpStream, read_buf: Vec<u8>) -> Detached {
        Detached {
            stream,
            read_buf,
            pos: 0,
        }
    }

    /// Bytes read from the peer that no exchange consumed, not yet
    /// returned by [`Read`].
    pub fn read_buf(&self) -> &[u8] {
        &self.read_buf[self.pos..]
    }

    /// The stream (non-blocking; see above).
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    /// The stream, and the bytes of [`read_buf`](Self::read_buf).
    pub fn into_parts(mut self) -> (TcpStream, Vec<u8>) {
        self.read_buf.drain(..self.pos);
        (self.stream, self.read_buf)
    }
}

impl Read for Detached {
    /// The buffered bytes first, then the stream.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let rest = &self.read_buf[self.pos..];
        if rest.is_empty() {
            return self.stream.read(buf);
        }
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        self.pos += n;
        Ok(n)
    }
}

impl Write for Detached {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.stream.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}

impl fmt::Debug for Detached {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Detached")
            .field("stream", &self.stream)
            .field("read_buf", &self.read_buf().len())
            .finish()
    }
}
