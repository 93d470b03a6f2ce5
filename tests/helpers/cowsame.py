#!/usr/bin/env python3
"""cowsame PID: in PID's writable mappings of a spawner's sealed heap files
(memfd:recluse-spawner, proxy/heapfile.c), count the pages PID holds a
copy of its own (present in /proc/PID/pagemap, not a file page) and, of
those, how many hold the same bytes as the file, read through PID's
read-only mapping of it.  Prints "copies N same M files F" (F: the frozen
writable mappings seen).  Exit 0; 2 on a usage error.  Standard library
only; root (pagemap frame bits, /proc/PID/mem of another user).
"""
import struct
import sys

PAGE = 4096
NAME = "/memfd:recluse-spawner"


def mappings(pid):
    """(start, end, perms, offset, inode) of each mapping of the file."""
    out = []
    with open(f"/proc/{pid}/maps") as fp:
        for line in fp:
            f = line.split()
            if len(f) < 6 or not f[5].startswith(NAME):
                continue
            a, b = (int(x, 16) for x in f[0].split("-"))
            out.append((a, b, f[1], int(f[2], 16), f[4]))
    return out


def own_copy(pagemap, addr):
    """Whether the page at addr is present and anonymous (a copy)."""
    pagemap.seek(addr // PAGE * 8)
    v = struct.unpack("<Q", pagemap.read(8))[0]
    present = (v >> 63) & 1
    file_or_shared = (v >> 61) & 1
    return present and not file_or_shared


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    pid = sys.argv[1]
    maps = mappings(pid)
    refs = {(m[4]): m for m in maps if m[2].startswith("r--")}
    copies = same = files = 0
    with open(f"/proc/{pid}/pagemap", "rb") as pm, \
            open(f"/proc/{pid}/mem", "rb") as mem:
        for (a, b, perms, off, inode) in maps:
            if not perms.startswith("rw") or inode not in refs:
                continue
            files += 1
            ra, rb, _, roff, _ = refs[inode]
            for addr in range(a, b, PAGE):
                if not own_copy(pm, addr):
                    continue
                copies += 1
                mem.seek(addr)
                mine = mem.read(PAGE)
                mem.seek(ra + off - roff + (addr - a))
                if mine == mem.read(PAGE):
                    same += 1
    print(f"copies {copies} same {same} files {files}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
