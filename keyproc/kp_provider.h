/*
 * The "keyproc" OpenSSL 3 provider: lets stock libtls use a private key that
 * lives in keyproc.  The parent builds, for every certificate, a key
 * reference PEM (kp_ref_from_cert()) and gives it to libtls as if it were
 * the key; the provider's decoder turns it into a key whose signatures are
 * requests to keyproc on the calling process's channel.
 */
#ifndef KP_PROVIDER_H
#define KP_PROVIDER_H

#include <stddef.h>
#include <stdint.h>

#define KP_PROVIDER_NAME	"keyproc"

/*
 * The key reference PEM: a block with this label (and no header lines)
 * whose body is KP_REF_MAGIC, the key index as 4 bytes big-endian, and
 * the certificate's public key as DER SubjectPublicKeyInfo.
 */
#define KP_REF_PEM_LABEL	"RECLUSE KEY REFERENCE"
#define KP_REF_MAGIC		"RKR1"
#define KP_REF_HDRLEN		8	/* magic + key index */

/*
 * kp_provider_load():
 * Load the "default" provider and then this one into the default library
 * context (in that order, with "?provider=default" as default properties,
 * so ordinary operations keep working).  Call once in the parent before
 * any tls_configure().  Return 0 or -1.
 */
int	kp_provider_load(void);

/*
 * kp_provider_set_channel(fd):
 * Set the socket to keyproc that signatures of this process go through
 * (a connection child's own channel); -1 makes every signature fail.
 * Forgets the last error (kp_provider_error()).
 */
void	kp_provider_set_channel(int fd);

/*
 * kp_provider_forget():
 * Forget every signature asked so far: the last error and what
 * kp_provider_sign_stats() reports.  For a spawner after its warm-up
 * handshake (proxy/warmup.h), which asks one that must not be counted
 * against its children's connections.
 */
void	kp_provider_forget(void);

/*
 * kp_provider_error():
 * Why the last key operation of this process failed, "keyproc: " and the
 * reason (e.g. "keyproc: did not answer in 3.0 s"), or NULL if none did.
 * A signature waits for keyproc at most KP_SIGN_WAIT_MS (lib/wire.h), and
 * fails at once when keyproc has closed the channel (it refused the
 * request, or it was killed or replaced).
 */
const char	*kp_provider_error(void);

/*
 * kp_provider_sign_stats(state, us):
 * In a connection child: how its last signature went (enum chan_sign in
 * *state: none asked, signed, or refused/failed/unanswered) and how long
 * it took, in microseconds, from sending KP_SIGN to reading the answer
 * (keyproc's queue and its key operation, as the child waited for them).
 */
void	kp_provider_sign_stats(int *state, uint32_t *us);

/*
 * kp_ref_from_cert(cert, certlen, key, refp, reflenp, spkip, spkilenp,
 *     err, errlen):
 * From a PEM certificate chain (leaf first), build the key reference PEM
 * for key index `key` (malloc'ed in *refp, *reflenp bytes) and the leaf's
 * public key as DER SubjectPublicKeyInfo (malloc'ed in *spkip, *spkilenp
 * bytes).  Return 0, or -1 with a message in err.
 */
int	kp_ref_from_cert(const uint8_t *cert, size_t certlen, uint32_t key,
	    char **refp, size_t *reflenp, uint8_t **spkip, size_t *spkilenp,
	    char *err, size_t errlen);

#endif
