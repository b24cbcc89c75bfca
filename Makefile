# dipole — one GNU Makefile. Quiet unless V=1.
#   make          build/dipole (release, -O2)
#   make check    ASan+UBSan build, unit + integration tests, short fuzz run
#   make fuzz     libFuzzer targets (clang)      make bench   benchmarks
#   make demo     two-namespace demo             make soak    long fault runs
#   make install  PREFIX=/usr/local DESTDIR=     make package-test  the .deb, checked
#   make boot-test  nodes booting systemd in containers, dipole from the .deb
CC      ?= cc
CSTD    := -std=c17 -D_GNU_SOURCE
WARN    := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wno-format-nonliteral -Wno-format-truncation
PKGS    := fuse3 libcrypto libmicrohttpd libsystemd liburing
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS))
PKG_LIBS   := $(shell pkg-config --libs $(PKGS)) -lisal -lpthread
CFLAGS  ?= -O2 -g
# src/ is layered (docs/architecture.md): each folder sees its own headers
# and those of the folders below it, never one above, so an upward include
# fails to compile. Unit tests, fuzz targets and tools see every layer.
LAYERS  := base conf store net repl export fs daemon cli
upto     = $(if $(filter $1,$(firstword $2)),$(firstword $2),$(firstword $2) $(call upto,$1,$(wordlist 2,99,$2)))
$(foreach l,$(LAYERS),$(eval INC_$l := $(patsubst %,-Isrc/%,$(call upto,$l,$(LAYERS)))))
INC_ALL := $(patsubst %,-Isrc/%,$(LAYERS))
layer    = $(INC_$(firstword $(subst /, ,$1)))
BASE_CFLAGS := $(CSTD) $(WARN) $(CPPFLAGS) $(CFLAGS) $(PKG_CFLAGS) -MMD -MP
ALL_CFLAGS := $(BASE_CFLAGS) $(INC_ALL)
SAN     := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

ifeq ($(V),1)
Q :=
else
Q := @
endif

SRCS    := $(wildcard src/*/*.c)
OBJS    := $(SRCS:src/%.c=build/obj/%.o)
SOBJS   := $(SRCS:src/%.c=build/san/obj/%.o)
UNITS   := $(patsubst tests/unit/%.c,build/san/%,$(wildcard tests/unit/test_*.c))

.PHONY: all check unit fuzz fuzz-run demo bench soak clean install uninstall package-test boot-test
all: build/dipole build/mount.dipole build/dipole-fstab-generator build/posix-suite build/fsmount-dir

build/dipole: $(OBJS)
	@echo "  LD      $@"
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

# mount(8)'s helper for `mount -t dipole`: the same binary, by its name
# (installed as /sbin/mount.dipole; docs/dipolefs.md "Using it")
build/mount.dipole: build/dipole
	$(Q)ln -sf dipole $@
build/san/mount.dipole: build/san/dipole
	$(Q)ln -sf dipole $@
# systemd's generator for fstab lines of type dipole: the same binary too
# (installed in $(SYSTEMD_GENERATOR_DIR); docs/dipolefs.md "At boot")
build/dipole-fstab-generator: build/dipole
	$(Q)ln -sf dipole $@
build/san/dipole-fstab-generator: build/san/dipole
	$(Q)ln -sf dipole $@

build/obj/%.o: src/%.c
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(BASE_CFLAGS) $(call layer,$*) -c -o $@ $<

build/san/dipole: $(SOBJS)
	@echo "  LD      $@"
	$(Q)$(CC) -g $(SAN) -o $@ $^ $(PKG_LIBS)

build/san/obj/%.o: src/%.c
	@mkdir -p $(dir $@)
	@echo "  CC san  $<"
	$(Q)$(CC) $(BASE_CFLAGS) $(call layer,$*) -O1 $(SAN) -c -o $@ $<

# unit tests link only the modules they test
UNIT_config := conf/config base/util base/log
UNIT_meta   := store/meta store/disk base/util base/log
UNIT_bitmap := store/bitmap store/meta store/disk base/util base/log
UNIT_al     := store/al store/meta store/disk base/util base/log
UNIT_decide := repl/decide
UNIT_ctl    := daemon/ctl base/util base/log
UNIT_codec  := net/codec base/util
UNIT_fsproto := net/fsproto base/util
UNIT_hs     := net/hs net/codec base/util
UNIT_state  := repl/state repl/evlog
UNIT_fsevents := fs/fsevents repl/evlog repl/state
UNIT_quorum_rule := repl/quorum_rule
UNIT_locks  := fs/locks base/util base/log
UNIT_local  := fs/local fs/locks base/util base/log
UNIT_engine_epoch := repl/engine repl/state repl/evlog store/al store/bitmap store/meta store/disk base/util base/log
UNIT_engine_resync := repl/engine repl/state repl/evlog store/al store/bitmap store/meta store/disk base/util base/log
UNIT_engine_readfd := repl/engine repl/state repl/evlog store/al store/bitmap store/meta store/disk base/util base/log
UNIT_fsswitch := fs/fsswitch fs/local fs/locks base/util base/log
UNIT_dirsplit := fs/dirsplit
.SECONDEXPANSION:
build/san/test_%: tests/unit/test_%.c tests/unit/unit.h tests/unit/engine_env.h $$(addprefix build/san/obj/,$$(addsuffix .o,$$(UNIT_$$*)))
	@echo "  CC san  $<"
	$(Q)$(CC) $(ALL_CFLAGS) -O1 $(SAN) -Itests/unit -DFIXTURES=\"$(CURDIR)/tests/fixtures\" -o $@ $< $(filter %.o,$^) $(PKG_LIBS)

# the dipolefs client and server over loopback, with a passthrough backend
FSNET_OBJS := fs/remote fs/locks fs/server fs/dirsplit fs/fsevents repl/evlog repl/state net/fsproto net/hs net/hsauth net/codec net/listener conf/config base/util base/log
build/fsnet-selftest: tests/fsnet/selftest.c tests/fsnet/passthrough.c tests/fsnet/passthrough.h \
		$(patsubst %,build/san/obj/%.o,$(FSNET_OBJS))
	@echo "  CC san  $@"
	$(Q)$(CC) $(ALL_CFLAGS) -O1 $(SAN) -Itests/fsnet -o $@ $(filter %.c %.o,$^) $(PKG_LIBS)

# libFuzzer needs clang; the parser is built into the target from source.
FUZZ_CC := clang
# a fuzz target is built from sources in one step: any header change rebuilds it
FUZZ_HDRS := $(wildcard src/*/*.h fuzz/*.h)
FUZZ_SRCS := src/conf/config.c src/base/log.c src/base/util.c
# the engine with replication: what the NBD and peer targets link
ENGINE_SRCS := $(wildcard src/base/*.c src/conf/*.c src/store/*.c src/net/*.c src/repl/*.c)
build/fuzz/fuzz_config: fuzz/fuzz_config.c $(FUZZ_SRCS) $(FUZZ_HDRS)
	@mkdir -p $(dir $@)
	@echo "  FUZZ    $@"
	$(Q)$(FUZZ_CC) $(CSTD) -Wall -Wextra -Werror -g -O1 $(INC_ALL) -fsanitize=fuzzer,address,undefined -o $@ $(filter %.c,$^) -lisal -lcrypto
build/fuzz/fuzz_nbd: fuzz/fuzz_nbd.c src/export/nbd.c $(ENGINE_SRCS) $(FUZZ_HDRS)
	@mkdir -p $(dir $@)
	@echo "  FUZZ    $@"
	$(Q)$(FUZZ_CC) $(CSTD) -Wall -Wextra -Werror -g -O1 $(INC_ALL) -fsanitize=fuzzer,address,undefined -o $@ $(filter %.c,$^) -lisal -lcrypto -lpthread -luring

build/fuzz/fuzz_peer: fuzz/fuzz_peer.c $(ENGINE_SRCS) $(FUZZ_HDRS)
	@mkdir -p $(dir $@)
	@echo "  FUZZ    $@"
	$(Q)$(FUZZ_CC) $(CSTD) -Wall -Wextra -Werror -g -O1 $(INC_ALL) -fsanitize=fuzzer,address,undefined -o $@ $(filter %.c,$^) -lisal -lcrypto -lpthread

# the wire codec alone: decoders only, no engine
build/fuzz/fuzz_codec: fuzz/fuzz_codec.c src/net/codec.c src/base/util.c $(FUZZ_HDRS)
	@mkdir -p $(dir $@)
	@echo "  FUZZ    $@"
	$(Q)$(FUZZ_CC) $(CSTD) -Wall -Wextra -Werror -g -O1 $(INC_ALL) -fsanitize=fuzzer,address,undefined -o $@ $(filter %.c,$^) -lisal

# the dipolefs protocol codec alone
build/fuzz/fuzz_fsproto: fuzz/fuzz_fsproto.c src/net/fsproto.c src/base/util.c $(FUZZ_HDRS)
	@mkdir -p $(dir $@)
	@echo "  FUZZ    $@"
	$(Q)$(FUZZ_CC) $(CSTD) -Wall -Wextra -Werror -g -O1 $(INC_ALL) -fsanitize=fuzzer,address,undefined -o $@ $(filter %.c,$^) -lisal

fuzz: build/fuzz/fuzz_config build/fuzz/fuzz_nbd build/fuzz/fuzz_peer build/fuzz/fuzz_codec build/fuzz/fuzz_fsproto

unit: $(UNITS)

# the machine's prerequisites first, so a missing tool is named up front
# rather than found as a failure after minutes of building and testing
check:
	$(Q)FUZZ_CC=$(FUZZ_CC) bash tests/prereq
	$(Q)$(MAKE) --no-print-directory build/dipole build/mount.dipole build/san/dipole build/san/fsmount-dir build/san/mount.dipole build/san/dipole-fstab-generator build/synclat build/posix-suite build/fsnet-selftest unit fuzz
	$(Q)DIPOLE=$(CURDIR)/build/san/dipole bash tests/run

# serves a directory through the owner's dipolefs path (tests, POSIX suite)
FSMOUNT_OBJS := $(addprefix build/obj/,fs/local.o fs/locks.o fs/fusefs.o fs/fsswitch.o export/fusemount.o fs/dipolefs.o fs/fsprobe.o fs/remote.o fs/server.o fs/dirsplit.o fs/fsevents.o repl/evlog.o repl/state.o \
	net/fsproto.o net/hs.o net/hsauth.o net/codec.o net/listener.o conf/config.o base/util.o base/log.o)
build/fsmount-dir: tests/tools/fsmount-dir.c $(FSMOUNT_OBJS)
	@echo "  LD      $@"
	$(Q)$(CC) $(ALL_CFLAGS) -o $@ $< $(FSMOUNT_OBJS) $(PKG_LIBS)
build/san/fsmount-dir: tests/tools/fsmount-dir.c $(subst build/obj/,build/san/obj/,$(FSMOUNT_OBJS))
	@echo "  LD san  $@"
	$(Q)$(CC) $(ALL_CFLAGS) -O1 $(SAN) -o $@ $< $(filter %.o,$^) $(PKG_LIBS)

# ---- install (docs: README "Install"); the Debian package runs it too
# PREFIX/DESTDIR as usual. mount(8) looks for its helpers in /sbin only, so
# mount.dipole goes there whatever PREFIX is (a link to the binary); systemd
# reads units and generators under /usr/local/lib/systemd too.
PREFIX      ?= /usr/local
SBINDIR     ?= $(PREFIX)/sbin
MOUNTDIR    ?= /sbin
MANDIR      ?= $(PREFIX)/share/man
DOCDIR      ?= $(PREFIX)/share/doc/dipole
SYSTEMDDIR  ?= $(PREFIX)/lib/systemd
SYSCONFDIR  ?= /etc
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
MANPAGES    := man/dipole.8 man/dipole.conf.5 man/mount.dipole.8
INSTALL     ?= install

install: build/dipole
	$(INSTALL) -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(MOUNTDIR) $(DESTDIR)$(SYSTEMDDIR)/system \
		$(DESTDIR)$(SYSTEMDDIR)/system-generators $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8 \
		$(DESTDIR)$(DOCDIR)/examples $(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(SYSCONFDIR)/default \
		$(DESTDIR)$(SYSCONFDIR)/drbd.d
	$(INSTALL) -m 0755 build/dipole $(DESTDIR)$(SBINDIR)/dipole
	ln -sf $(SBINDIR)/dipole $(DESTDIR)$(MOUNTDIR)/mount.dipole
	ln -sf $(SBINDIR)/dipole $(DESTDIR)$(SYSTEMDDIR)/system-generators/dipole-fstab-generator
	sed 's|/usr/sbin/dipole|$(SBINDIR)/dipole|g' systemd/dipole@.service >$(DESTDIR)$(SYSTEMDDIR)/system/dipole@.service
	chmod 0644 $(DESTDIR)$(SYSTEMDDIR)/system/dipole@.service
	$(INSTALL) -m 0644 man/dipole.8 man/mount.dipole.8 $(DESTDIR)$(MANDIR)/man8/
	$(INSTALL) -m 0644 man/dipole.conf.5 $(DESTDIR)$(MANDIR)/man5/
	$(INSTALL) -m 0644 completion/dipole.bash $(DESTDIR)$(BASHCOMPDIR)/dipole
	$(INSTALL) -m 0644 tests/fixtures/swarm.res $(DESTDIR)$(DOCDIR)/examples/swarm.res
	[ -e $(DESTDIR)$(SYSCONFDIR)/default/dipole ] || \
		$(INSTALL) -m 0644 systemd/dipole.default $(DESTDIR)$(SYSCONFDIR)/default/dipole

uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/dipole $(DESTDIR)$(MOUNTDIR)/mount.dipole \
		$(DESTDIR)$(SYSTEMDDIR)/system-generators/dipole-fstab-generator \
		$(DESTDIR)$(SYSTEMDDIR)/system/dipole@.service $(DESTDIR)$(MANDIR)/man8/dipole.8 \
		$(DESTDIR)$(MANDIR)/man8/mount.dipole.8 $(DESTDIR)$(MANDIR)/man5/dipole.conf.5 \
		$(DESTDIR)$(BASHCOMPDIR)/dipole $(DESTDIR)$(DOCDIR)/examples/swarm.res

# the Debian package alone: built, unpacked and checked (make check runs it too)
package-test:
	$(Q)TESTS=package bash tests/run

# the guide's scenario under real systemd: each node a Debian container
# booting systemd (systemd-nspawn over a cached debootstrap root), dipole
# from the package (tests/boot.sh, docs/boot-test.md). Minutes, and the
# first run downloads a root: not in make check; make soak runs it.
boot-test:
	$(Q)bash tests/boot.sh

demo: build/dipole
	$(Q)bash scripts/demo$(if $(filter 3,$(NODES)),3)

# the POSIX conformance suite: a plain program that runs against any
# directory (tests/integ/posix_local.sh, and later through dipolefs)
build/posix-suite: tests/posix/posix.c
	@mkdir -p $(dir $@)
	@echo "  CC      $@"
	$(Q)$(CC) $(CSTD) $(WARN) $(CFLAGS) -o $@ $<

build/synclat: bench/synclat.c
	$(Q)$(CC) -O2 $(CSTD) $(WARN) -o $@ $<

# bench/fsbench.c: filesystem workloads (dipolefs, the direct mount, GlusterFS)
build/fsbench: bench/fsbench.c
	$(Q)$(CC) -O2 $(CSTD) $(WARN) -o $@ $< -lsqlite3

bench: build/dipole build/synclat build/fsbench
	$(Q)bash bench/run

soak: build/dipole
	$(Q)bash tests/soak

clean:
	rm -rf build

-include $(OBJS:.o=.d) $(SOBJS:.o=.d)
