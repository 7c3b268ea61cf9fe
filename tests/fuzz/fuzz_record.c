// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: what the daemon reads back from its spool at start, a
 * record.json (a disk can corrupt it, an operator can edit it) through the
 * spool's reader, the index's summary, and crash_load(); and an index line
 * back through the index.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crash.h"
#include "index.h"
#include "spool.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct spool *fuzz_spool;
static char fuzz_dir[64];

static void fuzz_setup(void)
{
	char err[256];

	snprintf(fuzz_dir, sizeof(fuzz_dir), "/tmp/fuzz_record.%d", (int)getpid());
	if (spool_open(fuzz_dir, true, &fuzz_spool, err, sizeof(err)) < 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char id[] = "20270115T080000.000000Z-vm1";
	char path[256], err[256];
	json_object *rec = NULL;
	struct crash_summary cs;
	struct crash *c = NULL;
	struct index *x = NULL;
	int fd;

	if (!fuzz_spool)
		fuzz_setup();
	snprintf(path, sizeof(path), "%s/crashes/%s", fuzz_dir, id);
	mkdir(path, 0750);
	snprintf(path, sizeof(path), "%s/crashes/%s/record.json", fuzz_dir, id);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0640);
	if (fd < 0)
		return 0;
	if (write(fd, data, size) != (ssize_t)size) {
		close(fd);
		return 0;
	}
	close(fd);
	if (spool_read_record(fuzz_spool, id, &rec, err, sizeof(err)) == 0) {
		index_summarise(id, rec, &cs);
		if (crash_load(fuzz_spool, id, rec, &c, err, sizeof(err)) == 0)
			crash_free(c);
		json_object_put(rec);
	}
	/* The same bytes as the index file: a cache it must survive. */
	snprintf(path, sizeof(path), "%s/index.tsv", fuzz_dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0640);
	if (fd >= 0) {
		if (write(fd, data, size) == (ssize_t)size && index_open(fuzz_spool, &x, err, sizeof(err)) == 0)
			index_free(x);
		close(fd);
	}
	return 0;
}
