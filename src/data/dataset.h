/*
 * dataset.h — the byte-level text data loader. A file is read whole; every
 * byte is one token, so the vocabulary is the 256 byte values (no tokenizer
 * to train or ship, and any UTF-8 text round-trips exactly). The first 90% of
 * the bytes are the training split and the last 10% the validation split
 * (nanoGPT's shakespeare_char split). A batch is B windows of T+1 consecutive
 * tokens at uniformly random starts: inputs are the first T, targets the last T.
 * Errors are returned as data_status, never printed.
 */
#ifndef ROPEGPT_DATASET_H
#define ROPEGPT_DATASET_H

#include <stddef.h>
#include <stdint.h>

#include "util/rng.h"

#define DATASET_VOCAB 256            /* byte-level tokens */
#define DATASET_TRAIN_PERMILLE 900   /* first 90% train, rest val */
/* Seed of the evaluation batch sequence: every run, whatever its training
 * seed, is evaluated on the same windows. */
#define DATASET_EVAL_SEED UINT64_C(0x5EED0E7A1)

typedef enum {
    DATA_OK = 0,
    DATA_ENULL,    /* a required pointer is NULL */
    DATA_EOPEN,    /* the file cannot be opened */
    DATA_EREAD,    /* a read error */
    DATA_EEMPTY,   /* the file is empty */
    DATA_ESHORT,   /* a split has fewer than T+1 tokens for the requested T */
    DATA_ENOMEM,   /* an allocation failed */
    DATA_EARG,     /* B <= 0, T <= 0 or an unknown split */
    DATA_EISDIR,   /* the path is a folder, not a file */
    DATA_STATUS_COUNT
} data_status;

/* Static one-line description of s. Never NULL. */
const char *data_status_str(data_status s);

typedef enum { SPLIT_TRAIN = 0, SPLIT_VAL = 1 } data_split;

typedef struct {
    uint8_t *bytes;   /* (n) the whole text; owned */
    size_t n;         /* total tokens */
    size_t n_train;   /* train = bytes[0, n_train) */
    size_t n_val;     /* val   = bytes[n_train, n) */
} dataset;

/* Reads the file at path whole. min_T > 0 also requires both splits to hold at
 * least min_T + 1 tokens (else DATA_ESHORT); 0 skips that check. On error *ds
 * is zeroed (safe to dataset_free). */
data_status dataset_load(dataset *ds, const char *path, int min_T);

/* Same from a memory buffer (copied). n == 0 gives DATA_EEMPTY. */
data_status dataset_init_bytes(dataset *ds, const uint8_t *bytes, size_t n, int min_T);

void dataset_free(dataset *ds);

/* DATA_OK if both splits hold at least T + 1 tokens, else DATA_ESHORT
 * (DATA_EARG for T <= 0). */
data_status dataset_check_T(const dataset *ds, int T);

/* Tokens of one split and its length. */
const uint8_t *dataset_split_data(const dataset *ds, data_split split, size_t *n_out);

/* B random windows of T+1 tokens from the split: window b starts at
 * rng_below(r, n_split - T) (drawn in order b = 0..B-1);
 * inp[b*T+t] = x[s+t], tgt[b*T+t] = x[s+t+1]. inp, tgt: (B, T) ints.
 * Errors: DATA_ENULL, DATA_EARG, DATA_ESHORT (nothing written). */
data_status dataset_batch(const dataset *ds, data_split split, rng_state *r,
                          int B, int T, int *inp, int *tgt);

/* The k-th batch (k >= 0) of the fixed evaluation sequence: dataset_batch
 * with an rng seeded (DATASET_EVAL_SEED, stream k), so batch k is the same in
 * every run and does not depend on which other batches were drawn. */
data_status dataset_eval_batch(const dataset *ds, data_split split, int k,
                               int B, int T, int *inp, int *tgt);

#endif
