/*
 * swiglu_avx512.c — the SwiGLU loops of swiglu_impl.h compiled with avx512
 * flags (the Makefile adds them by file name); swiglu.c calls these when
 * the CPU has avx512.
 */
#include "nn/swiglu.h"

#if defined(__x86_64__)
#include "nn/swiglu_impl.h"

void swiglu_forward_avx512(float *out, const float *gate, const float *up, size_t n);
void swiglu_backward_avx512(float *dgate, float *dup, const float *dout, const float *gate, const float *up,
                            size_t n);

void swiglu_forward_avx512(float *out, const float *gate, const float *up, size_t n) {
    swiglu_forward_impl(out, gate, up, n);
}

void swiglu_backward_avx512(float *dgate, float *dup, const float *dout, const float *gate, const float *up,
                            size_t n) {
    swiglu_backward_impl(dgate, dup, dout, gate, up, n);
}
#else
typedef int swiglu_avx512_unused; /* ISO C forbids an empty translation unit */
#endif
