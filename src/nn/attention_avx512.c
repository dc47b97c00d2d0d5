/*
 * attention_avx512.c — AVX-512 kernels for causal multi-head attention, the
 * fast path of attention_forward/_backward (attention.c keeps the scalar
 * twin and picks this file's functions at run time). Same loop split as the
 * scalar code: the forward parallelises over (b,t,h) rows, the backward over
 * (b,h) tasks that each own their head's slice of dq, dk, dv, so the bits do
 * not depend on the thread count. Every reduction runs in a fixed order (16
 * lanes, then a fixed shuffle tree), so a given CPU and thread count always
 * gives the same bits. Dot products over the head size (q.k, dy.v) are done
 * 16 keys at a time and their lanes summed by one transposing shuffle tree;
 * weighted sums of rows (p V, ds K, dk += ds q, and dv = P^T dy read down
 * the columns of att) vectorise over the head size. Measured by
 * bench/attention_bench.c. Any HS works: the last 16-lane chunk is masked.
 */
#include "nn/attention_simd.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <math.h>
#include <stdint.h>

/* dL/dp of one query row on the stack (4 KiB per thread); longer rows are
 * done in chunks of this many keys, recomputing dy.v for the later chunks. */
#define ATT_ROW_CHUNK 1024

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
    return n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1u);
}

/* r[i] = sum of the 16 lanes of v[i], i = 0..15, by a fixed shuffle tree:
 * pairs within 128-bit lanes, then quads, then across the four 128-bit lanes. */
static inline __m512 hsum16(const __m512 *v) {
    __m512 a[8], c[4];
    for (int k = 0; k < 8; k++)
        a[k] = _mm512_add_ps(_mm512_unpacklo_ps(v[2 * k], v[2 * k + 1]),
                             _mm512_unpackhi_ps(v[2 * k], v[2 * k + 1]));
    for (int k = 0; k < 4; k++) {
        __m512d x = _mm512_castps_pd(a[2 * k]), y = _mm512_castps_pd(a[2 * k + 1]);
        c[k] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(x, y)),
                             _mm512_castpd_ps(_mm512_unpackhi_pd(x, y)));
    }
    /* c[k] 128-bit lane L holds keys 4k..4k+3 summed over lane L's elements */
    __m512 e01 = _mm512_add_ps(_mm512_shuffle_f32x4(c[0], c[1], _MM_SHUFFLE(2, 0, 2, 0)),
                               _mm512_shuffle_f32x4(c[0], c[1], _MM_SHUFFLE(3, 1, 3, 1)));
    __m512 e23 = _mm512_add_ps(_mm512_shuffle_f32x4(c[2], c[3], _MM_SHUFFLE(2, 0, 2, 0)),
                               _mm512_shuffle_f32x4(c[2], c[3], _MM_SHUFFLE(3, 1, 3, 1)));
    return _mm512_add_ps(_mm512_shuffle_f32x4(e01, e23, _MM_SHUFFLE(2, 0, 2, 0)),
                         _mm512_shuffle_f32x4(e01, e23, _MM_SHUFFLE(3, 1, 3, 1)));
}

/* Lane jj (< n <= 16) = x . rows[jj] over HS floats, rows spaced by stride;
 * lanes >= n are 0. */
static inline __m512 dots16(const float *x, const float *rows, size_t stride, int n, int HS) {
    __m512 acc[16];
    const __mmask16 tail = lanes(HS - ((HS - 1) / 16) * 16);
    for (int jj = 0; jj < n; jj++) {
        const float *r = rows + (size_t)jj * stride;
        __m512 a = _mm512_setzero_ps();
        int i = 0;
        for (; i + 16 < HS; i += 16) a = _mm512_fmadd_ps(_mm512_loadu_ps(x + i), _mm512_loadu_ps(r + i), a);
        a = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, x + i), _mm512_maskz_loadu_ps(tail, r + i), a);
        acc[jj] = a;
    }
    for (int jj = n; jj < 16; jj++) acc[jj] = _mm512_setzero_ps();
    return hsum16(acc);
}

/* y (HS) += sum_{j<n} coef[j*cstride] * rows[j] (rows spaced by stride),
 * summed in registers 32 floats at a time with even and odd j in separate
 * accumulators (two independent FMA chains each), added to y once. */
static void gemv_acc(float *y, const float *coef, size_t cstride, const float *rows, size_t stride, int n,
                     int HS) {
    for (int c0 = 0; c0 < HS; c0 += 32) {
        const __mmask16 m0 = lanes(HS - c0), m1 = lanes(HS - c0 - 16 > 0 ? HS - c0 - 16 : 0);
        __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
        __m512 b0 = _mm512_setzero_ps(), b1 = _mm512_setzero_ps();
        int j = 0;
        for (; j + 1 < n; j += 2) {
            const float *r = rows + (size_t)j * stride + c0;
            __m512 pa = _mm512_set1_ps(coef[(size_t)j * cstride]);
            __m512 pb = _mm512_set1_ps(coef[(size_t)(j + 1) * cstride]);
            a0 = _mm512_fmadd_ps(pa, _mm512_maskz_loadu_ps(m0, r), a0);
            a1 = _mm512_fmadd_ps(pa, _mm512_maskz_loadu_ps(m1, r + 16), a1);
            b0 = _mm512_fmadd_ps(pb, _mm512_maskz_loadu_ps(m0, r + stride), b0);
            b1 = _mm512_fmadd_ps(pb, _mm512_maskz_loadu_ps(m1, r + stride + 16), b1);
        }
        if (j < n) {
            const float *r = rows + (size_t)j * stride + c0;
            __m512 pa = _mm512_set1_ps(coef[(size_t)j * cstride]);
            a0 = _mm512_fmadd_ps(pa, _mm512_maskz_loadu_ps(m0, r), a0);
            a1 = _mm512_fmadd_ps(pa, _mm512_maskz_loadu_ps(m1, r + 16), a1);
        }
        _mm512_mask_storeu_ps(y + c0, m0, _mm512_add_ps(_mm512_maskz_loadu_ps(m0, y + c0), _mm512_add_ps(a0, b0)));
        _mm512_mask_storeu_ps(y + c0 + 16, m1,
                              _mm512_add_ps(_mm512_maskz_loadu_ps(m1, y + c0 + 16), _mm512_add_ps(a1, b1)));
    }
}

/* rows[j] (HS) += coef[j] * x for j < n (rows spaced by stride). */
static void axpy_rows(float *rows, size_t stride, const float *coef, int n, const float *x, int HS) {
    for (int c0 = 0; c0 < HS; c0 += 32) {
        const __mmask16 m0 = lanes(HS - c0), m1 = lanes(HS - c0 - 16 > 0 ? HS - c0 - 16 : 0);
        __m512 x0 = _mm512_maskz_loadu_ps(m0, x + c0), x1 = _mm512_maskz_loadu_ps(m1, x + c0 + 16);
        for (int j = 0; j < n; j++) {
            float *r = rows + (size_t)j * stride + c0;
            __m512 p = _mm512_set1_ps(coef[j]);
            _mm512_mask_storeu_ps(r, m0, _mm512_fmadd_ps(p, x0, _mm512_maskz_loadu_ps(m0, r)));
            _mm512_mask_storeu_ps(r + 16, m1, _mm512_fmadd_ps(p, x1, _mm512_maskz_loadu_ps(m1, r + 16)));
        }
    }
}

void attention_forward_avx512(float *out, float *att, const float *qkv, const float *alibi_slopes,
                              int B, int T, int C, int NH) {
    const int HS = C / NH;
    const size_t C3 = 3 * (size_t)C;
    const float scale = 1.0f / sqrtf((float)HS);
    const long long n_rows = (long long)B * T * NH;
    const __m512 iota = _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
#pragma omp parallel for schedule(dynamic, 8) if (n_rows * T >= 4096)
    for (long long r = 0; r < n_rows; r++) {
        /* r enumerates (b, t, h) with h fastest */
        int h = (int)(r % NH);
        int t = (int)((r / NH) % T);
        int b = (int)(r / ((long long)NH * T));
        const float *q = qkv + ((size_t)b * T + t) * C3 + (size_t)h * HS;             /* (HS) */
        const float *k0 = qkv + (size_t)b * T * C3 + C + (size_t)h * HS;              /* (T,HS) stride 3C */
        float *att_row = att + (((size_t)b * NH + h) * T + t) * (size_t)T;           /* (T) */
        const int n = t + 1;

        /* scores s_j = scale q.k_j (- slope (t - j)), and their max */
        __m512 vmax = _mm512_set1_ps(-INFINITY);
        for (int j0 = 0; j0 < n; j0 += 16) {
            int nb = n - j0 < 16 ? n - j0 : 16;
            __mmask16 m = lanes(nb);
            __m512 s = _mm512_mul_ps(dots16(q, k0 + (size_t)j0 * C3, C3, nb, HS), _mm512_set1_ps(scale));
            if (alibi_slopes) {
                __m512 dist = _mm512_sub_ps(_mm512_set1_ps((float)(t - j0)), iota);   /* t - j, exact */
                s = _mm512_sub_ps(s, _mm512_mul_ps(_mm512_set1_ps(alibi_slopes[h]), dist));
            }
            _mm512_mask_storeu_ps(att_row + j0, m, s);
            vmax = _mm512_mask_max_ps(vmax, m, vmax, s);
        }
        const __m512 maxv = _mm512_set1_ps(_mm512_reduce_max_ps(vmax));
        /* softmax over the prefix; the sum is >= 1 (the max term is exp(0) = 1) */
        __m512 vsum = _mm512_setzero_ps();
        for (int j0 = 0; j0 < n; j0 += 16) {
            __mmask16 m = lanes(n - j0);
            __m512 e = exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, att_row + j0), maxv));
            e = _mm512_maskz_mov_ps(m, e);
            _mm512_mask_storeu_ps(att_row + j0, m, e);
            vsum = _mm512_add_ps(vsum, e);
        }
        const __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(vsum));
        for (int j0 = 0; j0 < n; j0 += 16) {
            __mmask16 m = lanes(n - j0);
            _mm512_mask_storeu_ps(att_row + j0, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, att_row + j0), inv));
        }

        float *o = out + ((size_t)b * T + t) * (size_t)C + (size_t)h * HS;           /* (HS) */
        for (int i = 0; i < HS; i++) o[i] = 0.0f;
        gemv_acc(o, att_row, 1, k0 + C, C3, n, HS);
    }
}

void attention_backward_avx512(float *dqkv, const float *dout, const float *qkv, const float *att,
                               int B, int T, int C, int NH) {
    const int HS = C / NH;
    const size_t C3 = 3 * (size_t)C;
    const float scale = 1.0f / sqrtf((float)HS);
    const int n_tasks = B * NH;
#pragma omp parallel for schedule(dynamic, 1) if ((long long)n_tasks * T * T >= 4096)
    for (int task = 0; task < n_tasks; task++) {
        int b = task / NH, h = task % NH;
        float buf[ATT_ROW_CHUNK];
        const size_t base = (size_t)b * T * C3 + (size_t)h * HS;
        const float *k0 = qkv + base + C, *v0 = qkv + base + 2 * (size_t)C;   /* (T,HS) stride 3C */
        float *dk0 = dqkv + base + C, *dv0 = dqkv + base + 2 * (size_t)C;     /* (T,HS) stride 3C */
        const float *att_bh = att + ((size_t)b * NH + h) * T * (size_t)T;   /* (T,T) */
        const float *dy0 = dout + (size_t)b * T * C + (size_t)h * HS;        /* (T,HS) stride C */
        /* dv_j += sum_{t>=j} p_tj dy_t: down column j of att, summed in
         * registers (att holds every row, so no read-modify-write per t) */
        for (int j = 0; j < T; j++)
            gemv_acc(dv0 + (size_t)j * C3, att_bh + (size_t)j * T + j, (size_t)T, dy0 + (size_t)j * C, (size_t)C,
                     T - j, HS);
        for (int t = 0; t < T; t++) {
            const float *att_row = att_bh + (size_t)t * T;                             /* (T) */
            const float *q = qkv + base + (size_t)t * C3;                              /* (HS) */
            float *dq = dqkv + base + (size_t)t * C3;                                  /* (HS) */
            const float *dy = dout + ((size_t)b * T + t) * (size_t)C + (size_t)h * HS; /* (HS) */
            const int n = t + 1;

            /* dp_j = dy . v_j (kept for the first chunk), dot = sum_j p_j dp_j */
            __m512 vdot = _mm512_setzero_ps();
            for (int j0 = 0; j0 < n; j0 += 16) {
                int nb = n - j0 < 16 ? n - j0 : 16;
                __mmask16 m = lanes(nb);
                __m512 dp = dots16(dy, v0 + (size_t)j0 * C3, C3, nb, HS);
                vdot = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, att_row + j0), dp, vdot);
                if (j0 < ATT_ROW_CHUNK) _mm512_mask_storeu_ps(buf + j0, m, dp);
            }
            const __m512 dot = _mm512_set1_ps(_mm512_reduce_add_ps(vdot));
            /* softmax backward ds_j = p_j (dp_j - dot) scale, then through
             * s_j = scale q.k_j: dq += sum_j ds_j k_j, dk_j += ds_j q */
            for (int c0 = 0; c0 < n; c0 += ATT_ROW_CHUNK) {
                int nc = n - c0 < ATT_ROW_CHUNK ? n - c0 : ATT_ROW_CHUNK;
                for (int j0 = 0; j0 < nc; j0 += 16) {
                    int nb = nc - j0 < 16 ? nc - j0 : 16;
                    __mmask16 m = lanes(nb);
                    __m512 dp = c0 == 0 ? _mm512_maskz_loadu_ps(m, buf + j0)
                                        : dots16(dy, v0 + (size_t)(c0 + j0) * C3, C3, nb, HS);
                    __m512 p = _mm512_maskz_loadu_ps(m, att_row + c0 + j0);
                    __m512 ds = _mm512_mul_ps(_mm512_mul_ps(p, _mm512_sub_ps(dp, dot)), _mm512_set1_ps(scale));
                    _mm512_mask_storeu_ps(buf + j0, m, ds);
                }
                gemv_acc(dq, buf, 1, k0 + (size_t)c0 * C3, C3, nc, HS);
                axpy_rows(dk0 + (size_t)c0 * C3, C3, buf, nc, q, HS);
            }
        }
    }
}

#else
/* Not x86-64: attention.c never calls these. */
void attention_forward_avx512(float *out, float *att, const float *qkv, const float *alibi_slopes,
                              int B, int T, int C, int NH) {
    (void)out; (void)att; (void)qkv; (void)alibi_slopes; (void)B; (void)T; (void)C; (void)NH;
}
void attention_backward_avx512(float *dqkv, const float *dout, const float *qkv, const float *att,
                               int B, int T, int C, int NH) {
    (void)dqkv; (void)dout; (void)qkv; (void)att; (void)B; (void)T; (void)C; (void)NH;
}
void attention_exp_avx512(float *y, const float *x, size_t n) {
    (void)y; (void)x; (void)n;
}
#endif
