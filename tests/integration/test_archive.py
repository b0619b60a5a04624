"""Retention, memory cap and the Parquet archive, black-box against
./cc-metric-store (docs/file-formats.md "archive", docs/data-model.md, memory-cap, Node
provider, Cleanup; contracts src/archive/retention.h, cleanup.h, parquet.h,
src/net/backend.h).

Every Parquet file the server writes is read back with an independent reader
(DuckDB through tests/tools/duckdb/read_parquet.mjs). setUpModule runs
scripts/install-test-tools.sh so a fresh machine gets node and DuckDB; when
the reader still does not work, every test that reads Parquet FAILS (it is
not skipped).

Checkpoint files are mostly built here, byte by byte, per
docs/file-formats.md (JSON and .bin), so each test controls the
window (`from` in the name, `to` inside) exactly.
"""
import glob
import http.server
import json
import math
import os
import random
import re
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.parse

from ccms import (REPO, CCMSTestCase, codec_profiles, f32, free_port, long_retention, run_binary,
                  start_server)

TESTDATA = os.path.join(REPO, "tests", "fixtures")
READER = os.path.join(REPO, "tests", "tools", "duckdb", "read_parquet.mjs")
INSTALLER = os.path.join(REPO, "scripts", "install-test-tools.sh")

POLL = 10.0          # longest wait for something the server does in the background
DAY = 86400
R48 = 48 * 3600

COLUMNS = ["cluster", "hostname", "metric", "scope", "scope_id", "timestamp", "frequency", "value"]
PHYSICAL = ["BYTE_ARRAY"] * 5 + ["INT64", "INT64", "FLOAT"]
DUCKDB_TYPES = ["VARCHAR"] * 5 + ["BIGINT", "BIGINT", "FLOAT"]
CONVERTED = ["UTF8"] * 5 + ["INT_64", "INT_64", None]

METRICS = {name: {"frequency": 10, "aggregation": "avg"} for name in ("m", "n")}
METRICS.update({name: {"frequency": 60, "aggregation": "avg"}
                for name in ("cpu_load", "mem_used", "cpu_user", "mem_bw")})
METRICS_1S = {"m": {"frequency": 1, "aggregation": "avg"}}

# docs/file-formats.md "archive", sorted by (cluster, hostname, metric, scope, scope_id, timestamp)
FIXTURE_ROWS_RAW = [
    ["testcluster", "node001", "cpu_load", "node", "", 1700000030, 60, 0.5],
    ["testcluster", "node001", "cpu_load", "node", "", 1700000090, 60, 0.7],
    ["testcluster", "node001", "cpu_load", "node", "", 1700000150, 60, 0.9],
    ["testcluster", "node001", "cpu_user", "hwthread", "0", 1700000030, 60, 12.0],
    ["testcluster", "node001", "cpu_user", "hwthread", "0", 1700000150, 60, 13.5],
    ["testcluster", "node001", "mem_used", "node", "", 1700000030, 60, 45.2],
    ["testcluster", "node001", "mem_used", "node", "", 1700000150, 60, 47.0],
    ["testcluster", "node002", "cpu_load", "node", "", 1700000030, 60, 1.0],
    ["testcluster", "node002", "cpu_load", "node", "", 1700000090, 60, 2.0],
    ["testcluster", "node002", "cpu_load", "node", "", 1700000150, 60, 3.0],
    ["testcluster", "node002", "cpu_user", "hwthread", "1", 1700000030, 60, 5.5],
    ["testcluster", "node002", "mem_bw", "socket", "0", 1700000030, 60, 100.0],
    ["testcluster", "node002", "mem_bw", "socket", "0", 1700000150, 60, 200.0],
]
FIXTURE_ROWS = [r[:7] + [f32(r[7])] for r in FIXTURE_ROWS_RAW]

_reader_problem = None


def setUpModule():
    """Installs node + DuckDB if needed and checks that the reader runs. A
    problem is remembered (not raised) so the tests that need no Parquet
    reader still run, and every test that does need it fails with the
    reason."""
    global _reader_problem
    notes = []
    if os.path.exists(INSTALLER):
        try:
            p = subprocess.run(["bash", INSTALLER], cwd=REPO, capture_output=True, text=True,
                               timeout=900, stdin=subprocess.DEVNULL)
            if p.returncode != 0:
                notes.append("%s exited with %d:\n%s%s" % (INSTALLER, p.returncode,
                                                           p.stdout[-2000:], p.stderr[-2000:]))
        except (OSError, subprocess.TimeoutExpired) as exc:
            notes.append("%s failed: %s" % (INSTALLER, exc))
    else:
        notes.append("%s does not exist" % INSTALLER)
    # Without arguments the reader opens DuckDB, prints its usage and exits 2:
    # that proves node, the npm package and its native library all work.
    try:
        p = subprocess.run(["node", READER], capture_output=True, text=True, timeout=120,
                           stdin=subprocess.DEVNULL)
        if p.returncode == 2 and "usage" in p.stderr:
            return
        notes.append("node %s exited with %d: %s" % (READER, p.returncode, p.stderr[-2000:]))
    except (OSError, subprocess.TimeoutExpired) as exc:
        notes.append("cannot run node %s: %s" % (READER, exc))
    _reader_problem = "the DuckDB Parquet reader does not work:\n" + "\n".join(notes)


# ---- checkpoint files (docs/file-formats.md) ------------------------------------
#
# A level is {"metrics": {name: (frequency, start, [value or None, ...])},
#             "children": {name: level}}.

def _str16(s):
    b = s.encode()
    return struct.pack("<H", len(b)) + b


def _bin_level(level):
    metrics = level.get("metrics", {})
    children = level.get("children", {})
    out = [struct.pack("<I", len(metrics))]
    for name, (freq, start, values) in metrics.items():
        out.append(_str16(name) + struct.pack("<qqI", freq, start, len(values)))
        # None = the canonical NaN; bytes = a raw binary32 pattern (other NaNs)
        out.extend(v if isinstance(v, bytes) else struct.pack("<f", math.nan if v is None else v)
                   for v in values)
    out.append(struct.pack("<I", len(children)))
    for name, child in children.items():
        out.append(_str16(name) + _bin_level(child))
    return b"".join(out)


def bin_bytes(frm, to, level):
    return struct.pack("<Iqq", 0xCC5B0001, frm, to) + _bin_level(level)


def json_bytes(frm, to, level):
    def conv(lv):
        return {"metrics": {n: {"frequency": f, "start": s, "data": list(vals)}
                            for n, (f, s, vals) in sorted(lv.get("metrics", {}).items())},
                "children": {n: conv(c) for n, c in sorted(lv.get("children", {}).items())},
                "from": frm, "to": to}
    return (json.dumps(conv(level), separators=(",", ":")) + "\n").encode()


def write_file(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(data)
    return path


def write_ckpt(root, cluster, host, frm, to, level, ext="bin"):
    """<root>/<cluster>/<host>/<frm>.<ext> with the window [frm, to)."""
    data = bin_bytes(frm, to, level) if ext == "bin" else json_bytes(frm, to, level)
    return write_file(os.path.join(root, cluster, host, "%d.%s" % (frm, ext)), data)


# ---- expected rows (docs/file-formats.md) -----------------------------------------

SCOPE_PREFIXES = [("socket", "socket"), ("memoryDomain", "memoryDomain"), ("core", "core"),
                  ("hwthread", "hwthread"), ("cpu", "hwthread"), ("accelerator", "accelerator")]


DEVICE_PREFIXES = ["filesystem", "network"]     # any id: mount points, interface names


def parse_scope(name):
    for prefix, scope in SCOPE_PREFIXES:
        if name.startswith(prefix) and len(name) > len(prefix) and name[len(prefix)] in "0123456789":
            return scope, name[len(prefix):]
    for prefix in DEVICE_PREFIXES:
        if name.startswith(prefix) and len(name) > len(prefix):
            return prefix, name[len(prefix):]
    return name, ""


def level_rows(cluster, host, level, scope="node", scope_id=""):
    out = []
    for metric, (freq, start, values) in level.get("metrics", {}).items():
        for i, v in enumerate(values):
            if v is not None and not isinstance(v, bytes) and v == v:
                out.append([cluster, host, metric, scope, scope_id, start + i * freq, freq, f32(v)])
    for name, child in level.get("children", {}).items():
        s, sid = parse_scope(name)
        out.extend(level_rows(cluster, host, child, s, sid))
    return out


def row_key(r):
    return tuple(x.encode() if isinstance(x, str) else x for x in r[:6])


def sorted_rows(rows):
    return sorted(rows, key=row_key)


# ---- small helpers --------------------------------------------------------------------

def wait_for(cond, timeout=POLL, interval=0.1):
    """Polls cond() until it returns something true; returns that or None."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval)


def parquet_files(directory):
    return sorted(glob.glob(os.path.join(glob.escape(directory), "*.parquet")))


def all_files(directory):
    out = []
    for dirpath, _, names in os.walk(directory):
        out.extend(os.path.relpath(os.path.join(dirpath, n), directory) for n in names)
    return sorted(out)


def status_bytes(srv):
    r = srv.raw("GET", "/api/status")
    if r.status != 200:
        raise AssertionError("GET /api/status -> %d %r" % (r.status, r.body[:300]))
    return json.loads(r.body)["store"]["bytes"]


def series_lines(metric, host, first_ts, values, cluster="c", freq=1, tags=""):
    return "".join("%s,cluster=%s,hostname=%s%s value=%r %d\n"
                   % (metric, cluster, host, tags, v, first_ts + i * freq)
                   for i, v in enumerate(values)).encode()


class FakeBackend:
    """cc-backend's GET /api/jobs/used_nodes?ts=… in a thread. Answers
    `answer` (status, body) when the bearer token matches (token None: when
    there is no Authorization header), 401 otherwise; records every
    request."""

    def __init__(self, testcase, token, answer):
        self.token = token
        self.answer = answer
        self.requests = []
        backend = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                auth = self.headers.get("Authorization")
                backend.requests.append((self.path, auth))
                if auth != (None if backend.token is None else "Bearer " + backend.token):
                    status, body = 401, b'{"error":"unauthorized"}'
                else:
                    status, body = backend.answer
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d" % self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        testcase.addCleanup(self.close)

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


# ---- base class ------------------------------------------------------------------------

class ArchiveCase(CCMSTestCase):
    maxDiff = 8000
    # file-format "wal" writes the Go store's .bin and current.wal here
    # (checkpoints.write-go-formats); NativeArchiveTest runs the server-written
    # cases on the native formats (.ccms snapshots, log segments).
    GO_FORMATS = True
    SNAPSHOTS = (".bin", ".json", ".ccms")

    def setUp(self):
        self.base = tempfile.mkdtemp(prefix="ccms-archive-")
        self.addCleanup(shutil.rmtree, self.base, True)
        self.ckpt = os.path.join(self.base, "checkpoints")
        self.arch = os.path.join(self.base, "archive")
        os.makedirs(self.ckpt)

    def server(self, retention="48h", cleanup=None, mode="archive", start=True, metrics=None,
               main=None, cap=0, file_format=None, ckpt=None):
        """A server on the test's checkpoint directory. cleanup defaults to
        {"mode": mode, "directory": self.arch}; no num-workers anywhere."""
        checkpoints = {"directory": ckpt or self.ckpt, "write-go-formats": self.GO_FORMATS}
        if file_format:
            checkpoints["file-format"] = file_format
        if cleanup is None:
            cleanup = {"mode": mode}
            if mode == "archive":
                cleanup["directory"] = self.arch
        store = {"checkpoints": checkpoints, "retention-in-memory": retention, "memory-cap": cap,
                 "cleanup": cleanup}
        return start_server(self, start=start, metrics=metrics or METRICS, main=main, store=store)

    def write_past(self, srv, bodies):
        """Writes samples older than srv's short retention (which ingest
        would reject): through a run of srv with a long retention, stopped
        (its snapshot ends now); then srv starts with its own configuration
        and restores them, and its retention has something to free."""
        with open(srv.config_path) as fh:
            cfg = json.load(fh)
        own = cfg["metric-store"]["retention-in-memory"]
        cfg["metric-store"]["retention-in-memory"] = long_retention()
        with open(srv.config_path, "w") as fh:
            json.dump(cfg, fh)
        srv.start()
        for body in bodies:
            self.assertWriteOK(srv.write(body))
        srv.stop()
        cfg["metric-store"]["retention-in-memory"] = own
        with open(srv.config_path, "w") as fh:
            json.dump(cfg, fh)
        self.restart(srv)

    @staticmethod
    def restart(srv):
        for fh in (srv._out, srv._err):   # the harness reopens them
            if fh is not None:
                fh.close()
        srv.stopped = False
        srv.start()

    def need_reader(self):
        if _reader_problem:
            self.fail(_reader_problem)

    def read_parquet(self, path):
        self.need_reader()
        p = subprocess.run(["node", READER, path], capture_output=True, text=True, timeout=120,
                           stdin=subprocess.DEVNULL)
        if p.returncode != 0:
            self.fail("DuckDB cannot read %s (exit %d): %s" % (path, p.returncode, p.stderr[-3000:]))
        return json.loads(p.stdout)

    def wait_parquet(self, cluster, srv=None):
        d = os.path.join(self.arch, cluster)
        files = wait_for(lambda: parquet_files(d) if os.path.isdir(d) else None)
        if not files:
            self.fail("no <archive>/%s/*.parquet within %.0f s; archive dir: %r\nstderr:\n%s"
                      % (cluster, POLL, all_files(self.arch) if os.path.isdir(self.arch) else None,
                         srv.stderr()[-3000:] if srv else ""))
        return files

    def wait_gone(self, paths, srv=None):
        done = wait_for(lambda: not any(os.path.exists(p) for p in paths))
        if not done:
            self.fail("still there after %.0f s: %r\nstderr:\n%s"
                      % (POLL, [p for p in paths if os.path.exists(p)],
                         srv.stderr()[-3000:] if srv else ""))

    def assertExist(self, paths):
        missing = [p for p in paths if not os.path.exists(p)]
        self.assertEqual(missing, [], "these files must have been kept")

    def assertSchema(self, d):
        """docs/file-formats.md "archive": names, order, physical, converted and
        logical types, all REQUIRED, flat."""
        sch = d["schema"]
        self.assertEqual(len(sch), 9, sch)
        root, cols = sch[0], sch[1:]
        self.assertEqual(root["name"], "ParquetMetricRow", root)
        self.assertEqual(root["num_children"], 8, root)
        self.assertEqual([c["name"] for c in cols], COLUMNS)
        self.assertEqual([c["physical"] for c in cols], PHYSICAL)
        self.assertEqual([c["type"] for c in cols], DUCKDB_TYPES)
        self.assertEqual([c["converted"] for c in cols], CONVERTED)
        self.assertEqual([c["repetition"] for c in cols], ["REQUIRED"] * 8)
        for c in cols:
            self.assertIn(c["num_children"], (None, 0), c)
        for c in cols[:5]:
            self.assertEqual(c["logical"], "StringType()", c)
        for c in cols[5:7]:
            # DuckDB prints the i8 bitWidth as a character: 64 is '@'.
            self.assertRegex(c["logical"] or "", r"^IntType\(bitWidth=(64|@), isSigned=(1|true)\)$",
                             c)
        self.assertIsNone(cols[7]["logical"], cols[7])

    def assertRows(self, d, expected):
        """Row count, content (float32 values), global sort order and row
        groups that tile the rows."""
        rows = d["rows"]
        self.assertEqual(d["num_rows"], len(expected))
        self.assertEqual(len(rows), len(expected))
        for r in rows:
            self.assertIsInstance(r[7], (int, float), r)   # not NaN/Inf
        self.assertEqual(rows, sorted_rows(expected))
        keys = [row_key(r) for r in rows]
        self.assertTrue(all(a < b for a, b in zip(keys, keys[1:])),
                        "rows not strictly sorted by (cluster, hostname, metric, scope, "
                        "scope_id, timestamp)")
        # row groups are cut by size (not one per host as upstream, which
        # made files larger than DuckDB's own): they tile the rows in order
        sizes = {}
        for ch in d["chunks"]:
            sizes[ch["row_group_id"]] = ch["row_group_num_rows"]
        self.assertEqual(d["row_groups"], len(sizes))
        self.assertGreaterEqual(d["row_groups"], 1 if rows else 0)
        self.assertEqual(sum(sizes.values()), len(rows))

    def assertParquet(self, path, expected):
        self.assertFalse(os.path.exists(path + ".tmp"))
        d = self.read_parquet(path)
        self.assertSchema(d)
        self.assertRows(d, expected)
        return d


# ---- the archive ---------------------------------------------------------------------------

class ArchiveTest(ArchiveCase):
    def test_fixture_tree_archived_at_startup(self):
        """docs/file-formats.md "archive" with the Go store's files: the cleanup that
        runs at startup writes <dir>/testcluster/<cutoff>.parquet."""
        shutil.copytree(os.path.join(TESTDATA, "derived", "checkpoints", "testcluster"),
                        os.path.join(self.ckpt, "testcluster"))
        t0 = int(time.time())
        srv = self.server(retention="48h")
        files = self.wait_parquet("testcluster", srv)
        t1 = int(time.time())
        self.assertEqual(len(files), 1, files)
        stem = os.path.basename(files[0])[:-len(".parquet")]
        self.assertRegex(stem, r"^\d+$")
        self.assertTrue(t0 - R48 - 1 <= int(stem) <= t1 - R48, (stem, t0 - R48, t1 - R48))
        host1 = os.path.join(self.ckpt, "testcluster", "node001")
        host2 = os.path.join(self.ckpt, "testcluster", "node002")
        self.wait_gone([os.path.join(host1, "1700000000.json"),
                        os.path.join(host2, "1700000000.bin")], srv)
        self.assertExist([os.path.join(host2, "current.wal")])
        d = self.assertParquet(files[0], FIXTURE_ROWS)
        self.assertEqual(d["row_groups"], 1)
        self.assertEqual(all_files(os.path.join(self.arch, "testcluster")),
                         [os.path.basename(files[0])])
        self.assertTrue(srv.alive())

    def test_server_written_bin_and_json_archived(self):
        """Rows from a .bin (file-format wal, written at SIGTERM) and a .json
        (file-format json) that the server itself wrote."""
        now = int(time.time())
        base = (now - 3 * DAY) // 10 * 10
        # (metric, host, tags, level path, values); frequency 10, first sample base + k
        series = [
            ("m", "hb", "", [], [0.1, 0.2, 0.3, 1e-3, 123456.789]),
            ("n", "hb", "", [], [-1.5, 2.5]),
            ("m", "hb", ",type=socket,type-id=1", ["socket1"], [7.7, 8.8, 9.9]),
            ("m", "hb", ",type=socket,type-id=0,stype=memoryDomain,stype-id=1",
             ["socket0", "memoryDomain1"], [3.3]),
            ("m", "hb", ",type=accelerator,type-id=00000000:3b:00.0",
             ["accelerator00000000:3b:00.0"], [0.25, 0.5]),
            ("m", "hj", "", [], [1.1, 2.2, 3.3]),
            ("m", "hj", ",type=cpu,type-id=3", ["cpu3"], [4.4, 5.5]),
            ("n", "hj", ",type=core,type-id=7", ["core7"], [6.6]),
            ("n", "hj", ",type=gpu,type-id=x", ["gpux"], [0.01]),
        ]

        def write(srv, host):
            expected = []
            for k, (metric, h, tags, path, values) in enumerate(series):
                if h != host:
                    continue
                first = base + 100 * k
                self.assertWriteOK(srv.write(series_lines(metric, h, first, values, freq=10,
                                                          tags=tags)))
                scope, sid = ("node", "") if not path else parse_scope(path[-1])
                expected += [["c", h, metric, scope, sid, first + 10 * i, 10, f32(v)]
                             for i, v in enumerate(values)]
            return expected

        a = self.server(retention=long_retention(), file_format="wal")
        expected = write(a, "hb")
        a.stop()
        self.assertNotEqual(glob.glob(os.path.join(self.ckpt, "c", "hb",
                                               "*.bin" if self.GO_FORMATS else "*.ccms")), [],
                            all_files(self.ckpt))
        with open(a.config_path) as fh:   # same server, now writing JSON checkpoints
            cfg = json.load(fh)
        cfg["metric-store"]["checkpoints"]["file-format"] = "json"
        with open(a.config_path, "w") as fh:
            json.dump(cfg, fh)
        self.restart(a)
        expected += write(a, "hj")
        a.stop()
        written = int(time.time())
        self.assertNotEqual(glob.glob(os.path.join(self.ckpt, "c", "hj", "*.json")), [],
                            all_files(self.ckpt))
        ckpt_files = [p for p in glob.glob(os.path.join(self.ckpt, "c", "*", "*"))
                      if p.endswith(self.SNAPSHOTS)]
        # retention 1 s: the files' windows (ending at the stops) are past the
        # cut-off at the next start
        wait_for(lambda: int(time.time()) >= written + 2, timeout=5)
        b = self.server(retention="1s")
        files = self.wait_parquet("c", b)
        self.wait_gone(ckpt_files, b)
        self.assertEqual(len(files), 1, files)
        self.assertParquet(files[0], expected)

    def test_ingested_data_reaches_the_archive(self):
        """End to end with retention 2 s, file-format "wal" and "json" (two
        servers side by side): samples written over HTTP are checkpointed
        before retention frees them (retention.h), and the periodic cleanup
        (every R, not only at startup) archives that checkpoint: every
        sample ends up in exactly one Parquet row."""
        runs = []
        for fmt in ("wal", "json"):
            ckpt = os.path.join(self.base, "ckpt-" + fmt)
            arch = os.path.join(self.base, "archive-" + fmt)
            srv = self.server(retention="2s", metrics=METRICS_1S, file_format=fmt, ckpt=ckpt,
                              cleanup={"mode": "archive", "directory": arch})
            runs.append((fmt, srv, ckpt, os.path.join(arch, "c")))
        now = int(time.time())
        # inside the 2 s window when written, so they age out within seconds
        vals = [i * 0.37 - 3 for i in range(4)]
        for _, srv, _, _ in runs:   # one request: both hosts in the same checkpoint run
            self.assertWriteOK(srv.write(series_lines("m", "h", now - 1, vals)
                                         + series_lines("m", "h2", now - 1, vals[:2],
                                                        tags=",type=socket,type-id=0")))
        expected = ([["c", "h", "m", "node", "", now - 1 + i, 1, f32(v)] for i, v in enumerate(vals)]
                    + [["c", "h2", "m", "socket", "0", now - 1 + i, 1, f32(v)]
                       for i, v in enumerate(vals[:2])])
        for fmt, srv, ckpt, cdir in runs:
            def archived():
                # freed from memory (so checkpointed), no checkpoint file left
                # (so archived), and the archive is there
                if count_values(srv, "h", now - 1, now + 3) or \
                        count_values(srv, "h2", now - 1, now + 1):
                    return None
                left = [p for p in glob.glob(os.path.join(ckpt, "c", "*", "*"))
                        if p.endswith(self.SNAPSHOTS)]
                return not left and os.path.isdir(cdir) and parquet_files(cdir)
            files = wait_for(archived, timeout=2 * POLL)
            self.assertTrue(files, "%s: not archived within %.0f s: %r\n%s"
                            % (fmt, 2 * POLL, all_files(self.base), srv.stderr()[-2000:]))
            rows = []
            for path in files:
                d = self.read_parquet(path)
                self.assertSchema(d)
                rows += d["rows"]
            self.assertEqual(sorted_rows(rows), sorted_rows(expected), fmt)

    def test_sealed_data_archived_exactly(self):
        """Data the server held in sealed (encoded) parts, through its
        snapshot into the archive: every codec case (decimal walks, float
        noise, a full-precision walk, constants, sparse series, -0, subnormals, +-FLT_MAX) gives
        the same float32 values in the Parquet rows."""
        t = int(time.time()) - 5 * DAY
        profiles = codec_profiles(700, seed=5)
        expected, body = [], ""
        for cpu, name in enumerate(sorted(profiles)):
            for i, v in enumerate(profiles[name]):
                if v is None:
                    continue
                body += "m,cluster=c,hostname=h,type=hwthread,type-id=%d value=%r %d\n" % (
                    cpu, v, t + 10 * i)
                expected.append(["c", "h", "m", "hwthread", str(cpu), t + 10 * i, 10, f32(v)])
        srv = self.server(retention=long_retention())
        self.assertWriteOK(srv.write(body.encode()))
        srv.stop()                      # the snapshot: a file that ends now
        # archived by the one-shot cleanup once that end is a retention ago
        with open(srv.config_path) as fh:
            cfg = json.load(fh)
        cfg["metric-store"]["retention-in-memory"] = "1s"
        with open(srv.config_path, "w") as fh:
            json.dump(cfg, fh)
        time.sleep(2)
        p = run_binary(["-config", srv.config_path, "-cleanup-checkpoints"], cwd=srv.tmp, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        files = parquet_files(os.path.join(self.arch, "c"))
        self.assertEqual(len(files), 1, all_files(self.base))
        d = self.read_parquet(files[0])
        self.assertSchema(d)
        # the reader spells -0 as a string (-0 stays -0, +0 stays +0), and
        # large whole floats as JSON integers (read back as floats here)
        negative_zero = {row_key(r) for r in expected if r[7] == 0 and math.copysign(1, r[7]) < 0}
        self.assertTrue(negative_zero)
        self.assertEqual({row_key(r) for r in d["rows"] if r[7] == "-0"}, negative_zero)
        for r in d["rows"]:
            r[7] = -0.0 if r[7] == "-0" else float(r[7])
        want = sorted_rows(expected)
        differ = [(a, b) for a, b in zip(d["rows"], want) if a != b]
        self.assertEqual((len(d["rows"]), differ[:5]), (len(want), []))
        self.assertRows(d, expected)

    def test_selection_by_window_end(self):
        """docs/compatibility.md Cleanup / cleanup.h: a file whose
        name (window start) is before the cut-off but whose `to` is after it
        is neither archived nor deleted."""
        now = int(time.time())
        old_bin = {"metrics": {"m": (10, now - 5 * DAY + 5, [1.5, None, 2.25, 1e-3])},
                   "children": {"socket0": {"metrics": {"n": (10, now - 5 * DAY, [0.3])}}}}
        old_json = {"metrics": {"n": (60, now - 4 * DAY, [42.0, 43.5])}}
        straddle = {"metrics": {"n": (10, now - 3 * DAY, [9.0])}}
        straddle2 = {"metrics": {"m": (10, now - 3 * DAY + 60, [8.0])}}
        p_old_bin = write_ckpt(self.ckpt, "c", "h", now - 5 * DAY, now - 4 * DAY, old_bin)
        p_old_json = write_ckpt(self.ckpt, "c", "h2", now - 4 * DAY, now - 3 * DAY, old_json,
                                "json")
        keep = [write_ckpt(self.ckpt, "c", "h", now - 3 * DAY, now - 3600, straddle, "json"),
                write_ckpt(self.ckpt, "c", "h", now - 3 * DAY + 60, now - 3500, straddle2)]
        srv = self.server(retention="48h")
        files = self.wait_parquet("c", srv)
        self.wait_gone([p_old_bin, p_old_json], srv)
        self.assertExist(keep)
        self.assertEqual(len(files), 1, files)
        self.assertParquet(files[0], level_rows("c", "h", old_bin) + level_rows("c", "h2", old_json))

    def test_device_scopes_archived(self):
        """filesystem/network levels written over HTTP reach the archive as
        scope "filesystem" with the mount point as scope_id (and "network"
        with the interface name)."""
        srv = self.server(retention=long_retention(), start=True)
        now = int(time.time())
        first = (now - 3 * DAY) // 10 * 10
        body = "".join(
            "n,cluster=c,hostname=h,type=%s,type-id=%s value=%d.25 %d\n" % (typ, tid, k, first + 10 * k)
            for typ, tid in (("filesystem", "/home"), ("filesystem", "/scratch/x.y"),
                             ("network", "ib0"))
            for k in range(4))
        self.assertWriteOK(srv.write(body.encode()))
        srv.stop()
        expected = [["c", "h", "n", scope, sid, first + 10 * k, 10, f32(k + 0.25)]
                    for scope, sid in (("filesystem", "/home"), ("filesystem", "/scratch/x.y"),
                                       ("network", "ib0"))
                    for k in range(4)]
        # a restart with a retention of 1 s archives that snapshot
        wait_for(lambda: int(time.time()) >= now + 2, timeout=5)
        b = self.server(retention="1s")
        files = self.wait_parquet("c", b)
        self.assertEqual(len(files), 1, files)
        self.assertParquet(files[0], expected)

    def test_delete_mode(self):
        """cleanup.mode "delete": same selection (by window end), files
        deleted, no Parquet; undecodable, WAL and other files stay."""
        now = int(time.time())
        lv = {"metrics": {"m": (10, now - 5 * DAY, [1.0, 2.0])}}
        h = os.path.join(self.ckpt, "c", "h")
        gone = [write_ckpt(self.ckpt, "c", "h", now - 5 * DAY, now - 4 * DAY, lv),
                write_ckpt(self.ckpt, "c", "h", now - 4 * DAY, now - 3 * DAY, lv, "json"),
                write_ckpt(self.ckpt, "c", "h2", now - 4 * DAY, now - 3 * DAY, lv)]
        keep = [write_ckpt(self.ckpt, "c", "h", now - 3 * DAY, now - 3600, lv),
                write_ckpt(self.ckpt, "c", "h", now - 3 * DAY + 1, now - 3600, lv, "json"),
                write_file(os.path.join(h, "%d.bin" % (now - 6 * DAY)), b"not a snapshot"),
                write_file(os.path.join(h, "%d.json" % (now - 6 * DAY)), b'{"metrics":{'),
                write_file(os.path.join(h, "current.wal"), struct.pack("<I", 0xCC1DA701)),
                write_file(os.path.join(h, "notes.txt"), b"x")]
        srv = self.server(retention="48h", mode="delete")
        self.wait_gone(gone, srv)
        self.assertExist(keep)
        self.assertEqual(glob.glob(os.path.join(self.base, "**", "*.parquet*"), recursive=True), [])
        self.assertTrue(srv.alive())

    def test_one_shot_delete(self):
        """-cleanup-checkpoints without num-workers: one pass, prints the
        summary, exits 0, the server is not started."""
        now = int(time.time())
        lv = {"metrics": {"m": (10, now - 5 * DAY, [1.0])}}
        gone = [write_ckpt(self.ckpt, "c", "h", now - 5 * DAY, now - 4 * DAY, lv),
                write_ckpt(self.ckpt, "c", "h2", now - 5 * DAY, now - 4 * DAY, lv, "json")]
        keep = [write_ckpt(self.ckpt, "c", "h", now - 3 * DAY, now - 60, lv),
                write_file(os.path.join(self.ckpt, "c", "h", "%d.bin.tmp" % (now - 7 * DAY)), b"x"),
                write_file(os.path.join(self.ckpt, "c", "h", "notes.txt"), b"x"),
                write_file(os.path.join(self.ckpt, "c", "h", "old.json"), b"{}"),
                write_file(os.path.join(self.ckpt, "c", "h", "current.wal"),
                           struct.pack("<I", 0xCC1DA701))]
        srv = self.server(retention="48h", mode="delete", start=False)
        with open(srv.config_path) as fh:
            self.assertNotIn("num-workers", fh.read())
        # The configured address is taken: a one-shot run must not listen.
        blocker = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(blocker.close)
        blocker.bind(("127.0.0.1", srv.port))
        blocker.listen(1)
        p = run_binary(["-config", srv.config_path, "-cleanup-checkpoints"], cwd=srv.tmp)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("Cleanup done: 2 checkpoint files deleted.", p.stdout.splitlines(), p.stdout)
        self.assertNotIn("Graceful shutdown", p.stdout)
        for path in gone:
            self.assertFalse(os.path.exists(path), path)
        self.assertExist(keep)
        self.assertFalse(os.path.exists(self.arch))

    def test_one_shot_archive(self):
        """-cleanup-checkpoints in archive mode: rows in byte order of
        (hostname, metric, scope, scope_id, timestamp) — "H3" < "h" < "h2",
        "M" < "m", scope_id "10" < "9" —, a sample in two files is written
        once with the value of the newer file (larger `to`), values keep
        float32 semantics, and a bigger host (30 000 rows) reads back
        intact."""
        now = int(time.time())
        t = now - 5 * DAY
        lv1 = {"metrics": {"m": (10, t, [1.0, None, 3.0]), "M": (10, t, [-2.5])},
               "children": {"hwthread2": {"metrics": {"m": (10, t, [0.7])}},
                            "socket9": {"metrics": {"m": (10, t, [9.0])}},
                            "socket10": {"metrics": {"m": (10, t, [10.0])}}}}
        lv_newer = {"metrics": {"m": (10, t + 10, [0.1, 0.2, None])}}   # overrides t+20
        lv2 = {"metrics": {"n": (10, now - 4 * DAY, [5.0])}}
        big_vals = [((i * 7919) % 10007 - 5003) * 1.37e-3 for i in range(10000)]
        big_vals[:4] = [3.4e38, -3.4e38, 1e-40, 123456789.123]
        big = {"metrics": {"m": (1, t, big_vals), "n": (1, t, big_vals[::-1])},
               "children": {"core5": {"metrics": {"m": (1, t + 5, big_vals)}}}}
        # UTF-8 names sort by bytes ("ü" after "h"); level names that are
        # not split (docs/file-formats.md); NaN patterns other than 0x7FC00000
        utf = {"metrics": {"métrique": (60, t, [1.0, b"\xff\xff\xff\xff", 2.0, b"\x01\x00\x80\x7f"])},
               "children": {"accelerator00000000:3b:00.0": {"metrics": {"m": (60, t, [0.5])}},
                            "gpu0": {"metrics": {"m": (60, t, [0.25])}},
                            "socketX": {"metrics": {"m": (60, t, [0.125])}},
                            "cpu12": {"metrics": {"m": (60, t, [b"\x00\x00\xc0\xff", 6.0])}}}}
        gone = [write_ckpt(self.ckpt, "c", "ü1", t, now - 4 * DAY, utf),
                write_ckpt(self.ckpt, "c", "h", t, now - 4 * DAY, lv1),
                write_ckpt(self.ckpt, "c", "h", t + 10, now - 4 * DAY + 100, lv_newer, "json"),
                write_ckpt(self.ckpt, "c", "h2", now - 4 * DAY, now - 3 * DAY, lv2, "json"),
                write_ckpt(self.ckpt, "c", "H3", t, now - 3 * DAY, big)]
        keep = [write_ckpt(self.ckpt, "c", "h", now - 3 * DAY, now - 60, lv2)]
        srv = self.server(retention="48h", start=False)
        t0 = int(time.time())
        p = run_binary(["-config", srv.config_path, "-cleanup-checkpoints"], cwd=srv.tmp, timeout=30)
        t1 = int(time.time())
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("Cleanup done: 5 checkpoint files archived to parquet.",
                      p.stdout.splitlines(), p.stdout)
        for path in gone:
            self.assertFalse(os.path.exists(path), path)
        self.assertExist(keep)
        files = parquet_files(os.path.join(self.arch, "c"))
        self.assertEqual(len(files), 1, all_files(self.arch))
        stem = int(os.path.basename(files[0])[:-len(".parquet")])
        self.assertTrue(t0 - R48 <= stem <= t1 - R48, stem)
        # the newer file wins where both have a value
        merged = {tuple(r[:6]): r for r in level_rows("c", "h", lv1)}
        merged.update({tuple(r[:6]): r for r in level_rows("c", "h", lv_newer)})
        expected = (list(merged.values()) + level_rows("c", "h2", lv2)
                    + level_rows("c", "H3", big) + level_rows("c", "ü1", utf))
        self.assertEqual(merged[("c", "h", "m", "node", "", t + 20)][7], f32(0.2))
        self.assertParquet(files[0], expected)

    def test_existing_archive_never_overwritten(self):
        """Two runs with the same cut-off second (two one-shot runs in a
        row): the second archive gets a name of its own; the first file is
        left as it was."""
        now = int(time.time())
        lv1 = {"metrics": {"m": (10, now - 5 * DAY, [1.0])}}
        lv2 = {"metrics": {"m": (10, now - 4 * DAY, [2.0])}}
        srv = self.server(retention="48h", start=False)
        write_ckpt(self.ckpt, "c", "h", now - 5 * DAY, now - 4 * DAY, lv1)
        p = run_binary(["-config", srv.config_path, "-cleanup-checkpoints"], cwd=srv.tmp)
        self.assertEqual(p.returncode, 0, p.stderr)
        first = parquet_files(os.path.join(self.arch, "c"))
        self.assertEqual(len(first), 1, all_files(self.arch))
        with open(first[0], "rb") as fh:
            content = fh.read()
        write_ckpt(self.ckpt, "c", "h", now - 4 * DAY, now - 3 * DAY, lv2)
        p = run_binary(["-config", srv.config_path, "-cleanup-checkpoints"], cwd=srv.tmp)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("Cleanup done: 1 checkpoint files archived to parquet.", p.stdout.splitlines())
        files = parquet_files(os.path.join(self.arch, "c"))
        self.assertEqual(len(files), 2, all_files(self.arch))
        with open(first[0], "rb") as fh:
            self.assertEqual(fh.read(), content, "the first archive was changed")
        second = [f for f in files if f != first[0]][0]
        self.assertParquet(first[0], level_rows("c", "h", lv1))
        self.assertParquet(second, level_rows("c", "h", lv2))

    def test_stale_tmp_removed(self):
        """A .parquet.tmp left by a crash is removed by the next run; no
        partial .parquet exists."""
        now = int(time.time())
        lv = {"metrics": {"m": (10, now - 5 * DAY, [1.0, 2.0])}}
        src = write_ckpt(self.ckpt, "c", "h", now - 5 * DAY, now - 4 * DAY, lv)
        # a host whose only old file has no sample gets no row group
        write_ckpt(self.ckpt, "c", "e", now - 5 * DAY, now - 4 * DAY,
                   {"metrics": {"m": (10, now - 5 * DAY, [None, None])}})
        stale = write_file(os.path.join(self.arch, "c", "%d.parquet.tmp" % (now - R48 - 3600)),
                           b"PAR1 half written")
        srv = self.server(retention="48h")
        files = self.wait_parquet("c", srv)
        self.wait_gone([src, stale], srv)
        self.assertEqual(all_files(os.path.join(self.arch, "c")), [os.path.basename(files[0])])
        self.assertParquet(files[0], level_rows("c", "h", lv))

    def test_unwritable_archive_keeps_files(self):
        """The archive cannot be created (a regular file where the cluster
        directory must be): checkpoint files stay, no Parquet, the server
        keeps running, other clusters are archived; after the path is fixed
        the next run archives them."""
        now = int(time.time())
        lv = {"metrics": {"m": (10, now - 5 * DAY, [1.0, 2.0])}}
        lv_ok = {"metrics": {"n": (10, now - 5 * DAY, [4.0])}}
        kept = [write_ckpt(self.ckpt, "c", "h", now - 5 * DAY, now - 4 * DAY, lv),
                write_ckpt(self.ckpt, "c", "h2", now - 5 * DAY, now - 4 * DAY, lv, "json")]
        ok = write_ckpt(self.ckpt, "ok", "h", now - 5 * DAY, now - 4 * DAY, lv_ok)
        blocker = write_file(os.path.join(self.arch, "c"), b"not a directory")
        srv = self.server(retention="48h")
        ok_files = self.wait_parquet("ok", srv)
        self.wait_gone([ok], srv)
        logged = wait_for(lambda: re.search(r"(?m)^<[0-3]>.*(archiv|cleanup)", srv.stderr()))
        self.assertTrue(logged, "no error logged:\n" + srv.stderr()[-3000:])
        self.assertExist(kept)
        self.assertEqual(all_files(self.arch), ["c", os.path.join("ok", os.path.basename(ok_files[0]))])
        self.assertTrue(srv.alive())
        self.assertParquet(ok_files[0], level_rows("ok", "h", lv_ok))
        srv.stop()
        os.unlink(blocker)
        self.restart(srv)
        files = self.wait_parquet("c", srv)
        self.wait_gone(kept, srv)
        self.assertEqual(len(files), 1, files)
        self.assertParquet(files[0], level_rows("c", "h", lv) + level_rows("c", "h2", lv))

    def test_undecodable_file_kept_and_logged(self):
        now = int(time.time())
        good_bin = {"metrics": {"m": (10, now - 5 * DAY, [1.0, 2.0])}}
        good_json = {"metrics": {"n": (10, now - 5 * DAY, [3.0])},
                     "children": {"socket1": {"metrics": {"m": (10, now - 5 * DAY, [4.0])}}}}
        good = [write_ckpt(self.ckpt, "c", "h", now - 5 * DAY, now - 4 * DAY, good_bin),
                write_ckpt(self.ckpt, "c", "h2", now - 5 * DAY, now - 4 * DAY, good_json, "json")]
        truncated = bin_bytes(now - 6 * DAY, now - 5 * DAY, good_bin)[:-5]
        bad = [write_file(os.path.join(self.ckpt, "c", "h", "%d.bin" % (now - 6 * DAY)), truncated),
               write_file(os.path.join(self.ckpt, "c", "h", "%d.json" % (now - 6 * DAY)),
                          b'{"metrics":{"m":{"frequency":10,"start":1,"data":[1.0,'),
               write_file(os.path.join(self.ckpt, "c", "h2", "%d.bin" % (now - 7 * DAY)),
                          b"\x00" * 40)]
        srv = self.server(retention="48h")
        files = self.wait_parquet("c", srv)
        self.wait_gone(good, srv)
        self.assertExist(bad)
        err = srv.stderr()
        for path in bad:   # by the cleanup, not only by the restore
            self.assertRegex(err, r"(?im)^.*(cleanup|archiv).*%s" % re.escape(os.path.basename(path)),
                             "the cleanup did not log the undecodable file")
        self.assertEqual(len(files), 1, files)
        self.assertParquet(files[0], level_rows("c", "h", good_bin) + level_rows("c", "h2", good_json))
        self.assertTrue(srv.alive())


# ---- retention in memory, node provider, memory cap ------------------------------------------------

class NativeArchiveTest(ArchiveCase):
    """The cases whose files the server writes itself, on the native formats:
    .ccms snapshots are archived like .bin ones."""
    GO_FORMATS = False
    test_server_written_snapshots_archived = ArchiveTest.test_server_written_bin_and_json_archived
    test_ingested_data_reaches_the_archive = ArchiveTest.test_ingested_data_reaches_the_archive
    test_sealed_data_archived_exactly = ArchiveTest.test_sealed_data_archived_exactly


def count_values(srv, host, frm, to, cluster="c"):
    """Non-null values of metric m on host in [frm, to); a host that is
    gone counts 0."""
    n = 0
    for e in srv.row("m", host, frm, to, cluster=cluster):
        if "error" in e:
            continue
        n += sum(1 for v in e.get("data") or [] if v is not None)
    return n


class RetentionTest(ArchiveCase):
    def test_retention_frees_old_buffers(self):
        """retention 4 s: every 2 s buffers that ended before now-4 s go;
        newer buffers of the same series and other series stay."""
        srv = self.server(retention="4s", metrics=METRICS_1S, cleanup={"mode": "delete"},
                          start=False)
        now = int(time.time())
        # one series with an old and a new buffer (1200 slots apart), one old
        # series, one new series
        self.write_past(srv, [series_lines("m", "mixed", now - 1300, [1.0] * 20),
                              series_lines("m", "mixed", now - 5, [2.0] * 40),
                              series_lines("m", "old", now - 100, [3.0] * 41),
                              series_lines("m", "new", now - 2, [4.0] * 40)])
        before = status_bytes(srv)
        self.assertEqual(count_values(srv, "old", now - 100, now - 59), 41)
        self.assertEqual(count_values(srv, "mixed", now - 1300, now - 1280), 20)
        gone = wait_for(lambda: count_values(srv, "old", now - 100, now - 59) == 0
                        and count_values(srv, "mixed", now - 1300, now - 1280) == 0)
        self.assertTrue(gone, "old buffers not freed within %.0f s\n%s" % (POLL, srv.stderr()[-2000:]))
        self.assertEqual(count_values(srv, "mixed", now - 5, now + 35), 40)
        self.assertEqual(count_values(srv, "new", now - 2, now + 38), 40)
        self.assertLess(status_bytes(srv), before)

    def test_node_provider_keeps_hosts_in_use(self):
        """main.backend-url + backend-token: hosts cc-backend reports in use
        keep their old data, the others lose it — also a host of the same
        name in another cluster. cc-backend v1.5.4's {"usedNodes": …} and
        the unwrapped form both work; an empty map excludes nothing."""
        wrapped = b'{"usedNodes": {"c": ["busy"]}}'
        answers = [wrapped, b'{"c": ["busy"]}', b'{"usedNodes": {}}', wrapped]
        tokens = ["s3cret", "s3cret", "s3cret", None]   # None: no backend-token configured
        backends = [FakeBackend(self, tok, (200, body)) for tok, body in zip(tokens, answers)]
        servers = []
        for i, be in enumerate(backends):
            main = {"backend-url": be.url}
            if be.token is not None:
                main["backend-token"] = be.token
            servers.append(self.server(retention="4s", metrics=METRICS_1S,
                                       cleanup={"mode": "delete"}, main=main, start=False,
                                       ckpt=os.path.join(self.base, "ckpt%d" % i)))
        now = int(time.time())
        old = (now - 100, now - 59)
        for srv in servers:
            self.write_past(srv, [series_lines("m", h, now - 100, [1.0] * 41, cluster=cluster)
                                  for cluster, h in (("c", "busy"), ("c", "idle"), ("o", "busy"))])
        for srv, be, body in zip(servers, backends, answers):
            if body == b'{"usedNodes": {}}':
                freed = [("c", "busy"), ("c", "idle"), ("o", "busy")]
            else:
                freed = [("c", "idle"), ("o", "busy")]
            gone = wait_for(lambda: all(count_values(srv, h, *old, cluster=c) == 0
                                        for c, h in freed))
            self.assertTrue(gone, "backend answer %s: %r not freed within %.0f s; requests %r\n%s"
                            % (body, freed, POLL, be.requests, srv.stderr()[-2000:]))
            if ("c", "busy") not in freed:
                self.assertEqual(count_values(srv, "busy", *old, cluster="c"), 41,
                                 "backend answer %s: host in use lost its data" % body)
            self.assertTrue(be.requests)
            for path, auth in be.requests:
                self.assertEqual(auth, None if be.token is None else "Bearer " + be.token)
                u = urllib.parse.urlsplit(path)
                self.assertEqual(u.path, "/api/jobs/used_nodes")
                ts = urllib.parse.parse_qs(u.query)["ts"]
                self.assertRegex(ts[0], r"^-?\d+$")
                if int(ts[0]) < now - 3600:
                    continue    # the restore of write_past's run with its long retention
                self.assertTrue(now - 4 - 2 <= int(ts[0]) <= int(time.time()) - 4, (ts, now))

    def test_emptied_hosts_are_pruned(self):
        """A host whose data retention freed completely disappears from the
        tree (for-all-nodes, debug), and so does a cluster left without
        hosts; a host in use stays with its data (upstream #509)."""
        be = FakeBackend(self, None, (200, b'{"usedNodes": {"c": ["busy"]}}'))
        srv = self.server(retention="4s", metrics=METRICS_1S, cleanup={"mode": "delete"},
                          main={"backend-url": be.url}, start=False)
        now = int(time.time())
        self.write_past(srv, [series_lines("m", h, now - 100, [1.0] * 10, cluster=cl)
                              for cl, h in (("c", "busy"), ("c", "idle"), ("gone", "x"))])

        def hosts(cluster):
            r = srv.query({"cluster": cluster, "from": now - 200, "to": now,
                           "for-all-nodes": ["m"], "queries": []})
            self.assertStatus(r, 200)
            return [q["host"] for q in json.loads(r.body).get("queries", [])]
        self.assertEqual(hosts("c"), ["busy", "idle"])
        pruned = wait_for(lambda: hosts("c") == ["busy"] and hosts("gone") == [])
        self.assertTrue(pruned, "not pruned within %.0f s: c %r, gone %r\n%s"
                        % (POLL, hosts("c"), hosts("gone"), srv.stderr()[-2000:]))
        self.assertEqual(count_values(srv, "busy", now - 100, now - 90), 10)
        dump = srv.debug().body.decode()
        self.assertIn('"busy"', dump)
        self.assertNotIn('"idle"', dump)
        self.assertNotIn('"gone"', dump)

    def test_nodes_in_use_keep_old_checkpoints_across_a_restart(self):
        """With a node provider, a restart loads every checkpoint file of the
        nodes in use, also those older than the retention, and the cleanup
        keeps them; other hosts get the cut-off (upstream #514). Without an
        answer from the provider: the cut-off for all, and the log says so."""
        now = int(time.time())
        old = (now - 5 * DAY) // 60 * 60
        level = {"metrics": {"cpu_load": (60, old, [1.5, 2.5, 3.5])}}
        files = {h: write_ckpt(self.ckpt, "c", h, old, old + 3600, level)
                 for h in ("busy", "idle")}
        be = FakeBackend(self, "tok", (200, b'{"usedNodes": {"c": ["busy"]}}'))
        srv = self.server(retention="48h", mode="delete",
                          main={"backend-url": be.url, "backend-token": "tok"})

        def loaded(h):
            rows = srv.row("cpu_load", h, old - 60, old + 600, cluster="c")
            return rows[0]["data"] if rows and "data" in rows[0] else []
        self.assertEqual(loaded("busy"), [1.5, 2.5, 3.5])
        self.assertEqual(loaded("idle"), [])
        self.wait_gone([files["idle"]], srv)            # the startup cleanup ran
        self.assertExist([files["busy"]])
        srv.stop()
        # the provider is down now: the cut-off applies to every host
        be.close()
        srv.start()
        self.assertEqual(loaded("busy"), [])
        self.assertRegex(srv.stderr(), r"(?m)^<4>.*node provider unavailable.*every host is "
                                       r"restored from the retention cut-off")

    def test_node_provider_failure_frees_anyway(self):
        """Backend answering 500, answering something that is not JSON, and
        down: retention still frees (all hosts) and the log says why."""
        be500 = FakeBackend(self, "t", (500, b'{"error":"boom"}'))
        bejunk = FakeBackend(self, "t", (200, b"<html>login</html>"))
        down = "http://127.0.0.1:%d" % free_port()
        urls = (be500.url, bejunk.url, down)
        servers = [self.server(retention="4s", metrics=METRICS_1S, cleanup={"mode": "delete"},
                               main={"backend-url": url, "backend-token": "t"}, start=False,
                               ckpt=os.path.join(self.base, "ckpt%d" % i))
                   for i, url in enumerate(urls)]
        now = int(time.time())
        for srv in servers:
            self.write_past(srv, [series_lines("m", h, now - 100, [1.0] * 41)
                                  for h in ("busy", "idle")])
        # what the log line must name: the status, the bad JSON, the address
        whys = ("500", "JSON", down.split("//")[1])
        for srv, why in zip(servers, whys):
            gone = wait_for(lambda: count_values(srv, "idle", now - 100, now - 59) == 0
                            and count_values(srv, "busy", now - 100, now - 59) == 0)
            self.assertTrue(gone, "not freed with backend %s\n%s" % (why, srv.stderr()[-2000:]))
            self.assertRegex(srv.stderr(), r"(?m)^<[0-4]>.*%s" % re.escape(why),
                             "the log does not say why the node provider failed")
        self.assertTrue(be500.requests)
        self.assertTrue(bejunk.requests)

    def test_memory_cap_frees_oldest_first(self):
        """memory-cap 0.0001 GB (100 000 bytes): the oldest data goes first,
        across hosts, until the store is under the cap; the log says how
        much was freed."""
        cap = 0.0001
        cap_bytes = 100000
        srv = self.server(retention=long_retention(), metrics=METRICS_1S, cap=cap,
                          cleanup={"mode": "delete"})
        now = int(time.time())
        per_host = 8 * 512                       # 8 full buffers
        hosts = ["h%02d" % k for k in range(12)]  # h00 newest, h11 oldest
        first = {h: now - (k + 1) * 10000 for k, h in enumerate(hosts)}
        # values that do not compress (about 3.5 bytes each encoded): ~14 KiB
        # per host, ~170 KB in all
        rng = random.Random(5)
        for h in reversed(hosts):
            values = [rng.random() * 1000 for _ in range(per_host)]
            self.assertWriteOK(srv.write(series_lines("m", h, first[h], values)))
        under = wait_for(lambda: status_bytes(srv) <= cap_bytes)
        self.assertTrue(under, "store.bytes %d still above %d\n%s"
                        % (status_bytes(srv), cap_bytes, srv.stderr()[-2000:]))
        counts = []
        for h in hosts:
            e = [x for x in srv.row("m", h, first[h], first[h] + per_host) if "error" not in x]
            data = e[0]["data"] if e else []
            present = [v is not None for v in data]
            if any(present):
                # within a host the newest buffers are kept: values form one
                # run that reaches the last sample
                k = present.index(True)
                self.assertTrue(all(present[k:]), "gaps in what is left of %s" % h)
                self.assertEqual(e[0]["to"], first[h] + per_host, h)
            counts.append(sum(present))
        self.assertEqual(counts[0], per_host, counts)      # the newest host is intact
        self.assertEqual(counts[-1], 0, counts)            # the oldest is gone
        for k in range(1, len(counts)):
            if counts[k] > 0:
                self.assertEqual(counts[k - 1], per_host,
                                 "newer data of %s freed before older data of %s: %r"
                                 % (hosts[k - 1], hosts[k], counts))
        self.assertRegex(srv.stderr(), r"(?im)^<[0-4]>.*memory.cap.*freed.*\d",
                         "no log line saying how much the memory cap freed")

    def test_memory_cap_zero_is_unlimited(self):
        """memory-cap 0 frees nothing (the Go store freed data here): data far
        older than a quarter of the retention stays."""
        srv = self.server(retention="48h", metrics=METRICS_1S, cap=0, cleanup={"mode": "delete"})
        now = int(time.time())
        old = now - 40 * 3600   # older than 0.25 R but inside R
        self.assertWriteOK(srv.write(series_lines("m", "h", old, [1.0] * 2048)))
        self.assertWriteOK(srv.write(series_lines("m", "h2", now - 100, [1.0] * 50)))
        before = status_bytes(srv)
        time.sleep(2.5)   # several cap checks (one per second)
        self.assertEqual(status_bytes(srv), before)
        self.assertEqual(count_values(srv, "h", old, old + 2048), 2048)
        self.assertEqual(count_values(srv, "h2", now - 100, now - 50), 50)


if __name__ == "__main__":
    unittest.main()
