// SPDX-License-Identifier: GPL-2.0-only
/*
 * panicbroker: the ways into the hypervisor tier.
 *
 * A stock kernel offers no call "before kdump" to modules: panic() runs
 * __crash_kexec() before the panic notifiers unless crash_kexec_post_notifiers
 * is set, and an oops reaches __crash_kexec() through crash_kexec() without
 * panic() at all. So we use two hooks and let the tier keep it to one run:
 *
 *  - a kprobe on the entry of __crash_kexec(). It fires on both paths,
 *    before machine_crash_shutdown(), and also when no crash kernel is
 *    loaded, because panic() calls __crash_kexec() unconditionally.
 *  - a panic notifier at the highest priority. It covers kernels booted
 *    with crash_kexec_post_notifiers, where the notifiers run first, and
 *    kernels where the kprobe cannot be placed.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/kernel.h>
#include <linux/kprobes.h>
#include <linux/ptrace.h>
#include <linux/notifier.h>
#include <linux/panic_notifier.h>

#include "panicbroker.h"

/*
 * __crash_kexec(regs): panic() passes NULL, the oops path (crash_kexec()
 * from oops_end()) passes the registers of the faulting context.
 */
static int pb_hook_kprobe_pre(struct kprobe *p, struct pt_regs *regs)
{
	pb_tier_run(PB_FROM_KPROBE, regs_get_kernel_argument(regs, 0) != 0);
	return 0;
}

static struct kprobe pb_hook_kprobe = {
	.symbol_name = PB_KPROBE_SYMBOL,
	.pre_handler = pb_hook_kprobe_pre,
};

static bool pb_hook_kprobe_registered;

/* Return: 0 or the error from register_kprobe(). */
int pb_hook_kprobe_register(void)
{
	int ret;

	ret = register_kprobe(&pb_hook_kprobe);
	if (ret)
		return ret;
	pb_hook_kprobe_registered = true;
	return 0;
}

/* Waits for handlers still running on other CPUs; safe if never registered. */
void pb_hook_kprobe_unregister(void)
{
	if (!pb_hook_kprobe_registered)
		return;
	unregister_kprobe(&pb_hook_kprobe);
	pb_hook_kprobe_registered = false;
}

static int pb_hook_panic_notify(struct notifier_block *nb,
				unsigned long action, void *data)
{
	pb_tier_run(PB_FROM_NOTIFIER, false);
	return NOTIFY_DONE;
}

static struct notifier_block pb_hook_panic_nb = {
	.notifier_call = pb_hook_panic_notify,
	.priority = INT_MAX,
};

int pb_hook_notifier_register(void)
{
	return atomic_notifier_chain_register(&panic_notifier_list,
					      &pb_hook_panic_nb);
}

/* Waits for a notifier call still running on another CPU. */
void pb_hook_notifier_unregister(void)
{
	atomic_notifier_chain_unregister(&panic_notifier_list,
					 &pb_hook_panic_nb);
}
