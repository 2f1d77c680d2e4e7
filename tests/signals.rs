//! Ctrl-C: a server started with `shutdown_on_signals` finishes the
//! exchange in flight when SIGINT comes, then its process exits 0; a
//! second signal exits at once with 130.
//!
//! The server runs in a child process: this test binary itself, started
//! again with `CHILD` set, running only the `child_server` test. The child
//! prints the address it bound and a line per request it starts; the
//! parent sends the signal with `kill` once a request is in flight.
//! Over real TCP on 127.0.0.1; every wait is bounded.
#![cfg(unix)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{get, read_response, BOUND};
use nextloop::server::{Handler, Request, Response, Server};
use nextloop::{Control, Next};

/// Set in the child's environment: which server to run.
const CHILD: &str = "NEXTLOOP_SIGNALS_CHILD";
/// How long the child's handler takes to answer.
const DELAY: Duration = Duration::from_millis(500);

/// Answers after [`DELAY`] (`/forever`: never), saying on stdout that a
/// request has started.
struct Slow {
    control: Option<Control>,
}

impl Handler for Slow {
    fn on_request(&mut self, req: Request<'_>) -> Next {
        println!("STARTED {}", req.path());
        let control = self.control.take().expect("one request per handler");
        if req.path() == "/forever" {
            return Next::wait_forever();
        }
        std::thread::spawn(move || {
            std::thread::sleep(DELAY);
            let _ = control.ready(Next::write());
        });
        Next::wait()
    }

    fn on_response(&mut self, res: &mut Response<'_>) -> Next {
        res.body(b"finished");
        Next::end()
    }
}

/// The child's part: a no-op unless run as the child.
#[test]
fn child_server() {
    let Ok(mode) = std::env::var(CHILD) else {
        return;
    };
    let server = Server::bind("127.0.0.1:0")
        .unwrap()
        .shutdown_grace(Duration::from_secs(5))
        .shutdown_on_signals();
    let factory = |control| Slow {
        control: Some(control),
    };
    let listening = if mode == "here" {
        // The loop on this thread, as `examples/hello.rs` runs it.
        let (listening, main_loop) = server.handle_here(factory).unwrap();
        println!("ADDR {}", listening.addr());
        main_loop.run().unwrap();
        listening
    } else {
        let listening = server.handle(factory).unwrap();
        println!("ADDR {}", listening.addr());
        listening
    };
    listening.join().unwrap();
    println!("JOINED");
    std::io::stdout().flush().unwrap();
    // Not the test harness's exit: this status is the one under test.
    std::process::exit(0);
}

/// The child, and its stdout lines as they come.
struct Spawned {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Spawned {
    fn start(mode: &str) -> Spawned {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "child_server", "--nocapture", "--test-threads=1"])
            .env(CHILD, mode)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the child server");
        let stdout: ChildStdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Spawned { child, lines }
    }

    /// The rest of the first line starting with `prefix`.
    fn line(&self, prefix: &str) -> String {
        let deadline = Instant::now() + BOUND;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    // (The harness may have begun the line: `test child_server ... `.)
                    if let Some((_, rest)) = line.split_once(prefix) {
                        return rest.trim().to_string();
                    }
                }
                Err(e) => panic!("no line {prefix:?} from the child: {e}"),
            }
        }
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([name, &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
    }

    /// Waits (bounded) for the child to exit.
    fn exit_status(&mut self) -> ExitStatus {
        let deadline = Instant::now() + BOUND * 2;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("the child did not exit");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sigint_finishes_the_request_in_flight_and_exits_0(mode: &str) {
    let mut child = Spawned::start(mode);
    let addr = child.line("ADDR ");
    let mut conn = TcpStream::connect(&addr).unwrap();
    conn.set_read_timeout(Some(BOUND)).unwrap();
    conn.write_all(get("/slow").as_bytes()).unwrap();
    child.line("STARTED /slow");
    let sent = Instant::now();
    child.signal("-INT");

    let mut reader = BufReader::new(conn);
    let res = read_response(&mut reader, false).expect("the request in flight is answered");
    assert_eq!(res.status, 200);
    assert_eq!(res.body_str(), "finished");
    assert!(res.closes(), "shutting down: Connection: close");
    child.line("JOINED");
    let status = child.exit_status();
    assert_eq!(status.code(), Some(0), "exit status after SIGINT");
    assert!(sent.elapsed() < BOUND, "exited within the grace");
    // The listener is gone with the process.
    assert!(TcpStream::connect(&addr).is_err());
}

#[test]
fn sigint_finishes_the_request_in_flight_and_exits_0_loop_on_a_thread() {
    sigint_finishes_the_request_in_flight_and_exits_0("thread");
}

#[test]
fn sigint_finishes_the_request_in_flight_and_exits_0_loop_on_the_main_thread() {
    sigint_finishes_the_request_in_flight_and_exits_0("here");
}

#[test]
fn sigterm_shuts_down_too() {
    let mut child = Spawned::start("thread");
    child.line("ADDR ");
    child.signal("-TERM");
    child.line("JOINED");
    assert_eq!(child.exit_status().code(), Some(0));
}

#[test]
fn a_second_sigint_exits_at_once_with_130() {
    let mut child = Spawned::start("thread");
    let addr = child.line("ADDR ");
    let mut conn = TcpStream::connect(&addr).unwrap();
    conn.write_all(get("/forever").as_bytes()).unwrap();
    child.line("STARTED /forever");
    child.signal("-INT");
    // Two signals before the loop looks are one: wait until the first has
    // been handled, which closes the listener.
    let deadline = Instant::now() + BOUND;
    while TcpStream::connect(&addr).is_ok() {
        assert!(
            Instant::now() < deadline,
            "the first SIGINT closes the listener"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    child.signal("-INT");
    assert_eq!(child.exit_status().code(), Some(130));
}
