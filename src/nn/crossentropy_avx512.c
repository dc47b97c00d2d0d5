/*
 * crossentropy_avx512.c — the cross-entropy forward of crossentropy_impl.h
 * compiled with AVX-512 flags (the Makefile adds them by file name);
 * crossentropy.c calls it when the CPU has avx512f.
 */
#include "nn/crossentropy.h"

#if defined(__x86_64__)
#include "nn/crossentropy_impl.h"

void crossentropy_forward_avx512(float *losses, float *probs, const float *logits, const int *targets, int N,
                                 int V);

void crossentropy_forward_avx512(float *losses, float *probs, const float *logits, const int *targets, int N,
                                 int V) {
    crossentropy_forward_impl(losses, probs, logits, targets, N, V);
}
#endif
