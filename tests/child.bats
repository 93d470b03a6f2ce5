#!/usr/bin/env bats
# A connection child against the others and against the parent: no signal
# can reach another child, memory and CPU limits, a handshake deadline the
# parent enforces, a log the parent rate-limits.

load helpers

PROBE="$HELPERS/sandboxprobe"

setup() {
	common_setup
	make_cert web ec256
	BPORT=$(free_port)
	start_echod echo "$BPORT"
	PORT=$(free_port)
	EXTRA=""
}

teardown() {
	common_teardown
}

# write_conf: one listener on $PORT to the echo backend; $EXTRA adds global
# lines.
write_conf() {
	{
		globals_conf
		[ -n "$EXTRA" ] && printf '%s\n' "$EXTRA"
		listener_conf web "127.0.0.1:$PORT" "127.0.0.1:$BPORT"
	} > "$T/recluse.conf"
}

# workers: recluse's connection children (tests/helpers.bash).
workers() {
	conn_children_of "$RECLUSE_PID"
}

workers_at_least() {
	[ "$(workers | wc -l)" -ge "$1" ]
}

# conn_child: the child holding a client connection on $PORT.
conn_child() {
	ss -Htnp state established "( sport = :$PORT )" |
	    grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u
}

has_conn_child() {
	[ -n "$(conn_child)" ]
}

# elapsed_since START: seconds since $EPOCHREALTIME was START.
elapsed_since() {
	awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }'
}

# probe_expect OUTPUT RESULT PROBE...: each PROBE's line in OUTPUT says
# RESULT.
probe_expect() {
	local out=$1 want=$2 p
	shift 2
	for p; do
		grep -qx "$p $want" <<< "$out" || {
			echo "$p: expected \"$want\", got \"$(grep "^$p " <<< "$out")\"" >&2
			return 1
		}
	done
}

# What no sandboxed process may do to another.
DENIED="fcntl-setfl-async fcntl-setown fcntl-setown-ex fcntl-setsig
	fcntl-dupfd ioctl-fioasync ioctl-fiosetown ioctl-siocspgrp
	ioctl-tiocspgrp kill kill-group tkill tgkill rt_sigqueueinfo pidfd_open
	pidfd_send_signal pidfd_getfd ptrace process_vm_readv process_vm_writev
	setsid setpgid"

@test "the child's filter kills signal arming (fcntl, ioctl), kill, pidfd, ptrace and process_vm; allows the fcntl it uses" {
	run "$PROBE" child
	echo "$output"
	[ "$status" -eq 0 ]
	# shellcheck disable=SC2086
	probe_expect "$output" killed $DENIED
	probe_expect "$output" ok fcntl-getfl fcntl-setfl-nonblock
}

@test "keyproc's filter is as strict about fcntl, ioctl and signals" {
	run "$PROBE" keyproc
	echo "$output"
	[ "$status" -eq 0 ]
	# shellcheck disable=SC2086
	probe_expect "$output" killed $DENIED
	probe_expect "$output" ok fcntl-setfl-nonblock
}

@test "positive control: without a filter the same probes make their calls" {
	run "$PROBE" -n child
	echo "$output"
	[ "$status" -eq 0 ]
	# shellcheck disable=SC2086
	probe_expect "$output" ok $(echo $DENIED | tr ' ' '\n' | grep -vx ioctl-tiocspgrp) \
	    fcntl-getfl fcntl-setfl-nonblock
	# a socket is no terminal: the kernel answers, no filter
	probe_expect "$output" "error: Inappropriate ioctl for device" ioctl-tiocspgrp
}

@test "each child is alone in its own session and process group" {
	write_conf
	start_recluse "$T/recluse.conf"
	wait_for workers_at_least 4
	spawner=$(spawner_of "$RECLUSE_PID")
	[ -n "$spawner" ]
	spgid=$(ps -o pgid= -p "$spawner" | tr -d ' ')
	psid=$(ps -o sid= -p "$RECLUSE_PID" | tr -d ' ')
	for pid in $(workers); do
		read -r pgid sid <<< "$(ps -o pgid=,sid= -p "$pid")"
		echo "child $pid: pgid $pgid sid $sid (spawner's group $spgid," \
		    "parent's session $psid)" >&2
		[ "$pgid" = "$pid" ]
		[ "$sid" = "$pid" ]
		[ "$pgid" != "$spgid" ]
		[ "$sid" != "$psid" ]
	done
}

@test "children get memory and CPU limits: 128 MiB and 3600 s by default" {
	write_conf
	start_recluse "$T/recluse.conf"
	wait_for workers_at_least 4
	for pid in $(workers); do
		grep -E '^Max (cpu time|address space)' "/proc/$pid/limits" >&2
		grep -qE '^Max cpu time +3600 +3605 +seconds' "/proc/$pid/limits"
		if ldd "$RECLUSE" | grep -q libasan; then
			continue	# no RLIMIT_AS under AddressSanitizer
		fi
		grep -qE '^Max address space +134217728 +134217728 +bytes' \
		    "/proc/$pid/limits"
	done
}

@test "limit memory and limit cpu set the children's limits; -nn prints them" {
	EXTRA=$'limit memory 16\nlimit cpu 42'
	write_conf
	run "$RECLUSE" -nn -f "$T/recluse.conf"
	echo "$output"
	[ "$status" -eq 0 ]
	grep -qx 'limit memory 16' <<< "$output"
	grep -qx 'limit cpu 42' <<< "$output"
	start_recluse "$T/recluse.conf"
	wait_for workers_at_least 1
	pid=$(workers | head -n 1)
	grep -qE '^Max cpu time +42 +47 +seconds' "/proc/$pid/limits"
	ldd "$RECLUSE" | grep -q libasan ||
	    grep -qE '^Max address space +16777216 +16777216 +bytes' \
	    "/proc/$pid/limits"
	# 16 MiB is still room for a real connection
	run tls_echo "$PORT" <<< "small"
	[ "$output" = "small" ]
}

@test "limit errors name FILE:LINE" {
	for bad in "limit memory 15:is too small (16 to 1048576 MiB)" \
	    "limit cpu 0:is too small (1 to 31536000 seconds)" \
	    "limit cpu lots:is invalid (1 to 31536000 seconds)" \
	    "limit disk 5:unknown limit \"disk\": use memory or cpu" \
	    "limit memory:missing argument to \"limit\""; do
		EXTRA=${bad%%:*}
		write_conf
		line=$(grep -n "^${bad%%:*}\$" "$T/recluse.conf" | cut -d: -f1)
		run "$RECLUSE" -n -f "$T/recluse.conf"
		echo "$output"
		[ "$status" -eq 1 ]
		[[ "$output" == "$T/recluse.conf:$line: "*"${bad#*:}"* ]]
	done
	EXTRA=$'limit cpu 5\nlimit cpu 6'
	write_conf
	run "$RECLUSE" -n -f "$T/recluse.conf"
	[[ "$output" == "$T/recluse.conf:5: duplicate \"limit cpu\""* ]]
}

@test "a child over its CPU limit is killed with SIGXCPU and the parent says so" {
	EXTRA="limit cpu 1"
	write_conf
	start_recluse "$T/recluse.conf"
	# relaying costs about 1.6 CPU seconds a GiB: 4 GiB is plenty
	run bash -c "head -c 4G /dev/zero | $HELPERS/tlspipe -C $T/ca.crt \
	    -t 120 127.0.0.1 $PORT 2>> $T/tlspipe.log | wc -c"
	echo "$output"
	wait_for grep -q "killed by signal 24 (CPU time limit exceeded)" \
	    "$T/recluse.log"
	[ "${lines[0]}" -lt 4294967296 ]
}

@test "the parent kills a child that has not finished its handshake in time" {
	# 6 s: time to find the child (ss -p walks every process) and stop it
	# before its own deadline, even on a busy machine
	EXTRA="timeout handshake 6"
	write_conf
	start_recluse "$T/recluse.conf"
	exec 5<>"/dev/tcp/127.0.0.1/$PORT"
	start=$EPOCHREALTIME
	wait_for has_conn_child
	child=$(conn_child)
	# stopped, its own deadline cannot fire: only the parent's can
	kill -STOP "$child"
	timeout 15 cat <&5 > /dev/null || true
	took=$(elapsed_since "$start")
	exec 5<&-
	echo "connection closed after $took s" >&2
	wait_for grep -q "child $child: no handshake after 6 s: killed" \
	    "$T/recluse.log"
	grep -q "child $child killed by signal 9" "$T/recluse.log"
	# timeout + 1 s grace, swept once a second (+ slack for a busy machine)
	awk -v t="$took" 'BEGIN { exit !(t >= 6.9 && t < 9) }'
}

@test "a child that finishes its handshake is not killed by the parent's deadline" {
	EXTRA="timeout handshake 1"
	write_conf
	start_recluse "$T/recluse.conf"
	mkfifo "$T/in"
	"$HELPERS/tlspipe" -C "$T/ca.crt" -t 60 127.0.0.1 "$PORT" < "$T/in" \
	    > "$T/out" 2>> "$T/tlspipe.log" 3>&- &
	track $!
	exec 6> "$T/in"
	echo ping >&6
	wait_for grep -q ping "$T/out"
	sleep 4
	echo pong >&6
	wait_for grep -q pong "$T/out"
	exec 6>&-
	! grep -q "no handshake" "$T/recluse.log" || false
	! grep -q "killed by signal" "$T/recluse.log" || false
}

# flood PID N WORD: make child PID, a real sandboxed child, log N lines
# "WORD line I" through its own log_warnx() and channel, as code that has
# taken it over could.
flood() {
	cat > "$T/flood.gdb" <<EOF
set \$i = 0
while \$i < $2
  call (void)log_warnx("$3 line %d", \$i)
  set \$i = \$i + 1
end
detach
quit
EOF
	timeout 120 gdb -q -batch -p "$1" -x "$T/flood.gdb" > "$T/gdb.log" 2>&1
}

@test "a child that floods its log is cut off, and that is logged once" {
	command -v gdb > /dev/null || skip "gdb is not installed"
	write_conf
	start_recluse "$T/recluse.conf"
	wait_for workers_at_least 1
	pid=$(workers | head -n 1)
	start=$EPOCHREALTIME
	flood "$pid" 200 flood
	took=$(elapsed_since "$start")
	sleep 2
	flood "$pid" 10 later
	sleep 1
	n=$(grep -c "child $pid: flood line" "$T/recluse.log" || true)
	echo "$n of 200 lines relayed in $took s" >&2
	# a burst of 64, then 10 a second, in order; then nothing, even
	# once the bucket would have refilled
	grep -q "child $pid: flood line 63\$" "$T/recluse.log"
	awk -v n="$n" -v t="$took" 'BEGIN { exit !(n <= 64 + 10 * t + 1) }'
	# gdb calls log_warnx() some 100 times a second on a quiet machine; on
	# a loaded one the 200 may come slower than the bucket refills, and
	# then nothing overflows (tests/isolation.bats floods from inside
	# the child, at full speed, whatever the load)
	if awk -v t="$took" 'BEGIN { exit !(t > 12) }'; then
		echo "the flood took $took s: too slow to overflow" >&2
		return 0
	fi
	! grep -q "child $pid: flood line 199\$" "$T/recluse.log" || false
	! grep -q "child $pid: later line" "$T/recluse.log" || false
	[ "$(grep -c "child $pid: log flood: cut off" "$T/recluse.log")" -eq 1 ]
	# cut off, not killed
	kill -0 "$pid"
}

@test "a verbose connection is never cut off, even after failed backends" {
	BAD=$(free_port)
	{
		globals_conf
		cat <<EOC
listener "web" {
	listen 127.0.0.1:$PORT
	certificate "$T/web.crt"
	key "$T/web.key"
	backend 127.0.0.1:$BAD
	backend 127.0.0.1:$BAD
	backend 127.0.0.1:$BAD
	backend 127.0.0.1:$BPORT
}
EOC
	} > "$T/recluse.conf"
	start_recluse "$T/recluse.conf" -v
	for i in 1 2 3 4 5; do
		run tls_echo "$PORT" <<< "hello $i"
		[ "$output" = "hello $i" ]
	done
	wait_for holds '[ "$(grep -c "end=" "$T/recluse.log")" -ge 5 ]'
	grep -q "backend 127.0.0.1:$BAD: Connection refused" "$T/recluse.log"
	! grep -q "log flood" "$T/recluse.log" || false
}

# listener_fd PID: the descriptor number of $PORT's listening socket in PID.
listener_fd() {
	local ino fd
	ino=$(ss -Htlne "( sport = :$PORT )" | grep -o 'ino:[0-9]*' | cut -d: -f2)
	for fd in /proc/"$1"/fd/*; do
		[ "$(readlink "$fd")" = "socket:[$ino]" ] && { echo "${fd##*/}"; return 0; }
	done
	return 1
}

@test "the attack of issue 10: a spare arming SIGSTOP at the children's group is killed, the others go on" {
	command -v gdb > /dev/null || skip "gdb is not installed"
	write_conf
	start_recluse "$T/recluse.conf"
	mkfifo "$T/in"
	"$HELPERS/tlspipe" -C "$T/ca.crt" -t 60 127.0.0.1 "$PORT" < "$T/in" \
	    > "$T/out" 2>> "$T/tlspipe.log" 3>&- &
	track $!
	exec 6> "$T/in"
	echo ping >&6
	wait_for grep -q ping "$T/out"
	busy=$(conn_child)
	spare=$(workers | grep -vx "$busy" | head -n 1)
	lfd=$(listener_fd "$spare")
	pgid=$(ps -o pgid= -p "$(spawner_of "$RECLUSE_PID")" | tr -d ' ')
	# what the taken-over child did: its listening socket's owner is the
	# spawner's process group (every child, before issue 10), its signal
	# SIGSTOP, O_ASYNC on: the next connection stops the whole group
	timeout 60 gdb -q -batch -p "$spare" \
	    -ex "call (int)fcntl($lfd, 8, -$pgid)" \
	    -ex "call (int)fcntl($lfd, 10, 19)" \
	    -ex "call (int)fcntl($lfd, 4, 0x2802)" \
	    -ex detach > "$T/gdb.log" 2>&1 || true
	cat "$T/gdb.log" >&2
	run tls_echo "$PORT" <<< "one byte from outside"
	[ "$output" = "one byte from outside" ]
	echo after >&6
	wait_for grep -q after "$T/out"
	exec 6>&-
	wait_for grep -q "child $spare killed by signal 31" "$T/recluse.log"
	for pid in $(workers); do
		[ "$(ps -o stat= -p "$pid" | cut -c1)" != T ]
	done
}

@test "ps tells spares from busy connection processes: each names its listener, and its client once it holds one" {
	write_conf
	start_recluse "$T/recluse.conf"
	wait_for workers_at_least 1
	for pid in $(workers); do
		ps -o args= -p "$pid" >&2
		[ "$(ps -o args= -p "$pid" | sed 's/ *$//')" = "recluse-child web spare" ]
	done
	# a client that says nothing: the process that accepted it is busy
	exec 5<>"/dev/tcp/127.0.0.1/$PORT"
	wait_for has_conn_child
	pid=$(conn_child)
	client=$(ss -Htn state established "( dport = :$PORT )" |
	    awk '{ print $3 }' | head -n 1)
	ps -o pid=,args= -p "$pid" >&2
	[ "$(ps -o args= -p "$pid" | sed 's/ *$//')" = "recluse-child web $client" ]
	exec 5<&-
}
