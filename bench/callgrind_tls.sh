#!/usr/bin/env bash
# Instructions per TLS handshake+request (a new connection with
# `Connection: close` each time) and per keep-alive request over TLS, of
# nextloop's hello_tls and the hyper + tokio-rustls peer, counted by
# callgrind: deterministic where wall-clock runs on a loaded machine are
# not. Python's ssl is the client (TLS 1.3, no session reuse).
#
#     bench/callgrind_tls.sh             # builds both, prints a table
#
# Each server runs under callgrind on 127.0.0.1:0; a warm-up, a dump, then
# N handshakes (or M keep-alive requests), a dump: the second dump's Ir
# over its count.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
N=${N:-200}
M=${M:-4000}
target_dir=${CARGO_TARGET_DIR:-$root/target}
peers_target=${PEERS_TARGET_DIR:-$root/bench/target}
work=$(mktemp -d /tmp/nextloop-callgrind-tls.XXXXXX)
pid=
cleanup() { [[ -n "$pid" ]] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$work/key.pem" -out "$work/cert.pem" -days 2 -subj /CN=localhost \
    -addext subjectAltName=DNS:localhost,IP:127.0.0.1 2>/dev/null
cargo build --release --features tls --example hello_tls >&2
CARGO_TARGET_DIR=$peers_target cargo build --release \
    --manifest-path bench/peers/hyper-tls-hello/Cargo.toml >&2

drive() { # port mode count
    python3 - "$@" <<'PY'
import socket, ssl, sys
port, mode, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
ctx.minimum_version = ssl.TLSVersion.TLSv1_3
def read_hello(s, buf):
    while b"Hello, World!" not in buf:
        chunk = s.recv(65536)
        assert chunk, "closed"
        buf += chunk
    return buf[buf.index(b"Hello, World!") + 13:]
if mode == "handshake":
    for _ in range(n):
        s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=60))
        s.sendall(b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
        read_hello(s, b"")
        s.close()
else:
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=60))
    buf = b""
    for _ in range(n):
        s.sendall(b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n")
        buf = read_hello(s, buf)
    s.close()
PY
}

measure() { # bin mode count
    valgrind --tool=callgrind --callgrind-out-file="$work/cg.%p" "$1" 127.0.0.1:0 \
        "$work/cert.pem" "$work/key.pem" >"$work/out" 2>"$work/err" &
    pid=$!
    local port=
    for _ in $(seq 600); do
        port=$(sed -n 's|^Listening on https://127\.0\.0\.1:\([0-9]*\).*|\1|p' "$work/out")
        [[ -n "$port" ]] && break
        sleep 0.1
    done
    [[ -n "$port" ]] || { cat "$work/err" >&2; exit 1; }
    drive "$port" "$2" 20
    callgrind_control --dump "$pid" >/dev/null 2>&1; sleep 1
    drive "$port" "$2" "$3"
    callgrind_control --dump "$pid" >/dev/null 2>&1; sleep 1
    local f ir
    f=$(ls -t "$work"/cg.* | head -n 1)
    ir=$(awk -v n="$3" '/^summary:/ { printf "%.0f", $2 / n }' "$f")
    kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
    rm -f "$work"/cg.*
    echo "$ir"
}

echo "| server | instructions per handshake + request | instructions per keep-alive request |"
echo "|---|--:|--:|"
for name in nextloop hyper; do
    bin=$target_dir/release/examples/hello_tls
    [[ $name == hyper ]] && bin=$peers_target/release/hyper-tls-hello
    echo "| $name | $(measure "$bin" handshake "$N") | $(measure "$bin" keepalive "$M") |"
done
