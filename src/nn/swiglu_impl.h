/*
 * swiglu_impl.h — the SwiGLU loops, included (not linked) by swiglu.c and
 * swiglu_avx512.c, so one source is compiled once per ISA and swiglu.c
 * picks the widest at run time. exp is nn_expf (nn_exp.h): branch-free, so
 * the loops vectorise (glibc's expf is a call per element, which was ~8% of
 * a stories15M prefill). Built with -ffp-contract=off (see the Makefile),
 * so neither copy fuses a*b+c into FMA and both give the same bits.
 * Internal: include only from src/nn/swiglu*.c.
 */
#ifndef ROPEGPT_SWIGLU_IMPL_H
#define ROPEGPT_SWIGLU_IMPL_H

#include <stddef.h>

#include "nn/nn_exp.h"

/* below this many elements, threads cost more than they save */
#define SWIGLU_OMP_MIN 32768

/* sigmoid(g) = 1/(1+exp(-g)): exact enough in float for |g| < 87 and
 * saturating cleanly beyond (nn_expf clamps its argument to [-87, 88], so
 * exp(-g) is never inf and the result goes to ~0 or 1). */
static inline float swiglu_sigmoid(float g) { return 1.0f / (1.0f + nn_expf(-g)); }

static inline void swiglu_forward_impl(float *out, const float *gate, const float *up, size_t n) {
    long long nn = (long long)n;
#ifdef _OPENMP
#pragma omp parallel for simd schedule(static) if (n >= SWIGLU_OMP_MIN)
#endif
    for (long long i = 0; i < nn; i++) {
        float g = gate[i];
        out[i] = g * swiglu_sigmoid(g) * up[i];
    }
}

static inline void swiglu_backward_impl(float *dgate, float *dup, const float *dout, const float *gate,
                                        const float *up, size_t n) {
    long long nn = (long long)n;
#ifdef _OPENMP
#pragma omp parallel for simd schedule(static) if (n >= SWIGLU_OMP_MIN)
#endif
    for (long long i = 0; i < nn; i++) {
        float g = gate[i];
        float s = swiglu_sigmoid(g);
        float silu = g * s;
        /* d silu/dg = s + g s (1 - s) */
        dgate[i] += dout[i] * up[i] * (s + g * s * (1.0f - s));
        dup[i] += dout[i] * silu;
    }
}

#endif
