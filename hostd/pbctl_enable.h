/* SPDX-License-Identifier: MIT */
/* pbctl enable / disable: a libvirt domain made ready for panicbroker, or no longer. */
#ifndef PB_PBCTL_ENABLE_H
#define PB_PBCTL_ENABLE_H

/* argv[0] is "enable" or "disable"; returns pbctl's exit status. */
int pbctl_libvirt(int argc, char **argv);
/* pbctl libvirt-hook DOMAIN OPERATION ...: libvirt's qemu hook (pbctl_hook.c); always 0. */
int pbctl_libvirt_hook(int argc, char **argv);

#endif
