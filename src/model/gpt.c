/*
 * gpt.c — the GPT-2 model with a switchable position encoding: parameter
 * layout and init, forward and backward over the src/nn layers, and the RoPE
 * (librope), ALiBi and sinusoidal hooks. The layer sequence follows GPT-2
 * (Radford et al. 2019) as laid out in llm.c's train_gpt2.c: pre-LayerNorm
 * blocks, tanh-GELU MLP, final LayerNorm, LM head tied to wte.
 */
#include "model/gpt.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/attention.h"
#include "nn/crossentropy.h"
#include "nn/encoder.h"
#include "nn/gelu.h"
#include "nn/layernorm.h"
#include "nn/matmul.h"
#include "nn/posenc.h"
#include "util/mem.h"
#include "util/rng.h"

#define GPT_MAX_ALIBI_HEADS 64
/* RoPE table rows precomputed at init, as a multiple of maxT: the
 * extrapolation experiment evaluates up to 8x the training context. */
#define GPT_ROPE_TABLE_MULT 8

/* ---------------------------------------------------------------- names */

static const char *const pe_names[PE_COUNT] = { "none", "learned", "sinusoidal", "rope", "alibi" };

const char *pe_type_name(pe_type pe) {
    if ((int)pe < 0 || pe >= PE_COUNT) return "unknown";
    return pe_names[pe];
}

int pe_type_parse(const char *s, pe_type *out) {
    if (s == NULL || out == NULL) return -1;
    for (int i = 0; i < PE_COUNT; i++) {
        if (strcmp(s, pe_names[i]) == 0) {
            *out = (pe_type)i;
            return 0;
        }
    }
    return -1;
}

const char *gpt_status_str(gpt_status s) {
    switch (s) {
    case GPT_OK: return "ok";
    case GPT_ENULL: return "a required pointer is NULL";
    case GPT_ECONFIG: return "invalid model config";
    case GPT_ENOMEM: return "out of memory";
    case GPT_EROPE: return "librope error";
    case GPT_ESHAPE: return "bad batch shape (B, T <= 0, T > context with learned positions, or wrong size)";
    case GPT_ETOKEN: return "token outside the vocabulary";
    case GPT_ESTATE: return "backward needs a forward with targets first";
    default: return "unknown status";
    }
}

static const char *const tensor_names[GPT_NUM_TENSORS] = {
    "wte", "wpe", "ln1w", "ln1b", "qkvw", "qkvb", "attprojw", "attprojb",
    "ln2w", "ln2b", "fcw", "fcb", "fcprojw", "fcprojb", "lnfw", "lnfb"
};

const char *gpt_tensor_name(int i) {
    if (i < 0 || i >= GPT_NUM_TENSORS) return NULL;
    return tensor_names[i];
}

/* ---------------------------------------------------------------- config */

gpt_config gpt_config_default(void) {
    gpt_config c;
    c.V = 256;
    c.L = 4;
    c.NH = 4;
    c.C = 128;
    c.maxT = 64;
    c.pe = PE_LEARNED;
    c.rope_layout = ROPE_LAYOUT_INTERLEAVED;
    c.rope_base = 10000.0;
    c.rope_fraction = 1.0;
    return c;
}

int gpt_rotary_dim(const gpt_config *cfg) {
    if (cfg == NULL || cfg->pe != PE_ROPE || cfg->NH <= 0 || cfg->C <= 0) return 0;
    int HS = cfg->C / cfg->NH;
    if (!(cfg->rope_fraction > 0.0 && cfg->rope_fraction <= 1.0)) return 0;
    /* A small tolerance so fraction 0.25 of HS 32 gives 8, not 7.999... */
    int d = (int)floor((double)HS * cfg->rope_fraction + 1e-9);
    return d - (d % 2);
}

const char *gpt_config_validate(const gpt_config *cfg) {
    if (cfg == NULL) return "config is NULL";
    if (cfg->V <= 0) return "vocab size V must be positive";
    if (cfg->L <= 0) return "layer count L must be positive";
    if (cfg->NH <= 0) return "head count NH must be positive";
    if (cfg->C <= 0) return "channels C must be positive";
    if (cfg->maxT <= 0) return "context maxT must be positive";
    if (cfg->C % cfg->NH != 0) return "channels C must be a multiple of the head count NH";
    /* Keep every tensor and activation index well inside int64 and the
     * per-call int sizes the layers take. */
    if (cfg->V > (1 << 24) || cfg->C > (1 << 16) || cfg->L > 4096 || cfg->maxT > (1 << 20))
        return "model dimensions too large";
    if ((int)cfg->pe < 0 || cfg->pe >= PE_COUNT) return "unknown position encoding";
    if (cfg->pe == PE_ALIBI && cfg->NH > GPT_MAX_ALIBI_HEADS) return "alibi supports at most 64 heads";
    if (cfg->pe == PE_ROPE) {
        if (cfg->rope_layout != ROPE_LAYOUT_INTERLEAVED && cfg->rope_layout != ROPE_LAYOUT_HALF)
            return "unknown rope layout (interleaved or half)";
        if (!(cfg->rope_base > 0.0) || !isfinite(cfg->rope_base)) return "rope base must be positive and finite";
        if ((cfg->C / cfg->NH) % 2 != 0) return "rope needs an even head size C / NH";
        if (!(cfg->rope_fraction > 0.0 && cfg->rope_fraction <= 1.0)) return "rope fraction must be in (0, 1]";
        if (gpt_rotary_dim(cfg) < 2) return "rope fraction * head size must give a rotary dim of at least 2";
    }
    return NULL;
}

size_t gpt_tensor_sizes(const gpt_config *cfg, size_t s[GPT_NUM_TENSORS]) {
    size_t V = (size_t)cfg->V, L = (size_t)cfg->L, C = (size_t)cfg->C, maxT = (size_t)cfg->maxT;
    s[0] = V * C;
    s[1] = cfg->pe == PE_LEARNED ? maxT * C : 0;
    s[2] = L * C;
    s[3] = L * C;
    s[4] = L * 3 * C * C;
    s[5] = L * 3 * C;
    s[6] = L * C * C;
    s[7] = L * C;
    s[8] = L * C;
    s[9] = L * C;
    s[10] = L * 4 * C * C;
    s[11] = L * 4 * C;
    s[12] = L * C * 4 * C;
    s[13] = L * C;
    s[14] = C;
    s[15] = C;
    size_t n = 0;
    for (int i = 0; i < GPT_NUM_TENSORS; i++) n += s[i];
    return n;
}

/* Points the 16 named views of p into mem in the gpt_params order. */
static void point_params(gpt_params *p, float *mem, const size_t s[GPT_NUM_TENSORS]) {
    float **ptrs[GPT_NUM_TENSORS] = {
        &p->wte, &p->wpe, &p->ln1w, &p->ln1b, &p->qkvw, &p->qkvb, &p->attprojw, &p->attprojb,
        &p->ln2w, &p->ln2b, &p->fcw, &p->fcb, &p->fcprojw, &p->fcprojb, &p->lnfw, &p->lnfb
    };
    for (int i = 0; i < GPT_NUM_TENSORS; i++) {
        *ptrs[i] = mem;
        mem += s[i];
    }
}

/* ---------------------------------------------------------------- init */

static void fill(float *x, size_t n, float v) {
    for (size_t i = 0; i < n; i++) x[i] = v;
}

static gpt_status build_rope_table(rope_table *t, const gpt *m, const rope_scaling *s, int64_t seq_len,
                                   int64_t max_positions) {
    rope_config rc = rope_config_default();
    rc.head_dim = m->HS;
    rc.rotary_dim = m->rotary_dim;
    rc.base = m->cfg.rope_base;
    rc.layout = m->cfg.rope_layout;
    if (s != NULL) rc.scaling = *s;
    rc.max_positions = max_positions;
    rc.strict_range = 0;   /* past the table librope computes exact angles on the fly */
    rope_status rs = rope_table_init(t, &rc, seq_len);
    return rs == ROPE_OK ? GPT_OK : GPT_EROPE;
}

gpt_status gpt_init(gpt *m, const gpt_config *cfg, uint64_t seed) {
    if (m == NULL) return GPT_ENULL;
    memset(m, 0, sizeof *m);
    if (cfg == NULL) return GPT_ENULL;
    if (gpt_config_validate(cfg) != NULL) return GPT_ECONFIG;
    m->cfg = *cfg;
    m->HS = cfg->C / cfg->NH;
    m->rotary_dim = gpt_rotary_dim(cfg);
    size_t n = gpt_tensor_sizes(cfg, m->tensor_sizes);
    m->num_params = n;
    /* Zeroed: grads and AdamW moments start at zero (mem.h: huge pages,
     * touched now rather than faulted in by the first step). */
    m->params_memory = mem_alloc_zero(n * sizeof(float));
    m->grads_memory = mem_alloc_zero(n * sizeof(float));
    m->m_memory = mem_alloc_zero(n * sizeof(float));
    m->v_memory = mem_alloc_zero(n * sizeof(float));
    m->decay_mask = calloc(n, 1);
    if (!m->params_memory || !m->grads_memory || !m->m_memory || !m->v_memory || !m->decay_mask) {
        gpt_free(m);
        return GPT_ENOMEM;
    }
    point_params(&m->params, m->params_memory, m->tensor_sizes);
    point_params(&m->grads, m->grads_memory, m->tensor_sizes);
    matmul_ctx_init(&m->mm, MATMUL_OWN);

    /* GPT-2 init (Radford et al. 2019 §2.3; nanoGPT model.py): N(0, 0.02),
     * residual output projections scaled by 1/sqrt(2L) (two residual adds per
     * block). Shared tensors from stream 0 in the flat order, wpe from
     * stream 1, so every pe starts from the same shared weights. */
    const size_t *s = m->tensor_sizes;
    const float std = 0.02f;
    const float std_proj = (float)(0.02 / sqrt(2.0 * cfg->L));
    rng_state r;
    rng_init(&r, seed, 0);
    gpt_params *p = &m->params;
    rng_fill_normal(&r, p->wte, s[0], 0.0f, std);
    fill(p->ln1w, s[2], 1.0f);
    fill(p->ln1b, s[3], 0.0f);
    rng_fill_normal(&r, p->qkvw, s[4], 0.0f, std);
    fill(p->qkvb, s[5], 0.0f);
    rng_fill_normal(&r, p->attprojw, s[6], 0.0f, std_proj);
    fill(p->attprojb, s[7], 0.0f);
    fill(p->ln2w, s[8], 1.0f);
    fill(p->ln2b, s[9], 0.0f);
    rng_fill_normal(&r, p->fcw, s[10], 0.0f, std);
    fill(p->fcb, s[11], 0.0f);
    rng_fill_normal(&r, p->fcprojw, s[12], 0.0f, std_proj);
    fill(p->fcprojb, s[13], 0.0f);
    fill(p->lnfw, s[14], 1.0f);
    fill(p->lnfb, s[15], 0.0f);
    if (s[1] > 0) {
        rng_state rw;
        rng_init(&rw, seed, 1);
        rng_fill_normal(&rw, p->wpe, s[1], 0.0f, std);
    }

    /* AdamW weight decay on 2-D weights only (nanoGPT configure_optimizers). */
    {
        const float *decayed[] = { p->wte, p->wpe, p->qkvw, p->attprojw, p->fcw, p->fcprojw };
        const size_t dsz[] = { s[0], s[1], s[4], s[6], s[10], s[12] };
        for (size_t k = 0; k < sizeof dsz / sizeof dsz[0]; k++)
            memset(m->decay_mask + (size_t)(decayed[k] - m->params_memory), 1, dsz[k]);
    }

    if (cfg->pe == PE_ROPE) {
        int64_t maxpos = (int64_t)GPT_ROPE_TABLE_MULT * cfg->maxT;
        if (build_rope_table(&m->rope, m, NULL, cfg->maxT, maxpos) != GPT_OK) {
            gpt_free(m);
            return GPT_EROPE;
        }
    } else if (cfg->pe == PE_ALIBI) {
        alibi_slopes(m->alibi, cfg->NH);
    } else if (cfg->pe == PE_SINUSOIDAL) {
        int T = GPT_ROPE_TABLE_MULT * cfg->maxT;
        m->sinusoid = malloc((size_t)T * (size_t)cfg->C * sizeof(float));
        if (m->sinusoid == NULL) {
            gpt_free(m);
            return GPT_ENOMEM;
        }
        sinusoidal_table(m->sinusoid, T, cfg->C);
        m->sinusoid_T = T;
    }
    m->status = GPT_OK;
    return GPT_OK;
}

void gpt_free(gpt *m) {
    if (m == NULL) return;
    free(m->params_memory);
    free(m->grads_memory);
    free(m->m_memory);
    free(m->v_memory);
    free(m->decay_mask);
    rope_table_free(&m->rope);
    matmul_ctx_free(&m->mm);
    free(m->sinusoid);
    free(m->acts_memory);
    free(m->tok_memory);
    free(m->positions);
    free(m->gacts_memory);
    memset(m, 0, sizeof *m);
}

size_t gpt_num_params(const gpt *m) { return m ? m->num_params : 0; }

gpt_status gpt_set_params(gpt *m, const float *src, size_t n) {
    if (m == NULL || src == NULL) return GPT_ENULL;
    if (n != m->num_params) return GPT_ESHAPE;
    memcpy(m->params_memory, src, n * sizeof(float));
    return GPT_OK;
}

gpt_status gpt_set_rope_scaling(gpt *m, const rope_scaling *s, int64_t eval_ctx) {
    if (m == NULL) return GPT_ENULL;
    if (m->cfg.pe != PE_ROPE) return GPT_OK;
    int64_t maxpos = (int64_t)GPT_ROPE_TABLE_MULT * m->cfg.maxT;
    if (eval_ctx > maxpos) maxpos = eval_ctx;
    int64_t seq_len = eval_ctx > 0 ? eval_ctx : m->cfg.maxT;
    rope_table t;
    gpt_status st = build_rope_table(&t, m, s, seq_len, maxpos);
    if (st != GPT_OK) return st;
    rope_table_free(&m->rope);
    m->rope = t;
    return GPT_OK;
}

void gpt_zero_grad(gpt *m) {
    if (m == NULL || m->grads_memory == NULL) return;
    memset(m->grads_memory, 0, m->num_params * sizeof(float));
}

/* ---------------------------------------------------------------- activations */

#define N_ACTS 21

/* Sizes of the gpt_acts fields, in declaration order, for (B, T). */
static size_t act_sizes(const gpt_config *c, int B, int T, size_t s[N_ACTS]) {
    size_t BT = (size_t)B * (size_t)T, C = (size_t)c->C, L = (size_t)c->L;
    size_t V = (size_t)c->V, NH = (size_t)c->NH;
    s[0] = BT * C;                          /* encoded */
    s[1] = L * BT * C;                      /* ln1 */
    s[2] = L * BT;                          /* ln1_mean */
    s[3] = L * BT;                          /* ln1_rstd */
    s[4] = L * BT * 3 * C;                  /* qkv */
    s[5] = L * BT * C;                      /* atty */
    s[6] = L * (size_t)B * NH * (size_t)T * (size_t)T;  /* att */
    s[7] = L * BT * C;                      /* residual2 */
    s[8] = L * BT * C;                      /* ln2 */
    s[9] = L * BT;                          /* ln2_mean */
    s[10] = L * BT;                         /* ln2_rstd */
    s[11] = L * BT * 4 * C;                 /* fch */
    s[12] = L * BT * 4 * C;                 /* fch_gelu */
    s[13] = L * BT * C;                     /* residual3 */
    s[14] = BT * C;                         /* lnf */
    s[15] = BT;                             /* lnf_mean */
    s[16] = BT;                             /* lnf_rstd */
    s[17] = BT * V;                         /* logits */
    s[18] = BT * V;                         /* probs */
    s[19] = BT;                             /* losses */
    s[20] = BT * C;                         /* scratch */
    size_t n = 0;
    for (int i = 0; i < N_ACTS; i++) n += s[i];
    return n;
}

static void point_acts(gpt_acts *a, float *mem, const size_t s[N_ACTS]) {
    float **ptrs[N_ACTS] = {
        &a->encoded, &a->ln1, &a->ln1_mean, &a->ln1_rstd, &a->qkv, &a->atty, &a->att,
        &a->residual2, &a->ln2, &a->ln2_mean, &a->ln2_rstd, &a->fch, &a->fch_gelu,
        &a->residual3, &a->lnf, &a->lnf_mean, &a->lnf_rstd, &a->logits, &a->probs,
        &a->losses, &a->scratch
    };
    for (int i = 0; i < N_ACTS; i++) {
        *ptrs[i] = mem;
        mem += s[i];
    }
}

#define N_GACTS 9

static size_t gact_sizes(const gpt_config *c, int B, int T, size_t s[N_GACTS]) {
    size_t BT = (size_t)B * (size_t)T, C = (size_t)c->C, V = (size_t)c->V;
    s[0] = BT * C;      /* dresidual */
    s[1] = BT * C;      /* dres2 */
    s[2] = BT * C;      /* dln */
    s[3] = BT * 3 * C;  /* dqkv */
    s[4] = BT * C;      /* datty */
    s[5] = BT * 4 * C;  /* dfch */
    s[6] = BT * C;      /* dlnf */
    s[7] = BT * V;      /* dlogits */
    s[8] = BT;          /* dlosses */
    size_t n = 0;
    for (int i = 0; i < N_GACTS; i++) n += s[i];
    return n;
}

static void point_gacts(gpt_grad_acts *g, float *mem, const size_t s[N_GACTS]) {
    float **ptrs[N_GACTS] = {
        &g->dresidual, &g->dres2, &g->dln, &g->dqkv, &g->datty, &g->dfch,
        &g->dlnf, &g->dlogits, &g->dlosses
    };
    for (int i = 0; i < N_GACTS; i++) {
        *ptrs[i] = mem;
        mem += s[i];
    }
}

/* Makes acts, token copies and positions fit (B, T); grows only. */
static gpt_status ensure_acts(gpt *m, int B, int T) {
    size_t s[N_ACTS];
    size_t need = act_sizes(&m->cfg, B, T, s);
    if (need > m->acts_capacity) {
        float *mem = mem_alloc_zero(need * sizeof(float));
        if (mem == NULL) return GPT_ENOMEM;
        free(m->acts_memory);
        m->acts_memory = mem;
        m->acts_capacity = need;
    }
    point_acts(&m->acts, m->acts_memory, s);
    size_t BT = (size_t)B * (size_t)T;
    if (BT > m->tok_capacity) {
        int *tok = malloc(2 * BT * sizeof(int));
        int32_t *pos = malloc(BT * sizeof(int32_t));
        if (tok == NULL || pos == NULL) {
            free(tok);
            free(pos);
            return GPT_ENOMEM;
        }
        free(m->tok_memory);
        free(m->positions);
        m->tok_memory = tok;
        m->positions = pos;
        m->tok_capacity = BT;
    }
    if (m->cfg.pe == PE_SINUSOIDAL && T > m->sinusoid_T) {
        float *tab = malloc((size_t)T * (size_t)m->cfg.C * sizeof(float));
        if (tab == NULL) return GPT_ENOMEM;
        sinusoidal_table(tab, T, m->cfg.C);
        free(m->sinusoid);
        m->sinusoid = tab;
        m->sinusoid_T = T;
    }
    return GPT_OK;
}

static gpt_status ensure_gacts(gpt *m, int B, int T) {
    size_t s[N_GACTS];
    size_t need = gact_sizes(&m->cfg, B, T, s);
    if (need > m->gacts_capacity) {
        float *mem = mem_alloc_zero(need * sizeof(float));
        if (mem == NULL) return GPT_ENOMEM;
        free(m->gacts_memory);
        m->gacts_memory = mem;
        m->gacts_capacity = need;
    }
    point_gacts(&m->gacts, m->gacts_memory, s);
    return GPT_OK;
}

/* ---------------------------------------------------------------- forward */

/* Views of q and k (or dq and dk) of every token of one layer's (B,T,3C)
 * buffer, for librope: token stride 3C, head stride HS. */
static gpt_status rope_qk(gpt *m, float *qkv, size_t BT, rope_direction dir) {
    const int64_t C = m->cfg.C;
    rope_view q = { qkv, (int64_t)BT, m->cfg.NH, 3 * C, m->HS };
    rope_view k = { qkv + C, (int64_t)BT, m->cfg.NH, 3 * C, m->HS };
    rope_status rs = rope_apply_qk(&m->rope, dir, &q, &k, m->positions, 0);
    return rs == ROPE_OK ? GPT_OK : GPT_EROPE;
}

static float fail(gpt *m, gpt_status st) {
    m->status = st;
    m->has_targets = 0;
    return NAN;
}

float gpt_forward(gpt *m, const int *inp, const int *targets, int B, int T) {
    if (m == NULL) return NAN;
    if (inp == NULL) return fail(m, GPT_ENULL);
    const gpt_config *c = &m->cfg;
    if (B <= 0 || T <= 0 || (c->pe == PE_LEARNED && T > c->maxT)) return fail(m, GPT_ESHAPE);
    const size_t BT = (size_t)B * (size_t)T;
    if (BT > (size_t)1 << 30) return fail(m, GPT_ESHAPE);   /* layers take N = B*T as int */
    for (size_t i = 0; i < BT; i++) {
        if (inp[i] < 0 || inp[i] >= c->V) return fail(m, GPT_ETOKEN);
        if (targets && (targets[i] < 0 || targets[i] >= c->V)) return fail(m, GPT_ETOKEN);
    }
    gpt_status st = ensure_acts(m, B, T);
    if (st != GPT_OK) return fail(m, st);
    m->B = B;
    m->T = T;
    int *tok_in = m->tok_memory, *tok_tgt = m->tok_memory + BT;
    memcpy(tok_in, inp, BT * sizeof(int));
    if (targets) memcpy(tok_tgt, targets, BT * sizeof(int));
    else memset(tok_tgt, 0, BT * sizeof(int));   /* dummy targets: probs still computed */
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) m->positions[(size_t)b * T + t] = t;

    const int C = c->C, L = c->L, NH = c->NH, V = c->V, N = (int)BT;
    const size_t BTC = BT * (size_t)C;
    const size_t att_l = (size_t)B * NH * (size_t)T * (size_t)T;
    gpt_params *p = &m->params;
    gpt_acts *a = &m->acts;
    const float *alibi = c->pe == PE_ALIBI ? m->alibi : NULL;

    /* Sinusoidal: Vaswani et al. 2017 §3.4 multiply the embedding by
     * sqrt(d_model) before adding the fixed table. */
    float wte_scale = c->pe == PE_SINUSOIDAL ? sqrtf((float)C) : 1.0f;
    encoder_forward(a->encoded, tok_in, p->wte, c->pe == PE_LEARNED ? p->wpe : NULL, wte_scale, B, T, C);
    if (c->pe == PE_SINUSOIDAL) add_rows_forward(a->encoded, m->sinusoid, B, T, C);

    for (int l = 0; l < L; l++) {
        const size_t ls = (size_t)l;
        const float *resid = l == 0 ? a->encoded : a->residual3 + (ls - 1) * BTC;
        float *ln1 = a->ln1 + ls * BTC, *ln1_mean = a->ln1_mean + ls * BT, *ln1_rstd = a->ln1_rstd + ls * BT;
        float *qkv = a->qkv + ls * BTC * 3, *atty = a->atty + ls * BTC, *att = a->att + ls * att_l;
        float *res2 = a->residual2 + ls * BTC;
        float *ln2 = a->ln2 + ls * BTC, *ln2_mean = a->ln2_mean + ls * BT, *ln2_rstd = a->ln2_rstd + ls * BT;
        float *fch = a->fch + ls * BTC * 4, *fch_gelu = a->fch_gelu + ls * BTC * 4;
        float *res3 = a->residual3 + ls * BTC;
        const size_t Cs = (size_t)C;

        /* Layers after the first got ln1 from the previous layer's last
         * residual add (fused below). */
        if (l == 0) layernorm_forward(ln1, ln1_mean, ln1_rstd, resid, p->ln1w, p->ln1b, N, C);
        matmul_forward_ctx(&m->mm, qkv, ln1, p->qkvw + ls * 3 * Cs * Cs, p->qkvb + ls * 3 * Cs, N, C, 3 * C);
        if (c->pe == PE_ROPE && (st = rope_qk(m, qkv, BT, ROPE_FORWARD)) != GPT_OK) return fail(m, st);
        attention_forward(atty, att, qkv, alibi, B, T, C, NH);
        matmul_forward_ctx(&m->mm, a->scratch, atty, p->attprojw + ls * Cs * Cs, p->attprojb + ls * Cs, N, C, C);
        layernorm_residual_forward(res2, ln2, ln2_mean, ln2_rstd, resid, a->scratch, p->ln2w + ls * Cs,
                                   p->ln2b + ls * Cs, N, C);
        matmul_forward_ctx(&m->mm, fch, ln2, p->fcw + ls * 4 * Cs * Cs, p->fcb + ls * 4 * Cs, N, C, 4 * C);
        /* fch: the pre-activation, then (overwritten) GELU's derivative
         * there, all the backward needs of it */
        gelu_forward_deriv(fch_gelu, fch, fch, BTC * 4);
        matmul_forward_ctx(&m->mm, a->scratch, fch_gelu, p->fcprojw + ls * 4 * Cs * Cs, p->fcprojb + ls * Cs, N, 4 * C, C);
        /* res3 = res2 + fcproj, normalised at once by the next LayerNorm
         * (the next layer's ln1, or the final one). */
        if (l + 1 < L)
            layernorm_residual_forward(res3, ln1 + BTC, ln1_mean + BT, ln1_rstd + BT, res2, a->scratch,
                                       p->ln1w + (ls + 1) * Cs, p->ln1b + (ls + 1) * Cs, N, C);
        else
            layernorm_residual_forward(res3, a->lnf, a->lnf_mean, a->lnf_rstd, res2, a->scratch, p->lnfw,
                                       p->lnfb, N, C);
    }
    matmul_forward_ctx(&m->mm, a->logits, a->lnf, p->wte, NULL, N, C, V);   /* tied LM head */
    crossentropy_forward(a->losses, a->probs, a->logits, tok_tgt, N, V);

    m->status = GPT_OK;
    if (targets == NULL) {
        m->has_targets = 0;
        return 0.0f;
    }
    /* Mean in double, serial: fixed order. */
    double sum = 0.0;
    for (size_t i = 0; i < BT; i++) sum += a->losses[i];
    m->has_targets = 1;
    m->mean_loss = (float)(sum / (double)BT);
    return m->mean_loss;
}

float gpt_eval_loss(gpt *m, const int *inp, const int *tgt, int B, int T) {
    if (tgt == NULL) {
        if (m) m->status = GPT_ENULL;
        return NAN;
    }
    return gpt_forward(m, inp, tgt, B, T);
}

void gpt_position_losses(const gpt *m, double *out) {
    if (m == NULL || out == NULL || !m->has_targets) return;
    for (int t = 0; t < m->T; t++) {
        double s = 0.0;
        for (int b = 0; b < m->B; b++) s += m->acts.losses[(size_t)b * m->T + t];
        out[t] = s / m->B;
    }
}

/* ---------------------------------------------------------------- backward */

/* A progress point for the on_layer_grads hook (gpt.h). */
static void progress(gpt *m) {
    if (m->on_layer_grads) m->on_layer_grads(m->on_layer_ctx, GPT_HOOK_PROGRESS);
}

gpt_status gpt_backward(gpt *m) { return gpt_backward_scaled(m, 1.0f); }

gpt_status gpt_backward_scaled(gpt *m, float scale) { return gpt_backward_ex(m, scale, 0); }

gpt_status gpt_backward_ex(gpt *m, float scale, int overwrite) {
    if (m == NULL) return GPT_ENULL;
    if (!m->has_targets) return m->status = GPT_ESTATE;
    const gpt_config *c = &m->cfg;
    const int B = m->B, T = m->T, C = c->C, L = c->L, NH = c->NH, V = c->V;
    const size_t BT = (size_t)B * (size_t)T, BTC = BT * (size_t)C, Cs = (size_t)C;
    const int N = (int)BT;
    const size_t att_l = (size_t)B * NH * (size_t)T * (size_t)T;
    gpt_status st = ensure_gacts(m, B, T);
    if (st != GPT_OK) return m->status = st;
    gpt_params *p = &m->params, *g = &m->grads;
    gpt_acts *a = &m->acts;
    gpt_grad_acts *d = &m->gacts;
    const int *tok_in = m->tok_memory, *tok_tgt = m->tok_memory + BT;
    const float *alibi = c->pe == PE_ALIBI ? m->alibi : NULL;

    /* Activation gradients: the cross-entropy, matmuls and layernorms
     * and GELU overwrite their dinp (SET flags); attention, which only
     * accumulates, gets a zeroed buffer. Parameter gradients: overwritten by
     * the first write to each (the LM head's for wte, which the embedding
     * backward then adds to) when overwrite is set, else accumulated. */
    const int mm_set = MATMUL_SET_DINP | (overwrite ? MATMUL_SET_DPARAMS : 0);
    const int ln_set = overwrite ? LN_SET_DPARAMS : 0;
    if (overwrite && g->wpe) memset(g->wpe, 0, m->tensor_sizes[1] * sizeof(float));   /* only added to */
    const float dl = scale / (float)BT;   /* d(mean loss)/d(loss_i), times the accumulation scale */
    for (size_t i = 0; i < BT; i++) d->dlosses[i] = dl;
    crossentropy_backward_set(d->dlogits, a->probs, tok_tgt, d->dlosses, N, V);
    matmul_backward_flags_ctx(&m->mm, mm_set, d->dlnf, g->wte, NULL, d->dlogits, a->lnf, p->wte, N, C, V);
    const float *last = a->residual3 + (size_t)(L - 1) * BTC;
    layernorm_backward_flags(ln_set | LN_SET_DINP, d->dresidual, g->lnfw, g->lnfb, d->dlnf, last, p->lnfw,
                             a->lnf_mean, a->lnf_rstd, N, C);

    for (int l = L - 1; l >= 0; l--) {
        const size_t ls = (size_t)l;
        const float *resid = l == 0 ? a->encoded : a->residual3 + (ls - 1) * BTC;
        const float *ln1 = a->ln1 + ls * BTC, *ln1_mean = a->ln1_mean + ls * BT, *ln1_rstd = a->ln1_rstd + ls * BT;
        const float *qkv = a->qkv + ls * BTC * 3, *atty = a->atty + ls * BTC, *att = a->att + ls * att_l;
        const float *res2 = a->residual2 + ls * BTC;
        const float *ln2 = a->ln2 + ls * BTC, *ln2_mean = a->ln2_mean + ls * BT, *ln2_rstd = a->ln2_rstd + ls * BT;
        const float *fch = a->fch + ls * BTC * 4, *fch_gelu = a->fch_gelu + ls * BTC * 4;

        /* res3 = res2 + fcproj: both get dresidual. */
        memcpy(d->dres2, d->dresidual, BTC * sizeof(float));
        /* through GELU too: fch holds gelu'(x) (saved by the forward), and
         * the product's tiles are multiplied by it while still in cache
         * (the same bits as gelu_backward_saved after the product) */
        matmul_backward_mul_ctx(&m->mm, mm_set, d->dfch, fch, g->fcprojw + ls * 4 * Cs * Cs, g->fcprojb + ls * Cs,
                                d->dresidual, fch_gelu, p->fcprojw + ls * 4 * Cs * Cs, N, 4 * C, C);
        progress(m);
        matmul_backward_flags_ctx(&m->mm, mm_set, d->dln, g->fcw + ls * 4 * Cs * Cs, g->fcb + ls * 4 * Cs,
                                  d->dfch, ln2, p->fcw + ls * 4 * Cs * Cs, N, C, 4 * C);
        progress(m);
        layernorm_backward_flags(ln_set, d->dres2, g->ln2w + ls * Cs, g->ln2b + ls * Cs, d->dln, res2,
                                 p->ln2w + ls * Cs, ln2_mean, ln2_rstd, N, C);
        /* res2 = resid + attproj: both get dres2. */
        matmul_backward_flags_ctx(&m->mm, mm_set, d->datty, g->attprojw + ls * Cs * Cs, g->attprojb + ls * Cs,
                                  d->dres2, atty, p->attprojw + ls * Cs * Cs, N, C, C);
        progress(m);
        memset(d->dqkv, 0, BTC * 3 * sizeof(float));
        attention_backward(d->dqkv, d->datty, qkv, att, atty, alibi, B, T, C, NH);
        progress(m);
        /* q, k were rotated after the projection: the adjoint rotation takes
         * dq, dk back to the projection's outputs. */
        if (c->pe == PE_ROPE && (st = rope_qk(m, d->dqkv, BT, ROPE_BACKWARD)) != GPT_OK) return m->status = st;
        matmul_backward_flags_ctx(&m->mm, mm_set, d->dln, g->qkvw + ls * 3 * Cs * Cs, g->qkvb + ls * 3 * Cs,
                                  d->dqkv, ln1, p->qkvw + ls * 3 * Cs * Cs, N, C, 3 * C);
        memcpy(d->dresidual, d->dres2, BTC * sizeof(float));
        layernorm_backward_flags(ln_set, d->dresidual, g->ln1w + ls * Cs, g->ln1b + ls * Cs, d->dln, resid,
                                 p->ln1w + ls * Cs, ln1_mean, ln1_rstd, N, C);
        if (m->on_layer_grads) m->on_layer_grads(m->on_layer_ctx, l);   /* layer l's grads are final */
    }
    float wte_scale = c->pe == PE_SINUSOIDAL ? sqrtf((float)C) : 1.0f;
    encoder_backward(g->wte, c->pe == PE_LEARNED ? g->wpe : NULL, d->dresidual, tok_in, wte_scale, B, T, C);
    if (m->on_layer_grads) m->on_layer_grads(m->on_layer_ctx, -1);   /* all grads final */
    m->status = GPT_OK;
    return GPT_OK;
}

double gpt_memory_bytes(const gpt_config *cfg, int B, int T, double *state, double *acts) {
    size_t sizes[GPT_NUM_TENSORS];
    const double P = (double)gpt_tensor_sizes(cfg, sizes);
    const double BT = (double)B * (double)T, C = cfg->C, L = cfg->L, V = cfg->V, NH = cfg->NH;
    /* Closed forms of act_sizes and gact_sizes (floats), summed in double. */
    const double act = BT * (3.0 * C + 3.0 + 2.0 * V) + L * (16.0 * BT * C + 4.0 * BT + (double)B * NH * (double)T * T);
    const double gact = BT * (12.0 * C + V + 1.0);
    const double st = P * (4.0 * sizeof(float) + 1.0);
    const double ac = (act + gact) * sizeof(float) + BT * (2.0 * sizeof(int) + sizeof(int32_t));
    if (state) *state = st;
    if (acts) *acts = ac;
    return st + ac;
}
