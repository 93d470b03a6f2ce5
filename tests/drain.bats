#!/usr/bin/env bats
# The end of a drain (SIGTERM): at `timeout drain` every connection still
# open is ended cleanly by its own process (close_notify to the client, EOF
# to the backend, its access line with end=drain), and recluse exits at
# once; a process that does not end is killed a second later, and that is
# logged.  With `timeout drain-idle`, a connection idle that long in the
# drain ends then.

load helpers

setup() {
	common_setup
	make_cert web ec256
	BPORT=$(free_port)
	start_echod echo "$BPORT"
	PORT=$(free_port)
}

teardown() {
	common_teardown
}

# conf DRAIN DRAIN_IDLE [BACKEND]: one listener on $PORT, the echo backend.
conf() {
	globals_conf
	echo "timeout drain $1"
	echo "timeout drain-idle $2"
	listener_conf web "127.0.0.1:$PORT" "${3:-127.0.0.1:$BPORT}"
}

# pipe_conn NAME: a TLS connection through recluse by tlspipe, kept open:
# fed from the fifo $T/NAME.in, output in $T/NAME.out, its report ("server=
# close_notify" or "server=eof") in $T/NAME.err; it leaves as soon as the
# server closes (-k).  Its pid in CONN_PID.
pipe_conn() {
	mkfifo "$T/$1.in"
	sleep 300 > "$T/$1.in" 3>&- &
	track $!
	"$HELPERS/tlspipe" -k -v -C "$T/ca.crt" -t 120 127.0.0.1 "$PORT" \
	    < "$T/$1.in" > "$T/$1.out" 2> "$T/$1.err" 3>&- &
	CONN_PID=$!
	track "$CONN_PID"
	wait_for grep -q "connected" "$T/$1.err"
}

# relays NAME WORD: WORD sent on connection NAME comes back.
relays() {
	echo "$2" > "$T/$1.in"
	wait_for grep -qx "$2" "$T/$1.out"
}

# gone PID: PID has exited (waited for, so not a zombie of ours).
gone() {
	! kill -0 "$1" 2>/dev/null
}

# exit_status PID: wait for our background job PID and print its status.
exit_status() {
	local rc=0
	wait "$1" || rc=$?
	echo "$rc"
}

# conn_child: the pid of the process that holds the one connection on $PORT.
conn_child() {
	ss -Htnp state established "( sport = :$PORT )" |
	    grep -o 'pid=[0-9]*' | head -n 1 | cut -d= -f2
}

# has_conn_child: a process holds the connection on $PORT (it accepted).
has_conn_child() {
	[ -n "$(conn_child)" ]
}

# since T0: seconds since the $EPOCHREALTIME T0, as a decimal.
since() {
	awk -v now="$EPOCHREALTIME" -v t0="$1" 'BEGIN { printf "%.3f", now - t0 }'
}

# holds EXPR: the awk expression EXPR (of numbers) is true.
holds() {
	awk "BEGIN { exit !($1) }"
}

# stopped_within SECS: recluse ($RECLUSE_PID) exits 0 within SECS of the
# SIGTERM sent at $T0; the time it took in STOP_TIME.
stopped_within() {
	local i rc=0
	for i in $(seq 1 $(( $1 * 20 + 100 ))); do
		gone "$RECLUSE_PID" && break
		sleep 0.05
	done
	STOP_TIME=$(since "$T0")
	echo "recluse stopped after $STOP_TIME s" >&2
	wait "$RECLUSE_PID" || rc=$?
	[ "$rc" -eq 0 ]
	holds "$STOP_TIME < $1"
}

# ticks: how many "tick" lines came back on connection busy;
# more_ticks N: more than N.
ticks() {
	grep -c tick "$T/busy.out"
}
more_ticks() {
	[ "$(ticks)" -gt "$1" ]
}

# backend_eofs N: the backend read EOF on N connections that carried data.
backend_eofs() {
	[ "$(grep -c 'echod: closed in=[1-9][0-9]* .* eof=1' "$T/echod.log")" -eq "$1" ]
}

# not_in TEXT FILE: FILE does not hold TEXT.
not_in() {
	! grep -q -- "$1" "$2"
}

# not_logged TEXT: recluse's log does not hold TEXT.  (A function: a bare
# "! grep" in the middle of a test cannot fail it, as errexit ignores "!".)
not_logged() {
	not_in "$1" "$T/recluse.log"
}

# term: SIGTERM to recluse, its time in T0.
term() {
	T0=$EPOCHREALTIME
	kill -TERM "$RECLUSE_PID"
}

@test "at the drain timeout a connection ends with close_notify, backend EOF and end=drain, and recluse exits at once" {
	conf 2 0 > "$T/recluse.conf"
	start_recluse "$T/recluse.conf"
	pipe_conn a
	relays a one
	term
	wait_for grep -q "stopping" "$T/recluse.log"
	# Still open until the timeout.
	relays a two
	stopped_within 4
	holds "$STOP_TIME >= 1.9"
	# The client read a close_notify, not a bare EOF or a reset.
	wait_for gone "$CONN_PID"
	[ "$(exit_status "$CONN_PID")" -eq 0 ]
	grep -q "server=close_notify" "$T/a.err"
	# The backend read its EOF (eof=1), after the 8 bytes of "one" and
	# "two".
	wait_for grep -q "echod: closed in=8 out=8 eof=1" "$T/echod.log"
	grep -q "drain timeout: closing 1 connections" "$T/recluse.log"
	grep -E "child [0-9]+: client=.* from_client=8 to_client=8 .* end=drain$" \
	    "$T/recluse.log"
	not_logged "killed"
}

@test "timeout drain-idle: an idle connection ends early in the drain, a busy one at the timeout" {
	conf 8 2 > "$T/recluse.conf"
	start_recluse "$T/recluse.conf"
	pipe_conn idle
	IDLE_PID=$CONN_PID
	relays idle one
	pipe_conn busy
	BUSY_PID=$CONN_PID
	relays busy one
	# A line every 0.3 s on the busy one, through the whole drain.
	( while :; do echo tick; sleep 0.3; done > "$T/busy.in" ) 3>&- &
	track $!
	wait_for grep -qx tick "$T/busy.out"
	term
	wait_for grep -q "stopping" "$T/recluse.log"
	grep -q "idle ones after 2 s" "$T/recluse.log"
	# The idle one: closed about 2 s into the drain, cleanly.
	wait_for gone "$IDLE_PID"
	IDLE_TIME=$(since "$T0")
	echo "idle connection closed after $IDLE_TIME s" >&2
	holds "$IDLE_TIME >= 1.5 && $IDLE_TIME < 6"
	[ "$(exit_status "$IDLE_PID")" -eq 0 ]
	grep -q "server=close_notify" "$T/idle.err"
	grep -E "child [0-9]+: client=.* end=drain-idle$" "$T/recluse.log"
	# The busy one still relays, and ends at the timeout.
	n=$(ticks)
	wait_for more_ticks "$n"
	kill -0 "$BUSY_PID"
	stopped_within 10
	holds "$STOP_TIME >= 7.5"
	wait_for gone "$BUSY_PID"
	[ "$(exit_status "$BUSY_PID")" -eq 0 ]
	grep -q "server=close_notify" "$T/busy.err"
	grep -E "child [0-9]+: client=.* end=drain$" "$T/recluse.log"
	wait_for backend_eofs 2
	not_logged "killed"
}

@test "a connection process that ignores the drain is killed a second later, and that is logged" {
	conf 1 0 > "$T/recluse.conf"
	start_recluse "$T/recluse.conf"
	pipe_conn a
	relays a one
	CHILD=$(conn_child)
	[ -n "$CHILD" ]
	# Stopped, it cannot read the parent's word: a wedged or taken-over
	# process.
	kill -STOP "$CHILD"
	term
	stopped_within 5
	holds "$STOP_TIME >= 1.9"
	grep -q "child $CHILD still runs 1 s after the drain timeout: killed" \
	    "$T/recluse.log"
	wait_for gone "$CHILD"
	# No close_notify from a killed process.
	wait_for gone "$CONN_PID"
	not_in "server=close_notify" "$T/a.err"
	not_logged "end=drain"
}

@test "a handshake still waiting at the drain timeout ends with end=drain" {
	# The handshake would wait 60 s; the drain ends it after 1.
	{ conf 1 0; echo "timeout handshake 60"; } > "$T/recluse.conf"
	start_recluse "$T/recluse.conf"
	# A client that connects and says nothing.
	sleep 60 > "/dev/tcp/127.0.0.1/$PORT" 3>&- &
	track $!
	wait_for has_conn_child
	term
	stopped_within 4
	grep -E "child [0-9]+: client=.* tls=- .* end=drain$" "$T/recluse.log"
	not_logged "killed"
}

@test "a backend connect still under way at the drain timeout ends with close_notify and end=drain" {
	# A backend that never answers a connect (its backlog is full).
	FULL=$(free_port)
	"$HELPERS/echod" full "$FULL" >> "$T/full.log" 2>&1 3>&- &
	track $!
	wait_for grep -q "listening on" "$T/full.log"
	{ conf 1 0 "127.0.0.1:$FULL"; echo "timeout connect 30"; } \
	    > "$T/recluse.conf"
	start_recluse "$T/recluse.conf"
	pipe_conn a
	echo one > "$T/a.in"
	term
	stopped_within 4
	wait_for gone "$CONN_PID"
	grep -q "server=close_notify" "$T/a.err"
	grep -E "child [0-9]+: client=.* backend=- .* end=drain$" "$T/recluse.log"
	not_logged "killed"
}

@test "after a reload, a connection of the old configuration ends the same way at the drain timeout" {
	conf 2 0 > "$T/recluse.conf"
	start_recluse "$T/recluse.conf"
	pipe_conn a
	relays a one
	kill -HUP "$RECLUSE_PID"
	wait_for grep -q "ready: configuration 2," "$T/recluse.log"
	relays a two
	term
	stopped_within 4
	wait_for gone "$CONN_PID"
	[ "$(exit_status "$CONN_PID")" -eq 0 ]
	grep -q "server=close_notify" "$T/a.err"
	wait_for grep -q "echod: closed in=8 out=8 eof=1" "$T/echod.log"
	grep -E "child [0-9]+: client=.* end=drain$" "$T/recluse.log"
	not_logged "killed"
}

@test "a taken-over connection process (recluse-hostile, busy with its attacker) is killed a second after the drain timeout" {
	# The test-only build: a child whose client sends "RECLUSE-HOSTILE"
	# holds a conversation with it and reads nothing from the parent.
	RECLUSE="$HELPERS/recluse-hostile"
	conf 1 0 > "$T/recluse.conf"
	start_recluse "$T/recluse.conf"
	python3 - "$PORT" > "$T/hostile.out" 2>> "$T/hostile.log" 3>&- <<'PY' &
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"RECLUSE-HOSTILE sign\n")
print(s.makefile("rb").readline().decode().strip(), flush=True)
time.sleep(60)
PY
	track $!
	wait_for grep -q "^hostile: hello " "$T/hostile.out"
	CHILD=$(awk '{ print $3 }' "$T/hostile.out")
	term
	stopped_within 5
	holds "$STOP_TIME >= 1.9"
	grep -q "child $CHILD still runs 1 s after the drain timeout: killed" \
	    "$T/recluse.log"
}
