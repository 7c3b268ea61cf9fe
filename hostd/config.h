/* SPDX-License-Identifier: MIT */
/*
 * panicbrokerd configuration: the same options on the command line
 * ("--vm SPEC") and in a configuration file ("vm SPEC"), one parser for both.
 *
 * A VM spec is NAME,key=value[,key=value...]; see panicbrokerd(8).
 * Errors: negative errno, with a one-phrase reason in the caller's buffer.
 */
#ifndef PB_CONFIG_H
#define PB_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/un.h>

#include "util.h"

#define CFG_DEFAULT_SPOOL "/var/lib/panicbroker"
#define CFG_MAX_VMS 4096
#define CFG_ERR_MAX 256
#define CFG_QMP_PATH_MAX (sizeof(((struct sockaddr_un *)0)->sun_path) - 1)
#define CFG_DEFAULT_KDUMP_TIMEOUT_SEC 600
/* With mailbox=: the kdump kernel's broker channel session (docs/record.md). */
#define CFG_DEFAULT_KDUMP_SESSION_TIMEOUT_SEC 120
#define CFG_DEFAULT_KDUMP_PROGRESS_TIMEOUT_SEC 300
#define CFG_TIMEOUT_MAX_SEC (7 * 24 * 3600ULL)

enum final_action {
	FINAL_ACTION_RESTART,
	FINAL_ACTION_POWEROFF,
	FINAL_ACTION_PRESERVE,
};

enum snapshot_policy {
	SNAPSHOT_ON_KDUMP_FAILURE,
	SNAPSHOT_ALWAYS,
	SNAPSHOT_NEVER,
};

#define CFG_FORMAT_MAX 16
#define CFG_PATH_MAX 4095
#define CFG_DEFAULT_SNAPSHOT_FORMAT "kdump-zlib"
#define CFG_DEFAULT_MAX_DUMPS 1
/* The local API's socket (hostd/api.h): "api PATH" / "api off", "api-group",
 * "api-mode"; api_socket is "" when off. */
#define CFG_DEFAULT_API_SOCKET "/run/panicbroker/api.sock"
#define CFG_DEFAULT_API_MODE 0660
#define CFG_API_GROUP_MAX 32
/* "on-crash-exec PROGRAM", "on-crash-exec-timeout SEC". */
#define CFG_DEFAULT_ON_CRASH_EXEC_TIMEOUT_SEC 60
#define CFG_ON_CRASH_EXEC_TIMEOUT_MAX_SEC 3600
/* "listen ADDR:PORT" (the API over TCP too; "" or "off": not) and
 * "api-token-file PATH", the bearer token TCP requests need (api.h). */
#define CFG_LISTEN_MAX 63

/* "libvirt URI" (backend_libvirt.h): the domains of that libvirt too. */
#define CFG_LIBVIRT_URI_MAX 255

struct vm_config {
	char name[VM_NAME_MAX + 1];
	char qmp_path[CFG_QMP_PATH_MAX + 1];
	enum final_action final_action;
	uint64_t kdump_timeout_usec;
	enum snapshot_policy snapshot;
	char snapshot_format[CFG_FORMAT_MAX];
	char mailbox_path[CFG_PATH_MAX + 1]; /* "": no mailbox */
	/* mailbox= only: from the kdump entry until the kdump session opens,
	 * and the longest silence of a running kdump session. */
	uint64_t kdump_session_timeout_usec;
	uint64_t kdump_progress_timeout_usec;
};

struct config {
	char *spool;
	int log_level;
	unsigned int max_dumps;
	struct vm_config *vms;
	size_t n_vms;
	char api_socket[CFG_QMP_PATH_MAX + 1];
	char api_group[CFG_API_GROUP_MAX + 1]; /* "": the daemon's own */
	unsigned int api_mode;
	char libvirt_uri[CFG_LIBVIRT_URI_MAX + 1]; /* "": no libvirt */
	bool libvirt_observe_all;   /* domains without metadata too */
	/* --on-crash-exec (crash_exec.h): "" none; an absolute path. */
	char on_crash_exec[CFG_PATH_MAX + 1];
	uint64_t on_crash_exec_timeout_usec;
	char listen[CFG_LISTEN_MAX + 1];
	char api_token_file[CFG_PATH_MAX + 1];
};

void cfg_init(struct config *cfg);
void cfg_free(struct config *cfg);

/* Applies one option ("spool", "vm", "log-level") with its value. */
int cfg_set_option(struct config *cfg, const char *key, const char *value,
		   char *err, size_t errlen);
/* Reads "key value" lines; '#' starts a comment; errors name file:line. */
int cfg_load_file(struct config *cfg, const char *path, char *err,
		  size_t errlen);
int cfg_parse_vm_spec(const char *spec, struct vm_config *ret, char *err,
		      size_t errlen);

const char *final_action_to_string(enum final_action a);
int final_action_from_string(const char *s);
const char *snapshot_policy_to_string(enum snapshot_policy p);
int snapshot_policy_from_string(const char *s);
bool snapshot_format_is_known(const char *s);

#endif
