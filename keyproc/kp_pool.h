/*
 * keyproc's signers: N threads that make the signatures keyproc's loop
 * has checked, and answer the child themselves.  The loop keeps
 * everything else (the control channel, every channel's state, the
 * policy); a signer sees one job at a time: a key, the checked input and
 * the descriptor to answer on.  Finished jobs come back to the loop
 * through an eventfd, in no particular order.
 */
#ifndef KP_POOL_H
#define KP_POOL_H

#include <sys/queue.h>

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "lib/wire.h"

struct sign_key;

/* One signature: filled by the loop, run by a signer, back to the loop. */
struct kp_job {
	TAILQ_ENTRY(kp_job)	 entry;
	/* in: what the loop checked */
	struct sign_key		*sk;
	int			 fd;	/* the channel: answered here */
	uint32_t		 id;	/* the request's, echoed */
	uint32_t		 alg;
	size_t			 tbslen;
	uint8_t			 tbs[KP_TBS_MAX];
	void			*arg;	/* the loop's own (its channel) */
	/* out: what happened */
	int			 failed;	/* the key operation: err says */
	int			 send_errno;	/* 0: the answer went out */
	char			 err[256];
};

/*
 * kp_pool_start(n, base, done, err, errlen):
 * Start n (2 .. KP_SIGNERS_MAX) signer threads, with every signal blocked,
 * wait until each has begun (glibc's start of a thread makes system calls
 * no filter of keyproc allows), and watch their finished jobs from base:
 * done(job) is called from base's loop for each, once, and then owns it.
 * Call it before the sandbox: the threads share the process's root,
 * credentials, limits and (sandbox_seccomp_threads()) its filter.  Return
 * 0, or -1 with a message in err.
 */
int	kp_pool_start(unsigned int n, struct event_base *base,
	    void (*done)(struct kp_job *), char *err, size_t errlen);

/*
 * kp_pool_submit(job):
 * Queue job for the next free signer.  job stays the pool's until done()
 * gets it; its fd must stay open until then.
 */
void	kp_pool_submit(struct kp_job *job);

/*
 * kp_pool_stuck():
 * Return 1 if jobs were waiting or running at the previous call and none
 * has finished since (the signers made no progress for that long), else
 * 0.  keyproc asks at each ping and does not answer a stuck one.
 */
int	kp_pool_stuck(void);

/*
 * kp_pool_stop():
 * Let every signer finish the job it runs, drop the queued ones (done()
 * is not called for them, nor for the finished ones not collected), and
 * join the threads.  Nothing if the pool was not started.
 */
void	kp_pool_stop(void);

#endif
