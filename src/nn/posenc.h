/*
 * posenc.h — fixed (not trained) position encodings: the sinusoidal table of
 * Vaswani et al. 2017 and the ALiBi head slopes of Press et al. 2022.
 * Learned positions live in the encoder; RoPE lives in librope.
 */
#ifndef ROPEGPT_NN_POSENC_H
#define ROPEGPT_NN_POSENC_H

/* Vaswani et al. 2017 §3.5, base 10000, computed in double then rounded once:
 *   pe[t, 2i]   = sin(t / 10000^(2i/C))
 *   pe[t, 2i+1] = cos(t / 10000^(2i/C))
 * For odd C the last channel holds the sine of its pair.
 *   pe (T,C) */
void sinusoidal_table(float *pe, int T, int C);

/* out[b,t,:] += table[t,:] for every batch row (the backward of a fixed table
 * is the identity on dout, so there is no add_rows_backward).
 *   out (B,T,C)  table (T,C) — at least T rows */
void add_rows_forward(float *out, const float *table, int B, int T, int C);

/* ALiBi slopes (Press et al. 2022 §3): for n heads, the geometric sequence
 * that starts at 2^(-8/n) with that same ratio, slope_h = 2^(-8h/NH),
 * h = 1..NH (NH = 8: 1/2, 1/4, ..., 1/256). The paper's text states this rule
 * for every n; its reference code interleaves two power-of-2 sequences when
 * n is not a power of 2, which we do not follow.
 *   slopes (NH) */
void alibi_slopes(float *slopes, int NH);

#endif
