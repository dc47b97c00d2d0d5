/*
 * matmul_avx2.c — the AVX2+FMA micro-kernel of the own matmul backend: one
 * 6 x 16 output tile in 12 ymm accumulators (two B vectors and one broadcast
 * per row each k step; 12 independent FMA chains cover latency x 2 ports).
 * Packing and blocking live in gemm.c. Compiled with -mavx2 -mfma by the
 * Makefile; chosen at run time by matmul_isa_supported.
 */
#include "nn/matmul.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define ROW_DECL(i) __m256 c##i##0 = _mm256_setzero_ps(), c##i##1 = _mm256_setzero_ps()
#define ROW_FMA(i)                                                  \
    do {                                                            \
        __m256 a_ = _mm256_broadcast_ss(a + (i));                   \
        c##i##0 = _mm256_fmadd_ps(a_, b0, c##i##0);                 \
        c##i##1 = _mm256_fmadd_ps(a_, b1, c##i##1);                 \
    } while (0)
#define ROW_STORE(i)                                                                 \
    do {                                                                             \
        float *c_ = c + (size_t)(i) * ldc;                                           \
        if (mode == MATMUL_UKR_ADD) {                                                \
            c##i##0 = _mm256_add_ps(_mm256_loadu_ps(c_), c##i##0);                   \
            c##i##1 = _mm256_add_ps(_mm256_loadu_ps(c_ + 8), c##i##1);               \
        } else if (mode == MATMUL_UKR_SET_BIAS) {                                    \
            c##i##0 = _mm256_add_ps(c##i##0, bias0);                                 \
            c##i##1 = _mm256_add_ps(c##i##1, bias1);                                 \
        }                                                                            \
        _mm256_storeu_ps(c_, c##i##0);                                               \
        _mm256_storeu_ps(c_ + 8, c##i##1);                                           \
    } while (0)

void matmul_ukr_avx2(size_t kc, const float *a, size_t a_ks, const float *b, size_t b_ks,
                     float *c, size_t ldc, int mode, const float *bias) {
    ROW_DECL(0); ROW_DECL(1); ROW_DECL(2); ROW_DECL(3); ROW_DECL(4); ROW_DECL(5);
    /* unrolled 4x, as the AVX-512 kernels: the loop's own uops shrink from
     * three per k step to under one (0.94-0.95x the kernel time here,
     * alternated in one process on both vCPUs); same bits */
#pragma GCC unroll 4
    for (size_t k = 0; k < kc; k++) {
        __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
        ROW_FMA(0); ROW_FMA(1); ROW_FMA(2); ROW_FMA(3); ROW_FMA(4); ROW_FMA(5);
        a += a_ks;
        b += b_ks;
    }
    __m256 bias0 = _mm256_setzero_ps(), bias1 = _mm256_setzero_ps();
    if (mode == MATMUL_UKR_SET_BIAS) {
        bias0 = _mm256_loadu_ps(bias);
        bias1 = _mm256_loadu_ps(bias + 8);
    }
    ROW_STORE(0); ROW_STORE(1); ROW_STORE(2); ROW_STORE(3); ROW_STORE(4); ROW_STORE(5);
}

/* Peak-rate probe for benchmarks: `iters` steps of MATMUL_PEAK_CHAINS (16)
 * independent FMA chains, so FMA latency is hidden and the loop runs at the
 * core's FMA throughput (2 flops per lane per FMA). */
float matmul_fma_loop_avx2(int64_t iters) {
    __m256 a0 = _mm256_set1_ps(0e-3f), a1 = _mm256_set1_ps(1e-3f), a2 = _mm256_set1_ps(2e-3f), a3 = _mm256_set1_ps(3e-3f), a4 = _mm256_set1_ps(4e-3f), a5 = _mm256_set1_ps(5e-3f), a6 = _mm256_set1_ps(6e-3f), a7 = _mm256_set1_ps(7e-3f), a8 = _mm256_set1_ps(8e-3f), a9 = _mm256_set1_ps(9e-3f), a10 = _mm256_set1_ps(10e-3f), a11 = _mm256_set1_ps(11e-3f), a12 = _mm256_set1_ps(12e-3f), a13 = _mm256_set1_ps(13e-3f), a14 = _mm256_set1_ps(14e-3f), a15 = _mm256_set1_ps(15e-3f);
    const __m256 x = _mm256_set1_ps(0.999999f), y = _mm256_set1_ps(1e-7f);
#define F(v) v = _mm256_fmadd_ps(v, x, y)
    for (int64_t it = 0; it < iters; it++) {
        F(a0); F(a1); F(a2); F(a3); F(a4); F(a5); F(a6); F(a7); F(a8); F(a9); F(a10); F(a11); F(a12); F(a13); F(a14); F(a15);
    }
#undef F
    __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(_mm256_add_ps(_mm256_add_ps(_mm256_add_ps(_mm256_add_ps(_mm256_add_ps(_mm256_add_ps(_mm256_add_ps(_mm256_add_ps(_mm256_add_ps(_mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), a2), a3), a4), a5), a6), a7), a8), a9), a10), a11), a12), a13), a14), a15);
    float t[8];
    _mm256_storeu_ps(t, s);
    return t[0] + t[7];
}

#else
typedef int matmul_avx2_unused; /* ISO C forbids an empty translation unit */
#endif
