//! The server on a Unix stream socket (`Server::bind_unix`,
//! `Server::from_unix_listener`): the same HTTP/1 over a socket file in a
//! temp dir, the socket file's handling, and what a handler is told of
//! the peer.
#![cfg(unix)]

mod common;

use std::io::{BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use common::{read_response, Response, BOUND, IO_TIMEOUT};
use nextloop::server::{Handler, Listening, Request, Server};
use nextloop::{Control, Next};

/// A fresh socket path in a fresh directory under the temp dir.
fn socket_path() -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "nextloop-unix-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir.join("s.sock")
}

/// What the handler saw of each request: path, `is_unix`, both addresses.
type Seen = Arc<Mutex<Vec<(String, bool, String, String)>>>;

/// Answers with the path as the body; `/wait...` parks until its
/// `Control` (sent on `controls`) says `Next::write()`.
struct Probe {
    path: String,
    control: Control,
    controls: mpsc::Sender<Control>,
    seen: Seen,
}

impl Handler for Probe {
    fn on_request(&mut self, req: Request<'_>) -> Next {
        self.path = req.path().to_string();
        self.seen.lock().unwrap().push((
            self.path.clone(),
            req.is_unix(),
            req.remote_addr().to_string(),
            req.local_addr().to_string(),
        ));
        if self.path.starts_with("/wait") {
            let _ = self.controls.send(self.control.clone());
            Next::wait()
        } else {
            Next::write()
        }
    }

    fn on_response(&mut self, res: &mut nextloop::server::Response<'_>) -> Next {
        res.body(self.path.as_bytes());
        Next::end()
    }
}

struct Served {
    listening: Listening,
    path: PathBuf,
    controls: mpsc::Receiver<Control>,
    seen: Seen,
}

fn serve(configure: impl FnOnce(Server) -> Server) -> Served {
    let path = socket_path();
    let server = configure(Server::bind_unix(&path).expect("bind_unix"));
    start(server, path)
}

fn start(server: Server, path: PathBuf) -> Served {
    let (tx, controls) = mpsc::channel();
    let seen = Seen::default();
    let s = seen.clone();
    let listening = server
        .handle(move |control| Probe {
            path: String::new(),
            control,
            controls: tx.clone(),
            seen: s.clone(),
        })
        .expect("start");
    Served {
        listening,
        path,
        controls,
        seen,
    }
}

struct Client {
    r: BufReader<UnixStream>,
}

impl Client {
    fn connect(path: &PathBuf) -> Client {
        let s = UnixStream::connect(path).expect("connect");
        s.set_read_timeout(Some(BOUND)).unwrap();
        s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        Client {
            r: BufReader::new(s),
        }
    }

    fn send(&mut self, bytes: impl AsRef<[u8]>) {
        self.r.get_mut().write_all(bytes.as_ref()).expect("send");
    }

    fn response(&mut self) -> Response {
        read_response(&mut self.r, false).expect("response")
    }

    /// Reads until the server closes; what came before the end.
    fn rest(&mut self) -> Vec<u8> {
        let mut rest = Vec::new();
        self.r.read_to_end(&mut rest).expect("read to close");
        rest
    }
}

fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n")
}

#[test]
fn request_and_response() {
    let s = serve(|s| s);
    let mut c = Client::connect(&s.path);
    c.send(get("/hello"));
    let res = c.response();
    assert_eq!(res.status, 200);
    assert_eq!(res.body_str(), "/hello");
    assert!(!res.closes());
}

#[test]
fn keep_alive_and_pipelining_answer_in_order() {
    let s = serve(|s| s);
    let mut c = Client::connect(&s.path);
    c.send(get("/one"));
    assert_eq!(c.response().body_str(), "/one");
    // Three at once, then one more on the same connection.
    c.send(format!("{}{}{}", get("/a"), get("/b"), get("/c")));
    for want in ["/a", "/b", "/c"] {
        let res = c.response();
        assert_eq!(res.status, 200);
        assert_eq!(res.body_str(), want);
    }
    c.send(get("/last"));
    assert_eq!(c.response().body_str(), "/last");
}

#[test]
fn a_bad_request_gets_400_and_close_and_costs_only_its_connection() {
    let s = serve(|s| s);
    let mut good = Client::connect(&s.path);
    good.send(get("/before"));
    assert_eq!(good.response().body_str(), "/before");

    let mut bad = Client::connect(&s.path);
    bad.send("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n");
    let res = bad.response();
    assert_eq!(res.status, 400);
    assert!(res.closes());
    assert_eq!(bad.rest(), b"");

    good.send(get("/after"));
    assert_eq!(good.response().body_str(), "/after");
}

#[test]
fn limits_hold_as_over_tcp() {
    let s = serve(|s| s.max_head_size(1024));
    let mut c = Client::connect(&s.path);
    c.send(format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(2000)
    ));
    let res = c.response();
    assert_eq!(res.status, 431);
    assert!(res.closes());
}

#[test]
fn the_peer_is_a_unix_socket_with_no_ip_address() {
    let s = serve(|s| s);
    let mut c = Client::connect(&s.path);
    c.send(get("/who"));
    assert_eq!(c.response().status, 200);
    let seen = s.seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        vec![(
            "/who".to_string(),
            true,
            "0.0.0.0:0".to_string(),
            "0.0.0.0:0".to_string()
        )]
    );
    assert_eq!(s.listening.addr().to_string(), "0.0.0.0:0");
}

#[test]
fn over_tcp_the_peer_is_not_a_unix_socket() {
    let server = Server::bind("127.0.0.1:0").expect("bind");
    let addr = server.local_addr().unwrap();
    let s = start(server, PathBuf::new());
    let mut c = common::Client::connect(addr);
    c.send(get("/tcp"));
    assert_eq!(c.response().status, 200);
    let seen = s.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert!(!seen[0].1, "a TCP request reported as a Unix one");
    assert_eq!(seen[0].3, addr.to_string());
}

#[test]
fn graceful_shutdown_finishes_the_exchange_in_flight_and_removes_the_file() {
    let s = serve(|s| s.keep_alive_timeout(IO_TIMEOUT * 3));
    let mut idle = Client::connect(&s.path);
    idle.send(get("/idle"));
    assert_eq!(idle.response().body_str(), "/idle");

    let mut busy = Client::connect(&s.path);
    busy.send(get("/wait"));
    let control = s.controls.recv_timeout(BOUND).expect("the handler waits");

    s.listening.shutdown();
    // The idle connection is closed without a byte.
    assert_eq!(idle.rest(), b"");
    // The exchange in flight finishes, with close.
    assert_eq!(control.ready(Next::write()), Ok(()));
    let res = busy.response();
    assert_eq!(res.body_str(), "/wait");
    assert!(res.closes());
    assert_eq!(busy.rest(), b"");
    s.listening.join().expect("join");
    assert!(
        !s.path.exists(),
        "the socket file we created is left behind"
    );
    assert!(UnixStream::connect(&s.path).is_err());
}

#[test]
fn several_workers_share_the_one_socket() {
    let s = serve(|s| s.workers(2));
    for i in 0..8 {
        let mut c = Client::connect(&s.path);
        c.send(get(&format!("/w{i}")));
        assert_eq!(c.response().body_str(), format!("/w{i}"));
    }
    s.listening.shutdown();
    s.listening.join().expect("join");
    assert!(!s.path.exists());
}

#[test]
fn an_existing_file_is_refused_and_left_alone() {
    let path = socket_path();
    // A stale socket: bound, then its listener gone.
    drop(UnixListener::bind(&path).unwrap());
    assert!(path.exists());
    let err = Server::bind_unix(&path).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
    assert!(path.exists(), "a file we did not create was removed");
    // A live server's socket.
    let s = serve(|s| s);
    let err = Server::bind_unix(&s.path).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
    let mut c = Client::connect(&s.path);
    c.send(get("/still"));
    assert_eq!(c.response().body_str(), "/still");
}

#[test]
fn a_builder_dropped_unstarted_removes_its_file() {
    let path = socket_path();
    let server = Server::bind_unix(&path).unwrap();
    assert!(path.exists());
    assert!(server.local_addr().is_err());
    drop(server);
    assert!(!path.exists());
}

#[test]
fn a_file_replaced_meanwhile_is_not_removed() {
    let path = socket_path();
    let server = Server::bind_unix(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    std::fs::write(&path, b"someone else's").unwrap();
    drop(server);
    assert_eq!(std::fs::read(&path).unwrap(), b"someone else's");
}

#[test]
fn a_given_listener_is_served_and_its_file_left_at_shutdown() {
    let path = socket_path();
    let listener = UnixListener::bind(&path).unwrap();
    let s = start(Server::from_unix_listener(listener).unwrap(), path);
    let mut c = Client::connect(&s.path);
    c.send(get("/given"));
    assert_eq!(c.response().body_str(), "/given");
    drop(c);
    s.listening.shutdown();
    s.listening.join().expect("join");
    assert!(s.path.exists(), "the caller's socket file was removed");
}

#[cfg(feature = "__tls")]
#[path = "common/tls_kit.rs"]
mod tls_kit;

#[cfg(feature = "__tls")]
#[test]
fn tls_over_a_unix_socket_is_refused_at_start() {
    let (_ca, leaf) = tls_kit::pki();
    let path = socket_path();
    let server = Server::bind_unix(&path).unwrap().tls(leaf.server_config());
    let err = server.handle(|_| common::handlers::Hello).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert!(
        !path.exists(),
        "the refused server's socket file is left behind"
    );
}

#[test]
fn hypersync_serves_a_unix_socket_too() {
    let path = socket_path();
    let server = nextloop::hypersync::Server::bind_unix(&path)
        .unwrap()
        .threads(1)
        .handle(
            |req: &mut nextloop::hypersync::Request, res: &mut nextloop::hypersync::Response| {
                let body = format!("{} unix={}", req.path(), req.is_unix());
                let _ = res.write_all(body.as_bytes());
            },
        )
        .unwrap();
    let mut c = Client::connect(&path);
    c.send(get("/sync"));
    let res = c.response();
    assert_eq!(res.status, 200);
    assert_eq!(res.body_str(), "/sync unix=true");
    drop(c);
    server.shutdown();
    server.join().expect("join");
    assert!(!path.exists());
}
