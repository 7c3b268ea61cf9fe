// SPDX-License-Identifier: MIT
/*
 * The daemon's connection to libvirt: connect, keepalive, reconnect; the
 * domains found at each connect and followed by events afterwards; which
 * of them are supervised (their metadata) and with which policy.
 */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"
#include "libvirt_event.h"
#include "libvirt_internal.h"
#include "libvirt_meta.h"
#include "log.h"
#include "util.h"

#define LV_BACKOFF_MIN_USEC (1 * USEC_PER_SEC)
#define LV_BACKOFF_MAX_USEC (16 * USEC_PER_SEC)
#define LV_KEEPALIVE_INTERVAL_SEC 5
#define LV_KEEPALIVE_COUNT 3

struct lv_host *lv_host_current;

static void lv_host_connect(struct lv_host *h);

/* libvirt would print its errors to stderr by default: they go to our log
 * through the calls' results instead. */
static void lv_quiet(void *ud, virErrorPtr e)
{
	(void)ud;
	(void)e;
}

int lv_last_error(char *reason, size_t len)
{
	virErrorPtr e = virGetLastError();
	int r = -EIO;

	if (!e) {
		snprintf(reason, len, "unknown libvirt error");
		return r;
	}
	snprintf(reason, len, "%s", e->message ? e->message : "unknown libvirt error");
	switch (e->code) {
	case VIR_ERR_NO_CONNECT:
	case VIR_ERR_INVALID_CONN:
	case VIR_ERR_RPC:
		r = -ECONNRESET;
		break;
	case VIR_ERR_SYSTEM_ERROR:
		r = e->domain == VIR_FROM_RPC ? -ECONNRESET : -EIO;
		break;
	case VIR_ERR_NO_DOMAIN:
		r = -ENOENT;
		break;
	case VIR_ERR_OPERATION_INVALID:
		r = -ENOTCONN; /* the domain is not running */
		break;
	case VIR_ERR_OPERATION_TIMEOUT:
		r = -ETIMEDOUT;
		break;
	default:
		break;
	}
	virResetLastError();
	return r;
}

struct lv_dom *lv_host_find(struct lv_host *h, const char *name)
{
	for (struct lv_dom *d = h->doms; d; d = d->next)
		if (strcmp(d->name, name) == 0)
			return d;
	return NULL;
}

virDomainPtr lv_host_lookup(struct lv_host *h, const char *name, int *ret_error)
{
	virDomainPtr dom;
	char reason[256];

	if (!h->conn) {
		*ret_error = -ENOTCONN;
		return NULL;
	}
	dom = virDomainLookupByName(h->conn, name);
	if (!dom) {
		*ret_error = lv_last_error(reason, sizeof(reason));
		if (*ret_error == -ENOENT)
			*ret_error = -ENOTCONN;
	}
	return dom;
}

static struct lv_dom *lv_dom_get(struct lv_host *h, const char *name)
{
	struct lv_dom *d = lv_host_find(h, name);

	if (d)
		return d;
	d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	snprintf(d->name, sizeof(d->name), "%s", name);
	d->next = h->doms;
	h->doms = d;
	return d;
}

static void lv_dom_drop(struct lv_host *h, struct lv_dom *d, const char *why)
{
	if (d->supervised) {
		d->supervised = false;
		h->ops->remove(h->ud, d->name, why);
	}
	for (struct lv_dom **p = &h->doms; *p; p = &(*p)->next)
		if (*p == d) {
			*p = d->next;
			break;
		}
	free(d);
}

/*
 * The mailbox file the daemon created is QEMU's to open too: it gets the
 * owner libvirt gives the files it creates (its QEMU user; 0644).
 */
static void lv_mailbox_own(const char *name, const char *path)
{
	_cleanup_close_ int fd = -1;
	struct passwd *pw;
	struct stat st;

	if (!path[0])
		return;
	pw = getpwnam("libvirt-qemu");
	if (!pw)
		pw = getpwnam("qemu");
	if (!pw)
		return;
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid == pw->pw_uid)
		return;
	if (st.st_uid != 0 || fchown(fd, pw->pw_uid, pw->pw_gid) < 0 || fchmod(fd, 0644) < 0)
		log_warn("domain %s: mailbox %s: cannot give it to %s: %s; QEMU may not open it",
			 name, path, pw->pw_name, strerror(errno));
}

/* The domain's configuration from its metadata; false: not supervised. */
static bool lv_dom_config(struct lv_host *h, struct lv_dom *d, virDomainPtr dom,
			  struct vm_config *ret)
{
	char err[CFG_ERR_MAX] = "", reason[256];
	char *meta;
	int r;

	meta = virDomainGetMetadata(dom, VIR_DOMAIN_METADATA_ELEMENT, LV_META_URI, 0);
	if (!meta) {
		r = lv_last_error(reason, sizeof(reason));
		if (!h->observe_all)
			return false;
	}
	r = lv_meta_parse(d->name, meta, ret, err, sizeof(err));
	free(meta);
	if (r < 0 && !name_is_valid(d->name)) {
		if (strcmp(d->meta_err, err) != 0)
			log_warn("domain %s: %s; not supervised", d->name, err);
		snprintf(d->meta_err, sizeof(d->meta_err), "%s", err);
		return false;
	}
	if (r < 0) {
		if (strcmp(d->meta_err, err) != 0)
			log_error("domain %s: malformed panicbroker metadata: %s; supervised with the defaults",
				  d->name, err);
		snprintf(d->meta_err, sizeof(d->meta_err), "%s", err);
	} else {
		d->meta_err[0] = '\0';
	}
	return true;
}

/* Brings one domain's supervision in line with its XML now. */
static void lv_dom_sync(struct lv_host *h, virDomainPtr dom)
{
	const char *name = virDomainGetName(dom);
	struct vm_config cfg;
	char err[CFG_ERR_MAX];
	struct lv_dom *d;
	bool want;
	int r;

	if (!name)
		return;
	d = lv_dom_get(h, name);
	if (!d) {
		log_error("domain %s: out of memory, not followed", name);
		return;
	}
	d->seen = true;
	want = lv_dom_config(h, d, dom, &cfg);
	if (d->supervised && (!want || memcmp(&cfg, &d->cfg, sizeof(cfg)) != 0)) {
		d->supervised = false;
		h->ops->remove(h->ud, d->name, want ? "its panicbroker metadata changed" :
						    "its panicbroker metadata was removed");
	}
	if (!want || d->supervised)
		return;
	d->cfg = cfg;
	r = h->ops->add(h->ud, &cfg, err, sizeof(err));
	if (r < 0) {
		log_error("domain %s: cannot supervise it: %s", d->name,
			  r == -ENOMEM ? strerror(ENOMEM) : err);
		return;
	}
	d->supervised = true;
	lv_mailbox_own(d->name, cfg.mailbox_path);
}

static int lv_on_lifecycle(virConnectPtr conn, virDomainPtr dom, int event, int detail,
			   void *ud)
{
	struct lv_host *h = ud;
	const char *name = virDomainGetName(dom);
	struct lv_dom *d;

	(void)conn;
	if (!name)
		return 0;
	log_debug("domain %s: lifecycle event %d detail %d", name, event, detail);
	switch (event) {
	case VIR_DOMAIN_EVENT_DEFINED:
		lv_dom_sync(h, dom);
		return 0;
	case VIR_DOMAIN_EVENT_UNDEFINED:
		d = lv_host_find(h, name);
		if (d)
			lv_dom_drop(h, d, "the domain was undefined");
		return 0;
	case VIR_DOMAIN_EVENT_STARTED:
		/* A transient domain is defined by its start. */
		if (!lv_host_find(h, name))
			lv_dom_sync(h, dom);
		d = lv_host_find(h, name);
		if (d && d->supervised) {
			h->ops->restarted(h->ud, name);
			lv_mailbox_own(d->name, d->cfg.mailbox_path);
		}
		break;
	default:
		break;
	}
	d = lv_host_find(h, name);
	if (d && d->be)
		lvb_lifecycle(d->be, event, detail);
	/* A transient domain that stopped is gone. */
	if (d && event == VIR_DOMAIN_EVENT_STOPPED && virDomainIsPersistent(dom) == 0)
		lv_dom_drop(h, d, "the transient domain stopped");
	return 0;
}

static void lv_on_reboot(virConnectPtr conn, virDomainPtr dom, void *ud)
{
	struct lv_host *h = ud;
	const char *name = virDomainGetName(dom);
	struct lv_dom *d = name ? lv_host_find(h, name) : NULL;

	(void)conn;
	if (d && d->be)
		lvb_reboot(d->be);
}

static void lv_on_metadata(virConnectPtr conn, virDomainPtr dom, int type, const char *nsuri,
			   void *ud)
{
	(void)conn;
	if (type == VIR_DOMAIN_METADATA_ELEMENT && nsuri && strcmp(nsuri, LV_META_URI) == 0)
		lv_dom_sync(ud, dom);
}

static int lv_on_retry(sd_event_source *s, uint64_t usec, void *ud)
{
	struct lv_host *h = ud;

	(void)s;
	(void)usec;
	h->retry = sd_event_source_disable_unref(h->retry);
	lv_host_connect(h);
	return 0;
}

static void lv_schedule_retry(struct lv_host *h)
{
	int r;

	h->retry = sd_event_source_disable_unref(h->retry);
	r = sd_event_add_time_relative(h->event, &h->retry, CLOCK_MONOTONIC, h->backoff_usec, 0,
				       lv_on_retry, h);
	if (r < 0)
		log_error("libvirt %s: cannot arm the reconnect timer: %s; libvirt domains are not followed",
			  h->uri, strerror(-r));
	h->backoff_usec = h->backoff_usec * 2 > LV_BACKOFF_MAX_USEC ? LV_BACKOFF_MAX_USEC :
								      h->backoff_usec * 2;
}

/* Drops the connection (the caller logs why) and tries again later. */
static void lv_host_lost(struct lv_host *h, const char *why)
{
	virConnectPtr c = h->conn;

	if (!c)
		return;
	h->conn = NULL;
	if (h->cb_lifecycle >= 0)
		(void)virConnectDomainEventDeregisterAny(c, h->cb_lifecycle);
	if (h->cb_reboot >= 0)
		(void)virConnectDomainEventDeregisterAny(c, h->cb_reboot);
	if (h->cb_meta >= 0)
		(void)virConnectDomainEventDeregisterAny(c, h->cb_meta);
	h->cb_lifecycle = h->cb_reboot = h->cb_meta = -1;
	virResetLastError();
	for (struct lv_dom *d = h->doms; d; d = d->next)
		if (d->be)
			lvb_disconnected(d->be, why);
	(void)virConnectClose(c);
	virResetLastError();
	h->backoff_usec = LV_BACKOFF_MIN_USEC;
	lv_schedule_retry(h);
}

static int lv_on_close_defer(sd_event_source *s, void *ud)
{
	struct lv_host *h = ud;

	sd_event_source_disable_unref(s);
	if (h->conn) {
		log_warn("libvirt %s: connection lost; reconnecting", h->uri);
		h->said_down = true;
		lv_host_lost(h, "the libvirt connection was lost");
	}
	return 0;
}

/* libvirt's close callback: the connection is dead. Not closed from inside. */
static void lv_on_close(virConnectPtr conn, int reason, void *ud)
{
	struct lv_host *h = ud;
	sd_event_source *s = NULL;

	(void)conn;
	(void)reason;
	if (sd_event_add_defer(h->event, &s, lv_on_close_defer, h) < 0)
		log_error("libvirt %s: connection lost, and cannot schedule the reconnect", h->uri);
}

static int lv_host_subscribe(struct lv_host *h, char *reason, size_t len)
{
	virConnectPtr c = h->conn;

	h->cb_lifecycle = virConnectDomainEventRegisterAny(c, NULL, VIR_DOMAIN_EVENT_ID_LIFECYCLE,
		VIR_DOMAIN_EVENT_CALLBACK(lv_on_lifecycle), h, NULL);
	h->cb_reboot = virConnectDomainEventRegisterAny(c, NULL, VIR_DOMAIN_EVENT_ID_REBOOT,
		VIR_DOMAIN_EVENT_CALLBACK(lv_on_reboot), h, NULL);
	h->cb_meta = virConnectDomainEventRegisterAny(c, NULL, VIR_DOMAIN_EVENT_ID_METADATA_CHANGE,
		VIR_DOMAIN_EVENT_CALLBACK(lv_on_metadata), h, NULL);
	if (h->cb_lifecycle < 0 || h->cb_reboot < 0 || h->cb_meta < 0)
		return lv_last_error(reason, len);
	if (virConnectRegisterCloseCallback(c, lv_on_close, h, NULL) < 0)
		return lv_last_error(reason, len);
	if (virConnectSetKeepAlive(c, LV_KEEPALIVE_INTERVAL_SEC, LV_KEEPALIVE_COUNT) < 0)
		return lv_last_error(reason, len);
	return 0;
}

/* Every domain now: supervised ones (re)attached, vanished ones dropped. */
static int lv_host_list(struct lv_host *h, char *reason, size_t len)
{
	virDomainPtr *doms = NULL;
	int n = virConnectListAllDomains(h->conn, &doms, 0);

	if (n < 0)
		return lv_last_error(reason, len);
	for (struct lv_dom *d = h->doms; d; d = d->next)
		d->seen = false;
	for (int i = 0; i < n; i++) {
		lv_dom_sync(h, doms[i]);
		virDomainFree(doms[i]);
	}
	free(doms);
	for (struct lv_dom *d = h->doms, *next; d; d = next) {
		next = d->next;
		if (!d->seen)
			lv_dom_drop(h, d, "the domain was undefined while libvirt was away");
	}
	for (struct lv_dom *d = h->doms; d; d = d->next)
		if (d->be)
			lvb_connected(d->be);
	return 0;
}

static void lv_host_connect(struct lv_host *h)
{
	char reason[256];
	int r;

	h->conn = virConnectOpen(h->uri);
	if (!h->conn) {
		(void)lv_last_error(reason, sizeof(reason));
		if (!h->said_down)
			log_warn("libvirt %s: cannot connect: %s; retrying", h->uri, reason);
		h->said_down = true;
		lv_schedule_retry(h);
		return;
	}
	r = lv_host_subscribe(h, reason, sizeof(reason));
	if (r >= 0)
		r = lv_host_list(h, reason, sizeof(reason));
	if (r < 0) {
		log_warn("libvirt %s: %s; reconnecting", h->uri, reason);
		h->said_down = true;
		lv_host_lost(h, reason);
		return;
	}
	h->said_down = false;
	h->backoff_usec = LV_BACKOFF_MIN_USEC;
	log_info("libvirt %s: connected", h->uri);
}

int lv_host_new(sd_event *e, const char *uri, bool observe_all,
		const struct lv_host_ops *ops, void *ud, struct lv_host **ret)
{
	struct lv_host *h;
	int r;

	if (lv_host_current)
		return -EBUSY;
	r = lv_event_register(e);
	if (r < 0)
		return r;
	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	if (virInitialize() < 0) {
		free(h);
		return -EIO;
	}
	virSetErrorFunc(NULL, lv_quiet);
	h->event = sd_event_ref(e);
	snprintf(h->uri, sizeof(h->uri), "%s", uri && uri[0] ? uri : LV_DEFAULT_URI);
	h->observe_all = observe_all;
	h->ops = ops;
	h->ud = ud;
	h->cb_lifecycle = h->cb_reboot = h->cb_meta = -1;
	h->backoff_usec = LV_BACKOFF_MIN_USEC;
	lv_host_current = h;
	*ret = h;
	return 0;
}

void lv_host_start(struct lv_host *h)
{
	lv_host_connect(h);
}

void lv_host_free(struct lv_host *h)
{
	if (!h)
		return;
	h->retry = sd_event_source_disable_unref(h->retry);
	/* The VMs go first (the daemon frees them): their backends unlink. */
	while (h->doms) {
		struct lv_dom *d = h->doms;

		h->doms = d->next;
		free(d);
	}
	if (h->conn) {
		if (h->cb_lifecycle >= 0)
			(void)virConnectDomainEventDeregisterAny(h->conn, h->cb_lifecycle);
		if (h->cb_reboot >= 0)
			(void)virConnectDomainEventDeregisterAny(h->conn, h->cb_reboot);
		if (h->cb_meta >= 0)
			(void)virConnectDomainEventDeregisterAny(h->conn, h->cb_meta);
		(void)virConnectUnregisterCloseCallback(h->conn, lv_on_close);
		(void)virConnectClose(h->conn);
	}
	lv_host_current = NULL;
	sd_event_unref(h->event);
	free(h);
}
