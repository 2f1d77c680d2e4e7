//! Blocking handlers on a thread pool, behind the non-blocking loop.
//!
//! Write plain blocking code — a database driver, a file read, a CPU-heavy
//! library — and still have the event loop in front: it reads and parses
//! every request head itself (with its head timeout and size limits), and
//! only a complete head reaches your code. Two styles:
//!
//! - **Push**: [`Server::handle`] runs a closure
//!   `Fn(&mut Request, &mut Response)` on a pool of worker threads.
//! - **Pull**: [`Server::incoming`] gives an [`Incoming`] queue; you take
//!   each [`Request`] when you like, on the thread you like, and answer it.
//!
//! ```no_run
//! use std::io::{Read, Write};
//! use nextloop::hypersync::{Request, Response, Server};
//!
//! let server = Server::bind("127.0.0.1:3000")?
//!     .threads(8)
//!     .queue(64)
//!     .handle(|req: &mut Request, res: &mut Response| {
//!         let mut body = String::new();
//!         if req.read_to_string(&mut body).is_err() {
//!             res.set_status(400);
//!             return;
//!         }
//!         res.header("Content-Type", "text/plain");
//!         let _ = write!(res, "{} bytes of {}\n", body.len(), req.path());
//!     })?;
//! println!("listening on http://{}", server.addr());
//! server.join()?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! ```no_run
//! use nextloop::hypersync::Server;
//!
//! let incoming = Server::bind("127.0.0.1:3000")?.incoming()?;
//! for req in &incoming {
//!     req.respond(200, &[("Content-Type", "text/plain")], "Hello, World!")?;
//! }
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # hypersync or a native `Handler`?
//!
//! **The cost, plainly: a thread per request in flight.** A request holds a
//! worker thread from the moment the thread takes it until its handler
//! returns — including all the time spent reading the body from the client
//! and writing the response to it. With [`threads(n)`](Server::threads), at
//! most `n` requests are handled at once; [`queue(q)`](Server::queue) more
//! may wait; every request beyond that is answered `503 Service
//! Unavailable` with `Retry-After: 1` by the loop, at once. On top of that,
//! each request costs a copy of its head into owned memory, three small
//! channels, a thread hand-off or two, and one more copy of every body
//! byte in each direction.
//!
//! Use hypersync when requests do blocking work and their number in flight
//! is modest: a thread is the simplest correct way to call blocking code,
//! and the loop in front still protects you — a client that dribbles its
//! head never reaches a thread, body bytes are read only as fast as your
//! handler reads them, and response bytes are buffered only a few chunks
//! deep (memory stays bounded, not thread time). A slow client does hold
//! its thread while your handler reads from or writes to it.
//!
//! Write a native [`Handler`](crate::server::Handler) when you need many
//! requests in flight (thousands of slow clients, long polling, streaming),
//! the lowest latency and CPU per request (the native path allocates
//! nothing per request), or when the work is non-blocking anyway. A native
//! handler can still hand a slow part to a thread of your own and resume
//! with [`Control::ready`](crate::Control::ready) — hypersync is built
//! exactly that way.
//!
//! # Behaviour
//!
//! Keep-alive, pipelining (responses in request order), `Expect:
//! 100-continue` (the `100` goes out when the handler first reads the
//! body), `HEAD`, and an unread body (drained if small, else the
//! connection is closed) behave exactly as with native handlers: the core
//! does all of that; hypersync only moves bytes.
//!
//! A handler that panics is answered `500` if nothing of its response was
//! sent yet, else its connection is closed; the thread survives, and the
//! pool keeps its size.
//!
//! # How it works
//!
//! ```text
//!  event loop thread                        worker thread
//!  ─────────────────                        ─────────────
//!  Bridge (a native Handler)
//!    on_request: copy head ── try_send ──▶ job queue ──▶ handler(&mut Request,
//!      (full: answer 503)                                        &mut Response)
//!    body chunks ─────────── bounded(2) ──────────▶ Request: io::Read
//!    head, body chunks ◀──── bounded(2) ─────────── Response: io::Write
//!        ▲                                                │
//!        └──────────── Control::ready (only when parked) ─┘
//! ```
//!
//! # Upgrades and CONNECT
//!
//! A handler that answers `101` to a request with `Upgrade` (or `2xx` to
//! `CONNECT`) calls [`Response::upgrade`] and gets the connection as a
//! blocking [`Upgraded`] on its thread, for code written against blocking
//! APIs (a byte copy to an upstream socket, a blocking WebSocket
//! library): the bytes behind the request head come first, `Ok(0)` is
//! the client's FIN. The connection leaves the event loop (plain TCP
//! only: over TLS or a Unix socket `upgrade` fails before anything is
//! sent); the worker thread is held until the handler returns.
//!
//! # Client
//!
//! [`Client`] is the blocking side of the native
//! [`client`](crate::client): `get(url)?` gives a [`ClientResponse`] with
//! the status, the fields and the body as `io::Read`, streamed with
//! backpressure.
//!
//! ```no_run
//! use std::io::Read;
//! use nextloop::hypersync::Client;
//!
//! let mut body = String::new();
//! Client::new().get("http://127.0.0.1:3000/")?.read_to_string(&mut body)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod bridge;
mod client;
mod fetch;
mod link;
mod pool;
mod pull;
mod request;
mod response;
mod upgraded;

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;

pub use self::client::{Client, ClientResponse, RequestBuilder};
pub use self::pull::{Incoming, IntoIter, Iter};
pub use self::request::Request;
pub use self::response::Response;
pub use self::upgraded::Upgraded;
pub use crate::server::Listening;

use self::bridge::{Bridge, Dispatch};
use crate::server;

/// Builds and starts a hypersync server.
///
/// [`bind`](Server::bind) opens the listening socket; then
/// [`handle`](Server::handle) starts push mode, or
/// [`incoming`](Server::incoming) pull mode. For the event loop's own
/// settings (timeouts, limits), configure a
/// [`server::Server`] and convert it with
/// [`From`]:
///
/// ```no_run
/// use std::time::Duration;
/// use nextloop::{hypersync, server};
///
/// let native = server::Server::bind("127.0.0.1:0")?.keep_alive_timeout(Duration::from_secs(2));
/// let listening = hypersync::Server::from(native)
///     .threads(4)
///     .handle(|_req, res| {
///         res.header("Content-Type", "text/plain");
///     })?;
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// | setting | default |
/// |---|---|
/// | [`threads`](Server::threads) | 8 |
/// | [`queue`](Server::queue) | 64 |
pub struct Server {
    server: server::Server,
    threads: usize,
    queue: usize,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("addr", &self.local_addr().ok())
            .field("threads", &self.threads)
            .field("queue", &self.queue)
            .finish()
    }
}

impl From<server::Server> for Server {
    fn from(server: server::Server) -> Server {
        Server {
            server,
            threads: 8,
            queue: 64,
        }
    }
}

impl Server {
    /// Binds the listening socket.
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<Server> {
        server::Server::bind(addr).map(Server::from)
    }

    /// Binds a Unix stream socket at `path` (Unix only); see
    /// [`server::Server::bind_unix`] for the socket file's handling and
    /// what differs from TCP.
    #[cfg(unix)]
    pub fn bind_unix(path: impl AsRef<std::path::Path>) -> io::Result<Server> {
        server::Server::bind_unix(path).map(Server::from)
    }

    /// Serves on a Unix stream socket made elsewhere (Unix only); see
    /// [`server::Server::from_unix_listener`].
    #[cfg(unix)]
    pub fn from_unix_listener(listener: std::os::unix::net::UnixListener) -> io::Result<Server> {
        server::Server::from_unix_listener(listener).map(Server::from)
    }

    /// The bound address (useful after binding port 0); fails on a Unix
    /// socket.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.server.local_addr()
    }

    /// Worker threads of push mode, hence requests handled at once
    /// (at least 1). Pull mode has no pool: you bring the threads.
    pub fn threads(mut self, n: usize) -> Server {
        self.threads = n.max(1);
        self
    }

    /// Requests that may wait for a worker (push mode) or for
    /// [`Incoming::recv`] (pull mode); above that, the loop answers `503`
    /// with `Retry-After: 1`. With 0, a request is taken only by a worker
    /// (or receiver) that is idle at that moment.
    ///
    /// ```no_run
    /// use nextloop::hypersync::Server;
    ///
    /// // At most 4 requests handled at once and 16 waiting; the 21st
    /// // request in flight is answered 503 by the event loop.
    /// let listening = Server::bind("127.0.0.1:0")?
    ///     .threads(4)
    ///     .queue(16)
    ///     .handle(|_req, _res| std::thread::sleep(std::time::Duration::from_secs(1)))?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn queue(mut self, n: usize) -> Server {
        self.queue = n;
        self
    }

    /// Shuts the server down gracefully on the first SIGINT (Ctrl-C) or
    /// SIGTERM: requests in flight finish within the grace, then
    /// [`Listening::join`] returns (pull mode: the [`Incoming`]
    /// iterators end once the requests taken are answered). A second
    /// signal exits at once. See
    /// [`server::Server::shutdown_on_signals`](crate::server::Server::shutdown_on_signals).
    pub fn shutdown_on_signals(mut self) -> Server {
        self.server = self.server.shutdown_on_signals();
        self
    }

    /// Push mode: starts the worker threads and the event loop; each
    /// request runs `handler` on a worker. The response is finished when
    /// the handler returns (if it did not finish it itself).
    ///
    /// The returned [`Listening`] is the native server's handle:
    /// [`shutdown`](Listening::shutdown) lets requests in flight finish,
    /// then the loop ends and the workers with it.
    ///
    /// ```no_run
    /// use std::io::Write;
    /// use nextloop::hypersync::{Request, Response, Server};
    ///
    /// fn hello(req: &mut Request, res: &mut Response) {
    ///     // Blocking is fine here: this runs on a worker thread.
    ///     let name = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    ///     res.header("Content-Type", "text/plain");
    ///     let _ = write!(res, "Hello from {} to {}", name.trim(), req.path());
    /// }
    ///
    /// let listening = Server::bind("127.0.0.1:3000")?.threads(8).handle(hello)?;
    /// listening.join()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn handle<F>(self, handler: F) -> io::Result<Listening>
    where
        F: Fn(&mut Request, &mut Response) + Send + Sync + 'static,
    {
        let jobs = pool::start(self.threads, self.queue, Arc::new(handler))?;
        let dispatch = Dispatch::Pool(jobs);
        let stall = self.server.settings.io_timeout;
        self.server
            .handle(move |control| Bridge::new(control, dispatch.clone(), stall))
    }

    /// Pull mode: starts the event loop and returns the queue its requests
    /// arrive in. [`threads`](Self::threads) does not apply: you bring the
    /// threads.
    ///
    /// ```no_run
    /// use nextloop::hypersync::Server;
    ///
    /// let incoming = Server::bind("127.0.0.1:3000")?.queue(32).incoming()?;
    /// for req in &incoming {
    ///     let status = if req.path() == "/" { 200 } else { 404 };
    ///     let _ = req.respond(status, &[], "");
    /// }
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn incoming(self) -> io::Result<Incoming> {
        let (queue, requests) = crossbeam_channel::bounded(self.queue);
        let dispatch = Dispatch::Pull(queue);
        let stall = self.server.settings.io_timeout;
        let listening = self
            .server
            .handle(move |control| Bridge::new(control, dispatch.clone(), stall))?;
        Ok(Incoming::new(requests, listening))
    }
}

/// A body chunk that came through a channel, read out in pieces: by a
/// server handler's [`Request`], and by a [`ClientResponse`].
#[derive(Default)]
struct Chunk {
    bytes: Vec<u8>,
    /// How much of `bytes` has been read.
    pos: usize,
}

impl Chunk {
    fn new(bytes: Vec<u8>) -> Chunk {
        Chunk { bytes, pos: 0 }
    }

    /// Copies as much of the unread rest as fits into `out`; `None` when
    /// all of it has been read.
    fn read(&mut self, out: &mut [u8]) -> Option<usize> {
        let rest = self.bytes.get(self.pos..).filter(|r| !r.is_empty())?;
        let n = out.len().min(rest.len());
        out[..n].copy_from_slice(&rest[..n]);
        self.pos += n;
        Some(n)
    }

    /// Has all of it been read (or written)?
    fn is_empty(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    /// Writes the unread rest to `out` until it is all written or `out`
    /// fails (`WouldBlock` included); what was written stays written.
    fn write_to(&mut self, out: &mut impl io::Write) -> io::Result<()> {
        while !self.is_empty() {
            self.pos += out.write(&self.bytes[self.pos..])?;
        }
        Ok(())
    }
}
