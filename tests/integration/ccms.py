"""Black-box test harness: starts the real ./cc-metric-store with a temporary
config and talks to it over HTTP (standard library only).

    srv = start_server(self, metrics={"m": {"frequency": 10, "aggregation": "avg"}})
    srv.write(b"m,cluster=c,hostname=h value=1 100\n")
    status, headers, body = srv.query({"cluster": "c", "from": 0, "to": 200, ...})

start_server() registers a cleanup that stops the server (SIGTERM, exit code 0
required) and removes its temporary directory, so a server that crashed during
a test makes that test fail.
"""
import http.client
import json
import os
import random
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
import unittest
import urllib.parse
from collections import namedtuple

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BINARY = os.environ.get("CCMS_BINARY", os.path.join(REPO, "cc-metric-store"))
# tests/tools/faultinject.c, built by `make test`: Server.faults = "<rules>"
# makes chosen file-system calls of the server fail (see that file).
FAULTINJECT = os.path.join(REPO, "build", "faultinject.so")
# Fixtures are part of the repository (tests/fixtures), found from this file.
TESTDATA = os.path.join(REPO, "tests", "fixtures")

START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0

Response = namedtuple("Response", "status headers body")

DEFAULT_METRICS = {"m": {"frequency": 10, "aggregation": "avg"}}


def long_retention():
    """A retention that reaches back to unix time 0 from now, so tests with
    fixed historical timestamps (fixtures from 2023, small synthetic times)
    stay inside the window whatever the date they run on."""
    return "%dh" % (int(time.time()) // 3600 + 24)


def rss_bytes(pid):
    """The resident set size of a process, from /proc/<pid>/status."""
    with open("/proc/%d/status" % pid) as fh:
        for ln in fh:
            if ln.startswith("VmRSS:"):
                return int(ln.split()[1]) * 1024
    raise AssertionError("no VmRSS for %d" % pid)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def f32(x):
    """x rounded to float32, as the store keeps it."""
    return struct.unpack("<f", struct.pack("<f", x))[0]


def unescape_html(text):
    """Upstream (Go encoding/json) writes <, > and & as \\u003c, \\u003e and
    \\u0026; both forms are valid JSON and acceptable (docs/http-api.md)."""
    if isinstance(text, bytes):
        return text.replace(b"\\u003c", b"<").replace(b"\\u003e", b">").replace(b"\\u0026", b"&")
    return text.replace("\\u003c", "<").replace("\\u003e", ">").replace("\\u0026", "&")


def codec_profiles(n, seed=7):
    """Series of n values (None = missing) that give the store's block codec
    each of its cases once sealed: walks with 0..6 decimals (DECIMAL), a
    gauge that mostly repeats its value (DECIMAL with the bitmap of moving
    steps), float noise (RAW), a walk in full float precision (BITS), a
    constant (CONST), a sparse series (bitmap
    of missing samples), and edge values (-0, subnormals, +-FLT_MAX, the smallest
    normal). Values are Python floats whose repr parses to the float32 the
    store keeps. -> {name: [value or None]}"""
    rnd = random.Random(seed)
    out = {}
    for k in range(7):
        x, vals = 50.0, []
        for _ in range(n):
            if rnd.random() < 0.75:
                x = min(100.0, max(0.0, x + rnd.uniform(-2, 2)))
            vals.append(f32(round(x, k)))
        out["dec%d" % k] = vals
    x, vals = 12.5, []
    for i in range(n):
        if rnd.random() < 0.2:
            x = min(64.0, max(0.0, x + rnd.uniform(-4, 4)))
        vals.append(None if i % 11 == 5 else f32(round(x, 2)))
    out["repeats"] = vals
    noise = []
    while len(noise) < n:
        v = struct.unpack("<f", struct.pack("<I", rnd.getrandbits(32)))[0]
        if v == v and abs(v) != float("inf"):
            noise.append(v)
    out["noise"] = noise
    x, vals = 40.0, []
    for _ in range(n):
        x += rnd.uniform(-1, 1) / 3
        vals.append(f32(x))
    out["fullprec"] = vals
    out["const"] = [42.5] * n
    out["sparse"] = [f32(round(rnd.uniform(0, 10), 2)) if i % 7 == 0 else None for i in range(n)]
    edges = [0.0, -0.0, f32(1e-40), f32(3.4e38), f32(-3.4e38), f32(1.17549435e-38), f32(0.1)]
    out["edges"] = [edges[i % len(edges)] if i % 3 else f32(i / 4) for i in range(n)]
    return out


def fmt3(v):
    return "null" if v is None or v != v else "%.3f" % v


def fmt2(v):
    return "null" if v is None or v != v else "%.2f" % v


def line(metric, value, ts=None, cluster="c", host="h", **tags):
    """One line-protocol line. Extra tags use '_' for '-' (type_id -> type-id)."""
    parts = [metric]
    if cluster is not None:
        parts.append("cluster=" + cluster)
    if host is not None:
        parts.append("hostname=" + host)
    for k, v in tags.items():
        parts.append("%s=%s" % (k.replace("_", "-"), v))
    s = ",".join(parts) + " value=" + str(value)
    if ts is not None:
        s += " " + str(ts)
    return s + "\n"


def lines(*ls):
    return "".join(ls).encode()


def parse_debug(body):
    """The debug dump is JSON with trailing commas; strip them and parse."""
    text = body.decode() if isinstance(body, bytes) else body
    text = re.sub(r",(\s*[}\]])", r"\1", text)
    return json.loads(text)


class ServerError(AssertionError):
    pass


def wait_listening(port, proc, timeout=START_TIMEOUT):
    """Waits until 127.0.0.1:port accepts connections. Returns None, or a
    reason if proc exited or the timeout passed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return "server exited with %d during startup" % proc.returncode
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return None
        except OSError:
            time.sleep(0.02)
    return "server did not accept connections within %.0f s" % timeout


class Server:
    def __init__(self, metrics=None, retention=None, main=None, store=None,
                 config=None, args=(), raw_config=None, extra_top=None):
        """metrics: the "metrics" section; main/store: keys merged into the
        "main"/"metric-store" sections; config: a whole config dict used as
        is except main.addr (set to the test port); raw_config: config file
        text written verbatim (then addr is whatever it says)."""
        self.tmp = tempfile.mkdtemp(prefix="ccms-it-")
        self.faults = None          # CCMS_FAULTS rules for the next start()
        self.preexec = None         # called in the child before exec (e.g. rlimits)
        self.port = free_port()
        self.addr = "127.0.0.1:%d" % self.port
        self.ckpt_dir = os.path.join(self.tmp, "checkpoints")
        if raw_config is None:
            if config is None:
                config = {
                    "main": {"addr": self.addr},
                    "metrics": metrics if metrics is not None else DEFAULT_METRICS,
                    "metric-store": {
                        "checkpoints": {"directory": self.ckpt_dir},
                        "retention-in-memory": retention or long_retention(),
                        "memory-cap": 0,
                    },
                }
                config["main"].update(main or {})
                config["metric-store"].update(store or {})
                if extra_top:
                    config.update(extra_top)
            else:
                config = json.loads(json.dumps(config))
                config.setdefault("main", {})["addr"] = self.addr
            raw_config = json.dumps(config, indent=2)
        self.config_path = os.path.join(self.tmp, "config.json")
        with open(self.config_path, "w") as fh:
            fh.write(raw_config)
        self.args = list(args)
        self.proc = None
        self._out = None
        self._err = None
        self.returncode = None
        self.stopped = False

    # ---- process control -------------------------------------------------

    def start(self, wait=True):
        for fh in (getattr(self, "_out", None), getattr(self, "_err", None)):
            if fh is not None and not fh.closed:   # logs of an earlier run
                fh.close()
        self._out = open(os.path.join(self.tmp, "stdout.log"), "wb")
        self._err = open(os.path.join(self.tmp, "stderr.log"), "wb")
        env = None
        if self.faults:
            env = dict(os.environ, CCMS_FAULTS=self.faults, LD_PRELOAD=FAULTINJECT)
        self.proc = subprocess.Popen(
            [BINARY, "-config", self.config_path] + self.args,
            cwd=self.tmp, stdin=subprocess.DEVNULL, stdout=self._out, stderr=self._err, env=env,
            preexec_fn=self.preexec)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=START_TIMEOUT):
        err = wait_listening(self.port, self.proc, timeout)
        if err:
            raise ServerError("%s\nstdout:\n%s\nstderr:\n%s" % (err, self.stdout(), self.stderr()))

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        """SIGTERM; asserts exit code 0 within STOP_TIMEOUT. Returns stdout."""
        if self.proc is None:
            return ""
        self.stopped = True
        if self.proc.poll() is not None:
            self.returncode = self.proc.returncode
            raise ServerError("server had already exited with %d\nstderr:\n%s"
                              % (self.returncode, self.stderr()[-4000:]))
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.returncode = self.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise ServerError("server did not exit within %.0f s of SIGTERM\nstderr:\n%s"
                              % (STOP_TIMEOUT, self.stderr()[-4000:]))
        if self.returncode != 0:
            raise ServerError("server exited with %d after SIGTERM\nstderr:\n%s"
                              % (self.returncode, self.stderr()[-4000:]))
        return self.stdout()

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def close(self):
        """Cleanup: stop (asserting a clean exit) and remove the temp dir."""
        try:
            if self.proc is not None and not self.stopped:
                self.stop()
        finally:
            self.kill()
            for fh in (self._out, self._err):
                if fh is not None:
                    fh.close()
            shutil.rmtree(self.tmp, ignore_errors=True)

    def stdout(self):
        return self._read_log("stdout.log")

    def stderr(self):
        return self._read_log("stderr.log")

    def _read_log(self, name):
        try:
            with open(os.path.join(self.tmp, name), "rb") as fh:
                return fh.read().decode(errors="replace")
        except OSError:
            return ""

    # ---- HTTP ------------------------------------------------------------

    def raw(self, method, path, body=None, headers=None, timeout=15):
        """One request on a fresh connection -> Response(status, headers, body)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            if isinstance(body, str):
                body = body.encode()
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            data = resp.read()
            return Response(resp.status, resp.msg, data)
        finally:
            conn.close()

    def write(self, body, params=None, path="/api/write"):
        """params: dict (url-encoded) or a raw query string."""
        if params:
            path += "?" + (params if isinstance(params, str) else urllib.parse.urlencode(params))
        return self.raw("POST", path, body)

    def query(self, obj, method="GET", path="/api/query", headers=None):
        body = obj if isinstance(obj, (bytes, str)) else json.dumps(obj).encode()
        return self.raw(method, path, body, headers)

    def free(self, to, selectors=None, body=None, path="/api/free"):
        if to is not None:
            path += "?to=" + urllib.parse.quote(str(to), safe="")
        if body is None:
            body = json.dumps(selectors if selectors is not None else []).encode()
        return self.raw("POST", path, body)

    def debug(self, selector=None, path="/api/debug"):
        if selector is not None:
            path += "?selector=" + urllib.parse.quote(selector, safe=":")
        return self.raw("GET", path)

    def health(self, obj, method="GET", path="/api/healthcheck"):
        body = obj if isinstance(obj, (bytes, str)) else json.dumps(obj).encode()
        return self.raw(method, path, body)

    def send_raw_bytes(self, data, shutdown_write=True, read_timeout=10, close_early=False):
        """Sends data on a raw socket (tolerating the peer closing early),
        optionally half-closes, and returns every byte the server sends back
        until it closes or read_timeout passes."""
        s = socket.create_connection(("127.0.0.1", self.port), timeout=read_timeout)
        try:
            try:
                s.sendall(data)
            except (BrokenPipeError, ConnectionResetError):
                pass
            if close_early:
                return b""
            if shutdown_write:
                try:
                    s.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
            chunks = []
            try:
                while True:
                    c = s.recv(65536)
                    if not c:
                        break
                    chunks.append(c)
            except (socket.timeout, ConnectionResetError):
                pass
            return b"".join(chunks)
        finally:
            s.close()

    def exchange(self, head, body=b"", piece=1024, read_timeout=10):
        """Sends head, then body in pieces, stopping as soon as the server
        answers (a server may reject a request before reading its whole body;
        writing on would make its kernel reset the connection and lose the
        answer). Returns the raw response (b"" if the server sent none)."""
        s = socket.create_connection(("127.0.0.1", self.port), timeout=read_timeout)
        try:
            try:
                s.sendall(head)
                for i in range(0, len(body), piece):
                    readable, _, _ = select.select([s], [], [], 0.02)
                    if readable:
                        break
                    s.sendall(body[i:i + piece])
            except (BrokenPipeError, ConnectionResetError):
                pass
            return read_http_response(s)
        finally:
            s.close()

    # ---- convenience ---------------------------------------------------------

    def query_json(self, obj):
        r = self.query(obj)
        if r.status != 200:
            raise AssertionError("query -> %d %r" % (r.status, r.body[:500]))
        return json.loads(r.body)

    def row(self, metric, host, frm, to, cluster="c", padding=False, **kw):
        """Results row (list of entries) of one query."""
        q = {"metric": metric, "host": host}
        for k, v in kw.items():
            q[k.replace("_", "-")] = v
        req = {"cluster": cluster, "from": frm, "to": to, "queries": [q],
               "with-padding": padding}
        return self.query_json(req)["results"][0]

    def alive(self):
        if not self.running():
            return False
        r = self.debug()
        return r.status == 200


def read_http_response(sock):
    """Reads one HTTP response (headers + Content-Length body, or up to EOF)
    from sock; tolerates resets and timeouts (returns what arrived)."""
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            c = sock.recv(65536)
            if not c:
                return data
            data += c
        head, _, rest = data.partition(b"\r\n\r\n")
        m = re.search(rb"(?im)^content-length:\s*(\d+)\s*$", head)
        if m:
            need = int(m.group(1))
            while len(rest) < need:
                c = sock.recv(65536)
                if not c:
                    break
                rest += c
            return head + b"\r\n\r\n" + rest
        while True:
            c = sock.recv(65536)
            if not c:
                break
            data += c
    except (socket.timeout, ConnectionResetError):
        pass
    return data


def start_server(testcase, start=True, **kw):
    """Creates (and by default starts) a server whose cleanup is registered on
    testcase (an instance, or a class inside setUpClass)."""
    srv = Server(**kw)
    if isinstance(testcase, type):
        testcase.addClassCleanup(srv.close)
    else:
        testcase.addCleanup(srv.close)
    if start:
        srv.start()
    return srv


def run_binary(args, cwd=None, timeout=10):
    """Runs the binary to completion -> CompletedProcess (text output)."""
    return subprocess.run([BINARY] + list(args), cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


REASON = {400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
          413: "Request Entity Too Large", 500: "Internal Server Error"}


class CCMSTestCase(unittest.TestCase):
    """Assertions shared by the integration tests."""

    maxDiff = 4000

    def assertStatus(self, r, status, msg=None):
        if r.status != status:
            self.fail("%sexpected HTTP %d, got %d; body %r"
                      % ((msg + ": ") if msg else "", status, r.status, r.body[:600]))

    def assertWriteOK(self, r, msg=None):
        self.assertStatus(r, 200, msg)
        self.assertEqual(r.body, b"", msg)

    def assertErrorResponse(self, r, status=400, error=None, contains=None):
        """ErrorResponse: {"status":"<reason>","error":"<msg>"}\\n, JSON."""
        self.assertStatus(r, status)
        ctype = r.headers.get("Content-Type", "")
        self.assertTrue(ctype.startswith("application/json"),
                        "Content-Type %r, body %r" % (ctype, r.body[:300]))
        self.assertTrue(r.body.endswith(b"\n"), r.body[:300])
        obj = json.loads(r.body)
        self.assertEqual(list(obj.keys()), ["status", "error"], r.body[:300])
        self.assertEqual(obj["status"], REASON.get(status, obj["status"]))
        if error is not None:
            self.assertEqual(obj["error"], error)
        for c in contains or ():
            self.assertIn(c, obj["error"])
        return obj["error"]

    def assertOneEntry(self, row):
        self.assertEqual(len(row), 1, row)
        return row[0]
