// SPDX-License-Identifier: MIT
/* Unit tests: VM specs, options and configuration files. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <syslog.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "config.h"

static void test_vm_spec_defaults(void **state)
{
	struct vm_config vm;
	char err[CFG_ERR_MAX] = "";

	(void)state;
	assert_int_equal(cfg_parse_vm_spec("web1,qmp=/run/q.sock", &vm, err, sizeof(err)), 0);
	assert_string_equal(vm.name, "web1");
	assert_string_equal(vm.qmp_path, "/run/q.sock");
	assert_int_equal(vm.final_action, FINAL_ACTION_RESTART);
	assert_int_equal(vm.kdump_timeout_usec, CFG_DEFAULT_KDUMP_TIMEOUT_SEC * 1000000ULL);
	assert_int_equal(vm.snapshot, SNAPSHOT_ON_KDUMP_FAILURE);
	assert_string_equal(vm.snapshot_format, "kdump-zlib");
	assert_string_equal(vm.mailbox_path, "");
	assert_int_equal(vm.kdump_session_timeout_usec,
			 CFG_DEFAULT_KDUMP_SESSION_TIMEOUT_SEC * 1000000ULL);
	assert_int_equal(vm.kdump_progress_timeout_usec,
			 CFG_DEFAULT_KDUMP_PROGRESS_TIMEOUT_SEC * 1000000ULL);
	assert_int_equal(CFG_DEFAULT_KDUMP_SESSION_TIMEOUT_SEC, 120);
	assert_int_equal(CFG_DEFAULT_KDUMP_PROGRESS_TIMEOUT_SEC, 300);
}

static void test_vm_spec_all_keys(void **state)
{
	struct vm_config vm;
	char err[CFG_ERR_MAX] = "";

	(void)state;
	assert_int_equal(cfg_parse_vm_spec("db.2,final_action=preserve,qmp=/q,kdump_timeout=30,"
					   "snapshot=never,snapshot_format=elf,mailbox=/dev/shm/pb-db.2",
					   &vm, err, sizeof(err)), 0);
	assert_string_equal(vm.mailbox_path, "/dev/shm/pb-db.2");
	assert_int_equal(vm.snapshot, SNAPSHOT_NEVER);
	assert_string_equal(vm.snapshot_format, "elf");
	assert_int_equal(vm.final_action, FINAL_ACTION_PRESERVE);
	assert_int_equal(vm.kdump_timeout_usec, 30 * 1000000ULL);
	assert_string_equal(vm.qmp_path, "/q");
}

static void test_vm_spec_kdump_session_keys(void **state)
{
	struct vm_config vm;
	char err[CFG_ERR_MAX] = "";

	(void)state;
	/* Either order: the mailbox= check is made once the spec is read. */
	assert_int_equal(cfg_parse_vm_spec("a,kdump_session_timeout=2,qmp=/q,mailbox=/m,"
					   "kdump_progress_timeout=604800",
					   &vm, err, sizeof(err)), 0);
	assert_int_equal(vm.kdump_session_timeout_usec, 2 * 1000000ULL);
	assert_int_equal(vm.kdump_progress_timeout_usec, 604800 * 1000000ULL);
	assert_int_equal(vm.kdump_timeout_usec, CFG_DEFAULT_KDUMP_TIMEOUT_SEC * 1000000ULL);
	assert_int_equal(cfg_parse_vm_spec("a,qmp=/q,mailbox=/m,kdump_progress_timeout=1",
					   &vm, err, sizeof(err)), 0);
	assert_int_equal(vm.kdump_progress_timeout_usec, 1000000ULL);
	assert_int_equal(vm.kdump_session_timeout_usec,
			 CFG_DEFAULT_KDUMP_SESSION_TIMEOUT_SEC * 1000000ULL);
}

struct bad_spec {
	const char *spec;
	const char *reason; /* a phrase the error must contain */
};

static void test_vm_spec_errors(void **state)
{
	static const struct bad_spec bad[] = {
		{ "", "does not start with a name" },
		{ ",qmp=/q", "does not start with a name" },
		{ "web1", "qmp=PATH is required" },
		{ "-x,qmp=/q", "is not 1-64 characters" },
		{ "a/b,qmp=/q", "is not 1-64 characters" },
		{ "web1,qmp=", "needs a socket path" },
		{ "web1,qmp=/q,qmp=/r", "given twice" },
		{ "web1,qmp=/q,mailbox=", "needs an absolute file path" },
		{ "web1,qmp=/q,mailbox=pb.mbox", "needs an absolute file path" },
		{ "web1,qmp=/q,color=red", "unknown key 'color'" },
		{ "web1,qmp=/q,final_action=explode", "restart, poweroff or preserve" },
		{ "web1,qmp=/q,kdump_timeout=0", "whole seconds" },
		{ "web1,qmp=/q,kdump_timeout=12x", "whole seconds" },
		{ "web1,qmp=/q,kdump_timeout=99999999999999999999", "whole seconds" },
		{ "web1,qmp=/q,novalue", "not key=value" },
		{ "web1,qmp=/q,snapshot=maybe", "always, on-kdump-failure or never" },
		{ "web1,qmp=/q,snapshot_format=win-dmp", "kdump-zlib, kdump-lzo, kdump-snappy or elf" },
		{ "web1,qmp=/q,kdump_timeout=604801", "whole seconds from 1 to 604800" },
		{ "web1,qmp=/q,mailbox=/m,kdump_session_timeout=0",
		  "kdump_session_timeout must be whole seconds from 1 to 604800, not '0'" },
		{ "web1,qmp=/q,mailbox=/m,kdump_session_timeout=-1", "kdump_session_timeout must be whole seconds" },
		{ "web1,qmp=/q,mailbox=/m,kdump_session_timeout=1.5", "kdump_session_timeout must be whole seconds" },
		{ "web1,qmp=/q,mailbox=/m,kdump_session_timeout=", "kdump_session_timeout must be whole seconds" },
		{ "web1,qmp=/q,mailbox=/m,kdump_progress_timeout=604801",
		  "kdump_progress_timeout must be whole seconds from 1 to 604800, not '604801'" },
		{ "web1,qmp=/q,mailbox=/m,kdump_progress_timeout=5m", "kdump_progress_timeout must be whole seconds" },
		{ "web1,qmp=/q,mailbox=/m,kdump_progress_timeout=1,kdump_progress_timeout=2", "given twice" },
		{ "web1,qmp=/q,kdump_session_timeout=30",
		  "VM web1: kdump_session_timeout times the kdump kernel's broker channel session, so it needs mailbox=PATH" },
		{ "web1,kdump_progress_timeout=30,qmp=/q", "kdump_progress_timeout times the kdump kernel's broker channel session" },
	};
	char err[CFG_ERR_MAX];
	struct vm_config vm;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		assert_int_equal(cfg_parse_vm_spec(bad[i].spec, &vm, err, sizeof(err)), -EINVAL);
		if (!strstr(err, bad[i].reason))
			fail_msg("spec '%s': error '%s' lacks '%s'", bad[i].spec, err, bad[i].reason);
	}
}

static void test_vm_spec_long_path(void **state)
{
	char spec[300], err[CFG_ERR_MAX];
	struct vm_config vm;

	(void)state;
	snprintf(spec, sizeof(spec), "a,qmp=/%0200d", 0);
	assert_int_equal(cfg_parse_vm_spec(spec, &vm, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "longer than a unix socket allows"));
}

static void test_duplicates_refused(void **state)
{
	struct config cfg;
	char err[CFG_ERR_MAX];

	(void)state;
	cfg_init(&cfg);
	assert_int_equal(cfg_set_option(&cfg, "vm", "a,qmp=/q1", err, sizeof(err)), 0);
	assert_int_equal(cfg_set_option(&cfg, "vm", "a,qmp=/q2", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "configured twice"));
	assert_int_equal(cfg_set_option(&cfg, "vm", "b,qmp=/q1", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "share the QMP socket"));
	assert_int_equal(cfg_set_option(&cfg, "vm", "b,qmp=/q2,mailbox=/m", err, sizeof(err)), 0);
	assert_int_equal(cfg_set_option(&cfg, "vm", "c,qmp=/q3,mailbox=/m", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "share the mailbox /m"));
	assert_int_equal(cfg.n_vms, 2);
	cfg_free(&cfg);
}

static void test_config_file(void **state)
{
	char path[] = "/tmp/pbcfgXXXXXX", err[CFG_ERR_MAX] = "";
	struct config cfg;
	FILE *f;
	int fd;

	(void)state;
	fd = mkstemp(path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	fputs("# panicbrokerd test\n\n  spool /srv/pb  \n"
	      "vm a,qmp=/qa\n"
	      "\tvm b,qmp=/qb,final_action=poweroff\n"
	      "vm c,qmp=/qc,mailbox=/dev/shm/pb-c,kdump_session_timeout=60,kdump_progress_timeout=900\n"
	      "log-level debug\n", f);
	fclose(f);
	cfg_init(&cfg);
	assert_int_equal(cfg_load_file(&cfg, path, err, sizeof(err)), 0);
	assert_string_equal(cfg.spool, "/srv/pb");
	assert_int_equal(cfg.n_vms, 3);
	assert_int_equal(cfg.vms[1].final_action, FINAL_ACTION_POWEROFF);
	assert_int_equal(cfg.vms[2].kdump_session_timeout_usec, 60 * 1000000ULL);
	assert_int_equal(cfg.vms[2].kdump_progress_timeout_usec, 900 * 1000000ULL);
	assert_int_equal(cfg.log_level, LOG_DEBUG);
	cfg_free(&cfg);

	f = fopen(path, "w");
	fputs("vm a,qmp=/qa\nfrobnicate yes\n", f);
	fclose(f);
	cfg_init(&cfg);
	assert_int_equal(cfg_load_file(&cfg, path, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, ":2: unknown option 'frobnicate'"));
	cfg_free(&cfg);

	f = fopen(path, "w");
	fputs("vm a,qmp=/qa\nvm b,qmp=/qb,kdump_progress_timeout=10\n", f);
	fclose(f);
	cfg_init(&cfg);
	assert_int_equal(cfg_load_file(&cfg, path, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, ":2: VM b: kdump_progress_timeout times"));
	assert_non_null(strstr(err, "needs mailbox=PATH"));
	cfg_free(&cfg);
	unlink(path);

	cfg_init(&cfg);
	assert_int_equal(cfg_load_file(&cfg, "/nonexistent/pb.conf", err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "/nonexistent/pb.conf"));
	cfg_free(&cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vm_spec_defaults),
		cmocka_unit_test(test_vm_spec_all_keys),
		cmocka_unit_test(test_vm_spec_kdump_session_keys),
		cmocka_unit_test(test_vm_spec_errors),
		cmocka_unit_test(test_vm_spec_long_path),
		cmocka_unit_test(test_duplicates_refused),
		cmocka_unit_test(test_config_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
