/*
 * stats.h — the few statistics `ropegpt compare` reports over seeds: mean,
 * sample standard deviation, min/max, and the first step at which a loss
 * curve reaches a threshold. Sums are in double, in index order, so results
 * are bit-reproducible. NaN inputs are skipped (a run that failed or an
 * evaluation that does not apply), and an empty set gives NaN.
 */
#ifndef ROPEGPT_STATS_H
#define ROPEGPT_STATS_H

#include <stddef.h>
#include <stdint.h>

/* Mean of the finite values of x[0..n); NaN if none. */
double stats_mean(const double *x, int n);
/* Sample standard deviation (divisor k - 1) of the k finite values; NaN if k < 2. */
double stats_std(const double *x, int n);
/* Min / max of the finite values; NaN if none. */
double stats_min(const double *x, int n);
double stats_max(const double *x, int n);
/* Number of finite values. */
int stats_count(const double *x, int n);

/* First steps[i] (in index order) with y[i] <= threshold; -1 if never. */
int64_t stats_first_below(const int64_t *steps, const double *y, int n, double threshold);

/* (a - b) / sqrt((sa^2 + sb^2) / 2): a difference of two means in units of
 * the seeds' pooled standard deviation. NaN if either std is NaN or both
 * are 0. */
double stats_diff_in_std(double a, double sa, double b, double sb);

#endif
