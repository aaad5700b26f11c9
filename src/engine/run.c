/* engine/run.c - run a planned engine: images in groups of e->group, each
 * thread taking whole groups with its own slots and scratch, each step by
 * its layer's forward function (src/layers/, hfc_layers[]); nothing is
 * allocated here. */
#include <assert.h>
#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "engine/internal.h"

void hfc_engine_free(hfc_engine *e)
{
    if (!e)
        return;
    for (int t = 0; e->ws && t < e->threads; t++) {
        free(e->ws[t].slots);
        free(e->ws[t].col);
        free(e->ws[t].grads);
        free(e->ws[t].written);
        free(e->ws[t].dtmp);
    }
    free(e->ws);
    free(e->steps);
    free(e->folded);
    free(e->transposed);
    free(e->back_weights);
    free(e->grad_buffer);
    free(e->slot_offset);
    free(e);
}

double hfc_engine_flops(const hfc_engine *e) { return 2.0 * e->macs; }

size_t hfc_engine_group(const hfc_engine *e) { return (size_t)e->group; }

static size_t gcd(size_t a, size_t b) { return b ? gcd(b, a % b) : a; }

size_t hfc_engines_batch(hfc_engine *const *engines, int n_engines, size_t batch, size_t images)
{
    if (batch > images)
        batch = images ? images : 1;
    size_t unit = HFC_ENGINE_GROUP;
    for (int j = 0; j < n_engines; j++)
        unit = unit / gcd(unit, hfc_engine_group(engines[j])) * hfc_engine_group(engines[j]);
    return (batch + unit - 1) / unit * unit;
}

/* Run every step on a group of n images; the logits end in the output slot. */
static void forward_group(const hfc_engine *e, const workspace *ws, const float *pixels, int n)
{
    const hfc_model *m = e->model;
    step_run r = {.model = m, .bn_batch = e->bn_batch, .n = n, .pixels = pixels,
                  .scratch = ws->col};
    for (int i = 0; i < e->n_steps; i++) {
        const step *s = &e->steps[i];
        r.s = s;
        r.y = slot_tensor(e, ws->slots, s->out, s->node->out, n);
        r.residual = s->residual >= 0 ? slot_tensor(e, ws->slots, s->residual, s->node->out, n).data
                                      : NULL;
        for (int k = 0; k < s->n_in; k++)
            r.x[k] = slot_tensor(e, ws->slots, s->in[k], m->nodes[s->node->in[k]].out, n);
        hfc_layers[s->op].forward(&r);
    }
}



typedef struct {
    const hfc_engine *e;
    const workspace *ws;
    const float *x;
    float *logits;
    size_t first, stride, groups, n;  /* this job's groups: first, first + stride, ... */
    hfc_loss_grad loss;   /* hfc_engine_input_grad: its loss, context, */
    void *ctx;
    int passes;           /* backward passes per forward, and */
    float *dx;            /* ... the pixels' gradients out; NULL for forward only */
    int tap_slot;         /* hfc_engine_capture: the slot copied to tap, or -1 */
    size_t tap_floats;    /* one image's value there */
    float *tap;
} job;

static void *run_job(void *arg)
{
    const job *j = arg;
    const hfc_model *m = j->e->model;
    size_t in_floats = (size_t)m->channels * m->height * m->width;
    const float *out = j->ws->slots + j->e->slot_offset[j->e->output_slot];
    for (size_t g = j->first; g < j->groups; g += j->stride) {
        size_t start = g * j->e->group;
        size_t count = j->n - start < (size_t)j->e->group ? j->n - start : (size_t)j->e->group;
        forward_group(j->e, j->ws, j->x + start * in_floats, (int)count);
        if (j->logits)
            memcpy(j->logits + start * m->n_classes, out, count * m->n_classes * sizeof(float));
        if (j->tap)
            memcpy(j->tap + start * j->tap_floats,
                   j->ws->slots + j->e->slot_offset[j->tap_slot],
                   count * j->tap_floats * sizeof(float));
        for (int p = 0; j->dx && p < j->passes; p++) {
            float *dlogits = j->ws->grads + (size_t)j->e->grad_buffer[j->e->output_slot] * j->e->slot_floats;
            j->loss(j->ctx, p, start, count, out, dlogits);
            backward_group(j->e, j->ws, (int)count, j->dx + ((size_t)p * j->n + start) * in_floats);
        }
    }
    return NULL;
}

static void run_jobs(hfc_engine *e, const float *x, size_t n, float *logits, hfc_loss_grad loss,
                     void *ctx, int passes, float *dx, const job *tap)
{
    size_t groups = (n + e->group - 1) / e->group;
    size_t t = (size_t)e->threads < groups ? (size_t)e->threads : groups;
    job jobs[t ? t : 1];
    pthread_t tid[t ? t : 1];
    int started[t ? t : 1];
    for (size_t k = 0; k < t; k++) {
        jobs[k] = (job){e, &e->ws[k], x, logits, k, t, groups, n, loss, ctx, passes, dx, -1, 0, NULL};
        if (tap) {
            jobs[k].tap_slot = tap->tap_slot;
            jobs[k].tap_floats = tap->tap_floats;
            jobs[k].tap = tap->tap;
        }
        started[k] = k > 0 && pthread_create(&tid[k], NULL, run_job, &jobs[k]) == 0;
    }
    if (t)
        run_job(&jobs[0]);
    for (size_t k = 1; k < t; k++) {
        if (started[k])
            pthread_join(tid[k], NULL);
        else
            run_job(&jobs[k]);  /* no thread could be made: do its share here */
    }
}

void hfc_engine_forward(hfc_engine *e, const float *x, size_t n, float *logits)
{
    run_jobs(e, x, n, logits, NULL, NULL, 0, NULL, NULL);
}

hfc_status hfc_engine_capture(hfc_engine *e, const float *x, size_t n, int node, float *out,
                              hfc_error *err)
{
    const hfc_model *m = e->model;
    if (!e->keep_values)
        return hfc_fail(err, HFC_ERR_USAGE, m->path, "the engine was not planned to keep values");
    if (node < 0 || node >= m->n_nodes)
        return hfc_fail(err, HFC_ERR_USAGE, m->path, "no node %d", node);
    for (int i = 0; i < e->n_steps; i++)
        if (e->steps[i].node == &m->nodes[node]) {
            hfc_shape s = m->nodes[node].out;
            job tap = {.tap_slot = e->steps[i].out, .tap_floats = (size_t)s.c * s.h * s.w, .tap = out};
            run_jobs(e, x, n, NULL, NULL, NULL, 0, NULL, &tap);
            return HFC_OK;
        }
    return hfc_fail(err, HFC_ERR_USAGE, m->path, "node %s has no step of its own",
                    m->nodes[node].name);
}

hfc_status hfc_engine_forward_tap(hfc_engine *e, const float *x, size_t n, float *logits,
                                  float *tap, hfc_error *err)
{
    const hfc_model *m = e->model;
    if (e->tap_node <= 0)
        return hfc_fail(err, HFC_ERR_USAGE, m->path, "the engine was not planned with a tap");
    hfc_shape s = m->nodes[e->tap_node].out;
    job t = {.tap_slot = e->tap_slot, .tap_floats = (size_t)s.c * s.h * s.w, .tap = tap};
    run_jobs(e, x, n, logits, NULL, NULL, 0, NULL, &t);
    return HFC_OK;
}

hfc_status hfc_engine_input_grad(hfc_engine *e, const float *x, size_t n, int passes,
                                 hfc_loss_grad loss, void *ctx, float *logits, float *dx,
                                 hfc_error *err)
{
    if (!e->gradients)
        return hfc_fail(err, HFC_ERR_USAGE, e->model->path,
                        "the engine was not planned for gradients");
    run_jobs(e, x, n, logits, loss, ctx, passes, dx, NULL);
    return HFC_OK;
}
