// SPDX-License-Identifier: MIT
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/wait.h>

#include "common.h"
#include "job.h"

struct job {
	pid_t pid;
	int pidfd;
	int out_fd;
	char out[JOB_OUTPUT_MAX + 1]; /* +1: the NUL that makes it text */
	size_t out_len;
	sd_event_source *child;
	sd_event_source *timer;
	sd_event_source *io;
	job_done_fn done;
	void *userdata;
};

static void job_free(struct job *j)
{
	sd_event_source_disable_unref(j->child);
	sd_event_source_disable_unref(j->timer);
	sd_event_source_disable_unref(j->io);
	closep(&j->out_fd);
	closep(&j->pidfd);
	free(j);
}

/* Reads what is there; beyond JOB_OUTPUT_MAX it is read and dropped, so the
 * child never blocks on a full pipe. */
static void job_drain(struct job *j)
{
	while (j->out_fd >= 0) {
		char scratch[4096];
		bool keep = j->out_len < JOB_OUTPUT_MAX;
		char *dst = keep ? j->out + j->out_len : scratch;
		size_t room = keep ? JOB_OUTPUT_MAX - j->out_len : sizeof(scratch);
		ssize_t n = read(j->out_fd, dst, room);

		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0 || (n < 0 && errno != EAGAIN)) {
			/* EOF (or a broken pipe): nothing more will come. */
			j->io = sd_event_source_disable_unref(j->io);
			closep(&j->out_fd);
			return;
		}
		if (n < 0)
			return;
		if (keep)
			j->out_len += (size_t)n;
	}
}

static int job_on_io(sd_event_source *s, int fd, uint32_t revents, void *ud)
{
	(void)s;
	(void)fd;
	(void)revents;
	job_drain(ud);
	return 0;
}

static void job_finish(struct job *j, int status)
{
	job_drain(j);
	j->out[j->out_len] = '\0';
	j->done(j, status, j->out, j->out_len, j->userdata);
	job_free(j);
}

/* The pidfd turns readable when the child exits; reap it ourselves. */
static int job_on_exit(sd_event_source *s, int fd, uint32_t revents, void *ud)
{
	struct job *j = ud;
	int wstatus, status;

	(void)s;
	(void)fd;
	(void)revents;
	if (waitpid(j->pid, &wstatus, WNOHANG) != j->pid)
		return 0;
	if (WIFEXITED(wstatus))
		status = WEXITSTATUS(wstatus);
	else
		status = 128 + WTERMSIG(wstatus);
	job_finish(j, status);
	return 0;
}

static void job_kill(struct job *j)
{
	/* Both fail only if the child is gone already, which is what we want. */
	(void)kill(j->pid, SIGKILL);
	(void)waitpid(j->pid, NULL, 0);
}

static int job_on_timeout(sd_event_source *s, uint64_t usec, void *ud)
{
	struct job *j = ud;

	(void)s;
	(void)usec;
	job_kill(j);
	job_finish(j, -ETIMEDOUT);
	return 0;
}

/* In the child: never returns. */
_Noreturn static void job_child(job_fn fn, void *fn_data, char *const argv[],
				int out_fd)
{
	int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	sigset_t none;

	/* The daemon blocks signals it handles through the loop. */
	sigemptyset(&none);
	if (sigprocmask(SIG_SETMASK, &none, NULL) < 0 || devnull < 0 ||
	    dup2(devnull, STDIN_FILENO) < 0)
		_exit(127);
	if (argv) {
		if (dup2(out_fd, STDOUT_FILENO) < 0 || dup2(out_fd, STDERR_FILENO) < 0)
			_exit(127);
		execvp(argv[0], argv);
		/* The parent reads this as the job's output; nothing else to do
		 * if it cannot be written. */
		(void)dprintf(STDERR_FILENO, "cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	if (dup2(devnull, STDOUT_FILENO) < 0 || dup2(devnull, STDERR_FILENO) < 0)
		_exit(127);
	_exit(fn(out_fd, fn_data));
}

static int job_start(sd_event *e, job_fn fn, void *fn_data, char *const argv[],
		     uint64_t timeout_usec, job_done_fn done, void *userdata,
		     struct job **ret)
{
	_cleanup_close_ int rd = -1, wr = -1;
	struct job *j;
	int pipefd[2], r;
	pid_t pid;

	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return -errno;
	rd = pipefd[0];
	wr = pipefd[1];
	if (fcntl(rd, F_SETFL, O_NONBLOCK) < 0)
		return -errno;
	j = calloc(1, sizeof(*j));
	if (!j)
		return -ENOMEM;
	j->out_fd = -1;
	j->pidfd = -1;
	pid = fork();
	if (pid < 0) {
		r = -errno;
		free(j);
		return r;
	}
	if (pid == 0) {
		closep(&rd);
		job_child(fn, fn_data, argv, wr);
	}
	closep(&wr);
	j->pid = pid;
	j->out_fd = TAKE_FD(rd);
	j->done = done;
	j->userdata = userdata;
	j->pidfd = pidfd_open(pid, 0);
	r = j->pidfd < 0 ? -errno : 0;
	if (r >= 0)
		r = sd_event_add_io(e, &j->child, j->pidfd, EPOLLIN, job_on_exit, j);
	if (r >= 0)
		r = sd_event_add_io(e, &j->io, j->out_fd, EPOLLIN, job_on_io, j);
	if (r >= 0)
		r = sd_event_add_time_relative(e, &j->timer, CLOCK_MONOTONIC,
					       timeout_usec, 0, job_on_timeout, j);
	if (r < 0) {
		job_kill(j);
		job_free(j);
		return r;
	}
	*ret = j;
	return 0;
}

int job_run_fn(sd_event *e, job_fn fn, void *fn_data, uint64_t timeout_usec,
	       job_done_fn done, void *userdata, struct job **ret)
{
	return job_start(e, fn, fn_data, NULL, timeout_usec, done, userdata, ret);
}

int job_run_argv(sd_event *e, char *const argv[], uint64_t timeout_usec,
		 job_done_fn done, void *userdata, struct job **ret)
{
	return job_start(e, NULL, NULL, argv, timeout_usec, done, userdata, ret);
}

void job_cancel(struct job *j)
{
	if (!j)
		return;
	job_kill(j);
	job_free(j);
}
