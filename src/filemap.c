/* tlspatch: mappings that survive a shrinking file (see filemap.h). */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "tlspatch/filemap.h"

#define SLOTS 64                /* mappings open at once (a run holds a few hives) */

struct tp_filemap {
  void *addr;
  size_t len;
  int slot;
};

/* Read by the signal handler: a slot is live while its start is set. */
static struct {
  _Atomic uintptr_t start;
  _Atomic size_t len;
  atomic_bool shrunk;
} slots[SLOTS];

static pthread_mutex_t slots_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t installed = PTHREAD_ONCE_INIT;
static struct sigaction previous;
static size_t page_size;

static void
on_sigbus (int sig, siginfo_t *si, void *uc)
{
  uintptr_t at = (uintptr_t) si->si_addr;
  for (int i = 0; i < SLOTS; i++) {
    uintptr_t start = atomic_load (&slots[i].start);
    if (!start || at < start || at - start >= atomic_load (&slots[i].len))
      continue;
    void *page = (void *) (at & ~(uintptr_t) (page_size - 1));
    if (mmap (page, page_size, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0)
        != MAP_FAILED) {
      atomic_store (&slots[i].shrunk, true);
      return;                   /* the read is retried, and finds zeros */
    }
  }
  if (previous.sa_flags & SA_SIGINFO && previous.sa_sigaction)
    previous.sa_sigaction (sig, si, uc);
  else if (previous.sa_handler != SIG_DFL && previous.sa_handler != SIG_IGN && previous.sa_handler)
    previous.sa_handler (sig);
  else
    signal (SIGBUS, SIG_DFL);   /* the fault repeats, with the default action */
}

static void
install (void)
{
  page_size = (size_t) sysconf (_SC_PAGESIZE);
  struct sigaction sa;
  memset (&sa, 0, sizeof sa);
  sa.sa_sigaction = on_sigbus;
  sa.sa_flags = SA_SIGINFO;
  sigemptyset (&sa.sa_mask);
  sigaction (SIGBUS, &sa, &previous);
}

tp_filemap *
tp_filemap_open (int fd, size_t size)
{
  pthread_once (&installed, install);
  tp_filemap *m = calloc (1, sizeof *m);
  if (!m)
    return NULL;
  m->addr = mmap (NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
  if (m->addr == MAP_FAILED) {
    free (m);
    return NULL;
  }
  m->len = size;
  m->slot = -1;
  pthread_mutex_lock (&slots_lock);
  for (int i = 0; i < SLOTS && m->slot < 0; i++)
    if (!atomic_load (&slots[i].start)) {
      m->slot = i;
      atomic_store (&slots[i].shrunk, false);
      atomic_store (&slots[i].len, size);
      atomic_store (&slots[i].start, (uintptr_t) m->addr);
    }
  pthread_mutex_unlock (&slots_lock);
  if (m->slot < 0) {
    munmap (m->addr, size);
    free (m);
    errno = ENFILE;
    return NULL;
  }
  return m;
}

const unsigned char *
tp_filemap_bytes (const tp_filemap *m)
{
  return m->addr;
}

bool
tp_filemap_shrunk (const tp_filemap *m)
{
  return atomic_load (&slots[m->slot].shrunk);
}

void
tp_filemap_release (tp_filemap *m)
{
  madvise (m->addr, m->len, MADV_DONTNEED);
}

void
tp_filemap_close (tp_filemap *m)
{
  if (!m)
    return;
  pthread_mutex_lock (&slots_lock);
  atomic_store (&slots[m->slot].start, 0);
  pthread_mutex_unlock (&slots_lock);
  munmap (m->addr, m->len);
  free (m);
}
