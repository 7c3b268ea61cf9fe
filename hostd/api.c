// SPDX-License-Identifier: MIT
/*
 * The local API's server: the unix socket (and the optional TCP listener
 * with its bearer token), libmicrohttpd on the sd-event loop, the route
 * table (api.h). Replies and query helpers: api_reply.c; the /v1 routes: api_v1.c.
 */
#include <limits.h>
#include <microhttpd.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>

#include "api.h"
#include "api_socket.h"
#include "common.h"
#include "util.h"

/* Below SD_EVENT_PRIORITY_NORMAL: VM events go first when both are pending. */
#define API_EVENT_PRIORITY (SD_EVENT_PRIORITY_NORMAL + 10)

struct api_route {
	char method[8];
	char *pattern;
	size_t prefix_len; /* a prefix route: the length before '*'; else 0 */
	api_handler_fn fn;
	void *userdata;
};

/* One libmicrohttpd daemon on one listening socket: the unix one, or TCP. */
struct api_listener {
	struct api *api;
	struct MHD_Daemon *mhd;
	sd_event_source *io;
	sd_event_source *timer;
	bool tcp;		/* a bearer token, no peer credentials */
	char name[128];		/* the socket's path or ADDR:PORT, for messages */
};

struct api {
	sd_event *event;
	struct api_listener unix_lis, tcp_lis;
	struct api_socket sock;
	char *token;		/* the TCP listener's */
	size_t max_body_bytes;
	void (*log)(void *log_ud, const char *fmt, va_list ap);
	void *log_ud;
	struct api_route routes[API_MAX_ROUTES];
	size_t n_routes;
	struct api_v1 *v1;
};

/* One request: its body as it arrives. */
struct api_call {
	char *body;
	size_t body_len;
	bool answered;	/* refused before its body (413, 401): the reply is queued */
};

int api_add_route(struct api *a, const char *method, const char *pattern,
		  api_handler_fn fn, void *userdata)
{
	struct api_route *rt;
	size_t n = strlen(pattern);

	if (a->n_routes >= API_MAX_ROUTES)
		return -E2BIG;
	if (strlen(method) >= sizeof(rt->method) || n == 0 || pattern[0] != '/' || !fn)
		return -EINVAL;
	rt = &a->routes[a->n_routes];
	*rt = (struct api_route){ .fn = fn, .userdata = userdata };
	strcpy(rt->method, method);
	rt->pattern = strdup(pattern);
	if (!rt->pattern)
		return -ENOMEM;
	if (pattern[n - 1] == '*')
		rt->prefix_len = n - 1;
	a->n_routes++;
	return 0;
}

/* @ret_rest: what a prefix route leaves of @path. */
static bool api_route_matches(const struct api_route *rt, const char *path,
			      const char **ret_rest)
{
	if (rt->prefix_len) {
		if (strncmp(path, rt->pattern, rt->prefix_len) != 0)
			return false;
		*ret_rest = path + rt->prefix_len;
		return true;
	}
	*ret_rest = "";
	return strcmp(path, rt->pattern) == 0;
}

/* Finds the handler, or answers 404 / 405 (with the methods in @allow). */
static const struct api_route *api_route_find(struct api *a, const char *method,
					      const char *path, const char **ret_rest,
					      char *allow, size_t allow_len)
{
	size_t used = 0;

	allow[0] = '\0';
	for (size_t i = 0; i < a->n_routes; i++) {
		const struct api_route *rt = &a->routes[i];
		const char *rest;

		if (!api_route_matches(rt, path, &rest))
			continue;
		if (strcmp(rt->method, method) == 0) {
			*ret_rest = rest;
			return rt;
		}
		if (!strstr(allow, rt->method) && used + strlen(rt->method) + 3 < allow_len)
			used += (size_t)snprintf(allow + used, allow_len - used, "%s%s",
						 used ? ", " : "", rt->method);
	}
	return NULL;
}

/* -- libmicrohttpd glue -- */

static enum MHD_Result api_queue(struct MHD_Connection *conn,
				 struct api_response *resp, const char *allow)
{
	struct MHD_Response *m;
	enum MHD_Result ok;

	m = MHD_create_response_from_buffer(resp->body_len, resp->body,
					    MHD_RESPMEM_MUST_FREE);
	if (!m)
		return MHD_NO; /* the connection is closed */
	resp->body = NULL; /* libmicrohttpd's now */
	if (MHD_add_response_header(m, MHD_HTTP_HEADER_CONTENT_TYPE,
				    resp->content_type ? resp->content_type : "text/plain") != MHD_YES ||
	    (allow && MHD_add_response_header(m, MHD_HTTP_HEADER_ALLOW, allow) != MHD_YES) ||
	    (resp->header_name && resp->header_value &&
	     MHD_add_response_header(m, resp->header_name, resp->header_value) != MHD_YES)) {
		MHD_destroy_response(m);
		return MHD_NO;
	}
	ok = MHD_queue_response(conn, resp->status, m);
	MHD_destroy_response(m); /* dropped once sent */
	return ok;
}

/* An error the server itself answers; without memory, the connection goes. */
static enum MHD_Result api_queue_error(struct MHD_Connection *conn,
				       unsigned int status, const char *allow,
				       const char *phrase)
{
	struct api_response resp = { 0 };

	if (api_reply_error(&resp, status, "%s", phrase) < 0)
		return MHD_NO;
	return api_queue(conn, &resp, allow);
}

static void api_request_peer(struct MHD_Connection *conn, struct api_request *rq)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	socklen_t len = sizeof(rq->peer);

	/* Without credentials has_peer stays false; handlers that need them refuse. */
	if (ci && getsockopt(ci->connect_fd, SOL_SOCKET, SO_PEERCRED, &rq->peer, &len) == 0 &&
	    len == sizeof(rq->peer))
		rq->has_peer = true;
}

static enum MHD_Result api_dispatch(struct api_listener *l, struct MHD_Connection *conn,
				    const char *url, const char *method,
				    struct api_call *call)
{
	struct api *a = l->api;
	struct api_request rq = {
		.method = method,
		.path = url,
		.body = call->body ? call->body : "",
		.body_len = call->body_len,
		.priv = conn,
	};
	struct api_response resp = { 0 };
	const struct api_route *rt;
	char allow[64], phrase[128];
	enum MHD_Result ok;
	int r;

	rt = api_route_find(a, method, url, &rq.path_rest, allow, sizeof(allow));
	if (!rt) {
		if (allow[0]) {
			snprintf(phrase, sizeof(phrase), "%.16s is not allowed here (allowed: %s)",
				 method, allow);
			return api_queue_error(conn, 405, allow, phrase);
		}
		return api_queue_error(conn, 404, NULL, "no such resource");
	}
	if (!l->tcp)
		api_request_peer(conn, &rq);
	r = rt->fn(&rq, &resp, rt->userdata);
	if (r < 0 || resp.status == 0) {
		free(resp.body);
		snprintf(phrase, sizeof(phrase), "internal error: %s",
			 strerror(r < 0 ? -r : EPROTO));
		return api_queue_error(conn, 500, NULL, phrase);
	}
	ok = api_queue(conn, &resp, NULL);
	free(resp.body); /* NULL once queued */
	return ok;
}

/* -- the TCP listener's rule: a bearer token for all but /metrics -- */

/* "Bearer <token>": the scheme in any case, then spaces. */
static const char *api_bearer(const char *h)
{
	if (!h || strncasecmp(h, "Bearer", 6) != 0 || (h[6] != ' ' && h[6] != '\t'))
		return NULL;
	h += 6;
	while (*h == ' ' || *h == '\t')
		h++;
	return h;
}

/* 0 when @conn may go on; else a 401 is queued (or MHD_NO to close). */
static int api_authorize(struct api_listener *l, struct MHD_Connection *conn,
			 const char *url, enum MHD_Result *ret)
{
	const char *given;
	struct api_response resp = { 0 };
	bool wrong;

	if (!l->tcp || strcmp(url, API_METRICS_PATH) == 0)
		return 0;
	given = api_bearer(MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
						       MHD_HTTP_HEADER_AUTHORIZATION));
	if (given && api_token_equal(l->api->token, given))
		return 0;
	/* RFC 6750: no error code for a request without credentials. */
	wrong = given != NULL;
	if (api_reply_error(&resp, 401, wrong ? "wrong bearer token"
					      : "this needs an Authorization: Bearer token") < 0) {
		*ret = MHD_NO;
		return -EACCES;
	}
	resp.header_name = MHD_HTTP_HEADER_WWW_AUTHENTICATE;
	resp.header_value = wrong ? "Bearer realm=\"panicbroker\", error=\"invalid_token\""
				  : "Bearer realm=\"panicbroker\"";
	*ret = api_queue(conn, &resp, NULL);
	free(resp.body); /* NULL once queued */
	return -EACCES;
}

static enum MHD_Result api_on_request(void *cls, struct MHD_Connection *conn,
				      const char *url, const char *method,
				      const char *version, const char *upload_data,
				      size_t *upload_data_size, void **req_cls)
{
	struct api_listener *l = cls;
	struct api *a = l->api;
	struct api_call *call = *req_cls;

	(void)version;
	if (!call) {
		enum MHD_Result ok;
		const char *cl;
		uint64_t len;

		/* Headers complete: the first call, before any body. */
		call = calloc(1, sizeof(*call));
		if (!call)
			return MHD_NO;
		*req_cls = call;
		if (api_authorize(l, conn, url, &ok) < 0) {
			/* Answered before the body is read; the connection then closes. */
			call->answered = true;
			return ok;
		}
		cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
						 MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (cl && (parse_u64(cl, 0, UINT64_MAX, &len) < 0 || len > a->max_body_bytes)) {
			char phrase[96];

			/* Answered before the body is read; the connection then closes. */
			call->answered = true;
			snprintf(phrase, sizeof(phrase), "request body larger than %zu bytes",
				 a->max_body_bytes);
			return api_queue_error(conn, 413, NULL, phrase);
		}
		return MHD_YES;
	}
	if (*upload_data_size) {
		size_t n = *upload_data_size;
		char *body;

		*upload_data_size = 0;
		/* A chunked body past the cap: no reply can be queued mid-body,
		 * so the connection is closed. */
		if (call->answered || n > a->max_body_bytes - call->body_len)
			return MHD_NO;
		body = realloc(call->body, call->body_len + n + 1);
		if (!body)
			return MHD_NO;
		memcpy(body + call->body_len, upload_data, n);
		call->body_len += n;
		body[call->body_len] = '\0';
		call->body = body;
		return MHD_YES;
	}
	if (call->answered)
		return MHD_YES; /* the 413 or 401 is queued already */
	return api_dispatch(l, conn, url, method, call);
}

static void api_on_completed(void *cls, struct MHD_Connection *conn,
			     void **req_cls, enum MHD_RequestTerminationCode toe)
{
	struct api_call *call = *req_cls;

	(void)cls;
	(void)conn;
	(void)toe;
	if (call) {
		free(call->body);
		free(call);
		*req_cls = NULL;
	}
}

static void api_on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	struct api *a = ((struct api_listener *)cls)->api;

	if (a->log)
		a->log(a->log_ud, fmt, ap);
}

static void api_log(struct api *a, const char *fmt, ...) _printf_(2, 3);
static void api_log(struct api *a, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (a->log)
		a->log(a->log_ud, fmt, ap);
	va_end(ap);
}

/* -- the loop -- */

static void api_run(struct api_listener *l)
{
	struct api *a = l->api;
	MHD_UNSIGNED_LONG_LONG timeout_msec;
	uint64_t now_usec;
	int r;

	/*
	 * MHD_run() fails only for a daemon not in external-event mode, which
	 * this one is by construction; nothing to do about it here. Twice:
	 * a run that closes connections below the connection limit puts the
	 * listening socket back into libmicrohttpd's epoll set only at the
	 * start of the next run, and with no connection left no timeout
	 * would bring that run: new clients would wait forever.
	 */
	(void)MHD_run(l->mhd);
	(void)MHD_run(l->mhd);

	if (MHD_get_timeout(l->mhd, &timeout_msec) != MHD_YES) {
		r = sd_event_source_set_enabled(l->timer, SD_EVENT_OFF);
		/* Cannot fail for an existing source; a stray wake-up is harmless. */
		(void)r;
		return;
	}
	r = sd_event_now(a->event, CLOCK_MONOTONIC, &now_usec);
	if (r >= 0)
		r = sd_event_source_set_time(l->timer, now_usec + timeout_msec * USEC_PER_MSEC);
	if (r >= 0)
		r = sd_event_source_set_enabled(l->timer, SD_EVENT_ONESHOT);
	if (r < 0) {
		/* Idle connections would then wait for the next I/O to be timed
		 * out: the loop itself is not held. */
		api_log(a, "cannot arm the API's timer: %s", strerror(-r));
	}
}

static int api_on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	(void)s;
	(void)fd;
	(void)revents;
	api_run(userdata);
	return 0;
}

static int api_on_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
	(void)s;
	(void)usec;
	api_run(userdata);
	return 0;
}

/* -- life -- */

static int api_mhd_start(struct api *a, struct api_listener *l, const struct api_config *cfg,
			 int fd, char *err, size_t errlen)
{
	unsigned int flags = MHD_USE_EPOLL;
	const union MHD_DaemonInfo *info;
	size_t memory = cfg->connection_memory_bytes ? cfg->connection_memory_bytes
						     : API_DEFAULT_CONNECTION_MEMORY_BYTES;
	unsigned int max_conn = cfg->max_connections ? cfg->max_connections
						     : API_DEFAULT_MAX_CONNECTIONS;
	unsigned int timeout_sec = cfg->connection_timeout_sec ? cfg->connection_timeout_sec
							       : API_DEFAULT_CONNECTION_TIMEOUT_SEC;
	int r;

	if (MHD_is_feature_supported(MHD_FEATURE_EPOLL) != MHD_YES)
		return err_set(err, errlen, -EOPNOTSUPP, "libmicrohttpd is built without epoll");
	if (a->log)
		flags |= MHD_USE_ERROR_LOG;
	l->api = a;
	l->mhd = MHD_start_daemon(flags, 0, NULL, NULL, api_on_request, l,
				  MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,
				  MHD_OPTION_CONNECTION_MEMORY_LIMIT, memory,
				  MHD_OPTION_CONNECTION_LIMIT, max_conn,
				  MHD_OPTION_CONNECTION_TIMEOUT, timeout_sec,
				  MHD_OPTION_NOTIFY_COMPLETED, api_on_completed, l,
				  MHD_OPTION_EXTERNAL_LOGGER, api_on_mhd_log, l,
				  MHD_OPTION_END);
	if (!l->mhd)
		return err_set(err, errlen, -EIO, "libmicrohttpd did not start on %s", l->name);
	info = MHD_get_daemon_info(l->mhd, MHD_DAEMON_INFO_EPOLL_FD);
	if (!info || info->epoll_fd < 0)
		return err_set(err, errlen, -EIO, "libmicrohttpd has no epoll fd");
	r = sd_event_add_io(a->event, &l->io, info->epoll_fd, EPOLLIN, api_on_io, l);
	if (r < 0)
		return err_set(err, errlen, r, "cannot watch the API socket: %s", strerror(-r));
	/* Accuracy 1 us: 0 would be sd-event's default, 250 ms late. */
	r = sd_event_add_time(a->event, &l->timer, CLOCK_MONOTONIC, UINT64_MAX, 1,
			      api_on_timer, l);
	if (r < 0)
		return err_set(err, errlen, r, "cannot add the API's timer: %s", strerror(-r));
	r = sd_event_source_set_priority(l->io, API_EVENT_PRIORITY);
	if (r >= 0)
		r = sd_event_source_set_priority(l->timer, API_EVENT_PRIORITY);
	if (r < 0)
		return err_set(err, errlen, r, "cannot set the API's priority: %s", strerror(-r));
	return 0;
}

static int api_tcp_start(struct api *a, const struct api_config *cfg, char *err,
			 size_t errlen)
{
	struct api_listener *l = &a->tcp_lis;
	int fd = -1, r;

	if (!cfg->token || !cfg->token[0])
		return err_set(err, errlen, -EINVAL, "a TCP listener needs a bearer token");
	a->token = strdup(cfg->token);
	if (!a->token)
		return -ENOMEM;
	l->tcp = true;
	r = api_socket_open_tcp(cfg->listen, &fd, l->name, sizeof(l->name), err, errlen);
	if (r < 0)
		return r;
	r = api_mhd_start(a, l, cfg, fd, err, errlen);
	if (r < 0 && !l->mhd)
		closep(&fd);
	return r;
}

int api_new(sd_event *e, struct spool *spool, const struct api_config *cfg,
	    const struct api_ops *ops, void *ud, struct api **ret, char *err,
	    size_t errlen)
{
	struct api *a;
	int fd = -1, r;

	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->event = sd_event_ref(e);
	a->max_body_bytes = cfg->max_body_bytes ? cfg->max_body_bytes
						: API_DEFAULT_MAX_BODY_BYTES;
	a->log = cfg->log;
	a->log_ud = cfg->log_ud;
	r = api_socket_open(cfg->socket_path,
			    cfg->socket_mode ? cfg->socket_mode : API_DEFAULT_SOCKET_MODE,
			    cfg->group, &a->sock, &fd, err, errlen);
	if (r < 0)
		goto fail;
	snprintf(a->unix_lis.name, sizeof(a->unix_lis.name), "%s", a->sock.path);
	r = api_mhd_start(a, &a->unix_lis, cfg, fd, err, errlen);
	if (r < 0) {
		if (!a->unix_lis.mhd)
			closep(&fd); /* libmicrohttpd closes it once started */
		goto fail;
	}
	if (cfg->listen && cfg->listen[0]) {
		r = api_tcp_start(a, cfg, err, errlen);
		if (r < 0)
			goto fail;
	}
	r = api_v1_new(a, spool, cfg->index, ops, ud, &a->v1);
	if (r < 0) {
		r = err_set(err, errlen, r, "cannot add the API's routes: %s", strerror(-r));
		goto fail;
	}
	*ret = a;
	return 0;
fail:
	api_free(a);
	return r;
}

static void api_listener_stop(struct api_listener *l)
{
	sd_event_source_disable_unref(l->io);
	sd_event_source_disable_unref(l->timer);
	if (l->mhd)
		MHD_stop_daemon(l->mhd); /* closes the listening socket and every connection */
	*l = (struct api_listener){ 0 };
}

void api_free(struct api *a)
{
	int r;

	if (!a)
		return;
	api_listener_stop(&a->tcp_lis);
	api_listener_stop(&a->unix_lis);
	r = api_socket_remove(&a->sock);
	if (r < 0)
		api_log(a, "cannot remove %s: %s", a->sock.path, strerror(-r));
	for (size_t i = 0; i < a->n_routes; i++)
		free(a->routes[i].pattern);
	api_v1_free(a->v1);
	api_socket_done(&a->sock);
	if (a->token)
		explicit_bzero(a->token, strlen(a->token));
	free(a->token);
	sd_event_unref(a->event);
	free(a);
}

const char *api_socket_path(const struct api *a)
{
	return a->sock.path;
}

const char *api_listen_address(const struct api *a)
{
	return a->tcp_lis.mhd ? a->tcp_lis.name : NULL;
}
