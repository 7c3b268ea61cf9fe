// SPDX-License-Identifier: MIT
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
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
	char out[JOB_OUTPUT_MAX + 1];
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

static void job_drain(struct job *j)
{
	for (;;) {
		char scratch[4096];
		char *dst = j->out_len < JOB_OUTPUT_MAX ? j->out + j->out_len : scratch;
		size_t room = j->out_len < JOB_OUTPUT_MAX ? JOB_OUTPUT_MAX - j->out_len
							   : sizeof(scratch);
		ssize_t n = read(j->out_fd, dst, room);

		if (n <= 0)
			return;
		if (dst != scratch)
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
	j->done(j, status, j->out, j->userdata);
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

static int job_on_timeout(sd_event_source *s, uint64_t usec, void *ud)
{
	struct job *j = ud;

	(void)s;
	(void)usec;
	kill(j->pid, SIGKILL);
	waitpid(j->pid, NULL, 0);
	job_finish(j, -ETIMEDOUT);
	return 0;
}

static int job_start(sd_event *e, job_fn fn, void *fn_data, char *const argv[],
		     uint64_t timeout_usec, job_done_fn done, void *userdata,
		     struct job **ret)
{
	struct job *j;
	int pipefd[2], r;
	pid_t pid;

	j = calloc(1, sizeof(*j));
	if (!j)
		return -ENOMEM;
	j->out_fd = -1;
	j->pidfd = -1;
	if (pipe2(pipefd, O_CLOEXEC) < 0) {
		free(j);
		return -errno;
	}
	pid = fork();
	if (pid < 0) {
		r = -errno;
		close(pipefd[0]);
		close(pipefd[1]);
		free(j);
		return r;
	}
	if (pid == 0) {
		int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
		sigset_t none;

		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		dup2(devnull, STDIN_FILENO);
		dup2(pipefd[1], STDOUT_FILENO);
		dup2(pipefd[1], STDERR_FILENO);
		if (argv) {
			execvp(argv[0], argv);
			dprintf(STDERR_FILENO, "cannot run %s: %s\n", argv[0], strerror(errno));
			_exit(127);
		}
		r = fn(fn_data);
		fflush(NULL);
		_exit(r);
	}
	close(pipefd[1]);
	j->pid = pid;
	j->out_fd = pipefd[0];
	j->done = done;
	j->userdata = userdata;
	fcntl(j->out_fd, F_SETFL, O_NONBLOCK);
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
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
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
	kill(j->pid, SIGKILL);
	waitpid(j->pid, NULL, 0);
	job_free(j);
}
