/*
 * rmsnorm.h — RMSNorm (Zhang & Sennrich 2019, "Root Mean Square Layer
 * Normalization", eq. 4), the normalization of the Llama architecture:
 * y = x / sqrt(mean(x^2) + eps) * weight, no mean subtraction and no bias.
 */
#ifndef ROPEGPT_NN_RMSNORM_H
#define ROPEGPT_NN_RMSNORM_H

/* Llama and llama2.c use eps = 1e-5 inside the square root. */
#define RMSNORM_EPS 1e-5f

/* out[n,:] = inp[n,:] * rstd[n] * weight, rstd[n] = 1/sqrt(mean_c inp[n,c]^2 + eps).
 * The mean of squares is accumulated in double (C can be thousands of terms).
 * out may alias inp. rstd may be NULL (inference: nothing saved).
 * out (N,C), rstd (N) or NULL, inp (N,C), weight (C). */
void rmsnorm_forward(float *out, float *rstd, const float *inp, const float *weight,
                     int N, int C, float eps);

/* ACCUMULATES: dinp += dL/dinp, dweight += dL/dweight (dweight may be NULL).
 * rstd is what the forward saved. dinp must not alias dout.
 * dinp (N,C), dweight (C), dout (N,C), inp (N,C), weight (C), rstd (N). */
void rmsnorm_backward(float *dinp, float *dweight, const float *dout, const float *inp,
                      const float *weight, const float *rstd, int N, int C);

#endif
