/*
 * posenc.c — the sinusoidal position table and ALiBi slopes. Both are
 * derived data computed once at model init, in double so that every position
 * is as exact as position 1 (a float angle t * freq loses digits as t grows).
 */
#include "nn/posenc.h"

#include <math.h>
#include <stddef.h>

void sinusoidal_table(float *pe, int T, int C) {
    for (int t = 0; t < T; t++) {
        float *pe_t = pe + (size_t)t * (size_t)C;   /* (C) */
        for (int i = 0; 2 * i < C; i++) {
            /* 1 / 10000^(2i/C) = exp(-(2i/C) ln 10000), Vaswani et al. §3.5 */
            double inv_freq = exp(-((double)(2 * i) / (double)C) * log(10000.0));
            double angle = (double)t * inv_freq;
            pe_t[2 * i] = (float)sin(angle);
            if (2 * i + 1 < C) pe_t[2 * i + 1] = (float)cos(angle);
        }
    }
}

void add_rows_forward(float *out, const float *table, int B, int T, int C) {
    for (int b = 0; b < B; b++) {
        for (int t = 0; t < T; t++) {
            float *out_bt = out + ((size_t)b * (size_t)T + (size_t)t) * (size_t)C; /* (C) */
            const float *row = table + (size_t)t * (size_t)C;                     /* (C) */
            for (int i = 0; i < C; i++) out_bt[i] += row[i];
        }
    }
}

void alibi_slopes(float *slopes, int NH) {
    for (int h = 1; h <= NH; h++)
        slopes[h - 1] = (float)exp2(-8.0 * (double)h / (double)NH);
}
