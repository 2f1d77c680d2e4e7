//! HTTP/2 in the server: every kind of handler over raw frames on real
//! TCP (127.0.0.1), one handler per stream.

mod common;
#[path = "common/h2.rs"]
mod h2;

use common::handlers::{Echo, Hello};
use common::serve;
use h2::*;

#[test]
fn hello_over_h2c() {
    let server = serve(|_| Hello);
    let mut c = Conn::connect(server.addr());
    let res = c.get(1, "/");
    assert_eq!(res.status, 200);
    assert_eq!(res.body_str(), "Hello, World!");
    assert_eq!(res.field("content-type"), Some("text/plain"));
    assert_eq!(res.field("content-length"), Some("13"));
    assert!(res.field("date").is_some());
    let res = c.get(3, "/again");
    assert_eq!(res.body_str(), "Hello, World!");
}

#[test]
fn echo_over_h2c() {
    let server = serve(|_| Echo::new());
    let mut c = Conn::connect(server.addr());
    let block = c.request("POST", "/", &[("content-length", "5")]);
    c.send(&headers(1, &block, END_HEADERS));
    c.send(&data(1, b"hel", false));
    c.send(&data(1, b"lo", true));
    let (outcome, res) = c.outcome(1);
    assert_eq!(outcome, Outcome::Status(200));
    assert_eq!(res.unwrap().body, b"hello");
}
