#!/usr/bin/env python3
"""locker — one lock request per process, for the lock tests (fs_locks.sh).

  locker.py hold  KIND TYPE PATH START LEN DIR   take it (no wait), DIR/held, hold until DIR/go;
                                                 each time DIR/probe appears: write a byte at
                                                 START and request the lock again, then
                                                 DIR/probed "write:R lock:R" (R: ok or the
                                                 errno name) and DIR/probe is removed
  locker.py wait  KIND TYPE PATH START LEN DIR   DIR/waiting, then a blocking request:
                                                 DIR/granted, or DIR/interrupted on SIGUSR1
                                                 (EINTR); then hold until DIR/go
  locker.py try   KIND TYPE PATH START LEN       exit 0 granted, 1 conflict, 2 other error
  locker.py getlk KIND PATH START LEN            print "TYPE START LEN PID" of a holder
                                                 conflicting with a write lock, or "unlocked"

KIND: posix (classic fcntl), ofd (open file description), flock (whole
file; START/LEN ignored). TYPE: r or w. LEN 0: to end of file. Exit 3: a
hold could not take its lock.
"""
import errno
import fcntl
import os
import signal
import struct
import sys
import time

FLOCK = 'hhqqi4x'  # struct flock: type, whence, start, len, pid (x86-64, arm64)
NAMES = {fcntl.F_UNLCK: 'unlocked', fcntl.F_RDLCK: 'read', fcntl.F_WRLCK: 'write'}


class Interrupted(Exception):
    pass


def request(fd, kind, typ, start, length, wait):
    if kind == 'flock':
        op = fcntl.LOCK_SH if typ == 'r' else fcntl.LOCK_EX
        fcntl.flock(fd, op if wait else op | fcntl.LOCK_NB)
        return
    t = fcntl.F_RDLCK if typ == 'r' else fcntl.F_WRLCK
    cmd = {('posix', 0): fcntl.F_SETLK, ('posix', 1): fcntl.F_SETLKW,
           ('ofd', 0): fcntl.F_OFD_SETLK, ('ofd', 1): fcntl.F_OFD_SETLKW}[kind, int(wait)]
    fcntl.fcntl(fd, cmd, struct.pack(FLOCK, t, os.SEEK_SET, start, length, 0))


def mark(d, name, text=''):
    with open(os.path.join(d, name + '.tmp'), 'w') as f:
        f.write(text)
    os.rename(os.path.join(d, name + '.tmp'), os.path.join(d, name))


def outcome(fn):
    try:
        fn()
        return 'ok'
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))


def probe(d, fd, kind, typ, start, length):
    w = outcome(lambda: os.pwrite(fd, b'p', start))
    lk = outcome(lambda: request(fd, kind, typ, start, length, False))
    os.unlink(os.path.join(d, 'probe'))
    mark(d, 'probed', 'write:%s lock:%s' % (w, lk))


def hold_until_go(d, fd=None, lock=None):
    while not os.path.exists(os.path.join(d, 'go')):
        if lock and os.path.exists(os.path.join(d, 'probe')):
            probe(d, fd, *lock)
        time.sleep(0.02)


def main(argv):
    op = argv[1]
    if op == 'getlk':
        kind, path, start, length = argv[2], argv[3], int(argv[4]), int(argv[5])
        fd = os.open(path, os.O_RDWR)
        cmd = fcntl.F_OFD_GETLK if kind == 'ofd' else fcntl.F_GETLK
        t, _, s, n, pid = struct.unpack(FLOCK, fcntl.fcntl(fd, cmd, struct.pack(FLOCK, fcntl.F_WRLCK, 0, start,
                                                                                 length, 0)))
        print(NAMES[t] if t == fcntl.F_UNLCK else '%s %d %d %d' % (NAMES[t], s, n, pid))
        return 0
    kind, typ, path, start, length = argv[2], argv[3], argv[4], int(argv[5]), int(argv[6])
    fd = os.open(path, os.O_RDWR)
    if op == 'try':
        try:
            request(fd, kind, typ, start, length, False)
        except OSError as e:
            if e.errno in (errno.EAGAIN, errno.EACCES):
                return 1
            print('try: %s' % e, file=sys.stderr)
            return 2
        return 0
    d = argv[7]
    if op == 'hold':
        try:
            request(fd, kind, typ, start, length, False)
        except OSError as e:
            print('hold: %s' % e, file=sys.stderr)
            return 3
        mark(d, 'held', str(os.getpid()))
        hold_until_go(d, fd, (kind, typ, start, length))
        return 0
    if op == 'wait':
        def on_usr1(sig, frame):
            raise Interrupted()
        signal.signal(signal.SIGUSR1, on_usr1)  # no SA_RESTART: the call sees EINTR
        mark(d, 'waiting', str(os.getpid()))
        try:
            request(fd, kind, typ, start, length, True)
            mark(d, 'granted')
        except Interrupted:
            mark(d, 'interrupted')
        except OSError as e:
            mark(d, 'failed', errno.errorcode.get(e.errno, str(e.errno)))
        hold_until_go(d)
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == '__main__':
    sys.exit(main(sys.argv))
