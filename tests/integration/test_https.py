"""HTTPS (docs/security.md): a self-signed
certificate made with the `openssl` command line, queried with Python's ssl
module. TLS 1.2 and 1.3 work, older protocols are refused, plain HTTP on the
TLS port fails without harming the server, and unusable certificate or key
files stop the startup with exit status 1 and a message naming the problem.
"""
import http.client
import json
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import unittest
import warnings

from ccms import CCMSTestCase, Server, run_binary, start_server

QUERY = {"cluster": "c", "from": 0, "to": 200, "queries": [{"metric": "m", "host": "h"}]}


def openssl(*args):
    proc = subprocess.run(["openssl"] + list(args), capture_output=True, timeout=60)
    if proc.returncode != 0:
        raise AssertionError("openssl %s failed: %s" % (" ".join(args), proc.stderr.decode()))


def make_cert(directory, name, kind="ec"):
    """Self-signed certificate for localhost -> (cert path, key path)."""
    cert = os.path.join(directory, name + ".crt")
    key = os.path.join(directory, name + ".key")
    newkey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"] if kind == "ec" \
        else ["-newkey", "rsa:2048"]
    openssl("req", "-x509", *newkey, "-nodes", "-keyout", key, "-out", cert, "-days", "2",
            "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost")
    return cert, key


def client_context(minimum=None, maximum=None, ciphers=None):
    # TLS 1.0/1.1 are deprecated in Python; asking for them on purpose
    warnings.filterwarnings("ignore", category=DeprecationWarning, message=".*TLSv1")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if ciphers:
        ctx.set_ciphers(ciphers)
    if minimum:
        ctx.minimum_version = minimum
    if maximum:
        ctx.maximum_version = maximum
    return ctx


def https_request(port, method, path, body=None, ctx=None, timeout=10):
    conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=timeout,
                                       context=ctx or client_context())
    try:
        conn.request(method, path, body=body)
        r = conn.getresponse()
        data = r.read()
        return r.status, r.msg, data, conn.sock.version()
    finally:
        conn.close()


def tls11_client_possible(cert, key):
    """True if this Python/OpenSSL can complete a TLS 1.1 handshake at all
    (tried against a local TLS-1.1-only server with the same certificate)."""
    warnings.filterwarnings("ignore", category=DeprecationWarning, message=".*TLSv1")
    try:
        sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        sctx.set_ciphers("ALL:@SECLEVEL=0")
        sctx.minimum_version = ssl.TLSVersion.TLSv1_1
        sctx.maximum_version = ssl.TLSVersion.TLSv1_1
        sctx.load_cert_chain(cert, key)
        cctx = client_context(ssl.TLSVersion.TLSv1_1, ssl.TLSVersion.TLSv1_1,
                              "ALL:@SECLEVEL=0")
    except (ssl.SSLError, ValueError, AttributeError):
        return False
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(1)
    lsock.settimeout(5)
    result = {}

    def serve():
        try:
            conn, _ = lsock.accept()
            with sctx.wrap_socket(conn, server_side=True) as s:
                result["server"] = s.version()
        except (OSError, ssl.SSLError):
            pass

    t = threading.Thread(target=serve)
    t.start()
    ok = False
    try:
        with socket.create_connection(lsock.getsockname(), timeout=5) as raw:
            with cctx.wrap_socket(raw) as s:
                ok = s.version() == "TLSv1.1"
    except (OSError, ssl.SSLError):
        ok = False
    t.join(10)
    lsock.close()
    return ok


class HttpsTestBase(CCMSTestCase):
    @classmethod
    def setUpClass(cls):
        cls.certdir = tempfile.mkdtemp(prefix="ccms-tls-")
        cls.addClassCleanup(shutil.rmtree, cls.certdir, True)
        cls.cert, cls.key = make_cert(cls.certdir, "ec", "ec")


class HttpsServeTest(HttpsTestBase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.srv = start_server(cls, main={"https-cert-file": cls.cert,
                                          "https-key-file": cls.key})

    def test_write_and_query_over_tls(self):
        status, _, body, _ = https_request(self.srv.port, "POST", "/api/write",
                                           b"m,cluster=c,hostname=h value=4.5 100\n")
        self.assertEqual(status, 200, body)
        status, headers, body, version = https_request(self.srv.port, "GET", "/api/query",
                                                       json.dumps(QUERY).encode())
        self.assertEqual(status, 200, body)
        self.assertEqual(headers.get("Content-Type"), "application/json")
        self.assertIn(b'4.500],"from":100', body)
        self.assertIn(version, ("TLSv1.2", "TLSv1.3"))

    def test_tls12_and_tls13(self):
        for v in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
            with self.subTest(version=v):
                status, _, body, version = https_request(
                    self.srv.port, "GET", "/api/debug", ctx=client_context(v, v))
                self.assertEqual(status, 200, body)
                self.assertEqual(version, v.name.replace("v1_", "v1."))

    def test_tls11_refused(self):
        # the precondition fails loudly: without a client that can speak
        # TLS 1.1 a refusal by the store would prove nothing
        self.assertTrue(tls11_client_possible(self.cert, self.key),
                        "the local OpenSSL (%s) cannot complete a TLS 1.1 handshake even "
                        "with a TLS-1.1-only Python server" % ssl.OPENSSL_VERSION)
        for v in (ssl.TLSVersion.TLSv1_1, ssl.TLSVersion.TLSv1):
            with self.subTest(version=v):
                ctx = client_context(v, v, "ALL:@SECLEVEL=0")
                with self.assertRaises((ssl.SSLError, ConnectionError, OSError)):
                    https_request(self.srv.port, "GET", "/api/debug", ctx=ctx)
        status, _, _, _ = https_request(self.srv.port, "GET", "/api/debug")
        self.assertEqual(status, 200)

    def test_plain_http_on_tls_port(self):
        for data in (b"GET /api/debug HTTP/1.1\r\nHost: x\r\n\r\n",
                     b"POST /api/write HTTP/1.1\r\nHost: x\r\nContent-Length: 38\r\n\r\n"
                     b"m,cluster=c,hostname=plain value=1 100\n",
                     b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\0" * 20,  # cut ClientHello
                     os.urandom(4096)):
            with self.subTest(data=data[:20]):
                reply = self.srv.send_raw_bytes(data, read_timeout=5)
                self.assertNotIn(b"HTTP/1.1 200", reply)
                self.assertFalse(reply.startswith(b"HTTP/"), reply[:100])
                self.assertTrue(self.srv.running())
        # the server still serves TLS, and the plain write stored nothing
        status, _, body, _ = https_request(self.srv.port, "GET", "/api/debug?selector=c:plain")
        self.assertEqual(status, 400, body)

    def test_idle_plain_connection_does_not_block_tls(self):
        with socket.create_connection(("127.0.0.1", self.srv.port), timeout=5):
            status, _, _, _ = https_request(self.srv.port, "GET", "/api/debug")
            self.assertEqual(status, 200)

    def test_many_tls_requests_on_one_connection(self):
        conn = http.client.HTTPSConnection("127.0.0.1", self.srv.port, timeout=10,
                                           context=client_context())
        try:
            for i in range(50):
                conn.request("POST", "/api/write",
                             body=("m,cluster=c,hostname=k value=%d %d\n" % (i, 1000 + 10 * i))
                             .encode())
                r = conn.getresponse()
                r.read()
                self.assertEqual(r.status, 200)
        finally:
            conn.close()


class HttpsRsaTest(HttpsTestBase):
    def test_rsa_certificate(self):
        cert, key = make_cert(self.certdir, "rsa", "rsa")
        srv = start_server(self, main={"https-cert-file": cert, "https-key-file": key})
        for v in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
            with self.subTest(version=v):
                status, _, _, _ = https_request(srv.port, "GET", "/api/debug",
                                                ctx=client_context(v, v))
                self.assertEqual(status, 200)

    def test_only_cert_set_means_plain_http(self):
        # upstream: HTTPS only if both files are set, otherwise plain HTTP
        srv = start_server(self, main={"https-cert-file": self.cert})
        self.assertStatus(srv.raw("GET", "/api/debug"), 200)


class HttpsStartupErrorTest(HttpsTestBase):
    def run_with(self, cert, key):
        srv = Server(main={"https-cert-file": cert, "https-key-file": key})
        self.addCleanup(srv.close)
        p = run_binary(["-config", srv.config_path], cwd=srv.tmp, timeout=20)
        # nothing may be listening afterwards
        with self.assertRaises(OSError):
            socket.create_connection(("127.0.0.1", srv.port), timeout=1).close()
        return p

    def test_missing_cert_file(self):
        missing = os.path.join(self.certdir, "does-not-exist.crt")
        p = self.run_with(missing, self.key)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn(missing, p.stderr)
        self.assertIn("No such file", p.stderr)

    def test_missing_key_file(self):
        missing = os.path.join(self.certdir, "does-not-exist.key")
        p = self.run_with(self.cert, missing)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn(missing, p.stderr)

    def test_cert_is_a_directory(self):
        p = self.run_with(self.certdir, self.key)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn(self.certdir, p.stderr)
        # the reason must be the real one (EISDIR), not a side effect of
        # reading a directory's size
        self.assertIn("directory", p.stderr)
        self.assertNotIn("memory", p.stderr)

    def test_unreadable_cert_file(self):
        if os.geteuid() == 0:
            # root reads mode-000 files; a file that cannot be opened by
            # anyone is a dangling symlink
            path = os.path.join(self.certdir, "dangling.crt")
            if not os.path.lexists(path):
                os.symlink(os.path.join(self.certdir, "gone"), path)
        else:
            path = os.path.join(self.certdir, "mode000.crt")
            shutil.copy(self.cert, path)
            os.chmod(path, 0)
        p = self.run_with(path, self.key)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn(path, p.stderr)

    def test_key_not_matching_cert(self):
        other_cert, other_key = make_cert(self.certdir, "other", "ec")
        p = self.run_with(self.cert, other_key)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertRegex(p.stderr, r"(?i)https|certificate|key")
        self.assertNotIn("Graceful shutdown", p.stdout)

    def test_garbage_pem(self):
        bad = os.path.join(self.certdir, "garbage.crt")
        with open(bad, "w") as fh:
            fh.write("-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n")
        for cert, key in ((bad, self.key), (self.cert, bad)):
            with self.subTest(cert=cert, key=key):
                p = self.run_with(cert, key)
                self.assertEqual(p.returncode, 1, p.stderr)
                self.assertRegex(p.stderr, r"(?i)https|certificate|key")

    def test_empty_files(self):
        empty = os.path.join(self.certdir, "empty.pem")
        open(empty, "w").close()
        p = self.run_with(empty, empty)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertRegex(p.stderr, r"(?i)https|certificate|key")


if __name__ == "__main__":
    unittest.main()
