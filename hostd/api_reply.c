// SPDX-License-Identifier: MIT
/* The handlers' side of the local API (api.h): replies and the request's query. */
#include <errno.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "common.h"

/* -- replies -- */

static int api_reply_take(struct api_response *resp, unsigned int status,
			  const char *content_type, char *body, size_t len)
{
	free(resp->body);
	*resp = (struct api_response){
		.status = status,
		.content_type = content_type,
		.body = body,
		.body_len = len,
	};
	return 0;
}

int api_reply_json(struct api_response *resp, unsigned int status,
		   json_object *obj)
{
	const char *text;
	size_t len;
	char *copy;

	if (!obj)
		return -ENOMEM;
	text = json_object_to_json_string_length(
		obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
	copy = text ? malloc(len + 2) : NULL;
	if (!copy) {
		json_object_put(obj);
		return -ENOMEM;
	}
	memcpy(copy, text, len);
	copy[len++] = '\n';
	copy[len] = '\0';
	json_object_put(obj);
	return api_reply_take(resp, status, "application/json", copy, len);
}

int api_reply_error(struct api_response *resp, unsigned int status,
		    const char *fmt, ...)
{
	json_object *o = json_object_new_object();
	char phrase[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(phrase, sizeof(phrase), fmt, ap);
	va_end(ap);
	if (!o || json_object_object_add(o, "error", json_object_new_string(phrase)) < 0) {
		json_object_put(o);
		return -ENOMEM;
	}
	return api_reply_json(resp, status, o);
}

/* -- requests -- */

const char *api_request_query(const struct api_request *rq, const char *key)
{
	return MHD_lookup_connection_value(rq->priv, MHD_GET_ARGUMENT_KIND, key);
}

struct api_query_check {
	const char *const *allowed;
	size_t n_allowed;
	unsigned int seen;
	const char *bad;
	bool repeated;
};

static enum MHD_Result api_query_visit(void *cls, enum MHD_ValueKind kind,
				       const char *key, const char *value)
{
	struct api_query_check *q = cls;

	(void)kind;
	(void)value;
	for (size_t i = 0; i < q->n_allowed && i < 32; i++) {
		if (strcmp(key, q->allowed[i]) != 0)
			continue;
		if (q->seen & (1u << i)) {
			q->bad = key;
			q->repeated = true;
			return MHD_NO;
		}
		q->seen |= 1u << i;
		return MHD_YES;
	}
	q->bad = key;
	return MHD_NO;
}

int api_request_check_query(const struct api_request *rq,
			    const char *const *allowed, size_t n_allowed,
			    struct api_response *resp)
{
	struct api_query_check q = { .allowed = allowed, .n_allowed = n_allowed };
	int r;

	/* The count it returns is of no use: q says what was wrong. */
	(void)MHD_get_connection_values(rq->priv, MHD_GET_ARGUMENT_KIND,
					api_query_visit, &q);
	if (!q.bad)
		return 0;
	r = q.repeated ? api_reply_error(resp, 400, "query parameter '%.64s' given twice", q.bad)
		       : api_reply_error(resp, 400, "unknown query parameter '%.64s'", q.bad);
	return r < 0 ? r : -EINVAL;
}

