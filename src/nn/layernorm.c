/*
 * layernorm.c — LayerNorm forward and backward over rows of C channels. The
 * loops live in layernorm_impl.h (numerics explained there); on CPUs with
 * AVX-512 the copy compiled for it (layernorm_avx512.c) runs, with the same
 * bits: both copies do the same float and double operations.
 */
#include "nn/layernorm.h"
#include "nn/layernorm_impl.h"

void layernorm_forward_avx512(float *res, float *out, float *mean, float *rstd, const float *inp1,
                              const float *inp2, const float *weight, const float *bias, int N, int C);
void layernorm_backward_avx512(int flags, float *dinp, float *dweight, float *dbias, const float *dout,
                               const float *inp, const float *weight, const float *mean, const float *rstd,
                               int N, int C);

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define LN_X86 1
#endif

static void forward(float *res, float *out, float *mean, float *rstd, const float *inp1, const float *inp2,
                    const float *weight, const float *bias, int N, int C) {
#ifdef LN_X86
    if (__builtin_cpu_supports("avx512f")) {
        layernorm_forward_avx512(res, out, mean, rstd, inp1, inp2, weight, bias, N, C);
        return;
    }
#endif
    layernorm_forward_impl(res, out, mean, rstd, inp1, inp2, weight, bias, N, C);
}

void layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                       const float *weight, const float *bias, int N, int C) {
    forward(NULL, out, mean, rstd, inp, NULL, weight, bias, N, C);
}

void layernorm_residual_forward(float *res, float *out, float *mean, float *rstd, const float *inp1,
                                const float *inp2, const float *weight, const float *bias, int N, int C) {
    forward(res, out, mean, rstd, inp1, inp2, weight, bias, N, C);
}

void layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                        const float *inp, const float *weight, const float *mean,
                        const float *rstd, int N, int C) {
    layernorm_backward_flags(0, dinp, dweight, dbias, dout, inp, weight, mean, rstd, N, C);
}

void layernorm_backward_flags(int flags, float *dinp, float *dweight, float *dbias, const float *dout,
                              const float *inp, const float *weight, const float *mean,
                              const float *rstd, int N, int C) {
#ifdef LN_X86
    if (__builtin_cpu_supports("avx512f")) {
        layernorm_backward_avx512(flags, dinp, dweight, dbias, dout, inp, weight, mean, rstd, N, C);
        return;
    }
#endif
    layernorm_backward_impl(flags, dinp, dweight, dbias, dout, inp, weight, mean, rstd, N, C);
}
