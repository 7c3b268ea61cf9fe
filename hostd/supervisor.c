// SPDX-License-Identifier: MIT
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "crash.h"
#include "index.h"
#include "log.h"
#include "observe.h"
#include "supervisor.h"
#include "vm.h"

/* What the spool said of a VM name that is not supervised now. */
struct sup_known {
	char name[VM_NAME_MAX + 1];
	struct vm_past past;
	char **open;          /* ids of open crashes, oldest first */
	size_t n_open;
};

struct sup {
	sd_event *event;
	struct spool *spool;
	struct vm **vms;
	bool *from_config;    /* per VM: the configuration's, else the API's */
	size_t n_vms;
	struct sup_known *known;
	size_t n_known;
};

static void sup_known_clear(struct sup_known *k)
{
	for (size_t i = 0; i < k->n_open; i++)
		free(k->open[i]);
	free(k->open);
	k->open = NULL;
	k->n_open = 0;
}

static struct sup_known *sup_known_find(struct sup *s, const char *name, bool create)
{
	struct sup_known *k;

	for (size_t i = 0; i < s->n_known; i++)
		if (strcmp(s->known[i].name, name) == 0)
			return &s->known[i];
	if (!create)
		return NULL;
	k = realloc(s->known, (s->n_known + 1) * sizeof(*k));
	if (!k)
		return NULL;
	s->known = k;
	k = &s->known[s->n_known++];
	memset(k, 0, sizeof(*k));
	snprintf(k->name, sizeof(k->name), "%s", name);
	return k;
}

/* What the index says of one crash: its VM's past, and whether it is open. */
static void sup_note(struct sup *s, const struct crash_summary *cs)
{
	struct sup_known *k;
	char **open;

	if (!name_is_valid(cs->vm))
		return;
	k = sup_known_find(s, cs->vm, true);
	if (!k) {
		log_warn("crash %s: out of memory noting it, ignoring", cs->id);
		return;
	}
	/* The index is sorted by id, by detection time: the last one is the newest. */
	snprintf(k->past.last_crash, sizeof(k->past.last_crash), "%s", cs->id);
	k->past.last_preserved = strcmp(cs->outcome, "preserved") == 0;
	k->past.last_instance = cs->instance;
	/* The newest crash's guest session (its panic record's): salvaged again, it is not new. */
	if (cs->panic_session)
		k->past.last_crashed_session = cs->panic_session;
	if (cs->state == CRASH_CLOSED)
		return;
	open = realloc(k->open, (k->n_open + 1) * sizeof(*open));
	if (!open || !(open[k->n_open] = strdup(cs->id))) {
		if (open)
			k->open = open;
		log_warn("crash %s: out of memory noting it open, ignoring", cs->id);
		return;
	}
	k->open = open;
	k->n_open++;
}

int sup_new(sd_event *e, struct spool *spool, const struct index *x, struct sup **ret)
{
	struct sup *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	s->event = sd_event_ref(e);
	s->spool = spool;
	for (size_t i = 0; i < index_count(x); i++)
		sup_note(s, index_at(x, i));
	*ret = s;
	return 0;
}

static void sup_known_drop(struct sup *s, struct sup_known *k)
{
	size_t i = (size_t)(k - s->known);

	sup_known_clear(k);
	memmove(&s->known[i], &s->known[i + 1], (s->n_known - i - 1) * sizeof(*k));
	s->n_known--;
}

/* Gives a new VM what the spool said of its name: its past, its open crashes. */
static void sup_resume(struct sup *s, struct vm *vm)
{
	struct sup_known *k = sup_known_find(s, vm_name(vm), false);
	char err[256];

	if (!k)
		return;
	vm_set_past(vm, &k->past);
	for (size_t i = 0; i < k->n_open; i++) {
		json_object *rec = NULL;
		struct crash *c;
		int r;

		err[0] = '\0';
		r = spool_read_record(s->spool, k->open[i], &rec, err, sizeof(err));
		if (r >= 0) {
			r = crash_load(s->spool, k->open[i], rec, &c, err, sizeof(err));
			json_object_put(rec);
		}
		if (r < 0) {
			log_warn("crash %s: %s, ignoring", k->open[i], err[0] ? err : strerror(-r));
			continue;
		}
		if (c->state == CRASH_CLOSED) {
			crash_free(c); /* closed since the scan */
			continue;
		}
		log_notice("VM %s: resuming open crash %s (state %s)", vm_name(vm), c->id,
			   crash_state_to_string(c->state));
		vm_adopt_crash(vm, c);
	}
	sup_known_drop(s, k);
}

static struct vm **sup_find(struct sup *s, const char *name)
{
	for (size_t i = 0; i < s->n_vms; i++)
		if (strcmp(vm_name(s->vms[i]), name) == 0)
			return &s->vms[i];
	return NULL;
}

static int sup_add_ops(struct sup *s, const struct vm_config *cfg,
		       const struct backend_ops *ops, bool from_config, char *err, size_t errlen);

int sup_add(struct sup *s, const struct vm_config *cfg, bool from_config,
	    char *err, size_t errlen)
{
	return sup_add_ops(s, cfg, &backend_qmp_ops, from_config, err, errlen);
}

int sup_add_backend(struct sup *s, const struct vm_config *cfg,
		    const struct backend_ops *ops, char *err, size_t errlen)
{
	return sup_add_ops(s, cfg, ops, false, err, errlen);
}

int sup_reopen_mailbox(struct sup *s, const char *name, char *err, size_t errlen)
{
	for (size_t i = 0; i < s->n_vms; i++)
		if (strcmp(vm_name(s->vms[i]), name) == 0)
			return vm_reopen_mailbox(s->vms[i], err, errlen);
	return -ENOENT;
}

static int sup_add_ops(struct sup *s, const struct vm_config *cfg,
		       const struct backend_ops *ops, bool from_config, char *err, size_t errlen)
{
	struct vm **vms, *vm;
	bool *fc;
	int r;

	if (sup_find(s, cfg->name))
		return err_set(err, errlen, -EEXIST, "VM %s is supervised already", cfg->name);
	if (s->n_vms >= CFG_MAX_VMS)
		return err_set(err, errlen, -E2BIG, "already %d VMs, the most one daemon supervises",
			       CFG_MAX_VMS);
	vms = realloc(s->vms, (s->n_vms + 1) * sizeof(*vms));
	if (!vms)
		return err_set(err, errlen, -ENOMEM, "out of memory");
	s->vms = vms;
	fc = realloc(s->from_config, (s->n_vms + 1) * sizeof(*fc));
	if (!fc)
		return err_set(err, errlen, -ENOMEM, "out of memory");
	s->from_config = fc;
	r = vm_new_backend(s->event, s->spool, cfg, ops, &vm, err, errlen);
	if (r < 0)
		return r;
	s->from_config[s->n_vms] = from_config;
	s->vms[s->n_vms++] = vm;
	sup_resume(s, vm);
	vm_start(vm);
	obs_emit(&(struct obs_event){ .type = OBS_VM_ADDED, .vm = cfg->name });
	if (ops != &backend_qmp_ops)
		log_info("VM %s: supervised (%s%s%s)", cfg->name, ops->name,
			 cfg->mailbox_path[0] ? ", mailbox=" : "", cfg->mailbox_path);
	else
		log_info("VM %s: supervised (qmp=%s%s%s)", cfg->name, cfg->qmp_path,
			 cfg->mailbox_path[0] ? ", mailbox=" : "", cfg->mailbox_path);
	return 0;
}

int sup_remove(struct sup *s, const char *name, const char *why)
{
	struct vm **slot = sup_find(s, name);
	char vname[VM_NAME_MAX + 1], open_id[SPOOL_ID_MAX] = "";
	struct sup_known *k;
	struct vm_past past;
	size_t i;

	if (!slot)
		return -ENOENT;
	i = (size_t)(slot - s->vms);
	snprintf(vname, sizeof(vname), "%s", name); /* @name may be the VM's own */
	vm_get_past(*slot, &past);
	if (vm_crash_id(*slot))
		snprintf(open_id, sizeof(open_id), "%s", vm_crash_id(*slot));
	vm_remove(*slot, why);
	memmove(&s->vms[i], &s->vms[i + 1], (s->n_vms - i - 1) * sizeof(*s->vms));
	memmove(&s->from_config[i], &s->from_config[i + 1],
		(s->n_vms - i - 1) * sizeof(*s->from_config));
	s->n_vms--;
	/* A VM of this name added again resumes from here. */
	k = sup_known_find(s, vname, true);
	if (k) {
		char **open = open_id[0] ? realloc(k->open, (k->n_open + 1) * sizeof(*open)) : NULL;

		k->past = past;
		if (open) {
			k->open = open;
			if ((open[k->n_open] = strdup(open_id)))
				k->n_open++;
		}
	}
	if (open_id[0])
		log_info("VM %s: its open crash %s stays in the spool", vname, open_id);
	log_info("VM %s: no longer supervised (%s)", vname, why);
	obs_emit(&(struct obs_event){ .type = OBS_VM_REMOVED, .vm = vname });
	return 0;
}

static bool sup_same_config(const struct vm_config *a, const struct vm_config *b)
{
	return memcmp(a, b, sizeof(*a)) == 0;
}

int sup_reload(struct sup *s, const struct config *cfg)
{
	char err[CFG_ERR_MAX];
	int failed = 0;

	/* Gone or changed: removed (a changed one is added again below). The
	 * VMs attached through the API are not the configuration's to remove. */
	for (size_t i = s->n_vms; i-- > 0;) {
		const struct vm_config *now = vm_config(s->vms[i]);
		size_t k;

		if (!s->from_config[i])
			continue;
		for (k = 0; k < cfg->n_vms; k++)
			if (strcmp(cfg->vms[k].name, now->name) == 0)
				break;
		if (k < cfg->n_vms && sup_same_config(&cfg->vms[k], now))
			continue;
		sup_remove(s, now->name, k < cfg->n_vms ? "its configuration changed" :
							 "removed from the configuration");
	}
	for (size_t k = 0; k < cfg->n_vms; k++) {
		int r;

		if (sup_find(s, cfg->vms[k].name))
			continue;
		r = sup_add(s, &cfg->vms[k], true, err, sizeof(err));
		if (r < 0) {
			log_error("VM %s: cannot supervise it: %s", cfg->vms[k].name,
				  r == -ENOMEM ? strerror(ENOMEM) : err);
			failed++;
		}
	}
	return -failed;
}

int sup_list_json(const struct sup *s, json_object **ret)
{
	json_object *arr = json_object_new_array();

	if (!arr)
		return -ENOMEM;
	for (size_t i = 0; i < s->n_vms; i++) {
		json_object *o = vm_to_json(s->vms[i]);

		if (!o || json_object_array_add(arr, o) < 0) {
			json_object_put(o);
			json_object_put(arr);
			return -ENOMEM;
		}
	}
	*ret = arr;
	return 0;
}

size_t sup_count(const struct sup *s)
{
	return s->n_vms;
}

void sup_counts(const struct sup *s, size_t *ret_vms, size_t *ret_open)
{
	size_t open = 0;

	for (size_t i = 0; i < s->n_vms; i++)
		open += vm_has_crash(s->vms[i]);
	*ret_vms = s->n_vms;
	*ret_open = open;
}

void sup_free(struct sup *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n_vms; i++)
		vm_free(s->vms[i]);
	free(s->vms);
	free(s->from_config);
	for (size_t i = 0; i < s->n_known; i++)
		sup_known_clear(&s->known[i]);
	free(s->known);
	sd_event_unref(s->event);
	free(s);
}
