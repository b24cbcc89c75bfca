#!/usr/bin/env python3
"""Raw NBD protocol checks against a running dipole export.

usage: nbdraw.py SOCKET EXPORT MODE
  MODE primary   : the export is Primary (writable); run all protocol checks
  MODE secondary : the export is Secondary; writes must fail with EPERM
Prints one "ok - nbd-proto: NAME" / "not ok - ..." line per check.
"""
import os, socket, struct, sys

SOCK, EXPORT, MODE = sys.argv[1], sys.argv[2], sys.argv[3]
IHAVEOPT = 0x49484156454F5054
REQ_MAGIC = 0x25609513
REP_MAGIC = 0x67446698
READ, WRITE, DISC, FLUSH, TRIM, ZEROES = 0, 1, 2, 3, 4, 6
EPERM, EINVAL, ENOSPC = 1, 22, 28
failures = 0


def result(name, good, detail=""):
    global failures
    print(("ok" if good else "not ok") + " - nbd-proto: " + name + ("" if good else "  # " + detail))
    sys.stdout.flush()
    if not good:
        failures += 1


def recvn(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            raise EOFError("server closed after %d of %d bytes" % (len(b), n))
        b += c
    return b


def raw():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(20)
    s.connect(SOCK)
    return s


def opt(s, o, data=b""):
    s.sendall(struct.pack(">QII", IHAVEOPT, o, len(data)) + data)


def opt_replies(s):
    out = []
    while True:
        magic, o, typ, ln = struct.unpack(">QIII", recvn(s, 20))
        out.append((typ, recvn(s, ln)))
        if typ == 1 or typ & 0x80000000:
            return out


def go(name=None):
    s = raw()
    magic, ihave, flags = struct.unpack(">QQH", recvn(s, 18))
    assert magic == 0x4E42444D41474943 and ihave == IHAVEOPT and flags & 1
    s.sendall(struct.pack(">I", 3))
    n = (EXPORT if name is None else name).encode()
    opt(s, 7, struct.pack(">I", len(n)) + n + struct.pack(">H", 0))
    reps = opt_replies(s)
    size = tflags = None
    for typ, d in reps:
        if typ == 3 and struct.unpack(">H", d[:2])[0] == 0:
            _, size, tflags = struct.unpack(">HQH", d)
    return s, reps, size, tflags


def req(s, t, cookie, off, ln, flags=0, payload=b""):
    s.sendall(struct.pack(">IHHQQI", REQ_MAGIC, flags, t, cookie, off, ln) + payload)


def reply(s, datalen=0):
    magic, err, cookie = struct.unpack(">IIQ", recvn(s, 16))
    assert magic == REP_MAGIC, "bad reply magic %x" % magic
    data = recvn(s, datalen) if err == 0 and datalen else b""
    return err, cookie, data


def closed(s):
    try:
        return s.recv(1) == b""
    except (ConnectionResetError, socket.timeout):
        return True


def check(name, fn):
    try:
        fn()
    except Exception as e:  # any exception is a failed check with its reason
        result(name, False, repr(e))


s, reps, SIZE, TFLAGS = go()
result("handshake GO reports the export size", SIZE is not None and SIZE > 0, repr(reps))

if MODE == "secondary":
    result("Secondary export is advertised read-only", bool(TFLAGS & 2), "flags %r" % TFLAGS)
    req(s, WRITE, 1, 0, 512, payload=b"x" * 512)
    err, _, _ = reply(s)
    result("write on Secondary fails with EPERM", err == EPERM, "err %d" % err)
    req(s, READ, 2, 0, 512)
    err, _, d = reply(s, 512)
    result("read on Secondary works", err == 0 and len(d) == 512, "err %d" % err)
    req(s, DISC, 3, 0, 0)
    sys.exit(1 if failures else 0)

result("Primary export is writable", not (TFLAGS & 2), "flags %r" % TFLAGS)


def t_bounds():
    req(s, READ, 10, SIZE, 1)
    e1 = reply(s)[0]
    req(s, READ, 11, SIZE - 100, 4096)
    e2 = reply(s)[0]
    req(s, WRITE, 12, SIZE - 10, 20, payload=b"z" * 20)
    e3 = reply(s)[0]
    req(s, READ, 13, 2**64 - 512, 1024)
    e4 = reply(s)[0]
    result("read past the end is EINVAL", e1 == EINVAL and e2 == EINVAL and e4 == EINVAL, "%d %d %d" % (e1, e2, e4))
    result("write past the end is ENOSPC and the stream stays in step", e3 == ENOSPC, "%d" % e3)
    req(s, READ, 14, SIZE - 512, 512)
    e5, _, d = reply(s, 512)
    result("last sector readable", e5 == 0 and len(d) == 512, "%d" % e5)


def t_zero_len_and_unknown():
    req(s, READ, 20, 0, 0)
    e1 = reply(s)[0]
    req(s, 99, 21, 0, 0)
    e2 = reply(s)[0]
    req(s, READ, 22, 0, 33 << 20)
    e3 = reply(s)[0]
    result("zero-length read is EINVAL", e1 == EINVAL, "%d" % e1)
    result("unknown command is EINVAL, connection usable", e2 == EINVAL, "%d" % e2)
    result("read above the maximum block size is EINVAL", e3 == EINVAL, "%d" % e3)


def t_misaligned():
    base = bytearray(os.urandom(12))
    req(s, WRITE, 30, 4095, 12, payload=bytes(base))
    e1 = reply(s)[0]
    req(s, WRITE, 31, 4097, 5, flags=1, payload=b"HELLO")
    e2 = reply(s)[0]
    base[2:7] = b"HELLO"
    req(s, READ, 32, 4095, 12)
    e3, _, d = reply(s, 12)
    result("byte-granular misaligned writes read back exactly", e1 == 0 and e2 == 0 and e3 == 0 and d == bytes(base),
           "%d %d %d %r" % (e1, e2, e3, d))


def t_trim_zeroes_flush():
    req(s, WRITE, 40, 1 << 20, 65536, payload=b"\xaa" * 65536)
    reply(s)
    req(s, ZEROES, 41, 1 << 20, 8192)
    e1 = reply(s)[0]
    req(s, ZEROES, 42, (1 << 20) + 8192, 8192, flags=2)
    e2 = reply(s)[0]
    req(s, TRIM, 43, (1 << 20) + 16384, 4096)
    e3 = reply(s)[0]
    req(s, FLUSH, 44, 0, 0)
    e4 = reply(s)[0]
    req(s, READ, 45, 1 << 20, 16384 + 4096 + 4096)
    e5, _, d = reply(s, 24576)
    good = e1 == e2 == e3 == e4 == e5 == 0 and d[:16384] == b"\0" * 16384 and d[20480:] == b"\xaa" * 4096
    result("write-zeroes (with and without NO_HOLE), trim and flush", good, "%d %d %d %d %d" % (e1, e2, e3, e4, e5))


def t_pipelined():
    n = 64
    blobs = {}
    for i in range(n):
        blobs[1000 + i] = os.urandom(4096)
        req(s, WRITE, 1000 + i, (4 << 20) + i * 4096, 4096, payload=blobs[1000 + i])
    got = set()
    for i in range(n):
        err, cookie, _ = reply(s)
        if err == 0:
            got.add(cookie)
    req(s, READ, 2000, 4 << 20, n * 4096)
    err, _, d = reply(s, n * 4096)
    want = b"".join(blobs[1000 + i] for i in range(n))
    result("64 pipelined writes all acknowledged by cookie and read back", got == set(blobs) and d == want,
           "acked %d" % len(got))


def t_pipelined_large():
    # 24 writes of 8 MiB sent before any reply is read: 192 MiB, more than
    # a connection's buffer budget (CONN_BUF_MAX, 128 MiB). The disk stalls
    # them (NBDRAW_FAULTS, a DIPOLE_FAULTS file) for 3 s, so the server
    # holds 16 and must stop reading until they are answered: the sending
    # cannot end before the stall is lifted. Then every write lands.
    import threading
    n, size, base = 24, 8 << 20, 16 << 20
    faults = os.environ.get("NBDRAW_FAULTS")
    lifted = threading.Event()
    def lift():
        open(faults, "w").close()
        lifted.set()
    if faults:
        with open(faults, "w") as f:
            f.write("stall write %d %d\n" % (base, n * size))
        timer = threading.Timer(3.0, lift)
        timer.start()
    for i in range(n):
        req(s, WRITE, 3000 + i, base + i * size, size, payload=bytes([i + 1]) * size)
    held = lifted.is_set()
    errs = [reply(s) for _ in range(n)]
    good = sorted(c for e, c, _ in errs if e == 0) == list(range(3000, 3000 + n))
    for i in range(n):
        req(s, READ, 4000 + i, base + i * size, size)
        err, _, d = reply(s, size)
        good = good and err == 0 and d == bytes([i + 1]) * size
    if faults:
        timer.join()
        result("the server stops taking large writes at its buffer budget (the sending waited for the stall)",
               held)
    result("24 pipelined 8 MiB writes (beyond the connection's buffer budget) acknowledged and read back",
           good, repr([e for e, _, _ in errs]))


def t_bad_magic():
    s2, _, _, _ = go()
    s2.sendall(struct.pack(">IHHQQI", 0xDEADBEEF, 0, READ, 1, 0, 512))
    result("bad request magic closes that connection", closed(s2))
    req(s, READ, 50, 0, 512)
    result("other connections keep working", reply(s, 512)[0] == 0)


def t_mid_write_disconnect():
    off = 8 << 20
    req(s, WRITE, 60, off, 8192, payload=b"\x11" * 8192)
    reply(s)
    s2, _, _, _ = go()
    s2.sendall(struct.pack(">IHHQQI", REQ_MAGIC, 0, WRITE, 61, off, 8192) + b"\x22" * 3000)
    s2.close()
    s3, _, _, _ = go()
    req(s3, READ, 62, off, 8192)
    err, _, d = reply(s3, 8192)
    req(s3, DISC, 63, 0, 0)
    result("a write cut off mid-payload is not applied", err == 0 and d == b"\x11" * 8192, "err %d" % err)


def t_handshake_abuse():
    g = raw()
    recvn(g, 18)
    g.sendall(os.urandom(64))
    result("garbage after the greeting closes the connection", closed(g))
    g = raw()
    recvn(g, 18)
    g.sendall(struct.pack(">I", 3) + struct.pack(">QII", IHAVEOPT, 7, 1 << 30))
    result("oversized option length closes the connection", closed(g))
    g = raw()
    recvn(g, 18)
    g.sendall(struct.pack(">I", 3))
    opt(g, 7, struct.pack(">I", 4) + b"nope" + struct.pack(">H", 0))
    reps = opt_replies(g)
    result("GO for an unknown export gets NBD_REP_ERR_UNKNOWN", reps[-1][0] == 0x80000006, repr(reps))
    opt(g, 3)
    reps = opt_replies(g)
    names = [d[4:4 + struct.unpack(">I", d[:4])[0]].decode() for t, d in reps if t == 2]
    result("LIST names the export", names == [EXPORT], repr(names))
    opt(g, 8)
    reps = opt_replies(g)
    result("structured replies are declined, not misunderstood", reps[-1][0] == 0x80000001, repr(reps))
    opt(g, 2)
    reps = opt_replies(g)
    result("ABORT is acknowledged", reps[-1][0] == 1, repr(reps))
    g.close()
    g = raw()
    g.close()
    result("a client that connects and leaves is harmless", True)


for name, fn in [("bounds", t_bounds), ("zero-length", t_zero_len_and_unknown), ("misaligned", t_misaligned),
                 ("trim", t_trim_zeroes_flush), ("pipelined", t_pipelined), ("pipelined-large", t_pipelined_large), ("bad-magic", t_bad_magic),
                 ("mid-write", t_mid_write_disconnect), ("handshake", t_handshake_abuse)]:
    check(name, fn)

req(s, DISC, 99, 0, 0)
result("clean NBD_CMD_DISC closes the connection", closed(s))
sys.exit(1 if failures else 0)
