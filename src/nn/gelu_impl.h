/*
 * gelu_impl.h — the GELU loops, included (not linked) by gelu.c and by
 * gelu_avx2.c / gelu_avx512.c, so one source is compiled once per ISA and
 * gelu.c picks the widest at run time. Built with -ffp-contract=off (see
 * the Makefile), so no copy fuses a*b+c into FMA and every ISA gives the
 * same bits.
 * Internal: include only from src/nn/gelu*.c.
 */
#ifndef ROPEGPT_GELU_IMPL_H
#define ROPEGPT_GELU_IMPL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "nn/nn_exp.h"

/* sqrt(2/pi) */
#define GELU_SCALE 0.7978845608028654f
#define GELU_CUBIC 0.044715f
/* below this many elements, threads cost more than they save */
#define GELU_OMP_MIN 16384

/* exp as nn_expf (nn_exp.h): branch-free, so the loops below vectorise. */
static inline float gelu_exp(float x) { return nn_expf(x); }

/* 0.5 * (1 + tanh(u)) */
static inline float gelu_sigmoid2(float u) {
    return 1.0f / (1.0f + gelu_exp(-2.0f * u));
}

static inline void gelu_forward_impl(float *out, const float *inp, size_t n) {
    long long nn = (long long)n;
#ifdef _OPENMP
#pragma omp parallel for simd schedule(static) if (n >= GELU_OMP_MIN)
#endif
    for (long long i = 0; i < nn; i++) {
        float x = inp[i];
        float u = GELU_SCALE * (x + GELU_CUBIC * x * x * x);
        out[i] = x * gelu_sigmoid2(u);
    }
}

/* gelu'(x), given s = 0.5 (1 + tanh u) */
static inline float gelu_grad(float x, float s) {
    float du_dx = GELU_SCALE * (1.0f + 3.0f * GELU_CUBIC * x * x);
    /* d/dx [x s] = s + x * ds/du * du/dx, and ds/du = 2 s (1 - s)
     * (= 0.5 sech^2 u) */
    return s + 2.0f * x * s * (1.0f - s) * du_dx;
}

/* set: dinp = gelu'(x) dout (overwrite), else dinp += gelu'(x) dout. */
static inline void gelu_backward_impl(float *dinp, const float *inp, const float *dout, size_t n, int set) {
    long long nn = (long long)n;
#ifdef _OPENMP
#pragma omp parallel for simd schedule(static) if (n >= GELU_OMP_MIN)
#endif
    for (long long i = 0; i < nn; i++) {
        float x = inp[i];
        float u = GELU_SCALE * (x + GELU_CUBIC * x * x * x);
        float grad = gelu_grad(x, gelu_sigmoid2(u));
        dinp[i] = set ? grad * dout[i] : dinp[i] + grad * dout[i];
    }
}

/* out = gelu(x), deriv = gelu'(x); deriv may alias inp (x is read first). */
static inline void gelu_forward_deriv_impl(float *out, float *deriv, const float *inp, size_t n) {
    long long nn = (long long)n;
#ifdef _OPENMP
#pragma omp parallel for simd schedule(static) if (n >= GELU_OMP_MIN)
#endif
    for (long long i = 0; i < nn; i++) {
        float x = inp[i];
        float u = GELU_SCALE * (x + GELU_CUBIC * x * x * x);
        float s = gelu_sigmoid2(u);
        out[i] = x * s;
        deriv[i] = gelu_grad(x, s);
    }
}

#endif
