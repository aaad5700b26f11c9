/* canvas.c - drawing into an RGB buffer and writing it with libpng. */
#include <errno.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "report/canvas.h"

/* The font: printable ASCII 32..126, each glyph 7 rows of 5 pixels
 * ('#' ink, '.' none), rows separated by spaces. */
static const char *const FONT[95] = {
    "..... ..... ..... ..... ..... ..... .....", /*   */
    "..#.. ..#.. ..#.. ..#.. ..#.. ..... ..#..", /* ! */
    ".#.#. .#.#. ..... ..... ..... ..... .....", /* " */
    ".#.#. .#.#. ##### .#.#. ##### .#.#. .#.#.", /* # */
    "..#.. .#### #.#.. .###. ..#.# ####. ..#..", /* $ */
    "##... ##..# ...#. ..#.. .#... #..## ...##", /* % */
    ".##.. #..#. #.#.. .#... #.#.# #..#. .##.#", /* & */
    "..#.. ..#.. ..... ..... ..... ..... .....", /* ' */
    "...#. ..#.. .#... .#... .#... ..#.. ...#.", /* ( */
    ".#... ..#.. ...#. ...#. ...#. ..#.. .#...", /* ) */
    "..... ..#.. #.#.# .###. #.#.# ..#.. .....", /* * */
    "..... ..#.. ..#.. ##### ..#.. ..#.. .....", /* + */
    "..... ..... ..... ..... .##.. ..#.. .#...", /* , */
    "..... ..... ..... ##### ..... ..... .....", /* - */
    "..... ..... ..... ..... ..... .##.. .##..", /* . */
    "..... ....# ...#. ..#.. .#... #.... .....", /* / */
    ".###. #...# #..## #.#.# ##..# #...# .###.", /* 0 */
    "..#.. .##.. ..#.. ..#.. ..#.. ..#.. .###.", /* 1 */
    ".###. #...# ....# ...#. ..#.. .#... #####", /* 2 */
    "##### ...#. ..#.. ...#. ....# #...# .###.", /* 3 */
    "...#. ..##. .#.#. #..#. ##### ...#. ...#.", /* 4 */
    "##### #.... ####. ....# ....# #...# .###.", /* 5 */
    "..##. .#... #.... ####. #...# #...# .###.", /* 6 */
    "##### ....# ...#. ..#.. .#... .#... .#...", /* 7 */
    ".###. #...# #...# .###. #...# #...# .###.", /* 8 */
    ".###. #...# #...# .#### ....# ...#. .##..", /* 9 */
    "..... .##.. .##.. ..... .##.. .##.. .....", /* : */
    "..... .##.. .##.. ..... .##.. ..#.. .#...", /* ; */
    "...#. ..#.. .#... #.... .#... ..#.. ...#.", /* < */
    "..... ..... ##### ..... ##### ..... .....", /* = */
    ".#... ..#.. ...#. ....# ...#. ..#.. .#...", /* > */
    ".###. #...# ....# ...#. ..#.. ..... ..#..", /* ? */
    ".###. #...# ....# .##.# #.#.# #.#.# .###.", /* @ */
    ".###. #...# #...# ##### #...# #...# #...#", /* A */
    "####. #...# #...# ####. #...# #...# ####.", /* B */
    ".###. #...# #.... #.... #.... #...# .###.", /* C */
    "###.. #..#. #...# #...# #...# #..#. ###..", /* D */
    "##### #.... #.... ####. #.... #.... #####", /* E */
    "##### #.... #.... ####. #.... #.... #....", /* F */
    ".###. #...# #.... #.### #...# #...# .####", /* G */
    "#...# #...# #...# ##### #...# #...# #...#", /* H */
    ".###. ..#.. ..#.. ..#.. ..#.. ..#.. .###.", /* I */
    "..### ...#. ...#. ...#. ...#. #..#. .##..", /* J */
    "#...# #..#. #.#.. ##... #.#.. #..#. #...#", /* K */
    "#.... #.... #.... #.... #.... #.... #####", /* L */
    "#...# ##.## #.#.# #.#.# #...# #...# #...#", /* M */
    "#...# #...# ##..# #.#.# #..## #...# #...#", /* N */
    ".###. #...# #...# #...# #...# #...# .###.", /* O */
    "####. #...# #...# ####. #.... #.... #....", /* P */
    ".###. #...# #...# #...# #.#.# #..#. .##.#", /* Q */
    "####. #...# #...# ####. #.#.. #..#. #...#", /* R */
    ".#### #.... #.... .###. ....# ....# ####.", /* S */
    "##### ..#.. ..#.. ..#.. ..#.. ..#.. ..#..", /* T */
    "#...# #...# #...# #...# #...# #...# .###.", /* U */
    "#...# #...# #...# #...# #...# .#.#. ..#..", /* V */
    "#...# #...# #...# #.#.# #.#.# #.#.# .#.#.", /* W */
    "#...# #...# .#.#. ..#.. .#.#. #...# #...#", /* X */
    "#...# #...# .#.#. ..#.. ..#.. ..#.. ..#..", /* Y */
    "##### ....# ...#. ..#.. .#... #.... #####", /* Z */
    ".###. .#... .#... .#... .#... .#... .###.", /* [ */
    "..... #.... .#... ..#.. ...#. ....# .....", /* \ */
    ".###. ...#. ...#. ...#. ...#. ...#. .###.", /* ] */
    "..#.. .#.#. #...# ..... ..... ..... .....", /* ^ */
    "..... ..... ..... ..... ..... ..... #####", /* _ */
    ".#... ..#.. ..... ..... ..... ..... .....", /* ` */
    "..... ..... .###. ....# .#### #...# .####", /* a */
    "#.... #.... #.##. ##..# #...# #...# ####.", /* b */
    "..... ..... .###. #.... #.... #...# .###.", /* c */
    "....# ....# .##.# #..## #...# #...# .####", /* d */
    "..... ..... .###. #...# ##### #.... .###.", /* e */
    "..##. .#..# .#... ###.. .#... .#... .#...", /* f */
    "..... ..... .#### #...# .#### ....# .###.", /* g */
    "#.... #.... #.##. ##..# #...# #...# #...#", /* h */
    "..#.. ..... .##.. ..#.. ..#.. ..#.. .###.", /* i */
    "...#. ..... ..##. ...#. ...#. #..#. .##..", /* j */
    "#.... #.... #..#. #.#.. ##... #.#.. #..#.", /* k */
    ".##.. ..#.. ..#.. ..#.. ..#.. ..#.. .###.", /* l */
    "..... ..... ##.#. #.#.# #.#.# #...# #...#", /* m */
    "..... ..... #.##. ##..# #...# #...# #...#", /* n */
    "..... ..... .###. #...# #...# #...# .###.", /* o */
    "..... ..... ####. #...# ####. #.... #....", /* p */
    "..... ..... .##.# #..## .#### ....# ....#", /* q */
    "..... ..... #.##. ##..# #.... #.... #....", /* r */
    "..... ..... .###. #.... .###. ....# ####.", /* s */
    ".#... .#... ###.. .#... .#... .#..# ..##.", /* t */
    "..... ..... #...# #...# #...# #..## .##.#", /* u */
    "..... ..... #...# #...# #...# .#.#. ..#..", /* v */
    "..... ..... #...# #...# #.#.# #.#.# .#.#.", /* w */
    "..... ..... #...# .#.#. ..#.. .#.#. #...#", /* x */
    "..... ..... #...# #...# .#### ....# .###.", /* y */
    "..... ..... ##### ...#. ..#.. .#... #####", /* z */
    "...#. ..#.. ..#.. .#... ..#.. ..#.. ...#.", /* { */
    "..#.. ..#.. ..#.. ..#.. ..#.. ..#.. ..#..", /* | */
    ".#... ..#.. ..#.. ...#. ..#.. ..#.. .#...", /* } */
    "..... ..... .#... #.#.# ...#. ..... .....", /* ~ */
};

hfc_status canvas_new(hfc_canvas *c, int w, int h, hfc_rgb background, hfc_error *err)
{
    c->w = w;
    c->h = h;
    c->rgb = w > 0 && h > 0 && w <= 16384 && h <= 16384 ? malloc((size_t)w * h * 3) : NULL;
    if (!c->rgb)
        return hfc_fail(err, HFC_ERR_NOMEM, NULL, "cannot make a %dx%d picture", w, h);
    canvas_rect(c, 0, 0, w, h, background);
    return HFC_OK;
}

void canvas_free(hfc_canvas *c)
{
    free(c->rgb);
    c->rgb = NULL;
}

void canvas_pixel(hfc_canvas *c, int x, int y, hfc_rgb color)
{
    if (x < 0 || y < 0 || x >= c->w || y >= c->h)
        return;
    uint8_t *p = c->rgb + ((size_t)y * c->w + x) * 3;
    p[0] = color.r;
    p[1] = color.g;
    p[2] = color.b;
}

void canvas_rect(hfc_canvas *c, int x, int y, int w, int h, hfc_rgb color)
{
    for (int j = y < 0 ? 0 : y; j < y + h && j < c->h; j++)
        for (int i = x < 0 ? 0 : x; i < x + w && i < c->w; i++)
            canvas_pixel(c, i, j, color);
}

void canvas_frame(hfc_canvas *c, int x, int y, int w, int h, int thick, hfc_rgb color)
{
    canvas_rect(c, x, y, w, thick, color);
    canvas_rect(c, x, y + h - thick, w, thick, color);
    canvas_rect(c, x, y, thick, h, color);
    canvas_rect(c, x + w - thick, y, thick, h, color);
}

void canvas_line(hfc_canvas *c, int x0, int y0, int x1, int y1, int thick, int dash,
                 hfc_rgb color)
{
    /* Bresenham; each step stamps a thick x thick square. */
    int dx = abs(x1 - x0), dy = -abs(y1 - y0);
    int sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1;
    int e = dx + dy, step = 0, lo = -(thick - 1) / 2;
    for (;;) {
        if (dash <= 0 || (step / dash) % 2 == 0)
            canvas_rect(c, x0 + lo, y0 + lo, thick, thick, color);
        if (x0 == x1 && y0 == y1)
            break;
        int e2 = 2 * e;
        if (e2 >= dy) {
            e += dy;
            x0 += sx;
        }
        if (e2 <= dx) {
            e += dx;
            y0 += sy;
        }
        step++;
    }
}

void canvas_text(hfc_canvas *c, int x, int y, int scale, hfc_rgb color, const char *s)
{
    for (; *s; s++, x += HFC_GLYPH_W * scale) {
        unsigned ch = (unsigned char)*s;
        const char *g = FONT[(ch >= 32 && ch <= 126 ? ch : '?') - 32];
        for (int row = 0; row < 7; row++)
            for (int col = 0; col < 5; col++)
                if (g[row * 6 + col] == '#')
                    canvas_rect(c, x + col * scale, y + row * scale, scale, scale, color);
    }
}

int canvas_text_width(const char *s, int scale)
{
    int n = (int)strlen(s);
    return n ? (n * HFC_GLYPH_W - 1) * scale : 0;
}

typedef struct {
    hfc_error *err;
    const char *path;
} png_sink;

/* libpng reports errors through this and expects it not to return. */
static void png_error_to_status(png_structp png, png_const_charp msg)
{
    png_sink *sink = png_get_error_ptr(png);
    hfc_fail(sink->err, HFC_ERR_IO, sink->path, "libpng: %s", msg);
    png_longjmp(png, 1);
}

static void png_warning_ignored(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg;
}

hfc_status canvas_write_png(const hfc_canvas *c, const char *path, hfc_error *err)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return hfc_fail(err, HFC_ERR_IO, path, "cannot create: %s", strerror(errno));
    png_sink sink = {err, path};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &sink, png_error_to_status,
                                              png_warning_ignored);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_write_struct(&png, NULL);
        fclose(f);
        unlink(path);
        return hfc_fail(err, HFC_ERR_NOMEM, path, "libpng: out of memory");
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        fclose(f);
        unlink(path);
        return HFC_ERR_IO; /* err was filled by png_error_to_status */
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)c->w, (png_uint_32)c->h, 8, PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_text text = {.compression = PNG_TEXT_COMPRESSION_NONE, .key = "Software",
                     .text = "hfc-eval " HFC_VERSION};
    png_set_text(png, info, &text, 1);
    png_write_info(png, info);
    for (int y = 0; y < c->h; y++)
        png_write_row(png, c->rgb + (size_t)y * c->w * 3);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    if (fclose(f) != 0) {
        int e = errno;
        unlink(path);
        return hfc_fail(err, HFC_ERR_IO, path, "cannot write: %s", strerror(e));
    }
    return HFC_OK;
}
