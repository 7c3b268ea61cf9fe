// SPDX-License-Identifier: MIT
/* Unit tests: interned strings (hostd/strpool.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "strpool.h"

static void test_equal_strings_once(void **state)
{
	struct strpool p = STRPOOL_INIT;
	char a[] = "web1", b[] = "web1";
	const char *x, *y, *e;

	(void)state;
	x = strpool_intern(&p, a);
	y = strpool_intern(&p, b);
	assert_non_null(x);
	assert_ptr_equal(x, y);
	assert_ptr_not_equal(x, a);		/* a copy: the caller's buffer may go */
	a[0] = 'X';
	assert_string_equal(x, "web1");
	e = strpool_intern(&p, "");
	assert_non_null(e);
	assert_string_equal(e, "");
	assert_ptr_equal(strpool_intern(&p, ""), e);
	assert_int_equal(p.n, 2);
	strpool_free(&p);
	assert_int_equal(p.n, 0);
	assert_null(p.slots);
}

/* 100,000 ids over many chunks and rehashes, each found again; one longer than a chunk. */
static void test_many_and_long(void **state)
{
	struct strpool p = STRPOOL_INIT;
	const char **got = calloc(100000, sizeof(*got));
	char *big = malloc(200000);
	char id[64];

	(void)state;
	assert_non_null(got);
	assert_non_null(big);
	for (unsigned int i = 0; i < 100000; i++) {
		snprintf(id, sizeof(id), "20261201T%06u.000000Z-vm%04u", i, i % 1000);
		got[i] = strpool_intern(&p, id);
		assert_non_null(got[i]);
	}
	for (unsigned int i = 0; i < 100000; i += 7) {
		snprintf(id, sizeof(id), "20261201T%06u.000000Z-vm%04u", i, i % 1000);
		assert_ptr_equal(strpool_intern(&p, id), got[i]);
		assert_string_equal(got[i], id);
	}
	assert_int_equal(p.n, 100000);
	assert_true(p.n_slots >= 2 * p.n);
	memset(big, 'b', 199999);
	big[199999] = '\0';
	assert_string_equal(strpool_intern(&p, big), big);
	assert_ptr_equal(strpool_intern(&p, big), strpool_intern(&p, big));
	/* the chunks hold the strings, not a malloc each: about their bytes */
	assert_true(p.bytes < 100000 * 40 + 200000 + 64 * 1024 * 2);
	strpool_free(&p);
	free(got);
	free(big);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_equal_strings_once),
		cmocka_unit_test(test_many_and_long),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
