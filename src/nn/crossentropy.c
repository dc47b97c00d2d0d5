/*
 * crossentropy.c — fused softmax + cross-entropy, forward and backward.
 * Rows are independent, so OpenMP splits rows and each output element is
 * written by one thread. The row max is subtracted before exp (no overflow)
 * and the sum of exponentials accumulates in double, so the loss of a
 * confident row keeps its digits. The forward's loop lives in
 * crossentropy_impl.h (compiled twice: portable and AVX-512).
 */
#include "nn/crossentropy.h"

#include <math.h>
#include <stddef.h>

#include "nn/crossentropy_impl.h"

void crossentropy_forward_avx512(float *losses, float *probs, const float *logits, const int *targets, int N,
                                 int V);

void crossentropy_forward(float *losses, float *probs, const float *logits,
                          const int *targets, int N, int V) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    if (__builtin_cpu_supports("avx512f")) {
        crossentropy_forward_avx512(losses, probs, logits, targets, N, V);
        return;
    }
#endif
    crossentropy_forward_impl(losses, probs, logits, targets, N, V);
}

static void ce_backward(float *dlogits, const float *probs, const int *targets, const float *dlosses, int N,
                        int V, int set) {
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
            const float g = (p[v] - ind) * dl;
            dx[v] = set ? g : dx[v] + g;
        }
    }
}

void crossentropy_backward(float *dlogits, const float *probs, const int *targets,
                           const float *dlosses, int N, int V) {
    ce_backward(dlogits, probs, targets, dlosses, N, V, 0);
}

void crossentropy_backward_set(float *dlogits, const float *probs, const int *targets,
                               const float *dlosses, int N, int V) {
    ce_backward(dlogits, probs, targets, dlosses, N, V, 1);
}
