/*
 * rng.h — a small explicit-state pseudo-random generator for ropegpt:
 * xoshiro256** (Blackman & Vigna 2018, "Scrambled linear pseudorandom number
 * generators") seeded through splitmix64 (Steele, Lea & Flood 2014). All state
 * lives in an rng_state the caller owns, so there is no global state; the same
 * (seed, stream) always yields the same sequence on every platform, which is
 * what makes model init, data batches and eval batches reproducible.
 * Thread safety: one rng_state per thread (functions are reentrant).
 */
#ifndef ROPEGPT_RNG_H
#define ROPEGPT_RNG_H

#include <stddef.h>
#include <stdint.h>

typedef struct rng_state {
    uint64_t s[4];
} rng_state;

/* Seeds r from (seed, stream): distinct streams of one seed give independent
 * sequences (the stream id is mixed into the splitmix64 seed sequence). */
void rng_init(rng_state *r, uint64_t seed, uint64_t stream);

/* Next 64 random bits. */
uint64_t rng_u64(rng_state *r);

/* Uniform integer in [0, n) without modulo bias (n > 0; n == 0 returns 0). */
uint64_t rng_below(rng_state *r, uint64_t n);

/* Uniform double in [0, 1) with 53 random bits. */
double rng_uniform_double(rng_state *r);

/* Uniform float in [0, 1) with 24 random bits. */
float rng_uniform(rng_state *r);

/* Standard normal deviate by Box-Muller in double (Box & Muller 1958). Each
 * call consumes exactly two 64-bit outputs and returns the cosine branch (no
 * cached spare), so the number of draws is a pure function of the number of
 * calls. */
double rng_normal(rng_state *r);

/* out[i] = mean + std * rng_normal(r) for i = 0..n-1, in order. */
void rng_fill_normal(rng_state *r, float *out, size_t n, float mean, float std);

#endif
