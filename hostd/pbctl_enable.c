// SPDX-License-Identifier: MIT
/*
 * pbctl enable DOMAIN [KEY=VALUE...] / pbctl disable DOMAIN, through
 * libvirt's API from pbctl itself: the change is the operator's, made with
 * the operator's own libvirt rights, whether the daemon runs or not; the
 * daemon learns of it by libvirt's DEFINED event like of any other edit.
 *
 * enable edits the persistent definition:
 *  - <panic> of the model the architecture takes (x86: isa at 0x505),
 *  - <features><vmcoreinfo state='on'/>,
 *  - <on_crash>preserve</on_crash>,
 *  - <shmem name='panicbroker-DOMAIN'> (ivshmem-plain, 1 MiB) unless
 *    --no-mailbox,
 *  - panicbroker's metadata with the policy (libvirt_meta.h), and inside it
 *    <panicbroker:added .../>: what enable added, so disable takes back
 *    exactly that and leaves what the domain had before.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <libxml/parser.h>
#include <libxml/tree.h>

#include "backend_libvirt.h"
#include "common.h"
#include "libvirt_meta.h"
#include "pbctl_enable.h"

#define PE_SHMEM_PREFIX "panicbroker-"

struct pe_ctx {
	xmlDocPtr doc;
	xmlNodePtr root;
	const char *name;
	char changes[16][256];
	int n_changes;
};

static void pe_change(struct pe_ctx *c, const char *fmt, const char *arg)
{
	if (c->n_changes < (int)ARRAY_SIZE(c->changes))
		snprintf(c->changes[c->n_changes++], sizeof(c->changes[0]), fmt, arg);
}

static xmlNodePtr pe_child(xmlNodePtr parent, const char *name)
{
	for (xmlNodePtr n = parent ? parent->children : NULL; n; n = n->next)
		if (n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, name) == 0)
			return n;
	return NULL;
}

static xmlNodePtr pe_child_get(xmlNodePtr parent, const char *name)
{
	xmlNodePtr n = pe_child(parent, name);

	return n ? n : xmlNewChild(parent, NULL, BAD_CAST name, NULL);
}

static const char *pe_prop(xmlNodePtr n, const char *name, char *buf, size_t len)
{
	xmlChar *v = n ? xmlGetProp(n, BAD_CAST name) : NULL;

	buf[0] = '\0';
	if (v)
		snprintf(buf, len, "%s", (const char *)v);
	xmlFree(v);
	return buf;
}

/* panicbroker's element in <metadata>, or NULL. */
static xmlNodePtr pe_meta(struct pe_ctx *c)
{
	xmlNodePtr md = pe_child(c->root, "metadata");

	for (xmlNodePtr n = md ? md->children : NULL; n; n = n->next)
		if (n->type == XML_ELEMENT_NODE && n->ns && n->ns->href &&
		    strcmp((const char *)n->ns->href, LV_META_URI) == 0)
			return n;
	return NULL;
}

/* The panic model libvirt takes for the domain's architecture. */
static const char *pe_panic_model(struct pe_ctx *c)
{
	xmlNodePtr type = pe_child(pe_child(c->root, "os"), "type");
	char arch[64], machine[64];

	pe_prop(type, "arch", arch, sizeof(arch));
	pe_prop(type, "machine", machine, sizeof(machine));
	if (strcmp(arch, "aarch64") == 0 || strcmp(arch, "armv7l") == 0)
		return "pvpanic";
	if (strncmp(arch, "s390", 4) == 0)
		return "s390";
	if (strncmp(arch, "ppc64", 5) == 0 && strncmp(machine, "pseries", 7) == 0)
		return "pseries";
	return "isa";
}

static int pe_enable_xml(struct pe_ctx *c, const char *meta_xml, bool mailbox)
{
	xmlNodePtr devices = pe_child_get(c->root, "devices"), feat, n, md, meta, added;
	xmlNsPtr ns;
	char shm[VM_NAME_MAX + 32], buf[VM_NAME_MAX + 32], prev_on_crash[VM_NAME_MAX + 32] = "";
	bool add_panic = false, add_vmci = false, add_shmem = false;
	xmlDocPtr mdoc;

	if (!devices)
		return -ENOMEM;
	if (!pe_child(devices, "panic")) {
		const char *model = pe_panic_model(c);

		n = xmlNewChild(devices, NULL, BAD_CAST "panic", NULL);
		if (!n || !xmlSetProp(n, BAD_CAST "model", BAD_CAST model))
			return -ENOMEM;
		add_panic = true;
		pe_change(c, "added <panic model='%s'/> (pvpanic: the guest tells the host it panicked)",
			  model);
	}
	feat = pe_child_get(c->root, "features");
	n = feat ? pe_child(feat, "vmcoreinfo") : NULL;
	if (!feat)
		return -ENOMEM;
	if (!n || strcmp(pe_prop(n, "state", buf, sizeof(buf)), "on") != 0) {
		if (!n)
			n = xmlNewChild(feat, NULL, BAD_CAST "vmcoreinfo", NULL);
		if (!n || !xmlSetProp(n, BAD_CAST "state", BAD_CAST "on"))
			return -ENOMEM;
		add_vmci = true;
		pe_change(c, "%s", "set <features><vmcoreinfo state='on'/> (dumps readable by makedumpfile and crash)");
	}
	n = pe_child(c->root, "on_crash");
	if (n) {
		xmlChar *v = xmlNodeGetContent(n);

		snprintf(prev_on_crash, sizeof(prev_on_crash), "%s", v ? (const char *)v : "");
		xmlFree(v);
	}
	if (strcmp(prev_on_crash, "preserve") != 0) {
		if (!n)
			n = xmlNewChild(c->root, NULL, BAD_CAST "on_crash", NULL);
		if (!n)
			return -ENOMEM;
		xmlNodeSetContent(n, BAD_CAST "preserve");
		pe_change(c, "set <on_crash>preserve</on_crash> (was %s: panicbrokerd decides what follows a panic)",
			  prev_on_crash[0] ? prev_on_crash : "destroy, the default");
	}
	snprintf(shm, sizeof(shm), PE_SHMEM_PREFIX "%s", c->name);
	if (mailbox) {
		bool have = false;

		for (n = devices->children; n; n = n->next)
			if (n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, "shmem") == 0 &&
			    strcmp(pe_prop(n, "name", buf, sizeof(buf)), shm) == 0)
				have = true;
		if (!have) {
			xmlNodePtr model, size;

			n = xmlNewChild(devices, NULL, BAD_CAST "shmem", NULL);
			model = n ? xmlNewChild(n, NULL, BAD_CAST "model", NULL) : NULL;
			size = n ? xmlNewChild(n, NULL, BAD_CAST "size", BAD_CAST "1") : NULL;
			if (!model || !size || !xmlSetProp(n, BAD_CAST "name", BAD_CAST shm) ||
			    !xmlSetProp(model, BAD_CAST "type", BAD_CAST "ivshmem-plain") ||
			    !xmlSetProp(size, BAD_CAST "unit", BAD_CAST "M"))
				return -ENOMEM;
			add_shmem = true;
			pe_change(c, "added <shmem name='%s'> (ivshmem-plain, 1 MiB: the broker channel's mailbox)",
				  shm);
		}
	}

	/* The metadata: ours replaced whole. */
	meta = pe_meta(c);
	if (meta) {
		added = pe_child(meta, "added");
		/* What an earlier enable added stays ours to take back. */
		if (added) {
			add_panic |= strcmp(pe_prop(added, "panic", buf, sizeof(buf)), "yes") == 0;
			add_vmci |= strcmp(pe_prop(added, "vmcoreinfo", buf, sizeof(buf)), "yes") == 0;
			add_shmem |= strcmp(pe_prop(added, "shmem", buf, sizeof(buf)), "yes") == 0;
			if (pe_prop(added, "on_crash", buf, sizeof(buf))[0])
				snprintf(prev_on_crash, sizeof(prev_on_crash), "%s", buf);
		}
		xmlUnlinkNode(meta);
		xmlFreeNode(meta);
	}
	mdoc = xmlReadMemory(meta_xml, (int)strlen(meta_xml), "meta.xml", NULL, XML_PARSE_NONET);
	if (!mdoc)
		return -EINVAL;
	md = pe_child_get(c->root, "metadata");
	meta = md ? xmlDocCopyNode(xmlDocGetRootElement(mdoc), c->doc, 1) : NULL;
	xmlFreeDoc(mdoc);
	if (!meta || !xmlAddChild(md, meta))
		return -ENOMEM;
	ns = xmlNewNs(meta, BAD_CAST LV_META_URI, BAD_CAST LV_META_PREFIX);
	if (!ns)
		return -ENOMEM;
	xmlSetNs(meta, ns);
	added = xmlNewChild(meta, ns, BAD_CAST "added", NULL);
	if (!added || !xmlSetProp(added, BAD_CAST "panic", BAD_CAST(add_panic ? "yes" : "no")) ||
	    !xmlSetProp(added, BAD_CAST "vmcoreinfo", BAD_CAST(add_vmci ? "yes" : "no")) ||
	    !xmlSetProp(added, BAD_CAST "shmem", BAD_CAST(add_shmem ? "yes" : "no")) ||
	    !xmlSetProp(added, BAD_CAST "on_crash",
			BAD_CAST(strcmp(prev_on_crash, "preserve") == 0 ? "" : prev_on_crash)))
		return -ENOMEM;
	pe_change(c, "%s", "set panicbroker's <metadata> (" LV_META_URI "): supervised by panicbrokerd --libvirt");
	return 0;
}

static void pe_remove(xmlNodePtr n)
{
	if (n) {
		xmlUnlinkNode(n);
		xmlFreeNode(n);
	}
}

static int pe_disable_xml(struct pe_ctx *c)
{
	xmlNodePtr meta = pe_meta(c), added, devices = pe_child(c->root, "devices"), n, next;
	char buf[VM_NAME_MAX + 32], shm[VM_NAME_MAX + 32];

	if (!meta)
		return -ENOENT;
	added = pe_child(meta, "added");
	if (strcmp(pe_prop(added, "panic", buf, sizeof(buf)), "yes") == 0 && devices) {
		pe_remove(pe_child(devices, "panic"));
		pe_change(c, "%s", "removed <panic> (enable added it)");
	}
	if (strcmp(pe_prop(added, "vmcoreinfo", buf, sizeof(buf)), "yes") == 0) {
		pe_remove(pe_child(pe_child(c->root, "features"), "vmcoreinfo"));
		pe_change(c, "%s", "removed <vmcoreinfo/> (enable added it)");
	}
	/* Set back to what it was, unless it was preserve already. */
	n = pe_child(c->root, "on_crash");
	if (pe_prop(added, "on_crash", buf, sizeof(buf))[0] && n) {
		xmlNodeSetContent(n, BAD_CAST buf);
		pe_change(c, "set <on_crash>%s</on_crash> back", buf);
	}
	snprintf(shm, sizeof(shm), PE_SHMEM_PREFIX "%s", c->name);
	if (strcmp(pe_prop(added, "shmem", buf, sizeof(buf)), "yes") == 0 && devices)
		for (n = devices->children; n; n = next) {
			next = n->next;
			if (n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, "shmem") == 0 &&
			    strcmp(pe_prop(n, "name", buf, sizeof(buf)), shm) == 0) {
				pe_remove(n);
				pe_change(c, "removed <shmem name='%s'> (enable added it)", shm);
			}
		}
	pe_remove(meta);
	pe_change(c, "%s", "removed panicbroker's <metadata>: no longer supervised");
	return 0;
}

static char *pe_dump(xmlDocPtr doc)
{
	xmlChar *out = NULL;
	int len = 0;
	char *s;

	xmlDocDumpFormatMemory(doc, &out, &len, 1);
	s = out ? strdup((const char *)out) : NULL;
	xmlFree(out);
	return s;
}

/* diff -u of the definition before and after, as the dry run's output. */
static int pe_diff(const char *name, const char *before, const char *after)
{
	char a[] = "/tmp/pbctl-before-XXXXXX", b[] = "/tmp/pbctl-after-XXXXXX";
	char la[VM_NAME_MAX + 16], lb[VM_NAME_MAX + 16];
	int fa = mkstemp(a), fb = fa >= 0 ? mkstemp(b) : -1, status = 0;
	pid_t pid;

	if (fa < 0 || fb < 0 || write(fa, before, strlen(before)) < 0 ||
	    write(fb, after, strlen(after)) < 0) {
		if (fa >= 0) {
			close(fa);
			unlink(a);
		}
		if (fb >= 0) {
			close(fb);
			unlink(b);
		}
		return -errno;
	}
	close(fa);
	close(fb);
	snprintf(la, sizeof(la), "%s.xml", name);
	snprintf(lb, sizeof(lb), "%s.xml (new)", name);
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		execlp("diff", "diff", "-u", "--label", la, "--label", lb, a, b, (char *)NULL);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &status, 0) < 0)
		status = -1;
	unlink(a);
	unlink(b);
	return WIFEXITED(status) && WEXITSTATUS(status) <= 1 ? 0 : -EIO;
}

static void pe_usage(FILE *f)
{
	fprintf(f, "Usage: pbctl enable [--uri URI] [--dry-run] [--no-mailbox] DOMAIN [KEY=VALUE...]\n"
		   "       pbctl disable [--uri URI] [--dry-run] DOMAIN\n");
}

static const char *pe_libvirt_error(void)
{
	virErrorPtr e = virGetLastError();

	return e && e->message ? e->message : "unknown libvirt error";
}

static void pe_quiet(void *ud, virErrorPtr e)
{
	(void)ud;
	(void)e;
}

int pbctl_libvirt(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "uri", required_argument, NULL, 'u' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "no-mailbox", no_argument, NULL, 'M' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	bool enable = strcmp(argv[0], "enable") == 0, dry = false, mailbox = true;
	const char *uri = getenv("LIBVIRT_DEFAULT_URI");
	_cleanup_free_ char *xml = NULL, *before = NULL, *after = NULL, *meta = NULL;
	char **kv = NULL, shm_kv[VM_NAME_MAX + 64], err[CFG_ERR_MAX];
	struct pe_ctx c = { 0 };
	virConnectPtr conn = NULL;
	virDomainPtr dom = NULL;
	size_t n_kv;
	int opt, r, rc = 1, active;

	if (!uri || !uri[0])
		uri = LV_DEFAULT_URI;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
		switch (opt) {
		case 'u':
			uri = optarg;
			break;
		case 'n':
			dry = true;
			break;
		case 'M':
			mailbox = false;
			break;
		case 'h':
			pe_usage(stdout);
			return 0;
		default:
			pe_usage(stderr);
			return 2;
		}
	}
	if (optind >= argc || (!enable && optind + 1 != argc)) {
		pe_usage(stderr);
		return 2;
	}
	c.name = argv[optind];
	n_kv = (size_t)(argc - optind - 1);
	if (enable) {
		kv = calloc(n_kv + 1, sizeof(*kv));
		if (!kv)
			return 1;
		for (size_t i = 0; i < n_kv; i++) {
			kv[i] = argv[optind + 1 + i];
			if (strncmp(kv[i], "mailbox=", 8) == 0)
				mailbox = false; /* the operator's own file */
		}
		if (mailbox) {
			snprintf(shm_kv, sizeof(shm_kv), "mailbox=/dev/shm/" PE_SHMEM_PREFIX "%s", c.name);
			kv[n_kv++] = shm_kv;
		}
		r = lv_meta_build(c.name, kv, n_kv, &meta, err, sizeof(err));
		free(kv);
		if (r < 0) {
			fprintf(stderr, "pbctl: enable %s: %s\n", c.name, r == -ENOMEM ? strerror(ENOMEM) : err);
			return 2;
		}
	}

	virSetErrorFunc(NULL, pe_quiet);
	conn = virConnectOpen(uri);
	if (!conn) {
		fprintf(stderr, "pbctl: cannot connect to libvirt %s: %s\n", uri, pe_libvirt_error());
		return 1;
	}
	dom = virDomainLookupByName(conn, c.name);
	if (!dom) {
		fprintf(stderr, "pbctl: %s: %s\n", c.name, pe_libvirt_error());
		goto out;
	}
	xml = virDomainGetXMLDesc(dom, VIR_DOMAIN_XML_INACTIVE | VIR_DOMAIN_XML_SECURE);
	if (!xml) {
		fprintf(stderr, "pbctl: %s: %s\n", c.name, pe_libvirt_error());
		goto out;
	}
	c.doc = xmlReadMemory(xml, (int)strlen(xml), "domain.xml", NULL,
			      XML_PARSE_NONET | XML_PARSE_NOBLANKS);
	c.root = c.doc ? xmlDocGetRootElement(c.doc) : NULL;
	if (!c.root) {
		fprintf(stderr, "pbctl: %s: libvirt's XML does not parse\n", c.name);
		goto out;
	}
	before = pe_dump(c.doc);
	r = enable ? pe_enable_xml(&c, meta, mailbox) : pe_disable_xml(&c);
	if (r == -ENOENT) {
		printf("%s: not enabled for panicbroker; nothing to change\n", c.name);
		rc = 0;
		goto out;
	}
	if (r < 0) {
		fprintf(stderr, "pbctl: %s: cannot edit its XML: %s\n", c.name, strerror(-r));
		goto out;
	}
	after = pe_dump(c.doc);
	if (!before || !after)
		goto out;
	if (dry) {
		rc = pe_diff(c.name, before, after) < 0 ? 1 : 0;
		goto out;
	}
	virDomainFree(dom);
	dom = virDomainDefineXML(conn, after);
	if (!dom) {
		fprintf(stderr, "pbctl: %s: libvirt refused the new definition: %s\n", c.name,
			pe_libvirt_error());
		goto out;
	}
	for (int i = 0; i < c.n_changes; i++)
		printf("%s: %s\n", c.name, c.changes[i]);
	active = virDomainIsActive(dom);
	if (active == 1)
		printf("%s: the domain runs: the devices apply at its next boot (shut it down and start it; a reboot from inside is not enough)\n",
		       c.name);
	else
		printf("%s: applies when the domain next starts\n", c.name);
	rc = 0;
out:
	if (c.doc)
		xmlFreeDoc(c.doc);
	if (dom)
		virDomainFree(dom);
	(void)virConnectClose(conn);
	return rc;
}
