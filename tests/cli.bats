#!/usr/bin/env bats
# The command line: recluse [-nvV] [-f file].

load helpers

setup() {
	common_setup
}

teardown() {
	common_teardown
}

valid_conf() {
	make_cert web ec256
	{
		globals_conf
		listener_conf web "127.0.0.1:$(free_port)" \
		    "127.0.0.1:$(free_port)"
	} > "$T/recluse.conf"
}

@test "-V prints the version and exits 0" {
	run "$RECLUSE" -V
	[ "$status" -eq 0 ]
	[[ "$output" =~ ^recluse\ [0-9]+\.[0-9]+\.[0-9]+$ ]]
}

@test "an unknown option or a stray argument prints usage and exits 2" {
	run "$RECLUSE" -x
	[ "$status" -eq 2 ]
	[[ "$output" == *"usage: recluse [-nvV] [-f file]"* ]]
	run "$RECLUSE" -n extra
	[ "$status" -eq 2 ]
	[[ "$output" == *"usage:"* ]]
	run "$RECLUSE" -f
	[ "$status" -eq 2 ]
}

@test "-n checks a valid file and exits 0; -nn also prints it" {
	valid_conf
	run "$RECLUSE" -n -f "$T/recluse.conf"
	[ "$status" -eq 0 ]
	[[ "$output" == *"configuration OK"* ]]
	run "$RECLUSE" -nn -f "$T/recluse.conf"
	[ "$status" -eq 0 ]
	[[ "$output" == *"listener \"web\" {"* ]]
}

@test "-n refuses a key that does not match its certificate" {
	valid_conf
	make_key ec256 "$T/other.key"
	sed -i "s|$T/web.key|$T/other.key|" "$T/recluse.conf"
	run "$RECLUSE" -n -f "$T/recluse.conf"
	[ "$status" -eq 1 ]
	[[ "$output" == *"$T/other.key"* ]]
}

@test "without -f the default file is read" {
	[ ! -e /etc/recluse/recluse.conf ] || skip "/etc/recluse/recluse.conf exists here"
	run "$RECLUSE" -n
	[ "$status" -eq 1 ]
	[[ "$output" == *"/etc/recluse/recluse.conf"* ]]
}

@test "recluse stays in the foreground and logs to stderr" {
	valid_conf
	"$RECLUSE" -f "$T/recluse.conf" > "$T/stdout.log" 2> "$T/recluse.log" &
	pid=$!
	track "$pid"
	wait_for grep -q "parent: ready" "$T/recluse.log"
	# the process we started is the one running: no fork into the background
	kill -0 "$pid"
	[ "$(ps -o ppid= -p "$pid" | tr -d ' ')" = "$BASHPID" ]
	[ ! -s "$T/stdout.log" ]
	kill -TERM "$pid"
	wait "$pid"
}

@test "in the foreground every log line starts with an RFC 3339 timestamp; on the journal's stream none does" {
	valid_conf
	start_recluse "$T/recluse.conf"
	wait_for grep -q "parent: ready" "$T/recluse.log"
	kill -TERM "$RECLUSE_PID"
	wait_for sh -c "! kill -0 $RECLUSE_PID 2>/dev/null"
	cat "$T/recluse.log" >&2
	[ "$(wc -l < "$T/recluse.log")" -ge 2 ]
	! grep -Evq "${STAMP}(parent|keyproc|spawner [0-9]+|connector|child [0-9]+): " \
	    "$T/recluse.log" || false
	# the stamp is now, to the second, with the local offset
	now=$(date +%Y-%m-%dT%H:%M)
	grep -q "^$now" "$T/recluse.log" ||
	    grep -q "^$(date -d '-1 min' +%Y-%m-%dT%H:%M)" "$T/recluse.log"
	# systemd's JOURNAL_STREAM names stderr: the journal stamps, we do not
	: > "$T/journal.log"
	JOURNAL_STREAM=$(stat -c %d:%i "$T/journal.log") \
	    "$RECLUSE" -f "$T/recluse.conf" >> "$T/journal.log" 2>&1 &
	pid=$!
	track "$pid"
	wait_for grep -q "parent: ready" "$T/journal.log"
	grep -q "^parent: ready" "$T/journal.log"
	! grep -Eq "$STAMP" "$T/journal.log" || false
}

@test "-v adds debug lines" {
	valid_conf
	start_recluse "$T/recluse.conf" -v
	wait_for grep -q "parent: spawned child" "$T/recluse.log"
}
