/* src/kernels/ops.c - the CNN operations over a group of images (hfc_tensor).
 *
 * Layout is NHWC: the channels of one pixel are adjacent. A convolution is
 * then one GEMM, (pixels, kh*kw*cin) x (kh*kw*cin, cout), whose result is
 * already the NHWC output, and each im2col row is a few contiguous runs of
 * the input. Each op writes its own output buffer and never allocates;
 * `relu` fuses max(y, 0) into the op (the convs also take HFC_FUSED_RELU6,
 * min(max(y, 0), 6)).
 */
#include <cblas.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "kernels/ops.h"

/* For one kernel row ky the taps kx that land inside the image form one
 * run, so a row of col is kh copies of up to kw*c adjacent floats. */
void hfc_im2col(const hfc_tensor *x, int kh, int kw, int sh, int sw, int ph, int pw, int ho,
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

void hfc_taps_inside(int o, int s, int p, int k, int in, int *lo, int *hi)
{
    const int first = o * s - p; /* the input pixel of tap 0 */
    *lo = first < 0 ? -first : 0;
    *hi = in - first < k ? in - first : k;
    if (*hi < *lo)
        *hi = *lo;
}

int hfc_inside_taps_pay(int in_h, int in_w, int kh, int kw, int sh, int sw, int ph, int pw,
                        int out_h, int out_w)
{
    long inside = 0;
    for (int oy = 0; oy < out_h; oy++)
        for (int ox = 0; ox < out_w; ox++) {
            int y0, y1, x0, x1;
            hfc_taps_inside(oy, sh, ph, kh, in_h, &y0, &y1);
            hfc_taps_inside(ox, sw, pw, kw, in_w, &x0, &x1);
            inside += (long)(y1 - y0) * (x1 - x0);
        }
    return 2 * inside <= (long)out_h * out_w * kh * kw;
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
        if (relu == HFC_FUSED_RELU6)
            for (int c = 0; c < channels; c++)
                y[c] = y[c] < 6.0f ? y[c] : 6.0f;
    }
}

void hfc_conv2d(const hfc_tensor *x, const float *w, const float *bias, int kh, int kw,
                int sh, int sw, int ph, int pw, int relu, float *col, hfc_tensor *y)
{
    int k = kh * kw * x->c;
    size_t pixels = (size_t)y->n * y->h * y->w;
    const float *patches = x->data;  /* a 1x1 stride-1 kernel reads the input as it is */
    if (!(kh == 1 && kw == 1 && sh == 1 && sw == 1 && !ph && !pw)) {
        hfc_im2col(x, kh, kw, sh, sw, ph, pw, y->h, y->w, col);
        patches = col;
    }
    /* An SGEMM per image: OpenBLAS takes the rows at the end of a call by
     * other kernels, so an image's values would depend on its neighbours. */
    const size_t per = (size_t)y->h * y->w;
    for (int b = 0; b < y->n; b++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)per, y->c, k, 1.0f,
                    patches + b * per * k, k, w, k, 0.0f, y->data + b * per * y->c, y->c);
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

/* sum a[i] b[i] in eight lanes of partial sums, added in one fixed order. */
static float dot8(const float *a, const float *b, int n)
{
    float acc[8] = {0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++)
            acc[j] += a[i + j] * b[i + j];
    float s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (; i < n; i++)
        s += a[i] * b[i];
    return s;
}

/* Image by image, so that an image's outputs never depend on how many
 * share its call (OpenBLAS takes the rows at the end of a block by other
 * kernels, and the margins' batches shrink as images finish). The large
 * Linear layers run on the tiled product instead (src/engine/steps.c). */
void hfc_linear(const hfc_tensor *x, const float *w, const float *bias, int relu, hfc_tensor *y)
{
    const int in = x->c, out = y->c;
    for (int b = 0; b < x->n; b++)
        for (int o = 0; o < out; o++)
            y->data[(size_t)b * out + o] = dot8(x->data + (size_t)b * in, w + (size_t)o * in, in);
    bias_relu(y->data, (size_t)y->n, out, bias, relu);
}

void hfc_linear_backward(const hfc_tensor *dy, const float *w, hfc_tensor *dx)
{
    const int in = dx->c, out = dy->c;
    for (int b = 0; b < dy->n; b++) {
        float *d = dx->data + (size_t)b * in;
        for (int o = 0; o < out; o++) {
            const float g = dy->data[(size_t)b * out + o], *wo = w + (size_t)o * in;
            for (int i = 0; g != 0.0f && i < in; i++)
                d[i] += g * wo[i];
        }
    }
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


void hfc_batchnorm_batch(const hfc_tensor *x, const float *gamma, const float *beta, float eps,
                         int relu, hfc_tensor *y)
{
    const int c = x->c;
    const size_t count = (size_t)x->n * x->h * x->w;
    double sum[c], sq[c];
    float scale[c], shift[c];
    for (int k = 0; k < c; k++)
        sum[k] = sq[k] = 0;
    for (size_t p = 0; p < count; p++)
        for (int k = 0; k < c; k++)
            sum[k] += x->data[p * c + k];
    for (int k = 0; k < c; k++)
        sum[k] /= (double)count;  /* the mean */
    for (size_t p = 0; p < count; p++)
        for (int k = 0; k < c; k++) {
            double d = x->data[p * c + k] - sum[k];
            sq[k] += d * d;
        }
    for (int k = 0; k < c; k++) {
        double s = (gamma ? gamma[k] : 1.0) / sqrt(sq[k] / (double)count + eps);
        scale[k] = (float)s;
        shift[k] = (float)((beta ? beta[k] : 0.0) - sum[k] * s);
    }
    hfc_scale_shift(x, scale, shift, relu, y);
}

void hfc_affine(const hfc_tensor *x, float scale, float shift, hfc_tensor *y)
{
    size_t n = hfc_tensor_size(x);
    for (size_t i = 0; i < n; i++)
        y->data[i] = x->data[i] * scale + shift;
}

/* hfc_binary's loops, built twice as unary_loop is (squeeze-excitation's
 * multiply is a sixth of EfficientNet's time). */
__attribute__((always_inline)) static inline void binary_loop(const hfc_tensor *a,
                                                              const hfc_tensor *b, int is_mul,
                                                              int relu, hfc_tensor *y)
{
    const size_t c = (size_t)y->c, pixels = (size_t)y->h * y->w;
    const size_t a_pix = (size_t)a->h * a->w, b_pix = (size_t)b->h * b->w;
    for (int img = 0; img < y->n; img++)
        for (size_t p = 0; p < pixels; p++) {
            const float *pa = a->data + ((size_t)img * a_pix + (a_pix == 1 ? 0 : p)) * c;
            const float *pb = b->data + ((size_t)img * b_pix + (b_pix == 1 ? 0 : p)) * c;
            float *py = y->data + ((size_t)img * pixels + p) * c;
            for (size_t k = 0; k < c; k++) {
                float v = is_mul ? pa[k] * pb[k] : pa[k] + pb[k];
                py[k] = relu && v < 0.0f ? 0.0f : v;
            }
        }
}

static void binary_any(const hfc_tensor *a, const hfc_tensor *b, int is_mul, int relu,
                       hfc_tensor *y)
{
    binary_loop(a, b, is_mul, relu, y);
}

__attribute__((target("avx512f,prefer-vector-width=512"))) static void
binary_avx512(const hfc_tensor *a, const hfc_tensor *b, int is_mul, int relu, hfc_tensor *y)
{
    binary_loop(a, b, is_mul, relu, y);
}

void hfc_binary(const hfc_tensor *a, const hfc_tensor *b, int is_mul, int relu, hfc_tensor *y)
{
    (hfc_isa() == HFC_ISA_AVX512 ? binary_avx512 : binary_any)(a, b, is_mul, relu, y);
}

/* `pixels` runs of c floats, src_stride and dst_stride floats apart. The
 * runs of the zoo's concats and slices are short (12 to 116 floats):
 * inlined vector moves, not a memcpy call per pixel (ShuffleNetV2, 1,000
 * images: 0.229 -> 0.223 s, medians of 3 x 10 runs). */
static void copy_runs(float *restrict dst, size_t dst_stride, const float *restrict src,
                      size_t src_stride, size_t pixels, size_t c)
{
    for (size_t p = 0; p < pixels; p++, dst += dst_stride, src += src_stride) {
        size_t j = 0;
        for (; j + 8 <= c; j += 8) /* a constant size: one vector move, no call */
            memcpy(dst + j, src + j, 8 * sizeof(float));
        if (j + 4 <= c) {
            memcpy(dst + j, src + j, 4 * sizeof(float));
            j += 4;
        }
        for (; j < c; j++)
            dst[j] = src[j];
    }
}

void hfc_concat(const hfc_tensor *xs, int n, hfc_tensor *y)
{
    const size_t pixels = (size_t)y->n * y->h * y->w;
    size_t off = 0;
    for (int k = 0; k < n; k++) {
        const size_t c = (size_t)xs[k].c;
        copy_runs(y->data + off, (size_t)y->c, xs[k].data, c, pixels, c);
        off += c;
    }
}

void hfc_slice_channels(const hfc_tensor *x, int start, hfc_tensor *y)
{
    const size_t pixels = (size_t)y->n * y->h * y->w;
    copy_runs(y->data, (size_t)y->c, x->data + start, (size_t)x->c, pixels, (size_t)y->c);
}

void hfc_channel_shuffle(const hfc_tensor *x, int groups, hfc_tensor *y)
{
    const size_t pixels = (size_t)y->n * y->h * y->w;
    const int c = x->c, per = c / groups;
    if (groups == 2) { /* ShuffleNetV2's: an interleave of the halves, which the
                          compiler vectorises (the general loop below is scalar) */
        for (size_t p = 0; p < pixels; p++) {
            const float *restrict lo = x->data + p * c, *restrict hi = lo + per;
            float *restrict py = y->data + p * c;
            for (int j = 0; j < per; j++) {
                py[2 * j] = lo[j];
                py[2 * j + 1] = hi[j];
            }
        }
        return;
    }
    for (size_t p = 0; p < pixels; p++) {
        const float *px = x->data + p * c;
        float *py = y->data + p * c;
        for (int i = 0; i < groups; i++)
            for (int j = 0; j < per; j++)
                py[j * groups + i] = px[i * per + j];
    }
}

/* One tap (ky, kx) of a depthwise conv at one pixel: channels contiguous in
 * in, wk (weights as (kh, kw, c)) and out, so the loop vectorises. */
static void depthwise_tap(const float *restrict in, const float *restrict wk, int c,
                          float *restrict out)
{
    for (int k = 0; k < c; k++)
        out[k] += in[k] * wk[k];
}

void hfc_conv2d_grouped(const hfc_tensor *x, const float *w, const float *wt, const float *bias,
                        int kh, int kw, int sh, int sw, int ph, int pw, int dh, int dw, int groups,
                        int relu, hfc_tensor *y)
{
    const int cin_g = x->c / groups, cout_g = y->c / groups;
    for (int img = 0; img < y->n; img++)
        for (int oy = 0; oy < y->h; oy++)
            for (int ox = 0; ox < y->w; ox++) {
                float *out = y->data + (((size_t)img * y->h + oy) * y->w + ox) * y->c;
                for (int o = 0; o < y->c; o++)
                    out[o] = bias ? bias[o] : 0.0f;
                for (int ky = 0; ky < kh; ky++) {
                    int iy = oy * sh - ph + ky * dh;
                    if (iy < 0 || iy >= x->h)
                        continue;
                    for (int kx = 0; kx < kw; kx++) {
                        int ix = ox * sw - pw + kx * dw;
                        if (ix < 0 || ix >= x->w)
                            continue;
                        const float *in = x->data + (((size_t)img * x->h + iy) * x->w + ix) * x->c;
                        if (wt) {
                            depthwise_tap(in, wt + (size_t)(ky * kw + kx) * y->c, y->c, out);
                            continue;
                        }
                        for (int o = 0; o < y->c; o++) {
                            const float *wo = w + (((size_t)o * kh + ky) * kw + kx) * cin_g;
                            const float *ig = in + (size_t)(o / cout_g) * cin_g;
                            float acc = 0.0f;
                            for (int c = 0; c < cin_g; c++)
                                acc += ig[c] * wo[c];
                            out[o] += acc;
                        }
                    }
                }
                if (relu)
                    for (int o = 0; o < y->c; o++)
                        out[o] = out[o] > 0.0f ? out[o] : 0.0f;
                if (relu == HFC_FUSED_RELU6)
                    for (int o = 0; o < y->c; o++)
                        out[o] = out[o] < 6.0f ? out[o] : 6.0f;
            }
}
