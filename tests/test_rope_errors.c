/*
 * test_rope_errors.c — every invalid argument of the table, apply, shift and
 * permute functions returns its status and writes nothing: outputs are filled
 * with a sentinel first and compared bit for bit afterwards.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rope.h"
#include "test.h"

enum { T = 4, H = 2, D = 8, N = T * H * D };

static rope_config config(int64_t max_pos, int strict) {
    rope_config c = rope_config_default();
    c.head_dim = D;
    c.rotary_dim = 6;
    c.max_positions = max_pos;
    c.strict_range = strict;
    return c;
}

/* Buffers: in (x) and out (y) with sentinels, and snapshots to compare. */
typedef struct { float x[2 * N], y[2 * N], x0[2 * N], y0[2 * N]; } bufs;

static void reset(bufs *b) {
    for (int i = 0; i < 2 * N; i++) { b->x[i] = (float)i * 0.25f + 1.0f; b->y[i] = -3.0f; }
    memcpy(b->x0, b->x, sizeof b->x);
    memcpy(b->y0, b->y, sizeof b->y);
}
static int untouched(const bufs *b) {
    return memcmp(b->x, b->x0, sizeof b->x) == 0 && memcmp(b->y, b->y0, sizeof b->y) == 0;
}

/* rope_apply(out, in) must return want and leave both buffers alone. */
static void expect_apply(const rope_table *t, const rope_view *out, const rope_view *in,
                         const int32_t *pos, rope_status want, bufs *b, int line) {
    rope_status got = rope_apply(t, ROPE_FORWARD, out, in, pos, 1);
    if (got != want) test_fail(__FILE__, line, "rope_apply: got %d (%s), want %d (%s)",
                               (int)got, rope_status_str(got), (int)want, rope_status_str(want));
    if (!untouched(b)) test_fail(__FILE__, line, "rope_apply wrote on error %d", (int)want);
    reset(b);
}
#define EXPECT_APPLY(out, in, pos, want) expect_apply(&t, out, in, pos, want, &b, __LINE__)

TEST(rope_errors_table) {
    rope_config cfg = config(16, 0);
    rope_table t;
    CHECK_EQ_INT(rope_table_init(NULL, &cfg, 16), ROPE_ENULL);
    memset(&t, 0x5a, sizeof t);
    CHECK_EQ_INT(rope_table_init(&t, NULL, 16), ROPE_ENULL);
    CHECK(t.cos == NULL && t.inv_freq == NULL && t.n_pairs == 0);   /* left zeroed */
    cfg.rotary_dim = 7;
    memset(&t, 0x5a, sizeof t);
    CHECK_EQ_INT(rope_table_init(&t, &cfg, 16), ROPE_EDIM);
    CHECK(t.cos == NULL && t.inv_freq == NULL && t.n_pairs == 0);
    rope_table_free(&t);
    cfg = config(16, 0);
    CHECK_EQ_INT(rope_table_init(&t, &cfg, -1), ROPE_EPARAM);      /* seq_len < 0 (rope_freqs) */
    CHECK(t.cos == NULL);

    /* an empty table is allowed: every row on the fly */
    cfg = config(0, 0);
    CHECK_EQ_INT(rope_table_init(&t, &cfg, 0), ROPE_OK);
    float c[3], s[3];
    CHECK_EQ_INT(rope_table_row(&t, 5, c, s), ROPE_OK);
    CHECK_NEAR(c[0], cos(5.0), 0x1.0p-24);   /* one float rounding (<= 2^-25) with slack */
    rope_table_free(&t);

    cfg = config(16, 1);
    CHECK_EQ_INT(rope_table_init(&t, &cfg, 16), ROPE_OK);
    CHECK_EQ_INT(rope_table_set_kernel(NULL, ROPE_KERNEL_SCALAR), ROPE_ENULL);
    const rope_kernel ks[] = { ROPE_KERNEL_SCALAR, ROPE_KERNEL_AVX2, ROPE_KERNEL_AVX512 };
    for (int i = 0; i < 3; i++) {
        rope_status want = rope_kernel_supported(ks[i]) ? ROPE_OK : ROPE_EKERNEL;
        rope_kernel before = t.kernel;
        CHECK_EQ_INT(rope_table_set_kernel(&t, ks[i]), want);
        CHECK_EQ_INT(t.kernel, want == ROPE_OK ? ks[i] : before);
    }
    CHECK_EQ_INT(rope_table_set_kernel(&t, (rope_kernel)99), ROPE_EKERNEL);
    CHECK_EQ_INT(rope_table_set_kernel(&t, ROPE_KERNEL_AUTO), ROPE_OK);
    CHECK(t.kernel != ROPE_KERNEL_AUTO);                             /* resolved */

    for (int i = 0; i < 3; i++) c[i] = s[i] = 9.0f;
    CHECK_EQ_INT(rope_table_row(NULL, 1, c, s), ROPE_ENULL);
    CHECK_EQ_INT(rope_table_row(&t, 1, NULL, s), ROPE_ENULL);
    CHECK_EQ_INT(rope_table_row(&t, 1, c, NULL), ROPE_ENULL);
    CHECK_EQ_INT(rope_table_row(&t, -1, c, s), ROPE_EPOS);
    CHECK_EQ_INT(rope_table_row(&t, 16, c, s), ROPE_ERANGE);          /* strict, one past */
    CHECK_EQ_INT(rope_table_row(&t, INT64_MAX, c, s), ROPE_ERANGE);
    for (int i = 0; i < 3; i++) CHECK(c[i] == 9.0f && s[i] == 9.0f);
    CHECK_EQ_INT(rope_table_row(&t, 15, c, s), ROPE_OK);              /* last row fine */
    rope_table zero;
    memset(&zero, 0, sizeof zero);
    CHECK_EQ_INT(rope_table_row(&zero, 1, c, s), ROPE_ENULL);
    rope_table_free(&t);
}

TEST(rope_errors_apply) {
    static bufs b;
    reset(&b);
    rope_config cfg = config(16, 1);
    rope_table t, zero;
    memset(&zero, 0, sizeof zero);
    CHECK_EQ_INT(rope_table_init(&t, &cfg, 16), ROPE_OK);
    int32_t pos[T] = { 0, 1, 2, 15 };
    rope_view in = rope_view_packed(b.x, T, H, D), out = rope_view_packed(b.y, T, H, D);

    /* NULLs */
    CHECK_EQ_INT(rope_apply(NULL, ROPE_FORWARD, &out, &in, pos, 1), ROPE_ENULL);
    CHECK_EQ_INT(rope_apply(&zero, ROPE_FORWARD, &out, &in, pos, 1), ROPE_ENULL);
    EXPECT_APPLY(NULL, &in, pos, ROPE_ENULL);
    EXPECT_APPLY(&out, NULL, pos, ROPE_ENULL);
    EXPECT_APPLY(&out, &in, NULL, ROPE_ENULL);
    rope_view nul = in;
    nul.data = NULL;
    EXPECT_APPLY(&out, &nul, pos, ROPE_ENULL);
    EXPECT_APPLY(&nul, &in, pos, ROPE_ENULL);

    /* positions: checked for every token before the first write */
    int32_t bad[T] = { 0, 1, 2, -1 };
    EXPECT_APPLY(&out, &in, bad, ROPE_EPOS);
    EXPECT_APPLY(&in, &in, bad, ROPE_EPOS);
    bad[3] = 16;
    EXPECT_APPLY(&out, &in, bad, ROPE_ERANGE);
    EXPECT_APPLY(&in, &in, bad, ROPE_ERANGE);
    bad[3] = INT32_MAX;
    EXPECT_APPLY(&out, &in, bad, ROPE_ERANGE);

    /* shapes */
    rope_view v = in;
    v.n_tokens = -1;
    EXPECT_APPLY(&out, &v, pos, ROPE_ESHAPE);
    v = in; v.n_heads = 0;
    EXPECT_APPLY(&out, &v, pos, ROPE_ESHAPE);
    v = out; v.head_stride = D - 1;                 /* heads overlap */
    EXPECT_APPLY(&v, &in, pos, ROPE_ESHAPE);
    v = out; v.token_stride = H * D - 1;            /* tokens overlap */
    EXPECT_APPLY(&v, &in, pos, ROPE_ESHAPE);
    v = out; v.token_stride = D;                    /* token t+1 = head 1 of token t */
    EXPECT_APPLY(&v, &in, pos, ROPE_ESHAPE);
    v = out; v.token_stride = -H * D;
    EXPECT_APPLY(&v, &in, pos, ROPE_ESHAPE);
    v = out; v.head_stride = INT64_MAX / 2;         /* span overflows int64 */
    v.token_stride = INT64_MAX / 2 + 1;
    EXPECT_APPLY(&v, &in, pos, ROPE_ESHAPE);
    v = out; v.n_tokens = T - 1;                    /* out and in disagree */
    EXPECT_APPLY(&v, &in, pos, ROPE_ESHAPE);
    v = out; v.n_heads = 1;
    EXPECT_APPLY(&v, &in, pos, ROPE_ESHAPE);
    v = in; v.data = b.x + 1;                       /* overlaps in, not identical */
    EXPECT_APPLY(&v, &in, pos, ROPE_ESHAPE);
    v = in; v.head_stride = D + 1; v.token_stride = 2 * (D + 1);  /* same data, other strides */
    EXPECT_APPLY(&v, &in, pos, ROPE_ESHAPE);
    v = in; v.data = b.x + N - 1;                   /* last float of in = first of out */
    EXPECT_APPLY(&v, &in, pos, ROPE_ESHAPE);

    /* accepted edge cases */
    v = in; v.data = b.x + N;                       /* adjacent, disjoint */
    CHECK_EQ_INT(rope_apply(&t, ROPE_FORWARD, &v, &in, pos, 1), ROPE_OK);
    reset(&b);
    rope_view empty = { NULL, 0, H, 0, 0 };         /* nothing to do: no data, no pos needed */
    CHECK_EQ_INT(rope_apply(&t, ROPE_FORWARD, &empty, &empty, NULL, 1), ROPE_OK);
    rope_view one = { b.y, 1, 1, -5, 12345 };       /* strides of count-1 dims are ignored */
    rope_view one_in = { b.x, 1, 1, 0, 0 };
    CHECK_EQ_INT(rope_apply(&t, ROPE_FORWARD, &one, &one_in, pos, 1), ROPE_OK);
    CHECK(memcmp(b.y + 8, b.y0 + 8, (2 * N - 8) * sizeof(float)) == 0);   /* only one head written */
    reset(&b);
    rope_table_free(&t);
}

TEST(rope_errors_apply_qk_and_shift) {
    static bufs b;
    reset(&b);
    rope_config cfg = config(16, 1);
    rope_table t;
    CHECK_EQ_INT(rope_table_init(&t, &cfg, 16), ROPE_OK);
    int32_t pos[T] = { 0, 1, 2, 3 }, bad[T] = { 0, 1, 2, 99 };
    rope_view q = rope_view_packed(b.x, T, H, D), k = rope_view_packed(b.y, T, 1, D);
    CHECK_EQ_INT(rope_apply_qk(NULL, ROPE_FORWARD, &q, &k, pos, 1), ROPE_ENULL);
    CHECK_EQ_INT(rope_apply_qk(&t, ROPE_FORWARD, NULL, &k, pos, 1), ROPE_ENULL);
    CHECK_EQ_INT(rope_apply_qk(&t, ROPE_FORWARD, &q, &k, NULL, 1), ROPE_ENULL);
    CHECK_EQ_INT(rope_apply_qk(&t, ROPE_FORWARD, &q, &k, bad, 1), ROPE_ERANGE);
    rope_view kb = k;
    kb.n_tokens = T - 1;                            /* q fine, k disagrees: q not written */
    CHECK_EQ_INT(rope_apply_qk(&t, ROPE_FORWARD, &q, &kb, pos, 1), ROPE_ESHAPE);
    kb = k; kb.n_heads = 0;
    CHECK_EQ_INT(rope_apply_qk(&t, ROPE_FORWARD, &q, &kb, pos, 1), ROPE_ESHAPE);
    kb = k; kb.data = NULL;
    CHECK_EQ_INT(rope_apply_qk(&t, ROPE_FORWARD, &q, &kb, pos, 1), ROPE_ENULL);
    kb = k; kb.data = b.x;                          /* k is q: would rotate twice */
    CHECK_EQ_INT(rope_apply_qk(&t, ROPE_FORWARD, &q, &kb, pos, 1), ROPE_ESHAPE);
    CHECK(untouched(&b));
    CHECK_EQ_INT(rope_apply_qk(&t, ROPE_FORWARD, &q, &k, pos, 1), ROPE_OK);
    CHECK(!untouched(&b));
    reset(&b);

    CHECK_EQ_INT(rope_shift(NULL, &k, 3, 1), ROPE_ENULL);
    CHECK_EQ_INT(rope_shift(&t, NULL, 3, 1), ROPE_ENULL);
    kb = k; kb.n_tokens = -2;
    CHECK_EQ_INT(rope_shift(&t, &kb, 3, 1), ROPE_ESHAPE);
    kb = k; kb.n_heads = 2; kb.head_stride = 3;
    CHECK_EQ_INT(rope_shift(&t, &kb, 3, 1), ROPE_ESHAPE);
    CHECK(untouched(&b));
    CHECK_EQ_INT(rope_shift(&t, &k, 0, 1), ROPE_OK);   /* R(0): nothing changes */
    CHECK(untouched(&b));
    CHECK_EQ_INT(rope_shift(&t, &k, 1000, 1), ROPE_OK); /* past the table is fine: no table rows */
    CHECK(!untouched(&b));
    reset(&b);
    rope_table_free(&t);
}

TEST(rope_errors_permute_rows) {
    float src[32], dst[32], d0[32];
    for (int i = 0; i < 32; i++) { src[i] = (float)i; dst[i] = -1.0f; }
    memcpy(d0, dst, sizeof dst);
    const rope_layout I = ROPE_LAYOUT_INTERLEAVED, Hf = ROPE_LAYOUT_HALF;
    CHECK_EQ_INT(rope_permute_rows(NULL, src, 2, 8, 4, 2, I, Hf), ROPE_ENULL);
    CHECK_EQ_INT(rope_permute_rows(dst, NULL, 2, 8, 4, 2, I, Hf), ROPE_ENULL);
    CHECK_EQ_INT(rope_permute_rows(dst, src, 2, 0, 4, 2, I, Hf), ROPE_EDIM);
    CHECK_EQ_INT(rope_permute_rows(dst, src, 2, 8, 5, 2, I, Hf), ROPE_EDIM);
    CHECK_EQ_INT(rope_permute_rows(dst, src, 2, 8, 10, 2, I, Hf), ROPE_EDIM);
    CHECK_EQ_INT(rope_permute_rows(dst, src, 2, 8, 0, 2, I, Hf), ROPE_EDIM);
    CHECK_EQ_INT(rope_permute_rows(dst, src, 2, 8, 4, 2, (rope_layout)2, Hf), ROPE_ELAYOUT);
    CHECK_EQ_INT(rope_permute_rows(dst, src, 2, 8, 4, 2, I, (rope_layout)-1), ROPE_ELAYOUT);
    CHECK_EQ_INT(rope_permute_rows(dst, src, 0, 8, 4, 2, I, Hf), ROPE_ESHAPE);
    CHECK_EQ_INT(rope_permute_rows(dst, src, 2, 8, 4, 0, I, Hf), ROPE_ESHAPE);
    CHECK(memcmp(dst, d0, sizeof dst) == 0);
    CHECK_EQ_INT(rope_permute_rows(src, src, 2, 8, 4, 2, I, Hf), ROPE_ESHAPE);      /* in place */
    CHECK_EQ_INT(rope_permute_rows(src + 1, src, 1, 8, 4, 2, I, Hf), ROPE_ESHAPE);  /* overlap */
    for (int i = 0; i < 32; i++) CHECK(src[i] == (float)i);
}
