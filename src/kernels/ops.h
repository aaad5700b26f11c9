/* kernels/ops.h - the operations over a group of images that layers call (internal).
 * Shapes were checked when the model loaded; these functions trust them. */
#ifndef HFC_ENGINE_OPS_H
#define HFC_ENGINE_OPS_H

#include <stddef.h>

#include "hfc/core.h"

/* A conv's `relu` argument (ex->relu): 0, or the activation it applies as it
 * writes: HFC_FUSED_RELU max(y, 0), HFC_FUSED_RELU6 min(max(y, 0), 6). The
 * other ops take 0 or HFC_FUSED_RELU. */
enum { HFC_FUSED_RELU = 1, HFC_FUSED_RELU6 = 2 };

/* A group of activations: n images of c channels, h x w pixels, stored
 * NHWC, (n, h, w, c) row-major: data[((b*h + y)*w + x)*c + ch]. Borrowed. */
typedef struct {
    int n, c, h, w;
    float *data;
} hfc_tensor;

static inline size_t hfc_tensor_size(const hfc_tensor *t)
{
    return (size_t)t->n * t->c * t->h * t->w;
}

/* y = W (*) x + b with zero padding, as one GEMM for the whole group:
 * (n*y.h*y.w, kh*kw*x.c) x (kh*kw*x.c, y.c). W is (y.c, kh, kw, x.c) -
 * PyTorch's (cout, cin, kh, kw) reordered when the engine is planned.
 * col: scratch of n*y.h*y.w * kh*kw*x.c floats (unused for a 1x1 kernel
 * with stride 1 and no padding). */
void hfc_conv2d(const hfc_tensor *x, const float *w, const float *bias, int kh, int kw,
                int sh, int sw, int ph, int pw, int relu, float *col, hfc_tensor *y);
/* col (n*ho*wo, kh*kw*c): row p holds output pixel p's receptive field in
 * (ky, kx, c) order, zeros where the window hangs over the padding. */
void hfc_im2col(const hfc_tensor *x, int kh, int kw, int sh, int sw, int ph, int pw, int ho,
                int wo, float *col);
/* The tiled kernels (kernels/conv_simd.h, by kernels/tiled.c): the same
 * convolution without im2col or BLAS, on a CPU with AVX-512F or AVX2 + FMA
 * (hfc_isa, src/core/cpu.c, at least HFC_ISA_AVX2; the two give the same
 * floats); the direct one takes any y.c (a last block of fewer than 16
 * channels is masked), Winograd a multiple of 16. Results differ from
 * hfc_conv2d's by rounding only. hfc_tiled_lanes: floats per vector of the
 * set in use (16 or 8; 0 below AVX2). */
int hfc_tiled_lanes(void);
/* What these convs do besides the convolution (src/engine/plan.c decides at
 * planning):
 *   x' = max(x * in_scale + in_shift, 0 if in_relu) per input channel as the
 *        image is read, when in_scale: a BatchNorm (+ ReLU) all of whose
 *        readers are such convs (pre-activation blocks). The zero border
 *        stays zero, as PyTorch pads the BatchNorm's output;
 *   y  = conv(x') + bias + residual, then max(., 0) if relu: residual (NULL
 *        or y's shape) is an Add folded in. */
typedef struct {
    const float *bias;
    const float *in_scale, *in_shift;
    int in_relu;
    const float *residual;
    int relu;
} hfc_conv_extras;
/* The tiled convs' products read their weights B, (k, cols), in panels:
 * the columns in blocks (64 wide while 64 are left, then at most one of 32,
 * one of 16, and the rest), each block's k rows stored together, so that a
 * tile streams its block from consecutive addresses. B[r][c] is at
 * hfc_panel_offset(k, cols, r, c); column c lies in the panel starting at
 * hfc_panel_start(cols, c, &width), `width` wide. */
size_t hfc_panel_offset(int k, int cols, int r, int c);
int hfc_panel_start(int cols, int c, int *width);
/* The width of the panel that starts where `left` columns are left: 64, 32,
 * 16 or the rest under AVX-512; 16 or the rest under AVX2. */
int hfc_panel_width(int left);
/* Any kernel, stride and padding: wt is W as (kh*kw*x.c, y.c) in panels;
 * pad: scratch of (x.h + 2ph) * (x.w + 2pw) * x.c floats, x.n times that
 * for a 1x1 stride-1 conv with ex->in_scale. */
void hfc_conv2d_direct(const hfc_tensor *x, const float *wt, int kh, int kw, int sh, int sw,
                       int ph, int pw, const hfc_conv_extras *ex, float *pad, hfc_tensor *y);
/* 3x3, stride 1, padding 1, y.h and y.w of 4 or more, by Winograd
 * F(4x4, 3x3): u from hfc_winograd_weights, 36 * cin * cout floats (36
 * (cin, cout) matrices in panels), from W as (cout, 3, 3, cin). The
 * products run on `chunk` images at a time (more rows per weight load when
 * an image has few tiles); scratch: of hfc_conv2d_winograd_scratch floats.
 * A side that is not a multiple of 4 (ResNet-50's 14 and 7 at 224 x 224)
 * gets a last tile that reaches past it: its inputs there are zeros and
 * its outputs there are not written. */
/* threads: at most that many share the work (the caller's thread one of them). */
void hfc_winograd_weights(const float *w, int cin, int cout, float *u, int threads);
/* The 4x4 output tiles of an h x w map: ceil(h / 4) * ceil(w / 4). */
int hfc_winograd_tiles(int h, int w);
size_t hfc_conv2d_winograd_scratch(int h, int w, int cin, int cout, int chunk);
/* Floats from one transformed plane to the next: a plane plus one cache
 * line, so that one tile's planes do not all fall into the same L1 set
 * when a plane is a multiple of 4 KB (the input transform took 2.2x longer). */
size_t hfc_winograd_plane_stride(int tiles, int c);
void hfc_conv2d_winograd(const hfc_tensor *x, const float *u, int chunk,
                         const hfc_conv_extras *ex, float *scratch, hfc_tensor *y);
/* 3x3, stride 2, padding 1 by phases: per side, the even inputs through tap
 * 1 and the odd ones through taps 0 and 2 by Winograd F(4, 2), 81 instead
 * of 144 multiplies per 4x4 outputs and channel pair (kernels/conv_simd.h).
 * u from hfc_winograd_s2_weights (36 (cin, cout) matrices in panels); y.c
 * a multiple of 16. TRANSPOSED: d/dx of such a conv instead, x being dy and
 * y dx (dx's size given by y), u from the flipped kernel as
 * plan_backward_convs makes it; added to ex->residual (y itself) if not
 * NULL, else written. Scratch: hfc_winograd_s2_scratch(x.h, x.w, x.c, y.c,
 * chunk * tiles), tiles the 4x4 blocks of y (forward) or of x (transposed). */
void hfc_winograd_s2_weights(const float *w, int cin, int cout, float *u, int threads);
size_t hfc_winograd_s2_scratch(int h, int w, int cin, int cout, int tiles);
void hfc_conv2d_winograd_s2(const hfc_tensor *x, const float *u, int chunk, int transposed,
                            const hfc_conv_extras *ex, float *scratch, hfc_tensor *y);
/* y[c] = x[c] * scale[c] + shift[c]: inference BatchNorm after folding
 * scale = gamma / sqrt(var + eps), shift = beta - mean * scale. */
void hfc_scale_shift(const hfc_tensor *x, const float *scale, const float *shift, int relu,
                     hfc_tensor *y);
/* BatchNorm by the statistics of x itself: per channel, mean and biased
 * variance over all of x's n*h*w values (sums in double), then
 * y = (x - mean) / sqrt(var + eps) * gamma + beta (gamma, beta may be NULL). */
void hfc_batchnorm_batch(const hfc_tensor *x, const float *gamma, const float *beta, float eps,
                         int relu, hfc_tensor *y);
/* y = x * scale + shift, scalars */
void hfc_affine(const hfc_tensor *x, float scale, float shift, hfc_tensor *y);
/* y = a + b (is_mul 0) or a * b (1), then max(., 0) if relu; a or b may be
 * (c, 1, 1) per image, broadcast over the other's pixels. */
void hfc_binary(const hfc_tensor *a, const hfc_tensor *b, int is_mul, int relu, hfc_tensor *y);
/* y = the xs stacked along channels, in order */
void hfc_concat(const hfc_tensor *xs, int n, hfc_tensor *y);
/* y = x[start : start + y.c] along channels */
void hfc_slice_channels(const hfc_tensor *x, int start, hfc_tensor *y);
/* PyTorch's x.view(n, g, c/g, h, w).transpose(1, 2).reshape(n, c, h, w):
 * y[j*g + i] = x[i*(c/g) + j] */
void hfc_channel_shuffle(const hfc_tensor *x, int groups, hfc_tensor *y);
/* Any convolution: groups (x.c and y.c divisible by them; depthwise when
 * groups = x.c), dilation dh, dw, zero padding, by direct loops over NHWC
 * (no scratch). w is (y.c, kh, kw, x.c/groups); bias may be NULL. */
/* wt: NULL, or for a depthwise conv (groups = x.c = y.c) its weights as
 * (kh, kw, c), used instead of w so that the loop over channels is contiguous. */
void hfc_conv2d_grouped(const hfc_tensor *x, const float *w, const float *wt, const float *bias,
                        int kh, int kw, int sh, int sw, int ph, int pw, int dh, int dw, int groups,
                        int relu, hfc_tensor *y);
/* Tiled: out (rows, cols) = a (rows, k) b (k, cols), all row-major, + bias
 * (cols) if not NULL, + res (like out) if not NULL (res may be out), then
 * max(., 0) if relu; blocked so that a block of b stays in L1 (any cols).
 * Each value's sum runs over k in the same order whatever rows is. */
void hfc_gemm_tiled(const float *a, size_t rows, int k, const float *b, int cols,
                     const float *bias, const float *res, int relu, float *out);
/* im2col + the same product with the direct conv's wt: for maps of few pixels,
 * where a group's images share each weight read. col: (y.n*y.h*y.w, kh*kw*x.c). */
void hfc_conv2d_im2col_tiled(const hfc_tensor *x, const float *wt, int kh, int kw, int sh,
                             int sw, int ph, int pw, const hfc_conv_extras *ex, float *col,
                             hfc_tensor *y);
/* The taps [*lo, *hi) of a kernel of side k (stride s, padding p) that land
 * inside a side of `in` pixels for output o. */
void hfc_taps_inside(int o, int s, int p, int k, int in, int *lo, int *hi);
/* Whether at most half of a conv's (output pixel, tap) pairs land inside
 * the image: then its im2col product runs a pixel at a time over those
 * taps alone (kernels/conv_simd.h: VGG's 2 x 2 maps, ResNet-50's 1 x 1). */
int hfc_inside_taps_pay(int in_h, int in_w, int kh, int kw, int sh, int sw, int ph, int pw,
                        int out_h, int out_w);
/* The backward on such maps: dx += dy (pixels, cout) w (cout, kh*kw*c)
 * over the taps inside the image only, the tiled product added straight
 * into dx (dx's size given by dx); w is (cout, kh*kw*c) row-major, or in
 * panels (hfc_panel_offset) if PANELS, which needs c a multiple of 64. */
void hfc_dx_inside_taps(const hfc_tensor *dy, const float *w, int panels, int kh, int kw, int sh, int sw,
                        int ph, int pw, hfc_tensor *dx);
/* The same for groups of g input and g output channels, g dividing
 * hfc_tiled_lanes() (kernels/conv_simd.h); wt is W as (kh, kw, g, c):
 * wt[((ky*kw + kx)*g + j)*c + o] = W[o][j][ky][kx] (for g = 1, the depthwise
 * layout above). */
void hfc_conv2d_small_groups(const hfc_tensor *x, const float *wt, int g, int kh, int kw,
                             int sh, int sw, int ph, int pw, int dh, int dw, const float *bias,
                             int relu, hfc_tensor *y);
/* Max (is_max) or average pooling, PyTorch's semantics (floor mode). */
void hfc_pool2d(const hfc_tensor *x, int is_max, int kh, int kw, int sh, int sw, int ph, int pw,
                int count_include_pad, hfc_tensor *y);
/* y[c] = mean over (h, w) of x[c] */
void hfc_global_avgpool(const hfc_tensor *x, hfc_tensor *y);
/* y (n, c*h*w, 1, 1) = x in PyTorch's (c, h, w) order per image */
void hfc_flatten(const hfc_tensor *x, hfc_tensor *y);
/* y = x W^T + b per image, W (y.c, x.c); x and y are vectors (h = w = 1).
 * Each image by the same operations whatever the batch. */
void hfc_linear(const hfc_tensor *x, const float *w, const float *bias, int relu, hfc_tensor *y);
/* dx += dy W per image (its d/dx), likewise. */
void hfc_linear_backward(const hfc_tensor *dy, const float *w, hfc_tensor *dx);
/* y = a + b */
void hfc_add(const hfc_tensor *a, const hfc_tensor *b, int relu, hfc_tensor *y);
/* y = x[:, ::sh, ::sw] */
void hfc_subsample(const hfc_tensor *x, int sh, int sw, hfc_tensor *y);
/* y = [zeros(before); x; zeros(after)] along channels */
void hfc_pad_channels(const hfc_tensor *x, int before, int after, hfc_tensor *y);

#endif
