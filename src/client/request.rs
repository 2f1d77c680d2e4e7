//! [`Request`]: the request head a client handler fills in, written
//! straight into the connection's write buffer.

use crate::client::url::Url;
use crate::control::Shared;
use crate::proto::fields::{self, is_token, Added};
use crate::proto::h1::encode::BodyEncoder;
use crate::rt::buf::ArrayBuf;
use crate::Control;

/// The request head, filled in
/// [`on_request`](crate::client::Handler::on_request).
///
/// It starts as `GET` of the URL's target. Header fields go straight into
/// the connection's reused write buffer; when the callback returns, the
/// client adds the request line, `Host` (unless set), the framing field
/// and `Connection`/`Expect` as asked:
///
/// - with a body (the handler returned [`Next::write()`](crate::Next::write)):
///   `Content-Length` if [`set_content_length`](Request::set_content_length)
///   was called, else `Transfer-Encoding: chunked`;
/// - without one: `Content-Length: 0` for `POST`, `PUT` and `PATCH`
///   (not when an `Upgrade` field was added);
/// - `CONNECT` (target `host:port`): never a body nor a framing field,
///   and `Host` is the target unless set. See
///   [raw mode](crate::client::Handler#raw-mode-upgrades-and-connect)
///   for what follows a `2xx`, or a `101` to a request with `Upgrade`.
///
/// ```
/// use nextloop::client::{Handler, Request, Response};
/// use nextloop::Next;
///
/// struct Upload(&'static [u8]);
///
/// impl Handler for Upload {
///     fn on_request(&mut self, req: &mut Request<'_>) -> Next {
///         req.set_method("PUT")
///             .set_target("/files/a.txt")
///             .header("Content-Type", "text/plain")
///             .set_content_length(self.0.len() as u64);
///         Next::write()
///     }
///     // on_request_writable writes self.0 ...
///     fn on_response(&mut self, res: Response<'_>) -> Next {
///         assert!(res.status() < 300);
///         Next::end()
///     }
/// }
/// ```
pub struct Request<'a> {
    buf: &'a mut Vec<u8>,
    /// Where this head starts in `buf`.
    start: usize,
    method: &'a mut String,
    target: &'a mut String,
    url: &'a Url,
    content_length: Option<u64>,
    expect_continue: bool,
    close: bool,
    has_host: bool,
    /// An `Upgrade` field was added.
    upgrade: bool,
    shared: &'static Shared,
    key: usize,
}

/// What the connection needs from a finished [`Request`].
pub(crate) struct Finished {
    pub encoder: BodyEncoder,
    pub expect_continue: bool,
    /// The request allows the connection to stay open.
    pub keep_alive: bool,
    pub is_head: bool,
    pub is_connect: bool,
    /// The request has an `Upgrade` field.
    pub upgrade: bool,
    /// Safe to send again (RFC 9110 §9.2.2), hence to pipeline and retry.
    pub idempotent: bool,
}

impl<'a> Request<'a> {
    /// A request for `url` whose head goes at the end of `buf`; `method`
    /// and `target` are the loop's reused scratch strings.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        buf: &'a mut Vec<u8>,
        method: &'a mut String,
        target: &'a mut String,
        url: &'a Url,
        shared: &'static Shared,
        key: usize,
    ) -> Request<'a> {
        method.clear();
        method.push_str("GET");
        target.clear();
        target.push_str(url.target());
        Request {
            start: buf.len(),
            buf,
            method,
            target,
            url,
            content_length: None,
            expect_continue: false,
            close: false,
            has_host: false,
            upgrade: false,
            shared,
            key,
        }
    }

    /// The method (`GET` unless set).
    pub fn method(&self) -> &str {
        self.method
    }

    /// Sets the method, e.g. `POST`. Methods are case-sensitive.
    ///
    /// # Panics
    ///
    /// If `method` is not a token (RFC 9110 §9.1).
    ///
    /// `method` may be an `http::Method`.
    pub fn set_method(&mut self, method: impl AsRef<str>) -> &mut Self {
        let method = method.as_ref();
        assert!(is_token(method.as_bytes()), "invalid method {method:?}");
        self.method.clear();
        self.method.push_str(method);
        self
    }

    /// The request target (the URL's `/path?query` unless set).
    pub fn target(&self) -> &str {
        self.target
    }

    /// Sets the request target: `/path?query`, `*` (for `OPTIONS`), or
    /// `host:port` (for `CONNECT`).
    ///
    /// # Panics
    ///
    /// If `target` is empty or holds a byte outside visible ASCII (spaces,
    /// control bytes, non-ASCII must be percent-encoded).
    pub fn set_target(&mut self, target: &str) -> &mut Self {
        assert!(
            !target.is_empty() && target.bytes().all(|b| (0x21..=0x7e).contains(&b)),
            "invalid request target {target:?}"
        );
        self.target.clear();
        self.target.push_str(target);
        self
    }

    /// The host the request goes to (from the URL; IPv6 in brackets).
    pub fn host(&self) -> &str {
        self.url.host()
    }

    /// The port the request goes to.
    pub fn port(&self) -> u16 {
        self.url.port()
    }

    /// Adds a header field.
    ///
    /// `Content-Length` sets the body length (as
    /// [`set_content_length`](Self::set_content_length));
    /// `Transfer-Encoding` is decided by the client and ignored here;
    /// `Connection: close` is honoured (see [`close`](Self::close));
    /// `Expect: 100-continue` is the same as
    /// [`expect_continue`](Self::expect_continue); a `Host` replaces the
    /// one the client would add.
    ///
    /// # Panics
    ///
    /// If `name` is not a token, or `value` holds CR, LF, NUL or another
    /// control byte, or a `Content-Length` is not a number.
    pub fn header(&mut self, name: impl AsRef<str>, value: impl AsRef<[u8]>) -> &mut Self {
        let (name, value) = (name.as_ref(), value.as_ref());
        match fields::added(name, value) {
            Added::ContentLength(n) => self.content_length = Some(n),
            Added::TransferEncoding => {}
            Added::ExpectContinue => self.expect_continue = true,
            added => {
                if let Added::Connection { close } = added {
                    self.close |= close;
                }
                self.has_host |= added == Added::Host;
                self.upgrade |= name.eq_ignore_ascii_case("upgrade");
                fields::push(self.buf, name.as_bytes(), value);
            }
        }
        self
    }

    /// Declares the body length: the body is sent with `Content-Length`
    /// instead of chunked.
    pub fn set_content_length(&mut self, len: u64) -> &mut Self {
        self.content_length = Some(len);
        self
    }

    /// The declared body length, if any.
    pub fn content_length(&self) -> Option<u64> {
        self.content_length
    }

    /// Sends `Expect: 100-continue` and holds the body back until the
    /// server answers `100 Continue` (or the continue timeout passes). If
    /// the server answers with a final status instead, the body is never
    /// sent (and the connection is not reused). Only meaningful with a body.
    pub fn expect_continue(&mut self) -> &mut Self {
        self.expect_continue = true;
        self
    }

    /// Asks for the connection to be closed after this exchange
    /// (`Connection: close`).
    pub fn close(&mut self) -> &mut Self {
        self.close = true;
        self
    }

    /// A [`Control`] for this exchange, to resume it from another thread
    /// after returning [`Next::wait()`](crate::Next::wait). It goes stale
    /// when the exchange ends.
    pub fn control(&self) -> Control {
        self.shared.control(self.key)
    }

    /// Writes the request line and the client's fields around what the
    /// handler added. `body`: the handler asked to write a body (a
    /// `CONNECT` never has one, RFC 9110 §9.3.6).
    pub(crate) fn finish(self, body: bool) -> Finished {
        let method = self.method.as_str();
        let is_connect = method == "CONNECT";
        let encoder = match (body, self.content_length) {
            // No framing fields: the connection becomes a tunnel.
            _ if is_connect => BodyEncoder::Length(0),
            (_, Some(n)) => {
                let mut digits = ArrayBuf::<20>::new();
                digits.push_u64(n);
                fields::push(self.buf, b"Content-Length", digits.as_slice());
                BodyEncoder::Length(n)
            }
            (true, None) => {
                self.buf
                    .extend_from_slice(b"Transfer-Encoding: chunked\r\n");
                BodyEncoder::Chunked
            }
            (false, None) => {
                if matches!(method, "POST" | "PUT" | "PATCH") && !self.upgrade {
                    self.buf.extend_from_slice(b"Content-Length: 0\r\n");
                }
                BodyEncoder::Length(0)
            }
        };
        let expect_continue = self.expect_continue && body && encoder != BodyEncoder::Length(0);
        if expect_continue {
            self.buf.extend_from_slice(b"Expect: 100-continue\r\n");
        }
        if self.close {
            self.buf.extend_from_slice(b"Connection: close\r\n");
        }
        self.buf.extend_from_slice(b"\r\n");

        // The request line and Host go in front of the handler's fields.
        let mut port = ArrayBuf::<8>::new();
        if !self.url.port_is_default() {
            port.push(b":");
            port.push_u64(u64::from(self.url.port()));
        }
        let host: [&[u8]; 4] = if self.has_host {
            [b"", b"", b"", b""]
        } else if is_connect {
            // The target URI of a CONNECT is its authority (RFC 9112 §3.2.3).
            [b"Host: ", self.target.as_bytes(), b"", b"\r\n"]
        } else {
            [
                b"Host: ",
                self.url.host().as_bytes(),
                port.as_slice(),
                b"\r\n",
            ]
        };
        splice(
            self.buf,
            self.start,
            &[
                method.as_bytes(),
                b" ",
                self.target.as_bytes(),
                b" HTTP/1.1\r\n",
                host[0],
                host[1],
                host[2],
                host[3],
            ],
        );
        Finished {
            encoder,
            expect_continue,
            keep_alive: !self.close,
            is_head: method == "HEAD",
            is_connect,
            upgrade: self.upgrade,
            idempotent: matches!(
                method,
                "GET" | "HEAD" | "PUT" | "DELETE" | "OPTIONS" | "TRACE"
            ),
        }
    }
}

/// Inserts `pieces` at `at`: one move of what follows, no allocation
/// beyond the buffer's own growth.
fn splice(buf: &mut Vec<u8>, at: usize, pieces: &[&[u8]]) {
    let len: usize = pieces.iter().map(|p| p.len()).sum();
    let end = buf.len();
    buf.resize(end + len, 0);
    buf.copy_within(at..end, at + len);
    let mut pos = at;
    for piece in pieces {
        buf[pos..pos + piece.len()].copy_from_slice(piece);
        pos += piece.len();
    }
}

impl std::fmt::Debug for Request<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("target", &self.target)
            .field("host", &self.url.host())
            .field("port", &self.url.port())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(url: &str, body: bool, fill: impl FnOnce(&mut Request<'_>)) -> (String, Finished) {
        let poll = mio::Poll::new().unwrap();
        let waker = mio::Waker::new(poll.registry(), mio::Token(0)).unwrap();
        let lease = crate::control::Lease::take(waker, 1);
        let url = Url::parse(url).unwrap();
        let (mut method, mut target) = (String::new(), String::new());
        let mut buf = b"previous".to_vec();
        let mut req = Request::new(&mut buf, &mut method, &mut target, &url, lease.shared(), 0);
        fill(&mut req);
        let finished = req.finish(body);
        (String::from_utf8(buf).unwrap(), finished)
    }

    #[test]
    fn default_is_a_get_of_the_url_target() {
        let (text, f) = head("http://Example.com/a?b", false, |_| {});
        assert_eq!(
            text,
            "previousGET /a?b HTTP/1.1\r\nHost: example.com\r\n\r\n"
        );
        assert!(f.idempotent && f.keep_alive && !f.is_head);
        assert_eq!(f.encoder, BodyEncoder::Length(0));
    }

    #[test]
    fn unknown_length_body_is_chunked() {
        let (text, f) = head("http://h:8080/", true, |r| {
            r.set_method("POST").header("X-A", "1");
        });
        assert_eq!(
            text,
            "previousPOST / HTTP/1.1\r\nHost: h:8080\r\nX-A: 1\r\nTransfer-Encoding: chunked\r\n\r\n"
        );
        assert!(!f.idempotent);
        assert_eq!(f.encoder, BodyEncoder::Chunked);
    }

    #[test]
    fn declared_length_expect_and_close() {
        let (text, f) = head("http://h/", true, |r| {
            r.set_method("PUT")
                .set_target("/x")
                .header("content-length", "5")
                .header("Transfer-Encoding", "gzip")
                .expect_continue()
                .close();
        });
        assert_eq!(
            text,
            "previousPUT /x HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n"
        );
        assert!(f.expect_continue && !f.keep_alive);
        assert_eq!(f.encoder, BodyEncoder::Length(5));
    }

    #[test]
    fn empty_post_says_so_and_host_can_be_replaced() {
        let (text, _) = head("http://h/", false, |r| {
            r.set_method("POST").header("Host", "other");
        });
        assert_eq!(
            text,
            "previousPOST / HTTP/1.1\r\nHost: other\r\nContent-Length: 0\r\n\r\n"
        );
    }

    #[test]
    #[should_panic(expected = "invalid header name")]
    fn bad_field_name_panics() {
        head("http://h/", false, |r| {
            r.header("Bad Name", "x");
        });
    }

    #[test]
    #[should_panic(expected = "invalid request target")]
    fn target_with_space_panics() {
        head("http://h/", false, |r| {
            r.set_target("/a b");
        });
    }
}
