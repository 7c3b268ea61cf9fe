/* SPDX-License-Identifier: MIT */
/*
 * The dashboard: server-rendered HTML on the local API (api.h), for a
 * browser on the host (or through the API's TCP listener).
 *
 *   GET /[?vm=NAME&bucket=HEX&page=N]   crashes newest first, 50 a page
 *   GET /buckets                       signature buckets: count, first and last seen
 *   GET /crashes/ID                    one crash: panic message, log tail with
 *                                      the guilty frame marked, kdump timeline,
 *                                      decisions, snapshot (its path only)
 *
 * Contract:
 *  - The list and the buckets come from the spool's index (index.h), never
 *    from the records: a page costs the same with 100 or 100,000 crashes in
 *    the spool. A crash's page reads that one record.
 *  - Every byte of a record is escaped (html.h); pages carry a
 *    Content-Security-Policy that allows no script and no fetch, and need
 *    nothing from the network. No route serves a file: a memory dump's path
 *    on the host is shown, never linked.
 *  - Pages are capped at HTML_MAX_BYTES; errors are HTML pages too.
 *  - The library never logs.
 */
#ifndef PB_API_HTML_H
#define PB_API_HTML_H

#include "api.h"
#include "index.h"

struct api_html;

/*
 * @spool and @idx must outlive the api. *@ret is set also on failure (routes
 * added may point at it): api_html_free() it after api_free().
 */
int api_html_new(struct api *a, struct spool *spool, const struct index *idx,
		 struct api_html **ret);
void api_html_free(struct api_html *h);

#endif
