/*
 * matmul_bench.c — best-of-reps GFLOP/s of the three matmul products (forward, dinp,
 * dweight) at the GPT shapes, for the own kernels and OpenBLAS, as a fraction
 * of this machine's FP32 FMA peak measured in the same run. Validates every
 * backend against the naive twin before timing; reports the best of reps (shared, noisy host).
 * Usage: matmul_bench [reps] [own|all] [wall|cpu]
 *   own: skip the BLAS rows; cpu: time by process CPU time (1 thread on a busy host)
 */
#define _POSIX_C_SOURCE 199309L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef ROPEGPT_HAVE_BLAS
#include <cblas.h>
char *openblas_get_corename(void);
#endif

#include "bench_util.h"
#include "nn/matmul.h"
#include "util/threads.h"

/* cpu clock: process CPU time, which leaves out time this process was
 * descheduled by other load on a shared host (meaningful with 1 thread). */
static int use_cpu_clock;
static double now_s(void) {
    struct timespec ts;
    clock_gettime(use_cpu_clock ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
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

/* Checks 257 sampled elements of product prod against a double dot product;
 * tolerance K*eps*sum|terms| (the float summation error bound). 0 = ok. */
static int validate(int prod, const float *out, const float *dinp, const float *dw, const float *inp,
                    const float *w, const float *dout, int N, int C, int OC) {
    unsigned seed = 7;
    for (int s = 0; s < 257; s++) {
        seed = seed * 1664525u + 1013904223u;
        int rows = prod == 0 ? N : prod == 1 ? N : OC, cols = prod == 0 ? OC : C;
        int K = prod == 0 ? C : prod == 1 ? OC : N;
        int i = (int)((seed >> 8) % (unsigned)rows);
        seed = seed * 1664525u + 1013904223u;
        int j = (int)((seed >> 8) % (unsigned)cols);
        double acc = 0, mag = 0;
        for (int k = 0; k < K; k++) {
            double t = prod == 0 ? (double)inp[(size_t)i * C + k] * w[(size_t)j * C + k]
                     : prod == 1 ? (double)dout[(size_t)i * OC + k] * w[(size_t)k * C + j]
                                 : (double)dout[(size_t)k * OC + i] * inp[(size_t)k * C + j];
            acc += t;
            mag += fabs(t);
        }
        double got = prod == 0 ? out[(size_t)i * OC + j] : prod == 1 ? dinp[(size_t)i * C + j] : dw[(size_t)i * C + j];
        if (!(fabs(got - acc) <= (K + 2) * 1.2e-7 * mag + 1e-30)) return 1;
    }
    return 0;
}

/* prod 0 forward, 1 dinp, 2 dweight */
static void run(matmul_ctx *ctx, int prod, float *out, float *dinp, float *dw, const float *inp,
                const float *w, const float *dout, int N, int C, int OC) {
    if (prod == 0) matmul_forward_ctx(ctx, out, inp, w, NULL, N, C, OC);
    else if (prod == 1) matmul_backward_ctx(ctx, dinp, NULL, NULL, dout, inp, w, N, C, OC);
    else matmul_backward_ctx(ctx, NULL, dw, NULL, dout, inp, w, N, C, OC);
}

int main(int argc, char **argv) {
    if (bench_wants_help(argc, argv, "matmul_bench [reps] [own|all] [wall|cpu]")) return 0;
    char *end = NULL;
    long reps_l = argc > 1 ? strtol(argv[1], &end, 10) : 5;
    if (argc > 1 && (*end || reps_l < 1 || reps_l > 1000)) {
        fprintf(stderr, "matmul_bench: reps must be an integer from 1 to 1000, got '%s'\n", argv[1]);
        return 2;
    }
    const int reps = (int)reps_l;
    if (argc > 2 && strcmp(argv[2], "own") && strcmp(argv[2], "all")) {
        fprintf(stderr, "matmul_bench: expected own or all, got '%s'\n", argv[2]);
        return 2;
    }
    if (argc > 3 && strcmp(argv[3], "wall") && strcmp(argv[3], "cpu")) {
        fprintf(stderr, "matmul_bench: expected wall or cpu, got '%s'\n", argv[3]);
        return 2;
    }
    if (argc > 4) {
        fprintf(stderr, "matmul_bench: unexpected argument '%s' (usage: matmul_bench [reps] [own|all] [wall|cpu])\n",
                argv[4]);
        return 2;
    }
    use_cpu_clock = argc > 3 && strcmp(argv[3], "cpu") == 0;
    double peak = matmul_peak_gflops();
    printf("matmul_bench threads=%d isa=%s peak_gflops=%.1f", threads_max(),
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
    int nbe = matmul_have_blas() && !(argc > 2 && strcmp(argv[2], "own") == 0) ? 2 : 1;
    /* Backend by backend, not shape by shape: OpenBLAS's threads spin for
     * a while after each call, and an own product timed right after a BLAS
     * one shared the two vCPUs with them (two rows read 3.6% of peak). */
    for (int b = 0; b < nbe; b++) {
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            int N = shapes[s][0], C = shapes[s][1], OC = shapes[s][2];
            size_t nin = (size_t)N * C, nw = (size_t)OC * C, nout = (size_t)N * OC;
            float *inp = malloc(nin * 4), *w = malloc(nw * 4), *dout = malloc(nout * 4);
            float *out = malloc(nout * 4), *dinp = malloc(nin * 4), *dw = malloc(nw * 4);
            fill(inp, nin, 1); fill(w, nw, 2); fill(dout, nout, 3);
            double flops = 2.0 * N * C * OC;
            matmul_ctx ctx;
            matmul_ctx_init(&ctx, bes[b]);
            printf("N=%-4d C=%-4d OC=%-5d %-4s", N, C, OC, matmul_backend_name(bes[b]));
            for (int prod = 0; prod < 3; prod++) {
                /* validate sampled elements against a double-accumulated dot product
                 * (the naive twin is too slow for the 50304-wide shapes) */
                memset(dinp, 0, nin * 4); memset(dw, 0, nw * 4);
                run(&ctx, prod, out, dinp, dw, inp, w, dout, N, C, OC);
                if (validate(prod, out, dinp, dw, inp, w, dout, N, C, OC)) {
                    fprintf(stderr, "matmul_bench: %s %s disagrees with the reference\n",
                            matmul_backend_name(bes[b]), pname[prod]);
                    return 1;
                }
                /* the own backend's tuner first tries each kernel variant once
                 * (matmul_tune.h); time what it settles on */
                for (int i = 0; bes[b] == MATMUL_OWN && i < MATMUL_TUNE_MAXV * MATMUL_TUNE_WARMUP; i++)
                    run(&ctx, prod, out, dinp, dw, inp, w, dout, N, C, OC);
                double t[64];
                int r = reps > 64 ? 64 : reps;
                for (int i = 0; i < r; i++) {
                    double t0 = now_s();
                    run(&ctx, prod, out, dinp, dw, inp, w, dout, N, C, OC);
                    t[i] = now_s() - t0;
                }
                qsort(t, (size_t)r, sizeof t[0], cmp_d);
                /* best of reps: this host is shared, the minimum is the kernel's speed */
                double g = flops / t[0] * 1e-9;
                printf("  %s %7.1f GF/s (%4.1f%%)", pname[prod], g, peak > 0 ? 100.0 * g / peak : 0.0);
            }
            printf("\n");
            fflush(stdout);
            matmul_ctx_free(&ctx);
            free(inp); free(w); free(dout); free(out); free(dinp); free(dw);
        }
    }
    return 0;
}
