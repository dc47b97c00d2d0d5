/*
 * table.c — librope's cos/sin tables: rope_table_init/free/set_kernel/row.
 * A table holds, for every position p in [0, max_positions) and pair i,
 * attention_factor * cos(p * inv_freq[i]) and the same for sin, rounded once
 * to float. Positions past the table are computed on the fly by the same
 * function (rope_row_compute), so a table row and an on-the-fly row for the
 * same position are bit-identical.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rope/table.h"
#include "rope/kernels.h"

/*
 * Why the fma: the angle p * inv_freq[i] rounded to double has an absolute
 * error up to 2^-53 * |angle|, i.e. 2^-22 rad at p = 2^31 with inv_freq ~ 1,
 * which is two float ulps of cos/sin near 1. fma(p, inv, -hi) gives the exact
 * rounding error lo of hi = p*inv (Dekker/Kahan two-product: the product of
 * two doubles is exactly hi + lo), and cos(hi + lo) = cos(hi) - sin(hi)*lo
 * + O(lo^2) with lo^2 <= 2^-44 negligible. So the result is the cos/sin of the
 * exact product of the double position and the double inv_freq, to about one
 * double ulp, before the single rounding to float.
 */
void rope_row_compute(const double *inv_freq, int n_pairs, double factor, double pos,
                      float *cos_out, float *sin_out) {
    for (int i = 0; i < n_pairs; i++) {
        double hi = pos * inv_freq[i];
        double lo = fma(pos, inv_freq[i], -hi);
        double c = cos(hi), s = sin(hi);
        /* The first-order correction needs a small lo: for |lo| <= 2^-20 its
         * error lo^2/2 <= 2^-41 is far below a float ulp. A huge angle (base
         * below 1, a small linear factor, a long key shift) has |lo| up to
         * ulp(hi)/2, of any size; then the exact angle-addition formula is
         * used (found by tests/fuzz/fuzz_rope_config.c: base 5e-299 gave
         * cos values of 1e33). */
        double cc, ss;
        if (fabs(lo) <= 0x1p-20) {
            cc = c - s * lo;
            ss = s + c * lo;
        } else {
            double cl = cos(lo), sl = sin(lo);
            cc = c * cl - s * sl;
            ss = s * cl + c * sl;
        }
        cos_out[i] = (float)(factor * cc);
        sin_out[i] = (float)(factor * ss);
    }
}

rope_status rope_table_init(rope_table *t, const rope_config *cfg, int64_t seq_len) {
    if (!t) return ROPE_ENULL;
    memset(t, 0, sizeof *t);
    if (!cfg) return ROPE_ENULL;
    rope_status st = rope_config_validate(cfg);
    if (st != ROPE_OK) return st;
    if (cfg->max_positions < 0) return ROPE_EPARAM; /* validate should have caught it */

    int n_pairs = cfg->rotary_dim / 2;
    double af = 1.0;
    double *inv = malloc((size_t)n_pairs * sizeof *inv);
    if (!inv) return ROPE_ENOMEM;
    st = rope_freqs(cfg, seq_len, inv, &af);
    if (st != ROPE_OK) { free(inv); return st; }

    /* (max_positions, n_pairs) floats each; refuse sizes size_t cannot hold. */
    uint64_t rows = (uint64_t)cfg->max_positions;
    if (rows > (uint64_t)(SIZE_MAX / sizeof(float)) / (uint64_t)n_pairs) { free(inv); return ROPE_ENOMEM; }
    size_t n = (size_t)rows * (size_t)n_pairs;
    float *c = NULL, *s = NULL;
    if (n > 0) {
        c = malloc(n * sizeof *c);
        s = malloc(n * sizeof *s);
        if (!c || !s) { free(c); free(s); free(inv); return ROPE_ENOMEM; }
    }
    /* Rows are independent, so any thread split gives the same bits. A big
     * table (128k positions x 64 pairs) costs ~10^7 trig calls: worth threads. */
    int64_t max_pos = cfg->max_positions;
#ifdef _OPENMP
    int big = (uint64_t)n >= (uint64_t)1 << 18;
    #pragma omp parallel for schedule(static) if (big)
#endif
    for (int64_t p = 0; p < max_pos; p++)
        rope_row_compute(inv, n_pairs, af, (double)p, c + (size_t)p * (size_t)n_pairs,
                         s + (size_t)p * (size_t)n_pairs);

    t->cfg = *cfg;
    /* The factor arrays are borrowed by the config and not kept (rope.h). */
    t->cfg.scaling.short_factor = NULL;
    t->cfg.scaling.long_factor = NULL;
    t->n_pairs = n_pairs;
    t->seq_len = seq_len;
    t->attention_factor = af;
    t->inv_freq = inv;
    t->cos = c;
    t->sin = s;
    t->kernel = rope_kernel_best();
    return ROPE_OK;
}

void rope_table_free(rope_table *t) {
    if (!t) return;
    free(t->inv_freq);
    free(t->cos);
    free(t->sin);
    memset(t, 0, sizeof *t);
}

rope_status rope_table_set_kernel(rope_table *t, rope_kernel k) {
    if (!t) return ROPE_ENULL;
    if (k == ROPE_KERNEL_AUTO) k = rope_kernel_best();
    if (!rope_kernel_supported(k) || !rope_kernel_get(k, ROPE_LAYOUT_INTERLEAVED)) return ROPE_EKERNEL;
    t->kernel = k;
    return ROPE_OK;
}

rope_status rope_table_row(const rope_table *t, int64_t pos, float *cos_out, float *sin_out) {
    if (!t || !cos_out || !sin_out || !t->inv_freq) return ROPE_ENULL;
    if (pos < 0) return ROPE_EPOS;
    size_t np = (size_t)t->n_pairs;
    if (pos < t->cfg.max_positions) {
        memcpy(cos_out, t->cos + (size_t)pos * np, np * sizeof(float));
        memcpy(sin_out, t->sin + (size_t)pos * np, np * sizeof(float));
        return ROPE_OK;
    }
    if (t->cfg.strict_range) return ROPE_ERANGE;
    rope_row_compute(t->inv_freq, t->n_pairs, t->attention_factor, (double)pos, cos_out, sin_out);
    return ROPE_OK;
}
