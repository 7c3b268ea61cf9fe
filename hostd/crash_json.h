/* SPDX-License-Identifier: MIT */
/*
 * Inside the record module only (crash*.c): the JSON helpers its files
 * share. Nothing outside crash*.c includes this.
 */
#ifndef PB_CRASH_JSON_H
#define PB_CRASH_JSON_H

#include <json-c/json.h>
#include <stdint.h>

#include "crash.h"

json_object *crash_json_time(uint64_t usec);
json_object *crash_json_hex64(uint64_t v);
/* "0x..." as crash_json_hex64() writes it; 0 when absent or anything else. */
uint64_t crash_json_get_hex64(json_object *obj, const char *key);
/* An RFC 3339 time as crash_json_time() writes it; 0 when absent or bad. */
uint64_t crash_json_get_time(json_object *obj, const char *key);
const char *crash_json_get_string(json_object *obj, const char *key);
/* The object under @key, or NULL. */
json_object *crash_json_sub(json_object *parent, const char *key);
/* The object under @key, created if missing. */
json_object *crash_json_obj(json_object *parent, const char *key);
/* The array under @key, created if missing. */
json_object *crash_json_array(json_object *parent, const char *key);
/* @key + 1 (an int64 counter); returns the old value. */
int64_t crash_json_count(json_object *parent, const char *key);
/* updated_at := now */
void crash_touch(struct crash *c);

#endif
