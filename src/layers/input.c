/* input.c - the model's input node: (n, c, h, w) raw pixels in, the model's
 * preprocessing (x * scale - mean[c]) / std[c] applied, NHWC out; backward
 * carries the gradient back to raw pixels. */
#include "layers/layer.h"

hfc_status parse_input(layer_parse *p)
{
    return FAIL(p->L, "%s: \"input\" is the model's input, not a layer", p->where);
}

void forward_input(const step_run *r)  /* (n, c, h, w) pixels -> normalised NHWC */
{
    const hfc_model *m = r->model;
    const hfc_node *nd = r->s->node;
    const int c = nd->out.c;
    const size_t plane = (size_t)nd->out.h * nd->out.w;
    for (int b = 0; b < r->n; b++)
        for (int ch = 0; ch < c; ch++) {
            const float *src = r->pixels + ((size_t)b * c + ch) * plane;
            float *dst = r->y.data + (size_t)b * plane * c + ch;
            for (size_t k = 0; k < plane; k++)
                dst[k * c] = (src[k] * m->scale - m->mean[ch]) / m->std[ch];
        }
}

void backward_input(const step_back *r)  /* NHWC, normalised -> (n, c, h, w) raw pixels */
{
    const hfc_model *m = r->model;
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
