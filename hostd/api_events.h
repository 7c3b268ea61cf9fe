/* SPDX-License-Identifier: MIT */
/*
 * The API's event feed and bucket counts (api.h's server, routes of their own):
 *
 *   GET /v1/events[?after=SEQ&limit=N]
 *       {"epoch": "<32 hex>", "first": SEQ, "last": SEQ, "missed": N,
 *        "events": [{"seq", "type", "at", "vm", "crash", "event", "state",
 *                    "prev_state", "outcome", "bucket", "title", ...}]}
 *       the observe.h events (all but record-write) kept in a ring of the
 *       last API_EVENTS_RING; those with seq > after (0: all kept), oldest
 *       first, at most limit (default 100, at most 1000). "epoch" changes
 *       whenever the daemon starts: a client that sees another epoch starts
 *       over from after=0. "missed": events after SEQ that the ring no
 *       longer holds. Polling is the intended use (pbctl watch).
 *   GET /v1/buckets
 *       the signature buckets with counts (buckets.h), most crashes first,
 *       from the spool's index (index.h); without one, from the records,
 *       newest first until API_WALK_BUDGET_USEC (then header
 *       X-Panicbroker-Partial).
 *
 * Contract: api_events_on_event() is an observe.h watcher; it copies what
 * it keeps. The library never logs.
 */
#ifndef PB_API_EVENTS_H
#define PB_API_EVENTS_H

#include "api.h"
#include "observe.h"

#define API_EVENTS_RING 1024
#define API_EVENTS_DEFAULT_LIMIT 100
#define API_EVENTS_MAX_LIMIT 1000

struct api_events;

struct index;

/* @spool, and @index when not NULL, must outlive it. */
int api_events_new(struct spool *spool, const struct index *index, struct api_events **ret);
void api_events_free(struct api_events *x);
void api_events_on_event(void *ud, const struct obs_event *ev);
/* Adds GET /v1/events and GET /v1/buckets to @a. */
int api_events_add_routes(struct api_events *x, struct api *a);

#endif
