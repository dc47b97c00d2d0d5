/*
 * cmd_compare.c — `ropegpt compare --pe none,learned,sinusoidal,rope,alibi
 * --seeds 3 --steps 2000 [train flags] [--extrapolate 1,2,4,8] --out DIR`:
 * parses the flags, trains one run per (encoding, seed) through the shared
 * training loop (train.h) into DIR/<pe>_s<seed>/ (log.csv, model.bin), shows
 * a live progress line with an overall ETA, evaluates each trained model at
 * longer contexts when asked, and hands the results to compare_report.c.
 * Fairness is structural (see cmd_compare.h); the batch hash recorded per run
 * makes it checkable from runs.csv.
 */
#define _POSIX_C_SOURCE 200809L
#include "model/cmd_compare.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "util/args.h"
#include "util/io.h"
#include "util/plotpng.h"

const char *compare_pe_color(pe_type pe) {
    /* Okabe-Ito: rope blue, learned vermillion, alibi bluish green,
     * sinusoidal reddish purple, none black. */
    switch (pe) {
    case PE_NONE: return "#000000";
    case PE_LEARNED: return "#D55E00";
    case PE_SINUSOIDAL: return "#CC79A7";
    case PE_ROPE: return "#0072B2";
    case PE_ALIBI: return "#009E73";
    default: return "#777777";
    }
}

const char *compare_pe_dash(pe_type pe) {
    /* Dashes too, so the lines stay apart in grey-scale print. */
    switch (pe) {
    case PE_NONE: return "7 4";
    case PE_SINUSOIDAL: return "10 3 2 3";
    default: return NULL;
    }
}

void compare_run_configs(const compare_state *c, int k, int j, gpt_config *cfg, train_config *tc) {
    *cfg = c->cfg;
    *tc = c->tc;
    cfg->pe = c->pes[j];
    tc->seed = c->seed0 + (uint64_t)k;
}

const char *compare_config_mismatch(const gpt_config *a, const train_config *ta,
                                    const gpt_config *b, const train_config *tb) {
    /* Field by field: struct padding makes memcmp unreliable. */
#define SAME(x, name) if (!((x) == 0)) return name
    SAME(a->V - b->V, "vocab");
    SAME(a->L - b->L, "--layers");
    SAME(a->NH - b->NH, "--heads");
    SAME(a->C - b->C, "--dim");
    SAME(a->maxT - b->maxT, "--ctx");
    SAME((int)a->pe - (int)b->pe, "--pe");
    if (a->pe == PE_ROPE) {
        SAME((int)a->rope_layout - (int)b->rope_layout, "--rope-layout");
        SAME(a->rope_base != b->rope_base, "--rope-base");
        SAME(a->rope_fraction != b->rope_fraction, "--rope-fraction");
    }
    SAME(ta->B - tb->B, "--batch");
    SAME(ta->steps != tb->steps, "--steps");
    SAME(ta->lr != tb->lr, "--lr");
    SAME(ta->min_lr != tb->min_lr, "--min-lr");
    SAME(ta->warmup != tb->warmup, "--warmup");
    SAME(ta->beta1 != tb->beta1, "beta1");
    SAME(ta->beta2 != tb->beta2, "--beta2");
    SAME(ta->eps != tb->eps, "eps");
    SAME(ta->weight_decay != tb->weight_decay, "--weight-decay");
    SAME(ta->grad_clip != tb->grad_clip, "--grad-clip");
    SAME(ta->accum - tb->accum, "--accum");
    SAME(ta->eval_every != tb->eval_every, "--eval-every");
    SAME(ta->eval_batches - tb->eval_batches, "--eval-batches");
    SAME(ta->seed != tb->seed, "--seed");
#undef SAME
    return NULL;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void fmt_dur(char *buf, size_t n, double s) {
    if (!isfinite(s) || s < 0) { snprintf(buf, n, "--:--"); return; }
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, n, "%ld:%02ld:%02ld", t / 3600, (t / 60) % 60, t % 60);
    else snprintf(buf, n, "%ld:%02ld", t / 60, t % 60);
}

/* ------------------------------------------------------------ one run */

typedef struct {
    compare_state *c;
    compare_run *run;
    const trainer *tr;
    FILE *progress;
    int tty;
    int index, total;        /* run number (1-based) and run count */
    double t_start;          /* start of the whole compare */
    int64_t steps_before;    /* steps of the runs already finished */
    double last_print;
    float last_val;
} step_ctx;

static uint64_t fnv1a(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) { h ^= b[i]; h *= UINT64_C(0x100000001b3); }
    return h;
}

static void on_step(void *vctx, const train_progress *p) {
    step_ctx *s = vctx;
    compare_run *r = s->run;
    if (p->step >= 1 && p->step <= r->steps) {
        r->train[p->step - 1] = p->train_loss;
        const trainer *tr = s->tr;
        r->batch_hash = fnv1a(r->batch_hash, tr->data_rng.s, sizeof tr->data_rng.s);
        if (!p->evaluated) {
            size_t bt = (size_t)tr->tc.B * (size_t)tr->cfg.maxT;
            r->batch_hash = fnv1a(r->batch_hash, tr->inp, bt * sizeof *tr->inp);
            r->batch_hash = fnv1a(r->batch_hash, tr->tgt, bt * sizeof *tr->tgt);
        }
        r->tokens_per_s = p->tokens_per_s;
    }
    if (p->evaluated || p->step == 0) s->last_val = p->val_loss;
    if (!s->progress) return;
    double now = now_s();
    int last = p->step == p->steps;
    /* A terminal gets a line redrawn in place a few times a second; a log
     * file gets one line per evaluation. */
    if (s->tty ? (now - s->last_print < 0.25 && !last) : !(p->evaluated || p->step == 0)) return;
    s->last_print = now;
    int64_t total = (int64_t)s->total * s->c->tc.steps, done = s->steps_before + p->step;
    double eta_all = done > 0 ? (now - s->t_start) / (double)done * (double)(total - done) : NAN;
    char eta_run[32], eta_tot[32], vbuf[32], tbuf[32];
    fmt_dur(eta_run, sizeof eta_run, p->eta_s);
    fmt_dur(eta_tot, sizeof eta_tot, eta_all);
    if (isfinite(s->last_val)) snprintf(vbuf, sizeof vbuf, "%.4f", (double)s->last_val);
    else snprintf(vbuf, sizeof vbuf, "-");
    if (p->step > 0) snprintf(tbuf, sizeof tbuf, "%.4f", (double)p->train_loss);
    else snprintf(tbuf, sizeof tbuf, "-");
    fprintf(s->progress, "%s[%d/%d] %-10s seed %-6llu step %6lld/%lld  train %s  val %s  %7.0f tok/s  "
            "run ETA %s  all ETA %s%s",
            s->tty ? "\r" : "", s->index, s->total, pe_type_name(r->pe), (unsigned long long)r->seed,
            (long long)p->step, (long long)p->steps, tbuf, vbuf,
            p->tokens_per_s, eta_run, eta_tot, s->tty ? "\033[K" : "\n");
    fflush(s->progress);
}

static void extrapolate(compare_state *c, compare_run *r, gpt *m, const dataset *ds) {
    int n_var = r->pe == PE_ROPE ? EVAL_N_SCALINGS : 1;
    for (int a = 0; a < c->n_mults; a++) {
        int ctx = c->mults[a] * c->cfg.maxT;
        /* The attention probabilities grow as rows x ctx^2: fewer rows per
         * forward at longer contexts (about B x T0 tokens per call), more
         * calls, so every context sees about B x ext_batches windows. */
        int rows = c->tc.B / c->mults[a] > 1 ? c->tc.B / c->mults[a] : 1;
        int nb = (int)(((int64_t)c->ext_batches * c->tc.B + rows - 1) / rows);
        for (int v = 0; v < n_var; v++) {
            eval_result er = {.pos_loss = NULL};
            char err[256];
            if (a == c->n_mults - 1) {
                r->ext_pos[v] = malloc((size_t)ctx * sizeof *r->ext_pos[v]);
                er.pos_loss = r->ext_pos[v];   /* NULL on failure: then no curve */
            }
            int rc = eval_at_context(m, ds, ctx, eval_scaling_types[v], 0, rows, nb, &er, err, sizeof err);
            r->ext_status[a][v] = rc;
            if (rc != 0 && r->ext_pos[v] && a == c->n_mults - 1) {
                free(r->ext_pos[v]);
                r->ext_pos[v] = NULL;
            }
            r->ext[a][v] = rc == 0 ? er.loss : NAN;
            r->ext_beyond[a][v] = rc == 0 ? er.loss_beyond : NAN;
            if (rc < 0) snprintf(r->error, sizeof r->error, "extrapolation at %d: %.200s", ctx, err);
        }
    }
}

/* A resumed run: training losses and throughput of the steps already done,
 * from its log.csv (step,train_loss,val_loss,lr,elapsed_s,tokens_per_s). */
static void read_log(const char *dir, compare_run *r) {
    char path[2100], line[512];
    snprintf(path, sizeof path, "%s/log.csv", dir);
    FILE *f = fopen(path, "r");
    if (!f) return;
    double inv_sum = 0;
    int64_t n = 0;
    while (fgets(line, sizeof line, f)) {
        char *end;
        long long step = strtoll(line, &end, 10);
        if (end == line || *end != ',' || step < 1 || step > r->steps || step > r->resumed_from) continue;
        char *fld = end + 1;
        double tl = strtod(fld, &end);
        if (end != fld) r->train[step - 1] = tl;
        /* end is at the comma after train_loss: three more commas (after
         * val_loss, lr, elapsed_s) lead to tokens_per_s. */
        for (int k = 0; k < 3 && end; k++) end = strchr(end + 1, ',');
        if (end) {
            double tps = strtod(end + 1, NULL);
            if (tps > 0 && isfinite(tps)) { inv_sum += 1.0 / tps; n++; }
        }
    }
    fclose(f);
    /* Harmonic mean of per-step rates = total tokens / total time. */
    if (n > 0) r->tokens_per_s = (double)n / inv_sum;
}

static void run_one(compare_state *c, const dataset *ds, int k, int j, step_ctx *sc) {
    compare_run *r = sc->run;
    gpt_config cfg;
    train_config tc;
    compare_run_configs(c, k, j, &cfg, &tc);
    char dir[2048], name[64];
    snprintf(name, sizeof name, "%s_s%llu", pe_type_name(cfg.pe), (unsigned long long)tc.seed);
    if (io_path_join(dir, sizeof dir, c->out_dir, name) != 0) {
        snprintf(r->error, sizeof r->error, "--out: path too long");
        return;
    }
    trainer tr;
    char err[512], ckpt[2100];
    snprintf(ckpt, sizeof ckpt, "%s/model.bin", dir);
    if (c->resume && io_exists(ckpt)) {
        if (trainer_resume(&tr, ckpt, ds, err, sizeof err) != TRAIN_OK) {
            snprintf(r->error, sizeof r->error, "--resume: %.200s", err);
            return;
        }
        const char *bad = compare_config_mismatch(&tr.cfg, &tr.tc, &cfg, &tc);
        if (bad) {
            snprintf(r->error, sizeof r->error, "--resume: %.120s was trained with a different %s; "
                     "use another --out", ckpt, bad);
            trainer_free(&tr);
            return;
        }
        r->resumed_from = tr.step;
        read_log(dir, r);
    } else if (trainer_init(&tr, &cfg, &tc, ds, c->data_path, err, sizeof err) != TRAIN_OK) {
        snprintf(r->error, sizeof r->error, "%.240s", err);
        return;
    }
    r->params = gpt_num_params(&tr.model);
    sc->tr = &tr;
    train_hooks hooks = {.on_step = on_step, .ctx = sc};
    train_result res;
    memset(&res, 0, sizeof res);
    train_status st = trainer_run(&tr, &hooks, dir, &res, err, sizeof err);
    sc->tr = NULL;   /* tr is this call's; the hook context must not outlive it */
    if (sc->progress && sc->tty) fputc('\n', sc->progress);
    if (st != TRAIN_OK) {
        snprintf(r->error, sizeof r->error, "%.240s", err);
    } else {
        r->ok = 1;
        r->n_evals = res.n_evals;
        r->eval_step = malloc((size_t)(res.n_evals > 0 ? res.n_evals : 1) * sizeof *r->eval_step);
        r->val = malloc((size_t)(res.n_evals > 0 ? res.n_evals : 1) * sizeof *r->val);
        if (!r->eval_step || !r->val) {
            r->ok = 0;
            snprintf(r->error, sizeof r->error, "out of memory");
        }
        r->best_val = INFINITY;
        for (int e = 0; r->ok && e < res.n_evals; e++) {
            r->eval_step[e] = res.evals[e].step;
            r->val[e] = res.evals[e].val_loss;
            if (r->val[e] < r->best_val) { r->best_val = r->val[e]; r->best_step = r->eval_step[e]; }
        }
        r->final_val = res.final_val_loss;
        r->elapsed_s = res.elapsed_s;
        if (r->ok && c->n_mults > 0) extrapolate(c, r, &tr.model, ds);
    }
    train_result_free(&res);
    trainer_free(&tr);
}

int compare_execute(compare_state *c, const dataset *ds, FILE *progress, char *err, size_t errlen) {
    int n = c->n_seeds * c->n_pe;
    c->runs = calloc((size_t)n, sizeof *c->runs);
    if (!c->runs) { snprintf(err, errlen, "out of memory"); return -1; }
    double t0 = now_s();
    int failed = 0;
    for (int k = 0; k < c->n_seeds; k++) {
        for (int j = 0; j < c->n_pe; j++) {
            compare_run *r = &c->runs[k * c->n_pe + j];
            r->pe = c->pes[j];
            r->seed = c->seed0 + (uint64_t)k;
            r->steps = c->tc.steps;
            r->final_val = r->best_val = r->tokens_per_s = NAN;
            r->batch_hash = UINT64_C(0xcbf29ce484222325);   /* FNV-1a offset basis */
            for (int a = 0; a < COMPARE_MAX_MULTS; a++)
                for (int v = 0; v < EVAL_N_SCALINGS; v++) r->ext[a][v] = r->ext_beyond[a][v] = NAN;
            r->train = malloc((size_t)r->steps * sizeof *r->train);
            if (!r->train) { snprintf(r->error, sizeof r->error, "out of memory"); failed++; continue; }
            for (int64_t s = 0; s < r->steps; s++) r->train[s] = NAN;
            step_ctx sc = {.c = c, .run = r, .progress = c->quiet ? NULL : progress,
                           .tty = progress && isatty(fileno(progress)), .index = k * c->n_pe + j + 1,
                           .total = n, .t_start = t0, .steps_before = (int64_t)(k * c->n_pe + j) * c->tc.steps,
                           .last_val = NAN};
            run_one(c, ds, k, j, &sc);
            if (!r->ok) {
                failed++;
                if (progress) fprintf(progress, "compare: run %s seed %llu failed: %s\n", pe_type_name(r->pe),
                                      (unsigned long long)r->seed, r->error);
            } else if (progress && !c->quiet) {
                fprintf(progress, "[%d/%d] %s seed %llu done: final val %.4f, best %.4f at step %lld, "
                        "%.0f tok/s, %.1f s\n", sc.index, n, pe_type_name(r->pe), (unsigned long long)r->seed,
                        r->final_val, r->best_val, (long long)r->best_step, r->tokens_per_s, r->elapsed_s);
            }
        }
    }
    return failed;
}

void compare_state_free(compare_state *c) {
    if (c->runs) {
        for (int i = 0; i < c->n_seeds * c->n_pe; i++) {
            free(c->runs[i].eval_step);
            free(c->runs[i].val);
            free(c->runs[i].train);
            for (int v = 0; v < EVAL_N_SCALINGS; v++) free(c->runs[i].ext_pos[v]);
        }
    }
    free(c->runs);
    c->runs = NULL;
}

/* ------------------------------------------------------------ flags */

static int parse_pe_list(compare_state *c, const char *s, char *err, size_t errlen) {
    c->n_pe = 0;
    const char *p = s;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        char name[32];
        if (len == 0 || len >= sizeof name) {
            snprintf(err, errlen, "--pe: expected a comma-separated list of none,learned,sinusoidal,rope,alibi, "
                     "got '%s'", s);
            return -1;
        }
        memcpy(name, p, len);
        name[len] = 0;
        pe_type pe;
        if (pe_type_parse(name, &pe) != 0) {
            snprintf(err, errlen, "--pe: unknown encoding '%s' (expected none, learned, sinusoidal, rope, alibi)", name);
            return -1;
        }
        for (int i = 0; i < c->n_pe; i++)
            if (c->pes[i] == pe) { snprintf(err, errlen, "--pe: '%s' is listed twice", name); return -1; }
        c->pes[c->n_pe++] = pe;
        p += len + (e ? 1 : 0);
        if (e && !*p) { snprintf(err, errlen, "--pe: trailing comma in '%s'", s); return -1; }
    }
    if (c->n_pe == 0) { snprintf(err, errlen, "--pe: expected at least one encoding"); return -1; }
    return 0;
}

static int parse_mults(compare_state *c, const char *s, char *err, size_t errlen) {
    c->n_mults = 0;
    const char *p = s;
    while (*p) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || (*end && *end != ',') || v < 1 || v > 64) {
            snprintf(err, errlen, "--extrapolate: expected a comma-separated list of multipliers in [1, 64] "
                     "such as 1,2,4,8, got '%s'", s);
            return -1;
        }
        if (c->n_mults == COMPARE_MAX_MULTS) {
            snprintf(err, errlen, "--extrapolate: at most %d multipliers", COMPARE_MAX_MULTS);
            return -1;
        }
        if (c->n_mults > 0 && v <= c->mults[c->n_mults - 1]) {
            snprintf(err, errlen, "--extrapolate: multipliers must increase, got '%s'", s);
            return -1;
        }
        c->mults[c->n_mults++] = (int)v;
        p = *end ? end + 1 : end;
        if (*end && !*p) { snprintf(err, errlen, "--extrapolate: trailing comma in '%s'", s); return -1; }
    }
    return 0;
}

static const char *const layout_names[] = {"interleaved", "half", NULL};

int compare_main(int argc, char **argv, FILE *out, FILE *progress) {
    compare_state c;
    memset(&c, 0, sizeof c);
    c.cfg = gpt_config_default();
    c.tc = train_config_default();
    c.seed0 = c.tc.seed;
    c.n_seeds = 3;
    c.out_dir = "runs/compare";
    c.data_path = "data/tinyshakespeare.txt";
    c.ext_batches = 10;
    const char *pe_list = "none,learned,sinusoidal,rope,alibi", *ext_list = NULL;
    int layout = (int)c.cfg.rope_layout, threads = 0;
    int64_t seed0 = (int64_t)c.seed0;
    args_spec specs[] = {
        {.name = "--pe", .kind = ARG_STR, .dst = &pe_list, .help = "encodings to compare (comma-separated)"},
        {.name = "--seeds", .kind = ARG_INT, .dst = &c.n_seeds, .help = "seeds per encoding", .min = 1, .max = 1000},
        {.name = "--seed", .kind = ARG_I64, .dst = &seed0, .help = "first seed (runs use seed, seed+1, ...)",
         .min = 0, .max = 9e15},
        {.name = "--out", .kind = ARG_STR, .dst = &c.out_dir, .help = "output folder"},
        {.name = "--data", .kind = ARG_STR, .dst = &c.data_path, .help = "text file (byte tokens)"},
        {.name = "--steps", .kind = ARG_I64, .dst = &c.tc.steps, .help = "optimizer steps per run", .min = 1, .max = 1e12},
        {.name = "--batch", .kind = ARG_INT, .dst = &c.tc.B, .help = "batch rows B", .min = 1, .max = 1 << 20},
        {.name = "--ctx", .kind = ARG_INT, .dst = &c.cfg.maxT, .help = "training context T", .min = 1, .max = 1 << 20},
        {.name = "--layers", .kind = ARG_INT, .dst = &c.cfg.L, .help = "transformer blocks L", .min = 1, .max = 1024},
        {.name = "--heads", .kind = ARG_INT, .dst = &c.cfg.NH, .help = "attention heads NH", .min = 1, .max = 1024},
        {.name = "--dim", .kind = ARG_INT, .dst = &c.cfg.C, .help = "channels C (multiple of --heads)", .min = 1,
         .max = 1 << 16},
        {.name = "--lr", .kind = ARG_DOUBLE, .dst = &c.tc.lr, .help = "peak learning rate", .min = 0, .max = 10,
         .min_open = 1},
        {.name = "--min-lr", .kind = ARG_DOUBLE, .dst = &c.tc.min_lr, .help = "final learning rate", .min = 0, .max = 10},
        {.name = "--warmup", .kind = ARG_I64, .dst = &c.tc.warmup, .help = "warmup steps", .min = 0, .max = 1e12},
        {.name = "--beta2", .kind = ARG_DOUBLE, .dst = &c.tc.beta2, .help = "AdamW beta2", .min = 0, .max = 1,
         .max_open = 1},
        {.name = "--weight-decay", .kind = ARG_DOUBLE, .dst = &c.tc.weight_decay, .help = "AdamW weight decay",
         .min = 0, .max = 10},
        {.name = "--grad-clip", .kind = ARG_DOUBLE, .dst = &c.tc.grad_clip, .help = "global-norm clip (0 = off)",
         .min = 0, .max = 1e9},
        {.name = "--accum", .kind = ARG_INT, .dst = &c.tc.accum, .help = "micro-batches per step", .min = 1,
         .max = 1 << 16},
        {.name = "--eval-every", .kind = ARG_I64, .dst = &c.tc.eval_every, .help = "evaluate every N steps",
         .min = 1, .max = 1e12},
        {.name = "--eval-batches", .kind = ARG_INT, .dst = &c.tc.eval_batches, .help = "batches per evaluation",
         .min = 1, .max = 1 << 20},
        {.name = "--rope-base", .kind = ARG_DOUBLE, .dst = &c.cfg.rope_base, .help = "RoPE theta base", .min = 0,
         .max = 1e12, .min_open = 1},
        {.name = "--rope-fraction", .kind = ARG_DOUBLE, .dst = &c.cfg.rope_fraction,
         .help = "fraction of each head rotated", .min = 0, .max = 1, .min_open = 1},
        {.name = "--rope-layout", .kind = ARG_CHOICE, .dst = &layout, .choices = layout_names,
         .help = "RoPE pair layout"},
        {.name = "--threads", .kind = ARG_INT, .dst = &threads, .help = "OpenMP threads (0 = default)", .min = 0,
         .max = 4096},
        {.name = "--extrapolate", .kind = ARG_STR, .dst = &ext_list,
         .help = "also evaluate at these multiples of the training context, e.g. 1,2,4,8"},
        {.name = "--ext-batches", .kind = ARG_INT, .dst = &c.ext_batches,
         .help = "evaluation batches per extrapolation point", .min = 1, .max = 1 << 20},
        {.name = "--log-x", .kind = ARG_FLAG, .dst = &c.log_x, .help = "log-scaled step axis in val_loss.svg"},
        {.name = "--quiet", .kind = ARG_FLAG, .dst = &c.quiet, .help = "no progress lines"},
        {.name = "--png", .kind = ARG_FLAG, .dst = &c.png, .help = "also write PNG copies (needs gnuplot)"},
        {.name = "--resume", .kind = ARG_FLAG, .dst = &c.resume,
         .help = "continue runs whose model.bin exists in --out (finished ones are reused as they are)"},
    };
    int ns = (int)(sizeof specs / sizeof specs[0]);
    char err[1024];
    int rc = args_parse(specs, ns, argc, argv, err, sizeof err);
    if (rc == 1) {
        fprintf(out, "usage: ropegpt compare [--pe none,learned,sinusoidal,rope,alibi] [--seeds N] [--steps N] "
                "[train flags] [--extrapolate 1,2,4,8] [--out DIR]\n"
                "Trains one run per (encoding, seed) from identical shared weights on identical batches.\n");
        args_print_help(out, specs, ns);
        return 0;
    }
    if (rc != 0) { fprintf(stderr, "compare: %s\n", err); return 2; }
    if (parse_pe_list(&c, pe_list, err, sizeof err) != 0 ||
        (ext_list && parse_mults(&c, ext_list, err, sizeof err) != 0)) {
        fprintf(stderr, "compare: %s\n", err);
        return 2;
    }
    c.seed0 = (uint64_t)seed0;
    c.cfg.rope_layout = (rope_layout)layout;
    c.tc.threads = threads;
    const char *bad = gpt_config_validate(&c.cfg);
    if (!bad) {
        for (int j = 0; j < c.n_pe && !bad; j++) {
            gpt_config g = c.cfg;
            g.pe = c.pes[j];
            bad = gpt_config_validate(&g);
        }
    }
    if (!bad) bad = train_config_validate(&c.tc);
    if (bad) { fprintf(stderr, "compare: %s\n", bad); return 2; }
#ifdef _OPENMP
    if (threads > 0) omp_set_num_threads(threads);
#endif
    if (c.png && !plotpng_available()) {
        fprintf(stderr, "compare: --png: gnuplot not found, writing SVG figures only\n");
        c.png = 0;
    }
    dataset ds;
    data_status dst = dataset_load(&ds, c.data_path, c.cfg.maxT);
    if (dst != DATA_OK) {
        fprintf(stderr, "compare: --data: '%s': %s\n", c.data_path, data_status_str(dst));
        return 2;
    }
    for (int a = 0; a < c.n_mults; a++) {
        if (dataset_check_T(&ds, c.mults[a] * c.cfg.maxT) != DATA_OK) {
            fprintf(stderr, "compare: --extrapolate: the validation split is shorter than %d tokens\n",
                    c.mults[a] * c.cfg.maxT + 1);
            dataset_free(&ds);
            return 2;
        }
    }
    /* An --out that cannot be made is bad input, like an unreadable --data:
     * said before any training, exit 2. */
    if (io_mkdir_p(c.out_dir, err, sizeof err) != 0) {
        fprintf(stderr, "compare: --out: %s\n", err);
        dataset_free(&ds);
        compare_state_free(&c);
        return 2;
    }
    int failed = compare_execute(&c, &ds, progress, err, sizeof err);
    dataset_free(&ds);
    if (failed < 0) {
        fprintf(stderr, "compare: %s\n", err);
        compare_state_free(&c);
        return 1;
    }
    rc = compare_report(&c, out, err, sizeof err);
    if (rc != 0) fprintf(stderr, "compare: %s\n", err);
    compare_state_free(&c);
    return (rc != 0 || failed) ? 1 : 0;
}

int cmd_compare(int argc, char **argv) { return compare_main(argc, argv, stdout, stderr); }
