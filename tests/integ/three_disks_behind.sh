#!/usr/bin/env bash
# three_disks_behind — a Secondary that knows it is behind must not follow a
# new Primary into a generation it lacks (checker3d, seed 1031004940). a is
# Primary and loses both links (no quorum: its I/O is held). a-c heals: a
# resyncs c and starts a new generation that c follows; b, still connected
# to c, learns c has newer data and goes Outdated. a writes (on a and c
# only), then hands over to c. b used to follow c into that generation as
# if its disk held it, went UpToDate by the quorum-generation rule, and
# later resynced a's acknowledged write away on all three. Now b asks the
# Primary to compare (a handshake), which resyncs it.
source "$(dirname "$0")/lib.sh"
mknet3
mkres3d 32M "quorum majority; on-no-quorum suspend-io;"
check "three disks up, a Primary, synced" up3_synced
cut3 a b
cut3 a c
check "a is alone: its I/O is held" wait_for 30 jcheck a "o['io_suspended']"
check "b and c see a gone" wait_for 30 eval "peer_conn b a Connecting && peer_conn c a Connecting"
heal3 a c
check "a-c healed: a's I/O resumes" wait_for 30 jcheck a "not o['io_suspended'] and o['disk'] == 'UpToDate'"
check "c is resynced from a" wait_for 60 jcheck a "[x['out_of_sync_bytes'] for x in o['peers'] if x['name'] == 'c'] == [0]"
check "a writes 0x41@1M (on a and c, not b)" qemu-io -f raw -c "write -P 0x41 1M 64k" -c flush "$(uri_a)"
check "a demoted" na secondary r0
check "c promoted" nc primary r0
check "c writes 0x42@2M" qemu-io -f raw -c "write -P 0x42 2M 64k" -c flush "$(uri_c)"
# UpToDate on b means it holds every write of its generation
b_true() { ! jcheck b "o['disk'] == 'UpToDate'" || has b 0x41@1M; }
sleep 3
check "b is UpToDate only if it holds a's write" b_true
b_caught_up() { jcheck b "o['disk'] == 'UpToDate'" && has b 0x41@1M 0x42@2M; }
check "b catches up with the Primary c" wait_for 60 b_caught_up
check "c demoted" nc secondary r0
heal3 a b
converge3 "every acknowledged write is on all three" 0x41@1M 0x42@2M
finish
