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
 *
 * Speed (measured with bench/rope_bench.c and scratch variants): RoPE moves
 * 8 bytes per float and computes little, so what matters is how memory is
 * touched. (1) For rotary_dim <= 128 (interleaved) or <= 256 (half) the
 * cos/sin vectors of the token stay in registers for all heads and each head
 * is one fully unrolled block, so every load instruction walks the buffer
 * with a fixed stride. (2) Out of place,
 * each output line must first be fetched (read for ownership); the kernels
 * prefetch the output of the head two ahead and write each head front to
 * back: writing the half layout's two halves alternately was ~1/3 slower.
 */
#include <stdint.h>

#include "rope/kernels.h"

#if defined(__x86_64__)
#include <immintrin.h>

/* Pairs whose duplicated cos / signed sin are expanded at once (interleaved
 * layout): 2 x 2 KiB of stack, covers head sizes up to 512 in one pass. */
#define ROPE_AVX512_CHUNK 256

/* Vectors of cos (and of sin) kept in registers across heads: 8 + 8 of the 32
 * zmm registers, enough for rotary_dim <= 128 in the interleaved layout and
 * rotary_dim <= 256 in the half layout. */
#define ROPE_AVX512_REG_VECS 8

/* How many heads ahead the output is prefetched when out of place. */
#define ROPE_AVX512_PF_HEADS 2

/* Full unrolling of the loops over a head's vectors (a constant count after
 * inlining) turns the small arrays of vectors into registers. */
#if defined(__clang__)
#define ROPE_UNROLL _Pragma("clang loop unroll(full)")
#else
#define ROPE_UNROLL _Pragma("GCC unroll 8")
#endif

/* Only AVX-512F intrinsics are used (the float xor is DQ, so the sign flip
 * goes through the integer domain); cpu.c still checks BW/VL/DQ too, since
 * the compiler may use them with the flags this file is built with. */

/* Flips the sign bits set in m. */
static inline __m512 flip(__m512 v, __m512i m) {
    return _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(v), m));
}

/* Mask of the first n (0..16) lanes. */
static inline __mmask16 lanes_mask(int n) {
    return (__mmask16)((1u << n) - 1u);
}

/* Prefetches the n floats at y + ahead (one line per 64 bytes). The address
 * may lie past the buffer (the last heads): prefetches never fault, and the
 * sum is formed in integers so no out-of-bounds pointer is ever made. */
static inline void prefetch_floats(const float *y, int64_t ahead, int n) {
    uintptr_t p = (uintptr_t)y + (uintptr_t)ahead * sizeof(float);
    for (int j = 0; j < n; j += 16) _mm_prefetch((const char *)(p + (uintptr_t)j * sizeof(float)), _MM_HINT_T0);
}

/* x*cc + swap_pairs(x)*ss for one vector of interleaved pairs. */
static inline __m512 rot_interleaved16(__m512 v, __m512 c, __m512 s) {
    return _mm512_add_ps(_mm512_mul_ps(v, c), _mm512_mul_ps(_mm512_permute_ps(v, 0xB1), s));
}

/* Half-layout pairs: a = x[i..], b = x[i+n_pairs..]; s already negated for
 * backward. *ya = a*c - b*s, *yb = a*s + b*c. */
static inline void rot_half16(__m512 a, __m512 b, __m512 c, __m512 s, __m512 *ya, __m512 *yb) {
    *ya = _mm512_sub_ps(_mm512_mul_ps(a, c), _mm512_mul_ps(b, s));
    *yb = _mm512_add_ps(_mm512_mul_ps(a, s), _mm512_mul_ps(b, c));
}

/* ------------------------------------------------------------ interleaved */

/* Every head for one chunk of nf floats, nf <= 16 * nv, nv (1..8) a constant
 * after inlining: the expanded cos/sin (cc/ss) are loaded once into
 * registers; the last vector of each head is masked by `last`. */
static inline __attribute__((always_inline)) void
heads_interleaved_reg(float *y, const float *x, int64_t n_heads, int64_t y_head_stride,
                      int64_t x_head_stride, const float *cc, const float *ss, const int nv,
                      __mmask16 last, int nf, int pf) {
    __m512 c[ROPE_AVX512_REG_VECS], s[ROPE_AVX512_REG_VECS];
    /* Full unrolling turns c[] and s[] into registers (else they live on the stack). */
ROPE_UNROLL
    for (int v = 0; v < nv; v++) {
        c[v] = _mm512_load_ps(cc + 16 * v);
        s[v] = _mm512_load_ps(ss + 16 * v);
    }
    for (int64_t h = 0; h < n_heads; h++) {
        const float *xh = x + h * x_head_stride;
        float *yh = y + h * y_head_stride;
        if (pf) prefetch_floats(yh, ROPE_AVX512_PF_HEADS * y_head_stride, nf);
ROPE_UNROLL
        for (int v = 0; v < nv - 1; v++)
            _mm512_storeu_ps(yh + 16 * v, rot_interleaved16(_mm512_loadu_ps(xh + 16 * v), c[v], s[v]));
        const int v = nv - 1;
        _mm512_mask_storeu_ps(yh + 16 * v, last,
                              rot_interleaved16(_mm512_maskz_loadu_ps(last, xh + 16 * v), c[v], s[v]));
    }
}

/* Every head for one chunk of nf floats of any length, cc/ss read from memory. */
static void heads_interleaved_mem(float *y, const float *x, int64_t n_heads, int64_t y_head_stride,
                                  int64_t x_head_stride, const float *cc, const float *ss, int nf, int pf) {
    const int nf_full = nf & ~15;
    const __mmask16 tail = lanes_mask(nf - nf_full);
    for (int64_t h = 0; h < n_heads; h++) {
        const float *xh = x + h * x_head_stride;
        float *yh = y + h * y_head_stride;
        if (pf) prefetch_floats(yh, ROPE_AVX512_PF_HEADS * y_head_stride, nf);
        int j = 0;
        for (; j < nf_full; j += 16)
            _mm512_storeu_ps(yh + j, rot_interleaved16(_mm512_loadu_ps(xh + j),
                                                       _mm512_load_ps(cc + j), _mm512_load_ps(ss + j)));
        if (tail)
            _mm512_mask_storeu_ps(yh + j, tail, rot_interleaved16(_mm512_maskz_loadu_ps(tail, xh + j),
                                                                  _mm512_load_ps(cc + j), _mm512_load_ps(ss + j)));
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
    const int sb = (int)0x80000000;
    /* Forward negates the sin of the even lane (a's partner term -b*s);
     * backward (angle -theta) negates the odd lane instead. */
    const __m512i sign = backward ? _mm512_set_epi32(sb, 0, sb, 0, sb, 0, sb, 0, sb, 0, sb, 0, sb, 0, sb, 0)
                                  : _mm512_set_epi32(0, sb, 0, sb, 0, sb, 0, sb, 0, sb, 0, sb, 0, sb, 0, sb);
    const int pf = y != x;
    for (int p0 = 0; p0 < n_pairs; p0 += ROPE_AVX512_CHUNK) {
        const int np = n_pairs - p0 < ROPE_AVX512_CHUNK ? n_pairs - p0 : ROPE_AVX512_CHUNK;
        const int nf = 2 * np;          /* floats of this chunk in each head */
        for (int i = 0; i < np; i += 8) {
            /* 8 cos/sin into the low half, then duplicated across pairs. */
            const __mmask16 m = lanes_mask(np - i >= 8 ? 8 : np - i);
            const __m512 c = _mm512_maskz_loadu_ps(m, cos + p0 + i);
            const __m512 s = _mm512_maskz_loadu_ps(m, sin + p0 + i);
            _mm512_store_ps(cc + 2 * i, _mm512_permutexvar_ps(dup, c));
            _mm512_store_ps(ss + 2 * i, flip(_mm512_permutexvar_ps(dup, s), sign));
        }
        const float *xc = x + 2 * (int64_t)p0;
        float *yc = y + 2 * (int64_t)p0;
        if (nf > 16 * ROPE_AVX512_REG_VECS) {
            heads_interleaved_mem(yc, xc, n_heads, y_head_stride, x_head_stride, cc, ss, nf, pf);
            continue;
        }
        const int nv = (nf + 15) / 16;
        const __mmask16 last = lanes_mask(nf - 16 * (nv - 1));
#define ROPE_IL_CASE(n) case n: \
        heads_interleaved_reg(yc, xc, n_heads, y_head_stride, x_head_stride, cc, ss, n, last, nf, pf); break;
        switch (nv) {
        ROPE_IL_CASE(1) ROPE_IL_CASE(2) ROPE_IL_CASE(3) ROPE_IL_CASE(4)
        ROPE_IL_CASE(5) ROPE_IL_CASE(6) ROPE_IL_CASE(7) default: ROPE_IL_CASE(8)
        }
#undef ROPE_IL_CASE
    }
}

/* ------------------------------------------------------------ half */

/* Every head for n_pairs <= 16 * nv, nv (1..8) a constant after inlining:
 * cos/sin loaded once into registers, the last vector of each half masked by
 * `last`. Each head is read and written front to back (all of the first half,
 * then all of the second). */
static inline __attribute__((always_inline)) void
heads_half_reg(float *y, const float *x, int64_t n_heads, int64_t y_head_stride,
               int64_t x_head_stride, const float *cos, const float *sin, __m512i neg,
               int n_pairs, const int nv, __mmask16 last, int pf) {
    __m512 c[ROPE_AVX512_REG_VECS], s[ROPE_AVX512_REG_VECS];
ROPE_UNROLL
    for (int v = 0; v < nv; v++) {
        const __mmask16 m = v == nv - 1 ? last : (__mmask16)0xFFFF;
        c[v] = _mm512_maskz_loadu_ps(m, cos + 16 * v);
        s[v] = flip(_mm512_maskz_loadu_ps(m, sin + 16 * v), neg);
    }
    for (int64_t h = 0; h < n_heads; h++) {
        const float *xa = x + h * x_head_stride, *xb = xa + n_pairs;
        float *ya = y + h * y_head_stride, *yb = ya + n_pairs;
        if (pf) prefetch_floats(ya, ROPE_AVX512_PF_HEADS * y_head_stride, 2 * n_pairs);
        __m512 a[ROPE_AVX512_REG_VECS], b[ROPE_AVX512_REG_VECS];
ROPE_UNROLL
        for (int v = 0; v < nv; v++)
            a[v] = v == nv - 1 ? _mm512_maskz_loadu_ps(last, xa + 16 * v) : _mm512_loadu_ps(xa + 16 * v);
ROPE_UNROLL
        for (int v = 0; v < nv; v++)
            b[v] = v == nv - 1 ? _mm512_maskz_loadu_ps(last, xb + 16 * v) : _mm512_loadu_ps(xb + 16 * v);
ROPE_UNROLL
        for (int v = 0; v < nv; v++) rot_half16(a[v], b[v], c[v], s[v], &a[v], &b[v]);
ROPE_UNROLL
        for (int v = 0; v < nv; v++) {
            if (v == nv - 1) _mm512_mask_storeu_ps(ya + 16 * v, last, a[v]);
            else _mm512_storeu_ps(ya + 16 * v, a[v]);
        }
ROPE_UNROLL
        for (int v = 0; v < nv; v++) {
            if (v == nv - 1) _mm512_mask_storeu_ps(yb + 16 * v, last, b[v]);
            else _mm512_storeu_ps(yb + 16 * v, b[v]);
        }
    }
}

/* One half (first: y[i] = a*c - b*s, else y[i+n_pairs] = a*s + b*c) of one
 * head, or both at once (which < 0), for any n_pairs. */
static inline __attribute__((always_inline)) void head_half_mem(float *ya, float *yb, const float *xa, const float *xb,
                                 const float *cos, const float *sin, __m512i neg, int n_pairs, int which) {
    const int full = n_pairs & ~15;
    const __mmask16 tail = lanes_mask(n_pairs - full);
    int i = 0;
    for (; i <= full; i += 16) {
        const __mmask16 m = i < full ? (__mmask16)0xFFFF : tail;
        if (!m) break;
        __m512 ra, rb;
        rot_half16(_mm512_maskz_loadu_ps(m, xa + i), _mm512_maskz_loadu_ps(m, xb + i),
                   _mm512_maskz_loadu_ps(m, cos + i), flip(_mm512_maskz_loadu_ps(m, sin + i), neg), &ra, &rb);
        if (which <= 0) _mm512_mask_storeu_ps(ya + i, m, ra);
        if (which != 0) _mm512_mask_storeu_ps(yb + i, m, rb);
    }
}

/* Every head for any n_pairs, cos/sin read from memory. Out of place the
 * first halves are written before the second halves (front to back);
 * in place both at once (the first half's store would destroy its input). */
static void heads_half_mem(float *y, const float *x, int64_t n_heads, int64_t y_head_stride,
                           int64_t x_head_stride, const float *cos, const float *sin, __m512i neg,
                           int n_pairs, int pf) {
    for (int64_t h = 0; h < n_heads; h++) {
        const float *xa = x + h * x_head_stride, *xb = xa + n_pairs;
        float *ya = y + h * y_head_stride, *yb = ya + n_pairs;
        if (pf) {
            prefetch_floats(ya, ROPE_AVX512_PF_HEADS * y_head_stride, 2 * n_pairs);
            head_half_mem(ya, yb, xa, xb, cos, sin, neg, n_pairs, 0);
            head_half_mem(ya, yb, xa, xb, cos, sin, neg, n_pairs, 1);
        } else {
            head_half_mem(ya, yb, xa, xb, cos, sin, neg, n_pairs, -1);
        }
    }
}

/*
 * Half pairs (i, i + n_pairs): contiguous vectors of first halves a and second
 * halves b meet contiguous cos/sin, so no shuffles at all:
 *   y[i] = a*c - b*s,  y[i+n_pairs] = a*s + b*c.
 */
void rope_token_half_avx512(float *y, const float *x, int64_t n_heads,
                            int64_t y_head_stride, int64_t x_head_stride,
                            const float *cos, const float *sin, int n_pairs, int backward) {
    const __m512i neg = _mm512_set1_epi32(backward ? (int)0x80000000 : 0);
    const int pf = y != x;
    if (n_pairs <= 0) return;
    if (n_pairs > 16 * ROPE_AVX512_REG_VECS) {
        heads_half_mem(y, x, n_heads, y_head_stride, x_head_stride, cos, sin, neg, n_pairs, pf);
        return;
    }
    const int nv = (n_pairs + 15) / 16;
    const __mmask16 last = lanes_mask(n_pairs - 16 * (nv - 1));
#define ROPE_HALF_CASE(n) case n: \
    heads_half_reg(y, x, n_heads, y_head_stride, x_head_stride, cos, sin, neg, n_pairs, n, last, pf); break;
    switch (nv) {
    ROPE_HALF_CASE(1) ROPE_HALF_CASE(2) ROPE_HALF_CASE(3) ROPE_HALF_CASE(4)
    ROPE_HALF_CASE(5) ROPE_HALF_CASE(6) ROPE_HALF_CASE(7) default: ROPE_HALF_CASE(8)
    }
#undef ROPE_HALF_CASE
}
#endif
