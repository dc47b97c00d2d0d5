/*
 * kernel_avx512.c — avx512 rotation kernels (placeholder: forwards to the scalar
 * kernel until the SIMD version lands). Compiled with avx512 flags by the Makefile.
 */
#include "rope/kernels.h"

#if defined(__x86_64__)
void rope_token_interleaved_avx512(float *y, const float *x, int64_t n_heads,
                                 int64_t y_head_stride, int64_t x_head_stride,
                                 const float *cos, const float *sin, int n_pairs, int backward) {
    rope_token_interleaved_scalar(y, x, n_heads, y_head_stride, x_head_stride, cos, sin, n_pairs, backward);
}
void rope_token_half_avx512(float *y, const float *x, int64_t n_heads,
                          int64_t y_head_stride, int64_t x_head_stride,
                          const float *cos, const float *sin, int n_pairs, int backward) {
    rope_token_half_scalar(y, x, n_heads, y_head_stride, x_head_stride, cos, sin, n_pairs, backward);
}
#endif
