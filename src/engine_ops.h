/* engine_ops.h - the engine's operations over one image (internal).
 * Shapes were checked when the model loaded; these functions trust them. */
#ifndef HFC_ENGINE_OPS_H
#define HFC_ENGINE_OPS_H

#include <stddef.h>

/* A group of activations: (n, c, h, w), row-major. Borrowed data. */
typedef struct {
    int n, c, h, w;
    float *data;
} hfc_tensor;

static inline size_t hfc_tensor_size(const hfc_tensor *t)
{
    return (size_t)t->n * t->c * t->h * t->w;
}

/* Image b of t, as a group of one. */
static inline hfc_tensor hfc_tensor_image(const hfc_tensor *t, int b)
{
    size_t per = (size_t)t->c * t->h * t->w;
    return (hfc_tensor){1, t->c, t->h, t->w, t->data + b * per};
}

/* y = W (*) x + b with zero padding, W (y.c, x.c, kh, kw), as one GEMM for
 * the whole group: (y.c, x.c*kh*kw) x (x.c*kh*kw, n*y.h*y.w).
 * col: scratch of x.c*kh*kw * n*y.h*y.w floats; tmp: scratch of
 * hfc_tensor_size(y) floats (both unused for one image and a 1x1 kernel). */
void hfc_conv2d(const hfc_tensor *x, const float *w, const float *bias, int kh, int kw,
                int sh, int sw, int ph, int pw, int relu, float *col, float *tmp,
                hfc_tensor *y);
/* y[c] = x[c] * scale[c] + shift[c]: inference BatchNorm after folding
 * scale = gamma / sqrt(var + eps), shift = beta - mean * scale. */
void hfc_scale_shift(const hfc_tensor *x, const float *scale, const float *shift, int relu,
                     hfc_tensor *y);
/* y = max(x, 0) */
void hfc_relu(const hfc_tensor *x, hfc_tensor *y);
/* Max (is_max) or average pooling, PyTorch's semantics (floor mode). */
void hfc_pool2d(const hfc_tensor *x, int is_max, int kh, int kw, int sh, int sw, int ph, int pw,
                int count_include_pad, hfc_tensor *y);
/* y[c] = mean over (h, w) of x[c] */
void hfc_global_avgpool(const hfc_tensor *x, hfc_tensor *y);
/* y = x W^T + b per image, W (y.c, x.c); x and y are vectors (h = w = 1). */
void hfc_linear(const hfc_tensor *x, const float *w, const float *bias, int relu, hfc_tensor *y);
/* y = a + b */
void hfc_add(const hfc_tensor *a, const hfc_tensor *b, int relu, hfc_tensor *y);
/* y = x[:, ::sh, ::sw] */
void hfc_subsample(const hfc_tensor *x, int sh, int sw, hfc_tensor *y);
/* y = [zeros(before); x; zeros(after)] along channels */
void hfc_pad_channels(const hfc_tensor *x, int before, int after, hfc_tensor *y);

#endif
