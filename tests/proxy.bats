#!/usr/bin/env bats
# Connection children: TLS in, plaintext to the backend, half-close,
# timeouts, failover, sandbox, faults, load.

load helpers

TLSPIPE="$HELPERS/tlspipe"

setup() {
	common_setup
	make_cert web ec256
	EXTRA=""
}

teardown() {
	common_teardown
}

# write_conf BACKEND...: one listener "web" on $LISTEN_HOST:$PORT (default
# 127.0.0.1) with these backend lines ("127.0.0.1:8080", "unix \"/p\"");
# $EXTRA adds global lines.
write_conf() {
	local b
	{
		globals_conf
		[ -n "$EXTRA" ] && printf '%s\n' "$EXTRA"
		cat <<EOC
listener "web" {
	listen ${LISTEN_HOST:-127.0.0.1}:$PORT
	certificate "$T/web.crt"
	key "$T/web.key"
EOC
		for b; do printf '\tbackend %s\n' "$b"; done
		echo "}"
	} > "$T/recluse.conf"
}

# proxy BACKEND...: write the configuration and start recluse on a free
# port (in PORT), trying another port if the one picked was taken.
proxy() {
	local i
	for i in 1 2 3 4 5; do
		PORT=$(free_port)
		write_conf "$@"
		"$RECLUSE" -f "$T/recluse.conf" >> "$T/recluse.log" 2>&1 3>&- &
		RECLUSE_PID=$!
		track "$RECLUSE_PID"
		disown "$RECLUSE_PID"	# no "Killed" notice from teardown
		wait_for sh -c "grep -q 'parent: ready' '$T/recluse.log' ||
		    ! kill -0 $RECLUSE_PID 2>/dev/null"
		grep -q "parent: ready" "$T/recluse.log" && return 0
		kill "$RECLUSE_PID" 2>/dev/null || true
	done
	echo "recluse did not start" >&2
	return 1
}

# echod MODE ADDR [FILE]: start the test backend, its log in ECHOD_LOG;
# fail if it cannot listen.
echod() {
	ECHOD_LOG="$T/echod-${2//\//_}.log"
	"$HELPERS/echod" "$@" >> "$ECHOD_LOG" 2>&1 3>&- &
	track $!
	wait_for grep -qE "listening on|echod: " "$ECHOD_LOG"
	grep -qF "listening on $2 " "$ECHOD_LOG"
}

# backend MODE [FILE]: echod MODE on a free port of $BACKEND_HOST (default
# 127.0.0.1), port in BPORT, address for the configuration in BADDR.
backend() {
	local mode=$1 i addr
	shift
	for i in 1 2 3 4 5; do
		BPORT=$(free_port)
		case "${BACKEND_HOST:-}" in
		"")	addr=$BPORT; BADDR="127.0.0.1:$BPORT" ;;
		*:*)	addr="[$BACKEND_HOST]:$BPORT"; BADDR=$addr ;;
		*)	addr="$BACKEND_HOST:$BPORT"; BADDR=$addr ;;
		esac
		echod "$mode" "$addr" "$@" && return 0
	done
	return 1
}

# tlspipe ARGS...: the test TLS client against 127.0.0.1:$PORT, verifying
# the test CA, bounded in time.
tlspipe() {
	"$TLSPIPE" -C "$T/ca.crt" -t 60 "$@" 127.0.0.1 "$PORT"
}

# In the background the binary is run directly, not tlspipe(): "tlspipe
# ... &" makes $! a subshell's pid, and teardown would leave the client
# itself running.

# access_log END: wait for a connection's access line that ended with END.
access_log() {
	wait_for grep -q "listener=web .*end=$1\$" "$T/recluse.log"
}

# log_count_is N PATTERN: the recluse log has N lines matching PATTERN (for
# wait_for, which runs it again each time).
log_count_is() {
	[ "$(grep -c -- "$2" "$T/recluse.log")" -eq "$1" ]
}

# elapsed_since START: seconds since $EPOCHREALTIME was START.
elapsed_since() {
	awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }'
}

# between X LO HI: LO <= X < HI, for decimals.
between() {
	awk -v x="$1" -v lo="$2" -v hi="$3" 'BEGIN { exit !(x >= lo && x < hi) }'
}

# conn_children: the pids of the children holding a client connection.
conn_children() {
	ss -Htnp state established "( sport = :$PORT )" |
	    grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u
}

# child_of_client LOCALPORT: the child serving the client on that port.
child_of_client() {
	ss -Htnp state established "( sport = :$PORT and dport = :$1 )" |
	    grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u
}

# has_conn_child: some child holds a client connection.
has_conn_child() {
	[ -n "$(conn_children)" ]
}

# no_child_killed: no child died of a signal (SIGSYS: a forbidden call).
no_child_killed() {
	! grep -q "killed by signal" "$T/recluse.log" || false
}

@test "curl through recluse reaches an HTTP backend, TLS 1.3 and 1.2" {
	backend http
	proxy "$BADDR"

	run curl -sS --cacert "$T/ca.crt" --resolve "localhost:$PORT:127.0.0.1" \
	    "https://localhost:$PORT/"
	[ "$status" -eq 0 ]
	[ "$output" = "hello from echod" ]
	run curl -sS --tlsv1.2 --tls-max 1.2 --cacert "$T/ca.crt" \
	    --resolve "localhost:$PORT:127.0.0.1" "https://localhost:$PORT/a" \
	    "https://localhost:$PORT/b"
	[ "$status" -eq 0 ]
	[ "$output" = "hello from echod"$'\n'"hello from echod" ]

	# one access line per connection, with everything it promises
	wait_for log_count_is 2 'listener=web '
	grep -q "client=127.0.0.1:[0-9]* listener=web tls=TLSv1.3 cipher=TLS_[A-Z0-9_]* sni=localhost backend=$BADDR alpn=- cert=localhost proxied=- client_cert=- client_subject=- client_fp=- from_client=[1-9][0-9]* to_client=[1-9][0-9]* handshake=[0-9]*\.[0-9][0-9][0-9]s duration=[0-9]*\.[0-9][0-9][0-9]s end=client-" "$T/recluse.log"
	grep -q "listener=web tls=TLSv1.2 cipher=ECDHE-ECDSA-[A-Z0-9-]* .*end=client-" "$T/recluse.log"
	no_child_killed
}

# Each connection is its own process: a session cache or a stateful ticket
# would live and die with it.  So none is offered, and a client that saved
# a session cannot resume it (issue 12 decides resumption; until then no
# ticket, no session ID).
@test "no session ticket and no session ID is sent, TLS 1.3 and 1.2: a client has nothing to resume" {
	backend http
	proxy "$BADDR"
	# s_client CONN VERSION SESSION-OPTION: one handshake, its output in
	# $T/s_client.CONN
	s_client() {
		timeout 10 openssl s_client -connect "127.0.0.1:$PORT" \
		    -servername localhost -CAfile "$T/ca.crt" "$2" "$3" \
		    "$T/sess$2" < <(sleep 1) > "$T/s_client.$1" 2>&1 || true
		cat "$T/s_client.$1" >&2
		grep -q "Verify return code: 0 (ok)" "$T/s_client.$1"
	}
	# TLS 1.3: no ticket, so nothing a client could save
	s_client 1 -tls1_3 -sess_out
	! grep -q "New Session Ticket" "$T/s_client.1" || false
	[ ! -e "$T/sess-tls1_3" ]
	# TLS 1.2: no ticket, an empty session ID: nothing either
	s_client 2 -tls1_2 -sess_out
	! grep -q "TLS session ticket:" "$T/s_client.2" || false
	grep -Eq "^ +Session-ID: *$" "$T/s_client.2"
	[ ! -e "$T/sess-tls1_2" ]
}

@test "64 MiB each way at once arrive byte-exact" {
	backend echo
	proxy "$BADDR"
	head -c 64M /dev/urandom > "$T/big"

	want=$(sha256sum < "$T/big")
	got=$(tlspipe < "$T/big" 2> "$T/tlspipe.log" | sha256sum)
	[ "$got" = "$want" ]
	grep -q "sent=67108864 received=67108864 server=close_notify" \
	    "$T/tlspipe.log"
	access_log client-close
	grep -q "from_client=67108864 to_client=67108864 " "$T/recluse.log"
	rm -f "$T/big"
}

@test "client close_notify: the backend sees EOF, the echo still arrives" {
	backend echo
	proxy "$BADDR"
	head -c 1M /dev/urandom > "$T/data"

	tlspipe < "$T/data" > "$T/out" 2> "$T/tlspipe.log"
	cmp "$T/data" "$T/out"
	grep -q "server=close_notify" "$T/tlspipe.log"
	# the backend read EOF after all the data: shutdown(SHUT_WR) came
	wait_for grep -q "closed in=1048576 out=1048576 eof=1" "$ECHOD_LOG"
	access_log client-close
}

@test "client TCP EOF without close_notify is a half-close too" {
	backend echo
	proxy "$BADDR"
	head -c 4M /dev/urandom > "$T/data"

	# -e: shutdown(SHUT_WR) of the TCP socket, no close_notify; the echo
	# still in flight must all arrive, then our close_notify
	tlspipe -e < "$T/data" > "$T/out" 2> "$T/tlspipe.log"
	cmp "$T/data" "$T/out"
	grep -q "server=close_notify" "$T/tlspipe.log"
	wait_for grep -q "closed in=4194304 out=4194304 eof=1" "$ECHOD_LOG"
	access_log client-eof
}

@test "backend EOF: close_notify to the client, whose later bytes still reach the backend" {
	backend halfclose "$T/received"
	proxy "$BADDR"

	# the backend says "bye" and shuts its side at once; the client
	# sends only after that, then closes
	run bash -c "(sleep 1; echo late-data) |
	    $TLSPIPE -C $T/ca.crt -t 20 127.0.0.1 $PORT 2>$T/tlspipe.log"
	[ "$status" -eq 0 ]
	[ "$output" = "bye" ]
	grep -q "server=close_notify" "$T/tlspipe.log"
	wait_for grep -q "late-data" "$T/received"
	access_log backend-eof
	grep -q "from_client=10 to_client=4 " "$T/recluse.log"
}

@test "a backend that closes at once ends the client's connection cleanly" {
	backend close
	proxy "$BADDR"

	run tlspipe -k < /dev/null
	[ "$status" -eq 0 ]
	[ "$output" = "tlspipe: done sent=0 received=0 server=close_notify" ]
	access_log backend-eof
}

@test "a client that does not read stalls the flow, the child does not grow" {
	backend echo
	proxy "$BADDR"
	head -c 64M /dev/urandom > "$T/big"

	# -w 12: the client writes all it can but reads nothing for 12 s
	"$TLSPIPE" -C "$T/ca.crt" -t 60 -w 12 127.0.0.1 "$PORT" < "$T/big" \
	    > "$T/out" 2> "$T/tlspipe.log" 3>&- &
	pid=$!
	track "$pid"
	wait_for has_conn_child
	sleep 2
	child=$(conn_children)
	rss1=$(awk '/^VmRSS:/ { print $2 }' "/proc/$child/status")
	sleep 2
	rss2=$(awk '/^VmRSS:/ { print $2 }' "/proc/$child/status")
	echo "child $child VmRSS ${rss1} kB, then ${rss2} kB" >&2
	# stalled: a few buffers, not the tens of MiB the client has sent
	[ "$rss2" -lt $((rss1 + 512)) ]
	# (under make sanitize, ASan's shadow memory alone is about 32 MB)
	limit=16384
	ldd "$RECLUSE" | grep -q libasan && limit=49152
	[ "$rss2" -lt "$limit" ]
	# and once the client reads, everything arrives
	wait "$pid"
	cmp "$T/big" "$T/out"
	rm -f "$T/big" "$T/out"
}

@test "a client's failed handshake is not blamed on keyproc after the spawner's warm-up" {
	backend http
	proxy "$BADDR"

	# The spawner's own handshake (proxy/warmup.c) fails at the
	# signature, having no keyproc channel: its children must not
	# inherit that error and report it for a client's bad handshake.
	exec 5<>"/dev/tcp/127.0.0.1/$PORT"
	printf 'GET / HTTP/1.0\r\n\r\n' >&5
	timeout 5 cat <&5 > /dev/null 2>&1 || true
	exec 5<&-
	wait_for log_count_is 1 'end=handshake-failed$'
	grep -q "handshake: .*http request" "$T/recluse.log"
	! grep -q "handshake: keyproc" "$T/recluse.log" || false
}

@test "handshake timeout closes a client that never speaks" {
	EXTRA="timeout handshake 1"
	backend echo
	proxy "$BADDR"

	exec 5<>"/dev/tcp/127.0.0.1/$PORT"
	start=$EPOCHREALTIME
	timeout 10 cat <&5 > /dev/null || true
	took=$(elapsed_since "$start")
	exec 5<&-
	between "$took" 0.8 5
	access_log handshake-timeout
	grep -q "handshake: no handshake in 1 s" "$T/recluse.log"
	grep -q " handshake=- duration=[0-9.]*s end=handshake-timeout" \
	    "$T/recluse.log"
}

@test "idle timeout closes a connection where nothing moves" {
	EXTRA="timeout idle 1"
	backend echo
	proxy "$BADDR"

	mkfifo "$T/in"
	"$TLSPIPE" -C "$T/ca.crt" -t 60 -k 127.0.0.1 "$PORT" < "$T/in" \
	    > "$T/out" 2> "$T/tlspipe.log" 3>&- &
	pid=$!
	track "$pid"
	exec 6> "$T/in"
	echo ping >&6
	wait_for grep -q ping "$T/out"
	# nothing more is sent: the child closes about a second later
	start=$EPOCHREALTIME
	wait "$pid"
	took=$(elapsed_since "$start")
	exec 6>&-
	between "$took" 0.5 5
	grep -q "server=close_notify" "$T/tlspipe.log"
	access_log idle-timeout
	grep -q "from_client=5 to_client=5 .*end=idle-timeout" "$T/recluse.log"
}

@test "connect timeout: a backend that never answers is given up" {
	EXTRA="timeout connect 1"
	backend full
	proxy "$BADDR"

	start=$EPOCHREALTIME
	run tlspipe -k < /dev/null
	took=$(elapsed_since "$start")
	[ "$status" -eq 0 ]
	[ "$output" = "tlspipe: done sent=0 received=0 server=close_notify" ]
	between "$took" 0.9 5
	access_log backend-timeout
	grep -q "backend $BADDR: Connection timed out" "$T/recluse.log"
}

@test "a refused backend closes the client's connection and the log says why" {
	DEAD="127.0.0.1:$(free_port)"
	proxy "$DEAD"

	run tlspipe -k < /dev/null
	[ "$status" -eq 0 ]
	access_log backend-refused
	grep -q "backend $DEAD: Connection refused" "$T/recluse.log"
}

@test "failover: refused, then unanswered, then the third backend serves" {
	EXTRA="timeout connect 1"
	DEAD="127.0.0.1:$(free_port)"
	backend full
	FULL=$BADDR
	backend echo
	proxy "$DEAD" "$FULL" "$BADDR"

	run bash -c "echo failover | $TLSPIPE -C $T/ca.crt -t 20 127.0.0.1 $PORT"
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "failover" ]
	grep -q "backend $DEAD: Connection refused" "$T/recluse.log"
	grep -q "backend $FULL: Connection timed out" "$T/recluse.log"
	access_log client-close
	grep -q "backend=$BADDR " "$T/recluse.log"
}

@test "UNIX-socket backend, outside the chroot, after a refused TCP one" {
	DEAD="127.0.0.1:$(free_port)"
	open_to_user "$T"
	echod echo "$T/echo.sock"
	proxy "$DEAD" "unix \"$T/echo.sock\""
	head -c 1M /dev/urandom > "$T/data"

	tlspipe < "$T/data" > "$T/out" 2> "$T/tlspipe.log"
	cmp "$T/data" "$T/out"
	access_log client-close
	grep -q "backend $DEAD: Connection refused" "$T/recluse.log"
	grep -q "backend=unix:$T/echo.sock alpn=- cert=localhost proxied=- client_cert=- client_subject=- client_fp=- from_client=1048576 to_client=1048576 " \
	    "$T/recluse.log"
}

@test "a missing UNIX-socket backend is reported" {
	open_to_user "$T"
	proxy "unix \"$T/nothing.sock\""

	run tlspipe -k < /dev/null
	[ "$status" -eq 0 ]
	access_log backend-error
	grep -q "backend unix:$T/nothing.sock: No such file or directory" \
	    "$T/recluse.log"
}

@test "IPv6 client and IPv6 backend" {
	[ -n "$(ip -6 addr show dev lo 2>/dev/null)" ] || skip "no IPv6 on lo"
	BACKEND_HOST=::1 backend echo
	LISTEN_HOST="[::1]" proxy "$BADDR"

	run bash -c "echo six | $TLSPIPE -C $T/ca.crt -t 20 ::1 $PORT"
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "six" ]
	access_log client-close
	grep -q "client=\[::1\]:[0-9]* listener=web .* backend=\[::1\]:$BPORT " \
	    "$T/recluse.log"
}

@test "garbage, stalled and vanishing clients: the next real client is served" {
	backend http
	proxy "$BADDR"

	# plaintext HTTP instead of a ClientHello: closed at once
	exec 5<>"/dev/tcp/127.0.0.1/$PORT"
	printf 'GET / HTTP/1.0\r\n\r\n' >&5
	timeout 5 cat <&5 > /dev/null 2>&1 || true
	exec 5<&-
	# half a ClientHello, then silence (kept open); and one that vanishes
	exec 6<>"/dev/tcp/127.0.0.1/$PORT"
	printf '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03' >&6
	exec 7<>"/dev/tcp/127.0.0.1/$PORT"
	printf '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03' >&7
	exec 7<&-

	run curl -sS --max-time 5 --cacert "$T/ca.crt" \
	    --resolve "localhost:$PORT:127.0.0.1" "https://localhost:$PORT/"
	[ "$status" -eq 0 ]
	[ "$output" = "hello from echod" ]
	wait_for log_count_is 2 'end=handshake-failed$'
	grep -q "handshake: .*http request" "$T/recluse.log"
	# the stalled one still waits, in a child of its own
	[ "$(conn_children | wc -l)" -eq 1 ]
	exec 6<&-
	access_log client-close
	no_child_killed
}

@test "each connection child is sandboxed and holds only its own descriptors" {
	backend echo
	proxy "$BADDR"

	"$TLSPIPE" -C "$T/ca.crt" -t 60 -c 3 -H 60 127.0.0.1 "$PORT" \
	    > "$T/many.out" 2> "$T/tlspipe.log" 3>&- &
	track $!
	wait_for grep -q "ready 3/3" "$T/many.out"

	uid=$(id -u "$TEST_USER")
	gid=$(id -g "$TEST_USER")
	lino=$(ss -Htlne "( sport = :$PORT )" | grep -o 'ino:[0-9]*' | cut -d: -f2)
	[ -n "$lino" ]
	pids=$(conn_children)
	[ "$(echo "$pids" | wc -l)" -eq 3 ]
	for pid in $pids; do
		[ "$pid" != "$RECLUSE_PID" ]
		grep -q "^Uid:	$uid	$uid	$uid	$uid$" "/proc/$pid/status"
		grep -q "^Gid:	$gid	$gid	$gid	$gid$" "/proc/$pid/status"
		grep -q "^Groups:	$gid *$" "/proc/$pid/status"
		grep -q "^Seccomp:	2$" "/proc/$pid/status"
		grep -q "^NoNewPrivs:	1$" "/proc/$pid/status"
		[ "$(readlink "/proc/$pid/root")" = "$T/empty" ]
		# not dumpable: its /proc files belong to root, not to the user
		[ "$(stat -c %u "/proc/$pid/status")" = 0 ]
		# client, backend, parent channel, libevent's own (epoll,
		# signal pipe) and the relay's epoll set; no listening socket,
		# and no keyproc channel: it is closed once the handshake is
		# done
		sockets=0 others=0
		for fd in /proc/"$pid"/fd/*; do
			n=${fd##*/}
			[ "$n" -le 2 ] && continue
			l=$(readlink "$fd")
			case "$l" in
			"socket:[$lino]")
				echo "child $pid holds the listener" >&2
				return 1 ;;
			socket:*)
				sockets=$((sockets + 1)) ;;
			"anon_inode:[eventpoll]"|pipe:*)
				others=$((others + 1)) ;;
			*)
				echo "child $pid: unexpected fd $n -> $l" >&2
				return 1 ;;
			esac
		done
		[ "$sockets" -eq 3 ]
		[ "$others" -le 4 ]
	done
}

# server_random: the 32-byte random of the ServerHello s_client saw
# (-msg output on stdin), as hex.
server_random() {
	awk '/ServerHello$/ { on = 1; next } on && /^ / { printf "%s", $0; next }
	    on { exit }' | tr -d ' ' | cut -c13-76
}

@test "every connection child draws its own random numbers (ServerHello random, key share)" {
	backend echo
	proxy "$BADDR"
	for i in 1 2 3 4 5 6 7 8; do
		echo | openssl s_client -connect "127.0.0.1:$PORT" \
		    -CAfile "$T/ca.crt" -msg 2>/dev/null | server_random
	done > "$T/randoms"
	cat "$T/randoms" >&2
	[ "$(grep -c '^[0-9a-f]\{64\}$' "$T/randoms")" -eq 8 ]
	# children forked from one spawner image must not repeat its state
	[ "$(sort -u "$T/randoms" | wc -l)" -eq 8 ]
}

@test "SIGKILL of one child ends only its connection" {
	backend echo
	proxy "$BADDR"

	for i in 1 2 3; do
		mkfifo "$T/in$i"
		"$TLSPIPE" -C "$T/ca.crt" -t 60 -v -k 127.0.0.1 "$PORT" \
		    < "$T/in$i" > "$T/out$i" 2> "$T/err$i" 3>&- &
		pids[i]=$!
		track $!
		exec {fd}> "$T/in$i"
		fds[i]=$fd
		echo "ping$i" >&"${fds[i]}"
	done
	for i in 1 2 3; do
		wait_for grep -q "ping$i" "$T/out$i"
	done
	lport=$(grep -o 'connected port=[0-9]*' "$T/err2" | cut -d= -f2)
	victim=$(child_of_client "$lport")
	[ -n "$victim" ]
	kill -9 "$victim"

	# its client sees the end; the others go on
	wait_for sh -c "! kill -0 ${pids[2]} 2>/dev/null"
	for i in 1 3; do
		echo "after$i" >&"${fds[i]}"
		wait_for grep -q "after$i" "$T/out$i"
		kill -0 "${pids[i]}"
	done
	kill -0 "$RECLUSE_PID"
	run bash -c "echo fresh | $TLSPIPE -C $T/ca.crt -t 20 127.0.0.1 $PORT"
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "fresh" ]
	grep -q "child $victim killed by signal 9" "$T/recluse.log"
	for i in 1 2 3; do
		exec {fds[i]}>&-
	done
}

@test "1000 concurrent connections through one listener are all served" {
	ulimit -n 16384 2>/dev/null || ulimit -n "$(ulimit -Hn)"
	backend echo
	proxy "$BADDR"

	# all 1000 handshaken and echoed while all are open at once
	run timeout 150 "$TLSPIPE" -C "$T/ca.crt" -t 120 -c 1000 127.0.0.1 "$PORT"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "ready 1000/1000" ]
	wait_for log_count_is 1000 'listener=web .*end=client-close$'
	no_child_killed
}

# policies_under PID: the scheduling policy (as chrt names it: SCHED_BATCH,
# ...) of PID and of each of its children, one a line.
policies_under() {
	local p
	for p in "$1" $(children_of "$1"); do
		chrt -p "$p" 2>/dev/null | sed -n 's/.*scheduling policy: //p'
	done
}

# proxy_under CMD...: proxy "$BADDR" with recluse started as CMD... recluse
# ARGS (a wrapper that execs it); check it serves, and write the policies
# of its processes to $T/policies.
proxy_under() {
	printf '#!/bin/sh\nexec' > "$T/wrapped-recluse"
	printf ' "%s"' "$@" "$RECLUSE" >> "$T/wrapped-recluse"
	printf ' "$@"\n' >> "$T/wrapped-recluse"
	chmod +x "$T/wrapped-recluse"
	RECLUSE="$T/wrapped-recluse" proxy "$BADDR"
	[ "$(echo hello | tls_echo "$PORT")" = hello ]
	policies_under "$RECLUSE_PID" > "$T/policies"
	cat "$T/policies"
}

@test "every process of recluse runs under SCHED_BATCH; a policy the operator chose stays" {
	# The control: chrt reads this shell's default policy as SCHED_OTHER.
	[ "$(policies_under $$ | head -1)" = SCHED_OTHER ]
	backend echo
	proxy "$BADDR"
	"$TLSPIPE" -C "$T/ca.crt" -t 60 -c 2 -H 60 127.0.0.1 "$PORT" \
	    > "$T/held.out" 2> "$T/tlspipe.log" 3>&- &
	track $!
	wait_for grep -q "ready 2/2" "$T/held.out"
	[ "$(conn_children | wc -l)" -eq 2 ]
	policies_under "$RECLUSE_PID" > "$T/policies"
	cat "$T/policies"
	# parent, keyproc, the connector, the spawner, 2 busy children, spares
	[ "$(wc -l < "$T/policies")" -ge 7 ]
	[ "$(sort -u "$T/policies")" = SCHED_BATCH ]
	kill "$RECLUSE_PID"
	wait_for eval '! kill -0 "$RECLUSE_PID" 2>/dev/null'
	# proxy() waits for "ready" in recluse.log: the next run's own.
	mv "$T/recluse.log" "$T/recluse-first.log"

	# Started under SCHED_IDLE (chrt -i, or a unit's CPUSchedulingPolicy=):
	# recluse leaves it so, and so do the processes it starts.
	proxy_under chrt -i 0
	[ "$(wc -l < "$T/policies")" -ge 5 ]
	[ "$(sort -u "$T/policies")" = SCHED_IDLE ]
}

@test "under a seccomp filter that kills sched_setscheduler (the unit's), recluse starts, serves and keeps the policy" {
	# The control: the helper's filter does kill a process that asks.
	run "$HELPERS/nosched" chrt -b 0 true
	[ "$status" -eq 159 ]	# 128 + SIGSYS
	backend echo
	proxy_under "$HELPERS/nosched"
	[ "$(wc -l < "$T/policies")" -ge 5 ]
	[ "$(sort -u "$T/policies")" = SCHED_OTHER ]
}
