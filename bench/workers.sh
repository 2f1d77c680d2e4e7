#!/usr/bin/env bash
# One loop versus two: total throughput and server CPU per request with
# nothing pinned, `wrk -t2` sharing the machine. Usage: bash bench/workers.sh
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { apt-get update && apt-get install -y wrk; }
cargo build --release --example hello
ticks=$(getconf CLK_TCK)
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for workers in 1 2; do
    for mode in plain pipelined; do
        ./target/release/examples/hello 127.0.0.1:0 "$workers" >"$log" 2>&1 &
        pid=$!
        for _ in $(seq 50); do grep -q Listening "$log" && break; sleep 0.1; done
        port=$(grep -o '127.0.0.1:[0-9]*' "$log" | cut -d: -f2)
        script=()
        [ "$mode" = pipelined ] && script=(-s bench/pipeline.lua)
        t0=$(awk '{print $14 + $15}' "/proc/$pid/stat")
        out=$(wrk -t2 -c100 -d"${DURATION:-8}"s "${script[@]}" "http://127.0.0.1:$port/")
        t1=$(awk '{print $14 + $15}' "/proc/$pid/stat")
        kill "$pid"
        wait "$pid" 2>/dev/null || true
        reqs=$(echo "$out" | awk '/requests in/ {print $1}')
        rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
        us=$(awk -v d="$((t1 - t0))" -v t="$ticks" -v r="$reqs" 'BEGIN {printf "%.3f", d / t * 1e6 / r}')
        echo "loops=$workers $mode: $rps req/s, $us CPU us/request"
    done
done
