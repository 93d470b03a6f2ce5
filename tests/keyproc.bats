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
# listener 0 holds RSA key 0, listener 1 EC key 0 and RSA key 1.
policy_run() {
	make_cert rsa rsa2048
	make_cert ec ec256
	kpdriver -k "0,0,$T/rsa.key,$T/rsa.crt" -k "1,0,$T/ec.key,$T/ec.crt" \
	    -k "1,1,$T/rsa.key,$T/rsa.crt" policy > "$T/kpdriver.log" 2>&1
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
	openssl req -x509 -key "$T/$name.key" -subj "/CN=$name" -days 2 \
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
	    ec-tls13-sha384 ec-tls12-sha256-x25519 ec-tls12-sha512-p256 \
	    listener1-key1-rsa; do
		has_line "case $c: signed (expected signed)"
	done
	has_line "summary: 0 unexpected"
}

@test "short, long, lying-length and fd-carrying requests close that channel only" {
	policy_run
	for c in short-request empty-request long-request length-says-more \
	    length-says-less length-zero fd-attached; do
		has_line "case $c: closed (expected closed)"
		has_line "case $c-neighbour: signed (expected signed)"
	done
	pid=$(sed -n 's/^keyproc: child \([0-9]*\): short request.*/\1/p' "$T/kpdriver.log")
	[ -n "$pid" ]
	has_line "keyproc: child $pid: short request (10 bytes)"
	has_line "keyproc: child $pid: request too long"
	has_line "keyproc: child $pid: request of 146 bytes says 140"
	has_line "keyproc: child $pid: request of 146 bytes says 120"
	has_line "keyproc: child $pid: input length 0"
	has_line "keyproc: child $pid: ancillary data"
}

@test "another listener's key, unknown and mismatched algorithms close that channel only" {
	policy_run
	for c in other-listener-key no-such-key unknown-alg alg-zero \
	    ecdsa-alg-on-rsa-key pss-alg-on-ec-key; do
		has_line "case $c: closed (expected closed)"
		has_line "case $c-neighbour: signed (expected signed)"
	done
	grep -q "^keyproc: child [0-9]*: key 1 is not a key of listener 0$" "$T/kpdriver.log"
	grep -q "^keyproc: child [0-9]*: unknown algorithm 99$" "$T/kpdriver.log"
	grep -q "^keyproc: child [0-9]*: algorithm ecdsa_sha256 for an RSA key$" "$T/kpdriver.log"
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
	grep -q "^keyproc: child [0-9]*: TLS 1.3 client CertificateVerify context$" "$T/kpdriver.log"
	grep -q "^keyproc: child [0-9]*: RSA PKCS#1 v1.5 for a TLS 1.3 input$" "$T/kpdriver.log"
	grep -q "^keyproc: child [0-9]*: not a TLS server signature input$" "$T/kpdriver.log"
}

@test "a channel gets KP_SIGN_BUDGET signatures, then it is closed; a witness channel signs across every violation" {
	policy_run
	for i in 1 2 3 4; do
		has_line "case budget-$i: signed (expected signed)"
	done
	has_line "case budget-exceeded: closed (expected closed)"
	has_line "case budget-exceeded-neighbour: signed (expected signed)"
	grep -q "^keyproc: child [0-9]*: signature budget of 4 spent$" "$T/kpdriver.log"
	has_line "case witness-first: signed (expected signed)"
	[ "$(grep -c '^case witness-between: signed (expected signed)$' "$T/kpdriver.log")" -eq 2 ]
	has_line "case witness-last: signed (expected signed)"
	# keyproc served to the end and left cleanly when its parent closed
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
		[ "${lines[0]}" = "error: $T/$k.key: encrypted private keys are not supported" ]
	done
}

@test "keyproc refuses ed25519, RSA-1024 and P-521 keys, naming the file" {
	self_signed ed ed25519
	self_signed small RSA -pkeyopt rsa_keygen_bits:1024
	self_signed p521 EC -pkeyopt ec_paramgen_curve:P-521
	load_key "$T/ed.key" "$T/ed.crt"
	[ "$status" -eq 1 ]
	[ "${lines[0]}" = "error: $T/ed.key: unsupported key type ED25519 (only RSA and EC)" ]
	load_key "$T/small.key" "$T/small.crt"
	[ "$status" -eq 1 ]
	[ "${lines[0]}" = "error: $T/small.key: RSA key of 1024 bits (only 2048 to 4096)" ]
	load_key "$T/p521.key" "$T/p521.crt"
	[ "$status" -eq 1 ]
	[ "${lines[0]}" = "error: $T/p521.key: EC key on curve secp521r1 (only P-256 and P-384)" ]
}

@test "keyproc refuses a key that does not match its certificate, and a file without a key" {
	make_cert a ec256
	make_cert b ec256
	load_key "$T/a.key" "$T/b.crt"
	[ "$status" -eq 1 ]
	[ "${lines[0]}" = "error: $T/a.key: key does not match the certificate" ]
	load_key "$T/a.crt" "$T/a.crt"
	[ "$status" -eq 1 ]
	[ "${lines[0]}" = "error: $T/a.crt: no PEM private key found" ]
}

@test "keyproc runs as keyproc-user in the empty chroot, with seccomp, NoNewPrivs, not dumpable, no processes" {
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
	! ls -l /proc/$kp/fd | grep -q "web.key"
	exec 5>&-
	wait_for grep -q "^keyproc exit 0$" "$T/kpdriver.log"
}

# ------------------------------------------------------------------
# the key path through recluse

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

# keyproc_of PID: the keyproc among PID's children.
keyproc_of() {
	local pid
	for pid in $(children_of "$1"); do
		grep -q recluse-keyproc "/proc/$pid/cmdline" 2>/dev/null &&
		    echo "$pid"
	done
	return 0
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

# no_violations: keyproc closed no channel for breaking the policy.
no_violations() {
	! grep "^keyproc: child [0-9]*: " "$T/recluse.log" |
	    grep -v -e " signature with " -e ": channel "
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
	! echo_through seven -tls1_3 -sigalgs RSA+SHA256
}

@test "TLS 1.3 and 1.2 through recluse with an ECDSA P-256 certificate, whatever the suite's hash" {
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
		child=$(sed -n 's/^keyproc: child \([0-9]*\): .* signature with.*/\1/p' \
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
		! grep -q "^$child .* found$" "$T/memscan.$type.log"
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
		! ls -l "/proc/$pid/fd" 2>/dev/null | grep -qF "$T/web.key"
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
