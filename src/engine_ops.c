/* engine_ops.c - the CNN operations, one image at a time, over hfc_tensor.
 *
 * Layout is CHW (NCHW with the batch outside). Each op writes its own
 * output buffer and never allocates; `relu` fuses max(y, 0) into the op.
 */
#include <cblas.h>
#include <float.h>
#include <string.h>

#include "engine_ops.h"

/* im2col for stride 1 when output rows are as wide as input rows: each
 * kernel tap's row of col is the image shifted by (ky - ph, kx - pw), so it
 * is one memcpy of the rows inside the image, then zeros for the rows above
 * and below and for the columns that wrapped around a row's end. */
static void im2col_same(const hfc_tensor *x, int kh, int kw, int ph, int pw, int ho, float *col,
                        size_t ld)
{
    const int w = x->w;
    for (int c = 0; c < x->c; c++) {
        const float *plane = x->data + (size_t)c * x->h * w;
        for (int ky = 0; ky < kh; ky++)
            for (int kx = 0; kx < kw; kx++) {
                float *row = col + ((size_t)(c * kh + ky) * kw + kx) * ld;
                int dy = ky - ph, dx = kx - pw;
                /* output rows oy with 0 <= oy + dy < h */
                int y0 = dy < 0 ? -dy : 0, y1 = x->h - dy < ho ? x->h - dy : ho;
                if (y1 <= y0) {
                    memset(row, 0, (size_t)ho * w * sizeof *row);
                    continue;
                }
                memset(row, 0, (size_t)y0 * w * sizeof *row);
                memset(row + (size_t)y1 * w, 0, (size_t)(ho - y1) * w * sizeof *row);
                /* out[oy*w + ox] = in[(oy+dy)*w + ox+dx]: one shifted copy,
                 * clipped to the plane at both ends. */
                long first = (long)y0 * w, last = (long)y1 * w;  /* [first, last) in out */
                long shift = (long)dy * w + dx;
                long a = first + shift < 0 ? -shift : first;
                long b = last + shift > (long)x->h * w ? (long)x->h * w - shift : last;
                for (long i = first; i < a; i++)
                    row[i] = 0.0f;
                if (b > a)
                    memcpy(row + a, plane + a + shift, (size_t)(b - a) * sizeof *row);
                for (long i = b > a ? b : a; i < last; i++)
                    row[i] = 0.0f;
                /* columns whose input column ox + dx fell outside the row */
                if (dx != 0)
                    for (int oy = y0; oy < y1; oy++) {
                        float *r = row + (size_t)oy * w;
                        if (dx > 0)
                            for (int ox = w - dx < 0 ? 0 : w - dx; ox < w; ox++)
                                r[ox] = 0.0f;
                        else
                            for (int ox = 0; ox < -dx && ox < w; ox++)
                                r[ox] = 0.0f;
                    }
            }
    }
}

/* col (c*kh*kw, ld) gets, in its first ho*wo columns, the patches of one
 * image x under a kh x kw window. For each kernel tap the output columns
 * whose input column is inside the image form one run [lo, hi): zeros
 * either side, a copy (stride 1: memcpy) in between. */
static void im2col(const hfc_tensor *x, int kh, int kw, int sh, int sw, int ph, int pw,
                   int ho, int wo, float *col, size_t ld)
{
    if (sh == 1 && sw == 1 && wo == x->w) {
        im2col_same(x, kh, kw, ph, pw, ho, col, ld);
        return;
    }
    for (int kx = 0; kx < kw; kx++) {
        /* ox * sw - pw + kx in [0, x->w)  <=>  lo <= ox < hi */
        int lo = pw - kx > 0 ? (pw - kx + sw - 1) / sw : 0;
        int hi = x->w + pw - kx > 0 ? (x->w + pw - kx + sw - 1) / sw : 0;
        hi = hi < wo ? hi : wo;
        lo = lo < hi ? lo : hi;
        for (int c = 0; c < x->c; c++) {
            const float *plane = x->data + (size_t)c * x->h * x->w;
            for (int ky = 0; ky < kh; ky++) {
                float *row = col + ((size_t)(c * kh + ky) * kw + kx) * ld;
                for (int oy = 0; oy < ho; oy++) {
                    int iy = oy * sh - ph + ky;
                    float *dst = row + (size_t)oy * wo;
                    if (iy < 0 || iy >= x->h) {
                        memset(dst, 0, (size_t)wo * sizeof *dst);
                        continue;
                    }
                    const float *src = plane + (size_t)iy * x->w + (lo * sw - pw + kx);
                    for (int ox = 0; ox < lo; ox++)
                        dst[ox] = 0.0f;
                    if (sw == 1)
                        memcpy(dst + lo, src, (size_t)(hi - lo) * sizeof *dst);
                    else
                        for (int ox = lo; ox < hi; ox++)
                            dst[ox] = src[(ox - lo) * sw];
                    for (int ox = hi; ox < wo; ox++)
                        dst[ox] = 0.0f;
                }
            }
        }
    }
}

static void bias_relu(float *y, int channels, int plane, const float *bias, int relu)
{
    for (int c = 0; c < channels; c++) {
        float b = bias ? bias[c] : 0.0f;
        float *p = y + (size_t)c * plane;
        if (relu)
            for (int i = 0; i < plane; i++)
                p[i] = p[i] + b > 0.0f ? p[i] + b : 0.0f;
        else if (bias)
            for (int i = 0; i < plane; i++)
                p[i] += b;
    }
}

void hfc_conv2d(const hfc_tensor *x, const float *w, const float *bias, int kh, int kw,
                int sh, int sw, int ph, int pw, int relu, float *col, float *tmp,
                hfc_tensor *y)
{
    int k = x->c * kh * kw, plane = y->h * y->w;
    size_t n = (size_t)x->n * plane;
    int direct = kh == 1 && kw == 1 && sh == 1 && sw == 1 && !ph && !pw;
    if (x->n == 1) {  /* (cout, k) x (k, plane) lands in y as it is */
        const float *patches = x->data;
        if (!direct) {
            hfc_tensor img = hfc_tensor_image(x, 0);
            im2col(&img, kh, kw, sh, sw, ph, pw, y->h, y->w, col, n);
            patches = col;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, y->c, plane, k, 1.0f, w, k,
                    patches, plane, 0.0f, y->data, plane);
        bias_relu(y->data, y->c, plane, bias, relu);
        return;
    }
    for (int b = 0; b < x->n; b++) {
        hfc_tensor img = hfc_tensor_image(x, b);
        im2col(&img, kh, kw, sh, sw, ph, pw, y->h, y->w, col + (size_t)b * plane, n);
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, y->c, (int)n, k, 1.0f, w, k, col,
                (int)n, 0.0f, tmp, (int)n);
    /* tmp is (cout, n, plane); y is (n, cout, plane): reorder, adding the
     * bias and applying the ReLU on the way. */
    for (int b = 0; b < y->n; b++)
        for (int c = 0; c < y->c; c++) {
            const float *src = tmp + (size_t)c * n + (size_t)b * plane;
            float *dst = y->data + ((size_t)b * y->c + c) * plane;
            float bc = bias ? bias[c] : 0.0f;
            if (relu)
                for (int i = 0; i < plane; i++)
                    dst[i] = src[i] + bc > 0.0f ? src[i] + bc : 0.0f;
            else
                for (int i = 0; i < plane; i++)
                    dst[i] = src[i] + bc;
        }
}

void hfc_scale_shift(const hfc_tensor *x, const float *scale, const float *shift, int relu,
                     hfc_tensor *y)
{
    int plane = x->h * x->w;
    for (int bc = 0; bc < x->n * x->c; bc++) {
        int c = bc % x->c;
        const float *src = x->data + (size_t)bc * plane;
        float *dst = y->data + (size_t)bc * plane;
        for (int i = 0; i < plane; i++) {
            float v = src[i] * scale[c] + shift[c];
            dst[i] = relu && v < 0.0f ? 0.0f : v;
        }
    }
}

void hfc_relu(const hfc_tensor *x, hfc_tensor *y)
{
    size_t n = hfc_tensor_size(x);
    for (size_t i = 0; i < n; i++)
        y->data[i] = x->data[i] > 0.0f ? x->data[i] : 0.0f;
}

void hfc_pool2d(const hfc_tensor *x, int is_max, int kh, int kw, int sh, int sw, int ph, int pw,
                int count_include_pad, hfc_tensor *y)
{
    for (int c = 0; c < x->n * x->c; c++) {
        const float *src = x->data + (size_t)c * x->h * x->w;
        float *dst = y->data + (size_t)c * y->h * y->w;
        for (int oy = 0; oy < y->h; oy++)
            for (int ox = 0; ox < y->w; ox++) {
                int y0 = oy * sh - ph, x0 = ox * sw - pw;
                float acc = is_max ? -FLT_MAX : 0.0f;
                int inside = 0;
                for (int ky = 0; ky < kh; ky++) {
                    int iy = y0 + ky;
                    if (iy < 0 || iy >= x->h)
                        continue;
                    for (int kx = 0; kx < kw; kx++) {
                        int ix = x0 + kx;
                        if (ix < 0 || ix >= x->w)
                            continue;
                        float v = src[(size_t)iy * x->w + ix];
                        acc = is_max ? (v > acc ? v : acc) : acc + v;
                        inside++;
                    }
                }
                if (!is_max) {
                    /* PyTorch divides by the window clipped to the padded input. */
                    int hend = y0 + kh < x->h + ph ? y0 + kh : x->h + ph;
                    int wend = x0 + kw < x->w + pw ? x0 + kw : x->w + pw;
                    int padded = (hend - y0) * (wend - x0);
                    acc /= (float)(count_include_pad ? padded : inside);
                }
                dst[(size_t)oy * y->w + ox] = acc;
            }
    }
}

void hfc_global_avgpool(const hfc_tensor *x, hfc_tensor *y)
{
    int plane = x->h * x->w;
    for (int c = 0; c < x->n * x->c; c++) {
        const float *src = x->data + (size_t)c * plane;
        float sum = 0.0f;
        for (int i = 0; i < plane; i++)
            sum += src[i];
        y->data[c] = sum / (float)plane;
    }
}

void hfc_linear(const hfc_tensor *x, const float *w, const float *bias, int relu, hfc_tensor *y)
{
    int in = x->c, out = y->c;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, x->n, out, in, 1.0f, x->data, in, w, in,
                0.0f, y->data, out);
    for (int b = 0; b < y->n; b++)
        bias_relu(y->data + (size_t)b * out, out, 1, bias, relu);
}

void hfc_add(const hfc_tensor *a, const hfc_tensor *b, int relu, hfc_tensor *y)
{
    size_t n = hfc_tensor_size(a);
    for (size_t i = 0; i < n; i++) {
        float v = a->data[i] + b->data[i];
        y->data[i] = relu && v < 0.0f ? 0.0f : v;
    }
}

void hfc_subsample(const hfc_tensor *x, int sh, int sw, hfc_tensor *y)
{
    for (int c = 0; c < x->n * x->c; c++)
        for (int oy = 0; oy < y->h; oy++)
            for (int ox = 0; ox < y->w; ox++)
                y->data[((size_t)c * y->h + oy) * y->w + ox] =
                    x->data[((size_t)c * x->h + oy * sh) * x->w + ox * sw];
}

void hfc_pad_channels(const hfc_tensor *x, int before, int after, hfc_tensor *y)
{
    size_t plane = (size_t)x->h * x->w;
    for (int b = 0; b < x->n; b++) {
        float *dst = y->data + (size_t)b * y->c * plane;
        memset(dst, 0, before * plane * sizeof(float));
        memcpy(dst + before * plane, x->data + (size_t)b * x->c * plane, x->c * plane * sizeof(float));
        memset(dst + (before + x->c) * plane, 0, after * plane * sizeof(float));
    }
}
