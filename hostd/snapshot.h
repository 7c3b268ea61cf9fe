/* SPDX-License-Identifier: MIT */
/*
 * Guest memory snapshots: one dump for one crash, from the space check to a
 * verified file in the crash's directory, through any VM backend.
 *
 *   crashes/<id>/.vmcore.partial   the backend writes here (our fd, mode 0600)
 *   crashes/<id>/vmcore            kdump-compressed, standard layout, phys_base fixed
 *   crashes/<id>/vmcore.elf        ELF (paging=false)
 *   crashes/<id>/dmesg.txt         the guest's log, read back out of the dump
 *
 * A dump that fails never leaves a file under a final name. Progress and the
 * outcome go into the record's "snapshot" object through crash_snapshot_*();
 * progress is saved as it comes, the outcome is left to the caller to save
 * (with whatever it decides next). The VM must be paused while the snapshot
 * runs; the caller resumes it (or not) when done. It logs the outcome.
 */
#ifndef PB_SNAPSHOT_H
#define PB_SNAPSHOT_H

#include <stdbool.h>
#include <systemd/sd-event.h>

#include "backend.h"
#include "crash.h"

#define SNAPSHOT_SPACE_MARGIN (64ULL * 1024 * 1024)
#define SNAPSHOT_JOB_TIMEOUT_USEC (10 * 60 * 1000000ULL)

struct snapshot;

/* @ok: a verified-readable file is in place (false: failed or refused).
 * The snapshot is freed already. */
typedef void (*snapshot_done_fn)(bool ok, void *userdata);

/* Dumps in flight across all VMs; a start beyond it returns -EBUSY. */
void snapshot_set_max_concurrent(unsigned int n);

/*
 * Starts the snapshot of @c's VM through @b (paused already). -EBUSY: every
 * dump slot is taken (retry later); other errors: not started. On 0, @done
 * is called exactly once, later, unless snapshot_free() comes first.
 */
int snapshot_start(sd_event *e, struct backend *b, struct crash *c,
		   const char *spool_dir, const char *format,
		   snapshot_done_fn done, void *userdata, struct snapshot **ret);
/* Abandons the snapshot without calling done (daemon exit, VM removed);
 * cancels its backend operation, so it comes before the backend's free. */
void snapshot_free(struct snapshot *s);

/* A record left "running" by a daemon that died: mark it failed, clean up. */
void snapshot_abandon_stale(struct crash *c);

#endif
