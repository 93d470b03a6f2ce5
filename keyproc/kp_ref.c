/*
 * The key reference PEM that stands in for a private key in libtls
 * (kp_provider.h): built by the parent from the certificate, decoded by
 * the provider.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "keyproc/kp_provider.h"
#include "lib/wire.h"

/* The leaf (first) certificate's public key, DER, malloc'ed. */
static int
kp_ref_spki(const uint8_t *cert, size_t certlen, uint8_t **spkip,
    size_t *spkilenp, char *err, size_t errlen)
{
	unsigned char *der = NULL;
	X509 *x = NULL;
	BIO *bio;
	int len = -1;

	*spkip = NULL;
	if (certlen > INT_MAX ||
	    (bio = BIO_new_mem_buf(cert, (int)certlen)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) == NULL)
		snprintf(err, errlen, "no PEM certificate");
	else if ((len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der)) <= 0)
		snprintf(err, errlen, "unreadable public key");
	else if ((size_t)len > KP_SPKI_MAX)
		snprintf(err, errlen, "public key too large");
	else if ((*spkip = malloc((size_t)len)) == NULL)
		snprintf(err, errlen, "out of memory");
	else {
		memcpy(*spkip, der, (size_t)len);
		*spkilenp = (size_t)len;
	}
	OPENSSL_free(der);
	X509_free(x);
	BIO_free(bio);
	ERR_clear_error();
	return *spkip != NULL ? 0 : -1;
}

/* PEM-armour body as the reference block, into a malloc'ed string. */
static int
kp_ref_pem(const uint8_t *body, size_t bodylen, char **refp, size_t *reflenp,
    char *err, size_t errlen)
{
	BIO *bio;
	char *data;
	long len;
	int rc = -1;

	*refp = NULL;
	if ((bio = BIO_new(BIO_s_mem())) == NULL)
		goto out;
	if (PEM_write_bio(bio, KP_REF_PEM_LABEL, "", body, (long)bodylen) <= 0 ||
	    (len = BIO_get_mem_data(bio, &data)) <= 0 ||
	    (*refp = malloc((size_t)len + 1)) == NULL)
		goto out;
	memcpy(*refp, data, (size_t)len);
	(*refp)[len] = '\0';
	*reflenp = (size_t)len;
	rc = 0;
out:
	if (rc == -1)
		snprintf(err, errlen, "cannot build the key reference");
	BIO_free(bio);
	ERR_clear_error();
	return rc;
}

int
kp_ref_from_cert(const uint8_t *cert, size_t certlen, uint32_t key,
    char **refp, size_t *reflenp, uint8_t **spkip, size_t *spkilenp,
    char *err, size_t errlen)
{
	uint8_t *spki, *body;
	size_t spkilen;

	if (kp_ref_spki(cert, certlen, &spki, &spkilen, err, errlen) == -1)
		return -1;
	if ((body = malloc(KP_REF_HDRLEN + spkilen)) == NULL) {
		snprintf(err, errlen, "out of memory");
		free(spki);
		return -1;
	}
	memcpy(body, KP_REF_MAGIC, 4);
	body[4] = (uint8_t)(key >> 24);
	body[5] = (uint8_t)(key >> 16);
	body[6] = (uint8_t)(key >> 8);
	body[7] = (uint8_t)key;
	memcpy(body + KP_REF_HDRLEN, spki, spkilen);
	if (kp_ref_pem(body, KP_REF_HDRLEN + spkilen, refp, reflenp, err,
	    errlen) == -1) {
		free(body);
		free(spki);
		return -1;
	}
	free(body);
	*spkip = spki;
	*spkilenp = spkilen;
	return 0;
}
