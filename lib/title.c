/*
 * A process's title: see title.h.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "lib/title.h"

static char	*title_start;	/* argv[0] */
static size_t	 title_room;	/* bytes up to the last argument's NUL */

void
title_init(int argc, char *argv[])
{
	char *end;
	int i;

	if (argc < 1 || argv[0] == NULL)
		return;
	end = argv[0] + strlen(argv[0]);
	/* only arguments laid out back to back, as exec does */
	for (i = 1; i < argc && argv[i] == end + 1; i++)
		end = argv[i] + strlen(argv[i]);
	title_start = argv[0];
	title_room = (size_t)(end - argv[0]);
}

void
title_set(const char *fmt, ...)
{
	va_list ap;
	int n;

	if (title_start == NULL || title_room == 0)
		return;
	va_start(ap, fmt);
	n = vsnprintf(title_start, title_room + 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n < title_room)
		memset(title_start + n, '\0', title_room - (size_t)n);
}
