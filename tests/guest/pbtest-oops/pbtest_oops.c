// SPDX-License-Identifier: GPL-2.0
/*
 * pbtest_oops - TEST ONLY. Loading this module oopses the kernel on purpose:
 * its init function reads through a NULL pointer, in process context (the
 * insmod task). The guest test bed sets panic_on_oops=1 first, so the oops
 * becomes a panic that goes through the oops path into kdump.
 *
 * Never load this on a machine you care about.
 */
#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/compiler.h>

/*
 * The pointer is read through a volatile object so the compiler can neither
 * prove it is NULL nor drop the load: a plain "*(int *)NULL" is undefined
 * behaviour that gcc may turn into a trap or remove.
 */
static int *volatile pbtest_null_ptr;

static int __init pbtest_oops_init(void)
{
	int *p = READ_ONCE(pbtest_null_ptr);

	pr_emerg("pbtest_oops: dereferencing NULL on purpose\n");
	/* READ_ONCE keeps the load; the value is printed so it is used. */
	pr_emerg("pbtest_oops: read %d (not reached)\n", READ_ONCE(*p));
	return -EINVAL;
}

static void __exit pbtest_oops_exit(void)
{
}

module_init(pbtest_oops_init);
module_exit(pbtest_oops_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("panicbroker test bed: oops on load (test only)");
