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
