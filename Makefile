# recluse: high-isolation TLS terminating proxy
PREFIX ?=	/usr/local
SBINDIR ?=	$(PREFIX)/sbin
MANDIR ?=	$(PREFIX)/share/man
SYSCONFDIR ?=	/etc
UNITDIR ?=	/lib/systemd/system
DESTDIR ?=

PKGS =		libtls libevent_core libseccomp libssl libcrypto
CC ?=		cc
CFLAGS ?=	-O2 -g
WARNINGS =	-Wall -Wextra -Werror -Wshadow -Wpointer-arith -Wstrict-prototypes \
		-Wmissing-prototypes -Wno-unused-parameter
CPPFLAGS +=	-D_GNU_SOURCE -I. $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS +=	$(shell pkg-config --libs $(PKGS) 2>/dev/null)
DEPFLAGS =	-MMD -MP
# x86-64: static arrays over 1 KiB (the relay's buffers, other roles'
# tables) in sections of their own (.lbss, .ldata) after the small
# statics, so that the few a connection child writes share one page
# instead of five strewn between the arrays: each page a child writes is
# a page fault and 4 kB per connection (docs/PERFORMANCE.md, issue 15).
LAYOUT :=	$(if $(filter x86_64-%,$(shell $(CC) -dumpmachine)),\
		-mcmodel=medium -mlarge-data-threshold=1024)

SRCS =		proxy/main.c proxy/spawn.c proxy/spawner.c proxy/spawner_ctl.c \
		proxy/child.c proxy/relay.c proxy/backend.c proxy/connector.c \
		proxy/connector_ctl.c proxy/probe.c proxy/certcheck.c \
		proxy/tlsconf.c proxy/listen.c proxy/notify.c proxy/gen.c \
		proxy/tlshook.c proxy/tlsio.c proxy/parent_check.c proxy/stats.c \
		proxy/metrics.c \
		proxy/metrics_ctl.c proxy/route.c proxy/pp.c proxy/pp_parse.c proxy/pp_spawner.c \
		proxy/pp_child.c proxy/mtls.c proxy/clientcert.c \
		proxy/resume.c proxy/tickets.c proxy/sni.c proxy/ocsp.c \
		proxy/snimap.c proxy/snictx.c proxy/lockpool.c proxy/heapfile.c \
		proxy/memtrim.c proxy/warmup.c proxy/textmap.c \
		lib/log.c lib/sandbox.c lib/msg.c lib/role.c lib/title.c \
		config/parse.c config/conf.c config/cidr.c config/clientca.c \
		config/conf_tickets.c \
		keyproc/keyproc.c keyproc/kp_check.c keyproc/sign.c \
		keyproc/policy.c keyproc/kp_provider.c keyproc/kp_ref.c \
		keyproc/kp_ctl.c keyproc/kp_pool.c
OBJS =		$(SRCS:.c=.o)
# tests/isolation.bats: see below; never installed
HOSTILE =	tests/helpers/recluse-hostile tests/helpers/hostile-control
HOSTILE_OBJS =	tests/helpers/child-hostile.o tests/helpers/hostile.o
HELPERS =	tests/helpers/echod tests/helpers/kpdriver tests/helpers/tlspipe \
		tests/helpers/sandboxprobe $(HOSTILE) tests/helpers/recluse-rotate \
		tests/helpers/nosched
DEPS =		$(OBJS:.o=.d) $(HELPERS:=.d) $(HOSTILE_OBJS:.o=.d) \
		tests/helpers/tickets-rotate.d

all: recluse $(HELPERS)

# Full RELRO, bound at start: children inherit a read-only GOT and never
# run the lazy binder (fewer faults, nothing left writable to aim at).
HARDEN_LDFLAGS = -Wl,-z,relro,-z,now

recluse: $(OBJS)
	$(CC) $(LDFLAGS) $(HARDEN_LDFLAGS) -o $@ $(OBJS) $(LDLIBS)

%.o: %.c
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LAYOUT) $(WARNINGS) $(DEPFLAGS) -c -o $@ $<

tests/helpers/echod: tests/helpers/echod.c
	$(CC) $(CPPFLAGS) $(CFLAGS) $(WARNINGS) $(DEPFLAGS) -o $@ $< $(LDFLAGS)

tests/helpers/tlspipe: tests/helpers/tlspipe.c
	$(CC) $(CPPFLAGS) $(CFLAGS) $(WARNINGS) $(DEPFLAGS) -o $@ $< $(LDFLAGS) $(LDLIBS)

KPDRIVER_OBJS =	keyproc/kp_ctl.o lib/log.o lib/msg.o lib/role.o
tests/helpers/kpdriver: tests/helpers/kpdriver.c $(KPDRIVER_OBJS)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(WARNINGS) $(DEPFLAGS) -o $@ $< \
	    $(KPDRIVER_OBJS) $(LDFLAGS) $(LDLIBS)

# sandboxprobe: system calls tried under a role's seccomp filter.
tests/helpers/sandboxprobe: tests/helpers/sandboxprobe.c lib/sandbox.o
	$(CC) $(CPPFLAGS) $(CFLAGS) $(WARNINGS) $(DEPFLAGS) -o $@ $< \
	    lib/sandbox.o $(LDFLAGS) $(LDLIBS)

# nosched: a command under a filter that kills sched_setscheduler(2).
tests/helpers/nosched: tests/helpers/nosched.c
	$(CC) $(CPPFLAGS) $(CFLAGS) $(WARNINGS) $(DEPFLAGS) -o $@ $< \
	    $(LDFLAGS) $(LDLIBS)

# The test-only build of tests/isolation.bats, never installed: recluse
# with the hooks proxy/child.c has under RECLUSE_HOSTILE, which run the
# attacks of tests/helpers/hostile.c inside a real sandboxed child; and
# hostile-control, the same attacks in an ordinary process.
tests/helpers/child-hostile.o: proxy/child.c
	$(CC) $(CPPFLAGS) -DRECLUSE_HOSTILE -include tests/helpers/hostile.h \
	    $(CFLAGS) $(LAYOUT) $(WARNINGS) $(DEPFLAGS) -c -o $@ $<

tests/helpers/recluse-hostile: $(filter-out proxy/child.o,$(OBJS)) $(HOSTILE_OBJS)
	$(CC) $(LDFLAGS) $(HARDEN_LDFLAGS) -o $@ $^ $(LDLIBS)

# tests/tickets.bats: recluse that also rotates its ticket keys on SIGUSR2
# (proxy/tickets.c under TICKETS_ROTATE_ON_SIGUSR2); never installed.
tests/helpers/tickets-rotate.o: proxy/tickets.c
	$(CC) $(CPPFLAGS) -DTICKETS_ROTATE_ON_SIGUSR2 $(CFLAGS) $(LAYOUT) \
	    $(WARNINGS) $(DEPFLAGS) -c -o $@ $<

tests/helpers/recluse-rotate: $(filter-out proxy/tickets.o,$(OBJS)) \
    tests/helpers/tickets-rotate.o
	$(CC) $(LDFLAGS) $(HARDEN_LDFLAGS) -o $@ $^ $(LDLIBS)

tests/helpers/hostile-control: tests/helpers/hostile-control.c tests/helpers/hostile.o
	$(CC) $(CPPFLAGS) $(CFLAGS) $(WARNINGS) $(DEPFLAGS) -o $@ $< \
	    tests/helpers/hostile.o $(LDFLAGS)

# bench/kpsign: the cost of a signature through keyproc (make bench/kpsign).
KPSIGN_OBJS =	keyproc/kp_ctl.o keyproc/kp_provider.o keyproc/kp_ref.o \
		keyproc/sign.o lib/log.o lib/msg.o lib/role.o
bench/kpsign: bench/kpsign.c $(KPSIGN_OBJS)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(WARNINGS) $(DEPFLAGS) -o $@ $< \
	    $(KPSIGN_OBJS) $(LDFLAGS) $(LDLIBS)

# Fuzz targets (tests/fuzz/, HACKING.md): libFuzzer with ASan and UBSan,
# built with clang into tests/fuzz/build/, apart from the gcc build.  Each
# target links only the pure parser or check it feeds.  make fuzz-run runs
# every one for FUZZ_SECONDS on a scratch copy of its seed corpus.
FUZZ_CC ?=	clang-14
FUZZ_SECONDS ?=	60
FUZZ_DIR =	tests/fuzz/build
FUZZ_FLAGS =	-O1 -g -fno-omit-frame-pointer -fno-sanitize-recover=all
FUZZ_SAN =	address,undefined
FUZZ_TARGETS =	fuzz_conf fuzz_kpcheck fuzz_chan fuzz_pp
FUZZ_BINS =	$(FUZZ_TARGETS:%=$(FUZZ_DIR)/%)
# what each target links besides its own tests/fuzz/NAME.c
fuzz_conf_SRCS =	config/parse.c config/conf.c config/cidr.c \
			config/clientca.c config/conf_tickets.c
fuzz_kpcheck_SRCS =	keyproc/kp_check.c keyproc/policy.c lib/msg.c
fuzz_chan_SRCS =	proxy/parent_check.c lib/log.c lib/msg.c
fuzz_pp_SRCS =		proxy/pp_parse.c proxy/pp.c

fuzz: $(FUZZ_BINS)

$(FUZZ_DIR)/%.o: %.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(CPPFLAGS) $(FUZZ_FLAGS) \
	    -fsanitize=fuzzer-no-link,$(FUZZ_SAN) $(WARNINGS) $(DEPFLAGS) \
	    -c -o $@ $<

.SECONDEXPANSION:
$(FUZZ_BINS): $(FUZZ_DIR)/%: $(FUZZ_DIR)/tests/fuzz/%.o \
    $$(addprefix $(FUZZ_DIR)/,$$($$(@F)_SRCS:.c=.o))
	$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer,$(FUZZ_SAN) -o $@ $^ \
	    $(LDLIBS)

fuzz-run: fuzz
	@for t in $(FUZZ_TARGETS); do \
		sh tests/fuzz/run $$t $(FUZZ_SECONDS) || exit 1; \
	done

# Debian packages the build, the tests and the demo need (only the missing).
deps:
	@sh tests/deps.sh

# The suite and the demo make users, chroots and cgroups: root only.
root:
	@[ "$$(id -u)" -eq 0 ] || { echo "make $(MAKECMDGOALS): needs root:" \
	    "run it as root, or as: sudo make $(MAKECMDGOALS)" >&2; exit 1; }

# A sub-make, so that pkg-config runs after deps installed the libraries.
# bench/tlsload is the load of tests/soak.bats.
test: root deps
	$(MAKE) all bench/tlsload
	bats --tap tests

# make soak: the fault and soak cases alone (tests/soak.bats), each load
# running SOAK_SECONDS (6, as in make test); SOAK=long: 30 s each, a few
# minutes in all (docs/RELIABILITY.md).
SOAK_SECONDS ?=	$(if $(filter long,$(SOAK)),30,6)
soak: root deps
	$(MAKE) all bench/tlsload
	SOAK_SECONDS=$(SOAK_SECONDS) bats --tap tests/soak.bats

DEMO_PORT ?=	8443
DEMO_BACKEND_PORT ?= 8080
DEMO_DIR ?=	/var/tmp/recluse-demo

# make demo (as root): recluse on https://localhost:$(DEMO_PORT) in the foreground.
demo: root
	@sh tests/deps.sh demo
	$(MAKE) all
	DEMO_PORT=$(DEMO_PORT) DEMO_BACKEND_PORT=$(DEMO_BACKEND_PORT) \
	    DEMO_DIR=$(DEMO_DIR) bash tests/demo.sh

sanitize: deps
	$(MAKE) clean
	$(MAKE) all CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer" \
	    LDFLAGS="-fsanitize=address,undefined"
	$(MAKE) bench/tlsload
	ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	    bats --tap tests

install: recluse
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8 \
	    $(DESTDIR)$(SYSCONFDIR)/recluse $(DESTDIR)$(UNITDIR) \
	    $(DESTDIR)/usr/lib/sysusers.d $(DESTDIR)/usr/lib/tmpfiles.d
	install -m 755 recluse $(DESTDIR)$(SBINDIR)/recluse
	install -m 644 docs/recluse.8 $(DESTDIR)$(MANDIR)/man8/recluse.8
	install -m 644 docs/recluse.conf.5 $(DESTDIR)$(MANDIR)/man5/recluse.conf.5
	install -m 644 config/recluse.conf.example $(DESTDIR)$(SYSCONFDIR)/recluse/recluse.conf.example
	sed 's|@SBINDIR@|$(SBINDIR)|g' systemd/recluse.service > $(DESTDIR)$(UNITDIR)/recluse.service
	chmod 644 $(DESTDIR)$(UNITDIR)/recluse.service
	install -m 644 systemd/recluse.socket $(DESTDIR)$(UNITDIR)/recluse.socket
	sed 's|@SBINDIR@|$(SBINDIR)|g' systemd/recluse-ocsp-fetch > $(DESTDIR)$(SBINDIR)/recluse-ocsp-fetch
	chmod 755 $(DESTDIR)$(SBINDIR)/recluse-ocsp-fetch
	sed 's|@SBINDIR@|$(SBINDIR)|g' systemd/recluse-ocsp-fetch.service > $(DESTDIR)$(UNITDIR)/recluse-ocsp-fetch.service
	chmod 644 $(DESTDIR)$(UNITDIR)/recluse-ocsp-fetch.service
	install -m 644 systemd/recluse-ocsp-fetch.timer $(DESTDIR)$(UNITDIR)/recluse-ocsp-fetch.timer
	install -m 644 systemd/recluse.sysusers $(DESTDIR)/usr/lib/sysusers.d/recluse.conf
	install -m 644 systemd/recluse.tmpfiles $(DESTDIR)/usr/lib/tmpfiles.d/recluse.conf

# Removes what install put in place; the configuration, the users and
# /var/lib/recluse stay (see docs/OPERATIONS.md).
uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/recluse $(DESTDIR)$(MANDIR)/man8/recluse.8 \
	    $(DESTDIR)$(SBINDIR)/recluse-ocsp-fetch \
	    $(DESTDIR)$(UNITDIR)/recluse-ocsp-fetch.service \
	    $(DESTDIR)$(UNITDIR)/recluse-ocsp-fetch.timer \
	    $(DESTDIR)$(MANDIR)/man5/recluse.conf.5 \
	    $(DESTDIR)$(SYSCONFDIR)/recluse/recluse.conf.example \
	    $(DESTDIR)$(UNITDIR)/recluse.service $(DESTDIR)$(UNITDIR)/recluse.socket \
	    $(DESTDIR)/usr/lib/sysusers.d/recluse.conf \
	    $(DESTDIR)/usr/lib/tmpfiles.d/recluse.conf

# bench: recluse beside hitch (bench/run, docs/PERFORMANCE.md).
BENCH_PROGS =	bench/tlsload bench/kpsign bench/forkfloor bench/statsloop
bench/tlsload: %: %.c
	$(CC) $(CPPFLAGS) $(CFLAGS) $(WARNINGS) $(DEPFLAGS) -o $@ $< $(LDFLAGS) \
	    $(shell pkg-config --libs libssl libcrypto)
# bench/forkfloor: the floor of the design; -i adds bench/floor_iso.c.
bench/forkfloor: bench/forkfloor.c bench/floor_iso.c bench/floor_iso.h
	$(CC) $(CPPFLAGS) $(CFLAGS) $(WARNINGS) -o $@ bench/forkfloor.c \
	    bench/floor_iso.c $(LDFLAGS) \
	    $(shell pkg-config --libs libssl libcrypto libseccomp)

# bench/statsloop: what the parent's counting costs per connection.
STATSLOOP_OBJS = proxy/stats.o proxy/backend.o proxy/route.o lib/log.o \
		  lib/msg.o
bench/statsloop: bench/statsloop.c $(STATSLOOP_OBJS)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(WARNINGS) $(DEPFLAGS) -o $@ $< \
	    $(STATSLOOP_OBJS) $(LDFLAGS) $(LDLIBS)

bench: all $(BENCH_PROGS)
	bench/run

# bench-sni: a listener with 50 certificates against one (bench/sni).
bench-sni: all bench/tlsload
	bench/sni

clean:
	rm -f recluse $(OBJS) $(DEPS) $(HELPERS) $(HOSTILE_OBJS) $(BENCH_PROGS) \
	    tests/helpers/tickets-rotate.o \
	    $(BENCH_PROGS:=.d)
	rm -rf $(FUZZ_DIR)

.PHONY: all root deps test soak demo sanitize install uninstall bench bench-sni clean \
		fuzz fuzz-run

-include $(DEPS) $(BENCH_PROGS:=.d) $(wildcard $(FUZZ_DIR)/*/*.d $(FUZZ_DIR)/*/*/*.d)
