#!/usr/bin/env bats
# Honest limits: max-connections counts connections, spares go where
# clients wait, being full is logged, and a parent out of descriptors
# backs off without blaming its helpers.

load helpers

setup() {
	common_setup
	make_cert web ec256
	BPORT=$(free_port)
	start_echod echo "$BPORT"
	PORT=$(free_port)
	PORT2=$(free_port)
	while [ "$PORT2" = "$PORT" ]; do PORT2=$(free_port); done
}

teardown() {
	common_teardown
}

# write_conf MAX [EXTRA]: listeners a (PORT) and b (PORT2), max-connections
# MAX, an extra global line.
write_conf() {
	{
		globals_conf
		echo "max-connections $1"
		[ -z "${2:-}" ] || echo "$2"
		listener_conf a "127.0.0.1:$PORT" "127.0.0.1:$BPORT"
		listener_conf b "127.0.0.1:$PORT2" "127.0.0.1:$BPORT"
	} > "$T/recluse.conf"
}

# accepted PORT: connections on PORT that a process holds (accepted by a
# child; those waiting in the listen backlog belong to nobody yet).
accepted() {
	ss -Htnp state established "( sport = :$1 )" | grep -c 'users:' || true
}

# test_accepted PORT N: true once exactly N connections on PORT are held.
test_accepted() {
	[ "$(accepted "$1")" -eq "$2" ]
}

# nworkers: how many connection children recluse has.  One ps(1): the
# children are named like the parent ("recluse"), keyproc, the connector
# and the spawners otherwise (tests/helpers.bash conn_children_of reads
# /proc per child, too slow to poll with dozens of children).
nworkers() {
	ps -o comm= --ppid "$RECLUSE_PID" | grep -cx recluse || true
}

# workers_at_least N: true once recluse has N connection children.
workers_at_least() {
	[ "$(nworkers)" -ge "$1" ]
}

# workers_within SECS N: true once recluse has N connection children,
# false if not within SECS seconds.
workers_within() {
	local i
	for i in $(seq 1 $(($1 * 10))); do
		workers_at_least "$2" && return 0
		sleep 0.1
	done
	return 1
}

# hold NAME PORT: a held connection (helpers.bash hold_conn), its pid in
# the variable NAME.
hold() {
	hold_conn "$1" "$2"
	printf -v "$1" '%s' "$HELD_PID"
}

# not_served PORT: a client of PORT gets no answer within 2 s.
not_served() {
	run tls_echo "$1" -t 2 <<< "waits"
	[ "$status" -ne 0 ]
	[ "$output" != "waits" ]
}

# served PORT: a client of PORT is served (tlspipe gives up after 10 s).
served() {
	run tls_echo "$1" <<< "served $1"
	[ "$output" = "served $1" ]
}

# said TEXT: how many log lines contain TEXT.
said() {
	grep -cF -- "$1" "$T/recluse.log" || true
}

@test "a busy listener gets all of max-connections although the other listener had spares" {
	write_conf 6
	start_recluse "$T/recluse.conf"
	# both listeners' spares fill the six slots
	wait_for workers_at_least 6
	[ "$(nworkers)" -eq 6 ]
	for i in 1 2 3 4 5 6; do
		hold "a$i" "$PORT"
		wait_for test_accepted "$PORT" "$i"
	done
	# six connections on a, none more anywhere: b's spares made room
	[ "$(accepted "$PORT")" -eq 6 ]
	[ "$(accepted "$PORT2")" -eq 0 ]
	[ "$(nworkers)" -eq 6 ]
	not_served "$PORT"
	not_served "$PORT2"
	[ "$(accepted "$PORT")" -eq 6 ]
	[ "$(said 'listener a: max-connections 6 reached: not accepting')" -eq 1 ]
	[ "$(said 'listener b: max-connections 6 reached: not accepting')" -eq 1 ]
	# a slot frees: the next client is served at once
	kill "$a1"
	wait_for test_accepted "$PORT" 5
	served "$PORT"
	served "$PORT2"
}

@test "a burst on a busy listener takes every slot the other listener's grown spares held" {
	write_conf 16
	start_recluse "$T/recluse.conf"
	# b keeps twice the spares each time its pool runs dry, and a burst
	# of twelve held connections on b (with a's four spares, the sixteen
	# slots) always ends with b's pool dry: after two such bursts b keeps
	# twelve spares, and with a's four they fill the slots.  A fast
	# machine may replace spares as quickly as clients take them, so
	# some bursts do not count, and the target halves every 10 s when
	# unused: burst again until it is there.
	for try in 1 2 3 4 5 6; do
		"$HELPERS/tlspipe" -C "$T/ca.crt" -t 30 -c 12 -H 1 127.0.0.1 \
		    "$PORT2" > "$T/warm.out" 2>> "$T/tlspipe.log"
		grep -q "ready 12/12" "$T/warm.out"
		workers_within 3 16 && break
		echo "burst $try: $(nworkers) workers" >&2
	done
	workers_at_least 16
	# then sixteen clients at once on a: all served, held 5 s
	"$HELPERS/tlspipe" -C "$T/ca.crt" -t 30 -c 16 -H 5 127.0.0.1 "$PORT" \
	    > "$T/burst.out" 2>> "$T/tlspipe.log" 3>&- &
	track $!
	wait_for grep -q "ready 16/16" "$T/burst.out"
	[ "$(accepted "$PORT")" -eq 16 ]
	not_served "$PORT2"
	[ "$(accepted "$PORT")" -eq 16 ]
	[ "$(nworkers)" -eq 16 ]
	[ "$(said 'listener b: max-connections 16 reached: not accepting')" -eq 1 ]
}

@test "two listeners at the limit: the next client of each waits, is served when a slot frees, and the log says so once" {
	write_conf 6
	start_recluse "$T/recluse.conf"
	for i in 1 2 3; do
		hold "a$i" "$PORT"
		hold "b$i" "$PORT2"
	done
	wait_for test_accepted "$PORT" 3
	wait_for test_accepted "$PORT2" 3
	[ "$(nworkers)" -eq 6 ]
	# the seventh client waits in the backlog, on either listener
	hold late "$PORT2"
	sleep 2
	[ "$(accepted "$PORT2")" -eq 3 ]
	! grep -q . "$T/late.out" || false
	not_served "$PORT"
	# one connection ends: the waiting client is taken within a bound
	start=$(date +%s%N)
	kill "$a1"
	wait_for test_accepted "$PORT2" 4
	ms=$(( ($(date +%s%N) - start) / 1000000 ))
	echo "# the waiting client was taken $ms ms after a slot freed" >&3
	[ "$ms" -lt 3000 ]
	[ "$(accepted "$PORT")" -eq 2 ]
	# and it is served through to the backend
	echo "late ping" > "$T/late.in"
	wait_for grep -q "late ping" "$T/late.out"
	# full again: nothing more is logged; then everything ends, and
	# after a quiet moment each listener accepts again, said once
	kill "$late" "$a2" "$a3" "$b1" "$b2" "$b3"
	wait_for test_accepted "$PORT" 0
	wait_for grep -q "listener b: accepting again" "$T/recluse.log"
	wait_for grep -q "listener a: accepting again" "$T/recluse.log"
	for l in a b; do
		[ "$(said "listener $l: max-connections 6 reached: not accepting")" -eq 1 ]
		[ "$(said "listener $l: accepting again")" -eq 1 ]
	done
	served "$PORT"
	served "$PORT2"
}

# write_conf1 MAX [EXTRA]: listener a (PORT) only.
write_conf1() {
	{
		globals_conf
		echo "max-connections $1"
		[ -z "${2:-}" ] || echo "$2"
		listener_conf a "127.0.0.1:$PORT" "127.0.0.1:$BPORT"
	} > "$T/recluse.conf"
}

# low_nofile N: have start_recluse run recluse with a descriptor limit of
# N, soft and hard, and without CAP_SYS_RESOURCE (as under the shipped
# unit), so that it cannot raise it.
low_nofile() {
	cat > "$T/recluse-wrap" <<EOW
#!/bin/sh
exec prlimit --nofile=$1:$1 -- setpriv --bounding-set -sys_resource -- "$TOP/recluse" "\$@"
EOW
	chmod 755 "$T/recluse-wrap"
	RECLUSE="$T/recluse-wrap"
}

# free_fds PID N: lower PID's soft descriptor limit so that exactly N
# descriptor numbers are free below it.
free_fds() {
	local soft
	soft=$(ls "/proc/$1/fd" | awk -v want="$2" '{ open[$1] = 1 }
	    END { s = 0; free = 0
		while (free < want || (s in open)) { if (!(s in open)) free++; s++ }
		print s }')
	prlimit --pid "$1" --nofile="$soft:"
}

connector_of() {
	ps -o pid=,args= --ppid "$1" | awk '$2 == "recluse-connector" { print $1 }'
}

# test_served PORT: one client of PORT is served.
test_served() {
	[ "$(tls_echo "$1" -t 3 <<< "back")" = back ]
}

@test "a descriptor limit too low for max-connections: a warning with the real capacity, which the pool keeps to" {
	write_conf 100
	# one descriptor per connection, 256, 8 per listener: room for 3
	low_nofile $((256 + 2 * 8 + 3))
	start_recluse "$T/recluse.conf"
	grep -q "parent: the descriptor limit (275) allows 3 connections, not max-connections 100: serving at most 3; raise LimitNOFILE= (or ulimit -n) to 372, or lower max-connections" "$T/recluse.log"
	[ "$(prlimit --pid "$RECLUSE_PID" --nofile -o HARD --noheadings | tr -d " ")" -eq 275 ]
	for i in 1 2 3; do
		hold "a$i" "$PORT"
		wait_for test_accepted "$PORT" "$i"
	done
	not_served "$PORT"
	not_served "$PORT2"
	[ "$(nworkers)" -eq 3 ]
	[ "$(said 'listener a: max-connections 3 (the descriptor limit) reached: not accepting')" -eq 1 ]
	kill "$a1"
	served "$PORT2"
	! grep -q "out of descriptors" "$T/recluse.log" || false
}

@test "a parent out of descriptors backs off, says so once, keeps its spawner and recovers" {
	write_conf1 64
	start_recluse "$T/recluse.conf"
	wait_for workers_at_least 4
	sleep 0.5
	sp=$(spawner_of "$RECLUSE_PID")
	cn=$(connector_of "$RECLUSE_PID")
	[ -n "$sp" ] && [ -n "$cn" ]
	soft=$(prlimit --pid "$RECLUSE_PID" --nofile -o SOFT --noheadings | tr -d " ")
	# three descriptors left: the four spares serve, their replacements
	# cannot be forked
	free_fds "$RECLUSE_PID" 3
	for i in 1 2 3 4; do
		hold "a$i" "$PORT"
		wait_for test_accepted "$PORT" "$i"
	done
	echo ping4 > "$T/a4.in"
	wait_for grep -q ping4 "$T/a4.out"
	not_served "$PORT"
	sleep 2		# a retry a second meanwhile
	[ "$(said 'parent: out of descriptors (forking a child: Too many open files): no new children for now')" -eq 1 ]
	[ "$(spawner_of "$RECLUSE_PID")" = "$sp" ]
	[ "$(connector_of "$RECLUSE_PID")" = "$cn" ]
	[ "$(said 'is gone')" -eq 0 ]
	[ "$(said 'Bad message')" -eq 0 ]
	kill -0 "$RECLUSE_PID"
	# the load drops: the descriptors of the four come back, and new
	# clients are served under the same limit
	kill "$a1" "$a2" "$a3" "$a4"
	wait_for test_served "$PORT"
	[ "$(spawner_of "$RECLUSE_PID")" = "$sp" ]
	[ "$(said 'out of descriptors')" -eq 1 ]
	# with the limit back, the pool fills up and says so
	prlimit --pid "$RECLUSE_PID" --nofile="$soft:"
	wait_for grep -q "parent: descriptors available again" "$T/recluse.log"
	wait_for workers_at_least 4
}

@test "a backend connection the parent has no descriptor for does not cost the connector its life" {
	write_conf1 64 "timeout connect 1"
	start_recluse "$T/recluse.conf"
	wait_for workers_at_least 4
	sleep 0.5
	cn=$(connector_of "$RECLUSE_PID")
	sp=$(spawner_of "$RECLUSE_PID")
	soft=$(prlimit --pid "$RECLUSE_PID" --nofile -o SOFT --noheadings | tr -d " ")
	free_fds "$RECLUSE_PID" 0
	# the connector's socket cannot be received: that connection fails
	run tls_echo "$PORT" -t 8 <<< "lost"
	[ "$output" != lost ]
	[ "$(connector_of "$RECLUSE_PID")" = "$cn" ]
	[ "$(spawner_of "$RECLUSE_PID")" = "$sp" ]
	[ "$(said 'is gone')" -eq 0 ]
	[ "$(said 'out of descriptors')" -eq 1 ]
	prlimit --pid "$RECLUSE_PID" --nofile="$soft:"
	served "$PORT"
	[ "$(connector_of "$RECLUSE_PID")" = "$cn" ]
}

@test "a listener's own max-connections: it holds that many, says so, and its neighbour serves on" {
	write_conf 10
	sed -i '/^listener "a" {/a\	max-connections 2' "$T/recluse.conf"
	start_recluse "$T/recluse.conf"
	hold a1 "$PORT"
	hold a2 "$PORT"
	wait_for test_accepted "$PORT" 2
	not_served "$PORT"
	[ "$(accepted "$PORT")" -eq 2 ]
	served "$PORT2"
	[ "$(said 'listener a: max-connections 2 reached: not accepting')" -eq 1 ]
	[ "$(said 'listener b: max-connections')" -eq 0 ]
	# its count survives a reload: still two, and nothing said again
	kill -HUP "$RECLUSE_PID"
	wait_for grep -q "ready: configuration 2" "$T/recluse.log"
	not_served "$PORT"
	[ "$(said 'listener a: max-connections 2 reached: not accepting')" -eq 1 ]
	kill "$a1"
	served "$PORT"
	kill "$a2"
	wait_for grep -q "listener a: accepting again" "$T/recluse.log"
	[ "$(said 'listener a: accepting again')" -eq 1 ]
}
