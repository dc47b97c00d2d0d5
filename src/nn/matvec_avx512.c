/*
 * matvec_avx512.c — AVX-512 row kernel for matvec_forward: four rows at a
 * time share each 16-float load of x, with two accumulators per row (eight
 * independent FMA chains hide the FMA latency while the loads stream); the
 * last C % 16 floats use a masked load, so no scalar tail. Every kernel
 * prefetches the weight stream MV_PF_BYTES ahead (see there). Each row's sum is
 * formed in the same lane order whatever the row grouping, so a row gives
 * the same bits as part of a group of four or alone. Also here: the bf16
 * kernels (even/odd split for plain AVX-512, vdpbf16ps for AVX512-BF16) and
 * the streaming-read probe the benchmark uses for its roofline.
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
 * permuted the same way (xp: per 32-block, 16 even then 16 odd entries). */
static inline float bf16_row_dot_eo(const uint16_t *w, const float *x, const float *xp, int C) {
    const __m512i hi_mask = _mm512_set1_epi32((int)0xFFFF0000u);
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
    int c = 0;
    for (; c + 32 <= C; c += 32) {
        __m512i v = _mm512_loadu_si512((const void *)(w + c));
        _mm_prefetch((const char *)(w + c) + MV_PF_BYTES, _MM_HINT_T0);
        a0 = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(v, 16)), _mm512_loadu_ps(xp + c), a0);
        a1 = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_and_si512(v, hi_mask)), _mm512_loadu_ps(xp + c + 16), a1);
    }
    for (; c + 16 <= C; c += 16) a0 = _mm512_fmadd_ps(bf16x16(w + c), _mm512_loadu_ps(x + c), a0);
    if (c < C) {
        __mmask16 m = (__mmask16)((1u << (C - c)) - 1u);
        a1 = _mm512_fmadd_ps(bf16x16_mask(w + c, m), _mm512_maskz_loadu_ps(m, x + c), a1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
}

void matvec_bf16_permute_x_avx512(float *xp, const float *x, int C) {
    int c = 0;
    for (; c + 32 <= C; c += 32)
        for (int i = 0; i < 16; i++) {
            xp[c + i] = x[c + 2 * i];
            xp[c + 16 + i] = x[c + 2 * i + 1];
        }
    for (; c < C; c++) xp[c] = x[c];
}

void matvec_bf16_rows_avx512(float *out, const float *inp, const float *xp, const uint16_t *weight, int C,
                             int r0, int r1) {
    /* One row at a time: a single sequential stream measured faster here
     * than two or four interleaved rows (each row is only a few KB). */
    for (int o = r0; o < r1; o++) out[o] = bf16_row_dot_eo(weight + (size_t)o * (size_t)C, inp, xp, C);
}

/* AVX512-BF16: vdpbf16ps adds w[2i] x[2i] + w[2i+1] x[2i+1] into lane i,
 * products exact, sums in float. Two rows share the x loads; x = hi + lo
 * takes two dot products per 32 weights; the tail uses masked loads (zeros
 * add nothing). Compiled for AVX512-BF16 by attribute (the Makefile's
 * AVX-512 flags do not include it); only called when the CPU has it. */
#ifndef BF16DP_ROWS
#define BF16DP_ROWS 2
#endif
#define BF16DP_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))

BF16DP_TARGET static inline __m512 bf16dp_step(__m512 acc, __m512i w, __m512i x) {
    return _mm512_dpbf16_ps(acc, (__m512bh)w, (__m512bh)x);
}

BF16DP_TARGET void matvec_bf16dp_rows_avx512(float *out, const uint16_t *xhl, const uint16_t *weight, int C,
                                             int r0, int r1) {
    const uint16_t *xh = xhl, *xl = xhl + C;
    for (int o = r0; o < r1; o += BF16DP_ROWS) {
        const uint16_t *w[BF16DP_ROWS];
        int nr = r1 - o < BF16DP_ROWS ? r1 - o : BF16DP_ROWS;
        for (int r = 0; r < BF16DP_ROWS; r++) w[r] = weight + (size_t)(o + (r < nr ? r : 0)) * (size_t)C;
        __m512 h[BF16DP_ROWS], l[BF16DP_ROWS];
        for (int r = 0; r < BF16DP_ROWS; r++) h[r] = l[r] = _mm512_setzero_ps();
        int c = 0;
        for (; c + 32 <= C; c += 32) {
            __m512i a = _mm512_loadu_si512((const void *)(xh + c)), b = _mm512_loadu_si512((const void *)(xl + c));
            for (int r = 0; r < BF16DP_ROWS; r++) {
                __m512i v = _mm512_loadu_si512((const void *)(w[r] + c));
                _mm_prefetch((const char *)(w[r] + c) + MV_PF_BYTES, _MM_HINT_T0);
                h[r] = bf16dp_step(h[r], v, a);
                l[r] = bf16dp_step(l[r], v, b);
            }
        }
        if (c < C) {
            __mmask32 m = (__mmask32)((1ull << (C - c)) - 1ull);
            __m512i a = _mm512_maskz_loadu_epi16(m, xh + c), b = _mm512_maskz_loadu_epi16(m, xl + c);
            for (int r = 0; r < BF16DP_ROWS; r++) {
                __m512i v = _mm512_maskz_loadu_epi16(m, w[r] + c);
                h[r] = bf16dp_step(h[r], v, a);
                l[r] = bf16dp_step(l[r], v, b);
            }
        }
        for (int r = 0; r < nr; r++) out[o + r] = _mm512_reduce_add_ps(_mm512_add_ps(h[r], l[r]));
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
