/*
 * test_nn_attention_simd.c — the AVX-512 attention kernels against their
 * scalar twins (attention_forward_scalar/_backward_scalar) over head sizes
 * with and without a masked tail chunk, rows shorter and longer than one
 * 16-key block, with and without ALiBi; and the accuracy of the vector exp
 * the fast softmax uses. Gradients against finite differences and the
 * thread-count determinism are in test_nn_layers.c (they go through the
 * dispatcher, so they cover the fast path on an AVX-512 machine). On a CPU
 * without AVX-512 the dispatcher runs the scalar code and these tests only
 * check that it equals the scalar twin.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "nn/attention.h"
#include "nn/attention_simd.h"

static uint64_t lcg(uint64_t *s) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return *s >> 33;
}
static float unif(uint64_t *s, float lo, float hi) {
    return lo + (hi - lo) * (float)((double)lcg(s) / 2147483648.0);
}

/* one shape: dispatched forward/backward vs the scalar twin */
static void simd_case(int B, int T, int C, int NH, int alibi) {
    uint64_t s = 1000u + (uint64_t)(T * 131 + C * 7 + NH + alibi);
    size_t nqkv = (size_t)B * T * 3 * C, nout = (size_t)B * T * C, natt = (size_t)B * NH * T * T;
    float *qkv = malloc(nqkv * sizeof(float)), *dout = malloc(nout * sizeof(float));
    float *out[2], *att[2], *dqkv[2], slopes[16];
    for (int k = 0; k < 2; k++) {
        out[k] = malloc(nout * sizeof(float));
        att[k] = malloc(natt * sizeof(float));
        dqkv[k] = malloc(nqkv * sizeof(float));
    }
    /* scores up to ~6 so the softmax rows are far from uniform */
    for (size_t i = 0; i < nqkv; i++) qkv[i] = unif(&s, -2.0f, 2.0f);
    for (size_t i = 0; i < nout; i++) dout[i] = unif(&s, -1.0f, 1.0f);
    for (int h = 0; h < NH; h++) slopes[h] = 0.1f + 0.3f * (float)h;
    for (int k = 0; k < 2; k++) {
        for (size_t i = 0; i < natt; i++) att[k][i] = NAN;   /* j > t must stay untouched */
        for (size_t i = 0; i < nqkv; i++) dqkv[k][i] = 0.25f; /* backward accumulates */
    }
    const float *sl = alibi ? slopes : NULL;
    attention_forward(out[0], att[0], qkv, sl, B, T, C, NH);
    attention_backward(dqkv[0], dout, qkv, att[0], out[0], sl, B, T, C, NH);
    attention_forward_scalar(out[1], att[1], qkv, sl, B, T, C, NH);
    attention_backward_scalar(dqkv[1], dout, qkv, att[1], out[1], sl, B, T, C, NH);

    /* Both sides round the same float sums in a different order (16 lanes +
     * a shuffle tree vs serial, a polynomial exp vs libm's, ~1 ulp each):
     * over <= 64 terms of size <= ~10 that is a few 1e-6 absolute; 2e-5 abs
     * + 1e-4 rel leaves margin yet catches any wrong term (>= 1e-3 here). */
    double worst = 0.0;
    size_t nan_ok = 0, n_upper = 0;
    for (size_t i = 0; i < nout; i++)
        worst = fmax(worst, fabs((double)out[0][i] - out[1][i]) / (2e-5 + 1e-4 * fabs(out[1][i])));
    for (size_t i = 0; i < nqkv; i++)
        worst = fmax(worst, fabs((double)dqkv[0][i] - dqkv[1][i]) / (2e-5 + 1e-4 * fabs(dqkv[1][i])));
    for (int bh = 0; bh < B * NH; bh++)
        for (int t = 0; t < T; t++)
            for (int j = 0; j < T; j++) {
                float a = att[0][((size_t)bh * T + t) * T + j], r = att[1][((size_t)bh * T + t) * T + j];
                if (j <= t) worst = fmax(worst, fabs((double)a - r) / (2e-5 + 1e-4 * fabs(r)));
                else { n_upper++; nan_ok += isnan(a) ? 1u : 0u; }
            }
    if (!(worst <= 1.0))
        test_fail(__FILE__, __LINE__, "B%d T%d C%d NH%d alibi %d: worst |fast - scalar| / tol = %.3g", B, T, C,
                  NH, alibi, worst);
    CHECK(nan_ok == n_upper);
    free(qkv);
    free(dout);
    for (int k = 0; k < 2; k++) {
        free(out[k]);
        free(att[k]);
        free(dqkv[k]);
    }
}

TEST(nn_attention_simd_matches_scalar) {
    /* HS = 4, 20, 48 have a masked tail chunk; 16, 32, 64 do not; T = 1, 16,
     * 17, 33 cover an exact block, one-key tail blocks and several blocks */
    static const int shapes[][4] = {
        {2, 17, 12, 3}, {2, 33, 40, 2}, {1, 16, 64, 4}, {2, 33, 128, 4},
        {1, 1, 96, 2}, {1, 40, 192, 3}, {1, 33, 256, 4},
        {1, 5, 260, 1},   /* HS 260 > ATT_HS_MAX: the dispatcher takes the scalar twin */
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        for (int alibi = 0; alibi < 2; alibi++)
            simd_case(shapes[i][0], shapes[i][1], shapes[i][2], shapes[i][3], alibi);
}

/* The softmax exp against double exp on x in [-110, 0] (the softmax only
 * sees x - max <= 0): within 2 ulp of the result where it is a normal float
 * (the Taylor truncation is < 0.05 ulp, the Horner FMAs add about 1); in the
 * subnormal range (x < -87.3) within 2 subnormal steps (2^-148); 0 -> 1 exactly. */
TEST(nn_attention_exp_accuracy) {
    if (!attention_uses_avx512()) return;
    enum { N = 200000 };
    float *x = malloc(N * sizeof(float)), *y = malloc(N * sizeof(float));
    for (int i = 0; i < N; i++) x[i] = -110.0f * (float)i / (float)(N - 1);
    x[N - 1] = -0.0f;
    x[N - 2] = -1e-30f;
    attention_exp_avx512(y, x, N);
    double worst_ulp = 0.0, worst_sub = 0.0;
    for (int i = 0; i < N; i++) {
        double e = exp((double)x[i]);
        if (e >= 1.1754943508222875e-38) {
            int ex;
            frexp(e, &ex);   /* e in [2^(ex-1), 2^ex): one ulp is 2^(ex-24) */
            worst_ulp = fmax(worst_ulp, fabs(y[i] - e) / ldexp(1.0, ex - 24));
        } else {
            worst_sub = fmax(worst_sub, fabs(y[i] - e) / ldexp(1.0, -149));
        }
    }
    CHECK_NEAR(worst_ulp, 0.0, 2.0);   /* ulps, see above */
    CHECK_NEAR(worst_sub, 0.0, 2.0);   /* subnormal steps */
    float z = 0.0f, one;
    attention_exp_avx512(&one, &z, 1);
    CHECK(one == 1.0f);   /* p = 1 for the max key: the t = 0 row is exact */
    free(x);
    free(y);
}
