# bench/lib.sh: setup for bench/run (certificates, backend, proxies, cgroups).
# Sourced by bench/run; everything lives under $B (a temp dir) and every
# process started here is remembered by pid and killed by pid.
# shellcheck shell=bash

# The binary under test: $BENCH_RECLUSE, for A/B runs of a scratch build.
RECLUSE_BIN=${BENCH_RECLUSE:-$TOP/recluse}
BENCH_USER=recluse-test
BENCH_KEYUSER=recluse-testkey

say() { printf '%s\n' "$*" >&2; }
die() { say "bench: $*"; exit 1; }

# ensure_user NAME: a system user with no login (as tests/helpers.bash).
ensure_user() {
	id -u "$1" >/dev/null 2>&1 && return 0
	useradd --system --no-create-home --home-dir /nonexistent \
	    --shell /usr/sbin/nologin "$1" 2>/dev/null || id -u "$1" >/dev/null
}

port_in_use() {
	ss -Htanl "( sport = :$1 )" 2>/dev/null | grep -q .
}

# free_port: a TCP port nobody listens on and we did not hand out yet.
# Called as $(free_port), a subshell: the ports handed out are kept in a
# file under $B (a variable would not outlive the subshell).
USED_PORTS=" "
free_port() {
	local p i used=" " f="${B:+$B/.ports}"
	[ -z "$f" ] || [ ! -f "$f" ] || used=" $(tr '\n' ' ' < "$f")"
	for i in $(seq 1 200); do
		p=$(( (RANDOM * 32768 + RANDOM) % 10000 + 20000 ))
		case "$USED_PORTS$used" in *" $p "*) continue ;; esac
		port_in_use "$p" && continue
		USED_PORTS="$USED_PORTS$p "
		[ -z "$f" ] || echo "$p" >> "$f"
		echo "$p"
		return 0
	done
	die "no free port"
}

# wait_port PORT [SECONDS]: until PORT on 127.0.0.1 accepts connections.
wait_port() {
	local i
	for i in $(seq 1 $(( ${2:-10} * 10 ))); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# ---- certificates -------------------------------------------------------

# make_certs: $B/ca.crt, and for rsa (RSA-2048) and ec (ECDSA P-256):
# $B/NAME.key, $B/NAME.crt (leaf + CA) and $B/NAME.pem (key + chain, hitch).
make_certs() {
	local name
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	    -keyout "$B/ca.key" -out "$B/ca.crt" -days 30 \
	    -subj "/CN=recluse bench CA" 2>/dev/null
	openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 \
	    -out "$B/rsa.key" 2>/dev/null
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
	    -out "$B/ec.key" 2>/dev/null
	printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' > "$B/san.ext"
	for name in rsa ec; do
		openssl req -new -key "$B/$name.key" -subj "/CN=localhost" \
		    -out "$B/$name.csr" 2>/dev/null
		openssl x509 -req -in "$B/$name.csr" -CA "$B/ca.crt" \
		    -CAkey "$B/ca.key" -CAcreateserial -days 30 \
		    -extfile "$B/san.ext" -out "$B/$name.leaf" 2>/dev/null
		cat "$B/$name.leaf" "$B/ca.crt" > "$B/$name.crt"
		cat "$B/$name.key" "$B/$name.crt" > "$B/$name.pem"
		chmod 600 "$B/$name.key" "$B/$name.pem"
	done
}

# ---- cgroups --------------------------------------------------------------
# One cgroup per proxy (and one for the client).  cgroup v2 where it is
# writable (cpu.stat usage_usec counts every process that ever ran in it,
# exited children included); else cgroup v1 cpuacct (cpuacct.usage, ns).

CG_KIND=
CG_ROOT=
cg_init() {
	local d
	for d in /sys/fs/cgroup /sys/fs/cgroup/unified; do
		[ -f "$d/cgroup.procs" ] && [ -f "$d/cgroup.controllers" ] || continue
		if mkdir "$d/recluse-bench-probe-$$" 2>/dev/null; then
			if [ -f "$d/recluse-bench-probe-$$/cpu.stat" ]; then
				rmdir "$d/recluse-bench-probe-$$"
				CG_KIND=v2 CG_ROOT=$d
				return 0
			fi
			rmdir "$d/recluse-bench-probe-$$"
		fi
	done
	d=/sys/fs/cgroup/cpuacct
	if [ -f "$d/cpuacct.usage" ] && mkdir "$d/recluse-bench-probe-$$" 2>/dev/null; then
		rmdir "$d/recluse-bench-probe-$$"
		CG_KIND=v1 CG_ROOT=$d
		return 0
	fi
	die "no writable cgroup (v2 cpu.stat or v1 cpuacct): run as root"
}

# cg_new NAME: create the cgroup, print its path.
cg_new() {
	local cg="$CG_ROOT/recluse-bench-$$-$1"
	mkdir "$cg" || die "mkdir $cg"
	echo "$cg"
}

# cg_usec CG: CPU microseconds used in CG so far.
cg_usec() {
	if [ "$CG_KIND" = v2 ]; then
		awk '$1 == "usage_usec" { print $2 }' "$1/cpu.stat"
	else
		echo $(( $(cat "$1/cpuacct.usage") / 1000 ))
	fi
}

# machine_snap: "CTXT STEAL" of the whole machine, from /proc/stat: context
# switches since boot, and time stolen by the hypervisor in clock ticks
# (getconf CLK_TCK a second).  Differences of two give a test's context
# switches (the client's, the backend's and the kernel's included: the
# same for every proxy) and the cores its vCPUs waited for.
machine_snap() {
	awk '$1 == "cpu" { st = $9 } $1 == "ctxt" { c = $2 }
	    END { print c, st }' /proc/stat
}

# cg_pids CG: the processes in CG.
cg_pids() {
	cat "$1/cgroup.procs"
}

# cg_count CG: how many processes are in CG.
cg_count() {
	wc -l < "$1/cgroup.procs"
}

# cg_pss CG: total PSS in kB of every process in CG (smaps_rollup).  One
# cat for many processes, not an awk each (10,000 forks took minutes here);
# a process gone meanwhile is skipped.
cg_pss() {
	cg_pids "$1" | sed 's|.*|/proc/&/smaps_rollup|' |
	    { xargs -r cat 2>/dev/null || true; } |
	    awk '$1 == "Pss:" { s += $2 } END { print s + 0 }'
}

# cg_run CG CMD...: run CMD inside CG, in the foreground.  For a background
# process whose pid must be $!, write: sh -c "$CG_EXEC" sh CG CMD... &
# (a backgrounded shell function would be a subshell with another pid).
CG_EXEC='echo $$ > "$1/cgroup.procs" && shift && exec "$@"'
cg_run() {
	sh -c "$CG_EXEC" sh "$@"
}

# cg_destroy CG: kill by pid whatever is left in CG (all started by us),
# then remove it.
cg_destroy() {
	local cg=$1 pid i
	[ -d "$cg" ] || return 0
	for i in 1 2 3 4 5 6 7 8 9 10; do
		[ "$(cg_count "$cg")" -gt 0 ] || break
		for pid in $(cg_pids "$cg"); do
			kill -9 "$pid" 2>/dev/null || true
		done
		sleep 0.2
	done
	rmdir "$cg" 2>/dev/null || say "bench: cannot remove $cg"
}

# ---- backend --------------------------------------------------------------

# start_nginx PORT: nginx (one process, no master) serving /small (a
# 128-byte reply) and /big (BULK_MB MB) on 127.0.0.1:PORT; NGINX_PID.
start_nginx() {
	local port=$1
	mkdir -p "$B/www" "$B/nginx-tmp"
	head -c $(( BULK_MB * 1000 * 1000 )) /dev/zero > "$B/www/big"
	cat > "$B/nginx.conf" <<EOF
daemon off;
master_process off;
worker_rlimit_nofile 65536;
pid $B/nginx.pid;
error_log $B/nginx-error.log warn;
events {
	worker_connections 40000;
	multi_accept on;
}
http {
	access_log off;
	sendfile on;
	tcp_nopush on;
	keepalive_timeout 600s;
	keepalive_requests 100000000;
	client_body_temp_path $B/nginx-tmp/body;
	proxy_temp_path $B/nginx-tmp/proxy;
	fastcgi_temp_path $B/nginx-tmp/fastcgi;
	uwsgi_temp_path $B/nginx-tmp/uwsgi;
	scgi_temp_path $B/nginx-tmp/scgi;
	server {
		listen 127.0.0.1:$port backlog=4096;
		root $B/www;
		location = /small {
			default_type text/plain;
			return 200 "$(head -c 127 /dev/zero | tr '\0' x)\n";
		}
	}
}
EOF
	nginx -c "$B/nginx.conf" -p "$B" > "$B/nginx.log" 2>&1 &
	NGINX_PID=$!
	wait_port "$port" || die "nginx did not start: $(cat "$B"/nginx*.log)"
}

# ---- hitch ----------------------------------------------------------------

# hitch_conf: two frontends (RSA, ECDSA), the nginx backend, one worker per
# core (hitch's own advice), the default cipher settings.
hitch_conf() {
	cat <<EOF
frontend = {
	host = "127.0.0.1"
	port = "$H_RSA"
	pem-file = "$B/rsa.pem"
}
frontend = {
	host = "127.0.0.1"
	port = "$H_EC"
	pem-file = "$B/ec.pem"
}
pem-file = "$B/ec.pem"
backend = "[127.0.0.1]:$NGX"
workers = $HITCH_WORKERS
backlog = 4096
daemon = off
user = "$BENCH_USER"
ocsp-dir = ""
log-level = 1
EOF
}

start_hitch() {
	hitch_conf > "$B/hitch.conf"
	CG_HITCH=$(cg_new hitch)
	sh -c "$CG_EXEC" sh "$CG_HITCH" hitch --config="$B/hitch.conf" >> "$B/hitch.log" 2>&1 &
	HITCH_PID=$!
	wait_port "$H_RSA" && wait_port "$H_EC" ||
	    die "hitch did not start: $(tail "$B/hitch.log")"
}

# ---- recluse --------------------------------------------------------------

recluse_conf() {
	cat <<EOF
user "$BENCH_USER"
keyproc-user "$BENCH_KEYUSER"
chroot "$B/empty"
max-connections $(( MANY_CONNS + 1024 ))
timeout handshake 60
timeout idle 600

listener "rsa" {
	listen 127.0.0.1:$R_RSA
	certificate "$B/rsa.crt"
	key "$B/rsa.key"
	backend 127.0.0.1:$NGX
}
listener "ec" {
	listen 127.0.0.1:$R_EC
	certificate "$B/ec.crt"
	key "$B/ec.key"
	backend 127.0.0.1:$NGX
}
EOF
}

start_recluse() {
	local i
	recluse_conf > "$B/recluse.conf"
	: > "$B/recluse.log"
	CG_RECLUSE=$(cg_new recluse)
	sh -c "$CG_EXEC" sh "$CG_RECLUSE" "${RECLUSE_RUN:-$RECLUSE_BIN}" -f "$B/recluse.conf" \
	    >> "$B/recluse.log" 2>&1 &
	RECLUSE_PID=$!
	for i in $(seq 1 100); do
		grep -q "ready" "$B/recluse.log" && break
		kill -0 "$RECLUSE_PID" 2>/dev/null || break
		sleep 0.1
	done
	grep -q "ready" "$B/recluse.log" && wait_port "$R_RSA" &&
	    wait_port "$R_EC" || {
		say "bench: recluse did not start:"
		tail -n 20 "$B/recluse.log" >&2
		return 1
	}
}

# stop_pid PID [SIG]: SIG (TERM) to PID, wait up to 5 s, then KILL.
stop_pid() {
	local pid=$1 i
	[ -n "$pid" ] || return 0
	kill -"${2:-TERM}" "$pid" 2>/dev/null || return 0
	for i in $(seq 1 50); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -9 "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

stop_hitch() {
	stop_pid "${HITCH_PID:-}"
	HITCH_PID=
	[ -z "${CG_HITCH:-}" ] || cg_destroy "$CG_HITCH"
	CG_HITCH=
}

stop_recluse() {
	# A second TERM stops at once (children killed) instead of draining.
	if [ -n "${RECLUSE_PID:-}" ]; then
		kill -TERM "$RECLUSE_PID" 2>/dev/null || true
		sleep 0.2
		stop_pid "$RECLUSE_PID"
	fi
	RECLUSE_PID=
	[ -z "${CG_RECLUSE:-}" ] || cg_destroy "$CG_RECLUSE"
	CG_RECLUSE=
}

# ---- floor ----------------------------------------------------------------

# start_floor: bench/forkfloor, the bare fork-per-connection proxy (no
# isolation, key in-process) that tells what the design costs by itself.
start_floor() {
	CG_FLOOR=$(cg_new floor)
	sh -c "$CG_EXEC" sh "$CG_FLOOR" "$TOP/bench/forkfloor" "$NGX" \
	    "$F_RSA" "$B/rsa.crt" "$B/rsa.key" "$F_EC" "$B/ec.crt" "$B/ec.key" \
	    >> "$B/floor.log" 2>&1 &
	FLOOR_PID=$!
	wait_port "$F_RSA" && wait_port "$F_EC" ||
	    die "forkfloor did not start: $(tail "$B/floor.log")"
}

stop_floor() {
	stop_pid "${FLOOR_PID:-}"
	FLOOR_PID=
	[ -z "${CG_FLOOR:-}" ] || cg_destroy "$CG_FLOOR"
	CG_FLOOR=
}

# start_isofloor: bench/forkfloor -i, the floor with the least isolation
# recluse promises (bench/floor_iso.c): a key server, a connector, each
# child chrooted to the empty dir, as nobody, under a seccomp filter.
start_isofloor() {
	CG_ISOFLOOR=$(cg_new isofloor)
	sh -c "$CG_EXEC" sh "$CG_ISOFLOOR" "$TOP/bench/forkfloor" -i "$B/empty" \
	    "$NGX" "$I_RSA" "$B/rsa.crt" "$B/rsa.key" \
	    "$I_EC" "$B/ec.crt" "$B/ec.key" >> "$B/isofloor.log" 2>&1 &
	ISOFLOOR_PID=$!
	wait_port "$I_RSA" && wait_port "$I_EC" ||
	    die "forkfloor -i did not start: $(tail "$B/isofloor.log")"
}

stop_isofloor() {
	stop_pid "${ISOFLOOR_PID:-}"
	ISOFLOOR_PID=
	[ -z "${CG_ISOFLOOR:-}" ] || cg_destroy "$CG_ISOFLOOR"
	CG_ISOFLOOR=
}

# ---- titus ----------------------------------------------------------------

# start_titus: titus (github.com/AGWA/titus, built outside the tree, named
# by BENCH_TITUS), the other proxy built as a process per connection.  It
# has an RSA key server only (no ECDSA) and one port per process, so one
# titus on T_RSA serves every test it can take.  It binds the wildcard
# address: bench/run puts the whole run in a network namespace of its own
# (loopback only) when titus is in it.  Its children run as BENCH_USER,
# its key server as BENCH_KEYUSER, chrooted to the empty dir.
start_titus() {
	CG_TITUS=$(cg_new titus)
	sh -c "$CG_EXEC" sh "$CG_TITUS" "$TITUS_BIN" --port "$T_RSA" \
	    --network-user "$BENCH_USER" --network-group "$BENCH_USER" \
	    --keyserver-user "$BENCH_KEYUSER" \
	    --keyserver-group "$BENCH_KEYUSER" --chroot "$B/empty" \
	    --max-children $(( MANY_CONNS + 1024 )) --max-handshake-time 60 \
	    --key "$B/rsa.key" --cert "$B/rsa.crt" \
	    --backend 127.0.0.1 --backend-port "$NGX" \
	    >> "$B/titus.log" 2>&1 &
	TITUS_PID=$!
	wait_port "$T_RSA" || die "titus did not start: $(tail "$B/titus.log")"
}

stop_titus() {
	stop_pid "${TITUS_PID:-}"
	TITUS_PID=
	[ -z "${CG_TITUS:-}" ] || cg_destroy "$CG_TITUS"
	CG_TITUS=
}

# proxy_keys NAME: the keys (rsa, ec) NAME serves.
proxy_keys() {
	case "$1" in
	titus)	echo rsa ;;
	*)	echo rsa ec ;;
	esac
}

# proxy_cg NAME, proxy_port NAME rsa|ec: look-ups by proxy name.  titus
# answers for "ec" with its RSA port (keep-alive, idle, many: the
# handshake is not what those measure, except many's opening time).
proxy_cg() {
	case "$1" in
	hitch)	echo "$CG_HITCH" ;;
	recluse) echo "$CG_RECLUSE" ;;
	floor)	echo "$CG_FLOOR" ;;
	isofloor) echo "$CG_ISOFLOOR" ;;
	titus)	echo "$CG_TITUS" ;;
	esac
}
proxy_port() {
	case "$1.$2" in
	hitch.rsa)	echo "$H_RSA" ;;
	hitch.ec)	echo "$H_EC" ;;
	recluse.rsa)	echo "$R_RSA" ;;
	recluse.ec)	echo "$R_EC" ;;
	floor.rsa)	echo "$F_RSA" ;;
	floor.ec)	echo "$F_EC" ;;
	isofloor.rsa)	echo "$I_RSA" ;;
	isofloor.ec)	echo "$I_EC" ;;
	titus.*)	echo "$T_RSA" ;;
	esac
}

# cg_ticks CG: "PID TICKS" (user + system clock ticks so far) for every
# process in CG, one cat for all of them.
cg_ticks() {
	cg_pids "$1" | sed 's|.*|/proc/&/stat|' |
	    { xargs -r cat 2>/dev/null || true; } |
	    awk '{ match($0, /\) [^)]*$/)
		split(substr($0, RSTART + 2), f, " ")
		print $1, f[12] + f[13] }'
}

# busiest BEFORE AFTER SECONDS: of the processes in both cg_ticks files,
# the one that used the most CPU in between: "SHARE NAME", SHARE in cores
# (1.00: it ran all the time; a process that cannot use more is the bound).
busiest() {
	local pid share
	read -r pid share < <(awk -v hz="$(getconf CLK_TCK)" -v s="$3" '
	    NR == FNR { t[$1] = $2; next }
	    ($1 in t) && $2 - t[$1] > m { m = $2 - t[$1]; p = $1 }
	    END { if (p == "") print "- 0"
		else printf "%s %.2f\n", p, m / hz / (s > 0 ? s : 1) }' "$1" "$2")
	echo "$share $(ps -o args= -p "$pid" 2>/dev/null | tr ' ' _ | cut -c1-32)"
}
