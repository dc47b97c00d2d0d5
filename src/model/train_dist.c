/*
 * train_dist.c — data-parallel pieces of the training loop (see
 * train_dist.h): global-batch row selection, bucketed gradient all-reduce
 * (reduce-scatter under ZeRO-1), ZeRO-1 sharded AdamW, collective
 * checkpoint save. Why the global batch is
 * drawn whole on every rank: rng_below rejects some draws, so the number of
 * RNG outputs per window is not fixed; drawing all N*B windows keeps every
 * rank's RNG in the same state (cheap: N*B*(T+1) byte copies).
 */
#include "model/train_dist.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/io.h"

/* Smallest bucket (floats) before the next layer is added to it: big enough
 * that a per-message latency does not dominate, small enough that the first
 * bucket can start early in a deep model. */
#define BUCKET_MIN_FLOATS ((size_t)1 << 19)

/* Largest part of a gradient piece in one reduce-scatter: its total must
 * fit an MPI int (the all-reduce splits inside dist.c). */
#define PIECE_MAX ((size_t)1 << 30)

static int fail(char *err, size_t errlen, const char *msg) {
    if (err && errlen) snprintf(err, errlen, "%s", msg);
    return -1;
}

int train_dist_rank(const train_dist *td) { return td ? td->d->rank : 0; }
int train_dist_size(const train_dist *td) { return td ? td->d->size : 1; }

void train_dist_free(train_dist *td) {
    if (!td) return;
    if (td->model && td->model->on_layer_ctx == td) {   /* the model may outlive td */
        td->model->on_layer_grads = NULL;
        td->model->on_layer_ctx = NULL;
    }
    free(td->counts);
    free(td->displs);
    free(td->m);
    free(td->v);
    free(td->gshard);
    free(td->pcounts);
    free(td->ginp);
    free(td->gtgt);
    free(td->buckets);
    dist_reqs_free(&td->reqs);
    memset(td, 0, sizeof *td);
}

/* Buckets in backward order: layers L-1 down to 0 in groups of at least
 * BUCKET_MIN_FLOATS (the first also takes lnfw, lnfb, finished before any
 * layer), then the embeddings (wte, wpe), whose gradient is complete only
 * after the encoder's backward. For a group of layers [l0, l1) each per-layer
 * tensor (L, ...) is one contiguous range. */
static int build_buckets(train_dist *td, size_t min_floats) {
    const gpt *m = td->model;
    const int L = m->cfg.L;
    size_t off[GPT_NUM_TENSORS];
    size_t acc = 0;
    for (int i = 0; i < GPT_NUM_TENSORS; i++) {
        off[i] = acc;
        acc += m->tensor_sizes[i];
    }
    free(td->buckets);
    td->buckets = calloc((size_t)L + 1, sizeof *td->buckets);
    if (!td->buckets) return -1;
    const int first_layer_tensor = 2, last_layer_tensor = 13;   /* ln1w .. fcprojb */
    size_t per_layer = 0;
    for (int i = first_layer_tensor; i <= last_layer_tensor; i++) per_layer += m->tensor_sizes[i] / (size_t)L;
    int nb = 0;
    int l1 = L;   /* layers [l0, l1) go in the bucket being built */
    while (l1 > 0) {
        int l0 = l1 - 1;
        while (l0 > 0 && (size_t)(l1 - l0) * per_layer < min_floats) l0--;
        train_dist_bucket *b = &td->buckets[nb++];
        b->first_layer = l0;
        for (int i = first_layer_tensor; i <= last_layer_tensor; i++) {
            size_t each = m->tensor_sizes[i] / (size_t)L;
            b->off[b->n] = off[i] + (size_t)l0 * each;
            b->len[b->n] = (size_t)(l1 - l0) * each;
            b->n++;
        }
        if (l1 == L) {
            for (int i = 14; i <= 15; i++) {   /* lnfw, lnfb */
                b->off[b->n] = off[i];
                b->len[b->n] = m->tensor_sizes[i];
                b->n++;
            }
        }
        l1 = l0;
    }
    train_dist_bucket *e = &td->buckets[nb++];
    e->first_layer = -1;
    for (int i = 0; i <= 1; i++) {   /* wte, wpe (size 0 unless learned) */
        if (m->tensor_sizes[i] == 0) continue;
        e->off[e->n] = off[i];
        e->len[e->n] = m->tensor_sizes[i];
        e->n++;
    }
    td->nbuckets = nb;
    return 0;
}

int train_dist_init(train_dist *td, const dist *d, trainer *tr, int zero, char *err, size_t errlen) {
    memset(td, 0, sizeof *td);
    if (zero != 0 && zero != 1) return fail(err, errlen, "--zero must be 0 or 1");
    if (tr->arch.arch != ARCH_GPT)
        return fail(err, errlen, "data-parallel training (mpirun with several ranks, --zero) supports --arch gpt only");
    td->d = d;
    td->model = &tr->model;
    td->zero = zero;
    td->n = tr->model.num_params;
    const int N = d->size;
    if (tr->resumed) {
        if (tr->tc.B % N != 0) {
            char msg[256];
            snprintf(msg, sizeof msg, "the checkpoint's global batch %d cannot be split evenly over %d ranks",
                     tr->tc.B, N);
            return fail(err, errlen, msg);
        }
        tr->tc.B /= N;
    }
    td->counts = malloc((size_t)N * sizeof *td->counts);
    td->displs = malloc((size_t)N * sizeof *td->displs);
    td->pcounts = malloc((size_t)N * sizeof *td->pcounts);
    if (!td->counts || !td->displs || !td->pcounts) goto oom;
    /* Shards differ by at most one element; the first n % N get the extra. */
    size_t acc = 0;
    for (int r = 0; r < N; r++) {
        td->counts[r] = td->n / (size_t)N + ((size_t)r < td->n % (size_t)N ? 1 : 0);
        td->displs[r] = acc;
        acc += td->counts[r];
    }
    td->lo = td->displs[d->rank];
    td->cnt = td->counts[d->rank];
    if (build_buckets(td, BUCKET_MIN_FLOATS)) goto oom;
    td->overlap = N > 1;
    if (zero) {
        size_t c = td->cnt ? td->cnt : 1;
        td->m = malloc(c * sizeof(float));
        td->v = malloc(c * sizeof(float));
        td->gshard = malloc(c * sizeof(float));   /* before the first bucket starts */
        if (!td->m || !td->v || !td->gshard) goto oom;
        memcpy(td->m, tr->model.m_memory + td->lo, td->cnt * sizeof(float));
        memcpy(td->v, tr->model.v_memory + td->lo, td->cnt * sizeof(float));
        /* The point of ZeRO-1: this rank no longer holds the whole state. */
        free(tr->model.m_memory);
        free(tr->model.v_memory);
        tr->model.m_memory = tr->model.v_memory = NULL;
    }
    return 0;
oom:
    train_dist_free(td);
    return fail(err, errlen, "out of memory setting up data-parallel training");
}

size_t train_dist_opt_bytes(const train_dist *td, size_t *full_bytes) {
    size_t n = td ? td->n : 0;
    if (full_bytes) *full_bytes = 2 * n * sizeof(float);
    if (!td) return 0;
    return 2 * (td->zero ? td->cnt : td->n) * sizeof(float);
}

uint64_t train_dist_hash(const trainer *tr, int zero) {
    /* Fields one by one (never a raw struct: padding bytes are undefined). */
    uint64_t h = DIST_HASH_INIT;
#define H(x) h = dist_hash(h, &(x), sizeof(x))
    const gpt_config *c = &tr->cfg;
    const train_config *t = &tr->tc;
    int32_t pe = (int32_t)c->pe, layout = (int32_t)c->rope_layout;
    H(c->V); H(c->L); H(c->NH); H(c->C); H(c->maxT); H(pe); H(layout); H(c->rope_base); H(c->rope_fraction);
    H(t->B); H(t->steps); H(t->lr); H(t->min_lr); H(t->warmup); H(t->beta1); H(t->beta2); H(t->eps);
    H(t->weight_decay); H(t->grad_clip); H(t->accum); H(t->eval_every); H(t->eval_batches); H(t->seed);
    H(t->save_every);
    H(tr->step); H(tr->data_rng.s); H(tr->opt.t); H(tr->data_len); H(tr->data_crc); H(zero);
    size_t n = tr->model.num_params;
    H(n);
    /* A strided sample of the parameters: catches a rank that resumed from
     * another file without reading all of a large model. */
    for (size_t i = 0; i < n; i += 4099) H(tr->model.params_memory[i]);
#undef H
    return h;
}

/* Makes room for one global batch of rows*T tokens. */
static int ensure_global(train_dist *td, size_t rows, int T) {
    size_t need = rows * (size_t)T;
    if (need <= td->gcap) return 0;
    int *a = realloc(td->ginp, need * sizeof *a);
    if (!a) return -1;
    td->ginp = a;
    int *b = realloc(td->gtgt, need * sizeof *b);
    if (!b) return -1;
    td->gtgt = b;
    td->gcap = need;
    return 0;
}

/* Rows rank, rank+N, ... of the global batch into inp, tgt. */
static void take_rows(const train_dist *td, int B, int T, int *inp, int *tgt) {
    const size_t N = (size_t)td->d->size, r0 = (size_t)td->d->rank, Ts = (size_t)T;
    for (size_t b = 0; b < (size_t)B; b++) {
        size_t g = b * N + r0;
        memcpy(inp + b * Ts, td->ginp + g * Ts, Ts * sizeof *inp);
        memcpy(tgt + b * Ts, td->gtgt + g * Ts, Ts * sizeof *tgt);
    }
}

data_status train_dist_batch(train_dist *td, const dataset *ds, data_split split, rng_state *r, int B, int T,
                             int *inp, int *tgt) {
    if (!td) return dataset_batch(ds, split, r, B, T, inp, tgt);
    if (B <= 0 || T <= 0) return DATA_EARG;
    const size_t rows = (size_t)B * (size_t)td->d->size;
    if (rows > (size_t)0x7fffffff) return DATA_EARG;
    if (ensure_global(td, rows, T)) return DATA_ENOMEM;
    data_status st = dataset_batch(ds, split, r, (int)rows, T, td->ginp, td->gtgt);
    if (st != DATA_OK) return st;
    take_rows(td, B, T, inp, tgt);
    return DATA_OK;
}

data_status train_dist_eval_batch(train_dist *td, const dataset *ds, data_split split, int k, int B, int T,
                                  int *inp, int *tgt) {
    if (!td) return dataset_eval_batch(ds, split, k, B, T, inp, tgt);
    if (B <= 0 || T <= 0) return DATA_EARG;
    const size_t rows = (size_t)B * (size_t)td->d->size;
    if (rows > (size_t)0x7fffffff) return DATA_EARG;
    if (ensure_global(td, rows, T)) return DATA_ENOMEM;
    data_status st = dataset_eval_batch(ds, split, k, (int)rows, T, td->ginp, td->gtgt);
    if (st != DATA_OK) return st;
    take_rows(td, B, T, inp, tgt);
    return DATA_OK;
}

double train_dist_mean(train_dist *td, double x) {
    if (!td || td->d->size == 1) return x;
    /* Equal row counts on every rank, so the mean of the rank means is the
     * mean over the global batch. */
    double s = x;
    dist_allreduce_sum_f64(td->d, &s, 1);
    return s / (double)td->d->size;
}

int train_dist_any(train_dist *td, int flag) {
    int32_t f = flag ? 1 : 0;
    if (td) dist_allreduce_max_i32(td->d, &f, 1);
    return f != 0;
}

/* Each rank's share of the gradient piece [off, off + len) under the ZeRO
 * shards, into td->pcounts: pcounts[r] = |[off, off + len) ∩ shard r|. The
 * shards are contiguous and in rank order, so the shares tile the piece in
 * rank order: one reduce-scatter of the piece hands each rank the sum of
 * exactly its share. Returns where this rank's share goes in gshard (any
 * valid pointer when it is empty: the rank still takes part). */
static float *piece_share(train_dist *td, size_t off, size_t len) {
    const size_t end = off + len;
    for (int r = 0; r < td->d->size; r++) {
        const size_t a = td->displs[r], b = a + td->counts[r];
        const size_t lo = a > off ? a : off, hi = b < end ? b : end;
        td->pcounts[r] = hi > lo ? hi - lo : 0;
    }
    if (td->pcounts[td->d->rank] == 0) return td->gshard;
    return td->gshard + ((off > td->lo ? off : td->lo) - td->lo);
}

/* Sums gradient piece [off, off + len) over the ranks: in place
 * (all-reduce), or under ZeRO only this rank's share, into gshard
 * (reduce-scatter: half the bytes each rank receives). blocking 0: started
 * into td->reqs. 0 ok, -1 error. */
static int send_piece(train_dist *td, size_t off, size_t len, int blocking) {
    const dist *d = td->d;
    float *g = td->model->grads_memory;
    if (!td->zero)
        return blocking ? dist_allreduce_sum_f32(d, g + off, len) : dist_iallreduce_sum_f32(d, g + off, len, &td->reqs);
    for (size_t a = off; a < off + len; a += PIECE_MAX) {
        const size_t k = off + len - a < PIECE_MAX ? off + len - a : PIECE_MAX;
        float *dst = piece_share(td, a, k);
        int rc = blocking ? dist_reduce_scatter_sum_f32(d, g + a, dst, td->pcounts)
                          : dist_ireduce_scatter_sum_f32(d, g + a, dst, td->pcounts, &td->reqs);
        if (rc) return -1;
    }
    return 0;
}

static void start_bucket(train_dist *td, train_dist_bucket *b) {
    for (int i = 0; i < b->n; i++)
        if (b->len[i] && send_piece(td, b->off[i], b->len[i], 0)) td->failed = 1;   /* reported by the sync */
    b->started = 1;
}

/* Starts, in bucket order, every layer bucket whose lowest layer is >= l. */
static int start_layers_from(train_dist *td, int l) {
    int n = 0;
    for (int i = 0; i < td->nbuckets; i++) {
        train_dist_bucket *b = &td->buckets[i];
        if (!b->started && b->first_layer >= 0 && b->first_layer >= l) {
            start_bucket(td, b);
            n++;
        }
    }
    return n;
}

void train_dist_layer_done(train_dist *td, int l) {
    if (!td || !td->overlap || l < 0) return;
    start_layers_from(td, l);
    /* No progress thread (OpenMPI 4.1: "OMPI progress: no"): a started
     * collective moves on only inside an MPI call, so every layer boundary
     * lends it one. */
    dist_reqs_test(&td->reqs);
}

/* gpt's on_layer_grads hook (gpt.h): layer l's gradients are final; l = -1
 * after the embeddings, whose bucket train_dist_sync_grads sends; l =
 * GPT_HOOK_PROGRESS between a layer's operations. Every call lends MPI a
 * test of the collectives in flight. */
static void on_layer_grads(void *ctx, int l) {
    train_dist *td = ctx;
    if (l >= 0) td->hook_starts += (uint64_t)start_layers_from(td, l);
    dist_reqs_test(&td->reqs);
}

void train_dist_arm(train_dist *td, int on) {
    if (!td) return;
    td->averaged = 0;   /* a new backward: the grads change again */
    gpt *m = td->model;
    m->on_layer_grads = (on && td->overlap) ? on_layer_grads : NULL;
    m->on_layer_ctx = m->on_layer_grads ? td : NULL;
}

void train_dist_set_overlap(train_dist *td, int on) {
    if (!td) return;
    td->overlap = on && td->d->size > 1;
    if (!td->overlap) train_dist_arm(td, 0);
}

double train_dist_grad_norm(const train_dist *td, const float *g, size_t n) {
    if (td && td->zero) return td->averaged ? td->gnorm : NAN;
    return grad_global_norm(g, n);
}

float train_dist_grad_scale(const train_dist *td) { return td ? 1.0f / (float)td->d->size : 1.0f; }

int train_dist_set_bucket_floats(train_dist *td, size_t min_floats) {
    if (!td || td->reqs.n) return -1;
    return build_buckets(td, min_floats);
}

/* ZeRO: the global norm of the mean gradient from the shards: each rank's
 * sum of squares (grad_sum_squares: double, fixed blocks and lanes),
 * summed over the ranks (the same on every rank). A plain serial sum here
 * was one add's latency per element: ~55 ms of the sync for a 62M-float
 * shard. */
static int shard_norm(train_dist *td) {
    double ss = grad_sum_squares(td->gshard, td->cnt);
    if (dist_allreduce_sum_f64(td->d, &ss, 1)) return -1;
    td->gnorm = sqrt(ss);
    return 0;
}

int train_dist_average_grads(train_dist *td) {
    if (!td) return 0;
    if (td->overlap) {
        /* Whatever the hook has not started (all of it on a rank that skipped
         * its backward), in the hook's order; then the embeddings, final only
         * now: nothing left to overlap with, so the all-reduce takes
         * OpenMPI's blocking algorithm (faster per byte than its non-blocking
         * one, which copies the buffer first) while the layer buckets finish;
         * then wait for those. Not so the reduce-scatter: for wte's 38.6M
         * floats on 2 ranks here every blocking MPI_Reduce_scatter algorithm
         * of OpenMPI 4.1 took 150-210 ms, MPI_Ireduce_scatter + wait 120-150
         * ms (MPI_Allreduce 70-106 ms), so ZeRO starts it like the others. */
        start_layers_from(td, 0);
        for (int i = 0; i < td->nbuckets; i++) {
            train_dist_bucket *b = &td->buckets[i];
            if (b->first_layer >= 0) continue;
            for (int k = 0; k < b->n; k++)
                if (b->len[k] && send_piece(td, b->off[k], b->len[k], !td->zero)) return -1;
        }
        if (dist_reqs_wait(&td->reqs)) return -1;
        for (int i = 0; i < td->nbuckets; i++) td->buckets[i].started = 0;
        if (td->failed) {   /* a piece the hook could not start */
            td->failed = 0;
            return -1;
        }
    } else if (send_piece(td, 0, td->n, 1)) {
        /* Overlap off: one blocking collective over the flat buffer (the
         * baseline dist_bench --overlap 2 compares against). With nothing to
         * overlap, this beats non-blocking pieces: 1.2-2.3 s vs 2.7-3.1 s as
         * 13 or 150 MPI_Iallreduce for 124M floats on 2 ranks, OpenMPI 4.1,
         * loaded 2-core VM. */
        return -1;
    }
    if (td->zero && shard_norm(td)) return -1;
    td->averaged = 1;   /* each rank's part was scaled by 1/size in its backward */
    return 0;
}

int train_dist_sync_grads(train_dist *td) {
    if (!td) return 0;
    train_dist_arm(td, 0);
    return train_dist_average_grads(td);
}

double train_dist_step(train_dist *td, adamw *opt, gpt *m) { return train_dist_step_norm(td, opt, m, NAN); }

double train_dist_step_norm(train_dist *td, adamw *opt, gpt *m, double norm) {
    if (!td) {
        if (!isnan(norm))
            return adamw_step_norm(opt, m->params_memory, m->grads_memory, m->m_memory, m->v_memory, m->decay_mask,
                                   m->num_params, norm);
        return adamw_step(opt, m->params_memory, m->grads_memory, m->m_memory, m->v_memory, m->decay_mask,
                          m->num_params);
    }
    if (!td->averaged && train_dist_average_grads(td)) return NAN;
    td->averaged = 0;
    if (!td->zero) {
        /* Identical gradients on every rank, so identical updates: the
         * parameters stay in step without being sent. */
        if (!isnan(norm))
            return adamw_step_norm(opt, m->params_memory, m->grads_memory, m->m_memory, m->v_memory, m->decay_mask,
                                   m->num_params, norm);
        return adamw_step(opt, m->params_memory, m->grads_memory, m->m_memory, m->v_memory, m->decay_mask,
                          m->num_params);
    }
    /* ZeRO-1: this rank holds the mean gradient of its shard only (the
     * reduce-scatter); its update with the global norm from the shards (the
     * clip, grad_clip / gnorm, folded in exactly as in the single-process
     * step), then the shards are all-gathered. */
    adamw_step_norm(opt, m->params_memory + td->lo, td->gshard, td->m, td->v, m->decay_mask + td->lo, td->cnt,
                    td->gnorm);
    if (dist_allgatherv_f32(td->d, m->params_memory, td->counts, td->displs)) return NAN;
    return td->gnorm;
}

int train_dist_save(train_dist *td, const checkpoint *ck_in, const char *path, char *err, size_t errlen) {
    if (!td) return checkpoint_save(path, ck_in, err, errlen);
    const dist *d = td->d;
    checkpoint ck = *ck_in;
    ck.tc.B = ck_in->tc.B * d->size;   /* the global batch (see the header) */
    float *fm = NULL, *fv = NULL;
    int32_t rc = 0;
    if (td->zero) {
        if (d->rank == 0) {
            fm = malloc((td->n ? td->n : 1) * sizeof(float));
            fv = malloc((td->n ? td->n : 1) * sizeof(float));
            rc = (fm && fv) ? 0 : -1;
        }
        /* Everyone learns whether rank 0 has room before gathering into it. */
        dist_bcast_bytes(d, &rc, sizeof rc, 0);
        if (rc == 0) {
            dist_gatherv_f32(d, td->m, fm, td->counts, td->displs, 0);
            dist_gatherv_f32(d, td->v, fv, td->counts, td->displs, 0);
            ck.m = fm;
            ck.v = fv;
        } else if (d->rank == 0) {
            fail(err, errlen, "out of memory gathering the optimizer state for the checkpoint");
        }
    }
    if (rc == 0 && d->rank == 0) rc = checkpoint_save(path, &ck, err, errlen) ? -1 : 0;
    dist_bcast_bytes(d, &rc, sizeof rc, 0);
    if (rc && d->rank != 0) fail(err, errlen, "rank 0 could not write the checkpoint");
    free(fm);
    free(fv);
    return rc ? -1 : 0;
}
