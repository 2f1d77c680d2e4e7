#!/usr/bin/env bash
# TLS interop check: real clients against examples/hello_tls.rs, expecting
# zero errors: curl (TLS 1.2 and 1.3, keep-alive, --cacert verification),
# openssl s_client (ALPN, SNI, both versions), Python's ssl + http.client
# (verified, keep-alive), wrk over https (plain and pipelined x16),
# headless Chromium (Debian's `chromium`), nextloop's own client example
# (--cacert), and plain HTTP sent to the TLS port (a 400).
#
#     bash bench/interop_tls.sh
#
# Run by hand (not part of CI): it installs what is missing with apt-get.
# Certificates are made here with openssl: a CA and a leaf for localhost
# and 127.0.0.1. All traffic stays on 127.0.0.1; every load run is bounded.
#
# Environment:
#   CARGO_TARGET_DIR  build directory (default /work/target-interop)
#   WRK_SECS          wrk duration in seconds (default 5)
#   KEEP_LOGS=1       keep the work directory
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/work/target-interop}
BIN=$CARGO_TARGET_DIR/release/examples
WRK_SECS=${WRK_SECS:-5}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/nextloop-interop-tls.XXXXXX")
SERVER_PID=
cleanup() {
    [[ -n "$SERVER_PID" ]] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
    if [[ ${KEEP_LOGS:-0} == 1 ]]; then echo "logs kept in $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
die() { printf 'interop_tls: %s\n' "$*" >&2; exit 1; }

need=()
for tool in curl openssl wrk python3 chromium; do
    command -v "$tool" >/dev/null || need+=("$tool")
done
if (( ${#need[@]} )); then
    apt-get update && apt-get install -y "${need[@]}"
fi

echo "==> certificates"
cd "$WORK"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key \
    -out ca.pem -days 2 -subj "/CN=nextloop interop CA" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout key.pem \
    -out leaf.csr -subj /CN=localhost 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >leaf.ext
openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
    -extfile leaf.ext -out cert.pem 2>/dev/null
# A PKCS#1 RSA key as well, as `openssl genrsa -traditional` writes it.
openssl genrsa -traditional -out rsa.key 2048 2>/dev/null
openssl req -new -key rsa.key -out rsa.csr -subj /CN=localhost 2>/dev/null
openssl x509 -req -in rsa.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
    -extfile leaf.ext -out rsa.pem 2>/dev/null

echo "==> building"
(cd "$ROOT" && cargo build --release --features tls --example hello_tls --example client)

start() {
    "$BIN/hello_tls" 127.0.0.1:0 "$1" "$2" >server.out 2>&1 &
    SERVER_PID=$!
    PORT=
    for _ in $(seq 100); do
        PORT=$(sed -n 's|^Listening on https://127\.0\.0\.1:\([0-9]*\).*|\1|p' server.out)
        [[ -n "$PORT" ]] && return 0
        sleep 0.05
    done
    die "hello_tls did not start: $(cat server.out)"
}

PASS=0 FAIL=0
check() {
    local name=$1; shift
    if "$@" >"check.out" 2>&1; then
        printf 'PASS  %s\n' "$name"; PASS=$((PASS + 1))
    else
        printf 'FAIL  %s\n' "$name"; sed 's/^/      /' check.out | tail -n 15; FAIL=$((FAIL + 1))
    fi
}

hello() { grep -q 'Hello, World!' check.body; }

curl_get() {
    curl -sS --fail --cacert ca.pem --resolve "localhost:$PORT:127.0.0.1" "$@" \
        "https://localhost:$PORT/" -o check.body && hello
}
curl_keep_alive() {
    curl -sS --fail --cacert ca.pem --resolve "localhost:$PORT:127.0.0.1" -v \
        "https://localhost:$PORT/a" "https://localhost:$PORT/b" "https://localhost:$PORT/c" \
        -o /dev/null -o /dev/null -o /dev/null 2>curl.err
    grep -q 'Re-using existing' curl.err || grep -qi 'reusing' curl.err
}
curl_untrusted() {
    # Without --cacert the certificate must be refused (exit 60).
    local rc=0
    curl -sS --resolve "localhost:$PORT:127.0.0.1" "https://localhost:$PORT/" -o /dev/null || rc=$?
    [[ $rc == 60 ]]
}
curl_plain_to_tls_port() {
    local status
    status=$(curl -sS -o check.body -w '%{http_code}' "http://127.0.0.1:$PORT/")
    [[ $status == 400 ]] && grep -q 'https://' check.body
}
s_client() {
    printf 'GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' |
        timeout 10 openssl s_client -connect "127.0.0.1:$PORT" -servername localhost \
            -alpn http/1.1 -CAfile ca.pem -verify_return_error -ign_eof "$@" >check.body 2>&1
    hello && grep -q 'ALPN protocol: http/1.1' check.body \
        && grep -q 'Verify return code: 0 (ok)' check.body
}
python_client() {
    python3 - "$PORT" <<'PY'
import http.client, ssl, sys
ctx = ssl.create_default_context(cafile="ca.pem")
ctx.set_alpn_protocols(["http/1.1"])
conn = http.client.HTTPSConnection("localhost", int(sys.argv[1]), context=ctx, timeout=10)
for i in range(200):
    conn.request("GET", f"/{i}")
    res = conn.getresponse()
    body = res.read()
    assert res.status == 200 and body == b"Hello, World!", (res.status, body)
assert conn.sock.selected_alpn_protocol() == "http/1.1"
print("200 requests on one connection, version", conn.sock.version())
# hello reads no body: past the 64 KiB drain budget it answers and closes.
conn.request("POST", "/post", body=b"x" * 100000, headers={"Content-Type": "text/plain"})
res = conn.getresponse(); res.read()
assert res.status == 200, res.status
PY
}
wrk_run() {
    wrk -t1 -c20 -d"${WRK_SECS}s" "$@" "https://127.0.0.1:$PORT/" >check.body 2>&1 || return 1
    cat check.body
    ! grep -q 'Socket errors' check.body && ! grep -q 'Non-2xx' check.body \
        && grep -q 'requests in' check.body
}
chromium_page() {
    local profile
    profile=$(mktemp -d)
    timeout 60 chromium --headless --no-sandbox --disable-gpu --disable-background-networking \
        --ignore-certificate-errors --user-data-dir="$profile" \
        --dump-dom "https://127.0.0.1:$PORT/" >check.body 2>chromium.err
    rm -rf "$profile"
    hello
}
own_client() {
    "$BIN/client" --cacert ca.pem "https://localhost:$PORT/" "https://127.0.0.1:$PORT/" >check.body && hello
}

start cert.pem key.pem
check "curl TLS 1.3, verified (--cacert)" curl_get --tlsv1.3
check "curl TLS 1.2" curl_get --tlsv1.2 --tls-max 1.2
check "curl keep-alive: 3 URLs, one connection" curl_keep_alive
check "curl without the CA refuses the certificate" curl_untrusted
check "plain HTTP to the TLS port gets 400" curl_plain_to_tls_port
check "openssl s_client TLS 1.3, ALPN, SNI" s_client -tls1_3
check "openssl s_client TLS 1.2" s_client -tls1_2
check "Python ssl + http.client: 200 requests + a 100 kB POST" python_client
check "wrk https keep-alive (${WRK_SECS}s)" wrk_run
check "wrk https pipelined x16 (${WRK_SECS}s)" wrk_run -s "$ROOT/bench/pipeline.lua"
check "wrk https, a handshake per request (${WRK_SECS}s)" wrk_run -H "Connection: close"
check "headless Chromium loads the page" chromium_page
check "nextloop's client --cacert" own_client
kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=

start rsa.pem rsa.key
check "PKCS#1 RSA key: curl verified" curl_get

printf '\n%d passed, %d failed\n' "$PASS" "$FAIL"
(( FAIL == 0 ))
