#!/usr/bin/env bats
# The spawners: one exec'ed process per listener, holding only what that
# listener's children need, with three capabilities and a filter; a
# crash of a child gets its listener a fresh one.

load helpers

setup() {
	common_setup
	make_cert web ec256
	make_cert web2 ec256
	BPORT=$(free_port)
	start_echod echo "$BPORT"
	PORT=$(free_port)
	PORT2=$(free_port)
}

teardown() {
	common_teardown
}

# write_conf: listener web on PORT and listener two (certificate web2) on
# PORT2, both to the echo backend.
write_conf() {
	{
		globals_conf
		listener_conf web "127.0.0.1:$PORT" "127.0.0.1:$BPORT"
		cat <<EOC
listener "two" {
	listen 127.0.0.1:$PORT2
	certificate "$T/web2.crt"
	key "$T/web2.key"
	backend 127.0.0.1:$BPORT
}
EOC
	} > "$T/recluse.conf"
}

# load_base PID: where PID has the recluse binary mapped (ASLR).
load_base() {
	awk -v exe="$(readlink "/proc/$1/exe")" \
	    '$6 == exe { split($1, a, "-"); print a[1]; exit }' "/proc/$1/maps"
}

# spawner_for PORT: the spawner that holds the listening socket on PORT.
spawner_for() {
	local sp
	for sp in $(spawner_of "$RECLUSE_PID"); do
		ss -Hltnp "( sport = :$1 )" | grep -q "pid=$sp," && echo "$sp"
	done
	return 0
}

# has_spawner PORT: true once a spawner listens on PORT (evaluated at each
# try of wait_for, unlike an argument "$(spawner_for ...)").
has_spawner() {
	[ -n "$(spawner_for "$1")" ]
}

# runs_exe PID PATH: true once PID's executable is PATH (after its exec).
runs_exe() {
	[ "$(readlink "/proc/$1/exe")" = "$2" ]
}

# new_spawner_for PORT OLD: true once PORT has a spawner other than OLD.
new_spawner_for() {
	local sp
	sp=$(spawner_for "$1")
	[ -n "$sp" ] && [ "$sp" != "$2" ]
}

# spares_of SPAWNER PORT: the children SPAWNER forked that wait on PORT
# (forked from it, they have its layout; the parent has another).
spares_of() {
	local base pid
	base=$(load_base "$1")
	for pid in $(ss -Hltnp "( sport = :$2 )" | grep -o 'pid=[0-9]*' |
	    cut -d= -f2 | sort -u); do
		[ "$pid" != "$1" ] && [ "$pid" != "$RECLUSE_PID" ] &&
		    [ "$(load_base "$pid" 2>/dev/null)" = "$base" ] && echo "$pid"
	done
	return 0
}

# has_spares SPAWNER PORT N: true once SPAWNER has N spares on PORT.
has_spares() {
	[ "$(spares_of "$1" "$2" | wc -l)" -ge "$3" ]
}

# all_gone PID...: true once none of the PIDs is alive (zombies neither).
all_gone() {
	local pid
	for pid in "$@"; do
		[ ! -e "/proc/$pid" ] || return 1
	done
}

# spki_file PEM OUT: OUT is the public key of certificate PEM, DER.
spki_file() {
	openssl x509 -in "$1" -pubkey -noout | openssl pkey -pubin -outform DER \
	    > "$2"
}

@test "each listener has its own spawner: an exec of recluse, with a layout of its own that its children share" {
	write_conf
	start_recluse "$T/recluse.conf"
	wait_for bash -c "[ \$(ps -o comm= --ppid $RECLUSE_PID | grep -c '^recluse-spawner\$') -eq 2 ]"
	sp1=$(spawner_for "$PORT")
	sp2=$(spawner_for "$PORT2")
	[ -n "$sp1" ] && [ -n "$sp2" ] && [ "$sp1" != "$sp2" ]
	# each holds its own listener's socket, not the other's
	! ss -Hltnp "( sport = :$PORT2 )" | grep -q "pid=$sp1," || false
	! ss -Hltnp "( sport = :$PORT )" | grep -q "pid=$sp2," || false
	# the recluse binary, exec'ed under its own name
	for sp in "$sp1" "$sp2"; do
		[ "$(readlink /proc/$sp/exe)" = "$(readlink /proc/$RECLUSE_PID/exe)" ]
		[ "$(tr '\0' ' ' < /proc/$sp/cmdline | sed 's/ *$//')" = "recluse-spawner" ]
		[ "$(cat /proc/$sp/comm)" = recluse-spawner ]
		[ "$(ps -o ppid= -p "$sp" | tr -d ' ')" -eq "$RECLUSE_PID" ]
	done
	# a layout of its own (ASLR): not the parent's, not the other's
	pbase=$(load_base "$RECLUSE_PID")
	b1=$(load_base "$sp1")
	b2=$(load_base "$sp2")
	echo "parent $pbase spawners $b1 $b2"
	[ -n "$pbase" ] && [ -n "$b1" ] && [ -n "$b2" ]
	[ "$b1" != "$pbase" ] && [ "$b2" != "$pbase" ] && [ "$b1" != "$b2" ]
	# its children have its layout, not the parent's, and are the
	# parent's children
	wait_for has_spares "$sp1" "$PORT" 4
	for pid in $(ss -Hltnp "( sport = :$PORT )" | grep -o 'pid=[0-9]*' |
	    cut -d= -f2 | sort -u); do
		[ "$pid" = "$RECLUSE_PID" ] || [ "$pid" = "$sp1" ] && continue
		[ "$(load_base "$pid")" = "$b1" ]
		[ "$(ps -o ppid= -p "$pid" | tr -d ' ')" -eq "$RECLUSE_PID" ]
	done
	run tls_echo "$PORT" <<< "one"
	[ "$output" = "one" ]
	run tls_echo "$PORT2" <<< "two"
	[ "$output" = "two" ]
}

@test "a spawner's libcrypto locks sit in a region of their own" {
	write_conf
	start_recluse "$T/recluse.conf" -v
	wait_for has_spawner "$PORT"
	run tls_echo "$PORT" <<< "one"
	[ "$output" = "one" ]
	# each spawner, once set up, says how many slots of the region
	# (proxy/lockpool.c) libcrypto took: OpenSSL makes hundreds of locks
	wait_for grep -q "lockpool: [0-9]* slots" "$T/recluse.log"
	grep "lockpool:" "$T/recluse.log"
	[ "$(grep -c "lockpool: [0-9]* slots" "$T/recluse.log")" -eq 2 ]
	for n in $(sed -n "s/.*lockpool: \([0-9]*\) slots.*/\1/p" \
	    "$T/recluse.log"); do
		[ "$n" -ge 20 ]
	done
	! grep -q "lockpool: not installed" "$T/recluse.log" || false
}

# conn_child PORT: the child holding the (one) connection to PORT.
conn_child() {
	ss -Htnp state established "( sport = :$1 )" |
	    grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u | head -n 1
}

# no_same_copy PID: PID holds copies of the spawner's frozen pages
# (proxy/heapfile.c), and none of them holds the file's own bytes.
no_same_copy() {
	out=$(python3 "$HELPERS/cowsame.py" "$1")
	echo "$out"
	set -- $out
	[ "$2" -gt 0 ] && [ "$4" -eq 0 ] && [ "$6" -ge 2 ]
}

# frozen_rss PID: kB of the spawner's frozen heap and lock region that PID
# has mapped (its writable mappings of the spawner's sealed files).
frozen_rss() {
	awk '/^[0-9a-f]+-[0-9a-f]+ / { m = ($2 ~ /^rw/ && /memfd:recluse-spawner/) }
	    m && $1 == "Rss:" { s += $2 } END { print s + 0 }' "/proc/$1/smaps"
}

@test "a quiet child gives back the spawner's pages it copied and left as they were" {
	write_conf
	start_recluse "$T/recluse.conf"
	wait_for has_spawner "$PORT"
	hold_conn held "$PORT"
	echo "one" > "$T/held.in"
	wait_for grep -q one "$T/held.out"
	wait_for holds '[ -n "$(conn_child "$PORT")" ]'
	child=$(conn_child "$PORT")
	# The heap and the lock region are mappings of the spawner's sealed
	# files; once the connection has been quiet for 500 ms, every copy the
	# child still holds differs from the file (a copy with the file's
	# bytes went back), and it holds some (the harness sees copies).
	wait_for no_same_copy "$child"
	# and it gave back only copies: the pages it read and never copied
	# stay mapped, shared (dropping them too would cost a fault each on
	# the next request), more of them than it holds copies
	mapped=$(frozen_rss "$child")
	copied=$(( $(copies "$child") * 4 ))
	echo "frozen pages mapped by the quiet child: $mapped kB, $copied kB of them copies"
	[ $(( mapped - copied )) -gt "$copied" ]
	# and the connection still works: the pages read back as they were
	echo "two" > "$T/held.in"
	wait_for grep -q two "$T/held.out"
}

# copies PID: how many pages of the spawner's frozen heap and lock region
# PID holds copies of (tests/helpers/cowsame.py).
copies() {
	python3 "$HELPERS/cowsame.py" "$1" | awk '{ print $2 }'
}

@test "a child copies the heap pages a child writes as soon as its connection arrives, not one fault at a time" {
	write_conf
	start_recluse "$T/recluse.conf" -v
	wait_for has_spawner "$PORT"
	sp=$(spawner_for "$PORT")
	# the spawner's probe (heapfile_learn()) found the pages a child
	# writes of its heap and lock region
	wait_for grep -q "spawner $sp: heapfile: [0-9]* pages a child writes" \
	    "$T/recluse.log"
	n=$(sed -n "s/.*spawner $sp: heapfile: \([0-9]*\) pages a child writes.*/\1/p" \
	    "$T/recluse.log")
	echo "pages a child writes: $n"
	[ "$n" -ge 16 ]
	# a connection that sends nothing: its child has copied them all
	# before any byte of a handshake (a child that copies as it writes
	# holds only what its own setup wrote)
	bash -c 'exec 8<>"/dev/tcp/127.0.0.1/$1"; exec sleep 30' sh "$PORT" &
	track $!
	wait_for holds '[ -n "$(conn_child "$PORT")" ]'
	child=$(conn_child "$PORT")
	wait_for holds "[ \"\$(copies $child)\" -ge $n ]"
	echo "copies: $(copies "$child")"
	# and the listener still serves
	run tls_echo "$PORT" <<< "one"
	[ "$output" = "one" ]
}

# text_rss PID: kB of PID's read-only mappings of libcrypto (text and
# constants) that are mapped in its page table.
text_rss() {
	awk '/^[0-9a-f]+-[0-9a-f]+ / { m = ($2 ~ /^r-/ && $6 ~ /libcrypto/) }
	    m && $1 == "Rss:" { s += $2 } END { print s + 0 }' "/proc/$1/smaps"
}

# spare_of LISTENER: the newest spare child of LISTENER.
spare_of() {
	ps -o pid=,args= --ppid "$RECLUSE_PID" --sort=start_time |
	    awk -v t="recluse-child $1 spare" \
	    '{ p = $1; $1 = ""; sub(/^ /, ""); sub(/ *$/, "") } $0 == t { s = p }
	    END { print s }'
}

@test "a spare child starts with the libcrypto text its spawner has mapped, copied at fork" {
	write_conf
	start_recluse "$T/recluse.conf" -v
	wait_for has_spawner "$PORT"
	# one connection, so that the spare below comes from a spawner that
	# has served a fork since its warm-up
	run tls_echo "$PORT" <<< "one"
	[ "$output" = "one" ]
	wait_for holds '[ -n "$(spare_of web)" ]'
	sp=$(spawner_for "$PORT")
	spare=$(spare_of web)
	s=$(text_rss "$sp")
	c=$(text_rss "$spare")
	echo "libcrypto mapped: spawner $s kB, spare $c kB"
	# the spawner's warm-up handshake mapped a good part of libcrypto;
	# the spare, which has run no TLS code yet, has nearly all of it
	# mapped (without the copy at fork: what it faulted in itself, a
	# tenth of it)
	[ "$s" -ge 512 ]
	[ $((c * 10)) -ge $((s * 9)) ]
	grep "textmap:" "$T/recluse.log"
	[ "$(grep -c "textmap: [1-9][0-9]* read-only segments copied at fork" \
	    "$T/recluse.log")" -eq 2 ]
}

@test "a spawner keeps only CAP_SETUID, CAP_SETGID and CAP_SYS_CHROOT, with no_new_privs, seccomp, and is not dumpable" {
	write_conf
	start_recluse "$T/recluse.conf"
	wait_for has_spawner "$PORT"
	sp=$(spawner_for "$PORT")
	grep Cap /proc/$sp/status
	# SETGID (6), SETUID (7), SYS_CHROOT (18)
	for set in CapPrm CapEff CapBnd; do
		grep -q "^$set:[[:space:]]*00000000000400c0$" /proc/$sp/status
	done
	grep -q "^CapInh:[[:space:]]*0000000000000000$" /proc/$sp/status
	grep -q "^CapAmb:[[:space:]]*0000000000000000$" /proc/$sp/status
	grep -q "^NoNewPrivs:[[:space:]]*1$" /proc/$sp/status
	grep -q "^Seccomp:[[:space:]]*2$" /proc/$sp/status
	# not dumpable: a root process with the same capabilities and no
	# CAP_SYS_PTRACE may look into a dumpable one (the control), not
	# into the spawner
	same="setpriv --bounding-set -all,+setuid,+setgid,+sys_chroot"
	$same sleep 60 &
	ctl=$!
	track "$ctl"
	wait_for runs_exe "$ctl" "$(command -v sleep)"
	run $same readlink "/proc/$ctl/exe"
	[ "$status" -eq 0 ] && [ -n "$output" ]
	run $same readlink "/proc/$sp/exe"
	[ "$status" -ne 0 ] && [ -z "$output" ]
	# and it still forks children that serve
	run tls_echo "$PORT" <<< "served"
	[ "$output" = "served" ]
}

@test "spawners and children have /dev/null as stdin, stdout and stderr; a spawner's log lines come through the parent" {
	write_conf
	start_recluse "$T/recluse.conf" -v
	wait_for has_spawner "$PORT"
	sp=$(spawner_for "$PORT")
	wait_for has_spares "$sp" "$PORT" 1
	child=$(spares_of "$sp" "$PORT" | head -n 1)
	for pid in "$sp" "$child"; do
		for fd in 0 1 2; do
			[ "$(readlink /proc/$pid/fd/$fd)" = /dev/null ]
		done
	done
	# relayed, with the spawner's pid as prefix
	wait_for grep -Eq "${STAMP}spawner $sp: listener web: ready$" "$T/recluse.log"
}

@test "a child holds neither an earlier connection's SNI nor another listener's certificate, even after a reload" {
	write_conf
	start_recluse "$T/recluse.conf"
	mark=marker-$RANDOM$RANDOM
	# one connection through each listener, with a marker as SNI (not
	# verified: the name is not in the certificate)
	echo a | "$HELPERS/tlspipe" -n "$mark-a.example" -t 10 127.0.0.1 "$PORT" \
	    2>> "$T/tlspipe.log"
	echo b | "$HELPERS/tlspipe" -n "$mark-b.example" -t 10 127.0.0.1 "$PORT2" \
	    2>> "$T/tlspipe.log"
	wait_for grep -q "sni=$mark-a.example" "$T/recluse.log"
	wait_for grep -q "sni=$mark-b.example" "$T/recluse.log"
	printf '%s' "$mark-a" > "$T/sni-a"
	printf '%s' "$mark-b" > "$T/sni-b"
	printf '%s' "$mark-c" > "$T/sni-c"
	spki_file "$T/web.leaf" "$T/web.spki"
	spki_file "$T/web2.leaf" "$T/web2.spki"
	sed -n 2p "$T/web2.leaf" > "$T/web2.pemline"
	# a later generation, as in the original finding
	kill -HUP "$RECLUSE_PID"
	wait_for grep -q "ready: configuration 2" "$T/recluse.log"
	wait_for new_spawner_for "$PORT" ""
	sp=$(spawner_for "$PORT")
	# the positive control for SNI: a child holding a connection whose
	# SNI is marker c
	mkfifo "$T/c.in"
	"$HELPERS/tlspipe" -n "$mark-c.example" -t 60 127.0.0.1 "$PORT" \
	    < "$T/c.in" > "$T/c.out" 2>> "$T/tlspipe.log" &
	track $!
	exec {cfd}> "$T/c.in"
	echo ping >&$cfd
	wait_for grep -q ping "$T/c.out"
	busy=$(ss -Htnp state established "( sport = :$PORT )" |
	    grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u | head -n 1)
	# a spare forked by the new spawner (the busy child has let go of
	# the listening socket)
	wait_for has_spares "$sp" "$PORT" 1
	spare=$(spares_of "$sp" "$PORT" | head -n 1)
	echo "spare $spare busy $busy"
	[ -n "$busy" ] && [ -n "$spare" ] && [ "$busy" != "$spare" ]
	python3 "$HELPERS/memfind.py" "$T/web.spki" "$T/web2.spki" \
	    "$T/web2.pemline" "$T/sni-a" "$T/sni-b" "$T/sni-c" \
	    -- "$spare" "$busy" > "$T/scan"
	cat "$T/scan"
	exec {cfd}>&-
	# the controls: its own certificate, the busy child's own SNI
	grep -q "^$spare $T/web.spki found$" "$T/scan"
	grep -q "^$busy $T/sni-c found$" "$T/scan"
	# nothing of the other listener, nothing of earlier connections
	for pid in "$spare" "$busy"; do
		grep -q "^$pid $T/web2.spki absent$" "$T/scan"
		grep -q "^$pid $T/web2.pemline absent$" "$T/scan"
		grep -q "^$pid $T/sni-a absent$" "$T/scan"
		grep -q "^$pid $T/sni-b absent$" "$T/scan"
	done
	grep -q "^$spare $T/sni-c absent$" "$T/scan"
}

@test "a child killed by SIGSEGV gets its listener a freshly exec'ed spawner, and the old one's spares are retired" {
	write_conf
	start_recluse "$T/recluse.conf"
	wait_for has_spawner "$PORT"
	sp=$(spawner_for "$PORT")
	other=$(spawner_for "$PORT2")
	base=$(load_base "$sp")
	wait_for has_spares "$sp" "$PORT" 4
	spares=$(spares_of "$sp" "$PORT")
	victim=$(head -n 1 <<< "$spares")
	kill -SEGV "$victim"
	# 11 (SIGSEGV); under make sanitize, ASan catches it and aborts,
	# which the filter turns into 31 (SIGSYS)
	wait_for grep -Eq "child $victim killed by signal (11 \(Segmentation fault\):|31 \(Bad system call\): forbidden system call;) replacing the spawner of listener web$" \
	    "$T/recluse.log"
	# a new exec: a new pid and a new layout
	wait_for new_spawner_for "$PORT" "$sp"
	new=$(spawner_for "$PORT")
	[ "$(load_base "$new")" != "$base" ]
	# the old spawner is gone (and reaped), so are the spares it forked
	wait_for all_gone "$sp" $spares
	wait_for has_spares "$new" "$PORT" 4
	# a first crash is not held back; the other listener is untouched
	! grep -q "children keep crashing" "$T/recluse.log" || false
	[ "$(spawner_for "$PORT2")" = "$other" ]
	run tls_echo "$PORT" <<< "after"
	[ "$output" = "after" ]
}

@test "after 8 crashes in a row, each crash holds the listener's next spawner back longer; connections are still served" {
	write_conf
	start_recluse "$T/recluse.conf"
	prev=""
	# 8 crashes in a row cost an exec each; the 9th, 10th and 11th hold
	# the next spawner back 1, 2 and 4 s
	for i in $(seq 1 11); do
		wait_for new_spawner_for "$PORT" "$prev"
		sp=$(spawner_for "$PORT")
		wait_for has_spares "$sp" "$PORT" 1
		victim=$(spares_of "$sp" "$PORT" | head -n 1)
		kill -SEGV "$victim"
		wait_for grep -Eq "child $victim killed by signal (11|31) .* replacing the spawner of listener web$" \
		    "$T/recluse.log"
		prev=$sp
	done
	grep -q "listener web: children keep crashing; its next spawner starts in 1 s" "$T/recluse.log"
	grep -q "listener web: children keep crashing; its next spawner starts in 2 s" "$T/recluse.log"
	grep -q "listener web: children keep crashing; its next spawner starts in 4 s" "$T/recluse.log"
	# held back: no spawner for web yet; the other listener serves
	sleep 1
	[ -z "$(spawner_for "$PORT")" ]
	run tls_echo "$PORT2" <<< "other"
	[ "$output" = "other" ]
	# a client of web waits in the backlog and is served once the new
	# spawner is up
	run tls_echo "$PORT" -t 15 <<< "waited"
	[ "$output" = "waited" ]
	new_spawner_for "$PORT" "$prev"
}

@test "children live in an empty network namespace, whatever their backends; TCP and UNIX backends still work" {
	open_to_user "$T"
	start_echod echo "$T/echo.sock"
	{
		globals_conf
		listener_conf web "127.0.0.1:$PORT" "unix \"$T/echo.sock\""
		listener_conf tcp "127.0.0.1:$PORT2" "127.0.0.1:$BPORT"
	} > "$T/recluse.conf"
	start_recluse "$T/recluse.conf"
	wait_for has_spawner "$PORT"
	wait_for test -n "$(spawner_for "$PORT2")"
	sp=$(spawner_for "$PORT")
	wait_for has_spares "$sp" "$PORT" 1
	child=$(spares_of "$sp" "$PORT" | head -n 1)
	netns=$(readlink /proc/$RECLUSE_PID/ns/net)
	[ "$(readlink /proc/$sp/ns/net)" != "$netns" ]
	[ "$(readlink /proc/$child/ns/net)" = "$(readlink /proc/$sp/ns/net)" ]
	# nothing in it but a loopback that is down
	[ "$(nsenter --net=/proc/$sp/ns/net ip -o link | wc -l)" -eq 1 ]
	nsenter --net=/proc/$sp/ns/net ip -o link | grep -q "lo: <LOOPBACK>"
	# the accepted socket and the backend the parent connects work
	run tls_echo "$PORT" <<< "through unix"
	[ "$output" = "through unix" ]
	# so do the children of a listener with a TCP backend: the
	# connector makes that connection
	[ "$(readlink /proc/$(spawner_for "$PORT2")/ns/net)" != "$netns" ]
	run tls_echo "$PORT2" <<< "through tcp"
	[ "$output" = "through tcp" ]
}
