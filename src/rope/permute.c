/*
 * permute.c — rope_permute_rows: converts a q/k projection between the two
 * pair layouts. Within each head's rotary span, interleaved row 2i+k
 * (k = 0, 1) and half row k*d/2 + i are the two members of pair i, so moving
 * the rows of W (and of its bias) moves whole pairs into the other layout;
 * q and k both move the same way, so every score q.k is the same sum in a
 * different order. This is the permutation of Hugging Face's
 * convert_llama_weights_to_hf.py permute() (interleaved -> half) and of
 * llama.cpp's LlamaModel.permute (half -> interleaved) (ROPE_NOTES 1, 6.4).
 */
#include <stdint.h>
#include <string.h>

#include "rope.h"

/* Source row (within one head) of destination row j. */
static int src_row(int j, int rotary_dim, rope_layout from, rope_layout to) {
    int half = rotary_dim / 2;
    if (j >= rotary_dim || from == to) return j;             /* pass-through rows stay */
    if (to == ROPE_LAYOUT_HALF)                               /* from interleaved */
        return j < half ? 2 * j : 2 * (j - half) + 1;
    return (j % 2) * half + j / 2;                            /* half -> interleaved */
}

rope_status rope_permute_rows(float *dst, const float *src, int n_heads, int head_dim,
                              int rotary_dim, int64_t n_cols,
                              rope_layout from, rope_layout to) {
    if (!dst || !src) return ROPE_ENULL;
    if (head_dim <= 0 || rotary_dim <= 0 || rotary_dim % 2 != 0 || rotary_dim > head_dim)
        return ROPE_EDIM;
    if ((from != ROPE_LAYOUT_INTERLEAVED && from != ROPE_LAYOUT_HALF) ||
        (to != ROPE_LAYOUT_INTERLEAVED && to != ROPE_LAYOUT_HALF))
        return ROPE_ELAYOUT;
    if (n_heads <= 0 || n_cols <= 0) return ROPE_ESHAPE;
    uint64_t rows = (uint64_t)n_heads * (uint64_t)head_dim;     /* < 2^62 */
    if ((uint64_t)n_cols > (uint64_t)(SIZE_MAX / sizeof(float)) / rows) return ROPE_ESHAPE;
    size_t row_len = (size_t)n_cols;
    size_t total = (size_t)rows * row_len;
    uintptr_t d0 = (uintptr_t)dst, s0 = (uintptr_t)src, bytes = total * sizeof(float);
    if (d0 < s0 + bytes && s0 < d0 + bytes) return ROPE_ESHAPE;  /* dst and src overlap */

    for (int h = 0; h < n_heads; h++) {
        size_t head = (size_t)h * (size_t)head_dim;
        for (int j = 0; j < head_dim; j++) {
            size_t r_dst = head + (size_t)j;
            size_t r_src = head + (size_t)src_row(j, rotary_dim, from, to);
            memcpy(dst + r_dst * row_len, src + r_src * row_len, row_len * sizeof(float));
        }
    }
    return ROPE_OK;
}
