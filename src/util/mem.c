/*
 * mem.c — large zero-filled buffers on huge pages where the OS offers them.
 */
#define _DEFAULT_SOURCE   /* madvise, MADV_HUGEPAGE */
#include "util/mem.h"

#include <stdlib.h>
#include <string.h>

#ifdef __linux__
#include <sys/mman.h>
#endif

#define HUGE_ALIGN ((size_t)2 << 20)

void *mem_alloc_zero(size_t bytes) {
    if (bytes == 0) bytes = 1;
    if (bytes < 2 * HUGE_ALIGN) return calloc(1, bytes);
    void *p = NULL;
    if (posix_memalign(&p, HUGE_ALIGN, bytes) != 0) return NULL;
#if defined(__linux__) && defined(MADV_HUGEPAGE) && !defined(MEM_NO_HUGEPAGE)
    /* Advice only: where THP is off or the kernel refuses, the pages stay 4 KiB.
     * Building with -DMEM_NO_HUGEPAGE leaves it out (for A/B timings). */
    (void)madvise(p, bytes / HUGE_ALIGN * HUGE_ALIGN, MADV_HUGEPAGE);
#endif
    memset(p, 0, bytes);
    return p;
}
