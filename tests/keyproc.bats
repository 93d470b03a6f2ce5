#!/usr/bin/env bats
# keyproc: the one process that holds the private keys, its wire format and
# policy (through tests/helpers/kpdriver, which plays the parent), and the
# key path through the real recluse.

load helpers

setup() {
	common_setup
}

teardown() {
	common_teardown
}

# kpdriver ARGS...: run the driver against ./recluse as keyproc, with the
# test chroot and keyproc user.
kpdriver() {
	"$HELPERS/kpdriver" -x "$RECLUSE" -r "$T/empty" -u "$TEST_KEYUSER" "$@"
}

# policy_run: the driver's scripted requests, output in $T/kpdriver.log;
# listener 0 holds RSA key 0, listener 1 EC P-256 key 0 and RSA key 1,
# listener 2 (TLS 1.3 only) RSA key 0, listener 3 (TLS 1.2 only) EC P-256
# key 0, listener 4 EC P-384 key 0.  A minute's handshake timeout: the
# witness channels live through the whole script.
policy_run() {
	make_cert rsa rsa2048
	make_cert ec ec256
	make_cert ec384 ec384
	kpdriver -k "0,0,$T/rsa.key,$T/rsa.crt" -k "1,0,$T/ec.key,$T/ec.crt" \
	    -k "1,1,$T/rsa.key,$T/rsa.crt" -k "2,0,$T/rsa.key,$T/rsa.crt" \
	    -k "3,0,$T/ec.key,$T/ec.crt" -k "4,0,$T/ec384.key,$T/ec384.crt" \
	    -l 0,1.2+1.3,60000 -l 1,1.2+1.3,60000 -l 2,1.3,60000 \
	    -l 3,1.2,60000 -l 4,1.2+1.3,60000 policy > "$T/kpdriver.log" 2>&1
}

# child_logged TEXT: keyproc logged "child PID: TEXT" for some child.
child_logged() {
	sed -n 's/^keyproc: child [0-9]*: //p' "$T/kpdriver.log" |
	    grep -qxF -- "$1" || {
		echo "keyproc did not log: child PID: $1" >&2
		return 1
	}
}

# mode_run MODE [DRIVER ARGS...]: the driver's MODE with an RSA key for
# listener 0, output in $T/kpdriver.log.
mode_run() {
	local mode=$1
	shift
	make_cert rsa rsa2048
	kpdriver -v -k "0,0,$T/rsa.key,$T/rsa.crt" "$@" "$mode" \
	    > "$T/kpdriver.log" 2>&1
}

# has_line LINE: $T/kpdriver.log has exactly this line.
has_line() {
	grep -qxF -- "$1" "$T/kpdriver.log" || {
		echo "missing: $1" >&2
		return 1
	}
}

# load_key KEYFILE CERTFILE: ask keyproc to load one key; output in $output.
load_key() {
	run kpdriver -k "0,0,$1,$2" load
	echo "$output" >> "$T/kpdriver.log"
}

# self_signed NAME ALG [OPTS...]: $T/NAME.key (genpkey ALG OPTS) and a
# self-signed $T/NAME.crt for it.
self_signed() {
	local name=$1 alg=$2
	shift 2
	openssl genpkey -algorithm "$alg" "$@" -out "$T/$name.key" 2>/dev/null
	openssl req -x509 -key "$T/$name.key" -subj "/CN=$name" -days 30 \
	    -out "$T/$name.crt" 2>/dev/null
}

# ------------------------------------------------------------------
# keyproc alone, through the driver

@test "keyproc signs TLS 1.3 and TLS 1.2 server inputs with RSA and EC keys, and the signatures verify" {
	policy_run
	for c in rsa-tls13-pss-sha256 rsa-tls13-pss-sha256-hash48 \
	    rsa-tls13-pss-sha384 rsa-tls13-pss-sha512 \
	    rsa-tls12-pkcs1-sha256-x25519 rsa-tls12-pkcs1-sha384-p256 \
	    rsa-tls12-pkcs1-sha512-p521 rsa-tls12-pss-sha256-p384 \
	    rsa-tls12-pss-sha256-x448 ec-tls13-sha256 ec-tls13-sha256-hash48 \
	    ec384-tls13-sha384 ec384-tls13-sha384-hash32 \
	    ec384-tls12-sha256-p256 ec-tls12-sha256-x25519 \
	    ec-tls12-sha512-p256 ec256-tls12-sha384 listener1-key1-rsa; do
		has_line "case $c: signed (expected signed)"
	done
	has_line "summary: 0 unexpected"
}

@test "short, long, lying-length, misframed and fd-carrying requests close that channel only" {
	policy_run
	for c in short-request empty-request long-request length-says-more \
	    length-says-less length-zero fd-attached frame-says-more \
	    wrong-type; do
		has_line "case $c: closed (expected closed)"
		has_line "case $c-neighbour: signed (expected signed)"
	done
	for line in "short request (2 bytes)" "request too long" \
	    "request of 146 bytes says 140" "request of 146 bytes says 120" \
	    "input length 0" \
	    "malformed message (framing, or a descriptor attached)" \
	    "unexpected message 99"; do
		child_logged "$line"
	done
}

@test "another listener's key, unknown and mismatched algorithms close that channel only" {
	policy_run
	for c in other-listener-key no-such-key unknown-alg alg-zero \
	    ecdsa-alg-on-rsa-key pss-alg-on-ec-key; do
		has_line "case $c: closed (expected closed)"
		has_line "case $c-neighbour: signed (expected signed)"
	done
	child_logged "key 1 is not a key of listener 0"
	child_logged "unknown algorithm 99"
	child_logged "ECDSA algorithm for an RSA key"
	child_logged "RSA algorithm for an EC key"
	# the key the first request was refused is good for listener 1
	has_line "case listener1-key1-rsa: signed (expected signed)"
}

@test "bytes that are not a TLS server signature input close that channel only" {
	policy_run
	for c in raw-digest random-bytes tls13-client-context tls13-bad-context \
	    tls13-no-zero-byte tls13-hash64 tls13-pkcs1 tls12-not-named-curve \
	    tls12-unknown-group tls12-point-length tls12-trailing-byte \
	    tls12-compressed-point; do
		has_line "case $c: closed (expected closed)"
		has_line "case $c-neighbour: signed (expected signed)"
	done
	child_logged "TLS 1.3 client CertificateVerify context"
	child_logged "RSA PKCS#1 v1.5 for a TLS 1.3 input"
	child_logged "not a TLS server signature input"
}

@test "keyproc signs only the TLS versions the listener allows, and TLS 1.3 ECDSA only with the curve's hash" {
	policy_run
	# a TLS 1.2 ServerKeyExchange for a TLS 1.3-only listener, and back
	for c in tls13-only-tls12 tls13-only-tls12-pkcs1 tls12-only-tls13 \
	    ec256-tls13-sha384 ec256-tls13-sha512 ec384-tls13-sha256; do
		has_line "case $c: closed (expected closed)"
		has_line "case $c-neighbour: signed (expected signed)"
	done
	# positive controls: what each listener and key does allow
	for c in tls13-only-tls13 tls12-only-tls12 ec384-tls13-sha384 \
	    ec256-tls12-sha384; do
		has_line "case $c: signed (expected signed)"
	done
	child_logged "TLS 1.2 input for a listener without TLS 1.2"
	child_logged "TLS 1.3 input for a listener without TLS 1.3"
	child_logged "TLS 1.3 ECDSA on P-256 with a hash other than SHA-256"
	child_logged "TLS 1.3 ECDSA on P-384 with a hash other than SHA-384"
	has_line "summary: 0 unexpected"
}

@test "a channel gets one signature, a second closes it; witness channels sign across every violation" {
	policy_run
	has_line "case budget-1: signed (expected signed)"
	has_line "case budget-exceeded: closed (expected closed)"
	has_line "case budget-exceeded-neighbour: signed (expected signed)"
	child_logged "signature budget of 1 spent"
	has_line "case witness-first: signed (expected signed)"
	[ "$(grep -c '^case witness-between: signed (expected signed)$' "$T/kpdriver.log")" -eq 2 ]
	has_line "case witness-last: signed (expected signed)"
	# keyproc served to the end and left cleanly when its parent closed
	has_line "keyproc exit 0"
}

@test "a channel is not read before KP_CTL_ARM: a request waits unanswered, and is signed once armed" {
	mode_run arm
	has_line "case before-arm: no answer (expected no answer)"
	has_line "case before-arm-neighbour: signed (expected signed)"
	has_line "case after-arm: signed (expected signed)"
	# a pid handed over again: the process that had it is gone
	has_line "case pid-reused-new: signed (expected signed)"
	has_line "case pid-reused-old: closed (expected closed)"
	# a spare that exits without its arm: keyproc lets go of its channel
	child_logged "channel closed before its arm"
	has_line "summary: 0 unexpected"
}

@test "a channel is closed the handshake timeout after its arm, not before" {
	mode_run expire -l 0,1.2+1.3,400
	has_line "case waited-before-arm: signed (expected signed)"
	has_line "case after-handshake-timeout: closed (expected closed)"
	has_line "case after-handshake-timeout-neighbour: signed (expected signed)"
	child_logged "handshake time (400 ms) over, channel closed"
	has_line "summary: 0 unexpected"
}

@test "EOF on its control channel: keyproc closes unarmed channels, serves armed ones, and is gone one handshake timeout later" {
	mode_run retire -l 0,1.2+1.3,1000
	has_line "case unarmed-at-eof: closed (expected closed)"
	has_line "case armed-after-eof: signed (expected signed)"
	ms=$(sed -n 's/^keyproc gone \([0-9]*\) ms after EOF$/\1/p' "$T/kpdriver.log")
	[ -n "$ms" ]
	echo "# keyproc gone $ms ms after EOF (handshake timeout 1000 ms)" >&3
	[ "$ms" -ge 900 ] && [ "$ms" -le 1500 ]
	child_logged "handshake time (1000 ms) over, channel closed"
	has_line "keyproc exit 0"
}

@test "keyproc loads RSA 2048 to 4096 and P-256 and P-384 keys" {
	for type in rsa2048 rsa3072 rsa4096 ec256 ec384; do
		make_cert "$type" "$type"
		load_key "$T/$type.key" "$T/$type.crt"
		[ "$status" -eq 0 ]
		[ "${lines[0]}" = "ready" ]
	done
}

@test "keyproc refuses encrypted keys, naming the file" {
	make_cert web rsa2048
	openssl pkey -in "$T/web.key" -aes256 -passout pass:secret \
	    -out "$T/pkcs8.key"
	openssl rsa -in "$T/web.key" -aes256 -passout pass:secret -traditional \
	    -out "$T/legacy.key" 2>/dev/null
	for k in pkcs8 legacy; do
		load_key "$T/$k.key" "$T/web.crt"
		[ "$status" -eq 1 ]
		[ "${lines[0]}" = "error: $T/$k.key: encrypted private keys are not supported (listener 0, key 0)" ]
	done
}

@test "keyproc refuses ed25519, RSA-1024 and P-521 keys, naming the file" {
	self_signed ed ed25519
	self_signed small RSA -pkeyopt rsa_keygen_bits:1024
	self_signed p521 EC -pkeyopt ec_paramgen_curve:P-521
	load_key "$T/ed.key" "$T/ed.crt"
	[ "$status" -eq 1 ]
	[ "${lines[0]}" = "error: $T/ed.key: unsupported key type ED25519 (only RSA and EC) (listener 0, key 0)" ]
	load_key "$T/small.key" "$T/small.crt"
	[ "$status" -eq 1 ]
	[ "${lines[0]}" = "error: $T/small.key: RSA key of 1024 bits (only 2048 to 4096) (listener 0, key 0)" ]
	load_key "$T/p521.key" "$T/p521.crt"
	[ "$status" -eq 1 ]
	[ "${lines[0]}" = "error: $T/p521.key: EC key on curve secp521r1 (only P-256 and P-384) (listener 0, key 0)" ]
}

@test "keyproc refuses a key that does not match its certificate, and a file without a key" {
	make_cert a ec256
	make_cert b ec256
	load_key "$T/a.key" "$T/b.crt"
	[ "$status" -eq 1 ]
	[ "${lines[0]}" = "error: $T/a.key: key does not match the certificate (listener 0, key 0)" ]
	load_key "$T/a.crt" "$T/a.crt"
	[ "$status" -eq 1 ]
	[ "${lines[0]}" = "error: $T/a.crt: no PEM private key found (listener 0, key 0)" ]
}

@test "keyproc runs as keyproc-user in the empty chroot, with seccomp, NoNewPrivs, not dumpable, no processes, /dev/null as stderr" {
	make_cert web ec256
	mkfifo "$T/in"
	kpdriver -k "0,0,$T/web.key,$T/web.crt" pause < "$T/in" \
	    > "$T/kpdriver.log" 2>&1 &
	track $!
	exec 5> "$T/in"
	wait_for grep -q "^signed 1$" "$T/kpdriver.log"
	kp=$(sed -n 's/^keyproc pid //p' "$T/kpdriver.log")
	track "$kp"
	[ "$(tr '\0' ' ' < /proc/$kp/cmdline)" = "recluse-keyproc " ]
	uid=$(id -u "$TEST_KEYUSER")
	gid=$(id -g "$TEST_KEYUSER")
	grep -Eq "^Uid:\s+$uid\s+$uid\s+$uid\s+$uid$" /proc/$kp/status
	grep -Eq "^Gid:\s+$gid\s+$gid\s+$gid\s+$gid$" /proc/$kp/status
	grep -Eq "^Groups:\s+$gid\s*$" /proc/$kp/status
	[ "$(readlink /proc/$kp/root)" = "$T/empty" ]
	grep -Eq "^Seccomp:\s+2$" /proc/$kp/status
	grep -Eq "^NoNewPrivs:\s+1$" /proc/$kp/status
	# not dumpable: the files in its /proc directory stay root's
	[ "$(stat -c %u /proc/$kp)" -eq "$uid" ]
	[ "$(stat -c %u /proc/$kp/mem)" -eq 0 ]
	grep -Eq "^Max processes\s+0\s+0" /proc/$kp/limits
	# the key file's fd is closed once the key is loaded
	! ls -l /proc/$kp/fd | grep -q "web.key" || false
	# its log lines go over its channel; the parent's stderr is not its
	[ "$(readlink /proc/$kp/fd/2)" = /dev/null ]
	exec 5>&-
	wait_for grep -q "^keyproc exit 0$" "$T/kpdriver.log"
}

# ------------------------------------------------------------------
# the key path through recluse

# signed_with ALG [SHAPE]: keyproc logged a signature with ALG (of SHAPE,
# e.g. "TLS 1.2" or "TLS 1.3, 146 bytes") since the last call.
signed_with() {
	local n key="$1${2:+ $2}"
	n=$(grep -cF "$1 signature with $T/web.key (${2:-TLS 1}" "$T/recluse.log" ||
	    true)
	[ "$n" -gt "${SIGNED_BEFORE[$key]:-0}" ] || {
		echo "no new $key signature in the log" >&2
		return 1
	}
	SIGNED_BEFORE[$key]=$n
}

# no_violations: keyproc closed no channel for breaking the policy (nor
# for its handshake time: every handshake was done in time, with one
# signature).
no_violations() {
	! grep -E "${STAMP}keyproc: child [0-9]*: " "$T/recluse.log" |
	    grep -v -e " signature with " -e ": channel for listener " \
	    -e ": channel closed$" -e ": armed for [0-9]* ms$" || false
}

@test "TLS 1.3 and 1.2 through recluse with an RSA-2048 certificate, PKCS#1 and PSS" {
	declare -A SIGNED_BEFORE
	e2e_setup rsa2048
	start_recluse "$T/recluse.conf" -v
	echo_through one -tls1_3 -ciphersuites TLS_AES_256_GCM_SHA384
	wait_for signed_with rsa_pss_rsae_sha256 "TLS 1.3, 146 bytes"
	echo_through two -tls1_3 -sigalgs rsa_pss_rsae_sha256 \
	    -ciphersuites TLS_AES_128_GCM_SHA256
	wait_for signed_with rsa_pss_rsae_sha256 "TLS 1.3, 130 bytes"
	echo_through three -tls1_3 -sigalgs rsa_pss_rsae_sha384
	wait_for signed_with rsa_pss_rsae_sha384 "TLS 1.3"
	echo_through four -tls1_2 -sigalgs RSA+SHA256
	wait_for signed_with rsa_pkcs1_sha256 "TLS 1.2"
	echo_through five -tls1_2 -sigalgs rsa_pss_rsae_sha256
	wait_for signed_with rsa_pss_rsae_sha256 "TLS 1.2"
	echo_through six -tls1_2
	no_violations
	# RSA PKCS#1 is refused by libssl itself in TLS 1.3
	! echo_through seven -tls1_3 -sigalgs RSA+SHA256 || false
}

@test "TLS 1.3 and 1.2 through recluse with an ECDSA P-256 certificate, whatever the suite's hash, one signature per handshake" {
	declare -A SIGNED_BEFORE
	e2e_setup ec256
	start_recluse "$T/recluse.conf" -v
	# a 48-byte transcript hash signed with ecdsa_secp256r1_sha256
	echo_through one -tls1_3 -ciphersuites TLS_AES_256_GCM_SHA384
	wait_for signed_with ecdsa_sha256 "TLS 1.3, 146 bytes"
	echo_through two -tls1_3 -ciphersuites TLS_AES_128_GCM_SHA256
	wait_for signed_with ecdsa_sha256 "TLS 1.3, 130 bytes"
	echo_through three -tls1_3 -ciphersuites TLS_CHACHA20_POLY1305_SHA256
	wait_for signed_with ecdsa_sha256 "TLS 1.3, 130 bytes"
	# x25519: 32 + 32 + 4 + 32 bytes; P-256: 32 + 32 + 4 + 65 (in TLS 1.2
	# the client must list the certificate's curve too)
	echo_through four -tls1_2 -groups X25519:P-256
	wait_for signed_with ecdsa_sha256 "TLS 1.2, 100 bytes"
	echo_through five -tls1_2 -sigalgs ECDSA+SHA384 -groups P-256
	wait_for signed_with ecdsa_sha384 "TLS 1.2, 133 bytes"
	# a HelloRetryRequest (the client's first key share is for a group
	# the server lacks) adds no signature: two ServerHellos, one
	# signature, as for every handshake
	timeout 10 openssl s_client -connect "127.0.0.1:$PORT" -CAfile "$T/ca.crt" \
	    -verify_return_error -tls1_3 -groups ffdhe2048:X25519 -trace \
	    < /dev/null > "$T/hrr.out" 2>> "$T/s_client.log"
	[ "$(grep -c 'ServerHello, Length=' "$T/hrr.out")" -eq 2 ]
	wait_for signed_with ecdsa_sha256 "TLS 1.3"
	[ "$(grep -c ' signature with ' "$T/recluse.log")" -eq 6 ]
	no_violations
}

@test "a live child's memory holds none of the key's secret numbers; keyproc's does" {
	for type in rsa2048 ec256; do
		e2e_setup "$type"
		start_recluse "$T/recluse.conf" -v
		rm -f "$T/a.in" "$T/a.out"
		mkfifo "$T/a.in"
		openssl s_client -connect "127.0.0.1:$PORT" -CAfile "$T/ca.crt" \
		    -quiet < "$T/a.in" > "$T/a.out" 2>> "$T/s_client.log" &
		client=$!
		track "$client"
		exec 5> "$T/a.in"
		echo ping >&5
		wait_for grep -q ping "$T/a.out"
		child=$(sed -En "s/${STAMP}keyproc: child ([0-9]*): .* signature with.*/\1/p" \
		    "$T/recluse.log" | tail -n 1)
		kp=$(keyproc_of "$RECLUSE_PID")
		[ -n "$child" ] && [ -n "$kp" ]
		# the child holds the connection, after its handshake
		[ -d "/proc/$child" ]
		python3 "$HELPERS/memscan.py" "$T/web.key" "$child" "$kp" \
		    > "$T/memscan.$type.log"
		cat "$T/memscan.$type.log" >> "$T/recluse.log"
		# the child: every number absent in both byte orders
		[ "$(grep -c "^$child .* absent$" "$T/memscan.$type.log")" -ge 2 ]
		! grep -q "^$child .* found$" "$T/memscan.$type.log" || false
		# keyproc, the positive control: each number found
		for name in $(awk -v p="$kp" '$1 == p { print $2 }' "$T/memscan.$type.log" | sort -u); do
			grep -q "^$kp $name .* found$" "$T/memscan.$type.log"
		done
		exec 5>&-
		kill "$client"
		kill "$RECLUSE_PID"
		wait_for bash -c "! kill -0 $RECLUSE_PID 2>/dev/null"
		: > "$T/recluse.log"
	done
}

@test "only keyproc reads a private-key file; no child holds it open" {
	e2e_setup rsa2048
	strace -f -qq -y -e trace=openat,open,read,pread64,readv,preadv,preadv2,execve \
	    -o "$T/strace.txt" "$RECLUSE" -f "$T/recluse.conf" -v \
	    >> "$T/recluse.log" 2>&1 &
	STRACE_PID=$!
	track "$STRACE_PID"
	wait_for grep -q "ready" "$T/recluse.log"
	main=$(children_of "$STRACE_PID")
	track "$main"
	echo_through one -tls1_3
	echo_through two -tls1_2
	# no worker child inherited the key file
	for pid in $(children_of "$main"); do
		! ls -l "/proc/$pid/fd" 2>/dev/null | grep -qF "$T/web.key" || false
	done
	kill "$main"
	wait_for bash -c "! kill -0 $STRACE_PID 2>/dev/null"
	kp=$(grep -F '["recluse-keyproc"]' "$T/strace.txt" | awk '{print $1}' | head -n 1)
	[ -n "$kp" ]
	# the parent opens the file, keyproc reads it, nobody else touches it
	openers=$(grep -F "$T/web.key" "$T/strace.txt" | grep -E '^[0-9]+ +open' |
	    awk '{print $1}' | sort -u)
	[ "$openers" = "$main" ]
	readers=$(grep -F "<$T/web.key>" "$T/strace.txt" |
	    grep -E '^[0-9]+ +(read|pread64|readv|preadv2?)\(' | awk '{print $1}' | sort -u)
	[ "$readers" = "$kp" ]
}

@test "keyproc started by recluse has /dev/null as stderr; its log lines reach the parent's" {
	e2e_setup ec256
	start_recluse "$T/recluse.conf" -v
	kp=$(keyproc_of "$RECLUSE_PID")
	[ -n "$kp" ]
	[ "$(readlink "/proc/$kp/fd/2")" = /dev/null ]
	[ "$(readlink "/proc/$kp/fd/1")" = /dev/null ]
	# positive control: the parent's own stderr is the log file
	[ "$(readlink "/proc/$RECLUSE_PID/fd/2")" = "$T/recluse.log" ]
	grep -Eq "${STAMP}keyproc: 1 keys loaded, serving$" "$T/recluse.log"
}

@test "keyproc killed with SIGKILL: the next connections succeed within a second" {
	e2e_setup ec256
	start_recluse "$T/recluse.conf"
	echo_through before -tls1_3
	kp=$(keyproc_of "$RECLUSE_PID")
	[ -n "$kp" ]
	kill -9 "$kp"
	start=$(date +%s%N)
	until echo_through again -tls1_3 2>/dev/null; do
		[ $(( $(date +%s%N) - start )) -lt 5000000000 ]
	done
	elapsed=$(( ($(date +%s%N) - start) / 1000000 ))
	echo "first success ${elapsed} ms after SIGKILL" >> "$T/recluse.log"
	echo "# first success ${elapsed} ms after SIGKILL" >&3
	[ "$elapsed" -le 1000 ]
	for i in 1 2 3 4 5; do
		echo_through "after$i" -tls1_2
	done
	kp2=$(keyproc_of "$RECLUSE_PID")
	[ -n "$kp2" ] && [ "$kp2" != "$kp" ]
	kill -0 "$RECLUSE_PID"
}

@test "listeners for TLS 1.3 only and TLS 1.2 only, P-384 and RSA: each handshake signs once, with what the listener allows" {
	declare -A SIGNED_BEFORE
	make_cert web ec384
	make_cert rsa rsa2048
	BPORT=$(free_port)
	start_echod echo "$BPORT"
	PORT=$(free_port)
	PORT12=$(free_port)
	{
		globals_conf
		listener_conf web "127.0.0.1:$PORT" "127.0.0.1:$BPORT" |
		    sed 's/^}$/	protocols "tlsv1.3"\n}/'
		listener_conf rsa "127.0.0.1:$PORT12" "127.0.0.1:$BPORT" |
		    sed -e 's/web\.crt/rsa.crt/' -e 's/web\.key/rsa.key/' \
		    -e 's/^}$/	protocols "tlsv1.2"\n}/'
	} > "$T/recluse.conf"
	start_recluse "$T/recluse.conf" -v
	# P-384 in TLS 1.3: ecdsa_secp384r1_sha384, whatever the suite
	echo_through one -tls1_3 -ciphersuites TLS_AES_128_GCM_SHA256
	wait_for signed_with ecdsa_sha384 "TLS 1.3, 130 bytes"
	echo_through two -tls1_3 -ciphersuites TLS_AES_256_GCM_SHA384
	wait_for signed_with ecdsa_sha384 "TLS 1.3, 146 bytes"
	PORT=$PORT12 echo_through three -tls1_2
	grep -qF "signature with $T/rsa.key (TLS 1.2" "$T/recluse.log"
	no_violations
	# each child signed once: as many signatures as handshakes
	[ "$(grep -c ' signature with ' "$T/recluse.log")" -eq 3 ]
}

# reload_setup: recluse with a 2 s handshake timeout, -v, its keyproc in KP.
reload_setup() {
	make_cert web ec256
	BPORT=$(free_port)
	start_echod echo "$BPORT"
	PORT=$(free_port)
	{
		globals_conf
		echo "timeout handshake 2"
		listener_conf web "127.0.0.1:$PORT" "127.0.0.1:$BPORT"
	} > "$T/recluse.conf"
	start_recluse "$T/recluse.conf" -v
	KP=$(keyproc_of "$RECLUSE_PID")
	[ -n "$KP" ]
}

# accepted_by: the pid of the process that holds the accepted end of the
# one connection to PORT.
accepted_by() {
	ss -Htnp state established "( sport = :$PORT )" |
	    sed -n 's/.*pid=\([0-9]*\),.*/\1/p' | grep .
}

# What kept a replaced keyproc alive: any old child that still held its
# channel.  An honest child lets go when its handshake ends or times out;
# a wedged (or taken-over) one never does.  SIGSTOP makes one.
@test "a replaced keyproc is gone within the handshake timeout after the reload, even while a wedged old child holds its channel" {
	reload_setup
	# a client that connects and sends nothing: a spare accepts it
	exec 6<>"/dev/tcp/127.0.0.1/$PORT"
	wait_for accepted_by
	child=$(accepted_by)
	track "$child"
	kill -STOP "$child"
	# the stopped child holds its end of the old keyproc's channel
	ls -l "/proc/$child/fd" | grep -q socket
	kill -HUP "$RECLUSE_PID"
	wait_for grep -q "ready: configuration 2," "$T/recluse.log"
	gone_within "$KP" 4000
	echo "# replaced keyproc gone $ELAPSED ms after the reload (handshake timeout 2 s)" >&3
	# keyproc let go of the wedged child's channel itself, before the
	# parent's own handshake deadline (timeout + 1 s) ended that child
	grep -n "" "$T/recluse.log" | awk -v c="$child" '
	    index($0, "child " c ": handshake time") { kp = NR }
	    index($0, "child " c ": no handshake after") { parent = NR }
	    END { exit !(kp > 0 && (parent == 0 || kp < parent)) }'
	# positive control: the new keyproc serves
	kp2=$(keyproc_of "$RECLUSE_PID")
	[ -n "$kp2" ] && [ "$kp2" != "$KP" ]
	echo_through after -tls1_3
	kill -KILL "$child" 2>/dev/null || true
	exec 6>&-
}

@test "a replaced keyproc that does not exit is killed by the parent one handshake timeout after the reload" {
	reload_setup
	# stuck: it cannot exit by itself
	kill -STOP "$KP"
	kill -HUP "$RECLUSE_PID"
	wait_for grep -q "ready: configuration 2," "$T/recluse.log"
	# not before its handshakes could end (2 s), gone by 2 s + 1 s
	sleep 1.5
	! gone "$KP" || false
	gone_within "$KP" 2500
	grep -q "replaced keyproc $KP still runs after the handshake timeout: killed" "$T/recluse.log"
	echo_through after -tls1_3
}

# A reload holds the parent up (here: reading the file takes 2 s, by
# strace's delay injection); a child that accepts meanwhile cannot be armed
# until it is over, and then only in the old keyproc, which holds its
# channel: the parent reads what children sent before it closes the old
# control channel.
@test "a connection accepted while a reload holds the parent up is armed in the old keyproc and completes" {
	e2e_setup ec256
	start_recluse "$T/recluse.conf" -v
	strace -qq -p "$RECLUSE_PID" -P "$T/recluse.conf" -e trace=openat \
	    -e inject=openat:delay_exit=2000000 -o "$T/strace.txt" &
	STRACE_PID=$!
	track "$STRACE_PID"
	wait_for grep -Eq "^TracerPid:\s+$STRACE_PID$" "/proc/$RECLUSE_PID/status"
	kill -HUP "$RECLUSE_PID"
	wait_for grep -q "reloading" "$T/recluse.log"
	echo_through during -tls1_3
	# it was accepted before configuration 2 was ready, and signed
	grep -q "ready: configuration 2," "$T/recluse.log"
	signed=$(grep -n "ecdsa_sha256 signature with" "$T/recluse.log" | cut -d: -f1 | tail -n 1)
	ready=$(grep -n "ready: configuration 2," "$T/recluse.log" | cut -d: -f1)
	[ "$signed" -gt "$ready" ]
	grep -q "openat(.*recluse.conf" "$T/strace.txt"
	kill "$STRACE_PID"
	echo_through after -tls1_3
}

# ------------------------------------------------------------------
# several signers (keyproc-signers, issue 15)

# threads_sandboxed PID N: keyproc PID has N threads, and every one of
# them runs as the keyproc user, in the empty chroot, under the seccomp
# filter, with NoNewPrivs and no capability.
threads_sandboxed() {
	local kp=$1 n=$2 uid gid t
	uid=$(id -u "$TEST_KEYUSER")
	gid=$(id -g "$TEST_KEYUSER")
	[ "$(ls "/proc/$kp/task" | wc -l)" -eq "$n" ] || {
		echo "keyproc has $(ls "/proc/$kp/task" | wc -l) threads," \
		    "not $n" >&2
		return 1
	}
	for t in /proc/$kp/task/*; do
		grep -Eq "^Uid:\s+$uid\s+$uid\s+$uid\s+$uid$" "$t/status"
		grep -Eq "^Gid:\s+$gid\s+$gid\s+$gid\s+$gid$" "$t/status"
		grep -Eq "^Groups:\s+$gid\s*$" "$t/status"
		grep -Eq "^Seccomp:\s+2$" "$t/status"
		grep -Eq "^NoNewPrivs:\s+1$" "$t/status"
		grep -Eq "^CapPrm:\s+0+$" "$t/status"
		grep -Eq "^CapEff:\s+0+$" "$t/status"
		[ "$(readlink "$t/root")" = "$T/empty" ]
	done
}

@test "keyproc with 2 signers: every thread runs as keyproc-user in the empty chroot, with seccomp, NoNewPrivs, no capabilities" {
	make_cert web ec256
	mkfifo "$T/in"
	kpdriver -s 2 -k "0,0,$T/web.key,$T/web.crt" pause < "$T/in" \
	    > "$T/kpdriver.log" 2>&1 &
	track $!
	exec 5> "$T/in"
	wait_for grep -q "^signed 1$" "$T/kpdriver.log"
	kp=$(sed -n 's/^keyproc pid //p' "$T/kpdriver.log")
	track "$kp"
	# the loop and two signers
	threads_sandboxed "$kp" 3
	grep -Eq "^Max processes\s+0\s+0" /proc/$kp/limits
	[ "$(stat -c %u /proc/$kp/mem)" -eq 0 ]
	exec 5>&-
	wait_for grep -q "^keyproc exit 0$" "$T/kpdriver.log"
}

@test "keyproc with 2 signers signs 3000 requests from 300 channels at a time, each answer on its own channel and verified" {
	make_cert rsa rsa2048
	make_cert ec ec256
	make_cert ec384 ec384
	kpdriver -s 2 -k "0,0,$T/rsa.key,$T/rsa.crt" \
	    -k "1,0,$T/ec.key,$T/ec.crt" -k "1,1,$T/rsa.key,$T/rsa.crt" \
	    -k "2,0,$T/ec384.key,$T/ec384.crt" many 3000 300 \
	    > "$T/kpdriver.log" 2>&1
	has_line "signed 3000 of 3000, 300 at a time"
	has_line "keyproc exit 0"
	has_line "summary: 0 unexpected"
}

@test "keyproc with 2 signers holds the whole policy: every case of the script as with one" {
	make_cert rsa rsa2048
	make_cert ec ec256
	make_cert ec384 ec384
	kpdriver -s 2 -k "0,0,$T/rsa.key,$T/rsa.crt" \
	    -k "1,0,$T/ec.key,$T/ec.crt" -k "1,1,$T/rsa.key,$T/rsa.crt" \
	    -k "2,0,$T/rsa.key,$T/rsa.crt" -k "3,0,$T/ec.key,$T/ec.crt" \
	    -k "4,0,$T/ec384.key,$T/ec384.crt" \
	    -l 0,1.2+1.3,60000 -l 1,1.2+1.3,60000 -l 2,1.3,60000 \
	    -l 3,1.2,60000 -l 4,1.2+1.3,60000 policy > "$T/kpdriver.log" 2>&1
	! grep -q " FAIL$" "$T/kpdriver.log" || false
	has_line "case rsa-tls13-pss-sha256: signed (expected signed)"
	has_line "summary: 0 unexpected"
	has_line "keyproc exit 0"
}

@test "keyproc with 2 signers: arm, expiry and retirement as with one" {
	mode_run arm -s 2
	has_line "summary: 0 unexpected"
	mode_run expire -s 2 -l 0,1.2+1.3,300
	has_line "summary: 0 unexpected"
	mode_run retire -s 2 -l 0,1.2+1.3,1000
	has_line "summary: 0 unexpected"
}

# log_count_is N PATTERN: the log has N lines that match PATTERN.
log_count_is() {
	[ "$(grep -c -- "$2" "$T/recluse.log")" -eq "$1" ]
}

@test "recluse with keyproc-signers 2: 300 concurrent handshakes, all served, by a keyproc of 3 sandboxed threads" {
	ulimit -n 4096 2>/dev/null || ulimit -n "$(ulimit -Hn)"
	e2e_setup ec256
	sed -i "1i keyproc-signers 2" "$T/recluse.conf"
	start_recluse "$T/recluse.conf" -v
	kp=$(keyproc_of "$RECLUSE_PID")
	threads_sandboxed "$kp" 3
	grep -Eq "${STAMP}keyproc: 2 signer threads$" "$T/recluse.log"
	run timeout 150 "$HELPERS/tlspipe" -C "$T/ca.crt" -t 120 -c 300 \
	    127.0.0.1 "$PORT"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "ready 300/300" ]
	# every one handshaken, so signed (keyproc's own log lines are
	# dropped when the parent is behind: not counted)
	wait_for log_count_is 300 'listener=web .*end=client-close$'
	! grep -q "killed by signal" "$T/recluse.log" || false
	# no channel closed for the policy (spares the pool retires after
	# the burst close theirs before an arm: not a violation)
	! grep -E "${STAMP}keyproc: child [0-9]*: " "$T/recluse.log" |
	    grep -v -e " signature with " -e ": channel for listener " \
	    -e ": channel closed$" -e ": armed for [0-9]* ms$" \
	    -e ": channel closed before its arm$" || false
}

@test "keyproc-signers 1 signs in keyproc's loop: one thread" {
	e2e_setup ec256
	sed -i "1i keyproc-signers 1" "$T/recluse.conf"
	start_recluse "$T/recluse.conf" -v
	kp=$(keyproc_of "$RECLUSE_PID")
	threads_sandboxed "$kp" 1
	grep -Eq "${STAMP}keyproc: one signer: the loop$" "$T/recluse.log"
	echo_through one -tls1_3
}

@test "keyproc-signers: auto or 1 to 64, once; anything else is refused with its line" {
	e2e_setup ec256
	for v in auto 1 64; do
		{ echo "keyproc-signers $v"; cat "$T/recluse.conf"; } \
		    > "$T/ok.conf"
		run "$RECLUSE" -n -f "$T/ok.conf"
		echo "$output"
		[ "$status" -eq 0 ]
	done
	for v in 0 65 -1 two; do
		{ echo "keyproc-signers $v"; cat "$T/recluse.conf"; } \
		    > "$T/bad.conf"
		run "$RECLUSE" -n -f "$T/bad.conf"
		echo "$output"
		[ "$status" -eq 1 ]
		[[ "$output" == "$T/bad.conf:1: keyproc-signers \"$v\" is"* ]]
	done
	{ echo "keyproc-signers 2"; echo "keyproc-signers 3"; \
	    cat "$T/recluse.conf"; } > "$T/bad.conf"
	run "$RECLUSE" -n -f "$T/bad.conf"
	[ "$status" -eq 1 ]
	[[ "$output" == "$T/bad.conf:2: duplicate \"keyproc-signers\""* ]]
	# the default, and a value, as recluse -nn prints them
	run "$RECLUSE" -nn -f "$T/recluse.conf"
	[[ "$output" == *$'\nkeyproc-signers auto\n'* ]]
	{ echo "keyproc-signers 3"; cat "$T/recluse.conf"; } > "$T/ok.conf"
	run "$RECLUSE" -nn -f "$T/ok.conf"
	[[ "$output" == *$'\nkeyproc-signers 3\n'* ]]
}

@test "keyproc-signers auto: one signer per CPU but one; the loop signs on one or two CPUs" {
	e2e_setup ec256
	start_recluse "$T/recluse.conf" -v
	kp=$(keyproc_of "$RECLUSE_PID")
	n=$(( $(nproc) - 1 ))
	[ "$n" -le 64 ] || n=64
	if [ "$n" -le 1 ]; then
		threads_sandboxed "$kp" 1
		grep -Eq "${STAMP}keyproc: one signer: the loop$" "$T/recluse.log"
	else
		threads_sandboxed "$kp" $(( n + 1 ))
		grep -Eq "${STAMP}keyproc: $n signer threads$" "$T/recluse.log"
	fi
	echo_through one -tls1_3
}
