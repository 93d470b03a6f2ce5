/*
 * Deadlines on CLOCK_MONOTONIC, for the waits that poll(2) bounds: the
 * handshake, a backend connect, keyproc's answers.
 */
#ifndef DEADLINE_H
#define DEADLINE_H

#include <time.h>

/*
 * deadline_in(d, seconds):
 * Set *d to seconds from now.
 */
static inline void
deadline_in(struct timespec *d, int seconds)
{
	clock_gettime(CLOCK_MONOTONIC, d);
	d->tv_sec += seconds;
}

/*
 * deadline_in_ms(d, ms):
 * Set *d to ms milliseconds from now.
 */
static inline void
deadline_in_ms(struct timespec *d, long long ms)
{
	clock_gettime(CLOCK_MONOTONIC, d);
	d->tv_sec += ms / 1000;
	d->tv_nsec += (ms % 1000) * 1000000;
	if (d->tv_nsec >= 1000000000) {
		d->tv_sec++;
		d->tv_nsec -= 1000000000;
	}
}

/*
 * deadline_ms_left(d):
 * Return the milliseconds left until *d, 0 once it has passed.
 */
static inline int
deadline_ms_left(const struct timespec *d)
{
	struct timespec now;
	long long ms;

	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (long long)(d->tv_sec - now.tv_sec) * 1000 +
	    (d->tv_nsec - now.tv_nsec) / 1000000;
	if (ms < 0)
		return 0;
	return ms > 0x7fffffff ? 0x7fffffff : (int)ms;
}

/*
 * deadline_ms_since(t):
 * Return the milliseconds from *t, a CLOCK_MONOTONIC time, to now.
 */
static inline long long
deadline_ms_since(const struct timespec *t)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (long long)(now.tv_sec - t->tv_sec) * 1000 +
	    (now.tv_nsec - t->tv_nsec) / 1000000;
}

#endif
