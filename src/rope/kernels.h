/*
 * kernels.h — librope's internal rotation kernels (not installed).
 *
 * A kernel rotates the rotary pairs of every head of ONE token with one
 * cos/sin row. The caller (apply.c) resolves positions, threads and the
 * pass-through channels [rotary_dim, head_dim); kernels touch only the first
 * 2*n_pairs channels of each head. y == x is allowed (in place).
 * backward != 0 rotates by the negative angle (sin negated): the adjoint.
 * Every SIMD kernel has the scalar kernel as its twin; tests compare them.
 */
#ifndef ROPE_KERNELS_H
#define ROPE_KERNELS_H

#include <stdint.h>
#include "rope.h"

typedef void (*rope_token_fn)(float *y, const float *x, int64_t n_heads,
                              int64_t y_head_stride, int64_t x_head_stride,
                              const float *cos, const float *sin, int n_pairs, int backward);

void rope_token_interleaved_scalar(float *y, const float *x, int64_t n_heads,
                                   int64_t y_head_stride, int64_t x_head_stride,
                                   const float *cos, const float *sin, int n_pairs, int backward);
void rope_token_half_scalar(float *y, const float *x, int64_t n_heads,
                            int64_t y_head_stride, int64_t x_head_stride,
                            const float *cos, const float *sin, int n_pairs, int backward);
void rope_token_interleaved_avx2(float *y, const float *x, int64_t n_heads,
                                 int64_t y_head_stride, int64_t x_head_stride,
                                 const float *cos, const float *sin, int n_pairs, int backward);
void rope_token_half_avx2(float *y, const float *x, int64_t n_heads,
                          int64_t y_head_stride, int64_t x_head_stride,
                          const float *cos, const float *sin, int n_pairs, int backward);
void rope_token_interleaved_avx512(float *y, const float *x, int64_t n_heads,
                                   int64_t y_head_stride, int64_t x_head_stride,
                                   const float *cos, const float *sin, int n_pairs, int backward);
void rope_token_half_avx512(float *y, const float *x, int64_t n_heads,
                            int64_t y_head_stride, int64_t x_head_stride,
                            const float *cos, const float *sin, int n_pairs, int backward);

/* The kernel for (k, layout); k must be supported (see rope_kernel_supported)
 * and not AUTO. Returns NULL otherwise. */
rope_token_fn rope_kernel_get(rope_kernel k, rope_layout layout);

/* The best kernel this CPU and build support. */
rope_kernel rope_kernel_best(void);

#endif /* ROPE_KERNELS_H */
