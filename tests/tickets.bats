#!/usr/bin/env bats
# Session resumption (session-tickets, session-ticket-key): TLS 1.3
# tickets that resume across the per-connection processes when on, none
# when off (tests/proxy.bats checks the default), and a fleet key file two
# instances share.

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

# conf NAME PORT LINES...: $T/NAME.conf, one listener "web" on PORT with
# these extra listener lines.
conf() {
	local name=$1 port=$2 line
	shift 2
	{
		globals_conf
		cat <<EOC
listener "web" {
	listen 127.0.0.1:$port
	certificate "$T/web.crt"
	key "$T/web.key"
	backend 127.0.0.1:$BPORT
EOC
		for line; do printf '\t%s\n' "$line"; done
		echo "}"
	} > "$T/$name.conf"
}

# run_recluse NAME: start recluse with $T/NAME.conf, its log in
# $T/NAME.log; pid in RECLUSE_PID.
run_recluse() {
	"$RECLUSE" -f "$T/$1.conf" >> "$T/$1.log" 2>&1 3>&- &
	RECLUSE_PID=$!
	track "$RECLUSE_PID"
	disown "$RECLUSE_PID"
	wait_for grep -q "parent: ready" "$T/$1.log"
}

# s_client OUT PORT ARGS...: one TLS handshake with 127.0.0.1:PORT that
# sends "x" and waits for it back; its output in $T/OUT.
s_client() {
	local out=$1 port=$2
	shift 2
	printf 'x\n' | timeout 10 openssl s_client -connect "127.0.0.1:$port" \
	    -servername localhost -CAfile "$T/ca.crt" -ign_eof "$@" \
	    > "$T/$out" 2>&1 || true
	cat "$T/$out" >&2
	grep -q "Verify return code: 0 (ok)" "$T/$out"
}

# fleet_key FILE: a new session-ticket-key file as an operator makes it.
fleet_key() {
	openssl rand 80 > "$1"
	chmod 600 "$1"
}

@test "session-tickets on: a TLS 1.3 session saved from one connection resumes on another (another process)" {
	PORT=$(free_port)
	conf a "$PORT" "session-tickets on"
	run_recluse a
	s_client full "$PORT" -tls1_3 -sess_out "$T/sess"
	grep -q "^New, TLSv1.3" "$T/full"
	[ -s "$T/sess" ]
	s_client resumed "$PORT" -tls1_3 -sess_in "$T/sess" -sess_out "$T/sess2"
	grep -q "^Reused, TLSv1.3" "$T/resumed"
	# the resumed connection got a fresh ticket, which resumes in turn
	s_client again "$PORT" -tls1_3 -sess_in "$T/sess2"
	grep -q "^Reused, TLSv1.3" "$T/again"
}

@test "session-tickets on: a reload keeps the listener's keys, so a session from before it resumes" {
	PORT=$(free_port)
	conf a "$PORT" "session-tickets on"
	run_recluse a
	s_client before "$PORT" -tls1_3 -sess_out "$T/sess"
	kill -HUP "$RECLUSE_PID"
	wait_for grep -q "configuration 2" "$T/a.log"
	s_client after "$PORT" -tls1_3 -sess_in "$T/sess"
	grep -q "^Reused, TLSv1.3" "$T/after"
}

@test "session-tickets on: TLS 1.2 still gets no ticket and no session ID" {
	PORT=$(free_port)
	conf a "$PORT" "session-tickets on"
	run_recluse a
	s_client tls12 "$PORT" -tls1_2 -sess_out "$T/sess12"
	# a handshake that completed (s_client prints the above even for
	# one the server ended), and relayed
	wait_for grep -q "listener=web tls=TLSv1.2 cipher=ECDHE-.* end=client-" \
	    "$T/a.log"
	! grep -q "TLS session ticket:" "$T/tls12" || false
	grep -Eq "^ +Session-ID: *$" "$T/tls12"
	# a saved TLS 1.2 "session" resumes nothing
	if [ -s "$T/sess12" ]; then
		s_client tls12b "$PORT" -tls1_2 -sess_in "$T/sess12"
		grep -q "^New, TLSv1.2" "$T/tls12b"
	fi
}

@test "session-tickets off (explicit): no ticket, a saved session is not resumed" {
	PORT=$(free_port)
	conf a "$PORT" "session-tickets off"
	run_recluse a
	s_client off "$PORT" -tls1_3 -sess_out "$T/sess"
	! grep -q "New Session Ticket\|TLS session ticket" "$T/off" || false
	[ ! -e "$T/sess" ]
}

@test "a ticket of one listener does not resume on another (each has its own keys)" {
	PORT=$(free_port)
	PORT2=$(free_port)
	conf a "$PORT" "session-tickets on"
	conf b "$PORT2" "session-tickets on"
	run_recluse a
	run_recluse b
	s_client full "$PORT" -tls1_3 -sess_out "$T/sess"
	s_client other "$PORT2" -tls1_3 -sess_in "$T/sess"
	grep -q "^New, TLSv1.3" "$T/other"
}

@test "two instances sharing a session-ticket-key file resume each other's sessions" {
	fleet_key "$T/ticket.key"
	PORT=$(free_port)
	PORT2=$(free_port)
	conf a "$PORT" "session-tickets on" "session-ticket-key \"$T/ticket.key\""
	conf b "$PORT2" "session-tickets on" "session-ticket-key \"$T/ticket.key\""
	run_recluse a
	run_recluse b
	s_client full "$PORT" -tls1_3 -sess_out "$T/sess"
	grep -q "^New, TLSv1.3" "$T/full"
	s_client onb "$PORT2" -tls1_3 -sess_in "$T/sess" -sess_out "$T/sess2"
	grep -q "^Reused, TLSv1.3" "$T/onb"
	s_client ona "$PORT" -tls1_3 -sess_in "$T/sess2"
	grep -q "^Reused, TLSv1.3" "$T/ona"
}

@test "session-ticket-key is re-read on SIGHUP: the previous key only decrypts, a dropped key resumes nothing" {
	fleet_key "$T/k1"
	fleet_key "$T/k2"
	cp "$T/k1" "$T/ticket.key"
	PORT=$(free_port)
	conf a "$PORT" "session-tickets on" "session-ticket-key \"$T/ticket.key\""
	run_recluse a
	s_client full "$PORT" -tls1_3 -sess_out "$T/sess1"
	# rotate: k2 encrypts, k1 decrypts only
	cat "$T/k2" "$T/k1" > "$T/ticket.key.new"
	chmod 600 "$T/ticket.key.new"
	mv "$T/ticket.key.new" "$T/ticket.key"
	kill -HUP "$RECLUSE_PID"
	wait_for grep -q "configuration 2" "$T/a.log"
	s_client old "$PORT" -tls1_3 -sess_in "$T/sess1" -sess_out "$T/sess2"
	grep -q "^Reused, TLSv1.3" "$T/old"
	# k1 gone: its tickets resume nothing; k2's still do
	cp "$T/k2" "$T/ticket.key"
	kill -HUP "$RECLUSE_PID"
	wait_for grep -q "configuration 3" "$T/a.log"
	s_client gone "$PORT" -tls1_3 -sess_in "$T/sess1"
	grep -q "^New, TLSv1.3" "$T/gone"
	s_client new "$PORT" -tls1_3 -sess_in "$T/sess2"
	grep -q "^Reused, TLSv1.3" "$T/new"
}

@test "session-ticket-key follows the key-file rules, with FILE:LINE" {
	fleet_key "$T/ticket.key"
	PORT=$(free_port)
	conf a "$PORT" "session-tickets on" "session-ticket-key \"$T/ticket.key\""
	run "$RECLUSE" -n -f "$T/a.conf"
	[ "$status" -eq 0 ]
	chmod 644 "$T/ticket.key"
	run "$RECLUSE" -n -f "$T/a.conf"
	[ "$status" -eq 1 ]
	[[ "$output" == *"a.conf:10: session-ticket-key \"$T/ticket.key\" is world-readable"* ]]
	chmod 600 "$T/ticket.key"
	chown "$TEST_USER" "$T/ticket.key"
	run "$RECLUSE" -n -f "$T/a.conf"
	[ "$status" -eq 1 ]
	[[ "$output" == *"a.conf:10: session-ticket-key"*"not by root"* ]]
	chown root "$T/ticket.key"
	head -c 48 /dev/urandom > "$T/ticket.key"
	run "$RECLUSE" -n -f "$T/a.conf"
	[ "$status" -eq 1 ]
	[[ "$output" == *"a.conf:10: session-ticket-key"*"is 48 bytes, not 80 or 160"* ]]
	rm "$T/ticket.key"
	mkfifo -m 600 "$T/ticket.key"
	run "$RECLUSE" -n -f "$T/a.conf"
	[ "$status" -eq 1 ]
	[[ "$output" == *"a.conf:10: session-ticket-key"*"not a regular file"* ]]
}

@test "session-ticket-key without session-tickets on, session-tickets on with TLS 1.2 only or with client-ca, are refused" {
	fleet_key "$T/ticket.key"
	PORT=$(free_port)
	conf a "$PORT" "session-ticket-key \"$T/ticket.key\""
	run "$RECLUSE" -n -f "$T/a.conf"
	[ "$status" -eq 1 ]
	[[ "$output" == *"a.conf:9: session-ticket-key needs \"session-tickets on\""* ]]
	conf a "$PORT" 'protocols "tlsv1.2"' "session-tickets on"
	run "$RECLUSE" -n -f "$T/a.conf"
	[ "$status" -eq 1 ]
	[[ "$output" == *"a.conf:10: session-tickets on: resumption is TLS 1.3 only"* ]]
	conf a "$PORT" "session-tickets maybe"
	run "$RECLUSE" -n -f "$T/a.conf"
	[ "$status" -eq 1 ]
	[[ "$output" == *"a.conf:9: session-tickets \"maybe\": on or off"* ]]
	# a ticket would stand in for a client certificate
	conf a "$PORT" "session-tickets on" "client-ca \"$T/ca.crt\""
	run "$RECLUSE" -n -f "$T/a.conf"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"a.conf:9: session-tickets on and client-ca in listener \"web\""* ]]
}

# tests/helpers/recluse-rotate is recluse that also rotates its ticket keys
# on SIGUSR2, so that a test need not wait an hour (TICKETS_ROTATE_S).
@test "rotation: a new key encrypts, the previous one only decrypts, the one before is gone; spares forked before are retired" {
	PORT=$(free_port)
	conf a "$PORT" "session-tickets on"
	RECLUSE="$HELPERS/recluse-rotate"
	run_recluse a
	have_spares() { [ -n "$(conn_children_of "$RECLUSE_PID")" ]; }
	wait_for have_spares
	spares=$(conn_children_of "$RECLUSE_PID")
	[ -n "$spares" ]
	s_client k0 "$PORT" -tls1_3 -sess_out "$T/sess0"
	grep -q "^New, TLSv1.3" "$T/k0"

	kill -USR2 "$RECLUSE_PID"
	wait_for grep -q "ticket keys rotated" "$T/a.log"
	# the spares forked with the old keys leave
	for pid in $spares; do
		wait_for sh -c "! kill -0 $pid 2>/dev/null"
	done
	# K0 is the previous key now: it still decrypts; the new ticket is K1's
	s_client k1 "$PORT" -tls1_3 -sess_in "$T/sess0" -sess_out "$T/sess1"
	grep -q "^Reused, TLSv1.3" "$T/k1"

	kill -USR2 "$RECLUSE_PID"
	wait_for sh -c "[ \$(grep -c 'ticket keys rotated' '$T/a.log') -ge 2 ]"
	# K0 is gone: its ticket resumes nothing; K1 (previous) still does
	s_client gone "$PORT" -tls1_3 -sess_in "$T/sess0"
	grep -q "^New, TLSv1.3" "$T/gone"
	s_client k2 "$PORT" -tls1_3 -sess_in "$T/sess1"
	grep -q "^Reused, TLSv1.3" "$T/k2"
}

# spares_on PORT: the spare children of the listener on PORT (they hold
# its listening socket; the parent and the spawner hold it too).
spares_on() {
	local pid
	for pid in $(ss -Hltnp "( sport = :$1 )" | grep -o 'pid=[0-9]*' |
	    cut -d= -f2 | sort -u); do
		[ "$pid" != "$RECLUSE_PID" ] &&
		    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" != recluse-spawner ] &&
		    echo "$pid"
	done
	return 0
}

@test "a child holds its own listener's ticket keys and no other listener's; keyproc holds none" {
	fleet_key "$T/a.key"
	fleet_key "$T/b.key"
	PORT=$(free_port)
	PORT2=$(free_port)
	{
		globals_conf
		for l in a b; do
			p=$PORT
			[ "$l" = b ] && p=$PORT2
			cat <<EOC
listener "$l" {
	listen 127.0.0.1:$p
	certificate "$T/web.crt"
	key "$T/web.key"
	backend 127.0.0.1:$BPORT
	session-tickets on
	session-ticket-key "$T/$l.key"
}
EOC
		done
	} > "$T/x.conf"
	run_recluse x
	has_spares_on() { [ -n "$(spares_on "$1")" ]; }
	wait_for has_spares_on "$PORT"
	wait_for has_spares_on "$PORT2"
	a=$(spares_on "$PORT" | head -n 1)
	b=$(spares_on "$PORT2" | head -n 1)
	kp=$(keyproc_of "$RECLUSE_PID")
	[ -n "$a" ] && [ -n "$b" ] && [ -n "$kp" ]
	python3 "$HELPERS/memfind.py" "$T/a.key" "$T/b.key" -- "$a" "$b" "$kp" \
	    > "$T/scan"
	cat "$T/scan" >&2
	# the controls: each child holds its own listener's key
	grep -q "^$a $T/a.key found$" "$T/scan"
	grep -q "^$b $T/b.key found$" "$T/scan"
	# and not the other's; keyproc neither
	grep -q "^$a $T/b.key absent$" "$T/scan"
	grep -q "^$b $T/a.key absent$" "$T/scan"
	grep -q "^$kp $T/a.key absent$" "$T/scan"
	grep -q "^$kp $T/b.key absent$" "$T/scan"
}
