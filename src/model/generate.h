/*
 * generate.h — autoregressive inference for the GPT of gpt.h with a key/value
 * cache. gen_forward() runs a chunk of tokens at the next absolute positions:
 * a whole prompt in one batched pass (prefill, matmuls over all its rows), or
 * one token (decode, matrix-vector products). Keys enter the cache already
 * rotated: each token's q and k are rotated once, at its absolute position,
 * through librope's positions array; attention then reads the cache as is.
 * Every buffer (cache, activations, attention scores, positions) is allocated
 * by gen_init for the capacity and the largest chunk, so a step allocates
 * nothing — except dynamic NTK, whose frequencies change with the length and
 * whose table is rebuilt (see gen_dynamic_keys and docs/generate.md).
 * The model's weights are only read; the model's own activations and RoPE
 * table are not touched (the state keeps its own table), so gpt_forward on
 * the same model stays a valid reference.
 * Thread safety: one gen_state per thread; OpenMP inside.
 */
#ifndef ROPEGPT_GENERATE_H
#define ROPEGPT_GENERATE_H

#include <stddef.h>
#include <stdint.h>

#include "model/gpt.h"
#include "rope.h"

typedef enum {
    GEN_OK = 0,
    GEN_ENULL,     /* a required pointer is NULL */
    GEN_ECONFIG,   /* bad gen_config (capacity, chunk, scaling on a non-rope model) */
    GEN_ENOMEM,    /* an allocation failed */
    GEN_EROPE,     /* librope refused the table or a rotation */
    GEN_ESHAPE,    /* chunk <= 0, > max_chunk, or past the cache capacity */
    GEN_ETOKEN,    /* a token outside [0, V) */
    GEN_ERANGE,    /* learned positions: a position >= maxT has no embedding */
    GEN_STATUS_COUNT
} gen_status;

/* Static one-line description. Never NULL. */
const char *gen_status_str(gen_status s);

/* What happens to cached keys when dynamic NTK changes the base.
 *   GEN_DYNAMIC_REROTATE: rotate every cached key back with the old table
 *     and forward with the new one (exact: the cached path then equals a
 *     full recompute of the sequence at its current length).
 *   GEN_DYNAMIC_STALE: keep the old rotations (Hugging Face's behaviour,
 *     transformers #25104); cheaper, but keys and queries disagree on base. */
typedef enum {
    GEN_DYNAMIC_REROTATE = 0,
    GEN_DYNAMIC_STALE = 1
} gen_dynamic_keys;

typedef struct {
    int capacity;        /* positions the cache holds: prompt + generated tokens */
    int max_chunk;       /* most tokens one gen_forward call takes (the prefill length) */
    rope_scaling scaling;/* PE_ROPE only; type NONE = plain RoPE. factor and
                            original_max_positions as in rope.h */
    gen_dynamic_keys dynamic_keys;
    int n_threads;       /* OpenMP threads for attention; 0 = OpenMP default */
} gen_config;

/* capacity 0 and max_chunk 0 (must be set), scaling NONE with
 * rope_config_default()'s parameters, REROTATE, n_threads 0. */
gen_config gen_config_default(void);

typedef struct {
    const gpt *m;          /* borrowed: weights and config */
    gen_config gc;
    int n;                 /* tokens in the cache = the next absolute position */
    int C3;                /* 3C */
    int nthreads;          /* attention score buffers allocated */

    float *kcache;         /* (L, capacity, C) keys, rotated at their positions */
    float *vcache;         /* (L, capacity, C) values */
    int32_t *pos;          /* (capacity) pos[i] = i: librope's positions array */
    float *sinusoid;       /* (capacity, C) PE_SINUSOIDAL, else NULL */

    rope_table rope;       /* PE_ROPE: this state's table (scaling applied) */
    int64_t rope_len;      /* seq_len the table was built for (dynamic NTK) */

    /* chunk activations, (max_chunk, ...) each, from one allocation */
    float *x;              /* (P, C) residual stream */
    float *ln;             /* (P, C) LayerNorm output */
    float *mean, *rstd;    /* (P) */
    float *qkv;            /* (P, 3C) */
    float *atty;           /* (P, C) */
    float *proj;           /* (P, C) projection outputs */
    float *fch;            /* (P, 4C) */
    float *fch_gelu;       /* (P, 4C) */
    float *logits;         /* (V) of the chunk's last token */
    float *att;            /* (nthreads, capacity) attention scores per thread */
    float *mem;            /* the allocation behind the pointers above */
    matmul_ctx mm;         /* prefill matmuls: packing scratch kept between calls */
} gen_state;

/* Allocates the cache and scratch for model m (borrowed; must outlive g) and
 * builds the RoPE table with gc->scaling. PE_LEARNED: capacity may exceed
 * maxT, but gen_forward refuses positions >= maxT (GEN_ERANGE).
 * On error *g is zeroed (safe to gen_free). */
gen_status gen_init(gen_state *g, const gpt *m, const gen_config *gc);

/* Frees everything and zeroes *g. NULL or a zeroed state is fine. */
void gen_free(gen_state *g);

/* Empties the cache (next position 0); dynamic NTK returns to its base. */
gen_status gen_reset(gen_state *g);

/* Runs tokens tok[0..T) at positions g->n .. g->n+T-1, appends their keys
 * and values to the cache and returns the logits (V) of the last one
 * (valid until the next call), or NULL on error with *status set (status may
 * be NULL). Errors: GEN_ESHAPE (T <= 0, T > max_chunk, n + T > capacity),
 * GEN_ETOKEN, GEN_ERANGE, GEN_EROPE, GEN_ENOMEM (dynamic rebuild); on error
 * the cache is unchanged. */
const float *gen_forward(gen_state *g, const int *tok, int T, gen_status *status);

#endif
