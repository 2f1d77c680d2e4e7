//! "Response sent" over TCP: `Response::notify_sent` gets
//! `on_response_sent` once the last byte is written to the socket, not
//! before — with a slow-reading client whose small receive buffer holds
//! the response back — and pipelined responses are told in order.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::{read_response, serve, IO_TIMEOUT};
use nextloop::server::{Handler, Request, Response};
use nextloop::{Control, Encoder, Next};

/// Answers `/big` with [`BIG`] bytes, anything else with its path; asks
/// to be told when sent, and reports `(path, at)`.
struct Sent {
    path: String,
    left: usize,
    done: mpsc::Sender<(String, Instant)>,
}

const BIG: usize = 16 << 20;

impl Handler for Sent {
    fn on_request(&mut self, req: Request<'_>) -> Next {
        self.path = req.path().to_owned();
        Next::write()
    }

    fn on_response(&mut self, res: &mut Response<'_>) -> Next {
        res.notify_sent();
        if self.path == "/big" {
            self.left = BIG;
            res.set_content_length(BIG as u64);
            Next::write()
        } else {
            res.body(self.path.as_bytes());
            Next::end()
        }
    }

    fn on_response_writable(&mut self, body: &mut Encoder<'_>) -> Next {
        let chunk = [b'x'; 16 * 1024];
        while self.left > 0 {
            match body.write(&chunk[..self.left.min(chunk.len())]) {
                Ok(n) => self.left -= n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Next::write(),
                Err(e) => panic!("{e}"),
            }
        }
        Next::end()
    }

    fn on_response_sent(&mut self, at: Instant) {
        let _ = self.done.send((std::mem::take(&mut self.path), at));
    }
}

fn server() -> (
    nextloop::server::Listening,
    mpsc::Receiver<(String, Instant)>,
) {
    let (tx, rx) = mpsc::channel();
    let server = serve(move |_: Control| Sent {
        path: String::new(),
        left: 0,
        done: tx.clone(),
    });
    (server, rx)
}

/// A client socket with a small receive buffer, set before connecting.
fn slow_client(addr: SocketAddr) -> TcpStream {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    sock.connect(&addr.into()).unwrap();
    let stream: TcpStream = sock.into();
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    stream
}

#[test]
fn sent_is_told_after_the_last_byte_and_not_before() {
    let (server, rx) = server();
    let mut c = slow_client(server.addr());
    c.write_all(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    // Not read yet: 16 MiB cannot all be in the kernel's buffers.
    thread::sleep(Duration::from_millis(300));
    assert!(
        rx.try_recv().is_err(),
        "told sent while the client had read nothing"
    );
    let mut buf = vec![0u8; 64 * 1024];
    let mut head = Vec::new();
    // Head, then the body to its last byte.
    let (mut got, total) = loop {
        let n = c.read(&mut buf).unwrap();
        assert!(n > 0, "closed early");
        head.extend_from_slice(&buf[..n]);
        if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            break (head.len() - end - 4, end + 4 + BIG);
        }
    };
    let mut last_read = Instant::now();
    while got < BIG {
        if got + 8 * 1024 * 1024 < BIG {
            // Still far from the end: nothing said yet.
            assert!(rx.try_recv().is_err(), "told sent with {got} of {BIG} read");
        }
        let n = c.read(&mut buf).unwrap();
        assert!(n > 0, "closed at {got} of {total}");
        got += n;
        last_read = Instant::now();
    }
    let (path, at) = rx.recv_timeout(IO_TIMEOUT).expect("told sent");
    assert_eq!(path, "/big");
    assert!(at <= last_read, "sent after the client had read it all");
}

#[test]
fn pipelined_responses_are_told_sent_in_order() {
    let (server, rx) = server();
    let mut c = TcpStream::connect(server.addr()).unwrap();
    c.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let mut reqs = String::new();
    for i in 0..20 {
        reqs.push_str(&format!("GET /{i} HTTP/1.1\r\nHost: x\r\n\r\n"));
    }
    c.write_all(reqs.as_bytes()).unwrap();
    let mut reader = std::io::BufReader::new(c);
    let mut last = None;
    for i in 0..20 {
        let res = read_response(&mut reader, false).unwrap();
        assert_eq!(res.body_str(), format!("/{i}"));
        let (path, at) = rx.recv_timeout(IO_TIMEOUT).expect("told sent");
        assert_eq!(path, format!("/{i}"));
        assert!(last.is_none_or(|l| l <= at));
        last = Some(at);
    }
}

/// Pull mode: `finish_sent` returns once the last byte of a large body is
/// written to a slow client's socket, not while it still reads nothing.
#[test]
fn pull_mode_finish_sent_waits_for_the_last_byte() {
    let incoming = nextloop::hypersync::Server::bind("127.0.0.1:0")
        .unwrap()
        .incoming()
        .unwrap();
    let addr = incoming.addr();
    let (tx, rx) = mpsc::channel();
    let worker = thread::spawn(move || {
        let mut req = incoming.recv().unwrap();
        let mut res = req.take_response().unwrap();
        res.notify_sent().set_content_length(BIG as u64);
        let chunk = [b'y'; 64 * 1024];
        for _ in 0..BIG / chunk.len() {
            res.write_all(&chunk).unwrap();
        }
        let at = res.finish_sent().unwrap();
        tx.send(at).unwrap();
        // A response whose head went out without asking cannot wait.
        let mut req = incoming.recv().unwrap();
        let mut res = req.take_response().unwrap();
        res.write_all(b"x").unwrap();
        res.flush().unwrap();
        let err = res.finish_sent().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
    });
    let mut c = slow_client(addr);
    c.write_all(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    thread::sleep(Duration::from_millis(300));
    assert!(
        rx.try_recv().is_err(),
        "finish_sent returned before any read"
    );
    let mut reader = std::io::BufReader::new(c);
    let res = read_response(&mut reader, false).unwrap();
    let done = Instant::now();
    assert_eq!(res.body.len(), BIG);
    let at = rx.recv_timeout(IO_TIMEOUT).expect("finish_sent returned");
    // The instant is taken just after the last write returned; the client
    // may read those bytes before the server's thread takes it, so it is
    // bounded generously, not ordered against `done`.
    assert!(at <= done + Duration::from_secs(2));
    reader
        .get_mut()
        .write_all(b"GET /second HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    worker.join().unwrap();
}
