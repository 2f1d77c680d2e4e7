//! [`Decoder`] and [`Encoder`]: a message body as a handler sees it, on
//! either side — the request body a server handler reads and the response
//! body it writes, the request body a client handler writes and the
//! response body it reads.

use std::io;

use crate::error::ParseError;
use crate::proto;
use crate::proto::h1::decode::BodyDecoder;
use crate::proto::h1::encode::{BodyEncoder, OpenChunk};
use crate::rt::buf::{ReadBuf, WriteBuf};

/// The body being read: the request body in a server's
/// [`on_request_readable`](crate::server::Handler::on_request_readable),
/// the response body in a client's
/// [`on_response_readable`](crate::client::Handler::on_response_readable).
///
/// Implements [`io::Read`]: `Ok(0)` means the body is complete (for a
/// body that runs until the peer closes, when it has closed);
/// [`WouldBlock`](io::ErrorKind::WouldBlock) means no more bytes are
/// buffered now — return [`Next::read()`](crate::Next::read) to be called
/// again when there are. Chunked framing is removed; what you read is the
/// body itself. A malformed body reads as
/// [`InvalidData`](io::ErrorKind::InvalidData), one cut short as
/// [`UnexpectedEof`](io::ErrorKind::UnexpectedEof).
///
/// ```
/// use std::io::{ErrorKind, Read};
/// use nextloop::Decoder;
/// use nextloop::Next;
///
/// /// Appends what has arrived to `out`; `Next::write()` at the end.
/// fn collect(body: &mut Decoder<'_>, out: &mut Vec<u8>) -> Next {
///     let mut buf = [0; 4096];
///     loop {
///         match body.read(&mut buf) {
///             Ok(0) => return Next::write(),
///             Ok(n) => out.extend_from_slice(&buf[..n]),
///             Err(e) if e.kind() == ErrorKind::WouldBlock => return Next::read(),
///             Err(_) => return Next::remove(),
///         }
///     }
/// }
/// ```
pub struct Decoder<'a> {
    pub(crate) decoder: &'a mut BodyDecoder,
    pub(crate) input: &'a mut ReadBuf,
    /// The peer has closed its side: nothing more will arrive.
    pub(crate) input_closed: bool,
    /// Set when the body is malformed; the connection then ends.
    pub(crate) error: &'a mut Option<proto::Error>,
    /// `read` has returned the end of the body (`Ok(0)`) in this callback:
    /// the handler has been told, whatever it does next.
    pub(crate) ended: bool,
    /// Body bytes that may still be read (a server's `max_body_size`, for
    /// a body whose length was not declared); past it, the body fails.
    pub(crate) budget: Option<&'a mut u64>,
}

impl<'a> Decoder<'a> {
    pub(crate) fn new(
        decoder: &'a mut BodyDecoder,
        input: &'a mut ReadBuf,
        input_closed: bool,
        error: &'a mut Option<proto::Error>,
    ) -> Decoder<'a> {
        Decoder {
            decoder,
            input,
            input_closed,
            error,
            ended: false,
            budget: None,
        }
    }
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

impl std::fmt::Debug for Decoder<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoder")
            .field("remaining", &self.remaining())
            .field("eof", &self.is_eof())
            .field("buffered", &self.input.len())
            .finish()
    }
}

impl io::Read for Decoder<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if let Some(e) = *self.error {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                ParseError::from(e),
            ));
        }
        if self.decoder.is_done() {
            self.ended = true;
            return Ok(0);
        }
        if out.is_empty() {
            return Ok(0);
        }
        loop {
            let input = self.input.data();
            let step = match self.decoder.decode(input, out.len()) {
                Ok(step) => step,
                Err(e) => {
                    *self.error = Some(e);
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        ParseError::from(e),
                    ));
                }
            };
            let n = step.data.len();
            if let Some(budget) = &mut self.budget {
                if n as u64 > **budget {
                    let e = proto::Error::BodyTooLarge;
                    *self.error = Some(e);
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        ParseError::from(e),
                    ));
                }
                **budget -= n as u64;
            }
            out[..n].copy_from_slice(&input[step.data]);
            self.input.consume(step.consumed);
            if n > 0 {
                return Ok(n);
            }
            if self.decoder.is_done() {
                self.ended = true;
                return Ok(0);
            }
            if step.consumed == 0 {
                if !self.input_closed {
                    return Err(io::ErrorKind::WouldBlock.into());
                }
                // The peer has closed: the end of a body that runs until
                // then, or one cut short.
                if self.input.is_empty() && self.decoder.eof_reached() {
                    self.ended = true;
                    return Ok(0);
                }
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "body cut short",
                ));
            }
        }
    }
}

/// The body being written: the response body in a server's
/// [`on_response_writable`](crate::server::Handler::on_response_writable),
/// the request body in a client's
/// [`on_request_writable`](crate::client::Handler::on_request_writable).
///
/// Implements [`io::Write`]. Bytes are framed as the head declared
/// (Content-Length, chunked, or raw until close) and buffered; the loop
/// sends them when the callback returns. The writes of one callback make
/// one chunk of a chunked body (`write!` is several writes), its size
/// line written when the callback returns.
/// [`WouldBlock`](io::ErrorKind::WouldBlock) means the buffer is full —
/// return [`Next::write()`](crate::Next::write) to be called again once it
/// has drained. Writing past a declared `Content-Length` is an error.
///
/// ```
/// use std::io::{ErrorKind, Write};
/// use nextloop::Encoder;
/// use nextloop::Next;
///
/// /// Writes `data[*sent..]`, as much as fits; `Next::end()` when all is out.
/// fn send(body: &mut Encoder<'_>, data: &[u8], sent: &mut usize) -> Next {
///     while *sent < data.len() {
///         match body.write(&data[*sent..]) {
///             Ok(n) => *sent += n,
///             Err(e) if e.kind() == ErrorKind::WouldBlock => return Next::write(),
///             Err(_) => return Next::remove(),
///         }
///     }
///     Next::end()
/// }
/// ```
pub struct Encoder<'a> {
    pub(crate) encoder: &'a mut BodyEncoder,
    pub(crate) output: &'a mut WriteBuf,
    pub(crate) high_water: usize,
    /// Body bytes taken during this callback (written or, for a body
    /// that is not sent, swallowed): whether the handler made progress.
    pub(crate) accepted: usize,
    /// The chunk this callback's writes go into (chunked bodies): one
    /// chunk per callback, not per write, closed when the `Encoder` goes.
    chunk: Option<OpenChunk>,
}

impl<'a> Encoder<'a> {
    pub(crate) fn new(
        encoder: &'a mut BodyEncoder,
        output: &'a mut WriteBuf,
        high_water: usize,
    ) -> Encoder<'a> {
        Encoder {
            encoder,
            output,
            high_water,
            accepted: 0,
            chunk: None,
        }
    }

    /// Body bytes still owed, when a `Content-Length` was declared.
    pub fn remaining(&self) -> Option<u64> {
        self.encoder.remaining()
    }

    /// Can more be written now without [`WouldBlock`](io::ErrorKind::WouldBlock)?
    pub fn has_capacity(&self) -> bool {
        self.output.len() < self.high_water
    }
}

impl Drop for Encoder<'_> {
    /// The callback is over: its chunk gets its size.
    fn drop(&mut self) {
        if let Some(chunk) = self.chunk.take() {
            chunk.close(&mut self.output.buf);
        }
    }
}

impl std::fmt::Debug for Encoder<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoder")
            .field("remaining", &self.remaining())
            .field("buffered", &self.output.len())
            .finish()
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
                "body is longer than its Content-Length",
            ));
        }
        let room = self.high_water.saturating_sub(self.output.len());
        if room == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = data.len().min(room);
        let most = self.high_water;
        let buf = &mut self.output.buf;
        let taken = self.encoder.encode(&data[..n], buf, &mut self.chunk, most);
        self.accepted += taken;
        Ok(taken)
    }

    /// Buffered bytes are sent when the callback returns; this does nothing.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
