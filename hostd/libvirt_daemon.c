// SPDX-License-Identifier: MIT
/* The daemon's side of libvirt hosts: the host's domains become VMs of the set. */
#include <errno.h>
#include <string.h>

#include "backend_libvirt.h"
#include "libvirt_daemon.h"
#include "log.h"

static int lvd_add(void *ud, const struct vm_config *cfg, char *err, size_t errlen)
{
	return sup_add_backend(ud, cfg, &backend_libvirt_ops, err, errlen);
}

static void lvd_remove(void *ud, const char *name, const char *why)
{
	(void)sup_remove(ud, name, why);
}

static void lvd_restarted(void *ud, const char *name)
{
	char err[256] = "";
	int r = sup_reopen_mailbox(ud, name, err, sizeof(err));

	if (r < 0 && r != -ENOENT)
		log_error("VM %s: mailbox: cannot adopt it after the domain's start: %s; the broker channel is not served",
			  name, err[0] ? err : strerror(-r));
}

static const struct lv_host_ops lvd_ops = {
	.add = lvd_add,
	.remove = lvd_remove,
	.restarted = lvd_restarted,
};

int lv_daemon_start(sd_event *e, struct sup *sup, const struct config *cfg,
		    struct lv_host **ret)
{
	int r;

	*ret = NULL;
	if (!cfg->libvirt_uri[0])
		return 0;
	r = lv_host_new(e, cfg->libvirt_uri, cfg->libvirt_observe_all, &lvd_ops, sup, ret);
	if (r < 0)
		return r;
	lv_host_start(*ret);
	return 0;
}
