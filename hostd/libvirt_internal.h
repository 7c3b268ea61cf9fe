/* SPDX-License-Identifier: MIT */
/* Inside the libvirt backend only: the host's domains and their backends. */
#ifndef PB_LIBVIRT_INTERNAL_H
#define PB_LIBVIRT_INTERNAL_H

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "backend_libvirt.h"
#include "job.h"

struct lvb;

/* One domain the host knows of (listed or seen in an event). */
struct lv_dom {
	struct lv_dom *next;
	char name[VM_NAME_MAX + 1];
	bool supervised;               /* handed to ops->add */
	bool seen;                     /* in the listing of this connect */
	char meta_err[CFG_ERR_MAX];    /* the last malformed-metadata complaint */
	struct vm_config cfg;
	struct lvb *be;                /* its VM's backend, once created */
};

struct lv_host {
	sd_event *event;
	char uri[256];
	bool observe_all;
	const struct lv_host_ops *ops;
	void *ud;
	virConnectPtr conn;            /* NULL: not connected */
	int cb_lifecycle, cb_reboot, cb_meta;
	sd_event_source *retry;
	uint64_t backoff_usec;
	bool said_down;
	struct lv_dom *doms;
};

/* The backend of a domain's VM. */
struct lvb {
	struct backend base;
	struct lv_host *host;
	char name[VM_NAME_MAX + 1];
	sd_event *event;
	const struct backend_events *events;
	void *ud;
	bool attached;
	sd_event_source *attach_defer;
	/* The operation in flight, in a child (libvirt_call.c). */
	bool busy;
	be_done_fn done;
	be_size_fn size_done;
	void *done_ud;
	struct job *job;
	bool destroying;               /* our poweroff: its STOPPED is ours */
	unsigned int own_resets;       /* REBOOT events our resets will cause */
};

/* The host of this process (lv_host_new), for backend creation by name. */
extern struct lv_host *lv_host_current;

struct lv_dom *lv_host_find(struct lv_host *h, const char *name);
/* A new reference to the domain, or NULL (-ENOTCONN/-ENOENT in @ret_error). */
virDomainPtr lv_host_lookup(struct lv_host *h, const char *name, int *ret_error);
/* Negative errno for libvirt's last error, its message in @reason. */
int lv_last_error(char *reason, size_t len);

/* backend_libvirt.c: what the host tells a domain's backend. */
void lvb_connected(struct lvb *b);          /* attach if the domain runs */
void lvb_disconnected(struct lvb *b, const char *why);
void lvb_lifecycle(struct lvb *b, int event, int detail);
void lvb_reboot(struct lvb *b);

/* libvirt_call.c: one libvirt call in a child with its own connection. */
enum lv_call {
	LV_CALL_PAUSE,
	LV_CALL_RESUME,
	LV_CALL_RESET,
	LV_CALL_POWEROFF,
	LV_CALL_MEMORY,
	LV_CALL_DUMP,
};

/* Starts @call (b->job); its end comes to lvb_call_finished(). */
int lv_call_start(struct lvb *b, enum lv_call call, int fd, const char *format);
void lvb_call_finished(struct lvb *b, int error, const char *reason, uint64_t value);

#endif
