/*
 * apply.c — librope's apply paths: rope_view_packed, rope_apply,
 * rope_apply_qk and rope_shift. They check every argument (views, positions)
 * before writing anything, resolve each token's cos/sin row (from the table,
 * or computed on the fly past it), run the table's kernel once per token over
 * all its heads, and copy the pass-through channels when out of place.
 * Large calls are split over tokens with OpenMP; every element is computed by
 * the same arithmetic whatever the split, so results do not depend on the
 * thread count.
 *
 * View rule (what ROPE_ESHAPE means here): n_tokens >= 0, n_heads > 0, and
 * the n_tokens * n_heads head vectors (head_dim floats each) must be disjoint.
 * A dimension of count 1 ignores its stride; the others need strides >= 0 and
 * are checked as a nested layout: the smaller stride >= head_dim and the
 * larger stride >= (count of the smaller - 1) * smaller stride + head_dim.
 * This admits token-major (T, NH, HS) buffers, heads inside a (T, 3C) qkv
 * buffer, padded heads, and head-major (NH, T, HS) buffers alike.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "rope.h"
#include "rope/kernels.h"
#include "rope/table.h"

/* Below this many floats (n_tokens * n_heads * head_dim) a call runs serially:
 * starting a thread team (~a few us) costs more than rotating 64K floats. */
#define ROPE_PARALLEL_MIN ((int64_t)1 << 16)

rope_view rope_view_packed(float *data, int64_t n_tokens, int64_t n_heads, int64_t head_dim) {
    rope_view v;
    v.data = data;
    v.n_tokens = n_tokens;
    v.n_heads = n_heads;
    v.token_stride = n_heads * head_dim;
    v.head_stride = head_dim;
    return v;
}

/* Checks v against the rule above; *span = floats from v->data to one past the
 * last element (0 when n_tokens == 0). */
static rope_status view_check(const rope_view *v, int64_t head_dim, int64_t *span) {
    if (!v) return ROPE_ENULL;
    if (v->n_tokens < 0 || v->n_heads <= 0) return ROPE_ESHAPE;
    *span = 0;
    if (v->n_tokens == 0) return ROPE_OK;
    if (!v->data) return ROPE_ENULL;
    int64_t n[2] = { v->n_tokens, v->n_heads };
    int64_t s[2] = { v->token_stride, v->head_stride };
    int64_t total = head_dim;
    for (int d = 0; d < 2; d++) {
        if (n[d] == 1) continue;
        if (s[d] < 0) return ROPE_ESHAPE;
        if (s[d] > 0 && n[d] - 1 > (INT64_MAX - total) / s[d]) return ROPE_ESHAPE;
        total += (n[d] - 1) * s[d];
    }
    /* Order the real dimensions by stride: inner, outer. */
    int inner = s[0] <= s[1] ? 0 : 1, outer = 1 - inner;
    if (n[0] == 1) { inner = 1; outer = -1; }
    else if (n[1] == 1) { inner = 0; outer = -1; }
    if (n[inner] > 1) {
        if (s[inner] < head_dim) return ROPE_ESHAPE;
        if (outer >= 0 && s[outer] - head_dim < (n[inner] - 1) * s[inner]) return ROPE_ESHAPE;
    }
    *span = total;
    return ROPE_OK;
}

static int same_view(const rope_view *a, const rope_view *b) {
    return a->data == b->data &&
           (a->n_tokens <= 1 || a->token_stride == b->token_stride) &&
           (a->n_heads <= 1 || a->head_stride == b->head_stride);
}

static int ranges_overlap(const float *a, int64_t a_len, const float *b, int64_t b_len) {
    uintptr_t a0 = (uintptr_t)a, b0 = (uintptr_t)b;
    uintptr_t a1 = a0 + (uintptr_t)a_len * sizeof(float), b1 = b0 + (uintptr_t)b_len * sizeof(float);
    return a0 < b1 && b0 < a1;
}

/* EPOS for a negative position, ERANGE past the table under strict_range (the
 * first bad token decides); *any_past says whether the on-the-fly path runs. */
static rope_status positions_check(const rope_table *t, const int32_t *pos, int64_t n, int *any_past) {
    *any_past = 0;
    for (int64_t i = 0; i < n; i++) {
        if (pos[i] < 0) return ROPE_EPOS;
        if ((int64_t)pos[i] >= t->cfg.max_positions) {
            if (t->cfg.strict_range) return ROPE_ERANGE;
            *any_past = 1;
        }
    }
    return ROPE_OK;
}

static rope_token_fn kernel_for(const rope_table *t) {
    rope_kernel k = t->kernel == ROPE_KERNEL_AUTO ? rope_kernel_best() : t->kernel;
    return rope_kernel_get(k, t->cfg.layout);
}

/* Threads for a call of `work` floats; n_threads as in rope.h (< 0 acts as 0). */
static int threads_for(int64_t work, int n_threads) {
    if (n_threads == 1 || work < ROPE_PARALLEL_MIN) return 1;
#ifdef _OPENMP
    int nt = n_threads > 0 ? n_threads : omp_get_max_threads();
    return nt > 1 ? nt : 1;
#else
    return 1;
#endif
}

/* One validated rotation: rows from pos (or the fixed row when pos == NULL). */
typedef struct {
    const rope_table *t;
    rope_token_fn fn;
    int backward;
    const rope_view *out, *in;
    int in_place;
    const int32_t *pos;
    const float *fixed_cos, *fixed_sin;
} rope_job;

static void job_token(const rope_job *j, int64_t tk, float *scratch) {
    const rope_table *t = j->t;
    int np = t->n_pairs;
    const float *c = j->fixed_cos, *s = j->fixed_sin;
    if (j->pos) {
        int64_t p = j->pos[tk];
        if (p < t->cfg.max_positions) {
            c = t->cos + (size_t)p * (size_t)np;
            s = t->sin + (size_t)p * (size_t)np;
        } else {
            rope_row_compute(t->inv_freq, np, t->attention_factor, (double)p, scratch, scratch + np);
            c = scratch;
            s = scratch + np;
        }
    }
    float *y = j->out->data + tk * j->out->token_stride;
    const float *x = j->in->data + tk * j->in->token_stride;
    int64_t nh = j->in->n_heads;
    j->fn(y, x, nh, j->out->head_stride, j->in->head_stride, c, s, np, j->backward);
    int rd = t->cfg.rotary_dim, hd = t->cfg.head_dim;
    if (!j->in_place && rd < hd)
        for (int64_t h = 0; h < nh; h++)
            memcpy(y + h * j->out->head_stride + rd, x + h * j->in->head_stride + rd,
                   (size_t)(hd - rd) * sizeof(float));
}

/* cos + sin floats of a row that live on the stack (up to 512 pairs, i.e.
 * rotary_dim 1024: every real model); larger rows use the heap and can fail
 * with ROPE_ENOMEM, before anything is written. */
#define ROPE_STACK_ROW 1024

/* Runs a job over all tokens. need_scratch: some rows are computed on the fly. */
static rope_status job_run(const rope_job *j, int need_scratch, int n_threads) {
    int64_t nt_tok = j->in->n_tokens;
    int64_t work = nt_tok * j->in->n_heads * (int64_t)j->t->cfg.head_dim;
    int nt = threads_for(work, n_threads);
    size_t row = 2 * (size_t)j->t->n_pairs;
    float *heap = NULL;
    if (need_scratch && row > ROPE_STACK_ROW) {
        heap = malloc((size_t)nt * row * sizeof(float));
        if (!heap) return ROPE_ENOMEM;
    }
#ifdef _OPENMP
    if (nt > 1) {
        #pragma omp parallel num_threads(nt)
        {
            float local[ROPE_STACK_ROW];
            float *mine = heap ? heap + (size_t)omp_get_thread_num() * row : local;
            #pragma omp for schedule(static)
            for (int64_t tk = 0; tk < nt_tok; tk++) job_token(j, tk, mine);
        }
        free(heap);
        return ROPE_OK;
    }
#endif
    float local[ROPE_STACK_ROW];
    float *mine = heap ? heap : local;
    for (int64_t tk = 0; tk < nt_tok; tk++) job_token(j, tk, mine);
    free(heap);
    return ROPE_OK;
}

static rope_status table_check(const rope_table *t) {
    if (!t || !t->inv_freq) return ROPE_ENULL;   /* NULL or zeroed table */
    return ROPE_OK;
}

rope_status rope_apply(const rope_table *t, rope_direction dir,
                       const rope_view *out, const rope_view *in,
                       const int32_t *pos, int n_threads) {
    rope_status st = table_check(t);
    if (st != ROPE_OK) return st;
    if (!out || !in) return ROPE_ENULL;
    int64_t hd = t->cfg.head_dim, out_span, in_span;
    if ((st = view_check(out, hd, &out_span)) != ROPE_OK) return st;
    if ((st = view_check(in, hd, &in_span)) != ROPE_OK) return st;
    if (out->n_tokens != in->n_tokens || out->n_heads != in->n_heads) return ROPE_ESHAPE;
    if (in->n_tokens == 0) return ROPE_OK;
    int in_place = same_view(out, in);
    if (!in_place && ranges_overlap(out->data, out_span, in->data, in_span)) return ROPE_ESHAPE;
    if (!pos) return ROPE_ENULL;
    int any_past;
    if ((st = positions_check(t, pos, in->n_tokens, &any_past)) != ROPE_OK) return st;
    rope_job j = { t, kernel_for(t), dir == ROPE_BACKWARD, out, in, in_place, pos, NULL, NULL };
    if (!j.fn) return ROPE_EKERNEL;   /* only a hand-edited table gets here */
    return job_run(&j, any_past, n_threads);
}

rope_status rope_apply_qk(const rope_table *t, rope_direction dir,
                          const rope_view *q, const rope_view *k,
                          const int32_t *pos, int n_threads) {
    rope_status st = table_check(t);
    if (st != ROPE_OK) return st;
    if (!q) return ROPE_ENULL;
    int64_t hd = t->cfg.head_dim, span;
    if ((st = view_check(q, hd, &span)) != ROPE_OK) return st;
    if (k) {
        if ((st = view_check(k, hd, &span)) != ROPE_OK) return st;
        if (k->n_tokens != q->n_tokens) return ROPE_ESHAPE;
        /* k == q would rotate every element twice */
        if (k->n_tokens > 0 && k->data == q->data) return ROPE_ESHAPE;
    }
    if (q->n_tokens == 0) return ROPE_OK;
    if (!pos) return ROPE_ENULL;
    int any_past;
    if ((st = positions_check(t, pos, q->n_tokens, &any_past)) != ROPE_OK) return st;
    rope_token_fn fn = kernel_for(t);
    if (!fn) return ROPE_EKERNEL;
    /* q and k may interleave inside one qkv buffer, so their address ranges
     * overlap without sharing an element; sharing one (other than the same
     * start, caught above) is the caller's bug and is not detected. */
    rope_job jq = { t, fn, dir == ROPE_BACKWARD, q, q, 1, pos, NULL, NULL };
    if ((st = job_run(&jq, any_past, n_threads)) != ROPE_OK || !k) return st;
    rope_job jk = { t, fn, dir == ROPE_BACKWARD, k, k, 1, pos, NULL, NULL };
    return job_run(&jk, any_past, n_threads);
}

rope_status rope_shift(const rope_table *t, const rope_view *k, int64_t delta, int n_threads) {
    rope_status st = table_check(t);
    if (st != ROPE_OK) return st;
    if (!k) return ROPE_ENULL;
    int64_t span;
    if ((st = view_check(k, t->cfg.head_dim, &span)) != ROPE_OK) return st;
    if (k->n_tokens == 0 || delta == 0) return ROPE_OK;   /* R(0) = I exactly */
    rope_token_fn fn = kernel_for(t);
    if (!fn) return ROPE_EKERNEL;
    size_t np = (size_t)t->n_pairs;
    float local[ROPE_STACK_ROW];
    float *heap = 2 * np > ROPE_STACK_ROW ? malloc(2 * np * sizeof(float)) : NULL;
    float *row = 2 * np > ROPE_STACK_ROW ? heap : local;
    if (!row) return ROPE_ENOMEM;
    /* R(p + delta) = R(delta) R(p) pair by pair; the attention factor is
     * already in the keys, so the shift rotates with factor 1. */
    rope_row_compute(t->inv_freq, t->n_pairs, 1.0, (double)delta, row, row + np);
    rope_job j = { t, fn, 0, k, k, 1, NULL, row, row + np };
    st = job_run(&j, 0, n_threads);
    free(heap);
    return st;
}
