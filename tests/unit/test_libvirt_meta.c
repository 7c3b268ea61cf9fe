// SPDX-License-Identifier: MIT
/* Unit tests: panicbroker's metadata in a libvirt domain (libvirt_meta.h). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "libvirt_meta.h"

#define NS "xmlns:pb='" LV_META_URI "'"

static void test_no_metadata_is_the_defaults(void **state)
{
	struct vm_config vc;
	char err[CFG_ERR_MAX] = "";

	(void)state;
	assert_int_equal(lv_meta_parse("web1", NULL, &vc, err, sizeof(err)), 0);
	assert_string_equal(vc.name, "web1");
	assert_int_equal(vc.final_action, FINAL_ACTION_RESTART);
	assert_int_equal(vc.snapshot, SNAPSHOT_ON_KDUMP_FAILURE);
	assert_string_equal(vc.mailbox_path, "");
	assert_string_equal(vc.qmp_path, LV_QMP_MARK);
}

static void test_attributes_are_vm_spec_keys(void **state)
{
	struct vm_config vc;
	char err[CFG_ERR_MAX] = "";

	(void)state;
	assert_int_equal(lv_meta_parse("web1",
		"<pb:panicbroker " NS " final_action='poweroff' snapshot='always' "
		"mailbox='/dev/shm/panicbroker-web1' kdump_session_timeout='30'>"
		"<pb:added panic='yes'/></pb:panicbroker>", &vc, err, sizeof(err)), 0);
	assert_int_equal(vc.final_action, FINAL_ACTION_POWEROFF);
	assert_int_equal(vc.snapshot, SNAPSHOT_ALWAYS);
	assert_string_equal(vc.mailbox_path, "/dev/shm/panicbroker-web1");
	assert_int_equal(vc.kdump_session_timeout_usec, 30 * 1000000ULL);
}

static void test_malformed_gives_reason_and_defaults(void **state)
{
	static const char *const bad[] = {
		"<pb:panicbroker " NS " final_action='bogus'/>",
		"<pb:panicbroker " NS " qmp='/run/x.sock'/>",
		"<pb:panicbroker " NS " mailbox='/a,b'/>",
		"<pb:panicbroker " NS " colour='red'/>",
		"<pb:panicbroker " NS " kdump_session_timeout='30'/>", /* needs mailbox */
		"<pb:panicbroker " NS " final_action='restart'",       /* not XML */
		"<other/>",
		"",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct vm_config vc;
		char err[CFG_ERR_MAX] = "";

		assert_int_equal(lv_meta_parse("web1", bad[i], &vc, err, sizeof(err)), -EINVAL);
		assert_true(err[0] != '\0');
		assert_string_equal(vc.name, "web1");
		assert_int_equal(vc.final_action, FINAL_ACTION_RESTART);
	}
}

static void test_domain_name_must_be_a_vm_name(void **state)
{
	struct vm_config vc;
	char err[CFG_ERR_MAX] = "";

	(void)state;
	assert_int_equal(lv_meta_parse("web 1", NULL, &vc, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "web 1"));
}

static void test_build_round_trips(void **state)
{
	char *const kv[] = { "final_action=preserve", "mailbox=/dev/shm/panicbroker-db" };
	char *const bad[] = { "final_action=sometimes" };
	char err[CFG_ERR_MAX] = "", *xml = NULL;
	struct vm_config vc;

	(void)state;
	assert_int_equal(lv_meta_build("db", kv, 2, &xml, err, sizeof(err)), 0);
	assert_non_null(strstr(xml, "final_action=\"preserve\""));
	assert_int_equal(lv_meta_parse("db", xml, &vc, err, sizeof(err)), 0);
	assert_int_equal(vc.final_action, FINAL_ACTION_PRESERVE);
	assert_string_equal(vc.mailbox_path, "/dev/shm/panicbroker-db");
	free(xml);
	xml = NULL;
	assert_int_equal(lv_meta_build("db", bad, 1, &xml, err, sizeof(err)), -EINVAL);
	assert_null(xml);
	assert_non_null(strstr(err, "sometimes"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_no_metadata_is_the_defaults),
		cmocka_unit_test(test_attributes_are_vm_spec_keys),
		cmocka_unit_test(test_malformed_gives_reason_and_defaults),
		cmocka_unit_test(test_domain_name_must_be_a_vm_name),
		cmocka_unit_test(test_build_round_trips),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
