"""What cc-backend's development line after v1.5.4 sends (docs/http-api.md,
docs/line-protocol.md): the request field "resample-algo" and the device
scopes "filesystem" and "network", through the real binary. Busy nodes across
a restart and pruning are in test_archive.py (they need the node provider).
"""
import json
import time
import unittest

from ccms import CCMSTestCase, f32, fmt3, start_server
from test_query import lttb

METRICS = {"m": {"frequency": 10, "aggregation": "avg"},
           "fs_read_bw": {"frequency": 10, "aggregation": "sum"},
           "ib_recv": {"frequency": 10, "aggregation": "avg"}}
N = 1207                     # more than the 1,000 points resampling needs


def values():
    """A random-walk-like series with NaN gaps: index 60..65 is a whole
    bucket of 6 without samples, 100 and 103 are single gaps."""
    out, v = [], 50.0
    for i in range(N):
        v += ((i * 7919) % 13 - 6) * 0.125
        out.append(None if 60 <= i < 66 or i in (100, 103) else round(v, 3))
    return out


def as_answer(v):
    """A value as the answer prints it (three decimals), None for null."""
    return None if v is None or v != v else float(fmt3(v))


class ResampleAlgoTest(CCMSTestCase):

    @classmethod
    def setUpClass(cls):
        cls.srv = start_server(cls, metrics=METRICS)
        cls.t0 = int(time.time()) - 10 * N - 100
        cls.data = values()
        body = "".join("m,cluster=c,hostname=h value=%r %d\n" % (v, cls.t0 + 10 * i)
                       for i, v in enumerate(cls.data) if v is not None)
        assert cls.srv.write(body.encode()).status == 200
        # a second host with only 20 points: never resampled
        short = "".join("m,cluster=c,hostname=short value=%d %d\n" % (i, cls.t0 + 10 * i)
                        for i in range(20))
        assert cls.srv.write(short.encode()).status == 200

    def query(self, algo, resolution=60, hosts=("h",), extra=None):
        req = {"cluster": "c", "from": self.t0, "to": self.t0 + 10 * N, "with-padding": False,
               "queries": [{"metric": "m", "host": h, "resolution": resolution} for h in hosts]}
        if algo is not None:
            req["resample-algo"] = algo
        req["queries"] += extra or []
        r = self.srv.query(req)
        self.assertStatus(r, 200)
        return json.loads(r.body)["results"]

    def test_average(self):
        entry = self.query("average")[0][0]
        self.assertEqual(entry["resolution"], 60)
        f = [float("nan") if v is None else f32(v) for v in self.data]
        want = []
        for i in range(N // 6):
            bucket = [x for x in f[6 * i:6 * i + 6] if x == x]
            want.append(as_answer(sum(bucket) / len(bucket)) if bucket else None)
        self.assertEqual(len(entry["data"]), N // 6)
        self.assertIsNone(entry["data"][10])        # samples 60..65: none
        self.assertEqual(entry["data"], want)

    def test_simple(self):
        entry = self.query("simple")[0][0]
        self.assertEqual(entry["resolution"], 60)
        want = [as_answer(f32(self.data[6 * i]) if self.data[6 * i] is not None else None)
                for i in range(N // 6)]
        self.assertEqual(entry["data"], want)

    def test_lttb_is_the_default(self):
        default = self.query(None)[0][0]
        for name in ("", "lttb"):
            self.assertEqual(self.query(name)[0][0], default, name)
        f = [float("nan") if v is None else f32(v) for v in self.data]
        self.assertEqual(default["data"], [as_answer(v) for v in lttb(f, N // 6)])
        self.assertEqual(default["resolution"], 60)

    def test_same_gate_for_every_algorithm(self):
        for algo in ("", "lttb", "average", "simple"):
            with self.subTest(algo=algo):
                rows = self.query(algo, hosts=("h", "short"))
                # a short series is returned as it is, at the native resolution
                self.assertEqual(rows[1][0]["resolution"], 10)
                self.assertEqual(rows[1][0]["data"], [float(i) for i in range(20)])
                # resolution not above the native one: unchanged
                entry = self.query(algo, resolution=10)[0][0]
                self.assertEqual((entry["resolution"], len(entry["data"])), (10, N))
                # not a multiple: the resampler's error
                entry = self.query(algo, resolution=25)[0][0]
                self.assertEqual(entry["error"], "new sampling frequency (25) must be a "
                                                 "multiple of old frequency (10)")

    def test_unknown_algorithm(self):
        rows = self.query("cubic", hosts=("h", "short", "nohost"),
                          extra=[{"metric": "nosuch", "host": "h"}])
        for row in rows[:2]:
            self.assertEqual(row, [{"error": "unknown resampler algorithm: cubic", "from": 0,
                                    "to": 0, "resolution": 0, "avg": 0, "min": 0, "max": 0}])
        self.assertEqual(rows[2], [])                # unknown hosts are still omitted
        self.assertEqual(rows[3][0]["error"], "[METRICSTORE]> unknown metric: nosuch")
        # the exact bytes, as upstream writes an error entry
        r = self.srv.query({"cluster": "c", "from": self.t0, "to": self.t0 + 100,
                            "resample-algo": "x\"y", "queries": [{"metric": "m", "host": "h"}]})
        self.assertEqual(r.body, b'{"results":[[{"error":"unknown resampler algorithm: x\\"y",'
                                 b'"from":0,"to":0,"resolution":0,"avg":0.00,"min":0.00,'
                                 b'"max":0.00}]]}\n')


class DeviceScopeTest(CCMSTestCase):
    """type=filesystem / type=network with mount points and interface names
    as ids, through the WAL (kill -9), snapshots (SIGTERM) and JSON
    checkpoints."""

    IDS = ["/home", "/scratch/a.b-c", "/"]

    def write(self, srv, now):
        lines = []
        for k in range(5):
            ts = now - 300 + 10 * k
            for j, fs in enumerate(self.IDS):
                lines.append("fs_read_bw,cluster=c,hostname=h1,type=filesystem,type-id=%s "
                             "value=%d %d\n" % (fs, 10 * j + k, ts))
            lines.append("ib_recv,cluster=c,hostname=h1,type=network,type-id=ib0 value=%d.5 %d\n"
                         % (k, ts))
            # type=node: host-level data, the subtype is not a level
            lines.append("m,cluster=c,hostname=h1,type=node,stype=filesystem,stype-id=/home "
                         "value=%d %d\n" % (k, ts))
        self.assertWriteOK(srv.write("".join(lines).encode()))

    def check(self, srv, now, msg):
        frm, to = now - 300, now - 250
        r = srv.query_json({"cluster": "c", "from": frm, "to": to, "with-padding": False,
                            "queries": [
                                {"metric": "fs_read_bw", "host": "h1", "type": "filesystem",
                                 "type-ids": ["/scratch/a.b-c", "/home", "/nope", "/"],
                                 "aggreg": False},
                                {"metric": "fs_read_bw", "host": "h1", "type": "filesystem",
                                 "type-ids": self.IDS, "aggreg": True},
                                {"metric": "ib_recv", "host": "h1", "type": "network",
                                 "type-ids": ["ib0"], "aggreg": False},
                                {"metric": "m", "host": "h1"}]})
        per_id, summed, ib, node = r["results"]
        # one entry per id in request order; an unknown id is omitted
        self.assertEqual([e["data"] for e in per_id],
                         [[10.0 + k for k in range(5)], [float(k) for k in range(5)],
                          [20.0 + k for k in range(5)]], msg)
        self.assertEqual(summed[0]["data"], [30.0 + 3 * k for k in range(5)], msg)
        self.assertEqual(ib[0]["data"], [k + 0.5 for k in range(5)], msg)
        self.assertEqual(node[0]["data"], [float(k) for k in range(5)], msg)
        dump = srv.debug("c:h1").body.decode()
        self.assertIn('"filesystem/home":{', dump)
        self.assertIn('"networkib0":{', dump)

    def test_through_wal_and_snapshots(self):
        for fmt in ("wal", "json"):
            with self.subTest(fmt=fmt):
                srv = start_server(self, metrics=METRICS,
                                   store={"checkpoints": {"file-format": fmt}})
                now = int(time.time())
                self.write(srv, now)
                self.check(srv, now, "live")
                if fmt == "wal":
                    srv.kill()
                    srv.start()
                    self.check(srv, now, "after kill -9")
                srv.stop()
                srv.start()
                self.check(srv, now, "after a clean restart")

    def test_only_cluster_and_host_are_paths(self):
        srv = start_server(self, metrics=METRICS)
        now = int(time.time())
        r = srv.write(("fs_read_bw,cluster=c,hostname=a/b,type=filesystem,type-id=/x value=1 %d\n"
                       "fs_read_bw,cluster=c/d,hostname=h,type=filesystem,type-id=/x value=1 %d\n"
                       "fs_read_bw,cluster=c,hostname=h,type=filesystem,type-id=/x value=1 %d\n"
                       % (now, now, now)).encode())
        self.assertErrorResponse(r, 400, contains="2 of 3 lines rejected (1 accepted)")
        self.assertIn(b"invalid host name", r.body)
        self.assertIn(b"invalid cluster name", r.body)


if __name__ == "__main__":
    unittest.main()
