// SPDX-License-Identifier: MIT
/* The local API's unix socket (api_socket.h). */
#include <grp.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "api_socket.h"
#include "common.h"
#include "util.h"

#define API_LISTEN_BACKLOG 64


/* A name or a number into @ret_gid. */
static int api_group_resolve(const char *group, gid_t *ret_gid, char *err,
			     size_t errlen)
{
	struct group grp, *found = NULL;
	_cleanup_free_ char *buf = NULL;
	size_t buf_len = 4096;
	uint64_t gid;
	int r;

	if (parse_u64(group, 0, (gid_t)-2, &gid) == 0) {
		*ret_gid = (gid_t)gid;
		return 0;
	}
	for (;;) {
		free(buf);
		buf = malloc(buf_len);
		if (!buf)
			return -ENOMEM;
		r = getgrnam_r(group, &grp, buf, buf_len, &found);
		if (r != ERANGE || buf_len >= 1024 * 1024)
			break;
		buf_len *= 4;
	}
	if (r != 0)
		return err_set(err, errlen, -r, "cannot look up group '%s': %s", group,
			       strerror(r));
	if (!found)
		return err_set(err, errlen, -ENOENT, "no group '%s'", group);
	*ret_gid = grp.gr_gid;
	return 0;
}

/*
 * Clears the way for a new socket at @path: a socket nobody accepts on is
 * stale and removed; a live one is another daemon's.
 */
static int api_socket_clear_stale(const struct sockaddr_un *sa, char *err,
				  size_t errlen)
{
	_cleanup_close_ int fd = -1;
	struct stat st;

	if (lstat(sa->sun_path, &st) < 0) {
		if (errno == ENOENT)
			return 0;
		return err_set(err, errlen, -errno, "cannot stat %s: %s", sa->sun_path,
			       strerror(errno));
	}
	if (!S_ISSOCK(st.st_mode))
		return err_set(err, errlen, -EEXIST, "%s exists and is not a socket",
			       sa->sun_path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return err_set(err, errlen, -errno, "cannot create a socket: %s",
			       strerror(errno));
	if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0 || errno == EAGAIN)
		return err_set(err, errlen, -EADDRINUSE,
			       "another daemon is listening on %s", sa->sun_path);
	if (errno != ECONNREFUSED)
		return err_set(err, errlen, -errno, "cannot probe %s: %s", sa->sun_path,
			       strerror(errno));
	if (unlink(sa->sun_path) < 0 && errno != ENOENT)
		return err_set(err, errlen, -errno, "cannot remove the stale socket %s: %s",
			       sa->sun_path, strerror(errno));
	return 0;
}

/*
 * The parent directory, one level, if it is missing (/run/panicbroker
 * without systemd's RuntimeDirectory=): 0755 whatever the umask, so that
 * the socket's group can reach the socket; the socket's mode guards it.
 */
static int api_socket_parent(const char *path, char *err, size_t errlen)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char *slash;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return 0;
	*slash = '\0';
	if (mkdir(dir, 0755) < 0) {
		if (errno == EEXIST)
			return 0;
		return err_set(err, errlen, -errno, "cannot create %s: %s", dir,
			       strerror(errno));
	}
	if (chmod(dir, 0755) < 0)
		return err_set(err, errlen, -errno, "cannot chmod %s: %s", dir,
			       strerror(errno));
	return 0;
}

int api_socket_open(const char *path, mode_t mode, const char *group,
		    struct api_socket *ret, int *ret_fd, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	_cleanup_close_ int fd = -1;
	bool has_gid = group && group[0];
	gid_t gid = 0;
	mode_t umask_saved;
	struct stat st;
	int r;

	*ret = (struct api_socket){ 0 };
	if (!path || path[0] != '/')
		return err_set(err, errlen, -EINVAL, "the API socket needs an absolute path");
	if (strlen(path) >= sizeof(sa.sun_path))
		return err_set(err, errlen, -ENAMETOOLONG,
			       "API socket path is longer than a unix socket allows (%zu)",
			       sizeof(sa.sun_path) - 1);
	strcpy(sa.sun_path, path);
	if (has_gid && (r = api_group_resolve(group, &gid, err, errlen)) < 0)
		return r;
	r = api_socket_parent(sa.sun_path, err, errlen);
	if (r < 0)
		return r;
	r = api_socket_clear_stale(&sa, err, errlen);
	if (r < 0)
		return r;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return err_set(err, errlen, -errno, "cannot create a socket: %s",
			       strerror(errno));
	/* Born 0600, widened once its group is right: never more open than meant.
	 * The umask is the process's; the daemon is single threaded. */
	umask_saved = umask(0177);
	r = bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ? -errno : 0;
	umask(umask_saved);
	if (r < 0)
		return err_set(err, errlen, r, "cannot bind %s: %s", sa.sun_path, strerror(-r));
	if (lstat(sa.sun_path, &st) < 0) {
		r = err_set(err, errlen, -errno, "cannot stat %s: %s", sa.sun_path,
			    strerror(errno));
		goto unlink;
	}
	ret->dev = st.st_dev;
	ret->ino = st.st_ino;
	if (has_gid && chown(sa.sun_path, (uid_t)-1, gid) < 0) {
		r = err_set(err, errlen, -errno, "cannot give %s to group %s: %s",
			    sa.sun_path, group, strerror(errno));
		goto unlink;
	}
	if (chmod(sa.sun_path, mode) < 0) {
		r = err_set(err, errlen, -errno, "cannot chmod %s: %s", sa.sun_path,
			    strerror(errno));
		goto unlink;
	}
	if (listen(fd, API_LISTEN_BACKLOG) < 0) {
		r = err_set(err, errlen, -errno, "cannot listen on %s: %s", sa.sun_path,
			    strerror(errno));
		goto unlink;
	}
	ret->path = strdup(sa.sun_path);
	if (!ret->path) {
		r = -ENOMEM;
		goto unlink;
	}
	*ret_fd = TAKE_FD(fd);
	return 0;
unlink:
	/* Best effort: the socket is useless, a later start clears it anyway. */
	(void)unlink(sa.sun_path);
	return r;
}

/* "ADDR:PORT" or "[ADDR]:PORT" into @host and @port. */
static int api_listen_split(const char *addr, char *host, size_t host_len,
			    char *port, size_t port_len)
{
	const char *colon, *h = addr;
	size_t n;

	if (addr[0] == '[') {
		const char *close = strchr(addr, ']');

		if (!close || close[1] != ':')
			return -EINVAL;
		h = addr + 1;
		n = (size_t)(close - h);
		colon = close + 1;
	} else {
		colon = strrchr(addr, ':');
		if (!colon || strchr(addr, ':') != colon)
			return -EINVAL;
		n = (size_t)(colon - addr);
	}
	if (n == 0 || n >= host_len || strlen(colon + 1) == 0 ||
	    strlen(colon + 1) >= port_len)
		return -EINVAL;
	memcpy(host, h, n);
	host[n] = '\0';
	strcpy(port, colon + 1);
	return 0;
}

int api_socket_open_tcp(const char *addr, int *ret_fd, char *ret_name,
			size_t name_len, char *err, size_t errlen)
{
	struct addrinfo hints = {
		.ai_family = AF_UNSPEC,
		.ai_socktype = SOCK_STREAM,
		.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE,
	};
	struct addrinfo *ai = NULL;
	struct sockaddr_storage ss;
	socklen_t ss_len = sizeof(ss);
	_cleanup_close_ int fd = -1;
	char host[INET6_ADDRSTRLEN + 8], port[8], bhost[INET6_ADDRSTRLEN], bport[8];
	uint64_t p;
	int one = 1, r;

	if (api_listen_split(addr, host, sizeof(host), port, sizeof(port)) < 0 ||
	    parse_u64(port, 0, 65535, &p) < 0)
		return err_set(err, errlen, -EINVAL,
			       "listen must be ADDR:PORT with a numeric address (127.0.0.1:9877, [::1]:9877), not '%s'",
			       addr);
	r = getaddrinfo(host, port, &hints, &ai);
	if (r == EAI_NONAME)
		return err_set(err, errlen, -EINVAL,
			       "listen %s: '%s' is not a numeric IPv4 address or [IPv6] address",
			       addr, host);
	if (r != 0)
		return err_set(err, errlen, -EINVAL, "listen %s: %s", addr, gai_strerror(r));
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		r = err_set(err, errlen, -errno, "cannot create a socket: %s", strerror(errno));
		goto out;
	}
	/* A restart must not wait for the old connections' TIME_WAIT. */
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    (ai->ai_family == AF_INET6 &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0)) {
		r = err_set(err, errlen, -errno, "cannot set socket options: %s", strerror(errno));
		goto out;
	}
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
		r = err_set(err, errlen, -errno, "cannot bind %s: %s", addr, strerror(errno));
		goto out;
	}
	if (listen(fd, API_LISTEN_BACKLOG) < 0) {
		r = err_set(err, errlen, -errno, "cannot listen on %s: %s", addr, strerror(errno));
		goto out;
	}
	if (getsockname(fd, (struct sockaddr *)&ss, &ss_len) < 0 ||
	    getnameinfo((struct sockaddr *)&ss, ss_len, bhost, sizeof(bhost), bport, sizeof(bport),
			NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
		r = err_set(err, errlen, -EIO, "cannot tell the address bound for %s", addr);
		goto out;
	}
	snprintf(ret_name, name_len, ss.ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", bhost, bport);
	*ret_fd = TAKE_FD(fd);
	r = 0;
out:
	freeaddrinfo(ai);
	return r;
}

int api_socket_remove(const struct api_socket *s)
{
	struct stat st;

	if (!s->path || lstat(s->path, &st) < 0)
		return 0;
	if (st.st_dev != s->dev || st.st_ino != s->ino)
		return 0; /* someone else's now */
	if (unlink(s->path) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

void api_socket_done(struct api_socket *s)
{
	free(s->path);
	*s = (struct api_socket){ 0 };
}
