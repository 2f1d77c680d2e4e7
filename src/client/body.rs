//! [`Encoder`] and [`Decoder`]: the request and response bodies as a
//! client handler sees them.

use std::io;

use crate::buf::{ReadBuf, WriteBuf};
use crate::proto::decode::BodyDecoder;
use crate::proto::encode::BodyEncoder;
use crate::proto::response_head::Malformed;

/// The request body, writable in
/// [`on_request_writable`](crate::client::Handler::on_request_writable).
///
/// Implements [`io::Write`]. Bytes are framed as the head declared
/// (`Content-Length` or chunked) and buffered; the loop sends them when
/// the callback returns. [`WouldBlock`](io::ErrorKind::WouldBlock) means
/// the buffer is full — return [`Next::write()`](crate::Next::write) to be
/// called again once it has drained. Writing past a declared
/// `Content-Length` is an error.
///
/// ```
/// use std::io::{ErrorKind, Write};
/// use nextloop::client::Encoder;
/// use nextloop::Next;
///
/// /// Writes `data[*sent..]`, as much as fits; `Next::read()` when all is out.
/// fn send(body: &mut Encoder<'_>, data: &[u8], sent: &mut usize) -> Next {
///     while *sent < data.len() {
///         match body.write(&data[*sent..]) {
///             Ok(n) => *sent += n,
///             Err(e) if e.kind() == ErrorKind::WouldBlock => return Next::write(),
///             Err(_) => return Next::remove(),
///         }
///     }
///     Next::read()
/// }
/// ```
pub struct Encoder<'a> {
    pub(crate) encoder: &'a mut BodyEncoder,
    pub(crate) output: &'a mut WriteBuf,
    pub(crate) high_water: usize,
}

impl Encoder<'_> {
    /// Body bytes still owed, when a `Content-Length` was declared.
    pub fn remaining(&self) -> Option<u64> {
        self.encoder.remaining()
    }

    /// Can more be written now without [`WouldBlock`](io::ErrorKind::WouldBlock)?
    pub fn has_capacity(&self) -> bool {
        self.output.len() < self.high_water
    }
}

impl io::Write for Encoder<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if data.is_empty() {
            return Ok(0);
        }
        if self.encoder.remaining() == Some(0) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "request body is longer than its Content-Length",
            ));
        }
        let room = self.high_water.saturating_sub(self.output.len());
        if room == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = data.len().min(room);
        Ok(self.encoder.encode(&data[..n], &mut self.output.buf))
    }

    /// Buffered bytes are sent when the callback returns; this does nothing.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The response body, readable in
/// [`on_response_readable`](crate::client::Handler::on_response_readable).
///
/// Implements [`io::Read`]: `Ok(0)` means the body is complete (for a body
/// that runs until the server closes, when it has closed);
/// [`WouldBlock`](io::ErrorKind::WouldBlock) means no more bytes are
/// buffered now — return [`Next::read()`](crate::Next::read) to be called
/// again when there are. Chunked framing is removed. A malformed body reads
/// as [`InvalidData`](io::ErrorKind::InvalidData), one cut short as
/// [`UnexpectedEof`](io::ErrorKind::UnexpectedEof); the handler then also
/// gets [`on_error`](crate::client::Handler::on_error).
///
/// ```
/// use std::io::{ErrorKind, Read};
/// use nextloop::client::Decoder;
/// use nextloop::Next;
///
/// /// Appends what has arrived to `out`; `Next::end()` at the end.
/// fn collect(body: &mut Decoder<'_>, out: &mut Vec<u8>) -> Next {
///     let mut buf = [0; 4096];
///     loop {
///         match body.read(&mut buf) {
///             Ok(0) => return Next::end(),
///             Ok(n) => out.extend_from_slice(&buf[..n]),
///             Err(e) if e.kind() == ErrorKind::WouldBlock => return Next::read(),
///             // The handler's on_error says what went wrong.
///             Err(_) => return Next::read(),
///         }
///     }
/// }
/// ```
pub struct Decoder<'a> {
    pub(crate) decoder: &'a mut BodyDecoder,
    pub(crate) input: &'a mut ReadBuf,
    /// The server has closed its side: nothing more will arrive.
    pub(crate) input_closed: bool,
    pub(crate) error: &'a mut Option<Malformed>,
}

impl Decoder<'_> {
    /// Has the whole body been read?
    pub fn is_eof(&self) -> bool {
        self.decoder.is_done()
    }

    /// Body bytes still to come, when the length is known.
    pub fn remaining(&self) -> Option<u64> {
        self.decoder.remaining()
    }
}

impl io::Read for Decoder<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if let Some(e) = self.error {
            return Err(io::Error::new(io::ErrorKind::InvalidData, e.0));
        }
        if out.is_empty() || self.decoder.is_done() {
            return Ok(0);
        }
        loop {
            let input = self.input.data();
            let step = match self.decoder.decode(input, out.len()) {
                Ok(step) => step,
                Err(e) => {
                    let e = Malformed::from(e);
                    *self.error = Some(e);
                    return Err(io::Error::new(io::ErrorKind::InvalidData, e.0));
                }
            };
            let n = step.data.len();
            out[..n].copy_from_slice(&input[step.data]);
            self.input.consume(step.consumed);
            if n > 0 {
                return Ok(n);
            }
            if self.decoder.is_done() {
                return Ok(0);
            }
            if step.consumed == 0 {
                if !self.input_closed {
                    return Err(io::ErrorKind::WouldBlock.into());
                }
                if self.input.is_empty() && self.decoder.eof_reached() {
                    return Ok(0);
                }
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "response body cut short",
                ));
            }
        }
    }
}
