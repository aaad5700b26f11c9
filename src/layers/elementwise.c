/* elementwise.c - add and mul: the same shape, or one side (c, 1, 1)
 * broadcast over the other's pixels (squeeze-excitation). */
#include <string.h>

#include "layers/layer.h"

/* add, mul: the same shape, or one of them (c, 1, 1) broadcast over the other. */
static hfc_status binary_shape(layer_parse *p)
{
    hfc_shape a = p->in[0], b = p->in[1];
    int same = a.c == b.c && a.h == b.h && a.w == b.w;
    int bcast = a.c == b.c && ((b.h == 1 && b.w == 1) || (a.h == 1 && a.w == 1));
    if (!same && !bcast)
        return FAIL(p->L, "%s: %s of %dx%dx%d and %dx%dx%d (shapes must match, or one be %dx1x1)",
                    p->where, hfc_op_name(p->nd->op), a.c, a.h, a.w, b.c, b.h, b.w, a.c);
    p->nd->out = a.h * a.w >= b.h * b.w ? a : b;
    return HFC_OK;
}

hfc_status parse_add(layer_parse *p) { return binary_shape(p); }

hfc_status parse_mul(layer_parse *p) { return binary_shape(p); }

void forward_add(const step_run *r)
{
    hfc_tensor y = r->y;
    if (r->x[0].h == r->x[1].h && r->x[0].w == r->x[1].w)
        hfc_add(&r->x[0], &r->x[1], r->s->relu, &y);
    else
        hfc_binary(&r->x[0], &r->x[1], 0, r->s->relu, &y);
}

void forward_mul(const step_run *r)
{
    hfc_tensor y = r->y;
    hfc_binary(&r->x[0], &r->x[1], 1, r->s->relu, &y);
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

void backward_add(const step_back *r) { backward_binary(r, 0); }

void backward_mul(const step_back *r) { backward_binary(r, 1); }
