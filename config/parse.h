/*
 * The configuration grammar: tokens, statements, blocks and includes.  The
 * parser only fills a struct conf; conf.c applies defaults and checks it.
 */
#ifndef PARSE_H
#define PARSE_H

#include <stdarg.h>
#include <stddef.h>

#include "config/conf.h"

/*
 * conf_parse(conf, path, errbuf, errlen):
 * Read the file path and every file it includes into conf, which the caller
 * zeroed.  Check the grammar and the form of each value (numbers in range,
 * ADDR:PORT, names, paths, no keyword given twice); resolve nothing and open
 * no file but configuration files.  Relative paths in values are made
 * absolute against the directory of the file that holds them.  Return 0, or
 * -1 with "FILE:LINE: message" in errbuf; on -1 conf holds what was read so
 * far and must still be freed with conf_free().
 */
int	conf_parse(struct conf *conf, const char *path, char *errbuf,
	    size_t errlen);

/*
 * conf_seterr(errbuf, errlen, where, fmt, ...):
 * Write "FILE:LINE: message" (or "FILE: message" when where->line is 0) to
 * errbuf.  Return -1, for "return conf_seterr(...)".
 */
int	conf_seterr(char *errbuf, size_t errlen, const struct conf_where *where,
	    const char *fmt, ...) __attribute__((__format__(__printf__, 4, 5)));

/*
 * conf_vseterr(errbuf, errlen, where, fmt, ap):
 * conf_seterr() with a va_list.  Return -1.
 */
int	conf_vseterr(char *errbuf, size_t errlen,
	    const struct conf_where *where, const char *fmt, va_list ap);

#endif
