"""GET /metrics (docs/metrics.md): the Prometheus text exposition, checked
with Debian's `promtool check metrics`, scraped by a real Prometheus
(Debian package prometheus, started here on a free loopback port) whose
HTTP API must return the ingest counter this test wrote, and the access
rules: /metrics follows the JWT setting, main.metrics-addr serves it alone
without authentication.
"""
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request

from ccms import CCMSTestCase, free_port, start_server
from test_auth import Ed25519Key, make_token

METRICS = {"load": {"frequency": 10, "aggregation": "avg"}}


def tool(name):
    found = shutil.which(name)
    if found is None:
        raise AssertionError("%s not found: install the Debian package prometheus "
                             "(scripts/install-deps.sh)" % name)
    return found


def samples(text):
    """{(name, frozenset(labels)): value} of an exposition."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$', line)
        if m is None:
            raise AssertionError("not an exposition line: %r" % line)
        labels = frozenset(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
        out[(m.group(1), labels)] = float(m.group(4))
    return out


def lp(host, value, ts, metric="load"):
    return "%s,cluster=c,hostname=%s,type=node value=%s %d\n" % (metric, host, value, ts)


class MetricsEndpointTest(CCMSTestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = start_server(cls, metrics=METRICS)

    def scrape(self, srv=None, headers=None):
        r = (srv or self.srv).raw("GET", "/metrics", headers=headers)
        self.assertStatus(r, 200)
        self.assertEqual(r.headers.get("Content-Type"), "text/plain; version=0.0.4; charset=utf-8")
        return r.body.decode()

    def test_promtool_accepts_the_output(self):
        now = int(time.time())
        self.srv.write(lp("h1", 1, now) + "garbage\n" + lp("h1", "x", now))
        self.srv.query({"cluster": "c", "from": now - 60, "to": now,
                        "queries": [{"metric": "load", "host": "h1"}]})
        text = self.scrape()
        p = subprocess.run([tool("promtool"), "check", "metrics"], input=text.encode(),
                           capture_output=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stdout.decode() + p.stderr.decode())
        self.assertEqual(p.stdout.decode() + p.stderr.decode(), "")

    def test_counters_follow_what_happened(self):
        now = int(time.time())
        before = samples(self.scrape())
        acc = ("ccms_ingest_lines_total", frozenset({("source", "http"), ("result", "accepted")}))
        rej_value = ("ccms_ingest_rejected_lines_total", frozenset({("reason", "field")}))
        rej_time = ("ccms_ingest_rejected_lines_total", frozenset({("reason", "timestamp")}))
        ign = ("ccms_ingest_lines_total", frozenset({("source", "http"), ("result", "ignored")}))
        body = "".join(lp("h%d" % i, i, now - 10 * i) for i in range(5))
        body += lp("h9", "true", now) + lp("h9", 1, now + 10 ** 6) + lp("h9", 1, now, "other")
        r = self.srv.write(body)
        self.assertStatus(r, 400)
        # a request is counted once its answer has gone out, which the
        # server notes just after the client has read it: wait for that
        writes = ("ccms_http_requests_total", frozenset({("route", "write"), ("code", "400")}))
        deadline = time.monotonic() + 10
        while True:
            after = samples(self.scrape())
            if after.get(writes, 0) > before.get(writes, 0) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        self.assertEqual(after[acc] - before.get(acc, 0), 5)
        self.assertEqual(after[rej_value] - before.get(rej_value, 0), 1)
        self.assertEqual(after[rej_time] - before.get(rej_time, 0), 1)
        self.assertEqual(after[ign] - before.get(ign, 0), 1)
        self.assertGreaterEqual(after[("ccms_store_samples", frozenset())], 5)
        self.assertEqual(after.get(writes, 0) - before.get(writes, 0), 1)
        hist = ("ccms_http_request_duration_seconds_count", frozenset({("route", "write")}))
        self.assertGreaterEqual(after[hist], 1)
        inf = ("ccms_http_request_duration_seconds_bucket",
               frozenset({("route", "write"), ("le", "+Inf")}))
        self.assertEqual(after[inf], after[hist])
        self.assertGreaterEqual(after[("ccms_http_open_connections", frozenset())], 1)
        info = [k for k in after if k[0] == "ccms_build_info"]
        self.assertEqual(len(info), 1)
        self.assertIn("version", dict(info[0][1]))

    def test_log_fsync_histogram_with_fsync_always(self):
        srv = start_server(self, metrics=METRICS,
                           store={"checkpoints": {"directory": "ck", "fsync": "always"}})
        now = int(time.time())
        for i in range(3):
            self.assertStatus(srv.write(lp("f", i, now - 10 * i)), 200)
        got = samples(self.scrape(srv))
        self.assertGreaterEqual(got[("ccms_wal_fsync_duration_seconds_count", frozenset())], 3)
        self.assertEqual(got[("ccms_persistence_info", frozenset({("format", "native")}))], 1)


    def test_retention_and_cleanup_runs_are_counted(self):
        srv = start_server(self, metrics=METRICS, retention="2s")
        deadline = time.monotonic() + 20

        def got():
            return samples(self.scrape(srv))
        while True:
            now = got()
            if (now[("ccms_retention_runs_total", frozenset())] >= 1 and
                    now[("ccms_cleanup_runs_total", frozenset())] >= 1):
                break
            self.assertLess(time.monotonic(), deadline, "no retention and cleanup runs counted")
            time.sleep(0.2)
        self.assertGreaterEqual(now[("ccms_retention_duration_seconds_total", frozenset())], 0)
        self.assertEqual(now[("ccms_cleanup_failures_total", frozenset())], 0)


class MetricsAccessTest(CCMSTestCase):
    @classmethod
    def setUpClass(cls):
        cls.keydir = tempfile.mkdtemp(prefix="ccms-metrics-keys-")
        cls.addClassCleanup(shutil.rmtree, cls.keydir, True)
        cls.key = Ed25519Key(cls.keydir, "server")
        cls.metrics_port = free_port()
        cls.srv = start_server(cls, metrics=METRICS, main={
            "jwt-public-key": cls.key.public_b64,
            "metrics-addr": "127.0.0.1:%d" % cls.metrics_port})
        cls.token = make_token(cls.key)

    def get(self, port, path, headers=None):
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def test_main_listener_follows_jwt(self):
        status, body = self.get(self.srv.port, "/metrics")
        self.assertEqual(status, 401, body)
        status, body = self.get(self.srv.port, "/metrics",
                                {"Authorization": "Bearer " + self.token})
        self.assertEqual(status, 200, body)
        self.assertIn(b"ccms_build_info", body)

    def test_metrics_addr_serves_metrics_alone_without_auth(self):
        status, body = self.get(self.metrics_port, "/metrics")
        self.assertEqual(status, 200, body)
        self.assertIn(b"ccms_ingest_lines_total", body)
        for path in ("/api/status", "/api/query", "/api/write", "/api/debug"):
            status, _ = self.get(self.metrics_port, path,
                                 {"Authorization": "Bearer " + self.token})
            self.assertEqual(status, 404, path)


class PrometheusTest(CCMSTestCase):
    """A real Prometheus scrapes the store (with the JWT as bearer token)."""

    def test_prometheus_scrapes_the_ingest_counter(self):
        keydir = tempfile.mkdtemp(prefix="ccms-prom-")
        self.addCleanup(shutil.rmtree, keydir, True)
        key = Ed25519Key(keydir, "server")
        srv = start_server(self, metrics=METRICS, main={"jwt-public-key": key.public_b64})
        token = make_token(key)
        port = free_port()
        with open(os.path.join(keydir, "prometheus.yml"), "w") as fh:
            fh.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                     "scrape_configs:\n  - job_name: ccms\n"
                     "    authorization:\n      credentials: %s\n"
                     "    static_configs:\n      - targets: ['%s']\n" % (token, srv.addr))
        log = open(os.path.join(keydir, "prometheus.log"), "wb")
        prom = subprocess.Popen([tool("prometheus"),
                                 "--config.file=" + os.path.join(keydir, "prometheus.yml"),
                                 "--storage.tsdb.path=" + os.path.join(keydir, "data"),
                                 "--web.listen-address=127.0.0.1:%d" % port],
                                stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        log.close()

        def stop():
            prom.terminate()
            try:
                prom.wait(timeout=20)
            except subprocess.TimeoutExpired:
                prom.kill()
                prom.wait()
        self.addCleanup(stop)

        def api(path, **params):
            url = "http://127.0.0.1:%d%s?%s" % (port, path, urllib.parse.urlencode(params))
            try:
                with urllib.request.urlopen(url, timeout=5) as r:
                    return json.loads(r.read())
            except (OSError, ValueError):
                return None

        def wait(pred, what, timeout=60):
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if prom.poll() is not None:
                    with open(os.path.join(keydir, "prometheus.log"), "rb") as fh:
                        self.fail("prometheus exited: " + fh.read().decode(errors="replace")[-3000:])
                got = pred()
                if got:
                    return got
                time.sleep(0.25)
            self.fail("timed out waiting for " + what)

        def target_up():
            t = api("/api/v1/targets")
            active = t and t["data"]["activeTargets"]
            return active and active[0]["health"] == "up" and active[0]
        target = wait(target_up, "the store's target to be up")
        self.assertEqual(target["lastError"], "")
        now = int(time.time())
        n = 37
        self.assertStatus(srv.raw("POST", "/api/write",
                                  "".join(lp("p%d" % i, i, now) for i in range(n)),
                                  {"Authorization": "Bearer " + token}), 200)

        def counter():
            r = api("/api/v1/query",
                    query='ccms_ingest_lines_total{job="ccms",source="http",result="accepted"}')
            res = r and r["status"] == "success" and r["data"]["result"]
            return res and float(res[0]["value"][1]) == n and res
        wait(counter, "PromQL to return the %d accepted lines" % n)
        up = api("/api/v1/query", query='up{job="ccms"}')
        self.assertEqual(up["data"]["result"][0]["value"][1], "1")
