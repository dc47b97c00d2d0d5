/*
 * gelu.h — the tanh approximation of GELU used by GPT-2 (Hendrycks & Gimpel
 * 2016, eq. for "0.5x(1 + tanh[sqrt(2/pi)(x + 0.044715x^3)])").
 */
#ifndef ROPEGPT_NN_GELU_H
#define ROPEGPT_NN_GELU_H

#include <stddef.h>

/* out[i] = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), x = inp[i].
 * out may alias inp.  all (n) */
void gelu_forward(float *out, const float *inp, size_t n);

/* Accumulates: dinp[i] += gelu'(inp[i]) * dout[i].  all (n) */
void gelu_backward(float *dinp, const float *inp, const float *dout, size_t n);

/* Overwrites: dinp[i] = gelu'(inp[i]) * dout[i] (gelu_backward into zeros,
 * but for the sign of zero results), so a caller need not clear dinp. */
void gelu_backward_set(float *dinp, const float *inp, const float *dout, size_t n);

/* The forward for training: out[i] = gelu(x) as gelu_forward, and
 * deriv[i] = gelu'(x), the factor gelu_backward multiplies dout by (same
 * bits), x = inp[i]. deriv may alias inp: a trainer can overwrite the
 * pre-activation it no longer needs, and its backward is then one multiply
 * (gelu_backward_saved) instead of a second exp and division.  all (n) */
void gelu_forward_deriv(float *out, float *deriv, const float *inp, size_t n);

/* Overwrites: dinp[i] = deriv[i] * dout[i], with deriv from
 * gelu_forward_deriv; the same bits as gelu_backward_set.  all (n) */
void gelu_backward_saved(float *dinp, const float *deriv, const float *dout, size_t n);

#endif
