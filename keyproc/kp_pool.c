/*
 * keyproc's signers: see kp_pool.h.
 *
 * One queue under one mutex: a signature costs from about 40 (ECDSA
 * P-256) to 1000 µs (RSA-2048) here, a lock and a condition variable well
 * under a microsecond, so the lock is not what limits N (the model in
 * docs/PERFORMANCE.md).  A signer answers the child itself
 * (msg_putv(): a stack buffer, no shared state) so the loop does only one
 * read of the eventfd per batch of finished jobs.
 */
#include <sys/types.h>
#include <sys/eventfd.h>
#include <sys/queue.h>
#include <sys/uio.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "keyproc/kp_pool.h"
#include "keyproc/sign.h"
#include "lib/msg.h"
#include "lib/wire.h"

TAILQ_HEAD(kp_jobq, kp_job);

static pthread_mutex_t	 kp_pool_mtx = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t	 kp_pool_cv = PTHREAD_COND_INITIALIZER;
static struct kp_jobq	 kp_pool_todo = TAILQ_HEAD_INITIALIZER(kp_pool_todo);
static struct kp_jobq	 kp_pool_done = TAILQ_HEAD_INITIALIZER(kp_pool_done);
static int		 kp_pool_wake;	/* the eventfd was written, not read */
static int		 kp_pool_stopping;
static unsigned int	 kp_pool_started;	/* signers in their loop */
static pthread_cond_t	 kp_pool_startcv = PTHREAD_COND_INITIALIZER;
static unsigned long	 kp_pool_submitted, kp_pool_finished;
static unsigned long	 kp_pool_seen;	/* kp_pool_finished at the last look */
static int		 kp_pool_busy;	/* jobs out at the last look */
static pthread_t	 kp_pool_threads[KP_SIGNERS_MAX];
static unsigned int	 kp_pool_n;
static int		 kp_pool_efd = -1;
static struct event	*kp_pool_ev;
static void		(*kp_pool_done_cb)(struct kp_job *);

/* Sign, and answer the child on its channel. */
static void
kp_pool_run(struct kp_job *j)
{
	uint8_t sig[KP_SIG_MAX];
	struct kp_sign_rep rep;
	struct iovec iov[2];
	size_t siglen = 0;

	memset(&rep, 0, sizeof(rep));
	rep.id = j->id;
	rep.status = KP_OK;
	j->failed = 0;
	if (sign_key_sign(j->sk, j->alg, j->tbs, j->tbslen, sig, sizeof(sig),
	    &siglen, j->err, sizeof(j->err)) == -1) {
		j->failed = 1;
		rep.status = KP_FAIL;
		siglen = 0;
	}
	rep.siglen = (uint32_t)siglen;
	iov[0].iov_base = &rep;
	iov[0].iov_len = sizeof(rep);
	iov[1].iov_base = sig;
	iov[1].iov_len = siglen;
	j->send_errno = 0;
	if (msg_putv(j->fd, KP_SIGNED, iov, 2, -1, MSG_DONTWAIT) == -1)
		j->send_errno = errno != 0 ? errno : EIO;
}

static void *
kp_pool_signer(void *arg)
{
	struct kp_job *j;
	uint64_t one = 1;
	int wake;

	/*
	 * glibc's start of a thread (rseq, set_robust_list, the signal
	 * mask) is over: the filter, which allows none of them, may come.
	 */
	pthread_mutex_lock(&kp_pool_mtx);
	kp_pool_started++;
	pthread_cond_signal(&kp_pool_startcv);
	pthread_mutex_unlock(&kp_pool_mtx);
	for (;;) {
		pthread_mutex_lock(&kp_pool_mtx);
		while (TAILQ_EMPTY(&kp_pool_todo) && !kp_pool_stopping)
			pthread_cond_wait(&kp_pool_cv, &kp_pool_mtx);
		if (kp_pool_stopping) {
			pthread_mutex_unlock(&kp_pool_mtx);
			return NULL;
		}
		j = TAILQ_FIRST(&kp_pool_todo);
		TAILQ_REMOVE(&kp_pool_todo, j, entry);
		pthread_mutex_unlock(&kp_pool_mtx);

		kp_pool_run(j);

		pthread_mutex_lock(&kp_pool_mtx);
		TAILQ_INSERT_TAIL(&kp_pool_done, j, entry);
		kp_pool_finished++;
		wake = !kp_pool_wake;
		kp_pool_wake = 1;
		pthread_mutex_unlock(&kp_pool_mtx);
		/* one write per batch: the loop takes the whole list */
		if (wake)
			(void)write(kp_pool_efd, &one, sizeof(one));
	}
}

/* The loop's side: every finished job to done(). */
static void
kp_pool_collect(int fd, short events, void *arg)
{
	struct kp_jobq q = TAILQ_HEAD_INITIALIZER(q);
	struct kp_job *j;
	uint64_t n;

	(void)read(kp_pool_efd, &n, sizeof(n));
	pthread_mutex_lock(&kp_pool_mtx);
	TAILQ_CONCAT(&q, &kp_pool_done, entry);
	kp_pool_wake = 0;
	pthread_mutex_unlock(&kp_pool_mtx);
	while ((j = TAILQ_FIRST(&q)) != NULL) {
		TAILQ_REMOVE(&q, j, entry);
		kp_pool_done_cb(j);
	}
}

int
kp_pool_start(unsigned int n, struct event_base *base,
    void (*done)(struct kp_job *), char *err, size_t errlen)
{
	sigset_t all, old;
	int rc;

	if (n < 2 || n > KP_SIGNERS_MAX) {
		snprintf(err, errlen, "keyproc: %u signers (2 to %d)", n,
		    KP_SIGNERS_MAX);
		return -1;
	}
	kp_pool_done_cb = done;
	if ((kp_pool_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1 ||
	    (kp_pool_ev = event_new(base, kp_pool_efd, EV_READ | EV_PERSIST,
	    kp_pool_collect, NULL)) == NULL ||
	    event_priority_set(kp_pool_ev, 1) == -1 ||
	    event_add(kp_pool_ev, NULL) == -1) {
		snprintf(err, errlen, "keyproc: cannot watch the signers");
		return -1;
	}
	/* the signers take no signal: the loop's thread gets them all */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (kp_pool_n = 0; kp_pool_n < n; kp_pool_n++)
		if ((rc = pthread_create(&kp_pool_threads[kp_pool_n], NULL,
		    kp_pool_signer, NULL)) != 0)
			break;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (kp_pool_n < n) {
		snprintf(err, errlen, "keyproc: cannot start signer %u: %s",
		    kp_pool_n + 1, strerror(rc));
		kp_pool_stop();
		return -1;
	}
	/* not before every signer has made the system calls of its start */
	pthread_mutex_lock(&kp_pool_mtx);
	while (kp_pool_started < kp_pool_n)
		pthread_cond_wait(&kp_pool_startcv, &kp_pool_mtx);
	pthread_mutex_unlock(&kp_pool_mtx);
	return 0;
}

void
kp_pool_submit(struct kp_job *j)
{
	pthread_mutex_lock(&kp_pool_mtx);
	TAILQ_INSERT_TAIL(&kp_pool_todo, j, entry);
	kp_pool_submitted++;
	pthread_cond_signal(&kp_pool_cv);
	pthread_mutex_unlock(&kp_pool_mtx);
}

int
kp_pool_stuck(void)
{
	int stuck;

	pthread_mutex_lock(&kp_pool_mtx);
	stuck = kp_pool_busy && kp_pool_finished == kp_pool_seen;
	kp_pool_seen = kp_pool_finished;
	kp_pool_busy = kp_pool_submitted != kp_pool_finished;
	pthread_mutex_unlock(&kp_pool_mtx);
	return stuck;
}

void
kp_pool_stop(void)
{
	unsigned int i;

	if (kp_pool_n == 0)
		return;
	pthread_mutex_lock(&kp_pool_mtx);
	kp_pool_stopping = 1;
	pthread_cond_broadcast(&kp_pool_cv);
	pthread_mutex_unlock(&kp_pool_mtx);
	for (i = 0; i < kp_pool_n; i++)
		pthread_join(kp_pool_threads[i], NULL);
	kp_pool_n = 0;
}
