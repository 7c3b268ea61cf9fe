/* SPDX-License-Identifier: MIT */
/*
 * The local API's unix socket, created and removed by the API itself
 * (api.h): a stale socket at the path is removed, a live one refused
 * (-EADDRINUSE), anything else at the path too (-EEXIST). The socket is
 * born 0600 and opened to @mode once its group is @group. Never logs.
 */
#ifndef PB_API_SOCKET_H
#define PB_API_SOCKET_H

#include <stddef.h>
#include <sys/types.h>

struct api_socket {
	char *path;
	dev_t dev; /* to remove the socket only while it is ours */
	ino_t ino;
};

/* A listening, non-blocking socket in @ret_fd; @group: NULL, a name or a gid. */
int api_socket_open(const char *path, mode_t mode, const char *group,
		    struct api_socket *ret, int *ret_fd, char *err, size_t errlen);
/*
 * A listening, non-blocking TCP socket on "ADDR:PORT" (a numeric IPv4
 * address, or [IPv6]:PORT) in @ret_fd; the address as bound (the port
 * filled in when 0 was asked) in @ret_name.
 */
int api_socket_open_tcp(const char *addr, int *ret_fd, char *ret_name,
			size_t name_len, char *err, size_t errlen);
/* Unlinks the path if it is still the socket we bound. */
int api_socket_remove(const struct api_socket *s);
void api_socket_done(struct api_socket *s);

#endif
