/*
 * bench/statsloop: the parent's counting for one connection (proxy/stats.c),
 * a million times: stats_accepted, established, CHAN_PEER, the backend,
 * CHAN_ENDED, reaped.  make bench/statsloop; see docs/PERFORMANCE.md.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "config/conf.h"
#include "proxy/stats.h"
int
main(void)
{
	struct conf_backend b;
	struct conf_listener l;
	struct { struct msg_hdr h; struct chan_peer p; } peer;
	struct { struct msg_hdr h; struct chan_ended e; } end;
	struct stats_conn *sc;
	struct timespec t0, t1;
	long i, n = 1000000;

	memset(&b, 0, sizeof(b));
	b.type = CONF_BACKEND_TCP; b.host = "127.0.0.1"; b.port = 8080;
	memset(&l, 0, sizeof(l));
	l.name = "web"; l.backends = &b; l.nbackends = 1;
	memset(&peer, 0, sizeof(peer));
	peer.h.type = CHAN_PEER; peer.h.len = sizeof(peer.p);
	strcpy(peer.p.client, "127.0.0.1:45678"); strcpy(peer.p.sni, "localhost");
	memset(&end, 0, sizeof(end));
	end.h.type = CHAN_ENDED; end.h.len = sizeof(end.e);
	end.e.sign = CHAN_SIGN_OK; end.e.sign_us = 700; end.e.handshake_us = 3000;
	end.e.from_client = 100; end.e.to_client = 1000;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < n; i++) {
		sc = stats_accepted("web", (pid_t)i);
		stats_established(sc);
		stats_chan(sc, &peer.h, (const char *)&peer.p);
		stats_backend(sc, &l, 0, 1);
		stats_chan(sc, &end.h, (const char *)&end.e);
		stats_reaped(sc, "web", 0);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("%.0f ns per connection\n", ((t1.tv_sec - t0.tv_sec) * 1e9 +
	    (t1.tv_nsec - t0.tv_nsec)) / n);
	return 0;
}
