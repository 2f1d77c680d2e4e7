//! Shared helpers for integration tests: start a real server on
//! 127.0.0.1:0 and talk raw bytes to it over TCP.
#![allow(dead_code)]

pub mod handlers;

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use nextloop::server::{HandlerFactory, Listening, Server};

/// Generous bound for any single read in a test: a hang fails, never blocks CI.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// A tighter bound, for reads that must not hang when a hang is the bug
/// under test (a hang fails the test sooner).
pub const BOUND: Duration = Duration::from_secs(5);

/// Starts `factory` on 127.0.0.1 with an OS-chosen port.
pub fn serve<F: HandlerFactory + Clone>(factory: F) -> Listening {
    serve_with(|s| s, factory)
}

/// Like [`serve`], with settings applied by `configure`.
pub fn serve_with<F: HandlerFactory + Clone>(
    configure: impl FnOnce(Server) -> Server,
    factory: F,
) -> Listening {
    let server = Server::bind("127.0.0.1:0").expect("bind");
    configure(server).handle(factory).expect("start server")
}

/// `GET path` as a minimal HTTP/1.1 request.
pub fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n")
}

/// A client whose reads give up after [`BOUND`].
pub fn client(addr: SocketAddr) -> Client {
    let c = Client::connect(addr);
    c.reader.get_ref().set_read_timeout(Some(BOUND)).unwrap();
    c
}

/// GET / on `c` is answered 200 Hello (for servers that route `/` to
/// [`handlers::Hello`]).
pub fn ok(c: &mut Client) {
    c.send(get("/"));
    let res = read_response(&mut c.reader, false).expect("a response to GET /");
    assert_eq!(res.status, 200);
    assert_eq!(res.body_str(), "Hello, World!");
}

/// A raw client connection.
pub struct Client {
    pub reader: BufReader<TcpStream>,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        Client {
            reader: BufReader::new(stream),
        }
    }

    pub fn stream(&mut self) -> &mut TcpStream {
        self.reader.get_mut()
    }

    pub fn send(&mut self, bytes: impl AsRef<[u8]>) {
        self.stream().write_all(bytes.as_ref()).expect("send");
    }

    /// Reads one response to a non-HEAD request.
    pub fn response(&mut self) -> Response {
        read_response(&mut self.reader, false).expect("read response")
    }

    /// Reads one response to a HEAD request (no body whatever the fields say).
    pub fn head_response(&mut self) -> Response {
        read_response(&mut self.reader, true).expect("read response")
    }

    /// Reads until the server closes; `Ok` with the bytes, or the error
    /// (a reset shows up as `ConnectionReset`).
    pub fn read_to_close(&mut self) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        self.reader.read_to_end(&mut out)?;
        Ok(out)
    }

    /// Did the server close the connection (EOF, or reset) rather than
    /// leave it open? Waits at most [`IO_TIMEOUT`].
    pub fn is_closed(&mut self) -> bool {
        let mut byte = [0u8; 1];
        match self.reader.read(&mut byte) {
            Ok(0) => true,
            Ok(_) => panic!(
                "unexpected byte {:?} where close was expected",
                byte[0] as char
            ),
            Err(e)
                if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::TimedOut =>
            {
                false
            }
            Err(_) => true,
        }
    }
}

/// A parsed response.
#[derive(Debug, Clone)]
pub struct Response {
    pub version: String,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first field named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn body_str(&self) -> &str {
        std::str::from_utf8(&self.body).expect("utf-8 body")
    }

    /// Does the response ask for the connection to be closed?
    pub fn closes(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }
}

fn line(r: &mut impl BufRead) -> io::Result<String> {
    let mut l = String::new();
    if r.read_line(&mut l)? == 0 {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    if !l.ends_with("\r\n") {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("line without CRLF: {l:?}"),
        ));
    }
    l.truncate(l.len() - 2);
    Ok(l)
}

/// Reads one response: head, then the body as framed (Content-Length,
/// chunked, or until close). 1xx interim responses are returned as such.
pub fn read_response(r: &mut impl BufRead, head_request: bool) -> io::Result<Response> {
    let status_line = line(r)?;
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default().to_string();
    let status: u16 = parts.next().and_then(|s| s.parse().ok()).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("bad status line {status_line:?}"),
        )
    })?;
    let mut headers = Vec::new();
    loop {
        let l = line(r)?;
        if l.is_empty() {
            break;
        }
        let (name, value) = l.split_once(':').ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidData, format!("bad field {l:?}"))
        })?;
        headers.push((name.to_string(), value.trim().to_string()));
    }
    let mut res = Response {
        version,
        status,
        headers,
        body: Vec::new(),
    };
    if head_request || status < 200 || status == 204 || status == 304 {
        return Ok(res);
    }
    if res
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        loop {
            let size_line = line(r)?;
            let size = usize::from_str_radix(size_line.split(';').next().unwrap().trim(), 16)
                .map_err(|_| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("bad chunk size {size_line:?}"),
                    )
                })?;
            if size == 0 {
                while !line(r)?.is_empty() {}
                break;
            }
            let start = res.body.len();
            res.body.resize(start + size, 0);
            r.read_exact(&mut res.body[start..])?;
            if !line(r)?.is_empty() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "chunk data too long",
                ));
            }
        }
    } else if let Some(len) = res.header("content-length") {
        let len: usize = len
            .parse()
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad length"))?;
        res.body.resize(len, 0);
        r.read_exact(&mut res.body)?;
    } else {
        r.read_to_end(&mut res.body)?;
    }
    Ok(res)
}
