/*
 * gpt_split.h — data parallelism across the threads of one process, for
 * models too small to keep two cores busy inside each layer (the nanoGPT
 * CPU config: its matmuls are ~100-300 us, and splitting each of ~150 ops a
 * step between two threads lost ~20% to waits, measured against two
 * independent single-thread runs). The batch is cut into k equal parts; the
 * main model and k-1 twins (same config, their own gradients and
 * activations, reading the main's weights in place) each run
 * one part on one thread; the twins' gradients are then added into the
 * main's in a fixed order. The result is the whole batch's mean loss and
 * gradient up to float rounding; the bits are fixed by k, so the same seed
 * and thread count still give the same bits.
 */
#ifndef ROPEGPT_MODEL_GPT_SPLIT_H
#define ROPEGPT_MODEL_GPT_SPLIT_H

#include "model/gpt.h"

typedef struct {
    int k;          /* parts (1: off, everything goes to the main model) */
    gpt *twins;     /* (k - 1) models with the main's config */
    int active;     /* the last forward was split (the backward must be too) */
} gpt_split;

/* The split a trainer should use for `main` with `threads` threads and
 * batch B: k = threads when the model is small (GPT_SPLIT_MAX_PARAMS:
 * each twin costs a full set of buffers), threads > 1 and B % threads == 0;
 * else 1 (off). */
#define GPT_SPLIT_MAX_PARAMS ((size_t)16 << 20)
int gpt_split_ways(const gpt *main, int threads, int B);

/* k <= 1: off (nothing allocated). Else allocates k - 1 twins of main's
 * config. GPT_ENOMEM (s left off) on failure, GPT_ENULL for s NULL. A NULL
 * or zeroed split is off for the calls below. */
gpt_status gpt_split_init(gpt_split *s, const gpt *main, int k);
void gpt_split_free(gpt_split *s);

/* gpt_forward of the whole (B, T) batch with targets, the parts on k threads
 * in parallel; returns the mean loss (NAN and main->status set on error).
 * Falls back to gpt_forward when off, when B % k != 0 or when main has an
 * on_layer_grads hook (MPI). After it, main's activations hold only the
 * first part: only gpt_split_backward may follow. */
float gpt_split_forward(gpt_split *s, gpt *main, const int *inp, const int *targets, int B, int T);

/* gpt_backward_ex(main, scale, overwrite) for the last gpt_split_forward:
 * the parts' gradients (each scale / k times its part's mean-loss gradient)
 * summed into main's, twins in order. */
gpt_status gpt_split_backward(gpt_split *s, gpt *main, float scale, int overwrite);

/* Bytes the twins use: gradients, activations, matmul scratch (for a
 * benchmark's memory budget). */
double gpt_split_bytes(const gpt_split *s);

#endif
