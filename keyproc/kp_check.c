/*
 * keyproc's check of one child's request: see kp_check.h.  No allocation,
 * no system call: fixed sizes, then the policy.
 */
#include <stdio.h>
#include <string.h>

#include "keyproc/kp_check.h"
#include "keyproc/policy.h"

int
kp_check(const struct kp_scope *s, const uint8_t *buf, size_t n,
    struct kp_sign_req *req, char *reason, size_t reasonlen)
{
	const char *why;
	int kind, shape;

	if (n < sizeof(*req)) {
		snprintf(reason, reasonlen, "short request (%zu bytes)", n);
		return -1;
	}
	memcpy(req, buf, sizeof(*req));
	if (n - sizeof(*req) != req->tbslen) {
		snprintf(reason, reasonlen, "request of %zu bytes says %u",
		    n, req->tbslen);
		return -1;
	}
	if (req->tbslen == 0 || req->tbslen > KP_TBS_MAX) {
		snprintf(reason, reasonlen, "input length %u", req->tbslen);
		return -1;
	}
	if ((kind = s->key_kind(s->listener, req->key)) == -1) {
		snprintf(reason, reasonlen, "key %u is not a key of listener "
		    "%u", req->key, s->listener);
		return -1;
	}
	if (!policy_alg_known(req->alg)) {
		snprintf(reason, reasonlen, "unknown algorithm %u", req->alg);
		return -1;
	}
	if ((shape = policy_check(s->protocols, kind, req->alg,
	    buf + sizeof(*req), req->tbslen, &why)) == -1) {
		snprintf(reason, reasonlen, "%s", why);
		return -1;
	}
	if (s->nsigned >= KP_SIGN_BUDGET) {
		snprintf(reason, reasonlen, "signature budget of %d spent",
		    KP_SIGN_BUDGET);
		return -1;
	}
	return shape;
}
