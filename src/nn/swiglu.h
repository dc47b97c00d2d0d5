/*
 * swiglu.h — the SwiGLU gate of the Llama MLP (Shazeer 2020, "GLU Variants
 * Improve Transformer", eq. 5 with Swish_1 = SiLU): h = silu(gate) * up,
 * where gate = x W1^T and up = x W3^T are computed by the caller's matmuls
 * and h feeds W2. silu(g) = g * sigmoid(g) (Elfwing et al. 2018).
 */
#ifndef ROPEGPT_NN_SWIGLU_H
#define ROPEGPT_NN_SWIGLU_H

#include <stddef.h>

/* out[i] = silu(gate[i]) * up[i]. out may alias gate or up.  all (n) */
void swiglu_forward(float *out, const float *gate, const float *up, size_t n);

/* ACCUMULATES: dgate += dout * up * silu'(gate), dup += dout * silu(gate),
 * silu'(g) = s + g s (1 - s), s = sigmoid(g).  all (n); no aliasing. */
void swiglu_backward(float *dgate, float *dup, const float *dout, const float *gate,
                     const float *up, size_t n);

#endif
