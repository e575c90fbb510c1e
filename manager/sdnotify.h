/*
 * sdnotify.h: the service manager's readiness protocol (systemd's
 * sd_notify(3)), spoken by the manager: READY=1 once core reports the
 * service ready, STOPPING=1 when a shutdown begins, STATUS=… lines beside.
 *
 * The protocol is the documented, stable one (systemd's "Interface
 * Portability and Stability" promise): one AF_UNIX datagram of
 * newline-separated VAR=value assignments to the socket named by
 * $NOTIFY_SOCKET, an abstract socket when the name starts with '@'. It is
 * written here rather than linked from libsystemd so that every build has
 * it (no optional dependency, one code path under test) and the manager
 * stays small.
 *
 * Only the manager calls this: it is the unit's main process, so the unit
 * runs with NotifyAccess=main and nothing a worker or a plugin sends to the
 * socket is believed. Without $NOTIFY_SOCKET (not under a service manager)
 * every call is a no-op. Manager thread only; failures are logged once and
 * never stop the service.
 */
#ifndef WF_SDNOTIFY_H
#define WF_SDNOTIFY_H

/*
 * Reads $NOTIFY_SOCKET and unsets it, so that no child inherits it (core
 * through fork; workers never get it anyway, their environment is built
 * from scratch). An address that is neither an absolute path nor '@'
 * followed by a name, or too long for sockaddr_un, is ignored with a
 * warning. Returns 1 when notifications will be sent, 0 otherwise.
 */
int sdn_init(void);

/* Sends state ("READY=1\nSTATUS=…") as one datagram, if sdn_init found a
 * socket. Best effort: a failure is logged (once) and otherwise ignored. */
void sdn_send(const char *state);

#endif
