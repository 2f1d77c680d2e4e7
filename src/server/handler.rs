//! [`Handler`]: the per-request state machine, and [`HandlerFactory`].

use std::time::Instant;

use crate::server::{Request, Response};
use crate::{Control, Decoder, Detached, Encoder, Error, Next};

/// One request/response exchange, driven by the event loop.
///
/// # Raw mode (upgrades and tunnels)
///
/// A handler that answers `101` to a request with `Upgrade`, or any `2xx`
/// to `CONNECT` (see [`Response::set_status`]), switches the exchange to
/// raw mode once the head is written: `on_request_readable` reads the
/// client's bytes — first those that arrived behind the request head,
/// then the stream — and `Ok(0)` is the client's FIN;
/// `on_response_writable` writes raw bytes, [`WouldBlock`](std::io::ErrorKind::WouldBlock)
/// past the write buffer's mark as always. Each direction closes on its
/// own: [`Next::end()`] shuts our write side once everything written is
/// out (TLS: `close_notify`, then the TCP shutdown), and reading goes on;
/// after it, `Next::write()` means `Next::read()`. The exchange is over at
/// the first `Next::end()` after the handler has read `Ok(0)`, or a
/// [`Next::remove()`] (which hands the connection to `on_remove` with the
/// unread bytes). Timeouts and [`Control::ready`](crate::Control::ready)
/// work as in HTTP, and a wake-up that asks to read calls
/// `on_request_readable` even when the client sent nothing new (a relay
/// may hold bytes for a peer that had no room). Nothing after the switch
/// is parsed as HTTP again. The read buffer keeps its usual size, so an
/// idle upgraded connection (a WebSocket) stays small.
///
/// The loop creates a handler per request (through a [`HandlerFactory`]),
/// calls [`on_request`](Handler::on_request) with the head, then whatever
/// the returned [`Next`] asks for. Only [`on_response`](Handler::on_response)
/// must be written; the defaults ignore the request body and end the
/// response after its head:
///
/// ```
/// use nextloop::server::{Handler, Response};
/// use nextloop::Next;
///
/// struct Hello;
///
/// impl Handler for Hello {
///     fn on_response(&mut self, res: &mut Response<'_>) -> Next {
///         res.header("Content-Type", "text/plain").body(b"Hello, World!");
///         Next::end()
///     }
/// }
/// ```
///
/// Callbacks run on the loop thread and must not block: to wait for
/// something, return [`Next::wait()`] and call
/// [`Control::ready`](crate::Control::ready) when it is there. A panic in a
/// callback costs only this connection: the client gets a 500 if no head
/// was written yet, else the connection is closed.
pub trait Handler {
    /// The request head has arrived. Return [`Next::read()`] to read the
    /// body, [`Next::write()`] to answer (an unread body is then drained or
    /// the connection closed).
    ///
    /// Default: [`Next::write()`].
    fn on_request(&mut self, request: Request<'_>) -> Next {
        let _ = request;
        Next::write()
    }

    /// Body bytes (or the body's end) can be read from `body`.
    ///
    /// Default: [`Next::write()`], leaving the body unread.
    fn on_request_readable(&mut self, body: &mut Decoder<'_>) -> Next {
        let _ = body;
        Next::write()
    }

    /// Set the status and header fields of the response. Return
    /// [`Next::write()`] to write a body, or [`Next::end()`] when done (for
    /// example after [`Response::body`]).
    fn on_response(&mut self, response: &mut Response<'_>) -> Next;

    /// Body bytes can be written to `body`. Return [`Next::end()`] when
    /// the body is complete.
    ///
    /// Default: [`Next::end()`].
    fn on_response_writable(&mut self, body: &mut Encoder<'_>) -> Next {
        let _ = body;
        Next::end()
    }

    /// The last byte of the response has been written to the socket — to
    /// the kernel, not acknowledged by the peer — at `at` (taken right after
    /// the write that finished it; over TLS, the write of its last record).
    /// Called only for a response that asked with
    /// [`Response::notify_sent`], once, before the handler is dropped; in
    /// raw mode, when the write side is shut after [`Next::end()`]. Not
    /// called when the response never goes out whole (the connection fails
    /// or times out first: [`on_error`](Handler::on_error) tells that).
    ///
    /// Default: nothing.
    fn on_response_sent(&mut self, at: Instant) {
        let _ = at;
    }

    /// Something went wrong: a [`Next`] timeout expired, the peer reset the
    /// connection, the request body is malformed. The returned `Next` is
    /// followed if the connection can go on (after a timeout, for example
    /// to write a 504); otherwise it is ignored.
    ///
    /// Default: [`Next::remove()`].
    fn on_error(&mut self, err: Error) -> Next {
        let _ = err;
        Next::remove()
    }

    /// The connection is being dropped while this handler owns it (after
    /// [`Next::remove()`] or a fatal error); the handler gets the
    /// connection, with the bytes read past the request head that no
    /// exchange consumed (see [`Detached`]). Not after a malformed request
    /// body: the server keeps the connection to answer it (`400`, or a cut
    /// response) and close it.
    ///
    /// Default: drop it (closing the connection).
    fn on_remove(self, conn: Detached)
    where
        Self: Sized,
    {
        let _ = conn;
    }
}

/// Makes a [`Handler`] for each request.
///
/// Any `FnMut(Control) -> H` is a factory. The factory runs on the loop
/// thread; the [`Control`] belongs to the new exchange.
///
/// ```
/// use nextloop::server::{Handler, HandlerFactory, Response};
/// use nextloop::{Control, Next};
///
/// struct Counted(u64);
/// impl Handler for Counted {
///     fn on_response(&mut self, res: &mut Response<'_>) -> Next {
///         res.body(format!("request {}\n", self.0).as_bytes());
///         Next::end()
///     }
/// }
///
/// let mut n = 0;
/// let mut factory = move |_ctl: Control| { n += 1; Counted(n) };
/// # fn is_factory<F: HandlerFactory>(_: &F) {}
/// # is_factory(&factory);
/// ```
pub trait HandlerFactory: Send + 'static {
    /// The handler type made.
    type Output: Handler;

    /// Makes the handler for a new request.
    fn create(&mut self, control: Control) -> Self::Output;
}

impl<F, H> HandlerFactory for F
where
    F: FnMut(Control) -> H + Send + 'static,
    H: Handler,
{
    type Output = H;

    fn create(&mut self, control: Control) -> H {
        self(control)
    }
}
