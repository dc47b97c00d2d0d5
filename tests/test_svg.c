/*
 * test_svg.c — tests for the SVG writer (src/util/svg.c). Figures are only
 * useful if every viewer opens them, so the main check is a small XML
 * well-formedness checker: one root <svg>, balanced tags, every attribute
 * quoted, text and attribute values free of raw '<' and of '&' that does not
 * start an entity. The checker is tested on broken inputs first, so that a
 * pass means something. test_compare.c reuses it for compare's figures.
 */
#define _POSIX_C_SOURCE 200809L
#include <ctype.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "util/plotpng.h"
#include "util/svg.h"

int test_xml_wellformed(const char *s, char *why, size_t why_n);
char *test_read_text(const char *path);

/* '&' must start one of the five predefined entities or a numeric one. */
static int entity_ok(const char *p) {
    static const char *const names[] = {"&amp;", "&lt;", "&gt;", "&quot;", "&apos;"};
    for (int i = 0; i < 5; i++)
        if (strncmp(p, names[i], strlen(names[i])) == 0) return (int)strlen(names[i]);
    if (p[1] == '#') {
        int i = 2;
        while (isalnum((unsigned char)p[i])) i++;
        if (i > 2 && p[i] == ';') return i + 1;
    }
    return 0;
}

static int is_name_char(char c) {
    return isalnum((unsigned char)c) || c == '-' || c == '_' || c == ':' || c == '.';
}

/* Returns 1 if s is well-formed by the rules above, else 0 with a reason. */
int test_xml_wellformed(const char *s, char *why, size_t why_n) {
    enum { MAXD = 64 };
    char stack[MAXD][32];
    int depth = 0, roots = 0;
    const char *p = s;
#define FAIL(msg) do { snprintf(why, why_n, "%s at offset %ld", msg, (long)(p - s)); return 0; } while (0)
    if (strncmp(p, "<?xml", 5) == 0) {
        p = strstr(p, "?>");
        if (!p) FAIL("unterminated prolog");
        p += 2;
    }
    while (*p) {
        if (*p == '&') {
            int n = entity_ok(p);
            if (!n) FAIL("raw '&' in text");
            p += n;
            continue;
        }
        if (*p != '<') {
            if (depth == 0 && !isspace((unsigned char)*p)) FAIL("text outside the root");
            p++;
            continue;
        }
        if (strncmp(p, "<!--", 4) == 0) {
            const char *e = strstr(p + 4, "-->");
            if (!e) FAIL("unterminated comment");
            p = e + 3;
            continue;
        }
        if (p[1] == '/') {
            p += 2;
            const char *n0 = p;
            while (is_name_char(*p)) p++;
            size_t len = (size_t)(p - n0);
            if (depth == 0) FAIL("close tag with nothing open");
            if (len != strlen(stack[depth - 1]) || strncmp(n0, stack[depth - 1], len) != 0)
                FAIL("mismatched close tag");
            while (isspace((unsigned char)*p)) p++;
            if (*p != '>') FAIL("bad close tag");
            p++;
            depth--;
            continue;
        }
        p++;
        const char *n0 = p;
        while (is_name_char(*p)) p++;
        size_t len = (size_t)(p - n0);
        if (len == 0 || len >= 32) FAIL("bad tag name");
        for (;;) {
            int ws = 0;
            while (isspace((unsigned char)*p)) { p++; ws = 1; }
            if (*p == '/' && p[1] == '>') { p += 2; break; }
            if (*p == '>') {
                p++;
                if (depth == MAXD) FAIL("too deep");
                if (depth == 0) roots++;
                memcpy(stack[depth], n0, len);
                stack[depth][len] = 0;
                depth++;
                goto next;
            }
            if (!ws) FAIL("attribute not separated by space");
            const char *a0 = p;
            while (is_name_char(*p)) p++;
            if (p == a0) FAIL("bad attribute name");
            if (*p != '=') FAIL("attribute without '='");
            p++;
            char q = *p;
            if (q != '"' && q != '\'') FAIL("unquoted attribute value");
            p++;
            while (*p && *p != q) {
                if (*p == '<') FAIL("'<' in attribute value");
                if (*p == '&') {
                    int n = entity_ok(p);
                    if (!n) FAIL("raw '&' in attribute value");
                    p += n;
                } else {
                    p++;
                }
            }
            if (!*p) FAIL("unterminated attribute value");
            p++;
        }
        if (depth == 0) roots++;
    next:;
    }
    if (depth != 0) FAIL("unclosed element");
    if (roots != 1) FAIL("not exactly one root element");
#undef FAIL
    return 1;
}

char *test_read_text(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, len = 0;
    char *b = malloc(cap);
    size_t n;
    while (b && (n = fread(b + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (cap - len < 2) {
            char *nb = realloc(b, cap * 2);
            if (!nb) { free(b); b = NULL; break; }
            b = nb;
            cap *= 2;
        }
    }
    fclose(f);
    if (b) b[len] = 0;
    return b;
}

static int wellformed(const char *s) {
    char why[128];
    int ok = test_xml_wellformed(s, why, sizeof why);
    if (!ok) printf("    xml: %s\n", why);
    return ok;
}

static int count_str(const char *s, const char *needle) {
    int n = 0;
    for (const char *p = strstr(s, needle); p; p = strstr(p + 1, needle)) n++;
    return n;
}

TEST(svg_xml_checker_rejects_broken_documents) {
    char why[128];
    CHECK(test_xml_wellformed("<svg><g><line x=\"1\"/></g></svg>", why, sizeof why));
    CHECK(!test_xml_wellformed("<svg><g></svg>", why, sizeof why));
    CHECK(!test_xml_wellformed("<svg><g></g>", why, sizeof why));
    CHECK(!test_xml_wellformed("<svg><line x=1/></svg>", why, sizeof why));
    CHECK(!test_xml_wellformed("<svg><text>a & b</text></svg>", why, sizeof why));
    CHECK(!test_xml_wellformed("<svg><text a=\"<\">x</text></svg>", why, sizeof why));
    CHECK(!test_xml_wellformed("<svg/><svg/>", why, sizeof why));
    CHECK(!test_xml_wellformed("<svg></svg>junk", why, sizeof why));
    CHECK(test_xml_wellformed("<?xml version=\"1.0\"?>\n<svg><text>a &amp; b &#955;</text></svg>\n",
                              why, sizeof why));
}

TEST(svg_nice_ticks_cover_the_range_with_round_steps) {
    double t[32], step = 0;
    int n = svg_nice_ticks(0.0, 1.0, 6, t, 32, &step);
    CHECK_EQ_INT(n, 6);
    CHECK_NEAR(step, 0.2, 1e-12);   /* exact decimal step up to rounding */
    CHECK_NEAR(t[0], 0.0, 0.0);     /* snapped to exactly 0 */
    CHECK_NEAR(t[5], 1.0, 1e-12);
    n = svg_nice_ticks(1.37, 5.61, 6, t, 32, &step);
    CHECK(n >= 3 && n <= 8);
    CHECK_NEAR(step, 1.0, 1e-12);
    for (int i = 0; i < n; i++) CHECK(t[i] >= 1.37 && t[i] <= 5.61);
    CHECK_EQ_INT(svg_nice_ticks(2.0, 1.0, 6, t, 32, &step), 0);
    CHECK_EQ_INT(svg_nice_ticks(0.0, NAN, 6, t, 32, &step), 0);
}

TEST(svg_plot_is_wellformed_and_escapes_text) {
    enum { N = 40 };
    double x[N], y1[N], y2[N], lo[N], hi[N];
    for (int i = 0; i < N; i++) {
        x[i] = 50.0 * i;                       /* x = 0 is dropped on the log axis */
        y1[i] = 1.5 + 4.0 * exp(-0.1 * i);
        y2[i] = i == 7 ? NAN : 1.8 + 3.5 * exp(-0.08 * i);   /* a gap */
        lo[i] = y2[i] - 0.05;
        hi[i] = y2[i] + 0.05;
    }
    svg_series s[2] = {
        {.label = "rope <rotary> & \"friends\"", .x = x, .y = y1, .n = N},
        {.label = "learned", .x = x, .y = y2, .lo = lo, .hi = hi, .n = N, .dash = "6 3", .markers = 1},
    };
    svg_refline ref = {.value = 2.0, .label = "loss 2 & below", .vertical = 0};
    svg_plot p = svg_plot_default();
    p.title = "Validation loss <test>";
    p.subtitle = "mean over 3 seeds, band = min-max";
    p.xlabel = "step";
    p.ylabel = "loss (nats/token)";
    p.log_x = 1;
    p.refs = &ref;
    p.n_refs = 1;
    char path[512];
    snprintf(path, sizeof path, "%s/plot.svg", test_tmp_dir());
    CHECK_EQ_INT(svg_plot_write(path, 800, 480, &p, s, 2, NULL, 0), 0);
    char *txt = test_read_text(path);
    CHECK(txt != NULL);
    if (!txt) return;
    CHECK(wellformed(txt));
    CHECK(strstr(txt, "rope &lt;rotary&gt; &amp; &quot;friends&quot;") != NULL);
    CHECK(strstr(txt, "<title>Validation loss &lt;test&gt;</title>") != NULL);
    /* No NaN/Inf coordinates leak into the file (x = 0 on a log axis, the gap). */
    CHECK(strstr(txt, "nan") == NULL && strstr(txt, "inf") == NULL);
    /* Series 1 is one polyline; series 2 is split by its gap into two. */
    CHECK_EQ_INT(count_str(txt, "<polyline"), 3);
    CHECK_EQ_INT(count_str(txt, "<polygon"), 1);   /* the band */
    CHECK(strstr(txt, "stroke-dasharray=\"6 3\"") != NULL);
    /* Log axis over 50..1950 is 1.6 decades: 1-2-5 ticks such as 100, 200, 500, 1000. */
    CHECK(strstr(txt, ">1000</text>") != NULL && strstr(txt, ">200</text>") != NULL);
    free(txt);
}

TEST(svg_doc_primitives_are_wellformed) {
    svg_doc d;
    CHECK_EQ_INT(svg_doc_begin(&d, 300, 200), 0);
    svg_title(&d, "primitives & more");
    svg_circle(&d, 100, 100, 50, "#333333", "none", 1);
    svg_arrow(&d, 100, 100, 140, 70, svg_palette[0], 2);
    svg_arrow(&d, 100, 100, 100, 100, svg_palette[1], 2);   /* zero length: nothing */
    svg_text(&d, 10, 20, 12, "start", "#000", -90, 1, "θ = 1 rad \"pos\" <0>");
    double xs[3] = {0, 10, 20}, ys[3] = {0, NAN, 5};
    svg_polyline(&d, xs, ys, 3, "#000", 1, NULL);
    svg_rect(&d, 1, 1, 10, 10, "a\"b", "none", 0);   /* hostile colour is escaped */
    svg_doc_end(&d);
    CHECK(!d.err);
    CHECK(wellformed(d.buf));
    CHECK(strstr(d.buf, "a&quot;b") != NULL);
    CHECK_EQ_INT(count_str(d.buf, "<polygon"), 1);
    svg_doc_free(&d);
}

TEST(svg_save_is_atomic_and_reports_errors) {
    svg_doc d;
    CHECK_EQ_INT(svg_doc_begin(&d, 10, 10), 0);
    svg_doc_end(&d);
    char path[512];
    snprintf(path, sizeof path, "%s/atomic.svg", test_tmp_dir());
    CHECK_EQ_INT(svg_doc_save(&d, path, NULL, 0), 0);
    CHECK_EQ_INT(svg_doc_save(&d, path, NULL, 0), 0);   /* replaces an existing file */
    char *txt = test_read_text(path);
    CHECK(txt && strcmp(txt, d.buf) == 0);
    free(txt);
    /* No temp file is left behind. */
    DIR *dir = opendir(test_tmp_dir());
    CHECK(dir != NULL);
    struct dirent *e;
    while (dir && (e = readdir(dir)) != NULL) CHECK(strstr(e->d_name, ".tmp.") == NULL);
    if (dir) closedir(dir);
    snprintf(path, sizeof path, "%s/no/such/dir/x.svg", test_tmp_dir());
    char err[256] = "";
    CHECK_EQ_INT(svg_doc_save(&d, path, err, sizeof err), -1);
    CHECK(strstr(err, "x.svg") != NULL);   /* the message names the file */
    svg_doc_free(&d);
}

TEST(svg_plot_rejects_empty_or_invalid_input) {
    double x[2] = {0, 1}, y[2] = {NAN, NAN}, lo[2] = {0, 0};
    svg_series s = {.label = "a", .x = x, .y = y, .n = 2};
    svg_plot p = svg_plot_default();
    svg_doc d;
    CHECK_EQ_INT(svg_doc_begin(&d, 400, 300), 0);
    CHECK_EQ_INT(svg_plot_draw(&d, 0, 0, 400, 300, &p, &s, 1), -1);   /* nothing finite */
    y[1] = 1;
    s.lo = lo;                                                        /* band without hi */
    CHECK_EQ_INT(svg_plot_draw(&d, 0, 0, 400, 300, &p, &s, 1), -1);
    s.lo = NULL;
    CHECK_EQ_INT(svg_plot_draw(&d, 0, 0, 400, 300, &p, &s, 1), 0);    /* one point is enough */
    p.log_x = 1;
    x[1] = 0;                                                         /* no positive x */
    CHECK_EQ_INT(svg_plot_draw(&d, 0, 0, 400, 300, &p, &s, 1), -1);
    svg_doc_end(&d);
    CHECK(wellformed(d.buf));
    svg_doc_free(&d);
}

TEST(svg_png_copy_through_gnuplot_when_installed) {
    double x[3] = {1, 2, 3}, y[3] = {3, 2, 2.5};
    svg_series s = {.label = "a_b \"q\"", .x = x, .y = y, .n = 3, .dash = "6 3"};
    svg_plot p = svg_plot_default();
    p.title = "t";
    p.subtitle = "line two";
    plotpng_panel pn = {&p, &s, 1};
    char path[512], err[256] = "";
    snprintf(path, sizeof path, "%s/plot.png", test_tmp_dir());
    int rc = plotpng_write(path, 300, 200, &pn, 1, err, sizeof err);
    if (plotpng_available()) {
        CHECK_EQ_INT(rc, 0);
        char *t = test_read_text(path);
        CHECK(t && memcmp(t, "\x89PNG", 4) == 0);   /* the PNG signature */
        free(t);
        snprintf(path, sizeof path, "%s/plot.png.gp", test_tmp_dir());
        FILE *f = fopen(path, "r");
        CHECK(f == NULL);                             /* script removed on success */
        if (f) fclose(f);
    } else {
        CHECK_EQ_INT(rc, -1);                         /* no gnuplot: a clear failure */
        CHECK(err[0] != 0);
    }
    snprintf(path, sizeof path, "%s/it's.png", test_tmp_dir());
    CHECK_EQ_INT(plotpng_write(path, 300, 200, &pn, 1, err, sizeof err), -1);
    if (plotpng_available()) CHECK(strstr(err, "quote") != NULL);
}
