//! Bulk TCP throughput, directly or through an HTTP CONNECT proxy.
//!
//!     tcp-bulk sink 127.0.0.1:0
//!     tcp-bulk send 127.0.0.1:SINKPORT BYTES [--via 127.0.0.1:PROXYPORT] [--seconds S]
//!
//! The sink prints `Listening on tcp://ADDR`, then serves connections one
//! at a time: an 8-byte big-endian length L, then L bytes it reads and
//! drops, then it writes L back (8 bytes) and closes.
//!
//! The sender connects to the sink, or to the proxy with `CONNECT ADDR
//! HTTP/1.1` (a 2xx answer with nothing after its head is required), then
//! sends the length and BYTES bytes from a 256 KiB buffer and waits for the
//! sink's count. It prints `bytes N seconds T MiB/s R`, timed from the
//! first byte of the length to the count's arrival, and exits 1 on any
//! error or when it takes longer than S seconds (default 60: every read
//! and write has that timeout, and the loop checks the deadline).
//! Only loopback addresses are accepted.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::ExitCode;
use std::time::{Duration, Instant};

const CHUNK: usize = 256 * 1024;

fn loopback(s: &str) -> Result<SocketAddr, String> {
    let addr: SocketAddr = s.parse().map_err(|e| format!("{s}: {e}"))?;
    if !addr.ip().is_loopback() {
        return Err(format!("{s}: only loopback addresses"));
    }
    Ok(addr)
}

fn sink(addr: SocketAddr) -> Result<(), String> {
    let listener = TcpListener::bind(addr).map_err(|e| e.to_string())?;
    println!("Listening on tcp://{}", listener.local_addr().map_err(|e| e.to_string())?);
    let mut buf = vec![0u8; CHUNK];
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        // One bad connection costs only itself.
        if let Err(e) = serve(&mut stream, &mut buf) {
            eprintln!("tcp-bulk sink: {e}");
        }
    }
    Ok(())
}

fn serve(stream: &mut TcpStream, buf: &mut [u8]) -> io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(120)))?;
    let mut len = [0u8; 8];
    stream.read_exact(&mut len)?;
    let want = u64::from_be_bytes(len);
    let mut got = 0u64;
    while got < want {
        let room = buf.len().min((want - got) as usize);
        match stream.read(&mut buf[..room]) {
            Ok(0) => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "short")),
            Ok(n) => got += n as u64,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    stream.write_all(&got.to_be_bytes())
}

fn connect_via(proxy: SocketAddr, target: SocketAddr, timeout: Duration) -> Result<TcpStream, String> {
    let mut s = TcpStream::connect_timeout(&proxy, timeout).map_err(|e| format!("proxy: {e}"))?;
    s.set_read_timeout(Some(timeout)).map_err(|e| e.to_string())?;
    write!(s, "CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n").map_err(|e| e.to_string())?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    // Byte by byte: nothing past the head may be taken from the stream.
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 8192 {
            return Err("the proxy's answer head is over 8 KiB".into());
        }
        match s.read(&mut byte) {
            Ok(0) => return Err("the proxy closed before answering".into()),
            Ok(_) => head.push(byte[0]),
            Err(e) => return Err(format!("proxy: {e}")),
        }
    }
    let status = String::from_utf8_lossy(&head);
    let line = status.lines().next().unwrap_or("");
    if !line.starts_with("HTTP/1.1 2") && !line.starts_with("HTTP/1.0 2") {
        return Err(format!("the proxy answered {line:?}"));
    }
    Ok(s)
}

fn send(target: SocketAddr, bytes: u64, via: Option<SocketAddr>, seconds: u64) -> Result<(), String> {
    let timeout = Duration::from_secs(seconds);
    let mut s = match via {
        Some(proxy) => connect_via(proxy, target, timeout)?,
        None => TcpStream::connect_timeout(&target, timeout).map_err(|e| format!("sink: {e}"))?,
    };
    s.set_read_timeout(Some(timeout)).map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(timeout)).map_err(|e| e.to_string())?;
    let buf: Vec<u8> = (0..CHUNK).map(|i| (i * 7) as u8).collect();
    let start = Instant::now();
    let deadline = start + timeout;
    s.write_all(&bytes.to_be_bytes()).map_err(|e| e.to_string())?;
    let mut left = bytes;
    while left > 0 {
        if Instant::now() > deadline {
            return Err(format!("not done in {seconds} s ({left} bytes left)"));
        }
        let n = buf.len().min(left as usize);
        s.write_all(&buf[..n]).map_err(|e| format!("send: {e}"))?;
        left -= n as u64;
    }
    let mut count = [0u8; 8];
    s.read_exact(&mut count).map_err(|e| format!("the sink's count: {e}"))?;
    let elapsed = start.elapsed().as_secs_f64();
    if u64::from_be_bytes(count) != bytes {
        return Err(format!("the sink counted {} of {bytes} bytes", u64::from_be_bytes(count)));
    }
    println!(
        "bytes {bytes} seconds {elapsed:.3} MiB/s {:.1}",
        bytes as f64 / elapsed / (1024.0 * 1024.0)
    );
    Ok(())
}

fn run() -> Result<(), String> {
    let usage = "usage: tcp-bulk sink ADDR | tcp-bulk send ADDR BYTES [--via PROXY] [--seconds S]";
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("sink") if args.len() == 2 => sink(loopback(&args[1])?),
        Some("send") if args.len() >= 3 => {
            let target = loopback(&args[1])?;
            let bytes = args[2].parse().map_err(|e| format!("BYTES {}: {e}", args[2]))?;
            let (mut via, mut seconds) = (None, 60);
            let mut rest = args[3..].iter();
            while let Some(flag) = rest.next() {
                let value = rest.next().ok_or(usage)?;
                match flag.as_str() {
                    "--via" => via = Some(loopback(value)?),
                    "--seconds" => seconds = value.parse().map_err(|e| format!("--seconds: {e}"))?,
                    _ => return Err(usage.into()),
                }
            }
            send(target, bytes, via, seconds)
        }
        _ => Err(usage.into()),
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tcp-bulk: {e}");
            ExitCode::FAILURE
        }
    }
}
