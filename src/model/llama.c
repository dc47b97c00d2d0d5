/*
 * llama.c — Llama-2 architecture forward pass with a KV cache (see llama.h).
 * Per block (Touvron et al. 2023, §2; the llama2.c run.c forward is the same
 * computation):
 *   x += Wo · attn(RoPE(Wq·n), RoPE(Wk·n), Wv·n),  n = RMSNorm(x) * rms_att
 *   x += W2 · (silu(W1·n) ⊙ W3·n),                 n = RMSNorm(x) * rms_ffn
 * then logits = Wcls · RMSNorm(x) * rms_final. Attention scale 1/sqrt(HS);
 * query head h reads kv head h / (NH / n_kv_heads) (grouped-query attention,
 * Ainslie et al. 2023). The softmax subtracts the row max and sums in float
 * over the causal prefix only.
 *
 * Determinism: every output element is reduced by one thread in a fixed
 * order (matvec, matmul's own kernels, attention per (token, head)), so the
 * bits do not depend on the thread count.
 */
#include "model/llama.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "nn/attention.h"
#include "nn/attention_simd.h"
#include "nn/matvec.h"
#include "nn/rmsnorm.h"
#include "nn/swiglu.h"
#include "util/rng.h"
#include "util/threads.h"

const char *llama_status_str(int s) {
    switch (s) {
    case LLAMA_OK: return "ok";
    case LLAMA_ENULL: return "a required pointer is NULL";
    case LLAMA_EDIM: return "a dimension is <= 0 or absurdly large";
    case LLAMA_EHEADS: return "head counts do not divide (dim % n_heads, n_heads % n_kv_heads) or odd head size";
    case LLAMA_ETOKEN: return "token id outside the vocabulary";
    case LLAMA_EPOS: return "positions outside the KV cache or too many tokens for one call";
    case LLAMA_EROPE: return "librope refused the RoPE table or rotation";
    case LLAMA_ENOMEM: return "out of memory";
    }
    return "unknown status";
}

llama_config llama_config_default(void) {
    llama_config c;
    c.dim = 288;
    c.hidden_dim = 768;
    c.n_layers = 6;
    c.n_heads = 6;
    c.n_kv_heads = 6;
    c.vocab_size = 32000;
    c.seq_len = 256;
    c.shared_classifier = 1;
    c.rope_base = 10000.0;
    c.norm_eps = 1e-5f;
    return c;
}

static int fail(char *err, size_t errlen, int code, const char *msg, long long v) {
    if (err && errlen) snprintf(err, errlen, "%s (got %lld)", msg, v);
    return code;
}

int llama_config_validate(const llama_config *c, char *err, size_t errlen) {
    if (!c) return fail(err, errlen, LLAMA_ENULL, "config is NULL", 0);
    if (c->dim <= 0 || c->dim > LLAMA_MAX_DIM) return fail(err, errlen, LLAMA_EDIM, "dim must be in [1, 65536]", c->dim);
    if (c->hidden_dim <= 0 || c->hidden_dim > LLAMA_MAX_HIDDEN)
        return fail(err, errlen, LLAMA_EDIM, "hidden_dim must be in [1, 262144]", c->hidden_dim);
    if (c->n_layers <= 0 || c->n_layers > LLAMA_MAX_LAYERS)
        return fail(err, errlen, LLAMA_EDIM, "n_layers must be in [1, 1024]", c->n_layers);
    if (c->vocab_size <= 0 || c->vocab_size > LLAMA_MAX_VOCAB)
        return fail(err, errlen, LLAMA_EDIM, "vocab_size must be in [1, 4194304]", c->vocab_size);
    if (c->seq_len <= 0 || c->seq_len > LLAMA_MAX_SEQ)
        return fail(err, errlen, LLAMA_EDIM, "seq_len must be in [1, 1048576]", c->seq_len);
    if (c->n_heads <= 0 || c->n_heads > c->dim) return fail(err, errlen, LLAMA_EDIM, "n_heads must be in [1, dim]", c->n_heads);
    if (c->n_kv_heads <= 0 || c->n_kv_heads > c->n_heads)
        return fail(err, errlen, LLAMA_EDIM, "n_kv_heads must be in [1, n_heads]", c->n_kv_heads);
    if (c->dim % c->n_heads != 0) return fail(err, errlen, LLAMA_EHEADS, "n_heads must divide dim", c->n_heads);
    if (c->n_heads % c->n_kv_heads != 0)
        return fail(err, errlen, LLAMA_EHEADS, "n_kv_heads must divide n_heads", c->n_kv_heads);
    if ((c->dim / c->n_heads) % 2 != 0)
        return fail(err, errlen, LLAMA_EHEADS, "head size dim/n_heads must be even for RoPE", c->dim / c->n_heads);
    if (!(c->rope_base > 0.0) || !isfinite(c->rope_base)) return fail(err, errlen, LLAMA_EDIM, "rope_base must be > 0", 0);
    if (!(c->norm_eps > 0.0f) || !isfinite(c->norm_eps)) return fail(err, errlen, LLAMA_EDIM, "norm_eps must be > 0", 0);
    return LLAMA_OK;
}

static size_t kv_dim_of(const llama_config *c) {
    return (size_t)c->n_kv_heads * (size_t)(c->dim / c->n_heads);
}

size_t llama_weights_floats(const llama_config *c) {
    size_t C = (size_t)c->dim, H = (size_t)c->hidden_dim, L = (size_t)c->n_layers;
    size_t V = (size_t)c->vocab_size, kvd = kv_dim_of(c);
    size_t n = V * C;                  /* token_embedding */
    n += L * C;                        /* rms_att */
    n += L * C * C + 2 * L * kvd * C;  /* wq, wk, wv */
    n += L * C * C;                    /* wo */
    n += L * C;                        /* rms_ffn */
    n += 3 * L * H * C;                /* w1, w2, w3 */
    n += C;                            /* rms_final */
    if (!c->shared_classifier) n += V * C;
    return n;
}

void llama_weights_point(llama_weights *w, const llama_config *c, const float *p, size_t gap) {
    size_t C = (size_t)c->dim, H = (size_t)c->hidden_dim, L = (size_t)c->n_layers;
    size_t V = (size_t)c->vocab_size, kvd = kv_dim_of(c);
    w->token_embedding = p; p += V * C;
    w->rms_att = p; p += L * C;
    w->wq = p; p += L * C * C;
    w->wk = p; p += L * kvd * C;
    w->wv = p; p += L * kvd * C;
    w->wo = p; p += L * C * C;
    w->rms_ffn = p; p += L * C;
    w->w1 = p; p += L * H * C;
    w->w2 = p; p += L * C * H;
    w->w3 = p; p += L * H * C;
    w->rms_final = p; p += C;
    w->wcls = c->shared_classifier ? w->token_embedding : p + gap;
}

static int region_threads(void) {
#ifdef _OPENMP
    return omp_get_num_threads();
#else
    return 1;
#endif
}

/* Everything but the weights: RoPE table, KV cache, scratch. */
static int state_alloc(llama_model *m, int max_T) {
    const llama_config *c = &m->cfg;
    if (max_T < 1 || max_T > c->seq_len) return LLAMA_EPOS;
    m->max_T = max_T;
    size_t C = (size_t)c->dim, H = (size_t)c->hidden_dim, T = (size_t)max_T;
    size_t kv = (size_t)c->n_layers * (size_t)c->seq_len * kv_dim_of(c);
    m->n_att = threads_max();
    m->key_cache = calloc(kv, sizeof(float));
    m->value_cache = calloc(kv, sizeof(float));
    m->x = malloc(T * C * sizeof(float));
    m->xb = malloc(T * C * sizeof(float));
    m->xb2 = malloc(T * C * sizeof(float));
    m->q = malloc(T * C * sizeof(float));
    m->hb = malloc(T * H * sizeof(float));
    m->hb2 = malloc(T * H * sizeof(float));
    m->att = malloc((size_t)m->n_att * (size_t)c->seq_len * sizeof(float));
    m->logits = malloc((size_t)c->vocab_size * sizeof(float));
    m->pos = malloc(T * sizeof(int32_t));
    if (!m->key_cache || !m->value_cache || !m->x || !m->xb || !m->xb2 || !m->q || !m->hb ||
        !m->hb2 || !m->att || !m->logits || !m->pos)
        return LLAMA_ENOMEM;
    rope_config rc = rope_config_default();
    rc.head_dim = c->dim / c->n_heads;
    rc.rotary_dim = rc.head_dim;
    rc.base = c->rope_base;
    rc.layout = ROPE_LAYOUT_INTERLEAVED;   /* Meta's Llama and llama2.c pair (2i, 2i+1) */
    rc.max_positions = c->seq_len;
    rc.strict_range = 1;
    rope_status rs = rope_table_init(&m->rope, &rc, c->seq_len);
    if (rs == ROPE_ENOMEM) return LLAMA_ENOMEM;
    if (rs != ROPE_OK) return LLAMA_EROPE;
    matmul_ctx_init(&m->mm, MATMUL_OWN);
    return LLAMA_OK;
}

int llama_init_borrowed(llama_model *m, const llama_config *cfg, const llama_weights *w, int max_T) {
    if (!m) return LLAMA_ENULL;
    memset(m, 0, sizeof *m);
    if (!cfg || !w) return LLAMA_ENULL;
    int rc = llama_config_validate(cfg, NULL, 0);
    if (rc) return rc;
    m->cfg = *cfg;
    m->w = *w;
    rc = state_alloc(m, max_T);
    if (rc) llama_free(m);
    return rc;
}

int llama_init_random(llama_model *m, const llama_config *cfg, uint64_t seed, float std, int max_T) {
    if (!m) return LLAMA_ENULL;
    memset(m, 0, sizeof *m);
    if (!cfg) return LLAMA_ENULL;
    int rc = llama_config_validate(cfg, NULL, 0);
    if (rc) return rc;
    m->cfg = *cfg;
    size_t n = llama_weights_floats(cfg);
    m->params = malloc(n * sizeof(float));
    if (!m->params) {
        llama_free(m);
        return LLAMA_ENOMEM;
    }
    rng_state r;
    rng_init(&r, seed, 0);
    rng_fill_normal(&r, m->params, n, 0.0f, std);
    llama_weights_point(&m->w, cfg, m->params, 0);
    /* RMSNorm weights scatter around 1 (their trained values are O(1)). */
    size_t LC = (size_t)cfg->n_layers * (size_t)cfg->dim;
    float *ra = m->params + (m->w.rms_att - m->params);
    float *rf = m->params + (m->w.rms_ffn - m->params);
    float *rn = m->params + (m->w.rms_final - m->params);
    for (size_t i = 0; i < LC; i++) {
        ra[i] += 1.0f;
        rf[i] += 1.0f;
    }
    for (int i = 0; i < cfg->dim; i++) rn[i] += 1.0f;
    rc = state_alloc(m, max_T);
    if (rc) llama_free(m);
    return rc;
}

/* matrices per layer in m->packed (llama_prepack) */
enum { PACKED_PER_LAYER = 7 };

void llama_free(llama_model *m) {
    if (!m) return;
    free(m->params);
    rope_table_free(&m->rope);
    matmul_ctx_free(&m->mm);
    free(m->key_cache);
    free(m->value_cache);
    free(m->x);
    free(m->xb);
    free(m->xb2);
    free(m->q);
    free(m->hb);
    free(m->hb2);
    free(m->att);
    free(m->logits);
    free(m->all_logits);
    free(m->pos);
    free(m->bf16);
    if (m->packed)
        for (int i = 0; i < PACKED_PER_LAYER * m->cfg.n_layers; i++) matmul_packed_free(&m->packed[i]);
    free(m->packed);
    memset(m, 0, sizeof *m);
}

int llama_use_bf16(llama_model *m) {
    if (!m || !m->w.wq) return LLAMA_ENULL;
    if (m->bf16) return LLAMA_OK;
    const llama_config *c = &m->cfg;
    const llama_weights *w = &m->w;
    /* wq..wo and w1..w3 are each contiguous in the flat order. */
    size_t attn = (size_t)(w->rms_ffn - w->wq), mlp = (size_t)(w->rms_final - w->w1);
    size_t cls = (size_t)c->vocab_size * (size_t)c->dim;
    uint16_t *b = malloc((attn + mlp + cls) * sizeof(uint16_t));
    if (!b) return LLAMA_ENOMEM;
    bf16_convert(b, w->wq, attn);
    bf16_convert(b + attn, w->w1, mlp);
    bf16_convert(b + attn + mlp, w->wcls, cls);
    m->bf16 = b;
    m->bq = b;
    m->bk = b + (w->wk - w->wq);
    m->bv = b + (w->wv - w->wq);
    m->bo = b + (w->wo - w->wq);
    m->b1 = b + attn;
    m->b2 = b + attn + (w->w2 - w->w1);
    m->b3 = b + attn + (w->w3 - w->w1);
    m->bcls = b + attn + mlp;
    return LLAMA_OK;
}

int llama_prepack(llama_model *m) {
    if (!m || !m->w.wq) return LLAMA_ENULL;
    if (m->packed) return LLAMA_OK;
    const llama_config *c = &m->cfg;
    const llama_weights *w = &m->w;
    const int L = c->n_layers, C = c->dim, H = c->hidden_dim, kvd = (int)kv_dim_of(c);
    matmul_packed *p = calloc((size_t)PACKED_PER_LAYER * (size_t)L, sizeof *p);
    if (!p) return LLAMA_ENOMEM;
    int bad = 0;
    for (int l = 0; l < L && !bad; l++) {
        size_t lq = (size_t)l * C * C, lk = (size_t)l * kvd * C, lh = (size_t)l * H * C;
        /* in the order linear() is called with: wq wk wv wo w1 w3 w2 */
        const float *src[PACKED_PER_LAYER] = { w->wq + lq, w->wk + lk, w->wv + lk, w->wo + lq,
                                               w->w1 + lh, w->w3 + lh, w->w2 + lh };
        const int in[PACKED_PER_LAYER] = { C, C, C, C, C, C, H }, out[PACKED_PER_LAYER] = { C, kvd, kvd, C, H, H, C };
        for (int i = 0; i < PACKED_PER_LAYER && !bad; i++)
            bad = matmul_pack_weight(&m->mm, &p[(size_t)PACKED_PER_LAYER * l + i], src[i], in[i], out[i]);
    }
    if (bad) {
        for (int i = 0; i < PACKED_PER_LAYER * L; i++) matmul_packed_free(&p[i]);
        free(p);
        return LLAMA_ENOMEM;
    }
    m->packed = p;
    return LLAMA_OK;
}

/* A bf16 weight view at offset off, or NULL when the model has none. */
static const uint16_t *boff(const llama_model *m, const uint16_t *p, size_t off) {
    return m->bf16 ? p + off : NULL;
}

/* out (T,OC) = inp (T,C) @ w^T for a batch (T > 1): the blocked matmul
 * shares each weight read between the tokens (one token takes the matvec
 * path of decode_step instead). */
static void linear(llama_model *m, float *out, const float *inp, const float *w, int T, int C, int OC,
                   int l, int which) {
    if (m->packed) matmul_forward_packed(&m->mm, out, inp, &m->packed[(size_t)PACKED_PER_LAYER * l + which], NULL, T);
    else matmul_forward_ctx(&m->mm, out, inp, w, NULL, T, C, OC);
}

/* One query head over cached positions [0, p]: o (HS) = softmax(q . k_j *
 * scale) weighted sum of v_j. k, v: the layer's caches at this kv head
 * (row stride kvd); att: (p + 1) scratch. The scores and the weighted sum
 * are matvecs over the cache rows (src/nn/matvec: SIMD, fixed order); the
 * softmax exp is the 16-lane one of attention_avx512.c where the CPU has
 * AVX-512 (simd_exp), else expf. */
static void attend_head(float *o, float *att, const float *q, const float *k, const float *v, size_t kvd,
                        int HS, int p, float scale, int simd_exp) {
    matvec_strided(att, q, k, HS, p + 1, kvd);
    float mx = -INFINITY;
    for (int j = 0; j <= p; j++) {
        att[j] *= scale;
        if (att[j] > mx) mx = att[j];
    }
    for (int j = 0; j <= p; j++) att[j] -= mx;   /* <= 0: no overflow */
    if (simd_exp) attention_exp_avx512(att, att, (size_t)p + 1);   /* 16 lanes, <= 2 ulp */
    else
        for (int j = 0; j <= p; j++) att[j] = expf(att[j]);
    float sum = 0.0f;
    for (int j = 0; j <= p; j++) sum += att[j];
    float inv = 1.0f / sum;
    for (int j = 0; j <= p; j++) att[j] *= inv;
    for (int i = 0; i < HS; i++) o[i] = 0.0f;
    matvec_t_accumulate(o, att, v, HS, p + 1, kvd);
}

/* Causal grouped-query attention of T new tokens over the cache. */
static void attention(llama_model *m, int l, int T, int pos0) {
    const llama_config *c = &m->cfg;
    int NH = c->n_heads, HS = c->dim / c->n_heads, group = c->n_heads / c->n_kv_heads;
    size_t kvd = kv_dim_of(c), C = (size_t)c->dim;
    const float *kc = m->key_cache + (size_t)l * (size_t)c->seq_len * kvd;
    const float *vc = m->value_cache + (size_t)l * (size_t)c->seq_len * kvd;
    float scale = 1.0f / sqrtf((float)HS);
    int simd_exp = attention_uses_avx512();
    int n = T * NH;   /* the team is capped at n_att: one score row per thread */
    long long work = (long long)n * (pos0 + T) * HS;
    (void)work;   /* read only by the OpenMP if-clause */
#pragma omp parallel for schedule(static) if (work >= 32768) num_threads(m->n_att)
    for (int th = 0; th < n; th++) {
        int t = th / NH, h = th % NH;
        size_t koff = (size_t)(h / group) * HS;
        attend_head(m->xb + (size_t)t * C + (size_t)h * HS, m->att + (size_t)thread_index() * (size_t)c->seq_len,
                    m->q + (size_t)t * C + (size_t)h * HS, kc + koff, vc + koff, kvd, HS, pos0 + t, scale, simd_exp);
    }
}

/* ---------------------------------------------------------------- decode */

/* Inside the decode region the src/nn layers are not called: each call
 * would open a (serialised) nested parallel region, ~1 us apiece, more than
 * the work. These two repeat their arithmetic exactly. */

/* out = RMSNorm(x) * w: rmsnorm_forward's arithmetic for one row. */
static void rmsnorm_row(float *out, const float *x, const float *w, int C, float eps) {
    double ss = 0.0;
    for (int c = 0; c < C; c++) ss += (double)x[c] * x[c];
    float r = (float)(1.0 / sqrt(ss / C + (double)eps));
    for (int c = 0; c < C; c++) out[c] = x[c] * r * w[c];
}

/* gate[i] = silu(gate[i]) * up[i]: swiglu_forward's arithmetic. */
static void swiglu_rows(float *gate, const float *up, int n) {
    for (int i = 0; i < n; i++) {
        float g = gate[i];
        float s = 1.0f / (1.0f + expf(-g));
        gate[i] = g * s * up[i];
    }
}

/* One decode product set shared out to the threads of the enclosing
 * parallel region (an orphaned omp for: blocks handed out dynamically, so a
 * thread the host delays holds up only its last few blocks; the for's
 * implicit barrier ends it). fp32, or bf16 from x's prepared form (prep,
 * each thread's own copy). */
static void region_multi(const llama_model *m, matvec_isa isa, int n, float *const *out, const float *const *w32,
                         const uint16_t *const *w16, const int *OC, const float *inp, const float *prep, int C) {
    int nb = matvec_multi_blocks(n, OC);
    int chunk = matvec_block_chunk(C, m->bf16 ? 2 : 4, nb, region_threads());
    (void)chunk;   /* read only by the schedule clause */
#pragma omp for schedule(dynamic, chunk)
    for (int b = 0; b < nb; b++) {
        if (m->bf16) matvec_bf16_forward_multi_block(isa, n, out, w16, OC, inp, prep, C, b);
        else matvec_forward_multi_block(isa, n, out, w32, OC, inp, C, b);
    }
}

/* hb = SwiGLU(W1 xn, W3 xn) over the region's threads: a block of W1 rows
 * and the same block of W3 rows in one step, then SwiGLU on those rows. */
static void region_swiglu(const llama_model *m, matvec_isa isa, const float *w1, const float *w3, const uint16_t *b1,
                          const uint16_t *b3, const float *xn, const float *prep, int C, int H) {
    int nb = matvec_multi_blocks(1, &H);
    int chunk = matvec_block_chunk(2 * C, m->bf16 ? 2 : 4, nb, region_threads());   /* a step: W1 and W3 rows */
    (void)chunk;
    float *o1[1] = { m->hb }, *o3[1] = { m->hb2 };
    const float *w1s[1] = { w1 }, *w3s[1] = { w3 };
    const uint16_t *b1s[1] = { b1 }, *b3s[1] = { b3 };
#pragma omp for schedule(dynamic, chunk)
    for (int b = 0; b < nb; b++) {
        if (m->bf16) {
            matvec_bf16_forward_multi_block(isa, 1, o1, b1s, &H, xn, prep, C, b);
            matvec_bf16_forward_multi_block(isa, 1, o3, b3s, &H, xn, prep, C, b);
        } else {
            matvec_forward_multi_block(isa, 1, o1, w1s, &H, xn, C, b);
            matvec_forward_multi_block(isa, 1, o3, w3s, &H, xn, C, b);
        }
        int r0, r1;
        matvec_block_rows(H, b, &r0, &r1);
        swiglu_rows(m->hb + r0, m->hb2 + r0, r1 - r0);
    }
}

/* Weights per layer below which a decode step runs on one thread. */
#define DECODE_OMP_MIN (1u << 17)
/* Per-thread decode scratch kept on the stack up to this many floats (32 KB). */
#define DECODE_STACK_FLOATS 8192

/* One token at position pos (T == 1), the whole step in one parallel
 * region: a fork and join per product (~3 us each here, idle) cost more
 * than the small products of a small model, so the threads stay in the
 * region and meet only at the implicit barriers (~1 us) of its worksharing
 * loops: q/k/v, attention, Wo, W1/W3 + SwiGLU, W2, the classifier. The
 * residual stream and its RMSNorm are kept by every thread (a private copy,
 * the same arithmetic, so the same bits: C floats of work, cheaper than a
 * barrier). Each product row and each head is computed by one thread in a
 * fixed order, whichever thread that is, so the bits do not depend on the
 * thread count. The layers are the batched path's, with matvecs where it
 * has matmuls (another summation order) and the same RMSNorm, SwiGLU and
 * attention (attend_head) arithmetic. */
static int decode_step(llama_model *m, int token, int pos) {
    const llama_config *c = &m->cfg;
    const llama_weights *w = &m->w;
    int C = c->dim, H = c->hidden_dim, NH = c->n_heads, NKV = c->n_kv_heads, HS = C / NH, V = c->vocab_size;
    int group = NH / NKV, kvd = (int)kv_dim_of(c);
    size_t Cs = (size_t)C, Hs = (size_t)H, L_stride = (size_t)c->seq_len * (size_t)kvd;
    float scale = 1.0f / sqrtf((float)HS);
    int nt = threads_max() < m->n_att ? threads_max() : m->n_att;   /* m->att has n_att rows */
    /* A layer of a small model is a few barriers' worth of work: one thread. */
    size_t layer_weights = Cs * (Cs + 2 * (size_t)kvd) + Cs * Cs + 3 * Cs * Hs;
    if (nt < 1 || layer_weights < DECODE_OMP_MIN) nt = 1;
    /* per thread: residual x (C), its norm xn (C), prepared input (max(C, H)) */
    size_t prep_n = matvec_bf16_prep_floats(C > H ? C : H);
    size_t per = 2 * Cs + prep_n;
    /* on each thread's stack when small (every llama2.c-sized model), else
     * one heap block for all (a malloc per token showed up in profiles) */
    float *scratch = NULL;
    if (per > DECODE_STACK_FLOATS) {
        scratch = malloc((size_t)nt * per * sizeof(float));
        if (!scratch) return LLAMA_ENOMEM;
    }
    int32_t p32 = pos;
    int err = LLAMA_OK;
    const float *emb = w->token_embedding + (size_t)token * Cs;
    matvec_isa isa = m->bf16 ? matvec_bf16_isa_best() : matvec_isa_best();   /* once per step */
    int simd_exp = attention_uses_avx512();

#pragma omp parallel num_threads(nt)
    {
        int tid = thread_index();
        float local[DECODE_STACK_FLOATS];
        float *x = scratch ? scratch + (size_t)tid * per : local, *xn = x + Cs, *prep = xn + Cs;
        float *att = m->att + (size_t)tid * (size_t)c->seq_len;
        memcpy(x, emb, Cs * sizeof(float));
        for (int l = 0; l < c->n_layers; l++) {
            size_t lq = (size_t)l * Cs * Cs, lk = (size_t)l * (size_t)kvd * Cs, lh = (size_t)l * Hs * Cs;
            float *kc = m->key_cache + (size_t)l * L_stride, *vc = m->value_cache + (size_t)l * L_stride;
            float *kp = kc + (size_t)pos * kvd, *vp = vc + (size_t)pos * kvd;

            rmsnorm_row(xn, x, w->rms_att + (size_t)l * Cs, C, c->norm_eps);
            if (m->bf16) matvec_bf16_prep(isa, prep, xn, C);
            {
                float *outs[3] = { m->q, kp, vp };
                const float *ws[3] = { w->wq + lq, w->wk + lk, w->wv + lk };
                const uint16_t *bs[3] = { boff(m, m->bq, lq), boff(m, m->bk, lk), boff(m, m->bv, lk) };
                int ocs[3] = { C, kvd, kvd };
                region_multi(m, isa, 3, outs, ws, bs, ocs, xn, prep, C);
            }
            /* RoPE then attention, a kv head (and its query heads) per
             * thread; with grouped queries, keys first, then the queries
             * spread over all heads. */
#pragma omp for schedule(dynamic, 1)
            for (int g = 0; g < NKV; g++) {
                rope_view kv = { kp + (size_t)g * HS, 1, 1, kvd, HS };
                rope_view qv = { m->q + (size_t)g * HS, 1, 1, C, HS };
                if (rope_apply_qk(&m->rope, ROPE_FORWARD, group == 1 ? &qv : &kv, group == 1 ? &kv : NULL,
                                  &p32, 1) != ROPE_OK) {
#pragma omp atomic write
                    err = LLAMA_EROPE;
                }
                if (group == 1)
                    attend_head(m->xb + (size_t)g * HS, att, m->q + (size_t)g * HS, kc + (size_t)g * HS,
                                vc + (size_t)g * HS, (size_t)kvd, HS, pos, scale, simd_exp);
            }
            if (group > 1) {
#pragma omp for schedule(dynamic, 1)
                for (int h = 0; h < NH; h++) {
                    rope_view qv = { m->q + (size_t)h * HS, 1, 1, C, HS };
                    if (rope_apply_qk(&m->rope, ROPE_FORWARD, &qv, NULL, &p32, 1) != ROPE_OK) {
#pragma omp atomic write
                        err = LLAMA_EROPE;
                    }
                    size_t koff = (size_t)(h / group) * HS;
                    attend_head(m->xb + (size_t)h * HS, att, m->q + (size_t)h * HS, kc + koff, vc + koff,
                                (size_t)kvd, HS, pos, scale, simd_exp);
                }
            }
            if (m->bf16) matvec_bf16_prep(isa, prep, m->xb, C);
            {
                float *outs[1] = { m->xb2 };
                const float *ws[1] = { w->wo + lq };
                const uint16_t *bs[1] = { boff(m, m->bo, lq) };
                region_multi(m, isa, 1, outs, ws, bs, &C, m->xb, prep, C);
            }
            for (int i = 0; i < C; i++) x[i] += m->xb2[i];
            rmsnorm_row(xn, x, w->rms_ffn + (size_t)l * Cs, C, c->norm_eps);
            if (m->bf16) matvec_bf16_prep(isa, prep, xn, C);
            region_swiglu(m, isa, w->w1 + lh, w->w3 + lh, boff(m, m->b1, lh), boff(m, m->b3, lh), xn, prep, C, H);
            if (m->bf16) matvec_bf16_prep(isa, prep, m->hb, H);
            {
                float *outs[1] = { m->xb2 };
                const float *ws[1] = { w->w2 + lh };
                const uint16_t *bs[1] = { boff(m, m->b2, lh) };
                region_multi(m, isa, 1, outs, ws, bs, &C, m->hb, prep, H);
            }
            for (int i = 0; i < C; i++) x[i] += m->xb2[i];
        }
        rmsnorm_row(xn, x, w->rms_final, C, c->norm_eps);
        if (m->bf16) matvec_bf16_prep(isa, prep, xn, C);
        {
            float *outs[1] = { m->logits };
            const float *ws[1] = { w->wcls };
            const uint16_t *bs[1] = { m->bcls };
            region_multi(m, isa, 1, outs, ws, bs, &V, xn, prep, C);
        }
        if (tid == 0) {
            memcpy(m->x, x, Cs * sizeof(float));
            memcpy(m->xb, xn, Cs * sizeof(float));
        }
    }
    free(scratch);
    return err;
}

int llama_forward(llama_model *m, const int *tokens, int T, int pos0, int all_logits) {
    if (!m || !tokens) return LLAMA_ENULL;
    const llama_config *c = &m->cfg;
    if (T < 1 || T > m->max_T || pos0 < 0 || (int64_t)pos0 + T > c->seq_len) return LLAMA_EPOS;
    for (int t = 0; t < T; t++)
        if (tokens[t] < 0 || tokens[t] >= c->vocab_size) return LLAMA_ETOKEN;
    if (all_logits && !m->all_logits) {
        m->all_logits = malloc((size_t)m->max_T * (size_t)c->vocab_size * sizeof(float));
        if (!m->all_logits) return LLAMA_ENOMEM;
    }
    int C = c->dim, H = c->hidden_dim, NH = c->n_heads, HS = C / NH, V = c->vocab_size;
    if (T == 1) {   /* decode: bandwidth-bound matvecs, one parallel region */
        int rc = decode_step(m, tokens[0], pos0);
        if (rc == LLAMA_OK && all_logits) memcpy(m->all_logits, m->logits, (size_t)V * sizeof(float));
        return rc;
    }
    int kvd = (int)kv_dim_of(c);
    size_t Cs = (size_t)C, Hs = (size_t)H, L_stride = (size_t)c->seq_len * (size_t)kvd;
    const llama_weights *w = &m->w;

    for (int t = 0; t < T; t++) {
        memcpy(m->x + (size_t)t * Cs, w->token_embedding + (size_t)tokens[t] * Cs, Cs * sizeof(float));
        m->pos[t] = pos0 + t;
    }
    for (int l = 0; l < c->n_layers; l++) {
        size_t lq = (size_t)l * Cs * Cs, lk = (size_t)l * (size_t)kvd * Cs, lh = (size_t)l * Hs * Cs;
        float *kc = m->key_cache + (size_t)l * L_stride + (size_t)pos0 * kvd;
        float *vc = m->value_cache + (size_t)l * L_stride + (size_t)pos0 * kvd;

        rmsnorm_forward(m->xb, NULL, m->x, w->rms_att + (size_t)l * Cs, T, C, c->norm_eps);
        linear(m, m->q, m->xb, w->wq + lq, T, C, C, l, 0);
        linear(m, kc, m->xb, w->wk + lk, T, C, kvd, l, 1);
        linear(m, vc, m->xb, w->wv + lk, T, C, kvd, l, 2);
        /* Rotate q and the new keys at their absolute positions; cached keys
         * stay rotated, so later tokens never touch them again. */
        rope_view qv = { m->q, T, NH, C, HS };
        rope_view kv = { kc, T, c->n_kv_heads, kvd, HS };
        if (rope_apply_qk(&m->rope, ROPE_FORWARD, &qv, &kv, m->pos, 0) != ROPE_OK) return LLAMA_EROPE;
        attention(m, l, T, pos0);
        linear(m, m->xb2, m->xb, w->wo + lq, T, C, C, l, 3);
        for (size_t i = 0; i < (size_t)T * Cs; i++) m->x[i] += m->xb2[i];

        rmsnorm_forward(m->xb, NULL, m->x, w->rms_ffn + (size_t)l * Cs, T, C, c->norm_eps);
        linear(m, m->hb, m->xb, w->w1 + lh, T, C, H, l, 4);
        linear(m, m->hb2, m->xb, w->w3 + lh, T, C, H, l, 5);
        swiglu_forward(m->hb, m->hb, m->hb2, (size_t)T * Hs);
        linear(m, m->xb2, m->hb, w->w2 + lh, T, H, C, l, 6);
        for (size_t i = 0; i < (size_t)T * Cs; i++) m->x[i] += m->xb2[i];
    }
    if (all_logits) {
        rmsnorm_forward(m->xb, NULL, m->x, w->rms_final, T, C, c->norm_eps);
        matmul_forward_ctx(&m->mm, m->all_logits, m->xb, w->wcls, NULL, T, C, V);
        memcpy(m->logits, m->all_logits + (size_t)(T - 1) * (size_t)V, (size_t)V * sizeof(float));
    } else {
        const float *xl = m->x + (size_t)(T - 1) * Cs;
        rmsnorm_forward(m->xb, NULL, xl, w->rms_final, 1, C, c->norm_eps);
        matvec_forward(m->logits, m->xb, w->wcls, C, V);
    }
    return LLAMA_OK;
}
