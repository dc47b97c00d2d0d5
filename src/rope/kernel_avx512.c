/*
 * kernel_avx512.c — AVX-512F rotation kernels for both pair layouts, the
 * fast twins of kernel_scalar.c. The Makefile compiles this file alone with
 * -mavx512f (+bw/vl/dq); cpu.c calls it only when the CPU and OS support it.
 *
 * Numerics: every output is round(round(a*c) -/+ round(b*s)), the same two
 * products and one sum the scalar kernel forms, so the results are bit-equal
 * to rope_token_*_scalar. That is why the kernels multiply and add separately
 * instead of using FMA (an FMA skips the rounding of one product and would
 * differ from the scalar twin in the last bit); RoPE is memory-bound, so the
 * extra multiply costs nothing measurable. Tails use masked loads and stores,
 * never scalar C, so no compiler may contract them into an FMA either.
 * a*c - b*s is computed as a*c + b*(-s): IEEE subtraction is addition of the
 * negation, so the two are identical, signed zeros included.
 */
#include "rope/kernels.h"

#if defined(__x86_64__)
#include <immintrin.h>

/* Pairs whose duplicated cos / signed sin are expanded at once (interleaved
 * layout): 2 x 2 KiB of stack, covers head sizes up to 512 in one pass. */
#define ROPE_AVX512_CHUNK 256

/* Only AVX-512F intrinsics are used (the float xor below is DQ, so the sign
 * flip goes through the integer domain); cpu.c still checks BW/VL/DQ too,
 * since the compiler may use them with the flags this file is built with. */

/* Flips the sign bits set in m. */
static inline __m512 flip(__m512 v, __m512i m) {
    return _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(v), m));
}

/* Mask of the first n (0..16) lanes. */
static inline __mmask16 lanes_mask(int n) {
    return (__mmask16)((1u << n) - 1u);
}

/* x*cc + swap_pairs(x)*ss for one vector of interleaved pairs. */
static inline __m512 rot_interleaved16(__m512 v, __m512 c, __m512 s) {
    return _mm512_add_ps(_mm512_mul_ps(v, c), _mm512_mul_ps(_mm512_permute_ps(v, 0xB1), s));
}

/* Vectors of expanded cos (and of sin) kept in registers across heads: 8 + 8
 * of the 32 zmm registers, enough for rotary_dim <= 128. */
#define ROPE_AVX512_REG_VECS 8

/* Every head of one chunk whose nv (1..8, a constant after inlining) vectors
 * of expanded cos/sin are loaded once into registers; the last vector of each
 * head is masked by `last` (all lanes when the chunk fills it). Without this
 * the loop reloads cc/ss for every vector of every head. */
static inline __attribute__((always_inline)) void
heads_interleaved_reg(float *y, const float *x, int64_t n_heads, int64_t y_head_stride,
                      int64_t x_head_stride, const float *cc, const float *ss, const int nv,
                      __mmask16 last) {
    __m512 c[ROPE_AVX512_REG_VECS], s[ROPE_AVX512_REG_VECS];
    /* Full unrolling turns c[] and s[] into registers (else they live on the stack). */
#pragma GCC unroll 8
    for (int v = 0; v < nv; v++) {
        c[v] = _mm512_load_ps(cc + 16 * v);
        s[v] = _mm512_load_ps(ss + 16 * v);
    }
    for (int64_t h = 0; h < n_heads; h++) {
        const float *xh = x + h * x_head_stride;
        float *yh = y + h * y_head_stride;
#pragma GCC unroll 8
        for (int v = 0; v < nv - 1; v++)
            _mm512_storeu_ps(yh + 16 * v, rot_interleaved16(_mm512_loadu_ps(xh + 16 * v), c[v], s[v]));
        const int v = nv - 1;
        _mm512_mask_storeu_ps(yh + 16 * v, last,
                              rot_interleaved16(_mm512_maskz_loadu_ps(last, xh + 16 * v), c[v], s[v]));
    }
}

/*
 * Interleaved pairs (2i, 2i+1). For a vector x = [a0 b0 a1 b1 ...]:
 *   y = x * [c0 c0 c1 c1 ...] + swap_pairs(x) * [-s0 s0 -s1 s1 ...]
 * gives (a*c - b*s, b*c + a*s) per pair. The duplicated cos and signed sin
 * depend only on the row, so they are expanded once per token (per chunk of
 * pairs) into cc/ss and reused for every head.
 */
void rope_token_interleaved_avx512(float *y, const float *x, int64_t n_heads,
                                   int64_t y_head_stride, int64_t x_head_stride,
                                   const float *cos, const float *sin, int n_pairs, int backward) {
    _Alignas(64) float cc[2 * ROPE_AVX512_CHUNK];
    _Alignas(64) float ss[2 * ROPE_AVX512_CHUNK];
    const __m512i dup = _mm512_set_epi32(7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0);
    /* Forward negates the sin of the even lane (a's partner term -b*s);
     * backward (angle -theta) negates the odd lane instead. */
    const __m512i sign = backward
        ? _mm512_set_epi32((int)0x80000000, 0, (int)0x80000000, 0, (int)0x80000000, 0, (int)0x80000000, 0,
                           (int)0x80000000, 0, (int)0x80000000, 0, (int)0x80000000, 0, (int)0x80000000, 0)
        : _mm512_set_epi32(0, (int)0x80000000, 0, (int)0x80000000, 0, (int)0x80000000, 0, (int)0x80000000,
                           0, (int)0x80000000, 0, (int)0x80000000, 0, (int)0x80000000, 0, (int)0x80000000);
    for (int p0 = 0; p0 < n_pairs; p0 += ROPE_AVX512_CHUNK) {
        const int np = n_pairs - p0 < ROPE_AVX512_CHUNK ? n_pairs - p0 : ROPE_AVX512_CHUNK;
        const int nf = 2 * np;          /* floats of this chunk in each head */
        for (int i = 0; i < np; i += 8) {
            const int left = np - i;
            const __mmask16 m = lanes_mask(left >= 8 ? 8 : left);
            __m512 c = _mm512_maskz_loadu_ps(m, cos + p0 + i);
            __m512 s = _mm512_maskz_loadu_ps(m, sin + p0 + i);
            c = _mm512_permutexvar_ps(dup, c);
            s = flip(_mm512_permutexvar_ps(dup, s), sign);
            _mm512_store_ps(cc + 2 * i, c);
            _mm512_store_ps(ss + 2 * i, s);
        }
        if (nf <= 16 * ROPE_AVX512_REG_VECS) {
            /* The common case (rotary_dim <= 128): cos/sin stay in registers. */
            const int nv = (nf + 15) / 16;
            const __mmask16 last = lanes_mask(nf - 16 * (nv - 1));
            const float *xc = x + 2 * (int64_t)p0;
            float *yc = y + 2 * (int64_t)p0;
            switch (nv) {
            case 1: heads_interleaved_reg(yc, xc, n_heads, y_head_stride, x_head_stride, cc, ss, 1, last); break;
            case 2: heads_interleaved_reg(yc, xc, n_heads, y_head_stride, x_head_stride, cc, ss, 2, last); break;
            case 3: heads_interleaved_reg(yc, xc, n_heads, y_head_stride, x_head_stride, cc, ss, 3, last); break;
            case 4: heads_interleaved_reg(yc, xc, n_heads, y_head_stride, x_head_stride, cc, ss, 4, last); break;
            case 5: heads_interleaved_reg(yc, xc, n_heads, y_head_stride, x_head_stride, cc, ss, 5, last); break;
            case 6: heads_interleaved_reg(yc, xc, n_heads, y_head_stride, x_head_stride, cc, ss, 6, last); break;
            case 7: heads_interleaved_reg(yc, xc, n_heads, y_head_stride, x_head_stride, cc, ss, 7, last); break;
            default: heads_interleaved_reg(yc, xc, n_heads, y_head_stride, x_head_stride, cc, ss, 8, last); break;
            }
            continue;
        }
        const int nf_full = nf & ~15;
        const __mmask16 tail = lanes_mask(nf - nf_full);
        for (int64_t h = 0; h < n_heads; h++) {
            const float *xh = x + h * x_head_stride + 2 * (int64_t)p0;
            float *yh = y + h * y_head_stride + 2 * (int64_t)p0;
            int j = 0;
            /* Two vectors per step: independent chains hide the add latency. */
            for (; j + 32 <= nf_full; j += 32) {
                const __m512 v0 = _mm512_loadu_ps(xh + j);
                const __m512 v1 = _mm512_loadu_ps(xh + j + 16);
                const __m512 r0 = _mm512_add_ps(_mm512_mul_ps(v0, _mm512_load_ps(cc + j)),
                                                _mm512_mul_ps(_mm512_permute_ps(v0, 0xB1), _mm512_load_ps(ss + j)));
                const __m512 r1 = _mm512_add_ps(_mm512_mul_ps(v1, _mm512_load_ps(cc + j + 16)),
                                                _mm512_mul_ps(_mm512_permute_ps(v1, 0xB1), _mm512_load_ps(ss + j + 16)));
                _mm512_storeu_ps(yh + j, r0);
                _mm512_storeu_ps(yh + j + 16, r1);
            }
            for (; j < nf_full; j += 16) {
                const __m512 v = _mm512_loadu_ps(xh + j);
                const __m512 r = _mm512_add_ps(_mm512_mul_ps(v, _mm512_load_ps(cc + j)),
                                               _mm512_mul_ps(_mm512_permute_ps(v, 0xB1), _mm512_load_ps(ss + j)));
                _mm512_storeu_ps(yh + j, r);
            }
            if (tail) {
                const __m512 v = _mm512_maskz_loadu_ps(tail, xh + j);
                const __m512 r = _mm512_add_ps(_mm512_mul_ps(v, _mm512_load_ps(cc + j)),
                                               _mm512_mul_ps(_mm512_permute_ps(v, 0xB1), _mm512_load_ps(ss + j)));
                _mm512_mask_storeu_ps(yh + j, tail, r);
            }
        }
    }
}

/* One vector of half-layout pairs: a = x[i..], b = x[i+n_pairs..]. s is
 * already negated for backward. */
#define ROPE_HALF_STEP512(a, b, c, s, ya, yb)                                   \
    do {                                                                      \
        (ya) = _mm512_sub_ps(_mm512_mul_ps((a), (c)), _mm512_mul_ps((b), (s))); \
        (yb) = _mm512_add_ps(_mm512_mul_ps((a), (s)), _mm512_mul_ps((b), (c))); \
    } while (0)

/*
 * Half pairs (i, i + n_pairs): contiguous vectors of first halves a and second
 * halves b meet contiguous cos/sin, so no shuffles at all:
 *   y[i] = a*c - b*s,  y[i+n_pairs] = a*s + b*c.
 */
void rope_token_half_avx512(float *y, const float *x, int64_t n_heads,
                            int64_t y_head_stride, int64_t x_head_stride,
                            const float *cos, const float *sin, int n_pairs, int backward) {
    const __m512i neg = _mm512_set1_epi32(backward ? (int)0x80000000 : 0);
    const int full = n_pairs & ~15;
    const __mmask16 tail = lanes_mask(n_pairs - full);
    for (int64_t h = 0; h < n_heads; h++) {
        const float *xa = x + h * x_head_stride, *xb = xa + n_pairs;
        float *ya = y + h * y_head_stride, *yb = ya + n_pairs;
        int i = 0;
        for (; i + 32 <= full; i += 32) {
            const __m512 a0 = _mm512_loadu_ps(xa + i), a1 = _mm512_loadu_ps(xa + i + 16);
            const __m512 b0 = _mm512_loadu_ps(xb + i), b1 = _mm512_loadu_ps(xb + i + 16);
            const __m512 c0 = _mm512_loadu_ps(cos + i), c1 = _mm512_loadu_ps(cos + i + 16);
            const __m512 s0 = flip(_mm512_loadu_ps(sin + i), neg);
            const __m512 s1 = flip(_mm512_loadu_ps(sin + i + 16), neg);
            __m512 ra0, rb0, ra1, rb1;
            ROPE_HALF_STEP512(a0, b0, c0, s0, ra0, rb0);
            ROPE_HALF_STEP512(a1, b1, c1, s1, ra1, rb1);
            _mm512_storeu_ps(ya + i, ra0);
            _mm512_storeu_ps(ya + i + 16, ra1);
            _mm512_storeu_ps(yb + i, rb0);
            _mm512_storeu_ps(yb + i + 16, rb1);
        }
        for (; i < full; i += 16) {
            const __m512 a = _mm512_loadu_ps(xa + i), b = _mm512_loadu_ps(xb + i);
            const __m512 c = _mm512_loadu_ps(cos + i);
            const __m512 s = flip(_mm512_loadu_ps(sin + i), neg);
            __m512 ra, rb;
            ROPE_HALF_STEP512(a, b, c, s, ra, rb);
            _mm512_storeu_ps(ya + i, ra);
            _mm512_storeu_ps(yb + i, rb);
        }
        if (tail) {
            /* Both halves are loaded before either is stored: in place, ya's
             * tail may not overlap xb, but keep the order obviously safe. */
            const __m512 a = _mm512_maskz_loadu_ps(tail, xa + i), b = _mm512_maskz_loadu_ps(tail, xb + i);
            const __m512 c = _mm512_maskz_loadu_ps(tail, cos + i);
            const __m512 s = flip(_mm512_maskz_loadu_ps(tail, sin + i), neg);
            __m512 ra, rb;
            ROPE_HALF_STEP512(a, b, c, s, ra, rb);
            _mm512_mask_storeu_ps(ya + i, tail, ra);
            _mm512_mask_storeu_ps(yb + i, tail, rb);
        }
    }
}
#endif
