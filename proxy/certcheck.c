/*
 * A certificate's remaining life: see certcheck.h.
 */
#include <limits.h>
#include <stdio.h>
#include <time.h>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "proxy/certcheck.h"

/* notAfter of the first certificate in chain, as a time_t; -1 if none. */
static int
cert_not_after(const uint8_t *chain, size_t len, time_t *tp)
{
	struct tm tm;
	X509 *x = NULL;
	BIO *bio;
	int rc = -1;

	if (len > INT_MAX || (bio = BIO_new_mem_buf(chain, (int)len)) == NULL)
		return -1;
	if ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL &&
	    ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) == 1) {
		*tp = timegm(&tm);
		rc = 0;
	}
	X509_free(x);
	BIO_free(bio);
	return rc;
}

int
cert_expiry(const uint8_t *chain, size_t len, time_t now, char *msg,
    size_t msglen)
{
	char date[32];
	struct tm tm;
	time_t end;
	long long days;

	if (cert_not_after(chain, len, &end) == -1 ||
	    gmtime_r(&end, &tm) == NULL)
		return -1;
	strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S UTC", &tm);
	if (end <= now) {
		snprintf(msg, msglen, "expired on %s", date);
		return 1;
	}
	days = ((long long)end - now) / 86400;
	if (days >= CERT_WARN_DAYS)
		return 0;
	snprintf(msg, msglen, "expires on %s, in %lld day%s", date, days,
	    days == 1 ? "" : "s");
	return 1;
}
