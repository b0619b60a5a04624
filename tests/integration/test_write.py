"""POST /api/write (docs/line-protocol.md, docs/compatibility.md)."""
import json
import re
import time

from ccms import CCMSTestCase, lines, parse_debug, start_server

METRICS = {
    "m": {"frequency": 10, "aggregation": "avg"},
    "cpu_load": {"frequency": 60, "aggregation": None},
    "flops_any": {"frequency": 60, "aggregation": "sum"},
    "mem_bw": {"frequency": 60, "aggregation": "sum"},
    "acc_power": {"frequency": 60, "aggregation": "sum"},
    "x": {"frequency": 60, "aggregation": None},
    "mem_used": {"frequency": 60, "aggregation": None},
    "nfs4_read": {"frequency": 60, "aggregation": None},
}

T = 1725827464          # a time in seconds (2024-09-08)


class WriteTest(CCMSTestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = start_server(cls, metrics=METRICS)

    # ---- helpers --------------------------------------------------------

    def tree(self, selector=None):
        r = self.srv.debug(selector)
        self.assertStatus(r, 200)
        return parse_debug(r.body)["data"]

    def assertNotFound(self, selector):
        r = self.srv.debug(selector)
        self.assertErrorResponse(r, 400)

    def entry(self, metric, host, frm, to, cluster, **kw):
        return self.assertOneEntry(self.srv.row(metric, host, frm, to, cluster=cluster, **kw))

    # ---- line-protocol example ------------------------------------------------

    def test_ingest_example(self):
        body = lines("cpu_load,hostname=a0124,type=node value=35.0 %d\n" % T,
                     "flops_any,hostname=a0124,type=hwthread,type-id=0 value=12.5 %d\n" % T,
                     "flops_any,hostname=a0124,type=hwthread,type-id=1 value=7i %d\n" % T)
        r = self.srv.write(body, path="/api/write/", params="cluster=alex")
        self.assertWriteOK(r)
        self.assertTrue(r.headers.get("Content-Type", "").startswith("application/json"))
        tree = self.tree("alex:a0124")
        self.assertEqual(set(tree), {"cpu_load", "hwthread0", "hwthread1"})
        self.assertEqual(set(tree["hwthread0"]), {"flops_any"})
        self.assertEqual(set(tree["hwthread1"]), {"flops_any"})
        self.assertEqual(self.entry("cpu_load", "a0124", T - 60, T + 60, "alex")["data"], [35.0])
        row = self.srv.row("flops_any", "a0124", T - 60, T + 60, cluster="alex",
                           type="hwthread", type_ids=["0", "1"])
        self.assertEqual([e["data"] for e in row], [[12.5], [7.0]])
        r = self.srv.query({"cluster": "alex", "from": T, "to": T + 60, "with-padding": False,
                            "queries": [{"metric": "flops_any", "host": "a0124", "type": "hwthread",
                                         "type-ids": ["1"]}]})
        self.assertIn(b'"data":[7.000]', r.body)

    # ---- ?cluster= -------------------------------------------------------------

    def test_cluster_param_percent_decoded(self):
        r = self.srv.write(lines("cpu_load,hostname=h value=1 %d\n" % T), params="cluster=my%20cl")
        self.assertWriteOK(r)
        self.assertIn("h", self.tree("my cl"))
        self.assertNotFound("my%20cl")
        self.assertEqual(self.entry("cpu_load", "h", T, T + 60, "my cl")["data"], [1.0])

    def test_cluster_param_with_other_params(self):
        r = self.srv.write(lines("cpu_load,hostname=h value=2 %d\n" % T), params="foo=1&cluster=cp2&x")
        self.assertWriteOK(r)
        self.assertEqual(self.entry("cpu_load", "h", T, T + 60, "cp2")["data"], [2.0])

    def test_cluster_tag_overrides_param(self):
        r = self.srv.write(lines("cpu_load,cluster=tagged,hostname=h value=3 %d\n" % T),
                           params="cluster=param")
        self.assertWriteOK(r)
        self.assertIn("h", self.tree("tagged"))
        self.assertNotFound("param")

    def test_no_cluster_at_all_is_rejected(self):
        r = self.srv.write(lines("cpu_load,hostname=nocluster value=3 %d\n" % T))
        self.assertErrorResponse(r, 400)
        self.assertNotIn("nocluster", json.dumps(self.tree()))

    def test_no_host_is_rejected(self):
        r = self.srv.write(lines("cpu_load,cluster=nohostcl value=3 %d\n" % T))
        self.assertErrorResponse(r, 400)
        self.assertNotFound("nohostcl")

    # ---- tag -> path mapping (docs/line-protocol.md) --------------------------

    def test_path_mapping(self):
        cases = [
            ("cpu_load,cluster=pm1,hostname=a0124,type=node", None, ["a0124"], "cpu_load"),
            ("cpu_load,hostname=a0124,type=node", "pm2", ["a0124"], "cpu_load"),
            ("flops_any,cluster=pm3,hostname=a0124,type=hwthread,type-id=5", None,
             ["a0124", "hwthread5"], "flops_any"),
            ("mem_bw,cluster=pm4,host=a0124,type-id=1,type=socket", None,
             ["a0124", "socket1"], "mem_bw"),
            ("acc_power,cluster=pm5,hostname=a0124,type=accelerator,type-id=00000000:49:00.0", None,
             ["a0124", "accelerator00000000:49:00.0"], "acc_power"),
            ("x,cluster=pm6,hostname=a0124,type=socket,type-id=0,stype=core,stype-id=3", None,
             ["a0124", "socket0", "core3"], "x"),
            # docs/line-protocol.md: type=node puts the sample at host level, type-id ignored
            ("mem_used,cluster=pm7,hostname=a0124,type=node,type-id=0", None, ["a0124"], "mem_used"),
            ("nfs4_read,cluster=pm8,hostname=a0124,type=node,stype=filesystem,stype-id=/home", None,
             ["a0124"], "nfs4_read"),
            # hostname and host: the later one wins
            ("cpu_load,cluster=pm9,hostname=first,host=second", None, ["second"], "cpu_load"),
            ("cpu_load,cluster=pm10,host=first,hostname=second", None, ["second"], "cpu_load"),
            # other tags are ignored
            ("cpu_load,cluster=pm11,hostname=a0124,unit=load,function=x", None, ["a0124"], "cpu_load"),
        ]
        for tags, default, path, metric in cases:
            with self.subTest(line=tags):
                r = self.srv.write(("%s value=1 %d\n" % (tags, T)).encode(),
                                   params=("cluster=" + default) if default else None)
                self.assertWriteOK(r)
                cluster = default or re.search(r"cluster=([^,]+)", tags).group(1)
                tree = self.tree(cluster)
                self.assertEqual(list(tree), [path[0]], tree)
                node = tree
                for name in path:
                    node = node[name]
                self.assertEqual(list(node), [metric], tree)
                self.assertEqual(len(node[metric]), 1)

    def test_type_node_type_id_reads_at_host_level(self):
        r = self.srv.write(lines("mem_used,cluster=tn,hostname=h,type=node,type-id=0 value=5 %d\n" % T,
                                 "mem_used,cluster=tn,hostname=h,type=node,type-id=1 value=6 %d\n" % (T + 60)))
        self.assertWriteOK(r)
        e = self.entry("mem_used", "h", T, T + 120, "tn")
        self.assertEqual(e["data"], [5.0, 6.0])

    def test_cluster_and_host_resolved_per_line(self):
        # docs/line-protocol.md: no leakage of cluster/host from a previous line
        body = lines("cpu_load,cluster=pl_other,hostname=h value=1 %d\n" % T,
                     "cpu_load,hostname=h value=2 %d\n" % T)
        self.assertWriteOK(self.srv.write(body, params="cluster=pl_default"))
        self.assertEqual(self.entry("cpu_load", "h", T, T + 60, "pl_other")["data"], [1.0])
        self.assertEqual(self.entry("cpu_load", "h", T, T + 60, "pl_default")["data"], [2.0])

    def test_escapes_crlf_comments_blank_lines(self):
        body = (b"# a comment\n"
                b"\n"
                b"   \n"
                b"cpu_load,cluster=esc,hostname=a\\ b value=1 %d\r\n"
                b"  cpu_load,cluster=esc,hostname=c\\,d value=2 %d\n"
                b"cpu_load,cluster=esc,hostname=e\\=f value=3 %d" % (T, T, T))  # no final newline
        self.assertWriteOK(self.srv.write(body))
        self.assertEqual(set(self.tree("esc")), {"a b", "c,d", "e=f"})
        self.assertEqual(self.entry("cpu_load", "a b", T, T + 60, "esc")["data"], [1.0])
        self.assertEqual(self.entry("cpu_load", "e=f", T, T + 60, "esc")["data"], [3.0])

    def test_value_kinds(self):
        body = lines("cpu_load,cluster=vk,hostname=i value=7i %d\n" % T,
                     "cpu_load,cluster=vk,hostname=u value=8u %d\n" % T,
                     "cpu_load,cluster=vk,hostname=f value=-2.5e1 %d\n" % T,
                     "cpu_load,cluster=vk,hostname=last value=1,value=2 %d\n" % T)
        self.assertWriteOK(self.srv.write(body))
        for host, v in (("i", 7.0), ("u", 8.0), ("f", -25.0), ("last", 2.0)):
            self.assertEqual(self.entry("cpu_load", host, T, T + 60, "vk")["data"], [v], host)

    # ---- timestamps --------------------------------------------------------------

    def test_precision_detected_by_magnitude(self):
        stamps = {"s": "1725827464", "ms": "1725827464642", "us": "1725827464642231",
                  "ns": "1725827464642231296"}
        body = "".join("cpu_load,cluster=prec,hostname=%s value=1 %s\n" % (h, ts)
                       for h, ts in stamps.items()).encode()
        self.assertWriteOK(self.srv.write(body))
        for host in stamps:
            with self.subTest(host=host):
                e = self.entry("cpu_load", host, T - 600, T + 600, "prec")
                self.assertEqual(e["from"], T)
                self.assertEqual(e["data"], [1.0])

    def test_precision_parameter(self):
        cases = [("s", "1725827464"), ("ms", "1725827464642"), ("us", "1725827464642231"),
                 ("ns", "1725827464642231296"),
                 # a small number with an explicit unit is not reinterpreted
                 ("ms", "1725827464000")]
        for i, (prec, ts) in enumerate(cases):
            with self.subTest(precision=prec, ts=ts):
                host = "p%d" % i
                r = self.srv.write(("cpu_load,cluster=precp,hostname=%s value=2 %s\n" % (host, ts)).encode(),
                                   params="precision=" + prec)
                self.assertWriteOK(r)
                e = self.entry("cpu_load", host, T - 600, T + 600, "precp")
                self.assertEqual(e["from"], T)
                self.assertEqual(e["data"], [2.0])

    def test_precision_parameter_overrides_detection(self):
        # seconds magnitude declared as ms -> 1970, which is stored (not in T's window)
        r = self.srv.write(b"cpu_load,cluster=prec2,hostname=h value=3 1725827464\n",
                           params="precision=ms")
        self.assertWriteOK(r)
        e = self.entry("cpu_load", "h", 1725000, 1726000, "prec2")
        self.assertEqual(e["from"], 1725827)
        # ms magnitude declared as seconds -> far future -> rejected
        r = self.srv.write(b"cpu_load,cluster=prec3,hostname=h value=3 1725827464642\n",
                           params="precision=s")
        self.assertErrorResponse(r, 400)
        self.assertNotFound("prec3")

    def test_invalid_precision_parameter(self):
        r = self.srv.write(b"cpu_load,cluster=prec4,hostname=h value=3 1725827464\n",
                           params="precision=fortnight")
        self.assertEqual(r.status // 100, 4, r)

    def test_missing_timestamp_is_receive_time(self):
        before = int(time.time())
        body = lines("cpu_load,cluster=mts,hostname=with value=1 %d\n" % T,
                     "cpu_load,cluster=mts,hostname=without value=2\n",
                     "cpu_load,cluster=mts,hostname=without2 value=3\n")
        self.assertWriteOK(self.srv.write(body))
        after = int(time.time())
        for host, v in (("without", 2.0), ("without2", 3.0)):
            e = self.entry("cpu_load", host, before - 3600, after + 3600, "mts")
            self.assertEqual(e["data"], [v])
            self.assertGreaterEqual(e["from"], before)
            self.assertLessEqual(e["from"], after)
        # the timed line kept its own timestamp
        self.assertEqual(self.entry("cpu_load", "with", T, T + 60, "mts")["data"], [1.0])

    # ---- bad lines ---------------------------------------------------------------

    def test_bad_lines_valid_ones_stored(self):
        body = lines("cpu_load,cluster=bl,hostname=h1 value=1 %d\n" % T,
                     "cpu_load,cluster=bl,hostname=h2,type= value=2 %d\n" % T,
                     "cpu_load,cluster=bl,hostname=h3 value=3 %d\n" % T,
                     "cpu_load,cluster=bl,hostname=h4 value=\"str\" %d\n" % T,
                     "cpu_load,cluster=bl,hostname=h5 value=5 %d\n" % T)
        r = self.srv.write(body)
        err = self.assertErrorResponse(r, 400)
        self.assertIn("rejected", err)
        self.assertIn("accepted", err)
        self.assertRegex(err, r"\b2\b.*rejected|rejected.*\b2\b")
        self.assertRegex(err, r"\b3\b.*accepted|accepted.*\b3\b")
        self.assertRegex(err, r"line 2\b")
        self.assertRegex(err, r"line 4\b")
        self.assertNotRegex(err, r"line [135]\b")
        self.assertEqual(set(self.tree("bl")), {"h1", "h3", "h5"})
        for h, v in (("h1", 1.0), ("h3", 3.0), ("h5", 5.0)):
            self.assertEqual(self.entry("cpu_load", h, T, T + 60, "bl")["data"], [v])

    def test_bad_line_after_many_good_lines(self):
        good = "".join("cpu_load,cluster=bl2,hostname=h value=%d %d\n" % (k, T + 60 * k)
                       for k in range(50))
        body = (good + "cpu_load,cluster=bl2,hostname=h other=1 %d\n" % T + good).encode()
        r = self.srv.write(body)
        err = self.assertErrorResponse(r, 400)
        self.assertRegex(err, r"line 51\b")
        self.assertRegex(err, r"\b100\b")   # accepted count
        e = self.entry("cpu_load", "h", T, T + 60 * 50, "bl2")
        self.assertEqual(e["data"], [float(k) for k in range(50)])

    def test_invalid_names_rejected_nothing_created(self):
        long_name = "n" * 256
        bad = [
            "cpu_load,cluster=..,hostname=h",
            "cpu_load,cluster=.,hostname=h",
            "cpu_load,cluster=a/b,hostname=h",
            "cpu_load,cluster=a\\b,hostname=h",
            "cpu_load,cluster=inv,hostname=..",
            "cpu_load,cluster=inv,hostname=.",
            "cpu_load,cluster=inv,hostname=x/y",
            "cpu_load,cluster=inv,hostname=..\\x",
            "cpu_load,cluster=inv,hostname=" + long_name,
            "cpu_load,cluster=" + long_name + ",hostname=h",
            "flops_any,cluster=inv,hostname=h,type=hwthread,type-id=" + "9" * 250,
            "x,cluster=inv,hostname=h,type=socket,type-id=0,stype=core,stype-id=" + "3" * 252,
        ]
        before = self.tree()
        for tags in bad:
            with self.subTest(line=tags[:80]):
                r = self.srv.write(("%s value=1 %d\n" % (tags, T)).encode())
                self.assertErrorResponse(r, 400)
        for params in ("cluster=..", "cluster=a%2Fb", "cluster=%00", "cluster=a%00b", "cluster=x%0Ay",
                       "cluster=%2E%2E"):
            with self.subTest(params=params):
                r = self.srv.write(("cpu_load,hostname=h value=1 %d\n" % T).encode(), params=params)
                self.assertErrorResponse(r, 400)
        after = self.tree()
        self.assertEqual(set(after) - set(before), set(), "levels were created")
        self.assertEqual(after, before)

    def test_type_level_names_are_no_paths(self):
        """Only cluster and host become directory names: type and subtype
        levels may hold '/', '.' and '..' (mount points as type-ids)."""
        for tags, level in (("type=hw/thread,type-id=0", ["hw/thread0"]),
                            ("type=hwthread,type-id=0/1", ["hwthread0/1"]),
                            ("type=.,type-id=.", [".."]),
                            ("type=socket,type-id=0,stype=core,stype-id=/3", ["socket0", "core/3"]),
                            ("type=socket,type-id=0,stype=.,stype-id=.", ["socket0", ".."])):
            with self.subTest(tags=tags):
                r = self.srv.write(("flops_any,cluster=tl,hostname=h,%s value=1 %d\n"
                                    % (tags, T)).encode())
                self.assertWriteOK(r)
                self.assertIn(level[0], self.tree("tl:h"))
                if len(level) == 2:
                    self.assertIn(level[1], self.tree("tl:h")[level[0]])

    def test_name_length_limit_255_ok(self):
        name = "n" * 255
        r = self.srv.write(("cpu_load,cluster=len255,hostname=%s value=1 %d\n" % (name, T)).encode())
        self.assertWriteOK(r)
        self.assertEqual(list(self.tree("len255")), [name])

    def test_utf8_names_ok(self):
        r = self.srv.write(("cpu_load,cluster=utf,hostname=n\u00f6de value=1 %d\n" % T).encode())
        self.assertWriteOK(r)
        self.assertEqual(self.entry("cpu_load", "n\u00f6de", T, T + 60, "utf")["data"], [1.0])

    def test_unconfigured_metric_lines_ignored(self):
        body = lines("nosuch,cluster=unc,hostname=h value=1 %d\n" % T,
                     "event,cluster=unc,hostname=h event=\"job started\" %d\n" % T,
                     "nosuch,cluster=unc,hostname=h value=\"str\",other=t\n",
                     "log,cluster=unc,=broken tags ===\n",
                     "control,cluster=unc,hostname=h control=\"x\"\n")
        self.assertWriteOK(self.srv.write(body))
        self.assertNotFound("unc")
        # mixed with a configured line: that one is stored, still 200
        body = lines("nosuch,cluster=unc2,hostname=h value=1 %d\n" % T,
                     "cpu_load,cluster=unc2,hostname=h value=4 %d\n" % T)
        self.assertWriteOK(self.srv.write(body))
        self.assertEqual(self.entry("cpu_load", "h", T, T + 60, "unc2")["data"], [4.0])

    def test_non_finite_and_beyond_float32_rejected(self):
        for i, v in enumerate(["1e39", "-1e39", "3.5e38", "1e400", "NaN", "nan", "inf", "-inf",
                               "+Inf", "Infinity"]):
            with self.subTest(value=v):
                r = self.srv.write(("cpu_load,cluster=nf,hostname=h%d value=%s %d\n" % (i, v, T)).encode())
                self.assertErrorResponse(r, 400)
        self.assertNotFound("nf")
        r = self.srv.write(("cpu_load,cluster=nf2,hostname=max value=3.4e38 %d\n" % T).encode())
        self.assertWriteOK(r)
        r = self.srv.write(("cpu_load,cluster=nf2,hostname=big value=9223372036854775807i %d\n" % T).encode())
        self.assertWriteOK(r)
        r = self.srv.query({"cluster": "nf2", "from": T, "to": T + 60, "with-padding": False,
                            "queries": [{"metric": "cpu_load", "host": "max"}]})
        # float32(3.4e38) = 339999995214436424907732413799364296704
        self.assertIn(b'"data":[339999995214436424907732413799364296704.000]', r.body)

    def test_future_samples(self):
        now = int(time.time())
        r = self.srv.write(("cpu_load,cluster=fut,hostname=far value=1 %d\n" % (now + 7200)).encode())
        self.assertErrorResponse(r, 400)
        r = self.srv.write(("cpu_load,cluster=fut,hostname=far value=1 %d\n" % (now + 10**9)).encode())
        self.assertErrorResponse(r, 400)
        self.assertNotFound("fut")
        r = self.srv.write(("cpu_load,cluster=fut,hostname=near value=1 %d\n" % (now + 1800)).encode())
        self.assertWriteOK(r)
        e = self.entry("cpu_load", "near", now, now + 3600, "fut")
        self.assertEqual(e["data"], [1.0])

    def test_late_samples_written_into_older_buffers(self):
        # two buffers: 513 samples of m (f 10), k @ 100 + 10k
        body = "".join("m,cluster=late,hostname=h value=%d %d\n" % (k, 100 + 10 * k)
                       for k in range(513)).encode()
        self.assertWriteOK(self.srv.write(body))
        # overwrite inside the old (full) buffer
        self.assertWriteOK(self.srv.write(b"m,cluster=late,hostname=h value=1000 130\n"))
        e = self.entry("m", "h", 100, 5230, "late")
        expect = [float(k) for k in range(513)]
        expect[3] = 1000.0
        self.assertEqual(e["data"], expect)
        # older than the oldest buffer: prepended (retention reaches back to 1970 here)
        self.assertWriteOK(self.srv.write(b"m,cluster=late,hostname=h value=5 50\n"))
        e = self.entry("m", "h", 0, 6000, "late")
        self.assertEqual(e["from"], 50)
        self.assertEqual(e["data"], [5.0] + [None] * 4 + expect)

    def test_late_sample_into_gap_between_buffers(self):
        self.assertWriteOK(self.srv.write(b"m,cluster=gap,hostname=h value=1 100\n"))
        self.assertWriteOK(self.srv.write(b"m,cluster=gap,hostname=h value=2 10000\n"))
        self.assertWriteOK(self.srv.write(b"m,cluster=gap,hostname=h value=3 5000\n"))
        self.assertWriteOK(self.srv.write(b"m,cluster=gap,hostname=h value=4 7000\n"))
        e = self.entry("m", "h", 0, 20000, "gap")
        self.assertEqual(e["from"], 100)
        data = e["data"]
        self.assertEqual(len(data), 991)
        self.assertEqual(data[0], 1.0)
        self.assertEqual(data[490], 3.0)
        self.assertEqual(data[690], 4.0)
        self.assertEqual(data[990], 2.0)
        self.assertEqual([i for i, v in enumerate(data) if v is not None], [0, 490, 690, 990])

    def test_write_into_past_of_head_within_head(self):
        body = lines("m,cluster=ooo,hostname=h value=1 100\n", "m,cluster=ooo,hostname=h value=3 120\n",
                     "m,cluster=ooo,hostname=h value=2 110\n", "m,cluster=ooo,hostname=h value=4 100\n")
        self.assertWriteOK(self.srv.write(body))
        self.assertEqual(self.entry("m", "h", 0, 200, "ooo")["data"], [4.0, 2.0, 3.0])

    def test_empty_body(self):
        self.assertWriteOK(self.srv.write(b""))
        self.assertWriteOK(self.srv.write(b"\n\n# only comments\n"))


class SmallSeriesMemoryTest(CCMSTestCase):
    """A series holding a few samples costs about what it holds: the
    store's exact count (GET /api/status) after one sample in each of
    many series, and its growth with the next samples."""

    HOSTS, THREADS = 20, 64
    METRICS = {"cpu_user": {"frequency": 60, "aggregation": "avg"},
               "ipc": {"frequency": 60, "aggregation": "avg"},
               "clock": {"frequency": 60, "aggregation": "avg"},
               "mem_bw": {"frequency": 60, "aggregation": "sum"}}

    def setUp(self):
        self.srv = start_server(self, metrics=self.METRICS)

    def store_bytes(self):
        r = self.srv.raw("GET", "/api/status")
        self.assertStatus(r, 200)
        return json.loads(r.body)["store"]["bytes"]

    def write_step(self, ts, k):
        body = "".join("%s,cluster=c,hostname=n%02d,type=hwthread,type-id=%d value=%d.%d %d\n"
                       % (m, h, t, h + t, k, ts)
                       for m in sorted(self.METRICS) for h in range(self.HOSTS)
                       for t in range(self.THREADS))
        self.assertWriteOK(self.srv.write(body))

    def test_one_sample_series_cost_at_most_128_bytes(self):
        empty = self.store_bytes()
        series = len(self.METRICS) * self.HOSTS * self.THREADS
        now = int(time.time()) // 60 * 60
        t0 = now - 600
        self.write_step(t0, 0)
        one = self.store_bytes() - empty
        self.assertLessEqual(one / series, 128, "bytes per one-sample series")
        # the next three samples stay inside the buffer header
        for k in range(1, 4):
            self.write_step(t0 + 60 * k, k)
        self.assertEqual(self.store_bytes() - empty, one)
        # the fifth needs the first plain allocation of 8 floats
        self.write_step(t0 + 60 * 4, 4)
        self.assertEqual(self.store_bytes() - empty, one + series * 32)
        # every sample reads back
        rows = self.srv.query_json({"cluster": "c", "from": t0, "to": t0 + 300,
                                    "with-stats": False, "queries": [
                                        {"metric": "ipc", "host": "n07", "type": "hwthread",
                                         "type-ids": ["9"]}]})
        data = rows["results"][0][0]["data"]
        self.assertEqual(data, [16.0, 16.1, 16.2, 16.3, 16.4])
