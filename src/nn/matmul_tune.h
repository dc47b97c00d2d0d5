/*
 * matmul_tune.h — chooses, per product shape, the fastest of the own
 * backend's kernel variants (up to MATMUL_TUNE_MAXV) by timing the calls as
 * they run. The variants give the same bits (every output element is the
 * same FMA chain over k in the same KC blocks), so the choice changes speed
 * only, never a result, and a run stays reproducible whatever it picks.
 *
 * Why online: which variant wins depends on the core (the 12-row kernel's
 * embedded broadcasts suit an Intel core short of issue slots and cost an
 * AMD Zen 5 a fifth of its FMA rate), on the shape, and on this shared
 * host's minute-to-minute state, so no fixed rule was right everywhere.
 */
#ifndef ROPEGPT_NN_MATMUL_TUNE_H
#define ROPEGPT_NN_MATMUL_TUNE_H

enum {
    MATMUL_TUNE_SLOTS = 32,    /* distinct shapes tracked; others run variant 0 */
    MATMUL_TUNE_MAXV = 8,      /* variants per shape at most */
    MATMUL_TUNE_PROBE = 16,    /* every 16th call of a shape re-times another variant */
    MATMUL_TUNE_WARMUP = 1     /* timed calls of each variant before choosing */
};

typedef struct {
    int M, Ncols, K, kind;     /* the key; kind tells products of one shape apart */
    double secs[MATMUL_TUNE_MAXV];   /* moving average of each variant's time per call */
    int runs[MATMUL_TUNE_MAXV];      /* timings recorded per variant */
    unsigned calls;
    int cold_done;             /* the key's first call (cold: page faults, scratch growth) was seen */
} matmul_tune_slot;

typedef struct {
    matmul_tune_slot slot[MATMUL_TUNE_SLOTS];
    int nslots;
} matmul_tuner;

void matmul_tune_reset(matmul_tuner *t);

/* The variant (0 .. nvariants-1) to run for this call of the key, and in
 * *slot the slot to pass to matmul_tune_record (-1 when the table is full,
 * t is NULL or nvariants is not 2 .. MATMUL_TUNE_MAXV: variant 0, nothing
 * to record). The key's first call is not counted (it is cold), then each
 * variant is timed MATMUL_TUNE_WARMUP times, then the fastest runs, every
 * MATMUL_TUNE_PROBE-th call re-timing one of the others in turn. A key is
 * always asked with the same nvariants. */
int matmul_tune_pick(matmul_tuner *t, int M, int Ncols, int K, int kind, int nvariants, int *slot);

/* The wall time one call of `variant` took; a bad slot or variant (or a
 * NULL t) is ignored. */
void matmul_tune_record(matmul_tuner *t, int slot, int variant, double secs);

#endif
