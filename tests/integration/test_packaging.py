"""Installation and the Debian package (docs/packaging.md): `make install`
with PREFIX and DESTDIR, the man page cc-metric-store(8), the systemd unit
(`systemd-analyze verify`), and `make deb`'s package: runtime dependencies
only, the conffile, the maintainer scripts. Installing the .deb into a
fresh Debian root and starting it there is scripts/fresh-machine-check.sh's
third check.
"""
import json
import os
import re
import shutil
import subprocess
import tempfile
import time

from ccms import BINARY, REPO, CCMSTestCase, start_server


def run(args, **kw):
    return subprocess.run(args, capture_output=True, text=True, timeout=300, **kw)


class InstallTest(CCMSTestCase):
    @classmethod
    def setUpClass(cls):
        cls.root = tempfile.mkdtemp(prefix="ccms-install-")
        cls.addClassCleanup(shutil.rmtree, cls.root, True)
        p = run(["make", "-s", "install", "DESTDIR=" + cls.root, "PREFIX=/usr"], cwd=REPO)
        if p.returncode != 0:
            raise AssertionError("make install failed:\n" + p.stdout + p.stderr)

    def path(self, p):
        return os.path.join(self.root, p.lstrip("/"))

    def test_files_and_modes(self):
        for p, mode in (("/usr/bin/cc-metric-store", 0o755),
                        ("/usr/share/man/man8/cc-metric-store.8", 0o644),
                        ("/usr/share/doc/cc-metric-store/config.example.json", 0o644),
                        ("/etc/cc-metric-store/config.json", 0o640),
                        ("/usr/lib/systemd/system/cc-metric-store.service", 0o644)):
            self.assertTrue(os.path.isfile(self.path(p)), p)
            self.assertEqual(os.stat(self.path(p)).st_mode & 0o777, mode, p)

    def test_existing_config_is_kept(self):
        conf = self.path("/etc/cc-metric-store/config.json")
        with open(conf, "w") as fh:
            fh.write('{"mine": true}')
        p = run(["make", "-s", "install", "DESTDIR=" + self.root, "PREFIX=/usr"], cwd=REPO)
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(conf) as fh:
            self.assertEqual(fh.read(), '{"mine": true}')

    def test_example_config_starts(self):
        """The shipped config is valid: a store starts on it (with the
        checkpoint directory moved to the test's) and takes a sample."""
        with open(self.path("/usr/share/doc/cc-metric-store/config.example.json")) as fh:
            config = json.load(fh)
        self.assertEqual(config["metric-store"]["checkpoints"]["directory"],
                         "/var/lib/cc-metric-store/checkpoints")
        config["metric-store"]["checkpoints"]["directory"] = os.path.join(self.root, "ck")
        srv = start_server(self, config=config)
        now = int(time.time())
        self.assertStatus(srv.write("cpu_load,cluster=c,hostname=h,type=node value=1 %d\n" % now),
                          200)
        self.assertIn("Graceful shutdown completed!", srv.stop())

    def test_unit_verifies_and_is_sandboxed(self):
        unit = self.path("/usr/lib/systemd/system/cc-metric-store.service")
        with open(unit) as fh:
            text = fh.read()
        self.assertNotIn("@", text)
        self.assertIn("ExecStart=/usr/bin/cc-metric-store -config "
                      "/etc/cc-metric-store/config.json\n", text)
        for line in ("User=cc-metric-store", "ProtectSystem=strict",
                     "ReadWritePaths=/var/lib/cc-metric-store", "NoNewPrivileges=true",
                     "Restart=on-failure", "LimitNOFILE=65536"):
            self.assertIn("\n" + line + "\n", text)
        # systemd's own units (targets the unit refers to) in the same root
        host_units = "/lib/systemd/system"
        shutil.copytree(host_units, self.path(host_units), dirs_exist_ok=True, symlinks=True)
        p = run(["systemd-analyze", "verify", "--man=no", "--root=" + self.root,
                 "/usr/lib/systemd/system/cc-metric-store.service"])
        self.assertEqual((p.returncode, p.stdout + p.stderr), (0, ""))

    def test_man_page(self):
        page = self.path("/usr/share/man/man8/cc-metric-store.8")
        p = run(["groff", "-man", "-Tutf8", "-ww", page])
        self.assertEqual(p.returncode, 0)
        self.assertEqual(p.stderr, "")
        text = re.sub(r".\x08", "", p.stdout)
        for section in ("NAME", "SYNOPSIS", "OPTIONS", "CONFIGURATION", "FILES", "SIGNALS",
                        "EXIT STATUS"):
            self.assertIn("\n" + section + "\n", text)
        # every flag of the binary's usage is in the page
        usage = run([BINARY, "-h"]).stdout + run([BINARY, "-h"]).stderr
        flags = set(re.findall(r"^\s+-([a-z-]+)", usage, re.M))
        self.assertGreaterEqual(len(flags), 8, usage)
        for flag in flags:
            self.assertIn("-" + flag, text.replace("\u2010", "-"), flag)
        for key in ("main.addr", "main.jwt-public-key", "main.metrics-addr",
                    "metric-store.retention-in-memory", "metric-store.checkpoints.directory",
                    "nats.address", "SIGTERM", "/etc/cc-metric-store/config.json"):
            self.assertIn(key, text.replace("\u2010", "-"), key)


class DebTest(CCMSTestCase):
    @classmethod
    def setUpClass(cls):
        p = run(["scripts/build-deb.sh"], cwd=REPO)
        if p.returncode != 0:
            raise AssertionError("build-deb failed:\n" + p.stdout + p.stderr)
        cls.deb = os.path.join(REPO, p.stdout.strip().splitlines()[-1])

    def field(self, name):
        return run(["dpkg-deb", "-f", self.deb, name]).stdout.strip()

    def test_control(self):
        self.assertEqual(self.field("Package"), "cc-metric-store")
        self.assertRegex(self.field("Version"), r"^1\.5\.4\+c\d+\.g[0-9a-f]+$")
        depends = [d.strip().split()[0] for d in self.field("Depends").split(",")]
        for lib in ("libc6", "libmicrohttpd12", "libjansson4", "libsodium23", "adduser"):
            self.assertIn(lib, depends)
        self.assertEqual([d for d in depends if d.endswith("-dev")], [])

    def test_contents_and_conffile(self):
        names = set(l.split()[-1] for l in run(["dpkg-deb", "-c", self.deb]).stdout.splitlines())
        for p in ("./usr/bin/cc-metric-store", "./usr/share/man/man8/cc-metric-store.8.gz",
                  "./usr/share/cc-metric-store/swagger-ui/swagger-ui-bundle.js",
                  "./lib/systemd/system/cc-metric-store.service",
                  "./etc/cc-metric-store/config.json"):
            self.assertIn(p, names)
        with tempfile.TemporaryDirectory() as d:
            self.assertEqual(run(["dpkg-deb", "-e", self.deb, d]).returncode, 0)
            with open(os.path.join(d, "conffiles")) as fh:
                self.assertEqual(fh.read().split(), ["/etc/cc-metric-store/config.json"])
            with open(os.path.join(d, "postinst")) as fh:
                post = fh.read()
            self.assertIn("adduser --system --group", post)
            self.assertIn("install -d -o cc-metric-store -g cc-metric-store", post)
            for script in ("postinst", "prerm", "postrm"):
                self.assertEqual(run(["sh", "-n", os.path.join(d, script)]).returncode, 0)
