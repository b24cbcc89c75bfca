#!/usr/bin/env python3
"""checker — dipole's fault-injection correctness checker.

Writes unique, self-identifying 4 KiB blocks through the Primary's NBD export
with many writes in flight and records every acknowledged write, while a
nemesis crashes nodes (link cut, then SIGKILL: a power cut) and restarts them, fails over to the survivor,
partitions and heals the link and drops packets at random. At the end every
block must hold its last acknowledged write (or a later write whose outcome
was unknown when its connection died), and the two backing disks must be
byte-identical after the resync.

usage: checker.py   (everything comes from the environment, set by
                     tests/integ/checker.sh: T NS_A NS_B VETH_A VETH_B DIPOLE CFG_A CFG_B,
                     CHECK_SEED, CHECK_SECONDS; for three nodes also NS_C CFG_C
                     and LINKS "x:y:ifx:ify,...": the interface of each link
                     in each node's namespace)

With three nodes (c a diskless tiebreaker, quorum majority) the nemesis also
cuts single links, kills and restarts the tiebreaker, and a failover is
refused while the survivor has no quorum (it is retried later).

With DISKS3=1 all three nodes have disks (quorum majority): the nemesis cuts
links, power-cuts and restarts any node, fails the Primary over to either
survivor (refused until it has quorum and has compared with the third),
hands the Primary over cleanly (demote, promote another: "switchover", which
must cost no write and, between in-sync Secondaries, no resync), and fails a
Secondary's disk; at the end all three disks must be identical.

Prints "ok - checker: ..." / "not ok - checker: ..." lines and, first, the
seed: CHECK_SEED=<seed> reproduces the same nemesis schedule.
To study a failure: CHECK_KEEP=DIR copies the run directory (disks, logs)
there; CHECK_TRACE=FILE writes one line per acknowledged write ("TIME ack
SEQ BLOCK PRIMARY") and, at the end, one per lost one ("lost BLOCK WANTED
holds SEQ"), to line the losses up with the logs by time.
"""
import asyncio, hashlib, json, os, random, struct, sys, time, zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dataarea  # noqa: E402

T, NS_A, NS_B = os.environ["T"], os.environ["NS_A"], os.environ["NS_B"]
VETH_A, VETH_B = os.environ["VETH_A"], os.environ["VETH_B"]
DIPOLE = os.environ["DIPOLE"]
CFG = {"a": os.environ["CFG_A"], "b": os.environ["CFG_B"]}
SEED = int(os.environ.get("CHECK_SEED") or random.randrange(1 << 30))
SECONDS = float(os.environ.get("CHECK_SECONDS", "60"))
BLOCKS = int(os.environ.get("CHECK_BLOCKS", "0"))   # default: the whole device
INFLIGHT = 16
# writes per second at most: a node writing alone must not overwrite (and so
# re-mark) every block before the other returns, or lost in-flight blocks hide
RATE = float(os.environ.get("CHECK_RATE", "1000"))
BS = 4096
MAGIC = b"DPCK"
NS = {"a": NS_A, "b": NS_B}
VETH = {"a": VETH_A, "b": VETH_B}
THREE = bool(os.environ.get("NS_C"))
DISKS3 = THREE and os.environ.get("DISKS3") == "1"
DISKS = "abc" if DISKS3 else "ab"
if THREE:
    NS["c"] = os.environ["NS_C"]
    CFG["c"] = os.environ["CFG_C"]
# (x, y) -> (interface in x's namespace, interface in y's)
LINKS = {}
for spec in (os.environ.get("LINKS") or "a:b:%s:%s" % (VETH_A, VETH_B)).split(","):
    x, y, ix, iy = spec.split(":")
    LINKS[(x, y)] = (ix, iy)


def ifaces(node):
    """The node's interfaces, one per link."""
    return [i[0] if k[0] == node else i[1] for k, i in LINKS.items() if node in k]
rng = random.Random(SEED)           # the nemesis schedule
wrng = random.Random(SEED + 1)     # the writer's block choice
failures = 0


TRACE = open(os.environ["CHECK_TRACE"], "w", buffering=1) if os.environ.get("CHECK_TRACE") else None


def say(good, what):
    global failures
    print(("ok" if good else "not ok") + " - checker: " + what, flush=True)
    failures += 0 if good else 1


def utc_now():
    """The time as the daemons' logs write it, to find a fault there."""
    t = time.time()
    return time.strftime("%H:%M:%S", time.gmtime(t)) + ".%03dZ" % (t * 1000 % 1000)


def block(idx, seq):
    head = MAGIC + struct.pack(">IQ", idx, seq)
    body = hashlib.blake2b(head, digest_size=64).digest() * ((BS - len(head) - 4) // 64 + 1)
    b = head + body[:BS - len(head) - 4]
    return b + struct.pack(">I", zlib.crc32(b))


def parse(b):
    """(idx, seq) of a block we wrote, (None, 0) for never written, or raise."""
    if b == bytes(BS):
        return None, 0
    if b[:4] != MAGIC or struct.unpack(">I", b[-4:])[0] != zlib.crc32(b[:-4]):
        raise ValueError("torn or foreign block content")
    return struct.unpack(">IQ", b[4:16])


# Refusals of a failover that are right with three nodes, by the words of
# their reason (src/daemon/control.c, src/repl/engine.c, peer.c): without
# quorum the other partition may be writing; an Outdated disk lacks writes
# the dead Primary acknowledged after it lost this node (it went on alone
# with the tiebreaker's record, e.g. when packet loss expired its lease on
# this node) or while this node had no quorum; and the survivor first
# compares data with the third node. Promoting would lose acknowledged
# writes: the Primary is promoted later, once the old one is back and has
# resynced it (a promote step, or settle()). docs/failures.md.
RIGHT_REFUSALS = {
    "no quorum": "no quorum",
    "went on without this node": "Outdated: the old Primary went on without it",
    "quorum lost": "Outdated: it lost quorum",
    "comparing data with": "comparing data with the third node",
}
TRANSIENT = ("comparing data with the third node",)


def refusal_right(out):
    """The short reason of a promotion refusal that is right, or None."""
    return next((why for words, why in RIGHT_REFUSALS.items() if words in out), None)


def print_log(node, words, last=15):
    """The node's daemon log lines holding any of words (the last few)."""
    try:
        lines = [l for l in open("%s/r%s/r0.log" % (T, node)) if any(w in l for w in words)]
    except OSError:
        return
    print("".join("# %s: %s" % (node, l) for l in lines[-last:]), end="", flush=True)


# ------------------------------------------------------------------ nodes
async def run(*cmd, check=False):
    p = await asyncio.create_subprocess_exec(*cmd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await p.communicate()
    if check and p.returncode:
        raise RuntimeError("%s: exit %d: %s" % (" ".join(cmd), p.returncode, out.decode(errors="replace")))
    return p.returncode, out.decode(errors="replace")


def faults_file(node):
    return "%s/faults.%s" % (T, node)


async def dp(node, *args):
    # every daemon reads its disk faults from its own file (DIPOLE_FAULTS)
    return await run("env", "DIPOLE_FAULTS=" + faults_file(node), "nsenter", "--net=/run/netns/" + NS[node], DIPOLE,
                     "-c", CFG[node], "--node", node, "--run-dir", "%s/r%s" % (T, node), *args)


async def status(node):
    rc, out = await dp(node, "status", "r0", "--json")
    try:
        o = json.loads(out)
        return o, (o["peers"][0] if o["peers"] else {})
    except (ValueError, KeyError, IndexError):
        return None, {}


def pid_of(node):
    try:
        return int(open("%s/r%s/r0.pid" % (T, node)).read())
    except (OSError, ValueError):
        return None


def alive(node):
    pid = pid_of(node)
    if not pid:
        return False
    try:  # a killed daemon may linger as a zombie until its parent reaps it
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in "ZX"
    except (OSError, IndexError):
        return False


async def wait(cond, secs):
    end = time.monotonic() + secs
    while time.monotonic() < end:
        if await cond():
            return True
        await asyncio.sleep(0.2)
    return False


# ------------------------------------------------------------------ writer
class Writer:
    def __init__(self):
        self.primary = "a"
        self.seq = 0
        self.acked = {}        # block -> last acknowledged seq
        self.issued = {}       # block -> set of seqs sent (acked or not)
        self.busy = set()      # blocks with a write in flight
        self.n_acked = self.n_unknown = self.n_failed = 0
        self.stop = False
        self.ready = asyncio.Event()
        self.ready.set()

    async def connect(self):
        r, w = await asyncio.open_unix_connection("%s/r%s/r0.nbd" % (T, self.primary))
        hdr = await r.readexactly(18)
        assert hdr[:16] == b"NBDMAGICIHAVEOPT"
        w.write(struct.pack(">I", 3))
        name = b"r0"
        w.write(struct.pack(">QII", 0x49484156454F5054, 7, 4 + len(name) + 2) + struct.pack(">I", len(name)) + name
                + struct.pack(">H", 0))
        while True:
            _, _, typ, ln = struct.unpack(">QIII", await r.readexactly(20))
            await r.readexactly(ln)
            if typ == 1:
                return r, w
            if typ & 0x80000000:
                raise ConnectionError("export refused: %x" % typ)

    async def session(self):
        p0 = self.primary      # a switchover ends the session (nemesis "switchover")
        r, w = await self.connect()
        inflight = {}

        async def reader():
            while inflight or (not self.stop and self.primary == p0 and self.ready.is_set()):
                magic, err, cookie = struct.unpack(">IIQ", await r.readexactly(16))
                blk, seq = inflight.pop(cookie)
                self.busy.discard(blk)
                if err == 0:
                    self.acked[blk] = max(self.acked.get(blk, 0), seq)
                    if TRACE:
                        TRACE.write("%.3f ack %d %d %s\n" % (time.time(), seq, blk, p0))
                    self.n_acked += 1
                else:
                    self.n_failed += 1   # an error: its outcome counts as unknown
        rt = asyncio.ensure_future(reader())
        t0, n0 = time.monotonic(), self.seq
        try:
            while not self.stop and not rt.done() and self.primary == p0 and self.ready.is_set():
                if self.seq - n0 > (time.monotonic() - t0) * RATE:
                    await asyncio.sleep(0.002)
                    continue
                if len(inflight) >= INFLIGHT:
                    await asyncio.sleep(0.0005)
                    continue
                blk = wrng.randrange(BLOCKS)
                if blk in self.busy:
                    continue
                self.seq += 1
                self.busy.add(blk)
                self.issued.setdefault(blk, set()).add(self.seq)
                inflight[self.seq] = (blk, self.seq)
                w.write(struct.pack(">IHHQQI", 0x25609513, 0, 1, self.seq, blk * BS, BS) + block(blk, self.seq))
                await w.drain()
            end = time.monotonic() + 30
            while inflight and not rt.done() and time.monotonic() < end:
                await asyncio.sleep(0.01)
        finally:
            rt.cancel()
            # whatever was in flight has an unknown outcome
            for blk, seq in inflight.values():
                self.busy.discard(blk)
                self.n_unknown += 1
            w.close()

    async def loop(self):
        while not self.stop:
            await self.ready.wait()
            try:
                await self.session()
            except (ConnectionError, asyncio.IncompleteReadError, OSError, asyncio.TimeoutError, AssertionError):
                await asyncio.sleep(0.1)


# ------------------------------------------------------------------ nemesis
class Nemesis:
    def __init__(self, wr):
        self.wr = wr
        self.partitioned = self.lossy = False
        self.cut = set()   # crashed nodes: their link is dead too (a power cut loses socket buffers)
        self.faulty = set()  # nodes whose disk returns I/O errors (they detach and go Diskless)
        self.log = []
        self.faults = 0
        self.links = set()   # three nodes: links cut one by one

    async def ipt(self, add, *rule):
        await run("ip", "netns", "exec", NS_A, "iptables", "-I" if add else "-D", "INPUT", "-i", VETH_A, *rule)

    async def netcut(self, node, add):
        for dev in ifaces(node):
            for chain, flag in (("INPUT", "-i"), ("OUTPUT", "-o")):
                await run("ip", "netns", "exec", NS[node], "iptables", "-I" if add else "-D", chain, flag, dev,
                          "-j", "DROP")

    async def crash(self, node):
        """Power cut: the node's network dies with it, so nothing it had queued
        in its sockets reaches the peer, then the process is killed."""
        await self.netcut(node, True)
        self.cut.add(node)
        os.kill(pid_of(node), 9)

    async def link(self, xy, add):
        """Cut (or heal) one link of three nodes: both ends drop what arrives."""
        (x, y), (ix, iy) = xy, LINKS[xy]
        for n, dev in ((x, ix), (y, iy)):
            await run("ip", "netns", "exec", NS[n], "iptables", "-I" if add else "-D", "INPUT", "-i", dev, "-j", "DROP")
        (self.links.add if add else self.links.discard)(xy)

    async def restart(self, node):
        if node in self.faulty:  # a crashed node with a failed disk comes back with it replaced
            open(faults_file(node), "w").close()
            self.faulty.discard(node)
        if node in self.cut:
            await self.netcut(node, False)
            self.cut.discard(node)
        await dp(node, "up", "r0", "--device", "none")

    async def synced(self):
        o, p = await status(self.wr.primary)
        return bool(o) and p.get("connection") == "Connected" and p.get("replication") == "Established" \
            and p.get("out_of_sync_bytes") == 0 and p.get("disk") == "UpToDate"

    async def in_sync(self, node):
        """node is UpToDate and connected, in sync, with every peer."""
        o, _ = await status(node)
        return bool(o) and o.get("disk") == "UpToDate" and not o.get("io_suspended") and all(
            p.get("connection") == "Connected" and p.get("replication") == "Established"
            and p.get("out_of_sync_bytes") == 0 for p in o["peers"])

    async def step3d(self):
        """Three disks: links, power cuts, failover to either survivor, disk errors."""
        wr = self.wr
        others = [n for n in DISKS if n != wr.primary]
        up = [n for n in others if alive(n)]
        down = [n for n in DISKS if not alive(n)]
        cut_links = sorted(self.links)
        choices = ["cut-link"] * 2 if len(cut_links) < 2 else []
        choices += ["heal-link"] * len(cut_links)
        choices += ["restart"] * 3 if down else []
        synced = not cut_links and not down and not self.faulty and await self.in_sync(wr.primary)
        if up and not self.faulty:
            choices += ["kill-secondary"]
        if synced:
            choices += ["kill-primary"] * 2 + ["disk-error"]
        if up and not self.faulty:
            choices += ["switchover"]
        if self.faulty:
            choices += ["repair-disk"]
        o, _ = await status(wr.primary)
        if o and o.get("role") != "Primary":
            choices = ["promote"] * 3 + choices
        if not choices:
            choices = ["restart"]
        act = rng.choice(choices)
        self.log.append(act)
        self.faults += act in ("kill-secondary", "kill-primary", "disk-error", "cut-link")
        print("# nemesis: %s (primary %s) at %s" % (act, wr.primary, utc_now()), flush=True)
        if act == "cut-link":
            xy = rng.choice(sorted(set(LINKS) - self.links))
            await self.link(xy, True)
            self.log[-1] += "@" + "".join(xy)
        elif act == "heal-link":
            xy = rng.choice(cut_links)
            await self.link(xy, False)
            self.log[-1] += "@" + "".join(xy)
        elif act == "restart":
            n = rng.choice(down) if down else rng.choice(DISKS)
            if not alive(n):
                await self.restart(n)
            self.log[-1] += "@" + n
        elif act == "kill-secondary":
            n = rng.choice(up)
            await self.crash(n)
            self.log[-1] += "@" + n
        elif act == "disk-error":
            n = rng.choice(others)
            with open(faults_file(n), "w") as f:
                f.write("eio any 0 1099511627776\n")
            self.faulty.add(n)
            self.log[-1] += "@" + n
        elif act == "repair-disk":
            await self.repair()
        elif act == "promote":
            wr.ready.clear()
            rc, out = await dp(wr.primary, "primary", "r0")
            self.log[-1] += "" if rc == 0 else "(refused)"
            wr.ready.set()
        elif act == "switchover":
            # a clean handover: the Primary demotes (writes in flight fail
            # or complete) and another node is promoted, as an operator or
            # a cluster manager moves a service
            wr.ready.clear()
            old, new = wr.primary, rng.choice(up)
            await dp(old, "secondary", "r0")
            rc, out = await self.failover(new)
            if rc == 0:
                wr.primary = new
            else:
                self.log[-1] += "(refused: %s)" % (refusal_right(out) or out.strip()[-60:])
                await self.failover(old)
            self.log[-1] += "@%s->%s" % (old, new)
            wr.ready.set()
        elif act == "kill-primary":
            wr.ready.clear()
            old, new = wr.primary, rng.choice(others)
            await self.crash(old)

            async def gone():
                o, _ = await status(new)
                return bool(o) and all(p.get("connection") != "Connected" for p in o["peers"] if p["name"] == old)
            await wait(gone, 30)

            async def promoted():   # refused while it compares with the third node
                rc, _ = await dp(new, "primary", "r0")
                return rc == 0
            if not await wait(promoted, 30):
                self.log[-1] += "(refused: retried later)"
            self.log[-1] += "@%s->%s" % (old, new)
            wr.primary = new
            wr.ready.set()

    async def step(self):
        if DISKS3:
            return await self.step3d()
        wr = self.wr
        other = "b" if wr.primary == "a" else "a"
        choices = ["partition" if not self.partitioned else "heal", "loss" if not self.lossy else "loss-off"]
        synced = alive(other) and not self.partitioned and await self.synced()
        if self.faulty:
            choices += ["repair-disk"]
        elif synced:
            choices += ["disk-error"] * 2   # the secondary's disk fails: it detaches
        if alive(other):
            choices += ["kill-secondary"]
            if synced and not self.faulty:
                choices += ["kill-primary"] * 2
        else:
            choices += ["restart"] * 3
        if THREE:
            cut_links = sorted(self.links)
            choices += ["cut-link"] * 2 if len(cut_links) < 2 else []
            choices += ["heal-link"] * len(cut_links)
            choices += ["restart-tiebreaker"] * 2 if not alive("c") else ["kill-tiebreaker"]
            o, _ = await status(wr.primary)
            if o and o.get("role") != "Primary":
                choices = ["promote"] * 3 + choices
        act = rng.choice(choices)
        self.log.append(act)
        self.faults += act in ("partition", "loss", "kill-secondary", "kill-primary", "disk-error", "cut-link",
                               "kill-tiebreaker")
        print("# nemesis: %s (primary %s) at %s" % (act, wr.primary, utc_now()), flush=True)
        if act == "partition":
            await self.ipt(True, "-j", "DROP")
            self.partitioned = True
        elif act == "heal":
            await self.ipt(False, "-j", "DROP")
            self.partitioned = False
        elif act == "loss":
            await self.ipt(True, "-m", "statistic", "--mode", "random", "--probability", "0.2", "-j", "DROP")
            self.lossy = True
        elif act == "loss-off":
            await self.ipt(False, "-m", "statistic", "--mode", "random", "--probability", "0.2", "-j", "DROP")
            self.lossy = False
        elif act == "disk-error":
            n = other
            with open(faults_file(n), "w") as f:
                f.write("eio any 0 1099511627776\n")
            self.faulty.add(n)
            self.log[-1] += "@" + n
        elif act == "cut-link":
            xy = rng.choice(sorted(set(LINKS) - self.links))
            await self.link(xy, True)
            self.log[-1] += "@" + "".join(xy)
        elif act == "heal-link":
            xy = rng.choice(sorted(self.links))
            await self.link(xy, False)
            self.log[-1] += "@" + "".join(xy)
        elif act == "kill-tiebreaker":
            await self.crash("c")
        elif act == "restart-tiebreaker":
            await self.restart("c")
        elif act == "promote":
            wr.ready.clear()
            rc, out = await dp(wr.primary, "primary", "r0")
            self.log[-1] += "" if rc == 0 else "(refused)"
            wr.ready.set()
        elif act == "repair-disk":
            await self.repair()
        elif act == "kill-secondary":
            await self.crash(other)
        elif act == "restart":
            await self.restart(other)
        elif act == "kill-primary":
            # everything acknowledged is on the other node: fail over to it
            wr.ready.clear()
            await self.crash(wr.primary)

            async def gone():
                o, p = await status(other)
                return bool(o) and p.get("connection") != "Connected"
            await wait(gone, 30)
            rc, out = await self.failover(other)
            if rc and not (THREE and refusal_right(out)):
                say(False, "failover: promoting %s failed: %s" % (other, out.strip()))
            elif rc:
                self.log[-1] += "(refused: %s; retried later)" % refusal_right(out)
                print_log(other, ("Outdated", "quorum", "alone", "without"))
            wr.primary = other
            wr.ready.set()

    async def failover(self, node):
        """Promote the survivor as a careful operator would: retry for a
        while a refusal that passes by itself (comparing data with the
        third node); (rc, output) of the last try."""
        end = time.monotonic() + 15
        while True:
            rc, out = await dp(node, "primary", "r0")
            if rc == 0 or time.monotonic() > end or refusal_right(out) not in TRANSIENT:
                return rc, out
            await asyncio.sleep(0.5)

    async def repair(self):
        """A failed disk is replaced by the same disk (errors gone): the node
        goes down and comes back up, a sync target of what it missed."""
        for n in sorted(self.faulty):
            open(faults_file(n), "w").close()
            if alive(n):
                await dp(n, "down", "r0", "--force")
            await self.restart(n)
        self.faulty.clear()

    async def settle(self):
        """Heal everything, restart what is down, wait until in sync."""
        await self.repair()
        if self.partitioned:
            await self.ipt(False, "-j", "DROP")
        if self.lossy:
            await self.ipt(False, "-m", "statistic", "--mode", "random", "--probability", "0.2", "-j", "DROP")
        for xy in sorted(self.links):
            await self.link(xy, False)
        for n in NS:
            if not alive(n):
                await self.restart(n)

        async def done3d():
            for n in DISKS:
                if not await self.in_sync(n):
                    return False
            o, _ = await status(self.wr.primary)
            if o and o.get("role") != "Primary":
                await dp(self.wr.primary, "primary", "r0")
                return False
            return True

        async def done():
            if DISKS3:
                return await done3d()
            oa, pa = await status("a")
            ob, pb = await status("b")
            ok = bool(oa and ob) and all(p.get("connection") == "Connected" and p.get("replication") == "Established"
                                         and p.get("out_of_sync_bytes") == 0 for p in (pa, pb)) \
                and oa["disk"] == ob["disk"] == "UpToDate"
            if ok and THREE:
                oc, _ = await status("c")
                ok = bool(oc) and all(p.get("connection") == "Connected" for p in oc["peers"]) \
                    and not oa["io_suspended"] and not ob["io_suspended"]
            if ok and THREE:   # a failover refused for want of quorum
                o, _ = await status(self.wr.primary)
                if o and o.get("role") != "Primary":
                    await dp(self.wr.primary, "primary", "r0")
                    return False
            return ok
        return await wait(done, 90)


def keep():
    """CHECK_KEEP=DIR: copy the run directory (disks, logs) there to study it."""
    if os.environ.get("CHECK_KEEP"):
        os.system("cp -r --sparse=always %s %s" % (T, os.environ["CHECK_KEEP"]))


def print_differing(size):
    """Which 4 KiB blocks differ between the disks, as ranges, and what each
    disk holds at the first of each range (seq of our block format)."""
    files = {n: open("%s/%s.img" % (T, n), "rb") for n in DISKS}
    ranges, start = [], None
    for blk in range(size // BS + 1):
        same = blk < size // BS and len({files[n].read(BS) for n in DISKS}) == 1
        if not same and start is None and blk < size // BS:
            start = blk
        elif same or blk == size // BS:
            if start is not None:
                ranges.append((start, blk))
            start = None
    for lo, hi in ranges[:20]:
        held = []
        for n in DISKS:
            files[n].seek(lo * BS)
            try:
                held.append("%s:%s" % (n, parse(files[n].read(BS))))
            except ValueError as e:
                held.append("%s:%s" % (n, e))
        print("# differ: blocks %d-%d (%d): %s" % (lo, hi - 1, hi - lo, " ".join(held)), flush=True)
    print("# differ: %d ranges, %d blocks" % (len(ranges), sum(h - l for l, h in ranges)), flush=True)
    for f in files.values():
        f.close()


async def main():
    global BLOCKS
    o, _ = await status("a")
    if not BLOCKS or BLOCKS > o["size_bytes"] // BS:
        BLOCKS = o["size_bytes"] // BS // 256 * 256
    print("# checker: CHECK_SEED=%d CHECK_SECONDS=%g blocks=%d in flight=%d rate<=%g/s" % (SEED, SECONDS, BLOCKS, INFLIGHT, RATE),
          flush=True)
    wr = Writer()
    nem = Nemesis(wr)
    wt = asyncio.ensure_future(wr.loop())
    end = time.monotonic() + SECONDS
    while time.monotonic() < end:
        await asyncio.sleep(rng.uniform(1.5, 4.0))
        await nem.step()
    wr.stop = True
    wr.ready.set()
    try:
        await asyncio.wait_for(wt, 60)
    except asyncio.TimeoutError:
        wt.cancel()
    settled = await nem.settle()
    say(settled, "after healing and restarting, both nodes are Connected, UpToDate, nothing out of sync")
    if not settled:
        keep()
    if not settled:
        for n in NS:
            o, p = await status(n)
            print("# %s: %s" % (n, json.dumps(o)))
            try:
                print("".join("# " + l for l in open("%s/r%s/r0.log" % (T, n)).readlines()[-15:]))
            except OSError:
                pass
    say(wr.n_acked > 0, "%d writes acknowledged (%d with unknown outcome, %d refused) through %d faults: %s" %
        (wr.n_acked, wr.n_unknown, wr.n_failed, nem.faults, " ".join(nem.log)))

    # every acknowledged write is readable on the Primary
    r, w = await wr.connect()
    bad = []
    for i in range(0, BLOCKS, 256):
        w.write(struct.pack(">IHHQQI", 0x25609513, 0, 0, i, i * BS, 256 * BS))
        await w.drain()
        magic, err, cookie = struct.unpack(">IIQ", await r.readexactly(16))
        data = await r.readexactly(256 * BS) if err == 0 else b""
        if err:
            bad.append("read of blocks %d.. failed: error %d" % (i, err))
            continue
        for k in range(256):
            blk = i + k
            try:
                idx, seq = parse(data[k * BS:(k + 1) * BS])
            except ValueError as e:
                bad.append("block %d: %s" % (blk, e))
                continue
            want = wr.acked.get(blk, 0)
            if TRACE and seq < want:
                TRACE.write("lost %d %d holds %d\n" % (blk, want, seq))
            if idx is not None and idx != blk:
                bad.append("block %d holds block %d's data (seq %d)" % (blk, idx, seq))
            elif seq < want:
                bad.append("block %d: acknowledged write seq %d lost (holds seq %d)" % (blk, want, seq))
            elif seq and seq not in wr.issued.get(blk, ()):
                bad.append("block %d: seq %d was never written there" % (blk, seq))
    w.close()
    say(not bad, "every acknowledged write is readable on the Primary (%s)" % wr.primary +
        ("" if not bad else ": %d bad blocks, first: %s" % (len(bad), "; ".join(bad[:5]))))
    if bad:
        keep()

    # replicas byte-identical (data areas)
    o, _ = await status("a")
    size = o["size_bytes"] if o else 0
    digests = [dataarea.md5("%s/%s.img" % (T, n), size) for n in DISKS]
    say(size > 0 and len(set(digests)) == 1, "replicas byte-identical after resync (%s)" % " ".join(digests))
    if size > 0 and len(set(digests)) > 1:
        print_differing(size)
        keep()
    print("# checker: %d passed checks, seed %d: reproduce with CHECK_SEED=%d" % (4 - failures, SEED, SEED))
    return failures


sys.exit(1 if asyncio.run(main()) else 0)
