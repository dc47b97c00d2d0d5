/*
 * dist_bench.c — the worker of bench/dist_bench.sh: data-parallel training
 * steps of the GPT-2 124M shape (V 50304, L 12, NH 12, C 768, T 64, B 4 per
 * rank, learned positions) through the path trainer_run takes (train.c):
 * forward, backward with the train_dist hook armed (gradient buckets start
 * with MPI_Iallreduce, ZeRO-1: MPI_Ireduce_scatter, as layers finish),
 * train_dist_sync_grads (embeddings, wait; ZeRO-1: the norm from the
 * shards), the norm check, train_dist_step_norm (AdamW; ZeRO-1: sharded
 * AdamW, all-gather); started by mpirun or alone. Before timing it
 * checks the first loss is near ln(V) (a fresh model is uniform) and, after
 * the timed steps, that every rank holds the same parameters. Rank 0 prints:
 *   dist_bench_run ranks=<n> threads_per_rank=<t> zero=<z> overlap=<o> ms_per_step=<median>
 *                  tok_s=<n*B*T/step> ms_fwd_bwd=<median> ms_sync=<median> ms_step=<median>
 *                  ms_min_step=<fastest step>
 * (ms_fwd_bwd, ms_sync, ms_step split rank 0's step: forward + backward
 * including the communication the hook runs; the wait for the rest of the
 * all-reduce in train_dist_sync_grads; norm + train_dist_step_norm. The
 * fastest step shows the cost without other processes' interference on a
 * shared machine; the median stays the reported figure).
 * Usage: dist_bench --run [--steps N] [--zero 0|1] [--overlap 0|1|2] [--solo]
 * (--overlap 0: one blocking all-reduce after backward, the baseline; 2:
 * overlapped and blocking steps alternate in one run, a line for each, so
 * that both see the same load on a shared machine). --solo (under mpirun):
 * before each data-parallel step, one rank (the ranks take turns, so the
 * baseline is not one vCPU's) takes one single-process step of a model of
 * its own (forward, backward, norm, AdamW: what a 1-rank job does) while
 * the other ranks sleep, and rank 0 prints
 *   dist_bench_run ranks=1 solo=1 ms_per_step=<median> tok_s=<B*T/step>
 *   dist_bench_pairs pairs=<k> efficiency=<median of solo/step> q1=<..> q3=<..>
 * The single-rank figure then comes from the same minutes as the
 * multi-rank one: this host's speed drifts by 20-30% within minutes, which
 * separate jobs turn into a scaling error of that size.
 * Without --run (as
 * `make bench` starts every bench) it only says how to run it: the real
 * measurement needs mpirun and several GB of memory per rank.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "model/train.h"
#include "model/train_dist.h"
#include "util/dist.h"
#include "util/rng.h"
#include "bench_util.h"

#define NF 6   /* timed fields per step (see the loop) */

/* A barrier that sleeps between polls: MPI_Barrier spins, and a rank
 * waiting out another rank's solo step should leave the machine as an absent
 * rank would. */
static int sleepy_barrier(const dist *d) {
    float x = 0.0f;
    dist_reqs q = { 0 };
    if (dist_iallreduce_sum_f32(d, &x, 1, &q)) return -1;
    int r;
    const struct timespec nap = { 0, 200 * 1000 };
    while ((r = dist_reqs_test(&q)) == 0) nanosleep(&nap, NULL);
    dist_reqs_free(&q);
    return r < 0 ? -1 : 0;
}

/* One step of a single-process job, as trainer_run takes it with accum 1. */
static int solo_step(gpt *m, adamw *opt, const int *inp, const int *tgt, int B, int T) {
    float loss = gpt_forward(m, inp, tgt, B, T);
    if (!isfinite(loss) || gpt_backward_ex(m, 1.0f, 1) != GPT_OK) return -1;
    opt->lr = 1e-4f;
    double norm = grad_global_norm(m->grads_memory, m->num_params);
    return isnan(train_dist_step_norm(NULL, opt, m, norm)) ? -1 : 0;
}

int main(int argc, char **argv) {
    if (bench_wants_help(argc, argv, "dist_bench --run [--steps N] [--zero 0|1] [--overlap 0|1|2] [--solo]")) return 0;
    int run = 0, steps = 3, zero = 0, overlap = 1, solo = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--run") == 0) run = 1;
        else if (strcmp(argv[i], "--steps") == 0 && i + 1 < argc) steps = atoi(argv[++i]);
        else if (strcmp(argv[i], "--zero") == 0 && i + 1 < argc) zero = atoi(argv[++i]);
        else if (strcmp(argv[i], "--overlap") == 0 && i + 1 < argc) overlap = atoi(argv[++i]);
        else if (strcmp(argv[i], "--solo") == 0) solo = 1;
        else {
            fprintf(stderr, "dist_bench: unknown argument '%s' (usage: dist_bench --run [--steps N] [--zero 0|1] "
                            "[--overlap 0|1|2] [--solo])\n", argv[i]);
            return 2;
        }
    }
    if (!run) {
        printf("dist_bench: skipped (needs mpirun and ~2.5 GB per rank); run bench/dist_bench.sh\n");
        return 0;
    }
    if (steps < 1 || steps > 1000 || (zero != 0 && zero != 1) || overlap < 0 || overlap > 2) {
        fprintf(stderr, "dist_bench: --steps must be in [1, 1000], --zero 0 or 1, --overlap 0, 1 or 2\n");
        return 2;
    }
    dist d;
    char err[512] = "";
    if (dist_init(&d, err, sizeof err)) {
        fprintf(stderr, "dist_bench: %s\n", err);
        return 2;
    }
    const int B = 4, T = 64;
    gpt_config cfg = gpt_config_default();
    cfg.V = 50304;
    cfg.L = 12;
    cfg.NH = 12;
    cfg.C = 768;
    cfg.maxT = T;
    cfg.pe = PE_LEARNED;
    trainer tr;
    memset(&tr, 0, sizeof tr);
    tr.cfg = cfg;
    tr.tc = train_config_default();
    tr.tc.B = B;
    gpt_status st = gpt_init(&tr.model, &cfg, 1337);
    if (st != GPT_OK) {
        fprintf(stderr, "dist_bench: gpt_init: %s\n", gpt_status_str(st));
        dist_abort(&d, 1);
        return 1;
    }
    tr.opt = adamw_default();
    /* --solo: each rank's single-process model (same init, its own state) */
    const int with_solo = solo && d.size > 1;
    gpt solo_m;
    adamw solo_opt = adamw_default();
    memset(&solo_m, 0, sizeof solo_m);
    if (with_solo && (st = gpt_init(&solo_m, &cfg, 1337)) != GPT_OK) {
        fprintf(stderr, "dist_bench: gpt_init (solo): %s\n", gpt_status_str(st));
        dist_abort(&d, 1);
        return 1;
    }
    train_dist td;
    if (train_dist_init(&td, &d, &tr, zero, err, sizeof err)) {
        fprintf(stderr, "dist_bench: %s\n", err);
        dist_abort(&d, 1);
        return 1;
    }
    if (overlap != 2) train_dist_set_overlap(&td, overlap);   /* stays 0 with one rank */
    if (!td.overlap && overlap == 2) overlap = 0;            /* nothing to alternate */
    /* Random tokens (speed does not depend on them): the global batch from
     * one seed, rank r taking rows r, r+N, ... as the trainer does. */
    const size_t BT = (size_t)B * T, G = BT * (size_t)d.size;
    int *gtok = malloc((G + 1) * sizeof *gtok), *inp = malloc(BT * sizeof *inp), *tgt = malloc(BT * sizeof *tgt);
    if (!gtok || !inp || !tgt) {
        fprintf(stderr, "dist_bench: out of memory\n");
        dist_abort(&d, 1);
        return 1;
    }
    rng_state r;
    rng_init(&r, 42, 0);
    for (size_t i = 0; i <= G; i++) gtok[i] = (int)rng_below(&r, (uint64_t)cfg.V);
    for (int b = 0; b < B; b++) {
        size_t g = (size_t)b * (size_t)d.size + (size_t)d.rank;
        memcpy(inp + (size_t)b * T, gtok + g * T, (size_t)T * sizeof *inp);
        memcpy(tgt + (size_t)b * T, gtok + g * T + 1, (size_t)T * sizeof *tgt);
    }
    /* Modes: --overlap 2 alternates overlapped and blocking steps in one
     * run, so both see the same machine (a paired comparison). */
    const int nm = (overlap == 2) ? 2 : 1;
    /* warm-up: one step per mode, and with --solo one per rank, since each
     * rank's first solo step faults in its model's pages */
    const int warm = nm * (solo && d.size > 1 ? d.size : 1), total = warm + steps * nm;
    double *buf = malloc((size_t)NF * (size_t)total * sizeof *buf);
    if (!buf) {
        fprintf(stderr, "dist_bench: out of memory\n");
        dist_abort(&d, 1);
        return 1;
    }
    int bad = 0;
    for (int s = 0; s < total && !bad; s++) {
        const int mode = nm == 2 ? !(s % 2) : overlap;
        train_dist_set_overlap(&td, mode);
        double t_solo = 0.0;
        const int solo_rank = (s / nm) % d.size;   /* the ranks take turns */
        if (with_solo) {
            if (d.rank == solo_rank) {
                double ts = bench_wall_s();
                if (solo_step(&solo_m, &solo_opt, inp, tgt, B, T)) bad = 1;
                t_solo = bench_wall_s() - ts;
            }
            if (sleepy_barrier(&d)) bad = 1;
        }
        dist_barrier(&d);   /* every rank starts the step together */
        double t0 = bench_wall_s();
        float loss = gpt_forward(&tr.model, inp, tgt, B, T);
        if (s == 0 && !(fabsf(loss - logf((float)cfg.V)) < 0.5f)) {
            fprintf(stderr, "dist_bench: rank %d first loss %g, expected about ln(V) = %g\n", d.rank, (double)loss,
                    log((double)cfg.V));
            bad = 1;
        }
        tr.opt.lr = 1e-4f;
        /* As trainer_run with accum 1: the backward overwrites the gradients
         * (no zeroing pass) and scales them by 1/ranks. */
        train_dist_arm(&td, 1);
        if (gpt_backward_ex(&tr.model, train_dist_grad_scale(&td), 1) != GPT_OK) bad = 1;
        train_dist_arm(&td, 0);
        double t1 = bench_wall_s();
        if (train_dist_sync_grads(&td)) bad = 1;
        double t2 = bench_wall_s();
        /* As trainer_run: the norm checked before the update feeds the clip. */
        double norm = train_dist_grad_norm(&td, tr.model.grads_memory, tr.model.num_params);
        if (isnan(train_dist_step_norm(&td, &tr.opt, &tr.model, norm))) bad = 1;
        double t3 = bench_wall_s();
        /* The step's time is the slowest rank's; the solo time is the solo
         * rank's (0 on the others). */
        double dt = t3 - t0;
        if (d.size > 1) {
            double mine[2] = { dt, t_solo }, *all = malloc((size_t)d.size * sizeof mine);
            if (all && dist_allgather_bytes(&d, mine, sizeof mine, all) == 0)
                for (int k = 0; k < d.size; k++) {
                    dt = all[2 * k] > dt ? all[2 * k] : dt;
                    t_solo = all[2 * k + 1] > t_solo ? all[2 * k + 1] : t_solo;
                }
            free(all);
        }
        if (s < warm) continue;
        /* Per mode: buf[(NF m + field) * steps + k], fields step, fwd_bwd,
         * sync, step_norm, solo step, solo / step. */
        const int m = nm == 2 ? (s % 2) : 0, k = (s - warm) / nm;
        double *row = buf + (size_t)NF * (size_t)m * (size_t)steps;
        row[k] = dt;
        row[steps + k] = t1 - t0;
        row[2 * steps + k] = t2 - t1;
        row[3 * steps + k] = t3 - t2;
        row[4 * steps + k] = t_solo;
        row[5 * steps + k] = t_solo / dt;
    }
    /* Every rank must hold the same weights after the steps. */
    uint64_t h = dist_hash(DIST_HASH_INIT, tr.model.params_memory, tr.model.num_params * sizeof(float));
    dist_agreement a;
    if (dist_agree(&d, bad, h, NULL, &a) || !a.ok) {
        if (d.rank == 0)
            fprintf(stderr, "dist_bench: check failed (rank %d: %s)\n", a.bad_rank,
                    a.hash_mismatch ? "parameters differ from rank 0's" : "bad loss or step");
        dist_finalize(&d);
        return 1;
    }
#ifdef _OPENMP
    int threads = omp_get_max_threads();
#else
    int threads = 1;
#endif
    for (int m = 0; m < nm; m++) {
        double *row = buf + (size_t)NF * (size_t)m * (size_t)steps;
        for (int f = 0; f < NF; f++) qsort(row + (size_t)f * (size_t)steps, (size_t)steps, sizeof *row, bench_cmp_double);
        const double med = row[steps / 2];
        const int ov = nm == 2 ? !m : td.overlap;
        if (d.rank == 0)
            printf("dist_bench_run ranks=%d threads_per_rank=%d zero=%d overlap=%d ms_per_step=%.1f tok_s=%.1f "
                   "ms_fwd_bwd=%.1f ms_sync=%.1f ms_step=%.1f ms_min_step=%.1f\n", d.size, threads, zero, ov,
                   med * 1e3, (double)G / med, row[steps + steps / 2] * 1e3, row[2 * steps + steps / 2] * 1e3,
                   row[3 * steps + steps / 2] * 1e3, row[0] * 1e3);
        if (d.rank == 0 && with_solo) {
            const double solo_med = row[4 * steps + steps / 2];
            printf("dist_bench_run ranks=1 threads_per_rank=%d solo=1 overlap=%d ms_per_step=%.1f tok_s=%.1f "
                   "ms_min_step=%.1f\n", threads, ov, solo_med * 1e3, (double)BT / solo_med, row[4 * steps] * 1e3);
            printf("dist_bench_pairs ranks=%d zero=%d overlap=%d pairs=%d efficiency=%.3f q1=%.3f q3=%.3f\n", d.size,
                   zero, ov, steps, row[5 * steps + steps / 2], row[5 * steps + steps / 4],
                   row[5 * steps + (3 * steps) / 4]);
        }
    }
    if (with_solo) gpt_free(&solo_m);
    free(buf);
    free(gtok);
    free(inp);
    free(tgt);
    train_dist_free(&td);
    gpt_free(&tr.model);
    dist_finalize(&d);
    return 0;
}
