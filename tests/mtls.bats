#!/usr/bin/env bats
# Client certificates (mutual TLS): client-ca, client-verify, client-crl,
# with real clients (curl --cert, openssl s_client -cert).

load helpers

setup() {
	common_setup
	make_cert web ec256
	make_client_pki
	BPORT=$(free_port)
	start_echod http "$BPORT"
}

teardown() {
	common_teardown
}

# client_ca DIR NAME: a CA for client certificates, run with openssl ca in
# DIR (its index, serials and CRL), certificate DIR/ca.crt.
client_ca() {
	local d=$1
	mkdir -p "$d"
	: > "$d/index.txt"
	echo 1000 > "$d/serial"
	echo 1000 > "$d/crlnumber"
	cat > "$d/ca.cnf" <<EOC
[ ca ]
default_ca = ca_default
[ ca_default ]
dir = $d
database = $d/index.txt
serial = $d/serial
crlnumber = $d/crlnumber
new_certs_dir = $d
certificate = $d/ca.crt
private_key = $d/ca.key
default_md = sha256
default_days = 30
default_crl_days = 2
policy = policy_any
unique_subject = no
copy_extensions = copy
[ policy_any ]
commonName = supplied
organizationName = optional
[ client_ext ]
basicConstraints = CA:FALSE
keyUsage = digitalSignature
extendedKeyUsage = clientAuth
EOC
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	    -keyout "$d/ca.key" -out "$d/ca.crt" -days 2 -subj "/CN=$2" \
	    2>/dev/null
}

# client_cert DIR NAME CN [CA ARGS...]: DIR/NAME.key, DIR/NAME.crt signed
# by the CA in DIR, for CN, with an email subjectAltName.
client_cert() {
	local d=$1 name=$2 cn=$3
	shift 3
	make_key ec256 "$d/$name.key"
	openssl req -new -key "$d/$name.key" -subj "/CN=$cn/O=Recluse Test" \
	    -addext "subjectAltName=email:$name@example.org,DNS:$name.example.org" \
	    -out "$d/$name.csr" 2>/dev/null
	openssl ca -batch -config "$d/ca.cnf" -extensions client_ext \
	    -in "$d/$name.csr" -out "$d/$name.crt" -notext "$@" 2>/dev/null
}

# make_client_pki: $T/cca (the client CA: good, expired, revoked, and a CRL
# naming revoked) and $T/other (another CA, with its own good client).
make_client_pki() {
	client_ca "$T/cca" "recluse client CA"
	client_cert "$T/cca" good "good client"
	client_cert "$T/cca" expired "expired client" \
	    -startdate 20200101000000Z -enddate 20200201000000Z
	client_cert "$T/cca" revoked "revoked client"
	openssl ca -batch -config "$T/cca/ca.cnf" -revoke "$T/cca/revoked.crt" \
	    2>/dev/null
	openssl ca -batch -config "$T/cca/ca.cnf" -gencrl \
	    -out "$T/cca/crl.pem" 2>/dev/null
	client_ca "$T/other" "some other CA"
	client_cert "$T/other" good "other client"
}

# start_mtls LINE...: recluse with one listener "web" on a free port (in
# PORT) whose extra lines are LINE...
start_mtls() {
	local l
	PORT=$(free_port)
	{
		globals_conf
		cat <<EOC
listener "web" {
	listen 127.0.0.1:$PORT
	certificate "$T/web.crt"
	key "$T/web.key"
	backend 127.0.0.1:$BPORT
EOC
		for l; do printf '\t%s\n' "$l"; done
		echo "}"
	} > "$T/recluse.conf"
	start_recluse "$T/recluse.conf"
}

# curl_as NAME|none [DIR]: an HTTP request through recluse with the client
# certificate DIR/NAME (DIR default $T/cca), answered by the backend;
# curl's output in $T/curl.out, its messages in $T/curl.err.
curl_as() {
	local d=${2:-$T/cca} certargs=()
	[ "$1" = none ] || certargs=(--cert "$d/$1.crt" --key "$d/$1.key")
	rm -f "$T/curl.out"
	curl -sS --max-time 10 --cacert "$T/ca.crt" "${certargs[@]}" \
	    "https://localhost:$PORT/mtls-$1" -o "$T/curl.out" 2>"$T/curl.err"
	grep -q "hello from echod" "$T/curl.out"
}

# s_client_as NAME|none [DIR [ARGS...]]: openssl s_client with that
# certificate sends an HTTP/1.0 request and gets the backend's answer; its
# messages in $T/s_client.log.
s_client_as() {
	local name=$1 d=${2:-$T/cca} certargs=()
	shift
	[ $# -eq 0 ] || shift
	[ "$name" = none ] || certargs=(-cert "$d/$name.crt" -key "$d/$name.key")
	printf 'GET /mtls-%s HTTP/1.0\r\n\r\n' "$name" |
	    timeout 10 openssl s_client -connect "127.0.0.1:$PORT" -quiet \
	    -CAfile "$T/ca.crt" -verify_return_error -ign_eof "${certargs[@]}" \
	    "$@" > "$T/s_client.out" 2>> "$T/s_client.log"
	grep -q "hello from echod" "$T/s_client.out"
}

# access_line N: the Nth access line (1 = the first) of listener web.
access_line() {
	grep "listener=web " "$T/recluse.log" | grep " end=" | sed -n "${1}p"
}

# access_lines_are N: wait until there are N access lines.
access_lines_are() {
	[ "$(grep "listener=web " "$T/recluse.log" | grep -c " end=")" -eq "$1" ]
}

# not_served NAME [DIR]: curl_as fails, for wait_for.
not_served() {
	! curl_as "$@"
}

# curl's message for a failure of the TLS layer (the alert or a reset).
tls_failed() {
	grep -Eqi "alert|SSL|TLS|reset|certificate" "$T/curl.err"
}

@test "mtls: required: a valid client certificate (curl --cert) is served and logged" {
	start_mtls "client-ca \"$T/cca/ca.crt\""
	curl_as good
	wait_for access_lines_are 1
	line=$(access_line 1)
	echo "$line"
	fp=$(openssl x509 -in "$T/cca/good.crt" -noout -fingerprint -sha256 |
	    cut -d= -f2 | tr -d : | tr 'A-F' 'a-f')
	[[ "$line" == *" client_cert=ok client_subject=O=Recluse%20Test,CN=good%20client client_fp=$fp "* ]]
	# the fields come after backend=, in the agreed order
	[[ "$line" == *" backend=127.0.0.1:$BPORT alpn=- cert=localhost proxied=- client_cert="* ]]
}

@test "mtls: required: openssl s_client -cert with a valid certificate, TLS 1.3 and 1.2" {
	start_mtls "client-ca \"$T/cca/ca.crt\"" "client-verify required"
	s_client_as good
	s_client_as good "" -tls1_2
	wait_for access_lines_are 2
	[[ "$(access_line 1)" == *" tls=TLSv1.3 "*" client_cert=ok client_subject=O=Recluse%20Test,CN=good%20client "* ]]
	[[ "$(access_line 2)" == *" tls=TLSv1.2 "*" client_cert=ok client_subject=O=Recluse%20Test,CN=good%20client "* ]]
}

@test "mtls: required: no certificate: the handshake fails with the certificate_required alert" {
	start_mtls "client-ca \"$T/cca/ca.crt\""
	! curl_as none || false
	tls_failed
	# TLS 1.3: alert 116, certificate required
	! s_client_as none || false
	grep -qi "certificate required\|alert number 116" "$T/s_client.log"
	# TLS 1.2: a handshake failure alert, before the server's Finished
	rm -f "$T/s_client.log"
	! s_client_as none "" -tls1_2 || false
	grep -qi "handshake failure\|alert number 40" "$T/s_client.log"
	wait_for access_lines_are 3
	for i in 1 2 3; do
		line=$(access_line "$i")
		[[ "$line" == *" client_cert=none client_subject=- client_fp=- "* ]]
		[[ "$line" == *" end=handshake-failed" ]]
	done
}

@test "mtls: required: an expired client certificate is refused (certificate_expired)" {
	start_mtls "client-ca \"$T/cca/ca.crt\""
	! curl_as expired || false
	tls_failed
	! s_client_as expired || false
	grep -qi "certificate expired\|alert number 45" "$T/s_client.log"
	wait_for access_lines_are 2
	[[ "$(access_line 1)" == *" client_cert=failed:expired "*" end=handshake-failed" ]]
}

@test "mtls: required: a revoked client certificate is refused with client-crl, the others served" {
	start_mtls "client-ca \"$T/cca/ca.crt\"" "client-crl \"$T/cca/crl.pem\""
	! curl_as revoked || false
	tls_failed
	! s_client_as revoked || false
	grep -qi "certificate revoked\|alert number 44" "$T/s_client.log"
	# the CRL does not refuse the others
	curl_as good
	wait_for access_lines_are 3
	[[ "$(access_line 1)" == *" client_cert=failed:revoked client_subject=- client_fp=- "*" end=handshake-failed" ]]
	[[ "$(access_line 3)" == *" client_cert=ok "* ]]
}

@test "mtls: required: a certificate from another CA is refused (unknown_ca)" {
	start_mtls "client-ca \"$T/cca/ca.crt\""
	! curl_as good "$T/other" || false
	tls_failed
	! s_client_as good "$T/other" || false
	grep -qi "unknown ca\|alert number 48" "$T/s_client.log"
	wait_for access_lines_are 2
	[[ "$(access_line 1)" == *" client_cert=failed:unknown-ca "*" end=handshake-failed" ]]
}

@test "mtls: optional: no certificate is served and noted; a bad one is still refused" {
	start_mtls "client-ca \"$T/cca/ca.crt\"" "client-verify optional"
	curl_as none
	s_client_as none
	curl_as good
	! curl_as good "$T/other" || false
	wait_for access_lines_are 4
	[[ "$(access_line 1)" == *" client_cert=none client_subject=- client_fp=- "*" end=closed" ]] ||
	    [[ "$(access_line 1)" == *" client_cert=none client_subject=- client_fp=- "* ]]
	[[ "$(access_line 2)" == *" client_cert=none "* ]]
	[[ "$(access_line 3)" == *" client_cert=ok "* ]]
	[[ "$(access_line 4)" == *" client_cert=failed:unknown-ca "*" end=handshake-failed" ]]
}

@test "mtls: a listener without client-ca asks for no certificate and logs -" {
	start_mtls
	curl_as good
	wait_for access_lines_are 1
	[[ "$(access_line 1)" == *" client_cert=- client_subject=- client_fp=- "* ]]
}

@test "mtls: client-ca as a directory: every PEM file in it" {
	mkdir "$T/cadir"
	cp "$T/other/ca.crt" "$T/cadir/a-other.pem"
	cp "$T/cca/ca.crt" "$T/cadir/b-client.pem"
	ln -s b-client.pem "$T/cadir/$(openssl x509 -in "$T/cca/ca.crt" -noout -hash).0"
	start_mtls "client-ca \"$T/cadir\""
	curl_as good
	curl_as good "$T/other"
	wait_for access_lines_are 2
	[[ "$(access_line 1)" == *" client_cert=ok client_subject=O=Recluse%20Test,CN=good%20client "* ]]
	[[ "$(access_line 2)" == *" client_cert=ok client_subject=O=Recluse%20Test,CN=other%20client "* ]]
}

@test "mtls: configuration errors name FILE:LINE" {
	PORT=$(free_port)
	conf() {
		{
			globals_conf
			listener_conf web "127.0.0.1:$PORT" "127.0.0.1:$BPORT" |
			    sed '$d'
			for l; do printf '\t%s\n' "$l"; done
			echo "}"
		} > "$T/bad.conf"
	}
	check() {
		run "$RECLUSE" -n -f "$T/bad.conf"
		echo "$output"
		[ "$status" -ne 0 ]
		[[ "$output" == *"$1"* ]]
	}
	conf "client-ca \"$T/missing.pem\""
	check "$T/bad.conf:9: client-ca \"$T/missing.pem\": No such file"
	conf "client-ca \"$T/web.key\""
	check "$T/bad.conf:9: client-ca \"$T/web.key\": block 1 is a PRIVATE KEY"
	conf "client-verify optional"
	check "$T/bad.conf:9: client-verify without client-ca"
	conf "client-ca \"$T/cca/ca.crt\"" "client-verify sometimes"
	check "$T/bad.conf:10: client-verify \"sometimes\": required or optional"
	conf "client-ca \"$T/cca/ca.crt\"" "client-crl \"$T/cca/ca.crt\""
	check "$T/bad.conf:10: client-crl \"$T/cca/ca.crt\": block 1 is a CERTIFICATE"
	# a CRL of another CA
	openssl ca -batch -config "$T/other/ca.cnf" -gencrl \
	    -out "$T/other/crl.pem" 2>/dev/null
	conf "client-ca \"$T/cca/ca.crt\"" "client-crl \"$T/other/crl.pem\""
	check "$T/bad.conf:10: client-crl \"$T/other/crl.pem\": no CRL signed by"
	conf "client-crl \"$T/cca/crl.pem\""
	check "$T/bad.conf:9: client-crl without client-ca"
	mkdir "$T/emptydir"
	conf "client-ca \"$T/emptydir\""
	check "$T/bad.conf:9: client-ca \"$T/emptydir\": an empty directory"
	# and a good one, normalised with its default
	conf "client-ca \"$T/cca/ca.crt\"" "client-crl \"$T/cca/crl.pem\""
	run "$RECLUSE" -nn -f "$T/bad.conf"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"client-ca \"$T/cca/ca.crt\""*"client-verify required"*"client-crl \"$T/cca/crl.pem\""* ]]
}

@test "mtls: SIGHUP re-reads the CA and the CRL; a bad new CA keeps the running one" {
	cp "$T/cca/ca.crt" "$T/ca-now.pem"
	: > "$T/crl-now.pem"
	# the CRL file starts as an empty CRL of the same CA
	openssl ca -batch -config "$T/cca/ca.cnf" -gencrl -out "$T/crl-now.pem" \
	    2>/dev/null || true
	start_mtls "client-ca \"$T/ca-now.pem\"" "client-crl \"$T/crl-now.pem\""
	curl_as good
	! curl_as good "$T/other" || false
	# revoked was revoked before this CRL was made: refused from the start
	! curl_as revoked || false
	# the new CA file names the other CA too, and a new CRL revokes good
	cat "$T/cca/ca.crt" "$T/other/ca.crt" > "$T/ca-now.pem"
	openssl ca -batch -config "$T/other/ca.cnf" -gencrl \
	    -out "$T/other/crl.pem" 2>/dev/null
	openssl ca -batch -config "$T/cca/ca.cnf" -revoke "$T/cca/good.crt" \
	    2>/dev/null
	openssl ca -batch -config "$T/cca/ca.cnf" -gencrl -out "$T/cca/crl2.pem" \
	    2>/dev/null
	cat "$T/cca/crl2.pem" "$T/other/crl.pem" > "$T/crl-now.pem"
	kill -HUP "$RECLUSE_PID"
	wait_for grep -q "ready: configuration 2," "$T/recluse.log"
	# the new generation's children: the other CA in, good revoked (a
	# spare of the old one may still take a connection as it retires)
	wait_for curl_as good "$T/other"
	wait_for not_served good
	# a broken CA file: the reload fails with FILE:LINE, the config stays
	echo "not a certificate" > "$T/ca-now.pem"
	kill -HUP "$RECLUSE_PID"
	wait_for grep -q "reload failed" "$T/recluse.log"
	grep -q "reload failed, keeping the running configuration: $T/recluse.conf:9: client-ca \"$T/ca-now.pem\": no PEM CERTIFICATE" "$T/recluse.log"
	curl_as good "$T/other"
}

@test "mtls: a live child of a listener with client certificates holds none of the key's secret numbers; keyproc does" {
	PORT=$(free_port)
	{
		globals_conf
		cat <<EOC
listener "web" {
	listen 127.0.0.1:$PORT
	certificate "$T/web.crt"
	key "$T/web.key"
	backend 127.0.0.1:$BPORT
	client-ca "$T/cca/ca.crt"
	client-crl "$T/cca/crl.pem"
}
EOC
	} > "$T/recluse.conf"
	start_recluse "$T/recluse.conf" -v
	mkfifo "$T/a.in"
	openssl s_client -connect "127.0.0.1:$PORT" -CAfile "$T/ca.crt" \
	    -cert "$T/cca/good.crt" -key "$T/cca/good.key" -quiet \
	    < "$T/a.in" > "$T/a.out" 2>> "$T/s_client.log" &
	track $!
	exec 5> "$T/a.in"
	printf 'GET / HTTP/1.1\r\nHost: x\r\n\r\n' >&5
	wait_for grep -q "hello from echod" "$T/a.out"
	child=$(sed -En "s/${STAMP}keyproc: child ([0-9]*): .* signature with.*/\1/p" \
	    "$T/recluse.log" | tail -n 1)
	kp=$(keyproc_of "$RECLUSE_PID")
	[ -n "$child" ] && [ -n "$kp" ] && [ -d "/proc/$child" ]
	python3 "$HELPERS/memscan.py" "$T/web.key" "$child" "$kp" > "$T/memscan.log"
	cat "$T/memscan.log" >> "$T/recluse.log"
	[ "$(grep -c "^$child .* absent$" "$T/memscan.log")" -ge 2 ]
	! grep -q "^$child .* found$" "$T/memscan.log" || false
	for name in $(awk -v p="$kp" '$1 == p { print $2 }' "$T/memscan.log" | sort -u); do
		grep -q "^$kp $name .* found$" "$T/memscan.log"
	done
	exec 5>&-
}

@test "mtls: a CRL past its next update is warned about (recluse -n, start) and refuses clients" {
	openssl ca -batch -config "$T/cca/ca.cnf" -gencrl \
	    -crl_lastupdate 20200101000000Z -crl_nextupdate 20200102000000Z \
	    -out "$T/cca/old.crl" 2>/dev/null
	start_mtls "client-ca \"$T/cca/ca.crt\"" "client-crl \"$T/cca/old.crl\""
	run "$RECLUSE" -n -f "$T/recluse.conf"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"$T/recluse.conf:10: warning: client-crl \"$T/cca/old.crl\": the CRL of /CN=recluse client CA is out of date since Jan  2 00:00:00 2020 GMT"* ]]
	grep -q "listener web: client-crl \"$T/cca/old.crl\": the CRL of /CN=recluse client CA is out of date" "$T/recluse.log"
	! curl_as good || false
	wait_for access_lines_are 1
	[[ "$(access_line 1)" == *" client_cert=failed:crl-expired "* ]]
}

@test "mtls: an intermediate CA: its client is served, its revoked client refused" {
	# the intermediate, signed by the client CA
	client_ca "$T/int" "recluse intermediate CA"
	openssl req -new -key "$T/int/ca.key" -subj "/CN=recluse intermediate CA" \
	    -out "$T/int/ca.csr" 2>/dev/null
	printf '[ int_ext ]\nbasicConstraints = critical,CA:TRUE\nkeyUsage = keyCertSign,cRLSign\n' \
	    >> "$T/cca/ca.cnf"
	openssl ca -batch -config "$T/cca/ca.cnf" -extensions int_ext \
	    -in "$T/int/ca.csr" -out "$T/int/ca.crt" -notext 2>/dev/null
	client_cert "$T/int" alice "alice"
	client_cert "$T/int" mallory "mallory"
	openssl ca -batch -config "$T/int/ca.cnf" -revoke "$T/int/mallory.crt" \
	    2>/dev/null
	openssl ca -batch -config "$T/int/ca.cnf" -gencrl -out "$T/int/crl.pem" \
	    2>/dev/null
	cat "$T/cca/ca.crt" "$T/int/ca.crt" > "$T/cas.pem"
	cat "$T/cca/crl.pem" "$T/int/crl.pem" > "$T/crls.pem"
	start_mtls "client-ca \"$T/cas.pem\"" "client-crl \"$T/crls.pem\""
	curl_as alice "$T/int"
	! curl_as mallory "$T/int" || false
	wait_for access_lines_are 2
	[[ "$(access_line 1)" == *" client_cert=ok client_subject=O=Recluse%20Test,CN=alice "* ]]
	[[ "$(access_line 2)" == *" client_cert=failed:revoked "* ]]
}

@test "mtls with PROXY v2: the SSL TLV carries the verified client's CN, first SAN and fingerprint, checked byte for byte" {
	PPORT=$(free_port)
	python3 "$HELPERS/ppdecode.py" 127.0.0.1 "$PPORT" "$T/pp.jsonl" \
	    >> "$T/ppdecode.log" 2>&1 &
	track $!
	wait_port "$PPORT"
	BPORT=$PPORT
	start_mtls "client-ca \"$T/cca/ca.crt\"" "client-verify optional" \
	    "proxy-protocol v2"
	run curl -sS --max-time 10 --cacert "$T/ca.crt" \
	    --cert "$T/cca/good.crt" --key "$T/cca/good.key" \
	    "https://localhost:$PORT/"
	[ "$output" = ok ]
	run curl -sS --max-time 10 --cacert "$T/ca.crt" "https://localhost:$PORT/"
	[ "$output" = ok ]
	wait_for test "$(wc -l < "$T/pp.jsonl")" -ge 2
	cat "$T/pp.jsonl"
	fp=$(openssl x509 -in "$T/cca/good.crt" -noout -fingerprint -sha256 |
	    cut -d= -f2 | tr -d : | tr 'A-F' 'a-f')
	python3 - "$T/pp.jsonl" "$fp" <<'PY'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
assert all(r["errors"] == [] for r in recs), recs
withcert = [r for r in recs if r.get("ssl_cn")]
without = [r for r in recs if not r.get("ssl_cn")]
assert len(withcert) == 1 and len(without) == 1, recs
r = withcert[0]
# PP2_CLIENT_SSL | PP2_CLIENT_CERT_CONN (| CERT_SESS), verified
assert r["ssl_client"] & 0x03 == 0x03, r
assert r["ssl_verify"] == 0, r
assert r["ssl_cn"] == "good client", r
assert r["client_san"] == "good@example.org", r
assert r["client_fp"] == sys.argv[2], r
r = without[0]
assert r["ssl_client"] == 1 and r["ssl_verify"] == 1, r
assert r.get("client_fp", "") == "" and r.get("client_san", "") == "", r
PY
}
