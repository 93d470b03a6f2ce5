# Shared helpers for the bats suite.  Every test keeps its state under
# $BATS_TEST_TMPDIR, picks free ports, and kills only the pids it started.
# shellcheck shell=bash

TOP=$(cd "$BATS_TEST_DIRNAME/.." && pwd)
RECLUSE="$TOP/recluse"
HELPERS="$TOP/tests/helpers"
TEST_USER=recluse-test
TEST_KEYUSER=recluse-testkey
# The start of a line of recluse's log in the foreground: its RFC 3339
# timestamp (a pattern for grep -E and sed -E).
STAMP='^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}[+-][0-9]{2}:[0-9]{2} '

# common_setup: per-test temp dir, test users, an empty chroot.
common_setup() {
	T="$BATS_TEST_TMPDIR"
	PIDS_FILE="$T/pids"
	: > "$PIDS_FILE"
	ensure_user "$TEST_USER"
	ensure_user "$TEST_KEYUSER"
	mkdir -p "$T/empty"
	chmod 755 "$T/empty"
}

# common_teardown: on failure, show every log the test made; then kill what
# the test started, by pid.
common_teardown() {
	if [ -z "${BATS_TEST_COMPLETED:-}" ]; then
		for f in "$T"/*.log; do
			[ -f "$f" ] || continue
			echo "---- $f" >&2
			tail -n 200 "$f" >&2
		done
	fi
	if [ -f "$PIDS_FILE" ]; then
		while read -r pid; do
			kill "$pid" 2>/dev/null || true
		done < "$PIDS_FILE"
		sleep 0.1
		while read -r pid; do
			kill -9 "$pid" 2>/dev/null || true
		done < "$PIDS_FILE"
	fi
}

# ensure_user NAME: create a system user with no login if it is missing.
ensure_user() {
	id -u "$1" >/dev/null 2>&1 && return 0
	useradd --system --no-create-home --home-dir /nonexistent \
	    --shell /usr/sbin/nologin "$1" 2>/dev/null || id -u "$1" >/dev/null
}

# track PID: remember a pid to kill in teardown.
track() {
	echo "$1" >> "$PIDS_FILE"
}

# port_in_use PORT: true if any TCP socket uses PORT locally.
port_in_use() {
	ss -Htan "( sport = :$1 )" 2>/dev/null | grep -q .
}

# free_port: print a TCP port no socket uses, below the kernel's ephemeral
# range (32768 and up) so that no outgoing connection takes it meanwhile,
# and never one it printed before in this run: a port handed out but not
# yet bound (a listener's, before recluse starts) is not in use, and a
# backend started meanwhile must not take it.
free_port() {
	local p given="${BATS_RUN_TMPDIR:-${T:-/tmp}}/ports.given"
	while :; do
		p=$(( (RANDOM * 32768 + RANDOM) % 22000 + 10000 ))
		grep -qx "$p" "$given" 2>/dev/null && continue
		port_in_use "$p" && continue
		echo "$p" >> "$given"
		echo "$p"
		return 0
	done
}

# wait_port PORT [HOST]: wait up to 10 s until PORT accepts connections.
wait_port() {
	local i
	for i in $(seq 1 100); do
		(exec 3<>"/dev/tcp/${2:-127.0.0.1}/$1") 2>/dev/null && return 0
		sleep 0.1
	done
	echo "port $1 never opened" >&2
	return 1
}

# wait_for CMD...: retry a command for up to 10 s.
wait_for() {
	local i
	for i in $(seq 1 100); do
		"$@" && return 0
		sleep 0.1
	done
	return 1
}

# holds 'EXPR': EXPR (a test) evaluated now.  In single quotes after
# wait_for, its $(...) runs again at each try: wait_for holds '[ ... ]'.
holds() {
	eval "$1"
}

# make_ca: a throwaway CA in $T/ca.crt, $T/ca.key.
make_ca() {
	[ -f "$T/ca.crt" ] && return 0
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	    -keyout "$T/ca.key" -out "$T/ca.crt" -days 2 -subj "/CN=recluse test CA" \
	    2>/dev/null
}

# make_key TYPE FILE: a private key, mode 600 as an operator keeps it; TYPE
# is rsa2048, rsa3072, rsa4096, ec256 or ec384.
make_key() {
	case "$1" in
	rsa*)	openssl genpkey -algorithm RSA -pkeyopt "rsa_keygen_bits:${1#rsa}" \
		    -out "$2" 2>/dev/null ;;
	ec256)	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
		    -out "$2" 2>/dev/null ;;
	ec384)	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 \
		    -out "$2" 2>/dev/null ;;
	*)	echo "make_key: unknown type $1" >&2; return 1 ;;
	esac
	chmod 600 "$2"
}

# make_cert NAME TYPE [CN]: $T/NAME.key and $T/NAME.crt (leaf + CA chain),
# signed by the test CA, for CN (default localhost) and 127.0.0.1/::1.
make_cert() {
	local name=$1 type=$2 cn=${3:-localhost}
	make_ca
	make_key "$type" "$T/$name.key" || return 1
	openssl req -new -key "$T/$name.key" -subj "/CN=$cn" -out "$T/$name.csr" \
	    2>/dev/null
	printf 'subjectAltName=DNS:%s,DNS:localhost,IP:127.0.0.1,IP:::1\n' "$cn" \
	    > "$T/$name.ext"
	openssl x509 -req -in "$T/$name.csr" -CA "$T/ca.crt" -CAkey "$T/ca.key" \
	    -CAcreateserial -days 30 -extfile "$T/$name.ext" -out "$T/$name.leaf" \
	    2>/dev/null
	cat "$T/$name.leaf" "$T/ca.crt" > "$T/$name.crt"
	chmod 600 "$T/$name.key"
}

# globals_conf: the global lines every test config starts with.
globals_conf() {
	cat <<EOC
user "$TEST_USER"
keyproc-user "$TEST_KEYUSER"
chroot "$T/empty"
EOC
}

# listener_conf [NAME [ADDR [BACKEND...]]]: a complete listener block with
# the test certificate $T/web.crt and key (web, 127.0.0.1:8443,
# 127.0.0.1:8080); each BACKEND is one backend line, in order.
listener_conf() {
	local b
	cat <<EOC
listener "${1:-web}" {
	listen ${2:-127.0.0.1:8443}
	certificate "$T/web.crt"
	key "$T/web.key"
EOC
	[ $# -ge 3 ] || set -- "${1:-web}" "${2:-}" 127.0.0.1:8080
	shift 2
	for b; do printf '\tbackend %s\n' "$b"; done
	echo "}"
}

# open_to_user DIR: let every user search DIR and the directories above it
# (not list or write them): the connector reaches a UNIX-socket backend as
# `user`, and bats makes its temporary directories 0700.
open_to_user() {
	local d=$1
	while [ -n "$d" ] && [ "$d" != / ]; do
		chmod o+x "$d"
		d=$(dirname "$d")
	done
}

# hold_conn NAME PORT: a TLS connection kept open, fed from the fifo
# $T/NAME.in, its output in $T/NAME.out; its pid in HELD_PID.
hold_conn() {
	mkfifo "$T/$1.in"
	sleep 300 > "$T/$1.in" 3>&- &
	track $!
	openssl s_client -connect "127.0.0.1:$2" -CAfile "$T/ca.crt" \
	    -verify_return_error -quiet < "$T/$1.in" > "$T/$1.out" \
	    2>>"$T/s_client.log" 3>&- &
	HELD_PID=$!
	track "$HELD_PID"
}

# start_echod MODE PORT|PATH [ARGS...]: start the test backend
# (tests/helpers/echod) and wait until it listens; its pid in ECHOD_PID.
start_echod() {
	"$HELPERS/echod" "$@" >> "$T/echod.log" 2>&1 &
	ECHOD_PID=$!
	track "$ECHOD_PID"
	case "$2" in
	/*)	wait_for test -S "$2" ;;
	*)	wait_port "$2" ;;
	esac
}

# start_recluse CONF [ARGS...]: run recluse in the foreground of a background
# job, log in $T/recluse.log, pid in RECLUSE_PID; wait until it says ready.
start_recluse() {
	local conf=$1
	shift
	"$RECLUSE" -f "$conf" "$@" >> "$T/recluse.log" 2>&1 &
	RECLUSE_PID=$!
	track "$RECLUSE_PID"
	wait_for grep -q "parent: ready" "$T/recluse.log" || {
		echo "recluse did not become ready" >&2
		return 1
	}
}

# children_of PID: the pids of PID's direct children.
children_of() {
	ps -o pid= --ppid "$1" | tr -d ' '
}

# conn_children_of PID: PID's children other than keyproc, the spawners
# the connector and the metrics process: its connection children.
conn_children_of() {
	ps -o pid=,comm=,args= --ppid "$1" | awk '$2 != "recluse-spawner" &&
	    $3 !~ /^recluse-(keyproc|connector|metrics)/ { print $1 }'
}

# spawner_of PID: the spawner among PID's children (see proxy/spawner.h).
spawner_of() {
	ps -o pid=,comm= --ppid "$1" | awk '$2 == "recluse-spawner" { print $1 }'
}

# keyproc_of PID: the keyproc among PID's children.
keyproc_of() {
	ps -o pid=,args= --ppid "$1" | awk '$2 == "recluse-keyproc" { print $1 }'
}

# connector_of PID: the connector among PID's children.
connector_of() {
	ps -o pid=,args= --ppid "$1" | awk '$2 == "recluse-connector" { print $1 }'
}

# tls_echo PORT [TLSPIPE ARGS...]: send stdin over TLS to 127.0.0.1:PORT
# (verified against the test CA), close, print what came back.
tls_echo() {
	local port=$1
	shift
	"$HELPERS/tlspipe" -C "$T/ca.crt" -t 10 "$@" 127.0.0.1 "$port" \
	    2>>"$T/tlspipe.log"
}

# e2e_setup TYPE: a certificate of TYPE, an echo backend, a config.
e2e_setup() {
	make_cert web "$1"
	BPORT=$(free_port)
	start_echod echo "$BPORT"
	PORT=$(free_port)
	{
		globals_conf
		listener_conf web "127.0.0.1:$PORT" "127.0.0.1:$BPORT"
	} > "$T/recluse.conf"
}

# echo_through WORD [S_CLIENT ARGS...]: WORD comes back through recluse.
# s_client's stdin stays open until the echo is back, then it closes.
echo_through() {
	local word=$1 i
	shift
	rm -f "$T/echo.out"
	{
		echo "$word"
		for i in $(seq 1 50); do
			grep -qxF -- "$word" "$T/echo.out" 2>/dev/null && break
			sleep 0.1
		done
	} | timeout 10 openssl s_client -connect "127.0.0.1:$PORT" \
	    -CAfile "$T/ca.crt" -verify_return_error -quiet -no_ign_eof "$@" \
	    > "$T/echo.out" 2>> "$T/s_client.log"
	grep -qxF -- "$word" "$T/echo.out" || {
		echo "sent $word, got '$(cat "$T/echo.out")' (s_client $*)" >&2
		return 1
	}
}

# gone PID: PID has exited (a zombie not reaped yet counts: it holds
# nothing).
gone() {
	! grep -Eq '^State:\s+[^Z]' "/proc/$1/status" 2>/dev/null
}

# gone_within PID MS: PID is gone at most MS milliseconds from now; the
# time it took in $ELAPSED (ms).
gone_within() {
	local start
	start=$(date +%s%N)
	until gone "$1"; do
		ELAPSED=$(( ($(date +%s%N) - start) / 1000000 ))
		[ "$ELAPSED" -le "$2" ] || {
			echo "pid $1 still there after $ELAPSED ms" >&2
			return 1
		}
		sleep 0.05
	done
	ELAPSED=$(( ($(date +%s%N) - start) / 1000000 ))
}
