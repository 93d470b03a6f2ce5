#!/usr/bin/env bats
# The parent's pool of connection children.

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

write_conf() {
	{
		globals_conf
		echo "max-connections ${1:-64}"
		listener_conf web "127.0.0.1:$PORT" "127.0.0.1:$BPORT"
	} > "$T/recluse.conf"
}

# test_access_lines N: true once the log has N access lines.
test_access_lines() {
	[ "$(grep -c 'end=' "$T/recluse.log")" -ge "$1" ]
}

# test_backend_conns N: true once N connections to the echo backend are
# established.
test_backend_conns() {
	[ "$(ss -Htn state established "( sport = :$BPORT )" | wc -l)" -eq "$1" ]
}

# test_workers_at_most N: true once recluse has at most N children besides
# keyproc.
test_workers_at_most() {
	[ "$(workers | wc -l)" -le "$1" ]
}

# workers_at_least N: true once recluse has N children besides keyproc.
workers_at_least() {
	[ "$(workers | wc -l)" -ge "$1" ]
}

# workers: recluse's connection children (tests/helpers.bash).
workers() {
	conn_children_of "$RECLUSE_PID"
}

@test "spare children wait on the listener before any connection arrives" {
	write_conf
	start_recluse "$T/recluse.conf"
	wait_for workers_at_least 4
	for pid in $(workers); do
		[ "$(stat -c %U /proc/$pid)" != root ]
	done
}

@test "each connection gets a new child and the pool replaces it" {
	write_conf
	start_recluse "$T/recluse.conf" -v
	for i in 1 2 3 4 5 6; do
		run tls_echo "$PORT" <<< "ping $i"
		[ "$output" = "ping $i" ]
	done
	wait_for test_access_lines 6
	# six access lines from six different children
	[ "$(grep 'end=' "$T/recluse.log" | grep -o 'child [0-9]*:' | sort -u |
	    wc -l)" -eq 6 ]
	wait_for workers_at_least 4
}

@test "never more than max-connections children; excess connections wait in the backlog" {
	write_conf 2
	start_recluse "$T/recluse.conf"
	hold_conn a "$PORT"
	first=$HELD_PID
	hold_conn b "$PORT"
	wait_for grep -q "CONNECTED" "$T/a.out" "$T/b.out" 2>/dev/null || true
	sleep 1
	[ "$(workers | wc -l)" -eq 2 ]
	# two children busy: a third client is not served yet...
	run tls_echo "$PORT" -t 2 <<< "third"
	[ "$status" -eq 3 ]
	[ "$(workers | wc -l)" -eq 2 ]
	# ...and is served as soon as one of the two ends
	kill "$first"
	run tls_echo "$PORT" <<< "third"
	[ "$output" = "third" ]
}

@test "children failing during setup make the parent back off, not spin" {
	write_conf
	start_recluse "$T/recluse.conf" -v
	run tls_echo "$PORT" <<< "before"
	[ "$output" = "before" ]
	# the chroot vanishes: every new child fails before serving
	mv "$T/empty" "$T/empty.gone"
	kill $(workers)
	sleep 4
	spawned=$(grep -c "spawned child" "$T/recluse.log")
	grep -q "children keep failing" "$T/recluse.log"
	# without the backoff this is thousands in 4 s
	[ "$spawned" -lt 40 ]
	# it recovers once the chroot is back
	mv "$T/empty.gone" "$T/empty"
	wait_for bash -c "$HELPERS/tlspipe -C $T/ca.crt -t 5 127.0.0.1 $PORT <<< after 2>/dev/null | grep -q after"
}

@test "the parent runs as root and holds no client connection" {
	write_conf
	start_recluse "$T/recluse.conf"
	hold_conn a "$PORT"
	sleep 1
	[ "$(stat -c %u /proc/$RECLUSE_PID)" -eq 0 ]
	# the parent's sockets: listeners and channels; the client's TCP
	# connection is held by one child only
	for ino in $(ls -l /proc/$RECLUSE_PID/fd | sed -n 's/.*socket:\[\([0-9]*\)\].*/\1/p'); do
		! ss -Htanpe state established 2>/dev/null | grep -q "ino:$ino " || false
	done
	[ "$(ss -Htanp state established "( sport = :$PORT )" | wc -l)" -eq 1 ]
}

# spares_logged: the spare targets the parent logged, in order.
spares_logged() {
	sed -n 's/.*listener web: keeping \([0-9]*\) spares$/\1/p' "$T/recluse.log"
}

@test "after a burst the pool keeps a second's worth of spares, then gives them back" {
	write_conf 512
	start_recluse "$T/recluse.conf" -v
	"$HELPERS/tlspipe" -C "$T/ca.crt" -t 60 -c 300 -H 1 127.0.0.1 "$PORT" \
	    > "$T/burst.out" 2>> "$T/tlspipe.log"
	grep -q "ready 300/300" "$T/burst.out"
	# 300 connections within a 10 s period: about 30 spares
	for i in $(seq 1 25); do
		spares_logged | awk '$1 >= 15 { f = 1 } END { exit !f }' && break
		sleep 1
	done
	spares_logged | awk '$1 >= 15 { f = 1 } END { exit !f }'
	wait_for workers_at_least 15
	# unused, they are halved every 10 s down to the minimum of 4, and
	# the spares beyond the target exit
	for i in $(seq 1 45); do
		[ "$(spares_logged | tail -n 1)" = 4 ] && break
		sleep 1
	done
	[ "$(spares_logged | tail -n 1)" = 4 ]
	wait_for test_workers_at_most 4
	run tls_echo "$PORT" <<< "still served"
	[ "$output" = "still served" ]
}

# fd_targets PID: what each descriptor of PID is, one per line, sorted.
fd_targets() {
	local fd
	for fd in /proc/"$1"/fd/*; do
		readlink "$fd"
	done | sed 's/:\[[0-9]*\]$//' | sort
}

@test "children are forked by a spawner that holds only the listening sockets, however many connections are open" {
	write_conf
	start_recluse "$T/recluse.conf"
	sp=$(spawner_of "$RECLUSE_PID")
	[ -n "$sp" ]
	# root, outside any chroot: it forks children that drop privileges
	[ "$(stat -c %u /proc/$sp)" -eq 0 ]
	[ "$(readlink /proc/$sp/root)" = / ]
	# stdin, stdout, stderr (/dev/null), its channel, the listening
	# socket, and nothing else
	before=$(fd_targets "$sp")
	[ "$(grep -c '^socket$' <<< "$before")" -eq 2 ]
	[ "$(grep -c '^/dev/null$' <<< "$before")" -eq 3 ]
	[ "$(wc -l <<< "$before")" -eq 5 ]
	! grep -qF "$T/web.key" <<< "$before" || false
	[ "$(ss -Hltnp "( sport = :$PORT )" | grep -c "pid=$sp,")" -eq 1 ]
	# every child is the parent's child, and the parent holds a channel
	# to each; the spawner's descriptors stay the same
	hold_conn a "$PORT"
	hold_conn b "$PORT"
	hold_conn c "$PORT"
	wait_for bash -c "[ \$(ss -Htn state established '( sport = :$PORT )' | wc -l) -eq 3 ]"
	[ "$(fd_targets "$sp")" = "$before" ]
	for pid in $(ss -Htnp state established "( sport = :$PORT )" |
	    grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u); do
		[ "$(ps -o ppid= -p "$pid" | tr -d ' ')" -eq "$RECLUSE_PID" ]
		[ "$(cat /proc/$pid/comm)" = "$(cat /proc/$RECLUSE_PID/comm)" ]
	done
}

@test "a killed spawner is replaced and connections keep being served" {
	write_conf
	start_recluse "$T/recluse.conf"
	sp=$(spawner_of "$RECLUSE_PID")
	[ -n "$sp" ]
	kill -9 "$sp"
	# the spares it forked serve the next connections; once they are
	# used up the parent starts a new spawner
	for i in $(seq 1 12); do
		run tls_echo "$PORT" <<< "ping $i"
		[ "$output" = "ping $i" ]
	done
	wait_for bash -c "[ -n \"\$(ps -o pid=,comm= --ppid $RECLUSE_PID | awk '\$2 == \"recluse-spawner\" && \$1 != $sp')\" ]"
	# the dead one was reaped, not left a zombie
	! ps -o stat= -p "$sp" 2>/dev/null | grep -q Z || false
	kill -0 "$RECLUSE_PID"
}

@test "clients that connect and leave at once leave no slot behind" {
	write_conf 8
	start_recluse "$T/recluse.conf"
	wait_for workers_at_least 4
	# each takes a spare that finds only an EOF, and fails its handshake;
	# the spares forked meanwhile find more of them in the backlog
	for i in $(seq 1 300); do
		(exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null || true
	done
	# every one was taken by a child, which logged it and left
	wait_for test_access_lines 300
	# every one of the 8 slots still serves a connection
	for c in a b c d e f g h; do
		hold_conn "$c" "$PORT"
	done
	wait_for test_backend_conns 8
}
