#!/usr/bin/env bats
# Isolation, tested as an attacker would (issue 10): code running in a real
# connection child, inside its real sandbox, tries to reach anything but its
# own connection.  Every attack must fail.
#
# tests/helpers/recluse-hostile is recluse built with the test-only hooks
# of tests/helpers/hostile.h: a client whose first line is "RECLUSE-HOSTILE
# <attack>" gets a child that runs the attack after its real accept and
# reports, one verdict line per attempt.  An attack is stopped when the
# verdict says "blocked", or when the child said "calling ..." and then
# died of SIGSYS (its filter).  tests/helpers/hostile-control runs the same
# code in an ordinary process, where the attacks must succeed: the harness
# cannot pass by doing nothing.

load helpers

setup() {
	common_setup
	RECLUSE="$HELPERS/recluse-hostile"
	CONTROL="$HELPERS/hostile-control"
	EXTRA=""
	: > "$T/hostile.log"
	# the chroot, with a file the children could read if they could open
	mkdir -p "$T/jail"
	chmod 755 "$T/jail"
	echo "planted for tests/isolation.bats" > "$T/jail/planted"
	chmod 644 "$T/jail/planted"
}

teardown() {
	common_teardown
}

# ------------------------------------------------------------------
# the daemon and its processes

# start_hostile LISTENER...: recluse-hostile with one listener per argument
# NAME[:KEYTYPE[:PROTOCOLS[:MORE]]] (ec256 and the default protocols unless
# given), each with a certificate of its own ($T/NAME.crt, CN NAME.test)
# on a free port (PORTS[NAME]; the first one also in PORT), and one more
# pair for each KEYTYPE of MORE ("rsa2048+ec384": $T/NAME1.crt, CN
# NAME1.test, ...; key indexes 1, 2, ...); $EXTRA adds global lines.
# Waits until at least two children wait for connections.
start_hostile() {
	local spec name type protocols more i
	declare -gA PORTS
	PORT=""
	{
		cat <<EOC
user "$TEST_USER"
keyproc-user "$TEST_KEYUSER"
chroot "$T/jail"
EOC
		[ -n "$EXTRA" ] && printf '%s\n' "$EXTRA"
		for spec; do
			IFS=: read -r name type protocols more <<< "$spec"
			make_cert "$name" "${type:-ec256}" "$name.test"
			PORTS[$name]=$(free_port)
			[ -n "$PORT" ] || PORT=${PORTS[$name]}
			cat <<EOC
listener "$name" {
	listen 127.0.0.1:${PORTS[$name]}
	certificate "$T/$name.crt"
	key "$T/$name.key"
	backend 127.0.0.1:$(free_port)
EOC
			i=0
			for type in ${more//+/ }; do
				i=$((i + 1))
				make_cert "$name$i" "$type" "$name$i.test"
				printf '\tcertificate "%s"\n\tkey "%s"\n' \
				    "$T/$name$i.crt" "$T/$name$i.key"
			done
			[ -n "$protocols" ] && printf '\tprotocols "%s"\n' "$protocols"
			echo "}"
		done
	} > "$T/recluse.conf"
	start_recluse "$T/recluse.conf"
	disown "$RECLUSE_PID"	# no "Killed" notice from teardown
	wait_for children_ready
}

# procs: "PID UID PGID COMM ARGV0" of each process below recluse (one ps).
procs() {
	ps -e -o pid=,ppid=,uid=,pgid=,comm=,args= | awk -v root="$RECLUSE_PID" '
	    { parent[$1] = $2; line[$1] = $1 " " $3 " " $4 " " $5 " " $6 }
	    END {
		for (p in parent) {
			q = parent[p]
			while (q != root && q in parent && q > 1)
				q = parent[q]
			if (q == root)
				print line[p]
		}
	    }'
}

# children: "PID PGID" of each connection child: the processes below
# recluse that run as the children's user, but a connector.
children() {
	procs | awk -v uid="$(id -u "$TEST_USER")" \
	    '$2 == uid && $5 !~ /recluse-connector/ { print $1, $3 }'
}

# children_ready: at least two children, all of them sandboxed.
children_ready() {
	local pid n=0
	for pid in $(children | cut -d' ' -f1); do
		grep -q "^Seccomp:	2$" "/proc/$pid/status" || return 1
		n=$((n + 1))
	done
	[ "$n" -ge 2 ]
}

# keyproc_pid, spawner_pid: a keyproc, a spawner below recluse.  Children
# forked from an exec'd spawner share its argv[0], not its uid.
keyproc_pid() {
	procs | awk '$5 ~ /recluse-keyproc$/ { print $1; exit }'
}

spawner_pid() {
	procs | awk -v uid="$(id -u "$TEST_USER")" \
	    '$2 != uid && ($4 $5) ~ /recluse-spawner/ { print $1; exit }'
}

# ------------------------------------------------------------------
# one attack

# peer_of PID FD: the pid at the server end of the TCP connection on FD of
# process PID (this shell: $BASHPID, taken outside of any $(...)).
peer_of() {
	ss -Htnp state established "( sport = :$PORT or dport = :$PORT )" |
	    awk -v me="pid=$1,fd=$2)" -v port="$PORT" '
		{ peer[NR] = $4; users[NR] = $0 }
		index($0, me) && $4 ~ ":" port "$" { mine = $3 }
		END {
			for (i = 1; i <= NR; i++)
				if (peer[i] == mine &&
				    match(users[i], /pid=[0-9]+/)) {
					print substr(users[i], RSTART + 4,
					    RLENGTH - 4)
					exit
				}
		}'
}

# ranges_of PID: the readable memory of PID (from its maps) as
# "START-END,...", without [vvar] and [vsyscall].
ranges_of() {
	awk '$2 ~ /^r/ && $6 !~ /^\[(vvar|vsyscall)/ { printf "%s%s", sep, $1; sep = "," }' \
	    "/proc/$1/maps"
}

# expand WORD...: the go line's arguments, with @sibling (another child),
# @pgrp (its process group), @keyproc, @spawner, @parent and @ranges (of
# $CHILD) replaced.
expand() {
	local w sib=""
	for w; do
		case "$w" in
		*@sibling*|*@pgrp*)
			[ -n "$sib" ] ||
			    sib=$(children | awk -v c="$CHILD" '$1 != c' | head -n 1)
			w=${w//@sibling/${sib% *}}
			w=${w//@pgrp/${sib#* }} ;;
		esac
		case "$w" in
		*@keyproc*)	w=${w//@keyproc/$(keyproc_pid)} ;;
		*@spawner*)	w=${w//@spawner/$(spawner_pid)} ;;
		*@parent*)	w=${w//@parent/$RECLUSE_PID} ;;
		*@ranges*)	w=${w//@ranges/$(ranges_of "$CHILD")} ;;
		esac
		printf '%s ' "$w"
	done
}

# hostile ATTACK [KEY=VALUE...]: have a child of the listener on $PORT run
# ATTACK with these arguments (see expand).  Its lines in $T/out (and
# $T/hostile.log), its pid in CHILD; what it looked like from outside while
# it waited (status, fd 2, root) in $T/child.*.
hostile() {
	local attack=$1 me=$BASHPID fd hello args
	shift
	CHILD=""
	exec {fd}<>"/dev/tcp/127.0.0.1/$PORT"
	printf 'RECLUSE-HOSTILE %s\n' "$attack" >&"$fd"
	hello=""
	read -r -t 10 hello <&"$fd" || true
	printf '%s\n' "$hello" > "$T/out"
	if [ -n "$hello" ]; then
		CHILD=$(peer_of "$me" "$fd")
		if [ -z "$CHILD" ]; then
			CHILD=${hello##* }
			echo "ss shows no process at the server end of our" \
			    "connection; taking the child's word: $CHILD" >&2
		fi
		cat "/proc/$CHILD/status" > "$T/child.status" || true
		readlink "/proc/$CHILD/fd/2" > "$T/child.fd2" || true
		readlink "/proc/$CHILD/root" > "$T/child.root" || true
		args=$(expand "$@")
		printf 'go %s\n' "$args" >&"$fd"
		timeout 60 cat <&"$fd" >> "$T/out" || true
	fi
	exec {fd}<&-
	{
		echo "== $attack ${args:0:300} (child ${CHILD:-none})"
		cat "$T/out"
	} >> "$T/hostile.log"
}

# killed_by SIG: $CHILD died of signal SIG (the parent logged it).
killed_by() {
	wait_for grep -q "child $CHILD killed by signal $1 " "$T/recluse.log"
}

# stopped [ANYSIG]: the attack in $T/out was stopped: its verdict says
# "blocked", or it said "calling ..." last and its child died of SIGSYS
# (of any signal with ANYSIG: a parent that ends a child at its handshake
# deadline stops it too).  Says why not.
stopped() {
	if ! grep -q ': calling ' "$T/out"; then
		echo "the attack never ran:" >&2
		cat "$T/out" >&2
		return 1
	fi
	if grep -q ': SUCCEEDED: ' "$T/out"; then
		echo "the attack SUCCEEDED:" >&2
		cat "$T/out" >&2
		return 1
	fi
	grep -q ': blocked: ' "$T/out" && return 0
	if tail -n 1 "$T/out" | grep -q ': calling ' &&
	    killed_by "$([ -n "${1:-}" ] && echo '[0-9]*' || echo 31)"; then
		return 0
	fi
	echo "no verdict, and child $CHILD did not die of SIGSYS:" >&2
	cat "$T/out" >&2
	return 1
}

# attack_each ATTACK ARGS... [-- ARGS...]...: one attack per "--"-separated
# set of arguments, each of which must be stopped; names all that were not.
attack_each() {
	local attack=$1 failed="" a
	local -a set=()
	shift
	for a in "$@" --; do
		if [ "$a" != "--" ]; then
			set+=("$a")
			continue
		fi
		hostile "$attack" "${set[@]}"
		stopped || failed="$failed
	$attack ${set[*]}"
		set=()
	done
	[ -z "$failed" ] || {
		echo "not stopped:$failed" >&2
		return 1
	}
}

# marker: a fresh random word.
marker() {
	echo "hostile$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
}

# point_of NAME: the public key of $T/NAME.crt, the EC point bytes as they
# are in the certificate, in hex.
point_of() {
	openssl x509 -in "$T/$1.crt" -noout -pubkey |
	    openssl pkey -pubin -outform DER | tail -c 65 | od -An -tx1 |
	    tr -d ' \n'
}

hexof() {
	printf '%s' "$1" | od -An -tx1 | tr -d ' \n'
}

# ------------------------------------------------------------------
# the harness itself

@test "recluse-hostile serves TLS as usual, and its attacks run in a real sandboxed child" {
	start_hostile web
	# a TLS client is not taken for an attacker
	run bash -c "echo | openssl s_client -connect 127.0.0.1:$PORT \
	    -CAfile $T/ca.crt -verify_return_error -brief 2>&1"
	echo "$output"
	echo "$output" | grep -q "CONNECTION ESTABLISHED"
	# the in-sandbox positive control: keyproc signs a first request
	hostile sign alg=ecdsa_sha256
	grep -q "^sign: SUCCEEDED: #1: a [0-9]*-byte signature" "$T/out"
	grep -q "^hostile: done" "$T/out"
	# and that child was a real one, sandboxed
	uid=$(id -u "$TEST_USER")
	grep -q "^Uid:	$uid	$uid	$uid	$uid$" "$T/child.status"
	grep -q "^Seccomp:	2$" "$T/child.status"
	grep -q "^NoNewPrivs:	1$" "$T/child.status"
	[ "$(cat "$T/child.root")" = "$T/jail" ]
	# the test-only build is never installed
	make -s -C "$TOP" install DESTDIR="$T/dest" >> "$T/make.log" 2>&1
	[ -z "$(find "$T/dest" -name '*hostile*')" ]
	! grep -q RECLUSE-HOSTILE "$T/dest/usr/local/sbin/recluse" || false
}

@test "the positive control: the same attacks succeed in an ordinary process" {
	setsid sleep 300 &
	sib=$!
	track "$sib"
	wait_for holds '[ "$(ps -o pgid= -p "$sib" | tr -d " ")" = "$sib" ]'
	sentinel=$(free_port)
	"$HELPERS/echod" close "$sentinel" >> "$T/echod.log" 2>&1 &
	track $!
	wait_for grep -q "listening on" "$T/echod.log"
	addr=$(awk '$2 ~ /^r/ { print $1; exit }' "/proc/$sib/maps" | cut -d- -f1)
	mark=$(marker)
	failed=""
	while read -r attack args; do
		# shellcheck disable=SC2086 # one word per argument
		"$CONTROL" $attack $args > "$T/out" 2> "$T/control.stderr" || true
		cat "$T/out" >> "$T/hostile.log"
		grep -q "^$attack: SUCCEEDED: " "$T/out" ||
		    failed="$failed
	$attack $args"
	done <<EOA
fcntl cmd=setown pid=$sib
fcntl cmd=setown pgrp=$sib
fcntl cmd=setown-ex pgrp=$sib
fcntl cmd=setsig
fcntl cmd=async
ioctl req=fioasync
ioctl req=fiosetown pgrp=$sib
ioctl req=siocspgrp pgrp=$sib
kill pid=$sib
kill pgrp=$sib
tgkill pid=$sib
pidfd pid=$sib
ptrace how=attach pid=$sib
ptrace how=seize pid=$sib
vmread pid=$sib addr=0x$addr
connect port=$sentinel
connect-fd port=$sentinel
socket family=inet
socket family=inet6
socket family=inet type=dgram
socket family=unix
socket family=netlink type=raw
bind
listen
sendto how=sendto port=$sentinel
sendto how=sendmsg port=$sentinel
open path=/etc/passwd how=open
open path=/etc/passwd how=openat
open path=/etc/passwd how=openat2
open path=$T/jail/planted
open path=$T/created how=creat
fd2 mark=$mark
EOA
	[ -z "$failed" ] || {
		echo "the control failed:$failed" >&2
		return 1
	}
	# the signals were 0 and the trace let go: the sibling is unharmed
	grep -q "^State:	S" "/proc/$sib/status"
	# what the test checks from outside sees the attacks too
	wait_for grep -q "closed in=" "$T/echod.log"
	grep -q "forged by a child: $mark" "$T/control.stderr"
	# the scan finds a marker planted in the process's own heap, and not
	# the copy it searches with
	hex=$(hexof "$(marker)")
	"$CONTROL" memscan "plant=$hex" "mark=planted:$hex" \
	    "mark=absent:$(hexof "$(marker)")" > "$T/out"
	cat "$T/out" >> "$T/hostile.log"
	grep -q "^memscan: found planted at " "$T/out"
	grep -q "^memscan: absent absent$" "$T/out"
	grep -Eq "^memscan: info: scanned [0-9]{7,} bytes" "$T/out"
	# MPTCP, where the kernel has it
	if sysctl -n net.mptcp.enabled 2>/dev/null | grep -qx 1; then
		"$CONTROL" socket family=inet proto=mptcp > "$T/out"
		grep -q "^socket: SUCCEEDED: " "$T/out"
	fi
}

# ------------------------------------------------------------------
# A. no signals between children

@test "a child cannot arm its socket to signal a sibling or a process group (fcntl)" {
	start_hostile web
	attack_each fcntl cmd=setown pid=@sibling -- cmd=setown pgrp=@pgrp -- \
	    cmd=setown-ex pid=@sibling -- cmd=setown-ex pgrp=@pgrp -- \
	    cmd=setsig -- cmd=async
}

@test "a child cannot arm its socket to signal a sibling or a process group (ioctl)" {
	start_hostile web
	attack_each ioctl req=fioasync -- req=fiosetown pgrp=@pgrp -- \
	    req=fiosetown pid=@sibling -- req=siocspgrp pgrp=@pgrp
}

@test "each child is alone in its process group, or in a PID namespace of its own" {
	start_hostile web
	while read -r pid pgid; do
		members=$(ps -e -o pgid= | awk -v g="$pgid" '$1 == g' | wc -l)
		if [ "$members" -ne 1 ] &&
		    [ "$(readlink "/proc/$pid/ns/pid")" = "$(readlink /proc/self/ns/pid)" ]; then
			echo "child $pid shares process group $pgid with $((members - 1)) others:" >&2
			ps -e -o pid=,pgid=,sid=,args= | awk -v g="$pgid" '$2 == g' >&2
			return 1
		fi
	done < <(children)
}

@test "a child cannot signal its siblings, keyproc, the spawner or the parent" {
	start_hostile web
	attack_each kill pid=@sibling -- pgrp=@pgrp -- pid=@keyproc -- \
	    pid=@spawner -- pid=@parent
	attack_each tgkill pid=@sibling -- pid=@keyproc
	attack_each pidfd pid=@sibling -- pid=@keyproc
}

@test "a child cannot trace a sibling or read its memory" {
	start_hostile web
	attack_each ptrace how=attach pid=@sibling -- how=seize pid=@sibling
	attack_each vmread pid=@sibling
}

# ------------------------------------------------------------------
# B. no egress

@test "a child cannot connect to a port that is not its backend" {
	start_hostile web
	sentinel=$(free_port)
	"$HELPERS/echod" close "$sentinel" >> "$T/echod.log" 2>&1 &
	track $!
	wait_for grep -q "listening on" "$T/echod.log"

	# a port nobody uses, and recluse's own listener
	attack_each connect port="$sentinel" -- port="$PORT"
	attack_each connect-fd port="$sentinel"
	sleep 0.5
	! grep -q "closed in=" "$T/echod.log" || false
}

@test "a child cannot make a socket of any kind" {
	start_hostile web
	mptcp=""
	sysctl -n net.mptcp.enabled 2>/dev/null | grep -qx 1 &&
	    mptcp="-- family=inet proto=mptcp"
	# shellcheck disable=SC2086 # one word per argument
	attack_each socket family=inet -- family=inet6 -- \
	    family=inet type=dgram -- family=unix -- family=unix type=dgram -- \
	    family=netlink type=raw $mptcp
}

@test "a child cannot bind, listen, or sendto(2) an address" {
	start_hostile web
	attack_each bind
	attack_each listen
	attack_each sendto how=sendto port="$PORT"
}

# A filter cannot see sendmsg's address (it is behind a pointer): a child
# that never calls sendmsg(2) (it sends with send(2)) can be denied it.
@test "a child cannot sendmsg(2) to an address" {
	start_hostile web
	attack_each sendto how=sendmsg port="$PORT"
}

# ------------------------------------------------------------------
# the parent's channel

# Every channel has one framing: {type, len} and exactly len bytes, each
# type its exact size.  A child whose message breaks it loses its channel.
@test "a child whose message to the parent lies about its length, type or size loses its channel" {
	start_hostile web
	for how in lie type body ended-range ended-twice; do
		hostile frame how="$how"
		grep -q "^frame: calling send(parent channel, $how)" "$T/out"
		child=$CHILD
		wait_for grep -q "child $child: bad message" "$T/recluse.log"
	done
	grep "bad message" "$T/recluse.log" >&2
	grep -q "bad message: Bad message" "$T/recluse.log"
	grep -q "bad message (type 77, 4 bytes)" "$T/recluse.log"
	grep -q "bad message (type 1, 4 bytes)" "$T/recluse.log"
	[ "$(grep -c "bad message (type 9, 32 bytes)" "$T/recluse.log")" -eq 2 ]
	# the service goes on
	kill -0 "$RECLUSE_PID"
	hostile sign alg=ecdsa_sha256
	grep -q "^sign: SUCCEEDED: #1" "$T/out"
}

@test "a child that names a route or protocol its listener has not got loses its channel" {
	start_hostile web
	for rp in "1 0" "0 1" "4294967295 4294967295"; do
		set -- $rp
		hostile route route="$1" alpn="$2"
		grep -q "^route: calling send(parent channel, CHAN_CONNECT route $1 alpn $2)" "$T/out"
		grep -q "^route: blocked: channel closed" "$T/out"
		wait_for grep -q "child $CHILD: backend connect request for route $1, protocol $2: its listener has not got them" "$T/recluse.log"
		grep -q "child $CHILD: bad message (type 2, 8 bytes)" "$T/recluse.log"
	done
	# its own listener's route is connected as ever (the backend is down)
	hostile route route=0 alpn=0
	cat "$T/out" >&2
	grep -q "^route: blocked: failed: ECONNREFUSED" "$T/out"
	kill -0 "$RECLUSE_PID"
}

# ------------------------------------------------------------------
# files and stderr

@test "a child cannot open or create a file, even one in its chroot" {
	start_hostile web
	attack_each open path=/etc/passwd how=open -- path=/etc/passwd how=openat -- \
	    path=/etc/passwd how=openat2 -- path=/planted how=open -- \
	    path=/planted how=openat -- path=/planted how=openat2 -- \
	    path=/created how=creat
	[ ! -e "$T/jail/created" ]
}

@test "a child's stderr is /dev/null: what it writes there never reaches the log" {
	start_hostile web
	mark=$(marker)
	hostile fd2 mark="$mark"
	[ "$(cat "$T/child.fd2")" = /dev/null ]
	stopped
	sleep 0.5
	! grep -q "$mark" "$T/recluse.log" || false
}

@test "a child that floods its log channel is cut off, and that is logged once" {
	start_hostile web
	mark=$(marker)
	size0=$(stat -c %s "$T/recluse.log")
	hostile flood lines=100000 mark="$mark"
	grep -q "^flood: calling " "$T/out"
	# wait until the child is gone and its lines are written
	wait_for sh -c "! kill -0 $CHILD 2>/dev/null"
	sleep 1
	lines=$(grep -c "flood $mark" "$T/recluse.log" || true)
	grown=$(( $(stat -c %s "$T/recluse.log") - size0 ))
	echo "$lines of the child's 100000 lines logged, the log grew by $grown bytes" >&2
	[ "$lines" -le 1000 ]
	[ "$grown" -le 262144 ]
	[ "$(grep -c "log flood" "$T/recluse.log")" -eq 1 ]
	# the service goes on
	kill -0 "$RECLUSE_PID"
	hostile sign alg=ecdsa_sha256
	grep -q "^sign: SUCCEEDED: #1" "$T/out"
}

# ------------------------------------------------------------------
# C. keyproc signs for a real handshake only

@test "keyproc signs once for an accepted connection, and refuses a second request" {
	start_hostile web
	hostile sign alg=ecdsa_sha256 count=2
	grep -q "^sign: SUCCEEDED: #1: " "$T/out"
	# the second is refused, or the child dies asking
	! grep -q "^sign: SUCCEEDED: #2" "$T/out" || {
		cat "$T/out" >&2
		return 1
	}
	grep -q "^sign: blocked: #2: " "$T/out" || killed_by '[0-9]*'
}

@test "keyproc signs nothing once the listener's handshake timeout has passed" {
	EXTRA="timeout handshake 2"
	start_hostile web
	hostile sign alg=ecdsa_sha256 wait=3
	stopped anysignal
}

@test "a spare's keyproc channel signs nothing before the spare accepts" {
	start_hostile hostile-preaccept
	# every spare asked (and waited 300 ms) as soon as it was sandboxed
	sleep 1
	hostile preaccept
	stopped
	grep -q "^preaccept: blocked: before accept: " "$T/out"
}

@test "keyproc refuses a TLS 1.2 input for a listener that speaks only TLS 1.3" {
	start_hostile web13:ec256:tlsv1.3
	hostile sign alg=ecdsa_sha256 input=tls12
	stopped
	# while a TLS 1.3 input is signed
	hostile sign alg=ecdsa_sha256 input=tls13
	grep -q "^sign: SUCCEEDED: #1" "$T/out"
}

@test "keyproc refuses RSA PKCS#1 v1.5 for a TLS 1.3 input" {
	start_hostile rsa:rsa2048
	hostile sign alg=rsa_pkcs1_sha256 input=tls13
	stopped
	hostile sign alg=rsa_pss_sha256 input=tls13
	grep -q "^sign: SUCCEEDED: #1" "$T/out"
}

@test "a child asking for a key its listener does not have, another listener's, is refused, and only its channel closes" {
	start_hostile one multi:ec256::rsa2048+ec384
	# listener multi has keys 0, 1 (RSA), 2 (P-384); one has only key 0
	PORT=${PORTS[one]}
	hostile sign alg=rsa_pss_sha256 key=1
	stopped
	grep -q "^sign: blocked: #1: " "$T/out" || killed_by '[0-9]*'
	hostile sign alg=ecdsa_sha384 key=2
	stopped
	# keyproc and the listener go on: this listener's own key signs
	hostile sign alg=ecdsa_sha256 key=0
	grep -q "^sign: SUCCEEDED: #1" "$T/out"
	# the positive control: a child of multi may use multi's keys
	PORT=${PORTS[multi]}
	hostile sign alg=rsa_pss_sha256 key=1
	grep -q "^sign: SUCCEEDED: #1" "$T/out"
	kill -0 "$RECLUSE_PID"
	[ "$(grep -c "keyproc: fatal" "$T/recluse.log")" -eq 0 ]
}

# ------------------------------------------------------------------
# F, G. fresh memory: no other listener's configuration, no other
# connection's data

# scan_for_markers: memscan in a child of $PORT for its own certificate
# (must be there), the other listener's, and the two SNI markers.
scan_for_markers() {
	hostile memscan ranges=@ranges "mark=own:$(point_of web)" \
	    "mark=other-cert:$(point_of other)" "mark=sni-web:$(hexof "$sni_web")" \
	    "mark=sni-other:$(hexof "$sni_other")"
	grep -Eq "^memscan: info: scanned [0-9]{7,} bytes" "$T/out"
	# the positive control: its own certificate is there
	grep -q "^memscan: found own at " "$T/out"
}

@test "a child holds no other listener's certificate and no earlier connection's SNI, even after a reload" {
	start_hostile web other
	sni_web="$(marker).web.test"
	sni_other="$(marker).other.test"
	for l in web:"$sni_web" other:"$sni_other"; do
		echo | openssl s_client -connect "127.0.0.1:${PORTS[${l%%:*}]}" \
		    -servername "${l#*:}" -CAfile "$T/ca.crt" > /dev/null 2>&1
	done
	wait_for grep -q "sni=$sni_web " "$T/recluse.log"
	wait_for grep -q "sni=$sni_other " "$T/recluse.log"

	scan_for_markers
	failed=""
	for m in other-cert sni-web sni-other; do
		grep -q "^memscan: absent $m$" "$T/out" || failed="$failed $m"
	done

	# a new generation: its children must not inherit the parent's
	# buffers either
	before=$(children)
	kill -HUP "$RECLUSE_PID"
	wait_for grep -q "ready: configuration 2," "$T/recluse.log"
	for pid in $before; do
		wait_for sh -c "! kill -0 $pid 2>/dev/null"
	done
	wait_for children_ready
	scan_for_markers
	for m in other-cert sni-web sni-other; do
		grep -q "^memscan: absent $m$" "$T/out" ||
		    failed="$failed $m(after the reload)"
	done
	[ -z "$failed" ] || {
		echo "found in a child's memory:$failed" >&2
		return 1
	}
}
