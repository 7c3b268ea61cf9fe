// SPDX-License-Identifier: MIT
/*
 * panicbrokerd's options: --help, the getopt table (also read again at
 * SIGHUP), and --check-config's print of the effective configuration.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include "common.h"
#include "config.h"
#include "version.h"
#include "libvirt_daemon.h"
#include "daemon_options.h"

static void daemon_usage(FILE *f)
{
	fprintf(f,
		"Usage: panicbrokerd [OPTIONS] --vm NAME,qmp=PATH[,KEY=VALUE...] [--vm ...]\n"
		"\n"
		"Hears guest panics over QMP, records each crash under the spool and\n"
		"applies the VM's final action. Runs in the foreground.\n"
		"\n"
		"Options:\n"
		"  -s, --spool DIR        crash records go to DIR/crashes (default %s)\n"
		"  -V, --vm SPEC          supervise a VM; repeat for more VMs\n"
		"  -c, --config FILE      read options from FILE (lines 'spool DIR', 'vm SPEC',\n"
		"                         'log-level LEVEL'; '#' comments)\n"
		"  -l, --log-level LEVEL  error, warning, notice, info (default) or debug\n"
		"  -m, --max-dumps N      memory snapshots in flight at once, all VMs (default %d)\n"
		"  -v, --verbose          same as --log-level debug\n"
		"      --api PATH         serve the local API on socket PATH (default %s)\n"
		"      --no-api           no local API (same as --api off)\n"
		"      --api-group GROUP  give the API socket to GROUP (name or number)\n"
		"      --api-mode MODE    the API socket's mode (default %04o)\n"
		"      --on-crash-exec PROGRAM\n"
		"                         run PROGRAM RECORD_PATH when a crash closes (no shell)\n"
		"      --on-crash-exec-timeout SEC\n"
		"                         kill PROGRAM after SEC seconds (default %d)\n"
		"      --listen ADDR:PORT serve the API over TCP too (e.g. 127.0.0.1:9877); all\n"
		"                         but /metrics need the token of --api-token-file\n"
		"      --api-token-file PATH\n"
		"                         the API's bearer token, one line in a file of mode 0600\n"
		"      --libvirt[=URI]    supervise the libvirt domains that carry panicbroker's\n"
		"                         metadata (default URI %s)\n"
		"      --libvirt-unmarked ignore|observe\n"
		"                         domains without the metadata (default ignore)\n"
		"  -n, --check-config     check the configuration, print it and exit\n"
		"  -h, --help             show this help\n"
		"      --version          show the version\n"
		"\n"
		"VM spec keys:\n"
		"  qmp=PATH               QEMU's QMP unix socket (required)\n"
		"  final_action=ACTION    restart (default), poweroff or preserve\n"
		"  kdump_timeout=SEC      how long a guest may stay in its kdump kernel\n"
		"                         before the final action (default %d)\n"
		"  snapshot=POLICY        on-kdump-failure (default), always or never:\n"
		"                         when to dump the guest's memory into the spool\n"
		"  snapshot_format=FMT    kdump-zlib (default), kdump-lzo, kdump-snappy or elf\n"
		"  mailbox=PATH           the broker channel: backing file of the VM's\n"
		"                         ivshmem-plain device (created 1 MiB if missing)\n"
		"  kdump_session_timeout=SEC\n"
		"                         with mailbox=: how long the kdump kernel has to\n"
		"                         open its session after GUEST_CRASHLOADED (default %d)\n"
		"  kdump_progress_timeout=SEC\n"
		"                         with mailbox=: the longest silence of a running\n"
		"                         kdump session (default %d)\n"
		"\n"
		"See panicbrokerd(8).\n",
		CFG_DEFAULT_SPOOL, CFG_DEFAULT_MAX_DUMPS, CFG_DEFAULT_API_SOCKET,
		CFG_DEFAULT_API_MODE, CFG_DEFAULT_ON_CRASH_EXEC_TIMEOUT_SEC,
		LV_DEFAULT_URI, CFG_DEFAULT_KDUMP_TIMEOUT_SEC,
		CFG_DEFAULT_KDUMP_SESSION_TIMEOUT_SEC, CFG_DEFAULT_KDUMP_PROGRESS_TIMEOUT_SEC);
}

enum { OPT_VERSION = 0x100 };
/* libvirt hosts (hostd/backend_libvirt.h): long only. */
enum { OPT_LIBVIRT = 0x500, OPT_LIBVIRT_UNMARKED };
/* The local API's options (hostd/api.h): long only. */
enum { OPT_API = 0x200, OPT_NO_API, OPT_API_GROUP, OPT_API_MODE };
/* --on-crash-exec (hostd/crash_exec.h): long only. */
enum { OPT_ON_CRASH_EXEC = 0x300, OPT_ON_CRASH_EXEC_TIMEOUT };
/* The API over TCP (hostd/api.h): long only. */
enum { OPT_LISTEN = 0x400, OPT_API_TOKEN_FILE };

/* Returns 0 to run, 1 to exit successfully, negative on a usage error. */
int daemon_parse_args(int argc, char **argv, struct config *cfg,
			     bool *ret_check)
{
	static const struct option opts[] = {
		{ "spool", required_argument, NULL, 's' },
		{ "vm", required_argument, NULL, 'V' },
		{ "config", required_argument, NULL, 'c' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "max-dumps", required_argument, NULL, 'm' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "check-config", no_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ "libvirt", optional_argument, NULL, OPT_LIBVIRT },
		{ "libvirt-unmarked", required_argument, NULL, OPT_LIBVIRT_UNMARKED },
		{ "api", required_argument, NULL, OPT_API },
		{ "no-api", no_argument, NULL, OPT_NO_API },
		{ "api-group", required_argument, NULL, OPT_API_GROUP },
		{ "api-mode", required_argument, NULL, OPT_API_MODE },
		{ "on-crash-exec", required_argument, NULL, OPT_ON_CRASH_EXEC },
		{ "on-crash-exec-timeout", required_argument, NULL, OPT_ON_CRASH_EXEC_TIMEOUT },
		{ "listen", required_argument, NULL, OPT_LISTEN },
		{ "api-token-file", required_argument, NULL, OPT_API_TOKEN_FILE },
		{ 0 },
	};
	char err[CFG_ERR_MAX];
	int c, r;

	while ((c = getopt_long(argc, argv, "s:V:c:l:m:vnh", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			r = cfg_set_option(cfg, "spool", optarg, err, sizeof(err));
			break;
		case 'V':
			r = cfg_set_option(cfg, "vm", optarg, err, sizeof(err));
			break;
		case 'c':
			r = cfg_load_file(cfg, optarg, err, sizeof(err));
			break;
		case 'l':
			r = cfg_set_option(cfg, "log-level", optarg, err, sizeof(err));
			break;
		case 'm':
			r = cfg_set_option(cfg, "max-dumps", optarg, err, sizeof(err));
			break;
		case 'v':
			r = cfg_set_option(cfg, "log-level", "debug", err, sizeof(err));
			break;
		case 'n':
			*ret_check = true;
			r = 0;
			break;
		case 'h':
			daemon_usage(stdout);
			return 1;
		case OPT_VERSION:
			printf("panicbrokerd %s\n", PB_VERSION);
			return 1;
		case OPT_LIBVIRT:
			r = cfg_set_option(cfg, "libvirt", optarg ? optarg : LV_DEFAULT_URI, err,
					   sizeof(err));
			break;
		case OPT_LIBVIRT_UNMARKED:
			r = cfg_set_option(cfg, "libvirt-unmarked", optarg, err, sizeof(err));
			break;
		case OPT_API:
			r = cfg_set_option(cfg, "api", optarg, err, sizeof(err));
			break;
		case OPT_NO_API:
			r = cfg_set_option(cfg, "api", "off", err, sizeof(err));
			break;
		case OPT_API_GROUP:
			r = cfg_set_option(cfg, "api-group", optarg, err, sizeof(err));
			break;
		case OPT_API_MODE:
			r = cfg_set_option(cfg, "api-mode", optarg, err, sizeof(err));
			break;
		case OPT_ON_CRASH_EXEC:
			r = cfg_set_option(cfg, "on-crash-exec", optarg, err, sizeof(err));
			break;
		case OPT_ON_CRASH_EXEC_TIMEOUT:
			r = cfg_set_option(cfg, "on-crash-exec-timeout", optarg, err, sizeof(err));
			break;
		case OPT_LISTEN:
			r = cfg_set_option(cfg, "listen", optarg, err, sizeof(err));
			break;
		case OPT_API_TOKEN_FILE:
			r = cfg_set_option(cfg, "api-token-file", optarg, err, sizeof(err));
			break;
		default:
			daemon_usage(stderr);
			return -EINVAL;
		}
		if (r < 0) {
			fprintf(stderr, "panicbrokerd: %s\n", r == -ENOMEM ? strerror(ENOMEM) : err);
			return r;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "panicbrokerd: unexpected argument '%s'\n", argv[optind]);
		return -EINVAL;
	}
	if (!cfg->spool && !(cfg->spool = strdup(CFG_DEFAULT_SPOOL)))
		return -ENOMEM;
	if (cfg->listen[0] && !cfg->api_socket[0]) {
		fprintf(stderr, "panicbrokerd: --listen serves the local API over TCP too, so it needs the API (not --no-api)\n");
		return -EINVAL;
	}
	if (cfg->listen[0] && !cfg->api_token_file[0]) {
		fprintf(stderr, "panicbrokerd: --listen needs --api-token-file PATH (the bearer token, one line in a file of mode 0600)\n");
		return -EINVAL;
	}
	/* With the API, VMs may all come later (pbctl attach); without, never. */
	if (cfg->n_vms == 0 && !cfg->api_socket[0] && !cfg->libvirt_uri[0]) {
		fprintf(stderr, "panicbrokerd: no VMs configured and no API to add them (use --vm NAME,qmp=PATH, a config file, or the API)\n");
		return -EINVAL;
	}
	return 0;
}

void daemon_print_config(const struct config *cfg)
{
	printf("spool %s\n", cfg->spool);
	printf("max-dumps %u\n", cfg->max_dumps);
	/* The API's lines only when not the defaults. */
	if (strcmp(cfg->api_socket, CFG_DEFAULT_API_SOCKET) != 0)
		printf("api %s\n", cfg->api_socket[0] ? cfg->api_socket : "off");
	if (cfg->api_group[0])
		printf("api-group %s\n", cfg->api_group);
	if (cfg->api_mode != CFG_DEFAULT_API_MODE)
		printf("api-mode %04o\n", cfg->api_mode);
	if (cfg->on_crash_exec[0])
		printf("on-crash-exec %s\non-crash-exec-timeout %llu\n", cfg->on_crash_exec,
		       (unsigned long long)(cfg->on_crash_exec_timeout_usec / USEC_PER_SEC));
	if (cfg->listen[0])
		printf("listen %s\napi-token-file %s\n", cfg->listen, cfg->api_token_file);
	for (size_t i = 0; i < cfg->n_vms; i++) {
		const struct vm_config *v = &cfg->vms[i];

		printf("vm %s,qmp=%s,final_action=%s,kdump_timeout=%llu,snapshot=%s,snapshot_format=%s",
		       v->name, v->qmp_path, final_action_to_string(v->final_action),
		       (unsigned long long)(v->kdump_timeout_usec / USEC_PER_SEC),
		       snapshot_policy_to_string(v->snapshot), v->snapshot_format);
		if (v->mailbox_path[0])
			printf(",mailbox=%s", v->mailbox_path);
		/* Shown when set: the line of a VM with defaults stays as it was. */
		if (v->kdump_session_timeout_usec !=
		    CFG_DEFAULT_KDUMP_SESSION_TIMEOUT_SEC * USEC_PER_SEC)
			printf(",kdump_session_timeout=%llu",
			       (unsigned long long)(v->kdump_session_timeout_usec / USEC_PER_SEC));
		if (v->kdump_progress_timeout_usec !=
		    CFG_DEFAULT_KDUMP_PROGRESS_TIMEOUT_SEC * USEC_PER_SEC)
			printf(",kdump_progress_timeout=%llu",
			       (unsigned long long)(v->kdump_progress_timeout_usec / USEC_PER_SEC));
		printf("\n");
	}
	if (cfg->libvirt_uri[0])
		printf("libvirt %s%s\n", cfg->libvirt_uri,
		       cfg->libvirt_observe_all ? " (domains without metadata observed)" : "");
	printf("configuration OK\n");
}

