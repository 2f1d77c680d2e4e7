#!/usr/bin/env bash
# CPU per request over HTTP/2 (h2c, prior knowledge): nextloop's hello vs hyper and nginx.
#
# Servers: nextloop's examples/hello (HTTP/2 with prior knowledge on its
# HTTP/1.1 port), bench/peers/hyper-h2-hello (hyper 1.x HTTP/2 on a
# current_thread tokio runtime) and nginx with one worker
# (bench/peers/nginx/h2c.conf, `listen ... http2`). Every server is first
# probed with one h2load request; one that does not answer HTTP/2 gets a
# "not yet" row instead of figures (before issue 17 lands, nextloop).
#
# Load: h2load (one thread) in two modes, bounded by a request count and a
# time cap (h2load -T, and an outer `timeout`):
#   c64m1  -c64 -m1   64 connections, one stream at a time each
#   c16m32 -c16 -m32  16 connections, 32 concurrent streams each
# The server runs pinned to core 0 and h2load to core 1, on 127.0.0.1 only.
# The server's utime+stime (/proc/PID/stat, with its child processes: nginx's
# worker) over an h2load run, divided by the requests that succeeded, is its
# CPU per request. Any failed, errored or non-2xx request fails the run. Each
# server+mode runs REPS times, interleaved; the table shows the median.
# Then resident memory per idle HTTP/2 connection (bench/idle_rss.py --h2).
#
#     bench/run_h2.sh                                  # REPS=3
#     REPS=1 N1=20000 N32=100000 IDLE=1000 bench/run_h2.sh   # a quick check
#
# Environment: REPS (3), N1 (requests in c64m1, 200000), N32 (requests in
# c16m32, 1000000), CAP (seconds one h2load run may take, 60), IDLE (idle
# connections for the memory figure, 5000), NICE (0; -10 as root on a shared
# machine), OUT (bench/last-run-h2.md). Installs h2load (nghttp2-client),
# nginx and python3 with apt-get if missing.
set -euo pipefail

if [[ ${1:-} == -h || ${1:-} == --help ]]; then
    sed -n '2,/^set -euo/{/^set -euo/d; s/^# \{0,1\}//; p}' "$0"
    exit 0
fi

REPS=${REPS:-3}
N1=${N1:-200000}
N32=${N32:-1000000}
CAP=${CAP:-60}
IDLE=${IDLE:-5000}
NICE=${NICE:-0}
SERVER_CORE=0
LOAD_CORE=1

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
OUT=${OUT:-bench/last-run-h2.md}
command_line="REPS=$REPS N1=$N1 N32=$N32 CAP=$CAP IDLE=$IDLE NICE=$NICE bench/run_h2.sh"
peers_target=${PEERS_TARGET_DIR:-$root/bench/target}
target_dir=${CARGO_TARGET_DIR:-$root/target}
work=$(mktemp -d /tmp/nextloop-bench-h2.XXXXXX)
server_pid=

source bench/lib.sh

cleanup() {
    stop_server
    rm -rf "$work"
}
trap cleanup EXIT
# A signal ends the script through its EXIT trap, servers stopped.
trap 'exit 130' INT TERM

die() {
    echo "bench/run_h2.sh: $*" >&2
    exit 1
}

# --- tools ------------------------------------------------------------------
need_apt h2load nghttp2-client
need_apt nginx nginx
need_apt python3 python3
for tool in taskset getconf awk timeout; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is required"
done
(( $(nproc) >= 2 )) || die "needs 2 cores (server on core $SERVER_CORE, h2load on core $LOAD_CORE)"
clk_tck=$(getconf CLK_TCK)
load_at_start=$(cut -d' ' -f1-3 /proc/loadavg)

# --- build ------------------------------------------------------------------
echo "== building (nextloop hello, hyper-h2-hello)"
cargo build --release --example hello
CARGO_TARGET_DIR=$peers_target cargo build --release \
    --manifest-path bench/peers/hyper-h2-hello/Cargo.toml
hyper_version=$(lock_version hyper bench/peers/hyper-h2-hello/Cargo.lock)
h2_version=$(lock_version h2 bench/peers/hyper-h2-hello/Cargo.lock)
nginx_version=$(nginx -v 2>&1 | sed -n 's|.*nginx/\([0-9.]*\).*|\1|p')

declare -A cmd=(
    [nextloop]="$target_dir/release/examples/hello 127.0.0.1:0"
    [hyper]="$peers_target/release/hyper-h2-hello 127.0.0.1:0"
)
declare -A label=(
    [nextloop]="nextloop"
    [hyper]="hyper $hyper_version (h2 $h2_version)"
    [nginx]="nginx $nginx_version, 1 worker"
)

# --- servers ------------------------------------------------------------------
# Starts a server on 127.0.0.1; sets server_pid and port.
start_server() {
    local name=$1 log=$work/$1.out
    if [[ $name == nginx ]]; then
        # nginx cannot report a port it chose: take a free one first.
        port=$(free_port)
        mkdir -p "$work/nginx/tmp"
        sed "s/@PORT@/$port/" bench/peers/nginx/h2c.conf >"$work/nginx/nginx.conf"
        nice -n "$NICE" taskset -c "$SERVER_CORE" \
            nginx -p "$work/nginx/" -c "$work/nginx/nginx.conf" -e stderr >"$log" 2>&1 &
        server_pid=$!
    else
        # shellcheck disable=SC2086 # the command line is words
        nice -n "$NICE" taskset -c "$SERVER_CORE" ${cmd[$name]} >"$log" 2>&1 &
        server_pid=$!
        port=$(wait_for_listening "$server_pid" "$log") || die "$name did not print its address: $(cat "$log")"
    fi
    wait_for_accept "$port" || die "$name does not accept on 127.0.0.1:$port: $(cat "$log")"
}

# Does the server on $port answer one request over h2c?
speaks_h2c() {
    local out=$work/probe.out
    timeout 20 h2load -n 2 -c 1 -T 10 -N 5 "http://127.0.0.1:$port/" >"$out" 2>&1 || return 1
    grep -q '^requests: 2 total, 2 started, 2 done, 2 succeeded' "$out" \
        && grep -q '^status codes: 2 2xx' "$out"
}

# One run: prints "requests req/s cpu_us_per_request server_cpu% h2load_cpu%".
measure() {
    local name=$1 mode=$2 out=$work/h2load.out timing=$work/h2load.time n c m
    case $mode in
        c64m1) n=$N1 c=64 m=1 ;;
        c16m32) n=$N32 c=16 m=32 ;;
    esac
    start_server "$name"
    local before after
    before=$(tree_cpu_ticks "$server_pid")
    local TIMEFORMAT='%U %S %R'
    { time nice -n "$NICE" taskset -c "$LOAD_CORE" timeout $((CAP + 30)) \
        h2load -t1 -n"$n" -c"$c" -m"$m" -T"$CAP" -N10 "http://127.0.0.1:$port/" >"$out" 2>&1; } 2>"$timing" \
        || die "h2load failed against $name ($mode): $(tail -n 20 "$out")"
    after=$(tree_cpu_ticks "$server_pid")
    stop_server
    local total ok failed errored timeouts xx2 secs rps
    read -r total ok failed errored timeouts < <(awk '$1 == "requests:" {
        print $2, $8, $10, $12, $14; exit }' "$out")
    xx2=$(awk '$1 == "status" && $2 == "codes:" { print $3; exit }' "$out")
    secs=$(sed -n 's/^finished in \([0-9.]*\)s, \([0-9.]*\) req\/s.*/\1/p' "$out")
    rps=$(sed -n 's/^finished in \([0-9.]*\)s, \([0-9.]*\) req\/s.*/\2/p' "$out")
    [[ -n "$total" && -n "$ok" && -n "$secs" ]] || die "cannot parse h2load's output:
$(cat "$out")"
    if [[ "$ok" != "$n" || "$failed" != 0 || "$errored" != 0 || "$timeouts" != 0 || "$xx2" != "$n" ]]; then
        die "h2load against $name ($mode): $ok of $n succeeded, $failed failed, $errored errored, $timeouts timed out, $xx2 2xx (over the ${CAP}s cap? lower N1/N32):
$(tail -n 12 "$out")"
    fi
    read -r load_user load_sys load_real <"$timing"
    awk -v d="$((after - before))" -v hz="$clk_tck" -v n="$ok" -v rps="$rps" \
        -v s="$secs" -v lu="$load_user" -v ls="$load_sys" -v lr="$load_real" 'BEGIN {
            printf "%d %.0f %.3f %.0f %.0f\n", n, rps, d / hz * 1e6 / n,
                100 * d / hz / s, 100 * (lu + ls) / lr
        }'
}

servers=(nextloop hyper nginx)
modes=(c64m1 c16m32)

declare -A speaks
for name in "${servers[@]}"; do
    start_server "$name"
    if speaks_h2c; then speaks[$name]=1; else speaks[$name]=0; fi
    stop_server
    if (( speaks[$name] )); then
        echo "== $name speaks h2c"
    else
        echo "== $name does not answer HTTP/2 with prior knowledge: not yet ($(head -c 300 "$work/probe.out" | tr '\n' ' '))"
    fi
done
(( speaks[hyper] )) || die "the hyper peer does not answer h2c: nothing to compare with"
(( speaks[nginx] )) || die "nginx does not answer h2c: see $root/bench/peers/nginx/h2c.conf"

for rep in $(seq "$REPS"); do
    for mode in "${modes[@]}"; do
        for name in "${servers[@]}"; do
            (( speaks[$name] )) || continue
            echo "== run $rep/$REPS: $name $mode"
            # Not in a pipeline: measure must run in this shell, so that the
            # EXIT trap can stop its server if it fails.
            measure "$name" "$mode" >>"$work/runs.$name.$mode"
            echo "   requests, req/s, CPU µs/request, server CPU %, h2load CPU %: $(tail -n 1 "$work/runs.$name.$mode")"
        done
    done
done

# --- resident memory per idle HTTP/2 connection -------------------------------
declare -A rss_kib
for name in "${servers[@]}"; do
    (( speaks[$name] )) || continue
    echo "== idle memory: $name ($IDLE HTTP/2 connections)"
    start_server "$name"
    rss_kib[$name]=$(python3 bench/idle_rss.py "$server_pid" "$port" "$IDLE" --h2) \
        || die "bench/idle_rss.py --h2 failed against $name"
    stop_server
    echo "   KiB of resident memory per idle HTTP/2 connection: ${rss_kib[$name]}"
done

declare -A rps cpu spread server_pct load_pct
for mode in "${modes[@]}"; do
    for name in "${servers[@]}"; do
        (( speaks[$name] )) || continue
        runs=$work/runs.$name.$mode
        read -r _ rps[$name.$mode] cpu[$name.$mode] server_pct[$name.$mode] load_pct[$name.$mode] \
            < <(median_row "$runs")
        spread[$name.$mode]=$(spread_of "$runs")
    done
done

table=$work/table.md
{
    echo "| server | mode | req/s | CPU µs/request | spread | ratio to hyper | ratio to nginx | server CPU | h2load CPU | RSS KiB per idle HTTP/2 connection |"
    echo "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|"
    for mode in "${modes[@]}"; do
        for name in "${servers[@]}"; do
            k=$name.$mode
            if (( ! speaks[$name] )); then
                echo "| ${label[$name]} | $mode | not yet (no h2c) | | | | | | | |"
                continue
            fi
            echo "| ${label[$name]} | $mode | ${rps[$k]} | ${cpu[$k]} | ±${spread[$k]}% | $(ratio "${cpu[$k]}" "${cpu[hyper.$mode]}") | $(ratio "${cpu[$k]}" "${cpu[nginx.$mode]}") | ${server_pct[$k]}% | ${load_pct[$k]}% | ${rss_kib[$name]} |"
        done
    done
} >"$table"

{
    echo "## HTTP/2 run of $(date -u +%Y-%m-%dT%H:%MZ): \`$command_line\`"
    echo
    echo "- machine: $(uname -srm), $(lscpu | sed -n 's/^Model name: *//p' | head -n 1), $(nproc) cores; server on core $SERVER_CORE, h2load $(h2load --version | awk '{ print $2 }') on core $LOAD_CORE"
    echo "- toolchain: $(rustc --version)"
    echo "- modes: c64m1 = \`h2load -t1 -n$N1 -c64 -m1\`, c16m32 = \`h2load -t1 -n$N32 -c16 -m32\`"
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
