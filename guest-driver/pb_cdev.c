// SPDX-License-Identifier: GPL-2.0-only
/*
 * panicbroker: /dev/panicbroker, in the kdump kernel only.
 *
 * Userspace in the crash kernel (pbreport, a kdump-tools hook) reports the
 * dump's progress with one command per write(2), in ASCII, an optional
 * trailing newline, at most PB_CDEV_CMD_MAX bytes:
 *
 *   kdump start
 *   kdump progress PCT		0..100
 *   kdump done BYTES		bytes written, 0 if unknown
 *   kdump failed REASON	printable ASCII, 1..128 bytes
 *
 * Each becomes a KDUMP_STATUS record on the broker channel. write() returns
 * the whole length once the record is on the ring, or -EINVAL (malformed),
 * -EMSGSIZE (too long), -ENOTCONN (no session: no mailbox, or the host never
 * formatted it), -EAGAIN (ring full, try again shortly). read() returns one
 * line describing the session.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/fs.h>
#include <linux/kernel.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/string.h>
#include <linux/uaccess.h>

#include "panicbroker.h"

#define PB_CDEV_CMD_MAX		160

static bool pb_cdev_printable(const char *s)
{
	for (; *s; s++)
		if (*s < 0x20 || *s > 0x7e)
			return false;
	return true;
}

/* Parses @cmd (NUL-terminated, no newline) into @k. */
static int pb_cdev_parse(char *cmd, struct pb_mbox_kdump_info *k)
{
	char *arg;

	memset(k, 0, sizeof(*k));
	if (strncmp(cmd, "kdump ", 6))
		return -EINVAL;
	cmd += 6;
	arg = strchr(cmd, ' ');
	if (arg)
		*arg++ = '\0';

	if (!strcmp(cmd, "start") && !arg) {
		k->state = PB_MBOX_KDUMP_START;
		return 0;
	}
	if (!strcmp(cmd, "progress") && arg) {
		k->state = PB_MBOX_KDUMP_PROGRESS;
		if (kstrtou32(arg, 10, &k->percent) || k->percent > 100)
			return -EINVAL;
		return 0;
	}
	if (!strcmp(cmd, "done") && arg) {
		k->state = PB_MBOX_KDUMP_DONE;
		k->percent = 100;
		return kstrtou64(arg, 10, &k->bytes) ? -EINVAL : 0;
	}
	if (!strcmp(cmd, "failed") && arg && *arg) {
		k->state = PB_MBOX_KDUMP_FAILED;
		if (strlen(arg) > PB_MBOX_REASON_MAX || !pb_cdev_printable(arg))
			return -EINVAL;
		strscpy(k->reason, arg, sizeof(k->reason));
		return 0;
	}
	return -EINVAL;
}

static ssize_t pb_cdev_write(struct file *f, const char __user *ubuf,
			     size_t len, loff_t *ppos)
{
	struct pb_mbox_kdump_info k;
	char cmd[PB_CDEV_CMD_MAX + 1];
	size_t n = len;
	int ret;

	if (len > PB_CDEV_CMD_MAX)
		return -EMSGSIZE;
	if (copy_from_user(cmd, ubuf, len))
		return -EFAULT;
	if (n && cmd[n - 1] == '\n')
		n--;
	cmd[n] = '\0';
	if (strlen(cmd) != n)
		return -EINVAL;		/* a NUL inside */
	ret = pb_cdev_parse(cmd, &k);
	if (ret)
		return ret;
	ret = pb_chan_kdump_report(&k);
	return ret ? ret : len;
}

static ssize_t pb_cdev_read(struct file *f, char __user *ubuf, size_t len,
			    loff_t *ppos)
{
	char line[128];
	int n = pb_chan_describe(line, sizeof(line));

	return simple_read_from_buffer(ubuf, len, ppos, line, n);
}

static const struct file_operations pb_cdev_fops = {
	.owner = THIS_MODULE,
	.write = pb_cdev_write,
	.read = pb_cdev_read,
};

static struct miscdevice pb_cdev = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "panicbroker",
	.fops = &pb_cdev_fops,
	.mode = 0600,
};

int pb_cdev_register(void)
{
	return misc_register(&pb_cdev);
}

void pb_cdev_unregister(void)
{
	misc_deregister(&pb_cdev);
}
