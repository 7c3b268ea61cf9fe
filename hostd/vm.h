/* SPDX-License-Identifier: MIT */
/*
 * One supervised VM: its QMP session (attach, reattach with back-off) and the
 * state machine of its open crash, from the pvpanic event to the final action.
 * This is the daemon's policy layer; it logs, once per happening.
 */
#ifndef PB_VM_H
#define PB_VM_H

#include <systemd/sd-event.h>

#include "config.h"
#include "crash.h"
#include "spool.h"

#define VM_BACKOFF_MIN_USEC (200 * 1000ULL)
#define VM_BACKOFF_MAX_USEC (5 * 1000000ULL)
#define VM_STABLE_SESSION_USEC (10 * 1000000ULL)
#define VM_RESET_WAIT_USEC (5 * 1000000ULL)
#define VM_EVENTS_PER_SEC 100

struct vm;

/* Errors: negative errno, with a one-phrase reason in @err. */
int vm_new(sd_event *e, struct spool *spool, const struct vm_config *cfg,
	   struct vm **ret, char *err, size_t errlen);
void vm_free(struct vm *vm);
const char *vm_name(const struct vm *vm);
/* Hands an open crash found in the spool to the VM (it takes ownership). */
void vm_adopt_crash(struct vm *vm, struct crash *c);
bool vm_has_crash(const struct vm *vm);
void vm_start(struct vm *vm);

#endif
