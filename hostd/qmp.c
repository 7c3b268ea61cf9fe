// SPDX-License-Identifier: MIT
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "common.h"
#include "evutil.h"
#include "qmp.h"

enum qmp_phase {
	QMP_DISCONNECTED,
	QMP_GREETING,   /* connected, waiting for the greeting */
	QMP_NEGOTIATING, /* qmp_capabilities sent */
	QMP_READY,
};

struct qmp_pending {
	int64_t id;
	uint64_t deadline_usec;
	char command[48];
	qmp_reply_fn fn;
	void *userdata;
};

struct qmp {
	sd_event *event;
	char *path;
	const struct qmp_ops *ops;
	void *userdata;

	int fd;
	enum qmp_phase phase;
	sd_event_source *io;
	sd_event_source *timer;
	uint64_t greeting_deadline_usec;

	struct qmp_linebuf in;
	char *out;
	size_t out_len, out_cap;
	/* a descriptor to pass with the byte at out[fd_at] (-1: none) */
	int fd_out;
	size_t fd_at;

	int64_t next_id;
	struct qmp_pending pending[QMP_MAX_PENDING];
	size_t n_pending;
	/* bumped on every teardown so callbacks can tell the session ended */
	unsigned int session;
};

static int qmp_on_io(sd_event_source *s, int fd, uint32_t revents, void *ud);
static int qmp_on_timer(sd_event_source *s, uint64_t usec, void *ud);

int qmp_new(sd_event *e, const char *path, const struct qmp_ops *ops,
	    void *userdata, struct qmp **ret)
{
	struct qmp *q = calloc(1, sizeof(*q));

	if (!q)
		return -ENOMEM;
	q->path = strdup(path);
	if (!q->path) {
		free(q);
		return -ENOMEM;
	}
	q->event = sd_event_ref(e);
	q->ops = ops;
	q->userdata = userdata;
	q->fd = -1;
	q->fd_out = -1;
	q->next_id = 1;
	*ret = q;
	return 0;
}

static void qmp_teardown(struct qmp *q)
{
	q->io = sd_event_source_disable_unref(q->io);
	q->timer = sd_event_source_disable_unref(q->timer);
	closep(&q->fd);
	q->fd = -1;
	q->phase = QMP_DISCONNECTED;
	qmp_linebuf_free(&q->in);
	q->out_len = 0;
	closep(&q->fd_out);
	q->fd_out = -1;
	q->n_pending = 0;
	q->session++;
}

void qmp_free(struct qmp *q)
{
	if (!q)
		return;
	qmp_teardown(q);
	free(q->out);
	free(q->path);
	sd_event_unref(q->event);
	free(q);
}

bool qmp_is_connected(const struct qmp *q)
{
	return q->phase != QMP_DISCONNECTED;
}

bool qmp_is_ready(const struct qmp *q)
{
	return q->phase == QMP_READY;
}

int qmp_peer(const struct qmp *q, pid_t *ret_pid)
{
	struct ucred cred = { 0 };
	socklen_t len = sizeof(cred);

	if (q->fd < 0)
		return -ENOTCONN;
	if (getsockopt(q->fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return -errno;
	if (len != sizeof(cred) || cred.pid <= 0)
		return -ENODATA;
	*ret_pid = cred.pid;
	return 0;
}

void qmp_disconnect(struct qmp *q)
{
	qmp_teardown(q);
}

_printf_(3, 4) static void qmp_fail(struct qmp *q, int error, const char *fmt,
				    ...)
{
	char reason[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	qmp_teardown(q);
	if (q->ops->closed)
		q->ops->closed(q, error, reason, q->userdata);
}

/* Arms the timer for the earliest deadline: the greeting or a command. */
static int qmp_rearm(struct qmp *q)
{
	uint64_t next = UINT64_MAX;

	if (q->phase == QMP_GREETING)
		next = q->greeting_deadline_usec;
	for (size_t i = 0; i < q->n_pending; i++)
		if (q->pending[i].deadline_usec < next)
			next = q->pending[i].deadline_usec;
	if (next == UINT64_MAX)
		return sd_event_source_set_enabled(q->timer, SD_EVENT_OFF);
	int r = sd_event_source_set_time(q->timer, next);

	if (r < 0)
		return r;
	return sd_event_source_set_enabled(q->timer, SD_EVENT_ONESHOT);
}

static int qmp_update_io(struct qmp *q)
{
	return sd_event_source_set_io_events(q->io,
					     EPOLLIN | (q->out_len ? EPOLLOUT : 0));
}

int qmp_connect(struct qmp *q)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	_cleanup_close_ int fd = -1;
	int r;

	if (q->phase != QMP_DISCONNECTED)
		return -EISCONN;
	if (strlen(q->path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, q->path);

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* A unix stream connect completes or fails at once, or EAGAIN when
	 * the listener's backlog is full; that is retried like a refusal. */
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -errno;

	r = sd_event_add_io(q->event, &q->io, fd, EPOLLIN, qmp_on_io, q);
	if (r < 0)
		return r;
	r = sd_event_add_time(q->event, &q->timer, CLOCK_MONOTONIC, 0, 0,
			      qmp_on_timer, q);
	if (r < 0) {
		q->io = sd_event_source_disable_unref(q->io);
		return r;
	}
	q->fd = TAKE_FD(fd);
	q->phase = QMP_GREETING;
	q->greeting_deadline_usec = ev_now_usec(q->event) + QMP_GREETING_TIMEOUT_USEC;
	r = qmp_rearm(q);
	if (r < 0) {
		qmp_teardown(q);
		return r;
	}
	return 0;
}

static int qmp_out_append(struct qmp *q, const char *s, size_t n)
{
	if (q->out_len + n > QMP_OUTBUF_MAX)
		return -ENOBUFS;
	if (q->out_len + n > q->out_cap) {
		size_t cap = q->out_cap ? q->out_cap : 4096;
		char *p;

		while (cap < q->out_len + n)
			cap *= 2;
		p = realloc(q->out, cap);
		if (!p)
			return -ENOMEM;
		q->out = p;
		q->out_cap = cap;
	}
	memcpy(q->out + q->out_len, s, n);
	q->out_len += n;
	return 0;
}

static int qmp_send_raw(struct qmp *q, const char *command, json_object *args,
			qmp_reply_fn fn, void *userdata)
{
	json_object *msg;
	const char *text;
	size_t n;
	int r;

	if (q->n_pending >= QMP_MAX_PENDING)
		return -EBUSY;
	msg = json_object_new_object();
	if (!msg)
		return -ENOMEM;
	json_object_object_add(msg, "execute", json_object_new_string(command));
	if (args)
		json_object_object_add(msg, "arguments", json_object_get(args));
	json_object_object_add(msg, "id", json_object_new_int64(q->next_id));
	text = json_object_to_json_string_ext(msg, JSON_C_TO_STRING_PLAIN);
	n = strlen(text);
	r = qmp_out_append(q, text, n);
	if (r >= 0)
		r = qmp_out_append(q, "\n", 1);
	json_object_put(msg);
	if (r < 0)
		return r;

	q->pending[q->n_pending++] = (struct qmp_pending){
		.id = q->next_id++,
		.deadline_usec = ev_now_usec(q->event) + QMP_COMMAND_TIMEOUT_USEC,
		.fn = fn,
		.userdata = userdata,
	};
	snprintf(q->pending[q->n_pending - 1].command,
		 sizeof(q->pending[0].command), "%s", command);
	r = qmp_update_io(q);
	if (r < 0)
		return r;
	return qmp_rearm(q);
}

int qmp_send(struct qmp *q, const char *command, json_object *args,
	     qmp_reply_fn fn, void *userdata)
{
	if (q->phase != QMP_READY)
		return -ENOTCONN;
	return qmp_send_raw(q, command, args, fn, userdata);
}

int qmp_send_fd(struct qmp *q, const char *command, json_object *args, int fd,
		qmp_reply_fn fn, void *userdata)
{
	size_t at = q->out_len;
	int dup, r;

	if (q->phase != QMP_READY)
		return -ENOTCONN;
	if (q->fd_out >= 0)
		return -EBUSY;
	dup = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (dup < 0)
		return -errno;
	r = qmp_send_raw(q, command, args, fn, userdata);
	if (r < 0) {
		close(dup);
		return r;
	}
	q->fd_out = dup;
	q->fd_at = at;
	return 0;
}

/* Sends up to @len bytes, with the pending descriptor if it is due. */
static ssize_t qmp_send_some(struct qmp *q, size_t len)
{
	union {
		struct cmsghdr hdr;
		char buf[CMSG_SPACE(sizeof(int))];
	} ctl;
	struct iovec iov = { .iov_base = q->out, .iov_len = len };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *c;
	ssize_t n;

	if (q->fd_out < 0)
		return send(q->fd, q->out, len, MSG_NOSIGNAL);
	if (q->fd_at > 0) {
		/* Bytes queued before the command go first, without it. */
		iov.iov_len = len < q->fd_at ? len : q->fd_at;
		n = send(q->fd, q->out, iov.iov_len, MSG_NOSIGNAL);
		if (n > 0)
			q->fd_at -= (size_t)n;
		return n;
	}
	memset(&ctl, 0, sizeof(ctl));
	msg.msg_control = ctl.buf;
	msg.msg_controllen = sizeof(ctl.buf);
	c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &q->fd_out, sizeof(int));
	n = sendmsg(q->fd, &msg, MSG_NOSIGNAL);
	if (n > 0) {
		close(q->fd_out);
		q->fd_out = -1;
	}
	return n;
}

static void qmp_on_capabilities(struct qmp *q, const struct qmp_msg *reply,
				void *userdata)
{
	(void)userdata;
	if (reply->type == QMP_MSG_ERROR) {
		qmp_fail(q, -EPROTO, "qmp_capabilities refused: %s",
			 reply->error_desc);
		return;
	}
	q->phase = QMP_READY;
	if (q->ops->ready)
		q->ops->ready(q, q->userdata);
}

static void qmp_dispatch(struct qmp *q, struct qmp_msg *m)
{
	switch (m->type) {
	case QMP_MSG_GREETING: {
		int r;

		if (q->phase != QMP_GREETING) {
			qmp_fail(q, -EPROTO, "unexpected second greeting");
			return;
		}
		q->phase = QMP_NEGOTIATING;
		r = qmp_send_raw(q, "qmp_capabilities", NULL,
				 qmp_on_capabilities, NULL);
		if (r < 0)
			qmp_fail(q, r, "cannot send qmp_capabilities: %s",
				 strerror(-r));
		return;
	}
	case QMP_MSG_RETURN:
	case QMP_MSG_ERROR: {
		struct qmp_pending p;
		size_t i;

		if (q->phase == QMP_GREETING) {
			qmp_fail(q, -EPROTO, "%s before the greeting",
				 qmp_msg_type_to_string(m->type));
			return;
		}
		if (!m->has_id) {
			qmp_fail(q, -EPROTO, "error reply without an id: %s: %s",
				 m->error_class, m->error_desc);
			return;
		}
		for (i = 0; i < q->n_pending; i++)
			if (q->pending[i].id == m->id)
				break;
		if (i == q->n_pending) {
			qmp_fail(q, -EPROTO, "reply to id %lld, which was never sent or already answered",
				 (long long)m->id);
			return;
		}
		p = q->pending[i];
		memmove(&q->pending[i], &q->pending[i + 1],
			(q->n_pending - i - 1) * sizeof(q->pending[0]));
		q->n_pending--;
		qmp_rearm(q);
		if (p.fn)
			p.fn(q, m, p.userdata);
		return;
	}
	case QMP_MSG_EVENT:
		if (q->phase != QMP_READY)
			return; /* events before negotiation are not delivered */
		if (q->ops->event)
			q->ops->event(q, m, q->userdata);
		return;
	}
}

static void qmp_handle_input(struct qmp *q)
{
	unsigned int session = q->session;

	for (;;) {
		struct qmp_msg m;
		char err[256];
		char *line;
		size_t len;
		int r;

		r = qmp_linebuf_take(&q->in, &line, &len);
		if (r == 0)
			return;
		if (r < 0) {
			qmp_fail(q, r, "QMP line longer than %d bytes", QMP_LINE_MAX);
			return;
		}
		r = qmp_msg_parse(line, len, &m, err, sizeof(err));
		if (r < 0) {
			qmp_fail(q, r, "bad QMP message (%s)", err);
			return;
		}
		qmp_dispatch(q, &m);
		qmp_msg_done(&m);
		if (q->session != session)
			return; /* a callback or a failure ended the session */
	}
}

static int qmp_flush(struct qmp *q)
{
	while (q->out_len) {
		ssize_t n = qmp_send_some(q, q->out_len);

		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				break;
			return -errno;
		}
		memmove(q->out, q->out + n, q->out_len - (size_t)n);
		q->out_len -= (size_t)n;
	}
	return qmp_update_io(q);
}

static int qmp_on_io(sd_event_source *s, int fd, uint32_t revents, void *ud)
{
	struct qmp *q = ud;
	unsigned int session = q->session;
	size_t room;
	char *tail;
	ssize_t n;
	int r;

	(void)s;
	if (revents & EPOLLOUT) {
		r = qmp_flush(q);
		if (r < 0) {
			qmp_fail(q, r, "QMP write failed: %s", strerror(-r));
			return 0;
		}
	}
	if (!(revents & (EPOLLIN | EPOLLHUP | EPOLLERR)))
		return 0;

	/* One bounded read per wake-up, so a chatty peer cannot starve others. */
	tail = qmp_linebuf_tail(&q->in, &room);
	if (!tail) {
		qmp_fail(q, -ENOMEM, "out of memory for a QMP line");
		return 0;
	}
	n = recv(fd, tail, room, 0);
	if (n < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return 0;
		qmp_fail(q, -errno, "QMP read failed: %s", strerror(errno));
		return 0;
	}
	if (n == 0) {
		qmp_fail(q, -ECONNRESET, "QEMU closed the QMP connection");
		return 0;
	}
	qmp_linebuf_commit(&q->in, (size_t)n);
	qmp_handle_input(q);
	if (q->session == session && q->out_len) {
		r = qmp_flush(q);
		if (r < 0)
			qmp_fail(q, r, "QMP write failed: %s", strerror(-r));
	}
	return 0;
}

static int qmp_on_timer(sd_event_source *s, uint64_t usec, void *ud)
{
	struct qmp *q = ud;

	(void)s;
	if (q->phase == QMP_GREETING && usec >= q->greeting_deadline_usec) {
		qmp_fail(q, -ETIMEDOUT,
			 "no QMP greeting within %llu s (another client may hold the monitor)",
			 QMP_GREETING_TIMEOUT_USEC / USEC_PER_SEC);
		return 0;
	}
	for (size_t i = 0; i < q->n_pending; i++)
		if (usec >= q->pending[i].deadline_usec) {
			qmp_fail(q, -ETIMEDOUT, "no reply to %s within %llu s",
				 q->pending[i].command,
				 QMP_COMMAND_TIMEOUT_USEC / USEC_PER_SEC);
			return 0;
		}
	qmp_rearm(q);
	return 0;
}
