/*
 * adamw.c — AdamW over flat buffers (Loshchilov & Hutter 2019, Algorithm 2,
 * in the form torch.optim.AdamW implements: decoupled decay lr*wd*p, bias
 * corrections 1-b^t), global-norm clipping and nanoGPT's cosine schedule.
 *
 * Speed: the step touches p, g, m, v (16 bytes in, 12 out per parameter) and
 * is bound by memory bandwidth once vectorised, so the clip is folded into
 * the update (no pass that rewrites g) and the norm is one parallel pass.
 */
#include "model/adamw.h"
#include "model/adamw_kernel.h"

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

/* Blocks of the norm's sum: fixed by n alone (never by the thread count),
 * so the same gradients give the same bits with any number of threads. */
enum { NORM_BLOCKS = 64, NORM_LANES = 8 };

/* Sum of squares of g[lo, hi) in double: NORM_LANES running sums (lane j
 * takes elements lo + j, lo + j + 8, ...), added pairwise at the end. The
 * independent lanes let the sum run at memory speed instead of one add's
 * latency per element. */
void adamw_sum_squares_portable(double acc[8], const float *g, size_t lo, size_t hi) {
    size_t i = lo;
    for (; i + NORM_LANES <= hi; i += NORM_LANES)
        for (int j = 0; j < NORM_LANES; j++) acc[j] += (double)g[i + j] * (double)g[i + j];
    for (int j = 0; i < hi; i++, j++) acc[j] += (double)g[i] * (double)g[i];
}

static int have_avx512(void);

/* The lanes' loop runs in adamw_avx512.c on CPUs with AVX-512 (one register
 * holds the 8 double lanes; the baseline build's two-lane SSE2 copy made
 * the norm of 124M gradients compute-bound, ~40 ms on two threads); both
 * copies do the same double operations, so the bits are the same. */
static double sum_squares(const float *g, size_t lo, size_t hi) {
    double acc[NORM_LANES] = {0};
    if (have_avx512()) adamw_sum_squares_avx512(acc, g, lo, hi);
    else adamw_sum_squares_portable(acc, g, lo, hi);
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

double grad_global_norm(const float *g, size_t n) { return sqrt(grad_sum_squares(g, n)); }

double grad_sum_squares(const float *g, size_t n) {
    double part[NORM_BLOCKS];
    const size_t per = (n + NORM_BLOCKS - 1) / NORM_BLOCKS;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (n >= 65536)
#endif
    for (int b = 0; b < NORM_BLOCKS; b++) {
        size_t lo = (size_t)b * per, hi = lo + per;
        if (lo > n) lo = n;
        if (hi > n) hi = n;
        part[b] = sum_squares(g, lo, hi);
    }
    double s = 0.0;
    for (int b = 0; b < NORM_BLOCKS; b++) s += part[b];
    return s;
}

/* The clip factor max_norm / norm as a float, or 1 when not clipping. */
static float clip_scale(double norm, double max_norm) {
    return (max_norm > 0.0 && norm > max_norm) ? (float)(max_norm / norm) : 1.0f;
}

double grad_clip_global_norm(float *g, size_t n, double max_norm) {
    double norm = grad_global_norm(g, n);
    const float scale = clip_scale(norm, max_norm);
    if (scale != 1.0f) {
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (n >= 32768)
#endif
        for (size_t i = 0; i < n; i++) g[i] *= scale;
    }
    return norm;
}

void adamw_update_scalar(const adamw_coeffs *c, float *p, const float *g, float *m, float *v,
                         const uint8_t *decay, size_t lo, size_t hi) {
    for (size_t i = lo; i < hi; i++) {
        float pi = p[i], gi = g[i] * c->gscale;
        if (decay == NULL || decay[i]) pi -= c->lrwd * pi;
        float mi = c->b1 * m[i] + c->omb1 * gi;
        float vi = c->b2 * v[i] + c->omb2 * gi * gi;
        m[i] = mi;
        v[i] = vi;
        float mhat = mi / c->bc1, vhat = vi / c->bc2;
        p[i] = pi - c->lr * mhat / (sqrtf(vhat) + c->eps);
    }
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
static int have_avx512(void) {
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl");
}
#else
static int have_avx512(void) { return 0; }
#endif

/* Work split: chunks of 16 Ki elements, a multiple of the SIMD width, so
 * every thread runs whole vectors except at the very end. */
enum { UPDATE_CHUNK = 16384 };

double adamw_step_norm(adamw *opt, float *params, const float *grads, float *m, float *v,
                       const uint8_t *decay, size_t n, double norm) {
    opt->t += 1;
    adamw_coeffs c;
    c.lr = opt->lr;
    c.lrwd = opt->lr * opt->weight_decay;
    c.b1 = opt->beta1;
    c.omb1 = 1.0f - opt->beta1;
    c.b2 = opt->beta2;
    c.omb2 = 1.0f - opt->beta2;
    /* Bias corrections in double: b^t underflows gracefully and stays exact. */
    c.bc1 = (float)(1.0 - pow((double)opt->beta1, (double)opt->t));
    c.bc2 = (float)(1.0 - pow((double)opt->beta2, (double)opt->t));
    c.eps = opt->eps;
    /* Clipping folded into the update: g * (max/norm) is the same float
     * product an in-place clip would store, without a pass over g. */
    c.gscale = clip_scale(norm, (double)opt->grad_clip);
    const int simd = have_avx512();
    const int64_t nchunks = (int64_t)((n + UPDATE_CHUNK - 1) / UPDATE_CHUNK);
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (n >= 65536)
#endif
    for (int64_t k = 0; k < nchunks; k++) {
        size_t lo = (size_t)k * UPDATE_CHUNK, hi = lo + UPDATE_CHUNK < n ? lo + UPDATE_CHUNK : n;
        if (simd) adamw_update_avx512(&c, params, grads, m, v, decay, lo, hi);
        else adamw_update_scalar(&c, params, grads, m, v, decay, lo, hi);
    }
    return norm;
}

double adamw_step(adamw *opt, float *params, const float *grads, float *m, float *v,
                  const uint8_t *decay, size_t n) {
    return adamw_step_norm(opt, params, grads, m, v, decay, n, grad_global_norm(grads, n));
}

float lr_at(int64_t step, int64_t max_steps, int64_t warmup, float lr, float min_lr) {
    /* nanoGPT train.py get_lr (Karpathy): linear warmup, then cosine decay. */
    if (step < warmup) return (float)((double)lr * (double)(step + 1) / (double)(warmup + 1));
    if (step >= max_steps || max_steps <= warmup) return min_lr;
    double r = (double)(step - warmup) / (double)(max_steps - warmup);
    double coeff = 0.5 * (1.0 + cos(3.14159265358979323846 * r));
    return (float)((double)min_lr + coeff * ((double)lr - (double)min_lr));
}
