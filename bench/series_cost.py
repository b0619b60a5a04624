#!/usr/bin/env python3
"""Bytes per series for series that hold few samples (fresh start, new jobs).

    python3 bench/series_cost.py [--binary ./cc-metric-store] [--hosts 100]
                                 [--per-host 100] [--samples 1,10,100,1000]
                                 [--configured-metrics 1]

For each sample count N, starts a fresh server, writes N samples (60 s
apart, random walks with 2 decimals) to hosts x per-host series (hwthread
series of one metric, as a collector sends them), and prints what
/api/status reports: store bytes per series (tree included) and per sample,
and the server's RSS growth per series.
"""
import argparse
import json
import os
import random
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "integration"))
import ccms  # noqa: E402

METRICS = {"cpu_user": {"frequency": 60, "aggregation": "avg"}}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=ccms.BINARY)
    ap.add_argument("--hosts", type=int, default=100)
    ap.add_argument("--per-host", type=int, default=100)
    ap.add_argument("--samples", default="1,10,100,1000")
    ap.add_argument("--configured-metrics", type=int, default=1,
                    help="metrics in the config (only cpu_user is written)")
    args = ap.parse_args()
    ccms.BINARY = args.binary
    series = args.hosts * args.per_host
    for n in [int(x) for x in args.samples.split(",")]:
        metrics = dict(METRICS)
        for k in range(1, args.configured_metrics):
            metrics["other_%d" % k] = {"frequency": 60, "aggregation": "avg"}
        srv = ccms.Server(metrics=metrics, retention="%ds" % (60 * (n + 100)))
        srv.start()
        try:
            empty = json.loads(srv.raw("GET", "/api/status").body)["store"]["bytes"]
            rss0 = ccms.rss_bytes(srv.proc.pid)
            now = int(time.time()) // 60 * 60
            rng = random.Random(n)
            walk = [[rng.randrange(0, 10000) for _ in range(args.per_host)]
                    for _ in range(args.hosts)]
            for k in range(n):
                ts = now - 60 * (n - k)
                lines = []
                for h in range(args.hosts):
                    for c in range(args.per_host):
                        walk[h][c] = max(0, walk[h][c] + rng.randrange(-200, 201))
                        lines.append("cpu_user,cluster=c,hostname=n%04d,type=hwthread,"
                                     "type-id=%d value=%d.%02d %d\n"
                                     % (h, c, walk[h][c] // 100, walk[h][c] % 100, ts))
                r = srv.write("".join(lines).encode())
                if r.status >= 300:
                    raise SystemExit("write failed: %d %r" % (r.status, r.body[:200]))
            st = json.loads(srv.raw("GET", "/api/status").body)["store"]
            held = st["bytes"] - empty
            print("%5d samples/series: %7.1f bytes/series (store), %6.2f bytes/sample, "
                  "RSS growth %7.1f bytes/series  [%d series]"
                  % (n, held / series, held / (series * n),
                     (ccms.rss_bytes(srv.proc.pid) - rss0) / series, series), flush=True)
        finally:
            srv.close()


if __name__ == "__main__":
    main()
