/* SPDX-License-Identifier: MIT */
/*
 * The local API: HTTP/1.1 on a unix socket, served by libmicrohttpd on the
 * caller's sd-event loop.
 *
 * Contract:
 *  - api_new() creates the socket itself (api_socket.c): a stale socket at
 *    the path is removed, a live one (something accepts a connect()) is
 *    refused with -EADDRINUSE, anything else there with -EEXIST. It gets
 *    cfg->socket_mode (0660) and cfg->group; access to it is the API's only
 *    authentication. api_free() removes it (if it is still ours).
 *  - No thread: libmicrohttpd runs in epoll mode, its epoll fd and its
 *    timeout are sources on @e, below the normal priority, so VM events are
 *    dispatched first. Every handler runs on the loop and must not block;
 *    handlers and ops may not call api_free().
 *  - A peer cannot hold the loop: the request line and headers are capped
 *    (cfg->connection_memory_bytes), the body at cfg->max_body_bytes (413),
 *    connections at cfg->max_connections, and a connection idle for
 *    cfg->connection_timeout_sec is dropped. A crash listing reads the
 *    spool newest first only until its limit or its since= time, and
 *    stops early (header X-Panicbroker-Partial) past API_WALK_BUDGET_USEC.
 *  - Every error the API itself answers is JSON {"error": "one phrase"} with
 *    400, 404, 405, 409, 413 or 500 (over-long headers are refused by
 *    libmicrohttpd itself, 431 / 414, without a JSON body).
 *  - Routes: api_new() adds the /v1 routes below; later features add theirs
 *    with api_add_route() on the same server.
 *  - TCP (cfg->listen, "ADDR:PORT", off by default): a second listener
 *    with the same routes, limits and loop. There, every request but
 *    /metrics must carry "Authorization: Bearer <cfg->token>" (compared in
 *    constant time), else 401 with WWW-Authenticate, before any route is
 *    looked up or any body read; no peer credentials (has_peer is false).
 *    The unix socket keeps its own rule: its mode and group.
 *    api_token_load() reads the token from a file no one else may read.
 *  - Memory dumps are never served: routes answer with records and
 *    listings; a record gives its dump's path on the host.
 *  - The library never logs. Failures return a negative errno with one
 *    phrase in the caller's buffer; libmicrohttpd's own messages go to
 *    cfg->log when it is set, nowhere otherwise.
 *
 * Routes of /v1 (docs/panicbrokerd.8):
 *   GET    /v1/vms                      ops->vms_list
 *   POST   /v1/vms     {"spec": SPEC}   ops->vm_add            201
 *   DELETE /v1/vms/NAME                 ops->vm_remove
 *   GET    /v1/crashes[?vm=&state=&since=&limit=]   from the spool, newest first
 *   GET    /v1/crashes/ID                            the whole record
 *   GET    /metrics                      Prometheus text (api_metrics.c, metrics.h)
 */
#ifndef PB_API_H
#define PB_API_H

#include <json-c/json.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

struct spool;
struct api;

#define API_DEFAULT_SOCKET_MODE 0660
#define API_DEFAULT_MAX_BODY_BYTES (64 * 1024)
#define API_DEFAULT_CONNECTION_MEMORY_BYTES (32 * 1024)
#define API_DEFAULT_MAX_CONNECTIONS 32
#define API_DEFAULT_CONNECTION_TIMEOUT_SEC 5
#define API_MAX_ROUTES 64
/* A crash listing stops walking the spool after this long on the loop. */
#define API_WALK_BUDGET_USEC (200 * 1000ULL)
#define API_CRASHES_DEFAULT_LIMIT 100
#define API_CRASHES_MAX_LIMIT 1000

struct api_config {
	const char *socket_path;
	mode_t socket_mode;			/* 0: API_DEFAULT_SOCKET_MODE */
	const char *group;			/* NULL or "": unchanged; a name or a gid */
	size_t max_body_bytes;			/* 0: default */
	size_t connection_memory_bytes;		/* 0: default; bounds request line + headers */
	unsigned int max_connections;		/* 0: default */
	unsigned int connection_timeout_sec;	/* 0: default; idle time before a drop */
	/* Optional TCP listener: "ADDR:PORT" (IPv4, or [IPv6]:PORT); NULL or "": none. */
	const char *listen;
	/* With listen: the bearer token TCP requests carry (api_token_load()). */
	const char *token;
	/* Optional: the spool's index; /v1/crashes lists from it instead of
	 * reading records (index.h). It must outlive the api. */
	const struct index *index;
	/* Optional: libmicrohttpd's messages (never called otherwise). */
	void (*log)(void *log_ud, const char *fmt, va_list ap);
	void *log_ud;
};

struct api_ops {
	/* GET /v1/vms: fills @ret with a new json array of VM objects
	 * ({"name","backend","attach_state","last_crash","open_crash":{"id","state"}|null, ...}). */
	int (*vms_list)(void *ud, json_object **ret);
	/* POST /v1/vms, body {"spec": "NAME,qmp=PATH,..."} (a panicbrokerd --vm spec).
	 * -EEXIST (409), -EINVAL (400) or -E2BIG (too many VMs, 409) with a reason in err. */
	int (*vm_add)(void *ud, const char *spec, char *err, size_t errlen);
	/* DELETE /v1/vms/NAME: -ENOENT (404). An open crash stays in the spool. */
	int (*vm_remove)(void *ud, const char *name, char *err, size_t errlen);
};

/* @spool and @ops must outlive the api; a NULL op leaves its route out (404/405). */
int api_new(sd_event *e, struct spool *spool, const struct api_config *cfg,
	    const struct api_ops *ops, void *ud, struct api **ret, char *err,
	    size_t errlen);
void api_free(struct api *a);
const char *api_socket_path(const struct api *a);
/* The TCP listener's address as bound ("127.0.0.1:9877"), or NULL without one. */
const char *api_listen_address(const struct api *a);

/* -- the TCP listener's token (api_auth.c) -- */

#define API_TOKEN_MIN 16
#define API_TOKEN_MAX 256
/*
 * Reads the bearer token: the file's first line, API_TOKEN_MIN to
 * API_TOKEN_MAX characters of A-Z a-z 0-9 - . _ ~ + / (then '=' padding).
 * Refused: a file that is not regular, is readable or writable by group
 * or others (-EPERM), or is owned by neither the daemon's user nor root.
 */
int api_token_load(const char *path, char **ret, char *err, size_t errlen);
/* @given equals @expected, in time that depends on @expected's length only. */
bool api_token_equal(const char *expected, const char *given);

/* -- routes -- */

struct api_request {
	const char *method;	/* "GET", "POST", ... */
	const char *path;	/* the decoded path, without the query */
	const char *path_rest;	/* a prefix route: what follows the prefix; else "" */
	const char *body;	/* NUL-terminated; "" without a body */
	size_t body_len;
	bool has_peer;		/* SO_PEERCRED answered */
	struct ucred peer;
	void *priv;		/* the library's */
};

struct api_response {
	unsigned int status;
	const char *content_type;	/* static string */
	char *body;			/* malloc()ed, owned by the response */
	size_t body_len;
	/* One more header, both static strings; NULL: none. */
	const char *header_name;
	const char *header_value;
};

/*
 * Fills @resp and returns 0; or returns a negative errno, answered as 500
 * with its strerror() (and @resp is dropped).
 */
typedef int (*api_handler_fn)(const struct api_request *rq,
			      struct api_response *resp, void *userdata);

/*
 * @pattern is a path ("/v1/vms") or a prefix ending in '*' ("/v1/vms/ *"
 * without the space), whose remainder is rq->path_rest. The first route
 * added that matches wins. A path matched by routes of other methods only
 * is 405 with Allow; one matched by none is 404. -E2BIG past API_MAX_ROUTES.
 */
int api_add_route(struct api *a, const char *method, const char *pattern,
		  api_handler_fn fn, void *userdata);

/* The value of query parameter @key (decoded), NULL if absent. */
const char *api_request_query(const struct api_request *rq, const char *key);
/*
 * 0 when every query parameter is one of @allowed and none is repeated;
 * else fills @resp with a 400 and returns -EINVAL.
 */
int api_request_check_query(const struct api_request *rq,
			    const char *const *allowed, size_t n_allowed,
			    struct api_response *resp);

/* @obj is consumed, also on failure. */
int api_reply_json(struct api_response *resp, unsigned int status,
		   json_object *obj);
/* {"error": "<phrase>"} */
int api_reply_error(struct api_response *resp, unsigned int status,
		    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* -- GET /metrics (api_metrics.c): the daemon adds it with its metrics -- */
#define API_METRICS_PATH "/metrics"
struct metrics_daemon;
int api_metrics_add(struct api *a, struct metrics_daemon *d);

/* -- the /v1 routes (api_v1.c): api_new() adds them, api_free() frees them -- */
struct api_v1;
struct index;
int api_v1_new(struct api *a, struct spool *spool, const struct index *index,
	       const struct api_ops *ops,
	       void *ud, struct api_v1 **ret);
void api_v1_free(struct api_v1 *v);

#endif
