/*
 * checkpoint.h — the model.bin file: everything a training run needs to
 * continue bit-identically (model shape and position-encoding settings,
 * training settings, step, data RNG state, AdamW step and moments, eval
 * history, data fingerprint, tokenizer) and everything sampling needs.
 *
 * Format version 2 (version 1 is still read: it is version 2 without the
 * arch block, always a GPT), all fields little-endian, written one by one:
 *   off 0   8 bytes  magic "RGPTCKPT"
 *   off 8   u32      format version (CHECKPOINT_VERSION)
 *   off 12  u32      header size: bytes from offset 0 to the first tensor
 *   off 16  u64      file size, including the trailing CRC
 *   gpt_config   i32 V, L, NH, C, maxT; u32 pe; u32 rope_layout;
 *                f64 rope_base; f64 rope_fraction
 *   arch (v2)    u32 arch (0 gpt, 1 llama); i32 n_kv_heads; i32 hidden_dim;
 *                i32 shared_classifier (all 0 for gpt)
 *   tokenizer    u32 kind (0 = bytes: token id = byte value); u32 vocab
 *   train_config i32 B; i64 steps; f64 lr, min_lr; i64 warmup; f64 beta1,
 *                beta2, eps, weight_decay, grad_clip; i32 accum;
 *                i64 eval_every; i32 eval_batches; u64 seed; i32 threads;
 *                i64 save_every
 *   state        i64 step; u64 rng[4]; i64 adamw_t; f64 elapsed_s
 *   data         u32 len + bytes path; u64 data_len; u32 data_crc32
 *   evals        u32 n; n x (i64 step, f64 val_loss)
 *   tensors      u64 n_params; u32 n_tensors; n_tensors x u64 element counts
 *                (gpt: 16, gpt_tensor_sizes(cfg); llama: 12 in llama2.c
 *                order: embedding, rms_att, wq, wk, wv, wo, rms_ffn, w1, w2,
 *                w3, rms_final, wcls (0 when shared))
 *   off header_size: params, AdamW m, AdamW v: 3 x n_params f32
 *   last 4 bytes: u32 CRC-32 (io_crc32) of every byte before it.
 * Derived data (RoPE tables, sinusoid table, ALiBi slopes) is never stored.
 * A reader checks the magic, the version, the file size against the real
 * length, the CRC, then every size against the bytes that remain.
 */
#ifndef ROPEGPT_CHECKPOINT_H
#define ROPEGPT_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "model/gpt.h"
#include "model/train.h"

#define CHECKPOINT_MAGIC "RGPTCKPT"
#define CHECKPOINT_VERSION 2u
#define CHECKPOINT_MIN_VERSION 1u
#define CHECKPOINT_TOKENIZER_BYTES 0u

typedef struct {
    gpt_config cfg;
    arch_config arch;          /* ARCH_GPT for version-1 files */
    train_config tc;
    uint32_t tokenizer;        /* CHECKPOINT_TOKENIZER_BYTES */
    uint32_t vocab;            /* 256 */
    int64_t step;
    rng_state data_rng;
    int64_t adamw_t;
    double elapsed_s;
    char data_path[1024];
    uint64_t data_len;
    uint32_t data_crc;
    uint32_t n_evals;
    train_eval_point *evals;   /* (n_evals) */
    size_t n_params;
    float *params, *m, *v;     /* (n_params) each */
    int owned;                 /* 1: arrays are malloc'd by checkpoint_load */
} checkpoint;

/* Writes ck to path atomically (temp file in the same folder, fsync, rename).
 * ck's arrays are only read. 0 ok, -1 with a one-line reason in err. */
int checkpoint_save(const char *path, const checkpoint *ck, char *err, size_t errlen);

/* Reads and fully checks path into *ck (arrays malloc'd; owned = 1).
 * with_optimizer = 0 skips copying m and v (sampling): ck->m, ck->v NULL.
 * 0 ok; -1 with one line in err naming the file and the problem (not a
 * checkpoint, version N (this build reads 1 and 2), truncated, CRC mismatch, bad
 * field). On error *ck is zeroed. */
int checkpoint_load(const char *path, checkpoint *ck, int with_optimizer, char *err, size_t errlen);

/* Frees what checkpoint_load allocated and zeroes *ck. */
void checkpoint_free(checkpoint *ck);

/* Loads model (a checkpoint file, or a run folder, the --out of `ropegpt
 * train`: then its model.bin) and builds a ready model from it (params
 * only): for sampling and evaluation. A Llama checkpoint is refused with a line pointing to
 * `ropegpt export --format llama2c`. meta_out (may be NULL) receives the rest of the file
 * (params, m, v left NULL; free it with checkpoint_free). On error *m is
 * zeroed. 0 ok, -1 with a one-line reason in err. */
int checkpoint_load_model(const char *model, gpt *m, checkpoint *meta_out, char *err, size_t errlen);

/* 1 if path is a run folder or a file that starts with the checkpoint magic
 * (what checkpoint_load_model reads), else 0; for telling a user who gave
 * one where another kind of file was expected. Reads 8 bytes at most. */
int checkpoint_is_ropegpt(const char *path);

#endif
