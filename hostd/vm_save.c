// SPDX-License-Identifier: MIT
/*
 * The runner's saves: one write of the record per dispatched event, told to
 * the watchers (the index, the metrics), and the retry of records the spool
 * refused (a full or read-only disk), so that none is lost while the daemon runs.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "util.h"
#include "observe.h"
#include "vm_internal.h"

/* One write of @c's record, told to the watchers (the index follows). */
static int vm_write(struct vm *vm, struct crash *c)
{
	uint64_t t0 = ts_now_monotonic_usec();
	int r = crash_save(c);

	obs_emit(&(struct obs_event){
		.type = OBS_RECORD_WRITE, .vm = vm->cfg.name, .crash = c,
		.seconds = (double)(ts_now_monotonic_usec() - t0) / USEC_PER_SEC, .saved = r >= 0,
	});
	return r;
}

static int vm_on_save_retry(sd_event_source *s, uint64_t usec, void *ud);

static void vm_save_retry_arm(struct vm *vm)
{
	int r;

	if (vm->save_retry)
		return;
	r = sd_event_add_time_relative(vm->event, &vm->save_retry, CLOCK_MONOTONIC,
				       VM_SAVE_RETRY_USEC, USEC_PER_SEC / 10, vm_on_save_retry, vm);
	if (r < 0)
		log_error("VM %s: cannot arm the record retry timer: %s; retried on the next change only",
			  vm->cfg.name, strerror(-r));
}

/* The records the spool refused, again: the open crash's and the closed ones'. */
static int vm_on_save_retry(sd_event_source *s, uint64_t usec, void *ud)
{
	struct vm *vm = ud;
	unsigned int kept = 0;

	(void)usec;
	vm->save_retry = sd_event_source_disable_unref(s);
	for (unsigned int i = 0; i < vm->n_unsaved; i++) {
		struct crash *c = vm->unsaved[i];

		if (vm_write(vm, c) < 0) {
			vm->unsaved[kept++] = c;
			continue;
		}
		log_notice("VM %s: crash record %s written at last", vm->cfg.name, c->id);
		crash_free(c);
	}
	vm->n_unsaved = kept;
	if (vm->crash && vm->save_failed)
		vm_save(vm);
	if (vm->n_unsaved)
		vm_save_retry_arm(vm);
	return 0;
}

void vm_save(struct vm *vm)
{
	int r;

	if (!vm->crash)
		return;
	if (vm->saving_later) {
		vm->dirty = true;
		return;
	}
	vm->dirty = false;
	r = vm_write(vm, vm->crash);
	if (r < 0) {
		log_error("VM %s: cannot write crash record %s: %s; kept in memory, retried every %llu s",
			  vm->cfg.name, vm->crash->id, strerror(-r),
			  (unsigned long long)(VM_SAVE_RETRY_USEC / USEC_PER_SEC));
		vm->save_failed = true;
		vm_save_retry_arm(vm);
		return;
	}
	if (vm->save_failed)
		log_notice("VM %s: crash record %s written at last", vm->cfg.name, vm->crash->id);
	vm->save_failed = false;
}

/* A closed crash whose record the spool refused: it waits for the retry. */
void vm_save_closed(struct vm *vm, struct crash *c)
{
	if (!vm->save_failed) {
		crash_free(c);
		return;
	}
	vm->save_failed = false;
	if (vm->n_unsaved < VM_UNSAVED_MAX) {
		vm->unsaved[vm->n_unsaved++] = c;
		vm_save_retry_arm(vm);
		return;
	}
	log_error("VM %s: crash %s: its record cannot be written and %d more wait already; lost",
		  vm->cfg.name, c->id, VM_UNSAVED_MAX);
	crash_free(c);
}

/* Exit: a closed crash the spool would not take, once more, then it is lost. */
void vm_save_flush(struct vm *vm)
{
	for (unsigned int i = 0; i < vm->n_unsaved; i++) {
		if (vm_write(vm, vm->unsaved[i]) < 0)
			log_error("VM %s: crash record %s could not be written before exit; lost",
				  vm->cfg.name, vm->unsaved[i]->id);
		crash_free(vm->unsaved[i]);
	}
	vm->n_unsaved = 0;
}
