/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * panicbroker: interfaces between the parts of the module.
 *
 * pb_main.c    parameters, load and unload, the mode line
 * pb_pvpanic.c finding the pvpanic device and writing to it
 * pb_tier.c    the hypervisor tier, run at most once per boot
 * pb_hook.c    the two ways into the tier: a kprobe and a panic notifier
 */
#ifndef _PB_PANICBROKER_H
#define _PB_PANICBROKER_H

#include <linux/types.h>

struct pci_dev;

/* The function whose entry is "before kdump" on every crash path. */
#define PB_KPROBE_SYMBOL	"__crash_kexec"

enum pb_pvpanic_mode {
	PB_PVPANIC_AUTO,	/* ISA/ACPI first, then PCI */
	PB_PVPANIC_ISA,
	PB_PVPANIC_PCI,
	PB_PVPANIC_OFF,
};

enum pb_pvpanic_bus {
	PB_BUS_NONE,
	PB_BUS_ISA,
	PB_BUS_PCI,
};

/*
 * The device the tier signals. Filled in at load, before any hook is
 * registered, and never changed while a hook is registered: the tier reads
 * it without a lock.
 */
struct pb_pvpanic {
	enum pb_pvpanic_bus bus;
	void __iomem *base;	/* the event register */
	u8 caps_raw;		/* what the register read at load */
	u8 caps;		/* caps_raw limited to the events we know */
	unsigned long port;	/* ISA: the I/O port */
	bool port_forced;	/* ISA: port came from ioport=, not ACPI */
	struct pci_dev *pdev;	/* PCI: referenced with pci_get_device() */
	bool pdev_enabled;	/* PCI: we called pci_enable_device() */
	char name[32];		/* "isa port 0x505", "pci 0000:00:02.0" */
};

int pb_pvpanic_find(struct pb_pvpanic *pv, enum pb_pvpanic_mode mode,
		    unsigned int ioport);
void pb_pvpanic_release(struct pb_pvpanic *pv);
void pb_pvpanic_write(const struct pb_pvpanic *pv, u8 event);

enum pb_tier_caller {
	PB_FROM_KPROBE,
	PB_FROM_NOTIFIER,
};

void pb_tier_arm(const struct pb_pvpanic *pv);
void pb_tier_run(enum pb_tier_caller from);

int pb_hook_kprobe_register(void);
void pb_hook_kprobe_unregister(void);
int pb_hook_notifier_register(void);
void pb_hook_notifier_unregister(void);

#endif /* _PB_PANICBROKER_H */
