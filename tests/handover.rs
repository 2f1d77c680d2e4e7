//! `Next::remove()` hands the connection over (`on_remove(Detached)`)
//! with every byte the loop had read and no exchange consumed: bytes
//! that came in the same packet as the request head are not lost.

mod common;
#[path = "common/sockets.rs"]
mod sockets;

use std::io::{Read, Write};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use common::{serve, Client, IO_TIMEOUT};
use nextloop::server::{Handler, Request, Response};
use nextloop::{Control, Detached, Next};

/// Takes the connection on `/take`; answers anything else.
struct Taker {
    taken: mpsc::Sender<Vec<u8>>,
    take: bool,
}

impl Handler for Taker {
    fn on_request(&mut self, req: Request<'_>) -> Next {
        self.take = req.path() == "/take";
        if self.take {
            Next::remove()
        } else {
            Next::write()
        }
    }

    fn on_response(&mut self, res: &mut Response<'_>) -> Next {
        res.body(b"answered");
        Next::end()
    }

    fn on_remove(self, conn: Detached) {
        if !self.take {
            return;
        }
        let taken = self.taken;
        // Off the loop thread, blocking: read what the loop had buffered
        // and then what follows, echo it back, report it.
        thread::spawn(move || {
            let mut conn = conn;
            conn.stream().set_nonblocking(false).unwrap();
            conn.stream().set_read_timeout(Some(IO_TIMEOUT)).unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 64];
            while got.len() < b"EARLY-BYTES+LATER".len() {
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
            let _ = conn.write_all(&got);
            let _ = taken.send(got);
        });
    }
}

#[test]
fn bytes_after_the_head_in_the_same_read_go_with_the_connection() {
    let (tx, rx) = mpsc::channel();
    let server = serve(move |_: Control| Taker {
        taken: tx.clone(),
        take: false,
    });
    let mut c = Client::connect(server.addr());
    // One write: the head and the first bytes of whatever comes next.
    c.send("GET /take HTTP/1.1\r\nHost: x\r\n\r\nEARLY-BYTES");
    thread::sleep(Duration::from_millis(50));
    c.send("+LATER");
    let got = rx.recv_timeout(IO_TIMEOUT).expect("on_remove ran");
    assert_eq!(String::from_utf8_lossy(&got), "EARLY-BYTES+LATER");
    let mut echoed = vec![0u8; got.len()];
    c.stream().read_exact(&mut echoed).unwrap();
    assert_eq!(echoed, got, "the new owner writes on the same connection");
}

#[test]
fn a_pipelined_request_behind_the_taken_one_goes_with_it_unparsed() {
    let (tx, rx) = mpsc::channel();
    let server = serve(move |_: Control| Taker {
        taken: tx.clone(),
        take: false,
    });
    let mut c = Client::connect(server.addr());
    c.send("GET /take HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n");
    c.send("+LATER");
    let got = rx.recv_timeout(IO_TIMEOUT).expect("on_remove ran");
    // The new owner gets the second request as bytes; the server answered
    // nothing.
    assert!(
        got.starts_with(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
        "{:?}",
        String::from_utf8_lossy(&got)
    );
}

/// Responses to earlier pipelined requests that were finished when a
/// later handler returns `Next::remove()` go out first, in order; then
/// the connection is handed over (or closed).
#[test]
fn remove_flushes_the_responses_finished_before_it() {
    let (tx, rx) = mpsc::channel();
    let server = serve(move |_: Control| Taker {
        taken: tx.clone(),
        take: false,
    });
    let mut c = Client::connect(server.addr());
    c.send("GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\nGET /take HTTP/1.1\r\nHost: x\r\n\r\nEARLY-BYTES+LATER");
    for _ in 0..2 {
        let res = c.response();
        assert_eq!((res.status, res.body_str()), (200, "answered"));
    }
    let got = rx.recv_timeout(IO_TIMEOUT).expect("on_remove ran");
    assert_eq!(String::from_utf8_lossy(&got), "EARLY-BYTES+LATER");
    let mut echoed = vec![0u8; got.len()];
    c.reader.read_exact(&mut echoed).unwrap();
    assert_eq!(
        echoed, got,
        "after the two responses, the new owner's bytes"
    );
}

/// Removed without a taker while the finished responses before it are
/// still being written to a slow reader (a small send buffer): all of
/// them go out, then the close.
#[test]
fn remove_without_a_taker_flushes_then_closes() {
    const BIG: usize = 8 << 20;
    struct RemoveOn3;
    impl Handler for RemoveOn3 {
        fn on_request(&mut self, req: Request<'_>) -> Next {
            match req.path() {
                "/3" => Next::remove(),
                _ => Next::write(),
            }
        }
        fn on_response(&mut self, res: &mut Response<'_>) -> Next {
            res.body(&vec![b'x'; BIG]);
            Next::end()
        }
    }
    let server = serve(|_: Control| RemoveOn3);
    sockets::set_listener_send_buffer(server.addr(), 4096);
    let mut c = Client::connect(server.addr());
    let batch: String = (1..=4)
        .map(|i| format!("GET /{i} HTTP/1.1\r\nHost: x\r\n\r\n"))
        .collect();
    c.send(batch);
    thread::sleep(Duration::from_millis(200));
    for i in 1..=2 {
        let res = c.response();
        assert_eq!((res.status, res.body.len()), (200, BIG), "response {i}");
    }
    let mut rest = Vec::new();
    let _ = c.reader.read_to_end(&mut rest);
    assert!(rest.is_empty(), "{} bytes after the responses", rest.len());
}
