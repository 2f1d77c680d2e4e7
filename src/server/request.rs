//! [`Request`]: a borrowed view of a request head.

use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;
use std::net::SocketAddr;

use crate::proto::fields;
use crate::proto::h1::request::Head;
use crate::proto::h1::{target, BodyKind, Switch};
use crate::Version;

/// The head of a request, borrowed from the connection's read buffer.
///
/// Nothing is copied: method, target and header fields point into the bytes
/// as they arrived, and the view lives only for the
/// [`on_request`](crate::server::Handler::on_request) call. Copy what you
/// need to keep.
///
/// ```
/// # use nextloop::server::Request;
/// fn route(req: &Request<'_>) -> &'static str {
///     match (req.method(), req.path()) {
///         ("GET", "/") => "index",
///         (_, p) if p.starts_with("/api/") => "api",
///         _ => "not found",
///     }
/// }
/// ```
pub struct Request<'a> {
    method: &'a str,
    target: &'a str,
    version: Version,
    headers: &'a [httparse::Header<'a>],
    body: BodyKind,
    /// What the request may switch to (HTTP/1 `Upgrade`, `CONNECT`).
    switch: Option<Switch>,
    /// HTTP/2's `:authority` and `:scheme` (`None` over HTTP/1).
    authority: Option<&'a str>,
    scheme: Option<&'a str>,
    addrs: &'a Addrs,
    max_body_size: &'a Cell<Option<u64>>,
    #[cfg(feature = "__tls")]
    tls: Option<&'a crate::tls::TlsInfo>,
}

/// The two ends of a connection: the client's address and the server's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Addrs {
    pub remote: SocketAddr,
    pub local: SocketAddr,
}

/// `0.0.0.0:0`: what a connection on a Unix socket reports for both ends
/// (no TCP peer has it).
const NO_ADDR: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 0);

impl Addrs {
    /// A connection on a Unix socket: it has no IP addresses.
    pub const UNIX: Addrs = Addrs {
        remote: NO_ADDR,
        local: NO_ADDR,
    };

    /// Is this a connection on a Unix socket?
    pub fn is_unix(&self) -> bool {
        *self == Addrs::UNIX
    }
}

impl<'a> Request<'a> {
    pub(crate) fn new(
        head: &'a Head<'_, 'a>,
        addrs: &'a Addrs,
        max_body_size: &'a Cell<Option<u64>>,
    ) -> Request<'a> {
        Request {
            method: head.method,
            target: head.target,
            version: head.version,
            headers: head.headers,
            body: head.framing.body,
            switch: Switch::of(head.method, head.target, head.upgrade, head.framing.body),
            authority: None,
            scheme: None,
            addrs,
            max_body_size,
            #[cfg(feature = "__tls")]
            tls: None,
        }
    }

    /// The head of an HTTP/2 request: `target` is `:path` (`:authority`
    /// for CONNECT), `fields` the regular fields (cookie crumbs joined).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn h2(
        method: &'a str,
        target: &'a str,
        authority: Option<&'a str>,
        scheme: Option<&'a str>,
        fields: &'a [httparse::Header<'a>],
        body: BodyKind,
        addrs: &'a Addrs,
        max_body_size: &'a Cell<Option<u64>>,
    ) -> Request<'a> {
        Request {
            method,
            target,
            version: Version::Http2,
            headers: fields,
            body,
            switch: None,
            authority,
            scheme,
            addrs,
            max_body_size,
            #[cfg(feature = "__tls")]
            tls: None,
        }
    }

    /// What an answer may switch this request to: a `101` to an HTTP/1.1
    /// `Upgrade` request, a `2xx` to `CONNECT` (never over HTTP/2).
    pub(crate) fn switch(&self) -> Option<Switch> {
        self.switch
    }

    /// The largest body this exchange accepts: the server's
    /// [`max_body_size`](crate::server::Server::max_body_size) unless
    /// [`set_max_body_size`](Self::set_max_body_size) changed it.
    pub fn max_body_size(&self) -> Option<u64> {
        self.max_body_size.get()
    }

    /// Sets the largest body this exchange accepts (`None`: no limit), in
    /// place of the server's
    /// [`max_body_size`](crate::server::Server::max_body_size): an upload
    /// route may take more than the rest.
    ///
    /// ```
    /// # use nextloop::server::Request;
    /// fn limits(req: &Request<'_>) {
    ///     if req.path() == "/upload" {
    ///         req.set_max_body_size(Some(1 << 30));
    ///     }
    /// }
    /// ```
    pub fn set_max_body_size(&self, bytes: Option<u64>) {
        self.max_body_size.set(bytes);
    }

    /// The client's address: the peer of the TCP connection (behind a
    /// proxy, the proxy's; the client's own is then in a field such as
    /// `Forwarded` that only the proxy can vouch for).
    ///
    /// On a Unix socket ([`Server::bind_unix`](crate::server::Server::bind_unix))
    /// there is no IP address: this is `0.0.0.0:0`, which no TCP peer
    /// has, and [`is_unix`](Self::is_unix) is true. (Not loopback: code
    /// that trusts loopback peers does not trust it by mistake.)
    pub fn remote_addr(&self) -> SocketAddr {
        self.addrs.remote
    }

    /// The server's address this connection came in on: with a listener
    /// on `0.0.0.0` or `[::]`, the address the client actually reached.
    /// On a Unix socket, `0.0.0.0:0` (see [`remote_addr`](Self::remote_addr)).
    pub fn local_addr(&self) -> SocketAddr {
        self.addrs.local
    }

    /// Did the request come in on a Unix socket
    /// ([`Server::bind_unix`](crate::server::Server::bind_unix))? Then
    /// [`remote_addr`](Self::remote_addr) and
    /// [`local_addr`](Self::local_addr) are `0.0.0.0:0`; a proxy in front
    /// (nginx) names the client in a field such as `X-Forwarded-For`.
    pub fn is_unix(&self) -> bool {
        self.addrs.is_unix()
    }

    #[cfg(feature = "__tls")]
    pub(crate) fn with_tls(mut self, tls: Option<&'a crate::tls::TlsInfo>) -> Request<'a> {
        self.tls = tls;
        self
    }

    /// What the connection's TLS handshake settled (ALPN protocol, server
    /// name); `None` in clear. Features `tls` or `tls-ring`.
    #[cfg(feature = "__tls")]
    pub fn tls(&self) -> Option<&'a crate::tls::TlsInfo> {
        self.tls
    }

    /// The method, e.g. `GET`. Methods are case-sensitive.
    pub fn method(&self) -> &'a str {
        self.method
    }

    /// The request target as sent: `/path?query`, `*` (OPTIONS only), an
    /// absolute URI, or (CONNECT only, and always) `host:port`. Over
    /// HTTP/2, `:path` (and `:authority` for CONNECT). The server
    /// answers 400 to a target in none of these forms, or with a `#`.
    pub fn target(&self) -> &'a str {
        self.target
    }

    /// The path: the target up to `?`; for an absolute URI
    /// (`http://example.com/a?b`), the part after the authority (`/a`, or
    /// `/` if empty); `*` for `OPTIONS *`; empty for CONNECT.
    ///
    /// ```
    /// # use nextloop::server::Request;
    /// fn is_api(req: &Request<'_>) -> bool {
    ///     // The same for `GET /api/x` and `GET http://example.com/api/x`.
    ///     req.path().starts_with("/api/")
    /// }
    /// ```
    pub fn path(&self) -> &'a str {
        target::path(self.method, self.target)
    }

    /// The authority the request is for (RFC 9112 §3.3): an absolute
    /// URI's (the `Host` field is then ignored, §3.2.2), CONNECT's
    /// `host:port`, else the `Host` field. `None` when that is missing or
    /// empty (HTTP/1.0 allows both).
    pub fn authority(&self) -> Option<&'a str> {
        if self.version == Version::Http2 {
            // `:authority`, else `Host` (RFC 9113 §8.3.1).
            return self
                .authority
                .or_else(|| self.header_str("host"))
                .filter(|h| !h.is_empty());
        }
        target::authority(self.method, self.target)
            .or_else(|| self.header_str("host").filter(|h| !h.is_empty()))
    }

    /// The scheme: HTTP/2's `:scheme`; over HTTP/1, `https` on a TLS
    /// connection, else `http`.
    pub fn scheme(&self) -> &'a str {
        if let Some(scheme) = self.scheme {
            return scheme;
        }
        #[cfg(feature = "__tls")]
        if self.tls.is_some() {
            return "https";
        }
        "http"
    }

    /// The target after `?`, if there is one.
    pub fn query(&self) -> Option<&'a str> {
        self.target.split_once('?').map(|(_, q)| q)
    }

    /// The query's `name=value` pairs, decoded (`+` is a space, `%xx` a
    /// byte; invalid UTF-8 is replaced). Borrowed unless decoding changed
    /// something: no allocation for plain pairs.
    ///
    /// ```
    /// # use nextloop::server::Request;
    /// fn page(req: &Request<'_>) -> u32 {
    ///     // `/list?page=3&sort=name` gives 3; no or a bad `page` gives 1.
    ///     req.query_pairs()
    ///         .find(|(name, _)| name == "page")
    ///         .and_then(|(_, value)| value.parse().ok())
    ///         .unwrap_or(1)
    /// }
    /// ```
    pub fn query_pairs(&self) -> impl Iterator<Item = (Cow<'a, str>, Cow<'a, str>)> + 'a {
        target::query_pairs(self.query())
    }

    /// HTTP/1.0, HTTP/1.1 or HTTP/2.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The head as `http::request::Parts` (`http` feature): method, URI
    /// (the target as sent), version and every field, copied.
    ///
    /// Fails if the `http` crate does not take the method or target as
    /// they are (the server has already checked both for HTTP/1).
    #[cfg(feature = "http")]
    pub fn to_http(&self) -> Result<http::request::Parts, http::Error> {
        crate::http_types::request_parts(self.method, self.target, self.version, self.headers())
    }

    fields::borrowed_lookup!('a);

    /// The body length when declared by `Content-Length` (0 when the
    /// request has no body framing at all); `None` for a chunked body.
    pub fn content_length(&self) -> Option<u64> {
        self.body.length()
    }

    /// Does the request carry a body (chunked, or a non-zero length)?
    pub fn has_body(&self) -> bool {
        self.body != BodyKind::Length(0)
    }
}

impl fmt::Debug for Request<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("target", &self.target)
            .field("version", &self.version)
            .field("headers", &self.headers.len())
            .field("remote_addr", &self.addrs.remote)
            .finish()
    }
}
