// SPDX-License-Identifier: MIT
/*
 * pbctl: the operator's view of the spool and of the running daemon.
 *   pbctl [--spool DIR] list [--json] [--vm NAME]
 *   pbctl [--spool DIR] show ID
 *     read the spool only; never take the daemon's lock, so they work
 *     beside it and without it.
 *   pbctl [--api PATH] status [--json]
 *   pbctl [--api PATH] attach SPEC
 *   pbctl [--api PATH] detach NAME
 *     ask the running daemon over its local API (api.h, api_client.h).
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "api_client.h"
#include "common.h"
#include "config.h"
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
		"  show ID                    one crash record, as JSON\n"
		"\n"
		"Commands asking the running daemon:\n"
		"  status [--json]            the VMs it supervises: attach state, open crash\n"
		"  attach SPEC                supervise one more VM; SPEC as panicbrokerd --vm\n"
		"                             (NAME,qmp=PATH[,KEY=VALUE...])\n"
		"  detach NAME                stop supervising a VM (its open crash stays\n"
		"                             in the spool)\n"
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

/* -- commands asking the daemon (api.h) -- */

static void pbctl_print_json(json_object *o)
{
	printf("%s\n", json_object_to_json_string_ext(
			       o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
					  JSON_C_TO_STRING_NOSLASHESCAPE));
}

/*
 * One request; on a 2xx reply returns 0 with the parsed body in @ret (may be
 * NULL when unwanted), else prints why and returns 1.
 */
static int pbctl_api(const char *api, const char *method, const char *path,
		     const char *body, json_object **ret)
{
	struct api_client_reply reply = { 0 };
	json_object *obj, *e;
	char err[512];
	int r;

	r = api_client_request(api, method, path, body, &reply, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "pbctl: %s\n", err);
		return 1;
	}
	obj = json_tokener_parse(reply.body);
	if (reply.status < 200 || reply.status > 299) {
		if (obj && json_object_object_get_ex(obj, "error", &e) &&
		    json_object_is_type(e, json_type_string))
			fprintf(stderr, "pbctl: panicbrokerd: %s (HTTP %ld)\n",
				json_object_get_string(e), reply.status);
		else
			fprintf(stderr, "pbctl: panicbrokerd answered HTTP %ld\n", reply.status);
		json_object_put(obj);
		api_client_reply_free(&reply);
		return 1;
	}
	api_client_reply_free(&reply);
	if (!obj) {
		fprintf(stderr, "pbctl: panicbrokerd's reply to %s %s is not JSON\n", method, path);
		return 1;
	}
	if (ret)
		*ret = obj;
	else
		json_object_put(obj);
	return 0;
}

/* @o's @key: a string, "-" for null or missing. */
static const char *pbctl_field(json_object *o, const char *key)
{
	return o ? pbctl_str(o, key) : "-";
}

static int pbctl_status(const char *api, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ 0 },
	};
	json_object *vms = NULL;
	bool json = false;
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c != 'j')
			return 2;
		json = true;
	}
	if (optind < argc) {
		fprintf(stderr, "pbctl: status: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	if (pbctl_api(api, "GET", "/v1/vms", NULL, &vms))
		return 1;
	if (!json_object_is_type(vms, json_type_array)) {
		fprintf(stderr, "pbctl: panicbrokerd's VM list is not an array\n");
		json_object_put(vms);
		return 1;
	}
	if (json) {
		pbctl_print_json(vms);
		json_object_put(vms);
		return 0;
	}
	printf("%-16s %-8s %-12s %-40s %-14s %s\n", "VM", "BACKEND", "ATTACH", "OPEN CRASH",
	       "CRASH STATE", "LAST CRASH");
	for (size_t i = 0; i < json_object_array_length(vms); i++) {
		json_object *vm = json_object_array_get_idx(vms, i), *open = NULL;

		if (!json_object_object_get_ex(vm, "open_crash", &open) ||
		    !json_object_is_type(open, json_type_object))
			open = NULL;
		printf("%-16s %-8s %-12s %-40s %-14s %s\n", pbctl_field(vm, "name"),
		       pbctl_field(vm, "backend"), pbctl_field(vm, "attach_state"),
		       pbctl_field(open, "id"), pbctl_field(open, "state"),
		       pbctl_field(vm, "last_crash"));
	}
	json_object_put(vms);
	return 0;
}

static int pbctl_attach(const char *api, int argc, char **argv)
{
	json_object *body, *reply = NULL;
	int r;

	if (argc != 2) {
		fprintf(stderr, "pbctl: attach needs exactly one VM spec (NAME,qmp=PATH[,KEY=VALUE...])\n");
		return 2;
	}
	body = json_object_new_object();
	if (!body || json_object_object_add(body, "spec", json_object_new_string(argv[1])) < 0) {
		json_object_put(body);
		fprintf(stderr, "pbctl: %s\n", strerror(ENOMEM));
		return 1;
	}
	r = pbctl_api(api, "POST", "/v1/vms",
		      json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN), &reply);
	json_object_put(body);
	if (r)
		return r;
	printf("attached %s\n", pbctl_str(reply, "name"));
	json_object_put(reply);
	return 0;
}

static int pbctl_detach(const char *api, int argc, char **argv)
{
	char path[128];

	if (argc != 2) {
		fprintf(stderr, "pbctl: detach needs exactly one VM name\n");
		return 2;
	}
	/* Checked here so that the name needs no escaping in the URL. */
	if (!name_is_valid(argv[1])) {
		fprintf(stderr, "pbctl: '%s' is not a VM name\n", argv[1]);
		return 2;
	}
	snprintf(path, sizeof(path), "/v1/vms/%s", argv[1]);
	if (pbctl_api(api, "DELETE", path, NULL, NULL))
		return 1;
	printf("detached %s\n", argv[1]);
	return 0;
}

/* The commands that talk to the daemon; NULL: not one of them. */
static int (*pbctl_api_command(const char *name))(const char *, int, char **)
{
	if (strcmp(name, "status") == 0)
		return pbctl_status;
	if (strcmp(name, "attach") == 0)
		return pbctl_attach;
	if (strcmp(name, "detach") == 0)
		return pbctl_detach;
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
	if (strcmp(argv[0], "list") != 0 && strcmp(argv[0], "show") != 0) {
		fprintf(stderr, "pbctl: unknown command '%s' (list, show, status, attach, detach)\n",
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
