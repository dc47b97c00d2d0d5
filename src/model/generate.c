/*
 * generate.c — KV-cache inference for the GPT of gpt.c. The layer sequence
 * is gpt_forward's (pre-LayerNorm blocks, tanh-GELU MLP, tied LM head), run
 * over a chunk of new tokens whose attention reads the cached keys and values
 * of every earlier position. The embedding, LayerNorm, GELU and residual
 * layers are the src/nn ones; the chunk's matmuls are matmul_forward_ctx for
 * a prefill and matvec_forward for one token (packing a weight matrix to
 * multiply it by one vector would read it twice). Attention over the cache
 * repeats attention_forward's arithmetic (dot products summed in 8 lanes),
 * so the cached path differs from a full recompute by rounding only.
 */
#include "model/generate.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/encoder.h"
#include "nn/gelu.h"
#include "nn/layernorm.h"
#include "nn/matmul.h"
#include "nn/matvec.h"
#include "nn/posenc.h"
#include "nn/residual.h"
#include "util/threads.h"

const char *gen_status_str(gen_status s) {
    switch (s) {
    case GEN_OK: return "ok";
    case GEN_ENULL: return "a required pointer is NULL";
    case GEN_ECONFIG: return "bad generation config (capacity, chunk, or a RoPE scaling on a non-rope model)";
    case GEN_ENOMEM: return "out of memory";
    case GEN_EROPE: return "librope error";
    case GEN_ESHAPE: return "chunk empty, longer than max_chunk, or past the cache capacity";
    case GEN_ETOKEN: return "token outside the vocabulary";
    case GEN_ERANGE: return "learned positions end at the training context";
    default: return "unknown status";
    }
}

gen_config gen_config_default(void) {
    gen_config c;
    memset(&c, 0, sizeof c);
    c.scaling = rope_config_default().scaling;
    c.scaling.type = ROPE_SCALING_NONE;
    c.dynamic_keys = GEN_DYNAMIC_REROTATE;
    return c;
}

/* ---------------------------------------------------------------- rope */

/* A table for this model's RoPE settings with g's scaling, positions
 * [0, max_positions) precomputed, built for a sequence of seq_len tokens. */
static gen_status build_table(rope_table *t, const gen_state *g, int64_t seq_len, int64_t max_positions) {
    const gpt *m = g->m;
    rope_config rc = rope_config_default();
    rc.head_dim = m->HS;
    rc.rotary_dim = m->rotary_dim;
    rc.base = m->cfg.rope_base;
    rc.layout = m->cfg.rope_layout;
    rc.scaling = g->gc.scaling;
    rc.max_positions = max_positions;
    rc.strict_range = 1;   /* positions never pass the table: a bug if they do */
    rope_status rs = rope_table_init(t, &rc, seq_len);
    if (rs == ROPE_ENOMEM) return GEN_ENOMEM;
    return rs == ROPE_OK ? GEN_OK : GEN_EROPE;
}

static int is_dynamic(const gen_state *g) {
    return g->m->cfg.pe == PE_ROPE && g->gc.scaling.type == ROPE_SCALING_DYNAMIC;
}

/* The seq_len the table starts from: dynamic NTK equals plain RoPE up to L0
 * (HF computes it for max(seq_len, L0)); the other scalings ignore seq_len
 * except LongRoPE, for which the capacity is the longest sequence served. */
static int64_t initial_seq_len(const gen_state *g) {
    if (is_dynamic(g)) return g->gc.scaling.original_max_positions;
    return g->gc.capacity;
}

/* Dynamic NTK: the base follows the sequence length (HF
 * dynamic_frequency_update: recompute when seq_len = max position + 1 grows
 * past the cached length). REROTATE turns the cached keys back with the old
 * table and forward with the new, so all keys share the current base. */
static gen_status dynamic_grow(gen_state *g, int64_t seq_len) {
    rope_table nt;
    /* Rows for the positions in use only (< seq_len): this table lives until
     * the next token, so rows past it would be computed for nothing. */
    gen_status st = build_table(&nt, g, seq_len, seq_len);
    if (st != GEN_OK) return st;
    const gpt_config *c = &g->m->cfg;
    if (g->gc.dynamic_keys == GEN_DYNAMIC_REROTATE && g->n > 0) {
        const size_t layer = (size_t)g->gc.capacity * (size_t)c->C;
        for (int l = 0; l < c->L; l++) {
            rope_view k = { g->kcache + (size_t)l * layer, g->n, c->NH, c->C, g->m->HS };
            if (rope_apply(&g->rope, ROPE_BACKWARD, &k, &k, g->pos, g->gc.n_threads) != ROPE_OK ||
                rope_apply(&nt, ROPE_FORWARD, &k, &k, g->pos, g->gc.n_threads) != ROPE_OK) {
                rope_table_free(&nt);
                return GEN_EROPE;   /* views and positions are ours: cannot happen */
            }
        }
    }
    rope_table_free(&g->rope);
    g->rope = nt;
    g->rope_len = seq_len;
    return GEN_OK;
}

/* ---------------------------------------------------------------- init */

gen_status gen_init(gen_state *g, const gpt *m, const gen_config *gc) {
    if (g == NULL) return GEN_ENULL;
    memset(g, 0, sizeof *g);
    if (m == NULL || gc == NULL || m->params_memory == NULL) return GEN_ENULL;
    const gpt_config *c = &m->cfg;
    if (gc->capacity <= 0 || gc->max_chunk <= 0 || gc->max_chunk > gc->capacity || gc->n_threads < 0 ||
        gc->capacity > (1 << 24))
        return GEN_ECONFIG;
    if (gc->scaling.type != ROPE_SCALING_NONE && c->pe != PE_ROPE) return GEN_ECONFIG;
    g->m = m;
    g->gc = *gc;
    g->C3 = 3 * c->C;
    matmul_ctx_init(&g->mm, MATMUL_OWN);
    g->nthreads = gc->n_threads > 0 ? gc->n_threads : threads_max();
    if (g->nthreads < 1) g->nthreads = 1;

    const size_t cap = (size_t)gc->capacity, C = (size_t)c->C, P = (size_t)gc->max_chunk;
    const size_t kv = (size_t)c->L * cap * C;
    g->kcache = malloc(kv * sizeof(float));
    g->vcache = malloc(kv * sizeof(float));
    g->pos = malloc(cap * sizeof(int32_t));
    size_t sizes[11] = { P * C, P * C, P, P, P * 3 * C, P * C, P * C, P * 4 * C, P * 4 * C, (size_t)c->V,
                         (size_t)g->nthreads * cap };
    size_t total = 0;
    for (int i = 0; i < 11; i++) total += sizes[i];
    g->mem = malloc(total * sizeof(float));
    if (!g->kcache || !g->vcache || !g->pos || !g->mem) {
        gen_free(g);
        return GEN_ENOMEM;
    }
    float **ptrs[11] = { &g->x, &g->ln, &g->mean, &g->rstd, &g->qkv, &g->atty, &g->proj, &g->fch, &g->fch_gelu,
                         &g->logits, &g->att };
    float *p = g->mem;
    for (int i = 0; i < 11; i++) {
        *ptrs[i] = p;
        p += sizes[i];
    }
    for (size_t i = 0; i < cap; i++) g->pos[i] = (int32_t)i;
    if (c->pe == PE_SINUSOIDAL) {
        g->sinusoid = malloc(cap * C * sizeof(float));
        if (g->sinusoid == NULL) {
            gen_free(g);
            return GEN_ENOMEM;
        }
        sinusoidal_table(g->sinusoid, gc->capacity, c->C);
    }
    if (c->pe == PE_ROPE) {
        g->rope_len = initial_seq_len(g);
        gen_status st = build_table(&g->rope, g, g->rope_len, gc->capacity);
        if (st != GEN_OK) {
            gen_free(g);
            return st;
        }
    }
    return GEN_OK;
}

void gen_free(gen_state *g) {
    if (g == NULL) return;
    free(g->kcache);
    free(g->vcache);
    free(g->pos);
    free(g->sinusoid);
    free(g->mem);
    rope_table_free(&g->rope);
    matmul_ctx_free(&g->mm);   /* a zeroed ctx holds NULL: fine */
    memset(g, 0, sizeof *g);
}

gen_status gen_reset(gen_state *g) {
    if (g == NULL || g->m == NULL) return GEN_ENULL;
    g->n = 0;
    if (is_dynamic(g) && g->rope_len != initial_seq_len(g)) {
        rope_table nt;
        gen_status st = build_table(&nt, g, initial_seq_len(g), g->gc.capacity);
        if (st != GEN_OK) return st;
        rope_table_free(&g->rope);
        g->rope = nt;
        g->rope_len = initial_seq_len(g);
    }
    return GEN_OK;
}

/* ---------------------------------------------------------------- layers */

/* out (OC) = W (OC, C) @ x (C) + bias: src/nn/matvec's kernel (each row
 * reduced by one thread in a fixed order, best ISA), then the bias. */
static void matvec(float *out, const float *x, const float *w, const float *bias, int C, int OC) {
    matvec_forward(out, x, w, C, OC);
    if (bias)
        for (int o = 0; o < OC; o++) out[o] += bias[o];
}

/* out (T, OC) = inp (T, C) @ weight^T + bias: batched for a prefill. */
static void linear(gen_state *g, float *out, const float *inp, const float *weight, const float *bias, int T,
                   int C, int OC) {
    if (T == 1) matvec(out, inp, weight, bias, C, OC);
    else matmul_forward_ctx(&g->mm, out, inp, weight, bias, T, C, OC);
}

/* q . k over one head: eight partial sums in a fixed order, which the
 * compiler turns into SIMD lanes (a single running sum cannot be
 * vectorised without reassociating); differs from attention_forward's
 * serial sum by rounding only. */
static float dot_head(const float *a, const float *b, int n) {
    float acc[8] = { 0 };
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int u = 0; u < 8; u++) acc[u] += a[i + u] * b[i + u];
    float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

/* Causal attention of the chunk's T queries (positions p0 .. p0+T-1) over the
 * cached keys/values of layer l, positions 0 .. p, as attention_forward does
 * it: scaled dot product, ALiBi bias -slope*(p - j), max-subtracted softmax,
 * weighted sum of values, in the same order except the 8-lane dot. */
static void attend(gen_state *g, const float *kc /*(cap, C)*/, const float *vc /*(cap, C)*/, int p0, int T) {
    const gpt_config *c = &g->m->cfg;
    const int C = c->C, NH = c->NH, HS = g->m->HS;
    const size_t C3 = (size_t)g->C3, cap = (size_t)g->gc.capacity;
    const float scale = 1.0f / sqrtf((float)HS);
    const float *alibi = c->pe == PE_ALIBI ? g->m->alibi : NULL;
    const long long rows = (long long)T * NH;
    const long long work = rows * (long long)(p0 + T) * HS;
    (void)work;   /* read by the OpenMP if clause only */
#pragma omp parallel for schedule(dynamic, 1) num_threads(g->nthreads) if (rows > 1 && work >= 32768)
    for (long long r = 0; r < rows; r++) {
        const int t = (int)(r / NH), h = (int)(r % NH), p = p0 + t;
        const float *q = g->qkv + (size_t)t * C3 + (size_t)h * HS;   /* (HS) */
        float *sc = g->att + (size_t)thread_index() * cap;              /* (p+1) */
        const float slope = alibi ? alibi[h] : 0.0f;
        float maxv = -INFINITY;
        for (int j = 0; j <= p; j++) {
            const float *k = kc + (size_t)j * (size_t)C + (size_t)h * HS;   /* (HS) */
            float s = dot_head(q, k, HS) * scale;
            if (alibi) s -= slope * (float)(p - j);
            sc[j] = s;
            if (s > maxv) maxv = s;
        }
        float sum = 0.0f;
        for (int j = 0; j <= p; j++) {
            float e = expf(sc[j] - maxv);
            sc[j] = e;
            sum += e;
        }
        const float inv = 1.0f / sum;   /* sum >= 1: the max term contributes exp(0) */
        for (int j = 0; j <= p; j++) sc[j] *= inv;
        /* Eight output channels at a time summed in a local array (no
         * aliasing, so the compiler keeps them in one SIMD register); each
         * o[i] still sums a_j * v_j[i] in j order from 0, as before. */
        float *o = g->atty + (size_t)t * (size_t)C + (size_t)h * HS;   /* (HS) */
        const float *vh = vc + (size_t)h * HS;                          /* column block of head h */
        int i0 = 0;
        for (; i0 + 8 <= HS; i0 += 8) {
            float acc[8] = { 0 };
            for (int j = 0; j <= p; j++) {
                const float *v = vh + (size_t)j * (size_t)C + (size_t)i0;   /* (8) */
                const float a = sc[j];
                for (int u = 0; u < 8; u++) acc[u] += a * v[u];
            }
            for (int u = 0; u < 8; u++) o[i0 + u] = acc[u];
        }
        for (; i0 < HS; i0++) {
            float acc = 0.0f;
            for (int j = 0; j <= p; j++) acc += sc[j] * vh[(size_t)j * (size_t)C + (size_t)i0];
            o[i0] = acc;
        }
    }
}

/* ---------------------------------------------------------------- forward */

static const float *fail(gen_status *status, gen_status st) {
    if (status) *status = st;
    return NULL;
}

const float *gen_forward(gen_state *g, const int *tok, int T, gen_status *status) {
    if (g == NULL || g->m == NULL || tok == NULL) return fail(status, GEN_ENULL);
    const gpt *m = g->m;
    const gpt_config *c = &m->cfg;
    const gpt_params *w = &m->params;
    if (T <= 0 || T > g->gc.max_chunk || (int64_t)g->n + T > g->gc.capacity) return fail(status, GEN_ESHAPE);
    for (int t = 0; t < T; t++)
        if (tok[t] < 0 || tok[t] >= c->V) return fail(status, GEN_ETOKEN);
    const int p0 = g->n;
    if (c->pe == PE_LEARNED && p0 + T > c->maxT) return fail(status, GEN_ERANGE);
    if (is_dynamic(g)) {
        const int64_t need = (int64_t)p0 + T;
        if (need > g->rope_len && need > g->gc.scaling.original_max_positions) {
            gen_status st = dynamic_grow(g, need);
            if (st != GEN_OK) return fail(status, st);
        }
    }

    const int C = c->C, L = c->L, NH = c->NH, V = c->V;
    const size_t Cs = (size_t)C, TC = (size_t)T * Cs, cap = (size_t)g->gc.capacity;
    const size_t layer = cap * Cs;
    float wte_scale = c->pe == PE_SINUSOIDAL ? sqrtf((float)C) : 1.0f;   /* as gpt_forward */
    encoder_forward(g->x, tok, w->wte, c->pe == PE_LEARNED ? w->wpe + (size_t)p0 * Cs : NULL, wte_scale, 1, T, C);
    if (c->pe == PE_SINUSOIDAL) add_rows_forward(g->x, g->sinusoid + (size_t)p0 * Cs, 1, T, C);

    for (int l = 0; l < L; l++) {
        const size_t ls = (size_t)l;
        float *kc = g->kcache + ls * layer, *vc = g->vcache + ls * layer;   /* (cap, C) */
        layernorm_forward(g->ln, g->mean, g->rstd, g->x, w->ln1w + ls * Cs, w->ln1b + ls * Cs, T, C);
        linear(g, g->qkv, g->ln, w->qkvw + ls * 3 * Cs * Cs, w->qkvb + ls * 3 * Cs, T, C, 3 * C);
        if (c->pe == PE_ROPE) {
            /* q and k of the chunk rotated at their absolute positions p0 + t. */
            rope_view q = { g->qkv, T, NH, g->C3, m->HS };
            rope_view k = { g->qkv + C, T, NH, g->C3, m->HS };
            if (rope_apply_qk(&g->rope, ROPE_FORWARD, &q, &k, g->pos + p0, g->gc.n_threads) != ROPE_OK)
                return fail(status, GEN_EROPE);
        }
        for (int t = 0; t < T; t++) {
            const float *row = g->qkv + (size_t)t * (size_t)g->C3;
            memcpy(kc + ((size_t)p0 + t) * Cs, row + Cs, Cs * sizeof(float));
            memcpy(vc + ((size_t)p0 + t) * Cs, row + 2 * Cs, Cs * sizeof(float));
        }
        attend(g, kc, vc, p0, T);
        linear(g, g->proj, g->atty, w->attprojw + ls * Cs * Cs, w->attprojb + ls * Cs, T, C, C);
        residual_forward(g->x, g->x, g->proj, TC);
        layernorm_forward(g->ln, g->mean, g->rstd, g->x, w->ln2w + ls * Cs, w->ln2b + ls * Cs, T, C);
        linear(g, g->fch, g->ln, w->fcw + ls * 4 * Cs * Cs, w->fcb + ls * 4 * Cs, T, C, 4 * C);
        gelu_forward(g->fch_gelu, g->fch, TC * 4);
        linear(g, g->proj, g->fch_gelu, w->fcprojw + ls * 4 * Cs * Cs, w->fcprojb + ls * Cs, T, 4 * C, C);
        residual_forward(g->x, g->x, g->proj, TC);
    }
    /* Only the last token's logits are needed to pick the next one. */
    const float *last = g->x + (size_t)(T - 1) * Cs;
    layernorm_forward(g->ln, g->mean, g->rstd, last, w->lnfw, w->lnfb, 1, C);
    matvec(g->logits, g->ln, w->wte, NULL, C, V);   /* tied LM head */
    g->n = p0 + T;
    if (status) *status = GEN_OK;
    return g->logits;
}
