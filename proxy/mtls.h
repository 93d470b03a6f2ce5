/*
 * A listener's client certificate settings on their way from the parent
 * (which read them: config/clientca.h) to libtls in the listener's
 * spawner, over the spawner's channel (SPAWNER_CLIENT, lib/wire.h).
 */
#ifndef MTLS_H
#define MTLS_H

#include <stddef.h>
#include <stdint.h>

#include "config/conf.h"
#include "lib/msg.h"

struct tls_config;

/*
 * mtls_send(fd, l):
 * In the parent: if l has a client-ca, send SPAWNER_CLIENT on the
 * spawner channel fd with l's CA and CRL bytes in a new sealed memfd.
 * Return 0, or -1 with errno set.
 */
int	mtls_send(int fd, const struct conf_listener *l);

/*
 * mtls_receive(hdr, body, fd, l, err, errlen):
 * In a spawner: take the SPAWNER_CLIENT message hdr, body, and its memfd
 * fd (closed here) into l's client_verify, client_ca_pem and
 * client_crl_pem.  Return 0, or -1 with a message in err for a message
 * that is not one (a second one, a bad length, an unsealed memfd).
 */
int	mtls_receive(const struct msg_hdr *hdr, const uint8_t *body, int fd,
	    struct conf_listener *l, char *err, size_t errlen);

/*
 * mtls_configure(l, cfg, err, errlen):
 * If l asks for client certificates, set cfg's CAs, CRLs and client
 * verification (required or optional) from l's PEM bytes.  Nothing is
 * read from a file.  Return 0, or -1 with "FILE:LINE: message" in err.
 */
int	mtls_configure(const struct conf_listener *l, struct tls_config *cfg,
	    char *err, size_t errlen);

#endif
