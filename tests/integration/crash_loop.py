#!/usr/bin/env python3
"""Crash loop: SIGKILL the real server at random moments while a writer
sends batches, restart, and prove at the end that every acknowledged sample
is still there with its exact value (docs/compatibility.md, acknowledged writes).

    python3 tests/integration/crash_loop.py --cycles 20 [--seed N] [--budget S]

Each cycle starts the server (fsync "none", a small max-wal-size so early
snapshots and WAL rotations happen while it is killed), runs a writer thread
that posts batches and records every batch answered 200, kills the server
after a random 50-500 ms and joins the writer. Every other cycle the server
runs under the fault-injection shim (tests/tools/faultinject.c, built by
`make test`) and kills itself at an exact file-system call: in the middle of
a snapshot, before its rename, at an fsync, while rotating or deleting a log. After the last cycle the
server is started once more and every series is read back; then it is
stopped with SIGTERM, which must leave only snapshots, and everything is
read back again from those alone.

Sample layout: the writer numbers its batches globally (g = 0, 1, ...).
Line j (0..255) of batch g goes to host h<j%4>; (j//4)%8 picks the level
(0-5: hwthread<k> metric "u", 6: socket0 metric "b", 7: host level metric
"m"); j//32 picks one of 8 consecutive time slots of the batch:
ts = BASE + F*(8g + j//32). Its value is g*256 + j, an integer that float32
holds exactly, so each value names the (cycle, batch, line) that wrote it
(`batches[g]` maps g to its cycle and batch number). Every (host, level, ts)
slot is written by exactly one line, so no sample can hide another.
"""
import argparse
import http.client
import json
import os
import random
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from ccms import Server  # noqa: E402

BASE = 1700000000
F = 10
HOSTS = 4
LINES_PER_BATCH = 256
SLOTS_PER_BATCH = 8
MAX_BATCHES = 65536          # keeps g*256 + j below 2^24 (exact in float32)
CLUSTER = "loop"
METRICS = {
    "m": {"frequency": F, "aggregation": "avg"},
    "u": {"frequency": F, "aggregation": "avg"},
    "b": {"frequency": F, "aggregation": "sum"},
}


# Kill at the Nth such call (%d): mid-snapshot write, before the snapshot's
# rename, at any fsync, while rotating a log, while deleting a rotated log.
FS_KILLS = ["write:*.tmp:KILL:%d", "rename:*.tmp:KILL:%d", "fsync:*:KILL:%d"]
# The Go formats: rotating a host's current.wal, deleting a rotated one.
GO_LOG_KILLS = ["rename:*/current.wal:KILL:%d", "unlink:*/current.wal.*:KILL:%d"]
# The native log: in the middle of a record's write, creating a segment,
# deleting a segment a snapshot run covered.
NATIVE_LOG_KILLS = ["write:*/wal-*.log:KILL:%d", "open_w:*/wal-*.log:KILL:%d",
                    "unlink:*/wal-*.log:KILL:%d"]


def is_log_file(path, go_formats):
    name = os.path.basename(path)
    if go_formats:
        return name.startswith("current.wal")
    return name.startswith("wal-") and name.endswith(".log")


def level_of(j):
    """(metric, type, type-id) of line j; type None = host level."""
    k = (j // 4) % 8
    if k < 6:
        return "u", "hwthread", str(k)
    if k == 6:
        return "b", "socket", "0"
    return "m", None, None


def sample_of(g, j):
    """(host, metric, type, type-id, ts, value) written by line j of batch g."""
    metric, typ, tid = level_of(j)
    ts = BASE + F * (SLOTS_PER_BATCH * g + j // 32)
    return "h%d" % (j % HOSTS), metric, typ, tid, ts, float(g * LINES_PER_BATCH + j)


def batch_body(g):
    out = []
    for j in range(LINES_PER_BATCH):
        host, metric, typ, tid, ts, value = sample_of(g, j)
        tags = "%s,cluster=%s,hostname=%s" % (metric, CLUSTER, host)
        if typ is not None:
            tags += ",type=%s,type-id=%s" % (typ, tid)
        out.append("%s value=%d %d\n" % (tags, int(value), ts))
    return "".join(out).encode()


class Writer(threading.Thread):
    """Posts batches until stopped or the server goes away. acked: the g of
    every batch answered 200; errors: any other HTTP answer (a killed server
    cannot answer, so every non-200 status is a real failure)."""

    def __init__(self, port, first_g, cycle, batches):
        super().__init__(daemon=True)
        self.port = port
        self.g = first_g
        self.cycle = cycle
        self.batches = batches
        self.stop_event = threading.Event()
        self.acked = []
        self.errors = []

    def run(self):
        n = 0
        while not self.stop_event.is_set() and self.g < MAX_BATCHES:
            g = self.g
            self.g += 1
            self.batches[g] = (self.cycle, n)
            n += 1
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            try:
                conn.request("POST", "/api/write", body=batch_body(g))
                resp = conn.getresponse()
                body = resp.read()
            except (OSError, http.client.HTTPException):
                return  # the server was killed: this batch is not acknowledged
            finally:
                conn.close()
            if resp.status == 200:
                self.acked.append(g)
            else:
                self.errors.append("batch %d: HTTP %d %r" % (g, resp.status, body[:200]))
                return


def series_keys():
    keys = set()
    for j in range(LINES_PER_BATCH):
        host, metric, typ, tid, _, _ = sample_of(0, j)
        keys.add((host, metric, typ, tid))
    return sorted(keys, key=lambda k: tuple("" if x is None else x for x in k))


def read_back(srv, max_g):
    """{(host, metric, type, tid): {ts: value}} of every non-null point."""
    keys = series_keys()
    queries = []
    for host, metric, typ, tid in keys:
        q = {"metric": metric, "host": host}
        if typ is not None:
            q["type"] = typ
            q["type-ids"] = [tid]
        queries.append(q)
    req = {"cluster": CLUSTER, "from": BASE, "to": BASE + F * SLOTS_PER_BATCH * (max_g + 1),
           "with-padding": False, "with-stats": False, "queries": queries}
    r = srv.query(req)
    if r.status != 200:
        raise AssertionError("query -> %d %r" % (r.status, r.body[:300]))
    results = json.loads(r.body)["results"]
    got = {}
    for key, row in zip(keys, results):
        points = {}
        for entry in row:
            if "error" in entry:
                if max_g >= 0 and "not found" not in entry["error"]:
                    raise AssertionError("query %r: %s" % (key, entry["error"]))
                continue
            for i, v in enumerate(entry["data"]):
                if v is not None:
                    points[entry["from"] + i * entry["resolution"]] = v
        got[key] = points
    return got


def verify(srv, acked, sent_max_g):
    """Returns (checked, problems): every acknowledged sample must be present
    with its value; every present value must be one this run sent, at the
    slot that line wrote."""
    got = read_back(srv, sent_max_g)
    problems = []
    checked = 0
    for g in acked:
        for j in range(LINES_PER_BATCH):
            host, metric, typ, tid, ts, value = sample_of(g, j)
            checked += 1
            have = got[(host, metric, typ, tid)].get(ts)
            if have != value:
                problems.append("lost: batch %d line %d (%s %s %s%s @%d) = %r, read %r"
                                % (g, j, host, metric, typ or "", tid or "", ts, value, have))
    for key, points in got.items():
        for ts, v in points.items():
            g, j = divmod(int(v), LINES_PER_BATCH)
            if v != int(v) or g > sent_max_g or sample_of(g, j)[:4] != key \
                    or sample_of(g, j)[4] != ts:
                problems.append("foreign value %r at %r @%d" % (v, key, ts))
    return checked, problems


def run(cycles=20, seed=None, budget=None, log=print, max_wal_size=32768, go_formats=False):
    """Runs the loop (native formats, or with go_formats the Go store's);
    returns a dict with cycles, acked (samples), lost, problems (list of
    strings), errors (non-200 answers), seconds."""
    if seed is None:
        seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    started = time.monotonic()
    srv = Server(metrics=METRICS, store={"checkpoint-interval": "1h"})
    set_checkpoints(srv, {"fsync": "none", "max-wal-size": max_wal_size,
                          "write-go-formats": go_formats})
    kills = FS_KILLS + (GO_LOG_KILLS if go_formats else NATIVE_LOG_KILLS)
    batches = {}
    acked = []
    errors = []
    done = 0
    fs_kills = 0
    next_g = 0
    history = []
    try:
        for cycle in range(cycles):
            if budget is not None and done > 0 and time.monotonic() - started > budget:
                break
            # every other cycle dies at an exact file-system call instead
            # (tests/tools/faultinject.c), unless the timer comes first
            srv.faults = rng.choice(kills) % rng.randint(1, 4) if cycle % 2 else None
            start_logged(srv, history)
            writer = Writer(srv.port, next_g, cycle, batches)
            writer.start()
            time.sleep(rng.uniform(0.05, 0.5))
            if srv.proc.poll() is None:
                srv.proc.kill()
            elif srv.faults:
                fs_kills += 1
            srv.proc.wait()
            writer.stop_event.set()
            writer.join(30)
            if writer.is_alive():
                errors.append("cycle %d: writer did not stop" % cycle)
            next_g = writer.g
            acked.extend(writer.acked)
            errors.extend(writer.errors)
            done += 1
        srv.faults = None
        start_logged(srv, history)
        checked, problems = verify(srv, acked, next_g - 1)
        # A clean stop must leave only snapshots, and they alone hold everything.
        srv.stop()
        srv.stopped = False
        leftovers = [p for p in walk(srv.ckpt_dir) if is_log_file(p, go_formats)]
        if leftovers:
            problems.append("WAL files left after SIGTERM: %s" % leftovers)
        start_logged(srv, history)
        checked2, problems2 = verify(srv, acked, next_g - 1)
        problems.extend("after SIGTERM + restart: " + p for p in problems2)
        srv.stop()
    except Exception:
        history.append(srv.stderr())
        log("crash loop: server logs:\n" + "\n".join(h[-3000:] for h in history))
        raise
    finally:
        srv.kill()
        srv.stopped = True
        srv.close()
    lost = sum(1 for p in problems if p.startswith("lost") or ": lost" in p)
    result = {"cycles": done, "acked": checked, "lost": lost, "problems": problems,
              "errors": errors, "seed": seed, "batches": next_g, "fs_kills": fs_kills,
              "seconds": time.monotonic() - started}
    log("crash loop (%s formats): %d cycles (%d killed at a file-system call), %d acknowledged "
        "samples, %d lost (seed %d, %d batches sent, %.1f s)"
        % ("Go" if go_formats else "native", done, fs_kills, checked, lost, seed, next_g,
           result["seconds"]))
    for p in (errors + problems)[:20]:
        log("crash loop: " + p)
    return result


def set_checkpoints(srv, keys):
    """Adds keys to the "checkpoints" section of srv's config (whose
    directory lies in srv's temp dir, known only after Server() made it)."""
    with open(srv.config_path) as fh:
        cfg = json.load(fh)
    cfg["metric-store"]["checkpoints"].update(keys)
    with open(srv.config_path, "w") as fh:
        json.dump(cfg, fh, indent=2)


def start_logged(srv, history):
    """(Re)starts srv, keeping the previous run's stderr in history."""
    for fh in (srv._out, srv._err):
        if fh is not None:
            fh.close()
    if srv._err is not None:
        history.append(srv.stderr())
        del history[:-3]
    srv._out = srv._err = None
    srv.stopped = False
    srv.start()


def walk(root):
    for d, _, files in os.walk(root):
        for f in files:
            yield os.path.join(d, f)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cycles", type=int, default=20)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--budget", type=float, default=None,
                    help="stop starting new cycles after this many seconds")
    ap.add_argument("--max-wal-size", type=int, default=32768)
    ap.add_argument("--go-formats", action="store_true",
                    help="write the Go store's formats (checkpoints.write-go-formats)")
    args = ap.parse_args()
    res = run(args.cycles, args.seed, args.budget, max_wal_size=args.max_wal_size,
              go_formats=args.go_formats)
    ok = res["lost"] == 0 and not res["problems"] and not res["errors"] and res["acked"] > 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
