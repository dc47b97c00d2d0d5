/*
 * gpt.h — a GPT-2 (Radford et al. 2019) in plain C whose position encoding is
 * a switch: none (NoPE), learned (GPT-2's wpe), sinusoidal (Vaswani et al.
 * 2017), rope (Su et al. 2021, via librope) or alibi (Press et al. 2022).
 * Token embedding; L blocks of pre-LayerNorm causal multi-head attention and a
 * 4x tanh-GELU MLP with residual connections; final LayerNorm; LM head tied to
 * wte. Parameters, gradients and the AdamW moments are each ONE flat
 * allocation seen through a struct of named pointers (llm.c's layout), so the
 * optimizer and checkpoints see one buffer; activations are one allocation,
 * sized at the first forward and grown only when a larger B, T arrives.
 * Nothing prints or exits; errors come back as gpt_status.
 * Thread safety: one gpt per thread at a time; layers use OpenMP inside with a
 * fixed reduction order, so the same seed and thread count give the same bits.
 */
#ifndef ROPEGPT_GPT_H
#define ROPEGPT_GPT_H

#include <stddef.h>
#include <stdint.h>

#include "rope.h"
#include "nn/matmul.h"

/* ---------------------------------------------------------------- config */

typedef enum {
    PE_NONE = 0,     /* no position signal (causal mask only) */
    PE_LEARNED,      /* GPT-2: trained wpe (maxT, C) added to the token embedding */
    PE_SINUSOIDAL,   /* fixed sin/cos table added after wte * sqrt(C); not trained */
    PE_ROPE,         /* librope rotation of q and k after the QKV projection */
    PE_ALIBI,        /* linear distance bias on the attention scores */
    PE_COUNT
} pe_type;

/* "none", "learned", "sinusoidal", "rope", "alibi" ("unknown" otherwise). */
const char *pe_type_name(pe_type pe);
/* Parses one of the names above into *out. 0 ok, -1 unknown name or NULL. */
int pe_type_parse(const char *s, pe_type *out);

typedef struct {
    int V;                    /* vocabulary (256: bytes) */
    int L;                    /* layers */
    int NH;                   /* heads */
    int C;                    /* channels; HS = C / NH */
    int maxT;                 /* training context; wpe rows for PE_LEARNED */
    pe_type pe;
    rope_layout rope_layout;  /* PE_ROPE: INTERLEAVED or HALF pairs */
    double rope_base;         /* PE_ROPE: theta base, 10000 */
    double rope_fraction;     /* PE_ROPE: rotary_dim = largest even <= HS * fraction */
} gpt_config;

/* nanoGPT's shakespeare_char CPU config: V 256, L 4, NH 4, C 128, maxT 64,
 * PE_LEARNED (as GPT-2), rope INTERLEAVED, base 10000, fraction 1.0. */
gpt_config gpt_config_default(void);

/* NULL if cfg is valid, else a static one-line message naming the first bad
 * field (sizes positive, C % NH == 0, pe known, and for PE_ROPE: layout known,
 * even head size, base > 0 finite, fraction in (0, 1]
 * giving rotary_dim >= 2; alibi: NH <= 64). */
const char *gpt_config_validate(const gpt_config *cfg);

/* rotary_dim for cfg: largest even integer <= HS * rope_fraction (0 unless PE_ROPE). */
int gpt_rotary_dim(const gpt_config *cfg);

typedef enum {
    GPT_OK = 0,
    GPT_ENULL,     /* a required pointer is NULL */
    GPT_ECONFIG,   /* gpt_config_validate failed */
    GPT_ENOMEM,    /* an allocation failed */
    GPT_EROPE,     /* librope returned an error */
    GPT_ESHAPE,    /* B <= 0, T <= 0, or T > maxT with PE_LEARNED */
    GPT_ETOKEN,    /* an input/target token outside [0, V) */
    GPT_ESTATE,    /* backward without a forward with targets */
    GPT_STATUS_COUNT
} gpt_status;

/* Static one-line description. Never NULL. */
const char *gpt_status_str(gpt_status s);

/* ---------------------------------------------------------------- parameters */

#define GPT_NUM_TENSORS 16

/* Named views into one flat buffer, in this order (the checkpoint order too).
 * wpe has size 0 (pointer into the buffer, nothing there) unless PE_LEARNED. */
typedef struct {
    float *wte;       /* (V, C) */
    float *wpe;       /* (maxT, C) PE_LEARNED only */
    float *ln1w;      /* (L, C) */
    float *ln1b;      /* (L, C) */
    float *qkvw;      /* (L, 3C, C) */
    float *qkvb;      /* (L, 3C) */
    float *attprojw;  /* (L, C, C) */
    float *attprojb;  /* (L, C) */
    float *ln2w;      /* (L, C) */
    float *ln2b;      /* (L, C) */
    float *fcw;       /* (L, 4C, C) */
    float *fcb;       /* (L, 4C) */
    float *fcprojw;   /* (L, C, 4C) */
    float *fcprojb;   /* (L, C) */
    float *lnfw;      /* (C) */
    float *lnfb;      /* (C) */
} gpt_params;

/* Name of tensor i in the order above ("wte", "wpe", ...); NULL out of range. */
const char *gpt_tensor_name(int i);

/* Element counts of the 16 tensors for cfg, and their sum (returned). */
size_t gpt_tensor_sizes(const gpt_config *cfg, size_t sizes[GPT_NUM_TENSORS]);

/* ---------------------------------------------------------------- activations */

/* Saved activations of the last forward, views into one allocation laid out
 * for the current (B, T). Per-layer tensors are (L, ...) with layer l at
 * offset l * (one layer's size). */
typedef struct {
    float *encoded;    /* (B, T, C) embedding (+ wpe / sinusoidal) */
    float *ln1;        /* (L, B, T, C) */
    float *ln1_mean;   /* (L, B, T) */
    float *ln1_rstd;   /* (L, B, T) */
    float *qkv;        /* (L, B, T, 3C) after RoPE for PE_ROPE */
    float *atty;       /* (L, B, T, C) attention output before projection */
    float *att;        /* (L, B, NH, T, T) probabilities (j <= t) */
    float *residual2;  /* (L, B, T, C) after the attention residual */
    float *ln2;        /* (L, B, T, C) */
    float *ln2_mean;   /* (L, B, T) */
    float *ln2_rstd;   /* (L, B, T) */
    float *fch;        /* (L, B, T, 4C) gelu'(pre-activation) once the forward ran */
    float *fch_gelu;   /* (L, B, T, 4C) */
    float *residual3;  /* (L, B, T, C) block output */
    float *lnf;        /* (B, T, C) */
    float *lnf_mean;   /* (B, T) */
    float *lnf_rstd;   /* (B, T) */
    float *logits;     /* (B, T, V) */
    float *probs;      /* (B, T, V) softmax of logits */
    float *losses;     /* (B, T) per-token loss (targets given) */
    float *scratch;    /* (B, T, C) projection outputs before the residual add */
} gpt_acts;

/* Gradient buffers for backward, one allocation, reused layer after layer. */
typedef struct {
    float *dresidual;  /* (B, T, C) gradient flowing down the residual stream */
    float *dres2;      /* (B, T, C) */
    float *dln;        /* (B, T, C) */
    float *dqkv;       /* (B, T, 3C) */
    float *datty;      /* (B, T, C) */
    float *dfch;       /* (B, T, 4C) through the GELU (the MLP's output projection's dinp times gelu') */
    float *dlnf;       /* (B, T, C) */
    float *dlogits;    /* (B, T, V) */
    float *dlosses;    /* (B, T) d(mean loss)/d(loss) times the accumulation scale */
} gpt_grad_acts;

/* ---------------------------------------------------------------- model */

/* on_layer_grads' layer argument at a progress point (see gpt below). */
#define GPT_HOOK_PROGRESS (-2)

typedef struct {
    gpt_config cfg;
    int HS;                   /* C / NH */
    int rotary_dim;           /* PE_ROPE only, else 0 */

    size_t tensor_sizes[GPT_NUM_TENSORS];
    size_t num_params;
    float *params_memory;     /* (num_params) one allocation */
    float *grads_memory;      /* (num_params) */
    float *m_memory;          /* (num_params) AdamW first moment, zeroed at init */
    float *v_memory;          /* (num_params) AdamW second moment */
    uint8_t *decay_mask;      /* (num_params) 1 for 2-D weights (AdamW decay) */
    gpt_params params;
    gpt_params grads;

    /* position encodings (derived, never saved) */
    rope_table rope;          /* PE_ROPE: positions [0, 8*maxT) precomputed */
    float alibi[64];          /* PE_ALIBI: per-head slopes (NH <= 64 when ALiBi) */
    float *sinusoid;          /* PE_SINUSOIDAL: (sinusoid_T, C) */
    int sinusoid_T;

    /* activations of the last forward */
    int B, T;                 /* shape of the last forward */
    int has_targets;          /* last forward had targets (backward allowed) */
    float mean_loss;          /* mean loss of the last forward with targets */
    gpt_acts acts;
    float *acts_memory;
    size_t acts_capacity;     /* floats allocated */
    int *tok_memory;          /* inputs (B*T), targets (B*T) copies */
    int32_t *positions;       /* (B*T) RoPE positions: t for every row */
    size_t tok_capacity;      /* B*T allocated in tok_memory / positions */
    gpt_grad_acts gacts;
    float *gacts_memory;
    size_t gacts_capacity;
    matmul_ctx mm;            /* matmul backend + packing scratch kept between calls */
    gpt_status status;        /* status of the last forward/backward */

    /* Optional hook (NULL by default; gpt_init zeroes it) for overlapping
     * gradient communication with the backward pass (model/train_dist.c).
     * Every gpt_backward* calls on_layer_grads(on_layer_ctx, l) for l = L-1
     * down to 0 as soon as layer l's parameter gradients (ln1w .. fcprojb at
     * index l) are final; lnfw, lnfb are final before the call for L-1. Then once with l = -1 after the embeddings (wte, wpe): wte is
     * final only there (the tied LM head adds to it first). Between the
     * operations inside each layer's backward it is also called with layer
     * = GPT_HOOK_PROGRESS (nothing new is final): a moment a trainer can
     * lend to its communication (MPI moves a started collective on only
     * inside MPI calls). The hook must not touch the model; it runs on the
     * calling thread, outside OpenMP regions, and costs one branch per call
     * site when unset. */
    void (*on_layer_grads)(void *ctx, int layer);
    void *on_layer_ctx;
} gpt;

/* Allocates and initializes a model (GPT-2 init: weights N(0, 0.02),
 * attprojw and fcprojw N(0, 0.02/sqrt(2L)), biases 0, LayerNorm 1/0).
 * Fairness: every shared tensor is drawn from rng (seed, stream 0) in the
 * order of gpt_params skipping wpe; wpe from (seed, stream 1). Models with the
 * same seed but different pe therefore start from identical shared weights.
 * On error *m is zeroed (safe to gpt_free). */
gpt_status gpt_init(gpt *m, const gpt_config *cfg, uint64_t seed);

/* Frees everything and zeroes *m. NULL or a zeroed model is fine. */
void gpt_free(gpt *m);

/* Forward over inp (B, T) tokens. With targets (B, T): fills acts.losses and
 * returns the mean loss; without (NULL): returns 0 and leaves acts.logits and
 * acts.probs valid. T may exceed maxT except for PE_LEARNED. Returns NAN on
 * error with m->status set (GPT_ESHAPE, GPT_ETOKEN, GPT_ENOMEM, GPT_EROPE). */
float gpt_forward(gpt *m, const int *inp, const int *targets, int B, int T);

/* Zeroes the parameter gradients. */
void gpt_zero_grad(gpt *m);

/* Accumulates (+=) into m->grads the gradient of the last forward's mean
 * loss; gpt_backward_scaled multiplies it by scale (1/accum for gradient
 * accumulation). Returns GPT_ESTATE if the last forward had no targets. */
gpt_status gpt_backward(gpt *m);
gpt_status gpt_backward_scaled(gpt *m, float scale);

/* gpt_backward_scaled; with overwrite != 0 the parameter gradients are
 * overwritten rather than accumulated (no gpt_zero_grad needed first: the
 * first micro-batch of a step). Same values as zeroing first, but for the
 * sign of exact zeros. */
gpt_status gpt_backward_ex(gpt *m, float scale, int overwrite);

/* Number of parameters (floats in params_memory). */
size_t gpt_num_params(const gpt *m);

/* Copies n == num_params floats into the parameters (checkpoint load, the
 * PyTorch reference test). GPT_ESHAPE if n differs. */
gpt_status gpt_set_params(gpt *m, const float *src, size_t n);

/* PE_ROPE: rebuilds the rotation table with scaling s (NULL = none) for
 * sequences up to eval_ctx tokens (the seq_len dynamic NTK and LongRoPE read),
 * precomputing max(8*maxT, eval_ctx) positions (eval_ctx <= 0: maxT, the
 * training setting). Other pe: GPT_OK, no-op.
 * On error the old table is kept. */
gpt_status gpt_set_rope_scaling(gpt *m, const rope_scaling *s, int64_t eval_ctx);

/* Bytes a training run of cfg on (B, T) batches makes the model allocate,
 * computed without allocating (in double: huge configs overflow size_t):
 * *state = params, grads, AdamW m and v (4 bytes each) and the decay mask
 * (1 byte) per parameter; *acts = the activations, their gradient buffers
 * and the token/position buffers of one forward + backward (the same sums as
 * the allocation in gpt.c). Returns *state + *acts; either pointer may be
 * NULL. Not counted: the RoPE/sinusoid tables and matmul packing scratch
 * (a few MB at most). */
double gpt_memory_bytes(const gpt_config *cfg, int B, int T, double *state, double *acts);

/* Mean loss on one batch (a forward with targets); NAN on error. */
float gpt_eval_loss(gpt *m, const int *inp, const int *tgt, int B, int T);

/* After a forward with targets: out[t] = mean over the batch rows of the loss
 * at position t, t = 0..T-1 (summed in double). */
void gpt_position_losses(const gpt *m, double *out);

#endif
