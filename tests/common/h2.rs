//! A raw HTTP/2 test client: builds any frame, valid or not, writes it to
//! a real TCP connection and reads frames back. HPACK: a tiny encoder of
//! literals without indexing (plus raw blocks for broken ones) and the
//! crate's own decoder (feature `fuzzing`) for responses.
//!
//! And the other way round, [`ServerConn`]: one connection of a raw
//! server, for the client's tests.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
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

// ----- The server side: a raw HTTP/2 server for client tests ----------

/// A request as a raw server has read it so far.
#[derive(Clone, Debug, Default)]
pub struct ServerRequest {
    pub id: u32,
    /// The head's fields, pseudo-headers first, as decoded.
    pub fields: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The client ended its side (END_STREAM).
    pub ended: bool,
}

impl ServerRequest {
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn path(&self) -> &str {
        self.field(":path").unwrap_or("")
    }

    pub fn method(&self) -> &str {
        self.field(":method").unwrap_or("")
    }
}

/// One connection of a raw HTTP/2 server playing against a client: the
/// preface and SETTINGS exchanged by hand, every frame read back through
/// [`pump`](Self::pump), which keeps the books a server must keep — the
/// windows both ways (a client that sends past the window it was given
/// fails an assertion), the streams open, the requests as they arrive —
/// and answers SETTINGS and PINGs. Responses are written with literal
/// HPACK fields (plus any raw block a test builds).
pub struct ServerConn {
    pub conn: Conn,
    /// The client's first SETTINGS.
    pub client_settings: Vec<(u16, u32)>,
    /// Ours, as sent.
    ours: Vec<(u16, u32)>,
    /// Acknowledge the client's SETTINGS (a server that never does is
    /// one of the tests).
    pub ack_settings: bool,
    /// The client acknowledged our SETTINGS.
    pub settings_acked: bool,
    /// The client's HPACK table is smaller than 4,096: our next header
    /// block must start with a size update (RFC 7541 §4.2).
    pub size_update: Option<u32>,
    /// Grant received DATA back at once (both windows).
    pub auto_window: bool,
    /// What we may still send: the connection window, and each stream's.
    pub send_conn: i64,
    send_initial: i64,
    pub send_streams: HashMap<u32, i64>,
    /// What the client may still send: the connection window, and each
    /// stream's (until our SETTINGS are acknowledged, 65,535).
    pub recv_conn: i64,
    recv_initial: i64,
    pub recv_streams: HashMap<u32, i64>,
    /// Requests by stream id, as far as they came.
    pub requests: BTreeMap<u32, ServerRequest>,
    /// Heads not yet taken by [`next_head`](Self::next_head).
    heads: VecDeque<u32>,
    /// Whole requests (END_STREAM) not yet taken by
    /// [`next_request`](Self::next_request).
    ready: VecDeque<u32>,
    /// Streams open: opened by the client, not yet closed both ways nor
    /// reset either way.
    pub open: BTreeSet<u32>,
    /// The most streams open at once, counted as each one opens.
    pub max_open: usize,
    client_ended: BTreeSet<u32>,
    we_ended: BTreeSet<u32>,
    /// RST_STREAMs from the client: (stream, code).
    pub resets: Vec<(u32, u32)>,
    /// The client's GOAWAY: (last id, code).
    pub goaway: Option<(u32, u32)>,
    /// PING acks received.
    pub ping_acks: usize,
    /// PINGs received (not acks), with their payloads.
    pub pings: Vec<Vec<u8>>,
    /// Answer the client's PINGs (a server that never does is one of
    /// the tests).
    pub answer_pings: bool,
    /// WINDOW_UPDATEs received: (stream, increment).
    pub window_updates: Vec<(u32, u32)>,
}

impl ServerConn {
    /// Takes an accepted connection: sends our SETTINGS, reads the
    /// client's preface and SETTINGS, acknowledges them.
    pub fn accept(stream: TcpStream, ours: &[(u16, u32)]) -> ServerConn {
        ServerConn::accept_with(stream, ours, true)
    }

    /// [`accept`](Self::accept), the client's SETTINGS acknowledged only
    /// if `ack`.
    pub fn accept_with(stream: TcpStream, ours: &[(u16, u32)], ack: bool) -> ServerConn {
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream
            .set_write_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream.set_nodelay(true).unwrap();
        let tcp = stream.try_clone().unwrap();
        let mut conn = Conn::over(Box::new(stream));
        conn.tcp = Some(tcp);
        conn.auto_ack = false;
        // A client's table is never larger than the 4,096 it may use from
        // the start (its encoder sends literals); requests decode in any case.
        conn.decoder = HpackDecoder::new(4096, 1 << 20, 1 << 20);
        conn.send(&settings(ours));
        let mut preface = [0u8; 24];
        conn.stream
            .read_exact(&mut preface)
            .expect("the client's preface");
        assert_eq!(&preface[..], PREFACE, "the client's preface");
        let first = conn.read_frame().expect("the client's SETTINGS");
        assert_eq!(first.ty, SETTINGS, "the client's first frame: {first:?}");
        assert_eq!(
            first.flags & ACK,
            0,
            "the client's first SETTINGS is no ack"
        );
        let client_settings = first.settings();
        if ack {
            conn.send(&settings_ack());
        }
        let get = |id: u16| {
            client_settings
                .iter()
                .rev()
                .find(|(i, _)| *i == id)
                .map(|&(_, v)| v)
        };
        let send_initial = i64::from(get(INITIAL_WINDOW_SIZE).unwrap_or(65_535));
        let size_update = get(HEADER_TABLE_SIZE).filter(|&v| v < 4096);
        ServerConn {
            conn,
            client_settings: client_settings.clone(),
            ours: ours.to_vec(),
            ack_settings: ack,
            settings_acked: false,
            size_update,
            auto_window: true,
            send_conn: 65_535,
            send_initial,
            send_streams: HashMap::new(),
            recv_conn: 65_535,
            recv_initial: 65_535,
            recv_streams: HashMap::new(),
            requests: BTreeMap::new(),
            heads: VecDeque::new(),
            ready: VecDeque::new(),
            open: BTreeSet::new(),
            max_open: 0,
            client_ended: BTreeSet::new(),
            we_ended: BTreeSet::new(),
            resets: Vec::new(),
            goaway: None,
            ping_acks: 0,
            pings: Vec::new(),
            answer_pings: true,
            window_updates: Vec::new(),
        }
    }

    /// The client's value of a setting, if it sent one.
    pub fn client_setting(&self, id: u16) -> Option<u32> {
        self.client_settings
            .iter()
            .rev()
            .find(|(i, _)| *i == id)
            .map(|&(_, v)| v)
    }

    fn our_setting(&self, id: u16) -> Option<u32> {
        self.ours
            .iter()
            .rev()
            .find(|(i, _)| *i == id)
            .map(|&(_, v)| v)
    }

    /// Sets the read timeout.
    pub fn set_timeout(&mut self, d: Duration) {
        self.conn.raw_stream().set_read_timeout(Some(d)).unwrap();
    }

    fn close_if_done(&mut self, id: u32) {
        if self.client_ended.contains(&id) && self.we_ended.contains(&id) {
            self.open.remove(&id);
        }
    }

    /// Reads one frame and keeps the books (see the type); `None` at the
    /// end of the connection. A read timeout panics.
    pub fn pump(&mut self) -> Option<Frame> {
        let f = self.conn.read_frame()?;
        match f.ty {
            SETTINGS if f.flags & ACK != 0 && !self.settings_acked => {
                self.settings_acked = true;
                // Our stream window holds the client from now on
                // (what it sent before, it sent under 65,535).
                if let Some(w) = self.our_setting(INITIAL_WINDOW_SIZE) {
                    let delta = i64::from(w) - self.recv_initial;
                    for v in self.recv_streams.values_mut() {
                        *v += delta;
                    }
                    self.recv_initial = i64::from(w);
                }
            }
            SETTINGS if f.flags & ACK != 0 => {}
            SETTINGS => {
                for (id, v) in f.settings() {
                    if id == INITIAL_WINDOW_SIZE {
                        let delta = i64::from(v) - self.send_initial;
                        for w in self.send_streams.values_mut() {
                            *w += delta;
                        }
                        self.send_initial = i64::from(v);
                    }
                    self.client_settings.push((id, v));
                }
                if self.ack_settings {
                    let _ = self.conn.try_send(&settings_ack());
                }
            }
            PING if f.flags & ACK != 0 => self.ping_acks += 1,
            PING => {
                self.pings.push(f.payload.clone());
                if self.answer_pings {
                    let _ = self.conn.try_send(&frame(PING, ACK, 0, &f.payload));
                }
            }
            WINDOW_UPDATE => {
                let inc = f.code() & 0x7fff_ffff;
                self.window_updates.push((f.stream, inc));
                if f.stream == 0 {
                    self.send_conn += i64::from(inc);
                } else if let Some(w) = self.send_streams.get_mut(&f.stream) {
                    *w += i64::from(inc);
                }
            }
            HEADERS => {
                let id = f.stream;
                let mut block = Conn::header_fragment(&f);
                let mut flags = f.flags;
                while flags & END_HEADERS == 0 {
                    let c = self.conn.read_frame().expect("a CONTINUATION");
                    assert_eq!(c.ty, CONTINUATION, "a header block interrupted: {c:?}");
                    assert_eq!(c.stream, id, "a CONTINUATION of another stream");
                    block.extend_from_slice(&c.payload);
                    flags |= c.flags & END_HEADERS;
                }
                let mut fields = Vec::new();
                self.conn
                    .decoder
                    .decode(&block, |n, v, _| {
                        fields.push((
                            String::from_utf8_lossy(n).into_owned(),
                            String::from_utf8_lossy(v).into_owned(),
                        ))
                    })
                    .expect("the client's header block decodes");
                let end = f.flags & END_STREAM != 0;
                if let Some(req) = self.requests.get_mut(&id) {
                    // Trailers.
                    req.fields.extend(fields);
                } else {
                    assert!(id % 2 == 1, "a client stream id is odd: {id}");
                    self.requests.insert(
                        id,
                        ServerRequest {
                            id,
                            fields,
                            ..ServerRequest::default()
                        },
                    );
                    self.heads.push_back(id);
                    self.open.insert(id);
                    self.max_open = self.max_open.max(self.open.len());
                    self.send_streams.insert(id, self.send_initial);
                    self.recv_streams.insert(id, self.recv_initial);
                }
                if end {
                    self.end_of_request(id);
                }
            }
            DATA => {
                let id = f.stream;
                let len = f.payload.len() as i64;
                self.recv_conn -= len;
                assert!(
                    self.recv_conn >= 0,
                    "the client sent {} bytes past the connection window",
                    -self.recv_conn
                );
                let w = self
                    .recv_streams
                    .get_mut(&id)
                    .unwrap_or_else(|| panic!("DATA on stream {id}, never opened"));
                *w -= len;
                assert!(
                    *w >= 0,
                    "the client sent {} bytes past stream {id}'s window",
                    -*w
                );
                let mut p = &f.payload[..];
                if f.flags & PADDED != 0 {
                    let pad = p[0] as usize;
                    p = &p[1..p.len() - pad];
                }
                let req = self.requests.get_mut(&id).expect("a request");
                assert!(!req.ended, "DATA on stream {id} after its END_STREAM");
                req.body.extend_from_slice(p);
                let end = f.flags & END_STREAM != 0;
                if self.auto_window && len > 0 {
                    self.grant(0, len as u32);
                    if !end {
                        self.grant(id, len as u32);
                    }
                }
                if end {
                    self.end_of_request(id);
                }
            }
            RST_STREAM => {
                self.resets.push((f.stream, f.code()));
                self.open.remove(&f.stream);
            }
            GOAWAY => self.goaway = Some(f.goaway()),
            _ => {}
        }
        Some(f)
    }

    fn end_of_request(&mut self, id: u32) {
        if let Some(req) = self.requests.get_mut(&id) {
            req.ended = true;
        }
        self.ready.push_back(id);
        self.client_ended.insert(id);
        self.close_if_done(id);
    }

    /// The next request head to arrive (its body may still be coming):
    /// its stream id; `None` at the end of the connection.
    pub fn next_head(&mut self) -> Option<u32> {
        for _ in 0..100_000 {
            if let Some(id) = self.heads.pop_front() {
                if self.requests.contains_key(&id) {
                    return Some(id);
                }
                continue;
            }
            self.pump()?;
        }
        panic!("no request head in 100,000 frames");
    }

    /// The next whole request (head and body); `None` at the end of the
    /// connection.
    pub fn next_request(&mut self) -> Option<ServerRequest> {
        for _ in 0..100_000 {
            if let Some(id) = self.ready.pop_front() {
                self.heads.retain(|&h| h != id);
                // (One the test dropped from the books is skipped.)
                if let Some(req) = self.requests.get(&id) {
                    return Some(req.clone());
                }
                continue;
            }
            self.pump()?;
        }
        panic!("no whole request in 100,000 frames");
    }

    /// `n` whole requests, by stream id.
    pub fn requests(&mut self, n: usize) -> Vec<ServerRequest> {
        let mut got: Vec<ServerRequest> = (0..n)
            .map(|i| {
                self.next_request()
                    .unwrap_or_else(|| panic!("request {} of {n}: the connection ended", i + 1))
            })
            .collect();
        got.sort_by_key(|r| r.id);
        got
    }

    /// Grants the client `n` more bytes on stream `id` (0: the connection).
    pub fn grant(&mut self, id: u32, n: u32) {
        let _ = self.conn.try_send(&window_update(id, n));
        if id == 0 {
            self.recv_conn += i64::from(n);
        } else if let Some(w) = self.recv_streams.get_mut(&id) {
            *w += i64::from(n);
        }
    }

    /// The size update owed at the start of our next block, if any.
    pub fn block_prefix(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        if let Some(size) = self.size_update.take() {
            hpack_int(&mut out, 0x20, 5, size as usize);
        }
        out
    }

    /// A response head block: the owed size update, `:status` (its name
    /// from the static table, the value a literal), then `fields` as
    /// literals without indexing.
    pub fn head_block(&mut self, status: &str, fields: &[(&str, &str)]) -> Vec<u8> {
        let mut out = self.block_prefix();
        hpack_int(&mut out, 0x00, 4, 8);
        hpack_int(&mut out, 0, 7, status.len());
        out.extend_from_slice(status.as_bytes());
        out.extend_from_slice(&block(fields));
        out
    }

    /// Sends a header block on `id`: HEADERS, then CONTINUATIONs of at
    /// most `chunk` bytes each.
    pub fn send_block_in(&mut self, id: u32, block: &[u8], end_stream: bool, chunk: usize) {
        let mut parts = block.chunks(chunk.max(1)).peekable();
        let first = parts.next().unwrap_or(&[]);
        let end = if end_stream { END_STREAM } else { 0 };
        let mut out = Vec::with_capacity(block.len() + 64);
        let last = parts.peek().is_none();
        out.extend(headers(id, first, end | if last { END_HEADERS } else { 0 }));
        while let Some(p) = parts.next() {
            let last = parts.peek().is_none();
            out.extend(continuation(id, p, if last { END_HEADERS } else { 0 }));
        }
        let _ = self.conn.try_send(&out);
        if end_stream {
            self.we_ended.insert(id);
            self.close_if_done(id);
        }
    }

    /// [`send_block_in`](Self::send_block_in) in frames as large as the
    /// client allows.
    pub fn send_block(&mut self, id: u32, block: &[u8], end_stream: bool) {
        let max = self.client_setting(MAX_FRAME_SIZE).unwrap_or(16_384) as usize;
        self.send_block_in(id, block, end_stream, max);
    }

    /// A response head on `id` (see [`head_block`](Self::head_block)).
    pub fn send_head(&mut self, id: u32, status: &str, fields: &[(&str, &str)], end: bool) {
        let block = self.head_block(status, fields);
        self.send_block(id, &block, end);
    }

    /// Sends `body` on `id` as the client's windows allow, waiting (and
    /// keeping the books) for its WINDOW_UPDATEs; END_STREAM with the
    /// last frame if `end`. `false` if the connection ended first.
    pub fn send_body(&mut self, id: u32, body: &[u8], end: bool) -> bool {
        let max = self.client_setting(MAX_FRAME_SIZE).unwrap_or(16_384) as i64;
        let mut rest = body;
        let deadline = Instant::now() + Duration::from_secs(20);
        while !rest.is_empty() {
            assert!(
                Instant::now() < deadline,
                "the client never opened its window"
            );
            let stream = self.send_streams.get(&id).copied().unwrap_or(0);
            let cap = stream.min(self.send_conn).min(max);
            if cap <= 0 {
                if self.pump().is_none() {
                    return false;
                }
                continue;
            }
            let n = (cap as usize).min(rest.len());
            let last = end && n == rest.len();
            if self.conn.try_send(&data(id, &rest[..n], last)).is_err() {
                return false;
            }
            self.send_conn -= n as i64;
            *self.send_streams.get_mut(&id).unwrap() -= n as i64;
            rest = &rest[n..];
        }
        if body.is_empty() && end && self.conn.try_send(&data(id, &[], true)).is_err() {
            return false;
        }
        if end {
            self.we_ended.insert(id);
            self.close_if_done(id);
        }
        true
    }

    /// A whole response: status, `fields` and `content-length`, `body`.
    pub fn respond(&mut self, id: u32, status: &str, fields: &[(&str, &str)], body: &[u8]) {
        let len = body.len().to_string();
        let mut all = fields.to_vec();
        all.push(("content-length", &len));
        self.send_head(id, status, &all, body.is_empty());
        if !body.is_empty() {
            self.send_body(id, body, true);
        }
    }

    /// RST_STREAM on `id`.
    pub fn reset(&mut self, id: u32, code: u32) {
        let _ = self.conn.try_send(&rst_stream(id, code));
        self.open.remove(&id);
    }

    /// Sends a PING and reads until its ack: everything the client sent
    /// before it answered is in the books.
    pub fn ping_round_trip(&mut self) {
        let before = self.ping_acks;
        let _ = self.conn.try_send(&ping(*b"roundtr!"));
        for _ in 0..100_000 {
            if self.ping_acks > before {
                return;
            }
            assert!(
                self.pump().is_some(),
                "the connection ended before the PING ack"
            );
        }
        panic!("no PING ack in 100,000 frames");
    }

    /// Reads (keeping the books) until the client closes, or the read
    /// timeout passes.
    pub fn drain(&mut self) {
        self.conn.timeout_ends = true;
        for _ in 0..1_000_000 {
            if self.pump().is_none() {
                break;
            }
        }
        self.conn.timeout_ends = false;
    }

    /// Our end of the connection: our side shut, then everything the
    /// client still sends read until it closes (so that closing resets
    /// nothing it has not read yet).
    pub fn finish(&mut self) {
        let _ = self.conn.raw_stream().shutdown(std::net::Shutdown::Write);
        self.drain();
    }
}
