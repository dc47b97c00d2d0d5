/*
 * layernorm_impl.h — the LayerNorm loops, included (not linked) by
 * layernorm.c and layernorm_avx512.c, so one source is compiled once per ISA
 * and layernorm.c picks the widest at run time (the baseline x86-64 build
 * has only SSE2: two doubles per register for the row statistics). Built
 * with -ffp-contract=off, so both copies do the same float and double
 * operations and give the same bits.
 *
 * Row statistics accumulate in double: C is small here, but a float sum of
 * squares loses digits when the row mean is large against its spread. Rows
 * are independent, so OpenMP splits them; the parameter gradients (a sum over
 * rows) are split by columns instead, so each column is summed in row order
 * by a single thread and the bits do not depend on the thread count.
 * Internal: include only from src/nn/layernorm*.c.
 */
#ifndef ROPEGPT_LAYERNORM_IMPL_H
#define ROPEGPT_LAYERNORM_IMPL_H

#include <math.h>
#include <stddef.h>

#include "nn/layernorm.h"

#define LN_EPS 1e-5
/* rows x channels below which one thread is faster than a parallel region */
#define LN_OMP_MIN 16384
/* columns handled together in the dweight/dbias pass (stack accumulators) */
#define LN_COL_BLOCK 32

/* Row sums in LN_LANES interleaved double accumulators (lane j takes
 * elements j, j + 8, ...), added pairwise at the end: a fixed order, so the
 * same bits on any thread count, without one add's latency per element (a
 * single running double sum made LayerNorm ~9% of a small model's step). */
#define LN_LANES 8
static inline double ln_lanes_total(const double acc[LN_LANES]) {
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

/* sum_i x[i] */
static inline double ln_row_sum(const float *x, int C) {
    double acc[LN_LANES] = {0};
    int i = 0;
    for (; i + LN_LANES <= C; i += LN_LANES)
        for (int j = 0; j < LN_LANES; j++) acc[j] += (double)x[i + j];
    for (int j = 0; i < C; i++, j++) acc[j] += (double)x[i];
    return ln_lanes_total(acc);
}

/* sum_i (x[i] - m)^2 */
static inline double ln_row_sq_dev(const float *x, double m, int C) {
    double acc[LN_LANES] = {0};
    int i = 0;
    for (; i + LN_LANES <= C; i += LN_LANES)
        for (int j = 0; j < LN_LANES; j++) {
            double d = (double)x[i + j] - m;
            acc[j] += d * d;
        }
    for (int j = 0; i < C; i++, j++) {
        double d = (double)x[i] - m;
        acc[j] += d * d;
    }
    return ln_lanes_total(acc);
}

/* One row: y = (x - mean) * rstd * weight + bias. */
static inline void ln_row_forward(float *y, float *mean, float *rstd, const float *x, const float *weight,
                                  const float *bias, int C) {
    double m = ln_row_sum(x, C) / C;
    double v = ln_row_sq_dev(x, m, C) / C;   /* two-pass variance: no cancellation of E[x^2] - m^2 */
    double rs = 1.0 / sqrt(v + LN_EPS);
    float mf = (float)m, rsf = (float)rs;
    for (int i = 0; i < C; i++) y[i] = (x[i] - mf) * rsf * weight[i] + bias[i];
    *mean = mf;
    *rstd = rsf;
}

/* res = inp1 + inp2 when inp2 is given (then the row is normalised from
 * res, still in L1), else the rows of inp1 are normalised. */
static inline void layernorm_forward_impl(float *res, float *out, float *mean, float *rstd, const float *inp1,
                                          const float *inp2, const float *weight, const float *bias, int N,
                                          int C) {
    int use_omp = (size_t)N * (size_t)C >= LN_OMP_MIN;
    (void)use_omp;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (use_omp)
#endif
    for (int n = 0; n < N; n++) {
        const size_t off = (size_t)n * (size_t)C;
        const float *x = inp1 + off;   /* (C) */
        if (inp2) {
            float *r = res + off;      /* (C); may alias inp1 */
            const float *x2 = inp2 + off;
            for (int i = 0; i < C; i++) r[i] = x[i] + x2[i];
            x = r;
        }
        ln_row_forward(out + off, mean + n, rstd + n, x, weight, bias, C);
    }
}

static inline void layernorm_backward_impl(int flags, float *dinp, float *dweight, float *dbias, const float *dout,
                                           const float *inp, const float *weight, const float *mean,
                                           const float *rstd, int N, int C) {
    const int set_dinp = (flags & LN_SET_DINP) != 0, set_dparams = (flags & LN_SET_DPARAMS) != 0;
    int use_omp = (size_t)N * (size_t)C >= LN_OMP_MIN;
    (void)use_omp;
    /* dinp: with xhat = (x - mean) * rstd and g = dout * weight,
     * dx = rstd * (g - mean(g) - xhat * mean(g * xhat)). */
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (use_omp)
#endif
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * (size_t)C;      /* (C) */
        const float *dy = dout + (size_t)n * (size_t)C;    /* (C) */
        float *dx = dinp + (size_t)n * (size_t)C;          /* (C) */
        float m = mean[n], rs = rstd[n];
        double ga[LN_LANES] = {0}, gxa[LN_LANES] = {0};
        int i0 = 0;
        for (; i0 + LN_LANES <= C; i0 += LN_LANES)
            for (int j = 0; j < LN_LANES; j++) {
                float xhat = (x[i0 + j] - m) * rs;
                float g = dy[i0 + j] * weight[i0 + j];
                ga[j] += g;
                gxa[j] += (double)g * xhat;
            }
        for (int j = 0; i0 < C; i0++, j++) {
            float xhat = (x[i0] - m) * rs;
            float g = dy[i0] * weight[i0];
            ga[j] += g;
            gxa[j] += (double)g * xhat;
        }
        const double g_mean = ln_lanes_total(ga), gx_mean = ln_lanes_total(gxa);
        float gm = (float)(g_mean / C), gxm = (float)(gx_mean / C);
        for (int i = 0; i < C; i++) {
            float xhat = (x[i] - m) * rs;
            float g = dy[i] * weight[i];
            const float v = rs * (g - gm - xhat * gxm);
            dx[i] = set_dinp ? v : dx[i] + v;
        }
    }
    /* dweight = sum_n dout * xhat, dbias = sum_n dout: column blocks, rows in order. */
    int nblocks = (C + LN_COL_BLOCK - 1) / LN_COL_BLOCK;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (use_omp)
#endif
    for (int blk = 0; blk < nblocks; blk++) {
        int c0 = blk * LN_COL_BLOCK;
        int c1 = c0 + LN_COL_BLOCK < C ? c0 + LN_COL_BLOCK : C;
        double dw[LN_COL_BLOCK] = {0}, db[LN_COL_BLOCK] = {0};
        for (int n = 0; n < N; n++) {
            const float *x = inp + (size_t)n * (size_t)C;     /* (C) */
            const float *dy = dout + (size_t)n * (size_t)C;   /* (C) */
            float m = mean[n], rs = rstd[n];
            for (int i = c0; i < c1; i++) {
                float xhat = (x[i] - m) * rs;
                dw[i - c0] += (double)dy[i] * xhat;
                db[i - c0] += dy[i];
            }
        }
        for (int i = c0; i < c1; i++) {
            dweight[i] = set_dparams ? (float)dw[i - c0] : dweight[i] + (float)dw[i - c0];
            dbias[i] = set_dparams ? (float)db[i - c0] : dbias[i] + (float)db[i - c0];
        }
    }
}

#endif
