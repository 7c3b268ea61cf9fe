/* SPDX-License-Identifier: MIT */
/*
 * libvirt's event loop, run on the daemon's sd-event loop: watches and
 * timeouts that libvirt asks for become sd-event sources, so libvirt's
 * callbacks (connection I/O, keepalive, domain events) run on the one loop
 * with everything else and need no locking.
 *
 * Contract:
 *  - lv_event_register() once per process, before the first virConnectOpen;
 *    libvirt keeps the implementation for the process's lifetime.
 *  - The daemon calls libvirt from its loop's thread only (libvirt's client
 *    does not start threads of its own), so these callbacks, which touch
 *    sd-event, are never entered from another thread.
 *  - A child forked from the daemon must not use the parent's event loop:
 *    it sees every add fail (sd-event refuses a forked child), and libvirt
 *    then runs its connections without events or keepalive, as it does
 *    for a program with no event loop.
 */
#ifndef PB_LIBVIRT_EVENT_H
#define PB_LIBVIRT_EVENT_H

#include <systemd/sd-event.h>

int lv_event_register(sd_event *e);

#endif
