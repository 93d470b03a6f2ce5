/*
 * Generations: see gen.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config/clientca.h"
#include "lib/log.h"
#include "proxy/gen.h"
#include "proxy/spawner.h"
#include "proxy/tickets.h"

static unsigned int	gen_next_id = 1;

static void
gen_free(struct gen *g)
{
	struct gen_listener *gl;
	size_t i;

	if (g == NULL)
		return;
	spawner_stop_all(g);
	for (i = 0; i < g->nlisteners; i++) {
		gl = &g->listeners[i];
		tlsconf_clear(&gl->tc);
		tickets_clear(gl);
		listen_close(&gl->socks);
		if (gl->count != NULL && --gl->count->refs == 0)
			free(gl->count);
	}
	free(g->listeners);
	conf_free(g->conf);
	free(g);
}

/* The previous generation's sockets, as one array for listen_open(). */
static struct listen_set *
prev_sockets(const struct gen *prev, size_t *np)
{
	struct listen_set *sets;
	size_t i;

	*np = 0;
	if (prev == NULL)
		return NULL;
	if ((sets = calloc(prev->nlisteners, sizeof(*sets))) == NULL)
		return NULL;
	for (i = 0; i < prev->nlisteners; i++)
		sets[i] = prev->listeners[i].socks;
	*np = prev->nlisteners;
	return sets;
}

/* The count of prev's listener named like l, shared, or a new one. */
static struct gen_count *
gen_count_for(const struct conf_listener *l, const struct gen *prev)
{
	struct gen_count *n;
	size_t i;

	for (i = 0; prev != NULL && i < prev->nlisteners; i++)
		if (strcmp(prev->listeners[i].conf->name, l->name) == 0) {
			prev->listeners[i].count->refs++;
			return prev->listeners[i].count;
		}
	if ((n = calloc(1, sizeof(*n))) != NULL)
		n->refs = 1;
	return n;
}

static int
gen_listener_build(struct gen_listener *gl, const struct conf_listener *l,
    const struct gen *pg, const struct listen_set *prev, size_t nprev,
    char *err, size_t errlen)
{
	char warn[CONF_ERR_MAX];

	gl->conf = l;
	gl->spares = 0;
	if ((gl->count = gen_count_for(l, pg)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (tlsconf_load(l, &gl->tc, err, errlen) == -1)
		return -1;
	if (clientca_warn(l, time(NULL), warn, sizeof(warn)) != NULL)
		log_warnx("listener %s: %s", l->name, warn);
	return listen_open(l, prev, nprev, &gl->socks, err, errlen);
}

struct gen *
gen_load(const char *path, const struct gen *prev, char *err, size_t errlen)
{
	struct listen_set *prevsocks;
	struct gen *g;
	size_t i, nprev;

	if ((g = calloc(1, sizeof(*g))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	g->refs = 1;
	if ((g->conf = conf_load(path, err, errlen)) == NULL) {
		free(g);
		return NULL;
	}
	g->listeners = calloc(g->conf->nlisteners, sizeof(*g->listeners));
	if (g->listeners == NULL) {
		snprintf(err, errlen, "out of memory");
		gen_free(g);
		return NULL;
	}
	g->nlisteners = g->conf->nlisteners;
	prevsocks = prev_sockets(prev, &nprev);
	for (i = 0; i < g->nlisteners; i++) {
		if (gen_listener_build(&g->listeners[i], &g->conf->listeners[i],
		    prev, prevsocks, nprev, err, errlen) == -1) {
			free(prevsocks);
			gen_free(g);
			return NULL;
		}
	}
	free(prevsocks);
	if (tickets_load(g, prev, err, errlen) == -1) {
		gen_free(g);
		return NULL;
	}
	g->id = gen_next_id++;
	return g;
}

void
gen_ref(struct gen *g)
{
	g->refs++;
}

void
gen_unref(struct gen *g)
{
	if (--g->refs == 0)
		gen_free(g);
}
