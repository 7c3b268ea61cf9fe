/* SPDX-License-Identifier: MIT */
/*
 * A scratch directory for a unit test suite's setup/teardown:
 * scratch_dir is created from the template and removed with its contents.
 */
#ifndef PB_TEST_SCRATCH_H
#define PB_TEST_SCRATCH_H

#include <stdio.h>
#include <stdlib.h>

static char scratch_dir[64];

static inline int scratch_setup(const char *tmpl)
{
	snprintf(scratch_dir, sizeof(scratch_dir), "%s", tmpl);
	return mkdtemp(scratch_dir) ? 0 : -1;
}

static inline int scratch_teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", scratch_dir);
	return system(cmd) == 0 ? 0 : -1;
}

#endif
