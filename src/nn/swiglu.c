/*
 * swiglu.c — SwiGLU forward and backward (Shazeer 2020). Elementwise, so the
 * OpenMP split cannot change any result bit. The loops live in
 * swiglu_impl.h; on CPUs with AVX-512 the copy compiled for it
 * (swiglu_avx512.c) runs: the branch-free clamp in nn_expf vectorises only
 * with masked instructions, so the baseline build stays scalar (the same
 * bits, since both copies do the same float operations).
 */
#include "nn/swiglu.h"
#include "nn/swiglu_impl.h"

void swiglu_forward_avx512(float *out, const float *gate, const float *up, size_t n);
void swiglu_backward_avx512(float *dgate, float *dup, const float *dout, const float *gate, const float *up,
                            size_t n);

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define SWIGLU_X86 1
#endif

void swiglu_forward(float *out, const float *gate, const float *up, size_t n) {
#ifdef SWIGLU_X86
    if (__builtin_cpu_supports("avx512f")) { swiglu_forward_avx512(out, gate, up, n); return; }
#endif
    swiglu_forward_impl(out, gate, up, n);
}

void swiglu_backward(float *dgate, float *dup, const float *dout, const float *gate, const float *up, size_t n) {
#ifdef SWIGLU_X86
    if (__builtin_cpu_supports("avx512f")) { swiglu_backward_avx512(dgate, dup, dout, gate, up, n); return; }
#endif
    swiglu_backward_impl(dgate, dup, dout, gate, up, n);
}
