#!/usr/bin/env bash
# CPU per request: nextloop's hello against hyper (bench/peers/hyper-hello)
# and a raw mio floor (bench/peers/mio-floor), plain and pipelined x16.
#
# Each server runs pinned to core 0 and wrk to core 1, on 127.0.0.1 only.
# The server's utime+stime (from /proc/PID/stat) over a wrk run, divided by
# the requests wrk completed, is the CPU it spent per request. Each
# server+mode runs REPS times; the table shows the median.
#
#     bench/run.sh                       # DURATION=10 REPS=3
#     DURATION=5 REPS=1 bench/run.sh     # quicker, noisier
#
# Prints the run's heading and markdown table and writes them to
# bench/last-run.md (OUT=path for another file, relative to the repo root).
# BENCHMARKS.md is not touched: paste a run worth recording over its
# "Latest run" section (see the top of BENCHMARKS.md).
set -euo pipefail

DURATION=${DURATION:-10}
REPS=${REPS:-3}
CONNS=${CONNS:-50}
# NICE=-10 (as root) gives the server and wrk priority over other work on
# a shared machine; off by default.
NICE=${NICE:-0}
SERVER_CORE=0
LOAD_CORE=1

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
OUT=${OUT:-bench/last-run.md}
command_line="DURATION=$DURATION REPS=$REPS CONNS=$CONNS NICE=$NICE bench/run.sh"
peers_target=${PEERS_TARGET_DIR:-$root/bench/target}
work=$(mktemp -d /tmp/nextloop-bench.XXXXXX)
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
    echo "bench/run.sh: $*" >&2
    exit 1
}

# --- tools ------------------------------------------------------------------
if ! command -v wrk >/dev/null 2>&1; then
    echo "== installing wrk"
    apt-get update && apt-get install -y wrk
fi
if ! command -v python3 >/dev/null 2>&1; then
    echo "== installing python3 (for bench/idle_rss.py)"
    apt-get update && apt-get install -y python3
fi
for tool in taskset getconf awk; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is required"
done
(( $(nproc) >= 2 )) || die "needs 2 cores (server on core $SERVER_CORE, wrk on core $LOAD_CORE)"
clk_tck=$(getconf CLK_TCK)
load_at_start=$(cut -d' ' -f1-3 /proc/loadavg)

# --- build ------------------------------------------------------------------
echo "== building (nextloop hello, hyper-hello, mio-floor)"
cargo build --release --example hello
CARGO_TARGET_DIR=$peers_target cargo build --release \
    --manifest-path bench/peers/hyper-hello/Cargo.toml
CARGO_TARGET_DIR=$peers_target cargo build --release \
    --manifest-path bench/peers/mio-floor/Cargo.toml
hyper_version=$(awk '/^name = "hyper"$/ { found = 1; next }
                     found && /^version = / { gsub(/"/, "", $3); print $3; exit }' \
    bench/peers/hyper-hello/Cargo.lock)

declare -A bin=(
    [nextloop]=target/release/examples/hello
    [hyper]=$peers_target/release/hyper-hello
    [floor]=$peers_target/release/mio-floor
)

# --- allocations and idle memory (nextloop only) -----------------------------
# One test thread: the counter counts every thread not marked as a client,
# so the harness's own thread (starting the next test, printing a result)
# can otherwise land allocations inside another test's measured window.
echo "== allocation test (cargo test --release --test alloc)"
alloc_log=$work/alloc.log
if cargo test --release --test alloc -- --nocapture --test-threads=1 >"$alloc_log" 2>&1; then
    allocs_per_request=0
else
    allocs_per_request=fail
    echo "warning: the allocation test failed; see its output below" >&2
    tail -n 30 "$alloc_log" >&2
fi
idle_bytes=$(sed -n 's/.*heap per idle connection: \(-\{0,1\}[0-9]*\) bytes.*/\1/p' "$alloc_log" | head -n 1)
if [[ -n "$idle_bytes" ]]; then
    idle_kib=$(awk -v b="$idle_bytes" 'BEGIN { printf "%.2f", b / 1024 }')
else
    idle_kib=fail
fi

# --- load -------------------------------------------------------------------
# Starts a server on 127.0.0.1 with an OS-chosen port; sets server_pid, port.
start_server() {
    local name=$1 log=$work/$1.out
    nice -n "$NICE" taskset -c "$SERVER_CORE" "${bin[$name]}" 127.0.0.1:0 >"$log" 2>&1 &
    server_pid=$!
    port=
    for _ in $(seq 100); do
        port=$(sed -n 's|^Listening on http://127\.0\.0\.1:\([0-9]*\).*|\1|p' "$log")
        [[ -n "$port" ]] && break
        kill -0 "$server_pid" 2>/dev/null || die "$name exited: $(cat "$log")"
        sleep 0.05
    done
    [[ -n "$port" ]] || die "$name did not print its address"
    # Wait until it accepts.
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

# utime + stime of the whole process (all threads), in clock ticks.
cpu_ticks() {
    # Field 2 (comm) is in parentheses and may hold spaces: cut after ')'.
    local stat
    stat=$(<"/proc/$1/stat")
    stat=${stat##*) }
    # Now field 3 (state) is $1, so utime (14) is $12 and stime (15) is $13.
    awk '{ print $12 + $13 }' <<<"$stat"
}

# One run: prints "requests req/s cpu_us_per_request server_cpu% wrk_cpu%".
measure() {
    local name=$1 mode=$2 out=$work/wrk.out timing=$work/wrk.time
    local script=()
    [[ $mode == pipelined ]] && script=(-s bench/pipeline.lua)
    start_server "$name"
    local before after
    before=$(cpu_ticks "$server_pid")
    local TIMEFORMAT='%U %S %R'
    { time nice -n "$NICE" taskset -c "$LOAD_CORE" wrk -t1 -c"$CONNS" -d"${DURATION}s" "${script[@]}" \
        "http://127.0.0.1:$port/" >"$out" 2>&1; } 2>"$timing" \
        || die "wrk failed against $name ($mode): $(cat "$out")"
    after=$(cpu_ticks "$server_pid")
    stop_server
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

servers=(nextloop hyper floor)
modes=(plain pipelined)
# Repeats are interleaved (every server and mode once, then again), so a
# burst of other load on the machine falls on all of them alike rather
# than on whichever server happened to be running.
for rep in $(seq "$REPS"); do
    for mode in "${modes[@]}"; do
        for name in "${servers[@]}"; do
            echo "== run $rep/$REPS: $name $mode (${DURATION}s)"
            # Not in a pipeline: measure must run in this shell, so that the
            # EXIT trap can stop its server if it fails.
            measure "$name" "$mode" >>"$work/runs.$name.$mode"
            echo "   requests, req/s, CPU µs/request, server CPU %, wrk CPU %: $(tail -n 1 "$work/runs.$name.$mode")"
        done
    done
done

# --- resident memory per idle connection (every server) ---------------------
# IDLE connections, each served one request and left open; the server's
# VmRSS growth per connection. Under nextloop's default connection limit
# (10,000) and the descriptor limit of one process.
IDLE=${IDLE:-9000}
declare -A rss_kib
for name in "${servers[@]}"; do
    echo "== idle memory: $name ($IDLE connections)"
    start_server "$name"
    rss_kib[$name]=$(python3 bench/idle_rss.py "$server_pid" "$port" "$IDLE") \
        || die "bench/idle_rss.py failed against $name"
    stop_server
    echo "   KiB of resident memory per idle connection: ${rss_kib[$name]}"
done

declare -A rps cpu spread server_pct wrk_pct
busiest=0
for mode in "${modes[@]}"; do
    for name in "${servers[@]}"; do
        runs=$work/runs.$name.$mode
        # Median by CPU per request; req/s and CPU% from that same run.
        read -r _ rps[$name.$mode] cpu[$name.$mode] server_pct[$name.$mode] wrk_pct[$name.$mode] \
            < <(sort -g -k3,3 "$runs" | awk -v m="$(( (REPS + 1) / 2 ))" 'NR == m')
        spread[$name.$mode]=$(sort -g -k3,3 "$runs" | awk '
            NR == 1 { lo = $3 } { hi = $3; v[NR] = $3 }
            END { printf "%.0f", 100 * (hi - lo) / v[int((NR + 1) / 2)] }')
        for pct in "${server_pct[$name.$mode]}" "${wrk_pct[$name.$mode]}"; do
            if (( pct > busiest )); then busiest=$pct; fi
        done
    done
done

# --- table ------------------------------------------------------------------
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

table=$work/table.md
{
    echo "| server | mode | req/s | CPU µs/request | spread | ratio to hyper | ratio to floor | server CPU | wrk CPU | allocations/request | heap KiB per idle connection | RSS KiB per idle connection |"
    echo "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
    for mode in "${modes[@]}"; do
        for name in "${servers[@]}"; do
            k=$name.$mode
            if [[ $name == nextloop ]]; then
                a=$allocs_per_request
                i=$idle_kib
            else
                a=-
                i=-
            fi
            label=$name
            [[ $name == hyper ]] && label="hyper $hyper_version"
            [[ $name == floor ]] && label="mio floor"
            echo "| $label | $mode | ${rps[$k]} | ${cpu[$k]} | ±${spread[$k]}% | $(ratio "${cpu[$k]}" "${cpu[hyper.$mode]}") | $(ratio "${cpu[$k]}" "${cpu[floor.$mode]}") | ${server_pct[$k]}% | ${wrk_pct[$k]}% | $a | $i | ${rss_kib[$name]} |"
        done
    done
} >"$table"

# --- report -----------------------------------------------------------------
report=$work/report.md
{
    echo "### $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    echo "- machine: $(uname -srm), $(lscpu | sed -n 's/^Model name: *//p' | head -n 1), $(nproc) cores"
    echo "- toolchain: $(rustc --version)"
    echo "- hyper: $hyper_version"
    echo "- command: \`$command_line\`"
    echo "- load average (1, 5, 15 min) at the start: $load_at_start; at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
    if (( busiest < 90 )); then
        echo "- warning: neither the servers nor wrk kept their core busy (at most ${busiest}%):"
        echo "  other processes were competing for the CPU, so these numbers are noisy."
    fi
    echo
    cat "$table"
} >"$report"
mkdir -p "$(dirname "$OUT")"
cp "$report" "$OUT"

echo
cat "$report"
echo
echo "written to $OUT; to record this run, paste it over the \"Latest run\" section of BENCHMARKS.md"
