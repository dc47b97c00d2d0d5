/*
 * rope.h — librope: Rotary Position Embedding (RoPE) for C.
 *
 * RoPE (Su et al. 2021, "RoFormer", arXiv:2104.09864) encodes the position p
 * of a query/key vector by rotating each 2-D pair i of its first rotary_dim
 * channels by the angle p * inv_freq[i], inv_freq[i] = base^(-2i/rotary_dim).
 * Rotations compose, so <R_m q, R_n k> depends only on n - m, and they keep
 * norms. librope computes angles in double, stores cos/sin tables in float,
 * and rotates with multiply/add per pair (never a d x d matrix).
 *
 * Thread safety: every function is reentrant. A rope_table may be read by any
 * number of threads at once once rope_table_init() has returned.
 * The library never prints, never exits and keeps no global state.
 */
#ifndef ROPE_H
#define ROPE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ROPE_VERSION_MAJOR 0
#define ROPE_VERSION_MINOR 1
#define ROPE_VERSION_PATCH 0
#define ROPE_VERSION_STRING "0.1.0"

/* Returns ROPE_VERSION_STRING of the library actually linked. */
const char *rope_version(void);

/* ---------------------------------------------------------------- status */

typedef enum {
    ROPE_OK = 0,
    ROPE_ENULL,        /* a required pointer argument is NULL */
    ROPE_EDIM,         /* head_dim <= 0, rotary_dim odd, <= 0 or > head_dim */
    ROPE_EBASE,        /* base <= 0, NaN or Inf */
    ROPE_EFACTOR,      /* scaling factor <= 0, NaN or Inf */
    ROPE_EPARAM,       /* another scaling parameter is NaN/Inf/out of range */
    ROPE_EFACTORS,     /* per-pair factor array missing, wrong length, or a factor <= 0/NaN */
    ROPE_ELAYOUT,      /* unknown layout value */
    ROPE_ESCALING,     /* unknown scaling type */
    ROPE_ESHAPE,       /* n_tokens < 0, n_heads <= 0, head stride < head_dim, ... */
    ROPE_EPOS,         /* a position is negative */
    ROPE_ERANGE,       /* a position >= max_positions while strict_range is set */
    ROPE_EKERNEL,      /* the requested kernel is not supported by this CPU/build */
    ROPE_ENOMEM,       /* an allocation failed */
    ROPE_STATUS_COUNT
} rope_status;

/* A static, human-readable one-line description of s ("unknown status" for
 * values outside the enum). Never NULL. */
const char *rope_status_str(rope_status s);

/* ---------------------------------------------------------------- layouts */

/*
 * Which channels form a rotated pair (head_dim D = 8, rotary_dim d = 4 shown;
 * c/s mark the two members of each pair, '.' channels are copied unchanged).
 *
 *   ROPE_LAYOUT_INTERLEAVED  pairs (2i, 2i+1)         [c s c s . . . .]
 *       RoFormer, GPT-J, Meta's Llama reference, llama2.c; the complex view
 *       x[2i] + j*x[2i+1] multiplied by e^{j*p*theta_i}.
 *
 *   ROPE_LAYOUT_HALF         pairs (i, i + d/2)       [c c s s . . . .]
 *       GPT-NeoX, Hugging Face rotate_half. With partial rotary the partner
 *       is i + rotary_dim/2, not i + head_dim/2.
 *
 * The two are the same operation up to a fixed permutation of each head's
 * q/k projection rows; see rope_permute_rows().
 */
typedef enum {
    ROPE_LAYOUT_INTERLEAVED = 0,
    ROPE_LAYOUT_HALF = 1
} rope_layout;

/* ---------------------------------------------------------------- scalings */

typedef enum {
    ROPE_SCALING_NONE = 0,     /* inv_freq = base^(-2i/d) */
    ROPE_SCALING_LINEAR,       /* Position Interpolation (Chen et al. 2023): inv/s */
    ROPE_SCALING_NTK,          /* NTK-aware: base' = base * s^(d/(d-2)) */
    ROPE_SCALING_DYNAMIC,      /* dynamic NTK: base grows with the sequence length */
    ROPE_SCALING_YARN,         /* YaRN (Peng et al. 2023): ramp + attention factor */
    ROPE_SCALING_LLAMA3,       /* Llama 3.1: wavelength-banded interpolation */
    ROPE_SCALING_LONGROPE,     /* LongRoPE / Phi-3: per-pair short/long factors */
    ROPE_SCALING_FREQ_FACTORS, /* arbitrary per-pair divisors: inv = inv0 / f[i] */
    ROPE_SCALING_COUNT
} rope_scaling_type;

/* Parameters of a scaling. Fields not used by the chosen type are ignored.
 * Names follow Hugging Face's rope_scaling keys. */
typedef struct {
    rope_scaling_type type;
    double factor;                  /* s > 0 (linear, ntk, dynamic, yarn, llama3, longrope) */
    int64_t original_max_positions; /* L0 > 0: training context (dynamic, yarn, llama3, longrope) */
    double attention_factor;        /* NaN = computed by the scaling's rule; else used as is */
    /* YaRN */
    double beta_fast;               /* 32 */
    double beta_slow;               /* 1 */
    double mscale;                  /* 0 = unset; DeepSeek-style mscale ratio when both set */
    double mscale_all_dim;          /* 0 = unset */
    double extrapolation_factor;    /* 1 */
    int truncate;                   /* 1: floor/ceil the correction dims (HF default) */
    /* Llama 3.1 */
    double low_freq_factor;         /* 1 */
    double high_freq_factor;        /* 4 */
    /* LongRoPE (short_factor, long_factor) or FREQ_FACTORS (short_factor only).
     * Borrowed: read during rope_freqs()/rope_table_init() only, not kept. */
    const double *short_factor;
    const double *long_factor;
    int n_factors;                  /* must equal rotary_dim / 2 */
} rope_scaling;

/* ---------------------------------------------------------------- config */

typedef struct {
    int head_dim;            /* D: channels per head */
    int rotary_dim;          /* d: first d channels rotated (even, <= D); rest copied */
    double base;             /* theta base, 10000 */
    rope_layout layout;
    rope_scaling scaling;
    int64_t max_positions;   /* rows of the cos/sin table: positions [0, max) */
    int strict_range;        /* 0: positions >= max_positions are computed on the fly
                                (exact, slower); 1: they return ROPE_ERANGE */
} rope_config;

/* Defaults: head_dim 64, rotary_dim 64, base 10000, INTERLEAVED, no scaling
 * (factor 1, L0 = 2048, attention_factor NaN, beta_fast 32, beta_slow 1,
 * mscale 0, mscale_all_dim 0, extrapolation_factor 1, truncate 1,
 * low_freq_factor 1, high_freq_factor 4), max_positions 2048, strict_range 0. */
rope_config rope_config_default(void);

/* Checks every field (see rope_status). Returns ROPE_OK or the first error
 * found, in the order the fields are declared. cfg may be NULL (ROPE_ENULL). */
rope_status rope_config_validate(const rope_config *cfg);

/* The per-pair inverse frequencies (radians per position, double) of cfg for a
 * sequence of seq_len tokens, and the attention factor that multiplies cos and
 * sin (so the logits scale by its square).
 *   inv_freq: caller array of rotary_dim/2 doubles (may be NULL).
 *   attention_factor: may be NULL.
 *   seq_len: only DYNAMIC (n = max(seq_len, L0)) and LONGROPE (long factors
 *     when seq_len > L0) read it; pass the longest sequence you will serve.
 * Errors: those of rope_config_validate(), ROPE_EPARAM if seq_len < 0. */
rope_status rope_freqs(const rope_config *cfg, int64_t seq_len,
                       double *inv_freq, double *attention_factor);

/* ---------------------------------------------------------------- kernels */

typedef enum {
    ROPE_KERNEL_AUTO = 0,  /* best supported by this CPU */
    ROPE_KERNEL_SCALAR,    /* portable reference */
    ROPE_KERNEL_AVX2,      /* x86-64 AVX2 + FMA */
    ROPE_KERNEL_AVX512     /* x86-64 AVX-512F */
} rope_kernel;

/* Name of a kernel ("auto", "scalar", "avx2", "avx512"). */
const char *rope_kernel_name(rope_kernel k);
/* 1 if k can run on this CPU with this build, else 0. */
int rope_kernel_supported(rope_kernel k);

/* ---------------------------------------------------------------- tables */

/* Precomputed rotation for one config. Fields are read-only for callers. */
typedef struct {
    rope_config cfg;         /* copy (factor arrays not kept) */
    int n_pairs;             /* rotary_dim / 2 */
    int64_t seq_len;         /* the seq_len the frequencies were computed for */
    double attention_factor; /* multiplies cos and sin below */
    double *inv_freq;        /* (n_pairs) */
    float *cos;              /* (max_positions, n_pairs): attention_factor * cos(p*inv_freq) */
    float *sin;              /* (max_positions, n_pairs): attention_factor * sin(p*inv_freq) */
    rope_kernel kernel;      /* kernel apply calls use; AUTO resolved at init */
} rope_table;

/* Validates cfg, computes inv_freq for seq_len (see rope_freqs) and fills the
 * table: each angle p * inv_freq[i] is formed in double, then cos/sin in
 * double, then rounded once to float, so every position is as exact as
 * position 1. On error *t is left zeroed (safe to rope_table_free).
 * Errors: validation errors, ROPE_ENULL, ROPE_ENOMEM. */
rope_status rope_table_init(rope_table *t, const rope_config *cfg, int64_t seq_len);

/* Frees what init allocated and zeroes *t. NULL or a zeroed table is fine. */
void rope_table_free(rope_table *t);

/* Chooses the kernel used by later apply calls (AUTO = best supported).
 * Errors: ROPE_ENULL, ROPE_EKERNEL if the CPU/build cannot run it. */
rope_status rope_table_set_kernel(rope_table *t, rope_kernel k);

/* One cos/sin row for position pos (n_pairs floats each, attention factor
 * included), from the table or computed on the fly past it.
 * Errors: ROPE_ENULL, ROPE_EPOS, ROPE_ERANGE (strict_range). */
rope_status rope_table_row(const rope_table *t, int64_t pos, float *cos_out, float *sin_out);

/* ---------------------------------------------------------------- apply */

/* A (n_tokens, n_heads, head_dim) float view with arbitrary strides, in
 * floats: element (t, h, j) is data[t*token_stride + h*head_stride + j].
 * head_dim comes from the table's config. */
typedef struct {
    float *data;
    int64_t n_tokens;
    int64_t n_heads;
    int64_t token_stride;
    int64_t head_stride;
} rope_view;

/* A view of a packed (n_tokens, n_heads, head_dim) buffer. */
rope_view rope_view_packed(float *data, int64_t n_tokens, int64_t n_heads, int64_t head_dim);

typedef enum {
    ROPE_FORWARD = 0,   /* y = R(p) x */
    ROPE_BACKWARD = 1   /* dx = R(p)^T dy = R(-p) dy: the adjoint (and inverse) */
} rope_direction;

/* Rotates in by the angle of each token's position pos[t] (int32, >= 0) and
 * writes out. out == in (same data and strides) is in place; otherwise the two
 * must not overlap. Channels [rotary_dim, head_dim) are copied unchanged (not
 * touched in place). Both views need the same n_tokens and n_heads.
 * n_threads: 0 = OpenMP default, 1 = serial; small calls run serially anyway.
 * Errors: ROPE_ENULL, ROPE_ESHAPE, ROPE_EPOS, ROPE_ERANGE (strict_range);
 * on error nothing is written. */
rope_status rope_apply(const rope_table *t, rope_direction dir,
                       const rope_view *out, const rope_view *in,
                       const int32_t *pos, int n_threads);

/* In place on queries and keys of the same tokens, whose head counts may
 * differ (grouped-query attention). k may be NULL. Errors as rope_apply, plus
 * ROPE_ESHAPE if q and k disagree on n_tokens. */
rope_status rope_apply_qk(const rope_table *t, rope_direction dir,
                          const rope_view *q, const rope_view *k,
                          const int32_t *pos, int n_threads);

/* Re-rotates cached keys in place by delta positions (keys rotated at p
 * become keys rotated at p + delta), as context shifting needs. Uses the
 * table's frequencies without the attention factor (it is already in the
 * keys). Angles delta*inv_freq in double. Errors: ROPE_ENULL, ROPE_ESHAPE. */
rope_status rope_shift(const rope_table *t, const rope_view *k, int64_t delta, int n_threads);

/* ---------------------------------------------------------------- weights */

/* Permutes the rows of a q or k projection weight (n_heads*head_dim rows of
 * n_cols floats, row-major; a bias is n_cols = 1) so that a model trained with
 * layout `from` computes the same attention scores with layout `to`. Only the
 * first rotary_dim rows of each head move. dst and src must not overlap.
 * Errors: ROPE_ENULL, ROPE_EDIM, ROPE_ELAYOUT, ROPE_ESHAPE. */
rope_status rope_permute_rows(float *dst, const float *src, int n_heads, int head_dim,
                              int rotary_dim, int64_t n_cols,
                              rope_layout from, rope_layout to);

#ifdef __cplusplus
}
#endif
#endif /* ROPE_H */
