// SPDX-License-Identifier: MIT
/*
 * GET /metrics (api.h): the daemon's series in the Prometheus text format
 * (metrics.h). The one route a TCP listener serves without a token.
 */
#include <errno.h>
#include <stdlib.h>

#include "api.h"
#include "metrics.h"

static int api_metrics_get(const struct api_request *rq, struct api_response *resp,
			   void *userdata)
{
	struct metrics_daemon *d = userdata;
	char *text;
	size_t len;
	int r;

	r = api_request_check_query(rq, NULL, 0, resp);
	if (r < 0)
		return r == -EINVAL ? 0 : r; /* the 400 is in @resp */
	r = metrics_daemon_render(d, &text, &len);
	if (r < 0)
		return r;
	free(resp->body);
	*resp = (struct api_response){
		.status = 200,
		.content_type = METRICS_CONTENT_TYPE,
		.body = text,
		.body_len = len,
	};
	return 0;
}

int api_metrics_add(struct api *a, struct metrics_daemon *d)
{
	return api_add_route(a, "GET", API_METRICS_PATH, api_metrics_get, d);
}
