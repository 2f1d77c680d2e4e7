#!/usr/bin/env python3
"""Resident memory per idle keep-alive connection of a running server.

    idle_rss.py PID PORT [N] [--tls] [--h2] [--ws]

Opens 100 connections as a warm-up, reads the server's VmRSS, opens N more
(default 9000; stay under the server's connection limit), each answering
one GET so that it is a served keep-alive connection, reads VmRSS again,
and prints the growth per connection in KiB. The connections are opened
all at once and then read, well inside a keep-alive timeout of a few
seconds, and the first one must still answer afterwards: a server that
closed idle connections before the reading would look cheaper than it
is. 127.0.0.1 only. With --tls every connection is TLS (the certificate
is not verified: the point is the server's memory, not its identity).
With --h2 every connection speaks HTTP/2 with prior knowledge (h2c): the
preface, an empty SETTINGS, one GET on stream 1 read to its END_STREAM,
the server's SETTINGS acknowledged and its PINGs answered; the check
afterwards is a GET on stream 3. With --ws every connection is a WebSocket
(the opening handshake, then one small text message echoed); the check is
another echo. The resident memory is that of PID and
its descendants (a server with worker processes, such as nginx, counts
whole).
"""

import os
import socket
import ssl
import sys
import time

TLS = None

GET = b"GET / HTTP/1.1\r\nHost: idle\r\n\r\n"


H2 = False

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
# HPACK, static table only: :method GET (2), :scheme http (6), :path / (4),
# :authority "idle" (literal without indexing, name index 1).
H2_GET_BLOCK = b"\x82\x86\x84\x01\x04idle"


def tree(pid):
    """PID and its descendants."""
    pids = [pid]
    for task in _listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/children") as children:
                for child in children.read().split():
                    pids += tree(int(child))
        except OSError:
            pass
    return pids


def _listdir(path):
    try:
        return os.listdir(path)
    except OSError:
        return []


def rss_kib(pid):
    total = 0
    for p in tree(pid):
        try:
            with open(f"/proc/{p}/status") as status:
                for line in status:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            if p == pid:
                raise SystemExit(f"no VmRSS for pid {pid}")
    return total


WS = False
WS_HANDSHAKE = (
    b"GET / HTTP/1.1\r\nHost: idle\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)
# "idle", masked with the key 1 2 3 4.
WS_TEXT = b"\x81\x84\x01\x02\x03\x04" + bytes(b ^ k for b, k in zip(b"idle", b"\x01\x02\x03\x04"))


class WsReader:
    """A WebSocket client connection: the handshake, then echoes."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise SystemExit("the server closed a WebSocket connection")
        self.buf += chunk

    def handshake(self):
        while b"\r\n\r\n" not in self.buf:
            self.fill()
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 101"):
            raise SystemExit(f"handshake refused: {head.splitlines()[0]!r}")

    def echo(self):
        while len(self.buf) < 2 or len(self.buf) < 2 + (self.buf[1] & 0x7F):
            self.fill()
        length = self.buf[1] & 0x7F
        frame, self.buf = self.buf[: 2 + length], self.buf[2 + length :]
        if frame != b"\x81\x04idle":
            raise SystemExit(f"a wrong echo: {frame!r}")


def h2_frame(kind, flags, stream, payload=b""):
    return (
        len(payload).to_bytes(3, "big")
        + bytes([kind, flags])
        + stream.to_bytes(4, "big")
        + payload
    )


def h2_get(stream, size_update=False):
    # HEADERS with END_STREAM | END_HEADERS. A block after the server's
    # SETTINGS were acknowledged starts with a dynamic table size update
    # (to 0: within any limit), as RFC 7541 §4.2 requires when those
    # SETTINGS lowered the table size.
    block = (b"\x20" if size_update else b"") + H2_GET_BLOCK
    return h2_frame(1, 0x5, stream, block)


class H2Reader:
    """Reads frames off one connection until a stream's END_STREAM."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def frame(self):
        while True:
            if len(self.buf) >= 9:
                length = int.from_bytes(self.buf[:3], "big")
                if len(self.buf) >= 9 + length:
                    head, self.buf = self.buf[: 9 + length], self.buf[9 + length :]
                    kind, flags = head[3], head[4]
                    stream = int.from_bytes(head[5:9], "big") & 0x7FFFFFFF
                    return kind, flags, stream, head[9:]
            chunk = self.sock.recv(65536)
            if not chunk:
                raise SystemExit("the server closed an HTTP/2 connection")
            self.buf += chunk

    def response(self, stream):
        status = None
        while True:
            kind, flags, sid, payload = self.frame()
            if kind == 4 and sid == 0 and not flags & 0x1:
                self.sock.sendall(h2_frame(4, 0x1, 0))  # SETTINGS ack
            elif kind == 6 and not flags & 0x1:
                self.sock.sendall(h2_frame(6, 0x1, 0, payload))  # PING ack
            elif kind == 7:
                raise SystemExit(f"the server sent GOAWAY: {payload[4:8].hex()}")
            elif kind == 3 and sid == stream:
                raise SystemExit(f"the server reset stream {stream}")
            elif sid == stream and kind in (0, 1):
                if kind == 1:
                    status = payload
                if flags & 0x1:
                    if status is None:
                        raise SystemExit("an HTTP/2 response without HEADERS")
                    return


def read_response(sock):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise SystemExit("the server closed a connection")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        chunk = sock.recv(4096)
        if not chunk:
            raise SystemExit("the server closed a connection mid-body")
        body += chunk


def served_connections(port, n):
    socks = []
    for _ in range(n):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        if TLS is not None:
            sock = TLS.wrap_socket(sock, server_hostname="localhost")
        if H2:
            sock.sendall(PREFACE + h2_frame(4, 0, 0) + h2_get(1))
            sock = H2Reader(sock)
        elif WS:
            # The message only after the 101, as RFC 6455 §4.1 asks of a
            # client (tungstenite closes on frames behind the request).
            sock.sendall(WS_HANDSHAKE)
            sock = WsReader(sock)
        else:
            sock.sendall(GET)
        socks.append(sock)
    for sock in socks:
        if H2:
            sock.response(1)
        elif WS:
            sock.handshake()
            sock.sock.sendall(WS_TEXT)
        else:
            read_response(sock)
    for sock in socks if WS else ():
        sock.echo()
    return socks


def main():
    global TLS, H2, WS
    args = [a for a in sys.argv[1:] if a not in ("--tls", "--h2", "--ws")]
    H2 = "--h2" in sys.argv[1:]
    WS = "--ws" in sys.argv[1:]
    if "--tls" in sys.argv[1:]:
        TLS = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        TLS.check_hostname = False
        TLS.verify_mode = ssl.CERT_NONE
    pid, port = int(args[0]), int(args[1])
    n = int(args[2]) if len(args) > 2 else 9000
    held = served_connections(port, 100)
    before = rss_kib(pid)
    held += served_connections(port, n)
    time.sleep(float(os.environ.get("SETTLE", "0")))
    after = rss_kib(pid)
    # Still open: the first connection answers another request.
    if H2:
        held[0].sock.sendall(h2_get(3, size_update=True))
        held[0].response(3)
    elif WS:
        held[0].sock.sendall(WS_TEXT)
        held[0].echo()
    else:
        held[0].sendall(GET)
        read_response(held[0])
    print(f"{(after - before) / n:.2f}")
    for sock in held:
        (sock.sock if H2 or WS else sock).close()


if __name__ == "__main__":
    main()
