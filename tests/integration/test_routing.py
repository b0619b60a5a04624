"""Routing (docs/http-api.md "Routing"): both slash forms, sub-paths,
HEAD, 404/405 bodies, POST for query/healthcheck, 301 for unclean paths."""
import json

from ccms import CCMSTestCase, start_server

NOT_FOUND = b"404 page not found\n"
NOT_ALLOWED = b"Method Not Allowed\n"

QUERY = json.dumps({"cluster": "c", "from": 90, "to": 200, "with-padding": False,
                    "queries": [{"metric": "m", "host": "h"}]}).encode()
QUERY_ANSWER = (b'{"results":[[{"data":[1.000],"from":100,"to":110,"resolution":10,'
                b'"avg":1.00,"min":1.00,"max":1.00}]]}\n')
HEALTH = json.dumps({"cluster": "c", "nodes": [], "metric-names": []}).encode()


class RoutingTest(CCMSTestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = start_server(cls)
        r = cls.srv.write(b"m,cluster=c,hostname=h value=1 100\n")
        assert r.status == 200, r

    def check_query(self, r):
        self.assertStatus(r, 200)
        self.assertTrue(r.headers.get("Content-Type", "").startswith("application/json"))
        self.assertEqual(r.body, QUERY_ANSWER)

    def check_write(self, r):
        self.assertWriteOK(r)
        self.assertTrue(r.headers.get("Content-Type", "").startswith("application/json"))

    def check_free(self, r):
        self.assertStatus(r, 200)
        self.assertEqual(r.body, b"buffers freed: 0\n")

    def check_debug(self, r):
        self.assertStatus(r, 200)
        self.assertTrue(r.body.startswith(b'{"data":{\n'), r.body[:100])
        self.assertTrue(r.body.endswith(b"}}\n"), r.body[-100:])

    def check_health(self, r):
        self.assertStatus(r, 200)
        self.assertEqual(r.body, b"{}\n")

    def test_both_slash_forms(self):
        srv = self.srv
        for suffix in ("", "/"):
            with self.subTest(suffix=suffix):
                self.check_query(srv.raw("GET", "/api/query" + suffix, QUERY))
                self.check_write(srv.raw("POST", "/api/write" + suffix,
                                         b"m,cluster=c,hostname=h2 value=1 100\n"))
                self.check_free(srv.raw("POST", "/api/free" + suffix + "?to=1", b"[]"))
                self.check_debug(srv.raw("GET", "/api/debug" + suffix))
                self.check_health(srv.raw("GET", "/api/healthcheck" + suffix, HEALTH))

    def test_query_version_parameter_ignored(self):
        self.check_query(self.srv.raw("GET", "/api/query?version=v2", QUERY))
        self.check_query(self.srv.raw("GET", "/api/query/?version=v1&x=y", QUERY))

    def test_subpaths_of_slash_forms(self):
        srv = self.srv
        self.check_query(srv.raw("GET", "/api/query/anything", QUERY))
        self.check_query(srv.raw("GET", "/api/query/a/b/c?version=v2", QUERY))
        self.check_write(srv.raw("POST", "/api/write/x/y", b"m,cluster=c,hostname=h2 value=1 100\n"))
        self.check_free(srv.raw("POST", "/api/free/sub?to=1", b"[]"))
        self.check_debug(srv.raw("GET", "/api/debug/anything"))
        self.check_health(srv.raw("GET", "/api/healthcheck/x", HEALTH))

    def test_no_slash_form_matches_exactly(self):
        for path in ("/api/queryx", "/api/writes", "/api/debugger", "/api/healthcheckz",
                     "/api/freeze", "/api/query.json"):
            with self.subTest(path=path):
                r = self.srv.raw("GET", path)
                self.assertStatus(r, 404)
                self.assertEqual(r.body, NOT_FOUND)

    def test_head_on_get_routes(self):
        r = self.srv.raw("HEAD", "/api/debug")
        self.assertStatus(r, 200)
        self.assertEqual(r.body, b"")
        r = self.srv.raw("HEAD", "/api/debug/")
        self.assertStatus(r, 200)
        # query and healthcheck without body: handler runs (400), route exists
        for path in ("/api/query", "/api/query/", "/api/healthcheck", "/api/healthcheck/"):
            with self.subTest(path=path):
                r = self.srv.raw("HEAD", path)
                self.assertNotIn(r.status, (404, 405), path)
                self.assertEqual(r.body, b"")

    def test_405(self):
        cases = [
            ("GET", "/api/write", "POST"), ("GET", "/api/write/", "POST"),
            ("PUT", "/api/write", "POST"), ("HEAD", "/api/write", "POST"),
            ("GET", "/api/free", "POST"), ("DELETE", "/api/free/", "POST"),
            ("DELETE", "/api/query", "GET"), ("PUT", "/api/query/", "GET"),
            ("POST", "/api/debug", "GET"), ("DELETE", "/api/debug/", "GET"),
            ("PUT", "/api/healthcheck", "GET"), ("PATCH", "/api/healthcheck/", "GET"),
            ("GET", "/api/write/sub/path", "POST"),
        ]
        for method, path, allowed in cases:
            with self.subTest(method=method, path=path):
                r = self.srv.raw(method, path, b"" if method != "HEAD" else None)
                self.assertStatus(r, 405)
                allow = r.headers.get("Allow")
                self.assertIsNotNone(allow, "no Allow header")
                methods = [m.strip() for m in allow.split(",")]
                self.assertIn(allowed, methods)
                self.assertNotIn(method, methods)
                if method != "HEAD":
                    self.assertEqual(r.body, NOT_ALLOWED)

    def test_404(self):
        for method, path in [("GET", "/"), ("GET", "/api"), ("GET", "/api/"), ("GET", "/nope"),
                             ("POST", "/api/unknown"), ("DELETE", "/x/y"),
                             ("GET", "/API/query"), ("GET", "/swagger/")]:
            with self.subTest(method=method, path=path):
                r = self.srv.raw(method, path, b"")
                self.assertStatus(r, 404)
                self.assertEqual(r.body, NOT_FOUND)
                self.assertTrue(r.headers.get("Content-Type", "").startswith("text/plain"))

    def test_post_accepted_for_query_and_healthcheck(self):
        self.check_query(self.srv.raw("POST", "/api/query", QUERY))
        self.check_query(self.srv.raw("POST", "/api/query/", QUERY))
        self.check_health(self.srv.raw("POST", "/api/healthcheck", HEALTH))
        self.check_health(self.srv.raw("POST", "/api/healthcheck/", HEALTH))

    def test_redirect_non_canonical(self):
        cases = [("//api/debug", "/api/debug"), ("/api//debug", "/api/debug"),
                 ("/api/./debug", "/api/debug"), ("/api/x/../debug", "/api/debug"),
                 ("/api/../api/debug", "/api/debug"), ("/api/debug//", "/api/debug/"),
                 ("/api/./query?version=v2", "/api/query?version=v2")]
        for path, target in cases:
            with self.subTest(path=path):
                r = self.srv.raw("GET", path)
                self.assertStatus(r, 301)
                loc = r.headers.get("Location", "")
                self.assertTrue(loc == target or loc.endswith("//127.0.0.1:%d%s" % (self.srv.port, target)),
                                "Location %r for %r" % (loc, path))
