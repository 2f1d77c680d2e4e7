//! The HTTP server: [`Server`] builder, [`Listening`] handle, and the
//! types a [`Handler`] works with.
//!
//! ```no_run
//! use nextloop::server::{Handler, Response, Server};
//! use nextloop::Next;
//!
//! struct Hello;
//! impl Handler for Hello {
//!     fn on_response(&mut self, res: &mut Response<'_>) -> Next {
//!         res.header("Content-Type", "text/plain").body(b"Hello, World!");
//!         Next::end()
//!     }
//! }
//!
//! let listening = Server::bind("127.0.0.1:3000")?.handle(|_| Hello)?;
//! println!("listening on http://{}", listening.addr());
//! listening.join()?;
//! # Ok::<(), std::io::Error>(())
//! ```

mod body;
pub(crate) mod conn;
mod event_loop;
mod handler;
mod request;
mod response;

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

pub use body::{Decoder, Encoder};
pub use handler::{Handler, HandlerFactory};
pub use request::Request;
pub use response::Response;

use crate::control::Shared;

/// Server settings; see the [`Server`] methods for each.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub max_head_size: usize,
    pub max_headers: usize,
    pub head_timeout: Duration,
    pub keep_alive_timeout: Duration,
    pub max_pipelined: usize,
    pub max_connections: usize,
    pub shutdown_grace: Duration,
    /// Stop producing output while this much is waiting to be written.
    pub write_high_water: usize,
    /// Largest unread request body drained to keep a connection alive.
    pub max_drain: u64,
    /// How long a closing connection may take to flush and to see the
    /// peer's end after we shut down our side.
    pub linger_timeout: Duration,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            max_head_size: 16 * 1024,
            max_headers: 100,
            head_timeout: Duration::from_secs(10),
            keep_alive_timeout: Duration::from_secs(5),
            max_pipelined: 16,
            max_connections: 10_000,
            shutdown_grace: Duration::from_secs(30),
            write_high_water: 64 * 1024,
            max_drain: 64 * 1024,
            linger_timeout: Duration::from_secs(2),
        }
    }
}

/// Builds and starts a server.
///
/// [`bind`](Server::bind) opens the listening socket at once (so port 0
/// works and the address is known); the settings follow; then
/// [`handle`](Server::handle) starts the event loop on its own thread.
///
/// | setting | default |
/// |---|---|
/// | [`max_head_size`](Server::max_head_size) | 16 KiB |
/// | [`max_headers`](Server::max_headers) | 100 |
/// | [`head_timeout`](Server::head_timeout) | 10 s |
/// | [`keep_alive_timeout`](Server::keep_alive_timeout) | 5 s |
/// | [`max_pipelined`](Server::max_pipelined) | 16 |
/// | [`max_connections`](Server::max_connections) | 10 000 |
/// | [`shutdown_grace`](Server::shutdown_grace) | 30 s |
pub struct Server {
    listener: std::net::TcpListener,
    settings: Settings,
}

impl Server {
    /// Binds the listening socket.
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<Server> {
        let listener = std::net::TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        Ok(Server {
            listener,
            settings: Settings::default(),
        })
    }

    /// The bound address (useful after binding port 0).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Largest request head (request line and fields) accepted; larger
    /// ones get 431 (414 if the request line alone does not fit).
    /// At least 1 KiB.
    pub fn max_head_size(mut self, bytes: usize) -> Server {
        self.settings.max_head_size = bytes.max(1024);
        self
    }

    /// Most header fields in a request head; more get 431. At most 128.
    pub fn max_headers(mut self, n: usize) -> Server {
        self.settings.max_headers = n.clamp(1, conn::MAX_HEADERS);
        self
    }

    /// Time from the first byte of a request head to its end; a head that
    /// takes longer gets 408 and the connection is closed.
    pub fn head_timeout(mut self, d: Duration) -> Server {
        self.settings.head_timeout = d;
        self
    }

    /// How long a connection may sit idle between requests (or before its
    /// first one) before it is closed.
    pub fn keep_alive_timeout(mut self, d: Duration) -> Server {
        self.settings.keep_alive_timeout = d;
        self
    }

    /// Pipelined requests served on one connection per loop turn; their
    /// responses go out in one write, then other connections get a turn.
    pub fn max_pipelined(mut self, n: usize) -> Server {
        self.settings.max_pipelined = n.max(1);
        self
    }

    /// Open connections at most; above it, accepting pauses until one closes.
    pub fn max_connections(mut self, n: usize) -> Server {
        self.settings.max_connections = n.max(1);
        self
    }

    /// After [`Listening::shutdown`], how long exchanges in flight may take
    /// to finish before their connections are closed.
    pub fn shutdown_grace(mut self, d: Duration) -> Server {
        self.settings.shutdown_grace = d;
        self
    }

    /// Starts the event loop on a new thread; each request gets a handler
    /// from `factory`.
    pub fn handle<F: HandlerFactory>(self, factory: F) -> io::Result<Listening> {
        let addr = self.listener.local_addr()?;
        let listener = mio::net::TcpListener::from_std(self.listener);
        let parts = event_loop::Parts::new(listener, factory, self.settings)?;
        let shared = parts.shared();
        let thread = std::thread::Builder::new()
            .name(format!("nextloop {addr}"))
            .spawn(move || parts.run())?;
        Ok(Listening {
            addr,
            shared,
            thread: Some(thread),
        })
    }
}

/// A running server.
///
/// Dropping it starts a graceful shutdown without waiting; call
/// [`join`](Listening::join) to wait for the loop to finish.
pub struct Listening {
    addr: SocketAddr,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl Listening {
    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Starts a graceful shutdown: stop accepting, close idle connections,
    /// let exchanges in flight finish within the grace period, then close
    /// the rest. Returns at once; [`join`](Listening::join) waits.
    pub fn shutdown(&self) {
        self.shared.shutdown.store(true, Ordering::Release);
        self.shared.wake();
    }

    /// Waits for the event loop to end (after [`shutdown`](Self::shutdown),
    /// or a fatal error of the loop itself).
    pub fn join(mut self) -> io::Result<()> {
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(io::Error::other("event loop thread panicked")),
            None => Ok(()),
        }
    }
}

impl Drop for Listening {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.shutdown();
        }
    }
}

impl std::fmt::Debug for Listening {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listening")
            .field("addr", &self.addr)
            .finish()
    }
}
