//! Heap allocations of the client's loop per message in raw mode, counted
//! by a `#[global_allocator]`: a CONNECT tunnel to a raw echo server,
//! small messages written and read back, steady state after a warm-up.
//! Only the loop thread is counted (it marks itself from the handler);
//! the handler itself allocates nothing while it is measured.

mod common;
#[path = "common/counting.rs"]
mod counting;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::thread;

use common::IO_TIMEOUT;
use nextloop::client::{Client, Handler, Request, Response};
use nextloop::{Decoder, Encoder, Next};

const MESSAGE: usize = 64;
const WARM_UP: u64 = 100;
const MEASURED: u64 = 1000;

/// Writes a message, reads its echo, again and again; reports the
/// allocation count at the end of the warm-up and of the measurement.
struct Echo {
    sent: usize,
    got: usize,
    messages: u64,
    at_warm: u64,
    done: mpsc::Sender<Result<(u64, u64), String>>,
}

impl Handler for Echo {
    fn on_request(&mut self, req: &mut Request<'_>) -> Next {
        req.set_method("CONNECT").set_target("echo.test:7");
        Next::read()
    }

    fn on_response(&mut self, res: Response<'_>) -> Next {
        if !res.upgraded() {
            let _ = self.done.send(Err(format!("status {}", res.status())));
            return Next::end();
        }
        counting::server_thread();
        Next::write()
    }

    fn on_request_writable(&mut self, out: &mut Encoder<'_>) -> Next {
        let message = [b'm'; MESSAGE];
        while self.sent < MESSAGE {
            match out.write(&message[self.sent..]) {
                Ok(n) => self.sent += n,
                Err(_) => return Next::write(),
            }
        }
        Next::read()
    }

    fn on_response_readable(&mut self, input: &mut Decoder<'_>) -> Next {
        let mut buf = [0u8; MESSAGE];
        loop {
            match input.read(&mut buf[..MESSAGE - self.got]) {
                Ok(0) => {
                    let _ = self.done.send(Err("the server closed".into()));
                    return Next::end();
                }
                Ok(n) => self.got += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Next::read(),
                Err(e) => {
                    let _ = self.done.send(Err(e.to_string()));
                    return Next::end();
                }
            }
            if self.got < MESSAGE {
                continue;
            }
            self.got = 0;
            self.sent = 0;
            self.messages += 1;
            if self.messages == WARM_UP {
                self.at_warm = counting::allocations();
            }
            if self.messages == WARM_UP + MEASURED {
                let now = counting::allocations();
                let _ = self.done.send(Ok((self.at_warm, now)));
                return Next::end();
            }
            return Next::write();
        }
    }
}

#[test]
fn a_raw_echo_allocates_nothing_per_message_in_the_loop() {
    counting::count_marked_only();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        let mut r = std::io::BufReader::new(stream.try_clone().unwrap());
        let mut w = stream;
        let mut line = String::new();
        while std::io::BufRead::read_line(&mut r, &mut line).is_ok_and(|n| n > 2) {
            line.clear();
        }
        w.write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")
            .unwrap();
        let mut buf = [0u8; 4096];
        loop {
            match r.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if w.write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
            }
        }
    });
    let client = Client::new().unwrap();
    let (tx, rx) = mpsc::channel();
    let echo = Echo {
        sent: 0,
        got: 0,
        messages: 0,
        at_warm: 0,
        done: tx,
    };
    client.request(&format!("http://{addr}/"), echo).unwrap();
    let (before, after) = rx
        .recv_timeout(IO_TIMEOUT)
        .expect("the echo finished in time")
        .expect("the tunnel worked");
    let per_message = (after - before) as f64 / MEASURED as f64;
    println!(
        "raw mode: {} allocations in {MEASURED} echoes ({per_message:.3} per message)",
        after - before
    );
    assert_eq!(
        after - before,
        0,
        "the loop allocated in raw mode's steady state"
    );
}
