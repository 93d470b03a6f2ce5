/*
 * Backend checks at start and at reload: each backend of each listener is
 * connected to once, through the connector (the parent connects nothing
 * itself), and one that does not answer is logged as a warning.  recluse
 * serves anyway: a backend may well come up after its proxy.
 */
#ifndef PROBE_H
#define PROBE_H

struct gen;

/*
 * probe_backends(g):
 * Check every backend of g, in the background: a warning for each one
 * none of whose addresses answers within g's connect timeout, nothing
 * for one that does.  Checks of an earlier generation still running are
 * cancelled first.
 */
void	probe_backends(struct gen *g);

#endif
