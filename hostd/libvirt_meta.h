/* SPDX-License-Identifier: MIT */
/*
 * panicbroker's element in a libvirt domain's <metadata>: whether the
 * daemon supervises the domain, and with which policy.
 *
 *   <metadata>
 *     <panicbroker:panicbroker xmlns:panicbroker="https://panicbroker.org/xmlns/libvirt/1"
 *         final_action="restart" snapshot="on-kdump-failure"
 *         mailbox="/dev/shm/panicbroker-NAME"/>
 *   </metadata>
 *
 * Its attributes are the keys of a --vm spec (panicbrokerd(8)) but qmp=:
 * final_action, kdump_timeout, snapshot, snapshot_format, mailbox,
 * kdump_session_timeout, kdump_progress_timeout. An empty element is
 * supervision with the daemon's defaults.
 * Pure functions over XML text (libxml2); no I/O, no logging.
 */
#ifndef PB_LIBVIRT_META_H
#define PB_LIBVIRT_META_H

#include <stddef.h>

#include "config.h"

#define LV_META_URI "https://panicbroker.org/xmlns/libvirt/1"
#define LV_META_PREFIX "panicbroker"
#define LV_META_ELEMENT "panicbroker"
/* The qmp_path of a libvirt domain's vm_config: not a socket, a marker. */
#define LV_QMP_MARK "libvirt"

/*
 * The VM configuration of domain @name from its metadata element @xml (as
 * virDomainGetMetadata returns it), or the defaults when @xml is NULL.
 * -EINVAL with a reason in @err for malformed metadata; @ret then holds
 * the defaults, usable as they are.
 */
int lv_meta_parse(const char *name, const char *xml, struct vm_config *ret,
		  char *err, size_t errlen);

/*
 * The metadata element for @n key=value pairs (each checked as lv_meta_parse
 * would, for domain @name); a new string in @ret.
 */
int lv_meta_build(const char *name, char *const *kv, size_t n, char **ret,
		  char *err, size_t errlen);

#endif
