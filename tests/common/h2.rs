//! A raw HTTP/2 test client: builds any frame, valid or not, writes it to
//! a real TCP connection and reads frames back. HPACK: a tiny encoder of
//! literals without indexing (plus raw blocks for broken ones) and the
//! crate's own decoder (feature `fuzzing`) for responses.
#![allow(dead_code)]

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use nextloop::fuzzing::HpackDecoder;

pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

// Frame types.
pub const DATA: u8 = 0x0;
pub const HEADERS: u8 = 0x1;
pub const PRIORITY: u8 = 0x2;
pub const RST_STREAM: u8 = 0x3;
pub const SETTINGS: u8 = 0x4;
pub const PUSH_PROMISE: u8 = 0x5;
pub const PING: u8 = 0x6;
pub const GOAWAY: u8 = 0x7;
pub const WINDOW_UPDATE: u8 = 0x8;
pub const CONTINUATION: u8 = 0x9;

// Flags.
pub const END_STREAM: u8 = 0x1;
pub const ACK: u8 = 0x1;
pub const END_HEADERS: u8 = 0x4;
pub const PADDED: u8 = 0x8;
pub const PRIORITY_FLAG: u8 = 0x20;

// Settings.
pub const HEADER_TABLE_SIZE: u16 = 0x1;
pub const ENABLE_PUSH: u16 = 0x2;
pub const MAX_CONCURRENT_STREAMS: u16 = 0x3;
pub const INITIAL_WINDOW_SIZE: u16 = 0x4;
pub const MAX_FRAME_SIZE: u16 = 0x5;
pub const MAX_HEADER_LIST_SIZE: u16 = 0x6;

// Error codes.
pub const NO_ERROR: u32 = 0x0;
pub const PROTOCOL_ERROR: u32 = 0x1;
pub const INTERNAL_ERROR: u32 = 0x2;
pub const FLOW_CONTROL_ERROR: u32 = 0x3;
pub const SETTINGS_TIMEOUT: u32 = 0x4;
pub const STREAM_CLOSED: u32 = 0x5;
pub const FRAME_SIZE_ERROR: u32 = 0x6;
pub const REFUSED_STREAM: u32 = 0x7;
pub const CANCEL: u32 = 0x8;
pub const COMPRESSION_ERROR: u32 = 0x9;
pub const ENHANCE_YOUR_CALM: u32 = 0xb;
pub const HTTP_1_1_REQUIRED: u32 = 0xd;

/// One frame as bytes: the 9-byte header (length from `payload`) and the
/// payload. Any type, flags and stream id, reserved bit included.
pub fn frame(ty: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    frame_len(payload.len() as u32, ty, flags, stream, payload)
}

/// A frame whose header states `len`, whatever the payload is.
pub fn frame_len(len: u32, ty: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(9 + payload.len());
    out.extend_from_slice(&len.to_be_bytes()[1..]);
    out.push(ty);
    out.push(flags);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

pub fn settings(values: &[(u16, u32)]) -> Vec<u8> {
    let mut p = Vec::new();
    for (id, v) in values {
        p.extend_from_slice(&id.to_be_bytes());
        p.extend_from_slice(&v.to_be_bytes());
    }
    frame(SETTINGS, 0, 0, &p)
}

pub fn settings_ack() -> Vec<u8> {
    frame(SETTINGS, ACK, 0, &[])
}

pub fn ping(data: [u8; 8]) -> Vec<u8> {
    frame(PING, 0, 0, &data)
}

pub fn window_update(stream: u32, increment: u32) -> Vec<u8> {
    frame(WINDOW_UPDATE, 0, stream, &increment.to_be_bytes())
}

pub fn rst_stream(stream: u32, code: u32) -> Vec<u8> {
    frame(RST_STREAM, 0, stream, &code.to_be_bytes())
}

pub fn goaway(last: u32, code: u32) -> Vec<u8> {
    let mut p = last.to_be_bytes().to_vec();
    p.extend_from_slice(&code.to_be_bytes());
    frame(GOAWAY, 0, 0, &p)
}

pub fn priority(stream: u32, depends_on: u32, weight: u8) -> Vec<u8> {
    let mut p = depends_on.to_be_bytes().to_vec();
    p.push(weight);
    frame(PRIORITY, 0, stream, &p)
}

pub fn data(stream: u32, body: &[u8], end: bool) -> Vec<u8> {
    frame(DATA, if end { END_STREAM } else { 0 }, stream, body)
}

pub fn headers(stream: u32, block: &[u8], flags: u8) -> Vec<u8> {
    frame(HEADERS, flags, stream, block)
}

pub fn continuation(stream: u32, block: &[u8], flags: u8) -> Vec<u8> {
    frame(CONTINUATION, flags, stream, block)
}

/// An HPACK integer with an `n`-bit prefix, its first byte or-ed with `first`.
pub fn hpack_int(out: &mut Vec<u8>, first: u8, n: u32, mut value: usize) {
    let max = (1usize << n) - 1;
    if value < max {
        out.push(first | value as u8);
        return;
    }
    out.push(first | max as u8);
    value -= max;
    while value >= 128 {
        out.push((value % 128) as u8 | 0x80);
        value /= 128;
    }
    out.push(value as u8);
}

/// A header block of literals without indexing, new names, no Huffman:
/// exactly the bytes given (uppercase names, empty values, anything).
pub fn block(fields: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, value) in fields {
        literal(&mut out, name.as_bytes(), value.as_bytes());
    }
    out
}

/// One literal field without indexing, new name.
pub fn literal(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.push(0x00);
    hpack_int(out, 0, 7, name.len());
    out.extend_from_slice(name);
    hpack_int(out, 0, 7, value.len());
    out.extend_from_slice(value);
}

/// The four pseudo-header fields of a request, then `extra`.
pub fn request_block(method: &str, path: &str, extra: &[(&str, &str)]) -> Vec<u8> {
    let mut fields = vec![
        (":method", method),
        (":scheme", "http"),
        (":authority", "localhost"),
        (":path", path),
    ];
    fields.extend_from_slice(extra);
    block(&fields)
}

/// A frame read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub ty: u8,
    pub flags: u8,
    pub stream: u32,
    pub payload: Vec<u8>,
}

impl Frame {
    /// A GOAWAY's (last stream id, error code).
    pub fn goaway(&self) -> (u32, u32) {
        assert_eq!(self.ty, GOAWAY, "not a GOAWAY: {self:?}");
        let p = &self.payload;
        (
            u32::from_be_bytes([p[0], p[1], p[2], p[3]]) & 0x7fff_ffff,
            u32::from_be_bytes([p[4], p[5], p[6], p[7]]),
        )
    }

    /// A RST_STREAM's or WINDOW_UPDATE's 32-bit value.
    pub fn code(&self) -> u32 {
        let p = &self.payload;
        u32::from_be_bytes([p[0], p[1], p[2], p[3]])
    }

    /// A SETTINGS frame's values.
    pub fn settings(&self) -> Vec<(u16, u32)> {
        self.payload
            .chunks(6)
            .map(|c| {
                (
                    u16::from_be_bytes([c[0], c[1]]),
                    u32::from_be_bytes([c[2], c[3], c[4], c[5]]),
                )
            })
            .collect()
    }
}

/// What the server did after something the test sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A response on the stream: its status.
    Status(u16),
    /// RST_STREAM on the stream with this code.
    Reset(u32),
    /// GOAWAY with this code, then the connection closed.
    GoAway(u32),
    /// The connection closed without a GOAWAY.
    Closed,
}

/// A response: status, fields (lowercase names) and body.
#[derive(Debug, Default)]
pub struct Response {
    pub status: u16,
    pub fields: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub trailers: Vec<(String, String)>,
    /// Interim (1xx) statuses before the final one.
    pub interim: Vec<u16>,
}

impl Response {
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn body_str(&self) -> &str {
        std::str::from_utf8(&self.body).expect("utf-8 body")
    }
}

/// A byte stream: TCP, or TLS over it.
pub trait Io: Read + Write + Send {}
impl<T: Read + Write + Send> Io for T {}

/// A raw HTTP/2 client connection.
pub struct Conn {
    pub stream: Box<dyn Io>,
    buf: Vec<u8>,
    pub decoder: HpackDecoder,
    /// Frames read but not yet taken by a caller.
    pub backlog: Vec<Frame>,
    /// The server's SETTINGS, as last received.
    pub server_settings: Vec<(u16, u32)>,
    /// Answer PINGs and SETTINGS as they arrive.
    pub auto_ack: bool,
    /// The server lowered its HPACK table below 4,096: our next block
    /// must start with a size update (RFC 7541 §4.2).
    pub size_update: Option<u32>,
    /// The TCP socket under `stream` (for timeouts and raw writes).
    pub tcp: Option<TcpStream>,
    /// A read timeout ends `read_frame` with `None` instead of a panic.
    pub timeout_ends: bool,
}

impl Conn {
    /// Connects and sends nothing.
    pub fn connect_raw(addr: SocketAddr) -> Conn {
        let stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream.set_nodelay(true).unwrap();
        let tcp = stream.try_clone().unwrap();
        let mut c = Conn::over(Box::new(stream));
        c.tcp = Some(tcp);
        c
    }

    /// The TCP socket itself.
    pub fn raw_stream(&mut self) -> &mut TcpStream {
        self.tcp.as_mut().expect("a TCP connection")
    }

    /// Sets the read timeout.
    pub fn stream_set_timeout(&mut self, d: Duration) {
        self.raw_stream().set_read_timeout(Some(d)).unwrap();
    }

    /// [`next_frame`](Self::next_frame), `None` at the read timeout.
    pub fn try_next_frame(&mut self) -> Option<Frame> {
        self.timeout_ends = true;
        let f = self.next_frame();
        self.timeout_ends = false;
        f
    }

    /// Over a stream of the caller's (TLS), nothing sent yet.
    pub fn over(stream: Box<dyn Io>) -> Conn {
        Conn {
            stream,
            buf: Vec::new(),
            decoder: HpackDecoder::new(4096, 1 << 16, 1 << 20),
            backlog: Vec::new(),
            server_settings: Vec::new(),
            auto_ack: true,
            size_update: None,
            tcp: None,
            timeout_ends: false,
        }
    }

    /// Connects, sends the preface and an empty SETTINGS, and reads the
    /// server's SETTINGS (acknowledging it).
    pub fn connect(addr: SocketAddr) -> Conn {
        Conn::connect_with(addr, &[])
    }

    /// [`connect`](Self::connect) with our SETTINGS values.
    pub fn connect_with(addr: SocketAddr, values: &[(u16, u32)]) -> Conn {
        let mut c = Conn::connect_raw(addr);
        c.handshake(values);
        c
    }

    /// Sends the preface and our SETTINGS, reads the server's.
    pub fn handshake(&mut self, values: &[(u16, u32)]) {
        let c = self;
        let mut hello = PREFACE.to_vec();
        hello.extend_from_slice(&settings(values));
        c.send(&hello);
        let first = c.read_frame().expect("the server's SETTINGS");
        assert_eq!(first.ty, SETTINGS, "the server's first frame: {first:?}");
        assert_eq!(first.flags & ACK, 0);
        c.server_settings = first.settings();
        c.size_update = c
            .server_settings
            .iter()
            .find(|(id, _)| *id == HEADER_TABLE_SIZE)
            .map(|&(_, v)| v)
            .filter(|&v| v < 4096);
        c.send(&settings_ack());
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
        self.stream.flush().expect("flush");
    }

    /// Sends, ignoring a reset (the server may have closed already).
    pub fn try_send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)?;
        self.stream.flush()
    }

    /// The next frame from the wire (not the backlog); `None` at the end of
    /// the connection (or a reset).
    pub fn read_frame(&mut self) -> Option<Frame> {
        loop {
            if self.buf.len() >= 9 {
                let len = u32::from_be_bytes([0, self.buf[0], self.buf[1], self.buf[2]]) as usize;
                if self.buf.len() >= 9 + len {
                    let f = Frame {
                        ty: self.buf[3],
                        flags: self.buf[4],
                        stream: u32::from_be_bytes([
                            self.buf[5],
                            self.buf[6],
                            self.buf[7],
                            self.buf[8],
                        ]) & 0x7fff_ffff,
                        payload: self.buf[9..9 + len].to_vec(),
                    };
                    self.buf.drain(..9 + len);
                    return Some(f);
                }
            }
            let mut chunk = [0u8; 16 * 1024];
            match self.stream.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    if self.timeout_ends {
                        return None;
                    }
                    panic!("no frame from the server within the read timeout")
                }
                Err(_) => return None,
            }
        }
    }

    /// The next frame from the wire that is not a WINDOW_UPDATE or a
    /// SETTINGS (acknowledged if `auto_ack`): PINGs are returned.
    pub fn read_skipping_windows(&mut self) -> Option<Frame> {
        loop {
            let f = self.read_frame()?;
            match f.ty {
                WINDOW_UPDATE => {}
                SETTINGS if f.flags & ACK != 0 => {}
                SETTINGS => {
                    self.server_settings = f.settings();
                    if self.auto_ack {
                        let _ = self.try_send(&settings_ack());
                    }
                }
                _ => return Some(f),
            }
        }
    }

    /// The next frame that is not a SETTINGS or PING (acknowledging them
    /// if `auto_ack`), nor a WINDOW_UPDATE; `None` at the end.
    pub fn next_frame(&mut self) -> Option<Frame> {
        if !self.backlog.is_empty() {
            return Some(self.backlog.remove(0));
        }
        loop {
            let f = self.read_frame()?;
            match f.ty {
                SETTINGS if f.flags & ACK == 0 => {
                    self.server_settings = f.settings();
                    if self.auto_ack {
                        let _ = self.try_send(&settings_ack());
                    }
                }
                SETTINGS => {}
                PING if f.flags & ACK == 0 => {
                    if self.auto_ack {
                        let _ = self.try_send(&frame(PING, ACK, 0, &f.payload));
                    }
                }
                PING | WINDOW_UPDATE => {}
                _ => return Some(f),
            }
        }
    }

    /// Decodes a header block with the connection's decoder.
    pub fn decode(&mut self, block: &[u8]) -> Vec<(String, String)> {
        let mut out = Vec::new();
        self.decoder
            .decode(block, |n, v, _| {
                out.push((
                    String::from_utf8_lossy(n).into_owned(),
                    String::from_utf8_lossy(v).into_owned(),
                ))
            })
            .expect("the server's header block decodes");
        out
    }

    /// The payload of a HEADERS frame with its padding and priority removed.
    fn header_fragment(f: &Frame) -> Vec<u8> {
        let mut p = &f.payload[..];
        let mut pad = 0;
        if f.flags & PADDED != 0 {
            pad = p[0] as usize;
            p = &p[1..];
        }
        if f.ty == HEADERS && f.flags & PRIORITY_FLAG != 0 {
            p = &p[5..];
        }
        p[..p.len() - pad].to_vec()
    }

    /// Reads frames until stream `id` ends, is reset or the connection
    /// does; frames of other streams are kept in the backlog.
    pub fn outcome(&mut self, id: u32) -> (Outcome, Option<Response>) {
        let mut res = Response::default();
        let mut got_head = false;
        let mut kept = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        let result = loop {
            assert!(Instant::now() < deadline, "stream {id} never ended");
            let Some(f) = self.next_frame() else {
                break Outcome::Closed;
            };
            if f.ty == GOAWAY {
                let (_, code) = f.goaway();
                if code != NO_ERROR {
                    eprintln!("GOAWAY: {}", String::from_utf8_lossy(&f.payload[8..]));
                    break Outcome::GoAway(code);
                }
                kept.push(f);
                continue;
            }
            if f.stream != id {
                kept.push(f);
                continue;
            }
            match f.ty {
                RST_STREAM => break Outcome::Reset(f.code()),
                HEADERS => {
                    let mut block = Conn::header_fragment(&f);
                    let mut flags = f.flags;
                    while flags & END_HEADERS == 0 {
                        let c = self.read_frame().expect("CONTINUATION");
                        assert_eq!(c.ty, CONTINUATION);
                        block.extend_from_slice(&c.payload);
                        flags = (flags & !END_HEADERS) | (c.flags & END_HEADERS);
                    }
                    let fields = self.decode(&block);
                    if got_head {
                        res.trailers = fields;
                    } else {
                        let status = fields
                            .iter()
                            .find(|(n, _)| n == ":status")
                            .map(|(_, v)| v.parse::<u16>().expect("a status"))
                            .expect(":status");
                        if (100..200).contains(&status) {
                            res.interim.push(status);
                        } else {
                            res.status = status;
                            res.fields = fields;
                            got_head = true;
                        }
                    }
                    if flags & END_STREAM != 0 {
                        break Outcome::Status(res.status);
                    }
                }
                DATA => {
                    let mut p = &f.payload[..];
                    if f.flags & PADDED != 0 {
                        let pad = p[0] as usize;
                        p = &p[1..p.len() - pad];
                    }
                    res.body.extend_from_slice(p);
                    if !p.is_empty() || f.flags & PADDED != 0 {
                        // Give the window back, as a reading client does.
                        let n = f.payload.len() as u32;
                        let _ = self.try_send(&window_update(0, n));
                        let _ = self.try_send(&window_update(id, n));
                    }
                    if f.flags & END_STREAM != 0 {
                        break Outcome::Status(res.status);
                    }
                }
                _ => kept.push(f),
            }
        };
        self.backlog.extend(kept);
        let res = match result {
            Outcome::Status(_) => Some(res),
            _ => None,
        };
        (result, res)
    }

    /// Reads until a GOAWAY and the end of the connection; the GOAWAY's
    /// (last id, code), or `None` if it closed without one.
    pub fn goaway_and_close(&mut self) -> Option<(u32, u32)> {
        let mut seen = None;
        if let Some(i) = self.backlog.iter().position(|f| f.ty == GOAWAY) {
            seen = Some(self.backlog[i].goaway());
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while let Some(f) = self.next_frame() {
            assert!(Instant::now() < deadline, "the connection never closed");
            if f.ty == GOAWAY {
                seen = Some(f.goaway());
            }
        }
        seen
    }

    /// A header block of literals (see [`block`]), starting with the
    /// table size update the server's SETTINGS call for, once.
    pub fn block(&mut self, fields: &[(&str, &str)]) -> Vec<u8> {
        let mut out = Vec::new();
        if let Some(size) = self.size_update.take() {
            hpack_int(&mut out, 0x20, 5, size as usize);
        }
        out.extend_from_slice(&block(fields));
        out
    }

    /// A request's block (see [`request_block`]), with the size update
    /// if one is owed.
    pub fn request(&mut self, method: &str, path: &str, extra: &[(&str, &str)]) -> Vec<u8> {
        let mut out = Vec::new();
        if let Some(size) = self.size_update.take() {
            hpack_int(&mut out, 0x20, 5, size as usize);
        }
        out.extend_from_slice(&request_block(method, path, extra));
        out
    }

    /// Reads until a GOAWAY with an error code (RST_STREAMs and
    /// responses skipped): `GoAway(code)`, or `Closed` at the end.
    pub fn goaway_code(&mut self) -> Outcome {
        let deadline = Instant::now() + Duration::from_secs(20);
        while let Some(f) = self.next_frame() {
            assert!(Instant::now() < deadline, "no GOAWAY");
            if f.ty == GOAWAY && f.goaway().1 != NO_ERROR {
                return Outcome::GoAway(f.goaway().1);
            }
        }
        Outcome::Closed
    }

    /// GET `path` on stream `id`; the whole response.
    pub fn get(&mut self, id: u32, path: &str) -> Response {
        let block = self.request("GET", path, &[]);
        self.send(&headers(id, &block, END_HEADERS | END_STREAM));
        match self.outcome(id) {
            (Outcome::Status(_), Some(res)) => res,
            (other, _) => panic!("GET {path} on stream {id}: {other:?}"),
        }
    }
}
