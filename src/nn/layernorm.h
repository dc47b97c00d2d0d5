/*
 * layernorm.h — LayerNorm over the last dimension (Ba et al. 2016), eps 1e-5
 * as in GPT-2 / PyTorch's default.
 */
#ifndef ROPEGPT_NN_LAYERNORM_H
#define ROPEGPT_NN_LAYERNORM_H

/* out[n,:] = (inp[n,:] - mean[n]) * rstd[n] * weight + bias, with the biased
 * variance (divide by C); mean and rstd are saved for the backward.
 *   out (N,C)  mean (N)  rstd (N)  inp (N,C)  weight (C)  bias (C) */
void layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                       const float *weight, const float *bias, int N, int C);

/* res = inp1 + inp2 (the residual add), then out, mean, rstd as
 * layernorm_forward of res: one pass, the row still in L1. res may alias
 * inp1 or inp2.  res, out, inp1, inp2 (N,C)  mean, rstd (N) */
void layernorm_residual_forward(float *res, float *out, float *mean, float *rstd, const float *inp1,
                                const float *inp2, const float *weight, const float *bias, int N, int C);

/* Accumulates (+=) dinp, dweight and dbias. Deterministic for any thread
 * count: rows of dinp are independent; dweight/dbias columns are each summed
 * over rows 0..N-1 in order by one thread.
 *   dinp (N,C)  dweight (C)  dbias (C)  dout (N,C)  inp (N,C)  weight (C)
 *   mean (N)  rstd (N) */
void layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                        const float *inp, const float *weight, const float *mean,
                        const float *rstd, int N, int C);

/* layernorm_backward with chosen outputs overwritten instead of accumulated:
 * LN_SET_DINP (dinp), LN_SET_DPARAMS (dweight and dbias); flags 0 is
 * layernorm_backward. Same bits as zeroing first (but the sign of zeros). */
enum { LN_SET_DINP = 1, LN_SET_DPARAMS = 2 };
void layernorm_backward_flags(int flags, float *dinp, float *dweight, float *dbias, const float *dout,
                              const float *inp, const float *weight, const float *mean,
                              const float *rstd, int N, int C);

#endif
