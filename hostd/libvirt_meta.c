// SPDX-License-Identifier: MIT
/*
 * The metadata element <-> a vm_config. The attributes are turned into a
 * --vm spec and parsed by config.c, so a domain's policy means exactly
 * what the same keys mean on the command line.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "common.h"
#include "libvirt_meta.h"
#include "util.h"

#define LV_SPEC_MAX 8192

/* Appends ",key=value" to @spec; values may not carry the spec's separator. */
static int lv_spec_add(char *spec, size_t size, const char *key, const char *value,
		       char *err, size_t errlen)
{
	size_t n = strlen(spec);
	int w;

	if (strcmp(key, "qmp") == 0)
		return err_set(err, errlen, -EINVAL,
			       "qmp is not a key of a libvirt domain (libvirt owns its monitor)");
	if (strchr(key, ',') || strchr(key, '=') || strchr(value, ','))
		return err_set(err, errlen, -EINVAL, "%s='%s': no commas or '=' in keys, no commas in values",
			       key, value);
	w = snprintf(spec + n, size - n, ",%s=%s", key, value);
	if (w < 0 || (size_t)w >= size - n)
		return err_set(err, errlen, -E2BIG, "metadata too long");
	return 0;
}

static int lv_spec_start(const char *name, char *spec, size_t size, char *err, size_t errlen)
{
	if (!name_is_valid(name))
		return err_set(err, errlen, -EINVAL,
			       "domain name '%s' is not 1-%d characters of A-Z a-z 0-9 . _ - (not starting with . or -)",
			       name, VM_NAME_MAX);
	snprintf(spec, size, "%s,qmp=%s", name, LV_QMP_MARK);
	return 0;
}

static int lv_meta_defaults(const char *name, struct vm_config *ret)
{
	char spec[LV_SPEC_MAX];
	int r = lv_spec_start(name, spec, sizeof(spec), NULL, 0);

	return r < 0 ? r : cfg_parse_vm_spec(spec, ret, NULL, 0);
}

int lv_meta_parse(const char *name, const char *xml, struct vm_config *ret,
		  char *err, size_t errlen)
{
	char spec[LV_SPEC_MAX], reason[CFG_ERR_MAX] = "";
	struct vm_config vc;
	xmlDocPtr doc;
	xmlNodePtr root;
	int r;

	r = lv_meta_defaults(name, ret);
	if (r < 0)
		return err_set(err, errlen, r, "domain name '%s' cannot be a VM name", name);
	if (!xml)
		return 0;
	if (strlen(xml) > LV_SPEC_MAX)
		return err_set(err, errlen, -EINVAL, "metadata is longer than %d bytes", LV_SPEC_MAX);
	doc = xmlReadMemory(xml, (int)strlen(xml), "metadata.xml", NULL,
			    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	if (!doc)
		return err_set(err, errlen, -EINVAL, "metadata is not well-formed XML");
	root = xmlDocGetRootElement(doc);
	if (!root || strcmp((const char *)root->name, LV_META_ELEMENT) != 0) {
		xmlFreeDoc(doc);
		return err_set(err, errlen, -EINVAL, "metadata element is not <%s>", LV_META_ELEMENT);
	}
	r = lv_spec_start(name, spec, sizeof(spec), reason, sizeof(reason));
	for (xmlAttrPtr a = root->properties; a && r >= 0; a = a->next) {
		xmlChar *v = xmlNodeListGetString(doc, a->children, 1);

		r = lv_spec_add(spec, sizeof(spec), (const char *)a->name, v ? (const char *)v : "",
				reason, sizeof(reason));
		xmlFree(v);
	}
	xmlFreeDoc(doc);
	if (r >= 0)
		r = cfg_parse_vm_spec(spec, &vc, reason, sizeof(reason));
	if (r < 0)
		return err_set(err, errlen, r, "%s", reason[0] ? reason : strerror(-r));
	*ret = vc;
	return 0;
}

int lv_meta_build(const char *name, char *const *kv, size_t n, char **ret,
		  char *err, size_t errlen)
{
	char spec[LV_SPEC_MAX], reason[CFG_ERR_MAX] = "";
	struct vm_config vc;
	xmlDocPtr doc = NULL;
	xmlNodePtr root;
	xmlChar *out = NULL;
	int r, len = 0;

	r = lv_spec_start(name, spec, sizeof(spec), err, errlen);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++) {
		_cleanup_free_ char *k = strdup(kv[i]);
		char *eq = k ? strchr(k, '=') : NULL;

		if (!k)
			return -ENOMEM;
		if (!eq)
			return err_set(err, errlen, -EINVAL, "'%s' is not KEY=VALUE", kv[i]);
		*eq = '\0';
		r = lv_spec_add(spec, sizeof(spec), k, eq + 1, err, errlen);
		if (r < 0)
			return r;
	}
	r = cfg_parse_vm_spec(spec, &vc, reason, sizeof(reason));
	if (r < 0)
		return err_set(err, errlen, r, "%s", reason);

	doc = xmlNewDoc(BAD_CAST "1.0");
	root = doc ? xmlNewNode(NULL, BAD_CAST LV_META_ELEMENT) : NULL;
	if (!root) {
		xmlFreeDoc(doc);
		return -ENOMEM;
	}
	xmlDocSetRootElement(doc, root);
	for (size_t i = 0; i < n; i++) {
		_cleanup_free_ char *k = strdup(kv[i]);
		char *eq = k ? strchr(k, '=') : NULL;

		if (eq)
			*eq = '\0';
		if (!eq || !xmlSetProp(root, BAD_CAST k, BAD_CAST(eq + 1))) {
			xmlFreeDoc(doc);
			return -ENOMEM;
		}
	}
	xmlDocDumpFormatMemory(doc, &out, &len, 0);
	xmlFreeDoc(doc);
	if (!out)
		return -ENOMEM;
	/* Without the XML declaration: libvirt wants the element alone. */
	{
		const char *s = (const char *)out, *lt = strstr(s, "<" LV_META_ELEMENT);

		*ret = strdup(lt ? lt : s);
	}
	xmlFree(out);
	return *ret ? 0 : -ENOMEM;
}
