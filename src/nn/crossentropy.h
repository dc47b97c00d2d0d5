/*
 * crossentropy.h — fused softmax + cross-entropy over rows of V logits.
 */
#ifndef ROPEGPT_NN_CROSSENTROPY_H
#define ROPEGPT_NN_CROSSENTROPY_H

/* probs[n,:] = softmax(logits[n,:]); losses[n] = -log probs[n, targets[n]],
 * computed as logsumexp(logits[n,:]) - logits[n, targets[n]] so a tiny
 * probability does not lose digits. targets must lie in [0, V).
 *   losses (N)  probs (N,V)  logits (N,V)  targets (N) */
void crossentropy_forward(float *losses, float *probs, const float *logits,
                          const int *targets, int N, int V);

/* Accumulates (+=): dlogits[n,v] += (probs[n,v] - [v == targets[n]]) * dl_n,
 * dl_n = dlosses[n], or 1/N for every row when dlosses is NULL (the gradient
 * of the mean loss).
 *   dlogits (N,V)  probs (N,V)  targets (N)  dlosses (N) or NULL */
void crossentropy_backward(float *dlogits, const float *probs, const int *targets,
                           const float *dlosses, int N, int V);

/* The same gradient, overwriting dlogits (=) instead of adding to it: no
 * zeroing pass over the (N, V) buffer first. */
void crossentropy_backward_set(float *dlogits, const float *probs, const int *targets,
                               const float *dlosses, int N, int V);

#endif
