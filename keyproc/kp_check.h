/*
 * keyproc's check of one child's request, before it signs: a pure
 * function of the request's bytes and of what the parent said of the
 * child's channel, so that a driver or a fuzzer can call it without the
 * rest of keyproc (tests/fuzz/fuzz_kpcheck.c).
 */
#ifndef KP_CHECK_H
#define KP_CHECK_H

#include <stddef.h>
#include <stdint.h>

#include "lib/wire.h"

/* A child's channel, as far as the check cares: all of it from the parent. */
struct kp_scope {
	uint32_t	 listener;	/* the child's listener */
	uint32_t	 protocols;	/* KP_PROTO_* that listener allows */
	unsigned int	 nsigned;	/* signatures made on this channel */
	/* enum policy_key of key `key` of `listener`; -1: no such key */
	int		(*key_kind)(uint32_t listener, uint32_t key);
};

/*
 * kp_check(scope, buf, n, req, reason, reasonlen):
 * Check the request of n bytes in buf that came on the channel scope
 * describes, in this order, the first failure being the reason: at least
 * a struct kp_sign_req, exactly tbslen bytes after it, tbslen 1 ..
 * KP_TBS_MAX, key a key of the listener, alg in the set, policy_check()
 * (keyproc/policy.h) with the listener's protocols, and fewer than
 * KP_SIGN_BUDGET signatures made.  Return the enum policy_shape with the
 * request's header in *req (the input is the tbslen bytes after it in
 * buf), or -1 with the reason in reason.
 */
int	kp_check(const struct kp_scope *scope, const uint8_t *buf, size_t n,
	    struct kp_sign_req *req, char *reason, size_t reasonlen);

#endif
