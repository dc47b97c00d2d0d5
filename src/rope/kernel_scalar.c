/*
 * kernel_scalar.c — the reference rotation kernels in plain C: the portable
 * fallback and the twin every SIMD kernel is tested against (kernels.h).
 * A pair (a, b) becomes (a*c - b*s, a*s + b*c) (RoFormer eq. 34); backward
 * uses -s, the transpose of the rotation (ROPE_NOTES 3.10).
 * Each product is a separate statement so no compiler fuses it into an fma
 * (clang contracts within one expression by default): every build rounds the
 * same way, and the SIMD kernels can state exactly how they differ.
 */
#include "rope/kernels.h"

/* Pairs (2i, 2i+1) of each head: RoFormer, GPT-J, Meta Llama, llama2.c. */
void rope_token_interleaved_scalar(float *y, const float *x, int64_t n_heads,
                                   int64_t y_head_stride, int64_t x_head_stride,
                                   const float *cos, const float *sin, int n_pairs, int backward) {
    for (int64_t h = 0; h < n_heads; h++) {
        float *y_h = y + h * y_head_stride;          /* (2*n_pairs) */
        const float *x_h = x + h * x_head_stride;    /* (2*n_pairs) */
        for (int i = 0; i < n_pairs; i++) {
            float c = cos[i];
            float s = backward ? -sin[i] : sin[i];
            float a = x_h[2 * i], b = x_h[2 * i + 1];  /* read both before writing: y may be x */
            float ac = a * c, bs = b * s, as = a * s, bc = b * c;
            y_h[2 * i] = ac - bs;
            y_h[2 * i + 1] = as + bc;
        }
    }
}

/* Pairs (i, i + n_pairs) of each head, n_pairs = rotary_dim/2 (not
 * head_dim/2): GPT-NeoX, Hugging Face rotate_half. */
void rope_token_half_scalar(float *y, const float *x, int64_t n_heads,
                            int64_t y_head_stride, int64_t x_head_stride,
                            const float *cos, const float *sin, int n_pairs, int backward) {
    for (int64_t h = 0; h < n_heads; h++) {
        float *y_h = y + h * y_head_stride;
        const float *x_h = x + h * x_head_stride;
        for (int i = 0; i < n_pairs; i++) {
            float c = cos[i];
            float s = backward ? -sin[i] : sin[i];
            float a = x_h[i], b = x_h[i + n_pairs];
            float ac = a * c, bs = b * s, as = a * s, bc = b * c;
            y_h[i] = ac - bs;
            y_h[i + n_pairs] = as + bc;
        }
    }
}
