/*
 * matmul_bench.c — GFLOP/s of the three matmul products (forward, dinp,
 * dweight) at the GPT shapes, for the own kernels and OpenBLAS, as a fraction
 * of this machine's FP32 FMA peak measured in the same run. Validates every
 * backend against the naive twin before timing; reports the median of reps.
 * Usage: matmul_bench [reps]
 */
#define _POSIX_C_SOURCE 199309L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef _OPENMP
#include <omp.h>
#endif
#ifdef ROPEGPT_HAVE_BLAS
#include <cblas.h>
char *openblas_get_corename(void);
#endif

#include "nn/matmul.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int nthreads(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

/* All-thread FP32 FMA peak (GFLOP/s) from independent FMA chains, best of 5. */
static double peak_gflops(void) {
    matmul_isa isa = matmul_isa_best();
    int lanes = isa == MATMUL_ISA_AVX512 ? 16 : 8;
    if (isa == MATMUL_ISA_SCALAR) return 0.0;
    const int64_t iters = 20 * 1000 * 1000;
    double best = 0.0;
    volatile float sink = 0.0f;
    for (int rep = 0; rep < 5; rep++) {
        double t0 = now_s();
#pragma omp parallel
        {
            float v = isa == MATMUL_ISA_AVX512 ? matmul_fma_loop_avx512(iters) : matmul_fma_loop_avx2(iters);
#pragma omp critical
            sink += v;
        }
        double dt = now_s() - t0;
        double g = (double)nthreads() * (double)iters * MATMUL_PEAK_CHAINS * lanes * 2.0 / dt * 1e-9;
        if (g > best) best = g;
    }
    (void)sink;
    return best;
}

static void fill(float *p, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        p[i] = (float)(seed >> 8) / (float)(1u << 24) - 0.5f;
    }
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* prod 0 forward, 1 dinp, 2 dweight */
static void run(matmul_ctx *ctx, int prod, float *out, float *dinp, float *dw, const float *inp,
                const float *w, const float *dout, int N, int C, int OC) {
    if (prod == 0) matmul_forward_ctx(ctx, out, inp, w, NULL, N, C, OC);
    else if (prod == 1) matmul_backward_ctx(ctx, dinp, NULL, NULL, dout, inp, w, N, C, OC);
    else matmul_backward_ctx(ctx, NULL, dw, NULL, dout, inp, w, N, C, OC);
}

int main(int argc, char **argv) {
    int reps = argc > 1 ? atoi(argv[1]) : 7;
    if (reps < 1) {
        fprintf(stderr, "matmul_bench: reps must be a positive integer, got '%s'\n", argv[1]);
        return 2;
    }
    double peak = peak_gflops();
    printf("matmul_bench threads=%d isa=%s peak_gflops=%.1f", nthreads(),
           matmul_isa_name(matmul_isa_best()), peak);
#ifdef ROPEGPT_HAVE_BLAS
    printf(" openblas_core=%s", openblas_get_corename());
#endif
    printf("\n");
    static const int shapes[][3] = {
        {768, 128, 384}, {768, 128, 512}, {768, 512, 128}, {768, 128, 256},
        {256, 768, 2304}, {256, 768, 3072}, {256, 3072, 768}, {256, 768, 50304},
    };
    static const char *pname[3] = {"fwd", "dinp", "dweight"};
    matmul_backend bes[2] = {MATMUL_OWN, MATMUL_BLAS};
    int nbe = matmul_have_blas() ? 2 : 1;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int N = shapes[s][0], C = shapes[s][1], OC = shapes[s][2];
        size_t nin = (size_t)N * C, nw = (size_t)OC * C, nout = (size_t)N * OC;
        float *inp = malloc(nin * 4), *w = malloc(nw * 4), *dout = malloc(nout * 4);
        float *out = malloc(nout * 4), *dinp = malloc(nin * 4), *dw = malloc(nw * 4);
        float *ref = malloc((nout > nw ? (nout > nin ? nout : nin) : (nw > nin ? nw : nin)) * 4);
        fill(inp, nin, 1); fill(w, nw, 2); fill(dout, nout, 3);
        double flops = 2.0 * N * C * OC;
        for (int b = 0; b < nbe; b++) {
            matmul_ctx ctx;
            matmul_ctx_init(&ctx, bes[b]);
            printf("N=%-4d C=%-4d OC=%-5d %-4s", N, C, OC, matmul_backend_name(bes[b]));
            for (int prod = 0; prod < 3; prod++) {
                /* validate against the naive twin */
                memset(dinp, 0, nin * 4); memset(dw, 0, nw * 4);
                run(&ctx, prod, out, dinp, dw, inp, w, dout, N, C, OC);
                const float *got = prod == 0 ? out : prod == 1 ? dinp : dw;
                size_t n = prod == 0 ? nout : prod == 1 ? nin : nw;
                int K = prod == 0 ? C : prod == 1 ? OC : N;
                if (prod == 0) matmul_forward_naive(ref, inp, w, NULL, N, C, OC);
                else {
                    memset(ref, 0, n * 4);
                    matmul_backward_naive(prod == 1 ? ref : NULL, prod == 2 ? ref : NULL, NULL, dout, inp, w, N, C, OC);
                }
                double maxerr = 0;
                for (size_t i = 0; i < n; i++) maxerr = fmax(maxerr, fabs((double)got[i] - ref[i]));
                /* |values| <= 0.5, so |dot| terms <= 0.25: K*eps*0.25*K bounds the error */
                if (!(maxerr <= 2.0 * K * 1.2e-7 * 0.25 * K)) {
                    fprintf(stderr, "matmul_bench: %s %s mismatch vs naive: %g\n",
                            matmul_backend_name(bes[b]), pname[prod], maxerr);
                    return 1;
                }
                double t[64];
                int r = reps > 64 ? 64 : reps;
                for (int i = 0; i < r; i++) {
                    double t0 = now_s();
                    run(&ctx, prod, out, dinp, dw, inp, w, dout, N, C, OC);
                    t[i] = now_s() - t0;
                }
                qsort(t, (size_t)r, sizeof t[0], cmp_d);
                double g = flops / t[r / 2] * 1e-9;
                printf("  %s %7.1f GF/s (%4.1f%%)", pname[prod], g, peak > 0 ? 100.0 * g / peak : 0.0);
            }
            printf("\n");
            fflush(stdout);
            matmul_ctx_free(&ctx);
        }
        free(inp); free(w); free(dout); free(out); free(dinp); free(dw); free(ref);
    }
    return 0;
}
