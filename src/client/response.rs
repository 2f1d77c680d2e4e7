//! [`Response`]: a borrowed view of a response head.

use std::fmt;

use crate::proto::fields;
use crate::proto::h1::response::ResponseHead;
use crate::proto::h1::BodyKind;
use crate::Version;

/// The head of a response, borrowed from the connection's read buffer for
/// the [`on_response`](crate::client::Handler::on_response) call. Copy
/// what you need to keep.
///
/// ```
/// use nextloop::client::Response;
///
/// fn summary(res: &Response<'_>) -> String {
///     let kind = res.header_str("content-type").unwrap_or("?");
///     format!("{} {} ({kind})", res.status(), res.reason())
/// }
/// ```
pub struct Response<'a> {
    version: Version,
    status: u16,
    reason: &'a str,
    headers: &'a [httparse::Header<'a>],
    body: BodyKind,
    upgraded: bool,
}

impl<'a> Response<'a> {
    pub(crate) fn new(
        head: &'a ResponseHead<'_, 'a>,
        body: BodyKind,
        upgraded: bool,
    ) -> Response<'a> {
        Response {
            version: head.version,
            status: head.status,
            reason: head.reason,
            headers: head.headers,
            body,
            upgraded,
        }
    }

    /// A final response head received over HTTP/2 (no reason phrase on
    /// the wire: the status's usual one stands in).
    pub(crate) fn h2(
        status: u16,
        headers: &'a [httparse::Header<'a>],
        body: BodyKind,
    ) -> Response<'a> {
        Response {
            version: Version::Http2,
            status,
            reason: crate::proto::status::reason(status),
            headers,
            body,
            upgraded: false,
        }
    }

    /// The status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The reason phrase as sent (may be empty); over HTTP/2, which sends
    /// none, the status's usual phrase (`OK` for 200).
    pub fn reason(&self) -> &'a str {
        self.reason
    }

    /// HTTP/1.0, HTTP/1.1 or HTTP/2.
    pub fn version(&self) -> Version {
        self.version
    }

    fields::borrowed_lookup!('a);

    /// The head as `http::response::Parts` (`http` feature): status,
    /// version and every field, copied (not the reason phrase).
    #[cfg(feature = "http")]
    pub fn to_http(&self) -> Result<http::response::Parts, http::Error> {
        crate::http_types::response_parts(self.status(), self.version(), self.headers())
    }

    /// Has the connection left HTTP — a `101 Switching Protocols` to a
    /// request with `Upgrade`, or a `2xx` to a `CONNECT`? Then the
    /// exchange goes on in raw mode (see
    /// [Raw mode](crate::client::Handler#raw-mode-upgrades-and-connect)):
    /// the "body" is every byte the server sends until it closes
    /// ([`body_length`](Self::body_length) is `None`), and what
    /// `on_request_writable` writes goes out as it is.
    pub fn upgraded(&self) -> bool {
        self.upgraded
    }

    /// The body length when known in advance: the `Content-Length`, or 0
    /// for a response without a body (HEAD, 204, 304). `None` for a
    /// chunked body or one that runs until the server closes.
    pub fn body_length(&self) -> Option<u64> {
        self.body.length()
    }

    /// Does the response carry a body (it may still be empty)?
    pub fn has_body(&self) -> bool {
        self.body != BodyKind::None
    }
}

impl fmt::Debug for Response<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.status)
            .field("version", &self.version)
            .field("headers", &self.headers.len())
            .field("body", &self.body)
            .field("upgraded", &self.upgraded)
            .finish()
    }
}
