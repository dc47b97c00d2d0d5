/*
 * test_matvec.c — the decode matvec's threading contract and the Llama
 * decode step built on it: the block form (a caller's parallel region
 * shares out a product set) gives the whole call's bits in any order; a
 * bf16 kernel gives a row the same bits whatever rows share its group; the
 * AVX512-BF16 input split matches the scalar rounding; and a decode step
 * (one parallel region, llama.c) gives the same bits with one thread and two,
 * agrees with a full recompute of the sequence, and its bf16 logits stay
 * within a stated bound of the fp32 ones. The kernels' accuracy against a
 * double reference is tested in test_nn_llama.c.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"
#ifdef _OPENMP
#include <omp.h>
#endif
#include "model/llama.h"
#include "nn/matvec.h"

typedef struct { uint64_t s; } mrng;

static float mrng_uniform(mrng *r, float lo, float hi) {   /* xorshift64* (Vigna 2016) */
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    uint32_t u = (uint32_t)((r->s * 2685821657736338717ULL) >> 32);
    return lo + (hi - lo) * (float)(u >> 8) / 16777216.0f;
}

static void mfill(float *x, size_t n, mrng *r) {
    for (size_t i = 0; i < n; i++) x[i] = mrng_uniform(r, -1.0f, 1.0f);
}

static void set_threads(int n) {
#ifdef _OPENMP
    omp_set_num_threads(n);
#else
    (void)n;
#endif
}

static int get_threads(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

/* Four products sharing x (rows 5, 37, 130, 11 of one (183, C) matrix: odd
 * sizes, so blocks end mid-group), computed whole and block by block in
 * reverse order (any thread may take any block): the same bits. */
TEST(matvec_blocks_give_the_whole_calls_bits) {
    enum { C = 300, N = 4 };
    static const int ocs[N] = { 5, 37, 130, 11 };
    int total = 0;
    for (int i = 0; i < N; i++) total += ocs[i];
    mrng r = { 9 };
    float *w = malloc((size_t)total * C * sizeof(float)), *x = malloc(C * sizeof(float));
    uint16_t *wb = malloc((size_t)total * C * sizeof(uint16_t));
    float *whole = malloc((size_t)total * sizeof(float)), *blocks = malloc((size_t)total * sizeof(float));
    float *prep = malloc(matvec_bf16_prep_floats(C) * sizeof(float));
    mfill(w, (size_t)total * C, &r);
    mfill(x, C, &r);
    bf16_convert(wb, w, (size_t)total * C);
    int nb = matvec_multi_blocks(N, ocs);
    CHECK_EQ_INT(nb, 1 + 3 + 9 + 1);   /* 16-row blocks per product */
    CHECK_EQ_INT(matvec_multi_blocks(5, ocs), 0);
    for (int bf = 0; bf <= 1; bf++) {
        float *ow[N], *op[N];
        const float *ws[N];
        const uint16_t *bs[N];
        for (int i = 0, o = 0; i < N; o += ocs[i], i++) {
            ow[i] = whole + o, op[i] = blocks + o;
            ws[i] = w + (size_t)o * C, bs[i] = wb + (size_t)o * C;
        }
        if (bf) matvec_bf16_forward_multi(N, ow, bs, ocs, x, C);
        else matvec_forward_multi(N, ow, ws, ocs, x, C);
        for (int i = 0; i < total; i++) blocks[i] = NAN;
        if (bf) matvec_bf16_prep(MATVEC_ISA_AUTO, prep, x, C);
        for (int b = nb - 1; b >= 0; b--) {
            if (bf) matvec_bf16_forward_multi_block(MATVEC_ISA_AUTO, N, op, bs, ocs, x, prep, C, b);
            else matvec_forward_multi_block(MATVEC_ISA_AUTO, N, op, ws, ocs, x, C, b);
        }
        CHECK(memcmp(whole, blocks, (size_t)total * sizeof(float)) == 0);
    }
    /* matvec_block_rows: the blocks tile [0, OC) in order, and block b of a
     * single product writes exactly its rows. */
    int OC = 130, next = 0;
    for (int b = 0; b < matvec_multi_blocks(1, &OC); b++) {
        int r0, r1;
        matvec_block_rows(OC, b, &r0, &r1);
        CHECK_EQ_INT(r0, next);
        CHECK(r1 > r0);
        next = r1;
        float *o1[1] = { blocks };
        const float *w1[1] = { w };
        for (int i = 0; i < OC; i++) blocks[i] = NAN;
        matvec_forward_multi_block(matvec_isa_best(), 1, o1, w1, &OC, x, C, b);
        for (int i = 0; i < OC; i++) CHECK((i >= r0 && i < r1) == !isnan(blocks[i]));
    }
    CHECK_EQ_INT(next, OC);
    int r0, r1;
    matvec_block_rows(OC, 9, &r0, &r1);   /* past the end: empty */
    CHECK_EQ_INT(r1 - r0, 0);
    free(w), free(x), free(wb), free(whole), free(blocks), free(prep);
}

/* Each bf16 kernel groups rows (4 for AVX-512, 4 for AVX512-BF16); a row
 * computed alone must give the bits it gets inside a group. C = 77 covers
 * the 32-wide loop, the 16-wide step and the masked tail. */
TEST(matvec_bf16_row_bits_independent_of_grouping) {
    enum { C = 77, OC = 11 };
    mrng r = { 21 };
    float w[OC * C], x[C], all[OC], one;
    uint16_t wb[OC * C];
    mfill(w, OC * C, &r);
    mfill(x, C, &r);
    bf16_convert(wb, w, OC * C);
    for (int isa = MATVEC_ISA_SCALAR; isa <= MATVEC_ISA_AVX512BF16_XR; isa++) {
        if (!matvec_isa_supported((matvec_isa)isa)) continue;
        matvec_bf16_forward_isa((matvec_isa)isa, all, x, wb, C, OC);
        for (int o = 0; o < OC; o++) {
            matvec_bf16_forward_isa((matvec_isa)isa, &one, x, wb + (size_t)o * C, C, 1);
            if (memcmp(&one, &all[o], sizeof one) != 0)
                test_fail(__FILE__, __LINE__, "%s row %d: alone %.9g, in a group %.9g",
                          matvec_isa_name((matvec_isa)isa), o, one, all[o]);
        }
    }
}

/* The AVX512-BF16 kernel's x = hi + lo split (vcvtne2ps2bf16) rounds as
 * bf16_from_float does (nearest, ties to even), on values that include
 * exact ties, and the tail past the last 32-block goes the scalar way. One
 * documented difference: the instruction flushes subnormal inputs to a
 * signed zero (an absolute error below 2^-126, far under any tolerance). */
TEST(matvec_bf16dp_split_matches_scalar_rounding) {
    if (!matvec_isa_supported(MATVEC_ISA_AVX512BF16)) return;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    enum { C = 77 };
    mrng r = { 5 };
    float x[C];
    uint16_t hl[2 * C];
    mfill(x, C, &r);
    x[0] = 1.0f + 0x1p-8f;                /* a tie: rounds to even (down) */
    x[1] = 1.0f + 3 * 0x1p-8f;            /* a tie: rounds to even (up) */
    x[2] = -3.0e-39f;                     /* subnormal */
    x[3] = 0.0f;
    matvec_bf16dp_split_x_avx512(hl, x, C);
    for (int c = 0; c < C; c++) {
        uint16_t h = bf16_from_float(x[c]);
        uint16_t l = bf16_from_float(x[c] - bf16_to_float(h));
        if (c < 64 && fabsf(x[c]) < 0x1p-126f) h = l = (uint16_t)(signbit(x[c]) ? 0x8000 : 0);
        if (hl[c] != h || hl[C + c] != l)
            test_fail(__FILE__, __LINE__, "x[%d] = %.9g: hi/lo 0x%04x/0x%04x, scalar 0x%04x/0x%04x", c, x[c], hl[c],
                      hl[C + c], h, l);
    }
#endif
}

/* The rounded-x kernel's x (vcvtne2ps2bf16) is bf16_from_float's rounding,
 * but for the documented flush of subnormals in the 32-blocks. */
TEST(matvec_bf16dp_round_x_matches_scalar_rounding) {
    if (!matvec_isa_supported(MATVEC_ISA_AVX512BF16_XR)) return;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    enum { C = 77 };
    mrng r = { 6 };
    float x[C];
    uint16_t h[C];
    mfill(x, C, &r);
    x[0] = 1.0f + 0x1p-8f;                /* a tie: rounds to even (down) */
    x[1] = 1.0f + 3 * 0x1p-8f;            /* a tie: rounds to even (up) */
    x[2] = -3.0e-39f;                     /* subnormal */
    x[70] = 3.0e-39f;                     /* subnormal in the scalar tail: kept */
    matvec_bf16dp_round_x_avx512(h, x, C);
    for (int c = 0; c < C; c++) {
        uint16_t want = bf16_from_float(x[c]);
        if (c < 64 && fabsf(x[c]) < 0x1p-126f) want = (uint16_t)(signbit(x[c]) ? 0x8000 : 0);
        if (h[c] != want)
            test_fail(__FILE__, __LINE__, "x[%d] = %.9g: 0x%04x, scalar 0x%04x", c, x[c], h[c], want);
    }
#endif
}

/* Models big enough that decode_step splits its work (DECODE_OMP_MIN in
 * llama.c): per layer 4 * 256^2 + 3 * 256 * 320 weights, multi-head or
 * grouped-query attention; variant 2 is narrow with a wide MLP (its
 * per-thread scratch, 2 * 64 + 8200 floats, takes the heap path). */
static llama_config dec_cfg(int variant) {
    llama_config c = llama_config_default();
    c.dim = variant == 2 ? 64 : 256;
    c.hidden_dim = variant == 2 ? 8200 : 320;
    c.n_layers = 2;
    c.n_heads = 4;
    c.n_kv_heads = variant == 1 ? 2 : 4;
    c.vocab_size = 300;
    c.seq_len = 16;
    c.shared_classifier = 0;
    return c;
}

static const int DSEQ[] = { 3, 17, 250, 0, 9, 9, 123, 41, 7, 299, 30, 2 };
#define NDSEQ ((int)(sizeof DSEQ / sizeof DSEQ[0]))

/* Decode (T == 1) with one thread and with two: the same bits (rows and
 * heads are each computed by one thread in a fixed order; the residual
 * stream is the same arithmetic on every thread), fp32 and bf16, for the
 * three dec_cfg variants. The fp32 decode also matches a full recompute of
 * the sequence (matmul path, other summation order): 5e-5 relative + 5e-5
 * absolute on logits of magnitude ~3-5 (measured max |diff| 5e-6, float
 * rounding of sums of 64-8200 terms through 2 blocks; a wrong head, position
 * or cache row is O(0.1)). bf16: max |diff| vs fp32 <= 3e-2 * max |logit|,
 * the bound of llama_bf16_decode_logit_error_bounded (weights rounded to
 * relative 2^-9, x exact; measured 7e-3 here, gcc and clang -O2); a wrong
 * bf16 view moves them O(1). */
TEST(matvec_decode_step_same_bits_any_thread_count) {
    int nt0 = get_threads();
    for (int variant = 0; variant < 3; variant++) {
        llama_config c = dec_cfg(variant);
        set_threads(2);   /* models sized for two threads (their score rows) */
        llama_model full, a, b;
        CHECK_EQ_INT(llama_init_random(&full, &c, 17, 0.08f, NDSEQ), LLAMA_OK);
        CHECK_EQ_INT(llama_init_borrowed(&a, &c, &full.w, NDSEQ), LLAMA_OK);
        CHECK_EQ_INT(llama_init_borrowed(&b, &c, &full.w, NDSEQ), LLAMA_OK);
        CHECK_EQ_INT(llama_forward(&full, DSEQ, NDSEQ, 0, 1), LLAMA_OK);
        size_t V = (size_t)c.vocab_size;
        float *la = malloc(V * sizeof(float));
        for (int bf = 0; bf <= 1; bf++) {
            if (bf) {
                CHECK_EQ_INT(llama_use_bf16(&a), LLAMA_OK);
                CHECK_EQ_INT(llama_use_bf16(&b), LLAMA_OK);
            }
            int P = 4;
            CHECK_EQ_INT(llama_forward(&a, DSEQ, P, 0, 0), LLAMA_OK);
            CHECK_EQ_INT(llama_forward(&b, DSEQ, P, 0, 0), LLAMA_OK);
            double worst = 0.0, scale = 0.0;
            for (int t = P; t < NDSEQ; t++) {
                set_threads(1);
                CHECK_EQ_INT(llama_forward(&a, DSEQ + t, 1, t, 0), LLAMA_OK);
                memcpy(la, a.logits, V * sizeof(float));
                set_threads(2);
                CHECK_EQ_INT(llama_forward(&b, DSEQ + t, 1, t, 0), LLAMA_OK);
                CHECK(memcmp(la, b.logits, V * sizeof(float)) == 0);
                const float *ref = full.all_logits + (size_t)t * V;
                for (size_t v = 0; v < V; v++) {
                    if (!bf) CHECK_CLOSE(la[v], ref[v], 5e-5, 5e-5);
                    worst = fmax(worst, fabs((double)la[v] - ref[v]));
                    scale = fmax(scale, fabs((double)ref[v]));
                }
            }
            CHECK(scale > 0.5);   /* logits of a useful size */
            if (bf) {
                CHECK(worst <= 3e-2 * scale);
                CHECK(worst > 0.0);   /* the bf16 weights were used */
            }
        }
        free(la);
        llama_free(&b), llama_free(&a), llama_free(&full);
    }
    set_threads(nt0);
}

/* The attention products over strided cache rows, every ISA, against double
 * sums: head sizes 48, 64 (stories15M, 110M), 80 and 7 (masked tails and a
 * group of 64 cut short), row counts 1..13 (groups of 4 and 2 with
 * remainders), row stride ld > C as in a kv cache. Tolerance 1e-5 relative
 * + 1e-5 absolute: float sums of <= 80 terms of size <= 1 (rounding
 * ~1e-6); a dropped row or lane is O(0.1). */
TEST(matvec_strided_attention_products_match_double) {
    static const int hs[] = { 48, 64, 80, 7 };
    mrng r = { 33 };
    for (size_t h = 0; h < sizeof hs / sizeof hs[0]; h++)
        for (int OC = 1; OC <= 13; OC += 3) {
            int C = hs[h];
            size_t ld = (size_t)C * 3 + 5;
            float *w = malloc(ld * (size_t)OC * sizeof(float)), x[80], a[13], out[13], acc[80];
            mfill(w, ld * (size_t)OC, &r);
            mfill(x, 80, &r);
            mfill(a, 13, &r);
            for (int isa = MATVEC_ISA_SCALAR; isa <= MATVEC_ISA_AVX512; isa++) {
                if (!matvec_isa_supported((matvec_isa)isa)) continue;
                matvec_strided_isa((matvec_isa)isa, out, x, w, C, OC, ld);
                for (int o = 0; o < OC; o++) {
                    double want = 0.0;
                    for (int c = 0; c < C; c++) want += (double)w[(size_t)o * ld + c] * x[c];
                    CHECK_CLOSE(out[o], want, 1e-5, 1e-5);
                }
                for (int c = 0; c < 80; c++) acc[c] = 0.5f;   /* accumulates: the 0.5 stays */
                matvec_t_accumulate_isa((matvec_isa)isa, acc, a, w, C, OC, ld);
                for (int c = 0; c < 80; c++) {
                    double want = 0.5;
                    for (int o = 0; c < C && o < OC; o++) want += (double)a[o] * w[(size_t)o * ld + c];
                    CHECK_CLOSE(acc[c], want, 1e-5, 1e-5);   /* c >= C: untouched */
                }
            }
            free(w);
        }
}
