/*
 * plotpng.c — PNG copies of ropegpt's line plots through gnuplot, when it is
 * installed (see plotpng.h). The SVG writer stays the reference; this file
 * only translates the same plot description into a gnuplot script: one data
 * block per series (x, y, band low, band high; "NaN" for gaps, which gnuplot
 * treats as undefined), filledcurves for bands, the same Okabe-Ito colours
 * and dash patterns, and every text printed noenhanced so that '_' or '^'
 * in a label stay literal.
 */
#define _POSIX_C_SOURCE 200809L
#include "util/plotpng.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/errmsg.h"

int plotpng_available(void) {
    return system("command -v gnuplot >/dev/null 2>&1") == 0;
}

/* A double-quoted gnuplot string: backslash, double quote and newline escaped. */
static void gp_str(FILE *f, const char *s) {
    fputc('"', f);
    for (const char *p = s ? s : ""; *p; p++) {
        if (*p == '\n') { fputs("\\n", f); continue; }
        if (*p == '"' || *p == '\\') fputc('\\', f);
        fputc(*p, f);
    }
    fputc('"', f);
}

static void gp_num(FILE *f, double v, int log_axis) {
    if (!isfinite(v) || (log_axis && v <= 0)) fputs("NaN", f);
    else fprintf(f, "%.9g", v);
}

/* "7 4" (SVG dasharray) -> "dt (7,4)"; NULL -> solid. */
static void gp_dash(FILE *f, const char *dash) {
    if (!dash) { fputs(" dt solid", f); return; }
    fputs(" dt (", f);
    int first = 1;
    for (const char *p = dash; *p;) {
        char *end;
        double v = strtod(p, &end);
        if (end == p) { p++; continue; }
        fprintf(f, "%s%g", first ? "" : ",", v);
        first = 0;
        p = end;
    }
    fputs(first ? "1)" : ")", f);
}

static const char *key_pos(int legend) {
    switch (legend) {
    case 0: return "off";
    case 2: return "top left";
    case 3: return "bottom left";
    case 4: return "bottom right";
    default: return "top right";
    }
}

static void write_panel(FILE *gp, FILE *dat, int *block, const char *dat_path, const plotpng_panel *pn) {
    const svg_plot *p = pn->plot;
    fputs("reset\nset grid lc rgb '#e6e6e6'\nset border lc rgb '#333333'\nset key box opaque Left reverse ", gp);
    fputs(key_pos(p->legend), gp);
    fputs(" noenhanced\n", gp);
    if (p->title) {
        fputs("set title ", gp);
        if (p->subtitle) {
            size_t n = strlen(p->title) + strlen(p->subtitle) + 2;
            char *t = malloc(n);
            if (t) { snprintf(t, n, "%s\n%s", p->title, p->subtitle); gp_str(gp, t); free(t); }
        } else {
            gp_str(gp, p->title);
        }
        fputs(" noenhanced\n", gp);
    }
    if (p->xlabel) { fputs("set xlabel ", gp); gp_str(gp, p->xlabel); fputs(" noenhanced\n", gp); }
    if (p->ylabel) { fputs("set ylabel ", gp); gp_str(gp, p->ylabel); fputs(" noenhanced\n", gp); }
    if (p->log_x) fputs("set logscale x\n", gp);
    if (p->log_y) fputs("set logscale y\n", gp);
    fputs("set xrange [", gp);
    if (isfinite(p->xmin)) fprintf(gp, "%.9g", p->xmin);
    fputs(":", gp);
    if (isfinite(p->xmax)) fprintf(gp, "%.9g", p->xmax);
    fputs("]\nset yrange [", gp);
    if (isfinite(p->ymin)) fprintf(gp, "%.9g", p->ymin);
    fputs(":", gp);
    if (isfinite(p->ymax)) fprintf(gp, "%.9g", p->ymax);
    fputs("]\n", gp);
    if (p->n_xticks > 0 && p->xticks) {
        fputs("set xtics (", gp);
        for (int i = 0; i < p->n_xticks; i++) {
            char lab[64];
            if (p->xtick_labels && p->xtick_labels[i]) snprintf(lab, sizeof lab, "%s", p->xtick_labels[i]);
            else snprintf(lab, sizeof lab, "%g", p->xticks[i]);
            if (i) fputs(", ", gp);
            gp_str(gp, lab);
            fprintf(gp, " %.9g", p->xticks[i]);
        }
        fputs(")\n", gp);
    }
    for (int r = 0; r < p->n_refs; r++) {
        const svg_refline *rl = &p->refs[r];
        if (rl->vertical)
            fprintf(gp, "set arrow from first %.9g, graph 0 to first %.9g, graph 1 nohead dt 2 lc rgb '%s'\n",
                    rl->value, rl->value, rl->color ? rl->color : "#777777");
        else
            fprintf(gp, "set arrow from graph 0, first %.9g to graph 1, first %.9g nohead dt 2 lc rgb '%s'\n",
                    rl->value, rl->value, rl->color ? rl->color : "#777777");
    }
    fputs("plot", gp);
    int first = 1;
    for (int pass = 0; pass < 2; pass++) {   /* bands first, lines over them */
        for (int k = 0; k < pn->n_series; k++) {
            const svg_series *s = &pn->series[k];
            const char *col = s->color ? s->color : svg_palette[k % SVG_PALETTE_N];
            int b = *block + k;
            if (pass == 0 && !(s->lo && s->hi)) continue;
            fputs(first ? " " : ", \\\n     ", gp);
            first = 0;
            gp_str(gp, dat_path);
            if (pass == 0) {
                fprintf(gp, " index %d using 1:3:4 with filledcurves fc rgb '%s' fs transparent solid 0.18 notitle", b,
                        col);
                continue;
            }
            fprintf(gp, " index %d using 1:2 with %s lw %g lc rgb '%s'", b,
                    s->markers == 2 ? "points pt 6 ps 0.8" : s->markers ? "linespoints pt 7 ps 0.5" : "lines",
                    s->width > 0 ? s->width : 2, col);
            if (s->markers != 2) gp_dash(gp, s->dash);
            if (s->label) { fputs(" title ", gp); gp_str(gp, s->label); }
            else fputs(" notitle", gp);
        }
    }
    fputs("\n", gp);
    for (int k = 0; k < pn->n_series; k++) {
        const svg_series *s = &pn->series[k];
        for (int i = 0; i < s->n; i++) {
            gp_num(dat, s->x[i], p->log_x);
            fputc(' ', dat);
            gp_num(dat, s->y[i], p->log_y);
            fputc(' ', dat);
            gp_num(dat, s->lo ? s->lo[i] : NAN, p->log_y);
            fputc(' ', dat);
            gp_num(dat, s->hi ? s->hi[i] : NAN, p->log_y);
            fputc('\n', dat);
        }
        fputs("\n\n", dat);   /* two blank lines end a gnuplot index block */
    }
    *block += pn->n_series;
}

int plotpng_write(const char *path, int width, int height, const plotpng_panel *panels, int n_panels,
                  char *err, size_t errlen) {
    if (err && errlen) err[0] = 0;
    if (!plotpng_available()) {
        errmsg(err, errlen, -1, "gnuplot not found: no PNG for %.200s", path);
        return -1;
    }
    if (strchr(path, '\'') || strchr(path, '"') || strchr(path, '\\')) {
        errmsg(err, errlen, -1, "%.200s: a PNG path may not contain quotes or backslashes", path);
        return -1;
    }
    size_t n = strlen(path) + 8;
    char *gp_path = malloc(n), *dat_path = malloc(n), *cmd = malloc(n + 64);
    if (!gp_path || !dat_path || !cmd) {
        free(gp_path); free(dat_path); free(cmd);
        errmsg(err, errlen, -1, "out of memory");
        return -1;
    }
    snprintf(gp_path, n, "%s.gp", path);
    snprintf(dat_path, n, "%s.dat", path);
    FILE *gp = fopen(gp_path, "w"), *dat = fopen(dat_path, "w");
    int rc = 0;
    if (!gp || !dat) {
        errmsg(err, errlen, -1, "%.200s: cannot write the gnuplot script or data", path);
        rc = -1;
    } else {
        fprintf(gp, "set terminal pngcairo size %d,%d font 'Helvetica,10'\nset output ", width, height);
        gp_str(gp, path);
        fputs("\n", gp);
        if (n_panels > 1) fprintf(gp, "set multiplot layout 1,%d\n", n_panels);
        int block = 0;
        for (int i = 0; i < n_panels; i++) write_panel(gp, dat, &block, dat_path, &panels[i]);
        if (n_panels > 1) fputs("unset multiplot\n", gp);
        fputs("set output\n", gp);
    }
    if (gp && fclose(gp) != 0) rc = -1;
    if (dat && fclose(dat) != 0) rc = -1;
    if (rc == 0) {
        snprintf(cmd, n + 64, "gnuplot '%s' >/dev/null 2>&1", gp_path);
        if (system(cmd) != 0) {
            errmsg(err, errlen, -1, "gnuplot failed on %.200s (script kept)", gp_path);
            rc = -1;
        }
    } else if (!err || !errlen || !err[0]) {   /* a close failed: nothing said yet */
        errmsg(err, errlen, -1, "%.200s: write error", path);
    }
    if (rc == 0) {
        remove(gp_path);
        remove(dat_path);
    }
    free(gp_path);
    free(dat_path);
    free(cmd);
    return rc;
}
