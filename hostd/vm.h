/* SPDX-License-Identifier: MIT */
/*
 * One supervised VM: the runner that connects its backend and its broker
 * channel to the crash machine. Every event becomes a crash machine event
 * (crash_machine.h); the runner carries out the actions the machine decides
 * (the record through crash.h, the VM through its backend, deadlines on the
 * loop) and owns no crash logic itself. It logs, once per happening.
 */
#ifndef PB_VM_H
#define PB_VM_H

#include <json-c/json.h>
#include <systemd/sd-event.h>

#include "backend.h"
#include "config.h"
#include "crash.h"
#include "spool.h"

struct vm;

/* What the spool says of a VM's past crashes (the daemon's start-up scan). */
struct vm_past {
	char last_crash[SPOOL_ID_MAX];   /* "": none */
	bool last_preserved;             /* its final action left the VM as it was */
	struct be_instance last_instance;
	/* The guest session of the newest crash that knew it (its panic
	 * record's, else the crashed session; 0: none). The mailbox keeps the
	 * panic record until the next format and a restarted daemon salvages
	 * it again: it is that crash's, not a new one. */
	uint64_t last_crashed_session;
};

/* Errors: negative errno, with a one-phrase reason in @err. */
int vm_new(sd_event *e, struct spool *spool, const struct vm_config *cfg,
	   struct vm **ret, char *err, size_t errlen);
/* vm_new() on another backend than QMP (a libvirt domain's: backend_libvirt.h). */
int vm_new_backend(sd_event *e, struct spool *spool, const struct vm_config *cfg,
		   const struct backend_ops *ops, struct vm **ret, char *err, size_t errlen);
/* The mailbox file may have been replaced (libvirt's hook creates it at each
 * start): the old one is let go, the one at the path now adopted. */
int vm_reopen_mailbox(struct vm *vm, char *err, size_t errlen);
/* Stops supervising (daemon exit): an open crash resumes at the next start. */
void vm_free(struct vm *vm);
/* Stops supervising for good (detached, removed from the configuration):
 * an open crash stays open in the spool, noted in its record with @why. */
void vm_remove(struct vm *vm, const char *why);
const char *vm_name(const struct vm *vm);
const struct vm_config *vm_config(const struct vm *vm);
/* Hands an open crash found in the spool to the VM (it takes ownership). */
void vm_adopt_crash(struct vm *vm, struct crash *c);
void vm_set_past(struct vm *vm, const struct vm_past *past);
void vm_get_past(const struct vm *vm, struct vm_past *ret);
bool vm_has_crash(const struct vm *vm);
/* The open crash's id, or NULL. */
const char *vm_crash_id(const struct vm *vm);
void vm_start(struct vm *vm);
/* The API's view: name, backend, attach_state, last_crash, open_crash. */
json_object *vm_to_json(const struct vm *vm);

#endif
