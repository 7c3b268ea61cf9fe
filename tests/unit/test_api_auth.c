// SPDX-License-Identifier: MIT
/* Unit tests: the TCP listener's bearer token file and its comparison (api_auth.c). */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "api.h"

static char dir[] = "/tmp/pbauthXXXXXX";

static const char *token_file(const char *content, mode_t mode)
{
	static char path[64];
	int fd;

	snprintf(path, sizeof(path), "%s/token", dir);
	(void)unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
	assert_int_equal(close(fd), 0);
	assert_int_equal(chmod(path, mode), 0);
	return path;
}

static int setup(void **state)
{
	(void)state;
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char path[64];

	(void)state;
	snprintf(path, sizeof(path), "%s/token", dir);
	(void)unlink(path);
	return rmdir(dir);
}

static void test_token_loads(void **state)
{
	char err[256] = "", *tok = NULL;

	(void)state;
	assert_int_equal(api_token_load(token_file("0123456789abcdef0123\n", 0600), &tok, err,
					sizeof(err)), 0);
	assert_string_equal(tok, "0123456789abcdef0123");
	free(tok);
	assert_int_equal(api_token_load(token_file("Zm9vYmFyYmF6cXV4cXV1eA==", 0400), &tok, err,
					sizeof(err)), 0);
	assert_string_equal(tok, "Zm9vYmFyYmF6cXV4cXV1eA==");
	free(tok);
}

static void test_token_file_refused(void **state)
{
	char err[256] = "", path[64], *tok = NULL;

	(void)state;
	assert_int_equal(api_token_load(token_file("0123456789abcdef0123\n", 0640), &tok, err,
					sizeof(err)), -EPERM);
	assert_non_null(strstr(err, "mode 0640"));
	assert_int_equal(api_token_load(token_file("0123456789abcdef0123\n", 0604), &tok, err,
					sizeof(err)), -EPERM);
	assert_int_equal(api_token_load(token_file("0123456789abcdef0123\n", 0620), &tok, err,
					sizeof(err)), -EPERM);
	/* Too short, spaces, '=' inside, empty. */
	assert_int_equal(api_token_load(token_file("short\n", 0600), &tok, err, sizeof(err)),
			 -EINVAL);
	assert_int_equal(api_token_load(token_file("0123456789 abcdef0123\n", 0600), &tok, err,
					sizeof(err)), -EINVAL);
	assert_int_equal(api_token_load(token_file("0123456789=abcdef0123\n", 0600), &tok, err,
					sizeof(err)), -EINVAL);
	assert_int_equal(api_token_load(token_file("", 0600), &tok, err, sizeof(err)), -EINVAL);
	snprintf(path, sizeof(path), "%s/absent", dir);
	assert_int_equal(api_token_load(path, &tok, err, sizeof(err)), -ENOENT);
	assert_int_equal(api_token_load(dir, &tok, err, sizeof(err)), -EINVAL);
	assert_null(tok);
}

static void test_token_too_long(void **state)
{
	char err[256] = "", *tok = NULL, big[API_TOKEN_MAX + 3];

	(void)state;
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(api_token_load(token_file(big, 0600), &tok, err, sizeof(err)), -EINVAL);
	big[API_TOKEN_MAX] = '\n';
	assert_int_equal(api_token_load(token_file(big, 0600), &tok, err, sizeof(err)), 0);
	assert_int_equal(strlen(tok), API_TOKEN_MAX);
	free(tok);
}

static void test_token_equal(void **state)
{
	(void)state;
	assert_true(api_token_equal("0123456789abcdef", "0123456789abcdef"));
	assert_false(api_token_equal("0123456789abcdef", "0123456789abcdeF"));
	assert_false(api_token_equal("0123456789abcdef", "0123456789abcde"));
	assert_false(api_token_equal("0123456789abcdef", "0123456789abcdef0"));
	assert_false(api_token_equal("0123456789abcdef", ""));
	assert_false(api_token_equal("0123456789abcdef", "x123456789abcdef"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_token_loads),
		cmocka_unit_test(test_token_file_refused),
		cmocka_unit_test(test_token_too_long),
		cmocka_unit_test(test_token_equal),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
