// SPDX-License-Identifier: GPL-2.0-only
/*
 * pbtest_oops - TEST ONLY. Loading this module crashes the kernel on purpose,
 * in its init function, in process context (the insmod task). What kind of
 * crash is chosen by the "kind" parameter:
 *
 *   null        read through a NULL pointer (the default)
 *   bug         BUG()
 *   warn        WARN_ON(); a panic only with kernel.panic_on_warn=1
 *   divide      integer division by zero
 *   stack       overwrite the stack canary (stack-protector)
 *   softlockup  spin with preemption off; a panic with kernel.softlockup_panic=1
 *   hung        sleep uninterruptibly forever; a panic with kernel.hung_task_panic=1
 *   oom         allocate pages until the OOM killer runs; a panic with vm.panic_on_oom=1
 *
 * The test bed (tests/guest/init, "oops KIND") sets the sysctls that turn
 * each of these into a panic, and kernel.panic_on_oops=1 for the oopses.
 * These crashes are the corpus of panicbroker's crash signatures
 * (tests/golden/oops/), so each one happens in a function of its own that
 * names it, called from the module's init.
 *
 * Never load this on a machine you care about.
 */
#include <linux/completion.h>
#include <linux/compiler.h>
#include <linux/gfp.h>
#include <linux/kernel.h>
#include <linux/list.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/preempt.h>
#include <linux/string.h>

static char *kind = "null";
module_param(kind, charp, 0444);
MODULE_PARM_DESC(kind, "what crash to cause on load: null, bug, warn, divide, stack, softlockup, hung, oom");

/*
 * Values read through volatile objects, so the compiler can neither prove
 * what they are nor drop the accesses: a plain "*(int *)NULL" or "1 / 0" is
 * undefined behaviour that gcc may turn into a trap or remove.
 */
static int *volatile pbtest_null_ptr;
static volatile int pbtest_zero;
static volatile int pbtest_true = 1;
static volatile bool pbtest_stop;

static noinline int pbtest_null_deref(void)
{
	int *p = READ_ONCE(pbtest_null_ptr);

	pr_emerg("pbtest_oops: dereferencing NULL on purpose\n");
	/* READ_ONCE keeps the load; the value is printed so it is used. */
	pr_emerg("pbtest_oops: read %d (not reached)\n", READ_ONCE(*p));
	return -EINVAL;
}

static noinline int pbtest_bug(void)
{
	pr_emerg("pbtest_oops: BUG() on purpose\n");
	if (pbtest_true)
		BUG();
	return -EINVAL;
}

static noinline int pbtest_warn(void)
{
	pr_emerg("pbtest_oops: WARN_ON() on purpose\n");
	WARN_ON(pbtest_true);
	return -EINVAL;
}

static noinline int pbtest_divide(void)
{
	int n = pbtest_true;

	pr_emerg("pbtest_oops: dividing by zero on purpose\n");
	n /= pbtest_zero;
	pr_emerg("pbtest_oops: quotient %d (not reached)\n", n);
	return -EINVAL;
}

/*
 * Writes 8 bytes past the end of a local array. With the kernel's
 * -fstack-protector-strong the array is guarded by a canary placed just
 * above it, which this overwrites; the check at the function's return then
 * calls __stack_chk_fail(), which panics. The return address lies above the
 * canary and is left alone, so the backtrace stays readable. The pointer is
 * laundered so that the compiler cannot reason about the overflow.
 */
static noinline int pbtest_stack_smash(void)
{
	char buf[16];
	char *p = buf;
	size_t i, n;

	OPTIMIZER_HIDE_VAR(p);
	n = sizeof(buf) + 8 * pbtest_true;
	pr_emerg("pbtest_oops: overwriting the stack canary on purpose\n");
	for (i = 0; i < n; i++)
		p[i] = 'x';
	barrier_data(p);
	return -EINVAL;
}

static noinline int pbtest_softlockup(void)
{
	pr_emerg("pbtest_oops: spinning with preemption off on purpose\n");
	preempt_disable();
	while (!READ_ONCE(pbtest_stop))
		cpu_relax();
	preempt_enable();
	return -EINVAL;
}

static DECLARE_COMPLETION(pbtest_never);

static noinline int pbtest_hung(void)
{
	pr_emerg("pbtest_oops: sleeping uninterruptibly forever on purpose\n");
	wait_for_completion(&pbtest_never);
	return -EINVAL;
}

static noinline int pbtest_oom(void)
{
	LIST_HEAD(pages);
	struct page *page, *tmp;
	unsigned long n = 0;

	pr_emerg("pbtest_oops: allocating all memory on purpose\n");
	while ((page = alloc_page(GFP_KERNEL))) {
		list_add(&page->lru, &pages);
		n++;
	}
	/* Not reached with panic_on_oom: the OOM killer panics first. */
	pr_emerg("pbtest_oops: allocation failed after %lu pages\n", n);
	list_for_each_entry_safe(page, tmp, &pages, lru) {
		list_del(&page->lru);
		__free_page(page);
	}
	return -ENOMEM;
}

static const struct {
	const char *name;
	int (*fn)(void);
} pbtest_kinds[] = {
	{ "null", pbtest_null_deref },
	{ "bug", pbtest_bug },
	{ "warn", pbtest_warn },
	{ "divide", pbtest_divide },
	{ "stack", pbtest_stack_smash },
	{ "softlockup", pbtest_softlockup },
	{ "hung", pbtest_hung },
	{ "oom", pbtest_oom },
};

static int __init pbtest_oops_init(void)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(pbtest_kinds); i++)
		if (!strcmp(kind, pbtest_kinds[i].name))
			return pbtest_kinds[i].fn();
	pr_err("pbtest_oops: unknown kind '%s'\n", kind);
	return -EINVAL;
}

static void __exit pbtest_oops_exit(void)
{
}

module_init(pbtest_oops_init);
module_exit(pbtest_oops_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("panicbroker test bed: crash on load in the chosen way (test only)");
