/*
 * sampler.c — greedy, temperature, top-k and top-p (nucleus) token choice
 * over one row of logits. Probabilities are formed in double with the
 * largest logit subtracted first (no overflow in exp, and a temperature near
 * zero stays finite). The ranking is a full sort of (logit, id) pairs with a
 * total order — NaN last, ties by lower id — so the cut is reproducible on
 * every platform whatever qsort's stability.
 */
#include "model/sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int sampler_init(sampler *s, int V, double temperature, int top_k, double top_p, uint64_t seed) {
    if (s == NULL) return -1;
    memset(s, 0, sizeof *s);
    if (V <= 0 || !(temperature >= 0.0) || !isfinite(temperature) || top_k < 0 || !(top_p > 0.0) ||
        !(top_p <= 1.0))
        return -1;
    s->probs = malloc((size_t)V * sizeof *s->probs);
    s->ranked = malloc((size_t)V * sizeof *s->ranked);
    if (s->probs == NULL || s->ranked == NULL) {
        sampler_free(s);
        return -2;
    }
    s->V = V;
    s->temperature = temperature;
    s->top_k = top_k;
    s->top_p = top_p;
    rng_init(&s->rng, seed, 0);
    return 0;
}

void sampler_free(sampler *s) {
    if (s == NULL) return;
    free(s->probs);
    free(s->ranked);
    memset(s, 0, sizeof *s);
}

/* Descending logit, NaN last, then ascending id: a total order. */
static int cmp_entry(const void *pa, const void *pb) {
    const sampler_entry *a = pa, *b = pb;
    int an = isnan(a->logit), bn = isnan(b->logit);
    if (an != bn) return an - bn;
    if (!an && a->logit != b->logit) return a->logit > b->logit ? -1 : 1;
    return (a->id > b->id) - (a->id < b->id);
}

static int argmax(const float *logits, int V) {
    int best = -1;
    for (int i = 0; i < V; i++)
        if (!isnan(logits[i]) && (best < 0 || logits[i] > logits[best])) best = i;
    return best < 0 ? 0 : best;
}

int sampler_sample(sampler *s, const float *logits) {
    const int V = s->V;
    const int best = argmax(logits, V);
    if (s->temperature == 0.0) return best;
    const double inv_t = 1.0 / s->temperature;
    const double maxl = (double)logits[best];
    const int cut_k = s->top_k > 0 && s->top_k < V;
    const int cut_p = s->top_p < 1.0;

    if (!cut_k && !cut_p) {
        /* No cut: draw in id order, no sort needed. */
        double sum = 0.0;
        for (int i = 0; i < V; i++) {
            s->probs[i] = isnan(logits[i]) ? 0.0 : exp(((double)logits[i] - maxl) * inv_t);
            sum += s->probs[i];
        }
        double u = rng_uniform_double(&s->rng) * sum, acc = 0.0;
        int last = best;
        for (int i = 0; i < V; i++) {
            if (s->probs[i] == 0.0) continue;
            acc += s->probs[i];
            last = i;
            if (u < acc) return i;
        }
        return last;   /* u rounded up to sum: the last nonzero entry */
    }

    int n_rank = V;
    double sum_all = 0.0;   /* top-p alone: the mass of all V tokens */
    if (!cut_k) {
        /* Top-p alone: a token whose probability is below (1 - p) / (V - 1)
         * of the total cannot be in the nucleus (all such tokens together
         * hold less than 1 - p, and they rank below every other), so only
         * the rest need sorting — the same result as sorting all V (the
         * filter llama2.c's sample_topp uses). */
        for (int i = 0; i < V; i++) {
            s->probs[i] = isnan(logits[i]) ? 0.0 : exp(((double)logits[i] - maxl) * inv_t);
            sum_all += s->probs[i];
        }
        const double floor_p = V > 1 ? (1.0 - s->top_p) / (double)(V - 1) * sum_all : 0.0;
        n_rank = 0;
        for (int i = 0; i < V; i++) {
            if (s->probs[i] > 0.0 && s->probs[i] >= floor_p) {
                s->ranked[n_rank].logit = logits[i];
                s->ranked[n_rank].id = i;
                n_rank++;
            }
        }
        if (n_rank == 0) return best;   /* every logit NaN */
    } else {
        for (int i = 0; i < V; i++) {
            s->ranked[i].logit = logits[i];
            s->ranked[i].id = i;
        }
    }
    qsort(s->ranked, (size_t)n_rank, sizeof *s->ranked, cmp_entry);
    int n = cut_k ? s->top_k : n_rank;
    double sum = 0.0;
    for (int r = 0; r < n; r++) {
        float l = s->ranked[r].logit;
        s->probs[r] = isnan(l) ? 0.0 : exp(((double)l - maxl) * inv_t);
        sum += s->probs[r];
    }
    if (cut_p) {
        /* Nucleus: the shortest rank prefix holding top_p of the mass left
         * by top-k (all V tokens without it), at least one token. */
        double need = s->top_p * (cut_k ? sum : sum_all), acc = 0.0;
        int m = 0;
        while (m < n) {
            acc += s->probs[m++];
            if (acc >= need) break;
        }
        n = m;
        sum = acc;
    }
    double u = rng_uniform_double(&s->rng) * sum, acc = 0.0;
    int last = s->ranked[0].id;
    for (int r = 0; r < n; r++) {
        if (s->probs[r] == 0.0) continue;
        acc += s->probs[r];
        last = s->ranked[r].id;
        if (u < acc) return last;
    }
    return last;
}
