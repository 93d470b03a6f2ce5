/*
 * A generation: one loaded configuration and everything the parent built
 * from it (certificate chains and key references, listening sockets, the
 * spawners; the open key files are in the configuration's pairs).  A reload makes a new generation; the old one
 * lives on until its last child exits.
 */
#ifndef GEN_H
#define GEN_H

#include <sys/types.h>

#include <stddef.h>
#include <time.h>

#include "config/conf.h"
#include "proxy/listen.h"
#include "proxy/tlsconf.h"

struct event;
struct spawner;
struct tickets_ring;

/*
 * A listener's children, shared by the generations that have a listener
 * of that name one after the other (a reload does not reset it; a
 * listener removed and added again starts afresh): spawn.c keeps its
 * max-connections with it.
 */
struct gen_count {
	unsigned int		 refs;	/* generations' listeners */
	size_t			 children;	/* alive: spare, busy, retired */
	size_t			 busy;	/* holding a connection */
	int			 full_said;	/* "... reached" was logged */
	struct timespec		 below;	/* under its limit since; 0: full */
};

struct gen_listener {
	const struct conf_listener	*conf;
	struct tlsconf			 tc;
	struct listen_set		 socks;
	size_t				 idle;	/* spare children waiting */
	size_t				 spares;	/* how many spares to keep */
	size_t				 accepts;	/* since the last decay tick */
	struct spawner			*spawner;	/* spawner.h; NULL: none */
	unsigned int			 crashes;	/* in a row (spawn.c) */
	struct timespec			 spawner_after;	/* none before */
	struct gen_count		*count;	/* shared by name */
	struct event			**watch;	/* spawn.c: one per
							   socket, or NULL */
	size_t				 stealing;	/* spares of others
						   retiring for it */
	struct tickets_ring		*tickets;	/* tickets.h; NULL:
						   session-tickets off */
};

struct gen {
	struct conf		*conf;
	struct gen_listener	*listeners;
	size_t			 nlisteners;
	unsigned int		 refs;	/* live children, +1 while current */
	unsigned int		 id;	/* 1, 2, ... in load order */
};

/*
 * gen_load(path, prev, err, errlen):
 * Load the configuration file path and build a generation from it, reusing
 * prev's listening sockets where the address is the same and the counts
 * of prev's listeners of the same name (prev may be NULL).  The new
 * generation has one reference.  Return it, or NULL with a message
 * (FILE:LINE: ...) in err.
 */
struct gen	*gen_load(const char *path, const struct gen *prev, char *err,
		    size_t errlen);

/*
 * gen_ref(g), gen_unref(g):
 * Take or drop a reference; the last gen_unref() frees g.
 */
void		 gen_ref(struct gen *g);
void		 gen_unref(struct gen *g);

#endif
