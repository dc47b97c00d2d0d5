/*
 * test_checkpoint.c — the file plumbing under `ropegpt train`: CRC-32
 * against the published check value, atomic writes, the little-endian field
 * reader's bounds, the flag parser's number checks, and model.bin: a save /
 * load round trip of every field, and one-line rejection of a file of another
 * version, a truncated file and a corrupted one.
 */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "model/checkpoint.h"
#include "model/gpt.h"
#include "util/args.h"
#include "util/io.h"

/* ---------------------------------------------------------------- io */

TEST(checkpoint_crc32_check_value) {
    /* The CRC-32/ISO-HDLC catalogue check value of "123456789". */
    CHECK_EQ_INT(io_crc32(0, "123456789", 9), 0xCBF43926u);
    /* Fed in pieces gives the same value. */
    uint32_t c = io_crc32(0, "1234", 4);
    CHECK_EQ_INT(io_crc32(c, "56789", 5), 0xCBF43926u);
    CHECK_EQ_INT(io_crc32(0, "", 0), 0u);
}

TEST(checkpoint_atomic_write_leaves_no_temp) {
    char dir[512], path[600];
    snprintf(dir, sizeof dir, "%s/atomic/a/b", test_tmp_dir());
    CHECK(io_mkdir_p(dir, NULL, 0) == 0);
    CHECK(io_mkdir_p(dir, NULL, 0) == 0);   /* existing folder is fine */
    snprintf(path, sizeof path, "%s/f.bin", dir);
    CHECK(io_write_atomic(path, "hello", 5, NULL, 0) == 0);
    CHECK(io_write_atomic(path, "bye", 3, NULL, 0) == 0);   /* replaces */
    unsigned char *d = NULL;
    size_t n = 0;
    CHECK(io_read_file(path, &d, &n, NULL, 0) == 0);
    CHECK_EQ_INT(n, 3);
    CHECK(d && memcmp(d, "bye", 3) == 0);
    free(d);
    int entries = 0;
    DIR *dp = opendir(dir);
    CHECK(dp != NULL);
    for (struct dirent *e; dp && (e = readdir(dp));)
        if (e->d_name[0] != '.') entries++;
    if (dp) closedir(dp);
    CHECK_EQ_INT(entries, 1);   /* only f.bin: no *.tmp.* left */
    /* A folder under a file cannot be made; writing into a missing folder fails. */
    char bad[700], err[256] = "";
    snprintf(bad, sizeof bad, "%s/sub", path);
    CHECK(io_mkdir_p(bad, err, sizeof err) == -1);
    CHECK(strstr(err, "not a folder") != NULL);
    snprintf(bad, sizeof bad, "%s/missing/x.bin", dir);
    CHECK(io_write_atomic(bad, "x", 1, err, sizeof err) == -1);
}

TEST(checkpoint_reader_bounds_and_byte_order) {
    io_buf b = { 0 };
    io_buf_u32(&b, 0x01020304u);
    io_buf_f64(&b, -2.5);
    io_buf_str(&b, "abc");
    float f[2] = { 1.5f, -0.0f };
    io_buf_f32s(&b, f, 2);
    CHECK(!b.oom);
    CHECK_EQ_INT(b.len, 4 + 8 + 4 + 3 + 8);
    /* Little-endian on disk whatever the host. */
    CHECK(b.data[0] == 4 && b.data[1] == 3 && b.data[2] == 2 && b.data[3] == 1);
    io_reader r = io_reader_make(b.data, b.len);
    CHECK_EQ_INT(io_read_u32(&r), 0x01020304u);
    CHECK(io_read_f64(&r) == -2.5);
    char s[4];
    CHECK(io_read_str(&r, s, sizeof s) == 0 && strcmp(s, "abc") == 0);
    float g[2];
    CHECK(io_read_f32s(&r, g, 2) == 0);
    CHECK(g[0] == 1.5f && signbit(g[1]));
    CHECK(!r.err);
    CHECK_EQ_INT(io_read_u32(&r), 0);   /* past the end: 0 and sticky err */
    CHECK(r.err);
    /* A string longer than the destination sets err instead of overflowing. */
    io_reader r2 = io_reader_make(b.data + 12, b.len - 12);
    char small[3];
    CHECK(io_read_str(&r2, small, sizeof small) == -1);
    io_buf_free(&b);
}

TEST(checkpoint_args_numbers_checked) {
    char err[256];
    long l;
    double d;
    CHECK(args_parse_long("--steps", "12", 1, 100, &l, err, sizeof err) == 0 && l == 12);
    CHECK(args_parse_long("--steps", "0", 1, 100, &l, err, sizeof err) == -1);
    CHECK(strstr(err, "--steps") != NULL);
    CHECK(args_parse_long("--steps", "12x", 1, 100, &l, err, sizeof err) == -1);
    CHECK(args_parse_long("--steps", "", 1, 100, &l, err, sizeof err) == -1);
    CHECK(args_parse_long("--steps", "99999999999999999999", 1, 100, &l, err, sizeof err) == -1);
    CHECK(args_parse_double("--lr", "1e-3", 0, INFINITY, 1, 0, &d, err, sizeof err) == 0 && d == 1e-3);
    CHECK(args_parse_double("--lr", "0", 0, INFINITY, 1, 0, &d, err, sizeof err) == -1);
    CHECK(strstr(err, "> 0") != NULL);
    CHECK(args_parse_double("--lr", "abc", 0, INFINITY, 1, 0, &d, err, sizeof err) == -1);
    CHECK(args_parse_double("--lr", "nan", 0, INFINITY, 1, 0, &d, err, sizeof err) == -1);
    CHECK(args_parse_double("--lr", "inf", 0, INFINITY, 1, 0, &d, err, sizeof err) == -1);
    CHECK(args_parse_double("--beta2", "1", 0, 1, 0, 1, &d, err, sizeof err) == -1);
    CHECK(args_parse_double("--beta2", "0.99", 0, 1, 0, 1, &d, err, sizeof err) == 0);
    /* Table parsing: --name=value, last one wins, unknown flag named. */
    int n = 3, flag = 0;
    const char *s = NULL;
    args_spec sp[3] = {
        { "--n", ARG_INT, &n, "n", 1, 10, 0, 0, NULL, 0 },
        { "--s", ARG_STR, &s, "s", 0, 0, 0, 0, NULL, 0 },
        { "--f", ARG_FLAG, &flag, "f", 0, 0, 0, 0, NULL, 0 },
    };
    char *argv1[] = { "--n=4", "--s", "x", "--n", "5", "--f" };
    CHECK_EQ_INT(args_parse(sp, 3, 6, argv1, err, sizeof err), 0);
    CHECK_EQ_INT(n, 5);
    CHECK(s && strcmp(s, "x") == 0);
    CHECK_EQ_INT(flag, 1);
    char *argv2[] = { "--nope", "1" };
    CHECK_EQ_INT(args_parse(sp, 3, 2, argv2, err, sizeof err), -1);
    CHECK(strstr(err, "--nope") != NULL);
    char *argv3[] = { "--n" };
    CHECK_EQ_INT(args_parse(sp, 3, 1, argv3, err, sizeof err), -1);
    CHECK(strstr(err, "missing value") != NULL);
}

/* ---------------------------------------------------------------- model.bin */

static gpt_config tiny_cfg(void) {
    gpt_config c = gpt_config_default();
    c.L = 1;
    c.NH = 2;
    c.C = 8;
    c.maxT = 6;
    c.pe = PE_ROPE;
    c.rope_layout = ROPE_LAYOUT_HALF;
    c.rope_base = 500.0;
    c.rope_fraction = 0.5;
    return c;
}

/* Saves a checkpoint of a tiny model with distinctive values in every field. */
static int save_tiny(const char *path, gpt *m, checkpoint *ck) {
    gpt_config cfg = tiny_cfg();
    if (gpt_init(m, &cfg, 42) != GPT_OK) return -1;
    for (size_t i = 0; i < m->num_params; i++) {
        m->m_memory[i] = (float)i * 1e-3f;
        m->v_memory[i] = (float)i * 1e-6f;
    }
    static train_eval_point ev[2] = { { 0, 5.5f }, { 7, 4.25f } };
    memset(ck, 0, sizeof *ck);
    ck->cfg = cfg;
    ck->tc = train_config_default();
    ck->tc.B = 3;
    ck->tc.seed = 0xFFFFFFFFFFFFull;
    ck->tc.lr = 3e-4;
    ck->tokenizer = CHECKPOINT_TOKENIZER_BYTES;
    ck->vocab = (uint32_t)cfg.V;
    ck->step = 7;
    for (int i = 0; i < 4; i++) ck->data_rng.s[i] = 0x0123456789ABCDEFull * (uint64_t)(i + 1);
    ck->adamw_t = 7;
    ck->elapsed_s = 12.5;
    snprintf(ck->data_path, sizeof ck->data_path, "data/x.txt");
    ck->data_len = 1234;
    ck->data_crc = 0xDEADBEEFu;
    ck->n_evals = 2;
    ck->evals = ev;
    ck->n_params = m->num_params;
    ck->params = m->params_memory;
    ck->m = m->m_memory;
    ck->v = m->v_memory;
    return checkpoint_save(path, ck, NULL, 0);
}

TEST(checkpoint_round_trip_every_field) {
    char path[512];
    snprintf(path, sizeof path, "%s/ck_round.bin", test_tmp_dir());
    gpt m;
    checkpoint a, b;
    CHECK(save_tiny(path, &m, &a) == 0);
    char err[512] = "";
    CHECK(checkpoint_load(path, &b, 1, err, sizeof err) == 0);
    if (err[0]) printf("    %s\n", err);
    CHECK_EQ_INT(b.cfg.L, a.cfg.L);
    CHECK_EQ_INT(b.cfg.NH, a.cfg.NH);
    CHECK_EQ_INT(b.cfg.C, a.cfg.C);
    CHECK_EQ_INT(b.cfg.maxT, a.cfg.maxT);
    CHECK_EQ_INT(b.cfg.V, a.cfg.V);
    CHECK_EQ_INT(b.cfg.pe, PE_ROPE);
    CHECK_EQ_INT(b.cfg.rope_layout, ROPE_LAYOUT_HALF);
    CHECK(b.cfg.rope_base == 500.0 && b.cfg.rope_fraction == 0.5);
    CHECK_EQ_INT(b.tc.B, 3);
    CHECK(b.tc.seed == 0xFFFFFFFFFFFFull && b.tc.lr == 3e-4 && b.tc.min_lr == a.tc.min_lr);
    CHECK(b.tc.steps == a.tc.steps && b.tc.warmup == a.tc.warmup && b.tc.beta2 == a.tc.beta2);
    CHECK_EQ_INT(b.step, 7);
    CHECK_EQ_INT(b.adamw_t, 7);
    CHECK(memcmp(b.data_rng.s, a.data_rng.s, sizeof a.data_rng.s) == 0);
    CHECK(b.elapsed_s == 12.5);
    CHECK(strcmp(b.data_path, "data/x.txt") == 0);
    CHECK(b.data_len == 1234 && b.data_crc == 0xDEADBEEFu);
    CHECK_EQ_INT(b.n_evals, 2);
    CHECK(b.evals && b.evals[1].step == 7 && b.evals[1].val_loss == 4.25f);
    CHECK_EQ_INT(b.n_params, m.num_params);
    CHECK(b.params && memcmp(b.params, m.params_memory, m.num_params * sizeof(float)) == 0);
    CHECK(b.m && memcmp(b.m, m.m_memory, m.num_params * sizeof(float)) == 0);
    CHECK(b.v && memcmp(b.v, m.v_memory, m.num_params * sizeof(float)) == 0);
    checkpoint_free(&b);
    /* checkpoint_load_model rebuilds a model with the same parameters. */
    gpt m2;
    CHECK(checkpoint_load_model(path, &m2, NULL, err, sizeof err) == 0);
    CHECK(m2.params_memory && memcmp(m2.params_memory, m.params_memory, m.num_params * sizeof(float)) == 0);
    gpt_free(&m2);
    gpt_free(&m);
}

/* Writes data[0, n) to path (plain, for crafting bad files). */
static void write_raw(const char *path, const unsigned char *d, size_t n) {
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(d, 1, n, f);
        fclose(f);
    }
}

/* Loads path and returns the error text (empty if it loaded). */
static void load_err(const char *path, char *err, size_t n) {
    checkpoint c;
    err[0] = 0;
    if (checkpoint_load(path, &c, 1, err, n) == 0) checkpoint_free(&c);
    CHECK(strchr(err, '\n') == NULL);   /* one line */
}

TEST(checkpoint_rejects_version_truncation_corruption) {
    char path[512], bad[600], err[512];
    snprintf(path, sizeof path, "%s/ck_bad.bin", test_tmp_dir());
    snprintf(bad, sizeof bad, "%s/ck_bad2.bin", test_tmp_dir());
    gpt m;
    checkpoint a;
    CHECK(save_tiny(path, &m, &a) == 0);
    gpt_free(&m);
    unsigned char *d = NULL;
    size_t n = 0;
    CHECK(io_read_file(path, &d, &n, NULL, 0) == 0);
    if (!d) return;
    unsigned char *c = malloc(n);
    /* another version (byte 8 is the low byte of the version) */
    memcpy(c, d, n);
    c[8] = 3;   /* a version this build does not read (it reads 1 and 2) */
    write_raw(bad, c, n);
    load_err(bad, err, sizeof err);
    CHECK(strstr(err, "version 3") != NULL);
    /* truncated, at several lengths, including inside the prefix */
    const size_t cuts[] = { n - 1, n / 2, 30, 10 };
    for (int i = 0; i < 4; i++) {
        write_raw(bad, d, cuts[i]);
        load_err(bad, err, sizeof err);
        CHECK(strstr(err, "truncated") != NULL);
    }
    /* trailing garbage */
    memcpy(c, d, n);
    write_raw(bad, c, n);
    FILE *f = fopen(bad, "ab");
    if (f) { fputc(0, f); fclose(f); }
    load_err(bad, err, sizeof err);
    CHECK(err[0] != 0);
    /* one flipped bit in a parameter, in the header, in the CRC itself */
    const size_t flips[] = { n - 100, 40, n - 1 };
    for (int i = 0; i < 3; i++) {
        memcpy(c, d, n);
        c[flips[i]] ^= 0x10;
        write_raw(bad, c, n);
        load_err(bad, err, sizeof err);
        CHECK(strstr(err, "CRC") != NULL);
    }
    /* not a checkpoint at all */
    write_raw(bad, (const unsigned char *)"hello world, this is text not a model", 37);
    load_err(bad, err, sizeof err);
    CHECK(strstr(err, "not a ropegpt checkpoint") != NULL);
    /* the untouched file still loads */
    load_err(path, err, sizeof err);
    CHECK(err[0] == 0);
    free(c);
    free(d);
}
