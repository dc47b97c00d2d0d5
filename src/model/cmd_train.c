/*
 * cmd_train.c — `ropegpt train`: parses and cross-checks every flag, loads
 * the data, then hands a trainer (train.h) an output folder and a progress
 * callback. All checks that can fail on bad input run before anything is
 * created under --out, so a rejected command leaves no files behind.
 * Ctrl-C sets a flag; the loop finishes its step, saves model.bin and the
 * command exits 130 (the shell convention 128 + SIGINT); a second Ctrl-C
 * kills at once (SA_RESETHAND).
 */
#define _POSIX_C_SOURCE 200809L
#include "model/cmd_train.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "data/dataset.h"
#include "model/checkpoint.h"
#include "model/cmd_train_dist.h"
#include "model/gpt.h"
#include "model/llama.h"
#include "model/train.h"
#include "util/args.h"
#include "util/io.h"

#define PROG "ropegpt train"

static volatile sig_atomic_t g_interrupted;

static void on_sigint(int sig) {
    (void)sig;
    g_interrupted = 1;
}

/* ---------------------------------------------------------------- progress */

typedef struct {
    int tty;          /* stderr is a terminal: live \r line */
    int quiet;
    int live;         /* a live line is on screen (needs clearing) */
    double last_out;  /* monotonic time of the last line written */
} progress_ui;

static double mono_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void fmt_duration(char *out, size_t n, double s) {
    if (!isfinite(s) || s < 0) { snprintf(out, n, "?"); return; }
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(out, n, "%ldh%02ldm", t / 3600, (t / 60) % 60);
    else if (t >= 60) snprintf(out, n, "%ldm%02lds", t / 60, t % 60);
    else snprintf(out, n, "%lds", t);
}

static void on_step(void *ctx, const train_progress *p) {
    progress_ui *ui = ctx;
    if (ui->quiet) return;
    if (p->skipped) {   /* always shown: a skipped update is news */
        fprintf(stderr, "%sstep %lld/%lld | non-finite loss or gradient: update skipped (%lld skipped so far)\n",
                ui->live ? "\r\033[K" : "", (long long)p->step, (long long)p->steps, (long long)p->skipped_total);
        ui->live = 0;
        fflush(stderr);
        return;
    }
    /* Rate limits: the live line at most 10 times a second (tiny models take
     * thousands of steps a second); without a terminal, evaluation lines plus
     * a plain line at least every 30 s so a long --eval-every still shows life. */
    double now = mono_s();
    if (!p->evaluated && p->step != p->steps && now - ui->last_out < (ui->tty ? 0.1 : 30.0)) return;
    ui->last_out = now;
    char eta[32], el[32], val[32], tl[32];
    fmt_duration(eta, sizeof eta, p->eta_s);
    fmt_duration(el, sizeof el, p->elapsed_s);
    if (isnan(p->val_loss)) snprintf(val, sizeof val, "-");
    else snprintf(val, sizeof val, "%.4f", (double)p->val_loss);
    if (isnan(p->train_loss)) snprintf(tl, sizeof tl, "-");
    else snprintf(tl, sizeof tl, "%.4f", (double)p->train_loss);
    if (p->evaluated || !ui->tty) {
        /* A permanent line per evaluation (and, off a terminal, per 30 s). */
        char tps[48] = "";
        if (p->step > 0) snprintf(tps, sizeof tps, " | %.0f tok/s", p->tokens_per_s);
        fprintf(stderr, "%sstep %lld/%lld | train %s | val %s%s | %s elapsed\n", ui->live ? "\r\033[K" : "",
                (long long)p->step, (long long)p->steps, tl, val, tps, el);
        ui->live = 0;
    } else if (ui->tty) {
        fprintf(stderr, "\r\033[Kstep %lld/%lld | loss %s | val %s | lr %.2e | %.0f tok/s | ETA %s",
                (long long)p->step, (long long)p->steps, tl, val, p->lr, p->tokens_per_s, eta);
        ui->live = 1;
    }
    fflush(stderr);
}

/* ---------------------------------------------------------------- flags */

typedef struct {
    gpt_config cfg;
    train_config tc;
    int pe, layout;
    const char *data, *out, *resume;
    int64_t stop_after;
    int force, quiet;
    int zero;   /* ZeRO stage for data-parallel runs (0 or 1) */
    int arch, kv_heads, untied;   /* --arch, --kv-heads, --untied */
    int nan_policy;               /* --nan-policy: train_nan_policy order */
} train_opts;

enum { F_PE, F_LAYERS, F_HEADS, F_DIM, F_CTX, F_LAYOUT, F_BASE, F_FRACTION, F_BATCH, F_STEPS, F_LR,
       F_MINLR, F_WARMUP, F_BETA2, F_WD, F_CLIP, F_ACCUM, F_EVERY, F_EBATCH, F_SEED, F_THREADS,
       F_SAVE, F_DATA, F_OUT, F_RESUME, F_STOP, F_FORCE, F_QUIET, F_ZERO, F_ARCH,
       F_KVHEADS, F_UNTIED, F_NANPOL, F_COUNT };

static const char *pe_choices[PE_COUNT + 1];
static const char *const layout_choices[] = { "interleaved", "half", NULL };
static const char *const arch_choices[] = { "gpt", "llama", NULL };   /* model_arch order */
static const char *const nan_choices[] = { "stop", "skip", NULL };     /* train_nan_policy order */

static void build_specs(args_spec *s, train_opts *o) {
    for (int i = 0; i < PE_COUNT; i++) pe_choices[i] = pe_type_name((pe_type)i);
    pe_choices[PE_COUNT] = NULL;
    const double INF = INFINITY;
    args_spec t[F_COUNT] = {
        [F_PE] = { "--pe", ARG_CHOICE, &o->pe, "position encoding", 0, 0, 0, 0, pe_choices, 0 },
        [F_LAYERS] = { "--layers", ARG_INT, &o->cfg.L, "transformer blocks", 1, 4096, 0, 0, NULL, 0 },
        [F_HEADS] = { "--heads", ARG_INT, &o->cfg.NH, "attention heads", 1, 4096, 0, 0, NULL, 0 },
        [F_DIM] = { "--dim", ARG_INT, &o->cfg.C, "channels (multiple of --heads)", 1, 65536, 0, 0, NULL, 0 },
        [F_CTX] = { "--ctx", ARG_INT, &o->cfg.maxT, "context length in tokens", 1, 1 << 20, 0, 0, NULL, 0 },
        [F_LAYOUT] = { "--rope-layout", ARG_CHOICE, &o->layout, "rope pair layout", 0, 0, 0, 0,
                       layout_choices, 0 },
        [F_BASE] = { "--rope-base", ARG_DOUBLE, &o->cfg.rope_base, "rope theta base", 0, INF, 1, 0, NULL, 0 },
        [F_FRACTION] = { "--rope-fraction", ARG_DOUBLE, &o->cfg.rope_fraction,
                         "fraction of each head rotated by rope", 0, 1, 1, 0, NULL, 0 },
        [F_BATCH] = { "--batch", ARG_INT, &o->tc.B, "sequences per micro-batch", 1, 1 << 20, 0, 0, NULL, 0 },
        [F_STEPS] = { "--steps", ARG_I64, &o->tc.steps, "optimizer steps (cosine decay length)", 1, 1e12, 0, 0,
                      NULL, 0 },
        [F_LR] = { "--lr", ARG_DOUBLE, &o->tc.lr, "peak learning rate", 0, INF, 1, 0, NULL, 0 },
        [F_MINLR] = { "--min-lr", ARG_DOUBLE, &o->tc.min_lr, "final learning rate (<= --lr)", 0, INF, 0, 0,
                      NULL, 0 },
        [F_WARMUP] = { "--warmup", ARG_I64, &o->tc.warmup, "linear warmup steps", 0, 1e12, 0, 0, NULL, 0 },
        [F_BETA2] = { "--beta2", ARG_DOUBLE, &o->tc.beta2, "AdamW beta2", 0, 1, 0, 1, NULL, 0 },
        [F_WD] = { "--weight-decay", ARG_DOUBLE, &o->tc.weight_decay, "AdamW decoupled weight decay", 0, INF,
                   0, 0, NULL, 0 },
        [F_CLIP] = { "--grad-clip", ARG_DOUBLE, &o->tc.grad_clip, "global gradient-norm clip, 0 = off", 0, INF,
                     0, 0, NULL, 0 },
        [F_ACCUM] = { "--accum", ARG_INT, &o->tc.accum, "micro-batches per step", 1, 1 << 20, 0, 0, NULL, 0 },
        [F_EVERY] = { "--eval-every", ARG_I64, &o->tc.eval_every, "steps between evaluations", 1, 1e12, 0, 0,
                      NULL, 0 },
        [F_EBATCH] = { "--eval-batches", ARG_INT, &o->tc.eval_batches, "validation batches per evaluation", 1,
                       1 << 20, 0, 0, NULL, 0 },
        [F_SEED] = { "--seed", ARG_U64, &o->tc.seed, "seed of model init and training batches", 0, 0, 0, 0,
                     NULL, 0 },
        [F_THREADS] = { "--threads", ARG_INT, &o->tc.threads, "OpenMP threads, 0 = OpenMP default", 0, 4096, 0,
                        0, NULL, 0 },
        [F_SAVE] = { "--save-every", ARG_I64, &o->tc.save_every, "checkpoint every N steps, 0 = only at the end",
                     0, 1e12, 0, 0, NULL, 0 },
        [F_DATA] = { "--data", ARG_STR, &o->data, "training text (bytes are tokens; 90/10 split)", 0, 0, 0, 0,
                     NULL, 0 },
        [F_OUT] = { "--out", ARG_STR, &o->out, "output folder for log.csv and model.bin; none = runs/<pe>", 0, 0, 0,
                    0, NULL, 0 },
        [F_RESUME] = { "--resume", ARG_STR, &o->resume, "continue the run saved in this folder", 0, 0, 0, 0,
                       NULL, 0 },
        [F_STOP] = { "--stop-after", ARG_I64, &o->stop_after, "stop and save after this step, 0 = no", 0, 1e12,
                     0, 0, NULL, 0 },
        [F_FORCE] = { "--force", ARG_FLAG, &o->force, "overwrite a run already in --out", 0, 0, 0, 0, NULL, 0 },
        [F_QUIET] = { "--quiet", ARG_FLAG, &o->quiet, "no progress output", 0, 0, 0, 0, NULL, 0 },
        [F_ZERO] = { "--zero", ARG_INT, &o->zero, "under mpirun: 1 = shard AdamW state over the ranks (ZeRO-1)", 0,
                     1, 0, 0, NULL, 0 },
        [F_ARCH] = { "--arch", ARG_CHOICE, &o->arch,
                     "model family: gpt (GPT-2) or llama (RMSNorm, SwiGLU, GQA, rope interleaved)", 0, 0, 0, 0,
                     arch_choices, 0 },
        [F_KVHEADS] = { "--kv-heads", ARG_INT, &o->kv_heads,
                        "llama: key/value heads, dividing --heads; 0 = --heads", 0, 4096, 0, 0, NULL, 0 },
        [F_UNTIED] = { "--untied", ARG_FLAG, &o->untied, "llama: own output matrix instead of the token embedding",
                       0, 0, 0, 0, NULL, 0 },
        [F_NANPOL] = { "--nan-policy", ARG_CHOICE, &o->nan_policy,
                       "non-finite loss or gradient norm: stop (exit 1, last checkpoint kept) or skip the update; "
                       "per session, also with --resume", 0, 0, 0, 0, nan_choices, 0 },
    };
    memcpy(s, t, sizeof t);
}

static void print_help(const args_spec *s) {
    printf("usage: ropegpt train [flags]\n"
           "Trains a byte-level GPT (--arch llama: a Llama) on --data and writes <out>/log.csv (one row per step) and\n"
           "<out>/model.bin (a checkpoint; --resume <out> continues it bit-identically).\n"
           "Ctrl-C finishes the step, saves and exits 130. A run whose parameters, gradients, AdamW state and\n"
           "activations cannot fit in the available memory (MemAvailable, RLIMIT_AS, RLIMIT_DATA) is refused\n"
           "before allocating (exit 2). A NaN/Inf loss or gradient norm stops the run (exit 1) or, with\n"
           "--nan-policy skip, drops that update. Flags:\n");
    args_print_help(stdout, s, F_COUNT);
}

/* The arch_config the flags ask for. */
static arch_config arch_of(const train_opts *o) {
    if (o->arch != ARCH_LLAMA) return arch_config_gpt();
    arch_config a = arch_config_llama(&o->cfg);
    if (o->kv_heads > 0) a.n_kv_heads = o->kv_heads;
    a.shared_classifier = !o->untied;
    return a;
}

/* Cross-flag checks that args_parse cannot do; returns 2 after one line. */
static int check_model_flags(const train_opts *o, const args_spec *s) {
    const gpt_config *c = &o->cfg;
    if (o->arch == ARCH_GPT) {
        if (s[F_KVHEADS].seen) return args_report(PROG, "--kv-heads only applies to --arch llama");
        if (s[F_UNTIED].seen) return args_report(PROG, "--untied only applies to --arch llama");
    } else {
        if (c->pe != PE_ROPE)
            return args_report(PROG, "--arch llama uses --pe rope (got --pe %s)", pe_type_name(c->pe));
        if (c->rope_layout != ROPE_LAYOUT_INTERLEAVED)
            return args_report(PROG, "--arch llama uses --rope-layout interleaved (Meta's and llama2.c's layout)");
        if (c->rope_fraction != 1.0)
            return args_report(PROG, "--arch llama rotates whole heads: --rope-fraction must be 1 (got %g)",
                               c->rope_fraction);
        if (o->kv_heads > 0 && c->NH % o->kv_heads != 0)
            return args_report(PROG, "--kv-heads %d does not divide --heads %d", o->kv_heads, c->NH);
    }
    if (c->C % c->NH != 0)
        return args_report(PROG, "--dim %d is not divisible by --heads %d", c->C, c->NH);
    if (c->pe != PE_ROPE) {
        const int rope_flags[] = { F_LAYOUT, F_BASE, F_FRACTION };
        for (int i = 0; i < 3; i++)
            if (s[rope_flags[i]].seen)
                return args_report(PROG, "%s only applies to --pe rope (got --pe %s)", s[rope_flags[i]].name,
                                   pe_type_name(c->pe));
    } else {
        int HS = c->C / c->NH;
        if (HS % 2 != 0)
            return args_report(PROG, "--pe rope rotates channel pairs and needs an even head size; "
                                     "--dim %d / --heads %d = %d", c->C, c->NH, HS);
        if (gpt_rotary_dim(c) < 2)
            return args_report(PROG, "--rope-fraction %g of head size %d rotates fewer than 2 channels",
                               c->rope_fraction, HS);
    }
    arch_config ac = arch_of(o);
    const char *msg = arch_config_validate(c, &ac);
    if (msg) return args_report(PROG, "invalid model: %s", msg);
    if (o->tc.min_lr > o->tc.lr)
        return args_report(PROG, "--min-lr %g is larger than --lr %g", o->tc.min_lr, o->tc.lr);
    msg = train_config_validate(&o->tc);
    if (msg) return args_report(PROG, "invalid training settings: %s", msg);
    return 0;
}

/* Bytes this process can still get: MemAvailable from /proc/meminfo, lowered
 * to RLIMIT_AS / RLIMIT_DATA where those are set. < 0: unknown (no check). */
static double available_bytes(void) {
    double avail = -1.0;
    FILE *f = fopen("/proc/meminfo", "r");
    if (f) {
        char line[256];
        while (fgets(line, sizeof line, f)) {
            unsigned long long kb;
            if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1) {
                avail = 1024.0 * (double)kb;
                break;
            }
        }
        fclose(f);
    }
    const int res[] = { RLIMIT_AS, RLIMIT_DATA };
    for (int i = 0; i < 2; i++) {
        struct rlimit rl;
        if (getrlimit(res[i], &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
            (avail < 0 || (double)rl.rlim_cur < avail))
            avail = (double)rl.rlim_cur;
    }
    return avail;
}

/* Refuses, before anything is allocated, a run whose model, optimizer state
 * and activations cannot fit (gpt_memory_bytes; for --arch llama only the
 * parameters, gradients and AdamW state are counted). 2 after one line. */
static int check_memory(const gpt_config *c, const arch_config *ac, const train_config *tc) {
    double state = 0.0, acts = 0.0;
    if (ac->arch == ARCH_LLAMA) {
        llama_config lc = arch_llama_config(c, ac);
        state = (double)llama_weights_floats(&lc) * (4.0 * sizeof(float) + 1.0);
    } else {
        gpt_memory_bytes(c, tc->B, c->maxT, &state, &acts);
    }
    acts += 2.0 * (double)tc->B * (double)c->maxT * sizeof(int);   /* the trainer's batch buffers */
    const double need = state + acts, avail = available_bytes(), GiB = 1024.0 * 1024.0 * 1024.0;
    if (avail < 0 || need <= avail) return 0;
    return args_report(PROG, "this run needs %.1f GiB (params+grads+AdamW %.1f GiB, activations %.1f GiB) but "
                             "%.1f GiB is available", need / GiB, state / GiB, acts / GiB, avail / GiB);
}

/* Loads --data and checks it against the context; 2 after one line on error. */
static int load_data(dataset *ds, const char *path, int ctx) {
    data_status st = dataset_load(ds, path, 0);
    if (st != DATA_OK) return args_report(PROG, "--data '%s': %s", path, data_status_str(st));
    if (dataset_check_T(ds, ctx) != DATA_OK) {
        int rc = args_report(PROG, "--ctx %d is too long for --data '%s': each split needs more than %d tokens "
                                   "(train %zu, validation %zu)", ctx, path, ctx, ds->n_train, ds->n_val);
        dataset_free(ds);
        return rc;
    }
    return 0;
}

static int finish(const trainer *tr, train_status st, const train_result *res, const char *out, const char *err,
                  progress_ui *ui) {
    if (ui->live) fprintf(stderr, "\n");
    char ckpt[4096];
    if (io_path_join(ckpt, sizeof ckpt, out, "model.bin")) snprintf(ckpt, sizeof ckpt, "%s", out);
    if (st == TRAIN_OK) {
        char el[32];
        fmt_duration(el, sizeof el, res->elapsed_s);
        char skip[64] = "";
        if (res->skipped_steps > 0)
            snprintf(skip, sizeof skip, " (%lld updates skipped: non-finite)", (long long)res->skipped_steps);
        printf("done: %lld steps%s, train loss %.4f, val loss %.4f, %s; saved %s\n", (long long)res->steps_done,
               skip, (double)res->final_train_loss, (double)res->final_val_loss, el, ckpt);
        return 0;
    }
    if (st == TRAIN_STOPPED) {
        fprintf(stderr, "%s: %s at step %lld/%lld; saved %s; continue with: ropegpt train --resume %s\n", PROG,
                g_interrupted ? "interrupted" : "stopped", (long long)tr->step, (long long)tr->tc.steps, ckpt,
                out);
        return g_interrupted ? 130 : 0;
    }
    fprintf(stderr, "%s: %s\n", PROG, err);
    return (st == TRAIN_EIO || st == TRAIN_ECONFIG || st == TRAIN_EDATA) ? 2 : 1;
}

static int train_main(train_launch *launch, int argc, char **argv) {
    train_opts o;
    memset(&o, 0, sizeof o);
    o.cfg = gpt_config_default();
    o.tc = train_config_default();
    o.pe = (int)o.cfg.pe;
    o.layout = (int)o.cfg.rope_layout;
    o.data = "data/tinyshakespeare.txt";
    o.out = NULL;
    args_spec s[F_COUNT];
    build_specs(s, &o);
    char err[1024];
    int pr = args_parse(s, F_COUNT, argc, argv, err, sizeof err);
    if (pr == 1) {
        print_help(s);
        return 0;
    }
    if (pr) return args_report(PROG, "%s", err);
    /* --arch llama implies rope unless --pe says otherwise (then refused). */
    if (o.arch == ARCH_LLAMA && !s[F_PE].seen) o.pe = (int)PE_ROPE;
    o.cfg.pe = (pe_type)o.pe;
    o.cfg.rope_layout = (rope_layout)o.layout;

    char out_buf[4096];
    const char *out = o.out;
    char ckpt[4096];
    trainer tr;
    dataset ds;
    memset(&ds, 0, sizeof ds);
    int rc;
    if (o.resume) {
        /* A resumed run keeps every saved setting: only these may be given. */
        const int allowed[] = { F_RESUME, F_THREADS, F_DATA, F_STOP, F_QUIET, F_ZERO, F_NANPOL };
        for (int i = 0; i < F_COUNT; i++) {
            int ok = 0;
            for (size_t k = 0; k < sizeof allowed / sizeof allowed[0]; k++) ok |= (i == allowed[k]);
            if (s[i].seen && !ok)
                return args_report(PROG, "%s cannot be combined with --resume (a resumed run keeps its saved "
                                         "settings)", s[i].name);
        }
        out = o.resume;
        if (io_path_join(ckpt, sizeof ckpt, out, "model.bin"))
            return args_report(PROG, "--resume: path too long");
        checkpoint meta;
        if (checkpoint_load(ckpt, &meta, 0, err, sizeof err)) return args_report(PROG, "--resume: %s", err);
        const char *data = s[F_DATA].seen ? o.data : meta.data_path;
        int64_t saved_threads = meta.tc.threads;
        int ctx = meta.cfg.maxT;
        char data_buf[1024];
        snprintf(data_buf, sizeof data_buf, "%s", data);
        rc = check_memory(&meta.cfg, &meta.arch, &meta.tc);
        checkpoint_free(&meta);
        if (rc) return rc;
        if ((rc = load_data(&ds, data_buf, ctx))) return rc;
        train_status st = trainer_resume(&tr, ckpt, &ds, err, sizeof err);
        if (st != TRAIN_OK) {
            dataset_free(&ds);
            return args_report(PROG, "--resume: %s", err);
        }
        tr.tc.threads = s[F_THREADS].seen ? o.tc.threads : (int)saved_threads;
    } else {
        if ((rc = check_model_flags(&o, s))) return rc;
        arch_config mac = arch_of(&o);
        if ((rc = check_memory(&o.cfg, &mac, &o.tc))) return rc;
        if (!out) {
            snprintf(out_buf, sizeof out_buf, "runs/%s",
                     o.arch == ARCH_LLAMA ? "llama" : pe_type_name(o.cfg.pe));
            out = out_buf;
        }
        if (io_path_join(ckpt, sizeof ckpt, out, "model.bin")) return args_report(PROG, "--out: path too long");
        if (io_exists(ckpt) && !o.force)
            return args_report(PROG, "--out '%s' already holds a run; continue it with --resume %s or "
                                     "overwrite it with --force", out, out);
        if ((rc = load_data(&ds, o.data, o.cfg.maxT))) return rc;
        arch_config ac = arch_of(&o);
        train_status st = trainer_init_arch(&tr, &o.cfg, &ac, &o.tc, &ds, o.data, err, sizeof err);
        if (st != TRAIN_OK) {
            dataset_free(&ds);
            return args_report(PROG, "%s", err);
        }
    }
    /* The out folder is created only now, after every input check passed. */
    if (io_mkdir_p(out, err, sizeof err)) {
        trainer_free(&tr);
        dataset_free(&ds);
        return args_report(PROG, "--out: %s", err);
    }
    /* Data-parallel runs (mpirun): every rank agrees here; rank 0 alone prints. */
    if ((rc = train_launch_attach(launch, &tr, o.zero, o.quiet, PROG))) {
        trainer_free(&tr);
        dataset_free(&ds);
        return rc;
    }
    o.quiet |= !train_launch_is_root(launch);
#ifdef _OPENMP
    if (tr.tc.threads > 0) omp_set_num_threads(tr.tc.threads);
    int nthreads = tr.tc.threads > 0 ? tr.tc.threads : omp_get_max_threads();
#else
    int nthreads = 1;
#endif
    progress_ui ui = { isatty(STDERR_FILENO), o.quiet, 0, mono_s() };
    if (!o.quiet) {
        const gpt_config *c = &tr.cfg;
        char archs[96] = "";
        if (tr.arch.arch == ARCH_LLAMA)
            snprintf(archs, sizeof archs, "arch llama (kv heads %d, hidden %d%s) | ", tr.arch.n_kv_heads,
                     tr.arch.hidden_dim, tr.arch.shared_classifier ? "" : ", untied");
        fprintf(stderr, "train: %spe %s | L%d NH%d C%d ctx %d | %.2fM params | B%d x%d | %lld steps%s | "
                        "data %s (%zu/%zu tokens) | %d threads | out %s\n",
                archs, pe_type_name(c->pe), c->L, c->NH, c->C, c->maxT, (double)trainer_num_params(&tr) / 1e6, tr.tc.B,
                tr.tc.accum, (long long)tr.tc.steps, tr.resumed ? " (resumed)" : "", tr.data_path, ds.n_train,
                ds.n_val, nthreads, out);
    }
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    /* SA_RESTART: a log write or fsync in flight is resumed, not failed with EINTR. */
    sa.sa_flags = SA_RESETHAND | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    g_interrupted = 0;
    sigaction(SIGINT, &sa, &old);
    train_hooks hooks = { .on_step = on_step, .ctx = &ui, .stop = &g_interrupted, .stop_after = o.stop_after,
                          .nan_policy = (train_nan_policy)o.nan_policy };
    train_result res;
    train_status st = trainer_run(&tr, &hooks, out, &res, err, sizeof err);
    sigaction(SIGINT, &old, NULL);
    rc = finish(&tr, st, &res, out, err, &ui);
    train_result_free(&res);
    trainer_free(&tr);
    dataset_free(&ds);
    return rc;
}

int cmd_train(int argc, char **argv) {
    train_launch launch;
    int rc = train_launch_begin(&launch, PROG);
    if (rc) return rc;
    rc = train_main(&launch, argc, argv);
    return train_launch_end(&launch, rc, PROG);
}
