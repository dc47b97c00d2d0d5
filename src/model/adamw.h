/*
 * adamw.h — AdamW (Loshchilov & Hutter 2019, "Decoupled Weight Decay
 * Regularization") over one flat parameter buffer, global-norm gradient
 * clipping, and nanoGPT's learning-rate schedule (linear warmup, cosine decay
 * to min_lr). The optimizer state m, v are flat buffers laid out like the
 * parameters (the model owns them). Every reduction runs in double in a fixed
 * order, so results do not depend on the thread count.
 */
#ifndef ROPEGPT_ADAMW_H
#define ROPEGPT_ADAMW_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    float lr;            /* set by the caller before each step (see lr_at) */
    float beta1;         /* 0.9 */
    float beta2;         /* 0.99 (nanoGPT shakespeare_char) */
    float eps;           /* 1e-8 */
    float weight_decay;  /* 0.1, applied only where the decay mask is 1 */
    float grad_clip;     /* 1.0; <= 0 disables clipping */
    int64_t t;           /* steps taken so far; adamw_step increments it first */
} adamw;

/* Defaults above, lr 1e-3, t 0. */
adamw adamw_default(void);

/* Global L2 norm of g (n floats), summed in double: 64 fixed blocks (by n
 * alone), each summed in 8 interleaved lanes, the blocks added in order.
 * Threads change nothing in the result. */
double grad_global_norm(const float *g, size_t n);

/* The sum of squares under that square root (in double; the same blocks
 * and lanes, so the same bits for any thread count). */
double grad_sum_squares(const float *g, size_t n);

/* If the global norm of g exceeds max_norm > 0, scales g by max_norm / norm
 * (torch.nn.utils.clip_grad_norm_ semantics without the 1e-6). Returns the
 * norm before clipping. max_norm <= 0: no clipping. */
double grad_clip_global_norm(float *g, size_t n, double max_norm);

/* One AdamW step: opt->t += 1, then for each i (torch.optim.AdamW order):
 *   p -= lr * wd * p                  (only if decay == NULL or decay[i])
 *   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2
 *   p -= lr * (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)
 * where g is the gradient clipped to grad_clip (g * grad_clip / norm when the
 * global norm exceeds it; grads themselves are left unchanged). Returns the
 * global gradient norm before clipping. params, grads, m, v: (n); decay: (n)
 * 0/1 or NULL (decay everything). Elementwise after the norm, so any thread
 * count gives the same bits. */
double adamw_step(adamw *opt, float *params, const float *grads, float *m, float *v,
                  const uint8_t *decay, size_t n);

/* adamw_step with the global norm already known (norm must equal
 * grad_global_norm(grads, n)): saves the pass over the gradients when the
 * caller has checked the norm already. Returns norm. */
double adamw_step_norm(adamw *opt, float *params, const float *grads, float *m, float *v,
                       const uint8_t *decay, size_t n, double norm);

/* nanoGPT's get_lr: step < warmup: lr * (step + 1) / (warmup + 1);
 * step >= max_steps: min_lr; otherwise cosine from lr down to min_lr:
 * min_lr + 0.5 (1 + cos(pi r)) (lr - min_lr), r = (step - warmup) / (max_steps - warmup). */
float lr_at(int64_t step, int64_t max_steps, int64_t warmup, float lr, float min_lr);

#endif
