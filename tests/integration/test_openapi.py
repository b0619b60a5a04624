"""docs/openapi.json, the OpenAPI 3 description of the HTTP API, against
the code and the server: its paths and methods are exactly the routing
table's (src/net/http_route.c), every $ref resolves, and real answers of
the server validate against its response schemas (a small validator for
the subset of JSON Schema the document uses).
"""
import json
import os
import re
import time

from ccms import REPO, CCMSTestCase, start_server

SPEC = os.path.join(REPO, "docs", "openapi.json")
METRICS = {"load": {"frequency": 10, "aggregation": "avg"},
           "temp": {"frequency": 10, "aggregation": "sum"}}


def load_spec():
    with open(SPEC) as fh:
        return json.load(fh)


def resolve(spec, node):
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        assert ref.startswith("#/"), ref
        node = spec
        for part in ref[2:].split("/"):
            node = node[part]
    return node


def validate(spec, schema, value, where="$"):
    """Raises AssertionError naming the first place value breaks schema."""
    schema = resolve(spec, schema)
    if value is None:
        assert schema.get("nullable"), "%s: null not allowed" % where
        return
    kinds = {"object": dict, "array": list, "string": str, "boolean": bool,
             "integer": int, "number": (int, float)}
    t = schema.get("type")
    if t:
        ok = isinstance(value, kinds[t]) and not (t in ("integer", "number") and
                                                  isinstance(value, bool))
        assert ok, "%s: %r is not %s" % (where, value, t)
    if "enum" in schema:
        assert value in schema["enum"], "%s: %r not in %r" % (where, value, schema["enum"])
    if t == "array":
        for i, item in enumerate(value):
            validate(spec, schema.get("items", {}), item, "%s[%d]" % (where, i))
    if t == "object":
        props = schema.get("properties", {})
        for key in schema.get("required", []):
            assert key in value, "%s: %s missing" % (where, key)
        extra = schema.get("additionalProperties", True)
        for key, v in value.items():
            if key in props:
                validate(spec, props[key], v, "%s.%s" % (where, key))
            elif extra is False:
                raise AssertionError("%s: unexpected key %s" % (where, key))
            elif isinstance(extra, dict):
                validate(spec, extra, v, "%s.%s" % (where, key))


class SpecTest(CCMSTestCase):
    def test_document(self):
        spec = load_spec()
        self.assertRegex(spec["openapi"], r"^3\.0\.\d+$")
        self.assertIn("bearerAuth", spec["components"]["securitySchemes"])

        def walk(node):
            if isinstance(node, dict):
                if "$ref" in node:
                    resolve(spec, node)
                for v in node.values():
                    walk(v)
            elif isinstance(node, list):
                for v in node:
                    walk(v)
        walk(spec)
        for path, ops in spec["paths"].items():
            for method, op in ops.items():
                self.assertIn("200", op["responses"], "%s %s" % (method, path))
                self.assertIn("operationId", op)

    def test_paths_are_the_routing_table(self):
        with open(os.path.join(REPO, "src", "net", "http_route.c")) as fh:
            src = fh.read()
        table = re.findall(r'\{ "(/[^"]*)", HTTP_ROUTE_\w+, (true|false), (true|false),', src)
        # the explorer that shows this document (-dev) is not part of it
        table = [t for t in table if t[0] != "/swagger"]
        self.assertGreaterEqual(len(table), 7)
        spec = load_spec()
        self.assertEqual(set(spec["paths"]), {p for p, _, _ in table})
        for path, get, post in table:
            self.assertEqual(set(spec["paths"][path]),
                             ({"get"} if get == "true" else set()) |
                             ({"post"} if post == "true" else set()), path)


class AnswersTest(CCMSTestCase):
    """Real answers validate against the document's schemas."""

    @classmethod
    def setUpClass(cls):
        cls.spec = load_spec()
        cls.srv = start_server(cls, metrics=METRICS)

    def schema(self, path, method, status):
        resp = resolve(self.spec, self.spec["paths"][path][method]["responses"][str(status)])
        content = resp.get("content", {})
        return content.get("application/json", {}).get("schema")

    def check(self, r, path, method):
        self.assertIn(str(r.status), self.spec["paths"][path][method]["responses"],
                      "%s %s answered %d, not in the document" % (method, path, r.status))
        schema = self.schema(path, method, r.status)
        # /api/debug's dump is not strict JSON: the document says so with a string schema
        if schema is not None and r.body and schema.get("type") != "string":
            validate(self.spec, schema, json.loads(r.body))
        return r

    def test_write_query_health_status_free(self):
        now = int(time.time())
        body = "".join("load,cluster=c,hostname=h%d,type=node value=%d.5 %d\n" % (h, k, now - 10 * k)
                       for h in range(3) for k in range(5))
        body += "temp,cluster=c,hostname=h0,type=socket,type-id=0 value=40 %d\n" % now
        self.check(self.srv.write(body), "/api/write", "post")
        self.check(self.srv.write("load,cluster=c,hostname=h0 value=x %d\n" % now),
                   "/api/write", "post")
        q = {"cluster": "c", "from": now - 60, "to": now + 10, "with-stats": True,
             "queries": [{"metric": "load", "host": "h0"},
                         {"metric": "temp", "host": "h0", "type": "socket", "type-ids": ["0", "1"]},
                         {"metric": "nometric", "host": "h0"}],
             "for-all-nodes": ["load"]}
        r = self.check(self.srv.query(q), "/api/query", "get")
        self.assertEqual(r.status, 200)
        self.assertIn("queries", json.loads(r.body))
        self.check(self.srv.query(q, method="POST"), "/api/query", "post")
        self.check(self.srv.query(b"{not json"), "/api/query", "get")
        h = {"cluster": "c", "nodes": ["h0", "gone"], "metric-names": ["load", "temp"]}
        self.check(self.srv.raw("GET", "/api/healthcheck", json.dumps(h)), "/api/healthcheck", "get")
        self.check(self.srv.raw("POST", "/api/healthcheck", json.dumps(h)),
                   "/api/healthcheck", "post")
        self.check(self.srv.raw("GET", "/api/status"), "/api/status", "get")
        self.check(self.srv.raw("GET", "/api/debug?selector=c:h0"), "/api/debug", "get")
        self.check(self.srv.raw("GET", "/api/debug?selector=c:nohost"), "/api/debug", "get")
        self.check(self.srv.raw("GET", "/metrics"), "/metrics", "get")
        self.check(self.srv.free(now - 3600, [["c", "h2"]]), "/api/free", "post")
        self.check(self.srv.free("x", [["c"]]), "/api/free", "post")
