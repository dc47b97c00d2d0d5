/*
 * crossentropy_impl.h — the softmax + cross-entropy forward loop, included
 * (not linked) by crossentropy.c and crossentropy_avx512.c, so one source is
 * compiled once per ISA and crossentropy.c picks the widest at run time. The
 * exp is nn_expf (vectorisable; glibc's expf was a call per logit), the max
 * is exact in any order, and the sum runs in 8 interleaved double lanes
 * added in a fixed order, so every ISA and thread count gives the same bits.
 * Internal: include only from src/nn/crossentropy*.c.
 */
#ifndef ROPEGPT_CROSSENTROPY_IMPL_H
#define ROPEGPT_CROSSENTROPY_IMPL_H

#include <math.h>
#include <stddef.h>

#include "nn/nn_exp.h"

#define CE_OMP_MIN 16384
#define CE_LANES 8

/* One row: p = softmax(x), returns -log p[target] as
 * logsumexp(x) - x[target] (a tiny probability keeps its digits). */
static inline float ce_row_forward(float *p, const float *x, int target, int V) {
    float mx[CE_LANES];
    for (int j = 0; j < CE_LANES; j++) mx[j] = x[0];
    int v = 0;
    for (; v + CE_LANES <= V; v += CE_LANES)
        for (int j = 0; j < CE_LANES; j++) mx[j] = x[v + j] > mx[j] ? x[v + j] : mx[j];
    for (int j = 0; v < V; v++, j++) mx[j] = x[v] > mx[j] ? x[v] : mx[j];
    float maxv = mx[0];
    for (int j = 1; j < CE_LANES; j++) maxv = mx[j] > maxv ? mx[j] : maxv;
#pragma omp simd
    for (int i = 0; i < V; i++) p[i] = nn_expf(x[i] - maxv);
    double acc[CE_LANES] = {0};
    v = 0;
    for (; v + CE_LANES <= V; v += CE_LANES)
        for (int j = 0; j < CE_LANES; j++) acc[j] += (double)p[v + j];
    for (int j = 0; v < V; v++, j++) acc[j] += (double)p[v];
    const double sum = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    const float inv = (float)(1.0 / sum);
#pragma omp simd
    for (int i = 0; i < V; i++) p[i] *= inv;
    return (float)(log(sum) + (double)maxv - (double)x[target]);
}

static inline void crossentropy_forward_impl(float *losses, float *probs, const float *logits,
                                             const int *targets, int N, int V) {
    int use_omp = (size_t)N * (size_t)V >= CE_OMP_MIN;
    (void)use_omp;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (use_omp)
#endif
    for (int n = 0; n < N; n++)
        losses[n] = ce_row_forward(probs + (size_t)n * (size_t)V, logits + (size_t)n * (size_t)V, targets[n], V);
}

#endif
