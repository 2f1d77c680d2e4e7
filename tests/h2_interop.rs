//! HTTP/2 interop with real clients, each skipped with a notice when not
//! installed (`.ci/run` installs Debian's `nghttp2-client`): curl
//! `--http2-prior-knowledge`, `nghttp`, and `h2load` with zero errors.

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
