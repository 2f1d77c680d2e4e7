//! [`Client`]: blocking HTTP requests on top of the native
//! [`client`](crate::client).
//!
//! Each call hands a small native handler (`Fetch`, in
//! [`fetch`](super::fetch)) to the client's loop and blocks on a channel
//! for the response head. The body then streams through a bounded channel
//! of chunks: the handler reads from the connection only while the
//! channel has room, and parks ([`Next::wait()`](crate::Next::wait)) when
//! it is full; the reading thread wakes it after taking a chunk. So a slow
//! reader makes the loop stop reading from the server — backpressure, not
//! buffering — and the read timeout does not run against the reader's own
//! slowness. A request body from an `io::Read` comes the other way the
//! same way, pumped by a thread of its own.

use std::fmt;
use std::io::{self, Read};
use std::sync::atomic::Ordering::SeqCst;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};

use super::fetch::{pump, Fetch, Head, Link, Msg, Out};
use super::{Chunk, Upgraded};
use crate::client::{self, Error};
use crate::proto::fields::{self, is_field_value, is_token};
use crate::{Detached, Version};

/// Body chunks in flight from the loop to the reading thread, at most.
pub(super) const CHUNKS: usize = 2;
/// Largest body chunk.
pub(super) const CHUNK: usize = 64 * 1024;

/// A blocking HTTP/1.1 client with a keep-alive pool.
///
/// ```no_run
/// use std::io::Read;
/// use nextloop::hypersync::Client;
///
/// let client = Client::new();
/// let mut res = client.get("http://127.0.0.1:3000/")?;
/// println!("{} {:?}", res.status(), res.header("content-type"));
/// let mut body = String::new();
/// res.read_to_string(&mut body)?;
///
/// let res = client.post("http://127.0.0.1:3000/echo", "hello")?;
/// assert!(res.status() < 500);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// It runs a native [`client::Client`] (its own loop thread, its pool,
/// its timeouts); configure that one and convert it for other settings:
///
/// ```no_run
/// use std::time::Duration;
/// use nextloop::{client, hypersync};
///
/// let native = client::Client::builder()
///     .response_timeout(Duration::from_secs(5))
///     .build()?;
/// let client = hypersync::Client::from(native);
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// Clones share the loop and the pool. Each call blocks its thread until
/// the response head has arrived (or the request failed); the body is
/// read as the [`ClientResponse`] is read.
#[derive(Clone, Debug)]
pub struct Client {
    native: client::Client,
}

impl From<client::Client> for Client {
    fn from(native: client::Client) -> Client {
        Client { native }
    }
}

impl Default for Client {
    fn default() -> Client {
        Client::new()
    }
}

impl Client {
    /// A client with the default settings.
    ///
    /// # Panics
    ///
    /// If the loop thread cannot be started (as [`std::thread::spawn`]);
    /// use `Client::from(client::Client::new()?)` to handle that.
    pub fn new() -> Client {
        let native = client::Client::new().expect("failed to start the client's event loop");
        Client { native }
    }

    /// `GET url`.
    pub fn get(&self, url: &str) -> Result<ClientResponse, Error> {
        self.request("GET", url).send()
    }

    /// `POST url` with `body` (sent with its `Content-Length`).
    pub fn post(&self, url: &str, body: impl Into<Vec<u8>>) -> Result<ClientResponse, Error> {
        self.request("POST", url).body(body).send()
    }

    /// A request with any method, to add fields and a body to.
    ///
    /// ```no_run
    /// use nextloop::hypersync::Client;
    ///
    /// let res = Client::new()
    ///     .request("PUT", "http://127.0.0.1:3000/notes/1")
    ///     .header("Content-Type", "text/plain")
    ///     .body("remember the milk")
    ///     .send()?;
    /// assert_eq!(res.status(), 204);
    /// # Ok::<(), nextloop::client::Error>(())
    /// ```
    ///
    /// `method` may be an `http::Method`.
    pub fn request(&self, method: impl AsRef<str>, url: &str) -> RequestBuilder<'_> {
        let method = method.as_ref();
        let error = (!is_token(method.as_bytes()))
            .then_some(Error::InvalidRequest("the method is not a valid token"));
        RequestBuilder {
            client: self,
            method: method.to_string(),
            target: None,
            url: url.to_string(),
            headers: Vec::new(),
            body: Body::Bytes(Vec::new()),
            timeout: None,
            error,
        }
    }
}

impl Client {
    /// A `CONNECT` to the proxy at `proxy_url` for a tunnel to
    /// `authority` (`host:port`, the request target and its `Host`);
    /// [`upgrade`](RequestBuilder::upgrade) it. No body, no framing
    /// fields. A `2xx` answer gives the tunnel; anything else (a `407`,
    /// a `502`) is a normal response.
    ///
    /// ```no_run
    /// use std::io::{Read, Write};
    /// use nextloop::hypersync::Client;
    ///
    /// let client = Client::new();
    /// let (res, tunnel) = client
    ///     .connect("http://127.0.0.1:3128", "example.com:80")
    ///     .header("Proxy-Authorization", "Basic dXNlcjpwYXNz")
    ///     .upgrade()?;
    /// let Some(mut tunnel) = tunnel else {
    ///     panic!("the proxy said {}", res.status());
    /// };
    /// tunnel.write_all(b"GET / HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n")?;
    /// let mut answer = Vec::new();
    /// tunnel.read_to_end(&mut answer)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn connect(&self, proxy_url: &str, authority: &str) -> RequestBuilder<'_> {
        let mut builder = self.request("CONNECT", proxy_url);
        let valid = authority.contains(':')
            && authority
                .bytes()
                .all(|b| (0x21..=0x7e).contains(&b) && b != b'/');
        if !valid {
            builder
                .error
                .get_or_insert(Error::InvalidRequest("a CONNECT target is host:port"));
        }
        builder.target = Some(authority.to_string());
        builder
    }
}

/// A request being built by [`Client::request`]; [`send`](Self::send) it.
///
/// ```no_run
/// use std::io::Read;
/// use nextloop::hypersync::Client;
///
/// let client = Client::new();
/// let mut res = client
///     .request("POST", "http://127.0.0.1:3000/api/items")
///     .header("Content-Type", "application/json")
///     .header("Accept", "application/json")
///     .body(r#"{"name":"lamp"}"#)
///     .send()?;
/// let mut answer = String::new();
/// res.read_to_string(&mut answer)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "a request does nothing until sent"]
pub struct RequestBuilder<'c> {
    client: &'c Client,
    method: String,
    /// The request target, if not the URL's (a CONNECT's).
    target: Option<String>,
    url: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Body,
    timeout: Option<Duration>,
    /// The first thing found wrong, reported by `send`.
    error: Option<Error>,
}

/// A request body as given to the builder.
enum Body {
    Bytes(Vec<u8>),
    /// Read by the calling thread in `send`, with its length if known.
    Reader(Box<dyn Read + Send>, Option<u64>),
}

impl fmt::Debug for RequestBuilder<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestBuilder")
            .field("method", &self.method)
            .field("url", &self.url)
            .field("headers", &self.headers.len())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl RequestBuilder<'_> {
    /// Adds a header field. `Host`, `Content-Length` and
    /// `Transfer-Encoding` are set by the client; `Connection: close`
    /// closes the connection after the exchange.
    ///
    /// An invalid name (not a token) or value (CR, LF, NUL or another
    /// control byte) makes [`send`](Self::send) fail with
    /// [`Error::InvalidRequest`].
    pub fn header(mut self, name: impl AsRef<str>, value: impl AsRef<[u8]>) -> Self {
        let (name, value) = (name.as_ref(), value.as_ref());
        if !is_token(name.as_bytes()) {
            self.error
                .get_or_insert(Error::InvalidRequest("a header name is not a valid token"));
        } else if !is_field_value(value) {
            self.error.get_or_insert(Error::InvalidRequest(
                "a header value holds a control byte (CR, LF, NUL, ...)",
            ));
        } else if !["content-length", "transfer-encoding", "host"]
            .iter()
            .any(|n| name.eq_ignore_ascii_case(n))
        {
            self.headers.push((name.to_string(), value.to_vec()));
        }
        self
    }

    /// Sets the body (sent with its `Content-Length`).
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = Body::Bytes(body.into());
        self
    }

    /// Streams the body from `reader`, read on the calling thread during
    /// [`send`](Self::send) in chunks of up to 64 KiB, as fast as the
    /// connection takes them: with `Content-Length: len` if `len` is
    /// given (the reader must then give exactly that much), else chunked.
    ///
    /// A read error fails the request with [`Error::Io`] (the connection
    /// is closed: the server must not take a part for the whole). The body
    /// is pumped by a thread of its own, so a server that answers while it
    /// reads (an echo) is read from meanwhile; `send` returns at the
    /// response head, and the rest of the body goes on behind it. A
    /// read that blocks keeps that thread until it returns (nothing can
    /// interrupt it); the exchange itself still ends at its
    /// [`timeout`](Self::timeout).
    ///
    /// ```no_run
    /// use nextloop::hypersync::Client;
    ///
    /// let file = std::fs::File::open("upload.bin")?;
    /// let len = file.metadata()?.len();
    /// let res = Client::new()
    ///     .request("PUT", "http://127.0.0.1:3000/files/upload.bin")
    ///     .body_reader(file, Some(len))
    ///     .send()?;
    /// assert_eq!(res.status(), 201);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn body_reader(mut self, reader: impl Read + Send + 'static, len: Option<u64>) -> Self {
        self.body = Body::Reader(Box::new(reader), len);
        self
    }

    /// Bounds the whole exchange — waiting for a connection, sending,
    /// the response head and the body read through the
    /// [`ClientResponse`] — to `d`. Past it, `send` or `read` fails with
    /// [`Error::Timeout`] (as an [`io::Error`] of kind
    /// [`TimedOut`](io::ErrorKind::TimedOut) from `read`) and the
    /// exchange is given up. The native client's own timeouts (connect,
    /// response, read) still apply within it.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use nextloop::hypersync::Client;
    ///
    /// let res = Client::new()
    ///     .request("GET", "http://127.0.0.1:3000/slow")
    ///     .timeout(Duration::from_secs(2))
    ///     .send();
    /// if let Err(e) = &res {
    ///     assert!(e.is_timeout());
    /// }
    /// ```
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = Some(d);
        self
    }

    /// Sends the request and waits for the response head.
    ///
    /// A server that switches protocols here (a `101` to a request with
    /// `Upgrade`, a `2xx` to `CONNECT`) gives a response whose body is
    /// every byte it sends until it closes, and nothing can be written:
    /// use [`upgrade`](Self::upgrade) to talk the new protocol.
    pub fn send(self) -> Result<ClientResponse, Error> {
        self.start(None)
    }

    /// Sends the request — one with `Upgrade` (and `Connection:
    /// upgrade`), or a [`Client::connect`] — and waits for the response
    /// head. If the server switches (a `101`, or a `2xx` to `CONNECT`),
    /// the connection leaves the client and comes back as
    /// [`Upgraded`], a blocking `Read + Write`, with the response head
    /// (whose body is empty); the bytes the server sent right after its
    /// head are the first that `Upgraded` reads. Any other answer (`200`,
    /// `407`, ...) is a normal response, `None`, its body read as usual.
    ///
    /// ```no_run
    /// use std::io::{Read, Write};
    /// use nextloop::hypersync::Client;
    ///
    /// let (res, conn) = Client::new()
    ///     .request("GET", "http://127.0.0.1:3000/chat")
    ///     .header("Connection", "upgrade")
    ///     .header("Upgrade", "my-protocol")
    ///     .upgrade()?;
    /// match conn {
    ///     Some(mut conn) => {
    ///         conn.write_all(b"hello")?;
    ///         conn.shutdown_write()?;
    ///         let mut answer = Vec::new();
    ///         conn.read_to_end(&mut answer)?;
    ///     }
    ///     None => eprintln!("declined: {}", res.status()),
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// The [`timeout`](Self::timeout) bounds the wait for the head and
    /// for the hand-over, not the upgraded connection (set its own with
    /// [`Upgraded::stream`]`.set_read_timeout`). Over `https://` the
    /// connection cannot leave the client's loop (the TLS session lives
    /// there): a switch then fails with [`Error::InvalidRequest`], the
    /// connection closed; use the native [`client`](crate::client)'s raw
    /// mode instead.
    pub fn upgrade(self) -> Result<(ClientResponse, Option<Upgraded>), Error> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        let res = self.start(Some(tx))?;
        if !res.head.upgraded {
            return Ok((res, None));
        }
        let conn = match res.deadline {
            Some(at) => rx.recv_deadline(at),
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        let conn = match conn {
            Ok(conn) => conn,
            Err(RecvTimeoutError::Timeout) => return Err(Error::Timeout),
            Err(RecvTimeoutError::Disconnected) => {
                return Err(res.link.take_error().unwrap_or(Error::InvalidRequest(
                    "an upgraded TLS connection cannot leave the client's loop",
                )))
            }
        };
        let conn = Upgraded::new(conn).map_err(Error::Io)?;
        Ok((res, Some(conn)))
    }

    fn start(
        self,
        upgrade: Option<crossbeam_channel::Sender<Detached>>,
    ) -> Result<ClientResponse, Error> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let deadline = self.timeout.and_then(|d| Instant::now().checked_add(d));
        let (tx, rx) = crossbeam_channel::bounded(CHUNKS);
        let link = Arc::new(Link::default());
        let (body, reader) = match self.body {
            Body::Bytes(bytes) => (Out::Bytes(bytes, 0), None),
            Body::Reader(reader, len) => {
                let (chunks, from_caller) = crossbeam_channel::bounded(CHUNKS);
                let out = Out::Stream {
                    chunks: from_caller,
                    chunk: Chunk::default(),
                    len,
                    taken: false,
                    done: false,
                };
                (out, Some((reader, chunks)))
            }
        };
        let fetch = Fetch {
            method: self.method,
            target: self.target,
            headers: self.headers,
            body,
            tx,
            link: Arc::clone(&link),
            deadline,
            head_taken: false,
            upgrade,
            switched: false,
        };
        self.client.native.request(&self.url, fetch)?;
        if let Some((reader, chunks)) = reader {
            // On a thread of its own, so that a server answering while it
            // reads the body (an echo) is read from meanwhile.
            let pumping_link = Arc::clone(&link);
            let pumping = std::thread::Builder::new()
                .name("nextloop-body".into())
                .spawn(move || pump(reader, chunks, &pumping_link, deadline));
            if let Err(e) = pumping {
                link.cancel();
                return Err(Error::Io(e));
            }
        }
        match recv(&rx, deadline) {
            Ok(Msg::Head(head)) => Ok(ClientResponse {
                head,
                rx,
                link,
                chunk: Chunk::default(),
                done: false,
                deadline,
            }),
            Ok(_) | Err(RecvTimeoutError::Disconnected) => {
                Err(link.take_error().unwrap_or(Error::Shutdown))
            }
            Err(RecvTimeoutError::Timeout) => {
                link.cancel();
                Err(Error::Timeout)
            }
        }
    }
}

/// The next message, waiting until `deadline` at most.
fn recv(rx: &Receiver<Msg>, deadline: Option<Instant>) -> Result<Msg, RecvTimeoutError> {
    match deadline {
        Some(at) => rx.recv_deadline(at),
        None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
    }
}

/// A response from [`Client`]: status and fields, and the body as
/// [`io::Read`], streamed from the connection as you read it.
///
/// `read` blocks until body bytes arrive; `Ok(0)` is the end of the body.
/// If the exchange fails midway, `read` returns the
/// [`client::Error`] as an [`io::Error`] (its
/// [`io_kind`](client::Error::io_kind), the error itself as the inner
/// error): for example [`UnexpectedEof`](io::ErrorKind::UnexpectedEof)
/// for a body cut short, [`InvalidData`](io::ErrorKind::InvalidData) for
/// a malformed one, [`TimedOut`](io::ErrorKind::TimedOut).
///
/// Dropping it before the end lets the connection go: a small unread rest
/// is drained and the connection reused, else it is closed.
///
/// ```no_run
/// use std::io::{BufRead, BufReader};
/// use nextloop::hypersync::Client;
///
/// let res = Client::new().get("http://127.0.0.1:3000/log")?;
/// if res.status() != 200 {
///     eprintln!("{} {}", res.status(), res.reason());
/// }
/// for (name, value) in res.headers() {
///     eprintln!("{name}: {}", String::from_utf8_lossy(value));
/// }
/// // The body streams: lines are handled as they arrive.
/// for line in BufReader::new(res).lines() {
///     println!("{}", line?);
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ClientResponse {
    head: Head,
    rx: Receiver<Msg>,
    link: Arc<Link>,
    chunk: Chunk,
    done: bool,
    deadline: Option<Instant>,
}

impl ClientResponse {
    /// The status code.
    pub fn status(&self) -> u16 {
        self.head.status
    }

    /// The reason phrase as sent (may be empty).
    pub fn reason(&self) -> &str {
        &self.head.reason
    }

    /// HTTP/1.0 or HTTP/1.1.
    pub fn version(&self) -> Version {
        self.head.version
    }

    /// The first field named `name` (ASCII case-insensitive), as the
    /// server's [`Request::header`](crate::server::Request::header) gives
    /// it.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        fields::find(self.headers(), name)
    }

    /// Like [`header`](Self::header), if the value is UTF-8.
    pub fn header_str(&self, name: &str) -> Option<&str> {
        fields::utf8(self.header(name))
    }

    /// The body length declared by `Content-Length` (`Some(0)` where
    /// there is no body: HEAD, 204, 304); `None` for a chunked or
    /// close-delimited body.
    pub fn content_length(&self) -> Option<u64> {
        self.head.content_length
    }

    /// The head as `http::response::Parts` (`http` feature): status,
    /// version and every field, copied (not the reason phrase).
    #[cfg(feature = "http")]
    pub fn to_http(&self) -> Result<http::response::Parts, http::Error> {
        crate::http_types::response_parts(self.status(), self.version(), self.headers())
    }

    /// Every field, in order, as `(name, value)`.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &[u8])> + '_ {
        self.head
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_slice()))
    }
}

impl Read for ClientResponse {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            if let Some(n) = self.chunk.read(out) {
                return Ok(n);
            }
            if self.done || out.is_empty() {
                return Ok(0);
            }
            match recv(&self.rx, self.deadline) {
                Ok(Msg::Data(chunk)) => {
                    self.chunk = Chunk::new(chunk);
                    self.link.unpark();
                }
                Ok(Msg::End) => self.done = true,
                Ok(Msg::Head(_)) => {}
                Err(RecvTimeoutError::Timeout) => {
                    self.done = true;
                    self.link.cancel();
                    return Err(Error::Timeout.into());
                }
                Err(_) if self.link.complete.load(SeqCst) => self.done = true,
                Err(_) => {
                    self.done = true;
                    let err = self.link.take_error().unwrap_or(Error::Incomplete);
                    return Err(err.into());
                }
            }
        }
    }
}

impl Drop for ClientResponse {
    /// Tells the fetch to stop reading, waking it if it is parked.
    fn drop(&mut self) {
        self.link.cancel();
    }
}

impl fmt::Debug for ClientResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientResponse")
            .field("status", &self.head.status)
            .field("version", &self.head.version)
            .field("headers", &self.head.headers.len())
            .finish_non_exhaustive()
    }
}
