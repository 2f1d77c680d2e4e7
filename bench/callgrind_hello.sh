#!/usr/bin/env bash
# Instructions per request of a hello server through the whole loop —
# reactor, transport, connection machine, real sockets — counted by
# callgrind (deterministic, unlike wall-clock runs on a loaded machine).
#
#     bench/callgrind_hello.sh [BIN]     # default target/release/examples/hello
#
# Runs BIN under callgrind on 127.0.0.1:0, sends N1 then N2 pipelined GETs
# (batches of 16, one connection, bounded), and prints the marginal
# instructions per request: the Ir of the second part (callgrind counts
# from the last dump) over its N2 - N1 requests, which leaves start-up and
# warm-up out. Compare two builds with the same N1, N2.
set -euo pipefail
BIN=${1:-target/release/examples/hello}
N1=${N1:-4000}
N2=${N2:-20000}
work=$(mktemp -d /tmp/nextloop-callgrind.XXXXXX)
pid=
cleanup() { [[ -n "$pid" ]] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
valgrind --tool=callgrind --callgrind-out-file="$work/cg.%p" "$BIN" 127.0.0.1:0 \
    >"$work/out" 2>"$work/err" &
pid=$!
for _ in $(seq 600); do
    port=$(sed -n 's|^Listening on http://127\.0\.0\.1:\([0-9]*\).*|\1|p' "$work/out")
    [[ -n "$port" ]] && break
    sleep 0.1
done
[[ -n "$port" ]] || { cat "$work/err" >&2; exit 1; }
drive() {
    python3 - "$port" "$1" <<'PY'
import socket, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
req = b"GET / HTTP/1.1\r\nHost: bench\r\nUser-Agent: callgrind\r\nAccept: */*\r\n\r\n" * 16
s = socket.create_connection(("127.0.0.1", port), timeout=60)
done = 0
buf = b""
while done < n:
    s.sendall(req)
    want = done + 16
    while done < want:
        chunk = s.recv(65536)
        assert chunk, "closed"
        buf += chunk
        done += buf.count(b"Hello, World!")
        cut = buf.rfind(b"Hello, World!")
        buf = buf[cut + 13:] if cut >= 0 else buf[-12:]
s.close()
PY
}
ir() {
    callgrind_control --dump "$pid" >/dev/null 2>&1
    sleep 1
    local f
    f=$(ls -t "$work"/cg.* | head -n 1)
    awk '/^summary:/ { print $2 }' "$f"
}
drive "$N1"
ir >/dev/null
drive "$((N2 - N1))"
b=$(ir)
awk -v b="$b" -v n="$((N2 - N1))" 'BEGIN { printf "%.1f instructions per pipelined request (%d requests)\n", b / n, n }'
