//! The floor: what any HTTP/1 server on one mio loop must at least pay.
//!
//! One thread, one `Poll`. It accepts, reads until the socket is drained,
//! counts request ends (`\r\n\r\n`, partial matches carried across reads),
//! and writes one canned response per request end until the socket is
//! full, keeping whatever could not be sent. No parsing, no handler, no
//! date formatting.
//!
//! mio is edge-triggered, so "drained" and "full" must be known before
//! waiting for the next event. Like nextloop's loop, and to pay no more
//! syscalls than a real server must, a short read (fewer bytes than asked
//! for) counts as drained and a short write as full, as `WouldBlock` does:
//! new bytes or new room bring a new edge. After the peer's FIN it reads on
//! until 0.
//! The canned response has the same bytes count as nextloop's hello
//! (a fixed Date line and `Content-Length: 13`).
//!
//!     mio-floor 127.0.0.1:3000

use std::io::{self, Read, Write};
use std::net::SocketAddr;

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};

const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nDate: Thu, 01 Jan 2026 00:00:00 GMT\r\nContent-Length: 13\r\n\r\nHello, World!";
const LISTENER: Token = Token(usize::MAX);
/// Stop reading while this much output is unsent (the peer is not reading).
const OUT_HIGH_WATER: usize = 64 * 1024;
const END: &[u8; 4] = b"\r\n\r\n";

struct Conn {
    sock: TcpStream,
    /// How many bytes of `END` the bytes read so far end with.
    matched: usize,
    out: Vec<u8>,
    sent: usize,
    /// Not known to be drained (edge-triggered: read until `WouldBlock`).
    readable: bool,
    /// Not known to be full.
    writable: bool,
    /// The peer's FIN was reported: read until 0 even after a short read.
    read_closed: bool,
}

impl Conn {
    /// Counts complete request ends in `bytes`, carrying a partial match.
    fn count_ends(&mut self, bytes: &[u8]) -> usize {
        let mut n = 0;
        let mut m = self.matched;
        for &b in bytes {
            if b == END[m] {
                m += 1;
                if m == END.len() {
                    n += 1;
                    m = 0;
                }
            } else {
                // The only proper prefix of END that can restart a match is "\r".
                m = usize::from(b == b'\r');
            }
        }
        self.matched = m;
        n
    }

    /// Reads and writes until neither can progress. `false`: close it.
    fn drive(&mut self, buf: &mut [u8]) -> bool {
        loop {
            while self.sent < self.out.len() && self.writable {
                match self.sock.write(&self.out[self.sent..]) {
                    Ok(0) => return false,
                    Ok(n) => {
                        if n < self.out.len() - self.sent {
                            self.writable = false;
                        }
                        self.sent += n;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.writable = false,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => return false,
                }
            }
            if self.sent == self.out.len() {
                self.out.clear();
                self.sent = 0;
            }
            if !self.readable || self.out.len() - self.sent >= OUT_HIGH_WATER {
                return true;
            }
            match self.sock.read(buf) {
                Ok(0) => return false,
                Ok(n) => {
                    if n < buf.len() && !self.read_closed {
                        self.readable = false;
                    }
                    let requests = self.count_ends(&buf[..n]);
                    self.out.reserve(requests * RESPONSE.len());
                    for _ in 0..requests {
                        self.out.extend_from_slice(RESPONSE);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.readable = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
    }
}

fn main() -> io::Result<()> {
    assert_eq!(
        RESPONSE.len(),
        115,
        "same size as nextloop's hello response"
    );
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:3000".into())
        .parse()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let mut listener = TcpListener::bind(addr)?;
    println!("Listening on http://{}", listener.local_addr()?);

    let mut poll = Poll::new()?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    let mut events = Events::with_capacity(1024);
    let mut conns: Vec<Option<Conn>> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];

    loop {
        match poll.poll(&mut events, None) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        for event in events.iter() {
            if event.token() == LISTENER {
                loop {
                    match listener.accept() {
                        Ok((mut sock, _)) => {
                            let _ = sock.set_nodelay(true);
                            let slot = free.pop().unwrap_or_else(|| {
                                conns.push(None);
                                conns.len() - 1
                            });
                            poll.registry().register(
                                &mut sock,
                                Token(slot),
                                Interest::READABLE | Interest::WRITABLE,
                            )?;
                            conns[slot] = Some(Conn {
                                sock,
                                matched: 0,
                                out: Vec::with_capacity(16 * RESPONSE.len()),
                                sent: 0,
                                // Registering reports data already there.
                                readable: false,
                                writable: true,
                                read_closed: false,
                            });
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        // Out of descriptors or a connection reset before
                        // accept: keep serving the rest.
                        Err(_) => break,
                    }
                }
                continue;
            }
            let slot = event.token().0;
            let Some(conn) = conns.get_mut(slot).and_then(Option::as_mut) else {
                continue;
            };
            if event.is_readable() || event.is_read_closed() || event.is_error() {
                conn.readable = true;
            }
            if event.is_read_closed() || event.is_error() {
                conn.read_closed = true;
            }
            if event.is_writable() || event.is_write_closed() || event.is_error() {
                conn.writable = true;
            }
            if !conn.drive(&mut buf) {
                if let Some(mut conn) = conns[slot].take() {
                    let _ = poll.registry().deregister(&mut conn.sock);
                }
                free.push(slot);
            }
        }
    }
}
