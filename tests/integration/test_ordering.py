"""Arrival order never loses data (docs/data-model.md, docs/line-protocol.md):
a sample is accepted iff its time lies in [now - retention, now + future
tolerance], whatever its series already holds. Through the real binary, over
HTTP with 4 concurrent keep-alive connections posting whole timesteps of all
hosts, and over NATS with timesteps published newest first; durable across
kill -9 and a clean restart.
"""
import http.client
import json
import queue
import random
import threading
import time
import unittest

from ccms import CCMSTestCase, f32, start_server
from test_nats import NatsCase, NatsPublisher

METRICS = {"m": {"frequency": 10, "aggregation": "avg"},
           "u": {"frequency": 10, "aggregation": "sum"}}
HOSTS = 32
THREADS = 4                  # hwthread ids of "u" per host
STEPS = 240                  # timesteps of 10 s: 40 minutes


def walk(rng, n):
    """A random walk with 1 to 3 decimals, like a real gauge."""
    v, out = rng.uniform(10, 90), []
    for _ in range(n):
        v = max(0.0, v + rng.uniform(-2, 2))
        out.append(round(v, rng.choice((1, 2, 3))))
    return out


class Workload:
    """Whole timesteps of all hosts: STEPS request bodies for one cluster."""

    def __init__(self, cluster, base, seed):
        rng = random.Random(seed)
        self.cluster, self.base = cluster, base
        self.values = {}          # (host, metric, tid) -> [value per step]
        for h in range(HOSTS):
            self.values[("h%d" % h, "m", None)] = walk(rng, STEPS)
            for t in range(THREADS):
                self.values[("h%d" % h, "u", str(t))] = walk(rng, STEPS)

    def ts(self, step):
        return self.base + 10 * step

    def body(self, step):
        lines = []
        for (host, metric, tid), vals in self.values.items():
            tags = "%s,cluster=%s,hostname=%s" % (metric, self.cluster, host)
            if tid is not None:
                tags += ",type=hwthread,type-id=%s" % tid
            lines.append("%s value=%r %d\n" % (tags, vals[step], self.ts(step)))
        return "".join(lines).encode()

    def check(self, case, srv, msg):
        """Every sample reads back with its exact value (three decimals)."""
        keys = sorted(self.values, key=str)
        req = {"cluster": self.cluster, "from": self.base, "to": self.ts(STEPS),
               "with-padding": False, "with-stats": False,
               "queries": [dict({"metric": m, "host": h},
                                **({"type": "hwthread", "type-ids": [t]} if t else {}))
                           for h, m, t in keys]}
        r = srv.query(req)
        case.assertStatus(r, 200)
        rows = json.loads(r.body)["results"]
        bad = []
        for key, row in zip(keys, rows):
            want = [float("%.3f" % f32(v)) for v in self.values[key]]
            got = row[0]["data"] if row and "data" in row[0] else []
            if row and row[0].get("from") != self.base or got != want:
                bad.append("%s: from %s, %d points, first differences %s" % (
                    key, row[0].get("from") if row else None, len(got),
                    [(i, w, g) for i, (w, g) in enumerate(zip(want, got)) if w != g][:3]))
        case.assertEqual(bad, [], "%s: %d of %d series differ" % (msg, len(bad), len(keys)))


def post_concurrently(case, srv, bodies, connections=4):
    """Posts the bodies over `connections` keep-alive connections that take
    the next body from one queue, so requests overlap in time. Returns the
    statuses that were not 200."""
    work = queue.Queue()
    for b in bodies:
        work.put(b)
    failures, lock = [], threading.Lock()

    def sender():
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
        try:
            while True:
                try:
                    body = work.get_nowait()
                except queue.Empty:
                    return
                conn.request("POST", "/api/write", body=body)
                resp = conn.getresponse()
                data = resp.read()
                if resp.status != 200:
                    with lock:
                        failures.append((resp.status, data[:300]))
        finally:
            conn.close()

    threads = [threading.Thread(target=sender) for _ in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    case.assertFalse(any(t.is_alive() for t in threads), "a sender hung")
    return failures


class HttpOrderingTest(CCMSTestCase):

    def test_four_connections_in_order_and_shuffled(self):
        srv = start_server(self, metrics=METRICS, retention="2h")
        now = int(time.time())
        base = now - 10 * STEPS - 60         # all inside [now - retention, now]
        forward = Workload("fwd", base, seed=1)
        shuffled = Workload("shuf", base, seed=2)
        newest_first = Workload("back", base, seed=3)
        order = list(range(STEPS))
        random.Random(4).shuffle(order)
        bodies = ([forward.body(s) for s in range(STEPS)] +
                  [shuffled.body(s) for s in order] +
                  [newest_first.body(s) for s in reversed(range(STEPS))])
        self.assertEqual(post_concurrently(self, srv, bodies), [])
        for w in (forward, shuffled, newest_first):
            w.check(self, srv, w.cluster + " live")
        srv.kill()
        srv.start()
        for w in (forward, shuffled, newest_first):
            w.check(self, srv, w.cluster + " after kill -9")
        srv.stop()
        srv.start()
        for w in (forward, shuffled, newest_first):
            w.check(self, srv, w.cluster + " after a clean restart")

    def test_retention_window_bounds_what_is_accepted(self):
        srv = start_server(self, metrics=METRICS, retention="2h")
        now = int(time.time())
        t50, t60 = now - 50 * 60, now - 60 * 60
        self.assertWriteOK(srv.write(b"m,cluster=c,hostname=h value=1.5 %d\n" % t50))
        self.assertWriteOK(srv.write(b"m,cluster=c,hostname=h value=2.5 %d\n" % t60))
        too_old = now - 2 * 3600 - 120
        r = srv.write(b"m,cluster=c,hostname=h value=3.5 %d\n"
                      b"m,cluster=c,hostname=h value=4.5 %d\n" % (too_old, now - 30))
        self.assertErrorResponse(r, 400, contains="older than the retention window")
        self.assertIn(b"1 of 2 lines rejected (1 accepted)", r.body)
        row = srv.row("m", "h", t60 - 5, now + 10)
        data = self.assertOneEntry(row)["data"]
        self.assertEqual(data[0], 2.5)
        self.assertEqual(data[(t50 - t60) // 10], 1.5)
        self.assertEqual(data[-1 - (data[::-1].index(4.5))], 4.5)
        self.assertNotIn(3.5, data)
        status = json.loads(srv.raw("GET", "/api/status").body)
        self.assertEqual(status["ingest"]["rejected"], 1)


class NatsOrderingTest(NatsCase):

    def test_timesteps_published_newest_first(self):
        ns = self.nats(self).start()
        srv = start_server(self, metrics=METRICS, extra_top={"nats": {"address": ns.url()}},
                           store={"nats-subscriptions": [{"subscribe-to": "m.order",
                                                          "cluster-tag": "nord"}],
                                  "num-workers": 4})
        pub = NatsPublisher(ns.port)
        self.addCleanup(pub.close)
        self.wait_flowing(srv, pub, "m.order", "nord")
        now = int(time.time())
        w = Workload("nord", now - 10 * STEPS - 60, seed=5)
        for step in reversed(range(STEPS)):
            pub.pub("m.order", w.body(step))
        pub.pub("m.order", b"m,hostname=end value=1 %d\n" % (now - 30))
        pub.flush()
        self.wait_value(srv, "nord", "end", 1.0, ts=now - 30)
        w.check(self, srv, "NATS newest first")
        status = self.status(srv)["nats"]
        self.assertEqual(status["rejected"], 0)


if __name__ == "__main__":
    unittest.main()
