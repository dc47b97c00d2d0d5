/*
 * train.c — the training loop shared by `ropegpt train` and `ropegpt
 * compare` (see train.h for the step numbering and the log.csv format).
 * Bit-identical resume rests on three things: every bit of state that later
 * steps read is in the checkpoint (params, AdamW m, v and t, the data RNG,
 * the step), the learning rate is a pure function of the step, and the
 * evaluation batches come from their own fixed seed rather than the data RNG.
 */
#define _POSIX_C_SOURCE 200809L
#include "model/train.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "model/checkpoint.h"
#include "model/train_dist.h"
#include "util/errmsg.h"
#include "util/io.h"

/* Stream ids of one seed: 0 and 1 are the model init (gpt.h); the training
 * batches take their own so they never overlap the init draws. */
#define TRAIN_DATA_STREAM 2u

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---------------------------------------------------------------- config */

train_config train_config_default(void) {
    train_config tc;
    memset(&tc, 0, sizeof tc);
    tc.B = 12;
    tc.steps = 2000;
    tc.lr = 1e-3;
    tc.min_lr = 1e-4;
    tc.warmup = 100;
    tc.beta1 = 0.9;
    tc.beta2 = 0.99;
    tc.eps = 1e-8;
    tc.weight_decay = 0.1;
    tc.grad_clip = 1.0;
    tc.accum = 1;
    tc.eval_every = 100;
    tc.eval_batches = 20;
    tc.seed = 1337;
    tc.threads = 0;
    tc.save_every = 0;
    return tc;
}

const char *train_config_validate(const train_config *tc) {
    if (!tc) return "train config is NULL";
    if (tc->B < 1) return "batch must be >= 1";
    if (tc->steps < 1) return "steps must be >= 1";
    if (!isfinite(tc->lr) || !(tc->lr > 0)) return "lr must be a finite number > 0";
    if (!isfinite(tc->min_lr) || tc->min_lr < 0 || tc->min_lr > tc->lr) return "min-lr must be in [0, lr]";
    if (tc->warmup < 0) return "warmup must be >= 0";
    if (!isfinite(tc->beta1) || tc->beta1 < 0 || tc->beta1 >= 1) return "beta1 must be in [0, 1)";
    if (!isfinite(tc->beta2) || tc->beta2 < 0 || tc->beta2 >= 1) return "beta2 must be in [0, 1)";
    if (!isfinite(tc->eps) || !(tc->eps > 0)) return "eps must be a finite number > 0";
    if (!isfinite(tc->weight_decay) || tc->weight_decay < 0) return "weight-decay must be >= 0";
    if (!isfinite(tc->grad_clip) || tc->grad_clip < 0) return "grad-clip must be >= 0 (0 = off)";
    if (tc->accum < 1) return "accum must be >= 1";
    if (tc->eval_every < 1) return "eval-every must be >= 1";
    if (tc->eval_batches < 1) return "eval-batches must be >= 1";
    if (tc->threads < 0) return "threads must be >= 0";
    if (tc->save_every < 0) return "save-every must be >= 0";
    return NULL;
}

const char *train_status_str(train_status s) {
    switch (s) {
    case TRAIN_OK: return "ok";
    case TRAIN_STOPPED: return "stopped on request";
    case TRAIN_ECONFIG: return "invalid configuration";
    case TRAIN_EMODEL: return "model error";
    case TRAIN_EDATA: return "data error";
    case TRAIN_EIO: return "file error";
    case TRAIN_ENOMEM: return "out of memory";
    default: return "unknown status";
    }
}

void train_result_free(train_result *r) {
    if (!r) return;
    free(r->evals);
    memset(r, 0, sizeof *r);
}

/* ---------------------------------------------------------------- arch */

arch_config arch_config_gpt(void) {
    arch_config a;
    memset(&a, 0, sizeof a);
    a.arch = ARCH_GPT;
    return a;
}

int llama_hidden_dim(int C) {
    int64_t h = (4 * (int64_t)C * 2 + 2) / 3;   /* ceil(8C / 3) */
    h = (h + 31) / 32 * 32;
    return h > INT32_MAX ? INT32_MAX : (int)h;
}

arch_config arch_config_llama(const gpt_config *cfg) {
    arch_config a;
    memset(&a, 0, sizeof a);
    a.arch = ARCH_LLAMA;
    a.n_kv_heads = cfg->NH;
    a.hidden_dim = llama_hidden_dim(cfg->C);
    a.shared_classifier = 1;
    return a;
}

const char *model_arch_name(model_arch a) {
    switch (a) {
    case ARCH_GPT: return "gpt";
    case ARCH_LLAMA: return "llama";
    default: return NULL;
    }
}

llama_config arch_llama_config(const gpt_config *cfg, const arch_config *ac) {
    llama_config l = llama_config_default();
    l.dim = cfg->C;
    l.hidden_dim = ac->hidden_dim;
    l.n_layers = cfg->L;
    l.n_heads = cfg->NH;
    l.n_kv_heads = ac->n_kv_heads;
    l.vocab_size = cfg->V;
    l.seq_len = cfg->maxT;
    l.shared_classifier = ac->shared_classifier;
    l.rope_base = cfg->rope_base;
    return l;
}

const char *arch_config_validate(const gpt_config *cfg, const arch_config *ac) {
    if (!cfg || !ac) return "model config is NULL";
    const char *msg = gpt_config_validate(cfg);
    if (msg) return msg;
    if (ac->arch == ARCH_GPT) return NULL;
    if (ac->arch != ARCH_LLAMA) return "unknown architecture";
    if (cfg->pe != PE_ROPE) return "the llama architecture uses rope position encoding";
    if (cfg->rope_layout != ROPE_LAYOUT_INTERLEAVED) return "the llama architecture uses the interleaved rope layout";
    if (cfg->rope_fraction != 1.0) return "the llama architecture rotates whole heads (rope fraction 1)";
    if (ac->n_kv_heads < 1 || cfg->NH % ac->n_kv_heads != 0) return "kv heads must divide heads";
    if (ac->hidden_dim < 1) return "hidden dim must be >= 1";
    if (ac->shared_classifier != 0 && ac->shared_classifier != 1) return "shared classifier must be 0 or 1";
    llama_config l = arch_llama_config(cfg, ac);
    if (llama_config_validate(&l, NULL, 0) != LLAMA_OK) return "invalid llama shape";
    return NULL;
}

/* ------------------------------------------------ model ops (per arch)
 * The loop below is written once; these switch to the live model. */

static int is_llama(const trainer *tr) { return tr->arch.arch == ARCH_LLAMA; }

size_t trainer_num_params(const trainer *tr) {
    return is_llama(tr) ? tr->llama.n_params : tr->model.num_params;
}

static void model_zero_grad(trainer *tr) {
    if (is_llama(tr)) llama_train_zero_grad(&tr->llama);
    else gpt_zero_grad(&tr->model);
}

/* Mean loss over (B, T); NAN with *why set on a model error. */
static float model_forward(trainer *tr, const int *inp, const int *tgt, int B, int T, const char **why) {
    *why = NULL;
    if (is_llama(tr)) {
        float loss = NAN;
        int st = llama_train_forward(&tr->llama, inp, tgt, B, T, &loss);
        if (st != LLAMA_OK) { *why = llama_status_str(st); return NAN; }
        return loss;
    }
    if (!tr->split_ready && !tr->dist) {
        /* The thread count is final here (cmd_train sets it after
         * trainer_init). Under MPI the split stays off (k 1): its calls
         * below are then gpt_forward and gpt_backward_ex. */
        int threads = 1;
#ifdef _OPENMP
        threads = omp_get_max_threads();
#endif
        if (gpt_split_init(&tr->split, &tr->model, gpt_split_ways(&tr->model, threads, B)) != GPT_OK) {
            *why = gpt_status_str(GPT_ENOMEM);
            return NAN;
        }
        tr->split_ready = 1;
    }
    float loss = gpt_split_forward(&tr->split, &tr->model, inp, tgt, B, T);
    if (tr->model.status != GPT_OK) *why = gpt_status_str(tr->model.status);
    return loss;
}

/* Accumulates scale * d(loss)/d(params) (GPT with first set: overwrites
 * them, so the step needs no zeroing pass); NULL or a one-word reason. */
static const char *model_backward(trainer *tr, float scale, int first) {
    if (is_llama(tr)) {
        /* llama_train_backward accumulates the unscaled mean-loss gradient;
         * model_step divides the accumulated sum by accum instead. */
        int st = llama_train_backward(&tr->llama);
        return st == LLAMA_OK ? NULL : llama_status_str(st);
    }
    gpt_status st = gpt_split_backward(&tr->split, &tr->model, scale, first);
    return st == GPT_OK ? NULL : gpt_status_str(st);
}

/* One optimizer step. norm: the global gradient norm when the caller has it
 * (train_dist_grad_norm after train_dist_sync_grads), NaN to have it
 * computed. */
static double model_step(trainer *tr, double norm) {
    if (is_llama(tr)) {
        llama_trainer *m = &tr->llama;
        if (tr->tc.accum > 1) {
            /* The sum of accum mean-loss gradients, made their mean. */
            const float inv = 1.0f / (float)tr->tc.accum;
            for (size_t i = 0; i < m->n_params; i++) m->grads[i] *= inv;
        }
        /* norm was taken before the 1/accum scaling: valid only for accum 1 */
        if (tr->tc.accum == 1 && !isnan(norm))
            return adamw_step_norm(&tr->opt, m->params, m->grads, tr->llama_m, tr->llama_v, tr->llama_decay,
                                   m->n_params, norm);
        return adamw_step(&tr->opt, m->params, m->grads, tr->llama_m, tr->llama_v, tr->llama_decay, m->n_params);
    }
    if (!tr->dist && !isnan(norm))
        return adamw_step_norm(&tr->opt, tr->model.params_memory, tr->model.grads_memory, tr->model.m_memory,
                               tr->model.v_memory, tr->model.decay_mask, tr->model.num_params, norm);
    return train_dist_step_norm(tr->dist, &tr->opt, &tr->model, norm);
}

/* The live model's flat gradient buffer (trainer_num_params floats). */
static float *model_grads(trainer *tr) {
    return is_llama(tr) ? tr->llama.grads : tr->model.grads_memory;
}

static float model_eval_loss(trainer *tr, const int *inp, const int *tgt, int B, int T) {
    if (is_llama(tr)) {
        float loss = NAN;
        return llama_train_forward(&tr->llama, inp, tgt, B, T, &loss) == LLAMA_OK ? loss : NAN;
    }
    return gpt_eval_loss(&tr->model, inp, tgt, B, T);
}

static const char *model_status(const trainer *tr) {
    return is_llama(tr) ? "llama forward failed" : gpt_status_str(tr->model.status);
}

/* ---------------------------------------------------------------- trainer */

void trainer_free(trainer *tr) {
    if (!tr) return;
    gpt_split_free(&tr->split);
    gpt_free(&tr->model);
    llama_train_free(&tr->llama);
    free(tr->llama_m);
    free(tr->llama_v);
    free(tr->llama_decay);
    free(tr->evals);
    free(tr->inp);
    free(tr->tgt);
    memset(tr, 0, sizeof *tr);
}

static int push_eval(trainer *tr, int64_t step, float loss) {
    if (tr->n_evals == tr->cap_evals) {
        int cap = tr->cap_evals ? 2 * tr->cap_evals : 32;
        train_eval_point *e = realloc(tr->evals, (size_t)cap * sizeof *e);
        if (!e) return -1;
        tr->evals = e;
        tr->cap_evals = cap;
    }
    tr->evals[tr->n_evals].step = step;
    tr->evals[tr->n_evals].val_loss = loss;
    tr->n_evals++;
    return 0;
}

train_status trainer_init(trainer *tr, const gpt_config *cfg, const train_config *tc,
                          const dataset *ds, const char *data_path, char *err, size_t errlen) {
    return trainer_init_arch(tr, cfg, NULL, tc, ds, data_path, err, errlen);
}

/* The Llama model and its AdamW state (zeroed moments, 2-D weights decayed). */
static train_status init_llama(trainer *tr, char *err, size_t errlen) {
    llama_config lc = arch_llama_config(&tr->cfg, &tr->arch);
    int st = llama_train_init(&tr->llama, &lc, tr->tc.seed);
    if (st != LLAMA_OK) {
        errmsg(err, errlen, -1, "model init: %s", llama_status_str(st));
        return st == LLAMA_ENOMEM ? TRAIN_ENOMEM : TRAIN_EMODEL;
    }
    size_t n = tr->llama.n_params;
    tr->llama_m = calloc(n, sizeof(float));
    tr->llama_v = calloc(n, sizeof(float));
    tr->llama_decay = malloc(n);
    if (!tr->llama_m || !tr->llama_v || !tr->llama_decay) {
        errmsg(err, errlen, -1, "out of memory for the optimizer state");
        return TRAIN_ENOMEM;
    }
    llama_train_decay_mask(&tr->llama, tr->llama_decay);
    return TRAIN_OK;
}

train_status trainer_init_arch(trainer *tr, const gpt_config *cfg, const arch_config *ac, const train_config *tc,
                               const dataset *ds, const char *data_path, char *err, size_t errlen) {
    memset(tr, 0, sizeof *tr);
    const arch_config gpt_arch = arch_config_gpt();
    if (!ac) ac = &gpt_arch;
    const char *msg = arch_config_validate(cfg, ac);
    if (msg) { errmsg(err, errlen, -1, "model config: %s", msg); return TRAIN_ECONFIG; }
    msg = train_config_validate(tc);
    if (msg) { errmsg(err, errlen, -1, "train config: %s", msg); return TRAIN_ECONFIG; }
    if (!ds || !ds->bytes) { errmsg(err, errlen, -1, "no dataset"); return TRAIN_EDATA; }
    if (dataset_check_T(ds, cfg->maxT) != DATA_OK) {
        errmsg(err, errlen, -1, "data: ctx %d needs more than %d tokens in each split (train %zu, val %zu)",
               cfg->maxT, cfg->maxT, ds->n_train, ds->n_val);
        return TRAIN_EDATA;
    }
    tr->cfg = *cfg;
    tr->arch = *ac;
    tr->tc = *tc;
    tr->ds = ds;
    tr->data_len = (uint64_t)ds->n;
    tr->data_crc = io_crc32(0, ds->bytes, ds->n);
    snprintf(tr->data_path, sizeof tr->data_path, "%s", data_path ? data_path : "");
    if (is_llama(tr)) {
        train_status ls = init_llama(tr, err, errlen);
        if (ls != TRAIN_OK) {
            trainer_free(tr);
            return ls;
        }
    }
    gpt_status st = is_llama(tr) ? GPT_OK : gpt_init(&tr->model, cfg, tc->seed);
    if (st != GPT_OK) {
        errmsg(err, errlen, -1, "model init: %s", gpt_status_str(st));
        trainer_free(tr);
        return st == GPT_ENOMEM ? TRAIN_ENOMEM : TRAIN_EMODEL;
    }
    tr->opt = adamw_default();
    tr->opt.lr = (float)tc->lr;
    tr->opt.beta1 = (float)tc->beta1;
    tr->opt.beta2 = (float)tc->beta2;
    tr->opt.eps = (float)tc->eps;
    tr->opt.weight_decay = (float)tc->weight_decay;
    tr->opt.grad_clip = (float)tc->grad_clip;
    tr->opt.t = 0;
    rng_init(&tr->data_rng, tc->seed, TRAIN_DATA_STREAM);
    size_t bt = (size_t)tc->B * (size_t)cfg->maxT;
    tr->inp = malloc(bt * sizeof *tr->inp);
    tr->tgt = malloc(bt * sizeof *tr->tgt);
    if (!tr->inp || !tr->tgt) {
        trainer_free(tr);
        errmsg(err, errlen, -1, "out of memory for the batch buffers");
        return TRAIN_ENOMEM;
    }
    return TRAIN_OK;
}

train_status trainer_resume(trainer *tr, const char *path, const dataset *ds, char *err, size_t errlen) {
    memset(tr, 0, sizeof *tr);
    checkpoint ck;
    if (checkpoint_load(path, &ck, 1, err, errlen)) return TRAIN_EIO;
    if (!ds || (uint64_t)ds->n != ck.data_len || io_crc32(0, ds->bytes, ds->n) != ck.data_crc) {
        errmsg(err, errlen, -1, "%s: the data differs from the data this run trained on ('%s', %llu bytes)", path,
               ck.data_path, (unsigned long long)ck.data_len);
        checkpoint_free(&ck);
        return TRAIN_EDATA;
    }
    train_status ts = trainer_init_arch(tr, &ck.cfg, &ck.arch, &ck.tc, ds, ck.data_path, err, errlen);
    if (ts != TRAIN_OK) {
        checkpoint_free(&ck);
        return ts;
    }
    if (is_llama(tr)) {
        /* checkpoint_load checked n_params against this config. */
        if (ck.n_params != tr->llama.n_params) {
            errmsg(err, errlen, -1, "%s: %zu parameters, the llama config gives %zu", path, ck.n_params,
                   tr->llama.n_params);
            checkpoint_free(&ck);
            trainer_free(tr);
            return TRAIN_EMODEL;
        }
        memcpy(tr->llama.params, ck.params, ck.n_params * sizeof(float));
        memcpy(tr->llama_m, ck.m, ck.n_params * sizeof(float));
        memcpy(tr->llama_v, ck.v, ck.n_params * sizeof(float));
    } else {
        gpt_status st = gpt_set_params(&tr->model, ck.params, ck.n_params);
        if (st != GPT_OK) {
            errmsg(err, errlen, -1, "%s: %s", path, gpt_status_str(st));
            checkpoint_free(&ck);
            trainer_free(tr);
            return TRAIN_EMODEL;
        }
        memcpy(tr->model.m_memory, ck.m, ck.n_params * sizeof(float));
        memcpy(tr->model.v_memory, ck.v, ck.n_params * sizeof(float));
    }
    tr->opt.t = ck.adamw_t;
    tr->data_rng = ck.data_rng;
    tr->step = ck.step;
    tr->elapsed_s = ck.elapsed_s;
    for (uint32_t i = 0; i < ck.n_evals; i++) {
        if (push_eval(tr, ck.evals[i].step, ck.evals[i].val_loss)) {
            checkpoint_free(&ck);
            trainer_free(tr);
            errmsg(err, errlen, -1, "out of memory");
            return TRAIN_ENOMEM;
        }
    }
    tr->resumed = 1;
    checkpoint_free(&ck);
    return TRAIN_OK;
}

float trainer_evaluate(trainer *tr) {
    const int B = tr->tc.B, T = tr->cfg.maxT;
    double sum = 0.0;   /* double: 20+ batch means summed without drift */
    for (int k = 0; k < tr->tc.eval_batches; k++) {
        if (train_dist_eval_batch(tr->dist, tr->ds, SPLIT_VAL, k, B, T, tr->inp, tr->tgt) != DATA_OK) return NAN;
        float loss = model_eval_loss(tr, tr->inp, tr->tgt, B, T);
        if (isnan(loss)) return NAN;
        sum += (double)loss;
    }
    return (float)train_dist_mean(tr->dist, sum / (double)tr->tc.eval_batches);
}

train_status trainer_save(const trainer *tr, const char *path, char *err, size_t errlen) {
    checkpoint ck;
    memset(&ck, 0, sizeof ck);
    ck.cfg = tr->cfg;
    ck.arch = tr->arch;
    ck.tc = tr->tc;
    ck.tokenizer = CHECKPOINT_TOKENIZER_BYTES;
    ck.vocab = (uint32_t)tr->cfg.V;
    ck.step = tr->step;
    ck.data_rng = tr->data_rng;
    ck.adamw_t = tr->opt.t;
    ck.elapsed_s = tr->elapsed_s;
    snprintf(ck.data_path, sizeof ck.data_path, "%s", tr->data_path);
    ck.data_len = tr->data_len;
    ck.data_crc = tr->data_crc;
    ck.n_evals = (uint32_t)tr->n_evals;
    ck.evals = tr->evals;
    if (is_llama(tr)) {
        ck.n_params = tr->llama.n_params;
        ck.params = tr->llama.params;
        ck.m = tr->llama_m;
        ck.v = tr->llama_v;
    } else {
        ck.n_params = tr->model.num_params;
        ck.params = tr->model.params_memory;
        ck.m = tr->model.m_memory;
        ck.v = tr->model.v_memory;
    }
    ck.owned = 0;
    return train_dist_save(tr->dist, &ck, path, err, errlen) ? TRAIN_EIO : TRAIN_OK;
}

/* ---------------------------------------------------------------- log.csv */

static const char LOG_HEADER[] = "step,train_loss,val_loss,lr,elapsed_s,tokens_per_s\n";

/* Fresh run: log.csv = header only. Resumed run: keep the header and the rows
 * of steps <= tr->step (rows written after the checkpoint by an interrupted
 * session would otherwise appear twice). Both rewrite atomically, then open
 * for appending. */
static FILE *log_open(const trainer *tr, const char *path, char *err, size_t errlen) {
    io_buf b = { 0 };
    io_buf_bytes(&b, LOG_HEADER, sizeof LOG_HEADER - 1);
    unsigned char *old = NULL;
    size_t n = 0;
    if (tr->resumed && io_read_file(path, &old, &n, NULL, 0) == 0) {
        const char *p = (const char *)old, *end = p + n;
        const char *nl = memchr(p, '\n', n);   /* skip the old header */
        p = nl ? nl + 1 : end;
        while (p < end) {
            nl = memchr(p, '\n', (size_t)(end - p));
            if (!nl) break;   /* a half-written last line is dropped */
            char *e = NULL;
            long long s = strtoll(p, &e, 10);
            if (e != p && *e == ',' && s <= tr->step) io_buf_bytes(&b, p, (size_t)(nl - p + 1));
            p = nl + 1;
        }
    }
    free(old);
    if (b.oom) {
        io_buf_free(&b);
        errmsg(err, errlen, -1, "%s: out of memory", path);
        return NULL;
    }
    int rc = io_write_atomic(path, b.data, b.len, err, errlen);
    io_buf_free(&b);
    if (rc) return NULL;
    FILE *f = fopen(path, "a");
    if (!f) errmsg(err, errlen, -1, "cannot append to '%s'", path);
    return f;
}

static void fmt_or_empty(char *out, size_t n, double v, const char *fmt) {
    if (isnan(v)) out[0] = 0;
    else snprintf(out, n, fmt, v);
}

/* skipped: the step's update was dropped (nan policy skip); train_loss is
 * written "nan" so the row keeps the same columns as every other. */
static int log_row(FILE *f, int64_t step, double train_loss, double val_loss, double lr, double elapsed,
                   double tps, int skipped) {
    if (!f) return 0;
    char tl[40], vl[40], lrs[40], tp[40];
    if (skipped) snprintf(tl, sizeof tl, "nan");
    else fmt_or_empty(tl, sizeof tl, train_loss, "%.9g");
    fmt_or_empty(vl, sizeof vl, val_loss, "%.9g");
    fmt_or_empty(lrs, sizeof lrs, lr, "%.9g");
    fmt_or_empty(tp, sizeof tp, tps, "%.1f");
    fprintf(f, "%lld,%s,%s,%s,%.3f,%s\n", (long long)step, tl, vl, lrs, elapsed, tp);
    /* Flushed per row so `tail -f` and a crash both see whole rows. */
    return fflush(f) == 0 ? 0 : -1;
}

/* ---------------------------------------------------------------- run */

static int copy_result(train_result *res, const trainer *tr, float last_train, int stopped) {
    if (!res) return 0;
    res->final_train_loss = last_train;
    res->final_val_loss = tr->n_evals ? tr->evals[tr->n_evals - 1].val_loss : NAN;
    res->steps_done = tr->step;
    res->stopped = stopped;
    res->elapsed_s = tr->elapsed_s;
    res->n_evals = tr->n_evals;
    res->evals = malloc((size_t)(tr->n_evals ? tr->n_evals : 1) * sizeof *res->evals);
    if (!res->evals) return -1;
    if (tr->n_evals) memcpy(res->evals, tr->evals, (size_t)tr->n_evals * sizeof *res->evals);
    return 0;
}

train_status trainer_run(trainer *tr, const train_hooks *hooks, const char *out_dir,
                         train_result *res, char *err, size_t errlen) {
    if (res) {
        memset(res, 0, sizeof *res);
        res->final_val_loss = res->final_train_loss = NAN;
    }
    const train_config *tc = &tr->tc;
    const int B = tc->B, T = tr->cfg.maxT;
    char ckpt_path[4096] = "", log_path[4096] = "";
    FILE *log = NULL;
    train_status ret = TRAIN_OK;
    if (is_llama(tr) && tr->dist) {
        errmsg(err, errlen, -1, "data-parallel training supports --arch gpt only");
        return TRAIN_ECONFIG;
    }
    if (out_dir) {
        if (io_mkdir_p(out_dir, err, errlen)) return TRAIN_EIO;
        if (io_path_join(ckpt_path, sizeof ckpt_path, out_dir, "model.bin") ||
            io_path_join(log_path, sizeof log_path, out_dir, "log.csv")) {
            errmsg(err, errlen, -1, "%s: path too long", out_dir);
            return TRAIN_EIO;
        }
        if (train_dist_rank(tr->dist) == 0) {   /* rank 0 alone logs */
            log = log_open(tr, log_path, err, errlen);
            if (!log) return TRAIN_EIO;
        }
    }
    const double t0 = now_s(), elapsed0 = tr->elapsed_s;
    double train_time = 0.0;        /* this session, optimizer steps only */
    int64_t session_steps = 0, skipped_total = 0;
    float last_train = NAN;
    float last_val = tr->n_evals ? tr->evals[tr->n_evals - 1].val_loss : NAN;
    int stopped = 0;
    train_progress p;
    memset(&p, 0, sizeof p);
    p.steps = tc->steps;

    if (!tr->resumed && tr->step == 0 && tr->n_evals == 0) {
        last_val = trainer_evaluate(tr);
        if (isnan(last_val)) {
            errmsg(err, errlen, -1, "evaluation failed at step 0: %s", model_status(tr));
            ret = TRAIN_EMODEL;
            goto out;
        }
        if (push_eval(tr, 0, last_val)) { ret = TRAIN_ENOMEM; errmsg(err, errlen, -1, "out of memory"); goto out; }
        tr->elapsed_s = elapsed0 + (now_s() - t0);
        if (log_row(log, 0, NAN, last_val, NAN, tr->elapsed_s, NAN, 0)) {
            errmsg(err, errlen, -1, "write error on '%s'", log_path);
            ret = TRAIN_EIO;
            goto out;
        }
        p.step = 0;
        p.train_loss = NAN;
        p.val_loss = last_val;
        p.evaluated = 1;
        p.lr = NAN;
        p.grad_norm = NAN;
        p.elapsed_s = tr->elapsed_s;
        p.tokens_per_s = 0;
        p.eta_s = NAN;
        if (hooks && hooks->on_step) hooks->on_step(hooks->ctx, &p);
    }

    while (tr->step < tc->steps) {
        const double ts = now_s();
        const float lr = lr_at(tr->step, tc->steps, tc->warmup, (float)tc->lr, (float)tc->min_lr);
        tr->opt.lr = lr;
        /* The GPT's first backward overwrites its gradients (a zeroing pass
         * over all of them was ~3% of a GPT-2-sized step). */
        if (is_llama(tr)) model_zero_grad(tr);
        double loss_sum = 0.0;
        int bad_loss = 0;
        for (int a = 0; a < tc->accum; a++) {
            if (train_dist_batch(tr->dist, tr->ds, SPLIT_TRAIN, &tr->data_rng, B, T, tr->inp, tr->tgt) != DATA_OK) {
                errmsg(err, errlen, -1, "could not draw a training batch at step %lld", (long long)tr->step + 1);
                ret = TRAIN_EDATA;
                goto out;
            }
            const char *why = NULL;
            float loss = model_forward(tr, tr->inp, tr->tgt, B, T, &why);
            if (!isfinite(loss)) {
                if (why) {
                    errmsg(err, errlen, -1, "forward failed at step %lld: %s", (long long)tr->step + 1, why);
                    ret = TRAIN_EMODEL;
                    goto out;
                }
                /* A non-finite loss: no backward; the nan policy below decides. */
                bad_loss = 1;
                loss_sum = (double)loss;
                break;
            }
            /* Under MPI each rank's gradient is scaled by 1/ranks (the
             * all-reduce's sum is then the mean), and the buckets start during
             * the last micro-batch's backward only: before it the sums are
             * partial. */
            train_dist_arm(tr->dist, a == tc->accum - 1);
            const char *bwhy = model_backward(tr, train_dist_grad_scale(tr->dist) / (float)tc->accum, a == 0);
            train_dist_arm(tr->dist, 0);
            if (bwhy) {
                errmsg(err, errlen, -1, "backward failed at step %lld: %s", (long long)tr->step + 1, bwhy);
                ret = TRAIN_EMODEL;
                goto out;
            }
            loss_sum += (double)loss;
        }
        /* Poisoned before the sync, so that under MPI it travels with the
         * gradients as a real NaN would (under ZeRO the mean gradient exists
         * after the sync only as shards, its norm already taken). Element 0
         * is wte's, sent only by the sync, never while in flight. */
        if (hooks && hooks->poison_step > 0 && hooks->poison_step == tr->step + 1 && !bad_loss)
            model_grads(tr)[0] = NAN;
        /* Under MPI the gradient all-reduce (ZeRO: reduce-scatter), started
         * during the backward, completes here on every rank, also on one
         * whose loss was not finite (its collectives must match the
         * others'): the gradient is then the global mean (ZeRO: each rank
         * its shard of it), and its norm below is the same on every rank. */
        if (train_dist_sync_grads(tr->dist)) {
            errmsg(err, errlen, -1, "gradient all-reduce failed at step %lld", (long long)tr->step + 1);
            ret = TRAIN_EMODEL;
            goto out;
        }
        /* The norm before clipping, checked BEFORE the update so that a NaN or
         * Inf never reaches the weights or the AdamW moments (adamw_step would
         * clip by a NaN norm and write NaN everywhere). In one process the
         * same norm then feeds the clip in adamw_step_norm (as under MPI);
         * any rank's non-finite loss or norm stops or skips every rank alike. */
        const double pre_norm =
            bad_loss ? NAN : train_dist_grad_norm(tr->dist, model_grads(tr), trainer_num_params(tr));
        int bad = train_dist_any(tr->dist, bad_loss || !isfinite(pre_norm));
        int skipped = 0;
        double gnorm;
        if (bad) {
            const double v = bad_loss ? loss_sum : pre_norm;
            const char *vs = isnan(v) ? "nan" : isfinite(v) ? "on another rank" : v > 0 ? "inf" : "-inf";
            if (!hooks || hooks->nan_policy != TRAIN_NAN_SKIP) {
                errmsg(err, errlen, -1, "step %lld: non-finite %s (%s); stopping (the last checkpoint is intact)",
                       (long long)tr->step + 1, bad_loss ? "loss" : "gradient norm", vs);
                ret = TRAIN_EMODEL;
                goto out;
            }
            model_zero_grad(tr);   /* params, m, v and opt.t stay as they are */
            skipped = 1;
            skipped_total++;
            gnorm = pre_norm;
        } else {
            gnorm = model_step(tr, pre_norm);
        }
        tr->step++;
        session_steps++;
        const float step_loss = skipped ? NAN : (float)train_dist_mean(tr->dist, loss_sum / (double)tc->accum);
        if (!skipped) last_train = step_loss;
        const double step_time = now_s() - ts;
        train_time += step_time;

        int evaluated = (tr->step % tc->eval_every == 0) || tr->step == tc->steps;
        if (evaluated) {
            last_val = trainer_evaluate(tr);
            if (isnan(last_val)) {
                errmsg(err, errlen, -1, "evaluation failed at step %lld: %s", (long long)tr->step,
                       model_status(tr));
                ret = TRAIN_EMODEL;
                goto out;
            }
            if (push_eval(tr, tr->step, last_val)) { ret = TRAIN_ENOMEM; errmsg(err, errlen, -1, "out of memory"); goto out; }
        }
        const double tokens_step = (double)B * (double)T * (double)tc->accum * (double)train_dist_size(tr->dist);
        const double session = now_s() - t0;
        tr->elapsed_s = elapsed0 + session;
        if (log_row(log, tr->step, step_loss, evaluated ? last_val : NAN, lr, tr->elapsed_s,
                    step_time > 0 ? tokens_step / step_time : NAN, skipped)) {
            errmsg(err, errlen, -1, "write error on '%s'", log_path);
            ret = TRAIN_EIO;
            goto out;
        }
        p.step = tr->step;
        p.train_loss = step_loss;
        p.val_loss = last_val;
        p.evaluated = evaluated;
        p.skipped = skipped;
        p.skipped_total = skipped_total;
        p.lr = lr;
        p.grad_norm = gnorm;
        p.elapsed_s = tr->elapsed_s;
        p.tokens_per_s = train_time > 0 ? tokens_step * (double)session_steps / train_time : 0;
        p.eta_s = session / (double)session_steps * (double)(tc->steps - tr->step);
        if (hooks && hooks->on_step) hooks->on_step(hooks->ctx, &p);

        stopped = hooks && ((hooks->stop && *hooks->stop) ||
                            (hooks->stop_after > 0 && tr->step >= hooks->stop_after));
        stopped = train_dist_any(tr->dist, stopped);   /* every rank stops at the same step */
        int last = tr->step == tc->steps;
        if (out_dir && (stopped || last || (tc->save_every > 0 && tr->step % tc->save_every == 0))) {
            if (trainer_save(tr, ckpt_path, err, errlen) != TRAIN_OK) {
                ret = TRAIN_EIO;
                goto out;
            }
        }
        if (stopped && !last) {
            ret = TRAIN_STOPPED;
            break;
        }
        stopped = 0;
    }
out:
    if (log && fclose(log) != 0 && ret == TRAIN_OK) {
        errmsg(err, errlen, -1, "write error on '%s'", log_path);
        ret = TRAIN_EIO;
    }
    if ((ret == TRAIN_OK || ret == TRAIN_STOPPED) && copy_result(res, tr, last_train, stopped)) {
        errmsg(err, errlen, -1, "out of memory");
        ret = TRAIN_ENOMEM;
    }
    if (res) res->skipped_steps = skipped_total;
    return ret;
}

train_status train_run(const gpt_config *cfg, const train_config *tc, const dataset *ds,
                       const train_hooks *hooks, const char *out_dir, train_result *res,
                       char *err, size_t errlen) {
    trainer tr;
    train_status st = trainer_init(&tr, cfg, tc, ds, NULL, err, errlen);
    if (st != TRAIN_OK) {
        if (res) {
            memset(res, 0, sizeof *res);
            res->final_val_loss = res->final_train_loss = NAN;
        }
        return st;
    }
    st = trainer_run(&tr, hooks, out_dir, res, err, errlen);
    trainer_free(&tr);
    return st;
}
