//! A WebSocket echo server on every path: text and binary messages are
//! echoed as they arrive (a long message piece by piece, never held
//! whole), pings are answered with pongs, a close is echoed; a frame
//! that breaks the protocol is answered with a close frame carrying its
//! code (1002, 1007 for text that is not UTF-8, 1009 for a message over
//! 1 MiB). Plain HTTP requests get `426 Upgrade Required`.
//!
//!     cargo run --release --example websocket -- 127.0.0.1:3000
//!     python3 -m websockets ws://127.0.0.1:3000/
//!
//! No allocation per message: frames are parsed in a stack buffer and
//! the echo waits in `out` (at most `OUT_CAP` bytes) for the socket.

use std::io::{self, ErrorKind, Read, Write};
use std::time::Duration;

use nextloop::server::{Handler, Request, Response, Server};
use nextloop::ws::{Accept, CloseCode, Event, Limits, OpCode, Reader, Refusal, Role, Writer};
use nextloop::{Decoder, Encoder, Error, Next};

/// The largest message (and frame) accepted: 1 MiB, as Python's
/// `websockets` has by default.
pub const MAX_MESSAGE: u64 = 1 << 20;

/// The echo waiting to be written: reading stops while it is this full.
const OUT_CAP: usize = 1024;

/// Room kept in `out` beyond what a read brings: the echo of a read of
/// `n` bytes is at most `n` plus one frame header (for the piece of a
/// frame begun in an earlier read), plus a pong or close frame completed
/// by it, plus our own close frame.
const MARGIN: usize = 10 + 2 * 127;

/// How long a connection may stay silent; then it is closed with 1001.
const IDLE: Duration = Duration::from_secs(300);

/// How long to wait for the client's close (or FIN) after ours.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// One connection: the handshake, then the echo.
pub struct WsEcho {
    handshake: Result<Accept<'static>, Refusal>,
    reader: Reader,
    writer: Writer,
    /// Frames to send; `out[sent..]` is not yet written.
    out: Vec<u8>,
    sent: usize,
    /// A close frame is queued or sent: no more echo, read only until
    /// the client's FIN.
    closing: bool,
    /// We returned `Next::end()`: our write side is shut (or shutting).
    ended: bool,
    /// The client's FIN has been read.
    eof: bool,
}

impl WsEcho {
    /// A handler for a new connection's request.
    pub fn new() -> WsEcho {
        WsEcho {
            handshake: Err(Refusal::NotWebSocket),
            reader: Reader::new(
                Role::Server,
                Limits {
                    max_frame: MAX_MESSAGE,
                    max_message: MAX_MESSAGE,
                },
            ),
            writer: Writer::new(Role::Server),
            out: Vec::new(),
            sent: 0,
            closing: false,
            ended: false,
            eof: false,
        }
    }

    /// Handles bytes read from the client: the echo into `out`.
    fn on_input(&mut self, input: &mut [u8]) {
        let mut at = 0;
        while at < input.len() && !self.closing {
            let step = match self.reader.read(&mut input[at..]) {
                Ok(step) => step,
                Err(e) => {
                    self.writer
                        .encode_close(&mut self.out, e.close_code(), e.reason());
                    self.closing = true;
                    return;
                }
            };
            at += step.consumed;
            match step.event {
                Some(Event::Data {
                    kind,
                    payload,
                    first,
                    last,
                }) => {
                    let opcode = if first {
                        kind.opcode()
                    } else {
                        OpCode::Continuation
                    };
                    self.writer.encode(&mut self.out, opcode, last, payload);
                }
                Some(Event::Ping(payload)) => {
                    self.writer
                        .encode(&mut self.out, OpCode::Pong, true, payload)
                }
                Some(Event::Close(close)) => {
                    // Echo the code (none: an empty close frame).
                    let code = close.code_or_no_status();
                    self.writer.encode_close(&mut self.out, code, "");
                    self.closing = true;
                }
                Some(Event::Pong(_)) | None => {}
            }
        }
    }

    /// Our own close, for a reason of ours (idle, shutting down).
    fn close(&mut self, code: CloseCode, reason: &str) {
        if !self.closing {
            self.writer.encode_close(&mut self.out, code, reason);
            self.closing = true;
        }
    }

    fn next(&mut self) -> Next {
        let pending = self.sent < self.out.len();
        if pending {
            return if self.closing || self.out.len() + MARGIN > OUT_CAP {
                Next::write()
            } else {
                Next::read_and_write()
            };
        }
        if self.eof || (self.closing && !self.ended) {
            // All is out: shut our side. After the client's FIN this
            // ends the exchange; before it, reading goes on.
            self.ended = true;
            return Next::end();
        }
        if self.closing {
            Next::read().timeout(CLOSE_WAIT)
        } else {
            Next::read().timeout(IDLE)
        }
    }
}

impl Default for WsEcho {
    fn default() -> WsEcho {
        WsEcho::new()
    }
}

impl Handler for WsEcho {
    fn on_request(&mut self, req: Request<'_>) -> Next {
        self.handshake = Accept::from_request(&req, &[]);
        Next::write()
    }

    fn on_response(&mut self, res: &mut Response<'_>) -> Next {
        match self.handshake {
            Ok(accept) => {
                accept.respond(res);
                self.out.reserve_exact(OUT_CAP);
                Next::read().timeout(IDLE)
            }
            Err(refusal) => {
                refusal.respond(res);
                Next::end()
            }
        }
    }

    fn on_request_readable(&mut self, body: &mut Decoder<'_>) -> Next {
        let mut buf = [0u8; OUT_CAP];
        loop {
            // Read no more than the echo has room for.
            let room = if self.closing {
                buf.len() // discarded
            } else {
                OUT_CAP.saturating_sub(self.out.len() + MARGIN)
            };
            if room == 0 {
                break;
            }
            match body.read(&mut buf[..room]) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(n) if self.closing => {
                    let _ = n; // after a close: only the FIN matters
                }
                Ok(n) => self.on_input(&mut buf[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(_) => return Next::remove(),
            }
        }
        self.next()
    }

    fn on_response_writable(&mut self, body: &mut Encoder<'_>) -> Next {
        while self.sent < self.out.len() {
            match body.write(&self.out[self.sent..]) {
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(_) => return Next::remove(),
            }
        }
        if self.sent == self.out.len() {
            self.out.clear();
            self.sent = 0;
        }
        self.next()
    }

    fn on_error(&mut self, err: Error) -> Next {
        match err {
            Error::Timeout if !self.closing => {
                self.close(CloseCode::GOING_AWAY, "idle");
                self.next()
            }
            _ => Next::remove(),
        }
    }
}

fn main() -> io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:3000".into());
    let server = Server::bind(addr)?
        .shutdown_on_signals()
        .handle(|_| WsEcho::new())?;
    println!("Listening on ws://{}", server.addr());
    io::stdout().flush()?;
    server.join()
}
