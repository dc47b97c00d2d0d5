/*
 * stats.c — mean, sample std, min/max over seeds and threshold crossing for
 * `ropegpt compare` (see stats.h). Non-finite values mean "no result" and are
 * skipped rather than poisoning a mean.
 */
#include "model/stats.h"

#include <math.h>

int stats_count(const double *x, int n) {
    int k = 0;
    for (int i = 0; i < n; i++) k += isfinite(x[i]) ? 1 : 0;
    return k;
}

double stats_mean(const double *x, int n) {
    double s = 0;
    int k = 0;
    for (int i = 0; i < n; i++)
        if (isfinite(x[i])) { s += x[i]; k++; }
    return k ? s / k : NAN;
}

double stats_std(const double *x, int n) {
    int k = stats_count(x, n);
    if (k < 2) return NAN;
    double m = stats_mean(x, n), s = 0;
    /* Two passes (mean first) rather than sum of squares: no cancellation
     * when the spread is tiny next to the mean, as with losses over seeds. */
    for (int i = 0; i < n; i++)
        if (isfinite(x[i])) s += (x[i] - m) * (x[i] - m);
    return sqrt(s / (k - 1));
}

double stats_min(const double *x, int n) {
    double v = NAN;
    for (int i = 0; i < n; i++)
        if (isfinite(x[i]) && !(v <= x[i])) v = x[i];
    return v;
}

double stats_max(const double *x, int n) {
    double v = NAN;
    for (int i = 0; i < n; i++)
        if (isfinite(x[i]) && !(v >= x[i])) v = x[i];
    return v;
}

int64_t stats_first_below(const int64_t *steps, const double *y, int n, double threshold) {
    for (int i = 0; i < n; i++)
        if (isfinite(y[i]) && y[i] <= threshold) return steps[i];
    return -1;
}

double stats_diff_in_std(double a, double sa, double b, double sb) {
    double pooled = sqrt((sa * sa + sb * sb) / 2);
    if (!isfinite(pooled) || pooled == 0) return NAN;
    return (a - b) / pooled;
}
