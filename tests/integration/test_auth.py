"""JWT authentication against the real binary (docs/http-api.md, "Authentication").

Keys and tokens are made with the `openssl` command line (Ed25519 key
generation and raw signing); base64url is done here. Every /api/ endpoint
is checked against every way a request can fail authentication, and with a
valid token. 404, 405 and 301 answers need no token.
"""
import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest

from ccms import CCMSTestCase, Server, run_binary, start_server

TEXT_PLAIN = "text/plain; charset=utf-8"

# Upstream documentation key and token (docs/http-api.md, "Authentication").
DOC_KEY = "kzfYrYy+TzpanWZHJ5qSdMj5uKUWgq74BWhQG6copP0="
DOC_TOKEN = ("eyJ0eXAiOiJKV1QiLCJhbGciOiJFZERTQSJ9.eyJ1c2VyIjoiYWRtaW4iLCJyb2xlcyI6WyJST0xF"
             "X0FETUlOIiwiUk9MRV9BTkFMWVNUIiwiUk9MRV9VU0VSIl19.d-3_3FZTsadPjDEdsWrrQ7nS0edMAR4"
             "zjl-eK7rJU3HziNBfI9PDHDIpJVHTNN5E5SlLGLFXctWyKAkwhXL-Dw")

# Every authenticated route with a request that succeeds once authorized:
# (name, method, path, body, expected status).
ENDPOINTS = [
    ("query", "GET", "/api/query",
     {"cluster": "c", "from": 0, "to": 200, "queries": [{"metric": "m", "host": "h"}]}, 200),
    ("query/", "GET", "/api/query/",
     {"cluster": "c", "from": 0, "to": 200, "queries": []}, 200),
    ("query POST", "POST", "/api/query",
     {"cluster": "c", "from": 0, "to": 200, "queries": []}, 200),
    ("write", "POST", "/api/write", b"m,cluster=c,hostname=h value=1 100\n", 200),
    ("write/", "POST", "/api/write/", b"m,cluster=c,hostname=h value=2 110\n", 200),
    ("free", "POST", "/api/free?to=1", [["c", "nohost"]], 200),
    ("free/", "POST", "/api/free/?to=1", [], 200),
    ("debug", "GET", "/api/debug", None, 200),
    ("debug/", "GET", "/api/debug/", None, 200),
    ("debug selector", "GET", "/api/debug?selector=c:h", None, 200),
    ("healthcheck", "GET", "/api/healthcheck",
     {"cluster": "c", "nodes": ["h"], "metric-names": ["m"]}, 200),
    ("healthcheck/", "GET", "/api/healthcheck/",
     {"cluster": "c", "nodes": ["h"], "metric-names": ["m"]}, 200),
    ("status", "GET", "/api/status", None, 200),
    ("status/", "GET", "/api/status/", None, 200),
    ("HEAD debug", "HEAD", "/api/debug", None, 200),
]


def b64url(data, pad=False):
    s = base64.urlsafe_b64encode(data).decode()
    return s if pad else s.rstrip("=")


def openssl(*args, input=None):
    proc = subprocess.run(["openssl"] + list(args), input=input, capture_output=True,
                          timeout=30)
    if proc.returncode != 0:
        raise AssertionError("openssl %s failed: %s" % (" ".join(args), proc.stderr.decode()))
    return proc.stdout


class Ed25519Key:
    """A private key in a PEM file; signing through `openssl pkeyutl -rawin`."""

    def __init__(self, directory, name):
        self.pem = os.path.join(directory, name + ".pem")
        openssl("genpkey", "-algorithm", "ed25519", "-out", self.pem)
        der = openssl("pkey", "-in", self.pem, "-pubout", "-outform", "DER")
        # SubjectPublicKeyInfo of Ed25519: 12-byte prefix, then the raw 32-byte key.
        self.public_raw = der[-32:]
        self.public_b64 = base64.b64encode(self.public_raw).decode()

    def sign(self, message):
        msg = self.pem + ".msg"
        with open(msg, "wb") as fh:
            fh.write(message)
        sig = openssl("pkeyutl", "-sign", "-rawin", "-inkey", self.pem, "-in", msg)
        assert len(sig) == 64, len(sig)
        return sig


def make_token(key, claims=None, header=None, pad=False, sign_with=None):
    header = header if header is not None else {"typ": "JWT", "alg": "EdDSA"}
    claims = claims if claims is not None else {"user": "admin", "roles": ["ROLE_API"]}
    signing_input = (b64url(json.dumps(header, separators=(",", ":")).encode(), pad) + "." +
                     b64url(json.dumps(claims, separators=(",", ":")).encode(), pad))
    sig = (sign_with or key).sign(signing_input.encode())
    return signing_input + "." + b64url(sig, pad)


def body_of(body):
    if body is None:
        return None
    if isinstance(body, bytes):
        return body
    return json.dumps(body).encode()


class AuthTestBase(CCMSTestCase):
    @classmethod
    def setUpClass(cls):
        cls.keydir = tempfile.mkdtemp(prefix="ccms-auth-keys-")
        cls.addClassCleanup(shutil.rmtree, cls.keydir, True)
        cls.key = Ed25519Key(cls.keydir, "server")
        cls.other = Ed25519Key(cls.keydir, "other")

    def request(self, srv, method, path, body=None, authorization=None):
        headers = {}
        if authorization is not None:
            headers["Authorization"] = authorization
        return srv.raw(method, path, body_of(body), headers)

    def assertUnauthorized(self, r, text, msg=None):
        self.assertEqual(r.status, 401, "%s: got %d %r" % (msg, r.status, r.body[:300]))
        self.assertEqual(r.headers.get("Content-Type"), TEXT_PLAIN, msg)
        self.assertEqual(r.body, text.encode() + b"\n", msg)


class AuthMatrixTest(AuthTestBase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.srv = start_server(cls, main={"jwt-public-key": cls.key.public_b64})
        cls.valid = make_token(cls.key)

    def bad_tokens(self):
        now = int(time.time())
        k = self.key
        hs256 = (b64url(b'{"alg":"HS256","typ":"JWT"}') + "." + b64url(b'{"user":"admin"}') +
                 "." + b64url(b"\x01" * 32))
        none = b64url(b'{"alg":"none","typ":"JWT"}') + "." + b64url(b'{"user":"admin"}') + "."
        # header.payload of one token with the signature of another
        forged = self.valid.rsplit(".", 1)[0] + "." + make_token(k, {"user": "x"}).rsplit(".", 1)[1]
        return [
            ("no header", None, "Use JWT Authentication"),
            ("lower-case bearer", "bearer " + self.valid, "Use JWT Authentication"),
            ("upper-case BEARER", "BEARER " + self.valid, "Use JWT Authentication"),
            ("no space", "Bearer" + self.valid, "Use JWT Authentication"),
            ("basic auth", "Basic YWRtaW46YWRtaW4=", "Use JWT Authentication"),
            ("bare token", self.valid, "Use JWT Authentication"),
            ("bearer x", "bearer x", "Use JWT Authentication"),
            ("one segment", "Bearer x", "token contains an invalid number of segments"),
            ("two segments", "Bearer " + self.valid.rsplit(".", 1)[0],
             "token contains an invalid number of segments"),
            ("four segments", "Bearer " + self.valid + ".x",
             "token contains an invalid number of segments"),
            ("empty token", "Bearer ", "token contains an invalid number of segments"),
            ("alg HS256", "Bearer " + hs256, "only Ed25519/EdDSA supported"),
            ("alg none", "Bearer " + none, "only Ed25519/EdDSA supported"),
            ("alg unknown", "Bearer " + make_token(k, header={"alg": "XY999"}),
             "signing method (alg) is unavailable."),
            ("signed by another key", "Bearer " + make_token(k, sign_with=self.other),
             "ed25519: verification error"),
            ("signature of another token", "Bearer " + forged, "ed25519: verification error"),
            ("expired", "Bearer " + make_token(k, {"user": "a", "exp": now - 60}),
             "Token is expired"),
            ("nbf in the future", "Bearer " + make_token(k, {"user": "a", "nbf": now + 3600}),
             "Token is not valid yet"),
            ("iat in the future", "Bearer " + make_token(k, {"user": "a", "iat": now + 3600}),
             "Token used before issued"),
            ("expired and bad signature",
             "Bearer " + make_token(k, {"exp": now - 60}, sign_with=self.other),
             "ed25519: verification error"),
            ("doc token, other key", "Bearer " + DOC_TOKEN, "ed25519: verification error"),
        ]

    def test_every_endpoint_rejects_every_bad_token(self):
        cases = self.bad_tokens()
        for name, method, path, body, _ in ENDPOINTS:
            for case, authorization, text in cases:
                with self.subTest(endpoint=name, case=case):
                    r = self.request(self.srv, method, path, body, authorization)
                    if method == "HEAD":
                        self.assertEqual(r.status, 401, case)
                        self.assertEqual(r.headers.get("Content-Type"), TEXT_PLAIN)
                    else:
                        self.assertUnauthorized(r, text, "%s %s" % (name, case))

    def test_rejected_write_stores_nothing(self):
        r = self.request(self.srv, "POST", "/api/write",
                         b"m,cluster=c,hostname=intruder value=1 100\n", "bearer " + self.valid)
        self.assertEqual(r.status, 401)
        r = self.request(self.srv, "POST", "/api/write",
                         b"m,cluster=c,hostname=intruder value=1 100\n",
                         "Bearer " + make_token(self.key, sign_with=self.other))
        self.assertEqual(r.status, 401)
        r = self.request(self.srv, "GET", "/api/debug?selector=c:intruder", None,
                         "Bearer " + self.valid)
        self.assertStatus(r, 400)

    def test_every_endpoint_accepts_a_valid_token(self):
        for name, method, path, body, status in ENDPOINTS:
            with self.subTest(endpoint=name):
                r = self.request(self.srv, method, path, body, "Bearer " + self.valid)
                self.assertStatus(r, status, name)

    def test_valid_time_claims(self):
        now = int(time.time())
        claims = {"user": "a", "exp": now + 3600, "nbf": now - 10, "iat": now - 10}
        tok = make_token(self.key, claims)
        for name, method, path, body, status in ENDPOINTS:
            with self.subTest(endpoint=name):
                r = self.request(self.srv, method, path, body, "Bearer " + tok)
                self.assertStatus(r, status, name)
        # zero and non-numeric time claims are ignored (golang-jwt v4)
        for claims in ({"exp": 0}, {"exp": "yesterday", "nbf": "soon"}, {"iat": None}):
            with self.subTest(claims=claims):
                r = self.request(self.srv, "GET", "/api/debug", None,
                                 "Bearer " + make_token(self.key, claims))
                self.assertStatus(r, 200)

    def test_padded_and_unpadded_base64url(self):
        # pick claims whose encodings need padding in both header and payload
        for filler in range(9):
            header = {"typ": "JWT", "alg": "EdDSA", "kid": "k" * (filler % 3)}
            claims = {"user": "admin" + "x" * (filler // 3)}
            tok = make_token(self.key, claims, header=header, pad=True)
            head, payload, _ = tok.split(".")
            if head.endswith("=") and payload.endswith("="):
                break
        else:
            self.fail("no padded token found")
        self.assertTrue(tok.endswith("=="))   # 64-byte signature: always padded
        unpadded = make_token(self.key, claims, header=header, pad=False)
        self.assertNotIn("=", unpadded)
        for t in (tok, unpadded):
            with self.subTest(token=t):
                r = self.request(self.srv, "GET", "/api/debug", None, "Bearer " + t)
                self.assertStatus(r, 200)
                # second time from the cache
                r = self.request(self.srv, "GET", "/api/debug", None, "Bearer " + t)
                self.assertStatus(r, 200)

    def test_cached_token_expires(self):
        exp = int(time.time()) + 2
        tok = make_token(self.key, {"user": "a", "exp": exp})
        if int(time.time()) + 1 >= exp:   # signing was slow; the window is gone
            exp = int(time.time()) + 2
            tok = make_token(self.key, {"user": "a", "exp": exp})
        for _ in range(2):   # verified once, then served from the cache
            r = self.request(self.srv, "GET", "/api/debug", None, "Bearer " + tok)
            self.assertStatus(r, 200)
        time.sleep(max(0.0, exp - time.time()) + 1.1)
        for _ in range(2):   # cache hit re-checks exp; the re-verification fails too
            r = self.request(self.srv, "GET", "/api/debug", None, "Bearer " + tok)
            self.assertUnauthorized(r, "Token is expired")

    def test_many_distinct_tokens_fill_the_cache(self):
        # more tokens than the cache holds (1024 entries): all still verify
        tokens = [make_token(self.key, {"user": "u%d" % i}) for i in range(40)]
        for _ in range(2):
            for t in tokens:
                r = self.request(self.srv, "GET", "/api/status", None, "Bearer " + t)
                self.assertStatus(r, 200)

    def test_no_auth_for_404_405_301(self):
        for method, path, status in (
                ("GET", "/api/write", 405), ("PUT", "/api/query", 405),
                ("DELETE", "/api/free", 405), ("POST", "/api/debug", 405),
                ("GET", "/nope", 404), ("GET", "/api", 404), ("GET", "/api/queryx", 404),
                ("POST", "/", 404), ("GET", "//api/debug", 301),
                ("GET", "/api/../api/debug", 301)):
            for authorization in (None, "Bearer garbage"):
                with self.subTest(method=method, path=path, auth=authorization):
                    r = self.request(self.srv, method, path, None, authorization)
                    self.assertStatus(r, status)

    def test_401_keeps_connection_usable(self):
        import http.client
        conn = http.client.HTTPConnection("127.0.0.1", self.srv.port, timeout=10)
        try:
            conn.request("GET", "/api/debug")
            r = conn.getresponse()
            r.read()
            self.assertEqual(r.status, 401)
            conn.request("GET", "/api/debug", headers={"Authorization": "Bearer " + self.valid})
            r = conn.getresponse()
            r.read()
            self.assertEqual(r.status, 200)
        finally:
            conn.close()

    def test_rejected_before_large_body_is_read(self):
        body = b"m,cluster=c,hostname=big value=1 100\n" * 100000   # ~3.7 MB
        head = ("POST /api/write HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
                % len(body)).encode()
        resp = self.srv.exchange(head, body)
        self.assertTrue(resp.startswith(b"HTTP/1.1 401"), resp[:200])
        self.assertTrue(resp.endswith(b"Use JWT Authentication\n"), resp[-200:])
        r = self.request(self.srv, "GET", "/api/debug?selector=c:big", None,
                         "Bearer " + self.valid)
        self.assertStatus(r, 400)


class DocumentationKeyTest(AuthTestBase):
    def test_upstream_doc_token(self):
        srv = start_server(self, main={"jwt-public-key": DOC_KEY})
        r = self.request(srv, "GET", "/api/debug", None, "Bearer " + DOC_TOKEN)
        self.assertStatus(r, 200)
        r = self.request(srv, "POST", "/api/write", b"m,cluster=c,hostname=h value=1 100\n",
                         "Bearer " + DOC_TOKEN)
        self.assertStatus(r, 200)
        r = self.request(srv, "GET", "/api/debug", None, "Bearer " + DOC_TOKEN[:-20] + ("A" if DOC_TOKEN[-20] != "A" else "B") + DOC_TOKEN[-19:])
        self.assertUnauthorized(r, "ed25519: verification error")
        r = self.request(srv, "GET", "/api/debug", None, "Bearer " + make_token(self.key))
        self.assertUnauthorized(r, "ed25519: verification error")

    def test_empty_key_means_no_auth(self):
        srv = start_server(self, main={"jwt-public-key": ""})
        r = self.request(srv, "GET", "/api/debug")
        self.assertStatus(r, 200)
        r = self.request(srv, "GET", "/api/debug", None, "Bearer garbage")
        self.assertStatus(r, 200)


class KeyConfigTest(AuthTestBase):
    def run_with_key(self, key):
        srv = Server(main={"jwt-public-key": key})
        self.addCleanup(srv.close)
        return run_binary(["-config", srv.config_path], cwd=srv.tmp)

    def test_undecodable_key_fails_startup(self):
        for key in ("not base64!", "kzfYrYy+TzpanWZHJ5qSdMj5uKUWgq74BWhQG6copP0",  # no padding
                    "kzfYrYy-TzpanWZHJ5qSdMj5uKUWgq74BWhQG6copP0=",   # url alphabet
                    "kzfYrYy+TzpanWZHJ5qSdMj5uKUWgq74BWhQG6copP0= ", "===="):
            with self.subTest(key=key):
                p = self.run_with_key(key)
                self.assertEqual(p.returncode, 1, p.stderr)
                self.assertIn("jwt-public-key", p.stderr)
                self.assertIn("base64", p.stderr)

    def test_wrong_length_key_rejects_every_token(self):
        for raw in (self.key.public_raw[:31], self.key.public_raw + b"\0", b"0123456789abcdef"):
            with self.subTest(length=len(raw)):
                srv = start_server(self, main={"jwt-public-key": base64.b64encode(raw).decode()})
                for tok in (make_token(self.key), DOC_TOKEN):
                    r = self.request(srv, "GET", "/api/debug", None, "Bearer " + tok)
                    self.assertUnauthorized(r, "key is invalid")
                r = self.request(srv, "POST", "/api/write",
                                 b"m,cluster=c,hostname=h value=1 100\n",
                                 "Bearer " + make_token(self.key))
                self.assertUnauthorized(r, "key is invalid")
                r = self.request(srv, "GET", "/api/debug")
                self.assertUnauthorized(r, "Use JWT Authentication")
                srv.stop()


if __name__ == "__main__":
    unittest.main()
