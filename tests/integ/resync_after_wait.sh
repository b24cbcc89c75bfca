#!/usr/bin/env bash
# A pair that agreed to "wait" (the Primary a Outdated, b Inconsistent:
# neither is a sync source) compares again once a is UpToDate — now as soon
# as b is back (b follows a's generation, and counts for a's quorum rule),
# earlier when the third disk c connected. Before that fix a told only c,
# b stayed Inconsistent for ever and its disk differed
# (checker3d, CHECK_SEED=931169129: repair-disk restarted c mid-resync while
# b had lost quorum; docs/failures.md "Three disks, a resync that never
# restarts").
. "$(dirname "$0")/lib.sh"
mknet3
truncate -s 64M "$T/a.img" "$T/b.img" "$T/c.img"
cat >"$T/r.res" <<EOT
resource r0 {
    net { protocol C; connect-int 1; ping-int 1; ping-timeout 10; }
    disk { resync-rate 4M; c-max-rate 4M; }
    options { quorum majority; }
    on a { node-id 0; address $IP_A:7790; disk $T/a.img; }
    on b { node-id 1; address $IP_B:7790; disk $T/b.img; }
    on c { node-id 2; address $IP_C:7790; disk $T/c.img; }
    connection-mesh { hosts a b c; }
}
EOT
peer_of() { jcheck "$1" "[x for x in o['peers'] if x['name'] == '$2'][0]$3"; }
check "three disk nodes up, synced" up3_synced
nb disconnect r0 >/dev/null 2>&1
check "b away" wait_for 20 peer_of a b "['connection'] != 'Connected'"
check "a writes 32 MiB b lacks (8 s of resync at 4 MiB/s)" \
	bash -c "qemu-io -f raw -c 'write -P 0x51 0 32M' -c flush '$(uri_a)' | grep -q '^wrote'"
nb connect r0 >/dev/null 2>&1
check "b is SyncTarget of a" wait_for 20 peer_of b a "['replication'] == 'SyncTarget'"
# c leaves (a keeps quorum with b), then b stops mid-resync: a loses quorum
nc disconnect r0 >/dev/null 2>&1
check "c away" wait_for 20 peer_of a c "['connection'] != 'Connected'"
nb down r0 >/dev/null 2>&1
check "a is Outdated without quorum" wait_for 20 jcheck a "o['disk'] == 'Outdated'"
nb up r0 --device none >/dev/null 2>&1
# (until 2026-12-01 the two waited here for c: an Inconsistent disk did
# not count for the quorum-generation rule. It follows its Primary's
# generation now, as b did when its resync from a began, so it counts)
check "b back: a UpToDate again (b, Inconsistent at a's generation, counts)" wait_for 20 jcheck a \
	"o['disk'] == 'UpToDate'"
nc connect r0 >/dev/null 2>&1
check "b is resynced: all UpToDate, connected, nothing out of sync" wait_for 20 all3 "o['disk'] == 'UpToDate' and \
all(x['connection'] == 'Connected' and x['disk'] == 'UpToDate' and x['out_of_sync_bytes'] == 0 for x in o['peers'])"
SIZE=$(na status r0 --json | python3 -c "import json,sys; print(json.load(sys.stdin)['size_bytes'])")
# (the disks themselves: an Inconsistent b reads what it lacks from a)
check "b's disk has a's write" bash -c "dd if=$T/b.img bs=1M skip=30 count=1 2>/dev/null | tr -d '\121' | wc -c | grep -qx 0"
check "the data areas are byte-identical" test "$(data_md5 $SIZE "$T/a.img")" = "$(data_md5 $SIZE "$T/b.img")" -a \
	"$(data_md5 $SIZE "$T/a.img")" = "$(data_md5 $SIZE "$T/c.img")"
for n in a b c; do "n$n" down r0 --force >/dev/null 2>&1; done
finish
