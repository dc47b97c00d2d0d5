/*
 * mem.h — allocation of the trainer's large flat buffers (parameters,
 * gradients, AdamW moments, activations).
 */
#ifndef ROPEGPT_UTIL_MEM_H
#define ROPEGPT_UTIL_MEM_H

#include <stddef.h>

/* A zero-filled block of `bytes` (free() releases it), or NULL. Blocks of
 * 4 MiB or more are aligned to 2 MiB and, on Linux, marked for transparent
 * huge pages (MADV_HUGEPAGE: this host's THP mode is "madvise"), and every
 * page is written here, once. Why: the trainer streams these arrays every
 * step (AdamW reads and writes 7 floats per parameter, the matmuls stream
 * the weights), and with calloc's lazily mapped zero pages the first step's
 * reads map the shared zero page and its writes then copy-on-write every
 * page, each with a TLB shootdown to the other cores. */
void *mem_alloc_zero(size_t bytes);

#endif
