#!/usr/bin/env python3
"""Interop checks with Python's standard http.client against the examples.

    python3 bench/interop_client.py CHECK HELLO_ADDR ECHO_ADDR

CHECK is one of: keepalive, post-length, post-chunked, head, all.
Addresses are host:port. Prints what it did; exits 1 on the first
mismatch, with the reason on stderr. Standard library only.
"""

import http.client
import os
import sys

TIMEOUT = 10
HELLO = b"Hello, World!"
# Body sizes for the echo POSTs: empty, tiny, around the example's 4 KiB
# buffer and the server's 16 KiB read buffer, and 200 KiB.
SIZES = [0, 1, 13, 4095, 4096, 4097, 16 * 1024, 16 * 1024 + 1, 65536, 200 * 1024]


class Fail(Exception):
    pass


def conn_to(addr):
    host, port = addr.rsplit(":", 1)
    return http.client.HTTPConnection(host, int(port), timeout=TIMEOUT)


def expect(cond, what):
    if not cond:
        raise Fail(what)


def same_socket(conn, sock, what):
    # http.client reconnects silently when the server closed the connection;
    # a new socket object means keep-alive was lost.
    expect(conn.sock is not None and conn.sock is sock,
           f"{what}: connection was not kept alive (new socket)")


def check_keepalive(hello, _echo):
    conn = conn_to(hello)
    conn.connect()
    sock = conn.sock
    for i in range(100):
        conn.request("GET", f"/ka/{i}")
        res = conn.getresponse()
        body = res.read()
        expect(res.status == 200, f"GET #{i}: status {res.status}")
        expect(body == HELLO, f"GET #{i}: body {body[:64]!r}")
        expect(not res.will_close, f"GET #{i}: server wants to close")
        same_socket(conn, sock, f"GET #{i}")
    conn.close()
    print("keepalive: 100 GETs on one connection OK")


def chunks_of(data, size):
    for i in range(0, len(data), size):
        yield data[i:i + size]


def check_post(_hello, echo, chunked):
    conn = conn_to(echo)
    conn.connect()
    sock = conn.sock
    kind = "chunked" if chunked else "content-length"
    for size in SIZES:
        data = os.urandom(size)
        if chunked:
            # Uneven chunk sizes, so chunk boundaries fall anywhere.
            conn.request("POST", f"/echo/{size}", body=chunks_of(data, 7919),
                         headers={"Transfer-Encoding": "chunked",
                                  "Content-Type": "application/octet-stream"},
                         encode_chunked=True)
        else:
            conn.request("POST", f"/echo/{size}", body=data,
                         headers={"Content-Type": "application/octet-stream"})
        res = conn.getresponse()
        got = res.read()
        expect(res.status == 200, f"POST {kind} {size}: status {res.status}")
        expect(len(got) == size and got == data,
               f"POST {kind} {size}: echoed {len(got)} bytes, "
               f"{'equal' if got == data else 'different'}")
        expect(not res.will_close, f"POST {kind} {size}: server wants to close")
        same_socket(conn, sock, f"POST {kind} {size}")
        print(f"post-{kind}: {size} bytes echoed OK")
    conn.close()


def check_head(hello, _echo):
    conn = conn_to(hello)
    conn.connect()
    sock = conn.sock
    conn.request("HEAD", "/")
    res = conn.getresponse()
    body = res.read()
    expect(res.status == 200, f"HEAD: status {res.status}")
    expect(res.getheader("Content-Length") == "13",
           f"HEAD: Content-Length {res.getheader('Content-Length')!r}")
    expect(body == b"", f"HEAD: body {body!r}")
    # A body wrongly sent after the HEAD response would corrupt this one.
    conn.request("GET", "/")
    res = conn.getresponse()
    body = res.read()
    expect(res.status == 200 and body == HELLO,
           f"GET after HEAD: status {res.status} body {body[:64]!r}")
    same_socket(conn, sock, "GET after HEAD")
    conn.close()
    print("head: HEAD (Content-Length 13, no body) then GET on one connection OK")


CHECKS = {
    "keepalive": check_keepalive,
    "post-length": lambda h, e: check_post(h, e, chunked=False),
    "post-chunked": lambda h, e: check_post(h, e, chunked=True),
    "head": check_head,
}


def main(argv):
    if len(argv) != 4 or (argv[1] not in CHECKS and argv[1] != "all"):
        print(__doc__, file=sys.stderr)
        return 2
    names = list(CHECKS) if argv[1] == "all" else [argv[1]]
    for name in names:
        try:
            CHECKS[name](argv[2], argv[3])
        except (Fail, OSError, http.client.HTTPException) as e:
            print(f"{name}: FAIL: {type(e).__name__}: {e}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
