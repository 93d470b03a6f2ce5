/* bench/floor_iso.h: forkfloor -i, the least isolation recluse promises. */
#ifndef FLOOR_ISO_H
#define FLOOR_ISO_H

#include <openssl/evp.h>

/*
 * Keep REAL for the key server (call before iso_start()); returns the
 * stand-in a child's SSL_CTX uses instead, or NULL.  Keys are numbered
 * from 0 in the order given.
 */
EVP_PKEY	*iso_add_key(EVP_PKEY *real);

/* Fork the key server and the connector; compile the child's filter. */
void		 iso_start(const char *root, int backend_port);

/*
 * Before forking a child of key KEY: its key and connect channels, whose
 * other ends are now the servers'.  0, or -1 with errno.
 */
int		 iso_channels(int key, int *kfd, int *cfd);

/* In the child, before accept(2): sandbox it; sign through KFD. */
void		 iso_child(int kfd);

/* In the child: the backend socket from the connector (-1: none). */
int		 iso_connect(int cfd);

#endif
