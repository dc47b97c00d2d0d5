/*
 * train.h — the reusable GPT training loop. `ropegpt train` and `ropegpt
 * compare` both drive it: a trainer owns one model, its AdamW state and the
 * data RNG; trainer_run() takes optimizer steps, evaluates on the fixed
 * evaluation batches (dataset_eval_batch, seeded independently of the
 * training seed, so every run is scored on the same windows), reports each
 * step through a callback, and, given an output folder, appends log.csv and
 * saves checkpoints (model.bin) that resume bit-identically. Nothing here
 * prints or exits; errors come back as a train_status plus a one-line message.
 *
 * Step numbering: step k (1..steps) is the k-th optimizer update; it uses
 * lr_at(k - 1, ...) (nanoGPT's iteration index). The model is evaluated once
 * before training (step 0, unless resuming), after every step k with
 * k % eval_every == 0, and after the last step.
 *
 * log.csv columns: step,train_loss,val_loss,lr,elapsed_s,tokens_per_s.
 * A field that does not apply is EMPTY (not "nan"): val_loss on steps that
 * were not evaluated; train_loss, lr and tokens_per_s on the step-0 row.
 * Losses and lr are printed with 9 significant digits (float round trip).
 * A step whose update was skipped (nan policy skip) has train_loss "nan".
 */
#ifndef ROPEGPT_TRAIN_H
#define ROPEGPT_TRAIN_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "data/dataset.h"
#include "model/adamw.h"
#include "model/gpt.h"
#include "model/gpt_split.h"
#include "model/llama_train.h"
#include "util/rng.h"

/* The model family a run trains (issue 5 part 2). ARCH_GPT: gpt.h, any
 * position encoding. ARCH_LLAMA: llama_train.h (RMSNorm, SwiGLU, no biases,
 * grouped-query attention, RoPE interleaved over the whole head); its width,
 * depth, heads, context, vocabulary and RoPE base come from the gpt_config
 * (C, L, NH, maxT, V, rope_base), which must then say pe = rope,
 * interleaved, fraction 1, and the rest from arch_config. */
typedef enum { ARCH_GPT = 0, ARCH_LLAMA = 1, ARCH_COUNT } model_arch;

typedef struct {
    model_arch arch;
    int n_kv_heads;        /* Llama: key/value heads, divides NH (GQA when < NH) */
    int hidden_dim;        /* Llama: SwiGLU width */
    int shared_classifier; /* Llama: 1 = logits through the token embedding */
} arch_config;

/* ARCH_GPT (the other fields 0). */
arch_config arch_config_gpt(void);

/* ARCH_LLAMA for cfg: n_kv_heads = NH, shared classifier, and
 * llama_hidden_dim(cfg->C). */
arch_config arch_config_llama(const gpt_config *cfg);

/* The SwiGLU width for model width C: 2/3 of GPT's 4C (so the three SwiGLU
 * matrices hold about the parameters of GPT's two, Shazeer 2020, as Llama
 * does), rounded up to a multiple of 32 (llama2.c's model.py rounds to
 * multiple_of = 256, far coarser than our widths of ~128). C = 128 -> 352. */
int llama_hidden_dim(int C);

/* "gpt" / "llama" (NULL for anything else). */
const char *model_arch_name(model_arch a);

/* NULL if (cfg, ac) describe a trainable model, else a static one-line
 * message (gpt: the gpt_config alone; llama: pe rope, interleaved, fraction
 * 1, n_kv_heads dividing NH, hidden_dim >= 1, llama_config_validate). */
const char *arch_config_validate(const gpt_config *cfg, const arch_config *ac);

/* The llama_config of an ARCH_LLAMA run (norm eps 1e-5 as Llama 2). */
llama_config arch_llama_config(const gpt_config *cfg, const arch_config *ac);

/* Training settings (the model's shape is gpt_config; the context T is
 * gpt_config.maxT). */
typedef struct {
    int B;               /* rows per micro-batch (12) */
    int64_t steps;       /* optimizer steps; also the cosine decay length (2000) */
    double lr;           /* peak learning rate (1e-3) */
    double min_lr;       /* floor of the cosine decay (1e-4) */
    int64_t warmup;      /* linear warmup steps (100) */
    double beta1;        /* 0.9 */
    double beta2;        /* 0.99 */
    double eps;          /* 1e-8 */
    double weight_decay; /* 0.1 on 2-D weights */
    double grad_clip;    /* global-norm clip (1.0); 0 = off */
    int accum;           /* micro-batches per step (1) */
    int64_t eval_every;  /* evaluate every this many steps (100) */
    int eval_batches;    /* batches of B x T per evaluation (20) */
    uint64_t seed;       /* model init and training batches (1337) */
    int threads;         /* OpenMP threads the run used (0 = default); recorded for resume */
    int64_t save_every;  /* checkpoint every this many steps; 0 = only at the end */
} train_config;

/* nanoGPT's shakespeare_char CPU settings (the values in the comments above). */
train_config train_config_default(void);

/* NULL if tc is valid, else a static one-line message naming the first bad
 * field (B, steps, accum, eval_every, eval_batches >= 1; lr > 0;
 * 0 <= min_lr <= lr; warmup >= 0 (warmup > steps is allowed: the run
 * then never leaves the warmup ramp); beta1, beta2 in [0, 1); eps > 0;
 * weight_decay >= 0; grad_clip >= 0; save_every >= 0; every double finite). */
const char *train_config_validate(const train_config *tc);

typedef enum {
    TRAIN_OK = 0,
    TRAIN_STOPPED,   /* stopped early on request (hooks); state saved if out_dir */
    TRAIN_ECONFIG,   /* a config is invalid */
    TRAIN_EMODEL,    /* the model returned an error (or a loss went NaN) */
    TRAIN_EDATA,     /* the dataset is too short for the context or a batch failed */
    TRAIN_EIO,       /* out folder, log or checkpoint could not be written */
    TRAIN_ENOMEM,
    TRAIN_STATUS_COUNT
} train_status;

const char *train_status_str(train_status s);

/* What the callback sees after each step (and after the step-0 evaluation). */
typedef struct {
    int64_t step;           /* steps done (0 for the initial evaluation) */
    int64_t steps;          /* total steps of the run */
    float train_loss;       /* mean loss of this step's batches (NAN at step 0) */
    float val_loss;         /* latest validation loss (NAN before the first eval) */
    int evaluated;          /* 1 if val_loss was computed at this step */
    double lr;              /* learning rate this step used */
    double grad_norm;       /* global gradient norm before clipping */
    double elapsed_s;       /* wall time of the whole run, resumed sessions included */
    double tokens_per_s;    /* training tokens per second over this session */
    double eta_s;           /* estimated seconds to the last step (this session's pace) */
    int skipped;            /* 1: this step's update was skipped (non-finite, TRAIN_NAN_SKIP) */
    int64_t skipped_total;  /* steps skipped so far in this session */
} train_progress;

/* What a non-finite loss or global gradient norm (checked after backward,
 * before the optimizer update) does. STOP: trainer_run returns TRAIN_EMODEL
 * with "step N: non-finite ... ; stopping (the last checkpoint is intact)";
 * the parameters are those of step N-1 and nothing is saved. SKIP: the
 * update is dropped (gradients zeroed; params, AdamW m, v and t unchanged, so
 * the bias correction sees only real updates) while the step still counts
 * (data RNG and lr schedule move on, as a skipped batch should); the log.csv
 * row has train_loss "nan". The policy is not stored in checkpoints: it is a
 * per-session setting (`ropegpt train --resume DIR --nan-policy skip`).
 * Data-parallel runs (MPI) check the loss and the norm of the averaged
 * gradient (the all-reduce completes before the check), and every rank stops
 * or skips alike. */
typedef enum { TRAIN_NAN_STOP = 0, TRAIN_NAN_SKIP = 1 } train_nan_policy;

typedef struct {
    /* Called after every step; may be NULL. */
    void (*on_step)(void *ctx, const train_progress *p);
    void *ctx;
    /* If non-NULL and *stop becomes nonzero (e.g. from a SIGINT handler), the
     * loop finishes the current step, saves a checkpoint (if out_dir) and
     * returns TRAIN_STOPPED. */
    const volatile sig_atomic_t *stop;
    /* > 0: stop the same way right after this step (splitting a run). */
    int64_t stop_after;
    train_nan_policy nan_policy;   /* TRAIN_NAN_STOP (0, the default) or TRAIN_NAN_SKIP */
    /* Tests only: > 0 makes gradient element 0 NaN after the backward of
     * this step (fault injection for the nan policy). */
    int64_t poison_step;
} train_hooks;

typedef struct {
    int64_t step;
    float val_loss;
} train_eval_point;

typedef struct {
    float final_val_loss;     /* latest validation loss (NAN if none) */
    float final_train_loss;   /* loss of the last step run (NAN if none) */
    int64_t steps_done;       /* optimizer steps done, resumed ones included */
    int stopped;              /* 1 if stopped early */
    int64_t skipped_steps;    /* updates skipped by TRAIN_NAN_SKIP in this session */
    double elapsed_s;
    int n_evals;
    train_eval_point *evals;  /* (n_evals) every evaluation of the run, in order; owned */
} train_result;

void train_result_free(train_result *r);

struct train_dist;   /* model/train_dist.h: data-parallel training over MPI */

/* One training run in progress. Fields are readable; change them only
 * through the functions below. */
typedef struct {
    gpt_config cfg;
    train_config tc;
    arch_config arch;         /* which of model / llama is live */
    gpt model;                /* ARCH_GPT: params, grads, AdamW m and v */
    gpt_split split;          /* ARCH_GPT in one process: the batch cut between threads (small models) */
    int split_ready;          /* split chosen (at the first training forward, when the thread count is set) */
    llama_trainer llama;      /* ARCH_LLAMA: params and grads ... */
    float *llama_m, *llama_v; /* ... its AdamW moments (n_params each) */
    uint8_t *llama_decay;     /* ... and decay mask */
    adamw opt;
    rng_state data_rng;       /* training batches; saved in checkpoints */
    int64_t step;             /* optimizer steps done */
    double elapsed_s;         /* wall time of earlier sessions (resume) */
    const dataset *ds;        /* borrowed */
    uint64_t data_len;        /* fingerprint of ds, checked on resume */
    uint32_t data_crc;
    char data_path[1024];     /* informational (stored in the checkpoint) */
    int n_evals, cap_evals;
    train_eval_point *evals;
    int *inp, *tgt;           /* (B, T) batch buffers */
    int resumed;              /* 1: state came from a checkpoint (no step-0 eval) */
    struct train_dist *dist;  /* NULL: one process; else set by the caller (cmd_train_dist.h) */
} trainer;

/* A fresh run: gpt_init(cfg, tc->seed), data RNG seeded (tc->seed, stream 2),
 * AdamW from tc. ds is borrowed and must outlive the trainer; data_path may
 * be NULL. Checks both configs and that ds holds more than maxT tokens in
 * each split. On error *tr is zeroed (safe to trainer_free). */
train_status trainer_init(trainer *tr, const gpt_config *cfg, const train_config *tc,
                          const dataset *ds, const char *data_path, char *err, size_t errlen);

/* trainer_init for either architecture (ac NULL = ARCH_GPT). */
train_status trainer_init_arch(trainer *tr, const gpt_config *cfg, const arch_config *ac, const train_config *tc,
                               const dataset *ds, const char *data_path, char *err, size_t errlen);

/* Parameters of the live model. */
size_t trainer_num_params(const trainer *tr);

/* Continues the run saved in the checkpoint at path (see checkpoint.h). ds
 * must hold exactly the data the run trained on (length and CRC-32 are
 * compared). The caller may then change tc.threads (informational). */
train_status trainer_resume(trainer *tr, const char *path, const dataset *ds,
                            char *err, size_t errlen);

/* Mean validation loss over tc.eval_batches fixed evaluation batches
 * (dataset_eval_batch k = 0..eval_batches-1), summed in double. NAN on error. */
float trainer_evaluate(trainer *tr);

/* Runs steps tr->step+1 .. tc.steps. out_dir NULL: nothing is written.
 * Otherwise the folder is created if needed, log.csv is started (fresh run)
 * or cut back to the checkpoint's step (resumed run) and appended per step,
 * and model.bin is saved every save_every steps, when stopped, and at the
 * end. res (may be NULL) receives the outcome; free it with
 * train_result_free. Returns TRAIN_OK when all steps are done. */
train_status trainer_run(trainer *tr, const train_hooks *hooks, const char *out_dir,
                         train_result *res, char *err, size_t errlen);

/* Saves the trainer's whole state to path atomically (checkpoint format). */
train_status trainer_save(const trainer *tr, const char *path, char *err, size_t errlen);

void trainer_free(trainer *tr);

/* init + run + free in one call (what `compare` needs per run). */
train_status train_run(const gpt_config *cfg, const train_config *tc, const dataset *ds,
                       const train_hooks *hooks, const char *out_dir, train_result *res,
                       char *err, size_t errlen);

#endif
