#!/usr/bin/env bash
# three_disks — three nodes with disks (a, b, c) in three namespaces, a full
# mesh without quorum: every write reaches every disk; each peer has its own
# bitmap slot, so a node that was away gets only what it missed, from the
# Primary; after the Primary dies the two others compare and converge, one of
# them takes over with every acknowledged write, and the old Primary comes
# back as a SyncTarget. Data checked byte for byte on all three disks.
source "$(dirname "$0")/lib.sh"
mknet3
mkres3d 64M
# peer NODE NAME EXPR: EXPR about NODE's peer NAME (q)
peer() {
	"n$1" status r0 --json 2>/dev/null | python3 -c "
import json, sys
o = json.loads(sys.stdin.read()); q = [x for x in o['peers'] if x['name'] == '$2'][0]
sys.exit(0 if ($3) else 1)"
}
rx() { "n$1" status r0 --json | python3 -c "import json,sys; print(json.load(sys.stdin)['stats']['received_bytes'])"; }
w() { qemu-io -f raw -c "write -P $2 $3 $4" -c flush "$(uri_$1)" >/dev/null 2>&1; }
r3() { local n; for n in a b c; do qemu-io -r -f raw -c "read -P $1 $2 $3" "$(uri_$n)" >/dev/null 2>&1 || return 1; done; }

expect_rc "create-md gives each disk a bitmap slot per other disk host" 0 "2 peer slots" na create-md r0
nb create-md r0 >/dev/null 2>&1
nc create-md r0 >/dev/null 2>&1
slots_b() { nb dump-md r0 >"$T/md" && grep -q 'peer-slot 0 { node-id 0;' "$T/md" &&
	grep -q 'peer-slot 1 { node-id 2;' "$T/md"; }
check "dump-md lists the slots bound to the other node-ids" slots_b
up3() { na up r0 --device none && nb up r0 --device none && nc up r0 --device none; }
check "three disk nodes come up" up3
check "full mesh: each node lists both others, connected" wait_for 20 all3 "len(o['peers']) == 2 and \
all(x['connection'] == 'Connected' for x in o['peers'])"
check "b lists a and c with their own bitmap slots" jcheck b "[(x['name'], x['bitmap_slot']) for x in o['peers']] \
== [('a', 0), ('c', 1)]"
na primary r0 --force >/dev/null
check "initial sync from a to b and c" wait_for 60 all3 "o['disk'] == 'UpToDate' and \
all(x['disk'] == 'UpToDate' for x in o['peers'])"
check "a write on a is on all three disks" w a 0x41 0 1M
check "read back on a, b and c" r3 0x41 0 1M
check "identical images" md5_all_equal

# ---- one Secondary away: only what it missed, from the Primary ----------
nc down r0 >/dev/null
check "c down: a and b see it gone" wait_for 20 peer a c "q['connection'] != 'Connected'"
check "a writes 1 MiB while c is away" w a 0x42 8M 1M
oos_a() { peer a c "q['out_of_sync_bytes'] == 1048576" && peer a b "q['out_of_sync_bytes'] == 0"; }
check "a counts 1 MiB out of sync for c, none for b" oos_a
check "b followed a into its new generation and is unsure of c" peer b c "q['unsure']"
nc up r0 --device none >/dev/null
check "c back: resynced" wait_for 60 all3 "o['disk'] == 'UpToDate' and all(x['connection'] == 'Connected' and \
x['out_of_sync_bytes'] == 0 for x in o['peers'])"
after=$(rx c)
echo "# c's resync after 1 MiB changed on 64 MiB moved $after bytes"
check "c received only what it missed (1 MiB, not the device)" test "$after" -le $((2 * 1048576))
check "c has the write it missed" r3 0x42 8M 1M
check "identical images after c's resync" md5_all_equal

# ---- the Primary dies: b and c compare, b takes over ---------------------
check "a writes (acknowledged) just before it dies" w a 0x43 16M 2M
kill -9 "$(cat "$T/ra/r0.pid")"
check "b and c lose a" wait_for 30 jcheck b "[x['connection'] for x in o['peers'] if x['name'] == 'a'] != ['Connected']"
check "b becomes Primary once it compared with c" wait_for 30 nb primary r0
check "b has a's last acknowledged write" has b 0x43@16M 0x43@17M
check "b writes; c gets it" w b 0x44 24M 1M
check "b and c converged" wait_for 60 jcheck c "o['disk'] == 'UpToDate' and \
[x['out_of_sync_bytes'] for x in o['peers'] if x['name'] == 'b'] == [0]"
check "c has a's last write and b's" has c 0x43@16M 0x44@24M

# ---- the old Primary returns -----------------------------------------------
na up r0 --device none >/dev/null 2>&1
check "a back: resynced from b, all connected" wait_for 60 all3 "o['disk'] == 'UpToDate' and \
all(x['connection'] == 'Connected' and x['out_of_sync_bytes'] == 0 for x in o['peers'])"
check "a is Secondary, b Primary" jcheck a "o['role'] == 'Secondary' and \
[x['role'] for x in o['peers']] == ['Primary', 'Secondary']"
check "all three have every write" r3 0x44 24M 1M
check "identical images at the end" md5_all_equal
check "no split brain anywhere" all3 "all(x['split_brains'] == 0 for x in o['peers'])"
for n in a b c; do "n$n" down r0 >/dev/null 2>&1; done
finish
