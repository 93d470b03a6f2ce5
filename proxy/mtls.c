/*
 * Client certificate settings, parent to spawner to libtls: see mtls.h.
 */
#include <sys/mman.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <tls.h>

#include "config/parse.h"
#include "lib/wire.h"
#include "proxy/mtls.h"

#define MTLS_SEALS	(F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | \
			    F_SEAL_SEAL)

static int
write_all(int fd, const uint8_t *p, size_t len)
{
	ssize_t n;

	while (len > 0) {
		if ((n = write(fd, p, len)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int
mtls_send(int fd, const struct conf_listener *l)
{
	struct spawner_client m;
	int mfd, rc = -1, save;

	if (l->client_ca_pem == NULL)
		return 0;
	if (l->client_ca_len + l->client_crl_len > SPAWNER_CLIENT_MAX) {
		errno = EFBIG;
		return -1;
	}
	memset(&m, 0, sizeof(m));
	m.verify = (uint32_t)l->client_verify;
	m.calen = (uint32_t)l->client_ca_len;
	m.crllen = (uint32_t)l->client_crl_len;
	if ((mfd = memfd_create("recluse-client-ca", MFD_CLOEXEC |
	    MFD_ALLOW_SEALING)) == -1)
		return -1;
	if (write_all(mfd, l->client_ca_pem, l->client_ca_len) == 0 &&
	    (l->client_crl_pem == NULL || write_all(mfd, l->client_crl_pem,
	    l->client_crl_len) == 0) &&
	    fcntl(mfd, F_ADD_SEALS, MTLS_SEALS) == 0)
		rc = msg_put(fd, SPAWNER_CLIENT, &m, sizeof(m), mfd, 0);
	save = errno;
	close(mfd);
	errno = save;
	return rc;
}

int
mtls_receive(const struct msg_hdr *hdr, const uint8_t *body, int fd,
    struct conf_listener *l, char *err, size_t errlen)
{
	struct spawner_client m;
	struct stat st;
	uint8_t *p = NULL;
	int seals;

	if (l->client_ca_pem != NULL || !MSG_LEN_IS(hdr, sizeof(m))) {
		snprintf(err, errlen, "set-up: bad client message");
		goto bad;
	}
	memcpy(&m, body, sizeof(m));
	if ((m.verify != CONF_VERIFY_REQUIRED &&
	    m.verify != CONF_VERIFY_OPTIONAL) || m.calen == 0 ||
	    (uint64_t)m.calen + m.crllen > SPAWNER_CLIENT_MAX || fd == -1 ||
	    (seals = fcntl(fd, F_GET_SEALS)) == -1 ||
	    (seals & MTLS_SEALS) != MTLS_SEALS || fstat(fd, &st) == -1 ||
	    st.st_size != (off_t)m.calen + m.crllen) {
		snprintf(err, errlen, "set-up: bad client certificate "
		    "settings");
		goto bad;
	}
	if ((p = malloc(st.st_size)) == NULL ||
	    pread(fd, p, st.st_size, 0) != st.st_size) {
		snprintf(err, errlen, "set-up: client CA: %s",
		    strerror(errno ? errno : EIO));
		goto bad;
	}
	close(fd);
	l->client_verify = (int)m.verify;
	l->client_ca_len = m.calen;
	l->client_crl_len = m.crllen;
	if ((l->client_ca_pem = malloc(m.calen)) == NULL ||
	    (m.crllen > 0 && (l->client_crl_pem = malloc(m.crllen)) == NULL)) {
		free(p);
		snprintf(err, errlen, "set-up: %s", strerror(ENOMEM));
		return -1;
	}
	memcpy(l->client_ca_pem, p, m.calen);
	if (m.crllen > 0)
		memcpy(l->client_crl_pem, p + m.calen, m.crllen);
	free(p);
	return 0;
bad:
	free(p);
	if (fd != -1)
		close(fd);
	return -1;
}

/* where may be empty in a spawner, which has the bytes but not the file. */
static int
mtls_err(char *err, size_t errlen, const struct conf_where *where,
    const char *kw, const char *path, const char *msg)
{
	if (where->file == NULL) {
		snprintf(err, errlen, "%s: %s", kw, msg);
		return -1;
	}
	return conf_seterr(err, errlen, where, "%s \"%s\": %s", kw, path,
	    msg);
}

int
mtls_configure(const struct conf_listener *l, struct tls_config *cfg,
    char *err, size_t errlen)
{
	if (l->client_ca_pem == NULL)
		return 0;
	if (tls_config_set_ca_mem(cfg, l->client_ca_pem,
	    l->client_ca_len) == -1)
		return mtls_err(err, errlen, &l->client_ca_where,
		    "client-ca", l->client_ca, tls_config_error(cfg));
	if (l->client_crl_pem != NULL && tls_config_set_crl_mem(cfg,
	    l->client_crl_pem, l->client_crl_len) == -1)
		return mtls_err(err, errlen, &l->client_crl_where,
		    "client-crl", l->client_crl, tls_config_error(cfg));
	if (l->client_verify == CONF_VERIFY_OPTIONAL)
		tls_config_verify_client_optional(cfg);
	else
		tls_config_verify_client(cfg);
	return 0;
}
