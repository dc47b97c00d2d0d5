/*
 * test_gpt.c — whole-model tests of the GPT: gradients against central finite
 * differences for every position encoding (and both RoPE layouts, partial
 * rotary), loss at init, overfitting one batch, determinism, fair init across
 * encodings, config validation and shape errors.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "data/dataset.h"
#include "model/adamw.h"
#include "model/gpt.h"
#include "model/gpt_split.h"
#include "util/rng.h"

/* ---------------------------------------------------------------- helpers */

static gpt_config tiny_config(pe_type pe) {
    gpt_config c = gpt_config_default();
    c.V = 11;
    c.L = 2;
    c.NH = 2;
    c.C = 8;
    c.maxT = 5;
    c.pe = pe;
    return c;
}

static void random_tokens(rng_state *r, int *x, size_t n, int V) {
    for (size_t i = 0; i < n; i++) x[i] = (int)rng_below(r, (uint64_t)V);
}

/* Replaces every parameter (biases and LayerNorm gains included) by a
 * sizeable random value: at GPT-2 init the attention is nearly uniform and
 * biases are zero, so a wrong position or bias gradient could hide below the
 * finite-difference noise. */
static void randomize_params(gpt *m, uint64_t seed) {
    rng_state r;
    rng_init(&r, seed, 7);
    for (size_t i = 0; i < m->num_params; i++) m->params_memory[i] = (float)(0.4 * rng_normal(&r));
    for (int l = 0; l < m->cfg.C * m->cfg.L; l++) {
        m->params.ln1w[l] += 1.0f;
        m->params.ln2w[l] += 1.0f;
    }
    for (int c = 0; c < m->cfg.C; c++) m->params.lnfw[c] += 1.0f;
}

/* Fourth-order central difference of the loss in parameter i:
 * (8 (f(h) - f(-h)) - (f(2h) - f(-2h))) / (12 h); truncation O(h^4), so h
 * can stay large enough that float rounding of the loss does not dominate. */
static double fd_grad(gpt *m, size_t i, float h, const int *inp, const int *tgt, int B, int T) {
    float orig = m->params_memory[i];
    double f[4];
    const float steps[4] = { h, -h, 2 * h, -2 * h };
    for (int k = 0; k < 4; k++) {
        m->params_memory[i] = orig + steps[k];
        f[k] = gpt_forward(m, inp, tgt, B, T);
    }
    m->params_memory[i] = orig;
    return (8.0 * (f[0] - f[1]) - (f[2] - f[3])) / (12.0 * (double)h);
}

/* Finite differences on a sample of every tensor (all entries of tensors
 * with <= 24 of them). Returns the number of failures; *worst = worst
 * whole-tensor relative error. Tolerances: the loss is float (rounding
 * ~2.5e-7 on a loss ~3), so the h = 1e-2 fourth-order quotient carries
 * ~4e-5 absolute noise (measured max 7e-5 over all encodings); per entry we
 * allow 1e-2 relative + 2e-4 absolute, per tensor a relative error norm of
 * 5e-3 (measured <= 8e-4). A wrong backward term is O(1) relative: swapping
 * ROPE_BACKWARD for ROPE_FORWARD or mis-scaling the sinusoidal wte gradient
 * fails 7-19 checks. */
static int grad_check(const gpt_config *cfg, int B, int T, uint64_t seed, double *worst) {
    gpt m;
    int fails = 0;
    *worst = 0.0;
    if (gpt_init(&m, cfg, seed) != GPT_OK) return -1;
    randomize_params(&m, seed);
    size_t BT = (size_t)B * T;
    int *inp = malloc(BT * sizeof(int)), *tgt = malloc(BT * sizeof(int));
    rng_state r;
    rng_init(&r, seed, 3);
    random_tokens(&r, inp, BT, cfg->V);
    random_tokens(&r, tgt, BT, cfg->V);
    gpt_zero_grad(&m);
    float loss = gpt_forward(&m, inp, tgt, B, T);
    CHECK(isfinite(loss));
    CHECK_EQ_INT(gpt_backward(&m), GPT_OK);
    float *grads = malloc(m.num_params * sizeof(float));
    memcpy(grads, m.grads_memory, m.num_params * sizeof(float));
    const float h = 1e-2f;
    size_t off = 0;
    for (int ti = 0; ti < GPT_NUM_TENSORS; ti++) {
        size_t n = m.tensor_sizes[ti];
        size_t n_check = n <= 24 ? n : 24;
        double sum_d2 = 0.0, sum_f2 = 0.0;
        for (size_t k = 0; k < n_check; k++) {
            size_t i = off + (n <= 24 ? k : (size_t)rng_below(&r, n));
            double fd = fd_grad(&m, i, h, inp, tgt, B, T);
            double an = grads[i];
            double err = fabs(fd - an);
            sum_d2 += err * err;
            sum_f2 += fd * fd;
            if (!(err <= 1e-2 * fmax(fabs(fd), fabs(an)) + 2e-4)) {
                if (fails < 5)
                    test_fail(__FILE__, __LINE__, "pe %s tensor %s index %zu: analytic %.6g vs fd %.6g",
                              pe_type_name(cfg->pe), gpt_tensor_name(ti), i - off, an, fd);
                fails++;
            }
        }
        /* Whole-tensor agreement of the sampled entries: a wrong term that
         * hides in the per-entry floor still shows here. */
        if (sum_f2 > 1e-6) {
            double trel = sqrt(sum_d2 / sum_f2);
            if (trel > *worst) *worst = trel;
            if (!(trel <= 5e-3)) {
                test_fail(__FILE__, __LINE__, "pe %s tensor %s: relative error norm %.3g > 5e-3",
                          pe_type_name(cfg->pe), gpt_tensor_name(ti), trel);
                fails++;
            }
        }
        off += n;
    }
    free(grads);
    free(inp);
    free(tgt);
    gpt_free(&m);
    return fails;
}

/* ---------------------------------------------------------------- gradients */

TEST(gpt_grad_none) {
    gpt_config c = tiny_config(PE_NONE);
    double w;
    CHECK_EQ_INT(grad_check(&c, 2, 5, 11, &w), 0);
}

TEST(gpt_grad_learned) {
    gpt_config c = tiny_config(PE_LEARNED);
    double w;
    CHECK_EQ_INT(grad_check(&c, 2, 5, 12, &w), 0);
}

TEST(gpt_grad_sinusoidal) {
    gpt_config c = tiny_config(PE_SINUSOIDAL);
    double w;
    CHECK_EQ_INT(grad_check(&c, 2, 5, 13, &w), 0);
}

TEST(gpt_grad_rope_interleaved) {
    gpt_config c = tiny_config(PE_ROPE);
    c.rope_layout = ROPE_LAYOUT_INTERLEAVED;
    double w;
    CHECK_EQ_INT(grad_check(&c, 2, 5, 14, &w), 0);
}

TEST(gpt_grad_rope_half) {
    gpt_config c = tiny_config(PE_ROPE);
    c.rope_layout = ROPE_LAYOUT_HALF;
    c.rope_base = 100.0;   /* a small base: larger angles at T = 5 */
    double w;
    CHECK_EQ_INT(grad_check(&c, 2, 5, 15, &w), 0);
}

TEST(gpt_grad_rope_partial) {
    /* HS 8, fraction 0.5: rotary_dim 4, channels 4..7 of q and k pass through. */
    gpt_config c = tiny_config(PE_ROPE);
    c.rope_layout = ROPE_LAYOUT_HALF;
    c.rope_fraction = 0.5;
    c.rope_base = 100.0;
    double w;
    CHECK_EQ_INT(grad_check(&c, 2, 5, 16, &w), 0);
}

TEST(gpt_grad_rope_past_table) {
    /* maxT 1: the table holds 8 positions, T = 11 makes librope compute
     * positions 8..10 on the fly in forward and backward. */
    gpt_config c = tiny_config(PE_ROPE);
    c.maxT = 1;
    double w;
    CHECK_EQ_INT(grad_check(&c, 1, 11, 17, &w), 0);
}

TEST(gpt_grad_alibi) {
    gpt_config c = tiny_config(PE_ALIBI);
    double w;
    CHECK_EQ_INT(grad_check(&c, 2, 5, 18, &w), 0);
}

/* ---------------------------------------------------------------- behaviour */

static const char *data_path = "data/tinyshakespeare.txt";

TEST(gpt_loss_at_init_is_ln_vocab) {
    /* With GPT-2 init the logits are ~N(0, 0.02^2 * C) so the predicted
     * distribution is close to uniform: loss = ln 256 + var/2 ~ 5.545 + 0.03.
     * 0.1 leaves room for that and for batch noise, but not for a wrong scale
     * (e.g. untied or un-normalised logits give losses far above). */
    dataset ds;
    CHECK_EQ_INT(dataset_load(&ds, data_path, 64), DATA_OK);
    if (ds.bytes == NULL) return;
    int B = 2, T = 64;
    int *inp = malloc(sizeof(int) * B * T), *tgt = malloc(sizeof(int) * B * T);
    CHECK_EQ_INT(dataset_eval_batch(&ds, SPLIT_VAL, 0, B, T, inp, tgt), DATA_OK);
    for (int pe = 0; pe < PE_COUNT; pe++) {
        gpt_config c = gpt_config_default();
        c.pe = (pe_type)pe;
        gpt m;
        CHECK_EQ_INT(gpt_init(&m, &c, 1), GPT_OK);
        float loss = gpt_forward(&m, inp, tgt, B, T);
        CHECK_NEAR(loss, log(256.0), 0.1);
        gpt_free(&m);
    }
    free(inp);
    free(tgt);
    dataset_free(&ds);
}

/* A small model trained with AdamW on one fixed batch; returns the last loss. */
static float overfit(pe_type pe, int steps) {
    gpt_config c = gpt_config_default();
    c.V = 64;
    c.L = 2;
    c.NH = 2;
    c.C = 32;
    c.maxT = 16;
    c.pe = pe;
    gpt m;
    if (gpt_init(&m, &c, 5) != GPT_OK) return NAN;
    int B = 2, T = 16;
    int inp[32], tgt[32];
    rng_state r;
    rng_init(&r, 9, 0);
    random_tokens(&r, inp, 32, c.V);
    random_tokens(&r, tgt, 32, c.V);
    adamw opt = adamw_default();
    opt.lr = 1e-2f;
    float loss = NAN;
    for (int s = 0; s < steps; s++) {
        gpt_zero_grad(&m);
        loss = gpt_forward(&m, inp, tgt, B, T);
        gpt_backward(&m);
        adamw_step(&opt, m.params_memory, m.grads_memory, m.m_memory, m.v_memory, m.decay_mask, m.num_params);
    }
    loss = gpt_forward(&m, inp, tgt, B, T);
    gpt_free(&m);
    return loss;
}

TEST(gpt_overfits_one_batch) {
    /* Random targets can only be fitted by memorising (token, position)
     * pairs, so this needs working gradients through attention and the
     * position encoding. Starting loss ln 64 = 4.16; 0.1 means memorised (60 steps reach
     * ~0.003, so the bound is not tight). */
    float a = overfit(PE_LEARNED, 60), b = overfit(PE_ROPE, 60);
    CHECK(a < 0.1f);
    CHECK(b < 0.1f);
}

/* Losses of `steps` AdamW steps on Tiny Shakespeare batches. */
static void train_losses(pe_type pe, uint64_t seed, int steps, float *losses) {
    gpt_config c = gpt_config_default();
    c.L = 2;
    c.C = 32;
    c.maxT = 16;
    c.pe = pe;
    dataset ds;
    gpt m;
    if (dataset_load(&ds, data_path, c.maxT) != DATA_OK || gpt_init(&m, &c, seed) != GPT_OK) {
        for (int s = 0; s < steps; s++) losses[s] = NAN;
        dataset_free(&ds);
        return;
    }
    int B = 2, T = c.maxT;
    int *inp = malloc(sizeof(int) * B * T), *tgt = malloc(sizeof(int) * B * T);
    rng_state r;
    rng_init(&r, seed, 2);
    adamw opt = adamw_default();
    for (int s = 0; s < steps; s++) {
        dataset_batch(&ds, SPLIT_TRAIN, &r, B, T, inp, tgt);
        gpt_zero_grad(&m);
        losses[s] = gpt_forward(&m, inp, tgt, B, T);
        gpt_backward(&m);
        opt.lr = lr_at(s, steps, 2, 1e-2f, 1e-3f);
        adamw_step(&opt, m.params_memory, m.grads_memory, m.m_memory, m.v_memory, m.decay_mask, m.num_params);
    }
    free(inp);
    free(tgt);
    gpt_free(&m);
    dataset_free(&ds);
}

TEST(gpt_same_seed_same_bits) {
    const pe_type pes[3] = { PE_LEARNED, PE_ROPE, PE_ALIBI };
    for (int i = 0; i < 3; i++) {
        float a[10], b[10], c[10];
        train_losses(pes[i], 3, 10, a);
        train_losses(pes[i], 3, 10, b);
        train_losses(pes[i], 4, 10, c);
        CHECK(memcmp(a, b, sizeof a) == 0);
        CHECK(memcmp(a, c, sizeof a) != 0);   /* the seed matters: the check can fail */
        CHECK(a[9] < a[0]);                    /* and it is training */
    }
}

TEST(gpt_shared_init_same_across_pe) {
    gpt ref;
    gpt_config c = gpt_config_default();
    c.pe = PE_NONE;
    CHECK_EQ_INT(gpt_init(&ref, &c, 42), GPT_OK);
    for (int pe = 0; pe < PE_COUNT; pe++) {
        c.pe = (pe_type)pe;
        gpt m;
        CHECK_EQ_INT(gpt_init(&m, &c, 42), GPT_OK);
        const float *ta = ref.params_memory, *tb = m.params_memory;
        for (int ti = 0; ti < GPT_NUM_TENSORS; ti++) {
            if (ti != 1) {
                CHECK_EQ_INT(m.tensor_sizes[ti], ref.tensor_sizes[ti]);
                if (m.tensor_sizes[ti] == ref.tensor_sizes[ti])
                    CHECK(memcmp(ta, tb, m.tensor_sizes[ti] * sizeof(float)) == 0);
            }
            ta += ref.tensor_sizes[ti];
            tb += m.tensor_sizes[ti];
        }
        CHECK_EQ_INT(m.tensor_sizes[1], pe == PE_LEARNED ? (size_t)c.maxT * c.C : 0);
        gpt_free(&m);
    }
    /* Another seed changes the shared weights (the comparison can fail). */
    c.pe = PE_NONE;
    gpt other;
    CHECK_EQ_INT(gpt_init(&other, &c, 43), GPT_OK);
    CHECK(memcmp(other.params.wte, ref.params.wte, ref.tensor_sizes[0] * sizeof(float)) != 0);
    gpt_free(&other);
    gpt_free(&ref);
}

TEST(gpt_init_statistics) {
    /* GPT-2 init: weights N(0, 0.02), projections N(0, 0.02/sqrt(2L)), LN 1/0,
     * biases 0; wte has 32768 samples, so its std is within ~1% of 0.02. */
    gpt_config c = gpt_config_default();
    gpt m;
    CHECK_EQ_INT(gpt_init(&m, &c, 7), GPT_OK);
    double s = 0, s2 = 0;
    size_t n = m.tensor_sizes[0];
    for (size_t i = 0; i < n; i++) { s += m.params.wte[i]; s2 += (double)m.params.wte[i] * m.params.wte[i]; }
    CHECK_NEAR(sqrt(s2 / n - (s / n) * (s / n)), 0.02, 0.0005);   /* 4 sigma of the std estimate */
    s2 = 0;
    n = m.tensor_sizes[12];
    for (size_t i = 0; i < n; i++) s2 += (double)m.params.fcprojw[i] * m.params.fcprojw[i];
    CHECK_NEAR(sqrt(s2 / n), 0.02 / sqrt(8.0), 0.0002);           /* 262144 samples */
    CHECK(m.params.ln1w[5] == 1.0f && m.params.ln1b[5] == 0.0f && m.params.lnfw[0] == 1.0f);
    CHECK(m.params.qkvb[3] == 0.0f && m.params.fcprojb[1] == 0.0f);
    /* weight decay only on the 2-D weights */
    CHECK_EQ_INT(m.decay_mask[0], 1);
    CHECK_EQ_INT(m.decay_mask[(size_t)(m.params.ln1w - m.params_memory)], 0);
    CHECK_EQ_INT(m.decay_mask[(size_t)(m.params.qkvw - m.params_memory)], 1);
    CHECK_EQ_INT(m.decay_mask[(size_t)(m.params.qkvb - m.params_memory)], 0);
    CHECK_EQ_INT(m.decay_mask[(size_t)(m.params.fcprojw - m.params_memory) + 5], 1);
    CHECK_EQ_INT(m.decay_mask[m.num_params - 1], 0);
    size_t nd = 0;
    for (size_t i = 0; i < m.num_params; i++) nd += m.decay_mask[i];
    CHECK_EQ_INT(nd, m.tensor_sizes[0] + m.tensor_sizes[1] + m.tensor_sizes[4] + m.tensor_sizes[6] +
                     m.tensor_sizes[10] + m.tensor_sizes[12]);
    gpt_free(&m);
}

TEST(gpt_config_validate_messages) {
    gpt_config c = gpt_config_default();
    CHECK(gpt_config_validate(&c) == NULL);
    CHECK(gpt_config_validate(NULL) != NULL);
    gpt_config d = c; d.C = 130;                 /* not a multiple of NH 4 */
    CHECK(gpt_config_validate(&d) != NULL);
    d = c; d.V = 0;
    CHECK(gpt_config_validate(&d) != NULL);
    d = c; d.maxT = -1;
    CHECK(gpt_config_validate(&d) != NULL);
    d = c; d.pe = PE_COUNT;
    CHECK(gpt_config_validate(&d) != NULL);
    d = c; d.pe = PE_ROPE; d.C = 12; d.NH = 4;   /* HS 3: odd */
    CHECK(gpt_config_validate(&d) != NULL);
    d = c; d.pe = PE_ROPE; d.rope_fraction = 0.0;
    CHECK(gpt_config_validate(&d) != NULL);
    d = c; d.pe = PE_ROPE; d.rope_fraction = 1.5;
    CHECK(gpt_config_validate(&d) != NULL);
    d = c; d.pe = PE_ROPE; d.rope_fraction = 0.03;   /* 32 * 0.03 = 0.96 -> rotary 0 */
    CHECK(gpt_config_validate(&d) != NULL);
    d = c; d.pe = PE_ROPE; d.rope_fraction = 0.25;   /* 32 * 0.25 = 8 */
    CHECK(gpt_config_validate(&d) == NULL);
    CHECK_EQ_INT(gpt_rotary_dim(&d), 8);
    d.rope_fraction = 0.3;                            /* 9.6 -> 8 */
    CHECK_EQ_INT(gpt_rotary_dim(&d), 8);
    d = c; d.pe = PE_ROPE; d.rope_base = 0.0;
    CHECK(gpt_config_validate(&d) != NULL);
    d = c; d.pe = PE_ROPE; d.rope_layout = (rope_layout)7;
    CHECK(gpt_config_validate(&d) != NULL);
    d = c; d.pe = PE_ALIBI; d.NH = 128;
    CHECK(gpt_config_validate(&d) != NULL);
    gpt m;
    CHECK_EQ_INT(gpt_init(&m, &d, 1), GPT_ECONFIG);
    gpt_free(&m);
}

TEST(gpt_pe_names_round_trip) {
    for (int pe = 0; pe < PE_COUNT; pe++) {
        pe_type out = PE_COUNT;
        CHECK_EQ_INT(pe_type_parse(pe_type_name((pe_type)pe), &out), 0);
        CHECK_EQ_INT(out, pe);
    }
    pe_type out;
    CHECK_EQ_INT(pe_type_parse("RoPE", &out), -1);
    CHECK_EQ_INT(pe_type_parse(NULL, &out), -1);
    CHECK(strcmp(pe_type_name(PE_ROPE), "rope") == 0);
    CHECK(strcmp(pe_type_name((pe_type)99), "unknown") == 0);
}

TEST(gpt_shape_and_token_errors) {
    gpt_config c = tiny_config(PE_LEARNED);
    gpt m;
    CHECK_EQ_INT(gpt_init(&m, &c, 1), GPT_OK);
    int inp[12] = { 0 }, tgt[12] = { 0 };
    CHECK(isnan(gpt_forward(&m, inp, tgt, 1, 6)));   /* T 6 > maxT 5 with learned positions */
    CHECK_EQ_INT(m.status, GPT_ESHAPE);
    CHECK_EQ_INT(gpt_backward(&m), GPT_ESTATE);
    CHECK(isnan(gpt_forward(&m, inp, tgt, 0, 5)));
    inp[3] = 11;                                      /* V = 11 */
    CHECK(isnan(gpt_forward(&m, inp, tgt, 1, 5)));
    CHECK_EQ_INT(m.status, GPT_ETOKEN);
    inp[3] = 0;
    tgt[4] = -1;
    CHECK(isnan(gpt_forward(&m, inp, tgt, 1, 5)));
    tgt[4] = 0;
    CHECK(isfinite(gpt_forward(&m, inp, tgt, 2, 5)));
    CHECK_EQ_INT(gpt_backward(&m), GPT_OK);
    CHECK(gpt_forward(&m, inp, NULL, 2, 5) == 0.0f);  /* no targets: logits only */
    CHECK_EQ_INT(gpt_backward(&m), GPT_ESTATE);
    CHECK(isnan(gpt_eval_loss(&m, inp, NULL, 2, 5)));
    gpt_free(&m);
    /* Every other encoding runs past maxT (the extrapolation experiment). */
    for (int pe = 0; pe < PE_COUNT; pe++) {
        if (pe == PE_LEARNED) continue;
        c.pe = (pe_type)pe;
        CHECK_EQ_INT(gpt_init(&m, &c, 1), GPT_OK);
        int long_inp[50] = { 0 }, long_tgt[50] = { 0 };
        CHECK(isfinite(gpt_forward(&m, long_inp, long_tgt, 1, 50)));   /* 10 x maxT */
        gpt_free(&m);
    }
    gpt_free(&m);   /* a freed (zeroed) model may be freed again */
}

TEST(gpt_logits_without_targets_match) {
    gpt_config c = tiny_config(PE_ROPE);
    gpt m;
    CHECK_EQ_INT(gpt_init(&m, &c, 2), GPT_OK);
    int inp[10], tgt[10];
    rng_state r;
    rng_init(&r, 1, 0);
    random_tokens(&r, inp, 10, c.V);
    random_tokens(&r, tgt, 10, c.V);
    gpt_forward(&m, inp, tgt, 2, 5);
    float logits[110];
    memcpy(logits, m.acts.logits, sizeof logits);
    gpt_forward(&m, inp, NULL, 2, 5);
    CHECK(memcmp(logits, m.acts.logits, sizeof logits) == 0);
    /* probs are the softmax of logits */
    double s = 0;
    for (int v = 0; v < c.V; v++) s += m.acts.probs[v];
    CHECK_NEAR(s, 1.0, 1e-5);   /* float softmax, 11 terms */
    gpt_free(&m);
}

TEST(gpt_grad_accumulation_scale) {
    /* Two backward passes scaled 1/2 equal one unscaled pass. Scaling by a
     * power of two commutes with float rounding, but layers that add partial
     * sums into a nonzero gradient (the second pass) round in another order,
     * so allow a few float ulps: 1e-5 relative plus a 1e-7 floor for the
     * sums that cancel (gradients here are O(1e-2..1)). */
    gpt_config c = tiny_config(PE_ALIBI);
    gpt m;
    CHECK_EQ_INT(gpt_init(&m, &c, 2), GPT_OK);
    randomize_params(&m, 2);
    int inp[10], tgt[10];
    rng_state r;
    rng_init(&r, 5, 0);
    random_tokens(&r, inp, 10, c.V);
    random_tokens(&r, tgt, 10, c.V);
    gpt_zero_grad(&m);
    gpt_forward(&m, inp, tgt, 2, 5);
    gpt_backward(&m);
    float *g1 = malloc(m.num_params * sizeof(float));
    memcpy(g1, m.grads_memory, m.num_params * sizeof(float));
    gpt_zero_grad(&m);
    gpt_forward(&m, inp, tgt, 2, 5);
    gpt_backward_scaled(&m, 0.5f);
    gpt_forward(&m, inp, tgt, 2, 5);
    gpt_backward_scaled(&m, 0.5f);
    int bad = 0;
    for (size_t i = 0; i < m.num_params; i++) {
        double a = g1[i], b = m.grads_memory[i];
        if (!(fabs(a - b) <= 1e-5 * fmax(fabs(a), fabs(b)) + 1e-7)) {
            if (bad++ < 3) CHECK_CLOSE(a, b, 1e-5, 1e-7);
        }
    }
    CHECK_EQ_INT(bad, 0);
    double n = 0;
    for (size_t i = 0; i < m.num_params; i++) n += fabs(g1[i]);
    CHECK(n > 0.0);
    free(g1);
    gpt_free(&m);
}

TEST(gpt_position_losses_average) {
    gpt_config c = tiny_config(PE_SINUSOIDAL);
    gpt m;
    CHECK_EQ_INT(gpt_init(&m, &c, 3), GPT_OK);
    randomize_params(&m, 3);
    int inp[15], tgt[15];
    rng_state r;
    rng_init(&r, 6, 0);
    random_tokens(&r, inp, 15, c.V);
    random_tokens(&r, tgt, 15, c.V);
    float loss = gpt_forward(&m, inp, tgt, 3, 5);
    double pl[5], mean = 0;
    gpt_position_losses(&m, pl);
    for (int t = 0; t < 5; t++) mean += pl[t] / 5;
    CHECK_NEAR(mean, loss, 1e-5);   /* both double sums of the same float losses */
    CHECK_NEAR(pl[2], (m.acts.losses[2] + m.acts.losses[7] + m.acts.losses[12]) / 3.0, 1e-6);
    gpt_free(&m);
}

TEST(gpt_set_params_and_rope_scaling) {
    gpt_config c = tiny_config(PE_ROPE);
    gpt m;
    CHECK_EQ_INT(gpt_init(&m, &c, 4), GPT_OK);
    randomize_params(&m, 4);
    float *p = malloc(m.num_params * sizeof(float));
    memcpy(p, m.params_memory, m.num_params * sizeof(float));
    int inp[10], tgt[10];
    rng_state r;
    rng_init(&r, 8, 0);
    random_tokens(&r, inp, 10, c.V);
    random_tokens(&r, tgt, 10, c.V);
    float l0 = gpt_forward(&m, inp, tgt, 2, 5);
    gpt m2;
    CHECK_EQ_INT(gpt_init(&m2, &c, 99), GPT_OK);
    CHECK_EQ_INT(gpt_set_params(&m2, p, m.num_params - 1), GPT_ESHAPE);
    CHECK_EQ_INT(gpt_set_params(&m2, p, m.num_params), GPT_OK);
    CHECK(gpt_forward(&m2, inp, tgt, 2, 5) == l0);
    /* Linear interpolation by 4 changes the angles, so the loss. */
    rope_scaling s = rope_config_default().scaling;
    s.type = ROPE_SCALING_LINEAR;
    s.factor = 4.0;
    CHECK_EQ_INT(gpt_set_rope_scaling(&m2, &s, 20), GPT_OK);
    CHECK(gpt_forward(&m2, inp, tgt, 2, 5) != l0);
    s.factor = -1.0;                                   /* invalid: old table kept */
    CHECK_EQ_INT(gpt_set_rope_scaling(&m2, &s, 20), GPT_EROPE);
    CHECK_EQ_INT(gpt_set_rope_scaling(&m2, NULL, 5), GPT_OK);
    CHECK(gpt_forward(&m2, inp, tgt, 2, 5) == l0);
    gpt_free(&m2);
    free(p);
    gpt_free(&m);
}

TEST(gpt_backward_overwrite_equals_zero_then_accumulate) {
    /* gpt_backward_ex(overwrite=1) on gradients full of garbage must give the
     * values of gpt_zero_grad + gpt_backward: every parameter tensor's first
     * write overwrites (== compares values, so the sign of an exact zero
     * may differ). Each pe, since each writes a different set of tensors
     * (learned adds to wpe, the others never touch it). */
    const pe_type pes[] = { PE_NONE, PE_LEARNED, PE_SINUSOIDAL, PE_ROPE, PE_ALIBI };
    for (size_t k = 0; k < sizeof pes / sizeof pes[0]; k++) {
        gpt_config c = tiny_config(pes[k]);
        gpt m;
        CHECK_EQ_INT(gpt_init(&m, &c, 3), GPT_OK);
        randomize_params(&m, 3);
        int inp[10], tgt[10];
        rng_state r;
        rng_init(&r, 9, 0);
        random_tokens(&r, inp, 10, c.V);
        random_tokens(&r, tgt, 10, c.V);
        gpt_zero_grad(&m);
        gpt_forward(&m, inp, tgt, 2, 5);
        CHECK_EQ_INT(gpt_backward_scaled(&m, 0.5f), GPT_OK);
        float *g1 = malloc(m.num_params * sizeof(float));
        CHECK(g1 != NULL);
        if (!g1) { gpt_free(&m); return; }
        memcpy(g1, m.grads_memory, m.num_params * sizeof(float));
        for (size_t i = 0; i < m.num_params; i++) m.grads_memory[i] = (float)(i % 7) - 3.5f;
        gpt_forward(&m, inp, tgt, 2, 5);
        CHECK_EQ_INT(gpt_backward_ex(&m, 0.5f, 1), GPT_OK);
        size_t bad = 0;
        for (size_t i = 0; i < m.num_params; i++) bad += !(g1[i] == m.grads_memory[i]);
        CHECK_EQ_INT((int)bad, 0);
        free(g1);
        gpt_free(&m);
    }
}

/* The batch cut between threads (gpt_split): for each position encoding the
 * mean loss and the gradients are the whole batch's up to float rounding
 * (tolerance: a few float ulps of the summands, 2e-6 relative to the
 * largest gradient), the bits repeat from run to run, accumulation adds
 * (overwrite 0), an odd batch falls back to the plain path (same bits), a
 * bad token in a twin's part is reported on the main model, and new weights
 * in the main model are the twins' weights too. */
TEST(gpt_split_matches_whole_batch) {
    enum { B = 4, T = 5 };
    rng_state r;
    rng_init(&r, 99, 0);
    int inp[B * T], tgt[B * T];
    random_tokens(&r, inp, B * T, 11);
    random_tokens(&r, tgt, B * T, 11);
    for (int pe = 0; pe < PE_COUNT; pe++) {
        gpt_config c = tiny_config((pe_type)pe);
        gpt m;
        CHECK_EQ_INT(gpt_init(&m, &c, 3), GPT_OK);
        randomize_params(&m, 5);
        const size_t n = m.num_params;
        float *ref = malloc(n * sizeof(float)), *g1 = malloc(n * sizeof(float)), *acc = malloc(n * sizeof(float));
        float whole = gpt_forward(&m, inp, tgt, B, T);
        CHECK_EQ_INT(gpt_backward_ex(&m, 0.5f, 1), GPT_OK);
        memcpy(ref, m.grads_memory, n * sizeof(float));
        double gmax = 0;
        for (size_t i = 0; i < n; i++) gmax = fmax(gmax, fabs(ref[i]));

        gpt_split s;
        CHECK_EQ_INT(gpt_split_init(&s, &m, 2), GPT_OK);
        CHECK_EQ_INT(s.k, 2);
        for (int run = 0; run < 2; run++) {
            float loss = gpt_split_forward(&s, &m, inp, tgt, B, T);
            CHECK(s.active);
            CHECK_NEAR(loss, whole, 2e-6 * fabs(whole));
            CHECK_EQ_INT(gpt_split_backward(&s, &m, 0.5f, 1), GPT_OK);
            if (run == 0) {
                memcpy(g1, m.grads_memory, n * sizeof(float));
                double worst = 0;
                for (size_t i = 0; i < n; i++) worst = fmax(worst, fabs(g1[i] - ref[i]));
                CHECK(worst <= 2e-6 * gmax);
            } else {
                CHECK(memcmp(g1, m.grads_memory, n * sizeof(float)) == 0);
            }
        }
        /* accumulate: grads + split gradient */
        CHECK(isfinite(gpt_split_forward(&s, &m, inp, tgt, B, T)));
        CHECK_EQ_INT(gpt_split_backward(&s, &m, 0.5f, 0), GPT_OK);
        int accum_ok = 1;
        for (size_t i = 0; i < n; i++) accum_ok &= fabs(m.grads_memory[i] - 2.0f * g1[i]) <= 1e-6 * gmax;
        CHECK(accum_ok);
        /* an odd batch: the plain path, the plain bits */
        float l3 = gpt_split_forward(&s, &m, inp, tgt, 3, T);
        CHECK(!s.active);
        CHECK_EQ_INT(gpt_split_backward(&s, &m, 1.0f, 1), GPT_OK);
        memcpy(acc, m.grads_memory, n * sizeof(float));
        CHECK(l3 == gpt_forward(&m, inp, tgt, 3, T));
        CHECK_EQ_INT(gpt_backward_ex(&m, 1.0f, 1), GPT_OK);
        CHECK(memcmp(acc, m.grads_memory, n * sizeof(float)) == 0);
        /* a bad token in the second half */
        int bad[B * T];
        memcpy(bad, inp, sizeof bad);
        bad[B * T - 1] = 11;
        CHECK(isnan(gpt_split_forward(&s, &m, bad, tgt, B, T)));
        CHECK_EQ_INT(m.status, GPT_ETOKEN);
        /* new weights, as after an optimizer step: the twins read them too */
        randomize_params(&m, 6);
        const float whole2 = gpt_forward(&m, inp, tgt, B, T);
        CHECK(whole2 != whole);
        CHECK_NEAR(gpt_split_forward(&s, &m, inp, tgt, B, T), whole2, 2e-6 * fabs(whole2));
        CHECK(s.active);
        gpt_split_free(&s);
        free(ref), free(g1), free(acc);
        gpt_free(&m);
    }
    CHECK_EQ_INT(gpt_split_ways(NULL, 2, 4), 1);
}
