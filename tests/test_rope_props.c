/*
 * test_rope_props.c — the algebra RoPE must obey, checked through the public
 * API: norms kept, R(0) = I, R(a)R(b) = R(a+b), scores depend only on the
 * position difference, backward is the adjoint and the inverse, rope_shift
 * moves cached keys, and cos/sin rows stay accurate far past the table
 * (up to 2^31 - 1) against a long double reference.
 *
 * Error budget used below (u = 2^-24, float unit roundoff): rotating a pair
 * (a, b) with the float table's c, s costs <= 2u(|a|+|b|) in the kernel
 * (two products and a sum, |c|,|s| <= 1) plus <= u/2 (|a|+|b|) from c, s being
 * rounded to float, so each rotated element is within eps (|a|+|b|) of the
 * exact rotation, eps = 2^-22 (a little slack over 2.5u).
 */
#include <float.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rope.h"
#include "rope/kernels.h"   /* rope_kernel_best: what init must pick */
#include "rope_fixtures.h"
#include "test.h"

#define EPS 0x1.0p-22

static const int shapes[][2] = {
    { 64, 64 }, { 80, 80 }, { 96, 96 }, { 128, 128 }, { 64, 32 }, { 96, 6 }, { 128, 10 }, { 64, 22 },
};
#define N_SHAPES ((int)(sizeof shapes / sizeof shapes[0]))

/* The kernels this CPU runs; the trials below take turns with them. */
static int kernels(rope_kernel *ks) {
    static const rope_kernel all[] = { ROPE_KERNEL_SCALAR, ROPE_KERNEL_AVX2, ROPE_KERNEL_AVX512 };
    int n = 0;
    for (int i = 0; i < 3; i++)
        if (rope_kernel_supported(all[i])) ks[n++] = all[i];
    return n;
}
static void use_kernel(rope_table *t, int trial) {
    rope_kernel ks[3];
    int n = kernels(ks);
    CHECK_EQ_INT(rope_table_set_kernel(t, ks[trial % n]), ROPE_OK);
}

/* One head vector rotated to position p (in place). */
static void rot(const rope_table *t, rope_direction dir, float *x, int64_t p) {
    int32_t p32 = (int32_t)p;
    rope_view v = rope_view_packed(x, 1, 1, t->cfg.head_dim);
    CHECK_EQ_INT(rope_apply(t, dir, &v, &v, &p32, 1), ROPE_OK);
}

static double dot(const float *a, const float *b, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

/* Partner channel of j (j < rotary_dim). */
static int partner(rope_layout l, int d, int j) {
    if (l == ROPE_LAYOUT_INTERLEAVED) return j ^ 1;
    return j < d / 2 ? j + d / 2 : j - d / 2;
}

/* Positions: the table (max 4096), and far past it up to ~1e5. */
static int64_t rand_pos(uint64_t *s) {
    return (rng_next(s) & 1) ? (int64_t)(rng_next(s) % 4096) : (int64_t)(rng_next(s) % 100000);
}

TEST(rope_props_norm_and_zero) {
    uint64_t rs = 11;
    float x[128], y[128];
    for (int sh = 0; sh < N_SHAPES; sh++)
    for (int lay = 0; lay < 2; lay++) {
        int D = shapes[sh][0], d = shapes[sh][1];
        rope_config cfg = config(D, d, (rope_layout)lay, 4096);
        rope_table t;
        CHECK_EQ_INT(rope_table_init(&t, &cfg, 4096), ROPE_OK);
        for (int trial = 0; trial < 40; trial++) {
            use_kernel(&t, trial);
            fill(x, (size_t)D, &rs);
            memcpy(y, x, sizeof x);
            rot(&t, ROPE_FORWARD, y, rand_pos(&rs));
            /* Relative: each element is within eps(|a|+|b|) <= sqrt(2) eps ||pair||
             * of the exact rotation, so the norm within ~2 eps; 4 eps slack. */
            CHECK_CLOSE(sqrt(dot(y, y, D)), sqrt(dot(x, x, D)), 4 * EPS, 0);
            /* R(0) = I exactly: cos = 1, sin = 0 are exact and a*1 - b*0 = a. */
            memcpy(y, x, sizeof x);
            rot(&t, ROPE_FORWARD, y, 0);
            CHECK(memcmp(y, x, (size_t)D * sizeof(float)) == 0);
            rot(&t, ROPE_BACKWARD, y, 0);
            CHECK(memcmp(y, x, (size_t)D * sizeof(float)) == 0);
        }
        rope_table_free(&t);
    }
}

TEST(rope_props_composition_and_inverse) {
    /* R(b) R(a) x = R(a+b) x, and backward(forward(x)) = x. Two rotations
     * against one: <= 3 eps (|a|+|b|) per element (the partner's error feeds
     * in too); 4 eps leaves slack. A wrong angle is off by O(|a|). */
    uint64_t rs = 12;
    float x[128], y[128], z[128];
    for (int sh = 0; sh < N_SHAPES; sh++)
    for (int lay = 0; lay < 2; lay++) {
        int D = shapes[sh][0], d = shapes[sh][1];
        rope_config cfg = config(D, d, (rope_layout)lay, 4096);
        rope_table t;
        CHECK_EQ_INT(rope_table_init(&t, &cfg, 4096), ROPE_OK);
        for (int trial = 0; trial < 30; trial++) {
            use_kernel(&t, trial);
            fill(x, (size_t)D, &rs);
            int64_t a = rand_pos(&rs), b = rand_pos(&rs);
            memcpy(y, x, sizeof x);
            rot(&t, ROPE_FORWARD, y, a);
            rot(&t, ROPE_FORWARD, y, b);
            memcpy(z, x, sizeof x);
            rot(&t, ROPE_FORWARD, z, a + b);
            for (int j = 0; j < d; j++)
                CHECK_NEAR(y[j], z[j], 4 * EPS * (fabs(x[j]) + fabs(x[partner(cfg.layout, d, j)])));
            memcpy(y, x, sizeof x);
            rot(&t, ROPE_FORWARD, y, a);
            rot(&t, ROPE_BACKWARD, y, a);
            for (int j = 0; j < d; j++)
                CHECK_NEAR(y[j], x[j], 4 * EPS * (fabs(x[j]) + fabs(x[partner(cfg.layout, d, j)])));
            CHECK(memcmp(y + d, x + d, (size_t)(D - d) * sizeof(float)) == 0);
        }
        rope_table_free(&t);
    }
}

TEST(rope_props_relative_scores) {
    /* <R_m q, R_n k> = <R_{m+c} q, R_{n+c} k> = <q, R_{n-m} k> for m, n, c up
     * to 1e5. Each rotated vector is within eps(|a|+|b|) per element, so a
     * score is within 4 eps ||q|| ||k|| of the exact one (Cauchy-Schwarz per
     * pair, (|a|+|b|) <= sqrt(2) ||pair||); two scores: 8 eps ||q|| ||k||. */
    uint64_t rs = 13;
    float q[128], k[128], a[128], b[128];
    for (int sh = 0; sh < N_SHAPES; sh++)
    for (int lay = 0; lay < 2; lay++) {
        int D = shapes[sh][0], d = shapes[sh][1];
        rope_config cfg = config(D, d, (rope_layout)lay, 4096);
        rope_table t;
        CHECK_EQ_INT(rope_table_init(&t, &cfg, 4096), ROPE_OK);
        for (int trial = 0; trial < 30; trial++) {
            use_kernel(&t, trial);
            fill(q, (size_t)D, &rs);
            fill(k, (size_t)D, &rs);
            int64_t m = rand_pos(&rs), n = rand_pos(&rs), c = rand_pos(&rs);
            double tol = 8 * EPS * sqrt(dot(q, q, D) * dot(k, k, D));
            memcpy(a, q, sizeof q); rot(&t, ROPE_FORWARD, a, m);
            memcpy(b, k, sizeof k); rot(&t, ROPE_FORWARD, b, n);
            double s_mn = dot(a, b, D);
            memcpy(a, q, sizeof q); rot(&t, ROPE_FORWARD, a, m + c);
            memcpy(b, k, sizeof k); rot(&t, ROPE_FORWARD, b, n + c);
            CHECK_NEAR(dot(a, b, D), s_mn, tol);
            memcpy(a, q, sizeof q);
            memcpy(b, k, sizeof k);
            if (n >= m) rot(&t, ROPE_FORWARD, b, n - m);
            else rot(&t, ROPE_FORWARD, a, m - n);
            CHECK_NEAR(dot(a, b, D), s_mn, tol);
        }
        rope_table_free(&t);
    }
}

TEST(rope_props_backward_is_adjoint) {
    /* <dy, R x> = <R^T dy, x>: both sides use the same float c, s, so they
     * differ by kernel rounding only (2 * 4 eps ||x|| ||dy|| bound as above). */
    uint64_t rs = 14;
    float x[128], dy[128], a[128], b[128];
    for (int sh = 0; sh < N_SHAPES; sh++)
    for (int lay = 0; lay < 2; lay++) {
        int D = shapes[sh][0], d = shapes[sh][1];
        rope_config cfg = config(D, d, (rope_layout)lay, 4096);
        rope_table t;
        CHECK_EQ_INT(rope_table_init(&t, &cfg, 4096), ROPE_OK);
        for (int trial = 0; trial < 30; trial++) {
            use_kernel(&t, trial);
            fill(x, (size_t)D, &rs);
            fill(dy, (size_t)D, &rs);
            int64_t p = rand_pos(&rs);
            memcpy(a, x, sizeof x); rot(&t, ROPE_FORWARD, a, p);
            memcpy(b, dy, sizeof dy); rot(&t, ROPE_BACKWARD, b, p);
            CHECK_NEAR(dot(dy, a, D), dot(b, x, D), 8 * EPS * sqrt(dot(x, x, D) * dot(dy, dy, D)));
        }
        rope_table_free(&t);
    }
}

TEST(rope_props_shift_moves_keys) {
    /* llama.cpp test-rope.cpp: keys rotated at p0 = 100 + i, shifted by -67,
     * equal keys rotated at 33 + i; also +3000 (past the table). With a YaRN
     * attention factor m = 1.2079 the shift must not apply m again (it would
     * be off by 21%). Per element: a rotation of the rotated keys, |a'|+|b'|
     * <= sqrt(2)(|a|+|b|) m, so 4 eps m (|a|+|b|) covers both paths. */
    uint64_t rs = 15;
    const int64_t T = 40, H = 3;
    for (int sh = 0; sh < N_SHAPES; sh++)
    for (int lay = 0; lay < 2; lay++)
    for (int yarn = 0; yarn < 2; yarn++) {
        int D = shapes[sh][0], d = shapes[sh][1];
        rope_config cfg = config(D, d, (rope_layout)lay, 1024);
        if (yarn) {
            cfg.scaling.type = ROPE_SCALING_YARN;
            cfg.scaling.factor = 8;
            cfg.scaling.original_max_positions = 128;
        }
        rope_table t;
        CHECK_EQ_INT(rope_table_init(&t, &cfg, 1024), ROPE_OK);
        use_kernel(&t, sh + lay);
        double m = t.attention_factor;
        const int64_t deltas[2] = { -67, 3000 };
        for (int di = 0; di < 2; di++) {
            size_t n = (size_t)(T * H * D);
            float *x = malloc(n * sizeof *x), *k = malloc(n * sizeof *k), *r = malloc(n * sizeof *r);
            if (!x || !k || !r) abort();
            int32_t p0[40], p2[40];
            for (int i = 0; i < T; i++) { p0[i] = 100 + i; p2[i] = (int32_t)(100 + i + deltas[di]); }
            fill(x, n, &rs);
            rope_view vx = rope_view_packed(x, T, H, D), vk = rope_view_packed(k, T, H, D);
            rope_view vr = rope_view_packed(r, T, H, D);
            CHECK_EQ_INT(rope_apply(&t, ROPE_FORWARD, &vk, &vx, p0, 1), ROPE_OK);
            CHECK_EQ_INT(rope_shift(&t, &vk, deltas[di], 1), ROPE_OK);
            CHECK_EQ_INT(rope_apply(&t, ROPE_FORWARD, &vr, &vx, p2, 1), ROPE_OK);
            for (int64_t th = 0; th < T * H; th++) {
                const float *xh = x + th * D, *kh = k + th * D, *rh = r + th * D;
                for (int j = 0; j < d; j++)
                    CHECK_NEAR(kh[j], rh[j], 4 * EPS * m * (fabs(xh[j]) + fabs(xh[partner(cfg.layout, d, j)])));
                CHECK(memcmp(kh + d, xh + d, (size_t)(D - d) * sizeof(float)) == 0);
            }
            free(x); free(k); free(r);
        }
        rope_table_free(&t);
    }
}

/* cos/sin rows of t at p against cosl/sinl of the long double product. On
 * x86-64 long double has a 64-bit mantissa: p < 2^31 times a double inv_freq
 * rounds with error <= 2^-33 rad, far below a float ulp. The library's row is
 * the float rounding (<= 2^-25 absolute for |v| <= 1) of a double value whose
 * angle is exact to ~1e-16 (fma two-product, see table.c), so 2^-24 = 2 x
 * half-ulp bounds it. Without the fma correction the double product alone is
 * off by up to 2^-22 rad at p ~ 2^31 and this check fails. Where long double
 * is just double the reference itself has that 2^-22 error. */
static void check_row_exact(const rope_table *t, int64_t p) {
    float c[64], s[64];
    CHECK_EQ_INT(rope_table_row(t, p, c, s), ROPE_OK);
    double tol = LDBL_MANT_DIG >= 64 ? 0x1.0p-24 : 0x1.0p-21;
    for (int i = 0; i < t->n_pairs; i++) {
        long double ang = (long double)p * (long double)t->inv_freq[i];
        CHECK_NEAR(c[i], (double)(t->attention_factor * cosl(ang)), tol);
        CHECK_NEAR(s[i], (double)(t->attention_factor * sinl(ang)), tol);
    }
}

TEST(rope_table_rows_exact_far_positions) {
    /* A 2^20 + 1 row table (3 pairs keeps it at 24 MB) and a 128-dim table of
     * 64 rows whose far positions go through the on-the-fly path. */
    rope_config big = config(8, 6, ROPE_LAYOUT_INTERLEAVED, ((int64_t)1 << 20) + 1);
    rope_config small = config(8, 6, ROPE_LAYOUT_INTERLEAVED, 64);
    rope_config wide = config(128, 128, ROPE_LAYOUT_HALF, 64);
    rope_table tb, ts, tw;
    CHECK_EQ_INT(rope_table_init(&tb, &big, 0), ROPE_OK);
    CHECK_EQ_INT(rope_table_init(&ts, &small, 0), ROPE_OK);
    CHECK_EQ_INT(rope_table_init(&tw, &wide, 0), ROPE_OK);
    const int64_t in_big[] = { 0, 1, 4095, 15962, 131072, 999999, (1 << 20) - 1, 1 << 20 };
    for (size_t i = 0; i < sizeof in_big / sizeof in_big[0]; i++) {
        int64_t p = in_big[i];
        check_row_exact(&tb, p);
        check_row_exact(&ts, p);
        check_row_exact(&tw, p);
        /* The table row and the on-the-fly row are one function in double: same bits. */
        float cb[3], sb[3], cs[3], ss[3];
        CHECK_EQ_INT(rope_table_row(&tb, p, cb, sb), ROPE_OK);
        CHECK_EQ_INT(rope_table_row(&ts, p, cs, ss), ROPE_OK);
        CHECK(memcmp(cb, cs, sizeof cb) == 0 && memcmp(sb, ss, sizeof sb) == 0);
        /* and equal the table's stored row */
        if (p < big.max_positions)
            CHECK(memcmp(cb, tb.cos + p * 3, sizeof cb) == 0 && memcmp(sb, tb.sin + p * 3, sizeof sb) == 0);
    }
    const int64_t far[] = { INT32_MAX, INT32_MAX - 1, INT32_MAX - 12345, (int64_t)1 << 30, 1000000007 };
    for (size_t i = 0; i < sizeof far / sizeof far[0]; i++) {
        check_row_exact(&ts, far[i]);
        check_row_exact(&tw, far[i]);
    }
    /* rope_apply at INT32_MAX uses that same row. */
    float x[8] = { 1, 2, 3, 4, 5, 6, 7, 8 }, c[3], s[3];
    int32_t p = INT32_MAX;
    rope_view v = rope_view_packed(x, 1, 1, 8);
    CHECK_EQ_INT(rope_apply(&ts, ROPE_FORWARD, &v, &v, &p, 1), ROPE_OK);
    CHECK_EQ_INT(rope_table_row(&ts, p, c, s), ROPE_OK);
    for (int i = 0; i < 3; i++) {
        float a = (float)(2 * i + 1), b = (float)(2 * i + 2);
        float ac = a * c[i], bs = b * s[i];
        /* both sides within 2u(|a|+|b|) <= 2^-23 * 15 of exact: 2^-18 covers */
        CHECK_NEAR(x[2 * i], ac - bs, 0x1.0p-18);
    }
    rope_table_free(&tb);
    rope_table_free(&ts);
    rope_table_free(&tw);
}

TEST(rope_table_init_fields) {
    /* The table records its config, pair count, seq_len, the scaling's
     * attention factor, the best kernel, and the factor arrays are not kept. */
    double sf[16];
    for (int i = 0; i < 16; i++) sf[i] = 1.0 + i / 16.0;
    rope_config cfg = config(96, 32, ROPE_LAYOUT_HALF, 100);
    cfg.scaling.type = ROPE_SCALING_FREQ_FACTORS;
    cfg.scaling.short_factor = sf;
    cfg.scaling.n_factors = 16;
    rope_table t;
    CHECK_EQ_INT(rope_table_init(&t, &cfg, 77), ROPE_OK);
    CHECK_EQ_INT(t.n_pairs, 16);
    CHECK_EQ_INT(t.seq_len, 77);
    CHECK_EQ_INT(t.cfg.head_dim, 96);
    CHECK(t.cfg.scaling.short_factor == NULL);
    CHECK_EQ_INT(t.kernel, rope_kernel_best());
    double inv[16];
    CHECK_EQ_INT(rope_freqs(&cfg, 77, inv, NULL), ROPE_OK);
    CHECK(memcmp(inv, t.inv_freq, sizeof inv) == 0);
    for (int i = 0; i < 16; i++)   /* one float rounding: <= 2^-25; 2^-24 with slack */
        CHECK_NEAR(t.cos[99 * 16 + i], cos(99.0 * inv[i]), 0x1.0p-24);
    rope_table_free(&t);
    CHECK(t.cos == NULL && t.inv_freq == NULL && t.n_pairs == 0);
    rope_table_free(&t);     /* twice is fine */
    rope_table_free(NULL);
}
