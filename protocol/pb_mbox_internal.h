/* SPDX-License-Identifier: GPL-2.0-only OR MIT */
/*
 * The few things protocol/pb_mbox.c needs from its surroundings, defined
 * once for the kernel and once for userspace: byte order, string copies,
 * errno values, and the accessors and barriers for shared memory.
 *
 * The peer is another virtual machine or a host process on the same
 * machine, so the barriers are the kernel's virt_*() ones (SMP barriers
 * even in a UP build) and, in userspace, C11-style fences.
 *
 *   PB_MBOX_READ_ONCE(x)      one load of x, not torn, not repeated
 *   PB_MBOX_WRITE_ONCE(x, v)  one store
 *   PB_MBOX_RMB()             loads before it complete before loads after
 *   PB_MBOX_WMB()             stores before it are visible before stores after
 *   PB_MBOX_MB()              full barrier
 */
#ifndef _PB_MBOX_INTERNAL_H
#define _PB_MBOX_INTERNAL_H

#ifdef __KERNEL__
#include <linux/compiler.h>
#include <linux/errno.h>
#include <linux/string.h>
#include <linux/types.h>
#include <asm/barrier.h>
#include <asm/byteorder.h>

#define PB_MBOX_READ_ONCE(x)		READ_ONCE(x)
#define PB_MBOX_WRITE_ONCE(x, v)	WRITE_ONCE(x, v)
#define PB_MBOX_RMB()			virt_rmb()	/* barriers: see above */
#define PB_MBOX_WMB()			virt_wmb()	/* barriers: see above */
#define PB_MBOX_MB()			virt_mb()	/* barriers: see above */
#define PB_STATIC_ASSERT(c, m)		static_assert(c, m)
#else
#include <assert.h>
#include <endian.h>
#include <errno.h>
#include <string.h>
#include <linux/types.h>

#define PB_MBOX_READ_ONCE(x)		__atomic_load_n(&(x), __ATOMIC_RELAXED)
#define PB_MBOX_WRITE_ONCE(x, v)	__atomic_store_n(&(x), (v), __ATOMIC_RELAXED)
#define PB_MBOX_RMB()			__atomic_thread_fence(__ATOMIC_ACQUIRE)
#define PB_MBOX_WMB()			__atomic_thread_fence(__ATOMIC_RELEASE)
#define PB_MBOX_MB()			__atomic_thread_fence(__ATOMIC_SEQ_CST)
#define PB_STATIC_ASSERT(c, m)		static_assert(c, m)

#define cpu_to_le16(x)			((__le16)htole16(x))
#define cpu_to_le32(x)			((__le32)htole32(x))
#define cpu_to_le64(x)			((__le64)htole64(x))
#define le16_to_cpu(x)			le16toh((__u16)(x))
#define le32_to_cpu(x)			le32toh((__u32)(x))
#define le64_to_cpu(x)			le64toh((__u64)(x))
#endif

#endif /* _PB_MBOX_INTERNAL_H */
