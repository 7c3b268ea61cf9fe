/* SPDX-License-Identifier: MIT */
/*
 * Guest memory snapshots: one dump-guest-memory run for one crash, from the
 * space check to a verified file in the crash's directory.
 *
 *   crashes/<id>/.vmcore.partial   QEMU writes here (our fd, mode 0600)
 *   crashes/<id>/vmcore            kdump-compressed, standard layout, phys_base fixed
 *   crashes/<id>/vmcore.elf        ELF (paging=false)
 *   crashes/<id>/dmesg.txt         the guest's log, read back out of the dump
 *
 * A dump that fails never leaves a file under a final name. Progress and the
 * outcome go into the record's "snapshot" object. The VM must be paused
 * while the snapshot runs; the caller resumes it (or not) when done.
 */
#ifndef PB_SNAPSHOT_H
#define PB_SNAPSHOT_H

#include <stdbool.h>
#include <systemd/sd-event.h>

#include "crash.h"
#include "qmp.h"

#define SNAPSHOT_SPACE_MARGIN (64ULL * 1024 * 1024)
#define SNAPSHOT_POLL_USEC (1 * 1000000ULL)
#define SNAPSHOT_DUMP_TIMEOUT_USEC (30 * 60 * 1000000ULL)
#define SNAPSHOT_JOB_TIMEOUT_USEC (10 * 60 * 1000000ULL)

struct snapshot;

/* @ok: a verified-readable file is in place (false: failed or refused). */
typedef void (*snapshot_done_fn)(struct snapshot *s, bool ok, void *userdata);

/* Dumps in flight across all VMs; a start beyond it returns -EBUSY. */
void snapshot_set_max_concurrent(unsigned int n);

int snapshot_start(sd_event *e, struct qmp *q, struct crash *c,
		   const char *spool_dir, const char *format,
		   snapshot_done_fn done, void *userdata, struct snapshot **ret);
/* QMP events for the VM (DUMP_COMPLETED) are forwarded here. */
void snapshot_on_event(struct snapshot *s, const struct qmp_msg *ev);
/* The QMP session ended: the dump is lost. Calls done(false). */
void snapshot_on_session_lost(struct snapshot *s);
/* Abandons the snapshot without calling done (daemon exit). */
void snapshot_free(struct snapshot *s);

/* A record left "running" by a daemon that died: mark it failed, clean up. */
void snapshot_abandon_stale(struct crash *c);

#endif
