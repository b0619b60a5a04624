#!/usr/bin/env python3
"""Idle connections of one client against the others' latency.

    python3 bench/idle_connections.py [--binary ./cc-metric-store] [--idle 1500]
                                      [--clients 1] [--requests 50]

Starts the server on a free loopback port, opens --idle TCP connections that
never send a byte, spread over --clients source addresses (127.0.0.2, .3,
...), then times --requests status requests from 127.0.0.1 (a fresh
connection each, as a new client would). Prints how many idle connections
the server kept open and the latency percentiles of the others, or how many
of them failed.
"""
import argparse
import http.client
import os
import resource
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "integration"))
import ccms  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=ccms.BINARY)
    ap.add_argument("--idle", type=int, default=1500)
    ap.add_argument("--clients", type=int, default=1)
    ap.add_argument("--requests", type=int, default=50)
    args = ap.parse_args()
    ccms.BINARY = args.binary
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, args.idle + 256)), hard))
    srv = ccms.Server()
    srv.start()
    idle = []
    try:
        for i in range(args.idle):
            sk = socket.socket()
            sk.bind(("127.0.0.%d" % (2 + i % args.clients), 0))
            sk.settimeout(5)
            try:
                sk.connect(("127.0.0.1", srv.port))
                idle.append(sk)
            except OSError:
                sk.close()
        time.sleep(0.5)
        kept = 0
        for sk in idle:            # closed by the server: recv returns b"" at once
            sk.setblocking(False)
            try:
                kept += sk.recv(1) != b""
            except BlockingIOError:
                kept += 1
            except OSError:
                pass
        lat, failed = [], 0
        for _ in range(args.requests):
            t0 = time.monotonic()
            try:
                c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
                c.request("GET", "/api/status")
                ok = c.getresponse().status == 200
                c.close()
            except OSError:
                ok = False
            if ok:
                lat.append((time.monotonic() - t0) * 1e3)
            else:
                failed += 1
        lat.sort()
        p = (lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] if lat else float("nan"))
        print("idle connections opened %d from %d clients, kept by the server %d; other client: %d of %d "
              "requests failed, latency p50 %.2f ms, p99 %.2f ms, max %.2f ms"
              % (len(idle), args.clients, kept, failed, args.requests, p(0.5), p(0.99),
                 lat[-1] if lat else float("nan")))
    finally:
        for sk in idle:
            sk.close()
        srv.kill()
        srv.stopped = True
        srv.close()


if __name__ == "__main__":
    main()
