/*
 * train_dist.h — data-parallel training over a dist group (util/dist.h): the
 * pieces the training loop (train.c) calls so that N ranks together take the
 * same optimizer steps as one process with N times the batch.
 *
 *  - Batches: every rank draws the GLOBAL batch of N*B windows from the
 *    shared seeded stream (so every rank's data RNG stays identical, which is
 *    what the checkpoint saves) and keeps rows r, r+N, r+2N, ...; 2 ranks x
 *    B/2 therefore see exactly the windows of 1 rank x B. The evaluation
 *    batches are split the same way and the losses averaged.
 *  - Gradients: each rank's backward scales its mean-loss gradient by 1/N
 *    (train_dist_grad_scale, passed to gpt_backward_scaled) and the ranks'
 *    gradients are summed: the global mean with no pass over the buffer
 *    after the reduction (for N a power of two the scaling is exact, so the
 *    result is (sum)/N bit for bit, barring float underflow). The buffer is
 *    cut into buckets (one per group of layers, the final LayerNorm with the
 *    last layer, the embeddings last) and the communication overlaps the
 *    backward pass: train_dist_arm(td, 1) before
 *    the last micro-batch's backward sets the model's on_layer_grads hook
 *    (gpt.h), which starts each bucket with MPI_Iallreduce (ZeRO:
 *    MPI_Ireduce_scatter, below) as soon as its layers' gradients are final
 *    and lets MPI progress the ones in flight (MPI_Testall: with no
 *    progress thread, OpenMPI moves a non-blocking collective only inside
 *    MPI calls). train_dist_sync_grads, after the backward, sends the
 *    embeddings (wte is final only at the very end, so nothing is left to
 *    overlap with: a blocking all-reduce; under ZeRO non-blocking, OpenMPI's
 *    blocking reduce-scatter being the slower one here) and waits for the
 *    buckets. Earlier
 *    micro-batches (--accum > 1) run without the hook: their gradients are
 *    only partial sums. Which path a step takes never depends
 *    on rank-local events (a rank whose loss was not finite skips its
 *    backward but still starts every bucket in sync_grads, in the same
 *    order), so the collectives always match across ranks.
 *  - ZeRO stage 1 (Rajbhandari et al. 2020, "ZeRO: Memory Optimizations
 *    Toward Training Trillion Parameter Models", stage P_os): the AdamW
 *    moments are split into N contiguous shards of the flat buffer. The
 *    gradients are reduce-scattered instead of all-reduced: each rank
 *    receives the summed gradient of its own shard only (half an
 *    all-reduce's bytes), into gshard. With overlap on (the default) that
 *    happens bucket by bucket during backward as above: every piece of a
 *    bucket (a contiguous range of the flat buffer) is one reduce-scatter
 *    whose per-rank counts are the piece's overlap with each shard; with
 *    overlap off, one blocking reduce-scatter after backward. The sync then
 *    takes the global norm from the shards (each rank's sum of squares in
 *    double, summed over the ranks by one all-reduce of a double), each
 *    rank updates its shard with it and the parameters are all-gathered.
 *    With 2 ranks the gradient sums are the bits of the all-reduce's; the
 *    norm is grad_global_norm's sum regrouped, so the clip can differ from
 *    the unsharded step's in the last bit. The model's full-size m, v are
 *    freed (model.m_memory = v_memory = NULL), and after the sync
 *    model.grads_memory holds this rank's own (unsummed) gradient: read the
 *    norm with train_dist_grad_norm, never from the buffer.
 *  - Checkpoints: collective; rank 0 gathers the moments (ZeRO) and writes;
 *    the batch saved is the global batch N*B, so a resumed run on M ranks
 *    takes (N*B)/M rows each and continues the same training.
 * Every function accepts td == NULL and then does what a single process does
 * (plain dataset_batch, adamw_step, ...), so the loop calls them
 * unconditionally. Collective functions must be called by every rank in the
 * same order. Nothing prints or exits.
 */
#ifndef ROPEGPT_TRAIN_DIST_H
#define ROPEGPT_TRAIN_DIST_H

#include <stddef.h>
#include <stdint.h>

#include "data/dataset.h"
#include "model/adamw.h"
#include "model/checkpoint.h"
#include "model/gpt.h"
#include "model/train.h"
#include "util/dist.h"

typedef struct {
    int n;                 /* ranges in use */
    size_t off[16], len[16];
    int first_layer;       /* lowest layer in the bucket; -1: embeddings (after the last layer) */
    int started;
} train_dist_bucket;

typedef struct train_dist {
    const dist *d;         /* borrowed */
    gpt *model;            /* borrowed */
    int zero;              /* 0 or 1 (ZeRO stage) */
    size_t n;              /* parameters */
    size_t *counts, *displs; /* (size) ZeRO shards of [0, n) */
    size_t lo, cnt;        /* this rank's shard */
    float *m, *v;          /* ZeRO: moment shards (cnt) */
    float *gshard;         /* ZeRO: this shard of the mean gradient (cnt; valid after the sync) */
    size_t *pcounts;       /* (size) scratch: each rank's share of one gradient piece */
    double gnorm;          /* ZeRO: global norm of the mean gradient (valid after the sync) */
    int failed;            /* a piece the backward hook could not start (the sync reports it) */
    int *ginp, *gtgt;      /* (size*B*T) one global batch */
    size_t gcap;
    int nbuckets;
    train_dist_bucket *buckets;
    dist_reqs reqs;
    int overlap;           /* 1: buckets during backward (the default with size > 1) */
    int averaged;          /* 1: grads hold this step's mean (sync_grads ran; step consumes it) */
    uint64_t hook_starts;  /* buckets started from the backward hook, all steps (tests, bench) */
} train_dist;

/* Sets up td for trainer tr (fresh or resumed, before trainer_run) on group
 * d. zero: 0 or 1. A resumed trainer's tc.B is the global batch from the
 * checkpoint and becomes tc.B / size (an error if it does not divide). With
 * zero = 1 this rank's shard of the model's moments is copied out and the
 * full arrays freed. The caller then sets tr->dist = td. Local (not
 * collective). 0 ok, -1 with a one-line reason in err; td is then zeroed. */
int train_dist_init(train_dist *td, const dist *d, trainer *tr, int zero, char *err, size_t errlen);

void train_dist_free(train_dist *td);

int train_dist_rank(const train_dist *td);   /* 0 if td is NULL */
int train_dist_size(const train_dist *td);   /* 1 if td is NULL */

/* Bytes of AdamW state (m and v) this rank holds, and what one process would. */
size_t train_dist_opt_bytes(const train_dist *td, size_t *full_bytes);

/* Hash of everything that must match across ranks: model and training
 * config (not threads), step, data RNG, AdamW step, data fingerprint, a
 * sample of the parameters, and zero. */
uint64_t train_dist_hash(const trainer *tr, int zero);

/* This rank's B rows of the global batch of size*B windows (see above);
 * td NULL: dataset_batch. r advances by the global batch's draws. */
data_status train_dist_batch(train_dist *td, const dataset *ds, data_split split, rng_state *r, int B, int T,
                             int *inp, int *tgt);

/* This rank's B rows of evaluation batch k of size*B windows. */
data_status train_dist_eval_batch(train_dist *td, const dataset *ds, data_split split, int k, int B, int T,
                                  int *inp, int *tgt);

/* Collective: mean of x over the ranks (double). td NULL: x. */
double train_dist_mean(train_dist *td, double x);

/* Collective: 1 if flag is nonzero on any rank. td NULL: flag != 0. */
int train_dist_any(train_dist *td, int flag);

/* What the backward hook does, for callers that drive the buckets by hand:
 * the parameter gradients of layer l (>= 0) are final; starts every layer
 * bucket whose layers are all done and lets MPI progress the ones in
 * flight. Nothing with overlap off. Collective in the sense that every rank
 * must report the same layers. */
void train_dist_layer_done(train_dist *td, int l);

/* Collective: model grads = their sum over the ranks (the mean, each rank's
 * part being scaled by train_dist_grad_scale); under ZeRO instead gshard =
 * the sum of this rank's shard (model grads unchanged) and gnorm = the
 * global norm. Overlap on: starts the layer buckets not yet started (in
 * bucket order, as the hook would), sends the embeddings' bucket (blocking
 * all-reduce; ZeRO: started too), waits for all; off: one blocking collective over the flat buffer. Both
 * give the same bits for 2 ranks (one float addition per element). 0 ok,
 * -1 error. td NULL: nothing to do. */
int train_dist_average_grads(train_dist *td);

/* Arms (on != 0) or disarms the model's on_layer_grads hook for the next
 * gpt_backward: armed only when overlap is on. Call with 1 just before the
 * backward of the LAST micro-batch of a step and with 0 right after it.
 * Local. td NULL: nothing. */
void train_dist_arm(train_dist *td, int on);

/* Collective, after the step's last backward and before anything reads the
 * gradients (norm check, zeroing a skipped step): train_dist_average_grads,
 * remembered so that train_dist_step does not average again. Every rank
 * must call it, also one that skipped its backward. 0 ok, -1 error. */

/* Local, after train_dist_sync_grads: the global norm of the mean gradient
 * (before clipping), the same on every rank. ZeRO: the one the sync took
 * from the shards (NAN if the sync has not run this step); otherwise
 * grad_global_norm(g, n) of the averaged buffer (g: model grads; td NULL:
 * the single process's). */
double train_dist_grad_norm(const train_dist *td, const float *g, size_t n);
int train_dist_sync_grads(train_dist *td);

/* Overlap on (1) or off (0: one blocking all-reduce after backward, the
 * baseline for tests and dist_bench). Must be equal on every rank. Local;
 * ignored (stays 0) with a single rank. */
void train_dist_set_overlap(train_dist *td, int on);

/* The factor each rank's backward must apply to its gradient: 1/size (1
 * for td NULL), so that the all-reduce's sum is the mean over the ranks.
 * trainer_run passes train_dist_grad_scale(td) / accum to
 * gpt_backward_scaled; a gradient not scaled so comes out size times too
 * large from train_dist_step. */
float train_dist_grad_scale(const train_dist *td);

/* Rebuilds the buckets with at least min_floats each (default 512 Ki; tests
 * use small values to get several buckets from a tiny model). Local; -1 if
 * a bucket is in flight or out of memory. */
int train_dist_set_bucket_floats(train_dist *td, size_t min_floats);

/* Collective: averages the gradients over the ranks (unless
 * train_dist_sync_grads did) and takes one AdamW step (opt->lr set by the
 * caller); ZeRO: sharded as described above. td NULL: adamw_step on the
 * whole model. Returns the global gradient norm before clipping (of the
 * averaged gradient), NAN on an internal error. */
double train_dist_step(train_dist *td, adamw *opt, gpt *m);

/* train_dist_step with the norm of the averaged gradient already known
 * (train_dist_grad_norm after train_dist_sync_grads): saves one pass over
 * the gradients. norm NAN: computed. Ignored under ZeRO (the sync took it
 * from the shards). */
double train_dist_step_norm(train_dist *td, adamw *opt, gpt *m, double norm);

/* Collective: writes ck (filled by the caller from rank-local state; its
 * m, v may be NULL under ZeRO) to path from rank 0, with the gathered
 * moments and tc.B = B * size. Every rank gets rank 0's outcome: 0 ok, -1
 * with a reason in err. td NULL: checkpoint_save. */
int train_dist_save(train_dist *td, const checkpoint *ck, const char *path, char *err, size_t errlen);

#endif
