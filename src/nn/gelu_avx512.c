/*
 * gelu_avx512.c — the GELU loops of gelu_impl.h compiled with avx512 flags
 * (the Makefile adds them by file name); gelu.c calls these when the CPU
 * has avx512.
 */
#include "nn/gelu.h"

#if defined(__x86_64__)
#include "nn/gelu_impl.h"

void gelu_forward_avx512(float *out, const float *inp, size_t n);
void gelu_backward_avx512(float *dinp, const float *inp, const float *dout, size_t n);

void gelu_forward_avx512(float *out, const float *inp, size_t n) {
    gelu_forward_impl(out, inp, n);
}

void gelu_backward_avx512(float *dinp, const float *inp, const float *dout, size_t n) {
    gelu_backward_impl(dinp, inp, dout, n);
}
#endif
