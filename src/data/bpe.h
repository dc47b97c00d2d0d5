/*
 * bpe.h — the tokenizer of llama2.c's tokenizer.bin: a vocabulary of byte
 * strings ("pieces") with scores, encoded the sentencepiece-BPE way (Kudo &
 * Richardson 2018; Sennrich et al. 2016): split the text into UTF-8 code
 * points, look each up (byte-fallback tokens <0x00>..<0xFF> for those not in
 * the vocabulary), then repeatedly merge the adjacent pair whose
 * concatenation is a piece with the highest score, until no pair merges.
 *
 * File (llama2.c): int32 max_token_length, then per token: float32 score,
 * int32 length, length bytes. Little-endian. The token count is not stored:
 * it is the model's vocab_size, so the loader takes it and insists the file
 * ends exactly after that many entries.
 *
 * Two flavours, told apart by the vocabulary itself:
 *  - sentencepiece style (ids 3..258 are "<0x00>".."<0xFF>", as in Llama 2's
 *    32000-token vocabulary): BOS 1, EOS 2, a dummy-prefix space before the
 *    text, byte fallback through ids 3..258, and on decoding the leading
 *    space of the first piece after BOS dropped.
 *  - plain (e.g. ropegpt's 256-token byte vocabulary, piece i = byte i): no
 *    BOS/EOS, no dummy prefix, bytes fall back to single-byte pieces.
 * Nothing prints or exits; errors are a bpe_status plus one line in err.
 */
#ifndef ROPEGPT_DATA_BPE_H
#define ROPEGPT_DATA_BPE_H

#include <stddef.h>

typedef enum {
    BPE_OK = 0,
    BPE_EARG,     /* NULL pointer or bad argument (vocab_size <= 0, ...) */
    BPE_EOPEN,    /* cannot open/read the file, or not a regular file */
    BPE_ETRUNC,   /* the file ends inside an entry (truncated) */
    BPE_EVOCAB,   /* the file holds fewer or more entries than vocab_size */
    BPE_EFORMAT,  /* max_token_length <= 0 or absurd, a length < 0 or > max, non-finite score */
    BPE_EENCODE,  /* a byte of the text has no token (no byte fallback for it) */
    BPE_ESPACE,   /* the output array is too small */
    BPE_EWRITE,   /* writing the file failed */
    BPE_ENOMEM,
    BPE_STATUS_COUNT
} bpe_status;

const char *bpe_status_str(int s);

/* Largest max_token_length accepted from a file. */
#define BPE_MAX_TOKEN_LENGTH 65536

typedef struct {
    int vocab_size;
    int max_token_length;
    float *scores;            /* (V) */
    int *lens;                /* (V) */
    unsigned char **pieces;   /* (V) pointers into arena, each NUL-terminated */
    unsigned char *arena;
    int *sorted;              /* (V) ids sorted by piece bytes, for lookup */
    int byte_id[256];         /* token for a raw byte, or -1 */
    int sp_style;             /* 1: sentencepiece conventions (see above) */
    int bos_id, eos_id;       /* 1 and 2 when sp_style, else -1 */
} bpe_tokenizer;

/* Builds a tokenizer from V pieces (pieces[i] has lens[i] bytes, copied).
 * scores may be NULL (all 0). On error *t is zeroed. */
int bpe_init(bpe_tokenizer *t, int V, const char *const *pieces, const int *lens,
             const float *scores, char *err, size_t errlen);

/* ropegpt's byte vocabulary: 256 pieces, piece i = the byte i, score 0. */
int bpe_init_bytes(bpe_tokenizer *t, char *err, size_t errlen);

/* Reads a llama2.c tokenizer.bin holding exactly vocab_size entries. */
int bpe_load(bpe_tokenizer *t, const char *path, int vocab_size, char *err, size_t errlen);

/* Writes t as a tokenizer.bin (atomically: temp file + rename). */
int bpe_save(const bpe_tokenizer *t, const char *path, char *err, size_t errlen);

void bpe_free(bpe_tokenizer *t);

/* The id of the piece with exactly these bytes, or -1. */
int bpe_lookup(const bpe_tokenizer *t, const void *bytes, size_t len);

/* Encodes text[0..len) into out (capacity max_out; len + 3 always suffices),
 * *n_out tokens. add_bos/add_eos only act in sentencepiece style. */
int bpe_encode(const bpe_tokenizer *t, const char *text, size_t len, int add_bos, int add_eos,
               int *out, size_t max_out, size_t *n_out, char *err, size_t errlen);

/* The bytes token stands for when it follows prev (prev -1 at the start):
 * byte-fallback tokens give their byte; after BOS a leading space is
 * dropped. Writes to out (capacity max_token_length + 1; NUL-terminated)
 * and returns the byte count (0 for an id outside the vocabulary). */
size_t bpe_decode(const bpe_tokenizer *t, int prev, int token, unsigned char *out);

#endif
