#!/usr/bin/env bash
# CPU per request of an HTTP/2 *client* (h2c, prior knowledge): nextloop's vs hyper's.
#
# Clients: bench/peers/nextloop-h2-client (nextloop's client, non-blocking
# Handlers on its one loop thread; each handler submits the next GET when its
# response has ended) and bench/peers/hyper-h2-client (hyper 1.x
# client::conn::http2, i.e. the h2 crate, on a current_thread tokio runtime;
# INFLIGHT tasks each sending GETs one after another). Both send many small
# GETs of http://127.0.0.1:PORT/ over ONE connection with a fixed number in
# flight, read every body to its end and fail on any status but 200.
# The server is nextloop's examples/hello (HTTP/2 with prior knowledge on its
# HTTP/1.1 port; 13-byte body), started afresh for each run.
#
# Modes (requests in the measured window):
#   m64  INFLIGHT=64, N64 requests
#   m1   INFLIGHT=1,  N1 requests
# The server runs pinned to core 0 and the client to core 1, on 127.0.0.1.
#
# CPU figure: each client measures itself. It calls getrusage(RUSAGE_SELF)
# (utime + stime of every thread of the process, in µs) when the W-th
# response has ended and again at the (W + N)-th; W warm-up requests
# (min(N/10, 10000)) come before the window and INFLIGHT more after it, so
# the window is at full concurrency throughout and holds no start-up (the
# runtime, the loop thread, connect, the SETTINGS exchange) nor teardown.
# That difference ÷ N is "CPU µs/request". Cross-check: "whole process" is
# the client's utime + stime over its whole life (bash `time` on the
# process: its own rusage once reaped) ÷ all the requests it sent. An outside
# read of /proc/PID/stat is not used: the process ends by itself, so a read
# "just before exit" would race with it, and its ticks are 10 ms coarse.
# Each client+mode runs REPS times, interleaved (m64 nextloop, m64 hyper,
# m1 nextloop, m1 hyper, then again); the table shows the run with the median
# CPU figure, *spread* is (max - min) / median.
#
# Allocations per request: each client's counting global allocator (a
# per-thread counter: no atomic on the hot path) on the thread that does the
# protocol work (nextloop: its loop thread; hyper: the runtime's), over the
# same window. For nextloop, "in submit" is the part inside Client::request
# (the boxed handler, the parsed URL, the channel to the loop), which a
# handler submitting its successor pays per request.
#
# Syscalls per request (when `perf stat` can count syscall tracepoints):
# each client once more per mode under `perf stat`, counts over a run of N
# minus a run of 1 request (the same setup), ÷ (N - 1).
#
# Correctness: the nextloop client's body for one GET against the server is
# compared byte for byte with curl --http2-prior-knowledge's (when curl is
# installed), and every run's body bytes must be N × that body's length.
#
#     bench/run_h2_client.sh                                 # REPS=3
#     REPS=1 N64=50000 N1=10000 bench/run_h2_client.sh       # a quick check
#
# Environment: REPS (3), N64 (200000), N1 (50000), CAP (seconds one client
# run may take, 60), SYSCALLS (1; 0 skips the perf pass), NICE (0; -10 as
# root on a shared machine), OUT (bench/last-run-h2-client.md). Installs
# nothing; cargo fetches the peers' crates.
set -euo pipefail

if [[ ${1:-} == -h || ${1:-} == --help ]]; then
    sed -n '2,/^set -euo/{/^set -euo/d; s/^# \{0,1\}//; p}' "$0"
    exit 0
fi

REPS=${REPS:-3}
N64=${N64:-200000}
N1=${N1:-50000}
CAP=${CAP:-60}
SYSCALLS=${SYSCALLS:-1}
NICE=${NICE:-0}
SERVER_CORE=0
LOAD_CORE=1

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
OUT=${OUT:-bench/last-run-h2-client.md}
command_line="REPS=$REPS N64=$N64 N1=$N1 CAP=$CAP SYSCALLS=$SYSCALLS NICE=$NICE bench/run_h2_client.sh"
peers_target=${PEERS_TARGET_DIR:-$root/bench/target}
target_dir=${CARGO_TARGET_DIR:-$root/target}
work=$(mktemp -d /tmp/nextloop-bench-h2-client.XXXXXX)
server_pid=

source bench/lib.sh

cleanup() {
    stop_server
    rm -rf "$work"
}
trap cleanup EXIT
# A signal ends the script through its EXIT trap, the server stopped.
trap 'exit 130' INT TERM

die() {
    echo "bench/run_h2_client.sh: $*" >&2
    exit 1
}

# --- tools ------------------------------------------------------------------
for tool in taskset getconf awk timeout cargo; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is required"
done
(( $(nproc) >= 2 )) || die "needs 2 cores (server on core $SERVER_CORE, client on core $LOAD_CORE)"
(( N64 >= 2 && N1 >= 2 )) || die "N64 and N1 must be at least 2"
clk_tck=$(getconf CLK_TCK)
load_at_start=$(cut -d' ' -f1-3 /proc/loadavg)

# --- build ------------------------------------------------------------------
echo "== building (nextloop hello, nextloop-h2-client, hyper-h2-client)"
cargo build --release --example hello
for peer in nextloop-h2-client hyper-h2-client; do
    CARGO_TARGET_DIR=$peers_target cargo build --release \
        --manifest-path "bench/peers/$peer/Cargo.toml"
done
hyper_version=$(lock_version hyper bench/peers/hyper-h2-client/Cargo.lock)
h2_version=$(lock_version h2 bench/peers/hyper-h2-client/Cargo.lock)
tokio_version=$(lock_version tokio bench/peers/hyper-h2-client/Cargo.lock)
nextloop_rev=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
nextloop_dirty=$( { git status --porcelain -- src 2>/dev/null || true; } | wc -l)

clients=(nextloop hyper)
modes=(m64 m1)
declare -A bin=(
    [nextloop]="$peers_target/release/nextloop-h2-client"
    [hyper]="$peers_target/release/hyper-h2-client"
)
declare -A label=(
    [nextloop]="nextloop ($nextloop_rev$( (( nextloop_dirty )) && echo ", src/ modified"))"
    [hyper]="hyper $hyper_version (h2 $h2_version, tokio $tokio_version)"
)
declare -A inflight=([m64]=64 [m1]=1)
declare -A requests=([m64]=$N64 [m1]=$N1)

# --- the server -----------------------------------------------------------------
# Starts examples/hello on 127.0.0.1, pinned; sets server_pid and port.
start_server() {
    local log=$work/server.out
    nice -n "$NICE" taskset -c "$SERVER_CORE" "$target_dir/release/examples/hello" 127.0.0.1:0 >"$log" 2>&1 &
    server_pid=$!
    port=$(wait_for_listening "$server_pid" "$log") || die "hello did not print its address: $(cat "$log")"
    wait_for_accept "$port" || die "hello does not accept on 127.0.0.1:$port: $(cat "$log")"
}

# field KEY LINE: the value of KEY=value in LINE.
field() {
    awk -v k="$1" '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); if (kv[1] == k) { print kv[2]; exit } } }' <<<"$2"
}

# --- correctness --------------------------------------------------------------
echo "== correctness: one GET by the nextloop client vs curl --http2-prior-knowledge"
start_server
timeout $((CAP + 10)) "${bin[nextloop]}" "127.0.0.1:$port" 1 1 --cap "$CAP" --body "$work/nextloop.body" \
    >"$work/one.out" 2>&1 || die "the nextloop client failed one GET: $(cat "$work/one.out")"
body_len=$(wc -c <"$work/nextloop.body")
(( body_len > 0 )) || die "the nextloop client got an empty body"
timeout $((CAP + 10)) "${bin[hyper]}" "127.0.0.1:$port" 1 1 --cap "$CAP" >"$work/one-hyper.out" 2>&1 \
    || die "the hyper client failed one GET: $(cat "$work/one-hyper.out")"
[[ $(field body_bytes "$(cat "$work/one-hyper.out")") == "$body_len" ]] \
    || die "the hyper client got $(field body_bytes "$(cat "$work/one-hyper.out")") body bytes, nextloop $body_len"
if command -v curl >/dev/null 2>&1; then
    curl_info=$(curl -sS --http2-prior-knowledge --max-time 10 -o "$work/curl.body" \
        -w '%{http_code} %{http_version}' "http://127.0.0.1:$port/") || die "curl failed"
    [[ $curl_info == "200 2" ]] || die "curl got status and version $curl_info, not 200 over HTTP/2"
    cmp "$work/curl.body" "$work/nextloop.body" || die "the bodies differ (curl vs nextloop client)"
    correctness="curl --http2-prior-knowledge and the nextloop client got the same $body_len-byte body; hyper's client the same length"
else
    correctness="curl not installed: not compared with curl; both clients got $body_len-byte bodies"
fi
stop_server
echo "   $correctness"

# --- measured runs ------------------------------------------------------------
# One run: prints "requests req/s cpu_us_per_request client_cpu% allocs
# submit_allocs whole_process_us server_cpu% user_us sys_us" (the last two
# per request, over the window).
measure() {
    local name=$1 mode=$2 out=$work/client.out timing=$work/client.time
    local n=${requests[$mode]} m=${inflight[$mode]}
    start_server
    local before after
    before=$(tree_cpu_ticks "$server_pid")
    local TIMEFORMAT='%U %S %R'
    { time nice -n "$NICE" taskset -c "$LOAD_CORE" timeout $((CAP + 30)) \
        "${bin[$name]}" "127.0.0.1:$port" "$n" "$m" --cap "$CAP" >"$out" 2>"$work/client.err"; } 2>"$timing" \
        || die "the $name client failed ($mode): $(tail -n 5 "$work/client.err")"
    after=$(tree_cpu_ticks "$server_pid")
    stop_server
    local line got bytes warmup
    line=$(tail -n 1 "$out")
    got=$(field requests "$line")
    bytes=$(field body_bytes "$line")
    warmup=$(field warmup "$line")
    [[ $got == "$n" ]] || die "the $name client ($mode) reports $got requests, not $n: $line"
    [[ $bytes == $((n * body_len)) ]] || die "the $name client ($mode) read $bytes body bytes, not $n × $body_len"
    read -r t_user t_sys t_real <"$timing"
    awk -v line="$line" -v n="$n" -v all="$((warmup + n + m))" -v d="$((after - before))" -v hz="$clk_tck" \
        -v tu="$t_user" -v ts="$t_sys" -v tr="$t_real" 'BEGIN {
            split(line, f, " ")
            for (i in f) { split(f[i], kv, "="); v[kv[1]] = kv[2] }
            s = v["elapsed_s"]
            sub_allocs = ("submit_allocs_per_request" in v) ? v["submit_allocs_per_request"] : "-"
            printf "%d %.0f %.3f %.0f %s %s %.3f %.0f %.3f %.3f\n", n, n / s, v["cpu_us_per_request"],
                100 * (v["user_us"] + v["sys_us"]) / 1e6 / s, v["allocs_per_request"], sub_allocs,
                (tu + ts) * 1e6 / all, 100 * d / hz / tr, v["user_us"] / n, v["sys_us"] / n
        }'
}

for rep in $(seq "$REPS"); do
    for mode in "${modes[@]}"; do
        for name in "${clients[@]}"; do
            echo "== run $rep/$REPS: $name client, $mode (${requests[$mode]} requests, ${inflight[$mode]} in flight)"
            # Not in a pipeline: measure must run in this shell, so that the
            # EXIT trap can stop its server if it fails.
            measure "$name" "$mode" >>"$work/runs.$name.$mode"
            echo "   requests, req/s, CPU µs/request, client CPU %, allocs/request, in submit, whole-process µs/request, server CPU %, user, sys µs/request: $(tail -n 1 "$work/runs.$name.$mode")"
        done
    done
done

# --- syscalls per request -------------------------------------------------------
syscall_events=(raw_syscalls:sys_enter
    syscalls:sys_enter_epoll_wait syscalls:sys_enter_epoll_pwait syscalls:sys_enter_epoll_pwait2
    syscalls:sys_enter_read syscalls:sys_enter_readv syscalls:sys_enter_recvfrom syscalls:sys_enter_recvmsg
    syscalls:sys_enter_write syscalls:sys_enter_writev syscalls:sys_enter_sendto syscalls:sys_enter_sendmsg
    syscalls:sys_enter_futex)
have_perf=0
if (( SYSCALLS )) && command -v perf >/dev/null 2>&1 \
    && perf stat -x, -e "$(IFS=,; echo "${syscall_events[*]}")" -- true >/dev/null 2>&1; then
    have_perf=1
fi

# One perf-counted run of N requests; prints "name=count" lines.
count_syscalls() {
    local name=$1 n=$2 m=$3 out=$work/perf.out
    start_server
    nice -n "$NICE" taskset -c "$LOAD_CORE" timeout $((CAP + 30)) \
        perf stat -x, -o "$out" -e "$(IFS=,; echo "${syscall_events[*]}")" -- \
        "${bin[$name]}" "127.0.0.1:$port" "$n" "$m" --warmup 0 --cap "$CAP" >"$work/perf.client" 2>&1 \
        || die "the $name client failed under perf stat: $(tail -n 5 "$work/perf.client")"
    stop_server
    awk -F, '$3 ~ /sys_enter/ { e = $3; sub(/.*sys_enter_?/, "", e); if (e == "") e = "all"; print e "=" $1 }' "$out"
}

declare -A sc
if (( have_perf )); then
    for mode in "${modes[@]}"; do
        for name in "${clients[@]}"; do
            n=${requests[$mode]} m=${inflight[$mode]}
            echo "== syscalls: $name client, $mode"
            count_syscalls "$name" 1 "$m" >"$work/sc.base"
            count_syscalls "$name" "$n" "$m" >"$work/sc.full"
            # (full - base) / (n - 1), per syscall.
            while IFS='=' read -r ev cnt; do
                b=$(awk -F= -v e="$ev" '$1 == e { print $2 }' "$work/sc.base")
                sc[$name.$mode.$ev]=$(awk -v a="$cnt" -v b="${b:-0}" -v n="$n" 'BEGIN { printf "%.3f", (a - b) / (n - 1) }')
            done <"$work/sc.full"
            echo "   per request: all ${sc[$name.$mode.all]}"
        done
    done
fi

# --- the table ------------------------------------------------------------------
declare -A rps cpu spread client_pct allocs submit whole server_pct user sys
for mode in "${modes[@]}"; do
    for name in "${clients[@]}"; do
        runs=$work/runs.$name.$mode
        read -r _ rps[$name.$mode] cpu[$name.$mode] client_pct[$name.$mode] allocs[$name.$mode] \
            submit[$name.$mode] whole[$name.$mode] server_pct[$name.$mode] user[$name.$mode] sys[$name.$mode] \
            < <(median_row "$runs")
        spread[$name.$mode]=$(spread_of "$runs")
    done
done

table=$work/table.md
{
    echo "| client | mode | req/s | CPU µs/request | user + sys | spread | ratio to hyper | client CPU | whole process µs/request | allocs/request (in submit) | server CPU |"
    echo "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
    for mode in "${modes[@]}"; do
        for name in "${clients[@]}"; do
            k=$name.$mode
            a=${allocs[$k]}
            [[ ${submit[$k]} != - ]] && a="$a (${submit[$k]})"
            echo "| ${label[$name]} | $mode | ${rps[$k]} | ${cpu[$k]} | ${user[$k]} + ${sys[$k]} | ±${spread[$k]}% | $(ratio "${cpu[$k]}" "${cpu[hyper.$mode]}") | ${client_pct[$k]}% | ${whole[$k]} | $a | ${server_pct[$k]}% |"
        done
    done
    if (( have_perf )); then
        echo
        echo "Syscalls per request (perf stat, one run each of N and of 1 request, the difference ÷ (N − 1)):"
        echo
        echo "| client | mode | all | epoll_wait | recvfrom + read | sendto + write + writev | futex |"
        echo "|---|---|--:|--:|--:|--:|--:|"
        for mode in "${modes[@]}"; do
            for name in "${clients[@]}"; do
                k=$name.$mode
                g() { echo "${sc[$k.$1]:-0}"; }
                sum() { awk 'BEGIN { s = 0; for (i = 1; i < ARGC; i++) s += ARGV[i]; printf "%.3f", s }' "$@"; }
                echo "| ${label[$name]} | $mode | $(g all) | $(sum "$(g epoll_wait)" "$(g epoll_pwait)" "$(g epoll_pwait2)") | $(sum "$(g recvfrom)" "$(g read)" "$(g readv)" "$(g recvmsg)") | $(sum "$(g sendto)" "$(g write)" "$(g writev)" "$(g sendmsg)") | $(g futex) |"
            done
        done
    fi
} >"$table"

{
    echo "## HTTP/2 client run of $(date -u +%Y-%m-%dT%H:%MZ): \`$command_line\`"
    echo
    echo "- machine: $(uname -srm), $(lscpu | sed -n 's/^Model name: *//p' | head -n 1), $(nproc) cores; server (nextloop examples/hello, h2c) on core $SERVER_CORE, client on core $LOAD_CORE"
    echo "- toolchain: $(rustc --version)"
    echo "- modes: m64 = $N64 GETs with 64 in flight, m1 = $N1 GETs one at a time; one h2c connection; plus warm-up min(N/10, 10000) before and INFLIGHT after the window"
    echo "- correctness: $correctness"
    echo "- load average (1, 5, 15 min) at the start: $load_at_start; at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo
    cat "$table"
} >"$work/report.md"
mkdir -p "$(dirname "$OUT")"
cp "$work/report.md" "$OUT"
echo
cat "$OUT"
echo
echo "written to $OUT"
