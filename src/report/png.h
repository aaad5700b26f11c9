/* report_png.h - where the pictures of src/report_png.c put things, so that
 * tests can find known pixels (tests/test_png.c). Internal. */
#ifndef HFC_REPORT_PNG_H
#define HFC_REPORT_PNG_H

#include "report/canvas.h"

/* Figure 1 grid: one row per image, columns original | low | high. */
#define GRID_ZOOM 4                          /* nearest-neighbour upscaling */
#define GRID_TILE (HFC_CIFAR_SIDE * GRID_ZOOM) /* 128 */
#define GRID_BORDER 3                        /* green: correct, red: wrong */
/* Top-left pixel of the image (inside the border) in row `row`, column `col`. */
void grid_tile_origin(int row, int col, int *x, int *y);
int grid_width(void);
int grid_height(int rows);
/* The high image is shown as 128 + 127 * h / s, s = max(max |h| over the
 * image's three channels, 1), clipped to 0..255: zero is mid-grey. */
uint8_t grid_high_pixel(float h, float s);

/* Spectrum: 32x32 cells of SPECTRUM_ZOOM pixels, the mask's edge drawn on
 * the cell borders in SPECTRUM_EDGE. */
#define SPECTRUM_ZOOM 8
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

#endif
