/* channels.c - layers that move channels and pixels without arithmetic:
 * concat, slice_channels, channel_shuffle, subsample, pad_channels. */
#include <string.h>

#include "layers/layer.h"

hfc_status parse_concat(layer_parse *p)
{
    long long c = 0;
    for (int k = 0; k < p->nd->n_in; k++) {
        hfc_shape s = p->in[k];
        if (s.h != p->in[0].h || s.w != p->in[0].w)
            return FAIL(p->L, "%s: concat of %dx%d and %dx%d maps (input %d): sizes must match",
                        p->where, p->in[0].h, p->in[0].w, s.h, s.w, k);
        c += s.c;
    }
    if (c > MAX_CHANNELS)
        return FAIL(p->L, "%s: %lld channels after concat (at most %d)", p->where, c, MAX_CHANNELS);
    p->nd->out = (hfc_shape){(int)c, p->in[0].h, p->in[0].w};
    return HFC_OK;
}

hfc_status parse_slice_channels(layer_parse *p)
{
    long long start = 0, stop = 0;
    hfc_status st;
    if ((st = get_int(p->L, p->j, "start", p->where, 0, MAX_CHANNELS, &start)) ||
        (st = get_int(p->L, p->j, "stop", p->where, 0, MAX_CHANNELS, &stop)))
        return st;
    if (start >= stop || stop > p->in[0].c)
        return FAIL(p->L, "%s: channels [%lld, %lld) of %d: need start < stop <= channels",
                    p->where, start, stop, p->in[0].c);
    p->nd->start = (int)start;
    p->nd->stop = (int)stop;
    p->nd->out = (hfc_shape){(int)(stop - start), p->in[0].h, p->in[0].w};
    return HFC_OK;
}

hfc_status parse_channel_shuffle(layer_parse *p)
{
    long long g = 1;
    hfc_status st = get_int(p->L, p->j, "groups", p->where, 1, MAX_CHANNELS, &g);
    if (st)
        return st;
    if (p->in[0].c % g)
        return FAIL(p->L, "%s: %d channels are not divisible by groups = %lld", p->where,
                    p->in[0].c, g);
    p->nd->groups = (int)g;
    p->nd->out = p->in[0];
    return HFC_OK;
}

hfc_status parse_subsample(layer_parse *p)
{
    hfc_node *nd = p->nd;
    hfc_status st = get_pair(p->L, p->j, "stride", p->where, 1, MAX_SIDE, 1, &nd->sh, &nd->sw);
    if (st)
        return st;
    hfc_shape in = p->in[0];
    nd->out = (hfc_shape){in.c, (in.h + nd->sh - 1) / nd->sh, (in.w + nd->sw - 1) / nd->sw};
    return HFC_OK;
}

hfc_status parse_pad_channels(layer_parse *p)
{
    long long before = 0, after = 0;
    hfc_status st;
    if ((st = get_int(p->L, p->j, "before", p->where, 0, MAX_CHANNELS, &before)) ||
        (st = get_int(p->L, p->j, "after", p->where, 0, MAX_CHANNELS, &after)))
        return st;
    if (p->in[0].c + before + after > MAX_CHANNELS)
        return FAIL(p->L, "%s: too many channels after padding", p->where);
    p->nd->before = (int)before;
    p->nd->after = (int)after;
    p->nd->out = (hfc_shape){p->in[0].c + (int)(before + after), p->in[0].h, p->in[0].w};
    return HFC_OK;
}

void forward_concat(const step_run *r)
{
    hfc_tensor y = r->y;
    hfc_concat(r->x, r->s->n_in, &y);
}

void forward_slice_channels(const step_run *r)
{
    hfc_tensor y = r->y;
    hfc_slice_channels(&r->x[0], r->s->node->start, &y);
}

void forward_channel_shuffle(const step_run *r)
{
    hfc_tensor y = r->y;
    hfc_channel_shuffle(&r->x[0], r->s->node->groups, &y);
}

void forward_subsample(const step_run *r)
{
    hfc_tensor y = r->y;
    hfc_subsample(&r->x[0], r->s->node->sh, r->s->node->sw, &y);
}

void forward_pad_channels(const step_run *r)
{
    hfc_tensor y = r->y;
    hfc_pad_channels(&r->x[0], r->s->node->before, r->s->node->after, &y);
}

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
