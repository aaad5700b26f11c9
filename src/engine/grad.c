/* engine_grad.c - the backward function of every layer (include/hfc_layers.def):
 * from dy, the gradient of a step's output, add its inputs' gradients into
 * dx (engine_internal.h, step_back). Only for engines planned with
 * gradients: nothing is fused, every value has its own buffer, BatchNorm is
 * not folded (its step holds scale and shift). PyTorch's conventions at the
 * kinks: ReLU'(0) = 0, ReLU6' is 1 on (0, 6) only, max-pool routes to the
 * first maximum in scan order. */
#include <cblas.h>
#include <float.h>
#include <math.h>
#include <string.h>

#include "engine/internal.h"

static size_t pixels_of(const hfc_tensor *t) { return (size_t)t->n * t->h * t->w; }

void backward_input(const step_back *r)  /* NHWC, normalised -> (n, c, h, w) raw pixels */
{
    const hfc_model *m = r->e->model;
    const int c = r->dy.c;
    const size_t plane = (size_t)r->dy.h * r->dy.w;
    for (int b = 0; b < r->n; b++)
        for (int ch = 0; ch < c; ch++) {
            const float *src = r->dy.data + (size_t)b * plane * c + ch;
            float *dst = r->dpixels + ((size_t)b * c + ch) * plane;
            const float k = m->scale / m->std[ch];
            for (size_t p = 0; p < plane; p++)
                dst[p] = src[p * c] * k;
        }
}

/* dx += col2im(dcol): the inverse of engine_ops.c's im2col, accumulating. */
static void col2im_add(const float *dcol, int kh, int kw, int sh, int sw, int ph, int pw,
                       const hfc_tensor *dy, hfc_tensor *dx)
{
    const size_t c = (size_t)dx->c, k = (size_t)kh * kw * c;
    for (int b = 0; b < dy->n; b++)
        for (int oy = 0; oy < dy->h; oy++)
            for (int ox = 0; ox < dy->w; ox++) {
                const float *src = dcol + (((size_t)b * dy->h + oy) * dy->w + ox) * k;
                for (int ky = 0; ky < kh; ky++) {
                    int iy = oy * sh - ph + ky;
                    for (int kx = 0; kx < kw; kx++, src += c) {
                        int ix = ox * sw - pw + kx;
                        if (iy < 0 || iy >= dx->h || ix < 0 || ix >= dx->w)
                            continue;
                        float *dst = dx->data + (((size_t)b * dx->h + iy) * dx->w + ix) * c;
                        for (size_t q = 0; q < c; q++)
                            dst[q] += src[q];
                    }
                }
            }
}

void backward_conv2d(const step_back *r)
{
    const hfc_node *nd = r->s->node;
    const float *w = r->s->w; /* (cout, kh, kw, cin / groups) */
    const hfc_tensor *dy = &r->dy;
    hfc_tensor dx = r->dx[0];
    float *add_to = r->assign ? NULL : dx.data; /* NULL: dx is written, not added to */
    if (r->s->back == CONV_WINOGRAD || r->s->back == CONV_DIRECT) {
        /* dx += conv(dy, flipped W): plan_backward_convs */
        hfc_conv_extras ex = {NULL, NULL, NULL, 0, add_to, 0};
        if (r->s->back == CONV_WINOGRAD)
            hfc_conv2d_winograd(dy, r->s->wt_back, r->s->chunk, &ex, r->ws->col, &dx);
        else
            hfc_conv2d_direct(dy, r->s->wt_back, nd->kh, nd->kw, 1, 1, nd->ph, nd->pw, &ex,
                              r->ws->col, &dx);
        return;
    }
    if (nd->groups == 1 && nd->dh == 1 && nd->dw == 1) {
        /* dcol (pixels, K) = dy (pixels, cout) W (cout, K), then back to the image */
        const int k = nd->kh * nd->kw * dx.c;
        const int rows = (int)pixels_of(dy);
        const int own = r->s->back == CONV_IM2COL; /* the AVX-512 product, else SGEMM */
        if (nd->kh == 1 && nd->kw == 1 && nd->sh == 1 && nd->sw == 1 && !nd->ph && !nd->pw) {
            if (own)
                hfc_gemm_avx512(dy->data, (size_t)rows, dy->c, w, k, NULL, add_to, 0, dx.data);
            else
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, k, dy->c, 1.0f,
                            dy->data, dy->c, w, k, add_to ? 1.0f : 0.0f, dx.data, k);
            return;
        }
        if (r->assign)
            memset(dx.data, 0, hfc_tensor_size(&dx) * sizeof(float));
        float *dcol = r->ws->col;
        if (own)
            hfc_gemm_avx512(dy->data, (size_t)rows, dy->c, w, k, NULL, NULL, 0, dcol);
        else
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, k, dy->c, 1.0f,
                        dy->data, dy->c, w, k, 0.0f, dcol, k);
        col2im_add(dcol, nd->kh, nd->kw, nd->sh, nd->sw, nd->ph, nd->pw, dy, &dx);
        return;
    }
    if (r->assign)
        memset(dx.data, 0, hfc_tensor_size(&dx) * sizeof(float));
    const int cin_g = dx.c / nd->groups, cout_g = dy->c / nd->groups;
    for (int b = 0; b < dy->n; b++)
        for (int oy = 0; oy < dy->h; oy++)
            for (int ox = 0; ox < dy->w; ox++) {
                const float *g = dy->data + (((size_t)b * dy->h + oy) * dy->w + ox) * dy->c;
                for (int ky = 0; ky < nd->kh; ky++) {
                    int iy = oy * nd->sh - nd->ph + ky * nd->dh;
                    if (iy < 0 || iy >= dx.h)
                        continue;
                    for (int kx = 0; kx < nd->kw; kx++) {
                        int ix = ox * nd->sw - nd->pw + kx * nd->dw;
                        if (ix < 0 || ix >= dx.w)
                            continue;
                        float *d = dx.data + (((size_t)b * dx.h + iy) * dx.w + ix) * dx.c;
                        for (int o = 0; o < dy->c; o++) {
                            const float *wo = w + (((size_t)o * nd->kh + ky) * nd->kw + kx) * cin_g;
                            float *dg = d + (size_t)(o / cout_g) * cin_g;
                            for (int q = 0; q < cin_g; q++)
                                dg[q] += g[o] * wo[q];
                        }
                    }
                }
            }
}

void backward_batchnorm(const step_back *r)
{
    const int c = r->dy.c;
    const size_t count = pixels_of(&r->dy);
    const hfc_node *nd = r->s->node;
    if (!r->e->bn_batch) { /* y = x * scale + shift */
        for (size_t p = 0; p < count; p++)
            for (int k = 0; k < c; k++)
                r->dx[0].data[p * c + k] += r->dy.data[p * c + k] * r->s->w[k];
        return;
    }
    /* Batch statistics: dx = g / sigma * (dy - mean(dy) - xhat * mean(dy * xhat)). */
    double mean[c], var[c], mdy[c], mdyx[c];
    for (int k = 0; k < c; k++)
        mean[k] = var[k] = mdy[k] = mdyx[k] = 0;
    const float *x = r->x[0].data, *dy = r->dy.data;
    for (size_t p = 0; p < count; p++)
        for (int k = 0; k < c; k++)
            mean[k] += x[p * c + k];
    for (int k = 0; k < c; k++)
        mean[k] /= (double)count;
    for (size_t p = 0; p < count; p++)
        for (int k = 0; k < c; k++) {
            double d = x[p * c + k] - mean[k];
            var[k] += d * d;
        }
    for (int k = 0; k < c; k++)
        var[k] = sqrt(var[k] / (double)count + nd->eps); /* now sigma */
    for (size_t p = 0; p < count; p++)
        for (int k = 0; k < c; k++) {
            double xhat = (x[p * c + k] - mean[k]) / var[k];
            mdy[k] += dy[p * c + k];
            mdyx[k] += dy[p * c + k] * xhat;
        }
    for (int k = 0; k < c; k++) {
        mdy[k] /= (double)count;
        mdyx[k] /= (double)count;
    }
    for (size_t p = 0; p < count; p++)
        for (int k = 0; k < c; k++) {
            double xhat = (x[p * c + k] - mean[k]) / var[k];
            double gamma = nd->weight ? nd->weight[k] : 1.0;
            r->dx[0].data[p * c + k] +=
                (float)(gamma / var[k] * (dy[p * c + k] - mdy[k] - xhat * mdyx[k]));
        }
}

/* The derivative of each activation, from its input x and output y. */
__attribute__((always_inline)) static inline float dact(hfc_op op, float x, float y)
{
    switch (op) {
    case HFC_OP_RELU:
        return x > 0.0f ? 1.0f : 0.0f;
    case HFC_OP_RELU6:
        return x > 0.0f && x < 6.0f ? 1.0f : 0.0f;
    case HFC_OP_SIGMOID:
        return y * (1.0f - y);
    case HFC_OP_SILU: {
        float s = hfc_act_sigmoid(x);
        return s * (1.0f + x * (1.0f - s));
    }
    case HFC_OP_HARDSIGMOID:
        return x > -3.0f && x < 3.0f ? 1.0f / 6.0f : 0.0f;
    case HFC_OP_HARDSWISH:
        return x < -3.0f ? 0.0f : x <= 3.0f ? x / 3.0f + 0.5f : 1.0f;
    default:
        return 0.0f;
    }
}

/* dx += dy * f'(x), one loop per activation so that dact's switch folds
 * away and the loop vectorises; built twice, as engine_ops.c's unary_loop
 * (the ReLUs' derivative through a per-value switch was 38% of PGD). */
__attribute__((always_inline)) static inline void
dact_loop(hfc_op op, const float *restrict x, const float *restrict y, const float *restrict dy,
          float *restrict dx, size_t n)
{
    switch (op) {
#define HFC_LAYER(E, name, inputs, cost, since)
#define HFC_UNARY(E, name, since)                                                                 \
    case HFC_OP_##E:                                                                              \
        for (size_t i = 0; i < n; i++)                                                            \
            dx[i] += dy[i] * dact(HFC_OP_##E, x[i], y[i]);                                        \
        break;
#include "hfc_layers.def"
#undef HFC_LAYER
#undef HFC_UNARY
    default:
        break;
    }
}

static void dact_any(hfc_op op, const float *restrict x, const float *restrict y,
                     const float *restrict dy, float *restrict dx, size_t n)
{
    dact_loop(op, x, y, dy, dx, n);
}

__attribute__((target("avx512f,prefer-vector-width=512"))) static void
dact_avx512(hfc_op op, const float *restrict x, const float *restrict y, const float *restrict dy,
            float *restrict dx, size_t n)
{
    dact_loop(op, x, y, dy, dx, n);
}

void backward_unary(const step_back *r)
{
    (hfc_cpu_avx512f() ? dact_avx512 : dact_any)(
        r->s->op, r->x[0].data, r->y.data, r->dy.data, r->dx[0].data, hfc_tensor_size(&r->dy));
}

void backward_affine(const step_back *r)
{
    const size_t n = hfc_tensor_size(&r->dy);
    for (size_t i = 0; i < n; i++)
        r->dx[0].data[i] += r->dy.data[i] * r->s->node->scale;
}

static void backward_pool(const step_back *r, int is_max)
{
    const hfc_node *nd = r->s->node;
    const hfc_tensor *x = &r->x[0], *dy = &r->dy;
    const int c = x->c;
    for (int b = 0; b < dy->n; b++)
        for (int oy = 0; oy < dy->h; oy++)
            for (int ox = 0; ox < dy->w; ox++) {
                const float *g = dy->data + (((size_t)b * dy->h + oy) * dy->w + ox) * c;
                int y0 = oy * nd->sh - nd->ph, x0 = ox * nd->sw - nd->pw;
                int inside = 0;
                for (int ky = 0; ky < nd->kh; ky++)
                    for (int kx = 0; kx < nd->kw; kx++)
                        inside += y0 + ky >= 0 && y0 + ky < x->h && x0 + kx >= 0 && x0 + kx < x->w;
                int hend = y0 + nd->kh < x->h + nd->ph ? y0 + nd->kh : x->h + nd->ph;
                int wend = x0 + nd->kw < x->w + nd->pw ? x0 + nd->kw : x->w + nd->pw;
                float div = (float)(nd->count_include_pad ? (hend - y0) * (wend - x0) : inside);
                for (int ch = 0; ch < c; ch++) {
                    float best = -FLT_MAX;
                    float *target = NULL;
                    for (int ky = 0; ky < nd->kh; ky++) {
                        int iy = y0 + ky;
                        if (iy < 0 || iy >= x->h)
                            continue;
                        for (int kx = 0; kx < nd->kw; kx++) {
                            int ix = x0 + kx;
                            if (ix < 0 || ix >= x->w)
                                continue;
                            size_t at = (((size_t)b * x->h + iy) * x->w + ix) * c + ch;
                            if (!is_max)
                                r->dx[0].data[at] += g[ch] / div;
                            else if (!target || x->data[at] > best) { /* the first maximum */
                                best = x->data[at];
                                target = r->dx[0].data + at;
                            }
                        }
                    }
                    if (is_max && target)
                        *target += g[ch];
                }
            }
}

void backward_maxpool2d(const step_back *r) { backward_pool(r, 1); }
void backward_avgpool2d(const step_back *r) { backward_pool(r, 0); }

void backward_global_avgpool(const step_back *r)
{
    const hfc_tensor *dx = &r->dx[0];
    const size_t plane = (size_t)dx->h * dx->w;
    for (int b = 0; b < dx->n; b++)
        for (size_t p = 0; p < plane; p++)
            for (int k = 0; k < dx->c; k++)
                dx->data[((size_t)b * plane + p) * dx->c + k] +=
                    r->dy.data[(size_t)b * dx->c + k] / (float)plane;
}

void backward_flatten(const step_back *r)  /* (c*h*w) in PyTorch's order -> NHWC */
{
    const hfc_tensor *dx = &r->dx[0];
    const size_t per = (size_t)dx->c * dx->h * dx->w, plane = (size_t)dx->h * dx->w;
    for (int b = 0; b < dx->n; b++)
        for (int k = 0; k < dx->c; k++)
            for (size_t p = 0; p < plane; p++)
                dx->data[(size_t)b * per + p * dx->c + k] += r->dy.data[(size_t)b * per + k * plane + p];
}

void backward_linear(const step_back *r)  /* dx (n, in) += dy (n, out) W (out, in) */
{
    const int in = r->dx[0].c * r->dx[0].h * r->dx[0].w;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, r->n, in, r->dy.c, 1.0f, r->dy.data,
                r->dy.c, r->s->w, in, 1.0f, r->dx[0].data, in);
}

/* add, mul: each side's gradient, summed over the pixels it was broadcast to. */
static void backward_binary(const step_back *r, int is_mul)
{
    const size_t c = (size_t)r->dy.c, pixels = (size_t)r->dy.h * r->dy.w;
    for (int side = 0; side < 2; side++) {
        const hfc_tensor *other = &r->x[1 - side], *d = &r->dx[side];
        const size_t d_pix = (size_t)d->h * d->w, o_pix = (size_t)other->h * other->w;
        for (int b = 0; b < r->n; b++)
            for (size_t p = 0; p < pixels; p++) {
                const float *g = r->dy.data + ((size_t)b * pixels + p) * c;
                const float *o = other->data + ((size_t)b * o_pix + (o_pix == 1 ? 0 : p)) * c;
                float *dst = d->data + ((size_t)b * d_pix + (d_pix == 1 ? 0 : p)) * c;
                for (size_t k = 0; k < c; k++)
                    dst[k] += is_mul ? g[k] * o[k] : g[k];
            }
    }
}

void backward_fused(const step_back *r, const hfc_tensor *dres)
{
    const size_t n = hfc_tensor_size(&r->dy);
    float *restrict dy = r->dy.data;
    const float *restrict y = r->y.data;
    if (r->s->relu == HFC_FUSED_RELU6) /* PyTorch's: 0 < x < 6 */
        for (size_t i = 0; i < n; i++)
            dy[i] = y[i] > 0.0f && y[i] < 6.0f ? dy[i] : 0.0f;
    else if (r->s->relu)
        for (size_t i = 0; i < n; i++)
            dy[i] = y[i] > 0.0f ? dy[i] : 0.0f;
    if (dres) {
        float *restrict d = dres->data;
        for (size_t i = 0; i < n; i++)
            d[i] += dy[i];
    }
}

void backward_add(const step_back *r) { backward_binary(r, 0); }
void backward_mul(const step_back *r) { backward_binary(r, 1); }

void backward_concat(const step_back *r)
{
    const size_t pixels = pixels_of(&r->dy);
    size_t off = 0;
    for (int k = 0; k < r->s->n_in; k++) {
        const size_t c = (size_t)r->dx[k].c;
        for (size_t p = 0; p < pixels; p++)
            for (size_t q = 0; q < c; q++)
                r->dx[k].data[p * c + q] += r->dy.data[p * r->dy.c + off + q];
        off += c;
    }
}

void backward_slice_channels(const step_back *r)
{
    const size_t pixels = pixels_of(&r->dy), start = (size_t)r->s->node->start;
    for (size_t p = 0; p < pixels; p++)
        for (int q = 0; q < r->dy.c; q++)
            r->dx[0].data[p * r->dx[0].c + start + q] += r->dy.data[p * r->dy.c + q];
}

void backward_channel_shuffle(const step_back *r)  /* y[j*g + i] = x[i*per + j] */
{
    const size_t pixels = pixels_of(&r->dy);
    const int c = r->dy.c, g = r->s->node->groups, per = c / g;
    for (size_t p = 0; p < pixels; p++)
        for (int i = 0; i < g; i++)
            for (int j = 0; j < per; j++)
                r->dx[0].data[p * c + i * per + j] += r->dy.data[p * c + j * g + i];
}

void backward_subsample(const step_back *r)
{
    const hfc_tensor *dy = &r->dy, *dx = &r->dx[0];
    const int sh = r->s->node->sh, sw = r->s->node->sw;
    for (int b = 0; b < dy->n; b++)
        for (int oy = 0; oy < dy->h; oy++)
            for (int ox = 0; ox < dy->w; ox++)
                for (int k = 0; k < dy->c; k++)
                    dx->data[(((size_t)b * dx->h + oy * sh) * dx->w + ox * sw) * dx->c + k] +=
                        dy->data[(((size_t)b * dy->h + oy) * dy->w + ox) * dy->c + k];
}

void backward_pad_channels(const step_back *r)
{
    const size_t pixels = pixels_of(&r->dy);
    const int before = r->s->node->before;
    for (size_t p = 0; p < pixels; p++)
        for (int k = 0; k < r->dx[0].c; k++)
            r->dx[0].data[p * r->dx[0].c + k] += r->dy.data[p * r->dy.c + before + k];
}
