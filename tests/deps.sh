#!/bin/sh
# Install the Debian packages recluse needs to build, test and run the demo:
# only those missing, so a second run does nothing and prints nothing.
#	tests/deps.sh [demo]
# Used by "make deps" (and so by "make test") and .ci/run; "make demo"
# asks for the demo's packages only (build, run, curl).
set -eu

packages="build-essential pkg-config libtls-dev libevent-dev libseccomp-dev
	libssl-dev openssl curl iproute2 procps python3"
# The suite's: clang-14 and libclang-rt-14-dev for the fuzz targets (make
# fuzz, fuzz.bats), prometheus for promtool (metrics.bats), nghttp2-client
# and nghttp2-server for nghttp and the h2c backend nghttpd (route.bats),
# nginx-light for a real PROXY protocol receiver (pp.bats), faketime for
# an expired OCSP staple (ocsp.bats).
[ "${1:-test}" = demo ] || packages="$packages bats strace gdb mandoc
	man-db systemd clang-14 libclang-rt-14-dev prometheus nghttp2-client
	nghttp2-server nginx-light faketime"

missing=""
for p in $packages; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
	    missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
	echo "deps: missing:$missing (not a Debian system: install them by hand)" >&2
	exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "deps: missing:$missing; run as root (sudo make ...)" >&2
	exit 1
fi
echo "deps: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086 # one word per package
apt-get install -y -qq --no-install-recommends $missing >/dev/null
