/*
 * Small definitions every role uses, defined once.
 */
#ifndef UTIL_H
#define UTIL_H

#ifndef __dead
#define __dead	__attribute__((__noreturn__))
#endif

/* The number of elements of an array (not a pointer). */
#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))

#endif
