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

mod access_log;
pub(crate) mod conn;
mod event_loop;
mod handler;
mod http2;
mod request;
pub(crate) mod response;

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::thread::JoinHandle;
use std::time::Duration;

pub use access_log::{Access, AccessLog, Logged, ACCESS_LOG_TARGET};
pub use handler::{Handler, HandlerFactory};
pub use http2::Http2;
pub(crate) use request::Addrs;
pub use request::Request;
pub use response::Response;

use crate::control::LoopHandle;
use crate::transport::listener::Bound;

/// Server settings; see the [`Server`] methods for each.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub max_head_size: usize,
    pub max_headers: usize,
    pub head_timeout: Duration,
    pub keep_alive_timeout: Duration,
    pub io_timeout: Duration,
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
    /// `TCP_NODELAY` on accepted connections.
    pub nodelay: bool,
    /// Largest request body accepted, unless an exchange says otherwise.
    pub max_body_size: Option<u64>,
    /// Shut down on SIGINT / SIGTERM.
    pub signals: bool,
    /// HTTP/2, unless off.
    pub http2: Option<Http2>,
    /// Serve TLS with this configuration.
    #[cfg(feature = "__tls")]
    pub tls: Option<std::sync::Arc<crate::tls::ServerConfig>>,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            max_head_size: 16 * 1024,
            max_headers: 100,
            head_timeout: Duration::from_secs(10),
            keep_alive_timeout: Duration::from_secs(5),
            io_timeout: Duration::from_secs(30),
            max_pipelined: 16,
            max_connections: 10_000,
            shutdown_grace: Duration::from_secs(30),
            write_high_water: 64 * 1024,
            max_drain: 64 * 1024,
            linger_timeout: Duration::from_secs(2),
            nodelay: true,
            max_body_size: None,
            signals: false,
            http2: Some(Http2::default()),
            #[cfg(feature = "__tls")]
            tls: None,
        }
    }
}

/// Builds and starts a server.
///
/// [`bind`](Server::bind) opens the listening socket at once (so port 0
/// works and the address is known); the settings follow; then
/// [`handle`](Server::handle) starts the event loop(s) on their own
/// threads.
///
/// | setting | default |
/// |---|---|
/// | [`max_head_size`](Server::max_head_size) | 16 KiB |
/// | [`max_headers`](Server::max_headers) | 100 |
/// | [`head_timeout`](Server::head_timeout) | 10 s |
/// | [`keep_alive_timeout`](Server::keep_alive_timeout) | 5 s |
/// | [`io_timeout`](Server::io_timeout) | 30 s |
/// | [`max_pipelined`](Server::max_pipelined) | 16 |
/// | [`max_connections`](Server::max_connections) | 10 000 (per worker) |
/// | [`shutdown_grace`](Server::shutdown_grace) | 30 s |
/// | [`workers`](Server::workers) | 1 |
/// | [`backlog`](Server::backlog) | 1024 ([`bind`](Server::bind)); as given ([`from_listener`](Server::from_listener)) |
/// | [`nodelay`](Server::nodelay) | `true` |
/// | [`max_body_size`](Server::max_body_size) | none |
/// | [`shutdown_on_signals`](Server::shutdown_on_signals) | off |
/// | [`http2`](Server::http2) | on, [`Http2::default()`] |
///
/// # Sharing a port
///
/// A port served by one [`Server`] is its own: binding an address another
/// socket listens on fails with [`AddrInUse`](io::ErrorKind::AddrInUse),
/// whichever program holds it. The listener of [`bind`](Server::bind) has
/// no `SO_REUSEPORT`; with [`workers(n)`](Server::workers) on Linux, the
/// server turns it on for its own listener when it starts and binds the
/// other workers' listeners beside it. Another [`Server`] (or any program
/// that does not set `SO_REUSEPORT` itself) still gets `AddrInUse`; what
/// the kernel cannot prevent is a program of the same user that sets
/// `SO_REUSEPORT` on its own socket joining a server with several workers
/// (Linux shares a port among `SO_REUSEPORT` sockets of one user).
#[derive(Debug)]
pub struct Server {
    listener: Bound,
    pub(crate) settings: Settings,
    workers: usize,
    backlog: Option<i32>,
    /// From [`Server::from_listener`]: the socket is the caller's; workers
    /// share it instead of binding `SO_REUSEPORT` listeners beside it.
    given: bool,
}

impl Server {
    /// Binds the listening socket (the first address of `addr` that binds),
    /// with `SO_REUSEADDR` (a restarted server binds at once, despite
    /// connections of the last one in `TIME_WAIT`). An address another
    /// socket listens on fails with [`AddrInUse`](io::ErrorKind::AddrInUse)
    /// (see [Sharing a port](Server#sharing-a-port)).
    ///
    /// ```
    /// use nextloop::server::Server;
    ///
    /// let first = Server::bind("127.0.0.1:0")?;
    /// let taken = Server::bind(first.local_addr()?).unwrap_err();
    /// assert_eq!(taken.kind(), std::io::ErrorKind::AddrInUse);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<Server> {
        let mut last = None;
        for addr in addr.to_socket_addrs()? {
            match listener(addr, false) {
                Ok(listener) => return Ok(Server::new(Bound::Tcp(listener), false)),
                Err(e) => last = Some(e),
            }
        }
        Err(last
            .unwrap_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address to bind")))
    }

    /// Serves on a listening socket made elsewhere: one bound before the
    /// server was built (a test that needs the port first), or one
    /// inherited from a service manager (systemd socket activation). The
    /// socket is made non-blocking; its backlog stays as it was unless
    /// [`backlog`](Server::backlog) is set. With
    /// [`workers(n)`](Server::workers), the loops share this one socket.
    ///
    /// ```no_run
    /// use std::net::TcpListener;
    /// use nextloop::server::Server;
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let addr = listener.local_addr()?;
    /// let server = Server::from_listener(listener)?;
    /// assert_eq!(server.local_addr()?, addr);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn from_listener(listener: std::net::TcpListener) -> io::Result<Server> {
        listener.set_nonblocking(true)?;
        Ok(Server::new(Bound::Tcp(listener), true))
    }

    /// Binds a Unix stream socket at `path` (Unix only): for a server
    /// behind a proxy on the same machine, such as nginx with
    /// `proxy_pass http://unix:/run/app.sock;`. Every HTTP/1 rule,
    /// setting, timeout and graceful shutdown holds as over TCP; with
    /// [`workers(n)`](Server::workers), the loops share the one socket.
    ///
    /// - A file already at `path` fails with
    ///   [`AddrInUse`](io::ErrorKind::AddrInUse), whether a live server
    ///   listens there or a stale socket was left by one that crashed:
    ///   removing a stale file is the caller's (or the service manager's)
    ///   call, as with nginx, and the server never deletes a file it did
    ///   not create.
    /// - The server removes the socket file when it stops accepting
    ///   (shutdown) or when this builder is dropped unstarted — unless the
    ///   path names another file by then.
    /// - Access to the socket is the file's permissions (the process's
    ///   umask); set them with [`std::fs::set_permissions`] after binding.
    /// - [`Request::remote_addr`] and [`Request::local_addr`] are
    ///   `0.0.0.0:0`, [`Request::is_unix`] is true;
    ///   [`local_addr`](Server::local_addr) fails and
    ///   [`Listening::addr`] is `0.0.0.0:0`.
    /// - Not offered over a Unix socket: TLS ([`handle`](Server::handle)
    ///   fails with [`InvalidInput`](io::ErrorKind::InvalidInput)) and the
    ///   hand-over of [`Next::remove()`](crate::Next::remove) (the
    ///   connection is closed; [`Handler::on_remove`] is not called).
    ///
    /// ```
    /// use nextloop::server::Server;
    ///
    /// let path = std::env::temp_dir().join(format!("nextloop-doc-{}.sock", std::process::id()));
    /// let server = Server::bind_unix(&path)?;
    /// assert!(path.exists());
    /// let taken = Server::bind_unix(&path).unwrap_err();
    /// assert_eq!(taken.kind(), std::io::ErrorKind::AddrInUse);
    /// drop(server); // removes the file it created
    /// assert!(!path.exists());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[cfg(unix)]
    pub fn bind_unix(path: impl AsRef<std::path::Path>) -> io::Result<Server> {
        let bound = crate::transport::listener::SocketFile::bind(path.as_ref())?;
        Ok(Server::new(bound, true))
    }

    /// Serves on a Unix stream socket made elsewhere (Unix only; one
    /// inherited from a service manager, say): as
    /// [`bind_unix`](Server::bind_unix), except that its file (if any) is
    /// the caller's and is left alone at shutdown.
    ///
    /// ```no_run
    /// use std::os::unix::net::UnixListener;
    /// use nextloop::server::Server;
    ///
    /// let listener = UnixListener::bind("/run/app.sock")?;
    /// let server = Server::from_unix_listener(listener)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[cfg(unix)]
    pub fn from_unix_listener(listener: std::os::unix::net::UnixListener) -> io::Result<Server> {
        listener.set_nonblocking(true)?;
        Ok(Server::new(Bound::Unix(listener, None), true))
    }

    fn new(listener: Bound, given: bool) -> Server {
        Server {
            listener,
            settings: Settings::default(),
            workers: 1,
            backlog: None,
            given,
        }
    }

    /// The bound address (useful after binding port 0). On a Unix
    /// socket, an [`InvalidInput`](io::ErrorKind::InvalidInput) error: it
    /// has no IP address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        match &self.listener {
            Bound::Tcp(listener) => listener.local_addr(),
            #[cfg(unix)]
            Bound::Unix(..) => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a Unix socket has no IP address",
            )),
        }
    }

    /// Runs `n` event loops on `n` threads (one per core is the usual
    /// choice). Each loop is single-threaded with its own listener
    /// (`SO_REUSEPORT` on Linux, see [Sharing a port](Server#sharing-a-port);
    /// elsewhere, and after [`from_listener`](Server::from_listener), one
    /// socket shared), connections, buffers and timers; a connection stays
    /// on the loop that accepted it, and its `Control` wakes that loop.
    /// Settings such as `max_connections` apply per loop.
    pub fn workers(mut self, n: usize) -> Server {
        self.workers = n.max(1);
        self
    }

    /// Connections the kernel may hold complete but not yet accepted, per
    /// listener (`listen(2)`'s backlog; Linux caps it at
    /// `net.core.somaxconn`). Default 1024 for [`bind`](Server::bind).
    pub fn backlog(mut self, n: u32) -> Server {
        self.backlog = Some(n.min(i32::MAX as u32) as i32);
        self
    }

    /// `TCP_NODELAY` on accepted connections (default `true`): a response
    /// goes out at once instead of waiting for the client's ACK of the last
    /// one (Nagle's algorithm). The server writes each turn's responses in
    /// one write, so small packets are not the cost Nagle saves.
    pub fn nodelay(mut self, on: bool) -> Server {
        self.settings.nodelay = on;
        self
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

    /// The longest a transfer may stall — no byte of a request body
    /// arriving while the handler reads it, no byte of output taken by
    /// the client — before the exchange gets
    /// [`on_error(Error::Timeout)`](crate::server::Handler::on_error) (or,
    /// between exchanges, the connection is closed). Restarts with every
    /// byte. A handler's own [`Next::timeout`](crate::Next::timeout)
    /// takes its place; a handler that waits has none.
    pub fn io_timeout(mut self, d: Duration) -> Server {
        self.settings.io_timeout = d;
        self
    }

    /// The largest request body accepted (default: no limit; a handler
    /// reads what it wants). A body whose `Content-Length` says it is
    /// larger gets `413` before any of it is read (with
    /// `Expect: 100-continue`, no `100 Continue` is sent) and the
    /// connection is closed; a chunked body that grows past it fails like
    /// a malformed one: `413` if no response head went out, else the
    /// connection is cut. The handler is told with
    /// [`on_error(Error::Parse(ParseError::BodyTooLarge))`](crate::ParseError::BodyTooLarge).
    /// One exchange may change it in `on_request` with
    /// [`Request::set_max_body_size`].
    pub fn max_body_size(mut self, bytes: u64) -> Server {
        self.settings.max_body_size = Some(bytes);
        self
    }

    /// Pipelined requests served on one connection per loop turn; their
    /// responses go out in one write, then other connections get a turn.
    pub fn max_pipelined(mut self, n: usize) -> Server {
        self.settings.max_pipelined = n.max(1);
        self
    }

    /// Open connections at most, per loop (1 to 1 048 576; each costs 8
    /// bytes up front); above it, accepting pauses until one closes.
    pub fn max_connections(mut self, n: usize) -> Server {
        self.settings.max_connections = n.clamp(1, crate::control::MAX_SLOTS);
        self
    }

    /// After [`Listening::shutdown`], how long exchanges in flight may take
    /// to finish before their connections are closed.
    pub fn shutdown_grace(mut self, d: Duration) -> Server {
        self.settings.shutdown_grace = d;
        self
    }

    /// Shuts the server down gracefully on the first SIGINT (Ctrl-C) or
    /// SIGTERM, as [`Listening::shutdown`] does: accepting stops, exchanges
    /// in flight finish within the [`shutdown_grace`](Server::shutdown_grace),
    /// then [`Listening::join`] (or [`ServerLoop::run`]) returns and `main`
    /// can return 0. A second signal exits the process at once (status 128
    /// + the signal number, as a shell reports it).
    ///
    /// Each loop watches the signals itself (through `signal-hook`: the
    /// signal handler only writes to a pipe the loop polls), so no thread
    /// is started for it. The signals' handlers stay installed for the
    /// process's life; while no loop is running, SIGINT and SIGTERM then
    /// do nothing. Only on Unix; elsewhere this does nothing.
    ///
    /// ```no_run
    /// use nextloop::server::{Handler, Response, Server};
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
    /// let server = Server::bind("127.0.0.1:3000")?
    ///     .shutdown_on_signals()
    ///     .handle(|_| Hello)?;
    /// server.join()?; // after Ctrl-C, once the exchanges in flight are done
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn shutdown_on_signals(mut self) -> Server {
        self.settings.signals = true;
        self
    }

    /// Serves TLS (feature `tls` or `tls-ring`) with `config`: TLS 1.2 and
    /// 1.3 as it allows, several certificates by SNI through its
    /// certificate resolver. A config that advertises no ALPN protocol is
    /// given `http/1.1`. Every HTTP/1 rule, limit and timeout holds as in
    /// clear; the head timeout runs from the accept, so it bounds the
    /// handshake too. A handler sees what the handshake settled in
    /// [`Request::tls`].
    ///
    /// A handler that returns [`Next::remove()`](crate::Next::remove) on
    /// a TLS connection gets no [`on_remove`](Handler::on_remove): the
    /// session cannot leave the loop, so the connection is closed instead.
    #[cfg(feature = "__tls")]
    pub fn tls(mut self, config: std::sync::Arc<crate::tls::ServerConfig>) -> Server {
        let config = if config.alpn_protocols.is_empty() {
            let mut config = (*config).clone();
            config.alpn_protocols = vec![crate::tls::ALPN_HTTP11.to_vec()];
            std::sync::Arc::new(config)
        } else {
            config
        };
        self.settings.tls = Some(config);
        self
    }

    /// HTTP/2 with these settings (it is on by default, with
    /// [`Http2::default()`]): in clear by prior knowledge on the same
    /// port as HTTP/1.1, over TLS by ALPN `h2`. Every handler runs over
    /// it unchanged, one handler per stream.
    pub fn http2(mut self, settings: Http2) -> Server {
        self.settings.http2 = Some(settings);
        self
    }

    /// HTTP/1.x only: no HTTP/2 preface is looked for in clear, and TLS
    /// does not offer `h2`.
    pub fn http1_only(mut self) -> Server {
        self.settings.http2 = None;
        self
    }

    /// Serves TLS with the PEM certificate chain and private key in these
    /// files (PKCS#8, PKCS#1 or SEC1 keys, as `openssl` writes them); see
    /// [`tls`](Self::tls) and [`tls::server_config`](crate::tls::server_config).
    #[cfg(feature = "__tls")]
    pub fn tls_pem(
        self,
        cert_chain: impl AsRef<std::path::Path>,
        key: impl AsRef<std::path::Path>,
    ) -> io::Result<Server> {
        let certs = crate::tls::load_certs(cert_chain)?;
        let key = crate::tls::load_key(key)?;
        let config = crate::tls::server_config(certs, key)?;
        Ok(self.tls(std::sync::Arc::new(config)))
    }

    /// Starts the event loop(s), each on a new thread; each request gets a
    /// handler from `factory` (cloned once per worker).
    pub fn handle<F: HandlerFactory + Clone>(self, factory: F) -> io::Result<Listening> {
        let (parts, addr) = self.build(factory)?;
        let mut listening = Listening {
            addr,
            loops: Vec::with_capacity(parts.len()),
        };
        listening.spawn(parts)?;
        Ok(listening)
    }

    /// Like [`handle`](Self::handle), but the first event loop runs on the
    /// calling thread: it is returned, not started, and
    /// [`ServerLoop::run`] runs it until the server shuts down. Any other
    /// workers start on their own threads at once. Keep the [`Listening`]
    /// while the loop runs: dropping it shuts the server down.
    ///
    /// With one worker and no other threads, the process stays
    /// single-threaded, which makes each socket call cheaper: glibc skips
    /// its thread-cancellation bookkeeping (two atomic operations around
    /// every `recv` and `send`) in a process that never started a thread.
    ///
    /// ```no_run
    /// use nextloop::server::{Handler, Response, Server};
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
    /// let (listening, server_loop) = Server::bind("127.0.0.1:3000")?.handle_here(|_| Hello)?;
    /// println!("listening on http://{}", listening.addr());
    /// // Serves until `listening.shutdown()` — from a signal handler's
    /// // thread, say — or a fatal error.
    /// server_loop.run()?;
    /// listening.join()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn handle_here<F: HandlerFactory + Clone>(
        self,
        factory: F,
    ) -> io::Result<(Listening, ServerLoop<F>)> {
        let (mut parts, addr) = self.build(factory)?;
        let first = parts.remove(0);
        let mut listening = Listening {
            addr,
            loops: Vec::with_capacity(parts.len() + 1),
        };
        listening.loops.push((first.handle(), None));
        listening.spawn(parts)?;
        Ok((listening, ServerLoop { parts: first }))
    }

    /// Every worker's loop, built but not started, and the bound address.
    /// Building them all first means an error leaves nothing running.
    #[cfg_attr(not(feature = "__tls"), allow(unused_mut))]
    fn build<F: HandlerFactory + Clone>(
        mut self,
        factory: F,
    ) -> io::Result<(Vec<event_loop::Parts<F>>, SocketAddr)> {
        #[cfg(feature = "__tls")]
        if let Some(config) = &self.settings.tls {
            self.settings.tls = Some(offer_h2(config, self.settings.http2.is_some()));
        }
        let unix = self.listener.is_unix();
        #[cfg(feature = "__tls")]
        if unix && self.settings.tls.is_some() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "TLS over a Unix socket is not supported",
            ));
        }
        let addr = match unix {
            true => Addrs::UNIX.local,
            false => self.local_addr()?,
        };
        if let Some(backlog) = self.backlog {
            // On a listening socket, `listen` sets the backlog anew.
            self.listener.sock_ref().listen(backlog)?;
        }
        let share = self.given || !cfg!(target_os = "linux");
        if self.workers > 1 && !share {
            #[cfg(target_os = "linux")]
            self.listener.sock_ref().set_reuse_port(true)?;
        }
        let mut listeners = vec![self.listener];
        for _ in 1..self.workers {
            let next = if share {
                listeners[0].try_clone()?
            } else {
                Bound::Tcp(listener(addr, true)?)
            };
            if let Some(backlog) = self.backlog {
                next.sock_ref().listen(backlog)?;
            }
            listeners.push(next);
        }
        let mut parts = Vec::with_capacity(listeners.len());
        for listener in listeners {
            parts.push(event_loop::Parts::new(
                listener.into_listener(),
                factory.clone(),
                self.settings.clone(),
            )?);
        }
        Ok((parts, addr))
    }
}

/// The TLS configuration with ALPN as HTTP/2 wants it: with HTTP/2 on, a
/// config that offers only `http/1.1` (ours, or one given without ALPN)
/// offers `h2` first; with it off, `h2` is never offered. A list of the
/// user's own is otherwise kept as it is.
#[cfg(feature = "__tls")]
fn offer_h2(
    config: &std::sync::Arc<crate::tls::ServerConfig>,
    h2: bool,
) -> std::sync::Arc<crate::tls::ServerConfig> {
    use crate::tls::{ALPN_H2, ALPN_HTTP11};
    let list = &config.alpn_protocols;
    let has_h2 = list.iter().any(|p| p == ALPN_H2);
    let wanted = if h2 && !has_h2 && list.len() == 1 && list[0] == ALPN_HTTP11 {
        vec![ALPN_H2.to_vec(), ALPN_HTTP11.to_vec()]
    } else if !h2 && has_h2 {
        list.iter().filter(|p| *p != ALPN_H2).cloned().collect()
    } else {
        return config.clone();
    };
    let mut config = (**config).clone();
    config.alpn_protocols = wanted;
    std::sync::Arc::new(config)
}

/// An event loop built by [`Server::handle_here`], to be run on the thread
/// of your choice.
#[must_use = "the loop serves nothing until `run` is called"]
pub struct ServerLoop<F: HandlerFactory> {
    parts: event_loop::Parts<F>,
}

impl<F: HandlerFactory> ServerLoop<F> {
    /// Runs the loop on the calling thread until the server has shut down
    /// ([`Listening::shutdown`], or dropping the [`Listening`]) and every
    /// connection of this loop is closed, or the loop fails.
    pub fn run(self) -> io::Result<()> {
        self.parts.run()
    }
}

impl<F: HandlerFactory> std::fmt::Debug for ServerLoop<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerLoop").finish_non_exhaustive()
    }
}

/// A listening socket for `addr`: non-blocking, `SO_REUSEADDR`, and
/// `SO_REUSEPORT` if `share` (another worker's listener, on Linux).
fn listener(addr: SocketAddr, share: bool) -> io::Result<std::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    #[cfg(target_os = "linux")]
    socket.set_reuse_port(share)?;
    #[cfg(not(target_os = "linux"))]
    let _ = share;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// A running server: one or more event loops.
///
/// Dropping it starts a graceful shutdown without waiting; call
/// [`join`](Listening::join) to wait for the loops to finish. Keep it for
/// as long as the server should run: discarding it at once stops the
/// server, so the compiler warns about that.
///
/// ```compile_fail
/// #![deny(unused_must_use)]
/// use nextloop::server::{Handler, Response, Server};
/// use nextloop::Next;
///
/// struct Hello;
/// impl Handler for Hello {
///     fn on_response(&mut self, _res: &mut Response<'_>) -> Next {
///         Next::end()
///     }
/// }
///
/// fn main() -> std::io::Result<()> {
///     // The server would stop as soon as it started.
///     Server::bind("127.0.0.1:0")?.handle(|_| Hello)?;
///     Ok(())
/// }
/// ```
///
/// ```no_run
/// # #![deny(unused_must_use)]
/// # use nextloop::server::{Handler, Response, Server};
/// # use nextloop::Next;
/// # struct Hello;
/// # impl Handler for Hello {
/// #     fn on_response(&mut self, _res: &mut Response<'_>) -> Next {
/// #         Next::end()
/// #     }
/// # }
/// fn main() -> std::io::Result<()> {
///     let listening = Server::bind("127.0.0.1:0")?.handle(|_| Hello)?;
///     listening.join()
/// }
/// ```
#[must_use = "dropping the `Listening` shuts the server down; keep it, or call `join`"]
pub struct Listening {
    addr: SocketAddr,
    loops: Vec<(LoopHandle, Option<LoopThread>)>,
}

/// The thread running one event loop.
type LoopThread = JoinHandle<io::Result<()>>;

impl Listening {
    /// Starts each loop on its own thread. If a thread cannot be started,
    /// shuts down the loops already running and returns the error.
    fn spawn<F: HandlerFactory>(
        &mut self,
        parts: impl IntoIterator<Item = event_loop::Parts<F>>,
    ) -> io::Result<()> {
        for parts in parts {
            let handle = parts.handle();
            let thread = std::thread::Builder::new()
                .name(format!("nextloop-{} {}", self.loops.len(), self.addr))
                .spawn(move || parts.run());
            match thread {
                Ok(thread) => self.loops.push((handle, Some(thread))),
                Err(e) => {
                    self.shutdown();
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// The address the server listens on (`0.0.0.0:0` on a Unix socket,
    /// see [`Server::bind_unix`]).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Starts a graceful shutdown of every loop: stop accepting, close idle
    /// connections, let exchanges in flight finish within the grace period,
    /// then close the rest. Returns at once; [`join`](Listening::join) waits.
    pub fn shutdown(&self) {
        for (handle, _) in &self.loops {
            handle.shutdown();
        }
    }

    /// Waits for every event loop started on its own thread to end (after
    /// [`shutdown`](Self::shutdown), or a fatal error of a loop). Returns
    /// the first error. A loop from [`Server::handle_here`] is the caller's
    /// to run and wait for.
    pub fn join(mut self) -> io::Result<()> {
        let mut result = Ok(());
        for (_, thread) in &mut self.loops {
            let outcome = match thread.take().map(JoinHandle::join) {
                Some(Ok(outcome)) => outcome,
                Some(Err(_)) => Err(io::Error::other("event loop thread panicked")),
                None => Ok(()),
            };
            if result.is_ok() {
                result = outcome;
            }
        }
        result
    }
}

impl Drop for Listening {
    fn drop(&mut self) {
        // Harmless for loops that have ended; needed for one run by the
        // caller (`handle_here`), which may still be running.
        self.shutdown();
    }
}

impl std::fmt::Debug for Listening {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listening")
            .field("addr", &self.addr)
            .finish()
    }
}
