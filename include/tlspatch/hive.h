/* tlspatch: a session on one hive file.
 *
 * tp_hive_open validates the file (size, header, checksum, dirty state;
 * a dirty hive is recovered from its logs in memory), locks it for
 * writing, and classifies it. Reading is lazy (reader.h): only the
 * records a lookup needs. tp_hive_apply writes the planned changes
 * atomically: temp file in the same directory, fsync, re-open and
 * verify, rename over the original, fsync the directory.
 */
#ifndef TLSPATCH_HIVE_H
#define TLSPATCH_HIVE_H

#include <stddef.h>
#include <stdbool.h>
#include <sys/stat.h>

#include "tlspatch/reader.h"
#include "tlspatch/regf.h"
#include "tlspatch/result.h"
#include "tlspatch/writer.h"

typedef struct tp_hive tp_hive;

/* What a lookup found. Damage is never taken for absence: a record or
 * list that cannot be read answers TP_DAMAGED (and marks the hive). */
typedef enum {
  TP_DAMAGED = -1,
  TP_ABSENT = 0,
  TP_FOUND = 1,
} tp_lookup;

enum {
  TP_HIVE_OPEN_WRITE = 1,   /* lock the file (runs on one hive take turns); whether it can
                             * be replaced is asked when there is something to write */
  TP_HIVE_OPEN_RECOVER = 2, /* a dirty hive: replay its logs in memory (res->recovery) */
};

/* Open, validate and classify `path`. On failure returns NULL and
 * records the reason in res (the file is not modified). */
tp_hive *tp_hive_open (const char *path, int flags, tp_result *res);
void tp_hive_close (tp_hive *hv);

/* Open a hive of `size` bytes read on demand through `read` (a hive
 * inside a disk image): only the records lookups need are fetched, in
 * 64 KiB chunks. Only a clean hive opens (a dirty one needs the whole
 * file and its logs: bring them over and use tp_hive_open). `label`
 * names it in reports. Nothing is locked; tp_hive_apply refuses: the
 * owner writes tp_hive_make_patch's result itself. */
tp_hive *tp_hive_open_reader (const char *label, size_t size, tp_regf_read_fn read,
                              void *ctx, tp_result *res);

/* The first read that failed in a hive read on demand, or NULL. */
const char *tp_hive_read_error (const tp_hive *hv);

/* res's changes as the writes to make (writer.h), remembered for
 * tp_hive_verify_patch. Returns 0 or -1 (recorded in res). */
int tp_hive_make_patch (tp_hive *hv, tp_result *res, tp_regf_patch *out);

/* Would writing res's changes be refused? Makes the patch apply would
 * make and, for a file, the pass over the whole hive that refuses one
 * releasing a record another key still uses, and writes nothing: 0 when
 * apply could write them, 1 with the reason in why, -1 when out of
 * memory (recorded in res). For check and dry runs, whose verdicts must
 * be the ones apply would reach. */
int tp_hive_refusal (tp_hive *hv, tp_result *res, char *why, size_t len);

/* Read the hive back through its read function (now `size` bytes) and
 * check every planned value reads back as planned. */
int tp_hive_verify_patch (tp_hive *hv, size_t size, tp_result *res);

tp_hive_kind tp_hive_kind_of (const tp_hive *hv);
const char *tp_hive_path (const tp_hive *hv);

/* Walk a path from the root ("\\A\\B"; "" is the root): TP_FOUND with
 * the key in *node and, when stored is given, its path as the hive
 * spells it (malloc'd); TP_ABSENT; TP_DAMAGED (a list or name on the
 * way cannot be read; the hive is marked damaged, and the failure
 * recorded in res when given). */
tp_lookup tp_hive_find_key (tp_hive *hv, const char *path, size_t *node, char **stored,
                            tp_result *res);

/* A key with everything below it (malloc'd; tp_key_tree_free), or NULL
 * (recorded in res: something in it cannot be read). */
tp_key_tree *tp_hive_read_tree (tp_hive *hv, size_t node, tp_result *res);

/* Children / values of a key as offsets (see tp_regf_children), and a
 * key's name (malloc'd UTF-8). */
size_t *tp_hive_children (tp_hive *hv, size_t node, size_t *n);
size_t *tp_hive_values (tp_hive *hv, size_t node, size_t *n);
char *tp_hive_key_name (tp_hive *hv, size_t node);

/* The names of the subkeys of key `path`, as stored, in the hive's
 * order: *names (malloc'd, each name too; tp_hive_names_free), none
 * when the key is absent. 0, or -1 when the key, its subkey list or a
 * name cannot be read (recorded in res). */
int tp_hive_subkey_names (tp_hive *hv, const char *path, char ***names, size_t *n,
                          tp_result *res);
void tp_hive_names_free (char **names, size_t n);

/* Read value `name` of `node` into v (v->present false when absent),
 * with its stored name and its place in the key's value list (1 =
 * first) when those are not NULL. Returns -1 on a read error (recorded
 * in res). */
int tp_hive_get_value (tp_hive *hv, size_t node, const char *name, tp_value *v,
                       char **stored_name, size_t *position, tp_result *res);

/* Read a REG_DWORD: TP_FOUND with type 4 and 4 bytes, TP_ABSENT when
 * absent or of another shape, TP_DAMAGED when its record is unreadable. */
tp_lookup tp_hive_get_dword (tp_hive *hv, size_t node, const char *name,
                       uint32_t *out);

/* Plan: make value `name` of key `key_path` equal to `want`. Adds a
 * change to res when it differs, with its position (tp_change): for a
 * deletion where the value is, for a new value `position` (0:
 * appended). Returns 0 (planned or already right) or -1 (error). */
int tp_hive_plan_value (tp_hive *hv, const char *key_path, const char *name,
                        const tp_value *want, size_t position, tp_result *res);

/* True when the hive was dirty and its logs were replayed in memory:
 * tp_hive_apply then writes it even without other changes. */
bool tp_hive_recovered (const tp_hive *hv);

/* True when a lookup met a damaged subkey or value list: what looked
 * absent may only have been unreadable, so nothing may be concluded. */
bool tp_hive_damaged (const tp_hive *hv);

/* True when another program changed the hive file while it was read:
 * truncated (a read past its new end met zeros, not SIGBUS), or its
 * size or modification time differ from when it was opened. */
bool tp_hive_changed (const tp_hive *hv);

/* An audit's verdict confirmed by hivex: every value tp_hive_plan_value
 * judged (present with its type and bytes, or absent) must read the
 * same through hivex (tp_referee_confirm). A hive file only: one read
 * on demand (in an image) is not looked at. 0, or -1 with the error in
 * res naming the key. */
int tp_hive_confirm (tp_hive *hv, tp_result *res);

/* Can the hive file be replaced (the file, its folder and the file
 * system writable)? 0, or -1 with the reason in res ("read-only"). */
int tp_hive_check_writable (tp_hive *hv, tp_result *res);

/* Carry out res's changes in memory, then commit them atomically.
 * `backup`: keep the original as PATH.tlspatch-bak (res->backup). */
int tp_hive_apply (tp_hive *hv, tp_result *res, bool backup);

#endif
