#!/usr/bin/env bash
# three_disks_relay — the Primary's generation carried to an absent node by
# a third one (checker3d, seed 125788789). c is Primary and never reaches
# b; a follows c. a-c is cut: c loses quorum, its I/O is held; a, having
# lost the Primary, resyncs b to the generation c was writing in. a-c
# heals: c's I/O resumes. Its writes now miss b while b holds c's current
# generation: unless c starts a new one, a and b look equal, b may be
# promoted and resyncs c's acknowledged writes away everywhere. Now a
# Primary that regains a peer while another stays away starts a new
# generation first: a follows it, b is behind a and cannot be promoted
# until it has c's writes.
source "$(dirname "$0")/lib.sh"
mknet3
mkres3d 32M "quorum majority; on-no-quorum suspend-io;"
check "three disks up, a Primary, synced" up3_synced
check "a demoted" na secondary r0
cut3 b c
check "b-c cut: c sees b gone" wait_for 30 peer_conn c b Connecting
check "c promoted (quorum with a)" nc primary r0
check "c writes 0x31@1M (on c and a)" qemu-io -f raw -c "write -P 0x31 1M 64k" -c flush "$(uri_c)"
cut3 a c
check "a-c cut: a sees c gone" wait_for 30 peer_conn a c Connecting
bcur() { jcheck b "o['disk'] == 'UpToDate' and all(x['out_of_sync_bytes'] == 0 for x in o['peers'] if x['name'] == 'a')"; }
check "a brings b up to date (the Primary is lost to both)" wait_for 60 bcur
check "b has c's first write" has b 0x31@1M
heal3 a c
check "a-c healed: c reaches a" wait_for 30 peer_conn c a Connected
check "c's I/O resumes" wait_for 30 jcheck c "not o['io_suspended'] and o['disk'] == 'UpToDate'"
check "c writes 0x32@2M (on c and a)" qemu-io -f raw -c "write -P 0x32 2M 64k" -c flush "$(uri_c)"
check "b is behind a (it lacks c's write)" wait_for 30 jcheck b "o['disk'] != 'UpToDate'"
check "c demoted" nc secondary r0
refused() { ! nb primary r0; }
check "b cannot be promoted: it lacks c's acknowledged write" refused
if jcheck b "o['role'] == 'Primary'"; then
	qemu-io -f raw -c "write -P 0x33 3M 64k" -c flush "$(uri_b)" >/dev/null 2>&1
	nb secondary r0 >/dev/null 2>&1
fi
heal3 b c
converge3 "every acknowledged write of c is on all three" 0x31@1M 0x32@2M
finish
