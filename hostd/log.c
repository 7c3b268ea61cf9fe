// SPDX-License-Identifier: MIT
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include "log.h"

static const char *log_prog = "panicbroker";
static int log_max = LOG_INFO;
static int log_journal;

static const char *const log_names[] = {
	[LOG_EMERG] = "emerg", [LOG_ALERT] = "alert", [LOG_CRIT] = "crit",
	[LOG_ERR] = "error",   [LOG_WARNING] = "warning", [LOG_NOTICE] = "notice",
	[LOG_INFO] = "info",   [LOG_DEBUG] = "debug",
};

/* stderr is the journal when $JOURNAL_STREAM names stderr's device:inode. */
static int log_stderr_is_journal(void)
{
	const char *e = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2)
		return 0;
	if (fstat(STDERR_FILENO, &st) < 0)
		return 0;
	return st.st_dev == dev && st.st_ino == ino;
}

void log_setup(const char *progname, int max_level)
{
	log_prog = progname;
	log_max = max_level;
	log_journal = log_stderr_is_journal();
}

int log_parse_level(const char *s)
{
	for (size_t i = 0; i < ARRAY_SIZE(log_names); i++)
		if (strcasecmp(s, log_names[i]) == 0)
			return (int)i;
	return -EINVAL;
}

void log_printf(int level, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;
	int saved = errno;

	if (level > log_max)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);

	if (log_journal) {
		fprintf(stderr, "<%d>%s\n", level, msg);
	} else {
		struct timespec ts;
		struct tm tm;
		char when[32];

		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
		fprintf(stderr, "%s.%06ldZ %s[%d] %s: %s\n", when,
			ts.tv_nsec / 1000, log_prog, (int)getpid(),
			log_names[level], msg);
	}
	errno = saved;
}
