/*
 * test_rope_freqs.c — properties of rope_freqs() for every scaling (from
 * ROPE_NOTES section 4, items 2-3, and the published numbers): the default
 * frequencies, linear == inv0/s exactly, the NTK base formula, dynamic NTK
 * below/above L0, YaRN bounds and attention factor, the Llama 3.1 band
 * counts, LongRoPE short/long choice and attention factor, freq factors.
 * Comparison with the PyTorch reference is in test_rope_ref.c.
 */
#include <math.h>
#include <string.h>

#include "rope.h"
#include "test.h"

#define PI_ 3.141592653589793238462643383279

/* inv0 as the header defines it, one pow per pair. */
static double inv0_of(double base, int d, int i) { return pow(base, -2.0 * i / d); }

static rope_config scaled(rope_scaling_type t, double s) {
    rope_config c = rope_config_default();
    c.scaling.type = t;
    c.scaling.factor = s;
    return c;
}

TEST(rope_freqs_default_is_base_power) {
    const int dims[] = {2, 32, 64, 128};
    for (size_t k = 0; k < 4; k++) {
        rope_config c = rope_config_default();
        c.head_dim = 128;
        c.rotary_dim = dims[k];
        double inv[64], attn = 0.0;
        CHECK_EQ_INT(rope_freqs(&c, 0, inv, &attn), ROPE_OK);
        CHECK(attn == 1.0);
        /* Same pow call per pair, so bit-identical. */
        for (int i = 0; i < dims[k] / 2; i++) CHECK(inv[i] == inv0_of(10000.0, dims[k], i));
        CHECK(inv[0] == 1.0);
    }
}

TEST(rope_freqs_partial_rotary_uses_rotary_dim) {
    /* head_dim 64, rotary_dim 32: the last pair is 10000^(-30/32), not
     * 10000^(-30/64) (ROPE_NOTES section 6, item 5). */
    rope_config c = rope_config_default();
    c.rotary_dim = 32;
    double inv[16];
    CHECK_EQ_INT(rope_freqs(&c, 0, inv, NULL), ROPE_OK);
    /* 1e-15 relative: one pow, the reference written as exp of a log. */
    CHECK_CLOSE(inv[15], exp(-30.0 / 32.0 * log(10000.0)), 1e-14, 0.0);
    CHECK(fabs(inv[15] - pow(10000.0, -30.0 / 64.0)) > 1e-3);
}

TEST(rope_freqs_errors_and_null_outputs) {
    rope_config c = rope_config_default();
    double inv[32], attn = 0.0;
    CHECK_EQ_INT(rope_freqs(NULL, 0, inv, &attn), ROPE_ENULL);
    CHECK_EQ_INT(rope_freqs(&c, -1, inv, &attn), ROPE_EPARAM);
    c.base = NAN;
    CHECK_EQ_INT(rope_freqs(&c, 0, inv, &attn), ROPE_EBASE);
    c = scaled(ROPE_SCALING_YARN, INFINITY);
    CHECK_EQ_INT(rope_freqs(&c, 0, inv, &attn), ROPE_EFACTOR);
    c = scaled(ROPE_SCALING_YARN, 4.0);
    CHECK_EQ_INT(rope_freqs(&c, 0, NULL, &attn), ROPE_OK);
    CHECK_NEAR(attn, 0.1 * log(4.0) + 1.0, 1e-15);   /* same expression: rounding only */
    CHECK_EQ_INT(rope_freqs(&c, 0, inv, NULL), ROPE_OK);
    CHECK_EQ_INT(rope_freqs(&c, 0, NULL, NULL), ROPE_OK);
}

TEST(rope_freqs_linear_is_inv0_over_s_exactly) {
    const double ss[] = {0.5, 2.0, 4.0, 10.0, 3.7};
    for (size_t k = 0; k < 5; k++) {
        rope_config c = scaled(ROPE_SCALING_LINEAR, ss[k]);
        double inv[32], attn = 0.0;
        CHECK_EQ_INT(rope_freqs(&c, 100000, inv, &attn), ROPE_OK);
        for (int i = 0; i < 32; i++) CHECK(inv[i] == inv0_of(10000.0, 64, i) / ss[k]);
        CHECK(attn == 1.0);
    }
}

TEST(rope_freqs_ntk_base_formula) {
    rope_config c = scaled(ROPE_SCALING_NTK, 4.0);
    c.head_dim = c.rotary_dim = 128;
    double inv[64], attn = 0.0;
    CHECK_EQ_INT(rope_freqs(&c, 0, inv, &attn), ROPE_OK);
    double b2 = 10000.0 * pow(4.0, 128.0 / 126.0);
    /* 1e-14 relative: same formula, a different grouping of the pow. */
    for (int i = 0; i < 64; i++) CHECK_CLOSE(inv[i], pow(b2, -2.0 * i / 128.0), 1e-14, 0.0);
    CHECK(inv[0] == 1.0);
    /* The lowest frequency is interpolated exactly as linear PI would. */
    CHECK_CLOSE(inv[63], inv0_of(10000.0, 128, 63) / 4.0, 1e-13, 0.0);
    for (int i = 1; i < 64; i++) CHECK(inv[i] < inv0_of(10000.0, 128, i));
    CHECK(attn == 1.0);
    /* rotary_dim 2: one pair, inv 1 whatever the base (d/(d-2) is infinite). */
    c.rotary_dim = 2;
    CHECK_EQ_INT(rope_freqs(&c, 0, inv, &attn), ROPE_OK);
    CHECK(inv[0] == 1.0);
}

TEST(rope_freqs_dynamic_below_and_above_original) {
    rope_config c = scaled(ROPE_SCALING_DYNAMIC, 4.0);
    c.scaling.original_max_positions = 2048;
    double inv[32], ref[32], attn = 0.0;
    const int64_t short_lens[] = {0, 1, 1000, 2048};
    for (size_t k = 0; k < 4; k++) {
        CHECK_EQ_INT(rope_freqs(&c, short_lens[k], inv, &attn), ROPE_OK);
        for (int i = 0; i < 32; i++) CHECK(inv[i] == inv0_of(10000.0, 64, i));
        CHECK(attn == 1.0);
    }
    CHECK_EQ_INT(rope_freqs(&c, 16384, inv, &attn), ROPE_OK);
    double b2 = 10000.0 * pow(4.0 * 16384.0 / 2048.0 - 3.0, 64.0 / 62.0);
    int differs_from_linear = 0;
    for (int i = 0; i < 32; i++) {
        /* 1e-14 relative: same formula, rounding of pow only. */
        CHECK_CLOSE(inv[i], pow(b2, -2.0 * i / 64.0), 1e-14, 0.0);
        if (fabs(inv[i] - inv0_of(10000.0, 64, i) / 4.0) > 1e-6 * inv[i]) differs_from_linear++;
    }
    CHECK(differs_from_linear > 0);
    CHECK(attn == 1.0);
    /* Grows with the length: longer sequence, lower lowest frequency. */
    CHECK_EQ_INT(rope_freqs(&c, 4096, ref, NULL), ROPE_OK);
    CHECK(inv[31] < ref[31] && ref[31] < inv0_of(10000.0, 64, 31));
}

TEST(rope_freqs_yarn_bounds_and_attention) {
    const double ss[] = {2.0, 4.0, 8.0, 16.0, 32.0, 40.0};
    const double published[] = {1.0693, 1.1386, 1.2079, 1.2773, 1.3466, 1.3689};
    for (size_t k = 0; k < 6; k++) {
        rope_config c = scaled(ROPE_SCALING_YARN, ss[k]);
        c.head_dim = c.rotary_dim = 128;
        c.scaling.original_max_positions = 4096;
        double inv[64], attn = 0.0;
        CHECK_EQ_INT(rope_freqs(&c, 0, inv, &attn), ROPE_OK);
        /* Exact rule, and the 4-digit values published (ROPE_NOTES 3.5). */
        CHECK_NEAR(attn, 0.1 * log(ss[k]) + 1.0, 1e-15);
        CHECK_NEAR(attn, published[k], 0.5e-4);
        int n_interp = 0, n_extrap = 0;
        for (int i = 0; i < 64; i++) {
            double i0 = inv0_of(10000.0, 128, i);
            /* Blends of i0/s and i0: inside the interval up to one rounding. */
            CHECK(inv[i] >= i0 / ss[k] * (1 - 1e-15) && inv[i] <= i0 * (1 + 1e-15));
            if (inv[i] == i0) n_extrap++;
            if (inv[i] == i0 / ss[k]) n_interp++;
            if (i > 0) CHECK(inv[i] < inv[i - 1]);
        }
        CHECK(n_extrap > 0 && n_interp > 0);   /* both ends of the ramp are reached */
        c.scaling.attention_factor = 0.5;     /* explicit value overrides */
        CHECK_EQ_INT(rope_freqs(&c, 0, NULL, &attn), ROPE_OK);
        CHECK(attn == 0.5);
    }
    /* s <= 1: attention factor 1. */
    rope_config c = scaled(ROPE_SCALING_YARN, 1.0);
    double attn = 0.0, inv[32];
    CHECK_EQ_INT(rope_freqs(&c, 0, inv, &attn), ROPE_OK);
    CHECK(attn == 1.0);
    for (int i = 0; i < 32; i++) CHECK(inv[i] == inv0_of(10000.0, 64, i));
}

TEST(rope_freqs_yarn_beta_fast_1000) {
    /* HF's check: with beta_fast = 1000 the low correction dim is 0, so every
     * pair but the first is at least partly interpolated, and every pair past
     * high = ceil(corr_dim(beta_slow)) is exactly inv0/s. */
    rope_config c = scaled(ROPE_SCALING_YARN, 8.0);
    c.head_dim = c.rotary_dim = 128;
    c.scaling.original_max_positions = 2048;
    c.scaling.beta_fast = 1000.0;
    double inv[64];
    CHECK_EQ_INT(rope_freqs(&c, 0, inv, NULL), ROPE_OK);
    double high = ceil(128.0 * log(2048.0 / (2.0 * PI_)) / (2.0 * log(10000.0)));
    CHECK(high == 41.0);   /* 40.1 rounded up */
    CHECK(inv[0] == 1.0);
    for (int i = 1; i < 64; i++) CHECK(inv[i] < inv0_of(10000.0, 128, i));
    int n_tail = 0;
    for (int i = 41; i < 64; i++) {
        CHECK(inv[i] == inv0_of(10000.0, 128, i) / 8.0);
        n_tail++;
    }
    CHECK(n_tail >= 20);
    /* Within the ramp the mix is linear in i: pair 20 is 20/41 interpolated. */
    double i0 = inv0_of(10000.0, 128, 20), r = 20.0 / 41.0;
    CHECK_CLOSE(inv[20], i0 / 8.0 * r + i0 * (1.0 - r), 1e-15, 0.0);
}

TEST(rope_freqs_yarn_mscale_ratio_truthiness) {
    rope_config c = scaled(ROPE_SCALING_YARN, 40.0);
    double attn = 0.0;
    /* Both set: DeepSeek ratio. 1e-15: same expression. */
    c.scaling.mscale = 1.0;
    c.scaling.mscale_all_dim = 0.707;
    CHECK_EQ_INT(rope_freqs(&c, 0, NULL, &attn), ROPE_OK);
    CHECK_NEAR(attn, (0.1 * log(40.0) + 1.0) / (0.1 * 0.707 * log(40.0) + 1.0), 1e-15);
    /* Equal values: ratio exactly 1 (DeepSeek-V2's 0.707/0.707). */
    c.scaling.mscale = c.scaling.mscale_all_dim = 0.707;
    CHECK_EQ_INT(rope_freqs(&c, 0, NULL, &attn), ROPE_OK);
    CHECK(attn == 1.0);
    /* Either one 0: HF's truthiness test falls back to 0.1 ln s + 1. */
    c.scaling.mscale = 0.707;
    c.scaling.mscale_all_dim = 0.0;
    CHECK_EQ_INT(rope_freqs(&c, 0, NULL, &attn), ROPE_OK);
    CHECK_NEAR(attn, 0.1 * log(40.0) + 1.0, 1e-15);
    c.scaling.mscale = 0.0;
    c.scaling.mscale_all_dim = 1.0;
    CHECK_EQ_INT(rope_freqs(&c, 0, NULL, &attn), ROPE_OK);
    CHECK_NEAR(attn, 0.1 * log(40.0) + 1.0, 1e-15);
}

TEST(rope_freqs_yarn_extrapolation_and_truncate) {
    rope_config c = scaled(ROPE_SCALING_YARN, 4.0);
    double inv[32], lin[32];
    /* extrapolation_factor 0: nothing extrapolated, the same as linear. */
    c.scaling.extrapolation_factor = 0.0;
    CHECK_EQ_INT(rope_freqs(&c, 0, inv, NULL), ROPE_OK);
    rope_config l = scaled(ROPE_SCALING_LINEAR, 4.0);
    CHECK_EQ_INT(rope_freqs(&l, 0, lin, NULL), ROPE_OK);
    for (int i = 0; i < 32; i++) CHECK(inv[i] == lin[i]);
    /* truncate off: fractional correction dims, so the ramp pairs move. */
    double tr[32];
    c.scaling.extrapolation_factor = 1.0;
    CHECK_EQ_INT(rope_freqs(&c, 0, tr, NULL), ROPE_OK);
    c.scaling.truncate = 0;
    CHECK_EQ_INT(rope_freqs(&c, 0, inv, NULL), ROPE_OK);
    int n_diff = 0;
    for (int i = 0; i < 32; i++) n_diff += inv[i] != tr[i];
    CHECK(n_diff > 0);
}

/* Counts Llama 3.1 bands: unchanged, blended, divided by s. */
static void llama3_bands(const double *inv, double base, int d, double s,
                         int *n_same, int *n_blend, int *n_div) {
    *n_same = *n_blend = *n_div = 0;
    for (int i = 0; i < d / 2; i++) {
        double i0 = inv0_of(base, d, i);
        if (inv[i] == i0) (*n_same)++;
        else if (inv[i] == i0 / s) (*n_div)++;
        else {
            (*n_blend)++;
            CHECK(inv[i] > i0 / s && inv[i] < i0);
        }
    }
}

TEST(rope_freqs_llama3_bands) {
    rope_config c = scaled(ROPE_SCALING_LLAMA3, 8.0);
    c.head_dim = c.rotary_dim = 128;
    c.base = 500000.0;
    c.scaling.original_max_positions = 8192;
    double inv[64], attn = 0.0;
    CHECK_EQ_INT(rope_freqs(&c, 0, inv, &attn), ROPE_OK);
    int n_same, n_blend, n_div;
    llama3_bands(inv, 500000.0, 128, 8.0, &n_same, &n_blend, &n_div);
    CHECK_EQ_INT(n_same, 29);
    CHECK_EQ_INT(n_blend, 6);
    CHECK_EQ_INT(n_div, 29);
    CHECK(attn == 1.0);
    /* One blended pair by hand: smooth = (L0/wavelen - 1)/(4 - 1). */
    for (int i = 0; i < 64; i++) {
        double i0 = inv0_of(500000.0, 128, i), wl = 2.0 * PI_ / i0;
        if (wl >= 8192.0 / 4.0 && wl <= 8192.0) {
            double t = (8192.0 / wl - 1.0) / 3.0;
            CHECK_CLOSE(inv[i], (1.0 - t) * i0 / 8.0 + t * i0, 1e-14, 0.0);   /* rounding only */
        }
    }
    /* high_freq_factor 1000: L0/hf = 8.2 > 2 pi, so pair 0 (wavelength
     * 2 pi) still counts as high frequency; with L0 = 2048, L0/hf = 2.05 <
     * 2 pi and every pair is scaled (HF's test). */
    c.scaling.high_freq_factor = 1000.0;
    c.scaling.original_max_positions = 2048;
    CHECK_EQ_INT(rope_freqs(&c, 0, inv, NULL), ROPE_OK);
    for (int i = 0; i < 64; i++) {
        double i0 = inv0_of(500000.0, 128, i);
        CHECK(inv[i] < i0 && inv[i] >= i0 / 8.0);
    }
}

TEST(rope_freqs_longrope_short_long_and_attention) {
    double sf[32], lf[32];
    for (int i = 0; i < 32; i++) {
        sf[i] = 1.0 + 0.01 * i;
        lf[i] = 1.0 + 0.5 * i;
    }
    rope_config c = scaled(ROPE_SCALING_LONGROPE, 8.0);
    c.scaling.original_max_positions = 4096;
    c.scaling.short_factor = sf;
    c.scaling.long_factor = lf;
    c.scaling.n_factors = 32;
    double inv[32], attn = 0.0;
    const int64_t lens[] = {0, 4096, 4097, 131072};
    for (size_t k = 0; k < 4; k++) {
        CHECK_EQ_INT(rope_freqs(&c, lens[k], inv, &attn), ROPE_OK);
        const double *f = lens[k] > 4096 ? lf : sf;
        for (int i = 0; i < 32; i++) CHECK(inv[i] == inv0_of(10000.0, 64, i) / f[i]);
        /* Published sqrt(1 + ln 8 / ln 4096) = 1.1180; 1e-15: same expression. */
        CHECK_NEAR(attn, sqrt(1.0 + log(8.0) / log(4096.0)), 1e-15);
        CHECK_NEAR(attn, 1.1180, 0.5e-4);
    }
    c.scaling.factor = 32.0;
    CHECK_EQ_INT(rope_freqs(&c, 0, NULL, &attn), ROPE_OK);
    CHECK_NEAR(attn, 1.1902, 0.5e-4);
    c.scaling.factor = 1.0;
    CHECK_EQ_INT(rope_freqs(&c, 0, NULL, &attn), ROPE_OK);
    CHECK(attn == 1.0);
    c.scaling.attention_factor = 1.25;
    CHECK_EQ_INT(rope_freqs(&c, 0, NULL, &attn), ROPE_OK);
    CHECK(attn == 1.25);
}

TEST(rope_freqs_freq_factors_divide) {
    double f[16];
    for (int i = 0; i < 16; i++) f[i] = 0.9 + 0.2 * i / 15.0;   /* ggml's [0.9, 1.1] */
    rope_config c = rope_config_default();
    c.rotary_dim = 32;
    c.scaling.type = ROPE_SCALING_FREQ_FACTORS;
    c.scaling.short_factor = f;
    c.scaling.n_factors = 16;
    double inv[16], attn = 0.0;
    CHECK_EQ_INT(rope_freqs(&c, 0, inv, &attn), ROPE_OK);
    for (int i = 0; i < 16; i++) CHECK(inv[i] == inv0_of(10000.0, 32, i) / f[i]);
    CHECK(attn == 1.0);
    c.scaling.attention_factor = 2.0;   /* explicit factor applies to every type */
    CHECK_EQ_INT(rope_freqs(&c, 0, NULL, &attn), ROPE_OK);
    CHECK(attn == 2.0);
}

TEST(rope_freqs_attention_factor_one_for_plain_scalings) {
    const rope_scaling_type ts[] = {ROPE_SCALING_NONE, ROPE_SCALING_LINEAR, ROPE_SCALING_NTK,
                                    ROPE_SCALING_DYNAMIC, ROPE_SCALING_LLAMA3};
    for (size_t k = 0; k < 5; k++) {
        rope_config c = scaled(ts[k], 8.0);
        double attn = 0.0;
        CHECK_EQ_INT(rope_freqs(&c, 1 << 20, NULL, &attn), ROPE_OK);
        CHECK(attn == 1.0);
    }
}

TEST(rope_freqs_attention_without_inv_matches) {
    /* inv_freq == NULL takes a separate path (a one-pair copy of the config);
     * it must give the same attention factor as the full computation. */
    double sf[48], lf[48];
    for (int i = 0; i < 48; i++) {
        sf[i] = 1.0 + 0.02 * i;
        lf[i] = 2.0 + 0.7 * i;
    }
    const int64_t lens[] = {0, 4096, 50000};
    for (int t = 0; t < ROPE_SCALING_COUNT; t++) {
        for (size_t k = 0; k < 3; k++) {
            rope_config c = scaled((rope_scaling_type)t, 12.0);
            c.head_dim = 128;
            c.rotary_dim = 96;
            c.scaling.original_max_positions = 4096;
            c.scaling.mscale = 1.0;
            c.scaling.mscale_all_dim = 0.5;
            c.scaling.short_factor = sf;
            c.scaling.long_factor = lf;
            c.scaling.n_factors = 48;
            double inv[48], a_full = 0.0, a_only = -1.0;
            CHECK_EQ_INT(rope_freqs(&c, lens[k], inv, &a_full), ROPE_OK);
            CHECK_EQ_INT(rope_freqs(&c, lens[k], NULL, &a_only), ROPE_OK);
            CHECK(a_full == a_only);
            if (t == ROPE_SCALING_YARN || t == ROPE_SCALING_LONGROPE) CHECK(a_full > 1.0);
        }
    }
}
