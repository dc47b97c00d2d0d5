/*
 * nn_exp.h — a branch-free float exp the compiler can vectorise (glibc's
 * expf is a call per element), shared by GELU and the softmax of the
 * cross-entropy. Within ~2 ulp of expf over the clamped range. The Makefile
 * builds with -ffp-contract=off (clang would otherwise fuse a*b+c into FMA
 * where the ISA has it), so scalar and vector code give the same bits.
 * Internal to src/nn.
 */
#ifndef ROPEGPT_NN_EXP_H
#define ROPEGPT_NN_EXP_H

#include <stdint.h>
#include <string.h>

/* exp(x) for x in float range, clamped to [-87, 88] (normal results only).
 * x = n ln2 + r with |r| <= ln2/2 (ln2 split in a high part exact in float
 * and a low part, Cody & Waite 1980), e^r by its Taylor series to r^7
 * (truncation error < 0.35^8/8! = 5e-9 relative), times 2^n built in the
 * exponent bits. Branch-free, so loops over it vectorise. */
static inline float nn_expf(float x) {
    x = x < -87.0f ? -87.0f : x;   /* NaN passes both clamps and stays NaN */
    x = x > 88.0f ? 88.0f : x;
    /* t's low mantissa bits hold round(x log2 e) (1.5 * 2^23 has ulp 1); the
     * integer is read from the bits, not by a float-to-int conversion, which
     * is undefined for NaN. */
    float t = x * 1.44269504088896341f + 12582912.0f;
    float n = t - 12582912.0f;
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
    uint32_t tb, mb;
    const float magic = 12582912.0f;
    memcpy(&tb, &t, sizeof tb);
    memcpy(&mb, &magic, sizeof mb);
    uint32_t bits = (tb - mb + 127u) << 23;   /* 2^n; unsigned: no overflow UB */
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;   /* NaN in, NaN out */
}

#endif
