/*
 * The PROXY protocol in a connection child: see pp_child.h.
 *
 * The header is read with MSG_PEEK first, then only the bytes pp_parse()
 * says belong to it are taken off the socket, so the TLS handshake that
 * follows finds the ClientHello where it expects it.  When the parser
 * wants more, every byte seen so far is the header's (a complete header
 * would have ended sooner), so they are taken and the next wait blocks.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <tls.h>

#include "config/cidr.h"
#include "lib/deadline.h"
#include "proxy/pp.h"
#include "proxy/pp_child.h"
#include "proxy/snictx.h"
#include "proxy/tlshook.h"

/* Wait for events on fd until deadline: 1 ready, 0 timeout, -1 error. */
static int
pp_wait(int fd, short events, const struct timespec *deadline)
{
	struct pollfd pfd;
	int n, ms;

	pfd.fd = fd;
	pfd.events = events;
	for (;;) {
		if ((ms = deadline_ms_left(deadline)) == 0)
			return 0;
		if ((n = poll(&pfd, 1, ms)) == -1 && errno == EINTR)
			continue;
		return n;
	}
}

static int
pp_fail(const char **end, const char *why, char *err, size_t errlen,
    const char *msg)
{
	*end = why;
	snprintf(err, errlen, "PROXY header: %s", msg);
	return -1;
}

/* Take exactly n bytes, which a peek has shown are there. */
static int
pp_take(int fd, uint8_t *buf, size_t n)
{
	ssize_t r;

	while (n > 0) {
		if ((r = recv(fd, buf, n, 0)) == -1 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		buf += r;
		n -= (size_t)r;
	}
	return 0;
}

/* Where a received header's addresses go. */
static void
pp_accepted(struct pp_conn *pc, const struct pp_hdr *h)
{
	pc->proxied = 1;
	if (h->local)
		return;
	pc->src = h->src;
	pc->dst = h->dst;
}

int
pp_child_receive(const struct conf_listener *l, int fd, struct pp_conn *pc,
    const struct timespec *deadline, const char **end, char *err,
    size_t errlen)
{
	static uint8_t buf[PP_V2_MAX];
	struct pp_hdr h;
	size_t have = 0, take;
	ssize_t n;
	int r;

	if (l->npp_from == 0 || !conf_cidr_match(l->pp_from, l->npp_from,
	    (const struct sockaddr *)&pc->peer))
		return 0;
	for (;;) {
		switch (pp_wait(fd, POLLIN, deadline)) {
		case 0:
			return pp_fail(end, "proxy-header-timeout", err,
			    errlen, "none in time");
		case -1:
			return pp_fail(end, "internal-error", err, errlen,
			    strerror(errno));
		}
		n = recv(fd, buf + have, sizeof(buf) - have, MSG_PEEK);
		if (n == -1 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n <= 0)
			return pp_fail(end, "proxy-header-truncated", err,
			    errlen, have == 0 ? "connection closed before it" :
			    "connection closed in it");
		if ((r = pp_parse(buf, have + (size_t)n, &h)) == -1)
			return pp_fail(end, "proxy-header-bad", err, errlen,
			    "malformed");
		take = r > 0 ? (size_t)r - have : (size_t)n;
		if (pp_take(fd, buf + have, take) == -1)
			return pp_fail(end, "proxy-header-truncated", err,
			    errlen, "connection closed in it");
		have += take;
		if (r > 0) {
			pp_accepted(pc, &h);
			return 0;
		}
	}
}

/* Our certificate's signature and key algorithms, from the connection. */
static void
pp_cert_algs(struct pp_tls *t, char *key, size_t keylen)
{
	SSL *ssl = tlshook_conn_ssl();
	EVP_PKEY *pk;
	X509 *x;
	int id;

	if (ssl == NULL || (x = SSL_get_certificate(ssl)) == NULL)
		return;
	t->sig_alg = OBJ_nid2sn(X509_get_signature_nid(x));
	if ((pk = X509_get0_pubkey(x)) == NULL)
		return;
	switch ((id = EVP_PKEY_get_base_id(pk))) {
	case EVP_PKEY_RSA:
	case EVP_PKEY_RSA_PSS:
		snprintf(key, keylen, "RSA%d", EVP_PKEY_get_bits(pk));
		break;
	case EVP_PKEY_EC:
		snprintf(key, keylen, "EC%d", EVP_PKEY_get_bits(pk));
		break;
	default:
		snprintf(key, keylen, "%s", OBJ_nid2sn(id));
		break;
	}
	t->key_alg = key;
}

/* What the SSL TLV says; ccp holds the client-certificate fields. */
static void
pp_tls_info(struct tls *cctx, const struct clientcert_pp *ccp,
    struct pp_tls *t, char *key, size_t keylen)
{
	memset(t, 0, sizeof(*t));
	t->version = tls_conn_version(cctx);
	t->cipher = tls_conn_cipher(cctx);
	pp_cert_algs(t, key, keylen);
	t->client_cert = ccp->given;
	t->client_verified = ccp->verified;
	t->client_cn = ccp->cn;
	t->client_san = ccp->san;
	t->client_fp = ccp->fp;
}

/* Where the client is and what it reached. */
static void
pp_addrs(int cfd, const struct pp_conn *pc, struct pp_info *info)
{
	socklen_t len = sizeof(info->dst);

	if (pc->src.ss_family != AF_UNSPEC) {
		info->src = pc->src;
		info->dst = pc->dst;
		return;
	}
	info->src = pc->peer;
	if (getsockname(cfd, (struct sockaddr *)&info->dst, &len) == -1)
		memset(&info->src, 0, sizeof(info->src));	/* UNKNOWN */
}

/* Write all of buf to fd by deadline. */
static int
pp_write(int fd, const uint8_t *buf, size_t len,
    const struct timespec *deadline)
{
	ssize_t n;

	while (len > 0) {
		n = send(fd, buf, len, MSG_NOSIGNAL);
		if (n == -1 && (errno == EAGAIN || errno == EINTR)) {
			switch (pp_wait(fd, POLLOUT, deadline)) {
			case 0:
				errno = ETIMEDOUT;
				return -1;
			case -1:
				return -1;
			}
			continue;
		}
		if (n == -1)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

int
pp_child_send(int version, int bfd, int cfd,
    struct tls *cctx, const struct pp_conn *pc, const struct clientcert *cc,
    int timeout)
{
	struct clientcert_pp ccp;
	uint8_t buf[PP_OUT_MAX];
	struct timespec deadline;
	struct pp_info info;
	struct pp_tls t;
	char key[32];
	ssize_t n;

	if (version == 0)
		return 0;
	memset(&info, 0, sizeof(info));
	pp_addrs(cfd, pc, &info);
	if (version == 2) {
		info.alpn = tls_conn_alpn_selected(cctx);
		info.authority = snictx_servername();
		clientcert_pp(cc, &ccp);
		pp_tls_info(cctx, &ccp, &t, key, sizeof(key));
		info.tls = &t;
	}
	if ((n = pp_encode(version, &info, buf, sizeof(buf))) == -1) {
		errno = EMSGSIZE;
		return -1;
	}
	deadline_in(&deadline, timeout);
	return pp_write(bfd, buf, (size_t)n, &deadline);
}
