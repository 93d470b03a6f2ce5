#!/usr/bin/env bats
# OCSP stapling from a file (ocsp-staple, proxy/ocsp.c) and the fetch
# script (systemd/recluse-ocsp-fetch), against a real `openssl ocsp`
# responder on a free port and `openssl s_client -status`.

load helpers

FETCH="$TOP/systemd/recluse-ocsp-fetch"

setup() {
	common_setup
	C="$T/recluse.conf"
	OPORT=$(free_port)
	ocsp_cert web
	: > "$T/index.txt"
	index_add web V
}

teardown() {
	common_teardown
}

# ocsp_cert NAME [CA]: $T/NAME.key, $T/NAME.leaf and the chain $T/NAME.crt
# (leaf + CA), signed by the test CA (or $T/CA.crt), naming the responder
# http://127.0.0.1:$OPORT/ in its Authority Information Access.
ocsp_cert() {
	local name=$1 ca=${2:-ca}
	make_ca
	[ -f "$T/$ca.crt" ] || openssl req -x509 -newkey ec \
	    -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/$ca.key" \
	    -out "$T/$ca.crt" -days 2 -subj "/CN=another test CA" 2>/dev/null
	make_key ec256 "$T/$name.key"
	openssl req -new -key "$T/$name.key" -subj "/CN=localhost" \
	    -out "$T/$name.csr" 2>/dev/null
	printf '%s\n' "subjectAltName=DNS:localhost,IP:127.0.0.1" \
	    "authorityInfoAccess=OCSP;URI:http://127.0.0.1:$OPORT/" \
	    > "$T/$name.ext"
	openssl x509 -req -in "$T/$name.csr" -CA "$T/$ca.crt" \
	    -CAkey "$T/$ca.key" -CAcreateserial -days 30 \
	    -extfile "$T/$name.ext" -out "$T/$name.leaf" 2>/dev/null
	cat "$T/$name.leaf" "$T/$ca.crt" > "$T/$name.crt"
}

# index_add NAME V|R: NAME's certificate, valid or revoked, in the index
# the responder answers from (the format of openssl ca's index.txt).
index_add() {
	local serial end rev=""
	serial=$(openssl x509 -serial -noout -in "$T/$1.leaf" | cut -d= -f2)
	end=$(date -u -d "$(openssl x509 -enddate -noout -in "$T/$1.leaf" |
	    cut -d= -f2)" +%y%m%d%H%M%SZ)
	[ "$2" = R ] && rev="$(date -u +%y%m%d%H%M%SZ),keyCompromise"
	printf '%s\t%s\t%s\t%s\tunknown\t/CN=%s\n' "$2" "$end" "$rev" \
	    "$serial" "$1" >> "$T/index.txt"
}

# staple NAME OUT [ARGS...]: the CA's answer for NAME into OUT, made
# offline by the responder code of openssl ocsp (ARGS: -ndays 1, ...);
# $SIGNER (default ca) signs it.
staple() {
	local name=$1 out=$2 s=${SIGNER:-ca}
	shift 2
	openssl ocsp -issuer "$T/ca.crt" -cert "$T/$name.leaf" -no_nonce \
	    -reqout "$T/$name.req" 2>/dev/null
	openssl ocsp -index "$T/index.txt" -CA "$T/ca.crt" \
	    -rsigner "$T/$s.crt" -rkey "$T/$s.key" -reqin "$T/$name.req" \
	    -respout "$out" "$@" 2>>"$T/openssl.log"
	[ -s "$out" ]
}

# responder: openssl ocsp answering on $OPORT (it binds every address;
# only 127.0.0.1 is used), pid tracked.
responder() {
	openssl ocsp -index "$T/index.txt" -CA "$T/ca.crt" -rsigner "$T/ca.crt" \
	    -rkey "$T/ca.key" -port "$OPORT" -ndays 1 \
	    >> "$T/responder.log" 2>&1 &
	RESPONDER_PID=$!
	track "$RESPONDER_PID"
	# Not wait_port: the responder serves one connection at a time, and
	# takes an empty one for a client still writing.
	wait_for grep -q "waiting for OCSP client connections" \
	    "$T/responder.log"
}

# conf: one listener on $PORT for web, its staple $T/staple.der.
conf() {
	{
		globals_conf
		cat <<EOC
listener "web" {
	listen 127.0.0.1:$PORT
	certificate "$T/web.crt"
	ocsp-staple "$T/staple.der"
	key "$T/web.key"
	backend 127.0.0.1:$BPORT
}
EOC
	} > "$C"
}

# staple_line: the line of the ocsp-staple statement in $C.
staple_line() {
	grep -n 'ocsp-staple' "$C" | cut -d: -f1
}

# serve: an echo backend, the configuration, recluse ready.
serve() {
	PORT=$(free_port)
	BPORT=$(free_port)
	start_echod echo "$BPORT"
	conf
	start_recluse "$C"
}

# status [S_CLIENT ARGS...]: what s_client -status says of the staple.
status() {
	echo | timeout 10 openssl s_client -connect "127.0.0.1:$PORT" \
	    -CAfile "$T/ca.crt" -verify_return_error -status "$@" \
	    > "$T/status.out" 2>> "$T/s_client.log"
	grep -q "Verify return code: 0 (ok)" "$T/status.out"
}

# stapled: the handshake carried web's staple, good.
stapled() {
	local serial
	serial=$(openssl x509 -serial -noout -in "$T/web.leaf" | cut -d= -f2)
	grep -q "OCSP Response Status: successful" "$T/status.out" &&
	    grep -q "Cert Status: good" "$T/status.out" &&
	    grep -q "Serial Number: $serial" "$T/status.out"
}

# unstapled: the handshake carried none.
unstapled() {
	grep -q "^OCSP response: no response sent" "$T/status.out"
}

# reloaded N: configuration N is ready.
reloaded() {
	grep -q "parent: ready: configuration $1," "$T/recluse.log"
}

# warned TEXT: recluse -n warns, at the ocsp-staple line, with TEXT, and
# the configuration is still OK.
warned() {
	run "$RECLUSE" -n -f "$C"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"$C:$(staple_line): warning: ocsp-staple \"$T/staple.der\": $1"*"; not stapling"* ]]
	[[ "$output" == *"configuration OK"* ]]
}

@test "a good staple is sent, in TLS 1.3 and 1.2, and recluse -n is quiet about it" {
	staple web "$T/staple.der" -ndays 1
	serve
	grep -q "$C:$(staple_line): ocsp-staple \"$T/staple.der\": good until" \
	    "$T/recluse.log"
	status -tls1_3
	stapled
	status -tls1_2
	stapled
	run "$RECLUSE" -n -f "$C"
	[ "$status" -eq 0 ]
	[ "$output" = "configuration OK" ]
}

@test "a staple signed by a responder the CA delegated to is sent; one without the OCSP signing purpose is not" {
	# rsp: an OCSP signing certificate issued by the CA; notrsp: not one.
	local name eku
	for name in rsp notrsp; do
		eku=OCSPSigning
		[ "$name" = notrsp ] && eku=serverAuth
		make_key ec256 "$T/$name.key"
		openssl req -new -key "$T/$name.key" -subj "/CN=$name" \
		    -out "$T/$name.csr" 2>/dev/null
		printf 'extendedKeyUsage=%s\n' "$eku" > "$T/$name.ext"
		openssl x509 -req -in "$T/$name.csr" -CA "$T/ca.crt" \
		    -CAkey "$T/ca.key" -CAcreateserial -days 2 \
		    -extfile "$T/$name.ext" -out "$T/$name.crt" 2>/dev/null
	done
	SIGNER=notrsp staple web "$T/staple.der" -ndays 1
	PORT=$(free_port)
	BPORT=$(free_port)
	conf
	warned "it is not signed by the certificate's issuer or a responder it delegated to"
	SIGNER=rsp staple web "$T/staple.der" -ndays 1
	serve
	grep -q "ocsp-staple \"$T/staple.der\": good until" "$T/recluse.log"
	status
	stapled
}

@test "no staple without ocsp-staple; ocsp-staple before certificate is refused at its line" {
	PORT=$(free_port)
	BPORT=$(free_port)
	start_echod echo "$BPORT"
	conf
	sed -i '/ocsp-staple/d' "$C"
	start_recluse "$C"
	status
	unstapled
	conf
	sed -i '/ocsp-staple/d' "$C"
	sed -i "s|^\tcertificate .*|\tocsp-staple \"$T/staple.der\"\n&|" "$C"
	run "$RECLUSE" -n -f "$C"
	echo "$output"
	[ "$status" -eq 1 ]
	[ "$output" = "$C:$(staple_line): \"ocsp-staple\" before \"certificate\": a staple belongs to the certificate line just before it" ]
	run "$RECLUSE" -nn -f "$C"
	[ "$status" -eq 1 ]
	# Two for one certificate: the second is refused.
	conf
	sed -i "s|^\tocsp-staple .*|&\n&|" "$C"
	run "$RECLUSE" -n -f "$C"
	echo "$output"
	[ "$status" -eq 1 ]
	[ "$output" = "$C:$(( $(staple_line | head -n 1) + 1 )): duplicate \"ocsp-staple\"" ]
}

@test "recluse -nn prints ocsp-staple after its certificate" {
	staple web "$T/staple.der" -ndays 1
	PORT=$(free_port)
	BPORT=$(free_port)
	conf
	run "$RECLUSE" -nn -f "$C"
	[ "$status" -eq 0 ]
	echo "$output" | grep -A2 "^	certificate \"$T/web.crt\"$" |
	    grep -qx "	ocsp-staple \"$T/staple.der\""
}

@test "an expired staple is not sent, and warned about at start, at reload and by recluse -n" {
	faketime '2 days ago' true || skip "faketime (package faketime) is missing"
	# Made by the same responder two days ago, good for one day.
	openssl ocsp -issuer "$T/ca.crt" -cert "$T/web.leaf" -no_nonce \
	    -reqout "$T/web.req" 2>/dev/null
	faketime '2 days ago' openssl ocsp -index "$T/index.txt" \
	    -CA "$T/ca.crt" -rsigner "$T/ca.crt" -rkey "$T/ca.key" \
	    -reqin "$T/web.req" -respout "$T/staple.der" -ndays 1 2>/dev/null
	PORT=$(free_port)
	BPORT=$(free_port)
	conf
	warned "expired: nextUpdate was "
	start_echod echo "$BPORT"
	start_recluse "$C"
	grep -q "$C:$(staple_line): warning: ocsp-staple \"$T/staple.der\": expired: nextUpdate was .*; not stapling" \
	    "$T/recluse.log"
	status
	unstapled
	# A good one, then the expired one again, each by SIGHUP.
	cp "$T/staple.der" "$T/expired.der"
	staple web "$T/staple.der" -ndays 1
	kill -HUP "$RECLUSE_PID"
	wait_for reloaded 2
	status
	stapled
	cp "$T/expired.der" "$T/staple.der"
	kill -HUP "$RECLUSE_PID"
	wait_for reloaded 3
	[ "$(grep -c 'warning: ocsp-staple.*expired' "$T/recluse.log")" -eq 2 ]
	status
	unstapled
}

@test "a staple for another certificate is not sent, and warned about" {
	ocsp_cert other
	index_add other V
	staple other "$T/staple.der" -ndays 1
	PORT=$(free_port)
	BPORT=$(free_port)
	conf
	warned "it is for another certificate (serial "
	serve
	grep -q "warning: ocsp-staple \"$T/staple.der\": it is for another certificate" \
	    "$T/recluse.log"
	status
	unstapled
}

@test "a revoked, a foreign-signed, an unknown and a garbled staple are not sent, each with its reason" {
	PORT=$(free_port)
	BPORT=$(free_port)
	conf
	# Signed by a CA that is not web's issuer.
	ocsp_cert stranger otherca
	SIGNER=otherca staple web "$T/staple.der" -ndays 1
	warned "it is not signed by the certificate's issuer or a responder it delegated to"
	# Unknown to the responder.
	: > "$T/index.txt"
	staple web "$T/staple.der" -ndays 1
	warned "the certificate's status is unknown"
	# Revoked.
	index_add web R
	staple web "$T/staple.der" -ndays 1
	warned "the certificate is revoked (on "
	# Not OCSP at all; missing; not a regular file.
	cp "$T/web.leaf" "$T/staple.der"
	warned "not a DER OCSP response"
	rm "$T/staple.der"
	warned "No such file or directory"
	mkfifo "$T/staple.der"
	warned "not a regular file"
	rm "$T/staple.der"
	# A chain without the issuer: nothing to check the staple against.
	: > "$T/index.txt"
	index_add web V
	staple web "$T/staple.der" -ndays 1
	cp "$T/web.leaf" "$T/web.crt"
	warned "the certificate file holds no issuer of its first certificate"
	serve
	status
	unstapled
}

@test "recluse-ocsp-fetch fetches from the responder; after a reload the staple is sent" {
	PORT=$(free_port)
	BPORT=$(free_port)
	start_echod echo "$BPORT"
	conf
	start_recluse "$C"
	status
	unstapled
	responder
	RECLUSE="$RECLUSE" run "$FETCH" -f "$C"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"$T/web.crt: $T/staple.der: Next Update:"* ]]
	run "$RECLUSE" -n -f "$C"
	[ "$output" = "configuration OK" ]
	kill -HUP "$RECLUSE_PID"
	wait_for reloaded 2
	status
	stapled
}

@test "recluse-ocsp-fetch keeps the old staple when the responder fails, and says so" {
	staple web "$T/staple.der" -ndays 1
	cp "$T/staple.der" "$T/before.der"
	PORT=$(free_port)
	BPORT=$(free_port)
	conf
	# Nobody answers on $OPORT.
	RECLUSE="$RECLUSE" OCSP_TIMEOUT=5 run "$FETCH" -f "$C"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"$T/web.crt: http://127.0.0.1:$OPORT/:"* ]]
	cmp "$T/staple.der" "$T/before.der"
	# A revoked certificate: the response is fetched and refused.
	: > "$T/index.txt"
	index_add web R
	responder
	RECLUSE="$RECLUSE" run "$FETCH" -f "$C"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"not a good, current, verified response"* ]]
	cmp "$T/staple.der" "$T/before.der"
	! ls "$T" | grep -q 'staple.der.new' || false
}

@test "recluse-ocsp-fetch skips a certificate that names no responder" {
	make_cert plain ec256
	PORT=$(free_port)
	BPORT=$(free_port)
	conf
	sed -i "s|$T/web.crt|$T/plain.crt|; s|$T/web.key|$T/plain.key|" "$C"
	RECLUSE="$RECLUSE" run "$FETCH" -f "$C"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"$T/plain.crt: names no OCSP responder; skipped"* ]]
	[ ! -e "$T/staple.der" ]
}
