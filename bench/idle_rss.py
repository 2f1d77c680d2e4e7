#!/usr/bin/env python3
"""Resident memory per idle keep-alive connection of a running server.

    idle_rss.py PID PORT [N]

Opens 100 connections as a warm-up, reads the server's VmRSS, opens N more
(default 10000), each answering one GET so that it is a served keep-alive
connection, reads VmRSS again, and prints the growth per connection in
KiB. Every connection stays open until the end. 127.0.0.1 only.
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


def served_connection(port):
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(GET)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise SystemExit("server closed a connection")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        body += sock.recv(4096)
    return sock


def main():
    pid, port = int(sys.argv[1]), int(sys.argv[2])
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 10000
    held = [served_connection(port) for _ in range(100)]
    before = rss_kib(pid)
    held += [served_connection(port) for _ in range(n)]
    after = rss_kib(pid)
    print(f"{(after - before) / n:.2f}")
    for sock in held:
        sock.close()


if __name__ == "__main__":
    main()
