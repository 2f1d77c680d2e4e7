//! The smallest end-to-end check: a handler answers over real TCP.

mod common;

use common::handlers::Hello;
use common::{serve, Client};

#[test]
fn hello_over_keep_alive() {
    let server = serve(|_| Hello);
    let mut c = Client::connect(server.addr());
    for _ in 0..3 {
        c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        let res = c.response();
        assert_eq!(res.status, 200);
        assert_eq!(res.body_str(), "Hello, World!");
        assert_eq!(res.header("content-length"), Some("13"));
        assert!(res.header("date").is_some());
        assert!(!res.closes());
    }
}

/// Limits far beyond what a loop can track are clamped, not a panic when
/// the loop allocates its tables.
#[test]
fn huge_limits_are_clamped() {
    let server = common::serve_with(|s| s.max_connections(usize::MAX), |_| Hello);
    let client = nextloop::client::Client::builder()
        .max_requests(usize::MAX)
        .build()
        .expect("client with a huge max_requests");
    let status = nextloop::hypersync::Client::from(client)
        .get(&format!("http://{}/", server.addr()))
        .expect("response")
        .status();
    assert_eq!(status, 200);
}
