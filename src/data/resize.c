/* resize.c - torchvision's Resize and CenterCrop on PIL images, to the
 * pixel: the size arithmetic of torchvision 0.14 and the BILINEAR resample
 * of Pillow (src/libImaging/Resample.c), whose steps are reproduced here:
 *
 * Per axis, with scale = in / out and filterscale = max(scale, 1) (the
 * antialiasing: the triangle filter widens when shrinking), output x takes
 * the inputs xmin .. xmin + count - 1 around center = (x + 0.5) * scale,
 *   support = filterscale, xmin = max(int(center - support + 0.5), 0),
 *   xmax = min(int(center + support + 0.5), in),
 *   w_i = max(0, 1 - |(i + xmin - center + 0.5) / filterscale|), normalised
 * to sum 1, then as integers round(w * 2^22) (half away from zero). A pass
 * sums 2^21 + sum v_i w_i and keeps bits 22.. clipped to 0..255. The
 * horizontal pass runs first, over the rows the vertical pass will use. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data/image.h"

#define PRECISION_BITS (32 - 8 - 2)

void hfc_resize_size(int h, int w, int s, int *out_h, int *out_w)
{
    int shorter = w <= h ? w : h, longer = w <= h ? h : w;
    int new_long = (int)((double)s * longer / shorter);
    *out_w = w <= h ? s : new_long;
    *out_h = w <= h ? new_long : s;
}

/* The weights of one axis: bounds (out, 2) = xmin, count; kk (out, ksize). */
static int coefficients(int in_size, int out_size, int *bounds, int32_t *kk, int ksize_cap)
{
    double scale = (double)in_size / out_size, filterscale = scale < 1.0 ? 1.0 : scale;
    double support = filterscale; /* the bilinear filter's support is 1 */
    int ksize = (int)ceil(support) * 2 + 1;
    if (ksize > ksize_cap)
        return -1;
    double w[ksize];
    for (int xx = 0; xx < out_size; xx++) {
        double center = (xx + 0.5) * scale, ww = 0.0, ss = 1.0 / filterscale;
        int xmin = (int)(center - support + 0.5), xmax = (int)(center + support + 0.5);
        xmin = xmin < 0 ? 0 : xmin;
        xmax = (xmax > in_size ? in_size : xmax) - xmin;
        for (int x = 0; x < xmax; x++) {
            double t = fabs((x + xmin - center + 0.5) * ss);
            w[x] = t < 1.0 ? 1.0 - t : 0.0;
            ww += w[x];
        }
        for (int x = 0; x < ksize; x++) {
            double k = x < xmax && ww != 0.0 ? w[x] / ww : 0.0;
            kk[(size_t)xx * ksize + x] = (int32_t)(k < 0 ? -0.5 + k * (1 << PRECISION_BITS)
                                                         : 0.5 + k * (1 << PRECISION_BITS));
        }
        bounds[2 * xx] = xmin;
        bounds[2 * xx + 1] = xmax;
    }
    return ksize;
}

static uint8_t clip8(int64_t v)
{
    v >>= PRECISION_BITS;
    return v < 0 ? 0 : v > 255 ? 255 : (uint8_t)v;
}

hfc_status hfc_resize_plane(const uint8_t *in, int h, int w, uint8_t *out, int out_h, int out_w)
{
    if (h == out_h && w == out_w) {
        memcpy(out, in, (size_t)h * w);
        return HFC_OK;
    }
    const int cap_x = (int)ceil((double)w / out_w) * 2 + 3, cap_y = (int)ceil((double)h / out_h) * 2 + 3;
    int *bx = malloc(2 * (size_t)out_w * sizeof *bx), *by = malloc(2 * (size_t)out_h * sizeof *by);
    int32_t *kx = malloc((size_t)out_w * cap_x * sizeof *kx);
    int32_t *ky = malloc((size_t)out_h * cap_y * sizeof *ky);
    uint8_t *tmp = malloc((size_t)h * out_w);
    hfc_status st = bx && by && kx && ky && tmp ? HFC_OK : HFC_ERR_NOMEM;
    int sx = st ? -1 : coefficients(w, out_w, bx, kx, cap_x);
    int sy = st ? -1 : coefficients(h, out_h, by, ky, cap_y);
    if (!st && (sx < 0 || sy < 0))
        st = HFC_ERR_NOMEM;
    if (!st) {
        /* the rows the vertical pass reads */
        int first = by[0], last = by[2 * out_h - 2] + by[2 * out_h - 1];
        const uint8_t *src = in;
        int rows0 = 0;
        if (w != out_w) {
            for (int y = first; y < last; y++)
                for (int xx = 0; xx < out_w; xx++) {
                    const int32_t *k = kx + (size_t)xx * sx;
                    const uint8_t *row = in + (size_t)y * w + bx[2 * xx];
                    int64_t ss = 1 << (PRECISION_BITS - 1);
                    for (int x = 0; x < bx[2 * xx + 1]; x++)
                        ss += (int64_t)row[x] * k[x];
                    tmp[(size_t)(y - first) * out_w + xx] = clip8(ss);
                }
            src = tmp;
            rows0 = first;
        }
        if (h != out_h) {
            for (int yy = 0; yy < out_h; yy++) {
                const int32_t *k = ky + (size_t)yy * sy;
                int ymin = by[2 * yy] - rows0;
                for (int xx = 0; xx < out_w; xx++) {
                    int64_t ss = 1 << (PRECISION_BITS - 1);
                    for (int y = 0; y < by[2 * yy + 1]; y++)
                        ss += (int64_t)src[(size_t)(y + ymin) * out_w + xx] * k[y];
                    out[(size_t)yy * out_w + xx] = clip8(ss);
                }
            }
        } else {
            memcpy(out, src, (size_t)out_h * out_w);
        }
    }
    free(bx), free(by), free(kx), free(ky), free(tmp);
    return st;
}
