//! Answers every request, whatever its method, with `200 OK` and the
//! request body as the response body, streamed through a fixed buffer:
//! bodies of any size pass without being held whole. A body that has
//! arrived whole by the time the answer starts (most small ones, chunked
//! or not) is answered with a `Content-Length`; a longer one of unknown
//! length is streamed chunked.
//!
//!     cargo run --release --example echo -- 127.0.0.1:3000
//!     curl --data-binary @some-file http://127.0.0.1:3000/

use std::io::{self, Read, Write};

use nextloop::server::{Handler, Request, Response, Server};
use nextloop::{Decoder, Encoder, Next};

/// Carries body bytes from the request to the response.
pub struct Echo {
    /// The request's length, reused as the response's when known.
    length: Option<u64>,
    buf: [u8; 4096],
    /// `buf[start..end]` is read but not yet written.
    start: usize,
    end: usize,
    body_done: bool,
    /// The response head has gone out: stream from now on.
    answering: bool,
}

impl Echo {
    /// A handler for one request.
    pub fn new() -> Echo {
        Echo {
            length: None,
            buf: [0; 4096],
            start: 0,
            end: 0,
            body_done: false,
            answering: false,
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

impl Default for Echo {
    fn default() -> Echo {
        Echo::new()
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
        if self.start == self.end {
            (self.start, self.end) = (0, 0);
        }
        // Fill the buffer: a body that fits is answered with its length.
        while self.end < self.buf.len() {
            match body.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.body_done = true;
                    break;
                }
                Ok(n) => self.end += n,
                // Before answering, wait for the rest (or a full buffer);
                // while answering, pass on what there is.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if self.answering && self.start < self.end {
                        break;
                    }
                    return Next::read();
                }
                // The server answers a malformed body itself (400).
                Err(_) => return Next::remove(),
            }
        }
        Next::write()
    }

    fn on_response(&mut self, res: &mut Response<'_>) -> Next {
        self.answering = true;
        // Known from the request, or the whole body is in the buffer.
        let whole = self.body_done.then_some((self.end - self.start) as u64);
        if let Some(n) = self.length.or(whole) {
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

fn main() -> io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:3000".into());
    let server = Server::bind(addr)?
        .shutdown_on_signals()
        .handle(|_| Echo::new())?;
    println!("Listening on http://{}", server.addr());
    server.join()
}
