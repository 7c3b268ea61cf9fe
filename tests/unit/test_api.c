// SPDX-License-Identifier: MIT
/*
 * Unit tests: the local API (hostd/api.h) on a real unix socket and a real
 * spool, driven by sd_event_run() while client threads speak raw HTTP/1.1.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "scratch.h"
#include "api.h"
#include "common.h"
#include "config.h"
#include "spool.h"
#include "util.h"

#define CONN_TIMEOUT_SEC 1
#define MEMORY_BYTES (16 * 1024)

/* -- the daemon side: fake ops and a spool -- */

struct fake {
	char added[256];
	char removed[64];
	bool list_fails;
};

static int fake_vms_list(void *ud, json_object **ret)
{
	struct fake *f = ud;

	if (f->list_fails)
		return -EIO;
	*ret = json_tokener_parse(
		"[{\"name\": \"vmA\", \"backend\": \"qmp\", \"attach_state\": \"attached\","
		"  \"last_crash\": \"20261124T204103.000000Z-vmA\","
		"  \"open_crash\": {\"id\": \"20261124T204103.000000Z-vmA\", \"state\": \"held\"}},"
		" {\"name\": \"vmB\", \"backend\": \"qmp\", \"attach_state\": \"connecting\","
		"  \"last_crash\": null, \"open_crash\": null}]");
	return *ret ? 0 : -ENOMEM;
}

static int fake_vm_add(void *ud, const char *spec, char *err, size_t errlen)
{
	struct fake *f = ud;

	if (strncmp(spec, "vmA,", 4) == 0)
		return err_set(err, errlen, -EEXIST, "VM vmA is supervised already");
	if (strncmp(spec, "full,", 5) == 0)
		return err_set(err, errlen, -E2BIG, "more than 512 VMs");
	if (!strstr(spec, "qmp="))
		return err_set(err, errlen, -EINVAL, "VM %s: qmp=PATH is required", spec);
	snprintf(f->added, sizeof(f->added), "%s", spec);
	return 0;
}

static int fake_vm_remove(void *ud, const char *name, char *err, size_t errlen)
{
	struct fake *f = ud;

	if (strcmp(name, "vmA") != 0 && strcmp(name, "vmB") != 0)
		return err_set(err, errlen, -ENOENT, "no VM %s", name);
	snprintf(f->removed, sizeof(f->removed), "%s", name);
	return 0;
}

static const struct api_ops fake_ops = {
	.vms_list = fake_vms_list,
	.vm_add = fake_vm_add,
	.vm_remove = fake_vm_remove,
};

static sd_event *event;
static struct spool *spool;
static struct api *api;
static struct fake fake;
static char sock_path[128];

/* Crashes, oldest first: @i's detection second is 10 + i. */
static const struct {
	const char *vm;
	const char *state;
} crashes[] = {
	{ "vmA", "closed" }, { "vmB", "closed" }, { "vmA-1", "closed" },
	{ "vmA", "closed" }, { "vmB", "kdump_running" }, { "vmA", "held" },
};

static void crash_id(size_t i, char *buf, size_t len)
{
	snprintf(buf, len, "20261124T2041%02zu.000000Z-%s", 10 + i, crashes[i].vm);
}

static void write_records(void)
{
	for (size_t i = 0; i < ARRAY_SIZE(crashes); i++) {
		char id[64], text[512];
		json_object *rec;
		int dirfd = -1;

		crash_id(i, id, sizeof(id));
		snprintf(text, sizeof(text),
			 "{\"format\": 1, \"id\": \"%s\", \"vm\": \"%s\", \"event\": \"GUEST_PANICKED\","
			 " \"detected_at\": \"2026-11-24T20:41:%02zu.000000Z\", \"state\": \"%s\","
			 " \"final_action_result\": %s, \"kdump\": {\"state\": \"done\"},"
			 " \"history\": []}",
			 id, crashes[i].vm, 10 + i, crashes[i].state,
			 strcmp(crashes[i].state, "closed") == 0 ? "{\"outcome\": \"applied\"}" : "null");
		rec = json_tokener_parse(text);
		assert_non_null(rec);
		assert_int_equal(spool_publish_crash(spool, id, rec, &dirfd), 0);
		close(dirfd);
		json_object_put(rec);
	}
}

static int setup(void **state)
{
	struct api_config cfg = {
		.socket_path = sock_path,
		.connection_timeout_sec = CONN_TIMEOUT_SEC,
		.connection_memory_bytes = MEMORY_BYTES,
		.max_body_bytes = 4096,
	};
	char path[128], err[256] = "";
	mode_t old_umask;
	int r;

	(void)state;
	if (scratch_setup("/tmp/pbapiXXXXXX") < 0)
		return -1;
	snprintf(sock_path, sizeof(sock_path), "%s/run/api.sock", scratch_dir);
	snprintf(path, sizeof(path), "%s/spool", scratch_dir);
	if (sd_event_new(&event) < 0 || spool_open(path, true, &spool, err, sizeof(err)) < 0)
		return -1;
	write_records();
	fake = (struct fake){ 0 };
	old_umask = umask(077); /* a strict one: the directory and socket modes hold */
	r = api_new(event, spool, &cfg, &fake_ops, &fake, &api, err, sizeof(err));
	umask(old_umask);
	if (r < 0) {
		fprintf(stderr, "api_new: %s\n", err);
		return -1;
	}
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	api_free(api);
	api = NULL;
	spool_close(spool);
	event = sd_event_unref(event);
	return scratch_teardown();
}

/* -- the client side: raw HTTP/1.1 in threads while the loop runs -- */

struct client {
	const char *req;
	size_t req_len;
	size_t send_only;	/* stall after this many bytes; 0: send all */
	char reply[256 * 1024];
	size_t reply_len;
	double elapsed_sec;
	bool connected;
	atomic_bool stalled;
	atomic_bool done;
	pthread_t thread;
};

static double now_sec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *client_main(void *arg)
{
	struct client *c = arg;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = 10 };
	double start = now_sec();
	size_t n = c->send_only ? c->send_only : c->req_len, off = 0;
	int fd;

	strcpy(sa.sun_path, sock_path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
		c->connected = true;
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		while (off < n) {
			ssize_t w = send(fd, c->req + off, n - off, MSG_NOSIGNAL);

			if (w <= 0)
				break;
			off += (size_t)w;
		}
		atomic_store(&c->stalled, true);
		for (;;) {
			ssize_t rd = recv(fd, c->reply + c->reply_len,
					  sizeof(c->reply) - 1 - c->reply_len, 0);

			if (rd <= 0)
				break;
			c->reply_len += (size_t)rd;
		}
	}
	if (fd >= 0)
		close(fd);
	c->reply[c->reply_len] = '\0';
	c->elapsed_sec = now_sec() - start;
	atomic_store(&c->done, true);
	return NULL;
}

static void client_start(struct client *c)
{
	assert_int_equal(pthread_create(&c->thread, NULL, client_main, c), 0);
}

/* Runs the loop until @c is done (or @max_sec pass). */
static void loop_until_done(struct client *c, double max_sec)
{
	double end = now_sec() + max_sec;

	while (!atomic_load(&c->done) && now_sec() < end)
		assert_true(sd_event_run(event, 20 * 1000) >= 0);
}

static void loop_for(double sec)
{
	double end = now_sec() + sec;

	while (now_sec() < end)
		assert_true(sd_event_run(event, 20 * 1000) >= 0);
}

static struct client *client_new(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static struct client *client_new(const char *fmt, ...)
{
	struct client *c = calloc(1, sizeof(*c));
	char *req;
	va_list ap;
	int n;

	assert_non_null(c);
	va_start(ap, fmt);
	n = vasprintf(&req, fmt, ap);
	va_end(ap);
	assert_true(n > 0);
	c->req = req;
	c->req_len = (size_t)n;
	return c;
}

static void client_free(struct client *c)
{
	free((char *)c->req);
	free(c);
}

/* A whole exchange: status, and the body parsed as JSON into @ret_body. */
struct reply {
	int status;
	char headers[2048];
	json_object *body;
};

static void parse_reply(struct client *c, struct reply *r)
{
	char *sep = strstr(c->reply, "\r\n\r\n");

	*r = (struct reply){ 0 };
	if (sscanf(c->reply, "HTTP/1.1 %d", &r->status) != 1)
		r->status = 0;
	if (sep) {
		snprintf(r->headers, sizeof(r->headers), "%.*s", (int)(sep - c->reply), c->reply);
		r->body = json_tokener_parse(sep + 4);
	}
}

static struct reply request(const char *method, const char *path, const char *body)
{
	struct client *c;
	struct reply r;

	if (body)
		c = client_new("%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
			       "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
			       method, path, strlen(body), body);
	else
		c = client_new("%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
			       method, path);
	client_start(c);
	loop_until_done(c, 10);
	assert_true(atomic_load(&c->done));
	assert_int_equal(pthread_join(c->thread, NULL), 0);
	parse_reply(c, &r);
	client_free(c);
	return r;
}

static const char *error_of(const struct reply *r)
{
	json_object *e;

	if (!r->body || !json_object_object_get_ex(r->body, "error", &e))
		return "";
	return json_object_get_string(e);
}

static const char *str_of(json_object *o, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/* Expects an error reply @status whose phrase contains @phrase. */
static void expect_error(const char *method, const char *path, const char *body,
			 int status, const char *phrase)
{
	struct reply r = request(method, path, body);

	if (r.status != status || !strstr(error_of(&r), phrase))
		fail_msg("%s %s: got %d '%s', want %d '%s'", method, path, r.status,
			 error_of(&r), status, phrase);
	assert_non_null(strstr(r.headers, "Content-Type: application/json"));
	json_object_put(r.body);
}

/* -- tests -- */

static void test_vms_list(void **state)
{
	struct reply r;

	(void)state;
	r = request("GET", "/v1/vms", NULL);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.headers, "Content-Type: application/json"));
	assert_true(json_object_is_type(r.body, json_type_array));
	assert_int_equal(json_object_array_length(r.body), 2);
	assert_string_equal(str_of(json_object_array_get_idx(r.body, 1), "attach_state"),
			    "connecting");
	json_object_put(r.body);

	expect_error("GET", "/v1/vms?x=1", NULL, 400, "unknown query parameter 'x'");
	fake.list_fails = true;
	expect_error("GET", "/v1/vms", NULL, 500, "Input/output error");
}

static void test_vm_add_and_remove(void **state)
{
	struct reply r;

	(void)state;
	r = request("POST", "/v1/vms", "{\"spec\": \"new1,qmp=/run/new1.qmp\"}");
	assert_int_equal(r.status, 201);
	assert_string_equal(str_of(r.body, "name"), "new1");
	assert_string_equal(fake.added, "new1,qmp=/run/new1.qmp");
	json_object_put(r.body);

	expect_error("POST", "/v1/vms", "{\"spec\": \"vmA,qmp=/q\"}", 409, "supervised already");
	expect_error("POST", "/v1/vms", "{\"spec\": \"full,qmp=/q\"}", 409, "more than 512");
	expect_error("POST", "/v1/vms", "{\"spec\": \"bad\"}", 400, "qmp=PATH is required");
	expect_error("POST", "/v1/vms", "{\"spec\": ", 400, "malformed JSON");
	expect_error("POST", "/v1/vms", "{\"spec\": \"a,qmp=/q\"} {}", 400, "data after");
	expect_error("POST", "/v1/vms", "[1]", 400, "must be a JSON object");
	expect_error("POST", "/v1/vms", "{\"spec\": 7}", 400, "VM spec string");
	expect_error("POST", "/v1/vms", "{\"spec\": \"a,qmp=/q\", \"x\": 1}", 400, "unknown key 'x'");
	expect_error("POST", "/v1/vms", "[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]", 400, "malformed JSON");
	expect_error("POST", "/v1/vms", NULL, 400, "body is required");

	r = request("DELETE", "/v1/vms/vmB", NULL);
	assert_int_equal(r.status, 200);
	assert_string_equal(fake.removed, "vmB");
	json_object_put(r.body);
	expect_error("DELETE", "/v1/vms/nope", NULL, 404, "no VM nope");
	expect_error("DELETE", "/v1/vms/a%20b", NULL, 400, "not a VM name");
	expect_error("DELETE", "/v1/vms/", NULL, 400, "not a VM name");
}

/* The ids a crash listing returned, "i,j,..." by index into crashes[]. */
static void expect_crashes(const char *query, const char *want)
{
	char path[256], got[128] = "";
	struct reply r;

	snprintf(path, sizeof(path), "/v1/crashes%s", query);
	r = request("GET", path, NULL);
	if (r.status != 200)
		fail_msg("GET %s: %d %s", path, r.status, error_of(&r));
	assert_true(json_object_is_type(r.body, json_type_array));
	for (size_t i = 0; i < json_object_array_length(r.body); i++) {
		const char *id = str_of(json_object_array_get_idx(r.body, i), "id");
		size_t k;

		for (k = 0; k < ARRAY_SIZE(crashes); k++) {
			char cid[64];

			crash_id(k, cid, sizeof(cid));
			if (strcmp(cid, id) == 0)
				break;
		}
		snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s%zu", i ? "," : "", k);
	}
	if (strcmp(got, want) != 0)
		fail_msg("GET %s: got %s, want %s", path, got, want);
	json_object_put(r.body);
}

static void test_crashes_list(void **state)
{
	struct reply r;
	json_object *s;

	(void)state;
	expect_crashes("", "5,4,3,2,1,0");
	expect_crashes("?limit=2", "5,4");
	expect_crashes("?vm=vmA", "5,3,0");
	expect_crashes("?vm=vmA-1", "2");
	expect_crashes("?state=open", "5,4");
	expect_crashes("?state=closed&vm=vmB", "1");
	expect_crashes("?since=2026-11-24T20:41:13.000000Z", "5,4,3");
	expect_crashes("?since=2026-11-24T20:41:13.000000Z&vm=vmA&limit=1", "5");
	expect_crashes("?since=2027-01-01T00:00:00.000000Z", "");

	r = request("GET", "/v1/crashes?limit=1", NULL);
	s = json_object_array_get_idx(r.body, 0);
	assert_string_equal(str_of(s, "vm"), "vmA");
	assert_string_equal(str_of(s, "state"), "held");
	assert_string_equal(str_of(s, "event"), "GUEST_PANICKED");
	assert_string_equal(str_of(s, "detected_at"), "2026-11-24T20:41:15.000000Z");
	assert_string_equal(str_of(s, "kdump_state"), "done");
	assert_null(str_of(s, "final_action_outcome"));
	assert_null(str_of(s, "snapshot_state"));
	assert_null(str_of(s, "history")); /* a summary, not the record */
	json_object_put(r.body);

	expect_error("GET", "/v1/crashes?limit=0", NULL, 400, "limit must be a whole number from 1 to 1000");
	expect_error("GET", "/v1/crashes?limit=1001", NULL, 400, "limit must be");
	expect_error("GET", "/v1/crashes?limit=ten", NULL, 400, "limit must be");
	expect_error("GET", "/v1/crashes?limit=1&limit=2", NULL, 400, "'limit' given twice");
	expect_error("GET", "/v1/crashes?since=yesterday", NULL, 400, "since must be an RFC 3339 time");
	expect_error("GET", "/v1/crashes?state=sleeping", NULL, 400, "state must be open");
	expect_error("GET", "/v1/crashes?vm=..", NULL, 400, "vm must be a VM name");
	expect_error("GET", "/v1/crashes?order=asc", NULL, 400, "unknown query parameter 'order'");
}

static void test_crash_get(void **state)
{
	char id[64], path[128];
	struct reply r;

	(void)state;
	crash_id(4, id, sizeof(id));
	snprintf(path, sizeof(path), "/v1/crashes/%s", id);
	r = request("GET", path, NULL);
	assert_int_equal(r.status, 200);
	assert_string_equal(str_of(r.body, "id"), id);
	assert_string_equal(str_of(r.body, "state"), "kdump_running");
	assert_true(json_object_object_get_ex(r.body, "history", NULL)); /* the whole record */
	json_object_put(r.body);

	expect_error("GET", "/v1/crashes/20261124T204199.000000Z-vmZ", NULL, 404, "no crash");
	expect_error("GET", "/v1/crashes/..", NULL, 400, "not a crash id");
	expect_error("GET", "/v1/crashes/.new-x", NULL, 400, "not a crash id");
}

static void test_not_found_and_method(void **state)
{
	struct reply r;

	(void)state;
	expect_error("GET", "/v2/vms", NULL, 404, "no such resource");
	expect_error("GET", "/", NULL, 404, "no such resource");
	r = request("PUT", "/v1/vms", "{}");
	assert_int_equal(r.status, 405);
	assert_non_null(strstr(r.headers, "Allow: GET, POST"));
	assert_non_null(strstr(error_of(&r), "PUT is not allowed here"));
	json_object_put(r.body);
	expect_error("POST", "/v1/crashes", "{}", 405, "not allowed");
}

static void test_body_too_large(void **state)
{
	struct client *c;
	char *big = malloc(8192);
	struct reply r;

	(void)state;
	assert_non_null(big);
	memset(big, 'a', 8191);
	big[8191] = '\0';
	/* Declared too large: 413 before the body is read. */
	c = client_new("POST /v1/vms HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n");
	client_start(c);
	loop_until_done(c, 10);
	assert_int_equal(pthread_join(c->thread, NULL), 0);
	parse_reply(c, &r);
	assert_int_equal(r.status, 413);
	assert_non_null(strstr(error_of(&r), "larger than 4096 bytes"));
	json_object_put(r.body);
	client_free(c);

	/* Chunked past the cap: no reply can follow, the connection closes. */
	c = client_new("POST /v1/vms HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
		       "1fff\r\n%s\r\n1fff\r\n%s\r\n0\r\n\r\n", big, big);
	client_start(c);
	loop_until_done(c, 10);
	assert_true(atomic_load(&c->done));
	assert_int_equal(pthread_join(c->thread, NULL), 0);
	parse_reply(c, &r);
	assert_true(r.status == 0 || r.status == 413);
	json_object_put(r.body);
	client_free(c);
	free(big);
	/* Still serving. */
	r = request("GET", "/v1/vms", NULL);
	assert_int_equal(r.status, 200);
	json_object_put(r.body);
}

static void test_headers_too_large(void **state)
{
	char *pad = malloc(3 * MEMORY_BYTES);
	struct client *c;
	struct reply r;

	(void)state;
	assert_non_null(pad);
	memset(pad, 'b', 3 * MEMORY_BYTES - 1);
	pad[3 * MEMORY_BYTES - 1] = '\0';
	c = client_new("GET /v1/vms HTTP/1.1\r\nHost: x\r\nX-Pad: %s\r\n\r\n", pad);
	client_start(c);
	loop_until_done(c, 10);
	assert_true(atomic_load(&c->done));
	assert_int_equal(pthread_join(c->thread, NULL), 0);
	parse_reply(c, &r);
	/* libmicrohttpd's own refusal, not JSON. */
	assert_int_equal(r.status, 431);
	json_object_put(r.body);
	client_free(c);
	free(pad);

	/* An over-long URL too. */
	pad = malloc(3 * MEMORY_BYTES);
	assert_non_null(pad);
	memset(pad, 'c', 3 * MEMORY_BYTES - 1);
	pad[3 * MEMORY_BYTES - 1] = '\0';
	c = client_new("GET /v1/crashes/%s HTTP/1.1\r\nHost: x\r\n\r\n", pad);
	client_start(c);
	loop_until_done(c, 10);
	assert_int_equal(pthread_join(c->thread, NULL), 0);
	parse_reply(c, &r);
	assert_true(r.status == 0 || r.status >= 400);
	json_object_put(r.body);
	client_free(c);
	free(pad);
}

static void test_slow_client_is_dropped_others_served(void **state)
{
	struct client *slow, *fast;
	struct reply r;

	(void)state;
	slow = client_new("GET /v1/vms HTTP/1.1\r\nHost: x\r\nX-Half: a");
	slow->send_only = slow->req_len;
	client_start(slow);
	while (!atomic_load(&slow->stalled))
		assert_true(sd_event_run(event, 10 * 1000) >= 0);
	loop_for(0.2);

	/* Served while the slow one still holds its connection. */
	fast = client_new("GET /v1/vms HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
	client_start(fast);
	loop_until_done(fast, 5);
	assert_true(atomic_load(&fast->done));
	assert_false(atomic_load(&slow->done));
	assert_int_equal(pthread_join(fast->thread, NULL), 0);
	parse_reply(fast, &r);
	assert_int_equal(r.status, 200);
	json_object_put(r.body);
	client_free(fast);

	/* Dropped after the idle timeout, without a reply. */
	loop_until_done(slow, CONN_TIMEOUT_SEC + 5);
	assert_true(atomic_load(&slow->done));
	assert_int_equal(pthread_join(slow->thread, NULL), 0);
	assert_true(slow->connected);
	assert_true(slow->elapsed_sec >= CONN_TIMEOUT_SEC - 0.2);
	assert_true(slow->elapsed_sec < CONN_TIMEOUT_SEC + 4);
	assert_null(strstr(slow->reply, "200 OK"));
	client_free(slow);
}

static void test_connection_limit_recovers(void **state)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fds[API_DEFAULT_MAX_CONNECTIONS + 8];
	struct reply r;
	double start;

	(void)state;
	strcpy(sa.sun_path, sock_path);
	/* More stalled clients than the API takes at once. */
	for (size_t i = 0; i < ARRAY_SIZE(fds); i++) {
		fds[i] = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
		assert_true(fds[i] >= 0);
		assert_int_equal(connect(fds[i], (struct sockaddr *)&sa, sizeof(sa)), 0);
		assert_int_equal(send(fds[i], "GET / HTTP/1.1\r\n", 16, MSG_NOSIGNAL), 16);
	}
	loop_for(0.3);
	for (size_t i = 0; i < ARRAY_SIZE(fds); i++)
		close(fds[i]);
	loop_for(0.1);
	/* Once they are gone, the next client is served at once, not at a timeout. */
	start = now_sec();
	r = request("GET", "/v1/vms", NULL);
	assert_int_equal(r.status, 200);
	assert_true(now_sec() - start < 1.0);
	json_object_put(r.body);
}

static int custom_route(const struct api_request *rq, struct api_response *resp,
			void *userdata)
{
	json_object *o = json_object_new_object();
	const char *q = api_request_query(rq, "q");

	assert_ptr_equal(userdata, &fake);
	json_object_object_add(o, "rest", json_object_new_string(rq->path_rest));
	json_object_object_add(o, "q", q ? json_object_new_string(q) : NULL);
	json_object_object_add(o, "uid", rq->has_peer ? json_object_new_int((int)rq->peer.uid) : NULL);
	return api_reply_json(resp, 200, o);
}

static int failing_route(const struct api_request *rq, struct api_response *resp,
			 void *userdata)
{
	(void)rq;
	(void)resp;
	(void)userdata;
	return -ENOSPC;
}

static void test_added_routes(void **state)
{
	struct reply r;
	json_object *v;

	(void)state;
	assert_int_equal(api_add_route(api, "GET", "/x/*", custom_route, &fake), 0);
	assert_int_equal(api_add_route(api, "GET", "/fail", failing_route, NULL), 0);
	assert_int_equal(api_add_route(api, "GET", "no-slash", failing_route, NULL), -EINVAL);
	r = request("GET", "/x/a/b?q=a%20b", NULL);
	assert_int_equal(r.status, 200);
	assert_string_equal(str_of(r.body, "rest"), "a/b");
	assert_string_equal(str_of(r.body, "q"), "a b");
	assert_true(json_object_object_get_ex(r.body, "uid", &v));
	assert_int_equal(json_object_get_int(v), (int)getuid());
	json_object_put(r.body);
	expect_error("GET", "/fail", NULL, 500, "internal error: No space left on device");
	for (size_t i = 0; i < API_MAX_ROUTES; i++)
		if (api_add_route(api, "GET", "/many", failing_route, NULL) == -E2BIG)
			return;
	fail_msg("the route table has no end");
}

static void test_socket_mode_group_and_stale(void **state)
{
	struct api_config cfg = { .socket_path = sock_path };
	char err[256] = "", other[160], gid[32];
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct api *b = NULL;
	struct stat st;
	int fd;

	(void)state;
	assert_int_equal(stat(sock_path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0660);
	assert_string_equal(api_socket_path(api), sock_path);
	/* Its directory was missing: made 0755 whatever the umask. */
	snprintf(other, sizeof(other), "%s/run", scratch_dir);
	assert_int_equal(stat(other, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0755);

	/* A live socket is another daemon's. */
	assert_int_equal(api_new(event, spool, &cfg, &fake_ops, &fake, &b, err, sizeof(err)),
			 -EADDRINUSE);
	assert_non_null(strstr(err, "another daemon is listening on"));
	assert_int_equal(stat(sock_path, &st), 0); /* and left alone */

	/* Freed: the socket goes. */
	api_free(api);
	api = NULL;
	assert_int_equal(stat(sock_path, &st), -1);

	/* A stale one (bound, nobody listening) is replaced; group and mode applied. */
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	strcpy(sa.sun_path, sock_path);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	snprintf(gid, sizeof(gid), "%u", (unsigned int)getgid());
	cfg.group = gid;
	cfg.socket_mode = 0600;
	assert_int_equal(api_new(event, spool, &cfg, &fake_ops, &fake, &api, err, sizeof(err)), 0);
	assert_int_equal(stat(sock_path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(st.st_gid, getgid());

	/* Something else at the path is refused. */
	snprintf(other, sizeof(other), "%s/file", scratch_dir);
	fd = open(other, O_CREAT | O_WRONLY, 0600);
	assert_true(fd >= 0);
	close(fd);
	cfg = (struct api_config){ .socket_path = other };
	assert_int_equal(api_new(event, spool, &cfg, &fake_ops, &fake, &b, err, sizeof(err)),
			 -EEXIST);
	assert_non_null(strstr(err, "is not a socket"));
	cfg = (struct api_config){ .socket_path = "relative.sock" };
	assert_int_equal(api_new(event, spool, &cfg, &fake_ops, &fake, &b, err, sizeof(err)),
			 -EINVAL);
	cfg = (struct api_config){ .socket_path = sock_path, .group = "no-such-group-pb" };
	api_free(api);
	api = NULL;
	assert_int_equal(api_new(event, spool, &cfg, &fake_ops, &fake, &b, err, sizeof(err)),
			 -ENOENT);
	assert_non_null(strstr(err, "no group 'no-such-group-pb'"));
}

/* The daemon's options for the API (config.c): what api_config is built from. */
static void test_config_options(void **state)
{
	struct config cfg;
	char err[CFG_ERR_MAX] = "";

	(void)state;
	cfg_init(&cfg);
	assert_string_equal(cfg.api_socket, CFG_DEFAULT_API_SOCKET);
	assert_int_equal(cfg.api_mode, 0660);
	assert_string_equal(cfg.api_group, "");
	assert_int_equal(cfg_set_option(&cfg, "api", "/run/x/api.sock", err, sizeof(err)), 0);
	assert_string_equal(cfg.api_socket, "/run/x/api.sock");
	assert_int_equal(cfg_set_option(&cfg, "api", "off", err, sizeof(err)), 0);
	assert_string_equal(cfg.api_socket, "");
	assert_int_equal(cfg_set_option(&cfg, "api", "api.sock", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "absolute socket path"));
	assert_int_equal(cfg_set_option(&cfg, "api-group", "pb-ops", err, sizeof(err)), 0);
	assert_string_equal(cfg.api_group, "pb-ops");
	assert_int_equal(cfg_set_option(&cfg, "api-group", "a b", err, sizeof(err)), -EINVAL);
	assert_int_equal(cfg_set_option(&cfg, "api-mode", "0600", err, sizeof(err)), 0);
	assert_int_equal(cfg.api_mode, 0600);
	assert_int_equal(cfg_set_option(&cfg, "api-mode", "770", err, sizeof(err)), 0);
	assert_int_equal(cfg.api_mode, 0770);
	assert_int_equal(cfg_set_option(&cfg, "api-mode", "0460", err, sizeof(err)), -EINVAL);
	assert_int_equal(cfg_set_option(&cfg, "api-mode", "0668", err, sizeof(err)), -EINVAL);
	assert_int_equal(cfg_set_option(&cfg, "api-mode", "01777", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "octal mode from 0600 to 0777"));
	/* The TCP listener and its token file. */
	assert_string_equal(cfg.listen, "");
	assert_int_equal(cfg_set_option(&cfg, "listen", "127.0.0.1:9877", err, sizeof(err)), 0);
	assert_string_equal(cfg.listen, "127.0.0.1:9877");
	assert_int_equal(cfg_set_option(&cfg, "listen", "off", err, sizeof(err)), 0);
	assert_string_equal(cfg.listen, "");
	assert_int_equal(cfg_set_option(&cfg, "listen", "9877", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "listen must be ADDR:PORT"));
	assert_int_equal(cfg_set_option(&cfg, "api-token-file", "/etc/pb/token", err,
					 sizeof(err)), 0);
	assert_string_equal(cfg.api_token_file, "/etc/pb/token");
	assert_int_equal(cfg_set_option(&cfg, "api-token-file", "token", err, sizeof(err)),
			 -EINVAL);
	cfg_free(&cfg);
}

/* The TCP listener: made with a token and a numeric address, or not at all. */
static void test_tcp_listener(void **state)
{
	struct api_config cfg = { .socket_path = sock_path, .listen = "127.0.0.1:0",
				  .token = "0123456789abcdef" };
	const char *addr;
	struct api *a = NULL;
	char err[256] = "";

	(void)state;
	/* The fixture's API holds the socket path: this one gets its own. */
	snprintf(sock_path, sizeof(sock_path), "%s/run/api2.sock", scratch_dir);
	assert_int_equal(api_new(event, spool, &cfg, &fake_ops, &fake, &a, err, sizeof(err)), 0);
	addr = api_listen_address(a);
	assert_non_null(addr);
	assert_int_equal(strncmp(addr, "127.0.0.1:", 10), 0);
	assert_string_not_equal(addr, "127.0.0.1:0");
	api_free(a);
	a = NULL;
	cfg.token = NULL;
	assert_int_equal(api_new(event, spool, &cfg, &fake_ops, &fake, &a, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "needs a bearer token"));
	cfg.token = "0123456789abcdef";
	cfg.listen = "localhost:80";
	assert_int_equal(api_new(event, spool, &cfg, &fake_ops, &fake, &a, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "not a numeric IPv4 address"));
	cfg.listen = "[::1:80";
	assert_int_equal(api_new(event, spool, &cfg, &fake_ops, &fake, &a, err, sizeof(err)),
			 -EINVAL);
	assert_null(a);
	/* Without a listener there is no address. */
	assert_null(api_listen_address(api));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_vms_list, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vm_add_and_remove, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crashes_list, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crash_get, setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_found_and_method, setup, teardown),
		cmocka_unit_test_setup_teardown(test_body_too_large, setup, teardown),
		cmocka_unit_test_setup_teardown(test_headers_too_large, setup, teardown),
		cmocka_unit_test_setup_teardown(test_slow_client_is_dropped_others_served, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_connection_limit_recovers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_added_routes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_socket_mode_group_and_stale, setup, teardown),
		cmocka_unit_test(test_config_options),
		cmocka_unit_test_setup_teardown(test_tcp_listener, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
