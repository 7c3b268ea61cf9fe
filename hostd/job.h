/* SPDX-License-Identifier: MIT */
/*
 * Child jobs on the event loop: work that would block the loop (rewriting a
 * dump, running makedumpfile) runs in a child process with a deadline. The
 * callback gets the exit status and up to JOB_OUTPUT_MAX bytes of output:
 *  - job_run_fn(): the bytes the child function wrote to @out_fd, as they
 *    are (a typed result, say; the caller checks their length);
 *  - job_run_argv(): what the program wrote to stdout/stderr, as text
 *    (NUL-terminated; @len excludes the NUL).
 * The library never logs.
 */
#ifndef PB_JOB_H
#define PB_JOB_H

#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#define JOB_OUTPUT_MAX (16 * 1024)

struct job;

/* @status: exit code (0..255), or 128+signal, or -ETIMEDOUT. The job is
 * freed after the callback returns. */
typedef void (*job_done_fn)(struct job *j, int status, const void *output,
			    size_t len, void *userdata);
/*
 * Runs in the child, with stdin, stdout and stderr on /dev/null; what it
 * writes to @out_fd (a pipe) is the output. Its return value is the exit
 * code.
 */
typedef int (*job_fn)(int out_fd, void *userdata);

int job_run_fn(sd_event *e, job_fn fn, void *fn_data, uint64_t timeout_usec,
	       job_done_fn done, void *userdata, struct job **ret);
/* @argv[0] is looked up in $PATH; stdin is /dev/null. */
int job_run_argv(sd_event *e, char *const argv[], uint64_t timeout_usec,
		 job_done_fn done, void *userdata, struct job **ret);
/* Kills a running job (SIGKILL) without calling its callback. NULL: no-op. */
void job_cancel(struct job *j);

#endif
