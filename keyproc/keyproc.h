/*
 * keyproc: the one process that holds every private key.
 *
 * The parent starts it with kp_ctl_spawn() (fork + exec of this binary under
 * the name KEYPROC_ARGV0), describes each listener with
 * kp_ctl_send_listener(), sends each key file as an open fd with
 * kp_ctl_send_key(), then kp_ctl_send_start(); keyproc loads and checks the
 * keys, drops privileges and answers KP_CTL_READY.  For every connection
 * child the parent makes a socketpair and hands one end to keyproc with
 * kp_ctl_send_child(); keyproc reads it only once kp_ctl_send_arm() says
 * the child holds a connection.  The parent pings keyproc with
 * kp_ctl_send_ping() and replaces one that does not answer (lib/wire.h).
 */
#ifndef KEYPROC_H
#define KEYPROC_H

#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>

#include "lib/util.h"


#define KEYPROC_ARGV0	"recluse-keyproc"

/*
 * keyproc_main():
 * The key process itself: called by main() when argv[0] is KEYPROC_ARGV0,
 * with the control channel on fd KP_CTL_FD.  Never returns.
 */
__dead void	keyproc_main(void);

/*
 * kp_ctl_spawn(pidp, fdp):
 * Fork and exec keyproc.  Return 0 with its pid in *pidp and the parent's
 * end of the control channel in *fdp (close-on-exec), or -1.
 */
int	kp_ctl_spawn(pid_t *pidp, int *fdp);

/*
 * kp_ctl_signers_auto():
 * keyproc-signers' default: the CPUs this process may run on but one (for
 * keyproc's loop), 1 .. KP_SIGNERS_MAX.
 */
unsigned int	kp_ctl_signers_auto(void);

/*
 * kp_ctl_spawn_exe(exe, pidp, fdp):
 * kp_ctl_spawn() with the program exe in place of /proc/self/exe (for
 * test drivers and benchmarks that start the recluse binary as keyproc).
 */
int	kp_ctl_spawn_exe(const char *exe, pid_t *pidp, int *fdp);

/*
 * kp_ctl_send_listener(fd, listener, protocols, handshake_ms):
 * Tell keyproc what listener number `listener` allows: the TLS versions
 * protocols (KP_PROTO_* bits; keyproc signs only their inputs) and the
 * handshake timeout, the life of a child's channel from its arm.  Once
 * per listener, before kp_ctl_send_start(); every key's listener must be
 * described.  Return 0 or -1.
 */
int	kp_ctl_send_listener(int fd, uint32_t listener, uint32_t protocols,
	    uint32_t handshake_ms);

/*
 * kp_ctl_send_key(fd, listener, key, spki, spkilen, path, keyfd):
 * Give keyproc key number `key` of listener number `listener`: the open
 * key file keyfd (read with pread from offset 0, so the parent may keep and
 * resend it), the certificate's public key as DER SubjectPublicKeyInfo
 * (keyproc refuses a key that does not match it) and the file name for its
 * messages.  Return 0 or -1.
 */
int	kp_ctl_send_key(int fd, uint32_t listener, uint32_t key,
	    const uint8_t *spki, size_t spkilen, const char *path, int keyfd);

/*
 * kp_ctl_send_start(fd, uid, gid, verbose, signers, chroot):
 * Tell keyproc that all keys were sent: it loads them, starts signers
 * threads that sign (1: none, its loop signs; at most KP_SIGNERS_MAX),
 * chroots, becomes uid/gid and starts serving.  Return 0 or -1.
 */
int	kp_ctl_send_start(int fd, uid_t uid, gid_t gid, int verbose,
	    unsigned int signers, const char *chroot);

/*
 * kp_ctl_wait_ready(fd, err, errlen):
 * Block until keyproc answers KP_CTL_START, relaying its log lines.
 * Return 0 when it is serving, or -1 with its reason in err.
 */
int	kp_ctl_wait_ready(int fd, char *err, size_t errlen);

/*
 * kp_ctl_send_child(fd, pid, listener, chanfd):
 * Hand keyproc its end of a new child's channel: the child with process id
 * pid may use the keys of listener number `listener` only, once armed.
 * The caller closes chanfd afterwards.  Return 0 or -1.
 */
int	kp_ctl_send_child(int fd, pid_t pid, uint32_t listener, int chanfd);

/*
 * kp_ctl_send_arm(fd, pid):
 * Tell keyproc that child pid holds a connection: from now on, for its
 * listener's handshake timeout, keyproc reads its channel.  Once per
 * child, and only to the keyproc its channel was handed to.  Return 0 or
 * -1.
 */
int	kp_ctl_send_arm(int fd, pid_t pid);

/*
 * kp_ctl_send_ping(fd, seq):
 * Ask keyproc whether it still serves: a live one answers KP_CTL_PONG
 * with seq, ahead of the children's requests (kp_ctl_read()).  Return 0
 * or -1 (EAGAIN: the control channel is full, keyproc does not read it).
 */
int	kp_ctl_send_ping(int fd, uint32_t seq);

/*
 * kp_ctl_read(fd, seqp):
 * Read one message keyproc sent on the control channel after it became
 * ready, without waiting.  Return KP_CTL_LOG for a log line (relayed to
 * stderr), KP_CTL_PONG for the answer to a ping (its sequence number in
 * *seqp unless seqp is NULL), 0 when nothing was waiting, or -1 when
 * keyproc is gone (EOF, error, or a message that breaks the protocol).
 */
int	kp_ctl_read(int fd, uint32_t *seqp);

#endif
