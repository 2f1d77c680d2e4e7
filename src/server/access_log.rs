//! [`AccessLog`]: a line per exchange — method, target, status, body
//! bytes, duration, peer — around any handler factory.

use std::fmt;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::{Handler, HandlerFactory, Request, Response};
use crate::{Control, Detached, Error, Next, Version};
use crate::{Decoder, Encoder};

/// The `log` target of the lines [`AccessLog::new`] writes (at `info`).
pub const ACCESS_LOG_TARGET: &str = "nextloop::access";

/// One finished exchange, as [`AccessLog`] hands it to its sink.
///
/// Its [`Display`](fmt::Display) is one line in the manner of the common
/// log format: `peer "METHOD target VERSION" status bytes duration`, with
/// `-` for what is unknown (the status of an exchange whose handler
/// panicked or that was cut off before its head).
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Access<'a> {
    /// The request method.
    pub method: &'a str,
    /// The request target as sent.
    pub target: &'a str,
    /// The request's version.
    pub version: Version,
    /// The response status, once the handler has given its head (or the
    /// status the server answered a bad or too large body with before it).
    pub status: Option<u16>,
    /// Body bytes the handler gave (after the head; none for HEAD, 204,
    /// 304).
    pub bytes: u64,
    /// From the request head to the end of the exchange (the handler
    /// dropped: the response is complete or abandoned).
    pub duration: Duration,
    /// The client's address, when known (`None` on a Unix socket, which
    /// the line shows as `-`).
    pub peer: Option<SocketAddr>,
}

impl fmt::Display for Access<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.peer {
            Some(peer) => write!(f, "{peer} ")?,
            None => f.write_str("- ")?,
        }
        write!(
            f,
            "\"{} {} {}\" ",
            self.method,
            self.target,
            self.version.as_str()
        )?;
        match self.status {
            Some(status) => write!(f, "{status} ")?,
            None => f.write_str("- ")?,
        }
        write!(
            f,
            "{} {:.3}ms",
            self.bytes,
            self.duration.as_secs_f64() * 1e3
        )
    }
}

/// A handler factory that logs every exchange of the one it wraps.
///
/// [`new`](AccessLog::new) writes each [`Access`] through the `log`
/// facade (target [`ACCESS_LOG_TARGET`], level `info`); when that level
/// is off for that target the wrapper only forwards, with no allocation
/// per request. [`with`](AccessLog::with) hands each one to a function of
/// yours instead (then two small allocations per request copy the method
/// and target).
///
/// ```no_run
/// use nextloop::server::{AccessLog, Handler, Response, Server};
/// use nextloop::Next;
///
/// struct Hello;
/// impl Handler for Hello {
///     fn on_response(&mut self, res: &mut Response<'_>) -> Next {
///         res.body(b"Hello, World!");
///         Next::end()
///     }
/// }
///
/// // Through `log`, with whatever logger the program installed:
/// let server = Server::bind("127.0.0.1:3000")?.handle(AccessLog::new(|_| Hello))?;
/// // Or anywhere else:
/// let other = Server::bind("127.0.0.1:3001")?
///     .handle(AccessLog::with(|_| Hello, |a| eprintln!("{a}")))?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct AccessLog<F, L = fn(&Access<'_>)> {
    factory: F,
    sink: L,
    /// Is the sink listening? Asked once per request.
    enabled: fn() -> bool,
}

impl<F> AccessLog<F> {
    /// Logs every exchange of `factory`'s handlers through `log`.
    pub fn new(factory: F) -> AccessLog<F> {
        fn to_log(access: &Access<'_>) {
            log::info!(target: ACCESS_LOG_TARGET, "{access}");
        }
        fn enabled() -> bool {
            log::log_enabled!(target: ACCESS_LOG_TARGET, log::Level::Info)
        }
        AccessLog {
            factory,
            sink: to_log,
            enabled,
        }
    }
}

impl<F, L> AccessLog<F, L>
where
    L: Fn(&Access<'_>) + Clone + Send + 'static,
{
    /// Hands every exchange of `factory`'s handlers to `sink`, on the
    /// loop's thread (keep it quick).
    pub fn with(factory: F, sink: L) -> AccessLog<F, L> {
        AccessLog {
            factory,
            sink,
            enabled: || true,
        }
    }
}

impl<F, L> fmt::Debug for AccessLog<F, L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessLog").finish_non_exhaustive()
    }
}

impl<F, L> HandlerFactory for AccessLog<F, L>
where
    F: HandlerFactory,
    L: Fn(&Access<'_>) + Clone + Send + 'static,
{
    type Output = Logged<F::Output, L>;

    fn create(&mut self, control: Control) -> Self::Output {
        Logged {
            inner: self.factory.create(control),
            log: Log {
                sink: self.sink.clone(),
                enabled: self.enabled,
                record: None,
            },
        }
    }
}

/// The handler [`AccessLog`] makes: the wrapped one, and what it saw of
/// the exchange so far.
pub struct Logged<H, L: Fn(&Access<'_>)> {
    inner: H,
    // Dropped after `inner`: the exchange is over when it is.
    log: Log<L>,
}

/// What is written when the exchange ends (on drop).
struct Log<L: Fn(&Access<'_>)> {
    sink: L,
    enabled: fn() -> bool,
    record: Option<Record>,
}

struct Record {
    method: String,
    target: String,
    version: Version,
    start: Instant,
    status: Option<u16>,
    bytes: u64,
    peer: Option<SocketAddr>,
}

impl<L: Fn(&Access<'_>)> Drop for Log<L> {
    fn drop(&mut self) {
        if let Some(r) = self.record.take() {
            (self.sink)(&Access {
                method: &r.method,
                target: &r.target,
                version: r.version,
                status: r.status,
                bytes: r.bytes,
                duration: r.start.elapsed(),
                peer: r.peer,
            });
        }
    }
}

impl<H, L: Fn(&Access<'_>)> fmt::Debug for Logged<H, L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Logged")
            .field("recording", &self.log.record.is_some())
            .finish_non_exhaustive()
    }
}

impl<H: Handler, L: Fn(&Access<'_>)> Handler for Logged<H, L> {
    fn on_request(&mut self, request: Request<'_>) -> Next {
        if (self.log.enabled)() {
            self.log.record = Some(Record {
                method: request.method().to_string(),
                target: request.target().to_string(),
                version: request.version(),
                start: Instant::now(),
                status: None,
                bytes: 0,
                peer: (!request.is_unix()).then(|| request.remote_addr()),
            });
        }
        self.inner.on_request(request)
    }

    fn on_request_readable(&mut self, body: &mut Decoder<'_>) -> Next {
        self.inner.on_request_readable(body)
    }

    fn on_response(&mut self, response: &mut Response<'_>) -> Next {
        let next = self.inner.on_response(response);
        if let Some(r) = &mut self.log.record {
            r.status = Some(response.status());
            r.bytes = response.body_given();
        }
        next
    }

    fn on_response_writable(&mut self, body: &mut Encoder<'_>) -> Next {
        let next = self.inner.on_response_writable(body);
        if let Some(r) = &mut self.log.record {
            r.bytes += body.accepted as u64;
        }
        next
    }

    fn on_error(&mut self, err: Error) -> Next {
        if let (Some(r), Error::Parse(e)) = (&mut self.log.record, &err) {
            // A bad body before the handler's head: the server answers it
            // with this status (after a head, it closes and that stands).
            r.status.get_or_insert(e.status());
        }
        self.inner.on_error(err)
    }

    fn on_remove(self, conn: Detached) {
        let Logged { inner, log } = self;
        drop(log);
        inner.on_remove(conn);
    }
}
