// SPDX-License-Identifier: MIT
/*
 * Unit tests: the broker channel's SIGBUS guard (hostd/chan_file.c). A
 * mailbox file truncated under the daemon while it reads the mapping costs
 * the mailbox, not the daemon; a SIGBUS anywhere else is as fatal as ever.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <panicbroker/mailbox.h>

#include "chan.h"
#include "chan_internal.h"
#include "scratch.h"

static sd_event *loop;
static struct chan *ch;
static char path[128];
static unsigned int n_malformed;

static uint64_t mono_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static void t_on_event(void *ud, const struct chan_event *ev)
{
	(void)ud;
	if (ev->type == CHAN_EV_MALFORMED)
		n_malformed++;
}

static const struct chan_ops t_ops = { .event = t_on_event };

static void t_open(void)
{
	char err[256];

	assert_int_equal(chan_open(loop, "vm1", path, &t_ops, NULL, &ch, err, sizeof(err)), 0);
	assert_int_equal(chan_start(ch), 0);
}

static int setup(void **state)
{
	(void)state;
	if (scratch_setup("/tmp/pbguard-XXXXXX") < 0 || sd_event_new(&loop) < 0)
		return -1;
	snprintf(path, sizeof(path), "%s/vm1.mbox", scratch_dir);
	n_malformed = 0;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	chan_free(ch);
	ch = NULL;
	loop = sd_event_unref(loop);
	return scratch_teardown();
}

/* A read and a write past the new end of file: zeros, no SIGBUS, then given up. */
static void test_fault_gives_the_mailbox_up(void **state)
{
	volatile uint8_t *m;
	uint8_t x;

	(void)state;
	t_open();
	m = ch->file.map;
	assert_int_equal(m[0], 'P');
	assert_int_equal(truncate(path, 0), 0);
	x = m[4096];		/* what a look racing the truncation does */
	assert_int_equal(x, 0);
	m[8192] = 1;		/* and a host write (heartbeat, ACK) */
	assert_true(ch->file.faulted);
	assert_false(chan_file_intact(&ch->file));
	chan_poll(ch);
	assert_null(ch->file.map);
	assert_int_equal(chan_session(ch, NULL), 0);
	assert_int_equal(n_malformed, 0);	/* zeros are not the guest's input */
	chan_free(ch);		/* no OFFLINE written into the void */
	ch = NULL;
}

static volatile bool stop_flapping;

/* Someone truncating and growing the file back as fast as it can. */
static void *t_flap(void *arg)
{
	(void)arg;
	while (!stop_flapping) {
		if (truncate(path, 0) < 0 || truncate(path, PB_MBOX_SIZE_DEFAULT) < 0)
			break;
	}
	return NULL;
}

/* The race itself: looks while the file flaps; the channel reopened when given up. */
static void test_race_survived(void **state)
{
	unsigned int reopened = 0, faulted = 0, looks = 0;
	uint64_t end;
	pthread_t t;

	(void)state;
	t_open();
	end = mono_usec() + 1000000;
	while (mono_usec() < end) {
		stop_flapping = false;
		assert_int_equal(pthread_create(&t, NULL, t_flap, NULL), 0);
		while (ch->file.map && mono_usec() < end) {
			chan_poll(ch);
			chan_drain(ch);
			looks++;
		}
		stop_flapping = true;
		assert_int_equal(pthread_join(t, NULL), 0);
		if (ch->file.map)
			break;
		faulted += ch->file.faulted ? 1 : 0;
		reopened++;
		chan_free(ch);
		ch = NULL;
		assert_int_equal(truncate(path, PB_MBOX_SIZE_DEFAULT), 0);
		t_open();
	}
	print_message("%u looks, mailbox given up %u times, %u of them by the SIGBUS guard\n",
		      looks, reopened, faulted);
	assert_true(reopened > 0);
}

/* A SIGBUS outside every mailbox mapping still ends the process. */
static void test_other_sigbus_fatal(void **state)
{
	char other[160];
	int status = 0;
	pid_t pid;

	(void)state;
	/* cmocka catches SIGBUS during a test: the guard's predecessor is the default. */
	assert_true(signal(SIGBUS, SIG_DFL) != SIG_ERR);
	t_open();	/* the guard is installed */
	snprintf(other, sizeof(other), "%s/other", scratch_dir);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int fd = open(other, O_RDWR | O_CREAT, 0600);
		volatile uint8_t *m;

		if (fd < 0 || ftruncate(fd, 8192) < 0)
			_exit(2);
		m = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (m == MAP_FAILED || ftruncate(fd, 0) < 0)
			_exit(2);
		(void)m[4096];
		_exit(0);	/* survived: the guard swallowed a SIGBUS not its own */
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	/* Plain: killed by SIGBUS; under ASan, its own report and exit status. */
	assert_true((WIFSIGNALED(status) && WTERMSIG(status) == SIGBUS) ||
		    (WIFEXITED(status) && WEXITSTATUS(status) != 0 && WEXITSTATUS(status) != 2));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_fault_gives_the_mailbox_up, setup, teardown),
		cmocka_unit_test_setup_teardown(test_race_survived, setup, teardown),
		cmocka_unit_test_setup_teardown(test_other_sigbus_fatal, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
