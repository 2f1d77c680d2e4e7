#!/usr/bin/env bash
# WebSocket echo: messages/s and CPU per message, nextloop's examples/websocket vs tokio-tungstenite.
#
# Servers: nextloop's examples/websocket (an echo on every path; before
# issue 16 lands it does not exist and gets a "not yet" row) and
# bench/peers/tungstenite-echo (tokio-tungstenite on a current_thread tokio
# runtime). Each is started as `SERVER 127.0.0.1:PORT` on a port taken free.
#
# Load: bench/peers/ws-load (one mio thread; it checks every echo) with
# CONNS connections, small messages (SIZE bytes, text and binary
# alternating, masked), in two modes:
#   depth1   one message in flight per connection (a round trip each)
#   depth16  16 messages written at once per connection, then their echoes
# bounded by a message count (M1, M16) and a time cap (CAP).
# The server runs pinned to core 0 and ws-load to core 1, on 127.0.0.1 only.
# The server's utime+stime (/proc/PID/stat, all threads and child processes)
# over a run, divided by the messages echoed, is its CPU per message. Each
# server+mode runs REPS times, interleaved; the table shows the median. Then
# resident memory per idle WebSocket connection (bench/idle_rss.py --ws).
# Target (issue 16): nextloop ≤ 0.7× the peer's CPU per message.
#
#     bench/run_ws.sh                                   # REPS=3
#     REPS=1 M1=50000 M16=200000 IDLE=500 bench/run_ws.sh   # a quick check
#
# Environment: REPS (3), CONNS (50), SIZE (16), M1 (300000), M16 (3000000),
# CAP (30: seconds per run), IDLE (2000), NICE (0; -10 as root on a shared
# machine), OUT (bench/last-run-ws.md).
set -euo pipefail

if [[ ${1:-} == -h || ${1:-} == --help ]]; then
    sed -n '2,/^set -euo/{/^set -euo/d; s/^# \{0,1\}//; p}' "$0"
    exit 0
fi

REPS=${REPS:-3}
CONNS=${CONNS:-50}
SIZE=${SIZE:-16}
M1=${M1:-300000}
M16=${M16:-3000000}
CAP=${CAP:-30}
IDLE=${IDLE:-2000}
NICE=${NICE:-0}
SERVER_CORE=0
LOAD_CORE=1

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
OUT=${OUT:-bench/last-run-ws.md}
command_line="REPS=$REPS CONNS=$CONNS SIZE=$SIZE M1=$M1 M16=$M16 CAP=$CAP IDLE=$IDLE NICE=$NICE bench/run_ws.sh"
peers_target=${PEERS_TARGET_DIR:-$root/bench/target}
target_dir=${CARGO_TARGET_DIR:-$root/target}
work=$(mktemp -d /tmp/nextloop-bench-ws.XXXXXX)
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
    echo "bench/run_ws.sh: $*" >&2
    exit 1
}

# --- tools ------------------------------------------------------------------
need_apt python3 python3
for tool in taskset getconf awk timeout; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is required"
done
(( $(nproc) >= 2 )) || die "needs 2 cores (server on core $SERVER_CORE, ws-load on core $LOAD_CORE)"
clk_tck=$(getconf CLK_TCK)
load_at_start=$(cut -d' ' -f1-3 /proc/loadavg)

# --- build ------------------------------------------------------------------
echo "== building (tungstenite-echo, ws-load; nextloop examples/websocket if it exists)"
CARGO_TARGET_DIR=$peers_target cargo build --release \
    --manifest-path bench/peers/tungstenite-echo/Cargo.toml
CARGO_TARGET_DIR=$peers_target cargo build --release \
    --manifest-path bench/peers/ws-load/Cargo.toml
load_bin=$peers_target/release/ws-load
tungstenite_version=$(lock_version tungstenite bench/peers/tungstenite-echo/Cargo.lock)

servers=(nextloop tungstenite)
declare -A bin=(
    [nextloop]=$target_dir/release/examples/websocket
    [tungstenite]=$peers_target/release/tungstenite-echo
)
declare -A label=(
    [nextloop]="nextloop"
    [tungstenite]="tokio-tungstenite (tungstenite $tungstenite_version)"
)
declare -A present=([tungstenite]=1 [nextloop]=0)
if [[ -f examples/websocket.rs ]]; then
    cargo build --release --example websocket || die "examples/websocket.rs does not build"
    present[nextloop]=1
else
    echo "== examples/websocket.rs does not exist yet: nextloop not yet"
fi

# --- load -------------------------------------------------------------------
start_server() {
    local name=$1 log=$work/$1.out
    port=$(free_port)
    nice -n "$NICE" taskset -c "$SERVER_CORE" "${bin[$name]}" "127.0.0.1:$port" >"$log" 2>&1 &
    server_pid=$!
    wait_for_accept "$port" || die "$name does not accept on 127.0.0.1:$port: $(cat "$log")"
}

# One run: prints "messages messages/s cpu_us_per_message server_cpu% load_cpu%".
measure() {
    local name=$1 mode=$2 out=$work/load.out timing=$work/load.time depth messages
    case $mode in
        depth1) depth=1 messages=$M1 ;;
        depth16) depth=16 messages=$M16 ;;
    esac
    start_server "$name"
    local before after
    before=$(tree_cpu_ticks "$server_pid")
    local TIMEFORMAT='%U %S %R'
    { time nice -n "$NICE" taskset -c "$LOAD_CORE" timeout $((CAP + 20)) \
        "$load_bin" "127.0.0.1:$port" --conns "$CONNS" --depth "$depth" \
        --messages "$messages" --seconds "$CAP" --size "$SIZE" >"$out" 2>&1; } 2>"$timing" \
        || die "ws-load failed against $name ($mode): $(cat "$out")"
    after=$(tree_cpu_ticks "$server_pid")
    stop_server
    local echoed secs rate
    read -r _ echoed _ secs _ rate <"$out"
    [[ -n "$echoed" && -n "$rate" ]] || die "cannot parse ws-load's output: $(cat "$out")"
    (( echoed > 0 )) || die "no message echoed by $name ($mode)"
    read -r load_user load_sys load_real <"$timing"
    awk -v d="$((after - before))" -v hz="$clk_tck" -v n="$echoed" -v rate="$rate" \
        -v s="$secs" -v lu="$load_user" -v ls="$load_sys" -v lr="$load_real" 'BEGIN {
            printf "%d %.0f %.3f %.0f %.0f\n", n, rate, d / hz * 1e6 / n,
                100 * d / hz / s, 100 * (lu + ls) / lr
        }'
}

modes=(depth1 depth16)
for rep in $(seq "$REPS"); do
    for mode in "${modes[@]}"; do
        for name in "${servers[@]}"; do
            (( present[$name] )) || continue
            echo "== run $rep/$REPS: $name $mode"
            measure "$name" "$mode" >>"$work/runs.$name.$mode"
            echo "   messages, messages/s, CPU µs/message, server CPU %, ws-load CPU %: $(tail -n 1 "$work/runs.$name.$mode")"
        done
    done
done

declare -A rss_kib
for name in "${servers[@]}"; do
    (( present[$name] )) || continue
    echo "== idle memory: $name ($IDLE WebSocket connections)"
    start_server "$name"
    rss_kib[$name]=$(python3 bench/idle_rss.py "$server_pid" "$port" "$IDLE" --ws) \
        || die "bench/idle_rss.py --ws failed against $name"
    stop_server
    echo "   KiB of resident memory per idle WebSocket connection: ${rss_kib[$name]}"
done

declare -A rate cpu spread server_pct load_pct
for mode in "${modes[@]}"; do
    for name in "${servers[@]}"; do
        (( present[$name] )) || continue
        runs=$work/runs.$name.$mode
        read -r _ rate[$name.$mode] cpu[$name.$mode] server_pct[$name.$mode] load_pct[$name.$mode] \
            < <(median_row "$runs")
        spread[$name.$mode]=$(spread_of "$runs")
    done
done

table=$work/table.md
{
    echo "| server | mode | messages/s | CPU µs/message | spread | ratio to tungstenite | server CPU | ws-load CPU | RSS KiB per idle WebSocket |"
    echo "|---|---|--:|--:|--:|--:|--:|--:|--:|"
    for mode in "${modes[@]}"; do
        for name in "${servers[@]}"; do
            k=$name.$mode
            if (( ! present[$name] )); then
                echo "| ${label[$name]} | $mode | pending (no examples/websocket.rs) | | | | | | |"
                continue
            fi
            echo "| ${label[$name]} | $mode | ${rate[$k]} | ${cpu[$k]} | ±${spread[$k]}% | $(ratio "${cpu[$k]}" "${cpu[tungstenite.$mode]}") | ${server_pct[$k]}% | ${load_pct[$k]}% | ${rss_kib[$name]} |"
        done
    done
} >"$table"

{
    echo "## WebSocket run of $(date -u +%Y-%m-%dT%H:%MZ): \`$command_line\`"
    echo
    echo "- machine: $(uname -srm), $(lscpu | sed -n 's/^Model name: *//p' | head -n 1), $(nproc) cores; server on core $SERVER_CORE, ws-load on core $LOAD_CORE"
    echo "- toolchain: $(rustc --version)"
    echo "- load: $CONNS connections, $SIZE-byte messages (text and binary alternating); depth1 $M1 messages, depth16 $M16, at most ${CAP}s a run"
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
