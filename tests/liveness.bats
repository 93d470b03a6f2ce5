#!/usr/bin/env bats
# keyproc liveness: the parent pings keyproc every 250 ms and kills and
# replaces one that has not answered in 1.5 s (lib/wire.h, KP_CTL_PING); a
# child waits for its signature 5 s at most, and not at all once keyproc
# has closed its channel.

load helpers

setup() {
	common_setup
}

teardown() {
	common_teardown
}

# STUCK_LINE: the parent's one warning about a keyproc that did not answer.
STUCK_LINE="${STAMP}"'parent: keyproc [0-9]+: no answer for [0-9]+\.[0-9] s: killed, starting a new one$'

# now_ms: a monotonic-enough clock for the bounds, in milliseconds.
now_ms() {
	echo $(( $(date +%s%N) / 1000000 ))
}

# echo_once WORD: WORD comes back through recluse on one connection
# (tlspipe, 10 s at most); fails at once when the handshake fails.
echo_once() {
	[ "$(echo "$1" | tls_echo "$PORT")" = "$1" ]
}

# liveness_setup [TYPE]: recluse (-v) in front of an echo backend, with a
# certificate of TYPE (ec256), serving; its keyproc in KP.
liveness_setup() {
	e2e_setup "${1:-ec256}"
	start_recluse "$T/recluse.conf" -v
	echo_once before
	KP=$(keyproc_of "$RECLUSE_PID")
	[ -n "$KP" ]
}

# cpu_ticks PID: the user and system time PID has used, in clock ticks.
cpu_ticks() {
	awk '{ print $14 + $15 }' "/proc/$1/stat"
}

@test "a stopped keyproc is killed and replaced: handshakes succeed again within 3 s, and the log says so once" {
	liveness_setup
	kill -STOP "$KP"
	start=$(now_ms)
	# the first attempts fail (their keyproc is stopped), then one works
	until echo_once again; do
		[ $(( $(now_ms) - start )) -lt 10000 ]
	done
	elapsed=$(( $(now_ms) - start ))
	echo "# handshakes work again ${elapsed} ms after SIGSTOP" >&3
	[ "$elapsed" -le 3000 ]
	# the stopped keyproc was killed (SIGKILL works on a stopped process)
	# and reaped: its pid is no process, not even a zombie
	wait_for test ! -e "/proc/$KP"
	kp2=$(keyproc_of "$RECLUSE_PID")
	[ -n "$kp2" ]
	[ "$kp2" != "$KP" ]
	# one warning, naming it; it was not also reported as a death
	[ "$(grep -cE "$STUCK_LINE" "$T/recluse.log")" -eq 1 ]
	grep -qE "${STAMP}parent: keyproc $KP: no answer for" "$T/recluse.log"
	grep -qE "${STAMP}parent: keyproc restarted \(pid $kp2\)$" "$T/recluse.log"
	[ "$(grep -c "keyproc was killed" "$T/recluse.log")" -eq 0 ]
	# the new keyproc serves TLS 1.3 and 1.2, and s_client agrees
	echo_through after13 -tls1_3
	echo_through after12 -tls1_2
	kill -0 "$RECLUSE_PID"
}

@test "a handshake waiting for a stopped keyproc fails within 4 s, and the child's log line names keyproc" {
	liveness_setup
	kill -STOP "$KP"
	start=$(now_ms)
	run echo_once waiting
	[ "$status" -ne 0 ]
	elapsed=$(( $(now_ms) - start ))
	echo "# the waiting handshake failed ${elapsed} ms after SIGSTOP" >&3
	[ "$elapsed" -le 4000 ]
	# keyproc was killed under it: its channel closed, the child failed
	# at once, saying why, at warning level
	wait_for grep -qE "${STAMP}child [0-9]+: client=127\.0\.0\.1:[0-9]+: handshake: keyproc: closed the channel without an answer" "$T/recluse.log"
	grep -qE "$STUCK_LINE" "$T/recluse.log"
	echo_once after
}

@test "a child waits 5 s for keyproc at most, even while the parent cannot replace it" {
	liveness_setup
	# neither keyproc nor the parent moves: only the child's own bound
	# ends its wait
	kill -STOP "$RECLUSE_PID"
	kill -STOP "$KP"
	start=$(now_ms)
	run echo_once waiting
	elapsed=$(( $(now_ms) - start ))
	kill -CONT "$RECLUSE_PID"
	[ "$status" -ne 0 ]
	echo "# the waiting handshake failed ${elapsed} ms after SIGSTOP" >&3
	[ "$elapsed" -ge 4500 ]
	[ "$elapsed" -le 8000 ]
	wait_for grep -qE "${STAMP}child [0-9]+: client=127\.0\.0\.1:[0-9]+: handshake: keyproc: did not answer in 5\.0 s" "$T/recluse.log"
	# once it runs again, the parent replaces the stopped keyproc
	wait_for grep -qE "$STUCK_LINE" "$T/recluse.log"
	wait_for test ! -e "/proc/$KP"
	wait_for echo_once after
}

@test "a healthy keyproc is not replaced: 100 handshakes one by one and 200 at once, with an RSA key" {
	liveness_setup rsa2048
	start=$(now_ms)
	for i in $(seq 1 100); do
		echo_once "hello $i"
	done
	# 200 handshakes at once: keyproc has a queue of signatures, and
	# answers the pings ahead of it
	run "$HELPERS/tlspipe" -c 200 -H 1 -C "$T/ca.crt" -t 60 127.0.0.1 "$PORT"
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "ready 200/200" ]
	echo "# 300 handshakes in $(( $(now_ms) - start )) ms, one keyproc" >&3
	[ "$(keyproc_of "$RECLUSE_PID")" = "$KP" ]
	[ "$(grep -cE "no answer for|keyproc restarted|starting a new one" "$T/recluse.log")" -eq 0 ]
	wait_for test "$(grep -c 'end=client-close$' "$T/recluse.log")" -eq 301
}

@test "an idle keyproc answers a ping every 250 ms, at next to no CPU" {
	liveness_setup
	# what it sends while idle is its answers: 12 in 3 s, give or take
	timeout 3 strace -qq -p "$KP" -e trace=sendto -o "$T/kp.strace" ||
	    true
	n=$(grep -c '^sendto(3, ' "$T/kp.strace" || true)
	echo "# idle keyproc: $n answers in 3 s" >&3
	[ "$n" -ge 6 ]
	[ "$n" -le 20 ]
	before=$(cpu_ticks "$KP")
	sleep 10
	after=$(cpu_ticks "$KP")
	echo "# idle keyproc: $(( after - before )) ticks of CPU in 10 s (40 pings)" >&3
	[ $(( after - before )) -le 5 ]
	[ "$(keyproc_of "$RECLUSE_PID")" = "$KP" ]
	echo_once after
}

# With signer threads (keyproc-signers 2) the loop that answers the pings
# no longer signs: a signer stuck in a signature must still get keyproc
# replaced.  strace delays the signers' answers to the children (send(2),
# 8 s each) and nothing else: the loop stays free to answer.
@test "keyproc-signers 2: signers stuck in a signature get keyproc killed and replaced, though its loop runs" {
	e2e_setup ec256
	sed -i "1i keyproc-signers 2" "$T/recluse.conf"
	start_recluse "$T/recluse.conf" -v
	echo_once before
	KP=$(keyproc_of "$RECLUSE_PID")
	[ -n "$KP" ]
	tids=$(ls "/proc/$KP/task" | grep -vx "$KP")
	[ "$(echo "$tids" | wc -l)" -eq 2 ]
	strace -qq $(printf -- '-p %s ' $tids) -e trace=sendto \
	    -e inject=sendto:delay_enter=8000000 -o "$T/strace.txt" &
	STRACE_PID=$!
	track "$STRACE_PID"
	for t in $tids; do
		wait_for grep -Eq "^TracerPid:\s+$STRACE_PID$" \
		    "/proc/$KP/task/$t/status"
	done
	# the loop still answers while no signature is asked for
	sleep 1
	[ "$(grep -cE "$STUCK_LINE" "$T/recluse.log")" -eq 0 ]
	# a handshake: its signature is stuck in a signer
	start=$(now_ms)
	! echo_once stuck || false
	wait_for grep -qE "${STAMP}parent: keyproc $KP: no answer for" \
	    "$T/recluse.log"
	kill "$STRACE_PID"
	until echo_once again; do
		[ $(( $(now_ms) - start )) -lt 10000 ]
	done
	kp2=$(keyproc_of "$RECLUSE_PID")
	[ -n "$kp2" ]
	[ "$kp2" != "$KP" ]
	[ "$(grep -cE "$STUCK_LINE" "$T/recluse.log")" -eq 1 ]
}
