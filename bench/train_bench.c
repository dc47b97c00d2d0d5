/*
 * train_bench.c — training-step speed of the GPT trainer against this
 * machine's FP32 FMA peak, measured in the same run. For (a) the nanoGPT CPU
 * config and (b) the GPT-2 124M shape, with learned and RoPE positions, it
 * times full steps (forward + backward + AdamW through gpt.h / adamw.h),
 * reports the median step after warm-up (at least --steps steps and at least
 * MIN_TIMED_SECONDS of them), the model FLOP/s by nanoGPT's
 * estimate (6 N + 12 L NH HS T flops per token, N = parameters without wpe;
 * Chowdhery et al. 2022, PaLM, App. B), the peak from independent FMA chains
 * on every thread (the higher of a probe before and one after the steps),
 * their ratio, and the process's peak RSS beside the bytes
 * the model's buffers need. Each case runs in its own child process so its
 * peak RSS is its own (the parent never starts OpenMP, so forking is safe).
 * One line per case:
 *   train_bench config=a|b pe=<pe> threads=<n> ms_per_step=<x> gflops=<y>
 *               peak_gflops=<z> peak_fraction=<f> rss_mb=<r> need_mb=<m>
 * followed by a train_bench_phases line (median forward / backward / AdamW
 * milliseconds, and how many steps were timed) saying where the step went,
 * and the host's state (kernel_over_probe: see kernel_over_probe below),
 * and per config a
 *   train_bench_ab config=a|b threads=<n> pairs=<p> rope_over_learned=<median> q1=<> q3=<>
 * line: RoPE's step time over learned's, from steps taken alternately.
 * Usage: train_bench [--config a|b|all] [--pe learned|rope|all]
 *                    [--steps N] [--ab PAIRS (0 = skip)] [--backend own|blas|naive]
 * TB_VERBOSE=1 in the environment prints every step's loss and phases.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifdef ROPEGPT_HAVE_BLAS
char *openblas_get_corename(void);
#endif

#include "bench_util.h"
#include "model/adamw.h"
#include "model/gpt.h"
#include "model/gpt_split.h"
#include "nn/matmul.h"
#include "util/threads.h"

typedef struct {
    char name;  /* 'a' or 'b' */
    int L, NH, C, T, B, V, V_real;
} bench_config;

static const bench_config configs[2] = {
    {'a', 4, 4, 128, 64, 12, 256, 256},          /* nanoGPT shakespeare_char on CPU */
    {'b', 12, 12, 768, 64, 4, 50304, 50257},     /* GPT-2 124M, vocab padded to 64 */
};

/* One model under test: the GPT, its AdamW state and a fixed random batch. */
typedef struct {
    gpt m;
    gpt_split split;   /* the batch cut between threads, as ropegpt train does for small models */
    gpt_config cfg;
    adamw opt;
    int *tok;   /* B*T + 1 tokens: inputs tok[0..BT), targets tok[1..BT] */
} bench_model;

static int model_setup(bench_model *bm, const bench_config *bc, pe_type pe, matmul_backend backend) {
    memset(bm, 0, sizeof *bm);
    bm->cfg = gpt_config_default();
    bm->cfg.V = bc->V;
    bm->cfg.L = bc->L;
    bm->cfg.NH = bc->NH;
    bm->cfg.C = bc->C;
    bm->cfg.maxT = bc->T;
    bm->cfg.pe = pe;
    gpt_status st = gpt_init(&bm->m, &bm->cfg, 1337);
    if (st != GPT_OK) {
        fprintf(stderr, "train_bench: gpt_init failed: %s\n", gpt_status_str(st));
        return 1;
    }
    bm->m.mm.backend = backend;
    if (gpt_split_init(&bm->split, &bm->m, gpt_split_ways(&bm->m, threads_max(), bc->B)) != GPT_OK) {
        fprintf(stderr, "train_bench: out of memory\n");
        gpt_free(&bm->m);
        return 1;
    }
    const size_t BT = (size_t)bc->B * bc->T;
    bm->tok = malloc((BT + 1) * sizeof(int));
    if (!bm->tok) {
        fprintf(stderr, "train_bench: out of memory\n");
        gpt_free(&bm->m);
        return 1;
    }
    uint64_t s = 42;
    for (size_t i = 0; i <= BT; i++) { /* random tokens: speed does not depend on them */
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        bm->tok[i] = (int)((s >> 33) % (uint64_t)bc->V_real);
    }
    bm->opt = adamw_default();
    bm->opt.lr = 1e-4f;
    return 0;
}

static void model_free(bench_model *bm) {
    free(bm->tok);
    gpt_split_free(&bm->split);
    gpt_free(&bm->m);
}

/* One training step; ph receives the forward, zero_grad+backward and AdamW
 * seconds. Returns the loss. */
static float model_step(bench_model *bm, const bench_config *bc, double ph[3]) {
    double t0 = bench_wall_s();
    float loss = gpt_split_forward(&bm->split, &bm->m, bm->tok, bm->tok + 1, bc->B, bc->T);
    double tf = bench_wall_s();
    gpt_split_backward(&bm->split, &bm->m, 1.0f, 1);   /* overwrites the gradients, as ropegpt train does */
    double tb = bench_wall_s();
    adamw_step(&bm->opt, bm->m.params_memory, bm->m.grads_memory, bm->m.m_memory, bm->m.v_memory,
               bm->m.decay_mask, bm->m.num_params);
    double t1 = bench_wall_s();
    ph[0] = tf - t0;
    ph[1] = tb - tf;
    ph[2] = t1 - tb;
    return loss;
}

/* Checks a step's loss before its timing is trusted: the first loss of a
 * fresh GPT-2 init is near ln(V) (near-uniform predictions); never NaN. */
static int loss_ok(const bench_config *bc, int step, float loss) {
    if (step == 0 && !(fabs(loss - log((double)bc->V)) < 1.0)) {
        fprintf(stderr, "train_bench: config %c first loss %g, expected about ln(V) = %g\n", bc->name, loss,
                log((double)bc->V));
        return 0;
    }
    if (!isfinite(loss)) {
        fprintf(stderr, "train_bench: config %c step %d loss %g\n", bc->name, step, loss);
        return 0;
    }
    return 1;
}

static double thread_cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The host's state, to read beside peak_fraction: the matmul micro-kernel
 * alone on a panel pair that stays in L1 (no memory traffic at all), as a
 * fraction of the FMA probe, the two alternated on every thread for 15
 * rounds; the median of the per-round ratios. With AVX-512 the 12-row
 * kernel is timed in both broadcast forms and the faster counts (which
 * one wins depends on the core; the tuner uses either). This project's shared
 * 2-vCPU host has two kinds of slow minutes, and this tells them apart: in
 * one the ratio falls from ~0.9 to ~0.7 (a busy SMT sibling takes load
 * ports and issue slots that the FMA probe does not use); in the other it
 * stays near 0.9 while the steps run 1.3-1.7x slower (the caches and memory
 * that other tenants share). 0 where there is no such kernel. */
static double kernel_over_probe(void) {
#if defined(__x86_64__)
    const matmul_isa isa = matmul_isa_best();
    if (isa == MATMUL_ISA_SCALAR) return 0.0;
    const int avx512 = isa == MATMUL_ISA_AVX512;
    const int mr = avx512 ? MATMUL_MR_AVX512_12 : MATMUL_MR_AVX2, nr = avx512 ? MATMUL_NR_AVX512 : MATMUL_NR_AVX2;
    const int lanes = avx512 ? 16 : 8;
    enum { KC = 128, ROUNDS = 15, MAXT = 64 };
    const int64_t iters = 500 * 1000, calls = 4000;
    const int nt = threads_max() < MAXT ? threads_max() : MAXT;
    (void)nt;   /* read only by the OpenMP pragma */
    double ratio[ROUNDS * MAXT];
    int n = 0;
#pragma omp parallel num_threads(nt)
    {
        float *a = aligned_alloc(64, (size_t)KC * 16 * sizeof(float));
        float *b = aligned_alloc(64, (size_t)KC * 32 * sizeof(float));
        float *c = aligned_alloc(64, (size_t)16 * 32 * sizeof(float));
        if (a && b && c) {
            for (int i = 0; i < KC * 16; i++) a[i] = 1e-3f * (float)(i % 7);
            for (int i = 0; i < KC * 32; i++) b[i] = 1e-3f * (float)(i % 5);
            volatile float sink = 0.0f;
            for (int r = 0; r < ROUNDS; r++) {
                double t0 = thread_cpu_s();
                sink += avx512 ? matmul_fma_loop_avx512(iters) : matmul_fma_loop_avx2(iters);
                double t1 = thread_cpu_s();
                for (int64_t q = 0; q < calls; q++)
                    (avx512 ? matmul_ukr_avx512_12 : matmul_ukr_avx2)(KC, a, (size_t)mr, b, (size_t)nr, c, (size_t)nr,
                                                                   MATMUL_UKR_SET, NULL);
                double t2 = thread_cpu_s();
                /* the register-broadcast twin: the faster of the two is the kernel's rate on this core */
                for (int64_t q = 0; avx512 && q < calls; q++)
                    matmul_ukr_avx512_12r(KC, a, (size_t)mr, b, (size_t)nr, c, (size_t)nr, MATMUL_UKR_SET, NULL);
                double t3 = thread_cpu_s();
                sink += c[0];
                const double probe = (double)iters * MATMUL_PEAK_CHAINS * lanes * 2.0 / (t1 - t0);
                const double flops = (double)calls * 2.0 * mr * nr * KC;
                const double kern = avx512 && t3 - t2 < t2 - t1 ? flops / (t3 - t2) : flops / (t2 - t1);
#pragma omp critical
                ratio[n++] = kern / probe;
            }
            (void)sink;
        }
        free(a);
        free(b);
        free(c);
    }
    return n ? bench_median(ratio, n) : 0.0;
#else
    return 0.0;
#endif
}

/* Untimed steps before the timed ones: the matmul tuner (matmul_tune.h)
 * spends a shape's first 1 + MATMUL_TUNE_MAXV * MATMUL_TUNE_WARMUP calls
 * trying every kernel variant once, and the LM head's two shapes are called
 * once per step, so its exploration (variants up to 1.4x slower than the
 * best) takes 9 steps. A training run amortises that over thousands of
 * steps; the benchmark reports the steady state that follows it. */
#define WARMUP_STEPS (2 + MATMUL_TUNE_MAXV * MATMUL_TUNE_WARMUP)

/* Steps are timed for at least this long (and at least --steps of them), so
 * that a burst of other load on a shared host, which lasts a fraction of a
 * second to seconds, cannot own the median of config (a)'s ~25 ms steps. */
#define MIN_TIMED_SECONDS 1.5
#define MAX_TIMED_STEPS 1000

/* Runs one case; prints its line; returns 0, or 1 on a failed check. */
static int run_case(const bench_config *bc, pe_type pe, int min_steps, matmul_backend backend) {
    const int warmup = WARMUP_STEPS;
    const int cap = min_steps > MAX_TIMED_STEPS ? min_steps : MAX_TIMED_STEPS;
    double peak = matmul_peak_gflops();
    bench_model bm;
    if (model_setup(&bm, bc, pe, backend)) return 1;
    const int T = bc->T;
    const size_t BT = (size_t)bc->B * T;
    double *dt = malloc((size_t)cap * sizeof(double));
    double *ph = malloc(3 * (size_t)cap * sizeof(double)); /* forward, backward, AdamW */
    if (!dt || !ph) {
        fprintf(stderr, "train_bench: out of memory\n");
        free(dt);
        free(ph);
        model_free(&bm);
        return 1;
    }
    int ok = 1, steps = 0;
    const int verbose = getenv("TB_VERBOSE") != NULL;
    double timed = 0.0;
    for (int step = 0; steps < min_steps || (timed < MIN_TIMED_SECONDS && steps < cap); step++) {
        double p3[3];
        float loss = model_step(&bm, bc, p3);
        ok &= loss_ok(bc, step, loss);
        if (verbose)
            fprintf(stderr, "step %d loss %.4f fwd %.1f bwd %.1f adamw %.1f\n", step, loss, p3[0] * 1e3,
                    p3[1] * 1e3, p3[2] * 1e3);
        if (step >= warmup) {
            for (int k = 0; k < 3; k++) ph[(size_t)k * cap + steps] = p3[k];
            dt[steps++] = p3[0] + p3[1] + p3[2];
            timed += p3[0] + p3[1] + p3[2];
        }
    }
    double med = bench_median(dt, steps);
    /* The peak probe is short: on a shared host a burst of other load during
     * it reads low and would flatter the fraction, so probe again after the
     * steps and keep the higher reading. */
    const double peak2 = matmul_peak_gflops();
    if (peak2 > peak) peak = peak2;
    const double kernel_state = kernel_over_probe();
    /* nanoGPT estimate_mfu: N = all parameters except wpe (the tied wte is the
     * LM head, which is real compute); attention 12 L NH HS T per token. */
    size_t sizes[GPT_NUM_TENSORS];
    size_t nparams = gpt_tensor_sizes(&bm.cfg, sizes);
    double N = (double)(nparams - sizes[1]);
    double HS = (double)bc->C / bc->NH;
    double flops_per_token = 6.0 * N + 12.0 * bc->L * bc->NH * HS * T;
    double gflops = flops_per_token * (double)BT / med * 1e-9;
    /* Bytes the model's own buffers need: params, grads, AdamW m and v
     * (4 floats per parameter) + the decay mask (1 byte) + saved and
     * gradient activations + the matmul packing scratch. */
    const gpt *m = &bm.m;
    double need = 16.0 * (double)m->num_params + (double)m->num_params +
                  4.0 * ((double)m->acts_capacity + (double)m->gacts_capacity + (double)m->mm.scratch_floats) +
                  gpt_split_bytes(&bm.split);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double rss_mb = (double)ru.ru_maxrss / 1024.0; /* Linux: kilobytes */
    printf("train_bench config=%c pe=%s threads=%d ms_per_step=%.1f gflops=%.1f peak_gflops=%.1f "
           "peak_fraction=%.3f rss_mb=%.1f need_mb=%.1f\n",
           bc->name, pe_type_name(pe), threads_max(), med * 1e3, gflops, peak,
           peak > 0 ? gflops / peak : 0.0, rss_mb, need / (1024.0 * 1024.0));
    /* Where the step goes (medians of each phase), to read beside the line above. */
    printf("train_bench_phases config=%c pe=%s split=%d steps=%d forward_ms=%.1f backward_ms=%.1f adamw_ms=%.1f "
           "kernel_over_probe=%.3f\n",
           bc->name, pe_type_name(pe), bm.split.k, steps, bench_median(ph, steps) * 1e3,
           bench_median(ph + cap, steps) * 1e3, bench_median(ph + 2 * (size_t)cap, steps) * 1e3, kernel_state);
    fflush(stdout);
    free(ph);
    free(dt);
    model_free(&bm);
    return ok ? 0 : 1;
}

/* RoPE's cost beside learned positions, robust to a shared host's drifting
 * load: both models live in one process and their steps alternate in
 * ABBA order, so both see the same load; each pair gives one ratio
 * rope/learned, and the median and quartiles of the ratios are printed. */
static int run_ab(const bench_config *bc, int pairs, matmul_backend backend) {
    bench_model a, b;
    if (model_setup(&a, bc, PE_LEARNED, backend)) return 1;
    if (model_setup(&b, bc, PE_ROPE, backend)) {
        model_free(&a);
        return 1;
    }
    /* at least `pairs` pairs and at least MIN_TIMED_SECONDS of them (config
     * (a)'s ~40 ms pairs: 10 of them sat inside one burst of other load) */
    const int cap = pairs > MAX_TIMED_STEPS ? pairs : MAX_TIMED_STEPS;
    double *r = malloc((size_t)cap * sizeof(double));
    if (!r) {
        fprintf(stderr, "train_bench: out of memory\n");
        model_free(&a);
        model_free(&b);
        return 1;
    }
    int ok = 1;
    const int warmup = WARMUP_STEPS;
    int n = 0;
    double timed = 0.0;
    for (int i = 0; n < pairs || (timed < MIN_TIMED_SECONDS && n < cap); i++) {
        double pa[3], pb[3];
        float la, lb;
        if (i % 2 == 0) {
            la = model_step(&a, bc, pa);
            lb = model_step(&b, bc, pb);
        } else {
            lb = model_step(&b, bc, pb);
            la = model_step(&a, bc, pa);
        }
        ok &= loss_ok(bc, i, la) & loss_ok(bc, i, lb);
        if (i >= warmup) {
            const double ta = pa[0] + pa[1] + pa[2], tb = pb[0] + pb[1] + pb[2];
            r[n++] = tb / ta;
            timed += ta + tb;
        }
    }
    qsort(r, (size_t)n, sizeof r[0], bench_cmp_double);
    printf("train_bench_ab config=%c threads=%d pairs=%d rope_over_learned=%.3f q1=%.3f q3=%.3f\n", bc->name,
           threads_max(), n, bench_median(r, n), r[n / 4], r[(3 * n) / 4]);
    fflush(stdout);
    free(r);
    model_free(&a);
    model_free(&b);
    return ok ? 0 : 1;
}

/* Runs fn in a child process (its own peak RSS; the parent never starts
 * OpenMP, so forking is safe). Returns 0 if the child succeeded. */
static int in_child(int (*fn)(const bench_config *, int, int, matmul_backend), const bench_config *bc, int arg,
                    int steps, matmul_backend backend) {
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "train_bench: fork failed\n");
        return 1;
    }
    if (pid == 0) _exit(fn(bc, arg, steps, backend));
    int status = 0;
    return waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0;
}

static int case_fn(const bench_config *bc, int pe, int steps, matmul_backend backend) {
    return run_case(bc, (pe_type)pe, steps, backend);
}

static int ab_fn(const bench_config *bc, int unused, int steps, matmul_backend backend) {
    (void)unused;
    return run_ab(bc, steps, backend);
}

static int usage(const char *msg, const char *val) {
    fprintf(stderr, "train_bench: %s '%s' (usage: train_bench [--config a|b|all] "
                    "[--pe learned|rope|all] [--steps N>=1] [--ab PAIRS>=0] [--backend own|blas|naive])\n", msg, val);
    return 2;
}

int main(int argc, char **argv) {
    if (bench_wants_help(argc, argv, "train_bench [--config a|b|all] [--pe learned|rope|all] [--steps N>=1] "
                                     "[--ab PAIRS>=0] [--backend own|blas|naive]")) return 0;
    const char *config = "all", *pes = "all";
    int steps = 10, ab_pairs = 10;
    matmul_backend backend = MATMUL_OWN;
    for (int i = 1; i < argc; i += 2) { /* --flag value pairs */
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) return usage("missing value after", a);
        if (strcmp(a, "--config") == 0) {
            if (strcmp(v, "a") && strcmp(v, "b") && strcmp(v, "all")) return usage("--config expects a, b or all, got", v);
            config = v;
        } else if (strcmp(a, "--pe") == 0) {
            if (strcmp(v, "learned") && strcmp(v, "rope") && strcmp(v, "all")) return usage("--pe expects learned, rope or all, got", v);
            pes = v;
        } else if (strcmp(a, "--steps") == 0) {
            char *end;
            long n = strtol(v, &end, 10);
            if (*end || n < 1 || n > 100000) return usage("--steps expects an integer >= 1, got", v);
            steps = (int)n;
        } else if (strcmp(a, "--ab") == 0) {
            char *end;
            long n = strtol(v, &end, 10);
            if (*end || n < 0 || n > 100000) return usage("--ab expects an integer >= 0, got", v);
            ab_pairs = (int)n;
        } else if (strcmp(a, "--backend") == 0) {
            if (strcmp(v, "own") == 0) backend = MATMUL_OWN;
            else if (strcmp(v, "blas") == 0) backend = MATMUL_BLAS;
            else if (strcmp(v, "naive") == 0) backend = MATMUL_NAIVE;
            else return usage("--backend expects own, blas or naive, got", v);
        } else {
            return usage("unknown flag", a);
        }
    }
    char cpu[128];
    bench_cpu_name(cpu, sizeof cpu);
    printf("train_bench cpu=\"%s\" isa=%s backend=%s", cpu, matmul_isa_name(matmul_isa_best()),
           matmul_backend_name(backend));
#ifdef ROPEGPT_HAVE_BLAS
    printf(" openblas_core=%s", openblas_get_corename());
#endif
    /* OpenMP's wait policy decides how barriers behave on an oversubscribed
     * host (spinning threads burn the slices the others need); print it. */
    const char *wp = getenv("OMP_WAIT_POLICY");
    printf(" OMP_WAIT_POLICY=%s steps>=%d over >=%.1f s (median after %d warm-up)\n", wp ? wp : "unset", steps,
           MIN_TIMED_SECONDS, WARMUP_STEPS);
    fflush(stdout);
    int rc = 0;
    for (int c = 0; c < 2; c++) {
        if (strcmp(config, "all") && config[0] != configs[c].name) continue;
        for (int p = 0; p < 2; p++) {
            pe_type pe = p == 0 ? PE_LEARNED : PE_ROPE;
            if (strcmp(pes, "all") && strcmp(pes, pe_type_name(pe))) continue;
            rc |= in_child(case_fn, &configs[c], (int)pe, steps, backend);
        }
        if (ab_pairs > 0) rc |= in_child(ab_fn, &configs[c], 0, ab_pairs, backend);
    }
    return rc;
}
