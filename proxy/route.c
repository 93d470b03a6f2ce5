/*
 * Routes by server name and ALPN protocol: see route.h.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proxy/route.h"

/* sni is one nonempty label, then "." and domain (without regard to case). */
static int
route_wild_match(const char *pattern, const char *sni)
{
	const char *dot = strchr(sni, '.');

	/* pattern is "*.DOMAIN": match ".DOMAIN" after the first label */
	return dot != NULL && dot != sni && strcasecmp(dot, pattern + 1) == 0;
}

size_t
route_find(const struct conf_listener *l, const char *sni)
{
	size_t i;

	if (sni == NULL || sni[0] == '\0')
		return 0;
	for (i = 0; i < l->nroutes; i++)
		if (l->routes[i].name[0] != '*' &&
		    strcasecmp(l->routes[i].name, sni) == 0)
			return i + 1;
	for (i = 0; i < l->nroutes; i++)
		if (l->routes[i].name[0] == '*' &&
		    route_wild_match(l->routes[i].name, sni))
			return i + 1;
	return 0;
}

size_t
route_alpn(const struct conf_listener *l, const char *proto)
{
	size_t i;

	if (proto == NULL)
		return 0;
	for (i = 0; i < l->nalpn; i++)
		if (strcmp(l->alpn[i], proto) == 0)
			return i + 1;
	return 0;
}

int
route_qualified(const struct conf_listener *l, size_t route, size_t alpn)
{
	size_t i;

	if (alpn == 0)
		return 0;
	for (i = 0; i < l->nbackends; i++)
		if (l->backends[i].route == route &&
		    l->backends[i].alpnidx == alpn)
			return 1;
	return 0;
}

int
route_uses(const struct conf_listener *l, size_t route, size_t alpn,
    int qualified, size_t i)
{
	const struct conf_backend *b = &l->backends[i];

	if (b->route != route)
		return 0;
	return qualified ? b->alpnidx == alpn : b->alpnidx == 0;
}

int
route_proxy_protocol(const struct conf_listener *l, size_t route)
{
	int v = route > 0 && route <= l->nroutes ?
	    l->routes[route - 1].proxy_protocol : 0;

	if (v == CONF_PP_NONE)
		return 0;
	return v != 0 ? v : l->proxy_protocol;
}

char *
route_alpn_list(const struct conf_listener *l)
{
	size_t i, len = 0;
	char *s;

	for (i = 0; i < l->nalpn; i++)
		len += strlen(l->alpn[i]) + 1;
	if ((s = calloc(1, len + 1)) == NULL)
		return NULL;
	for (i = 0; i < l->nalpn; i++) {
		if (i > 0)
			strcat(s, ",");
		strcat(s, l->alpn[i]);
	}
	return s;
}
