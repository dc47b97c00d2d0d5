/*
 * test_rope_apply.c — rope_apply and rope_apply_qk against an explicit
 * head_dim x head_dim rotation matrix, and on every memory layout they accept:
 * packed, heads inside a (T, 3C) qkv buffer, padded heads, head-major,
 * grouped-query q/k, packed sequences with restarting positions, a KV-cache
 * decode step, and thread counts. Runs every kernel this CPU supports.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rope.h"
#include "rope_fixtures.h"
#include "test.h"

/* The kernels this CPU runs; the scalar one first. */
static int kernels(rope_kernel *ks) {
    static const rope_kernel all[] = { ROPE_KERNEL_SCALAR, ROPE_KERNEL_AVX2, ROPE_KERNEL_AVX512 };
    int n = 0;
    for (int i = 0; i < 3; i++)
        if (rope_kernel_supported(all[i])) ks[n++] = all[i];
    return n;
}

/* Shapes swept by the tests: real head sizes, full and partial rotary, odd
 * pair counts (3, 5, 11) that leave SIMD tails. */
static const int shapes[][2] = {
    { 64, 64 }, { 80, 80 }, { 96, 96 }, { 128, 128 },
    { 64, 32 }, { 80, 20 }, { 96, 6 }, { 128, 10 }, { 64, 22 }, { 8, 6 },
};
#define N_SHAPES ((int)(sizeof shapes / sizeof shapes[0]))

/* Channel indices of pair i in a head. */
static void pair_index(rope_layout l, int rotary_dim, int i, int *j0, int *j1) {
    if (l == ROPE_LAYOUT_INTERLEAVED) { *j0 = 2 * i; *j1 = 2 * i + 1; }
    else { *j0 = i; *j1 = i + rotary_dim / 2; }
}

TEST(rope_apply_matches_rotation_matrix) {
    /* y = M x with M built in double from cos/sin of p*inv_freq (computed here
     * independently: inv_freq = base^(-2i/d), attention factor 1) for both
     * layouts, partial rotary, forward (M) and backward (M^T). */
    uint64_t rs = 1;
    rope_kernel ks[3];
    int nk = kernels(ks);
    const int32_t pos[] = { 0, 1, 7, 100, 2047, 2048, 5000, 65535 };   /* last three past the table */
    const int64_t T = (int64_t)(sizeof pos / sizeof pos[0]), H = 3;
    for (int sh = 0; sh < N_SHAPES; sh++)
    for (int lay = 0; lay < 2; lay++) {
        int D = shapes[sh][0], d = shapes[sh][1];
        rope_config cfg = config(D, d, (rope_layout)lay, 2048);
        rope_table t;
        CHECK_EQ_INT(rope_table_init(&t, &cfg, cfg.max_positions), ROPE_OK);
        size_t n = (size_t)(T * H * D);
        float *x = falloc(n), *y = falloc(n);
        double *M = malloc((size_t)D * (size_t)D * sizeof *M);
        if (!M) abort();
        fill(x, n, &rs);
        for (int k = 0; k < nk; k++)
        for (int dir = 0; dir < 2; dir++) {
            CHECK_EQ_INT(rope_table_set_kernel(&t, ks[k]), ROPE_OK);
            rope_view vx = rope_view_packed(x, T, H, D), vy = rope_view_packed(y, T, H, D);
            CHECK_EQ_INT(rope_apply(&t, (rope_direction)dir, &vy, &vx, pos, 1), ROPE_OK);
            for (int64_t tk = 0; tk < T; tk++) {
                for (int a = 0; a < D * D; a++) M[a] = 0;
                for (int a = 0; a < D; a++) M[a * D + a] = 1;
                for (int i = 0; i < d / 2; i++) {
                    double ang = (double)pos[tk] * pow(cfg.base, -2.0 * i / d);
                    double c = cos(ang), s = dir == ROPE_BACKWARD ? -sin(ang) : sin(ang);
                    int j0, j1;
                    pair_index(cfg.layout, d, i, &j0, &j1);
                    M[j0 * D + j0] = c; M[j0 * D + j1] = -s;
                    M[j1 * D + j0] = s; M[j1 * D + j1] = c;
                }
                for (int64_t h = 0; h < H; h++) {
                    const float *xh = x + (tk * H + h) * D, *yh = y + (tk * H + h) * D;
                    for (int r = 0; r < D; r++) {
                        double ref = 0;
                        for (int col = 0; col < D; col++) ref += M[r * D + col] * xh[col];
                        if (r >= d) { CHECK(yh[r] == xh[r]); continue; }   /* pass-through: exact */
                        /* Tolerance: the kernel rounds a*c, b*s and their sum
                         * (<= 2^-23 (|a|+|b|) for |c|,|s| <= 1), the float
                         * table adds <= 2^-25 (|a|+|b|); 2^-22 covers both
                         * (~2.4e-7 relative). A wrong partner, sign or
                         * frequency is off by O(|a|). */
                        int i = cfg.layout == ROPE_LAYOUT_INTERLEAVED ? r / 2 : r % (d / 2);
                        int j0, j1;
                        pair_index(cfg.layout, d, i, &j0, &j1);
                        double tol = 0x1.0p-22 * (fabs(xh[j0]) + fabs(xh[j1]));
                        CHECK_NEAR(yh[r], ref, tol);
                    }
                }
            }
        }
        free(M);
        free(x);
        free(y);
        rope_table_free(&t);
    }
}

TEST(rope_apply_matrix_every_scaling) {
    /* Every scaling type with non-default parameters (and an explicit
     * attention factor once): apply must rotate by the table's own inv_freq
     * and multiply by its attention factor, including past the table.
     * rope_freqs itself is tested in test_rope_freqs.c. YaRN s = 4 also pins
     * the factor to 0.1 ln 4 + 1. */
    uint64_t rs = 2;
    double sf[24], lf[24];
    for (int i = 0; i < 24; i++) { sf[i] = 1.0 + 0.05 * i; lf[i] = 2.0 + 0.5 * i; }
    for (int type = 0; type <= ROPE_SCALING_COUNT; type++)
    for (int lay = 0; lay < 2; lay++) {
        rope_config cfg = config(64, 48, (rope_layout)lay, 1024);
        rope_scaling *sc = &cfg.scaling;
        sc->type = (rope_scaling_type)(type % ROPE_SCALING_COUNT);
        sc->factor = 4;
        sc->original_max_positions = 256;
        sc->beta_fast = 16;
        sc->low_freq_factor = 2;
        sc->high_freq_factor = 8;
        sc->short_factor = sf;
        sc->long_factor = lf;
        sc->n_factors = 24;
        if (type == ROPE_SCALING_COUNT) { sc->type = ROPE_SCALING_LINEAR; sc->attention_factor = 0.75; }
        rope_table t;
        CHECK_EQ_INT(rope_table_init(&t, &cfg, 1024), ROPE_OK);
        if (sc->type == ROPE_SCALING_YARN)   /* exact formula; double rounding only */
            CHECK_NEAR(t.attention_factor, 0.1 * log(4.0) + 1.0, 1e-15);
        if (type == ROPE_SCALING_COUNT) CHECK(t.attention_factor == 0.75);
        const int32_t pos[] = { 3, 900, 4000 };
        float x[3 * 64], y[3 * 64];
        fill(x, 3 * 64, &rs);
        rope_view vx = rope_view_packed(x, 3, 1, 64), vy = rope_view_packed(y, 3, 1, 64);
        CHECK_EQ_INT(rope_apply(&t, ROPE_FORWARD, &vy, &vx, pos, 1), ROPE_OK);
        double m = t.attention_factor;
        for (int tk = 0; tk < 3; tk++)
            for (int i = 0; i < 24; i++) {
                int j0, j1;
                pair_index(cfg.layout, 48, i, &j0, &j1);
                double ang = pos[tk] * t.inv_freq[i], c = m * cos(ang), s = m * sin(ang);
                double a = x[tk * 64 + j0], b = x[tk * 64 + j1];
                double tol = m * 0x1.0p-22 * (fabs(a) + fabs(b));  /* as above, scaled by m */
                CHECK_NEAR(y[tk * 64 + j0], a * c - b * s, tol);
                CHECK_NEAR(y[tk * 64 + j1], a * s + b * c, tol);
            }
        rope_table_free(&t);
    }
}

/* Rotates a packed (T, H, D) copy of a strided view's contents and checks the
 * view now holds the same bits. */
static void check_view_equals_packed(const rope_view *v, const float *packed, int D) {
    for (int64_t tk = 0; tk < v->n_tokens; tk++)
        for (int64_t h = 0; h < v->n_heads; h++)
            CHECK(memcmp(v->data + tk * v->token_stride + h * v->head_stride,
                         packed + (tk * v->n_heads + h) * D, (size_t)D * sizeof(float)) == 0);
}

static void gather(float *packed, const rope_view *v, int D) {
    for (int64_t tk = 0; tk < v->n_tokens; tk++)
        for (int64_t h = 0; h < v->n_heads; h++)
            memcpy(packed + (tk * v->n_heads + h) * D, v->data + tk * v->token_stride + h * v->head_stride,
                   (size_t)D * sizeof(float));
}

TEST(rope_apply_qkv_buffer_strides) {
    /* q and k as views into a (T, 3C) qkv buffer (token_stride 3C, head_stride
     * HS): the result must be bit-identical to rotating packed copies (a
     * kernel's result may depend on the channel but not on the address), and
     * v must not be touched. */
    uint64_t rs = 3;
    rope_kernel ks[3];
    int nk = kernels(ks);
    for (int sh = 0; sh < N_SHAPES; sh++)
    for (int lay = 0; lay < 2; lay++)
    for (int k = 0; k < nk; k++) {
        int HS = shapes[sh][0], d = shapes[sh][1];
        const int64_t T = 13, NH = 4, C = NH * HS;
        rope_config cfg = config(HS, d, (rope_layout)lay, 64);
        rope_table t;
        CHECK_EQ_INT(rope_table_init(&t, &cfg, 64), ROPE_OK);
        CHECK_EQ_INT(rope_table_set_kernel(&t, ks[k]), ROPE_OK);
        int32_t pos[13];
        for (int i = 0; i < T; i++) pos[i] = (int32_t)(rng_next(&rs) % 100);  /* some past the table */
        size_t n = (size_t)(T * 3 * C);
        float *qkv = falloc(n), *orig = falloc(n), *q = falloc((size_t)(T * C)), *kk = falloc((size_t)(T * C));
        fill(qkv, n, &rs);
        memcpy(orig, qkv, n * sizeof(float));
        rope_view vq = { qkv, T, NH, 3 * C, HS }, vk = { qkv + C, T, NH, 3 * C, HS };
        gather(q, &vq, HS);
        gather(kk, &vk, HS);
        rope_view pq = rope_view_packed(q, T, NH, HS), pk = rope_view_packed(kk, T, NH, HS);
        CHECK_EQ_INT(rope_apply(&t, ROPE_FORWARD, &pq, &pq, pos, 1), ROPE_OK);
        CHECK_EQ_INT(rope_apply(&t, ROPE_FORWARD, &pk, &pk, pos, 1), ROPE_OK);
        CHECK_EQ_INT(rope_apply_qk(&t, ROPE_FORWARD, &vq, &vk, pos, 1), ROPE_OK);
        check_view_equals_packed(&vq, q, HS);
        check_view_equals_packed(&vk, kk, HS);
        for (int64_t tk = 0; tk < T; tk++)
            CHECK(memcmp(qkv + tk * 3 * C + 2 * C, orig + tk * 3 * C + 2 * C, (size_t)C * sizeof(float)) == 0);
        free(qkv); free(orig); free(q); free(kk);
        rope_table_free(&t);
    }
}

TEST(rope_apply_padded_and_head_major) {
    /* Out of place from a packed input into heads padded to HS + 16 (the
     * padding must keep its sentinel), in place on the padded buffer, and on
     * a head-major (NH, T, HS) buffer: all equal the packed result bit for bit. */
    uint64_t rs = 4;
    const int64_t T = 9, NH = 3, PAD = 16;
    for (int sh = 0; sh < N_SHAPES; sh++)
    for (int lay = 0; lay < 2; lay++) {
        int HS = shapes[sh][0], d = shapes[sh][1];
        rope_config cfg = config(HS, d, (rope_layout)lay, 32);
        rope_table t;
        CHECK_EQ_INT(rope_table_init(&t, &cfg, 32), ROPE_OK);
        int32_t pos[9] = { 0, 5, 31, 32, 2, 77, 8, 1, 30 };
        size_t n = (size_t)(T * NH * HS), np = (size_t)(T * NH * (HS + PAD));
        float *x = falloc(n), *ref = falloc(n), *pad = falloc(np), *hm = falloc(n);
        fill(x, n, &rs);
        rope_view vx = rope_view_packed(x, T, NH, HS), vref = rope_view_packed(ref, T, NH, HS);
        CHECK_EQ_INT(rope_apply(&t, ROPE_FORWARD, &vref, &vx, pos, 1), ROPE_OK);

        for (size_t i = 0; i < np; i++) pad[i] = -7.0f;
        rope_view vp = { pad, T, NH, NH * (HS + PAD), HS + PAD };
        CHECK_EQ_INT(rope_apply(&t, ROPE_FORWARD, &vp, &vx, pos, 1), ROPE_OK);
        check_view_equals_packed(&vp, ref, HS);
        for (int64_t th = 0; th < T * NH; th++)
            for (int64_t j = HS; j < HS + PAD; j++) CHECK(pad[th * (HS + PAD) + j] == -7.0f);

        /* In place on the padded buffer: backward undoes forward within
         * rounding; here only check the padding stays and the view rule
         * accepts it (values are covered elsewhere). */
        CHECK_EQ_INT(rope_apply(&t, ROPE_BACKWARD, &vp, &vp, pos, 1), ROPE_OK);
        for (int64_t th = 0; th < T * NH; th++)
            for (int64_t j = HS; j < HS + PAD; j++) CHECK(pad[th * (HS + PAD) + j] == -7.0f);

        for (int64_t tk = 0; tk < T; tk++)
            for (int64_t h = 0; h < NH; h++)
                memcpy(hm + (h * T + tk) * HS, x + (tk * NH + h) * HS, (size_t)HS * sizeof(float));
        rope_view vh = { hm, T, NH, HS, T * HS };
        CHECK_EQ_INT(rope_apply(&t, ROPE_FORWARD, &vh, &vh, pos, 1), ROPE_OK);
        check_view_equals_packed(&vh, ref, HS);
        free(x); free(ref); free(pad); free(hm);
        rope_table_free(&t);
    }
}

TEST(rope_apply_qk_gqa) {
    /* 8 query heads, 2 key heads (grouped-query attention): rope_apply_qk
     * equals two separate rope_apply calls, both directions; k = NULL rotates
     * q only. */
    uint64_t rs = 5;
    for (int lay = 0; lay < 2; lay++)
    for (int dir = 0; dir < 2; dir++) {
        const int64_t T = 17, HQ = 8, HK = 2, D = 80;
        rope_config cfg = config(80, 40, (rope_layout)lay, 128);
        rope_table t;
        CHECK_EQ_INT(rope_table_init(&t, &cfg, 128), ROPE_OK);
        int32_t pos[17];
        for (int i = 0; i < T; i++) pos[i] = 50 + 7 * i;   /* runs past 128 */
        float *q = falloc((size_t)(T * HQ * D)), *k = falloc((size_t)(T * HK * D));
        float *q2 = falloc((size_t)(T * HQ * D)), *k2 = falloc((size_t)(T * HK * D));
        fill(q, (size_t)(T * HQ * D), &rs);
        fill(k, (size_t)(T * HK * D), &rs);
        memcpy(q2, q, (size_t)(T * HQ * D) * sizeof(float));
        memcpy(k2, k, (size_t)(T * HK * D) * sizeof(float));
        rope_view vq = rope_view_packed(q, T, HQ, D), vk = rope_view_packed(k, T, HK, D);
        rope_view vq2 = rope_view_packed(q2, T, HQ, D), vk2 = rope_view_packed(k2, T, HK, D);
        CHECK_EQ_INT(rope_apply_qk(&t, (rope_direction)dir, &vq, &vk, pos, 0), ROPE_OK);
        CHECK_EQ_INT(rope_apply(&t, (rope_direction)dir, &vq2, &vq2, pos, 1), ROPE_OK);
        CHECK_EQ_INT(rope_apply(&t, (rope_direction)dir, &vk2, &vk2, pos, 1), ROPE_OK);
        CHECK(memcmp(q, q2, (size_t)(T * HQ * D) * sizeof(float)) == 0);
        CHECK(memcmp(k, k2, (size_t)(T * HK * D) * sizeof(float)) == 0);
        CHECK_EQ_INT(rope_apply_qk(&t, (rope_direction)dir, &vq, NULL, pos, 1), ROPE_OK);
        CHECK_EQ_INT(rope_apply(&t, (rope_direction)dir, &vq2, &vq2, pos, 1), ROPE_OK);
        CHECK(memcmp(q, q2, (size_t)(T * HQ * D) * sizeof(float)) == 0);
        free(q); free(k); free(q2); free(k2);
        rope_table_free(&t);
    }
}

TEST(rope_apply_packed_sequences_and_decode) {
    /* Three sequences packed in one batch, positions restarting at 0: each
     * token must get its own position, not its index (NeMo-Automodel PR
     * #2377's bug). And a KV-cache decode step at position 1000 equals row
     * 1000 of a full apply over positions 0..1000. */
    uint64_t rs = 6;
    for (int lay = 0; lay < 2; lay++) {
        const int64_t H = 4, D = 64, lens[3] = { 5, 7, 3 }, T = 15;
        rope_config cfg = config(64, 64, (rope_layout)lay, 1024);
        rope_table t;
        CHECK_EQ_INT(rope_table_init(&t, &cfg, 1024), ROPE_OK);
        int32_t pos[15];
        for (int s = 0, i = 0; s < 3; s++)
            for (int p = 0; p < lens[s]; p++) pos[i++] = p;
        float *x = falloc((size_t)(T * H * D)), *y = falloc((size_t)(T * H * D)), *z = falloc((size_t)(T * H * D));
        fill(x, (size_t)(T * H * D), &rs);
        rope_view vx = rope_view_packed(x, T, H, D), vy = rope_view_packed(y, T, H, D);
        CHECK_EQ_INT(rope_apply(&t, ROPE_FORWARD, &vy, &vx, pos, 1), ROPE_OK);
        int32_t seq[15];
        for (int i = 0; i < T; i++) seq[i] = i;
        int64_t off = 0;
        for (int s = 0; s < 3; s++) {
            rope_view sx = rope_view_packed(x + off * H * D, lens[s], H, D);
            rope_view sz = rope_view_packed(z + off * H * D, lens[s], H, D);
            CHECK_EQ_INT(rope_apply(&t, ROPE_FORWARD, &sz, &sx, seq, 1), ROPE_OK);  /* 0..len-1 */
            off += lens[s];
        }
        CHECK(memcmp(y, z, (size_t)(T * H * D) * sizeof(float)) == 0);
        /* and differs from treating the batch as one sequence 0..14 */
        CHECK_EQ_INT(rope_apply(&t, ROPE_FORWARD, &vy, &vx, seq, 1), ROPE_OK);
        CHECK(memcmp(y, z, (size_t)(T * H * D) * sizeof(float)) != 0);

        const int64_t TF = 1001;
        float *full = falloc((size_t)(TF * H * D)), *one = falloc((size_t)(H * D));
        int32_t *pf = malloc((size_t)TF * sizeof *pf);
        if (!pf) abort();
        fill(full, (size_t)(TF * H * D), &rs);
        memcpy(one, full + 1000 * H * D, (size_t)(H * D) * sizeof(float));
        for (int i = 0; i < TF; i++) pf[i] = i;
        rope_view vf = rope_view_packed(full, TF, H, D), vo = rope_view_packed(one, 1, H, D);
        CHECK_EQ_INT(rope_apply(&t, ROPE_FORWARD, &vf, &vf, pf, 0), ROPE_OK);
        const int32_t p1000 = 1000;
        CHECK_EQ_INT(rope_apply(&t, ROPE_FORWARD, &vo, &vo, &p1000, 1), ROPE_OK);
        CHECK(memcmp(one, full + 1000 * H * D, (size_t)(H * D) * sizeof(float)) == 0);
        free(full); free(one); free(pf);
        free(x); free(y); free(z);
        rope_table_free(&t);
    }
}

TEST(rope_apply_threads_bit_identical) {
    /* 600 tokens x 8 heads x 64 = 307k floats, above the serial threshold:
     * 1, 2 and the default thread count give the same bits, in place and out
     * of place, with positions past the table (per-thread scratch rows).
     * (Without OpenMP every count runs serially and this holds trivially.) */
    uint64_t rs = 7;
    const int64_t T = 600, H = 8, D = 64;
    for (int lay = 0; lay < 2; lay++) {
        rope_config cfg = config(64, 48, (rope_layout)lay, 512);
        rope_table t;
        CHECK_EQ_INT(rope_table_init(&t, &cfg, 512), ROPE_OK);
        int32_t *pos = malloc((size_t)T * sizeof *pos);
        if (!pos) abort();
        for (int i = 0; i < T; i++) pos[i] = (int32_t)(rng_next(&rs) % 1000);
        size_t n = (size_t)(T * H * D);
        float *x = falloc(n), *y1 = falloc(n), *y2 = falloc(n), *y0 = falloc(n), *ip = falloc(n);
        fill(x, n, &rs);
        memcpy(ip, x, n * sizeof(float));
        rope_view vx = rope_view_packed(x, T, H, D);
        rope_view v1 = rope_view_packed(y1, T, H, D), v2 = rope_view_packed(y2, T, H, D);
        rope_view v0 = rope_view_packed(y0, T, H, D), vi = rope_view_packed(ip, T, H, D);
        CHECK_EQ_INT(rope_apply(&t, ROPE_FORWARD, &v1, &vx, pos, 1), ROPE_OK);
        CHECK_EQ_INT(rope_apply(&t, ROPE_FORWARD, &v2, &vx, pos, 2), ROPE_OK);
        CHECK_EQ_INT(rope_apply(&t, ROPE_FORWARD, &v0, &vx, pos, 0), ROPE_OK);
        CHECK_EQ_INT(rope_apply(&t, ROPE_FORWARD, &vi, &vi, pos, 2), ROPE_OK);
        CHECK(memcmp(y1, y2, n * sizeof(float)) == 0);
        CHECK(memcmp(y1, y0, n * sizeof(float)) == 0);
        CHECK(memcmp(y1, ip, n * sizeof(float)) == 0);
        CHECK_EQ_INT(rope_shift(&t, &v1, -333, 1), ROPE_OK);
        CHECK_EQ_INT(rope_shift(&t, &v2, -333, 2), ROPE_OK);
        CHECK(memcmp(y1, y2, n * sizeof(float)) == 0);
        free(x); free(y1); free(y2); free(y0); free(ip); free(pos);
        rope_table_free(&t);
    }
}

TEST(rope_apply_passthrough_and_input_untouched) {
    /* Partial rotary: channels [d, D) are bit-identical to the input in place
     * and out of place; out of place never writes the input. */
    uint64_t rs = 8;
    rope_kernel ks[3];
    int nk = kernels(ks);
    for (int sh = 0; sh < N_SHAPES; sh++)
    for (int lay = 0; lay < 2; lay++)
    for (int k = 0; k < nk; k++) {
        int D = shapes[sh][0], d = shapes[sh][1];
        const int64_t T = 6, H = 5;
        rope_config cfg = config(D, d, (rope_layout)lay, 16);
        rope_table t;
        CHECK_EQ_INT(rope_table_init(&t, &cfg, 16), ROPE_OK);
        CHECK_EQ_INT(rope_table_set_kernel(&t, ks[k]), ROPE_OK);
        const int32_t pos[6] = { 1, 2, 3, 15, 16, 400 };
        size_t n = (size_t)(T * H * D);
        float *x = falloc(n), *x0 = falloc(n), *y = falloc(n);
        fill(x, n, &rs);
        memcpy(x0, x, n * sizeof(float));
        rope_view vx = rope_view_packed(x, T, H, D), vy = rope_view_packed(y, T, H, D);
        for (int dir = 0; dir < 2; dir++) {
            CHECK_EQ_INT(rope_apply(&t, (rope_direction)dir, &vy, &vx, pos, 1), ROPE_OK);
            CHECK(memcmp(x, x0, n * sizeof(float)) == 0);
            int rotated_changed = 0;
            for (int64_t th = 0; th < T * H; th++) {
                CHECK(memcmp(y + th * D + d, x + th * D + d, (size_t)(D - d) * sizeof(float)) == 0);
                rotated_changed |= memcmp(y + th * D, x + th * D, (size_t)d * sizeof(float)) != 0;
            }
            CHECK(rotated_changed);
        }
        CHECK_EQ_INT(rope_apply(&t, ROPE_FORWARD, &vx, &vx, pos, 1), ROPE_OK);
        for (int64_t th = 0; th < T * H; th++)
            CHECK(memcmp(x + th * D + d, x0 + th * D + d, (size_t)(D - d) * sizeof(float)) == 0);
        free(x); free(x0); free(y);
        rope_table_free(&t);
    }
}

TEST(rope_apply_wide_head_on_the_fly) {
    /* rotary_dim 1100 (550 pairs) rows do not fit apply's stack scratch, so
     * positions past the table take the heap path; 64 tokens x 1100 floats is
     * above the serial threshold, so each thread gets its own heap row. The
     * result equals a table that holds those rows (same row function), and
     * rope_shift on the same keys matches rope_apply at the shifted position. */
    uint64_t rs = 9;
    const int64_t T = 64, D = 1100;
    rope_config small = config(1100, 1100, ROPE_LAYOUT_HALF, 8), big = config(1100, 1100, ROPE_LAYOUT_HALF, 256);
    rope_table ts, tb;
    CHECK_EQ_INT(rope_table_init(&ts, &small, 8), ROPE_OK);
    CHECK_EQ_INT(rope_table_init(&tb, &big, 256), ROPE_OK);
    CHECK_EQ_INT(rope_table_set_kernel(&ts, ROPE_KERNEL_SCALAR), ROPE_OK);
    CHECK_EQ_INT(rope_table_set_kernel(&tb, ROPE_KERNEL_SCALAR), ROPE_OK);
    int32_t pos[64];
    for (int i = 0; i < T; i++) pos[i] = 100 + i;
    size_t n = (size_t)(T * D);
    float *x = falloc(n), *ys = falloc(n), *yb = falloc(n);
    fill(x, n, &rs);
    rope_view vx = rope_view_packed(x, T, 1, D), vs = rope_view_packed(ys, T, 1, D), vb = rope_view_packed(yb, T, 1, D);
    CHECK_EQ_INT(rope_apply(&ts, ROPE_FORWARD, &vs, &vx, pos, 0), ROPE_OK);
    CHECK_EQ_INT(rope_apply(&tb, ROPE_FORWARD, &vb, &vx, pos, 1), ROPE_OK);
    CHECK(memcmp(ys, yb, n * sizeof(float)) == 0);
    /* shift by +50: rotate(rotate(x, p), 50) within 2^-20 (|a|+|b|) of
     * rotate(x, p + 50) (two roundings of <= 2^-22 (|a|+|b|) each, slack) */
    for (int i = 0; i < T; i++) pos[i] += 50;
    CHECK_EQ_INT(rope_shift(&ts, &vs, 50, 0), ROPE_OK);
    CHECK_EQ_INT(rope_apply(&tb, ROPE_FORWARD, &vb, &vx, pos, 1), ROPE_OK);
    for (int64_t tk = 0; tk < T; tk++)
        for (int j = 0; j < 550; j++) {
            const float *xt = x + tk * D;
            double tol = 0x1.0p-20 * (fabs(xt[j]) + fabs(xt[j + 550]));
            CHECK_NEAR(ys[tk * D + j], yb[tk * D + j], tol);
            CHECK_NEAR(ys[tk * D + j + 550], yb[tk * D + j + 550], tol);
        }
    free(x); free(ys); free(yb);
    rope_table_free(&ts);
    rope_table_free(&tb);
}
