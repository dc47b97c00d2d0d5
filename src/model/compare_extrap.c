/*
 * compare_extrap.c — the length-extrapolation part of `ropegpt compare
 * --extrapolate 1,2,4,8`: every trained run was evaluated (cmd_compare.c,
 * eval_at_context) on validation windows of 1x..8x its training context;
 * none, sinusoidal and alibi as they are, rope without scaling and with each
 * context-extension scaling (factor = eval ctx / train ctx, L0 = train ctx),
 * learned only where its position table reaches. This file writes
 * extrapolation.csv, extrapolation.svg (left: the encodings; right: RoPE and
 * its scalings), extrapolation_positions.svg (loss against position at the
 * largest multiplier) and prints the table, with "n/a" where a model cannot
 * run.
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

typedef struct {
    int j;        /* encoding index */
    int v;        /* scaling index (eval_scaling_names) */
    char label[40];
} ext_row;

static int make_rows(const compare_state *c, ext_row *rows) {
    int n = 0;
    for (int j = 0; j < c->n_pe; j++) {
        int nv = c->pes[j] == PE_ROPE ? EVAL_N_SCALINGS : 1;
        for (int v = 0; v < nv; v++) {
            rows[n].j = j;
            rows[n].v = v;
            if (v == 0) snprintf(rows[n].label, sizeof rows[n].label, "%s", pe_type_name(c->pes[j]));
            else snprintf(rows[n].label, sizeof rows[n].label, "rope+%s", eval_scaling_names[v]);
            n++;
        }
    }
    return n;
}

typedef struct {
    double mean, std, lo, hi, beyond_mean, beyond_std;
    int na;       /* some run could not be evaluated there (learned past its table) */
    int n;        /* seeds with a value */
} ext_cell;

static ext_cell cell_of(const compare_state *c, const ext_row *row, int a) {
    ext_cell e;
    memset(&e, 0, sizeof e);
    double *x = malloc((size_t)c->n_seeds * 2 * sizeof *x);
    if (!x) { e.mean = e.std = e.lo = e.hi = e.beyond_mean = e.beyond_std = NAN; return e; }
    double *y = x + c->n_seeds;
    for (int k = 0; k < c->n_seeds; k++) {
        const compare_run *r = &c->runs[k * c->n_pe + row->j];
        x[k] = r->ok ? r->ext[a][row->v] : NAN;
        y[k] = r->ok ? r->ext_beyond[a][row->v] : NAN;
        if (r->ok && r->ext_status[a][row->v] == 1) e.na = 1;
    }
    e.n = stats_count(x, c->n_seeds);
    e.mean = stats_mean(x, c->n_seeds);
    e.std = stats_std(x, c->n_seeds);
    e.lo = stats_min(x, c->n_seeds);
    e.hi = stats_max(x, c->n_seeds);
    e.beyond_mean = stats_mean(y, c->n_seeds);
    e.beyond_std = stats_std(y, c->n_seeds);
    free(x);
    return e;
}

static int write_csv(const compare_state *c, const ext_row *rows, int nr, char *err, size_t errlen) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) { snprintf(err, errlen, "out of memory"); return -1; }
    fprintf(f, "pe,scaling,mult,ctx,status,seeds,loss_mean,loss_std,loss_beyond_train_ctx_mean,"
               "loss_beyond_train_ctx_std\n");
    for (int i = 0; i < nr; i++)
        for (int a = 0; a < c->n_mults; a++) {
            ext_cell e = cell_of(c, &rows[i], a);
            fprintf(f, "%s,%s,%d,%d,%s,%d,", pe_type_name(c->pes[rows[i].j]), eval_scaling_names[rows[i].v],
                    c->mults[a], c->mults[a] * c->cfg.maxT, e.na ? "n/a" : (e.n ? "ok" : "failed"), e.n);
            /* Empty fields, not "nan", where there is no value. */
            if (isfinite(e.mean)) fprintf(f, "%.9g", e.mean);
            fputc(',', f);
            if (isfinite(e.std)) fprintf(f, "%.9g", e.std);
            fputc(',', f);
            if (isfinite(e.beyond_mean)) fprintf(f, "%.9g", e.beyond_mean);
            fputc(',', f);
            if (isfinite(e.beyond_std)) fprintf(f, "%.9g", e.beyond_std);
            fputc('\n', f);
        }
    fclose(f);
    char path[4096];
    int rc = io_path_join(path, sizeof path, c->out_dir, "extrapolation.csv");
    if (rc == 0) rc = io_write_atomic(path, buf, len, err, errlen);
    else snprintf(err, errlen, "--out: path too long");
    free(buf);
    return rc;
}

static const char *scaling_color(int v) {
    static const char *const col[EVAL_N_SCALINGS] = {"#0072B2", "#56B4E9", "#E69F00", "#CC79A7", "#009E73",
                                                     "#D55E00"};
    return col[v];
}

/* The two-panel figures: every encoding's row goes to the left panel in
 * its encoding's colour and dash; RoPE's rows (each scaling v, v = 0 plain)
 * go to the right panel in the scaling's colour, plain RoPE to both. The
 * right panel grows downwards from the end of the series array (*right
 * points past its first entry); reverse_series then puts it in row order. */
static void place_series(svg_series ser, pe_type pe, int v, svg_series *left, int *n_left, svg_series **right,
                         int *n_right) {
    if (pe == PE_ROPE) {
        ser.color = scaling_color(v);
        ser.dash = v == 0 ? NULL : "7 3";
        *--*right = ser;
        ++*n_right;
        if (v != 0) return;
    }
    ser.color = compare_pe_color(pe);
    ser.dash = compare_pe_dash(pe);
    left[(*n_left)++] = ser;
}

static void reverse_series(svg_series *s, int n) {
    for (int i = 0; i < n / 2; i++) {
        svg_series t = s[i];
        s[i] = s[n - 1 - i];
        s[n - 1 - i] = t;
    }
}

static int write_svg(const compare_state *c, const ext_row *rows, int nr, char *err, size_t errlen) {
    int na = c->n_mults;
    double *mem = malloc((size_t)na * (1 + 3 * (size_t)nr) * sizeof *mem);
    /* nr + 1: the plain rope row is drawn in both panels. */
    svg_series *s = calloc((size_t)nr + 1, sizeof *s);
    if (!mem || !s) { free(mem); free(s); snprintf(err, errlen, "out of memory"); return -1; }
    double *xs = mem;
    char labels[COMPARE_MAX_MULTS][32];
    const char *lab[COMPARE_MAX_MULTS];
    for (int a = 0; a < na; a++) {
        xs[a] = (double)c->mults[a] * c->cfg.maxT;
        snprintf(labels[a], sizeof labels[a], "%d (%dx)", c->mults[a] * c->cfg.maxT, c->mults[a]);
        lab[a] = labels[a];
    }
    int n_left = 0, n_right = 0;
    svg_series *left = s, *right = s + nr + 1;   /* right grows downwards from the end */
    for (int i = 0; i < nr; i++) {
        double *m = mem + (size_t)na * (1 + 3 * (size_t)i), *lo = m + na, *hi = lo + na;
        for (int a = 0; a < na; a++) {
            ext_cell e = cell_of(c, &rows[i], a);
            m[a] = e.mean;
            lo[a] = e.lo;
            hi[a] = e.hi;
        }
        pe_type pe = c->pes[rows[i].j];
        svg_series ser = {.label = rows[i].label, .x = xs, .y = m, .n = na, .markers = 1,
                          .lo = c->n_seeds > 1 ? lo : NULL, .hi = c->n_seeds > 1 ? hi : NULL};
        place_series(ser, pe, rows[i].v, left, &n_left, &right, &n_right);
    }
    reverse_series(right, n_right);
    char sub[200];   /* short enough for a half-width panel: a longer centred line is clipped */
    snprintf(sub, sizeof sub, "trained at context %d; mean over %d seed%s%s",
             c->cfg.maxT, c->n_seeds, c->n_seeds > 1 ? "s" : "", c->n_seeds > 1 ? " (band = min to max)" : "");
    svg_plot pl = svg_plot_default();
    pl.title = "Length extrapolation: encodings as trained";
    pl.subtitle = sub;
    pl.xlabel = "evaluation context (tokens, log scale)";
    pl.ylabel = "validation loss over all positions (nats/token)";
    pl.log_x = 1;
    pl.xticks = xs;
    pl.xtick_labels = lab;
    pl.n_xticks = na;
    svg_plot pr = pl;
    pr.title = "RoPE with context-extension scalings";
    pr.subtitle = "factor s = eval context / training context, L0 = training context";
    svg_doc d;
    int rc = svg_doc_begin(&d, 1200, 520);
    svg_title(&d, "Length extrapolation by position encoding");
    if (rc == 0 && n_left > 0) rc = svg_plot_draw(&d, 0, 0, 600, 520, &pl, left, n_left);
    if (rc == 0 && n_right > 0) rc = svg_plot_draw(&d, 600, 0, 600, 520, &pr, right, n_right);
    if (rc != 0) {
        free(mem);
        free(s);
        svg_doc_free(&d);
        snprintf(err, errlen, "extrapolation.svg: nothing finite to plot");
        return -1;
    }
    svg_doc_end(&d);
    char path[4096];
    rc = io_path_join(path, sizeof path, c->out_dir, "extrapolation.svg");
    if (rc == 0) rc = svg_doc_save(&d, path, err, errlen);
    else snprintf(err, errlen, "--out: path too long");
    svg_doc_free(&d);
    if (rc == 0 && c->png) {
        plotpng_panel pn[2] = {{&pl, left, n_left}, {&pr, right, n_right}};
        int np = 0;
        plotpng_panel use[2];
        for (int i = 0; i < 2; i++)
            if (pn[i].n_series > 0) use[np++] = pn[i];
        rc = io_path_join(path, sizeof path, c->out_dir, "extrapolation.png");
        if (rc == 0) rc = plotpng_write(path, 1200, 520, use, np, err, errlen);
    }
    free(mem);
    free(s);
    return rc;
}

/* extrapolation_positions.svg: loss against position at the largest
 * multiplier, averaged in buckets of positions (one position over ~100
 * windows is too noisy to read) and over seeds. */
static int write_positions_svg(const compare_state *c, const ext_row *rows, int nr, char *err, size_t errlen) {
    int ctx = c->mults[c->n_mults - 1] * c->cfg.maxT;
    int w = ctx / 64 > 1 ? ctx / 64 : 1, nbk = (ctx + w - 1) / w;
    double *mem = malloc((size_t)nbk * (1 + (size_t)nr) * sizeof *mem);
    double *tmp = malloc((size_t)c->n_seeds * sizeof *tmp);
    /* nr + 1: the plain rope row is drawn in both panels. */
    svg_series *s = calloc((size_t)nr + 1, sizeof *s);
    if (!mem || !tmp || !s) { free(mem); free(tmp); free(s); snprintf(err, errlen, "out of memory"); return -1; }
    double *xs = mem;
    for (int b = 0; b < nbk; b++) xs[b] = b * w + (w - 1) / 2.0;
    int n_left = 0, n_right = 0;
    svg_series *left = s, *right = s + nr + 1;
    for (int i = 0; i < nr; i++) {
        double *y = mem + (size_t)nbk * (1 + (size_t)i);
        int any = 0;
        for (int b = 0; b < nbk; b++) {
            for (int k = 0; k < c->n_seeds; k++) {
                const compare_run *r = &c->runs[k * c->n_pe + rows[i].j];
                const double *pl = r->ok ? r->ext_pos[rows[i].v] : NULL;
                double acc = 0;
                int n = 0;
                for (int t = b * w; pl && t < (b + 1) * w && t < ctx; t++) { acc += pl[t]; n++; }
                tmp[k] = n ? acc / n : NAN;
            }
            y[b] = stats_mean(tmp, c->n_seeds);
            any |= isfinite(y[b]);
        }
        if (!any) continue;   /* learned past its table */
        pe_type pe = c->pes[rows[i].j];
        svg_series ser = {.label = rows[i].label, .x = xs, .y = y, .n = nbk, .width = 1.6};
        place_series(ser, pe, rows[i].v, left, &n_left, &right, &n_right);
    }
    reverse_series(right, n_right);
    char sub[200], reflab[64];
    snprintf(sub, sizeof sub, "windows of %d tokens (%dx the training context); mean over %d-position buckets "
             "and %d seed%s", ctx, c->mults[c->n_mults - 1], w, c->n_seeds, c->n_seeds > 1 ? "s" : "");
    snprintf(reflab, sizeof reflab, "training context %d", c->cfg.maxT);
    svg_refline ref = {.value = c->cfg.maxT, .vertical = 1, .label = reflab};
    svg_plot pl = svg_plot_default();
    pl.title = "Loss by position: encodings as trained";
    pl.subtitle = sub;
    pl.xlabel = "position in the window (tokens)";
    pl.ylabel = "validation loss at that position (nats/token)";
    pl.refs = &ref;
    pl.n_refs = 1;
    svg_plot pr = pl;
    pr.title = "Loss by position: RoPE with scalings";
    pr.subtitle = "factor s = eval context / training context";
    svg_doc d;
    int rc = svg_doc_begin(&d, 1200, 520);
    svg_title(&d, "Validation loss by position past the training context");
    if (rc == 0 && n_left > 0) rc = svg_plot_draw(&d, 0, 0, 600, 520, &pl, left, n_left);
    if (rc == 0 && n_right > 0) rc = svg_plot_draw(&d, 600, 0, 600, 520, &pr, right, n_right);
    if (rc == 0) {
        svg_doc_end(&d);
        char path[4096];
        rc = io_path_join(path, sizeof path, c->out_dir, "extrapolation_positions.svg");
        if (rc == 0) rc = svg_doc_save(&d, path, err, errlen);
        else snprintf(err, errlen, "--out: path too long");
        if (rc == 0 && c->png) {
            plotpng_panel pn[2] = {{&pl, left, n_left}, {&pr, right, n_right}}, use[2];
            int np = 0;
            for (int i = 0; i < 2; i++)
                if (pn[i].n_series > 0) use[np++] = pn[i];
            rc = io_path_join(path, sizeof path, c->out_dir, "extrapolation_positions.png");
            if (rc == 0) rc = plotpng_write(path, 1200, 520, use, np, err, errlen);
        }
    } else {
        snprintf(err, errlen, "extrapolation_positions.svg: nothing finite to plot");
    }
    svg_doc_free(&d);
    free(mem);
    free(tmp);
    free(s);
    return rc;
}

static void print_table(const compare_state *c, const ext_row *rows, int nr, FILE *out) {
    fprintf(out, "\nlength extrapolation: validation loss on windows of L tokens, mean over seeds; "
                 "[in brackets: positions >= %d only, past the training context]\n", c->cfg.maxT);
    fprintf(out, "%-15s", "encoding");
    char cell[96];
    for (int a = 0; a < c->n_mults; a++) {
        snprintf(cell, sizeof cell, "L=%d (%dx)", c->mults[a] * c->cfg.maxT, c->mults[a]);
        fprintf(out, " %-17s", cell);
    }
    fputc('\n', out);
    for (int i = 0; i < nr; i++) {
        fprintf(out, "%-15s", rows[i].label);
        for (int a = 0; a < c->n_mults; a++) {
            ext_cell e = cell_of(c, &rows[i], a);
            if (e.na) {
                snprintf(cell, sizeof cell, "n/a");
            } else if (!isfinite(e.mean)) {
                snprintf(cell, sizeof cell, "failed");
            } else if (isfinite(e.beyond_mean)) {
                snprintf(cell, sizeof cell, "%.3f [%.3f]", e.mean, e.beyond_mean);
            } else {
                snprintf(cell, sizeof cell, "%.3f", e.mean);
            }
            fprintf(out, " %-17s", cell);
        }
        fputc('\n', out);
    }
    for (int j = 0; j < c->n_pe; j++)
        if (c->pes[j] == PE_LEARNED)
            fprintf(out, "learned: n/a past L=%d: its position table has %d rows (one per trained position), "
                         "so there is no embedding for position %d.\n", c->cfg.maxT, c->cfg.maxT, c->cfg.maxT);
}

int compare_extrapolation_report(compare_state *c, FILE *out, char *err, size_t errlen) {
    ext_row rows[PE_COUNT * EVAL_N_SCALINGS];
    int nr = make_rows(c, rows);
    int rc = write_csv(c, rows, nr, err, errlen);
    if (rc == 0) rc = write_svg(c, rows, nr, err, errlen);
    if (rc == 0) rc = write_positions_svg(c, rows, nr, err, errlen);
    if (rc == 0) print_table(c, rows, nr, out);
    return rc;
}
