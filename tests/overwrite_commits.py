#!/usr/bin/env python3
"""overwrite_commits.py FILE JBD2_INFO [N]

Whether an overwrite + fsync of FILE commits a journal transaction of the
ext4 filesystem whose jbd2 statistics are JBD2_INFO
(/proc/fs/jbd2/DEV-8/info) when nothing about the file changed but its
data. ext4 then writes the data and flushes, nothing more, unless the
file's times changed: they do when the kernel's coarse clock ticked since
the last write, or (Linux >= 6.13, multigrain timestamps) when anyone read
the file's ctime since then, which makes the next write take a fine-grained
time. A filesystem that stats the file after each write on nobody's behalf
turns every fsync into a journal commit (a 4 KiB write + fsync through
dipolefs cost 2.5 times the direct mount's that way).

N times (default 200): CLOCK_REALTIME_COARSE, pwrite 4 KiB inside the first
64 KiB, CLOCK_REALTIME_COARSE, fsync. An iteration whose write began and
ended in the tick of the previous write's end changed no time, so its fsync
must not commit. Counts all commits against the iterations whose write
could have moved the times; fails (exit 1) when there are more commits
than those plus 2 (a periodic commit), exit 2 when fewer than 10 iterations
stayed inside a tick (too slow a machine to tell). Never times anything.
"""
import os
import sys
import time

CLOCK_REALTIME_COARSE = 5  # <linux/time.h>


def commits(info):
    with open(info) as f:
        return int(f.readline().split()[0])


def main():
    path, info = sys.argv[1], sys.argv[2]
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 200
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    os.pwrite(fd, b"x" * 65536, 0)
    os.fsync(fd)
    buf = b"w" * 4096
    prev = None
    same = moved = 0
    k0 = commits(info)
    for i in range(n):
        c0 = time.clock_gettime_ns(CLOCK_REALTIME_COARSE)
        os.pwrite(fd, buf, (i % 16) * 4096)
        c1 = time.clock_gettime_ns(CLOCK_REALTIME_COARSE)
        if c0 == c1 == prev:
            same += 1
        else:
            moved += 1
        prev = c1
        os.fsync(fd)
    k = commits(info) - k0
    os.close(fd)
    print(f"{n} overwrites + fsync: {same} inside one tick, {moved} not; {k} journal commits")
    if same < 10:
        print("too few writes inside one clock tick to tell")
        return 2
    if k > moved + 2:
        print(f"{k} commits for {moved} writes that could change the file's times: "
              "something read the file's ctime between writes")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
