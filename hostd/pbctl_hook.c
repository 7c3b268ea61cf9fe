// SPDX-License-Identifier: MIT
/*
 * pbctl libvirt-hook DOMAIN OPERATION: the body of libvirt's qemu hook
 * (systemd/libvirt-hook, installed as /etc/libvirt/hooks/qemu.d/panicbroker).
 * libvirt gives the domain's XML on stdin. For a domain with panicbroker's
 * metadata and a mailbox:
 *  - prepare: the mailbox file is created and formatted before QEMU maps
 *    it, owned by libvirt's QEMU user, 0644 (as libvirt makes it); a file
 *    that is there already is left alone (the daemon formats it again when
 *    the domain has started);
 *  - release: the file is removed (libvirt would leave it behind).
 * It never calls libvirt (a hook must not), needs no daemon, and always
 * exits 0: a failing prepare hook would stop the domain from starting, and
 * without the mailbox the domain still runs, degraded. Problems go to
 * stderr, which libvirt logs.
 */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include <panicbroker/mailbox.h>

#include "common.h"
#include "io.h"
#include "libvirt_meta.h"
#include "pbctl_enable.h"

#define PH_XML_MAX (4 * 1024 * 1024)

/* The metadata element, serialized alone, or NULL. */
static char *ph_meta(xmlDocPtr doc)
{
	xmlNodePtr root = xmlDocGetRootElement(doc), md = NULL;
	xmlBufferPtr buf;
	char *s = NULL;

	for (xmlNodePtr n = root ? root->children : NULL; n; n = n->next)
		if (n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, "metadata") == 0)
			md = n;
	for (xmlNodePtr n = md ? md->children : NULL; n; n = n->next) {
		if (n->type != XML_ELEMENT_NODE || !n->ns || !n->ns->href ||
		    strcmp((const char *)n->ns->href, LV_META_URI) != 0)
			continue;
		buf = xmlBufferCreate();
		if (buf && xmlNodeDump(buf, doc, n, 0, 0) >= 0)
			s = strdup((const char *)xmlBufferContent(buf));
		xmlBufferFree(buf);
		return s;
	}
	return NULL;
}

static int ph_prepare(const char *name, const char *path)
{
	_cleanup_close_ int fd = -1;
	struct passwd *pw = getpwnam("libvirt-qemu");
	struct timespec ts;
	const char *reason = NULL;
	void *map;
	int r;

	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0 && errno == EEXIST)
		return 0;
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, PB_MBOX_SIZE_DEFAULT) < 0) {
		r = -errno;
		(void)unlink(path);
		return r;
	}
	map = mmap(NULL, PB_MBOX_SIZE_DEFAULT, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) {
		r = -errno;
		(void)unlink(path);
		return r;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	r = pb_mbox_format(map, PB_MBOX_SIZE_DEFAULT,
			   (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec, &reason);
	(void)munmap(map, PB_MBOX_SIZE_DEFAULT);
	if (r < 0) {
		fprintf(stderr, "panicbroker hook: %s: cannot format %s: %s\n", name, path,
			reason ? reason : strerror(-r));
		(void)unlink(path);
		return r;
	}
	if (pw && (fchown(fd, pw->pw_uid, pw->pw_gid) < 0 || fchmod(fd, 0644) < 0))
		return -errno;
	return 0;
}

int pbctl_libvirt_hook(int argc, char **argv)
{
	_cleanup_free_ char *xml = NULL, *meta = NULL;
	char err[CFG_ERR_MAX];
	struct vm_config cfg;
	xmlDocPtr doc;
	ssize_t n;
	int r;

	if (argc < 3)
		return 0;
	if (strcmp(argv[2], "prepare") != 0 && strcmp(argv[2], "release") != 0)
		return 0;
	xml = malloc(PH_XML_MAX + 1);
	if (!xml)
		return 0;
	n = io_read_full(STDIN_FILENO, xml, PH_XML_MAX);
	if (n <= 0)
		return 0;
	xml[n] = '\0';
	doc = xmlReadMemory(xml, (int)n, "domain.xml", NULL,
			    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	if (!doc)
		return 0;
	meta = ph_meta(doc);
	xmlFreeDoc(doc);
	if (!meta)
		return 0; /* not ours */
	r = lv_meta_parse(argv[1], meta, &cfg, err, sizeof(err));
	if (r < 0)
		fprintf(stderr, "panicbroker hook: %s: malformed panicbroker metadata: %s; the defaults apply\n",
			argv[1], err);
	if (!cfg.mailbox_path[0])
		return 0;
	if (strcmp(argv[2], "release") == 0) {
		if (unlink(cfg.mailbox_path) < 0 && errno != ENOENT)
			fprintf(stderr, "panicbroker hook: %s: cannot remove %s: %s\n", argv[1],
				cfg.mailbox_path, strerror(errno));
		return 0;
	}
	r = ph_prepare(argv[1], cfg.mailbox_path);
	if (r < 0)
		fprintf(stderr, "panicbroker hook: %s: mailbox %s: %s; the domain starts without it formatted\n",
			argv[1], cfg.mailbox_path, strerror(-r));
	return 0;
}
