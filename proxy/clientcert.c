/*
 * The client's certificate, as the handshake left it: see clientcert.h.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "proxy/clientcert.h"
#include "proxy/tlshook.h"

/* Copy len bytes of s into dst, NUL-terminated, cut at a NUL. */
static void
copy_str(char *dst, size_t dstlen, const unsigned char *s, int len)
{
	size_t n;

	if (s == NULL || len <= 0) {
		dst[0] = '\0';
		return;
	}
	n = strnlen((const char *)s, (size_t)len);
	if (n >= dstlen)
		n = dstlen - 1;
	memcpy(dst, s, n);
	dst[n] = '\0';
}

/* An ASN1 string as UTF-8. */
static void
asn1_utf8(char *dst, size_t dstlen, const ASN1_STRING *a)
{
	unsigned char *u = NULL;
	int n;

	dst[0] = '\0';
	if (a != NULL && (n = ASN1_STRING_to_UTF8(&u, a)) >= 0)
		copy_str(dst, dstlen, u, n);
	OPENSSL_free(u);
}

static void
get_subject(X509 *x, struct clientcert *cc)
{
	X509_NAME *name = X509_get_subject_name(x);
	X509_NAME_ENTRY *e;
	char *p;
	long n;
	BIO *b;
	int i;

	if ((b = BIO_new(BIO_s_mem())) != NULL &&
	    X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253) >= 0 &&
	    (n = BIO_get_mem_data(b, &p)) > 0)
		copy_str(cc->subject, sizeof(cc->subject),
		    (unsigned char *)p, (int)n);
	BIO_free(b);
	if ((i = X509_NAME_get_index_by_NID(name, NID_commonName, -1)) >= 0 &&
	    (e = X509_NAME_get_entry(name, i)) != NULL)
		asn1_utf8(cc->cn, sizeof(cc->cn), X509_NAME_ENTRY_get_data(e));
}

/* The first subjectAltName of a kind we can write as text. */
static void
get_san(X509 *x, struct clientcert *cc)
{
	GENERAL_NAMES *gens;
	GENERAL_NAME *g;
	const unsigned char *ip;
	int i, n;

	gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	for (i = 0; gens != NULL && i < sk_GENERAL_NAME_num(gens) &&
	    cc->san[0] == '\0'; i++) {
		g = sk_GENERAL_NAME_value(gens, i);
		switch (g->type) {
		case GEN_DNS:
		case GEN_EMAIL:
		case GEN_URI:
			asn1_utf8(cc->san, sizeof(cc->san), g->d.ia5);
			break;
		case GEN_IPADD:
			ip = ASN1_STRING_get0_data(g->d.ip);
			n = ASN1_STRING_length(g->d.ip);
			if (n == 4)
				snprintf(cc->san, sizeof(cc->san),
				    "%u.%u.%u.%u", ip[0], ip[1], ip[2], ip[3]);
			else if (n == 16)
				snprintf(cc->san, sizeof(cc->san),
				    "%x:%x:%x:%x:%x:%x:%x:%x",
				    ip[0] << 8 | ip[1], ip[2] << 8 | ip[3],
				    ip[4] << 8 | ip[5], ip[6] << 8 | ip[7],
				    ip[8] << 8 | ip[9], ip[10] << 8 | ip[11],
				    ip[12] << 8 | ip[13], ip[14] << 8 | ip[15]);
			break;
		}
	}
	GENERAL_NAMES_free(gens);
}

static void
get_fp(X509 *x, struct clientcert *cc)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0, i;

	if (X509_digest(x, EVP_sha256(), md, &n) != 1 || n != 32)
		return;
	for (i = 0; i < n; i++)
		snprintf(cc->fp + 2 * i, 3, "%02x", md[i]);
}

/* A verify error as one word for the access line. */
static const char *
reason_word(long v)
{
	switch (v) {
	case X509_V_ERR_CERT_HAS_EXPIRED:
		return "expired";
	case X509_V_ERR_CERT_NOT_YET_VALID:
		return "not-yet-valid";
	case X509_V_ERR_CERT_REVOKED:
		return "revoked";
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
	case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
	case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
		return "unknown-ca";
	case X509_V_ERR_CERT_SIGNATURE_FAILURE:
		return "bad-signature";
	case X509_V_ERR_UNABLE_TO_GET_CRL:
		return "no-crl";
	case X509_V_ERR_CRL_HAS_EXPIRED:
		return "crl-expired";
	case X509_V_ERR_CRL_NOT_YET_VALID:
		return "crl-not-yet-valid";
	case X509_V_ERR_INVALID_PURPOSE:
		return "bad-purpose";
	case X509_V_ERR_CERT_CHAIN_TOO_LONG:
		return "chain-too-long";
	default:
		return NULL;
	}
}

void
clientcert_get(struct clientcert *cc, int asked)
{
	SSL *ssl = tlshook_conn_ssl();
	const char *w;
	X509 *x;
	long v;

	memset(cc, 0, sizeof(*cc));
	if (!asked)
		return;
	cc->state = CLIENTCERT_NONE;
	if (ssl == NULL)
		return;
	v = SSL_get_verify_result(ssl);
	cc->verify = (uint32_t)v;
	if ((x = SSL_get0_peer_certificate(ssl)) != NULL) {
		get_subject(x, cc);
		get_san(x, cc);
		get_fp(x, cc);
	}
	if (v != X509_V_OK) {
		cc->state = CLIENTCERT_FAILED;
		if ((w = reason_word(v)) != NULL)
			snprintf(cc->reason, sizeof(cc->reason), "%s", w);
		else
			snprintf(cc->reason, sizeof(cc->reason), "verify-%ld",
			    v);
	} else if (x != NULL)
		cc->state = CLIENTCERT_OK;
}

/*
 * src as one access-line word: printable ASCII but space, '%', '"' and
 * '\\' as is, those and every other byte as %XX.  Not \xNN: the parent
 * escapes a child's line again (log_escape()), and would turn each
 * backslash into \x5c.
 */
static void
escape_word(char *dst, size_t dstlen, const char *src)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *s = (const unsigned char *)src;
	size_t i = 0;

	if (*s == '\0') {
		snprintf(dst, dstlen, "-");
		return;
	}
	for (; *s != '\0' && i + 1 < dstlen; s++) {
		if (*s > ' ' && *s < 0x7f && *s != '\\' && *s != '"' &&
		    *s != '%') {
			dst[i++] = (char)*s;
			continue;
		}
		if (i + 4 >= dstlen)
			break;
		dst[i++] = '%';
		dst[i++] = hex[*s >> 4];
		dst[i++] = hex[*s & 0xf];
	}
	dst[i] = '\0';
}

void
clientcert_log(const struct clientcert *cc, char *state, size_t slen,
    char *subject, size_t sublen, char *fp, size_t fplen)
{
	switch (cc->state) {
	case CLIENTCERT_OFF:
		snprintf(state, slen, "-");
		break;
	case CLIENTCERT_NONE:
		snprintf(state, slen, "none");
		break;
	case CLIENTCERT_OK:
		snprintf(state, slen, "ok");
		break;
	case CLIENTCERT_FAILED:
		snprintf(state, slen, "failed:%s", cc->reason);
		break;
	}
	escape_word(subject, sublen, cc->subject);
	escape_word(fp, fplen, cc->fp);
}

void
clientcert_pp(const struct clientcert *cc, struct clientcert_pp *out)
{
	memset(out, 0, sizeof(*out));
	out->given = cc->fp[0] != '\0';
	out->verify = cc->state == CLIENTCERT_OK ? 0 :
	    (cc->verify != 0 ? cc->verify : 1);
	out->verified = out->given && cc->state == CLIENTCERT_OK;
	memcpy(out->cn, cc->cn, sizeof(out->cn));
	memcpy(out->san, cc->san, sizeof(out->san));
	memcpy(out->fp, cc->fp, sizeof(out->fp));
}
