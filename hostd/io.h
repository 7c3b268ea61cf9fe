/* SPDX-License-Identifier: MIT */
/*
 * The read/write-all loops: retry on EINTR (and wait on EAGAIN), stop only
 * at EOF or an error. Return the byte count or negative errno; never log.
 */
#ifndef PB_IO_H
#define PB_IO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Up to @len bytes from the file position; fewer only at EOF. */
ssize_t io_read_full(int fd, void *buf, size_t len);
/* Up to @len bytes at @off; fewer only at EOF (an offset past any file reads as EOF). */
ssize_t io_pread_full(int fd, void *buf, size_t len, uint64_t off);
/* All of @len bytes, or -errno (-EIO when the file takes no more). */
int io_write_full(int fd, const void *buf, size_t len);
int io_pwrite_full(int fd, const void *buf, size_t len, uint64_t off);

#endif
