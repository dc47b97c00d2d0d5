/*
 * encoder.h — token embedding lookup (plus an optional learned position
 * table), the first layer of the GPT. Free functions over flat float arrays
 * in llm.c style: outputs first, then inputs, then sizes.
 */
#ifndef ROPEGPT_NN_ENCODER_H
#define ROPEGPT_NN_ENCODER_H

/* out[b,t,:] = wte[inp[b,t],:] * wte_scale (+ wpe[t,:] when wpe != NULL).
 * wte_scale is 1, or sqrt(C) for the sinusoidal encoding (Vaswani et al.
 * 2017 §3.4 scale the embedding by sqrt(d_model)). Tokens must lie in [0, V)
 * and, with wpe, T must not exceed the rows of wpe; the caller checks both.
 *   out (B,T,C)  inp (B,T)  wte (V,C)  wpe (maxT,C) or NULL */
void encoder_forward(float *out, const int *inp, const float *wte, const float *wpe,
                     float wte_scale, int B, int T, int C);

/* Accumulates (+=) the gradients of encoder_forward:
 *   dwte[inp[b,t],:] += wte_scale * dout[b,t,:], dwpe[t,:] += dout[b,t,:].
 * dwpe may be NULL (no learned positions). Deterministic: every row is summed
 * in (b,t) order whatever the thread count.
 *   dwte (V,C)  dwpe (maxT,C) or NULL  dout (B,T,C)  inp (B,T) */
void encoder_backward(float *dwte, float *dwpe, const float *dout, const int *inp,
                      float wte_scale, int B, int T, int C);

#endif
