// SPDX-License-Identifier: MIT
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common.h"
#include "util.h"
#include "config.h"
#include "log.h"

#define CFG_LINE_MAX 4096

static const char *const final_action_names[] = {
	[FINAL_ACTION_RESTART] = "restart",
	[FINAL_ACTION_POWEROFF] = "poweroff",
	[FINAL_ACTION_PRESERVE] = "preserve",
};

const char *final_action_to_string(enum final_action a)
{
	return final_action_names[a];
}

int final_action_from_string(const char *s)
{
	return name_table_lookup(final_action_names, ARRAY_SIZE(final_action_names), s);
}

static const char *const snapshot_policy_names[] = {
	[SNAPSHOT_ON_KDUMP_FAILURE] = "on-kdump-failure",
	[SNAPSHOT_ALWAYS] = "always",
	[SNAPSHOT_NEVER] = "never",
};

const char *snapshot_policy_to_string(enum snapshot_policy p)
{
	return snapshot_policy_names[p];
}

int snapshot_policy_from_string(const char *s)
{
	return name_table_lookup(snapshot_policy_names, ARRAY_SIZE(snapshot_policy_names), s);
}

bool snapshot_format_is_known(const char *s)
{
	static const char *const formats[] = { "elf", "kdump-zlib", "kdump-lzo",
					       "kdump-snappy" };

	for (size_t i = 0; i < ARRAY_SIZE(formats); i++)
		if (strcmp(s, formats[i]) == 0)
			return true;
	return false;
}

void cfg_init(struct config *cfg)
{
	*cfg = (struct config){
		.log_level = LOG_INFO,
		.max_dumps = CFG_DEFAULT_MAX_DUMPS,
		.api_socket = CFG_DEFAULT_API_SOCKET,
		.api_mode = CFG_DEFAULT_API_MODE,
		.on_crash_exec_timeout_usec = CFG_DEFAULT_ON_CRASH_EXEC_TIMEOUT_SEC * USEC_PER_SEC,
	};
}

void cfg_free(struct config *cfg)
{
	free(cfg->spool);
	free(cfg->vms);
	*cfg = (struct config){ 0 };
}

/* One VM spec key: parses @value into @vm. */
struct cfg_vm_key {
	const char *key;
	int (*parse)(struct vm_config *vm, const char *value, char *err,
		     size_t errlen);
	bool needs_mailbox; /* only means something with mailbox= */
};

static int cfg_vm_qmp(struct vm_config *vm, const char *value, char *err,
		      size_t errlen)
{
	size_t n = strlen(value);

	if (n == 0)
		return err_set(err, errlen, -EINVAL, "qmp= needs a socket path");
	if (n > CFG_QMP_PATH_MAX)
		return err_set(err, errlen, -EINVAL,
			       "qmp= path is %zu bytes, longer than a unix socket allows (%zu)",
			       n, CFG_QMP_PATH_MAX);
	memcpy(vm->qmp_path, value, n + 1);
	return 0;
}

static int cfg_vm_final_action(struct vm_config *vm, const char *value,
			       char *err, size_t errlen)
{
	int a = final_action_from_string(value);

	if (a < 0)
		return err_set(err, errlen, -EINVAL,
			       "final_action must be restart, poweroff or preserve, not '%s'",
			       value);
	vm->final_action = (enum final_action)a;
	return 0;
}

/* Whole seconds from 1 to CFG_TIMEOUT_MAX_SEC into @ret_usec. */
static int cfg_seconds(const char *key, const char *value, uint64_t *ret_usec,
		       char *err, size_t errlen)
{
	uint64_t sec;

	if (parse_u64(value, 1, CFG_TIMEOUT_MAX_SEC, &sec) < 0)
		return err_set(err, errlen, -EINVAL,
			       "%s must be whole seconds from 1 to %llu, not '%s'",
			       key, CFG_TIMEOUT_MAX_SEC, value);
	*ret_usec = sec * USEC_PER_SEC;
	return 0;
}

static int cfg_vm_kdump_timeout(struct vm_config *vm, const char *value,
				char *err, size_t errlen)
{
	return cfg_seconds("kdump_timeout", value, &vm->kdump_timeout_usec, err, errlen);
}

static int cfg_vm_kdump_session_timeout(struct vm_config *vm, const char *value,
					char *err, size_t errlen)
{
	return cfg_seconds("kdump_session_timeout", value,
			   &vm->kdump_session_timeout_usec, err, errlen);
}

static int cfg_vm_kdump_progress_timeout(struct vm_config *vm, const char *value,
					 char *err, size_t errlen)
{
	return cfg_seconds("kdump_progress_timeout", value,
			   &vm->kdump_progress_timeout_usec, err, errlen);
}

static int cfg_vm_snapshot(struct vm_config *vm, const char *value, char *err,
			   size_t errlen)
{
	int p = snapshot_policy_from_string(value);

	if (p < 0)
		return err_set(err, errlen, -EINVAL,
			       "snapshot must be always, on-kdump-failure or never, not '%s'",
			       value);
	vm->snapshot = (enum snapshot_policy)p;
	return 0;
}

static int cfg_vm_snapshot_format(struct vm_config *vm, const char *value,
				  char *err, size_t errlen)
{
	if (!snapshot_format_is_known(value))
		return err_set(err, errlen, -EINVAL,
			       "snapshot_format must be kdump-zlib, kdump-lzo, kdump-snappy or elf, not '%s'",
			       value);
	snprintf(vm->snapshot_format, sizeof(vm->snapshot_format), "%s", value);
	return 0;
}

static int cfg_vm_mailbox(struct vm_config *vm, const char *value, char *err,
			  size_t errlen)
{
	size_t n = strlen(value);

	if (n == 0 || value[0] != '/')
		return err_set(err, errlen, -EINVAL, "mailbox= needs an absolute file path");
	if (n > CFG_PATH_MAX)
		return err_set(err, errlen, -EINVAL, "mailbox= path is longer than %d bytes",
			       CFG_PATH_MAX);
	memcpy(vm->mailbox_path, value, n + 1);
	return 0;
}

static const struct cfg_vm_key cfg_vm_keys[] = {
	{ "qmp", cfg_vm_qmp, false },
	{ "final_action", cfg_vm_final_action, false },
	{ "kdump_timeout", cfg_vm_kdump_timeout, false },
	{ "snapshot", cfg_vm_snapshot, false },
	{ "snapshot_format", cfg_vm_snapshot_format, false },
	{ "mailbox", cfg_vm_mailbox, false },
	{ "kdump_session_timeout", cfg_vm_kdump_session_timeout, true },
	{ "kdump_progress_timeout", cfg_vm_kdump_progress_timeout, true },
};

int cfg_parse_vm_spec(const char *spec, struct vm_config *ret, char *err,
		      size_t errlen)
{
	_cleanup_free_ char *copy = strdup(spec);
	const char *needs_mailbox = NULL;
	unsigned int seen = 0;
	struct vm_config vm = {
		.final_action = FINAL_ACTION_RESTART,
		.kdump_timeout_usec = CFG_DEFAULT_KDUMP_TIMEOUT_SEC * USEC_PER_SEC,
		.snapshot = SNAPSHOT_ON_KDUMP_FAILURE,
		.snapshot_format = CFG_DEFAULT_SNAPSHOT_FORMAT,
		.kdump_session_timeout_usec = CFG_DEFAULT_KDUMP_SESSION_TIMEOUT_SEC * USEC_PER_SEC,
		.kdump_progress_timeout_usec = CFG_DEFAULT_KDUMP_PROGRESS_TIMEOUT_SEC * USEC_PER_SEC,
	};
	char *save = NULL, *tok, *name;

	if (!copy)
		return -ENOMEM;
	name = strtok_r(copy, ",", &save);
	if (!name || spec[0] == ',')
		return err_set(err, errlen, -EINVAL, "VM spec '%s' does not start with a name", spec);
	if (!name_is_valid(name))
		return err_set(err, errlen, -EINVAL,
			       "VM name '%s' is not 1-%d characters of A-Z a-z 0-9 . _ - (not starting with . or -)",
			       name, VM_NAME_MAX);
	strcpy(vm.name, name);

	while ((tok = strtok_r(NULL, ",", &save))) {
		char *eq = strchr(tok, '=');
		size_t i;
		int r;

		if (!eq)
			return err_set(err, errlen, -EINVAL,
				       "VM %s: '%s' is not key=value", vm.name, tok);
		*eq = '\0';
		for (i = 0; i < ARRAY_SIZE(cfg_vm_keys); i++)
			if (strcmp(tok, cfg_vm_keys[i].key) == 0)
				break;
		if (i == ARRAY_SIZE(cfg_vm_keys))
			return err_set(err, errlen, -EINVAL,
				       "VM %s: unknown key '%s' (known: qmp, final_action, kdump_timeout, snapshot, snapshot_format, mailbox, kdump_session_timeout, kdump_progress_timeout)",
				       vm.name, tok);
		if (seen & (1u << i))
			return err_set(err, errlen, -EINVAL, "VM %s: key '%s' given twice",
				       vm.name, tok);
		seen |= 1u << i;
		if (cfg_vm_keys[i].needs_mailbox && !needs_mailbox)
			needs_mailbox = cfg_vm_keys[i].key;
		r = cfg_vm_keys[i].parse(&vm, eq + 1, err, errlen);
		if (r < 0) {
			char reason[CFG_ERR_MAX];

			snprintf(reason, sizeof(reason), "%s", err);
			return err_set(err, errlen, r, "VM %s: %s", vm.name, reason);
		}
	}
	if (!(seen & 1u))
		return err_set(err, errlen, -EINVAL, "VM %s: qmp=PATH is required", vm.name);
	if (needs_mailbox && !vm.mailbox_path[0])
		return err_set(err, errlen, -EINVAL,
			       "VM %s: %s times the kdump kernel's broker channel session, so it needs mailbox=PATH",
			       vm.name, needs_mailbox);
	*ret = vm;
	return 0;
}

static int cfg_add_vm(struct config *cfg, const char *spec, char *err,
		      size_t errlen)
{
	struct vm_config vm, *vms;
	int r;

	r = cfg_parse_vm_spec(spec, &vm, err, errlen);
	if (r < 0)
		return r;
	for (size_t i = 0; i < cfg->n_vms; i++) {
		if (strcmp(cfg->vms[i].name, vm.name) == 0)
			return err_set(err, errlen, -EINVAL, "VM %s is configured twice", vm.name);
		if (strcmp(cfg->vms[i].qmp_path, vm.qmp_path) == 0)
			return err_set(err, errlen, -EINVAL,
				       "VMs %s and %s share the QMP socket %s",
				       cfg->vms[i].name, vm.name, vm.qmp_path);
		if (vm.mailbox_path[0] &&
		    strcmp(cfg->vms[i].mailbox_path, vm.mailbox_path) == 0)
			return err_set(err, errlen, -EINVAL,
				       "VMs %s and %s share the mailbox %s",
				       cfg->vms[i].name, vm.name, vm.mailbox_path);
	}
	if (cfg->n_vms >= CFG_MAX_VMS)
		return err_set(err, errlen, -EINVAL, "more than %d VMs", CFG_MAX_VMS);
	vms = realloc(cfg->vms, (cfg->n_vms + 1) * sizeof(*vms));
	if (!vms)
		return -ENOMEM;
	vms[cfg->n_vms++] = vm;
	cfg->vms = vms;
	return 0;
}

/* "api PATH" | "api off", "api-group GROUP", "api-mode MODE", "listen ADDR:PORT",
 * "api-token-file PATH"; 1: not an api key. */
static int cfg_set_api_option(struct config *cfg, const char *key, const char *value,
			      char *err, size_t errlen)
{
	size_t n = strlen(value);

	if (strcmp(key, "api") == 0) {
		if (strcmp(value, "off") == 0) {
			cfg->api_socket[0] = '\0';
			return 0;
		}
		if (value[0] != '/' || n > CFG_QMP_PATH_MAX)
			return err_set(err, errlen, -EINVAL,
				       "api must be 'off' or an absolute socket path of at most %zu bytes",
				       CFG_QMP_PATH_MAX);
		memcpy(cfg->api_socket, value, n + 1);
		return 0;
	}
	if (strcmp(key, "api-group") == 0) {
		if (!name_chars_ok(value, CFG_API_GROUP_MAX))
			return err_set(err, errlen, -EINVAL,
				       "api-group must be a group name or number, not '%s'", value);
		memcpy(cfg->api_group, value, n + 1);
		return 0;
	}
	if (strcmp(key, "listen") == 0) {
		if (strcmp(value, "off") == 0) {
			cfg->listen[0] = '\0';
			return 0;
		}
		if (n == 0 || n > CFG_LISTEN_MAX || !strchr(value, ':'))
			return err_set(err, errlen, -EINVAL,
				       "listen must be ADDR:PORT (e.g. 127.0.0.1:9877) or 'off', not '%s'",
				       value);
		memcpy(cfg->listen, value, n + 1);
		return 0;
	}
	if (strcmp(key, "api-token-file") == 0) {
		if (value[0] != '/' || n > CFG_PATH_MAX)
			return err_set(err, errlen, -EINVAL,
				       "api-token-file must be an absolute path of at most %d bytes",
				       CFG_PATH_MAX);
		memcpy(cfg->api_token_file, value, n + 1);
		return 0;
	}
	if (strcmp(key, "api-mode") == 0) {
		char *end;
		unsigned long mode;

		errno = 0;
		mode = strtoul(value, &end, 8);
		if (n < 3 || n > 4 || *end || errno || mode > 0777 || (mode & 0600) != 0600)
			return err_set(err, errlen, -EINVAL,
				       "api-mode must be an octal mode from 0600 to 0777, not '%s'",
				       value);
		cfg->api_mode = (unsigned int)mode;
		return 0;
	}
	return 1;
}

/* "on-crash-exec PROGRAM", "on-crash-exec-timeout SEC"; 1: not one of them. */
static int cfg_set_exec_option(struct config *cfg, const char *key, const char *value,
			       char *err, size_t errlen)
{
	size_t n = strlen(value);

	if (strcmp(key, "on-crash-exec") == 0) {
		/* No shell and no $PATH: the program is named exactly. */
		if (n == 0) {
			cfg->on_crash_exec[0] = '\0';
			return 0;
		}
		if (value[0] != '/' || n > CFG_PATH_MAX)
			return err_set(err, errlen, -EINVAL,
				       "on-crash-exec must be an absolute path of at most %d bytes, not '%s'",
				       CFG_PATH_MAX, value);
		memcpy(cfg->on_crash_exec, value, n + 1);
		return 0;
	}
	if (strcmp(key, "on-crash-exec-timeout") == 0) {
		uint64_t sec;

		if (parse_u64(value, 1, CFG_ON_CRASH_EXEC_TIMEOUT_MAX_SEC, &sec) < 0)
			return err_set(err, errlen, -EINVAL,
				       "on-crash-exec-timeout must be a whole number of seconds from 1 to %d, not '%s'",
				       CFG_ON_CRASH_EXEC_TIMEOUT_MAX_SEC, value);
		cfg->on_crash_exec_timeout_usec = sec * USEC_PER_SEC;
		return 0;
	}
	return 1;
}

/* "libvirt URI" | "libvirt off", "libvirt-unmarked ignore|observe"
 * (backend_libvirt.h); 1: not a libvirt key. */
static int cfg_set_libvirt_option(struct config *cfg, const char *key, const char *value,
				  char *err, size_t errlen)
{
	if (strcmp(key, "libvirt") == 0) {
		if (strcmp(value, "off") == 0) {
			cfg->libvirt_uri[0] = '\0';
			return 0;
		}
		if (!*value || strlen(value) > CFG_LIBVIRT_URI_MAX || strchr(value, ' '))
			return err_set(err, errlen, -EINVAL,
				       "libvirt needs a connection URI of at most %d characters (e.g. qemu:///system), or off",
				       CFG_LIBVIRT_URI_MAX);
		snprintf(cfg->libvirt_uri, sizeof(cfg->libvirt_uri), "%s", value);
		return 0;
	}
	if (strcmp(key, "libvirt-unmarked") == 0) {
		if (strcmp(value, "ignore") != 0 && strcmp(value, "observe") != 0)
			return err_set(err, errlen, -EINVAL,
				       "libvirt-unmarked must be ignore or observe, not '%s'", value);
		cfg->libvirt_observe_all = strcmp(value, "observe") == 0;
		return 0;
	}
	return 1;
}

int cfg_set_option(struct config *cfg, const char *key, const char *value,
		   char *err, size_t errlen)
{
	int r = cfg_set_api_option(cfg, key, value, err, errlen);

	if (r <= 0)
		return r;
	r = cfg_set_exec_option(cfg, key, value, err, errlen);
	if (r <= 0)
		return r;
	r = cfg_set_libvirt_option(cfg, key, value, err, errlen);
	if (r <= 0)
		return r;
	if (strcmp(key, "vm") == 0)
		return cfg_add_vm(cfg, value, err, errlen);
	if (strcmp(key, "spool") == 0) {
		char *s;

		if (!*value)
			return err_set(err, errlen, -EINVAL, "spool needs a directory");
		s = strdup(value);
		if (!s)
			return -ENOMEM;
		free(cfg->spool);
		cfg->spool = s;
		return 0;
	}
	if (strcmp(key, "log-level") == 0) {
		int l = log_parse_level(value);

		if (l < 0)
			return err_set(err, errlen, -EINVAL,
				       "log-level must be error, warning, notice, info or debug, not '%s'",
				       value);
		cfg->log_level = l;
		return 0;
	}
	if (strcmp(key, "max-dumps") == 0) {
		uint64_t n;

		if (parse_u64(value, 1, 64, &n) < 0)
			return err_set(err, errlen, -EINVAL,
				       "max-dumps must be a whole number from 1 to 64, not '%s'",
				       value);
		cfg->max_dumps = (unsigned int)n;
		return 0;
	}
	return err_set(err, errlen, -EINVAL,
		       "unknown option '%s' (known: spool, vm, log-level, max-dumps, api, api-group, api-mode, listen, api-token-file, on-crash-exec, on-crash-exec-timeout, libvirt, libvirt-unmarked)",
		       key);
}

static char *cfg_strip(char *s)
{
	char *end;

	while (*s == ' ' || *s == '\t')
		s++;
	end = s + strlen(s);
	while (end > s && (end[-1] == ' ' || end[-1] == '\t' ||
			   end[-1] == '\n' || end[-1] == '\r'))
		*--end = '\0';
	return s;
}

static void fclosep(FILE **f)
{
	if (*f)
		fclose(*f);
}

int cfg_load_file(struct config *cfg, const char *path, char *err,
		  size_t errlen)
{
	_cleanup_(fclosep) FILE *f = fopen(path, "re");
	char line[CFG_LINE_MAX];
	unsigned int lineno = 0;

	if (!f) {
		int r = -errno;

		return err_set(err, errlen, r, "%s: %s", path, strerror(errno));
	}
	while (fgets(line, sizeof(line), f)) {
		char reason[CFG_ERR_MAX], *s, *key, *value;
		int r;

		lineno++;
		if (!strchr(line, '\n') && !feof(f))
			return err_set(err, errlen, -EINVAL, "%s:%u: line longer than %d bytes",
				       path, lineno, CFG_LINE_MAX - 2);
		s = cfg_strip(line);
		if (*s == '#' || *s == '\0')
			continue;
		key = s;
		value = key + strcspn(key, " \t");
		if (*value)
			*value++ = '\0';
		value = cfg_strip(value);
		r = cfg_set_option(cfg, key, value, reason, sizeof(reason));
		if (r < 0) {
			return err_set(err, errlen, r, "%s:%u: %s", path, lineno, reason);
		}
	}
	if (ferror(f)) {
		return err_set(err, errlen, -EIO, "%s: read error", path);
	}
	return 0;
}
