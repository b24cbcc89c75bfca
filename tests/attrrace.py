#!/usr/bin/env python3
"""attrrace.py DIR_A DIR_B COUNT — attributes in entry replies racing a
change on the other node (tests/integ/fs_two.sh, docs/dipolefs.md
"Replies racing revocations"). DIR_A and DIR_B are one directory seen
through two nodes' mounts. COUNT times, each way round: a new file made
through one mount, then at once a first stat of it through the other (a
LOOKUP whose reply makes the inode there), or a first listing of its
directory (READDIRPLUS), while the first mount changes its mode; once
the change returned, the other mount must show the new mode. A mount that cached the reply's attributes after it missed the
revocation shows the old one. Prints the count of rounds and the stale
answers; exit 1 if any."""
import os
import sys
import threading

dir_a, dir_b, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
stale = []


def first_stat(path, barrier):
    barrier.wait()
    try:
        os.stat(path)
    except OSError:
        pass


def first_listing(path, barrier):
    barrier.wait()
    os.listdir(os.path.dirname(path))


def round_trip(maker, looker, name, listing=False):
    if listing:  # the inode made by a READDIRPLUS entry instead
        os.mkdir(os.path.join(maker, name))
        name = os.path.join(name, 'f')
    made, seen = os.path.join(maker, name), os.path.join(looker, name)
    with open(made, 'w') as f:
        f.write('x')
    os.chmod(made, 0o600)
    barrier = threading.Barrier(2)
    t = threading.Thread(target=first_listing if listing else first_stat, args=(seen, barrier))
    t.start()
    barrier.wait()
    os.chmod(made, 0o644)
    t.join()
    mode = os.stat(seen).st_mode & 0o777
    if mode != 0o644:
        stale.append('%s: %o' % (seen, mode))


for i in range(count):
    round_trip(dir_b, dir_a, 'b%d' % i)
    round_trip(dir_a, dir_b, 'a%d' % i)
    round_trip(dir_b, dir_a, 'lb%d' % i, True)
    round_trip(dir_a, dir_b, 'la%d' % i, True)
print('%d rounds, %d stale%s' % (4 * count, len(stale), (': ' + ', '.join(stale[:5])) if stale else ''))
sys.exit(1 if stale else 0)
