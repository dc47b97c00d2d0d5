/*
 * test_nn_llama.c — the Llama layers in src/nn: RMSNorm and SwiGLU against a
 * double-precision reference written here (forward) and central finite
 * differences of that reference (backward), and the decode matvec's SIMD
 * kernels against its scalar twin.
 *
 * Method (as in test_nn_layers.c): objective L = sum_i out[i] * w[i] with
 * fixed random w in [-1, 1]; finite differences in double with step 1e-5
 * (truncation ~1e-10, rounding ~1e-10, so the numeric gradient is good to
 * ~1e-9). Float-vs-double tolerances: forward rtol 1e-5 + atol 2e-6 (float
 * rounding of sums of a few dozen O(1) terms), backward rtol 1e-4 + atol 2e-5
 * (a sign flip or a missing term is O(0.1..1)). Gradients start at 0.5 and
 * the base is subtracted, so "=" instead of "+=" fails.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"
#ifdef _OPENMP
#include <omp.h>
#endif
#include "nn/matvec.h"
#include "nn/rmsnorm.h"
#include "nn/swiglu.h"
#include "nn/swiglu_impl.h"

#define LFD_EPS 1e-5
#define LFWD_RTOL 1e-5
#define LFWD_ATOL 2e-6
#define LBWD_RTOL 1e-4
#define LBWD_ATOL 2e-5
#define LGRAD_BASE 0.5f

typedef struct { uint64_t s; } lrng;

static float lrng_uniform(lrng *r, float lo, float hi) {   /* xorshift64* (Vigna 2016) */
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    uint32_t u = (uint32_t)((r->s * 2685821657736338717ULL) >> 32);
    return lo + (hi - lo) * (float)(u >> 8) / 16777216.0f;
}

static void lfill(float *x, size_t n, lrng *r, float lo, float hi) {
    for (size_t i = 0; i < n; i++) x[i] = lrng_uniform(r, lo, hi);
}

static void lcheck(const float *got, const double *want, size_t n, double rtol, double atol,
                   double base, const char *what) {
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        double a = (double)got[i] - base, b = want[i];
        double tol = rtol * fmax(fabs(a), fabs(b)) + atol;
        if (!(fabs(a - b) <= tol)) {
            if (bad < 3) test_fail(__FILE__, __LINE__, "%s[%zu]: %.9g vs reference %.9g (tol %.3g)", what, i, a, b, tol);
            bad++;
        }
    }
    if (bad > 3) test_fail(__FILE__, __LINE__, "%s: %d mismatches in all", what, bad);
}

/* ------------------------------------------------------------ rmsnorm */

enum { RN = 3, RC = 13 };

typedef struct { double x[RN * RC], w[RC]; float dw[RN * RC]; double out[RN * RC]; } rms_ctx;

static double rms_ref(rms_ctx *c) {
    double L = 0.0;
    for (int n = 0; n < RN; n++) {
        double ss = 0.0;
        for (int i = 0; i < RC; i++) ss += c->x[n * RC + i] * c->x[n * RC + i];
        double r = 1.0 / sqrt(ss / RC + 1e-5);
        for (int i = 0; i < RC; i++) {
            c->out[n * RC + i] = c->x[n * RC + i] * r * c->w[i];
            L += c->out[n * RC + i] * c->dw[n * RC + i];
        }
    }
    return L;
}

static void fd(double *g, double *x, size_t n, rms_ctx *c) {
    for (size_t i = 0; i < n; i++) {
        double save = x[i];
        x[i] = save + LFD_EPS;
        double lp = rms_ref(c);
        x[i] = save - LFD_EPS;
        double lm = rms_ref(c);
        x[i] = save;
        g[i] = (lp - lm) / (2.0 * LFD_EPS);
    }
}

TEST(nn_llama_rmsnorm_forward_backward) {
    lrng r = { 0x1234567ULL };
    float x[RN * RC], w[RC], dout[RN * RC], out[RN * RC], rstd[RN];
    lfill(x, RN * RC, &r, -2.0f, 2.0f);
    lfill(w, RC, &r, 0.5f, 1.5f);
    lfill(dout, RN * RC, &r, -1.0f, 1.0f);
    rms_ctx c;
    for (int i = 0; i < RN * RC; i++) c.x[i] = x[i], c.dw[i] = dout[i];
    for (int i = 0; i < RC; i++) c.w[i] = w[i];
    rms_ref(&c);
    rmsnorm_forward(out, rstd, x, w, RN, RC, RMSNORM_EPS);
    lcheck(out, c.out, RN * RC, LFWD_RTOL, LFWD_ATOL, 0.0, "rmsnorm out");
    /* In place (out aliasing inp) gives the same values. */
    float xin[RN * RC];
    memcpy(xin, x, sizeof x);
    rmsnorm_forward(xin, NULL, xin, w, RN, RC, RMSNORM_EPS);
    for (int i = 0; i < RN * RC; i++) CHECK(xin[i] == out[i]);

    float dx[RN * RC], dwt[RC];
    for (int i = 0; i < RN * RC; i++) dx[i] = LGRAD_BASE;
    for (int i = 0; i < RC; i++) dwt[i] = LGRAD_BASE;
    rmsnorm_backward(dx, dwt, dout, x, w, rstd, RN, RC);
    double gx[RN * RC], gw[RC];
    fd(gx, c.x, RN * RC, &c);
    fd(gw, c.w, RC, &c);
    lcheck(dx, gx, RN * RC, LBWD_RTOL, LBWD_ATOL, LGRAD_BASE, "rmsnorm dinp");
    lcheck(dwt, gw, RC, LBWD_RTOL, LBWD_ATOL, LGRAD_BASE, "rmsnorm dweight");
}

/* ------------------------------------------------------------ swiglu */

TEST(nn_llama_swiglu_forward_backward) {
    enum { SN = 37 };
    lrng r = { 0xabcdefULL };
    float g[SN], u[SN], dout[SN], out[SN];
    lfill(g, SN, &r, -6.0f, 6.0f);
    lfill(u, SN, &r, -2.0f, 2.0f);
    lfill(dout, SN, &r, -1.0f, 1.0f);
    swiglu_forward(out, g, u, SN);
    double want[SN], gg[SN], gu[SN];
    for (int i = 0; i < SN; i++) {
        double gd = g[i], ud = u[i];
        want[i] = gd / (1.0 + exp(-gd)) * ud;
        /* central differences of the double forward, per element (the op is elementwise) */
        double h = LFD_EPS;
        double fp = (gd + h) / (1.0 + exp(-(gd + h))) * ud, fm = (gd - h) / (1.0 + exp(-(gd - h))) * ud;
        gg[i] = (fp - fm) / (2 * h) * dout[i];
        fp = gd / (1.0 + exp(-gd)) * (ud + h);
        fm = gd / (1.0 + exp(-gd)) * (ud - h);
        gu[i] = (fp - fm) / (2 * h) * dout[i];
    }
    lcheck(out, want, SN, LFWD_RTOL, LFWD_ATOL, 0.0, "swiglu out");
    float dg[SN], du[SN];
    for (int i = 0; i < SN; i++) dg[i] = du[i] = LGRAD_BASE;
    swiglu_backward(dg, du, dout, g, u, SN);
    lcheck(dg, gg, SN, LBWD_RTOL, LBWD_ATOL, LGRAD_BASE, "swiglu dgate");
    lcheck(du, gu, SN, LBWD_RTOL, LBWD_ATOL, LGRAD_BASE, "swiglu dup");
}

/* The dispatched SwiGLU (the AVX-512 copy where the CPU has it, threads
 * past SWIGLU_OMP_MIN) must give the bits of the portable loop of
 * swiglu_impl.h, and stay accurate where the sigmoid saturates: over
 * g in [-100, 100] (past nn_expf's clamp at 87/88) the forward is within
 * 1e-5 relative + 1e-30 of the double formula (a few float roundings; an
 * exp overflowing to inf would give NaN or 0 where the value is not 0). */
TEST(nn_llama_swiglu_simd_same_bits_and_saturation) {
    enum { N = 70001 };
    lrng r = { 0x5eedULL };
    float *g = malloc(N * sizeof(float)), *u = malloc(N * sizeof(float)), *d = malloc(N * sizeof(float));
    float *o1 = malloc(N * sizeof(float)), *o2 = malloc(N * sizeof(float));
    float *a1 = malloc(N * sizeof(float)), *a2 = malloc(N * sizeof(float));
    float *b1 = malloc(N * sizeof(float)), *b2 = malloc(N * sizeof(float));
    lfill(g, N, &r, -100.0f, 100.0f);
    lfill(u, N, &r, -2.0f, 2.0f);
    lfill(d, N, &r, -1.0f, 1.0f);
    g[0] = 87.5f, g[1] = -87.5f, g[2] = 88.5f, g[3] = -88.5f, g[4] = 0.0f;
    swiglu_forward(o1, g, u, N);
    swiglu_forward_impl(o2, g, u, N);
    CHECK(memcmp(o1, o2, N * sizeof(float)) == 0);
    for (int i = 0; i < N; i++) a1[i] = a2[i] = b1[i] = b2[i] = LGRAD_BASE;
    swiglu_backward(a1, b1, d, g, u, N);
    swiglu_backward_impl(a2, b2, d, g, u, N);
    CHECK(memcmp(a1, a2, N * sizeof(float)) == 0);
    CHECK(memcmp(b1, b2, N * sizeof(float)) == 0);
    int bad = 0;
    for (int i = 0; i < N; i++) {
        double gd = g[i], want = gd / (1.0 + exp(-gd)) * u[i];
        if (!(fabs(o1[i] - want) <= 1e-5 * fabs(want) + 1e-30)) bad++;
    }
    CHECK_EQ_INT(bad, 0);
    free(g), free(u), free(d), free(o1), free(o2), free(a1), free(a2), free(b1), free(b2);
}

/* ------------------------------------------------------------ matvec */

/* Every ISA against the scalar twin, on shapes that exercise each tail (C
 * not a multiple of 8/16/32, OC not a multiple of the row unroll). Tolerance
 * 1e-5 relative + 1e-5 absolute: sums of <= 300 products of O(1) terms in a
 * different order differ by ~300 * 6e-8 relative; a wrong element or a
 * dropped tail is O(0.1). Each ISA must also give the same bits with one
 * thread and with all (the rows are reduced by one thread each). */
TEST(nn_llama_matvec_isas_match_scalar) {
    static const int shapes[][2] = { { 288, 37 }, { 7, 5 }, { 300, 130 }, { 33, 16 }, { 1, 3 } };
    lrng r = { 42 };
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int C = shapes[s][0], OC = shapes[s][1];
        float *w = malloc((size_t)C * OC * sizeof(float)), *x = malloc((size_t)C * sizeof(float));
        float *ref = malloc((size_t)OC * sizeof(float)), *got = malloc((size_t)OC * sizeof(float));
        lfill(w, (size_t)C * OC, &r, -1.0f, 1.0f);
        lfill(x, (size_t)C, &r, -1.0f, 1.0f);
        double want[512];
        for (int o = 0; o < OC; o++) {
            double acc = 0.0;
            for (int c = 0; c < C; c++) acc += (double)w[(size_t)o * C + c] * x[c];
            want[o] = acc;
        }
        matvec_forward_naive(ref, x, w, C, OC);
        lcheck(ref, want, (size_t)OC, 1e-5, 1e-5, 0.0, "matvec naive");
        for (int isa = MATVEC_ISA_SCALAR; isa <= MATVEC_ISA_AVX512; isa++) {
            if (!matvec_isa_supported((matvec_isa)isa)) continue;
            matvec_forward_isa((matvec_isa)isa, got, x, w, C, OC);
            lcheck(got, want, (size_t)OC, 1e-5, 1e-5, 0.0, matvec_isa_name((matvec_isa)isa));
        }
        free(w), free(x), free(ref), free(got);
    }
    /* Big enough to be split across threads: 1 thread vs all, same bits. */
    int C = 300, OC = 517;
    float *w = malloc((size_t)C * OC * sizeof(float)), *x = malloc((size_t)C * sizeof(float));
    float *a = malloc((size_t)OC * sizeof(float)), *b = malloc((size_t)OC * sizeof(float));
    lfill(w, (size_t)C * OC, &r, -1.0f, 1.0f);
    lfill(x, (size_t)C, &r, -1.0f, 1.0f);
#ifdef _OPENMP
    int nt = omp_get_max_threads();
    omp_set_num_threads(1);
#endif
    matvec_forward(a, x, w, C, OC);
#ifdef _OPENMP
    omp_set_num_threads(nt > 1 ? nt : 2);
#endif
    matvec_forward(b, x, w, C, OC);
#ifdef _OPENMP
    omp_set_num_threads(nt);
#endif
    CHECK(memcmp(a, b, (size_t)OC * sizeof(float)) == 0);
    /* The fused form: same bits as the separate calls (rows 0..99 and
     * 100..516 of w as two products). */
    float *outs[2] = { b, b + 100 };
    const float *ws[2] = { w, w + (size_t)100 * C };
    int ocs[2] = { 100, OC - 100 };
    memset(b, 0, (size_t)OC * sizeof(float));
    matvec_forward_multi(2, outs, ws, ocs, x, C);
    CHECK(memcmp(a, b, (size_t)OC * sizeof(float)) == 0);
    free(w), free(x), free(a), free(b);
}

/* ------------------------------------------------------------ bf16 */

TEST(nn_llama_bf16_rounding) {
    CHECK_EQ_INT(bf16_from_float(1.0f), 0x3F80);
    CHECK_EQ_INT(bf16_from_float(-2.0f), 0xC000);
    /* 1 + 2^-8 lies halfway between 0x3F80 and 0x3F81: ties go to even. */
    CHECK_EQ_INT(bf16_from_float(1.0f + 0x1p-8f), 0x3F80);
    CHECK_EQ_INT(bf16_from_float(1.0f + 3 * 0x1p-8f), 0x3F82);
    CHECK_EQ_INT(bf16_from_float(1.0f + 0x1p-8f + 0x1p-20f), 0x3F81);   /* above the tie: up */
    CHECK_EQ_INT(bf16_from_float(INFINITY), 0x7F80);
    CHECK(isnan(bf16_to_float(bf16_from_float(NAN))));
    CHECK(bf16_to_float(0x3F81) == 1.0f + 0x1p-7f);
    /* Largest finite float rounds up to infinity, as IEEE rounding does. */
    CHECK_EQ_INT(bf16_from_float(3.4028235e38f), 0x7F80);
}

/* bf16 matvec, every ISA, against a double product of the widened bf16
 * weights: the same tolerance argument as the fp32 test (only the summation
 * order differs), and one thread vs all gives the same bits. */
TEST(nn_llama_bf16_matvec_isas) {
    static const int shapes[][2] = { { 288, 37 }, { 7, 5 }, { 300, 130 }, { 33, 17 } };
    lrng r = { 77 };
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int C = shapes[s][0], OC = shapes[s][1];
        float *wf = malloc((size_t)C * OC * sizeof(float)), *x = malloc((size_t)C * sizeof(float));
        uint16_t *wb = malloc((size_t)C * OC * sizeof(uint16_t));
        float *got = malloc((size_t)OC * sizeof(float));
        lfill(wf, (size_t)C * OC, &r, -1.0f, 1.0f);
        lfill(x, (size_t)C, &r, -1.0f, 1.0f);
        bf16_convert(wb, wf, (size_t)C * OC);
        double want[512], want_xr[512];
        for (int o = 0; o < OC; o++) {
            double acc = 0.0, acc_xr = 0.0;
            for (int c = 0; c < C; c++) {
                double w = (double)bf16_to_float(wb[(size_t)o * C + c]);
                acc += w * x[c];
                acc_xr += w * (double)bf16_to_float(bf16_from_float(x[c]));
            }
            want[o] = acc;
            want_xr[o] = acc_xr;
        }
        for (int isa = MATVEC_ISA_SCALAR; isa <= MATVEC_ISA_AVX512BF16_XR; isa++) {
            if (!matvec_isa_supported((matvec_isa)isa)) continue;
            matvec_bf16_forward_isa((matvec_isa)isa, got, x, wb, C, OC);
            /* AVX512-BF16 keeps x to 2^-17 relative (hi + lo split): over
             * <= 300 terms |w x| <= 1 that adds <= 300 * 7.6e-6 = 2.3e-3 in
             * the worst case, ~4e-5 typically; allow 2e-4 absolute. The
             * rounded-x kernel is checked against the sum with x rounded to
             * bf16 (its products are then exact): float sums only, 1e-5. */
            double atol = isa == MATVEC_ISA_AVX512BF16 ? 2e-4 : 1e-5;
            lcheck(got, isa == MATVEC_ISA_AVX512BF16_XR ? want_xr : want, (size_t)OC, 1e-5, atol, 0.0,
                   matvec_isa_name((matvec_isa)isa));
        }
        free(wf), free(x), free(wb), free(got);
    }
    int C = 600, OC = 517;
    uint16_t *wb = malloc((size_t)C * OC * sizeof(uint16_t));
    float *wf = malloc((size_t)C * OC * sizeof(float)), *x = malloc((size_t)C * sizeof(float));
    float *a = malloc((size_t)OC * sizeof(float)), *b = malloc((size_t)OC * sizeof(float));
    lfill(wf, (size_t)C * OC, &r, -1.0f, 1.0f);
    lfill(x, (size_t)C, &r, -1.0f, 1.0f);
    bf16_convert(wb, wf, (size_t)C * OC);
#ifdef _OPENMP
    int nt = omp_get_max_threads();
    omp_set_num_threads(1);
#endif
    matvec_bf16_forward(a, x, wb, C, OC);
#ifdef _OPENMP
    omp_set_num_threads(nt > 1 ? nt : 2);
#endif
    const uint16_t *ws[2] = { wb, wb + (size_t)200 * C };
    float *outs[2] = { b, b + 200 };
    int ocs[2] = { 200, OC - 200 };
    matvec_bf16_forward_multi(2, outs, ws, ocs, x, C);
#ifdef _OPENMP
    omp_set_num_threads(nt);
#endif
    CHECK(memcmp(a, b, (size_t)OC * sizeof(float)) == 0);
    free(wb), free(wf), free(x), free(a), free(b);
}
