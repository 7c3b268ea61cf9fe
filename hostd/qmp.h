/* SPDX-License-Identifier: MIT */
/*
 * A QMP client connection on an sd-event loop.
 *
 * Contract:
 *  - qmp_connect() starts a session: connect, wait for the greeting, send
 *    qmp_capabilities, then ops->ready(). It fails at once (negative errno)
 *    when the socket cannot be connected; the caller owns retrying.
 *  - Commands get increasing integer ids; every reply is matched to its
 *    command, and a reply nobody asked for is a protocol error.
 *  - Anything wrong with the peer (malformed JSON, an over-long line, an
 *    unexpected reply, silence past a deadline, EOF) ends the session: the
 *    socket is closed, pending commands are dropped without their callbacks,
 *    and ops->closed() says why in one phrase. The object can connect again.
 *  - Callbacks may call qmp_send() and qmp_disconnect() but not qmp_free().
 *  - The library never logs.
 */
#ifndef PB_QMP_H
#define PB_QMP_H

#include <json-c/json.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "qmp_msg.h"

#define QMP_GREETING_TIMEOUT_USEC (5 * 1000000ULL)
#define QMP_COMMAND_TIMEOUT_USEC (10 * 1000000ULL)
#define QMP_MAX_PENDING 64
#define QMP_OUTBUF_MAX (256 * 1024)

struct qmp;

/* @reply is a QMP_MSG_RETURN or QMP_MSG_ERROR. */
typedef void (*qmp_reply_fn)(struct qmp *q, const struct qmp_msg *reply,
			     void *userdata);

struct qmp_ops {
	void (*ready)(struct qmp *q, void *userdata);
	void (*event)(struct qmp *q, const struct qmp_msg *ev, void *userdata);
	void (*closed)(struct qmp *q, int error, const char *reason,
		       void *userdata);
};

int qmp_new(sd_event *e, const char *path, const struct qmp_ops *ops,
	    void *userdata, struct qmp **ret);
void qmp_free(struct qmp *q);

int qmp_connect(struct qmp *q);
void qmp_disconnect(struct qmp *q);
bool qmp_is_connected(const struct qmp *q);
bool qmp_is_ready(const struct qmp *q);
/* The process at the other end of the connected socket (SO_PEERCRED):
 * -ENOTCONN without a connection, -ENODATA when the kernel has no pid. */
int qmp_peer(const struct qmp *q, pid_t *ret_pid);

/* @args may be NULL; it is not consumed. */
int qmp_send(struct qmp *q, const char *command, json_object *args,
	     qmp_reply_fn fn, void *userdata);
/*
 * Like qmp_send(), passing @fd to QEMU with the command (SCM_RIGHTS), as
 * "getfd" and "add-fd" expect. The caller keeps its own @fd; one fd may be
 * in flight at a time (-EBUSY).
 */
int qmp_send_fd(struct qmp *q, const char *command, json_object *args, int fd,
		qmp_reply_fn fn, void *userdata);

#endif
