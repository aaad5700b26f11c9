/* engine_ops.c - the CNN operations over a group of images (hfc_tensor).
 *
 * Layout is NHWC: the channels of one pixel are adjacent. A convolution is
 * then one GEMM, (pixels, kh*kw*cin) x (kh*kw*cin, cout), whose result is
 * already the NHWC output, and each im2col row is a few contiguous runs of
 * the input. Each op writes its own output buffer and never allocates;
 * `relu` fuses max(y, 0) into the op.
 */
#include <cblas.h>
#include <float.h>
#include <immintrin.h>
#include <string.h>

#include "engine_ops.h"

/* col (n*ho*wo, kh*kw*c): row p holds output pixel p's receptive field in
 * (ky, kx, c) order, zeros where the window hangs over the padding. For one
 * kernel row ky the taps kx that land inside the image form one run, so a
 * row of col is kh copies of up to kw*c adjacent floats. */
static void im2col(const hfc_tensor *x, int kh, int kw, int sh, int sw, int ph, int pw, int ho,
                   int wo, float *col)
{
    const size_t c = (size_t)x->c, k = (size_t)kh * kw * c;
    for (int b = 0; b < x->n; b++)
        for (int oy = 0; oy < ho; oy++)
            for (int ox = 0; ox < wo; ox++) {
                float *dst = col + (((size_t)b * ho + oy) * wo + ox) * k;
                int x0 = ox * sw - pw;
                int lo = x0 < 0 ? -x0 : 0, hi = x->w - x0 < kw ? x->w - x0 : kw;
                for (int ky = 0; ky < kh; ky++, dst += kw * c) {
                    int iy = oy * sh - ph + ky;
                    if (iy < 0 || iy >= x->h || lo >= hi) {
                        memset(dst, 0, kw * c * sizeof *dst);
                        continue;
                    }
                    const float *src = x->data + (((size_t)b * x->h + iy) * x->w + x0 + lo) * c;
                    memset(dst, 0, lo * c * sizeof *dst);
                    memcpy(dst + lo * c, src, (size_t)(hi - lo) * c * sizeof *dst);
                    memset(dst + hi * c, 0, (size_t)(kw - hi) * c * sizeof *dst);
                }
            }
}

/* y[p, c] = max(y[p, c] + bias[c], 0) (or without the max) for every pixel p. */
static void bias_relu(float *y, size_t pixels, int channels, const float *bias, int relu)
{
    for (size_t p = 0; p < pixels; p++, y += channels) {
        if (bias)
            for (int c = 0; c < channels; c++)
                y[c] += bias[c];
        if (relu)
            for (int c = 0; c < channels; c++)
                y[c] = y[c] > 0.0f ? y[c] : 0.0f;
    }
}

void hfc_conv2d(const hfc_tensor *x, const float *w, const float *bias, int kh, int kw,
                int sh, int sw, int ph, int pw, int relu, float *col, hfc_tensor *y)
{
    int k = kh * kw * x->c;
    size_t pixels = (size_t)y->n * y->h * y->w;
    const float *patches = x->data;  /* a 1x1 stride-1 kernel reads the input as it is */
    if (!(kh == 1 && kw == 1 && sh == 1 && sw == 1 && !ph && !pw)) {
        im2col(x, kh, kw, sh, sw, ph, pw, y->h, y->w, col);
        patches = col;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)pixels, y->c, k, 1.0f, patches, k,
                w, k, 0.0f, y->data, y->c);
    bias_relu(y->data, pixels, y->c, bias, relu);
}

void hfc_scale_shift(const hfc_tensor *x, const float *scale, const float *shift, int relu,
                     hfc_tensor *y)
{
    size_t pixels = (size_t)x->n * x->h * x->w;
    const int c = x->c;
    for (size_t p = 0; p < pixels; p++) {
        const float *src = x->data + p * c;
        float *dst = y->data + p * c;
        for (int ch = 0; ch < c; ch++) {
            float v = src[ch] * scale[ch] + shift[ch];
            dst[ch] = relu && v < 0.0f ? 0.0f : v;
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
    const int c = x->c;
    for (int b = 0; b < x->n; b++)
        for (int oy = 0; oy < y->h; oy++)
            for (int ox = 0; ox < y->w; ox++) {
                float *acc = y->data + (((size_t)b * y->h + oy) * y->w + ox) * c;
                int y0 = oy * sh - ph, x0 = ox * sw - pw, inside = 0;
                for (int ch = 0; ch < c; ch++)
                    acc[ch] = is_max ? -FLT_MAX : 0.0f;
                for (int ky = 0; ky < kh; ky++) {
                    int iy = y0 + ky;
                    if (iy < 0 || iy >= x->h)
                        continue;
                    for (int kx = 0; kx < kw; kx++) {
                        int ix = x0 + kx;
                        if (ix < 0 || ix >= x->w)
                            continue;
                        const float *v = x->data + (((size_t)b * x->h + iy) * x->w + ix) * c;
                        if (is_max)
                            for (int ch = 0; ch < c; ch++)
                                acc[ch] = v[ch] > acc[ch] ? v[ch] : acc[ch];
                        else
                            for (int ch = 0; ch < c; ch++)
                                acc[ch] += v[ch];
                        inside++;
                    }
                }
                if (!is_max) {
                    /* PyTorch divides by the window clipped to the padded input. */
                    int hend = y0 + kh < x->h + ph ? y0 + kh : x->h + ph;
                    int wend = x0 + kw < x->w + pw ? x0 + kw : x->w + pw;
                    float div = (float)(count_include_pad ? (hend - y0) * (wend - x0) : inside);
                    for (int ch = 0; ch < c; ch++)
                        acc[ch] /= div;
                }
            }
}

void hfc_global_avgpool(const hfc_tensor *x, hfc_tensor *y)
{
    const int c = x->c, plane = x->h * x->w;
    for (int b = 0; b < x->n; b++) {
        float *sum = y->data + (size_t)b * c;
        const float *src = x->data + (size_t)b * plane * c;
        for (int ch = 0; ch < c; ch++)
            sum[ch] = 0.0f;
        for (int p = 0; p < plane; p++)
            for (int ch = 0; ch < c; ch++)
                sum[ch] += src[(size_t)p * c + ch];
        for (int ch = 0; ch < c; ch++)
            sum[ch] /= (float)plane;
    }
}

void hfc_flatten(const hfc_tensor *x, hfc_tensor *y)
{
    const size_t plane = (size_t)x->h * x->w, per = plane * x->c;
    for (int b = 0; b < x->n; b++)
        for (size_t p = 0; p < plane; p++)
            for (int ch = 0; ch < x->c; ch++)
                y->data[b * per + ch * plane + p] = x->data[b * per + p * x->c + ch];
}

void hfc_linear(const hfc_tensor *x, const float *w, const float *bias, int relu, hfc_tensor *y)
{
    int in = x->c, out = y->c;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, x->n, out, in, 1.0f, x->data, in, w, in,
                0.0f, y->data, out);
    bias_relu(y->data, (size_t)y->n, out, bias, relu);
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
    const size_t c = (size_t)x->c;
    for (int b = 0; b < x->n; b++)
        for (int oy = 0; oy < y->h; oy++)
            for (int ox = 0; ox < y->w; ox++)
                memcpy(y->data + (((size_t)b * y->h + oy) * y->w + ox) * c,
                       x->data + (((size_t)b * x->h + oy * sh) * x->w + ox * sw) * c,
                       c * sizeof(float));
}

void hfc_pad_channels(const hfc_tensor *x, int before, int after, hfc_tensor *y)
{
    size_t pixels = (size_t)x->n * x->h * x->w;
    for (size_t p = 0; p < pixels; p++) {
        float *dst = y->data + p * y->c;
        memset(dst, 0, before * sizeof(float));
        memcpy(dst + before, x->data + p * x->c, x->c * sizeof(float));
        memset(dst + before + x->c, 0, after * sizeof(float));
    }
}

/* ---- stride-1 convolution without im2col, AVX-512 -------------------------
 * The image is copied once into a zero-bordered buffer; then for a tile of R
 * adjacent output pixels and 16*NB output channels, each kernel row ky is a
 * run of kw*cin adjacent floats per pixel (the pixels' runs overlap), so the
 * tile is accumulated straight from the buffer: per input value, one
 * broadcast and NB fused multiply-adds into registers. */

#define TILE_ATTR __attribute__((target("avx512f"), always_inline)) static inline

TILE_ATTR void conv_tile(const float *a, int cin, size_t row, int kh, int kwc, const float *wt,
                         int cout, const float *bias, int relu, float *out, const int R,
                         const int NB)
{
    __m512 acc[16][4];
    for (int r = 0; r < R; r++)
        for (int j = 0; j < NB; j++)
            acc[r][j] = bias ? _mm512_loadu_ps(bias + 16 * j) : _mm512_setzero_ps();
    for (int ky = 0; ky < kh; ky++) {
        const float *ar = a + ky * row;
        const float *wr = wt + (size_t)ky * kwc * cout;
        for (int t = 0; t < kwc; t++) {
            __m512 w[4];
            for (int j = 0; j < NB; j++)
                w[j] = _mm512_loadu_ps(wr + (size_t)t * cout + 16 * j);
            for (int r = 0; r < R; r++) {
                __m512 v = _mm512_set1_ps(ar[r * cin + t]);
                for (int j = 0; j < NB; j++)
                    acc[r][j] = _mm512_fmadd_ps(v, w[j], acc[r][j]);
            }
        }
    }
    for (int r = 0; r < R; r++)
        for (int j = 0; j < NB; j++) {
            __m512 v = relu ? _mm512_max_ps(acc[r][j], _mm512_setzero_ps()) : acc[r][j];
            _mm512_storeu_ps(out + (size_t)r * cout + 16 * j, v);
        }
}

/* One function per (R, NB) so that every loop above has constant bounds. */
#define CONV_TILE_FN(R, NB)                                                                  \
    __attribute__((target("avx512f"))) static void conv_tile_##R##_##NB(                     \
        const float *a, int cin, size_t row, int kh, int kwc, const float *wt, int cout,    \
        const float *bias, int relu, float *out)                                             \
    {                                                                                        \
        conv_tile(a, cin, row, kh, kwc, wt, cout, bias, relu, out, R, NB);                   \
    }
CONV_TILE_FN(16, 1)
CONV_TILE_FN(8, 2)
CONV_TILE_FN(4, 4)
CONV_TILE_FN(1, 1)
CONV_TILE_FN(1, 2)
CONV_TILE_FN(1, 4)

typedef void (*tile_fn)(const float *, int, size_t, int, int, const float *, int, const float *,
                        int, float *);

int hfc_conv2d_direct_supported(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f");
}

void hfc_conv2d_direct(const hfc_tensor *x, const float *wt, const float *bias, int kh, int kw,
                       int ph, int pw, int relu, float *pad, hfc_tensor *y)
{
    const int cin = x->c, cout = y->c, hp = x->h + 2 * ph, wp = x->w + 2 * pw;
    const size_t row = (size_t)wp * cin;
    memset(pad, 0, (size_t)hp * row * sizeof *pad);
    for (int b = 0; b < x->n; b++) {
        for (int iy = 0; iy < x->h; iy++)  /* the zero border stays from the memset */
            memcpy(pad + (iy + ph) * row + (size_t)pw * cin,
                   x->data + ((size_t)b * x->h + iy) * x->w * cin, (size_t)x->w * cin * sizeof *pad);
        for (int oy = 0; oy < y->h; oy++)
            for (int o0 = 0; o0 < cout;) {
                int nb = (cout - o0) / 16 >= 4 ? 4 : (cout - o0) / 16 >= 2 ? 2 : 1;
                int r_full = 16 / nb;
                tile_fn full = nb == 4 ? conv_tile_4_4 : nb == 2 ? conv_tile_8_2 : conv_tile_16_1;
                tile_fn one = nb == 4 ? conv_tile_1_4 : nb == 2 ? conv_tile_1_2 : conv_tile_1_1;
                const float *bo = bias ? bias + o0 : NULL;
                for (int ox = 0; ox < y->w;) {
                    const float *a = pad + oy * row + (size_t)ox * cin;
                    float *out = y->data + (((size_t)b * y->h + oy) * y->w + ox) * cout + o0;
                    if (y->w - ox >= r_full) {
                        full(a, cin, row, kh, kw * cin, wt + o0, cout, bo, relu, out);
                        ox += r_full;
                    } else {
                        one(a, cin, row, kh, kw * cin, wt + o0, cout, bo, relu, out);
                        ox += 1;
                    }
                }
                o0 += 16 * nb;
            }
    }
}
