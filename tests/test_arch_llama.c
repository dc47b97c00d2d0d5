/*
 * test_arch_llama.c — `ropegpt train --arch llama` end to end (issue 5 part
 * 2): a tiny CLI run writes a version-2 checkpoint recording the Llama
 * shape, a run split by --stop-after/--resume equals the straight run bit
 * for bit, the checkpoint exports to a llama2.c file whose greedy
 * `generate --tokenizer` output equals an in-process greedy decode of the
 * checkpoint's weights (and the inference forward matches the training
 * forward), bad flag combinations exit 2 with one line, and version-1
 * (pre-arch) checkpoints are still read.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "test.h"
#include "model/checkpoint.h"
#include "model/llama.h"
#include "model/llama_train.h"
#include "model/train.h"
#include "util/io.h"

#define MAX_ARGS 64

/* Runs the binary (see test_run_bin). */
static int run_bin(const char *const *args, char *out, size_t outlen, char *err, size_t errlen) {
    return test_run_bin(args, out, outlen, NULL, err, errlen);
}

/* The first 20000 bytes of tinyshakespeare. */
static const char *small_data(void) {
    static char path[600];
    if (path[0]) return path;
    snprintf(path, sizeof path, "%s/al_small.txt", test_tmp_dir());
    unsigned char *d = NULL;
    size_t n = 0;
    if (io_read_file("data/tinyshakespeare.txt", &d, &n, NULL, 0) == 0) {
        io_write_atomic(path, d, n < 20000 ? n : 20000, NULL, 0);
        free(d);
    }
    return path;
}

/* A tiny Llama: 2 layers, dim 16, 4 query heads over 2 kv heads (GQA). */
#define TINY_LLAMA "--arch", "llama", "--layers", "2", "--dim", "16", "--heads", "4", "--kv-heads", "2", \
                   "--ctx", "32", "--batch", "2", "--eval-batches", "2", "--eval-every", "5", "--threads", "1", \
                   "--quiet", "--force"

static int train_llama(const char *dir, const char *stop_after, int untied) {
    const char *args[MAX_ARGS] = { "train", TINY_LLAMA, "--steps", "20", "--data", small_data(), "--out", dir };
    int n = 0;
    while (args[n]) n++;
    if (stop_after) args[n++] = "--stop-after", args[n++] = stop_after;
    if (untied) args[n++] = "--untied";
    args[n] = NULL;
    char err[2048];
    int st = run_bin(args, NULL, 0, err, sizeof err);
    if (st) printf("    train %s: exit %d: %s\n", dir, st, err);
    return st;
}

static int load_ck(const char *dir, checkpoint *c) {
    char path[700], err[512];
    snprintf(path, sizeof path, "%s/model.bin", dir);
    int rc = checkpoint_load(path, c, 1, err, sizeof err);
    if (rc) printf("    %s\n", err);
    return rc;
}

/* The log's step,train_loss,val_loss,lr columns (elapsed time differs). */
static void log_losses(const char *dir, char *out, size_t n) {
    char path[700];
    snprintf(path, sizeof path, "%s/log.csv", dir);
    unsigned char *d = NULL;
    size_t len = 0;
    out[0] = 0;
    if (io_read_file(path, &d, &len, NULL, 0)) return;
    size_t o = 0;
    for (size_t i = 0; i < len && o + 1 < n;) {
        int commas = 0;
        while (i < len && d[i] != '\n') {
            if (d[i] == ',') commas++;
            if (commas < 4 && o + 1 < n) out[o++] = (char)d[i];
            i++;
        }
        if (o + 1 < n) out[o++] = '\n';
        i++;
    }
    out[o] = 0;
    free(d);
}

TEST(arch_llama_cli_resume_is_bit_identical) {
    char a[600], b[600];
    snprintf(a, sizeof a, "%s/al_straight", test_tmp_dir());
    snprintf(b, sizeof b, "%s/al_split", test_tmp_dir());
    CHECK_EQ_INT(train_llama(a, NULL, 0), 0);
    CHECK_EQ_INT(train_llama(b, "10", 0), 0);
    const char *r[] = { "train", "--resume", b, "--quiet", NULL };
    char err[2048];
    CHECK_EQ_INT(run_bin(r, NULL, 0, err, sizeof err), 0);
    static char la[16384], lb[16384];
    log_losses(a, la, sizeof la);
    log_losses(b, lb, sizeof lb);
    CHECK(strlen(la) > 100);
    CHECK(strcmp(la, lb) == 0);
    checkpoint ca, cb;
    if (load_ck(a, &ca) == 0 && load_ck(b, &cb) == 0) {
        CHECK_EQ_INT(ca.arch.arch, ARCH_LLAMA);
        CHECK_EQ_INT(ca.arch.n_kv_heads, 2);
        CHECK_EQ_INT(ca.arch.hidden_dim, 64);   /* ceil(8 * 16 / 3) = 43 -> multiple of 32 */
        CHECK_EQ_INT(ca.arch.shared_classifier, 1);
        llama_config lc = arch_llama_config(&ca.cfg, &ca.arch);
        CHECK(ca.n_params == llama_weights_floats(&lc));
        CHECK_EQ_INT(ca.step, 20);
        CHECK_EQ_INT(cb.step, 20);
        CHECK(ca.n_params == cb.n_params);
        CHECK(memcmp(ca.params, cb.params, ca.n_params * sizeof(float)) == 0);
        CHECK(memcmp(ca.m, cb.m, ca.n_params * sizeof(float)) == 0);
        CHECK(memcmp(ca.v, cb.v, ca.n_params * sizeof(float)) == 0);
        /* training moved the weights off their init (a run that did nothing
         * would also resume "identically") */
        llama_trainer init;
        if (llama_train_init(&init, &lc, ca.tc.seed) == LLAMA_OK) {
            CHECK(memcmp(init.params, ca.params, ca.n_params * sizeof(float)) != 0);
            llama_train_free(&init);
        }
        checkpoint_free(&ca);
        checkpoint_free(&cb);
    }
}

/* Greedy decode of prompt + n tokens with the inference model over params. */
static int greedy(const llama_config *lc, const float *params, const char *prompt, int n, char *out) {
    llama_weights w;
    llama_weights_point(&w, lc, params, 0);
    llama_model m;
    int len = (int)strlen(prompt);
    if (llama_init_borrowed(&m, lc, &w, len) != LLAMA_OK) return -1;
    int ids[64];
    for (int i = 0; i < len; i++) ids[i] = (unsigned char)prompt[i];
    int rc = llama_forward(&m, ids, len, 0, 0);
    for (int k = 0; rc == LLAMA_OK && k < n; k++) {
        int best = 0;
        for (int i = 1; i < lc->vocab_size; i++)
            if (m.logits[i] > m.logits[best]) best = i;
        out[k] = (char)best;
        if (k + 1 < n) rc = llama_forward(&m, &best, 1, len + k, 0);
    }
    out[n] = 0;
    llama_free(&m);
    return rc;
}

TEST(arch_llama_export_generate_matches_greedy) {
    char dir[600], model[700], tok[700];
    snprintf(dir, sizeof dir, "%s/al_export", test_tmp_dir());
    snprintf(model, sizeof model, "%s/l2c.bin", dir);
    snprintf(tok, sizeof tok, "%s/tok.bin", dir);
    CHECK_EQ_INT(train_llama(dir, NULL, 1), 0);   /* untied: the file's negative-vocab form */
    char ckpath[700];
    snprintf(ckpath, sizeof ckpath, "%s/model.bin", dir);
    const char *ex[] = { "export", "--model", ckpath, "--format", "llama2c", "--out", model, "--tokenizer-out", tok,
                         NULL };
    char err[4096];
    static char out[4096];
    CHECK_EQ_INT(run_bin(ex, NULL, 0, err, sizeof err), 0);
    const char *prompt = "ROMEO:";
    enum { N = 24 };   /* 6 + 24 - 1 positions <= ctx 32 */
    const char *gen[] = { "generate", "--model", model, "--tokenizer", tok, "--temperature", "0", "--tokens", "24",
                          "--prompt", prompt, "--threads", "1", NULL };
    CHECK_EQ_INT(run_bin(gen, out, sizeof out, err, sizeof err), 0);
    checkpoint ck;
    if (load_ck(dir, &ck)) {
        CHECK(0);
        return;
    }
    CHECK_EQ_INT(ck.arch.shared_classifier, 0);
    llama_config lc = arch_llama_config(&ck.cfg, &ck.arch);
    char want[N + 1];
    CHECK_EQ_INT(greedy(&lc, ck.params, prompt, N, want), LLAMA_OK);
    char expect[128];
    snprintf(expect, sizeof expect, "%s%s\n", prompt, want);
    CHECK(strlen(out) == strlen(expect));
    CHECK(strcmp(out, expect) == 0);
    if (strcmp(out, expect) != 0) printf("    generate: [%s]\n    greedy:   [%s]\n", out, expect);
    /* The run folder (a ropegpt checkpoint) with --tokenizer: told to drop the
     * flag, exit 2, rather than "not a regular file". */
    const char *wrong[] = { "generate", "--model", dir, "--tokenizer", tok, NULL };
    CHECK_EQ_INT(run_bin(wrong, NULL, 0, err, sizeof err), 2);
    CHECK(strstr(err, "--tokenizer is only for llama2.c model files") != NULL);
    /* ... and the other way round: the llama2.c file where a checkpoint is expected. */
    const char *wrong2[] = { "sample", "--model", model, NULL };
    CHECK_EQ_INT(run_bin(wrong2, NULL, 0, err, sizeof err), 2);
    CHECK(strstr(err, "a llama2.c model file; run it with `ropegpt generate") != NULL);

    /* The inference forward (llama.c) equals the training forward
     * (llama_train.c) on the trained weights: the exported model is the
     * trained one. */
    llama_trainer tr;
    llama_model m;
    llama_weights w;
    llama_weights_point(&w, &lc, ck.params, 0);
    if (llama_train_init(&tr, &lc, 1) == LLAMA_OK && llama_init_borrowed(&m, &lc, &w, 8) == LLAMA_OK) {
        memcpy(tr.params, ck.params, ck.n_params * sizeof(float));
        const int ids[8] = { 'R', 'O', 'M', 'E', 'O', ':', '\n', 'T' };
        CHECK_EQ_INT(llama_train_forward(&tr, ids, NULL, 1, 8, NULL), LLAMA_OK);
        CHECK_EQ_INT(llama_forward(&m, ids, 8, 0, 1), LLAMA_OK);
        double worst = 0;
        for (size_t i = 0; i < (size_t)8 * 256; i++) worst = fmax(worst, fabs((double)tr.logits[i] - m.all_logits[i]));
        /* fp32, different summation orders over <= 64 terms of O(1): ~1e-6 */
        CHECK_NEAR(worst, 0.0, 1e-4);
        llama_free(&m);
        llama_train_free(&tr);
    } else {
        CHECK(0);
    }
    checkpoint_free(&ck);

    /* the GPT generate path refuses a llama checkpoint with one line, and
     * export refuses a GPT checkpoint */
    const char *g2[] = { "generate", "--model", ckpath, "--tokens", "4", NULL };
    CHECK_EQ_INT(run_bin(g2, NULL, 0, err, sizeof err), 2);
    CHECK(strstr(err, "llama checkpoint") != NULL);
    char gdir[600], gck[700];
    snprintf(gdir, sizeof gdir, "%s/al_gpt", test_tmp_dir());
    snprintf(gck, sizeof gck, "%s/model.bin", gdir);
    const char *tg[] = { "train", "--layers", "1", "--dim", "16", "--heads", "2", "--ctx", "16", "--batch", "2",
                         "--eval-batches", "1", "--steps", "2", "--threads", "1", "--quiet", "--force", "--data",
                         small_data(), "--out", gdir, NULL };
    CHECK_EQ_INT(run_bin(tg, NULL, 0, err, sizeof err), 0);
    const char *eg[] = { "export", "--model", gck, "--format", "llama2c", "--out", model, NULL };
    CHECK_EQ_INT(run_bin(eg, NULL, 0, err, sizeof err), 2);
    CHECK(strstr(err, "GPT checkpoint") != NULL);
}

/* One rejected command: exit 2, exactly one line containing needle. */
static void expect_bad(const char *const *args, const char *needle) {
    char err[4096];
    int before = test_failures;
    CHECK_EQ_INT(run_bin(args, NULL, 0, err, sizeof err), 2);
    size_t n = strlen(err);
    CHECK(n > 1 && err[n - 1] == '\n' && strchr(err, '\n') == err + n - 1);
    CHECK(strstr(err, needle) != NULL);
    if (test_failures != before) printf("    stderr: %s\n", err);
}

TEST(arch_llama_bad_flags_exit_2) {
    char out[600];
    snprintf(out, sizeof out, "%s/al_bad", test_tmp_dir());
    const char *a1[] = { "train", "--arch", "llama", "--heads", "4", "--kv-heads", "3", "--out", out, NULL };
    expect_bad(a1, "--kv-heads 3 does not divide --heads 4");
    const char *a2[] = { "train", "--kv-heads", "2", "--out", out, NULL };
    expect_bad(a2, "--kv-heads only applies to --arch llama");
    const char *a3[] = { "train", "--arch", "gpt", "--untied", "--out", out, NULL };
    expect_bad(a3, "--untied only applies to --arch llama");
    const char *a4[] = { "train", "--arch", "llama", "--pe", "learned", "--out", out, NULL };
    expect_bad(a4, "--arch llama uses --pe rope");
    const char *a5[] = { "train", "--arch", "llama", "--rope-layout", "half", "--out", out, NULL };
    expect_bad(a5, "--rope-layout interleaved");
    const char *a6[] = { "train", "--arch", "mamba", "--out", out, NULL };
    expect_bad(a6, "--arch");
    CHECK(!io_exists(out));
}

TEST(arch_llama_hidden_dim_rule) {
    CHECK_EQ_INT(llama_hidden_dim(128), 352);   /* ceil(1024 / 3) = 342 -> 352 */
    CHECK_EQ_INT(llama_hidden_dim(16), 64);
    CHECK_EQ_INT(llama_hidden_dim(12), 32);
    CHECK_EQ_INT(llama_hidden_dim(288), 768);   /* stories15M's own width */
}

/* A version-1 file (no arch block) is still read, as a GPT. Built from a
 * version-2 GPT checkpoint by cutting the 16 arch bytes at offset 68 (after
 * the prefix and the 44 bytes of gpt_config) and re-sealing. */
TEST(arch_llama_reads_version1_checkpoints) {
    char dir[600], path[700], v1[700], err[512];
    snprintf(dir, sizeof dir, "%s/al_gpt", test_tmp_dir());
    snprintf(path, sizeof path, "%s/model.bin", dir);
    snprintf(v1, sizeof v1, "%s/al_v1.bin", test_tmp_dir());
    const char *tg[] = { "train", "--layers", "1", "--dim", "16", "--heads", "2", "--ctx", "16", "--batch", "2",
                         "--eval-batches", "1", "--steps", "2", "--threads", "1", "--quiet", "--force", "--data",
                         small_data(), "--out", dir, NULL };
    CHECK_EQ_INT(run_bin(tg, NULL, 0, NULL, 0), 0);
    unsigned char *d = NULL;
    size_t n = 0;
    CHECK(io_read_file(path, &d, &n, NULL, 0) == 0);
    if (!d) return;
    CHECK(n > 200 && d[8] == 2);
    const size_t off = 68, cut = 16;
    unsigned char *o = malloc(n);
    memcpy(o, d, off);
    memcpy(o + off, d + off + cut, n - off - cut);
    size_t m = n - cut;
    uint32_t hs = (uint32_t)o[12] | (uint32_t)o[13] << 8 | (uint32_t)o[14] << 16 | (uint32_t)o[15] << 24;
    hs -= (uint32_t)cut;
    o[8] = 1;
    for (int i = 0; i < 4; i++) o[12 + i] = (unsigned char)(hs >> (8 * i));
    for (int i = 0; i < 8; i++) o[16 + i] = (unsigned char)((uint64_t)m >> (8 * i));
    uint32_t crc = io_crc32(0, o, m - 4);
    for (int i = 0; i < 4; i++) o[m - 4 + i] = (unsigned char)(crc >> (8 * i));
    io_write_atomic(v1, o, m, NULL, 0);
    checkpoint a, b;
    CHECK_EQ_INT(checkpoint_load(path, &a, 1, err, sizeof err), 0);
    int rc = checkpoint_load(v1, &b, 1, err, sizeof err);
    CHECK_EQ_INT(rc, 0);
    if (rc) printf("    %s\n", err);
    if (rc == 0) {
        CHECK_EQ_INT(b.arch.arch, ARCH_GPT);
        CHECK(a.n_params == b.n_params && memcmp(a.params, b.params, a.n_params * sizeof(float)) == 0);
        CHECK_EQ_INT(b.step, a.step);
        checkpoint_free(&b);
    }
    checkpoint_free(&a);
    free(o);
    free(d);
}
