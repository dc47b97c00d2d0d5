/*
 * attention_simd.h — internal: the AVX-512 attention kernels of
 * attention_avx512.c, selected at run time by attention.c (same contract as
 * attention_forward/_backward in attention.h), and the vector exp they use,
 * exposed so a test can check its accuracy against libm.
 */
#ifndef ROPEGPT_NN_ATTENTION_SIMD_H
#define ROPEGPT_NN_ATTENTION_SIMD_H

#include <stddef.h>

void attention_forward_avx512(float *out, float *att, const float *qkv, const float *alibi_slopes,
                              int B, int T, int C, int NH);
void attention_backward_avx512(float *dqkv, const float *dout, const float *qkv, const float *att,
                               const float *out, int B, int T, int C, int NH);
/* The kernels keep per-thread buffers on the stack: HS x 16 floats three times
 * (48 KiB at the largest head) and one float per query row of a chunk
 * (the backward takes the rows ATT_ROWS_CHUNK at a time: 4 KiB). */
#define ATT_HS_MAX 256
#define ATT_ROWS_CHUNK 1024
/* 1 when the two kernels above take heads of this size (any T). */
int attention_avx512_fits(int HS);
/* y[i] = exp(x[i]) for x[i] <= 0 (softmax arguments), 16 lanes at a time. */
void attention_exp_avx512(float *y, const float *x, size_t n);

#endif
