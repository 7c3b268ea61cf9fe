// SPDX-License-Identifier: GPL-2.0-only
/*
 * panicbroker: the broker channel, guest side (protocol/SPEC.md).
 *
 * The mailbox is the memory of an ivshmem-plain PCI device (BAR 2) that the
 * host daemon formats. We bind every such device, use the first one the
 * host has formatted (looking again every second while none is), open a
 * session with HELLO, wait in process context for the host's HELLO_ACK,
 * and keep an eye on the host generation so that a restarted daemon gets a
 * new session. In the kdump kernel the session has role KDUMP and names the
 * session of the kernel that crashed.
 *
 * The panic path (pb_chan_panic.c) never takes pb_chan.lock. It reads the
 * session through pb_chan_view_get(): a pointer to one of two views that
 * process context fills and then publishes with release semantics. A view
 * is rewritten only two publications later, which takes seconds.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/crash_dump.h>
#include <linux/err.h>
#include <linux/fs.h>
#include <linux/io.h>
#include <linux/ioport.h>
#include <linux/kexec.h>
#include <linux/list.h>
#include <linux/minmax.h>
#include <linux/mutex.h>
#include <linux/pci.h>
#include <linux/random.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/utsname.h>
#include <linux/uuid.h>
#include <linux/workqueue.h>

#include "panicbroker.h"

/* How often process context looks at the mailbox. */
#define PB_CHAN_FORMAT_POLL	msecs_to_jiffies(1000)	/* not formatted yet */
#define PB_CHAN_ACK_POLL	msecs_to_jiffies(10)	/* HELLO posted */
#define PB_CHAN_ACK_FAST	msecs_to_jiffies(2000)	/* ... for this long */
#define PB_CHAN_SLOW_POLL	msecs_to_jiffies(1000)	/* after that */
#define PB_CHAN_GEN_POLL	msecs_to_jiffies(2000)	/* session accepted */

struct pb_chan_dev {
	struct list_head node;
	struct pci_dev *pdev;
	void *base;
	u32 size;
	bool wait_logged;	/* "not formatted yet" said once */
};

static struct {
	struct mutex lock;	/* everything below; never taken in panic */
	struct delayed_work work;
	struct list_head devs;
	struct pb_chan_dev *dev;	/* the one with the session */
	struct pb_chan_params params;
	bool kdump;			/* running in a crash kernel */
	bool prev_looked;		/* kdump: crashed session looked up */
	u64 prev_session;		/* kdump: the session that crashed */
	u8 boot_id[16];
	struct pb_mbox_layout layout;	/* validated copy */
	struct pb_mbox_guest_info gi;	/* our control block, as written */
	struct pb_mbox_ring g2h, h2g;
	unsigned long opened;		/* jiffies at HELLO */
	bool accepted;			/* HELLO_ACK read */
	bool broken;			/* a ring error: session not usable */
	bool hello_crash_loaded;	/* what HELLO said */
	u32 host_wait_ms;		/* HELLO_ACK's suggestion, 0 if none */
	u8 rx[PB_MBOX_RING_PAYLOAD_MAX];
} pb_chan;

static struct pb_chan_view pb_chan_views[2];
static struct pb_chan_view *pb_chan_cur;
static unsigned int pb_chan_next_view;

static const char *const pb_chan_roles[] = {
	[PB_MBOX_ROLE_NORMAL] = "normal",
	[PB_MBOX_ROLE_KDUMP] = "kdump",
};

static const struct pci_device_id pb_chan_ids[] = {
	{ PCI_DEVICE(PB_MBOX_PCI_VENDOR, PB_MBOX_PCI_DEVICE) },
	{ }
};

/* ---- The view the panic path reads ---- */

const struct pb_chan_view *pb_chan_view_get(void)
{
	/* Pairs with pb_chan_publish(): a view is whole once we see it. */
	return smp_load_acquire(&pb_chan_cur);
}

/*
 * The wait for UNLOAD_ACK: the smaller of ours (unload_wait_ms=, at most
 * PB_MBOX_UNLOAD_WAIT_MAX_MS, checked at load) and the host's.
 */
static u32 pb_chan_wait_ms(void)
{
	u32 ms = pb_chan.params.unload_wait_ms;

	if (pb_chan.host_wait_ms)
		ms = min(ms, pb_chan.host_wait_ms);
	return ms;
}

unsigned int pb_chan_budget_us(void)
{
	if (!pb_chan.params.enable)
		return 0;
	return pb_chan.params.unload_wait_ms * USEC_PER_MSEC;
}

static void pb_chan_publish(void)
{
	struct pb_chan_view *v = &pb_chan_views[pb_chan_next_view];
	const struct pb_mbox_layout *l = &pb_chan.layout;

	v->base = pb_chan.dev->base;
	v->slot = (u8 *)v->base + le32_to_cpu(l->panic_offset);
	v->slot_size = le32_to_cpu(l->panic_size);
	v->unload_wait_ms = pb_chan_wait_ms();
	v->gi = pb_chan.gi;
	/* Pairs with pb_chan_view_get(): fill the view, then publish it. */
	smp_store_release(&pb_chan_cur, v);
	pb_chan_next_view ^= 1;
}

static void pb_chan_unpublish(void)
{
	/* No view: the tier goes on without the channel. */
	smp_store_release(&pb_chan_cur, NULL);
}

/* ---- What HELLO says ---- */

/* Only from the context of insmod: a kworker's root has no /proc. */
static void pb_chan_read_boot_id(u8 *out)
{
	char buf[UUID_STRING_LEN + 1] = "";
	struct file *f;
	loff_t pos = 0;
	uuid_t u;
	ssize_t n;

	f = filp_open("/proc/sys/kernel/random/boot_id", O_RDONLY, 0);
	if (IS_ERR(f))
		return;
	n = kernel_read(f, buf, UUID_STRING_LEN, &pos);
	filp_close(f, NULL);
	if (n != UUID_STRING_LEN)
		return;
	buf[UUID_STRING_LEN] = '\0';
	if (!uuid_parse(buf, &u))
		memcpy(out, u.b, sizeof(u.b));
}

static int pb_chan_crash_res(struct resource *res, void *arg)
{
	struct resource *best = arg;

	if (resource_size(res) > resource_size(best))
		*best = *res;
	return 0;
}

static void pb_chan_hello_info(struct pb_mbox_hello_info *hi)
{
	struct resource crash = { .start = 1, .end = 0 };

	memset(hi, 0, sizeof(*hi));
	memcpy(hi->boot_id, pb_chan.boot_id, sizeof(hi->boot_id));
	walk_iomem_res_desc(IORES_DESC_CRASH_KERNEL,
			    IORESOURCE_SYSTEM_RAM | IORESOURCE_BUSY, 0, -1,
			    &crash, pb_chan_crash_res);
	if (crash.end > crash.start) {
		hi->crash_base = crash.start;
		hi->crash_size = resource_size(&crash);
	}
	hi->vmcoreinfo_paddr = paddr_vmcoreinfo_note();
	if (kexec_crash_loaded())
		hi->flags |= PB_MBOX_HELLO_CRASH_LOADED;
	strscpy(hi->release, init_utsname()->release, sizeof(hi->release));
	strscpy(hi->driver_version, PB_DRIVER_VERSION,
		sizeof(hi->driver_version));
}

/* ---- Sessions ---- */

/*
 * In the kdump kernel, before we write anything: the session found in the
 * guest control block is the one that crashed if it got as far as UNLOAD
 * or left a complete panic record. A KDUMP session found there (the module
 * was reloaded in the crash kernel) passes on the session it named.
 */
static u64 pb_chan_crashed_session(void *base, const struct pb_mbox_layout *l)
{
	const struct pb_mbox_slot *s = base + le32_to_cpu(l->panic_offset);
	struct pb_mbox_guest_info g;
	const char *why;

	if (pb_mbox_guest_ctl_read(base, &g, &why) || !g.session_id)
		return 0;
	if (g.role == PB_MBOX_ROLE_KDUMP)
		return g.prev_session;
	if (g.state == PB_MBOX_GUEST_UNLOADING ||
	    g.state == PB_MBOX_GUEST_UNLOADED)
		return g.session_id;
	if (le32_to_cpu(READ_ONCE(s->state)) == PB_MBOX_SLOT_COMPLETE &&
	    le64_to_cpu(READ_ONCE(s->session_id)) == g.session_id)
		return g.session_id;
	return 0;
}

static u64 pb_chan_new_id(void)
{
	u64 id;

	do {
		id = get_random_u64();
	} while (!id);
	return id;
}

/* SPEC §4.2 steps 1-4 on @d. Caller holds the lock. */
static int pb_chan_open(struct pb_chan_dev *d, const char **why)
{
	struct pb_mbox_hello_info hi;
	struct pb_mbox_hello hello;
	struct pb_mbox_layout l;
	int len, ret;

	ret = pb_mbox_read_layout(d->base, d->size, &l, why);
	if (ret)
		return ret;

	pb_chan_unpublish();
	if (pb_chan.kdump && !pb_chan.prev_looked) {
		pb_chan.prev_session = pb_chan_crashed_session(d->base, &l);
		pb_chan.prev_looked = true;
	}

	pb_chan.dev = d;
	pb_chan.layout = l;
	pb_chan.accepted = false;
	pb_chan.broken = false;
	pb_chan.host_wait_ms = 0;

	memset(&pb_chan.gi, 0, sizeof(pb_chan.gi));
	pb_chan.gi.version_major = PB_MBOX_VERSION_MAJOR;
	pb_chan.gi.version_minor = min_t(u16, le16_to_cpu(l.version_minor),
					 PB_MBOX_VERSION_MINOR);
	pb_chan.gi.role = pb_chan.kdump ? PB_MBOX_ROLE_KDUMP :
					  PB_MBOX_ROLE_NORMAL;
	pb_chan.gi.state = PB_MBOX_GUEST_NONE;
	pb_mbox_guest_ctl_write(d->base, &pb_chan.gi);

	pb_mbox_ring_init(&pb_chan.g2h, d->base, &l, PB_MBOX_G2H);
	pb_mbox_ring_init(&pb_chan.h2g, d->base, &l, PB_MBOX_H2G);
	pb_mbox_ring_reset(&pb_chan.g2h);
	pb_mbox_ring_reset(&pb_chan.h2g);

	pb_chan_hello_info(&hi);
	pb_chan.hello_crash_loaded = hi.flags & PB_MBOX_HELLO_CRASH_LOADED;
	len = pb_mbox_hello_encode(&hi, &hello);
	if (len < 0) {
		*why = "HELLO does not encode";
		return len;
	}
	ret = pb_mbox_ring_put(&pb_chan.g2h, PB_MBOX_MSG_HELLO, &hello, len,
			       why);
	if (ret)
		return ret;

	pb_chan.gi.session_id = pb_chan_new_id();
	pb_chan.gi.session_generation = le64_to_cpu(l.host_generation);
	pb_chan.gi.prev_session = pb_chan.prev_session;
	pb_chan.gi.state = PB_MBOX_GUEST_HELLO;
	pb_mbox_guest_ctl_write(d->base, &pb_chan.gi);
	pb_chan.opened = jiffies;
	pb_chan_publish();

	if (pb_chan.kdump)
		pr_info("mailbox %s: kdump session %016llx opened (host generation %llu), crashed session %016llx\n",
			pci_name(d->pdev), pb_chan.gi.session_id,
			pb_chan.gi.session_generation, pb_chan.prev_session);
	else
		pr_info("mailbox %s: session %016llx opened (host generation %llu, %u KiB)\n",
			pci_name(d->pdev), pb_chan.gi.session_id,
			pb_chan.gi.session_generation, d->size / 1024);
	return 0;
}

/* The ring or the host went wrong: stop using this session. */
static void pb_chan_break(const char *what, const char *why)
{
	pb_chan.broken = true;
	pr_warn("mailbox: session %016llx: %s: %s; not using the mailbox until the host reformats it (pvpanic still works)\n",
		pb_chan.gi.session_id, what, why);
}

/* SPEC §4.2 step 5: HELLO_ACK. Caller holds the lock. */
static void pb_chan_check_ack(void)
{
	struct pb_mbox_hello_ack_info ack;
	struct pb_mbox_host_info h;
	const char *why = "";
	u16 type;
	u32 len;
	int ret;

	pb_mbox_host_ctl_read(pb_chan.dev->base, &h);
	if (h.accepted_session != pb_chan.gi.session_id)
		return;
	ret = pb_mbox_ring_get(&pb_chan.h2g, pb_chan.rx, &type, &len, &why);
	if (!ret)
		return;		/* accepted, the ACK not yet visible */
	if (ret < 0)
		return pb_chan_break("reading HELLO_ACK", why);
	if (type != PB_MBOX_MSG_HELLO_ACK)
		return pb_chan_break("reading HELLO_ACK", "another message came first");
	ret = pb_mbox_hello_ack_decode(pb_chan.rx, len, &ack, &why);
	if (ret)
		return pb_chan_break("HELLO_ACK", why);
	if (ack.session_id != pb_chan.gi.session_id)
		return pb_chan_break("HELLO_ACK", "it names another session");

	pb_chan.accepted = true;
	pb_chan.host_wait_ms = clamp_t(u32, ack.unload_wait_ms, 1,
				       PB_MBOX_UNLOAD_WAIT_MAX_MS);
	pb_chan.gi.state = PB_MBOX_GUEST_ACTIVE;
	pb_mbox_guest_ctl_write(pb_chan.dev->base, &pb_chan.gi);
	pb_chan_publish();
	pr_info("mailbox: session %016llx accepted by %s (host polls every %u ms); UNLOAD waits up to %u ms\n",
		pb_chan.gi.session_id, ack.daemon_version, ack.poll_ms,
		pb_chan_wait_ms());
}

/* Has the host reformatted the mailbox under us (daemon restart)? */
static bool pb_chan_host_changed(void)
{
	struct pb_mbox_layout l;
	const char *why;

	if (pb_mbox_read_layout(pb_chan.dev->base, pb_chan.dev->size, &l, &why))
		return true;
	return le64_to_cpu(l.host_generation) != pb_chan.gi.session_generation;
}

/* Find a formatted mailbox and open a session on it. Lock held. */
static void pb_chan_try_open(void)
{
	struct pb_chan_dev *d;
	const char *why;

	list_for_each_entry(d, &pb_chan.devs, node) {
		if (!pb_chan_open(d, &why))
			return;
		pb_chan.dev = NULL;
		if (!d->wait_logged)
			pr_info("mailbox %s: not usable yet (%s); looking again every second\n",
				pci_name(d->pdev), why);
		d->wait_logged = true;
	}
}

/*
 * Drop the session and open a new one, on whichever mailbox is usable.
 * Returns the delay until the next look.
 */
static unsigned long pb_chan_reopen(void)
{
	pb_chan_unpublish();
	pb_chan.dev = NULL;
	pb_chan_try_open();
	return pb_chan.dev ? PB_CHAN_ACK_POLL : PB_CHAN_FORMAT_POLL;
}

/* Lock held. Returns the delay until the next look. */
static unsigned long pb_chan_step(void)
{
	if (!pb_chan.dev) {
		pb_chan_try_open();
		if (!pb_chan.dev)
			return PB_CHAN_FORMAT_POLL;
	}
	if (pb_chan_host_changed()) {
		pr_info("mailbox: the host reformatted the mailbox (daemon restarted?); opening a new session\n");
		return pb_chan_reopen();
	}
	if (pb_chan.accepted && !pb_chan.kdump &&
	    kexec_crash_loaded() != pb_chan.hello_crash_loaded) {
		/* HELLO said otherwise: tell the host with a new one. */
		pr_info("mailbox: crash kernel %s; opening a new session to say so\n",
			pb_chan.hello_crash_loaded ? "unloaded" : "loaded");
		return pb_chan_reopen();
	}
	if (pb_chan.accepted || pb_chan.broken)
		return PB_CHAN_GEN_POLL;
	pb_chan_check_ack();
	if (pb_chan.accepted || pb_chan.broken)
		return PB_CHAN_GEN_POLL;
	if (time_before(jiffies, pb_chan.opened + PB_CHAN_ACK_FAST))
		return PB_CHAN_ACK_POLL;
	return PB_CHAN_SLOW_POLL;
}

static void pb_chan_work(struct work_struct *w)
{
	unsigned long delay;

	mutex_lock(&pb_chan.lock);
	delay = pb_chan_step();
	mutex_unlock(&pb_chan.lock);
	schedule_delayed_work(&pb_chan.work, delay);
}

/* ---- The kdump kernel's reports (/dev/panicbroker) ---- */

int pb_chan_kdump_report(const struct pb_mbox_kdump_info *k)
{
	struct pb_mbox_kdump_status st;
	const char *why;
	int len, ret;

	len = pb_mbox_kdump_encode(k, &st);
	if (len < 0)
		return -EINVAL;
	mutex_lock(&pb_chan.lock);
	if (!pb_chan.dev || pb_chan.broken) {
		ret = -ENOTCONN;
		goto out;
	}
	ret = pb_mbox_ring_put(&pb_chan.g2h, PB_MBOX_MSG_KDUMP_STATUS, &st,
			       len, &why);
	if (ret == -ENOSPC)
		ret = -EAGAIN;
	else if (ret)
		ret = -EIO;
out:
	mutex_unlock(&pb_chan.lock);
	return ret;
}

int pb_chan_describe(char *buf, size_t size)
{
	static const char *const states[] = {
		[PB_MBOX_GUEST_NONE] = "none",
		[PB_MBOX_GUEST_HELLO] = "waiting for the host",
		[PB_MBOX_GUEST_ACTIVE] = "accepted",
		[PB_MBOX_GUEST_UNLOADING] = "unloading",
		[PB_MBOX_GUEST_UNLOADED] = "unloaded",
	};
	int n;

	mutex_lock(&pb_chan.lock);
	if (!pb_chan.dev)
		n = scnprintf(buf, size, "no session: no formatted mailbox\n");
	else
		n = scnprintf(buf, size,
			      "session %016llx role %s prev %016llx state %s%s\n",
			      pb_chan.gi.session_id,
			      pb_chan_roles[pb_chan.gi.role],
			      pb_chan.gi.prev_session,
			      states[pb_chan.gi.state],
			      pb_chan.broken ? " (broken)" : "");
	mutex_unlock(&pb_chan.lock);
	return n;
}

/* ---- The PCI driver ---- */

static int pb_chan_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	resource_size_t start = pci_resource_start(pdev, PB_MBOX_PCI_BAR);
	resource_size_t len = pci_resource_len(pdev, PB_MBOX_PCI_BAR);
	struct pb_chan_dev *d;
	int ret;

	if (len < PB_MBOX_SIZE_MIN || len > PB_MBOX_SIZE_MAX) {
		dev_info(&pdev->dev, "panicbroker: BAR %d is %pa bytes, not a mailbox\n",
			 PB_MBOX_PCI_BAR, &len);
		return -ENODEV;
	}
	d = devm_kzalloc(&pdev->dev, sizeof(*d), GFP_KERNEL);
	if (!d)
		return -ENOMEM;
	ret = pcim_enable_device(pdev);
	if (ret)
		return ret;
	ret = pci_request_region(pdev, PB_MBOX_PCI_BAR, KBUILD_MODNAME);
	if (ret)
		return ret;
	/* The BAR is host RAM: map it cached, like memory. */
	d->base = memremap(start, len, MEMREMAP_WB);
	if (!d->base) {
		pci_release_region(pdev, PB_MBOX_PCI_BAR);
		return -ENOMEM;
	}
	d->pdev = pdev;
	d->size = len;
	pci_set_drvdata(pdev, d);

	mutex_lock(&pb_chan.lock);
	list_add_tail(&d->node, &pb_chan.devs);
	if (!pb_chan.dev)
		pb_chan_step();
	mutex_unlock(&pb_chan.lock);
	mod_delayed_work(system_wq, &pb_chan.work, PB_CHAN_ACK_POLL);
	return 0;
}

static void pb_chan_remove(struct pci_dev *pdev)
{
	struct pb_chan_dev *d = pci_get_drvdata(pdev);

	mutex_lock(&pb_chan.lock);
	if (pb_chan.dev == d) {
		pb_chan_unpublish();
		/* SPEC §4.5: a module that goes away closes its session. */
		pb_chan.gi.state = PB_MBOX_GUEST_NONE;
		pb_mbox_guest_ctl_write(d->base, &pb_chan.gi);
		pb_chan.dev = NULL;
	}
	list_del(&d->node);
	mutex_unlock(&pb_chan.lock);
	/*
	 * At module unload the hooks are gone already, so no tier can hold
	 * the old view. A hot unplug racing a panic is not covered.
	 */
	memunmap(d->base);
	pci_release_region(pdev, PB_MBOX_PCI_BAR);
}

static struct pci_driver pb_chan_driver = {
	.name = KBUILD_MODNAME,
	.id_table = pb_chan_ids,
	.probe = pb_chan_probe,
	.remove = pb_chan_remove,
};

/*
 * Set up the channel's state and, with mailbox=1, bind the mailbox devices.
 * pb_main.c allocates the tier's log buffer before this and creates
 * /dev/panicbroker after it.
 */
int pb_chan_init(const struct pb_chan_params *p)
{
	mutex_init(&pb_chan.lock);
	INIT_DELAYED_WORK(&pb_chan.work, pb_chan_work);
	INIT_LIST_HEAD(&pb_chan.devs);
	pb_chan.params = *p;
	if (!p->enable)
		return 0;

	pb_chan.kdump = is_kdump_kernel();
	pb_chan_read_boot_id(pb_chan.boot_id);
	return pci_register_driver(&pb_chan_driver);
}

void pb_chan_exit(void)
{
	if (!pb_chan.params.enable)
		return;
	/* The work takes the lock, so it may run while the devices go. */
	pci_unregister_driver(&pb_chan_driver);
	cancel_delayed_work_sync(&pb_chan.work);
}
