"""Persistence: every acknowledged sample survives crashes and restarts, in
the Go store's file formats (docs/file-formats.md, docs/compatibility.md
Durability / Crash recovery / JSON checkpoints, §4 fsync).

The real binary is started, written to, stopped with SIGTERM or killed with
SIGKILL, and restarted on the same checkpoint directory. Files are built
and checked byte-exactly with codecs written here from the spec (§4 WAL,
§5 .bin, §3 JSON), independent of the C code.
"""
import collections
import json
import os
import random
import re
import shutil
import signal
import struct
import subprocess
import threading
import time
import zlib

import crash_loop
from ccms import BINARY, REPO, CCMSTestCase, Server, codec_profiles, f32, parse_debug, long_retention

TESTDATA = os.path.join(REPO, "tests", "fixtures")

WAL_FILE_MAGIC = 0xCC1DA701
WAL_RECORD_MAGIC = 0xCC1DA7A1
WAL_MAX_PAYLOAD = 1 << 20
BIN_MAGIC = 0xCC5B0001

T = 1700000000          # 2023-11-14: old, so every test relies on the large retention
POLL = 0.05             # seconds between looks at the checkpoint directory
POLL_LIMIT = 15.0       # give up waiting for a background snapshot after this long

METRICS = {
    "m": {"frequency": 10, "aggregation": "avg"},      # host level
    "u": {"frequency": 10, "aggregation": "avg"},      # hwthread level
    "b": {"frequency": 60, "aggregation": "sum"},      # socket level
}


# ---- codecs written from docs/file-formats.md -------------------------------

SEG_FILE_MAGIC = 0xCC106001
SEG_RECORD_MAGIC = 0xCC10D47A
SEG_NAME = re.compile(r"^wal-(\d{20})\.log$")
DEC_SCALE = [float("1e-%d" % k) for k in range(9)]   # the C literals 1e-k


def _varint(buf, p):
    v = shift = 0
    while True:
        if p >= len(buf):
            raise FormatError("varint runs past the payload")
        b = buf[p]
        p += 1
        v |= (b & 0x7F) << shift
        if not b & 0x80:
            return v, p
        shift += 7
        if shift > 63:
            raise FormatError("varint too long")


def _unzigzag(v):
    return (v >> 1) ^ -(v & 1)


NSNAP_MAGIC = 0xCC5A0001
NSNAP_BLOCK_MAGIC = 0xCC5B10CC


def decode_codec_block(enc, n):
    """One encoded part of a buffer (docs/file-formats.md, "Native
    snapshot": RAW, CONST, DECIMAL, BITS):
    n float32 values, None for a missing slot."""
    kind = enc[0]
    if kind == 0:
        if len(enc) != 1 + 4 * n:
            raise FormatError("RAW part length")
        vals = [bits_f32(struct.unpack_from("<I", enc, 1 + 4 * i)[0]) for i in range(n)]
        return [None if v != v else v for v in vals]
    if kind == 1:
        if len(enc) != 5:
            raise FormatError("CONST part length")
        v = bits_f32(struct.unpack_from("<I", enc, 1)[0])
        return [None if v != v else v] * n
    if kind not in (2, 3):
        raise FormatError("unknown part kind %d" % kind)
    if kind == 2:                # DECIMAL: u8 k | u8 flags
        k, flags, p = enc[1], enc[2], 3
    else:                        # BITS: u8 flags, then as DECIMAL
        k, flags, p = None, enc[1], 2
    present = [True] * n
    if flags & 1:
        bitmap = enc[p:p + (n + 7) // 8]
        present = [bool(bitmap[i // 8] >> (i % 8) & 1) for i in range(n)]
        p += (n + 7) // 8
    m = sum(present)
    first, p = _varint(enc, p)
    min_delta, p = _varint(enc, p)
    width = enc[p]
    p += 1
    _, p = _varint(enc, p)       # below: min = first - below
    _, p = _varint(enc, p)       # above: max = first + above
    p += 8                       # the sum of the values (a double)
    moves = [True] * (m - 1)
    if flags & 2:                # only the steps that move are packed
        if m < 2:
            raise FormatError("DECIMAL bitmap of moves with one value")
        nbytes = (m - 1 + 7) // 8
        bitmap = enc[p:p + nbytes]
        moves = [bool(bitmap[j // 8] >> (j % 8) & 1) for j in range(m - 1)]
        if len(bitmap) != nbytes or int.from_bytes(bitmap, "little") >> (m - 1):
            raise FormatError("DECIMAL bitmap of moves")
        p += nbytes
    if flags & ~3:
        raise FormatError("DECIMAL flags %#x" % flags)
    bits = int.from_bytes(enc[p:], "little")
    if len(enc) - p != (sum(moves) * width + 7) // 8:
        raise FormatError("DECIMAL packed length")
    r = _unzigzag(first)
    ints, at = [r], 0
    for j in range(1, m):
        if moves[j - 1]:
            r += ((bits >> (at * width)) & ((1 << width) - 1)) + _unzigzag(min_delta)
            at += 1
        ints.append(r)
    if k is None:
        # the integers are float bits that order like the floats: a clear
        # top bit is a negative value with every bit flipped
        def unorder(o):
            if not 0 <= o <= 0xFFFFFFFF:
                raise FormatError("BITS integer out of range")
            return o ^ 0x80000000 if o & 0x80000000 else o ^ 0xFFFFFFFF
        it = iter(bits_f32(unorder(x)) for x in ints)
    else:
        it = iter(f32(x * DEC_SCALE[k]) for x in ints)
    return [next(it) if present[i] else None for i in range(n)]


def decode_ccms(data):
    """Strict reader of a native snapshot (docs/file-formats.md, "Native
    snapshot"): -> (from, to, {(sel, metric): {ts: value}})."""
    if len(data) < 28:
        raise FormatError("native snapshot shorter than its header")
    magic, version, _, frm, to, crc = struct.unpack_from("<IHHqqI", data)
    if magic != NSNAP_MAGIC or version not in (1, 2) or zlib.crc32(data[:24]) != crc:
        raise FormatError("bad native snapshot header")
    pos, points = 28, collections.defaultdict(dict)
    while pos < len(data):
        magic, blen, crc = struct.unpack_from("<III", data, pos)
        body = data[pos + 12:pos + 12 + blen]
        if magic != NSNAP_BLOCK_MAGIC or len(body) != blen or zlib.crc32(body) != crc:
            raise FormatError("bad block at %d" % pos)
        q, sel = 1, []
        for _ in range(body[0]):
            sel.append(body[q + 1:q + 1 + body[q]].decode())
            q += 1 + body[q]
        mlen = struct.unpack_from("<H", body, q)[0]
        metric = body[q + 2:q + 2 + mlen].decode()
        q += 2 + mlen
        start, freq, length, cap, sealed = struct.unpack_from("<qIHHH", body, q)
        q += 18
        # the cap field's top bit: a whole buffer, its sealed slots one
        # part (version 2 only); otherwise parts of 128 slots
        if cap & ~0x83FF or (cap & 0x8000 and version < 2):
            raise FormatError("image cap field %#x at %d" % (cap, pos))
        part = 512 if cap & 0x8000 else 128
        parts = (sealed + part - 1) // part
        ends = struct.unpack_from("<%dH" % parts, body, q)
        q += 2 * parts
        values, prev = [], 0
        for i, end in enumerate(ends):
            values += decode_codec_block(body[q + prev:q + end], min(part, sealed - part * i))
            prev = end
        q += prev
        for i in range(length - sealed):
            v = bits_f32(struct.unpack_from("<I", body, q + 4 * i)[0])
            values.append(None if v != v else v)
        if q + 4 * (length - sealed) != blen:
            raise FormatError("block image length at %d" % pos)
        first = start + freq // 2
        for i, v in enumerate(values):
            if v is not None:
                points[(tuple(sel), metric)][first + i * freq] = v
        pos += 12 + blen
    return frm, to, points


def scan_seglog(data, allow_torn=False):
    """Strict reader of one native log segment (docs/file-formats.md,
    "Native log"): every byte after the header must belong to a valid
    record. Returns (seq, [(cluster, host, [(sel, metric, ts, value)])])
    with the level ids already resolved to their names."""
    if len(data) < 24:
        raise FormatError("segment shorter than its header")
    magic, version, _, seq, tlen = struct.unpack_from("<IHHQI", data)
    if magic != SEG_FILE_MAGIC or version != 1:
        raise FormatError("bad segment magic/version")
    if zlib.crc32(data[:20 + tlen]) != struct.unpack_from("<I", data, 20 + tlen)[0]:
        raise FormatError("segment header CRC mismatch")
    count = struct.unpack_from("<H", data, 20)[0]
    metrics, p = [], 22
    for _ in range(count):
        n = struct.unpack_from("<H", data, p)[0]
        metrics.append(data[p + 2:p + 2 + n].decode())
        p += 2 + n
    if p != 20 + tlen:
        raise FormatError("metric table length")
    pos = 24 + tlen
    levels = {}                     # (cluster, host) -> {id: sel}
    records = []
    while pos < len(data):
        if len(data) - pos < 12:
            if allow_torn:
                break
            raise FormatError("torn record header at %d" % pos)
        magic, plen, crc = struct.unpack_from("<III", data, pos)
        if magic != SEG_RECORD_MAGIC:
            raise FormatError("bad record magic 0x%08x at %d" % (magic, pos))
        if pos + 12 + plen > len(data):
            if allow_torn:
                break
            raise FormatError("torn record at %d" % pos)
        pl = data[pos + 12:pos + 12 + plen]
        if zlib.crc32(pl) != crc:
            raise FormatError("record CRC mismatch at %d" % pos)
        q = 0
        cluster = pl[q + 1:q + 1 + pl[q]].decode()
        q += 1 + pl[q]
        host = pl[q + 1:q + 1 + pl[q]].decode()
        q += 1 + pl[q]
        ids = levels.setdefault((cluster, host), {0: ()})
        ndefs, q = _varint(pl, q)
        for _ in range(ndefs):
            lid, q = _varint(pl, q)
            depth = pl[q]
            q += 1
            sel = []
            for _ in range(depth):
                sel.append(pl[q + 1:q + 1 + pl[q]].decode())
                q += 1 + pl[q]
            ids[lid] = tuple(sel)
        nsamples, q = _varint(pl, q)
        ts, out = 0, []
        for _ in range(nsamples):
            lid, q = _varint(pl, q)
            m, q = _varint(pl, q)
            dt, q = _varint(pl, q)
            ts += _unzigzag(dt)
            kind = pl[q]
            q += 1
            if kind <= 8:
                r, q = _varint(pl, q)
                value = f32(_unzigzag(r) * DEC_SCALE[kind])
            elif kind == 0x80:
                value = bits_f32(struct.unpack_from("<I", pl, q)[0])
                q += 4
            else:
                raise FormatError("bad value kind %d" % kind)
            if lid not in ids:
                raise FormatError("level id %d used before its definition" % lid)
            out.append((ids[lid], metrics[m], ts, value))
        if q != plen:
            raise FormatError("record fields end at %d of %d" % (q, plen))
        records.append((cluster, host, out))
        pos += 12 + plen
    return seq, records


class FormatError(AssertionError):
    pass


def f32bits(x):
    return struct.unpack("<I", struct.pack("<f", x))[0]


def bits_f32(b):
    return struct.unpack("<f", struct.pack("<I", b))[0]


def wal_record(ts, metric, sel, value):
    """One WAL record (§4.2)."""
    name = metric.encode()
    payload = struct.pack("<qH", ts, len(name)) + name + bytes([len(sel)])
    for comp in sel:
        comp = comp.encode()
        payload += bytes([len(comp)]) + comp
    payload += struct.pack("<I", f32bits(value))
    return (struct.pack("<II", WAL_RECORD_MAGIC, len(payload)) + payload
            + struct.pack("<I", zlib.crc32(payload)))


def wal_file(records):
    return struct.pack("<I", WAL_FILE_MAGIC) + b"".join(records)


WalRecord = collections.namedtuple("WalRecord", "ts metric sel value")


def scan_wal(data, allow_torn=False):
    """Strict WAL reader: every byte after the file magic must belong to a
    valid record; with allow_torn an incomplete last record is tolerated.
    Returns [WalRecord]."""
    if not data:
        return []
    if len(data) < 4 or struct.unpack_from("<I", data)[0] != WAL_FILE_MAGIC:
        raise FormatError("bad WAL file magic %r" % data[:4])
    pos, out = 4, []
    while pos < len(data):
        if len(data) - pos < 8:
            if allow_torn:
                break
            raise FormatError("torn record header at %d" % pos)
        magic, plen = struct.unpack_from("<II", data, pos)
        if magic != WAL_RECORD_MAGIC:
            raise FormatError("bad record magic 0x%08x at %d" % (magic, pos))
        if plen > WAL_MAX_PAYLOAD or plen < 15:
            raise FormatError("bad payload length %d at %d" % (plen, pos))
        if pos + 12 + plen > len(data):
            if allow_torn:
                break
            raise FormatError("torn record at %d" % pos)
        payload = data[pos + 8:pos + 8 + plen]
        crc = struct.unpack_from("<I", data, pos + 8 + plen)[0]
        if crc != zlib.crc32(payload):
            raise FormatError("CRC mismatch at %d" % pos)
        ts, nlen = struct.unpack_from("<qH", payload)
        p = 10
        name = payload[p:p + nlen].decode()
        p += nlen
        count = payload[p]
        p += 1
        sel = []
        for _ in range(count):
            clen = payload[p]
            sel.append(payload[p + 1:p + 1 + clen].decode())
            p += 1 + clen
        if p + 4 != plen:
            raise FormatError("payload length %d, fields end at %d (record at %d)"
                              % (plen, p + 4, pos))
        value = bits_f32(struct.unpack_from("<I", payload, p)[0])
        out.append(WalRecord(ts, name, tuple(sel), value))
        pos += 12 + plen
    return out


class _Reader:
    def __init__(self, data):
        self.data, self.pos = data, 0

    def take(self, fmt):
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.data):
            raise FormatError("short read at %d" % self.pos)
        v = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += size
        return v

    def str16(self):
        (n,) = self.take("<H")
        if n == 0 or self.pos + n > len(self.data):
            raise FormatError("bad name length %d at %d" % (n, self.pos))
        s = self.data[self.pos:self.pos + n].decode()
        self.pos += n
        return s


def _read_level(r, depth):
    if depth > 8:
        raise FormatError("too deep")
    metrics, children = {}, {}
    (nm,) = r.take("<I")
    for _ in range(nm):
        name = r.str16()
        freq, start, n = r.take("<qqI")
        if freq <= 0 or name in metrics:
            raise FormatError("metric %r: frequency %d / duplicate" % (name, freq))
        metrics[name] = (freq, start, [bits_f32(b) for b in r.take("<%dI" % n)])
    (nc,) = r.take("<I")
    for _ in range(nc):
        name = r.str16()
        if name in children:
            raise FormatError("duplicate child %r" % name)
        children[name] = _read_level(r, depth + 1)
    return {"metrics": metrics, "children": children}


def decode_bin(data):
    """Strict .bin reader (§5.1) -> (from, to, level); level = {"metrics":
    {name: (frequency, start, [values])}, "children": {name: level}}."""
    r = _Reader(data)
    (magic,) = r.take("<I")
    if magic != BIN_MAGIC:
        raise FormatError("bad snapshot magic 0x%08x" % magic)
    frm, to = r.take("<qq")
    level = _read_level(r, 0)
    if r.pos != len(data):
        raise FormatError("%d trailing bytes" % (len(data) - r.pos))
    return frm, to, level


def _put_str16(out, s):
    s = s.encode()
    out.append(struct.pack("<H", len(s)) + s)


def _encode_level(level, out):
    out.append(struct.pack("<I", len(level.get("metrics", {}))))
    for name, (freq, start, values) in level.get("metrics", {}).items():
        _put_str16(out, name)
        out.append(struct.pack("<qqI", freq, start, len(values)))
        out.append(b"".join(struct.pack("<I", 0x7FC00000 if v is None else f32bits(v))
                            for v in values))
    out.append(struct.pack("<I", len(level.get("children", {}))))
    for name, child in level.get("children", {}).items():
        _put_str16(out, name)
        _encode_level(child, out)


def encode_bin(frm, to, level):
    """A .bin in the order the dicts give (upstream's order is random)."""
    out = [struct.pack("<Iqq", BIN_MAGIC, frm, to)]
    _encode_level(level, out)
    return b"".join(out)


def _json_level(level, frm, to):
    parts = []
    for name in sorted(level.get("metrics", {})):
        freq, start, values = level["metrics"][name]
        data = ",".join("null" if v is None else "%.1f" % f32(v) for v in values)
        parts.append('"%s":{"frequency":%d,"start":%d,"data":[%s]}' % (name, freq, start, data))
    kids = ['"%s":%s' % (name, _json_level(level["children"][name], frm, to))
            for name in sorted(level.get("children", {}))]
    return '{"metrics":{%s},"children":{%s},"from":%d,"to":%d}' % (
        ",".join(parts), ",".join(kids), frm, to)


def encode_json_upstream(frm, to, level):
    """A JSON checkpoint as upstream writes it (§3): one decimal digit."""
    return (_json_level(level, frm, to) + "\n").encode()


def level_points(level, path=()):
    """{(path, metric): {ts: value}} of the non-NaN values of a decoded level."""
    out = collections.defaultdict(dict)
    for name, (freq, start, values) in level["metrics"].items():
        for i, v in enumerate(values):
            if v is not None and v == v:
                out[(path, name)][start + i * freq] = v
    for name, child in level["children"].items():
        for key, pts in level_points(child, path + (name,)).items():
            out[key].update(pts)
    return out


def json_level(obj, depth=0):
    """A parsed JSON checkpoint level -> the decoded-level form above, checking
    upstream's key order on the way."""
    if list(obj) != ["metrics", "children", "from", "to"]:
        raise FormatError("level keys %r" % list(obj))
    metrics = {}
    for name, m in obj["metrics"].items():
        if list(m) != ["frequency", "start", "data"]:
            raise FormatError("metric keys %r" % list(m))
        metrics[name] = (m["frequency"], m["start"],
                         [None if v is None else f32(v) for v in m["data"]])
    return {"metrics": metrics,
            "children": {k: json_level(v, depth + 1) for k, v in obj["children"].items()}}


def go_restore_problems(host_dir):
    """What the Go store's restore (spec §6 step 3) would refuse in a host
    directory: a .json/.bin whose name is not an integer, or, loading the
    files in ascending name order, a series whose start is earlier than the
    start of the newest buffer already loaded for that metric ("the host
    fails -> startup aborts")."""
    problems, files = [], []
    for name in sorted(os.listdir(host_dir)):
        if not (name.endswith(".bin") or name.endswith(".json")):
            continue
        stem = name.rsplit(".", 1)[0]
        if not stem.lstrip("-").isdigit():
            problems.append("%s: name is not a timestamp" % name)
            continue
        files.append((int(stem), name))
    newest = {}
    for _, name in sorted(files):
        with open(os.path.join(host_dir, name), "rb") as fh:
            data = fh.read()
        level = decode_bin(data)[2] if name.endswith(".bin") else json_level(json.loads(
            data, object_pairs_hook=collections.OrderedDict))
        stack = [((), level)]
        while stack:
            path, lv = stack.pop()
            for metric, (_, start, _) in lv["metrics"].items():
                key = (path, metric)
                if key in newest and start < newest[key][0]:
                    problems.append("%s: %s %s starts at %d, before %d loaded from %s"
                                    % (name, "/".join(path) or "host", metric, start,
                                       newest[key][0], newest[key][1]))
                newest[key] = (start, name)
            stack.extend((path + (c,), child) for c, child in lv["children"].items())
    return problems


# ---- samples and what a test expects back ---------------------------------------

def level_path(typ, tid):
    return () if typ is None else (typ + tid,)


class Samples:
    """Samples written (or put on disk) by a test, and the line protocol for
    them. Key: (cluster, host, metric, type, type-id); type None = host level."""

    def __init__(self):
        self.series = collections.defaultdict(dict)

    def add(self, cluster, host, metric, ts, value, typ=None, tid=None):
        self.series[(cluster, host, metric, typ, tid)][ts] = f32(value)
        tags = "%s,cluster=%s,hostname=%s" % (metric, cluster, host)
        if typ is not None:
            tags += ",type=%s,type-id=%s" % (typ, tid)
        return "%s value=%r %d\n" % (tags, value, ts)

    def update(self, other):
        for k, pts in other.series.items():
            self.series[k].update(pts)

    def count(self):
        return sum(len(p) for p in self.series.values())

    def by_host_dir(self):
        """{(cluster, host): {(path, metric): {ts: value}}} as files hold them."""
        out = collections.defaultdict(lambda: collections.defaultdict(dict))
        for (cluster, host, metric, typ, tid), pts in self.series.items():
            out[(cluster, host)][(level_path(typ, tid), metric)].update(pts)
        return out


def query_for(host, metric, typ, tid):
    q = {"metric": metric, "host": host}
    if typ is not None:
        q["type"] = typ
        q["type-ids"] = [tid]
    return q


def read_series(srv, cluster, keys, frm, to):
    """{key: {ts: value}} of the non-null points of each (host, metric, type,
    type-id) key, read in one query with the native frequency."""
    req = {"cluster": cluster, "from": frm, "to": to, "with-padding": False,
           "with-stats": False, "queries": [query_for(*k) for k in keys]}
    r = srv.query(req)
    if r.status != 200:
        raise AssertionError("query -> %d %r" % (r.status, r.body[:400]))
    out = {}
    for key, row in zip(keys, json.loads(r.body)["results"]):
        pts = {}
        for entry in row:
            if "error" in entry:
                continue
            for i, v in enumerate(entry["data"]):
                if v is not None:
                    pts[entry["from"] + i * entry["resolution"]] = v
        out[key] = pts
    return out


def diff_points(want, got, limit=6):
    """A short description of how two {ts: value} maps differ ("" if equal)."""
    missing = sorted(t for t in want if t not in got)
    wrong = sorted(t for t in want if t in got and got[t] != want[t])
    extra = sorted(t for t in got if t not in want)
    parts = []
    if missing:
        parts.append("%d missing (first %s)" % (len(missing), missing[:limit]))
    if wrong:
        parts.append("%d wrong (%s)" % (len(wrong), ["%d: want %r got %r" % (t, want[t], got[t])
                                                      for t in wrong[:limit]]))
    if extra:
        parts.append("%d unexpected (%s)" % (len(extra), ["%d: %r" % (t, got[t])
                                                           for t in extra[:limit]]))
    return "; ".join(parts)


# ---- the server, restartable on the same directory ------------------------------

class PServer(Server):
    """A Server that can be killed and restarted on its checkpoint directory;
    the stderr of earlier runs is kept for failure messages."""

    def __init__(self, *args, **kw):
        checkpoints = kw.pop("checkpoints", None)
        super().__init__(*args, **kw)
        self.history = []
        if checkpoints:
            crash_loop.set_checkpoints(self, checkpoints)

    def start(self, wait=True):
        if self._err is not None:
            for fh in (self._out, self._err):
                fh.close()
            self.history.append(self.stderr())
            self._out = self._err = None
        self.stopped = False
        return super().start(wait)

    def crash(self):
        """SIGKILL: no shutdown code runs."""
        if not self.running():
            raise AssertionError("server is not running\n" + self.logs())
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.stopped = True

    def restart(self, kill=False):
        if kill:
            self.crash()
        else:
            self.stop()
        self.start()

    def logs(self):
        return "\n".join("--- earlier run ---\n" + h[-3000:] for h in self.history) + \
            "\n--- last run ---\n" + self.stderr()[-4000:]

    def host_dir(self, cluster, host):
        return os.path.join(self.ckpt_dir, cluster, host)

    def files(self):
        """Paths (relative to the checkpoint directory) of every file."""
        out = []
        for d, _, names in os.walk(self.ckpt_dir):
            out.extend(os.path.relpath(os.path.join(d, n), self.ckpt_dir) for n in names)
        return sorted(out)


class PersistenceCase(CCMSTestCase):
    # Most cases here check the Go store's files byte by byte: they run with
    # checkpoints.write-go-formats. The *NativeTest subclasses run the same
    # checks on the native formats (the default).
    GO_FORMATS = True

    @property
    def SNAPSHOT_EXT(self):
        return ".bin" if self.GO_FORMATS else ".ccms"

    def server(self, metrics=None, start=True, **kw):
        if self.GO_FORMATS:
            kw["checkpoints"] = dict(kw.get("checkpoints") or {}, **{"write-go-formats": True})
        srv = PServer(metrics=metrics or METRICS, **kw)
        self.addCleanup(srv.close)
        if start:
            srv.start()
        return srv

    def post(self, srv, body, msg=None):
        if isinstance(body, str):
            body = body.encode()
        r = srv.write(body)
        if r.status != 200:
            self.fail("%swrite -> %d %r\n%s" % (msg + ": " if msg else "", r.status,
                                                r.body[:400], srv.logs()))
        return r

    def assertHas(self, srv, samples, msg=""):
        """Every sample is read back with its value, and nothing else is in
        those series."""
        by_cluster = collections.defaultdict(list)
        for key in samples.series:
            by_cluster[key[0]].append(key)
        problems = []
        for cluster, keys in by_cluster.items():
            lo = min(min(samples.series[k]) for k in keys)
            hi = max(max(samples.series[k]) for k in keys)
            got = read_series(srv, cluster, [k[1:] for k in keys], lo - 3600, hi + 3600)
            for key in keys:
                # the answer has three decimals (%.3f of the float32)
                want = {t: float("%.3f" % v) for t, v in samples.series[key].items()}
                d = diff_points(want, got[key[1:]])
                if d:
                    problems.append("%s: %s" % (key, d))
        if problems:
            self.fail("%s%d of %d series differ:\n  %s\nfiles: %s\n%s"
                      % (msg + ": " if msg else "", len(problems), len(samples.series),
                         "\n  ".join(problems[:12]), srv.files(), srv.logs()))

    def assertGoFormats(self, srv, allow_torn=False, expect=None, ignore=()):
        """Every .bin, .json and current.wal under the checkpoint directory,
        and every native log segment, decodes with the codecs above. With
        expect (a Samples), the union of their points must hold every
        expected sample. Returns the points per (cluster, host)."""
        pieces = collections.defaultdict(list)    # (cluster, host) -> [(order, points)]
        for rel in srv.files():
            parts = rel.split(os.sep)
            name = parts[-1]
            if len(parts) != 3 or name in ignore or ".unreadable-" in name:
                continue
            with open(os.path.join(srv.ckpt_dir, rel), "rb") as fh:
                data = fh.read()
            try:
                if name.endswith(".bin"):
                    frm, to, level = decode_bin(data)
                    order = (0, to, frm)
                elif name.endswith(".json"):
                    self.assertTrue(data.endswith(b"}\n"), rel)
                    obj = json.loads(data, object_pairs_hook=collections.OrderedDict)
                    frm, to, level = obj["from"], obj["to"], json_level(obj)
                    order = (0, to, frm)
                elif name.endswith(".ccms"):
                    frm, to, native_points = decode_ccms(data)
                    level = None
                    points = native_points
                    order = (0, to, frm)
                elif SEG_NAME.match(name):
                    continue    # native log segments: read below
                elif name == "current.wal" or name.startswith("current.wal."):
                    level = None
                    points = collections.defaultdict(dict)
                    for rec in scan_wal(data, allow_torn):
                        points[(rec.sel, rec.metric)][rec.ts] = rec.value
                    suffix = name[len("current.wal."):]
                    order = (1, 0, int(suffix)) if suffix else (2, 0, 0)
                else:
                    continue
            except FormatError as e:
                self.fail("%s is not in the Go format: %s\nfiles: %s" % (rel, e, srv.files()))
            if level is not None:
                self.assertLessEqual(frm, to, rel)
                points = level_points(level)
            pieces[(parts[0], parts[1])].append((order, points))
        for rel in srv.files():
            m = SEG_NAME.match(rel)
            if not m:
                continue
            with open(os.path.join(srv.ckpt_dir, rel), "rb") as fh:
                try:
                    seq, records = scan_seglog(fh.read(), allow_torn)
                except FormatError as e:
                    self.fail("%s is not a native log segment: %s" % (rel, e))
            for cluster, host, samples in records:
                points = collections.defaultdict(dict)
                for sel, metric, ts, value in samples:
                    points[(sel, metric)][ts] = value
                pieces[(cluster, host)].append(((3, seq, 0), points))
        # applied as the loader does (docs/file-formats.md: by `to`, WAL files after them)
        found = collections.defaultdict(lambda: collections.defaultdict(dict))
        for hostkey, items in pieces.items():
            for _, points in sorted(items, key=lambda item: item[0]):
                for key, pts in points.items():
                    found[hostkey][key].update(pts)
        if expect is not None:
            problems = []
            for hostkey, series in expect.by_host_dir().items():
                for key, want in series.items():
                    have = found[hostkey][key]
                    d = diff_points(want, {t: v for t, v in have.items() if t in want})
                    if d:
                        problems.append("%s %s: %s" % (hostkey, key, d))
            if problems:
                self.fail("files do not hold every sample:\n  %s\nfiles: %s"
                          % ("\n  ".join(problems[:12]), srv.files()))
        return found

    def wait_for(self, srv, cond, what):
        """Polls cond() (a look at the files) until true; fails after POLL_LIMIT."""
        deadline = time.monotonic() + POLL_LIMIT
        while not cond():
            if time.monotonic() > deadline:
                self.fail("%s did not happen within %.0f s\nfiles: %s\n%s"
                          % (what, POLL_LIMIT, srv.files(), srv.logs()))
            time.sleep(POLL)

    def workload(self, hosts=("h0", "h1", "h2"), cluster="c", base=T, n=30, offset=0):
        """Lines for several hosts at host, hwthread and socket level:
        -> (Samples, [request bodies]) with one request per step."""
        s = Samples()
        bodies = []
        for i in range(n):
            out = []
            for hi, host in enumerate(hosts):
                v = offset + i * 8 + hi + 0.25
                out.append(s.add(cluster, host, "m", base + 10 * i, v))
                for k in range(2):
                    out.append(s.add(cluster, host, "u", base + 10 * i, v + k + 0.5,
                                     "hwthread", str(k)))
                if i % 6 == 0:
                    out.append(s.add(cluster, host, "b", base + 60 * (i // 6), v * 2,
                                     "socket", "0"))
            bodies.append("".join(out))
        return s, bodies


# ---- the codecs above, against the spec and the fixtures --------------------------

class CodecSelfTest(CCMSTestCase):
    """The test's own readers and writers agree with docs/file-formats.md's
    worked examples and the fixture files (so they can judge the server)."""

    def fixture(self, *path):
        path = os.path.join(TESTDATA, "derived", "checkpoints", "testcluster", *path)
        with open(path, "rb") as fh:
            return fh.read()

    def test_wal_record_worked_example(self):
        want = bytes.fromhex("a1a71dcc21000000" "8809de6600000000" "0800" "6370755f6c6f6164"
                             "01" "09" "687774687265616430" "00000c42" "337d4a69")
        self.assertEqual(wal_record(1725827464, "cpu_load", ["hwthread0"], 35.0), want)
        self.assertEqual(scan_wal(wal_file([want])),
                         [WalRecord(1725827464, "cpu_load", ("hwthread0",), 35.0)])

    def test_fixture_wal(self):
        data = self.fixture("node002", "current.wal")
        self.assertRaises(FormatError, scan_wal, data)        # torn tail
        self.assertEqual(scan_wal(data, allow_torn=True), [
            WalRecord(1700000210, "cpu_load", (), 4.0),
            WalRecord(1700000210, "mem_bw", ("socket0",), 250.0),
            WalRecord(1700000270, "cpu_user", ("hwthread1",), 6.5)])
        self.assertEqual(data[:125], wal_file([
            wal_record(1700000210, "cpu_load", [], 4.0),
            wal_record(1700000210, "mem_bw", ["socket0"], 250.0),
            wal_record(1700000270, "cpu_user", ["hwthread1"], 6.5)]))
        bad = bytearray(data[:125])
        bad[50] ^= 1
        self.assertRaises(FormatError, scan_wal, bytes(bad))

    def test_fixture_bin(self):
        data = self.fixture("node002", "1700000000.bin")
        frm, to, level = decode_bin(data)
        self.assertEqual((frm, to), (1700000000, 1700043200))
        self.assertEqual(level["metrics"], {"cpu_load": (60, 1700000030, [1.0, 2.0, 3.0])})
        self.assertEqual(level["children"]["hwthread1"]["metrics"],
                         {"cpu_user": (60, 1700000030, [5.5])})
        f, st, vals = level["children"]["socket0"]["metrics"]["mem_bw"]
        self.assertEqual((f, st, vals[0], vals[2]), (60, 1700000030, 100.0, 200.0))
        self.assertNotEqual(vals[1], vals[1])
        # sorted dicts give the fixture's bytes exactly
        self.assertEqual(encode_bin(frm, to, {"metrics": level["metrics"], "children": {
            "hwthread1": level["children"]["hwthread1"],
            "socket0": {"metrics": {"mem_bw": (60, 1700000030, [100.0, None, 200.0])},
                        "children": {}}}}), data)
        self.assertRaises(FormatError, decode_bin, data[:-1])
        self.assertRaises(FormatError, decode_bin, data + b"\0")

    def test_fixture_json(self):
        data = self.fixture("node001", "1700000000.json")
        obj = json.loads(data, object_pairs_hook=collections.OrderedDict)
        level = json_level(obj)
        self.assertEqual(encode_json_upstream(1700000000, 1700043200, {
            "metrics": {"cpu_load": (60, 1700000030, [0.5, 0.7, 0.9]),
                        "mem_used": (60, 1700000030, [45.25, None, 47.0])},
            "children": {"hwthread0": {"metrics": {"cpu_user": (60, 1700000030,
                                                                [12.0, None, 13.5])}}}}), data)
        self.assertEqual(level["metrics"]["cpu_load"],
                         (60, 1700000030, [f32(0.5), f32(0.7), f32(0.9)]))
        for v, text in ((35, "35.0"), (1.25, "1.2"), (0.35, "0.3"), (0.05, "0.1"),
                        (1234.5678, "1234.6"), (-0.04, "-0.0")):
            self.assertEqual("%.1f" % f32(v), text)


# ---- clean restart -------------------------------------------------------------

class CleanRestartTest(PersistenceCase):
    """write, SIGTERM, restart: the same answers, byte for byte."""

    QUERIES = [
        {"metric": "m", "host": "h0"},
        {"metric": "m", "host": "h1"},
        {"metric": "u", "host": "h0", "type": "hwthread", "type-ids": ["0", "1"]},
        {"metric": "u", "host": "h2", "type": "hwthread", "type-ids": ["1"]},
        {"metric": "b", "host": "h1", "type": "socket", "type-ids": ["0"]},
        {"metric": "u", "host": "h1", "type": "hwthread", "type-ids": ["0", "1"],
         "aggreg": False},
        {"metric": "m", "host": "h2", "resolution": 60},
    ]

    def answers(self, srv):
        out = []
        for frm, to, pad in ((T, T + 400, False), (T - 600, T + 1000, True),
                             (T + 95, T + 205, False)):
            for q in self.QUERIES:
                r = srv.query({"cluster": "c", "from": frm, "to": to, "with-padding": pad,
                               "queries": [q]})
                self.assertStatus(r, 200)
                out.append(r.body)
        r = srv.query({"cluster": "c", "from": T, "to": T + 400, "for-all-nodes": ["m", "u"]})
        self.assertStatus(r, 200)
        out.append(r.body)
        return out

    def dump(self, srv):
        r = srv.debug("c")
        self.assertStatus(r, 200)
        return parse_debug(r.body)["data"]

    def strip_saved(self, tree, saved):
        """Copy of a debug tree without "saved"; collects the flags in saved."""
        if isinstance(tree, list):
            out = []
            for b in tree:
                saved.append(b.get("saved", False))
                out.append({k: v for k, v in b.items() if k != "saved"})
            return out
        return {k: self.strip_saved(v, saved) for k, v in tree.items()}

    def check_format(self, fmt):
        srv = self.server(checkpoints={"file-format": fmt})
        samples, bodies = self.workload()
        # a gap inside the series: the slot stays empty, before and after
        bodies.append(samples.add("c", "h0", "m", T + 10 * 40, 17.5))
        for body in bodies:
            self.post(srv, body)
        before = self.answers(srv)
        tree_before = self.dump(srv)
        self.assertHas(srv, samples)
        srv.stop()
        ext = self.SNAPSHOT_EXT if fmt == "wal" else ".json"
        files = srv.files()
        for host in ("h0", "h1", "h2"):
            self.assertTrue(any(f.startswith("c/%s/" % host) and f.endswith(ext) for f in files),
                            "no %s snapshot for %s: %s" % (ext, host, files))
        self.assertFalse([f for f in files if "current.wal" in f or SEG_NAME.match(f)], files)
        self.assertGoFormats(srv, expect=samples)
        srv.start()
        after = self.answers(srv)
        for i, (a, b) in enumerate(zip(before, after)):
            self.assertEqual(a, b, "answer %d changed across the restart" % i)
        flags_before, flags_after = [], []
        self.assertEqual(self.strip_saved(tree_before, flags_before),
                         self.strip_saved(self.dump(srv), flags_after),
                         "buffer starts/lens changed across the restart")
        self.assertFalse(any(flags_before), "live buffers marked saved")
        self.assertTrue(flags_after and all(flags_after),
                        "restored buffers not marked saved: %s" % self.dump(srv))
        # and a second round trip changes nothing (restored data is not re-saved wrongly)
        srv.restart()
        self.assertEqual(after, self.answers(srv))

    def test_wal_format(self):
        self.check_format("wal")

    def test_json_format(self):
        self.check_format("json")

    def roundtrip(self, body, frm, to, fmt="wal"):
        """Writes body, SIGTERM, restart: the answer for m on h must not change."""
        srv = self.server(checkpoints={"file-format": fmt})
        self.post(srv, body)
        req = {"cluster": "c", "from": frm, "to": to, "with-padding": False,
               "queries": [{"metric": "m", "host": "h"}]}
        before = srv.query(req)
        srv.restart()
        after = srv.query(req)
        self.assertStatus(after, 200)
        vals = [sorted(v for v in json.loads(r.body)["results"][0][0]["data"] if v is not None)
                for r in (before, after)]
        self.assertEqual(vals[0], vals[1], "samples lost across the restart (%s)\nbefore %r\n"
                         "after  %r\nfiles: %s" % (fmt, before.body[:600], after.body[:600],
                                                   srv.files()))
        self.assertEqual(before.body, after.body, "answer changed across the restart (%s)" % fmt)

    def test_new_head_buffer_started_mid_slot(self):
        """A full buffer's last slot and the next head buffer, which starts
        at ts - f/2 (mid-slot), are both kept: buffer 1 starts at T-2 (first
        sample T+3) and ends at T+5118; T+5113 is its last slot; T+5119 does
        not fit and starts the next buffer at T+5114."""
        body = "".join("m,cluster=c,hostname=h value=%d %d\n" % (v, ts)
                       for v, ts in ((1, T + 3), (2, T + 5113), (3, T + 5119)))
        for fmt in ("wal", "json"):
            with self.subTest(fmt=fmt):
                self.roundtrip(body, T + 5090, T + 5140, fmt)

    def test_jittered_timestamps(self):
        """Real collectors' timestamps jitter by a few seconds; every sample
        survives a clean restart and the answer stays the same."""
        rng = random.Random(3)
        body = "".join("m,cluster=c,hostname=h value=%d %d\n"
                       % (i + 1, T + 10 * i + rng.randint(-3, 3)) for i in range(1200))
        self.roundtrip(body, T - 100, T + 12100)

    def test_phase_change_after_a_gap(self):
        """After a gap longer than a buffer the new head buffer has its own
        phase (T+6007 vs. T+3); the restart keeps each sample's time."""
        body = "".join("m,cluster=c,hostname=h value=%d %d\n" % (v, ts)
                       for v, ts in ((1, T + 3), (2, T + 13), (3, T + 6007), (4, T + 6017)))
        self.roundtrip(body, T + 5990, T + 6030)


# ---- SIGKILL right after the acknowledgement --------------------------------------

class CompressedDataTest(PersistenceCase):
    """Data held in sealed (encoded) parts goes to snapshots and comes back
    bit for bit, through every case of the block codec: walks with 0..6
    decimals, float noise, a walk in full float precision, constants, sparse series, -0, subnormals and
    +-FLT_MAX (docs/data-model.md "How a buffer is held in memory")."""

    N = 700         # a full 512-slot buffer and most of a second: sealed parts

    def write_profiles(self, srv, samples, base, n, offset=0):
        profiles = codec_profiles(n, seed=11 + offset)
        names = sorted(profiles)
        for first in range(0, n, 100):     # a hundred timesteps per request
            body = ""
            for cpu, name in enumerate(names):
                for i in range(first, min(n, first + 100)):
                    v = profiles[name][i]
                    if v is not None:
                        body += samples.add("c", "h", "u", base + 10 * (i + offset), v,
                                            "hwthread", str(cpu))
            self.post(srv, body)

    def sealed_parts(self, srv):
        r = srv.raw("GET", "/api/status")
        self.assertStatus(r, 200)
        return json.loads(r.body)["store"]["sealed_blocks"]

    def test_sealed_data_through_snapshots_and_restarts(self):
        srv = self.server()
        want = Samples()
        self.write_profiles(srv, want, T, self.N)
        sealed = self.sealed_parts(srv)
        for kind in ("raw", "const", "decimal", "bits"):
            self.assertGreater(sealed[kind], 0, (kind, sealed))
        # SIGTERM: a snapshot of the sealed data, then restored (restored
        # buffers are sealed whole)
        srv.restart()
        self.assertGoFormats(srv, expect=want)
        self.assertHas(srv, want)
        # late samples and overwrites into restored sealed parts, and new
        # samples after them; then a crash: the log brings them back
        late = Samples()
        body = ""
        for cpu in range(3):
            for i in (3, 200, 511):
                body += late.add("c", "h", "u", T + 10 * i, 1000.25 + i + cpu, "hwthread",
                                 str(cpu))
        self.post(srv, body)
        want.update(late)
        self.write_profiles(srv, want, T, 300, offset=self.N)
        srv.restart(kill=True)
        self.assertHas(srv, want)
        srv.restart()
        self.assertGoFormats(srv, expect=want)
        # the newest file of each series holds exactly what was written
        got = self.assertGoFormats(srv)[("c", "h")]
        for (cluster, host, metric, typ, tid), pts in want.series.items():
            series = {}
            for (path, m), vals in got.items():
                if m == metric and path == level_path(typ, tid):
                    series.update(vals)
            self.assertEqual(len(series), len(pts), tid)
            for ts, v in pts.items():
                self.assertEqual(f32bits(series[ts]), f32bits(v), (tid, ts, v, series[ts]))


class KillAfterAckTest(PersistenceCase):
    """write, get the 200, SIGKILL at once, restart: nothing acknowledged is
    lost, whatever the fsync policy."""

    def requests(self):
        """Two streams of requests (one per writer thread, disjoint hosts),
        each keeping its series in time order where order matters."""
        rng = random.Random(7)
        samples = Samples()
        streams = []
        for hosts, clusters in ((("h0", "h1"), ("c",)), (("h2", "h3"), ("c", "d"))):
            reqs = []
            # recent data, interleaving hosts and levels inside each request
            for r in range(25):
                per_series = []
                for cluster in clusters:
                    for host in hosts:
                        base = T + (3600 if cluster == "d" else 0)
                        per_series.append([samples.add(cluster, host, "m", base + 20 * r, r + 0.5)])
                        per_series.append([samples.add(cluster, host, "u", base + 20 * r,
                                                       r * 4 + k + 0.25, "hwthread", str(k))
                                           for k in range(4)])
                        per_series.append([samples.add(cluster, host, "b", base + 120 * r,
                                                       r * 2 + s + 0.75, "socket", str(s))
                                           for s in range(2)])
                lines = [ln for series in per_series for ln in series]
                rng.shuffle(lines)   # each line is a different (level, metric): order is free
                reqs.append("".join(lines))
            # a jump far ahead (a new head buffer), then late samples behind the head:
            # odd slots of the first buffer and a stretch inside the gap
            for cluster in clusters:
                for host in hosts:
                    base = T + (3600 if cluster == "d" else 0)
                    reqs.append(samples.add(cluster, host, "m", base + 10 * 6000, 99.5))
                    for r in range(0, 25, 5):
                        reqs.append("".join(samples.add(cluster, host, "m", base + 20 * i + 10,
                                                        1000 + i + 0.125)
                                            for i in range(r, r + 5)))
                    reqs.append("".join(samples.add(cluster, host, "m", base + 10 * (3000 + i),
                                                    2000 + i + 0.5) for i in range(40)))
                    reqs.append("".join(samples.add(cluster, host, "u", base + 20 * i + 10,
                                                    3000 + i + 0.5, "hwthread", "2")
                                        for i in range(25)))
            streams.append(reqs)
        return samples, streams

    def check_policy(self, policy):
        srv = self.server(checkpoints={"fsync": policy})
        samples, streams = self.requests()
        failures = []

        def writer(reqs):
            for body in reqs:
                r = srv.write(body.encode())
                if r.status != 200:
                    failures.append((r.status, r.body[:300], body[:200]))
                    return

        threads = [threading.Thread(target=writer, args=(s,)) for s in streams]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        srv.crash()
        self.assertEqual(failures, [], srv.logs())
        # the WAL on disk is the Go format and holds every acknowledged sample
        self.assertGoFormats(srv, expect=samples)
        srv.start()
        self.assertHas(srv, samples, msg="fsync %s" % policy)

    def test_fsync_none(self):
        self.check_policy("none")

    def test_fsync_interval(self):
        self.check_policy("interval")

    def test_fsync_always(self):
        self.check_policy("always")


# ---- WAL damage ------------------------------------------------------------------

class TornTailTest(PersistenceCase):
    """A WAL ending in a torn record or garbage: everything before it is
    restored, and the tail is cut off before new records are appended."""

    TAILS = {
        "partial header": lambda rec: rec[:6],
        "partial payload": lambda rec: rec[:10],
        "missing crc": lambda rec: rec[:-2],
        "garbage": lambda rec: bytes(range(0x30, 0x30 + 37)),
    }

    def check_tail(self, name, make_tail):
        srv = self.server()
        a, bodies = self.workload(hosts=("h0", "h1"), n=12)
        for body in bodies:
            self.post(srv, body)
        srv.crash()
        wal = os.path.join(srv.host_dir("c", "h0"), "current.wal")
        with open(wal, "rb") as fh:
            good = fh.read()
        self.assertTrue(scan_wal(good), "no records in %s" % wal)
        with open(wal, "ab") as fh:
            fh.write(make_tail(wal_record(T + 5000, "m", [], 1.5)))
        srv.start()
        self.assertHas(srv, a, msg=name + ", first restart")
        b, bodies = self.workload(hosts=("h0", "h1"), n=12, base=T + 1200, offset=500)
        for body in bodies:
            self.post(srv, body)
        srv.crash()
        with open(wal, "rb") as fh:
            data = fh.read()
        try:
            records = scan_wal(data)
        except FormatError as e:
            self.fail("%s: after the restart new records were appended behind the damaged "
                      "tail (%s); the file has %d bytes, %d valid before the damage"
                      % (name, e, len(data), len(good)))
        self.assertEqual(data[:len(good)], good)
        self.assertTrue(any(r.ts >= T + 1200 for r in records))
        srv.start()
        both = Samples()
        both.update(a)
        both.update(b)
        self.assertHas(srv, both, msg=name + ", second restart")

    def test_torn_tails(self):
        for name, make_tail in self.TAILS.items():
            with self.subTest(tail=name):
                self.check_tail(name, make_tail)


class CorruptRecordTest(PersistenceCase):
    """A damaged record in the middle of a WAL built here byte for byte:
    the records before and after it are restored (docs/file-formats.md: resync)."""

    K = 4   # the damaged record

    def build(self):
        samples = Samples()
        records = []
        for i in range(10):
            samples.add("c", "h", "m", T + 10 * i, i + 0.5)
            records.append(wal_record(T + 10 * i, "m", [], i + 0.5))
            samples.add("c", "h", "u", T + 10 * i, i + 100.25, "hwthread", "1")
            records.append(wal_record(T + 10 * i, "u", ["hwthread1"], i + 100.25))
        return samples, records

    def damage_variants(self, rec):
        """name -> damaged bytes of one record (same length unless stated)."""
        n = len(rec)

        def flip(i):
            return rec[:i] + bytes([rec[i] ^ 0x40]) + rec[i + 1:]

        return {
            "value byte": flip(n - 6),
            "name byte": flip(18),
            "crc byte": flip(n - 1),
            "record magic": flip(1),
            "timestamp byte": flip(9),
            "length too large": rec[:4] + struct.pack("<I", WAL_MAX_PAYLOAD + 1) + rec[8:],
            "length too small": rec[:4] + struct.pack("<I", 5) + rec[8:],
            "record cut short": rec[:n - 7],
        }

    def test_corrupt_record_in_the_middle(self):
        samples, records = self.build()
        k = 2 * self.K   # the "m" record of step K
        for name, bad in self.damage_variants(records[k]).items():
            with self.subTest(damage=name):
                srv = self.server(start=False)
                os.makedirs(srv.host_dir("c", "h"))
                with open(os.path.join(srv.host_dir("c", "h"), "current.wal"), "wb") as fh:
                    fh.write(wal_file(records[:k] + [bad] + records[k + 1:]))
                srv.start()
                want = Samples()
                want.update(samples)
                del want.series[("c", "h", "m", None, None)][T + 10 * self.K]
                self.assertHas(srv, want, msg=name)
                if name == "value byte":
                    # the replayed data is saved by the next snapshot
                    srv.restart()
                    self.assertHas(srv, want, msg=name + ", after SIGTERM")
                    self.assertFalse([f for f in srv.files() if "current.wal" in f])


class WalFilesTest(PersistenceCase):
    """WAL files a crash can leave behind, built here byte for byte."""

    def test_rotated_wal_from_an_unfinished_snapshot(self):
        """A crash between rotating the WAL and the snapshot becoming durable
        leaves current.wal.<n> next to the new current.wal: both are replayed
        after the snapshot files, in the order they were written, and are
        deleted once a snapshot holds their data."""
        srv = self.server(start=False)
        d = srv.host_dir("c", "h")
        os.makedirs(d)
        files = {
            "%d.bin" % (T - 10): encode_bin(T - 10, T + 25, {"metrics": {
                "m": (10, T, [1.5, 2.5, 3.5])}, "children": {}}),
            "current.wal.1732500000123456789": wal_file([
                wal_record(T + 10, "m", [], 5.5),                 # overwrites 2.5
                wal_record(T + 30, "m", [], 6.5),
                wal_record(T + 30, "u", ["hwthread0"], 0.25)]),
            "current.wal": wal_file([
                wal_record(T + 30, "m", [], 7.5),                 # overwrites 6.5
                wal_record(T + 40, "m", [], 8.5)]),
        }
        for name, data in files.items():
            with open(os.path.join(d, name), "wb") as fh:
                fh.write(data)
        want = Samples()
        for ts, v in ((T, 1.5), (T + 10, 5.5), (T + 20, 3.5), (T + 30, 7.5), (T + 40, 8.5)):
            want.add("c", "h", "m", ts, v)
        want.add("c", "h", "u", T + 30, 0.25, "hwthread", "0")
        srv.start()
        self.assertHas(srv, want)
        srv.restart()
        self.assertHas(srv, want, msg="after SIGTERM")
        self.assertFalse([f for f in srv.files() if "current.wal" in f], srv.files())
        self.assertGoFormats(srv, expect=want)

    def test_empty_and_header_only_wal(self):
        """A crash right after a WAL was created leaves it empty or with only
        its file magic; appending to it must keep it readable."""
        for name, content in (("empty", b""), ("header only", wal_file([]))):
            with self.subTest(wal=name):
                srv = self.server(start=False)
                os.makedirs(srv.host_dir("c", "h"))
                with open(os.path.join(srv.host_dir("c", "h"), "current.wal"), "wb") as fh:
                    fh.write(content)
                srv.start()
                s = Samples()
                self.post(srv, "".join(s.add("c", "h", "m", T + 10 * i, i + 0.5)
                                       for i in range(5)))
                srv.crash()
                self.assertGoFormats(srv, expect=s)
                srv.start()
                self.assertHas(srv, s)


class UnloadableWalTest(PersistenceCase):
    """A log that could not be loaded at startup is never deleted or
    rotated away (fault injection: tests/tools/faultinject.c)."""

    def crashed_with_log(self, srv, host):
        want = Samples()
        self.post(srv, "".join(want.add("c", host, "m", T + 10 * i, i + 0.25) for i in range(40)))
        srv.crash()
        self.assertTrue(os.path.exists(os.path.join(srv.host_dir("c", host), "current.wal")))
        return want

    def test_log_that_cannot_be_opened_for_writing_at_restore(self):
        """The restore used to open the log read-write to be able to cut a
        torn tail: on EACCES (immutable, read-only, foreign owner) nothing
        was replayed, and once writable again the next snapshot rotated the
        log away with records that were in no snapshot."""
        srv = self.server()
        want = self.crashed_with_log(srv, "ro")
        srv.faults = "open_w:*/c/ro/current.wal:EACCES:1"
        srv.start()
        self.assertHas(srv, want, msg="replayed from a log that cannot be written")
        more = Samples()
        self.post(srv, "".join(more.add("c", "ro", "m", T + 1000 + 10 * i, 7.5) for i in range(5)))
        want.update(more)
        srv.stop()          # a snapshot, which rotates and deletes the log
        srv.faults = None
        srv.start()
        self.assertHas(srv, want, msg="after the snapshot that rotated the log")

    def test_unreadable_log_is_kept_not_rotated(self):
        srv = self.server()
        want = self.crashed_with_log(srv, "unread")
        srv.faults = "open_r:*/c/unread/current.wal:EACCES:1"
        srv.start()
        self.assertRegex(srv.stderr(), r"(?m)^<3>.*cannot read .*current\.wal.*NOT loaded")
        more = Samples()
        self.post(srv, "".join(more.add("c", "unread", "m", T + 2000 + 10 * i, 8.5)
                               for i in range(5)))
        want.update(more)
        srv.stop()          # snapshots the new samples; must keep the old log
        self.assertRegex(srv.stderr(), r"(?m)^<3>.*could not be loaded at startup; it is kept")
        srv.faults = None
        srv.start()         # readable again: everything is back
        self.assertHas(srv, want, msg="after the fault is gone")
        srv.stop()
        srv.start()         # and stays after the log was snapshotted and deleted
        self.assertHas(srv, want, msg="after one more clean restart")

    def test_damaged_log_header_keeps_the_records(self):
        """One flipped bit in the 4-byte file header used to move the whole
        log aside; it is scanned like damage in the middle."""
        srv = self.server()
        want = self.crashed_with_log(srv, "hdr")
        path = os.path.join(srv.host_dir("c", "hdr"), "current.wal")
        with open(path, "r+b") as fh:
            fh.write(bytes([0x01, 0xA7, 0x1D, 0xCD]))     # magic 0xCC1DA701 -> 0xCD1DA701
        srv.start()
        self.assertHas(srv, want, msg="records behind a damaged header")
        more = Samples()
        self.post(srv, "".join(more.add("c", "hdr", "m", T + 3000 + 10 * i, 9.5) for i in range(5)))
        want.update(more)
        srv.crash()
        srv.start()
        self.assertHas(srv, want, msg="after a crash: old records and new ones")
        srv.stop()
        self.assertGoFormats(srv, expect=want)
        srv.start()
        self.assertHas(srv, want, msg="after a clean restart")


class CorruptSnapshotHeaderTest(PersistenceCase):

    def test_flipped_bit_in_window_end_is_corruption_not_age(self):
        """A flipped bit in a .bin's `to` used to make the file look older
        than the retention: restore skipped it and the startup cleanup
        deleted it. Now it is moved aside as .corrupt and never deleted."""
        srv = self.server(store={"cleanup": {"mode": "delete"}})
        want = Samples()
        self.post(srv, "".join(want.add("c", "flip", "m", T + 10 * i, i + 0.5) for i in range(30)))
        srv.stop()
        d = srv.host_dir("c", "flip")
        (name,) = [f for f in os.listdir(d) if f.endswith(".bin")]
        with open(os.path.join(d, name), "r+b") as fh:
            data = bytearray(fh.read())
            data[19] ^= 0x80                     # the sign bit of `to`
            fh.seek(0)
            fh.write(data)
        srv.start()
        self.assertRegex(srv.stderr(), r"(?m)^<3>.*%s is corrupt" % re.escape(name))
        self.assertEqual(sorted(os.listdir(d)), [name + ".corrupt"])
        with open(os.path.join(d, name + ".corrupt"), "rb") as fh:
            self.assertEqual(fh.read(), bytes(data))
        # the cleanup (it ran at startup) and a restart leave it alone
        srv.restart()
        self.assertEqual(sorted(os.listdir(d)), [name + ".corrupt"])
        # put right by hand, it loads again
        data[19] ^= 0x80
        srv.stop()
        with open(os.path.join(d, name), "wb") as fh:
            fh.write(bytes(data))
        os.unlink(os.path.join(d, name + ".corrupt"))
        srv.start()
        self.assertHas(srv, want)


class DurableDirectoriesTest(PersistenceCase):

    def test_fsync_always_makes_new_logs_and_directories_durable(self):
        """With fsync "always" an acknowledged sample must survive a power
        loss, so the directory entries of a new log and of a new host (and
        cluster) directory are fsynced before the answer. Proven by making
        exactly those fsyncs fail: the write must not be acknowledged."""
        for target, host in (("*/checkpoints/c1/h1", "h1"),       # the new log's entry
                             ("*/checkpoints/c1", "h2"),          # the new host directory
                             ("*/checkpoints", "h3")):            # the new cluster directory
            with self.subTest(fsync_of=target):
                srv = self.server(start=False, checkpoints={"fsync": "always"})
                if host == "h2":
                    os.makedirs(os.path.join(srv.ckpt_dir, "c1"))
                srv.faults = "fsync:%s:EIO" % target
                srv.start()
                cluster = "c1" if host != "h3" else "c3"
                r = srv.write(("m,cluster=%s,hostname=%s value=1 %d\n" % (cluster, host, T))
                              .encode())
                self.assertGreaterEqual(r.status, 500, r.body)
                srv.stop()
                srv.faults = None
                srv.start()
                self.assertWriteOK(srv.write(("m,cluster=%s,hostname=%s value=1 %d\n"
                                              % (cluster, host, T)).encode()))
                srv.stop()


class ResourceLimitsTest(PersistenceCase):

    def test_open_files_limit_is_raised(self):
        """Each host keeps its log open until its next snapshot: with the
        soft limit on open files at 64 (systemd's default is 1024) one write
        to 300 hosts used to fail; the server raises the soft limit to the
        hard one at start and logs it."""
        import resource
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        srv = self.server(start=False, args=("-loglevel", "info"))
        srv.preexec = lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (64, hard))
        srv.start()
        self.assertRegex(srv.stderr(), r"(?m)^<6>.*open files limit: %d" % hard)
        self.post(srv, "".join("m,cluster=c,hostname=fd%d value=1 %d\n" % (i, T)
                               for i in range(300)))
        srv.stop()

    def test_host_logs_share_a_bounded_set_of_descriptors(self):
        """With the limit at 64 and no way to raise it, writes to 300 hosts
        used to answer 500 (one open log per host). Now the least recently
        used logs are closed and reopened: every write is acknowledged, the
        process never holds more than 64 descriptors, and with fsync
        "always" every acknowledged sample survives SIGKILL."""
        import resource
        srv = self.server(start=False, checkpoints={"fsync": "always"})
        srv.preexec = lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
        srv.start()
        samples = Samples()
        for r in range(3):
            body = "".join(samples.add("c", "fd%d" % i, "m", T + 60 * r, i + r / 4)
                           for i in range(300))
            self.post(srv, body, "round %d" % r)
            fds = len(os.listdir("/proc/%d/fd" % srv.proc.pid))
            self.assertLessEqual(fds, 64)
        self.assertNotIn("cannot open", srv.stderr())
        srv.crash()
        srv.preexec = None
        srv.start()
        self.assertHas(srv, samples)

    def test_repeated_write_errors_are_summarised(self):
        """A full disk used to log one line per host and request; now a few
        lines per 10 s, and the next one says how many were left out."""
        srv = self.server(start=False)
        srv.faults = "write:*/current.wal:ENOSPC"
        srv.start()
        body = "".join("m,cluster=c,hostname=full%d value=1 %d\n" % (i, T) for i in range(200))
        r = srv.write(body.encode())
        self.assertGreaterEqual(r.status, 500)
        lines = [ln for ln in srv.stderr().splitlines() if "WAL: " in ln]
        self.assertTrue(1 <= len(lines) <= 5, "%d lines:\n%s" % (len(lines), "\n".join(lines)))
        time.sleep(10.5)      # the next 10 s window of the budget
        r = srv.write(body.encode())
        self.assertGreaterEqual(r.status, 500)
        self.assertRegex(srv.stderr(), r"WAL: .*\(and \d+ more like it left out")
        srv.faults = None
        srv.stop()


class UndeletableLogTest(PersistenceCase):

    def test_rotated_log_that_cannot_be_deleted_is_retried(self):
        """A rotated log whose unlink fails used to stay for good (and be
        replayed at every start); it is retried at the next runs."""
        srv = self.server(start=False, store={"checkpoint-interval": "1s"})
        srv.faults = "unlink:*/c/ud/current.wal.*:EPERM:1"
        srv.start()
        want = Samples()
        self.post(srv, "".join(want.add("c", "ud", "m", T + 10 * i, i + 0.5) for i in range(10)))
        d = srv.host_dir("c", "ud")

        def settled():
            return ("cannot delete" in srv.stderr() and
                    not [f for f in os.listdir(d) if f.startswith("current.wal")])
        self.wait_for(srv, settled, "the rotated log deleted on a later run")
        self.assertEqual(srv.stderr().count("cannot delete"), 1, srv.stderr())
        srv.restart(kill=True)
        self.assertHas(srv, want)


class RestoreOrderTest(PersistenceCase):

    def test_overwrite_saved_in_the_same_second(self):
        """A slot overwritten after it was saved keeps the new value, also when
        both snapshots of the host end in the same second (same `to`): the
        restore order is the file names' order, which the store makes follow
        the order of writing. Two snapshots in one real second depend on the
        machine's speed, so the second file's `to` is set to the first's by
        hand: the case is arranged, not hoped for."""
        srv = self.server()
        hosts = ["g%d" % i for i in range(16)]
        ts = {h: T + 100 + 10 * i for i, h in enumerate(hosts)}
        first, want = Samples(), Samples()
        body = "".join(first.add("c", h, "m", ts[h], 1.5) +
                       first.add("c", h, "m", T + 5000, 3.5) for h in hosts)
        self.post(srv, body)
        srv.restart()
        old = {h: set(os.listdir(srv.host_dir("c", h))) for h in hosts}
        self.post(srv, "".join(want.add("c", h, "m", ts[h], 2.5) +
                               want.add("c", h, "m", T + 5000, 3.5) for h in hosts))
        srv.stop()
        for h in hosts:
            d = srv.host_dir("c", h)
            (a,), (b,) = sorted(old[h]), sorted(set(os.listdir(d)) - old[h])
            self.assertLess(int(a.split(".")[0]), int(b.split(".")[0]),
                            "%s: the second snapshot %s must sort after %s" % (h, b, a))
            decode = decode_bin if self.GO_FORMATS else decode_ccms
            with open(os.path.join(d, a), "rb") as fh:
                to_a = decode(fh.read())[1]
            with open(os.path.join(d, b), "r+b") as fh:
                data = bytearray(fh.read())
                if self.GO_FORMATS:
                    data[12:20] = struct.pack("<q", to_a)      # header: magic, from, to
                else:
                    # header: magic, version, 0, from, to, crc of the 24 bytes before it
                    data[16:24] = struct.pack("<q", to_a)
                    data[24:28] = struct.pack("<I", zlib.crc32(bytes(data[:24])))
                fh.seek(0)
                fh.write(data)
            with open(os.path.join(d, b), "rb") as fh:
                self.assertEqual(decode(fh.read())[1], to_a)
        srv.start()
        self.assertHas(srv, want)


# ---- repeated crashes --------------------------------------------------------------

class BackfillOrderTest(PersistenceCase):
    """Samples before a series' first sample (prepended in memory) survive
    kill -9 and a clean restart, and the files stay in the Go store's
    loadable order."""

    def test_prepended_before_the_first_sample(self):
        srv = self.server()
        want = Samples()
        hosts = ("p0", "p1")
        # the series begin late ...
        self.post(srv, "".join(want.add("c", h, "m", T + 20000 + 10 * i, 1.5 + i)
                               for h in hosts for i in range(30)))
        self.post(srv, "".join(want.add("c", h, "u", T + 20000 + 10 * i, 0.25 * i, "hwthread", "3")
                               for h in hosts for i in range(30)))
        srv.restart()                                   # their first snapshot is on disk
        # ... then the past arrives, newest first, one request per timestep,
        # reaching more than one 512-slot block before the first sample
        for i in range(1, 700, 7):
            ts = T + 20000 - 10 * i
            self.post(srv, "".join(want.add("c", h, "m", ts, 100.0 + i) +
                                   want.add("c", h, "u", ts, 0.5 * i, "hwthread", "3")
                                   for h in hosts))
        self.assertHas(srv, want, msg="live")
        srv.restart(kill=True)
        self.assertHas(srv, want, msg="after kill -9")
        srv.stop()
        self.assertGoFormats(srv, expect=want)
        for h in hosts:
            self.assertEqual(go_restore_problems(srv.host_dir("c", h)), [])
        srv.start()
        self.assertHas(srv, want, msg="after SIGTERM and restart")
        # one more prepend, now before data that came from the files
        more = Samples()
        self.post(srv, "".join(more.add("c", h, "m", T + 100, 9.75) for h in hosts))
        want.update(more)
        srv.restart(kill=True)
        self.assertHas(srv, want, msg="prepend before restored data, kill -9")
        srv.stop()
        for h in hosts:
            self.assertEqual(go_restore_problems(srv.host_dir("c", h)), [])
        srv.start()
        self.assertHas(srv, want, msg="final restart")


class CrashRestartTest(PersistenceCase):

    def test_crash_write_crash(self):
        srv = self.server()
        total = Samples()
        a, bodies = self.workload(n=20)
        for body in bodies:
            self.post(srv, body)
        total.update(a)
        srv.restart(kill=True)
        self.assertHas(srv, total, msg="after crash 1")
        # new samples after the old ones, plus late ones into the replayed buffers
        b = Samples()
        late = "".join(b.add("c", h, "m", T + 10 * i + 5000, 40.5 + i)
                       for h in ("h0", "h1", "h2") for i in range(20))
        self.post(srv, late)
        holes = "".join(b.add("c", "h0", "m", T + 10 * i + 200, 70.5 + i) for i in range(20))
        self.post(srv, holes)
        total.update(b)
        srv.restart(kill=True)
        self.assertHas(srv, total, msg="after crash 2")
        c, bodies = self.workload(n=10, base=T + 9000, offset=900)
        for body in bodies:
            self.post(srv, body)
        total.update(c)
        srv.stop()
        files = srv.files()
        self.assertFalse([f for f in files if "current.wal" in f],
                         "WAL files left after SIGTERM: %s" % files)
        self.assertFalse([f for f in files if SEG_NAME.match(f)],
                         "log segments left after SIGTERM: %s" % files)
        for host in ("h0", "h1", "h2"):
            self.assertTrue([f for f in files if f.startswith("c/%s/" % host) and
                             f.endswith(self.SNAPSHOT_EXT)], files)
        self.assertGoFormats(srv, expect=total)
        srv.start()
        self.assertHas(srv, total, msg="after SIGTERM")
        # late samples into buffers restored from snapshots, then one more crash
        d = Samples()
        self.post(srv, "".join(d.add("c", "h1", "m", T + 10 * 30 + 10 * i, 80.5 + i)
                               for i in range(10)))
        total.update(d)
        srv.restart(kill=True)
        self.assertHas(srv, total, msg="after crash 3")


# ---- files written by the Go store -------------------------------------------------

GO_METRICS = {name: {"frequency": 60, "aggregation": "avg"}
              for name in ("cpu_load", "mem_used", "cpu_user", "mem_bw")}


class GoFilesTest(PersistenceCase):

    def read(self, srv, cluster, key, frm=T - 3600, to=T + 7200):
        """(from, data) of one series, NaN as None."""
        r = srv.query({"cluster": cluster, "from": frm, "to": to, "with-padding": False,
                       "queries": [query_for(*key)]})
        self.assertStatus(r, 200)
        entry = json.loads(r.body)["results"][0][0]
        self.assertNotIn("error", entry, "%s: %s\n%s" % (key, entry, srv.logs()))
        return entry["from"], entry["data"]

    def test_fixture_directory(self):
        """tests/fixtures/derived/checkpoints (README table) + node002's WAL."""
        srv = self.server(metrics=GO_METRICS, start=False, retention=long_retention())
        shutil.copytree(os.path.join(TESTDATA, "derived", "checkpoints"), srv.ckpt_dir)
        srv.start()
        t0 = 1700000030
        expect = {
            ("node001", "cpu_load", None, None): [0.5, 0.7, 0.9],
            ("node001", "mem_used", None, None): [45.2, None, 47.0],
            ("node001", "cpu_user", "hwthread", "0"): [12.0, None, 13.5],
            # .bin values, then the WAL records at 1700000210 / 1700000270
            ("node002", "cpu_load", None, None): [1.0, 2.0, 3.0, 4.0],
            ("node002", "cpu_user", "hwthread", "1"): [5.5, None, None, None, 6.5],
            ("node002", "mem_bw", "socket", "0"): [100.0, None, 200.0, 250.0],
        }
        for key, data in expect.items():
            with self.subTest(series=key):
                frm, got = self.read(srv, "testcluster", key)
                self.assertEqual(frm, t0)
                self.assertEqual(got, [None if v is None else round(f32(v), 3) for v in data])
        # a clean stop keeps it all (the restored files are not rewritten wrongly)
        srv.restart()
        for key, data in expect.items():
            frm, got = self.read(srv, "testcluster", key)
            self.assertEqual((frm, got), (t0, [None if v is None else round(f32(v), 3)
                                               for v in data]), key)

    def generated_tree(self):
        """Files in upstream style for three hosts (+ one in another cluster)
        -> ({relative path: bytes}, Samples)."""
        s = Samples()
        files = {}

        def level(cluster, host, spec):
            """spec: {(typ, tid) or None: {metric: (freq, start, values)}}."""
            root = {"metrics": {}, "children": {}}
            for where, metrics in spec.items():
                node = root
                path = where or ()
                for i in range(0, len(path), 2):
                    node = node["children"].setdefault(path[i] + path[i + 1],
                                                       {"metrics": {}, "children": {}})
                for metric, (freq, start, values) in metrics.items():
                    node["metrics"][metric] = (freq, start, values)
                    typ, tid = (path[0], path[1]) if len(path) == 2 else (None, None)
                    for i, v in enumerate(values):
                        if v is not None and len(path) <= 2 and metric in GO_METRICS:
                            s.add(cluster, host, metric, start + i * freq, v, typ, tid)
            return root

        w1, w2 = (T, T + 3600), (T + 3600, T + 7200)
        # g1: two JSON windows (deltas), one decimal, nulls, an unknown metric
        files["tc/g1/%d.json" % w1[0]] = encode_json_upstream(*w1, level("tc", "g1", {
            None: {"cpu_load": (60, T + 30, [0.5, 1.5, None, 2.5]),
                   "mem_used": (60, T + 30, [45.25, 0.35, 0.05]),
                   "not_configured": (60, T + 30, [1.0])},
            ("hwthread", "0"): {"cpu_user": (60, T + 30, [12.0, None, 13.5])},
            ("socket", "1"): {"mem_bw": (60, T + 90, [7.0, 8.0])},
        }))
        files["tc/g1/%d.json" % w2[0]] = encode_json_upstream(*w2, level("tc", "g1", {
            None: {"cpu_load": (60, T + 3630, [3.5, 4.5])},
            ("hwthread", "0"): {"cpu_user": (60, T + 3630, [14.0])},
        }))
        # g2: two .bin windows, children and metrics deliberately unsorted
        files["tc/g2/%d.bin" % w1[0]] = encode_bin(*w1, level("tc", "g2", {
            ("socket", "0"): {"mem_bw": (60, T + 30, [100.0, None, 200.0])},
            ("hwthread", "1"): {"cpu_user": (60, T + 30, [5.5])},
            None: {"mem_used": (60, T + 30, [45.25, 46.0]), "cpu_load": (60, T + 30, [1.0, 2.0])},
        }))
        files["tc/g2/%d.bin" % w2[0]] = encode_bin(*w2, level("tc", "g2", {
            None: {"cpu_load": (60, T + 3630, [9.0, None, 11.0])},
            ("hwthread", "1"): {"cpu_user": (60, T + 3630, [6.0, 6.5])},
        }))
        # g3: migration mix: a .json, then a .bin, then a WAL behind both
        files["tc/g3/%d.json" % w1[0]] = encode_json_upstream(*w1, level("tc", "g3", {
            None: {"cpu_load": (60, T + 30, [0.1, 0.2, 0.3])},
        }))
        files["tc/g3/%d.bin" % w2[0]] = encode_bin(*w2, level("tc", "g3", {
            None: {"cpu_load": (60, T + 3630, [0.4, 0.5])},
            ("socket", "0", "memoryDomain", "1"): {"mem_bw": (60, T + 3630, [33.0])},
        }))
        wal_records = []
        for i, v in enumerate((0.6, 0.7)):
            ts = T + 3750 + 60 * i
            wal_records.append(wal_record(ts, "cpu_load", [], v))
            s.add("tc", "g3", "cpu_load", ts, v)
        wal_records.append(wal_record(T + 3750, "mem_bw", ["socket0", "memoryDomain1"], 34.0))
        wal_records.append(wal_record(T + 3750, "unknown_metric", [], 1.0))
        files["tc/g3/current.wal"] = wal_file(wal_records)
        # another cluster, same host name
        files["other/g1/%d.bin" % w1[0]] = encode_bin(*w1, level("other", "g1", {
            None: {"cpu_load": (60, T + 30, [77.0])},
        }))
        # JSON values are one decimal: what the store reads is that decimal
        for key in list(s.series):
            if key[:2] == ("tc", "g1"):
                s.series[key] = {t: f32(float("%.1f" % v)) for t, v in s.series[key].items()}
        for key in [k for k in s.series if k[:2] == ("tc", "g3")]:
            s.series[key] = {t: (f32(float("%.1f" % v)) if t < T + 3600 else v)
                             for t, v in s.series[key].items()}
        return files, s

    def test_generated_files(self):
        """JSON (one decimal, as upstream writes it) and .bin files made here load."""
        files, samples = self.generated_tree()
        srv = self.server(metrics=GO_METRICS, start=False)
        for rel, data in files.items():
            os.makedirs(os.path.dirname(os.path.join(srv.ckpt_dir, rel)), exist_ok=True)
            with open(os.path.join(srv.ckpt_dir, rel), "wb") as fh:
                fh.write(data)
        srv.start()
        self.assertHas(srv, samples)
        # the subtype level of g3 (.bin and WAL)
        r = srv.query({"cluster": "tc", "from": T, "to": T + 7200, "with-padding": False,
                       "queries": [{"metric": "mem_bw", "host": "g3", "type": "socket",
                                    "type-ids": ["0"], "subtype": "memoryDomain",
                                    "subtype-ids": ["1"]}]})
        self.assertStatus(r, 200)
        entry = json.loads(r.body)["results"][0][0]
        self.assertEqual((entry.get("from"), entry.get("data")), (T + 3630, [33.0, None, 34.0]),
                         r.body)
        srv.restart()
        self.assertHas(srv, samples, msg="after SIGTERM")
        self.assertGoFormats(srv, expect=samples)


# ---- stray and broken files ---------------------------------------------------------

class StrayFilesTest(PersistenceCase):

    def test_stray_and_broken_files_never_stop_startup(self):
        srv = self.server(start=False)
        root = srv.ckpt_dir
        good = Samples()
        h1_bin = encode_bin(T, T + 3600, {"metrics": {}, "children": {
            "hwthread0": {"metrics": {"u": (10, T, [1.5, 2.5, None, 3.5])}, "children": {}}}})
        for i, v in enumerate((1.5, 2.5, None, 3.5)):
            if v is not None:
                good.add("c", "h1", "u", T + 10 * i, v, "hwthread", "0")
        h2_bin = encode_bin(T, T + 3600, {"metrics": {"m": (10, T, [5.5, 6.5])}, "children": {}})
        good.add("c", "h2", "m", T, 5.5)
        good.add("c", "h2", "m", T + 10, 6.5)
        good.add("c", "h2", "m", T + 20, 66.0)      # from the log behind the damaged header
        bad_json = encode_json_upstream(T + 100, T + 200, {"metrics": {
            "m": (10, T + 100, [9.0] * 20)}, "children": {}})
        layout = {
            "strayfile": b"a regular file at the cluster level\n",
            "c/strayfile": b"a regular file at the host level\n",
            "c/h1/%d.bin" % T: h1_bin,
            "c/h1/%d.bin" % (T + 100): b"this is not a snapshot",
            "c/h1/%d.bin" % (T + 150): h1_bin[:-9],                   # magic ok, truncated
            "c/h1/%d.json" % (T + 200): bad_json[:len(bad_json) // 2],  # truncated JSON
            "c/h1/abc.json": encode_json_upstream(T, T + 1, {"metrics": {
                "m": (10, T + 500, [8.0])}, "children": {}}),
            "c/h1/%d.bin.tmp" % (T + 300): encode_bin(T + 300, T + 400, {"metrics": {
                "m": (10, T + 600, [7.0])}, "children": {}}),
            "c/h1/legacy-avro/1700000000.avro": b"Obj\x01",
            "c/h2/%d.bin" % T: h2_bin,
            # a damaged header before a valid record: the record is found
            # by resynchronising (magic and CRC verified) and replayed
            "c/h2/current.wal": b"NOTAWAL-" + wal_record(T + 20, "m", [], 66.0),
            # no valid record at all: not a log, moved aside untouched
            "c/h3/current.wal": b"GIF89a" + b"\0" * 40,
        }
        for rel, data in layout.items():
            path = os.path.join(root, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as fh:
                fh.write(data)
        srv.start()
        self.assertHas(srv, good)
        # nothing of the broken / misnamed / unfinished files was loaded
        got = read_series(srv, "c", [("h1", "m", None, None)], T - 3600, T + 3600)
        self.assertEqual(got[("h1", "m", None, None)], {})
        h2 = srv.host_dir("c", "h2")
        renamed = [f for f in os.listdir(h2) if re.match(r"^current\.wal\.\d+$", f)]
        self.assertEqual(len(renamed), 1, os.listdir(h2))
        with open(os.path.join(h2, renamed[0]), "rb") as fh:
            self.assertEqual(fh.read(), layout["c/h2/current.wal"], "the damaged WAL was changed")
        h3 = srv.host_dir("c", "h3")
        aside = [f for f in os.listdir(h3) if f.startswith("current.wal.unreadable-")]
        self.assertEqual(len(aside), 1, os.listdir(h3))
        with open(os.path.join(h3, aside[0]), "rb") as fh:
            self.assertEqual(fh.read(), layout["c/h3/current.wal"], "the foreign file was changed")
        for rel in ("strayfile", "c/strayfile", "c/h1/%d.bin" % (T + 100), "c/h1/abc.json"):
            self.assertTrue(os.path.exists(os.path.join(root, rel)), "%s was removed" % rel)
        # new writes to h2 work and survive a crash
        new = Samples()
        self.post(srv, "".join(new.add("c", "h2", "m", T + 20 + 10 * i, 10.5 + i)
                               for i in range(10)))
        self.post(srv, new.add("c", "h2", "u", T + 20, 4.25, "hwthread", "3"))
        good.update(new)
        srv.restart(kill=True)
        self.assertHas(srv, good, msg="after crash")
        srv.restart()
        self.assertHas(srv, good, msg="after SIGTERM")
        self.assertGoFormats(srv, ignore=("%d.bin" % (T + 100), "%d.bin" % (T + 150),
                                          "%d.json" % (T + 200), "abc.json"))


# ---- background snapshots ------------------------------------------------------------

class BackgroundSnapshotTest(PersistenceCase):

    def bins(self, srv, cluster="c", host="h0"):
        d = srv.host_dir(cluster, host)
        return (sorted(f for f in os.listdir(d) if f.endswith(self.SNAPSHOT_EXT))
                if os.path.isdir(d) else [])

    def logs(self, srv):
        """The write-ahead log files: Go current.wal (and rotated ones), or
        native segments."""
        return [f for f in srv.files() if "current.wal" in f or SEG_NAME.match(f)]

    def test_max_wal_size_triggers_early_snapshot(self):
        srv = self.server(store={"checkpoint-interval": "1h"},
                          checkpoints={"max-wal-size": 4096})
        total = Samples()
        a, bodies = self.workload(hosts=("h0", "h1"), n=60)
        for body in bodies:
            self.post(srv, body)
        total.update(a)
        self.wait_for(srv, lambda: self.bins(srv), "an early snapshot (max-wal-size 4096)")
        b, bodies = self.workload(hosts=("h0", "h1"), n=60, base=T + 1200, offset=600)
        for body in bodies:
            self.post(srv, body)
        total.update(b)
        srv.crash()
        self.assertGoFormats(srv, allow_torn=True)
        srv.start()
        self.assertHas(srv, total)

    def test_periodic_snapshot_rotates_the_wal(self):
        srv = self.server(store={"checkpoint-interval": "1s"})
        total = Samples()
        a, bodies = self.workload(hosts=("h0", "h1"), n=15)
        for body in bodies:
            self.post(srv, body)
        total.update(a)
        self.wait_for(srv, lambda: self.bins(srv, "c", "h0") and self.bins(srv, "c", "h1")
                      and not self.logs(srv),
                      "a periodic snapshot deleting the rotated WAL")
        self.assertFalse(self.logs(srv), srv.files())
        self.assertGoFormats(srv, expect=a)
        b, bodies = self.workload(hosts=("h0", "h1"), n=15, base=T + 1200, offset=300)
        for body in bodies:
            self.post(srv, body)
        total.update(b)
        srv.restart(kill=True)
        self.assertHas(srv, total, msg="after crash")
        # the data replayed from the WAL goes into the next periodic snapshot
        # before that WAL is deleted (the Go store lost them here)
        before = set(f for f in srv.files() if f.endswith(self.SNAPSHOT_EXT))
        self.wait_for(srv, lambda: not self.logs(srv)
                      and set(f for f in srv.files() if f.endswith(self.SNAPSHOT_EXT)) - before,
                      "a periodic snapshot after the restart")
        srv.restart(kill=True)
        self.assertHas(srv, total, msg="after the second crash")
        self.assertGoFormats(srv, expect=total)


# ---- back to the Go store -------------------------------------------------------------

class GoFormatTest(PersistenceCase):
    """Every file we write decodes with the Go formats' readers above."""

    def test_wal_and_bin_files_are_go_format(self):
        srv = self.server()
        samples, bodies = self.workload(hosts=("h0", "h1", "h2"), n=20)
        for body in bodies:
            self.post(srv, body)
        srv.crash()
        found = self.assertGoFormats(srv, expect=samples)
        for hostkey, series in samples.by_host_dir().items():
            # the WAL holds exactly what was written, nothing else
            with open(os.path.join(srv.ckpt_dir, *hostkey, "current.wal"), "rb") as fh:
                recs = scan_wal(fh.read())
            self.assertEqual(len(recs), sum(len(p) for p in series.values()), hostkey)
            self.assertEqual({k: dict(v) for k, v in found[hostkey].items()},
                             {k: dict(v) for k, v in series.items()})
        srv.start()
        srv.stop()
        bins = [f for f in srv.files() if f.endswith(".bin")]
        self.assertTrue(bins)
        self.assertGoFormats(srv, expect=samples)
        for hostkey in samples.by_host_dir():
            self.assertEqual(go_restore_problems(srv.host_dir(*hostkey)), [])

    def test_go_store_can_load_our_files(self):
        """Files are read back by the Go store in name order, and it aborts
        startup when a series starts before the one already loaded (spec §6).
        Here: a snapshot holding m from T+5000 on (window start from u's late
        sample at T+100), then a late m sample at T+200 saved in a file with
        a larger name but an earlier m start."""
        srv = self.server()
        want = Samples()
        self.post(srv, want.add("c", "h", "m", T, 1.5) +
                  want.add("c", "h", "u", T, 1.5, "hwthread", "0"))
        srv.restart()
        self.post(srv, want.add("c", "h", "m", T + 5000, 2.5) +
                  want.add("c", "h", "u", T + 100, 2.5, "hwthread", "0"))
        srv.restart()
        self.post(srv, want.add("c", "h", "m", T + 200, 3.5))
        srv.restart()
        self.assertHas(srv, want)
        self.assertGoFormats(srv, expect=want)
        problems = go_restore_problems(srv.host_dir("c", "h"))
        self.assertEqual(problems, [], "the Go store would refuse to start on these files")

    def test_json_files_are_go_format(self):
        srv = self.server(checkpoints={"file-format": "json"})
        samples, bodies = self.workload(hosts=("h0", "h1"), n=10)
        for body in bodies:
            self.post(srv, body)
        srv.stop()
        self.assertTrue([f for f in srv.files() if f.endswith(".json")], srv.files())
        self.assertGoFormats(srv, expect=samples)


# ---- crash loop -----------------------------------------------------------------------

class CrashLoopTest(CCMSTestCase):

    def check(self, res):
        self.assertEqual(res["errors"], [])
        self.assertEqual(res["problems"][:20], [])
        self.assertGreater(res["acked"], 0)
        self.assertEqual(res["lost"], 0)

    def test_crash_loop(self):
        self.check(crash_loop.run(cycles=20, budget=60))

    def test_crash_loop_go_formats(self):
        self.check(crash_loop.run(cycles=10, budget=30, go_formats=True))


# ---- the same behaviour in the native formats (the default) ----------------------

class KillAfterAckNativeTest(KillAfterAckTest):
    GO_FORMATS = False


class CrashRestartNativeTest(CrashRestartTest):
    GO_FORMATS = False


class BackfillOrderNativeTest(BackfillOrderTest):
    GO_FORMATS = False


class CompressedDataNativeTest(CompressedDataTest):
    GO_FORMATS = False


class BackgroundSnapshotNativeTest(BackgroundSnapshotTest):
    GO_FORMATS = False


class RestoreOrderNativeTest(RestoreOrderTest):
    GO_FORMATS = False


class StrayFilesNativeTest(StrayFilesTest):
    GO_FORMATS = False


class CleanRestartNativeTest(CleanRestartTest):
    GO_FORMATS = False


class NativeDamageTest(PersistenceCase):
    """Damage to the native files: a torn or corrupt log record, a log
    segment whose header is damaged, flipped bits in a snapshot. What is
    damaged is left out and logged; nothing else is lost, and nothing is
    ever served as a wrong value."""
    GO_FORMATS = False

    def written(self, srv, n=12):
        samples, bodies = self.workload(n=n)
        for body in bodies:
            self.post(srv, body)
        return samples

    def segment(self, srv):
        (seg,) = [f for f in srv.files() if SEG_NAME.match(f)]
        return os.path.join(srv.ckpt_dir, seg)

    def served(self, srv, samples):
        """What the server answers for the keys of samples: {key: {ts: v}}."""
        keys = [k for k in samples.series]
        lo = min(min(v) for v in samples.series.values()) - 60
        hi = max(max(v) for v in samples.series.values()) + 60
        got = read_series(srv, "c", [k[1:] for k in keys], lo, hi)
        return {k: got[k[1:]] for k in keys}

    def assertNothingWrong(self, srv, samples):
        """Every value served is the one written (missing is allowed);
        returns how many samples are missing."""
        missing = 0
        for key, got in self.served(srv, samples).items():
            want = {t: float("%.3f" % v) for t, v in samples.series[key].items()}
            for t, v in got.items():
                self.assertIn(t, want, "%s: a sample at %d that was never written" % (key, t))
                self.assertEqual(v, want[t], "%s at %d: wrong value served" % (key, t))
            missing += len(set(want) - set(got))
        return missing

    def test_torn_log_tail_is_cut_and_nothing_acked_is_lost(self):
        srv = self.server()
        samples = self.written(srv)
        srv.crash()
        path = self.segment(srv)
        with open(path, "rb") as fh:
            data = fh.read()
        _, records = scan_seglog(data)
        # a torn write: the first 20 bytes of a copy of the last record
        last = data.rfind(struct.pack("<I", SEG_RECORD_MAGIC))
        with open(path, "ab") as fh:
            fh.write(data[last:last + 20])
        srv.start()
        self.assertHas(srv, samples)
        self.assertIn("torn tail cut off", srv.stderr())
        srv.crash()
        with open(path, "rb") as fh:
            self.assertEqual(fh.read(), data, "the torn tail is cut off exactly")

    def test_corrupt_record_loses_that_record_only(self):
        srv = self.server()
        samples = self.written(srv)
        srv.crash()
        path = self.segment(srv)
        with open(path, "rb") as fh:
            data = bytearray(fh.read())
        starts = [m.start() for m in re.finditer(re.escape(struct.pack("<I", SEG_RECORD_MAGIC)),
                                                 bytes(data))]
        self.assertGreater(len(starts), 6)
        # the value bytes of a record in the middle (not its definitions:
        # those are in the first records)
        victim = starts[len(starts) // 2 + 1]
        data[victim + 30] ^= 0x40
        with open(path, "wb") as fh:
            fh.write(data)
        srv.start()
        missing = self.assertNothingWrong(srv, samples)
        self.assertGreater(missing, 0)
        self.assertLess(missing, 12, "one record holds one host's samples of one request")
        self.assertIn("corrupt regions skipped", srv.stderr())
        st = json.loads(srv.raw("GET", "/api/status").body)["persistence"]
        self.assertEqual(st["format"], "native")
        self.assertEqual(st["restore"]["log_corrupt"], 1)
        self.assertEqual(st["log_segments"], 1, "the replayed segment awaits a snapshot")
        self.assertGreater(st["log_bytes"], 0)

    def test_segment_with_damaged_header_is_kept_aside(self):
        srv = self.server()
        self.written(srv)
        srv.crash()
        path = self.segment(srv)
        with open(path, "r+b") as fh:
            fh.seek(9)
            b = fh.read(1)
            fh.seek(9)
            fh.write(bytes([b[0] ^ 1]))
        srv.start()
        self.assertIn("records are NOT loaded", srv.stderr())
        self.assertTrue([f for f in srv.files() if ".unreadable-" in f], srv.files())
        # new writes go to a new segment; the damaged one is never deleted
        more, bodies = self.workload(n=2, base=T + 5000)
        for body in bodies:
            self.post(srv, body)
        srv.stop()
        self.assertTrue([f for f in srv.files() if ".unreadable-" in f], srv.files())
        srv.start()
        self.assertHas(srv, more)

    def test_flipped_bits_in_a_snapshot_are_never_served(self):
        srv = self.server()
        samples = self.written(srv, n=60)
        srv.stop()
        (snap,) = [f for f in srv.files() if f.startswith("c/h1/") and f.endswith(".ccms")]
        path = os.path.join(srv.ckpt_dir, snap)
        with open(path, "rb") as fh:
            good = fh.read()
        rng = random.Random(3)
        positions = sorted(rng.sample(range(28, len(good)), 24))
        lost_somewhere = 0
        for pos in positions:
            bad = bytearray(good)
            bad[pos] ^= 1 << rng.randrange(8)
            with open(path, "wb") as fh:
                fh.write(bad)
            srv.start()
            lost_somewhere += self.assertNothingWrong(srv, samples) > 0
            st = json.loads(srv.raw("GET", "/api/status").body)["persistence"]["restore"]
            self.assertEqual(st["blocks_lost"] + st["files_failed"], 1, pos)
            srv.stop()
            # the next snapshot rewrote nothing (nothing new): put the file back
            for f in srv.files():
                if f.startswith("c/h1/") and f != snap:
                    os.unlink(os.path.join(srv.ckpt_dir, f))
        self.assertEqual(lost_somewhere, len(positions),
                         "every flipped bit is detected and loses its block")


def encode_ccms_v1(frm, to, series):
    """A native snapshot of version 1, the layout earlier versions wrote
    (docs/file-formats.md, "Native snapshot"): every buffer's sealed slots
    in parts of 128 slots, here RAW parts (float bits) and CONST parts (a
    part of one value) and a plain tail. series: [(sel, metric, start,
    freq, values, sealed)] with None for a missing slot."""
    def bits(v):
        return struct.unpack("<I", struct.pack("<f", float("nan") if v is None else v))[0]
    out = bytearray(struct.pack("<IHHqq", NSNAP_MAGIC, 1, 0, frm, to))
    out += struct.pack("<I", zlib.crc32(out))
    for sel, metric, start, freq, values, sealed in series:
        parts, ends = b"", []
        for first in range(0, sealed, 128):
            part = values[first:min(sealed, first + 128)]
            if len(set(bits(v) for v in part)) == 1:
                parts += struct.pack("<BI", 1, bits(part[0]))
            else:
                parts += bytes([0]) + b"".join(struct.pack("<I", bits(v)) for v in part)
            ends.append(len(parts))
        body = bytes([len(sel)]) + b"".join(bytes([len(n)]) + n.encode() for n in sel)
        body += struct.pack("<H", len(metric)) + metric.encode()
        body += struct.pack("<qIHHH", start - freq // 2, freq, len(values), len(values), sealed)
        body += b"".join(struct.pack("<H", e) for e in ends) + parts
        body += b"".join(struct.pack("<I", bits(v)) for v in values[sealed:])
        out += struct.pack("<III", NSNAP_BLOCK_MAGIC, len(body), zlib.crc32(body)) + body
    return bytes(out)


class LegacySnapshotTest(PersistenceCase):
    """A native snapshot of version 1 (earlier versions: parts of 128 slots,
    no whole buffers) loads with every value; the snapshot written after it
    is of version 2 and holds the same."""
    GO_FORMATS = False

    def test_version_1_snapshot_loads(self):
        srv = self.server(start=False)
        d = srv.host_dir("c", "h")
        os.makedirs(d)
        want, series = Samples(), []
        n = 600                       # a full buffer and part of the next
        for cpu in range(2):
            values = []
            for i in range(n):
                v = None if i % 29 == 4 else (7.25 if 128 <= i < 256 else cpu + i * 0.125)
                values.append(v)
                if v is not None:
                    want.add("c", "h", "u", T + 10 * i, v, "hwthread", str(cpu))
            # the first buffer sealed whole, the second up to slot 64
            series.append((("hwthread%d" % cpu,), "u", T, 10, values[:512], 512))
            series.append((("hwthread%d" % cpu,), "u", T + 5120, 10, values[512:], 64))
        with open(os.path.join(d, "%d.ccms" % T), "wb") as fh:
            fh.write(encode_ccms_v1(T, T + 10 * n, series))
        srv.start()
        st = json.loads(srv.raw("GET", "/api/status").body)["persistence"]["restore"]
        self.assertEqual(st["blocks_lost"] + st["files_failed"], 0, st)
        self.assertHas(srv, want)
        # new samples after it: the next snapshot is of version 2, and the
        # store reads both
        body = "".join(want.add("c", "h", "u", T + 10 * i, i * 0.5, "hwthread", "0")
                       for i in range(n, n + 40))
        self.post(srv, body)
        srv.restart()
        self.assertHas(srv, want, msg="after a snapshot of version 2")
        self.assertGoFormats(srv, expect=want)
        versions = set()
        for f in srv.files():
            if f.startswith("c/h/") and f.endswith(".ccms"):
                with open(os.path.join(srv.ckpt_dir, f), "rb") as fh:
                    versions.add(struct.unpack_from("<H", fh.read(6), 4)[0])
        self.assertIn(2, versions, srv.files())


class NativeExportTest(PersistenceCase):
    """-export-go writes the Go store's layout and .bin format; the Go-format
    reader above finds every sample in it, and a store started on the export
    with write-go-formats answers the same."""
    GO_FORMATS = False

    def test_export_round_trip(self):
        srv = self.server()
        samples, bodies = self.workload(n=40)
        for body in bodies:
            self.post(srv, body)
        srv.restart(kill=True)        # part in the log, then a snapshot at stop
        more, bodies = self.workload(n=5, base=T + 3000, offset=500)
        for body in bodies:
            self.post(srv, body)
        samples.update(more)
        srv.crash()
        out = os.path.join(srv.tmp, "export")
        r = subprocess.run([BINARY, "-config", srv.config_path, "-export-go", out],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("Export done", r.stdout)
        for d, _, names in os.walk(out):
            for n in names:
                self.assertTrue(n.endswith(".bin"), os.path.join(d, n))
        # the export, read by the Go-format codec, holds every sample
        go = self.server(start=False, checkpoints={"write-go-formats": True})
        if os.path.isdir(go.ckpt_dir):
            shutil.rmtree(go.ckpt_dir)
        shutil.copytree(out, go.ckpt_dir)
        self.assertGoFormats(go, expect=samples)
        go.start()
        self.assertHas(go, samples)
