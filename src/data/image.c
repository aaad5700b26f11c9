/* image.c - one image file to planes: PNG through libpng, JPEG through
 * libjpeg (libjpeg-turbo on Debian, the decoder PIL itself uses: the same
 * default islow DCT and fancy upsampling give the same pixels), then the
 * channel conversion and torchvision's Resize / CenterCrop (resize.c).
 * Both decoders read from memory (the fuzzer feeds them directly) and
 * report errors through longjmp into one line naming the file. */
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h> /* after stdio.h: it needs FILE and size_t */
#include <png.h>

#include "data/image.h"

/* Pillow's limit on decompression bombs (2 x MAX_IMAGE_PIXELS). */
#define MAX_PIXELS ((size_t)178956970)

/* ------------------------------------------------------------------ PNG */

typedef struct {
    const uint8_t *data;
    size_t len, at;
    char why[200];
    jmp_buf jump;
} png_source;

static void png_read_mem(png_structp png, png_bytep out, size_t n)
{
    png_source *s = png_get_io_ptr(png);
    if (n > s->len - s->at)
        png_error(png, "the file ends early (truncated)");
    memcpy(out, s->data + s->at, n);
    s->at += n;
}

static void png_fail(png_structp png, png_const_charp msg)
{
    png_source *s = png_get_error_ptr(png);
    snprintf(s->why, sizeof s->why, "%s", msg);
    longjmp(s->jump, 1);
}

static void png_quiet(png_structp png, png_const_charp msg) { (void)png, (void)msg; }

/* Interleaved 8-bit samples of 1 (grey) or 3 (RGB) channels into *px. */
static hfc_status decode_png(const uint8_t *raw, size_t len, const char *path, uint8_t **px,
                             int *ch, int *h, int *w, hfc_error *err)
{
    png_source s;
    memset(&s, 0, sizeof s);
    s.data = raw;
    s.len = len;
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &s, png_fail, png_quiet);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    png_bytep *volatile rows = NULL;
    uint8_t *volatile out = NULL;
    if (!png || !info) {
        png_destroy_read_struct(&png, &info, NULL);
        return hfc_fail(err, HFC_ERR_NOMEM, path, "out of memory for a PNG decoder");
    }
    if (setjmp(s.jump)) {
        png_destroy_read_struct(&png, &info, NULL);
        free(out);
        free(rows);
        return hfc_fail(err, HFC_ERR_DATA, path, "damaged PNG: %s", s.why);
    }
    png_set_read_fn(png, &s, png_read_mem);
    png_set_user_limits(png, HFC_MAX_SIDE * 8, HFC_MAX_SIDE * 8);
    png_read_info(png, info);
    int color = png_get_color_type(png, info);
    png_set_expand(png);            /* palette -> RGB, grey < 8 bits -> 8, tRNS -> alpha */
    png_set_strip_16(png);          /* 16 bits: the high byte */
    png_set_strip_alpha(png);       /* as convert("RGB") drops it */
    if (color == PNG_COLOR_TYPE_PALETTE)
        color = PNG_COLOR_TYPE_RGB;
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    *w = (int)png_get_image_width(png, info);
    *h = (int)png_get_image_height(png, info);
    *ch = (color & PNG_COLOR_MASK_COLOR) ? 3 : 1;
    if ((size_t)*w * *h > MAX_PIXELS)
        png_error(png, "more pixels than a decompression bomb limit of 178956970");
    if (png_get_rowbytes(png, info) != (size_t)*w * *ch)
        png_error(png, "unexpected row layout");
    out = malloc((size_t)*w * *h * *ch);
    rows = malloc((size_t)*h * sizeof *rows);
    if (!out || !rows)
        png_error(png, "out of memory");
    for (int y = 0; y < *h; y++)
        rows[y] = out + (size_t)y * *w * *ch;
    png_read_image(png, rows);
    png_read_end(png, NULL);
    png_destroy_read_struct(&png, &info, NULL);
    free(rows);
    *px = out;
    return HFC_OK;
}

/* ----------------------------------------------------------------- JPEG */

typedef struct {
    struct jpeg_error_mgr mgr;
    jmp_buf jump;
    char why[JMSG_LENGTH_MAX];
} jpeg_errors;

static void jpeg_fail(j_common_ptr cinfo)
{
    jpeg_errors *e = (jpeg_errors *)cinfo->err;
    cinfo->err->format_message(cinfo, e->why);
    longjmp(e->jump, 1);
}

/* A warning (corrupt data that libjpeg would paper over) is an error here:
 * PIL would give an image, but not the file's. */
static void jpeg_warn(j_common_ptr cinfo, int level)
{
    if (level < 0)
        jpeg_fail(cinfo);
}

static hfc_status decode_jpeg(const uint8_t *raw, size_t len, const char *path, uint8_t **px,
                              int *ch, int *h, int *w, hfc_error *err)
{
    struct jpeg_decompress_struct cinfo;
    jpeg_errors e;
    uint8_t *volatile out = NULL;
    cinfo.err = jpeg_std_error(&e.mgr);
    e.mgr.error_exit = jpeg_fail;
    e.mgr.emit_message = jpeg_warn;
    if (setjmp(e.jump)) {
        jpeg_destroy_decompress(&cinfo);
        free(out);
        return hfc_fail(err, HFC_ERR_DATA, path, "damaged JPEG: %s", e.why);
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, raw, (unsigned long)len);
    jpeg_read_header(&cinfo, TRUE);
    if (cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK) {
        snprintf(e.why, sizeof e.why, "CMYK JPEG (only grey and colour ones are read)");
        longjmp(e.jump, 1);
    }
    cinfo.out_color_space = cinfo.num_components == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_start_decompress(&cinfo);
    *w = (int)cinfo.output_width;
    *h = (int)cinfo.output_height;
    *ch = cinfo.output_components;
    if ((size_t)*w * *h > MAX_PIXELS) {
        snprintf(e.why, sizeof e.why, "more pixels than a decompression bomb limit of 178956970");
        longjmp(e.jump, 1);
    }
    out = malloc((size_t)*w * *h * *ch);
    if (!out) {
        snprintf(e.why, sizeof e.why, "out of memory");
        longjmp(e.jump, 1);
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = out + (size_t)cinfo.output_scanline * *w * *ch;
        jpeg_read_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    *px = out;
    return HFC_OK;
}

/* ---------------------------------------------------------------- image */

hfc_status hfc_image_decode(const uint8_t *raw, size_t len, const char *path, int channels,
                            hfc_image *out, hfc_error *err)
{
    memset(out, 0, sizeof *out);
    uint8_t *px = NULL;
    int ch = 0, h = 0, w = 0;
    hfc_status st;
    if (len >= 8 && !memcmp(raw, "\x89PNG\r\n\x1a\n", 8))
        st = decode_png(raw, len, path, &px, &ch, &h, &w, err);
    else if (len >= 3 && raw[0] == 0xFF && raw[1] == 0xD8 && raw[2] == 0xFF)
        st = decode_jpeg(raw, len, path, &px, &ch, &h, &w, err);
    else
        return hfc_fail(err, HFC_ERR_DATA, path, "neither a PNG nor a JPEG (by its first bytes)");
    if (st)
        return st;
    if (h < 1 || w < 1) {
        free(px);
        return hfc_fail(err, HFC_ERR_DATA, path, "an image of no pixels");
    }
    const size_t plane = (size_t)h * w;
    out->planes = malloc(plane * (size_t)channels);
    if (!out->planes) {
        free(px);
        return hfc_fail(err, HFC_ERR_NOMEM, path, "out of memory for a %dx%d image", w, h);
    }
    out->channels = channels;
    out->height = h;
    out->width = w;
    for (size_t p = 0; p < plane; p++) {
        const uint8_t *v = px + p * (size_t)ch;
        if (channels == 1)
            out->planes[p] = ch == 1 ? v[0]
                                     : (uint8_t)((v[0] * 19595u + v[1] * 38470u + v[2] * 7471u +
                                                  0x8000u) >> 16);
        else
            for (int c = 0; c < channels; c++)
                out->planes[(size_t)c * plane + p] = v[ch == 1 ? 0 : c];
    }
    free(px);
    return HFC_OK;
}

/* Python's round() of x / 2 for an integer x: halves to even. */
static int half_to_even(int x)
{
    int q = x >= 0 ? x / 2 : -((-x) / 2);
    return (x % 2 != 0 && q % 2 != 0) ? q + (x > 0 ? 1 : -1) : q;
}

hfc_status hfc_image_transform(hfc_image *im, const hfc_image_plan *plan, const char *path,
                               hfc_error *err)
{
    const int C = im->channels;
    if (plan->resize > 0) {
        int h, w;
        hfc_resize_size(im->height, im->width, plan->resize, &h, &w);
        if (h < 1 || w < 1 || h > HFC_MAX_SIDE * 8 || w > HFC_MAX_SIDE * 8)
            return hfc_fail(err, HFC_ERR_DATA, path, "--resize %d makes this %dx%d image %dx%d",
                            plan->resize, im->width, im->height, w, h);
        uint8_t *planes = malloc((size_t)h * w * C);
        hfc_status st = planes ? HFC_OK : HFC_ERR_NOMEM;
        for (int c = 0; !st && c < C; c++)
            st = hfc_resize_plane(im->planes + (size_t)c * im->height * im->width, im->height,
                                  im->width, planes + (size_t)c * h * w, h, w);
        if (st) {
            free(planes);
            return hfc_fail(err, HFC_ERR_NOMEM, path, "out of memory resizing to %dx%d", w, h);
        }
        free(im->planes);
        im->planes = planes;
        im->height = h;
        im->width = w;
    }
    if (plan->crop > 0) {
        /* torchvision's center_crop: zero padding (left/top half, floor)
         * where the crop is larger, then top = round((H - crop) / 2) */
        const int K = plan->crop, H = im->height, W = im->width;
        int top = K > H ? -((K - H) / 2) : half_to_even(H - K);
        int left = K > W ? -((K - W) / 2) : half_to_even(W - K);
        uint8_t *planes = calloc((size_t)K * K * C, 1);
        if (!planes)
            return hfc_fail(err, HFC_ERR_NOMEM, path, "out of memory for a crop");
        for (int c = 0; c < C; c++)
            for (int y = 0; y < K; y++)
                for (int x = 0; x < K; x++) {
                    int sy = y + top, sx = x + left;
                    if (sy >= 0 && sy < H && sx >= 0 && sx < W)
                        planes[((size_t)c * K + y) * K + x] =
                            im->planes[((size_t)c * H + sy) * W + sx];
                }
        free(im->planes);
        im->planes = planes;
        im->height = im->width = K;
    }
    return HFC_OK;
}
