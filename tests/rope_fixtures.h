/*
 * rope_fixtures.h — what the librope tests share: a fixed random stream
 * (splitmix64, so a failure reproduces on any machine), buffers filled from
 * it, and a rope_config for a head shape.
 */
#ifndef ROPEGPT_TESTS_ROPE_FIXTURES_H
#define ROPEGPT_TESTS_ROPE_FIXTURES_H

#include <stdint.h>
#include <stdlib.h>

#include "rope.h"

static inline uint64_t rng_next(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform in [-1, 1), never exactly 0 (keeps signed zeros out of bit checks). */
static inline float rng_float(uint64_t *s) {
    float f = (float)((double)(rng_next(s) >> 11) * 0x1.0p-53 * 2.0 - 1.0);
    return f == 0.0f ? 0.5f : f;
}

static inline void fill(float *x, size_t n, uint64_t *s) {
    for (size_t i = 0; i < n; i++) x[i] = rng_float(s);
}

/* malloc that ends the test run on failure (tests allocate small buffers). */
static inline float *falloc(size_t n) {
    float *p = malloc(n * sizeof *p);
    if (!p) abort();
    return p;
}

static inline rope_config config(int head_dim, int rotary_dim, rope_layout layout, int64_t max_pos) {
    rope_config c = rope_config_default();
    c.head_dim = head_dim;
    c.rotary_dim = rotary_dim;
    c.layout = layout;
    c.max_positions = max_pos;
    return c;
}

#endif
