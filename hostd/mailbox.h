/* SPDX-License-Identifier: MIT */
/*
 * The host side of the broker channel v1 (protocol/SPEC.md): one VM's
 * mailbox file (the memory of its ivshmem-plain device), formatted at
 * start, polled from the event loop. Guest input is only ever read through
 * the pb_mbox_* library's private copies; what the guest says goes into the
 * VM's open crash record (docs/record.md) or waits for the next one.
 * This is policy, like vm.c: it logs, once per happening.
 */
#ifndef PB_MAILBOX_H
#define PB_MAILBOX_H

#include <systemd/sd-event.h>

#include "crash.h"

struct mailbox;

struct mailbox_ops {
	/* The VM's open crash, or NULL. */
	struct crash *(*crash)(void *ud);
	/* The open crash's record changed: persist it. */
	void (*save)(void *ud);
	/*
	 * The open crash's kdump session opened or reported (see its
	 * kdump_ks): re-arm its deadline, or act. Called after the poll,
	 * before the record is saved; the crash may be closed on return.
	 */
	void (*kdump)(void *ud);
	/* A NORMAL session opened: the guest booted (again). After the save. */
	void (*booted)(void *ud, uint64_t session);
};

/*
 * Creates (0600, 1 MiB) or adopts the file at @path, maps it, salvages a
 * COMPLETE panic slot and formats it with a new host generation; then
 * polls it on a timer. Errors: negative errno, reason in @err.
 */
int mailbox_open(sd_event *e, const char *vm, const char *path,
		 const struct mailbox_ops *ops, void *ud, struct mailbox **ret,
		 char *err, size_t errlen);
/* Polls now (the pvpanic event); then the timer goes on as before. */
void mailbox_poll(struct mailbox *m);
/*
 * Reads what the guest left before the VM resets or stops (the kdump
 * kernel's last reports, sent right before it reboots), without the
 * pvpanic event's look at the panic slot.
 */
void mailbox_drain(struct mailbox *m);
/* A panic record (salvaged at start, or read early) waits for a crash. */
bool mailbox_has_panic(const struct mailbox *m);
/*
 * A crash was just opened (or resumed): what the guest said before goes
 * into it, and so does which session crashed, when the mailbox knows.
 */
void mailbox_attach(struct mailbox *m);
/*
 * The open crash is closing: a KDUMP session naming its crashed session
 * is not taken by a later crash (the last few are remembered).
 */
void mailbox_crash_closed(struct mailbox *m, const struct crash *c);
/* Writes host state OFFLINE, unmaps, closes. */
void mailbox_free(struct mailbox *m);

#endif
