/*
 * gelu.c — tanh-approximate GELU, forward and backward. Elementwise, so the
 * OpenMP split changes nothing in the results (each element is computed by
 * one thread with the same instructions).
 */
#include "nn/gelu.h"

#include <math.h>

/* sqrt(2/pi) */
#define GELU_SCALE 0.7978845608028654f
#define GELU_CUBIC 0.044715f
/* below this many elements, threads cost more than they save */
#define GELU_OMP_MIN 16384

void gelu_forward(float *out, const float *inp, size_t n) {
    long long nn = (long long)n;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (n >= GELU_OMP_MIN)
#endif
    for (long long i = 0; i < nn; i++) {
        float x = inp[i];
        float u = GELU_SCALE * (x + GELU_CUBIC * x * x * x);
        out[i] = 0.5f * x * (1.0f + tanhf(u));
    }
}

void gelu_backward(float *dinp, const float *inp, const float *dout, size_t n) {
    long long nn = (long long)n;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (n >= GELU_OMP_MIN)
#endif
    for (long long i = 0; i < nn; i++) {
        float x = inp[i];
        float u = GELU_SCALE * (x + GELU_CUBIC * x * x * x);
        float th = tanhf(u);
        float sech2 = 1.0f - th * th;   /* d tanh(u)/du */
        float du_dx = GELU_SCALE * (1.0f + 3.0f * GELU_CUBIC * x * x);
        float grad = 0.5f * (1.0f + th) + 0.5f * x * sech2 * du_dx;
        dinp[i] += grad * dout[i];
    }
}
