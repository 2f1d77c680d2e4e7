//! [`Request`]: an owned request head and its body as a blocking reader.

use std::borrow::Cow;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::ops::Range;
use std::sync::Arc;

use crossbeam_channel::{Receiver, TryRecvError};

use super::link::{InputEnd, Link};
use super::{Chunk, Response};
use crate::proto::fields;
use crate::proto::h1::target;
use crate::server;
use crate::Version;

/// A request, owned and [`Send`]: its head, and its body as [`io::Read`].
///
/// The head is copied off the connection when it is complete, so a
/// `Request` can move to any thread. The body is not: it is streamed from
/// the event loop as you read it, a chunk at a time, so a handler that
/// reads slowly (or never) makes the loop stop reading from the client
/// rather than buffer the body. `read` blocks until body bytes arrive;
/// `Ok(0)` means the body is complete. If it ends early, `read` fails:
/// [`InvalidData`](io::ErrorKind::InvalidData) for malformed chunked
/// framing (the server answers 400 itself),
/// [`UnexpectedEof`](io::ErrorKind::UnexpectedEof) when the client stopped
/// sending, [`ConnectionAborted`](io::ErrorKind::ConnectionAborted) when
/// the connection is gone.
///
/// A body you do not read is the server's business: it is read and
/// discarded after the response if it is small, else the connection is
/// closed — it never becomes the next request.
///
/// ```
/// use std::io::Read;
/// use nextloop::hypersync::{Request, Response};
///
/// fn handler(req: &mut Request, res: &mut Response) {
///     match (req.method(), req.path()) {
///         ("POST", "/upload") => {
///             let mut body = Vec::new();
///             if req.take(1 << 20).read_to_end(&mut body).is_err() {
///                 res.set_status(400);
///                 return;
///             }
///             res.set_status(201);
///         }
///         _ => {
///             res.set_status(404);
///         }
///     }
/// }
/// ```
///
/// In pull mode ([`Incoming`](super::Incoming)) the request also carries
/// its response: [`respond`](Request::respond) or
/// [`take_response`](Request::take_response).
pub struct Request {
    head: Head,
    body: Body,
    /// Pull mode: the response not yet taken.
    reply: Option<Response>,
}

/// The head, copied out of the connection's read buffer.
struct Head {
    /// The method, the target, then every field name, back to back.
    text: String,
    /// Every field value, back to back.
    values: Vec<u8>,
    /// Where each field's name (in `text`) and value (in `values`) are.
    fields: Vec<(Range<usize>, Range<usize>)>,
    method_end: usize,
    target_end: usize,
    version: Version,
    content_length: Option<u64>,
    has_body: bool,
    remote_addr: SocketAddr,
    local_addr: SocketAddr,
    /// What the connection's TLS handshake settled.
    #[cfg(feature = "__tls")]
    tls: Option<crate::tls::TlsInfo>,
}

/// The body: chunks from the loop, read through.
struct Body {
    /// `None` once the body has ended (or when there is none).
    chunks: Option<Receiver<Vec<u8>>>,
    chunk: Chunk,
    /// How it ended, once it has.
    end: InputEnd,
    link: Arc<Link>,
}

impl Request {
    /// Copies `req`'s head. `chunks` is `None` when there is no body.
    pub(crate) fn new(
        req: &server::Request<'_>,
        chunks: Option<Receiver<Vec<u8>>>,
        link: Arc<Link>,
    ) -> Request {
        let (method, target) = (req.method(), req.target());
        let mut text = String::with_capacity(method.len() + target.len() + 16 * 8);
        text.push_str(method);
        text.push_str(target);
        let mut values = Vec::new();
        let mut fields = Vec::new();
        for (name, value) in req.headers() {
            let n = text.len();
            text.push_str(name);
            let v = values.len();
            values.extend_from_slice(value);
            fields.push((n..text.len(), v..values.len()));
        }
        Request {
            head: Head {
                text,
                values,
                fields,
                method_end: method.len(),
                target_end: method.len() + target.len(),
                version: req.version(),
                content_length: req.content_length(),
                has_body: req.has_body(),
                remote_addr: req.remote_addr(),
                local_addr: req.local_addr(),
                #[cfg(feature = "__tls")]
                tls: req.tls().cloned(),
            },
            body: Body {
                chunks,
                chunk: Chunk::default(),
                end: InputEnd::Complete,
                link,
            },
            reply: None,
        }
    }

    /// Pull mode: the request carries its response.
    pub(crate) fn with_reply(mut self, response: Response) -> Request {
        self.reply = Some(response);
        self
    }

    /// Takes the response back out without answering (the request could
    /// not be queued: the bridge answers 503 itself).
    pub(crate) fn defuse(&mut self) {
        if let Some(mut res) = self.reply.take() {
            res.defuse();
        }
    }

    /// Pull mode, shutting down: answers `503` without waiting.
    pub(crate) fn unavailable(mut self) {
        if let Some(mut res) = self.reply.take() {
            res.set_status(503).header("Retry-After", "1");
            res.end();
        }
    }

    /// The method, e.g. `GET`. Methods are case-sensitive.
    pub fn method(&self) -> &str {
        &self.head.text[..self.head.method_end]
    }

    /// The request target as sent: `/path?query`, `*` (OPTIONS only), an
    /// absolute URI, or (CONNECT only, and always) `host:port`.
    pub fn target(&self) -> &str {
        &self.head.text[self.head.method_end..self.head.target_end]
    }

    /// The path: the target up to `?`; for an absolute URI, the part after
    /// the authority (`/` if empty); `*` for `OPTIONS *`; empty for CONNECT
    /// (as [`server::Request::path`](crate::server::Request::path)).
    pub fn path(&self) -> &str {
        target::path(self.method(), self.target())
    }

    /// The authority the request is for: an absolute URI's, CONNECT's
    /// `host:port`, else the `Host` field; `None` when that is missing or
    /// empty (as
    /// [`server::Request::authority`](crate::server::Request::authority)).
    pub fn authority(&self) -> Option<&str> {
        target::authority(self.method(), self.target())
            .or_else(|| self.header_str("host").filter(|h| !h.is_empty()))
    }

    /// The target after `?`, if there is one.
    pub fn query(&self) -> Option<&str> {
        self.target().split_once('?').map(|(_, q)| q)
    }

    /// The query's `name=value` pairs, decoded (`+` is a space, `%xx` a
    /// byte; invalid UTF-8 is replaced). See
    /// [`server::Request::query_pairs`](crate::server::Request::query_pairs).
    pub fn query_pairs(&self) -> impl Iterator<Item = (Cow<'_, str>, Cow<'_, str>)> + '_ {
        target::query_pairs(self.query())
    }

    /// HTTP/1.0 or HTTP/1.1.
    pub fn version(&self) -> Version {
        self.head.version
    }

    /// The client's address (see
    /// [`server::Request::remote_addr`](crate::server::Request::remote_addr)).
    pub fn remote_addr(&self) -> SocketAddr {
        self.head.remote_addr
    }

    /// The server's address the connection came in on (see
    /// [`server::Request::local_addr`](crate::server::Request::local_addr)).
    pub fn local_addr(&self) -> SocketAddr {
        self.head.local_addr
    }

    /// Did the request come in on a Unix socket (see
    /// [`server::Request::is_unix`](crate::server::Request::is_unix))?
    pub fn is_unix(&self) -> bool {
        let addrs = crate::server::Addrs {
            remote: self.head.remote_addr,
            local: self.head.local_addr,
        };
        addrs.is_unix()
    }

    /// The head as `http::request::Parts` (`http` feature): method, URI
    /// (the target as sent), version and every field, copied.
    #[cfg(feature = "http")]
    pub fn to_http(&self) -> Result<http::request::Parts, http::Error> {
        crate::http_types::request_parts(
            self.method(),
            self.target(),
            self.version(),
            self.headers(),
        )
    }

    /// What the connection's TLS handshake settled (ALPN protocol, server
    /// name); `None` in clear (see
    /// [`server::Request::tls`](crate::server::Request::tls)).
    #[cfg(feature = "__tls")]
    pub fn tls(&self) -> Option<&crate::tls::TlsInfo> {
        self.head.tls.as_ref()
    }

    /// The first field named `name` (ASCII case-insensitive).
    ///
    /// ```
    /// use nextloop::hypersync::{Request, Response};
    ///
    /// fn handler(req: &mut Request, res: &mut Response) {
    ///     let json = req
    ///         .header_str("accept")
    ///         .is_some_and(|a| a.contains("application/json"));
    ///     res.header("Content-Type", if json { "application/json" } else { "text/plain" });
    /// }
    /// ```
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        fields::find(self.headers(), name)
    }

    /// Like [`header`](Self::header), if the value is UTF-8.
    pub fn header_str(&self, name: &str) -> Option<&str> {
        fields::utf8(self.header(name))
    }

    /// Every field, in order, as `(name, value)`.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &[u8])> + '_ {
        let head = &self.head;
        head.fields
            .iter()
            .map(move |(n, v)| (&head.text[n.clone()], &head.values[v.clone()]))
    }

    /// The body length when declared by `Content-Length` (0 when the
    /// request has no body framing at all); `None` for a chunked body.
    pub fn content_length(&self) -> Option<u64> {
        self.head.content_length
    }

    /// Does the request carry a body (chunked, or a non-zero length)?
    pub fn has_body(&self) -> bool {
        self.head.has_body
    }

    /// Pull mode: takes this request's [`Response`] to fill and stream
    /// yourself, on this thread or another; the request stays readable.
    /// The response goes out when it is dropped or
    /// [`finish`](Response::finish)ed.
    ///
    /// `None` if it was taken already, and always in push mode (where the
    /// handler is given the response).
    ///
    /// ```no_run
    /// use std::io::{Read, Write};
    /// use nextloop::hypersync::Server;
    ///
    /// let incoming = Server::bind("127.0.0.1:0")?.incoming()?;
    /// for mut req in &incoming {
    ///     let mut res = req.take_response().expect("pull mode");
    ///     let mut body = Vec::new();
    ///     req.read_to_end(&mut body)?;
    ///     res.header("Content-Type", "application/octet-stream");
    ///     res.write_all(&body)?;
    ///     res.finish()?; // returns once the loop has taken the whole response
    /// }
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn take_response(&mut self) -> Option<Response> {
        self.reply.take()
    }

    /// Pull mode: answers with a complete response — `status`, the given
    /// fields, `body` with its `Content-Length` — and returns once the
    /// event loop has taken all of it (it is then queued on the connection,
    /// which writes it out without further help from this thread). An
    /// error means the client is gone.
    ///
    /// Fails at once if the response was taken with
    /// [`take_response`](Self::take_response) (and always in push mode).
    /// Whatever of the request body is unread is left to the server.
    ///
    /// # Panics
    ///
    /// Like [`Response::set_status`] and [`Response::header`], on an
    /// invalid status or field.
    ///
    /// ```no_run
    /// use nextloop::hypersync::Server;
    ///
    /// let incoming = Server::bind("127.0.0.1:0")?.incoming()?;
    /// for req in &incoming {
    ///     let body = format!("you asked for {}\n", req.path());
    ///     req.respond(200, &[("Content-Type", "text/plain")], body)?;
    /// }
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn respond(
        mut self,
        status: impl crate::IntoStatus,
        headers: &[(&str, &str)],
        body: impl AsRef<[u8]>,
    ) -> io::Result<()> {
        let Some(mut res) = self.take_response() else {
            return Err(io::Error::other("this request's response was taken"));
        };
        let body = body.as_ref();
        res.set_status(status);
        for (name, value) in headers {
            res.header(name, value);
        }
        res.set_content_length(body.len() as u64);
        io::Write::write_all(&mut res, body)?;
        res.finish()
    }
}

impl io::Read for Request {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        self.body.read(out)
    }
}

impl Body {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        loop {
            if let Some(n) = self.chunk.read(out) {
                return Ok(n);
            }
            let Some(chunks) = &self.chunks else {
                return match self.end {
                    InputEnd::Complete => Ok(0),
                    InputEnd::Malformed => Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "malformed request body",
                    )),
                    InputEnd::CutShort => Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "request body cut short",
                    )),
                    InputEnd::Gone => Err(io::Error::new(
                        io::ErrorKind::ConnectionAborted,
                        "connection closed",
                    )),
                };
            };
            let next = match chunks.try_recv() {
                Ok(chunk) => Some(chunk),
                Err(TryRecvError::Disconnected) => None,
                Err(TryRecvError::Empty) => {
                    // Ask the loop for more, then block until it comes.
                    self.link.begin_waiting();
                    let chunk = chunks.recv().ok();
                    self.link.end_waiting();
                    chunk
                }
            };
            match next {
                Some(chunk) => {
                    self.chunk = Chunk::new(chunk);
                }
                None => {
                    self.chunks = None;
                    self.chunk = Chunk::default();
                    self.end = self.link.input_end();
                }
            }
        }
    }
}

impl Drop for Request {
    /// Pull mode: a request dropped with its response untaken is answered
    /// `500 Internal Server Error`.
    fn drop(&mut self) {
        if let Some(mut res) = self.reply.take() {
            res.fail("request dropped without a response");
        }
    }
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("method", &self.method())
            .field("target", &self.target())
            .field("version", &self.version())
            .field("headers", &self.head.fields.len())
            .finish()
    }
}
