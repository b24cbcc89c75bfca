"""perfstages — split a daemon's `perf record -g` samples into data-path stages.

Used by bench/profile. Each sample is assigned to the first stage whose rule
matches its thread name (the daemon names its threads, dp-*) and the symbols
of its call chain (kernel and user, leaf first). Returns nanoseconds per
stage (sum of the samples' periods of cpu-clock). A sample of the second
process (the peer, when there is one) goes to the peer's stages.
"""
import subprocess

STAGES = [
    "NBD socket receive (copy from client)",
    "daemon receive (parse, slots, hand-off)",
    "bookkeeping: activity log",
    "bookkeeping: bitmap, write policy",
    "disk submit (pwrite, O_DIRECT)",
    "disk completion (irq, block layer)",
    "peer send (TCP)",
    "completion: peer acks (meta receiver)",
    "completion: NBD reply",
    "wake-ups and locks (futex, scheduler)",
    "resync",
    "other",
    "peer: TCP receive",
    "peer: apply to disk",
    "peer: acks, other",
]


def _has(chain, *names):
    for s in chain:
        for n in names:
            if n in s:
                return True
    return False


def _stage(comm, chain, is_peer):
    if is_peer:
        if _has(chain, "tcp_recvmsg", "recv_full", "read_full", "tcp_read_sock", "skb_copy_datagram"):
            if not _has(chain, "tcp_sendmsg"):
                return "peer: TCP receive"
        if _has(chain, "engine_apply", "disk_pwrite", "shmem_", "ext4_", "iomap_", "__x64_sys_pwrite"):
            return "peer: apply to disk"
        return "peer: acks, other"
    if comm.startswith("dp-resync"):
        return "resync"
    if _has(chain, "al_begin", "al_end", "ref_extent", "log_extent", "md_write_al", "al_evict", "write_log"):
        return "bookkeeping: activity log"
    if _has(chain, "bitmap_", "engine_mark_oos", "missed_verdict", "policy_decide", "quorum_", "peer_view",
            "plain_decide", "engine_new_generation"):
        return "bookkeeping: bitmap, write policy"
    if _has(chain, "send_data", "send_pkt", "tcp_sendmsg"):
        return "peer send (TCP)"
    if comm.startswith("dp-peer-meta") or comm.startswith("dp-peer-rx"):
        return "completion: peer acks (meta receiver)"
    if _has(chain, "send_reply", "unix_stream_sendmsg"):
        return "completion: NBD reply"
    if _has(chain, "unix_stream_read_generic", "unix_stream_recvmsg"):
        return "NBD socket receive (copy from client)"
    if _has(chain, "blk_mq_complete", "virtblk_done", "blk_update_request", "iomap_dio_bio_end_io",
            "handle_irq", "__do_softirq", "irq_exit"):
        return "disk completion (irq, block layer)"
    if _has(chain, "local_op", "disk_pwrite", "ext4_file_write_iter", "iomap_dio_rw", "__x64_sys_pwrite64",
            "__x64_sys_pwritev", "submit_bio", "blkdev_write_iter", "disk_flush", "fdatasync"):
        return "disk submit (pwrite, O_DIRECT)"
    if _has(chain, "futex", "schedule", "pthread_cond", "pthread_mutex", "__lll_lock"):
        return "wake-ups and locks (futex, scheduler)"
    if comm.startswith("dp-nbd-rx"):
        return "daemon receive (parse, slots, hand-off)"
    return "other"


def classify(path, peer_pid=None):
    """{stage: ns} for the perf data at path. peer_pid: samples of this pid
    are the peer's."""
    out = subprocess.run(["perf", "script", "-i", path, "-F", "comm,pid,tid,period,ip,sym", "--no-inline"],
                         capture_output=True, text=True).stdout
    res = {}
    comm = None
    pid = 0
    period = 0
    chain = []

    def flush():
        if comm is not None:
            st = _stage(comm, chain, peer_pid is not None and pid == peer_pid)
            res[st] = res.get(st, 0) + period

    for line in out.splitlines():
        if not line.strip():
            flush()
            comm = None
            chain = []
            continue
        if not line[0].isspace():
            flush()
            chain = []
            # "comm  pid/tid  period" (comm may contain spaces)
            parts = line.rstrip().rstrip(":").split()
            try:
                period = int(parts[-1])
                pid = int(parts[-2].split("/")[0])
                comm = " ".join(parts[:-2])
            except (ValueError, IndexError):
                comm = None
            continue
        f = line.split(None, 1)
        if len(f) == 2:
            chain.append(f[1].split(" (")[0])
    flush()
    return res
