/*
 * Backend checks at start and at reload: see probe.h.
 */
#include <sys/queue.h>

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/log.h"
#include "proxy/backend.h"
#include "proxy/connector.h"
#include "proxy/gen.h"
#include "proxy/probe.h"

struct probe {
	LIST_ENTRY(probe)	 entry;
	struct gen		*gen;	/* a reference, while the check runs */
	size_t			 listener, backend;
	struct connector_job	*job;
};

static LIST_HEAD(, probe)	probes = LIST_HEAD_INITIALIZER(probes);

static void
probe_free(struct probe *p)
{
	LIST_REMOVE(p, entry);
	gen_unref(p->gen);
	free(p);
}

static void
probe_done(void *arg, int fd, size_t idx, int err)
{
	struct probe *p = arg;
	const struct conf_listener *l = &p->gen->conf->listeners[p->listener];
	char name[BACKEND_NAME_MAX];

	if (fd != -1)
		close(fd);
	else
		log_warnx("listener %s: backend %s does not answer: %s "
		    "(serving anyway)", l->name,
		    backend_name(&l->backends[p->backend], name, sizeof(name)),
		    strerror(err));
	probe_free(p);
}

static void
probe_cancel_all(void)
{
	struct probe *p;

	while ((p = LIST_FIRST(&probes)) != NULL) {
		connector_ctl_cancel(p->job);
		probe_free(p);
	}
}

void
probe_backends(struct gen *g)
{
	const struct conf_listener *l;
	struct probe *p;
	size_t li, bi;

	probe_cancel_all();
	for (li = 0; li < g->conf->nlisteners; li++) {
		l = &g->conf->listeners[li];
		for (bi = 0; bi < l->nbackends; bi++) {
			if ((p = calloc(1, sizeof(*p))) == NULL) {
				log_warn("backend check");
				return;
			}
			p->gen = g;
			p->listener = li;
			p->backend = bi;
			gen_ref(g);
			LIST_INSERT_HEAD(&probes, p, entry);
			p->job = connector_ctl_probe(l, bi,
			    g->conf->timeout_connect, probe_done, p);
			if (p->job == NULL)
				probe_free(p);
		}
	}
}
