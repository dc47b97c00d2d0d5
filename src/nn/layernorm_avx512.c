/*
 * layernorm_avx512.c — the LayerNorm loops of layernorm_impl.h compiled with
 * avx512 flags (the Makefile adds them by file name); layernorm.c calls
 * these when the CPU has avx512.
 */
#include "nn/layernorm.h"

#if defined(__x86_64__)
#include "nn/layernorm_impl.h"

void layernorm_forward_avx512(float *res, float *out, float *mean, float *rstd, const float *inp1,
                              const float *inp2, const float *weight, const float *bias, int N, int C);
void layernorm_backward_avx512(int flags, float *dinp, float *dweight, float *dbias, const float *dout,
                               const float *inp, const float *weight, const float *mean, const float *rstd,
                               int N, int C);

void layernorm_forward_avx512(float *res, float *out, float *mean, float *rstd, const float *inp1,
                              const float *inp2, const float *weight, const float *bias, int N, int C) {
    layernorm_forward_impl(res, out, mean, rstd, inp1, inp2, weight, bias, N, C);
}

void layernorm_backward_avx512(int flags, float *dinp, float *dweight, float *dbias, const float *dout,
                               const float *inp, const float *weight, const float *mean, const float *rstd,
                               int N, int C) {
    layernorm_backward_impl(flags, dinp, dweight, dbias, dout, inp, weight, mean, rstd, N, C);
}
#else
typedef int layernorm_avx512_unused; /* ISO C forbids an empty translation unit */
#endif
