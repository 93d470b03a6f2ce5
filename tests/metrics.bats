#!/usr/bin/env bats
# The metrics endpoint (GET /metrics, Prometheus text) and the status view
# (GET /status), served by the sandboxed metrics process.
#
# The promtool test needs promtool (Debian package prometheus: 19 MB to
# download, 96 MB installed with its web assets, so not in tests/deps.sh);
# it is skipped without it.  PROMTOOL=/path/to/promtool picks one, e.g.
# extracted with: apt-get download prometheus && dpkg-deb -x prometheus_*.deb x

load helpers

setup() {
	common_setup
	make_cert web ec256
	EXTRA=""
	PROMTOOL=${PROMTOOL:-$(command -v promtool || true)}
}

teardown() {
	common_teardown
}

# mconf METRICS_LINE: one listener "web" on 127.0.0.1:$PORT with backend
# $BADDR, a listener "down" on $DPORT whose backend refuses, and the line.
mconf() {
	{
		globals_conf
		[ -n "$EXTRA" ] && printf '%s\n' "$EXTRA"
		printf '%s\n' "$1"
		listener_conf web "127.0.0.1:$PORT" "$BADDR"
		listener_conf down "127.0.0.1:$DPORT" "127.0.0.1:$CPORT"
	} > "$T/recluse.conf"
}

# start METRICS_LINE: echod on a free port, recluse with mconf; MPORT is
# the metrics port when METRICS_LINE is empty.
start() {
	BPORT=$(free_port)
	BADDR="127.0.0.1:$BPORT"
	start_echod echo "$BPORT"
	PORT=$(free_port)
	DPORT=$(free_port)
	CPORT=$(free_port)	# nothing listens there
	MPORT=$(free_port)
	mconf "${1:-metrics 127.0.0.1:$MPORT}"
	start_recluse "$T/recluse.conf"
}

# scrape [PATH]: GET the page (default /metrics) from the endpoint.
scrape() {
	curl -sS --max-time 10 "http://127.0.0.1:$MPORT${1:-/metrics}"
}

# metric 'NAME{LABELS}': its value in a fresh scrape (empty if absent).
metric() {
	scrape | awk -v m="$1" '$1 == m { print $2 }'
}

# metric_is 'NAME{LABELS}' VALUE: for wait_for.
metric_is() {
	[ "$(metric "$1")" = "$2" ]
}

# hold NAME: a TLS connection to $PORT with SNI localhost, kept open.
hold() {
	mkfifo "$T/$1.in"
	sleep 300 > "$T/$1.in" 3>&- &
	track $!
	openssl s_client -connect "127.0.0.1:$PORT" -servername localhost \
	    -CAfile "$T/ca.crt" -verify_return_error -quiet < "$T/$1.in" \
	    > "$T/$1.out" 2>>"$T/s_client.log" 3>&- &
	track $!
}

# metrics_pid: the metrics process.
metrics_pid() {
	ps -o pid=,comm= --ppid "$RECLUSE_PID" |
	    awk '$2 == "recluse-metrics" { print $1 }'
}

@test "without a metrics line there is no metrics process" {
	start "# no metrics"
	run metrics_pid
	[ -z "$output" ]
	! grep -q "metrics" "$T/recluse.log"
}

@test "the metrics line is checked and printed back by -nn" {
	PORT=$(free_port); DPORT=$(free_port); CPORT=$(free_port)
	BADDR=127.0.0.1:1
	mconf "metrics 127.0.0.1:9100"
	run "$RECLUSE" -nn -f "$T/recluse.conf"
	[ "$status" -eq 0 ]
	echo "$output" | grep -qx "metrics 127.0.0.1:9100"
	mconf "metrics unix \"$T/m.sock\""
	run "$RECLUSE" -nn -f "$T/recluse.conf"
	[ "$status" -eq 0 ]
	echo "$output" | grep -qx "metrics unix \"$T/m.sock\""
	mconf "metrics 127.0.0.1"
	run "$RECLUSE" -n -f "$T/recluse.conf"
	[ "$status" -eq 1 ]
	echo "$output" | grep -q "recluse.conf:4: bad address"
	mconf "metrics 127.0.0.1:1"
	printf 'metrics 127.0.0.1:2\n' >> "$T/recluse.conf"
	run "$RECLUSE" -n -f "$T/recluse.conf"
	[ "$status" -eq 1 ]
	echo "$output" | grep -q 'duplicate "metrics"'
}

@test "counters match a known number of good and failing connections" {
	EXTRA="timeout handshake 2"
	start
	local i
	# 3 good connections, 5 + 7 bytes each way
	for i in 1 2 3; do
		run tls_echo "$PORT" <<< "hello"
		[ "$output" = hello ]
	done
	run tls_echo "$PORT" <<< "hello!"
	[ "$output" = "hello!" ]
	# 2 handshakes that fail: not TLS at all
	for i in 1 2; do
		printf 'GET / HTTP/1.0\r\n\r\n' |
		    timeout 10 bash -c "cat > /dev/tcp/127.0.0.1/$PORT" || true
	done
	# 1 handshake that times out: a client that says nothing
	exec 5<>"/dev/tcp/127.0.0.1/$PORT"
	# 2 good handshakes whose backend refuses
	for i in 1 2; do
		run tls_echo "$DPORT" <<< "x"
	done
	wait_for metric_is 'recluse_handshake_failures_total{listener="web",reason="timeout"}' 1
	exec 5>&-
	wait_for metric_is 'recluse_connections_open{listener="web"}' 0
	wait_for metric_is 'recluse_connections_open{listener="down"}' 0
	scrape > "$T/m.txt"
	cat "$T/m.txt" >> "$T/scrape.log"
	m() { awk -v m="$1" '$1 == m { print $2 }' "$T/m.txt"; }
	[ "$(m 'recluse_connections_accepted_total{listener="web"}')" = 7 ]
	[ "$(m 'recluse_handshakes_total{listener="web"}')" = 4 ]
	[ "$(m 'recluse_handshake_failures_total{listener="web",reason="protocol"}')" = 2 ]
	[ "$(m 'recluse_handshake_failures_total{listener="web",reason="timeout"}')" = 1 ]
	[ "$(m 'recluse_handshake_failures_total{listener="web",reason="keyproc"}')" = 0 ]
	[ "$(m 'recluse_connections_ended_total{listener="web",end="closed"}')" = 4 ]
	# "hello\n" x3 + "hello!\n"
	[ "$(m 'recluse_received_bytes_total{listener="web"}')" = 25 ]
	[ "$(m 'recluse_sent_bytes_total{listener="web"}')" = 25 ]
	[ "$(m 'recluse_keyproc_signatures_total{listener="web"}')" = 4 ]
	[ "$(m 'recluse_keyproc_sign_duration_seconds_count{listener="web"}')" = 4 ]
	[ "$(m "recluse_backend_connects_total{listener=\"web\",backend=\"$BADDR\"}")" = 4 ]
	[ "$(m 'recluse_connections_accepted_total{listener="down"}')" = 2 ]
	[ "$(m 'recluse_handshakes_total{listener="down"}')" = 2 ]
	[ "$(m 'recluse_connections_ended_total{listener="down",end="backend"}')" = 2 ]
	[ "$(m "recluse_backend_failures_total{listener=\"down\",backend=\"127.0.0.1:$CPORT\"}")" = 2 ]
	[ "$(m 'recluse_children{listener="web",state="busy"}')" = 0 ]
	[ "$(m 'recluse_children{listener="web",state="spare"}')" -ge 1 ]
	[ "$(m 'recluse_config_generation')" = 1 ]
	[ "$(m 'recluse_keyproc_up')" = 1 ]
	# the test certificate is valid for 30 days
	local exp now
	exp=$(m "recluse_certificate_expiry_timestamp_seconds{listener=\"web\",file=\"$T/web.crt\"}")
	now=$(date +%s)
	[ "$exp" -gt $((now + 29 * 86400)) ] && [ "$exp" -le $((now + 30 * 86400 + 60)) ]
}

@test "a handshake whose signature keyproc does not give counts as a keyproc failure" {
	start
	local kp
	kp=$(ps -o pid=,comm= --ppid "$RECLUSE_PID" |
	    awk '$2 == "recluse-keyproc" { print $1 }')
	[ -n "$kp" ]
	kill -STOP "$kp"
	# the child waits 5 s for its signature, then gives up
	run tls_echo "$PORT" <<< "hello"
	kill -CONT "$kp"
	[ "$output" != hello ]
	wait_for metric_is 'recluse_handshake_failures_total{listener="web",reason="keyproc"}' 1
	[ "$(metric 'recluse_keyproc_refusals_total{listener="web"}')" = 1 ]
	[ "$(metric 'recluse_connections_ended_total{listener="web",end="keyproc"}')" = 1 ]
	[ "$(metric 'recluse_handshakes_total{listener="web"}')" = 0 ]
	# and keyproc, running again, signs for the next one
	run tls_echo "$PORT" <<< "hello"
	[ "$output" = hello ]
	wait_for metric_is 'recluse_keyproc_signatures_total{listener="web"}' 1
}

@test "the exposition passes promtool check metrics" {
	[ -n "$PROMTOOL" ] || skip "promtool (Debian package prometheus) not installed"
	start
	run tls_echo "$PORT" <<< "hello"
	wait_for metric_is 'recluse_connections_open{listener="web"}' 0
	scrape > "$T/m.txt"
	run "$PROMTOOL" check metrics < "$T/m.txt"
	echo "$output"
	[ "$status" -eq 0 ]
}

@test "children that die of a signal are counted by signal" {
	start
	hold_conn c1 "$PORT"
	wait_for metric_is 'recluse_connections_open{listener="web"}' 1
	local child
	child=$(ss -Htnp state established "( sport = :$PORT )" |
	    grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u)
	[ -n "$child" ]
	kill -SEGV "$child"
	wait_for metric_is 'recluse_children_signaled_total{listener="web",signal="SIGSEGV"}' 1
	[ "$(metric 'recluse_connections_open{listener="web"}')" = 0 ]
}

@test "reloads and failed reloads are counted; the generation follows" {
	start
	kill -HUP "$RECLUSE_PID"
	wait_for metric_is recluse_reloads_total 1
	[ "$(metric recluse_config_generation)" = 2 ]
	cp "$T/recluse.conf" "$T/good.conf"
	echo "bogus line" >> "$T/recluse.conf"
	kill -HUP "$RECLUSE_PID"
	wait_for metric_is recluse_reload_failures_total 1
	[ "$(metric recluse_config_generation)" = 2 ]
	[ "$(metric recluse_reloads_total)" = 1 ]
}

@test "the status view lists three held connections, the pool and keyproc" {
	start
	hold c1
	hold c2
	hold c3
	wait_for sh -c "curl -sS --max-time 5 http://127.0.0.1:$MPORT/status |
	    grep -q 'connections: 3 open'"
	scrape /status > "$T/status.txt"
	cat "$T/status.txt" >> "$T/scrape.log"
	# each row: pid, listener, client, SNI, backend, age, state
	wait_for sh -c "curl -sS --max-time 5 http://127.0.0.1:$MPORT/status |
	    grep -c 'web  *127\.0\.0\.1:[0-9]*  *localhost  *$BADDR .* relaying' |
	    grep -qx 3"
	grep -q "listener web: [0-9]* spare, 3 busy" "$T/status.txt"
	grep -q "listener down: [0-9]* spare, 0 busy" "$T/status.txt"
	grep -q "configuration: generation 1 from $T/recluse.conf, loaded" \
	    "$T/status.txt"
	local kp
	kp=$(ps -o pid=,comm= --ppid "$RECLUSE_PID" |
	    awk '$2 == "recluse-keyproc" { print $1 }')
	[ -n "$kp" ]
	grep -q "keyproc: pid $kp, up since" "$T/status.txt"
}

@test "only GET /metrics and GET /status are answered" {
	start
	run curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$MPORT/"
	[ "$output" = 404 ]
	run curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$MPORT/metrics/x"
	[ "$output" = 404 ]
	run curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$MPORT/metrics"
	[ "$output" = 405 ]
	run bash -c "exec 3<>/dev/tcp/127.0.0.1/$MPORT;
	    printf 'GET /metrics\r\n\r\n' >&3; head -c 12 <&3"
	[ "$output" = "HTTP/1.1 400" ]
	run bash -c "exec 3<>/dev/tcp/127.0.0.1/$MPORT;
	    head -c 4095 /dev/zero | tr '\\0' a >&3; head -c 12 <&3"
	[ "$output" = "HTTP/1.1 431" ]
	# a client that says nothing is dropped after the deadline (5 s)
	local t0=$SECONDS
	run bash -c "exec 3<>/dev/tcp/127.0.0.1/$MPORT; cat <&3"
	[ $((SECONDS - t0)) -le 9 ]
	[ -z "$output" ]
	# and none of it hurt the endpoint
	scrape | grep -q '^recluse_connections_accepted_total{listener="web"} 0$'
}

@test "the metrics process is sandboxed like a child and named in ps" {
	start
	local pid
	pid=$(metrics_pid)
	[ -n "$pid" ]
	[ "$(cat "/proc/$pid/comm")" = recluse-metrics ]
	[ "$(awk '/^Uid:/ { print $2 }' "/proc/$pid/status")" = "$(id -u "$TEST_USER")" ]
	[ "$(awk '/^Seccomp:/ { print $2 }' "/proc/$pid/status")" = 2 ]
	[ "$(awk '/^NoNewPrivs:/ { print $2 }' "/proc/$pid/status")" = 1 ]
	[ "$(readlink "/proc/$pid/root")" = "$T/empty" ]
	# channel, listening socket, nothing else but /dev/null
	[ "$(ls "/proc/$pid/fd" | wc -l)" -le 6 ]
	# keyproc names itself too
	ps -o comm= --ppid "$RECLUSE_PID" | grep -qx recluse-keyproc
}

@test "the metrics filter kills socket, open, signals and accept4 on any other descriptor" {
	run "$HELPERS/sandboxprobe" metrics
	echo "$output"
	[ "$status" -eq 0 ]
	local p
	for p in socket open accept4-other kill ptrace process_vm_readv \
	    fcntl-setown ioctl-fioasync pidfd_open setsid; do
		grep -qx "$p killed" <<< "$output"
	done
	grep -q "^accept4-listen error: " <<< "$output"
	# positive control: unfiltered, the same calls are made
	run "$HELPERS/sandboxprobe" -n metrics socket open accept4-other
	echo "$output"
	grep -qx "socket ok" <<< "$output"
	grep -qx "open ok" <<< "$output"
	grep -q "^accept4-other error: " <<< "$output"
}

@test "a metrics process that dies is started again" {
	start
	local pid
	pid=$(metrics_pid)
	kill -9 "$pid"
	wait_for grep -q "metrics restarted" "$T/recluse.log"
	scrape | grep -q '^recluse_keyproc_up 1$'
}

@test "metrics on a UNIX socket, mode 0600" {
	start "metrics unix \"$T/m.sock\""
	wait_for test -S "$T/m.sock"
	[ "$(stat -c %a "$T/m.sock")" = 600 ]
	run curl -sS --max-time 10 --unix-socket "$T/m.sock" http://x/metrics
	[ "$status" -eq 0 ]
	echo "$output" | grep -q '^# TYPE recluse_connections_accepted_total counter$'
}
