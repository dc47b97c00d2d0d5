/*
 * matmul_tune.c — see matmul_tune.h. A table of shapes, each with a moving
 * average of every variant's call time: run each a few times, then the
 * fastest, re-timing another one call in MATMUL_TUNE_PROBE so a change of
 * the host's state is noticed within a few steps.
 */
#include "nn/matmul_tune.h"

#include <string.h>

void matmul_tune_reset(matmul_tuner *t) { memset(t, 0, sizeof *t); }

static int find_or_add(matmul_tuner *t, int M, int Ncols, int K, int kind) {
    for (int i = 0; i < t->nslots; i++) {
        const matmul_tune_slot *s = &t->slot[i];
        if (s->M == M && s->Ncols == Ncols && s->K == K && s->kind == kind) return i;
    }
    if (t->nslots == MATMUL_TUNE_SLOTS) return -1;
    matmul_tune_slot *s = &t->slot[t->nslots];
    memset(s, 0, sizeof *s);
    s->M = M, s->Ncols = Ncols, s->K = K, s->kind = kind;
    return t->nslots++;
}

int matmul_tune_pick(matmul_tuner *t, int M, int Ncols, int K, int kind, int nvariants, int *slot) {
    const int ok = t && nvariants >= 2 && nvariants <= MATMUL_TUNE_MAXV;
    const int i = ok ? find_or_add(t, M, Ncols, K, kind) : -1;
    if (slot) *slot = i;
    if (i < 0) return 0;
    matmul_tune_slot *s = &t->slot[i];
    s->calls++;
    /* warm-up: the least-run variant until each has MATMUL_TUNE_WARMUP timings */
    int least = 0, best = 0;
    for (int v = 1; v < nvariants; v++) {
        if (s->runs[v] < s->runs[least]) least = v;
        if (s->secs[v] < s->secs[best]) best = v;
    }
    if (s->runs[least] < MATMUL_TUNE_WARMUP) return least;
    if (s->calls % MATMUL_TUNE_PROBE) return best;
    /* a probe: the others in turn */
    const int other = (int)(s->calls / MATMUL_TUNE_PROBE % (unsigned)(nvariants - 1));
    return other < best ? other : other + 1;
}

void matmul_tune_record(matmul_tuner *t, int slot, int variant, double secs) {
    if (!t || slot < 0 || slot >= t->nslots || variant < 0 || variant >= MATMUL_TUNE_MAXV) return;
    matmul_tune_slot *s = &t->slot[slot];
    if (!s->cold_done) {   /* the key's first call: page faults, scratch growth */
        s->cold_done = 1;
        return;
    }
    if (s->runs[variant] == 0) s->secs[variant] = secs;
    else s->secs[variant] = 0.75 * s->secs[variant] + 0.25 * secs;
    s->runs[variant]++;
}
