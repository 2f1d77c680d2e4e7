#!/usr/bin/env bash
# CPU per request over TLS: nextloop's hello_tls against hyper + tokio-rustls
# (bench/peers/hyper-tls-hello), same rustls version, provider (aws-lc-rs)
# and configuration, in three modes:
#
# - plain: keep-alive, one request at a time per connection;
# - pipelined: keep-alive, 16 pipelined requests per round (bench/pipeline.lua);
# - handshake: `Connection: close` on every request, so each request is a
#   new connection with its own TLS handshake (wrk reconnects).
#
# Each server runs pinned to core 0 and wrk to core 1, on 127.0.0.1 only;
# the server's utime+stime (/proc/PID/stat) over a wrk run, divided by the
# requests wrk completed, is its CPU per request. Each server+mode runs REPS
# times, interleaved; the table shows the median. Then resident memory per
# idle keep-alive TLS connection (bench/idle_rss.py --tls) for both, and
# nextloop's heap per idle TLS connection and allocations per request
# (tests/tls_alloc.rs).
#
#     bench/run_tls.sh                       # DURATION=10 REPS=3
#     DURATION=2 REPS=1 IDLE=500 bench/run_tls.sh   # a quick check that it works
#
# Writes the table to bench/last-run-tls.md (OUT=path for another file).
set -euo pipefail

DURATION=${DURATION:-10}
REPS=${REPS:-3}
CONNS=${CONNS:-50}
IDLE=${IDLE:-2000}
NICE=${NICE:-0}
SERVER_CORE=0
LOAD_CORE=1

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
OUT=${OUT:-bench/last-run-tls.md}
command_line="DURATION=$DURATION REPS=$REPS CONNS=$CONNS IDLE=$IDLE NICE=$NICE bench/run_tls.sh"
peers_target=${PEERS_TARGET_DIR:-$root/bench/target}
# nextloop's own build directory (CARGO_TARGET_DIR is honoured).
target_dir=${CARGO_TARGET_DIR:-$root/target}
work=$(mktemp -d /tmp/nextloop-bench-tls.XXXXXX)
server_pid=

cleanup() {
    if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

die() {
    echo "bench/run_tls.sh: $*" >&2
    exit 1
}

# --- tools ------------------------------------------------------------------
if ! command -v wrk >/dev/null 2>&1; then
    echo "== installing wrk"
    apt-get update && apt-get install -y wrk
fi
for tool in taskset getconf awk openssl python3; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is required"
done
(( $(nproc) >= 2 )) || die "needs 2 cores (server on core $SERVER_CORE, wrk on core $LOAD_CORE)"
clk_tck=$(getconf CLK_TCK)
load_at_start=$(cut -d' ' -f1-3 /proc/loadavg)

# --- certificate --------------------------------------------------------------
# ECDSA P-256, as most sites serve; made here, for this run only.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$work/key.pem" -out "$work/cert.pem" -days 2 -subj /CN=localhost \
    -addext subjectAltName=DNS:localhost,IP:127.0.0.1 2>/dev/null \
    || die "openssl could not make a certificate"

# --- build ------------------------------------------------------------------
echo "== building (nextloop hello_tls, hyper-tls-hello)"
cargo build --release --features tls --example hello_tls
CARGO_TARGET_DIR=$peers_target cargo build --release \
    --manifest-path bench/peers/hyper-tls-hello/Cargo.toml
version_of() {
    awk -v n="$1" '$0 == "name = \"" n "\"" { found = 1; next }
                   found && /^version = / { gsub(/"/, "", $3); print $3; exit }' "$2"
}
hyper_version=$(version_of hyper bench/peers/hyper-tls-hello/Cargo.lock)
peer_rustls=$(version_of rustls bench/peers/hyper-tls-hello/Cargo.lock)
our_rustls=$(version_of rustls Cargo.lock)
[[ "$peer_rustls" == "$our_rustls" ]] \
    || die "rustls differs: nextloop $our_rustls, peer $peer_rustls (pin the peer's)"

declare -A bin=(
    [nextloop]=$target_dir/release/examples/hello_tls
    [hyper]=$peers_target/release/hyper-tls-hello
)

# --- allocations and heap per idle connection (nextloop only) -----------------
echo "== allocation test (cargo test --release --features tls --test tls_alloc)"
alloc_log=$work/alloc.log
cargo test --release --features tls --test tls_alloc -- --nocapture --test-threads=1 \
    >"$alloc_log" 2>&1 || { tail -n 30 "$alloc_log" >&2; die "tests/tls_alloc.rs failed"; }
allocs=$(sed -n 's/.*over TLS: keep-alive \([0-9.]*\), pipelined x16 \([0-9.]*\).*/\1 \2/p' "$alloc_log")
read -r allocs_plain allocs_pipelined <<<"$allocs"
idle_bytes=$(sed -n 's/.*heap per idle TLS keep-alive connection: \([0-9]*\) bytes.*/\1/p' "$alloc_log")
idle_heap_kib=$(awk -v b="$idle_bytes" 'BEGIN { printf "%.2f", b / 1024 }')

# --- load -------------------------------------------------------------------
start_server() {
    local name=$1 log=$work/$1.out
    nice -n "$NICE" taskset -c "$SERVER_CORE" "${bin[$name]}" 127.0.0.1:0 \
        "$work/cert.pem" "$work/key.pem" >"$log" 2>&1 &
    server_pid=$!
    port=
    for _ in $(seq 100); do
        port=$(sed -n 's|^Listening on https://127\.0\.0\.1:\([0-9]*\).*|\1|p' "$log")
        [[ -n "$port" ]] && break
        kill -0 "$server_pid" 2>/dev/null || die "$name exited: $(cat "$log")"
        sleep 0.05
    done
    [[ -n "$port" ]] || die "$name did not print its address"
    for _ in $(seq 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            return 0
        fi
        sleep 0.05
    done
    die "$name does not accept on 127.0.0.1:$port"
}

stop_server() {
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=
}

cpu_ticks() {
    local stat
    stat=$(<"/proc/$1/stat")
    stat=${stat##*) }
    awk '{ print $12 + $13 }' <<<"$stat"
}

# One run: prints "requests req/s cpu_us_per_request server_cpu% wrk_cpu%".
measure() {
    local name=$1 mode=$2 out=$work/wrk.out timing=$work/wrk.time
    local extra=()
    [[ $mode == pipelined ]] && extra=(-s bench/pipeline.lua)
    [[ $mode == handshake ]] && extra=(-H "Connection: close")
    start_server "$name"
    local before after
    before=$(cpu_ticks "$server_pid")
    local TIMEFORMAT='%U %S %R'
    { time nice -n "$NICE" taskset -c "$LOAD_CORE" wrk -t1 -c"$CONNS" -d"${DURATION}s" "${extra[@]}" \
        "https://127.0.0.1:$port/" >"$out" 2>&1; } 2>"$timing" \
        || die "wrk failed against $name ($mode): $(cat "$out")"
    after=$(cpu_ticks "$server_pid")
    stop_server
    # A handshake per request: wrk counts nothing as an error when the
    # server closes after its answer, as asked.
    if grep -q 'Socket errors' "$out"; then
        die "wrk reported socket errors against $name ($mode):
$(cat "$out")"
    fi
    if grep -q 'Non-2xx' "$out"; then
        die "wrk reported non-2xx responses from $name ($mode):
$(cat "$out")"
    fi
    local requests rps
    requests=$(awk '$2 == "requests" && $3 == "in" { print $1; exit }' "$out")
    rps=$(awk '$1 == "Requests/sec:" { print $2; exit }' "$out")
    [[ -n "$requests" && -n "$rps" ]] || die "cannot parse wrk's output:
$(cat "$out")"
    (( requests > 0 )) || die "wrk completed no requests against $name ($mode)"
    read -r wrk_user wrk_sys wrk_real <"$timing"
    awk -v d="$((after - before))" -v hz="$clk_tck" -v n="$requests" -v rps="$rps" \
        -v s="$DURATION" -v wu="$wrk_user" -v ws="$wrk_sys" -v wr="$wrk_real" 'BEGIN {
            printf "%d %.0f %.3f %.0f %.0f\n", n, rps, d / hz * 1e6 / n,
                100 * d / hz / s, 100 * (wu + ws) / wr
        }'
}

servers=(nextloop hyper)
modes=(plain pipelined handshake)
for rep in $(seq "$REPS"); do
    for mode in "${modes[@]}"; do
        for name in "${servers[@]}"; do
            echo "== run $rep/$REPS: $name $mode (${DURATION}s)"
            measure "$name" "$mode" >>"$work/runs.$name.$mode"
            echo "   requests, req/s, CPU µs/request, server CPU %, wrk CPU %: $(tail -n 1 "$work/runs.$name.$mode")"
        done
    done
done

# --- resident memory per idle TLS connection (both) ---------------------------
declare -A rss_kib
for name in "${servers[@]}"; do
    echo "== idle memory: $name ($IDLE TLS connections)"
    start_server "$name"
    rss_kib[$name]=$(python3 bench/idle_rss.py "$server_pid" "$port" "$IDLE" --tls) \
        || die "bench/idle_rss.py failed against $name"
    stop_server
    echo "   KiB of resident memory per idle TLS connection: ${rss_kib[$name]}"
done

declare -A rps cpu spread server_pct wrk_pct
for mode in "${modes[@]}"; do
    for name in "${servers[@]}"; do
        runs=$work/runs.$name.$mode
        read -r _ rps[$name.$mode] cpu[$name.$mode] server_pct[$name.$mode] wrk_pct[$name.$mode] \
            < <(sort -g -k3,3 "$runs" | awk -v m="$(( (REPS + 1) / 2 ))" 'NR == m')
        spread[$name.$mode]=$(sort -g -k3,3 "$runs" | awk '
            NR == 1 { lo = $3 } { hi = $3; v[NR] = $3 }
            END { printf "%.0f", 100 * (hi - lo) / v[int((NR + 1) / 2)] }')
    done
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

table=$work/table.md
{
    echo "| server | mode | req/s | CPU µs/request | spread | ratio to hyper+rustls | server CPU | wrk CPU | RSS KiB per idle TLS connection |"
    echo "|---|---|--:|--:|--:|--:|--:|--:|--:|"
    for mode in "${modes[@]}"; do
        for name in "${servers[@]}"; do
            k=$name.$mode
            label="nextloop (rustls $our_rustls)"
            [[ $name == hyper ]] && label="hyper $hyper_version + tokio-rustls (rustls $peer_rustls)"
            echo "| $label | $mode | ${rps[$k]} | ${cpu[$k]} | ±${spread[$k]}% | $(ratio "${cpu[$k]}" "${cpu[hyper.$mode]}") | ${server_pct[$k]}% | ${wrk_pct[$k]}% | ${rss_kib[$name]} |"
        done
    done
    echo
    echo "nextloop over TLS: allocations per request $allocs_plain keep-alive, $allocs_pipelined pipelined x16 (rustls's: one per record it decrypts); heap per idle TLS connection $idle_heap_kib KiB (tests/tls_alloc.rs)."
} >"$table"

{
    echo "## Run of $(date -u +%Y-%m-%dT%H:%MZ): \`$command_line\`"
    echo
    echo "Load average at start: $load_at_start. $(nproc) cores; server on core $SERVER_CORE, wrk on core $LOAD_CORE; $CONNS connections."
    echo
    cat "$table"
} | tee "$OUT"
