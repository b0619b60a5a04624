"""NATS JetStream subscriptions against real nats-server processes
(README "JetStream", docs/scaling.md).

A subscription with "jetstream" consumes a stream through the store's own
durable consumer and acknowledges a message only once its samples are in
the write-ahead log. The tests start `nats-server -js` themselves — one
server, or a three-node JetStream cluster on loopback ports with a
replicated (R3) stream — and check that every sample a publisher got the
stream's acknowledgement for ends up stored exactly, through store crashes,
downtime, NATS node failures and publishers faster than the store; that an
HA pair of stores answers byte-identically after one member's downtime;
and that shards split the data by subject.
"""
import json
import os
import signal
import time

from ccms import free_port, start_server
from test_nats import METRICS, NatsCase, NatsPublisher, NatsServer, T, lp, wait_until

METRICS3 = dict(METRICS, m2=METRICS["m"], m3=METRICS["m"])


def step_lines(step, host, prefix):
    """One host's message for one timestep: 3 metrics; -> (body, {(host,
    metric, ts): value})."""
    ts = T + 60 * step
    name = "%s%d" % (prefix, host)
    lines, want = [], {}
    for k, metric in enumerate(("m", "m2", "m3")):
        v = step * 100 + host * 10 + k + 0.5
        lines.append(lp(name, v, ts=ts, metric=metric))
        want[(name, metric, ts)] = v
    return "".join(lines), want


class JetStreamCase(NatsCase):
    """Stream set-up, acknowledged publishing and the check of what a store
    holds, shared by the tests below."""

    STREAM = "METRICS"

    def create_stream(self, client, subjects=("js.>",), replicas=1):
        r = client.request("$JS.API.STREAM.CREATE." + self.STREAM,
                           {"name": self.STREAM, "subjects": list(subjects), "storage": "file",
                            "num_replicas": replicas})
        self.assertNotIn("error", r, r)

    def publish(self, client, step, hosts=4, subject="js.fritz", prefix="js"):
        """One message per host for one timestep, each acknowledged by the
        stream; -> {(host, metric, ts): value}."""
        want = {}
        for h in range(hosts):
            body, w = step_lines(step, h, prefix)
            ack = client.request(subject, body)
            self.assertEqual(ack.get("stream"), self.STREAM, ack)
            want.update(w)
        return want

    def stored(self, srv, want, cluster="fritz"):
        """How many of want the store holds with the right value."""
        ok = 0
        by_key = {}
        for (host, metric, ts), v in want.items():
            by_key.setdefault((host, metric), {})[ts] = v
        for (host, metric), pts in by_key.items():
            lo, hi = min(pts), max(pts)
            r = srv.query({"cluster": cluster, "from": lo, "to": hi + 60,
                           "with-padding": False, "queries": [{"metric": metric, "host": host}]})
            if r.status != 200:
                continue
            res = json.loads(r.body)["results"][0]
            if not res or "error" in res[0]:
                continue
            e = res[0]
            got = {e["from"] + i * e["resolution"]: x for i, x in enumerate(e["data"])}
            ok += sum(1 for ts, v in pts.items() if got.get(ts) is not None
                      and abs(got[ts] - v) < 1e-6)
        return ok

    def wait_stored(self, srv, want, cluster="fritz", timeout=60):
        wait_until(lambda: self.stored(srv, want, cluster) == len(want), timeout=timeout,
                   what="all %d samples stored (now %d)"
                   % (len(want), self.stored(srv, want, cluster)))

    def consumer(self, client, durable="ccms-a"):
        return client.request("$JS.API.CONSUMER.INFO.%s.%s" % (self.STREAM, durable), "")

    def wait_drained(self, client, durable="ccms-a", timeout=40):
        """The consumer has delivered everything and got every ack."""
        wait_until(lambda: (lambda c: c.get("num_pending") == 0 and
                            c.get("num_ack_pending") == 0)(self.consumer(client, durable)),
                   timeout=timeout, what="consumer %s drained (%r)"
                   % (durable, self.consumer(client, durable)))

    def js_store(self, nats_url, subscriptions=None, args=(), durable="ccms-a", workers=2):
        subs = subscriptions or [{"subscribe-to": "js.fritz", "cluster-tag": "fritz",
                                  "jetstream": {"stream": self.STREAM, "durable": durable}}]
        return start_server(self, metrics=METRICS3, args=args,
                            store={"nats-subscriptions": subs, "num-workers": workers},
                            extra_top={"nats": {"address": nats_url}})


class JetStreamTest(JetStreamCase):
    """A subscription with "jetstream": the store consumes a stream through
    its durable consumer and acknowledges a message only once its samples
    are in the write-ahead log. A store killed mid-stream resumes where its
    consumer stood; what was published while it was down is caught up;
    every published sample ends up stored with its value."""

    SUB = [{"subscribe-to": "js.fritz", "cluster-tag": "fritz",
            "jetstream": {"stream": "METRICS", "durable": "ccms-a"}}]

    def setUp(self):
        self.ns = self.nats(self, jetstream=True).start()
        self.pub = NatsPublisher(self.ns.port)
        self.addCleanup(self.pub.close)
        self.create_stream(self.pub)

    def test_kill_mid_stream_and_catch_up(self):
        srv = self.js_store(self.ns.url())
        self.wait_connected(srv)
        want = {}
        for step in range(30):
            want.update(self.publish(self.pub, step))
        srv.proc.send_signal(signal.SIGKILL)      # mid-stream: acks may be outstanding
        srv.proc.wait()
        srv.stopped = True
        for step in range(30, 60):                # published while the store is down
            want.update(self.publish(self.pub, step))
        srv.start()
        self.wait_stored(srv, want)
        # a message the killed store had stored but not yet acknowledged is
        # delivered again after the consumer's ack wait (10 s)
        self.wait_drained(self.pub)
        self.assertEqual(self.stored(srv, want), len(want))
        st = self.status(srv)["nats"]
        self.assertGreater(st["js_acked"], 0)
        self.assertEqual(st["js_redeliver_requested"], 0)
        # the consumer's lag as the store reports it (asked every 2 s): none
        # left, and the message the killed store never acknowledged shows as
        # delivered again
        wait_until(lambda: (lambda n: n["js_pending"] == 0 and n["js_ack_pending"] == 0
                            and n["js_redelivered"] == self.consumer(self.pub)["num_redelivered"])(
                       self.status(srv)["nats"]),
                   what="the lag reported as caught up (%r)" % self.status(srv)["nats"])
        # the same figures in GET /metrics
        st = self.status(srv)["nats"]
        text = srv.raw("GET", "/metrics").body.decode()
        for name, key in (("ccms_jetstream_acks_total", "js_acked"),
                          ("ccms_jetstream_consumer_pending_messages", "js_pending"),
                          ("ccms_nats_messages_total", "messages")):
            self.assertIn("\n%s %d\n" % (name, st[key]), text)
        self.assertIn("\nccms_nats_connected 1\n", text)

    def test_clean_stop_keeps_the_consumer(self):
        """SIGTERM drains the subscription but leaves the durable consumer on
        the server: after the restart only what was published meanwhile is
        delivered, not the whole stream again."""
        srv = self.js_store(self.ns.url())
        self.wait_connected(srv)
        want = {}
        for step in range(10):
            want.update(self.publish(self.pub, step))
        wait_until(lambda: self.stored(srv, want) == len(want),
                   what="the first 10 timesteps stored")
        self.assertIn("Graceful shutdown completed!", srv.stop())
        info = self.consumer(self.pub)
        self.assertNotIn("error", info, "the durable consumer must survive a clean stop")
        self.assertEqual(info["ack_floor"]["stream_seq"], 40, info)
        for step in range(10, 15):
            want.update(self.publish(self.pub, step))
        srv.start()
        wait_until(lambda: self.stored(srv, want) == len(want),
                   what="the timesteps published while stopped stored")
        wait_until(lambda: self.status(srv)["nats"]["js_acked"] == 20,
                   what="exactly the 20 new messages delivered (status %r)"
                   % self.status(srv)["nats"])

    def test_sigterm_with_messages_queued(self):
        """SIGTERM while the decoder threads still hold messages: they are
        stored and acknowledged before the connection goes (an ack through a
        freed connection hung the shutdown); nothing is lost."""
        srv = self.js_store(self.ns.url(), workers=8)
        self.wait_connected(srv)
        want, chunks = {}, []
        for block in range(20):          # a message: 20 timesteps of one host
            for h in range(200):
                body = ""
                for step in range(block * 20, block * 20 + 20):
                    lines, w = step_lines(step, h, "q")
                    body += lines
                    want.update(w)
                chunks.append(b"PUB js.fritz %d\r\n%s\r\n" % (len(body), body.encode()))
        self.pub.sock.sendall(b"".join(chunks))
        self.pub.flush()
        wait_until(lambda: self.status(srv)["nats"]["messages"] > 0, what="delivery started")
        self.assertIn("Graceful shutdown completed!", srv.stop())
        srv.start()
        self.wait_stored(srv, want)
        self.wait_drained(self.pub)

    def test_missing_stream_is_retried(self):
        """The stream belongs to the operator: a store started before it
        exists logs that once, keeps running and subscribes once it appears."""
        r = self.pub.request("$JS.API.STREAM.DELETE." + self.STREAM, "")
        self.assertTrue(r.get("success"), r)
        srv = self.js_store(self.ns.url(), args=["-loglevel", "info"])
        wait_until(lambda: srv.stderr().count("NATS: cannot subscribe") >= 1,
                   what="the missing stream in the log:\n" + srv.stderr())
        line = [l for l in srv.stderr().splitlines() if "cannot subscribe" in l][0]
        self.assertTrue(line.startswith("<3>"), line)
        self.assertIn('stream "METRICS" not found', line)
        time.sleep(3.5)          # attempts after 1 s and 2 s more: logged once
        self.assertTrue(srv.alive())
        self.assertEqual(srv.stderr().count("NATS: cannot subscribe"), 1, srv.stderr())
        self.create_stream(self.pub)
        want = self.publish(self.pub, 0)
        self.wait_stored(srv, want, timeout=40)
        self.assertRegex(srv.stderr(), r'subscribed to "js\.fritz" after [2-9]\d* failed attempt')

    def test_bad_lines_are_acknowledged_not_redelivered(self):
        srv = self.js_store(self.ns.url())
        self.wait_connected(srv)
        ack = self.pub.request("js.fritz", "m,hostname=bad value=oops %d\n%s" % (T, lp("good", 7.5)))
        self.assertEqual(ack.get("stream"), self.STREAM, ack)
        self.wait_value(srv, "fritz", "good", 7.5)
        wait_until(lambda: self.consumer(self.pub).get("num_ack_pending") == 0,
                   what="the message acknowledged (%r)" % self.consumer(self.pub))
        info = self.consumer(self.pub)
        self.assertEqual(info.get("num_redelivered"), 0, info)
        self.assertGreaterEqual(self.status(srv)["nats"]["rejected"], 1)




class FastPublisherTest(JetStreamCase):
    """A publisher far faster than the store: the stream takes everything,
    the store gets at most max-ack-pending messages at a time and stores
    them all; nothing is dropped in the client."""

    def test_publisher_faster_than_the_store(self):
        ns = self.nats(self, jetstream=True).start()
        pub = NatsPublisher(ns.port)
        self.addCleanup(pub.close)
        self.create_stream(pub)
        srv = self.js_store(ns.url())
        self.wait_connected(srv)
        hosts, steps = 16, 1500        # 24,000 messages of 3 samples, pipelined
        want = {}
        chunks = []
        for step in range(steps):
            for h in range(hosts):
                body, w = step_lines(step, h, "fast")
                want.update(w)
                chunks.append(b"PUB js.fritz %d\r\n%s\r\n" % (len(body), body.encode()))
        pub.sock.sendall(b"".join(chunks))
        pub.flush()
        first = self.consumer(pub)
        self.assertGreater(first["num_pending"] + first["num_ack_pending"], 0,
                           "the store kept up with a pipelined publisher: not a test of "
                           "flow control (%r)" % first)
        stream = pub.request("$JS.API.STREAM.INFO." + self.STREAM, "")
        self.assertEqual(stream["state"]["messages"], hosts * steps, stream)
        most_in_flight = 0

        def done():
            nonlocal most_in_flight
            c = self.consumer(pub)
            most_in_flight = max(most_in_flight, c["num_ack_pending"])
            return c["num_pending"] == 0 and c["num_ack_pending"] == 0
        wait_until(done, timeout=120, what="the backlog consumed (%r)" % self.consumer(pub))
        self.assertLessEqual(most_in_flight, 1024)
        self.assertEqual(self.consumer(pub)["config"]["max_ack_pending"], 1024)
        self.wait_stored(srv, want)
        st = self.status(srv)["nats"]
        self.assertEqual(st["dropped"], 0, st)
        self.assertEqual(st["rejected"], 0, st)


class ShardingTest(JetStreamCase):
    """Two stores share one stream and split it by subject filter: each
    holds its own clusters only (cc-backend routes each cluster to its
    store, docs/scaling.md)."""

    def test_subject_filters_split_the_data(self):
        ns = self.nats(self, jetstream=True).start()
        pub = NatsPublisher(ns.port)
        self.addCleanup(pub.close)
        self.create_stream(pub)
        fritz = self.js_store(ns.url(), [
            {"subscribe-to": "js.fritz", "cluster-tag": "fritz",
             "jetstream": {"stream": self.STREAM, "durable": "shard-fritz"}}])
        alex = self.js_store(ns.url(), [
            {"subscribe-to": "js.alex.>", "cluster-tag": "alex",
             "jetstream": {"stream": self.STREAM, "durable": "shard-alex"}}])
        want_f, want_a = {}, {}
        for step in range(10):
            want_f.update(self.publish(pub, step, subject="js.fritz", prefix="f"))
            want_a.update(self.publish(pub, step, subject="js.alex.rack%d" % (step % 2),
                                       prefix="a"))
        self.wait_stored(fritz, want_f, cluster="fritz")
        self.wait_stored(alex, want_a, cluster="alex")
        self.wait_drained(pub, "shard-fritz")
        self.wait_drained(pub, "shard-alex")
        self.assertEqual(self.hosts(fritz, "fritz"), {"f%d" % h for h in range(4)})
        self.assertEqual(self.hosts(fritz, "alex"), set())
        self.assertEqual(self.hosts(alex, "alex"), {"a%d" % h for h in range(4)})
        self.assertEqual(self.hosts(alex, "fritz"), set())
        self.assertEqual(self.status(fritz)["nats"]["js_acked"], 40)
        self.assertEqual(self.status(alex)["nats"]["js_acked"], 40)


class HAPairTest(JetStreamCase):
    """Two stores with their own durable consumers on one stream hold the
    same data. One is stopped while the publisher goes on, and started
    again while it still goes on: once both have caught up they answer
    the same queries byte for byte."""

    HOSTS = 8

    def answers(self, srv, steps):
        """The bodies of the queries cc-backend sends, over the whole range."""
        out = []
        to = T + 60 * steps
        for metric in ("m", "m2", "m3"):
            r = srv.query({"cluster": "fritz", "from": T, "to": to, "with-stats": True,
                           "queries": [{"metric": metric, "host": "ha%d" % h}
                                       for h in range(self.HOSTS)]})
            self.assertStatus(r, 200)
            out.append(r.body)
            r = srv.query({"cluster": "fritz", "from": T, "to": to, "with-stats": True,
                           "with-data": False, "for-all-nodes": ["m", "m2", "m3"]})
            self.assertStatus(r, 200)
            out.append(r.body)
        return out

    def test_pair_agrees_after_downtime(self):
        """30 timesteps while b is down. The longer drill of docs/scaling.md:
        CCMS_HA_DRILL_SECONDS=300 publishes a timestep every 0.1 s for that
        long instead (not part of make test)."""
        drill = float(os.environ.get("CCMS_HA_DRILL_SECONDS", "0"))
        ns = self.nats(self, jetstream=True).start()
        pub = NatsPublisher(ns.port)
        self.addCleanup(pub.close)
        self.create_stream(pub)
        a = self.js_store(ns.url(), durable="ha-a")
        b = self.js_store(ns.url(), durable="ha-b")
        want = {}

        def run(steps):
            for step in steps:
                want.update(self.publish(pub, step, hosts=self.HOSTS, prefix="ha"))
        run(range(0, 10))
        self.assertIn("Graceful shutdown completed!", b.stop())
        down = 30                               # b is down
        if drill > 0:
            end, down = time.monotonic() + drill, 0
            while time.monotonic() < end:
                run([10 + down])
                down += 1
                time.sleep(0.1)
        else:
            run(range(10, 10 + down))
        self.wait_stored(a, want)
        b.start()
        last = 10 + down + 20
        run(range(10 + down, last))             # b catches up while live messages arrive
        self.wait_drained(pub, "ha-a")
        self.wait_drained(pub, "ha-b")
        self.wait_stored(a, want)
        self.wait_stored(b, want)
        got_a, got_b = self.answers(a, last), self.answers(b, last)
        self.assertEqual(len(json.loads(got_a[0])["results"]), self.HOSTS)
        for x, y in zip(got_a, got_b):
            self.assertEqual(x, y)


class ClusterClient:
    """A publisher on a NATS cluster that survives node failures: a request
    that fails (node gone, no stream leader yet, timeout) is sent again
    through a live node until it is answered as wanted. A retried publish
    may be stored twice; that rewrites the same values."""

    def __init__(self, nodes, avoid=()):
        self.nodes, self.avoid, self.conn = nodes, set(avoid), None

    def _connect(self):
        alive = [n for n in self.nodes if n.proc is not None and n.proc.poll() is None]
        for n in sorted(alive, key=lambda n: n.port in self.avoid):
            try:
                self.conn = NatsPublisher(n.port)
                return
            except OSError:
                continue
        raise OSError("no NATS node reachable")

    def request(self, subject, payload, ok=lambda r: "error" not in r, total=60):
        deadline = time.monotonic() + total
        while True:
            try:
                if self.conn is None:
                    self._connect()
                r = self.conn.request(subject, payload, timeout=3)
                if ok(r):
                    return r
            except (AssertionError, OSError) as e:
                r = e
                self.close()
            if time.monotonic() > deadline:
                raise AssertionError("no answer on %s within %d s: %r" % (subject, total, r))
            time.sleep(0.2)

    def close(self):
        if self.conn is not None:
            self.conn.close()
        self.conn = None


class ClusterTest(JetStreamCase):
    """A three-node JetStream cluster on loopback ports with an R3 stream.
    Under a steady publisher, first the node the store is connected to and
    then the stream's leader are killed and restarted: everything the
    stream acknowledged is stored exactly once."""

    def start_cluster(self):
        ports = [free_port() for _ in range(3)]
        routes = [free_port() for _ in range(3)]
        self.nodes = []
        for i in range(3):
            node = self.nats(self, port=ports[i], cluster=(
                "ccms", "n%d" % i, routes[i], [r for j, r in enumerate(routes) if j != i]))
            self.nodes.append(node.start())

    def node_by_port(self, port):
        return next(n for n in self.nodes if n.port == port)

    def test_node_failures_lose_nothing(self):
        self.start_cluster()
        client = ClusterClient(self.nodes)
        self.addCleanup(client.close)
        self.create_stream(client, replicas=3)
        url = ", ".join("nats://127.0.0.1:%d" % n.port for n in self.nodes)
        srv = self.js_store(url)
        self.wait_connected(srv)
        want = {}

        def run(steps):
            for step in steps:
                want.update(self.publish(client, step))
        run(range(0, 15))
        # the node the store reads from dies, comes back later
        victim = self.node_by_port(int(self.status(srv)["nats"]["server"].rsplit(":", 1)[1]))
        victim.stop()
        run(range(15, 30))
        victim.start()
        wait_until(lambda: self.status(srv)["nats"]["connected"], what="store reconnected")
        self.assertGreaterEqual(self.status(srv)["nats"]["reconnects"], 1)
        # the stream's leader dies, comes back later; first the restarted
        # node must have caught up: with it still behind, losing the leader
        # would leave one current replica of three, no quorum to elect a
        # new one (publishes then wait until the stale node catches up)
        def replicas_current():
            cluster = client.request("$JS.API.STREAM.INFO." + self.STREAM, "")["cluster"]
            replicas = cluster.get("replicas", [])
            return len(replicas) == 2 and all(r.get("current") for r in replicas)
        wait_until(replicas_current, timeout=60, what="every replica current")
        info = client.request("$JS.API.STREAM.INFO." + self.STREAM, "")
        leader = next(n for i, n in enumerate(self.nodes)
                      if "n%d" % i == info["cluster"]["leader"])
        leader.stop()
        run(range(30, 45))
        leader.start()
        run(range(45, 60))
        self.wait_stored(srv, want, timeout=90)
        self.wait_drained(client, timeout=60)
        self.assertEqual(self.stored(srv, want), len(want))
        st = self.status(srv)["nats"]
        self.assertEqual(st["dropped"], 0, st)
        self.assertEqual(st["rejected"], 0, st)
