/*
 * gelu.c — tanh-approximate GELU (Hendrycks & Gimpel 2016, the form GPT-2
 * uses), forward and backward. Elementwise, so the OpenMP split changes
 * nothing in the results (each element is computed by one thread with the
 * same instructions).
 *
 * Speed: glibc's tanhf is a call per element and was a third of a training
 * step. We use 0.5 * (1 + tanh(u)) = sigmoid(2u) = 1 / (1 + exp(-2u)), with
 * an inlined exp the compiler can vectorise. The sigmoid form has no
 * cancellation (unlike (1 - e)/(1 + e) near u = 0), so the result keeps
 * float relative accuracy everywhere; gelu_exp() is within ~2 ulp of expf.
 */
#include "nn/gelu.h"
#include "nn/gelu_impl.h"

/* The AVX-512 copy of the loops (gelu_avx512.c, intrinsics doing the same
 * float operations): the branch-free clamp in gelu_exp only vectorises with
 * masked instructions (gcc 12 leaves the SSE2/AVX2 builds of gelu_impl.h
 * scalar, which is still ~2x faster than tanhf). */
void gelu_forward_avx512(float *out, const float *inp, size_t n);
void gelu_backward_avx512(float *dinp, const float *inp, const float *dout, size_t n, int set);
void gelu_forward_deriv_avx512(float *out, float *deriv, const float *inp, size_t n);

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define GELU_X86 1
#endif

void gelu_forward(float *out, const float *inp, size_t n) {
#ifdef GELU_X86
    if (__builtin_cpu_supports("avx512f")) { gelu_forward_avx512(out, inp, n); return; }
#endif
    gelu_forward_impl(out, inp, n);
}

static void backward(float *dinp, const float *inp, const float *dout, size_t n, int set) {
#ifdef GELU_X86
    if (__builtin_cpu_supports("avx512f")) { gelu_backward_avx512(dinp, inp, dout, n, set); return; }
#endif
    gelu_backward_impl(dinp, inp, dout, n, set);
}

void gelu_backward(float *dinp, const float *inp, const float *dout, size_t n) {
    backward(dinp, inp, dout, n, 0);
}

void gelu_backward_set(float *dinp, const float *inp, const float *dout, size_t n) {
    backward(dinp, inp, dout, n, 1);
}

void gelu_forward_deriv(float *out, float *deriv, const float *inp, size_t n) {
#ifdef GELU_X86
    if (__builtin_cpu_supports("avx512f")) { gelu_forward_deriv_avx512(out, deriv, inp, n); return; }
#endif
    gelu_forward_deriv_impl(out, deriv, inp, n);
}

void gelu_backward_saved(float *dinp, const float *deriv, const float *dout, size_t n) {
    long long nn = (long long)n;
#ifdef _OPENMP
#pragma omp parallel for simd schedule(static) if (n >= GELU_OMP_MIN)
#endif
    for (long long i = 0; i < nn; i++) dinp[i] = deriv[i] * dout[i];
}
