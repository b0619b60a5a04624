"""NATS ingestion against a real nats-server (README "NATS",
docs/compatibility.md).

Each test starts `nats-server` (Debian package nats-server) on a free
loopback port and publishes with the raw NATS text protocol
(CONNECT / PUB / PING) from NatsPublisher below; the store under test is
the real ./cc-metric-store. A missing nats-server is a failure, not a skip.
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

from ccms import CCMSTestCase, free_port, parse_debug, start_server

T = 1725827460                   # on the 10 s grid of metric "m"
METRICS = {"m": {"frequency": 10, "aggregation": "avg"}}
WAIT = 15.0                      # seconds to wait for something asynchronous


def nats_server_binary():
    found = shutil.which("nats-server")
    if found is None and os.access("/usr/sbin/nats-server", os.X_OK):
        found = "/usr/sbin/nats-server"
    return found


def wait_until(predicate, timeout=WAIT, what="condition"):
    """Polls predicate() until it returns a true value; fails after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.0f s waiting for %s" % (timeout, what))
        time.sleep(0.05)


class NatsServer:
    """A nats-server process on 127.0.0.1:port (restartable on the same port,
    keeping its JetStream data). cluster: (cluster name, this node's name,
    its route port, the route ports of the other nodes) for a node of a
    JetStream cluster."""

    def __init__(self, port=None, user=None, password=None, jetstream=False, cluster=None):
        self.binary = nats_server_binary()
        self.port = port or free_port()
        self.user, self.password = user, password
        self.jetstream = jetstream or cluster is not None
        self.cluster = cluster
        self.proc = None
        self.tmp = tempfile.mkdtemp(prefix="ccms-nats-")
        self.log_path = os.path.join(self.tmp, "nats-server.log")

    def cluster_config(self):
        name, server_name, route_port, peers = self.cluster
        path = os.path.join(self.tmp, "node.conf")
        with open(path, "w") as fh:
            fh.write('server_name: "%s"\nlisten: "127.0.0.1:%d"\n'
                     'jetstream { store_dir: "%s" }\n'
                     'cluster {\n  name: "%s"\n  listen: "127.0.0.1:%d"\n  routes: [%s]\n}\n'
                     % (server_name, self.port, os.path.join(self.tmp, "jetstream"), name,
                        route_port, ", ".join('"nats-route://127.0.0.1:%d"' % p for p in peers)))
        return path

    def start(self):
        args = [self.binary, "-a", "127.0.0.1", "-p", str(self.port)]
        if self.cluster is not None:
            args = [self.binary, "-c", self.cluster_config()]
        if self.user is not None:
            args += ["--user", self.user, "--pass", self.password]
        if self.jetstream and self.cluster is None:
            args += ["-js", "-sd", os.path.join(self.tmp, "jetstream")]
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        log.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("nats-server exited with %d:\n%s"
                                     % (self.proc.returncode, self.log()))
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    if s.recv(4096).startswith(b"INFO"):
                        return self
            except OSError:
                time.sleep(0.02)
        raise AssertionError("nats-server did not start:\n" + self.log())

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def close(self):
        self.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def log(self):
        try:
            with open(self.log_path, "rb") as fh:
                return fh.read().decode(errors="replace")
        except OSError:
            return ""

    def url(self):
        return "nats://127.0.0.1:%d" % self.port


class NatsPublisher:
    """Minimal NATS client: CONNECT, PUB, and PING/PONG as a flush."""

    def __init__(self, port, user=None, password=None):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buf = b""
        info = self._line()
        if not info.startswith(b"INFO"):
            raise AssertionError("unexpected greeting %r" % info)
        opts = {"verbose": False, "pedantic": False, "name": "test-publisher", "lang": "python"}
        if user is not None:
            opts.update(user=user, **{"pass": password})
        self.sock.sendall(b"CONNECT " + json.dumps(opts).encode() + b"\r\n")
        self.flush()

    def _line(self):
        while b"\r\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("nats-server closed the connection: %r" % self.buf)
            self.buf += data
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def pub(self, subject, payload):
        if isinstance(payload, str):
            payload = payload.encode()
        self.sock.sendall(b"PUB %s %d\r\n%s\r\n" % (subject.encode(), len(payload), payload))

    def flush(self):
        """Round trip: every earlier PUB has been processed by the server."""
        self.sock.sendall(b"PING\r\n")
        while True:
            line = self._line()
            if line == b"PONG":
                return
            if line.startswith(b"-ERR"):
                raise AssertionError("nats-server: %r" % line)

    def request(self, subject, payload, timeout=10):
        """Request/reply (a JetStream API call, or a publish that wants the
        stream's acknowledgement): -> the reply's payload, decoded JSON."""
        if isinstance(payload, dict):
            payload = json.dumps(payload)
        if isinstance(payload, str):
            payload = payload.encode()
        self.requests = getattr(self, "requests", 0) + 1
        inbox = "_INBOX.test.%d" % self.requests
        sid = 1000 + self.requests
        self.sock.sendall(b"SUB %s %d\r\nPUB %s %s %d\r\n%s\r\n"
                          % (inbox.encode(), sid, subject.encode(), inbox.encode(),
                             len(payload), payload))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self._line()
            if line.startswith(b"MSG "):
                parts = line.split()
                size = int(parts[-1])
                while len(self.buf) < size + 2:
                    self.buf += self.sock.recv(65536)
                body, self.buf = self.buf[:size], self.buf[size + 2:]
                if parts[1].decode() == inbox:
                    self.sock.sendall(b"UNSUB %d\r\n" % sid)
                    return json.loads(body)
            elif line == b"PING":
                self.sock.sendall(b"PONG\r\n")
            elif line.startswith(b"-ERR"):
                raise AssertionError("nats-server: %r" % line)
        raise AssertionError("no reply on %s within %.0f s" % (subject, timeout))

    def close(self):
        self.sock.close()


def lp(host, value, ts=T, cluster=None, metric="m"):
    tags = ("cluster=%s," % cluster if cluster else "") + "hostname=" + host
    return "%s,%s value=%s %d\n" % (metric, tags, value, ts)


class NatsCase(CCMSTestCase):
    """Helpers shared by the tests below."""

    probes = 0

    @classmethod
    def nats(cls, owner, **kw):
        if nats_server_binary() is None:
            raise AssertionError("nats-server not found on PATH or in /usr/sbin: install the "
                                 "Debian package nats-server (scripts/install-deps.sh)")
        srv = NatsServer(**kw)
        (owner.addClassCleanup if isinstance(owner, type) else owner.addCleanup)(srv.close)
        return srv

    @staticmethod
    def store(owner, nats_section, subscriptions, workers=2, start=True, args=()):
        return start_server(owner, start=start, metrics=METRICS, args=args,
                            store={"nats-subscriptions": subscriptions, "num-workers": workers},
                            extra_top={"nats": nats_section})

    def status(self, srv):
        r = srv.raw("GET", "/api/status")
        self.assertStatus(r, 200)
        return json.loads(r.body)

    def value(self, srv, cluster, host, ts=T):
        """The stored value of m at ts, or None (also for unknown hosts)."""
        r = srv.query({"cluster": cluster, "from": ts, "to": ts + 10, "with-padding": False,
                       "queries": [{"metric": "m", "host": host}]})
        if r.status != 200:
            return None
        res = json.loads(r.body)["results"][0]
        if not res or "error" in res[0] or not res[0].get("data"):
            return None
        return res[0]["data"][0]

    def wait_value(self, srv, cluster, host, expected, ts=T):
        wait_until(lambda: self.value(srv, cluster, host, ts) == expected,
                   what="%s/%s = %r (now %r)" % (cluster, host, expected,
                                                 self.value(srv, cluster, host, ts)))

    def hosts(self, srv, cluster):
        r = srv.debug(cluster)
        if r.status != 200:
            return set()
        return set(parse_debug(r.body)["data"])

    def wait_connected(self, srv, reconnects=0):
        wait_until(lambda: (lambda n: n["connected"] and n["reconnects"] >= reconnects)(
                       self.status(srv)["nats"]),
                   what="NATS connected (status %r)" % self.status(srv).get("nats"))

    def wait_flowing(self, srv, pub, subject, cluster):
        """Publishes a probe until the store has it. "connected" does not yet
        mean that nats-server has processed the store's SUB (core NATS drops
        what nobody subscribes to); SUBs are processed in order, so probe the
        store's last subscription."""
        NatsCase.probes += 1
        probe = "probe%d" % NatsCase.probes

        def stored():
            pub.pub(subject, lp(probe, 1))
            pub.flush()
            return self.value(srv, cluster, probe) == 1.0
        wait_until(stored, what="a probe on %s to arrive" % subject)


class SubscriptionTest(NatsCase):
    """One store with several subscriptions and 4 decoder threads each."""

    SUBS = [
        {"subscribe-to": "t.one", "cluster-tag": "c1"},
        {"subscribe-to": "t.a", "cluster-tag": "ca"},
        {"subscribe-to": "t.b", "cluster-tag": "cb"},
        {"subscribe-to": "t.same", "cluster-tag": "x1"},
        {"subscribe-to": "t.same", "cluster-tag": "x2"},
        {"subscribe-to": "w.>", "cluster-tag": "cw"},
        {"subscribe-to": "v.*.m", "cluster-tag": "cv"},
    ]

    @classmethod
    def setUpClass(cls):
        cls.ns = cls.nats(cls).start()
        cls.srv = cls.store(cls, {"address": cls.ns.url()}, cls.SUBS, workers=4)
        cls.pub = NatsPublisher(cls.ns.port)
        cls.addClassCleanup(cls.pub.close)

    def setUp(self):
        if not getattr(SubscriptionTest, "flowing", False):
            self.wait_flowing(self.srv, self.pub, "v.probe.m", "cv")
            SubscriptionTest.flowing = True

    def test_publish_then_query(self):
        self.pub.pub("t.one", lp("h1", 1.5) + lp("h1", 2.5, ts=T + 10) +
                     lp("h1", 7, cluster="explicit"))
        self.wait_value(self.srv, "c1", "h1", 2.5, ts=T + 10)
        self.assertEqual(self.value(self.srv, "c1", "h1"), 1.5)
        self.wait_value(self.srv, "explicit", "h1", 7.0)   # a cluster tag beats the default

    def test_different_subjects_keep_their_tags(self):
        self.pub.pub("t.a", lp("ha", 1))
        self.pub.pub("t.b", lp("hb", 2))
        self.pub.pub("t.a", lp("ha", 3, ts=T + 10))
        self.pub.flush()
        self.wait_value(self.srv, "ca", "ha", 3.0, ts=T + 10)
        self.wait_value(self.srv, "cb", "hb", 2.0)
        self.assertEqual(self.hosts(self.srv, "ca"), {"ha"})
        self.assertEqual(self.hosts(self.srv, "cb"), {"hb"})

    def test_same_subject_twice_stores_under_each_tag(self):
        self.pub.pub("t.same", lp("hs", 4) + lp("hs2", 5))
        self.wait_value(self.srv, "x1", "hs", 4.0)
        self.wait_value(self.srv, "x2", "hs", 4.0)
        self.wait_value(self.srv, "x1", "hs2", 5.0)
        self.wait_value(self.srv, "x2", "hs2", 5.0)

    def test_wildcard_subjects(self):
        self.pub.pub("w.rack1", lp("hw1", 1))
        self.pub.pub("w.rack2.node", lp("hw2", 2))
        self.pub.pub("v.x.m", lp("hv1", 3))
        self.pub.pub("v.x.y.m", lp("hv2", 4))    # '*' is one token only
        self.pub.pub("w", lp("hw3", 5))          # '>' needs at least one token
        self.pub.pub("t.b", lp("hb-marker", 6))
        self.wait_value(self.srv, "cb", "hb-marker", 6.0)
        self.wait_value(self.srv, "cw", "hw1", 1.0)
        self.wait_value(self.srv, "cw", "hw2", 2.0)
        self.wait_value(self.srv, "cv", "hv1", 3.0)
        self.assertNotIn("hw3", self.hosts(self.srv, "cw"))
        self.assertNotIn("hv2", self.hosts(self.srv, "cv"))

    def test_bad_lines_do_not_drop_the_rest(self):
        before = self.status(self.srv)["nats"]
        body = (lp("hbad", 1) + "m,hostname=hbad value=oops %d\n" % T +
                "m,hostname=hbad,type value=1 %d\n" % T + lp("hbad", 2, ts=T + 10) +
                "m,hostname=hbad value=3 %d" % (T + 20))   # last line without newline
        self.pub.pub("t.one", body)
        self.wait_value(self.srv, "c1", "hbad", 3.0, ts=T + 20)
        self.assertEqual(self.value(self.srv, "c1", "hbad"), 1.0)
        self.assertEqual(self.value(self.srv, "c1", "hbad", ts=T + 10), 2.0)
        after = wait_until(lambda: (lambda n: n if n["rejected"] >= before["rejected"] + 2
                                    else None)(self.status(self.srv)["nats"]),
                           what="rejected counter")
        self.assertEqual(after["rejected"] - before["rejected"], 2)
        self.assertGreaterEqual(after["accepted"] - before["accepted"], 3)
        self.assertGreaterEqual(after["messages"] - before["messages"], 1)
        self.assertEqual(after["dropped"], 0)
        log = wait_until(lambda: re.search(r"NATS: message on \"t\.one\".*2 of 5 lines rejected"
                                           r".*line 2", self.srv.stderr()),
                         what="the rejected lines in the log")
        self.assertTrue(self.srv.stderr()[:log.end()].splitlines()[-1].startswith("<4>"),
                        "not logged at warn level")

    def test_order_of_a_host_is_kept(self):
        """Slot T of each host is written by a long message and then by a short
        one; decoded out of order, the short one would finish first and its
        value be overwritten. Messages that mix hosts (barriers) in between."""
        hosts = ["ord%d" % i for i in range(7)]
        last = {}
        for h in hosts:     # the chain must start at T: older samples are rejected
            self.pub.pub("t.one", lp(h, -1))
        for r in range(25):
            for h in hosts:
                self.pub.pub("t.one", "".join(lp(h, k, ts=T + 10 * k) for k in range(1, 200)) +
                             lp(h, 1000 + r))
                self.pub.pub("t.one", lp(h, r))
                last[h] = r
            if r % 4 == 3:
                self.pub.pub("t.one", "".join(lp(h, 2000 + r) for h in hosts))
                last.update({h: 2000 + r for h in hosts})
        self.pub.pub("t.one", lp("ord-end", 1))
        self.pub.flush()
        self.wait_value(self.srv, "c1", "ord-end", 1.0)
        for h in hosts:
            self.wait_value(self.srv, "c1", h, float(last[h]))

    def test_status_reports_nats(self):
        n = self.status(self.srv)["nats"]
        self.assertEqual(n["subscriptions"], len(self.SUBS))
        self.assertTrue(n["connected"])
        for key in ("messages", "bytes", "lines", "accepted", "rejected", "ignored", "errors",
                    "reconnects", "dropped"):
            self.assertIsInstance(n[key], int, key)


class ConnectionTest(NatsCase):
    """Authentication, reconnects, late servers, shutdown."""

    SUB = [{"subscribe-to": "metrics", "cluster-tag": "c"}]

    def test_user_password(self):
        ns = self.nats(self, user="cc", password="secret").start()
        srv = self.store(self, {"address": ns.url(), "username": "cc", "password": "secret"},
                         self.SUB)
        self.wait_connected(srv)
        pub = NatsPublisher(ns.port, "cc", "secret")
        self.wait_flowing(srv, pub, "metrics", "c")
        self.addCleanup(pub.close)
        pub.pub("metrics", lp("hauth", 8))
        self.wait_value(srv, "c", "hauth", 8.0)

    def test_wrong_password_keeps_running_and_retrying(self):
        ns = self.nats(self, user="cc", password="right").start()
        srv = self.store(self, {"address": ns.url(), "username": "cc", "password": "later"},
                         self.SUB)
        wait_until(lambda: re.search(r"(?m)^<4>.*NATS: (cannot connect|connection closed)",
                                     srv.stderr()), what="a warning about the connection")
        wait_until(lambda: ns.log().count("authentication error") >= 4,
                   what="repeated connection attempts")
        self.assertTrue(srv.alive())
        self.assertFalse(self.status(srv)["nats"]["connected"])
        warnings = [l for l in srv.stderr().splitlines() if l.startswith("<4>") and "NATS:" in l]
        self.assertLessEqual(len(warnings), 4, "logged per attempt:\n" + srv.stderr())
        # The operator fixes the server side: the store gets in by itself.
        ns.stop()
        ns.password = "later"
        ns.start()
        self.wait_connected(srv)
        pub = NatsPublisher(ns.port, "cc", "later")
        self.wait_flowing(srv, pub, "metrics", "c")
        self.addCleanup(pub.close)
        pub.pub("metrics", lp("hlate", 9))
        self.wait_value(srv, "c", "hlate", 9.0)

    def test_server_restart_while_publishing(self):
        ns = self.nats(self).start()
        srv = self.store(self, {"address": ns.url()}, self.SUB)
        self.wait_connected(srv)
        pub = NatsPublisher(ns.port)
        self.wait_flowing(srv, pub, "metrics", "c")
        for i in range(50):
            pub.pub("metrics", lp("hr", i, ts=T + 10 * i))
        pub.flush()
        pub.close()
        self.wait_value(srv, "c", "hr", 49.0, ts=T + 490)
        ns.stop()
        wait_until(lambda: not self.status(srv)["nats"]["connected"], what="disconnected")
        ns.start()
        self.wait_connected(srv, reconnects=1)
        pub = NatsPublisher(ns.port)
        self.wait_flowing(srv, pub, "metrics", "c")
        self.addCleanup(pub.close)
        for i in range(50, 100):
            pub.pub("metrics", lp("hr", i, ts=T + 10 * i))
        pub.flush()
        for i in (50, 75, 99):
            self.wait_value(srv, "c", "hr", float(i), ts=T + 10 * i)
        self.assertTrue(re.search(r"disconnected from nats://127\.0\.0\.1:%d" % ns.port,
                                  srv.stderr()), srv.stderr())
        self.assertEqual(srv.stderr().count("disconnected from"), 1, srv.stderr())

    def test_first_connect_fails_then_server_appears(self):
        ns = self.nats(self)           # not started yet
        srv = self.store(self, {"address": ns.url()}, self.SUB)
        wait_until(lambda: "yet" in srv.stderr() and "retrying in the background" in srv.stderr(),
                   what="the first-connect warning")
        self.assertFalse(self.status(srv)["nats"]["connected"])
        time.sleep(0.5)
        ns.start()
        self.wait_connected(srv)
        pub = NatsPublisher(ns.port)
        self.wait_flowing(srv, pub, "metrics", "c")
        self.addCleanup(pub.close)
        pub.pub("metrics", lp("hfirst", 4))
        self.wait_value(srv, "c", "hfirst", 4.0)

    def test_server_list_uses_a_live_one(self):
        ns = self.nats(self).start()
        dead = free_port()
        srv = self.store(self, {"address": "nats://127.0.0.1:%d, 127.0.0.1:%d" % (dead, ns.port)},
                         self.SUB)
        self.wait_connected(srv)
        pub = NatsPublisher(ns.port)
        self.wait_flowing(srv, pub, "metrics", "c")
        self.addCleanup(pub.close)
        pub.pub("metrics", lp("hlist", 6))
        self.wait_value(srv, "c", "hlist", 6.0)

    def test_sigterm_drains_and_persists(self):
        ns = self.nats(self).start()
        srv = self.store(self, {"address": ns.url()}, self.SUB)
        self.wait_connected(srv)
        pub = NatsPublisher(ns.port)
        self.wait_flowing(srv, pub, "metrics", "c")
        self.addCleanup(pub.close)
        n = 4000     # enough that SIGTERM arrives while messages are still queued
        pub.sock.sendall(b"".join(b"PUB metrics %d\r\n%s\r\n" % (len(p), p) for p in (
            lp("hterm%d" % (i % 4), i, ts=T + 10 * i).encode() for i in range(n))))
        pub.flush()
        self.assertIn("Graceful shutdown completed!", srv.stop())
        ns.stop()
        again = start_server(self, metrics=METRICS,
                             store={"checkpoints": {"directory": srv.ckpt_dir}})
        for k in range(4):
            data = again.row("m", "hterm%d" % k, T, T + 10 * n, cluster="c")[0]["data"]
            self.assertEqual([v for v in data if v is not None],
                             [float(i) for i in range(k, n, 4)], "host hterm%d" % k)

    def test_sigterm_while_nats_is_down(self):
        ns = self.nats(self).start()
        srv = self.store(self, {"address": ns.url()}, self.SUB)
        self.wait_connected(srv)
        ns.stop()
        wait_until(lambda: not self.status(srv)["nats"]["connected"], what="disconnected")
        # ccms.Server.stop() fails unless the exit (status 0) comes within 10 s,
        # which a 30 s drain timeout would miss.
        self.assertIn("Graceful shutdown completed!", srv.stop())


if __name__ == "__main__":
    unittest.main()
