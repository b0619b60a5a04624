"""Privilege drop (docs/compatibility.md, docs/security.md): `main.user` is a
user, `main.group` a group, supplementary groups are reset (setgroups), the
listening socket is opened before the drop (so a port below 1024 works) and
every file is created after it (so the checkpoint directory belongs to the
unprivileged user). Unknown names stop the startup with exit status 1.

These tests need root (CI runs as root); without it they fail with a message
saying so instead of silently skipping.
"""
import grp
import json
import os
import pwd
import socket
import unittest

from ccms import CCMSTestCase, Server, line, run_binary, long_retention

USER, GROUP = "nobody", "nogroup"


def free_low_port():
    for port in range(900, 1001):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    raise AssertionError("no free port in 900..1000")


def proc_status(pid, task=None):
    path = "/proc/%d/status" % pid if task is None else "/proc/%d/task/%s/status" % (pid, task)
    out = {}
    with open(path) as fh:
        for ln in fh:
            k, _, v = ln.partition(":")
            out[k] = v.split()
    return out


class PrivilegeTestBase(CCMSTestCase):
    def setUp(self):
        if os.geteuid() != 0:
            self.fail("test_privileges must run as root (CI runs the suite as root): it "
                      "checks that the server drops from root to %s/%s" % (USER, GROUP))
        try:
            self.uid = pwd.getpwnam(USER).pw_uid
            self.gid = grp.getgrnam(GROUP).gr_gid
        except KeyError as e:
            self.fail("this system lacks the user %r or group %r: %s" % (USER, GROUP, e))

    def start(self, srv):
        """Starts srv and waits for an HTTP answer. The port accepts TCP
        connections as soon as it is bound, before the privileges are
        dropped; requests are served only after the drop, so an answer
        means the drop is done (however fast or slow the machine is)."""
        srv.start()
        r = srv.raw("GET", "/api/status", timeout=30)
        self.assertIn(r.status, (200, 401), r.body[:200])

    def make_server(self, main_extra, port=None):
        """A server whose checkpoint directory does not exist yet and lies in
        a directory the unprivileged user may write to."""
        srv = Server(raw_config="{}")
        self.addCleanup(srv.close)
        if port is not None:
            srv.port = port
            srv.addr = "127.0.0.1:%d" % port
        os.chmod(srv.tmp, 0o711)                 # traversable, not listable
        data = os.path.join(srv.tmp, "data")
        os.mkdir(data)
        os.chmod(data, 0o777)
        srv.ckpt_dir = os.path.join(data, "checkpoints")
        main = {"addr": srv.addr}
        main.update(main_extra)
        cfg = {"main": main, "metrics": {"m": {"frequency": 10, "aggregation": "avg"}},
               "metric-store": {"checkpoints": {"directory": srv.ckpt_dir},
                                "retention-in-memory": long_retention(), "memory-cap": 0}}
        with open(srv.config_path, "w") as fh:
            json.dump(cfg, fh)
        return srv


class PrivilegeDropTest(PrivilegeTestBase):
    def test_drop_to_user_and_group_on_low_port(self):
        port = free_low_port()
        srv = self.make_server({"user": USER, "group": GROUP}, port=port)
        self.start(srv)
        st = proc_status(srv.proc.pid)
        want_uid = [str(self.uid)] * 4                      # real, effective, saved, fs
        want_gid = [str(self.gid)] * 4
        self.assertEqual(st["Uid"], want_uid, st["Uid"])
        self.assertEqual(st["Gid"], want_gid, st["Gid"])
        self.assertEqual(st["Groups"], [str(self.gid)], "setgroups not applied: %r" % st["Groups"])
        self.assertEqual(int(st["CapEff"][0], 16), 0, st["CapEff"])
        self.assertEqual(int(st["CapPrm"][0], 16), 0, st["CapPrm"])
        # every thread, not only the main one (a connection thread may end
        # between listing and reading: those are gone, nothing to check)
        checked = 0
        for task in os.listdir("/proc/%d/task" % srv.proc.pid):
            try:
                ts = proc_status(srv.proc.pid, task)
            except FileNotFoundError:
                continue
            checked += 1
            self.assertEqual((ts["Uid"], ts["Gid"], ts["Groups"]),
                             (want_uid, want_gid, [str(self.gid)]), "thread %s" % task)
        self.assertGreaterEqual(checked, 2, "the main thread and its workers")

        # the low port serves, and files are written as the unprivileged user
        r = srv.write(line("m", 1.5, 1000, host="h1").encode())
        self.assertWriteOK(r)
        row = srv.row("m", "h1", 900, 1100)
        self.assertEqual(row[0]["data"][-1], 1.5)
        self.assertTrue(os.path.isdir(srv.ckpt_dir), "checkpoint directory not created")
        srv.stop()
        self.assert_owned_by_user(srv.ckpt_dir)

    def assert_owned_by_user(self, top):
        seen = 0
        for dirpath, dirnames, filenames in os.walk(top):
            for name in [""] + dirnames + filenames:
                path = os.path.join(dirpath, name) if name else dirpath
                st = os.lstat(path)
                seen += 1
                self.assertEqual((st.st_uid, st.st_gid), (self.uid, self.gid),
                                 "%s is owned by %d:%d" % (path, st.st_uid, st.st_gid))
        self.assertGreater(seen, 3, "expected the checkpoint tree c/h/<files> under %s" % top)

    def test_user_only_uses_its_primary_group(self):
        srv = self.make_server({"user": USER})
        self.start(srv)
        st = proc_status(srv.proc.pid)
        pw = pwd.getpwnam(USER)
        self.assertEqual(st["Uid"], [str(pw.pw_uid)] * 4)
        self.assertEqual(st["Gid"], [str(pw.pw_gid)] * 4)
        # initgroups: the user's own groups, never root's
        self.assertNotIn("0", st["Groups"], st["Groups"])
        self.assertWriteOK(srv.write(line("m", 2, 1000).encode()))

    def test_group_only(self):
        srv = self.make_server({"group": GROUP})
        self.start(srv)
        st = proc_status(srv.proc.pid)
        self.assertEqual(st["Gid"], [str(self.gid)] * 4)
        self.assertEqual(st["Groups"], [str(self.gid)], st["Groups"])
        self.assertEqual(st["Uid"], ["0"] * 4)

    def test_unknown_user(self):
        self.expect_startup_failure({"user": "ccms-no-such-user", "group": GROUP},
                                    "ccms-no-such-user")

    def test_unknown_group(self):
        self.expect_startup_failure({"user": USER, "group": "ccms-no-such-group"},
                                    "ccms-no-such-group")

    def test_upstream_swap_is_not_reproduced(self):
        # upstream looks `group` up as a user: a group name that
        # is no user name must still work here
        self.assertRaises(KeyError, pwd.getpwnam, GROUP)
        srv = self.make_server({"user": USER, "group": GROUP})
        self.start(srv)
        self.assertTrue(srv.running())

    def test_root_owned_checkpoint_directory_is_never_acknowledged(self):
        # left behind by an earlier run as root: the dropped process cannot
        # write its WAL, so no write may be answered 200
        srv = self.make_server({"user": USER, "group": GROUP})
        os.makedirs(os.path.join(srv.ckpt_dir, "c", "h"))
        self.start(srv)
        for host in ("h", "new"):
            r = srv.write(line("m", 1, 1000, host=host).encode())
            self.assertGreaterEqual(r.status, 500, "write to %s acknowledged: %r" % (host, r.body))
        self.assertIn("Permission denied", srv.stderr())

    def expect_startup_failure(self, main, name):
        port = free_low_port()
        srv = self.make_server(main, port=port)
        p = run_binary(["-config", srv.config_path], cwd=srv.tmp, timeout=20)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn(name, p.stderr)
        self.assertRegex(p.stderr, r"(?i)no such (user|group)")
        with self.assertRaises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        # nothing was created: files are touched only after the drop
        self.assertFalse(os.path.exists(srv.ckpt_dir), os.listdir(os.path.dirname(srv.ckpt_dir)))


if __name__ == "__main__":
    unittest.main()
