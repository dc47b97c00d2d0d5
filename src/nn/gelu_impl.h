/*
 * gelu_impl.h — the GELU loops, included (not linked) by gelu.c and by
 * gelu_avx2.c / gelu_avx512.c, so one source is compiled once per ISA and
 * gelu.c picks the widest at run time. With -std=c11 gcc and clang do not
 * contract a*b+c into FMA, so every ISA gives the same bits.
 * Internal: include only from src/nn/gelu*.c.
 */
#ifndef ROPEGPT_GELU_IMPL_H
#define ROPEGPT_GELU_IMPL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* sqrt(2/pi) */
#define GELU_SCALE 0.7978845608028654f
#define GELU_CUBIC 0.044715f
/* below this many elements, threads cost more than they save */
#define GELU_OMP_MIN 16384

/* exp(x) for x in float range, clamped to [-87, 88] (normal results only).
 * x = n ln2 + r with |r| <= ln2/2 (ln2 split in a high part exact in float
 * and a low part, Cody & Waite 1980), e^r by its Taylor series to r^7
 * (truncation error < 0.35^8/8! = 5e-9 relative), times 2^n built in the
 * exponent bits. Branch-free so the loops below vectorise. */
static inline float gelu_exp(float x) {
    x = x < -87.0f ? -87.0f : x;
    x = x > 88.0f ? 88.0f : x;
    float n = x * 1.44269504088896341f + 12582912.0f;   /* 1.5 * 2^23: round to nearest */
    n -= 12582912.0f;
    float r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    int32_t bits = ((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

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

static inline void gelu_backward_impl(float *dinp, const float *inp, const float *dout, size_t n) {
    long long nn = (long long)n;
#ifdef _OPENMP
#pragma omp parallel for simd schedule(static) if (n >= GELU_OMP_MIN)
#endif
    for (long long i = 0; i < nn; i++) {
        float x = inp[i];
        float u = GELU_SCALE * (x + GELU_CUBIC * x * x * x);
        float s = gelu_sigmoid2(u);                 /* 0.5 * (1 + tanh u) */
        float du_dx = GELU_SCALE * (1.0f + 3.0f * GELU_CUBIC * x * x);
        /* d/dx [x s] = s + x * ds/du * du/dx, and ds/du = 2 s (1 - s)
         * (= 0.5 sech^2 u) */
        float grad = s + 2.0f * x * s * (1.0f - s) * du_dx;
        dinp[i] += grad * dout[i];
    }
}

#endif
