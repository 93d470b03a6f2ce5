/*
 * A spawner's handshake with itself: see warmup.h.
 */
#include <sys/socket.h>

#include <unistd.h>

#include <openssl/err.h>
#include <tls.h>

#include "keyproc/kp_provider.h"
#include "proxy/warmup.h"

/* Steps of each side; a TLS 1.3 handshake takes a handful. */
#define WARMUP_STEPS	32

static void
warmup_run(struct tls *client, struct tls *conn)
{
	int i, rc = TLS_WANT_POLLIN, rs = TLS_WANT_POLLIN;

	for (i = 0; i < WARMUP_STEPS; i++) {
		if (rc == TLS_WANT_POLLIN || rc == TLS_WANT_POLLOUT)
			rc = tls_handshake(client);
		if (rs == TLS_WANT_POLLIN || rs == TLS_WANT_POLLOUT)
			rs = tls_handshake(conn);
		if (rc != TLS_WANT_POLLIN && rc != TLS_WANT_POLLOUT &&
		    rs != TLS_WANT_POLLIN && rs != TLS_WANT_POLLOUT)
			break;
	}
}

void
warmup_handshake(struct tls *server)
{
	struct tls_config *cfg = NULL;
	struct tls *client = NULL, *conn = NULL;
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0, sv) == -1)
		return;
	if ((cfg = tls_config_new()) == NULL ||
	    (client = tls_client()) == NULL)
		goto out;
	tls_config_insecure_noverifycert(cfg);
	tls_config_insecure_noverifyname(cfg);
	if (tls_configure(client, cfg) == -1 ||
	    tls_connect_socket(client, sv[0], NULL) == -1 ||
	    tls_accept_socket(server, &conn, sv[1]) == -1)
		goto out;
	warmup_run(client, conn);
out:
	tls_free(conn);
	tls_free(client);
	tls_config_free(cfg);
	close(sv[0]);
	close(sv[1]);
	ERR_clear_error();
	kp_provider_forget();	/* its "no channel" error and refused request */
}
