"""POST /api/free, GET /api/debug, GET /api/healthcheck
(the Go store's endpoint tests; docs/http-api.md "Free", "Debug",
"Healthcheck"; docs/compatibility.md)."""
import json
import time

from ccms import CCMSTestCase, lines, parse_debug, start_server


def samples(metric, host, ts_list, cluster="c", value=1, extra=""):
    return "".join("%s,cluster=%s,hostname=%s%s value=%s %d\n" % (metric, cluster, host, extra, value, t)
                   for t in ts_list)


class PoolBytesTest(CCMSTestCase):
    """pool_bytes in /api/status and ccms_store_pool_bytes in /metrics: the
    pages kept for buffer headers and plain parts. They grow with the
    buffers held, stay when /api/free drops the data (the store's bytes
    fall), and are taken again by the next buffers."""

    def test_pool_pages_are_kept_and_reused(self):
        srv = start_server(self)
        now = int(time.time()) // 10 * 10

        def status():
            r = srv.raw("GET", "/api/status")
            self.assertStatus(r, 200)
            return json.loads(r.body)["store"]

        def write_hosts(first):
            # 300 hosts x 60 samples: every host's series has a header and
            # a plain part of the steady size
            body = "".join("m,cluster=c,hostname=p%d value=%d %d\n" % (h, k, now - 10 * (60 - k))
                           for h in range(first, first + 300) for k in range(60))
            self.assertWriteOK(srv.write(body.encode()))

        empty = status()["pool_bytes"]
        write_hosts(0)
        held = status()
        self.assertGreater(held["pool_bytes"], empty)
        self.assertEqual(held["pool_bytes"] % 65536, 0)
        # 300 headers of 64 bytes and 300 plain parts of 160 bytes
        self.assertGreaterEqual(held["pool_bytes"] - empty, 300 * (64 + 160))
        metrics = srv.raw("GET", "/metrics").body.decode()
        self.assertIn("\nccms_store_pool_bytes %d\n" % held["pool_bytes"], metrics)

        r = srv.free(now + 3600, [["c"]])
        self.assertStatus(r, 200)
        self.assertEqual(r.body, b"buffers freed: 300\n")
        freed = status()
        self.assertLess(freed["bytes"], held["bytes"] - 300 * (64 + 160))
        self.assertEqual(freed["pool_bytes"], held["pool_bytes"])     # kept

        write_hosts(1000)                                             # other hosts, same amount
        again = status()
        self.assertEqual(again["pool_bytes"], held["pool_bytes"])     # reused, not grown
        self.assertEqual(again["buffers"], held["buffers"])


class FreeTest(CCMSTestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = start_server(cls)

    def write_seq(self, host, count, cluster="c"):
        body = "".join("m,cluster=%s,hostname=%s value=%d %d\n" % (cluster, host, k, 100 + 10 * k)
                       for k in range(count))
        self.assertWriteOK(self.srv.write(body.encode()))

    def assertFreed(self, r, n):
        self.assertStatus(r, 200)
        self.assertEqual(r.body, b"buffers freed: %d\n" % n)

    def test_W6_end_first_write(self):
        self.assertWriteOK(self.srv.write(lines("m,cluster=c,hostname=w6 value=1 95\n",
                                                "m,cluster=c,hostname=w6 value=2 105\n",
                                                "m,cluster=c,hostname=w6 value=3 115\n",
                                                "m,cluster=c,hostname=w6 value=4 125\n")))
        r = self.srv.debug("c:w6")
        self.assertEqual(r.body, b'{"data":{\n\t"m":[{"start":90,"len":4,"end":130}],\n}}\n')
        self.assertFreed(self.srv.free(135, [["c", "w6"]]), 0)
        self.assertFreed(self.srv.free(136, [["c", "w6"]]), 1)

    def test_F1_free_retention(self):
        self.write_seq("f1", 1025)
        self.assertFreed(self.srv.free(5220, [["c", "f1"]]), 0)
        self.assertFreed(self.srv.free(5221, [["c", "f1"]]), 1)
        e = self.assertOneEntry(self.srv.row("m", "f1", 0, 20000))
        self.assertEqual(e["from"], 5220)
        self.assertEqual(e["data"], [float(k) for k in range(512, 1025)])
        r = self.srv.debug("c:f1")
        self.assertEqual(r.body, b'{"data":{\n\t"m":[{"start":5215,"len":512,"end":10335},'
                                 b'{"start":10335,"len":1,"end":10345}],\n}}\n')

    def test_F2_free_all(self):
        self.write_seq("f2", 1025, cluster="f2c")
        self.assertFreed(self.srv.free(20000, [["f2c", "f2"]]), 3)
        self.assertEqual(self.srv.row("m", "f2", 0, 20000, cluster="f2c"), [])
        # the level itself stays (empty)
        r = self.srv.debug("f2c:f2")
        self.assertStatus(r, 200)
        self.assertEqual(r.body, b'{"data":{\n}}\n')
        # freeing the cluster removes the now empty host
        self.assertFreed(self.srv.free(20000, [["f2c"]]), 0)
        self.assertErrorResponse(self.srv.debug("f2c:f2"), 400)
        self.assertEqual(self.srv.debug("f2c").body, b'{"data":{\n}}\n')

    def test_free_subtree_removes_empty_children(self):
        body = (samples("m", "sub", [100], extra=",type=hwthread,type-id=0")
                + samples("m", "sub", [100], extra=",type=hwthread,type-id=1")
                + samples("m", "sub", [100000]))
        self.assertWriteOK(self.srv.write(body.encode()))
        self.assertFreed(self.srv.free(1000, [["c", "sub"]]), 2)
        r = self.srv.debug("c:sub")
        self.assertEqual(r.body, b'{"data":{\n\t"m":[{"start":99995,"len":1,"end":100005}],\n}}\n')

    def test_free_several_selectors_and_slash_path(self):
        self.write_seq("fs1", 3)
        self.write_seq("fs2", 3)
        self.write_seq("fs3", 3)
        r = self.srv.free(1000, [["c", "fs1"], ["c", "fs2"], ["c", "nohost"], ["zz"]], path="/api/free/")
        self.assertFreed(r, 2)
        self.assertEqual(len(self.srv.row("m", "fs3", 0, 1000)), 1)

    def test_free_never_creates_levels(self):
        before = self.srv.debug()
        self.assertStatus(before, 200)
        r = self.srv.free(1000, [["c", "ghost"], ["ghostcluster", "h", "hwthread0"], ["c", "w6", "sub", "x"]])
        self.assertFreed(r, 0)
        after = self.srv.debug()
        self.assertEqual(parse_debug(after.body), parse_debug(before.body))
        self.assertErrorResponse(self.srv.debug("c:ghost"), 400)
        self.assertErrorResponse(self.srv.debug("ghostcluster"), 400)

    def test_free_empty_bodies(self):
        self.assertFreed(self.srv.free(1, body=b"[]"), 0)
        self.assertFreed(self.srv.free(1, body=b"null"), 0)
        self.assertFreed(self.srv.free(1, body=b"[[]]"), 0)

    def test_free_to_missing(self):
        for path in ("/api/free", "/api/free?to=", "/api/free?x=1"):
            with self.subTest(path=path):
                r = self.srv.raw("POST", path, b'[["c","h"]]')
                self.assertErrorResponse(r, 400, error="'to' is a required query parameter")

    def test_free_to_not_integer(self):
        for to in ("x", "1.5", "12a", "99999999999999999999", " 1"):
            with self.subTest(to=to):
                r = self.srv.free(to, [["c", "h"]])
                self.assertErrorResponse(r, 400)

    def test_free_bad_body(self):
        for body in (b'{"a":1}', b"[[1]]", b"[1]", b'"x"', b"[[\"a\",1]]", b"[", b"nonsense", b""):
            with self.subTest(body=body):
                r = self.srv.free(1000, body=body)
                self.assertStatus(r, 400)
                self.assertTrue(r.headers.get("Content-Type", "").startswith("text/plain"),
                                r.headers.get("Content-Type"))
                self.assertTrue(r.body.endswith(b"\n"))
                self.assertGreater(len(r.body), 1)


class DebugTest(CCMSTestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = start_server(cls)
        body = (samples("m", "h", [100], cluster="dbgc")
                + samples("m", "h", [100, 110], cluster="dbgc", extra=",type=hwthread,type-id=0"))
        r = cls.srv.write(body.encode(), params="cluster=dbgc")
        assert r.status == 200, r

    def test_dump_with_selector(self):
        r = self.srv.debug("dbgc")
        self.assertStatus(r, 200)
        self.assertTrue(r.headers.get("Content-Type", "").startswith("application/json"))
        self.assertEqual(r.body, b'{"data":{\n'
                                 b'\t"h":{\n'
                                 b'\t\t"m":[{"start":95,"len":1,"end":105}],\n'
                                 b'\t\t"hwthread0":{\n'
                                 b'\t\t\t"m":[{"start":95,"len":2,"end":115}],\n'
                                 b'\t\t},\n'
                                 b'\t},\n'
                                 b'}}\n')
        r = self.srv.debug("dbgc:h:hwthread0")
        self.assertEqual(r.body, b'{"data":{\n\t"m":[{"start":95,"len":2,"end":115}],\n}}\n')

    def test_dump_whole_tree(self):
        for r in (self.srv.debug(), self.srv.debug(""), self.srv.raw("GET", "/api/debug/")):
            self.assertStatus(r, 200)
            self.assertTrue(r.body.startswith(b'{"data":{\n'), r.body[:50])
            self.assertTrue(r.body.endswith(b"\n}}\n"), r.body[-50:])
            self.assertIn(b'\t"dbgc":{\n\t\t"h":{\n', r.body)
            tree = parse_debug(r.body)["data"]
            self.assertEqual(tree["dbgc"]["h"]["hwthread0"]["m"], [{"start": 95, "len": 2, "end": 115}])

    def test_not_found(self):
        r = self.srv.debug("dbgc:nohost")
        self.assertErrorResponse(r, 400, error='[METRICSTORE]> not found: []string{"dbgc", "nohost"}')
        r = self.srv.debug("nocluster")
        self.assertErrorResponse(r, 400, error='[METRICSTORE]> not found: []string{"nocluster"}')

    def test_debug_does_not_create(self):
        self.srv.debug("dbgc:h:newchild")
        r = self.srv.debug("dbgc:h")
        self.assertNotIn(b"newchild", r.body)


METRICS4 = ["load", "mem_used", "cpu_user", "cpu_system"]
HM_OK = '{"degraded":[],"missing":[]}'


class HealthTest(CCMSTestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = start_server(cls, metrics={m: {"frequency": 10, "aggregation": "avg"} for m in METRICS4})
        now = cls.now = int(time.time())
        recent = list(range(now - 100, now + 1, 10))
        stale = list(range(now - 150, now - 99, 10))
        body = ""
        for m in METRICS4:
            body += samples(m, "node001", recent, cluster="testcluster")
            body += samples(m, "node005", stale, cluster="testcluster")
        for m in ("load", "mem_used"):
            body += samples(m, "node002", recent, cluster="testcluster")
            body += samples(m, "node003", recent, cluster="testcluster")
        for m in ("cpu_user", "cpu_system"):
            body += samples(m, "node002", stale, cluster="testcluster")
        body += samples("load", "testnode", recent, cluster="testcluster")
        body += samples("mem_used", "testnode", stale, cluster="testcluster")
        r = cls.srv.write(body.encode())
        assert r.status == 200, r

    def health(self, nodes, metrics, cluster="testcluster"):
        r = self.srv.health({"cluster": cluster, "nodes": nodes, "metric-names": metrics})
        self.assertStatus(r, 200)
        self.assertTrue(r.headers.get("Content-Type", "").startswith("application/json"))
        self.assertTrue(r.body.endswith(b"}\n"))
        return r.body.decode()

    def state(self, node, metrics):
        body = self.health([node], metrics)
        return json.loads(body)[node]

    @staticmethod
    def hm(degraded, missing):
        return json.dumps({"degraded": degraded, "missing": missing}, separators=(",", ":"))

    def test_H1_all_healthy(self):
        self.assertEqual(self.state("node001", METRICS4), {"State": "full", "HealthMetrics": HM_OK})

    def test_H2_some_stale(self):
        self.assertEqual(self.state("node002", METRICS4),
                         {"State": "partial", "HealthMetrics": self.hm(["cpu_user", "cpu_system"], [])})

    def test_H3_some_missing(self):
        self.assertEqual(self.state("node003", METRICS4),
                         {"State": "partial", "HealthMetrics": self.hm([], ["cpu_user", "cpu_system"])})

    def test_H4_H8_node_not_found(self):
        self.assertEqual(self.state("node004", METRICS4), {"State": "failed", "HealthMetrics": ""})
        self.assertEqual(self.state("nonexistent", ["load"]), {"State": "failed", "HealthMetrics": ""})
        body = self.health(["node001"], ["load"], cluster="nocluster")
        self.assertEqual(json.loads(body), {"node001": {"State": "failed", "HealthMetrics": ""}})

    def test_H5_all_stale(self):
        self.assertEqual(self.state("node005", METRICS4),
                         {"State": "failed", "HealthMetrics": self.hm(METRICS4, [])})

    def test_H6_mixed_nodes(self):
        body = self.health(["node001", "node002", "node003", "node004", "node005"], ["load", "mem_used"])
        full = '{"State":"full","HealthMetrics":"{\\"degraded\\":[],\\"missing\\":[]}"}'
        stale = ('{"State":"failed","HealthMetrics":"{\\"degraded\\":[\\"load\\",\\"mem_used\\"],'
                 '\\"missing\\":[]}"}')
        self.assertEqual(body, '{"node001":%s,"node002":%s,"node003":%s,"node004":'
                               '{"State":"failed","HealthMetrics":""},"node005":%s}\n'
                         % (full, full, full, stale))

    def test_H7_mixed_metrics(self):
        self.assertEqual(self.state("testnode", ["load", "mem_used", "cpu_user"]),
                         {"State": "partial", "HealthMetrics": self.hm(["mem_used"], ["cpu_user"])})

    def test_H9_only_healthy_metric_byte_exact(self):
        body = self.health(["testnode"], ["load"])
        self.assertEqual(body, '{"testnode":{"State":"full","HealthMetrics":'
                               '"{\\"degraded\\":[],\\"missing\\":[]}"}}\n')

    def test_H10_recent(self):
        now = int(time.time())
        self.assertWriteOK(self.srv.write(samples("load", "n10", range(now - 30, now + 1, 10),
                                                  cluster="testcluster").encode()))
        self.assertEqual(self.state("n10", ["load"]), {"State": "full", "HealthMetrics": HM_OK})

    def test_H11_stale_beyond_threshold(self):
        now = int(time.time())
        self.assertWriteOK(self.srv.write(samples("load", "n11", range(now - 200, now - 99, 10),
                                                  cluster="testcluster").encode()))
        self.assertEqual(self.state("n11", ["load"]),
                         {"State": "failed", "HealthMetrics": self.hm(["load"], [])})

    def test_H12_threshold_boundary(self):
        # rule: now - (start + f*len) <= 5f. A single sample at t: end = t + 5.
        # healthy side with a 10 s margin (t = now-45: 40 <= 50) ...
        now = int(time.time())
        self.assertWriteOK(self.srv.write(samples("load", "n12a", [now - 45], cluster="testcluster").encode()))
        self.assertEqual(self.state("n12a", ["load"]), {"State": "full", "HealthMetrics": HM_OK})
        # ... and just beyond (t = now-56: 51 > 50; only grows with time)
        self.assertWriteOK(self.srv.write(samples("load", "n12b", [now - 56], cluster="testcluster").encode()))
        self.assertEqual(self.state("n12b", ["load"]),
                         {"State": "failed", "HealthMetrics": self.hm(["load"], [])})

    def test_H13_never_written_metric_on_existing_node(self):
        self.assertEqual(self.state("node003", ["cpu_user"]),
                         {"State": "failed", "HealthMetrics": self.hm([], ["cpu_user"])})
        self.assertEqual(self.state("node003", ["load", "cpu_user"]),
                         {"State": "partial", "HealthMetrics": self.hm([], ["cpu_user"])})

    def test_unconfigured_metric_is_missing(self):
        self.assertEqual(self.state("node001", ["load", "nosuch"]),
                         {"State": "partial", "HealthMetrics": self.hm([], ["nosuch"])})

    def test_subtree(self):
        now = int(time.time())
        body = (samples("load", "sub1", [now], cluster="testcluster", extra=",type=hwthread,type-id=0")
                + samples("load", "sub2", [now], cluster="testcluster")
                + samples("load", "sub2", [now - 200], cluster="testcluster", extra=",type=hwthread,type-id=0"))
        self.assertWriteOK(self.srv.write(body.encode()))
        # only below the node: found -> healthy
        self.assertEqual(self.state("sub1", ["load"]), {"State": "full", "HealthMetrics": HM_OK})
        # one stale head buffer anywhere in the subtree -> degraded
        self.assertEqual(self.state("sub2", ["load"]),
                         {"State": "failed", "HealthMetrics": self.hm(["load"], [])})

    def test_empty_lists_and_sorted_unique_keys(self):
        self.assertEqual(self.health([], METRICS4), "{}\n")
        self.assertEqual(self.health(None, METRICS4), "{}\n")
        self.assertEqual(self.state("node001", []), {"State": "full", "HealthMetrics": HM_OK})
        body = self.health(["node005", "node001", "node004", "node001"], ["load"])
        self.assertEqual(list(json.loads(body)), ["node001", "node004", "node005"])
        self.assertTrue(body.startswith('{"node001":{"State":"full","HealthMetrics":'), body)

    def test_bad_requests(self):
        r = self.srv.health(b"")
        self.assertErrorResponse(r, 400, error="parsing request body failed: EOF")
        for body in (b'{"cluster":"testcluster","nodes":["node001"],"metric-names":["load"],"bogus":1}',
                     b'{"cluster":"testcluster","node":["node001"]}',
                     b"{", b"nonsense", b'{"nodes":"node001"}', b'{"cluster":1}',
                     b'{"metric-names":[1]}', b"[]"):
            with self.subTest(body=body):
                r = self.srv.health(body)
                err = self.assertErrorResponse(r, 400)
                self.assertTrue(err.startswith("parsing request body failed: "), err)
        r = self.srv.raw("GET", "/api/healthcheck?cluster=testcluster&node=node001")
        self.assertErrorResponse(r, 400, error="parsing request body failed: EOF")
