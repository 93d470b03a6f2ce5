/*
 * Routes: which of a listener's backends serve a connection, by its
 * server name (SNI) and its agreed ALPN protocol.  Used by the child,
 * which chooses, and by the parent, which connects only the backends of
 * the route the child named (recluse.conf(5), server-name and alpn).
 *
 * Route 0 is the listener's own backends; route k (1 .. nroutes) the
 * backends of server-name block k.  Protocol 0 is none; protocol p
 * (1 .. nalpn) is the listener's alpn protocol p.  Within a route, the
 * backends qualified for the connection's protocol serve it if there are
 * any, else the unqualified ones, in the order of the configuration.
 */
#ifndef ROUTE_H
#define ROUTE_H

#include <stddef.h>

#include "config/conf.h"

/*
 * route_find(l, sni):
 * The route of server name sni (NULL: the client sent none): the
 * server-name block naming it exactly (without regard to case), else the
 * first "*.DOMAIN" block where sni is one nonempty label then ".DOMAIN",
 * else 0.
 */
size_t	route_find(const struct conf_listener *l, const char *sni);

/*
 * route_alpn(l, proto):
 * 1 + the index of proto in l's alpn protocols; 0 when proto is NULL or
 * is not one of them.
 */
size_t	route_alpn(const struct conf_listener *l, const char *proto);

/*
 * route_qualified(l, route, alpn):
 * Whether route has a backend qualified for protocol alpn.
 */
int	route_qualified(const struct conf_listener *l, size_t route,
	    size_t alpn);

/*
 * route_uses(l, route, alpn, qualified, i):
 * Whether backend i of l serves route and protocol alpn; qualified is
 * route_qualified(l, route, alpn).
 */
int	route_uses(const struct conf_listener *l, size_t route, size_t alpn,
	    int qualified, size_t i);

/*
 * route_proxy_protocol(l, route):
 * The PROXY protocol version route sends its backends: its server-name
 * block's own proxy-protocol if it has one (none: 0), else the
 * listener's; 0, 1 or 2.
 */
int	route_proxy_protocol(const struct conf_listener *l, size_t route);

/*
 * route_alpn_list(l):
 * l's alpn protocols as tls_config_set_alpn(3) takes them, "h2,http/1.1":
 * a new string, or NULL (errno set).  l has at least one.
 */
char	*route_alpn_list(const struct conf_listener *l);

#endif
