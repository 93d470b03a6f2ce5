/*
 * The parent's counters, and the pages made of them: the metrics in the
 * Prometheus text format (GET /metrics) and the status view for a person
 * (GET /status), both served by the metrics process (proxy/metrics.h).
 *
 * Counters are kept per listener name, so that they go on across reloads;
 * an open connection is a struct stats_conn, which the pool (spawn.c)
 * holds for each busy child.  What a child says of its connection
 * (CHAN_PEER, CHAN_ENDED) is its claim: counted within bounds, shown
 * escaped, used for nothing else.  Every call is in the parent, cheap (a
 * few additions, no system call), and never fails loudly: without memory
 * a connection is simply not shown.
 */
#ifndef STATS_H
#define STATS_H

#include <sys/types.h>

#include <stddef.h>

#include "lib/wire.h"

struct conf_listener;
struct gen;
struct stats_conn;

/*
 * stats_set_gen(g):
 * g is the running generation from now on (start, or a reload that
 * succeeded): its id and load time, its listeners' spares, and the
 * notAfter of each listener's certificate, read here from the chain.
 * g must stay alive until the next call (the pool holds a reference).
 */
void	stats_set_gen(const struct gen *g);

/*
 * stats_reload(ok):
 * Count a reload, or a failed one.
 */
void	stats_reload(int ok);

/*
 * stats_keyproc(pid):
 * keyproc is pid from now on (-1: none is running).
 */
void	stats_keyproc(pid_t pid);

/*
 * stats_accepted(listener, pid):
 * Child pid of listener (its name) holds a connection: count it, and
 * return its open-connection record (NULL without memory), which the
 * caller gives to the calls below and finally to stats_reaped().
 */
struct stats_conn *stats_accepted(const char *listener, pid_t pid);

/*
 * stats_established(sc):
 * sc's handshake is done (CHAN_ESTABLISHED).  sc may be NULL.
 */
void	stats_established(struct stats_conn *sc);

/*
 * stats_chan(sc, hdr, body):
 * A CHAN_PEER or CHAN_ENDED message from sc's child: check its size
 * (MSG_LEN_IS) and values, and note or count it.  Return 0, or -1 if the
 * message is malformed, comes twice, or comes from a child that holds no
 * connection (sc NULL): the caller closes the channel.
 */
int	stats_chan(struct stats_conn *sc, const struct msg_hdr *hdr,
	    const char *body);

/*
 * stats_backend(sc, l, idx, ok):
 * The connector's answer for sc's child: connected to backend idx of l
 * (ok), or not to any (not ok: the failed attempts were counted already by
 * stats_backend_failed()).  sc may be NULL.
 */
void	stats_backend(struct stats_conn *sc, const struct conf_listener *l,
	    size_t idx, int ok);

/*
 * stats_backend_failed(l, idx):
 * One attempt to connect backend idx of l failed.
 */
void	stats_backend_failed(const struct conf_listener *l, size_t idx);

/*
 * stats_reaped(sc, listener, status):
 * A child of listener (its name) was reaped with wait status: count its
 * signal if it died of one; close and free sc (NULL: it held no
 * connection).
 */
void	stats_reaped(struct stats_conn *sc, const char *listener, int status);

/*
 * stats_page(what, fdp, lenp):
 * Write the page what (enum metrics_what) into a new memfd, at offset 0
 * on return, in *fdp, *lenp bytes long (1 .. METRICS_PAGE_MAX).  Return 0,
 * or -1 with errno set.
 */
int	stats_page(int what, int *fdp, size_t *lenp);

#endif
