/*
 * recluse: the parent.  Root, never reads network input: it loads the
 * configuration, binds the listeners, starts keyproc and keeps the pool of
 * connection children; reloads on SIGHUP, drains on SIGTERM and SIGINT.
 */
#include <sys/resource.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <tls.h>

#include "config/conf.h"
#include "keyproc/keyproc.h"
#include "keyproc/kp_provider.h"
#include "keyproc/sign.h"
#include "proxy/gen.h"
#include "proxy/listen.h"
#include "lib/log.h"
#include "proxy/notify.h"
#include "proxy/spawn.h"
#include "proxy/spawner.h"

#define RECLUSE_VERSION	"0.1.0"
#define KP_RESTART_GAP	1	/* seconds between keyproc restarts */
#define KP_OLD_MAX	16	/* replaced keyprocs not yet reaped */

static struct {
	const char		*path;
	int			 verbose;
	struct event_base	*base;
	struct gen		*gen;
	pid_t			 kppid;
	int			 kpfd;
	struct event		*kpev;
	struct event		*kpretry;
	struct event		*drain;
	int			 draining;
	pid_t			 oldkp[KP_OLD_MAX];	/* replaced, exiting */
} parent = { .kppid = -1, .kpfd = -1 };

static __dead void
usage(void)
{
	fprintf(stderr, "usage: recluse [-nvV] [-f file]\n");
	exit(2);
}

/* Start a keyproc holding g's keys; return its control fd or -1. */
static int
keyproc_start(struct gen *g, pid_t *pidp, char *err, size_t errlen)
{
	struct gen_listener *gl;
	size_t i;
	int fd;

	if (kp_ctl_spawn(pidp, &fd) == -1) {
		snprintf(err, errlen, "cannot start keyproc: %s",
		    strerror(errno));
		return -1;
	}
	for (i = 0; i < g->nlisteners; i++) {
		gl = &g->listeners[i];
		if (kp_ctl_send_key(fd, (uint32_t)i, 0, gl->tc.spki,
		    gl->tc.spkilen, gl->conf->key, gl->keyfd) == -1) {
			snprintf(err, errlen, "keyproc: cannot send key %s",
			    gl->conf->key);
			goto err;
		}
	}
	if (kp_ctl_send_start(fd, g->conf->keyproc_uid, g->conf->keyproc_gid,
	    parent.verbose, g->conf->chroot) == -1) {
		snprintf(err, errlen, "keyproc: cannot start it");
		goto err;
	}
	if (kp_ctl_wait_ready(fd, err, errlen) == -1)
		goto err;
	return fd;
err:
	close(fd);
	kill(*pidp, SIGKILL);
	return -1;
}

static void	kp_read_cb(evutil_socket_t, short, void *);

/* A replaced keyproc finishes its handshakes, then exits: reap it later. */
static void
keyproc_forget(pid_t pid)
{
	size_t i;

	for (i = 0; i < KP_OLD_MAX; i++) {
		if (parent.oldkp[i] == 0) {
			parent.oldkp[i] = pid;
			return;
		}
	}
	/* More than KP_OLD_MAX reloads in a handshake's time: the
	 * waitpid(-1) of reap() gets the rest, when it runs. */
}

/* Reap the replaced keyprocs that have exited; return how many. */
static size_t
keyproc_reap_old(void)
{
	size_t i, n = 0;
	pid_t r;
	int status;

	for (i = 0; i < KP_OLD_MAX; i++) {
		if (parent.oldkp[i] == 0)
			continue;
		r = waitpid(parent.oldkp[i], &status, WNOHANG);
		if (r == parent.oldkp[i])
			n++;
		if (r == parent.oldkp[i] || (r == -1 && errno == ECHILD))
			parent.oldkp[i] = 0;	/* reaped, here or by waitpid(-1) */
	}
	return n;
}

/* Make (pid, fd) the running keyproc; a previous one exits on EOF. */
static void
keyproc_install(pid_t pid, int fd)
{
	if (parent.kpev != NULL) {
		event_free(parent.kpev);
		parent.kpev = NULL;
	}
	if (parent.kpfd != -1)
		close(parent.kpfd);
	if (parent.kppid != -1)
		keyproc_forget(parent.kppid);
	parent.kppid = pid;
	parent.kpfd = fd;
	if (fd != -1) {
		/* Running: a stuck keyproc must not stop the parent. */
		if (fcntl(fd, F_SETFL, O_NONBLOCK) == -1)
			log_warn("keyproc: control channel");
		evtimer_del(parent.kpretry);
		parent.kpev = event_new(parent.base, fd, EV_READ | EV_PERSIST,
		    kp_read_cb, NULL);
		if (parent.kpev == NULL || event_add(parent.kpev, NULL) == -1)
			fatalx("keyproc: libevent");
	}
	spawn_set_keyproc(fd);
}

static void
keyproc_restart(void)
{
	struct timeval tv = { KP_RESTART_GAP, 0 };
	char err[CONF_ERR_MAX];
	pid_t pid;
	int fd;

	if (parent.draining || parent.gen == NULL)
		return;
	if ((fd = keyproc_start(parent.gen, &pid, err, sizeof(err))) == -1) {
		log_warnx("%s; trying again in %d s", err, KP_RESTART_GAP);
		evtimer_add(parent.kpretry, &tv);
		return;
	}
	keyproc_install(pid, fd);
	log_info("keyproc restarted (pid %d)", (int)pid);
	spawn_fill();
}

/* keyproc is gone; waited: its pid was already waited for. */
static void
keyproc_lost(const char *why, int waited)
{
	if (waited)
		parent.kppid = -1;	/* not a pid to wait for again */
	if (parent.kpfd == -1)
		return;
	log_warnx("keyproc %s; starting a new one", why);
	keyproc_install(-1, -1);
	keyproc_restart();
}

static void
kp_read_cb(evutil_socket_t fd, short what, void *arg)
{
	if (kp_ctl_read(fd) == -1)
		keyproc_lost("is gone", 0);
}

static void
kp_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	keyproc_restart();
}

static __dead void
finish(void)
{
	keyproc_install(-1, -1);
	log_info("stopped");
	exit(0);
}

static void
drain_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	log_warnx("drain timeout: closing %zu connections", spawn_busy());
	spawn_kill_all(SIGKILL);
	finish();
}

static void
drain_start(int sig)
{
	struct timeval tv = { 0, 0 };

	if (parent.draining) {
		log_warnx("signal %d again: stopping now", sig);
		spawn_kill_all(SIGKILL);
		finish();
	}
	parent.draining = 1;
	notify_send("STOPPING=1");
	tv.tv_sec = parent.gen->conf->timeout_drain;
	log_info("stopping: draining %zu connections (up to %ld s)",
	    spawn_busy(), (long)tv.tv_sec);
	spawn_drain();
	if (spawn_count() == 0)
		finish();
	parent.drain = evtimer_new(parent.base, drain_timeout_cb, NULL);
	if (parent.drain == NULL || evtimer_add(parent.drain, &tv) == -1)
		finish();
}

static void
reload(void)
{
	char err[CONF_ERR_MAX];
	struct gen *g, *old;
	pid_t pid;
	int fd;

	if (parent.draining)
		return;
	notify_send("RELOADING=1");
	log_info("reloading %s", parent.path);
	if ((g = gen_load(parent.path, parent.gen, err, sizeof(err))) == NULL) {
		log_warnx("reload failed, keeping the running configuration: %s",
		    err);
		notify_send("READY=1");
		return;
	}
	if ((fd = keyproc_start(g, &pid, err, sizeof(err))) == -1) {
		log_warnx("reload failed, keeping the running configuration: %s",
		    err);
		gen_unref(g);
		notify_send("READY=1");
		return;
	}
	old = parent.gen;
	parent.gen = g;
	spawn_set_gen(g);
	gen_unref(old);
	keyproc_install(pid, fd);
	spawn_fill();
	log_info("ready: configuration %u, %zu listeners", g->id,
	    g->nlisteners);
	notify_send("READY=1");
}

/* After children were reaped: a drain ends with the last one. */
static void
reaped(void)
{
	if (parent.draining && spawn_count() == 0)
		finish();
}

/*
 * A child's exit closes its channel first, so spawn_reap() finds it by pid;
 * keyproc, current or replaced, is waited for by pid too.  Only when none
 * explains the signal (a child whose EOF is not read yet) does waitpid(-1),
 * which walks every child, run.
 */
static void
reap(void)
{
	pid_t pid;
	int status;
	size_t n;

	n = spawn_reap() + keyproc_reap_old() + spawner_reap();
	if (parent.kppid != -1 &&
	    waitpid(parent.kppid, &status, WNOHANG) == parent.kppid) {
		keyproc_lost(WIFSIGNALED(status) ? "was killed" : "exited", 1);
		n++;
	}
	while (n == 0 && (pid = waitpid(-1, &status, WNOHANG)) > 0) {
		if (spawn_reaped(pid, status) || spawner_reaped(pid, status))
			continue;
		if (pid == parent.kppid)
			keyproc_lost(WIFSIGNALED(status) ? "was killed" :
			    "exited", 1);
	}
	reaped();
}

static void
signal_cb(evutil_socket_t sig, short what, void *arg)
{
	switch (sig) {
	case SIGCHLD:
		reap();
		break;
	case SIGHUP:
		reload();
		break;
	case SIGTERM:
	case SIGINT:
		drain_start((int)sig);
		break;
	}
}

/* Room for a descriptor per child plus the listeners. */
static void
raise_nofile(long maxconn)
{
	struct rlimit rl;
	rlim_t want = (rlim_t)maxconn * 2 + 256;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		return;
	if (rl.rlim_max < want) {
		rl.rlim_cur = rl.rlim_max = want;
		if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
			return;
		log_warn("cannot raise the descriptor limit to %llu",
		    (unsigned long long)want);
		if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
			return;
	}
	/* At least everything the hard limit allows. */
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
		log_warn("setrlimit");
}

static void
add_signal(int sig)
{
	struct event *ev;

	if ((ev = evsignal_new(parent.base, sig, signal_cb, NULL)) == NULL ||
	    evsignal_add(ev, NULL) == -1)
		fatalx("signal %d: libevent", sig);
}

static __dead void
serve(void)
{
	char err[CONF_ERR_MAX];
	pid_t pid;
	int fd;

	if (geteuid() != 0)
		fatalx("must be started as root (it drops privileges itself)");
	signal(SIGPIPE, SIG_IGN);
	/* For the check of each listener's libtls context at load time; the
	 * contexts the children use are each spawner's own. */
	if (kp_provider_load() == -1)
		fatalx("cannot load the keyproc OpenSSL provider");
	listen_inherit();
	if ((parent.gen = gen_load(parent.path, NULL, err, sizeof(err))) == NULL)
		fatalx("%s", err);
	listen_unused_close();
	raise_nofile(parent.gen->conf->max_connections);
	if ((parent.base = event_base_new()) == NULL)
		fatalx("event_base_new failed");
	add_signal(SIGCHLD);
	add_signal(SIGHUP);
	add_signal(SIGTERM);
	add_signal(SIGINT);
	parent.kpretry = evtimer_new(parent.base, kp_retry_cb, NULL);
	spawn_init(parent.base, reaped);
	spawn_set_gen(parent.gen);
	if ((fd = keyproc_start(parent.gen, &pid, err, sizeof(err))) == -1)
		fatalx("%s", err);
	keyproc_install(pid, fd);
	spawn_fill();
	log_info("ready: configuration %u, %zu listeners", parent.gen->id,
	    parent.gen->nlisteners);
	notify_send("READY=1");
	event_base_dispatch(parent.base);
	fatalx("event loop ended");
}

/* -n: does each listener's key match its certificate? */
static int
check_keys(const struct conf *conf, char *err, size_t errlen)
{
	const struct conf_listener *l;
	struct sign_key *k;
	uint8_t *cert, *spki = NULL;
	size_t i, certlen, spkilen, reflen;
	char *ref = NULL;

	for (i = 0; i < conf->nlisteners; i++) {
		l = &conf->listeners[i];
		if ((cert = tls_load_file(l->certificate, &certlen, NULL)) == NULL) {
			snprintf(err, errlen, "%s: cannot read", l->certificate);
			return -1;
		}
		k = NULL;
		if (kp_ref_from_cert(cert, certlen, 0, &ref, &reflen, &spki,
		    &spkilen, err, errlen) == 0)
			k = sign_key_load_file(l->key, spki, spkilen, err,
			    errlen);
		tls_unload_file(cert, certlen);
		free(ref);
		free(spki);
		ref = NULL;
		spki = NULL;
		if (k == NULL)
			return -1;
		sign_key_free(k);
	}
	return 0;
}

/* -n: check the file; with keys, check each matches its certificate. */
static int
check_only(int dump)
{
	char err[CONF_ERR_MAX];
	struct conf *conf;
	int rc = 0;

	if ((conf = conf_load(parent.path, err, sizeof(err))) == NULL) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	if (check_keys(conf, err, sizeof(err)) == -1) {
		fprintf(stderr, "%s\n", err);
		rc = 1;
	} else if (dump && conf_dump(conf, stdout) == -1)
		rc = 1;
	else
		fprintf(stderr, "configuration OK\n");
	conf_free(conf);
	return rc;
}

/*
 * Started with stdin, stdout or stderr closed, the first sockets would take
 * their numbers, and the /dev/null the spawner puts there would replace a
 * channel: fill them first.
 */
static void
std_fds_open(void)
{
	int fd;

	while ((fd = open("/dev/null", O_RDWR)) != -1 && fd <= STDERR_FILENO)
		;
	if (fd == -1)
		fatal("/dev/null");
	close(fd);
}

int
main(int argc, char *argv[])
{
	const char *base;
	int ch, check = 0;

	base = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
	if (strcmp(base, KEYPROC_ARGV0) == 0)
		keyproc_main();
	if (strcmp(base, SPAWNER_ARGV0) == 0)
		spawner_main();

	parent.path = CONF_DEFAULT_FILE;
	while ((ch = getopt(argc, argv, "f:nvV")) != -1) {
		switch (ch) {
		case 'f':
			parent.path = optarg;
			break;
		case 'n':
			check++;
			break;
		case 'v':
			parent.verbose++;
			break;
		case 'V':
			printf("recluse %s\n", RECLUSE_VERSION);
			return 0;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
	log_init("parent", parent.verbose, -1);
	std_fds_open();
	if (check > 0)
		return check_only(check > 1);
	serve();
}
