/*
 * table.h — internal (not installed): the one function that turns a position
 * into a cos/sin row, shared by the table fill, the on-the-fly path past the
 * table (table.c, apply.c) and rope_shift, so all of them give the same bits.
 */
#ifndef ROPE_TABLE_H
#define ROPE_TABLE_H

/* cos_out[i] = (float)(factor * cos(pos * inv_freq[i])), sin likewise, for
 * i < n_pairs; the angle is the exact product of the two doubles (see table.c). */
void rope_row_compute(const double *inv_freq, int n_pairs, double factor, double pos,
                      float *cos_out, float *sin_out);

#endif /* ROPE_TABLE_H */
