/*
 * The metrics process: the one process that answers HTTP, on the address
 * or UNIX socket of the configuration's `metrics` line (off without one).
 *
 * It parses requests from the network, so it is built like a connection
 * child: exec'ed by the parent under METRICS_ARGV0 with its channel and
 * the listening socket the parent bound, chrooted, the configuration's
 * user, no_new_privs, dumpable 0, RLIMIT_AS, and a seccomp filter with no
 * open, socket or connect, accept4 on that one listening socket only.  It
 * reads one bounded GET request line per connection (size cap, deadline),
 * asks the parent for the page (METRICS_GET), and writes what the parent
 * handed over (a memfd, METRICS_PAGE) back as plain text.  It holds no
 * counters: the parent makes each page when asked, at most a few a second.
 */
#ifndef METRICS_H
#define METRICS_H

#include <sys/types.h>

#include "lib/util.h"

#define METRICS_ARGV0	"recluse-metrics"

struct conf;
struct event_base;

/*
 * metrics_main():
 * The metrics process itself: called by main() when argv[0] is
 * METRICS_ARGV0, with its channel on METRICS_FD and its listening socket
 * on METRICS_LISTEN_FD.  Never returns.
 */
__dead void	metrics_main(void);

/*
 * metrics_ctl_init(base, conf, err, errlen):
 * In the parent, at start: if conf has a metrics endpoint, bind it and
 * start the metrics process as conf's user, in conf's chroot, its events
 * on base; a dead one is started again after a second.  The endpoint is
 * read here only: a reload does not move it.  Return 0, or -1 with a
 * message in err (the endpoint cannot be bound).
 */
int	metrics_ctl_init(struct event_base *base, const struct conf *conf,
	    char *err, size_t errlen);

/*
 * metrics_ctl_reap():
 * In the parent: reap the metrics processes that have exited, each by its
 * own pid.  Return how many.
 */
size_t	metrics_ctl_reap(void);

/*
 * metrics_ctl_reaped(pid, status):
 * In the parent: account for an exited process.  Return 1 if it was a
 * metrics process, 0 otherwise.
 */
int	metrics_ctl_reaped(pid_t pid, int status);

#endif
