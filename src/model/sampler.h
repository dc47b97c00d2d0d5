/*
 * sampler.h — picks the next token from one row of logits: greedy (argmax),
 * or a draw from softmax(logits / temperature) restricted to the top-k
 * logits and then to the nucleus of top-p probability mass (Holtzman et al.
 * 2020, "The Curious Case of Neural Text Degeneration", §3.1). The RNG state
 * and every scratch array live in the sampler (allocated once at init), so a
 * step allocates nothing and the same seed gives the same text.
 * Thread safety: one sampler per thread.
 */
#ifndef ROPEGPT_SAMPLER_H
#define ROPEGPT_SAMPLER_H

#include <stdint.h>

#include "util/rng.h"

typedef struct {
    float logit;
    int id;
} sampler_entry;

typedef struct {
    int V;               /* vocabulary (row length) */
    double temperature;  /* 0 = greedy; > 0 divides the logits */
    int top_k;           /* 0 or >= V = all tokens */
    double top_p;        /* (0, 1]; 1 = no nucleus cut */
    rng_state rng;       /* (seed, stream 0) */
    double *probs;       /* (V) scratch: unnormalised probabilities in rank order */
    sampler_entry *ranked; /* (V) scratch: tokens sorted by logit */
} sampler;

/* Checks the settings and allocates the scratch. 0 ok; -1 bad value (V <= 0,
 * temperature < 0 or not finite, top_k < 0, top_p outside (0, 1]); -2 out of
 * memory. On error *s is zeroed (safe to sampler_free). */
int sampler_init(sampler *s, int V, double temperature, int top_k, double top_p, uint64_t seed);

/* Frees the scratch and zeroes *s. NULL or a zeroed sampler is fine. */
void sampler_free(sampler *s);

/* The next token for logits (V). Greedy: the largest logit, lowest id on
 * ties (no RNG draw). Otherwise: tokens ranked by logit (ties by lower id),
 * cut to the first top_k, then to the shortest prefix whose probability
 * (softmax at the temperature, in double over the kept tokens) reaches top_p;
 * one uniform draw (rng_uniform_double) picks among the survivors in rank
 * order. NaN logits rank last and are never drawn unless all are NaN. */
int sampler_sample(sampler *s, const float *logits);

#endif
