#!/usr/bin/env bats
# Several certificates per listener, chosen by SNI (issue 11, points 1, 7
# and 8): the choice by each certificate's own names, the default,
# strict-sni, recluse -n's warnings, every key in keyproc and none in a
# child, and reloads that add and remove certificates.

load helpers

setup() {
	common_setup
	make_ca
}

teardown() {
	common_teardown
}

# sni_cert NAME TYPE DNS...: $T/NAME.key and $T/NAME.crt (leaf + CA),
# signed by the test CA, with exactly these DNS names (the first also the
# CN).
sni_cert() {
	local name=$1 type=$2 san="" d
	shift 2
	for d; do san="$san${san:+,}DNS:$d"; done
	make_key "$type" "$T/$name.key" || return 1
	openssl req -new -key "$T/$name.key" -subj "/CN=$1" \
	    -out "$T/$name.csr" 2>/dev/null
	printf 'subjectAltName=%s\n' "$san" > "$T/$name.ext"
	openssl x509 -req -in "$T/$name.csr" -CA "$T/ca.crt" \
	    -CAkey "$T/ca.key" -CAcreateserial -days 30 \
	    -extfile "$T/$name.ext" -out "$T/$name.leaf" 2>/dev/null
	cat "$T/$name.leaf" "$T/ca.crt" > "$T/$name.crt"
}

# sni_conf BACKEND NAME... [-- EXTRA-LINE...]: one listener "web" on $PORT
# with the pairs $T/NAME.crt, $T/NAME.key in order, into $T/recluse.conf.
sni_conf() {
	local backend=$1 n
	shift
	{
		globals_conf
		printf 'listener "web" {\n\tlisten 127.0.0.1:%s\n' "$PORT"
		while [ $# -gt 0 ] && [ "$1" != "--" ]; do
			printf '\tcertificate "%s"\n\tkey "%s"\n' \
			    "$T/$1.crt" "$T/$1.key"
			shift
		done
		[ $# -gt 0 ] && shift
		for n; do printf '\t%s\n' "$n"; done
		printf '\tbackend %s\n}\n' "$backend"
	} > "$T/recluse.conf"
}

# three_certs: a (P-256, the default), b (RSA-2048), w (P-384, a wildcard).
three_certs() {
	sni_cert a ec256 a.example.org
	sni_cert b rsa2048 b.example.org
	sni_cert w ec384 '*.w.example.org'
}

# served NAME [S_CLIENT ARGS]: the CN of the certificate served for SNI
# NAME ("-" for none: no SNI sent).
served() {
	local sni=$1
	shift
	if [ "$sni" = "-" ]; then
		set -- -noservername "$@"
	else
		set -- -servername "$sni" "$@"
	fi
	echo | timeout 10 openssl s_client -connect "127.0.0.1:$PORT" \
	    -CAfile "$T/ca.crt" "$@" 2>> "$T/s_client.log" |
	    sed -n 's/^subject=.*CN *= *\([^,/]*\).*/\1/p' | head -n 1
}

# curl_name NAME: an HTTPS request to NAME, resolved to recluse, verified
# against the test CA (so against NAME).
curl_name() {
	curl -sS --max-time 10 --cacert "$T/ca.crt" \
	    --resolve "$1:$PORT:127.0.0.1" "https://$1:$PORT/" \
	    >> "$T/curl.out" 2>> "$T/curl.log"
}

@test "curl --resolve: three names on one port get their certificates, a wildcard too; an unknown name and no SNI get the default" {
	three_certs
	BPORT=$(free_port)
	start_echod http "$BPORT"
	PORT=$(free_port)
	sni_conf "127.0.0.1:$BPORT" a b w
	start_recluse "$T/recluse.conf" -v
	curl_name a.example.org
	curl_name b.example.org
	curl_name x.w.example.org
	wait_for grep -q "sni=a.example.org .*cert=a.example.org " "$T/recluse.log"
	wait_for grep -q "sni=b.example.org .*cert=b.example.org " "$T/recluse.log"
	wait_for grep -q "sni=x.w.example.org .*cert=\*.w.example.org " "$T/recluse.log"
	# the RSA pair was signed with its own key, in keyproc
	grep -q "keyproc: child [0-9]*: rsa_pss_rsae_sha256 signature with $T/b.key " "$T/recluse.log"
	# a name no certificate claims: the default, and curl refuses it
	! curl_name nope.example.org || false
	grep -q "no alternative certificate subject name matches\|does not match target host" "$T/curl.log"
	[ "$(served nope.example.org)" = a.example.org ]
	[ "$(served y.w.example.org)" = '*.w.example.org' ]
	# a wildcard is one label deep
	[ "$(served a.b.w.example.org)" = a.example.org ]
	[ "$(served B.EXAMPLE.ORG)" = b.example.org ]
	[ "$(served -)" = a.example.org ]
	wait_for grep -q "sni=- .*cert=a.example.org " "$T/recluse.log"
}

@test "openssl s_client -servername picks each certificate, TLS 1.3 and 1.2" {
	three_certs
	BPORT=$(free_port)
	start_echod echo "$BPORT"
	PORT=$(free_port)
	sni_conf "127.0.0.1:$BPORT" a b w
	start_recluse "$T/recluse.conf"
	for v in -tls1_3 -tls1_2; do
		echo_through "a-$v" -servername a.example.org \
		    -verify_hostname a.example.org "$v"
		echo_through "b-$v" -servername b.example.org \
		    -verify_hostname b.example.org "$v"
		echo_through "w-$v" -servername q.w.example.org \
		    -verify_hostname q.w.example.org "$v"
	done
	[ "$(grep -c "cert=b.example.org " "$T/recluse.log")" -eq 2 ]
}

@test "strict-sni yes: an unknown name gets the unrecognized_name alert; known names and no SNI are served" {
	three_certs
	BPORT=$(free_port)
	start_echod echo "$BPORT"
	PORT=$(free_port)
	sni_conf "127.0.0.1:$BPORT" a b w -- "strict-sni yes"
	start_recluse "$T/recluse.conf"
	echo | timeout 10 openssl s_client -connect "127.0.0.1:$PORT" \
	    -servername nope.example.org > "$T/strict.out" 2>&1 || true
	grep -q "unrecognized name" "$T/strict.out"
	! grep -q "^subject=" "$T/strict.out" || false
	echo | timeout 10 openssl s_client -connect "127.0.0.1:$PORT" \
	    -servername nope.example.org -tls1_2 > "$T/strict12.out" 2>&1 || true
	grep -q "unrecognized name" "$T/strict12.out"
	[ "$(served b.example.org)" = b.example.org ]
	[ "$(served z.w.example.org)" = '*.w.example.org' ]
	[ "$(served -)" = a.example.org ]
	# the refused handshake is logged, and escaped names too
	wait_for grep -q "sni=- .*cert=a.example.org " "$T/recluse.log"
	# strict-sni no, the default: the same name gets the default
	sni_conf "127.0.0.1:$BPORT" a b w
	kill -HUP "$RECLUSE_PID"
	wait_for grep -q "ready: configuration 2," "$T/recluse.log"
	wait_for test "$(served nope.example.org)" = a.example.org
}

@test "recluse -n: two certificates claiming one name are warned about, with FILE:LINE; -nn prints every pair and strict-sni" {
	three_certs
	sni_cert dup ec256 c.example.org B.example.org
	PORT=$(free_port)
	sni_conf "127.0.0.1:1" a b w dup
	run "$RECLUSE" -n -f "$T/recluse.conf"
	echo "$output"
	[ "$status" -eq 0 ]
	line=$(grep -n "certificate \"$T/dup.crt\"" "$T/recluse.conf" | cut -d: -f1)
	echo "$output" | grep -qF "$T/recluse.conf:$line: warning: name b.example.org is claimed by several certificates: $T/b.crt $T/dup.crt; clients naming it get $T/b.crt"
	# no warning without a shared name
	sni_conf "127.0.0.1:1" a b w
	run "$RECLUSE" -n -f "$T/recluse.conf"
	[ "$status" -eq 0 ]
	! echo "$output" | grep -q "claimed by" || false
	# -nn: every pair in order, and strict-sni
	sni_conf "127.0.0.1:1" a b w -- "strict-sni yes"
	run "$RECLUSE" -nn -f "$T/recluse.conf"
	[ "$status" -eq 0 ]
	echo "$output" | sed -n '/^listener/,/^}/p' > "$T/dump"
	grep -A1 "certificate \"$T/a.crt\"" "$T/dump" | grep -q "key \"$T/a.key\""
	grep -A1 "certificate \"$T/w.crt\"" "$T/dump" | grep -q "key \"$T/w.key\""
	grep -q "strict-sni yes" "$T/dump"
}

@test "a key before its certificate, a certificate without its key, a second pair's wrong key: refused with FILE:LINE" {
	three_certs
	PORT=$(free_port)
	sni_conf "127.0.0.1:1" a b
	# a certificate without its key, followed by another pair
	sed -i "0,\|key \"$T/a.key\"|{\|key \"$T/a.key\"|d}" "$T/recluse.conf"
	run "$RECLUSE" -n -f "$T/recluse.conf"
	line=$(grep -n "certificate \"$T/b.crt\"" "$T/recluse.conf" | cut -d: -f1)
	[ "$status" -eq 1 ]
	[ "$output" = "$T/recluse.conf:$line: certificate \"$T/a.crt\" has no key: each certificate is followed by its key" ]
	# the last certificate without its key
	sni_conf "127.0.0.1:1" a b
	sed -i "\|key \"$T/b.key\"|d" "$T/recluse.conf"
	run "$RECLUSE" -n -f "$T/recluse.conf"
	line=$(grep -n "certificate \"$T/b.crt\"" "$T/recluse.conf" | cut -d: -f1)
	[ "$status" -eq 1 ]
	[ "$output" = "$T/recluse.conf:$line: certificate \"$T/b.crt\" has no key: each certificate is followed by its key" ]
	# a key first
	{
		globals_conf
		printf 'listener "web" {\n\tlisten 127.0.0.1:%s\n\tkey "%s"\n\tcertificate "%s"\n\tbackend 127.0.0.1:1\n}\n' \
		    "$PORT" "$T/a.key" "$T/a.crt"
	} > "$T/recluse.conf"
	run "$RECLUSE" -n -f "$T/recluse.conf"
	line=$(grep -n "key \"$T/a.key\"" "$T/recluse.conf" | cut -d: -f1)
	[ "$status" -eq 1 ]
	[ "$output" = "$T/recluse.conf:$line: key \"$T/a.key\" before any certificate: write the certificate line first" ]
	# the second pair's key is the first's
	sni_conf "127.0.0.1:1" a b
	sed -i "s|key \"$T/b.key\"|key \"$T/a.key\"|" "$T/recluse.conf"
	run "$RECLUSE" -n -f "$T/recluse.conf"
	echo "$output"
	line=$(grep -n "key \"$T/a.key\"" "$T/recluse.conf" | tail -n 1 | cut -d: -f1)
	[ "$status" -eq 1 ]
	echo "$output" | grep -q "^$T/recluse.conf:$line: .*does not match"
}

@test "reload adds and removes certificates without dropping an open connection; a bad new certificate keeps the running configuration, with FILE:LINE" {
	three_certs
	sni_cert c ec256 c.example.org
	BPORT=$(free_port)
	start_echod echo "$BPORT"
	PORT=$(free_port)
	sni_conf "127.0.0.1:$BPORT" a b
	start_recluse "$T/recluse.conf"
	[ "$(served b.example.org)" = b.example.org ]
	[ "$(served c.example.org)" = a.example.org ]
	# a connection held across the reloads, served with b
	mkfifo "$T/held.in"
	sleep 300 > "$T/held.in" 3>&- &
	track $!
	openssl s_client -connect "127.0.0.1:$PORT" -servername b.example.org \
	    -CAfile "$T/ca.crt" -verify_return_error -quiet < "$T/held.in" \
	    > "$T/held.out" 2>> "$T/s_client.log" 3>&- &
	track $!
	exec 5> "$T/held.in"
	echo before >&5
	wait_for grep -qx before "$T/held.out"

	# add c, remove b
	sni_conf "127.0.0.1:$BPORT" a c w
	kill -HUP "$RECLUSE_PID"
	wait_for grep -q "ready: configuration 2," "$T/recluse.log"
	wait_for test "$(served c.example.org)" = c.example.org
	[ "$(served b.example.org)" = a.example.org ]
	[ "$(served v.w.example.org)" = '*.w.example.org' ]
	echo after-add >&5
	wait_for grep -qx after-add "$T/held.out"

	# a new certificate that is not PEM: refused, with its FILE:LINE
	echo "not a certificate" > "$T/bad.crt"
	cp "$T/c.key" "$T/bad.key"
	chmod 600 "$T/bad.key"
	sni_conf "127.0.0.1:$BPORT" a c w bad
	line=$(grep -n "certificate \"$T/bad.crt\"" "$T/recluse.conf" | cut -d: -f1)
	kill -HUP "$RECLUSE_PID"
	wait_for grep -q "reload failed, keeping the running configuration: $T/recluse.conf:$line: " "$T/recluse.log"
	# a new pair whose key is another certificate's: refused by keyproc
	sni_conf "127.0.0.1:$BPORT" a c w b
	sed -i "s|key \"$T/b.key\"|key \"$T/a.key\"|" "$T/recluse.conf"
	line=$(grep -n "key \"$T/a.key\"" "$T/recluse.conf" | tail -n 1 | cut -d: -f1)
	kill -HUP "$RECLUSE_PID"
	wait_for grep -q "reload failed, keeping the running configuration: $T/recluse.conf:$line: " "$T/recluse.log"
	# the running configuration still serves, the held connection too
	[ "$(served c.example.org)" = c.example.org ]
	[ "$(served b.example.org)" = a.example.org ]
	! grep -q "ready: configuration 3," "$T/recluse.log" || false
	echo after-bad >&5
	wait_for grep -qx after-bad "$T/held.out"
	exec 5>&-
}

@test "a child of a listener with RSA and ECDSA certificates holds none of their keys' secret numbers; keyproc holds them all" {
	sni_cert a ec256 a.example.org
	sni_cert b rsa2048 b.example.org
	sni_cert c ec384 c.example.org
	sni_cert d rsa3072 d.example.org
	BPORT=$(free_port)
	start_echod echo "$BPORT"
	PORT=$(free_port)
	sni_conf "127.0.0.1:$BPORT" a b c d
	start_recluse "$T/recluse.conf" -v
	for name in b a; do
		rm -f "$T/$name.in"
		mkfifo "$T/$name.in"
		sleep 300 > "$T/$name.in" 3>&- &
		track $!
		openssl s_client -connect "127.0.0.1:$PORT" -servername "$name.example.org" \
		    -CAfile "$T/ca.crt" -quiet < "$T/$name.in" > "$T/$name.out" \
		    2>> "$T/s_client.log" 3>&- &
		track $!
	done
	exec 5> "$T/b.in" 6> "$T/a.in"
	echo ping >&5
	echo ping >&6
	wait_for grep -q ping "$T/b.out"
	wait_for grep -q ping "$T/a.out"
	kp=$(keyproc_of "$RECLUSE_PID")
	kids=$(sed -En "s/${STAMP}keyproc: child ([0-9]*): .* signature with.*/\1/p" \
	    "$T/recluse.log" | sort -u)
	[ -n "$kp" ] && [ "$(echo "$kids" | wc -w)" -ge 2 ]
	for k in a b c d; do
		for child in $kids; do
			[ -d "/proc/$child" ]
		done
		# shellcheck disable=SC2086
		python3 "$HELPERS/memscan.py" "$T/$k.key" $kids "$kp" \
		    > "$T/memscan.$k.log"
		cat "$T/memscan.$k.log" >> "$T/recluse.log"
		for child in $kids; do
			grep -q "^$child .* absent$" "$T/memscan.$k.log"
			! grep -q "^$child .* found$" "$T/memscan.$k.log" || false
		done
		# keyproc, the positive control: each number found
		for name in $(awk -v p="$kp" '$1 == p { print $2 }' "$T/memscan.$k.log" | sort -u); do
			grep -q "^$kp $name .* found$" "$T/memscan.$k.log"
		done
	done
	exec 5>&- 6>&-
}

@test "the choice by SNI keeps libtls's rules: pairs after the default first, in order; CN only without SAN; one wildcard label; case; address literals" {
	sni_cert a ec256 a.example.org shared.example.org
	sni_cert b ec256 b.example.org '*.w.example.org' shared.example.org
	sni_cert c ec256 c.example.org '*.w.example.org'
	sni_cert d ec256 d.example.org
	# a certificate with a common name and no subjectAltName at all
	make_key ec256 "$T/n.key"
	openssl req -new -x509 -key "$T/n.key" -subj "/CN=cn.example.org" \
	    -days 30 -out "$T/n.self" 2>/dev/null
	openssl x509 -in "$T/n.self" -CA "$T/ca.crt" -CAkey "$T/ca.key" \
	    -CAcreateserial -days 30 -out "$T/n.leaf" 2>/dev/null
	cat "$T/n.leaf" "$T/ca.crt" > "$T/n.crt"
	# d's CN is not among its SAN names: it must not match by CN
	openssl req -new -key "$T/d.key" -subj "/CN=dcn.example.org" \
	    -out "$T/d.csr" 2>/dev/null
	openssl x509 -req -in "$T/d.csr" -CA "$T/ca.crt" -CAkey "$T/ca.key" \
	    -CAcreateserial -days 30 -extfile "$T/d.ext" -out "$T/d.leaf" \
	    2>/dev/null
	cat "$T/d.leaf" "$T/ca.crt" > "$T/d.crt"
	BPORT=$(free_port)
	start_echod echo "$BPORT"
	PORT=$(free_port)
	sni_conf "127.0.0.1:$BPORT" a b c d n
	start_recluse "$T/recluse.conf"
	[ "$(served a.example.org)" = a.example.org ]
	# claimed by the default and b, then c: b, the first after the default
	[ "$(served shared.example.org)" = b.example.org ]
	[ "$(served SHARED.Example.ORG)" = b.example.org ]
	[ "$(served x.w.example.org)" = b.example.org ]
	[ "$(served c.example.org)" = c.example.org ]
	[ "$(served d.example.org)" = dcn.example.org ]
	[ "$(served dcn.example.org)" = a.example.org ]
	[ "$(served cn.example.org)" = cn.example.org ]
	# the wildcard covers one label, not two, nor the domain itself
	[ "$(served a.b.w.example.org)" = a.example.org ]
	[ "$(served w.example.org)" = a.example.org ]
	# an address literal is no name: the default, and sni=- in the log
	[ "$(served 127.0.0.1)" = a.example.org ]
	[ "$(served -)" = a.example.org ]
	wait_for grep -q ' sni=- ' "$T/recluse.log"
	grep -q ' sni=SHARED.Example.ORG ' "$T/recluse.log"
}

@test "a named pair of another key type than the default is served alone, TLS 1.3 and 1.2" {
	sni_cert r rsa2048 r.example.org
	sni_cert e ec256 e.example.org
	BPORT=$(free_port)
	start_echod echo "$BPORT"
	PORT=$(free_port)
	sni_conf "127.0.0.1:$BPORT" e r
	start_recluse "$T/recluse.conf"
	for v in -tls1_3 -tls1_2; do
		# the client prefers ECDSA: only r's pair may be left for it
		[ "$(served r.example.org "$v")" = r.example.org ]
		[ "$(served e.example.org "$v")" = e.example.org ]
		[ "$(served other.example.org "$v")" = e.example.org ]
	done
	echo | timeout 10 openssl s_client -connect "127.0.0.1:$PORT" \
	    -servername r.example.org -tls1_2 -CAfile "$T/ca.crt" \
	    2>/dev/null | grep -q 'Peer signature type: RSA'
}
