#!/usr/bin/env python3
"""fsfailover — the dipolefs fault checker (tests/fschecker.py) with a
failover nemesis (issue 14 item 6, docs/dipolefs.md "Fault checker").

Three nodes: a and b with disks, c a diskless tiebreaker (quorum
majority). Both disk nodes mount the filesystem; fschecker's workers run
on both mounts (each in a directory of its own) and journal what was
acknowledged. The nemesis, every 1-3 s, on a healthy cluster (everyone
connected, in sync, both mounted, one owner serving):

  kill-owner   SIGKILL the owner's daemon: the other disk node must take
               the filesystem over (promote with c's vote, mount, serve)
               without a remount; the killed node is restarted (`up`,
               resync) and mounts again as a client
  power-cut-owner  the owner's links all go silent (nothing closed or
               reset), then its daemon is SIGKILLed: the other takes over
               once it notices the silence; the owner comes back as above
  kill-client  SIGKILL the non-owner's daemon, restart it, remount
  cut-link     drop everything between a and b (both still reach c);
               healed at the next step, when at most one of them may
               own the filesystem
  move         `dipole fs move` ownership to the other disk node
  kill-worker  SIGKILL a worker mid-operation, start it again

The first steps are the failover faults (kill-owner, power-cut-owner,
cut-link, move) in a seeded order, so even a short run has each once. At
the end everything is healed and in sync, the workers stop, and every
acknowledged file, name, chunk and row must be there, read through both
nodes' mounts (fschecker's Model); then both unmount, the owner demotes,
`fsck.ext4 -fn` of both replicas is clean and their data areas are
byte-identical.

usage: fsfailover.py [--seed N]    (environment from
       tests/integ/fschecker_failover.sh: T NS_A NS_B NS_C LINK_AB LINK_BA
       DIPOLE CFG MA MB; FSCHECK_SECONDS, FSCHECK_WORKERS per node)
Prints the seed first; FSCHECK_SEED=N or --seed N replays the schedule.
"""
import os, random, signal, subprocess, sys, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fschecker as fc   # noqa: E402

DISKS = ("a", "b")


def other(n):
    return "b" if n == "a" else "a"


class Cluster3(fc.Cluster):
    """fschecker's Cluster with the tiebreaker c and the a-b link."""

    def __init__(self):
        self.T = fc.env("T")
        self.ns = {n: fc.env("NS_" + n.upper()) for n in "abc"}
        self.link = {"a": fc.env("LINK_AB"), "b": fc.env("LINK_BA")}
        self.dipole, self.cfg = fc.env("DIPOLE"), fc.env("CFG")
        self.mnt = {"a": fc.env("MA"), "b": fc.env("MB")}

    def fs(self, n):
        o, _ = self.status(n)
        return (o or {}).get("fs") or {}

    def owner(self):
        """The disk node that owns and serves the filesystem, or None."""
        for n in DISKS:
            f = self.fs(n)
            if f.get("role") == "owner" and f.get("owner") == n and f.get("reason") == "":
                return n
        return None

    def cut_ab(self, cut):
        """Drop (or stop dropping) everything a and b receive from each other."""
        for n in DISKS:
            subprocess.run(["ip", "netns", "exec", self.ns[n], "iptables", "-I" if cut else "-D", "INPUT",
                            "-i", self.link[n], "-j", "DROP"], stderr=subprocess.DEVNULL)

    def isolate(self, n, cut):
        """Drop (or stop dropping) everything n sends and receives but on
        loopback: n's links all go silent at once, as at a power cut."""
        for chain, way in (("INPUT", "-i"), ("OUTPUT", "-o")):
            subprocess.run(["ip", "netns", "exec", self.ns[n], "iptables", "-I" if cut else "-D", chain,
                            "!", way, "lo", "-j", "DROP"], stderr=subprocess.DEVNULL)

    def synced(self, n):
        o, _ = self.status(n)
        if not o or (n in DISKS and o.get("disk") != "UpToDate") or len(o.get("peers") or []) != 2:
            return False
        return all(p.get("connection") == "Connected" and p.get("out_of_sync_bytes") == 0 for p in o["peers"])

    def healthy(self):
        """Everyone connected and in sync, both disk nodes mounted, one
        owner serving and the other its client, serving too."""
        own = self.owner()
        if own is None or not all(self.synced(n) for n in "abc"):
            return False
        f = self.fs(other(own))
        return self.mounted(other(own)) and f.get("owner") == own and f.get("reason") == ""

    def kill(self, n):
        """SIGKILL n's daemon. A thread of an owner that was inside its
        kernel filesystem keeps the dead process in D state until the FUSE
        file under its loop device is aborted (tests/integ/fs_failover.sh)."""
        pid = self.pid(n)
        os.kill(pid, signal.SIGKILL)
        # gone, not a zombie: a zombie still holds its lock and sockets
        gone = lambda: not os.path.exists("/proc/%d" % pid)
        if not self.wait(gone, 5):
            subprocess.run(["umount", "-f", "%s/r%s/r0.fuse" % (self.T, n)], stderr=subprocess.DEVNULL)
        return self.wait(gone, 30)

    def rejoin(self, n):
        """n's daemon was killed: its mounts go, it comes up, resyncs and
        mounts as a client of the owner. Problems found (strings)."""
        self.abort_fuse(n)
        rc, out = self.dp(n, "up", "r0")
        if rc:
            return ["%s's daemon restarts: %s" % (n, out.strip())]
        if not self.wait(lambda: self.synced(n), 90):
            return ["%s resyncs after its restart" % n]
        ok, out = self.mount_client(n)
        if not ok or "as client of" not in out:
            return ["%s mounts again as a client: %s" % (n, out.strip())]
        return []


class Nemesis3:
    FAULTS = ["kill-owner", "power-cut-owner", "cut-link", "move"]

    def __init__(self, cl, wk, rng):
        self.cl, self.wk, self.rng = cl, wk, rng
        self.cut = False
        self.log = []
        self.faults = 0
        self.first = rng.sample(self.FAULTS, len(self.FAULTS))

    def pick(self):
        if self.cut:
            return "heal-link"
        if self.first:
            return self.first.pop(0)
        return self.rng.choice(["kill-worker"] * 2 + ["kill-owner"] * 2 +
                               ["power-cut-owner", "kill-client", "cut-link", "move"])

    def step(self):
        act = self.pick()
        if act not in ("heal-link", "kill-worker") and not self.cl.wait(self.cl.healthy, 90):
            fc.say(False, "the cluster is healthy again before %s (after %s)" % (act, " ".join(self.log)))
            return False
        own = self.cl.owner()
        self.log.append(act + ("@" + own if act in ("kill-owner", "power-cut-owner", "move") else ""))
        fc.note("nemesis: %s" % self.log[-1])
        getattr(self, act.replace("-", "_"))(own)
        self.faults += act != "heal-link"
        return True

    def kill_worker(self, own):
        w = self.rng.choice(self.wk.names)
        self.log[-1] += "@" + w
        self.wk.kill(w)
        self.wk.start(w)
        self.wk.kills += 1

    def kill_owner(self, own):
        cl, sur = self.cl, other(own)
        fc.say(cl.kill(own), "%s's daemon (owner) is gone after SIGKILL" % own)
        took = cl.wait(lambda: cl.owner() == sur, 60)
        fc.say(took, "%s takes the filesystem over after %s's SIGKILL, without a remount" % (sur, own))
        time.sleep(self.rng.uniform(0.2, 2))
        for bad in cl.rejoin(own):
            fc.say(False, bad)

    def power_cut_owner(self, own):
        """The owner's machine loses power: its links go silent first (what
        its sockets held is lost, nothing is closed or reset), then the
        process dies. The survivor learns it only from the silence."""
        cl, sur = self.cl, other(own)
        cl.isolate(own, True)
        fc.say(cl.kill(own), "%s's daemon (owner) is gone after its power cut" % own)
        took = cl.wait(lambda: cl.owner() == sur, 60)
        fc.say(took, "%s takes the filesystem over after %s's power cut, without a remount" % (sur, own))
        cl.isolate(own, False)
        time.sleep(self.rng.uniform(0.2, 2))
        for bad in cl.rejoin(own):
            fc.say(False, bad)

    def kill_client(self, own):
        cl, n = self.cl, other(own)
        fc.say(cl.kill(n), "%s's daemon (client) is gone after SIGKILL" % n)
        time.sleep(self.rng.uniform(0.2, 2))
        for bad in cl.rejoin(n):
            fc.say(False, bad)

    def cut_link(self, own):
        self.cl.cut_ab(True)
        self.cut = True

    def heal_link(self, own):
        # the cut's partition shape: both reach c, so one of them goes on;
        # never two nodes owning the filesystem at once
        owners = [n for n in DISKS if self.cl.fs(n).get("role") == "owner"]
        fc.say(len(owners) <= 1, "a-b link cut: at most one owner (%s)" % (" ".join(owners) or "none"))
        self.cl.cut_ab(False)
        self.cut = False

    def move(self, own):
        rc, out = self.cl.dp(own, "fs", "move", "r0", other(own))
        fc.say(rc == 0, "fs move %s -> %s: %s" % (own, other(own), out.strip().replace("\n", " ")))

    def settle(self):
        if self.cut:
            self.heal_link(None)
        return self.cl.wait(self.cl.healthy, 120)


def check_through(cl, wk, n):
    """fschecker's model of every worker against n's mount."""
    bad, counts = [], {}
    for w in wk.names:
        m = fc.Model(w, wk.journal(w))
        for k, v in m.counts.items():
            counts[k] = counts.get(k, 0) + v
        bad += m.check("%s/%s" % (cl.mnt[n], w))
    fc.say(not bad, "through %s's mount: every acknowledged file, name, chunk and row is there (%d problems)" % (
        n, len(bad)))
    for b in bad[:20]:
        fc.note("  " + b)
    return counts


def run_nemesis(cl, wk, nem, secs):
    end = time.monotonic() + secs
    while time.monotonic() < end or nem.first:
        time.sleep(nem.rng.uniform(1.0, 3.0))
        if not nem.step():
            return False
    return True


def main():
    seed, secs, per_node = fc.run_params(20)
    print("# fsfailover: FSCHECK_SEED=%d FSCHECK_SECONDS=%g workers=%d per node" % (seed, secs, per_node), flush=True)
    rng = random.Random(seed)
    cl = Cluster3()
    wk = fc.Workers(cl, seed, per_node)
    nem = Nemesis3(cl, wk, rng)
    own = cl.owner()
    for w in wk.names:   # made from one node: two nodes changing one directory at once can stall (docs)
        os.makedirs("%s/%s" % (cl.mnt[own], w), exist_ok=True)
    for w in wk.names:
        wk.start(w)
    run_nemesis(cl, wk, nem, secs)
    fc.say(nem.settle(), "after healing: all connected and in sync, both mounted, one owner serving")
    wk.stop_all()
    own = cl.owner() or "a"
    counts = check_through(cl, wk, own)
    check_through(cl, wk, other(own))
    acked = sum(v for k, v in counts.items() if not k.endswith("?"))
    fc.say(acked > 0 and nem.faults > 0, "%d operations acknowledged through %d faults (%s); outcomes: %s" % (
        acked, nem.faults, " ".join(nem.log), " ".join("%s=%d" % kv for kv in sorted(counts.items()))))
    for n in (other(own), own):
        rc, out = cl.dp(n, "umount", cl.mnt[n])
        fc.say(rc == 0, "%s unmounts: %s" % (n, out.strip().replace("\n", " ")))
    rc, out = cl.dp(own, "secondary", "r0")
    fc.say(rc == 0, "%s demotes: %s" % (own, out.strip()))
    fc.fsck_replicas(cl, DISKS)
    fc.replicas_identical(cl)
    print("# fsfailover: %d failed checks, seed %d: reproduce with FSCHECK_SEED=%d" % (
        fc.failures, seed, seed), flush=True)
    return fc.failures


if __name__ == "__main__":
    sys.exit(1 if main() else 0)
