/*
 * The hostile-child harness of tests/isolation.bats: attacks run from
 * inside a real, sandboxed connection child of the test-only build
 * tests/helpers/recluse-hostile (proxy/child.c compiled with
 * -DRECLUSE_HOSTILE, which calls the two hooks below), and the same
 * attacks run in an ordinary process by tests/helpers/hostile-control,
 * the positive control.  None of this is ever in the installed recluse.
 *
 * The conversation, on a plain TCP connection to a listener of
 * recluse-hostile (a TLS client is served as usual):
 *
 *	client:	"RECLUSE-HOSTILE <attack>\n"
 *	child:	"hello <pid>\n"
 *	client:	"go [key=value ...]\n"	(the pids, ports, markers it needs)
 *	child:	result lines, then "done\n"; then it exits
 *
 * One attack per connection: a call the seccomp filter kills for takes
 * the child with it.  So before each call that may be fatal the child
 * says "<attack>: calling <call>", and then one verdict line follows:
 *
 *	<attack>: blocked: <call>: <ERRNO NAME>	the call failed
 *	<attack>: SUCCEEDED: <what it got>	the sandbox let it through
 *	<attack>: info: <anything else>
 *
 * A "calling" line and then no verdict, no "done" and a parent's log line
 * "child PID killed by signal 31" means the filter killed the child:
 * blocked too.
 */
#ifndef HOSTILE_H
#define HOSTILE_H

#define HOSTILE_TRIGGER		"RECLUSE-HOSTILE "
/* Spares of a listener of this name ask keyproc to sign before accept. */
#define HOSTILE_PREACCEPT	"hostile-preaccept"

struct hostile_ctx {
	int	out;		/* result lines */
	int	conn;		/* a connected TCP socket, to attack with */
	int	kpfd;		/* the channel to keyproc, or -1 */
	int	parentfd;	/* the log channel to the parent, or -1 */
};

/*
 * hostile_preaccept(listener, kpfd):
 * In a connection child of recluse-hostile, sandboxed, before its first
 * accept: if listener is HOSTILE_PREACCEPT, ask keyproc for a signature
 * on kpfd (an ECDSA P-256 key is assumed), wait 300 ms for the answer and
 * remember what came, for the "preaccept" attack to report.
 */
void	hostile_preaccept(const char *listener, int kpfd);

/*
 * hostile_accepted(cfd, kpfd, parentfd):
 * In a connection child of recluse-hostile, right after the accept (and
 * after it told the parent so): if the client's first bytes are
 * HOSTILE_TRIGGER, hold the conversation above on cfd and exit; otherwise
 * return at once, having read nothing, and the child serves the client.
 */
void	hostile_accepted(int cfd, int kpfd, int parentfd);

/*
 * hostile_run(ctx, attack, args):
 * Run the attack named attack with the "key=value ..." arguments in args
 * (modified), writing its lines to ctx->out.  Runs in a sandboxed child
 * (hostile_accepted()) or in hostile-control.  Return 0, or -1 if the
 * attack or an argument is unknown.
 */
int	hostile_run(const struct hostile_ctx *ctx, const char *attack,
	    char *args);

#endif
