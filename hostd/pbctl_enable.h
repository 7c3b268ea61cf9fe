/* SPDX-License-Identifier: MIT */
/* pbctl enable / disable: a libvirt domain made ready for panicbroker, or no longer. */
#ifndef PB_PBCTL_ENABLE_H
#define PB_PBCTL_ENABLE_H

/* argv[0] is "enable" or "disable"; returns pbctl's exit status. */
int pbctl_libvirt(int argc, char **argv);

#endif
