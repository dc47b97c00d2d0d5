/*
 * test_llama2c.c — the Llama model, llama2.c files and the BPE tokenizer,
 * all on tiny models and files the tests write themselves:
 *  - the model's logits against a plain double-precision reference forward
 *    written here (RoPE angles in double, GQA head mapping spelled out);
 *  - write a random model as a llama2.c file, load it (mmap, not copied),
 *    and get bit-identical logits to the in-memory model;
 *  - KV-cache decode, token by token, against a full recompute;
 *  - truncated, padded and corrupted files fail with their specific codes;
 *  - tokenizer.bin round trip, vocabulary mismatch, and BPE encode/decode on
 *    a hand-built vocabulary with byte fallback.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test.h"
#include "data/bpe.h"
#include "model/llama.h"
#include "model/llama2c.h"
#include "model/adamw.h"
#include "model/llama_train.h"
#include "model/cmd_export.h"
#include "model/cmd_generate_llama.h"
#include "util/io.h"

/* A tiny GQA shape with odd-ish sizes: HS = 8, 4 query heads on 2 kv heads. */
static llama_config tiny_cfg(int shared) {
    llama_config c = llama_config_default();
    c.dim = 32;
    c.hidden_dim = 44;
    c.n_layers = 2;
    c.n_heads = 4;
    c.n_kv_heads = 2;
    c.vocab_size = 51;
    c.seq_len = 24;
    c.shared_classifier = shared;
    return c;
}

static const int SEQ[] = { 3, 17, 50, 0, 9, 9, 23, 41, 7, 12, 30, 2 };
#define NSEQ ((int)(sizeof SEQ / sizeof SEQ[0]))

/* ------------------------------------------------ double reference forward */

static void ref_matvec(double *out, const float *w, const double *x, int in, int outn) {
    for (int o = 0; o < outn; o++) {
        double s = 0.0;
        for (int i = 0; i < in; i++) s += (double)w[(size_t)o * in + i] * x[i];
        out[o] = s;
    }
}

static void ref_rmsnorm(double *out, const double *x, const float *w, int C) {
    double ss = 0.0;
    for (int i = 0; i < C; i++) ss += x[i] * x[i];
    double r = 1.0 / sqrt(ss / C + 1e-5);
    for (int i = 0; i < C; i++) out[i] = x[i] * r * w[i];
}

/* Rotates each head's pairs (2i, 2i+1) by p * base^(-2i/HS) (Su et al. 2021). */
static void ref_rope(double *v, int nh, int HS, int p, double base) {
    for (int h = 0; h < nh; h++)
        for (int i = 0; i < HS / 2; i++) {
            double th = p * pow(base, -2.0 * i / HS);
            double a = v[h * HS + 2 * i], b = v[h * HS + 2 * i + 1];
            v[h * HS + 2 * i] = a * cos(th) - b * sin(th);
            v[h * HS + 2 * i + 1] = a * sin(th) + b * cos(th);
        }
}

/* logits (T, V) of tokens at positions 0..T-1. */
static void ref_forward(double *logits, const llama_config *c, const llama_weights *w, const int *tok, int T) {
    int C = c->dim, H = c->hidden_dim, NH = c->n_heads, KVH = c->n_kv_heads, HS = C / NH, V = c->vocab_size;
    int kvd = KVH * HS;
    double *x = calloc((size_t)T * C, sizeof(double)), *xb = malloc(sizeof(double) * C);
    double *q = malloc(sizeof(double) * C), *k = malloc(sizeof(double) * (size_t)T * kvd);
    double *v = malloc(sizeof(double) * (size_t)T * kvd), *o = malloc(sizeof(double) * (size_t)T * C);
    double *h1 = malloc(sizeof(double) * H), *h3 = malloc(sizeof(double) * H), *tmp = malloc(sizeof(double) * C);
    double *att = malloc(sizeof(double) * T);
    for (int t = 0; t < T; t++)
        for (int i = 0; i < C; i++) x[(size_t)t * C + i] = w->token_embedding[(size_t)tok[t] * C + i];
    for (int l = 0; l < c->n_layers; l++) {
        const float *wq = w->wq + (size_t)l * C * C, *wk = w->wk + (size_t)l * kvd * C;
        const float *wv = w->wv + (size_t)l * kvd * C, *wo = w->wo + (size_t)l * C * C;
        for (int t = 0; t < T; t++) {
            ref_rmsnorm(xb, x + (size_t)t * C, w->rms_att + (size_t)l * C, C);
            ref_matvec(k + (size_t)t * kvd, wk, xb, C, kvd);
            ref_matvec(v + (size_t)t * kvd, wv, xb, C, kvd);
            ref_rope(k + (size_t)t * kvd, KVH, HS, t, c->rope_base);
        }
        for (int t = 0; t < T; t++) {
            ref_rmsnorm(xb, x + (size_t)t * C, w->rms_att + (size_t)l * C, C);
            ref_matvec(q, wq, xb, C, C);
            ref_rope(q, NH, HS, t, c->rope_base);
            for (int h = 0; h < NH; h++) {
                int g = h / (NH / KVH);
                double mx = -1e300, sum = 0.0;
                for (int j = 0; j <= t; j++) {
                    double s = 0.0;
                    for (int i = 0; i < HS; i++) s += q[h * HS + i] * k[(size_t)j * kvd + g * HS + i];
                    att[j] = s / sqrt((double)HS);
                    if (att[j] > mx) mx = att[j];
                }
                for (int j = 0; j <= t; j++) sum += (att[j] = exp(att[j] - mx));
                for (int i = 0; i < HS; i++) {
                    double s = 0.0;
                    for (int j = 0; j <= t; j++) s += att[j] / sum * v[(size_t)j * kvd + g * HS + i];
                    o[(size_t)t * C + h * HS + i] = s;
                }
            }
        }
        for (int t = 0; t < T; t++) {
            ref_matvec(tmp, wo, o + (size_t)t * C, C, C);
            for (int i = 0; i < C; i++) x[(size_t)t * C + i] += tmp[i];
            ref_rmsnorm(xb, x + (size_t)t * C, w->rms_ffn + (size_t)l * C, C);
            ref_matvec(h1, w->w1 + (size_t)l * H * C, xb, C, H);
            ref_matvec(h3, w->w3 + (size_t)l * H * C, xb, C, H);
            for (int i = 0; i < H; i++) h1[i] = h1[i] / (1.0 + exp(-h1[i])) * h3[i];
            ref_matvec(tmp, w->w2 + (size_t)l * C * H, h1, H, C);
            for (int i = 0; i < C; i++) x[(size_t)t * C + i] += tmp[i];
        }
    }
    for (int t = 0; t < T; t++) {
        ref_rmsnorm(xb, x + (size_t)t * C, w->rms_final, C);
        ref_matvec(logits + (size_t)t * V, w->wcls, xb, C, V);
    }
    free(x), free(xb), free(q), free(k), free(v), free(o), free(h1), free(h3), free(tmp), free(att);
}

/* Float model vs double reference: rtol 1e-4 + atol 1e-4. Float rounding
 * through two blocks of sums of <= 44 terms and a softmax stays ~1e-5 on
 * O(1) logits; a wrong RoPE pair, head mapping or norm is O(0.1). */
TEST(llama_forward_matches_double_reference) {
    for (int shared = 0; shared <= 1; shared++) {
        llama_config c = tiny_cfg(shared);
        llama_model m;
        CHECK_EQ_INT(llama_init_random(&m, &c, 7, 0.3f, NSEQ), LLAMA_OK);
        CHECK_EQ_INT(llama_forward(&m, SEQ, NSEQ, 0, 1), LLAMA_OK);
        double *want = malloc(sizeof(double) * NSEQ * c.vocab_size);
        ref_forward(want, &c, &m.w, SEQ, NSEQ);
        int bad = 0;
        for (int i = 0; i < NSEQ * c.vocab_size; i++) {
            double a = m.all_logits[i], b = want[i];
            if (!(fabs(a - b) <= 1e-4 * fmax(fabs(a), fabs(b)) + 1e-4)) {
                if (bad++ < 3) test_fail(__FILE__, __LINE__, "shared=%d logit %d: %.9g vs reference %.9g", shared, i, a, b);
            }
        }
        CHECK_EQ_INT(bad, 0);
        /* The logits are not trivially equal across positions (attention works). */
        CHECK(fabs(m.all_logits[0] - m.all_logits[(size_t)5 * c.vocab_size]) > 1e-3);
        free(want);
        llama_free(&m);
    }
}

/* Decoding one token at a time through the cache (matvec path) vs one full
 * forward of the whole sequence (matmul path): the same maths summed in a
 * different order, so 2e-5 relative + 2e-5 absolute on O(1) logits; a stale
 * or misplaced cache entry or a wrong position is O(0.1). The prompt of 5
 * tokens is prefilled in one call first. */
TEST(llama_kv_cache_decode_matches_full_recompute) {
    llama_config c = tiny_cfg(0);
    llama_model full, inc;
    CHECK_EQ_INT(llama_init_random(&full, &c, 11, 0.3f, NSEQ), LLAMA_OK);
    CHECK_EQ_INT(llama_init_borrowed(&inc, &c, &full.w, NSEQ), LLAMA_OK);
    CHECK_EQ_INT(llama_forward(&full, SEQ, NSEQ, 0, 1), LLAMA_OK);
    int P = 5;
    CHECK_EQ_INT(llama_forward(&inc, SEQ, P, 0, 1), LLAMA_OK);
    double worst = 0.0;
    for (int t = 0; t < NSEQ; t++) {
        if (t >= P) CHECK_EQ_INT(llama_forward(&inc, SEQ + t, 1, t, 0), LLAMA_OK);
        const float *got = t >= P ? inc.logits : inc.all_logits + (size_t)t * c.vocab_size;
        for (int i = 0; i < c.vocab_size; i++) {
            float a = got[i], b = full.all_logits[(size_t)t * c.vocab_size + i];
            CHECK_CLOSE(a, b, 2e-5, 2e-5);
            if (fabs(a - b) > worst) worst = fabs(a - b);
        }
    }
    CHECK(worst < 2e-5);
    /* Bad calls are refused, nothing crashes. */
    int bad_tok = c.vocab_size;
    CHECK_EQ_INT(llama_forward(&inc, &bad_tok, 1, 0, 0), LLAMA_ETOKEN);
    CHECK_EQ_INT(llama_forward(&inc, SEQ, 1, c.seq_len, 0), LLAMA_EPOS);
    CHECK_EQ_INT(llama_forward(&inc, SEQ, NSEQ + 1, 0, 0), LLAMA_EPOS);
    llama_free(&inc);
    llama_free(&full);
}

/* ------------------------------------------------ training gradients */

/* Mean cross-entropy of the double reference over B rows of T tokens. */
static double ref_loss(const llama_config *c, const llama_weights *w, const int *inp, const int *tgt, int B, int T) {
    double *lg = malloc(sizeof(double) * (size_t)T * c->vocab_size), L = 0.0;
    for (int b = 0; b < B; b++) {
        ref_forward(lg, c, w, inp + b * T, T);
        for (int t = 0; t < T; t++) {
            const double *r = lg + (size_t)t * c->vocab_size;
            double mx = r[0], s = 0.0;
            for (int v = 1; v < c->vocab_size; v++) mx = fmax(mx, r[v]);
            for (int v = 0; v < c->vocab_size; v++) s += exp(r[v] - mx);
            L += log(s) + mx - r[tgt[b * T + t]];
        }
    }
    free(lg);
    return L / (B * T);
}

/* Backward vs central finite differences of the double reference loss, on
 * 5 entries of every tensor, spread over it (both classifier variants). Steps: the float
 * entry moves to fl(w +- 1e-3) and the difference quotient divides by the
 * exact distance between the two floats, so only truncation error
 * (~1e-6 times the third derivative) and the double forward's rounding
 * (~1e-13 / 2e-3) remain. Tolerance rtol 2e-3 + atol 2e-5: float rounding
 * of the backward at these sizes is ~1e-6 relative; a missing term, wrong
 * sign or wrong head mapping is O(10%) or more. The float loss must match
 * the double one within 1e-5 (as in the forward test). */
TEST(llama_train_gradients_match_finite_differences) {
    for (int shared = 0; shared <= 1; shared++) {
        llama_config c = tiny_cfg(shared);
        llama_trainer tr;
        CHECK_EQ_INT(llama_train_init(&tr, &c, 3), LLAMA_OK);
        llama_model src;   /* larger weights than the 0.02 init, so every path carries gradient */
        CHECK_EQ_INT(llama_init_random(&src, &c, 21 + shared, 0.3f, 1), LLAMA_OK);
        memcpy(tr.params, src.params, tr.n_params * sizeof(float));
        llama_free(&src);
        enum { B = 2, T = 6 };
        int inp[B * T], tgt[B * T];
        for (int i = 0; i < B * T; i++) inp[i] = SEQ[i], tgt[i] = SEQ[(i + 5) % NSEQ];
        float loss = 0.0f;
        CHECK_EQ_INT(llama_train_forward(&tr, inp, tgt, B, T, &loss), LLAMA_OK);
        llama_train_zero_grad(&tr);
        CHECK_EQ_INT(llama_train_backward(&tr), LLAMA_OK);
        double L0 = ref_loss(&c, &tr.w, inp, tgt, B, T);
        CHECK_NEAR(loss, L0, 1e-5);
        const llama_weights *w = &tr.w;
        const float *starts[] = { w->token_embedding, w->rms_att, w->wq, w->wk, w->wv, w->wo, w->rms_ffn,
                                  w->w1, w->w2, w->w3, w->rms_final, w->wcls };
        size_t ends[12];
        for (int i = 0; i < 11; i++) ends[i] = (size_t)((i < 10 ? starts[i + 1] : w->rms_final + c.dim) - tr.params);
        ends[11] = shared ? ends[0] : tr.n_params;
        double worst = 0.0;
        for (int ti = 0; ti < 12; ti++) {
            size_t a = (size_t)(starts[ti] - tr.params), n = ends[ti] - a;
            for (int s = 0; s < 5; s++) {
                /* Embedding: rows of tokens that occur (the others have zero gradient). */
                size_t i = ti == 0 || (ti == 11 && shared) ? (size_t)inp[s] * c.dim + (size_t)(s * 7 % c.dim)
                                                           : a + (n * (size_t)(2 * s + 1)) / 10;
                float save = tr.params[i];
                float wp = save + 1e-3f, wm = save - 1e-3f;
                tr.params[i] = wp;
                double lp = ref_loss(&c, &tr.w, inp, tgt, B, T);
                tr.params[i] = wm;
                double lm = ref_loss(&c, &tr.w, inp, tgt, B, T);
                tr.params[i] = save;
                double fd = (lp - lm) / ((double)wp - (double)wm);
                double g = tr.grads[i];
                double err = fabs(g - fd) / (2e-3 * fmax(fabs(g), fabs(fd)) + 2e-5);
                if (err > worst) worst = err;
                if (!(err <= 1.0))
                    test_fail(__FILE__, __LINE__, "shared=%d tensor %d index %zu: backward %.9g vs numeric %.9g",
                              shared, ti, i, g, fd);
            }
        }
        CHECK(worst <= 1.0);
        /* Accumulation: a second backward doubles the gradients. */
        size_t iq = (size_t)(w->wq - tr.params) + 5;
        float g1 = tr.grads[iq];
        CHECK_EQ_INT(llama_train_backward(&tr), LLAMA_OK);
        CHECK_CLOSE(tr.grads[iq], 2.0f * g1, 1e-6, 0);
        CHECK(g1 != 0.0f);
        llama_train_free(&tr);
    }
}

/* ------------------------------------------------ llama2.c files */

static void tmp_path(char *out, size_t n, const char *name) {
    io_path_join(out, n, test_tmp_dir(), name);
}

static int write_bytes(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    int ok = fwrite(p, 1, n, f) == n;
    return fclose(f) == 0 && ok ? 0 : -1;
}

TEST(llama2c_write_mmap_load_same_logits) {
    for (int shared = 0; shared <= 1; shared++) {
        llama_config c = tiny_cfg(shared);
        llama_model mem;
        CHECK_EQ_INT(llama_init_random(&mem, &c, 99 + shared, 0.3f, NSEQ), LLAMA_OK);
        char path[512], err[256];
        tmp_path(path, sizeof path, shared ? "tiny_shared.bin" : "tiny_unshared.bin");
        CHECK_EQ_INT(llama2c_write(path, &c, &mem.w, err, sizeof err), L2C_OK);
        unsigned char *data;
        size_t len;
        CHECK(io_read_file(path, &data, &len, err, sizeof err) == 0);
        CHECK_EQ_INT(len, llama2c_file_bytes(&c));
        int32_t v5;
        memcpy(&v5, data + 20, 4);
        CHECK_EQ_INT(v5, shared ? c.vocab_size : -c.vocab_size);   /* sign = classifier flag */
        free(data);

        llama2c_file f;
        CHECK_EQ_INT(llama2c_open(&f, path, err, sizeof err), L2C_OK);
        CHECK_EQ_INT(f.cfg.dim, c.dim);
        CHECK_EQ_INT(f.cfg.n_kv_heads, c.n_kv_heads);
        CHECK_EQ_INT(f.cfg.vocab_size, c.vocab_size);
        CHECK_EQ_INT(f.cfg.shared_classifier, shared);
        /* Weights are views into the mapping, not copies. */
        const char *lo = f.map, *hi = lo + f.map_len;
        CHECK((const char *)f.w.wq > lo && (const char *)f.w.wq < hi);
        CHECK((const char *)f.w.wcls >= lo && (const char *)(f.w.wcls + (size_t)c.vocab_size * c.dim) <= hi);
        CHECK(shared ? f.w.wcls == f.w.token_embedding : (const char *)(f.w.wcls + (size_t)c.vocab_size * c.dim) == hi);
        llama_model disk;
        CHECK_EQ_INT(llama_init_borrowed(&disk, &f.cfg, &f.w, NSEQ), LLAMA_OK);
        CHECK_EQ_INT(llama_forward(&mem, SEQ, NSEQ, 0, 1), LLAMA_OK);
        CHECK_EQ_INT(llama_forward(&disk, SEQ, NSEQ, 0, 1), LLAMA_OK);
        /* Same weights, same code: identical bits. */
        CHECK(memcmp(mem.all_logits, disk.all_logits, sizeof(float) * NSEQ * c.vocab_size) == 0);
        llama_free(&disk);
        llama2c_close(&f);
        llama_free(&mem);
    }
}

/* Writes the tiny model, then damaged copies; each must fail with its code. */
TEST(llama2c_bad_files_refused_with_specific_errors) {
    llama_config c = tiny_cfg(1);
    llama_model m;
    CHECK_EQ_INT(llama_init_random(&m, &c, 5, 0.3f, 4), LLAMA_OK);
    char path[512], bad[512], err[256];
    tmp_path(path, sizeof path, "good.bin");
    tmp_path(bad, sizeof bad, "bad.bin");
    CHECK_EQ_INT(llama2c_write(path, &c, &m.w, err, sizeof err), L2C_OK);
    llama_free(&m);
    unsigned char *data;
    size_t len;
    CHECK(io_read_file(path, &data, &len, err, sizeof err) == 0);
    unsigned char *copy = malloc(len + 8);
    llama2c_file f;

    struct { int field; int32_t value; int want; const char *what; } cases[] = {
        { 0, -32, L2C_EDIM, "negative dim" },
        { 0, 1 << 30, L2C_EDIM, "absurd dim" },
        { 1, 0, L2C_EDIM, "zero hidden_dim" },
        { 2, -1, L2C_EDIM, "negative layers" },
        { 3, 0, L2C_EDIM, "zero heads" },
        { 4, 0, L2C_EDIM, "zero kv heads" },
        { 5, 0, L2C_EDIM, "zero vocab" },
        { 5, INT32_MIN, L2C_EDIM, "vocab INT32_MIN" },
        { 6, 1 << 30, L2C_EDIM, "absurd seq_len" },
        { 3, 5, L2C_EHEADS, "heads not dividing dim" },
        { 4, 3, L2C_EHEADS, "kv heads not dividing heads" },
        { 3, 32, L2C_EHEADS, "odd head size" },
        { 0, 0x616b3432, L2C_EFORMAT, "version-1 magic" },
        { 6, 25, L2C_ETRUNC, "seq_len one larger (file too short)" },
        { 6, 23, L2C_ESIZE, "seq_len one smaller (file too long)" },
        { 5, -51, L2C_ETRUNC, "unshared flag without wcls" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        memcpy(copy, data, len);
        memcpy(copy + 4 * cases[i].field, &cases[i].value, 4);
        CHECK(write_bytes(bad, copy, len) == 0);
        err[0] = 0;
        int rc = llama2c_open(&f, bad, err, sizeof err);
        if (rc != cases[i].want) test_fail(__FILE__, __LINE__, "%s: status %d, want %d (%s)", cases[i].what, rc, cases[i].want, err);
        CHECK(f.map == NULL);
        CHECK(strlen(err) > 0 && strchr(err, '\n') == NULL);   /* one line */
    }
    /* Lengths: empty, header only, one float short, one float extra. */
    size_t lens[] = { 0, 27, 28, len - 4, len - 1 };
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        CHECK(write_bytes(bad, data, lens[i]) == 0);
        CHECK_EQ_INT(llama2c_open(&f, bad, err, sizeof err), L2C_ETRUNC);
    }
    memcpy(copy, data, len);
    memset(copy + len, 0, 4);
    CHECK(write_bytes(bad, copy, len + 4) == 0);
    CHECK_EQ_INT(llama2c_open(&f, bad, err, sizeof err), L2C_ESIZE);
    tmp_path(bad, sizeof bad, "does_not_exist.bin");
    CHECK_EQ_INT(llama2c_open(&f, bad, err, sizeof err), L2C_EOPEN);
    CHECK_EQ_INT(llama2c_open(&f, test_tmp_dir(), err, sizeof err), L2C_EOPEN);   /* a folder */
    /* The untouched file still opens. */
    CHECK_EQ_INT(llama2c_open(&f, path, err, sizeof err), L2C_OK);
    llama2c_close(&f);
    free(copy);
    free(data);
}

/* ------------------------------------------------ tokenizer */

/* A sentencepiece-style vocabulary: <unk>, BOS, EOS, 256 byte fallbacks,
 * then pieces with scores (higher merges first). */
static int sp_vocab(bpe_tokenizer *t) {
    static const char *extra[] = { " ", "a", "b", "c", "e", "h", "l", "o", "w", "r", "d",
                                   "he", "ll", "llo", "hello", " hello", " w", "or", " wor", " world",
                                   "ld", "ab", "abc", "\xe4\xb8\x96" /* U+4E16 */ };
    static const float extra_score[] = { -1, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2,
                                         -5, -4, -6, -3, -3.5f, -7, -6.5f, -8, -9,
                                         -8.5f, -10, -11, -2 };
    enum { NE = sizeof extra / sizeof extra[0] };
    const char *pieces[3 + 256 + NE];
    int lens[3 + 256 + NE];
    float scores[3 + 256 + NE];
    char fb[256][7];
    pieces[0] = "<unk>", pieces[1] = "\n<s>\n", pieces[2] = "\n</s>\n";
    for (int b = 0; b < 256; b++) {
        snprintf(fb[b], sizeof fb[b], "<0x%02X>", b);
        pieces[3 + b] = fb[b];
    }
    for (int i = 0; i < NE; i++) pieces[259 + i] = extra[i], scores[259 + i] = extra_score[i];
    for (int i = 0; i < 259; i++) scores[i] = 0.0f;
    for (int i = 0; i < 259 + NE; i++) lens[i] = (int)strlen(pieces[i]);
    return bpe_init(t, 259 + NE, pieces, lens, scores, NULL, 0);
}

static size_t decode_all(const bpe_tokenizer *t, const int *ids, size_t n, char *out) {
    size_t k = 0;
    unsigned char buf[64];
    for (size_t i = 0; i < n; i++) {
        size_t m = bpe_decode(t, i ? ids[i - 1] : -1, ids[i], buf);
        memcpy(out + k, buf, m);
        k += m;
    }
    out[k] = 0;
    return k;
}

TEST(bpe_encode_decode_sentencepiece_vocab) {
    bpe_tokenizer t;
    CHECK_EQ_INT(sp_vocab(&t), BPE_OK);
    CHECK_EQ_INT(t.sp_style, 1);
    int hello = bpe_lookup(&t, " hello", 6), world = bpe_lookup(&t, " world", 6);
    CHECK(hello > 258 && world > 258);
    int ids[64];
    size_t n;
    /* " hello" + " world" after the dummy prefix, BOS first, EOS last. */
    CHECK_EQ_INT(bpe_encode(&t, "hello world", 11, 1, 1, ids, 64, &n, NULL, 0), BPE_OK);
    CHECK_EQ_INT(n, 4);
    if (n == 4) {
        CHECK_EQ_INT(ids[0], 1);
        CHECK_EQ_INT(ids[1], hello);
        CHECK_EQ_INT(ids[2], world);
        CHECK_EQ_INT(ids[3], 2);
    }
    /* Byte fallback: "é" (C3 A9) is not a piece -> ids 3+0xC3, 3+0xA9;
     * U+4E16 is a piece -> one token; "abc" merges to one piece. */
    const char *txt = "abc\xc3\xa9\xe4\xb8\x96";
    CHECK_EQ_INT(bpe_encode(&t, txt, strlen(txt), 1, 0, ids, 64, &n, NULL, 0), BPE_OK);
    CHECK_EQ_INT(n, 6);
    if (n == 6) {
        CHECK_EQ_INT(ids[1], bpe_lookup(&t, " ", 1));   /* the dummy prefix, alone: " a" is no piece */
        CHECK_EQ_INT(ids[2], bpe_lookup(&t, "abc", 3));
        CHECK_EQ_INT(ids[3], 3 + 0xC3);
        CHECK_EQ_INT(ids[4], 3 + 0xA9);
        CHECK_EQ_INT(ids[5], bpe_lookup(&t, "\xe4\xb8\x96", 3));
    }
    /* Decode: BOS gives nothing printable here... and the round trip, with
     * the dummy-prefix space dropped after BOS (leading-space rule). */
    char out[256];
    CHECK_EQ_INT(bpe_encode(&t, "hello world", 11, 1, 0, ids, 64, &n, NULL, 0), BPE_OK);
    decode_all(&t, ids + 1, n - 1, out);   /* without BOS: the prefix space stays */
    CHECK(strcmp(out, " hello world") == 0);
    unsigned char buf[64];
    CHECK_EQ_INT(bpe_decode(&t, 1, hello, buf), 5);   /* after BOS */
    CHECK(memcmp(buf, "hello", 5) == 0);
    CHECK_EQ_INT(bpe_decode(&t, 5, 3 + 0xC3, buf), 1);
    CHECK_EQ_INT(buf[0], 0xC3);
    CHECK_EQ_INT(bpe_decode(&t, -1, t.vocab_size, buf), 0);
    /* Arbitrary bytes survive encode -> decode (skip BOS's piece). */
    const char raw[] = "w\x01\xff orld\n\xc3\xa9 hello";
    size_t rl = sizeof raw - 1;
    CHECK_EQ_INT(bpe_encode(&t, raw, rl, 1, 0, ids, 64, &n, NULL, 0), BPE_OK);
    size_t k = 0;
    for (size_t i = 1; i < n; i++) k += bpe_decode(&t, ids[i - 1], ids[i], (unsigned char *)out + k);
    CHECK_EQ_INT(k, rl);
    CHECK(memcmp(out, raw, rl) == 0);
    /* Too small an output array is refused. */
    CHECK_EQ_INT(bpe_encode(&t, raw, rl, 1, 0, ids, rl, &n, NULL, 0), BPE_ESPACE);
    bpe_free(&t);
}

TEST(bpe_byte_vocab_identity_and_missing_bytes) {
    bpe_tokenizer t;
    CHECK_EQ_INT(bpe_init_bytes(&t, NULL, 0), BPE_OK);
    CHECK_EQ_INT(t.sp_style, 0);
    const char raw[] = "ROMEO:\n\x00\xff!";
    size_t rl = sizeof raw - 1;
    int ids[32];
    size_t n;
    CHECK_EQ_INT(bpe_encode(&t, raw, rl, 1, 1, ids, 32, &n, NULL, 0), BPE_OK);
    CHECK_EQ_INT(n, rl);   /* no BOS/EOS/prefix in a plain vocabulary */
    for (size_t i = 0; i < n && i < rl; i++) CHECK_EQ_INT(ids[i], (unsigned char)raw[i]);
    bpe_free(&t);
    /* A vocabulary without the byte 'z' cannot encode it: a clean error. */
    const char *pieces[] = { "a", "b", "ab" };
    int lens[] = { 1, 1, 2 };
    CHECK_EQ_INT(bpe_init(&t, 3, pieces, lens, NULL, NULL, 0), BPE_OK);
    char err[128];
    CHECK_EQ_INT(bpe_encode(&t, "abz", 3, 0, 0, ids, 32, &n, err, sizeof err), BPE_EENCODE);
    CHECK_EQ_INT(bpe_encode(&t, "abab", 4, 0, 0, ids, 32, &n, err, sizeof err), BPE_OK);
    CHECK_EQ_INT(n, 2);
    bpe_free(&t);
}

TEST(bpe_tokenizer_file_roundtrip_and_bad_files) {
    bpe_tokenizer t, u;
    CHECK_EQ_INT(sp_vocab(&t), BPE_OK);
    char path[512], bad[512], err[256];
    tmp_path(path, sizeof path, "tokenizer.bin");
    tmp_path(bad, sizeof bad, "tokenizer_bad.bin");
    CHECK_EQ_INT(bpe_save(&t, path, err, sizeof err), BPE_OK);
    CHECK_EQ_INT(bpe_load(&u, path, t.vocab_size, err, sizeof err), BPE_OK);
    CHECK_EQ_INT(u.vocab_size, t.vocab_size);
    CHECK_EQ_INT(u.max_token_length, t.max_token_length);
    CHECK_EQ_INT(u.sp_style, 1);
    for (int i = 0; i < t.vocab_size; i++) {
        CHECK_EQ_INT(u.lens[i], t.lens[i]);
        CHECK(memcmp(u.pieces[i], t.pieces[i], (size_t)t.lens[i]) == 0);
        CHECK(u.scores[i] == t.scores[i]);
    }
    bpe_free(&u);
    /* Vocabulary mismatch both ways: a specific code, not a crash. */
    CHECK_EQ_INT(bpe_load(&u, path, t.vocab_size + 1, err, sizeof err), BPE_EVOCAB);
    CHECK_EQ_INT(bpe_load(&u, path, t.vocab_size - 1, err, sizeof err), BPE_EVOCAB);
    CHECK(strchr(err, '\n') == NULL && strlen(err) > 0);
    unsigned char *data;
    size_t len;
    CHECK(io_read_file(path, &data, &len, err, sizeof err) == 0);
    /* Truncated inside the last entry's bytes, and inside an entry header. */
    CHECK(write_bytes(bad, data, len - 1) == 0);
    CHECK_EQ_INT(bpe_load(&u, bad, t.vocab_size, err, sizeof err), BPE_ETRUNC);
    CHECK(write_bytes(bad, data, 4 + 8 + (size_t)t.lens[0] + 3) == 0);
    CHECK_EQ_INT(bpe_load(&u, bad, t.vocab_size, err, sizeof err), BPE_ETRUNC);
    CHECK(write_bytes(bad, data, 2) == 0);
    CHECK_EQ_INT(bpe_load(&u, bad, t.vocab_size, err, sizeof err), BPE_ETRUNC);
    /* Corrupted: max_token_length <= 0, and a length past it. */
    int32_t v = -3;
    memcpy(data, &v, 4);
    CHECK(write_bytes(bad, data, len) == 0);
    CHECK_EQ_INT(bpe_load(&u, bad, t.vocab_size, err, sizeof err), BPE_EFORMAT);
    v = t.max_token_length;
    memcpy(data, &v, 4);
    v = 1000;
    memcpy(data + 8, &v, 4);   /* token 0's length */
    CHECK(write_bytes(bad, data, len) == 0);
    CHECK_EQ_INT(bpe_load(&u, bad, t.vocab_size, err, sizeof err), BPE_EFORMAT);
    v = -1;
    memcpy(data + 8, &v, 4);
    CHECK(write_bytes(bad, data, len) == 0);
    CHECK_EQ_INT(bpe_load(&u, bad, t.vocab_size, err, sizeof err), BPE_EFORMAT);
    free(data);
    bpe_free(&t);
}

/* ------------------------------------------------ commands, in process */

/* Runs a subcommand function with stdout/stderr sent to files (no fork: the
 * OpenMP pool must stay usable) and reads them back. */
static int run_cmd(int (*cmd)(int, char **), const char *const *args, char *out, size_t outlen, size_t *out_len,
                   char *err, size_t errlen) {
    char po[600], pe[600];
    tmp_path(po, sizeof po, "cmd_stdout.txt");
    tmp_path(pe, sizeof pe, "cmd_stderr.txt");
    char *argv[32];
    int argc = 0;
    while (args[argc] && argc < 31) {
        argv[argc] = (char *)args[argc];
        argc++;
    }
    argv[argc] = NULL;
    fflush(stdout);
    fflush(stderr);
    int s1 = dup(1), s2 = dup(2);
    int fo = open(po, O_WRONLY | O_CREAT | O_TRUNC, 0644), fe = open(pe, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fo, 1);
    dup2(fe, 2);
    int rc = cmd(argc, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(s1, 1);
    dup2(s2, 2);
    close(s1), close(s2), close(fo), close(fe);
    unsigned char *d;
    size_t n;
    out[0] = err[0] = 0;
    if (io_read_file(po, &d, &n, NULL, 0) == 0) {
        if (n >= outlen) n = outlen - 1;
        memcpy(out, d, n);
        out[n] = 0;
        if (out_len) *out_len = n;
        free(d);
    }
    if (io_read_file(pe, &d, &n, NULL, 0) == 0) {
        if (n >= errlen) n = errlen - 1;
        memcpy(err, d, n);
        err[n] = 0;
        free(d);
    }
    return rc;
}

/* export --random tiny -> generate --tokenizer, greedy: the streamed bytes
 * equal a greedy loop written here over the same mapped file, and two runs
 * agree; bad inputs exit 2 with one line on stderr. */
TEST(llama2c_export_then_generate_cli) {
    char m[512], t[512], out[4096], err[4096], out2[4096];
    size_t n1 = 0, n2 = 0;
    tmp_path(m, sizeof m, "cli_model.bin");
    tmp_path(t, sizeof t, "cli_tok.bin");
    const char *ex[] = { "--random", "tiny", "--seed", "3", "--std", "0.2", "--format", "llama2c",
                         "--out", m, "--tokenizer-out", t, NULL };
    CHECK_EQ_INT(run_cmd(cmd_export, ex, out, sizeof out, NULL, err, sizeof err), 0);
    const char *gen[] = { "--model", m, "--tokenizer", t, "--prompt", "ROMEO:", "--tokens", "40",
                          "--temperature", "0", NULL };
    CHECK(llama2c_wants_generate(10, (char **)gen));
    CHECK_EQ_INT(run_cmd(llama2c_generate_cmd, gen, out, sizeof out, &n1, err, sizeof err), 0);
    CHECK(strstr(err, "decode") != NULL);
    CHECK_EQ_INT(run_cmd(llama2c_generate_cmd, gen, out2, sizeof out2, &n2, err, sizeof err), 0);
    CHECK_EQ_INT(n1, 6 + 40 + 1);   /* prompt, 40 one-byte tokens, newline */
    CHECK(n1 == n2 && memcmp(out, out2, n1) == 0);

    /* The same greedy continuation computed directly. */
    llama2c_file f;
    char e[256];
    CHECK_EQ_INT(llama2c_open(&f, m, e, sizeof e), L2C_OK);
    llama_model lm;
    CHECK_EQ_INT(llama_init_borrowed(&lm, &f.cfg, &f.w, 6), LLAMA_OK);
    int ids[6];
    for (int i = 0; i < 6; i++) ids[i] = (unsigned char)"ROMEO:"[i];
    CHECK_EQ_INT(llama_forward(&lm, ids, 6, 0, 0), LLAMA_OK);
    int same = memcmp(out, "ROMEO:", 6) == 0;
    for (int k = 0; k < 40; k++) {
        int best = 0;
        for (int v = 1; v < f.cfg.vocab_size; v++)
            if (lm.logits[v] > lm.logits[best]) best = v;
        if ((unsigned char)out[6 + k] != best) same = 0;
        if (k < 39) CHECK_EQ_INT(llama_forward(&lm, &best, 1, 6 + k, 0), LLAMA_OK);
    }
    CHECK(same);
    llama_free(&lm);
    llama2c_close(&f);
    /* bf16 decode runs and streams the same amount (its text may differ). */
    const char *gen16[] = { "--model", m, "--tokenizer", t, "--prompt", "ROMEO:", "--tokens", "40",
                            "--temperature", "0", "--dtype", "bf16", NULL };
    CHECK_EQ_INT(run_cmd(llama2c_generate_cmd, gen16, out2, sizeof out2, &n2, err, sizeof err), 0);
    CHECK_EQ_INT(n2, n1);
    CHECK(strstr(err, "bf16") != NULL);

    /* A tokenizer for another vocabulary: a model with V = 300. */
    llama_config c = tiny_cfg(1);
    c.vocab_size = 300;
    llama_model big;
    CHECK_EQ_INT(llama_init_random(&big, &c, 1, 0.1f, 1), LLAMA_OK);
    char m300[512];
    tmp_path(m300, sizeof m300, "cli_v300.bin");
    CHECK_EQ_INT(llama2c_write(m300, &c, &big.w, e, sizeof e), L2C_OK);
    llama_free(&big);
    const char *bad_vocab[] = { "--model", m300, "--tokenizer", t, "--prompt", "a", NULL };
    CHECK_EQ_INT(run_cmd(llama2c_generate_cmd, bad_vocab, out, sizeof out, NULL, err, sizeof err), 2);
    CHECK(strstr(err, "--tokenizer") != NULL && strstr(err, "300") != NULL);
    /* Too many positions for seq_len 128: refused, not clamped. */
    const char *too_long[] = { "--model", m, "--tokenizer", t, "--prompt", "ROMEO:", "--tokens", "200", NULL };
    CHECK_EQ_INT(run_cmd(llama2c_generate_cmd, too_long, out, sizeof out, NULL, err, sizeof err), 2);
    CHECK(strstr(err, "--tokens") != NULL);
    /* A truncated model file. */
    unsigned char *d;
    size_t n;
    CHECK(io_read_file(m, &d, &n, e, sizeof e) == 0);
    char mt[512];
    tmp_path(mt, sizeof mt, "cli_trunc.bin");
    CHECK(write_bytes(mt, d, n / 2) == 0);
    free(d);
    const char *trunc[] = { "--model", mt, "--tokenizer", t, NULL };
    CHECK_EQ_INT(run_cmd(llama2c_generate_cmd, trunc, out, sizeof out, NULL, err, sizeof err), 2);
    CHECK(strstr(err, "truncated") != NULL);
    char *nl = strchr(err, '\n');
    CHECK(nl != NULL && nl[1] == 0);   /* exactly one line */
    /* export refuses a file that is not a llama2.c model. */
    const char *ex_bad[] = { "--model", t, "--out", mt, NULL };
    CHECK_EQ_INT(run_cmd(cmd_export, ex_bad, out, sizeof out, NULL, err, sizeof err), 2);
    CHECK(strstr(err, "--model") != NULL);
    const char *ex_both[] = { "--model", m, "--random", "tiny", "--out", mt, NULL };
    CHECK_EQ_INT(run_cmd(cmd_export, ex_both, out, sizeof out, NULL, err, sizeof err), 2);
    const char *ex_noout[] = { "--random", "tiny", NULL };
    CHECK_EQ_INT(run_cmd(cmd_export, ex_noout, out, sizeof out, NULL, err, sizeof err), 2);
    const char *gen_nomodel[] = { "--tokenizer", t, NULL };
    CHECK_EQ_INT(run_cmd(llama2c_generate_cmd, gen_nomodel, out, sizeof out, NULL, err, sizeof err), 2);
    /* Re-export of a llama2.c file with an unshared classifier round-trips. */
    char mu[512];
    tmp_path(mu, sizeof mu, "cli_unshared.bin");
    const char *ex_un[] = { "--model", m, "--unshared", "--out", mu, NULL };
    CHECK_EQ_INT(run_cmd(cmd_export, ex_un, out, sizeof out, NULL, err, sizeof err), 0);
    llama2c_file fa, fb;
    CHECK_EQ_INT(llama2c_open(&fa, m, e, sizeof e), L2C_OK);
    CHECK_EQ_INT(llama2c_open(&fb, mu, e, sizeof e), L2C_OK);
    CHECK_EQ_INT(fb.cfg.shared_classifier, 0);
    CHECK_EQ_INT(fb.map_len, fa.map_len + (size_t)4 * fa.cfg.vocab_size * fa.cfg.dim);
    CHECK(memcmp(fa.w.token_embedding, fb.w.wcls, (size_t)4 * fa.cfg.vocab_size * fa.cfg.dim) == 0);
    llama2c_close(&fb);
    llama2c_close(&fa);
}

/* The pieces a train loop needs, together: 25 AdamW steps (lr 5e-3, decay
 * mask from llama_train_decay_mask) on one fixed batch of text must overfit
 * it — loss from ~ln(256) = 5.5 to below half of that (measured 5.57 ->
 * 1.66, gcc -O2). A broken gradient
 * stalls well above (a random direction does not halve the loss). Then the
 * trained weights export as a llama2.c file whose mapped logits equal the
 * trainer's own at the last position to float rounding (1e-4: trainer and
 * inference code sum in different orders). */
TEST(llama_train_adamw_overfits_and_exports) {
    llama_config c = tiny_cfg(1);
    c.vocab_size = 256;
    c.seq_len = 16;
    llama_trainer tr;
    CHECK_EQ_INT(llama_train_init(&tr, &c, 1), LLAMA_OK);
    const char *text = "ROMEO: But soft, what light through yonder window breaks? It is the east.";
    enum { B = 2, T = 16 };
    int inp[B * T], tgt[B * T];
    for (int i = 0; i < B * T; i++) {
        int off = (i / T) * 20 + i % T;
        inp[i] = (unsigned char)text[off];
        tgt[i] = (unsigned char)text[off + 1];
    }
    float *mo = calloc(tr.n_params, sizeof(float)), *vo = calloc(tr.n_params, sizeof(float));
    uint8_t *mask = malloc(tr.n_params);
    llama_train_decay_mask(&tr, mask);
    CHECK_EQ_INT(mask[tr.w.rms_att - tr.params], 0);
    CHECK_EQ_INT(mask[tr.w.wq - tr.params], 1);
    adamw opt = adamw_default();
    opt.lr = 5e-3f;
    float first = 0.0f, loss = 0.0f;
    for (int step = 0; step < 25; step++) {
        CHECK_EQ_INT(llama_train_forward(&tr, inp, tgt, B, T, &loss), LLAMA_OK);
        if (step == 0) first = loss;
        llama_train_zero_grad(&tr);
        CHECK_EQ_INT(llama_train_backward(&tr), LLAMA_OK);
        adamw_step(&opt, tr.params, tr.grads, mo, vo, mask, tr.n_params);
    }
    CHECK_NEAR(first, log(256.0), 0.1);   /* 0.02 init: nearly uniform predictions */
    CHECK(loss < 0.5f * first);

    char path[512], err[256];
    tmp_path(path, sizeof path, "trained.bin");
    CHECK_EQ_INT(llama2c_write(path, &c, &tr.w, err, sizeof err), L2C_OK);
    CHECK_EQ_INT(llama_train_forward(&tr, inp, NULL, 1, T, NULL), LLAMA_OK);
    llama2c_file f;
    CHECK_EQ_INT(llama2c_open(&f, path, err, sizeof err), L2C_OK);
    llama_model m;
    CHECK_EQ_INT(llama_init_borrowed(&m, &f.cfg, &f.w, T), LLAMA_OK);
    CHECK_EQ_INT(llama_forward(&m, inp, T, 0, 0), LLAMA_OK);
    for (int v = 0; v < c.vocab_size; v++) CHECK_CLOSE(m.logits[v], tr.logits[(size_t)(T - 1) * c.vocab_size + v], 1e-4, 1e-4);
    llama_free(&m);
    llama2c_close(&f);
    free(mo), free(vo), free(mask);
    llama_train_free(&tr);
}

/* bf16 decode vs fp32 decode on the same model and tokens. Weights rounded
 * to bf16 carry a relative error <= 2^-9 each; through two blocks of this
 * deliberately large-weight model (std 0.3) the logits moved by 1.1e-2 of
 * their largest magnitude (measured, gcc -O2). Bound: max |diff| <= 3e-2 *
 * max |logit|; a wrong bf16 view (other layer or matrix) moves them O(1). */
TEST(llama_bf16_decode_logit_error_bounded) {
    llama_config c = tiny_cfg(0);
    llama_model a, b;
    CHECK_EQ_INT(llama_init_random(&a, &c, 31, 0.3f, 4), LLAMA_OK);
    CHECK_EQ_INT(llama_init_borrowed(&b, &c, &a.w, 4), LLAMA_OK);
    CHECK_EQ_INT(llama_use_bf16(&b), LLAMA_OK);
    CHECK_EQ_INT(llama_forward(&a, SEQ, 4, 0, 0), LLAMA_OK);
    CHECK_EQ_INT(llama_forward(&b, SEQ, 4, 0, 0), LLAMA_OK);
    double worst = 0.0, scale = 0.0;
    for (int t = 4; t < NSEQ; t++) {
        CHECK_EQ_INT(llama_forward(&a, SEQ + t, 1, t, 0), LLAMA_OK);
        CHECK_EQ_INT(llama_forward(&b, SEQ + t, 1, t, 0), LLAMA_OK);
        for (int v = 0; v < c.vocab_size; v++) {
            worst = fmax(worst, fabs((double)a.logits[v] - b.logits[v]));
            scale = fmax(scale, fabs((double)a.logits[v]));
        }
    }
    CHECK(worst <= 3e-2 * scale);
    CHECK(worst > 0.0);   /* the bf16 path really ran */
    llama_free(&b);
    llama_free(&a);
}

/* llama_prepack changes only where the batched forward reads its weights
 * from (the same tiles and k order), so a prefill and later batched calls
 * give the bits of the model without it: all logits, the caches, and a
 * decode step after them. Both shared and untied classifiers. */
TEST(llama_prepack_same_bits) {
    for (int shared = 0; shared <= 1; shared++) {
        llama_config c = tiny_cfg(shared);
        llama_model a, b;
        CHECK_EQ_INT(llama_init_random(&a, &c, 41 + shared, 0.3f, NSEQ), LLAMA_OK);
        CHECK_EQ_INT(llama_init_borrowed(&b, &c, &a.w, NSEQ), LLAMA_OK);
        CHECK_EQ_INT(llama_prepack(&b), LLAMA_OK);
        CHECK(b.packed != NULL);
        CHECK_EQ_INT(llama_prepack(&b), LLAMA_OK);   /* twice: kept */
        size_t V = (size_t)c.vocab_size, kvn = (size_t)c.n_layers * c.seq_len * (c.dim / c.n_heads) * c.n_kv_heads;
        CHECK_EQ_INT(llama_forward(&a, SEQ, 5, 0, 1), LLAMA_OK);
        CHECK_EQ_INT(llama_forward(&b, SEQ, 5, 0, 1), LLAMA_OK);
        CHECK(memcmp(a.all_logits, b.all_logits, 5 * V * sizeof(float)) == 0);
        CHECK_EQ_INT(llama_forward(&a, SEQ + 5, 3, 5, 0), LLAMA_OK);
        CHECK_EQ_INT(llama_forward(&b, SEQ + 5, 3, 5, 0), LLAMA_OK);
        CHECK(memcmp(a.logits, b.logits, V * sizeof(float)) == 0);
        CHECK_EQ_INT(llama_forward(&a, SEQ + 8, 1, 8, 0), LLAMA_OK);
        CHECK_EQ_INT(llama_forward(&b, SEQ + 8, 1, 8, 0), LLAMA_OK);
        CHECK(memcmp(a.logits, b.logits, V * sizeof(float)) == 0);
        CHECK(memcmp(a.key_cache, b.key_cache, kvn * sizeof(float)) == 0);
        CHECK(memcmp(a.value_cache, b.value_cache, kvn * sizeof(float)) == 0);
        llama_free(&b);
        CHECK(b.packed == NULL);
        llama_free(&a);
    }
    CHECK_EQ_INT(llama_prepack(NULL), LLAMA_ENULL);
}

/* Through the built binary: `ropegpt generate --tokenizer` reaches the
 * llama2.c path (cmd_generate dispatches on --tokenizer) and prints the same
 * greedy text as the in-process call. */
TEST(llama2c_binary_generate_dispatch) {
    char m[512], t[512], po[512], pe[512], out[4096], err[4096];
    size_t n1 = 0;
    tmp_path(m, sizeof m, "bin_model.bin");
    tmp_path(t, sizeof t, "bin_tok.bin");
    tmp_path(po, sizeof po, "bin_stdout.txt");
    tmp_path(pe, sizeof pe, "bin_stderr.txt");
    const char *ex[] = { "--random", "tiny", "--seed", "5", "--std", "0.2", "--out", m, "--tokenizer-out", t, NULL };
    CHECK_EQ_INT(run_cmd(cmd_export, ex, out, sizeof out, NULL, err, sizeof err), 0);
    const char *gen[] = { "--model", m, "--tokenizer", t, "--prompt", "To be", "--tokens", "25", "--temperature", "0", NULL };
    CHECK_EQ_INT(run_cmd(llama2c_generate_cmd, gen, out, sizeof out, &n1, err, sizeof err), 0);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        int fo = open(po, O_WRONLY | O_CREAT | O_TRUNC, 0644), fe = open(pe, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fo < 0 || fe < 0) _exit(126);
        dup2(fo, 1);
        dup2(fe, 2);
        char *argv[] = { (char *)test_bin_path(), (char *)"generate", (char *)"--model", m, (char *)"--tokenizer", t,
                         (char *)"--prompt", (char *)"To be", (char *)"--tokens", (char *)"25",
                         (char *)"--temperature", (char *)"0", NULL };
        execv(argv[0], argv);
        _exit(127);
    }
    int st = -1;
    CHECK(pid > 0 && waitpid(pid, &st, 0) == pid);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    unsigned char *d = NULL;
    size_t n2 = 0;
    CHECK(io_read_file(po, &d, &n2, NULL, 0) == 0);
    CHECK_EQ_INT(n2, n1);
    if (d && n2 == n1) CHECK(memcmp(d, out, n1) == 0);
    free(d);
}
