/*
 * test_gpt_ref.c — the whole C GPT (src/model/gpt.c over src/nn, librope for
 * RoPE, src/model/adamw.c) against an independent PyTorch float64 reference
 * (tests/ref/gen_gpt_ref.py writes tests/ref/gpt_ref_<pe>.bin for the five
 * position encodings none, learned, sinusoidal, rope, alibi): logits, mean
 * loss, every parameter gradient tensor by tensor, then 10 AdamW steps on one
 * batch (loss and gradient norm at each step, and the final parameters).
 * A missing, truncated or corrupt fixture is a failure, never a skip.
 *
 * Tolerances. The reference runs in float64 on the same float32-rounded
 * weights, so every difference is the C code's float32 rounding. At the
 * fixture scale (V 37, L 2, C 16, logits O(5), gradients up to O(1)), float
 * rounding through ~10 layers of sums of <= 64 terms gives relative errors of
 * a few 1e-6; the tolerances below leave 10-100x margin over the measured
 * worst case (given next to each), while a wrong sign, a missing term, a
 * wrong scale or a swapped pair layout moves values by >= 1e-2 relative.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "model/adamw.h"
#include "model/gpt.h"

/* ------------------------------------------------------------ fixture reader */

#define REF_MAGIC "RGPTREF1"
#define REF_VERSION 1u
#define REF_N_INTS 13
#define REF_N_DBLS 8
#define REF_HEADER_BYTES (8 + 4 + 4 + 4 * REF_N_INTS + 8 * REF_N_DBLS + 8)
#define REF_MAX_STEPS 1000

typedef struct {
    int V, L, NH, C, maxT, B, T, pe, rope_layout, rotary_dim, n_steps, warmup, max_steps;
    double rope_base, lr, min_lr, beta1, beta2, eps, weight_decay, grad_clip;
    size_t num_params;
    float *params;       /* (num_params) */
    int *inputs;         /* (B*T) */
    int *targets;        /* (B*T) */
    float *logits;       /* (B*T*V) */
    float loss;
    float *grads;        /* (num_params) */
    float *step_loss;    /* (n_steps + 1) */
    float *step_norm;    /* (n_steps) */
    float *final_params; /* (num_params) */
    unsigned char *mem;  /* the whole file; the arrays above are decoded copies */
} gpt_ref;

/* Little-endian decoding, byte by byte: independent of the host's order. */
static uint32_t rd_u32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t rd_u64(const unsigned char *p) {
    return (uint64_t)rd_u32(p) | (uint64_t)rd_u32(p + 4) << 32;
}
static float rd_f32(const unsigned char *p) {
    uint32_t u = rd_u32(p);
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static double rd_f64(const unsigned char *p) {
    uint64_t u = rd_u64(p);
    double d;
    memcpy(&d, &u, 8);
    return d;
}

static uint32_t fnv1a32(const unsigned char *p, size_t n) {
    uint32_t h = 0x811C9DC5u;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x01000193u;
    return h;
}

static void ref_free(gpt_ref *r) {
    free(r->params);
    free(r->inputs);
    free(r->targets);
    free(r->logits);
    free(r->grads);
    free(r->step_loss);
    free(r->step_norm);
    free(r->final_params);
    free(r->mem);
    memset(r, 0, sizeof *r);
}

/* Cursor over the file body: every read is checked against the length. */
typedef struct { const unsigned char *p; size_t left; int bad; } cursor;

static const unsigned char *take(cursor *c, size_t n) {
    if (c->bad || n > c->left) { c->bad = 1; return NULL; }
    const unsigned char *q = c->p;
    c->p += n;
    c->left -= n;
    return q;
}
static float *take_f32(cursor *c, size_t n) {
    if (n > SIZE_MAX / 4) { c->bad = 1; return NULL; }
    const unsigned char *q = take(c, n * 4);
    float *out = q ? malloc((n ? n : 1) * sizeof(float)) : NULL;
    if (q && !out) c->bad = 1;
    for (size_t i = 0; out && i < n; i++) out[i] = rd_f32(q + 4 * i);
    return out;
}
static int *take_i32(cursor *c, size_t n) {
    if (n > SIZE_MAX / 4) { c->bad = 1; return NULL; }
    const unsigned char *q = take(c, n * 4);
    int *out = q ? malloc((n ? n : 1) * sizeof(int)) : NULL;
    if (q && !out) c->bad = 1;
    for (size_t i = 0; out && i < n; i++) out[i] = (int32_t)rd_u32(q + 4 * i);
    return out;
}

/* Loads path into *r; returns NULL or a message naming what is wrong. */
static const char *ref_load(gpt_ref *r, const char *path) {
    memset(r, 0, sizeof *r);
    FILE *f = fopen(path, "rb");
    if (!f) return "cannot open the fixture (run /usr/bin/python3 tests/ref/gen_gpt_ref.py)";
    if (fseek(f, 0, SEEK_END) != 0) { fclose(f); return "cannot seek"; }
    long len = ftell(f);
    if (len < REF_HEADER_BYTES + 4 || len > (64L << 20)) { fclose(f); return "file size out of range"; }
    rewind(f);
    r->mem = malloc((size_t)len);
    if (!r->mem) { fclose(f); return "out of memory"; }
    size_t got = fread(r->mem, 1, (size_t)len, f);
    fclose(f);
    if (got != (size_t)len) return "short read";
    size_t n = (size_t)len;
    if (memcmp(r->mem, REF_MAGIC, 8) != 0) return "bad magic";
    if (rd_u32(r->mem + 8) != REF_VERSION) return "unsupported version";
    if (rd_u32(r->mem + 12) != REF_HEADER_BYTES) return "unexpected header size";
    if (fnv1a32(r->mem, n - 4) != rd_u32(r->mem + n - 4)) return "checksum mismatch";

    const unsigned char *h = r->mem + 16;
    int ints[REF_N_INTS];
    for (int i = 0; i < REF_N_INTS; i++) ints[i] = (int32_t)rd_u32(h + 4 * i);
    r->V = ints[0]; r->L = ints[1]; r->NH = ints[2]; r->C = ints[3]; r->maxT = ints[4];
    r->B = ints[5]; r->T = ints[6]; r->pe = ints[7]; r->rope_layout = ints[8];
    r->rotary_dim = ints[9]; r->n_steps = ints[10]; r->warmup = ints[11]; r->max_steps = ints[12];
    for (int i = 0; i < REF_N_INTS; i++)
        if (ints[i] < 0 || ints[i] > (1 << 20)) return "header integer out of range";
    if (r->n_steps > REF_MAX_STEPS) return "too many steps";
    h += 4 * REF_N_INTS;
    double d[REF_N_DBLS];
    for (int i = 0; i < REF_N_DBLS; i++) d[i] = rd_f64(h + 8 * i);
    r->rope_base = d[0]; r->lr = d[1]; r->min_lr = d[2]; r->beta1 = d[3]; r->beta2 = d[4];
    r->eps = d[5]; r->weight_decay = d[6]; r->grad_clip = d[7];
    uint64_t np = rd_u64(h + 8 * REF_N_DBLS);
    if (np > (uint64_t)n) return "num_params larger than the file";
    r->num_params = (size_t)np;

    size_t BT = (size_t)r->B * (size_t)r->T;
    cursor c = { r->mem + REF_HEADER_BYTES, n - REF_HEADER_BYTES - 4, 0 };
    r->params = take_f32(&c, r->num_params);
    r->inputs = take_i32(&c, BT);
    r->targets = take_i32(&c, BT);
    r->logits = take_f32(&c, BT * (size_t)r->V);
    float *loss = take_f32(&c, 1);
    if (loss) { r->loss = *loss; free(loss); }
    r->grads = take_f32(&c, r->num_params);
    r->step_loss = take_f32(&c, (size_t)r->n_steps + 1);
    r->step_norm = take_f32(&c, (size_t)r->n_steps);
    r->final_params = take_f32(&c, r->num_params);
    if (c.bad) return "file shorter than its header says";
    if (c.left != 0) return "trailing bytes after the last section";
    return NULL;
}

/* ------------------------------------------------------------ comparisons */

/* Worst |a - b| / (rtol * max(|a|,|b|) + atol) over n pairs; reports the first
 * three elements outside tolerance with the tensor's name. */
static void compare(const char *what, const float *got, const float *want, size_t n,
                    double rtol, double atol) {
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        double a = got[i], b = want[i];
        double tol = rtol * fmax(fabs(a), fabs(b)) + atol;
        if (!(fabs(a - b) <= tol)) {
            if (bad < 3)
                test_fail(__FILE__, __LINE__, "%s[%zu]: C %.9g vs PyTorch %.9g (tol %.3g)",
                          what, i, a, b, tol);
            bad++;
        }
    }
    if (bad > 3) test_fail(__FILE__, __LINE__, "%s: %d of %zu elements outside tolerance", what, bad, n);
}

static float max_abs(const float *x, size_t n) {
    float m = 0.0f;
    for (size_t i = 0; i < n; i++) m = fmaxf(m, fabsf(x[i]));
    return m;
}

/* Loads the fixture and builds a model with its config and weights; returns 0
 * (after recording a failure) if either step fails. */
static int setup(gpt_ref *r, gpt *m, const char *path, pe_type want_pe) {
    const char *err = ref_load(r, path);
    if (err) {
        test_fail(__FILE__, __LINE__, "%s: %s", path, err);
        return 0;
    }
    CHECK_EQ_INT(r->pe, want_pe);
    gpt_config cfg = gpt_config_default();
    cfg.V = r->V;
    cfg.L = r->L;
    cfg.NH = r->NH;
    cfg.C = r->C;
    cfg.maxT = r->maxT;
    cfg.pe = (pe_type)r->pe;
    cfg.rope_layout = (rope_layout)r->rope_layout;
    cfg.rope_base = r->rope_base;
    cfg.rope_fraction = 1.0;
    if (gpt_init(m, &cfg, 1) != GPT_OK) {
        test_fail(__FILE__, __LINE__, "%s: gpt_init failed for the fixture config", path);
        return 0;
    }
    if (r->pe == PE_ROPE) {
        /* the contract's RoPE: interleaved pairs, base 10000, full rotary */
        CHECK_EQ_INT(m->rotary_dim, r->rotary_dim);
        CHECK_EQ_INT(r->rotary_dim, r->C / r->NH);
        CHECK_EQ_INT(r->rope_layout, ROPE_LAYOUT_INTERLEAVED);
        CHECK(r->rope_base == 10000.0);
    }
    if (gpt_set_params(m, r->params, r->num_params) != GPT_OK) {
        test_fail(__FILE__, __LINE__, "%s: %zu params in the file, model has %zu", path,
                  r->num_params, gpt_num_params(m));
        return 0;
    }
    return 1;
}

/* Forward (logits, loss) and backward (every tensor's gradient). */
static void check_forward_backward(const char *path, pe_type pe) {
    gpt_ref r;
    gpt m;
    memset(&m, 0, sizeof m);
    if (!setup(&r, &m, path, pe)) goto done;
    size_t BT = (size_t)r.B * (size_t)r.T;

    float loss = gpt_forward(&m, r.inputs, r.targets, r.B, r.T);
    /* logits O(5): measured worst |diff| 3.1e-6 (learned), 1.8e-6 (rope),
     * 10% of rtol 1e-5 + atol 2e-5 */
    compare("logits", m.acts.logits, r.logits, BT * (size_t)r.V, 1e-5, 2e-5);
    /* mean of 16 losses O(5): measured |diff| 4.8e-7 */
    CHECK_NEAR(loss, r.loss, 5e-6);

    gpt_zero_grad(&m);
    CHECK_EQ_INT(gpt_backward(&m), GPT_OK);
    /* Per tensor: rtol 1e-5 plus an absolute floor of 1e-5 of the tensor's
     * largest reference gradient, since small elements of a tensor are sums
     * of cancelling O(max) terms whose float error scales with max, not with
     * the element. Measured worst |diff| 7.3e-7 (rope dqkvw), at most 12% of
     * the tolerance in any tensor. */
    size_t off = 0;
    for (int i = 0; i < GPT_NUM_TENSORS; i++) {
        size_t sz = m.tensor_sizes[i];
        float scale = max_abs(r.grads + off, sz);
        char name[64];
        snprintf(name, sizeof name, "d%s", gpt_tensor_name(i));
        compare(name, m.grads_memory + off, r.grads + off, sz, 1e-5, 1e-5 * scale + 1e-8);
        off += sz;
    }
done:
    gpt_free(&m);
    ref_free(&r);
}

/* n_steps AdamW steps on the fixture batch with its schedule. */
static void check_training(const char *path, pe_type pe) {
    gpt_ref r;
    gpt m;
    memset(&m, 0, sizeof m);
    if (!setup(&r, &m, path, pe)) goto done;

    adamw opt = adamw_default();
    opt.beta1 = (float)r.beta1;
    opt.beta2 = (float)r.beta2;
    opt.eps = (float)r.eps;
    opt.weight_decay = (float)r.weight_decay;
    opt.grad_clip = (float)r.grad_clip;
    CHECK(opt.beta1 == 0.9f && opt.beta2 == 0.99f && opt.grad_clip == 1.0f);   /* the contract's values */
    for (int s = 0; s < r.n_steps; s++) {
        opt.lr = lr_at(s, r.max_steps, r.warmup, (float)r.lr, (float)r.min_lr);
        float loss = gpt_forward(&m, r.inputs, r.targets, r.B, r.T);
        /* losses fall from ~5 to ~0.3; float drift compounds through the
         * steps: measured worst relative diff 1.2e-6; rtol 2e-5 */
        CHECK_CLOSE(loss, r.step_loss[s], 2e-5, 1e-6);
        gpt_zero_grad(&m);
        CHECK_EQ_INT(gpt_backward(&m), GPT_OK);
        double norm = adamw_step(&opt, m.params_memory, m.grads_memory, m.m_memory, m.v_memory,
                                 m.decay_mask, m.num_params);
        /* global norm O(1..8): same drift, measured worst 4.2e-6; rtol 5e-5 */
        CHECK_CLOSE(norm, r.step_norm[s], 5e-5, 1e-7);
    }
    float loss = gpt_forward(&m, r.inputs, r.targets, r.B, r.T);
    CHECK_CLOSE(loss, r.step_loss[r.n_steps], 2e-5, 1e-6);
    /* Parameters after the steps: Adam moves each by ~lr per step whatever
     * its gradient size, so a parameter whose gradient is ~0 can move
     * differently under float noise; the bound is absolute, 2e-3 (10% of one
     * peak-lr step; measured worst 2.1e-4 with RoPE, 5e-7 learned). A wrong
     * decay mask or bias correction moves many by >= lr. */
    /* Without RoPE the key bias has an exactly zero gradient (adding q.b_k to
     * every score of a query leaves its softmax unchanged), so its float
     * "gradient" is rounding noise that Adam turns into +-lr steps of either
     * sign: those C entries are excluded (replaced by the reference) here;
     * their gradient is checked (~0) by the forward_backward test. */
    float *got = malloc(r.num_params * sizeof(float));
    if (!got) goto done;
    memcpy(got, m.params_memory, r.num_params * sizeof(float));
    if (pe != PE_ROPE) {
        size_t qkvb = (size_t)(m.params.qkvb - m.params_memory), C = (size_t)r.C;
        for (size_t l = 0; l < (size_t)r.L; l++)
            for (size_t i = C; i < 2 * C; i++)
                got[qkvb + l * 3 * C + i] = r.final_params[qkvb + l * 3 * C + i];
    }
    compare("final params", got, r.final_params, r.num_params, 0.0, 2e-3);
    free(got);
done:
    gpt_free(&m);
    ref_free(&r);
}

TEST(gpt_ref_none_forward_backward) {
    check_forward_backward("tests/ref/gpt_ref_none.bin", PE_NONE);
}
TEST(gpt_ref_learned_forward_backward) {
    check_forward_backward("tests/ref/gpt_ref_learned.bin", PE_LEARNED);
}
TEST(gpt_ref_sinusoidal_forward_backward) {
    check_forward_backward("tests/ref/gpt_ref_sinusoidal.bin", PE_SINUSOIDAL);
}
TEST(gpt_ref_rope_forward_backward) {
    check_forward_backward("tests/ref/gpt_ref_rope.bin", PE_ROPE);
}
TEST(gpt_ref_alibi_forward_backward) {
    check_forward_backward("tests/ref/gpt_ref_alibi.bin", PE_ALIBI);
}
TEST(gpt_ref_none_adamw_steps) {
    check_training("tests/ref/gpt_ref_none.bin", PE_NONE);
}
TEST(gpt_ref_learned_adamw_steps) {
    check_training("tests/ref/gpt_ref_learned.bin", PE_LEARNED);
}
TEST(gpt_ref_sinusoidal_adamw_steps) {
    check_training("tests/ref/gpt_ref_sinusoidal.bin", PE_SINUSOIDAL);
}
TEST(gpt_ref_rope_adamw_steps) {
    check_training("tests/ref/gpt_ref_rope.bin", PE_ROPE);
}
TEST(gpt_ref_alibi_adamw_steps) {
    check_training("tests/ref/gpt_ref_alibi.bin", PE_ALIBI);
}

/* The reader must reject what it cannot trust: a truncated copy and one
 * flipped byte (checksum) of a real fixture. */
TEST(gpt_ref_reader_rejects_damaged_files) {
    gpt_ref r;
    const char *err = ref_load(&r, "tests/ref/gpt_ref_learned.bin");
    CHECK(err == NULL);
    size_t n = 0;
    unsigned char *copy = NULL;
    if (err == NULL) {
        /* file length: header + sections + checksum, recomputed from fields */
        size_t BT = (size_t)r.B * r.T;
        n = REF_HEADER_BYTES + 4 * (3 * r.num_params + 2 * BT + BT * r.V + 1 +
                                    2 * (size_t)r.n_steps + 1) + 4;
        copy = malloc(n);
        if (copy) memcpy(copy, r.mem, n);
    }
    ref_free(&r);
    if (!copy) return;
    char path[512];
    snprintf(path, sizeof path, "%s/damaged.bin", test_tmp_dir());
    for (int k = 0; k < 2; k++) {
        FILE *f = fopen(path, "wb");
        CHECK(f != NULL);
        if (!f) break;
        if (k == 0) {
            fwrite(copy, 1, n - 100, f);   /* truncated */
        } else {
            copy[REF_HEADER_BYTES + 10] ^= 0x40;   /* one bit of a parameter */
            fwrite(copy, 1, n, f);
        }
        fclose(f);
        CHECK(ref_load(&r, path) != NULL);
        ref_free(&r);
    }
    free(copy);
}
