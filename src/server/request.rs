//! [`Request`]: a borrowed view of a request head.

use std::fmt;

use crate::proto::fields;
use crate::proto::h1::request::Head;
use crate::proto::h1::{target, BodyKind};
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
    #[cfg(feature = "__tls")]
    tls: Option<&'a crate::tls::TlsInfo>,
}

impl<'a> Request<'a> {
    pub(crate) fn new(head: &'a Head<'_, 'a>) -> Request<'a> {
        Request {
            method: head.method,
            target: head.target,
            version: head.version,
            headers: head.headers,
            body: head.framing.body,
            #[cfg(feature = "__tls")]
            tls: None,
        }
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
    /// absolute URI, or (CONNECT only, and always) `host:port`. The server
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
        target::authority(self.method, self.target)
            .or_else(|| self.header_str("host").filter(|h| !h.is_empty()))
    }

    /// The target after `?`, if there is one.
    pub fn query(&self) -> Option<&'a str> {
        self.target.split_once('?').map(|(_, q)| q)
    }

    /// HTTP/1.0 or HTTP/1.1.
    pub fn version(&self) -> Version {
        self.version
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
            .finish()
    }
}
