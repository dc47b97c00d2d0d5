/*
 * cmd_eval.c — `ropegpt eval --model M --ctx L [--rope-scaling S --rope-factor s]`.
 * Loads a checkpoint, runs the model over fixed validation windows of L
 * tokens and reports the loss (mean over every position of every window) and
 * its perplexity exp(loss), plus the same figures over the positions past the
 * training context only, which is where length extrapolation shows. The
 * windows are dataset_eval_batch's fixed sequence, so every model and every
 * scaling is scored on the same text.
 */
#define _POSIX_C_SOURCE 200809L
#include "model/cmd_eval.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/checkpoint.h"
#include "util/args.h"

const char *const eval_scaling_names[EVAL_N_SCALINGS + 1] = {
    "none", "linear", "ntk", "dynamic", "yarn", "llama3", NULL,
};
const rope_scaling_type eval_scaling_types[EVAL_N_SCALINGS] = {
    ROPE_SCALING_NONE, ROPE_SCALING_LINEAR, ROPE_SCALING_NTK,
    ROPE_SCALING_DYNAMIC, ROPE_SCALING_YARN, ROPE_SCALING_LLAMA3,
};

int eval_at_context(gpt *m, const dataset *ds, int ctx, rope_scaling_type scaling, double factor,
                    int B, int batches, eval_result *out, char *err, size_t errlen) {
    const int T0 = m->cfg.maxT;
    double *pos_out = out->pos_loss;
    memset(out, 0, sizeof *out);
    out->pos_loss = pos_out;
    out->ctx = ctx;
    out->loss = out->loss_beyond = NAN;
    if (ctx <= 0 || B <= 0 || batches <= 0) {
        snprintf(err, errlen, "ctx, batch and batches must be positive");
        return -1;
    }
    if (m->cfg.pe == PE_LEARNED && ctx > T0) {
        snprintf(err, errlen, "n/a: learned positions have a table of %d rows (trained context), "
                 "no embedding for position %d", T0, T0);
        return 1;
    }
    if (dataset_check_T(ds, ctx) != DATA_OK) {
        snprintf(err, errlen, "the validation split is shorter than %d + 1 tokens", ctx);
        return -1;
    }
    int scaled = m->cfg.pe == PE_ROPE && scaling != ROPE_SCALING_NONE;
    if (scaled) {
        rope_scaling sc = rope_config_default().scaling;
        sc.type = scaling;
        sc.factor = factor > 0 ? factor : fmax(1.0, (double)ctx / (double)T0);
        sc.original_max_positions = T0;
        gpt_status st = gpt_set_rope_scaling(m, &sc, ctx);
        if (st != GPT_OK) {
            snprintf(err, errlen, "cannot set the RoPE scaling: %s", gpt_status_str(st));
            return -1;
        }
    }
    size_t bt = (size_t)B * (size_t)ctx;
    int *inp = malloc(bt * sizeof *inp), *tgt = malloc(bt * sizeof *tgt);
    double *pos = malloc((size_t)ctx * sizeof *pos), *acc = calloc((size_t)ctx, sizeof *acc);
    int rc = 0;
    if (!inp || !tgt || !pos || !acc) { snprintf(err, errlen, "out of memory"); rc = -1; }
    for (int k = 0; rc == 0 && k < batches; k++) {
        if (dataset_eval_batch(ds, SPLIT_VAL, k, B, ctx, inp, tgt) != DATA_OK) {
            snprintf(err, errlen, "could not draw validation batch %d", k);
            rc = -1;
            break;
        }
        float loss = gpt_forward(m, inp, tgt, B, ctx);
        if (!isfinite(loss)) {
            snprintf(err, errlen, "forward at ctx %d failed: %s", ctx,
                     m->status != GPT_OK ? gpt_status_str(m->status) : "non-finite loss");
            rc = -1;
            break;
        }
        gpt_position_losses(m, pos);
        for (int t = 0; t < ctx; t++) acc[t] += pos[t];
    }
    if (rc == 0) {
        /* Every position has the same number of windows, so the mean of the
         * per-position means is the mean over all tokens. */
        double all = 0, beyond = 0;
        for (int t = 0; t < ctx; t++) {
            all += acc[t];
            if (t >= T0) beyond += acc[t];
        }
        out->loss = all / ((double)ctx * batches);
        out->loss_beyond = ctx > T0 ? beyond / ((double)(ctx - T0) * batches) : NAN;
        out->windows = (int64_t)B * batches;
        if (pos_out)
            for (int t = 0; t < ctx; t++) pos_out[t] = acc[t] / batches;
    }
    if (scaled) {
        gpt_status st = gpt_set_rope_scaling(m, NULL, 0);
        if (st != GPT_OK && rc == 0) {
            snprintf(err, errlen, "cannot reset the RoPE scaling: %s", gpt_status_str(st));
            rc = -1;
        }
    }
    free(inp);
    free(tgt);
    free(pos);
    free(acc);
    return rc;
}

int cmd_eval(int argc, char **argv) {
    const char *model_path = NULL, *data_path = "data/tinyshakespeare.txt";
    int ctx = 0, scaling = 0, B = 8, batches = 20;
    double factor = 0;
    args_spec specs[] = {
        {.name = "--model", .kind = ARG_STR, .dst = &model_path, .help = "checkpoint (model.bin, or a run folder) to evaluate"},
        {.name = "--ctx", .kind = ARG_INT, .dst = &ctx, .help = "window length L (0: the training context)",
         .min = 0, .max = 1 << 20},
        {.name = "--rope-scaling", .kind = ARG_CHOICE, .dst = &scaling, .choices = eval_scaling_names,
         .help = "RoPE context extension (rope models only)"},
        {.name = "--rope-factor", .kind = ARG_DOUBLE, .dst = &factor,
         .help = "scaling factor s (0: ctx / training context, at least 1)", .min = 0, .max = 1e6},
        {.name = "--data", .kind = ARG_STR, .dst = &data_path, .help = "text file (byte tokens; last 10% = validation)"},
        {.name = "--batch", .kind = ARG_INT, .dst = &B, .help = "windows per batch", .min = 1, .max = 1 << 16},
        {.name = "--batches", .kind = ARG_INT, .dst = &batches, .help = "evaluation batches", .min = 1, .max = 1 << 20},
    };
    int ns = (int)(sizeof specs / sizeof specs[0]);
    char err[1024];
    int rc = args_parse(specs, ns, argc, argv, err, sizeof err);
    if (rc == 1) {
        printf("usage: ropegpt eval --model M [--ctx L] [--rope-scaling none|linear|ntk|dynamic|yarn|llama3 "
               "[--rope-factor s]]\nValidation loss and perplexity at context L; and over the positions "
               "past the training context alone.\n");
        args_print_help(stdout, specs, ns);
        return 0;
    }
    if (rc != 0) { fprintf(stderr, "eval: %s\n", err); return 2; }
    if (!model_path) { fprintf(stderr, "eval: --model: expected a checkpoint path (model.bin or a run folder)\n"); return 2; }

    gpt m;
    checkpoint meta;
    if (checkpoint_load_model(model_path, &m, &meta, err, sizeof err) != 0) {
        fprintf(stderr, "eval: %s\n", err);
        return 2;
    }
    checkpoint_free(&meta);
    if (ctx == 0) ctx = m.cfg.maxT;
    if (scaling != 0 && m.cfg.pe != PE_ROPE) {
        fprintf(stderr, "eval: --rope-scaling: the model uses %s positions, not rope\n", pe_type_name(m.cfg.pe));
        gpt_free(&m);
        return 2;
    }
    dataset ds;
    data_status ds_st = dataset_load(&ds, data_path, 0);
    if (ds_st != DATA_OK) {
        fprintf(stderr, "eval: --data: '%s': %s\n", data_path, data_status_str(ds_st));
        gpt_free(&m);
        return 2;
    }
    if (dataset_check_T(&ds, ctx) != DATA_OK) {   /* bad input, not a failure: exit 2 */
        fprintf(stderr, "eval: --ctx %d: the validation split of '%s' has %zu tokens; a window needs %d\n", ctx,
                data_path, ds.n_val, ctx + 1);
        dataset_free(&ds);
        gpt_free(&m);
        return 2;
    }
    eval_result r = {.pos_loss = NULL};
    rc = eval_at_context(&m, &ds, ctx, eval_scaling_types[scaling], factor, B, batches, &r, err, sizeof err);
    double s = factor > 0 ? factor : fmax(1.0, (double)ctx / m.cfg.maxT);
    if (rc == 1) {
        fprintf(stderr, "eval: --ctx %d: %s\n", ctx, err);
    } else if (rc == 0) {
        printf("model %s: %s positions, trained context %d\n", model_path, pe_type_name(m.cfg.pe), m.cfg.maxT);
        if (m.cfg.pe == PE_ROPE && scaling != 0)
            printf("rope scaling: %s, factor %g, L0 %d\n", eval_scaling_names[scaling], s, m.cfg.maxT);
        printf("ctx %d (%lld windows): val loss %.4f  perplexity %.3f\n", ctx, (long long)r.windows,
               r.loss, exp(r.loss));
        if (ctx > m.cfg.maxT)
            printf("positions %d..%d only (past the training context): val loss %.4f  perplexity %.3f\n",
                   m.cfg.maxT, ctx - 1, r.loss_beyond, exp(r.loss_beyond));
    } else {
        fprintf(stderr, "eval: %s\n", err);
    }
    dataset_free(&ds);
    gpt_free(&m);
    return rc == 1 ? 2 : (rc == 0 ? 0 : 1);
}
