/*
 * systemd's notification protocol (sd_notify(3) without libsystemd).
 */
#ifndef NOTIFY_H
#define NOTIFY_H

/*
 * notify_send(state):
 * Send state ("READY=1", "RELOADING=1", "STOPPING=1", "STATUS=...") to
 * $NOTIFY_SOCKET if it is set; do nothing otherwise.  Failures are ignored:
 * recluse runs the same with or without systemd.
 */
void	notify_send(const char *state);

#endif
