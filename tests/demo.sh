#!/usr/bin/env bash
# "make demo" (as root): recluse in the foreground on https://localhost:DEMO_PORT
# in front of a small plaintext HTTP backend, with a throwaway CA and
# certificate.  Run by the Makefile after it installed what is missing and
# built everything.  Running it again reuses the CA, certificate, users and
# chroot it made the first time.
#
# Environment: DEMO_DIR (default /var/tmp/recluse-demo), DEMO_PORT (8443),
# DEMO_BACKEND_PORT (8080).  The test suite also sets DEMO_USER,
# DEMO_KEYUSER and DEMO_CHROOT to its own users and directory: then the
# demo creates no user and no directory outside DEMO_DIR.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
dir=${DEMO_DIR:-/var/tmp/recluse-demo}
port=${DEMO_PORT:-8443}
bport=${DEMO_BACKEND_PORT:-8080}
user=${DEMO_USER:-recluse}
keyuser=${DEMO_KEYUSER:-recluse-key}
chroot_dir=${DEMO_CHROOT:-/var/lib/recluse/empty}
rpid=""
bpid=""

say() {
	printf 'demo: %s\n' "$*"
}

die() {
	printf 'demo: %s\n' "$*" >&2
	exit 1
}

port_busy() {
	ss -Htanl "( sport = :$1 )" 2>/dev/null | grep -q .
}

# The two users and the chroot directory, as the packaged files make them.
setup_system() {
	if command -v systemd-sysusers >/dev/null 2>&1; then
		systemd-sysusers "$top/systemd/recluse.sysusers"
	else
		for u in recluse recluse-key; do
			id -u "$u" >/dev/null 2>&1 || useradd --system \
			    --no-create-home --home-dir /nonexistent \
			    --shell /usr/sbin/nologin "$u"
		done
	fi
	if command -v systemd-tmpfiles >/dev/null 2>&1; then
		systemd-tmpfiles --create "$top/systemd/recluse.tmpfiles"
	else
		install -d -o root -g root -m 755 /var/lib/recluse "$chroot_dir"
	fi
}

# A throwaway CA and a certificate for localhost, 127.0.0.1 and ::1.
make_certs() {
	install -d -m 755 "$dir"
	[ -s "$dir/ca.crt" ] && [ -s "$dir/server.crt" ] &&
	    [ -s "$dir/server.key" ] && return 0
	say "making a throwaway CA and a certificate for localhost in $dir"
	(
		# root:root 0600 keys, as recluse.conf(5) asks of a key file
		umask 077
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
		    -nodes -keyout "$dir/ca.key" -out "$dir/ca.crt" -days 30 \
		    -subj "/CN=recluse demo CA" 2>/dev/null
		openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
		    -nodes -keyout "$dir/server.key" -out "$dir/server.csr" \
		    -subj "/CN=localhost" 2>/dev/null
		printf 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\n' \
		    > "$dir/server.ext"
		openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.crt" \
		    -CAkey "$dir/ca.key" -CAcreateserial -days 30 \
		    -extfile "$dir/server.ext" -out "$dir/server.leaf" 2>/dev/null
		cat "$dir/server.leaf" "$dir/ca.crt" > "$dir/server.crt"
	)
	chmod 644 "$dir/ca.crt" "$dir/server.crt"
}

write_conf() {
	cat > "$dir/recluse.conf" <<EOF
# recluse demo configuration (made by tests/demo.sh)
user "$user"
keyproc-user "$keyuser"
chroot "$chroot_dir"

listener "demo" {
	listen 127.0.0.1:$port
	certificate "$dir/server.crt"
	key "$dir/server.key"
	backend 127.0.0.1:$bport
}
EOF
}

cleanup() {
	trap - EXIT INT TERM
	# a killed process's status is not the demo's: set -e must not
	# make it ours
	if [ -n "$rpid" ] && kill "$rpid" 2>/dev/null; then
		wait "$rpid" 2>/dev/null || :
	fi
	if [ -n "$bpid" ] && kill "$bpid" 2>/dev/null; then
		wait "$bpid" 2>/dev/null || :
	fi
	return 0
}

# Pass a signal meant for the demo on to recluse, which drains and exits.
forward() {
	[ -n "$rpid" ] && kill -s "$1" "$rpid" 2>/dev/null
	return 0
}

[ "$(id -u)" -eq 0 ] || die "run it as root, or as: sudo make demo"
[ -x "$top/recluse" ] && [ -x "$top/tests/helpers/echod" ] ||
    die "build first: make"
port_busy "$port" && die "port $port is in use (another demo?): try make demo DEMO_PORT=..."
port_busy "$bport" && die "port $bport is in use: try make demo DEMO_BACKEND_PORT=..."

[ -n "${DEMO_USER:-}${DEMO_KEYUSER:-}${DEMO_CHROOT:-}" ] || setup_system
make_certs
write_conf
"$top/recluse" -n -f "$dir/recluse.conf" >/dev/null 2>&1 ||
    "$top/recluse" -n -f "$dir/recluse.conf" || die "bad demo configuration"

trap cleanup EXIT
trap 'forward TERM' TERM
trap 'forward INT' INT

"$top/tests/helpers/echod" http "$bport" > "$dir/backend.log" 2>&1 &
bpid=$!
# In a session of its own, so that it gets a Ctrl-C (or a signal to the
# whole process group) once, from forward(), not twice: a second SIGINT or
# SIGTERM means "stop now" instead of "drain".
setsid "$top/recluse" -f "$dir/recluse.conf" &
rpid=$!

for _ in $(seq 1 100); do
	port_busy "$port" && break
	kill -0 "$rpid" 2>/dev/null || break
	sleep 0.1
done
if kill -0 "$rpid" 2>/dev/null; then
	cat <<EOF

  recluse is serving https://localhost:$port/ (backend: 127.0.0.1:$bport).
  In another terminal, try:

    curl --cacert $dir/ca.crt https://localhost:$port/

  Press Ctrl-C to stop: recluse lets open connections finish, then exits.

EOF
fi

# wait returns early when a trapped signal arrives: keep waiting until
# recluse itself has exited, then exit with its status.
while :; do
	status=0
	wait "$rpid" || status=$?
	kill -0 "$rpid" 2>/dev/null && continue
	if [ "$status" -gt 128 ]; then
		# Interrupted just as recluse exited: its status is still there.
		st=0
		wait "$rpid" 2>/dev/null || st=$?
		[ "$st" -ne 127 ] && status=$st
	fi
	break
done
rpid=""
exit "$status"
