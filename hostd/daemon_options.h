/* SPDX-License-Identifier: MIT */
/* panicbrokerd's command line and configuration, and --check-config's print (daemon_options.c). */
#ifndef PB_DAEMON_OPTIONS_H
#define PB_DAEMON_OPTIONS_H

#include <stdbool.h>

#include "config.h"

/* Returns 0 to run, 1 to exit successfully, negative on a usage error (said on stderr). */
int daemon_parse_args(int argc, char **argv, struct config *cfg, bool *ret_check);
/* The effective configuration, as lines a configuration file takes, then "configuration OK". */
void daemon_print_config(const struct config *cfg);

#endif
