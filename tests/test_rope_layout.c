/*
 * test_rope_layout.c — the two pair layouts are one rotation up to a fixed
 * permutation: HALF on x equals INTERLEAVED on permuted x, permuted back; and
 * rope_permute_rows converts a q/k projection so that attention scores are
 * unchanged, for full and partial rotary and grouped-query key heads.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rope.h"
#include "rope_fixtures.h"
#include "test.h"

static const int shapes[][2] = {
    { 64, 64 }, { 80, 80 }, { 96, 96 }, { 128, 128 },
    { 64, 32 }, { 80, 20 }, { 96, 6 }, { 128, 10 }, { 64, 22 }, { 8, 6 },
};
#define N_SHAPES ((int)(sizeof shapes / sizeof shapes[0]))

TEST(rope_permute_rows_explicit) {
    /* D = 8, d = 4: interleaved rows (0 1)(2 3) are pairs 0 and 1; in half
     * layout pair i is rows (i, i + 2). Interleaved -> half takes rows
     * [0 2 1 3 4 5 6 7] (Hugging Face permute(): view(dim/2, 2).transpose). */
    float src[16], dst[16], back[16];
    for (int i = 0; i < 16; i++) src[i] = (float)i;   /* 2 heads, one column */
    const float want[16] = { 0, 2, 1, 3, 4, 5, 6, 7, 8, 10, 9, 11, 12, 13, 14, 15 };
    CHECK_EQ_INT(rope_permute_rows(dst, src, 2, 8, 4, 1, ROPE_LAYOUT_INTERLEAVED, ROPE_LAYOUT_HALF), ROPE_OK);
    CHECK(memcmp(dst, want, sizeof want) == 0);
    /* d = 6: interleaved (0 1)(2 3)(4 5) -> half rows 0 1 2 | 3 4 5 = 0 2 4 1 3 5 */
    const float want6[8] = { 0, 2, 4, 1, 3, 5, 6, 7 };
    CHECK_EQ_INT(rope_permute_rows(dst, src, 1, 8, 6, 1, ROPE_LAYOUT_INTERLEAVED, ROPE_LAYOUT_HALF), ROPE_OK);
    CHECK(memcmp(dst, want6, sizeof want6) == 0);
    CHECK_EQ_INT(rope_permute_rows(back, dst, 1, 8, 6, 1, ROPE_LAYOUT_HALF, ROPE_LAYOUT_INTERLEAVED), ROPE_OK);
    CHECK(memcmp(back, src, 8 * sizeof(float)) == 0);
    CHECK_EQ_INT(rope_permute_rows(dst, src, 2, 8, 4, 1, ROPE_LAYOUT_HALF, ROPE_LAYOUT_HALF), ROPE_OK);
    CHECK(memcmp(dst, src, sizeof src) == 0);
}

TEST(rope_permute_rows_round_trip) {
    /* to and back is the identity, both ways, several columns. */
    uint64_t rs = 21;
    for (int sh = 0; sh < N_SHAPES; sh++) {
        int D = shapes[sh][0], d = shapes[sh][1];
        const int H = 3;
        const int64_t cols = 5;
        size_t n = (size_t)H * (size_t)D * (size_t)cols;
        float *w = falloc(n), *p = falloc(n), *b = falloc(n);
        fill(w, n, &rs);
        for (int from = 0; from < 2; from++) {
            rope_layout f = (rope_layout)from, to = (rope_layout)(1 - from);
            CHECK_EQ_INT(rope_permute_rows(p, w, H, D, d, cols, f, to), ROPE_OK);
            CHECK(d == 2 || memcmp(p, w, n * sizeof(float)) != 0);   /* it moved something */
            CHECK_EQ_INT(rope_permute_rows(b, p, H, D, d, cols, to, f), ROPE_OK);
            CHECK(memcmp(b, w, n * sizeof(float)) == 0);
            for (int h = 0; h < H; h++)   /* pass-through rows stay */
                CHECK(memcmp(p + ((size_t)h * D + d) * cols, w + ((size_t)h * D + d) * cols,
                             (size_t)(D - d) * (size_t)cols * sizeof(float)) == 0);
        }
        free(w); free(p); free(b);
    }
}

TEST(rope_layout_half_equals_permuted_interleaved) {
    /* HALF(x) = P^-1 INTERLEAVED(P x): the same pairs meet the same c, s, so
     * with the scalar kernel the results are bit-identical. Forward and
     * backward, in and past the table. */
    uint64_t rs = 22;
    const int64_t T = 7, H = 3;
    const int32_t pos[7] = { 0, 1, 2, 63, 64, 1000, 123456 };
    for (int sh = 0; sh < N_SHAPES; sh++)
    for (int dir = 0; dir < 2; dir++) {
        int D = shapes[sh][0], d = shapes[sh][1];
        rope_config ch = config(D, d, ROPE_LAYOUT_HALF, 64), ci = config(D, d, ROPE_LAYOUT_INTERLEAVED, 64);
        rope_table th, ti;
        CHECK_EQ_INT(rope_table_init(&th, &ch, 64), ROPE_OK);
        CHECK_EQ_INT(rope_table_init(&ti, &ci, 64), ROPE_OK);
        CHECK_EQ_INT(rope_table_set_kernel(&th, ROPE_KERNEL_SCALAR), ROPE_OK);
        CHECK_EQ_INT(rope_table_set_kernel(&ti, ROPE_KERNEL_SCALAR), ROPE_OK);
        size_t n = (size_t)(T * H * D);
        float *x = falloc(n), *yh = falloc(n), *xp = falloc(n), *yp = falloc(n), *yb = falloc(n);
        fill(x, n, &rs);
        rope_view vx = rope_view_packed(x, T, H, D), vyh = rope_view_packed(yh, T, H, D);
        CHECK_EQ_INT(rope_apply(&th, (rope_direction)dir, &vyh, &vx, pos, 1), ROPE_OK);
        /* a (T*H) x D activation is a "projection" with one column per row */
        CHECK_EQ_INT(rope_permute_rows(xp, x, (int)(T * H), D, d, 1, ROPE_LAYOUT_HALF, ROPE_LAYOUT_INTERLEAVED), ROPE_OK);
        rope_view vxp = rope_view_packed(xp, T, H, D), vyp = rope_view_packed(yp, T, H, D);
        CHECK_EQ_INT(rope_apply(&ti, (rope_direction)dir, &vyp, &vxp, pos, 1), ROPE_OK);
        CHECK_EQ_INT(rope_permute_rows(yb, yp, (int)(T * H), D, d, 1, ROPE_LAYOUT_INTERLEAVED, ROPE_LAYOUT_HALF), ROPE_OK);
        CHECK(memcmp(yb, yh, n * sizeof(float)) == 0);
        free(x); free(yh); free(xp); free(yp); free(yb);
        rope_table_free(&th);
        rope_table_free(&ti);
    }
}

/* out (T, R) = x (T, C) W^T, W (R, C); float products summed in double. */
static void project(float *out, const float *x, const float *w, int64_t T, int64_t R, int64_t C) {
    for (int64_t t = 0; t < T; t++)
        for (int64_t r = 0; r < R; r++) {
            double s = 0;
            for (int64_t c = 0; c < C; c++) s += (double)x[t * C + c] * w[r * C + c];
            out[t * R + r] = (float)s;
        }
}

/* Scores (HQ, T, T) of q (T, HQ, D) against k (T, HK, D), query head h using
 * key head h / (HQ/HK); *mag gets sum |q_j k_j| per score for the tolerance. */
static void scores(double *s, double *mag, const float *q, const float *k, int64_t T, int64_t HQ,
                   int64_t HK, int D) {
    for (int64_t h = 0; h < HQ; h++)
        for (int64_t a = 0; a < T; a++)
            for (int64_t b = 0; b < T; b++) {
                const float *qa = q + (a * HQ + h) * D, *kb = k + (b * HK + h / (HQ / HK)) * D;
                double acc = 0, m = 0;
                for (int j = 0; j < D; j++) { acc += (double)qa[j] * kb[j]; m += fabs((double)qa[j] * kb[j]); }
                s[(h * T + a) * T + b] = acc;
                mag[(h * T + a) * T + b] = m;
            }
}

TEST(rope_permute_rows_keeps_scores) {
    /* A model with Wq, Wk (and biases) used with INTERLEAVED gives the same
     * scores as the permuted weights used with HALF, GQA key heads permuted
     * with their own head count. Each permuted q is the same float as before
     * (same dot product, same order), rotated with the same c, s, so only the
     * order of the double score sum changes: error <= D 2^-53 sum|q_j k_j|;
     * 2^-40 * sum|q_j k_j| is loose yet far below any real mismatch. */
    uint64_t rs = 23;
    const int64_t T = 6, HQ = 4, HK = 2, C = 24;
    const int32_t pos[6] = { 0, 3, 9, 200, 5000, 70000 };
    for (int sh = 0; sh < N_SHAPES; sh++) {
        int D = shapes[sh][0], d = shapes[sh][1];
        int64_t RQ = HQ * D, RK = HK * D;
        float *wq = falloc((size_t)(RQ * C)), *wk = falloc((size_t)(RK * C));
        float *wq2 = falloc((size_t)(RQ * C)), *wk2 = falloc((size_t)(RK * C));
        float *bq = falloc((size_t)RQ), *bq2 = falloc((size_t)RQ);
        float *x = falloc((size_t)(T * C));
        float *q = falloc((size_t)(T * RQ)), *k = falloc((size_t)(T * RK));
        float *q2 = falloc((size_t)(T * RQ)), *k2 = falloc((size_t)(T * RK));
        size_t ns = (size_t)(HQ * T * T);
        double *s1 = malloc(ns * sizeof *s1), *s2 = malloc(ns * sizeof *s2);
        double *m1 = malloc(ns * sizeof *m1), *m2 = malloc(ns * sizeof *m2);
        if (!s1 || !s2 || !m1 || !m2) abort();
        fill(wq, (size_t)(RQ * C), &rs);
        fill(wk, (size_t)(RK * C), &rs);
        fill(bq, (size_t)RQ, &rs);
        fill(x, (size_t)(T * C), &rs);
        CHECK_EQ_INT(rope_permute_rows(wq2, wq, (int)HQ, D, d, C, ROPE_LAYOUT_INTERLEAVED, ROPE_LAYOUT_HALF), ROPE_OK);
        CHECK_EQ_INT(rope_permute_rows(wk2, wk, (int)HK, D, d, C, ROPE_LAYOUT_INTERLEAVED, ROPE_LAYOUT_HALF), ROPE_OK);
        CHECK_EQ_INT(rope_permute_rows(bq2, bq, (int)HQ, D, d, 1, ROPE_LAYOUT_INTERLEAVED, ROPE_LAYOUT_HALF), ROPE_OK);
        project(q, x, wq, T, RQ, C);
        project(k, x, wk, T, RK, C);
        project(q2, x, wq2, T, RQ, C);
        project(k2, x, wk2, T, RK, C);
        for (int64_t t = 0; t < T; t++)
            for (int64_t r = 0; r < RQ; r++) { q[t * RQ + r] += bq[r]; q2[t * RQ + r] += bq2[r]; }

        rope_config ci = config(D, d, ROPE_LAYOUT_INTERLEAVED, 64), ch = config(D, d, ROPE_LAYOUT_HALF, 64);
        rope_table ti, th;
        CHECK_EQ_INT(rope_table_init(&ti, &ci, 64), ROPE_OK);
        CHECK_EQ_INT(rope_table_init(&th, &ch, 64), ROPE_OK);
        /* scalar on both sides: the bit-for-bit argument above needs one
         * rounding recipe (a SIMD kernel may fuse differently per layout) */
        CHECK_EQ_INT(rope_table_set_kernel(&ti, ROPE_KERNEL_SCALAR), ROPE_OK);
        CHECK_EQ_INT(rope_table_set_kernel(&th, ROPE_KERNEL_SCALAR), ROPE_OK);
        rope_view vq = rope_view_packed(q, T, HQ, D), vk = rope_view_packed(k, T, HK, D);
        rope_view vq2 = rope_view_packed(q2, T, HQ, D), vk2 = rope_view_packed(k2, T, HK, D);
        CHECK_EQ_INT(rope_apply_qk(&ti, ROPE_FORWARD, &vq, &vk, pos, 1), ROPE_OK);
        CHECK_EQ_INT(rope_apply_qk(&th, ROPE_FORWARD, &vq2, &vk2, pos, 1), ROPE_OK);
        scores(s1, m1, q, k, T, HQ, HK, D);
        scores(s2, m2, q2, k2, T, HQ, HK, D);
        for (size_t i = 0; i < ns; i++) CHECK_NEAR(s2[i], s1[i], 0x1.0p-40 * m1[i]);

        /* Control: unpermuted weights with HALF change the scores (the bug of
         * TinyLlama #24): at least one differs by more than 1e-3. */
        if (d > 2) {
            project(q2, x, wq, T, RQ, C);
            project(k2, x, wk, T, RK, C);
            CHECK_EQ_INT(rope_apply_qk(&th, ROPE_FORWARD, &vq2, &vk2, pos, 1), ROPE_OK);
            scores(s2, m2, q2, k2, T, HQ, HK, D);
            double worst = 0;
            for (size_t i = 0; i < ns; i++) worst = fmax(worst, fabs(s2[i] - s1[i]));
            CHECK(worst > 1e-3);
        }
        rope_table_free(&ti);
        rope_table_free(&th);
        free(wq); free(wk); free(wq2); free(wk2); free(bq); free(bq2); free(x);
        free(q); free(k); free(q2); free(k2); free(s1); free(s2); free(m1); free(m2);
    }
}
