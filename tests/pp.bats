#!/usr/bin/env bats
# The PROXY protocol: the header recluse sends its backends (v1, v2 with
# its TLVs), checked by a strict decoder (tests/helpers/ppdecode.py) and
# by a real nginx logging $proxy_protocol_addr; and the header a load
# balancer in front sends (tests/helpers/ppclient.py), read by the child
# only from proxy-protocol-from addresses.

setup() {
	load helpers
	common_setup
	make_cert web ec256
	C="$T/recluse.conf"
	PORT=$(free_port)
}

teardown() {
	common_teardown
}

# start_decoder: the decoding backend on 127.0.0.1:$BPORT, its records in
# $T/pp.jsonl.
start_decoder() {
	BPORT=$(free_port)
	python3 "$HELPERS/ppdecode.py" 127.0.0.1 "$BPORT" "$T/pp.jsonl" \
	    >> "$T/ppdecode.log" 2>&1 &
	track $!
	wait_port "$BPORT"
}

# pp_conf VERSION [LINES...]: a listener on 127.0.0.1 and ::1 port $PORT,
# backend $BPORT, sending PROXY VERSION, with more listener LINES.
pp_conf() {
	local v=$1 l
	shift
	{
		globals_conf
		echo "timeout handshake 3"
		echo 'listener "web" {'
		echo "	listen 127.0.0.1:$PORT"
		echo "	listen [::1]:$PORT"
		echo "	certificate \"$T/web.crt\""
		echo "	key \"$T/web.key\""
		echo "	backend 127.0.0.1:$BPORT"
		[ "$v" = none ] || echo "	proxy-protocol $v"
		for l; do echo "	$l"; done
		echo "}"
	} > "$C"
}

# field N KEY: KEY of the Nth record of $T/pp.jsonl ("" if absent).
field() {
	python3 -c 'import json, sys
d = json.loads(open(sys.argv[1]).read().splitlines()[int(sys.argv[2]) - 1])
v = d.get(sys.argv[3], "")
print(json.dumps(v) if isinstance(v, list) else v)' "$T/pp.jsonl" "$1" "$2"
}

# records N: the decoder has written N records.
records() {
	[ "$(wc -l < "$T/pp.jsonl" 2>/dev/null || echo 0)" -ge "$1" ]
}

# get URL [CURL ARGS...]: an HTTPS request through recluse; the body out.
get() {
	curl -sS --max-time 10 --cacert "$T/ca.crt" "$@"
}

# access_line N: the Nth access line of the log.
access_line() {
	grep " listener=web " "$T/recluse.log" | grep -v ": handshake" |
	    sed -n "${1}p"
}

@test "PROXY v2 to the backend: addresses, AUTHORITY and SSL TLVs, byte for byte" {
	start_decoder
	pp_conf v2
	start_recluse "$C"
	run get "https://localhost:$PORT/"
	[ "$output" = ok ]
	run get -g "https://[::1]:$PORT/"
	[ "$output" = ok ]
	wait_for records 2
	wait_for test "$(grep -c ' end=' "$T/recluse.log")" -ge 2
	cat "$T/pp.jsonl"
	[ "$(field 1 errors)" = "[]" ]
	[ "$(field 2 errors)" = "[]" ]
	# IPv4: the client's own port, the listener's address
	line=$(grep "client=127.0.0.1:" "$T/recluse.log" | grep " end=")
	sport=$(echo "$line" | sed -E 's/.*client=127\.0\.0\.1:([0-9]+) .*/\1/')
	cipher=$(echo "$line" | sed -E 's/.* cipher=([^ ]+) .*/\1/')
	n=1
	[ "$(field 1 src)" = 127.0.0.1 ] || n=2
	m=$((3 - n))
	[ "$(field $n command)" = PROXY ]
	[ "$(field $n family)" = TCP4 ]
	[ "$(field $n src)" = 127.0.0.1 ]
	[ "$(field $n sport)" = "$sport" ]
	[ "$(field $n dst)" = 127.0.0.1 ]
	[ "$(field $n dport)" = "$PORT" ]
	[ "$(field $n authority)" = localhost ]
	[ "$(field $n alpn)" = "" ]
	[ "$(field $n ssl_client)" = 1 ]	# PP2_CLIENT_SSL, no certificate
	[ "$(field $n ssl_verify)" = 1 ]	# so not verified
	[ "$(field $n ssl_version)" = TLSv1.3 ]
	[ "$(field $n ssl_cipher)" = "$cipher" ]
	[ "$(field $n ssl_sig_alg)" = ecdsa-with-SHA256 ]
	[ "$(field $n ssl_key_alg)" = EC256 ]
	[ "$(field $n ssl_cn)" = "" ]
	[ "$(field $n request)" = "GET / HTTP/1.1" ]
	# IPv6, no SNI for an address: no AUTHORITY
	[ "$(field $m family)" = TCP6 ]
	[ "$(field $m src)" = ::1 ]
	[ "$(field $m dst)" = ::1 ]
	[ "$(field $m dport)" = "$PORT" ]
	[ "$(field $m authority)" = "" ]
	[ "$(field $m ssl_version)" = TLSv1.3 ]
	# not a proxied connection
	echo "$line" | grep -q " proxied=- "
}

@test "PROXY v2 names an RSA certificate's key and a TLS 1.2 connection" {
	make_cert web rsa2048
	start_decoder
	pp_conf v2
	start_recluse "$C"
	run get --tls-max 1.2 "https://localhost:$PORT/"
	[ "$output" = ok ]
	wait_for records 1
	cat "$T/pp.jsonl"
	[ "$(field 1 errors)" = "[]" ]
	[ "$(field 1 ssl_version)" = TLSv1.2 ]
	[ "$(field 1 ssl_cipher)" = ECDHE-RSA-AES256-GCM-SHA384 ]
	[ "$(field 1 ssl_sig_alg)" = ecdsa-with-SHA256 ]
	[ "$(field 1 ssl_key_alg)" = RSA2048 ]
}

@test "PROXY v1 to the backend: one exact line, IPv4 and IPv6" {
	start_decoder
	pp_conf v1
	start_recluse "$C"
	run get "https://localhost:$PORT/"
	[ "$output" = ok ]
	wait_for records 1
	run get -g "https://[::1]:$PORT/"
	[ "$output" = ok ]
	wait_for records 2
	wait_for test "$(grep -c ' end=' "$T/recluse.log")" -ge 2
	cat "$T/pp.jsonl"
	sport=$(grep "client=127.0.0.1:" "$T/recluse.log" | grep " end=" |
	    sed -E 's/.*client=127\.0\.0\.1:([0-9]+) .*/\1/')
	sport6=$(grep 'client=\[::1\]:' "$T/recluse.log" | grep " end=" |
	    sed -E 's/.*client=\[::1\]:([0-9]+) .*/\1/')
	[ "$(field 1 errors)" = "[]" ]
	[ "$(field 2 errors)" = "[]" ]
	want=$(printf 'PROXY TCP4 127.0.0.1 127.0.0.1 %s %s\r\n' "$sport" "$PORT" |
	    od -An -v -tx1 | tr -d ' \n')
	[ "$(field 1 raw)" = "$want" ]
	want=$(printf 'PROXY TCP6 ::1 ::1 %s %s\r\n' "$sport6" "$PORT" |
	    od -An -v -tx1 | tr -d ' \n')
	[ "$(field 2 raw)" = "$want" ]
}

# start_nginx: a test-local nginx under $T/nginx, logging the PROXY
# protocol's address: port $NPORT.
start_nginx() {
	NPORT=$(free_port)
	mkdir -p "$T/nginx/logs"
	cat > "$T/nginx/nginx.conf" <<EOC
daemon off;
master_process off;
worker_processes 1;
pid $T/nginx/nginx.pid;
error_log $T/nginx/logs/error.log;
events { worker_connections 64; }
http {
	log_format pp 'pp=\$proxy_protocol_addr port=\$proxy_protocol_port remote=\$remote_addr';
	access_log $T/nginx/logs/access.log pp;
	client_body_temp_path $T/nginx/body;
	proxy_temp_path $T/nginx/proxy;
	fastcgi_temp_path $T/nginx/fastcgi;
	uwsgi_temp_path $T/nginx/uwsgi;
	scgi_temp_path $T/nginx/scgi;
	server {
		listen 127.0.0.1:$NPORT proxy_protocol;
		location / { return 200 "ok\n"; }
	}
}
EOC
	nginx -p "$T/nginx" -e "$T/nginx/logs/error.log" \
	    -c "$T/nginx/nginx.conf" >> "$T/nginx.log" 2>&1 &
	track $!
	wait_port "$NPORT"
}

# nginx_saw N ADDR: the Nth line of nginx's access log has pp=ADDR.
nginx_saw() {
	local line
	wait_for test -s "$T/nginx/logs/access.log"
	line=$(sed -n "${1}p" "$T/nginx/logs/access.log")
	echo "nginx line $1: $line"
	[[ "$line" == "pp=$2 port="[0-9]*" remote=127.0.0.1" ]]
}

@test "proxy-protocol in a server-name block: its names get its version, or none; other names the listener's" {
	start_decoder
	HPORT=$(free_port)
	mkdir "$T/www"
	echo plain > "$T/www/plain"
	python3 -m http.server --bind 127.0.0.1 --directory "$T/www" \
	    "$HPORT" >> "$T/http.log" 2>&1 3>&- &
	track $!
	wait_port "$HPORT"
	pp_conf v2 'server-name "api.example.org" {' \
	    "	backend 127.0.0.1:$BPORT" '	proxy-protocol v1' '}' \
	    'server-name "plain.example.org" {' "	backend 127.0.0.1:$HPORT" \
	    '	proxy-protocol none' '}'
	start_recluse "$C"
	run get -k --resolve "api.example.org:$PORT:127.0.0.1" \
	    "https://api.example.org:$PORT/"
	[ "$output" = ok ]
	wait_for records 1
	run get "https://localhost:$PORT/"
	[ "$output" = ok ]
	wait_for records 2
	run get -k --resolve "plain.example.org:$PORT:127.0.0.1" \
	    "https://plain.example.org:$PORT/plain"
	[ "$output" = plain ]
	cat "$T/pp.jsonl"
	[ "$(field 1 errors)" = "[]" ]
	[ "$(field 1 version)" = 1 ]
	[ "$(field 2 errors)" = "[]" ]
	[ "$(field 2 version)" = 2 ]
	[ "$(field 2 authority)" = localhost ]
	# the plain backend got the request itself, no header before it
	grep -q '"GET /plain HTTP/1.1" 200' "$T/http.log"
	! grep -q PROXY "$T/http.log" || false
	# -nn prints the blocks' versions and reads them back
	"$RECLUSE" -nn -f "$C" > "$T/dump.conf"
	grep -q "^		proxy-protocol v1$" "$T/dump.conf"
	grep -q "^		proxy-protocol none$" "$T/dump.conf"
	"$RECLUSE" -nn -f "$T/dump.conf" > "$T/dump2.conf"
	cmp "$T/dump.conf" "$T/dump2.conf"
}

@test "nginx logs the true client address through PROXY v1 and v2, IPv4 and IPv6" {
	start_nginx
	for v in v1 v2; do
		BPORT=$NPORT
		pp_conf $v
		start_recluse "$C"
		run get "https://localhost:$PORT/"
		[ "$output" = ok ]
		run get -g "https://[::1]:$PORT/"
		[ "$output" = ok ]
		kill "$RECLUSE_PID"
		wait "$RECLUSE_PID" || true
		: > "$T/recluse.log"
	done
	cat "$T/nginx/logs/access.log"
	nginx_saw 1 127.0.0.1
	nginx_saw 2 ::1
	nginx_saw 3 127.0.0.1
	nginx_saw 4 ::1
}

@test "a load balancer's PROXY header names the client to the log, the backend and nginx" {
	start_nginx
	BPORT=$NPORT
	pp_conf v2 'proxy-protocol-from "10.0.0.0/8" "127.0.0.1"'
	start_recluse "$C"
	run python3 "$HELPERS/ppclient.py" "$T/ca.crt" 127.0.0.1 "$PORT" \
	    v1 203.0.113.7 192.0.2.1 4321 443
	[ "$output" = ok ]
	run python3 "$HELPERS/ppclient.py" "$T/ca.crt" 127.0.0.1 "$PORT" \
	    v2 2001:db8::7 2001:db8::1 4322 443 split
	[ "$output" = ok ]
	wait_for test "$(grep -c ' end=' "$T/recluse.log")" -ge 2
	grep -q "client=203.0.113.7:4321 listener=web .* proxied=127.0.0.1:[0-9]* " \
	    "$T/recluse.log"
	grep -q "client=\[2001:db8::7\]:4322 listener=web .* proxied=127.0.0.1:[0-9]* " \
	    "$T/recluse.log"
	cat "$T/nginx/logs/access.log"
	nginx_saw 1 203.0.113.7
	nginx_saw 2 2001:db8::7
	grep -q "pp=203.0.113.7 port=4321 " "$T/nginx/logs/access.log"
}

@test "a PROXY header's addresses, LOCAL and v1, reach the decoder as sent" {
	start_decoder
	pp_conf v2 'proxy-protocol-from "127.0.0.0/8"'
	start_recluse "$C"
	run python3 "$HELPERS/ppclient.py" "$T/ca.crt" 127.0.0.1 "$PORT" \
	    v1 198.51.100.9 192.0.2.80 5555 8443 split
	[ "$output" = ok ]
	wait_for records 1
	run python3 "$HELPERS/ppclient.py" "$T/ca.crt" 127.0.0.1 "$PORT" local
	[ "$output" = ok ]
	wait_for records 2
	cat "$T/pp.jsonl"
	[ "$(field 1 errors)" = "[]" ]
	[ "$(field 1 src)" = 198.51.100.9 ]
	[ "$(field 1 sport)" = 5555 ]
	[ "$(field 1 dst)" = 192.0.2.80 ]
	[ "$(field 1 dport)" = 8443 ]
	# LOCAL: the connection's own addresses
	[ "$(field 2 errors)" = "[]" ]
	[ "$(field 2 src)" = 127.0.0.1 ]
	[ "$(field 2 dport)" = "$PORT" ]
	wait_for test "$(grep -c ' end=' "$T/recluse.log")" -ge 2
	grep -q "client=198.51.100.9:5555 .* proxied=127.0.0.1:" "$T/recluse.log"
	grep -q "client=127.0.0.1:[0-9]* .* proxied=127.0.0.1:" "$T/recluse.log"
}

@test "a PROXY header from an address not in proxy-protocol-from is not read" {
	start_decoder
	pp_conf v2 'proxy-protocol-from "192.0.2.0/24" "::2"'
	start_recluse "$C"
	# its header is taken for TLS, and the handshake fails
	run python3 "$HELPERS/ppclient.py" "$T/ca.crt" 127.0.0.1 "$PORT" \
	    v1 203.0.113.7 192.0.2.1 4321 443
	[ "$status" -eq 2 ]
	# a client straight from there is served as itself
	run get "https://localhost:$PORT/"
	[ "$output" = ok ]
	wait_for records 1
	[ "$(field 1 src)" = 127.0.0.1 ]
	! grep -q "203.0.113.7" "$T/recluse.log" || false
	! grep -q "proxied=127" "$T/recluse.log" || false
}

@test "a bad, truncated or slow PROXY header closes that connection alone" {
	start_decoder
	pp_conf v1 'proxy-protocol-from "127.0.0.1" "::1"'
	start_recluse "$C"
	# a connection in the middle of its relay, through a header
	mkfifo "$T/held.in"
	sleep 300 > "$T/held.in" &
	track $!
	cat > "$T/held.py" <<'EOP'
import socket, ssl, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[2])))
s.sendall(b"PROXY TCP4 203.0.113.50 192.0.2.1 1000 443\r\n")
t = ssl.create_default_context(cafile=sys.argv[1]).wrap_socket(
    s, server_hostname="localhost")
t.sendall(b"GET /held HTTP/1.1\r\nHost: x\r\n")
print("sent", flush=True)
sys.stdin.readline()
t.sendall(b"\r\n")
print(t.recv(4096).decode().split("\r\n\r\n")[-1], flush=True)
EOP
	python3 "$T/held.py" "$T/ca.crt" "$PORT" < "$T/held.in" > "$T/held.out" 2>&1 &
	track $!
	wait_for grep -q sent "$T/held.out"
	# bad: not the grammar, a bad address or port, a bad v2 version, UDP
	set --
	for hdr in "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n" \
	    "PROXY TCP4 1.2.3.400 5.6.7.8 1 2\r\n" \
	    "PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n" \
	    "PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n" \
	    "GET / HTTP/1.0\r\n\r\n"; do
		set -- "$@" "$(printf "$hdr" | od -An -v -tx1 | tr -d ' \n')"
	done
	for hex in 0d0a0d0a000d0a515549540a3111000c 0d0a0d0a000d0a515549540a2112000c; do
		set -- "$@" "${hex}7f0000017f00000100010002"
	done
	run python3 "$HELPERS/ppclient.py" "$T/ca.crt" 127.0.0.1 "$PORT" \
	    raw "$@"
	echo "$output"
	[ "$(echo "$output" | grep -c '^closed$')" -eq 7 ]
	wait_for test "$(grep -c 'end=proxy-header-bad' "$T/recluse.log")" -ge 7
	# too long: a v1 line with no end in 107 bytes
	long=$(printf 'PROXY UNKNOWN %0100d' 0 | od -An -v -tx1 | tr -d ' \n')
	run python3 "$HELPERS/ppclient.py" "$T/ca.crt" 127.0.0.1 "$PORT" \
	    hold "$long"
	[ "$status" -eq 0 ]
	wait_for test "$(grep -c 'end=proxy-header-bad' "$T/recluse.log")" -ge 8
	# truncated: half a header, then EOF
	python3 -c 'import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"PROXY TCP4 1.2.3.4 ")
s.shutdown(socket.SHUT_WR)
s.recv(1)' "$PORT"
	wait_for grep -q "end=proxy-header-truncated" "$T/recluse.log"
	# slow: half a header, then nothing until recluse gives up (3 s)
	run python3 "$HELPERS/ppclient.py" "$T/ca.crt" 127.0.0.1 "$PORT" \
	    hold 0d0a0d0a000d0a51
	[ "$status" -eq 0 ]
	wait_for grep -q "end=proxy-header-timeout" "$T/recluse.log"
	grep -q "client=127.0.0.1:[0-9]*: PROXY header: none in time" \
	    "$T/recluse.log"
	# no header at all from an address that must send one
	run python3 "$HELPERS/ppclient.py" "$T/ca.crt" 127.0.0.1 "$PORT" none
	[ "$status" -eq 2 ]
	# the held connection lives on, and a good one still works
	! grep -q "client=203.0.113.50" "$T/recluse.log" || false
	run python3 "$HELPERS/ppclient.py" "$T/ca.crt" 127.0.0.1 "$PORT" \
	    v1 203.0.113.8 192.0.2.1 4000 443
	[ "$output" = ok ]
	wait_for grep -q "client=203.0.113.8:4000 .* proxied=127.0.0.1:" \
	    "$T/recluse.log"
	echo go > "$T/held.in"
	wait_for grep -qx ok "$T/held.out"
	wait_for grep -q "client=203.0.113.50:1000 .* proxied=127.0.0.1:" \
	    "$T/recluse.log"
	wait_for records 2
	grep -q '"request": "GET /held HTTP/1.1"' "$T/pp.jsonl"
	grep -q '"src": "203.0.113.50"' "$T/pp.jsonl"
}

@test "proxy-protocol and proxy-protocol-from: -nn prints them, bad values are FILE:LINE" {
	BPORT=$(free_port)
	pp_conf v2 'proxy-protocol-from "10.0.0.0/8" "::1" "2001:db8::/32"' \
	    'proxy-protocol-from 192.0.2.7'
	run "$RECLUSE" -nn -f "$C"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *'	proxy-protocol v2
	proxy-protocol-from "10.0.0.0/8"
	proxy-protocol-from "::1/128"
	proxy-protocol-from "2001:db8::/32"
	proxy-protocol-from "192.0.2.7/32"'* ]]
	"$RECLUSE" -nn -f "$C" > "$T/dump1.conf"
	"$RECLUSE" -nn -f "$T/dump1.conf" > "$T/dump2.conf"
	cmp "$T/dump1.conf" "$T/dump2.conf"
	for bad in "proxy-protocol v3|proxy-protocol \"v3\": v1, v2 or none" \
	    "proxy-protocol-from 10.0.0.1/8|host bits set" \
	    "proxy-protocol-from 10.0.0.0/33|prefix length too large" \
	    "proxy-protocol-from example.org|not an IPv4 or IPv6 address" \
	    "proxy-protocol-from ::1/0128|bad prefix length"; do
		pp_conf v1 "${bad%%|*}"
		line=$(grep -n -m1 -F -- "${bad%%|*}" "$C" | cut -d: -f1)
		if [ "${bad%%|*}" = "proxy-protocol v3" ]; then
			pp_conf none "${bad%%|*}"
			line=$(grep -n -m1 -F -- "${bad%%|*}" "$C" | cut -d: -f1)
		fi
		run "$RECLUSE" -n -f "$C"
		echo "$output"
		[ "$status" -eq 1 ]
		[[ "$output" == "$C:$line: "*"${bad#*|}"* ]]
	done
	pp_conf v1 "proxy-protocol v2"
	run "$RECLUSE" -n -f "$C"
	[[ "$output" == *"duplicate \"proxy-protocol\""* ]]
}
