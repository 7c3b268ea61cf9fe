/* SPDX-License-Identifier: MIT */
/* Inside pbctl only: the commands that speak to the running daemon (pbctl_daemon.c). */
#ifndef PB_PBCTL_INTERNAL_H
#define PB_PBCTL_INTERNAL_H

#include <json-c/json.h>

/* @rec's string @key, or "-" (pbctl.c). */
const char *pbctl_str(json_object *rec, const char *key);

/* Each returns pbctl's exit status: 0 success, 1 failure, 2 usage error. */
int pbctl_status(const char *api, int argc, char **argv);
int pbctl_attach(const char *api, int argc, char **argv);
int pbctl_detach(const char *api, int argc, char **argv);
int pbctl_watch(const char *api, int argc, char **argv);
/* The daemon's bucket counts, else the spool's. */
int pbctl_buckets(const char *api, const char *spool_dir, int argc, char **argv);

#endif
