/*
 * bench/forkfloor: the floor of the process-per-connection design.
 *
 * A deliberately bare TLS proxy built the way recluse is shaped, minus
 * everything that makes recluse recluse: no sandbox, no keyproc (the key
 * is in-process), no libtls, no libevent, no config, no logging.  The
 * parent builds one SSL_CTX per port, keeps SPARES forked children per
 * port blocked in accept(2), and forks a replacement whenever a child
 * reports that it took a connection.  A child does one TLS handshake,
 * connects to the backend, relays with poll(2) until either side closes,
 * and exits.
 *
 * Whatever this costs per handshake beside hitch in the same run is the
 * least a fork-per-connection proxy pays on this machine; bench/run
 * measures it.  With -i ROOT it adds the least isolation recluse promises
 * (floor_iso.c: the key in a key server, the backend connection from a
 * connector, each child sandboxed and chrooted to ROOT): "isofloor" in
 * bench/run.  Not part of recluse, never installed.
 *
 * usage: forkfloor [-i ROOT] BACKEND-PORT PORT CERT KEY [PORT CERT KEY ...]
 */
#include <sys/socket.h>
#include <sys/wait.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "floor_iso.h"

#define SPARES		16
#define MAX_PORTS	4

static void
die(const char *what)
{
	fprintf(stderr, "forkfloor: %s: %s\n", what, strerror(errno));
	ERR_print_errors_fp(stderr);
	exit(1);
}

static int
tcp_socket(int port, int do_listen)
{
	struct sockaddr_in sin;
	int fd, one = 1;

	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		die("socket");
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (!do_listen)
		return connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1 ?
		    -1 : fd;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    listen(fd, 4096) == -1)
		die("bind/listen");
	return fd;
}

static int isolated;

static SSL_CTX *
server_ctx(const char *cert, const char *key)
{
	SSL_CTX *ctx;
	EVP_PKEY *standin;

	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL ||
	    SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)
		die("certificate/key");
	if (isolated && ((standin = iso_add_key(SSL_CTX_get0_privatekey(ctx)))
	    == NULL || SSL_CTX_use_PrivateKey(ctx, standin) != 1))
		die("stand-in key");
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_num_tickets(ctx, 0);
	return ctx;
}

/* Move one read's worth of bytes one way; 0 when that side is done. */
static int
relay_step(SSL *ssl, int tls_to_plain, int plain)
{
	char buf[16384];
	int n;

	if (tls_to_plain) {
		if ((n = SSL_read(ssl, buf, sizeof(buf))) <= 0)
			return 0;
		return write(plain, buf, n) == n;
	}
	if ((n = read(plain, buf, sizeof(buf))) <= 0)
		return 0;
	return SSL_write(ssl, buf, n) == n;
}

static void
child_main(int lfd, SSL_CTX *ctx, int backend_port, int report, char index,
    int kfd, int connfd)
{
	struct pollfd pfd[2];
	SSL *ssl;
	int cfd, bfd;

	if (isolated)
		iso_child(kfd);
	if ((cfd = accept(lfd, NULL, NULL)) == -1)
		_exit(1);
	if (write(report, &index, 1) != 1)
		_exit(1);
	close(report);
	close(lfd);
	if ((ssl = SSL_new(ctx)) == NULL || SSL_set_fd(ssl, cfd) != 1 ||
	    SSL_accept(ssl) != 1)
		_exit(1);
	if ((bfd = isolated ? iso_connect(connfd) :
	    tcp_socket(backend_port, 0)) == -1)
		_exit(1);
	pfd[0].fd = cfd;
	pfd[1].fd = bfd;
	pfd[0].events = pfd[1].events = POLLIN;
	for (;;) {
		pfd[0].revents = pfd[1].revents = 0;
		if (SSL_pending(ssl) == 0 && poll(pfd, 2, -1) == -1)
			_exit(1);
		if ((SSL_pending(ssl) || pfd[0].revents) &&
		    !relay_step(ssl, 1, bfd))
			break;
		if (pfd[1].revents && !relay_step(ssl, 0, bfd))
			break;
	}
	SSL_shutdown(ssl);
	_exit(0);
}

static int lfd[MAX_PORTS], report[2], backend_port;
static SSL_CTX *ctx[MAX_PORTS];

static void
spawn(int i)
{
	pid_t pid;
	int kfd = -1, cfd = -1;

	if (isolated && iso_channels(i, &kfd, &cfd) == -1)
		die("channels");
	if ((pid = fork()) == -1)
		die("fork");
	if (pid == 0) {
		close(report[0]);
		child_main(lfd[i], ctx[i], backend_port, report[1], (char)i,
		    kfd, cfd);
	}
	if (isolated) {
		close(kfd);
		close(cfd);
	}
}

int
main(int argc, char *argv[])
{
	int nports, i, s;
	char index;
	const char *root = NULL;

	if (argc > 2 && strcmp(argv[1], "-i") == 0) {
		root = argv[2];
		isolated = 1;
		argc -= 2;
		argv += 2;
	}
	if (argc < 5 || (argc - 2) % 3 != 0 || (argc - 2) / 3 > MAX_PORTS) {
		fprintf(stderr, "usage: forkfloor [-i ROOT] BACKEND-PORT "
		    "PORT CERT KEY ...\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	backend_port = atoi(argv[1]);
	nports = (argc - 2) / 3;
	for (i = 0; i < nports; i++) {
		lfd[i] = tcp_socket(atoi(argv[2 + 3 * i]), 1);
		ctx[i] = server_ctx(argv[3 + 3 * i], argv[4 + 3 * i]);
	}
	if (isolated)
		iso_start(root, backend_port);
	if (pipe(report) == -1)
		die("pipe");
	for (i = 0; i < nports; i++)
		for (s = 0; s < SPARES; s++)
			spawn(i);
	/* One byte per accepted connection, the listener's index. */
	for (;;) {
		if (read(report[0], &index, 1) != 1) {
			if (errno == EINTR)
				continue;
			die("read");
		}
		if (index >= 0 && index < nports)
			spawn(index);
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
	}
}
