/*
 * test_matmul.c — every matmul backend (naive twin, own kernels for each ISA
 * this CPU runs, OpenBLAS when built with it) against a double-precision
 * reference at sizes that are not multiples of the tiles or blocks, with and
 * without bias, with NULL gradients, checking the += contract and that the
 * own backend gives the same bits for any thread count.
 */
#include <float.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "nn/matmul.h"
#include "test.h"

typedef struct { uint64_t s; } trng;
static float trng_uniform(trng *r) { /* splitmix64 -> [-1, 1) */
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (float)((double)(z >> 40) / (double)(1ull << 24) * 2.0 - 1.0);
}
static float *rand_buf(size_t n, trng *r) {
    float *p = malloc((n ? n : 1) * sizeof(float));
    for (size_t i = 0; i < n; i++) p[i] = trng_uniform(r);
    return p;
}
static float *copy_buf(const float *src, size_t n) {
    float *p = malloc((n ? n : 1) * sizeof(float));
    if (n) memcpy(p, src, n * sizeof(float));
    return p;
}

/* Float error bound for a K-term dot product added to one more value:
 * recursive summation gives |fl - exact| <= gamma_{K+1} * sum|terms| with
 * gamma_n ~ n*u, u = FLT_EPSILON/2 (Higham, "Accuracy and Stability of
 * Numerical Algorithms", 2nd ed., eq. 3.5); any summation order (blocked,
 * BLAS) obeys the same bound, so (K+2)*FLT_EPSILON*sum|terms| has 2x slack. */
static double tol_for(int K, double abssum) { return (K + 2) * (double)FLT_EPSILON * abssum + 1e-30; }

typedef struct {
    const char *name;
    matmul_ctx ctx;
    int use_ctx; /* 0: the plain matmul_forward/matmul_backward */
} backend_case;

static int backend_cases(backend_case *bc) {
    int n = 0;
    bc[n] = (backend_case){"plain", {0}, 0};
    n++;
    static const matmul_isa isas[] = {MATMUL_ISA_SCALAR, MATMUL_ISA_AVX2, MATMUL_ISA_AVX512};
    bc[n].name = "naive";
    matmul_ctx_init(&bc[n].ctx, MATMUL_NAIVE);
    bc[n++].use_ctx = 1;
    for (int i = 0; i < 3; i++) {
        if (!matmul_isa_supported(isas[i])) continue;
        bc[n].name = matmul_isa_name(isas[i]);
        matmul_ctx_init(&bc[n].ctx, MATMUL_OWN);
        bc[n].ctx.isa = isas[i];
        bc[n++].use_ctx = 1;
    }
    if (matmul_have_blas()) {
        bc[n].name = "blas";
        matmul_ctx_init(&bc[n].ctx, MATMUL_BLAS);
        bc[n++].use_ctx = 1;
    }
    return n;
}

static void run_forward(backend_case *b, float *out, const float *inp, const float *w,
                        const float *bias, int N, int C, int OC) {
    if (b->use_ctx) matmul_forward_ctx(&b->ctx, out, inp, w, bias, N, C, OC);
    else matmul_forward(out, inp, w, bias, N, C, OC);
}
static void run_backward(backend_case *b, float *dinp, float *dw, float *db, const float *dout,
                         const float *inp, const float *w, int N, int C, int OC) {
    if (b->use_ctx) matmul_backward_ctx(&b->ctx, dinp, dw, db, dout, inp, w, N, C, OC);
    else matmul_backward(dinp, dw, db, dout, inp, w, N, C, OC);
}

/* The dispatcher must see what the CPU has: a build whose feature check was
 * compiled out would run the portable kernel everywhere, and every AVX-512
 * test below would skip itself without a word (it happened once, while
 * matmul.c was being split: all tests passed, 12x slower). */
TEST(matmul_isa_detection_matches_cpu) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    const int avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
                       __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
    const int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    CHECK_EQ_INT(matmul_isa_supported(MATMUL_ISA_AVX512), avx512);
    CHECK_EQ_INT(matmul_isa_supported(MATMUL_ISA_AVX2), avx2);
    CHECK_EQ_INT((int)matmul_isa_best(), avx512 ? MATMUL_ISA_AVX512 : avx2 ? MATMUL_ISA_AVX2 : MATMUL_ISA_SCALAR);
#endif
}

/* Odd sizes: not multiples of MR (4/6/8) or NR (16/32); K past 2*KC (256) in
 * every product; M past MC_MAX (384); Ncols past NC (4096). */
static const int sizes[][3] = {
    {1, 1, 1},   {7, 33, 129}, {33, 129, 7}, {129, 7, 33}, {1, 300, 65},
    {70, 513, 40}, {520, 17, 9}, {400, 40, 33}, {9, 20, 400}, {3, 5, 4100},
};
#define NSIZES (int)(sizeof sizes / sizeof sizes[0])

static int failures_before;
static void report(const char *what, const char *backend, int N, int C, int OC) {
    if (test_failures > failures_before)
        printf("    (%s, backend %s, N=%d C=%d OC=%d)\n", what, backend, N, C, OC);
    failures_before = test_failures;
}

TEST(matmul_forward_matches_double_reference) {
    backend_case bc[8];
    int nb = backend_cases(bc);
    trng r = {1};
    failures_before = test_failures;
    for (int s = 0; s < NSIZES; s++) {
        int N = sizes[s][0], C = sizes[s][1], OC = sizes[s][2];
        float *inp = rand_buf((size_t)N * C, &r), *w = rand_buf((size_t)OC * C, &r);
        float *bias = rand_buf((size_t)OC, &r);
        float *out = malloc((size_t)N * OC * sizeof(float));
        double *ref = malloc((size_t)N * OC * sizeof(double)), *mag = malloc((size_t)N * OC * sizeof(double));
        for (int with_bias = 0; with_bias < 2; with_bias++) {
            for (int n = 0; n < N; n++)
                for (int o = 0; o < OC; o++) {
                    double acc = with_bias ? bias[o] : 0.0, m = with_bias ? fabs(bias[o]) : 0.0;
                    for (int c = 0; c < C; c++) {
                        double t = (double)inp[(size_t)n * C + c] * w[(size_t)o * C + c];
                        acc += t;
                        m += fabs(t);
                    }
                    ref[(size_t)n * OC + o] = acc;
                    mag[(size_t)n * OC + o] = m;
                }
            for (int b = 0; b < nb; b++) {
                for (size_t i = 0; i < (size_t)N * OC; i++) out[i] = NAN; /* must be overwritten */
                run_forward(&bc[b], out, inp, w, with_bias ? bias : NULL, N, C, OC);
                for (size_t i = 0; i < (size_t)N * OC; i++)
                    CHECK_NEAR(out[i], ref[i], tol_for(C, mag[i])); /* see tol_for */
                report(with_bias ? "forward+bias" : "forward", bc[b].name, N, C, OC);
            }
        }
        free(inp); free(w); free(bias); free(out); free(ref); free(mag);
    }
    for (int b = 0; b < nb; b++) matmul_ctx_free(&bc[b].ctx);
}

/* grads: bit 0 dinp, bit 1 dweight, bit 2 dbias; the others are NULL. */
static void check_backward(backend_case *b, int N, int C, int OC, int grads, trng *r) {
    float *inp = rand_buf((size_t)N * C, r), *w = rand_buf((size_t)OC * C, r);
    float *dout = rand_buf((size_t)N * OC, r);
    /* Start from nonzero gradients: the contract is +=. */
    float *dinp0 = rand_buf((size_t)N * C, r), *dw0 = rand_buf((size_t)OC * C, r);
    float *db0 = rand_buf((size_t)OC, r);
    float *dinp = copy_buf(dinp0, (size_t)N * C), *dw = copy_buf(dw0, (size_t)OC * C);
    float *db = copy_buf(db0, (size_t)OC);
    run_backward(b, grads & 1 ? dinp : NULL, grads & 2 ? dw : NULL, grads & 4 ? db : NULL, dout,
                 inp, w, N, C, OC);
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++) {
            double acc = dinp0[(size_t)n * C + c], m = fabs(acc);
            for (int o = 0; o < OC; o++) {
                double t = (double)dout[(size_t)n * OC + o] * w[(size_t)o * C + c];
                acc += t;
                m += fabs(t);
            }
            if (grads & 1) CHECK_NEAR(dinp[(size_t)n * C + c], acc, tol_for(OC, m)); /* see tol_for */
        }
    for (int o = 0; o < OC; o++) {
        for (int c = 0; c < C; c++) {
            double acc = dw0[(size_t)o * C + c], m = fabs(acc);
            for (int n = 0; n < N; n++) {
                double t = (double)dout[(size_t)n * OC + o] * inp[(size_t)n * C + c];
                acc += t;
                m += fabs(t);
            }
            if (grads & 2) CHECK_NEAR(dw[(size_t)o * C + c], acc, tol_for(N, m)); /* see tol_for */
        }
        double acc = db0[o], m = fabs(acc);
        for (int n = 0; n < N; n++) {
            acc += dout[(size_t)n * OC + o];
            m += fabs(dout[(size_t)n * OC + o]);
        }
        if (grads & 4) CHECK_NEAR(db[o], acc, tol_for(N, m)); /* see tol_for */
    }
    /* A NULL gradient means the caller's other buffers stay as they were. */
    if (!(grads & 1)) CHECK(memcmp(dinp, dinp0, (size_t)N * C * sizeof(float)) == 0);
    if (!(grads & 2)) CHECK(memcmp(dw, dw0, (size_t)OC * C * sizeof(float)) == 0);
    if (!(grads & 4)) CHECK(memcmp(db, db0, (size_t)OC * sizeof(float)) == 0);
    free(inp); free(w); free(dout); free(dinp0); free(dw0); free(db0); free(dinp); free(dw); free(db);
}

TEST(matmul_backward_accumulates_like_double_reference) {
    backend_case bc[8];
    int nb = backend_cases(bc);
    trng r = {2};
    failures_before = test_failures;
    for (int s = 0; s < NSIZES; s++) {
        int N = sizes[s][0], C = sizes[s][1], OC = sizes[s][2];
        for (int b = 0; b < nb; b++) {
            check_backward(&bc[b], N, C, OC, 7, &r);
            report("backward all", bc[b].name, N, C, OC);
        }
    }
    for (int b = 0; b < nb; b++) matmul_ctx_free(&bc[b].ctx);
}

TEST(matmul_backward_null_gradients) {
    backend_case bc[8];
    int nb = backend_cases(bc);
    trng r = {3};
    failures_before = test_failures;
    static const int sz[][3] = {{7, 33, 129}, {20, 50, 37}};
    for (int s = 0; s < 2; s++)
        for (int b = 0; b < nb; b++)
            for (int grads = 0; grads < 7; grads++) {
                check_backward(&bc[b], sz[s][0], sz[s][1], sz[s][2], grads, &r);
                report("backward subset", bc[b].name, sz[s][0], sz[s][1], sz[s][2]);
            }
    for (int b = 0; b < nb; b++) matmul_ctx_free(&bc[b].ctx);
}

/* The own backend sums every element in a fixed k order owned by one thread,
 * so 1, 2 and 3 threads must give identical bits (not merely close). Shapes:
 * one chunk per thread, and long sides cut into 4 chunks per thread (rows:
 * dweight with OC = 1700; columns: forward with OC = 4500), and row chunks
 * over a shared packed B of several blocks. */
static void same_bits_case(int N, int C, int OC) {
#ifdef _OPENMP
    trng r = {4};
    float *inp = rand_buf((size_t)N * C, &r), *w = rand_buf((size_t)OC * C, &r);
    float *bias = rand_buf((size_t)OC, &r), *dout = rand_buf((size_t)N * OC, &r);
    float *res[3][4];
    int saved = omp_get_max_threads();
    for (int t = 0; t < 3; t++) {
        omp_set_num_threads(t + 1);
        res[t][0] = malloc((size_t)N * OC * sizeof(float));
        res[t][1] = calloc((size_t)N * C, sizeof(float));
        res[t][2] = calloc((size_t)OC * C, sizeof(float));
        res[t][3] = calloc((size_t)OC, sizeof(float));
        matmul_forward(res[t][0], inp, w, bias, N, C, OC);
        matmul_backward(res[t][1], res[t][2], res[t][3], dout, inp, w, N, C, OC);
    }
    omp_set_num_threads(saved);
    size_t len[4] = {(size_t)N * OC, (size_t)N * C, (size_t)OC * C, (size_t)OC};
    for (int t = 1; t < 3; t++)
        for (int k = 0; k < 4; k++) CHECK(memcmp(res[0][k], res[t][k], len[k] * sizeof(float)) == 0);
    for (int t = 0; t < 3; t++)
        for (int k = 0; k < 4; k++) free(res[t][k]);
    free(inp); free(w); free(bias); free(dout);
#else
    (void)N; (void)C; (void)OC;
#endif
}

TEST(matmul_own_same_bits_for_any_thread_count) {
    same_bits_case(150, 300, 97);
    same_bits_case(8, 40, 4500);
    same_bits_case(9, 20, 1700);
    /* rows split over a B packed once for all threads, with several (jc, pc)
     * blocks in it: Ncols = 1050 > NC, depth 260 > KC (forward), and 5 depth
     * blocks for dinp */
    same_bits_case(1100, 260, 1050);
}

/* Packed weights (matmul_pack_weight) change where B comes from, not the
 * tiles or the k order, so the forward must give the unpacked forward's
 * bits for each ISA, with and without bias, at 1 and 2 threads, over the odd
 * sizes (edges in every direction, K past KC, Ncols past NC) and the row
 * counts of a prefill (64). The naive backend falls back to the borrowed
 * weight. Bad sizes are refused. */
TEST(matmul_packed_weights_same_bits_as_unpacked) {
    static const matmul_isa isas[] = {MATMUL_ISA_SCALAR, MATMUL_ISA_AVX2, MATMUL_ISA_AVX512};
    static const int extra[][3] = {{64, 288, 768}, {64, 768, 288}, {17, 260, 1050}};
    trng r = {11};
    for (int s = 0; s < NSIZES + 3; s++) {
        const int *sz = s < NSIZES ? sizes[s] : extra[s - NSIZES];
        const int N = sz[0], C = sz[1], OC = sz[2];
        float *inp = rand_buf((size_t)N * C, &r), *w = rand_buf((size_t)OC * C, &r), *bias = rand_buf((size_t)OC, &r);
        float *a = malloc((size_t)N * OC * sizeof(float)), *b = malloc((size_t)N * OC * sizeof(float));
        for (int i = 0; i < 3; i++) {
            if (!matmul_isa_supported(isas[i])) continue;
            matmul_ctx ctx;
            matmul_ctx_init(&ctx, MATMUL_OWN);
            ctx.isa = isas[i];
            matmul_packed p;
            CHECK_EQ_INT(matmul_pack_weight(&ctx, &p, w, C, OC), 0);
            for (int t = 1; t <= 2; t++) {
#ifdef _OPENMP
                int saved = omp_get_max_threads();
                omp_set_num_threads(t);
#endif
                for (int wb = 0; wb < 2; wb++) {
                    matmul_forward_ctx(&ctx, a, inp, w, wb ? bias : NULL, N, C, OC);
                    memset(b, 0xff, (size_t)N * OC * sizeof(float));   /* NaNs: every element must be written */
                    matmul_forward_packed(&ctx, b, inp, &p, wb ? bias : NULL, N);
                    CHECK(memcmp(a, b, (size_t)N * OC * sizeof(float)) == 0);
                    report("packed forward", matmul_isa_name(isas[i]), N, C, OC);
                }
#ifdef _OPENMP
                omp_set_num_threads(saved);
#endif
            }
            matmul_packed_free(&p);
            matmul_ctx_free(&ctx);
        }
        matmul_ctx naive;
        matmul_ctx_init(&naive, MATMUL_NAIVE);
        matmul_packed p;
        CHECK_EQ_INT(matmul_pack_weight(NULL, &p, w, C, OC), 0);
        matmul_forward_naive(a, inp, w, bias, N, C, OC);
        matmul_forward_packed(&naive, b, inp, &p, bias, N);
        CHECK(memcmp(a, b, (size_t)N * OC * sizeof(float)) == 0);
        matmul_packed_free(&p);
        matmul_ctx_free(&naive);
        free(inp); free(w); free(bias); free(a); free(b);
    }
    matmul_packed p;
    float one = 1.0f;
    CHECK_EQ_INT(matmul_pack_weight(NULL, &p, &one, 0, 1), -1);
    CHECK_EQ_INT(matmul_pack_weight(NULL, &p, NULL, 1, 1), -1);
    CHECK(p.data == NULL);
    matmul_packed_free(&p);   /* empty: fine */
}

/* The 12 x 32 AVX-512 kernels (both broadcast forms) and the 8 x 32 one
 * must give the same bits for the same element: each is the same FMA chain
 * over k from zero, then the same SET / ADD / SET_BIAS step. Checked on one
 * packed 12-row A panel (a_ks = 12, which the 8-row kernel also reads: rows
 * 0..7 from a, rows 4..11 from a + 4; the 4-row edge kernel rows 8..11
 * from a + 8) against kc = 1, 7, 256 and a C with a row stride wider than
 * the tile. */
TEST(matmul_avx512_12_and_8_row_kernels_same_bits) {
    if (!matmul_isa_supported(MATMUL_ISA_AVX512)) return;
    enum { KMAX = 256, LDC = 40 };
    static const int kcs[] = {1, 7, KMAX};
    trng r = {29};
    float *a = rand_buf((size_t)KMAX * 12, &r), *b = rand_buf((size_t)KMAX * 32, &r);
    float *bias = rand_buf(32, &r), *c0 = rand_buf((size_t)12 * LDC, &r);
    float c12[12 * LDC], c12r[12 * LDC], c8[12 * LDC], hi[12 * LDC], c4[12 * LDC];
    for (int q = 0; q < 3; q++)
        for (int mode = MATMUL_UKR_SET; mode <= MATMUL_UKR_SET_BIAS; mode++) {
            const size_t kc = (size_t)kcs[q];
            memcpy(c12, c0, sizeof c12);
            memcpy(c8, c0, sizeof c8);
            memcpy(hi, c0, sizeof hi);
            memcpy(c12r, c0, sizeof c12r);
            matmul_ukr_avx512_12(kc, a, 12, b, 32, c12, LDC, mode, bias);
            matmul_ukr_avx512_12r(kc, a, 12, b, 32, c12r, LDC, mode, bias);
            CHECK(memcmp(c12, c12r, sizeof c12) == 0);
            matmul_ukr_avx512(kc, a, 12, b, 32, c8, LDC, mode, bias);                 /* rows 0..7 */
            matmul_ukr_avx512(kc, a + 4, 12, b, 32, hi + 4 * LDC, LDC, mode, bias);   /* rows 4..11 */
            memcpy(c8 + 8 * LDC, hi + 8 * LDC, (size_t)4 * LDC * sizeof(float));
            CHECK(memcmp(c12, c8, sizeof c12) == 0);
            CHECK(memcmp(hi + 4 * LDC, c8 + 4 * LDC, (size_t)4 * LDC * sizeof(float)) == 0);
            /* the 4-row kernel: rows 8..11 as the 12-row one, nothing else touched */
            memcpy(c4, c0, sizeof c4);
            matmul_ukr_avx512_4(kc, a + 8, 12, b, 32, c4 + 8 * LDC, LDC, mode, bias);
            CHECK(memcmp(c4 + 8 * LDC, c12 + 8 * LDC, (size_t)4 * LDC * sizeof(float)) == 0);
            CHECK(memcmp(c4, c0, (size_t)8 * LDC * sizeof(float)) == 0);
        }
    free(a); free(b); free(bias); free(c0);
}

/* The kernel variants (8-row with A in place, 12-row with A packed and, at
 * 2+ threads, shared, in both broadcast forms) and the tuner that switches between them must not
 * change a bit: forward, and a backward that accumulates into nonzero
 * gradients, at 1 and 2 threads, over the odd sizes plus GPT shapes that
 * take the shared-A split (N = 64, 300 rows <= MC_MAX, wide Ncols), each
 * kernel in both loop orders. AUTO is run twelve times so that it goes
 * through every variant (a cold call, then one call each of 8). */
TEST(matmul_kernel_variants_and_tuner_same_bits) {
    static const int extra[][3] = {{64, 288, 768}, {64, 768, 288}, {300, 130, 1100}};
    static const matmul_kernel kinds[] = {MATMUL_KERNEL_8,  MATMUL_KERNEL_12, MATMUL_KERNEL_12R, MATMUL_KERNEL_8,
                                          MATMUL_KERNEL_12, MATMUL_KERNEL_12R, MATMUL_KERNEL_AUTO, MATMUL_KERNEL_AUTO};
    static const matmul_order orders[] = {MATMUL_ORDER_AB, MATMUL_ORDER_AB, MATMUL_ORDER_AB, MATMUL_ORDER_BA,
                                          MATMUL_ORDER_BA, MATMUL_ORDER_BA, MATMUL_ORDER_AUTO, MATMUL_ORDER_BA};
    enum { NKINDS = sizeof kinds / sizeof kinds[0] };
    trng r = {31};
    for (int s = 0; s < NSIZES + 3; s++) {
        const int *sz = s < NSIZES ? sizes[s] : extra[s - NSIZES];
        const int N = sz[0], C = sz[1], OC = sz[2];
        const size_t no = (size_t)N * OC, ni = (size_t)N * C, nw = (size_t)OC * C;
        float *inp = rand_buf(ni, &r), *w = rand_buf(nw, &r), *bias = rand_buf((size_t)OC, &r);
        float *dout = rand_buf(no, &r), *di0 = rand_buf(ni, &r), *dw0 = rand_buf(nw, &r);
        float *ref[3] = {NULL, NULL, NULL};
        for (int t = 1; t <= 2; t++) {
#ifdef _OPENMP
            int saved = omp_get_max_threads();
            omp_set_num_threads(t);
#endif
            for (int k = 0; k < NKINDS; k++) {
                matmul_ctx ctx;
                matmul_ctx_init(&ctx, MATMUL_OWN);
                ctx.kernel = kinds[k];
                ctx.order = orders[k];
                for (int rep = 0; rep < (kinds[k] == MATMUL_KERNEL_AUTO ? 12 : 1); rep++) {
                    float *out = malloc(no * sizeof(float)), *di = copy_buf(di0, ni), *dw = copy_buf(dw0, nw);
                    float *dw_only = copy_buf(dw0, nw);
                    matmul_forward_ctx(&ctx, out, inp, w, bias, N, C, OC);
                    matmul_backward_ctx(&ctx, di, dw, NULL, dout, inp, w, N, C, OC);
                    matmul_backward_ctx(&ctx, NULL, dw_only, NULL, dout, inp, w, N, C, OC);   /* no dinp */
                    CHECK(memcmp(dw_only, dw, nw * sizeof(float)) == 0);
                    free(dw_only);
                    if (!ref[0]) {
                        ref[0] = out, ref[1] = di, ref[2] = dw;
                        continue;
                    }
                    CHECK(memcmp(out, ref[0], no * sizeof(float)) == 0);
                    CHECK(memcmp(di, ref[1], ni * sizeof(float)) == 0);
                    CHECK(memcmp(dw, ref[2], nw * sizeof(float)) == 0);
                    report("kernel variant", matmul_kernel_name(kinds[k]), N, C, OC);
                    free(out); free(di); free(dw);
                }
                matmul_ctx_free(&ctx);
            }
#ifdef _OPENMP
            omp_set_num_threads(saved);
#endif
        }
        for (int k = 0; k < 3; k++) free(ref[k]);
        free(inp); free(w); free(bias); free(dout); free(di0); free(dw0);
    }
}

/* The tuner's policy on made-up timings: the first call uncounted (cold),
 * every variant timed during the warm-up, then the fastest, another
 * re-timed once in MATMUL_TUNE_PROBE calls, a switch when the timings
 * cross, and variant 0 with no slot once the table is full. */
TEST(matmul_tuner_picks_the_faster_variant) {
    matmul_tuner t;
    matmul_tune_reset(&t);
    int slot, seen[2] = {0, 0};
    /* the cold call (its time, however slow, is not counted), then the
     * warm-up: variant 1 twice as fast */
    int v = matmul_tune_pick(&t, 64, 128, 256, 0, 2, &slot);
    CHECK_EQ_INT(v, 0);
    CHECK_EQ_INT(slot, 0);
    matmul_tune_record(&t, slot, v, 1e-9);   /* would win if it counted */
    for (int i = 0; i < 2 * MATMUL_TUNE_WARMUP; i++) {
        v = matmul_tune_pick(&t, 64, 128, 256, 0, 2, &slot);
        seen[v]++;
        matmul_tune_record(&t, slot, v, v ? 1.0 : 2.0);
    }
    CHECK_EQ_INT(seen[0], MATMUL_TUNE_WARMUP);
    CHECK_EQ_INT(seen[1], MATMUL_TUNE_WARMUP);
    int ones = 0, zeros = 0;
    for (int i = 0; i < 4 * MATMUL_TUNE_PROBE; i++) {
        v = matmul_tune_pick(&t, 64, 128, 256, 0, 2, &slot);
        if (v) ones++;
        else zeros++;
        matmul_tune_record(&t, slot, v, v ? 1.0 : 2.0);
    }
    CHECK_EQ_INT(zeros, 4);   /* one probe per MATMUL_TUNE_PROBE calls */
    CHECK_EQ_INT(ones, 4 * MATMUL_TUNE_PROBE - 4);
    /* variant 1 becomes slow: within a few calls the tuner moves to 0 */
    int last = 1;
    for (int i = 0; i < 2 * MATMUL_TUNE_PROBE; i++) {
        last = matmul_tune_pick(&t, 64, 128, 256, 0, 2, &slot);
        matmul_tune_record(&t, slot, last, last ? 5.0 : 2.0);
    }
    CHECK_EQ_INT(last, 0);
    /* another kind of the same shape is another slot */
    matmul_tune_pick(&t, 64, 128, 256, 1, 2, &slot);
    CHECK_EQ_INT(slot, 1);
    /* a full table: variant 0, nothing recorded */
    for (int i = 2; i < MATMUL_TUNE_SLOTS; i++) matmul_tune_pick(&t, i, 1, 1, 0, 2, &slot);
    CHECK_EQ_INT(t.nslots, MATMUL_TUNE_SLOTS);
    CHECK_EQ_INT(matmul_tune_pick(&t, 999, 1, 1, 0, 2, &slot), 0);
    CHECK_EQ_INT(slot, -1);
    matmul_tune_record(&t, -1, 0, 1.0);   /* ignored */
    CHECK_EQ_INT(matmul_tune_pick(NULL, 1, 1, 1, 0, 2, &slot), 0);
    CHECK_EQ_INT(slot, -1);
    matmul_tune_record(NULL, 0, 0, 1.0);  /* ignored */
    matmul_tune_record(&t, 0, MATMUL_TUNE_MAXV, 1.0);   /* ignored: no such variant */
    CHECK_EQ_INT(matmul_tune_pick(&t, 64, 128, 256, 0, 1, &slot), 0);   /* a bad count: no slot */
    CHECK_EQ_INT(slot, -1);
    CHECK_EQ_INT(matmul_tune_pick(&t, 64, 128, 256, 0, MATMUL_TUNE_MAXV + 1, &slot), 0);
    CHECK_EQ_INT(slot, -1);
}

/* Several variants (here 3 and the most, MATMUL_TUNE_MAXV): each timed
 * MATMUL_TUNE_WARMUP times after the cold call, then the fastest (the
 * last), the probes going to each of the others in turn. */
TEST(matmul_tuner_several_variants) {
    for (int nv = 3; nv <= MATMUL_TUNE_MAXV; nv += MATMUL_TUNE_MAXV - 3) {
        matmul_tuner t;
        matmul_tune_reset(&t);
        int slot, seen[MATMUL_TUNE_MAXV] = {0};
        for (int i = 0; i < 1 + nv * MATMUL_TUNE_WARMUP; i++) {
            int v = matmul_tune_pick(&t, 8, 8, 8, 0, nv, &slot);
            CHECK(v >= 0 && v < nv);
            if (i > 0) seen[v]++;
            matmul_tune_record(&t, slot, v, (double)(nv - v));
        }
        for (int v = 0; v < nv; v++) CHECK_EQ_INT(seen[v], MATMUL_TUNE_WARMUP);
        memset(seen, 0, sizeof seen);
        const int rounds = (nv - 1) * 2;   /* every other variant probed twice */
        for (int i = 0; i < rounds * MATMUL_TUNE_PROBE; i++) {
            int v = matmul_tune_pick(&t, 8, 8, 8, 0, nv, &slot);
            seen[v]++;
            matmul_tune_record(&t, slot, v, (double)(nv - v));
        }
        for (int v = 0; v < nv - 1; v++) CHECK_EQ_INT(seen[v], 2);
        CHECK_EQ_INT(seen[nv - 1], rounds * MATMUL_TUNE_PROBE - rounds);
    }
}

/* An overwritten dbias is summed from dweight's packed A panels (the own
 * backend) instead of by its own pass over dout: the bits must be those of
 * the separate sum (accumulating into zeros), in each of dweight's plans:
 * row chunks with a shared B (N = 37 and N = 300, two k blocks) and column
 * chunks, where only the chunk holding column 0 may sum (N x C past the
 * shared-B limit, C >= OC), at 1 and 2 threads. */
TEST(matmul_dbias_from_packing_same_bits_every_plan) {
    static const int shapes[][3] = {{37, 19, 300}, {300, 19, 37}, {700, 3100, 40}};   /* N, C, OC */
    trng r = {41};
    for (int s = 0; s < 3; s++) {
        const int N = shapes[s][0], C = shapes[s][1], OC = shapes[s][2];
        float *dout = rand_buf((size_t)N * OC, &r), *inp = rand_buf((size_t)N * C, &r);
        float *w = rand_buf((size_t)OC * C, &r), *dw = rand_buf((size_t)OC * C, &r);
        float *db0 = calloc((size_t)OC, sizeof(float)), *db1 = rand_buf((size_t)OC, &r);
        for (int t = 1; t <= 2; t++) {
#ifdef _OPENMP
            int saved = omp_get_max_threads();
            omp_set_num_threads(t);
#endif
            matmul_ctx ctx;
            matmul_ctx_init(&ctx, MATMUL_OWN);
            memset(db0, 0, (size_t)OC * sizeof(float));
            matmul_backward_flags_ctx(&ctx, 0, NULL, dw, db0, dout, inp, w, N, C, OC);   /* separate pass */
            matmul_backward_flags_ctx(&ctx, MATMUL_SET_DPARAMS, NULL, dw, db1, dout, inp, w, N, C, OC);
            CHECK(memcmp(db0, db1, (size_t)OC * sizeof(float)) == 0);
            matmul_ctx_free(&ctx);
#ifdef _OPENMP
            omp_set_num_threads(saved);
#endif
        }
        free(dout); free(inp); free(w); free(dw); free(db0); free(db1);
    }
}

/* matmul_backward_mul_ctx multiplies dinp by a factor in each tile's
 * epilogue: the bits must be those of the product followed by a separate
 * multiply, for every backend, both own kernel variants, 1 and 2 threads,
 * odd sizes and a depth past one k block (OC = 300), and only dinp may
 * change (dweight, dbias as matmul_backward_flags_ctx gives them). */
TEST(matmul_backward_mul_same_bits_as_separate_multiply) {
    static const int shapes[][3] = {{37, 19, 300}, {64, 288, 768}, {5, 33, 7}};   /* N, C, OC */
    static const matmul_backend bes[] = {MATMUL_OWN, MATMUL_NAIVE, MATMUL_BLAS};
    static const matmul_kernel kinds[] = {MATMUL_KERNEL_8, MATMUL_KERNEL_12};
    trng r = {43};
    for (int s = 0; s < 3; s++) {
        const int N = shapes[s][0], C = shapes[s][1], OC = shapes[s][2];
        const size_t ni = (size_t)N * C, nw = (size_t)OC * C;
        float *dout = rand_buf((size_t)N * OC, &r), *inp = rand_buf(ni, &r), *w = rand_buf(nw, &r);
        float *mul = rand_buf(ni, &r), *di0 = rand_buf(ni, &r), *di1 = rand_buf(ni, &r);
        float *dw0 = rand_buf(nw, &r), *dw1 = rand_buf(nw, &r), *db0 = rand_buf((size_t)OC, &r), *db1 = rand_buf((size_t)OC, &r);
        for (int q = 0; q < 12; q++) {
#ifdef _OPENMP
            int saved = omp_get_max_threads();
            omp_set_num_threads(1 + q % 2);
#endif
            matmul_ctx ctx;
            matmul_ctx_init(&ctx, bes[q / 4]);
            ctx.kernel = kinds[q / 2 % 2];
            matmul_backward_flags_ctx(&ctx, MATMUL_SET_DINP | MATMUL_SET_DPARAMS, di0, dw0, db0, dout, inp, w, N, C, OC);
            for (size_t i = 0; i < ni; i++) di0[i] *= mul[i];
            matmul_backward_mul_ctx(&ctx, MATMUL_SET_DPARAMS, di1, mul, dw1, db1, dout, inp, w, N, C, OC);
            CHECK(memcmp(di0, di1, ni * sizeof(float)) == 0);
            CHECK(memcmp(dw0, dw1, nw * sizeof(float)) == 0);
            CHECK(memcmp(db0, db1, (size_t)OC * sizeof(float)) == 0);
            matmul_ctx_free(&ctx);
#ifdef _OPENMP
            omp_set_num_threads(saved);
#endif
        }
        free(dout); free(inp); free(w); free(mul); free(di0); free(di1); free(dw0); free(dw1); free(db0); free(db1);
    }
}
