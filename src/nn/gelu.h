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

#endif
