/*
 * adamw_kernel.h — the elementwise AdamW update shared by adamw.c (portable
 * loop) and adamw_avx512.c (the same arithmetic, 16 lanes at a time). Both
 * do the same float operations in the same order without FMA, so they give
 * the same bits; the OpenMP split of the index range changes nothing.
 */
#ifndef ROPEGPT_ADAMW_KERNEL_H
#define ROPEGPT_ADAMW_KERNEL_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    float lr, lrwd;      /* lr and lr * weight_decay (decoupled decay) */
    float b1, omb1;      /* beta1, 1 - beta1 */
    float b2, omb2;      /* beta2, 1 - beta2 */
    float bc1, bc2;      /* bias corrections 1 - beta^t */
    float eps;
    float gscale;        /* gradient clip factor (1 when not clipping) */
} adamw_coeffs;

/* Elements [lo, hi) of one AdamW step; decay may be NULL (decay all). */
void adamw_update_scalar(const adamw_coeffs *c, float *p, const float *g, float *m, float *v,
                         const uint8_t *decay, size_t lo, size_t hi);
void adamw_update_avx512(const adamw_coeffs *c, float *p, const float *g, float *m, float *v,
                         const uint8_t *decay, size_t lo, size_t hi);

/* Adds to acc[j] the squares (in double) of g[lo + j], g[lo + j + 8], ...
 * up to hi, in that order; the tail continues at lane 0. Portable loop and
 * its AVX-512 copy (the same double operations, the same bits). */
void adamw_sum_squares_portable(double acc[8], const float *g, size_t lo, size_t hi);
void adamw_sum_squares_avx512(double acc[8], const float *g, size_t lo, size_t hi);

#endif
