//! [`Client`]: blocking HTTP requests on top of the native
//! [`client`](crate::client).
//!
//! Each call hands a small native handler (`Fetch`) to the client's loop
//! and blocks on a channel for the response head. The body then streams
//! through a bounded channel of chunks: the handler reads from the
//! connection only while the channel has room, and parks
//! ([`Next::wait()`]) when it is full; the reading thread wakes it with
//! [`Control::ready`] after taking a chunk. So a slow reader makes the
//! loop stop reading from the server — backpressure, not buffering —
//! and the read timeout does not run against the reader's own slowness.

use std::fmt;
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{Arc, Mutex, OnceLock};

use crossbeam_channel::{Receiver, Sender};

use super::Chunk;
use crate::client::{self, Error, Handler};
use crate::proto::fields::{self, is_field_value, is_token};
use crate::{Control, Decoder, Encoder, Next, Version};

/// Body chunks in flight from the loop to the reading thread, at most.
const CHUNKS: usize = 2;
/// Largest body chunk.
const CHUNK: usize = 64 * 1024;

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
    pub fn request(&self, method: &str, url: &str) -> RequestBuilder<'_> {
        let error = (!is_token(method.as_bytes()))
            .then_some(Error::InvalidRequest("the method is not a valid token"));
        RequestBuilder {
            client: self,
            method: method.to_string(),
            url: url.to_string(),
            headers: Vec::new(),
            body: Vec::new(),
            error,
        }
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
    url: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
    /// The first thing found wrong, reported by `send`.
    error: Option<Error>,
}

impl fmt::Debug for RequestBuilder<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestBuilder")
            .field("method", &self.method)
            .field("url", &self.url)
            .field("headers", &self.headers.len())
            .field("body", &self.body.len())
            .finish()
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
    pub fn header(mut self, name: &str, value: impl AsRef<[u8]>) -> Self {
        let value = value.as_ref();
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
        self.body = body.into();
        self
    }

    /// Sends the request and waits for the response head.
    pub fn send(self) -> Result<ClientResponse, Error> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let (tx, rx) = crossbeam_channel::bounded(CHUNKS);
        let link = Arc::new(Link::default());
        let fetch = Fetch {
            method: self.method,
            headers: self.headers,
            body: self.body,
            pos: 0,
            tx,
            link: Arc::clone(&link),
        };
        self.client.native.request(&self.url, fetch)?;
        match rx.recv() {
            Ok(Msg::Head(head)) => Ok(ClientResponse {
                head,
                rx,
                link,
                chunk: Chunk::default(),
                done: false,
            }),
            _ => Err(link.take_error().unwrap_or(Error::Shutdown)),
        }
    }
}

/// What travels from the loop to the calling thread.
enum Msg {
    Head(Head),
    Data(Vec<u8>),
    End,
}

/// A response head, owned.
struct Head {
    status: u16,
    reason: String,
    version: Version,
    headers: Vec<(String, Vec<u8>)>,
}

/// Shared by a `Fetch` on the loop and its `ClientResponse`.
#[derive(Default)]
struct Link {
    /// The exchange's `Control`, from `on_request`.
    control: OnceLock<Control>,
    /// The fetch returned `Next::wait()` and nobody has woken it yet.
    parked: AtomicBool,
    /// The response was dropped: stop reading.
    cancelled: AtomicBool,
    /// The whole body was read (even if `End` did not fit in the channel).
    complete: AtomicBool,
    /// Why the exchange failed.
    error: Mutex<Option<Error>>,
}

impl Link {
    /// Wakes the fetch if it is parked (the reader made room, or left).
    fn unpark(&self) {
        if self.parked.swap(false, SeqCst) {
            if let Some(control) = self.control.get() {
                // Gone: the exchange ended; the channel says how.
                let _ = control.ready(Next::read());
            }
        }
    }

    fn take_error(&self) -> Option<Error> {
        self.error.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

/// The native handler behind one blocking call.
struct Fetch {
    method: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
    /// How much of the body is written.
    pos: usize,
    tx: Sender<Msg>,
    link: Arc<Link>,
}

impl Fetch {
    /// Parks until the reader makes room, looking once more after parking
    /// so that room made in between is not missed.
    fn park(&self) -> Option<Next> {
        self.link.parked.store(true, SeqCst);
        let go_on = !self.tx.is_full() || self.link.cancelled.load(SeqCst);
        if go_on && self.link.parked.swap(false, SeqCst) {
            return None;
        }
        // Either still full, or the reader took the parked bit and a
        // wake-up is on its way.
        Some(Next::wait())
    }
}

impl Handler for Fetch {
    fn on_request(&mut self, req: &mut client::Request<'_>) -> Next {
        let _ = self.link.control.set(req.control());
        self.pos = 0;
        req.set_method(&self.method);
        for (name, value) in &self.headers {
            req.header(name, value);
        }
        if self.body.is_empty() {
            return Next::read();
        }
        req.set_content_length(self.body.len() as u64);
        Next::write()
    }

    fn on_request_writable(&mut self, body: &mut Encoder<'_>) -> Next {
        while self.pos < self.body.len() {
            match body.write(&self.body[self.pos..]) {
                Ok(n) => self.pos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Next::write(),
                Err(_) => return Next::remove(),
            }
        }
        Next::read()
    }

    fn on_response(&mut self, res: client::Response<'_>) -> Next {
        let head = Head {
            status: res.status(),
            reason: res.reason().to_string(),
            version: res.version(),
            headers: res
                .headers()
                .map(|(n, v)| (n.to_string(), v.to_vec()))
                .collect(),
        };
        // The channel is empty: the head always fits. If the caller is
        // gone, there is nobody to read the body.
        match self.tx.try_send(Msg::Head(head)) {
            Ok(()) => Next::read(),
            Err(_) => Next::end(),
        }
    }

    fn on_response_readable(&mut self, body: &mut Decoder<'_>) -> Next {
        let mut buf = [0u8; 16 * 1024];
        loop {
            if self.link.cancelled.load(SeqCst) {
                return Next::end();
            }
            if self.tx.is_full() {
                match self.park() {
                    Some(next) => return next,
                    None => continue,
                }
            }
            // Only what can be sent is taken off the connection.
            let mut chunk = Vec::new();
            let mut next = None;
            while chunk.len() < CHUNK {
                let room = buf.len().min(CHUNK - chunk.len());
                match body.read(&mut buf[..room]) {
                    Ok(0) => {
                        self.link.complete.store(true, SeqCst);
                        next = Some(Next::end());
                        break;
                    }
                    Ok(n) => chunk.extend_from_slice(&buf[..n]),
                    // WouldBlock: wait for more. Anything else: the
                    // connection reports it through `on_error`.
                    Err(_) => {
                        next = Some(Next::read());
                        break;
                    }
                }
            }
            if !chunk.is_empty() && self.tx.try_send(Msg::Data(chunk)).is_err() {
                // Not full (only we send): the reader is gone.
                return Next::end();
            }
            if let Some(next) = next {
                if self.link.complete.load(SeqCst) {
                    // If the channel is full, the reader learns the end
                    // from `complete` once this handler is gone.
                    let _ = self.tx.try_send(Msg::End);
                }
                return next;
            }
        }
    }

    fn on_error(&mut self, err: Error) -> Next {
        *self.link.error.lock().unwrap_or_else(|e| e.into_inner()) = Some(err);
        Next::remove()
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

    /// The first field named `name` (ASCII case-insensitive), if its
    /// value is UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        fields::utf8(self.header_bytes(name))
    }

    /// The first field named `name` (ASCII case-insensitive), as bytes.
    pub fn header_bytes(&self, name: &str) -> Option<&[u8]> {
        fields::find(self.headers(), name)
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
            match self.rx.recv() {
                Ok(Msg::Data(chunk)) => {
                    self.chunk = Chunk::new(chunk);
                    self.link.unpark();
                }
                Ok(Msg::End) => self.done = true,
                Ok(Msg::Head(_)) => {}
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
        self.link.cancelled.store(true, SeqCst);
        self.link.unpark();
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
