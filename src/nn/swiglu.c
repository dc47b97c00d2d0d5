/*
 * swiglu.c — SwiGLU forward and backward (Shazeer 2020). Elementwise, so the
 * OpenMP split cannot change any result bit. sigmoid is written as
 * 1/(1+exp(-g)), which is exact enough in float for |g| < 88 and saturates
 * cleanly (to 0 or 1) beyond.
 */
#include "nn/swiglu.h"

#include <math.h>

#define SWIGLU_OMP_MIN 32768

void swiglu_forward(float *out, const float *gate, const float *up, size_t n) {
    long long nn = (long long)n;
#pragma omp parallel for schedule(static) if (n >= SWIGLU_OMP_MIN)
    for (long long i = 0; i < nn; i++) {
        float g = gate[i];
        float s = 1.0f / (1.0f + expf(-g));
        out[i] = g * s * up[i];
    }
}

void swiglu_backward(float *dgate, float *dup, const float *dout, const float *gate,
                     const float *up, size_t n) {
    long long nn = (long long)n;
#pragma omp parallel for schedule(static) if (n >= SWIGLU_OMP_MIN)
    for (long long i = 0; i < nn; i++) {
        float g = gate[i];
        float s = 1.0f / (1.0f + expf(-g));
        float silu = g * s;
        dgate[i] += dout[i] * up[i] * (s + g * s * (1.0f - s));
        dup[i] += dout[i] * silu;
    }
}
