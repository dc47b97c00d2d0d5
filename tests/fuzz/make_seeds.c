/*
 * make_seeds.c — writes the fuzzers' seed corpora: small valid inputs from
 * which libFuzzer's mutations start, one folder per harness under the folder
 * given (tests/fuzz/corpus). `make fuzz-seeds` runs it; its output is
 * committed, and the replay test (tests/test_fuzz_replay.c) checks that the
 * checkpoint seeds still load, so a format change that makes them stale
 * fails `make test` until they are rewritten.
 *   checkpoint/  real model.bin files (checkpoint_save) of tiny models, one
 *                per position encoding, both RoPE layouts, and a Llama-arch
 *                one (grouped-query attention, unshared classifier);
 *                the *_v1.bin files are kept from format version 1, which
 *                the reader still accepts.
 *   rope_config/ byte strings in fuzz_rope_config.c's encoding: every
 *                scaling type, full and partial rotary, both layouts.
 *   args/        command byte + NUL-separated argv of valid train / sample /
 *                generate / eval calls.
 *   llama2c/     llama2.c model files (llama2c_write) of tiny random models,
 *                shared and unshared classifier, grouped-query attention.
 *   tokenizer/   tokenizer.bin files (bpe_save): the 256-byte vocabulary and
 *                a small sentencepiece-style one with byte fallback and merges.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/bpe.h"
#include "model/checkpoint.h"
#include "model/gpt.h"
#include "model/llama.h"
#include "model/llama2c.h"
#include "model/train.h"
#include "util/io.h"
#include "util/rng.h"

static int write_seed(const char *root, const char *harness, const char *name, const void *p, size_t n) {
    char dir[1024], path[1200], err[512];
    snprintf(dir, sizeof dir, "%s/%s", root, harness);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (io_mkdir_p(dir, err, sizeof err) || io_write_atomic(path, p, n, err, sizeof err)) {
        fprintf(stderr, "make_seeds: %s\n", err);
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- checkpoint */

static int checkpoint_seed(const char *root, const char *name, pe_type pe, rope_layout layout, int V, int llama) {
    checkpoint ck;
    memset(&ck, 0, sizeof ck);
    ck.cfg = gpt_config_default();
    /* As small as a valid model gets (C 2 or 4, one layer): small inputs
     * keep each execution cheap and the mutations dense. */
    int half = pe == PE_ROPE && layout == ROPE_LAYOUT_HALF;
    ck.cfg.V = V;
    ck.cfg.L = 1;
    ck.cfg.NH = 1;
    ck.cfg.C = half ? 4 : 2;
    ck.cfg.maxT = 4;
    ck.cfg.pe = pe;
    ck.cfg.rope_layout = layout;
    ck.cfg.rope_fraction = half ? 0.5 : 1.0;
    if (llama) {   /* Llama arch: dim 4, 2 heads over 1 kv head, unshared classifier */
        ck.cfg.C = 4;
        ck.cfg.NH = 2;
        ck.arch = arch_config_llama(&ck.cfg);
        ck.arch.n_kv_heads = 1;
        ck.arch.hidden_dim = 8;
        ck.arch.shared_classifier = 0;
    }
    ck.tc = train_config_default();
    ck.tc.B = 2;
    ck.tc.steps = 10;
    ck.tc.save_every = 1;
    ck.tokenizer = CHECKPOINT_TOKENIZER_BYTES;
    ck.vocab = (uint32_t)V;
    ck.step = 3;
    rng_init(&ck.data_rng, 7, 2);
    ck.adamw_t = 3;
    ck.elapsed_s = 0.25;
    snprintf(ck.data_path, sizeof ck.data_path, "data/tinyshakespeare.txt");
    ck.data_len = 1115394;
    ck.data_crc = 0x12345678u;
    train_eval_point ev[2] = { { 0, 5.5f }, { 2, 4.25f } };
    ck.n_evals = 2;
    ck.evals = ev;
    size_t sizes[GPT_NUM_TENSORS];
    if (llama) {
        llama_config lc = arch_llama_config(&ck.cfg, &ck.arch);
        ck.n_params = llama_weights_floats(&lc);
    } else {
        ck.n_params = gpt_tensor_sizes(&ck.cfg, sizes);
    }
    ck.params = malloc(ck.n_params * sizeof(float));
    ck.m = malloc(ck.n_params * sizeof(float));
    ck.v = malloc(ck.n_params * sizeof(float));
    int rc = -1;
    if (ck.params && ck.m && ck.v) {
        rng_state r;
        rng_init(&r, 1, 0);
        rng_fill_normal(&r, ck.params, ck.n_params, 0.0f, 0.02f);
        rng_fill_normal(&r, ck.m, ck.n_params, 0.0f, 0.001f);
        for (size_t i = 0; i < ck.n_params; i++) ck.v[i] = ck.m[i] * ck.m[i];
        char dir[1024], path[1200], err[512];
        snprintf(dir, sizeof dir, "%s/checkpoint", root);
        snprintf(path, sizeof path, "%s/%s", dir, name);
        rc = io_mkdir_p(dir, err, sizeof err);
        if (!rc) rc = checkpoint_save(path, &ck, err, sizeof err);
        if (rc) fprintf(stderr, "make_seeds: %s\n", err);
    }
    free(ck.params);
    free(ck.m);
    free(ck.v);
    return rc;
}

/* ---------------------------------------------------------------- rope_config */

/* One input in fuzz_rope_config.c's byte encoding (see fuzz_rope_config_one):
 * head_dim hd, rotary rd, base 10000, the layout, scaling type ty with
 * factor 2 and original_max_positions 16, a 16-row table, factor arrays of
 * the right length, seq_len 32, then a 3-token x 2-head strided view at
 * positions 0, 5, 17 (past the table) and 200, and a key shift of 3 (or
 * 2.7e18, where p * inv_freq keeps no fractional bits). */
static size_t rope_seed(unsigned char *b, int hd, int rd, int layout, int ty, int huge_shift) {
    size_t n = 0;
    b[n++] = (unsigned char)(2 | 4 | (rd == hd ? 1 : 0));   /* presence bits */
    b[n++] = 0; b[n++] = (unsigned char)hd;                  /* head_dim */
    if (rd != hd) { b[n++] = 0; b[n++] = (unsigned char)rd; }
    b[n++] = (unsigned char)layout;
    b[n++] = (unsigned char)ty;
    b[n++] = 1 | 2;                                          /* fuzz factor, original_max */
    b[n++] = 4;                                              /* factor = edge[4] = 2.0 */
    b[n++] = 0; b[n++] = 16; b[n++] = 0;                     /* original_max_positions 16 */
    b[n++] = 16;                                             /* max_positions */
    b[n++] = 1; b[n++] = 1;                                  /* n_factors = rd / 2 */
    b[n++] = 0; b[n++] = 32; b[n++] = 0;                     /* seq_len 32 */
    b[n++] = 3; b[n++] = 1; b[n++] = 1; b[n++] = 2; b[n++] = 3;   /* 3 tokens, 2 heads, strides */
    const unsigned char pos[] = { 0, 0, 0, 5, 176 + 5, 0, 200 };
    memcpy(b + n, pos, sizeof pos);
    n += sizeof pos;
    /* x: the view spans hd + 2 * token_stride + head_stride floats, with
     * head_stride hd + 1 and token_stride 2 * (hd + 1) + 1. */
    for (int i = 0; i < 6 * hd + 7; i++) b[n++] = (unsigned char)(i * 37 + 11);
    if (huge_shift) {   /* shift by 2738712729411733539 (not a power of 2: p * inv inexact) */
        const uint64_t delta = 2738712729411733539ull;
        b[n++] = 255;
        for (int i = 0; i < 8; i++) b[n++] = (unsigned char)(delta >> (8 * i));
    } else {
        b[n++] = 0; b[n++] = 3; b[n++] = 0;                  /* shift delta 3 */
    }
    b[n++] = 0; b[n++] = 2; b[n++] = 0; b[n++] = (unsigned char)hd; b[n++] = 0;
    b[n++] = (unsigned char)rd; b[n++] = 2; b[n++] = 0; b[n++] = 1;   /* permute 2 heads, 1 col */
    return n;
}

/* ---------------------------------------------------------------- llama2c */

static int llama2c_seed(const char *root, const char *name, int dim, int hidden, int L, int nh, int nkv, int V,
                        int seq, int shared) {
    llama_config c = llama_config_default();
    c.dim = dim;
    c.hidden_dim = hidden;
    c.n_layers = L;
    c.n_heads = nh;
    c.n_kv_heads = nkv;
    c.vocab_size = V;
    c.seq_len = seq;
    c.shared_classifier = shared;
    llama_model m;
    char dir[1024], path[1200], err[512] = "";
    snprintf(dir, sizeof dir, "%s/llama2c", root);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int rc = llama_init_random(&m, &c, 5, 0.1f, 1);
    if (rc == LLAMA_OK) {
        rc = io_mkdir_p(dir, err, sizeof err);
        if (!rc) rc = llama2c_write(path, &c, &m.w, err, sizeof err);
        llama_free(&m);
    } else {
        snprintf(err, sizeof err, "llama_init_random: %s", llama_status_str(rc));
    }
    if (rc) fprintf(stderr, "make_seeds: %s\n", err);
    return rc ? -1 : 0;
}

/* ---------------------------------------------------------------- tokenizer */

static int tokenizer_seeds(const char *root) {
    char dir[1024], path[1200], err[512] = "";
    snprintf(dir, sizeof dir, "%s/tokenizer", root);
    if (io_mkdir_p(dir, err, sizeof err)) return -1;
    bpe_tokenizer t;
    int rc = bpe_init_bytes(&t, err, sizeof err);
    snprintf(path, sizeof path, "%s/bytes256.bin", dir);
    if (!rc) {
        rc = bpe_save(&t, path, err, sizeof err);
        bpe_free(&t);
    }
    /* Sentencepiece style: <unk> <s> </s>, <0x00>..<0xFF>, then merges. */
    enum { NSP = 3 + 256 + 8 };
    static char buf[NSP][16];
    const char *pieces[NSP];
    int lens[NSP];
    float scores[NSP];
    const char *const extra[8] = { "\xe2\x96\x81", "a", "b", "ab", "\xe2\x96\x81" "a", "\xe2\x96\x81" "ab", "e", "\xc3\xa9" };
    for (int i = 0; i < NSP; i++) {
        if (i < 3) snprintf(buf[i], sizeof buf[i], "%s", i == 0 ? "<unk>" : i == 1 ? "<s>" : "</s>");
        else if (i < 259) snprintf(buf[i], sizeof buf[i], "<0x%02X>", i - 3);
        else snprintf(buf[i], sizeof buf[i], "%s", extra[i - 259]);
        pieces[i] = buf[i];
        lens[i] = (int)strlen(buf[i]);
        scores[i] = i < 259 ? 0.0f : -(float)(i - 259);
    }
    if (!rc) rc = bpe_init(&t, NSP, pieces, lens, scores, err, sizeof err);
    snprintf(path, sizeof path, "%s/sentencepiece267.bin", dir);
    if (!rc) {
        rc = bpe_save(&t, path, err, sizeof err);
        bpe_free(&t);
    }
    if (rc) fprintf(stderr, "make_seeds: %s\n", err);
    return rc ? -1 : 0;
}

/* ---------------------------------------------------------------- args */

static size_t args_seed(unsigned char *b, int cmd, const char *const *argv) {
    size_t n = 0;
    b[n++] = (unsigned char)cmd;
    for (int i = 0; argv[i]; i++) {
        size_t k = strlen(argv[i]);
        memcpy(b + n, argv[i], k + 1);
        n += k + 1;
    }
    return n - 1;   /* the last NUL is implied */
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: fuzz_seeds OUT_DIR (tests/fuzz/corpus)\n");
        return 2;
    }
    const char *root = argv[1];
    int bad = 0;
    bad |= checkpoint_seed(root, "rope_interleaved.bin", PE_ROPE, ROPE_LAYOUT_INTERLEAVED, 4, 0);
    bad |= checkpoint_seed(root, "rope_half_partial.bin", PE_ROPE, ROPE_LAYOUT_HALF, 4, 0);
    bad |= checkpoint_seed(root, "learned.bin", PE_LEARNED, ROPE_LAYOUT_INTERLEAVED, 4, 0);
    bad |= checkpoint_seed(root, "none.bin", PE_NONE, ROPE_LAYOUT_INTERLEAVED, 4, 0);
    bad |= checkpoint_seed(root, "sinusoidal.bin", PE_SINUSOIDAL, ROPE_LAYOUT_INTERLEAVED, 4, 0);
    bad |= checkpoint_seed(root, "alibi.bin", PE_ALIBI, ROPE_LAYOUT_INTERLEAVED, 4, 0);
    bad |= checkpoint_seed(root, "rope_v256.bin", PE_ROPE, ROPE_LAYOUT_INTERLEAVED, 256, 0);
    bad |= checkpoint_seed(root, "llama_gqa.bin", PE_ROPE, ROPE_LAYOUT_INTERLEAVED, 4, 1);

    bad |= llama2c_seed(root, "shared.bin", 4, 8, 1, 2, 2, 8, 4, 1);
    bad |= llama2c_seed(root, "unshared_gqa.bin", 8, 12, 2, 4, 2, 6, 3, 0);
    bad |= tokenizer_seeds(root);

    unsigned char b[4096];
    for (int ty = 0; ty < ROPE_SCALING_COUNT; ty++) {
        char name[64];
        snprintf(name, sizeof name, "scaling%d_full.bin", ty);
        bad |= write_seed(root, "rope_config", name, b, rope_seed(b, 8, 8, ty % 2, ty, 0));
        snprintf(name, sizeof name, "scaling%d_partial.bin", ty);
        bad |= write_seed(root, "rope_config", name, b, rope_seed(b, 12, 6, (ty + 1) % 2, ty, 0));
    }
    bad |= write_seed(root, "rope_config", "head64.bin", b, rope_seed(b, 64, 64, 0, 0, 0));
    bad |= write_seed(root, "rope_config", "shift_huge.bin", b, rope_seed(b, 64, 64, 1, 0, 1));

    const char *const train1[] = { "--pe", "rope", "--layers", "1", "--heads", "2", "--dim", "8", "--ctx", "8",
                                   "--steps", "5", "--batch", "2", "--rope-layout", "half", "--rope-base=500",
                                   "--rope-fraction", "0.5", "--quiet", NULL };
    const char *const train2[] = { "--pe=learned", "--lr", "3e-4", "--min-lr", "1e-5", "--warmup", "10",
                                   "--beta2", "0.95", "--weight-decay", "0", "--grad-clip", "0", "--accum", "2",
                                   "--eval-every", "3", "--eval-batches", "1", "--seed", "18446744073709551615",
                                   "--threads", "1", "--save-every", "1", "--out", "runs/x", "--force", NULL };
    const char *const train3[] = { "--resume", "runs/x", "--threads", "2", "--stop-after", "4", NULL };
    const char *const train4[] = { "--help", NULL };
    const char *const sample1[] = { "--prompt", "ROMEO:", "--tokens", "20", "--temperature", "0.5", "--top-k",
                                    "5", "--seed", "3", "--threads", "1", NULL };
    const char *const sample2[] = { "--temperature=0", "--tokens=0", NULL };
    bad |= write_seed(root, "args", "train_rope.bin", b, args_seed(b, 0, train1));
    bad |= write_seed(root, "args", "train_all.bin", b, args_seed(b, 0, train2));
    bad |= write_seed(root, "args", "train_resume.bin", b, args_seed(b, 0, train3));
    bad |= write_seed(root, "args", "train_help.bin", b, args_seed(b, 0, train4));
    bad |= write_seed(root, "args", "sample.bin", b, args_seed(b, 1, sample1));
    bad |= write_seed(root, "args", "sample_greedy.bin", b, args_seed(b, 1, sample2));
    const char *const gen1[] = { "--prompt", "ROMEO:", "--tokens", "20", "--temperature", "0.7", "--top-k", "5",
                                 "--top-p", "0.9", "--seed", "3", "--ctx", "64", "--rope-scaling", "dynamic",
                                 "--rope-factor", "2", "--dynamic-keys", "stale", "--threads", "1", NULL };
    const char *const gen2[] = { "--tokenizer", "tok.bin", "--prompt", "Once", "--tokens", "8", NULL };
    const char *const eval1[] = { "--ctx", "128", "--rope-scaling", "yarn", "--rope-factor", "4", "--data",
                                  "data/tinyshakespeare.txt", "--batch", "2", "--batches", "1", NULL };
    bad |= write_seed(root, "args", "generate.bin", b, args_seed(b, 2, gen1));
    bad |= write_seed(root, "args", "generate_llama2c.bin", b, args_seed(b, 2, gen2));
    bad |= write_seed(root, "args", "eval.bin", b, args_seed(b, 3, eval1));
    return bad ? 1 : 0;
}
