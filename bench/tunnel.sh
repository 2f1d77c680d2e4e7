#!/usr/bin/env bash
# Bulk throughput through nextloop's CONNECT proxy (examples/tunnel) vs a direct loopback TCP copy.
#
# Routes, each moving BYTES (2 GiB) from bench/peers/tcp-bulk's sender to
# its sink on 127.0.0.1:
#   direct         sender -> sink
#   tokio-connect  sender -> bench/peers/tokio-connect -> sink (a reference
#                  relay: tokio's copy_bidirectional)
#   nextloop       sender -> examples/tunnel -> sink (before issue 16 lands
#                  it does not exist and gets a "pending" row)
# A proxy is started as `PROXY 127.0.0.1:PORT` on a port taken free and
# asked `CONNECT 127.0.0.1:SINKPORT`. The sender and the sink run on core 1
# in every route, a proxy on core 0: the endpoints' work (and the kernel's
# loopback work they cause) is the same in each route, and a proxy gets a
# core of its own, as servers do in the other scripts. Throughput is BYTES
# over the time from the first byte sent to the sink's count of them
# received; the proxy's CPU (utime+stime, /proc/PID/stat) per GiB moved is
# beside it. Each route runs REPS times, interleaved; the table shows the
# run with the median throughput. Bounded: BYTES, and CAP seconds per run.
# Target (issue 16): the tunnel at ≥ 80% of the direct copy.
#
#     bench/tunnel.sh                          # BYTES=2 GiB, REPS=3
#     BYTES=268435456 REPS=1 bench/tunnel.sh   # a quick check
#
# Environment: BYTES (2147483648), REPS (3), CAP (60), NICE (0; -10 as root
# on a shared machine), OUT (bench/last-run-tunnel.md).
set -euo pipefail

if [[ ${1:-} == -h || ${1:-} == --help ]]; then
    sed -n '2,/^set -euo/{/^set -euo/d; s/^# \{0,1\}//; p}' "$0"
    exit 0
fi

BYTES=${BYTES:-2147483648}
REPS=${REPS:-3}
CAP=${CAP:-60}
NICE=${NICE:-0}
SERVER_CORE=0
LOAD_CORE=1

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
OUT=${OUT:-bench/last-run-tunnel.md}
command_line="BYTES=$BYTES REPS=$REPS CAP=$CAP NICE=$NICE bench/tunnel.sh"
peers_target=${PEERS_TARGET_DIR:-$root/bench/target}
target_dir=${CARGO_TARGET_DIR:-$root/target}
work=$(mktemp -d /tmp/nextloop-bench-tunnel.XXXXXX)
server_pid=
sink_pid=

source bench/lib.sh

cleanup() {
    stop_server
    if [[ -n "$sink_pid" ]]; then
        kill "$sink_pid" 2>/dev/null || true
        wait "$sink_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
# A signal ends the script through its EXIT trap, servers stopped.
trap 'exit 130' INT TERM

die() {
    echo "bench/tunnel.sh: $*" >&2
    exit 1
}

need_apt python3 python3
for tool in taskset getconf awk timeout; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is required"
done
(( $(nproc) >= 2 )) || die "needs 2 cores (proxy on core $SERVER_CORE, sender and sink on core $LOAD_CORE)"
clk_tck=$(getconf CLK_TCK)
load_at_start=$(cut -d' ' -f1-3 /proc/loadavg)

# --- build ------------------------------------------------------------------
echo "== building (tcp-bulk, tokio-connect; nextloop examples/tunnel if it exists)"
CARGO_TARGET_DIR=$peers_target cargo build --release --manifest-path bench/peers/tcp-bulk/Cargo.toml
CARGO_TARGET_DIR=$peers_target cargo build --release --manifest-path bench/peers/tokio-connect/Cargo.toml
bulk=$peers_target/release/tcp-bulk

routes=(direct tokio-connect nextloop)
declare -A bin=(
    [tokio-connect]=$peers_target/release/tokio-connect
    [nextloop]=$target_dir/release/examples/tunnel
)
declare -A label=(
    [direct]="direct loopback copy"
    [tokio-connect]="tokio-connect (copy_bidirectional, tokio $(lock_version tokio bench/peers/tokio-connect/Cargo.lock))"
    [nextloop]="nextloop examples/tunnel"
)
declare -A present=([direct]=1 [tokio-connect]=1 [nextloop]=0)
if [[ -f examples/tunnel.rs ]]; then
    cargo build --release --example tunnel || die "examples/tunnel.rs does not build"
    present[nextloop]=1
else
    echo "== examples/tunnel.rs does not exist yet: nextloop pending"
fi

# --- the sink -----------------------------------------------------------------
nice -n "$NICE" taskset -c "$LOAD_CORE" "$bulk" sink 127.0.0.1:0 >"$work/sink.out" 2>&1 &
sink_pid=$!
sink_port=$(wait_for_listening "$sink_pid" "$work/sink.out") || die "the sink did not start: $(cat "$work/sink.out")"

start_server() {
    local name=$1 log=$work/$1.out
    port=$(free_port)
    nice -n "$NICE" taskset -c "$SERVER_CORE" "${bin[$name]}" "127.0.0.1:$port" >"$log" 2>&1 &
    server_pid=$!
    wait_for_accept "$port" || die "$name does not accept on 127.0.0.1:$port: $(cat "$log")"
}

# One run: prints "bytes seconds MiB/s proxy_cpu_s_per_GiB proxy_cpu%".
measure() {
    local name=$1 out=$work/send.out via=() before=0 after=0
    if [[ $name != direct ]]; then
        start_server "$name"
        via=(--via "127.0.0.1:$port")
        before=$(tree_cpu_ticks "$server_pid")
    fi
    nice -n "$NICE" taskset -c "$LOAD_CORE" timeout $((CAP + 10)) \
        "$bulk" send "127.0.0.1:$sink_port" "$BYTES" "${via[@]}" --seconds "$CAP" >"$out" 2>&1 \
        || die "tcp-bulk send failed through $name: $(cat "$out")"
    if [[ $name != direct ]]; then
        after=$(tree_cpu_ticks "$server_pid")
        stop_server
    fi
    local bytes secs rate
    read -r _ bytes _ secs _ rate <"$out"
    [[ -n "$rate" ]] || die "cannot parse tcp-bulk's output: $(cat "$out")"
    awk -v d="$((after - before))" -v hz="$clk_tck" -v b="$bytes" -v s="$secs" -v r="$rate" 'BEGIN {
        printf "%d %.3f %.1f %.3f %.0f\n", b, s, r, d / hz / (b / 2^30), 100 * d / hz / s
    }'
}

for rep in $(seq "$REPS"); do
    for name in "${routes[@]}"; do
        (( present[$name] )) || continue
        echo "== run $rep/$REPS: $name"
        # Not in a pipeline: measure must run in this shell, so that the EXIT
        # trap can stop its proxy if it fails. Column 3 (MiB/s) is the one
        # median_row and spread_of read.
        measure "$name" >>"$work/runs.$name"
        echo "   bytes, seconds, MiB/s, proxy CPU s/GiB, proxy CPU %: $(tail -n 1 "$work/runs.$name")"
    done
done

declare -A rate cpu pct spread
for name in "${routes[@]}"; do
    (( present[$name] )) || continue
    read -r _ _ rate[$name] cpu[$name] pct[$name] < <(median_row "$work/runs.$name")
    spread[$name]=$(spread_of "$work/runs.$name")
done

table=$work/table.md
{
    echo "| route | MiB/s | spread | ratio to direct | proxy CPU s per GiB | proxy CPU |"
    echo "|---|--:|--:|--:|--:|--:|"
    for name in "${routes[@]}"; do
        if (( ! present[$name] )); then
            echo "| ${label[$name]} | pending (no examples/tunnel.rs) | | | | |"
            continue
        fi
        if [[ $name == direct ]]; then c=- p=-; else c=${cpu[$name]} p=${pct[$name]}%; fi
        echo "| ${label[$name]} | ${rate[$name]} | ±${spread[$name]}% | $(ratio "${rate[$name]}" "${rate[direct]}") | $c | $p |"
    done
} >"$table"

{
    echo "## Tunnel run of $(date -u +%Y-%m-%dT%H:%MZ): \`$command_line\`"
    echo
    echo "- machine: $(uname -srm), $(lscpu | sed -n 's/^Model name: *//p' | head -n 1), $(nproc) cores; proxy on core $SERVER_CORE, sender and sink on core $LOAD_CORE"
    echo "- toolchain: $(rustc --version)"
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
