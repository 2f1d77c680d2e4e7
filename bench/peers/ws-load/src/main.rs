//! A WebSocket echo load generator that costs far less per message than
//! the servers it loads: one thread, one mio loop.
//!
//! Each of `--conns` connections does the opening handshake (the key and
//! accept value of RFC 6455 §1.3, checked), then repeatedly writes a batch
//! of `--depth` messages in one write — text and binary alternating, each
//! `--size` bytes of payload, masked — and reads their echoes, checking
//! each one's opcode and payload, before writing the next batch. The
//! batch's bytes are built (and masked, with a different key per frame)
//! once at start: a server must unmask them all the same.
//!
//! Bounded in count and time: no new batch once `--messages` messages have
//! been sent or `--seconds` have passed; then every connection sends a
//! close (1000) and waits for the server's. The whole run is abandoned
//! with an error 10 s past `--seconds`.
//!
//! Prints one line, `messages N seconds T messages/s R`, counting echoed
//! messages from the first batch to the last echo. Exits 1 on any error (a
//! wrong echo, a refused handshake, a connection closed early).
//!
//!     ws-load 127.0.0.1:9001 --conns 50 --depth 16 --messages 2000000 --seconds 20 --size 16

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

/// RFC 6455 §1.3's example key and the accept value that answers it.
const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";
const GRACE: Duration = Duration::from_secs(10);

struct Args {
    addr: SocketAddr,
    conns: usize,
    depth: usize,
    messages: u64,
    seconds: u64,
    size: usize,
}

fn usage() -> String {
    "usage: ws-load ADDR [--conns N (50)] [--depth D (16)] [--messages M (1000000)] \
     [--seconds S (20)] [--size BYTES (16)]"
        .into()
}

fn parse_args() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let addr = it.next().ok_or_else(usage)?;
    if addr == "-h" || addr == "--help" {
        return Err(usage());
    }
    let mut args = Args {
        addr: addr.parse().map_err(|e| format!("{addr}: {e}"))?,
        conns: 50,
        depth: 16,
        messages: 1_000_000,
        seconds: 20,
        size: 16,
    };
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(usage)?;
        let n: u64 = value.parse().map_err(|e| format!("{flag} {value}: {e}"))?;
        match flag.as_str() {
            "--conns" => args.conns = n as usize,
            "--depth" => args.depth = n as usize,
            "--messages" => args.messages = n,
            "--seconds" => args.seconds = n,
            "--size" => args.size = n as usize,
            _ => return Err(usage()),
        }
    }
    if !args.addr.ip().is_loopback() {
        return Err("ws-load only loads servers on the loopback".into());
    }
    if args.conns == 0 || args.depth == 0 || args.size > 65535 {
        return Err("--conns and --depth must be at least 1, --size at most 65535".into());
    }
    Ok(args)
}

/// A client frame: FIN, `opcode`, masked with `key`.
fn client_frame(out: &mut Vec<u8>, opcode: u8, payload: &[u8], key: [u8; 4]) {
    out.push(0x80 | opcode);
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
    }
    out.extend_from_slice(&key);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
}

/// One message of the batch: what is sent and what must come back.
struct Message {
    opcode: u8,
    payload: Vec<u8>,
}

fn batch(depth: usize, size: usize) -> (Vec<u8>, Vec<Message>) {
    let mut seed: u32 = 0x9e37_79b9;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        seed
    };
    let mut bytes = Vec::new();
    let mut messages = Vec::new();
    for i in 0..depth {
        let (opcode, payload) = if i % 2 == 0 {
            let text: Vec<u8> = (0..size).map(|j| b'a' + ((i + j) % 26) as u8).collect();
            (1, text)
        } else {
            // Not UTF-8 in general: binary must be echoed as it is.
            let bin: Vec<u8> = (0..size).map(|_| next() as u8).collect();
            (2, bin)
        };
        client_frame(&mut bytes, opcode, &payload, next().to_be_bytes());
        messages.push(Message { opcode, payload });
    }
    (bytes, messages)
}

#[derive(PartialEq)]
enum Phase {
    Handshake,
    Running,
    /// Our close is queued or sent; waiting for the server's.
    Closing,
    Done,
}

struct Conn {
    sock: TcpStream,
    phase: Phase,
    /// Bytes to write and how many of them are written.
    out: Vec<u8>,
    sent: usize,
    inbuf: Vec<u8>,
    /// Echoes still expected of the batch in flight; the next one's index.
    in_flight: usize,
    next_echo: usize,
}

enum Frame {
    Incomplete,
    /// opcode, payload range, frame length
    Whole(u8, std::ops::Range<usize>, usize),
}

fn parse_frame(buf: &[u8]) -> Result<Frame, String> {
    if buf.len() < 2 {
        return Ok(Frame::Incomplete);
    }
    if buf[0] & 0x80 == 0 || buf[0] & 0x70 != 0 {
        return Err(format!("a fragmented or extended frame (first byte {:#04x})", buf[0]));
    }
    if buf[1] & 0x80 != 0 {
        return Err("a masked frame from the server".into());
    }
    let (len, head) = match buf[1] & 0x7f {
        126 if buf.len() >= 4 => (u16::from_be_bytes([buf[2], buf[3]]) as usize, 4),
        127 if buf.len() >= 10 => {
            let mut b = [0; 8];
            b.copy_from_slice(&buf[2..10]);
            (u64::from_be_bytes(b) as usize, 10)
        }
        126 | 127 => return Ok(Frame::Incomplete),
        n => (n as usize, 2),
    };
    if buf.len() < head + len {
        return Ok(Frame::Incomplete);
    }
    Ok(Frame::Whole(buf[0] & 0x0f, head..head + len, head + len))
}

struct Run {
    batch: Vec<u8>,
    expected: Vec<Message>,
    /// Messages sent in batches so far, and echoed.
    started: u64,
    echoed: u64,
    budget: u64,
    stop_at: Instant,
    first: Option<Instant>,
    last: Instant,
}

impl Run {
    fn may_start_batch(&self, now: Instant) -> bool {
        self.started + self.expected.len() as u64 <= self.budget && now < self.stop_at
    }
}

impl Conn {
    /// Writes until done or the socket is full.
    fn flush(&mut self) -> io::Result<()> {
        while self.sent < self.out.len() {
            match self.sock.write(&self.out[self.sent..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.out.clear();
        self.sent = 0;
        Ok(())
    }

    fn queue(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    fn start_batch_or_close(&mut self, run: &mut Run, now: Instant) {
        if run.may_start_batch(now) {
            run.first.get_or_insert(now);
            self.queue(&run.batch);
            self.in_flight = run.expected.len();
            self.next_echo = 0;
            run.started += run.expected.len() as u64;
        } else {
            let mut close = Vec::new();
            client_frame(&mut close, 8, &1000u16.to_be_bytes(), [1, 2, 3, 4]);
            self.queue(&close);
            self.phase = Phase::Closing;
        }
    }

    /// Handles what has been read; Err ends the run.
    fn consume(&mut self, run: &mut Run, now: Instant) -> Result<(), String> {
        if self.phase == Phase::Handshake {
            let Some(end) = self.inbuf.windows(4).position(|w| w == b"\r\n\r\n") else {
                if self.inbuf.len() > 8192 {
                    return Err("a handshake response head over 8 KiB".into());
                }
                return Ok(());
            };
            let head = String::from_utf8_lossy(&self.inbuf[..end]).to_ascii_lowercase();
            if !head.starts_with("http/1.1 101") {
                return Err(format!("handshake refused: {}", head.lines().next().unwrap_or("")));
            }
            let accept_ok = head.lines().any(|l| {
                l.split_once(':').is_some_and(|(n, v)| {
                    n.trim() == "sec-websocket-accept" && v.trim() == ACCEPT.to_ascii_lowercase()
                })
            });
            if !accept_ok {
                return Err("no or a wrong Sec-WebSocket-Accept".into());
            }
            self.inbuf.drain(..end + 4);
            self.phase = Phase::Running;
            self.start_batch_or_close(run, now);
        }
        let mut at = 0;
        loop {
            let frame = match parse_frame(&self.inbuf[at..])? {
                Frame::Incomplete => break,
                Frame::Whole(opcode, range, len) => {
                    let payload = &self.inbuf[at + range.start..at + range.end];
                    at += len;
                    (opcode, payload)
                }
            };
            match (&self.phase, frame.0) {
                (Phase::Closing, 8) => {
                    self.phase = Phase::Done;
                    break;
                }
                (Phase::Closing, 1 | 2) => {} // an echo of nothing we await
                (Phase::Running, 1 | 2) if self.in_flight > 0 => {
                    let want = &run.expected[self.next_echo];
                    if frame.0 != want.opcode || frame.1 != want.payload.as_slice() {
                        return Err(format!(
                            "echo {} of a batch: opcode {} and {} bytes, expected opcode {} and {} bytes",
                            self.next_echo,
                            frame.0,
                            frame.1.len(),
                            want.opcode,
                            want.payload.len()
                        ));
                    }
                    self.next_echo += 1;
                    self.in_flight -= 1;
                    run.echoed += 1;
                    run.last = now;
                    if self.in_flight == 0 {
                        self.start_batch_or_close(run, now);
                    }
                }
                (_, 8) => return Err("the server closed mid-run".into()),
                (_, op) => return Err(format!("an unexpected frame, opcode {op}")),
            }
        }
        self.inbuf.drain(..at);
        Ok(())
    }

    /// Reads until the socket is drained; Ok(false) at the peer's FIN.
    fn read_all(&mut self, buf: &mut [u8]) -> io::Result<bool> {
        loop {
            match self.sock.read(buf) {
                Ok(0) => return Ok(false),
                Ok(n) => self.inbuf.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(true),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

fn run(args: &Args) -> Result<(u64, Duration), String> {
    let (batch_bytes, expected) = batch(args.depth, args.size);
    let start = Instant::now();
    let mut run = Run {
        batch: batch_bytes,
        expected,
        started: 0,
        echoed: 0,
        budget: args.messages,
        stop_at: start + Duration::from_secs(args.seconds),
        first: None,
        last: start,
    };
    let give_up = run.stop_at + GRACE;
    let mut poll = Poll::new().map_err(|e| e.to_string())?;
    let request = format!(
        "GET / HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n",
        args.addr
    );
    let mut conns = Vec::with_capacity(args.conns);
    for i in 0..args.conns {
        let mut sock = TcpStream::connect(args.addr).map_err(|e| format!("connect: {e}"))?;
        sock.set_nodelay(true).map_err(|e| e.to_string())?;
        poll.registry()
            .register(&mut sock, Token(i), Interest::READABLE | Interest::WRITABLE)
            .map_err(|e| e.to_string())?;
        let mut conn = Conn {
            sock,
            phase: Phase::Handshake,
            out: Vec::with_capacity(run.batch.len()),
            sent: 0,
            inbuf: Vec::with_capacity(64 * 1024),
            in_flight: 0,
            next_echo: 0,
        };
        conn.queue(request.as_bytes());
        conns.push(conn);
    }
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 64 * 1024];
    let mut done = 0;
    while done < conns.len() {
        let now = Instant::now();
        if now >= give_up {
            return Err(format!(
                "{} of {} connections not finished {GRACE:?} past --seconds",
                conns.len() - done,
                conns.len()
            ));
        }
        poll.poll(&mut events, Some(give_up - now))
            .map_err(|e| e.to_string())?;
        let now = Instant::now();
        for event in events.iter() {
            let conn = &mut conns[event.token().0];
            if conn.phase == Phase::Done {
                continue;
            }
            let context = |e: String| format!("connection {}: {e}", event.token().0);
            let open = conn.read_all(&mut buf).map_err(|e| context(e.to_string()))?;
            conn.consume(&mut run, now).map_err(context)?;
            if conn.phase == Phase::Done {
                done += 1;
                continue;
            }
            if !open {
                return Err(context("closed by the server mid-run".into()));
            }
            conn.flush().map_err(|e| context(e.to_string()))?;
        }
    }
    let first = run.first.unwrap_or(start);
    Ok((run.echoed, run.last.saturating_duration_since(first)))
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    match run(&args) {
        Ok((messages, elapsed)) => {
            let secs = elapsed.as_secs_f64().max(1e-9);
            println!(
                "messages {messages} seconds {secs:.3} messages/s {:.0}",
                messages as f64 / secs
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ws-load: {e}");
            ExitCode::FAILURE
        }
    }
}
