#!/usr/bin/env python3
"""Memory an open client connection costs the server.

    python3 bench/connection_memory.py [--binary ./cc-metric-store] [--connections 100]

Starts the server on a free loopback port, then opens --connections
keep-alive connections (at most max-connections-per-client, 128 by
default), sends one small write request on each and keeps it open, as a
node collector that reuses its connection does. Then a second request on
every connection (the server has reset its per-connection state once).
Prints the server's resident memory before, after the first and after the
second round, and the growth per connection.
"""
import argparse
import os
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "integration"))
import ccms  # noqa: E402


def post(sk, body):
    head = ("POST /api/write HTTP/1.1\r\nHost: bench\r\nContent-Length: %d\r\n\r\n"
            % len(body)).encode()
    sk.sendall(head + body)
    reply = sk.recv(4096)
    if not reply.startswith(b"HTTP/1.1 2"):
        raise SystemExit("write failed: %r" % reply[:80])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=ccms.BINARY)
    ap.add_argument("--connections", type=int, default=100)
    args = ap.parse_args()
    ccms.BINARY = args.binary
    srv = ccms.Server()
    srv.start()
    socks = []
    try:
        time.sleep(0.5)
        before = ccms.rss_bytes(srv.proc.pid)
        now = int(time.time())
        rounds = []
        for value in (1.5, 2.5):
            for i in range(args.connections):
                if len(socks) <= i:
                    socks.append(socket.create_connection(("127.0.0.1", srv.port), timeout=10))
                post(socks[i], ccms.lines(ccms.line("m", value, now, host="n%d" % i)))
            time.sleep(0.5)
            rounds.append(ccms.rss_bytes(srv.proc.pid))
        print("connections %d: RSS %.1f MB before, %.1f MB after one request each, %.1f MB after "
              "two; %.1f kB per connection"
              % (args.connections, before / 1e6, rounds[0] / 1e6, rounds[1] / 1e6,
                 (rounds[1] - before) / args.connections / 1024))
    finally:
        for sk in socks:
            sk.close()
        srv.close()


if __name__ == "__main__":
    main()
