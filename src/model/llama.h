/*
 * llama.h — inference for the Llama-2 architecture (Touvron et al. 2023),
 * the second model family of ropegpt and the one llama2.c files hold:
 * pre-norm blocks with RMSNorm, grouped-query attention with RoPE in the
 * interleaved pair layout (through librope, positions passed per token),
 * a SwiGLU MLP, no biases, optionally an untied classifier. fp32.
 *
 * Weights are views: llama_weights holds const pointers into one flat
 * buffer, which is either owned by the model (llama_init_random) or borrowed
 * (llama_init_borrowed; e.g. a read-only mmap of a llama2.c file — never
 * copied). The flat order is llama2.c's (see llama_weights_point).
 *
 * State: a KV cache of seq_len positions per layer; keys are stored already
 * rotated at their absolute position. llama_forward runs T tokens at
 * positions pos0..pos0+T-1 in one batched pass (prefill: matmuls) or one
 * token (decode: bandwidth-bound matvecs), appending their keys and values.
 * Thread safety: one model per thread of control (the calls use OpenMP
 * inside). Functions return a llama_status; nothing prints or exits.
 */
#ifndef ROPEGPT_MODEL_LLAMA_H
#define ROPEGPT_MODEL_LLAMA_H

#include <stddef.h>
#include <stdint.h>

#include "nn/matmul.h"
#include "rope.h"

typedef enum {
    LLAMA_OK = 0,
    LLAMA_ENULL,    /* a required pointer is NULL */
    LLAMA_EDIM,     /* a dimension <= 0 or past the LLAMA_MAX_* limits */
    LLAMA_EHEADS,   /* n_heads does not divide dim, n_kv_heads does not divide n_heads,
                       or the head size is odd (RoPE rotates pairs) */
    LLAMA_ETOKEN,   /* a token id outside [0, vocab_size) */
    LLAMA_EPOS,     /* pos0 < 0, T < 1, T > max_T or pos0 + T > seq_len */
    LLAMA_EROPE,    /* librope refused the table or the rotation */
    LLAMA_ENOMEM,
    LLAMA_STATUS_COUNT
} llama_status;

const char *llama_status_str(int s);

/* Limits past which a config is refused as absurd (they also keep every
 * size product far from overflowing size_t). */
#define LLAMA_MAX_DIM (1 << 16)
#define LLAMA_MAX_HIDDEN (1 << 18)
#define LLAMA_MAX_LAYERS 1024
#define LLAMA_MAX_VOCAB (1 << 22)
#define LLAMA_MAX_SEQ (1 << 20)

typedef struct {
    int dim;               /* C: model width */
    int hidden_dim;        /* MLP width (SwiGLU) */
    int n_layers;          /* L */
    int n_heads;           /* NH query heads; head size HS = dim / n_heads */
    int n_kv_heads;        /* key/value heads (divides n_heads; < n_heads = GQA) */
    int vocab_size;        /* V */
    int seq_len;           /* maximum positions (KV cache and RoPE table rows) */
    int shared_classifier; /* 1: logits = x @ token_embedding^T; 0: own wcls */
    double rope_base;      /* 10000 (Llama 2, llama2.c) */
    float norm_eps;        /* RMSNorm eps, 1e-5 */
} llama_config;

/* The stories15M shape of llama2.c (288, 768, 6, 6, 6, 32000, 256, shared). */
llama_config llama_config_default(void);

/* LLAMA_OK or LLAMA_EDIM / LLAMA_EHEADS; err (may be NULL) gets one line. */
int llama_config_validate(const llama_config *cfg, char *err, size_t errlen);

/* Weight views, shapes (out, in) row-major as llama2.c stores them. */
typedef struct {
    const float *token_embedding; /* (V, C) */
    const float *rms_att;         /* (L, C) */
    const float *wq;              /* (L, C, C)       = (L, NH*HS, C) */
    const float *wk;              /* (L, kv_dim, C)  kv_dim = n_kv_heads*HS */
    const float *wv;              /* (L, kv_dim, C) */
    const float *wo;              /* (L, C, C) */
    const float *rms_ffn;         /* (L, C) */
    const float *w1;              /* (L, hidden, C)  gate */
    const float *w2;              /* (L, C, hidden)  down */
    const float *w3;              /* (L, hidden, C)  up */
    const float *rms_final;       /* (C) */
    const float *wcls;            /* (V, C): token_embedding when shared */
} llama_weights;

/* Floats in the flat order token_embedding, rms_att, wq, wk, wv, wo,
 * rms_ffn, w1, w2, w3, rms_final[, wcls if unshared] (no RoPE tables). */
size_t llama_weights_floats(const llama_config *cfg);

/* Points w into p laid out in that order; gap floats are skipped between
 * rms_final and wcls (llama2.c's legacy freq_cis tables; 0 otherwise). */
void llama_weights_point(llama_weights *w, const llama_config *cfg, const float *p, size_t gap);

typedef struct {
    llama_config cfg;
    llama_weights w;
    float *params;        /* owned flat buffer (llama_init_random), else NULL */
    rope_table rope;      /* interleaved, head size HS, positions [0, seq_len) */
    matmul_ctx mm;        /* packing scratch kept between prefill calls */
    int max_T;            /* most tokens one llama_forward may take */
    int n_att;            /* attention score rows (one per thread) */
    float *key_cache;     /* (L, seq_len, kv_dim), keys rotated */
    float *value_cache;   /* (L, seq_len, kv_dim) */
    float *x, *xb, *xb2, *q;  /* (max_T, C) */
    float *hb, *hb2;          /* (max_T, hidden) */
    float *att;               /* (n_att, seq_len) */
    float *logits;            /* (V): the last token's logits */
    float *all_logits;        /* (max_T, V): allocated on first all_logits call */
    int32_t *pos;             /* (max_T) */
    /* bf16 decode weights (llama_use_bf16), else NULL: owned copies of the
     * matrices, same shapes; prefill keeps using the fp32 views. */
    uint16_t *bf16;
    const uint16_t *bq, *bk, *bv, *bo, *b1, *b2, *b3, *bcls;
    /* layer matrices packed for batched forwards (llama_prepack), else
     * NULL: 7 per layer, in the order wq wk wv wo w1 w3 w2 */
    matmul_packed *packed;
} llama_model;

/* An owned model with weights drawn from N(0, std) (RMSNorm weights
 * 1 + N(0, std)), in the flat order from one rng stream (seed, 0). */
int llama_init_random(llama_model *m, const llama_config *cfg, uint64_t seed, float std, int max_T);

/* A model over borrowed weights (kept, not copied; they must outlive m). */
int llama_init_borrowed(llama_model *m, const llama_config *cfg, const llama_weights *w, int max_T);

/* Frees what init allocated (not borrowed weights) and zeroes *m. */
void llama_free(llama_model *m);

/* Converts the matrices (wq, wk, wv, wo, w1, w2, w3 and the classifier) to
 * bf16 copies (round to nearest even) that every later decode step (T == 1)
 * reads instead: half the bytes per token. The fp32 weights stay for the
 * embedding lookup, RMSNorm and batched prefill. The matvec kernel is
 * matvec_bf16_isa_best(): on CPUs with AVX512-BF16 its inputs are rounded
 * to bf16 too (bf16 products, float sums), elsewhere they stay fp32.
 * LLAMA_ENOMEM on failure (the model is unchanged). */
int llama_use_bf16(llama_model *m);

/* Packs the layer matrices once into the matmul kernel's panel layout
 * (matmul_pack_weight), which every later batched forward (T > 1, the
 * prefill) reads instead of packing each weight again per call: a second
 * copy of the layer weights in memory (the classifier is not packed; one
 * token's logits are a matvec). The weights must not change afterwards.
 * Decode (T == 1) is unaffected. LLAMA_ENOMEM on failure (the model is
 * unchanged). */
int llama_prepack(llama_model *m);

/* Runs tokens[0..T) at positions pos0..pos0+T-1: writes their keys/values
 * into the cache and attends over positions [0, pos0 + t]. Positions below
 * pos0 must hold keys/values from earlier calls. Writes the last token's
 * logits to m->logits, and, if all_logits, every token's to m->all_logits
 * (T, V). T == 1 takes the matvec (decode) path, T > 1 the matmul
 * (prefill) path. */
int llama_forward(llama_model *m, const int *tokens, int T, int pos0, int all_logits);

#endif
