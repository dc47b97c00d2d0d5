/*
 * test_nn_layers.c — checks every GPT-2 layer in src/nn (except matmul,
 * tested by its owner) against an independent double-precision reference
 * written here: the float forward against the double forward, and the float
 * backward against central finite differences of the double forward.
 *
 * Method and tolerances (the same for every layer unless a test says so):
 *  - Inputs are drawn as floats, then widened, so the float layer and the
 *    double reference see identical values.
 *  - The scalar objective is L = sum_i out[i] * w[i] with fixed random w in
 *    [-1, 1], so dout = w and every output element matters.
 *  - Finite differences in double with step FD_EPS = 1e-5: truncation error
 *    ~ eps^2 * |f'''| ~ 1e-10, rounding ~ 1e-16 * |L| / eps ~ 1e-10, so the
 *    numeric gradient is good to ~1e-9 — far below the float tolerance.
 *  - The float backward is compared with CHECK_CLOSE(rtol 1e-4, atol 2e-5):
 *    float rounding (6e-8 relative) over at most a few dozen O(1) terms per
 *    element stays under ~1e-5 absolute; a sign flip, a missing term or a
 *    wrong scale changes a gradient by O(0.1..1), far outside.
 *  - Float forward vs double forward: CHECK_CLOSE(rtol 1e-5, atol 2e-6), the
 *    same rounding argument for the forward sums.
 *  - Measured (gcc -O2): the worst error is under 10% of the forward
 *    tolerance and under 1% of the backward one at these sizes.
 *  - Backward functions accumulate: gradient buffers start at GRAD_BASE and
 *    the base is subtracted before comparing, so "=" instead of "+=" fails.
 * Sizes are odd on purpose: B=2, T=5, C=12, NH=3 (HS=4), V=11.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "nn/attention.h"
#include "nn/crossentropy.h"
#include "nn/encoder.h"
#include "nn/gelu.h"
#include "nn/gelu_impl.h"   /* the portable loops, to compare with the dispatched copy */
#include "nn/layernorm.h"
#include "nn/layernorm_impl.h"   /* the portable copy, to compare with the dispatched one */
#include "nn/matmul.h"
#include "nn/posenc.h"
#include "nn/residual.h"

#ifdef _OPENMP
#include <omp.h>
#endif

#define FD_EPS 1e-5
#define FWD_RTOL 1e-5
#define FWD_ATOL 2e-6
#define BWD_RTOL 1e-4
#define BWD_ATOL 2e-5
#define GRAD_BASE 0.5f

enum { TB = 2, TT = 5, TC = 12, TNH = 3, TV = 11 };

/* ------------------------------------------------------------ helpers */

typedef struct { uint64_t s; } trng;

static uint32_t trng_u32(trng *r) {   /* xorshift64* (Vigna 2016) */
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return (uint32_t)((r->s * 2685821657736338717ULL) >> 32);
}
static float trng_uniform(trng *r, float lo, float hi) {
    return lo + (hi - lo) * (float)(trng_u32(r) >> 8) / 16777216.0f;
}
static void fill_uniform(float *x, size_t n, trng *r, float lo, float hi) {
    for (size_t i = 0; i < n; i++) x[i] = trng_uniform(r, lo, hi);
}
static void widen(double *d, const float *f, size_t n) {
    for (size_t i = 0; i < n; i++) d[i] = f[i];
}
static void fill_const(float *x, size_t n, float v) {
    for (size_t i = 0; i < n; i++) x[i] = v;
}
static double dot_w(const double *out, const float *w, size_t n) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += out[i] * (double)w[i];
    return s;
}

/* A layer's double objective L(ctx); finite differences perturb one element
 * of x (one of the double arrays ctx reads) at a time. */
typedef double (*loss_fn)(void *ctx);

static void fd_grad(double *g, double *x, size_t n, loss_fn f, void *ctx) {
    for (size_t i = 0; i < n; i++) {
        double save = x[i];
        x[i] = save + FD_EPS;
        double lp = f(ctx);
        x[i] = save - FD_EPS;
        double lm = f(ctx);
        x[i] = save;
        g[i] = (lp - lm) / (2.0 * FD_EPS);
    }
}

/* Compares an accumulated float gradient (started at GRAD_BASE) with a
 * numeric one; returns the number of mismatches (each reported once). */
static void check_grad(const float *got, const double *want, size_t n, const char *what) {
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        double a = (double)got[i] - (double)GRAD_BASE, b = want[i];
        double tol = BWD_RTOL * fmax(fabs(a), fabs(b)) + BWD_ATOL;
        if (!(fabs(a - b) <= tol)) {
            if (bad < 3)
                test_fail(__FILE__, __LINE__, "%s[%zu]: backward %.9g vs numeric %.9g (tol %.3g)",
                          what, i, a, b, tol);
            bad++;
        }
    }
    if (bad > 3) test_fail(__FILE__, __LINE__, "%s: %d mismatches in all", what, bad);
}

static void check_fwd(const float *got, const double *want, size_t n, const char *what) {
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        double tol = FWD_RTOL * fmax(fabs((double)got[i]), fabs(want[i])) + FWD_ATOL;
        if (!(fabs((double)got[i] - want[i]) <= tol)) {
            if (bad < 3)
                test_fail(__FILE__, __LINE__, "%s[%zu]: float %.9g vs double %.9g (tol %.3g)",
                          what, i, (double)got[i], want[i], tol);
            bad++;
        }
    }
    if (bad > 3) test_fail(__FILE__, __LINE__, "%s: %d mismatches in all", what, bad);
}

/* ------------------------------------------------------------ encoder */

typedef struct {
    const int *inp; double *wte, *wpe; double scale; int B, T, C;
    double *out; const float *w;
} enc_ctx;

static void enc_ref(enc_ctx *c) {
    for (int bt = 0; bt < c->B * c->T; bt++) {
        int t = bt % c->T;
        for (int i = 0; i < c->C; i++)
            c->out[(size_t)bt * c->C + i] = c->wte[(size_t)c->inp[bt] * c->C + i] * c->scale +
                                            (c->wpe ? c->wpe[(size_t)t * c->C + i] : 0.0);
    }
}
static double enc_loss(void *p) {
    enc_ctx *c = p;
    enc_ref(c);
    return dot_w(c->out, c->w, (size_t)c->B * c->T * c->C);
}

static void encoder_case(int with_wpe, float scale) {
    const int B = TB, T = TT, C = TC, V = TV, maxT = T + 2;
    trng r = {12345};
    /* token 3 appears several times so the scatter-add must accumulate */
    int inp[TB * TT] = {3, 0, 10, 3, 7, 3, 5, 10, 1, 3};
    size_t nout = (size_t)B * T * C;
    float wte[TV * TC], wpe[(TT + 2) * TC], out[TB * TT * TC], w[TB * TT * TC];
    fill_uniform(wte, (size_t)V * C, &r, -1, 1);
    fill_uniform(wpe, (size_t)maxT * C, &r, -1, 1);
    fill_uniform(w, nout, &r, -1, 1);
    double wte_d[TV * TC], wpe_d[(TT + 2) * TC], out_d[TB * TT * TC];
    widen(wte_d, wte, (size_t)V * C);
    widen(wpe_d, wpe, (size_t)maxT * C);
    enc_ctx ctx = {inp, wte_d, with_wpe ? wpe_d : NULL, scale, B, T, C, out_d, w};

    encoder_forward(out, inp, wte, with_wpe ? wpe : NULL, scale, B, T, C);
    enc_ref(&ctx);
    check_fwd(out, out_d, nout, "encoder out");

    float dwte[TV * TC], dwpe[(TT + 2) * TC];
    fill_const(dwte, (size_t)V * C, GRAD_BASE);
    fill_const(dwpe, (size_t)maxT * C, GRAD_BASE);
    encoder_backward(dwte, with_wpe ? dwpe : NULL, w, inp, scale, B, T, C);
    double g[(TT + 2) * TC > TV * TC ? (TT + 2) * TC : TV * TC];
    fd_grad(g, wte_d, (size_t)V * C, enc_loss, &ctx);
    check_grad(dwte, g, (size_t)V * C, "dwte");
    if (with_wpe) {
        fd_grad(g, wpe_d, (size_t)maxT * C, enc_loss, &ctx);
        check_grad(dwpe, g, (size_t)maxT * C, "dwpe");
    } else {
        for (size_t i = 0; i < (size_t)maxT * C; i++) CHECK(dwpe[i] == GRAD_BASE);
    }
}

TEST(nn_encoder_gradients_learned) { encoder_case(1, 1.0f); }

/* sinusoidal use: no wpe, embedding scaled by sqrt(C) */
TEST(nn_encoder_gradients_scaled_no_wpe) { encoder_case(0, sqrtf((float)TC)); }

/* ------------------------------------------------------------ posenc */

TEST(nn_posenc_sinusoidal_known_values) {
    float pe[8 * 12];
    sinusoidal_table(pe, 8, 12);
    /* Reference values from Python's math module (double) with the formula of
     * Vaswani et al. §3.5; 1e-6 covers float rounding of values <= 1 (the
     * table rounds once from double, so errors are <= 6e-8). */
    for (int i = 0; i < 12; i++) CHECK_NEAR(pe[i], i % 2 ? 1.0 : 0.0, 1e-6);   /* t = 0 */
    CHECK_NEAR(pe[1 * 12 + 0], 0.8414709848078965, 1e-6);    /* sin(1) */
    CHECK_NEAR(pe[3 * 12 + 2], 0.6022610340763316, 1e-6);    /* sin(3 * 10000^(-2/12)) */
    CHECK_NEAR(pe[7 * 12 + 5], 0.9476790714399449, 1e-6);    /* cos(7 * 10000^(-4/12)) */
    CHECK_NEAR(pe[6 * 12 + 11], 0.9999961220200644, 1e-6);   /* cos(6 * 10000^(-10/12)) */
    CHECK_NEAR(pe[4 * 12 + 10], 0.0018566344667786281, 1e-6);/* sin(4 * 10000^(-10/12)) */
    /* odd C: the last channel is the sine of a pair without its cosine */
    float pe7[6 * 7];
    sinusoidal_table(pe7, 6, 7);
    CHECK_NEAR(pe7[5 * 7 + 6], 0.0018637957811004334, 1e-6);  /* sin(5 * 10000^(-6/7)) */
    CHECK_NEAR(pe7[5 * 7 + 5], 0.9996646817669854, 1e-6);     /* cos(5 * 10000^(-4/7)) */
}

TEST(nn_posenc_add_rows) {
    float out[2 * 3 * 4], table[3 * 4];
    for (int i = 0; i < 24; i++) out[i] = (float)i;
    for (int i = 0; i < 12; i++) table[i] = 100.0f * (float)(i + 1);
    add_rows_forward(out, table, 2, 3, 4);
    /* small integers: exact in float */
    for (int b = 0; b < 2; b++)
        for (int i = 0; i < 12; i++)
            CHECK_EQ_INT((int)out[b * 12 + i], b * 12 + i + 100 * (i + 1));
}

TEST(nn_posenc_alibi_slopes) {
    float s8[8], s4[4], s3[3];
    alibi_slopes(s8, 8);
    /* powers of two are exact in float: exact equality */
    for (int h = 0; h < 8; h++) CHECK(s8[h] == ldexpf(1.0f, -(h + 1)));   /* 1/2 .. 1/256 */
    alibi_slopes(s4, 4);
    for (int h = 0; h < 4; h++) CHECK(s4[h] == ldexpf(1.0f, -2 * (h + 1))); /* 1/4 .. 1/256 */
    /* NH = 3: geometric from 2^(-8/3) with the same ratio; float rounding 1e-7 */
    alibi_slopes(s3, 3);
    CHECK_NEAR(s3[0], 0.15749013123685915, 1e-7);
    CHECK_NEAR(s3[2], 1.0 / 256.0, 1e-9);
}

/* ------------------------------------------------------------ layernorm */

typedef struct {
    double *inp, *weight, *bias; int N, C; double *out; const float *w;
} ln_ctx;

static void ln_ref(ln_ctx *c) {
    for (int n = 0; n < c->N; n++) {
        const double *x = c->inp + (size_t)n * c->C;
        double m = 0.0, v = 0.0;
        for (int i = 0; i < c->C; i++) m += x[i];
        m /= c->C;
        for (int i = 0; i < c->C; i++) v += (x[i] - m) * (x[i] - m);
        v /= c->C;
        double rs = 1.0 / sqrt(v + 1e-5);
        for (int i = 0; i < c->C; i++)
            c->out[(size_t)n * c->C + i] = (x[i] - m) * rs * c->weight[i] + c->bias[i];
    }
}
static double ln_loss(void *p) {
    ln_ctx *c = p;
    ln_ref(c);
    return dot_w(c->out, c->w, (size_t)c->N * c->C);
}

TEST(nn_layernorm_gradients) {
    enum { N = TB * TT, C = TC };
    trng r = {777};
    float inp[N * C], weight[C], bias[C], out[N * C], mean[N], rstd[N], w[N * C];
    fill_uniform(inp, N * C, &r, -2, 2);
    for (int i = 0; i < C; i++) inp[i] += 3.0f;   /* one row with a large mean */
    fill_uniform(weight, C, &r, 0.5f, 1.5f);
    fill_uniform(bias, C, &r, -0.5f, 0.5f);
    fill_uniform(w, N * C, &r, -1, 1);
    double inp_d[N * C], weight_d[C], bias_d[C], out_d[N * C], g[N * C];
    widen(inp_d, inp, N * C);
    widen(weight_d, weight, C);
    widen(bias_d, bias, C);
    ln_ctx ctx = {inp_d, weight_d, bias_d, N, C, out_d, w};

    layernorm_forward(out, mean, rstd, inp, weight, bias, N, C);
    ln_ref(&ctx);
    check_fwd(out, out_d, N * C, "layernorm out");

    float dinp[N * C], dweight[C], dbias[C];
    fill_const(dinp, N * C, GRAD_BASE);
    fill_const(dweight, C, GRAD_BASE);
    fill_const(dbias, C, GRAD_BASE);
    layernorm_backward(dinp, dweight, dbias, w, inp, weight, mean, rstd, N, C);
    fd_grad(g, inp_d, N * C, ln_loss, &ctx);
    check_grad(dinp, g, N * C, "layernorm dinp");
    fd_grad(g, weight_d, C, ln_loss, &ctx);
    check_grad(dweight, g, C, "layernorm dweight");
    fd_grad(g, bias_d, C, ln_loss, &ctx);
    check_grad(dbias, g, C, "layernorm dbias");
}

/* The fused residual + LayerNorm is the two separate calls, bit for bit
 * (also with res aliasing inp1, as the GPT forward does not but the
 * generator might); and the dispatched copy (AVX-512 on such CPUs) gives the
 * portable copy's bits, forward and backward. Odd C, and enough rows for the
 * threaded path. */
TEST(nn_layernorm_fused_and_isa_twins_same_bits) {
    enum { N = 251, C = 77 };
    trng r = {31};
    float *buf = malloc(sizeof(float) * (size_t)N * C * 10);
    CHECK(buf != NULL);
    if (!buf) return;
    float *a = buf, *b = a + N * C, *res = b + N * C, *out = res + N * C, *res2 = out + N * C;
    float *out2 = res2 + N * C, *dy = out2 + N * C, *dx = dy + N * C, *dx2 = dx + N * C, *alias = dx2 + N * C;
    float w[C], bi[C], mean[N], rstd[N], mean2[N], rstd2[N], dw[C], db[C], dw2[C], db2[C];
    fill_uniform(a, N * C, &r, -2, 2);
    fill_uniform(b, N * C, &r, -1, 3);
    fill_uniform(dy, N * C, &r, -1, 1);
    fill_uniform(w, C, &r, 0.5f, 1.5f);
    fill_uniform(bi, C, &r, -0.5f, 0.5f);

    layernorm_residual_forward(res, out, mean, rstd, a, b, w, bi, N, C);
    residual_forward(res2, a, b, (size_t)N * C);
    layernorm_forward(out2, mean2, rstd2, res2, w, bi, N, C);
    CHECK(memcmp(res, res2, sizeof(float) * N * C) == 0);
    CHECK(memcmp(out, out2, sizeof(float) * N * C) == 0);
    CHECK(memcmp(mean, mean2, sizeof mean) == 0 && memcmp(rstd, rstd2, sizeof rstd) == 0);
    memcpy(alias, a, sizeof(float) * N * C);
    layernorm_residual_forward(alias, out2, mean2, rstd2, alias, b, w, bi, N, C);
    CHECK(memcmp(alias, res, sizeof(float) * N * C) == 0 && memcmp(out2, out, sizeof(float) * N * C) == 0);

    layernorm_forward_impl(NULL, out2, mean2, rstd2, res, NULL, w, bi, N, C);
    CHECK(memcmp(out, out2, sizeof(float) * N * C) == 0);
    CHECK(memcmp(mean, mean2, sizeof mean) == 0 && memcmp(rstd, rstd2, sizeof rstd) == 0);
    fill_const(dx, N * C, GRAD_BASE);
    fill_const(dx2, N * C, GRAD_BASE);
    fill_const(dw, C, GRAD_BASE);
    fill_const(dw2, C, GRAD_BASE);
    fill_const(db, C, GRAD_BASE);
    fill_const(db2, C, GRAD_BASE);
    layernorm_backward(dx, dw, db, dy, res, w, mean, rstd, N, C);
    layernorm_backward_impl(0, dx2, dw2, db2, dy, res, w, mean, rstd, N, C);
    CHECK(memcmp(dx, dx2, sizeof(float) * N * C) == 0);
    CHECK(memcmp(dw, dw2, sizeof dw) == 0 && memcmp(db, db2, sizeof db) == 0);
    free(buf);
}

/* ------------------------------------------------------------ gelu */

typedef struct { double *inp; size_t n; double *out; const float *w; } gelu_ctx;

static double gelu_loss(void *p) {
    gelu_ctx *c = p;
    for (size_t i = 0; i < c->n; i++) {
        double x = c->inp[i];
        c->out[i] = 0.5 * x * (1.0 + tanh(sqrt(2.0 / 3.14159265358979323846) * (x + 0.044715 * x * x * x)));
    }
    return dot_w(c->out, c->w, c->n);
}

TEST(nn_gelu_gradients) {
    enum { N = 61 };
    trng r = {4242};
    float inp[N], out[N], w[N], dinp[N];
    fill_uniform(inp, N, &r, -4, 4);
    inp[0] = 0.0f;
    fill_uniform(w, N, &r, -1, 1);
    double inp_d[N], out_d[N], g[N];
    widen(inp_d, inp, N);
    gelu_ctx ctx = {inp_d, N, out_d, w};
    gelu_forward(out, inp, N);
    gelu_loss(&ctx);
    check_fwd(out, out_d, N, "gelu out");
    fill_const(dinp, N, GRAD_BASE);
    gelu_backward(dinp, inp, w, N);
    fd_grad(g, inp_d, N, gelu_loss, &ctx);
    check_grad(dinp, g, N, "gelu dinp");
}

/* The dispatched GELU (intrinsics on AVX-512 CPUs) gives the portable
 * loops' bits, over the exp clamps (|2u| past 87), zeros, NaN and a length
 * with a vector tail and threads; the overwriting backward is the
 * accumulating one into zeros. */
TEST(nn_gelu_isa_twins_same_bits) {
    enum { N = 20011 };
    trng r = {4243};
    float *buf = malloc(sizeof(float) * N * 7);
    CHECK(buf != NULL);
    if (!buf) return;
    float *x = buf, *dy = x + N, *o1 = dy + N, *o2 = o1 + N, *d1 = o2 + N, *d2 = d1 + N, *d3 = d2 + N;
    fill_uniform(x, N, &r, -12, 12);
    fill_uniform(dy, N, &r, -1, 1);
    const float special[] = {0.0f, -0.0f, 60.0f, -60.0f, 1e30f, -1e30f, 1e-30f, NAN};
    for (int i = 0; i < (int)(sizeof special / sizeof special[0]); i++) x[100 + i] = special[i];
    gelu_forward(o1, x, N);
    gelu_forward_impl(o2, x, N);
    CHECK(memcmp(o1, o2, sizeof(float) * N) == 0);
    CHECK(isnan(o1[107]));
    fill_uniform(d1, N, &r, -1, 1);
    memcpy(d2, d1, sizeof(float) * N);
    gelu_backward(d1, x, dy, N);
    gelu_backward_impl(d2, x, dy, N, 0);
    CHECK(memcmp(d1, d2, sizeof(float) * N) == 0);
    fill_const(d1, N, 0.0f);
    gelu_backward(d1, x, dy, N);
    gelu_backward_set(d3, x, dy, N);
    int same = 1;
    for (int i = 0; i < N; i++) same &= d1[i] == d3[i] || (isnan(d1[i]) && isnan(d3[i]));
    CHECK(same);
    /* the training forward: gelu_forward's output, and the derivative that
     * makes the one-multiply backward gelu_backward_set's bits; with the
     * derivative written over the input, as the GPT does, and through the
     * portable copy */
    float *deriv = d1;
    gelu_forward_deriv(o2, deriv, x, N);
    CHECK(memcmp(o1, o2, sizeof(float) * N) == 0);
    gelu_backward_saved(d2, deriv, dy, N);
    CHECK(memcmp(d2, d3, sizeof(float) * N) == 0);
    memcpy(deriv, x, sizeof(float) * N);
    gelu_forward_deriv(o2, deriv, deriv, N);
    gelu_backward_saved(d2, deriv, dy, N);
    CHECK(memcmp(d2, d3, sizeof(float) * N) == 0);
    gelu_forward_deriv_impl(o2, deriv, x, N);
    CHECK(memcmp(o1, o2, sizeof(float) * N) == 0);
    gelu_backward_saved(d2, deriv, dy, N);
    CHECK(memcmp(d2, d3, sizeof(float) * N) == 0);
    free(buf);
}

/* ------------------------------------------------------------ residual */

TEST(nn_residual_forward_backward) {
    enum { N = 37 };
    trng r = {99};
    float a[N], b[N], out[N], dout[N], da[N], db[N];
    fill_uniform(a, N, &r, -1, 1);
    fill_uniform(b, N, &r, -1, 1);
    fill_uniform(dout, N, &r, -1, 1);
    residual_forward(out, a, b, N);
    fill_const(da, N, GRAD_BASE);
    fill_const(db, N, GRAD_BASE);
    residual_backward(da, db, dout, N);
    /* out is one float add and d(out)/d(a) = d(out)/d(b) = 1: exact up to the
     * single rounding of each add (1e-6 for values of size <= 2) */
    for (int i = 0; i < N; i++) {
        CHECK_NEAR(out[i], (double)a[i] + (double)b[i], 1e-6);
        CHECK_NEAR(da[i], (double)GRAD_BASE + dout[i], 1e-6);
        CHECK_NEAR(db[i], (double)GRAD_BASE + dout[i], 1e-6);
    }
}

/* ------------------------------------------------------------ attention */

typedef struct {
    double *qkv; const double *slopes; int B, T, C, NH; double *out; const float *w;
} att_ctx;

/* Straightforward causal softmax attention in double (Vaswani et al. eq. 1):
 * scores over j <= t, max subtracted, normalised, weighted sum of values. */
static void att_ref(att_ctx *c) {
    int B = c->B, T = c->T, C = c->C, NH = c->NH, HS = C / NH;
    double scale = 1.0 / sqrt((double)HS), s[64];
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            for (int h = 0; h < NH; h++) {
                const double *q = c->qkv + ((size_t)b * T + t) * 3 * C + h * HS;
                double mx = -INFINITY, sum = 0.0;
                for (int j = 0; j <= t; j++) {
                    const double *k = c->qkv + ((size_t)b * T + j) * 3 * C + C + h * HS;
                    double d = 0.0;
                    for (int i = 0; i < HS; i++) d += q[i] * k[i];
                    s[j] = d * scale - (c->slopes ? c->slopes[h] * (t - j) : 0.0);
                    mx = fmax(mx, s[j]);
                }
                for (int j = 0; j <= t; j++) { s[j] = exp(s[j] - mx); sum += s[j]; }
                double *o = c->out + ((size_t)b * T + t) * C + h * HS;
                for (int i = 0; i < HS; i++) o[i] = 0.0;
                for (int j = 0; j <= t; j++) {
                    const double *v = c->qkv + ((size_t)b * T + j) * 3 * C + 2 * C + h * HS;
                    for (int i = 0; i < HS; i++) o[i] += s[j] / sum * v[i];
                }
            }
}
static double att_loss(void *p) {
    att_ctx *c = p;
    att_ref(c);
    return dot_w(c->out, c->w, (size_t)c->B * c->T * c->C);
}

static void attention_case(int T, const float *slopes) {
    enum { B = TB, C = TC, NH = TNH, MAXT = TT };
    trng r = {2024u + (uint64_t)T};
    size_t nqkv = (size_t)B * T * 3 * C, nout = (size_t)B * T * C;
    float qkv[B * MAXT * 3 * C], out[B * MAXT * C], w[B * MAXT * C], att[B * NH * MAXT * MAXT];
    float dqkv[B * MAXT * 3 * C];
    /* scores of size ~1..3 so the softmax is far from uniform */
    fill_uniform(qkv, nqkv, &r, -1.5f, 1.5f);
    fill_uniform(w, nout, &r, -1, 1);
    /* NaN in every att entry: entries j > t must never be read */
    fill_const(att, sizeof att / sizeof att[0], NAN);
    double qkv_d[B * MAXT * 3 * C], out_d[B * MAXT * C], g[B * MAXT * 3 * C], slopes_d[NH];
    widen(qkv_d, qkv, nqkv);
    if (slopes) widen(slopes_d, slopes, NH);
    att_ctx ctx = {qkv_d, slopes ? slopes_d : NULL, B, T, C, NH, out_d, w};

    attention_forward(out, att, qkv, slopes, B, T, C, NH);
    att_ref(&ctx);
    check_fwd(out, out_d, nout, "attention out");
    /* probabilities of each causal row sum to 1 (float sum of <= 5 terms) */
    for (int bh = 0; bh < B * NH; bh++)
        for (int t = 0; t < T; t++) {
            double s = 0.0;
            for (int j = 0; j <= t; j++) s += att[((size_t)bh * T + t) * T + j];
            CHECK_NEAR(s, 1.0, 1e-6);
        }

    fill_const(dqkv, nqkv, GRAD_BASE);
    attention_backward(dqkv, w, qkv, att, out, slopes, B, T, C, NH);
    fd_grad(g, qkv_d, nqkv, att_loss, &ctx);
    check_grad(dqkv, g, nqkv, "attention dqkv");
}

TEST(nn_attention_gradients) { attention_case(TT, NULL); }

TEST(nn_attention_gradients_alibi) {
    /* steep slopes (not the NH=3 defaults, which are small) so the bias moves
     * the softmax a lot and a sign error in it shows in the forward check */
    const float slopes[TNH] = {0.75f, 0.25f, 1.5f};
    attention_case(TT, slopes);
}

TEST(nn_attention_t1_is_value_copy) {
    /* one token: softmax over one key is 1, so out = v, dq = dk = 0, dv = dout */
    attention_case(1, NULL);
    enum { B = 2, C = TC, NH = TNH };
    trng r = {5};
    float qkv[B * 3 * C], out[B * C], att[B * NH], dout[B * C], dqkv[B * 3 * C];
    fill_uniform(qkv, B * 3 * C, &r, -1, 1);
    fill_uniform(dout, B * C, &r, -1, 1);
    attention_forward(out, att, qkv, NULL, B, 1, C, NH);
    memset(dqkv, 0, sizeof dqkv);
    attention_backward(dqkv, dout, qkv, att, out, NULL, B, 1, C, NH);
    for (int b = 0; b < B; b++)
        for (int i = 0; i < C; i++) {
            /* 1.0f * v summed once: exact */
            CHECK(out[b * C + i] == qkv[b * 3 * C + 2 * C + i]);
            CHECK(dqkv[b * 3 * C + 2 * C + i] == dout[b * C + i]);
            /* p (d - dot) with p = 1, dot = d: exactly zero */
            CHECK(dqkv[b * 3 * C + i] == 0.0f);
            CHECK(dqkv[b * 3 * C + C + i] == 0.0f);
        }
}

/* Past 1024 rows the backward works in chunks (the scalar twin recomputes
 * dL/dp for keys past its 1024-key buffer; the AVX-512 kernels take query
 * rows ATT_ROWS_CHUNK = 1024 at a time); T = 1030 exercises the path this
 * CPU dispatches to against an analytic
 * backward in double (softmax Jacobian p_j (dp_j - sum_i p_i dp_i), Vaswani
 * et al. eq. 1 differentiated), too large for finite differences. */
TEST(nn_attention_long_rows_backward) {
    enum { T = 1030, C = 4, NH = 1, HS = C / NH };
    trng r = {71};
    size_t nqkv = (size_t)T * 3 * C;
    float *qkv = malloc(nqkv * sizeof(float)), *out = malloc((size_t)T * C * sizeof(float));
    float *att = malloc((size_t)T * T * sizeof(float)), *dout = malloc((size_t)T * C * sizeof(float));
    float *dqkv = calloc(nqkv, sizeof(float));
    double *ref = calloc(nqkv, sizeof(double)), *p = malloc(T * sizeof(double));
    double *dp = malloc(T * sizeof(double));
    if (!qkv || !out || !att || !dout || !dqkv || !ref || !p || !dp) {
        CHECK(0);
        goto done;
    }
    /* scores up to ~4 so the softmax rows are far from uniform */
    fill_uniform(qkv, nqkv, &r, -2, 2);
    fill_uniform(dout, (size_t)T * C, &r, -1, 1);
    attention_forward(out, att, qkv, NULL, 1, T, C, NH);
    attention_backward(dqkv, dout, qkv, att, out, NULL, 1, T, C, NH);
    const double scale = 1.0 / sqrt((double)HS);
    for (int t = 0; t < T; t++) {
        const float *q = qkv + (size_t)t * 3 * C, *dy = dout + (size_t)t * C;
        double mx = -INFINITY, sum = 0.0, dot = 0.0;
        for (int j = 0; j <= t; j++) {
            const float *k = qkv + (size_t)j * 3 * C + C;
            double s = 0.0;
            for (int i = 0; i < HS; i++) s += (double)q[i] * k[i];
            p[j] = s * scale;
            mx = fmax(mx, p[j]);
        }
        for (int j = 0; j <= t; j++) { p[j] = exp(p[j] - mx); sum += p[j]; }
        for (int j = 0; j <= t; j++) {
            const float *v = qkv + (size_t)j * 3 * C + 2 * C;
            p[j] /= sum;
            dp[j] = 0.0;
            for (int i = 0; i < HS; i++) {
                dp[j] += (double)dy[i] * v[i];
                ref[(size_t)j * 3 * C + 2 * C + i] += p[j] * dy[i];
            }
            dot += p[j] * dp[j];
        }
        for (int j = 0; j <= t; j++) {
            double ds = p[j] * (dp[j] - dot) * scale;
            for (int i = 0; i < HS; i++) {
                ref[(size_t)t * 3 * C + i] += ds * qkv[(size_t)j * 3 * C + C + i];
                ref[(size_t)j * 3 * C + C + i] += ds * q[i];
            }
        }
    }
    /* float sums over up to 1030 keys: relative rounding ~1e-6 * sqrt(T)
     * per element; atol 1e-5 for elements that are cancelling sums
     * (gradients here are O(0.1..1)); a wrong tail value is off by O(0.1).
     * Measured worst error: 2% of the tolerance. */
    int bad = 0;
    for (size_t i = 0; i < nqkv; i++) {
        double tol = 1e-4 * fabs(ref[i]) + 1e-5, err = fabs((double)dqkv[i] - ref[i]);
        if (!(err <= tol) && bad++ < 3)
            test_fail(__FILE__, __LINE__, "dqkv[%zu] (token %zu): %.9g vs %.9g", i,
                      i / (3 * C), (double)dqkv[i], ref[i]);
    }
    CHECK(bad == 0);
done:
    free(qkv); free(out); free(att); free(dout); free(dqkv); free(ref); free(p); free(dp);
}

/* ------------------------------------------------------------ crossentropy */

typedef struct {
    double *logits; const int *targets; int N, V; const float *dl; double *losses;
} ce_ctx;

static double ce_loss(void *p) {
    ce_ctx *c = p;
    double L = 0.0;
    for (int n = 0; n < c->N; n++) {
        const double *x = c->logits + (size_t)n * c->V;
        double mx = x[0], s = 0.0;
        for (int v = 1; v < c->V; v++) mx = fmax(mx, x[v]);
        for (int v = 0; v < c->V; v++) s += exp(x[v] - mx);
        c->losses[n] = log(s) + mx - x[c->targets[n]];
        L += c->losses[n] * (c->dl ? (double)c->dl[n] : 1.0 / c->N);
    }
    return L;
}

static void ce_case(int use_dlosses, float offset) {
    enum { N = TB * TT, V = TV };
    trng r = {31337};
    float logits[N * V], probs[N * V], losses[N], dl[N], dlogits[N * V];
    int targets[N];
    fill_uniform(logits, N * V, &r, -3, 3);
    for (int i = 0; i < N * V; i++) logits[i] += offset;
    fill_uniform(dl, N, &r, -1, 1);
    for (int n = 0; n < N; n++) targets[n] = (int)(trng_u32(&r) % V);
    double logits_d[N * V], losses_d[N], g[N * V];
    widen(logits_d, logits, N * V);
    ce_ctx ctx = {logits_d, targets, N, V, use_dlosses ? dl : NULL, losses_d};

    crossentropy_forward(losses, probs, logits, targets, N, V);
    ce_loss(&ctx);
    /* with a large offset the float logits themselves carry 1e-4 spacing, but
     * the loss depends only on differences, which both versions see equally */
    check_fwd(losses, losses_d, N, "crossentropy losses");
    for (int n = 0; n < N; n++) {
        double s = 0.0;
        for (int v = 0; v < V; v++) s += probs[n * V + v];
        CHECK_NEAR(s, 1.0, 1e-6);   /* 11 float terms, each rounded once */
    }
    fill_const(dlogits, N * V, GRAD_BASE);
    crossentropy_backward(dlogits, probs, targets, use_dlosses ? dl : NULL, N, V);
    /* FD step relative to the logit size: with offset 1000 an absolute step
     * of 1e-5 still resolves (double has 1e-13 relative room) */
    fd_grad(g, logits_d, N * V, ce_loss, &ctx);
    check_grad(dlogits, g, N * V, "crossentropy dlogits");
}

TEST(nn_crossentropy_gradients_mean) { ce_case(0, 0.0f); }
TEST(nn_crossentropy_gradients_dlosses) { ce_case(1, 0.0f); }
/* logits near 1000: exp would overflow without the max subtraction */
TEST(nn_crossentropy_large_logits_stable) { ce_case(1, 1000.0f); }

TEST(nn_crossentropy_uniform_is_log_v) {
    enum { N = 3, V = TV };
    float logits[N * V], probs[N * V], losses[N];
    int targets[N] = {0, 5, 10};
    fill_const(logits, N * V, 0.37f);
    crossentropy_forward(losses, probs, logits, targets, N, V);
    /* log(11) in double rounded once to float: within 2.5e-7 */
    for (int n = 0; n < N; n++) CHECK_NEAR(losses[n], log((double)V), 5e-7);
    for (int i = 0; i < N * V; i++) CHECK_NEAR(probs[i], 1.0 / V, 1e-7);
}

/* ------------------------------------------------------------ determinism */

/* Large enough to cross every OpenMP threshold; the single-thread result must
 * match the many-thread result bit for bit (checked with memcmp). Without
 * OpenMP this compares two serial runs. */
TEST(nn_layers_thread_count_independent) {
    enum { B = 4, T = 48, C = 64, NH = 4, N = B * T, V = 96 };
    trng r = {8};
    size_t nqkv = (size_t)B * T * 3 * C, nout = (size_t)N * C;
    float *qkv = malloc(nqkv * sizeof(float)), *dout = malloc(nout * sizeof(float));
    float *logits = malloc((size_t)N * V * sizeof(float));
    float *res[2][8];
    int targets[N];
    for (int k = 0; k < 2; k++) {
        res[k][0] = calloc(nout, sizeof(float));                    /* att out */
        res[k][1] = calloc((size_t)B * NH * T * T, sizeof(float));  /* att */
        res[k][2] = calloc(nqkv, sizeof(float));                    /* dqkv */
        res[k][3] = calloc(nout, sizeof(float));                    /* ln out */
        res[k][4] = calloc(nout + 2 * N, sizeof(float));            /* ln dinp + mean, rstd */
        res[k][5] = calloc(2 * C, sizeof(float));                   /* ln dw, db */
        res[k][6] = calloc((size_t)N * V, sizeof(float));           /* ce probs */
        res[k][7] = calloc((size_t)N * V + N, sizeof(float));       /* ce dlogits + losses */
    }
    fill_uniform(qkv, nqkv, &r, -1, 1);
    fill_uniform(dout, nout, &r, -1, 1);
    fill_uniform(logits, (size_t)N * V, &r, -4, 4);
    for (int n = 0; n < N; n++) targets[n] = (int)(trng_u32(&r) % V);
    float lnw[C], lnb[C];
    fill_uniform(lnw, C, &r, 0.5f, 1.5f);
    fill_uniform(lnb, C, &r, -0.5f, 0.5f);
    float slopes[NH];
    alibi_slopes(slopes, NH);
#ifdef _OPENMP
    int saved = omp_get_max_threads();
#endif
    for (int k = 0; k < 2; k++) {
#ifdef _OPENMP
        omp_set_num_threads(k == 0 ? 1 : 4);
#endif
        float **o = res[k];
        attention_forward(o[0], o[1], qkv, slopes, B, T, C, NH);
        attention_backward(o[2], dout, qkv, o[1], o[0], slopes, B, T, C, NH);
        float *mean = o[4] + nout, *rstd = mean + N;
        layernorm_forward(o[3], mean, rstd, qkv, lnw, lnb, N, C);
        layernorm_backward(o[4], o[5], o[5] + C, dout, qkv, lnw, mean, rstd, N, C);
        crossentropy_forward(o[7] + (size_t)N * V, o[6], logits, targets, N, V);
        crossentropy_backward(o[7], o[6], targets, NULL, N, V);
    }
#ifdef _OPENMP
    omp_set_num_threads(saved);
#endif
    size_t sizes[8] = {nout, (size_t)B * NH * T * T, nqkv, nout, nout + 2 * N, 2 * C,
                       (size_t)N * V, (size_t)N * V + N};
    for (int i = 0; i < 8; i++) {
        if (memcmp(res[0][i], res[1][i], sizes[i] * sizeof(float)) != 0)
            test_fail(__FILE__, __LINE__, "buffer %d differs between 1 and 4 threads", i);
    }
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < 8; i++) free(res[k][i]);
    free(qkv);
    free(dout);
    free(logits);
}

TEST(nn_matmul_layernorm_set_flags_equal_zero_then_accumulate) {
    /* The SET flags overwrite dinp / dweight+dbias; the result must equal
     * zeroing and accumulating, for every backend (the own kernel passes
     * accumulate=0 to its blocks and sums an overwritten dbias while it
     * packs dweight's A; naive and BLAS zero first). Sizes cross the own
     * kernel's tile edges and its KC = 256 depth block: dinp's (OC = 300),
     * then dweight's and the packed bias sum's (N = 300). */
    enum { MAXN = 300, C = 19, MAXOC = 300 };
    static const int shapes[2][2] = {{37, 300}, {300, 37}};   /* N, OC */
    trng r = {77};
    static float dout[MAXN * MAXOC], inp[MAXN * C], w[MAXOC * C];
    const matmul_backend bes[] = { MATMUL_OWN, MATMUL_NAIVE, MATMUL_BLAS };
    for (int q = 0; q < 6; q++) {
        const int b = q % 3, N = shapes[q / 3][0], OC = shapes[q / 3][1];
        fill_uniform(dout, N * OC, &r, -1, 1);
        fill_uniform(inp, N * C, &r, -1, 1);
        fill_uniform(w, OC * C, &r, -1, 1);
        matmul_ctx ctx;
        matmul_ctx_init(&ctx, bes[b]);
        static float di0[MAXN * C], dw0[MAXOC * C], db0[MAXOC], di1[MAXN * C], dw1[MAXOC * C], db1[MAXOC];
        memset(di0, 0, sizeof di0); memset(dw0, 0, sizeof dw0); memset(db0, 0, sizeof db0);
        matmul_backward_ctx(&ctx, di0, dw0, db0, dout, inp, w, N, C, OC);
        fill_const(di1, N * C, 5.0f); fill_const(dw1, OC * C, -2.0f); fill_const(db1, OC, 9.0f);
        matmul_backward_flags_ctx(&ctx, MATMUL_SET_DINP | MATMUL_SET_DPARAMS, di1, dw1, db1, dout, inp, w, N, C, OC);
        int same = 1;
        for (int i = 0; i < N * C; i++) same &= di0[i] == di1[i];
        for (int i = 0; i < OC * C; i++) same &= dw0[i] == dw1[i];
        for (int i = 0; i < OC; i++) same &= db0[i] == db1[i];
        CHECK(same);
        /* only dinp set: the parameter gradients keep accumulating (the
         * naive loop adds into dw term by term, so compare to float
         * rounding: 37 terms of O(1) plus 1.0, 1e-5 absolute). */
        fill_const(dw1, OC * C, 1.0f);
        matmul_backward_flags_ctx(&ctx, MATMUL_SET_DINP, di1, dw1, NULL, dout, inp, w, N, C, OC);
        int acc_ok = 1;
        for (int i = 0; i < OC * C; i++) acc_ok &= fabsf(dw1[i] - (1.0f + dw0[i])) <= 1e-5f;
        CHECK(acc_ok);
        matmul_ctx_free(&ctx);
    }
    /* layernorm: the same property for its dinp and dweight/dbias */
    enum { LN_N = 37 };
    float x[LN_N * C], dy[LN_N * C], lw[C], mean[LN_N], rstd[LN_N], y[LN_N * C], lb[C];
    fill_uniform(x, LN_N * C, &r, -2, 2);
    fill_uniform(dy, LN_N * C, &r, -1, 1);
    fill_uniform(lw, C, &r, 0.5f, 1.5f);
    fill_uniform(lb, C, &r, -0.5f, 0.5f);
    layernorm_forward(y, mean, rstd, x, lw, lb, LN_N, C);
    float a0[LN_N * C] = {0}, w0[C] = {0}, b0[C] = {0}, a1[LN_N * C], w1[C], b1[C];
    layernorm_backward(a0, w0, b0, dy, x, lw, mean, rstd, LN_N, C);
    fill_const(a1, LN_N * C, 3.0f); fill_const(w1, C, 3.0f); fill_const(b1, C, 3.0f);
    layernorm_backward_flags(LN_SET_DINP | LN_SET_DPARAMS, a1, w1, b1, dy, x, lw, mean, rstd, LN_N, C);
    int same = 1;
    for (int i = 0; i < LN_N * C; i++) same &= a0[i] == a1[i];
    for (int i = 0; i < C; i++) same &= w0[i] == w1[i] && b0[i] == b1[i];
    CHECK(same);
}

TEST(nn_crossentropy_forward_matches_double_reference) {
    /* The vectorised softmax (nn_expf, lane sums) against exp/log in double,
     * at widths around the 8-lane and 16-wide vector edges and the GPT-2
     * vocabulary, with logits spread over +-40 (exp spans 1e-35..1). nn_expf
     * is within ~2 ulp of exp and the sum is in double, so probabilities
     * agree to a few float ulps (rtol 1e-6) and losses to ~1e-6 relative of
     * log-sum-exp (atol 2e-5 for losses up to ~80). */
    const int Vs[] = { 1, 7, 8, 9, 17, 50257 };
    trng r = {31337};
    int ok_p = 1, ok_l = 1;
    for (size_t k = 0; k < sizeof Vs / sizeof Vs[0]; k++) {
        const int V = Vs[k], N = 3;
        float *x = malloc((size_t)N * V * sizeof *x), *p = malloc((size_t)N * V * sizeof *p);
        CHECK(x && p);
        if (!x || !p) { free(x); free(p); return; }
        fill_uniform(x, (size_t)N * V, &r, -40, 40);
        int tg[3] = { 0, V / 2, V - 1 };
        float loss[3];
        crossentropy_forward(loss, p, x, tg, N, V);
        for (int n = 0; n < N; n++) {
            const float *xr = x + (size_t)n * V;
            double mx = xr[0], s = 0;
            for (int v = 1; v < V; v++) mx = xr[v] > mx ? xr[v] : mx;
            /* x - max is formed in float, as the kernel does (that rounding,
             * up to 80 * 2^-24 relative in exp, is the input's, not ours) */
            for (int v = 0; v < V; v++) s += exp((double)(xr[v] - (float)mx));
            for (int v = 0; v < V; v++) {
                double pr = exp((double)(xr[v] - (float)mx)) / s;
                if (!(fabs(p[(size_t)n * V + v] - pr) <= 1e-6 * pr + 1e-30)) ok_p = 0;
            }
            double lr = log(s) + mx - xr[tg[n]];
            if (!(fabs(loss[n] - lr) <= 2e-5)) ok_l = 0;
        }
        free(x);
        free(p);
    }
    CHECK(ok_p);
    CHECK(ok_l);
}

TEST(nn_exp_users_propagate_nan_without_ub) {
    /* The vectorised exp takes NaN in and gives NaN out (no float-to-int
     * conversion of NaN: that is undefined, and UBSan stops on it), so a NaN
     * logit makes its row's loss NaN and the NaN policy can see it. */
    enum { V = 40 };
    float x[2 * V], p[2 * V], loss[2];
    for (int i = 0; i < 2 * V; i++) x[i] = 0.1f * (float)(i % 7);
    x[5] = NAN;            /* row 0 */
    x[V + 3] = INFINITY;   /* row 1: +Inf is the max, exp(Inf - Inf) is NaN too */
    int tg[2] = { 1, 2 };
    crossentropy_forward(loss, p, x, tg, 2, V);
    CHECK(isnan(loss[0]));
    CHECK(!isfinite(loss[1]));
    float g[3] = { NAN, -INFINITY, 1.0f }, out[3];
    gelu_forward(out, g, 3);
    CHECK(isnan(out[0]));
    CHECK(out[2] > 0.84f && out[2] < 0.85f);   /* gelu(1) = 0.8412 */
}
