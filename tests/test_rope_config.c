/*
 * test_rope_config.c — librope's version/status strings, the documented
 * defaults, and rope_config_validate(): every invalid field returns its own
 * status (NaN and Inf included), in the documented order, and fields a type
 * does not use are ignored.
 */
#include <math.h>
#include <string.h>

#include "rope.h"
#include "test.h"

TEST(rope_config_version_matches_header) {
    CHECK(strcmp(rope_version(), ROPE_VERSION_STRING) == 0);
}

TEST(rope_config_status_str_every_value) {
    /* Each status has its own non-empty text; out-of-range ones say so. */
    for (int s = 0; s < ROPE_STATUS_COUNT; s++) {
        const char *t = rope_status_str((rope_status)s);
        CHECK(t != NULL && t[0] != '\0');
        CHECK(strcmp(t, "unknown status") != 0);
        for (int u = 0; u < s; u++) CHECK(strcmp(t, rope_status_str((rope_status)u)) != 0);
    }
    CHECK(strcmp(rope_status_str(ROPE_STATUS_COUNT), "unknown status") == 0);
    CHECK(strcmp(rope_status_str((rope_status)-1), "unknown status") == 0);
    CHECK(strcmp(rope_status_str(ROPE_OK), "ok") == 0);
}

TEST(rope_config_defaults_as_documented) {
    rope_config c = rope_config_default();
    CHECK_EQ_INT(c.head_dim, 64);
    CHECK_EQ_INT(c.rotary_dim, 64);
    CHECK(c.base == 10000.0);
    CHECK_EQ_INT(c.layout, ROPE_LAYOUT_INTERLEAVED);
    CHECK_EQ_INT(c.scaling.type, ROPE_SCALING_NONE);
    CHECK(c.scaling.factor == 1.0);
    CHECK_EQ_INT(c.scaling.original_max_positions, 2048);
    CHECK(isnan(c.scaling.attention_factor));
    CHECK(c.scaling.beta_fast == 32.0);
    CHECK(c.scaling.beta_slow == 1.0);
    CHECK(c.scaling.mscale == 0.0);
    CHECK(c.scaling.mscale_all_dim == 0.0);
    CHECK(c.scaling.extrapolation_factor == 1.0);
    CHECK_EQ_INT(c.scaling.truncate, 1);
    CHECK(c.scaling.low_freq_factor == 1.0);
    CHECK(c.scaling.high_freq_factor == 4.0);
    CHECK(c.scaling.short_factor == NULL);
    CHECK(c.scaling.long_factor == NULL);
    CHECK_EQ_INT(c.scaling.n_factors, 0);
    CHECK_EQ_INT(c.max_positions, 2048);
    CHECK_EQ_INT(c.strict_range, 0);
    CHECK_EQ_INT(rope_config_validate(&c), ROPE_OK);
}

/* The default config with scaling type t and that type's published defaults
 * (valid as returned). */
static rope_config cfg_of(rope_scaling_type t) {
    rope_config c = rope_config_default();
    c.scaling.type = t;
    c.scaling.factor = 4.0;
    return c;
}

static const double good_f[32] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};

TEST(rope_config_every_type_valid_with_defaults) {
    for (int t = 0; t < ROPE_SCALING_COUNT; t++) {
        rope_config c = cfg_of((rope_scaling_type)t);
        c.scaling.short_factor = good_f;
        c.scaling.long_factor = good_f;
        c.scaling.n_factors = 32;
        CHECK_EQ_INT(rope_config_validate(&c), ROPE_OK);
    }
}

TEST(rope_config_null) {
    CHECK_EQ_INT(rope_config_validate(NULL), ROPE_ENULL);
}

TEST(rope_config_bad_dims) {
    static const int bad[][2] = {{0, 0}, {-64, 64}, {64, 0}, {64, -2}, {64, 63}, {64, 66}, {64, 1}};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        rope_config c = rope_config_default();
        c.head_dim = bad[k][0];
        c.rotary_dim = bad[k][1];
        CHECK_EQ_INT(rope_config_validate(&c), ROPE_EDIM);
    }
    rope_config c = rope_config_default();
    c.head_dim = 80;
    c.rotary_dim = 2;   /* smallest partial rotary */
    CHECK_EQ_INT(rope_config_validate(&c), ROPE_OK);
}

TEST(rope_config_bad_base) {
    const double bad[] = {0.0, -1.0, NAN, INFINITY, -INFINITY};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        rope_config c = rope_config_default();
        c.base = bad[k];
        CHECK_EQ_INT(rope_config_validate(&c), ROPE_EBASE);
    }
    /* base 1 is degenerate but legal, except for YaRN whose corr dims divide
     * by ln(base). */
    rope_config c = rope_config_default();
    c.base = 1.0;
    CHECK_EQ_INT(rope_config_validate(&c), ROPE_OK);
    c = cfg_of(ROPE_SCALING_YARN);
    c.base = 1.0;
    CHECK_EQ_INT(rope_config_validate(&c), ROPE_EBASE);
}

TEST(rope_config_bad_layout_and_type) {
    rope_config c = rope_config_default();
    c.layout = (rope_layout)2;
    CHECK_EQ_INT(rope_config_validate(&c), ROPE_ELAYOUT);
    c.layout = (rope_layout)-1;
    CHECK_EQ_INT(rope_config_validate(&c), ROPE_ELAYOUT);
    c = rope_config_default();
    c.scaling.type = ROPE_SCALING_COUNT;
    CHECK_EQ_INT(rope_config_validate(&c), ROPE_ESCALING);
    c.scaling.type = (rope_scaling_type)-1;
    CHECK_EQ_INT(rope_config_validate(&c), ROPE_ESCALING);
}

TEST(rope_config_bad_factor) {
    const double bad[] = {0.0, -2.0, NAN, INFINITY, -INFINITY};
    for (int t = ROPE_SCALING_LINEAR; t <= ROPE_SCALING_LONGROPE; t++) {
        for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
            rope_config c = cfg_of((rope_scaling_type)t);
            c.scaling.short_factor = good_f;
            c.scaling.long_factor = good_f;
            c.scaling.n_factors = 32;
            c.scaling.factor = bad[k];
            CHECK_EQ_INT(rope_config_validate(&c), ROPE_EFACTOR);
        }
        /* factor < 1 compresses; accepted (HF only warns). */
        rope_config c = cfg_of((rope_scaling_type)t);
        c.scaling.short_factor = good_f;
        c.scaling.long_factor = good_f;
        c.scaling.n_factors = 32;
        c.scaling.factor = 0.5;
        CHECK_EQ_INT(rope_config_validate(&c), ROPE_OK);
    }
    /* NONE and FREQ_FACTORS do not read factor. */
    rope_config c = rope_config_default();
    c.scaling.factor = NAN;
    CHECK_EQ_INT(rope_config_validate(&c), ROPE_OK);
    c.scaling.type = ROPE_SCALING_FREQ_FACTORS;
    c.scaling.short_factor = good_f;
    c.scaling.n_factors = 32;
    CHECK_EQ_INT(rope_config_validate(&c), ROPE_OK);
}

TEST(rope_config_bad_original_length) {
    const rope_scaling_type uses[] = {ROPE_SCALING_DYNAMIC, ROPE_SCALING_YARN, ROPE_SCALING_LLAMA3,
                                      ROPE_SCALING_LONGROPE};
    for (size_t k = 0; k < 4; k++) {
        rope_config c = cfg_of(uses[k]);
        c.scaling.short_factor = good_f;
        c.scaling.long_factor = good_f;
        c.scaling.n_factors = 32;
        c.scaling.original_max_positions = 0;
        CHECK_EQ_INT(rope_config_validate(&c), ROPE_EPARAM);
        c.scaling.original_max_positions = -5;
        CHECK_EQ_INT(rope_config_validate(&c), ROPE_EPARAM);
    }
    /* LongRoPE divides by ln L0, so L0 = 1 is out too; linear ignores L0. */
    rope_config c = cfg_of(ROPE_SCALING_LONGROPE);
    c.scaling.short_factor = good_f;
    c.scaling.long_factor = good_f;
    c.scaling.n_factors = 32;
    c.scaling.original_max_positions = 1;
    CHECK_EQ_INT(rope_config_validate(&c), ROPE_EPARAM);
    c = cfg_of(ROPE_SCALING_LINEAR);
    c.scaling.original_max_positions = 0;
    CHECK_EQ_INT(rope_config_validate(&c), ROPE_OK);
}

TEST(rope_config_bad_attention_factor) {
    const double bad[] = {0.0, -1.0, INFINITY, -INFINITY};
    for (int t = 0; t < ROPE_SCALING_COUNT; t++) {
        for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
            rope_config c = cfg_of((rope_scaling_type)t);
            c.scaling.short_factor = good_f;
            c.scaling.long_factor = good_f;
            c.scaling.n_factors = 32;
            c.scaling.attention_factor = bad[k];
            CHECK_EQ_INT(rope_config_validate(&c), ROPE_EPARAM);
        }
    }
    rope_config c = cfg_of(ROPE_SCALING_YARN);
    c.scaling.attention_factor = 0.5;   /* explicit, used as is */
    CHECK_EQ_INT(rope_config_validate(&c), ROPE_OK);
}

TEST(rope_config_bad_yarn_params) {
    rope_config c;
#define YARN_BAD(field, value) do { c = cfg_of(ROPE_SCALING_YARN); c.scaling.field = (value); \
        CHECK_EQ_INT(rope_config_validate(&c), ROPE_EPARAM); } while (0)
    YARN_BAD(beta_fast, NAN);
    YARN_BAD(beta_fast, INFINITY);
    YARN_BAD(beta_fast, 0.0);        /* 0 is not "default" here (HF's `or`) */
    YARN_BAD(beta_fast, 1.0);        /* == beta_slow */
    YARN_BAD(beta_fast, 0.5);        /* < beta_slow */
    YARN_BAD(beta_slow, NAN);
    YARN_BAD(beta_slow, -INFINITY);
    YARN_BAD(beta_slow, 0.0);
    YARN_BAD(beta_slow, -1.0);
    YARN_BAD(mscale, NAN);
    YARN_BAD(mscale, INFINITY);
    YARN_BAD(mscale, -0.5);
    YARN_BAD(mscale_all_dim, NAN);
    YARN_BAD(mscale_all_dim, -1.0);
    YARN_BAD(extrapolation_factor, NAN);
    YARN_BAD(extrapolation_factor, INFINITY);
    YARN_BAD(extrapolation_factor, -0.1);
    YARN_BAD(truncate, 2);
    YARN_BAD(truncate, -1);
#undef YARN_BAD
    /* The same values are ignored by a type that does not use them. */
    c = cfg_of(ROPE_SCALING_LINEAR);
    c.scaling.beta_fast = NAN;
    c.scaling.mscale = -1.0;
    c.scaling.truncate = 7;
    c.scaling.low_freq_factor = NAN;
    CHECK_EQ_INT(rope_config_validate(&c), ROPE_OK);
}

TEST(rope_config_bad_llama3_params) {
    rope_config c;
#define L3_BAD(field, value) do { c = cfg_of(ROPE_SCALING_LLAMA3); c.scaling.field = (value); \
        CHECK_EQ_INT(rope_config_validate(&c), ROPE_EPARAM); } while (0)
    L3_BAD(low_freq_factor, NAN);
    L3_BAD(low_freq_factor, INFINITY);
    L3_BAD(low_freq_factor, 0.0);
    L3_BAD(low_freq_factor, 4.0);     /* == high */
    L3_BAD(low_freq_factor, 5.0);     /* > high */
    L3_BAD(high_freq_factor, NAN);
    L3_BAD(high_freq_factor, INFINITY);
    L3_BAD(high_freq_factor, -4.0);
#undef L3_BAD
}

TEST(rope_config_bad_factor_arrays) {
    double f[32];
    for (int i = 0; i < 32; i++) f[i] = 1.0 + i * 0.1;
    double bad_vals[] = {0.0, -1.0, NAN, INFINITY};

    /* LongRoPE: both arrays required, n_factors = rotary_dim/2, all > 0. */
    rope_config c = cfg_of(ROPE_SCALING_LONGROPE);
    c.scaling.short_factor = f;
    c.scaling.long_factor = f;
    c.scaling.n_factors = 32;
    CHECK_EQ_INT(rope_config_validate(&c), ROPE_OK);
    c.scaling.long_factor = NULL;
    CHECK_EQ_INT(rope_config_validate(&c), ROPE_EFACTORS);
    c.scaling.long_factor = f;
    c.scaling.short_factor = NULL;
    CHECK_EQ_INT(rope_config_validate(&c), ROPE_EFACTORS);
    c.scaling.short_factor = f;
    c.scaling.n_factors = 31;
    CHECK_EQ_INT(rope_config_validate(&c), ROPE_EFACTORS);
    c.scaling.n_factors = 64;   /* head_dim, a common mistake */
    CHECK_EQ_INT(rope_config_validate(&c), ROPE_EFACTORS);
    c.scaling.n_factors = 32;
    for (size_t k = 0; k < 4; k++) {
        double g[32];
        memcpy(g, f, sizeof g);
        g[31] = bad_vals[k];   /* the last one: the loop must reach it */
        c.scaling.short_factor = g;
        c.scaling.long_factor = f;
        CHECK_EQ_INT(rope_config_validate(&c), ROPE_EFACTORS);
        c.scaling.short_factor = f;
        c.scaling.long_factor = g;
        CHECK_EQ_INT(rope_config_validate(&c), ROPE_EFACTORS);
        c.scaling.long_factor = f;
    }

    /* FREQ_FACTORS: short_factor only; long_factor ignored. */
    c = rope_config_default();
    c.scaling.type = ROPE_SCALING_FREQ_FACTORS;
    CHECK_EQ_INT(rope_config_validate(&c), ROPE_EFACTORS);
    c.scaling.short_factor = f;
    c.scaling.n_factors = 32;
    CHECK_EQ_INT(rope_config_validate(&c), ROPE_OK);
    c.scaling.n_factors = 0;
    CHECK_EQ_INT(rope_config_validate(&c), ROPE_EFACTORS);
    c.scaling.n_factors = 32;
    double g[32];
    memcpy(g, f, sizeof g);
    g[0] = NAN;
    c.scaling.short_factor = g;
    CHECK_EQ_INT(rope_config_validate(&c), ROPE_EFACTORS);

    /* Partial rotary: the length follows rotary_dim, not head_dim. */
    c = rope_config_default();
    c.rotary_dim = 32;
    c.scaling.type = ROPE_SCALING_FREQ_FACTORS;
    c.scaling.short_factor = f;
    c.scaling.n_factors = 16;
    CHECK_EQ_INT(rope_config_validate(&c), ROPE_OK);
    c.scaling.n_factors = 32;
    CHECK_EQ_INT(rope_config_validate(&c), ROPE_EFACTORS);
}

TEST(rope_config_bad_table_fields) {
    rope_config c = rope_config_default();
    c.max_positions = -1;
    CHECK_EQ_INT(rope_config_validate(&c), ROPE_EPARAM);
    c.max_positions = 0;   /* empty table: every position computed on the fly */
    CHECK_EQ_INT(rope_config_validate(&c), ROPE_OK);
    c.strict_range = 2;
    CHECK_EQ_INT(rope_config_validate(&c), ROPE_EPARAM);
    c.strict_range = 1;
    CHECK_EQ_INT(rope_config_validate(&c), ROPE_OK);
}

TEST(rope_config_first_error_in_field_order) {
    /* Several fields broken at once: the one declared first wins. */
    rope_config c = rope_config_default();
    c.scaling.type = ROPE_SCALING_YARN;
    c.rotary_dim = 3;
    c.base = NAN;
    c.layout = (rope_layout)9;
    c.scaling.factor = -1.0;
    c.scaling.beta_fast = NAN;
    c.max_positions = -1;
    CHECK_EQ_INT(rope_config_validate(&c), ROPE_EDIM);
    c.rotary_dim = 64;
    CHECK_EQ_INT(rope_config_validate(&c), ROPE_EBASE);
    c.base = 10000.0;
    CHECK_EQ_INT(rope_config_validate(&c), ROPE_ELAYOUT);
    c.layout = ROPE_LAYOUT_HALF;
    CHECK_EQ_INT(rope_config_validate(&c), ROPE_EFACTOR);
    c.scaling.factor = 2.0;
    CHECK_EQ_INT(rope_config_validate(&c), ROPE_EPARAM);
    c.scaling.beta_fast = 32.0;
    CHECK_EQ_INT(rope_config_validate(&c), ROPE_EPARAM);   /* max_positions */
    c.max_positions = 4096;
    CHECK_EQ_INT(rope_config_validate(&c), ROPE_OK);
    /* An unknown type is reported before a bad factor. */
    c.scaling.type = (rope_scaling_type)42;
    c.scaling.factor = NAN;
    CHECK_EQ_INT(rope_config_validate(&c), ROPE_ESCALING);
}
