/* SPDX-License-Identifier: MIT */
/*
 * The set of supervised VMs: who is supervised, added and removed while the
 * daemon runs (the API, SIGHUP), and what the spool says of their past.
 *
 * Contract:
 *  - At start, sup_new() goes through the spool's index once: every open
 *    crash goes to its VM (or waits, kept by name, for a VM of that name to
 *    be added), and each VM learns its last crash. Only open crashes' records
 *    are read, when their VM is added.
 *  - A VM removed (detached, or gone from the configuration at a reload)
 *    keeps its open crash in the spool; a VM of that name added later
 *    resumes it.
 *  - A reload touches only the configuration's VMs, not those the API added.
 *  - Names are unique; at most CFG_MAX_VMS VMs.
 *  - It logs each VM added and removed.
 */
#ifndef PB_SUPERVISOR_H
#define PB_SUPERVISOR_H

#include <json-c/json.h>
#include <systemd/sd-event.h>

#include "backend.h"
#include "config.h"
#include "spool.h"

struct sup;

struct index;
int sup_new(sd_event *e, struct spool *spool, const struct index *x, struct sup **ret);
void sup_free(struct sup *s);
size_t sup_count(const struct sup *s);
/* The VMs supervised, and how many of them have a crash open (metrics). */
void sup_counts(const struct sup *s, size_t *ret_vms, size_t *ret_open);

/*
 * Adds and starts a VM; @from_config: the configuration's (a reload may
 * remove it), else the API's. -EEXIST, -E2BIG (too many), or the VM's own.
 */
int sup_add(struct sup *s, const struct vm_config *cfg, bool from_config,
	    char *err, size_t errlen);
/*
 * sup_add() on another backend than QMP (libvirt domains): the VM is not
 * the configuration's, so a reload leaves it alone.
 */
int sup_add_backend(struct sup *s, const struct vm_config *cfg,
		    const struct backend_ops *ops, char *err, size_t errlen);
/* vm_reopen_mailbox() of the VM named @name; -ENOENT when none. */
int sup_reopen_mailbox(struct sup *s, const char *name, char *err, size_t errlen);
/* -ENOENT when no VM has that name. */
int sup_remove(struct sup *s, const char *name, const char *why);
/*
 * Makes the set what @cfg says: VMs no longer there are removed, new ones
 * added, changed ones removed and added again. Errors are logged per VM;
 * returns the number of VMs that could not be added (negated).
 */
int sup_reload(struct sup *s, const struct config *cfg);

/* A new JSON array of the VMs (vm_to_json()), in the order they were added. */
int sup_list_json(const struct sup *s, json_object **ret);

#endif
