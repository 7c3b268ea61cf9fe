// SPDX-License-Identifier: MIT
/*
 * pbctl: the operator's view of the spool.
 *   pbctl [--spool DIR] list [--json] [--vm NAME]
 *   pbctl [--spool DIR] show ID
 * Reads only; never takes the daemon's lock, so it works beside it.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "common.h"
#include "config.h"
#include "spool.h"
#include "version.h"

static void pbctl_usage(FILE *f)
{
	fprintf(f,
		"Usage: pbctl [--spool DIR] COMMAND [ARGS]\n"
		"\n"
		"Commands:\n"
		"  list [--json] [--vm NAME]  crashes, oldest first; --json prints an array\n"
		"                             of the full records\n"
		"  show ID                    one crash record, as JSON\n"
		"\n"
		"Options:\n"
		"  -s, --spool DIR   the daemon's spool (default %s)\n"
		"  -h, --help        show this help\n"
		"      --version     show the version\n"
		"\n"
		"Exit status: 0 success, 1 failure, 2 usage error.\n",
		CFG_DEFAULT_SPOOL);
}

static const char *pbctl_str(json_object *rec, const char *key)
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

static int pbctl_show(struct spool *s, int argc, char **argv)
{
	json_object *rec;
	char err[256];

	if (argc != 2) {
		fprintf(stderr, "pbctl: show needs exactly one crash ID\n");
		return 2;
	}
	if (!spool_id_is_valid(argv[1])) {
		fprintf(stderr, "pbctl: '%s' is not a crash ID\n", argv[1]);
		return 2;
	}
	if (spool_read_record(s, argv[1], &rec, err, sizeof(err)) < 0) {
		fprintf(stderr, "pbctl: %s\n", err);
		return 1;
	}
	printf("%s\n", json_object_to_json_string_ext(
			       rec, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
					    JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(rec);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "spool", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'v' },
		{ 0 },
	};
	const char *spool_dir = CFG_DEFAULT_SPOOL;
	struct spool *s;
	char err[256];
	int c, r;

	/* '+': stop at the command, whose own options follow it. */
	while ((c = getopt_long(argc, argv, "+s:h", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			spool_dir = optarg;
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
	if (strcmp(argv[0], "list") != 0 && strcmp(argv[0], "show") != 0) {
		fprintf(stderr, "pbctl: unknown command '%s' (list, show)\n", argv[0]);
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
