/*
 * svg.h — a tiny SVG writer with no dependency, so that `ropegpt compare`,
 * `ropegpt eval` and `ropegpt viz` draw their own figures. Two levels:
 * a document (svg_doc: a growable text buffer plus primitive shapes with
 * escaped text and quoted attributes) and a line plot (svg_plot: title,
 * axis labels, nice ticks, optional log x/y, series with an optional min-max
 * band, reference lines and a legend) drawn into any rectangle of a document.
 * svg_doc_save() writes atomically (io_write_atomic: temp file in the same
 * folder + rename), so a reader never sees half a figure. Nothing here prints or exits; functions
 * report failure through return values and the doc's sticky error flag.
 */
#ifndef ROPEGPT_SVG_H
#define ROPEGPT_SVG_H

#include <stddef.h>

/* Okabe & Ito (2008) colour-blind-safe palette, in an order that puts the
 * colours most visible on white first (yellow last). */
#define SVG_PALETTE_N 8
extern const char *const svg_palette[SVG_PALETTE_N];

typedef struct {
    char *buf;      /* NUL-terminated text of the document so far */
    size_t len, cap;
    int err;        /* sticky: 1 after an allocation failure (or bad use) */
    int next_id;    /* for unique clipPath ids when several plots share a doc */
} svg_doc;

/* Starts a width x height document with a white background. Returns 0, or -1
 * (allocation failure; the doc is then safe to svg_doc_free). */
int svg_doc_begin(svg_doc *d, double width, double height);
/* Closes the root element. Call once, before saving. */
void svg_doc_end(svg_doc *d);
/* Writes the text to path atomically (io_write_atomic: temp file + rename).
 * Returns 0, or -1 with one line in err (may be NULL): I/O error, or the doc
 * ran out of memory while being drawn. The doc is unchanged. */
int svg_doc_save(const svg_doc *d, const char *path, char *err, size_t errlen);
void svg_doc_free(svg_doc *d);

/* Appends text with every XML special character escaped (& < > " '). */
void svg_escape(svg_doc *d, const char *text);
/* A <title> element (the document's accessible name when first in it). */
void svg_title(svg_doc *d, const char *text);

/* Primitive shapes. Colours are CSS strings such as "#0072B2" or "none";
 * dash is a stroke-dasharray ("6 3") or NULL for a solid line. */
void svg_line(svg_doc *d, double x1, double y1, double x2, double y2,
              const char *stroke, double width, const char *dash);
/* Points with a non-finite coordinate split the line into pieces. */
void svg_polyline(svg_doc *d, const double *x, const double *y, int n,
                  const char *stroke, double width, const char *dash);
void svg_polygon(svg_doc *d, const double *x, const double *y, int n,
                 const char *fill, double opacity);
void svg_rect(svg_doc *d, double x, double y, double w, double h,
              const char *stroke, const char *fill, double opacity);
void svg_circle(svg_doc *d, double cx, double cy, double r,
                const char *stroke, const char *fill, double width);
/* A line with a filled triangular head at (x2, y2). */
void svg_arrow(svg_doc *d, double x1, double y1, double x2, double y2,
               const char *color, double width);
/* anchor: "start", "middle" or "end"; rotate in degrees about (x, y);
 * weight 1 for bold. */
void svg_text(svg_doc *d, double x, double y, double size, const char *anchor,
              const char *fill, double rotate, int bold, const char *text);

/* ------------------------------------------------------------ line plots */

typedef struct {
    const char *label;        /* legend text (NULL: not in the legend) */
    const double *x, *y;      /* n points; non-finite y values are gaps */
    const double *lo, *hi;    /* optional band (both or neither), n points */
    int n;
    const char *color;        /* NULL: svg_palette[index % SVG_PALETTE_N] */
    const char *dash;         /* NULL: solid */
    double width;             /* stroke width, 0: 2 */
    int markers;              /* 0: line only, 1: line + a dot per point, 2: dots only */
} svg_series;

typedef struct {
    double value;             /* on the axis named below */
    int vertical;             /* 1: x = value, 0: y = value */
    const char *label;        /* may be NULL */
    const char *color;        /* NULL: grey */
} svg_refline;

typedef struct {
    const char *title;
    const char *subtitle;     /* NULL: none */
    const char *xlabel, *ylabel;
    int log_x, log_y;         /* log10 axes: points <= 0 are skipped */
    /* Axis limits; NaN = from the data (bands included) with a 4% margin.
     * Data outside the limits is clipped at the plot frame. */
    double xmin, xmax, ymin, ymax;
    const svg_refline *refs;
    int n_refs;
    int legend;               /* 0 none, 1 top right, 2 top left, 3 bottom left, 4 bottom right,
                                 5 auto: the corner hiding the fewest points */
    /* Optional fixed x ticks (data units) with their labels (NULL: "%g"),
     * instead of the automatic ones. */
    const double *xticks;
    const char *const *xtick_labels;
    int n_xticks;
} svg_plot;

/* Defaults: no labels, linear axes, automatic limits, legend placed automatically. */
svg_plot svg_plot_default(void);

/* Draws the plot into the rectangle (x, y, w, h) of d: frame, grid, ticks,
 * labels, bands, lines, reference lines, legend. Returns 0, or -1 if there
 * is nothing finite to draw or the arguments are invalid (nothing drawn). */
int svg_plot_draw(svg_doc *d, double x, double y, double w, double h,
                  const svg_plot *p, const svg_series *s, int n_series);

/* One plot as a whole width x height document, saved atomically to path.
 * Returns 0, or -1 with one line in err (may be NULL). */
int svg_plot_write(const char *path, double width, double height,
                   const svg_plot *p, const svg_series *s, int n_series, char *err, size_t errlen);

/* Nice tick positions for a linear axis over [lo, hi] (Heckbert 1990,
 * "Nice numbers for graph labels": steps 1, 2, 5 x 10^k). Writes at most
 * max_ticks values to ticks and returns how many; *step gets the spacing. */
int svg_nice_ticks(double lo, double hi, int target, double *ticks, int max_ticks, double *step);

#endif
