/* SPDX-License-Identifier: MIT */
/*
 * Logging for the programs (panicbrokerd, pbctl). Libraries never log: they
 * return a negative errno and, where a reason helps, fill an error buffer;
 * the program logs once, at the boundary.
 *
 * Under systemd (stderr connected to the journal) lines carry an sd-daemon
 * "<N>" priority prefix; otherwise a UTC timestamp and a level word.
 */
#ifndef PB_LOG_H
#define PB_LOG_H

#include <syslog.h>

#include "common.h"

void log_setup(const char *progname, int max_level);
int log_parse_level(const char *s);
void log_printf(int level, const char *fmt, ...) _printf_(2, 3);

#define log_error(...) log_printf(LOG_ERR, __VA_ARGS__)
#define log_warn(...) log_printf(LOG_WARNING, __VA_ARGS__)
#define log_notice(...) log_printf(LOG_NOTICE, __VA_ARGS__)
#define log_info(...) log_printf(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_printf(LOG_DEBUG, __VA_ARGS__)

#endif
