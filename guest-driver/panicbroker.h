/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * panicbroker: interfaces between the parts of the module.
 *
 * pb_main.c    parameters, load and unload (the order of every part's
 *              init and exit), the mode line
 * pb_pvpanic.c finding the pvpanic device and writing to it
 * pb_tier.c    the hypervisor tier, run at most once per boot
 * pb_clock.c   the panic path's clock: elapsed time, bounded waits
 * pb_hook.c    the two ways into the tier: a kprobe and a panic notifier
 * pb_chan.c    the broker channel: the ivshmem mailbox and its session
 * pb_chan_panic.c  the channel's steps in the tier: panic record, UNLOAD
 * pb_cdev.c    /dev/panicbroker, the kdump kernel's progress reports
 * pb_mbox_lib.c  the shared protocol library (protocol/pb_mbox.c)
 */
#ifndef _PB_PANICBROKER_H
#define _PB_PANICBROKER_H

#include <linux/types.h>

#include <panicbroker/mailbox.h>

struct pci_dev;

#define PB_DRIVER_VERSION	"1.1.0"

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

/* A bounded wait in panic context (pb_clock.c). */
struct pb_clock_wait {
	u64 start, last, limit_ns;
	u32 stuck;
};

void pb_clock_wait_start(struct pb_clock_wait *w, u64 limit_us);
bool pb_clock_wait_more(struct pb_clock_wait *w);
u32 pb_clock_us_since(u64 start_ns);

void pb_tier_arm(const struct pb_pvpanic *pv);
void pb_tier_run(enum pb_tier_caller from, bool from_oops);

/* The broker channel (pb_chan.c), set up at load and torn down at unload. */
struct pb_chan_params {
	bool enable;			/* mailbox= */
	unsigned int unload_wait_ms;	/* unload_wait_ms= */
};

int pb_chan_init(const struct pb_chan_params *p);
void pb_chan_exit(void);
/* The most the tier may spend waiting for the host, for the losers' wait. */
unsigned int pb_chan_budget_us(void);

/*
 * What the tier keeps of one session, published whole by process context
 * and read once by the panic path (pb_chan_view_get()).
 */
struct pb_chan_view {
	void *base;			/* the mapping */
	void *slot;			/* the panic slot, inside it */
	u32 slot_size;
	u32 unload_wait_ms;		/* the bound for this session */
	struct pb_mbox_guest_info gi;	/* as last written */
};

const struct pb_chan_view *pb_chan_view_get(void);

/* What the channel's tier steps did, for the summary line. */
struct pb_chan_result {
	bool used;			/* a session was there */
	void *slot;			/* its panic slot */
	u64 session;
	int record_err;			/* pb_mbox_panic_write() */
	u32 record_bytes;		/* the slot's payload */
	bool waited;			/* the host was active: we waited */
	bool acked;
	u32 wait_us;			/* UNLOAD to ACK, or the time waited */
	u32 wait_limit_ms;
};

struct pb_chan_panic_args {
	int cpu;
	bool crash_loaded;
	bool from_oops;
};

int pb_chan_panic_init(void);	/* the log buffer, allocated at load */
void pb_chan_panic_exit(void);
void pb_chan_panic(const struct pb_chan_panic_args *a,
		   struct pb_chan_result *res);
void pb_chan_panic_timing(const struct pb_chan_result *res, u32 tier_us);

/* /dev/panicbroker (pb_cdev.c), in the kdump kernel only. */
int pb_cdev_register(void);
void pb_cdev_unregister(void);
/* Puts one KDUMP_STATUS on the ring: 0, -ENOTCONN, -EAGAIN, -EIO. */
int pb_chan_kdump_report(const struct pb_mbox_kdump_info *k);
/* One line about the session, for reads of /dev/panicbroker. */
int pb_chan_describe(char *buf, size_t size);

int pb_hook_kprobe_register(void);
void pb_hook_kprobe_unregister(void);
int pb_hook_notifier_register(void);
void pb_hook_notifier_unregister(void);

#endif /* _PB_PANICBROKER_H */
