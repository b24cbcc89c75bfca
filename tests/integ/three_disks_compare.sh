#!/usr/bin/env bash
# three_disks_compare — the Primary a dies with an acknowledged write that
# reached c but not b; b notices the loss first, c later. b must not become
# Primary before it compared with c once c, too, saw a gone: while c still
# counted a as its Primary, their handshake compared nothing ("the Primary is
# the reference"), and b, promoted after it, was the source of the comparison
# that followed and overwrote c's copy of the write (checker3d lost two
# acknowledged writes so, kill-primary@a->b).
# The write misses b deterministically: the a-b link runs protocol A (a write
# completes once sent) and is cut just before it; a dies before its ping
# notices. c's link to a has a longer ping-timeout than b's, so c notices later.
source "$(dirname "$0")/lib.sh"
mknet3
truncate -s 64M "$T/a.img" "$T/b.img" "$T/c.img"
cat >"$T/r.res" <<EOT
resource r0 {
    net { protocol C; connect-int 1; ping-int 1; ping-timeout 10; }
    on a { node-id 0; address $IP_A:7790; disk $T/a.img; }
    on b { node-id 1; address $IP_B:7790; disk $T/b.img; }
    on c { node-id 2; address $IP_C:7790; disk $T/c.img; }
    connection-mesh { hosts a b c; }
    connection { host a; host b; net { protocol A; ping-timeout 20; } }
    connection { host a; host c; net { ping-timeout 40; } }
}
EOT
rd() { qemu-io -r -f raw -c "read -P $2 $3 64k" "$(uri_$1)" >/dev/null 2>&1; }
lacks() { ! rd "$@"; }
all_have() { rd a "$@" && rd b "$@" && rd c "$@"; }
a_on() { jcheck "$1" "[x['connection'] for x in o['peers'] if x['name'] == 'a'] $2 ['Connected']"; }
check "three disk nodes up, synced" up3_synced
check "a write before the fault is on all three" \
	qemu-io -f raw -c "write -P 0x51 0 64k" -c flush "$(uri_a)"

cut3 a b
# qemu-io prints "wrote" once the write is acknowledged (c has it, b's copy
# was sent into the cut link); its closing flush waits for b, so it is left.
# (-t writeback: no FUA, which waits for every peer; stdbuf: "wrote" at once)
cat >"$T/w.sh" <<EOT
exec stdbuf -oL qemu-io -f raw -t writeback -c "write -P 0x52 4M 64k" "$(uri_a)"
EOT
bg bash "$T/w.sh" >"$T/w.out" 2>&1
check "a acknowledges the write c has and b was sent" wait_for 5 grep -q wrote "$T/w.out"
# a dies (a power cut: its links die with it) before it notices b is gone
cut3 a c
kill -9 "$(cat "$T/ra/r0.pid")"
check "c has a's last write" rd c 0x52 4M
check "b does not" lacks b 0x52 4M
check "b notices a gone" wait_for 20 a_on b !=
check "while c still counts a connected" a_on c ==
check "b becomes Primary once it compared with c" wait_for 40 nb primary r0
check "b has a's last acknowledged write" rd b 0x52 4M
check "and the one before" rd b 0x51 0
check "c still has it" rd c 0x52 4M
heal3 a b
heal3 a c
na up r0 --device none >/dev/null 2>&1
check "a back: all connected, nothing out of sync" wait_for 60 all3 "o['disk'] == 'UpToDate' and \
all(x['connection'] == 'Connected' and x['out_of_sync_bytes'] == 0 for x in o['peers'])"
check "all three have a's last write" all_have 0x52 4M
check "identical images" md5_all_equal
check "no split brain anywhere" all3 "all(x['split_brains'] == 0 for x in o['peers'])"
for n in a b c; do "n$n" down r0 --force >/dev/null 2>&1; done
finish
