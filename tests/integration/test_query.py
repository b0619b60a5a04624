"""GET /api/query (the Go store's endpoint tests; docs/http-api.md "Query";
docs/compatibility.md aggregation)."""
import json
import math
import re

from ccms import CCMSTestCase, f32, fmt2, fmt3, lines, start_server, unescape_html

METRICS = {
    "m": {"frequency": 10, "aggregation": "avg"},
    "s": {"frequency": 10, "aggregation": "sum"},
    "n": {"frequency": 10, "aggregation": None},
    "cpu_load": {"frequency": 60, "aggregation": None},
}


def entry_bytes(data, frm, to, res, avg, mn, mx, error=None):
    """One result entry exactly as upstream encodes it. data: list of floats
    (None = null) or None for 'omitted'."""
    parts = []
    if error is not None:
        parts.append('"error":%s' % json.dumps(error))
    if data:
        parts.append('"data":[%s]' % ",".join(fmt3(v) for v in data))
    parts.append('"from":%d,"to":%d,"resolution":%d' % (frm, to, res))
    parts.append('"avg":%s,"min":%s,"max":%s' % (avg, mn, mx))
    return "{" + ",".join(parts) + "}"


def stats(data):
    vals = [v for v in data if v is not None and v == v]
    if not vals:
        return "null", "null", "null"
    return fmt2(sum(vals) / len(vals)), fmt2(min(vals)), fmt2(max(vals))


def error_entry(msg):
    return entry_bytes(None, 0, 0, 0, "0.00", "0.00", "0.00", error=msg)


def lttb(data, m):
    """LTTB as docs/http-api.md "Resampling" describes it."""
    n = len(data)
    if m <= 2:
        return [data[0], data[n - 1]]
    bucket = (n - 2) / (m - 2)
    out = [data[0]]
    a = 0
    low = 1
    mid = math.floor(bucket) + 1
    for i in range(m - 2):
        high = math.floor((i + 2) * bucket) + 1
        if high >= n - 1:
            high = n - 2
        idx = list(range(mid, high + 1))
        if idx:
            avg_x = sum(idx) / len(idx)
            avg_y = sum(data[j] for j in idx) / len(idx)
        else:
            avg_x = avg_y = float("nan")
        best = 0
        max_area = -1.0
        for j in range(low, mid):
            area = abs(((a - j) * (avg_y - data[a]) - (a - avg_x) * (data[j] - data[a])) * 0.5)
            if area > max_area or area != area:
                max_area = area
                best = j
        out.append(data[best])
        a = best
        low = mid
        mid = high
    out.append(data[n - 1])
    return out


class QueryTest(CCMSTestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = start_server(cls, metrics=METRICS)

    def write(self, *ls, params=None):
        r = self.srv.write(lines(*ls), params=params)
        self.assertWriteOK(r)

    def w(self, host, metric, samples, cluster="c", **tags):
        """samples: [(value, ts)]"""
        body = ""
        for v, ts in samples:
            parts = [metric, "cluster=" + cluster, "hostname=" + host]
            parts += ["%s=%s" % (k.replace("_", "-"), val) for k, val in tags.items()]
            body += "%s value=%s %d\n" % (",".join(parts), v, ts)
        self.write(body)

    def q(self, req):
        """Raw response body of a query that must answer 200."""
        r = self.srv.query(req)
        self.assertStatus(r, 200)
        self.assertTrue(r.headers.get("Content-Type", "").startswith("application/json"))
        self.assertTrue(r.body.endswith(b"}\n"), r.body[-50:])
        return unescape_html(r.body.decode())

    def one(self, host, metric, frm, to, padding=False, cluster="c", **kw):
        qq = {"metric": metric, "host": host}
        qq.update({k.replace("_", "-"): v for k, v in kw.items()})
        return self.q({"cluster": cluster, "from": frm, "to": to, "with-padding": padding,
                       "queries": [qq]})

    def assertRow(self, body, entries):
        self.assertEqual(body, '{"results":[[%s]]}\n' % ",".join(entries))

    # ---- the Go store's tests, writes -------------------------------------------------

    def test_W1_single_value(self):
        self.w("w1", "m", [(42, 100)])
        self.assertRow(self.one("w1", "m", 100, 110),
                       [entry_bytes([42.0], 100, 110, 10, "42.00", "42.00", "42.00")])

    def test_W2_write_before_buffer_start_kept(self):
        # the Go store drops a sample before the head buffer; here it is
        # prepended on the series' slot grid (docs/data-model.md)
        self.w("w2", "m", [(42, 100)])
        self.assertWriteOK(self.srv.write(b"m,cluster=c,hostname=w2 value=10 50\n"))
        self.assertRow(self.one("w2", "m", 0, 200),
                       [entry_bytes([10.0, None, None, None, None, 42.0], 50, 110, 10,
                                    "26.00", "10.00", "42.00")])

    def test_W3_nan_fill(self):
        self.w("w3", "m", [(1, 100), (4, 130)])
        self.assertRow(self.one("w3", "m", 100, 140),
                       [entry_bytes([1.0, None, None, 4.0], 100, 140, 10, "2.50", "1.00", "4.00")])

    def test_W4_overwrite(self):
        self.w("w4", "m", [(1, 100), (2, 110), (99, 100)])
        self.assertRow(self.one("w4", "m", 100, 120),
                       [entry_bytes([99.0, 2.0], 100, 120, 10, "50.50", "2.00", "99.00")])

    def test_W5_capacity_overflow_and_R4_chain_read(self):
        self.w("w5", "m", [(k, 100 + 10 * k) for k in range(513)])
        data = [float(k) for k in range(513)]
        self.assertRow(self.one("w5", "m", 100, 5230),
                       [entry_bytes(data, 100, 5230, 10, "256.00", "0.00", "512.00")])
        r = self.srv.debug("c:w5")
        self.assertStatus(r, 200)
        self.assertEqual(r.body, b'{"data":{\n\t"m":[{"start":95,"len":512,"end":5215},'
                                 b'{"start":5215,"len":1,"end":5225}],\n}}\n')
        # R4: no NaN at the buffer boundary
        self.assertRow(self.one("w5", "m", 5200, 5230),
                       [entry_bytes([510.0, 511.0, 512.0], 5200, 5230, 10, "511.00", "510.00", "512.00")])

    # ---- the Go store's tests, reads ------------------------------------------------

    def test_R1_read(self):
        self.w("r1", "m", [(1, 100), (2, 110), (3, 120)])
        self.assertRow(self.one("r1", "m", 100, 130),
                       [entry_bytes([1.0, 2.0, 3.0], 100, 130, 10, "2.00", "1.00", "3.00")])

    def test_R2_read_before_first_write(self):
        self.w("r2", "m", [(1, 100), (2, 110)])
        self.assertRow(self.one("r2", "m", 50, 120),
                       [entry_bytes([1.0, 2.0], 100, 120, 10, "1.50", "1.00", "2.00")])
        self.assertRow(self.one("r2", "m", 50, 120, padding=True),
                       [entry_bytes([None] * 5 + [1.0, 2.0], 100, 120, 10, "1.50", "1.00", "2.00")])

    def test_R3_gap_is_null(self):
        self.w("r3", "m", [(1, 100), (3, 120)])
        self.assertRow(self.one("r3", "m", 100, 130),
                       [entry_bytes([1.0, None, 3.0], 100, 130, 10, "2.00", "1.00", "3.00")])

    def test_R5_accumulation(self):
        self.w("r5", "s", [(3, 100), (5, 110)], type="hwthread", type_id=0)
        self.w("r5", "s", [(2, 100), (1, 110)], type="hwthread", type_id=1)
        want = entry_bytes([5.0, 6.0], 100, 120, 10, "5.50", "5.00", "6.00")
        self.assertRow(self.one("r5", "s", 100, 120), [want])
        self.assertRow(self.one("r5", "s", 100, 120, type="hwthread", type_ids=["0", "1"], aggreg=True),
                       [want])
        self.assertRow(self.one("r5", "s", 100, 120, type="hwthread", type_ids=["1", "0"], aggreg=True),
                       [want])
        self.assertRow(self.one("r5", "s", 100, 120, type="hwthread", type_ids=["0", "1"]),
                       [entry_bytes([3.0, 5.0], 100, 120, 10, "4.00", "3.00", "5.00"),
                        entry_bytes([2.0, 1.0], 100, 120, 10, "1.50", "1.00", "2.00")])

    def test_read_worked_examples(self):
        # docs/http-api.md "Reading a series" (f = 10, samples at 100, 110, 120)
        self.w("wex", "m", [(1, 100), (2, 110), (3, 120)])
        cases = [((100, 130), [1.0, 2.0, 3.0], 100, 130),
                 ((100, 120), [1.0, 2.0], 100, 120),
                 ((50, 120), [1.0, 2.0], 100, 120),
                 ((103, 125), [1.0, 2.0, 3.0], 103, 133)]
        for (frm, to), data, rf, rt in cases:
            with self.subTest(frm=frm, to=to):
                avg, mn, mx = stats(data)
                self.assertRow(self.one("wex", "m", frm, to),
                               [entry_bytes(data, rf, rt, 10, avg, mn, mx)])
        for frm, to in ((200, 300), (0, 50), (150, 150)):
            with self.subTest(frm=frm, to=to):
                row = json.loads(self.one("wex", "m", frm, to))["results"][0]
                e = self.assertOneEntry(row)
                self.assertNotIn("data", e)
                self.assertEqual((e["avg"], e["min"], e["max"]), (None, None, None))
                self.assertEqual(e["resolution"], 10)

    # ---- docs/http-api.md answer example -------------------------------------------------------

    def test_example_5_6_byte_exact(self):
        self.write("cpu_load,cluster=alex,hostname=a0124,type=node value=1.0 1000\n",
                   "cpu_load,cluster=alex,hostname=a0124,type=node value=2.0 1060\n",
                   "cpu_load,cluster=alex,hostname=a0124,type=node value=4.0 1180\n")
        body = (b'{"cluster":"alex","from":940,"to":1240,\n'
                b' "queries":[{"metric":"cpu_load","host":"a0124"},\n'
                b'            {"metric":"cpu_load","host":"nohost"},\n'
                b'            {"metric":"nosuch","host":"a0124"}]}')
        r = self.srv.query(body, path="/api/query/?version=v2")
        self.assertStatus(r, 200)
        self.assertEqual(unescape_html(r.body), b'{"results":[[{"data":[null,1.000,2.000,null,4.000],"from":1000,"to":1240,'
                                 b'"resolution":60,"avg":2.33,"min":1.00,"max":4.00}],[],'
                                 b'[{"error":"[METRICSTORE]> unknown metric: nosuch","from":0,"to":0,'
                                 b'"resolution":0,"avg":0.00,"min":0.00,"max":0.00}]]}\n')

    def test_cc_backend_request_shape(self):
        # key order as sent by cc-backend, nulls for unused keys
        self.w("ccb", "m", [(1, 100), (2, 110)])
        self.w("ccb", "s", [(3, 100), (4, 110)], type="hwthread", type_id=0)
        self.w("ccb", "s", [(5, 100), (6, 110)], type="hwthread", type_id=1)
        body = ('{"cluster":"c","queries":[{"type":"hwthread","metric":"s","host":"ccb","resolution":0,'
                '"type-ids":["0","1"],"aggreg":true},{"metric":"m","host":"ccb","resolution":0,"aggreg":false}],'
                '"for-all-nodes":null,"from":100,"to":120,"with-stats":true,"with-data":true}')
        r = self.srv.query(body, path="/api/query?version=v2")
        self.assertStatus(r, 200)
        self.assertEqual(r.body.decode(), '{"results":[[%s],[%s]]}\n' % (
            entry_bytes([8.0, 10.0], 100, 120, 10, "9.00", "8.00", "10.00"),
            entry_bytes([1.0, 2.0], 100, 120, 10, "1.50", "1.00", "2.00")))

    # ---- padding, with-*, scale-by --------------------------------------------------

    def test_padding_rules(self):
        self.w("pad", "m", [(1, 100), (2, 110)])
        cases = [(50, 5), (55, 5), (0, 10), (95, 1), (99, 1), (100, 0), (-15, 11), (-5, 10)]
        for frm, npad in cases:
            with self.subTest(frm=frm):
                self.assertRow(self.one("pad", "m", frm, 120, padding=True),
                               [entry_bytes([None] * npad + [1.0, 2.0], 100, 120, 10,
                                            "1.50", "1.00", "2.00")])
        # from after the first sample: no padding, from kept
        self.assertRow(self.one("pad", "m", 110, 120, padding=True),
                       [entry_bytes([2.0], 110, 120, 10, "2.00", "2.00", "2.00")])
        # default is with padding
        body = self.q({"cluster": "c", "from": 80, "to": 120,
                       "queries": [{"metric": "m", "host": "pad"}]})
        self.assertRow(body, [entry_bytes([None, None, 1.0, 2.0], 100, 120, 10, "1.50", "1.00", "2.00")])

    def test_with_stats_data_false(self):
        self.w("wsd", "m", [(1, 100), (2, 110), (3, 120)])
        base = {"cluster": "c", "from": 100, "to": 130, "with-padding": False,
                "queries": [{"metric": "m", "host": "wsd"}]}
        self.assertRow(self.q(dict(base, **{"with-stats": False})),
                       [entry_bytes([1.0, 2.0, 3.0], 100, 130, 10, "0.00", "0.00", "0.00")])
        self.assertRow(self.q(dict(base, **{"with-data": False})),
                       [entry_bytes(None, 100, 130, 10, "2.00", "1.00", "3.00")])
        self.assertRow(self.q(dict(base, **{"with-data": False, "with-stats": False})),
                       ['{"from":100,"to":130,"resolution":10,"avg":0.00,"min":0.00,"max":0.00}'])
        self.assertRow(self.q(dict(base, **{"with-stats": True, "with-data": True})),
                       [entry_bytes([1.0, 2.0, 3.0], 100, 130, 10, "2.00", "1.00", "3.00")])

    def test_stats_only_answers_match_the_data(self):
        """with-data false is answered from the statistics of sealed parts
        where one series is read at its own frequency, and from the data
        otherwise: either way the same avg/min/max as with the data, for
        windows that start and end inside parts, gaps, negative values and
        -0 (docs/http-api.md "Statistics without data")."""
        seed = 12345
        vals = []
        x = 20.0
        for k in range(1500):
            seed = (seed * 1103515245 + 12345) % 2 ** 31
            x += ((seed >> 8) % 201 - 100) / 100.0
            vals.append(None if k % 37 == 5 else ("-0" if k == 700 else "%.2f" % x))
        self.w("so", "m", [(v, 100 + 10 * k) for k, v in enumerate(vals) if v is not None])
        for cpu in range(4):
            self.w("so", "s", [("%.1f" % ((k * (cpu + 3)) % 97 - 40), 100 + 10 * k)
                               for k in range(600)], type="hwthread", type_id=cpu)
        data_re = re.compile(r'"data":\[[^\]]*\],')
        cases = [("m", {}, 100, 15100), ("m", {}, 1234, 9876), ("m", {}, 7000, 7011),
                 ("m", {}, 95, 3000), ("m", {"resolution": 60}, 100, 15100),
                 ("s", {}, 100, 6100),                                   # four summed
                 ("s", {"type": "hwthread", "type-ids": ["2"]}, 1111, 5555),
                 ("s", {"type": "hwthread", "type-ids": ["1", "3"], "aggreg": True}, 100, 6100)]
        for metric, extra, frm, to in cases:
            q = dict({"metric": metric, "host": "so"}, **extra)
            req = {"cluster": "c", "from": frm, "to": to, "with-padding": False,
                   "queries": [q]}
            with_data = self.q(dict(req, **{"with-data": True}))
            without = self.q(dict(req, **{"with-data": False}))
            self.assertIn('"data":[', with_data)
            self.assertEqual(without, data_re.sub("", with_data), (metric, extra, frm, to))
            self.assertNotIn('"avg":null', without)

    def test_scale_by(self):
        self.w("sc", "m", [(1, 100), (2, 110), (3, 120)])
        self.assertRow(self.one("sc", "m", 100, 130, scale_by=2),
                       [entry_bytes([2.0, 4.0, 6.0], 100, 130, 10, "4.00", "2.00", "6.00")])
        self.assertRow(self.one("sc", "m", 100, 130, scale_by=0.5),
                       [entry_bytes([0.5, 1.0, 1.5], 100, 130, 10, "1.00", "0.50", "1.50")])
        for sb in (1, 0):
            self.assertRow(self.one("sc", "m", 100, 130, scale_by=sb),
                           [entry_bytes([1.0, 2.0, 3.0], 100, 130, 10, "2.00", "1.00", "3.00")])

    def test_inf_is_null_and_response_not_empty(self):
        self.w("inf", "m", [(3e38, 100)])
        r = self.srv.query({"cluster": "c", "from": 100, "to": 110, "with-padding": False,
                            "queries": [{"metric": "m", "host": "inf", "scale-by": 1e308}]})
        self.assertStatus(r, 200)
        self.assertTrue(r.body)
        e = self.assertOneEntry(json.loads(r.body)["results"][0])
        self.assertEqual(e["data"], [None])
        self.assertEqual((e["avg"], e["min"], e["max"]), (None, None, None))

    # ---- aggregation, groups, implicit descent ----------------------------------------

    def test_aggreg_groups(self):
        self.w("grp", "s", [(1, 100)], type="hwthread", type_id=0)
        self.w("grp", "s", [(2, 100)], type="hwthread", type_id=1)
        self.w("grp", "s", [(4, 100)], type="hwthread", type_id=2)

        def e(v):
            return entry_bytes([v], 100, 110, 10, fmt2(v), fmt2(v), fmt2(v))
        self.assertRow(self.one("grp", "s", 100, 110, type="hwthread", type_ids=["0", "2"], aggreg=True),
                       [e(5.0)])
        self.assertRow(self.one("grp", "s", 100, 110, type="hwthread", type_ids=["0", "1", "2"],
                                aggreg=True), [e(7.0)])
        # single id = exact name; a missing id in a group is skipped
        self.assertRow(self.one("grp", "s", 100, 110, type="hwthread", type_ids=["1"], aggreg=True), [e(2.0)])
        self.assertRow(self.one("grp", "s", 100, 110, type="hwthread", type_ids=["1", "7"], aggreg=True),
                       [e(2.0)])
        # empty group / no ids match nothing
        self.assertRow(self.one("grp", "s", 100, 110, type="hwthread", type_ids=[], aggreg=True), [])
        self.assertRow(self.one("grp", "s", 100, 110, type="hwthread", type_ids=[]), [])
        self.assertRow(self.one("grp", "s", 100, 110, type="hwthread"), [])
        self.assertRow(self.one("grp", "s", 100, 110, type="hwthread", type_ids=["7", "8"], aggreg=True), [])
        # aggreg false: one entry per existing id, in type-ids order, missing ones omitted
        self.assertRow(self.one("grp", "s", 100, 110, type="hwthread", type_ids=["2", "9", "0"]),
                       [e(4.0), e(1.0)])
        # type absent: aggreg and ids ignored -> node query
        self.assertRow(self.one("grp", "s", 100, 110, type_ids=["0"], aggreg=False), [e(7.0)])

    def test_subtype_selectors(self):
        self.w("sub", "s", [(100, 100)], type="socket", type_id=0, stype="core", stype_id=3)
        self.w("sub", "s", [(200, 100)], type="socket", type_id=0, stype="core", stype_id=4)
        self.w("sub", "s", [(1, 100)], type="socket", type_id=1)

        def e(v):
            return entry_bytes([v], 100, 110, 10, fmt2(v), fmt2(v), fmt2(v))
        self.assertRow(self.one("sub", "s", 100, 110, type="socket", type_ids=["0"],
                                subtype="core", subtype_ids=["3"]), [e(100.0)])
        self.assertRow(self.one("sub", "s", 100, 110, type="socket", type_ids=["0"],
                                subtype="core", subtype_ids=["4", "3"]), [e(200.0), e(100.0)])
        self.assertRow(self.one("sub", "s", 100, 110, type="socket", type_ids=["0"],
                                subtype="core", subtype_ids=["3", "4"], aggreg=True), [e(300.0)])
        # socket0 has no chain itself: implicit descent into its cores
        self.assertRow(self.one("sub", "s", 100, 110, type="socket", type_ids=["0"]), [e(300.0)])
        self.assertRow(self.one("sub", "s", 100, 110), [e(301.0)])

    def test_implicit_descent_topmost_chain(self):
        self.w("imp", "m", [(2, 100)], type="hwthread", type_id=0)
        self.w("imp", "m", [(4, 100)], type="hwthread", type_id=1)
        self.assertRow(self.one("imp", "m", 100, 110),
                       [entry_bytes([3.0], 100, 110, 10, "3.00", "3.00", "3.00")])
        # a chain at host level hides the children
        self.w("imp", "m", [(10, 100)])
        self.assertRow(self.one("imp", "m", 100, 110),
                       [entry_bytes([10.0], 100, 110, 10, "10.00", "10.00", "10.00")])
        # top-most chains on every branch: socket0 (own chain) + socket1's cores
        self.w("imp2", "s", [(1, 100)], type="socket", type_id=0)
        self.w("imp2", "s", [(100, 100)], type="socket", type_id=0, stype="core", stype_id=3)
        self.w("imp2", "s", [(2, 100)], type="socket", type_id=1, stype="core", stype_id=0)
        self.w("imp2", "s", [(3, 100)], type="socket", type_id=1, stype="core", stype_id=1)
        self.assertRow(self.one("imp2", "s", 100, 110),
                       [entry_bytes([6.0], 100, 110, 10, "6.00", "6.00", "6.00")])

    def test_sum_vs_avg(self):
        for metric in ("s", "m"):
            self.w("sva", metric, [(1, 100), (5, 110)], type="hwthread", type_id=0)
            self.w("sva", metric, [(3, 100), (6, 110)], type="hwthread", type_id=1)
        self.assertRow(self.one("sva", "s", 100, 120),
                       [entry_bytes([4.0, 11.0], 100, 120, 10, "7.50", "4.00", "11.00")])
        self.assertRow(self.one("sva", "m", 100, 120),
                       [entry_bytes([2.0, 5.5], 100, 120, 10, "3.75", "2.00", "5.50")])

    def test_avg_multiplies_by_reciprocal(self):
        # sum 872.5625 over 5 chains: *0.2 -> 174.51250000000002 ("174.513"),
        # /5 would give exactly 174.5125 ("174.512")
        for i, v in enumerate(["174.5625", "174.5", "174.5", "174.5", "174.5"]):
            self.w("rec", "m", [(v, 100)], type="hwthread", type_id=i)
        body = self.one("rec", "m", 100, 110)
        self.assertRow(body, [entry_bytes([872.5625 * (1.0 / 5)], 100, 110, 10,
                                          "174.51", "174.51", "174.51")])
        self.assertIn('"data":[174.513]', body)

    def test_invalid_aggregation(self):
        self.w("noagg", "n", [(1, 100)], type="hwthread", type_id=0)
        self.w("noagg", "n", [(2, 100)], type="hwthread", type_id=1)
        self.assertRow(self.one("noagg", "n", 100, 110),
                       [error_entry("[METRICSTORE]> invalid aggregation")])
        self.assertRow(self.one("noagg", "n", 100, 110, type="hwthread", type_ids=["0", "1"], aggreg=True),
                       [error_entry("[METRICSTORE]> invalid aggregation")])
        # one chain never aggregates
        self.assertRow(self.one("noagg", "n", 100, 110, type="hwthread", type_ids=["1"], aggreg=True),
                       [entry_bytes([2.0], 100, 110, 10, "2.00", "2.00", "2.00")])
        self.assertRow(self.one("noagg", "n", 100, 110, type="hwthread", type_ids=["0", "1"]),
                       [entry_bytes([1.0], 100, 110, 10, "1.00", "1.00", "1.00"),
                        entry_bytes([2.0], 100, 110, 10, "2.00", "2.00", "2.00")])

    def test_unknown_metric_and_invalid_time_range(self):
        self.w("err", "m", [(1, 100)])
        self.assertRow(self.one("err", "nosuch", 100, 110),
                       [error_entry("[METRICSTORE]> unknown metric: nosuch")])
        self.assertRow(self.one("err", "m", 200, 100),
                       [error_entry("[METRICSTORE]> invalid time range")])
        # from == to is allowed
        row = json.loads(self.one("err", "m", 100, 100))["results"][0]
        self.assertTrue(all("error" not in e for e in row), row)

    def test_not_found_selectors_omitted(self):
        self.w("nf", "m", [(1, 100)])
        self.w("nf", "m", [(1, 100)], type="hwthread", type_id=0)
        body = self.q({"cluster": "c", "from": 100, "to": 110, "with-padding": False, "queries": [
            {"metric": "m", "host": "nohost"},
            {"metric": "s", "host": "nf"},                      # metric never written there
            {"metric": "m", "host": "nf", "type": "hwthread", "type-ids": ["5"]},
            {"metric": "m", "host": "nf"},
        ]})
        self.assertEqual(body, '{"results":[[],[],[],[%s]]}\n'
                         % entry_bytes([1.0], 100, 110, 10, "1.00", "1.00", "1.00"))
        body = self.q({"cluster": "nocluster", "from": 100, "to": 110,
                       "queries": [{"metric": "m", "host": "nf"}]})
        self.assertEqual(body, '{"results":[[]]}\n')
        # empty names never match
        body = self.q({"cluster": "c", "from": 100, "to": 110, "queries": [{"metric": "m", "host": ""}]})
        self.assertEqual(body, '{"results":[[]]}\n')

    def test_empty_request(self):
        self.assertEqual(self.q({"cluster": "c", "from": 0, "to": 10}), '{"results":[]}\n')
        self.assertEqual(self.q({"cluster": "c", "from": 0, "to": 10, "queries": None,
                                 "for-all-nodes": None}), '{"results":[]}\n')
        self.assertEqual(self.q(b"{}"), '{"results":[]}\n')

    def test_union_window_aggregation(self):
        # docs/http-api.md: window = union of the chains' ranges, no alignment error,
        # a point missing in any chain is null; independent of visit order
        self.w("uni", "s", [(1, 100), (2, 110), (3, 120)], type="hwthread", type_id=0)
        self.w("uni", "s", [(10, 110), (20, 120), (30, 130)], type="hwthread", type_id=1)
        want = [entry_bytes([None, 12.0, 23.0, None], 100, 140, 10, "17.50", "12.00", "23.00")]
        self.assertRow(self.one("uni", "s", 0, 1000), want)
        self.assertRow(self.one("uni", "s", 0, 1000, type="hwthread", type_ids=["0", "1"], aggreg=True), want)
        self.assertRow(self.one("uni", "s", 0, 1000, type="hwthread", type_ids=["1", "0"], aggreg=True), want)
        for _ in range(5):   # implicit descent order is unspecified: must not matter
            self.assertRow(self.one("uni", "s", 0, 1000), want)
        self.assertRow(self.one("uni", "s", 110, 130),
                       [entry_bytes([12.0, 23.0], 110, 130, 10, "17.50", "12.00", "23.00")])
        self.assertRow(self.one("uni", "s", 130, 200),
                       [entry_bytes([None], 130, 140, 10, "null", "null", "null")])
        self.assertRow(self.one("uni", "s", 0, 110),
                       [entry_bytes([None], 100, 110, 10, "null", "null", "null")])
        # chains that do not overlap at all
        self.w("uni2", "s", [(1, 100), (2, 110)], type="hwthread", type_id=0)
        self.w("uni2", "s", [(5, 140), (6, 150)], type="hwthread", type_id=1)
        self.assertRow(self.one("uni2", "s", 0, 1000),
                       [entry_bytes([None] * 6, 100, 160, 10, "null", "null", "null")])

    # ---- resolution / LTTB ------------------------------------------------------

    N = 1200
    BASE = 200000

    def lttb_data(self):
        vals = [((k * 7919) % 1009) * 0.25 for k in range(self.N)]
        if not getattr(type(self), "_lttb_written", False):
            self.write("".join("m,cluster=c,hostname=lttb value=%s %d\n" % (v, self.BASE + 10 * k)
                               for k, v in enumerate(vals)))
            type(self)._lttb_written = True
        return vals

    def test_resolution_not_multiple(self):
        self.w("res", "m", [(1, 100), (2, 110)])
        self.assertRow(self.one("res", "m", 100, 120, resolution=15),
                       [error_entry("new sampling frequency (15) must be a multiple of old frequency (10)")])

    def test_resolution_native_and_small_series(self):
        self.w("res2", "m", [(1, 100), (2, 110), (3, 120)])
        for res in (0, 5, 10, -20, 20, 30):
            with self.subTest(resolution=res):
                self.assertRow(self.one("res2", "m", 100, 130, resolution=res),
                               [entry_bytes([1.0, 2.0, 3.0], 100, 130, 10, "2.00", "1.00", "3.00")])

    def test_lttb_applied(self):
        vals = self.lttb_data()
        end = self.BASE + 10 * self.N
        for res, m in ((20, 600), (60, 200), (6000, 2)):
            with self.subTest(resolution=res):
                out = lttb(vals, m)
                self.assertEqual(len(out), m)
                self.assertEqual(out[0], vals[0])
                self.assertEqual(out[-1], vals[-1])
                avg, mn, mx = stats(out)
                body = self.one("lttb", "m", self.BASE, end, resolution=res)
                got = json.loads(body)["results"][0][0]
                self.assertEqual(len(got.get("data", [])), m)
                self.assertEqual(got["data"][0], vals[0])
                self.assertEqual(got["data"][-1], vals[-1])
                self.assertRow(body, [entry_bytes(out, self.BASE, end, res, avg, mn, mx)])

    def test_lttb_threshold(self):
        vals = self.lttb_data()
        # 999 points: unchanged, native resolution
        end = self.BASE + 10 * 999
        avg, mn, mx = stats(vals[:999])
        self.assertRow(self.one("lttb", "m", self.BASE, end, resolution=20),
                       [entry_bytes(vals[:999], self.BASE, end, 10, avg, mn, mx)])
        # 1000 points: resampled to 500
        end = self.BASE + 10 * 1000
        out = lttb(vals[:1000], 500)
        avg, mn, mx = stats(out)
        self.assertRow(self.one("lttb", "m", self.BASE, end, resolution=20),
                       [entry_bytes(out, self.BASE, end, 20, avg, mn, mx)])
        # m == 0: unchanged
        end = self.BASE + 10 * self.N
        avg, mn, mx = stats(vals)
        self.assertRow(self.one("lttb", "m", self.BASE, end, resolution=10 * 2 * self.N),
                       [entry_bytes(vals, self.BASE, end, 10, avg, mn, mx)])

    def test_lttb_padding_counts_native_slots(self):
        vals = self.lttb_data()
        end = self.BASE + 10 * self.N
        out = lttb(vals, 600)
        avg, mn, mx = stats(out)
        self.assertRow(self.one("lttb", "m", self.BASE - 100, end, padding=True, resolution=20),
                       [entry_bytes([None] * 10 + out, self.BASE, end, 20, avg, mn, mx)])

    # ---- for-all-nodes ----------------------------------------------------------

    def fan_setup(self):
        if getattr(type(self), "_fan_written", False):
            return
        for h, v in (("a", 1), ("b", 2), ("c", 3)):
            self.w(h, "m", [(v, 100)], cluster="fan")
            self.w(h, "s", [(10 * v, 100)], cluster="fan")
        self.w("d", "m", [(4, 100)], cluster="fan")
        type(self)._fan_written = True

    def test_for_all_nodes(self):
        self.fan_setup()
        body = self.q({"cluster": "fan", "from": 100, "to": 110, "with-padding": False,
                       "for-all-nodes": ["m", "s"]})
        self.assertTrue(body.startswith('{"queries":[{"metric":"m","host":"'), body[:80])
        echo = re.search(r'^\{"queries":\[(.*)\],"results":', body).group(1)
        items = re.findall(r'\{[^{}]*\}', echo)
        self.assertEqual(len(items), 8)
        for it in items:
            self.assertRegex(it, r'^\{"metric":"[ms]","host":"[abcd]","resolution":0,"aggreg":false\}$')
        resp = json.loads(body)
        qs, rows = resp["queries"], resp["results"]
        self.assertEqual(len(rows), 8)
        self.assertEqual(sorted({q["host"] for q in qs}), ["a", "b", "c", "d"])
        self.assertEqual([q["metric"] for q in qs], ["m", "s"] * 4)
        for i in range(0, 8, 2):
            self.assertEqual(qs[i]["host"], qs[i + 1]["host"])
        values = {"a": 1, "b": 2, "c": 3, "d": 4}
        for q, row in zip(qs, rows):
            h = q["host"]
            if q["metric"] == "s" and h == "d":
                self.assertEqual(row, [])
                continue
            v = values[h] * (10 if q["metric"] == "s" else 1)
            self.assertEqual(row, [{"data": [v], "from": 100, "to": 110, "resolution": 10,
                                    "avg": v, "min": v, "max": v}])

    def test_for_all_nodes_with_explicit_queries(self):
        self.fan_setup()
        resp = json.loads(self.q({"cluster": "fan", "from": 100, "to": 110, "with-padding": False,
                                  "queries": [{"metric": "s", "host": "b"}], "for-all-nodes": ["m"]}))
        self.assertEqual(len(resp["queries"]), 4)
        self.assertEqual(len(resp["results"]), 5)
        self.assertEqual(resp["results"][0][0]["data"], [20])
        for q, row in zip(resp["queries"], resp["results"][1:]):
            self.assertEqual(row[0]["data"], [{"a": 1, "b": 2, "c": 3, "d": 4}[q["host"]]])

    def test_for_all_nodes_nothing_generated(self):
        self.fan_setup()
        self.assertEqual(self.q({"cluster": "nosuchcluster", "from": 100, "to": 110,
                                 "for-all-nodes": ["m"]}), '{"results":[]}\n')
        self.assertEqual(self.q({"cluster": "fan", "from": 100, "to": 110, "for-all-nodes": []}),
                         '{"results":[]}\n')
        body = self.q({"cluster": "nosuchcluster", "from": 100, "to": 110, "for-all-nodes": ["m"],
                       "queries": [{"metric": "m", "host": "x"}]})
        self.assertEqual(body, '{"results":[[]]}\n')

    # ---- number formatting -----------------------------------------------------------

    def test_number_formatting(self):
        vals = ["0.0625", "0.1875", "2.675", "0", "123456789", "0.1", "1e-7", "-1e-7", "-1.5",
                "1.0005", "1e30", "-2.5", "0.0005", "0.0015", "999999.9995"]
        self.w("fmt", "s", [(v, 100 + 10 * i) for i, v in enumerate(vals)])
        body = self.one("fmt", "s", 100, 100 + 10 * len(vals))
        want = ",".join("%.3f" % f32(float(v)) for v in vals)
        self.assertIn('"data":[%s]' % want, body)
        self.assertIn('"data":[0.062,0.188,2.675,0.000,123456792.000,0.100,0.000,-0.000,-1.500,', body)
        # negative zero prints with its sign (reached through scale-by)
        self.w("fmt0", "s", [("0", 100)])
        self.assertRow(self.one("fmt0", "s", 100, 110, scale_by=-1),
                       [entry_bytes([-0.0], 100, 110, 10, "-0.00", "-0.00", "-0.00")])
        # stats: %.2f with ties-to-even on the exact binary value
        self.w("fmt2", "s", [("0.125", 100), ("0.375", 110)])
        self.assertRow(self.one("fmt2", "s", 100, 120),
                       [entry_bytes([0.125, 0.375], 100, 120, 10, "0.25", "0.12", "0.38")])


class InvalidAggregationConfigTest(CCMSTestCase):
    """An unknown aggregation string starts with a
    warning and means none; null and "" are none too."""

    @classmethod
    def setUpClass(cls):
        cls.srv = start_server(cls, metrics={
            "inv": {"frequency": 10, "aggregation": "invalid"},
            "empty": {"frequency": 10, "aggregation": ""},
            "nul": {"frequency": 10, "aggregation": None},
            "ok": {"frequency": 10, "aggregation": "sum"},
        })

    def test_C1(self):
        body = "".join("%s,cluster=c,hostname=h,type=hwthread,type-id=%d value=%d 100\n" % (m, i, i + 1)
                       for m in ("inv", "empty", "nul", "ok") for i in range(2))
        self.assertWriteOK(self.srv.write(body.encode()))
        for metric in ("inv", "empty", "nul"):
            with self.subTest(metric=metric):
                r = self.srv.query({"cluster": "c", "from": 100, "to": 110, "with-padding": False,
                                    "queries": [{"metric": metric, "host": "h"},
                                                {"metric": metric, "host": "h", "type": "hwthread",
                                                 "type-ids": ["1"]}]})
                self.assertStatus(r, 200)
                self.assertEqual(unescape_html(r.body.decode()), '{"results":[[%s],[%s]]}\n' % (
                    error_entry("[METRICSTORE]> invalid aggregation"),
                    entry_bytes([2.0], 100, 110, 10, "2.00", "2.00", "2.00")))
        row = self.srv.row("ok", "h", 100, 110)
        self.assertEqual(row[0]["data"], [3.0])
