/*
 * cmd_compare.h — `ropegpt compare`: trains the same GPT once per (position
 * encoding, seed) and reports which encoding learns best. Fair by
 * construction: for one seed every run starts from the same shared weights
 * (gpt_init draws encoding-specific tensors from a separate stream) and sees
 * the same training batches in the same order (the data RNG depends on the
 * seed only), and all runs are scored on the same evaluation windows.
 * cmd_compare.c runs the experiment; compare_report.c writes the CSV files,
 * the SVG figures and the tables. The structs are shared by the two files
 * and by tests/test_compare.c.
 */
#ifndef ROPEGPT_CMD_COMPARE_H
#define ROPEGPT_CMD_COMPARE_H

#include <stdint.h>
#include <stdio.h>

#include "data/dataset.h"
#include "model/cmd_eval.h"
#include "model/gpt.h"
#include "model/train.h"

#define COMPARE_MAX_MULTS 8
#define COMPARE_N_THRESH 3

typedef struct {
    pe_type pe;
    uint64_t seed;
    int ok;                  /* 1: trained to the end */
    int64_t resumed_from;    /* > 0: continued from a checkpoint at this step (--resume) */
    char error[256];         /* why not, when !ok */
    int n_evals;
    int64_t *eval_step;      /* (n_evals) */
    double *val;             /* (n_evals) validation loss */
    int64_t steps;
    double *train;           /* (steps) training loss of step k+1 at [k] */
    double final_val, best_val;
    int64_t best_step;
    double tokens_per_s;     /* training throughput of the run */
    double elapsed_s;
    size_t params;
    /* FNV-1a over, per step, the data RNG state after the step and (on steps
     * without an evaluation, whose buffers then still hold it) the training
     * batch: equal hashes = identical training batches. Covers only the
     * steps this process ran (left empty in runs.csv for resumed runs). */
    uint64_t batch_hash;
    /* extrapolation: [multiplier][scaling] (only scaling 0 = none unless rope);
     * NAN = not run; ext_status 1 = n/a (learned past its table). */
    double ext[COMPARE_MAX_MULTS][EVAL_N_SCALINGS];
    double ext_beyond[COMPARE_MAX_MULTS][EVAL_N_SCALINGS];
    int ext_status[COMPARE_MAX_MULTS][EVAL_N_SCALINGS];
    /* Mean loss at each position (max multiplier x ctx) at the largest
     * multiplier, per scaling; NULL where not evaluated. */
    double *ext_pos[EVAL_N_SCALINGS];
} compare_run;

typedef struct {
    /* settings */
    pe_type pes[PE_COUNT];
    int n_pe;
    int n_seeds;
    uint64_t seed0;          /* run seeds are seed0, seed0 + 1, ... */
    gpt_config cfg;          /* shared model shape; pe set per run */
    train_config tc;         /* shared training settings; seed set per run */
    const char *out_dir;
    const char *data_path;
    int log_x;               /* val_loss.svg on a log-scaled step axis */
    int quiet;               /* no progress lines */
    int png;                 /* also PNG copies of the figures through gnuplot */
    int resume;              /* continue (or reuse) runs whose model.bin exists */
    int mults[COMPARE_MAX_MULTS];
    int n_mults;             /* 0: no extrapolation */
    int ext_batches;         /* evaluation batches per extrapolation point */
    /* results */
    compare_run *runs;       /* (n_seeds * n_pe): seed k, encoding j at k * n_pe + j */
    double thresholds[COMPARE_N_THRESH];
} compare_state;

/* The configs of run (seed index k, encoding index j): the shared cfg and tc
 * with only cfg.pe = pes[j] and tc.seed = seed0 + k changed. */
void compare_run_configs(const compare_state *c, int k, int j, gpt_config *cfg, train_config *tc);

/* NULL if a run saved with (a, ta) is the run (b, tb) describes (every field
 * that changes the result; threads and save_every are not compared), else
 * the name of the first field that differs. */
const char *compare_config_mismatch(const gpt_config *a, const train_config *ta,
                                    const gpt_config *b, const train_config *tb);

/* Trains every run (seed-major, so each encoding has a result early), with
 * progress lines on progress (may be NULL), then evaluates extrapolation if
 * asked, into c->out_dir, which must exist (compare_main makes it). A run
 * that fails is recorded (ok = 0) and the others go on.
 * Returns the number of failed runs, or -1 if nothing could start. */
int compare_execute(compare_state *c, const dataset *ds, FILE *progress, char *err, size_t errlen);

/* Writes runs.csv, summary.csv, val_loss.svg, train_loss.svg (and, with
 * extrapolation, extrapolation.csv and extrapolation.svg) into out_dir and
 * prints the tables to out. Returns 0, or -1 with err set. */
int compare_report(compare_state *c, FILE *out, char *err, size_t errlen);

/* The extrapolation part of the report (compare_extrap.c): extrapolation.csv,
 * extrapolation.svg and its table. Called by compare_report when n_mults > 0. */
int compare_extrapolation_report(compare_state *c, FILE *out, char *err, size_t errlen);

void compare_state_free(compare_state *c);

/* The whole command with explicit streams (tests pass files). Returns the
 * exit status: 0 ok, 2 bad input (one line on err), 1 a run or a write failed. */
int compare_main(int argc, char **argv, FILE *out, FILE *progress);

/* `ropegpt compare ...`: compare_main on stdout, progress on stderr. */
int cmd_compare(int argc, char **argv);

/* Line colour and dash pattern of each encoding in every figure. */
const char *compare_pe_color(pe_type pe);
const char *compare_pe_dash(pe_type pe);

#endif
