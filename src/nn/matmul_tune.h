/*
 * matmul_tune.h — chooses, per product shape, the faster of the own
 * backend's two kernel variants by timing the calls as they run. The two
 * variants give the same bits (every output element is the same FMA chain
 * over k in the same KC blocks), so the choice changes speed only, never a
 * result, and a run stays reproducible whatever it picks.
 *
 * Why online: which variant wins depends on the shape and on this shared
 * host's minute-to-minute state (a busy SMT sibling favours the leaner
 * 12-row kernel; a quiet core favours the 8-row kernel that reads A in
 * place), so no fixed rule was right at every shape and every minute.
 */
#ifndef ROPEGPT_NN_MATMUL_TUNE_H
#define ROPEGPT_NN_MATMUL_TUNE_H

enum {
    MATMUL_TUNE_SLOTS = 32,    /* distinct shapes tracked; others run variant 0 */
    MATMUL_TUNE_PROBE = 16,    /* every 16th call of a shape re-times the other variant */
    MATMUL_TUNE_WARMUP = 2     /* calls of each variant before choosing */
};

typedef struct {
    int M, Ncols, K, kind;     /* the key; kind tells products of one shape apart */
    double secs[2];            /* moving average of each variant's time per call */
    int runs[2];
    unsigned calls;
} matmul_tune_slot;

typedef struct {
    matmul_tune_slot slot[MATMUL_TUNE_SLOTS];
    int nslots;
} matmul_tuner;

void matmul_tune_reset(matmul_tuner *t);

/* The variant (0 or 1) to run for this call of the key, and in *slot the
 * slot to pass to matmul_tune_record (-1 when the table is full or t is
 * NULL: variant 0, nothing to record). */
int matmul_tune_pick(matmul_tuner *t, int M, int Ncols, int K, int kind, int *slot);

/* The wall time one call of `variant` took; a bad slot or variant (or a
 * NULL t) is ignored. */
void matmul_tune_record(matmul_tuner *t, int slot, int variant, double secs);

#endif
