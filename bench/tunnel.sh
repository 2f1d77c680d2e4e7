#!/usr/bin/env bash
# Bulk throughput through examples/tunnel against a direct loopback TCP
# copy, in the same run: one connection, SIZE bytes each way in turn
# (client -> upstream: "up", upstream -> client: "down"), REPS times each,
# the median of each reported. The copy tool is the same Python loop with
# 1 MiB buffers in both cases, so the ratio is the tunnel's cost. Also the
# tunnel's peak RSS (VmHWM) after the run.
#
#     bench/tunnel.sh                  # SIZE=1GiB REPS=3
#     SIZE=$((256<<20)) REPS=1 bench/tunnel.sh
#     DIRECTIONS=down WRAP="perf record -g -o perf.data" bench/tunnel.sh
#
# Everything on 127.0.0.1; every wait bounded (TIMEOUT seconds per copy).
set -euo pipefail
SIZE=${SIZE:-$((1 << 30))}
REPS=${REPS:-3}
TIMEOUT=${TIMEOUT:-120}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
cargo build --release --example tunnel -q
work=$(mktemp -d /tmp/nextloop-tunnel.XXXXXX)
pid=
cleanup() { [[ -n "$pid" ]] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
# Port 0 is not printed by the example; pick a free port first.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
${WRAP:-} target/release/examples/tunnel "127.0.0.1:$port" 2>"$work/err" &
pid=$!
for _ in $(seq 100); do
    grep -q listening "$work/err" 2>/dev/null && break
    sleep 0.1
done
grep -q listening "$work/err" || { cat "$work/err" >&2; exit 1; }

python3 - "$port" "$SIZE" "$REPS" "$TIMEOUT" "${DIRECTIONS:-up down}" <<'PY'
import socket, statistics, sys, threading, time
proxy_port, size, reps, timeout = (int(a) for a in sys.argv[1:5])
directions = sys.argv[5].split()
BUF = 1 << 20

def pump_out(s, n):
    data = memoryview(b"\x5a" * BUF)
    left = n
    while left:
        k = s.send(data[:min(left, BUF)])
        left -= k
    s.shutdown(socket.SHUT_WR)

def pump_in(s, n):
    buf = bytearray(BUF)
    got = 0
    while True:
        k = s.recv_into(buf)
        if not k:
            break
        got += k
    assert got == n, (got, n)

def run(via_proxy, direction):
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(1)
    up_port = ls.getsockname()[1]
    result = {}
    def upstream():
        s, _ = ls.accept()
        s.settimeout(timeout)
        if direction == "up":
            pump_in(s, size)
        else:
            pump_out(s, size)
            s.recv(1)  # wait for the client's end
        s.close()
    t = threading.Thread(target=upstream)
    t.start()
    if via_proxy:
        c = socket.create_connection(("127.0.0.1", proxy_port), timeout=timeout)
        c.sendall(f"CONNECT 127.0.0.1:{up_port} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        head = b""
        while b"\r\n\r\n" not in head:
            k = c.recv(1)
            assert k, "closed in the head"
            head += k
        assert head.startswith(b"HTTP/1.1 200"), head
    else:
        c = socket.create_connection(("127.0.0.1", up_port), timeout=timeout)
    start = time.perf_counter()
    if direction == "up":
        pump_out(c, size)
        c.recv(1)  # the upstream's end, relayed
    else:
        pump_in(c, size)
        c.shutdown(socket.SHUT_WR)
    elapsed = time.perf_counter() - start
    t.join(timeout)
    c.close()
    ls.close()
    return size / elapsed / 1e6

print(f"{size >> 20} MiB per copy, median of {reps}")
for direction in directions:
    direct = statistics.median(run(False, direction) for _ in range(reps))
    tunnel = statistics.median(run(True, direction) for _ in range(reps))
    print(f"{direction:>4}: direct {direct:8.0f} MB/s  tunnel {tunnel:8.0f} MB/s  ratio {tunnel / direct:.2f}")
PY
echo "tunnel peak RSS: $(awk '/VmHWM/ {print $2, $3}' /proc/$pid/status)"
