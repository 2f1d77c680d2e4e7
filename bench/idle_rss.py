#!/usr/bin/env python3
"""Resident memory per idle keep-alive connection of a running server.

    idle_rss.py PID PORT [N]

Opens 100 connections as a warm-up, reads the server's VmRSS, opens N more
(default 9000; stay under the server's connection limit), each answering
one GET so that it is a served keep-alive connection, reads VmRSS again,
and prints the growth per connection in KiB. The connections are opened
all at once and then read, well inside a keep-alive timeout of a few
seconds, and the first one must still answer afterwards: a server that
closed idle connections before the reading would look cheaper than it
is. 127.0.0.1 only.
"""

import socket
import sys

GET = b"GET / HTTP/1.1\r\nHost: idle\r\n\r\n"


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise SystemExit(f"no VmRSS for pid {pid}")


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
        sock.sendall(GET)
        socks.append(sock)
    for sock in socks:
        read_response(sock)
    return socks


def main():
    pid, port = int(sys.argv[1]), int(sys.argv[2])
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 9000
    held = served_connections(port, 100)
    before = rss_kib(pid)
    held += served_connections(port, n)
    after = rss_kib(pid)
    # Still open: the first connection answers another request.
    held[0].sendall(GET)
    read_response(held[0])
    print(f"{(after - before) / n:.2f}")
    for sock in held:
        sock.close()


if __name__ == "__main__":
    main()
