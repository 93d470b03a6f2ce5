/*
 * Session ticket keys, in the parent (root, never parses network input).
 * For each listener with session-tickets on, a ring of at most two keys,
 * newest first: the newest encrypts new tickets, both decrypt.
 *   - Without session-ticket-key, the parent makes each key from
 *     getrandom(2) and rotates every TICKETS_ROTATE_S seconds: a new key
 *     in front, the one before kept for decryption only, the older one
 *     wiped.  A reload keeps a listener's ring (by name), so reloading
 *     does not end resumption.
 *   - With session-ticket-key FILE (a fleet shares the file), the keys are
 *     the file's, read from the descriptor conf_load() opened and checked,
 *     at start and on each reload; the operator rotates the file.
 * The keys reach the listener's spawner over its channel
 * (SPAWNER_TICKETS), never a file; after a rotation its spare children,
 * forked with the old keys, are retired.
 */
#ifndef TICKETS_H
#define TICKETS_H

#include <stddef.h>

#include "proxy/gen.h"

struct event_base;

/* How often the parent's own keys rotate, and a ticket's lifetime. */
#define TICKETS_ROTATE_S	3600
#define TICKETS_LIFETIME_S	TICKETS_ROTATE_S

/*
 * tickets_load(g, prev, err, errlen):
 * Give each listener of g with session-tickets on its ring: the keys of
 * its session-ticket-key file, or the ring of prev's listener of the same
 * name (unless that one came from a file), or a new key.  Return 0, or -1
 * with "FILE:LINE: message" in err.
 */
int	tickets_load(struct gen *g, const struct gen *prev, char *err,
	    size_t errlen);

/*
 * tickets_clear(gl):
 * Wipe and free gl's ring.  Safe on a listener without one.
 */
void	tickets_clear(struct gen_listener *gl);

/*
 * tickets_send(fd, gl):
 * Send gl's keys on spawner channel fd (SPAWNER_TICKETS); nothing if gl
 * has no ring.  Return 0 or -1.
 */
int	tickets_send(int fd, const struct gen_listener *gl);

/*
 * tickets_init(base):
 * Start the rotation timer.
 */
void	tickets_init(struct event_base *base);

/*
 * tickets_set_gen(g):
 * g is the current generation: the one whose keys rotate.
 */
void	tickets_set_gen(struct gen *g);

#endif
