#!/usr/bin/env bats
# The fuzz targets (tests/fuzz/, make fuzz) as a regression test: each is
# built with clang, libFuzzer, ASan and UBSan, and runs for
# ${FUZZ_SECONDS:-60} s on a scratch copy of its seed corpus
# (tests/fuzz/corpus/TARGET: real inputs and past findings, which run
# first, every time).  A finding is a crash, a leak, a sanitizer report or
# a broken property, and fails the test with the fuzzer's last lines; its
# input is in the test's temporary directory.

load helpers

# fuzz TARGET: build it, run it, show its figures.
fuzz() {
	local target=$1 scratch="$BATS_TEST_TMPDIR/$1" last
	run make -C "$TOP" "tests/fuzz/build/$target"
	if [ "$status" -ne 0 ]; then
		echo "$output" | tail -n 30
		return 1
	fi
	run sh "$TOP/tests/fuzz/run" "$target" "${FUZZ_SECONDS:-60}" "$scratch"
	if [ "$status" -ne 0 ]; then
		echo "$output"
		echo "---- $scratch/fuzz.log"
		grep -v '^ *"' "$scratch/fuzz.log" | tail -n 60
		return 1
	fi
	last=${lines[${#lines[@]}-1]}
	# the run did run: the seeds at least, and no finding
	[[ "$last" =~ ^fuzz:\ $target:\ ([0-9]+)\ runs ]]
	[ "${BASH_REMATCH[1]}" -ge "$(ls "$TOP/tests/fuzz/corpus/$target" | wc -l)" ]
	echo "# $last" >&3
}

@test "fuzz_conf: every configuration that parses dumps (-nn) one that parses to the same dump" {
	fuzz fuzz_conf
}

@test "fuzz_kpcheck: keyproc accepts exactly the requests of a legal TLS shape, in the channel's budget and scope" {
	fuzz fuzz_kpcheck
}

@test "fuzz_chan: the parent takes from a child or a spawner exactly the messages lib/wire.h allows, and relays log lines printable and whole" {
	fuzz fuzz_chan
}

@test "fuzz_pp: a PROXY header is complete at its end and not before, never read past, and its addresses encode back" {
	fuzz fuzz_pp
}
