// SPDX-License-Identifier: MIT
/*
 * panicbrokerd: hears guest panics over QMP, records every crash durably and
 * applies each VM's final action. main() reads top to bottom:
 * options -> configuration -> spool -> VMs (resuming open crashes) -> API
 * -> ready -> loop. SIGHUP reads the configuration again.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>

#include "common.h"
#include "config.h"
#include "log.h"
#include "snapshot.h"
#include "spool.h"
#include "version.h"
#include "supervisor.h"
#include "daemon_options.h"
#include "index.h"
#include "observe.h"
#include "libvirt_daemon.h"
#include "api.h"
#include "api_events.h"
#include "crash_exec.h"
#include "journal.h"
#include "observe.h"
#include "api_html.h"
#include "metrics.h"

/*
 * A VM costs a few descriptors (its QMP socket, its mailbox, timers): a
 * thousand VMs need more than the usual soft limit of 1024. The hard limit
 * is the administrator's; the soft one is raised to it.
 */
static void daemon_raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= rl.rlim_max)
		return;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		log_warn("cannot raise the open files limit to %llu: %s; fewer VMs fit",
			 (unsigned long long)rl.rlim_max, strerror(errno));
}

/* The daemon's state that its signal and API callbacks reach. */
struct daemon {
	int argc;
	char **argv;
	struct sup *sup;
	struct lv_host *libvirt;
	struct api *api;
	struct journal *journal;
	struct crash_exec *exec;
	struct api_events *events;
	struct index *index;
	struct api_html *html;
	struct metrics_daemon *metrics;
};

/* The index follows every record the daemon saves. */
static void daemon_on_obs(void *ud, const struct obs_event *ev)
{
	struct daemon *d = ud;

	if (ev->type == OBS_RECORD_WRITE && ev->saved && ev->crash)
		index_update(d->index, ev->crash);
}

static int daemon_open_index(struct spool *spool, struct daemon *d)
{
	struct index_stats st;
	char err[256] = "";
	int r;

	r = index_open(spool, &d->index, err, sizeof(err));
	if (r < 0) {
		log_error("%s", err[0] ? err : strerror(-r));
		return r;
	}
	index_stats(d->index, &st);
	for (size_t i = 0; i < st.records_bad && i < INDEX_BAD_KEPT; i++)
		log_warn("crash %s: %s; left out of the index, ignoring", st.bad_id[i], st.bad_why[i]);
	if (st.lines_bad || st.records_bad || st.dropped)
		log_warn("spool index: %zu bad lines skipped, %zu unreadable records left out, %zu entries without a crash directory dropped",
			 st.lines_bad, st.records_bad, st.dropped);
	log_info("spool index: %zu crashes (%zu records read) in %llu ms", index_count(d->index),
		 st.records_read, (unsigned long long)(st.load_usec / 1000));
	r = obs_subscribe(daemon_on_obs, d);
	if (r < 0)
		log_error("cannot follow the records with the index: %s", strerror(-r));
	return r;
}

static int daemon_on_signal(sd_event_source *s, const struct signalfd_siginfo *si,
			    void *ud)
{
	(void)ud;
	log_info("received %s, exiting; open crashes resume at the next start",
		 strsignal((int)si->ssi_signo));
	sd_notify(0, "STOPPING=1");
	return sd_event_exit(sd_event_source_get_event(s), 0);
}

/*
 * SIGHUP: the options and the configuration file are read again, as at
 * start; VMs added there are attached, VMs gone are detached (their open
 * crashes stay in the spool). The rest (spool, API) needs a restart.
 */
static int daemon_on_hup(sd_event_source *s, const struct signalfd_siginfo *si, void *ud)
{
	struct daemon *d = ud;
	_cleanup_(cfg_free) struct config cfg;
	bool check = false;
	int r;

	(void)s;
	(void)si;
	sd_notify(0, "RELOADING=1");
	cfg_init(&cfg);
	optind = 0; /* getopt_long starts over */
	r = daemon_parse_args(d->argc, d->argv, &cfg, &check);
	if (r != 0) {
		log_error("SIGHUP: the configuration does not parse (see above); nothing changed");
	} else {
		r = sup_reload(d->sup, &cfg);
		log_info("SIGHUP: configuration read again; supervising %zu VM%s%s",
			 sup_count(d->sup), sup_count(d->sup) == 1 ? "" : "s",
			 r < 0 ? " (some could not be added, see above)" : "");
	}
	sd_notifyf(0, "READY=1\nSTATUS=supervising %zu VMs", sup_count(d->sup));
	return 0;
}

/* ---- the local API's operations ---- */

static int daemon_api_vms(void *ud, json_object **ret)
{
	struct daemon *d = ud;

	return sup_list_json(d->sup, ret);
}

static int daemon_api_vm_add(void *ud, const char *spec, char *err, size_t errlen)
{
	struct daemon *d = ud;
	struct vm_config vc;
	int r;

	r = cfg_parse_vm_spec(spec, &vc, err, errlen);
	if (r < 0)
		return r == -ENOMEM ? r : -EINVAL;
	r = sup_add(d->sup, &vc, false, err, errlen);
	if (r >= 0)
		log_info("VM %s: attached through the API", vc.name);
	return r;
}

static int daemon_api_vm_remove(void *ud, const char *name, char *err, size_t errlen)
{
	struct daemon *d = ud;
	int r = sup_remove(d->sup, name, "detached through the API");

	if (r == -ENOENT)
		return err_set(err, errlen, r, "no VM named %s is supervised", name);
	return r;
}

static const struct api_ops daemon_api_ops = {
	.vms_list = daemon_api_vms,
	.vm_add = daemon_api_vm_add,
	.vm_remove = daemon_api_vm_remove,
};

/* ---- metrics (metrics.h): GET /metrics ---- */

static void daemon_metrics_counts(void *ud, struct metrics_counts *ret)
{
	struct daemon *d = ud;

	if (d->sup)
		sup_counts(d->sup, &ret->vms_supervised, &ret->crashes_open);
	ret->spool_crashes = d->index ? index_count(d->index) : 0;
}

/* Before any VM, like every watcher; only with the API, which serves them. */
static int daemon_start_metrics(const struct config *cfg, struct daemon *d)
{
	int r;

	if (!cfg->api_socket[0])
		return 0;
	r = metrics_daemon_new(PB_VERSION, daemon_metrics_counts, d, &d->metrics);
	if (r >= 0)
		r = obs_subscribe(metrics_daemon_on_event, d->metrics);
	if (r < 0)
		log_error("cannot set up the metrics: %s", strerror(-r));
	return r;
}

/* ---- watchers of observe.h: the journal, --on-crash-exec, the API's feed ---- */

static void daemon_journal_report(void *ud, int error, uint64_t dropped)
{
	(void)ud;
	log_warn("cannot send crash events to the journal: %s (%llu dropped so far), ignoring",
		 strerror(-error), (unsigned long long)dropped);
}

static void daemon_exec_report(void *ud, const struct crash_exec_result *r)
{
	struct daemon *d = ud;
	const char *nl;
	int len;

	/* The output's last line tells most ("cannot run ...: No such file"). */
	len = (int)strlen(r->output);
	while (len > 0 && r->output[len - 1] == '\n')
		len--;
	nl = memrchr(r->output, '\n', (size_t)len);
	if (nl) {
		len -= (int)(nl + 1 - r->output);
		nl++;
	} else {
		nl = r->output;
	}
	if (strcmp(r->outcome, "ok") != 0) {
		if (r->exit_status >= 0)
			log_warn("VM %s: on-crash-exec %s for crash %s: %s, exit status %d%s%.*s",
				 r->vm, r->program, r->crash_id, r->outcome, r->exit_status,
				 len ? ": " : "", len, nl);
		else
			log_warn("VM %s: on-crash-exec %s for crash %s: %s%s%.*s", r->vm, r->program,
				 r->crash_id, r->outcome, len ? ": " : "", len, nl);
		if (d->journal)
			journal_exec_result(d->journal, r->crash_id, r->vm, r->program, r->outcome,
					    r->output);
	}
	if (r->save_error < 0)
		log_warn("VM %s: cannot write crashes/%s/%s: %s", r->vm, r->crash_id,
			 CRASH_EXEC_SIDE_FILE, strerror(-r->save_error));
}

/* Before any VM: the watchers see every event from the first. */
static int daemon_start_watchers(sd_event *event, struct spool *spool,
				 const struct config *cfg, struct daemon *d)
{
	int r;

	r = journal_new(spool_path(spool), daemon_journal_report, d, &d->journal);
	if (r >= 0)
		r = obs_subscribe(journal_on_event, d->journal);
	if (r >= 0 && cfg->on_crash_exec[0]) {
		r = crash_exec_new(event, spool, cfg->on_crash_exec,
				   cfg->on_crash_exec_timeout_usec, daemon_exec_report, d,
				   &d->exec);
		if (r >= 0)
			r = obs_subscribe(crash_exec_on_event, d->exec);
		if (r >= 0 && access(cfg->on_crash_exec, X_OK) < 0)
			log_warn("on-crash-exec %s: %s; it will fail until it is there",
				 cfg->on_crash_exec, strerror(errno));
	}
	if (r >= 0 && cfg->api_socket[0]) {
		r = api_events_new(spool, d->index, &d->events);
		if (r >= 0)
			r = obs_subscribe(api_events_on_event, d->events);
	}
	if (r < 0)
		log_error("cannot set up the crash event watchers: %s", strerror(-r));
	return r;
}

static int daemon_start_api(sd_event *event, struct spool *spool,
			    const struct config *cfg, struct daemon *d)
{
	struct api_config ac = {
		.socket_path = cfg->api_socket,
		.socket_mode = (mode_t)cfg->api_mode,
		.group = cfg->api_group,
		.listen = cfg->listen,
		.index = d->index,
	};
	_cleanup_free_ char *token = NULL;
	char err[256] = "";
	int r;

	if (!cfg->api_socket[0])
		return 0;
	/* Under systemd RuntimeDirectory= made it; by hand, the daemon does. */
	{
		char dir[sizeof(cfg->api_socket)];
		char *slash;

		snprintf(dir, sizeof(dir), "%s", cfg->api_socket);
		slash = strrchr(dir, '/');
		if (slash && slash != dir) {
			*slash = '\0';
			if (mkdir(dir, 0755) < 0 && errno != EEXIST)
				log_warn("cannot create %s: %s", dir, strerror(errno));
		}
	}
	if (cfg->listen[0]) {
		r = api_token_load(cfg->api_token_file, &token, err, sizeof(err));
		if (r < 0) {
			log_error("cannot serve the API on %s: %s", cfg->listen,
				  r == -ENOMEM ? strerror(ENOMEM) : err);
			return r;
		}
		ac.token = token;
	}
	r = api_new(event, spool, &ac, &daemon_api_ops, d, &d->api, err, sizeof(err));
	if (token)
		explicit_bzero(token, strlen(token)); /* the API keeps its own copy */
	if (r < 0) {
		log_error("cannot serve the API on %s: %s", cfg->api_socket,
			  err[0] ? err : strerror(-r));
		return r;
	}
	if (d->metrics) {
		r = api_metrics_add(d->api, d->metrics);
		if (r < 0) {
			log_error("cannot add the API's %s route: %s", API_METRICS_PATH, strerror(-r));
			return r;
		}
	}
	/* The dashboard: pages from the index, on the same listeners. */
	r = api_html_new(d->api, spool, d->index, &d->html);
	if (r < 0) {
		log_error("cannot add the dashboard's routes: %s", strerror(-r));
		return r;
	}
	if (api_listen_address(d->api))
		log_info("API on TCP %s too (all but %s need the bearer token)",
			 api_listen_address(d->api), API_METRICS_PATH);
	if (d->events) {
		r = api_events_add_routes(d->events, d->api);
		if (r < 0) {
			log_error("cannot add the API's event routes: %s", strerror(-r));
			return r;
		}
	}
	log_info("API on %s", api_socket_path(d->api));
	return 0;
}

int main(int argc, char **argv)
{
	_cleanup_(cfg_free) struct config cfg;
	struct daemon d = { .argc = argc, .argv = argv };
	struct spool *spool = NULL;
	sd_event *event = NULL;
	bool check = false;
	char err[256];
	sigset_t mask;
	int r;

	cfg_init(&cfg);
	r = daemon_parse_args(argc, argv, &cfg, &check);
	if (r != 0)
		return r > 0 ? EXIT_SUCCESS : 2;
	if (check) {
		daemon_print_config(&cfg);
		return EXIT_SUCCESS;
	}
	log_setup("panicbrokerd", cfg.log_level);
	daemon_raise_nofile();
	snapshot_set_max_concurrent(cfg.max_dumps);

	r = spool_open(cfg.spool, true, &spool, err, sizeof(err));
	if (r < 0) {
		log_error("%s", r == -ENOMEM ? strerror(ENOMEM) : err);
		return EXIT_FAILURE;
	}

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);

	r = sd_event_default(&event);
	if (r >= 0)
		r = sd_event_add_signal(event, NULL, SIGTERM, daemon_on_signal, NULL);
	if (r >= 0)
		r = sd_event_add_signal(event, NULL, SIGINT, daemon_on_signal, NULL);
	if (r >= 0)
		r = sd_event_add_signal(event, NULL, SIGHUP, daemon_on_hup, &d);
	if (r >= 0)
		r = sd_event_set_watchdog(event, true);
	if (r < 0) {
		log_error("cannot set up the event loop: %s", strerror(-r));
		goto out;
	}

	r = daemon_open_index(spool, &d);
	if (r >= 0)
		r = daemon_start_watchers(event, spool, &cfg, &d);
	if (r >= 0)
		r = daemon_start_metrics(&cfg, &d);
	if (r < 0)
		goto out;
	r = sup_new(event, spool, d.index, &d.sup);
	if (r < 0) {
		log_error("cannot set up the VMs: %s", strerror(-r));
		goto out;
	}
	for (size_t i = 0; i < cfg.n_vms; i++) {
		r = sup_add(d.sup, &cfg.vms[i], true, err, sizeof(err));
		if (r < 0) {
			log_error("VM %s: %s", cfg.vms[i].name, r == -ENOMEM ? strerror(ENOMEM) : err);
			goto out;
		}
	}
	r = lv_daemon_start(event, d.sup, &cfg, &d.libvirt);
	if (r < 0) {
		log_error("libvirt %s: %s", cfg.libvirt_uri, strerror(-r));
		goto out;
	}
	r = daemon_start_api(event, spool, &cfg, &d);
	if (r < 0)
		goto out;
	/* Counted now: libvirt's domains are in the set too. */
	log_info("panicbrokerd %s: supervising %zu VM%s, spool %s", PB_VERSION,
		 sup_count(d.sup), sup_count(d.sup) == 1 ? "" : "s", cfg.spool);
	sd_notifyf(0, "READY=1\nSTATUS=supervising %zu VMs", sup_count(d.sup));

	r = sd_event_loop(event);
	if (r < 0)
		log_error("event loop failed: %s", strerror(-r));
out:
	api_free(d.api);
	api_html_free(d.html); /* after the api: its routes point at it */
	sup_free(d.sup);
	lv_host_free(d.libvirt); /* after the VMs: their backends are its */
	/* After the VMs: their last events are told; runs still going are
	 * killed and recorded as cancelled. */
	crash_exec_free(d.exec);
	api_events_free(d.events);
	journal_free(d.journal);
	metrics_daemon_free(d.metrics);
	index_free(d.index);
	sd_event_unref(event);
	spool_close(spool);
	return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
