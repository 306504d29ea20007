/* tlspatch: a read-only mapping of a file that survives the file
 * shrinking under it.
 *
 * A hive is read through mmap (a check touches a few pages of 80 MB).
 * If another program truncates the file meanwhile, touching a page past
 * its new end raises SIGBUS, which kills the process. Pages of these
 * mappings that fault so are replaced by zero pages instead (a SIGBUS
 * handler, installed once, that leaves every other SIGBUS to the
 * previous handler or the default action), and the mapping is marked
 * shrunk: zeros read as damage, and the caller refuses the file.
 */
#ifndef TLSPATCH_FILEMAP_H
#define TLSPATCH_FILEMAP_H

#include <stdbool.h>
#include <stddef.h>

typedef struct tp_filemap tp_filemap;

/* Map `size` bytes of fd read-only (MAP_PRIVATE). NULL with errno set
 * on failure (ENFILE: too many mappings at once). */
tp_filemap *tp_filemap_open (int fd, size_t size);
const unsigned char *tp_filemap_bytes (const tp_filemap *m);

/* Did a read meet the end of a file that shrank? */
bool tp_filemap_shrunk (const tp_filemap *m);

/* Let go of the pages read so far (they stay in the page cache and are
 * read again when touched): the process's memory shrinks by them. */
void tp_filemap_release (tp_filemap *m);

void tp_filemap_close (tp_filemap *m);

#endif
