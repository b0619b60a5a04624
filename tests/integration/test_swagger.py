"""-dev: the API explorer (README "API explorer"). The Swagger UI at
/swagger/ on the OpenAPI document at /swagger/openapi.json, served only
with -dev and without authentication (the requests made from the page carry
the token). Checked over HTTP, and in a real browser: Debian's headless
chromium, driven by puppeteer-core (tests/tools/browser/swagger_check.mjs),
loads the page, which must list every operation of the document, then runs
"Try it out" on POST /api/query and must get a 200 with the data this test
wrote.
"""
import json
import os
import shutil
import subprocess
import tempfile
import time

from ccms import REPO, CCMSTestCase, start_server
from test_auth import Ed25519Key

SPEC = os.path.join(REPO, "docs", "openapi.json")
BROWSER = os.path.join(REPO, "tests", "tools", "browser")
METRICS = {"cpu_load": {"frequency": 60, "aggregation": "avg"}}


class SwaggerHttpTest(CCMSTestCase):
    def test_only_with_dev(self):
        srv = start_server(self, metrics=METRICS)
        for path in ("/swagger", "/swagger/", "/swagger/openapi.json"):
            self.assertStatus(srv.raw("GET", path), 404)

    def test_served_with_dev_without_auth(self):
        keydir = tempfile.mkdtemp(prefix="ccms-swagger-")
        self.addCleanup(shutil.rmtree, keydir, True)
        key = Ed25519Key(keydir, "k")
        srv = start_server(self, metrics=METRICS, args=["-dev"],
                           main={"jwt-public-key": key.public_b64})
        r = srv.raw("GET", "/swagger/")
        self.assertStatus(r, 200)
        self.assertEqual(r.headers.get("Content-Type"), "text/html; charset=utf-8")
        self.assertIn(b"/swagger/openapi.json", r.body)
        self.assertStatus(srv.raw("GET", "/swagger"), 200)
        r = srv.raw("GET", "/swagger/openapi.json")
        self.assertStatus(r, 200)
        with open(SPEC, "rb") as fh:
            self.assertEqual(r.body, fh.read())
        for asset, ctype in (("swagger-ui-bundle.js", "text/javascript; charset=utf-8"),
                             ("swagger-ui.css", "text/css; charset=utf-8"),
                             ("favicon-32x32.png", "image/png")):
            r = srv.raw("GET", "/swagger/" + asset)
            self.assertStatus(r, 200)
            self.assertEqual(r.headers.get("Content-Type"), ctype)
            self.assertGreater(len(r.body), 100)
        self.assertStatus(srv.raw("GET", "/swagger/package.json"), 404)
        self.assertStatus(srv.raw("POST", "/swagger/"), 405)
        self.assertStatus(srv.raw("GET", "/api/status"), 401)     # the API stays protected


class SwaggerBrowserTest(CCMSTestCase):
    def test_try_it_out_in_chromium(self):
        chromium = shutil.which("chromium")
        self.assertIsNotNone(chromium, "chromium not found: install the Debian package "
                                       "chromium (scripts/install-deps.sh)")
        self.assertTrue(os.path.isdir(os.path.join(BROWSER, "node_modules", "puppeteer-core")),
                        "puppeteer-core missing: run scripts/install-test-tools.sh")
        srv = start_server(self, metrics=METRICS, args=["-dev"])
        now = int(time.time())
        self.assertStatus(srv.write("cpu_load,cluster=c,hostname=h1,type=node value=1.5 %d\n"
                                    "cpu_load,cluster=c,hostname=h1,type=node value=2.5 %d\n"
                                    % (now - 60, now)), 200)
        query = {"cluster": "c", "from": now - 60, "to": now + 60, "with-padding": False,
                 "queries": [{"metric": "cpu_load", "host": "h1"}]}
        shot = os.path.join(srv.tmp, "swagger.png")
        p = subprocess.run(["node", "swagger_check.mjs", "http://" + srv.addr, json.dumps(query),
                            shot], cwd=BROWSER, capture_output=True, text=True, timeout=180,
                           env=dict(os.environ, CHROMIUM=chromium))
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        got = json.loads(p.stdout.strip().splitlines()[-1])
        with open(SPEC) as fh:
            spec = json.load(fh)
        want = sorted("%s %s" % (m.upper(), path) for path, ops in spec["paths"].items()
                      for m in ops)
        self.assertEqual(sorted(got["operations"]), want)
        self.assertEqual(got["status"], "200")
        entry = json.loads(got["body"])["results"][0][0]
        self.assertEqual(entry["data"], [1.5, 2.5])
        self.assertGreater(os.path.getsize(shot), 10000)
        if os.environ.get("CCMS_SWAGGER_SCREENSHOT"):
            shutil.copy(shot, os.environ["CCMS_SWAGGER_SCREENSHOT"])
