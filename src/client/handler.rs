//! [`Handler`]: one request/response exchange, driven by the client loop.

use crate::client::{Error, Request, Response};
use crate::{Decoder, Detached, Encoder, Next};

/// One client exchange: write a request, read its response.
///
/// Hand a handler to [`Client::request`](crate::client::Client::request)
/// with a URL; the client's loop thread finds (or opens) a connection to
/// the URL's host and calls the handler when what it asked for is
/// possible. It is the server's [`Handler`](crate::server::Handler) turned
/// around:
///
/// | callback | when | usual answer |
/// |---|---|---|
/// | [`on_request`](Handler::on_request) | a connection is ready for the request head | [`Next::read()`] (no body) or [`Next::write()`] (a body follows) |
/// | [`on_request_writable`](Handler::on_request_writable) | body bytes can be written | [`Next::write()`] for more, [`Next::read()`] when the body is complete |
/// | [`on_response`](Handler::on_response) | the response head has arrived | [`Next::read()`] to read the body, [`Next::end()`] if not interested |
/// | [`on_response_readable`](Handler::on_response_readable) | body bytes (or its end) are there | [`Next::read()`] for more, [`Next::end()`] when done |
/// | [`on_error`](Handler::on_error) | the exchange failed (or a [`Next`] timeout expired) | ignored unless it was the handler's own timeout |
///
/// While the request is being written, [`Next::read()`] and
/// [`Next::end()`] returned by [`on_request`](Handler::on_request) or
/// [`on_request_writable`](Handler::on_request_writable) (or given to a
/// [`Next::wait()`] they returned) both mean "the request is complete":
/// the loop writes what framing still needs (the last chunk) and waits
/// for the response.
/// After [`on_response`](Handler::on_response), [`Next::end()`] ends the
/// exchange: an unread rest of the body is read and thrown away if it is
/// small, else the connection is closed. [`Next::wait()`] parks the
/// exchange until [`Control::ready`](crate::Control::ready) (get the
/// [`Control`](crate::Control) from [`Request::control`]).
/// [`Next::remove()`] drops the connection, handing it over to
/// [`on_remove`](Handler::on_remove).
///
/// # An answer before the request body is complete
///
/// A server may answer before it has read the whole body (a `413`, an
/// early error). To go on sending the body, return [`Next::write()`] or
/// [`Next::read_and_write()`] from `on_response` and end it from
/// `on_request_writable` as usual. [`Next::read()`] or [`Next::end()`]
/// from `on_response` or [`on_response_readable`](Handler::on_response_readable)
/// instead stop the body where it is: nothing more of it is sent — not
/// even the last chunk, so that the server cannot take a cut-short body
/// for a whole one — and unless all of a declared `Content-Length` went
/// out, the connection is closed after the response.
///
/// If writing the request fails (the server reset the connection or
/// stopped reading), `on_request_writable` is not called again and the
/// response is read as far as it came: if it is complete the exchange
/// ends as usual (a pending [`Next::write()`] reads it), else
/// [`on_error`](Handler::on_error) gets the write error
/// ([`Error::Io`]).
///
/// # Raw mode (upgrades and CONNECT)
///
/// A request with an `Upgrade` field (and `Connection: upgrade`) that is
/// answered `101 Switching Protocols`, or a `CONNECT` (method `CONNECT`,
/// target `host:port`, sent to the proxy's URL) answered with any `2xx`,
/// takes the connection out of HTTP. The exchange goes on under the same
/// handler, in raw mode; [`Response::upgraded`] says so in
/// [`on_response`](Handler::on_response):
///
/// - [`on_response_readable`](Handler::on_response_readable) reads the
///   server's bytes as they are: first those that came right after the
///   response head (often in the same packet), then the stream; `Ok(0)`
///   is the server's FIN (its write side closed), after which it may
///   still read ours.
/// - [`on_request_writable`](Handler::on_request_writable) writes ours,
///   unframed. Ask for it ([`Next::write()`], [`Next::read_and_write()`])
///   when there is something to write: asking and writing nothing is
///   called again next turn.
/// - [`Next::end()`] from `on_request_writable` is a half-close: what was
///   written goes out, then our FIN (the socket's write side is shut);
///   the exchange goes on reading as if it had returned [`Next::read()`]
///   (with the same timeout). Once shut, [`Next::write()`] reads.
/// - [`Next::end()`] from anywhere else — `on_response`,
///   `on_response_readable`, `on_error`, a [`Control::ready`](crate::Control::ready) —
///   ends the exchange: what was written goes out, then our FIN, then the
///   connection is closed and the handler dropped. So does
///   [`Next::read()`] after `read` returned `Ok(0)` with nothing to write.
/// - [`Next::remove()`] hands the socket over to
///   [`on_remove`](Handler::on_remove) with the bytes not read yet.
/// - [`Next::wait()`] and [`Control`](crate::Control) work as before, and
///   so do the handler's own [`Next`] timeouts (`on_error(`[`Error::Timeout`]`)`).
///   The client's [`read_timeout`](crate::client::Builder::read_timeout)
///   does not run in raw mode: an idle tunnel is the handler's to time.
/// - A reset or a failed write ends the exchange with `on_error`
///   ([`Error::Closed`], [`Error::Io`]).
///
/// No framing field is added to a `CONNECT` (it has no body, whatever the
/// handler returns; its `Host` is the target) nor to an `Upgrade` request
/// without a body. Any other answer — a `200` to an `Upgrade` request, a
/// `407` to a `CONNECT` — is a normal response, and its connection may be
/// reused. A connection that went raw is never pooled again and no longer
/// counts against [`max_per_host`](crate::client::Builder::max_per_host).
/// A `101` to a request without `Upgrade`, or before the request body was
/// complete, is [`Error::Malformed`].
///
/// ```
/// use std::io::{ErrorKind, Read, Write};
/// use nextloop::client::{Handler, Request, Response};
/// use nextloop::{Decoder, Encoder, Next};
///
/// /// Through a proxy: sends `hello`, shuts its side, prints what comes.
/// struct Tunnel { hello: &'static [u8] }
///
/// impl Handler for Tunnel {
///     fn on_request(&mut self, req: &mut Request<'_>) -> Next {
///         req.set_method("CONNECT").set_target("example.com:7");
///         Next::read()
///     }
///
///     fn on_response(&mut self, res: Response<'_>) -> Next {
///         if res.upgraded() { Next::read_and_write() } else { Next::end() }
///     }
///
///     fn on_request_writable(&mut self, out: &mut Encoder<'_>) -> Next {
///         while !self.hello.is_empty() {
///             match out.write(self.hello) {
///                 Ok(n) => self.hello = &self.hello[n..],
///                 Err(_) => return Next::read_and_write(), // full: later
///             }
///         }
///         Next::end() // our FIN; reading goes on
///     }
///
///     fn on_response_readable(&mut self, input: &mut Decoder<'_>) -> Next {
///         let mut buf = [0; 4096];
///         loop {
///             match input.read(&mut buf) {
///                 Ok(0) => return Next::end(), // the server's FIN: done
///                 Ok(n) => print!("{}", String::from_utf8_lossy(&buf[..n])),
///                 Err(e) if e.kind() == ErrorKind::WouldBlock => return Next::read(),
///                 Err(_) => return Next::end(),
///             }
///         }
///     }
/// }
/// ```
///
/// # Giving up
///
/// From `on_error(`[`Error::Timeout`]`)` — the handler's own timeout —
/// [`Next::end()`] while the response head is still to come gives the
/// exchange up: no other callback follows, and since its response is
/// still on its way the connection is closed. A request pipelined behind
/// others ([`Builder::pipelining`](crate::client::Builder::pipelining))
/// that gives up — that way, with [`Next::remove()`], or by panicking —
/// does not take the requests ahead with it: it is detached (its handler
/// is dropped, without [`on_remove`](Handler::on_remove), since the
/// connection is not its to take), and its response is read and thrown
/// away when it comes.
///
/// Only [`on_response`](Handler::on_response) must be written; the
/// defaults send a `GET` for the URL's target without a body and ignore
/// the response body:
///
/// ```
/// use nextloop::client::{Handler, Response};
/// use nextloop::Next;
///
/// struct Status;
///
/// impl Handler for Status {
///     fn on_response(&mut self, res: Response<'_>) -> Next {
///         println!("{} {}", res.status(), res.reason());
///         Next::end()
///     }
/// }
/// ```
///
/// Callbacks run on the client's loop thread and must not block. A panic
/// in a callback costs only this exchange and its connection.
pub trait Handler: Send + 'static {
    /// A connection is ready: set the method, target and header fields of
    /// the request (they start as `GET`, the URL's target, and no fields;
    /// `Host` and the framing fields are added by the client). Return
    /// [`Next::write()`] to send a body, [`Next::read()`] if there is none.
    ///
    /// Called again, on a fresh connection, if a reused keep-alive
    /// connection turns out to have been closed by the server before any
    /// of the response arrived — only for idempotent requests whose body
    /// has not begun to be written.
    ///
    /// Default: [`Next::read()`].
    fn on_request(&mut self, request: &mut Request<'_>) -> Next {
        let _ = request;
        Next::read()
    }

    /// Body bytes can be written to `body`. Return [`Next::write()`] for
    /// more, [`Next::read()`] when the body is complete.
    ///
    /// Default: [`Next::read()`] (an empty body).
    fn on_request_writable(&mut self, body: &mut Encoder<'_>) -> Next {
        let _ = body;
        Next::read()
    }

    /// The response head has arrived (interim 1xx responses are handled by
    /// the client). Return [`Next::read()`] to read the body, or
    /// [`Next::end()`]. After a switch ([`Response::upgraded`]) the
    /// exchange is in [raw mode](Handler#raw-mode-upgrades-and-connect).
    fn on_response(&mut self, response: Response<'_>) -> Next;

    /// Body bytes, or the body's end, can be read from `body`
    /// (`Ok(0)` from `read` is the end). Return [`Next::read()`] for more,
    /// [`Next::end()`] when done.
    ///
    /// Default: [`Next::end()`].
    fn on_response_readable(&mut self, body: &mut Decoder<'_>) -> Next {
        let _ = body;
        Next::end()
    }

    /// The exchange failed: the connection could not be made, the server
    /// misbehaved, a timeout expired. After [`Error::Timeout`] (the
    /// handler's own [`Next`] timeout) the returned `Next` is followed —
    /// [`Next::end()`] while the response head is still to come gives the
    /// exchange up (see [Giving up](Handler#giving-up)); after any other
    /// error the exchange is over and it is ignored.
    ///
    /// Default: [`Next::remove()`].
    fn on_error(&mut self, err: Error) -> Next {
        let _ = err;
        Next::remove()
    }

    /// The handler returned [`Next::remove()`] while on a connection: it
    /// gets the connection, with the bytes read and not consumed by the
    /// response (see [`Detached`]; for example after a
    /// `101 Switching Protocols`).
    ///
    /// Default: drop it (closing the connection).
    fn on_remove(self, conn: Detached)
    where
        Self: Sized,
    {
        let _ = conn;
    }
}

/// A boxed handler, with a way to call `on_remove` through the box.
pub(crate) trait Boxed: Handler {
    fn on_remove_boxed(self: Box<Self>, conn: Detached);
}

impl<H: Handler> Boxed for H {
    fn on_remove_boxed(self: Box<Self>, conn: Detached) {
        (*self).on_remove(conn);
    }
}
