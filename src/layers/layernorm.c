/* layernorm.c - layernorm: each pixel's channels normalised by their own
 * mean and (biased) variance, then scaled and shifted per channel:
 * y[c] = (x[c] - mean) / sqrt(var + eps) * weight[c] + bias[c]. This is
 * PyTorch's nn.LayerNorm(C) applied channels-last, as ConvNeXt does between
 * its permutes (and its LayerNorm2d), and ONNX's LayerNormalization over the
 * channel axis. The statistics are summed in double, as batchnorm's. */
#include <math.h>

#include "layers/layer.h"

hfc_status parse_layernorm(layer_parse *p)
{
    loader *L = p->L;
    hfc_node *nd = p->nd;
    size_t dims[1] = {(size_t)p->in[0].c};
    hfc_status st;
    if ((st = get_tensor(L, p->m, p->j, "weight", p->where, 1, 1, dims, &nd->weight, NULL)) ||
        (st = get_tensor(L, p->m, p->j, "bias", p->where, 1, 1, dims, &nd->bias, NULL)))
        return st;
    if ((st = get_eps(p)))
        return st;
    nd->out = p->in[0];
    return HFC_OK;
}

/* The mean and 1 / sqrt(var + eps) of one pixel's c channels. */
static void moments(const float *x, int c, float eps, double *mean, double *inv)
{
    double s = 0, ss = 0;
    for (int k = 0; k < c; k++)
        s += x[k];
    *mean = s / c;
    for (int k = 0; k < c; k++) {
        double d = x[k] - *mean;
        ss += d * d;
    }
    *inv = 1.0 / sqrt(ss / c + eps);
}

void forward_layernorm(const step_run *r)
{
    const hfc_node *nd = r->s->node;
    const int c = r->x[0].c;
    const size_t count = pixels_of(&r->x[0]);
    for (size_t p = 0; p < count; p++) {
        const float *x = r->x[0].data + p * c;
        float *y = r->y.data + p * c;
        double mean, inv;
        moments(x, c, nd->eps, &mean, &inv);
        for (int k = 0; k < c; k++) {
            float v = (float)((x[k] - mean) * inv);
            y[k] = v * (nd->weight ? nd->weight[k] : 1.0f) + (nd->bias ? nd->bias[k] : 0.0f);
        }
    }
}

/* With g = dy * weight and xhat the normalised input, per pixel:
 * dx = inv * (g - mean(g) - xhat * mean(g * xhat)). */
void backward_layernorm(const step_back *r)
{
    const hfc_node *nd = r->s->node;
    const int c = r->dy.c;
    const size_t count = pixels_of(&r->dy);
    for (size_t p = 0; p < count; p++) {
        const float *x = r->x[0].data + p * c, *dy = r->dy.data + p * c;
        float *dx = r->dx[0].data + p * c;
        double mean, inv, mg = 0, mgx = 0;
        moments(x, c, nd->eps, &mean, &inv);
        for (int k = 0; k < c; k++) {
            double g = dy[k] * (nd->weight ? nd->weight[k] : 1.0);
            mg += g;
            mgx += g * (x[k] - mean) * inv;
        }
        mg /= c;
        mgx /= c;
        for (int k = 0; k < c; k++) {
            double g = dy[k] * (nd->weight ? nd->weight[k] : 1.0);
            dx[k] += (float)(inv * (g - mg - (x[k] - mean) * inv * mgx));
        }
    }
}
