/*
 * test_data.c — the byte-level data loader (split sizes, window contents,
 * reproducibility, fixed evaluation batches, errors) and the PRNG it uses.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "data/dataset.h"
#include "util/rng.h"

static const char *data_path = "data/tinyshakespeare.txt";

TEST(data_split_90_10) {
    dataset ds;
    CHECK_EQ_INT(dataset_load(&ds, data_path, 64), DATA_OK);
    CHECK(ds.n > 1000000);   /* Tiny Shakespeare is 1,115,394 bytes */
    CHECK_EQ_INT(ds.n_train, (size_t)((uint64_t)ds.n * 9 / 10));
    CHECK_EQ_INT(ds.n_train + ds.n_val, ds.n);
    size_t nv = 0;
    const uint8_t *val = dataset_split_data(&ds, SPLIT_VAL, &nv);
    CHECK(val == ds.bytes + ds.n_train);
    CHECK_EQ_INT(nv, ds.n_val);
    CHECK(memcmp(ds.bytes, "First Citizen", 13) == 0);
    dataset_free(&ds);
    CHECK(ds.bytes == NULL);
}

TEST(data_windows_in_range_and_shifted) {
    /* text[i] = i: every token tells its own position. 250 bytes: train
     * [0, 225), val [225, 250). */
    uint8_t text[250];
    for (int i = 0; i < 250; i++) text[i] = (uint8_t)i;
    dataset ds;
    CHECK_EQ_INT(dataset_init_bytes(&ds, text, 250, 8), DATA_OK);
    CHECK_EQ_INT(ds.n_train, 225);
    CHECK_EQ_INT(ds.n_val, 25);
    rng_state r;
    rng_init(&r, 1, 0);
    enum { B = 8, T = 8 };
    int inp[B * T], tgt[B * T];
    int bad = 0, seen[2][225] = { { 0 } };
    for (int it = 0; it < 400; it++) {
        data_split sp = it % 2 ? SPLIT_VAL : SPLIT_TRAIN;
        CHECK_EQ_INT(dataset_batch(&ds, sp, &r, B, T, inp, tgt), DATA_OK);
        int lo = sp == SPLIT_VAL ? 225 : 0, hi = sp == SPLIT_VAL ? 250 : 225;
        for (int b = 0; b < B; b++) {
            int s = inp[b * T];
            if (s < lo || s + T >= hi) bad++;   /* the T+1 window lies in the split */
            else seen[sp][s - lo] = 1;
            for (int t = 0; t < T; t++) {
                if (inp[b * T + t] != s + t) bad++;
                if (tgt[b * T + t] != s + t + 1) bad++;   /* targets = inputs shifted by one */
            }
        }
    }
    CHECK_EQ_INT(bad, 0);
    /* every start is reachable: train has 217 starts, val 17; with 1600 and
     * 1600 draws each start is missed with probability < 1e-3 (train) */
    int n_train = 0, n_val = 0;
    for (int k = 0; k < 217; k++) n_train += seen[0][k];
    for (int k = 0; k < 17; k++) n_val += seen[1][k];
    CHECK_EQ_INT(n_val, 17);
    CHECK(n_train >= 210);
    CHECK(seen[1][0] && seen[1][16]);
    dataset_free(&ds);
}

TEST(data_batches_reproducible) {
    dataset ds;
    CHECK_EQ_INT(dataset_load(&ds, data_path, 64), DATA_OK);
    int a[4 * 64], at[4 * 64], b[4 * 64], bt[4 * 64], c[4 * 64], ct[4 * 64];
    rng_state r1, r2, r3;
    rng_init(&r1, 7, 0);
    rng_init(&r2, 7, 0);
    rng_init(&r3, 8, 0);
    dataset_batch(&ds, SPLIT_TRAIN, &r1, 4, 64, a, at);
    dataset_batch(&ds, SPLIT_TRAIN, &r2, 4, 64, b, bt);
    dataset_batch(&ds, SPLIT_TRAIN, &r3, 4, 64, c, ct);
    CHECK(memcmp(a, b, sizeof a) == 0 && memcmp(at, bt, sizeof at) == 0);
    CHECK(memcmp(a, c, sizeof a) != 0);
    /* eval batch k is fixed whatever was drawn before */
    CHECK_EQ_INT(dataset_eval_batch(&ds, SPLIT_VAL, 3, 4, 64, a, at), DATA_OK);
    dataset_eval_batch(&ds, SPLIT_VAL, 0, 4, 64, c, ct);
    dataset_eval_batch(&ds, SPLIT_VAL, 3, 4, 64, b, bt);
    CHECK(memcmp(a, b, sizeof a) == 0 && memcmp(at, bt, sizeof at) == 0);
    CHECK(memcmp(a, c, sizeof a) != 0);
    CHECK_EQ_INT(dataset_eval_batch(&ds, SPLIT_VAL, -1, 4, 64, a, at), DATA_EARG);
    dataset_free(&ds);
}

TEST(data_errors) {
    dataset ds;
    char path[512];
    snprintf(path, sizeof path, "%s/does_not_exist.txt", test_tmp_dir());
    CHECK_EQ_INT(dataset_load(&ds, path, 0), DATA_EOPEN);
    CHECK(ds.bytes == NULL);
    /* a folder opens for reading on Linux, then every read fails: named as a folder */
    CHECK_EQ_INT(dataset_load(&ds, test_tmp_dir(), 0), DATA_EISDIR);
    CHECK(ds.bytes == NULL);
    CHECK(strstr(data_status_str(DATA_EISDIR), "folder") != NULL);
    snprintf(path, sizeof path, "%s/empty.txt", test_tmp_dir());
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (f) fclose(f);
    CHECK_EQ_INT(dataset_load(&ds, path, 0), DATA_EEMPTY);
    /* 100 bytes: val has 10, so T = 9 fits (10 tokens) and T = 10 does not. */
    snprintf(path, sizeof path, "%s/short.txt", test_tmp_dir());
    f = fopen(path, "wb");
    CHECK(f != NULL);
    if (f) {
        for (int i = 0; i < 100; i++) fputc('a' + i % 26, f);
        fclose(f);
    }
    CHECK_EQ_INT(dataset_load(&ds, path, 10), DATA_ESHORT);
    CHECK(ds.bytes == NULL);
    CHECK_EQ_INT(dataset_load(&ds, path, 9), DATA_OK);
    CHECK_EQ_INT(dataset_check_T(&ds, 10), DATA_ESHORT);
    CHECK_EQ_INT(dataset_check_T(&ds, 0), DATA_EARG);
    int inp[20], tgt[20];
    rng_state r;
    rng_init(&r, 1, 0);
    CHECK_EQ_INT(dataset_batch(&ds, SPLIT_VAL, &r, 2, 10, inp, tgt), DATA_ESHORT);
    CHECK_EQ_INT(dataset_batch(&ds, SPLIT_VAL, &r, 2, 9, inp, tgt), DATA_OK);
    CHECK_EQ_INT(dataset_batch(&ds, SPLIT_VAL, &r, 0, 9, inp, tgt), DATA_EARG);
    CHECK_EQ_INT(dataset_batch(&ds, (data_split)5, &r, 2, 9, inp, tgt), DATA_EARG);
    CHECK_EQ_INT(dataset_batch(&ds, SPLIT_VAL, NULL, 2, 9, inp, tgt), DATA_ENULL);
    dataset_free(&ds);
    CHECK_EQ_INT(dataset_init_bytes(&ds, NULL, 0, 0), DATA_EEMPTY);
    CHECK(strcmp(data_status_str(DATA_ESHORT), "unknown status") != 0);
    CHECK(strcmp(data_status_str((data_status)99), "unknown status") == 0);
}

TEST(data_rng_distributions) {
    rng_state r;
    rng_init(&r, 123, 0);
    const int n = 200000;
    double s = 0, s2 = 0, us = 0;
    int out = 0;
    for (int i = 0; i < n; i++) {
        double x = rng_normal(&r);
        s += x;
        s2 += x * x;
        float u = rng_uniform(&r);
        if (!(u >= 0.0f && u < 1.0f)) out++;
        us += u;
        uint64_t k = rng_below(&r, 7);
        if (k >= 7) out++;
    }
    CHECK_EQ_INT(out, 0);
    /* standard errors with n = 2e5: mean 0.0022, variance 0.0032, uniform 0.00065; 5 sigma */
    CHECK_NEAR(s / n, 0.0, 0.011);
    CHECK_NEAR(s2 / n, 1.0, 0.016);
    CHECK_NEAR(us / n, 0.5, 0.0033);
}

TEST(data_rng_streams_and_seeds) {
    rng_state a, b, c, d;
    rng_init(&a, 5, 0);
    rng_init(&b, 5, 0);
    rng_init(&c, 5, 1);
    rng_init(&d, 6, 0);
    int same_ab = 1, same_ac = 0, same_ad = 0;
    for (int i = 0; i < 100; i++) {
        uint64_t x = rng_u64(&a), y = rng_u64(&b), z = rng_u64(&c), w = rng_u64(&d);
        if (x != y) same_ab = 0;
        if (x == z) same_ac++;
        if (x == w) same_ad++;
    }
    CHECK(same_ab);
    CHECK_EQ_INT(same_ac, 0);
    CHECK_EQ_INT(same_ad, 0);
    CHECK_EQ_INT(rng_below(&a, 1), 0);
    CHECK_EQ_INT(rng_below(&a, 0), 0);
}
