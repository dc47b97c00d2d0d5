/*
 * matmul.c — the linear layer: backend dispatch, the scalar reference twins,
 * the OpenBLAS path, the rules every backend follows (set or accumulate,
 * bias, the dinp epilogue), the kernel tuner's hook and the scratch. The
 * own backend's blocked products are gemm.c's; its SIMD micro-kernels and
 * packers are in matmul_avx512.c and matmul_avx2.c.
 */
/* clock_gettime(CLOCK_THREAD_CPUTIME_ID) for the peak probe */
#define _POSIX_C_SOURCE 200809L
#include "nn/matmul.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef ROPEGPT_HAVE_BLAS
#include <cblas.h>
#endif

#include "nn/gemm.h"

/* ---------------------------------------------------------------- naive -- */

void matmul_forward_naive(float *out, const float *inp, const float *weight, const float *bias,
                          int N, int C, int OC) {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C;
        float *y = out + (size_t)n * OC;
        for (int o = 0; o < OC; o++) {
            const float *w = weight + (size_t)o * C;
            float s = bias ? bias[o] : 0.0f;
            for (int c = 0; c < C; c++) s += x[c] * w[c];
            y[o] = s;
        }
    }
}

void matmul_backward_naive(float *dinp, float *dweight, float *dbias, const float *dout,
                           const float *inp, const float *weight, int N, int C, int OC) {
    /* Each loop writes disjoint rows, and every element is summed by one
     * thread in plain index order: the same bits for any thread count. */
    if (dinp) {
#pragma omp parallel for schedule(static)
        for (int n = 0; n < N; n++) {
            const float *g = dout + (size_t)n * OC;
            float *dx = dinp + (size_t)n * C;
            for (int o = 0; o < OC; o++) {
                const float *w = weight + (size_t)o * C;
                float go = g[o];
                for (int c = 0; c < C; c++) dx[c] += go * w[c];
            }
        }
    }
    if (dweight || dbias) {
#pragma omp parallel for schedule(static)
        for (int o = 0; o < OC; o++) {
            float *dw = dweight ? dweight + (size_t)o * C : NULL;
            float db = 0.0f;
            for (int n = 0; n < N; n++) {
                float go = dout[(size_t)n * OC + o];
                db += go;
                if (dw) {
                    const float *x = inp + (size_t)n * C;
                    for (int c = 0; c < C; c++) dw[c] += go * x[c];
                }
            }
            if (dbias) dbias[o] += db;
        }
    }
}

/* -------------------------------------------------------------- context -- */

void matmul_ctx_init(matmul_ctx *ctx, matmul_backend backend) {
    ctx->backend = backend;
    ctx->isa = MATMUL_ISA_AUTO;
    ctx->kernel = MATMUL_KERNEL_AUTO;
    ctx->order = MATMUL_ORDER_AUTO;
    matmul_tune_reset(&ctx->tune);
    ctx->scratch = NULL;
    ctx->scratch_floats = 0;
}

void matmul_ctx_free(matmul_ctx *ctx) {
    free(ctx->scratch);
    ctx->scratch = NULL;
    ctx->scratch_floats = 0;
}

const char *matmul_backend_name(matmul_backend b) {
    switch (b) {
    case MATMUL_OWN: return "own";
    case MATMUL_NAIVE: return "naive";
    case MATMUL_BLAS: return "blas";
    }
    return "unknown";
}

const char *matmul_isa_name(matmul_isa isa) {
    switch (isa) {
    case MATMUL_ISA_AUTO: return "auto";
    case MATMUL_ISA_SCALAR: return "scalar";
    case MATMUL_ISA_AVX2: return "avx2";
    case MATMUL_ISA_AVX512: return "avx512";
    }
    return "unknown";
}

const char *matmul_kernel_name(matmul_kernel k) {
    switch (k) {
    case MATMUL_KERNEL_AUTO: return "auto";
    case MATMUL_KERNEL_8: return "8";
    case MATMUL_KERNEL_12: return "12";
    case MATMUL_KERNEL_12R: return "12r";
    }
    return "unknown";
}

const char *matmul_order_name(matmul_order o) {
    switch (o) {
    case MATMUL_ORDER_AUTO: return "auto";
    case MATMUL_ORDER_AB: return "ab";
    case MATMUL_ORDER_BA: return "ba";
    }
    return "unknown";
}

int matmul_isa_supported(matmul_isa isa) {
    switch (isa) {
    case MATMUL_ISA_AUTO:
    case MATMUL_ISA_SCALAR: return 1;
#ifdef MATMUL_X86
    case MATMUL_ISA_AVX2: return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    /* the file is built with -mavx512f/bw/vl/dq (and uses DQ's 256-bit extract) */
    case MATMUL_ISA_AVX512:
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
               __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
#else
    case MATMUL_ISA_AVX2:
    case MATMUL_ISA_AVX512: return 0;
#endif
    }
    return 0;
}

matmul_isa matmul_isa_best(void) {
    if (matmul_isa_supported(MATMUL_ISA_AVX512)) return MATMUL_ISA_AVX512;
    if (matmul_isa_supported(MATMUL_ISA_AVX2)) return MATMUL_ISA_AVX2;
    return MATMUL_ISA_SCALAR;
}

int matmul_have_blas(void) {
#ifdef ROPEGPT_HAVE_BLAS
    return 1;
#else
    return 0;
#endif
}

/* ------------------------------------------------------ shared pieces -- */

/* dbias[o] (+)= sum_n dout[n,o] (set: overwrite): each o summed by one
 * thread in n order. Full chunks run a constant-length inner loop, which the
 * compiler vectorizes. */
static void bias_backward(float *dbias, const float *dout, int N, int OC, int set) {
    enum { CHUNK = 64 };
    const int nchunks = (OC + CHUNK - 1) / CHUNK;
#pragma omp parallel for schedule(static)
    for (int ch = 0; ch < nchunks; ch++) {
        const int o0 = ch * CHUNK, len = OC - o0 < CHUNK ? OC - o0 : CHUNK;
        float acc[CHUNK] = {0};
        if (len == CHUNK) {
            for (int n = 0; n < N; n++) {
                const float *g = dout + (size_t)n * OC + o0;
                for (int o = 0; o < CHUNK; o++) acc[o] += g[o];
            }
        } else {
            for (int n = 0; n < N; n++) {
                const float *g = dout + (size_t)n * OC + o0;
                for (int o = 0; o < len; o++) acc[o] += g[o];
            }
        }
        if (set) memcpy(dbias + o0, acc, (size_t)len * sizeof(float));
        else for (int o = 0; o < len; o++) dbias[o0 + o] += acc[o];
    }
}

/* Scratch from ctx (grown, kept) or, without ctx, allocated for this call
 * only (*owned set). NULL if the allocation fails. */
static float *scratch_get(matmul_ctx *ctx, size_t nfloats, float **owned) {
    *owned = NULL;
    if (ctx && ctx->scratch_floats >= nfloats) return ctx->scratch;
    float *p = malloc(nfloats * sizeof(float));
    if (!p) return NULL;
    if (ctx) {
        free(ctx->scratch);
        ctx->scratch = p;
        ctx->scratch_floats = nfloats;
    } else {
        *owned = p;
    }
    return p;
}

/* ---------------------------------------------------------------- BLAS -- */

#ifdef ROPEGPT_HAVE_BLAS
static void blas_forward(float *out, const float *inp, const float *weight, const float *bias,
                         int N, int C, int OC) {
    if (bias)
        for (int n = 0; n < N; n++) memcpy(out + (size_t)n * OC, bias, (size_t)OC * sizeof(float));
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, OC, C, 1.0f, inp, C, weight, C,
                bias ? 1.0f : 0.0f, out, OC);
}

static void blas_backward(float *dinp, float *dweight, const float *dout, const float *inp,
                          const float *weight, int N, int C, int OC) {
    if (dinp)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, C, OC, 1.0f, dout, OC, weight, C,
                    1.0f, dinp, C);
    if (dweight)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OC, C, N, 1.0f, dout, OC, inp, C,
                    1.0f, dweight, C);
}
#endif

/* ------------------------------------------------------------- dispatch -- */

static double wall_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The kernels of one call: `main` for the forward or dinp, `dw` for dweight.
 * Variant v: kernels by v % 4, 0: the 8-row kernel (dweight 12); 1: the
 * 12-row kernel with embedded broadcasts for both; 2: the one with register
 * broadcasts for both; 3: the 8-row kernel with dweight 12r; loop order by
 * v / 4 (0: AB, 1: BA; see matmul_order). A forward has no dweight, so it is
 * timed over kernels 0-2; a backward without dinp has only dweight, so over
 * kernels 0 and 3. */
typedef struct {
    ukr_desc main, dw;
} kernel_pair;

static kernel_pair kernel_variant(matmul_isa isa, int v) {
    const ukr_desc u8 = gemm_kernel_8(isa), u12 = gemm_kernel_12(isa), u12r = gemm_kernel_12r(isa);
    kernel_pair kp;
    switch (v % 4) {
    case 1: kp = (kernel_pair){u12, u12}; break;
    case 2: kp = (kernel_pair){u12r, u12r}; break;
    case 3: kp = (kernel_pair){u8, u12r}; break;
    default: kp = (kernel_pair){u8, u12}; break;
    }
    kp.main.b_in_l1 = kp.dw.b_in_l1 = v / 4;
    return kp;
}

typedef enum { CALL_FORWARD, CALL_BACKWARD, CALL_DWEIGHT_ONLY } call_kind;

/* The kernels for one call of `kind` (also the tuner's key), and in *slot
 * and the return value the tuner slot and variant index to record its time
 * under (*slot -1: nothing to record). */
static int pick_kernels(matmul_ctx *ctx, matmul_isa isa, call_kind kind, int M, int Ncols, int K,
                        kernel_pair *kp, int *slot) {
    static const int listed[][8] = {{0, 1, 2, 4, 5, 6}, {0, 1, 2, 3, 4, 5, 6, 7}, {0, 3, 4, 7}};
    static const int count[] = {6, 8, 4};
    *slot = -1;
    int v = 0, t = 0;
    if (ctx && gemm_kernel_8(isa).fn != gemm_kernel_12(isa).fn) {   /* else one kernel, one order */
        if (ctx->kernel == MATMUL_KERNEL_8 || ctx->kernel == MATMUL_KERNEL_12 || ctx->kernel == MATMUL_KERNEL_12R) {
            /* kernels 0, 1, 2 (a dweight-only call ignores `main`, so these
             * give it dweight 12, 12, 12r as the forced kernel implies) */
            v = (ctx->kernel == MATMUL_KERNEL_12 ? 1 : ctx->kernel == MATMUL_KERNEL_12R ? 2 : 0) +
                (ctx->order == MATMUL_ORDER_BA ? 4 : 0);
        } else if (ctx->order == MATMUL_ORDER_AB || ctx->order == MATMUL_ORDER_BA) {
            /* the kernels only: the lists' first halves are order AB */
            t = matmul_tune_pick(&ctx->tune, M, Ncols, K, (int)kind, count[kind] / 2, slot);
            v = listed[kind][t] + (ctx->order == MATMUL_ORDER_BA ? 4 : 0);
        } else {
            t = matmul_tune_pick(&ctx->tune, M, Ncols, K, (int)kind, count[kind], slot);
            v = listed[kind][t];
        }
    }
    *kp = kernel_variant(isa, v);
    return t;
}

void matmul_forward_ctx(matmul_ctx *ctx, float *out, const float *inp, const float *weight,
                        const float *bias, int N, int C, int OC) {
    matmul_backend be = ctx ? ctx->backend : MATMUL_OWN;
    if (N <= 0 || OC <= 0) return;
    if (be == MATMUL_NAIVE) {
        matmul_forward_naive(out, inp, weight, bias, N, C, OC);
        return;
    }
#ifdef ROPEGPT_HAVE_BLAS
    if (be == MATMUL_BLAS && C > 0) {
        blas_forward(out, inp, weight, bias, N, C, OC);
        return;
    }
#endif
    const matmul_isa isa = ctx ? ctx->isa : MATMUL_ISA_AUTO;
    kernel_pair kp;
    int slot;
    const int t = pick_kernels(ctx, isa, CALL_FORWARD, N, OC, C, &kp, &slot);
    float *owned;
    float *scratch = scratch_get(ctx, gemm_scratch_floats(&kp.main), &owned);
    if (!scratch) { /* out of memory: the reference path needs no scratch */
        matmul_forward_naive(out, inp, weight, bias, N, C, OC);
        return;
    }
    const double t0 = slot >= 0 ? wall_s() : 0.0;
    gemm_forward(&kp.main, out, inp, weight, bias, N, C, OC, scratch);
    if (slot >= 0) matmul_tune_record(&ctx->tune, slot, t, wall_s() - t0);
    free(owned);
}
/* ------------------------------------------------------ packed weights -- */

int matmul_pack_weight(matmul_ctx *ctx, matmul_packed *p, const float *weight, int C, int OC) {
    if (!p) return -1;
    memset(p, 0, sizeof *p);
    if (!weight || C <= 0 || OC <= 0) return -1;
    matmul_isa isa = ctx ? ctx->isa : MATMUL_ISA_AUTO;
    if (isa == MATMUL_ISA_AUTO || !matmul_isa_supported(isa)) isa = matmul_isa_best();
    const ukr_desc u = gemm_kernel_8(isa);
    p->mem = malloc((gemm_packed_floats(&u, C, OC) + 16) * sizeof(float));
    if (!p->mem) return -1;
    p->data = gemm_align64(p->mem);
    p->weight = weight, p->C = C, p->OC = OC, p->isa = isa;
    gemm_pack_weight(&u, p->data, weight, C, OC);
    return 0;
}

void matmul_packed_free(matmul_packed *p) {
    if (!p) return;
    free(p->mem);
    memset(p, 0, sizeof *p);
}

void matmul_forward_packed(matmul_ctx *ctx, float *out, const float *inp, const matmul_packed *p,
                           const float *bias, int N) {
    if (!p || !p->data || N <= 0) return;
    const int C = p->C, OC = p->OC;
    matmul_backend be = ctx ? ctx->backend : MATMUL_OWN;
    if (be != MATMUL_OWN) {
        matmul_forward_ctx(ctx, out, inp, p->weight, bias, N, C, OC);
        return;
    }
    const ukr_desc u = gemm_kernel_8(p->isa);
    float *owned;
    float *scratch = scratch_get(ctx, gemm_scratch_floats(&u), &owned);
    if (!scratch) {
        matmul_forward_naive(out, inp, p->weight, bias, N, C, OC);
        return;
    }
    gemm_forward_packed(&u, out, inp, p->data, bias, N, C, OC, scratch);
    free(owned);
}

/* Zeroes the outputs that flags say to overwrite, for the paths that only
 * accumulate (naive, BLAS, out-of-memory): 0 + x == x, so the results are
 * those of the overwriting kernels. */
static void zero_set_outputs(int flags, float *dinp, float *dweight, float *dbias, int N, int C, int OC) {
    if ((flags & MATMUL_SET_DINP) && dinp) memset(dinp, 0, (size_t)N * (size_t)C * sizeof(float));
    if (flags & MATMUL_SET_DPARAMS) {
        if (dweight) memset(dweight, 0, (size_t)OC * (size_t)C * sizeof(float));
        if (dbias) memset(dbias, 0, (size_t)OC * sizeof(float));
    }
}

/* dinp[i] *= mul[i] over N x C: the paths without tiles to do it in. */
static void dinp_mul_pass(float *dinp, const float *mul, int N, int C) {
    if (!dinp || !mul) return;
    const size_t n = (size_t)N * (size_t)C;
    for (size_t i = 0; i < n; i++) dinp[i] *= mul[i];
}

/* matmul_backward_flags_ctx and matmul_backward_mul_ctx (dinp_mul non-NULL,
 * with MATMUL_SET_DINP in flags). */
static void backward_impl(matmul_ctx *ctx, int flags, float *dinp, const float *dinp_mul, float *dweight,
                          float *dbias, const float *dout, const float *inp, const float *weight, int N, int C,
                          int OC) {
    matmul_backend be = ctx ? ctx->backend : MATMUL_OWN;
    if (N <= 0 || C < 0 || OC <= 0) return;
    if (be == MATMUL_NAIVE) {
        zero_set_outputs(flags, dinp, dweight, dbias, N, C, OC);
        matmul_backward_naive(dinp, dweight, dbias, dout, inp, weight, N, C, OC);
        dinp_mul_pass(dinp, dinp_mul, N, C);
        return;
    }
    const int set_dinp = (flags & MATMUL_SET_DINP) != 0, set_dparams = (flags & MATMUL_SET_DPARAMS) != 0;
    /* An overwritten dbias comes out of dweight's A packing (a_rowsums) on
     * the own backend, whose dweight plan packs every A row (A = dout^T is
     * never read in place: its rows are not contiguous unless OC = 1). */
    const int bias_in_pack = dbias && set_dparams && dweight && be == MATMUL_OWN && C > 0 && OC > 1;
    if (dbias && !bias_in_pack) bias_backward(dbias, dout, N, OC, set_dparams);
    if (C == 0 || (!dinp && !dweight)) return;
#ifdef ROPEGPT_HAVE_BLAS
    if (be == MATMUL_BLAS) {
        zero_set_outputs(flags, dinp, dweight, NULL, N, C, OC);
        blas_backward(dinp, dweight, dout, inp, weight, N, C, OC);
        dinp_mul_pass(dinp, dinp_mul, N, C);
        return;
    }
#endif
    /* up to two kernels, the same B panel width, one scratch */
    const matmul_isa isa = ctx ? ctx->isa : MATMUL_ISA_AUTO;
    kernel_pair kp;
    int slot;
    const int t = pick_kernels(ctx, isa, dinp ? CALL_BACKWARD : CALL_DWEIGHT_ONLY, N, C, OC, &kp, &slot);
    float *owned;
    float *scratch = scratch_get(ctx, gemm_scratch_floats(&kp.main), &owned);
    if (!scratch) {
        zero_set_outputs(flags, dinp, dweight, NULL, N, C, OC);
        matmul_backward_naive(dinp, dweight, NULL, dout, inp, weight, N, C, OC);
        if (bias_in_pack) bias_backward(dbias, dout, N, OC, 1);
        dinp_mul_pass(dinp, dinp_mul, N, C);
        return;
    }
    const double t0 = slot >= 0 ? wall_s() : 0.0;
    gemm_backward(&kp.main, &kp.dw, dinp, dinp_mul, set_dinp, dweight, bias_in_pack ? dbias : NULL, set_dparams,
                  dout, inp, weight, N, C, OC, scratch);
    if (slot >= 0) matmul_tune_record(&ctx->tune, slot, t, wall_s() - t0);
    free(owned);
}

void matmul_backward_flags_ctx(matmul_ctx *ctx, int flags, float *dinp, float *dweight, float *dbias,
                               const float *dout, const float *inp, const float *weight, int N, int C, int OC) {
    backward_impl(ctx, flags, dinp, NULL, dweight, dbias, dout, inp, weight, N, C, OC);
}

void matmul_backward_mul_ctx(matmul_ctx *ctx, int flags, float *dinp, const float *dinp_mul, float *dweight,
                             float *dbias, const float *dout, const float *inp, const float *weight, int N, int C,
                             int OC) {
    backward_impl(ctx, flags | MATMUL_SET_DINP, dinp, dinp_mul, dweight, dbias, dout, inp, weight, N, C, OC);
}

void matmul_backward_ctx(matmul_ctx *ctx, float *dinp, float *dweight, float *dbias,
                         const float *dout, const float *inp, const float *weight,
                         int N, int C, int OC) {
    matmul_backward_flags_ctx(ctx, 0, dinp, dweight, dbias, dout, inp, weight, N, C, OC);
}

void matmul_forward(float *out, const float *inp, const float *weight, const float *bias,
                    int N, int C, int OC) {
    matmul_forward_ctx(NULL, out, inp, weight, bias, N, C, OC);
}

void matmul_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                     const float *inp, const float *weight, int N, int C, int OC) {
    matmul_backward_ctx(NULL, dinp, dweight, dbias, dout, inp, weight, N, C, OC);
}

/* All-thread FP32 FMA peak in GFLOP/s: every thread runs independent FMA
 * chains (AVX-512 if the CPU has it) at once; best of 15 short runs. */
double matmul_peak_gflops(void) {
#if defined(__x86_64__)
    matmul_isa isa = matmul_isa_best();
    if (isa == MATMUL_ISA_SCALAR) return 0.0;
    const int lanes = isa == MATMUL_ISA_AVX512 ? 16 : 8;
    const int64_t iters = 4 * 1000 * 1000;
    const double flops = (double)iters * MATMUL_PEAK_CHAINS * lanes * 2.0;
    double best = 0.0;
    volatile float sink = 0.0f;
    for (int rep = 0; rep < 15; rep++) {
        /* Each thread times itself on its own CPU clock, so time it spent
         * descheduled on a busy host does not count against the hardware;
         * the machine's peak is the sum of the per-thread rates. */
        double rate = 0.0;
        float s = 0.0f;
#pragma omp parallel reduction(+ : rate, s)
        {
            struct timespec a, b;
            clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a);
            s += isa == MATMUL_ISA_AVX512 ? matmul_fma_loop_avx512(iters) : matmul_fma_loop_avx2(iters);
            clock_gettime(CLOCK_THREAD_CPUTIME_ID, &b);
            double dt = (double)(b.tv_sec - a.tv_sec) + 1e-9 * (double)(b.tv_nsec - a.tv_nsec);
            rate += flops / dt * 1e-9;
        }
        sink += s;
        if (rate > best) best = rate;
    }
    (void)sink;
    return best;
#else
    return 0.0; /* the FMA probes are x86 kernels */
#endif
}
