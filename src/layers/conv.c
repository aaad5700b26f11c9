/* conv.c - conv2d: parse (groups, dilation, padding, stride; weight and
 * bias), forward by the algorithm the engine planned for it (step.path:
 * Winograd, direct, im2col, SGEMM, grouped; kernels in src/kernels/), and
 * d/dx by the planned backward path (the flipped kernel as a forward conv,
 * or the product + col2im). */
#include <cblas.h>
#include <stdio.h>
#include <string.h>

#include "layers/layer.h"

hfc_status parse_conv2d(layer_parse *p)
{
    loader *L = p->L;
    hfc_node *nd = p->nd;
    const char *where = p->where;
    hfc_shape in = p->in[0];
    hfc_status st;
    long long groups = 1;
    if (cJSON_GetObjectItemCaseSensitive(p->j, "groups") &&
        (st = get_int(L, p->j, "groups", where, 1, MAX_CHANNELS, &groups)))
        return st;
    if ((st = get_pair(L, p->j, "stride", where, 1, MAX_SIDE, 1, &nd->sh, &nd->sw)) ||
        (st = get_pair(L, p->j, "padding", where, 0, MAX_SIDE, 0, &nd->ph, &nd->pw)) ||
        (st = get_pair(L, p->j, "dilation", where, 1, MAX_SIDE, 1, &nd->dh, &nd->dw)))
        return st;
    if (L->version < 2 && (groups != 1 || nd->dh != 1 || nd->dw != 1))
        return FAIL(L, "%s: groups and dilation need format version 2", where);
    if (in.c % groups)
        return FAIL(L, "%s: %d input channels are not divisible by groups = %lld", where, in.c,
                    groups);
    nd->groups = (int)groups;
    size_t wdims[4] = {0, (size_t)(in.c / groups), 0, 0};
    const tensor_info *wt = NULL;
    if ((st = get_tensor(L, p->m, p->j, "weight", where, 0, 4, wdims, &nd->weight, &wt)))
        return st;
    if (wt->dims[0] > MAX_CHANNELS || wt->dims[0] % (size_t)groups)
        return FAIL(L, "%s: %zu output channels (at most %d, divisible by groups = %lld)", where,
                    wt->dims[0], MAX_CHANNELS, groups);
    nd->kh = (int)wt->dims[2];
    nd->kw = (int)wt->dims[3];
    long long eh = (long long)nd->dh * (nd->kh - 1) + 1, ew = (long long)nd->dw * (nd->kw - 1) + 1;
    if (in.h + 2 * nd->ph < eh || in.w + 2 * nd->pw < ew)
        return FAIL(L, "%s: kernel %dx%d (dilated %lldx%lld) is larger than the padded input",
                    where, nd->kh, nd->kw, eh, ew);
    size_t bdims[1] = {wt->dims[0]};
    if ((st = get_tensor(L, p->m, p->j, "bias", where, 1, 1, bdims, &nd->bias, NULL)))
        return st;
    nd->out = (hfc_shape){(int)wt->dims[0], (int)((in.h + 2 * nd->ph - eh) / nd->sh + 1),
                          (int)((in.w + 2 * nd->pw - ew) / nd->sw + 1)};
    return HFC_OK;
}

void forward_conv2d(const step_run *r)
{
    const step *s = r->s;
    const hfc_node *nd = s->node;
    hfc_tensor y = r->y;
    hfc_conv_extras ex = {s->b, s->in_scale, s->in_shift, s->in_relu, NULL, s->relu};
    if (s->residual >= 0)
        ex.residual = r->residual;
    switch (s->path) {
    case CONV_WINOGRAD:
        hfc_conv2d_winograd(&r->x[0], s->wt, s->chunk, &ex, r->scratch, &y);
        break;
    case CONV_WINOGRAD_S2:
        hfc_conv2d_winograd_s2(&r->x[0], s->wt, s->chunk, 0, &ex, r->scratch, &y);
        break;
    case CONV_DIRECT:
        hfc_conv2d_direct(&r->x[0], s->wt, nd->kh, nd->kw, nd->sh, nd->sw, nd->ph, nd->pw, &ex,
                          r->scratch, &y);
        break;
    case CONV_GEMM:
        hfc_conv2d(&r->x[0], s->w, s->b, nd->kh, nd->kw, nd->sh, nd->sw, nd->ph, nd->pw, s->relu,
                   r->scratch, &y);
        break;
    case CONV_GROUPED:
        hfc_conv2d_grouped(&r->x[0], s->w, s->wt, s->b, nd->kh, nd->kw, nd->sh, nd->sw, nd->ph,
                           nd->pw, nd->dh, nd->dw, nd->groups, s->relu, &y);
        break;
    case CONV_IM2COL:
        hfc_conv2d_im2col_tiled(&r->x[0], s->wt, nd->kh, nd->kw, nd->sh, nd->sw, nd->ph, nd->pw,
                                 &ex, r->scratch, &y);
        break;
    case CONV_SMALL_GROUPS:
        hfc_conv2d_small_groups(&r->x[0], s->wt, r->x[0].c / nd->groups, nd->kh, nd->kw, nd->sh,
                                  nd->sw, nd->ph, nd->pw, nd->dh, nd->dw, s->b, s->relu, &y);
        break;
    }
}

/* dx += col2im(dcol): the inverse of src/kernels/ops.c's im2col, accumulating.
 * A kernel row's taps inside the image land on adjacent pixels of dx and
 * are adjacent in dcol: one run of (taps) * c floats each (the first conv's
 * 3 channels: 9 floats instead of 3 runs of 3). Each value of dx gets its
 * adds in the same order as a tap at a time would. */
static void col2im_add(const float *dcol, int kh, int kw, int sh, int sw, int ph, int pw,
                       const hfc_tensor *dy, hfc_tensor *dx)
{
    const size_t c = (size_t)dx->c, k = (size_t)kh * kw * c;
    for (int b = 0; b < dy->n; b++)
        for (int oy = 0; oy < dy->h; oy++)
            for (int ox = 0; ox < dy->w; ox++) {
                const float *src = dcol + (((size_t)b * dy->h + oy) * dy->w + ox) * k;
                int x0, x1; /* the taps along x inside the image */
                hfc_taps_inside(ox, sw, pw, kw, dx->w, &x0, &x1);
                for (int ky = 0; ky < kh && x1 > x0; ky++) {
                    int iy = oy * sh - ph + ky;
                    if (iy < 0 || iy >= dx->h)
                        continue;
                    const float *restrict s = src + ((size_t)ky * kw + x0) * c;
                    float *restrict dst =
                        dx->data + (((size_t)b * dx->h + iy) * dx->w + ox * sw - pw + x0) * c;
                    for (size_t q = 0, n = (size_t)(x1 - x0) * c; q < n; q++)
                        dst[q] += s[q];
                }
            }
}

/* out (pixels, k) = dy (pixels, cout) W (cout, k), + add_to (out itself)
 * if not NULL: the tiled product, or an SGEMM per image (OpenBLAS takes the
 * rows at the end of a call by other kernels: an image's gradient would
 * depend on its neighbours). */
static void times_weights(const step_back *r, const hfc_tensor *dy, const float *w, int k,
                          const float *add_to, float *out)
{
    if (r->s->back == CONV_IM2COL) {
        hfc_gemm_tiled(dy->data, pixels_of(dy), dy->c, w, k, NULL, add_to, 0, out);
        return;
    }
    const size_t per = (size_t)dy->h * dy->w;
    for (int b = 0; b < dy->n; b++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)per, k, dy->c, 1.0f,
                    dy->data + b * per * dy->c, dy->c, w, k, add_to ? 1.0f : 0.0f,
                    out + b * per * k, k);
}

void backward_conv2d(const step_back *r)
{
    const hfc_node *nd = r->s->node;
    const float *w = r->s->w; /* (cout, kh, kw, cin / groups) */
    const hfc_tensor *dy = &r->dy;
    hfc_tensor dx = r->dx[0];
    float *add_to = r->assign ? NULL : dx.data; /* NULL: dx is written, not added to */
    if (r->s->back == CONV_WINOGRAD_S2) { /* dx += the transposed stride-2 split */
        hfc_conv_extras ex = {NULL, NULL, NULL, 0, add_to, 0};
        hfc_conv2d_winograd_s2(dy, r->s->wt_back, r->s->chunk, 1, &ex, r->scratch, &dx);
        return;
    }
    if (r->s->back == CONV_WINOGRAD || r->s->back == CONV_DIRECT) {
        /* dx += conv(dy, flipped W): plan_backward_convs */
        hfc_conv_extras ex = {NULL, NULL, NULL, 0, add_to, 0};
        if (r->s->back == CONV_WINOGRAD)
            hfc_conv2d_winograd(dy, r->s->wt_back, r->s->chunk, &ex, r->scratch, &dx);
        else
            hfc_conv2d_direct(dy, r->s->wt_back, nd->kh, nd->kw, 1, 1, nd->ph, nd->pw, &ex,
                              r->scratch, &dx);
        return;
    }
    if (nd->groups == 1 && nd->dh == 1 && nd->dw == 1) {
        /* dcol (pixels, K) = dy (pixels, cout) W (cout, K), then back to the image */
        const int k = nd->kh * nd->kw * dx.c;
        if (nd->kh == 1 && nd->kw == 1 && nd->sh == 1 && nd->sw == 1 && !nd->ph && !nd->pw) {
            times_weights(r, dy, w, k, add_to, dx.data);
            return;
        }
        if (r->assign)
            memset(dx.data, 0, hfc_tensor_size(&dx) * sizeof(float));
        if (r->s->back == CONV_IM2COL &&
            hfc_inside_taps_pay(dx.h, dx.w, nd->kh, nd->kw, nd->sh, nd->sw, nd->ph, nd->pw, dy->h,
                                dy->w)) {
            /* W in panels where plan_backward_convs made them */
            hfc_dx_inside_taps(dy, r->s->wt_back ? r->s->wt_back : w, r->s->wt_back != NULL, nd->kh,
                               nd->kw, nd->sh, nd->sw, nd->ph, nd->pw, &dx);
            return;
        }
        times_weights(r, dy, w, k, NULL, r->scratch);
        col2im_add(r->scratch, nd->kh, nd->kw, nd->sh, nd->sw, nd->ph, nd->pw, dy, &dx);
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
