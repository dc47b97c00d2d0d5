/*
 * kernel_avx2.c — AVX2 rotation kernels for both pair layouts, the fast twins
 * of kernel_scalar.c for x86-64 CPUs without AVX-512. The Makefile compiles
 * this file alone with -mavx2 -mfma; cpu.c calls it only when the CPU and OS
 * support AVX2 and FMA.
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
 *
 * Speed: see kernel_avx512.c. Out of place the output of the head two ahead
 * is prefetched and each head is written front to back; the interleaved
 * kernel works on two heads at once so each cos/sin vector it loads serves
 * two data vectors (16 ymm registers cannot hold a token's cos/sin).
 */
#include <stdint.h>

#include "rope/kernels.h"

#if defined(__x86_64__)
#include <immintrin.h>

/* Pairs whose duplicated cos / signed sin are expanded at once (interleaved
 * layout): 2 x 2 KiB of stack, covers head sizes up to 512 in one pass. */
#define ROPE_AVX2_CHUNK 256

/* How many heads ahead the output is prefetched when out of place. */
#define ROPE_AVX2_PF_HEADS 2

/* Lane mask (all ones in lanes < n, n in 0..8) for maskload/maskstore. */
static inline __m256i lanes_mask8(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

static inline __m256 flip8(__m256 v, __m256 m) { return _mm256_xor_ps(v, m); }

/* Prefetches the n floats at y + ahead (one line per 64 bytes). The address
 * may lie past the buffer (the last heads): prefetches never fault, and the
 * sum is formed in integers so no out-of-bounds pointer is ever made. */
static inline void prefetch_floats8(const float *y, int64_t ahead, int n) {
    uintptr_t p = (uintptr_t)y + (uintptr_t)ahead * sizeof(float);
    for (int j = 0; j < n; j += 16) _mm_prefetch((const char *)(p + (uintptr_t)j * sizeof(float)), _MM_HINT_T0);
}

/* x*cc + swap_pairs(x)*ss for one vector of interleaved pairs. */
static inline __m256 rot_interleaved8(__m256 v, __m256 c, __m256 s) {
    return _mm256_add_ps(_mm256_mul_ps(v, c), _mm256_mul_ps(_mm256_permute_ps(v, 0xB1), s));
}

/* One head (nf floats from xh/yh) with cc/ss from memory. */
static inline void head_interleaved8(float *yh, const float *xh, const float *cc, const float *ss,
                                     int nf_full, int n_tail, __m256i tail) {
    int j = 0;
    for (; j < nf_full; j += 8)
        _mm256_storeu_ps(yh + j, rot_interleaved8(_mm256_loadu_ps(xh + j), _mm256_load_ps(cc + j),
                                                  _mm256_load_ps(ss + j)));
    if (n_tail)
        _mm256_maskstore_ps(yh + j, tail, rot_interleaved8(_mm256_maskload_ps(xh + j, tail),
                                                           _mm256_load_ps(cc + j), _mm256_load_ps(ss + j)));
}

/*
 * Interleaved pairs (2i, 2i+1). For a vector x = [a0 b0 a1 b1 ...]:
 *   y = x * [c0 c0 c1 c1 ...] + swap_pairs(x) * [-s0 s0 -s1 s1 ...]
 * gives (a*c - b*s, b*c + a*s) per pair. The duplicated cos and signed sin
 * depend only on the row, so they are expanded once per token (per chunk of
 * pairs) into cc/ss and reused for every head.
 */
void rope_token_interleaved_avx2(float *y, const float *x, int64_t n_heads,
                                 int64_t y_head_stride, int64_t x_head_stride,
                                 const float *cos, const float *sin, int n_pairs, int backward) {
    _Alignas(32) float cc[2 * ROPE_AVX2_CHUNK];
    _Alignas(32) float ss[2 * ROPE_AVX2_CHUNK];
    const __m256i dup = _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3);
    const float z = 0.0f, m0 = -0.0f;  /* -0.0f is the sign bit alone */
    /* Forward negates the sin of the even lane (a's partner term -b*s);
     * backward (angle -theta) negates the odd lane instead. */
    const __m256 sign = backward ? _mm256_setr_ps(z, m0, z, m0, z, m0, z, m0)
                                 : _mm256_setr_ps(m0, z, m0, z, m0, z, m0, z);
    const int pf = y != x;
    const int64_t pf_ahead = ROPE_AVX2_PF_HEADS * y_head_stride;
    for (int p0 = 0; p0 < n_pairs; p0 += ROPE_AVX2_CHUNK) {
        const int np = n_pairs - p0 < ROPE_AVX2_CHUNK ? n_pairs - p0 : ROPE_AVX2_CHUNK;
        const int nf = 2 * np;          /* floats of this chunk in each head */
        for (int i = 0; i < np; i += 4) {
            /* 4 cos/sin into the low lane, then duplicated across pairs. */
            const __m128i m = _mm256_castsi256_si128(lanes_mask8(np - i));
            const __m256 c = _mm256_castps128_ps256(_mm_maskload_ps(cos + p0 + i, m));
            const __m256 s = _mm256_castps128_ps256(_mm_maskload_ps(sin + p0 + i, m));
            _mm256_store_ps(cc + 2 * i, _mm256_permutevar8x32_ps(c, dup));
            _mm256_store_ps(ss + 2 * i, flip8(_mm256_permutevar8x32_ps(s, dup), sign));
        }
        const int nf_full = nf & ~7;
        const int n_tail = nf - nf_full;
        const __m256i tail = lanes_mask8(n_tail);
        /* Two heads at a time: each cc/ss vector loaded serves two x vectors,
         * so loads stay within what the core issues per cycle. */
        int64_t h = 0;
        for (; h + 2 <= n_heads; h += 2) {
            const float *x0 = x + h * x_head_stride + 2 * (int64_t)p0, *x1 = x0 + x_head_stride;
            float *y0 = y + h * y_head_stride + 2 * (int64_t)p0, *y1 = y0 + y_head_stride;
            if (pf) {
                prefetch_floats8(y0, pf_ahead, nf);
                prefetch_floats8(y1, pf_ahead, nf);
            }
            int j = 0;
            for (; j < nf_full; j += 8) {
                const __m256 c = _mm256_load_ps(cc + j), s = _mm256_load_ps(ss + j);
                const __m256 v0 = _mm256_loadu_ps(x0 + j), v1 = _mm256_loadu_ps(x1 + j);
                _mm256_storeu_ps(y0 + j, rot_interleaved8(v0, c, s));
                _mm256_storeu_ps(y1 + j, rot_interleaved8(v1, c, s));
            }
            if (n_tail) {
                const __m256 c = _mm256_load_ps(cc + j), s = _mm256_load_ps(ss + j);
                const __m256 v0 = _mm256_maskload_ps(x0 + j, tail), v1 = _mm256_maskload_ps(x1 + j, tail);
                _mm256_maskstore_ps(y0 + j, tail, rot_interleaved8(v0, c, s));
                _mm256_maskstore_ps(y1 + j, tail, rot_interleaved8(v1, c, s));
            }
        }
        if (h < n_heads)   /* the last head of an odd count */
            head_interleaved8(y + h * y_head_stride + 2 * (int64_t)p0, x + h * x_head_stride + 2 * (int64_t)p0,
                              cc, ss, nf_full, n_tail, tail);
    }
}

/* One vector of half-layout pairs: a = x[i..], b = x[i+n_pairs..]. s is
 * already negated for backward. */
static inline void rot_half8(__m256 a, __m256 b, __m256 c, __m256 s, __m256 *ya, __m256 *yb) {
    *ya = _mm256_sub_ps(_mm256_mul_ps(a, c), _mm256_mul_ps(b, s));
    *yb = _mm256_add_ps(_mm256_mul_ps(a, s), _mm256_mul_ps(b, c));
}

/* One head: the first half (which == 0: y[i] = a*c - b*s), the second half
 * (which == 1: y[i+n_pairs] = a*s + b*c), or both at once (which < 0). */
static inline __attribute__((always_inline)) void head_half8(float *ya, float *yb, const float *xa, const float *xb,
                              const float *cos, const float *sin, __m256 neg, int n_pairs, int which) {
    const int full = n_pairs & ~7;
    const int n_tail = n_pairs - full;
    int i = 0;
    for (; i + 16 <= full; i += 16) {
        __m256 ra0, rb0, ra1, rb1;
        rot_half8(_mm256_loadu_ps(xa + i), _mm256_loadu_ps(xb + i), _mm256_loadu_ps(cos + i),
                  flip8(_mm256_loadu_ps(sin + i), neg), &ra0, &rb0);
        rot_half8(_mm256_loadu_ps(xa + i + 8), _mm256_loadu_ps(xb + i + 8), _mm256_loadu_ps(cos + i + 8),
                  flip8(_mm256_loadu_ps(sin + i + 8), neg), &ra1, &rb1);
        if (which <= 0) {
            _mm256_storeu_ps(ya + i, ra0);
            _mm256_storeu_ps(ya + i + 8, ra1);
        }
        if (which != 0) {
            _mm256_storeu_ps(yb + i, rb0);
            _mm256_storeu_ps(yb + i + 8, rb1);
        }
    }
    for (; i < full; i += 8) {
        __m256 ra, rb;
        rot_half8(_mm256_loadu_ps(xa + i), _mm256_loadu_ps(xb + i), _mm256_loadu_ps(cos + i),
                  flip8(_mm256_loadu_ps(sin + i), neg), &ra, &rb);
        if (which <= 0) _mm256_storeu_ps(ya + i, ra);
        if (which != 0) _mm256_storeu_ps(yb + i, rb);
    }
    if (n_tail) {
        const __m256i tail = lanes_mask8(n_tail);
        __m256 ra, rb;
        rot_half8(_mm256_maskload_ps(xa + i, tail), _mm256_maskload_ps(xb + i, tail),
                  _mm256_maskload_ps(cos + i, tail), flip8(_mm256_maskload_ps(sin + i, tail), neg), &ra, &rb);
        if (which <= 0) _mm256_maskstore_ps(ya + i, tail, ra);
        if (which != 0) _mm256_maskstore_ps(yb + i, tail, rb);
    }
}

/*
 * Half pairs (i, i + n_pairs): contiguous vectors of first halves a and second
 * halves b meet contiguous cos/sin, so no shuffles at all:
 *   y[i] = a*c - b*s,  y[i+n_pairs] = a*s + b*c.
 * Out of place the first halves are written before the second halves (the
 * inputs are read twice, from L1); in place both at once, since the first
 * half's store would destroy its own input.
 */
void rope_token_half_avx2(float *y, const float *x, int64_t n_heads,
                          int64_t y_head_stride, int64_t x_head_stride,
                          const float *cos, const float *sin, int n_pairs, int backward) {
    const __m256 neg = _mm256_set1_ps(backward ? -0.0f : 0.0f);
    const int pf = y != x;
    for (int64_t h = 0; h < n_heads; h++) {
        const float *xa = x + h * x_head_stride, *xb = xa + n_pairs;
        float *ya = y + h * y_head_stride, *yb = ya + n_pairs;
        if (pf) {
            prefetch_floats8(ya, ROPE_AVX2_PF_HEADS * y_head_stride, 2 * n_pairs);
            head_half8(ya, yb, xa, xb, cos, sin, neg, n_pairs, 0);
            head_half8(ya, yb, xa, xb, cos, sin, neg, n_pairs, 1);
        } else {
            head_half8(ya, yb, xa, xb, cos, sin, neg, n_pairs, -1);
        }
    }
}
#endif
