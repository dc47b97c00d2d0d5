/*
 * dataset.c — loads a text file whole as byte tokens, splits it 90/10 and
 * draws random (or fixed evaluation) windows. See dataset.h.
 */
#define _POSIX_C_SOURCE 200809L   /* fileno, fstat */
#include "data/dataset.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

const char *data_status_str(data_status s) {
    switch (s) {
    case DATA_OK: return "ok";
    case DATA_ENULL: return "a required pointer is NULL";
    case DATA_EOPEN: return "cannot open the data file";
    case DATA_EREAD: return "error reading the data file";
    case DATA_EEMPTY: return "the data file is empty";
    case DATA_ESHORT: return "a data split is shorter than context + 1 tokens";
    case DATA_ENOMEM: return "out of memory";
    case DATA_EARG: return "batch size and context must be positive";
    case DATA_EISDIR: return "the data path is a folder, not a file";
    default: return "unknown status";
    }
}

static void split_sizes(dataset *ds) {
    /* n * 900 / 1000 in 64-bit: exact for any file that fits in memory. */
    ds->n_train = (size_t)((uint64_t)ds->n * DATASET_TRAIN_PERMILLE / 1000);
    ds->n_val = ds->n - ds->n_train;
}

data_status dataset_check_T(const dataset *ds, int T) {
    if (ds == NULL) return DATA_ENULL;
    if (T <= 0) return DATA_EARG;
    size_t need = (size_t)T + 1;
    if (ds->n_train < need || ds->n_val < need) return DATA_ESHORT;
    return DATA_OK;
}

/* Takes ownership of bytes[n] (n > 0), splits it, and checks that both
 * splits hold min_T + 1 tokens (min_T > 0; 0 skips the check). */
static data_status adopt(dataset *ds, uint8_t *bytes, size_t n, int min_T) {
    ds->bytes = bytes;
    ds->n = n;
    split_sizes(ds);
    data_status st = min_T > 0 ? dataset_check_T(ds, min_T) : DATA_OK;
    if (st != DATA_OK) dataset_free(ds);
    return st;
}

data_status dataset_init_bytes(dataset *ds, const uint8_t *bytes, size_t n, int min_T) {
    if (ds == NULL) return DATA_ENULL;
    memset(ds, 0, sizeof *ds);
    if (bytes == NULL && n > 0) return DATA_ENULL;
    if (n == 0) return DATA_EEMPTY;
    uint8_t *copy = malloc(n);
    if (copy == NULL) return DATA_ENOMEM;
    memcpy(copy, bytes, n);
    return adopt(ds, copy, n, min_T);
}

data_status dataset_load(dataset *ds, const char *path, int min_T) {
    if (ds == NULL) return DATA_ENULL;
    memset(ds, 0, sizeof *ds);
    if (path == NULL) return DATA_ENULL;
    FILE *f = fopen(path, "rb");
    if (f == NULL) return DATA_EOPEN;
    struct stat st;   /* a folder opens, then every read fails: say what it is */
    if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
        fclose(f);
        return DATA_EISDIR;
    }
    /* Read in chunks rather than trusting fseek/ftell: works for pipes too. */
    size_t cap = 1 << 20, n = 0;
    uint8_t *buf = malloc(cap);
    if (buf == NULL) { fclose(f); return DATA_ENOMEM; }
    for (;;) {
        if (n == cap) {
            uint8_t *nb = realloc(buf, cap * 2);
            if (nb == NULL) { free(buf); fclose(f); return DATA_ENOMEM; }
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
    }
    int err = ferror(f);
    fclose(f);
    if (err) { free(buf); return DATA_EREAD; }
    if (n == 0) { free(buf); return DATA_EEMPTY; }
    return adopt(ds, buf, n, min_T);
}

void dataset_free(dataset *ds) {
    if (ds == NULL) return;
    free(ds->bytes);
    memset(ds, 0, sizeof *ds);
}

const uint8_t *dataset_split_data(const dataset *ds, data_split split, size_t *n_out) {
    if (ds == NULL || ds->bytes == NULL) { if (n_out) *n_out = 0; return NULL; }
    if (split == SPLIT_VAL) {
        if (n_out) *n_out = ds->n_val;
        return ds->bytes + ds->n_train;
    }
    if (n_out) *n_out = ds->n_train;
    return ds->bytes;
}

data_status dataset_batch(const dataset *ds, data_split split, rng_state *r,
                          int B, int T, int *inp, int *tgt) {
    if (ds == NULL || r == NULL || inp == NULL || tgt == NULL) return DATA_ENULL;
    if (B <= 0 || T <= 0 || (split != SPLIT_TRAIN && split != SPLIT_VAL)) return DATA_EARG;
    size_t n = 0;
    const uint8_t *x = dataset_split_data(ds, split, &n);
    if (x == NULL || n < (size_t)T + 1) return DATA_ESHORT;
    /* Starts in [0, n - T - 1] as nanoGPT's torch.randint(len(data) - block_size). */
    uint64_t n_starts = (uint64_t)(n - (size_t)T);
    for (int b = 0; b < B; b++) {
        size_t s = (size_t)rng_below(r, n_starts);
        int *ib = inp + (size_t)b * T;
        int *tb = tgt + (size_t)b * T;
        for (int t = 0; t < T; t++) {
            ib[t] = x[s + (size_t)t];
            tb[t] = x[s + (size_t)t + 1];
        }
    }
    return DATA_OK;
}

data_status dataset_eval_batch(const dataset *ds, data_split split, int k,
                               int B, int T, int *inp, int *tgt) {
    if (k < 0) return DATA_EARG;
    rng_state r;
    rng_init(&r, DATASET_EVAL_SEED, (uint64_t)k);
    return dataset_batch(ds, split, &r, B, T, inp, tgt);
}
