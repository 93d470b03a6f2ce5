/*
 * hostile-control: the positive control of tests/isolation.bats.  The
 * attacks of hostile.c, run in an ordinary process (no chroot, no filter,
 * whatever user runs it), where each must succeed: a harness that cannot
 * see an attack work cannot claim the sandbox stopped it.
 *
 *	hostile-control ATTACK [KEY=VALUE ...] [plant=HEX]
 *
 * The arguments are those of the "go" line (hostile.h).  The client
 * socket the attacks use is a loopback TCP connection made here; result
 * lines go to stdout.  For memscan, plant=HEX puts the decoded bytes in
 * this process's heap (the marker to find), and the ranges are read from
 * /proc/self/maps.  There is no keyproc and no parent channel: sign,
 * preaccept, flood and frame are not for this program.  Exit 0, or 1 if the
 * attack or its arguments are unknown.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/helpers/hostile.h"

#define CONTROL_ARGS_MAX	(256 * 1024)

/* The planted marker: kept where the compiler cannot drop it. */
static volatile unsigned char	*control_plant;

/* A connected loopback TCP socket (its peer stays open too). */
static int
control_conn(void)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int l, c;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((l = socket(AF_INET, SOCK_STREAM, 0)) == -1 ||
	    bind(l, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    listen(l, 1) == -1 ||
	    getsockname(l, (struct sockaddr *)&sin, &len) == -1 ||
	    (c = socket(AF_INET, SOCK_STREAM, 0)) == -1 ||
	    connect(c, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    accept(l, NULL, NULL) == -1)
		err(1, "loopback connection");
	return c;
}

static void
control_plant_hex(const char *hex)
{
	size_t n = strlen(hex) / 2, i;
	unsigned int b;

	if ((control_plant = malloc(n + 1)) == NULL)
		err(1, "malloc");
	for (i = 0; i < n; i++) {
		if (sscanf(hex + 2 * i, "%2x", &b) != 1)
			errx(1, "plant: not hex");
		control_plant[i] = (unsigned char)b;
	}
}

static void
append(char *buf, size_t len, const char *s)
{
	size_t n = strlen(buf);

	if (snprintf(buf + n, len - n, "%s", s) >= (int)(len - n))
		errx(1, "arguments too long");
}

/* " ranges=S-E,..." of our readable memory, appended to args. */
static void
control_ranges(char *args, size_t len)
{
	char line[512], name[256];
	unsigned long s, e;
	char perms[8];
	size_t n;
	FILE *fp;

	if ((fp = fopen("/proc/self/maps", "r")) == NULL)
		err(1, "/proc/self/maps");
	append(args, len, " ranges=");
	while (fgets(line, sizeof(line), fp) != NULL) {
		name[0] = '\0';
		if (sscanf(line, "%lx-%lx %7s %*s %*s %*s %255s", &s, &e,
		    perms, name) < 3 || perms[0] != 'r' ||
		    strncmp(name, "[vvar", 5) == 0 ||
		    strcmp(name, "[vsyscall]") == 0)
			continue;
		n = strlen(args);
		snprintf(args + n, len - n, "%lx-%lx,", s, e);
	}
	fclose(fp);
	n = strlen(args);
	if (args[n - 1] == ',')
		args[n - 1] = '\0';
}

int
main(int argc, char *argv[])
{
	struct hostile_ctx ctx;
	static char args[CONTROL_ARGS_MAX];
	int i;

	if (argc < 2) {
		fprintf(stderr, "usage: hostile-control attack "
		    "[key=value ...]\n");
		return 1;
	}
	for (i = 2; i < argc; i++) {
		if (strncmp(argv[i], "plant=", 6) == 0) {
			control_plant_hex(argv[i] + 6);
			continue;
		}
		append(args, sizeof(args), " ");
		append(args, sizeof(args), argv[i]);
	}
	if (strcmp(argv[1], "memscan") == 0)
		control_ranges(args, sizeof(args));
	setvbuf(stdout, NULL, _IONBF, 0);
	ctx.out = STDOUT_FILENO;
	ctx.conn = control_conn();
	ctx.kpfd = -1;
	ctx.parentfd = -1;
	return hostile_run(&ctx, argv[1], args) == 0 ? 0 : 1;
}
