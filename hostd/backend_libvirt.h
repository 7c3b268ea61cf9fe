/* SPDX-License-Identifier: MIT */
/*
 * libvirt hosts: the daemon's one connection to libvirtd (or virtqemud),
 * which finds the domains to supervise and follows them, and the libvirt
 * VM backend (backend.h) that each of those domains runs on.
 *
 * Contract:
 *  - lv_host_new() opens nothing; lv_host_start() connects. The host then
 *    stays connected: keepalive (5 s, 3 misses) tells a dead libvirtd, and
 *    a lost connection is retried with back-off (1 s doubling to 16 s). It
 *    logs connection trouble once per change.
 *  - At every connect it lists the domains; afterwards it follows them by
 *    lifecycle events. A domain whose XML carries panicbroker's metadata
 *    (libvirt_meta.h) is handed to @ops->add with its configuration (or
 *    every domain, with the default policy, when @observe_all); one whose
 *    metadata goes away, or that is undefined, to @ops->remove. Malformed
 *    metadata is logged once per change and the defaults are used.
 *  - Before a supervised domain's QEMU is reported attached after a start,
 *    @ops->restarted is called (the mailbox file may be a new one).
 *  - A domain's VM gets backend_libvirt_ops (by its name): its events come
 *    from this connection; its operations are libvirt calls, each in a
 *    child with a connection of its own (libvirt's calls block: a destroy
 *    for as long as QEMU takes to die, a dump for as long as the dump).
 *    On the loop the host only lists, looks up and reads state and
 *    metadata: answers libvirtd gives from memory.
 *  - One host per daemon (libvirt's event loop is per process).
 */
#ifndef PB_BACKEND_LIBVIRT_H
#define PB_BACKEND_LIBVIRT_H

#include <stdbool.h>
#include <systemd/sd-event.h>

#include "backend.h"
#include "config.h"

#define LV_DEFAULT_URI "qemu:///system"

struct lv_host;

struct lv_host_ops {
	/* Supervise domain @cfg->name (backend_libvirt_ops). */
	int (*add)(void *ud, const struct vm_config *cfg, char *err, size_t errlen);
	void (*remove)(void *ud, const char *name, const char *why);
	/* The domain (re)started: a new QEMU, maybe a new mailbox file. */
	void (*restarted)(void *ud, const char *name);
};

int lv_host_new(sd_event *e, const char *uri, bool observe_all,
		const struct lv_host_ops *ops, void *ud, struct lv_host **ret);
void lv_host_start(struct lv_host *h);
void lv_host_free(struct lv_host *h);

extern const struct backend_ops backend_libvirt_ops;

#endif
