/* linear.c - flatten (PyTorch's (c, h, w) order) and linear (y = W x + b). */
#include <string.h>

#include "layers/layer.h"

hfc_status parse_flatten(layer_parse *p)
{
    hfc_shape in = p->in[0];
    if ((size_t)in.c * in.h * in.w > MAX_IMAGE_ELEMS)
        return FAIL(p->L, "%s: flattened size is too large", p->where);
    p->nd->out = (hfc_shape){in.c * in.h * in.w, 1, 1};
    return HFC_OK;
}

hfc_status parse_linear(layer_parse *p)
{
    loader *L = p->L;
    hfc_shape in = p->in[0];
    if (in.h != 1 || in.w != 1)
        return FAIL(L, "%s: linear needs a flat input, got %dx%dx%d (add a flatten)", p->where,
                    in.c, in.h, in.w);
    size_t wdims[2] = {0, (size_t)in.c};
    const tensor_info *wt = NULL;
    hfc_status st;
    if ((st = get_tensor(L, p->m, p->j, "weight", p->where, 0, 2, wdims, &p->nd->weight, &wt)))
        return st;
    size_t out = wt->dims[0];
    if (out > MAX_CHANNELS)
        return FAIL(L, "%s: %zu outputs (at most %d)", p->where, out, MAX_CHANNELS);
    size_t bdims[1] = {out};
    if ((st = get_tensor(L, p->m, p->j, "bias", p->where, 1, 1, bdims, &p->nd->bias, NULL)))
        return st;
    p->nd->out = (hfc_shape){(int)out, 1, 1};
    return HFC_OK;
}

void forward_flatten(const step_run *r)  /* a step only when its input is not 1x1 */
{
    hfc_tensor y = r->y;
    hfc_flatten(&r->x[0], &y);
}

/* By OpenBLAS, or where the engine laid W^T out in panels (wt: a large
 * layer on a CPU with AVX2) by the tiled product, as a 1x1 conv. */
void forward_linear(const step_run *r)
{
    const hfc_tensor *x = &r->x[0];
    hfc_tensor flat = {r->n, x->c * x->h * x->w, 1, 1, x->data}, y = r->y;
    if (r->s->wt) {
        const hfc_conv_extras ex = {.bias = r->s->b, .relu = r->s->relu};
        hfc_conv2d_direct(&flat, r->s->wt, 1, 1, 1, 1, 0, 0, &ex, NULL, &y);
        return;
    }
    hfc_linear(&flat, r->s->w, r->s->b, r->s->relu, &y);
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
    hfc_tensor dx = r->dx[0];
    dx.c *= dx.h * dx.w;
    dx.h = dx.w = 1;
    hfc_linear_backward(&r->dy, r->s->w, &dx);
}
