#!/usr/bin/env python3
"""memscan KEYFILE PID...: look for a private key's secret numbers in the
readable memory of running processes (/proc/PID/maps + /proc/PID/mem).

The numbers come from `openssl pkey -text`: RSA p, q and d, or the EC
private scalar.  Each is searched for by its first 24 bytes (or all of it,
if shorter) in big-endian order (DER, PEM buffers) and little-endian order
(OpenSSL BIGNUM limbs on x86).  Prints one line per process, number and
order: "PID NAME ORDER found|absent".  Exit 0; 2 on a usage error.
Standard library only.
"""
import re
import subprocess
import sys

NAMES = {"prime1": "p", "prime2": "q", "privateExponent": "d", "priv": "priv"}


def secrets(keyfile):
    text = subprocess.run(["openssl", "pkey", "-in", keyfile, "-text",
                           "-noout"], check=True, capture_output=True,
                          text=True).stdout
    found, name, digits = {}, None, ""
    for line in text.splitlines() + ["end:"]:
        if line.startswith((" ", "\t")) and name is not None:
            digits += re.sub(r"[^0-9a-fA-F]", "", line)
            continue
        if name is not None and digits:
            value = bytes.fromhex(digits).lstrip(b"\0")
            found[NAMES[name]] = value
        label = line.split(":")[0].strip()
        name, digits = (label, "") if label in NAMES else (None, "")
    return found


CHUNK = 16 << 20
HUGE = 4 << 30      # sanitizer shadow memory: terabytes of zero pages


def memory(pid):
    """Yield the readable memory of pid in chunks that overlap by 64 bytes,
    so that no pattern is missed at a chunk boundary."""
    with open(f"/proc/{pid}/maps") as maps, \
            open(f"/proc/{pid}/mem", "rb", 0) as mem:
        for line in maps:
            m = re.match(r"([0-9a-f]+)-([0-9a-f]+) (\S+)", line)
            start, end = int(m.group(1), 16), int(m.group(2), 16)
            if m.group(3)[0] != "r" or "[vvar]" in line or \
                    "[vsyscall]" in line:
                continue
            if end - start > HUGE:
                print(f"memscan: {pid}: skipped {end - start} bytes at "
                      f"{start:#x}", file=sys.stderr)
                continue
            pos = start
            while pos < end:
                try:
                    mem.seek(pos)
                    data = mem.read(min(CHUNK + 64, end - pos))
                except (OSError, OverflowError, ValueError):
                    break
                if not data:
                    break
                yield data
                pos += CHUNK


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    nums = secrets(sys.argv[1])
    if not nums:
        print("memscan: no secret numbers in " + sys.argv[1], file=sys.stderr)
        return 2
    for pid in sys.argv[2:]:
        pats = {}
        for name, value in nums.items():
            pats[(name, "big-endian")] = value[:24]
            pats[(name, "little-endian")] = value[::-1][:24]
        hits = set()
        for chunk in memory(pid):
            for key, pat in pats.items():
                if key not in hits and pat in chunk:
                    hits.add(key)
        for (name, order) in sorted(pats):
            state = "found" if (name, order) in hits else "absent"
            print(f"{pid} {name} {order} {state}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
