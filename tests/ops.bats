#!/usr/bin/env bats
# Operations: install, systemd units, man pages, the demo, reload, drain,
# socket activation and sd_notify.

load helpers

setup() {
	common_setup
	make_cert web ec256
	BPORT=$(free_port)
	start_echod echo "$BPORT"
}

teardown() {
	common_teardown
}

# conf NAME:PORT...: a configuration with one listener per argument, all
# with the "web" certificate and the echo backend.
conf() {
	local spec
	globals_conf
	[ -n "${DRAIN:-}" ] && echo "timeout drain $DRAIN"
	for spec in "$@"; do
		echo
		listener_conf "${spec%%:*}" "127.0.0.1:${spec#*:}" \
		    "127.0.0.1:$BPORT"
	done
}

# socket_activate ARGS...: recluse -f $T/recluse.conf under
# systemd-socket-activate ARGS (its -l and --fdname), its pid in RECLUSE_PID;
# waits until PORT accepts connections.
socket_activate() {
	systemd-socket-activate "$@" \
	    "$RECLUSE" -f "$T/recluse.conf" >> "$T/recluse.log" 2>&1 3>&- &
	RECLUSE_PID=$!
	track "$RECLUSE_PID"
	wait_port "$PORT"
}

# relays NAME WORD: WORD sent on held connection NAME comes back.
relays() {
	echo "$2" > "$T/$1.in"
	wait_for grep -qx "$2" "$T/$1.out"
}

# serial PORT: the serial number of the certificate served on PORT.
serial() {
	timeout 10 openssl s_client -connect "127.0.0.1:$1" -CAfile "$T/ca.crt" \
	    -verify_return_error < /dev/null 2>>"$T/s_client.log" |
	    openssl x509 -noout -serial
}

# answers PORT: an echo through recluse on PORT works.
answers() {
	[ "$(echo "ping $1" | tls_echo "$1")" = "ping $1" ]
}

# refused PORT: nothing accepts connections on PORT.
refused() {
	! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null || false
}

# listening PORT: a socket listens on PORT (connections in TIME_WAIT on it
# do not count).
listening() {
	ss -Htanl "( sport = :$1 )" 2>/dev/null | grep -q .
}

port_closed() {
	! listening "$1" || false
}

# reloaded N: the parent logged that configuration N is ready.
reloaded() {
	wait_for grep -q "ready: configuration $1," "$T/recluse.log"
}

# exits_with CODE: recluse ($RECLUSE_PID) exits, with status CODE.
exits_with() {
	local rc=0
	wait_for eval '! kill -0 "$RECLUSE_PID" 2>/dev/null' || {
		echo "recluse did not exit" >&2
		return 1
	}
	wait "$RECLUSE_PID" || rc=$?
	echo "exit status $rc" >&2
	[ "$rc" -eq "$1" ]
}

# stopped: recluse ($RECLUSE_PID, not a child of this shell) has exited.
stopped() {
	wait_for eval '! kill -0 "$RECLUSE_PID" 2>/dev/null'
}

# install_to DIR: make install DESTDIR=DIR, quietly.
install_to() {
	make -s -C "$TOP" install DESTDIR="$1" >> "$T/make.log" 2>&1
}

# unit_value KEY: the value(s) of KEY= in systemd/recluse.service.
unit_value() {
	sed -n "s/^$1=//p" "$TOP/systemd/recluse.service"
}

# syscalls_of GROUP-OR-NAME: the system calls it stands for, one a line.
syscalls_of() {
	case "$1" in
	@*)	systemd-analyze syscall-filter "$1" 2>/dev/null |
		    sed -n "s/^    \\([@a-z0-9_-]*\\)$/\\1/p" | while read -r s; do
			syscalls_of "$s"
		done ;;
	*)	echo "$1" ;;
	esac
}

# allowed_syscalls: what the unit's SystemCallFilter= lines allow.
allowed_syscalls() {
	local line item
	: > "$T/allowed"
	while read -r line; do
		case "$line" in
		~*)	for item in ${line#\~}; do
				syscalls_of "$item"
			done | sort -u > "$T/deny"
			sort -u "$T/allowed" | comm -23 - "$T/deny" > "$T/allowed.new"
			mv "$T/allowed.new" "$T/allowed" ;;
		*)	for item in $line; do
				syscalls_of "$item"
			done >> "$T/allowed" ;;
		esac
	done < <(unit_value SystemCallFilter)
	sort -u "$T/allowed"
}

@test "make install DESTDIR installs the binary, units, man pages, example config, sysusers and tmpfiles" {
	[ -f "$TOP/docs/recluse.conf.5" ]
	install_to "$T/root"
	r="$T/root"
	[ -x "$r/usr/local/sbin/recluse" ]
	[ -f "$r/usr/local/share/man/man8/recluse.8" ]
	[ -f "$r/usr/local/share/man/man5/recluse.conf.5" ]
	[ -f "$r/etc/recluse/recluse.conf.example" ]
	[ -f "$r/lib/systemd/system/recluse.service" ]
	[ -f "$r/lib/systemd/system/recluse.socket" ]
	[ -x "$r/usr/local/sbin/recluse-ocsp-fetch" ]
	[ -f "$r/lib/systemd/system/recluse-ocsp-fetch.service" ]
	[ -f "$r/lib/systemd/system/recluse-ocsp-fetch.timer" ]
	! grep -q @SBINDIR@ "$r/usr/local/sbin/recluse-ocsp-fetch" \
	    "$r/lib/systemd/system/recluse-ocsp-fetch.service" || false
	[ -f "$r/usr/lib/sysusers.d/recluse.conf" ]
	[ -f "$r/usr/lib/tmpfiles.d/recluse.conf" ]
	[ "$(stat -c %a "$r/lib/systemd/system/recluse.service")" = 644 ]
	grep -qx "ExecStart=/usr/local/sbin/recluse -f /etc/recluse/recluse.conf" \
	    "$r/lib/systemd/system/recluse.service"
	! grep -q @SBINDIR@ "$r/lib/systemd/system/recluse.service" || false
	make -s -C "$TOP" uninstall DESTDIR="$r" >> "$T/make.log" 2>&1
	[ -z "$(find "$r" -type f)" ]
}

@test "the installed units pass systemd-analyze verify, man pages included" {
	install_to "$T/root"
	# The unit as installed, pointed at the binary where DESTDIR put it.
	mkdir "$T/units"
	sed "s|/usr/local/sbin/|$T/root/usr/local/sbin/|g" \
	    "$T/root/lib/systemd/system/recluse.service" > "$T/units/recluse.service"
	cp "$T/root/lib/systemd/system/recluse.socket" "$T/units/"
	sed "s|/usr/local/sbin/|$T/root/usr/local/sbin/|g" \
	    "$T/root/lib/systemd/system/recluse-ocsp-fetch.service" \
	    > "$T/units/recluse-ocsp-fetch.service"
	cp "$T/root/lib/systemd/system/recluse-ocsp-fetch.timer" "$T/units/"
	run env MANPATH="$T/root/usr/local/share/man" systemd-analyze verify \
	    "$T/units/recluse.service" "$T/units/recluse.socket" \
	    "$T/units/recluse-ocsp-fetch.service" \
	    "$T/units/recluse-ocsp-fetch.timer"
	echo "$output"
	[ "$status" -eq 0 ]
	[ -z "$output" ]
}

@test "the service's exposure score stays at 2.3 or below" {
	sed 's|@SBINDIR@|/usr/local/sbin|g' "$TOP/systemd/recluse.service" \
	    > "$T/recluse.service"
	run systemd-analyze security --offline=yes --no-pager "$T/recluse.service"
	echo "$output" | grep -E '✗|Overall'
	score=$(echo "$output" | sed -n 's/.*Overall exposure level for recluse.service: \([0-9.]*\).*/\1/p')
	[ -n "$score" ]
	awk -v s="$score" 'BEGIN { exit !(s <= 2.3) }'
}

@test "sysusers and tmpfiles make the two users and a root-owned empty chroot" {
	mkdir -p "$T/sysroot/etc"
	systemd-sysusers --root="$T/sysroot" "$TOP/systemd/recluse.sysusers" \
	    2>>"$T/sysusers.log"
	grep -q '^recluse:' "$T/sysroot/etc/passwd"
	grep -q '^recluse-key:' "$T/sysroot/etc/passwd"
	grep -q '^recluse:.*:/usr/sbin/nologin$' "$T/sysroot/etc/passwd"
	systemd-tmpfiles --root="$T/sysroot" --create "$TOP/systemd/recluse.tmpfiles"
	[ "$(stat -c '%U %G %a' "$T/sysroot/var/lib/recluse/empty")" = "root root 755" ]
	[ -z "$(ls -A "$T/sysroot/var/lib/recluse/empty")" ]
}

@test "both man pages are mandoc -Tlint clean" {
	for page in "$TOP/docs/recluse.8" "$TOP/docs/recluse.conf.5"; do
		[ -f "$page" ]
		# Cross-references to pages this machine lacks are not the
		# page's fault: everything else counts.
		run mandoc -Tlint "$page"
		echo "$output" | grep -v -e 'referenced manual not found' \
		    -e 'outdated mandoc.db' > "$T/lint" || true
		cat "$T/lint"
		[ ! -s "$T/lint" ]
	done
}

@test "every system call recluse makes is allowed by the unit's SystemCallFilter" {
	allowed_syscalls > "$T/allowed.list"
	[ -s "$T/allowed.list" ]
	PORT=$(free_port)
	conf "web:$PORT" > "$T/recluse.conf"
	# Signals go to recluse itself, not to strace (which would detach);
	# under the unit's CPUSchedulingPolicy=, as systemd starts it.
	policy=$(unit_value CPUSchedulingPolicy)
	[ -n "$policy" ]
	chrt "--$policy" 0 strace -f -qq -o "$T/strace.out" \
	    bash -c 'echo $$ > "$1"; shift; exec "$@"' \
	    - "$T/recluse.pid" "$RECLUSE" -f "$T/recluse.conf" \
	    >> "$T/recluse.log" 2>&1 3>&- &
	track $!
	wait_for test -s "$T/recluse.pid"
	RECLUSE_PID=$(cat "$T/recluse.pid")
	track "$RECLUSE_PID"
	wait_for grep -q "ready" "$T/recluse.log"
	answers "$PORT"
	kill -HUP "$RECLUSE_PID"
	reloaded 2
	answers "$PORT"
	kill -TERM "$RECLUSE_PID"
	stopped
	grep -q "parent: stopped" "$T/recluse.log"
	strace -f -qq -o "$T/strace-n.out" "$RECLUSE" -n -f "$T/recluse.conf" \
	    2>>"$T/recluse.log"
	sed -n 's/^[0-9]* *\([a-z0-9_]*\)(.*/\1/p' "$T/strace.out" "$T/strace-n.out" |
	    sort -u > "$T/used.list"
	comm -23 "$T/used.list" "$T/allowed.list" > "$T/forbidden"
	echo "system calls the unit would kill recluse for:"
	cat "$T/forbidden"
	[ ! -s "$T/forbidden" ]
	# RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX
	! grep -E '(^| )socket(pair)?\(AF_' "$T/strace.out" "$T/strace-n.out" |
	    grep -vE 'socket(pair)?\(AF_(INET|INET6|UNIX),' || false
	# MemoryDenyWriteExecute=yes
	! grep -E 'mmap\(.*PROT_WRITE\|PROT_EXEC|mprotect\(.*PROT_EXEC' \
	    "$T/strace.out" "$T/strace-n.out" || false
}

@test "recluse works with only the unit's capability bounding set, securebits and no new privileges" {
	caps=$(unit_value CapabilityBoundingSet | tr ' ' '\n' |
	    sed 's/^CAP_//' | tr 'A-Z' 'a-z' | sed 's/^/+/' | paste -sd, -)
	[ -n "$caps" ]
	# SecureBits=, if the unit sets any (noroot would leave root, and so
	# recluse, without capabilities after exec).
	bits=$(unit_value SecureBits | tr ' ' '\n' | sed '/^$/d; s/-/_/g; s/^/+/' |
	    paste -sd, -)
	PORT=$(free_port)
	DRAIN=1 conf "web:$PORT" > "$T/recluse.conf"
	setpriv ${bits:+--securebits "$bits"} --bounding-set "-all,$caps" \
	    --no-new-privs -- \
	    "$RECLUSE" -f "$T/recluse.conf" >> "$T/recluse.log" 2>&1 3>&- &
	RECLUSE_PID=$!
	track "$RECLUSE_PID"
	wait_for grep -q "ready" "$T/recluse.log"
	answers "$PORT"
	kill -HUP "$RECLUSE_PID"
	reloaded 2
	answers "$PORT"
	# A connection left open past the drain timeout: the parent must be
	# able to kill its child, which runs as another user.
	hold_conn a "$PORT"
	relays a one
	kill -TERM "$RECLUSE_PID"
	exits_with 0
	wait_for eval '! kill -0 "$HELD_PID" 2>/dev/null'
	! grep -E "Operation not permitted|cannot" "$T/recluse.log" || false
}

@test "make demo serves a page through recluse, and a second run works too" {
	for run in 1 2; do
		DPORT=$(free_port)
		DBPORT=$(free_port)
		# The test users and chroot: the suite leaves the system's
		# users and /var/lib/recluse alone.
		DEMO_USER=$TEST_USER DEMO_KEYUSER=$TEST_KEYUSER DEMO_CHROOT="$T/empty" \
		    setsid make -s -C "$TOP" demo DEMO_PORT="$DPORT" \
		    DEMO_BACKEND_PORT="$DBPORT" DEMO_DIR="$T/demo" \
		    >> "$T/demo.log" 2>&1 3>&- &
		DEMO_PID=$!
		track "$DEMO_PID"
		wait_for grep -q "curl --cacert $T/demo/ca.crt https://localhost:$DPORT/" \
		    "$T/demo.log"
		run curl -sS --max-time 10 --cacert "$T/demo/ca.crt" \
		    "https://localhost:$DPORT/"
		echo "$output"
		[ "$status" -eq 0 ]
		[ "$output" = "hello from echod" ]
		# TERM to the demo's process group (make, the script, the
		# backend); the script passes it on to recluse, which drains.
		kill -TERM -- "-$DEMO_PID"
		wait_for eval '! kill -0 "$DEMO_PID" 2>/dev/null'
		wait_for port_closed "$DPORT"
		wait_for port_closed "$DBPORT"
	done
	[ "$(grep -c 'making a throwaway CA' "$T/demo.log")" -eq 1 ]
	# Each stop was a drain, not a "stop now".
	[ "$(grep -c 'parent: stopped' "$T/demo.log")" -eq 2 ]
	! grep -q "stopping now" "$T/demo.log" || false
}

@test "reload picks up a renewed certificate while an open connection keeps working" {
	PORT=$(free_port)
	conf "web:$PORT" > "$T/recluse.conf"
	start_recluse "$T/recluse.conf"
	old=$(openssl x509 -in "$T/web.leaf" -noout -serial)
	[ "$(serial "$PORT")" = "$old" ]
	hold_conn a "$PORT"
	relays a one
	# Renew: a new key and certificate replace the files in place.
	make_cert renewed ec256
	new=$(openssl x509 -in "$T/renewed.leaf" -noout -serial)
	[ "$new" != "$old" ]
	cp "$T/renewed.key" "$T/web.key.tmp"
	cp "$T/renewed.crt" "$T/web.crt.tmp"
	mv -f "$T/web.key.tmp" "$T/web.key"
	mv -f "$T/web.crt.tmp" "$T/web.crt"
	kill -HUP "$RECLUSE_PID"
	reloaded 2
	[ "$(serial "$PORT")" = "$new" ]
	answers "$PORT"
	relays a two
	relays a three
}

@test "a broken configuration on reload is logged with FILE:LINE and the running one stays" {
	PORT=$(free_port)
	conf "web:$PORT" > "$T/recluse.conf"
	start_recluse "$T/recluse.conf"
	echo 'lisen 127.0.0.1:1' >> "$T/recluse.conf"
	line=$(wc -l < "$T/recluse.conf")
	kill -HUP "$RECLUSE_PID"
	wait_for grep -q "reload failed" "$T/recluse.log"
	grep "reload failed" "$T/recluse.log" | grep -qF "$T/recluse.conf:$line:"
	kill -0 "$RECLUSE_PID"
	answers "$PORT"
	# A missing certificate is refused the same way.
	conf "web:$PORT" | sed "s|$T/web.crt|$T/missing.crt|" > "$T/recluse.conf"
	kill -HUP "$RECLUSE_PID"
	wait_for test "$(grep -c 'reload failed' "$T/recluse.log")" -eq 2
	grep "reload failed" "$T/recluse.log" | tail -n 1 | grep -qF "$T/recluse.conf:"
	answers "$PORT"
	! grep -q "ready: configuration 2" "$T/recluse.log" || false
}

@test "a listener added by reload answers, a removed one stops answering" {
	P1=$(free_port)
	P2=$(free_port)
	conf "one:$P1" > "$T/recluse.conf"
	start_recluse "$T/recluse.conf"
	answers "$P1"
	refused "$P2"
	conf "one:$P1" "two:$P2" > "$T/recluse.conf"
	kill -HUP "$RECLUSE_PID"
	reloaded 2
	answers "$P2"
	answers "$P1"
	# A connection on the listener about to go keeps working.
	hold_conn a "$P1"
	relays a one
	conf "two:$P2" > "$T/recluse.conf"
	kill -HUP "$RECLUSE_PID"
	reloaded 3
	wait_for port_closed "$P1"
	refused "$P1"
	answers "$P2"
	relays a two
}

@test "SIGTERM drains an open connection, then exits 0" {
	PORT=$(free_port)
	conf "web:$PORT" > "$T/recluse.conf"
	start_recluse "$T/recluse.conf"
	hold_conn a "$PORT"
	relays a one
	kill -TERM "$RECLUSE_PID"
	wait_for grep -q "stopping" "$T/recluse.log"
	# No new connections, the open one still relays.
	wait_for port_closed "$PORT"
	refused "$PORT"
	relays a two
	sleep 0.5
	kill -0 "$RECLUSE_PID"
	relays a three
	kill "$HELD_PID"
	exits_with 0
	grep -q "stopped" "$T/recluse.log"
}

@test "SIGINT drains like SIGTERM" {
	PORT=$(free_port)
	conf "web:$PORT" > "$T/recluse.conf"
	start_recluse "$T/recluse.conf"
	hold_conn a "$PORT"
	relays a one
	kill -INT "$RECLUSE_PID"
	wait_for port_closed "$PORT"
	relays a two
	kill "$HELD_PID"
	exits_with 0
}

@test "a connection still open at the drain timeout is closed, and recluse exits 0" {
	PORT=$(free_port)
	DRAIN=1 conf "web:$PORT" > "$T/recluse.conf"
	start_recluse "$T/recluse.conf"
	hold_conn a "$PORT"
	relays a one
	kill -TERM "$RECLUSE_PID"
	exits_with 0
	grep -q "drain timeout" "$T/recluse.log"
	wait_for eval '! kill -0 "$HELD_PID" 2>/dev/null'
}

@test "a second SIGTERM during the drain stops at once" {
	PORT=$(free_port)
	conf "web:$PORT" > "$T/recluse.conf"
	start_recluse "$T/recluse.conf"
	hold_conn a "$PORT"
	relays a one
	kill -TERM "$RECLUSE_PID"
	wait_for grep -q "stopping" "$T/recluse.log"
	kill -TERM "$RECLUSE_PID"
	exits_with 0
	wait_for eval '! kill -0 "$HELD_PID" 2>/dev/null'
}

@test "socket activation: a passed socket is used for the listener with its address" {
	PORT=$(free_port)
	conf "web:$PORT" > "$T/recluse.conf"
	socket_activate -l "127.0.0.1:$PORT" --fdname=unrelated
	# The first connection starts recluse and waits in the backlog; recluse
	# could not bind the port itself while the passed socket holds it.
	answers "$PORT"
	grep -q "ready" "$T/recluse.log"
	! grep -q "matches no listener" "$T/recluse.log" || false
	[ "$(readlink "/proc/$RECLUSE_PID/exe")" = "$(readlink -f "$RECLUSE")" ]
	answers "$PORT"
}

@test "socket activation: a passed socket is matched by FileDescriptorName, an unmatched one closed" {
	PORT=$(free_port)
	OTHER=$(free_port)
	SPARE=$(free_port)
	conf "web:$OTHER" > "$T/recluse.conf"
	socket_activate -l "127.0.0.1:$PORT" -l "127.0.0.1:$SPARE" \
	    --fdname=web:nobody
	answers "$PORT"
	answers "$OTHER"
	grep -q "matches no listener" "$T/recluse.log"
	wait_for port_closed "$SPARE"
}

@test "sd_notify: READY=1 at start, RELOADING=1 and READY=1 around a reload, STOPPING=1" {
	python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "a") as f:
    while True:
        f.write(s.recv(4096).decode() + "\n")
        f.flush()
' "$T/notify.sock" "$T/notify.log" 3>&- &
	track $!
	wait_for test -S "$T/notify.sock"
	PORT=$(free_port)
	conf "web:$PORT" > "$T/recluse.conf"
	NOTIFY_SOCKET="$T/notify.sock" start_recluse "$T/recluse.conf"
	wait_for grep -qx "READY=1" "$T/notify.log"
	kill -HUP "$RECLUSE_PID"
	reloaded 2
	wait_for test "$(grep -cx 'READY=1' "$T/notify.log")" -eq 2
	kill -TERM "$RECLUSE_PID"
	exits_with 0
	wait_for grep -qx "STOPPING=1" "$T/notify.log"
	[ "$(paste -sd' ' "$T/notify.log")" = "READY=1 RELOADING=1 READY=1 STOPPING=1" ]
}

@test "Ctrl-C on the terminal recluse runs in drains: open connections keep working" {
	PORT=$(free_port)
	conf "web:$PORT" > "$T/recluse.conf"
	# recluse in the foreground of its own terminal; "$T/ctrl-c" makes
	# the terminal send ^C to its foreground process group.
	python3 - "$RECLUSE" "$T" <<'PY' 3>&- &
import os, pty, select, sys, time
exe, t = sys.argv[1], sys.argv[2]
pid, fd = pty.fork()
if pid == 0:
    os.execv(exe, [exe, "-f", t + "/recluse.conf"])
with open(t + "/recluse.pid", "w") as f:
    f.write("%d\n" % pid)
sent = False
with open(t + "/recluse.log", "ab") as log:
    while True:
        if not sent and os.path.exists(t + "/ctrl-c"):
            os.write(fd, b"\x03")
            sent = True
        r, _, _ = select.select([fd], [], [], 0.1)
        if r:
            try:
                data = os.read(fd, 4096)
            except OSError:
                break
            log.write(data.replace(b"\r", b""))
            log.flush()
_, status = os.waitpid(pid, 0)
with open(t + "/status", "w") as f:
    f.write("%d\n" % os.waitstatus_to_exitcode(status))
PY
	track $!
	wait_for test -s "$T/recluse.pid"
	RECLUSE_PID=$(cat "$T/recluse.pid")
	track "$RECLUSE_PID"
	wait_for grep -q "ready" "$T/recluse.log"
	hold_conn a "$PORT"
	relays a one
	touch "$T/ctrl-c"
	wait_for grep -q "stopping" "$T/recluse.log"
	wait_for port_closed "$PORT"
	relays a two
	! grep -q "killed by signal" "$T/recluse.log" || false
	kill "$HELD_PID"
	wait_for test -s "$T/status"
	[ "$(cat "$T/status")" -eq 0 ]
}

@test "socket activation: sockets passed by name and by address survive reloads" {
	PORT=$(free_port)
	OTHER=$(free_port)
	conf "web:$OTHER" > "$T/recluse.conf"
	socket_activate -l "127.0.0.1:$PORT" --fdname=web
	answers "$PORT"
	kill -HUP "$RECLUSE_PID"
	reloaded 2
	answers "$PORT"
	answers "$OTHER"
	# Gone from the configuration, then back: the passed socket is used
	# again (under systemd, binding it anew would fail: systemd holds it).
	conf "other:$OTHER" > "$T/recluse.conf"
	kill -HUP "$RECLUSE_PID"
	reloaded 3
	conf "web:$OTHER" > "$T/recluse.conf"
	kill -HUP "$RECLUSE_PID"
	reloaded 4
	answers "$PORT"
}

@test "a handshake in progress across a reload completes (old keyproc stays while its children need it)" {
	PORT=$(free_port)
	conf "web:$PORT" > "$T/recluse.conf"
	start_recluse "$T/recluse.conf"
	# Connect (a child accepts), reload, only then start the handshake.
	run python3 - "$PORT" "$T/ca.crt" "$RECLUSE_PID" <<'PY'
import os, signal, socket, ssl, sys, time
port, ca, pid = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
s = socket.create_connection(("127.0.0.1", port))
time.sleep(0.5)
os.kill(pid, signal.SIGHUP)
time.sleep(1.5)
t = ssl.create_default_context(cafile=ca).wrap_socket(s,
    server_hostname="localhost")
t.sendall(b"hello\n")
print(t.recv(100).decode().strip())
PY
	echo "$output"
	[ "$output" = "hello" ]
}
