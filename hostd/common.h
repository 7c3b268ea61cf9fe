/* SPDX-License-Identifier: MIT */
/*
 * Small helpers shared by panicbrokerd, pbctl and their libraries.
 *
 * Ownership idiom: a variable declared with one of the _cleanup_*_ macros is
 * released when it goes out of scope; TAKE_PTR()/TAKE_FD() hand the value on
 * and leave the variable empty so nothing is released twice. Every destructor
 * accepts NULL / -1.
 */
#ifndef PB_COMMON_H
#define PB_COMMON_H

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#include <stddef.h>
#define container_of(ptr, type, member) \
	((type *)((char *)(ptr) - offsetof(type, member)))

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _unused_ __attribute__((unused))

static inline void freep(void *p)
{
	free(*(void **)p);
}

/* Closes *fd (keeping errno) and leaves it -1, so a second call is a no-op. */
static inline void closep(int *fd)
{
	if (*fd >= 0) {
		int saved = errno;

		close(*fd);
		errno = saved;
		*fd = -1;
	}
}

#define _cleanup_free_ _cleanup_(freep)
#define _cleanup_close_ _cleanup_(closep)

#define TAKE_PTR(p)                        \
	({                                 \
		__typeof__(p) _tp = (p);   \
		(p) = NULL;                \
		_tp;                       \
	})

#define TAKE_FD(fd)                        \
	({                                 \
		int _tf = (fd);            \
		(fd) = -1;                 \
		_tf;                       \
	})

#define USEC_PER_SEC 1000000ULL
#define USEC_PER_MSEC 1000ULL

#endif
