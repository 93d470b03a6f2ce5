/*
 * The PROXY protocol (haproxy's proxy-protocol.txt), versions 1 and 2:
 * the header a connection child writes to its backend before any byte of
 * the client's (pp.c), and the parser of the header a load balancer in
 * front sends before the TLS handshake (pp_parse.c).  Both are pure: no
 * system call, no allocation, so the parser runs inside the child's
 * sandbox and under libFuzzer (tests/fuzz/fuzz_pp.c) alike.
 */
#ifndef PP_H
#define PP_H

#include <sys/types.h>
#include <sys/socket.h>

#include <stddef.h>
#include <stdint.h>

#define PP_V1_MAX	107		/* a v1 line, CRLF included */
#define PP_V2_FIXED	16		/* v2 signature, command, length */
#define PP_V2_MAX	(PP_V2_FIXED + 65535)
#define PP_OUT_MAX	4096		/* the most pp_encode() writes */

/* v2 TLV types and SSL sub-types (proxy-protocol.txt 2.2). */
#define PP2_TYPE_ALPN		0x01
#define PP2_TYPE_AUTHORITY	0x02
#define PP2_TYPE_SSL		0x20
#define PP2_SUBTYPE_SSL_VERSION	0x21
#define PP2_SUBTYPE_SSL_CN	0x22
#define PP2_SUBTYPE_SSL_CIPHER	0x23
#define PP2_SUBTYPE_SSL_SIG_ALG	0x24
#define PP2_SUBTYPE_SSL_KEY_ALG	0x25
/* recluse's own, in the custom range (0xE0-0xEF): the client certificate */
#define PP2_TYPE_RECLUSE_CLIENT_SAN	0xE0	/* its first DNS name */
#define PP2_TYPE_RECLUSE_CLIENT_FP	0xE1	/* SHA-256, lowercase hex */
#define PP2_CLIENT_SSL		0x01
#define PP2_CLIENT_CERT_CONN	0x02
#define PP2_CLIENT_CERT_SESS	0x04

/*
 * What the v2 SSL TLV says of the client's TLS connection.  Strings are
 * NUL-terminated, NULL when unknown (the sub-TLV is then left out); each
 * is cut at 255 bytes.
 */
struct pp_tls {
	const char	*version;	/* "TLSv1.3" */
	const char	*cipher;	/* "TLS_AES_256_GCM_SHA384" */
	const char	*sig_alg;	/* our certificate's signature
					   algorithm: "RSA-SHA256" */
	const char	*key_alg;	/* its key: "RSA2048", "EC256" */
	int		 client_cert;	/* the client sent a certificate */
	int		 client_verified;	/* and it was verified */
	const char	*client_cn;	/* its subject's CN */
	const char	*client_san;	/* its first DNS name */
	const char	*client_fp;	/* its SHA-256, lowercase hex */
};

/* What the header carries. */
struct pp_info {
	struct sockaddr_storage	 src;	/* the client; AF_UNSPEC: unknown, */
	struct sockaddr_storage	 dst;	/* the address it reached */
	const char		*alpn;	/* v2: the agreed protocol, or NULL */
	const char		*authority;	/* v2: the SNI, or NULL */
	const struct pp_tls	*tls;	/* v2: the SSL TLV, or NULL */
};

/*
 * pp_encode(version, info, buf, len):
 * Write info as a PROXY header of version 1 or 2 into buf: v1, "PROXY
 * TCP4|TCP6 SRC DST SPORT DPORT\r\n" (UNKNOWN when src is AF_UNSPEC or the
 * families differ); v2, the PROXY command (LOCAL when src is AF_UNSPEC)
 * with the addresses (an IPv4 address beside an IPv6 one is written
 * IPv4-mapped; two IPv4-mapped ones as IPv4), then the TLVs ALPN,
 * AUTHORITY, SSL (VERSION, CN, CIPHER, SIG_ALG, KEY_ALG) and recluse's
 * client certificate ones, each present only if known.  Return the
 * header's length, or -1 if it does not fit in len bytes.
 */
ssize_t	pp_encode(int version, const struct pp_info *info, uint8_t *buf,
	    size_t len);

/* A received header (pp_parse()). */
struct pp_hdr {
	int			 version;	/* 1 or 2 */
	int			 local;		/* LOCAL, UNKNOWN, or an address
						   family we do not carry: the
						   addresses are not given */
	struct sockaddr_storage	 src, dst;	/* unless local */
};

/*
 * pp_parse(buf, len, h):
 * Read a PROXY header, version 1 or 2, at the start of the len bytes of
 * buf: strictly (the v1 grammar with decimal ports, addresses of the
 * family named, no byte beyond PP_V1_MAX; v2 version 2, command LOCAL or
 * PROXY, a length that holds the family's addresses, well-formed TLVs,
 * which are otherwise ignored).  Return the header's length (> 0) with
 * *h filled in, 0 if the bytes so far begin a header but do not end it,
 * or -1 if they cannot begin one.  Never reads beyond buf[len - 1].
 */
int	pp_parse(const uint8_t *buf, size_t len, struct pp_hdr *h);

#endif
