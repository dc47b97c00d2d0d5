/*
 * cmd_eval.h — `ropegpt eval`: validation loss and perplexity of a trained
 * model at a context length L, possibly longer than the one it was trained
 * on, with an optional RoPE context-extension scaling. eval_at_context() is
 * the measurement itself, shared with `ropegpt compare --extrapolate`.
 */
#ifndef ROPEGPT_CMD_EVAL_H
#define ROPEGPT_CMD_EVAL_H

#include <stdint.h>

#include "data/dataset.h"
#include "model/gpt.h"
#include "rope.h"

/* The scalings eval and compare offer, by name. */
#define EVAL_N_SCALINGS 6
extern const char *const eval_scaling_names[EVAL_N_SCALINGS + 1];   /* NULL-terminated */
extern const rope_scaling_type eval_scaling_types[EVAL_N_SCALINGS];  /* same order */

typedef struct {
    /* In: optional (ctx) buffer for the mean loss at each position t over
     * the windows; NULL if not wanted. Kept by eval_at_context. */
    double *pos_loss;
    /* Out: */
    double loss;          /* mean loss over every position of every window (nats/token) */
    double loss_beyond;   /* mean over positions t >= the training context only; NAN if none */
    int64_t windows;      /* windows evaluated (batches x B) */
    int ctx;              /* window length */
} eval_result;

/* Evaluates m on the fixed validation windows (dataset_eval_batch k =
 * 0..batches-1, B rows each) of ctx tokens. The loss of each window is the
 * mean over its positions; positions t >= m->cfg.maxT (the training context)
 * are also averaged on their own. For PE_ROPE, scaling (ROPE_SCALING_NONE for
 * none) is applied with factor (> 0; 0 means ctx / maxT, at least 1) and
 * L0 = maxT while evaluating, and the model is put back to no scaling
 * afterwards. Other encodings ignore scaling.
 * out->pos_loss is read on entry (see eval_result); the other fields are set.
 * Returns 0 ok; 1 when the model cannot run at ctx (PE_LEARNED past its
 * table), with the reason in err; -1 on error (err says why). */
int eval_at_context(gpt *m, const dataset *ds, int ctx, rope_scaling_type scaling, double factor,
                    int B, int batches, eval_result *out, char *err, size_t errlen);

/* argv[0..argc) are the subcommand's arguments (not its name). Returns the
 * exit status: 0 ok, 2 bad input (one line on stderr), 1 other errors. */
int cmd_eval(int argc, char **argv);

#endif
