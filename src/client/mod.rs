//! The HTTP/1.1 client: a [`Client`] handle, and the [`Handler`] each
//! request is driven by — the server's design turned around.
//!
//! A `Client` runs its own event loop on a thread of its own. Give it a
//! URL and a handler; the loop finds an idle keep-alive connection to the
//! URL's host (or opens one), calls the handler to write the request, and
//! calls it again as the response arrives. Every callback returns a
//! [`Next`](crate::Next), exactly as on the server.
//!
//! ```no_run
//! use std::io::Read;
//! use nextloop::client::{Client, Handler, Response};
//! use nextloop::{Decoder, Next};
//!
//! /// Prints the status and the body.
//! struct Print;
//!
//! impl Handler for Print {
//!     fn on_response(&mut self, res: Response<'_>) -> Next {
//!         println!("{} {}", res.status(), res.reason());
//!         Next::read()
//!     }
//!
//!     fn on_response_readable(&mut self, body: &mut Decoder<'_>) -> Next {
//!         let mut buf = [0; 4096];
//!         loop {
//!             match body.read(&mut buf) {
//!                 Ok(0) => return Next::end(),
//!                 Ok(n) => print!("{}", String::from_utf8_lossy(&buf[..n])),
//!                 Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Next::read(),
//!                 Err(_) => return Next::end(),
//!             }
//!         }
//!     }
//! }
//!
//! let client = Client::new()?;
//! client.request("http://127.0.0.1:3000/", Print)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! For plain blocking calls — `get(url)?` and an `io::Read` body — use
//! [`hypersync::Client`](crate::hypersync::Client), which is built on this.
//!
//! # Connections
//!
//! Connections are pooled per (host, port): an idle one is reused (the
//! most recently used first), at most
//! [`max_per_host`](Builder::max_per_host) are open at once, and an idle
//! one is closed after [`idle_timeout`](Builder::idle_timeout). A
//! connection is put back only when its exchange ended cleanly: the
//! response complete (or its small unread rest drained), the request
//! complete, both sides willing to keep it open. One that shows any sign
//! of life while idle — bytes, the server closing, an error — is closed.
//! If a reused connection turns out to have been closed by the server
//! before any response arrived (the server's keep-alive timeout racing
//! our request), an idempotent request whose body had not begun is sent
//! again on a fresh connection; its handler's `on_request` is called again.
//! A request sent again for any reason takes only a connection on which
//! no exchange has completed yet — a new one, or one just opened — never
//! another pooled one that may have gone stale the same way (at the
//! [`max_per_host`](Builder::max_per_host) limit, an idle pooled
//! connection is closed to make room).
//!
//! Names are resolved on a helper thread (`ToSocketAddrs`), every address
//! tried in turn; IP literals skip it. With [`pipelining`](Builder::pipelining),
//! a request to a host can queue on a busy connection behind complete
//! idempotent requests (never behind a POST, RFC 9112 §9.3.2); responses
//! are matched to requests in order. If the connection ends before a
//! queued request was answered, it is sent again only when that is safe:
//! the server had said `Connection: close` (it processes nothing after),
//! or the request was never sent or is idempotent. Otherwise it fails
//! with [`Error::Closed`] if the server ended the connection, or
//! [`Error::Aborted`] if the client did (the request ahead failed or gave
//! up). A queued request that gives up itself is detached and leaves the
//! requests ahead alone (see [`Handler`]).
//!
//! # Protocol
//!
//! HTTP/1.1 requests with `Host`; a body of unknown length is sent chunked.
//! Responses are framed per RFC 9112 §6.3: `Content-Length`, chunked, or
//! until the server closes (HTTP/1.0 servers); none for HEAD, 1xx, 204 and
//! 304. Interim 1xx responses are skipped; `Expect: 100-continue` holds a
//! body back until `100 Continue` (or a final status, or the
//! [`continue_timeout`](Builder::continue_timeout)). Ambiguous framing and
//! malformed heads or chunks are [`Error::Malformed`]. As RFC 9112 asks
//! of a user agent, a field value folded over several lines (obs-fold) is
//! unfolded, each line break replaced with spaces (§5.2), and an HTTP/1.0
//! response with `Transfer-Encoding` is read as framed but its connection
//! is not reused (§6.1).
//!
//! Upgrades and tunnels: a `101 Switching Protocols` to a request with
//! `Upgrade`, or a `2xx` to a `CONNECT`, puts the exchange in raw mode
//! under the same handler — the server's bytes (those right after the
//! head first) through `on_response_readable`, ours through
//! `on_request_writable`, a half-close with [`Next::end()`](crate::Next::end)
//! from the latter. See [Raw mode](Handler#raw-mode-upgrades-and-connect).
//! Such a connection is never pooled again.

mod conn;
mod error;
mod event_loop;
mod exchange;
mod handler;
mod pool;
mod request;
mod resolve;
mod response;
mod url;

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::Sender;

pub use error::Error;
pub use handler::Handler;
pub use request::Request;
pub use response::Response;

use crate::control::{Lease, LoopHandle};
use event_loop::{Parts, Submit, WAKER};
use resolve::Lookup;
use url::Url;

/// Client settings; see the [`Builder`] methods for each.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub connect_timeout: Duration,
    pub response_timeout: Duration,
    pub read_timeout: Duration,
    pub idle_timeout: Duration,
    pub continue_timeout: Duration,
    pub max_per_host: usize,
    /// Requests in flight on one connection at most (1: no pipelining).
    pub max_pipelined: usize,
    pub max_head_size: usize,
    pub max_headers: usize,
    /// Exchanges in flight on the client at most.
    pub max_exchanges: usize,
    /// Stop producing output while this much is waiting to be written.
    pub write_high_water: usize,
    /// Largest unread response body drained to keep a connection.
    pub max_drain: u64,
    /// Host names pinned to addresses ([`Builder::resolve`]), lowercase.
    pub pinned: Vec<(Box<str>, Vec<IpAddr>)>,
    /// How other names are looked up ([`Builder::resolver`]).
    pub lookup: Lookup,
    /// Cleartext origins spoken to in HTTP/2 with prior knowledge
    /// ([`Builder::http2_prior_knowledge`]): lowercase host, port.
    pub h2_prior: Vec<(Box<str>, u16)>,
    /// Offer `h2` by ALPN over TLS ([`Builder::http1_only`] turns it off).
    pub http2: bool,
    /// Streams open at once on one HTTP/2 connection at most, below the
    /// server's own limit.
    pub h2_max_streams: u32,
    /// HTTP/2 connections to one origin at most.
    pub h2_connections: usize,
    /// How long the server may take to acknowledge our SETTINGS.
    pub h2_ack_timeout: Duration,
    /// Keep-alive PINGs on idle HTTP/2 connections: the interval, and how
    /// long the ack may take ([`Builder::http2_keep_alive`]).
    pub h2_keep_alive: Option<(Duration, Duration)>,
    /// TLS: roots trusted besides (or, without `system_roots`, instead
    /// of) the system's, or a configuration of the user's own.
    #[cfg(feature = "__tls")]
    pub tls: TlsSettings,
}

/// How the client sets up TLS ([`Builder::add_root`] and the like).
#[cfg(feature = "__tls")]
#[derive(Clone, Debug)]
pub(crate) struct TlsSettings {
    pub system_roots: bool,
    pub roots: Vec<crate::tls::CertificateDer<'static>>,
    pub config: Option<Arc<crate::tls::ClientConfig>>,
}

#[cfg(feature = "__tls")]
impl Default for TlsSettings {
    fn default() -> TlsSettings {
        TlsSettings {
            system_roots: true,
            roots: Vec::new(),
            config: None,
        }
    }
}

#[cfg(feature = "__tls")]
impl TlsSettings {
    /// The configuration `https://` connections use; ALPN offers `h2`
    /// first with `http2`.
    pub(crate) fn build(&self, http2: bool) -> io::Result<Arc<crate::tls::ClientConfig>> {
        if let Some(config) = &self.config {
            return Ok(Arc::clone(config));
        }
        let mut roots = if self.system_roots {
            crate::tls::system_roots()
        } else {
            crate::tls::RootCertStore::empty()
        };
        for root in &self.roots {
            roots.add(root.clone()).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("a root certificate: {e}"),
                )
            })?;
        }
        let mut config = crate::tls::client_config(roots)?;
        if http2 {
            config.alpn_protocols = vec![
                crate::tls::ALPN_H2.to_vec(),
                crate::tls::ALPN_HTTP11.to_vec(),
            ];
        }
        Ok(Arc::new(config))
    }
}

impl Settings {
    /// Is this cleartext origin spoken to in HTTP/2 with prior knowledge?
    pub(crate) fn h2_prior(&self, url: &Url) -> bool {
        !url.is_https()
            && self
                .h2_prior
                .iter()
                .any(|(host, port)| *port == url.port() && **host == *url.host())
    }

    /// The addresses `host` (lowercase, as URLs give it) is pinned to.
    pub(crate) fn pinned(&self, host: &str) -> Option<&[IpAddr]> {
        self.pinned
            .iter()
            .find(|(name, _)| **name == *host)
            .map(|(_, addrs)| addrs.as_slice())
    }
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            connect_timeout: Duration::from_secs(10),
            response_timeout: Duration::from_secs(30),
            read_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(30),
            continue_timeout: Duration::from_secs(1),
            max_per_host: 8,
            max_pipelined: 1,
            max_head_size: 16 * 1024,
            max_headers: 100,
            max_exchanges: 10_000,
            write_high_water: 64 * 1024,
            max_drain: 64 * 1024,
            pinned: Vec::new(),
            lookup: Lookup::system(),
            h2_prior: Vec::new(),
            http2: true,
            h2_max_streams: 100,
            h2_connections: 1,
            h2_ack_timeout: Duration::from_secs(10),
            h2_keep_alive: None,
            #[cfg(feature = "__tls")]
            tls: TlsSettings::default(),
        }
    }
}

/// Configures and starts a [`Client`].
///
/// | setting | default |
/// |---|---|
/// | [`connect_timeout`](Builder::connect_timeout) | 10 s |
/// | [`response_timeout`](Builder::response_timeout) | 30 s |
/// | [`read_timeout`](Builder::read_timeout) | 30 s |
/// | [`idle_timeout`](Builder::idle_timeout) | 30 s |
/// | [`continue_timeout`](Builder::continue_timeout) | 1 s |
/// | [`max_per_host`](Builder::max_per_host) | 8 |
/// | [`pipelining`](Builder::pipelining) | 1 (off) |
/// | [`max_head_size`](Builder::max_head_size) | 16 KiB |
/// | [`max_headers`](Builder::max_headers) | 100 |
/// | [`max_requests`](Builder::max_requests) | 10 000 |
/// | [`http2_prior_knowledge`](Builder::http2_prior_knowledge) | none: `http://` is HTTP/1.1 |
/// | [`http1_only`](Builder::http1_only) | off: `https://` offers `h2` by ALPN |
/// | [`http2_max_streams`](Builder::http2_max_streams) | 100 |
/// | [`http2_connections`](Builder::http2_connections) | 1 |
/// | [`http2_ack_timeout`](Builder::http2_ack_timeout) | 10 s |
/// | [`http2_keep_alive`](Builder::http2_keep_alive) | off |
///
/// ```no_run
/// use std::time::Duration;
/// use nextloop::client::Client;
///
/// let client = Client::builder()
///     .connect_timeout(Duration::from_secs(2))
///     .max_per_host(4)
///     .pipelining(8)
///     .build()?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct Builder {
    settings: Settings,
}

impl Builder {
    /// Time to establish a connection ([`Error::ConnectTimeout`]).
    pub fn connect_timeout(mut self, d: Duration) -> Builder {
        self.settings.connect_timeout = d;
        self
    }

    /// Pins `host` to `addrs` instead of looking it up, like curl's
    /// `--resolve`: the addresses are tried in order, each with its own
    /// [`connect_timeout`](Self::connect_timeout), on the port each URL
    /// gives. For tests, or names the system resolver does not know.
    /// Pinning a host again replaces its addresses.
    ///
    /// ```
    /// use std::net::{IpAddr, Ipv4Addr};
    /// use nextloop::client::Client;
    ///
    /// let client = Client::builder()
    ///     .resolve("backend.internal", [IpAddr::V4(Ipv4Addr::LOCALHOST)])
    ///     .build()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn resolve(mut self, host: &str, addrs: impl IntoIterator<Item = IpAddr>) -> Builder {
        let host: Box<str> = host.to_ascii_lowercase().into();
        self.settings.pinned.retain(|(name, _)| *name != host);
        self.settings
            .pinned
            .push((host, addrs.into_iter().collect()));
        self
    }

    /// Looks host names up with `lookup` instead of the system resolver
    /// (`getaddrinfo`): a resolver of your own, or one for tests. It gets a
    /// name (an IPv6 literal comes without brackets) and the URL's port,
    /// and runs on the client's resolver threads (up to four lookups at
    /// once), never on its loop. Like the system's, a lookup that takes
    /// longer than the [`connect_timeout`](Self::connect_timeout) fails the
    /// requests waiting for it with [`Error::Resolve`] (a timeout, see
    /// [`Error::is_timeout`]). Names pinned with [`resolve`](Self::resolve)
    /// do not reach it.
    ///
    /// ```
    /// use std::net::SocketAddr;
    /// use nextloop::client::Client;
    ///
    /// // Every name is this machine.
    /// let client = Client::builder()
    ///     .resolver(|_name, port| Ok(vec![SocketAddr::from(([127, 0, 0, 1], port))]))
    ///     .build()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn resolver(
        mut self,
        lookup: impl Fn(&str, u16) -> io::Result<Vec<SocketAddr>> + Send + Sync + 'static,
    ) -> Builder {
        self.settings.lookup = Lookup(Arc::new(lookup));
        self
    }

    /// Trusts `root` for `https://` servers, besides the system's roots
    /// (features `tls` or `tls-ring`). Servers are verified against the
    /// roots, their certificate's names against the URL's host, and SNI
    /// names the host.
    #[cfg(feature = "__tls")]
    pub fn add_root(mut self, root: crate::tls::CertificateDer<'static>) -> Builder {
        self.settings.tls.roots.push(root);
        self
    }

    /// Trusts every certificate in this PEM file (curl's `--cacert`),
    /// besides the system's roots.
    #[cfg(feature = "__tls")]
    pub fn add_root_pem(mut self, path: impl AsRef<std::path::Path>) -> io::Result<Builder> {
        let certs = crate::tls::load_certs(path)?;
        self.settings.tls.roots.extend(certs);
        Ok(self)
    }

    /// Trusts only the roots given with [`add_root`](Self::add_root), not
    /// the system's.
    #[cfg(feature = "__tls")]
    pub fn no_system_roots(mut self) -> Builder {
        self.settings.tls.system_roots = false;
        self
    }

    /// Uses this rustls configuration for `https://` (your roots, client
    /// certificates, versions, ALPN); the root settings above are then
    /// not used.
    #[cfg(feature = "__tls")]
    pub fn tls_config(mut self, config: Arc<crate::tls::ClientConfig>) -> Builder {
        self.settings.tls.config = Some(config);
        self
    }

    /// Time from the end of the request — its last byte handed to the
    /// socket, not merely written by the handler — to the end of the
    /// response head ([`Error::ResponseTimeout`]).
    pub fn response_timeout(mut self, d: Duration) -> Builder {
        self.settings.response_timeout = d;
        self
    }

    /// Longest silence while a body is on its way in either direction
    /// ([`Error::ReadTimeout`]). It does not run while a handler is
    /// parked in [`Next::wait()`](crate::Next::wait), nor in
    /// [raw mode](Handler#raw-mode-upgrades-and-connect) (after an upgrade
    /// or a CONNECT, where silence is the handler's to time with its own
    /// [`Next`](crate::Next) timeouts) — except for the last bytes of a
    /// raw exchange that has ended, going out before the close.
    pub fn read_timeout(mut self, d: Duration) -> Builder {
        self.settings.read_timeout = d;
        self
    }

    /// How long an idle pooled connection is kept.
    pub fn idle_timeout(mut self, d: Duration) -> Builder {
        self.settings.idle_timeout = d;
        self
    }

    /// How long a body sent with `Expect: 100-continue` waits for the
    /// server's `100 Continue` before it is sent anyway.
    pub fn continue_timeout(mut self, d: Duration) -> Builder {
        self.settings.continue_timeout = d;
        self
    }

    /// Connections to one (host, port) at most, idle or busy (at least 1).
    /// Requests beyond wait for one to free up — for as long as it takes:
    /// no timeout covers that wait. A connection frees up when its
    /// response has been read to its end (or dropped), so code that holds
    /// `n` unread responses from a host and then asks that host again
    /// waits for ever; read or drop a response first. A connection that
    /// went raw (an upgrade, a CONNECT tunnel) no longer counts.
    pub fn max_per_host(mut self, n: usize) -> Builder {
        self.settings.max_per_host = n.max(1);
        self
    }

    /// Requests in flight on one connection at most. Above 1, a request
    /// may be sent on a connection before the responses to those ahead of
    /// it have arrived, as long as those are complete and idempotent (GET,
    /// HEAD, PUT, DELETE, OPTIONS, TRACE); responses are matched in order.
    /// 1 (the default) turns pipelining off.
    pub fn pipelining(mut self, n: usize) -> Builder {
        self.settings.max_pipelined = n.clamp(1, 1024);
        self
    }

    /// Speaks HTTP/2 with prior knowledge (h2c, RFC 9113 §3.3) to this
    /// cleartext origin, `http://host[:port]` (any path is ignored), like
    /// curl's `--http2-prior-knowledge`: every connection to it starts
    /// with the HTTP/2 preface, and one connection carries many requests
    /// at once. The server must speak HTTP/2 on that port (nextloop's
    /// server does, beside HTTP/1.1). `https://` origins need nothing:
    /// ALPN chooses `h2` when the server offers it.
    ///
    /// ```
    /// use nextloop::client::Client;
    ///
    /// let client = Client::builder()
    ///     .http2_prior_knowledge("http://127.0.0.1:8080")?
    ///     .build()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn http2_prior_knowledge(mut self, origin: &str) -> Result<Builder, Error> {
        let url = Url::parse(origin).map_err(Error::InvalidUrl)?;
        if url.is_https() {
            return Err(Error::InvalidUrl(
                "prior knowledge is for http:// origins (https:// chooses by ALPN)",
            ));
        }
        self.settings.h2_prior.push((url.host().into(), url.port()));
        Ok(self)
    }

    /// Offers only `http/1.1` by ALPN to `https://` servers (by default
    /// `h2` is offered first, and used when the server chooses it).
    pub fn http1_only(mut self) -> Builder {
        self.settings.http2 = false;
        self
    }

    /// Requests in flight on one HTTP/2 connection at most (at least 1),
    /// and never more than the server's `SETTINGS_MAX_CONCURRENT_STREAMS`;
    /// more wait for a stream to end (the waiting rules of
    /// [`max_per_host`](Self::max_per_host)).
    pub fn http2_max_streams(mut self, n: u32) -> Builder {
        self.settings.h2_max_streams = n.clamp(1, 1 << 16);
        self
    }

    /// HTTP/2 connections to one origin at most (at least 1): a new one
    /// is opened only when those open are full (every stream in use) or
    /// going away.
    pub fn http2_connections(mut self, n: usize) -> Builder {
        self.settings.h2_connections = n.max(1);
        self
    }

    /// How long an HTTP/2 server may take to acknowledge our SETTINGS
    /// before the connection fails with `SETTINGS_TIMEOUT`
    /// ([`Error::Http2`]).
    pub fn http2_ack_timeout(mut self, d: Duration) -> Builder {
        self.settings.h2_ack_timeout = d;
        self
    }

    /// Keep-alive PINGs on idle pooled HTTP/2 connections: after
    /// `interval` without a stream (and then every `interval`), a PING
    /// goes out; a connection whose ack does not come within `timeout`
    /// is closed, so the next request does not wait on a dead peer. The
    /// idle timeout still closes an idle connection in the end.
    ///
    /// ```
    /// use std::time::Duration;
    /// let builder = nextloop::client::Client::builder()
    ///     .http2_keep_alive(Duration::from_secs(30), Duration::from_secs(10));
    /// # drop(builder);
    /// ```
    pub fn http2_keep_alive(mut self, interval: Duration, timeout: Duration) -> Builder {
        self.settings.h2_keep_alive = Some((interval, timeout));
        self
    }

    /// Largest response head accepted (at least 1 KiB); larger ones are
    /// [`Error::Malformed`].
    pub fn max_head_size(mut self, bytes: usize) -> Builder {
        self.settings.max_head_size = bytes.max(1024);
        self
    }

    /// Most header fields in a response head (at most 128).
    pub fn max_headers(mut self, n: usize) -> Builder {
        self.settings.max_headers = n.clamp(1, conn::MAX_HEADERS);
        self
    }

    /// Requests in flight on the client at most (1 to 1 048 576; each
    /// costs 8 bytes up front); more fail with [`Error::TooManyRequests`].
    pub fn max_requests(mut self, n: usize) -> Builder {
        self.settings.max_exchanges = n.clamp(1, crate::control::MAX_SLOTS);
        self
    }

    /// Starts the client's event loop on a new thread.
    pub fn build(self) -> io::Result<Client> {
        let poll = mio::Poll::new()?;
        let waker = mio::Waker::new(poll.registry(), WAKER)?;
        let lease = Lease::take(waker, self.settings.max_exchanges);
        let handle = lease.handle();
        let (submit, submits) = crossbeam_channel::unbounded();
        let parts = Parts {
            poll,
            lease,
            submits,
            settings: self.settings,
        };
        std::thread::Builder::new()
            .name("nextloop-client".into())
            .spawn(move || parts.run())?;
        Ok(Client {
            inner: Arc::new(Inner { handle, submit }),
        })
    }
}

/// A handle to a running client: cheap to clone, usable from any thread.
///
/// When the last handle is dropped, the client's loop finishes the
/// exchanges in flight, closes its connections and ends.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    handle: LoopHandle,
    submit: Sender<Submit>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.handle.shutdown();
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").finish_non_exhaustive()
    }
}

impl Client {
    /// A client with the default settings (see [`Builder`]).
    pub fn new() -> io::Result<Client> {
        Builder::default().build()
    }

    /// A [`Builder`] to change the settings.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// Sends a request to `url` (`http://host[:port][/path][?query]`),
    /// driven by `handler` on the client's loop thread.
    ///
    /// Returns at once. Only a malformed URL is reported here (and the
    /// handler dropped); everything else reaches the handler's
    /// [`on_error`](Handler::on_error).
    ///
    /// ```no_run
    /// use nextloop::client::{Client, Handler, Request, Response};
    /// use nextloop::Next;
    ///
    /// struct Delete;
    /// impl Handler for Delete {
    ///     fn on_request(&mut self, req: &mut Request<'_>) -> Next {
    ///         req.set_method("DELETE");
    ///         Next::read()
    ///     }
    ///     fn on_response(&mut self, res: Response<'_>) -> Next {
    ///         println!("deleted: {}", res.status());
    ///         Next::end()
    ///     }
    /// }
    ///
    /// let client = Client::new()?;
    /// client.request("http://127.0.0.1:3000/items/7", Delete)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn request<H: Handler>(&self, url: &str, handler: H) -> Result<(), Error> {
        let url = Url::parse(url).map_err(Error::InvalidUrl)?;
        self.inner
            .submit
            .send(Submit {
                url,
                handler: Box::new(handler),
            })
            .map_err(|_| Error::Shutdown)?;
        // From a handler of this client, on its loop thread: the loop takes
        // new requests before it sleeps (and sends them in one write with
        // the others of its turn).
        if !self.inner.handle.on_own_thread() {
            self.inner.handle.wake();
        }
        Ok(())
    }
}
