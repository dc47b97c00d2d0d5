/*
 * rmsnorm.c — RMSNorm forward and backward (Zhang & Sennrich 2019). With
 * r = (mean(x^2) + eps)^(-1/2) and y_i = w_i x_i r:
 *   dL/dw_i += dy_i x_i r
 *   dL/dx_j += r w_j dy_j - (r^3 / C) x_j sum_i w_i dy_i x_i
 * since dr/dx_j = -r^3 x_j / C. Rows are independent, so threads split rows;
 * dweight is reduced serially over rows in a fixed order (same bits for any
 * thread count).
 */
#include "nn/rmsnorm.h"

#include <math.h>
#include <stddef.h>

/* below this many elements, threads cost more than they save */
#define RMS_OMP_MIN 32768

void rmsnorm_forward(float *out, float *rstd, const float *inp, const float *weight,
                     int N, int C, float eps) {
    size_t total = (size_t)N * (size_t)C;
    (void)total;   /* read only by the OpenMP if-clause */
#pragma omp parallel for schedule(static) if (total >= RMS_OMP_MIN)
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C;
        float *y = out + (size_t)n * C;
        double ss = 0.0;
        for (int c = 0; c < C; c++) ss += (double)x[c] * x[c];
        float r = (float)(1.0 / sqrt(ss / C + (double)eps));
        if (rstd) rstd[n] = r;
        for (int c = 0; c < C; c++) y[c] = x[c] * r * weight[c];
    }
}

void rmsnorm_backward(float *dinp, float *dweight, const float *dout, const float *inp,
                      const float *weight, const float *rstd, int N, int C) {
    size_t total = (size_t)N * (size_t)C;
    (void)total;   /* read only by the OpenMP if-clause */
#pragma omp parallel for schedule(static) if (total >= RMS_OMP_MIN)
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C;
        const float *dy = dout + (size_t)n * C;
        float *dx = dinp + (size_t)n * C;
        float r = rstd[n];
        double dot = 0.0;   /* sum_i w_i dy_i x_i */
        for (int c = 0; c < C; c++) dot += (double)weight[c] * dy[c] * x[c];
        float k = (float)((double)r * r * r * dot / C);
        for (int c = 0; c < C; c++) dx[c] += r * weight[c] * dy[c] - k * x[c];
    }
    if (!dweight) return;
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C;
        const float *dy = dout + (size_t)n * C;
        float r = rstd[n];
        for (int c = 0; c < C; c++) dweight[c] += dy[c] * x[c] * r;
    }
}
