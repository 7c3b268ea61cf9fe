// SPDX-License-Identifier: MIT
#include <errno.h>

#include "common.h"
#include "observe.h"
#include "util.h"

static struct {
	obs_fn fn;
	void *ud;
} obs_watchers[OBS_MAX_WATCHERS];
static unsigned int obs_n;

int obs_subscribe(obs_fn fn, void *ud)
{
	if (obs_n >= OBS_MAX_WATCHERS)
		return -E2BIG;
	obs_watchers[obs_n].fn = fn;
	obs_watchers[obs_n].ud = ud;
	obs_n++;
	return 0;
}

void obs_emit(const struct obs_event *ev)
{
	struct obs_event e = *ev;

	if (!e.at_usec)
		e.at_usec = ts_now_realtime_usec();
	for (unsigned int i = 0; i < obs_n; i++)
		obs_watchers[i].fn(obs_watchers[i].ud, &e);
}

const char *obs_type_name(enum obs_type t)
{
	static const char *const names[OBS_TYPE_MAX] = {
		[OBS_CRASH_OPENED] = "crash-opened",
		[OBS_CRASH_STATE] = "crash-state",
		[OBS_CRASH_CLOSED] = "crash-closed",
		[OBS_KDUMP_OUTCOME] = "kdump-outcome",
		[OBS_SNAPSHOT_END] = "snapshot-end",
		[OBS_UNLOAD] = "unload",
		[OBS_MALFORMED] = "malformed",
		[OBS_RECORD_WRITE] = "record-write",
		[OBS_VM_ADDED] = "vm-added",
		[OBS_VM_REMOVED] = "vm-removed",
		[OBS_VM_ATTACH] = "vm-attach",
	};

	return t < OBS_TYPE_MAX && names[t] ? names[t] : "?";
}
