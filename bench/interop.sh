#!/usr/bin/env bash
# Interop check: real HTTP clients (curl, Python http.client, ab, wrk)
# against the hello, echo and control examples, expecting zero errors.
#
#     bash bench/interop.sh
#
# Builds the examples in release mode, starts each on 127.0.0.1 (port 0,
# address read from its "Listening on" line), runs every check and prints a
# PASS/FAIL table. Exits non-zero if any check fails. All traffic stays on
# 127.0.0.1; every load run is bounded in count and time.
#
# The server is pinned to CPU 0 and the clients to CPU 1 (taskset), as
# this is meant for a 2-core machine.
#
# Environment:
#   CARGO_TARGET_DIR  build directory (default /work/target-interop)
#   KEEP_LOGS=1       keep the work directory with every tool's output
#   WRK_SECS          wrk duration in seconds (default 5)
set -euo pipefail
shopt -s inherit_errexit

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/work/target-interop}
BIN=$CARGO_TARGET_DIR/release/examples
WRK_SECS=${WRK_SECS:-5}
SERVER_CPU=0
CLIENT_CPU=1
WORK=$(mktemp -d "${TMPDIR:-/tmp}/nextloop-interop.XXXXXX")
LOGS=$WORK/logs
mkdir -p "$LOGS"

SERVER_PIDS=()
# Set by start_server.
ADDR_hello="" ADDR_echo="" ADDR_control=""
# shellcheck disable=SC2034 # read indirectly in servers_alive
PID_hello="" PID_echo="" PID_control=""
cleanup() {
    local pid
    for pid in "${SERVER_PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${SERVER_PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    if [[ ${KEEP_LOGS:-0} == 1 ]]; then
        echo "logs kept in $WORK"
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT

log() { printf '==> %s\n' "$*"; }
die() { printf 'interop: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- tools

install_tools() {
    local need=()
    command -v curl >/dev/null || need+=(curl)
    command -v ab >/dev/null || need+=(apache2-utils)
    command -v wrk >/dev/null || need+=(wrk)
    command -v taskset >/dev/null || need+=(util-linux)
    command -v cmp >/dev/null || need+=(diffutils)
    command -v timeout >/dev/null || need+=(coreutils)
    if ((${#need[@]})); then
        local sudo=()
        [[ $(id -u) == 0 ]] || sudo=(sudo)
        log "installing ${need[*]}"
        "${sudo[@]}" apt-get update
        DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y "${need[@]}"
    fi
    command -v python3 >/dev/null || die "python3 is required"
}

# -------------------------------------------------------------- servers

# start NAME [ARGS...]: starts example NAME on 127.0.0.1:0 pinned to the
# server CPU, waits for its address and for it to accept; sets ADDR_<NAME>.
start_server() {
    local name=$1
    shift
    local out=$LOGS/server-$name.log
    : >"$out" # exists before the background job gets to open it
    taskset -c "$SERVER_CPU" "$BIN/$name" 127.0.0.1:0 "$@" >"$out" 2>&1 &
    local pid=$!
    SERVER_PIDS+=("$pid")
    printf -v "PID_$name" '%s' "$pid"
    local addr="" i
    for ((i = 0; i < 100; i++)); do
        addr=$(sed -n 's#^Listening on http://\(127\.0\.0\.1:[0-9][0-9]*\).*#\1#p' "$out" || true)
        [[ -n $addr ]] && break
        kill -0 "$pid" 2>/dev/null || die "$name exited early: $(cat "$out")"
        sleep 0.1
    done
    [[ -n $addr ]] || die "$name printed no address: $(cat "$out")"
    local port=${addr##*:}
    for ((i = 0; i < 100; i++)); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            printf -v "ADDR_$name" '%s' "$addr"
            log "$name listening on $addr (pid $pid, cpu $SERVER_CPU)"
            return 0
        fi
        sleep 0.1
    done
    die "$name does not accept connections on $addr"
}

# ---------------------------------------------------------------- checks

RESULTS=()   # "NAME|PASS|detail"
FAILED=0

# check NAME FUNCTION: runs FUNCTION in a subshell with errexit active
# (an `if` would disable it), output to $LOGS/NAME.log; records the result.
# A check may write a one-line detail to $LOGS/NAME.detail.
check() {
    local name=$1 fn=$2 rc
    CHECK_LOG=$LOGS/$name.log
    CHECK_DETAIL=$LOGS/$name.detail
    export CHECK_LOG CHECK_DETAIL
    printf -- '--- %-26s ' "$name"
    set +e
    (set -e; "$fn") >"$CHECK_LOG" 2>&1
    rc=$?
    set -e
    local detail=""
    [[ -f $CHECK_DETAIL ]] && detail=$(head -n1 "$CHECK_DETAIL")
    if ((rc == 0)); then
        echo "PASS ${detail}"
        RESULTS+=("$name|PASS|$detail")
    else
        echo "FAIL (exit $rc) ${detail}"
        RESULTS+=("$name|FAIL|$detail")
        FAILED=$((FAILED + 1))
        echo "    last lines of $name output:"
        tail -n 25 "$CHECK_LOG" | sed 's/^/    | /'
    fi
}

# fail MESSAGE: ends the current check with MESSAGE as its detail.
fail() {
    echo "FAIL: $*"
    echo "$*" >"$CHECK_DETAIL"
    exit 1
}
detail() { echo "$*" >"$CHECK_DETAIL"; }

# Clients run on the client CPU, bounded in time.
client() { taskset -c "$CLIENT_CPU" timeout 120 "$@"; }
# curl with the common options: bounded time, errors shown.
ccurl() { client curl -sS --max-time 30 "$@"; }

# status line of the last response in a curl -D dump
last_status() { grep -a '^HTTP/' "$1" | tail -n1 | tr -d '\r'; }

# header VALUE of NAME in the last response of a -D dump (case-insensitive)
header_of() {
    tr -d '\r' <"$1" | awk -v n="$(tr '[:upper:]' '[:lower:]' <<<"$2")" '
        /^HTTP\// { v = "" }
        { split($0, a, ":"); if (tolower(a[1]) == n) { sub(/^[^:]*:[ \t]*/, ""); v = $0 } }
        END { print v }'
}

curl_get_hello() {
    ccurl -D "$WORK/h.hdr" -o "$WORK/h.body" "http://$ADDR_hello/"
    cat "$WORK/h.hdr"
    local st; st=$(last_status "$WORK/h.hdr")
    [[ $st == "HTTP/1.1 200 OK" ]] || fail "status '$st'"
    [[ $(cat "$WORK/h.body") == "Hello, World!" ]] || fail "body '$(head -c 100 "$WORK/h.body")'"
    detail "200, Hello, World!"
}

curl_head_hello() {
    # HEAD, then a GET on the same connection: a body wrongly sent after
    # the HEAD response would break the GET.
    ccurl -v -I "http://$ADDR_hello/" -o "$WORK/head.out" \
        --next -sS --max-time 30 -o "$WORK/head-get.body" "http://$ADDR_hello/" 2>"$WORK/head.err"
    cat "$WORK/head.out" "$WORK/head.err"
    [[ $(last_status "$WORK/head.out") == "HTTP/1.1 200 OK" ]] || fail "HEAD status"
    local cl; cl=$(header_of "$WORK/head.out" Content-Length)
    [[ $cl == 13 ]] || fail "HEAD Content-Length '$cl'"
    # Nothing after the empty line that ends the head.
    local after; after=$(tr -d '\r' <"$WORK/head.out" | awk 'f { print } /^$/ { f = 1 }')
    [[ -z $after ]] || fail "HEAD has a body: '$after'"
    [[ $(cat "$WORK/head-get.body") == "Hello, World!" ]] || fail "GET after HEAD body '$(head -c 100 "$WORK/head-get.body")'"
    grep -qiE 're-?using existing connection' "$WORK/head.err" || fail "GET after HEAD did not reuse the connection"
    detail "Content-Length 13, no body, conn reused after"
}

curl_http10() {
    ccurl -0 -D "$WORK/h10.hdr" -o "$WORK/h10.body" "http://$ADDR_hello/"
    cat "$WORK/h10.hdr"
    local st; st=$(last_status "$WORK/h10.hdr")
    # RFC 9110 §6.2 lets the server answer 1.0 or 1.1 here.
    [[ $st == "HTTP/1.0 200 OK" || $st == "HTTP/1.1 200 OK" ]] || fail "status '$st'"
    [[ $(cat "$WORK/h10.body") == "Hello, World!" ]] || fail "body '$(head -c 100 "$WORK/h10.body")'"
    local conn; conn=$(header_of "$WORK/h10.hdr" Connection)
    [[ ${conn,,} == close ]] || fail "Connection '$conn' (HTTP/1.0 without keep-alive)"
    # HTTP/1.0 with an explicit keep-alive: the server should keep it.
    ccurl -0 -v -H 'Connection: keep-alive' -o "$WORK/h10ka1" "http://$ADDR_hello/a" \
        -o "$WORK/h10ka2" "http://$ADDR_hello/b" 2>"$WORK/h10ka.err"
    cat "$WORK/h10ka.err"
    [[ $(cat "$WORK/h10ka1" "$WORK/h10ka2") == "Hello, World!Hello, World!" ]] || fail "1.0 keep-alive bodies"
    grep -qiE 're-?using existing connection' "$WORK/h10ka.err" || fail "HTTP/1.0 keep-alive not reused"
    detail "${st%% *} 200, Connection: close; 1.0 keep-alive reused"
}

curl_reuse() {
    local n=5 args=() i
    for ((i = 0; i < n; i++)); do
        args+=(-o "$WORK/reuse.$i" "http://$ADDR_hello/r$i")
    done
    ccurl -v "${args[@]}" 2>"$WORK/reuse.err"
    cat "$WORK/reuse.err"
    for ((i = 0; i < n; i++)); do
        [[ $(cat "$WORK/reuse.$i") == "Hello, World!" ]] || fail "body $i"
    done
    local reused connects
    reused=$(grep -ciE 're-?using existing connection' "$WORK/reuse.err" || true)
    connects=$(grep -ciE '^\* +Connected to' "$WORK/reuse.err" || true)
    ((reused == n - 1)) || fail "re-used $reused of $((n - 1)) times"
    ((connects == 1)) || fail "$connects TCP connects for $n URLs"
    detail "$n URLs, 1 connect, $reused re-uses"
}

curl_post_1m() {
    head -c 1048576 /dev/urandom >"$WORK/r1m"
    ccurl -D "$WORK/p1m.hdr" --data-binary @"$WORK/r1m" -H 'Content-Type: application/octet-stream' \
        -o "$WORK/p1m.out" "http://$ADDR_echo/"
    cat "$WORK/p1m.hdr"
    [[ $(last_status "$WORK/p1m.hdr") == "HTTP/1.1 200 OK" ]] || fail "status"
    cmp "$WORK/r1m" "$WORK/p1m.out" || fail "echoed bytes differ ($(stat -c %s "$WORK/p1m.out") bytes back)"
    detail "1 MiB echoed byte-for-byte"
}

curl_post_chunked() {
    head -c 300000 /dev/urandom >"$WORK/rch"
    ccurl -v -H 'Transfer-Encoding: chunked' --data-binary @"$WORK/rch" \
        -o "$WORK/pch.out" "http://$ADDR_echo/" 2>"$WORK/pch.err"
    grep -a '^[<>]' "$WORK/pch.err"
    grep -qi '^> Transfer-Encoding: chunked' "$WORK/pch.err" || fail "curl did not send chunked"
    cmp "$WORK/rch" "$WORK/pch.out" || fail "echoed bytes differ ($(stat -c %s "$WORK/pch.out") bytes back)"
    # and an empty chunked body
    ccurl -H 'Transfer-Encoding: chunked' --data-binary '' -o "$WORK/pch0.out" \
        -w '%{http_code}\n' "http://$ADDR_echo/" >"$WORK/pch0.code"
    [[ $(cat "$WORK/pch0.code") == 200 && ! -s "$WORK/pch0.out" ]] || fail "empty chunked body"
    detail "300000 B + empty, chunked, echoed"
}

curl_expect() {
    # curl adds Expect: 100-continue itself above its threshold (1 KiB in
    # older curl, > 1 MiB since 7.7x); 1 MiB + 4 KiB triggers it in both.
    head -c $((1048576 + 4096)) /dev/urandom >"$WORK/rexp"
    ccurl -v --expect100-timeout 10 --data-binary @"$WORK/rexp" -o "$WORK/exp.out" \
        "http://$ADDR_echo/" 2>"$WORK/exp.err"
    grep -a '^[<>]' "$WORK/exp.err"
    grep -qi '^> Expect: 100-continue' "$WORK/exp.err" || fail "curl sent no Expect header"
    grep -q '^< HTTP/1.1 100 Continue' "$WORK/exp.err" || fail "no 100 Continue (auto Expect)"
    cmp "$WORK/rexp" "$WORK/exp.out" || fail "echoed bytes differ (auto Expect)"
    # Explicit header on a small body.
    head -c 2048 /dev/urandom >"$WORK/rexp2"
    ccurl -v --expect100-timeout 10 -H 'Expect: 100-continue' --data-binary @"$WORK/rexp2" \
        -o "$WORK/exp2.out" "http://$ADDR_echo/" 2>"$WORK/exp2.err"
    grep -a '^[<>]' "$WORK/exp2.err"
    grep -q '^< HTTP/1.1 100 Continue' "$WORK/exp2.err" || fail "no 100 Continue (explicit Expect)"
    cmp "$WORK/rexp2" "$WORK/exp2.out" || fail "echoed bytes differ (explicit Expect)"
    detail "100 Continue seen (auto and explicit), bodies equal"
}

curl_control() {
    ccurl -D "$WORK/ctl.hdr" -o "$WORK/ctl.body" -w '%{time_total}\n' "http://$ADDR_control/" >"$WORK/ctl.time"
    cat "$WORK/ctl.hdr" "$WORK/ctl.body" "$WORK/ctl.time"
    [[ $(last_status "$WORK/ctl.hdr") == "HTTP/1.1 200 OK" ]] || fail "status '$(last_status "$WORK/ctl.hdr")'"
    [[ $(cat "$WORK/ctl.body") == "woken after 100 ms" ]] || fail "body '$(head -c 100 "$WORK/ctl.body")'"
    detail "200 after $(cat "$WORK/ctl.time") s"
}

py() { client python3 "$ROOT/bench/interop_client.py" "$1" "$ADDR_hello" "$ADDR_echo"; }
py_keepalive() { py keepalive; detail "100 GETs, one connection"; }
py_post_length() { py post-length; detail "sizes 0..200 KiB, one connection"; }
py_post_chunked() { py post-chunked; detail "sizes 0..200 KiB, one connection"; }
py_head() { py head; detail "Content-Length 13, empty body"; }

# ab_field FILE LABEL: the value after "LABEL:" in ab's report (first word)
ab_field() { sed -n "s/^$2:[[:space:]]*\([^[:space:]]*\).*/\1/p" "$1" | head -n1; }

ab_keepalive() {
    local out=$WORK/ab-k.txt
    client ab -k -n 20000 -c 50 -s 10 "http://$ADDR_hello/" >"$out" 2>&1 || { cat "$out"; fail "ab exited non-zero"; }
    cat "$out"
    local complete failed non2xx ka rps
    complete=$(ab_field "$out" "Complete requests")
    failed=$(ab_field "$out" "Failed requests")
    non2xx=$(ab_field "$out" "Non-2xx responses")
    ka=$(ab_field "$out" "Keep-Alive requests")
    rps=$(ab_field "$out" "Requests per second")
    echo "$rps" >"$WORK/rps.ab-k"
    [[ $complete == 20000 ]] || fail "complete $complete"
    [[ $failed == 0 ]] || fail "failed requests $failed"
    [[ -z $non2xx || $non2xx == 0 ]] || fail "non-2xx $non2xx"
    [[ $ka == "$complete" ]] || fail "keep-alive $ka of $complete"
    detail "$rps req/s, 0 failed, $ka keep-alive"
}

ab_close() {
    local out=$WORK/ab.txt
    client ab -n 5000 -c 20 -s 10 "http://$ADDR_hello/" >"$out" 2>&1 || { cat "$out"; fail "ab exited non-zero"; }
    cat "$out"
    local complete failed non2xx rps
    complete=$(ab_field "$out" "Complete requests")
    failed=$(ab_field "$out" "Failed requests")
    non2xx=$(ab_field "$out" "Non-2xx responses")
    rps=$(ab_field "$out" "Requests per second")
    echo "$rps" >"$WORK/rps.ab"
    [[ $complete == 5000 ]] || fail "complete $complete"
    [[ $failed == 0 ]] || fail "failed requests $failed"
    [[ -z $non2xx || $non2xx == 0 ]] || fail "non-2xx $non2xx"
    detail "$rps req/s, 0 failed (HTTP/1.0, close)"
}

wrk_check() { # wrk_check NAME URL [wrk args...]
    local name=$1 url=$2
    shift 2
    local out=$WORK/wrk-$name.txt
    client wrk -t1 -c50 -d"${WRK_SECS}s" --timeout 5s "$@" "$url" >"$out" 2>&1 || { cat "$out"; fail "wrk exited non-zero"; }
    cat "$out"
    local rps; rps=$(sed -n 's/^Requests\/sec:[[:space:]]*\([0-9.]*\).*/\1/p' "$out")
    echo "$rps" >"$WORK/rps.wrk-$name"
    local total; total=$(sed -n 's/^[[:space:]]*\([0-9]*\) requests in .*/\1/p' "$out")
    ! grep -q 'Socket errors' "$out" || fail "$(grep 'Socket errors' "$out" | sed 's/^ *//')"
    ! grep -q 'Non-2xx' "$out" || fail "$(grep 'Non-2xx' "$out" | sed 's/^ *//')"
    [[ -n $rps && ${total:-0} -gt 0 ]] || fail "no requests completed"
}

wrk_hello() {
    wrk_check hello "http://$ADDR_hello/" --latency
    local rps; rps=$(cat "$WORK/rps.wrk-hello")
    detail "$rps req/s, no socket errors, no non-2xx"
}

wrk_echo_post() {
    local lua=$WORK/post.lua
    cat >"$lua" <<'EOF'
-- POST a small body and count responses that do not echo it back.
wrk.method = "POST"
wrk.body = string.rep("0123456789abcdef", 16) -- 256 bytes
wrk.headers["Content-Type"] = "application/octet-stream"

local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) bad = 0; seen = 0 end
function response(status, headers, body)
  seen = seen + 1
  if status ~= 200 or body ~= wrk.body then bad = bad + 1 end
end
function done(summary, latency, requests)
  local b, s = 0, 0
  for _, t in ipairs(threads) do b = b + t:get("bad"); s = s + t:get("seen") end
  io.write(string.format("echo responses checked: %d, mismatched: %d\n", s, b))
end
EOF
    wrk_check echo "http://$ADDR_echo/" -s "$lua"
    local rps; rps=$(cat "$WORK/rps.wrk-echo")
    local out=$WORK/wrk-echo.txt
    local seen bad
    seen=$(sed -n 's/^echo responses checked: \([0-9]*\), mismatched: \([0-9]*\)$/\1/p' "$out")
    bad=$(sed -n 's/^echo responses checked: \([0-9]*\), mismatched: \([0-9]*\)$/\2/p' "$out")
    [[ -n $seen && $seen -gt 0 ]] || fail "no echo responses checked"
    [[ $bad == 0 ]] || fail "$bad of $seen echoed bodies differ"
    detail "$rps req/s, $seen bodies checked, 0 mismatched"
}

wrk_control() {
    # Every request parks on Next::wait() and is woken by another thread
    # through Control::ready after 100 ms: 50 connections in flight.
    wrk_check control "http://$ADDR_control/" -d2s
    local rps; rps=$(cat "$WORK/rps.wrk-control")
    detail "$rps req/s (100 ms wake-ups), no socket errors, no non-2xx"
}

servers_alive() {
    local name var pid
    for name in hello echo control; do
        var=PID_$name
        pid=${!var}
        kill -0 "$pid" 2>/dev/null || fail "$name (pid $pid) died: $(tail -n5 "$LOGS/server-$name.log")"
        if grep -qiE 'panick|error' "$LOGS/server-$name.log"; then
            cat "$LOGS/server-$name.log"
            fail "$name logged errors"
        fi
    done
    detail "hello, echo, control still running, no panics"
}

# ------------------------------------------------------------------ main

install_tools
(($(nproc) >= 2)) || { SERVER_CPU=0; CLIENT_CPU=0; log "one CPU only: server and clients share it"; }

log "building examples (release) into $CARGO_TARGET_DIR"
(cd "$ROOT" && cargo build --release --examples)

start_server hello
start_server echo
start_server control

LOAD_AT_START=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo "?")
log "running checks (server on cpu $SERVER_CPU, clients on cpu $CLIENT_CPU; load average $LOAD_AT_START)"
check curl-get-hello      curl_get_hello
check curl-head-hello     curl_head_hello
check curl-http10         curl_http10
check curl-reuse          curl_reuse
check curl-post-1mib      curl_post_1m
check curl-post-chunked   curl_post_chunked
check curl-expect-100     curl_expect
check curl-get-control    curl_control
check py-keepalive-100    py_keepalive
check py-post-length      py_post_length
check py-post-chunked     py_post_chunked
check py-head             py_head
check ab-keepalive        ab_keepalive
check ab-close            ab_close
check wrk-hello           wrk_hello
check wrk-echo-post       wrk_echo_post
check wrk-control         wrk_control
check servers-alive       servers_alive

echo
echo "Summary ($(nproc) CPUs; server on cpu $SERVER_CPU, clients on cpu $CLIENT_CPU; load average at start $LOAD_AT_START)"
printf '%-22s %-5s %s\n' CHECK RESULT DETAIL
printf '%-22s %-5s %s\n' ---------------------- ------ ------
for r in "${RESULTS[@]}"; do
    IFS='|' read -r name res det <<<"$r"
    printf '%-22s %-6s %s\n' "$name" "$res" "$det"
done
echo
printf 'throughput: ab -k %s req/s, ab (close) %s req/s, wrk hello %s req/s, wrk echo POST %s req/s\n' \
    "$(cat "$WORK/rps.ab-k" 2>/dev/null || echo -)" "$(cat "$WORK/rps.ab" 2>/dev/null || echo -)" \
    "$(cat "$WORK/rps.wrk-hello" 2>/dev/null || echo -)" "$(cat "$WORK/rps.wrk-echo" 2>/dev/null || echo -)"
if ((FAILED)); then
    echo "$FAILED of ${#RESULTS[@]} checks FAILED"
    exit 1
fi
echo "all ${#RESULTS[@]} checks passed"
