/* SPDX-License-Identifier: MIT */
/* panicbrokerd --libvirt: the host's supervised domains are VMs of @sup. */
#ifndef PB_LIBVIRT_DAEMON_H
#define PB_LIBVIRT_DAEMON_H

#include "backend_libvirt.h"
#include "supervisor.h"

/* Nothing when the configuration names no libvirt (*ret = NULL). */
int lv_daemon_start(sd_event *e, struct sup *sup, const struct config *cfg,
		    struct lv_host **ret);

#endif
