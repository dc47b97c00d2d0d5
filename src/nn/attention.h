/*
 * attention.h — causal multi-head scaled dot-product attention (Vaswani et
 * al. 2017 eq. 1) on a packed (B,T,3C) qkv buffer: q = channels [0,C),
 * k = [C,2C), v = [2C,3C); head h uses [h*HS,(h+1)*HS) of each, HS = C/NH.
 * Scores are scaled by 1/sqrt(HS); with ALiBi (Press et al. 2022) the score
 * of query t on key j gets -slope_h * (t - j). The softmax runs only over the
 * causal prefix j <= t (no masking sentinel). RoPE is applied by the caller
 * to q and k before the forward and to dq, dk after the backward.
 * No call allocates memory. Deterministic for any thread count.
 */
#ifndef ROPEGPT_NN_ATTENTION_H
#define ROPEGPT_NN_ATTENTION_H

/* out (B,T,C): per head, sum_j att[b,h,t,j] * v[b,j]
 * att (B,NH,T,T): softmax probabilities; only entries j <= t are written
 *   (the rest are left as they were and never read)
 * qkv (B,T,3C)  alibi_slopes (NH) or NULL.  C must be a multiple of NH. */
void attention_forward(float *out, float *att, const float *qkv, const float *alibi_slopes,
                       int B, int T, int C, int NH);

/* Accumulates (+=) into dqkv (B,T,3C) the gradient of attention_forward
 * given dout (B,T,C), the same qkv (B,T,3C), the att (B,NH,T,T) and out
 * (B,T,C) saved by the forward and the same alibi_slopes (the slopes only
 * enter through att, so they are accepted for symmetry and may be NULL).
 * The fast kernels take the softmax backward's row term sum_j p_j dp_j as
 * dout . out (the same sum, FlashAttention's identity); the scalar twin
 * computes it from its definition, which is what the tests compare. */
void attention_backward(float *dqkv, const float *dout, const float *qkv, const float *att,
                        const float *out, const float *alibi_slopes, int B, int T, int C, int NH);

/* The plain scalar twins of the two functions above (same contract, serial
 * dot products, libm expf). attention_forward/_backward use them when the CPU
 * has no AVX-512 (the choice depends on the CPU only, never on threads); tests
 * and bench/attention_bench.c compare the fast path against them. */
void attention_forward_scalar(float *out, float *att, const float *qkv, const float *alibi_slopes,
                              int B, int T, int C, int NH);
void attention_backward_scalar(float *dqkv, const float *dout, const float *qkv, const float *att,
                               const float *out, const float *alibi_slopes, int B, int T, int C, int NH);

/* 1 when attention_forward/_backward run the AVX-512 kernels on this CPU. */
int attention_uses_avx512(void);

#endif
