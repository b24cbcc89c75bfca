#!/usr/bin/env python3
"""namesrace.py ROOT TAG SECONDS — random name changes in three directories
shared by every node running it (tests/integ/fs_two.sh, docs/dipolefs.md
"Names on the owner's mount"): creates with content, unlinks, renames
within and across the directories, stats, reads and listings of 40 names
each, for SECONDS. A missing or existing name is the race working; any
other error is printed and makes the exit code 1. Prints the count of
calls. Deterministic per TAG."""
import errno
import os
import random
import sys
import time

root, tag, secs = sys.argv[1], sys.argv[2], float(sys.argv[3])
dirs = [os.path.join(root, 'd%d' % i) for i in range(3)]
for d in dirs:
    os.makedirs(d, exist_ok=True)
rnd = random.Random('namesrace-' + tag)
end = time.monotonic() + secs
calls, errors = 0, {}


def some_name(d=None):
    return os.path.join(d or rnd.choice(dirs), 'n%d' % rnd.randrange(40))


while time.monotonic() < end:
    d = rnd.choice(dirs)
    name = some_name(d)
    op = rnd.randrange(7)
    try:
        if op == 0:
            with open(name, 'w') as f:
                f.write(tag)
        elif op == 1:
            os.unlink(name)
        elif op == 2:
            os.stat(name)
        elif op == 3:
            os.listdir(d)
        elif op == 4:
            os.rename(name, some_name(d))
        elif op == 5:
            os.rename(name, some_name())
        else:
            with open(name) as f:
                f.read()
        calls += 1
    except OSError as e:
        if e.errno not in (errno.ENOENT, errno.EEXIST, errno.EISDIR):
            errors[errno.errorcode.get(e.errno, e.errno)] = errors.get(errno.errorcode.get(e.errno, e.errno), 0) + 1
print(tag, calls, 'calls', 'errors:', errors or 'none')
sys.exit(1 if errors else 0)
