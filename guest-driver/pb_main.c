// SPDX-License-Identifier: GPL-2.0-only
/*
 * panicbroker: tell the hypervisor about a panic before kdump runs.
 *
 * Load and unload, module parameters, and the one line that says how the
 * module is armed. This file alone decides the order in which the parts
 * are set up and torn down; the work itself is in pb_tier.c.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/crash_dump.h>
#include <linux/errno.h>
#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/string.h>

#include <panicbroker/pvpanic.h>

#include "panicbroker.h"

static char *pb_param_pvpanic = "auto";
module_param_named(pvpanic, pb_param_pvpanic, charp, 0444);
MODULE_PARM_DESC(pvpanic,
		 "pvpanic device to signal: auto (ISA/ACPI, then PCI), isa, pci or off (default: auto)");

static unsigned int pb_param_ioport;
module_param_named(ioport, pb_param_ioport, uint, 0444);
MODULE_PARM_DESC(ioport,
		 "Use the ISA pvpanic device at this I/O port instead of looking it up in ACPI (default: 0, look it up)");

static bool pb_param_require_device;
module_param_named(require_device, pb_param_require_device, bool, 0444);
MODULE_PARM_DESC(require_device,
		 "Refuse to load if no pvpanic device is found (default: N, load with nothing to signal)");

static bool pb_param_require_kprobe;
module_param_named(require_kprobe, pb_param_require_kprobe, bool, 0444);
MODULE_PARM_DESC(require_kprobe,
		 "Refuse to load if __crash_kexec cannot be kprobed (default: N, use the panic notifier only)");

static bool pb_param_mailbox = true;
module_param_named(mailbox, pb_param_mailbox, bool, 0444);
MODULE_PARM_DESC(mailbox,
		 "Use the broker channel (an ivshmem-plain mailbox formatted by panicbrokerd) for the panic record, UNLOAD and kdump reports (default: Y)");

static unsigned int pb_param_unload_wait_ms = PB_MBOX_UNLOAD_WAIT_MS;
module_param_named(unload_wait_ms, pb_param_unload_wait_ms, uint, 0444);
MODULE_PARM_DESC(unload_wait_ms,
		 "At a panic, wait at most this long (ms, 0..1000) for the host to acknowledge UNLOAD before going on into kdump; the host may ask for less (default: 100)");

static const char *const pb_modes[] = {
	[PB_PVPANIC_AUTO] = "auto",
	[PB_PVPANIC_ISA] = "isa",
	[PB_PVPANIC_PCI] = "pci",
	[PB_PVPANIC_OFF] = "off",
};

static struct pb_pvpanic pb_dev;

/* What pb_pvpanic_find() looked for, for the "not found" messages. */
static const char *pb_looked_for(enum pb_pvpanic_mode mode)
{
	switch (mode) {
	case PB_PVPANIC_AUTO:
		return pb_param_ioport ? "ISA at ioport=, PCI 1b36:0011" :
					 "ACPI QEMU0001, PCI 1b36:0011";
	case PB_PVPANIC_ISA:
		return pb_param_ioport ? "ISA at ioport=" : "ACPI QEMU0001";
	case PB_PVPANIC_PCI:
		return "PCI 1b36:0011";
	case PB_PVPANIC_OFF:
		break;
	}
	return "nothing (pvpanic=off)";
}

static int pb_parse_params(enum pb_pvpanic_mode *mode)
{
	int i;

	i = sysfs_match_string(pb_modes, pb_param_pvpanic);
	if (i < 0) {
		pr_err("pvpanic=%s: expected auto, isa, pci or off\n",
		       pb_param_pvpanic);
		return -EINVAL;
	}
	*mode = i;

	if (pb_param_ioport > 0xffff) {
		pr_err("ioport=0x%x: not an I/O port\n", pb_param_ioport);
		return -EINVAL;
	}
	if (pb_param_ioport &&
	    (*mode == PB_PVPANIC_PCI || *mode == PB_PVPANIC_OFF)) {
		pr_err("ioport= needs pvpanic=isa or auto, not pvpanic=%s\n",
		       pb_modes[*mode]);
		return -EINVAL;
	}
	if (pb_param_unload_wait_ms > PB_MBOX_UNLOAD_WAIT_MAX_MS) {
		pr_err("unload_wait_ms=%u: at most %u\n",
		       pb_param_unload_wait_ms, PB_MBOX_UNLOAD_WAIT_MAX_MS);
		return -EINVAL;
	}
	if (pb_param_require_device && *mode == PB_PVPANIC_OFF) {
		pr_err("require_device=1 contradicts pvpanic=off\n");
		return -EINVAL;
	}
	return 0;
}

/* Warn at load about events the tier will have to hold back. */
static void pb_check_caps(const struct pb_pvpanic *pv)
{
	if (!(pv->caps & PB_PVPANIC_CRASH_LOADED))
		pr_warn("%s does not support CRASH_LOADED (caps 0x%x): while a crash kernel is loaded the tier will signal nothing, so the host is not told before kdump\n",
			pv->name, pv->caps_raw);
	if (!(pv->caps & PB_PVPANIC_PANICKED))
		pr_warn("%s does not support PANICKED (caps 0x%x): without a crash kernel the tier will signal nothing\n",
			pv->name, pv->caps_raw);
}

/* Find the device to signal; finding none fails only with require_device=1. */
static int pb_find_pvpanic(enum pb_pvpanic_mode mode)
{
	int ret;

	ret = pb_pvpanic_find(&pb_dev, mode, pb_param_ioport);
	if (!ret) {
		pb_check_caps(&pb_dev);
		return 0;
	}
	if (ret != -ENODEV) {
		pr_err("cannot set up the pvpanic device: %d\n", ret);
		return ret;
	}
	if (pb_param_require_device) {
		pr_err("no pvpanic device (looked for %s); refusing to load (require_device=1)\n",
		       pb_looked_for(mode));
		return ret;
	}
	if (mode != PB_PVPANIC_OFF)
		pr_warn("no pvpanic device (looked for %s): loading anyway, the tier will signal nothing\n",
			pb_looked_for(mode));
	return 0;
}

/* /dev/panicbroker is there for pbreport, in a kdump kernel with a mailbox. */
static bool pb_want_cdev(void)
{
	return pb_param_mailbox && is_kdump_kernel();
}

static void pb_say_armed(enum pb_pvpanic_mode mode, bool have_kprobe)
{
	char devdesc[64];

	if (pb_dev.bus != PB_BUS_NONE)
		snprintf(devdesc, sizeof(devdesc), "pvpanic %s%s caps 0x%x",
			 pb_dev.name, pb_dev.port_forced ? " (ioport=)" : "",
			 pb_dev.caps_raw);
	else if (mode == PB_PVPANIC_OFF)
		strscpy(devdesc, "pvpanic off (nothing to signal)",
			sizeof(devdesc));
	else
		strscpy(devdesc, "no pvpanic device (nothing to signal)",
			sizeof(devdesc));

	pr_info("armed: %s; %s; mailbox %s\n",
		have_kprobe ? "kprobe " PB_KPROBE_SYMBOL " + panic notifier" :
			      "panic notifier only",
		devdesc, pb_param_mailbox ? "on" : "off");
}

/*
 * Every part is set up here, in this order, and torn down in the reverse
 * order, here and in pb_exit(): the pvpanic device, the broker channel (the
 * tier's log buffer, the mailbox driver, /dev/panicbroker), then the tier
 * and the two hooks into it. The hooks come last: once one is registered,
 * the tier may run at any moment and reads all the rest without a lock.
 */
static int __init pb_init(void)
{
	struct pb_chan_params chan = {
		.enable = pb_param_mailbox,
		.unload_wait_ms = pb_param_unload_wait_ms,
	};
	enum pb_pvpanic_mode mode;
	bool have_kprobe;
	int ret;

	ret = pb_parse_params(&mode);
	if (ret)
		return ret;

	ret = pb_find_pvpanic(mode);
	if (ret)
		return ret;

	if (pb_param_mailbox) {
		ret = pb_chan_panic_init();
		if (ret) {
			pr_err("cannot set up the broker channel (log buffer): %d\n",
			       ret);
			goto err_pvpanic;
		}
	}

	ret = pb_chan_init(&chan);
	if (ret) {
		pr_err("cannot set up the broker channel (mailbox driver): %d\n",
		       ret);
		goto err_chan_panic;
	}

	if (pb_want_cdev()) {
		ret = pb_cdev_register();
		if (ret) {
			pr_err("cannot set up the broker channel (/dev/panicbroker): %d\n",
			       ret);
			goto err_chan;
		}
	}

	pb_tier_arm(&pb_dev);

	ret = pb_hook_kprobe_register();
	have_kprobe = !ret;
	if (ret && pb_param_require_kprobe) {
		pr_err("cannot kprobe %s (%d); refusing to load (require_kprobe=1)\n",
		       PB_KPROBE_SYMBOL, ret);
		goto err_cdev;
	}
	if (ret)
		pr_warn("cannot kprobe %s (%d): using the panic notifier only; with a crash kernel loaded the host will NOT be told before kdump\n",
			PB_KPROBE_SYMBOL, ret);

	ret = pb_hook_notifier_register();
	if (ret) {
		pr_err("cannot register the panic notifier: %d\n", ret);
		goto err_kprobe;
	}

	pb_say_armed(mode, have_kprobe);
	return 0;

err_kprobe:
	pb_hook_kprobe_unregister();
err_cdev:
	if (pb_want_cdev())
		pb_cdev_unregister();
err_chan:
	pb_chan_exit();
err_chan_panic:
	pb_chan_panic_exit();
err_pvpanic:
	pb_pvpanic_release(&pb_dev);
	return ret;
}

static void __exit pb_exit(void)
{
	/*
	 * Both unregister calls wait for a tier still running on another
	 * CPU, so the rest can go once they return.
	 */
	pb_hook_notifier_unregister();
	pb_hook_kprobe_unregister();
	if (pb_want_cdev())
		pb_cdev_unregister();
	pb_chan_exit();
	pb_chan_panic_exit();
	pb_pvpanic_release(&pb_dev);
}

module_init(pb_init);
module_exit(pb_exit);

MODULE_DESCRIPTION("Tell the hypervisor about a panic before kdump runs");
MODULE_LICENSE("GPL");
MODULE_VERSION(PB_DRIVER_VERSION);
