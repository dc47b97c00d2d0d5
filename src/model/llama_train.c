/*
 * llama_train.c — Llama forward with saved activations, cross-entropy, and
 * the backward pass (see llama_train.h). The block is
 *   mid  = x + Wo · attn(RoPE(Wq n1), RoPE(Wk n1), Wv n1),  n1 = RMSNorm(x) g1
 *   x'   = mid + W2 · (silu(W1 n2) ⊙ W3 n2),                n2 = RMSNorm(mid) g2
 * and the backward runs it in reverse with the layer backwards of src/nn
 * (matmul, rmsnorm, swiglu, crossentropy), librope's ROPE_BACKWARD for dq
 * and dk, and the grouped-query attention backward below:
 *   dA_tj = dy_t · v_j,  dS_tj = A_tj (dA_tj - sum_i A_ti dA_ti),
 *   dq_t += s sum_j dS_tj k_j,  dk_j += s dS_tj q_t,  dv_j += A_tj dy_t
 * (s = 1/sqrt(HS); the softmax Jacobian as in llm.c's attention backward).
 */
#include "model/llama_train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/crossentropy.h"
#include "nn/rmsnorm.h"
#include "nn/swiglu.h"
#include "util/rng.h"
#include "util/threads.h"

/* The gradient buffer position of a parameter view. */
static float *G(const llama_trainer *m, const float *p) { return m->grads + (p - m->params); }

int llama_train_init(llama_trainer *m, const llama_config *cfg, uint64_t seed) {
    if (!m) return LLAMA_ENULL;
    memset(m, 0, sizeof *m);
    if (!cfg) return LLAMA_ENULL;
    int rc = llama_config_validate(cfg, NULL, 0);
    if (rc) return rc;
    m->cfg = *cfg;
    m->n_params = llama_weights_floats(cfg);
    m->params = malloc(m->n_params * sizeof(float));
    m->grads = calloc(m->n_params, sizeof(float));
    if (!m->params || !m->grads) {
        llama_train_free(m);
        return LLAMA_ENOMEM;
    }
    llama_weights_point(&m->w, cfg, m->params, 0);
    rng_state r;
    rng_init(&r, seed, 0);
    size_t C = (size_t)cfg->dim, L = (size_t)cfg->n_layers;
    float proj_std = 0.02f / sqrtf(2.0f * (float)cfg->n_layers);
    /* Tensors in flat order; RMSNorm weights are 1 and draw nothing. */
    struct { const float *p; size_t n; float std; } t[] = {
        { m->w.token_embedding, (size_t)cfg->vocab_size * C, 0.02f },
        { m->w.rms_att, L * C, 0.0f },
        { m->w.wq, (size_t)(m->w.wk - m->w.wq), 0.02f },
        { m->w.wk, (size_t)(m->w.wv - m->w.wk), 0.02f },
        { m->w.wv, (size_t)(m->w.wo - m->w.wv), 0.02f },
        { m->w.wo, (size_t)(m->w.rms_ffn - m->w.wo), proj_std },
        { m->w.rms_ffn, L * C, 0.0f },
        { m->w.w1, (size_t)(m->w.w2 - m->w.w1), 0.02f },
        { m->w.w2, (size_t)(m->w.w3 - m->w.w2), proj_std },
        { m->w.w3, (size_t)(m->w.w2 - m->w.w1), 0.02f },
        { m->w.rms_final, C, 0.0f },
        { m->w.wcls, cfg->shared_classifier ? 0 : (size_t)cfg->vocab_size * C, 0.02f },
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        float *p = m->params + (t[i].p - m->params);
        if (t[i].std > 0.0f) rng_fill_normal(&r, p, t[i].n, 0.0f, t[i].std);
        else for (size_t j = 0; j < t[i].n; j++) p[j] = 1.0f;
    }
    rope_config rc2 = rope_config_default();
    rc2.head_dim = cfg->dim / cfg->n_heads;
    rc2.rotary_dim = rc2.head_dim;
    rc2.base = cfg->rope_base;
    rc2.layout = ROPE_LAYOUT_INTERLEAVED;
    rc2.max_positions = cfg->seq_len;
    rc2.strict_range = 1;
    if (rope_table_init(&m->rope, &rc2, cfg->seq_len) != ROPE_OK) {
        llama_train_free(m);
        return LLAMA_EROPE;
    }
    matmul_ctx_init(&m->mm, MATMUL_OWN);
    return LLAMA_OK;
}

static void free_acts(llama_trainer *m) {
    free(m->acts);
    free(m->grad_scratch);
    free(m->inp);
    free(m->targets);
    free(m->pos);
    m->acts = m->grad_scratch = NULL;
    m->inp = m->targets = NULL;
    m->pos = NULL;
    m->B = m->T = 0;
}

void llama_train_free(llama_trainer *m) {
    if (!m) return;
    free_acts(m);
    free(m->params);
    free(m->grads);
    rope_table_free(&m->rope);
    matmul_ctx_free(&m->mm);
    memset(m, 0, sizeof *m);
}

static size_t kvd_of(const llama_config *c) { return (size_t)c->n_kv_heads * (size_t)(c->dim / c->n_heads); }

/* Scratch floats the backward needs (beyond the activations). */
static size_t scratch_floats(const llama_config *c, size_t BT, size_t T) {
    size_t C = (size_t)c->dim, H = (size_t)c->hidden_dim, V = (size_t)c->vocab_size, kvd = kvd_of(c);
    return 5 * BT * C + 2 * BT * kvd + 3 * BT * H + BT * V + (size_t)threads_max() * T;   /* + rows per thread */
}

static int alloc_acts(llama_trainer *m, int B, int T) {
    if (m->acts && m->B == B && m->T == T) return LLAMA_OK;
    free_acts(m);
    const llama_config *c = &m->cfg;
    size_t BT = (size_t)B * T, C = (size_t)c->dim, H = (size_t)c->hidden_dim, V = (size_t)c->vocab_size;
    size_t L = (size_t)c->n_layers, kvd = kvd_of(c), NH = (size_t)c->n_heads;
    size_t sizes[] = { (L + 1) * BT * C, L * BT * C, L * BT, L * BT * C, L * BT * kvd, L * BT * kvd,
                       L * (size_t)B * NH * T * T, L * BT * C, L * BT * C, L * BT * C, L * BT,
                       L * BT * H, L * BT * H, L * BT * H, BT * C, BT, BT * V, BT * V, BT };
    float **ptrs[] = { &m->resid, &m->n1, &m->rstd1, &m->q, &m->k, &m->v, &m->att, &m->atty, &m->mid,
                       &m->n2, &m->rstd2, &m->h1, &m->h3, &m->hg, &m->nf, &m->rstdf, &m->logits, &m->probs,
                       &m->losses };
    size_t total = 0;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) total += sizes[i];
    m->acts = calloc(total, sizeof(float));
    m->n_scratch = threads_max();
    m->grad_scratch = malloc(scratch_floats(c, BT, (size_t)T) * sizeof(float));
    m->inp = malloc(BT * sizeof(int));
    m->targets = malloc(BT * sizeof(int));
    m->pos = malloc(BT * sizeof(int32_t));
    if (!m->acts || !m->grad_scratch || !m->inp || !m->targets || !m->pos) {
        free_acts(m);
        return LLAMA_ENOMEM;
    }
    float *p = m->acts;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        *ptrs[i] = p;
        p += sizes[i];
    }
    m->B = B;
    m->T = T;
    return LLAMA_OK;
}

/* Causal grouped-query attention; att (B, NH, T, T), rows j <= t written. */
static void gqa_forward(float *out, float *att, const float *q, const float *k, const float *v, int B, int T,
                        const llama_config *c) {
    int NH = c->n_heads, HS = c->dim / c->n_heads, group = c->n_heads / c->n_kv_heads;
    size_t C = (size_t)c->dim, kvd = kvd_of(c);
    float scale = 1.0f / sqrtf((float)HS);
    long long work = (long long)B * NH * T * T * HS;   /* below ~64K FMAs a thread team costs more */
    (void)work;
#pragma omp parallel for schedule(static) if (work >= 65536)
    for (int bh = 0; bh < B * NH; bh++) {
        int b = bh / NH, h = bh % NH;
        size_t ko = (size_t)(h / group) * HS;
        for (int t = 0; t < T; t++) {
            const float *qt = q + ((size_t)b * T + t) * C + (size_t)h * HS;
            float *a = att + ((size_t)bh * T + t) * T;
            float mx = -INFINITY, sum = 0.0f;
            for (int j = 0; j <= t; j++) {
                const float *kj = k + ((size_t)b * T + j) * kvd + ko;
                float s = 0.0f;
                for (int i = 0; i < HS; i++) s += qt[i] * kj[i];
                a[j] = s * scale;
                if (a[j] > mx) mx = a[j];
            }
            for (int j = 0; j <= t; j++) sum += (a[j] = expf(a[j] - mx));   /* max subtracted */
            float inv = 1.0f / sum;
            float *o = out + ((size_t)b * T + t) * C + (size_t)h * HS;
            for (int i = 0; i < HS; i++) o[i] = 0.0f;
            for (int j = 0; j <= t; j++) {
                a[j] *= inv;
                const float *vj = v + ((size_t)b * T + j) * kvd + ko;
                for (int i = 0; i < HS; i++) o[i] += a[j] * vj[i];
            }
        }
    }
}

/* Accumulates dq, dk, dv. One thread per (batch row, kv head) owns that kv
 * head's dk/dv rows and its query heads' dq, looping heads and t in order. */
static void gqa_backward(float *dq, float *dk, float *dv, const float *dout, const float *q, const float *k,
                         const float *v, const float *att, float *scratch, int n_scratch, int B, int T,
                         const llama_config *c) {
    int NH = c->n_heads, KVH = c->n_kv_heads, HS = c->dim / c->n_heads, group = NH / KVH;
    size_t C = (size_t)c->dim, kvd = kvd_of(c);
    float scale = 1.0f / sqrtf((float)HS);
    long long work = (long long)B * NH * T * T * HS;
    (void)n_scratch;   /* n_scratch and work: read only by the OpenMP clauses */
    (void)work;
#pragma omp parallel for schedule(static) num_threads(n_scratch) if (work >= 65536)   /* one scratch row per thread */
    for (int bg = 0; bg < B * KVH; bg++) {
        int b = bg / KVH, g = bg % KVH;
        size_t ko = (size_t)g * HS;
        float *da = scratch + (size_t)thread_index() * T;
        for (int h = g * group; h < (g + 1) * group; h++) {
            for (int t = 0; t < T; t++) {
                const float *a = att + (((size_t)b * NH + h) * T + t) * T;
                size_t qo = ((size_t)b * T + t) * C + (size_t)h * HS;
                const float *dy = dout + qo;
                float dot = 0.0f;
                for (int j = 0; j <= t; j++) {
                    const float *vj = v + ((size_t)b * T + j) * kvd + ko;
                    float s = 0.0f;
                    for (int i = 0; i < HS; i++) s += dy[i] * vj[i];
                    da[j] = s;
                    dot += a[j] * s;
                }
                for (int j = 0; j <= t; j++) {
                    size_t jo = ((size_t)b * T + j) * kvd + ko;
                    float ds = a[j] * (da[j] - dot) * scale;
                    for (int i = 0; i < HS; i++) {
                        dq[qo + i] += ds * k[jo + i];
                        dk[jo + i] += ds * q[qo + i];
                        dv[jo + i] += a[j] * dy[i];
                    }
                }
            }
        }
    }
}

int llama_train_forward(llama_trainer *m, const int *inp, const int *targets, int B, int T, float *loss) {
    if (!m || !inp) return LLAMA_ENULL;
    const llama_config *c = &m->cfg;
    if (B < 1 || T < 1 || T > c->seq_len) return LLAMA_EPOS;
    size_t BT = (size_t)B * T;
    for (size_t i = 0; i < BT; i++)
        if (inp[i] < 0 || inp[i] >= c->vocab_size || (targets && (targets[i] < 0 || targets[i] >= c->vocab_size)))
            return LLAMA_ETOKEN;
    int rc = alloc_acts(m, B, T);
    if (rc) return rc;
    int C = c->dim, H = c->hidden_dim, NH = c->n_heads, HS = C / NH, V = c->vocab_size, kvd = (int)kvd_of(c);
    int N = (int)BT;
    const llama_weights *w = &m->w;
    memcpy(m->inp, inp, BT * sizeof(int));
    m->have_targets = targets != NULL;
    if (targets) memcpy(m->targets, targets, BT * sizeof(int));
    for (size_t i = 0; i < BT; i++) {
        m->pos[i] = (int32_t)(i % (size_t)T);
        memcpy(m->resid + i * C, w->token_embedding + (size_t)inp[i] * C, (size_t)C * sizeof(float));
    }
    for (int l = 0; l < c->n_layers; l++) {
        size_t lc = (size_t)l * BT * C, lk = (size_t)l * BT * kvd, lh = (size_t)l * BT * H;
        size_t wq = (size_t)l * C * C, wk = (size_t)l * kvd * C, wh = (size_t)l * H * C;
        float *x = m->resid + lc, *xn = m->resid + lc + BT * C;
        float *q = m->q + lc, *k = m->k + lk, *v = m->v + lk, *mid = m->mid + lc;
        rmsnorm_forward(m->n1 + lc, m->rstd1 + (size_t)l * BT, x, w->rms_att + (size_t)l * C, N, C, c->norm_eps);
        matmul_forward_ctx(&m->mm, q, m->n1 + lc, w->wq + wq, NULL, N, C, C);
        matmul_forward_ctx(&m->mm, k, m->n1 + lc, w->wk + wk, NULL, N, C, kvd);
        matmul_forward_ctx(&m->mm, v, m->n1 + lc, w->wv + wk, NULL, N, C, kvd);
        rope_view qv = { q, N, NH, C, HS }, kv = { k, N, c->n_kv_heads, kvd, HS };
        if (rope_apply_qk(&m->rope, ROPE_FORWARD, &qv, &kv, m->pos, 0) != ROPE_OK) return LLAMA_EROPE;
        gqa_forward(m->atty + lc, m->att + (size_t)l * B * NH * T * T, q, k, v, B, T, c);
        matmul_forward_ctx(&m->mm, mid, m->atty + lc, w->wo + wq, NULL, N, C, C);
        for (size_t i = 0; i < BT * C; i++) mid[i] += x[i];
        rmsnorm_forward(m->n2 + lc, m->rstd2 + (size_t)l * BT, mid, w->rms_ffn + (size_t)l * C, N, C, c->norm_eps);
        matmul_forward_ctx(&m->mm, m->h1 + lh, m->n2 + lc, w->w1 + wh, NULL, N, C, H);
        matmul_forward_ctx(&m->mm, m->h3 + lh, m->n2 + lc, w->w3 + wh, NULL, N, C, H);
        swiglu_forward(m->hg + lh, m->h1 + lh, m->h3 + lh, BT * H);
        matmul_forward_ctx(&m->mm, xn, m->hg + lh, w->w2 + wh, NULL, N, H, C);
        for (size_t i = 0; i < BT * C; i++) xn[i] += mid[i];
    }
    rmsnorm_forward(m->nf, m->rstdf, m->resid + (size_t)c->n_layers * BT * C, w->rms_final, N, C, c->norm_eps);
    matmul_forward_ctx(&m->mm, m->logits, m->nf, w->wcls, NULL, N, C, V);
    if (targets) {
        crossentropy_forward(m->losses, m->probs, m->logits, targets, N, V);
        double s = 0.0;   /* fixed order, double: the mean does not depend on threads */
        for (size_t i = 0; i < BT; i++) s += m->losses[i];
        m->loss = (float)(s / (double)BT);
        if (loss) *loss = m->loss;
    }
    return LLAMA_OK;
}

void llama_train_zero_grad(llama_trainer *m) {
    if (m && m->grads) memset(m->grads, 0, m->n_params * sizeof(float));
}

int llama_train_backward(llama_trainer *m) {
    if (!m || !m->acts) return LLAMA_ENULL;
    if (!m->have_targets) return LLAMA_ETOKEN;
    const llama_config *c = &m->cfg;
    int B = m->B, T = m->T, N = B * T;
    int C = c->dim, H = c->hidden_dim, NH = c->n_heads, HS = C / NH, V = c->vocab_size, kvd = (int)kvd_of(c);
    size_t BT = (size_t)N;
    const llama_weights *w = &m->w;
    float *p = m->grad_scratch;
    float *dres = p; p += BT * C;
    float *dmid = p; p += BT * C;
    float *dn = p; p += BT * C;
    float *datty = p; p += BT * C;
    float *dq = p; p += BT * C;
    float *dk = p; p += BT * kvd;
    float *dv = p; p += BT * kvd;
    float *dh1 = p; p += BT * H;
    float *dh3 = p; p += BT * H;
    float *dhg = p; p += BT * H;
    float *dlogits = p; p += BT * V;
    float *att_scratch = p;

    memset(dlogits, 0, BT * V * sizeof(float));
    crossentropy_backward(dlogits, m->probs, m->targets, NULL, N, V);
    memset(dn, 0, BT * C * sizeof(float));
    matmul_backward_ctx(&m->mm, dn, G(m, w->wcls), NULL, dlogits, m->nf, w->wcls, N, C, V);
    memset(dres, 0, BT * C * sizeof(float));
    rmsnorm_backward(dres, G(m, w->rms_final), dn, m->resid + (size_t)c->n_layers * BT * C, w->rms_final,
                     m->rstdf, N, C);
    for (int l = c->n_layers - 1; l >= 0; l--) {
        size_t lc = (size_t)l * BT * C, lk = (size_t)l * BT * kvd, lh = (size_t)l * BT * H;
        size_t wq = (size_t)l * C * C, wk = (size_t)l * kvd * C, wh = (size_t)l * H * C;
        /* x' = mid + W2 hg */
        memcpy(dmid, dres, BT * C * sizeof(float));
        memset(dhg, 0, BT * H * sizeof(float));
        matmul_backward_ctx(&m->mm, dhg, G(m, w->w2 + wh), NULL, dres, m->hg + lh, w->w2 + wh, N, H, C);
        memset(dh1, 0, BT * H * sizeof(float));
        memset(dh3, 0, BT * H * sizeof(float));
        swiglu_backward(dh1, dh3, dhg, m->h1 + lh, m->h3 + lh, BT * H);
        memset(dn, 0, BT * C * sizeof(float));
        matmul_backward_ctx(&m->mm, dn, G(m, w->w1 + wh), NULL, dh1, m->n2 + lc, w->w1 + wh, N, C, H);
        matmul_backward_ctx(&m->mm, dn, G(m, w->w3 + wh), NULL, dh3, m->n2 + lc, w->w3 + wh, N, C, H);
        rmsnorm_backward(dmid, G(m, w->rms_ffn + (size_t)l * C), dn, m->mid + lc, w->rms_ffn + (size_t)l * C,
                         m->rstd2 + (size_t)l * BT, N, C);
        /* mid = x + Wo atty */
        memcpy(dres, dmid, BT * C * sizeof(float));
        memset(datty, 0, BT * C * sizeof(float));
        matmul_backward_ctx(&m->mm, datty, G(m, w->wo + wq), NULL, dmid, m->atty + lc, w->wo + wq, N, C, C);
        memset(dq, 0, BT * C * sizeof(float));
        memset(dk, 0, BT * kvd * sizeof(float));
        memset(dv, 0, BT * kvd * sizeof(float));
        gqa_backward(dq, dk, dv, datty, m->q + lc, m->k + lk, m->v + lk, m->att + (size_t)l * B * NH * T * T,
                     att_scratch, m->n_scratch, B, T, c);
        /* dq, dk were taken w.r.t. the rotated vectors: rotate them back. */
        rope_view qv = { dq, N, NH, C, HS }, kv = { dk, N, c->n_kv_heads, kvd, HS };
        if (rope_apply_qk(&m->rope, ROPE_BACKWARD, &qv, &kv, m->pos, 0) != ROPE_OK) return LLAMA_EROPE;
        memset(dn, 0, BT * C * sizeof(float));
        matmul_backward_ctx(&m->mm, dn, G(m, w->wq + wq), NULL, dq, m->n1 + lc, w->wq + wq, N, C, C);
        matmul_backward_ctx(&m->mm, dn, G(m, w->wk + wk), NULL, dk, m->n1 + lc, w->wk + wk, N, C, kvd);
        matmul_backward_ctx(&m->mm, dn, G(m, w->wv + wk), NULL, dv, m->n1 + lc, w->wv + wk, N, C, kvd);
        rmsnorm_backward(dres, G(m, w->rms_att + (size_t)l * C), dn, m->resid + lc, w->rms_att + (size_t)l * C,
                         m->rstd1 + (size_t)l * BT, N, C);
    }
    float *demb = G(m, w->token_embedding);
    for (size_t i = 0; i < BT; i++) {   /* serial: each row summed in token order */
        float *row = demb + (size_t)m->inp[i] * C;
        for (int j = 0; j < C; j++) row[j] += dres[i * C + j];
    }
    return LLAMA_OK;
}

void llama_train_decay_mask(const llama_trainer *m, uint8_t *mask) {
    const llama_weights *w = &m->w;
    memset(mask, 1, m->n_params);
    size_t LC = (size_t)m->cfg.n_layers * (size_t)m->cfg.dim;
    memset(mask + (w->rms_att - m->params), 0, LC);
    memset(mask + (w->rms_ffn - m->params), 0, LC);
    memset(mask + (w->rms_final - m->params), 0, (size_t)m->cfg.dim);
}
