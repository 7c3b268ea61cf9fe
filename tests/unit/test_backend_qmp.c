// SPDX-License-Identifier: MIT
/*
 * Unit tests: the QMP backend. Its pure helpers, then the backend against a
 * scripted QEMU monitor (a thread serving a real unix socket): attach,
 * events, the operations and the dump, as backend.h promises them.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <cmocka.h>

#include "scratch.h"
#include "backend.h"
#include "backend_qmp.h"
#include "io.h"
#include "log.h"

/* ---- pure helpers ---- */

static void test_run_state(void **state)
{
	(void)state;
	assert_int_equal(bq_run_state_from_status("running"), BE_RUN_RUNNING);
	assert_int_equal(bq_run_state_from_status("guest-panicked"), BE_RUN_PANICKED);
	assert_int_equal(bq_run_state_from_status("shutdown"), BE_RUN_SHUTDOWN);
	assert_int_equal(bq_run_state_from_status("paused"), BE_RUN_PAUSED);
	assert_int_equal(bq_run_state_from_status("prelaunch"), BE_RUN_PAUSED);
	assert_int_equal(bq_run_state_from_status("something-new"), BE_RUN_UNKNOWN);
	assert_int_equal(bq_run_state_from_status(NULL), BE_RUN_UNKNOWN);
}

static void test_stat_starttime(void **state)
{
	uint64_t t = 0;

	(void)state;
	/* Fields 3..21, then starttime (22) = 4242, then more. */
	assert_int_equal(bq_parse_stat_starttime(
		"123 (qemu-system-x86) S 1 123 123 0 -1 4194560 100 0 0 0 5 6 0 0 20 0 8 0 4242 1000 50\n",
		&t), 0);
	assert_true(t == 4242);
	/* A comm with ") " and spaces in it counts from the last ')'. */
	assert_int_equal(bq_parse_stat_starttime(
		"7 (a) b (c) S 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 99 1 2\n", &t), 0);
	assert_true(t == 99);
	assert_int_equal(bq_parse_stat_starttime("7 (x) S 1 2 3\n", &t), -EINVAL);
	assert_int_equal(bq_parse_stat_starttime("no parenthesis", &t), -EINVAL);
	assert_int_equal(bq_parse_stat_starttime(
		"7 (x) S 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 12x 1\n", &t), -EINVAL);
}

static void test_backend_find(void **state)
{
	(void)state;
	assert_ptr_equal(backend_find("qmp"), &backend_qmp_ops);
	assert_null(backend_find("libvirt"));
	assert_null(backend_find(NULL));
}

/* ---- a scripted QEMU monitor ---- */

static struct {
	pthread_mutex_t lock;
	int listen_fd;
	int conn_fd;
	char status[32];         /* query-status answers this */
	char commands[64][64];   /* what it was asked, in order */
	unsigned int n_commands;
	char set_action[128];
	int got_fd;              /* from getfd */
	bool reset_event;        /* system_reset is followed by RESET */
	bool refuse_stop;
	bool completed_first;    /* DUMP_COMPLETED before the command's reply */
} fake = { .lock = PTHREAD_MUTEX_INITIALIZER, .listen_fd = -1, .conn_fd = -1, .got_fd = -1 };

static void fake_send(int fd, const char *text)
{
	pthread_mutex_lock(&fake.lock);
	assert_int_equal(io_write_full(fd, text, strlen(text)), 0);
	assert_int_equal(io_write_full(fd, "\r\n", 2), 0);
	pthread_mutex_unlock(&fake.lock);
}

static void fake_event(const char *event, const char *data)
{
	char buf[512];

	snprintf(buf, sizeof(buf),
		 "{\"event\": \"%s\", \"data\": %s, \"timestamp\": {\"seconds\": 1700000000, \"microseconds\": 5}}",
		 event, data);
	fake_send(fake.conn_fd, buf);
}

/* Answers one command; false: close the connection (quit). */
static bool fake_command(int fd, json_object *cmd)
{
	json_object *v, *args = NULL;
	const char *name;
	int64_t id;
	char buf[512];

	assert_true(json_object_object_get_ex(cmd, "execute", &v));
	name = json_object_get_string(v);
	assert_true(json_object_object_get_ex(cmd, "id", &v));
	id = json_object_get_int64(v);
	json_object_object_get_ex(cmd, "arguments", &args);
	if (strcmp(name, "qmp_capabilities") != 0 && fake.n_commands < 64)
		snprintf(fake.commands[fake.n_commands++], sizeof(fake.commands[0]), "%s", name);

	if (strcmp(name, "quit") == 0)
		return false; /* QEMU may close before it replies */
	if (strcmp(name, "set-action") == 0)
		snprintf(fake.set_action, sizeof(fake.set_action), "%s",
			 json_object_to_json_string_ext(args, JSON_C_TO_STRING_PLAIN));
	if (strcmp(name, "query-status") == 0)
		snprintf(buf, sizeof(buf), "{\"return\": {\"status\": \"%s\", \"running\": false}, \"id\": %lld}",
			 fake.status, (long long)id);
	else if (strcmp(name, "query-memory-size-summary") == 0)
		snprintf(buf, sizeof(buf), "{\"return\": {\"base-memory\": 1073741824, \"plugged-memory\": 1048576}, \"id\": %lld}",
			 (long long)id);
	else if (strcmp(name, "query-dump-guest-memory-capability") == 0)
		snprintf(buf, sizeof(buf), "{\"return\": {\"formats\": [\"elf\", \"kdump-zlib\"]}, \"id\": %lld}",
			 (long long)id);
	else if (strcmp(name, "stop") == 0 && fake.refuse_stop)
		snprintf(buf, sizeof(buf), "{\"error\": {\"class\": \"GenericError\", \"desc\": \"no\"}, \"id\": %lld}",
			 (long long)id);
	else
		snprintf(buf, sizeof(buf), "{\"return\": {}, \"id\": %lld}", (long long)id);
	if (strcmp(name, "dump-guest-memory") == 0 && fake.completed_first) {
		assert_int_equal(io_write_full(fake.got_fd, "EARLY", 5), 0);
		close(fake.got_fd);
		fake.got_fd = -1;
		fake_event("DUMP_COMPLETED",
			   "{\"result\": {\"status\": \"completed\", \"completed\": 5, \"total\": 5}}");
		fake_send(fd, buf);
		return true;
	}
	fake_send(fd, buf);

	if (strcmp(name, "system_reset") == 0 && fake.reset_event)
		fake_event("RESET", "{\"guest\": false, \"reason\": \"host-qmp-system-reset\"}");
	if (strcmp(name, "dump-guest-memory") == 0) {
		assert_true(fake.got_fd >= 0);
		assert_int_equal(io_write_full(fake.got_fd, "DUMPDATA", 8), 0);
		close(fake.got_fd);
		fake.got_fd = -1;
		fake_event("DUMP_COMPLETED",
			   "{\"result\": {\"status\": \"completed\", \"completed\": 8, \"total\": 8}}");
	}
	return true;
}

/* One connection: greeting, then commands until EOF or quit. */
static void fake_serve(int fd)
{
	char buf[8192];
	size_t len = 0;

	fake_send(fd, "{\"QMP\": {\"version\": {\"qemu\": {\"major\": 7, \"minor\": 2, \"micro\": 0}, \"package\": \"\"}, \"capabilities\": []}}");
	for (;;) {
		union {
			struct cmsghdr hdr;
			char buf[CMSG_SPACE(sizeof(int))];
		} ctl;
		struct iovec iov = { .iov_base = buf + len, .iov_len = sizeof(buf) - len - 1 };
		struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
				      .msg_control = ctl.buf, .msg_controllen = sizeof(ctl.buf) };
		struct cmsghdr *c;
		char *nl;
		ssize_t n = recvmsg(fd, &msg, 0);

		if (n <= 0)
			return;
		for (c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
			if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
				memcpy(&fake.got_fd, CMSG_DATA(c), sizeof(int));
		len += (size_t)n;
		buf[len] = '\0';
		while ((nl = strchr(buf, '\n'))) {
			json_object *cmd;

			*nl = '\0';
			cmd = json_tokener_parse(buf);
			assert_non_null(cmd);
			if (!fake_command(fd, cmd)) {
				json_object_put(cmd);
				return;
			}
			json_object_put(cmd);
			memmove(buf, nl + 1, len - (size_t)(nl + 1 - buf) + 1);
			len -= (size_t)(nl + 1 - buf);
		}
	}
}

static void *fake_thread(void *arg)
{
	(void)arg;
	for (;;) {
		int fd = accept4(fake.listen_fd, NULL, NULL, SOCK_CLOEXEC);

		if (fd < 0)
			return NULL;
		fake.conn_fd = fd;
		fake_serve(fd);
		shutdown(fd, SHUT_RDWR);
	}
}

/* ---- the backend's side ---- */

static struct {
	struct be_event ev[32];
	char status[32][32];
	char reason[32][128];
	unsigned int n;
	bool done;
	int error;
	char done_reason[256];
	uint64_t bytes;
	uint64_t progress_done, progress_total;
} seen;

static void on_event(void *ud, const struct be_event *ev)
{
	(void)ud;
	assert_true(seen.n < 32);
	seen.ev[seen.n] = *ev;
	seen.ev[seen.n].data = NULL;
	if (ev->type == BE_EV_ATTACHED)
		snprintf(seen.status[seen.n], sizeof(seen.status[0]), "%s", ev->status);
	if (ev->type == BE_EV_DETACHED)
		snprintf(seen.reason[seen.n], sizeof(seen.reason[0]), "%s", ev->reason);
	if (ev->type == BE_EV_PANIC)
		snprintf(seen.reason[seen.n], sizeof(seen.reason[0]), "%s %s", ev->name, ev->action);
	seen.n++;
}

static void on_done(void *ud, int error, const char *reason)
{
	(void)ud;
	assert_false(seen.done);
	seen.done = true;
	seen.error = error;
	snprintf(seen.done_reason, sizeof(seen.done_reason), "%s", reason ? reason : "");
}

static void on_size(void *ud, int error, const char *reason, uint64_t bytes)
{
	on_done(ud, error, reason);
	seen.bytes = bytes;
}

static void on_progress(void *ud, uint64_t done_bytes, uint64_t total_bytes)
{
	(void)ud;
	seen.progress_done = done_bytes;
	seen.progress_total = total_bytes;
}

static const struct backend_events events = { .event = on_event };

struct env {
	sd_event *e;
	struct backend *b;
	pthread_t server;
};

static bool has_event(enum be_event_type t)
{
	for (unsigned int i = 0; i < seen.n; i++)
		if (seen.ev[i].type == t)
			return true;
	return false;
}

static void run_until_event(struct env *env, enum be_event_type t)
{
	for (int i = 0; i < 500 && !has_event(t); i++)
		assert_true(sd_event_run(env->e, 10 * 1000) >= 0);
	assert_true(has_event(t));
}

static void run_until_done(struct env *env)
{
	for (int i = 0; i < 1000 && !seen.done; i++)
		assert_true(sd_event_run(env->e, 10 * 1000) >= 0);
	assert_true(seen.done);
}

static int setup(void **state)
{
	static struct env env;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct vm_config cfg = { .name = "vm1" };
	char err[128];

	memset(&seen, 0, sizeof(seen));
	fake.n_commands = 0;
	fake.reset_event = true;
	fake.refuse_stop = false;
	fake.completed_first = false;
	snprintf(fake.status, sizeof(fake.status), "guest-panicked");
	if (scratch_setup("/tmp/pbbqXXXXXX") < 0)
		return -1;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/qmp.sock", scratch_dir);
	snprintf(cfg.qmp_path, sizeof(cfg.qmp_path), "%s", sa.sun_path);
	fake.listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fake.listen_fd < 0 || bind(fake.listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(fake.listen_fd, 4) < 0)
		return -1;
	if (pthread_create(&env.server, NULL, fake_thread, NULL) != 0)
		return -1;
	if (sd_event_new(&env.e) < 0)
		return -1;
	if (backend_qmp_ops.create(env.e, &cfg, &events, NULL, &env.b, err, sizeof(err)) < 0)
		return -1;
	*state = &env;
	return 0;
}

static int teardown(void **state)
{
	struct env *env = *state;

	env->b->ops->free(env->b);
	sd_event_unref(env->e);
	shutdown(fake.listen_fd, SHUT_RDWR);
	if (fake.conn_fd >= 0)
		shutdown(fake.conn_fd, SHUT_RDWR);
	pthread_join(env->server, NULL);
	close(fake.listen_fd);
	if (fake.conn_fd >= 0)
		close(fake.conn_fd);
	fake.conn_fd = -1;
	return scratch_teardown();
}

static void attach(struct env *env)
{
	assert_string_equal(env->b->ops->attach_state(env->b), "detached");
	env->b->ops->start(env->b);
	run_until_event(env, BE_EV_ATTACHED);
	assert_string_equal(env->b->ops->attach_state(env->b), "attached");
}

static void test_attach(void **state)
{
	struct env *env = *state;

	attach(env);
	assert_int_equal(seen.ev[0].type, BE_EV_ATTACHED);
	assert_int_equal(seen.ev[0].run_state, BE_RUN_PANICKED);
	assert_string_equal(seen.status[0], "guest-panicked");
	/* The server is this process: its pid and start time. */
	assert_int_equal(seen.ev[0].instance.pid, getpid());
	assert_true(seen.ev[0].instance.start_ticks > 0);
	assert_string_equal(fake.commands[0], "set-action");
	assert_string_equal(fake.set_action, "{\"panic\":\"pause\"}");
	assert_string_equal(fake.commands[1], "query-status");
}

static void test_panic_event(void **state)
{
	struct env *env = *state;

	attach(env);
	fake_event("GUEST_CRASHLOADED", "{\"action\": \"run\"}");
	run_until_event(env, BE_EV_PANIC);
	assert_true(seen.ev[1].crash_loaded);
	assert_string_equal(seen.reason[1], "GUEST_CRASHLOADED run");
	assert_true(seen.ev[1].has_timestamp);
	assert_true(seen.ev[1].timestamp_usec == 1700000000000005ULL);
}

static void test_reset_paused(void **state)
{
	struct env *env = *state;

	snprintf(fake.status, sizeof(fake.status), "paused");
	attach(env);
	assert_int_equal(env->b->ops->reset(env->b, on_done, NULL), 0);
	assert_false(seen.done); /* never from inside the call */
	assert_int_equal(env->b->ops->pause(env->b, on_done, NULL), -EBUSY);
	run_until_done(env);
	assert_int_equal(seen.error, 0);
	assert_string_equal(seen.done_reason, "system_reset and cont: the guest boots again");
	assert_string_equal(fake.commands[2], "query-status");
	assert_string_equal(fake.commands[3], "system_reset");
	assert_string_equal(fake.commands[4], "cont");
	/* Its own RESET was consumed. */
	for (int i = 0; i < 5; i++)
		assert_true(sd_event_run(env->e, 10 * 1000) >= 0);
	assert_false(has_event(BE_EV_RESET));
}

static void test_reset_without_event(void **state)
{
	struct env *env = *state;

	snprintf(fake.status, sizeof(fake.status), "running");
	fake.reset_event = false;
	attach(env);
	assert_int_equal(env->b->ops->reset(env->b, on_done, NULL), 0);
	run_until_done(env); /* after the 5 s wait */
	assert_int_equal(seen.error, 0);
	assert_string_equal(seen.done_reason,
			    "system_reset: the guest boots again (no RESET event within 5 s of system_reset; continued)");
}

static void test_pause_refused(void **state)
{
	struct env *env = *state;

	fake.refuse_stop = true;
	attach(env);
	assert_int_equal(env->b->ops->pause(env->b, on_done, NULL), 0);
	run_until_done(env);
	assert_int_equal(seen.error, -EREMOTEIO);
	assert_string_equal(seen.done_reason, "stop refused: GenericError: no");
}

static void test_poweroff(void **state)
{
	struct env *env = *state;

	attach(env);
	fake_event("RESET", "{\"guest\": true}");
	run_until_event(env, BE_EV_RESET);
	assert_int_equal(env->b->ops->poweroff(env->b, on_done, NULL), 0);
	run_until_done(env);
	assert_int_equal(seen.error, 0);
	assert_string_equal(seen.done_reason, "QEMU quit");
	run_until_event(env, BE_EV_DETACHED);
	assert_string_equal(env->b->ops->attach_state(env->b), "connecting");
	/* It comes back by itself. */
	seen.n = 0;
	run_until_event(env, BE_EV_ATTACHED);
}

static void test_memory_and_dump(void **state)
{
	struct env *env = *state;
	char path[128], buf[16] = { 0 };
	int fd;

	attach(env);
	assert_int_equal(env->b->ops->memory_size(env->b, on_size, NULL), 0);
	run_until_done(env);
	assert_int_equal(seen.error, 0);
	assert_true(seen.bytes == 1073741824ULL + 1048576ULL);

	snprintf(path, sizeof(path), "%s/dump", scratch_dir);
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(env->b->ops->dump(env->b, fd, "kdump-lzo", on_progress, on_done, NULL), 0);
	seen.done = false;
	run_until_done(env);
	assert_int_equal(seen.error, -EOPNOTSUPP);
	assert_non_null(strstr(seen.done_reason, "this QEMU does not offer the kdump-lzo format"));

	seen.done = false;
	assert_int_equal(env->b->ops->dump(env->b, fd, "kdump-zlib", on_progress, on_done, NULL), 0);
	run_until_done(env);
	assert_int_equal(seen.error, 0);
	assert_true(seen.progress_done == 8 && seen.progress_total == 8);
	assert_int_equal(pread(fd, buf, sizeof(buf), 0), 8);
	assert_string_equal(buf, "DUMPDATA");
	close(fd);
}

static void test_dump_completed_before_reply(void **state)
{
	struct env *env = *state;
	char path[128], buf[16] = { 0 };
	int fd;

	fake.completed_first = true;
	attach(env);
	snprintf(path, sizeof(path), "%s/dump", scratch_dir);
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(env->b->ops->dump(env->b, fd, "elf", on_progress, on_done, NULL), 0);
	run_until_done(env);
	assert_int_equal(seen.error, 0);
	assert_true(seen.progress_done == 5);
	assert_int_equal(pread(fd, buf, sizeof(buf), 0), 5);
	assert_string_equal(buf, "EARLY");
	close(fd);
}

static void test_event_flood(void **state)
{
	struct env *env = *state;
	unsigned int i;

	static char flood[150 * 128];
	size_t len = 0;

	attach(env);
	/* One write: 300 small ones would fill the socket's send buffer
	 * before the loop (this thread) reads any. */
	for (i = 0; i < 150; i++)
		len += (size_t)snprintf(flood + len, sizeof(flood) - len,
					"{\"event\": \"RTC_CHANGE\", \"data\": {\"offset\": 1}, \"timestamp\": {\"seconds\": 1, \"microseconds\": 0}}\r\n");
	pthread_mutex_lock(&fake.lock);
	assert_int_equal(io_write_full(fake.conn_fd, flood, len), 0);
	pthread_mutex_unlock(&fake.lock);
	run_until_event(env, BE_EV_DETACHED);
	for (i = 0; i < seen.n && seen.ev[i].type != BE_EV_DETACHED; i++)
		;
	assert_string_equal(seen.reason[i], "more than 100 QMP events in a second, dropped");
}

static void test_cancel(void **state)
{
	struct env *env = *state;

	attach(env);
	assert_int_equal(env->b->ops->reset(env->b, on_done, NULL), 0);
	env->b->ops->cancel(env->b);
	/* The cancelled reset's reply is skipped; the next operation runs. */
	assert_int_equal(env->b->ops->resume(env->b, on_done, NULL), 0);
	run_until_done(env);
	assert_int_equal(seen.error, 0);
	assert_string_equal(seen.done_reason, "cont");
}

static void test_not_attached(void **state)
{
	struct env *env = *state;

	assert_int_equal(env->b->ops->pause(env->b, on_done, NULL), -ENOTCONN);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_run_state),
		cmocka_unit_test(test_stat_starttime),
		cmocka_unit_test(test_backend_find),
		cmocka_unit_test_setup_teardown(test_attach, setup, teardown),
		cmocka_unit_test_setup_teardown(test_panic_event, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reset_paused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reset_without_event, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pause_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_poweroff, setup, teardown),
		cmocka_unit_test_setup_teardown(test_memory_and_dump, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dump_completed_before_reply, setup, teardown),
		cmocka_unit_test_setup_teardown(test_event_flood, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_attached, setup, teardown),
	};

	log_setup("test_backend_qmp", LOG_DEBUG);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
