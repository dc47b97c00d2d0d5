/*
 * attention_avx512.c — AVX-512 kernels for causal multi-head attention, the
 * fast path of attention_forward/_backward (attention.c keeps the scalar
 * twin and picks these at run time). Both directions split the work into
 * (b,h) tasks, each owning its head's slice of out (or dq, dk, dv), and
 * every sum runs in a fixed order inside its task, so the bits do not depend
 * on the thread count.
 *
 * Inside a task the products are small matrix products done in register
 * tiles: keys come in blocks of 16 that are transposed once (in registers), so
 * the scores of 8 query rows against the block are 8 FMA chains over the
 * head size, one key per lane, with no per-key lane sum; P V, dS K and the
 * block's dK, dV accumulate 8 rows x 32 columns in registers. The backward
 * runs key blocks outer and query rows inner (FlashAttention-2's order,
 * Dao 2023), taking the softmax row term D_t = dy_t . o_t from the
 * forward's output. Measured by bench/attention_bench.c against the scalar
 * twin. Any T; head sizes up to ATT_HS_MAX (any, the last 16 lanes
 * masked); attention.c sends larger heads to the scalar twin.
 */
#include "nn/attention_simd.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

/* exp(x) for x <= 0, 16 lanes. Cody–Waite range reduction x = n ln2 + r with
 * n = round(x / ln2), |r| <= ln2/2 + tiny, ln2 split in two parts (the
 * constants of Cephes' expf, Moshier 1989: 0.693359375 has 9 significant bits,
 * so n * hi is exact for |n| < 2^15); then exp(r) by its degree-7 Taylor
 * polynomial, whose truncation error r^8/8! < (0.347)^8/40320 = 5.3e-9 is
 * below 0.05 ulp of the result, so the error is the Horner rounding (~1 ulp);
 * _mm512_scalef_ps multiplies by 2^n and takes care of underflow (x below
 * about -103 gives 0, as expf does). x = 0 gives exactly 1. */
static inline __m512 exp512(__m512 x) {
    x = _mm512_max_ps(x, _mm512_set1_ps(-104.0f));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.0f / 5040.0f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}

void attention_exp_avx512(float *y, const float *x, size_t n) {
    for (size_t i = 0; i < n; i += 16) {
        size_t left = n - i;
        __mmask16 m = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1u);
        _mm512_mask_storeu_ps(y + i, m, exp512(_mm512_maskz_loadu_ps(m, x + i)));
    }
}

/* mask of the first n (0..16) lanes */
static inline __mmask16 lanes(int n) {
    return n <= 0 ? (__mmask16)0 : n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1u);
}

/* Keys per block (one vector of 16 scores) and query rows per register tile. */
#define KB 16
#define RB 8
/* The loops over a tile's rows must be unrolled for the accumulators to
 * live in registers (gcc -O2 leaves an 8-trip loop rolled and spills them). */
#define UNROLL_R _Pragma("GCC unroll 8")

int attention_avx512_fits(int HS) {
    return HS >= 1 && HS <= ATT_HS_MAX;   /* stack buffers of ATT_HS_MAX x KB floats */
}

/* In-register transpose of a 16 x 16 block: afterwards r[a] lane b is what
 * r[b] lane a was. Pairs of rows interleave (unpack ps), then pairs of
 * pairs (unpack pd), which leaves each 128-bit lane holding a 4 x 4
 * sub-block; two rounds of 128-bit lane shuffles put the sub-blocks in place.
 * 64 shuffles, against 16 gathers or scatters of 16 strided floats each. */
static inline void transpose16(__m512 *r) {
    __m512 t[16];
    for (int k = 0; k < 8; k++) {
        t[2 * k] = _mm512_unpacklo_ps(r[2 * k], r[2 * k + 1]);
        t[2 * k + 1] = _mm512_unpackhi_ps(r[2 * k], r[2 * k + 1]);
    }
    /* u[4g + m], lane L: column 4L + m of rows 4g .. 4g+3 */
    for (int g = 0; g < 4; g++) {
        const __m512d a = _mm512_castps_pd(t[4 * g]), b = _mm512_castps_pd(t[4 * g + 1]);
        const __m512d c = _mm512_castps_pd(t[4 * g + 2]), d = _mm512_castps_pd(t[4 * g + 3]);
        r[4 * g] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
        r[4 * g + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
        r[4 * g + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
        r[4 * g + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
    }
    /* output column 4L + m = lane L of u[m], u[4 + m], u[8 + m], u[12 + m] */
    for (int m = 0; m < 4; m++) {
        const __m512 b0 = _mm512_shuffle_f32x4(r[m], r[4 + m], _MM_SHUFFLE(1, 0, 1, 0));
        const __m512 b1 = _mm512_shuffle_f32x4(r[m], r[4 + m], _MM_SHUFFLE(3, 2, 3, 2));
        const __m512 b2 = _mm512_shuffle_f32x4(r[8 + m], r[12 + m], _MM_SHUFFLE(1, 0, 1, 0));
        const __m512 b3 = _mm512_shuffle_f32x4(r[8 + m], r[12 + m], _MM_SHUFFLE(3, 2, 3, 2));
        t[m] = _mm512_shuffle_f32x4(b0, b2, _MM_SHUFFLE(2, 0, 2, 0));
        t[4 + m] = _mm512_shuffle_f32x4(b0, b2, _MM_SHUFFLE(3, 1, 3, 1));
        t[8 + m] = _mm512_shuffle_f32x4(b1, b3, _MM_SHUFFLE(2, 0, 2, 0));
        t[12 + m] = _mm512_shuffle_f32x4(b1, b3, _MM_SHUFFLE(3, 1, 3, 1));
    }
    for (int k = 0; k < 16; k++) r[k] = t[k];
}

/* r[jj] = columns [i0, i0+16) of row jj (rows spaced by stride), jj < n,
 * the columns past HS and the rows past n zero; then transposed, so r[ii]
 * holds column i0 + ii of the n rows. */
static inline void load_cols_t(__m512 *r, const float *rows, size_t stride, int n, int i0, int HS) {
    const __mmask16 m = lanes(HS - i0);
    for (int jj = 0; jj < 16; jj++)
        r[jj] = jj < n ? _mm512_maskz_loadu_ps(m, rows + (size_t)jj * stride + i0) : _mm512_setzero_ps();
    transpose16(r);
}

/* kt[i*KB + jj] = rows[jj*stride + i] for i < HS, jj < n; lanes jj >= n are 0.
 * Transposing a block of 16 keys (or values) once lets every query row that
 * sees the block form its 16 dot products with plain FMAs, 16 keys a lane,
 * instead of summing lanes per key. */
static void load_block_t(float *kt, const float *rows, size_t stride, int n, int HS) {
    __m512 r[16];
    for (int i0 = 0; i0 < HS; i0 += 16) {
        load_cols_t(r, rows, stride, n, i0, HS);
        for (int ii = 0; ii < 16 && i0 + ii < HS; ii++) _mm512_store_ps(kt + (size_t)(i0 + ii) * KB, r[ii]);
    }
}

/* rows[jj*stride + i] += kt[i*KB + jj] for i < HS, jj < n: the transpose of
 * a block's accumulated dk (or dv) added back into the key rows. */
static void add_block_t(float *rows, size_t stride, const float *kt, int n, int HS) {
    __m512 r[16];
    for (int i0 = 0; i0 < HS; i0 += 16) {
        const __mmask16 m = lanes(HS - i0);
        for (int ii = 0; ii < 16; ii++)
            r[ii] = i0 + ii < HS ? _mm512_load_ps(kt + (size_t)(i0 + ii) * KB) : _mm512_setzero_ps();
        transpose16(r);
        for (int jj = 0; jj < n; jj++) {
            float *d = rows + (size_t)jj * stride + i0;
            _mm512_mask_storeu_ps(d, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, d), r[jj]));
        }
    }
}

/* acc[r] (16 keys) = sum_i x_r[i] * kt[i*KB + :] for R rows x_r = x + r*xs:
 * R independent FMA chains, each step one load of kt and R broadcasts. */
static inline __attribute__((always_inline)) void dot_tile(__m512 *acc, int R, const float *x, size_t xs,
                                                           const float *kt, int HS) {
    UNROLL_R
    for (int r = 0; r < R; r++) acc[r] = _mm512_setzero_ps();
    for (int i = 0; i < HS; i++) {
        const __m512 kv = _mm512_load_ps(kt + (size_t)i * KB);
        UNROLL_R
        for (int r = 0; r < R; r++) acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(x[(size_t)r * xs + i]), kv, acc[r]);
    }
}

/* y_r (HS, rows y + r*ys) (=|+=) sum_{j<n} coef[r*cs + j] * rows[j] (rows
 * spaced by stride), for R rows with coefficient j valid only while
 * j <= lim + r (the causal edge; coefficients past it are never read).
 * 32 columns at a time: 2R accumulators, each j one pair of row loads. */
static inline __attribute__((always_inline)) void rows_tile(float *y, size_t ys, int add, int R, const float *coef,
                                                            size_t cs, const float *rows, size_t stride, int n,
                                                            int lim, int HS) {
    for (int c0 = 0; c0 < HS; c0 += 32) {
        const __mmask16 m0 = lanes(HS - c0), m1 = lanes(HS - c0 - 16);
        __m512 a0[RB], a1[RB];
        UNROLL_R
        for (int r = 0; r < R; r++) a0[r] = a1[r] = _mm512_setzero_ps();
        const int full = n < lim + 1 ? n : lim + 1;   /* every row sees j < full */
        for (int j = 0; j < full; j++) {
            const float *src = rows + (size_t)j * stride + c0;
            const __m512 v0 = _mm512_maskz_loadu_ps(m0, src), v1 = _mm512_maskz_loadu_ps(m1, src + 16);
            UNROLL_R
            for (int r = 0; r < R; r++) {
                const __m512 p = _mm512_set1_ps(coef[(size_t)r * cs + j]);
                a0[r] = _mm512_fmadd_ps(p, v0, a0[r]);
                a1[r] = _mm512_fmadd_ps(p, v1, a1[r]);
            }
        }
        for (int j = full; j < n && j <= lim + R - 1; j++) {   /* the triangle: rows r >= j - lim */
            const float *src = rows + (size_t)j * stride + c0;
            const __m512 v0 = _mm512_maskz_loadu_ps(m0, src), v1 = _mm512_maskz_loadu_ps(m1, src + 16);
            UNROLL_R
            for (int r = 0; r < R; r++) {   /* masked, not indexed from j - lim: a0, a1 stay in registers */
                const int on = r >= j - lim;
                const __m512 p = _mm512_set1_ps(on ? coef[(size_t)r * cs + j] : 0.0f);
                a0[r] = _mm512_mask3_fmadd_ps(p, v0, a0[r], on ? (__mmask16)0xFFFF : (__mmask16)0);
                a1[r] = _mm512_mask3_fmadd_ps(p, v1, a1[r], on ? (__mmask16)0xFFFF : (__mmask16)0);
            }
        }
        UNROLL_R
        for (int r = 0; r < R; r++) {
            float *d = y + (size_t)r * ys + c0;
            if (add) {
                a0[r] = _mm512_add_ps(_mm512_maskz_loadu_ps(m0, d), a0[r]);
                a1[r] = _mm512_add_ps(_mm512_maskz_loadu_ps(m1, d + 16), a1[r]);
            }
            _mm512_mask_storeu_ps(d, m0, a0[r]);
            _mm512_mask_storeu_ps(d + 16, m1, a1[r]);
        }
    }
}

/* Scores of R query rows t.. against the key block j0 (kt, n keys): scaled
 * dot products, minus the ALiBi bias, stored for keys j <= t + r only. */
static inline __attribute__((always_inline)) void scores_tile(float *att, int T, int R, const float *q, size_t C3,
                                                              const float *kt, int HS, int t, int j0, int n,
                                                              float scale, const float *slope) {
    __m512 acc[RB];
    dot_tile(acc, R, q + (size_t)t * C3, C3, kt, HS);
    const __m512 iota = _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    UNROLL_R
    for (int r = 0; r < R; r++) {
        __m512 s = _mm512_mul_ps(acc[r], _mm512_set1_ps(scale));
        if (slope) {
            const __m512 dist = _mm512_sub_ps(_mm512_set1_ps((float)(t + r - j0)), iota);   /* t - j, exact */
            s = _mm512_sub_ps(s, _mm512_mul_ps(_mm512_set1_ps(*slope), dist));
        }
        const int valid = t + r - j0 + 1 < n ? t + r - j0 + 1 : n;
        _mm512_mask_storeu_ps(att + (size_t)(t + r) * T + j0, lanes(valid), s);
    }
}

/* In-place softmax of one causal row (n = t + 1 scores). */
static void softmax_row(float *row, int n) {
    __m512 vmax = _mm512_set1_ps(-INFINITY);
    for (int j0 = 0; j0 < n; j0 += 16) {
        const __mmask16 m = lanes(n - j0);
        vmax = _mm512_mask_max_ps(vmax, m, vmax, _mm512_maskz_loadu_ps(m, row + j0));
    }
    const __m512 maxv = _mm512_set1_ps(_mm512_reduce_max_ps(vmax));
    /* the sum is >= 1 (the max term is exp(0) = 1) */
    __m512 vsum = _mm512_setzero_ps();
    for (int j0 = 0; j0 < n; j0 += 16) {
        const __mmask16 m = lanes(n - j0);
        __m512 e = _mm512_maskz_mov_ps(m, exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, row + j0), maxv)));
        _mm512_mask_storeu_ps(row + j0, m, e);
        vsum = _mm512_add_ps(vsum, e);
    }
    const __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(vsum));
    for (int j0 = 0; j0 < n; j0 += 16) {
        const __mmask16 m = lanes(n - j0);
        _mm512_mask_storeu_ps(row + j0, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, row + j0), inv));
    }
}

/* One (b,h): q, k, v rows spaced by C3, out rows by C, att (T,T). */
static void head_forward(float *out, size_t C, float *att, const float *q, const float *k, const float *v,
                         size_t C3, const float *slope, int T, int HS, float scale) {
    float kt[ATT_HS_MAX * KB] __attribute__((aligned(64)));
    for (int j0 = 0; j0 < T; j0 += KB) {   /* scores, one key block at a time */
        const int n = T - j0 < KB ? T - j0 : KB;
        load_block_t(kt, k + (size_t)j0 * C3, C3, n, HS);
        int t = j0;   /* rows t < j0 see none of the block */
        for (; t + RB <= T; t += RB) scores_tile(att, T, RB, q, C3, kt, HS, t, j0, n, scale, slope);
        for (; t < T; t++) scores_tile(att, T, 1, q, C3, kt, HS, t, j0, n, scale, slope);
    }
    for (int t = 0; t < T; t++) softmax_row(att + (size_t)t * T, t + 1);
    int t = 0;   /* out = P V, RB rows at a time */
    for (; t + RB <= T; t += RB)
        rows_tile(out + (size_t)t * C, C, 0, RB, att + (size_t)t * T, (size_t)T, v, C3, t + RB, t, HS);
    for (; t < T; t++) rows_tile(out + (size_t)t * C, C, 0, 1, att + (size_t)t * T, (size_t)T, v, C3, t + 1, t, HS);
}

void attention_forward_avx512(float *out, float *att, const float *qkv, const float *alibi_slopes,
                              int B, int T, int C, int NH) {
    const int HS = C / NH;
    const size_t C3 = 3 * (size_t)C;
    const float scale = 1.0f / sqrtf((float)HS);
    const int n_tasks = B * NH;
#pragma omp parallel for schedule(dynamic, 1) if ((long long)n_tasks * T * T >= 4096)
    for (int task = 0; task < n_tasks; task++) {
        const int b = task / NH, h = task % NH;
        const float *q = qkv + (size_t)b * T * C3 + (size_t)h * HS;
        head_forward(out + (size_t)b * T * C + (size_t)h * HS, (size_t)C, att + (size_t)task * T * T, q, q + C,
                     q + 2 * (size_t)C, C3, alibi_slopes ? alibi_slopes + h : NULL, T, HS, scale);
    }
}

/* The backward of R query rows t.. against key block j0 (n keys; vt the
 * block's values transposed): dp = dy . v_j, ds = p (dp - D_t) scale (zero past
 * the causal edge), then dq_t += ds K_block, and into the block's transposed
 * accumulators dkt += q_t ds, dvt += dy_t p. D points at row t's D_t. */
static inline __attribute__((always_inline)) void backward_tile(
    int R, int t, int j0, int n, int T, int HS, float scale, const float *att, const float *D, const float *q,
    float *dq, const float *k, size_t C3, const float *dy, size_t C, const float *vt, float *dkt,
    float *dvt) {
    __m512 p[RB], ds[RB];
    float dsb[RB * KB] __attribute__((aligned(64)));
    dot_tile(ds, R, dy + (size_t)t * C, C, vt, HS);   /* dp */
    UNROLL_R
    for (int r = 0; r < R; r++) {
        const int valid = t + r - j0 + 1 < n ? t + r - j0 + 1 : n;
        const __mmask16 m = lanes(valid);
        p[r] = _mm512_maskz_loadu_ps(m, att + (size_t)(t + r) * T + j0);
        ds[r] = _mm512_maskz_mul_ps(m, _mm512_mul_ps(p[r], _mm512_sub_ps(ds[r], _mm512_set1_ps(D[r]))),
                                    _mm512_set1_ps(scale));
        _mm512_store_ps(dsb + r * KB, ds[r]);
    }
    for (int i = 0; i < HS; i++) {
        __m512 a = _mm512_load_ps(dvt + (size_t)i * KB), c = _mm512_load_ps(dkt + (size_t)i * KB);
        UNROLL_R
        for (int r = 0; r < R; r++) {
            a = _mm512_fmadd_ps(_mm512_set1_ps(dy[(size_t)(t + r) * C + i]), p[r], a);
            c = _mm512_fmadd_ps(_mm512_set1_ps(q[(size_t)(t + r) * C3 + i]), ds[r], c);
        }
        _mm512_store_ps(dvt + (size_t)i * KB, a);
        _mm512_store_ps(dkt + (size_t)i * KB, c);
    }
    /* ds is zero past the edge, so every row may take all n keys */
    rows_tile(dq + (size_t)t * C3, C3, 1, R, dsb, KB, k + (size_t)j0 * C3, C3, n, n, HS);
}

/* D[t] = dy_t . o_t, summed in i order by FMAs from 0: the order dot_tile
 * sums dp_tj = dy_t . v_j in, so a row with a single key (o_t = v_t exactly)
 * gets dp - D = 0 exactly, hence ds = 0, as in exact arithmetic. Sixteen
 * rows at a time, one per lane, from transposed 16 x 16 blocks of dy and o. */
static void row_terms(float *D, const float *dy, const float *o, size_t C, int T, int HS) {
    float yt[16 * 16] __attribute__((aligned(64)));
    __m512 r[16];
    for (int t = 0; t < T; t += 16) {
        const int n = T - t < 16 ? T - t : 16;
        __m512 acc = _mm512_setzero_ps();
        for (int i0 = 0; i0 < HS; i0 += 16) {
            load_cols_t(r, dy + (size_t)t * C, C, n, i0, HS);
            for (int ii = 0; ii < 16; ii++) _mm512_store_ps(yt + ii * 16, r[ii]);
            load_cols_t(r, o + (size_t)t * C, C, n, i0, HS);
            for (int ii = 0; ii < 16 && i0 + ii < HS; ii++)
                acc = _mm512_fmadd_ps(_mm512_load_ps(yt + ii * 16), r[ii], acc);
        }
        _mm512_mask_storeu_ps(D + t, lanes(n), acc);
    }
}

/* One (b,h) of the backward: q, k, v, dq, dk, dv rows spaced by C3; dy and
 * the forward's out rows by C; att (T,T). D_t = sum_j p_tj dp_tj = dy_t . o_t
 * (o_t = sum_j p_tj v_j), the softmax backward's row term, from the saved
 * output instead of a second pass over the keys. Key blocks outer, query
 * rows inner: a block's values are transposed once and its dk, dv sums stay
 * in two small buffers until the block is done. */
static void head_backward(float *dq, float *dk, float *dv, const float *q, const float *k, const float *v,
                          size_t C3, const float *dy, const float *o, size_t C, const float *att, int T, int HS,
                          float scale) {
    float vt[ATT_HS_MAX * KB] __attribute__((aligned(64)));
    float dkt[ATT_HS_MAX * KB] __attribute__((aligned(64))), dvt[ATT_HS_MAX * KB] __attribute__((aligned(64)));
    float D[ATT_ROWS_CHUNK];
    /* Query rows in chunks whose D fits the stack; one chunk unless T > ATT_ROWS_CHUNK. */
    for (int c0 = 0; c0 < T; c0 += ATT_ROWS_CHUNK) {
        const int c1 = T - c0 < ATT_ROWS_CHUNK ? T : c0 + ATT_ROWS_CHUNK;
        row_terms(D, dy + (size_t)c0 * C, o + (size_t)c0 * C, C, c1 - c0, HS);
        for (int j0 = 0; j0 < c1; j0 += KB) {
            const int n = T - j0 < KB ? T - j0 : KB;
            load_block_t(vt, v + (size_t)j0 * C3, C3, n, HS);
            memset(dkt, 0, (size_t)HS * KB * sizeof(float));
            memset(dvt, 0, (size_t)HS * KB * sizeof(float));
            int t = j0 > c0 ? j0 : c0;
            for (; t + RB <= c1; t += RB)
                backward_tile(RB, t, j0, n, T, HS, scale, att, D + (t - c0), q, dq, k, C3, dy, C, vt, dkt, dvt);
            for (; t < c1; t++)
                backward_tile(1, t, j0, n, T, HS, scale, att, D + (t - c0), q, dq, k, C3, dy, C, vt, dkt, dvt);
            add_block_t(dk + (size_t)j0 * C3, C3, dkt, n, HS);
            add_block_t(dv + (size_t)j0 * C3, C3, dvt, n, HS);
        }
    }
}

void attention_backward_avx512(float *dqkv, const float *dout, const float *qkv, const float *att,
                               const float *out, int B, int T, int C, int NH) {
    const int HS = C / NH;
    const size_t C3 = 3 * (size_t)C;
    const float scale = 1.0f / sqrtf((float)HS);
    const int n_tasks = B * NH;
#pragma omp parallel for schedule(dynamic, 1) if ((long long)n_tasks * T * T >= 4096)
    for (int task = 0; task < n_tasks; task++) {
        const int b = task / NH, h = task % NH;
        const size_t base = (size_t)b * T * C3 + (size_t)h * HS, obase = (size_t)b * T * C + (size_t)h * HS;
        head_backward(dqkv + base, dqkv + base + C, dqkv + base + 2 * (size_t)C, qkv + base, qkv + base + C,
                      qkv + base + 2 * (size_t)C, C3, dout + obase, out + obase, (size_t)C,
                      att + (size_t)task * T * T, T, HS, scale);
    }
}

#else
/* Not x86-64: attention.c never calls these. */
void attention_forward_avx512(float *out, float *att, const float *qkv, const float *alibi_slopes,
                              int B, int T, int C, int NH) {
    (void)out; (void)att; (void)qkv; (void)alibi_slopes; (void)B; (void)T; (void)C; (void)NH;
}
void attention_backward_avx512(float *dqkv, const float *dout, const float *qkv, const float *att,
                               const float *out, int B, int T, int C, int NH) {
    (void)dqkv; (void)dout; (void)qkv; (void)att; (void)out; (void)B; (void)T; (void)C; (void)NH;
}
int attention_avx512_fits(int HS) {
    (void)HS;
    return 0;
}
void attention_exp_avx512(float *y, const float *x, size_t n) {
    (void)y; (void)x; (void)n;
}
#endif
