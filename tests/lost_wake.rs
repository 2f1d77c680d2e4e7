//! A lost wake-up: a handler parks with `Next::wait()` and whatever was
//! to wake it never does (its thread panicked, or dropped the `Control`).
//! The wait is bounded by the server's `io_timeout`, so the client gets
//! the connection closed instead of waiting for ever; `wait_forever`
//! opts out. Over real TCP on 127.0.0.1; waits are bounded.

mod common;

use std::time::{Duration, Instant};

use common::handlers::Hello;
use common::{client, get, ok, read_response, serve_with, BOUND};
use nextloop::server::{Handler, Request, Response};
use nextloop::{Control, Next};

const IO_TIMEOUT: Duration = Duration::from_millis(300);

/// `/panic`: hands its `Control` to a thread that panics; `/drop`: drops
/// it; `/forever`: waits with no deadline, woken after three io timeouts;
/// anything else: Hello.
struct Waits {
    control: Option<Control>,
    hello: Hello,
}

impl Handler for Waits {
    fn on_request(&mut self, req: Request<'_>) -> Next {
        let control = self.control.take().expect("one request per handler");
        match req.path() {
            "/panic" => {
                std::thread::spawn(move || {
                    let _control = control;
                    panic!("deliberate: the waker dies before waking");
                });
                Next::wait()
            }
            // `control` goes out of scope unused: nothing can wake this.
            "/drop" => Next::wait(),
            "/forever" => {
                std::thread::spawn(move || {
                    std::thread::sleep(IO_TIMEOUT * 3);
                    let _ = control.ready(Next::write());
                });
                Next::wait_forever()
            }
            "/longer" => {
                std::thread::spawn(move || {
                    std::thread::sleep(IO_TIMEOUT * 2);
                    let _ = control.ready(Next::write());
                });
                Next::wait().timeout(IO_TIMEOUT * 4)
            }
            "/rewait" => {
                // Woken into another wait of its own deadline, longer than
                // the io timeout, then woken for good.
                std::thread::spawn(move || {
                    std::thread::sleep(IO_TIMEOUT / 2);
                    let _ = control.ready(Next::wait().timeout(IO_TIMEOUT * 4));
                    std::thread::sleep(IO_TIMEOUT * 2);
                    let _ = control.ready(Next::write());
                });
                Next::wait()
            }
            _ => Next::write(),
        }
    }

    fn on_response(&mut self, res: &mut Response<'_>) -> Next {
        self.hello.on_response(res)
    }
}

fn server() -> nextloop::server::Listening {
    serve_with(
        |s| s.io_timeout(IO_TIMEOUT),
        |control| Waits {
            control: Some(control),
            hello: Hello,
        },
    )
}

fn closed_within_bound(path: &str) {
    let server = server();
    let mut other = client(server.addr());
    let mut lost = client(server.addr());
    let start = Instant::now();
    lost.send(get(path));
    // Before the fix this read hangs until the test's own bound expires.
    assert!(lost.is_closed(), "{path}: the connection is closed");
    assert!(
        start.elapsed() < BOUND,
        "{path}: closed after the io timeout"
    );
    assert!(start.elapsed() >= IO_TIMEOUT, "{path}: not before it");
    ok(&mut other);
}

#[test]
fn a_waker_that_panics_costs_the_connection_after_the_io_timeout() {
    closed_within_bound("/panic");
}

#[test]
fn a_dropped_control_costs_the_connection_after_the_io_timeout() {
    closed_within_bound("/drop");
}

#[test]
fn wait_forever_outlasts_the_io_timeout() {
    let server = server();
    let mut c = client(server.addr());
    c.send(get("/forever"));
    let res = read_response(&mut c.reader, false).expect("woken after three io timeouts");
    assert_eq!(res.status, 200);
    assert_eq!(res.body_str(), "Hello, World!");
}

#[test]
fn a_wait_with_a_deadline_longer_than_the_io_timeout_keeps_it() {
    let server = server();
    for path in ["/longer", "/rewait"] {
        let mut c = client(server.addr());
        c.send(get(path));
        let res = read_response(&mut c.reader, false).expect(path);
        assert_eq!(res.status, 200, "{path}");
        assert_eq!(res.body_str(), "Hello, World!", "{path}");
    }
}
