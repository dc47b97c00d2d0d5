/*
 * rope_bench.c — how fast librope rotates a (T, NH, HS) = (4096, 32, 128) fp32
 * activation (positions 0..T-1), against a plain memcpy of the same buffer
 * measured in the same run: RoPE reads and writes every float once, as a
 * memcpy does, so memcpy_ratio says how close a kernel comes to pure data
 * movement. In place it can pass 1: it touches one buffer where memcpy
 * touches two (and, with a large last-level cache, one buffer may stay
 * cached between passes where two do not).
 * Kernels: simd (the best this CPU supports, through rope_apply), scalar
 * (rope_apply with the scalar kernel), avx2 (when AVX-512 is the best, to show
 * the narrower kernel too) and naive (inside this file: powf/cosf/sinf per
 * token and pair, the llama2.c way). Every kernel's output is first checked
 * against the scalar kernel (exit 1 if wrong); timings are medians over
 * repeats interleaved case by case, so a noisy moment hits every case alike.
 * Output: one `rope_bench kernel=... GB/s=... memcpy_ratio=...` line per case,
 * then the simd/naive and simd/scalar ratios.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"
#include "rope.h"
#include "rope/kernels.h"
#include "util/threads.h"

#define T_TOK 4096
#define NH 32
#define HS 128
#define N_FLOATS ((size_t)T_TOK * NH * HS)
/* The naive kernel is compute-bound (powf, cosf and sinf per pair: tens of ns)
 * and tens of times slower, so it runs on the first T_NAIVE tokens only and
 * its bytes are counted for those tokens; its smaller working set does not
 * flatter it, since memory is not what limits it. */
#define T_NAIVE 256
#define REPEATS 7           /* timed runs per case (median reported), after 1 warm-up */
#define NAIVE_REPEATS 5
#define MIN_SAMPLE_S 0.02   /* a timed sample repeats a case for at least this long */

enum { K_SIMD, K_SCALAR, K_AVX2, K_NAIVE, K_MEMCPY, K_COUNT };
static const char *kernel_label[K_COUNT] = { "simd", "scalar", "avx2", "naive", "memcpy" };

typedef struct {
    int kernel, backward, layout, in_place, threads;
    int inner;             /* passes per timed sample */
    double secs[REPEATS];  /* seconds per pass, one per sample */
    double median_s, gbps;
} bench_case;

/* Shared state of one run (no globals: passed around explicitly). */
typedef struct {
    float *x;        /* (T, NH, HS) pristine input */
    float *buf;      /* (T, NH, HS) in-place working copy */
    float *out;      /* (T, NH, HS) out-of-place output, memcpy destination */
    float *ref;      /* (T, NH, HS) scalar-kernel reference */
    int32_t *pos;    /* (T) 0..T-1 */
    rope_table tab[2];   /* per layout */
    rope_kernel simd;
} bench_state;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The llama2.c way (run.c, forward()): frequency and angle in float, powf,
 * cosf and sinf for every token, head and pair. Kept here as the baseline the
 * table-driven kernels are measured against, not as a library path. */
static void rope_naive(float *y, const float *x, const int32_t *pos, int64_t n_tok,
                       int layout, int backward, int threads) {
    (void)threads;   /* unused without OpenMP */
#ifdef _OPENMP
    #pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
#endif
    for (int64_t t = 0; t < n_tok; t++) {
        for (int h = 0; h < NH; h++) {
            const float *xh = x + ((size_t)t * NH + (size_t)h) * HS;
            float *yh = y + ((size_t)t * NH + (size_t)h) * HS;
            for (int i = 0; i < HS / 2; i++) {
                float freq = 1.0f / powf(10000.0f, (float)(2 * i) / (float)HS);
                float val = (float)pos[t] * freq;
                float fcr = cosf(val), fci = sinf(val);
                if (backward) fci = -fci;
                int ia = layout == ROPE_LAYOUT_HALF ? i : 2 * i;
                int ib = layout == ROPE_LAYOUT_HALF ? i + HS / 2 : 2 * i + 1;
                float v0 = xh[ia], v1 = xh[ib];
                yh[ia] = v0 * fcr - v1 * fci;
                yh[ib] = v0 * fci + v1 * fcr;
            }
        }
    }
}

/* memcpy of x into out, split into one contiguous block per thread. */
static void memcpy_threads(float *dst, const float *src, size_t n, int threads) {
    (void)threads;
#ifdef _OPENMP
    #pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
#endif
    for (int i = 0; i < threads; i++) {
        size_t lo = n * (size_t)i / (size_t)threads, hi = n * (size_t)(i + 1) / (size_t)threads;
        memcpy(dst + lo, src + lo, (hi - lo) * sizeof *dst);
    }
}

static rope_kernel lib_kernel(const bench_state *s, int k) {
    return k == K_SIMD ? s->simd : k == K_AVX2 ? ROPE_KERNEL_AVX2 : ROPE_KERNEL_SCALAR;
}

/* One run of a case; returns 0 on success. In place rotates buf again each
 * time (rotations keep norms, so the data stays well scaled). */
static int run_case(bench_state *s, const bench_case *c) {
    if (c->kernel == K_MEMCPY) {
        memcpy_threads(s->out, s->x, N_FLOATS, c->threads);
        return 0;
    }
    float *src = c->in_place ? s->buf : s->x;
    float *dst = c->in_place ? s->buf : s->out;
    if (c->kernel == K_NAIVE) {
        rope_naive(dst, src, s->pos, T_NAIVE, c->layout, c->backward, c->threads);
        return 0;
    }
    rope_table *t = &s->tab[c->layout];
    if (rope_table_set_kernel(t, lib_kernel(s, c->kernel)) != ROPE_OK) return 1;
    rope_view vi = rope_view_packed(src, T_TOK, NH, HS), vo = rope_view_packed(dst, T_TOK, NH, HS);
    return rope_apply(t, c->backward ? ROPE_BACKWARD : ROPE_FORWARD, &vo, &vi, s->pos, c->threads) != ROPE_OK;
}

/* The reference: the scalar kernel called token by token with rows from
 * rope_table_row, independent of rope_apply's dispatch and threading. */
static void reference(bench_state *s, int layout, int backward) {
    rope_token_fn fn = rope_kernel_get(ROPE_KERNEL_SCALAR, (rope_layout)layout);
    float cs[HS / 2], sn[HS / 2];
    for (int64_t t = 0; t < T_TOK; t++) {
        rope_table_row(&s->tab[layout], s->pos[t], cs, sn);
        size_t off = (size_t)t * NH * HS;
        fn(s->ref + off, s->x + off, NH, HS, HS, cs, sn, HS / 2, backward);
    }
}

/* Checks one case's output against the reference: bit-exact for the library
 * kernels (they are built to match the scalar twin exactly); for naive, its
 * float angles at positions < T_NAIVE are off by up to ~256 * 2^-24 rad
 * relative plus cosf/sinf's ulp, so |diff| <= 1e-4 on inputs in [-1, 1]. */
static int check_case(bench_state *s, const bench_case *c) {
    if (c->in_place) memcpy(s->buf, s->x, N_FLOATS * sizeof(float));
    else memset(s->out, 0, N_FLOATS * sizeof(float));
    if (run_case(s, c)) return 1;
    const float *got = c->in_place ? s->buf : s->out;
    if (c->kernel == K_NAIVE) {
        size_t n = (size_t)T_NAIVE * NH * HS;
        for (size_t i = 0; i < n; i++)
            if (!(fabsf(got[i] - s->ref[i]) <= 1e-4f)) {
                fprintf(stderr, "rope_bench: naive differs at %zu: %.9g vs %.9g\n", i, got[i], s->ref[i]);
                return 1;
            }
        return 0;
    }
    if (memcmp(got, s->ref, N_FLOATS * sizeof(float)) != 0) {
        fprintf(stderr, "rope_bench: kernel %s (%s) differs from the scalar kernel\n",
                kernel_label[c->kernel], rope_kernel_name(lib_kernel(s, c->kernel)));
        return 1;
    }
    return 0;
}

static void cpu_model(char *name, size_t n) {
    snprintf(name, n, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) != 0) continue;
        char *p = strchr(line, ':');
        if (!p) break;
        p++;
        while (*p == ' ' || *p == '\t') p++;
        p[strcspn(p, "\n")] = 0;
        snprintf(name, n, "%s", p);
        break;
    }
    fclose(f);
}

static const char *dir_name(int bwd) { return bwd ? "bwd" : "fwd"; }
static const char *layout_name(int l) { return l == ROPE_LAYOUT_HALF ? "half" : "interleaved"; }
static const char *mode_name(int ip) { return ip ? "inplace" : "outplace"; }

/* Finds the case with these fields in cs[0..n). */
static const bench_case *find_case(const bench_case *cs, int n, int k, int bwd, int layout, int ip, int th) {
    for (int i = 0; i < n; i++)
        if (cs[i].kernel == k && cs[i].backward == bwd && cs[i].layout == layout &&
            cs[i].in_place == ip && cs[i].threads == th) return &cs[i];
    return NULL;
}

int main(int argc, char **argv) {
    if (bench_wants_help(argc, argv, "rope_bench   (no arguments; threads: OMP_NUM_THREADS)")) return 0;
    if (argc > 1) {
        fprintf(stderr, "rope_bench: unexpected argument '%s' (it takes none)\n", argv[1]);
        return 2;
    }
    double t_start = now_s();
    bench_state s;
    memset(&s, 0, sizeof s);
    s.simd = rope_kernel_best();
    s.x = malloc(N_FLOATS * sizeof(float));
    s.buf = malloc(N_FLOATS * sizeof(float));
    s.out = malloc(N_FLOATS * sizeof(float));
    s.ref = malloc(N_FLOATS * sizeof(float));
    s.pos = malloc(T_TOK * sizeof(int32_t));
    if (!s.x || !s.buf || !s.out || !s.ref || !s.pos) { fprintf(stderr, "rope_bench: out of memory\n"); return 1; }
    uint32_t r = 2463534242u;
    for (size_t i = 0; i < N_FLOATS; i++) {
        r ^= r << 13; r ^= r >> 17; r ^= r << 5;
        s.x[i] = (float)(r >> 8) * (2.0f / 16777216.0f) - 1.0f;
    }
    for (int t = 0; t < T_TOK; t++) s.pos[t] = t;
    for (int l = 0; l < 2; l++) {
        rope_config cfg = rope_config_default();
        cfg.head_dim = HS;
        cfg.rotary_dim = HS;
        cfg.layout = (rope_layout)l;
        cfg.max_positions = T_TOK;
        if (rope_table_init(&s.tab[l], &cfg, T_TOK) != ROPE_OK) { fprintf(stderr, "rope_bench: table init failed\n"); return 1; }
    }

    int nt_all = threads_max();
    char cpu[256];
    cpu_model(cpu, sizeof cpu);
    printf("rope_bench cpu=\"%s\" threads_all=%d simd=%s T=%d NH=%d HS=%d fp32 repeats=%d (naive: %d tokens, %d repeats)\n",
           cpu, nt_all, rope_kernel_name(s.simd), T_TOK, NH, HS, REPEATS, T_NAIVE, NAIVE_REPEATS);

    /* The case list: kernels x dir x layout x mode x threads, plus one memcpy
     * baseline per thread count. */
    int kernels[4], nk = 0;
    kernels[nk++] = K_SIMD;
    kernels[nk++] = K_SCALAR;
    if (s.simd == ROPE_KERNEL_AVX512 && rope_kernel_supported(ROPE_KERNEL_AVX2)) kernels[nk++] = K_AVX2;
    kernels[nk++] = K_NAIVE;
    int threads[2] = { 1, nt_all }, n_th = nt_all > 1 ? 2 : 1;
    bench_case cs[2 * (4 * 8 + 1)];
    int nc = 0;
    for (int ti = 0; ti < n_th; ti++) {
        for (int ki = 0; ki < nk; ki++)
            for (int bwd = 0; bwd < 2; bwd++)
                for (int layout = 0; layout < 2; layout++)
                    for (int ip = 1; ip >= 0; ip--) {
                        bench_case c = { kernels[ki], bwd, layout, ip, threads[ti], 1, { 0 }, 0, 0 };
                        cs[nc++] = c;
                    }
        bench_case m = { K_MEMCPY, 0, 0, 0, threads[ti], 1, { 0 }, 0, 0 };
        cs[nc++] = m;
    }

    /* Correctness first: every timed configuration against the reference. */
    for (int bwd = 0; bwd < 2; bwd++)
        for (int layout = 0; layout < 2; layout++) {
            reference(&s, layout, bwd);
            for (int i = 0; i < nc; i++)
                if (cs[i].kernel != K_MEMCPY && cs[i].backward == bwd && cs[i].layout == layout &&
                    check_case(&s, &cs[i])) {
                    fprintf(stderr, "rope_bench: wrong result for kernel=%s dir=%s layout=%s mode=%s threads=%d\n",
                            kernel_label[cs[i].kernel], dir_name(bwd), layout_name(layout),
                            mode_name(cs[i].in_place), cs[i].threads);
                    return 1;
                }
        }
    printf("rope_bench check: simd%s and scalar bit-exact vs the scalar kernel, naive within 1e-4: ok\n",
           nk == 4 ? ", avx2" : "");
    memcpy(s.buf, s.x, N_FLOATS * sizeof(float));

    /* Timing: one warm-up of every case, which also sizes each sample: a
     * sample repeats the case `inner` times so that it lasts >= MIN_SAMPLE_S
     * (with many threads one pass takes well under a millisecond, where
     * thread start-up and the previous case's cache state would dominate).
     * Then REPEATS rounds over all cases, so noise hits every case alike. */
    for (int i = 0; i < nc; i++) {
        double t0 = now_s();
        run_case(&s, &cs[i]);
        double t = now_s() - t0;
        cs[i].inner = t >= MIN_SAMPLE_S ? 1 : (int)ceil(MIN_SAMPLE_S / (t > 1e-6 ? t : 1e-6));
        if (cs[i].inner > 200) cs[i].inner = 200;
    }
    for (int rep = 0; rep < REPEATS; rep++)
        for (int i = 0; i < nc; i++) {
            if (cs[i].kernel == K_NAIVE && rep >= NAIVE_REPEATS) continue;
            double t0 = now_s();
            for (int k = 0; k < cs[i].inner; k++) run_case(&s, &cs[i]);
            cs[i].secs[rep] = (now_s() - t0) / cs[i].inner;
        }
    for (int i = 0; i < nc; i++) {
        int n = cs[i].kernel == K_NAIVE ? NAIVE_REPEATS : REPEATS;
        qsort(cs[i].secs, (size_t)n, sizeof(double), cmp_double);
        cs[i].median_s = n % 2 ? cs[i].secs[n / 2] : 0.5 * (cs[i].secs[n / 2 - 1] + cs[i].secs[n / 2]);
        double bytes = 2.0 * (double)(cs[i].kernel == K_NAIVE ? (size_t)T_NAIVE * NH * HS : N_FLOATS) * sizeof(float);
        cs[i].gbps = bytes / cs[i].median_s * 1e-9;
    }

    for (int i = 0; i < nc; i++) {
        const bench_case *c = &cs[i];
        if (c->kernel == K_MEMCPY) {
            printf("rope_bench baseline=memcpy threads=%d GB/s=%.2f\n", c->threads, c->gbps);
            continue;
        }
        const bench_case *m = find_case(cs, nc, K_MEMCPY, 0, 0, 0, c->threads);
        printf("rope_bench kernel=%s dir=%s layout=%s mode=%s threads=%d GB/s=%.2f memcpy_ratio=%.2f\n",
               kernel_label[c->kernel], dir_name(c->backward), layout_name(c->layout), mode_name(c->in_place),
               c->threads, c->gbps, c->gbps / m->gbps);
    }
    for (int i = 0; i < nc; i++) {
        const bench_case *c = &cs[i];
        if (c->kernel != K_SIMD) continue;
        const bench_case *nv = find_case(cs, nc, K_NAIVE, c->backward, c->layout, c->in_place, c->threads);
        const bench_case *sc = find_case(cs, nc, K_SCALAR, c->backward, c->layout, c->in_place, c->threads);
        printf("rope_bench summary dir=%s layout=%s mode=%s threads=%d simd/naive=%.1f simd/scalar=%.2f\n",
               dir_name(c->backward), layout_name(c->layout), mode_name(c->in_place), c->threads,
               c->gbps / nv->gbps, c->gbps / sc->gbps);
    }
    printf("rope_bench total_s=%.1f\n", now_s() - t_start);
    for (int l = 0; l < 2; l++) rope_table_free(&s.tab[l]);
    free(s.x); free(s.buf); free(s.out); free(s.ref); free(s.pos);
    return 0;
}
