/*
 * The wire formats of keyproc.  Both run over SOCK_SEQPACKET socketpairs, so
 * one send is one message and every message has an exact expected size.
 * Fixed little structs in host byte order (both ends are this binary), no
 * pointers, no size_t.  The reader treats the peer as hostile.
 */
#ifndef KP_WIRE_H
#define KP_WIRE_H

#include <stdint.h>

#include "proxy/log.h"

/* ------------------------------------------------------------------ */
/* child <-> keyproc: one channel per child                            */

#define KP_TBS_MAX	256	/* largest TLS 1.2/1.3 to-be-signed input */
#define KP_SIG_MAX	512	/* RSA-4096 */
#define KP_SIGN_BUDGET	4	/* signatures one child may ask for */

/* The closed set of signature algorithms keyproc performs. */
enum kp_alg {
	KP_ALG_RSA_PKCS1_SHA256 = 1,	/* TLS 1.2 only */
	KP_ALG_RSA_PKCS1_SHA384 = 2,
	KP_ALG_RSA_PKCS1_SHA512 = 3,
	KP_ALG_RSA_PSS_SHA256 = 4,	/* salt length = digest length */
	KP_ALG_RSA_PSS_SHA384 = 5,
	KP_ALG_RSA_PSS_SHA512 = 6,
	KP_ALG_ECDSA_SHA256 = 7,
	KP_ALG_ECDSA_SHA384 = 8,
	KP_ALG_ECDSA_SHA512 = 9
};

struct kp_sign_req {		/* followed by exactly tbslen bytes */
	uint32_t	id;	/* echoed in the reply */
	uint32_t	key;	/* index into this child's listener's keys */
	uint32_t	alg;	/* enum kp_alg */
	uint32_t	tbslen;	/* 1 .. KP_TBS_MAX */
};
_Static_assert(sizeof(struct kp_sign_req) == 16, "wire size");

enum kp_status {
	KP_OK = 0,
	KP_FAIL = 1		/* the key operation itself failed */
};

struct kp_sign_rep {		/* followed by exactly siglen bytes */
	uint32_t	id;
	uint32_t	status;	/* enum kp_status; siglen 0 unless KP_OK */
	uint32_t	siglen;	/* <= KP_SIG_MAX, <= the key's size */
};
_Static_assert(sizeof(struct kp_sign_rep) == 12, "wire size");

/* ------------------------------------------------------------------ */
/* parent <-> keyproc: the control channel (fd KP_CTL_FD in keyproc)   */

#define KP_CTL_FD	3
#define KP_PATH_MAX	1024
#define KP_SPKI_MAX	2048

enum kp_ctl_type {
	/* parent -> keyproc */
	KP_CTL_KEY = 1,		/* + spki DER + path; fd: the open key file */
	KP_CTL_START = 2,	/* + chroot path: drop privileges, serve */
	KP_CTL_CHILD = 3,	/* fd: the child's end of its channel */
	/* keyproc -> parent */
	KP_CTL_READY = 16,	/* keys loaded, sandboxed, serving */
	KP_CTL_ERROR = 17,	/* + message; keyproc exits after it */
	KP_CTL_LOG = LOG_MSG_TYPE	/* a log line: struct log_msg_hdr + text */
};

struct kp_ctl_hdr {
	uint32_t	type;
	uint32_t	len;	/* bytes following this header */
};
_Static_assert(sizeof(struct kp_ctl_hdr) == 8, "wire size");

struct kp_ctl_key {		/* KP_CTL_KEY, after the header */
	uint32_t	listener;	/* listener index in the config */
	uint32_t	key;		/* key index within the listener */
	uint32_t	spkilen;	/* certificate's public key, DER */
	uint32_t	pathlen;	/* the key file's name, for messages */
};
_Static_assert(sizeof(struct kp_ctl_key) == 16, "wire size");

struct kp_ctl_start {		/* KP_CTL_START, after the header */
	uint32_t	uid;		/* keyproc-user */
	uint32_t	gid;
	uint32_t	verbose;
	uint32_t	pathlen;	/* chroot directory */
};
_Static_assert(sizeof(struct kp_ctl_start) == 16, "wire size");

struct kp_ctl_child {		/* KP_CTL_CHILD, after the header */
	uint32_t	pid;		/* for log lines */
	uint32_t	listener;	/* the only keys this child may use */
};
_Static_assert(sizeof(struct kp_ctl_child) == 8, "wire size");

#endif
