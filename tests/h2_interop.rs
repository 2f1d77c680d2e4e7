//! HTTP/2 interop with real peers, each skipped with a notice when not
//! installed (`.ci/run` installs Debian's `nghttp2-client` and
//! `nghttp2-server`): curl `--http2-prior-knowledge`, `nghttp`, and
//! `h2load` with zero errors against our server; our client against
//! `nghttpd`.

#[path = "common/client_kit.rs"]
mod client_kit;
mod common;

use std::process::Command;

use common::handlers::{Echo, Hello};
use common::serve;

/// Is `tool` on the PATH?
fn have(tool: &str) -> bool {
    let found = Command::new(tool).arg("--version").output().is_ok();
    if !found {
        eprintln!("{tool} not installed: skipped (apt-get install -y nghttp2-client curl)");
    }
    found
}

#[test]
fn curl_with_prior_knowledge_gets_hello_and_an_echo() {
    if !have("curl") {
        return;
    }
    let server = serve(|_| Hello);
    let url = format!("http://{}/", server.addr());
    let out = Command::new("curl")
        .args([
            "-sS",
            "--http2-prior-knowledge",
            "--max-time",
            "10",
            "-w",
            " %{http_version}",
        ])
        .arg(&url)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "Hello, World! 2");

    let server = serve(|_| Echo::new());
    let url = format!("http://{}/", server.addr());
    let body = "x".repeat(100_000);
    let out = Command::new("curl")
        .args([
            "-sS",
            "--http2-prior-knowledge",
            "--max-time",
            "10",
            "--data-binary",
        ])
        .arg(&body)
        .arg(&url)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout.len(), body.len());
}

#[test]
fn nghttp_gets_hello() {
    if !have("nghttp") {
        return;
    }
    let server = serve(|_| Hello);
    let url = format!("http://{}/", server.addr());
    let out = Command::new("nghttp")
        .args(["-n", "-s", "-t", "10"])
        .arg(&url)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains(" 200 "), "{text}");
}

fn h2load(args: &[&str]) {
    let server = serve(|_| Hello);
    let url = format!("http://{}/", server.addr());
    let out = Command::new("h2load")
        .args(args)
        .arg(&url)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    let line = text
        .lines()
        .find(|l| l.starts_with("requests:"))
        .unwrap_or_else(|| panic!("no summary: {text}"));
    let n = args[1];
    assert!(
        line.contains(&format!("{n} succeeded, 0 failed, 0 errored, 0 timeout")),
        "{line}"
    );
}

#[test]
fn h2load_one_stream_per_connection() {
    if have("h2load") {
        h2load(&["-n", "5000", "-c", "64", "-m", "1", "-T", "10"]);
    }
}

#[test]
fn h2load_many_streams_per_connection() {
    if have("h2load") {
        h2load(&["-n", "20000", "-c", "16", "-m", "32", "-T", "10"]);
    }
}

/// nghttpd (nghttp2's server, `nghttp2-server`) serving a directory to
/// nextloop's client over h2c with prior knowledge: several files at once,
/// one past every flow-control window, all byte for byte, on one
/// connection (nghttpd's verbose log numbers its connections).
#[test]
fn the_client_fetches_files_from_nghttpd_over_one_connection() {
    use std::io::Read;
    use std::net::{TcpListener, TcpStream};
    use std::process::Stdio;
    use std::time::{Duration, Instant};

    if Command::new("nghttpd").arg("--version").output().is_err() {
        eprintln!("nghttpd not installed: skipped (apt-get install -y nghttp2-server)");
        return;
    }
    let dir = std::env::temp_dir().join(format!("nextloop-nghttpd-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let files: Vec<(String, Vec<u8>)> = [13usize, 100_000, 1_000_000]
        .iter()
        .enumerate()
        .map(|(i, &n)| {
            let body: Vec<u8> = (0..n).map(|j| (j * 7 + i) as u8).collect();
            (format!("f{i}.bin"), body)
        })
        .collect();
    for (name, body) in &files {
        std::fs::write(dir.join(name), body).unwrap();
    }
    // A free port (nghttpd takes a port, not 0).
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new("nghttpd")
        .args(["--no-tls", "-v", "-a", "127.0.0.1", "-d"])
        .arg(&dir)
        .arg(port.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut log = child.stdout.take().unwrap();
    let child = Kill(child);
    let addr = format!("127.0.0.1:{port}");
    let start = Instant::now();
    while TcpStream::connect(&addr).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "nghttpd did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let client = nextloop::client::Client::builder()
        .http2_prior_knowledge(&format!("http://{addr}"))
        .unwrap()
        .build()
        .unwrap();
    let got: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = files
            .iter()
            .map(|(name, _)| {
                let (client, url) = (&client, format!("http://{addr}/{name}"));
                s.spawn(move || client_kit::get(client, &url))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    drop(client);
    for ((name, body), outcome) in files.iter().zip(got) {
        let (status, got) = outcome.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(status, 200, "{name}");
        assert!(
            got == *body,
            "{name}: {} bytes, not the file's {}",
            got.len(),
            body.len()
        );
    }
    drop(child);
    let mut text = String::new();
    let _ = log.read_to_string(&mut text);
    let _ = std::fs::remove_dir_all(&dir);
    // The connections the requests came on (the start-up probe is one
    // more, without any).
    let mut ids: Vec<&str> = text
        .lines()
        .filter(|l| l.contains(":path: /f"))
        .filter_map(|l| l.strip_prefix("[id=")?.split(']').next())
        .collect();
    assert_eq!(ids.len(), files.len(), "every request in the log:\n{text}");
    ids.dedup();
    assert_eq!(ids.len(), 1, "one connection: {ids:?}");
}
