/*
 * matvec_avx2.c — AVX2+FMA row kernel for matvec_forward: two rows at a time
 * share each 8-float load of x, two accumulators per row; the C % 8 tail is
 * added in scalar after the horizontal sum, in c order. Grouping does not
 * change a row's arithmetic, so a row's bits do not depend on the grouping.
 */
#include "nn/matvec.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <stddef.h>
#include <string.h>

static inline float hsum8(__m256 v) {
    __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
    lo = _mm_add_ps(lo, hi);
    lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
    lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
    return _mm_cvtss_f32(lo);
}

static inline float row_dot(const float *w, const float *x, int C) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    int c = 0;
    for (; c + 16 <= C; c += 16) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + c), _mm256_loadu_ps(x + c), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w + c + 8), _mm256_loadu_ps(x + c + 8), a1);
    }
    for (; c + 8 <= C; c += 8)
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + c), _mm256_loadu_ps(x + c), a0);
    float s = hsum8(_mm256_add_ps(a0, a1));
    for (; c < C; c++) s += w[c] * x[c];
    return s;
}

void matvec_rows_avx2(float *out, const float *inp, const float *weight, int C, int r0, int r1) {
    int o = r0;
    for (; o + 2 <= r1; o += 2) {
        const float *w0 = weight + (size_t)o * (size_t)C, *w1 = w0 + C;
        __m256 a00 = _mm256_setzero_ps(), a01 = _mm256_setzero_ps();
        __m256 a10 = _mm256_setzero_ps(), a11 = _mm256_setzero_ps();
        int c = 0;
        for (; c + 16 <= C; c += 16) {
            __m256 x0 = _mm256_loadu_ps(inp + c), x1 = _mm256_loadu_ps(inp + c + 8);
            a00 = _mm256_fmadd_ps(_mm256_loadu_ps(w0 + c), x0, a00);
            a01 = _mm256_fmadd_ps(_mm256_loadu_ps(w0 + c + 8), x1, a01);
            a10 = _mm256_fmadd_ps(_mm256_loadu_ps(w1 + c), x0, a10);
            a11 = _mm256_fmadd_ps(_mm256_loadu_ps(w1 + c + 8), x1, a11);
        }
        for (; c + 8 <= C; c += 8) {
            __m256 x0 = _mm256_loadu_ps(inp + c);
            a00 = _mm256_fmadd_ps(_mm256_loadu_ps(w0 + c), x0, a00);
            a10 = _mm256_fmadd_ps(_mm256_loadu_ps(w1 + c), x0, a10);
        }
        float s0 = hsum8(_mm256_add_ps(a00, a01)), s1 = hsum8(_mm256_add_ps(a10, a11));
        for (; c < C; c++) {
            s0 += w0[c] * inp[c];
            s1 += w1[c] * inp[c];
        }
        out[o] = s0;
        out[o + 1] = s1;
    }
    for (; o < r1; o++) out[o] = row_dot(weight + (size_t)o * (size_t)C, inp, C);
}

static inline __m256 bf16x8(const uint16_t *p) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p)), 16));
}

void matvec_bf16_rows_avx2(float *out, const float *inp, const uint16_t *weight, int C, int r0, int r1) {
    for (int o = r0; o < r1; o++) {
        const uint16_t *w = weight + (size_t)o * (size_t)C;
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
        int c = 0;
        for (; c + 16 <= C; c += 16) {
            a0 = _mm256_fmadd_ps(bf16x8(w + c), _mm256_loadu_ps(inp + c), a0);
            a1 = _mm256_fmadd_ps(bf16x8(w + c + 8), _mm256_loadu_ps(inp + c + 8), a1);
        }
        for (; c + 8 <= C; c += 8) a0 = _mm256_fmadd_ps(bf16x8(w + c), _mm256_loadu_ps(inp + c), a0);
        float s = hsum8(_mm256_add_ps(a0, a1));
        for (; c < C; c++) {
            uint32_t u = (uint32_t)w[c] << 16;
            float f;
            memcpy(&f, &u, 4);
            s += f * inp[c];
        }
        out[o] = s;
    }
}

float matvec_read_avx2(const float *p, size_t n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps(), s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm256_add_ps(s0, _mm256_loadu_ps(p + i));
        s1 = _mm256_add_ps(s1, _mm256_loadu_ps(p + i + 8));
        s2 = _mm256_add_ps(s2, _mm256_loadu_ps(p + i + 16));
        s3 = _mm256_add_ps(s3, _mm256_loadu_ps(p + i + 24));
    }
    float s = hsum8(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    for (; i < n; i++) s += p[i];
    return s;
}
#endif
