/*
 * layernorm.c — LayerNorm forward and backward over rows of C channels.
 * Row statistics accumulate in double: C is small here, but a float sum of
 * squares loses digits when the row mean is large against its spread. Rows
 * are independent, so OpenMP splits them; the parameter gradients (a sum over
 * rows) are split by columns instead, so each column is summed in row order
 * by a single thread and the bits do not depend on the thread count.
 */
#include "nn/layernorm.h"

#include <math.h>
#include <stddef.h>

#define LN_EPS 1e-5
/* rows x channels below which one thread is faster than a parallel region */
#define LN_OMP_MIN 16384
/* columns handled together in the dweight/dbias pass (stack accumulators) */
#define LN_COL_BLOCK 32

void layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                       const float *weight, const float *bias, int N, int C) {
    int use_omp = (size_t)N * (size_t)C >= LN_OMP_MIN;
    (void)use_omp;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (use_omp)
#endif
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * (size_t)C;   /* (C) */
        float *y = out + (size_t)n * (size_t)C;         /* (C) */
        double s = 0.0;
        for (int i = 0; i < C; i++) s += x[i];
        double m = s / C;
        double v = 0.0;   /* two-pass variance: no cancellation of E[x^2] - m^2 */
        for (int i = 0; i < C; i++) {
            double d = x[i] - m;
            v += d * d;
        }
        v /= C;
        double rs = 1.0 / sqrt(v + LN_EPS);
        float mf = (float)m, rsf = (float)rs;
        for (int i = 0; i < C; i++) y[i] = (x[i] - mf) * rsf * weight[i] + bias[i];
        mean[n] = mf;
        rstd[n] = rsf;
    }
}

void layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                        const float *inp, const float *weight, const float *mean,
                        const float *rstd, int N, int C) {
    layernorm_backward_flags(0, dinp, dweight, dbias, dout, inp, weight, mean, rstd, N, C);
}

void layernorm_backward_flags(int flags, float *dinp, float *dweight, float *dbias, const float *dout,
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
        double g_mean = 0.0, gx_mean = 0.0;
        for (int i = 0; i < C; i++) {
            float xhat = (x[i] - m) * rs;
            float g = dy[i] * weight[i];
            g_mean += g;
            gx_mean += (double)g * xhat;
        }
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
