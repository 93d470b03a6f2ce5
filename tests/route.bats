#!/usr/bin/env bats
# Routes: ALPN per listener (HTTP/2 clients to an h2c backend, others to
# an HTTP/1.1 one), server-name blocks with their own backends, and the
# parent's check of the route a child names.  Real clients (curl, nghttp)
# and real servers (nghttpd --no-tls, python3 -m http.server).

load helpers

setup() {
	common_setup
	make_cert web ec256 "*.example.org"
	PORT=$(free_port)
}

teardown() {
	common_teardown
}

# http1 NAME: a python3 HTTP/1.1 server on a free port (in BPORT) whose
# /who answers "NAME".
http1() {
	mkdir -p "$T/www-$1"
	echo "$1" > "$T/www-$1/who"
	BPORT=$(free_port)
	python3 -m http.server --bind 127.0.0.1 --directory "$T/www-$1" \
	    "$BPORT" >> "$T/http-$1.log" 2>&1 3>&- &
	track $!
	wait_port "$BPORT"
}

# h2c NAME: nghttpd --no-tls (HTTP/2 without TLS) on a free port (in
# BPORT) whose /who answers "NAME".
h2c() {
	mkdir -p "$T/www-$1"
	echo "$1" > "$T/www-$1/who"
	BPORT=$(free_port)
	nghttpd --no-tls -d "$T/www-$1" "$BPORT" >> "$T/nghttpd-$1.log" 2>&1 3>&- &
	track $!
	wait_port "$BPORT"
}

# conf BODY: one listener "web" on $PORT with the test certificate; BODY
# (lines) is the rest of the block.
conf() {
	{
		globals_conf
		cat <<EOC
listener "web" {
	listen 127.0.0.1:$PORT
	certificate "$T/web.crt"
	key "$T/web.key"
$1
}
EOC
	} > "$T/recluse.conf"
}

# get NAME [CURL ARGS...]: GET https://NAME:$PORT/who through recluse,
# NAME resolved to 127.0.0.1, verified against the test CA.
get() {
	local name=$1
	shift
	curl -sS --max-time 10 --cacert "$T/ca.crt" \
	    --resolve "$name:$PORT:127.0.0.1" "$@" "https://$name:$PORT/who"
}

# access N: wait for the Nth access line; print it.
access() {
	wait_for sh -c "[ \$(grep -c 'listener=web ' '$T/recluse.log') -ge $1 ]"
	grep 'listener=web ' "$T/recluse.log" | sed -n "${1}p"
}

@test "alpn: curl --http2 and nghttp reach the h2c backend, HTTP/1.1 clients the other one" {
	h2c h2; H2=$BPORT
	http1 one; ONE=$BPORT
	conf "	alpn \"h2\" \"http/1.1\"
	backend 127.0.0.1:$ONE
	backend 127.0.0.1:$H2 alpn \"h2\""
	start_recluse "$T/recluse.conf"

	run get www.example.org --http2 -w ' %{http_version}'
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$output" = $'h2\n 2' ]
	line=$(access 1)
	echo "$line"
	[[ "$line" == *" backend=127.0.0.1:$H2 alpn=h2 "* ]]

	run timeout 10 nghttp -v "https://127.0.0.1:$PORT/who"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"The negotiated protocol: h2"* ]]
	[[ "$output" == *$'\nh2'* ]]
	[[ "$(access 2)" == *" backend=127.0.0.1:$H2 alpn=h2 "* ]]

	run get www.example.org --http1.1 -w ' %{http_version}'
	[ "$status" -eq 0 ]
	[[ "$output" == $'one\n 1'* ]]	# HTTP/1.x (python answers 1.0)
	[[ "$(access 3)" == *" backend=127.0.0.1:$ONE alpn=http/1.1 "* ]]

	# no ALPN at all: the unqualified backend, and "-"
	run get www.example.org --http1.1 --no-alpn
	[ "$status" -eq 0 ]
	[ "$output" = "one" ]
	[[ "$(access 4)" == *" backend=127.0.0.1:$ONE alpn=- "* ]]
}

@test "alpn: a listener without alpn agrees on no protocol, as before" {
	http1 one; ONE=$BPORT
	conf "	backend 127.0.0.1:$ONE"
	start_recluse "$T/recluse.conf"
	run get www.example.org --http2 -w ' %{http_version}'
	[ "$status" -eq 0 ]
	[[ "$output" == $'one\n 1'* ]]	# HTTP/1.x (python answers 1.0)
	[[ "$(access 1)" == *" alpn=- "* ]]
	# nghttp exits 0 all the same: it says so, and gets nothing
	run timeout 10 nghttp "https://127.0.0.1:$PORT/who"
	echo "$output"
	[[ "$output" == *"HTTP/2 protocol was not selected"* ]]
	[[ "$output" != *one* ]]
}

@test "server-name: exact and wildcard names have their own backends, any other name the listener's" {
	http1 default; DEF=$BPORT
	http1 api; API=$BPORT
	http1 wild; WILD=$BPORT
	DEAD=$(free_port)
	conf "	backend 127.0.0.1:$DEF
	server-name \"api.example.org\" {
		backend 127.0.0.1:$DEAD
		backend 127.0.0.1:$API
	}
	server-name \"*.example.org\" {
		backend 127.0.0.1:$WILD
	}"
	start_recluse "$T/recluse.conf"

	# the exact name, through a dead first backend (failover)
	run get api.example.org
	[ "$status" -eq 0 ]
	[ "$output" = "api" ]
	[[ "$(access 1)" == *" sni=api.example.org backend=127.0.0.1:$API "* ]]
	grep -q "backend 127.0.0.1:$DEAD: Connection refused" "$T/recluse.log"
	# case does not matter
	run get API.Example.ORG
	[ "$status" -eq 0 ]
	[ "$output" = "api" ]
	# the wildcard: one label
	run get www.example.org
	[ "$status" -eq 0 ]
	[ "$output" = "wild" ]
	# two labels, or another name, or none: the listener's backends
	run get a.b.example.org -k
	[ "$status" -eq 0 ]
	[ "$output" = "default" ]
	run get localhost
	[ "$status" -eq 0 ]
	[ "$output" = "default" ]
	run curl -sS --max-time 10 --cacert "$T/ca.crt" \
	    "https://127.0.0.1:$PORT/who"
	[ "$status" -eq 0 ]
	[ "$output" = "default" ]
	[[ "$(access 6)" == *" sni=- backend=127.0.0.1:$DEF "* ]]
}

@test "server-name with alpn: h2 for one name goes to its own h2c backend" {
	h2c h2; H2=$BPORT
	http1 api; API=$BPORT
	http1 default; DEF=$BPORT
	conf "	alpn \"h2\" \"http/1.1\"
	backend 127.0.0.1:$DEF
	server-name \"api.example.org\" {
		backend 127.0.0.1:$API
		backend 127.0.0.1:$H2 alpn \"h2\"
	}"
	start_recluse "$T/recluse.conf"
	run get api.example.org --http2
	[ "$status" -eq 0 ]
	[ "$output" = "h2" ]
	run get api.example.org --http1.1
	[ "$status" -eq 0 ]
	[ "$output" = "api" ]
	# the listener's own route has no h2 backend: its unqualified one
	run get www.example.org --http1.1
	[ "$status" -eq 0 ]
	[ "$output" = "default" ]
	[[ "$(access 3)" == *" backend=127.0.0.1:$DEF alpn=http/1.1 "* ]]
}

@test "alpn: a client offering none of the listener's protocols agrees on none, and is served" {
	http1 one; ONE=$BPORT
	conf "	alpn \"h2\"
	backend 127.0.0.1:$ONE"
	start_recluse "$T/recluse.conf"
	run get www.example.org --http1.1
	[ "$status" -eq 0 ]
	[ "$output" = "one" ]
	[[ "$(access 1)" == *" backend=127.0.0.1:$ONE alpn=- "* ]]
}

@test "server-name: a block added by a reload routes new connections, an open one stays" {
	http1 default; DEF=$BPORT
	http1 api; API=$BPORT
	conf "	backend 127.0.0.1:$DEF"
	start_recluse "$T/recluse.conf"
	run get api.example.org
	[ "$output" = "default" ]
	hold_conn held "$PORT"
	wait_for sh -c "ss -Htn state established '( dport = :$PORT )' | grep -q ."
	conf "	backend 127.0.0.1:$DEF
	server-name \"api.example.org\" {
		backend 127.0.0.1:$API
	}"
	kill -HUP "$RECLUSE_PID"
	wait_for grep -q "ready: configuration 2," "$T/recluse.log"
	run get api.example.org
	[ "$output" = "api" ]
	run get www.example.org
	[ "$output" = "default" ]
	kill -0 "$HELD_PID"
}

@test "config: alpn, backend alpn and server-name errors say FILE:LINE" {
	check() {
		conf "$1"
		run "$RECLUSE" -n -f "$T/recluse.conf"
		echo "$output"
		[ "$status" -ne 0 ]
		[[ "$output" == *"$T/recluse.conf:$2: $3"* ]]
	}
	check '	alpn "h2"
	backend 127.0.0.1:1 alpn "h2"' 4 'listener "web" has no backend without an alpn qualifier'
	check '	alpn "http/1.1"
	backend 127.0.0.1:1
	backend 127.0.0.1:2 alpn "h2"' 10 'backend alpn "h2": not a protocol of the listener'
	check '	alpn "h2" "h2"' 8 'alpn protocol "h2" given twice'
	check '	alpn "h2,x"' 8 'bad alpn protocol'
	check '	backend 127.0.0.1:1
	server-name "*x.example.org" {
	}' 9 'bad server-name "*x.example.org"'
	check '	backend 127.0.0.1:1
	server-name "a.example.org" {
	}' 9 'server-name "a.example.org" has no backend'
	check '	backend 127.0.0.1:1
	server-name "a.example.org" {
		certificate "/x"
	}' 10 '"certificate" is not allowed in a server-name block'
	check '	backend 127.0.0.1:1
	server-name "a.example.org" {
		backend 127.0.0.1:2
	}
	server-name "A.example.org" {
		backend 127.0.0.1:2
	}' 12 'duplicate server-name "A.example.org" (first at line 9)'
	check '	alpn "h2"
	backend 127.0.0.1:1 alpn h2 x' 9 'bad backend'
}

@test "config: recluse -nn prints alpn, qualifiers and server-name blocks, and reads them back" {
	conf '	alpn "h2" "http/1.1"
	server-name "*.example.org" {
		backend 127.0.0.1:3 alpn "h2"
		backend 127.0.0.1:4
	}
	backend 127.0.0.1:1
	backend 127.0.0.1:2 alpn "h2"'
	"$RECLUSE" -nn -f "$T/recluse.conf" > "$T/dump.conf"
	cat "$T/dump.conf"
	grep -qx $'\talpn "h2" "http/1.1"' "$T/dump.conf"
	grep -qx $'\tbackend 127.0.0.1:2 alpn "h2"' "$T/dump.conf"
	grep -qx $'\tserver-name "\\*.example.org" {' "$T/dump.conf"
	grep -qx $'\t\tbackend 127.0.0.1:3 alpn "h2"' "$T/dump.conf"
	"$RECLUSE" -nn -f "$T/dump.conf" > "$T/dump2.conf"
	cmp "$T/dump.conf" "$T/dump2.conf"
}

@test "server-name with its own alpn: h2 for one name, HTTP/1.1 only for another, on one listener" {
	h2c h2; H2=$BPORT
	http1 api; API=$BPORT
	http1 old; OLD=$BPORT
	http1 pref; PREF=$BPORT
	conf "	alpn \"h2\" \"http/1.1\"
	backend 127.0.0.1:$API
	server-name \"api.example.org\" {
		backend 127.0.0.1:$API
		backend 127.0.0.1:$H2 alpn \"h2\"
	}
	server-name \"old.example.org\" {
		alpn \"http/1.1\"
		backend 127.0.0.1:$OLD
		backend 127.0.0.1:$H2 alpn \"h2\"
	}
	server-name \"pref.example.org\" {
		alpn \"http/1.1\" \"h2\"
		backend 127.0.0.1:$PREF
	}"
	start_recluse "$T/recluse.conf"

	# the listener's list: HTTP/2 to the h2c backend
	run get api.example.org --http2 -w ' %{http_version}'
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$output" = $'h2\n 2' ]
	[[ "$(access 1)" == *" sni=api.example.org backend=127.0.0.1:$H2 alpn=h2 "* ]]

	# its own list, HTTP/1.1 only: curl --http2 falls back
	run get old.example.org --http2 -w ' %{http_version}'
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == $'old\n 1'* ]]
	[[ "$(access 2)" == *" sni=old.example.org backend=127.0.0.1:$OLD alpn=http/1.1 "* ]]
	# a client offering only h2 agrees on nothing there, and is served
	run timeout 10 openssl s_client -connect "127.0.0.1:$PORT" \
	    -servername old.example.org -alpn h2 -CAfile "$T/ca.crt" </dev/null
	echo "$output"
	[[ "$output" == *"No ALPN negotiated"* ]]
	run timeout 10 openssl s_client -connect "127.0.0.1:$PORT" \
	    -servername api.example.org -alpn h2 -CAfile "$T/ca.crt" </dev/null
	[[ "$output" == *"ALPN protocol: h2"* ]]

	# its own order of preference: http/1.1 first
	run get pref.example.org --http2 -w ' %{http_version}'
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == $'pref\n 1'* ]]
	run timeout 10 openssl s_client -connect "127.0.0.1:$PORT" \
	    -servername pref.example.org -alpn h2 -CAfile "$T/ca.crt" </dev/null
	[[ "$output" == *"ALPN protocol: h2"* ]]

	# no SNI (nghttp to an address): the listener's list, h2
	run timeout 10 nghttp -v "https://127.0.0.1:$PORT/who"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"The negotiated protocol: h2"* ]]
}

@test "config: a server-name block's alpn is checked, printed by -nn and read back" {
	check() {
		conf "$1"
		run "$RECLUSE" -n -f "$T/recluse.conf"
		echo "$output"
		[ "$status" -ne 0 ]
		[[ "$output" == *"$T/recluse.conf:$2: $3"* ]]
	}
	check '	alpn "http/1.1"
	backend 127.0.0.1:1
	server-name "a.example.org" {
		alpn "h2"
		backend 127.0.0.1:2
	}' 11 'alpn "h2" of server-name "a.example.org": not a protocol of the listener'"'"'s alpn'
	check '	backend 127.0.0.1:1
	server-name "a.example.org" {
		alpn "h2"
		alpn "h2"
		backend 127.0.0.1:2
	}' 11 'duplicate "alpn"'
	conf '	alpn "h2" "http/1.1"
	backend 127.0.0.1:1
	server-name "a.example.org" {
		alpn "http/1.1" "h2"
		backend 127.0.0.1:2
	}'
	"$RECLUSE" -nn -f "$T/recluse.conf" > "$T/dump.conf"
	cat "$T/dump.conf"
	grep -qx $'\t\talpn "http/1.1" "h2"' "$T/dump.conf"
	"$RECLUSE" -nn -f "$T/dump.conf" > "$T/dump2.conf"
	cmp "$T/dump.conf" "$T/dump2.conf"
}
