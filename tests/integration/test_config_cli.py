"""Configuration loading and command line (README "Configuration", docs/compatibility.md)."""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time

from ccms import (BINARY, TESTDATA, CCMSTestCase, Server, free_port, run_binary, start_server,
                  wait_listening)

TOKEN = ("eyJ0eXAiOiJKV1QiLCJhbGciOiJFZERTQSJ9.eyJ1c2VyIjoiYWRtaW4iLCJyb2xlcyI6WyJST0xFX0FETUlOIiwiUk9M"
         "RV9BTkFMWVNUIiwiUk9MRV9VU0VSIl19.d-3_3FZTsadPjDEdsWrrQ7nS0edMAR4zjl-eK7rJU3HziNBfI9PDHDIpJVHTNN5E"
         "5SlLGLFXctWyKAkwhXL-Dw")

QUERY = json.dumps({"cluster": "fritz", "from": 0, "to": 10,
                    "queries": [{"metric": "cpu_load", "host": "h"}]}).encode()


def base_config(tmp, port=None, metrics=None):
    return {
        "main": {"addr": "127.0.0.1:%d" % (port or free_port())},
        "metrics": metrics or {"m": {"frequency": 10, "aggregation": "avg"}},
        "metric-store": {"checkpoints": {"directory": os.path.join(tmp, "ckpt")},
                         "retention-in-memory": "48h", "memory-cap": 0},
    }


class UpstreamConfigTest(CCMSTestCase):
    """The shipped v1.5.4 config loads unchanged (JWT key -> auth on)."""

    @classmethod
    def setUpClass(cls):
        with open(os.path.join(TESTDATA, "upstream-config.json")) as fh:
            cfg = json.load(fh)
        cls.srv = start_server(cls, config=cfg)

    def test_requires_token(self):
        r = self.srv.query(QUERY)
        self.assertStatus(r, 401)
        self.assertTrue(r.headers.get("Content-Type", "").startswith("text/plain"))
        self.assertEqual(r.body, b"Use JWT Authentication\n")
        for method, path, body in (("POST", "/api/write", b"cpu_load,cluster=fritz,hostname=h value=1 100\n"),
                                   ("POST", "/api/free?to=1", b"[]"), ("GET", "/api/debug", None),
                                   ("GET", "/api/healthcheck", b'{"cluster":"fritz","nodes":[]}'),
                                   ("GET", "/api/query/", QUERY)):
            with self.subTest(path=path):
                self.assertStatus(self.srv.raw(method, path, body), 401)

    def test_bad_tokens(self):
        for auth in ("Bearer", "Bearer ", "bearer " + TOKEN, "Basic abc", TOKEN, "Bearer x.y",
                     "Bearer " + TOKEN[:-2] + "AA", "Bearer  " + TOKEN):
            with self.subTest(auth=auth):
                r = self.srv.query(QUERY, headers={"Authorization": auth})
                self.assertStatus(r, 401)
                self.assertTrue(r.body.endswith(b"\n"))

    def test_valid_token(self):
        hdr = {"Authorization": "Bearer " + TOKEN}
        now = int(time.time())
        r = self.srv.raw("POST", "/api/write",
                         b"cpu_load,cluster=fritz,hostname=h0 value=7 %d\n" % (now - 100), hdr)
        self.assertStatus(r, 200)
        r = self.srv.raw("POST", "/api/write", b"cpu_load,cluster=fritz,hostname=h value=8 %d\n" % now, hdr)
        self.assertStatus(r, 200)
        # from inside the slot of the sample at now: exactly one point
        q = {"cluster": "fritz", "from": now - 20, "to": now + 60, "with-padding": False,
             "queries": [{"metric": "cpu_load", "host": "h"}]}
        r = self.srv.query(q, headers=hdr)
        self.assertStatus(r, 200)
        self.assertIn(b'"data":[8.000]', r.body)
        # cached token: still fine
        self.assertStatus(self.srv.query(QUERY, headers=hdr), 200)

    def test_404_405_without_auth(self):
        r = self.srv.raw("GET", "/nope")
        self.assertStatus(r, 404)
        self.assertEqual(r.body, b"404 page not found\n")
        r = self.srv.raw("GET", "/api/write")
        self.assertStatus(r, 405)
        self.assertEqual(r.body, b"Method Not Allowed\n")


class ConfigRejectTest(CCMSTestCase):
    """Invalid configurations end the process with exit code 1."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="ccms-cfg-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def run_config(self, text, args=()):
        path = os.path.join(self.tmp, "config.json")
        with open(path, "w") as fh:
            fh.write(text if isinstance(text, str) else json.dumps(text))
        try:
            return run_binary(["-config", path] + list(args), cwd=self.tmp, timeout=8)
        except subprocess.TimeoutExpired:
            self.fail("server kept running with an invalid config")

    def assertRejected(self, cfg, *needles):
        p = self.run_config(cfg)
        out = p.stdout + p.stderr
        self.assertEqual(p.returncode, 1, out[-2000:])
        for n in needles:
            self.assertIn(n, out)
        return out

    def test_legacy_config(self):
        with open(os.path.join(TESTDATA, "upstream-config-nats.json")) as fh:
            text = fh.read()
        self.assertRejected(text, "main configuration must be present")

    def test_unknown_keys_named(self):
        cases = [("main", "bogus-main-key"), ("metric-store", "bogus-store-key")]
        for section, key in cases:
            with self.subTest(key=key):
                cfg = base_config(self.tmp)
                cfg[section][key] = 1
                self.assertRejected(cfg, key)
        cfg = base_config(self.tmp)
        cfg["metric-store"]["checkpoints"]["bogus-nested-key"] = "x"
        self.assertRejected(cfg, "bogus-nested-key")
        cfg = base_config(self.tmp)
        cfg["metrics"]["m"]["bogus-metric-key"] = 1
        self.assertRejected(cfg, "bogus-metric-key")

    def test_frequency_zero_or_negative(self):
        for freq in (0, -10):
            with self.subTest(freq=freq):
                cfg = base_config(self.tmp, metrics={"m": {"frequency": freq, "aggregation": None}})
                self.assertRejected(cfg)

    def test_bad_metric_entries(self):
        for entry in ({"aggregation": "sum"}, {"frequency": 10}, {"frequency": "10", "aggregation": None},
                      {"frequency": 1.5, "aggregation": None}, {"frequency": 10, "aggregation": 5}):
            with self.subTest(entry=entry):
                self.assertRejected(base_config(self.tmp, metrics={"m": entry}))

    def test_too_many_metrics(self):
        metrics = {"m%05d" % i: {"frequency": 60, "aggregation": None} for i in range(65536)}
        self.assertRejected(base_config(self.tmp, metrics=metrics),
                            '"metrics" has 65536 entries; at most 65535 are supported')

    def test_bad_duration(self):
        for value in ("2d", "30", "abc", "", "1h 30m"):
            with self.subTest(value=value):
                cfg = base_config(self.tmp)
                cfg["metric-store"]["retention-in-memory"] = value
                self.assertRejected(cfg)

    def test_missing_required(self):
        cfg = base_config(self.tmp)
        del cfg["metric-store"]["retention-in-memory"]
        self.assertRejected(cfg)
        cfg = base_config(self.tmp)
        del cfg["metric-store"]["memory-cap"]
        self.assertRejected(cfg)
        cfg = base_config(self.tmp)
        del cfg["metrics"]
        self.assertRejected(cfg)
        cfg = base_config(self.tmp)
        del cfg["metric-store"]
        self.assertRejected(cfg)
        cfg = base_config(self.tmp)
        del cfg["main"]
        self.assertRejected(cfg, "main configuration must be present")

    def test_invalid_json(self):
        for text in ("{", "", "not json", '{"main": {"addr": "127.0.0.1:1"},}'):
            with self.subTest(text=text):
                self.assertRejected(text)

    def test_missing_file(self):
        p = run_binary(["-config", os.path.join(self.tmp, "does-not-exist.json")], cwd=self.tmp, timeout=8)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)


class ConfigAcceptTest(CCMSTestCase):
    def test_durations_aggregations_and_our_keys(self):
        srv = start_server(self, metrics={
            "a": {"frequency": 60, "aggregation": None},
            "b": {"frequency": 60, "aggregation": ""},
            "c": {"frequency": 60, "aggregation": "sum"},
            "d": {"frequency": 60, "aggregation": "avg"},
        }, retention="1h30m", main={
            "https-cert-file": "", "https-key-file": "", "user": "", "group": "", "backend-url": "",
            "jwt-public-key": "", "debug": {"dump-to-file": "", "gops": False},
            "max-body-size": 1 << 20, "max-json-body-size": 1 << 20, "max-line-length": 4096,
            "max-query-points": 100000, "max-new-levels-per-request": 1000, "read-timeout": "30s",
            "write-timeout": "30s", "http-threads": 2, "max-connections": 64,
        }, store={"checkpoint-interval": "1.5h", "num-workers": 2, "future-tolerance": "30m",
                  "checkpoints": {"file-format": "wal", "directory": "ckpt", "max-wal-size": 0,
                                  "fsync": "interval"},
                  "cleanup": {"mode": "delete"}})
        r = srv.write(b"d,cluster=x,hostname=y value=1\n")
        self.assertStatus(r, 200)

    def test_file_format_json(self):
        srv = start_server(self, store={"checkpoints": {"file-format": "json", "directory": "ckpt"}})
        self.assertStatus(srv.write(b"m,cluster=x,hostname=y value=1\n"), 200)


class CommandLineTest(CCMSTestCase):
    def test_version(self):
        p = run_binary(["-version"])
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stdout, r"\AVersion:\t\S.*\nGit hash:\t\S.*\nBuild time:\t\S.*\n\Z")

    def test_help(self):
        for flag in ("-h", "-help", "--help"):
            with self.subTest(flag=flag):
                p = run_binary([flag])
                self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
                self.assertIn("-config", p.stdout + p.stderr)

    def test_unknown_flag(self):
        p = run_binary(["-no-such-flag"])
        self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
        self.assertIn("-config", p.stderr)

    def test_sigterm_and_sigint_graceful(self):
        for sig in (signal.SIGTERM, signal.SIGINT):
            with self.subTest(sig=sig):
                srv = Server()
                try:
                    srv.start()
                    self.assertStatus(srv.write(b"m,cluster=c,hostname=h value=1\n"), 200)
                    srv.proc.send_signal(sig)
                    rc = srv.proc.wait(timeout=10)
                    srv.stopped = True
                    self.assertEqual(rc, 0, srv.stderr()[-2000:])
                    self.assertIn("Graceful shutdown completed!", srv.stdout())
                finally:
                    srv.close()

    def test_flag_syntax_variants(self):
        tmp = tempfile.mkdtemp(prefix="ccms-cli-")
        self.addCleanup(shutil.rmtree, tmp, True)
        port = free_port()
        path = os.path.join(tmp, "config.json")
        with open(path, "w") as fh:
            json.dump(base_config(tmp, port), fh)
        for args in (["--config", path], ["-config=" + path], ["-config", path, "-loglevel", "debug",
                                                                "-logdate"], ["-config", path, "-gops"],
                     ["-config", path, "-loglevel=err"]):
            with self.subTest(args=args):
                proc = subprocess.Popen([BINARY] + args, cwd=tmp, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
                try:
                    self.assertIsNone(wait_listening(port, proc))
                finally:
                    proc.send_signal(signal.SIGTERM)
                    out, err = proc.communicate(timeout=10)
                self.assertEqual(proc.returncode, 0, err.decode(errors="replace")[-2000:])
                self.assertIn(b"Graceful shutdown completed!", out)

    def test_default_config_path(self):
        # -config defaults to ./config.json in the working directory
        tmp = tempfile.mkdtemp(prefix="ccms-cli-")
        self.addCleanup(shutil.rmtree, tmp, True)
        port = free_port()
        with open(os.path.join(tmp, "config.json"), "w") as fh:
            json.dump(base_config(tmp, port), fh)
        proc = subprocess.Popen([BINARY], cwd=tmp, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL)
        try:
            self.assertIsNone(wait_listening(port, proc))
        finally:
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=10)
        self.assertEqual(proc.returncode, 0, err[-2000:])

