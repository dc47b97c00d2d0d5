/*
 * llama_train.h — training the Llama architecture (issue 5 part 2): a
 * forward pass over (B, T) token windows that saves its activations, the
 * mean cross-entropy loss, and a backward pass that accumulates gradients of
 * every parameter, in the layer style of the GPT trainer (gpt.h): parameters
 * and gradients are each one flat buffer, here in llama2.c's order (the
 * order of llama_weights_floats), so a trained model is exported to a
 * llama2.c file with llama2c_write(params as llama_weights) and AdamW
 * (adamw.h) steps the flat buffers with llama_train_decay_mask().
 *
 * Positions are 0..T-1 in every batch row; RoPE (interleaved, librope) rotates
 * q and k after their projections and rotates dq, dk back with
 * ROPE_BACKWARD. Attention is causal grouped-query attention with its own
 * forward/backward here (src/nn/attention.c assumes n_kv_heads = n_heads
 * and a packed qkv buffer). Determinism: every reduction has one owner
 * thread and a fixed order (dk/dv are summed per kv head over its query
 * heads serially), so the same seed and thread count give the same bits.
 */
#ifndef ROPEGPT_MODEL_LLAMA_TRAIN_H
#define ROPEGPT_MODEL_LLAMA_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "model/llama.h"
#include "nn/matmul.h"
#include "rope.h"

typedef struct {
    llama_config cfg;
    size_t n_params;
    float *params;       /* (n_params) llama2.c order, owned */
    float *grads;        /* (n_params) same layout */
    llama_weights w;     /* views into params */
    rope_table rope;     /* positions [0, seq_len) */
    matmul_ctx mm;
    int B, T;            /* shape the activations are sized for */
    float *acts;         /* one allocation; the pointers below view it */
    float *resid;        /* (L+1, BT, C) block inputs; resid[L] the last output */
    float *n1, *rstd1;   /* (L, BT, C), (L, BT) */
    float *q, *k, *v;    /* (L, BT, C), (L, BT, kvd), (L, BT, kvd); q, k rotated */
    float *att;          /* (L, B, NH, T, T) probabilities, j <= t */
    float *atty;         /* (L, BT, C) attention output before Wo */
    float *mid;          /* (L, BT, C) residual after attention */
    float *n2, *rstd2;   /* (L, BT, C), (L, BT) */
    float *h1, *h3, *hg; /* (L, BT, H): W1 n2, W3 n2, silu(h1) * h3 */
    float *nf, *rstdf;   /* (BT, C), (BT) */
    float *logits, *probs; /* (BT, V) */
    float *losses;       /* (BT) */
    float *grad_scratch; /* backward scratch (one allocation) */
    int n_scratch;       /* attention scratch rows = threads the backward may use */
    int *inp, *targets;  /* (BT) copies from the last forward */
    int32_t *pos;        /* (BT) */
    int have_targets;
    float loss;          /* mean loss of the last forward with targets */
} llama_trainer;

/* Allocates parameters and gradients and draws the weights: every matrix
 * N(0, 0.02), wo and w2 N(0, 0.02/sqrt(2L)) (GPT-2's scaling of the
 * projections into the residual stream), RMSNorm weights 1; one rng stream
 * (seed, 0) in llama2.c order. Activations are sized at the first forward. */
int llama_train_init(llama_trainer *m, const llama_config *cfg, uint64_t seed);
void llama_train_free(llama_trainer *m);

/* Forward over inp (B, T), T <= seq_len; with targets (B, T) also the mean
 * cross-entropy (*loss, may be NULL). Logits in m->logits (B*T, V). */
int llama_train_forward(llama_trainer *m, const int *inp, const int *targets, int B, int T, float *loss);

void llama_train_zero_grad(llama_trainer *m);

/* ACCUMULATES into m->grads the gradient of the last forward's mean loss
 * (that forward must have had targets). */
int llama_train_backward(llama_trainer *m);

/* mask[i] = 1 for weight-decayed entries (2-D weights: embedding, wq, wk,
 * wv, wo, w1, w2, w3, wcls), 0 for RMSNorm weights; mask has n_params. */
void llama_train_decay_mask(const llama_trainer *m, uint8_t *mask);

#endif
