#!/usr/bin/env bats
# The configuration file: grammar, load-time checks, normalised output.
# Mostly "recluse -n"; the key file checks also start the daemon, to see
# the same refusals at start and on reload.

setup() {
	load helpers
	common_setup
	make_cert web ec256
	C="$T/recluse.conf"
}

teardown() {
	common_teardown
}

# good_conf: the test globals and one listener.
good_conf() {
	globals_conf
	listener_conf
}

# line_of FILE TEXT: the number of the first line of FILE that holds TEXT.
line_of() {
	grep -n -m1 -F -- "$2" "$1" | cut -d: -f1
}

# accepted FILE: recluse -n takes FILE.
accepted() {
	run "$RECLUSE" -n -f "$1"
	echo "status $status: $output"
	[ "$status" -eq 0 ]
}

# refused_in CONF FILE LINE TEXT...: recluse -n -f CONF exits 1 with one
# message that starts with "FILE:LINE: " ("FILE: " when LINE is 0) and holds
# every TEXT.
refused_in() {
	local conf=$1 file=$2 line=$3 prefix w
	shift 3
	prefix="$file:$line: "
	[ "$line" = 0 ] && prefix="$file: "
	run "$RECLUSE" -n -f "$conf"
	echo "status $status: $output"
	echo "expected: $prefix$*"
	[ "$status" -eq 1 ]
	[ "${#lines[@]}" -eq 1 ]
	[[ "$output" == "$prefix"* ]]
	for w in "$@"; do
		[[ "$output" == *"$w"* ]]
	done
}

# refused CONF LINE TEXT...: refused_in with the message naming CONF.
refused() {
	refused_in "$1" "$@"
}

# --- valid files ---

@test "a complete file with RSA-2048 and ECDSA P-256 certificates passes" {
	make_cert rsa rsa2048
	{
		globals_conf
		cat <<EOC
max-connections 1000
timeout handshake 5
timeout idle 60
timeout connect 2
timeout drain 10

listener "ec" {
	listen 127.0.0.1:8443
	listen [::1]:8443
	certificate "$T/web.crt"
	key "$T/web.key"
	protocols "tlsv1.2,tlsv1.3"
	ciphers "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384"
	backend 127.0.0.1:8080
	backend [::1]:8080
	backend unix "$T/app.sock"
}

listener "rsa" {
	listen localhost:9443
	certificate "$T/rsa.crt"
	key "$T/rsa.key"
	backend localhost:8080
}
EOC
	} > "$C"
	accepted "$C"
}

@test "comments, bare words and quoted strings with escapes are read" {
	mkdir "$T/odd \"dir\\"
	cp "$T/web.crt" "$T/odd \"dir\\/web.crt"
	cat > "$C" <<EOC
# a comment line
user $TEST_USER		# a bare word and a trailing comment
keyproc-user "$TEST_KEYUSER"
chroot "$T/empty"#no space before the comment
   # an indented comment

listener web {   # the name bare too
	listen 127.0.0.1:8443
	certificate "$T/odd \\"dir\\\\/web.crt"
	key "$T/web.key" # "not a string"
	backend 127.0.0.1:8080 }
EOC
	run "$RECLUSE" -nn -f "$C"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"user \"$TEST_USER\""* ]]
	[[ "$output" == *"certificate \"$T/odd \\\"dir\\\\/web.crt\""* ]]
}

@test "-nn output read back gives the same output" {
	{
		globals_conf
		cat <<EOC
timeout drain 7
listener "web" {
	listen localhost:8444
	listen *:9443
	listen [::1]:8443
	certificate "$T/web.crt"
	key "$T/web.key"
	protocols "secure"
	backend 127.0.0.1:8080
	backend unix "/run/app \"1\".sock"
}
EOC
		listener_conf second 127.0.0.1:7443
	} > "$C"
	run "$RECLUSE" -nn -f "$C"
	echo "$output"
	[ "$status" -eq 0 ]
	"$RECLUSE" -nn -f "$C" > "$T/dump1.conf"
	"$RECLUSE" -nn -f "$T/dump1.conf" > "$T/dump2.conf"
	diff -u "$T/dump1.conf" "$T/dump2.conf"
	# Defaults are printed, values normalised, names kept as written.
	grep -qx 'timeout drain 7' "$T/dump1.conf"
	grep -qx 'timeout drain-idle 5' "$T/dump1.conf"
	grep -qx 'timeout idle 300' "$T/dump1.conf"
	grep -qx 'max-connections 4096' "$T/dump1.conf"
	grep -qx '	protocols "tlsv1.2,tlsv1.3"' "$T/dump1.conf"
	grep -q '^	listen localhost:8444' "$T/dump1.conf"
	grep -qx '	listen \[::1\]:8443' "$T/dump1.conf"
	grep -qx '	backend unix "/run/app \\"1\\".sock"' "$T/dump1.conf"
	grep -qx 'listener "second" {' "$T/dump1.conf"
}

@test "relative paths are relative to the file that holds them" {
	mkdir -p "$T/etc/sites" "$T/elsewhere"
	cp "$T/web.crt" "$T/web.key" "$T/etc/sites/"
	globals_conf > "$T/etc/recluse.conf"
	echo 'include "sites/web.conf"' >> "$T/etc/recluse.conf"
	cat > "$T/etc/sites/web.conf" <<EOC
listener "web" {
	listen 127.0.0.1:8443
	certificate "web.crt"
	key "web.key"
	backend unix "app.sock"
}
EOC
	cd "$T/elsewhere"
	here=$(pwd -P)
	run "$RECLUSE" -nn -f ../etc/recluse.conf
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"certificate \"$here/../etc/sites/web.crt\""* ]]
	[[ "$output" == *"backend unix \"$here/../etc/sites/app.sock\""* ]]
}

@test "include reads globals and listeners from other files" {
	mkdir "$T/conf.d"
	echo 'include "conf.d/globals.conf"' > "$C"
	echo 'include "conf.d/web.conf"' >> "$C"
	globals_conf > "$T/conf.d/globals.conf"
	echo 'max-connections 77' >> "$T/conf.d/globals.conf"
	listener_conf > "$T/conf.d/web.conf"
	run "$RECLUSE" -nn -f "$C"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"max-connections 77"* ]]
	[[ "$output" == *'listener "web" {'* ]]
}

# --- grammar ---

@test "an unknown keyword is refused at its line" {
	good_conf > "$C"
	sed -i 's/^\tlisten /\tlisen /' "$C"
	refused "$C" "$(line_of "$C" lisen)" 'unknown keyword "lisen"'
}

@test "a keyword outside its block is refused" {
	good_conf > "$C"
	echo "certificate \"$T/web.crt\"" >> "$C"
	refused "$C" "$(wc -l < "$C")" '"certificate" is not allowed at top level'
	good_conf > "$C"
	sed -i "s|^\tbackend |\tuser nobody\n&|" "$C"
	refused "$C" "$(line_of "$C" 'user nobody')" \
	    '"user" is not allowed in a listener block'
}

@test "a block that is never closed is refused at its opening line" {
	good_conf > "$C"
	sed -i '$d' "$C"
	refused "$C" "$(line_of "$C" listener)" 'unbalanced braces' \
	    'never closed'
}

@test "a closing brace without a block is refused" {
	good_conf > "$C"
	echo '}' >> "$C"
	refused "$C" "$(wc -l < "$C")" 'unbalanced braces'
}

@test "a listener without a brace, or a brace after a plain keyword, is refused" {
	good_conf > "$C"
	sed -i 's/^listener "web" {$/listener "web"\n{/' "$C"
	refused "$C" "$(line_of "$C" listener)" 'expected "{"'
	good_conf > "$C"
	echo 'max-connections 5 {' >> "$C"
	refused "$C" "$(wc -l < "$C")" 'unexpected "{"'
}

@test "missing and extra arguments are refused" {
	good_conf > "$C"
	sed -i 's/^\tlisten .*/\tlisten/' "$C"
	refused "$C" "$(line_of "$C" $'\tlisten')" 'missing argument to "listen"'
	good_conf > "$C"
	sed -i 's/^\tlisten .*/\tlisten 127.0.0.1:1 127.0.0.1:2/' "$C"
	refused "$C" "$(line_of "$C" $'\tlisten')" 'too many arguments to "listen"'
}

@test "an unterminated string or an unknown escape is refused" {
	good_conf > "$C"
	sed -i 's/^\tkey "\(.*\)"$/\tkey "\1/' "$C"
	refused "$C" "$(line_of "$C" $'\tkey')" 'unterminated string'
	good_conf > "$C"
	sed -i 's/^\tkey "/\tkey "\\n/' "$C"
	refused "$C" "$(line_of "$C" $'\tkey')" 'bad escape'
}

@test "an empty string is refused" {
	good_conf > "$C"
	sed -i 's/^user .*/user ""/' "$C"
	refused "$C" 1 'empty value for "user"'
}

@test "a bad listener name is refused" {
	{ globals_conf; listener_conf 'my web'; } > "$C"
	refused "$C" "$(line_of "$C" listener)" 'bad listener name "my web"'
}

# --- values ---

@test "a single-valued keyword given twice is refused at the second" {
	good_conf > "$C"
	sed -i "s|^\tkey .*|&\n&|" "$C"
	refused "$C" "$(grep -n '^.key ' "$C" | tail -n 1 | cut -d: -f1)" \
	    'duplicate "key"'
	good_conf > "$C"
	echo "user \"$TEST_USER\"" >> "$C"
	refused "$C" "$(wc -l < "$C")" 'duplicate "user"'
	good_conf > "$C"
	printf 'timeout idle 5\ntimeout idle 6\n' >> "$C"
	refused "$C" "$(wc -l < "$C")" 'duplicate "timeout idle"'
	good_conf > "$C"
	printf 'max-connections 5\nmax-connections 6\n' >> "$C"
	refused "$C" "$(wc -l < "$C")" 'duplicate "max-connections"'
	good_conf > "$C"
	sed -i 's|^\tbackend |\tprotocols tlsv1.3\n\tprotocols tlsv1.2\n&|' "$C"
	refused "$C" "$(line_of "$C" 'protocols tlsv1.2')" 'duplicate "protocols"'
}

@test "max-connections out of 1..1000000 or not a number is refused" {
	for v in 0 1000001 -1 12x 99999999999999999999; do
		good_conf > "$C"
		echo "max-connections $v" >> "$C"
		refused "$C" "$(wc -l < "$C")" "max-connections \"$v\" is"
	done
	good_conf > "$C"
	echo "max-connections 1000000" >> "$C"
	accepted "$C"
}

@test "a listener's own max-connections: printed, defaulting to the global one, never above it" {
	{
		globals_conf
		echo "max-connections 100"
		listener_conf a 127.0.0.1:8443
		listener_conf b 127.0.0.1:8444
	} > "$C"
	sed -i '/^listener "a" {/a\	max-connections 7' "$C"
	run "$RECLUSE" -nn -f "$C"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(grep -cx '	max-connections 7' <<< "$output")" -eq 1 ]
	[ "$(grep -cx '	max-connections 100' <<< "$output")" -eq 1 ]
	grep -qx 'max-connections 100' <<< "$output"
	"$RECLUSE" -nn -f "$C" > "$T/dump1.conf"
	"$RECLUSE" -nn -f "$T/dump1.conf" > "$T/dump2.conf"
	diff -u "$T/dump1.conf" "$T/dump2.conf"
	# a top-level line after a listener block is the global one again
	echo "timeout idle 9" >> "$C"
	sed -i '/^max-connections 100$/d' "$C"
	echo "max-connections 50" >> "$C"
	run "$RECLUSE" -nn -f "$C"
	[ "$status" -eq 0 ]
	grep -qx 'max-connections 50' <<< "$output"
	grep -qx '	max-connections 7' <<< "$output"
	# above the global one, given twice, out of range: refused
	sed -i 's/^max-connections 50$/max-connections 5/' "$C"
	refused "$C" "$(line_of "$C" '	max-connections 7')" \
	    'max-connections 7 of listener "a" is above the global max-connections 5'
	sed -i '/^max-connections 5$/d' "$C"
	sed -i '/^listener "a" {/a\	max-connections 9999' "$C"
	refused "$C" "$(line_of "$C" '	max-connections 7')" 'duplicate "max-connections"'
	sed -i '/	max-connections 9999/d; s/	max-connections 7/	max-connections 5000/' "$C"
	refused "$C" "$(line_of "$C" '	max-connections 5000')" \
	    'max-connections 5000 of listener "a" is above the global max-connections 4096 (default)'
	sed -i 's/	max-connections 5000/	max-connections 0/' "$C"
	refused "$C" "$(line_of "$C" '	max-connections 0')" 'max-connections "0" is'
}

@test "a timeout out of 1..86400 or of an unknown kind is refused" {
	for kind in handshake idle connect drain; do
		for v in 0 86401 1s; do
			good_conf > "$C"
			echo "timeout $kind $v" >> "$C"
			refused "$C" "$(wc -l < "$C")" "timeout $kind \"$v\" is"
		done
	done
	good_conf > "$C"
	echo "timeout linger 5" >> "$C"
	refused "$C" "$(wc -l < "$C")" 'unknown timeout "linger"'
}

@test "timeout drain-idle: 5 by default, 0 (off) to 86400, printed by -nn" {
	good_conf > "$C"
	run "$RECLUSE" -nn -f "$C"
	[ "$status" -eq 0 ]
	grep -qx 'timeout drain-idle 5' <<< "$output"
	for v in 0 1 86400; do
		good_conf > "$C"
		echo "timeout drain-idle $v" >> "$C"
		run "$RECLUSE" -nn -f "$C"
		echo "$output"
		[ "$status" -eq 0 ]
		grep -qx "timeout drain-idle $v" <<< "$output"
		# The dump reads back the same.
		"$RECLUSE" -nn -f "$C" > "$T/dump1.conf"
		"$RECLUSE" -nn -f "$T/dump1.conf" > "$T/dump2.conf"
		diff -u "$T/dump1.conf" "$T/dump2.conf"
	done
	for v in -1 86401 2s; do
		good_conf > "$C"
		echo "timeout drain-idle $v" >> "$C"
		refused "$C" "$(wc -l < "$C")" "timeout drain-idle \"$v\" is" \
		    "(0 to 86400 seconds, 0 for off)"
	done
	good_conf > "$C"
	printf 'timeout drain-idle 0\ntimeout drain-idle 3\n' >> "$C"
	refused "$C" "$(wc -l < "$C")" 'duplicate "timeout drain-idle"'
}

@test "port 0, a port over 65535 or no port is refused" {
	for addr in 127.0.0.1:0 127.0.0.1:65536 '[::1]:0' 127.0.0.1 \
	    127.0.0.1:http; do
		{ globals_conf; listener_conf web "$addr"; } > "$C"
		refused "$C" "$(line_of "$C" $'\tlisten')" "bad address \"$addr\""
	done
	{ globals_conf; listener_conf web 127.0.0.1:65536; } > "$C"
	refused "$C" "$(line_of "$C" $'\tlisten')" 'port "65536" is too large'
	{ globals_conf; listener_conf web 127.0.0.1:0; } > "$C"
	refused "$C" "$(line_of "$C" $'\tlisten')" 'port "0" is too small'
	good_conf > "$C"
	sed -i 's/^\tbackend .*/\tbackend 127.0.0.1:0/' "$C"
	refused "$C" "$(line_of "$C" backend)" 'port "0" is too small'
	{ globals_conf; listener_conf web 127.0.0.1:65535; } > "$C"
	accepted "$C"
}

@test "an IPv6 address without brackets is refused" {
	{ globals_conf; listener_conf web ::1:8443; } > "$C"
	refused "$C" "$(line_of "$C" $'\tlisten')" 'in brackets'
}

@test "an unresolvable host is refused" {
	{ globals_conf; listener_conf web nosuchhost.invalid:8443; } > "$C"
	refused "$C" "$(line_of "$C" $'\tlisten')" \
	    'cannot resolve "nosuchhost.invalid"'
	good_conf > "$C"
	sed -i 's/^\tbackend .*/\tbackend nosuchhost.invalid:80/' "$C"
	refused "$C" "$(line_of "$C" backend)" \
	    'cannot resolve "nosuchhost.invalid"'
}

@test "a wildcard is refused as a backend" {
	good_conf > "$C"
	sed -i 's/^\tbackend .*/\tbackend *:80/' "$C"
	refused "$C" "$(line_of "$C" backend)" '"*" is only for listen'
}

@test "a UNIX backend path too long for a socket is refused" {
	good_conf > "$C"
	sed -i "s|^\tbackend .*|\tbackend unix \"/$(printf 'x%.0s' {1..120})\"|" "$C"
	refused "$C" "$(line_of "$C" backend)" 'path longer than'
	good_conf > "$C"
	sed -i 's|^\tbackend .*|\tbackend tcp "/run/x"|' "$C"
	refused "$C" "$(line_of "$C" backend)" 'bad backend'
}

@test "protocols other than TLS 1.2 and 1.3 are refused" {
	good_conf > "$C"
	sed -i 's|^\tbackend |\tprotocols "tlsv1.0,tlsv1.2"\n&|' "$C"
	refused "$C" "$(line_of "$C" protocols)" 'only tlsv1.2 and tlsv1.3'
	good_conf > "$C"
	sed -i 's|^\tbackend |\tprotocols "tlsv1.4"\n&|' "$C"
	refused "$C" "$(line_of "$C" protocols)" 'not a protocol list'
	good_conf > "$C"
	sed -i 's|^\tbackend |\tprotocols "tlsv1.3"\n&|' "$C"
	accepted "$C"
}

@test "ciphers that are not ECDHE suites are refused" {
	good_conf > "$C"
	sed -i 's|^\tbackend |\tciphers "ECDHE-RSA-AES128-GCM-SHA256:AES128-GCM-SHA256"\n&|' "$C"
	refused "$C" "$(line_of "$C" ciphers)" '"AES128-GCM-SHA256" is not an ECDHE suite'
	good_conf > "$C"
	sed -i 's|^\tbackend |\tciphers "ECDHE-ECDSA-NULL-SHA"\n&|' "$C"
	refused "$C" "$(line_of "$C" ciphers)" 'is not an ECDHE suite'
	good_conf > "$C"
	sed -i 's|^\tbackend |\tciphers "ECDHE-FOO-BAR"\n&|' "$C"
	refused "$C" "$(line_of "$C" ciphers)" 'unknown suite "ECDHE-FOO-BAR"'
}

# --- listeners ---

@test "no listener is refused" {
	globals_conf > "$C"
	refused "$C" 0 'no listener'
}

@test "two listeners with one name are refused" {
	{ globals_conf; listener_conf web 127.0.0.1:8443;
	    listener_conf web 127.0.0.1:9443; } > "$C"
	refused "$C" "$(grep -n '^listener' "$C" | tail -n 1 | cut -d: -f1)" \
	    'duplicate listener "web"' "first at $C:4"
}

@test "two listeners on one address are refused" {
	{ globals_conf; listener_conf a 127.0.0.1:8443;
	    listener_conf b 127.0.0.1:8443; } > "$C"
	refused "$C" "$(grep -n 'listen 127' "$C" | tail -n 1 | cut -d: -f1)" \
	    'address 127.0.0.1:8443 is already used by listener "a"'
	{ globals_conf; listener_conf a '[::1]:8443';
	    listener_conf b '[::1]:8443'; } > "$C"
	refused "$C" "$(grep -n 'listen ' "$C" | tail -n 1 | cut -d: -f1)" \
	    'address [::1]:8443 is already used by listener "a"'
}

@test "two listen lines on one resolved address are refused" {
	good_conf > "$C"
	sed -i 's|^\tcertificate |\tlisten localhost:8443\n&|' "$C"
	refused "$C" "$(line_of "$C" localhost)" \
	    'address 127.0.0.1:8443 is already used by listener "web"'
	good_conf > "$C"
	sed -i 's|^\tcertificate |\tlisten 0.0.0.0:8443\n&|' "$C"
	refused "$C" "$(line_of "$C" 0.0.0.0)" \
	    'address 0.0.0.0:8443 overlaps 127.0.0.1:8443'
	good_conf > "$C"
	sed -i 's|^\tcertificate |\tlisten *:8443\n&|' "$C"
	refused "$C" "$(line_of "$C" '*:8443')" 'overlaps 127.0.0.1:8443'
	# The same port on another address, or on IPv6, is fine.
	good_conf > "$C"
	sed -i 's|^\tcertificate |\tlisten 127.0.0.2:8443\n\tlisten [::]:8443\n&|' "$C"
	accepted "$C"
}

@test "a listener without listen, certificate, key or backend is refused at its line" {
	for kw in listen backend; do
		{ globals_conf; echo; listener_conf; } > "$C"
		sed -i "/^\t$kw /d" "$C"
		refused "$C" 5 "listener \"web\" has no"
	done
	# a key belongs to the certificate line just before it
	{ globals_conf; echo; listener_conf; } > "$C"
	sed -i "/^\tcertificate /d" "$C"
	refused "$C" "$(line_of "$C" $'\tkey')" "key \"$T/web.key\" before any certificate"
	{ globals_conf; echo; listener_conf; } > "$C"
	sed -i "/^\tkey /d" "$C"
	refused "$C" "$(line_of "$C" $'\tcertificate')" "certificate \"$T/web.crt\" has no key"
	{ globals_conf; echo; listener_conf; } > "$C"
	sed -i "/^\tkey /d; /^\tcertificate /d" "$C"
	refused "$C" 5 "listener \"web\" has no certificate"
}

# --- files ---

@test "a missing configuration file is refused" {
	refused "$T/nothere.conf" 0 'No such file or directory'
	mkdir "$T/dir.conf"
	refused "$T/dir.conf" 0 'not a regular file'
}

# pad FILE SIZE: FILE made SIZE bytes long by a comment at its end.
pad() {
	local n=$(( $2 - $(stat -c %s "$1") - 2 ))
	[ "$n" -ge 0 ]
	{ printf '#'; head -c "$n" /dev/zero | tr '\0' x; echo; } >> "$1"
	[ "$(stat -c %s "$1")" -eq "$2" ]
}

@test "a file of 1 MiB is read whole, a larger one is refused" {
	good_conf > "$C"
	pad "$C" 1048576
	accepted "$C"
	good_conf > "$C"
	pad "$C" 1048577
	refused "$C" 0 'file too large'
	# an included file is read the same way
	globals_conf > "$C"
	echo 'include "more.conf"' >> "$C"
	listener_conf > "$T/more.conf"
	pad "$T/more.conf" 1048576
	accepted "$C"
	listener_conf > "$T/more.conf"
	pad "$T/more.conf" 1048577
	refused "$C" "$(line_of "$C" include)" 'include' 'more.conf' \
	    'file too large'
}

@test "a missing or non-PEM certificate is refused" {
	good_conf > "$C"
	sed -i "s|$T/web.crt|$T/none.crt|" "$C"
	refused "$C" "$(line_of "$C" certificate)" "certificate \"$T/none.crt\"" \
	    'No such file'
	openssl x509 -in "$T/web.leaf" -outform DER -out "$T/web.der"
	good_conf > "$C"
	sed -i "s|$T/web.crt|$T/web.der|" "$C"
	refused "$C" "$(line_of "$C" certificate)" 'no PEM certificate'
	printf -- '-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n' \
	    > "$T/bad.crt"
	sed -i "s|$T/web.der|$T/bad.crt|" "$C"
	refused "$C" "$(line_of "$C" certificate)" 'bad PEM data'
	printf -- '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n' \
	    > "$T/bad.crt"
	refused "$C" "$(line_of "$C" certificate)" 'does not parse'
	mkdir "$T/dir.crt"
	sed -i "s|$T/bad.crt|$T/dir.crt|" "$C"
	refused "$C" "$(line_of "$C" certificate)" 'not a regular file'
}

@test "a certificate file that holds a private key is refused" {
	cat "$T/web.crt" "$T/web.key" > "$T/both.pem"
	good_conf > "$C"
	sed -i "s|$T/web.crt|$T/both.pem|" "$C"
	refused "$C" "$(line_of "$C" certificate)" 'holds a private key'
	good_conf > "$C"
	sed -i "s|$T/web.crt|$T/both.pem|; s|$T/web.key|$T/both.pem|" "$C"
	chmod 600 "$T/both.pem"
	refused "$C" "$(line_of "$C" certificate)" 'is also the key'
}

@test "a missing, empty or unreadable key file is refused" {
	good_conf > "$C"
	sed -i "s|$T/web.key|$T/none.key|" "$C"
	refused "$C" "$(line_of "$C" $'\tkey')" "key \"$T/none.key\"" 'No such file'
	mkdir "$T/dir.key"
	sed -i "s|$T/none.key|$T/dir.key|" "$C"
	refused "$C" "$(line_of "$C" $'\tkey')" 'is a directory, not a regular file'
	: > "$T/empty.key"
	chmod 600 "$T/empty.key"
	sed -i "s|$T/dir.key|$T/empty.key|" "$C"
	refused "$C" "$(line_of "$C" $'\tkey')" 'is empty'
	# Root reads anything: take away the capabilities that let it.
	good_conf > "$C"
	chmod 000 "$T/web.key"
	run setpriv --inh-caps=-dac_override,-dac_read_search \
	    --bounding-set=-dac_override,-dac_read_search \
	    "$RECLUSE" -n -f "$C"
	echo "status $status: $output"
	[ "$status" -eq 1 ]
	[[ "$output" == "$C:$(line_of "$C" $'\tkey'): key \"$T/web.key\": Permission denied" ]]
}

# --- key files ---

# key_line, cert_line: the lines of $C with the key and certificate keywords.
key_line() {
	line_of "$C" $'\tkey'
}

cert_line() {
	line_of "$C" $'\tcertificate'
}

# key_refused TEXT: recluse -n -f $C prints exactly
# "$C:KEYLINE: key "$T/web.key" TEXT" and exits 1.
key_refused() {
	run "$RECLUSE" -n -f "$C"
	echo "status $status: $output"
	echo "expected: $C:$(key_line): key \"$T/web.key\" $1"
	[ "$status" -eq 1 ]
	[ "$output" = "$C:$(key_line): key \"$T/web.key\" $1" ]
}

# serve_conf: good_conf on a free port $PORT, backend the echo server on
# $BPORT (started here).
serve_conf() {
	PORT=$(free_port)
	BPORT=$(free_port)
	start_echod echo "$BPORT"
	globals_conf > "$C"
	listener_conf web "127.0.0.1:$PORT" "127.0.0.1:$BPORT" >> "$C"
}

# answers: an echo through recluse on $PORT works.
answers() {
	[ "$(echo "ping" | tls_echo "$PORT")" = "ping" ]
}

# refusals N: the log holds at least N "reload failed" lines.
refusals() {
	[ "$(grep -c 'reload failed' "$T/recluse.log")" -ge "$1" ]
}

# reload_refused N TEXT: after SIGHUP, the Nth "reload failed" line of the
# log ends with TEXT, and the running configuration still answers.
reload_refused() {
	kill -HUP "$RECLUSE_PID"
	wait_for refusals "$1"
	grep 'reload failed' "$T/recluse.log" | sed -n "$1p" |
	    sed -E "s/$STAMP//" > "$T/refusal"
	cat "$T/refusal"
	echo "expected: ...: $2"
	grep -qxF "parent: reload failed, keeping the running configuration: $2" \
	    "$T/refusal"
	kill -0 "$RECLUSE_PID"
	answers
}

@test "a world-readable key is refused at its line, with the chmod that fixes it" {
	good_conf > "$C"
	chmod 644 "$T/web.key"
	key_refused "is world-readable: run chmod 600 $T/web.key"
	chmod 604 "$T/web.key"
	key_refused "is world-readable: run chmod 600 $T/web.key"
	chmod 600 "$T/web.key"
	accepted "$C"
}

@test "a group- or world-writable key is refused" {
	good_conf > "$C"
	chmod 620 "$T/web.key"
	key_refused "is group-writable: run chmod 600 $T/web.key"
	chmod 660 "$T/web.key"
	key_refused "is group-writable: run chmod 600 $T/web.key"
	chmod 602 "$T/web.key"
	key_refused "is world-writable: run chmod 600 $T/web.key"
}

@test "a key owned by anyone but root or keyproc-user is refused, with the chown that fixes it" {
	good_conf > "$C"
	chown nobody "$T/web.key"
	key_refused "is owned by nobody, not by root or keyproc-user \"$TEST_KEYUSER\": run chown root $T/web.key"
	# the connection processes' user least of all
	chown "$TEST_USER" "$T/web.key"
	key_refused "is owned by $TEST_USER, not by root or keyproc-user \"$TEST_KEYUSER\": run chown root $T/web.key"
	chown 4242 "$T/web.key"
	key_refused "is owned by uid 4242, not by root or keyproc-user \"$TEST_KEYUSER\": run chown root $T/web.key"
	# Both wrong: both fixes at once.
	chown nobody "$T/web.key"
	chmod 644 "$T/web.key"
	key_refused "is owned by nobody, not by root or keyproc-user \"$TEST_KEYUSER\", and is world-readable: run chown root $T/web.key && chmod 600 $T/web.key"
}

@test "a key owned by root or keyproc-user, or readable by its group, is accepted" {
	good_conf > "$C"
	chown "$TEST_KEYUSER" "$T/web.key"
	accepted "$C"
	chown root "$T/web.key"
	chmod 400 "$T/web.key"
	accepted "$C"
	# 640 root:ssl-cert, as on Debian (nogroup stands in for ssl-cert)
	chown root:nogroup "$T/web.key"
	chmod 640 "$T/web.key"
	accepted "$C"
}

@test "a key readable by the group of the connection processes is refused" {
	good_conf > "$C"
	group=$(id -gn "$TEST_USER")
	chown "root:$group" "$T/web.key"
	chmod 640 "$T/web.key"
	key_refused "is readable by group \"$group\", the group of user \"$TEST_USER\": run chmod 600 $T/web.key"
}

@test "a key reached through symbolic links, as certbot's live/ -> archive/, is accepted" {
	# certbot: live/NAME/privkey.pem -> ../../archive/NAME/privkey1.pem,
	# 600 root, in directories of mode 700.
	mkdir -p "$T/le/archive/web" "$T/le/live/web"
	chmod 700 "$T/le/archive" "$T/le/live"
	cp "$T/web.crt" "$T/le/archive/web/fullchain1.pem"
	cp "$T/web.key" "$T/le/archive/web/privkey1.pem"
	ln -s ../../archive/web/fullchain1.pem "$T/le/live/web/fullchain.pem"
	ln -s ../../archive/web/privkey1.pem "$T/le/live/web/privkey.pem"
	# and a link to that link: a chain of them
	ln -s "$T/le/live/web/privkey.pem" "$T/web-key.link"
	good_conf > "$C"
	sed -i "s|$T/web.crt|$T/le/live/web/fullchain.pem|" "$C"
	accepted "$C"
	sed -i "s|$T/web.key|$T/le/live/web/privkey.pem|" "$C"
	accepted "$C"
	sed -i "s|$T/le/live/web/privkey.pem|$T/web-key.link|" "$C"
	accepted "$C"
	# What counts is the file at the end, not the links (777).
	chmod 644 "$T/le/archive/web/privkey1.pem"
	refused "$C" "$(key_line)" \
	    "key \"$T/web-key.link\" is world-readable: run chmod 600 $T/web-key.link"
}

@test "a FIFO, a directory or a device in place of the key is refused at once" {
	good_conf > "$C"
	mv "$T/web.key" "$T/real.key"
	mkfifo -m 600 "$T/web.key"
	SECONDS=0
	run timeout 10 "$RECLUSE" -n -f "$C"
	echo "status $status in $SECONDS s: $output"
	[ "$status" -eq 1 ]
	[ "$SECONDS" -lt 5 ]
	[ "$output" = "$C:$(key_line): key \"$T/web.key\" is a FIFO, not a regular file" ]
	rm "$T/web.key"
	mkdir -m 700 "$T/web.key"
	key_refused "is a directory, not a regular file"
	sed -i "s|$T/web.key|/dev/null|" "$C"
	refused "$C" "$(key_line)" 'key "/dev/null" is a character device, not a regular file'
}

@test "a key swapped for a FIFO while recluse -n runs never hangs it" {
	# The key path flips between the key and a FIFO, as fast as rename(2)
	# goes.  Checked through one path and read through another, the key
	# was found good and then opened as a FIFO, which blocks.  Thirty more
	# listeners after it widen that window.
	good_conf > "$C"
	cp "$T/web.key" "$T/other.key"
	for i in $(seq 1 30); do
		printf 'listener "l%d" {\n\tlisten 127.0.0.1:%d\n' "$i" \
		    "$((20000 + i))"
		printf '\tcertificate "%s"\n\tkey "%s"\n' "$T/web.crt" \
		    "$T/other.key"
		printf '\tbackend 127.0.0.1:8080\n}\n'
	done >> "$C"
	mkfifo -m 600 "$T/fifo"
	sed -i "s|$T/web.key|$T/flip.key|" "$C"
	python3 -c '
import os, sys
os.chdir(sys.argv[1])
while True:
    for target in ("fifo", "web.key"):
        if os.path.lexists("flip.tmp"):
            os.unlink("flip.tmp")
        os.symlink(target, "flip.tmp")
        os.rename("flip.tmp", "flip.key")
' "$T" &
	track $!
	wait_for test -L "$T/flip.key"
	# One shell for the loop: bats' traps would slow every command.
	bash -c 'for i in $(seq 1 25); do
		timeout 10 "$0" -n -f "$1" 2>&1
		echo "run $i: status $?"
	done' "$RECLUSE" "$C" > "$T/runs.txt"
	cat "$T/runs.txt"
	# Each run ends at once: the key accepted (0) or refused (1).
	[ "$(grep -c '^run .*: status [01]$' "$T/runs.txt")" -eq 25 ]
	! grep -v -e '^run ' -e 'configuration OK' -e 'not a regular file$' \
	    "$T/runs.txt" || false
}

@test "the key file is opened once, without blocking, by -n and at start" {
	good_conf > "$C"
	strace -f -e trace=open,openat -o "$T/strace-n.txt" \
	    "$RECLUSE" -n -f "$C"
	grep -F "\"$T/web.key\"" "$T/strace-n.txt"
	[ "$(grep -cF "\"$T/web.key\"" "$T/strace-n.txt")" -eq 1 ]
	grep -F "\"$T/web.key\"" "$T/strace-n.txt" | grep -q O_NONBLOCK
	serve_conf
	strace -f -e trace=open,openat -o "$T/strace.txt" \
	    "$RECLUSE" -f "$C" >> "$T/recluse.log" 2>&1 &
	STRACE_PID=$!
	track "$STRACE_PID"
	wait_for grep -q "parent: ready" "$T/recluse.log"
	main=$(children_of "$STRACE_PID")
	track "$main"
	answers
	kill "$main"
	wait_for bash -c "! kill -0 $STRACE_PID 2>/dev/null"
	grep -F "\"$T/web.key\"" "$T/strace.txt"
	[ "$(grep -cF "\"$T/web.key\"" "$T/strace.txt")" -eq 1 ]
	grep -F "\"$T/web.key\"" "$T/strace.txt" | grep -q O_NONBLOCK
}

@test "a key refused at start stops recluse with FILE:LINE and the fix" {
	serve_conf
	chmod 644 "$T/web.key"
	run timeout 10 "$RECLUSE" -f "$C"
	echo "status $status: $output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"$C:$(key_line): key \"$T/web.key\" is world-readable: run chmod 600 $T/web.key" ]]
	! port_in_use "$PORT" || false
}

@test "a key refused on reload is logged with FILE:LINE and the fix, and the running configuration stays" {
	serve_conf
	start_recluse "$C"
	answers
	kl="$C:$(key_line): key \"$T/web.key\""
	chmod 644 "$T/web.key"
	reload_refused 1 "$kl is world-readable: run chmod 600 $T/web.key"
	chmod 620 "$T/web.key"
	reload_refused 2 "$kl is group-writable: run chmod 600 $T/web.key"
	chmod 600 "$T/web.key"
	chown nobody "$T/web.key"
	reload_refused 3 "$kl is owned by nobody, not by root or keyproc-user \"$TEST_KEYUSER\": run chown root $T/web.key"
	chown root "$T/web.key"
	mv "$T/web.key" "$T/real.key"
	mkfifo -m 600 "$T/web.key"
	reload_refused 4 "$kl is a FIFO, not a regular file"
	rm "$T/web.key"
	mkdir -m 700 "$T/web.key"
	reload_refused 5 "$kl is a directory, not a regular file"
	rmdir "$T/web.key"
	mv "$T/real.key" "$T/web.key"
	kill -HUP "$RECLUSE_PID"
	wait_for grep -q "ready: configuration 2," "$T/recluse.log"
	answers
}

@test "a key that does not match its certificate is refused at the key's line, by -n and on reload" {
	make_key ec256 "$T/other.key"
	good_conf > "$C"
	sed -i "s|$T/web.key|$T/other.key|" "$C"
	refused "$C" "$(key_line)" "$T/other.key: key does not match the certificate"
	serve_conf
	start_recluse "$C"
	sed -i "s|$T/web.key|$T/other.key|" "$C"
	reload_refused 1 "$C:$(key_line): $T/other.key: key does not match the certificate"
}

@test "a chain whose leaf is not first is refused with a message that says so" {
	# The CA first, then the leaf.
	cat "$T/ca.crt" "$T/web.leaf" > "$T/reversed.crt"
	good_conf > "$C"
	sed -i "s|$T/web.crt|$T/reversed.crt|" "$C"
	refused "$C" "$(cert_line)" "certificate \"$T/reversed.crt\": the first certificate is the issuer of the second, not the leaf: put the leaf certificate first"
	[[ "$output" != *"does not match"* ]]
	# Another certificate first, then the leaf: the key tells (-n).
	make_cert other ec256
	cat "$T/other.leaf" "$T/web.leaf" "$T/ca.crt" > "$T/mixed.crt"
	sed -i "s|$T/reversed.crt|$T/mixed.crt|" "$C"
	refused "$C" "$(cert_line)" "the first certificate in $T/mixed.crt is not the key's (certificate 2 is): put the leaf certificate first"
	[[ "$output" != *"does not match"* ]]
	# On reload, the same as -n for the CA first.
	serve_conf
	start_recluse "$C"
	sed -i "s|$T/web.crt|$T/reversed.crt|" "$C"
	reload_refused 1 "$C:$(cert_line): certificate \"$T/reversed.crt\": the first certificate is the issuer of the second, not the leaf: put the leaf certificate first"
}

# --- users and chroot ---

@test "a user or keyproc-user that does not exist is refused" {
	good_conf > "$C"
	sed -i 's/^user .*/user "recluse-nosuch"/' "$C"
	refused "$C" 1 'user "recluse-nosuch" does not exist'
	good_conf > "$C"
	sed -i 's/^keyproc-user .*/keyproc-user "recluse-nosuch"/' "$C"
	refused "$C" 2 'keyproc-user "recluse-nosuch" does not exist'
}

@test "a default user that does not exist is refused without a line" {
	if id recluse >/dev/null 2>&1; then
		skip "user recluse exists here"
	fi
	good_conf > "$C"
	sed -i '/^user /d' "$C"
	refused "$C" 0 'user "recluse" does not exist (default)'
}

@test "root as user or keyproc-user is refused" {
	good_conf > "$C"
	sed -i 's/^user .*/user root/' "$C"
	refused "$C" 1 'user "root" has uid or gid 0'
	good_conf > "$C"
	sed -i 's/^keyproc-user .*/keyproc-user root/' "$C"
	refused "$C" 2 'keyproc-user "root" has uid or gid 0'
}

@test "keyproc-user equal to user is refused" {
	good_conf > "$C"
	sed -i "s/^keyproc-user .*/keyproc-user \"$TEST_USER\"/" "$C"
	refused "$C" 2 "keyproc-user \"$TEST_USER\" has the uid of user"
}

@test "a chroot that is missing, not a directory or not root's own is refused" {
	good_conf > "$C"
	sed -i "s|^chroot .*|chroot \"$T/none\"|" "$C"
	refused "$C" 3 "chroot \"$T/none\"" 'No such file'
	: > "$T/file"
	sed -i "s|$T/none|$T/file|" "$C"
	refused "$C" 3 'is not a directory'
	good_conf > "$C"
	chown "$TEST_USER" "$T/empty"
	refused "$C" 3 'is not owned by root'
	chown root "$T/empty"
	chmod 775 "$T/empty"
	refused "$C" 3 'is writable by group or others'
	chmod 757 "$T/empty"
	refused "$C" 3 'is writable by group or others'
	chmod 755 "$T/empty"
	accepted "$C"
}

@test "a default chroot that is missing is refused without a line" {
	if [ -e /var/lib/recluse/empty ]; then
		skip "/var/lib/recluse/empty exists here"
	fi
	good_conf > "$C"
	sed -i '/^chroot /d' "$C"
	refused "$C" 0 'chroot "/var/lib/recluse/empty"' '(default)'
}

# --- includes ---

@test "an error in an included file names that file and its line" {
	mkdir "$T/conf.d"
	globals_conf > "$C"
	echo 'include "conf.d/web.conf"' >> "$C"
	listener_conf > "$T/conf.d/web.conf"
	sed -i 's/^\tlisten /\tlisen /' "$T/conf.d/web.conf"
	refused_in "$C" "$T/conf.d/web.conf" 2 'unknown keyword "lisen"'
	# Checks after parsing point into the included file too.
	listener_conf > "$T/conf.d/web.conf"
	sed -i '/^\tbackend /d' "$T/conf.d/web.conf"
	refused_in "$C" "$T/conf.d/web.conf" 1 'listener "web" has no backend'
}

@test "a missing include is refused at the include line" {
	good_conf > "$C"
	echo 'include "nothere.conf"' >> "$C"
	refused "$C" "$(wc -l < "$C")" "include \"$T/nothere.conf\"" \
	    'No such file'
}

@test "an include loop is refused" {
	good_conf > "$C"
	echo 'include "b.conf"' >> "$C"
	printf '# b\ninclude "recluse.conf"\n' > "$T/b.conf"
	refused_in "$C" "$T/b.conf" 2 'include loop'
}

@test "include is refused inside a listener block" {
	good_conf > "$C"
	sed -i 's|^\tbackend |\tinclude "x.conf"\n&|' "$C"
	refused "$C" "$(line_of "$C" include)" '"include" is not allowed'
}

@test "a block does not span files" {
	globals_conf > "$C"
	echo 'include "open.conf"' >> "$C"
	echo '}' >> "$C"
	listener_conf | sed '$d' > "$T/open.conf"
	refused_in "$C" "$T/open.conf" 1 'unbalanced braces'
}

@test "errors name the file as given on the command line" {
	good_conf > "$C"
	sed -i 's/^\tlisten /\tlisen /' "$C"
	cd "$T"
	refused recluse.conf "$(line_of "$C" lisen)" 'unknown keyword "lisen"'
}

@test "the example file is valid once its users and files exist" {
	sed -e "s|^user .*|user \"$TEST_USER\"|" \
	    -e "s|^keyproc-user .*|keyproc-user \"$TEST_KEYUSER\"|" \
	    -e "s|^chroot .*|chroot \"$T/empty\"|" \
	    -e "s|/etc/recluse/web\\.|$T/web.|" \
	    "$TOP/config/recluse.conf.example" > "$C"
	run "$RECLUSE" -nn -f "$C"
	echo "$output"
	[ "$status" -eq 0 ]
	# Every default it documents is the default: only the edited lines
	# differ from the normalised output of a file without them.
	grep -v -E '^[[:space:]]*(#|$)|^(max-connections|timeout|	max-connections|	protocols|	ciphers|	strict-sni)' \
	    "$C" > "$T/bare.conf"
	"$RECLUSE" -nn -f "$T/bare.conf" > "$T/bare.out"
	"$RECLUSE" -nn -f "$C" > "$T/full.out"
	diff -u "$T/bare.out" "$T/full.out"
}

# resign_cert NAME START END: sign NAME's request again, valid from START to
# END (YYYYMMDDHHMMSSZ), with the test CA; NAME.crt is the new leaf + CA.
resign_cert() {
	mkdir -p "$T/ca-db"
	: > "$T/ca-db/index.txt"
	echo 01 > "$T/ca-db/serial"
	cat > "$T/ca-db/ca.cnf" <<EOC
[ca]
default_ca = test
[test]
database = $T/ca-db/index.txt
new_certs_dir = $T/ca-db
serial = $T/ca-db/serial
default_md = sha256
policy = any
[any]
commonName = supplied
EOC
	openssl ca -batch -config "$T/ca-db/ca.cnf" -cert "$T/ca.crt" \
	    -keyfile "$T/ca.key" -in "$T/$1.csr" -out "$T/$1.leaf" -notext \
	    -startdate "$2" -enddate "$3" -extfile "$T/$1.ext" 2>/dev/null
	cat "$T/$1.leaf" "$T/ca.crt" > "$T/$1.crt"
}

@test "a certificate that expires within 14 days, or has expired, is warned about by -n, at start and at reload, and recluse still starts" {
	good_conf > "$C"
	line=$(line_of "$C" certificate)
	soon=$(date -u -d "+5 days -1 hour" +%Y%m%d%H%M%SZ)
	resign_cert web 20250101000000Z "$soon"
	run "$RECLUSE" -n -f "$C"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"$C:$line: warning: certificate \"$T/web.crt\" expires on "*", in 4 days"* ]]
	[[ "$output" == *"configuration OK"* ]]
	resign_cert web 20250101000000Z 20250201000000Z
	run "$RECLUSE" -n -f "$C"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"$C:$line: warning: certificate \"$T/web.crt\" expired on 2025-02-01 00:00:00 UTC"* ]]
	# a certificate with two years left: not a word
	resign_cert web 20250101000000Z "$(date -u -d "+2 years" +%Y%m%d%H%M%SZ)"
	run "$RECLUSE" -n -f "$C"
	[ "$status" -eq 0 ]
	[[ "$output" != *warning* ]]
	# at start and at reload, in the log
	resign_cert web 20250101000000Z 20250201000000Z
	start_recluse "$C"
	grep -q "listener web: certificate $T/web.crt expired on 2025-02-01 00:00:00 UTC" \
	    "$T/recluse.log"
	resign_cert web 20250101000000Z "$soon"
	kill -HUP "$RECLUSE_PID"
	wait_for grep -q "listener web: certificate $T/web.crt expires on .*, in 4 days" \
	    "$T/recluse.log"
}
