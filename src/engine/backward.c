/* engine/backward.c - input gradients: after a forward pass on a group,
 * every step backwards from the loss's gradient at the logits, each layer's
 * backward_NAME (src/layers/) adding its inputs' gradients, after undoing
 * what a fused step did besides its layer (its ReLU or ReLU6, its residual
 * Add, the BatchNorm + ReLU a conv applied as it read its input).
 * PyTorch's conventions at the kinks: ReLU'(0) = 0, ReLU6' is 1 on (0, 6)
 * only. */
#include <string.h>

#include "engine/internal.h"

void backward_fused(const step_back *r, const hfc_tensor *dres, int dres_fresh)
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
    if (dres && dres_fresh) /* nothing written there yet */
        memcpy(dres->data, dy, n * sizeof *dy);
    else if (dres) {
        float *restrict d = dres->data;
        for (size_t i = 0; i < n; i++)
            d[i] += dy[i];
    }
}

void backward_deferred_bn(const step *s, const hfc_tensor *x, const float *dnorm, hfc_tensor *dx,
                          int assign)
{
    const int c = x->c, relu = s->in_relu;
    const size_t pixels = pixels_of(x);
    const float *restrict sc = s->in_scale, *restrict sh = s->in_shift, *restrict xv = x->data;
    const float *restrict dn = dnorm;
    float *restrict d = dx->data;
    if (assign) /* nothing written yet: start from zero */
        memset(d, 0, pixels * c * sizeof *d);
    for (size_t p = 0; p < pixels; p++, xv += c, dn += c, d += c)
        for (int k = 0; k < c; k++) {
            float v = xv[k] * sc[k]; /* the conv's own rounding: multiply, then add */
            v = v + sh[k];
            float g = dn[k] * sc[k];
            d[k] += relu && !(v > 0.0f) ? 0.0f : g; /* ReLU'(0) = 0, as PyTorch's */
        }
}

static void zero_gradient(const workspace *ws, const hfc_tensor *t, int slot)
{
    memset(t->data, 0, hfc_tensor_size(t) * sizeof(float));
    ws->written[slot] = 1;
}

/* After forward_group: the loss's gradient at the logits, then every step
 * backwards, each adding its inputs' gradients; dpixels gets the input's. */
void backward_group(const hfc_engine *e, const workspace *ws, int n, float *dpixels)
{
    const hfc_model *m = e->model;
    /* A gradient buffer is zeroed just before its first use rather than all
     * at the start (still in cache when it is added to); a conv that is the
     * first to write its input's gradient writes it without zeroing. */
    memset(ws->written, 0, (size_t)e->n_slots);
    ws->written[e->output_slot] = 1; /* the loss's */
    step_back r = {.model = m, .bn_batch = e->bn_batch, .n = n, .scratch = ws->col,
                   .dpixels = dpixels};
    for (int i = e->n_steps - 1; i >= 0; i--) {
        const step *s = &e->steps[i];
        r.s = s;
        r.y = slot_tensor(e, ws->slots, s->out, s->node->out, n);
        r.dy = grad_tensor(e, ws, s->out, s->node->out, n);
        if (!ws->written[s->out]) /* nothing read this value */
            zero_gradient(ws, &r.dy, s->out);
        hfc_tensor dres; /* before the inputs: it may be one of them */
        int dres_fresh = 0;
        if (s->residual >= 0) {
            dres = grad_tensor(e, ws, s->residual, s->node->out, n);
            dres_fresh = !ws->written[s->residual];
            ws->written[s->residual] = 1;
        }
        r.assign = 0;
        int fresh = 0; /* a conv's input gradient not yet written: it writes, not adds */
        for (int k = 0; k < s->n_in; k++) {
            hfc_shape sh = m->nodes[s->node->in[k]].out;
            r.x[k] = slot_tensor(e, ws->slots, s->in[k], sh, n);
            r.dx[k] = grad_tensor(e, ws, s->in[k], sh, n);
            if (!ws->written[s->in[k]]) {
                if (s->op == HFC_OP_CONV2D)
                    fresh = r.assign = ws->written[s->in[k]] = 1;
                else
                    zero_gradient(ws, &r.dx[k], s->in[k]);
            }
        }
        if (s->relu || s->residual >= 0)
            backward_fused(&r, s->residual >= 0 ? &dres : NULL, dres_fresh);
        if (!s->in_scale) {
            hfc_layers[s->op].backward(&r);
            continue;
        }
        hfc_tensor dx = r.dx[0]; /* the conv's d/dx is the BatchNorm's output's */
        r.dx[0].data = ws->dtmp;
        r.assign = 1;
        hfc_layers[s->op].backward(&r);
        backward_deferred_bn(s, &r.x[0], ws->dtmp, &dx, fresh);
    }
}
