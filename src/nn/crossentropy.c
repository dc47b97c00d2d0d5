/*
 * crossentropy.c — fused softmax + cross-entropy, forward and backward.
 * Rows are independent, so OpenMP splits rows and each output element is
 * written by one thread. The row max is subtracted before exp (no overflow)
 * and the sum of exponentials accumulates in double, so the loss of a
 * confident row keeps its digits.
 */
#include "nn/crossentropy.h"

#include <math.h>
#include <stddef.h>

#define CE_OMP_MIN 16384

void crossentropy_forward(float *losses, float *probs, const float *logits,
                          const int *targets, int N, int V) {
    int use_omp = (size_t)N * (size_t)V >= CE_OMP_MIN;
    (void)use_omp;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (use_omp)
#endif
    for (int n = 0; n < N; n++) {
        const float *x = logits + (size_t)n * (size_t)V;   /* (V) */
        float *p = probs + (size_t)n * (size_t)V;          /* (V) */
        float maxv = x[0];
        for (int v = 1; v < V; v++) if (x[v] > maxv) maxv = x[v];
        double sum = 0.0;
        for (int v = 0; v < V; v++) {
            float e = expf(x[v] - maxv);
            p[v] = e;
            sum += e;
        }
        float inv = (float)(1.0 / sum);
        for (int v = 0; v < V; v++) p[v] *= inv;
        losses[n] = (float)(log(sum) + (double)maxv - (double)x[targets[n]]);
    }
}

void crossentropy_backward(float *dlogits, const float *probs, const int *targets,
                           const float *dlosses, int N, int V) {
    int use_omp = (size_t)N * (size_t)V >= CE_OMP_MIN;
    (void)use_omp;
    const float mean_scale = 1.0f / (float)N;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (use_omp)
#endif
    for (int n = 0; n < N; n++) {
        const float *p = probs + (size_t)n * (size_t)V;   /* (V) */
        float *dx = dlogits + (size_t)n * (size_t)V;      /* (V) */
        float dl = dlosses ? dlosses[n] : mean_scale;
        int ix = targets[n];
        for (int v = 0; v < V; v++) {
            float ind = v == ix ? 1.0f : 0.0f;
            dx[v] += (p[v] - ind) * dl;
        }
    }
}
