/* canvas.h - an RGB picture in memory, the few drawing ops the figures need
 * (rectangles, lines, a built-in 5x7 font) and a libpng writer. Internal to
 * src/report/png.c and its test. Coordinates are pixels, (0,0) top left;
 * everything drawn is clipped to the canvas. */
#ifndef HFC_CANVAS_H
#define HFC_CANVAS_H

#include <stdint.h>

#include "hfc/report.h"

typedef struct {
    uint8_t r, g, b;
} hfc_rgb;

typedef struct {
    int w, h;
    uint8_t *rgb;  /* (h, w, 3), owned */
} hfc_canvas;

/* A glyph cell is 6x8 pixels at scale 1: 5x7 ink, one column and row of gap. */
#define HFC_GLYPH_W 6
#define HFC_GLYPH_H 8

hfc_status canvas_new(hfc_canvas *c, int w, int h, hfc_rgb background, hfc_error *err);
void canvas_free(hfc_canvas *c);

void canvas_pixel(hfc_canvas *c, int x, int y, hfc_rgb color);
void canvas_rect(hfc_canvas *c, int x, int y, int w, int h, hfc_rgb color);
/* The outline of a w x h box, `thick` pixels wide, drawn inside it. */
void canvas_frame(hfc_canvas *c, int x, int y, int w, int h, int thick, hfc_rgb color);
/* A line `thick` pixels wide; dash > 0 leaves gaps of `dash` pixels every
 * `dash` pixels along the line. */
void canvas_line(hfc_canvas *c, int x0, int y0, int x1, int y1, int thick, int dash,
                 hfc_rgb color);
/* Text with its top-left corner at (x, y); printable ASCII, others as '?'. */
void canvas_text(hfc_canvas *c, int x, int y, int scale, hfc_rgb color, const char *s);
int canvas_text_width(const char *s, int scale);

/* Write c to path as an 8-bit RGB PNG; on failure nothing is left at path. */
hfc_status canvas_write_png(const hfc_canvas *c, const char *path, hfc_error *err);

#endif
