//! Answers every request, whatever its method, with `200 OK` and the
//! request body as the response body, streamed through a fixed buffer:
//! bodies of any size pass without being held whole.
//!
//!     cargo run --release --example echo -- 127.0.0.1:3000
//!     curl --data-binary @some-file http://127.0.0.1:3000/

use std::io::{self, Read, Write};

use nextloop::server::{Handler, Request, Response, Server};
use nextloop::{Decoder, Encoder, Next};

/// Carries body bytes from the request to the response.
struct Echo {
    /// The request's length, reused as the response's when known.
    length: Option<u64>,
    buf: [u8; 4096],
    /// `buf[start..end]` is read but not yet written.
    start: usize,
    end: usize,
    body_done: bool,
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

impl Echo {
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

fn main() -> io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:3000".into());
    let server = Server::bind(addr)?.shutdown_on_signals().handle(|_| Echo {
        length: None,
        buf: [0; 4096],
        start: 0,
        end: 0,
        body_done: false,
    })?;
    println!("Listening on http://{}", server.addr());
    server.join()
}
