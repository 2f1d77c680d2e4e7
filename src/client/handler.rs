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
    /// [`Next::end()`].
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
