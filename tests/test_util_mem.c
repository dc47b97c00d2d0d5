/*
 * test_util_mem.c — mem_alloc_zero: zero-filled at every size, and the
 * large blocks aligned to the 2 MiB huge-page size (the madvise in mem.c
 * covers whole huge pages only if the block starts on one).
 */
#include <stdint.h>
#include <stdlib.h>

#include "test.h"
#include "util/mem.h"

static int all_zero(const unsigned char *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i] != 0) return 0;
    return 1;
}

TEST(mem_alloc_zero_sizes_and_alignment) {
    const size_t sizes[] = {0, 1, 4095, (size_t)4 << 20, ((size_t)9 << 20) + 3};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        unsigned char *p = mem_alloc_zero(sizes[k]);
        CHECK(p != NULL);
        if (!p) continue;
        CHECK(all_zero(p, sizes[k]));
        if (sizes[k] >= ((size_t)4 << 20)) CHECK(((uintptr_t)p & (((uintptr_t)2 << 20) - 1)) == 0);
        /* writable to the last byte */
        if (sizes[k]) p[sizes[k] - 1] = 1;
        free(p);
    }
}
