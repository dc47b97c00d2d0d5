/*
 * test_gpt_adamw.c — AdamW against a double-precision transcription of
 * torch.optim.AdamW's update, global-norm clipping, and nanoGPT's learning
 * rate schedule.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "test.h"
#include "model/adamw.h"
#include "model/adamw_kernel.h"

TEST(gpt_adamw_matches_reference) {
    float p[4] = { 0.5f, -1.0f, 2.0f, 0.0f };
    float m[4] = { 0 }, v[4] = { 0 };
    const uint8_t decay[4] = { 1, 0, 1, 0 };
    double pr[4] = { 0.5, -1.0, 2.0, 0.0 }, mr[4] = { 0 }, vr[4] = { 0 };
    adamw opt = adamw_default();
    opt.grad_clip = 0.0f;   /* no clipping here */
    const float gs[3][4] = { { 0.1f, -0.2f, 0.3f, 0.0f }, { -0.05f, 0.4f, 0.3f, 1.0f }, { 0.2f, 0.2f, -0.1f, -1.0f } };
    for (int t = 1; t <= 3; t++) {
        float g[4];
        memcpy(g, gs[t - 1], sizeof g);
        opt.lr = 1e-2f * t;
        adamw_step(&opt, p, g, m, v, decay, 4);
        double lr = 1e-2 * t, b1 = 0.9, b2 = 0.99, wd = 0.1, eps = 1e-8;
        for (int i = 0; i < 4; i++) {
            double gi = gs[t - 1][i];
            if (decay[i]) pr[i] -= lr * wd * pr[i];
            mr[i] = b1 * mr[i] + (1 - b1) * gi;
            vr[i] = b2 * vr[i] + (1 - b2) * gi * gi;
            double mh = mr[i] / (1 - pow(b1, t)), vh = vr[i] / (1 - pow(b2, t));
            pr[i] -= lr * mh / (sqrt(vh) + eps);
        }
    }
    CHECK_EQ_INT(opt.t, 3);
    /* float vs double over three steps of O(1e-2) updates: a few ulps of O(1). */
    for (int i = 0; i < 4; i++) CHECK_NEAR(p[i], pr[i], 2e-6);
    /* The first Adam step moves every parameter with g != 0 by ~lr. */
    float q[2] = { 1.0f, 1.0f }, g2[2] = { 1e-3f, -5.0f }, m2[2] = { 0 }, v2[2] = { 0 };
    adamw o2 = adamw_default();
    o2.weight_decay = 0.0f;
    o2.grad_clip = 0.0f;
    o2.lr = 0.1f;
    adamw_step(&o2, q, g2, m2, v2, NULL, 2);
    CHECK_NEAR(q[0], 0.9, 1e-5);   /* eps 1e-8 vs |g| 1e-3: 1e-5 relative */
    CHECK_NEAR(q[1], 1.1, 1e-6);
}

TEST(gpt_adamw_clips_global_norm) {
    float g[3] = { 3.0f, 4.0f, 0.0f };   /* norm 5 */
    CHECK_NEAR(grad_global_norm(g, 3), 5.0, 1e-12);
    double n = grad_clip_global_norm(g, 3, 1.0);
    CHECK_NEAR(n, 5.0, 1e-12);
    CHECK_NEAR(g[0], 0.6, 1e-7);   /* float scale 1/5 */
    CHECK_NEAR(g[1], 0.8, 1e-7);
    CHECK_NEAR(grad_global_norm(g, 3), 1.0, 1e-6);
    float h[2] = { 0.3f, 0.4f };
    CHECK_NEAR(grad_clip_global_norm(h, 2, 1.0), 0.5, 1e-7);
    CHECK(h[0] == 0.3f && h[1] == 0.4f);   /* below the limit: untouched */
    CHECK_NEAR(grad_clip_global_norm(h, 2, 0.0), 0.5, 1e-7);   /* disabled */
    /* adamw_step clips before the moments: a huge gradient becomes norm 1. */
    float p[2] = { 0, 0 }, gg[2] = { 300.0f, 400.0f }, m[2] = { 0 }, v[2] = { 0 };
    adamw o = adamw_default();
    double norm = adamw_step(&o, p, gg, m, v, NULL, 2);
    CHECK_NEAR(norm, 500.0, 1e-9);
    CHECK_NEAR(m[0], 0.1 * 0.6, 1e-7);
    CHECK_NEAR(m[1], 0.1 * 0.8, 1e-7);
}

TEST(gpt_lr_schedule_nanogpt) {
    const float lr = 1e-3f, mn = 1e-4f;
    /* warmup: (step + 1) / (warmup + 1) of lr */
    CHECK_NEAR(lr_at(0, 2000, 100, lr, mn), 1e-3 / 101, 1e-9);
    CHECK_NEAR(lr_at(99, 2000, 100, lr, mn), 1e-3 * 100 / 101, 1e-9);
    CHECK_NEAR(lr_at(100, 2000, 100, lr, mn), 1e-3, 1e-9);
    /* cosine midpoint: halfway between lr and min_lr */
    CHECK_NEAR(lr_at(1050, 2000, 100, lr, mn), 5.5e-4, 1e-9);
    CHECK_NEAR(lr_at(2000, 2000, 100, lr, mn), 1e-4, 1e-9);
    CHECK_NEAR(lr_at(5000, 2000, 100, lr, mn), 1e-4, 1e-9);
    /* monotone decay after warmup */
    float prev = lr_at(100, 2000, 100, lr, mn);
    int mono = 1;
    for (int s = 101; s <= 2000; s++) {
        float cur = lr_at(s, 2000, 100, lr, mn);
        if (cur > prev) mono = 0;
        prev = cur;
    }
    CHECK(mono);
}

/* Deterministic pseudo-random floats in [-scale, scale) (an LCG; no libc rand). */
static void fill_lcg(float *x, size_t n, uint32_t seed, float scale) {
    uint32_t s = seed;
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        x[i] = scale * ((float)(s >> 8) / 8388608.0f - 1.0f);
    }
}

TEST(gpt_adamw_simd_matches_scalar_bits) {
    /* 16-lane kernel vs the scalar loop on the same inputs: every length mod
     * 16, a decay mask with runs and isolated zeros, and a clip factor. The
     * two do the same float operations in the same order, so bits must agree. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512bw") ||
        !__builtin_cpu_supports("avx512vl"))
        return;
    enum { N = 203 };
    float p0[N], g[N], m0[N], v0[N];
    uint8_t decay[N];
    fill_lcg(p0, N, 1, 1.0f);
    fill_lcg(g, N, 2, 3.0f);
    fill_lcg(m0, N, 3, 0.1f);
    fill_lcg(v0, N, 4, 0.01f);
    for (int i = 0; i < N; i++) { v0[i] = fabsf(v0[i]); decay[i] = (uint8_t)((i / 5 + i % 3) % 2 ? 7 : 0); }
    adamw_coeffs c = { .lr = 3e-3f, .lrwd = 3e-4f, .b1 = 0.9f, .omb1 = 0.1f, .b2 = 0.99f,
                       .omb2 = 1.0f - 0.99f, .bc1 = 0.19f, .bc2 = 0.0199f, .eps = 1e-8f, .gscale = 0.37f };
    int same = 1;
    for (size_t lo = 0; lo < 17; lo++) {
        for (size_t hi = lo; hi <= N; hi += 13) {
            float pa[N], ma[N], va[N], pb[N], mb[N], vb[N];
            memcpy(pa, p0, sizeof pa); memcpy(pb, p0, sizeof pb);
            memcpy(ma, m0, sizeof ma); memcpy(mb, m0, sizeof mb);
            memcpy(va, v0, sizeof va); memcpy(vb, v0, sizeof vb);
            adamw_update_scalar(&c, pa, g, ma, va, (hi & 1) ? decay : NULL, lo, hi);
            adamw_update_avx512(&c, pb, g, mb, vb, (hi & 1) ? decay : NULL, lo, hi);
            if (memcmp(pa, pb, sizeof pa) || memcmp(ma, mb, sizeof ma) || memcmp(va, vb, sizeof va)) same = 0;
        }
    }
    CHECK(same);
    /* the norm's lanes: AVX-512 copy vs the portable loop, every start and
     * tail, values spanning many binades (the double sums must agree exactly) */
    int same_ss = 1;
    float gw[N];
    for (int i = 0; i < N; i++) gw[i] = g[i] * (float)(1 << (i % 11));
    for (size_t lo = 0; lo < 17; lo++)
        for (size_t hi = lo; hi <= N; hi += 7) {
            double a[8] = {0.5, 0, 0, 0, 0, 0, 0, 1e-9}, b[8];
            memcpy(b, a, sizeof b);
            adamw_sum_squares_portable(a, gw, lo, hi);
            adamw_sum_squares_avx512(b, gw, lo, hi);
            if (memcmp(a, b, sizeof a)) same_ss = 0;
        }
    CHECK(same_ss);
#endif
}

TEST(gpt_adamw_fused_clip_equals_inplace_clip) {
    /* adamw_step folds the clip into the update; the result must be the bits
     * of clipping g in place first and then stepping without a clip. */
    enum { N = 70001 };   /* several update chunks and a ragged tail */
    float *p = malloc(N * sizeof *p), *q = malloc(N * sizeof *q), *g = malloc(N * sizeof *g);
    float *h = malloc(N * sizeof *h), *m = calloc(N, sizeof *m), *v = calloc(N, sizeof *v);
    float *m2 = calloc(N, sizeof *m2), *v2 = calloc(N, sizeof *v2);
    uint8_t *decay = malloc(N);
    CHECK(p && q && g && h && m && v && m2 && v2 && decay);
    if (!(p && q && g && h && m && v && m2 && v2 && decay)) goto out;
    fill_lcg(p, N, 7, 1.0f);
    memcpy(q, p, N * sizeof *q);
    fill_lcg(g, N, 8, 0.05f);   /* norm ~ 0.05 * sqrt(N / 3) ~ 7.6: clipped */
    memcpy(h, g, N * sizeof *h);
    for (int i = 0; i < N; i++) decay[i] = (uint8_t)(i % 1000 < 700);
    adamw a = adamw_default(), b = adamw_default();
    const double na = adamw_step(&a, p, g, m, v, decay, N);
    const double nb = grad_clip_global_norm(h, N, 1.0);
    b.grad_clip = 0.0f;
    adamw_step(&b, q, h, m2, v2, decay, N);
    CHECK(na == nb && na > 1.0);
    CHECK(memcmp(p, q, N * sizeof *p) == 0);
    CHECK(memcmp(m, m2, N * sizeof *m) == 0);
    CHECK(memcmp(v, v2, N * sizeof *v) == 0);
    /* the gradients passed to adamw_step are left as they were */
    fill_lcg(h, N, 8, 0.05f);
    CHECK(memcmp(g, h, N * sizeof *g) == 0);
out:
    free(p); free(q); free(g); free(h); free(m); free(v); free(m2); free(v2); free(decay);
}

TEST(gpt_adamw_norm_accurate_and_thread_independent) {
    /* The blocked double sum vs a long double sum in index order: relative
     * error ~ n * 2^-53 at worst for these positive terms (~1e-11 at n = 1e5);
     * 1e-12 holds with margin for the pairwise lanes. Lengths around the
     * block and lane boundaries, including n < 64 (empty blocks). */
    static float g[100003];
    fill_lcg(g, 100003, 11, 2.0f);
    const size_t ns[] = { 0, 1, 7, 8, 9, 63, 64, 65, 511, 4097, 65535, 65536, 100003 };
    int ok = 1;
    for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++) {
        long double s = 0;
        for (size_t i = 0; i < ns[k]; i++) s += (long double)g[i] * (long double)g[i];
        const double ref = sqrt((double)s), got = grad_global_norm(g, ns[k]);
        if (fabs(got - ref) > 1e-12 * ref) ok = 0;
    }
    CHECK(ok);
#ifdef _OPENMP
    /* Same bits with 1 and 2 threads (fixed blocks, not per-thread sums). */
    const int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    const double n1 = grad_global_norm(g, 100003);
    omp_set_num_threads(2);
    const double n2 = grad_global_norm(g, 100003);
    omp_set_num_threads(saved);
    CHECK(n1 == n2);
#endif
}
