/*
 * residual.h — the residual connection out = inp1 + inp2 (elementwise).
 */
#ifndef ROPEGPT_NN_RESIDUAL_H
#define ROPEGPT_NN_RESIDUAL_H

#include <stddef.h>

/* out[i] = inp1[i] + inp2[i]; out may alias either input.  all (n) */
void residual_forward(float *out, const float *inp1, const float *inp2, size_t n);

/* Accumulates: dinp1[i] += dout[i], dinp2[i] += dout[i].  all (n) */
void residual_backward(float *dinp1, float *dinp2, const float *dout, size_t n);

#endif
