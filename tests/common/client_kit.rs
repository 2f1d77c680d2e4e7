//! For client tests: raw servers that answer with the bytes a test chooses,
//! and a handler that collects a response.
#![allow(dead_code)]

use std::io::{self, BufRead, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;

use nextloop::client::{self, Error, Handler};
use nextloop::{Decoder, Next};

use super::common::IO_TIMEOUT;

/// A raw server's address and how many connections it accepted.
pub struct Raw {
    pub addr: SocketAddr,
    pub accepted: Arc<AtomicUsize>,
}

impl Raw {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

/// Every accepted connection is served by `serve(stream, index)` on its
/// own thread; `index` counts connections from 0. Reads time out after
/// [`IO_TIMEOUT`].
pub fn raw(serve: impl Fn(TcpStream, usize) + Send + Sync + 'static) -> Raw {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&accepted);
    let serve = Arc::new(serve);
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let i = count.fetch_add(1, Ordering::SeqCst);
            stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
            let serve = Arc::clone(&serve);
            thread::spawn(move || serve(stream, i));
        }
    });
    Raw { addr, accepted }
}

/// A request head as a raw server reads it.
pub struct RequestHead {
    pub method: String,
    pub path: String,
    pub content_length: usize,
}

/// Reads one request head; `None` at EOF or on error.
pub fn read_head(r: &mut impl BufRead) -> Option<RequestHead> {
    let mut line = String::new();
    if r.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    let mut content_length = 0;
    for _ in 0..100 {
        let mut l = String::new();
        if r.read_line(&mut l).ok()? == 0 {
            return None;
        }
        let l = l.trim_end();
        if l.is_empty() {
            return Some(RequestHead {
                method,
                path,
                content_length,
            });
        }
        let (n, v) = l.split_once(':')?;
        if n.eq_ignore_ascii_case("content-length") {
            content_length = v.trim().parse().ok()?;
        }
    }
    None
}

/// Reads one request head, as lines; `None` at EOF or on error.
pub fn read_head_lines(r: &mut impl BufRead) -> Option<Vec<String>> {
    let mut lines = Vec::new();
    loop {
        let mut l = String::new();
        if r.read_line(&mut l).ok()? == 0 {
            return None;
        }
        let l = l.trim_end().to_string();
        if l.is_empty() {
            return Some(lines);
        }
        lines.push(l);
    }
}

/// Reads until the peer closes (or the read timeout passes).
pub fn hold(r: &mut impl Read) {
    let mut sink = [0u8; 4096];
    for _ in 0..100_000 {
        match r.read(&mut sink) {
            Ok(n) if n > 0 => {}
            _ => return,
        }
    }
}

/// Reads until the peer closes or resets (`true`), or the read timeout
/// passes (`false`).
pub fn until_closed(r: &mut impl Read) -> bool {
    let mut sink = [0u8; 4096];
    loop {
        match r.read(&mut sink) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return false
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return true,
        }
    }
}

/// A one-shot signal from the test to a server thread (or back).
pub struct Signal(Mutex<mpsc::Receiver<()>>);

pub fn signal() -> (mpsc::Sender<()>, Arc<Signal>) {
    let (tx, rx) = mpsc::channel();
    (tx, Arc::new(Signal(Mutex::new(rx))))
}

impl Signal {
    /// Waits for the signal, at most [`IO_TIMEOUT`].
    pub fn wait(&self) {
        let _ = self.0.lock().unwrap().recv_timeout(IO_TIMEOUT);
    }
}

/// A status and body, or the error the handler was told.
pub type Outcome = Result<(u16, Vec<u8>), String>;

/// Sends `method` without a body; collects status and body (or the error).
pub struct Collect {
    method: &'static str,
    status: u16,
    body: Vec<u8>,
    done: mpsc::Sender<Outcome>,
}

impl Collect {
    pub fn new(method: &'static str, done: &mpsc::Sender<Outcome>) -> Collect {
        Collect {
            method,
            status: 0,
            body: Vec::new(),
            done: done.clone(),
        }
    }
}

impl Handler for Collect {
    fn on_request(&mut self, req: &mut client::Request<'_>) -> Next {
        req.set_method(self.method);
        Next::read()
    }

    fn on_response(&mut self, res: client::Response<'_>) -> Next {
        self.status = res.status();
        Next::read()
    }

    fn on_response_readable(&mut self, body: &mut Decoder<'_>) -> Next {
        let mut buf = [0u8; 4096];
        // Bounded: a body that keeps coming gets the loop back in between.
        for _ in 0..1024 {
            match body.read(&mut buf) {
                Ok(0) => {
                    let body = std::mem::take(&mut self.body);
                    let _ = self.done.send(Ok((self.status, body)));
                    return Next::end();
                }
                Ok(n) => self.body.extend_from_slice(&buf[..n]),
                Err(_) => return Next::read(),
            }
        }
        Next::read()
    }

    fn on_error(&mut self, err: Error) -> Next {
        let _ = self.done.send(Err(err.to_string()));
        Next::remove()
    }
}

/// A GET of `url` with [`Collect`]; its outcome, or an error after
/// [`IO_TIMEOUT`].
pub fn get(client: &client::Client, url: &str) -> Outcome {
    let (tx, rx) = mpsc::channel();
    client.request(url, Collect::new("GET", &tx)).unwrap();
    rx.recv_timeout(IO_TIMEOUT)
        .unwrap_or(Err("no outcome in time".into()))
}
