/*
 * matvec_avx512.c — AVX-512 row kernel for matvec_forward: four rows at a
 * time share each 16-float load of x, with two accumulators per row (eight
 * independent FMA chains hide the FMA latency while the loads stream); the
 * last C % 16 floats use a masked load, so no scalar tail. Every kernel
 * prefetches the weight stream MV_PF_BYTES ahead (see there). Each row's sum is
 * formed in the same lane order whatever the row grouping, so a row gives
 * the same bits as part of a group of four or alone. Also here: the bf16
 * kernels (even/odd split for plain AVX-512, vdpbf16ps for AVX512-BF16)
 * with their input preparation, the attention products over strided KV
 * cache rows, and the streaming-read probe the benchmark uses for its
 * roofline. Loops over a handful of accumulators are written out by hand:
 * gcc -O2 keeps an array of __m512 accumulators in memory.
 */
#include "nn/matvec.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <stddef.h>

/* Software prefetch distance, in bytes ahead of the weight stream: decode
 * reads each weight once, and the rows are only a few KB, so the hardware
 * prefetchers (which stop at 4 KB pages) leave the core waiting; 8 KB ahead
 * measured best on the development machine (a 260 MB-L3 Xeon VM). */
#ifndef MV_PF_BYTES
#define MV_PF_BYTES 8192
#endif

static inline float row_dot(const float *w, const float *x, int C) {
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
    int c = 0;
    for (; c + 32 <= C; c += 32) {
        a0 = _mm512_fmadd_ps(_mm512_loadu_ps(w + c), _mm512_loadu_ps(x + c), a0);
        a1 = _mm512_fmadd_ps(_mm512_loadu_ps(w + c + 16), _mm512_loadu_ps(x + c + 16), a1);
    }
    for (; c + 16 <= C; c += 16)
        a0 = _mm512_fmadd_ps(_mm512_loadu_ps(w + c), _mm512_loadu_ps(x + c), a0);
    if (c < C) {
        __mmask16 m = (__mmask16)((1u << (C - c)) - 1u);
        a1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, w + c), _mm512_maskz_loadu_ps(m, x + c), a1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
}

void matvec_rows_avx512(float *out, const float *inp, const float *weight, int C, int r0, int r1) {
    int o = r0;
    /* Four rows together: the same arithmetic as row_dot, row by row. */
    for (; o + 4 <= r1; o += 4) {
        const float *w0 = weight + (size_t)o * (size_t)C;
        const float *w1 = w0 + C, *w2 = w1 + C, *w3 = w2 + C;
        __m512 a00 = _mm512_setzero_ps(), a01 = _mm512_setzero_ps();
        __m512 a10 = _mm512_setzero_ps(), a11 = _mm512_setzero_ps();
        __m512 a20 = _mm512_setzero_ps(), a21 = _mm512_setzero_ps();
        __m512 a30 = _mm512_setzero_ps(), a31 = _mm512_setzero_ps();
        int c = 0;
        for (; c + 32 <= C; c += 32) {
            __m512 x0 = _mm512_loadu_ps(inp + c), x1 = _mm512_loadu_ps(inp + c + 16);
            _mm_prefetch((const char *)(w0 + c) + MV_PF_BYTES, _MM_HINT_T0);
            _mm_prefetch((const char *)(w0 + c) + MV_PF_BYTES + 64, _MM_HINT_T0);
            _mm_prefetch((const char *)(w1 + c) + MV_PF_BYTES, _MM_HINT_T0);
            _mm_prefetch((const char *)(w1 + c) + MV_PF_BYTES + 64, _MM_HINT_T0);
            _mm_prefetch((const char *)(w2 + c) + MV_PF_BYTES, _MM_HINT_T0);
            _mm_prefetch((const char *)(w2 + c) + MV_PF_BYTES + 64, _MM_HINT_T0);
            _mm_prefetch((const char *)(w3 + c) + MV_PF_BYTES, _MM_HINT_T0);
            _mm_prefetch((const char *)(w3 + c) + MV_PF_BYTES + 64, _MM_HINT_T0);
            a00 = _mm512_fmadd_ps(_mm512_loadu_ps(w0 + c), x0, a00);
            a01 = _mm512_fmadd_ps(_mm512_loadu_ps(w0 + c + 16), x1, a01);
            a10 = _mm512_fmadd_ps(_mm512_loadu_ps(w1 + c), x0, a10);
            a11 = _mm512_fmadd_ps(_mm512_loadu_ps(w1 + c + 16), x1, a11);
            a20 = _mm512_fmadd_ps(_mm512_loadu_ps(w2 + c), x0, a20);
            a21 = _mm512_fmadd_ps(_mm512_loadu_ps(w2 + c + 16), x1, a21);
            a30 = _mm512_fmadd_ps(_mm512_loadu_ps(w3 + c), x0, a30);
            a31 = _mm512_fmadd_ps(_mm512_loadu_ps(w3 + c + 16), x1, a31);
        }
        for (; c + 16 <= C; c += 16) {
            __m512 x0 = _mm512_loadu_ps(inp + c);
            a00 = _mm512_fmadd_ps(_mm512_loadu_ps(w0 + c), x0, a00);
            a10 = _mm512_fmadd_ps(_mm512_loadu_ps(w1 + c), x0, a10);
            a20 = _mm512_fmadd_ps(_mm512_loadu_ps(w2 + c), x0, a20);
            a30 = _mm512_fmadd_ps(_mm512_loadu_ps(w3 + c), x0, a30);
        }
        if (c < C) {
            __mmask16 m = (__mmask16)((1u << (C - c)) - 1u);
            __m512 x0 = _mm512_maskz_loadu_ps(m, inp + c);
            a01 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, w0 + c), x0, a01);
            a11 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, w1 + c), x0, a11);
            a21 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, w2 + c), x0, a21);
            a31 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, w3 + c), x0, a31);
        }
        out[o] = _mm512_reduce_add_ps(_mm512_add_ps(a00, a01));
        out[o + 1] = _mm512_reduce_add_ps(_mm512_add_ps(a10, a11));
        out[o + 2] = _mm512_reduce_add_ps(_mm512_add_ps(a20, a21));
        out[o + 3] = _mm512_reduce_add_ps(_mm512_add_ps(a30, a31));
    }
    for (; o < r1; o++) out[o] = row_dot(weight + (size_t)o * (size_t)C, inp, C);
}

/* 16 bf16 weights -> 16 floats: zero-extend to 32 bits, shift into the
 * upper half (exact). */
static inline __m512 bf16x16(const uint16_t *p) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)p)), 16));
}

static inline __m512 bf16x16_mask(const uint16_t *p, __mmask16 m) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, p)), 16));
}

/* Even/odd split of 32 bf16 weights in one 64-byte load: as 16 32-bit
 * words, word i holds w[2i] in its low half and w[2i+1] in its high half, so
 * a shift left by 16 gives the floats w[0], w[2], ... and a mask of the high
 * half gives w[1], w[3], ... — one instruction each, no shuffle. They meet x
 * permuted the same way (xp: per 32-block, 16 even then 16 odd entries).
 * Per row: even products into a0, odd into a1, a 16-wide step (bf16x16
 * against x in order) into a0, the masked tail into a1; the row is
 * reduce(a0 + a1). The one-row and the four-row loops below do exactly
 * this, so a row's bits do not depend on its group. */
#define EO_HI _mm512_set1_epi32((int)0xFFFF0000u)
#define EO_EVEN(v) _mm512_castsi512_ps(_mm512_slli_epi32((v), 16))
#define EO_ODD(v) _mm512_castsi512_ps(_mm512_and_si512((v), EO_HI))

static inline float bf16_row_dot_eo(const uint16_t *w, const float *x, const float *xp, int C) {
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
    int c = 0;
    for (; c + 32 <= C; c += 32) {
        __m512i v = _mm512_loadu_si512((const void *)(w + c));
        _mm_prefetch((const char *)(w + c) + MV_PF_BYTES, _MM_HINT_T0);
        a0 = _mm512_fmadd_ps(EO_EVEN(v), _mm512_loadu_ps(xp + c), a0);
        a1 = _mm512_fmadd_ps(EO_ODD(v), _mm512_loadu_ps(xp + c + 16), a1);
    }
    for (; c + 16 <= C; c += 16) a0 = _mm512_fmadd_ps(bf16x16(w + c), _mm512_loadu_ps(x + c), a0);
    if (c < C) {
        __mmask16 m = (__mmask16)((1u << (C - c)) - 1u);
        a1 = _mm512_fmadd_ps(bf16x16_mask(w + c, m), _mm512_maskz_loadu_ps(m, x + c), a1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
}

void matvec_bf16_permute_x_avx512(float *xp, const float *x, int C) {
    const __m512i ev = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i od = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    int c = 0;
    for (; c + 32 <= C; c += 32) {
        __m512 a = _mm512_loadu_ps(x + c), b = _mm512_loadu_ps(x + c + 16);
        _mm512_storeu_ps(xp + c, _mm512_permutex2var_ps(a, ev, b));
        _mm512_storeu_ps(xp + c + 16, _mm512_permutex2var_ps(a, od, b));
    }
    for (; c < C; c++) xp[c] = x[c];
}

/* Four rows share each pair of x loads: eight independent FMA chains, and
 * four weight streams in flight (one row alone measured ~40% slower from
 * L2 and a little slower from memory on the development machine). */
void matvec_bf16_rows_avx512(float *out, const float *inp, const float *xp, const uint16_t *weight, int C,
                             int r0, int r1) {
    int o = r0;
    for (; o + 4 <= r1; o += 4) {
        const uint16_t *w0 = weight + (size_t)o * (size_t)C;
        const uint16_t *w1 = w0 + C, *w2 = w1 + C, *w3 = w2 + C;
        __m512 a00 = _mm512_setzero_ps(), a01 = _mm512_setzero_ps();
        __m512 a10 = _mm512_setzero_ps(), a11 = _mm512_setzero_ps();
        __m512 a20 = _mm512_setzero_ps(), a21 = _mm512_setzero_ps();
        __m512 a30 = _mm512_setzero_ps(), a31 = _mm512_setzero_ps();
        int c = 0;
        for (; c + 32 <= C; c += 32) {
            __m512 x0 = _mm512_loadu_ps(xp + c), x1 = _mm512_loadu_ps(xp + c + 16);
            _mm_prefetch((const char *)(w0 + c) + MV_PF_BYTES, _MM_HINT_T0);
            _mm_prefetch((const char *)(w1 + c) + MV_PF_BYTES, _MM_HINT_T0);
            _mm_prefetch((const char *)(w2 + c) + MV_PF_BYTES, _MM_HINT_T0);
            _mm_prefetch((const char *)(w3 + c) + MV_PF_BYTES, _MM_HINT_T0);
            __m512i v0 = _mm512_loadu_si512((const void *)(w0 + c)), v1 = _mm512_loadu_si512((const void *)(w1 + c));
            __m512i v2 = _mm512_loadu_si512((const void *)(w2 + c)), v3 = _mm512_loadu_si512((const void *)(w3 + c));
            a00 = _mm512_fmadd_ps(EO_EVEN(v0), x0, a00);
            a01 = _mm512_fmadd_ps(EO_ODD(v0), x1, a01);
            a10 = _mm512_fmadd_ps(EO_EVEN(v1), x0, a10);
            a11 = _mm512_fmadd_ps(EO_ODD(v1), x1, a11);
            a20 = _mm512_fmadd_ps(EO_EVEN(v2), x0, a20);
            a21 = _mm512_fmadd_ps(EO_ODD(v2), x1, a21);
            a30 = _mm512_fmadd_ps(EO_EVEN(v3), x0, a30);
            a31 = _mm512_fmadd_ps(EO_ODD(v3), x1, a31);
        }
        for (; c + 16 <= C; c += 16) {
            __m512 x0 = _mm512_loadu_ps(inp + c);
            a00 = _mm512_fmadd_ps(bf16x16(w0 + c), x0, a00);
            a10 = _mm512_fmadd_ps(bf16x16(w1 + c), x0, a10);
            a20 = _mm512_fmadd_ps(bf16x16(w2 + c), x0, a20);
            a30 = _mm512_fmadd_ps(bf16x16(w3 + c), x0, a30);
        }
        if (c < C) {
            __mmask16 m = (__mmask16)((1u << (C - c)) - 1u);
            __m512 x0 = _mm512_maskz_loadu_ps(m, inp + c);
            a01 = _mm512_fmadd_ps(bf16x16_mask(w0 + c, m), x0, a01);
            a11 = _mm512_fmadd_ps(bf16x16_mask(w1 + c, m), x0, a11);
            a21 = _mm512_fmadd_ps(bf16x16_mask(w2 + c, m), x0, a21);
            a31 = _mm512_fmadd_ps(bf16x16_mask(w3 + c, m), x0, a31);
        }
        out[o] = _mm512_reduce_add_ps(_mm512_add_ps(a00, a01));
        out[o + 1] = _mm512_reduce_add_ps(_mm512_add_ps(a10, a11));
        out[o + 2] = _mm512_reduce_add_ps(_mm512_add_ps(a20, a21));
        out[o + 3] = _mm512_reduce_add_ps(_mm512_add_ps(a30, a31));
    }
    for (; o < r1; o++) out[o] = bf16_row_dot_eo(weight + (size_t)o * (size_t)C, inp, xp, C);
}

/* AVX512-BF16: vdpbf16ps adds w[2i] x[2i] + w[2i+1] x[2i+1] into lane i,
 * products exact, sums in float. Four rows share the x loads; x = hi + lo
 * takes two dot products per 32 weights (into h and l); the tail uses
 * masked loads (zeros add nothing); the row is reduce(h + l). The four-row
 * loop and the one-row one do exactly this per row, so a row's bits do not
 * depend on its group. Compiled for AVX512-BF16 by attribute (the
 * Makefile's AVX-512 flags do not include it); only called when the CPU has
 * it. */
#define BF16DP_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))

BF16DP_TARGET static inline __m512 bf16dp_step(__m512 acc, __m512i w, __m512i x) {
    return _mm512_dpbf16_ps(acc, (__m512bh)w, (__m512bh)x);
}

/* xhl (2C bf16) = hi (C) then lo (C): hi = bf16(x) rounded to nearest even
 * (vcvtne2ps2bf16), lo = bf16(x - hi) (x - hi is exact in float), so hi +
 * lo equals x to within 2^-8 of |x - hi| <= 2^-17 |x|. The instruction
 * flushes subnormal inputs to a signed zero (error < 2^-126 absolute); the
 * scalar tail (past the last 32-block) keeps them. */
BF16DP_TARGET void matvec_bf16dp_split_x_avx512(uint16_t *xhl, const float *x, int C) {
    uint16_t *xh = xhl, *xl = xhl + C;
    int c = 0;
    for (; c + 32 <= C; c += 32) {
        __m512 a = _mm512_loadu_ps(x + c), b = _mm512_loadu_ps(x + c + 16);
        __m512i h = (__m512i)_mm512_cvtne2ps_pbh(b, a);   /* element order: a then b */
        __m512 ha = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm512_castsi512_si256(h)), 16));
        __m512 hb = _mm512_castsi512_ps(
            _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm512_extracti64x4_epi64(h, 1)), 16));
        __m512i l = (__m512i)_mm512_cvtne2ps_pbh(_mm512_sub_ps(b, hb), _mm512_sub_ps(a, ha));
        _mm512_storeu_si512((void *)(xh + c), h);
        _mm512_storeu_si512((void *)(xl + c), l);
    }
    for (; c < C; c++) {
        xh[c] = bf16_from_float(x[c]);
        xl[c] = bf16_from_float(x[c] - bf16_to_float(xh[c]));
    }
}

/* xh (C bf16) = bf16(x), round to nearest even (vcvtne2ps2bf16; subnormal
 * x flushed to a signed zero, as above; the scalar tail keeps them). */
BF16DP_TARGET void matvec_bf16dp_round_x_avx512(uint16_t *xh, const float *x, int C) {
    int c = 0;
    for (; c + 32 <= C; c += 32) {
        __m512 a = _mm512_loadu_ps(x + c), b = _mm512_loadu_ps(x + c + 16);
        _mm512_storeu_si512((void *)(xh + c), (__m512i)_mm512_cvtne2ps_pbh(b, a));
    }
    for (; c < C; c++) xh[c] = bf16_from_float(x[c]);
}

/* One dot product per 32 weights against the rounded x: lane i sums
 * w[2i] x[2i] + w[2i+1] x[2i+1] (exact products, float sums); the four-row
 * loop and the one-row one do the same per row (same bits in any group). */
BF16DP_TARGET static inline float bf16dp1_row(const uint16_t *w, const uint16_t *xh, int C) {
    __m512 h = _mm512_setzero_ps();
    int c = 0;
    for (; c + 32 <= C; c += 32) {
        __m512i v = _mm512_loadu_si512((const void *)(w + c));
        _mm_prefetch((const char *)(w + c) + MV_PF_BYTES, _MM_HINT_T0);
        h = bf16dp_step(h, v, _mm512_loadu_si512((const void *)(xh + c)));
    }
    if (c < C) {
        __mmask32 m = (__mmask32)((1ull << (C - c)) - 1ull);
        h = bf16dp_step(h, _mm512_maskz_loadu_epi16(m, w + c), _mm512_maskz_loadu_epi16(m, xh + c));
    }
    return _mm512_reduce_add_ps(h);
}

BF16DP_TARGET void matvec_bf16dp1_rows_avx512(float *out, const uint16_t *xh, const uint16_t *weight, int C,
                                              int r0, int r1) {
    int o = r0;
    for (; o + 4 <= r1; o += 4) {
        const uint16_t *w0 = weight + (size_t)o * (size_t)C;
        const uint16_t *w1 = w0 + C, *w2 = w1 + C, *w3 = w2 + C;
        __m512 h0 = _mm512_setzero_ps(), h1 = _mm512_setzero_ps(), h2 = _mm512_setzero_ps(), h3 = _mm512_setzero_ps();
        int c = 0;
        for (; c + 32 <= C; c += 32) {
            __m512i a = _mm512_loadu_si512((const void *)(xh + c));
            _mm_prefetch((const char *)(w0 + c) + MV_PF_BYTES, _MM_HINT_T0);
            _mm_prefetch((const char *)(w1 + c) + MV_PF_BYTES, _MM_HINT_T0);
            _mm_prefetch((const char *)(w2 + c) + MV_PF_BYTES, _MM_HINT_T0);
            _mm_prefetch((const char *)(w3 + c) + MV_PF_BYTES, _MM_HINT_T0);
            h0 = bf16dp_step(h0, _mm512_loadu_si512((const void *)(w0 + c)), a);
            h1 = bf16dp_step(h1, _mm512_loadu_si512((const void *)(w1 + c)), a);
            h2 = bf16dp_step(h2, _mm512_loadu_si512((const void *)(w2 + c)), a);
            h3 = bf16dp_step(h3, _mm512_loadu_si512((const void *)(w3 + c)), a);
        }
        if (c < C) {
            __mmask32 m = (__mmask32)((1ull << (C - c)) - 1ull);
            __m512i a = _mm512_maskz_loadu_epi16(m, xh + c);
            h0 = bf16dp_step(h0, _mm512_maskz_loadu_epi16(m, w0 + c), a);
            h1 = bf16dp_step(h1, _mm512_maskz_loadu_epi16(m, w1 + c), a);
            h2 = bf16dp_step(h2, _mm512_maskz_loadu_epi16(m, w2 + c), a);
            h3 = bf16dp_step(h3, _mm512_maskz_loadu_epi16(m, w3 + c), a);
        }
        out[o] = _mm512_reduce_add_ps(h0);
        out[o + 1] = _mm512_reduce_add_ps(h1);
        out[o + 2] = _mm512_reduce_add_ps(h2);
        out[o + 3] = _mm512_reduce_add_ps(h3);
    }
    for (; o < r1; o++) out[o] = bf16dp1_row(weight + (size_t)o * (size_t)C, xh, C);
}

BF16DP_TARGET static inline float bf16dp_row(const uint16_t *w, const uint16_t *xh, const uint16_t *xl, int C) {
    __m512 h = _mm512_setzero_ps(), l = _mm512_setzero_ps();
    int c = 0;
    for (; c + 32 <= C; c += 32) {
        __m512i v = _mm512_loadu_si512((const void *)(w + c));
        _mm_prefetch((const char *)(w + c) + MV_PF_BYTES, _MM_HINT_T0);
        h = bf16dp_step(h, v, _mm512_loadu_si512((const void *)(xh + c)));
        l = bf16dp_step(l, v, _mm512_loadu_si512((const void *)(xl + c)));
    }
    if (c < C) {
        __mmask32 m = (__mmask32)((1ull << (C - c)) - 1ull);
        __m512i v = _mm512_maskz_loadu_epi16(m, w + c);
        h = bf16dp_step(h, v, _mm512_maskz_loadu_epi16(m, xh + c));
        l = bf16dp_step(l, v, _mm512_maskz_loadu_epi16(m, xl + c));
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(h, l));
}

BF16DP_TARGET void matvec_bf16dp_rows_avx512(float *out, const uint16_t *xhl, const uint16_t *weight, int C,
                                             int r0, int r1) {
    const uint16_t *xh = xhl, *xl = xhl + C;
    int o = r0;
    for (; o + 4 <= r1; o += 4) {
        const uint16_t *w0 = weight + (size_t)o * (size_t)C;
        const uint16_t *w1 = w0 + C, *w2 = w1 + C, *w3 = w2 + C;
        __m512 h0 = _mm512_setzero_ps(), l0 = _mm512_setzero_ps(), h1 = _mm512_setzero_ps(), l1 = _mm512_setzero_ps();
        __m512 h2 = _mm512_setzero_ps(), l2 = _mm512_setzero_ps(), h3 = _mm512_setzero_ps(), l3 = _mm512_setzero_ps();
        int c = 0;
        for (; c + 32 <= C; c += 32) {
            __m512i a = _mm512_loadu_si512((const void *)(xh + c)), b = _mm512_loadu_si512((const void *)(xl + c));
            _mm_prefetch((const char *)(w0 + c) + MV_PF_BYTES, _MM_HINT_T0);
            _mm_prefetch((const char *)(w1 + c) + MV_PF_BYTES, _MM_HINT_T0);
            _mm_prefetch((const char *)(w2 + c) + MV_PF_BYTES, _MM_HINT_T0);
            _mm_prefetch((const char *)(w3 + c) + MV_PF_BYTES, _MM_HINT_T0);
            __m512i v0 = _mm512_loadu_si512((const void *)(w0 + c)), v1 = _mm512_loadu_si512((const void *)(w1 + c));
            __m512i v2 = _mm512_loadu_si512((const void *)(w2 + c)), v3 = _mm512_loadu_si512((const void *)(w3 + c));
            h0 = bf16dp_step(h0, v0, a), l0 = bf16dp_step(l0, v0, b);
            h1 = bf16dp_step(h1, v1, a), l1 = bf16dp_step(l1, v1, b);
            h2 = bf16dp_step(h2, v2, a), l2 = bf16dp_step(l2, v2, b);
            h3 = bf16dp_step(h3, v3, a), l3 = bf16dp_step(l3, v3, b);
        }
        if (c < C) {
            __mmask32 m = (__mmask32)((1ull << (C - c)) - 1ull);
            __m512i a = _mm512_maskz_loadu_epi16(m, xh + c), b = _mm512_maskz_loadu_epi16(m, xl + c);
            __m512i v0 = _mm512_maskz_loadu_epi16(m, w0 + c), v1 = _mm512_maskz_loadu_epi16(m, w1 + c);
            __m512i v2 = _mm512_maskz_loadu_epi16(m, w2 + c), v3 = _mm512_maskz_loadu_epi16(m, w3 + c);
            h0 = bf16dp_step(h0, v0, a), l0 = bf16dp_step(l0, v0, b);
            h1 = bf16dp_step(h1, v1, a), l1 = bf16dp_step(l1, v1, b);
            h2 = bf16dp_step(h2, v2, a), l2 = bf16dp_step(l2, v2, b);
            h3 = bf16dp_step(h3, v3, a), l3 = bf16dp_step(l3, v3, b);
        }
        out[o] = _mm512_reduce_add_ps(_mm512_add_ps(h0, l0));
        out[o + 1] = _mm512_reduce_add_ps(_mm512_add_ps(h1, l1));
        out[o + 2] = _mm512_reduce_add_ps(_mm512_add_ps(h2, l2));
        out[o + 3] = _mm512_reduce_add_ps(_mm512_add_ps(h3, l3));
    }
    for (; o < r1; o++) out[o] = bf16dp_row(weight + (size_t)o * (size_t)C, xh, xl, C);
}

/* ---- attention over a KV cache: keys/values are rows of stride ld ---- */

/* One row's dot product with x, C <= any: 16-wide FMAs into one
 * accumulator, the masked tail last, then the lane sum; the four-row loop
 * below does the same per row (the same bits in any group). */
static inline float strided_dot(const float *w, const float *x, int C) {
    __m512 a = _mm512_setzero_ps();
    int c = 0;
    for (; c + 16 <= C; c += 16) a = _mm512_fmadd_ps(_mm512_loadu_ps(w + c), _mm512_loadu_ps(x + c), a);
    if (c < C) {
        __mmask16 m = (__mmask16)((1u << (C - c)) - 1u);
        a = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, w + c), _mm512_maskz_loadu_ps(m, x + c), a);
    }
    return _mm512_reduce_add_ps(a);
}

void matvec_strided_avx512(float *out, const float *x, const float *w, int C, int OC, size_t ld) {
    int o = 0;
    for (; o + 4 <= OC; o += 4) {
        const float *w0 = w + (size_t)o * ld, *w1 = w0 + ld, *w2 = w1 + ld, *w3 = w2 + ld;
        __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), a2 = _mm512_setzero_ps(), a3 = _mm512_setzero_ps();
        int c = 0;
        for (; c + 16 <= C; c += 16) {
            __m512 xv = _mm512_loadu_ps(x + c);
            a0 = _mm512_fmadd_ps(_mm512_loadu_ps(w0 + c), xv, a0);
            a1 = _mm512_fmadd_ps(_mm512_loadu_ps(w1 + c), xv, a1);
            a2 = _mm512_fmadd_ps(_mm512_loadu_ps(w2 + c), xv, a2);
            a3 = _mm512_fmadd_ps(_mm512_loadu_ps(w3 + c), xv, a3);
        }
        if (c < C) {
            __mmask16 m = (__mmask16)((1u << (C - c)) - 1u);
            __m512 xv = _mm512_maskz_loadu_ps(m, x + c);
            a0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, w0 + c), xv, a0);
            a1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, w1 + c), xv, a1);
            a2 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, w2 + c), xv, a2);
            a3 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, w3 + c), xv, a3);
        }
        out[o] = _mm512_reduce_add_ps(a0);
        out[o + 1] = _mm512_reduce_add_ps(a1);
        out[o + 2] = _mm512_reduce_add_ps(a2);
        out[o + 3] = _mm512_reduce_add_ps(a3);
    }
    for (; o < OC; o++) out[o] = strided_dot(w + (size_t)o * ld, x, C);
}

/* out[0..C) += sum_j a[j] w[j ld + .]: 32 outputs at a time held in two
 * registers per set, rows alternating between two sets (four FMA chains;
 * named registers, not arrays, so the compiler keeps them out of memory),
 * the sets added at the end, then added to out. */
void matvec_t_accum_avx512(float *out, const float *a, const float *w, int C, int OC, size_t ld) {
    for (int c = 0; c < C; c += 32) {
        int n = C - c < 32 ? C - c : 32;
        __mmask16 m0 = n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1u);
        __mmask16 m1 = n >= 32 ? (__mmask16)0xFFFF : n > 16 ? (__mmask16)((1u << (n - 16)) - 1u) : (__mmask16)0;
        __m512 e0 = _mm512_setzero_ps(), e1 = _mm512_setzero_ps();
        __m512 f0 = _mm512_setzero_ps(), f1 = _mm512_setzero_ps();
        int j = 0;
        for (; j + 2 <= OC; j += 2) {
            const float *v0 = w + (size_t)j * ld + c, *v1 = v0 + ld;
            __m512 s0 = _mm512_set1_ps(a[j]), s1 = _mm512_set1_ps(a[j + 1]);
            e0 = _mm512_fmadd_ps(s0, _mm512_maskz_loadu_ps(m0, v0), e0);
            e1 = _mm512_fmadd_ps(s0, _mm512_maskz_loadu_ps(m1, v0 + 16), e1);
            f0 = _mm512_fmadd_ps(s1, _mm512_maskz_loadu_ps(m0, v1), f0);
            f1 = _mm512_fmadd_ps(s1, _mm512_maskz_loadu_ps(m1, v1 + 16), f1);
        }
        if (j < OC) {
            const float *v0 = w + (size_t)j * ld + c;
            __m512 s0 = _mm512_set1_ps(a[j]);
            e0 = _mm512_fmadd_ps(s0, _mm512_maskz_loadu_ps(m0, v0), e0);
            e1 = _mm512_fmadd_ps(s0, _mm512_maskz_loadu_ps(m1, v0 + 16), e1);
        }
        _mm512_mask_storeu_ps(out + c, m0, _mm512_add_ps(_mm512_maskz_loadu_ps(m0, out + c), _mm512_add_ps(e0, f0)));
        _mm512_mask_storeu_ps(out + c + 16, m1,
                              _mm512_add_ps(_mm512_maskz_loadu_ps(m1, out + c + 16), _mm512_add_ps(e1, f1)));
    }
}

float matvec_read_avx512(const float *p, size_t n) {
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps(), s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        /* the same software prefetch as the kernels, so the roofline is the
         * best streaming rate, not a handicapped one */
        for (int k = 0; k < 4; k++) _mm_prefetch((const char *)(p + i + 16 * k) + MV_PF_BYTES, _MM_HINT_T0);
        s0 = _mm512_add_ps(s0, _mm512_loadu_ps(p + i));
        s1 = _mm512_add_ps(s1, _mm512_loadu_ps(p + i + 16));
        s2 = _mm512_add_ps(s2, _mm512_loadu_ps(p + i + 32));
        s3 = _mm512_add_ps(s3, _mm512_loadu_ps(p + i + 48));
    }
    float s = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
    for (; i < n; i++) s += p[i];
    return s;
}
#endif
