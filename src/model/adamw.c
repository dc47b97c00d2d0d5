/*
 * adamw.c — AdamW over flat buffers (Loshchilov & Hutter 2019, Algorithm 2,
 * in the form torch.optim.AdamW implements: decoupled decay lr*wd*p, bias
 * corrections 1-b^t), global-norm clipping and nanoGPT's cosine schedule.
 */
#include "model/adamw.h"

#include <math.h>

adamw adamw_default(void) {
    adamw o;
    o.lr = 1e-3f;
    o.beta1 = 0.9f;
    o.beta2 = 0.99f;
    o.eps = 1e-8f;
    o.weight_decay = 0.1f;
    o.grad_clip = 1.0f;
    o.t = 0;
    return o;
}

double grad_global_norm(const float *g, size_t n) {
    /* Serial double sum in index order: exact enough for ~1e6 terms and
     * independent of the thread count. */
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += (double)g[i] * (double)g[i];
    return sqrt(s);
}

double grad_clip_global_norm(float *g, size_t n, double max_norm) {
    double norm = grad_global_norm(g, n);
    if (max_norm > 0.0 && norm > max_norm) {
        float scale = (float)(max_norm / norm);
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (n >= 32768)
#endif
        for (size_t i = 0; i < n; i++) g[i] *= scale;
    }
    return norm;
}

double adamw_step(adamw *opt, float *params, float *grads, float *m, float *v,
                  const uint8_t *decay, size_t n) {
    double norm = grad_clip_global_norm(grads, n, (double)opt->grad_clip);
    opt->t += 1;
    const float lr = opt->lr, b1 = opt->beta1, b2 = opt->beta2, eps = opt->eps;
    const float wd = opt->weight_decay;
    /* Bias corrections in double: b^t underflows gracefully and stays exact. */
    const float bc1 = (float)(1.0 - pow((double)b1, (double)opt->t));
    const float bc2 = (float)(1.0 - pow((double)b2, (double)opt->t));
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (n >= 32768)
#endif
    for (size_t i = 0; i < n; i++) {
        float p = params[i], g = grads[i];
        if (decay == NULL || decay[i]) p -= lr * wd * p;
        float mi = b1 * m[i] + (1.0f - b1) * g;
        float vi = b2 * v[i] + (1.0f - b2) * g * g;
        m[i] = mi;
        v[i] = vi;
        float mhat = mi / bc1, vhat = vi / bc2;
        params[i] = p - lr * mhat / (sqrtf(vhat) + eps);
    }
    return norm;
}

float lr_at(int64_t step, int64_t max_steps, int64_t warmup, float lr, float min_lr) {
    /* nanoGPT train.py get_lr (Karpathy): linear warmup, then cosine decay. */
    if (step < warmup) return (float)((double)lr * (double)(step + 1) / (double)(warmup + 1));
    if (step >= max_steps || max_steps <= warmup) return min_lr;
    double r = (double)(step - warmup) / (double)(max_steps - warmup);
    double coeff = 0.5 * (1.0 + cos(3.14159265358979323846 * r));
    return (float)((double)min_lr + coeff * ((double)lr - (double)min_lr));
}
