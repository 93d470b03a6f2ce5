# recluse: high-isolation TLS terminating proxy
PREFIX ?=	/usr/local
SBINDIR ?=	$(PREFIX)/sbin
MANDIR ?=	$(PREFIX)/share/man
SYSCONFDIR ?=	/etc
UNITDIR ?=	/lib/systemd/system
DESTDIR ?=

PKGS =		libtls libevent_core libseccomp libcrypto
CC ?=		cc
CFLAGS ?=	-O2 -g
WARNINGS =	-Wall -Wextra -Werror -Wshadow -Wpointer-arith -Wstrict-prototypes \
		-Wmissing-prototypes -Wno-unused-parameter
CPPFLAGS +=	-D_GNU_SOURCE -I. $(shell pkg-config --cflags $(PKGS))
LDLIBS +=	$(shell pkg-config --libs $(PKGS))
DEPFLAGS =	-MMD -MP

SRCS =		proxy/main.c proxy/spawn.c proxy/child.c proxy/relay.c \
		proxy/backend.c proxy/sandbox.c proxy/log.c proxy/tlsconf.c \
		proxy/listen.c proxy/notify.c proxy/gen.c \
		config/parse.c config/conf.c \
		keyproc/keyproc.c keyproc/sign.c keyproc/policy.c \
		keyproc/kp_provider.c keyproc/kp_ref.c keyproc/kp_ctl.c
OBJS =		$(SRCS:.c=.o)
HELPERS =	tests/helpers/echod tests/helpers/kpdriver
DEPS =		$(OBJS:.o=.d) $(HELPERS:=.d)

all: recluse $(HELPERS)

recluse: $(OBJS)
	$(CC) $(LDFLAGS) -o $@ $(OBJS) $(LDLIBS)

%.o: %.c
	$(CC) $(CPPFLAGS) $(CFLAGS) $(WARNINGS) $(DEPFLAGS) -c -o $@ $<

tests/helpers/echod: tests/helpers/echod.c
	$(CC) $(CPPFLAGS) $(CFLAGS) $(WARNINGS) $(DEPFLAGS) -o $@ $< $(LDFLAGS)

tests/helpers/kpdriver: tests/helpers/kpdriver.c keyproc/kp_wire.h
	$(CC) $(CPPFLAGS) $(CFLAGS) $(WARNINGS) $(DEPFLAGS) -o $@ $< $(LDFLAGS) $(LDLIBS)

test: all
	bats --tap tests

sanitize:
	$(MAKE) clean
	$(MAKE) all CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer" \
	    LDFLAGS="-fsanitize=address,undefined"
	ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	    RECLUSE_SANITIZE=1 bats --tap tests

install: recluse
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8 \
	    $(DESTDIR)$(SYSCONFDIR)/recluse $(DESTDIR)$(UNITDIR) \
	    $(DESTDIR)/usr/lib/sysusers.d $(DESTDIR)/usr/lib/tmpfiles.d
	install -m 755 recluse $(DESTDIR)$(SBINDIR)/recluse
	install -m 644 docs/recluse.8 $(DESTDIR)$(MANDIR)/man8/recluse.8
	install -m 644 docs/recluse.conf.5 $(DESTDIR)$(MANDIR)/man5/recluse.conf.5
	install -m 644 config/recluse.conf.example $(DESTDIR)$(SYSCONFDIR)/recluse/recluse.conf.example
	sed 's|@SBINDIR@|$(SBINDIR)|g' systemd/recluse.service > $(DESTDIR)$(UNITDIR)/recluse.service
	install -m 644 systemd/recluse.socket $(DESTDIR)$(UNITDIR)/recluse.socket
	install -m 644 systemd/recluse.sysusers $(DESTDIR)/usr/lib/sysusers.d/recluse.conf
	install -m 644 systemd/recluse.tmpfiles $(DESTDIR)/usr/lib/tmpfiles.d/recluse.conf

bench: all
	bench/run

clean:
	rm -f recluse $(OBJS) $(DEPS) $(HELPERS)

.PHONY: all test sanitize install bench clean

-include $(DEPS)
