#!/usr/bin/env python3
"""memfind FILE... -- PID...: look for the bytes of each FILE in the
readable memory of running processes (/proc/PID/maps + /proc/PID/mem, as
memscan.py reads them).  Prints one line per process and file:
"PID FILE found|absent".  Exit 0; 2 on a usage error.  Standard library
only.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from memscan import memory  # noqa: E402


def main():
    if "--" not in sys.argv[1:]:
        print(__doc__, file=sys.stderr)
        return 2
    cut = sys.argv.index("--")
    files, pids = sys.argv[1:cut], sys.argv[cut + 1:]
    if not files or not pids:
        print(__doc__, file=sys.stderr)
        return 2
    pats = {}
    for f in files:
        with open(f, "rb") as fp:
            pats[f] = fp.read()
        if not 8 <= len(pats[f]) <= 4096:
            print(f"memfind: {f}: 8 to 4096 bytes, please", file=sys.stderr)
            return 2
    for pid in pids:
        hits = set()
        for chunk in memory(pid):
            for f, pat in pats.items():
                if f not in hits and pat in chunk:
                    hits.add(f)
        for f in files:
            print(f"{pid} {f} {'found' if f in hits else 'absent'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
