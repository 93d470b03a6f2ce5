#!/usr/bin/env python3
"""A client behind a pretend load balancer, for tests/pp.bats: it sends a
PROXY header, then speaks TLS on the same connection (verified against
CA) and makes one HTTP request, printing the answer's body.

    ppclient.py CA HOST PORT v1|v2 SRC DST SPORT DPORT [split]
    ppclient.py CA HOST PORT local      (v2 LOCAL: a health check)
    ppclient.py CA HOST PORT none       (TLS at once, no header)
    ppclient.py CA HOST PORT raw HEX... (these bytes, then TLS; with
                                         several, one connection each)
    ppclient.py CA HOST PORT hold HEX   (these bytes, then wait for EOF)

"split" sends the header in two writes 0.3 s apart.  Exit 0 when the
body came back, 2 when the connection was closed or TLS failed (the
reason on stderr), for "hold" 0 once the server has closed.  With
several raw headers, one line for each, "ok" or "closed", and the exit
status of the last.
"""
import socket
import ssl
import struct
import sys
import time

SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def v2(src, dst, sport, dport):
    fam = socket.AF_INET6 if ":" in src else socket.AF_INET
    addrs = (socket.inet_pton(fam, src) + socket.inet_pton(fam, dst) +
             struct.pack("!HH", sport, dport))
    noop = b"\x04\x00\x02xx"		# a PP2_TYPE_NOOP TLV, to be skipped
    body = addrs + noop
    return (SIG + bytes([0x21, 0x11 if fam == socket.AF_INET else 0x21]) +
            struct.pack("!H", len(body)) + body)


def header(argv):
    mode = argv[0]
    if mode == "v1":
        fam = "TCP6" if ":" in argv[1] else "TCP4"
        return ("PROXY %s %s %s %s %s\r\n" % (fam, *argv[1:5])).encode()
    if mode == "v2":
        return v2(argv[1], argv[2], int(argv[3]), int(argv[4]))
    if mode == "local":
        return SIG + b"\x20\x00\x00\x00"
    if mode in ("raw", "hold"):
        return bytes.fromhex(argv[1])
    return b""


def main():
    ca, host, port, argv = sys.argv[1], sys.argv[2], int(sys.argv[3]), \
        sys.argv[4:]
    if argv[0] == "raw" and len(argv) > 2:
        for h in argv[1:]:
            rc = one(ca, host, port, ["raw", h], quiet=True)
            print("ok" if rc == 0 else "closed", flush=True)
        return rc
    return one(ca, host, port, argv)


def one(ca, host, port, argv, quiet=False):
    hdr = header(argv)
    s = socket.create_connection((host, port), timeout=30)
    if argv[-1] == "split" and len(hdr) > 1:
        s.sendall(hdr[:len(hdr) // 2])
        time.sleep(0.3)
        s.sendall(hdr[len(hdr) // 2:])
    elif hdr:
        s.sendall(hdr)
    if argv[0] == "hold":
        try:
            while s.recv(4096):
                pass
        except OSError:
            pass
        return 0
    ctx = ssl.create_default_context(cafile=ca)
    try:
        t = ctx.wrap_socket(s, server_hostname="localhost")
        t.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n"
                  b"Connection: close\r\n\r\n")
        data = b""
        while True:
            chunk = t.recv(4096)
            if not chunk:
                break
            data += chunk
    except (OSError, ssl.SSLError) as e:
        print("closed: %s" % e, file=sys.stderr)
        return 2
    if b"\r\n\r\n" not in data:
        print("closed: no answer", file=sys.stderr)
        return 2
    if not quiet:
        sys.stdout.write(data.split(b"\r\n\r\n", 1)[1].decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
