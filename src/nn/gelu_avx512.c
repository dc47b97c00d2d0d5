/*
 * gelu_avx512.c — the GELU loops written with AVX-512 intrinsics, doing the
 * very float operations of gelu_impl.h in the same order (no FMA, one
 * division), so they give the portable loops' bits (tested). Left to itself,
 * gcc vectorised gelu_impl.h with the exp clamps as masks and two divisions
 * per vector; the division is the costly instruction here.
 * Compiled with avx512 flags (the Makefile adds them by file name);
 * gelu.c calls these when the CPU has avx512.
 */
#include "nn/gelu.h"

#if defined(__x86_64__)
#include <immintrin.h>

#include "nn/gelu_impl.h"

void gelu_forward_avx512(float *out, const float *inp, size_t n);
void gelu_backward_avx512(float *dinp, const float *inp, const float *dout, size_t n, int set);
void gelu_forward_deriv_avx512(float *out, float *deriv, const float *inp, size_t n);

/* nn_expf (nn_exp.h), operation for operation. max/min with the constant
 * first return the second operand for a NaN, as the C ternaries do. */
static inline __m512 exp16(__m512 x) {
    x = _mm512_max_ps(_mm512_set1_ps(-87.0f), x);
    x = _mm512_min_ps(_mm512_set1_ps(88.0f), x);
    const __m512 magic = _mm512_set1_ps(12582912.0f);
    __m512 t = _mm512_add_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)), magic);
    __m512 nf = _mm512_sub_ps(t, magic);
    __m512 r = _mm512_sub_ps(x, _mm512_mul_ps(nf, _mm512_set1_ps(0.693359375f)));
    r = _mm512_sub_ps(r, _mm512_mul_ps(nf, _mm512_set1_ps(-2.12194440e-4f)));
    __m512 p = _mm512_set1_ps(1.0f / 5040.0f);
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(1.0f / 720.0f));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(1.0f / 120.0f));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(1.0f / 24.0f));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(1.0f / 6.0f));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(0.5f));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(1.0f));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(1.0f));
    __m512i bits = _mm512_slli_epi32(
        _mm512_add_epi32(_mm512_sub_epi32(_mm512_castps_si512(t), _mm512_castps_si512(magic)),
                         _mm512_set1_epi32(127)),
        23);
    return _mm512_mul_ps(p, _mm512_castsi512_ps(bits));
}

/* u = sqrt(2/pi) (x + 0.044715 x^3), and s = 0.5 (1 + tanh u) = 1 / (1 + e^(-2u)) */
static inline __m512 gelu_u(__m512 x) {
    __m512 cube = _mm512_mul_ps(_mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(GELU_CUBIC), x), x), x);
    return _mm512_mul_ps(_mm512_set1_ps(GELU_SCALE), _mm512_add_ps(x, cube));
}
static inline __m512 gelu_s(__m512 u) {
    __m512 e = exp16(_mm512_mul_ps(_mm512_set1_ps(-2.0f), u));
    return _mm512_div_ps(_mm512_set1_ps(1.0f), _mm512_add_ps(_mm512_set1_ps(1.0f), e));
}

static inline __mmask16 tail_mask(size_t i, size_t n) {
    return n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1u);
}

void gelu_forward_avx512(float *out, const float *inp, size_t n) {
    const long long nv = (long long)((n + 15) / 16);
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (n >= GELU_OMP_MIN)
#endif
    for (long long v = 0; v < nv; v++) {
        const size_t i = (size_t)v * 16;
        const __mmask16 m = tail_mask(i, n);
        __m512 x = _mm512_maskz_loadu_ps(m, inp + i);
        _mm512_mask_storeu_ps(out + i, m, _mm512_mul_ps(x, gelu_s(gelu_u(x))));
    }
}

/* gelu_grad (gelu_impl.h), operation for operation */
static inline __m512 gelu_grad16(__m512 x, __m512 s) {
    const __m512 one = _mm512_set1_ps(1.0f);
    /* du/dx = sqrt(2/pi) (1 + 3 * 0.044715 x^2); the constant is folded
     * as the portable loop's compiler folds 3.0f * GELU_CUBIC */
    __m512 x2 = _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(3.0f * GELU_CUBIC), x), x);
    __m512 du_dx = _mm512_mul_ps(_mm512_set1_ps(GELU_SCALE), _mm512_add_ps(one, x2));
    __m512 t = _mm512_mul_ps(_mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(2.0f), x), s), _mm512_sub_ps(one, s));
    return _mm512_add_ps(s, _mm512_mul_ps(t, du_dx));
}

void gelu_forward_deriv_avx512(float *out, float *deriv, const float *inp, size_t n) {
    const long long nv = (long long)((n + 15) / 16);
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (n >= GELU_OMP_MIN)
#endif
    for (long long v = 0; v < nv; v++) {
        const size_t i = (size_t)v * 16;
        const __mmask16 m = tail_mask(i, n);
        __m512 x = _mm512_maskz_loadu_ps(m, inp + i);
        __m512 s = gelu_s(gelu_u(x));
        _mm512_mask_storeu_ps(out + i, m, _mm512_mul_ps(x, s));
        _mm512_mask_storeu_ps(deriv + i, m, gelu_grad16(x, s));
    }
}

void gelu_backward_avx512(float *dinp, const float *inp, const float *dout, size_t n, int set) {
    const long long nv = (long long)((n + 15) / 16);
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (n >= GELU_OMP_MIN)
#endif
    for (long long v = 0; v < nv; v++) {
        const size_t i = (size_t)v * 16;
        const __mmask16 m = tail_mask(i, n);
        __m512 x = _mm512_maskz_loadu_ps(m, inp + i);
        __m512 grad = gelu_grad16(x, gelu_s(gelu_u(x)));
        __m512 g = _mm512_mul_ps(grad, _mm512_maskz_loadu_ps(m, dout + i));
        if (!set) g = _mm512_add_ps(_mm512_maskz_loadu_ps(m, dinp + i), g);
        _mm512_mask_storeu_ps(dinp + i, m, g);
    }
}
#else
typedef int gelu_avx512_unused; /* ISO C forbids an empty translation unit */
#endif
