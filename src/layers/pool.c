/* pool.c - maxpool2d, avgpool2d (PyTorch's floor mode, or ceil mode since
 * format version 3; max routes its gradient to the first maximum in scan
 * order), global_avgpool and the adaptive pools (PyTorch's windows: output
 * i of n covers inputs floor(i * N / n) .. ceil((i + 1) * N / n) - 1). */
#include <float.h>
#include <string.h>

#include "layers/layer.h"

/* PyTorch's output size: floor((n + 2p - k) / s) + 1, or in ceil mode the
 * ceiling, less one when the last window would start past the input and
 * its left padding. Windows past the edge are clipped (src/kernels/ops.c). */
static int pool_side(int n, int k, int s, int p, int ceil_mode)
{
    int span = n + 2 * p - k;
    int out = (ceil_mode ? (span + s - 1) / s : span / s) + 1;
    if (ceil_mode && (out - 1) * s >= n + p)
        out--;
    return out;
}

static hfc_status pool_shape(layer_parse *p)
{
    loader *L = p->L;
    hfc_node *nd = p->nd;
    hfc_shape in = p->in[0];
    hfc_status st;
    if ((st = get_pair(L, p->j, "kernel", p->where, 1, MAX_SIDE, 0, &nd->kh, &nd->kw)) ||
        (st = get_pair(L, p->j, "stride", p->where, 1, MAX_SIDE, 0, &nd->sh, &nd->sw)) ||
        (st = get_pair(L, p->j, "padding", p->where, 0, MAX_SIDE, 0, &nd->ph, &nd->pw)))
        return st;
    if (nd->kh == 0)
        return FAIL(L, "%s: \"kernel\" is missing", p->where);
    if (nd->sh == 0)
        nd->sh = nd->kh, nd->sw = nd->kw;
    if (2 * nd->ph > nd->kh || 2 * nd->pw > nd->kw)
        return FAIL(L, "%s: padding must be at most half the kernel", p->where);
    if (in.h + 2 * nd->ph < nd->kh || in.w + 2 * nd->pw < nd->kw)
        return FAIL(L, "%s: kernel %dx%d is larger than the padded %dx%d input",
                    p->where, nd->kh, nd->kw, in.h + 2 * nd->ph, in.w + 2 * nd->pw);
    const cJSON *ceil = cJSON_GetObjectItemCaseSensitive(p->j, "ceil_mode");
    if (ceil && !cJSON_IsBool(ceil))
        return FAIL(L, "%s: \"ceil_mode\" must be true or false", p->where);
    if (ceil && cJSON_IsTrue(ceil) && L->version < 3)
        return FAIL(L, "%s: \"ceil_mode\" needs format version 3", p->where);
    int up = ceil && cJSON_IsTrue(ceil);
    nd->out = (hfc_shape){in.c, pool_side(in.h, nd->kh, nd->sh, nd->ph, up),
                          pool_side(in.w, nd->kw, nd->sw, nd->pw, up)};
    return HFC_OK;
}

hfc_status parse_maxpool2d(layer_parse *p) { return pool_shape(p); }

hfc_status parse_avgpool2d(layer_parse *p)
{
    const cJSON *inc = cJSON_GetObjectItemCaseSensitive(p->j, "count_include_pad");
    p->nd->count_include_pad = inc ? cJSON_IsTrue(inc) : 1;
    return pool_shape(p);
}

hfc_status parse_global_avgpool(layer_parse *p)
{
    p->nd->out = (hfc_shape){p->in[0].c, 1, 1};
    return HFC_OK;
}

static void forward_pool(const step_run *r, int is_max)
{
    const hfc_node *nd = r->s->node;
    hfc_tensor y = r->y;
    hfc_pool2d(&r->x[0], is_max, nd->kh, nd->kw, nd->sh, nd->sw, nd->ph, nd->pw,
               nd->count_include_pad, &y);
}

void forward_maxpool2d(const step_run *r) { forward_pool(r, 1); }

void forward_avgpool2d(const step_run *r) { forward_pool(r, 0); }

void forward_global_avgpool(const step_run *r)
{
    hfc_tensor y = r->y;
    hfc_global_avgpool(&r->x[0], &y);
}

/* d/dx of a max-pool: each window's gradient to its first maximum, the
 * channels side by side (contiguous in NHWC: the compiler vectorises the
 * comparisons). */
static void backward_max(const step_back *r)
{
    const hfc_node *nd = r->s->node;
    const hfc_tensor *x = &r->x[0], *dy = &r->dy;
    const int c = x->c;
    float best[c];
    int arg[c]; /* the window's tap of the maximum so far, -1 for none */
    for (int b = 0; b < dy->n; b++)
        for (int oy = 0; oy < dy->h; oy++)
            for (int ox = 0; ox < dy->w; ox++) {
                const float *g = dy->data + (((size_t)b * dy->h + oy) * dy->w + ox) * c;
                const int y0 = oy * nd->sh - nd->ph, x0 = ox * nd->sw - nd->pw;
                for (int ch = 0; ch < c; ch++)
                    arg[ch] = -1, best[ch] = -FLT_MAX;
                for (int ky = 0; ky < nd->kh; ky++) {
                    const int iy = y0 + ky;
                    for (int kx = 0; iy >= 0 && iy < x->h && kx < nd->kw; kx++) {
                        const int ix = x0 + kx, tap = ky * nd->kw + kx;
                        if (ix < 0 || ix >= x->w)
                            continue;
                        const float *xv = x->data + (((size_t)b * x->h + iy) * x->w + ix) * c;
                        for (int ch = 0; ch < c; ch++) { /* strictly greater: the first */
                            const int take = arg[ch] < 0 || xv[ch] > best[ch];
                            best[ch] = take ? xv[ch] : best[ch];
                            arg[ch] = take ? tap : arg[ch];
                        }
                    }
                }
                for (int ky = 0; ky < nd->kh; ky++) { /* the taps again: adding 0 elsewhere */
                    const int iy = y0 + ky;
                    for (int kx = 0; iy >= 0 && iy < x->h && kx < nd->kw; kx++) {
                        const int ix = x0 + kx, tap = ky * nd->kw + kx;
                        if (ix < 0 || ix >= x->w)
                            continue;
                        float *d = r->dx[0].data + (((size_t)b * x->h + iy) * x->w + ix) * c;
                        for (int ch = 0; ch < c; ch++)
                            d[ch] += arg[ch] == tap ? g[ch] : 0.0f;
                    }
                }
            }
}

static void backward_pool(const step_back *r, int is_max)
{
    if (is_max) {
        backward_max(r);
        return;
    }
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
                for (int ky = 0; ky < nd->kh; ky++) {
                    int iy = y0 + ky;
                    if (iy < 0 || iy >= x->h)
                        continue;
                    for (int kx = 0; kx < nd->kw; kx++) {
                        int ix = x0 + kx;
                        if (ix < 0 || ix >= x->w)
                            continue;
                        float *d = r->dx[0].data + (((size_t)b * x->h + iy) * x->w + ix) * c;
                        for (int ch = 0; ch < c; ch++)
                            d[ch] += g[ch] / div;
                    }
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

/* ------------------------------------------------------- adaptive pools */

static hfc_status parse_adaptive(layer_parse *p)
{
    hfc_node *nd = p->nd;
    hfc_status st = get_pair(p->L, p->j, "output", p->where, 1, MAX_SIDE, 0, &nd->kh, &nd->kw);
    if (st)
        return st;
    if (nd->kh == 0)
        return FAIL(p->L, "%s: \"output\" is missing", p->where);
    nd->out = (hfc_shape){p->in[0].c, nd->kh, nd->kw}; /* kh, kw: the output's size */
    return HFC_OK;
}

hfc_status parse_adaptive_avgpool2d(layer_parse *p) { return parse_adaptive(p); }
hfc_status parse_adaptive_maxpool2d(layer_parse *p) { return parse_adaptive(p); }

/* Output i of n over an input of N: [*lo, *hi). */
static void window(int i, int n, int N, int *lo, int *hi)
{
    *lo = (int)((long long)i * N / n);
    *hi = (int)(((long long)(i + 1) * N + n - 1) / n);
}

/* y, or with dx the gradient: each window's mean (or first maximum). */
static void adaptive(const hfc_tensor *x, const hfc_tensor *y, int is_max, const hfc_tensor *dy,
                     const hfc_tensor *dx)
{
    const int c = x->c;
    for (int b = 0; b < x->n; b++)
        for (int oy = 0; oy < y->h; oy++)
            for (int ox = 0; ox < y->w; ox++) {
                int y0, y1, x0, x1;
                window(oy, y->h, x->h, &y0, &y1);
                window(ox, y->w, x->w, &x0, &x1);
                size_t o = (((size_t)b * y->h + oy) * y->w + ox) * c;
                const float div = (float)((y1 - y0) * (x1 - x0));
                for (int ch = 0; ch < c; ch++) {
                    float acc = is_max ? -FLT_MAX : 0.0f;
                    size_t best = 0;
                    for (int iy = y0; iy < y1; iy++)
                        for (int ix = x0; ix < x1; ix++) {
                            size_t at = (((size_t)b * x->h + iy) * x->w + ix) * c + ch;
                            if (dx && !is_max)
                                dx->data[at] += dy->data[o + ch] / div;
                            else if (!is_max)
                                acc += x->data[at];
                            else if (x->data[at] > acc || (iy == y0 && ix == x0)) {
                                acc = x->data[at];
                                best = at;
                            }
                        }
                    if (dx && is_max)
                        dx->data[best] += dy->data[o + ch];
                    else if (!dx)
                        y->data[o + ch] = is_max ? acc : acc / div;
                }
            }
}

void forward_adaptive_avgpool2d(const step_run *r) { adaptive(&r->x[0], &r->y, 0, NULL, NULL); }
void forward_adaptive_maxpool2d(const step_run *r) { adaptive(&r->x[0], &r->y, 1, NULL, NULL); }
void backward_adaptive_avgpool2d(const step_back *r)
{
    adaptive(&r->x[0], &r->dy, 0, &r->dy, &r->dx[0]);
}
void backward_adaptive_maxpool2d(const step_back *r)
{
    adaptive(&r->x[0], &r->dy, 1, &r->dy, &r->dx[0]);
}
