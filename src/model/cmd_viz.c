/*
 * cmd_viz.c — `ropegpt viz --out docs/img`: three SVG figures that teach
 * what RoPE does, every number computed by librope (rope_apply, rope_freqs):
 *   rope_rotation.svg     one 2-D pair rotating as the position grows, for a
 *                         fast, a middle and a slow pair;
 *   rope_decay.svg        <R_m q, R_n k> against the distance n - m for
 *                         q = k = ones (as RoFormer does), computed at two
 *                         different offsets m to show it depends on n - m
 *                         only, with RoFormer's relative upper bound
 *                         (Su et al. 2021, sec. 3.4.3, Fig. 2);
 *   rope_scaling.svg      per-pair wavelengths 2 pi / theta_i for the default
 *                         base and under linear, NTK, dynamic NTK, YaRN and
 *                         Llama 3 scaling, and each scaling's ratio to the
 *                         default frequency.
 */
#define _POSIX_C_SOURCE 200809L
#include "model/cmd_viz.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rope.h"
#include "util/args.h"
#include "util/io.h"
#include "util/svg.h"

#define VIZ_PI 3.14159265358979323846

typedef struct {
    int head_dim;
    double base;
    int64_t train_ctx;
    double factor;
} viz_opts;

static int rope_fail(char *err, size_t errlen, const char *what, rope_status st) {
    snprintf(err, errlen, "%s: %s", what, rope_status_str(st));
    return -1;
}

/* A light-to-dark blue ramp for positions: one hue, ordered by lightness,
 * which reads the same with every colour-vision deficiency. */
static void ramp_color(char *out, size_t n, double t) {
    const double a[3] = {158, 202, 225}, b[3] = {8, 48, 107};
    int c[3];
    for (int i = 0; i < 3; i++) c[i] = (int)lround(a[i] + (b[i] - a[i]) * t);
    snprintf(out, n, "#%02X%02X%02X", c[0], c[1], c[2]);
}

/* ------------------------------------------------------------ figure 1 */

static int fig_rotation(const char *path, char *err, size_t errlen) {
    enum { D = 64, P = 8, NPANEL = 3 };
    const int pairs[NPANEL] = {0, 4, 8};
    rope_config cfg = rope_config_default();
    cfg.head_dim = D;
    cfg.rotary_dim = D;
    cfg.max_positions = P;
    rope_table t;
    rope_status st = rope_table_init(&t, &cfg, P);
    if (st != ROPE_OK) return rope_fail(err, errlen, "rope_table_init", st);
    /* x = (1, 0) in every pair, rotated to positions p = 0..P-1 by librope. */
    float x[P * D];
    int32_t pos[P];
    for (int p = 0; p < P; p++) {
        pos[p] = p;
        for (int j = 0; j < D / 2; j++) { x[p * D + 2 * j] = 1.0f; x[p * D + 2 * j + 1] = 0.0f; }
    }
    rope_view v = rope_view_packed(x, P, 1, D);
    st = rope_apply(&t, ROPE_FORWARD, &v, &v, pos, 1);
    double theta[NPANEL];
    for (int k = 0; k < NPANEL; k++) theta[k] = t.inv_freq[pairs[k]];
    rope_table_free(&t);
    if (st != ROPE_OK) return rope_fail(err, errlen, "rope_apply", st);

    const double W = 960, H = 420, R = 110;
    svg_doc d;
    if (svg_doc_begin(&d, W, H) != 0) { svg_doc_free(&d); snprintf(err, errlen, "out of memory"); return -1; }
    svg_title(&d, "RoPE rotates each 2-D pair by position x theta_i");
    svg_text(&d, W / 2, 28, 17, "middle", "#111111", 0, 1, "RoPE rotates each 2-D pair of q and k by p \xC2\xB7 \xCE\xB8\xE1\xB5\xA2");
    svg_text(&d, W / 2, 50, 12, "middle", "#555555", 0, 0,
             "the pair (1, 0) of a 64-dim head rotated by librope to positions p = 0..7;"
             " \xCE\xB8\xE1\xB5\xA2 = 10000^(\xE2\x88\x92" "2i/64) radians per token");
    char buf[160], col[16];
    for (int k = 0; k < NPANEL; k++) {
        double cx = 160 + 320 * k, cy = 215;
        int i = pairs[k];
        svg_line(&d, cx - R - 15, cy, cx + R + 15, cy, "#cccccc", 1, NULL);
        svg_line(&d, cx, cy - R - 15, cx, cy + R + 15, "#cccccc", 1, NULL);
        svg_circle(&d, cx, cy, R, "#999999", "none", 1);
        /* The angle swept from p = 0 to p = 1, drawn as an arc: that is theta_i. */
        double ax[33], ay[33];
        for (int j = 0; j <= 32; j++) {
            double a = theta[k] * j / 32.0;
            ax[j] = cx + 0.3 * R * cos(a);
            ay[j] = cy - 0.3 * R * sin(a);
        }
        svg_polyline(&d, ax, ay, 33, "#D55E00", 2, NULL);
        /* A small angle leaves no room inside the arc: label it below the axis. */
        if (theta[k] >= 0.3)
            svg_text(&d, cx + 0.36 * R * cos(theta[k] / 2) + 2, cy - 0.36 * R * sin(theta[k] / 2) + 4, 13,
                     "start", "#D55E00", 0, 1, "\xCE\xB8");
        else
            svg_text(&d, cx + 0.3 * R, cy + 16, 13, "middle", "#D55E00", 0, 1, "\xCE\xB8");
        for (int p = 0; p < P; p++) {
            double c = x[p * D + 2 * i], s = x[p * D + 2 * i + 1];
            ramp_color(col, sizeof col, (double)p / (P - 1));
            svg_arrow(&d, cx, cy, cx + R * c, cy - R * s, col, 2.2);
            /* Label every arrow when they are far enough apart to read. */
            if (theta[k] >= 0.25 || p == 0 || p == P - 1) {
                snprintf(buf, sizeof buf, "p=%d", p);
                double lx = cx + 1.2 * R * c, ly = cy - 1.2 * R * s + 4;
                svg_text(&d, lx, ly, 11, "middle", "#222222", 0, 0, buf);
            }
        }
        snprintf(buf, sizeof buf, "pair i = %d: \xCE\xB8 = %.3g rad/token", i, theta[k]);
        svg_text(&d, cx, cy + R + 42, 13, "middle", "#111111", 0, 1, buf);
        snprintf(buf, sizeof buf, "wavelength 2\xCF\x80/\xCE\xB8 = %.1f tokens", 2 * VIZ_PI / theta[k]);
        svg_text(&d, cx, cy + R + 60, 12, "middle", "#444444", 0, 0, buf);
    }
    svg_text(&d, W / 2, H - 10, 11, "middle", "#555555", 0, 0,
             "fast pairs (small i) tell nearby tokens apart; slow pairs keep turning over long distances");
    svg_doc_end(&d);
    int rc = svg_doc_save(&d, path, err, errlen);
    svg_doc_free(&d);
    return rc;
}

/* ------------------------------------------------------------ figure 2 */

/* (1/D) <R_m q, R_n k> for q = k = ones, n = m + dist[j], via librope. */
static rope_status scores_at(const rope_table *t, int D, int64_t m, const int *dist, int n,
                             double *out) {
    float *buf = malloc((size_t)(n + 1) * (size_t)D * sizeof *buf);
    int32_t *pos = malloc((size_t)(n + 1) * sizeof *pos);
    if (!buf || !pos) { free(buf); free(pos); return ROPE_ENOMEM; }
    for (size_t i = 0; i < (size_t)(n + 1) * (size_t)D; i++) buf[i] = 1.0f;
    pos[0] = (int32_t)m;   /* row 0: q at m; rows 1..n: k at m + dist */
    for (int j = 0; j < n; j++) pos[j + 1] = (int32_t)(m + dist[j]);
    rope_view v = rope_view_packed(buf, n + 1, 1, D);
    rope_status st = rope_apply(t, ROPE_FORWARD, &v, &v, pos, 1);
    for (int j = 0; st == ROPE_OK && j < n; j++) {
        double acc = 0;
        for (int c = 0; c < D; c++) acc += (double)buf[c] * (double)buf[(size_t)(j + 1) * D + c];
        out[j] = acc / D;
    }
    free(buf);
    free(pos);
    return st;
}

static int fig_decay(const char *path, char *err, size_t errlen) {
    enum { D = 128, NDIST = 1025, EVERY = 32 };
    const int64_t offset = 1000;
    rope_config cfg = rope_config_default();
    cfg.head_dim = D;
    cfg.rotary_dim = D;
    cfg.max_positions = 4096;
    rope_table t;
    rope_status st = rope_table_init(&t, &cfg, cfg.max_positions);
    if (st != ROPE_OK) return rope_fail(err, errlen, "rope_table_init", st);
    static int dist[NDIST];
    static double xs[NDIST], s0[NDIST], s1[NDIST], bound[NDIST];
    for (int j = 0; j < NDIST; j++) { dist[j] = j; xs[j] = j; }
    st = scores_at(&t, D, 0, dist, NDIST, s0);
    if (st == ROPE_OK) st = scores_at(&t, D, offset, dist, NDIST, s1);
    /* RoFormer eq. (37): |sum_j (h_j - h_j+1) S_j| <= max|h_j+1 - h_j| * sum_j |S_j|,
     * S_j = sum_{k<j} e^{i (m-n) theta_k}; the "relative upper bound" is
     * (1/(d/2)) sum_{j=1}^{d/2} |S_j|, shown divided by its value at 0. */
    int np = D / 2;
    for (int j = 0; st == ROPE_OK && j < NDIST; j++) {
        double re = 0, im = 0, sum = 0;
        for (int k = 0; k < np; k++) {
            re += cos(dist[j] * t.inv_freq[k]);
            im += sin(dist[j] * t.inv_freq[k]);
            sum += sqrt(re * re + im * im);
        }
        bound[j] = (sum / np) / ((np + 1) / 2.0);
    }
    rope_table_free(&t);
    if (st != ROPE_OK) return rope_fail(err, errlen, "rope_apply", st);
    double maxdiff = 0;
    for (int j = 0; j < NDIST; j++) maxdiff = fmax(maxdiff, fabs(s0[j] - s1[j]));
    /* Every EVERY-th point of the offset curve as hollow dots over the line. */
    static double xm[NDIST / EVERY + 1], ym[NDIST / EVERY + 1];
    int nm = 0;
    for (int j = 0; j < NDIST; j += EVERY) { xm[nm] = xs[j]; ym[nm++] = s1[j]; }

    /* RoFormer's Fig. 2 shows the bound itself (not normalised): keep it so. */
    for (int j = 0; j < NDIST; j++) bound[j] *= (np + 1) / 2.0;

    char sub[200], lab[80];
    snprintf(sub, sizeof sub, "q = k = ones, d = %d, base 10000; curves at m = 0 and m = %lld "
             "differ by \xE2\x89\xA4 %.1e", D, (long long)offset, maxdiff);
    snprintf(lab, sizeof lab, "same, at m = %lld (every %dth distance)", (long long)offset, EVERY);
    svg_series s[2] = {
        {.label = "m = 0", .x = xs, .y = s0, .n = NDIST, .color = "#0072B2", .width = 1.4},
        {.label = lab, .x = xm, .y = ym, .n = nm, .color = "#D55E00", .markers = 2},
    };
    svg_series sb = {.label = "(1/(d/2)) \xCE\xA3\xE2\xB1\xBC |S\xE2\xB1\xBC|", .x = xs, .y = bound, .n = NDIST,
                     .color = "#000000", .width = 1.6};
    svg_refline zero = {.value = 0, .vertical = 0, .color = "#999999"};
    svg_plot p = svg_plot_default();
    p.title = "<R\xE2\x82\x98 q, R\xE2\x82\x99 k> / <q, k> depends only on n \xE2\x88\x92 m";
    p.subtitle = sub;
    p.xlabel = "relative distance n \xE2\x88\x92 m (tokens)";
    p.ylabel = "normalised attention score";
    p.xmin = 0;
    p.xmax = NDIST - 1;
    p.refs = &zero;
    p.n_refs = 1;
    svg_plot pb = svg_plot_default();
    pb.title = "RoFormer's long-term decay (Su et al. 2021, Fig. 2)";
    pb.subtitle = "relative upper bound, S\xE2\xB1\xBC = \xCE\xA3_{k<j} e^{i(m\xE2\x88\x92n)\xCE\xB8\xE2\x82\x96}, d = 128";
    pb.xlabel = "relative distance n \xE2\x88\x92 m (tokens)";
    pb.ylabel = "relative upper bound";
    pb.xmin = 0;
    pb.xmax = NDIST - 1;

    svg_doc d;
    int rc = svg_doc_begin(&d, 1180, 480);
    svg_title(&d, "RoPE scores depend only on relative distance and decay with it");
    if (rc == 0) rc = svg_plot_draw(&d, 0, 0, 600, 480, &p, s, 2);
    if (rc == 0) rc = svg_plot_draw(&d, 600, 0, 580, 480, &pb, &sb, 1);
    if (rc != 0) { svg_doc_free(&d); snprintf(err, errlen, "rope_decay: could not draw"); return -1; }
    svg_doc_end(&d);
    rc = svg_doc_save(&d, path, err, errlen);
    svg_doc_free(&d);
    return rc;
}

/* ------------------------------------------------------------ figure 3 */

enum { NSCALE = 6 };

static int fig_scaling(const char *path, const viz_opts *o, char *err, size_t errlen) {
    const rope_scaling_type types[NSCALE] = {ROPE_SCALING_NONE, ROPE_SCALING_LINEAR, ROPE_SCALING_NTK,
                                             ROPE_SCALING_DYNAMIC, ROPE_SCALING_YARN, ROPE_SCALING_LLAMA3};
    const char *names[NSCALE] = {"default (no scaling)", "linear (Position Interpolation)",
                                 "NTK-aware", "dynamic NTK at s\xC2\xB7L0", "YaRN", "Llama 3"};
    const char *colors[NSCALE] = {"#000000", "#0072B2", "#D55E00", "#CC79A7", "#009E73", "#E69F00"};
    const char *dashes[NSCALE] = {NULL, "8 4", NULL, "2 3", NULL, "10 3 2 3"};
    int np = o->head_dim / 2;
    double *mem = malloc((size_t)np * (2 * NSCALE + 2) * sizeof *mem);
    if (!mem) { snprintf(err, errlen, "out of memory"); return -1; }
    double *xs = mem, *inv0 = mem + np, *wav = mem + 2 * (size_t)np, *ratio = wav + (size_t)NSCALE * np;
    double yarn_attn = 1;
    for (int i = 0; i < np; i++) xs[i] = i;
    for (int k = 0; k < NSCALE; k++) {
        rope_config cfg = rope_config_default();
        cfg.head_dim = o->head_dim;
        cfg.rotary_dim = o->head_dim;
        cfg.base = o->base;
        cfg.scaling.type = types[k];
        cfg.scaling.factor = types[k] == ROPE_SCALING_NONE ? 1.0 : o->factor;
        cfg.scaling.original_max_positions = o->train_ctx;
        double attn = 1;
        double *inv = k == 0 ? inv0 : ratio + (size_t)k * np;   /* scratch row */
        rope_status st = rope_freqs(&cfg, (int64_t)(o->factor * (double)o->train_ctx), inv, &attn);
        if (st != ROPE_OK) { free(mem); return rope_fail(err, errlen, names[k], st); }
        if (types[k] == ROPE_SCALING_YARN) yarn_attn = attn;
        for (int i = 0; i < np; i++) {
            wav[(size_t)k * np + i] = 2 * VIZ_PI / inv[i];
            ratio[(size_t)k * np + i] = inv[i] / inv0[i];
        }
    }
    svg_series sw[NSCALE], sr[NSCALE];
    for (int k = 0; k < NSCALE; k++) {
        sw[k] = (svg_series){.label = names[k], .x = xs, .y = wav + (size_t)k * np, .n = np,
                             .color = colors[k], .dash = dashes[k], .width = k == 0 ? 2.6 : 2};
        sr[k] = sw[k];
        sr[k].y = ratio + (size_t)k * np;
    }
    char l0[64], ls[64], sub[240], title[160];
    snprintf(l0, sizeof l0, "training context L0 = %lld", (long long)o->train_ctx);
    snprintf(ls, sizeof ls, "target context s\xC2\xB7L0 = %lld", (long long)(o->factor * (double)o->train_ctx));
    svg_refline refs[2] = {{.value = (double)o->train_ctx, .label = l0},
                           {.value = o->factor * (double)o->train_ctx, .label = ls, .color = "#444444"}};
    snprintf(title, sizeof title, "Per-pair wavelength 2\xCF\x80/\xCE\xB8\xE1\xB5\xA2 (head dim %d, base %g, s = %g)",
             o->head_dim, o->base, o->factor);
    snprintf(sub, sizeof sub, "pairs above L0 never completed a turn in training; YaRN also scales logits by %.3f",
             yarn_attn * yarn_attn);
    svg_plot pw = svg_plot_default();
    pw.title = title;
    pw.subtitle = sub;
    pw.xlabel = "pair index i";
    pw.ylabel = "wavelength (tokens, log scale)";
    pw.log_y = 1;
    pw.refs = refs;
    pw.n_refs = 2;
    pw.legend = 2;
    svg_plot pr = svg_plot_default();
    pr.title = "Scaled frequency / default frequency";
    pr.subtitle = "1 = pair unchanged (extrapolates), 1/s = pair interpolated";
    pr.xlabel = "pair index i";
    pr.ylabel = "\xCE\xB8\xE1\xB5\xA2 scaled / \xCE\xB8\xE1\xB5\xA2 default";
    pr.ymin = 0;
    pr.ymax = 1.08;
    pr.legend = 3;

    svg_doc d;
    int rc = svg_doc_begin(&d, 1180, 500);
    svg_title(&d, "Per-pair RoPE wavelengths under context-extension scalings");
    if (rc == 0) rc = svg_plot_draw(&d, 0, 0, 600, 500, &pw, sw, NSCALE);
    if (rc == 0) rc = svg_plot_draw(&d, 600, 0, 580, 500, &pr, sr, NSCALE);
    free(mem);
    if (rc != 0) { svg_doc_free(&d); snprintf(err, errlen, "rope_scaling: could not draw"); return -1; }
    svg_doc_end(&d);
    rc = svg_doc_save(&d, path, err, errlen);
    svg_doc_free(&d);
    return rc;
}

int cmd_viz(int argc, char **argv) {
    const char *out = "docs/img";
    viz_opts o = {.head_dim = 128, .base = 10000, .train_ctx = 2048, .factor = 4};
    args_spec specs[] = {
        {.name = "--out", .kind = ARG_STR, .dst = &out, .help = "folder for the SVG files"},
        {.name = "--head-dim", .kind = ARG_INT, .dst = &o.head_dim, .help = "head dim of the wavelength figure (even)",
         .min = 2, .max = 4096},
        {.name = "--base", .kind = ARG_DOUBLE, .dst = &o.base, .help = "RoPE base of the wavelength figure",
         .min = 1, .max = INFINITY, .min_open = 1},
        {.name = "--train-ctx", .kind = ARG_I64, .dst = &o.train_ctx, .help = "training context L0",
         .min = 1, .max = 1e12},
        {.name = "--factor", .kind = ARG_DOUBLE, .dst = &o.factor, .help = "scaling factor s",
         .min = 1, .max = 1e6, .min_open = 1},
    };
    int ns = (int)(sizeof specs / sizeof specs[0]);
    char err[512];
    int rc = args_parse(specs, ns, argc, argv, err, sizeof err);
    if (rc == 1) {
        printf("usage: ropegpt viz [--out DIR]\nDraws rope_rotation.svg, rope_decay.svg and rope_scaling.svg.\n");
        args_print_help(stdout, specs, ns);
        return 0;
    }
    if (rc != 0) { fprintf(stderr, "viz: %s\n", err); return 2; }
    if (o.head_dim % 2 != 0) { fprintf(stderr, "viz: --head-dim: expected an even number, got %d\n", o.head_dim); return 2; }
    if (io_mkdir_p(out, err, sizeof err) != 0) { fprintf(stderr, "viz: --out: %s\n", err); return 2; }
    static const char *const files[3] = {"rope_rotation.svg", "rope_decay.svg", "rope_scaling.svg"};
    for (int f = 0; f < 3; f++) {
        char path[4096];
        if (io_path_join(path, sizeof path, out, files[f]) != 0) {
            fprintf(stderr, "viz: --out: path too long\n");
            return 2;
        }
        int r = f == 0 ? fig_rotation(path, err, sizeof err)
              : f == 1 ? fig_decay(path, err, sizeof err)
                       : fig_scaling(path, &o, err, sizeof err);
        if (r != 0) { fprintf(stderr, "viz: %s\n", err); return 1; }
        printf("wrote %s\n", path);
    }
    return 0;
}
