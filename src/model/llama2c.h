/*
 * llama2c.h — read and write llama2.c's legacy model files (the format of
 * karpathy/llama2.c's run.c and of the stories15M/42M/110M checkpoints).
 *
 * Layout, all little-endian:
 *   7 x int32: dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size,
 *              seq_len; vocab_size < 0 means an unshared classifier (|V|).
 *   float32 weights in run.c's order: token_embedding (V,C), rms_att (L,C),
 *   wq (L,C,C), wk (L,kv,C), wv (L,kv,C), wo (L,C,C), rms_ffn (L,C),
 *   w1 (L,H,C), w2 (L,C,H), w3 (L,H,C), rms_final (C), then the legacy RoPE
 *   tables freq_cis_real and freq_cis_imag (seq_len*HS/2 floats each) that
 *   run.c skips, then wcls (V,C) only when unshared.
 * The reader memory-maps the file read-only (PROT_READ, MAP_PRIVATE) and
 * points the model's weights into the mapping; nothing is copied. It checks
 * the header (positive, non-absurd dims; heads dividing) and that the file
 * length is exactly what the header implies before mapping anything.
 * The writer stores the RoPE tables as the cos/sin that old readers expect
 * (librope's double-exact values); our reader never uses them.
 * Errors: an l2c_status plus one line in err; nothing prints or exits.
 */
#ifndef ROPEGPT_MODEL_LLAMA2C_H
#define ROPEGPT_MODEL_LLAMA2C_H

#include <stddef.h>
#include <stdint.h>

#include "model/llama.h"

typedef enum {
    L2C_OK = 0,
    L2C_EARG,     /* NULL pointer or a config that fails llama_config_validate (writer) */
    L2C_EOPEN,    /* cannot open/stat the file, or not a regular file */
    L2C_ETRUNC,   /* shorter than the header, or than the sizes the header implies */
    L2C_ESIZE,    /* longer than the header implies (trailing bytes) */
    L2C_EDIM,     /* a dimension negative, zero or absurd */
    L2C_EHEADS,   /* n_heads does not divide dim, n_kv_heads does not divide n_heads, odd HS */
    L2C_EFORMAT,  /* not the legacy format (e.g. llama2.c's "ak42" version 1/2 exports) */
    L2C_EVOCAB,   /* the tokenizer's vocabulary does not match the model's */
    L2C_EMMAP,    /* mmap failed */
    L2C_EWRITE,   /* writing failed */
    L2C_ENOMEM,
    L2C_STATUS_COUNT
} l2c_status;

const char *l2c_status_str(int s);

#define L2C_HEADER_BYTES 28

typedef struct {
    llama_config cfg;
    llama_weights w;      /* views into map */
    const void *map;      /* the read-only mapping (whole file) */
    size_t map_len;
} llama2c_file;

/* Parses and checks a 28-byte header for a file of file_len bytes: cfg on
 * success. Exposed for tests and tools that only want the shape. */
int llama2c_parse_header(llama_config *cfg, const unsigned char *hdr, uint64_t file_len,
                         char *err, size_t errlen);

/* Bytes of a file for cfg (header, weights, legacy RoPE tables, wcls). */
uint64_t llama2c_file_bytes(const llama_config *cfg);

/* Opens path: checks, mmaps read-only, points f->w into the mapping.
 * On error *f is zeroed. */
int llama2c_open(llama2c_file *f, const char *path, char *err, size_t errlen);

/* Unmaps and zeroes *f (NULL or zeroed is fine). Models built over f->w
 * must be freed first. */
void llama2c_close(llama2c_file *f);

/* Writes cfg and the weights w to path in the legacy format, atomically
 * (temp file in the same folder, fsync, rename). */
int llama2c_write(const char *path, const llama_config *cfg, const llama_weights *w,
                  char *err, size_t errlen);

#endif
