#!/usr/bin/env python3
"""Memory after one pass of the Go store's own write test script.

    python3 bench/upstream_write_script.py [--binary ./cc-metric-store] [--passes 1]

The Go store ships an endpoint test script that writes, once a minute, one
sample to every series of two clusters: 10 metrics on 128 hwthreads, 8
accelerators (PCI addresses as ids), 8 memory domains and 2 sockets of the
82 "alex" hosts (one host name twice), 10 metrics on 72 hwthreads and 2
sockets of the 64 "fritz" hosts, and 17 node metrics on every host. This
rebuilds the same lines in the same requests (169,562 lines, 168,085
series) and sends them to a fresh server started with the upstream example
configuration (tests/fixtures/upstream-config.json, NATS and the archive
left out), the JWT that script uses, and then prints what /api/status
counts and the server's RSS. With --passes N the minute is sent N times,
60 s of sample time apart (the series then hold N samples).
"""
import argparse
import json
import os
import random
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import ccms  # noqa: E402

JWT = ("eyJ0eXAiOiJKV1QiLCJhbGciOiJFZERTQSJ9.eyJ1c2VyIjoiYWRtaW4iLCJyb2xlcyI6WyJST0xFX0FETUlOIiwiUk"
       "9MRV9BTkFMWVNUIiwiUk9MRV9VU0VSIl19.d-3_3FZTsadPjDEdsWrrQ7nS0edMAR4zjl-eK7rJU3HziNBfI9PDH"
       "DIpJVHTNN5E5SlLGLFXctWyKAkwhXL-Dw")

ALEX = ("a0603 a0903 a0832 a0329 a0702 a0122 a1624 a0731 a0224 a0704 a0631 a0225 a0222 a0427 "
        "a0603 a0429 a0833 a0705 a0901 a0601 a0227 a0804 a0322 a0226 a0126 a0129 a0605 a0801 "
        "a0934 a1622 a0902 a0428 a0537 a1623 a1722 a0228 a0701 a0326 a0327 a0123 a0321 a1621 "
        "a0323 a0124 a0534 a0931 a0324 a0933 a0424 a0905 a0128 a0532 a0805 a0521 a0535 a0932 "
        "a0127 a0325 a0633 a0831 a0803 a0426 a0425 a0229 a1721 a0602 a0632 a0223 a0422 a0423 "
        "a0536 a0328 a0703 anvme7 a0125 a0221 a0604 a0802 a0522 a0531 a0533 a0904").split()
FRITZ = ["f02%02d" % i for i in range(1, 65) if i != 16] + ["f0378"]
TYPE_METRICS = ("cpu_load cpu_user flops_any cpu_irq cpu_system ipc cpu_idle cpu_iowait "
                "core_power clock").split()
NODE_METRICS = ("cpu_irq cpu_load mem_cached net_bytes_in cpu_user cpu_idle nfs4_read mem_used "
                "nfs4_write nfs4_total ib_xmit ib_xmit_pkts net_bytes_out cpu_iowait ib_recv "
                "cpu_system ib_recv_pkts").split()
GPUS = ("00000000:49:00.0 00000000:0E:00.0 00000000:D1:00.0 00000000:90:00.0 00000000:13:00.0 "
        "00000000:96:00.0 00000000:CC:00.0 00000000:4F:00.0").split()


def type_lines(rng, cluster, hosts, typ, ids, ts):
    return ["%s,cluster=%s,hostname=%s,type=%s,type-id=%s value=%d.0 %d\n"
            % (m, cluster, h, typ, i, rng.randrange(1, 101), ts)
            for m in TYPE_METRICS for h in hosts for i in ids]


def node_lines(rng, cluster, hosts, ts):
    return ["%s,cluster=%s,hostname=%s,type=node value=%d.0 %d\n"
            % (m, cluster, h, rng.randrange(1, 101), ts) for m in NODE_METRICS for h in hosts]


def one_minute(rng, ts):
    """The script's requests of one loop pass, as (cluster, lines) in order
    (its files are removed after each request, so no request repeats the
    lines of another)."""
    reqs = []
    alex = type_lines(rng, "alex", ALEX, "hwthread", range(128), ts)
    reqs.append(("alex", alex))
    fritz = type_lines(rng, "fritz", FRITZ, "hwthread", range(72), ts)
    reqs.append(("fritz", fritz))
    alex = type_lines(rng, "alex", ALEX, "accelerator", GPUS, ts)
    reqs.append(("alex", alex))
    alex = type_lines(rng, "alex", ALEX, "memoryDomain", range(8), ts)
    reqs.append(("alex", alex))
    alex = type_lines(rng, "alex", ALEX, "socket", range(2), ts)
    reqs.append(("alex", alex))
    fritz = type_lines(rng, "fritz", FRITZ, "socket", range(2), ts)
    reqs.append(("fritz", fritz))
    alex = node_lines(rng, "alex", ALEX, ts)
    reqs.append(("alex", alex))
    fritz = node_lines(rng, "fritz", FRITZ, ts)
    reqs.append(("fritz", fritz))
    return reqs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=ccms.BINARY)
    ap.add_argument("--passes", type=int, default=1)
    args = ap.parse_args()
    ccms.BINARY = args.binary
    with open(os.path.join(HERE, "..", "tests", "fixtures", "upstream-config.json")) as fh:
        config = json.load(fh)
    config.pop("nats", None)
    store = config["metric-store"]
    store.pop("nats-subscriptions", None)
    store.pop("cleanup", None)
    srv = ccms.Server(config=config)
    store["checkpoints"]["directory"] = srv.ckpt_dir
    with open(srv.config_path, "w") as fh:
        config["main"]["addr"] = srv.addr
        json.dump(config, fh)
    srv.start()
    try:
        rss0 = ccms.rss_bytes(srv.proc.pid)
        rng = random.Random(1)
        now = int(time.time())
        lines = 0
        series = set()
        for p in range(args.passes):
            ts = now - 60 * (args.passes - 1 - p)
            for cluster, body in one_minute(rng, ts):
                lines += len(body)
                series.update(ln.split(" ", 1)[0] for ln in body)
                r = srv.raw("POST", "/api/write/?cluster=" + cluster, "".join(body).encode(),
                            {"Authorization": "Bearer " + JWT})
                if r.status >= 300:
                    raise SystemExit("write failed: %d %r" % (r.status, r.body[:200]))
        st = json.loads(srv.raw("GET", "/api/status", None, {"Authorization": "Bearer " + JWT})
                        .body)["store"]
        rss = ccms.rss_bytes(srv.proc.pid)
        print("%d lines in %d pass(es): store %d bytes, %d samples, %d series; "
              "%.1f bytes/series; RSS %.1f MB (%.1f MB at start)"
              % (lines, args.passes, st["bytes"], st["samples"], len(series),
                 st["bytes"] / len(series), rss / 1e6, rss0 / 1e6))
        print(json.dumps(st, indent=1))
    finally:
        srv.close()


if __name__ == "__main__":
    main()
