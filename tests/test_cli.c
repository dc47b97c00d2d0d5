/*
 * test_cli.c — the built `ropegpt` binary end to end (test_bin_path()):
 * --help lists every flag with its default; each kind of bad input exits 2
 * with one line on stderr naming the flag or file and leaves nothing in
 * --out; a run split by --stop-after and --resume equals the straight run
 * bit for bit; the same seed and thread count give the same log; Ctrl-C
 * saves and exits 130; sample is reproducible. Runs use a tiny model on the
 * first 20000 bytes of tinyshakespeare so the whole file takes seconds.
 */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "test.h"
#include "model/checkpoint.h"
#include "util/io.h"

#define MAX_ARGS 48

/* ---------------------------------------------------------------- helpers */

static size_t last_out_len;   /* stdout bytes of the last run() */

/* Runs the binary; returns its exit status, stdout and stderr in out/err. */
static int run(const char *const *args, char *out, size_t outlen, char *err, size_t errlen) {
    return test_run_bin(args, out, outlen, &last_out_len, err, errlen);
}

static void tmp_path(char *out, size_t n, const char *name) {
    snprintf(out, n, "%s/%s", test_tmp_dir(), name);
}

/* The first 20000 bytes of tinyshakespeare, written once per runner. */
static const char *small_data(void) {
    static char path[600];
    if (path[0]) return path;
    tmp_path(path, sizeof path, "cli_small.txt");
    unsigned char *d = NULL;
    size_t n = 0;
    if (io_read_file("data/tinyshakespeare.txt", &d, &n, NULL, 0) == 0) {
        io_write_atomic(path, d, n < 20000 ? n : 20000, NULL, 0);
        free(d);
    }
    return path;
}

/* The tiny model every CLI run uses; args after these are appended by callers. */
#define TINY "--layers", "1", "--dim", "16", "--heads", "2", "--ctx", "16", "--batch", "2", "--eval-batches", "2", \
             "--threads", "1", "--quiet"

/* Checks one rejected command: exit 2, exactly one line on stderr containing
 * needle, and (if out_dir) nothing created at out_dir. */
static void expect_bad(const char *const *args, const char *needle, const char *out_dir) {
    char err[4096];
    int before = test_failures;
    int st = run(args, NULL, 0, err, sizeof err);
    CHECK_EQ_INT(st, 2);
    size_t n = strlen(err);
    CHECK(n > 1 && err[n - 1] == '\n' && strchr(err, '\n') == err + n - 1);
    CHECK(strstr(err, needle) != NULL);
    if (out_dir) CHECK(!io_exists(out_dir));
    if (test_failures != before) {
        printf("    command:");
        for (int i = 0; args[i]; i++) printf(" %s", args[i]);
        printf("\n    stderr: %s\n", err);
    }
}

/* ---------------------------------------------------------------- help */

TEST(cli_help_lists_every_flag_with_default) {
    static const char *train_flags[] = { "--pe", "--layers", "--heads", "--dim", "--ctx", "--rope-layout",
        "--rope-base", "--rope-fraction", "--batch", "--steps", "--lr", "--min-lr", "--warmup", "--beta2",
        "--weight-decay", "--grad-clip", "--accum", "--eval-every", "--eval-batches", "--seed", "--threads",
        "--save-every", "--data", "--out", "--resume", "--stop-after", "--force", "--quiet", "--nan-policy", NULL };
    static const char *sample_flags[] = { "--model", "--prompt", "--tokens", "--temperature", "--top-k", "--seed",
                                          "--threads", NULL };
    static char out[32768];
    const char *a1[] = { "--help", NULL };
    CHECK_EQ_INT(run(a1, out, sizeof out, NULL, 0), 0);
    for (int i = 0; train_flags[i]; i++) CHECK(strstr(out, train_flags[i]) != NULL);
    for (int i = 0; sample_flags[i]; i++) CHECK(strstr(out, sample_flags[i]) != NULL);
    const char *a2[] = { "train", "--help", NULL };
    CHECK_EQ_INT(run(a2, out, sizeof out, NULL, 0), 0);
    for (int i = 0; train_flags[i]; i++) {
        /* each flag on its own line, with a default */
        char needle[64];
        snprintf(needle, sizeof needle, "\n  %s ", train_flags[i]);
        const char *p = strstr(out, needle);
        CHECK(p != NULL);
        const char *eol = p ? strchr(p + 1, '\n') : NULL;
        const char *def = p ? strstr(p, "(default: ") : NULL;
        CHECK(def != NULL && eol != NULL && def < eol);
    }
    /* the nanoGPT defaults */
    CHECK(strstr(out, "peak learning rate (default: 0.001)") != NULL);
    CHECK(strstr(out, "(default: learned)") != NULL);
    CHECK(strstr(out, "(default: 2000)") != NULL);
    CHECK(strstr(out, "(default: 0.99)") != NULL);
}

/* ---------------------------------------------------------------- bad input */

TEST(cli_rejects_bad_flags) {
    const char *data = small_data();
    char o[64][600];
    for (int i = 0; i < 64; i++) {
        char name[64];
        snprintf(name, sizeof name, "cli_bad_%d", i);
        tmp_path(o[i], sizeof o[i], name);
    }
    struct { const char *args[MAX_ARGS]; const char *needle; } cases[] = {
        { { "train", "--bogus", "1" }, "--bogus" },
        { { "train", "--pe", "fancy" }, "--pe" },
        { { "train", "--lr", "abc" }, "--lr" },
        { { "train", "--lr", "0" }, "--lr" },
        { { "train", "--lr", "-1" }, "--lr" },
        { { "train", "--lr", "nan" }, "--lr" },
        { { "train", "--nan-policy", "maybe" }, "--nan-policy" },
        /* ~6.6 TiB of parameters and AdamW state: more than any test machine has. */
        { { "train", "--dim", "8192", "--layers", "512", "--heads", "64" }, "GiB is available" },
        { { "train", "--arch", "llama", "--dim", "8192", "--layers", "512", "--heads", "64" }, "GiB is available" },
        { { "train", "--lr" }, "--lr" },
        { { "train", "--steps", "0" }, "--steps" },
        { { "train", "--steps", "1.5" }, "--steps" },
        { { "train", "--steps", "99999999999999999999999" }, "--steps" },
        { { "train", "--batch", "0" }, "--batch" },
        { { "train", "--dim", "130", "--heads", "4" }, "--dim" },
        { { "train", "--pe", "rope", "--dim", "12", "--heads", "4" }, "even head size" },
        { { "train", "--pe", "rope", "--dim", "16", "--heads", "2", "--rope-fraction", "0.1" }, "--rope-fraction" },
        { { "train", "--rope-fraction", "1.5", "--pe", "rope" }, "--rope-fraction" },
        { { "train", "--rope-base", "500" }, "--rope-base" },   /* default pe is learned */
        { { "train", "--beta2", "1" }, "--beta2" },
        { { "train", "--min-lr", "0.01", "--lr", "0.001" }, "--min-lr" },
        { { "train", "--eval-every", "0" }, "--eval-every" },
        { { "train", "--threads", "-2" }, "--threads" },
        { { "train", "--seed", "-1" }, "--seed" },
        { { "train", "stray" }, "stray" },
        { { "train", "--force=1" }, "--force" },
        { { "frobnicate" }, "frobnicate" },
        { { "sample", "--temperature", "-1" }, "--temperature" },
        { { "sample", "--tokens", "x" }, "--tokens" },
    };
    int nc = (int)(sizeof cases / sizeof cases[0]);
    for (int i = 0; i < nc; i++) {
        const char *args[MAX_ARGS + 8];
        int n = 0;
        for (int k = 0; cases[i].args[k]; k++) args[n++] = cases[i].args[k];
        if (strcmp(args[0], "train") == 0) {
            args[n++] = "--data";
            args[n++] = data;
            args[n++] = "--out";
            args[n++] = o[i];
        }
        args[n] = NULL;
        expect_bad(args, cases[i].needle, strcmp(args[0], "train") == 0 ? o[i] : NULL);
    }
}

TEST(cli_rejects_bad_data_and_out) {
    const char *data = small_data();
    char out[600], missing[600], empty[600], tiny[600], file[600], under[700];
    tmp_path(out, sizeof out, "cli_data_out");
    tmp_path(missing, sizeof missing, "no_such_file.txt");
    tmp_path(empty, sizeof empty, "cli_empty.txt");
    tmp_path(tiny, sizeof tiny, "cli_tiny.txt");
    tmp_path(file, sizeof file, "cli_a_file");
    io_write_atomic(empty, "", 0, NULL, 0);
    /* 200 bytes: validation split = last 20 */
    char t[200];
    for (int i = 0; i < 200; i++) t[i] = (char)('a' + i % 26);
    io_write_atomic(tiny, t, sizeof t, NULL, 0);
    io_write_atomic(file, "x", 1, NULL, 0);
    snprintf(under, sizeof under, "%s/run", file);

    const char *a1[] = { "train", TINY, "--data", missing, "--out", out, NULL };
    expect_bad(a1, "no_such_file.txt", out);
    const char *a2[] = { "train", TINY, "--data", empty, "--out", out, NULL };
    expect_bad(a2, "cli_empty.txt", out);
    const char *a3[] = { "train", TINY, "--data", "", "--out", out, NULL };
    expect_bad(a3, "--data", out);
    /* ctx 20 == the validation split length: a window needs ctx + 1 tokens */
    const char *a4[] = { "train", TINY, "--ctx", "20", "--data", tiny, "--out", out, NULL };
    expect_bad(a4, "--ctx", out);
    const char *a5[] = { "train", TINY, "--steps", "1", "--data", data, "--out", under, NULL };
    expect_bad(a5, "--out", NULL);
    CHECK(!io_exists(under));
    const char *a6[] = { "train", TINY, "--steps", "1", "--data", data, "--out", "/proc/ropegpt-test/run", NULL };
    expect_bad(a6, "--out", NULL);
    /* one token shorter works: ctx 19 fits a 20-token split */
    const char *ok[] = { "train", TINY, "--ctx", "19", "--steps", "1", "--data", tiny, "--out", out, NULL };
    CHECK_EQ_INT(run(ok, NULL, 0, NULL, 0), 0);
    /* a second run into the same folder needs --force */
    expect_bad(ok, "--resume", NULL);
    const char *forced[] = { "train", TINY, "--ctx", "19", "--steps", "1", "--data", tiny, "--out", out, "--force",
                             NULL };
    CHECK_EQ_INT(run(forced, NULL, 0, NULL, 0), 0);
}

/* Trains the tiny model for `steps` (stopping after stop_after if > 0) into dir. */
static int train_tiny(const char *dir, const char *steps, const char *stop_after, const char *seed) {
    const char *args[MAX_ARGS] = { "train", TINY, "--pe", "rope", "--steps", steps, "--eval-every", "5",
                                   "--seed", seed, "--data", small_data(), "--out", dir, "--force", NULL };
    int n = 0;
    while (args[n]) n++;
    if (stop_after) {
        args[n++] = "--stop-after";
        args[n++] = stop_after;
        args[n] = NULL;
    }
    return run(args, NULL, 0, NULL, 0);
}

TEST(cli_rejects_bad_checkpoints) {
    char dir[600], ck[700], bad_dir[600], bad[700], log_before[8192], log_after[8192], logp[700];
    tmp_path(dir, sizeof dir, "cli_ck_base");
    tmp_path(bad_dir, sizeof bad_dir, "cli_ck_bad");
    snprintf(ck, sizeof ck, "%s/model.bin", dir);
    snprintf(bad, sizeof bad, "%s/model.bin", bad_dir);
    snprintf(logp, sizeof logp, "%s/log.csv", bad_dir);
    CHECK_EQ_INT(train_tiny(dir, "4", "2", "1"), 0);
    unsigned char *d = NULL;
    size_t n = 0;
    CHECK(io_read_file(ck, &d, &n, NULL, 0) == 0);
    if (!d) return;
    CHECK(io_mkdir_p(bad_dir, NULL, 0) == 0);
    io_write_atomic(logp, "step,train_loss\n", 16, NULL, 0);
    test_slurp(logp, log_before, sizeof log_before);
    unsigned char *c = malloc(n);
    struct { size_t len; size_t flip; unsigned char val; const char *needle; } cases[] = {
        { 0, 8, 9, "version 9" },         /* another format version */
        { 100, 0, 0, "truncated" },       /* cut to 100 bytes */
        { 0, 0, 0, "truncated" },         /* cut by one byte (len set below) */
        { 0, 0, 0, "CRC" },               /* a flipped byte in the parameters (flip set below) */
    };
    cases[2].len = n - 1;
    cases[3].flip = n - 50;
    for (int i = 0; i < 4; i++) {
        memcpy(c, d, n);
        size_t len = cases[i].len ? cases[i].len : n;
        if (cases[i].flip) c[cases[i].flip] = cases[i].val ? cases[i].val : (unsigned char)(c[cases[i].flip] ^ 1);
        io_write_atomic(bad, c, len, NULL, 0);
        const char *r[] = { "train", "--resume", bad_dir, "--quiet", NULL };
        expect_bad(r, cases[i].needle, NULL);
        const char *s[] = { "sample", "--model", bad, "--tokens", "5", NULL };
        expect_bad(s, cases[i].needle, NULL);
        /* a refused resume touches nothing */
        test_slurp(logp, log_after, sizeof log_after);
        CHECK(strcmp(log_before, log_after) == 0);
    }
    const char *r1[] = { "train", "--resume", bad_dir, "--lr", "0.1", NULL };
    expect_bad(r1, "--lr", NULL);
    char nodir[600];
    tmp_path(nodir, sizeof nodir, "cli_ck_none");
    const char *r2[] = { "train", "--resume", nodir, NULL };
    expect_bad(r2, "cli_ck_none", NULL);
    const char *s2[] = { "sample", "--model", nodir, NULL };
    expect_bad(s2, "cli_ck_none", NULL);
    free(c);
    free(d);
}

/* ---------------------------------------------------------------- runs */

/* log.csv columns step,train_loss,val_loss,lr (timings differ run to run). */
static void log_losses(const char *dir, char *buf, size_t n) {
    char path[700], raw[16384];
    snprintf(path, sizeof path, "%s/log.csv", dir);
    test_slurp(path, raw, sizeof raw);
    size_t used = 0;
    int commas = 0;
    for (const char *p = raw; *p && used + 1 < n; p++) {
        if (*p == '\n') commas = 0;
        else if (*p == ',' && ++commas >= 4) continue;
        if (commas >= 4) continue;
        buf[used++] = *p;
    }
    buf[used] = 0;
}

static int load_params(const char *dir, checkpoint *c) {
    char path[700], err[512];
    snprintf(path, sizeof path, "%s/model.bin", dir);
    int rc = checkpoint_load(path, c, 1, err, sizeof err);
    if (rc) printf("    %s\n", err);
    return rc;
}

TEST(cli_resume_matches_straight_run) {
    char a[600], b[600];
    tmp_path(a, sizeof a, "cli_straight");
    tmp_path(b, sizeof b, "cli_split");
    CHECK_EQ_INT(train_tiny(a, "20", NULL, "1337"), 0);
    CHECK_EQ_INT(train_tiny(b, "20", "10", "1337"), 0);   /* --stop-after exits 0 */
    const char *r[] = { "train", "--resume", b, "--quiet", NULL };
    char err[2048];
    CHECK_EQ_INT(run(r, NULL, 0, err, sizeof err), 0);
    static char la[16384], lb[16384];
    log_losses(a, la, sizeof la);
    log_losses(b, lb, sizeof lb);
    CHECK(strlen(la) > 100);
    CHECK(strcmp(la, lb) == 0);
    checkpoint ca, cb;
    if (load_params(a, &ca) == 0 && load_params(b, &cb) == 0) {
        CHECK_EQ_INT(ca.step, 20);
        CHECK_EQ_INT(cb.step, 20);
        CHECK(ca.n_params == cb.n_params);
        CHECK(memcmp(ca.params, cb.params, ca.n_params * sizeof(float)) == 0);
        CHECK(memcmp(ca.m, cb.m, ca.n_params * sizeof(float)) == 0);
        CHECK(memcmp(ca.v, cb.v, ca.n_params * sizeof(float)) == 0);
        checkpoint_free(&ca);
        checkpoint_free(&cb);
    }
}

TEST(cli_same_seed_same_log) {
    char a[600], b[600], c[600];
    tmp_path(a, sizeof a, "cli_det_a");
    tmp_path(b, sizeof b, "cli_det_b");
    tmp_path(c, sizeof c, "cli_det_c");
    CHECK_EQ_INT(train_tiny(a, "12", NULL, "5"), 0);
    CHECK_EQ_INT(train_tiny(b, "12", NULL, "5"), 0);
    CHECK_EQ_INT(train_tiny(c, "12", NULL, "6"), 0);
    static char la[16384], lb[16384], lc[16384];
    log_losses(a, la, sizeof la);
    log_losses(b, lb, sizeof lb);
    log_losses(c, lc, sizeof lc);
    CHECK(strlen(la) > 100);
    CHECK(strcmp(la, lb) == 0);
    CHECK(strcmp(la, lc) != 0);   /* the comparison can fail */
    /* and with two threads (the layers' OpenMP loops keep a fixed order) */
    char d[600], e[600];
    tmp_path(d, sizeof d, "cli_det_d");
    tmp_path(e, sizeof e, "cli_det_e");
    for (int i = 0; i < 2; i++) {
        const char *args[] = { "train", TINY, "--threads", "2", "--pe", "alibi", "--steps", "6", "--eval-every", "3",
                               "--data", small_data(), "--out", i ? e : d, NULL };
        CHECK_EQ_INT(run(args, NULL, 0, NULL, 0), 0);
    }
    log_losses(d, la, sizeof la);
    log_losses(e, lb, sizeof lb);
    CHECK(strlen(la) > 50);
    CHECK(strcmp(la, lb) == 0);
}

TEST(cli_sigint_saves_and_exits_130) {
    char dir[600], logp[700], po[700], pe[700];
    tmp_path(dir, sizeof dir, "cli_sigint");
    snprintf(logp, sizeof logp, "%s/log.csv", dir);
    snprintf(po, sizeof po, "%s/cli_sigint.out", test_tmp_dir());
    snprintf(pe, sizeof pe, "%s/cli_sigint.err", test_tmp_dir());
    const char *args[] = { "train", TINY, "--steps", "1000000", "--eval-every", "1000000", "--data", small_data(),
                           "--out", dir, NULL };
    pid_t pid = test_spawn_bin(args, po, pe);
    /* Wait (up to 60 s) until a few steps are logged, then interrupt. */
    char logtxt[4096] = "";
    for (int i = 0; i < 6000; i++) {
        test_slurp(logp, logtxt, sizeof logtxt);
        int lines = 0;
        for (const char *p = logtxt; *p; p++) lines += *p == '\n';
        if (lines >= 4) break;
        struct timespec ts = { 0, 10 * 1000 * 1000 };
        nanosleep(&ts, NULL);
    }
    kill(pid, SIGINT);
    CHECK_EQ_INT(test_wait_bin(pid), 130);
    char err[2048];
    test_slurp(pe, err, sizeof err);
    CHECK(strstr(err, "interrupted") != NULL);
    checkpoint c;
    if (load_params(dir, &c) == 0) {
        CHECK(c.step >= 3);
        /* the log holds exactly the steps the checkpoint has */
        static char lg[1 << 16];
        test_slurp(logp, lg, sizeof lg);
        int rows = 0;
        for (const char *p = lg; *p; p++) rows += *p == '\n';
        CHECK_EQ_INT(rows, c.step + 2);   /* header + step 0 + steps 1..step */
        checkpoint_free(&c);
    }
}

TEST(cli_sample_reproducible) {
    char dir[600], ck[700];
    tmp_path(dir, sizeof dir, "cli_sample");
    snprintf(ck, sizeof ck, "%s/model.bin", dir);
    CHECK_EQ_INT(train_tiny(dir, "3", NULL, "1"), 0);
    static char o1[4096], o2[4096], o3[4096];
    const char *g[] = { "sample", "--model", dir, "--prompt", "ROMEO:", "--tokens", "40", "--temperature", "0",
                        "--threads", "1", NULL };
    CHECK_EQ_INT(run(g, o1, sizeof o1, NULL, 0), 0);
    size_t n1 = last_out_len;
    CHECK_EQ_INT(run(g, o2, sizeof o2, NULL, 0), 0);
    CHECK(strncmp(o1, "ROMEO:", 6) == 0);
    CHECK_EQ_INT(n1, 6 + 40 + 1);   /* prompt, 40 generated bytes, newline */
    CHECK(n1 == last_out_len && memcmp(o1, o2, n1) == 0);
    const char *s1[] = { "sample", "--model", ck, "--tokens", "40", "--seed", "1", "--threads", "1", NULL };
    const char *s2[] = { "sample", "--model", ck, "--tokens", "40", "--seed", "2", "--top-k", "200", "--threads", "1",
                         NULL };
    CHECK_EQ_INT(run(s1, o1, sizeof o1, NULL, 0), 0);
    n1 = last_out_len;
    CHECK_EQ_INT(n1, 40 + 1);   /* no --prompt: starts from a newline, which is not printed */
    CHECK_EQ_INT(run(s1, o2, sizeof o2, NULL, 0), 0);
    CHECK(n1 == last_out_len && memcmp(o1, o2, n1) == 0);
    CHECK_EQ_INT(run(s2, o3, sizeof o3, NULL, 0), 0);
    CHECK(memcmp(o1, o3, n1) != 0);   /* another seed, another text (near-uniform model) */
}
