#!/usr/bin/env python3
"""Resident memory per idle keep-alive connection of a running server.

    idle_rss.py PID PORT [N] [--tls]

Opens 100 connections as a warm-up, reads the server's VmRSS, opens N more
(default 9000; stay under the server's connection limit), each answering
one GET so that it is a served keep-alive connection, reads VmRSS again,
and prints the growth per connection in KiB. The connections are opened
all at once and then read, well inside a keep-alive timeout of a few
seconds, and the first one must still answer afterwards: a server that
closed idle connections before the reading would look cheaper than it
is. 127.0.0.1 only. With --tls every connection is TLS (the certificate
is not verified: the point is the server's memory, not its identity).
"""

import socket
import ssl
import sys

TLS = None

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
        if TLS is not None:
            sock = TLS.wrap_socket(sock, server_hostname="localhost")
        sock.sendall(GET)
        socks.append(sock)
    for sock in socks:
        read_response(sock)
    return socks


def main():
    global TLS
    args = [a for a in sys.argv[1:] if a != "--tls"]
    if "--tls" in sys.argv[1:]:
        TLS = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        TLS.check_hostname = False
        TLS.verify_mode = ssl.CERT_NONE
    pid, port = int(args[0]), int(args[1])
    n = int(args[2]) if len(args) > 2 else 9000
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
