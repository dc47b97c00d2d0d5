/*
 * rng.c — xoshiro256** seeded by splitmix64, plus uniform and Box-Muller
 * normal samplers. Algorithms from Blackman & Vigna 2018 (xoshiro256**,
 * https://prng.di.unimi.it/) and Steele, Lea & Flood 2014 (splitmix64); the
 * constants are the published ones.
 */
#include "util/rng.h"

#include <math.h>

static uint64_t splitmix64_next(uint64_t *x) {
    uint64_t z = (*x += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void rng_init(rng_state *r, uint64_t seed, uint64_t stream) {
    /* Mix the stream id through one splitmix64 output so that (seed, 1) and
     * (seed + 1, 0) do not give overlapping state sequences. */
    uint64_t sm = stream;
    uint64_t x = seed ^ splitmix64_next(&sm);
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64_next(&x);
    /* xoshiro must not start from all zeros; splitmix64 makes that
     * practically impossible, but keep the invariant explicit. */
    if ((r->s[0] | r->s[1] | r->s[2] | r->s[3]) == 0) r->s[0] = 1;
}

uint64_t rng_u64(rng_state *r) {
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

uint64_t rng_below(rng_state *r, uint64_t n) {
    if (n == 0) return 0;
    /* Rejection: discard the top partial block of 2^64 so every residue is
     * equally likely. threshold = 2^64 mod n. */
    uint64_t threshold = (0 - n) % n;
    for (;;) {
        uint64_t x = rng_u64(r);
        if (x >= threshold) return x % n;
    }
}

double rng_uniform_double(rng_state *r) {
    return (double)(rng_u64(r) >> 11) * 0x1.0p-53;
}

float rng_uniform(rng_state *r) {
    return (float)(rng_u64(r) >> 40) * 0x1.0p-24f;
}

double rng_normal(rng_state *r) {
    /* Box-Muller: u1 in (0, 1] so log(u1) is finite. */
    double u1 = 1.0 - rng_uniform_double(r);
    double u2 = rng_uniform_double(r);
    return sqrt(-2.0 * log(u1)) * cos(2.0 * 3.14159265358979323846 * u2);
}

void rng_fill_normal(rng_state *r, float *out, size_t n, float mean, float std) {
    for (size_t i = 0; i < n; i++) out[i] = (float)((double)mean + (double)std * rng_normal(r));
}
