//! An HTTP CONNECT proxy: `CONNECT host:port` opens a TCP connection to
//! that address and relays bytes both ways; `200` once connected, `502`
//! when the connect fails, `405` for any other method.
//!
//!     cargo run --release --example tunnel -- 127.0.0.1:3128
//!     curl -p -x http://127.0.0.1:3128 http://127.0.0.1:8080/
//!
//! How it fits the loop without blocking it:
//! - the connect runs on a short-lived thread (name resolution blocks),
//!   which hands the stream back and wakes the exchange with `Control`;
//! - the upstream socket is then non-blocking and owned by the handler,
//!   which reads and writes it directly in its callbacks — no copy through
//!   channels; one watcher thread with its own mio `Poll` (edge-triggered)
//!   calls `Control::ready` when an upstream socket becomes readable or
//!   writable;
//! - each direction has one fixed buffer of [`BUF`] bytes: when the
//!   receiving side is full the handler stops reading the sending side, so
//!   neither a slow client nor a slow upstream makes it buffer more;
//! - each direction closes on its own: the client's FIN (`Ok(0)`) shuts
//!   the upstream's write side once its buffer is out; the upstream's FIN
//!   becomes `Next::end()`, which shuts the client's side once written.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Registry, Token};
use nextloop::server::{Handler, Request, Response, Server};
use nextloop::{Control, Decoder, Encoder, Error, Next};
use slab::Slab;

/// Bytes buffered per direction, at most.
const BUF: usize = 64 * 1024;
/// How long a connect may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// A tunnel that moves nothing for this long is closed.
const IDLE: Duration = Duration::from_secs(300);

/// The watcher: one thread with a mio `Poll` over every upstream socket;
/// an event wakes the exchange that owns the socket.
#[derive(Clone)]
pub struct Watcher {
    registry: Arc<Registry>,
    /// Token → the exchange to wake.
    exchanges: Arc<Mutex<Slab<Control>>>,
}

impl Watcher {
    /// Starts the watcher thread.
    pub fn start() -> io::Result<Watcher> {
        let mut poll = Poll::new()?;
        let watcher = Watcher {
            registry: Arc::new(poll.registry().try_clone()?),
            exchanges: Arc::new(Mutex::new(Slab::new())),
        };
        let exchanges = Arc::clone(&watcher.exchanges);
        thread::Builder::new()
            .name("tunnel-watcher".into())
            .spawn(move || {
                let mut events = Events::with_capacity(256);
                loop {
                    if let Err(e) = poll.poll(&mut events, None) {
                        if e.kind() == ErrorKind::Interrupted {
                            continue;
                        }
                        eprintln!("tunnel watcher: {e}");
                        return;
                    }
                    let exchanges = exchanges.lock().unwrap();
                    for event in events.iter() {
                        if let Some(control) = exchanges.get(event.token().0) {
                            // Gone: the exchange ended meanwhile.
                            let _ = control.ready(Next::read_and_write());
                        }
                    }
                }
            })?;
        Ok(watcher)
    }

    /// Watches `stream` for `control`'s exchange; returns its token.
    fn watch(&self, stream: &mut TcpStream, control: Control) -> io::Result<Token> {
        let token = Token(self.exchanges.lock().unwrap().insert(control));
        let interest = Interest::READABLE | Interest::WRITABLE;
        if let Err(e) = self.registry.register(stream, token, interest) {
            self.exchanges.lock().unwrap().remove(token.0);
            return Err(e);
        }
        Ok(token)
    }

    fn unwatch(&self, stream: &mut TcpStream, token: Token) {
        let _ = self.registry.deregister(stream);
        self.exchanges.lock().unwrap().try_remove(token.0);
    }
}

/// A fixed buffer of bytes on their way from one side to the other.
struct Pipe {
    buf: Box<[u8]>,
    start: usize,
    end: usize,
}

impl Pipe {
    fn new() -> Pipe {
        Pipe {
            buf: vec![0; BUF].into_boxed_slice(),
            start: 0,
            end: 0,
        }
    }

    fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Reads from `from` into the buffer while it is empty (so it is
    /// never more than one read ahead). `Ok(true)`: `from` has ended.
    fn fill(&mut self, from: &mut impl Read) -> io::Result<bool> {
        if !self.is_empty() {
            return Ok(false);
        }
        self.start = 0;
        self.end = 0;
        match from.read(&mut self.buf) {
            Ok(0) => Ok(true),
            Ok(n) => {
                self.end = n;
                Ok(false)
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Writes what it holds to `to` until `to` would block.
    fn drain(&mut self, to: &mut impl Write) -> io::Result<()> {
        while !self.is_empty() {
            match to.write(&self.buf[self.start..self.end]) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(n) => self.start += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// The connect's outcome, handed from its thread to the handler.
type Connected = Arc<Mutex<Option<io::Result<std::net::TcpStream>>>>;

enum Stage {
    /// Not a CONNECT, or a bad target: answer this status.
    Refuse(u16, &'static str),
    /// The connect runs on its thread.
    Connecting(Connected),
    /// Relaying.
    Open(Box<Relay>),
}

/// An open tunnel: the upstream socket and a pipe each way.
struct Relay {
    upstream: TcpStream,
    token: Token,
    /// Client → upstream.
    up: Pipe,
    /// Upstream → client.
    down: Pipe,
    /// The client's FIN has been read.
    client_eof: bool,
    /// The upstream's write side is shut (after the client's FIN).
    upstream_shut: bool,
    /// The upstream's FIN has been read.
    upstream_eof: bool,
    /// `Next::end()` was returned: our side to the client is shut.
    client_shut: bool,
}

/// One CONNECT exchange.
pub struct Tunnel {
    control: Control,
    watcher: Watcher,
    stage: Stage,
}

impl Tunnel {
    /// A handler for one request.
    pub fn new(control: Control, watcher: Watcher) -> Tunnel {
        Tunnel {
            control,
            watcher,
            stage: Stage::Refuse(405, "only CONNECT is served here\n"),
        }
    }

    /// Moves what can move without the client's side: the client's bytes
    /// out to the upstream, the upstream's in. Fails on an upstream error.
    fn pump(relay: &mut Relay) -> io::Result<()> {
        relay.up.drain(&mut relay.upstream)?;
        if relay.client_eof && relay.up.is_empty() && !relay.upstream_shut {
            relay.upstream_shut = true;
            let _ = relay.upstream.shutdown(Shutdown::Write);
        }
        if !relay.upstream_eof && relay.down.fill(&mut relay.upstream)? {
            relay.upstream_eof = true;
        }
        Ok(())
    }

    /// What the relay asks for next.
    fn next(relay: &mut Relay) -> Next {
        if relay.client_eof && relay.upstream_shut && relay.client_shut {
            return Next::end();
        }
        if relay.upstream_eof && relay.down.is_empty() && !relay.client_shut {
            // The upstream is done and all of it is written: shut the
            // client's side; reading goes on.
            relay.client_shut = true;
            return Next::end();
        }
        let read = !relay.client_eof && relay.up.is_empty();
        let write = !relay.client_shut;
        let next = match (read, write) {
            (true, true) => Next::read_and_write(),
            (true, false) => Next::read(),
            // Client bytes wait for the upstream; upstream bytes for room.
            (false, true) if !relay.down.is_empty() => Next::write(),
            // Waiting for the upstream alone: the watcher wakes us.
            (false, _) => Next::wait(),
        };
        next.timeout(IDLE)
    }

    fn close(&mut self) {
        if let Stage::Open(relay) = &mut self.stage {
            self.watcher.unwatch(&mut relay.upstream, relay.token);
        }
    }
}

impl Handler for Tunnel {
    fn on_request(&mut self, req: Request<'_>) -> Next {
        if req.method() != "CONNECT" {
            return Next::write();
        }
        let target = req.target().to_owned();
        let connected: Connected = Arc::new(Mutex::new(None));
        let slot = Arc::clone(&connected);
        let control = self.control.clone();
        thread::spawn(move || {
            *slot.lock().unwrap() = Some(connect(&target));
            let _ = control.ready(Next::write());
        });
        self.stage = Stage::Connecting(connected);
        Next::wait().timeout(CONNECT_TIMEOUT + Duration::from_secs(1))
    }

    fn on_request_readable(&mut self, body: &mut Decoder<'_>) -> Next {
        let Stage::Open(relay) = &mut self.stage else {
            // The (empty) body of a request we refuse.
            return Next::write();
        };
        loop {
            if let Err(e) = Tunnel::pump(relay) {
                eprintln!("tunnel: upstream: {e}");
                return Next::remove();
            }
            if relay.client_eof || !relay.up.is_empty() {
                break;
            }
            match relay.up.fill(body) {
                Ok(true) => relay.client_eof = true,
                Ok(false) if relay.up.is_empty() => break,
                Ok(false) => {}
                Err(_) => return Next::remove(),
            }
        }
        Tunnel::next(relay)
    }

    fn on_response(&mut self, res: &mut Response<'_>) -> Next {
        let outcome = match &self.stage {
            Stage::Refuse(status, why) => {
                if *status == 405 {
                    res.header("Allow", "CONNECT");
                }
                res.set_status(*status).body(why.as_bytes());
                return Next::end();
            }
            Stage::Connecting(slot) => slot.lock().unwrap().take(),
            Stage::Open(_) => unreachable!("the head is written once"),
        };
        let stream = match outcome {
            Some(Ok(stream)) => stream,
            Some(Err(e)) => {
                res.set_status(502)
                    .body(format!("connect failed: {e}\n").as_bytes());
                return Next::end();
            }
            None => {
                res.set_status(504).body(b"connect timed out\n");
                return Next::end();
            }
        };
        let mut upstream = TcpStream::from_std(stream);
        let token = match self.watcher.watch(&mut upstream, self.control.clone()) {
            Ok(token) => token,
            Err(e) => {
                res.set_status(502)
                    .body(format!("cannot watch the upstream: {e}\n").as_bytes());
                return Next::end();
            }
        };
        // 2xx to CONNECT: the server sends no framing field and the
        // exchange goes on in raw mode.
        let mut relay = Box::new(Relay {
            upstream,
            token,
            up: Pipe::new(),
            down: Pipe::new(),
            client_eof: false,
            upstream_shut: false,
            upstream_eof: false,
            client_shut: false,
        });
        let next = Tunnel::next(&mut relay);
        self.stage = Stage::Open(relay);
        next
    }

    fn on_response_writable(&mut self, body: &mut Encoder<'_>) -> Next {
        let Stage::Open(relay) = &mut self.stage else {
            return Next::end();
        };
        loop {
            if let Err(e) = Tunnel::pump(relay) {
                eprintln!("tunnel: upstream: {e}");
                return Next::remove();
            }
            if relay.down.is_empty() {
                break;
            }
            if relay.down.drain(body).is_err() {
                return Next::remove();
            }
            if !relay.down.is_empty() {
                // The client's side is full: the loop flushes it first.
                break;
            }
        }
        Tunnel::next(relay)
    }

    fn on_error(&mut self, err: Error) -> Next {
        match (&self.stage, err) {
            // No answer from the connect thread in time: 504.
            (Stage::Connecting(_), Error::Timeout) => Next::write(),
            _ => Next::remove(),
        }
    }
}

impl Drop for Tunnel {
    fn drop(&mut self) {
        self.close();
    }
}

/// Resolves and connects to `target` (`host:port`), trying each address.
fn connect(target: &str) -> io::Result<std::net::TcpStream> {
    let mut last = io::Error::new(ErrorKind::InvalidInput, "no address");
    for addr in target.to_socket_addrs()? {
        match std::net::TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
            Ok(stream) => {
                stream.set_nonblocking(true)?;
                stream.set_nodelay(true)?;
                return Ok(stream);
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// Runs the proxy on `addr` until it stops.
pub fn run(addr: SocketAddr) -> io::Result<()> {
    let watcher = Watcher::start()?;
    let server =
        Server::bind(addr)?.handle(move |control| Tunnel::new(control, watcher.clone()))?;
    eprintln!("tunnel: listening on {}", server.addr());
    server.join()
}

fn main() -> io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:3128".into());
    let addr = addr
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::new(ErrorKind::InvalidInput, "no address"))?;
    run(addr)
}
