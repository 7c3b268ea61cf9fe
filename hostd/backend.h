/* SPDX-License-Identifier: MIT */
/*
 * A VM backend: how the daemon reaches one VM. QMP on QEMU's monitor socket
 * (backend_qmp.c) is the first; libvirt's API is the next. The crash machine
 * never sees a backend: the VM runner (vm.c) turns backend events into
 * machine events and machine actions into backend operations.
 *
 * Contract:
 *  - backend_start() attaches and keeps the VM attached: after a lost
 *    connection the backend reattaches by itself, with back-off. Every
 *    (re)attach first sets the VM's panic action to "pause" (a guest that
 *    panics without kdump is held for the host instead of powered off),
 *    then reports BE_EV_ATTACHED with the VM's run state. A lost connection
 *    is reported as BE_EV_DETACHED, once, with a one-phrase reason.
 *  - The backend limits the rate of its peer's events itself (a flooding
 *    peer is dropped and reattached) and says connection trouble in the log
 *    once per change, not once per retry.
 *  - Operations are asynchronous. One runs at a time per VM: a second
 *    returns -EBUSY. An operation that returns 0 calls @done exactly once,
 *    later (never from inside the call), unless the backend is freed first;
 *    one that returns < 0 never calls it. A connection lost mid-operation
 *    fails it (-ECONNRESET), except poweroff, for which QEMU closing the
 *    connection is success.
 *  - Events the backend consumes itself are not delivered: the RESET that
 *    its own reset operation caused, the dump's completion.
 *  - reset: the guest boots again, running (a paused VM is resumed).
 *  - dump: writes the guest's memory into @fd (the backend may hand the
 *    descriptor to its peer) in @format; @progress may be called before
 *    @done. The caller owns @fd and the file.
 *  - Callbacks may call any operation but not backend_free().
 */
#ifndef PB_BACKEND_H
#define PB_BACKEND_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "config.h"

struct backend_ops;

/* Every backend's own struct begins with this (container_of to get it). */
struct backend {
	const struct backend_ops *ops;
};

enum be_run_state {
	BE_RUN_UNKNOWN,
	BE_RUN_RUNNING,
	BE_RUN_PAUSED,   /* paused for any reason but a panic */
	BE_RUN_PANICKED, /* held after a guest panic */
	BE_RUN_SHUTDOWN, /* powered off, the process still there */
};

enum be_event_type {
	BE_EV_ATTACHED,
	BE_EV_DETACHED,
	BE_EV_PANIC,    /* pvpanic: PANICKED or CRASH_LOADED */
	BE_EV_RESET,
	BE_EV_SHUTDOWN,
};

/* Who runs the VM: tells one QEMU process from the next. */
struct be_instance {
	pid_t pid;                /* 0: unknown */
	uint64_t start_ticks;     /* /proc/PID/stat starttime */
};

struct be_event {
	enum be_event_type type;
	/* BE_EV_PANIC */
	const char *name;         /* as the peer names it: GUEST_PANICKED... */
	bool crash_loaded;        /* a crash kernel is loaded (CRASH_LOADED) */
	const char *action;       /* the peer's panic action ("pause"...), or "unknown" */
	bool has_timestamp;
	uint64_t timestamp_usec;  /* the peer's own time of the event */
	json_object *data;        /* borrowed; may be NULL */
	/* BE_EV_RESET */
	bool guest;               /* the guest asked for it */
	/* BE_EV_ATTACHED */
	enum be_run_state run_state;
	const char *status;       /* the peer's word for it ("guest-panicked") */
	struct be_instance instance;
	/* BE_EV_DETACHED */
	const char *reason;
};

struct backend_events {
	void (*event)(void *ud, const struct be_event *ev);
};

typedef void (*be_done_fn)(void *ud, int error, const char *reason);
typedef void (*be_size_fn)(void *ud, int error, const char *reason,
			   uint64_t ram_bytes);
typedef void (*be_progress_fn)(void *ud, uint64_t done_bytes,
			       uint64_t total_bytes);

struct backend_ops {
	const char *name; /* "qmp", "libvirt": the API's "backend" */
	/* Errors: negative errno, with a one-phrase reason in @err. */
	int (*create)(sd_event *e, const struct vm_config *cfg,
		      const struct backend_events *events, void *ud,
		      struct backend **ret, char *err, size_t errlen);
	void (*free)(struct backend *b);
	void (*start)(struct backend *b);
	/* "attached", "connecting", "detached": the API's attach_state. */
	const char *(*attach_state)(const struct backend *b);
	int (*pause)(struct backend *b, be_done_fn done, void *ud);
	int (*resume)(struct backend *b, be_done_fn done, void *ud);
	int (*reset)(struct backend *b, be_done_fn done, void *ud);
	int (*poweroff)(struct backend *b, be_done_fn done, void *ud);
	/* The guest's RAM, for the dump's space check. */
	int (*memory_size)(struct backend *b, be_size_fn done, void *ud);
	int (*dump)(struct backend *b, int fd, const char *format,
		    be_progress_fn progress, be_done_fn done, void *ud);
	/* Drops the operation in flight, if any, without calling its done
	 * (its caller is going away). A dump may go on in the peer; @fd and
	 * the file stay the caller's to clean up. */
	void (*cancel)(struct backend *b);
};

extern const struct backend_ops backend_qmp_ops;

/* The backend whose name is @name ("qmp"), or NULL. */
const struct backend_ops *backend_find(const char *name);


#endif
