// SPDX-License-Identifier: MIT
/*
 * pbctl's commands that ask the running daemon over its local API (api.h,
 * api_client.h): status, attach, detach, buckets (or the spool's when the
 * daemon is not there), watch.
 */
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "api_client.h"
#include "buckets.h"
#include "common.h"
#include "config.h"
#include "io.h"
#include "pbctl_internal.h"
#include "spool.h"

/* -- commands asking the daemon (api.h) -- */

static void pbctl_print_json(json_object *o)
{
	printf("%s\n", json_object_to_json_string_ext(
			       o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
					  JSON_C_TO_STRING_NOSLASHESCAPE));
}

/*
 * One request; on a 2xx reply returns 0 with the parsed body in @ret (may be
 * NULL when unwanted), else prints why and returns 1.
 */
static int pbctl_api(const char *api, const char *method, const char *path,
		     const char *body, json_object **ret)
{
	struct api_client_reply reply = { 0 };
	json_object *obj, *e;
	char err[512];
	int r;

	r = api_client_request(api, method, path, body, &reply, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "pbctl: %s\n", err);
		return 1;
	}
	obj = json_tokener_parse(reply.body);
	if (reply.status < 200 || reply.status > 299) {
		if (obj && json_object_object_get_ex(obj, "error", &e) &&
		    json_object_is_type(e, json_type_string))
			fprintf(stderr, "pbctl: panicbrokerd: %s (HTTP %ld)\n",
				json_object_get_string(e), reply.status);
		else
			fprintf(stderr, "pbctl: panicbrokerd answered HTTP %ld\n", reply.status);
		json_object_put(obj);
		api_client_reply_free(&reply);
		return 1;
	}
	api_client_reply_free(&reply);
	if (!obj) {
		fprintf(stderr, "pbctl: panicbrokerd's reply to %s %s is not JSON\n", method, path);
		return 1;
	}
	if (ret)
		*ret = obj;
	else
		json_object_put(obj);
	return 0;
}

/* @o's @key: a string, "-" for null or missing. */
static const char *pbctl_field(json_object *o, const char *key)
{
	return o ? pbctl_str(o, key) : "-";
}

int pbctl_status(const char *api, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ 0 },
	};
	json_object *vms = NULL;
	bool json = false;
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c != 'j')
			return 2;
		json = true;
	}
	if (optind < argc) {
		fprintf(stderr, "pbctl: status: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	if (pbctl_api(api, "GET", "/v1/vms", NULL, &vms))
		return 1;
	if (!json_object_is_type(vms, json_type_array)) {
		fprintf(stderr, "pbctl: panicbrokerd's VM list is not an array\n");
		json_object_put(vms);
		return 1;
	}
	if (json) {
		pbctl_print_json(vms);
		json_object_put(vms);
		return 0;
	}
	printf("%-16s %-8s %-12s %-40s %-14s %s\n", "VM", "BACKEND", "ATTACH", "OPEN CRASH",
	       "CRASH STATE", "LAST CRASH");
	for (size_t i = 0; i < json_object_array_length(vms); i++) {
		json_object *vm = json_object_array_get_idx(vms, i), *open = NULL;

		if (!json_object_object_get_ex(vm, "open_crash", &open) ||
		    !json_object_is_type(open, json_type_object))
			open = NULL;
		printf("%-16s %-8s %-12s %-40s %-14s %s\n", pbctl_field(vm, "name"),
		       pbctl_field(vm, "backend"), pbctl_field(vm, "attach_state"),
		       pbctl_field(open, "id"), pbctl_field(open, "state"),
		       pbctl_field(vm, "last_crash"));
	}
	json_object_put(vms);
	return 0;
}

int pbctl_attach(const char *api, int argc, char **argv)
{
	json_object *body, *reply = NULL;
	int r;

	if (argc != 2) {
		fprintf(stderr, "pbctl: attach needs exactly one VM spec (NAME,qmp=PATH[,KEY=VALUE...])\n");
		return 2;
	}
	body = json_object_new_object();
	if (!body || json_object_object_add(body, "spec", json_object_new_string(argv[1])) < 0) {
		json_object_put(body);
		fprintf(stderr, "pbctl: %s\n", strerror(ENOMEM));
		return 1;
	}
	r = pbctl_api(api, "POST", "/v1/vms",
		      json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN), &reply);
	json_object_put(body);
	if (r)
		return r;
	printf("attached %s\n", pbctl_str(reply, "name"));
	json_object_put(reply);
	return 0;
}

int pbctl_detach(const char *api, int argc, char **argv)
{
	char path[128];

	if (argc != 2) {
		fprintf(stderr, "pbctl: detach needs exactly one VM name\n");
		return 2;
	}
	/* Checked here so that the name needs no escaping in the URL. */
	if (!name_is_valid(argv[1])) {
		fprintf(stderr, "pbctl: '%s' is not a VM name\n", argv[1]);
		return 2;
	}
	snprintf(path, sizeof(path), "/v1/vms/%s", argv[1]);
	if (pbctl_api(api, "DELETE", path, NULL, NULL))
		return 1;
	printf("detached %s\n", argv[1]);
	return 0;
}

/* -- buckets: the daemon's counts, else the spool's -- */

/* The spool's buckets, as the API gives them; NULL having said why. */
static json_object *pbctl_buckets_from_spool(const char *spool_dir)
{
	struct buckets b = { 0 };
	json_object *arr = NULL;
	struct spool *s;
	char **ids = NULL, err[256];
	size_t n = 0;
	int r;

	r = spool_open(spool_dir, false, &s, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "pbctl: %s\n", err);
		return NULL;
	}
	r = spool_list(s, &ids, &n);
	if (r < 0) {
		fprintf(stderr, "pbctl: cannot list %s/crashes: %s\n", spool_path(s), strerror(-r));
		spool_close(s);
		return NULL;
	}
	for (size_t i = 0; i < n && r >= 0; i++) {
		json_object *rec;

		if (spool_read_record(s, ids[i], &rec, err, sizeof(err)) < 0) {
			fprintf(stderr, "pbctl: %s, skipping\n", err);
			continue;
		}
		r = buckets_add_record(&b, ids[i], rec);
		json_object_put(rec);
	}
	spool_free_ids(ids, n);
	spool_close(s);
	if (r >= 0) {
		buckets_sort(&b);
		arr = buckets_to_json(&b);
	}
	buckets_clear(&b);
	if (!arr)
		fprintf(stderr, "pbctl: %s\n", strerror(ENOMEM));
	return arr;
}

/*
 * The daemon's buckets: 0 with @ret; 1 having said why; -ENOENT when there
 * is no daemon to ask (or it is too old to know the route).
 */
static int pbctl_buckets_from_api(const char *api, json_object **ret)
{
	struct api_client_reply reply = { 0 };
	char err[512];
	int r;

	r = api_client_request(api, "GET", "/v1/buckets", NULL, &reply, err, sizeof(err));
	if (r == -ECONNREFUSED || r == -ENOENT || r == -EACCES || r == -ENOTDIR) {
		fprintf(stderr, "pbctl: %s; counting the spool instead\n", err);
		return -ENOENT;
	}
	if (r < 0) {
		fprintf(stderr, "pbctl: %s\n", err);
		return 1;
	}
	if (reply.status == 404) {
		api_client_reply_free(&reply);
		fprintf(stderr, "pbctl: panicbrokerd does not count buckets; counting the spool instead\n");
		return -ENOENT;
	}
	api_client_reply_free(&reply);
	return pbctl_api(api, "GET", "/v1/buckets", NULL, ret);
}

int pbctl_buckets(const char *api, const char *spool_dir, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "from-spool", no_argument, NULL, 'f' },
		{ 0 },
	};
	bool json = false, from_spool = false;
	json_object *arr = NULL;
	int c, r;

	/* 0: GNU getopt starts over (permuting: options may follow the operands). */
	optind = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'j')
			json = true;
		else if (c == 'f')
			from_spool = true;
		else
			return 2;
	}
	if (optind < argc) {
		fprintf(stderr, "pbctl: buckets: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	r = from_spool ? -ENOENT : pbctl_buckets_from_api(api, &arr);
	if (r > 0)
		return r;
	if (r < 0) {
		arr = pbctl_buckets_from_spool(spool_dir);
		if (!arr)
			return 1;
	}
	if (!json_object_is_type(arr, json_type_array)) {
		fprintf(stderr, "pbctl: the bucket list is not an array\n");
		json_object_put(arr);
		return 1;
	}
	if (json) {
		pbctl_print_json(arr);
		json_object_put(arr);
		return 0;
	}
	printf("%6s %-16s %-27s %-27s %-16s %s\n", "COUNT", "BUCKET", "FIRST SEEN", "LAST SEEN",
	       "LAST VM", "TITLE");
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		json_object *b = json_object_array_get_idx(arr, i), *count;

		if (!json_object_object_get_ex(b, "count", &count))
			count = NULL;
		printf("%6lld %-16s %-27s %-27s %-16s %s\n", (long long)json_object_get_int64(count),
		       pbctl_field(b, "bucket"), pbctl_field(b, "first_seen"),
		       pbctl_field(b, "last_seen"), pbctl_field(b, "last_vm"),
		       pbctl_field(b, "title"));
	}
	json_object_put(arr);
	return 0;
}

/* -- watch: the daemon's event feed (GET /v1/events), polled -- */

#define PBCTL_WATCH_POLL_MSEC 300
#define PBCTL_WATCH_RETRY_MSEC 1000

static volatile sig_atomic_t pbctl_stop;

static void pbctl_on_stop(int sig)
{
	(void)sig;
	pbctl_stop = 1;
}

static void pbctl_sleep_msec(unsigned int msec)
{
	struct timespec ts = { .tv_sec = msec / 1000, .tv_nsec = (long)(msec % 1000) * 1000000 };

	/* A signal cuts it short: the loop checks pbctl_stop. */
	(void)nanosleep(&ts, NULL);
}

static uint64_t pbctl_u64(json_object *o, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
		return 0;
	return json_object_get_uint64(v);
}

/* One event as one line, like a log line: time, VM, what happened. */
static void pbctl_watch_print(json_object *ev, bool json)
{
	const char *type = pbctl_field(ev, "type"), *title = pbctl_field(ev, "title");
	const char *state = pbctl_field(ev, "state"), *prev = pbctl_field(ev, "prev_state");
	const char *outcome = pbctl_field(ev, "outcome"), *crash = pbctl_field(ev, "crash");
	json_object *v;

	if (json) {
		printf("%s\n", json_object_to_json_string_ext(ev, JSON_C_TO_STRING_PLAIN |
								      JSON_C_TO_STRING_NOSLASHESCAPE));
		return;
	}
	printf("%s %s %s", pbctl_field(ev, "at"), pbctl_field(ev, "vm"), type);
	if (strcmp(crash, "-") != 0)
		printf(" %s", crash);
	if (strcmp(type, "crash-opened") == 0)
		printf(" %s", pbctl_field(ev, "event"));
	else if (strcmp(type, "crash-state") == 0)
		printf(" %s -> %s", prev, state);
	if (strcmp(outcome, "-") != 0)
		printf(" %s", outcome);
	if (json_object_object_get_ex(ev, "seconds", &v))
		printf(" %.1fs", json_object_get_double(v));
	if (json_object_object_get_ex(ev, "attached", &v))
		printf(" %s", json_object_get_boolean(v) ? "attached" : "detached");
	if ((strcmp(type, "crash-opened") == 0 || strcmp(type, "crash-closed") == 0) &&
	    strcmp(title, "-") != 0)
		printf(" \"%s\"", title);
	printf("\n");
}

/*
 * One poll: events after *@after. 0, or -EAGAIN when the daemon is not
 * there (told once by the caller), or 1 on a fatal error.
 */
static int pbctl_watch_poll(const char *api, char *epoch, size_t epoch_len, uint64_t *after,
			    bool *started, bool json, bool *ret_more)
{
	struct api_client_reply reply = { 0 };
	json_object *obj, *events;
	const char *ep;
	char path[96], err[512];
	size_t n;
	int r;

	*ret_more = false;
	snprintf(path, sizeof(path), "/v1/events?after=%llu&limit=%d", (unsigned long long)*after,
		 *started ? 500 : 1);
	r = api_client_request(api, "GET", path, NULL, &reply, err, sizeof(err));
	if (r < 0) {
		if (!*started) {
			fprintf(stderr, "pbctl: %s\n", err);
			return 1;
		}
		return -EAGAIN;
	}
	obj = json_tokener_parse(reply.body);
	api_client_reply_free(&reply);
	if (!obj || !json_object_object_get_ex(obj, "events", &events) ||
	    !json_object_is_type(events, json_type_array)) {
		json_object_put(obj);
		fprintf(stderr, "pbctl: panicbrokerd's event feed (GET /v1/events) is not there or not JSON\n");
		return 1;
	}
	ep = pbctl_str(obj, "epoch");
	if (!*started) {
		/* Follow from now on, as journalctl -f does after its tail. */
		snprintf(epoch, epoch_len, "%s", ep);
		*after = pbctl_u64(obj, "last");
		*started = true;
		json_object_put(obj);
		return 0;
	}
	if (strcmp(ep, epoch) != 0) {
		/* Another daemon: everything it has told is news. */
		fprintf(stderr, "pbctl: panicbrokerd restarted; following the new one\n");
		snprintf(epoch, epoch_len, "%s", ep);
		*after = 0;
		json_object_put(obj);
		*ret_more = true;
		return 0;
	}
	if (pbctl_u64(obj, "missed"))
		fprintf(stderr, "pbctl: %llu events were missed (the daemon keeps the latest ones only)\n",
			(unsigned long long)pbctl_u64(obj, "missed"));
	n = json_object_array_length(events);
	for (size_t i = 0; i < n; i++) {
		json_object *ev = json_object_array_get_idx(events, i);
		uint64_t seq = pbctl_u64(ev, "seq");

		if (seq <= *after)
			continue;
		pbctl_watch_print(ev, json);
		*after = seq;
	}
	*ret_more = n > 0 && *after < pbctl_u64(obj, "last");
	json_object_put(obj);
	if (fflush(stdout) == EOF)
		return 1; /* the reader went away */
	return 0;
}

int pbctl_watch(const char *api, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ 0 },
	};
	struct sigaction sa = { .sa_handler = pbctl_on_stop };
	char epoch[64] = "";
	uint64_t after = 0;
	bool json = false, started = false, lost = false, more;
	int c, r;

	/* 0: GNU getopt starts over (permuting: options may follow the operands). */
	optind = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c != 'j')
			return 2;
		json = true;
	}
	if (optind < argc) {
		fprintf(stderr, "pbctl: watch: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	/* No SA_RESTART: a sleep ends at once on ^C. */
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGINT, &sa, NULL) < 0 || sigaction(SIGTERM, &sa, NULL) < 0 ||
	    signal(SIGPIPE, SIG_IGN) == SIG_ERR) {
		fprintf(stderr, "pbctl: cannot set up signals: %s\n", strerror(errno));
		return 1;
	}
	while (!pbctl_stop) {
		r = pbctl_watch_poll(api, epoch, sizeof(epoch), &after, &started, json, &more);
		if (r > 0)
			return pbctl_stop ? 0 : r;
		if (r == -EAGAIN) {
			if (!lost)
				fprintf(stderr, "pbctl: lost panicbrokerd at %s; waiting for it to come back\n",
					api);
			lost = true;
			pbctl_sleep_msec(PBCTL_WATCH_RETRY_MSEC);
			continue;
		}
		if (lost)
			fprintf(stderr, "pbctl: panicbrokerd at %s is back\n", api);
		lost = false;
		if (!more)
			pbctl_sleep_msec(PBCTL_WATCH_POLL_MSEC);
	}
	return 0;
}

/* The commands that talk to the daemon; NULL: not one of them. */
