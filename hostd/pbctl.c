// SPDX-License-Identifier: MIT
/*
 * pbctl: the operator's view of the spool and of the running daemon.
 *   pbctl [--spool DIR] list [--json] [--vm NAME]
 *   pbctl [--spool DIR] show ID [--log]
 *     read the spool only; never take the daemon's lock, so they work
 *     beside it and without it.
 *   pbctl [--api PATH] status [--json]
 *   pbctl [--api PATH] attach SPEC
 *   pbctl [--api PATH] detach NAME
 *   pbctl [--api PATH] watch [--json]
 *     ask the running daemon over its local API (api.h, api_client.h).
 *   pbctl [--api PATH] [--spool DIR] buckets [--json] [--from-spool]
 *     the daemon's counts, or the spool's when the daemon is not there.
 */
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "pbctl_enable.h"
#include "pbctl_internal.h"
#include "api_client.h"
#include "buckets.h"
#include "common.h"
#include "config.h"
#include "io.h"
#include "spool.h"
#include "version.h"

static void pbctl_usage(FILE *f)
{
	fprintf(f,
		"Usage: pbctl [--spool DIR] [--api PATH] COMMAND [ARGS]\n"
		"\n"
		"Commands reading the spool (work without the daemon):\n"
		"  list [--json] [--vm NAME]  crashes, oldest first; --json prints an array\n"
		"                             of the full records\n"
		"  show ID [--log]            one crash record, as JSON; --log prints the\n"
		"                             guest's kernel log instead (the panic record's\n"
		"                             log tail, else the snapshot's dmesg.txt)\n"
		"\n"
		"Commands asking the running daemon:\n"
		"  status [--json]            the VMs it supervises: attach state, open crash\n"
		"  attach SPEC                supervise one more VM; SPEC as panicbrokerd --vm\n"
		"                             (NAME,qmp=PATH[,KEY=VALUE...])\n"
		"  detach NAME                stop supervising a VM (its open crash stays\n"
		"                             in the spool)\n"
		"  watch [--json]             follow new crashes and their state changes,\n"
		"                             one line per event, until interrupted\n"
		"\n"
		"Commands editing a libvirt domain (work without the daemon):\n"
		"  enable [--uri URI] [--dry-run] [--no-mailbox] DOMAIN [KEY=VALUE...]\n"
		"                             make DOMAIN ready for panicbrokerd --libvirt:\n"
		"                             pvpanic, vmcoreinfo, on_crash preserve, the\n"
		"                             mailbox, the policy (KEY=VALUE as --vm's)\n"
		"  disable [--uri URI] [--dry-run] DOMAIN\n"
		"                             take back what enable added\n"
		"\n"
		"Commands asking the daemon, else reading the spool:\n"
		"  buckets [--json] [--from-spool]\n"
		"                             crash signature buckets: how many crashes,\n"
		"                             first and last seen, title\n"
		"\n"
		"Options:\n"
		"  -s, --spool DIR   the daemon's spool (default %s)\n"
		"  -a, --api PATH    the daemon's API socket (default %s)\n"
		"  -h, --help        show this help\n"
		"      --version     show the version\n"
		"\n"
		"Exit status: 0 success, 1 failure, 2 usage error.\n",
		CFG_DEFAULT_SPOOL, CFG_DEFAULT_API_SOCKET);
}

const char *pbctl_str(json_object *rec, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(rec, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return "-";
	return json_object_get_string(v);
}

static int pbctl_list(struct spool *s, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "vm", required_argument, NULL, 'm' },
		{ 0 },
	};
	const char *only_vm = NULL;
	bool json = false;
	json_object *arr = NULL;
	char **ids = NULL;
	size_t n = 0;
	int c, r, bad = 0;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'j')
			json = true;
		else if (c == 'm')
			only_vm = optarg;
		else
			return 2;
	}
	if (optind < argc) {
		fprintf(stderr, "pbctl: list: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	r = spool_list(s, &ids, &n);
	if (r < 0) {
		fprintf(stderr, "pbctl: cannot list %s/crashes: %s\n", spool_path(s),
			strerror(-r));
		return 1;
	}
	if (json)
		arr = json_object_new_array();
	else
		printf("%-40s %-16s %-18s %-14s %-10s %s\n", "ID", "VM", "EVENT",
		       "STATE", "ACTION", "DETECTED");
	for (size_t i = 0; i < n; i++) {
		json_object *rec;
		char err[256];

		if (spool_read_record(s, ids[i], &rec, err, sizeof(err)) < 0) {
			fprintf(stderr, "pbctl: %s, skipping\n", err);
			bad++;
			continue;
		}
		if (only_vm && strcmp(pbctl_str(rec, "vm"), only_vm) != 0) {
			json_object_put(rec);
			continue;
		}
		if (json) {
			json_object_array_add(arr, rec);
			continue;
		}
		printf("%-40s %-16s %-18s %-14s %-10s %s\n", ids[i], pbctl_str(rec, "vm"),
		       pbctl_str(rec, "event"), pbctl_str(rec, "state"),
		       pbctl_str(rec, "final_action"), pbctl_str(rec, "detected_at"));
		json_object_put(rec);
	}
	if (json) {
		printf("%s\n", json_object_to_json_string_ext(
				       arr, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
						    JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(arr);
	}
	spool_free_ids(ids, n);
	return bad ? 1 : 0;
}

/* Copies @name of crash @id's directory to stdout; 0, or 1 having said why. */
static int pbctl_cat_crash_file(struct spool *s, const char *id, const char *name)
{
	_cleanup_close_ int dirfd = -1, fd = -1;
	char buf[65536];
	int r;

	r = spool_open_crash(s, id, &dirfd);
	if (r < 0) {
		fprintf(stderr, "pbctl: no crash %s: %s\n", id, strerror(-r));
		return 1;
	}
	fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		fprintf(stderr, "pbctl: %s/%s: %s\n", id, name, strerror(errno));
		return 1;
	}
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fprintf(stderr, "pbctl: %s/%s: %s\n", id, name, strerror(errno));
			return 1;
		}
		if (n == 0)
			return 0;
		if (fwrite(buf, 1, (size_t)n, stdout) != (size_t)n) {
			fprintf(stderr, "pbctl: cannot write the log: %s\n", strerror(errno));
			return 1;
		}
	}
}

/*
 * The guest's kernel log of a crash: the panic record's log tail (taken by
 * the guest before kdump), else the snapshot's whole log (dmesg.txt, read
 * from the memory dump by makedumpfile).
 */
static int pbctl_show_log(struct spool *s, const char *id, json_object *rec)
{
	json_object *panic, *snap, *verify;
	const char *tail = NULL, *log_path = NULL;
	size_t len;

	if (json_object_object_get_ex(rec, "panic", &panic))
		tail = pbctl_str(panic, "log_tail");
	if (tail && strcmp(tail, "-") != 0 && tail[0]) {
		len = strlen(tail);
		if (fwrite(tail, 1, len, stdout) != len ||
		    (tail[len - 1] != '\n' && putchar('\n') == EOF)) {
			fprintf(stderr, "pbctl: cannot write the log: %s\n", strerror(errno));
			return 1;
		}
		return 0;
	}
	if (json_object_object_get_ex(rec, "snapshot", &snap) &&
	    json_object_object_get_ex(snap, "verify", &verify)) {
		log_path = pbctl_str(verify, "log_path");
		/* A file beside the record, nothing else. */
		if (strcmp(log_path, "-") == 0 || strchr(log_path, '/') || log_path[0] == '.')
			log_path = NULL;
	}
	if (!log_path) {
		fprintf(stderr, "pbctl: crash %s has no guest log: no panic record's log tail, no snapshot log\n",
			id);
		return 1;
	}
	return pbctl_cat_crash_file(s, id, log_path);
}

static int pbctl_show(struct spool *s, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "log", no_argument, NULL, 'l' },
		{ 0 },
	};
	bool log = false;
	json_object *rec;
	const char *id;
	char err[256];
	int c, r;

	/* 0: GNU getopt starts over (permuting: options may follow the operands). */
	optind = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c != 'l')
			return 2;
		log = true;
	}
	if (argc - optind != 1) {
		fprintf(stderr, "pbctl: show needs exactly one crash ID\n");
		return 2;
	}
	id = argv[optind];
	if (!spool_id_is_valid(id)) {
		fprintf(stderr, "pbctl: '%s' is not a crash ID\n", id);
		return 2;
	}
	if (spool_read_record(s, id, &rec, err, sizeof(err)) < 0) {
		fprintf(stderr, "pbctl: %s\n", err);
		return 1;
	}
	if (log) {
		r = pbctl_show_log(s, id, rec);
		json_object_put(rec);
		return r;
	}
	printf("%s\n", json_object_to_json_string_ext(
			       rec, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
					    JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(rec);
	return 0;
}

static int (*pbctl_api_command(const char *name))(const char *, int, char **)
{
	if (strcmp(name, "status") == 0)
		return pbctl_status;
	if (strcmp(name, "attach") == 0)
		return pbctl_attach;
	if (strcmp(name, "detach") == 0)
		return pbctl_detach;
	if (strcmp(name, "watch") == 0)
		return pbctl_watch;
	return NULL;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "spool", required_argument, NULL, 's' },
		{ "api", required_argument, NULL, 'a' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'v' },
		{ 0 },
	};
	const char *spool_dir = CFG_DEFAULT_SPOOL, *api = CFG_DEFAULT_API_SOCKET;
	int (*api_cmd)(const char *, int, char **);
	struct spool *s;
	char err[256];
	int c, r;

	/* '+': stop at the command, whose own options follow it. */
	while ((c = getopt_long(argc, argv, "+s:a:h", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			spool_dir = optarg;
			break;
		case 'a':
			api = optarg;
			break;
		case 'h':
			pbctl_usage(stdout);
			return 0;
		case 'v':
			printf("pbctl %s\n", PB_VERSION);
			return 0;
		default:
			pbctl_usage(stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		pbctl_usage(stderr);
		return 2;
	}
	argc -= optind;
	argv += optind;
	if (strcmp(argv[0], "enable") == 0 || strcmp(argv[0], "disable") == 0)
		return pbctl_libvirt(argc, argv);
	if (strcmp(argv[0], "libvirt-hook") == 0)
		return pbctl_libvirt_hook(argc, argv);
	api_cmd = pbctl_api_command(argv[0]);
	if (api_cmd) {
		r = api_client_init(err, sizeof(err));
		if (r < 0) {
			fprintf(stderr, "pbctl: %s\n", err);
			return 1;
		}
		r = api_cmd(api, argc, argv);
		api_client_cleanup();
		return r;
	}
	if (strcmp(argv[0], "buckets") == 0) {
		r = api_client_init(err, sizeof(err));
		if (r < 0) {
			fprintf(stderr, "pbctl: %s\n", err);
			return 1;
		}
		r = pbctl_buckets(api, spool_dir, argc, argv);
		api_client_cleanup();
		return r;
	}
	if (strcmp(argv[0], "list") != 0 && strcmp(argv[0], "show") != 0) {
		fprintf(stderr, "pbctl: unknown command '%s' (list, show, buckets, status, attach, detach, watch)\n",
			argv[0]);
		return 2;
	}
	r = spool_open(spool_dir, false, &s, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "pbctl: %s\n", err);
		return 1;
	}
	r = strcmp(argv[0], "list") == 0 ? pbctl_list(s, argc, argv)
					 : pbctl_show(s, argc, argv);
	spool_close(s);
	return r;
}
