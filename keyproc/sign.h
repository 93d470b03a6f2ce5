/*
 * Private-key operations: load a PEM key, check it against a certificate's
 * public key, sign.  Used by keyproc and by `recluse -n` (key/certificate
 * match).  Prints nothing: every failure returns -1 or NULL and leaves a
 * message in the caller's buffer.
 */
#ifndef SIGN_H
#define SIGN_H

#include <stddef.h>
#include <stdint.h>

/* Largest key file read, in bytes (an RSA-4096 PEM key is about 3.3 kB). */
#define SIGN_FILE_MAX	65536

enum sign_key_type {
	SIGN_KEY_RSA = 1,	/* 2048 .. 4096 bits */
	SIGN_KEY_EC = 2		/* P-256 or P-384 */
};

struct sign_key;

/*
 * sign_key_load(fd, path, spki, spkilen, err, errlen):
 * Read a PEM private key from the open file fd with pread(2) from offset 0
 * (the file offset is left alone, so the fd can be reused), and check that
 * it is an unencrypted RSA key of 2048 to 4096 bits or an EC key on P-256
 * or P-384 whose public half equals the DER SubjectPublicKeyInfo spki.
 * path names the file in messages only.  Return the key, or NULL with
 * "PATH: reason" in err.
 */
struct sign_key	*sign_key_load(int fd, const char *path, const uint8_t *spki,
		    size_t spkilen, char *err, size_t errlen);

/*
 * sign_key_type(k):
 * Return k's enum sign_key_type.
 */
int		 sign_key_type(const struct sign_key *k);

/*
 * sign_key_size(k):
 * Return the largest signature k makes, in bytes (EVP_PKEY_get_size).
 */
size_t		 sign_key_size(const struct sign_key *k);

/*
 * sign_alg_name(alg):
 * Return the TLS name of enum kp_alg alg ("rsa_pss_rsae_sha256", ...), or
 * NULL if alg is not one of the set.
 */
const char	*sign_alg_name(uint32_t alg);

/*
 * sign_key_bits(k):
 * Return k's size in bits: the modulus for RSA, the curve for EC (256 for
 * P-256, 384 for P-384).
 */
int		 sign_key_bits(const struct sign_key *k);

/*
 * sign_key_sign(k, alg, tbs, tbslen, sig, sigsize, siglenp, err, errlen):
 * Sign the tbslen bytes of tbs (the whole message: the digest is computed
 * here) with k and algorithm alg (enum kp_alg; RSA-PSS with a salt as long
 * as the digest and MGF1 over the same digest).  sigsize must be at least
 * sign_key_size(k).  Return 0 with the signature's length in *siglenp, or
 * -1 with a message in err.
 */
int		 sign_key_sign(struct sign_key *k, uint32_t alg,
		    const uint8_t *tbs, size_t tbslen, uint8_t *sig,
		    size_t sigsize, size_t *siglenp, char *err, size_t errlen);

/*
 * sign_key_free(k):
 * Free k; its secret numbers are wiped by libcrypto.  sign_key_free(NULL)
 * does nothing.
 */
void		 sign_key_free(struct sign_key *k);

#endif
