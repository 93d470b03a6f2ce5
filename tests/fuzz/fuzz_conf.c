/*
 * fuzz_conf: the configuration parser (config/parse.c) and the normalised
 * dump behind `recluse -nn` (config/conf.c).
 *
 * Each input is written to a file and read with conf_parse(), as the
 * parent reads /etc/recluse/recluse.conf (includes and all).  What fails
 * must say why.  What parses is given its defaults and dumped; the dump,
 * read back, must parse too and dump the same bytes (a round trip).  Any
 * difference aborts.  conf_load()'s checks against the system (users, the
 * chroot, certificates, keys, host names) are not run: they read no input
 * of their own but the files the configuration names.
 *
 * The files live in a directory of their own under $TMPDIR (tests/fuzz/run
 * points that at a scratch directory), removed at exit.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/conf.h"
#include "config/parse.h"

int	LLVMFuzzerInitialize(int *, char ***);
int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static char	dir[PATH_MAX];
static char	inpath[PATH_MAX + 16];
static char	dumppath[PATH_MAX + 16];

static void
cleanup(void)
{
	unlink(inpath);
	unlink(dumppath);
	rmdir(dir);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *tmp = getenv("TMPDIR");

	if (tmp == NULL || *tmp == '\0')
		tmp = "/tmp";
	snprintf(dir, sizeof(dir), "%s/fuzz_conf.XXXXXX", tmp);
	if (mkdtemp(dir) == NULL) {
		perror(dir);
		exit(1);
	}
	snprintf(inpath, sizeof(inpath), "%s/in.conf", dir);
	snprintf(dumppath, sizeof(dumppath), "%s/dump.conf", dir);
	atexit(cleanup);
	return 0;
}

static void
write_file(const char *path, const void *buf, size_t len)
{
	const char *p = buf;
	ssize_t n;
	int fd;

	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0600)) == -1) {
		perror(path);
		abort();
	}
	while (len > 0) {
		if ((n = write(fd, p, len)) == -1) {
			if (errno == EINTR)
				continue;
			perror(path);
			abort();
		}
		p += n;
		len -= (size_t)n;
	}
	close(fd);
}

/*
 * Parse path, give it its defaults and return its dump (malloc'd, its
 * length in *lenp), or NULL with the reason in err.
 */
static char *
parse_dump(const char *path, size_t *lenp, char *err, size_t errlen)
{
	struct conf *c;
	char *out = NULL;
	FILE *fp;

	err[0] = '\0';
	if ((c = calloc(1, sizeof(*c))) == NULL)
		abort();
	if (conf_parse(c, path, err, errlen) == -1) {
		if (err[0] == '\0' || memchr(err, '\0', errlen) == NULL) {
			fprintf(stderr, "conf_parse failed without a "
			    "message\n");
			abort();
		}
		conf_free(c);
		return NULL;
	}
	if (conf_defaults(c, err, errlen) == -1)
		abort();
	if ((fp = open_memstream(&out, lenp)) == NULL)
		abort();
	if (conf_dump(c, fp) == -1)
		abort();
	fclose(fp);
	conf_free(c);
	return out;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[CONF_ERR_MAX], *d1, *d2;
	size_t len1, len2;

	write_file(inpath, data, size);
	if ((d1 = parse_dump(inpath, &len1, err, sizeof(err))) == NULL)
		return 0;
	write_file(dumppath, d1, len1);
	d2 = parse_dump(dumppath, &len2, err, sizeof(err));
	/* the next input must not find it (include "dump.conf") */
	unlink(dumppath);
	if (d2 == NULL) {
		fprintf(stderr, "the dump does not parse: %s\n---- dump\n%s"
		    "----\n", err, d1);
		abort();
	}
	if (len1 != len2 || memcmp(d1, d2, len1) != 0) {
		fprintf(stderr, "the dump, read back, dumps otherwise\n"
		    "---- first\n%s---- second\n%s----\n", d1, d2);
		abort();
	}
	free(d1);
	free(d2);
	return 0;
}
