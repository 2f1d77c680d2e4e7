//! [`Response`]: status, header fields and a streamed body, written on a
//! worker thread and carried to the event loop in chunks.

use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender};

use super::link::Link;
use super::Upgraded;
use crate::proto::fields::{self, checked_field};
use crate::proto::h1::Switch;
use crate::{server, Detached};

/// Body bytes are sent to the loop in chunks of up to this size.
pub(crate) const CHUNK: usize = 64 * 1024;

/// What a worker sends to its bridge, in this order: `Head`, `Body`s,
/// `End` — or `Whole` alone, or `Switch` alone — or `Abort` at any point
/// after the head.
pub(crate) enum Out {
    Head(Head),
    /// A head that switches protocols (`101`, `2xx` to CONNECT): the
    /// bridge writes it, then hands the connection over.
    Switch(Head),
    /// A head, its complete body, and the end: one message for a small
    /// response.
    Whole(Head, Vec<u8>),
    Body(Vec<u8>),
    End,
    /// Something failed after the head went out: close the connection.
    Abort,
}

/// A response head as the worker built it.
pub(crate) struct Head {
    status: u16,
    /// `name: value\r\n` for each field, in order (names are tokens and
    /// values hold no CR or LF, both checked by [`Response::header`]).
    fields: Vec<u8>,
    content_length: Option<u64>,
    /// [`Response::notify_sent`] was asked.
    notify_sent: bool,
}

impl Head {
    /// Writes this head into the connection's response.
    pub(crate) fn apply(&self, res: &mut server::Response<'_>, with_length: bool) {
        res.set_status(self.status);
        for line in self.fields.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let colon = line.iter().position(|&b| b == b':').unwrap_or(0);
            let name = std::str::from_utf8(&line[..colon]).unwrap_or_default();
            res.header(name, &line[colon + 2..]);
        }
        if let (true, Some(n)) = (with_length, self.content_length) {
            res.set_content_length(n);
        }
        if self.notify_sent {
            res.notify_sent();
        }
    }
}

/// The response to a [`Request`](super::Request): status, header fields,
/// and a body you write with [`io::Write`].
///
/// Nothing goes out until the first body chunk fills up (64 KiB), a
/// [`flush`](io::Write::flush), or the end. Then the head is sent — status
/// and fields are fixed from that moment — and body bytes follow as you
/// write them: with `Content-Length` if you set one, else chunked on
/// HTTP/1.1 (on HTTP/1.0, until the connection closes). A small response
/// that is complete before the first chunk fills goes out in one piece,
/// with its length.
///
/// The response is finished when dropped, or by
/// [`finish`](Response::finish), which also waits until the event loop has
/// taken all of it. Writes block while the loop has a few chunks (at most
/// about 256 KiB) it has not passed to the client yet, so a slow client
/// slows the writer down instead of filling memory.
///
/// The server adds `Date`, the framing fields and `Connection`; `HEAD`
/// requests, 204 and 304 get no body on the wire whatever is written.
///
/// ```
/// use std::io::Write;
/// use nextloop::hypersync::{Request, Response};
///
/// fn handler(_req: &mut Request, res: &mut Response) {
///     res.set_status(200).header("Content-Type", "text/plain");
///     for i in 0..3 {
///         // Streamed (chunked, as no length was set): each flush sends
///         // what is written so far.
///         let _ = writeln!(res, "line {i}");
///         let _ = res.flush();
///     }
/// }
/// ```
pub struct Response {
    link: Arc<Link>,
    out: Sender<Out>,
    /// A message (or the bridge's end) when the loop has taken it all.
    taken: Receiver<()>,
    /// When the last byte was written to the socket (after `notify_sent`).
    sent: Receiver<Instant>,
    notify_sent: bool,
    status: u16,
    fields: Vec<u8>,
    content_length: Option<u64>,
    head_sent: bool,
    /// Body bytes not yet sent.
    buf: Vec<u8>,
    /// Body bytes accepted by `write`.
    written: u64,
    finished: bool,
    /// Answering a `HEAD` request: no body goes out, whatever its length.
    head_request: bool,
    /// The connection is gone (a send failed): later writes fail at once.
    broken: bool,
    /// What the request may switch to.
    switch: Option<Switch>,
    /// Where the connection comes after a switching head; `None` where it
    /// cannot leave the loop (TLS, a Unix socket).
    handoff: Option<Receiver<Detached>>,
}

fn gone() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "connection closed")
}

impl Response {
    pub(crate) fn new(
        link: Arc<Link>,
        out: Sender<Out>,
        taken: Receiver<()>,
        sent: Receiver<Instant>,
        head_request: bool,
    ) -> Response {
        Response {
            link,
            out,
            taken,
            sent,
            notify_sent: false,
            status: 200,
            fields: Vec::new(),
            content_length: None,
            head_sent: false,
            buf: Vec::new(),
            written: 0,
            finished: false,
            head_request,
            broken: false,
            switch: None,
            handoff: None,
        }
    }

    /// The request may switch to `switch`; the connection comes through
    /// `handoff` after the switch, if it can leave the loop.
    pub(crate) fn may_switch(
        mut self,
        switch: Option<Switch>,
        handoff: Option<Receiver<Detached>>,
    ) -> Response {
        self.switch = switch;
        self.handoff = handoff;
        self
    }

    /// The status code (200 unless set).
    pub fn status(&self) -> u16 {
        self.status
    }

    /// Sets the status code.
    ///
    /// `101 Switching Protocols` is allowed in answer to an HTTP/1.1
    /// request with `Upgrade` (and no body); then take the connection with
    /// [`upgrade`](Self::upgrade).
    ///
    /// # Panics
    ///
    /// If `status` is not in `200..=999` (interim 1xx responses are sent by
    /// the server itself) except a `101` to an `Upgrade` request, or once
    /// the head has been sent.
    ///
    /// `status` is a `u16`, or an `http::StatusCode` with the `http`
    /// feature ([`IntoStatus`](crate::IntoStatus)).
    pub fn set_status(&mut self, status: impl crate::IntoStatus) -> &mut Self {
        let status = status.into_status();
        if !(status == 101 && self.switch == Some(Switch::Upgrade)) {
            server::response::assert_final(status);
        }
        self.assert_head_open("set_status");
        self.status = status;
        self
    }

    /// Adds a header field.
    ///
    /// `Content-Length` sets the body length (like
    /// [`set_content_length`](Self::set_content_length)); `Connection:
    /// close` closes the connection after this response;
    /// `Transfer-Encoding` is decided by the server.
    ///
    /// # Panics
    ///
    /// If `name` is not a valid token, `value` holds CR, LF, NUL or
    /// another control byte, a `Content-Length` is not a number, or once
    /// the head has been sent.
    ///
    /// ```
    /// use nextloop::hypersync::{Request, Response};
    ///
    /// fn moved(_req: &mut Request, res: &mut Response) {
    ///     res.set_status(301)
    ///         .header("Location", "/new-place")
    ///         .header("Cache-Control", "max-age=3600");
    /// }
    /// ```
    pub fn header(&mut self, name: impl AsRef<str>, value: impl AsRef<[u8]>) -> &mut Self {
        let (name, value) = (name.as_ref(), value.as_ref());
        self.assert_head_open("header");
        if let Some(n) = checked_field(name, value) {
            self.content_length = Some(n);
        } else {
            fields::push(&mut self.fields, name.as_bytes(), value);
        }
        self
    }

    /// Declares the body length: the body is sent with `Content-Length`,
    /// writing more is an error and finishing with less closes the
    /// connection.
    ///
    /// # Panics
    ///
    /// Once the head has been sent.
    ///
    /// ```
    /// use std::io::Write;
    /// use nextloop::hypersync::{Request, Response};
    ///
    /// fn send_file(_req: &mut Request, res: &mut Response) -> std::io::Result<()> {
    ///     let mut file = std::fs::File::open("/etc/hostname")?;
    ///     res.set_content_length(file.metadata()?.len());
    ///     std::io::copy(&mut file, res)?;
    ///     Ok(())
    /// }
    /// ```
    pub fn set_content_length(&mut self, len: u64) -> &mut Self {
        self.assert_head_open("set_content_length");
        self.content_length = Some(len);
        self
    }

    /// The declared body length, if any.
    pub fn content_length(&self) -> Option<u64> {
        self.content_length
    }

    /// Has the head been sent (status and fields can no longer change)?
    pub fn head_sent(&self) -> bool {
        self.head_sent
    }

    /// Finishes the response and waits until the event loop has taken all
    /// of it: the bytes are then queued on the connection, which writes
    /// them out without further help from this thread. Later writes fail;
    /// finishing again does nothing.
    ///
    /// Errors: the connection is gone
    /// ([`BrokenPipe`](io::ErrorKind::BrokenPipe)), or the body is shorter
    /// than its `Content-Length`
    /// ([`InvalidInput`](io::ErrorKind::InvalidInput); the server then
    /// closes the connection, the only way to tell the client).
    ///
    /// ```
    /// use std::io::Write;
    /// use nextloop::hypersync::{Request, Response};
    ///
    /// fn handler(_req: &mut Request, res: &mut Response) {
    ///     res.set_content_length(5);
    ///     if res.write_all(b"hello").and_then(|()| res.finish()).is_ok() {
    ///         // The loop has the whole response: log it as sent.
    ///     }
    /// }
    /// ```
    pub fn finish(&mut self) -> io::Result<()> {
        if self.finished {
            return Ok(());
        }
        self.finished = true;
        self.send_rest()?;
        self.taken.recv().map_err(|_| gone())?;
        let bodiless = self.head_request || self.status == 204 || self.status == 304;
        match self.content_length {
            Some(n) if self.written < n && !bodiless => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "response body of {} bytes is shorter than its Content-Length {n}",
                    self.written
                ),
            )),
            _ => Ok(()),
        }
    }

    /// Asks to learn when the last byte of the response has been written
    /// to the socket (to the kernel, not acknowledged by the peer): then
    /// [`finish_sent`](Self::finish_sent) waits for it. Costs the server a
    /// wait for its output before it reads the next pipelined request.
    ///
    /// # Panics
    ///
    /// After the head was sent.
    pub fn notify_sent(&mut self) -> &mut Self {
        self.assert_head_open("notify_sent");
        self.notify_sent = true;
        self
    }

    /// Finishes the response like [`finish`](Self::finish), then waits
    /// until its last byte has been written to the socket, and returns
    /// when that was (see
    /// [`Handler::on_response_sent`](crate::server::Handler::on_response_sent)).
    /// Asks for it itself if the head is not out yet; after a head sent
    /// without [`notify_sent`](Self::notify_sent) it fails with
    /// [`InvalidInput`](io::ErrorKind::InvalidInput). A connection that
    /// fails (or stalls past the server's `io_timeout`) first:
    /// [`BrokenPipe`](io::ErrorKind::BrokenPipe).
    ///
    /// ```
    /// use nextloop::hypersync::{Request, Response};
    ///
    /// fn handler(_req: &mut Request, res: &mut Response) {
    ///     res.header("Content-Type", "text/plain");
    ///     if let Ok(at) = res.finish_sent() {
    ///         // The kernel has every byte of it since `at`.
    ///         let _ = at;
    ///     }
    /// }
    /// ```
    pub fn finish_sent(&mut self) -> io::Result<Instant> {
        if !self.head_sent {
            self.notify_sent = true;
        } else if !self.notify_sent {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "Response::finish_sent after a head sent without notify_sent",
            ));
        }
        self.finish()?;
        self.sent.recv().map_err(|_| gone())
    }

    /// Switches protocols: sends the head — a `101` (with the `Upgrade`
    /// field naming the protocol; the server adds `Connection: upgrade`)
    /// to a request with `Upgrade`, or a `2xx` to `CONNECT` — with no
    /// framing field and no body, then takes the connection out of the
    /// event loop and returns it as a blocking [`Upgraded`] on this
    /// thread: the bytes the client sent behind its request head are the
    /// first it reads, `Ok(0)` is the client's FIN,
    /// [`shutdown_write`](Upgraded::shutdown_write) half-closes our side,
    /// and dropping it closes the connection. The response is finished:
    /// later writes fail.
    ///
    /// The connection keeps the server's
    /// [`io_timeout`](crate::server::Server::io_timeout) as its read and
    /// write timeouts (a `read` or `write` that waits longer fails with
    /// [`WouldBlock`](io::ErrorKind::WouldBlock) or
    /// [`TimedOut`](io::ErrorKind::TimedOut)), so a client that goes
    /// quiet or stops reading cannot hold the thread for ever; change them
    /// on [`Upgraded::stream`] (for example no read timeout for a
    /// WebSocket that may idle, with pings of its own).
    ///
    /// The connection is no longer the server's: a graceful shutdown
    /// neither waits for it nor ends it, and it no longer counts against
    /// the server's connection limit; the thread is yours until you drop
    /// it.
    ///
    /// Errors, with nothing sent (answer the request otherwise, e.g.
    /// `501`):
    /// - [`InvalidInput`](io::ErrorKind::InvalidInput): the status does
    ///   not switch this request (not a `101` to an HTTP/1.1 `Upgrade`
    ///   request, not a `2xx` to `CONNECT`; HTTP/2 never switches here),
    ///   or the head was sent already;
    /// - [`Unsupported`](io::ErrorKind::Unsupported): the connection
    ///   cannot leave the loop — over TLS (the session lives there) or on
    ///   a Unix socket. Use a native [`Handler`](crate::server::Handler)'s
    ///   raw mode there.
    ///
    /// After the head went out: [`BrokenPipe`](io::ErrorKind::BrokenPipe)
    /// if the connection failed before it was handed over.
    ///
    /// ```no_run
    /// use std::io::{Read, Write};
    /// use nextloop::hypersync::{Request, Response, Server};
    ///
    /// // An echo in a protocol of our own, with blocking code.
    /// fn echo(req: &mut Request, res: &mut Response) {
    ///     if req.header("upgrade") != Some(b"echo") {
    ///         res.set_status(426).header("Upgrade", "echo");
    ///         return;
    ///     }
    ///     res.set_status(101).header("Upgrade", "echo");
    ///     let Ok(mut conn) = res.upgrade() else { return };
    ///     let mut buf = [0u8; 4096];
    ///     while let Ok(n @ 1..) = conn.read(&mut buf) {
    ///         if conn.write_all(&buf[..n]).is_err() {
    ///             return;
    ///         }
    ///     }
    ///     let _ = conn.shutdown_write(); // the client's FIN: ours
    /// }
    ///
    /// let listening = Server::bind("127.0.0.1:0")?.handle(echo)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn upgrade(&mut self) -> io::Result<Upgraded> {
        if self.head_sent || self.finished {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "Response::upgrade after the head was sent",
            ));
        }
        if !Switch::by(self.switch, self.status) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "a {} does not switch this request (a 101 to an HTTP/1.1 request with \
                     Upgrade does, or a 2xx to CONNECT)",
                    self.status
                ),
            ));
        }
        let Some(handoff) = self.handoff.take() else {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "this connection cannot leave the event loop (TLS or a Unix socket): \
                 use a native Handler's raw mode",
            ));
        };
        self.finished = true;
        self.notify_sent = false;
        let head = self.take_head();
        self.send(Out::Switch(head))?;
        // The bridge is dropped without handing over only when the
        // connection failed: the channel then closes.
        let conn = handoff.recv().map_err(|_| gone())?;
        Upgraded::new(conn)
    }

    /// Finishes without waiting (drop, and the pool after a handler).
    pub(crate) fn end(&mut self) {
        if !self.finished {
            self.finished = true;
            let _ = self.send_rest();
        }
    }

    /// The handler failed: `500` with `why` if the head is not out yet,
    /// else the connection is closed.
    pub(crate) fn fail(&mut self, why: &str) {
        if self.finished {
            return;
        }
        self.finished = true;
        if self.broken {
            return;
        }
        let msg = if self.head_sent {
            Out::Abort
        } else {
            let body = format!("Internal Server Error: {why}\n").into_bytes();
            let head = Head {
                status: 500,
                fields: b"Content-Type: text/plain; charset=utf-8\r\n".to_vec(),
                content_length: None,
                notify_sent: false,
            };
            Out::Whole(head, body)
        };
        let _ = self.send(msg);
    }

    /// The request could not be queued; nothing will be sent.
    pub(crate) fn defuse(&mut self) {
        self.finished = true;
        self.broken = true;
    }

    fn assert_head_open(&self, what: &str) {
        assert!(
            !self.head_sent,
            "Response::{what} called after the head was sent"
        );
    }

    fn take_head(&mut self) -> Head {
        self.head_sent = true;
        Head {
            status: self.status,
            fields: std::mem::take(&mut self.fields),
            content_length: self.content_length,
            notify_sent: self.notify_sent,
        }
    }

    fn send(&mut self, msg: Out) -> io::Result<()> {
        if self.broken {
            return Err(gone());
        }
        if self.out.send(msg).is_err() {
            self.broken = true;
            return Err(gone());
        }
        self.link.output_queued();
        Ok(())
    }

    /// Sends the head if it is not out yet, then the buffered body bytes.
    fn send_buffered(&mut self) -> io::Result<()> {
        if !self.head_sent {
            let head = self.take_head();
            self.send(Out::Head(head))?;
        }
        if !self.buf.is_empty() {
            let chunk = std::mem::take(&mut self.buf);
            self.send(Out::Body(chunk))?;
        }
        Ok(())
    }

    /// Sends everything left and the end.
    fn send_rest(&mut self) -> io::Result<()> {
        let whole = !self.head_sent
            && self
                .content_length
                .is_none_or(|n| n == self.buf.len() as u64);
        if whole {
            let head = self.take_head();
            let body = std::mem::take(&mut self.buf);
            return self.send(Out::Whole(head, body));
        }
        self.send_buffered()?;
        self.send(Out::End)
    }
}

impl io::Write for Response {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.finished {
            return Err(io::Error::other("response already finished"));
        }
        if self.broken {
            return Err(gone());
        }
        if data.is_empty() {
            return Ok(0);
        }
        let mut n = data.len().min(CHUNK - self.buf.len());
        if let Some(len) = self.content_length {
            let left = len - self.written;
            if left == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "response body is longer than its Content-Length",
                ));
            }
            n = n.min(usize::try_from(left).unwrap_or(usize::MAX));
        }
        if self.buf.capacity() == 0 {
            self.buf.reserve_exact(CHUNK);
        }
        self.buf.extend_from_slice(&data[..n]);
        self.written += n as u64;
        if self.buf.len() == CHUNK {
            self.send_buffered()?;
        }
        Ok(n)
    }

    /// Sends the head (if not sent yet) and the body bytes written so far
    /// to the event loop, which passes them to the client without waiting
    /// for more.
    fn flush(&mut self) -> io::Result<()> {
        if self.finished {
            return Ok(());
        }
        self.send_buffered()
    }
}

impl Drop for Response {
    /// Finishes the response (without waiting, unlike
    /// [`finish`](Response::finish)). While the thread is panicking, it
    /// fails it instead: `500` if the head is not out yet, else the
    /// connection is closed.
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.fail("handler panicked");
        } else {
            self.end();
        }
    }
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.status)
            .field("content_length", &self.content_length)
            .field("head_sent", &self.head_sent)
            .field("written", &self.written)
            .finish()
    }
}
