/*
 * compare_report.c — what `ropegpt compare` leaves behind: runs.csv (one row
 * per run, with its batch hash as a fairness receipt), summary.csv (one row
 * per encoding: final and best validation loss over seeds, steps to reach a
 * few loss thresholds, throughput, distance to `learned` in seed standard
 * deviations), val_loss.svg and train_loss.svg (mean over seeds with a
 * min-max band), and with --extrapolate extrapolation.csv and .svg; plus the
 * same numbers as tables on stdout. Thresholds are chosen from the runs:
 * learned's mean final loss (the usual baseline) and 0.1 and 0.3 above it,
 * so "steps to reach learned's final quality" is one of the columns.
 *
 * runs.csv: pe,seed,ok,final_val_loss,best_val_loss,best_step,tokens_per_s,
 *   elapsed_s,params,batch_hash (hex FNV-1a of the training batches; equal
 *   within a seed = same data in the same order; empty for --resume'd runs).
 * summary.csv: pe,seeds_ok,final_val_mean,final_val_std,final_val_min,
 *   final_val_max,best_val_mean, then per threshold X steps_to_X (mean over
 *   the seeds that reached it) and seeds_reaching_X, then tokens_per_s,
 *   diff_vs_learned (final_val_mean - learned's) and diff_vs_learned_in_std
 *   (that difference over the pooled seed std). Missing values are empty.
 */
#define _POSIX_C_SOURCE 200809L
#include "model/cmd_compare.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/stats.h"
#include "util/io.h"
#include "util/plotpng.h"
#include "util/svg.h"

/* Runs of encoding j, one per seed (k-th at [k]). */
static compare_run *run_at(const compare_state *c, int k, int j) { return &c->runs[k * c->n_pe + j]; }

/* Collects a per-seed value of encoding j; NaN for failed runs. */
static void per_seed(const compare_state *c, int j, double (*get)(const compare_run *), double *out) {
    for (int k = 0; k < c->n_seeds; k++) {
        const compare_run *r = run_at(c, k, j);
        out[k] = r->ok ? get(r) : NAN;
    }
}
static double get_final(const compare_run *r) { return r->final_val; }
static double get_best(const compare_run *r) { return r->best_val; }
static double get_tps(const compare_run *r) { return r->tokens_per_s; }

static int find_pe(const compare_state *c, pe_type pe) {
    for (int j = 0; j < c->n_pe; j++)
        if (c->pes[j] == pe) return j;
    return -1;
}

static void choose_thresholds(compare_state *c, double *fm) {
    int jl = find_pe(c, PE_LEARNED);
    double ref = jl >= 0 && isfinite(fm[jl]) ? fm[jl] : stats_max(fm, c->n_pe);
    const double above[COMPARE_N_THRESH] = {0.3, 0.1, 0.0};
    /* Rounded up to 0.01 so the baseline itself reaches its own threshold. */
    for (int t = 0; t < COMPARE_N_THRESH; t++) c->thresholds[t] = ceil((ref + above[t]) * 100.0 - 1e-9) / 100.0;
}

/* Steps to threshold for encoding j: mean over the seeds that reached it. */
static void steps_to(const compare_state *c, int j, double thr, double *mean, int *reached, int *n_ok) {
    double st[1024];
    int n = c->n_seeds < 1024 ? c->n_seeds : 1024;
    *reached = *n_ok = 0;
    for (int k = 0; k < n; k++) {
        const compare_run *r = run_at(c, k, j);
        st[k] = NAN;
        if (!r->ok) continue;
        (*n_ok)++;
        int64_t s = stats_first_below(r->eval_step, r->val, r->n_evals, thr);
        if (s >= 0) { st[k] = (double)s; (*reached)++; }
    }
    *mean = stats_mean(st, n);
}

static int save_text(const char *dir, const char *name, char *text, size_t len, char *err, size_t errlen) {
    char path[4096];
    if (io_path_join(path, sizeof path, dir, name) != 0) { snprintf(err, errlen, "%s: path too long", name); return -1; }
    return io_write_atomic(path, text, len, err, errlen);
}

/* ------------------------------------------------------------ CSV */

/* A CSV number, or an empty field (never "nan") when there is none. */
static void csv_num(FILE *f, const char *fmt, double v) {
    if (isfinite(v)) fprintf(f, fmt, v);
}

static int write_csvs(compare_state *c, char *err, size_t errlen) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) { snprintf(err, errlen, "out of memory"); return -1; }
    fprintf(f, "pe,seed,ok,final_val_loss,best_val_loss,best_step,tokens_per_s,elapsed_s,params,batch_hash\n");
    for (int k = 0; k < c->n_seeds; k++)
        for (int j = 0; j < c->n_pe; j++) {
            const compare_run *r = run_at(c, k, j);
            fprintf(f, "%s,%llu,%d,", pe_type_name(r->pe), (unsigned long long)r->seed, r->ok);
            if (r->ok) {
                fprintf(f, "%.9g,%.9g,%lld,", r->final_val, r->best_val, (long long)r->best_step);
                csv_num(f, "%.1f", r->tokens_per_s);
                fprintf(f, ",%.2f,%zu,", r->elapsed_s, r->params);
                /* The hash covers only steps this process ran: none for resumed runs. */
                if (r->resumed_from == 0) fprintf(f, "%016llx", (unsigned long long)r->batch_hash);
                fputc('\n', f);
            }
            else
                fprintf(f, ",,,,,%zu,\n", r->params);
        }
    fclose(f);
    int rc = save_text(c->out_dir, "runs.csv", buf, len, err, errlen);
    free(buf);
    if (rc) return rc;

    f = open_memstream(&buf, &len);
    if (!f) { snprintf(err, errlen, "out of memory"); return -1; }
    fprintf(f, "pe,seeds_ok,final_val_mean,final_val_std,final_val_min,final_val_max,best_val_mean");
    for (int t = 0; t < COMPARE_N_THRESH; t++) fprintf(f, ",steps_to_%.2f,seeds_reaching_%.2f", c->thresholds[t],
                                                       c->thresholds[t]);
    fprintf(f, ",tokens_per_s,diff_vs_learned,diff_vs_learned_in_std\n");
    double *v = malloc((size_t)c->n_seeds * 3 * sizeof *v);
    if (!v) { fclose(f); free(buf); snprintf(err, errlen, "out of memory"); return -1; }
    double *lv = v + c->n_seeds, *tv = v + 2 * (size_t)c->n_seeds;
    int jl = find_pe(c, PE_LEARNED);
    if (jl >= 0) per_seed(c, jl, get_final, lv);
    for (int j = 0; j < c->n_pe; j++) {
        per_seed(c, j, get_final, v);
        fprintf(f, "%s,%d,", pe_type_name(c->pes[j]), stats_count(v, c->n_seeds));
        const double cols[4] = {stats_mean(v, c->n_seeds), stats_std(v, c->n_seeds), stats_min(v, c->n_seeds),
                                stats_max(v, c->n_seeds)};
        for (int q = 0; q < 4; q++) { csv_num(f, "%.9g", cols[q]); fputc(',', f); }
        double fm = stats_mean(v, c->n_seeds), fs = stats_std(v, c->n_seeds);
        per_seed(c, j, get_best, tv);
        csv_num(f, "%.9g", stats_mean(tv, c->n_seeds));
        for (int t = 0; t < COMPARE_N_THRESH; t++) {
            double m;
            int reached, n_ok;
            steps_to(c, j, c->thresholds[t], &m, &reached, &n_ok);
            if (isfinite(m)) fprintf(f, ",%.1f,%d", m, reached);
            else fprintf(f, ",,%d", reached);
        }
        per_seed(c, j, get_tps, tv);
        fputc(',', f);
        csv_num(f, "%.1f", stats_mean(tv, c->n_seeds));
        if (jl >= 0) {
            double lm = stats_mean(lv, c->n_seeds), ls = stats_std(lv, c->n_seeds);
            double z = stats_diff_in_std(fm, fs, lm, ls);
            fputc(',', f);
            csv_num(f, "%.9g", fm - lm);
            fputc(',', f);
            csv_num(f, "%.3f", z);
            fprintf(f, "\n");
        } else {
            fprintf(f, ",,\n");
        }
    }
    free(v);
    fclose(f);
    rc = save_text(c->out_dir, "summary.csv", buf, len, err, errlen);
    free(buf);
    return rc;
}

/* ------------------------------------------------------------ figures */

/* Mean / min / max over seeds of encoding j's curve, n points. get(r, i)
 * gives point i of run r (NaN if missing). */
typedef double (*point_fn)(const compare_run *r, int i, int64_t w);

static double val_point(const compare_run *r, int i, int64_t w) {
    (void)w;
    return i < r->n_evals ? r->val[i] : NAN;
}

/* Mean training loss over window i of w steps. */
static double train_point(const compare_run *r, int i, int64_t w) {
    double s = 0;
    int n = 0;
    for (int64_t k = (int64_t)i * w; k < ((int64_t)i + 1) * w && k < r->steps; k++)
        if (isfinite(r->train[k])) { s += r->train[k]; n++; }
    return n ? s / n : NAN;
}

static int band(const compare_state *c, int j, int n, int64_t w, point_fn get, double *mean, double *lo,
                double *hi) {
    double *tmp = malloc((size_t)c->n_seeds * sizeof *tmp);
    if (!tmp) return -1;
    for (int i = 0; i < n; i++) {
        for (int k = 0; k < c->n_seeds; k++) {
            const compare_run *r = run_at(c, k, j);
            tmp[k] = r->ok ? get(r, i, w) : NAN;
        }
        mean[i] = stats_mean(tmp, c->n_seeds);
        lo[i] = stats_min(tmp, c->n_seeds);
        hi[i] = stats_max(tmp, c->n_seeds);
    }
    free(tmp);
    return 0;
}

static void model_desc(const compare_state *c, char *buf, size_t n, const char *what) {
    snprintf(buf, n, "GPT L%d H%d C%d, context %d, batch %d, %lld steps; %d seed%s (%s); byte-level %s",
             c->cfg.L, c->cfg.NH, c->cfg.C, c->cfg.maxT, c->tc.B, (long long)c->tc.steps, c->n_seeds,
             c->n_seeds > 1 ? "s" : "", what, c->data_path);
}

static int curve_plot(compare_state *c, int train, char *err, size_t errlen) {
    int n = 0;
    int64_t w = 1;
    if (train) {
        w = c->tc.steps / 100 > 1 ? c->tc.steps / 100 : 1;
        n = (int)((c->tc.steps + w - 1) / w);
    } else {
        n = -1;
        for (int i = 0; i < c->n_seeds * c->n_pe; i++)
            if (c->runs[i].ok && (n < 0 || c->runs[i].n_evals < n)) n = c->runs[i].n_evals;
        if (n <= 0) { snprintf(err, errlen, "no finished run to plot"); return -1; }
    }
    size_t np = (size_t)n;
    double *mem = malloc(np * (1 + 3 * (size_t)c->n_pe) * sizeof *mem);
    svg_series *s = calloc((size_t)c->n_pe, sizeof *s);
    if (!mem || !s) { free(mem); free(s); snprintf(err, errlen, "out of memory"); return -1; }
    double *xs = mem;
    const compare_run *any = NULL;
    for (int i = 0; i < c->n_seeds * c->n_pe && !any; i++)
        if (c->runs[i].ok) any = &c->runs[i];
    for (int i = 0; i < n; i++) {
        if (train) {
            int64_t end = ((int64_t)i + 1) * w;
            xs[i] = (double)(end < c->tc.steps ? end : c->tc.steps);
        } else {
            xs[i] = (double)any->eval_step[i];
        }
    }
    /* Early losses (ln 256 = 5.5 at step 0) would squash the interesting
     * part: on a linear axis the y range starts at the worst mean loss
     * reached by 10% of training. */
    double ycap = -INFINITY;
    for (int j = 0; j < c->n_pe; j++) {
        double *m = mem + np * (1 + 3 * (size_t)j), *lo = m + np, *hi = lo + np;
        if (band(c, j, n, w, train ? train_point : val_point, m, lo, hi) != 0) {
            free(mem); free(s);
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        s[j] = (svg_series){.label = pe_type_name(c->pes[j]), .x = xs, .y = m, .n = n,
                            .lo = c->n_seeds > 1 ? lo : NULL, .hi = c->n_seeds > 1 ? hi : NULL,
                            .color = compare_pe_color(c->pes[j]), .dash = compare_pe_dash(c->pes[j]),
                            .markers = !train && n <= 25};
        for (int i = 0; i < n; i++)
            if (xs[i] >= 0.1 * (double)c->tc.steps && isfinite(hi[i])) { ycap = fmax(ycap, hi[i]); break; }
    }
    char sub[512], ylab[64], tl[96];
    model_desc(c, sub, sizeof sub, c->n_seeds > 1 ? "line = mean, band = min to max" : "one run each");
    svg_plot p = svg_plot_default();
    p.title = train ? "Training loss by position encoding" : "Validation loss by position encoding";
    p.subtitle = sub;
    p.xlabel = c->log_x && !train ? "optimizer step (log scale)" : "optimizer step";
    snprintf(ylab, sizeof ylab, "%s loss (nats/token)", train ? "training" : "validation");
    p.ylabel = ylab;
    p.log_x = c->log_x && !train;
    if (!p.log_x && isfinite(ycap)) p.ymax = ycap;
    if (train) {
        snprintf(tl, sizeof tl, "Training loss by position encoding (mean of each %lld-step window)", (long long)w);
        p.title = w > 1 ? tl : p.title;
    }
    char path[4096];
    int rc = io_path_join(path, sizeof path, c->out_dir, train ? "train_loss.svg" : "val_loss.svg");
    if (rc == 0) rc = svg_plot_write(path, 900, 540, &p, s, c->n_pe, err, errlen);
    else snprintf(err, errlen, "--out: path too long");
    if (rc == 0 && c->png) {
        plotpng_panel pn = {&p, s, c->n_pe};
        rc = io_path_join(path, sizeof path, c->out_dir, train ? "train_loss.png" : "val_loss.png");
        if (rc == 0) rc = plotpng_write(path, 900, 540, &pn, 1, err, errlen);
    }
    free(mem);
    free(s);
    return rc;
}

/* ------------------------------------------------------------ tables */

static void print_table(compare_state *c, FILE *out) {
    double *v = malloc((size_t)c->n_seeds * 2 * sizeof *v);
    if (!v) return;
    double *lv = v + c->n_seeds;
    int jl = find_pe(c, PE_LEARNED);
    if (jl >= 0) per_seed(c, jl, get_final, lv);
    double lm = jl >= 0 ? stats_mean(lv, c->n_seeds) : NAN, ls = jl >= 0 ? stats_std(lv, c->n_seeds) : NAN;
    char desc[512];
    model_desc(c, desc, sizeof desc, "mean over seeds");
    fprintf(out, "\n%s\n\n", desc);
    /* Header cells use the widths of the row cells below: 11, 19, 9, then
     * three 10-wide threshold cells, 9 for tok/s. */
    fprintf(out, "%-11s %-19s %-9s  %-*s %-9s %s\n", "encoding", "final val loss", "best val",
            11 * COMPARE_N_THRESH - 1, "steps to val loss <=", "tok/s", "final vs learned");
    fprintf(out, "%-11s %-19s %-9s ", "", "(mean +- std)", "(mean)");
    for (int t = 0; t < COMPARE_N_THRESH; t++) fprintf(out, " %-10.2f", c->thresholds[t]);
    fprintf(out, " %-9s %s\n", "", c->n_seeds > 1 ? "(diff, in seed std)" : "(diff; 1 seed: no std)");
    for (int j = 0; j < c->n_pe; j++) {
        char cell[64];
        per_seed(c, j, get_final, v);
        double fm = stats_mean(v, c->n_seeds), fs = stats_std(v, c->n_seeds);
        if (!isfinite(fm)) snprintf(cell, sizeof cell, "failed");
        else if (isfinite(fs)) snprintf(cell, sizeof cell, "%.4f +- %.4f", fm, fs);
        else snprintf(cell, sizeof cell, "%.4f", fm);
        fprintf(out, "%-11s %-19s ", pe_type_name(c->pes[j]), cell);
        per_seed(c, j, get_best, v);
        double bm = stats_mean(v, c->n_seeds);
        if (isfinite(bm)) snprintf(cell, sizeof cell, "%.4f", bm);
        else snprintf(cell, sizeof cell, "-");
        fprintf(out, "%-9s ", cell);
        for (int t = 0; t < COMPARE_N_THRESH; t++) {
            double m;
            int reached, n_ok;
            steps_to(c, j, c->thresholds[t], &m, &reached, &n_ok);
            if (reached == 0) snprintf(cell, sizeof cell, "never");
            else if (reached < n_ok) snprintf(cell, sizeof cell, "%.0f (%d/%d)", m, reached, n_ok);
            else snprintf(cell, sizeof cell, "%.0f", m);
            fprintf(out, " %-10s", cell);
        }
        per_seed(c, j, get_tps, v);
        double tps = stats_mean(v, c->n_seeds);
        if (isfinite(tps)) snprintf(cell, sizeof cell, "%.0f", tps);
        else snprintf(cell, sizeof cell, "-");
        fprintf(out, " %-9s ", cell);
        if (j == jl) {
            fprintf(out, "(baseline)\n");
        } else if (jl >= 0 && isfinite(fm) && isfinite(lm)) {
            per_seed(c, j, get_final, v);
            double z = stats_diff_in_std(fm, fs, lm, ls);
            if (isfinite(z)) fprintf(out, "%+.4f (%+.1f sd)\n", fm - lm, z);
            else fprintf(out, "%+.4f\n", fm - lm);
        } else {
            fprintf(out, "-\n");
        }
    }
    fprintf(out, "\nthresholds: %s mean final val loss (%.2f), and 0.1 and 0.3 above it; steps = first evaluation "
            "(every %lld steps) at or below, mean over the seeds that got there, (k/n) when only k of n did.\n",
            jl >= 0 ? "learned's" : "the worst encoding's", c->thresholds[COMPARE_N_THRESH - 1],
            (long long)c->tc.eval_every);
    if (c->n_seeds > 1)
        fprintf(out, "sd = (mean - learned mean) / sqrt((std^2 + learned std^2) / 2), std over %d seeds; "
                "negative = lower loss than learned.\n", c->n_seeds);
    free(v);
}

int compare_report(compare_state *c, FILE *out, char *err, size_t errlen) {
    double *fm = malloc(((size_t)c->n_pe + (size_t)c->n_seeds) * sizeof *fm);
    if (!fm) { snprintf(err, errlen, "out of memory"); return -1; }
    double *v = fm + c->n_pe;
    for (int j = 0; j < c->n_pe; j++) {
        per_seed(c, j, get_final, v);
        fm[j] = stats_mean(v, c->n_seeds);
    }
    choose_thresholds(c, fm);
    free(fm);
    int rc = write_csvs(c, err, errlen);
    if (rc == 0) rc = curve_plot(c, 0, err, errlen);
    if (rc == 0) rc = curve_plot(c, 1, err, errlen);
    if (rc == 0) print_table(c, out);
    if (rc == 0 && c->n_mults > 0) rc = compare_extrapolation_report(c, out, err, errlen);
    if (rc == 0)
        fprintf(out, "\nwrote %s/{runs.csv, summary.csv, val_loss.svg, train_loss.svg%s%s} and <pe>_s<seed>/log.csv\n",
                c->out_dir, c->n_mults > 0 ? ", extrapolation.csv, extrapolation.svg, extrapolation_positions.svg" : "",
                c->png ? " + .png copies" : "");
    return rc;
}
