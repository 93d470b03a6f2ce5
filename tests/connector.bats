#!/usr/bin/env bats
# The connector: backend connections are made by one unprivileged,
# sandboxed process, never by the root parent or by a connection child.

load helpers

setup() {
	common_setup
	make_cert web ec256
	# the connector reaches UNIX sockets under $T as the test user
	open_to_user "$T"
}

teardown() {
	common_teardown
}

# run_proxy BACKEND...: listener "web" on a free port (in PORT) with these
# backend lines, recluse started and ready.
run_proxy() {
	PORT=$(free_port)
	{
		globals_conf
		listener_conf web "127.0.0.1:$PORT" "$@"
	} > "$T/recluse.conf"
	start_recluse "$T/recluse.conf"
}

# has_sandboxed_connector: recluse has a connector, its filter installed.
has_sandboxed_connector() {
	local cn
	cn=$(connector_of "$RECLUSE_PID")
	[ -n "$cn" ] && grep -Eq '^Seccomp:\s+2$' "/proc/$cn/status"
}

@test "a UNIX-socket backend sees the user's uid in SO_PEERCRED, not root's" {
	start_echod cred "$T/cred.sock"
	run_proxy "unix \"$T/cred.sock\""

	run tls_echo "$PORT" <<< "hello"
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "peer uid=$(id -u "$TEST_USER") gid=$(id -g "$TEST_USER")" ]
	[ "${lines[1]}" = "hello" ]
	wait_for grep -q "listener=web .*backend=unix:$T/cred.sock .*end=client-close" \
	    "$T/recluse.log"
}

@test "a UNIX-socket backend the user may not reach is refused, not connected by root" {
	mkdir -m 700 "$T/private"
	start_echod echo "$T/private/echo.sock"
	run_proxy "unix \"$T/private/echo.sock\""

	run tls_echo "$PORT" -k <<< "hello"
	[ "$status" -eq 0 ]
	[ "$output" = "" ]
	wait_for grep -q "listener=web .*end=backend-error" "$T/recluse.log"
	grep -q "backend unix:$T/private/echo.sock: Permission denied" \
	    "$T/recluse.log"
}

@test "every backend connect is the connector's: TCP, failover and UNIX, none in a child" {
	DEAD="127.0.0.1:$(free_port)"
	BPORT=$(free_port)
	start_echod echo "$BPORT"
	start_echod echo "$T/echo.sock"
	PORT=$(free_port)
	PORT2=$(free_port)
	{
		globals_conf
		listener_conf web "127.0.0.1:$PORT" "$DEAD" "127.0.0.1:$BPORT"
		listener_conf sock "127.0.0.1:$PORT2" "unix \"$T/echo.sock\""
	} > "$T/recluse.conf"
	strace -f -qq -e trace=socket,connect,bind,listen,sendmsg,sendto,accept4,execve \
	    -o "$T/strace.txt" "$RECLUSE" -f "$T/recluse.conf" \
	    >> "$T/recluse.log" 2>&1 &
	STRACE_PID=$!
	track "$STRACE_PID"
	wait_for grep -q "parent: ready" "$T/recluse.log"
	main=$(children_of "$STRACE_PID")
	track "$main"

	run tls_echo "$PORT" <<< "tcp"
	[ "$output" = "tcp" ]
	run tls_echo "$PORT2" <<< "unix"
	[ "$output" = "unix" ]
	wait_for grep -q "listener=web .*backend=127.0.0.1:$BPORT .*end=client-close" \
	    "$T/recluse.log"
	grep -q "backend $DEAD: Connection refused" "$T/recluse.log"
	wait_for grep -q "listener=sock .*backend=unix:$T/echo.sock .*end=client-close" \
	    "$T/recluse.log"
	kill "$main"
	wait_for bash -c "! kill -0 $STRACE_PID 2>/dev/null"

	cn=$(grep -F '["recluse-connector"]' "$T/strace.txt" | awk '{ print $1 }')
	[ -n "$cn" ]
	[ "$(echo "$cn" | wc -l)" -eq 1 ]
	# the connector made all three, each once
	grep -E "^$cn +connect\(.*sin_port=htons\(${DEAD##*:}\)" "$T/strace.txt"
	grep -E "^$cn +connect\(.*sin_port=htons\($BPORT\)" "$T/strace.txt"
	grep -E "^$cn +connect\(.*sun_path=\"$T/echo.sock\"" "$T/strace.txt"
	# nobody else connects (the parent's NSS lookups aside)
	others=$(grep -E '^[0-9]+ +connect\(' "$T/strace.txt" | awk '{ print $1 }' |
	    sort -u | grep -vx -e "$cn" -e "$main" || true)
	[ -z "$others" ]
	! grep -E "^$main +connect\(.*(htons\(($BPORT|${DEAD##*:})\)|echo\.sock)" \
	    "$T/strace.txt" || false
	# the children: no socket, connect, bind, listen or sendmsg, and
	# sendto only without an address
	children=$(grep -E '^[0-9]+ +accept4\(' "$T/strace.txt" | awk '{ print $1 }' |
	    sort -u)
	[ "$(echo "$children" | wc -l)" -ge 2 ]
	for pid in $children; do
		! grep -E "^$pid +(socket|connect|bind|listen|sendmsg)\(" "$T/strace.txt" || false
		! grep -E "^$pid +sendto\(" "$T/strace.txt" |
		    grep -v ', NULL, 0\()\| <unfinished\)' || false
	done
}

@test "the connector runs as the user, with seccomp, NoNewPrivs, not dumpable, no listening socket" {
	start_echod echo "$T/echo.sock"
	run_proxy "unix \"$T/echo.sock\""
	run tls_echo "$PORT" <<< "up"
	[ "$output" = "up" ]

	wait_for has_sandboxed_connector
	cn=$(connector_of "$RECLUSE_PID")
	[ -n "$cn" ]
	[ "$(tr '\0' ' ' < "/proc/$cn/cmdline")" = "recluse-connector " ]
	[ "$(cat "/proc/$cn/comm")" = "recluse-connect" ]
	uid=$(id -u "$TEST_USER")
	gid=$(id -g "$TEST_USER")
	grep -Eq "^Uid:\s+$uid\s+$uid\s+$uid\s+$uid$" "/proc/$cn/status"
	grep -Eq "^Gid:\s+$gid\s+$gid\s+$gid\s+$gid$" "/proc/$cn/status"
	grep -Eq "^Groups:\s+$gid\s*$" "/proc/$cn/status"
	grep -Eq "^CapEff:\s+0+$" "/proc/$cn/status"
	grep -Eq "^Seccomp:\s+2$" "/proc/$cn/status"
	grep -Eq "^NoNewPrivs:\s+1$" "/proc/$cn/status"
	# not dumpable: the files in its /proc directory stay root's
	[ "$(stat -c %u "/proc/$cn/mem")" -eq 0 ]
	grep -Eq "^Max processes\s+0\s+0" "/proc/$cn/limits"
	grep -Eq "^Max core file size\s+0\s+0" "/proc/$cn/limits"
	# 0-2 /dev/null, 3 its channel, libevent's epoll, nothing else (no
	# listening socket, no file)
	for fd in /proc/"$cn"/fd/*; do
		n=${fd##*/}
		l=$(readlink "$fd")
		case "$n:$l" in
		[012]:/dev/null|3:socket:*) ;;
		# libevent's: its epoll and its signal pipe
		*:anon_inode:\[eventpoll\]|*:pipe:*) ;;
		*)	echo "connector fd $n -> $l" >&2
			return 1 ;;
		esac
	done
	! ss -Hlnp 2>/dev/null | grep -q "pid=$cn," || false
}

@test "the connector's filter: TCP and UNIX stream sockets only, no open, fork or exec" {
	start_echod echo "$T/echo.sock"
	run_proxy "unix \"$T/echo.sock\""

	# allowed: TCP over IPv4 and IPv6, a UNIX stream, with flags
	wait_for has_sandboxed_connector
	cn=$(connector_of "$RECLUSE_PID")
	for call in 'socket(2, 1, 0)' 'socket(10, 1, 6)' 'socket(1, 526337, 0)'; do
		timeout 60 gdb -nx -batch -p "$cn" \
		    -ex "call ((long (*)())${call%%(*})(${call#*(}" \
		    >> "$T/gdb.log" 2>&1 || true
		kill -0 "$cn"
	done
	! grep -q "connector $cn" "$T/recluse.log" || false
	# UDP, MPTCP, a stray flag, netlink, open, fork, exec: killed, and
	# replaced each time
	for call in 'socket(2, 2, 0)' 'socket(2, 1, 262)' 'socket(2, 4097, 0)' \
	    'socket(16, 3, 0)' 'open("/etc/passwd", 0)' 'fork()' \
	    'execve("/bin/true", 0, 0)'; do
		wait_for has_sandboxed_connector
		cn=$(connector_of "$RECLUSE_PID")
		echo "$call in connector $cn" >> "$T/gdb.log"
		timeout 60 gdb -nx -batch -p "$cn" \
		    -ex "call ((long (*)())${call%%(*})(${call#*(}" \
		    >> "$T/gdb.log" 2>&1 || true
		wait_for grep -q "connector $cn killed by signal 31" "$T/recluse.log"
	done
	wait_for has_sandboxed_connector
	run tls_echo "$PORT" <<< "still"
	[ "$output" = "still" ]
}

@test "a child's filter kills it for socket, connect, sendmsg, an addressed sendto, bind, listen" {
	start_echod echo "$T/echo.sock"
	run_proxy "unix \"$T/echo.sock\""
	# nine children, each holding a relayed connection
	"$HELPERS/tlspipe" -C "$T/ca.crt" -t 60 -c 9 -H 60 127.0.0.1 "$PORT" \
	    > "$T/many.out" 2>> "$T/tlspipe.log" 3>&- &
	track $!
	wait_for grep -q "ready 9/9" "$T/many.out"
	pids=$(ss -Htnp state established "( sport = :$PORT )" |
	    grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u)
	[ "$(echo "$pids" | wc -l)" -eq 9 ]
	set -- $pids

	# the harness itself: an allowed call leaves the child alive
	timeout 60 gdb -nx -batch -p "$1" -ex 'call ((long (*)())getpid)()' \
	    > "$T/gdb.log" 2>&1 || true
	grep -q "^\$1 = $1$" "$T/gdb.log"
	kill -0 "$1"
	shift
	# socket(AF_INET, SOCK_STREAM, 0 / IPPROTO_MPTCP), socket(AF_UNIX...),
	# then calls on fd -1 that, if allowed, would only fail with EBADF;
	# through a plain function pointer: glibc's sockaddr arguments are
	# transparent unions, which gdb cannot cast 0 to
	for call in 'socket(2, 1, 0)' 'socket(2, 1, 262)' 'socket(1, 1, 0)' \
	    'connect(-1, 0, 0)' 'sendmsg(-1, 0, 0)' 'sendto(-1, 0, 0, 0, 1, 16)' \
	    'bind(-1, 0, 0)' 'listen(-1, 1)'; do
		pid=$1
		shift
		echo "$call in child $pid" >> "$T/gdb.log"
		timeout 60 gdb -nx -batch -p "$pid" \
		    -ex "call ((long (*)())${call%%(*})(${call#*(}" \
		    >> "$T/gdb.log" 2>&1 || true
		wait_for grep -q "child $pid killed by signal 31" "$T/recluse.log"
	done
	kill -0 "$RECLUSE_PID"
}

@test "the connector killed with SIGKILL is started again and connections are served" {
	start_echod echo "$T/echo.sock"
	run_proxy "unix \"$T/echo.sock\""
	run tls_echo "$PORT" <<< "before"
	[ "$output" = "before" ]
	cn=$(connector_of "$RECLUSE_PID")
	[ -n "$cn" ]

	kill -9 "$cn"
	start=$EPOCHREALTIME
	# at once: the connect waits for the new connector
	run tls_echo "$PORT" <<< "during"
	[ "$output" = "during" ]
	took=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { print b - a }')
	echo "# served ${took} s after the SIGKILL" >&3
	grep -Eq "connector $cn (is gone|exited); starting a new one in 1 s" \
	    "$T/recluse.log"
	grep -q "connector restarted (pid [0-9]*)" "$T/recluse.log"
	cn2=$(connector_of "$RECLUSE_PID")
	[ -n "$cn2" ] && [ "$cn2" != "$cn" ]
	for i in 1 2 3; do
		run tls_echo "$PORT" <<< "after$i"
		[ "$output" = "after$i" ]
	done
	kill -0 "$RECLUSE_PID"
}

@test "a reload that changes user starts the connector again as the new user" {
	ensure_user recluse-test2
	start_echod cred "$T/cred.sock"
	run_proxy "unix \"$T/cred.sock\""
	cn=$(connector_of "$RECLUSE_PID")
	[ -n "$cn" ]

	# same user: the same connector
	kill -HUP "$RECLUSE_PID"
	wait_for grep -q "configuration 2," "$T/recluse.log"
	[ "$(connector_of "$RECLUSE_PID")" = "$cn" ]

	sed -i "s/^user .*/user \"recluse-test2\"/" "$T/recluse.conf"
	kill -HUP "$RECLUSE_PID"
	wait_for grep -q "configuration 3," "$T/recluse.log"
	grep -q "user changed: connector restarted" "$T/recluse.log"
	wait_for has_sandboxed_connector
	cn2=$(connector_of "$RECLUSE_PID")
	[ -n "$cn2" ] && [ "$cn2" != "$cn" ]
	uid=$(id -u recluse-test2)
	grep -Eq "^Uid:\s+$uid\s+$uid\s+$uid\s+$uid$" "/proc/$cn2/status"
	run tls_echo "$PORT" <<< "new"
	[ "${lines[0]}" = "peer uid=$uid gid=$(id -g recluse-test2)" ]
	[ "${lines[1]}" = "new" ]
}

@test "a backend that does not answer at start or reload is warned about once each time; recluse serves anyway" {
	down=$(free_port)
	up=$(free_port)
	start_echod echo "$up"
	run_proxy "127.0.0.1:$down" "127.0.0.1:$up"
	wait_for grep -q "backend 127.0.0.1:$down does not answer" "$T/recluse.log"
	grep "does not answer" "$T/recluse.log" >&2
	grep -q "listener web: backend 127.0.0.1:$down does not answer: Connection refused (serving anyway)" \
	    "$T/recluse.log"
	run tls_echo "$PORT" <<< "hello"
	[ "$status" -eq 0 ]
	[ "$output" = hello ]
	kill -HUP "$RECLUSE_PID"
	wait_for sh -c "[ \$(grep -c 'backend 127.0.0.1:$down does not answer' '$T/recluse.log') -eq 2 ]"
	sleep 1
	[ "$(grep -c "backend 127.0.0.1:$down does not answer" "$T/recluse.log")" -eq 2 ]
	! grep -q "backend 127.0.0.1:$up does not answer" "$T/recluse.log" || false
}
