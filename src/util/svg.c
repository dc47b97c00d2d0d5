/*
 * svg.c — the dependency-free SVG writer behind every figure ropegpt draws
 * (see svg.h). The document is built in memory as text and written in one go
 * through a temp file and rename(), so a crash never leaves a truncated
 * figure. Coordinates are printed with two decimals (sub-pixel precision is
 * invisible and keeps files small); the plot layer works in "axis space"
 * (log10 of the value on a log axis) and maps it linearly to pixels.
 */
#define _POSIX_C_SOURCE 200809L
#include "util/svg.h"

#include "util/io.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Okabe & Ito (2008), "Color Universal Design": blue, vermillion, bluish
 * green, reddish purple, orange, sky blue, black, yellow. */
const char *const svg_palette[SVG_PALETTE_N] = {
    "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442",
};

static void reserve(svg_doc *d, size_t extra) {
    if (d->err) return;
    if (d->len + extra + 1 <= d->cap) return;
    size_t cap = d->cap ? d->cap : 4096;
    while (cap < d->len + extra + 1) cap *= 2;
    char *b = realloc(d->buf, cap);
    if (!b) { d->err = 1; return; }
    d->buf = b;
    d->cap = cap;
}

static void appendf(svg_doc *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void appendf(svg_doc *d, const char *fmt, ...) {
    if (d->err) return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) { d->err = 1; return; }
    reserve(d, (size_t)n);
    if (d->err) return;
    va_start(ap, fmt);
    vsnprintf(d->buf + d->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    d->len += (size_t)n;
}

int svg_doc_begin(svg_doc *d, double width, double height) {
    memset(d, 0, sizeof *d);
    appendf(d, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
               "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
               "viewBox=\"0 0 %.0f %.0f\" font-family=\"Helvetica, Arial, sans-serif\">\n",
            width, height, width, height);
    appendf(d, "<rect x=\"0\" y=\"0\" width=\"%.0f\" height=\"%.0f\" fill=\"#ffffff\"/>\n", width, height);
    return d->err ? -1 : 0;
}

void svg_doc_end(svg_doc *d) { appendf(d, "</svg>\n"); }

void svg_doc_free(svg_doc *d) {
    free(d->buf);
    memset(d, 0, sizeof *d);
}

int svg_doc_save(const svg_doc *d, const char *path, char *err, size_t errlen) {
    if (d->err || !d->buf) {
        if (err && errlen) snprintf(err, errlen, "%s: out of memory while drawing", path);
        return -1;
    }
    return io_write_atomic(path, d->buf, d->len, err, errlen);
}

void svg_escape(svg_doc *d, const char *text) {
    for (const char *p = text; p && *p; p++) {
        switch (*p) {
        case '&': appendf(d, "&amp;"); break;
        case '<': appendf(d, "&lt;"); break;
        case '>': appendf(d, "&gt;"); break;
        case '"': appendf(d, "&quot;"); break;
        case '\'': appendf(d, "&apos;"); break;
        default: appendf(d, "%c", *p); break;
        }
    }
}

void svg_title(svg_doc *d, const char *text) {
    appendf(d, "<title>");
    svg_escape(d, text);
    appendf(d, "</title>\n");
}

/* An attribute value from a caller (colour, dash): escaped like text. */
static void attr(svg_doc *d, const char *name, const char *value) {
    appendf(d, " %s=\"", name);
    svg_escape(d, value);
    appendf(d, "\"");
}

void svg_line(svg_doc *d, double x1, double y1, double x2, double y2,
              const char *stroke, double width, const char *dash) {
    appendf(d, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"", x1, y1, x2, y2);
    attr(d, "stroke", stroke ? stroke : "#000000");
    appendf(d, " stroke-width=\"%.2f\"", width);
    if (dash) attr(d, "stroke-dasharray", dash);
    appendf(d, "/>\n");
}

void svg_polyline(svg_doc *d, const double *x, const double *y, int n,
                  const char *stroke, double width, const char *dash) {
    int open = 0;
    for (int i = 0; i < n; i++) {
        int ok = isfinite(x[i]) && isfinite(y[i]);
        if (ok && !open) {
            appendf(d, "<polyline fill=\"none\"");
            attr(d, "stroke", stroke ? stroke : "#000000");
            appendf(d, " stroke-width=\"%.2f\" stroke-linejoin=\"round\"", width);
            if (dash) attr(d, "stroke-dasharray", dash);
            appendf(d, " points=\"");
            open = 1;
        } else if (!ok && open) {
            appendf(d, "\"/>\n");
            open = 0;
        }
        if (ok) appendf(d, "%.2f,%.2f ", x[i], y[i]);
    }
    if (open) appendf(d, "\"/>\n");
}

void svg_polygon(svg_doc *d, const double *x, const double *y, int n,
                 const char *fill, double opacity) {
    if (n < 3) return;
    appendf(d, "<polygon");
    attr(d, "fill", fill ? fill : "#000000");
    appendf(d, " fill-opacity=\"%.3f\" stroke=\"none\" points=\"", opacity);
    for (int i = 0; i < n; i++)
        if (isfinite(x[i]) && isfinite(y[i])) appendf(d, "%.2f,%.2f ", x[i], y[i]);
    appendf(d, "\"/>\n");
}

void svg_rect(svg_doc *d, double x, double y, double w, double h,
              const char *stroke, const char *fill, double opacity) {
    appendf(d, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\"", x, y, w, h);
    attr(d, "stroke", stroke ? stroke : "none");
    attr(d, "fill", fill ? fill : "none");
    appendf(d, " fill-opacity=\"%.3f\"/>\n", opacity);
}

void svg_circle(svg_doc *d, double cx, double cy, double r,
                const char *stroke, const char *fill, double width) {
    appendf(d, "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"%.2f\"", cx, cy, r);
    attr(d, "stroke", stroke ? stroke : "none");
    attr(d, "fill", fill ? fill : "none");
    appendf(d, " stroke-width=\"%.2f\"/>\n", width);
}

void svg_arrow(svg_doc *d, double x1, double y1, double x2, double y2,
               const char *color, double width) {
    double dx = x2 - x1, dy = y2 - y1, len = sqrt(dx * dx + dy * dy);
    if (!(len > 0)) return;
    double ux = dx / len, uy = dy / len;
    double head = fmin(4.0 * width + 6.0, 0.5 * len);
    /* Stop the shaft at the head's base so the line's cap does not poke out. */
    svg_line(d, x1, y1, x2 - ux * head, y2 - uy * head, color, width, NULL);
    double bx = x2 - ux * head, by = y2 - uy * head, hw = 0.45 * head;
    double px[3] = {x2, bx - uy * hw, bx + uy * hw};
    double py[3] = {y2, by + ux * hw, by - ux * hw};
    svg_polygon(d, px, py, 3, color, 1.0);
}

void svg_text(svg_doc *d, double x, double y, double size, const char *anchor,
              const char *fill, double rotate, int bold, const char *text) {
    appendf(d, "<text x=\"%.2f\" y=\"%.2f\" font-size=\"%.1f\"", x, y, size);
    attr(d, "text-anchor", anchor ? anchor : "start");
    attr(d, "fill", fill ? fill : "#000000");
    if (bold) appendf(d, " font-weight=\"bold\"");
    if (rotate != 0) appendf(d, " transform=\"rotate(%.1f %.2f %.2f)\"", rotate, x, y);
    appendf(d, ">");
    svg_escape(d, text);
    appendf(d, "</text>\n");
}

/* ------------------------------------------------------------ line plots */

svg_plot svg_plot_default(void) {
    svg_plot p;
    memset(&p, 0, sizeof p);
    p.xmin = p.xmax = p.ymin = p.ymax = NAN;
    p.legend = 5;
    return p;
}

int svg_nice_ticks(double lo, double hi, int target, double *ticks, int max_ticks, double *step) {
    if (!(isfinite(lo) && isfinite(hi)) || hi <= lo || target < 2 || max_ticks < 1) return 0;
    double raw = (hi - lo) / (double)(target - 1);
    double mag = pow(10.0, floor(log10(raw)));
    double f = raw / mag, nice;
    /* Heckbert's rounding of the fraction to 1, 2, 5 or 10. */
    if (f < 1.5) nice = 1; else if (f < 3) nice = 2; else if (f < 7) nice = 5; else nice = 10;
    double st = nice * mag;
    double first = ceil(lo / st - 1e-9) * st;
    int n = 0;
    for (double v = first; v <= hi + 1e-9 * st && n < max_ticks; v = first + (double)n * st) {
        /* -0.0 and 1e-17 style residues print badly; snap near-zero to 0. */
        ticks[n++] = fabs(v) < 1e-9 * st ? 0.0 : v;
    }
    if (step) *step = st;
    return n;
}

/* A tick label: fixed decimals from the step on linear axes; 1e5 style for
 * large or tiny powers on log axes. */
static void tick_label(char *buf, size_t n, double v, double step, int log_axis) {
    if (log_axis) {
        double a = fabs(v);
        if (a != 0 && (a >= 1e5 || a < 1e-3)) {
            int e = (int)floor(log10(a) + 1e-9);
            double m = v / pow(10.0, e);
            if (fabs(m - 1.0) < 1e-9) snprintf(buf, n, "1e%d", e);
            else snprintf(buf, n, "%ge%d", m, e);
        } else {
            snprintf(buf, n, "%g", v);
        }
        return;
    }
    int dec = step > 0 ? (int)fmax(0.0, -floor(log10(step) + 1e-9)) : 2;
    if (dec > 6) dec = 6;
    snprintf(buf, n, "%.*f", dec, v);
}

typedef struct {
    double a0, a1;      /* axis-space limits */
    double p0, p1;      /* pixel positions of a0, a1 */
    int log_axis;
} axis_map;

static double to_axis(double v, int log_axis) {
    if (!isfinite(v)) return NAN;
    if (log_axis) return v > 0 ? log10(v) : NAN;
    return v;
}

static double to_px(const axis_map *m, double v) {
    double a = to_axis(v, m->log_axis);
    if (!isfinite(a)) return NAN;
    return m->p0 + (a - m->a0) / (m->a1 - m->a0) * (m->p1 - m->p0);
}

/* Limits in axis space from the data (points with both coordinates usable)
 * and the caller's overrides. Returns -1 if there is no usable point. */
static int data_limits(const svg_plot *p, const svg_series *s, int ns, double *x0, double *x1,
                       double *y0, double *y1) {
    double xl = INFINITY, xh = -INFINITY, yl = INFINITY, yh = -INFINITY;
    for (int k = 0; k < ns; k++) {
        for (int i = 0; i < s[k].n; i++) {
            double ax = to_axis(s[k].x[i], p->log_x);
            if (!isfinite(ax)) continue;
            double vals[3] = {s[k].y[i], s[k].lo ? s[k].lo[i] : NAN, s[k].hi ? s[k].hi[i] : NAN};
            for (int j = 0; j < 3; j++) {
                double ay = to_axis(vals[j], p->log_y);
                if (!isfinite(ay)) continue;
                /* Respect explicit limits when finding the other axis's range:
                 * a clipped-away point should not stretch the y axis. */
                if (isfinite(p->xmin) && ax < to_axis(p->xmin, p->log_x)) continue;
                if (isfinite(p->xmax) && ax > to_axis(p->xmax, p->log_x)) continue;
                if (isfinite(p->ymin) && ay < to_axis(p->ymin, p->log_y)) continue;
                if (isfinite(p->ymax) && ay > to_axis(p->ymax, p->log_y)) continue;
                xl = fmin(xl, ax); xh = fmax(xh, ax);
                yl = fmin(yl, ay); yh = fmax(yh, ay);
            }
        }
    }
    if (!isfinite(xl) || !isfinite(yl)) return -1;
    double lims[4] = {xl, xh, yl, yh};
    double ov[4] = {p->xmin, p->xmax, p->ymin, p->ymax};
    int lg[4] = {p->log_x, p->log_x, p->log_y, p->log_y};
    for (int j = 0; j < 4; j++) {
        double a = to_axis(ov[j], lg[j]);
        if (isfinite(a)) lims[j] = a;
    }
    for (int j = 0; j < 4; j += 2) {
        if (lims[j + 1] <= lims[j]) { lims[j] -= 0.5; lims[j + 1] += 0.5; }
        double pad = 0.04 * (lims[j + 1] - lims[j]);
        if (!isfinite(to_axis(ov[j], lg[j]))) lims[j] -= pad;
        if (!isfinite(to_axis(ov[j + 1], lg[j + 1]))) lims[j + 1] += pad;
    }
    *x0 = lims[0]; *x1 = lims[1]; *y0 = lims[2]; *y1 = lims[3];
    return 0;
}

/* Tick values (in data units) for an axis over [a0, a1] in axis space. */
static int axis_ticks(double a0, double a1, int log_axis, double *t, int max, double *step) {
    if (!log_axis || a1 - a0 < 1.0) {
        double lo = log_axis ? pow(10.0, a0) : a0, hi = log_axis ? pow(10.0, a1) : a1;
        return svg_nice_ticks(lo, hi, 6, t, max, step);
    }
    /* Decades, plus 2x and 5x when few decades are shown. */
    int n = 0, fine = a1 - a0 < 2.5;
    *step = 0;
    for (int e = (int)floor(a0); e <= (int)ceil(a1) && n < max; e++) {
        const double mult[3] = {1, 2, 5};
        for (int j = 0; j < (fine ? 3 : 1) && n < max; j++) {
            double v = mult[j] * pow(10.0, e), a = log10(v);
            if (a >= a0 - 1e-9 && a <= a1 + 1e-9) t[n++] = v;
        }
    }
    return n;
}

static const char *series_color(const svg_series *s, int k) {
    return s->color ? s->color : svg_palette[k % SVG_PALETTE_N];
}

/* Points (and band edges) of every series that fall in the box. */
static int points_in(const svg_series *s, int ns, const axis_map *mx, const axis_map *my,
                     double x0, double y0, double w, double h) {
    int n = 0;
    for (int k = 0; k < ns; k++)
        for (int i = 0; i < s[k].n; i++) {
            double px = to_px(mx, s[k].x[i]);
            double ys[3] = {s[k].y[i], s[k].lo ? s[k].lo[i] : NAN, s[k].hi ? s[k].hi[i] : NAN};
            for (int j = 0; j < 3; j++) {
                double py = to_px(my, ys[j]);
                if (px >= x0 && px <= x0 + w && py >= y0 && py <= y0 + h) n++;
            }
        }
    return n;
}

static void draw_legend(svg_doc *d, const svg_plot *p, const svg_series *s, int ns,
                        const axis_map *mx, const axis_map *my, double fx, double fy, double fw, double fh) {
    int n = 0;
    size_t maxlen = 0;
    for (int k = 0; k < ns; k++)
        if (s[k].label) { n++; maxlen = strlen(s[k].label) > maxlen ? strlen(s[k].label) : maxlen; }
    if (!n || !p->legend) return;
    /* About 0.6 em per character at 12 px: wide enough for Helvetica digits
     * and lower-case text. */
    double row = 18, w = 44 + 7.0 * (double)maxlen, h = 8 + row * n;
    int corner = p->legend;
    if (corner < 1 || corner > 4) {
        /* Auto: the corner that hides the fewest data points (top right on a tie). */
        const int order[4] = {1, 2, 4, 3};
        int best = -1;
        for (int c = 0; c < 4; c++) {
            int cc = order[c];
            double bx = (cc == 2 || cc == 3) ? fx + 10 : fx + fw - w - 10;
            double by = (cc == 3 || cc == 4) ? fy + fh - h - 10 : fy + 10;
            int cnt = points_in(s, ns, mx, my, bx - 6, by - 6, w + 12, h + 12);
            /* A reference line's label should stay readable too: it weighs
             * like several points. */
            for (int r = 0; r < p->n_refs; r++) {
                if (!p->refs[r].label) continue;
                double v = p->refs[r].vertical ? to_px(mx, p->refs[r].value) : to_px(my, p->refs[r].value);
                double ax = p->refs[r].vertical ? v + 4 : fx + 6, ay = p->refs[r].vertical ? fy + fh - 6 : v - 4;
                double len = 6.0 * (double)strlen(p->refs[r].label);
                if (ax + len >= bx && ax <= bx + w && ay >= by - 12 && ay <= by + h + 12) cnt += 5;
            }
            if (best < 0 || cnt < best) { best = cnt; corner = cc; }
        }
    }
    double lx = (corner == 2 || corner == 3) ? fx + 10 : fx + fw - w - 10;
    double ly = (corner == 3 || corner == 4) ? fy + fh - h - 10 : fy + 10;
    svg_rect(d, lx, ly, w, h, "#bbbbbb", "#ffffff", 0.9);
    int r = 0;
    for (int k = 0; k < ns; k++) {
        if (!s[k].label) continue;
        double cy = ly + 4 + row * (r + 0.5);
        const char *c = series_color(&s[k], k);
        if (s[k].lo && s[k].hi) svg_rect(d, lx + 8, cy - 5, 24, 10, "none", c, 0.2);
        if (s[k].markers != 2) svg_line(d, lx + 8, cy, lx + 32, cy, c, s[k].width > 0 ? s[k].width : 2, s[k].dash);
        if (s[k].markers) svg_circle(d, lx + 20, cy, s[k].markers == 2 ? 3.5 : 2.5, c, s[k].markers == 2 ? "none" : c, 1.2);
        svg_text(d, lx + 38, cy + 4, 12, "start", "#222222", 0, 0, s[k].label);
        r++;
    }
}

int svg_plot_draw(svg_doc *d, double x, double y, double w, double h,
                  const svg_plot *p, const svg_series *s, int n_series) {
    if (!d || !p || (n_series > 0 && !s) || n_series < 0) return -1;
    for (int k = 0; k < n_series; k++)
        if (s[k].n < 0 || (s[k].n > 0 && (!s[k].x || !s[k].y)) || (!s[k].lo != !s[k].hi)) return -1;
    double ax0, ax1, ay0, ay1;
    if (data_limits(p, s, n_series, &ax0, &ax1, &ay0, &ay1) != 0) return -1;

    double top = 14 + (p->title ? 22 : 0) + (p->subtitle ? 18 : 0);
    double fx = x + 68, fy = y + top, fw = w - 68 - 18, fh = h - top - 50;
    if (fw < 20 || fh < 20) return -1;
    axis_map mx = {ax0, ax1, fx, fx + fw, p->log_x};
    axis_map my = {ay0, ay1, fy + fh, fy, p->log_y};

    if (p->title) svg_text(d, x + w / 2, y + 24, 16, "middle", "#111111", 0, 1, p->title);
    if (p->subtitle)
        svg_text(d, x + w / 2, y + (p->title ? 42 : 24), 12, "middle", "#555555", 0, 0, p->subtitle);

    /* Grid and tick labels. */
    double t[64], step = 0;
    char lab[48];
    int nt = p->n_xticks > 0 && p->xticks ? (p->n_xticks < 64 ? p->n_xticks : 64)
                                          : axis_ticks(ax0, ax1, p->log_x, t, 64, &step);
    if (p->n_xticks > 0 && p->xticks) memcpy(t, p->xticks, (size_t)nt * sizeof *t);
    for (int i = 0; i < nt; i++) {
        double px = to_px(&mx, t[i]);
        if (!(px >= fx - 0.5 && px <= fx + fw + 0.5)) continue;   /* outside, or NaN on a log axis */
        svg_line(d, px, fy, px, fy + fh, "#e6e6e6", 1, NULL);
        svg_line(d, px, fy + fh, px, fy + fh + 5, "#333333", 1, NULL);
        if (p->n_xticks > 0 && p->xticks && p->xtick_labels && p->xtick_labels[i])
            snprintf(lab, sizeof lab, "%s", p->xtick_labels[i]);
        else if (p->n_xticks > 0 && p->xticks)
            snprintf(lab, sizeof lab, "%g", t[i]);
        else
            tick_label(lab, sizeof lab, t[i], step, p->log_x && ax1 - ax0 >= 1.0);
        svg_text(d, px, fy + fh + 19, 12, "middle", "#333333", 0, 0, lab);
    }
    nt = axis_ticks(ay0, ay1, p->log_y, t, 64, &step);
    for (int i = 0; i < nt; i++) {
        double py = to_px(&my, t[i]);
        svg_line(d, fx, py, fx + fw, py, "#e6e6e6", 1, NULL);
        svg_line(d, fx - 5, py, fx, py, "#333333", 1, NULL);
        tick_label(lab, sizeof lab, t[i], step, p->log_y && ay1 - ay0 >= 1.0);
        svg_text(d, fx - 8, py + 4, 12, "end", "#333333", 0, 0, lab);
    }
    if (p->xlabel) svg_text(d, fx + fw / 2, fy + fh + 40, 13, "middle", "#111111", 0, 0, p->xlabel);
    if (p->ylabel) svg_text(d, x + 16, fy + fh / 2, 13, "middle", "#111111", -90, 0, p->ylabel);

    /* Data, clipped to the frame. */
    int id = d->next_id++;
    appendf(d, "<defs><clipPath id=\"plotclip%d\"><rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" "
               "height=\"%.2f\"/></clipPath></defs>\n<g clip-path=\"url(#plotclip%d)\">\n",
            id, fx, fy, fw, fh, id);
    int maxn = 0;
    for (int k = 0; k < n_series; k++) maxn = s[k].n > maxn ? s[k].n : maxn;
    double *px = malloc(2 * (size_t)(maxn > 0 ? maxn : 1) * sizeof *px);
    double *py = malloc(2 * (size_t)(maxn > 0 ? maxn : 1) * sizeof *py);
    if (!px || !py) { free(px); free(py); d->err = 1; return -1; }
    for (int k = 0; k < n_series; k++) {
        if (!s[k].lo) continue;
        int m = 0;
        for (int i = 0; i < s[k].n; i++) {
            double xx = to_px(&mx, s[k].x[i]), yy = to_px(&my, s[k].hi[i]);
            if (isfinite(xx) && isfinite(yy) && isfinite(to_px(&my, s[k].lo[i]))) { px[m] = xx; py[m++] = yy; }
        }
        for (int i = s[k].n - 1; i >= 0; i--) {
            double xx = to_px(&mx, s[k].x[i]), yy = to_px(&my, s[k].lo[i]);
            if (isfinite(xx) && isfinite(yy) && isfinite(to_px(&my, s[k].hi[i]))) { px[m] = xx; py[m++] = yy; }
        }
        svg_polygon(d, px, py, m, series_color(&s[k], k), 0.18);
    }
    for (int r = 0; r < p->n_refs; r++) {
        const svg_refline *rl = &p->refs[r];
        const char *c = rl->color ? rl->color : "#777777";
        if (rl->vertical) {
            double v = to_px(&mx, rl->value);
            if (!isfinite(v)) continue;
            svg_line(d, v, fy, v, fy + fh, c, 1.2, "5 4");
            /* At the foot of the line: legends sit in the top corners by preference. */
            if (rl->label) svg_text(d, v + 4, fy + fh - 6, 11, "start", c, 0, 0, rl->label);
        } else {
            double v = to_px(&my, rl->value);
            if (!isfinite(v)) continue;
            svg_line(d, fx, v, fx + fw, v, c, 1.2, "5 4");
            if (rl->label) svg_text(d, fx + 6, v - 4, 11, "start", c, 0, 0, rl->label);
        }
    }
    for (int k = 0; k < n_series; k++) {
        for (int i = 0; i < s[k].n; i++) { px[i] = to_px(&mx, s[k].x[i]); py[i] = to_px(&my, s[k].y[i]); }
        const char *c = series_color(&s[k], k);
        if (s[k].markers != 2) svg_polyline(d, px, py, s[k].n, c, s[k].width > 0 ? s[k].width : 2, s[k].dash);
        if (s[k].markers)
            for (int i = 0; i < s[k].n; i++)
                if (isfinite(px[i]) && isfinite(py[i]))
                    svg_circle(d, px[i], py[i], s[k].markers == 2 ? 3.5 : 2.5, c, s[k].markers == 2 ? "none" : c, 1.2);
    }
    free(px);
    free(py);
    appendf(d, "</g>\n");
    svg_rect(d, fx, fy, fw, fh, "#333333", "none", 0);
    draw_legend(d, p, s, n_series, &mx, &my, fx, fy, fw, fh);
    return d->err ? -1 : 0;
}

int svg_plot_write(const char *path, double width, double height,
                   const svg_plot *p, const svg_series *s, int n_series, char *err, size_t errlen) {
    svg_doc d;
    if (svg_doc_begin(&d, width, height) != 0) {
        svg_doc_free(&d);
        if (err && errlen) snprintf(err, errlen, "%s: out of memory while drawing", path);
        return -1;
    }
    if (p->title) svg_title(&d, p->title);
    if (svg_plot_draw(&d, 0, 0, width, height, p, s, n_series) != 0) {
        svg_doc_free(&d);
        if (err && errlen) snprintf(err, errlen, "%s: nothing finite to plot", path);
        return -1;
    }
    svg_doc_end(&d);
    int rc = svg_doc_save(&d, path, err, errlen);
    svg_doc_free(&d);
    return rc;
}
