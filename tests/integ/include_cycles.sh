#!/usr/bin/env bash
# No include cycle among src/ modules, and the engine knows its replicas
# only through replica.h (issue 11, item 2: engine <- peer, engine <- quorum,
# peer and quorum apart). A module is x.c, x.h and x_*.c/x_*.h when x.c or
# x.h exists; an edge is an `#include "y.h"` of another module's header.
# SRC=dir checks another tree (the test of this test uses a bad copy).
SRC=${SRC:-$(dirname "$0")/../../src}
python3 - "$SRC" <<'PY'
import os, re, sys
src = sys.argv[1]
files = {}
for d, _, names in os.walk(src):
    for n in names:
        if n.endswith(('.c', '.h')):
            files[n] = os.path.join(d, n)
stems = {os.path.splitext(n)[0] for n in files}
def module(name):
    stem = os.path.splitext(name)[0]
    parts = stem.split('_')
    for i in range(1, len(parts)):
        if '_'.join(parts[:i]) in stems:
            return '_'.join(parts[:i])
    return stem
inc = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
edges, why, includes = {}, {}, {}
for n, path in files.items():
    with open(path, errors='replace') as f:
        got = [os.path.basename(h) for h in inc.findall(f.read())]
    includes[n] = got
    for h in got:
        if h not in files:
            continue
        a, b = module(n), module(h)
        if a != b:
            edges.setdefault(a, set()).add(b)
            why.setdefault((a, b), f'{n} includes "{h}"')
fails = 0
def report(ok, msg):
    global fails
    print(('ok - ' if ok else 'not ok - ') + msg)
    fails += not ok
bad = [h for h in includes.get('engine.c', []) + includes.get('engine.h', [])
       if module(h) in ('peer', 'quorum')]
report(not bad, 'engine.c/engine.h include neither peer nor quorum headers' +
       (f' (found: {", ".join(bad)})' if bad else ''))
for a, b in (('peer', 'quorum'), ('quorum', 'peer')):
    report(b not in edges.get(a, ()), f'{a} does not include {b}' +
           (f' ({why[(a, b)]})' if b in edges.get(a, ()) else ''))
# cycles: depth-first search, one report per cycle found
state, stack, cycles = {}, [], []
def dfs(m):
    state[m] = 1
    stack.append(m)
    for n in sorted(edges.get(m, ())):
        if state.get(n) == 1:
            cycles.append(stack[stack.index(n):] + [n])
        elif not state.get(n):
            dfs(n)
    stack.pop()
    state[m] = 2
for m in sorted(edges):
    if not state.get(m):
        dfs(m)
for c in cycles:
    report(False, 'include cycle: ' + ' -> '.join(c) + ' (' +
           '; '.join(why[(c[i], c[i + 1])] for i in range(len(c) - 1)) + ')')
if not cycles:
    report(True, f'no include cycle among {len(set(map(module, files)))} src/ modules')
sys.exit(1 if fails else 0)
PY
