/* tlspatch: write a hive with keys and values changed, without rewriting it.
 *
 * hivex_commit rebuilds the whole file from a full in-memory copy and
 * rewrites every value of a key it touches. For a handful of DWORDs
 * that costs a copy of the hive in memory and risks the key's other
 * values (hivex-notes.md). Instead: the hive's bytes are copied to the
 * output in the kernel (copy_file_range), the changed key and value
 * records are edited in place, new records go into ONE new hive bin
 * appended at the end, and the base block gets new sequence numbers and
 * checksum. Every other byte stays as it was.
 */
#ifndef TLSPATCH_WRITER_H
#define TLSPATCH_WRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tlspatch/reader.h"
#include "tlspatch/result.h"

/* One change of the hive, addressed by path. Edits apply in order: a
 * SET_VALUE may target a key created by an earlier CREATE_KEY of the
 * same list. Keys and values are found as Windows finds them: names
 * compared case-insensitively (uppercased UTF-16 code units: ASCII,
 * Latin-1, Greek and Cyrillic letters; other characters compared
 * exactly). A name found twice (a hostile hive: in a value list, in a
 * subkey list that gains or loses keys, or next to itself in a list on
 * a path) is refused as damage: an edit could reach one and miss the
 * other.
 *
 * What is written, as Windows writes it (format spec):
 * - a created key: an nk record (name Latin-1 "compressed" when every
 *   character is below 256, else UTF-16LE), no class, the parent's
 *   security (sk) with its reference count raised; inserted in the
 *   parent's subkey list in Windows' order (uppercased name): lh from
 *   minor 5, lf for minor 3 and 4, li below; an existing list keeps its
 *   type, and its entries keep their order and hints as found (new ones
 *   go in by name); past TP_REGF_LEAF_LIMIT entries (or when it was one)
 *   an ri of leaves of at most that many, evenly filled;
 * - a deleted key: unlinked from its parent, then every cell of its
 *   subtree released (keys, subkey lists and ri leaves, value lists,
 *   values, data, big-data records, segment lists and segments, class
 *   names). Security records are never freed: each deleted key lowers
 *   its sk's reference count, and an sk whose count reaches 0 stays
 *   linked in the hive's sk list, allocated, with count 0. Unlinking it
 *   changes two other records (the neighbours' flink and blink), which
 *   no single sector write can switch together: a stop in between
 *   would leave a broken sk list, which Windows checks at load. One
 *   unreferenced sk cell is leaked space, as Windows tolerates. A key
 *   met twice in the subtree (a loop) is refused; other cells a hostile
 *   hive might share between the subtree and keys outside it (Windows
 *   shares only sk records) are not looked for;
 * - values of any type, 0 to 1 MiB: up to 4 bytes inline (0 bytes too:
 *   Windows also reads "unset" size 0 / offset 0xFFFFFFFF, but hivex
 *   cannot); up to 16344 bytes in one cell; more
 *   as big data (a db record, a segment list, segments of 16344 bytes)
 *   from minor 4 on, one cell before. Replacing or deleting a value
 *   frees its old data (cell, or db, list and segments); inline and
 *   unset data free nothing. A value's other fields (name, flags) stay.
 *   A new value is appended to its key's value list, as Windows does,
 *   or placed where `position` says: the key's other values keep their
 *   order, and the placed values are inserted in increasing position
 *   (whatever the order of the edits), so that values deleted from a
 *   list go back exactly where they were;
 * - the keys' hints (max subkey name, max value name, max value data)
 *   grow to cover what was written; they never shrink. A key whose
 *   subkeys or values change gets a new last-written time. */
typedef enum {
  TP_EDIT_SET_VALUE,     /* create or replace value `name` of `key` with *value */
  TP_EDIT_DELETE_VALUE,  /* delete value `name` of `key` (it exists) */
  TP_EDIT_CREATE_KEY,    /* create key `key`: its parent exists, or is created by an earlier edit */
  TP_EDIT_DELETE_KEY,    /* delete key `key` (it exists, not the root) with its whole subtree */
} tp_regf_op;

typedef struct {
  tp_regf_op op;
  const char *key;        /* path from the hive root, "\A\B" (UTF-8; "" or "\" is the root) */
  const char *name;       /* value name, UTF-8; "" is the key's default value */
  const tp_value *value;  /* TP_EDIT_SET_VALUE only */
  unsigned position;      /* TP_EDIT_SET_VALUE of a new value: its place in the key's
                           * value list, 1 = first (past the end: last); 0 = appended */
} tp_regf_edit;

/* Entries per subkey leaf: a longer list becomes an ri of leaves
 * (Windows splits leaves around 1012 entries). */
#define TP_REGF_LEAF_LIMIT 1012

/* The largest value data written (1 MiB). */
#define TP_REGF_MAX_DATA (1024 * 1024)

/* Writing a patch in place, record by record, is safe against a stop at
 * any point when the writes of each phase reach the disk before those of
 * the next: after GROW the new bin lies beyond the hive's end (ignored:
 * Windows and hivex read bins up to the base block's hive bins size),
 * key hints and security reference counts only grew; HEADER takes the
 * bin in (allocated cells that nothing references yet); each LINK change
 * switches one key or value to its new records in one write within a
 * 512-byte sector; RELEASE frees what nothing references any more and
 * lowers the reference counts. Every state in between is a valid hive
 * whose keys and values read old or new. A stop can leave allocated
 * cells that nothing references (the new bin's, before LINK; the old
 * ones, before RELEASE): leaked space, as Windows and hivex tolerate;
 * a second run completes the values. */
typedef enum {
  TP_PHASE_GROW,            /* the new bin, larger hints, times, sk counts raised */
  TP_PHASE_HEADER,          /* the base block: sequence numbers, hive bins size */
  TP_PHASE_LINK,            /* counts, list offsets, value fields */
  TP_PHASE_RELEASE,         /* unreferenced cells marked free, sk counts lowered */
  TP_PHASE_COUNT
} tp_regf_phase;

/* One write into existing records: all edits of one phase within one
 * 4 KiB page, with the bytes between them as they are. */
typedef struct {
  size_t off;
  size_t len;
  unsigned char *bytes;
  unsigned char *old;           /* what they replace: a failed write is rolled back */
  tp_regf_phase phase;
} tp_regf_poke;

typedef struct {
  tp_regf_poke *pokes;          /* in phase order, one per page and phase */
  size_t n_pokes;
  unsigned char *bin;           /* the appended hive bin, or NULL */
  size_t bin_off, bin_size;
  unsigned char *bin_old;       /* the file's bytes the bin replaces (room past the last bin) */
  size_t bin_old_len;
  unsigned char base_block[4096];   /* only its first 512 bytes change */
  unsigned char old_base_block[4096];
  bool tearproof;               /* each record's LINK edits within one sector */
  size_t *freed;                /* the cells RELEASE frees: file offsets, sorted */
  size_t n_freed;
} tp_regf_patch;

/* The writes that carry out `edits` on the hive read through r (its
 * bytes are loaded on demand). Returns 0, or -1 with a reason in why. */
int tp_regf_make_patch (const tp_regf *r, const tp_regf_edit *edits, size_t n,
                        tp_regf_patch *out, char *why, size_t whylen);
void tp_regf_patch_free (tp_regf_patch *p);

/* True when every record's LINK change lies in one 512-byte sector and
 * every write in one 4 KiB page, so that no stop can tear a change. */
bool tp_regf_patch_tearproof (const tp_regf_patch *p);

/* A hive file written in place, through functions (a file in a disk
 * image, or a local one in the tests). */
typedef struct {
  int (*write) (void *ctx, const void *buf, size_t len, uint64_t off);   /* 0 or -1 */
  int (*truncate) (void *ctx, uint64_t size);
  void *ctx;
  uint64_t size;                /* the file's size before */
} tp_regf_target;

/* Write patches[i] (NULL: none) into targets[i], phase by phase across
 * all of them, calling sync(sync_ctx) between phases so that no write
 * of a phase reaches the disk before the previous phase's (the caller
 * syncs after the last one, e.g. with the rest of its work). On a failed
 * write or sync, what was written is rolled back phase by phase in
 * reverse: -1 when the files are back to their old bytes and sizes, -2
 * when the rollback failed too (it stops there: the files are valid
 * hives, but not the originals). */
int tp_regf_write_in_place (const tp_regf_patch *const *patches, const tp_regf_target *targets,
                            size_t n, int (*sync) (void *), void *sync_ctx);

/* Undo a completed tp_regf_write_in_place (its verification failed):
 * 0, or -1 when a write or sync failed (stopped there, as above). */
int tp_regf_roll_back_in_place (const tp_regf_patch *const *patches,
                                const tp_regf_target *targets, size_t n,
                                int (*sync) (void *), void *sync_ctx);

/* Is every cell the patch releases referenced by one record only, and
 * the hive's whole tree readable (tp_regf_count_references)? A hostile
 * hive can share a value list or data cell between keys: freeing it
 * would leave the other key pointing at free space. 0, or -1 with the
 * reason (the hive is damaged). It reads every key of the hive, so a
 * hive read on demand (in a disk image, through the appliance) is not
 * looked at: 0. Reads r only, so it may run beside the writes. */
int tp_regf_patch_unshared (const tp_regf *r, const tp_regf_patch *p, char *why, size_t whylen);

/* Write the patched hive to `out_fd`, an empty file: src's `size`
 * bytes (copied in the kernel), then the patch. 0, or -1 with the
 * reason. */
int tp_regf_write_patch (const tp_regf_patch *p, int out_fd, int src_fd, size_t size, char *why,
                         size_t whylen);

/* Write src (the hive's `size` bytes, readable as `buf` and from
 * `src_fd`) with the edits applied to `out_fd`, an empty file: the
 * patch made, checked (tp_regf_patch_unshared) and written. Returns 0,
 * or -1 with a one-line reason in why (nothing is promised about
 * out_fd then). */
int tp_regf_write_edits (int out_fd, int src_fd, const unsigned char *buf, size_t size,
                         const tp_regf_edit *edits, size_t n, char *why, size_t whylen);

/* Does a later edit of the list undo what edits[i] did (a value set
 * again, its key deleted, a deleted key created again)? Then edits[i]
 * is not checked. */
bool tp_regf_edit_superseded (const tp_regf_edit *edits, size_t n, size_t i);

/* Read the written file back through fd: a clean base block, and the
 * edits' outcome, found by path: created keys exist, deleted keys and
 * values are gone, each set value reads back with its type and bytes,
 * and the keys' hints cover what was written. An edit undone by a
 * later one of the list (a value set, then its key deleted) is not
 * checked. */
int tp_regf_verify_edits (int fd, const tp_regf_edit *edits, size_t n, char *why, size_t whylen);

/* The same, reading the written hive (`size` bytes) through `read`. */
int tp_regf_verify_edits_from (tp_regf_read_fn read, void *ctx, size_t size,
                               const tp_regf_edit *edits, size_t n, char *why, size_t whylen);

#endif
