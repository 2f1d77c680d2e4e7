//! Handlers shared by the integration tests.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use nextloop::server::{Handler, HandlerFactory, Request, Response};
use nextloop::{Control, Decoder, Encoder, Next, Version};

/// Answers every request with `200 text/plain Hello, World!`, like
/// `examples/hello.rs`.
pub struct Hello;

impl Handler for Hello {
    fn on_response(&mut self, res: &mut Response<'_>) -> Next {
        res.header("Content-Type", "text/plain")
            .body(b"Hello, World!");
        Next::end()
    }
}

/// Echoes the request body as the response body, streamed through a
/// fixed buffer (as `examples/echo.rs` did before it learned to answer a
/// body that arrived whole with its length). The response has the
/// request's Content-Length, or is chunked when the request was: the
/// tests using it check exactly that framing.
pub struct Echo {
    length: Option<u64>,
    buf: [u8; 4096],
    start: usize,
    end: usize,
    body_done: bool,
}

impl Echo {
    pub fn new() -> Echo {
        Echo {
            length: None,
            buf: [0; 4096],
            start: 0,
            end: 0,
            body_done: false,
        }
    }

    /// Write what is buffered, else read more, else finish.
    fn next(&self) -> Next {
        if self.start < self.end {
            Next::write()
        } else if self.body_done {
            Next::end()
        } else {
            Next::read()
        }
    }
}

impl Handler for Echo {
    fn on_request(&mut self, req: Request<'_>) -> Next {
        self.length = req.content_length();
        if req.has_body() {
            Next::read()
        } else {
            self.body_done = true;
            Next::write()
        }
    }

    fn on_request_readable(&mut self, body: &mut Decoder<'_>) -> Next {
        match body.read(&mut self.buf) {
            Ok(0) => self.body_done = true,
            Ok(n) => (self.start, self.end) = (0, n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Next::read(),
            Err(_) => return Next::remove(),
        }
        Next::write()
    }

    fn on_response(&mut self, res: &mut Response<'_>) -> Next {
        if let Some(n) = self.length {
            res.set_content_length(n);
        }
        self.next()
    }

    fn on_response_writable(&mut self, body: &mut Encoder<'_>) -> Next {
        while self.start < self.end {
            match body.write(&self.buf[self.start..self.end]) {
                Ok(n) => self.start += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Next::write(),
                Err(_) => return Next::remove(),
            }
        }
        self.next()
    }
}

/// Full-duplex echo through a fixed 4 KiB buffer: reads while it has room,
/// writes what it holds, always asking for both.
pub struct DuplexEcho {
    buf: [u8; 4096],
    len: usize,
    body_done: bool,
}

impl DuplexEcho {
    pub fn new() -> DuplexEcho {
        DuplexEcho {
            buf: [0; 4096],
            len: 0,
            body_done: false,
        }
    }

    fn next(&self) -> Next {
        if self.body_done && self.len == 0 {
            Next::end()
        } else {
            Next::read_and_write()
        }
    }
}

impl Handler for DuplexEcho {
    fn on_request(&mut self, req: Request<'_>) -> Next {
        self.body_done = !req.has_body();
        Next::read_and_write()
    }

    fn on_request_readable(&mut self, body: &mut Decoder<'_>) -> Next {
        // Only read when there is room to keep what is read.
        while self.len < self.buf.len() {
            match body.read(&mut self.buf[self.len..]) {
                Ok(0) => {
                    self.body_done = true;
                    break;
                }
                Ok(n) => self.len += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => return Next::remove(),
            }
        }
        self.next()
    }

    fn on_response(&mut self, _res: &mut Response<'_>) -> Next {
        // No length: chunked.
        self.next()
    }

    fn on_response_writable(&mut self, body: &mut Encoder<'_>) -> Next {
        let mut written = 0;
        while written < self.len {
            match body.write(&self.buf[written..self.len]) {
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => return Next::remove(),
            }
        }
        self.buf.copy_within(written..self.len, 0);
        self.len -= written;
        self.next()
    }
}

/// Routes `/` to Hello and everything else to `DuplexEcho`.
pub enum DuplexOrHello {
    Undecided,
    Echo(Box<DuplexEcho>),
    Hello,
}

impl Handler for DuplexOrHello {
    fn on_request(&mut self, req: Request<'_>) -> Next {
        if req.path() == "/" {
            *self = DuplexOrHello::Hello;
            return Next::write();
        }
        let mut echo = Box::new(DuplexEcho::new());
        let next = echo.on_request(req);
        *self = DuplexOrHello::Echo(echo);
        next
    }

    fn on_request_readable(&mut self, body: &mut Decoder<'_>) -> Next {
        match self {
            DuplexOrHello::Echo(e) => e.on_request_readable(body),
            _ => Next::write(),
        }
    }

    fn on_response(&mut self, res: &mut Response<'_>) -> Next {
        match self {
            DuplexOrHello::Echo(e) => e.on_response(res),
            _ => Hello.on_response(res),
        }
    }

    fn on_response_writable(&mut self, body: &mut Encoder<'_>) -> Next {
        match self {
            DuplexOrHello::Echo(e) => e.on_response_writable(body),
            _ => Next::end(),
        }
    }
}

/// What a [`Gather`] server saw of each request: the client's address
/// (one connection, one port), the version and the path.
pub type Seen = Arc<Mutex<Vec<(SocketAddr, Version, String)>>>;

/// Holds every request until `n` are in at once, then answers each with
/// its path: only a client with `n` exchanges in flight together gets
/// any answer.
pub struct Gather {
    control: Control,
    seen: Seen,
    waiting: Arc<Mutex<Vec<Control>>>,
    n: usize,
    path: String,
}

impl Gather {
    /// A factory of handlers that gather `n` at a time, and what they saw.
    pub fn factory(n: usize) -> (impl HandlerFactory + Clone, Seen) {
        let seen: Seen = Arc::default();
        let waiting: Arc<Mutex<Vec<Control>>> = Arc::default();
        let s = Arc::clone(&seen);
        let factory = move |control| Gather {
            control,
            seen: Arc::clone(&s),
            waiting: Arc::clone(&waiting),
            n,
            path: String::new(),
        };
        (factory, seen)
    }
}

impl Handler for Gather {
    fn on_request(&mut self, req: Request<'_>) -> Next {
        self.path = req.path().to_string();
        let mut seen = self.seen.lock().unwrap();
        seen.push((req.remote_addr(), req.version(), self.path.clone()));
        let mut waiting = self.waiting.lock().unwrap();
        if seen.len() % self.n == 0 {
            for c in waiting.drain(..) {
                let _ = c.ready(Next::write());
            }
            Next::write()
        } else {
            waiting.push(self.control.clone());
            Next::wait().timeout(super::IO_TIMEOUT)
        }
    }

    fn on_response(&mut self, res: &mut Response<'_>) -> Next {
        res.header("Content-Type", "text/plain")
            .body(self.path.as_bytes());
        Next::end()
    }
}
