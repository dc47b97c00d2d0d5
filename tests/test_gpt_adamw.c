/*
 * test_gpt_adamw.c — AdamW against a double-precision transcription of
 * torch.optim.AdamW's update, global-norm clipping, and nanoGPT's learning
 * rate schedule.
 */
#include <math.h>
#include <string.h>

#include "test.h"
#include "model/adamw.h"

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
