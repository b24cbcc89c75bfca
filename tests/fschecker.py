#!/usr/bin/env python3
"""fschecker — dipolefs's fault checker (issue 14 item 6), tests/checker.py
one level up.

Workers on both nodes' mounts (a = owner, b = client) create, write,
overwrite, append, rename, truncate and unlink files and run SQLite
transactions, each in a directory of its own, and journal what was
acknowledged (fsync/fdatasync returned, COMMIT returned) in $T, outside the
mounts. Every 4 KiB chunk a worker writes says which file (fid: worker and
the sequence number of its create), which generation (the sequence number
of the write) and which chunk index it is, with a crc, so a wrong, stale,
misplaced or torn chunk is named exactly. Meanwhile a nemesis kills -9 and
restarts b's daemon (and remounts), cuts and heals the link between the
namespaces, and kills -9 workers mid-operation. At the end the owner loses
power (its link cut, its FUSE connections aborted, its daemon killed with
a volatile disk cache), b is promoted by hand (`dipole primary`, `dipole
mount`: ext4's journal replays) and everything acknowledged through either
node must be there; then a comes back as b's sync target, both unmount and
demote, and both replicas must pass `fsck.ext4 -fn` and be byte-identical.

An operation that failed or whose worker died is not acknowledged: the
model allows both its outcomes (as tests/checker.py does for block writes),
so the check is: every name, file, chunk and row holds the result of its
last acknowledged operation or of one issued after it.

usage: fschecker.py [--seed N]    (environment from tests/integ/fschecker.sh:
           T NS_A NS_B VETH_A VETH_B DIPOLE CFG MA MB; FSCHECK_SECONDS,
           FSCHECK_WORKERS per node, FSCHECK_BREAK=stale-promote: promote
           b although it missed acknowledged writes, which must be caught)
       fschecker.py --worker DIR NAME JOURNAL SEED   (one worker)

Prints the seed first; FSCHECK_SEED=N or --seed N replays the nemesis
schedule and each worker's choices (timing still differs run to run).
"""
import errno, hashlib, json, os, random, re, signal, sqlite3, struct, subprocess, sys, time, zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dataarea  # noqa: E402
import ctypes  # noqa: E402

LIBC = ctypes.CDLL(None, use_errno=True)

CH = 4096
MAGIC = b"DPFC"
HEAD = struct.Struct(">4s8sQQQ")   # magic, worker, create seq, generation, chunk index


def chunk(fid, gen, idx):
    w, cseq = fid
    head = HEAD.pack(MAGIC, w.encode().ljust(8, b"\0"), cseq, gen, idx)
    body = hashlib.blake2b(head, digest_size=64).digest() * (CH // 64)
    b = head + body[:CH - len(head) - 4]
    return b + struct.pack(">I", zlib.crc32(b))


def parse(b):
    """(fid, gen, idx) of a chunk we wrote, None for zeros (a hole), or raise."""
    if b == bytes(len(b)):
        return None
    if len(b) != CH or b[:4] != MAGIC or struct.unpack(">I", b[-4:])[0] != zlib.crc32(b[:-4]):
        raise ValueError("torn or foreign chunk")
    _, w, cseq, gen, idx = HEAD.unpack(b[:HEAD.size])
    return (w.rstrip(b"\0").decode(), cseq), gen, idx


# ------------------------------------------------------------------ worker
class Worker:
    """One process: a loop of operations in DIR (subdirectories d0, d1 and
    db.sqlite), each journaled as an intent line before it starts and an
    ack line once its fsync or COMMIT returned."""

    def __init__(self, top, name, journal, seed):
        self.top, self.name = top, name
        self.seq = 0
        try:
            for line in open(journal):
                if line.endswith("\n"):
                    self.seq = max(self.seq, json.loads(line)["s"])
        except OSError:
            pass
        self.jfd = os.open(journal, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        # a restarted worker continues the sequence with its own choices
        self.rng = random.Random("%s/%s/%d" % (seed, name, self.seq))

    def log(self, rec):
        os.write(self.jfd, (json.dumps(rec, separators=(",", ":")) + "\n").encode())

    def files(self):
        out = []   # an error (ENOTCONN...) propagates: no operation on a list we could not read
        for d in ("d0", "d1"):
            out += ["%s/%s" % (d, n) for n in os.listdir("%s/%s" % (self.top, d)) if re.fullmatch(r"f\d+", n)]
        return sorted(out)

    def fsync_dir(self, d):
        fd = os.open("%s/%s" % (self.top, d), os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def op(self, kind, rec, fn):
        self.seq += 1
        rec.update(s=self.seq, op=kind)
        self.log(rec)
        fn(self.seq)
        self.log({"s": self.seq, "a": 1})

    def fid_of(self, fd):
        r = parse(os.pread(fd, CH, 0))
        if r is None:
            raise OSError(errno.ENODATA, "no chunk 0")
        return r[0]

    def step(self):
        files = self.files()
        r = self.rng.random()
        if len(files) < 3 or (r < 0.15 and len(files) < 40):
            d, n = self.rng.choice(("d0", "d1")), self.rng.randint(1, 8)
            path = "%s/f%d" % (d, self.seq + 1)

            def create(s):
                fd = os.open("%s/%s" % (self.top, path), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                try:
                    os.write(fd, b"".join(chunk((self.name, s), s, i) for i in range(n)))
                    os.fsync(fd)
                finally:
                    os.close(fd)
                self.fsync_dir(d)
            return self.op("create", {"name": path, "n": n}, create)
        if r < 0.30:
            return self.op("sql", {}, self.sql)
        path = self.rng.choice(files)
        full = "%s/%s" % (self.top, path)
        if r < 0.45:   # overwrite a range, fdatasync
            fd = os.open(full, os.O_RDWR)
            try:
                fid, size = self.fid_of(fd), os.fstat(fd).st_size // CH
                off = self.rng.randrange(max(size, 1))
                n = self.rng.randint(1, max(1, min(4, size - off)))

                def overwrite(s):
                    os.pwrite(fd, b"".join(chunk(fid, s, off + i) for i in range(n)), off * CH)
                    os.fdatasync(fd)
                self.op("write", {"fid": fid, "off": off, "n": n}, overwrite)
            finally:
                os.close(fd)
        elif r < 0.58:   # append with O_APPEND, fsync
            fd = os.open(full, os.O_RDWR | os.O_APPEND)
            try:
                fid, size = self.fid_of(fd), os.fstat(fd).st_size
                if size % CH or size >= 64 * CH:
                    return
                n = self.rng.randint(1, 4)

                def append(s):
                    os.write(fd, b"".join(chunk(fid, s, size // CH + i) for i in range(n)))
                    os.fsync(fd)
                self.op("write", {"fid": fid, "off": size // CH, "n": n, "append": 1}, append)
            finally:
                os.close(fd)
        elif r < 0.68:   # truncate (mostly shorter, never below one chunk), fsync
            fd = os.open(full, os.O_RDWR)
            try:
                fid, size = self.fid_of(fd), os.fstat(fd).st_size // CH
                to = self.rng.randint(1, size + 2)

                def trunc(s):
                    os.ftruncate(fd, to * CH)
                    os.fsync(fd)
                self.op("truncate", {"fid": fid, "to": to}, trunc)
            finally:
                os.close(fd)
        elif r < 0.88:   # rename: within a directory, across, or over an existing name
            d = path.split("/")[0]
            k = self.rng.random()
            others = [f for f in files if f != path]
            if k < 0.35 and others:
                dst = self.rng.choice(others)
            else:
                dd = d if k < 0.7 else ("d1" if d == "d0" else "d0")
                dst = "%s/f%d" % (dd, self.seq + 1)

            def rename(s):
                os.rename(full, "%s/%s" % (self.top, dst))
                self.fsync_dir(d)
                if dst.split("/")[0] != d:
                    self.fsync_dir(dst.split("/")[0])
            self.op("rename", {"src": path, "dst": dst}, rename)
        elif len(files) > 6:
            def unlink(s):
                os.unlink(full)
                self.fsync_dir(path.split("/")[0])
            self.op("unlink", {"name": path}, unlink)

    def sql(self, s):
        db = sqlite3.connect("%s/db.sqlite" % self.top, timeout=30, isolation_level=None)
        try:
            # EXTRA: FULL does not sync the directory after the journal's unlink, so
            # a power cut may roll back a COMMIT that returned (SQLite's docs)
            db.execute("PRAGMA synchronous=EXTRA")
            db.execute("BEGIN IMMEDIATE")
            db.execute("INSERT INTO t VALUES (?, ?)", (s, "%s:%d" % (self.name, s)))
            db.execute("COMMIT")
        finally:
            db.close()

    def run(self):
        while True:
            try:
                # never makedirs: the checker made self.top on the mount; if the
                # mount is gone (the owner's power cut: lazily unmounted), the path
                # names the host's bare mountpoint and nothing may be made there
                for d in ("d0", "d1"):
                    try:
                        os.mkdir("%s/%s" % (self.top, d))
                    except FileExistsError:
                        pass
                db = sqlite3.connect("%s/db.sqlite" % self.top, timeout=30, isolation_level=None)
                db.execute("PRAGMA journal_mode=DELETE")
                db.execute("CREATE TABLE IF NOT EXISTS t(seq INTEGER PRIMARY KEY, v TEXT NOT NULL)")
                db.close()
                break
            except (OSError, sqlite3.Error):
                time.sleep(0.2)
        while True:
            try:
                self.step()
            except (OSError, sqlite3.Error):
                # ENOTCONN, EIO, EINTR, EBADF... during a fault: not acknowledged
                time.sleep(0.05)


# ------------------------------------------------------------------ the model
class Model:
    """What may be found, from one worker's journal: for every name the set
    of fids it may hold (None: no file), for every fid's chunk the set of
    generations it may hold (None: no data), the rows that must and may be
    in its database. An acknowledged operation replaces a set by its result;
    an unacknowledged one adds its result to it."""

    def __init__(self, wname, journal):
        self.w = wname
        self.names = {}
        self.chunks = {}
        self.created_acked = set()
        self.maybe_gone = set()
        self.rows_acked, self.rows_issued = set(), set()
        self.counts = {}
        recs, acked = [], set()
        for line in open(journal):
            if not line.endswith("\n"):
                continue    # a worker killed mid-line
            r = json.loads(line)
            if "a" in r:
                acked.add(r["s"])
            else:
                recs.append(r)
        for r in recs:
            self.apply(r, r["s"] in acked)
            k = r["op"] + ("" if r["s"] in acked else "?")
            self.counts[k] = self.counts.get(k, 0) + 1

    def poss(self, name):
        return self.names.setdefault(name, {None})

    def set_chunks(self, fid, lo, hi, val, ack):
        cs = self.chunks.setdefault(fid, {})
        for c in range(lo, hi):
            if ack:
                cs[c] = {val}
            else:
                cs.setdefault(c, {None}).add(val)

    def apply(self, r, ack):
        s, op = r["s"], r["op"]
        if op == "create":
            fid = (self.w, s)
            self.set_chunks(fid, 0, r["n"], s, ack)
            if ack:
                self.names[r["name"]] = {fid}
                self.created_acked.add(fid)
            else:
                self.poss(r["name"]).add(fid)
        elif op == "write":
            self.set_chunks(tuple(r["fid"]), r["off"], r["off"] + r["n"], s, ack)
        elif op == "truncate":
            fid = tuple(r["fid"])
            cs = self.chunks.setdefault(fid, {})
            self.set_chunks(fid, r["to"], max([r["to"]] + [c + 1 for c in cs]), None, ack)
        elif op == "rename":
            movers = self.poss(r["src"]) - {None}
            over = self.poss(r["dst"]) - {None} - movers
            self.maybe_gone |= over
            if ack:
                self.names[r["dst"]] = movers or {None}
                self.names[r["src"]] = {None}
            else:
                self.poss(r["dst"]).update(movers)
                self.poss(r["src"]).add(None)
        elif op == "unlink":
            self.maybe_gone |= self.poss(r["name"]) - {None}
            if ack:
                self.names[r["name"]] = {None}
            else:
                self.poss(r["name"]).add(None)
        elif op == "sql":
            self.rows_issued.add(s)
            if ack:
                self.rows_acked.add(s)

    def check(self, top):
        """Problems found in the worker's directory TOP (a list of strings)."""
        bad, seen = [], {}
        found = {}
        for d in ("d0", "d1"):
            try:
                for n in os.listdir("%s/%s" % (top, d)):
                    if re.fullmatch(r"f\d+", n):
                        found["%s/%s" % (d, n)] = True
            except OSError as e:
                bad.append("%s/%s: %s" % (self.w, d, e))
        fmt = lambda f: "%s:%d" % f if f else "none"
        for name in sorted(set(found) | {n for n, p in self.names.items() if p != {None}}):
            want = self.poss(name)
            if name not in found:
                if None not in want:
                    bad.append("%s/%s: acknowledged file (%s) missing" % (self.w, name, ",".join(map(fmt, want))))
                continue
            try:
                data = open("%s/%s" % (top, name), "rb").read()
            except OSError as e:
                bad.append("%s/%s: unreadable: %s" % (self.w, name, e))
                continue
            try:
                first = parse(data[:CH]) if data else None
            except ValueError as e:
                bad.append("%s/%s chunk 0: %s" % (self.w, name, e))
                continue
            if first is None:   # no chunk 0: only a create that was not acknowledged
                if not any(f and f not in self.created_acked for f in want):
                    bad.append("%s/%s: holds no chunk 0, expected %s" % (self.w, name, ",".join(map(fmt, want))))
                continue
            fid = first[0]
            if fid not in want:
                bad.append("%s/%s: holds file %s, expected %s" % (self.w, name, fmt(fid), ",".join(map(fmt, want))))
            if fid in seen:
                bad.append("%s/%s: file %s also at %s" % (self.w, name, fmt(fid), seen[fid]))
            seen[fid] = name
            bad += self.check_data(name, fid, data)
        for fid in sorted(self.created_acked - self.maybe_gone - set(seen)):
            bad.append("%s: acknowledged file %s lost (no name holds it)" % (self.w, fmt(fid)))
        bad += self.check_db(top)
        return bad

    def check_data(self, name, fid, data):
        bad = []
        if len(data) % CH:
            bad.append("%s/%s: size %d is not a multiple of %d" % (self.w, name, len(data), CH))
        cs = self.chunks.get(fid, {})
        for c in range(max([len(data) // CH] + [k + 1 for k in cs])):
            b = data[c * CH:(c + 1) * CH]
            try:
                got = parse(b) if b else None
            except ValueError as e:
                bad.append("%s/%s chunk %d: %s" % (self.w, name, c, e))
                continue
            if got is not None and (got[0] != fid or got[2] != c):
                bad.append("%s/%s chunk %d: holds chunk %d of file %s:%d gen %d" % (
                    self.w, name, c, got[2], got[0][0], got[0][1], got[1]))
                continue
            gen = got[1] if got else None
            want = cs.get(c, {None})
            if gen not in want:
                bad.append("%s/%s chunk %d: holds %s, expected %s" % (
                    self.w, name, c, "gen %d" % gen if gen else "no data",
                    ",".join("gen %d" % g if g else "no data" for g in sorted(want, key=lambda g: g or 0))))
        return bad

    def check_db(self, top):
        if not self.rows_issued:
            return []
        try:
            # read-write: a hot journal left by a killed worker is rolled back
            db = sqlite3.connect("%s/db.sqlite" % top, timeout=30)
            ic = db.execute("PRAGMA integrity_check").fetchall()
            rows = dict(db.execute("SELECT seq, v FROM t").fetchall())
            db.close()
        except sqlite3.Error as e:
            return ["%s/db.sqlite: %s" % (self.w, e)]
        bad = [] if ic == [("ok",)] else ["%s/db.sqlite: integrity_check: %s" % (self.w, ic[:3])]
        lost = sorted(self.rows_acked - set(rows))
        if lost:
            bad.append("%s/db.sqlite: %d committed rows lost, first seq %s" % (self.w, len(lost), lost[:5]))
        extra = sorted(set(rows) - self.rows_issued)
        if extra:
            bad.append("%s/db.sqlite: rows never inserted: %s" % (self.w, extra[:5]))
        wrong = [s for s, v in rows.items() if v != "%s:%d" % (self.w, s)]
        if wrong:
            bad.append("%s/db.sqlite: rows with wrong values: %s" % (self.w, wrong[:5]))
        return bad


# ------------------------------------------------------------------ nodes
def env(k, d=None):
    v = os.environ.get(k, d)
    if v is None:
        sys.exit("fschecker: %s not set (run tests/integ/fschecker.sh)" % k)
    return v


failures = 0


def say(good, what):
    global failures
    print(("ok" if good else "not ok") + " - fschecker: " + what, flush=True)
    failures += 0 if good else 1


def note(what):
    print("# " + what, flush=True)


class Cluster:
    def __init__(self):
        self.T = env("T")
        self.ns = {"a": env("NS_A"), "b": env("NS_B")}
        self.veth = {"a": env("VETH_A"), "b": env("VETH_B")}
        self.dipole, self.cfg = env("DIPOLE"), env("CFG")
        self.mnt = {"a": env("MA"), "b": env("MB")}

    def faults(self, n):
        return "%s/faults.%s" % (self.T, n)

    def dp(self, n, *args, timeout=120):
        cmd = ["nsenter", "--net=/run/netns/" + self.ns[n], self.dipole, "-c", self.cfg, "--node", n,
               "--run-dir", "%s/r%s" % (self.T, n)] + list(args)
        try:
            p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout,
                               env=dict(os.environ, DIPOLE_FAULTS=self.faults(n)))
            return p.returncode, p.stdout.decode(errors="replace")
        except subprocess.TimeoutExpired:
            return 124, "timed out: %s" % " ".join(args)

    def status(self, n):
        rc, out = self.dp(n, "status", "r0", "--json", timeout=20)
        try:
            o = json.loads(out)
            return o, (o["peers"][0] if o["peers"] else {})
        except (ValueError, KeyError, IndexError, TypeError):
            return None, {}

    def pid(self, n):
        try:
            return int(open("%s/r%s/r0.pid" % (self.T, n)).read())
        except (OSError, ValueError):
            return None

    def alive(self, n):
        pid = self.pid(n)
        try:
            with open("/proc/%d/stat" % pid) as f:
                return f.read().rsplit(")", 1)[1].split()[0] not in "ZX"
        except (OSError, IndexError, TypeError):
            return False

    def netcut(self, n, cut):
        for chain, flag in (("INPUT", "-i"), ("OUTPUT", "-o")):
            subprocess.run(["ip", "netns", "exec", self.ns[n], "iptables", "-I" if cut else "-D", chain, flag,
                            self.veth[n], "-j", "DROP"], stderr=subprocess.DEVNULL)

    def abort_fuse(self, n):
        """Abort every FUSE connection of node n (its dipolefs mount and the
        file its loop device sits on), then detach the mounts."""
        paths = (self.mnt[n], "%s/r%s/" % (self.T, n))
        mounts = []
        for line in open("/proc/self/mountinfo"):
            f = line.split()
            fstype = f[f.index("-") + 1]
            if fstype.startswith("fuse") and (f[4] == paths[0] or f[4].startswith(paths[1])):
                mounts.append(f[4])
                try:
                    with open("/sys/fs/fuse/connections/%s/abort" % f[2].split(":")[1], "w") as a:
                        a.write("1")
                except OSError:
                    pass
        for m in mounts:   # (MNT_FORCE: FUSE's umount_begin aborts the connection too)
            LIBC.umount2(m.encode(), 1)
            subprocess.run(["umount", "-l", m], stderr=subprocess.DEVNULL)

    def wait(self, cond, secs):
        end = time.monotonic() + secs
        while time.monotonic() < end:
            if cond():
                return True
            time.sleep(0.2)
        return False

    def mounted(self, n):
        return any(l.split()[1] == self.mnt[n] for l in open("/proc/mounts"))

    def in_sync(self, n):
        o, p = self.status(n)
        return bool(o) and o.get("disk") == "UpToDate" and p.get("connection") == "Connected" \
            and p.get("replication") == "Established" and p.get("out_of_sync_bytes") == 0 \
            and p.get("disk") == "UpToDate"

    def mount_client(self, n):
        """Mount n's dipolefs, retrying while its replication link comes up."""
        last = ""
        end = time.monotonic() + 60
        while time.monotonic() < end:
            rc, last = self.dp(n, "mount", "r0", self.mnt[n])
            if rc == 0:
                return True, last
            time.sleep(0.5)
        return False, last


# ------------------------------------------------------------------ workers
class Workers:
    def __init__(self, cl, seed, per_node):
        self.cl, self.seed = cl, seed
        self.names = ["%s%d" % (n, i) for n in "ab" for i in range(per_node)]
        self.procs = {}
        self.kills = 0

    def journal(self, w):
        return "%s/journal.%s" % (self.cl.T, w)

    def start(self, w):
        self.procs[w] = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--worker", "%s/%s" % (self.cl.mnt[w[0]], w), w,
             self.journal(w), str(self.seed)], stdout=subprocess.DEVNULL, stderr=open("%s/worker.%s.err" % (self.cl.T, w), "a"))
        with open("%s/bg.pids" % self.cl.T, "a") as f:
            f.write("%d\n" % self.procs[w].pid)

    def kill(self, w):
        p = self.procs.pop(w, None)
        if p:
            p.kill()
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                note("worker %s (pid %d) did not die within 30 s of SIGKILL" % (w, p.pid))

    def stop_all(self):
        for w in list(self.procs):
            self.kill(w)


class Nemesis:
    def __init__(self, cl, wk, rng):
        self.cl, self.wk, self.rng = cl, wk, rng
        self.cut = False
        self.log = []
        self.faults = 0

    def restart_client(self):
        cl = self.cl
        cl.abort_fuse("b")
        rc, out = cl.dp("b", "up", "r0")
        if rc:
            say(False, "b's daemon restarts after kill -9: %s" % out.strip())
            return False
        ok, out = cl.mount_client("b")
        if not ok:
            say(False, "b remounts as a client after its daemon's restart: %s" % out.strip())
        return ok

    def step(self):
        cl, rng = self.cl, self.rng
        if self.cut:
            act = "heal-link"
        else:
            act = rng.choice(["kill-worker"] * 3 + ["kill-client"] * 2 + ["cut-link"] * 2)
        self.log.append(act)
        note("nemesis: %s" % act)
        if act == "kill-worker":
            w = rng.choice(self.wk.names)
            self.log[-1] += "@" + w
            self.wk.kill(w)
            self.wk.start(w)
            self.wk.kills += 1
        elif act == "kill-client":
            os.kill(cl.pid("b"), signal.SIGKILL)
            cl.wait(lambda: not cl.alive("b"), 10)
            time.sleep(rng.uniform(0.2, 2))
            self.restart_client()
        elif act == "cut-link":
            cl.netcut("b", True)
            self.cut = True
        elif act == "heal-link":
            cl.netcut("b", False)
            self.cut = False
        self.faults += act != "heal-link"

    def settle(self):
        """Heal, restart what is down, wait until b is in sync with a."""
        cl = self.cl
        if self.cut:
            cl.netcut("b", False)
            self.cut = False
        if not cl.alive("b"):
            self.restart_client()
        if not cl.mounted("b"):
            cl.mount_client("b")
        return cl.wait(lambda: cl.in_sync("a") and cl.in_sync("b"), 120)


def final_owner_check(cl, wk, tag):
    """Every worker's model against what the mount of the current owner shows."""
    bad, counts = [], {}
    for w in wk.names:
        top = "%s/%s" % (cl.mnt["b"], w)
        if os.path.exists(top + "/db.sqlite-journal"):   # rolled back by the check's open
            note("%s: a hot journal, %d bytes, is there after the power cut" % (w, os.path.getsize(top + "/db.sqlite-journal")))
        m = Model(w, wk.journal(w))
        for k, v in m.counts.items():
            counts[k] = counts.get(k, 0) + v
        bad += m.check("%s/%s" % (cl.mnt["b"], w))
    acked = sum(v for k, v in counts.items() if not k.endswith("?"))
    say(not bad, "%s: every acknowledged file, name, chunk and row is there (%d problems)" % (tag, len(bad)))
    for b in bad[:20]:
        note("  " + b)
    return counts, acked


def fsck_replicas(cl, nodes):
    """fsck.ext4 -fn of each node's loop device (every node Secondary)."""
    for n in nodes:
        o, _ = cl.status(n)
        loop = (o or {}).get("exports", {}).get("loop")
        p = subprocess.run(["fsck.ext4", "-fn", loop or "/nonexistent"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        say(p.returncode == 0, "fsck.ext4 -fn of %s's replica (%s) is clean" % (n, loop))
        if p.returncode:
            for l in p.stdout.decode(errors="replace").splitlines()[:15]:
                note("  " + l)


def replicas_identical(cl):
    """The data areas of a's and b's backing files ($T/a.img, $T/b.img) match."""
    o, _ = cl.status("a")
    size = (o or {}).get("size_bytes", 0)
    sums = [dataarea.md5("%s/%s.img" % (cl.T, n), size) for n in "ab"]
    say(size > 0 and sums[0] == sums[1], "replicas byte-identical (%s)" % " ".join(sums))


def run_params(default_secs):
    """(seed, seconds, workers per node): FSCHECK_SEED or --seed N (else a
    random one), FSCHECK_SECONDS, FSCHECK_WORKERS."""
    seed = int(os.environ.get("FSCHECK_SEED") or random.randrange(1 << 30))
    if "--seed" in sys.argv:
        seed = int(sys.argv[sys.argv.index("--seed") + 1])
    return seed, float(os.environ.get("FSCHECK_SECONDS", default_secs)), int(os.environ.get("FSCHECK_WORKERS", "2"))


def main():
    seed, secs, per_node = run_params(60)
    brk = os.environ.get("FSCHECK_BREAK", "")
    print("# fschecker: FSCHECK_SEED=%d FSCHECK_SECONDS=%g workers=%d per node%s" %
          (seed, secs, per_node, " FSCHECK_BREAK=" + brk if brk else ""), flush=True)
    rng = random.Random(seed)
    cl = Cluster()
    wk = Workers(cl, seed, per_node)
    nem = Nemesis(cl, wk, rng)
    for w in wk.names:   # made from one node: two nodes changing one directory at once can stall (docs)
        os.makedirs("%s/%s" % (cl.mnt["a"], w), exist_ok=True)
    for w in wk.names:
        wk.start(w)
    end = time.monotonic() + secs
    while time.monotonic() < end:
        time.sleep(rng.uniform(1.5, 4.0))
        nem.step()
    settled = nem.settle()
    say(settled, "after healing and restarting, b is mounted, Connected, UpToDate, in sync")
    if brk == "stale-promote":
        # broken on purpose: b misses what a acknowledges from now on
        cl.netcut("b", True)
        cl.wait(lambda: cl.status("a")[1].get("connection") != "Connected", 20)
        time.sleep(3)

    # ---- the owner's power cut, workers still running
    note("power cut of a (owner)")
    cl.netcut("a", True)
    cl.abort_fuse("a")
    os.kill(cl.pid("a"), signal.SIGKILL)
    time.sleep(1)
    wk.stop_all()
    say(cl.wait(lambda: not cl.alive("a"), 30), "a's daemon is gone after kill -9")
    if brk == "stale-promote":
        cl.netcut("b", False)
    rc, out = cl.dp("b", "umount", cl.mnt["b"])
    if rc:
        note("b's client umount: %s" % out.strip())
        subprocess.run(["umount", "-l", cl.mnt["b"]], stderr=subprocess.DEVNULL)
    say(cl.wait(lambda: cl.status("b")[1].get("connection") != "Connected", 30), "b sees a gone")
    rc, out = cl.dp("b", "primary", "r0", *(["--force"] if brk == "stale-promote" else []))
    say(rc == 0, "b promoted by hand (dipole primary): %s" % out.strip().replace("\n", " "))
    rc, out = cl.dp("b", "mount", "r0", cl.mnt["b"])
    say(rc == 0 and "owner" in out, "b mounts as owner, ext4's journal replays: %s" % out.strip().replace("\n", " "))
    counts, acked = final_owner_check(cl, wk, "after a's power cut, on b")
    say(acked > 0 and nem.faults > 0, "%d operations acknowledged through %d faults (%s); outcomes: %s" % (
        acked, nem.faults, " ".join(nem.log), " ".join("%s=%d" % kv for kv in sorted(counts.items()))))

    # ---- a comes back as b's sync target; both unmount and demote
    open(cl.faults("a"), "w").close()
    cl.netcut("a", False)
    # the killed daemon may linger as a zombie holding its files (and the
    # resource's lock) while a thread of it leaves the kernel filesystem
    # it owned; a power cut leaves no such process: wait until it is gone,
    # aborting its FUSE connections again meanwhile
    old = cl.pid("a")

    def old_gone():
        cl.abort_fuse("a")
        return old is None or not os.path.exists("/proc/%d" % old)
    if not cl.wait(old_gone, 30):
        note("a's killed daemon (pid %d) still exists 30 s after its power cut" % old)
    rc, out = cl.dp("a", "up", "r0")
    say(rc == 0, "a comes back after its power cut: %s" % out.strip().replace("\n", " "))
    synced = cl.wait(lambda: cl.in_sync("b") and cl.status("a")[0] and cl.status("a")[0].get("disk") == "UpToDate", 120)
    say(synced, "a resyncs from b: both UpToDate, nothing out of sync")
    rc, out = cl.dp("b", "umount", cl.mnt["b"])
    say(rc == 0, "b unmounts")
    rc, out = cl.dp("b", "secondary", "r0")
    say(rc == 0, "b demotes: both Secondary %s" % out.strip())
    fsck_replicas(cl, "ab")
    replicas_identical(cl)
    print("# fschecker: %d failed checks, seed %d: reproduce with FSCHECK_SEED=%d" % (failures, seed, seed), flush=True)
    return failures


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        Worker(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]).run()
    else:
        sys.exit(1 if main() else 0)
