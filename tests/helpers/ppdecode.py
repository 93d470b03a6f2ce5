#!/usr/bin/env python3
"""A PROXY protocol receiver for the tests (tests/pp.bats): a backend
that reads a PROXY header (v1 or v2) from each connection, decodes it
strictly, and answers one HTTP request with "ok".

    ppdecode.py HOST PORT OUT

For each connection (but those closed before their first byte: recluse
probes its backends so) it appends one JSON object to OUT: the raw header in
hex, the decoded fields, and "errors", a list of what is wrong with it
(empty for a good header).  A v2 header is checked byte by byte: the
signature, the version and command, the family, the length, the
addresses, and every TLV, which must be one recluse sends (ALPN,
AUTHORITY, SSL with its sub-TLVs, the custom client-certificate ones),
once each, in recluse's order (proxy/pp.h), filling the length exactly;
then the header is encoded again from the decoded fields and compared
with the bytes received.
"""
import ipaddress
import json
import socket
import struct
import sys
import threading

SIG = b"\r\n\r\n\x00\r\nQUIT\n"
PP2_TYPE_ALPN = 0x01
PP2_TYPE_AUTHORITY = 0x02
PP2_TYPE_SSL = 0x20
SSL_SUB = {0x21: "version", 0x22: "cn", 0x23: "cipher", 0x24: "sig_alg",
           0x25: "key_alg"}
SSL_ORDER = [0x21, 0x22, 0x23, 0x24, 0x25]
CUSTOM = {0xE0: "client_san", 0xE1: "client_fp"}
TOP_ORDER = [PP2_TYPE_ALPN, PP2_TYPE_AUTHORITY, PP2_TYPE_SSL, 0xE0, 0xE1]


def recv_exact(conn, n):
    buf = b""
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            raise EOFError("connection closed in the header")
        buf += chunk
    return buf


def read_header(conn):
    """The header's bytes, exactly: nothing of what follows.  None for a
    connection closed before its first byte (recluse's backend probe)."""
    first = conn.recv(1)
    if not first:
        return None
    if first == b"P":
        line = first
        while not line.endswith(b"\r\n"):
            if len(line) >= 107:
                raise ValueError("v1 line longer than 107 bytes")
            line += recv_exact(conn, 1)
        return line
    fixed = first + recv_exact(conn, 15)
    length = struct.unpack("!H", fixed[14:16])[0]
    return fixed + recv_exact(conn, length)


def tlvs(data, errors, what):
    """(type, value) pairs filling data exactly."""
    out = []
    pos = 0
    while pos < len(data):
        if len(data) - pos < 3:
            errors.append("%s: %d stray bytes" % (what, len(data) - pos))
            break
        t, n = data[pos], struct.unpack("!H", data[pos + 1:pos + 3])[0]
        if pos + 3 + n > len(data):
            errors.append("%s: TLV 0x%02x overruns by %d bytes" %
                          (what, t, pos + 3 + n - len(data)))
            break
        out.append((t, data[pos + 3:pos + 3 + n]))
        pos += 3 + n
    return out


def check_order(types, order, errors, what):
    for t in types:
        if t not in order:
            errors.append("%s: unexpected TLV type 0x%02x" % (what, t))
    known = [t for t in types if t in order]
    if len(set(known)) != len(known):
        errors.append("%s: a TLV type repeated: %r" % (what, types))
    if known != sorted(known, key=order.index):
        errors.append("%s: TLVs out of order: %r" % (what, types))


def text(v, errors, what):
    try:
        s = v.decode("ascii")
    except UnicodeDecodeError:
        errors.append("%s: not ASCII" % what)
        return v.hex()
    if any(ord(c) < 0x20 or ord(c) > 0x7e for c in s):
        errors.append("%s: a control character" % what)
    if len(v) == 0:
        errors.append("%s: empty" % what)
    return s


def decode_ssl(v, d, errors):
    if len(v) < 5:
        errors.append("SSL TLV shorter than 5 bytes")
        return
    d["ssl_client"] = v[0]
    d["ssl_verify"] = struct.unpack("!I", v[1:5])[0]
    if v[0] & ~0x07:
        errors.append("SSL client byte 0x%02x has unknown bits" % v[0])
    if not v[0] & 0x01:
        errors.append("SSL TLV without PP2_CLIENT_SSL")
    subs = tlvs(v[5:], errors, "SSL")
    check_order([t for t, _ in subs], SSL_ORDER, errors, "SSL")
    for t, sv in subs:
        if t in SSL_SUB:
            d["ssl_" + SSL_SUB[t]] = text(sv, errors, SSL_SUB[t])


def decode_v2(h, d, errors):
    d["version"] = 2
    if h[:12] != SIG:
        errors.append("bad v2 signature")
    vc, fam = h[12], h[13]
    length = struct.unpack("!H", h[14:16])[0]
    if vc >> 4 != 2:
        errors.append("version nibble %d, not 2" % (vc >> 4))
    d["command"] = {0: "LOCAL", 1: "PROXY"}.get(vc & 0x0f, vc & 0x0f)
    if len(h) != 16 + length:
        errors.append("length %d, but %d bytes" % (length, len(h) - 16))
    body = h[16:]
    if fam == 0x11:
        alen, af = 4, socket.AF_INET
    elif fam == 0x21:
        alen, af = 16, socket.AF_INET6
    elif fam == 0x00:
        alen, af = 0, None
    else:
        errors.append("family byte 0x%02x" % fam)
        return
    d["family"] = {0x11: "TCP4", 0x21: "TCP6", 0x00: "UNSPEC"}[fam]
    if af is not None:
        if len(body) < 2 * alen + 4:
            errors.append("address block truncated")
            return
        d["src"] = socket.inet_ntop(af, body[:alen])
        d["dst"] = socket.inet_ntop(af, body[alen:2 * alen])
        d["sport"], d["dport"] = struct.unpack(
            "!HH", body[2 * alen:2 * alen + 4])
    top = tlvs(body[2 * alen + 4 if af else 0:], errors, "header")
    check_order([t for t, _ in top], TOP_ORDER, errors, "header")
    for t, v in top:
        if t == PP2_TYPE_ALPN:
            d["alpn"] = text(v, errors, "ALPN")
        elif t == PP2_TYPE_AUTHORITY:
            d["authority"] = text(v, errors, "AUTHORITY")
        elif t == PP2_TYPE_SSL:
            decode_ssl(v, d, errors)
        elif t in CUSTOM:
            d[CUSTOM[t]] = text(v, errors, CUSTOM[t])


def tlv(t, v):
    return bytes([t]) + struct.pack("!H", len(v)) + v


def encode_v2(d):
    """The header again, from the decoded fields, in recluse's order."""
    body = b""
    fam = {"TCP4": 0x11, "TCP6": 0x21, "UNSPEC": 0x00}[d["family"]]
    if fam:
        af = socket.AF_INET if fam == 0x11 else socket.AF_INET6
        body += socket.inet_pton(af, d["src"]) + socket.inet_pton(af, d["dst"])
        body += struct.pack("!HH", d["sport"], d["dport"])
    for key, t in (("alpn", 0x01), ("authority", 0x02)):
        if key in d:
            body += tlv(t, d[key].encode())
    if "ssl_client" in d:
        v = bytes([d["ssl_client"]]) + struct.pack("!I", d["ssl_verify"])
        for t in SSL_ORDER:
            if "ssl_" + SSL_SUB[t] in d:
                v += tlv(t, d["ssl_" + SSL_SUB[t]].encode())
        body += tlv(0x20, v)
    for t in (0xE0, 0xE1):
        if CUSTOM[t] in d:
            body += tlv(t, d[CUSTOM[t]].encode())
    cmd = 0x21 if d["command"] == "PROXY" else 0x20
    return SIG + bytes([cmd, fam]) + struct.pack("!H", len(body)) + body


def decode_v1(h, d, errors):
    d["version"] = 1
    line = h.decode("ascii", "replace")
    if not line.endswith("\r\n") or "\r" in line[:-2] or "\n" in line[:-2]:
        errors.append("v1 line not ended by one CRLF")
    f = line[:-2].split(" ")
    if f[0] != "PROXY":
        errors.append("v1 line does not start with PROXY")
        return
    if len(f) == 2 and f[1] == "UNKNOWN":
        d["family"] = "UNKNOWN"
        return
    if len(f) != 6 or f[1] not in ("TCP4", "TCP6"):
        errors.append("v1 line has not 6 fields")
        return
    d["family"] = f[1]
    cls = ipaddress.IPv4Address if f[1] == "TCP4" else ipaddress.IPv6Address
    for key, v in (("src", f[2]), ("dst", f[3])):
        try:
            d[key] = str(cls(v))
            if d[key] != v:
                errors.append("%s %s not in its shortest form" % (key, v))
        except ValueError:
            errors.append("%s %r is not a %s address" % (key, v, f[1]))
    for key, v in (("sport", f[4]), ("dport", f[5])):
        if not v.isdigit() or (v != "0" and v[0] == "0") or int(v) > 65535:
            errors.append("%s %r is not a port" % (key, v))
        else:
            d[key] = int(v)
    if len(h) > 107:
        errors.append("v1 line longer than 107 bytes")


def serve(conn, out, lock):
    d, errors = {}, []
    try:
        h = read_header(conn)
        if h is None:
            conn.close()
            return
        d["raw"] = h.hex()
        if h[:1] == b"P":
            decode_v1(h, d, errors)
        else:
            decode_v2(h, d, errors)
            if not errors and encode_v2(d) != h:
                errors.append("re-encoded header differs: %s" %
                              encode_v2(d).hex())
        req = b""
        while b"\r\n\r\n" not in req:
            chunk = conn.recv(4096)
            if not chunk:
                break
            req += chunk
        d["request"] = req.split(b"\r\n", 1)[0].decode("ascii", "replace")
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n"
                     b"Connection: close\r\n\r\nok\n")
    except (EOFError, ValueError, OSError) as e:
        errors.append(str(e))
    finally:
        conn.close()
    d["errors"] = errors
    with lock:
        with open(out, "a") as f:
            f.write(json.dumps(d, sort_keys=True) + "\n")


def main():
    host, port, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, port))
    s.listen(64)
    lock = threading.Lock()
    while True:
        conn, _ = s.accept()
        threading.Thread(target=serve, args=(conn, out, lock),
                         daemon=True).start()


if __name__ == "__main__":
    main()
