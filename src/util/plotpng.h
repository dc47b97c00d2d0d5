/*
 * plotpng.h — optional PNG copies of the SVG line plots, drawn by gnuplot
 * when it is installed (ropegpt never needs it: the SVG files are the
 * figures). The same svg_plot / svg_series descriptions are turned into a
 * gnuplot data file and script next to the PNG, gnuplot is run on them, and
 * both are removed on success. Nothing here prints or exits.
 */
#ifndef ROPEGPT_PLOTPNG_H
#define ROPEGPT_PLOTPNG_H

#include <stddef.h>

#include "util/svg.h"

/* 1 if a `gnuplot` program is on PATH, else 0. */
int plotpng_available(void);

/* One panel of a figure: a plot and its series. */
typedef struct {
    const svg_plot *plot;
    const svg_series *series;
    int n_series;
} plotpng_panel;

/* Draws n_panels side by side into a width x height PNG at path (pngcairo).
 * Returns 0, or -1 with one line in err (gnuplot missing or failed, a path
 * with a quote character, an I/O error). */
int plotpng_write(const char *path, int width, int height, const plotpng_panel *panels, int n_panels,
                  char *err, size_t errlen);

#endif
