/* batchnorm.c - batchnorm (running statistics folded into scale and shift
 * by the engine, or each group's own statistics with --bn-stats batch) and
 * affine (a scalar scale and shift): parse, forward, backward. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "layers/layer.h"

hfc_status parse_batchnorm(layer_parse *p)
{
    loader *L = p->L;
    hfc_node *nd = p->nd;
    size_t c = (size_t)p->in[0].c, dims[1] = {c};
    hfc_status st;
    if ((st = get_tensor(L, p->m, p->j, "mean", p->where, 0, 1, dims, &nd->mean, NULL)) ||
        (st = get_tensor(L, p->m, p->j, "var", p->where, 0, 1, dims, &nd->var, NULL)) ||
        (st = get_tensor(L, p->m, p->j, "weight", p->where, 1, 1, dims, &nd->weight, NULL)) ||
        (st = get_tensor(L, p->m, p->j, "bias", p->where, 1, 1, dims, &nd->bias, NULL)))
        return st;
    if ((st = get_eps(p)))
        return st;
    for (size_t k = 0; k < c; k++)
        if (nd->var[k] < 0)
            return FAIL(L, "%s: running variance %zu is negative", p->where, k);
    nd->out = p->in[0];
    return HFC_OK;
}

hfc_status parse_affine(layer_parse *p)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(p->j, "scale");
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(p->j, "shift");
    if ((a && !cJSON_IsNumber(a)) || (b && !cJSON_IsNumber(b)) ||
        !isfinite(a ? a->valuedouble : 1) || !isfinite(b ? b->valuedouble : 0) ||
        fabs(a ? a->valuedouble : 1) > 3e38 || fabs(b ? b->valuedouble : 0) > 3e38)
        return FAIL(p->L, "%s: \"scale\" and \"shift\" must be finite numbers", p->where);
    p->nd->scale = a ? (float)a->valuedouble : 1.0f;
    p->nd->shift = b ? (float)b->valuedouble : 0.0f;
    p->nd->out = p->in[0];
    return HFC_OK;
}

void forward_batchnorm(const step_run *r)
{
    hfc_tensor y = r->y;
    const hfc_node *nd = r->s->node;
    if (r->bn_batch)  /* the group is one batch of the statistics */
        hfc_batchnorm_batch(&r->x[0], nd->weight, nd->bias, nd->eps, r->s->relu, &y);
    else
        hfc_scale_shift(&r->x[0], r->s->w, r->s->b, r->s->relu, &y);
}

void forward_affine(const step_run *r)
{
    hfc_tensor y = r->y;
    hfc_affine(&r->x[0], r->s->node->scale, r->s->node->shift, &y);
}

void backward_batchnorm(const step_back *r)
{
    const int c = r->dy.c;
    const size_t count = pixels_of(&r->dy);
    const hfc_node *nd = r->s->node;
    if (!r->bn_batch) { /* y = x * scale + shift */
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

void backward_affine(const step_back *r)
{
    const size_t n = hfc_tensor_size(&r->dy);
    for (size_t i = 0; i < n; i++)
        r->dx[0].data[i] += r->dy.data[i] * r->s->node->scale;
}
