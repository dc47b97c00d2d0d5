/*
 * test_rope_simd.c — every SIMD rotation kernel (AVX2, AVX-512) against its
 * scalar twin, called directly through rope_kernel_get and through rope_apply
 * with rope_table_set_kernel. Kernels this CPU/build lacks are skipped with a
 * printed note (the test then passes without checking them).
 *
 * Tolerance: none. The SIMD kernels form the same two rounded products and one
 * rounded sum per output as kernel_scalar.c (they avoid FMA on purpose, see
 * kernel_avx2.c), so outputs are compared bit for bit (memcmp on the floats).
 * The sweep covers real head sizes (64, 80, 96, 128), odd pair counts that
 * leave vector tails (1..31), a pair count above the kernels' 256-pair chunk,
 * partial rotary, head strides larger than the head and many heads, both
 * layouts, both directions, in place and out of place; channels the kernel
 * must not touch (past 2*n_pairs, and the gaps between heads) are checked to
 * stay unchanged.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rope.h"
#include "rope/kernels.h"
#include "test.h"

static const rope_kernel simd_kernels[] = { ROPE_KERNEL_AVX2, ROPE_KERNEL_AVX512 };
#define N_SIMD ((int)(sizeof simd_kernels / sizeof simd_kernels[0]))

/* Deterministic xorshift so every run checks the same data. */
static uint32_t rng_next(uint32_t *s) {
    uint32_t x = *s;
    x ^= x << 13; x ^= x >> 17; x ^= x << 5;
    return *s = x;
}

/* Uniform in [-1, 1), then a spread of magnitudes and some exact zeros of
 * both signs, so rounding and signed-zero handling are both exercised. */
static float rng_value(uint32_t *s) {
    uint32_t r = rng_next(s);
    float u = (float)(r >> 8) * (2.0f / 16777216.0f) - 1.0f;
    switch (r & 15u) {
    case 0: return 0.0f;
    case 1: return -0.0f;
    case 2: return u * 1e-30f;
    case 3: return u * 1e4f;
    default: return u;
    }
}

static int skip_note(rope_kernel k) {
    if (rope_kernel_supported(k)) return 0;
    printf("    note: kernel %s not supported by this CPU/build, skipped\n", rope_kernel_name(k));
    return 1;
}

/* Runs kernel k and the scalar kernel on the same data; returns 1 if they
 * agree bit for bit everywhere in the output buffer (including the channels
 * neither may touch, which must keep their sentinel values). */
static int kernels_agree(rope_kernel k, rope_layout layout, int backward, int in_place,
                         int n_pairs, int64_t n_heads, int64_t head_stride, uint32_t seed) {
    const int64_t n = n_heads * head_stride;
    float *x = malloc((size_t)n * sizeof *x);
    float *y_ref = malloc((size_t)n * sizeof *y_ref);
    float *y = malloc((size_t)n * sizeof *y);
    float *cs = malloc((size_t)n_pairs * sizeof *cs);
    float *sn = malloc((size_t)n_pairs * sizeof *sn);
    int ok = 0;
    if (!x || !y_ref || !y || !cs || !sn) goto done;
    uint32_t s = seed;
    for (int64_t i = 0; i < n; i++) x[i] = rng_value(&s);
    for (int i = 0; i < n_pairs; i++) {
        /* A rotation scaled by an attention factor != 1, as YaRN tables are. */
        double ang = 6.2831853 * (double)(rng_next(&s) >> 8) / 16777216.0;
        cs[i] = (float)(1.1 * cos(ang));
        sn[i] = (float)(1.1 * sin(ang));
    }
    rope_token_fn ref = rope_kernel_get(ROPE_KERNEL_SCALAR, layout);
    rope_token_fn fn = rope_kernel_get(k, layout);
    if (!ref || !fn) goto done;
    if (in_place) {
        memcpy(y_ref, x, (size_t)n * sizeof *x);
        memcpy(y, x, (size_t)n * sizeof *x);
        ref(y_ref, y_ref, n_heads, head_stride, head_stride, cs, sn, n_pairs, backward);
        fn(y, y, n_heads, head_stride, head_stride, cs, sn, n_pairs, backward);
    } else {
        /* Sentinels show any write outside the rotary channels. */
        for (int64_t i = 0; i < n; i++) y_ref[i] = y[i] = 12345.0f;
        ref(y_ref, x, n_heads, head_stride, head_stride, cs, sn, n_pairs, backward);
        fn(y, x, n_heads, head_stride, head_stride, cs, sn, n_pairs, backward);
    }
    ok = memcmp(y, y_ref, (size_t)n * sizeof *y) == 0;
    if (!ok) {
        for (int64_t i = 0; i < n; i++)
            if (memcmp(&y[i], &y_ref[i], sizeof *y) != 0) {
                printf("    %s %s %s %s n_pairs=%d heads=%lld stride=%lld: first diff at %lld: %.9g vs scalar %.9g\n",
                       rope_kernel_name(k), layout == ROPE_LAYOUT_HALF ? "half" : "interleaved",
                       backward ? "bwd" : "fwd", in_place ? "inplace" : "outplace", n_pairs,
                       (long long)n_heads, (long long)head_stride, (long long)i, y[i], y_ref[i]);
                break;
            }
    }
done:
    free(x); free(y_ref); free(y); free(cs); free(sn);
    return ok;
}

/* Every (layout, direction, in/out of place) for one shape. */
static void check_shape(rope_kernel k, int n_pairs, int64_t n_heads, int64_t head_stride, uint32_t seed) {
    for (int layout = 0; layout < 2; layout++)
        for (int bwd = 0; bwd < 2; bwd++)
            for (int inp = 0; inp < 2; inp++)
                CHECK(kernels_agree(k, (rope_layout)layout, bwd, inp, n_pairs, n_heads, head_stride,
                                    seed + 131u * (uint32_t)(layout * 4 + bwd * 2 + inp)));
}

TEST(rope_simd_kernels_match_scalar_head_sizes) {
    static const int head_sizes[] = { 64, 80, 96, 128 };
    for (int ki = 0; ki < N_SIMD; ki++) {
        if (skip_note(simd_kernels[ki])) continue;
        for (int i = 0; i < 4; i++) {
            int hs = head_sizes[i];
            check_shape(simd_kernels[ki], hs / 2, 8, hs, 17u + (uint32_t)hs);          /* full rotary, packed */
            check_shape(simd_kernels[ki], hs / 4, 8, hs, 19u + (uint32_t)hs);          /* rotary_dim = D/2 */
            check_shape(simd_kernels[ki], hs / 2, 5, hs + 7, 23u + (uint32_t)hs);      /* strided heads */
        }
    }
}

TEST(rope_simd_kernels_match_scalar_tails) {
    /* Odd pair counts leave a partial vector (masked tail) in every width;
     * 65..128 pairs use the AVX-512 half kernel's widest register path and
     * the interleaved kernels' path with cos/sin in memory; 300 pairs spans
     * two of the kernels' 256-pair expansion chunks. */
    static const int pairs[] = { 1, 2, 3, 4, 5, 7, 8, 9, 12, 17, 31, 33, 65, 100, 128, 129, 300 };
    for (int ki = 0; ki < N_SIMD; ki++) {
        if (skip_note(simd_kernels[ki])) continue;
        for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
            int np = pairs[i];
            check_shape(simd_kernels[ki], np, 3, 2 * np, 41u + (uint32_t)np);        /* packed, no pass-through */
            check_shape(simd_kernels[ki], np, 4, 2 * np + 3, 43u + (uint32_t)np);    /* odd stride */
            check_shape(simd_kernels[ki], np, 2, 2 * np + 64, 47u + (uint32_t)np);   /* rotary_dim < head_dim */
        }
    }
}

TEST(rope_simd_kernels_match_scalar_many_heads) {
    for (int ki = 0; ki < N_SIMD; ki++) {
        if (skip_note(simd_kernels[ki])) continue;
        check_shape(simd_kernels[ki], 64, 67, 128, 71u);
        check_shape(simd_kernels[ki], 31, 129, 70, 73u);
    }
}

TEST(rope_simd_kernel_selection) {
    rope_kernel best = rope_kernel_best();
    CHECK(best != ROPE_KERNEL_AUTO);
    CHECK(rope_kernel_supported(best));
    CHECK(rope_kernel_get(best, ROPE_LAYOUT_INTERLEAVED) != NULL);
    CHECK(rope_kernel_get(best, ROPE_LAYOUT_HALF) != NULL);
    CHECK(rope_kernel_get(ROPE_KERNEL_AUTO, ROPE_LAYOUT_HALF) == NULL);
    /* The best kernel is the widest one supported. */
    if (rope_kernel_supported(ROPE_KERNEL_AVX512)) CHECK_EQ_INT(best, ROPE_KERNEL_AVX512);
    else if (rope_kernel_supported(ROPE_KERNEL_AVX2)) CHECK_EQ_INT(best, ROPE_KERNEL_AVX2);
    else CHECK_EQ_INT(best, ROPE_KERNEL_SCALAR);
    for (int ki = 0; ki < N_SIMD; ki++) {
        rope_kernel k = simd_kernels[ki];
        int sup = rope_kernel_supported(k);
        CHECK_EQ_INT(rope_kernel_get(k, ROPE_LAYOUT_INTERLEAVED) != NULL, sup);
        if (!sup) printf("    note: kernel %s not supported by this CPU/build\n", rope_kernel_name(k));
    }
    printf("    best kernel here: %s\n", rope_kernel_name(best));
}

/* rope_apply with kernel k vs the scalar kernel on one config; 1 if equal. */
static int apply_agrees(rope_kernel k, rope_layout layout, int head_dim, int rotary_dim,
                        rope_direction dir, int in_place, int n_threads) {
    const int64_t T = 37, NH = 6, hstride = head_dim + 5, tstride = NH * hstride + 3;
    const int64_t n = T * tstride;
    rope_config cfg = rope_config_default();
    cfg.head_dim = head_dim;
    cfg.rotary_dim = rotary_dim;
    cfg.layout = layout;
    cfg.max_positions = 64;   /* some positions below go past the table */
    rope_table t_ref, t_k;
    int ok = 0;
    float *x = malloc((size_t)n * sizeof *x), *y_ref = malloc((size_t)n * sizeof *x), *y = malloc((size_t)n * sizeof *x);
    int32_t pos[37];
    if (!x || !y_ref || !y) { free(x); free(y_ref); free(y); return 0; }
    if (rope_table_init(&t_ref, &cfg, 64) != ROPE_OK) { free(x); free(y_ref); free(y); return 0; }
    if (rope_table_init(&t_k, &cfg, 64) != ROPE_OK) { rope_table_free(&t_ref); free(x); free(y_ref); free(y); return 0; }
    uint32_t s = 97u + (uint32_t)(head_dim * 3 + rotary_dim);
    for (int64_t i = 0; i < n; i++) x[i] = rng_value(&s);
    for (int i = 0; i < 37; i++) pos[i] = (int32_t)(rng_next(&s) % 100u);
    if (rope_table_set_kernel(&t_ref, ROPE_KERNEL_SCALAR) == ROPE_OK &&
        rope_table_set_kernel(&t_k, k) == ROPE_OK) {
        rope_view vx = { x, T, NH, tstride, hstride };
        rope_view vr = { y_ref, T, NH, tstride, hstride };
        rope_view vy = { y, T, NH, tstride, hstride };
        rope_status s1, s2;
        if (in_place) {
            memcpy(y_ref, x, (size_t)n * sizeof *x);
            memcpy(y, x, (size_t)n * sizeof *x);
            s1 = rope_apply(&t_ref, dir, &vr, &vr, pos, n_threads);
            s2 = rope_apply(&t_k, dir, &vy, &vy, pos, n_threads);
        } else {
            for (int64_t i = 0; i < n; i++) y_ref[i] = y[i] = 777.0f;
            s1 = rope_apply(&t_ref, dir, &vr, &vx, pos, n_threads);
            s2 = rope_apply(&t_k, dir, &vy, &vx, pos, n_threads);
        }
        ok = s1 == ROPE_OK && s2 == ROPE_OK && memcmp(y, y_ref, (size_t)n * sizeof *y) == 0;
        /* The SIMD result must also differ from the input (not a no-op). */
        ok = ok && memcmp(y, x, (size_t)n * sizeof *y) != 0;
    }
    rope_table_free(&t_ref);
    rope_table_free(&t_k);
    free(x); free(y_ref); free(y);
    return ok;
}

TEST(rope_simd_apply_matches_scalar) {
    static const int dims[][2] = { { 64, 64 }, { 80, 80 }, { 96, 48 }, { 128, 128 }, { 128, 32 }, { 18, 14 } };
    for (int ki = 0; ki < N_SIMD; ki++) {
        rope_kernel k = simd_kernels[ki];
        if (skip_note(k)) {
            rope_config cfg = rope_config_default();
            rope_table t;
            if (rope_table_init(&t, &cfg, 64) == ROPE_OK) {
                CHECK_EQ_INT(rope_table_set_kernel(&t, k), ROPE_EKERNEL);
                rope_table_free(&t);
            }
            continue;
        }
        for (size_t d = 0; d < sizeof dims / sizeof dims[0]; d++)
            for (int layout = 0; layout < 2; layout++)
                for (int dir = 0; dir < 2; dir++)
                    for (int inp = 0; inp < 2; inp++)
                        CHECK(apply_agrees(k, (rope_layout)layout, dims[d][0], dims[d][1],
                                           (rope_direction)dir, inp, 1 + (int)(d % 2)));
    }
}
