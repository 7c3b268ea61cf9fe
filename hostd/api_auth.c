// SPDX-License-Identifier: MIT
/* The TCP listener's bearer token (api.h): read from its file, compared. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "api.h"
#include "common.h"
#include "io.h"
#include "util.h"

/* RFC 6750 b64token: the characters, then '=' padding only. */
static bool api_token_chars_ok(const char *s, size_t n)
{
	size_t i = 0;

	for (; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || strchr("-._~+/", c)))
			break;
	}
	for (; i < n; i++)
		if (s[i] != '=')
			return false;
	return true;
}

int api_token_load(const char *path, char **ret, char *err, size_t errlen)
{
	_cleanup_close_ int fd = -1;
	char buf[API_TOKEN_MAX + 2];
	struct stat st;
	ssize_t n;
	size_t len;
	char *tok;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
	if (fd < 0)
		return err_set(err, errlen, -errno, "cannot open the API token file %s: %s",
			       path, strerror(errno));
	if (fstat(fd, &st) < 0)
		return err_set(err, errlen, -errno, "cannot stat %s: %s", path, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return err_set(err, errlen, -EINVAL, "the API token file %s is not a regular file",
			       path);
	if (st.st_mode & 077)
		return err_set(err, errlen, -EPERM,
			       "the API token file %s has mode %04o: group and others may not read it (chmod 600)",
			       path, (unsigned int)(st.st_mode & 07777));
	if (st.st_uid != geteuid() && st.st_uid != 0)
		return err_set(err, errlen, -EPERM,
			       "the API token file %s belongs to uid %u, neither root nor the daemon's user",
			       path, (unsigned int)st.st_uid);
	n = io_read_full(fd, buf, sizeof(buf) - 1);
	if (n < 0)
		return err_set(err, errlen, (int)n, "cannot read %s: %s", path, strerror((int)-n));
	buf[n] = '\0';
	len = strcspn(buf, "\r\n");
	if (len == (size_t)n && (size_t)n > API_TOKEN_MAX)
		return err_set(err, errlen, -EINVAL, "the token in %s is longer than %d characters",
			       path, API_TOKEN_MAX);
	buf[len] = '\0';
	if (len < API_TOKEN_MIN || len > API_TOKEN_MAX || !api_token_chars_ok(buf, len))
		return err_set(err, errlen, -EINVAL,
			       "the token in %s must be one line of %d to %d characters of A-Z a-z 0-9 - . _ ~ + / (e.g. openssl rand -hex 32)",
			       path, API_TOKEN_MIN, API_TOKEN_MAX);
	tok = strdup(buf);
	explicit_bzero(buf, sizeof(buf));
	if (!tok)
		return -ENOMEM;
	*ret = tok;
	return 0;
}

bool api_token_equal(const char *expected, const char *given)
{
	size_t n = strlen(expected), g = strnlen(given, API_TOKEN_MAX + 1);
	unsigned char diff = (unsigned char)(n != g);
	volatile unsigned char acc = 0;

	/* Every byte of @expected is looked at, whatever matched before; past
	 * @given's end its NUL (then itself) stands in. */
	for (size_t i = 0; i < n; i++) {
		unsigned char c = i < g ? (unsigned char)given[i] : 0;

		acc |= (unsigned char)expected[i] ^ c;
	}
	return (acc | diff) == 0;
}
