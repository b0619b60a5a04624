"""Progress lines for long work (README "Logging: progress of long work"): the restore at start, a
snapshot run, the Go export and a cleanup pass log what is done, the rate
and the time left every 5 s once they run longer than that, and a summary
line at the end; `-loglevel info` shows them. Short work logs none of it.

The work is made slow on purpose and independently of the machine: the
fault-injection shim (tests/tools/faultinject.c) delays chosen file calls
by 500 ms each, one delayed call at a time, so 14 of them take at least
7 s whatever the number of threads.
"""
import os
import re
import subprocess
import time

from ccms import BINARY, FAULTINJECT, CCMSTestCase, start_server
from test_archive import write_ckpt

METRICS = {"m": {"frequency": 10, "aggregation": "avg"}}
HOSTS = 14
SAMPLES = 10
DELAY_MS = 500
DAY = 86400


def line_with(text, pattern):
    return [l for l in text.splitlines() if re.search(pattern, l)]


class ProgressLogTest(CCMSTestCase):

    def store(self, faults=None, start=True, retention=None):
        srv = start_server(self, start=False, metrics=METRICS, args=["-loglevel", "info"],
                           retention=retention)
        srv.faults = faults
        return srv.start() if start else srv

    def fill(self, srv):
        now = int(time.time())
        body = "".join("m,cluster=c,hostname=h%02d value=%d %d\n" % (h, k, now - 10 * k)
                       for h in range(HOSTS) for k in range(SAMPLES))
        self.assertStatus(srv.write(body), 200)

    def assertProgress(self, log, what, unit, total, amount_pattern):
        """At least one progress line with a share and an ETA, and the summary."""
        progress = line_with(log, r"^<6>.*%s: \d+ of %d %s \(\d+ %%\), %s" %
                             (what, total, unit, amount_pattern))
        self.assertTrue(progress, "no progress line for %s in:\n%s" % (what, log))
        self.assertTrue(any("s so far" in l for l in progress), progress)
        self.assertTrue(any("left" in l for l in progress), progress)
        done = line_with(log, r"^<6>.*%s: done, %d of %d %s, %s" %
                         (what, total, total, unit, amount_pattern))
        self.assertEqual(len(done), 1, log)
        self.assertIn("in all", done[0])
        return done[0]

    def test_restore(self):
        srv = self.store()
        self.fill(srv)
        self.assertIn("Graceful shutdown completed!", srv.stop())
        self.assertNotIn("snapshot: done", srv.stderr())    # short: no progress lines
        # every snapshot file opened for reading takes 500 ms
        srv.faults = "open_r:*.ccms:DELAY%d" % DELAY_MS
        srv.start()
        summary = self.assertProgress(srv.stderr(), "restore", "hosts", HOSTS, r"\d+ samples")
        self.assertIn(", %d samples," % (HOSTS * SAMPLES), summary)
        # the cleanup pass at start reads the same files: let it finish first
        wait = time.monotonic() + 30
        while "cleanup: done" not in srv.stderr() and time.monotonic() < wait:
            time.sleep(0.1)
        self.assertIn("cleanup: done, 1 of 1 clusters, 0 files", srv.stderr())

    def test_snapshot(self):
        # every snapshot written is synced 500 ms late: the run at the stop is slow
        srv = self.store(faults="fsync:*.ccms*:DELAY%d" % DELAY_MS)
        self.fill(srv)
        self.assertIn("Graceful shutdown completed!", srv.stop())
        self.assertProgress(srv.stderr(), "snapshot", "hosts", HOSTS, r"\d+( k| M)? bytes")

    def test_export(self):
        srv = self.store()
        self.fill(srv)
        srv.stop()
        out = os.path.join(srv.tmp, "export")
        env = dict(os.environ, LD_PRELOAD=FAULTINJECT,
                   CCMS_FAULTS="open_w:%s/*.bin*:DELAY%d" % (out, DELAY_MS))
        r = subprocess.run([BINARY, "-config", srv.config_path, "-loglevel", "info",
                            "-export-go", out], capture_output=True, text=True, timeout=60,
                           env=env, cwd=srv.tmp)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertProgress(r.stderr, "export", "hosts", HOSTS, r"\d+( k| M)? bytes")
        self.assertNotIn("restore: done", r.stderr)     # the restore before was short

    def test_cleanup(self):
        srv = self.store(start=False, retention="48h")
        now = int(time.time())
        lv = {"metrics": {"m": (10, now - 5 * DAY, [1.0])}}
        for h in range(HOSTS):
            write_ckpt(srv.ckpt_dir, "c", "old%02d" % h, now - 5 * DAY, now - 4 * DAY, lv)
        env = dict(os.environ, LD_PRELOAD=FAULTINJECT,
                   CCMS_FAULTS="unlink:%s/*.bin:DELAY%d" % (srv.ckpt_dir, DELAY_MS))
        r = subprocess.run([BINARY, "-config", srv.config_path, "-loglevel", "info",
                            "-cleanup-checkpoints"], capture_output=True, text=True,
                           timeout=60, env=env, cwd=srv.tmp)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        # one cluster: the share stays at 0 % until it is done, the files count up
        progress = line_with(r.stderr, r"^<6>.*cleanup: 0 of 1 clusters \(0 %\), \d+ files")
        self.assertTrue(progress, r.stderr)
        done = line_with(r.stderr, r"^<6>.*cleanup: done, 1 of 1 clusters, %d files" % HOSTS)
        self.assertEqual(len(done), 1, r.stderr)
