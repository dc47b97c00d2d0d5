/*
 * attention_bench.c — median time of one attention forward + backward at the
 * trainer's default shape (B12 T64 C128 NH4) and a GPT-2-small head shape
 * (B4 T64 C768 NH12), for the dispatched kernels (AVX-512 where present)
 * against the scalar twin attention_*_scalar timed in the same run. Checks
 * the fast outputs against the scalar ones before timing.
 * Usage: attention_bench [reps]   (threads: OMP_NUM_THREADS; 1 on a busy host)
 * Times are process CPU time with 1 thread, wall time with more.
 */
#define _POSIX_C_SOURCE 199309L
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "bench_util.h"
#include "nn/attention.h"

/* 1 thread: process CPU time, which leaves out time descheduled by other
 * load; more threads: wall time (CPU time would add the threads' waits) */
static int use_wall;
static double now_s(void) {
    struct timespec ts;
    clock_gettime(use_wall ? CLOCK_MONOTONIC : CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef void (*fwd_fn)(float *, float *, const float *, const float *, int, int, int, int);
typedef void (*bwd_fn)(float *, const float *, const float *, const float *, const float *, const float *, int,
                       int, int, int);

static double time_pair(fwd_fn f, bwd_fn g, float *out, float *att, float *dqkv, const float *qkv,
                        const float *dout, int B, int T, int C, int NH, int reps) {
    double *t = malloc((size_t)reps * sizeof(double));
    size_t nqkv = (size_t)B * T * 3 * C;
    for (int r = -2; r < reps; r++) {   /* two warm-up runs */
        memset(dqkv, 0, nqkv * sizeof(float));
        double t0 = now_s();
        f(out, att, qkv, NULL, B, T, C, NH);
        g(dqkv, dout, qkv, att, out, NULL, B, T, C, NH);
        if (r >= 0) t[r] = now_s() - t0;
    }
    qsort(t, (size_t)reps, sizeof(double), bench_cmp_double);
    double med = t[reps / 2];
    free(t);
    return med;
}

static int run_shape(int B, int T, int C, int NH, int reps) {
    size_t nqkv = (size_t)B * T * 3 * C, nout = (size_t)B * T * C, natt = (size_t)B * NH * T * T;
    float *qkv = malloc(nqkv * sizeof(float)), *dout = malloc(nout * sizeof(float));
    float *out[2], *att[2], *dqkv[2];
    for (int k = 0; k < 2; k++) {
        out[k] = calloc(nout, sizeof(float));
        att[k] = calloc(natt, sizeof(float));
        dqkv[k] = calloc(nqkv, sizeof(float));
    }
    uint64_t s = 42;
    for (size_t i = 0; i < nqkv; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        qkv[i] = (float)((s >> 40) * (1.0 / 16777216.0)) * 4.0f - 2.0f;
    }
    for (size_t i = 0; i < nout; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        dout[i] = (float)((s >> 40) * (1.0 / 16777216.0)) * 2.0f - 1.0f;
    }
    /* validate: fast vs scalar twin (rounding only: rtol 1e-4 of the largest) */
    attention_forward(out[0], att[0], qkv, NULL, B, T, C, NH);
    attention_backward(dqkv[0], dout, qkv, att[0], out[0], NULL, B, T, C, NH);
    attention_forward_scalar(out[1], att[1], qkv, NULL, B, T, C, NH);
    attention_backward_scalar(dqkv[1], dout, qkv, att[1], out[1], NULL, B, T, C, NH);
    double maxabs = 0.0, maxdiff = 0.0;
    for (size_t i = 0; i < nqkv; i++) {
        maxabs = fmax(maxabs, fabs(dqkv[1][i]));
        maxdiff = fmax(maxdiff, fabs((double)dqkv[0][i] - dqkv[1][i]));
    }
    for (size_t i = 0; i < nout; i++) maxdiff = fmax(maxdiff, fabs((double)out[0][i] - out[1][i]));
    int bad = !(maxdiff <= 1e-4 * fmax(maxabs, 1.0));
    double tf = time_pair(attention_forward, attention_backward, out[0], att[0], dqkv[0], qkv, dout, B, T, C,
                          NH, reps);
    double ts = time_pair(attention_forward_scalar, attention_backward_scalar, out[1], att[1], dqkv[1], qkv,
                          dout, B, T, C, NH, reps);
    printf("B%-2d T%-4d C%-4d NH%-2d  fwd+bwd  scalar %8.3f ms  fast %8.3f ms  speedup %5.2fx  max|diff| %.2e%s\n",
           B, T, C, NH, 1e3 * ts, 1e3 * tf, ts / tf, maxdiff, bad ? "  MISMATCH" : "");
    free(qkv);
    free(dout);
    for (int k = 0; k < 2; k++) {
        free(out[k]);
        free(att[k]);
        free(dqkv[k]);
    }
    return bad;
}

int main(int argc, char **argv) {
    if (bench_wants_help(argc, argv, "attention_bench [reps]   (threads: OMP_NUM_THREADS)")) return 0;
    int reps = argc > 1 ? atoi(argv[1]) : 21;
    if (reps < 1) {
        fprintf(stderr, "attention_bench: reps '%s': expected a positive integer\n", argv[1]);
        return 2;
    }
    int nt = 1;
#ifdef _OPENMP
    nt = omp_get_max_threads();
#endif
    use_wall = nt > 1;
    char cpu[128];
    bench_cpu_name(cpu, sizeof cpu);
    printf("attention_bench: %s, %s kernels, %d thread(s), median of %d, %s time\n", cpu,
           attention_uses_avx512() ? "avx512" : "scalar", nt, reps, use_wall ? "wall" : "CPU");
    int bad = run_shape(12, 64, 128, 4, reps);
    bad |= run_shape(4, 64, 768, 12, reps);
    bad |= run_shape(1, 512, 128, 4, reps < 5 ? reps : 5);
    return bad ? 1 : 0;
}
