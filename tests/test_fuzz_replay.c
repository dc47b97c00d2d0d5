/*
 * test_fuzz_replay.c — replays every fuzz input kept in the tree through the
 * harnesses' entry functions, without libFuzzer, so `make test` (and its
 * ASan build) re-checks each crash the fuzzers found and fixed
 * (every file under tests/fuzz/regressions/<harness>/) and every seed
 * (tests/fuzz/corpus/<harness>/). The harness files are included, not linked: the Makefile
 * compiles only tests/test_*.c, and the same file then builds both this test
 * and, under mk/fuzz.mk with -DROPEGPT_LIBFUZZER, the fuzzer binary.
 */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "test.h"

#include "fuzz/fuzz_args.c"
#include "fuzz/fuzz_checkpoint.c"
#include "fuzz/fuzz_llama2c.c"
#include "fuzz/fuzz_rope_config.c"
#include "fuzz/fuzz_tokenizer.c"

typedef int (*fuzz_entry)(const uint8_t *data, size_t size);

/* Reads a whole file; NULL on error. */
static uint8_t *replay_read(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, n = 0;
    uint8_t *buf = malloc(cap);
    while (buf) {
        size_t k = fread(buf + n, 1, cap - n, f);
        n += k;
        if (n < cap) break;
        uint8_t *nb = realloc(buf, cap * 2);
        if (!nb) { free(buf); buf = NULL; break; }
        buf = nb;
        cap *= 2;
    }
    fclose(f);
    *len = n;
    return buf;
}

/* Feeds every regular file of dir to fn; returns the number fed (-1 if the
 * folder is missing). Each failing file is named in the test output.
 * quiet: stdout and stderr go to /dev/null during the call (the CLI
 * harness prints one line per input). */
static int replay_dir(const char *dir, fuzz_entry fn, int quiet) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int fed = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat st;
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) continue;
        size_t len = 0;
        uint8_t *data = replay_read(path, &len);
        CHECK(data != NULL);
        if (!data) continue;
        int saved_out = -1, saved_err = -1;
        if (quiet) {
            fflush(stdout);
            fflush(stderr);
            int devnull = open("/dev/null", O_WRONLY);
            saved_out = dup(1);
            saved_err = dup(2);
            if (devnull >= 0) {
                dup2(devnull, 1);
                dup2(devnull, 2);
                close(devnull);
            }
        }
        int rc = fn(data, len);
        if (quiet) {
            fflush(stdout);
            fflush(stderr);
            if (saved_out >= 0) { dup2(saved_out, 1); close(saved_out); }
            if (saved_err >= 0) { dup2(saved_err, 2); close(saved_err); }
        }
        if (rc != 0) test_fail(__FILE__, __LINE__, "fuzz input %s breaks a promise (rerun the harness on it)", path);
        free(data);
        fed++;
    }
    closedir(d);
    return fed;
}

static void replay_harness(const char *name, fuzz_entry fn, int quiet) {
#ifdef _OPENMP
    /* `sample --threads N` sets the OpenMP default for the process. */
    int threads = omp_get_max_threads();
#endif
    char dir[256];
    snprintf(dir, sizeof dir, "tests/fuzz/corpus/%s", name);
    int seeds = replay_dir(dir, fn, quiet);
    CHECK(seeds > 0);   /* every harness has committed seeds */
    snprintf(dir, sizeof dir, "tests/fuzz/regressions/%s", name);
    replay_dir(dir, fn, quiet);   /* may be missing: no crash found yet */
#ifdef _OPENMP
    omp_set_num_threads(threads);
#endif
}

TEST(fuzz_replay_rope_config) { replay_harness("rope_config", fuzz_rope_config_one, 0); }

TEST(fuzz_replay_checkpoint) { replay_harness("checkpoint", fuzz_checkpoint_one, 0); }

TEST(fuzz_replay_args) { replay_harness("args", fuzz_args_one, 1); }

TEST(fuzz_replay_llama2c) { replay_harness("llama2c", fuzz_llama2c_one, 0); }

TEST(fuzz_replay_tokenizer) { replay_harness("tokenizer", fuzz_tokenizer_one, 0); }

/* The seeds are real files of each format: if a format changes they stop
 * loading and the fuzzer would start from junk. Rewrite them with
 * `make fuzz-seeds`. kind: 0 checkpoint, 1 llama2c, 2 tokenizer. */
static int seeds_load(const char *name, int kind) {
    char dir[256];
    snprintf(dir, sizeof dir, "tests/fuzz/corpus/%s", name);
    DIR *d = opendir(dir);
    CHECK(d != NULL);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        char path[1024], err[512] = "";
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        int rc;
        if (kind == 0) {
            checkpoint ck;
            rc = checkpoint_load(path, &ck, 1, err, sizeof err);
            checkpoint_free(&ck);
        } else if (kind == 1) {
            llama2c_file f;
            rc = llama2c_open(&f, path, err, sizeof err);
            llama2c_close(&f);
        } else {
            size_t len = 0;
            uint8_t *data = replay_read(path, &len);
            bpe_tokenizer t;
            rc = data ? bpe_load(&t, path, fzt_count(data, len), err, sizeof err) : -1;
            if (rc == 0) bpe_free(&t);
            free(data);
        }
        if (rc != 0) test_fail(__FILE__, __LINE__, "seed %s no longer loads (%s): run make fuzz-seeds", path, err);
        n++;
    }
    if (d) closedir(d);
    return n;
}

TEST(fuzz_seeds_still_load) {
    CHECK(seeds_load("checkpoint", 0) >= 5);
    CHECK(seeds_load("llama2c", 1) >= 2);
    CHECK(seeds_load("tokenizer", 2) >= 2);
}

/* What the fuzzers found in librope, as plain checks (the inputs above
 * replay them through the harness; these name the behaviour). */
TEST(fuzz_found_rope_overflowing_scalings_refused) {
    rope_config c = rope_config_default();
    c.head_dim = c.rotary_dim = 8;
    double inv[4], af = -1.0;
    /* NTK with a denormal factor: base * s^(d/(d-2)) underflows to 0, and
     * 0^(-2i/d) is Inf. Valid fields, non-finite result: EPARAM. */
    c.scaling.type = ROPE_SCALING_NTK;
    c.scaling.factor = 4.9e-324;
    CHECK_EQ_INT(rope_config_validate(&c), ROPE_OK);
    CHECK_EQ_INT(rope_freqs(&c, 16, inv, &af), ROPE_EPARAM);
    CHECK(af == -1.0);   /* the attention factor is not written on error */
    rope_table t;
    CHECK_EQ_INT(rope_table_init(&t, &c, 16), ROPE_EPARAM);
    rope_table_free(&t);
    /* A base so small that base^(-2i/d) reaches 1e300 (limit 1e280, so
     * that p * inv_freq stays finite for any int64 position or shift). */
    double inv64[32];
    c = rope_config_default();
    c.base = 1e-310;
    CHECK_EQ_INT(rope_freqs(&c, 16, inv64, NULL), ROPE_EPARAM);
    /* base 1e-200 gives at most 1e194: still served. */
    c.base = 1e-200;
    CHECK_EQ_INT(rope_freqs(&c, 16, inv64, NULL), ROPE_OK);
}

TEST(fuzz_found_rope_huge_angles_stay_rotations) {
    /* Angles of 1e18 radians: p * inv_freq rounded to double has an error of
     * hundreds of radians, so the first-order correction cos(hi) - sin(hi)*lo
     * is no longer a rotation. Every row must still have cos^2 + sin^2 = 1. */
    rope_config c = rope_config_default();
    c.head_dim = c.rotary_dim = 64;
    rope_table t;
    CHECK_EQ_INT(rope_table_init(&t, &c, 64), ROPE_OK);
    float k[64];
    for (int i = 0; i < 64; i++) k[i] = 1.0f;
    rope_view v = rope_view_packed(k, 1, 1, 64);
    CHECK_EQ_INT(rope_shift(&t, &v, INT64_C(2738712729411733539), 1), ROPE_OK);
    for (int i = 0; i < 32; i++) {
        double n2 = (double)k[2 * i] * k[2 * i] + (double)k[2 * i + 1] * k[2 * i + 1];
        /* a pair of ones has norm^2 2; float cos/sin rounding: 1e-6 */
        CHECK_NEAR(n2, 2.0, 1e-6);
    }
    /* Same for a table row far past the table, with base < 1 (huge angles). */
    rope_table_free(&t);
    c.base = 1e-3;
    CHECK_EQ_INT(rope_table_init(&t, &c, 64), ROPE_OK);
    float cs[32], sn[32];
    CHECK_EQ_INT(rope_table_row(&t, INT64_C(2000000011), cs, sn), ROPE_OK);
    for (int i = 0; i < 32; i++)
        CHECK_NEAR((double)cs[i] * cs[i] + (double)sn[i] * sn[i], 1.0, 1e-6);   /* float rounding */
    rope_table_free(&t);
}
