//! `Server::workers(n)`: n loops, each with its own SO_REUSEPORT listener.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::{serve_with, Client};
use nextloop::server::{Handler, Request, Response};
use nextloop::{Control, Next};

/// Answers with the name of the loop thread that served it, after a wake-up
/// from another thread through `Control`.
struct WhoAmI {
    control: Control,
}

impl Handler for WhoAmI {
    fn on_request(&mut self, _req: Request<'_>) -> Next {
        let control = self.control.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(5));
            control
                .ready(Next::write())
                .expect("exchange still waiting");
        });
        Next::wait().timeout(Duration::from_secs(10))
    }

    fn on_response(&mut self, res: &mut Response<'_>) -> Next {
        let name = std::thread::current().name().unwrap_or("?").to_string();
        res.body(name.as_bytes());
        Next::end()
    }
}

#[cfg(target_os = "linux")]
#[test]
fn connections_spread_over_worker_loops_and_controls_wake_their_loop() {
    let server = serve_with(|s| s.workers(2), |control| WhoAmI { control });
    let mut clients: Vec<Client> = (0..64).map(|_| Client::connect(server.addr())).collect();
    let mut loops = HashSet::new();
    for round in 0..2 {
        for c in &mut clients {
            c.send("GET / HTTP/1.1\r\nHost: w\r\n\r\n");
        }
        for c in &mut clients {
            let res = c.response();
            assert_eq!(res.status, 200, "round {round}");
            assert!(
                res.body_str().starts_with("nextloop-"),
                "{:?}",
                res.body_str()
            );
            loops.insert(res.body_str().split(' ').next().unwrap().to_string());
        }
    }
    // 64 connections hashed over 2 listeners all landing on one: ~1e-19.
    assert_eq!(loops.len(), 2, "served by {loops:?}");
    server.shutdown();
    for c in &mut clients {
        assert!(c.is_closed(), "idle connection left open after shutdown");
    }
    server.join().unwrap();
}

/// `handle_here`: the first loop is the caller's to run, on its own thread;
/// other workers start by themselves; shutdown reaches both.
#[cfg(target_os = "linux")]
#[test]
fn handle_here_runs_the_first_loop_where_the_caller_says() {
    let (listening, server_loop) = nextloop::server::Server::bind("127.0.0.1:0")
        .unwrap()
        .workers(2)
        .handle_here(|control| WhoAmI { control })
        .unwrap();
    let mine = std::thread::Builder::new()
        .name("caller-thread".into())
        .spawn(move || server_loop.run())
        .unwrap();
    let mut clients: Vec<Client> = (0..64).map(|_| Client::connect(listening.addr())).collect();
    let mut loops = HashSet::new();
    for c in &mut clients {
        c.send("GET / HTTP/1.1\r\nHost: w\r\n\r\n");
    }
    for c in &mut clients {
        let res = c.response();
        assert_eq!(res.status, 200);
        loops.insert(res.body_str().split(' ').next().unwrap().to_string());
    }
    let want: HashSet<String> = ["caller-thread", "nextloop-1"].map(String::from).into();
    assert_eq!(loops, want);
    listening.shutdown();
    for c in &mut clients {
        assert!(c.is_closed(), "idle connection left open after shutdown");
    }
    mine.join().unwrap().unwrap();
    listening.join().unwrap();
}

/// Dropping the `Listening` of `handle_here` ends the caller's loop too.
#[test]
fn dropping_the_listening_ends_a_loop_run_by_the_caller() {
    let (listening, server_loop) = nextloop::server::Server::bind("127.0.0.1:0")
        .unwrap()
        .handle_here(|control| WhoAmI { control })
        .unwrap();
    let addr = listening.addr();
    let mine = std::thread::spawn(move || server_loop.run());
    let mut client = Client::connect(addr);
    client.send("GET / HTTP/1.1\r\nHost: w\r\n\r\n");
    assert_eq!(client.response().status, 200);
    drop(listening);
    assert!(
        client.is_closed(),
        "idle connection left open after the drop"
    );
    mine.join().unwrap().unwrap();
}
