// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: an API client's bytes (it is untrusted) through the real
 * server: libmicrohttpd on a unix socket on an sd-event loop, the route
 * table, the /v1 handlers with fake VM operations (the VM spec parser
 * behind POST /v1/vms), the crash listing over a small spool.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "api.h"
#include "config.h"
#include "spool.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static sd_event *fz_event;
static struct api *fz_api;
static struct spool *fz_spool;
static char fz_sock[108];

static int fz_vms(void *ud, json_object **ret)
{
	(void)ud;
	*ret = json_object_new_array();
	return *ret ? 0 : -ENOMEM;
}

static int fz_add(void *ud, const char *spec, char *err, size_t errlen)
{
	struct vm_config vc;

	(void)ud;
	return cfg_parse_vm_spec(spec, &vc, err, errlen);
}

static int fz_remove(void *ud, const char *name, char *err, size_t errlen)
{
	(void)ud;
	(void)name;
	snprintf(err, errlen, "no such VM");
	return -ENOENT;
}

static const struct api_ops fz_ops = {
	.vms_list = fz_vms, .vm_add = fz_add, .vm_remove = fz_remove,
};

static void fz_setup(void)
{
	char dir[64], err[256];
	struct api_config cfg = { 0 };

	snprintf(dir, sizeof(dir), "/tmp/fuzz_api.%d", (int)getpid());
	if (spool_open(dir, true, &fz_spool, err, sizeof(err)) < 0 || sd_event_new(&fz_event) < 0)
		abort();
	snprintf(fz_sock, sizeof(fz_sock), "%s/api.sock", dir);
	cfg.socket_path = fz_sock;
	cfg.connection_timeout_sec = 1;
	if (api_new(fz_event, fz_spool, &cfg, &fz_ops, NULL, &fz_api, err, sizeof(err)) < 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char buf[65536];
	int fd;

	if (!fz_api)
		fz_setup();
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return 0;
	memcpy(sa.sun_path, fz_sock, strlen(fz_sock));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return 0;
	}
	/* The request, then the loop until the server is done with it. */
	for (size_t off = 0; off < size;) {
		ssize_t n = write(fd, data + off, size - off);

		if (n <= 0) {
			(void)sd_event_run(fz_event, 1000); /* let the server read */
			if (n < 0 && errno != EAGAIN)
				break;
			continue;
		}
		off += (size_t)n;
	}
	(void)shutdown(fd, SHUT_WR);
	for (int i = 0; i < 50; i++) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;

		(void)sd_event_run(fz_event, 2000);
		if (poll(&p, 1, 0) <= 0)
			continue;
		n = read(fd, buf, sizeof(buf));
		if (n == 0 || (n < 0 && errno != EAGAIN))
			break;
	}
	close(fd);
	return 0;
}
