/* tlspatch: recovery of dirty hives from their transaction logs.
 *
 * Windows may leave a primary hive file stale for up to an hour and keep
 * the newer data in <hive>.LOG1/.LOG2 (new format, Windows 8.1+: "HvLE"
 * log entries) or <hive>.LOG/.LOG1 (old format: a "DIRT" dirty vector and
 * dirty pages). hivex ignores the logs, so a dirty hive must be replayed
 * before it is read or edited (spec: "Format of transaction log files",
 * "Dirty state of a hive", "Multiple transaction log files").
 *
 * Which log entries apply (new format)
 *   A log is used when its base block copy is valid (signature, checksum,
 *   file type 6, both sequence numbers equal) and belongs to this hive
 *   (same last written timestamp as the primary's base block, or as its
 *   first hive bin when the base block is damaged). Logs go in the order
 *   of their base blocks' sequence numbers, whatever their names. The
 *   first entry replayed must carry its log's sequence number and not be
 *   below the primary's secondary sequence number (the last completed
 *   write); it may be above the primary's own number (Windows 10 leaves
 *   logs that run ahead of a primary it has not written for a while).
 *   Every later entry, in the same log or at the start of the next one,
 *   must be N + 1. Replay stops at the first entry with a bad Hash-1 or
 *   Hash-2, a bad hive bins data size or page references outside it, or
 *   a break in the numbering; the entries before it stay applied. A
 *   dirty hive bin left invalid is replaced by an empty bin, as Windows
 *   does.
 *
 * Which log applies (old format)
 *   One log only, never both, chosen as Windows 8 and later do. A log is
 *   valid when its base block copy is (file type 1 or 2, checksum, equal
 *   sequence numbers), its DIRT vector and all its dirty pages are there,
 *   and it is not older than the primary's last completed write (its
 *   sequence number not below the primary's secondary one). .LOG1 (or the
 *   lone .LOG) is used when it is valid and carries the primary's last
 *   written timestamp (its first bin's when the base block is damaged);
 *   otherwise .LOG2 when it is valid and newer than .LOG1 by their
 *   timestamps (any valid .LOG2 when .LOG1 is not): the cumulative log
 *   Windows writes after a failed write. Failing both, a damaged primary,
 *   whose timestamp cannot be trusted (Windows 7 leaves the first bin's
 *   copy older than the log's), takes a valid .LOG1 all the same. Dirty
 *   pages are applied hive bin by hive bin; replay stops at the first
 *   dirty bin whose header is invalid (signature, offset, size), as the
 *   spec says.
 *
 * A damaged base block (bad checksum) is rebuilt from the log's copy
 * (file type set back to 0); in the new format only the log holding the
 * latest entries is then used.
 *
 * Sequence numbers of the recovered image
 *   Both are set to one more than the highest sequence number found in
 *   the primary's base block, in the base blocks of the hive's logs (an
 *   old-format log only when it is the one replayed or carries the
 *   primary's timestamp), and in every intact log entry header read
 *   (applied or not; a log is read as far as its chain of entries goes,
 *   and entries left beyond it are older ones). Windows does the
 *   same in effect: after replaying entries up to N it writes the
 *   recovered hive as N + 1 (its Windows 10 sample: entries 3..5 give
 *   6/6). Being above every entry matters for the logs left behind (see
 *   below). An image that would need 0xFFFFFFFF + 1 is refused.
 *
 * What to do with the stale log files
 *   Leave the .LOG, .LOG1 and .LOG2 files exactly as they are: do not
 *   delete, truncate or rewrite them. Once the recovered hive is written
 *   over the primary they are harmless. Windows replays logs only into a
 *   dirty primary, and the recovered one is clean. Its sequence numbers
 *   are above those of every entry in the logs, and hivex's commit only
 *   raises them further. So if the hive becomes dirty again later,
 *   Windows will want entries numbered from the new sequence number on,
 *   and no old entry can be the first one replayed or continue a chain.
 *   Old-format logs carry the last written timestamp of the state they
 *   belong to, and Windows writes a fresh log before it dirties the
 *   primary again. Windows overwrites the logs itself the next time it
 *   writes the hive. Keeping them also keeps evidence: with --backup,
 *   HIVE.tlspatch-bak and the untouched logs are still the consistent
 *   dirty pair Windows wrote, which Windows or another tool can recover
 *   again.
 */
#ifndef TLSPATCH_RECOVER_H
#define TLSPATCH_RECOVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
  TP_LOG_NONE,          /* nothing was replayed */
  TP_LOG_OLD,           /* DIRT dirty vector and dirty pages */
  TP_LOG_NEW,           /* HvLE log entries */
} tp_log_format;

typedef struct tp_recovery_info {
  bool dirty;                 /* the primary needed recovery */
  bool logs_missing;          /* ... and no log file was beside it (why says which were looked for) */
  tp_log_format format;
  char *logs_used[2];         /* the logs replayed, in replay order (NULL when unused):
                                 paths for tp_recover_hive, "log1"/"log2" for buffers */
  size_t n_logs_used;
  uint32_t entries;           /* new format: log entries applied */
  uint32_t pages;             /* dirty pages written into the image (old format: 512-byte
                                 pages; new format: page references) */
  uint32_t seq_before_primary, seq_before_secondary;
  uint32_t seq_after;         /* both sequence numbers of the recovered image */
  bool base_block_from_log;   /* the primary's base block was damaged and taken from a log */
  uint32_t bins_replaced;     /* new format: invalid dirty hive bins replaced by empty ones */
  char *stopped;              /* replay ended before the end of a log: why (e.g. a torn
                                 last entry, the normal trace of a crash); NULL otherwise */
} tp_recovery_info;

/* Find the transaction logs of `primary_path` beside it (names matched
 * case-insensitively: .LOG1 and .LOG2 first; .LOG when they are absent
 * or offer no recovery), and if the primary is dirty, replay them into a
 * copy of the primary's bytes. On success returns 0 and *out, *out_len
 * hold a complete, CLEAN hive image (sequence numbers equal, header
 * checksum correct, every hive bin valid up to the hive bins data size,
 * file at least that long) that the caller owns (free()). A clean
 * primary: returns 0 with info->dirty false and *out NULL (nothing to
 * do). Logs that offer no valid recovery (bad hashes from the first
 * entry, sequence gaps so that nothing applies, logs of another hive,
 * truncated logs, no logs at all for a dirty hive): return -1 with a
 * one-line reason in why. Never modifies any file.
 * `info` is always initialised: free it with tp_recovery_info_free
 * whatever the result. */
int tp_recover_hive (const char *primary_path, unsigned char **out, size_t *out_len,
                     tp_recovery_info *info, char *why, size_t whylen);

/* The same, on the primary's bytes already read by the caller (from the
 * descriptor it validated and locked); the logs are found beside
 * primary_path. */
int tp_recover_hive_bytes (const char *primary_path, const unsigned char *primary,
                           size_t primary_len, unsigned char **out, size_t *out_len,
                           tp_recovery_info *info, char *why, size_t whylen);

/* Same on in-memory buffers (for tests and the fuzzer): primary and up
 * to two logs (NULL or length 0 when absent): log1 is the .LOG1 (or the
 * lone .LOG) file, log2 the .LOG2. In the new format which log is
 * replayed first depends on the logs' contents, never on the argument
 * order; in the old format .LOG1 comes first, as it does for Windows. */
int tp_recover_buffers (const unsigned char *primary, size_t primary_len,
                        const unsigned char *log1, size_t log1_len,
                        const unsigned char *log2, size_t log2_len,
                        unsigned char **out, size_t *out_len,
                        tp_recovery_info *info, char *why, size_t whylen);

void tp_recovery_info_free (tp_recovery_info *info);

/* "none", "old", "new". */
const char *tp_log_format_name (tp_log_format format);

#endif
