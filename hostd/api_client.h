/* SPDX-License-Identifier: MIT */
/*
 * pbctl's side of the local API (api.h): one HTTP request over the daemon's
 * unix socket, with libcurl.
 *
 * Contract: api_client_request() returns 0 once any HTTP reply came back,
 * whatever its status (the caller reads ret->status and ret->body); a
 * negative errno with one phrase in @err when no reply came: -ECONNREFUSED
 * / -ENOENT / -EACCES (the daemon is not there, or the socket is not ours
 * to use), -ETIMEDOUT, -EPROTO, -EFBIG (a reply over API_CLIENT_REPLY_MAX).
 * The library never logs.
 */
#ifndef PB_API_CLIENT_H
#define PB_API_CLIENT_H

#include <stddef.h>

#define API_CLIENT_REPLY_MAX (64 * 1024 * 1024)
#define API_CLIENT_TIMEOUT_SEC 30

struct api_client_reply {
	long status;
	char *body; /* NUL-terminated */
	size_t len;
};

/* One-time set-up of libcurl, before any request. */
int api_client_init(char *err, size_t errlen);
void api_client_cleanup(void);

/* @method "GET", "POST" (with @body, JSON) or "DELETE"; @path "/v1/vms". */
int api_client_request(const char *socket_path, const char *method,
		       const char *path, const char *body,
		       struct api_client_reply *ret, char *err, size_t errlen);
void api_client_reply_free(struct api_client_reply *r);

#endif
