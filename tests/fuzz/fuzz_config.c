// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: a configuration file (panicbrokerd -c FILE, read again
 * at SIGHUP), every line through the one parser, VM specs included.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char path[64];
	struct config cfg;
	char err[CFG_ERR_MAX];
	FILE *f;

	if (!path[0])
		snprintf(path, sizeof(path), "/tmp/fuzz_config.%d", (int)getpid());
	f = fopen(path, "w");
	if (!f)
		return 0;
	if (fwrite(data, 1, size, f) != size) {
		fclose(f);
		return 0;
	}
	fclose(f);
	cfg_init(&cfg);
	(void)cfg_load_file(&cfg, path, err, sizeof(err)); /* errors are the point */
	cfg_free(&cfg);
	return 0;
}
