//! [`Next`]: what a handler wants to happen next, with an optional timeout.

use std::time::Duration;

/// What a handler asks the event loop to do next.
///
/// Every [`Handler`](crate::server::Handler) callback returns a `Next`. The
/// loop calls the handler again only when what it asked for is possible:
///
/// | `Next`                     | the loop then calls                                   |
/// |----------------------------|-------------------------------------------------------|
/// | [`read()`](Next::read)     | `on_request_readable` when body bytes (or its end) are there |
/// | [`write()`](Next::write)   | `on_response` once, then `on_response_writable` while there is room |
/// | [`read_and_write()`](Next::read_and_write) | whichever of the two can make progress |
/// | [`wait()`](Next::wait)     | nothing, until [`Control::ready`](crate::Control::ready) |
/// | [`end()`](Next::end)       | nothing: the response is complete                     |
/// | [`remove()`](Next::remove) | nothing: the connection is dropped now                |
///
/// Any of them can carry a [`timeout`](Next::timeout); if the handler has not
/// been called again before it expires, it gets
/// [`on_error(Error::Timeout)`](crate::server::Handler::on_error).
///
/// ```
/// use std::time::Duration;
/// use nextloop::Next;
///
/// let next = Next::wait().timeout(Duration::from_secs(5));
/// assert_eq!(next.timeout_duration(), Some(Duration::from_secs(5)));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Next {
    pub(crate) interest: Interest,
    pub(crate) timeout: Option<Duration>,
}

/// The interest part of a [`Next`], without its timeout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interest {
    /// Read the request body.
    Read,
    /// Write the response head, then its body.
    Write,
    /// Either, whichever can progress.
    ReadWrite,
    /// Nothing until [`Control::ready`](crate::Control::ready).
    Wait,
    /// The response is complete.
    End,
    /// Drop the connection now.
    Remove,
}

impl Next {
    const fn new(interest: Interest) -> Next {
        Next {
            interest,
            timeout: None,
        }
    }

    /// Call `on_request_readable` when body bytes can be read.
    pub const fn read() -> Next {
        Next::new(Interest::Read)
    }

    /// Call `on_response` (once), then `on_response_writable` when body bytes can be written.
    pub const fn write() -> Next {
        Next::new(Interest::Write)
    }

    /// Call whichever of the read and write callbacks can make progress.
    pub const fn read_and_write() -> Next {
        Next::new(Interest::ReadWrite)
    }

    /// Park the exchange until [`Control::ready`](crate::Control::ready) is called.
    ///
    /// A reset connection ends the wait at once (`on_error`). A client
    /// that only closes its side (FIN) may still be waiting for the answer
    /// (HTTP allows half-close), so that is noticed when the response is
    /// written.
    ///
    /// On a server, a wait without a [`timeout`](Next::timeout) of its own
    /// ends after the server's `io_timeout` (30 s by default) with
    /// `on_error(Error::Timeout)`: a thread that was to wake the exchange
    /// and panicked, or dropped its `Control`, costs that connection, not
    /// a client waiting for ever. [`wait_forever`](Next::wait_forever)
    /// opts out.
    pub const fn wait() -> Next {
        Next::new(Interest::Wait)
    }

    /// Park the exchange until [`Control::ready`](crate::Control::ready),
    /// with no deadline at all, not even the server's `io_timeout`: for a
    /// wake-up that is sure to come (the waker cannot fail without waking),
    /// such as a long poll whose producer lives as long as the server.
    /// A reset or a shutdown still ends it.
    ///
    /// ```
    /// use std::time::Duration;
    /// use nextloop::{Interest, Next};
    ///
    /// let next = Next::wait_forever();
    /// assert_eq!(next.interest(), Interest::Wait);
    /// assert_eq!(next.timeout_duration(), Some(Duration::MAX));
    /// ```
    pub const fn wait_forever() -> Next {
        Next::wait().timeout(Duration::MAX)
    }

    /// The response is finished: the loop writes what framing still needs
    /// (the last chunk) and moves on to the next request, or closes.
    ///
    /// In raw mode (after a `101` to an upgrade, a `2xx` to CONNECT; see
    /// [`Handler`](crate::server::Handler#raw-mode-upgrades-and-tunnels)),
    /// each direction ends on its own: the first `end()` shuts our write
    /// side once everything written is out (a TCP FIN; over TLS
    /// `close_notify` first) while the client's bytes are still read —
    /// from then on `write()` and `read_and_write()` mean `read()`; the
    /// exchange is over at an `end()` once `read` has returned `Ok(0)`
    /// (the client's FIN), and the connection closes.
    pub const fn end() -> Next {
        Next::new(Interest::End)
    }

    /// Drop the connection without finishing the response. On the server,
    /// responses of earlier pipelined requests that are already finished
    /// are written first (bounded by the `io_timeout`); a response this
    /// handler has begun is cut there. Then `on_remove` gets the
    /// connection. After a malformed request body the server answers
    /// `400` and closes instead, if no response head has gone out.
    pub const fn remove() -> Next {
        Next::new(Interest::Remove)
    }

    /// Adds a timeout: if the handler is not called again within `d`, it gets
    /// `on_error(Error::Timeout)`. `Duration::MAX` means no deadline (see
    /// [`wait_forever`](Next::wait_forever)).
    pub const fn timeout(mut self, d: Duration) -> Next {
        self.timeout = Some(d);
        self
    }

    /// What this `Next` asks for.
    pub const fn interest(&self) -> Interest {
        self.interest
    }

    /// The timeout set with [`timeout`](Next::timeout), if any.
    pub const fn timeout_duration(&self) -> Option<Duration> {
        self.timeout
    }
}
