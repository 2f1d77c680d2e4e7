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
