/* report/png.h - where the pictures (src/report/png.c, plots.c) put
 * things, so that tests can find known pixels (tests/test_png.c), and what
 * the two files share. Internal. */
#ifndef HFC_REPORT_PNG_H
#define HFC_REPORT_PNG_H

#include "report/canvas.h"

/* Figure 1 grid: one row per image, columns original | low | high. Each
 * image is upscaled (nearest neighbour) by grid_zoom: its longer side to
 * about GRID_TILE pixels (32 x 32: 4x), never shrunk; `tile` below is that
 * longer side after the zoom. */
#define GRID_TILE 128
#define GRID_BORDER 3                        /* green: correct, red: wrong */
int grid_zoom(int height, int width);
/* Top-left pixel of the image (inside the border) in row `row`, column `col`. */
void grid_tile_origin(int tile, int row, int col, int *x, int *y);
int grid_width(int tile);
int grid_height(int tile, int rows);
/* The high image is shown as 128 + 127 * h / s, s = max(max |h| over the
 * image's three channels, 1), clipped to 0..255: zero is mid-grey. */
uint8_t grid_high_pixel(float h, float s);

/* Spectrum: H x W cells of spectrum_zoom pixels each (about SPECTRUM_SIDE
 * pixels in all; 8 at 32 x 32), the mask's edge drawn on the cell borders
 * in SPECTRUM_EDGE. */
#define SPECTRUM_SIDE 256
int spectrum_zoom(int height, int width);
void spectrum_origin(int *x, int *y);
extern const hfc_rgb SPECTRUM_EDGE;
/* The colour map: t in 0..1, dark to bright. */
hfc_rgb spectrum_colour(double t);

/* Kernels: kernel k of the first convolution drawn as RGB cells of
 * `zoom` pixels each, value 128 + 127 * w / max|w| over that kernel. */
void kernel_origin(int k, int kh, int kw, int *x, int *y, int *zoom);

/* Plot: accuracy (0..1, up) against radius (0..x_max, right). */
#define PLOT_LEFT 70
#define PLOT_TOP 50
#define PLOT_W 440
#define PLOT_H 320
double plot_x_max(const double *radii, int n);
void plot_point(double x_max, double radius, double accuracy, int *x, int *y);
extern const hfc_rgb PLOT_COLOURS[10];  /* model j gets PLOT_COLOURS[j % 10] */

/* Shared by png.c and plots.c. */
#define MARGIN 10
extern const hfc_rgb WHITE, INK, GRID_LINE;
/* DIR/STEM-SUFFIX for model j (STEM-j-SUFFIX when two models share a stem). */
hfc_status model_file(char *out, size_t cap, const char *dir, const hfc_model *const *models,
                      int j, const char *suffix, hfc_error *err);
/* accuracy-vs-radius.png and accuracy-vs-epoch.png (plots.c). */
hfc_status draw_plot(const char *path, const hfc_model *const *models, int n_models,
                     const hfc_mask *masks, int n_radii, const hfc_tally *tallies, hfc_error *err);
hfc_status draw_epoch_plot(const char *path, const hfc_model *const *models, int n_models,
                           const hfc_mask *masks, int n_radii, const hfc_tally *tallies,
                           hfc_error *err);

#endif
