/* SPDX-License-Identifier: MIT */
/*
 * The spool: where crash records live.
 *
 *   SPOOL/              0750, created by the daemon
 *   SPOOL/.lock         flock()ed by the one daemon that owns the spool
 *   SPOOL/crashes/<id>/record.json   one crash, replaced atomically
 *   SPOOL/crashes/.new-<id>/         a crash being published (hidden)
 *
 * Every record write is: write a temporary file in the same directory,
 * fsync it, rename it over the old one, fsync the directory. A reader sees
 * the old record or the new one, never a torn one, whenever the daemon,
 * QEMU or the host dies. The library never logs.
 */
#ifndef PB_SPOOL_H
#define PB_SPOOL_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define SPOOL_RECORD_NAME "record.json"
#define SPOOL_RECORD_MAX (1024 * 1024)
#define SPOOL_ID_MAX 128
#define SPOOL_MAX_CRASHES 100000

struct spool;

/* @owner: create the directories and take the daemon lock. */
int spool_open(const char *path, bool owner, struct spool **ret, char *err,
	       size_t errlen);
void spool_close(struct spool *s);
const char *spool_path(const struct spool *s);
/* The spool directory itself (for files beside crashes/, like the index). */
int spool_dirfd(const struct spool *s);

/*
 * Publishes a new crash directory crashes/<id>/ (mode 0750) holding @record:
 * the directory is assembled under a hidden name and renamed into place, so
 * a crash directory never exists without its complete record. -EEXIST when
 * <id> is taken. Returns the new directory's fd in @ret_dirfd.
 */
int spool_publish_crash(struct spool *s, const char *id, json_object *record,
			int *ret_dirfd);
int spool_open_crash(struct spool *s, const char *id, int *ret_dirfd);

int spool_write_atomic(int dirfd, const char *name, const void *data,
		       size_t len, mode_t mode);
int spool_write_record(int crash_dirfd, json_object *record);
/* Reads and parses crashes/<id>/record.json (at most SPOOL_RECORD_MAX). */
int spool_read_record(struct spool *s, const char *id, json_object **ret,
		      char *err, size_t errlen);

/* Ids of all crash directories, sorted; free with spool_free_ids(). The
 * owner also removes the stages (.new-<id>) a dead daemon left behind. */
int spool_list(struct spool *s, char ***ret_ids, size_t *ret_n);
void spool_free_ids(char **ids, size_t n);

bool spool_id_is_valid(const char *id);

#endif
