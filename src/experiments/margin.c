/* margin.c - "Hold me tight!" margins (Ortiz-Jimenez et al., NeurIPS 2020):
 * each image's distance to the decision boundary along subspaces of the
 * 2-D DCT, by DeepFool constrained to the subspace (hfc.h, hfc_margin).
 * A peer of evaluate.c and attack.c over the engine API.
 *
 * The subspace at offset o: the orthonormal DCT-II atoms (u, v) with
 * o <= u, v < o + K, each on each channel (dimension C K^2). With Dh, Dw
 * the H x H and W x W orthonormal DCT matrices and Dh_o, Dw_o their rows
 * o .. o+K-1, the projection of a channel w onto the subspace is
 * Dh_o' (Dh_o w Dw_o') Dw_o, and ||S'w|| is the norm of the K x K
 * coefficients Dh_o w Dw_o'. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hfc/experiments.h"

/* D[u][i] = c(u) cos(pi (2i + 1) u / 2n), c(0) = sqrt(1/n), else sqrt(2/n): (n, n). */
static double *dct_matrix(int n)
{
    double *D = malloc((size_t)n * n * sizeof *D);
    for (int u = 0; D && u < n; u++)
        for (int i = 0; i < n; i++)
            D[(size_t)u * n + i] = sqrt((u ? 2.0 : 1.0) / n) *
                                   cos(3.14159265358979323846 * (2 * i + 1) * u / (2.0 * n));
    return D;
}

/* The DCT of an image's geometry, and room for the products below. */
typedef struct {
    int C, H, W, K;
    double *Dh, *Dw;     /* (H, H), (W, W) */
    double *t;           /* (K, W) */
} dct_basis;

/* coef = S' w, the K x K coefficients of each of w's C planes; returns
 * ||S' w||. Subspace at offset o: per plane, Dh_o w Dw_o'. */
static double coefficients(const dct_basis *d, int o, const float *w, double *coef)
{
    const int H = d->H, W = d->W, K = d->K;
    const double *Dh = d->Dh + (size_t)o * H, *Dw = d->Dw + (size_t)o * W;
    double *t = d->t, norm2 = 0;
    for (int c = 0; c < d->C; c++, coef += K * K) {
        const float *wc = w + (size_t)c * H * W;
        for (int u = 0; u < K; u++) /* t = Dh_o w (K x W) */
            for (int j = 0; j < W; j++) {
                double s = 0;
                for (int i = 0; i < H; i++)
                    s += Dh[(size_t)u * H + i] * wc[(size_t)i * W + j];
                t[(size_t)u * W + j] = s;
            }
        for (int u = 0; u < K; u++) /* coef = t Dw_o' (K x K) */
            for (int v = 0; v < K; v++) {
                double s = 0;
                for (int j = 0; j < W; j++)
                    s += t[(size_t)u * W + j] * Dw[(size_t)v * W + j];
                coef[u * K + v] = s;
                norm2 += s * s;
            }
    }
    return sqrt(norm2);
}

/* proj = S coef: per plane, Dh_o' coef Dw_o. */
static void back_project(const dct_basis *d, int o, const double *coef, float *proj)
{
    const int H = d->H, W = d->W, K = d->K;
    const double *Dh = d->Dh + (size_t)o * H, *Dw = d->Dw + (size_t)o * W;
    double *t = d->t;
    for (int c = 0; c < d->C; c++, coef += K * K) {
        for (int u = 0; u < K; u++)
            for (int j = 0; j < W; j++) {
                double s = 0;
                for (int v = 0; v < K; v++)
                    s += coef[u * K + v] * Dw[(size_t)v * W + j];
                t[(size_t)u * W + j] = s;
            }
        for (int i = 0; i < H; i++)
            for (int j = 0; j < W; j++) {
                double s = 0;
                for (int u = 0; u < K; u++)
                    s += Dh[(size_t)u * H + i] * t[(size_t)u * W + j];
                proj[(size_t)c * H * W + (size_t)i * W + j] = (float)s;
            }
    }
}

/* The work: one item per (image, subspace) of a batch, each its own
 * DeepFool run. Up to `cap` items are in flight; every iteration is one
 * forward with a backward pass per class on all of them together, and one
 * forward to test the step; an item that ends leaves and the next takes its
 * place, so the groups stay full until the last items (an image's result
 * does not depend on which others share its group). */
typedef struct {
    hfc_engine *engine;
    const hfc_margin_spec *spec;
    int C;                       /* classes */
    int S;                       /* subspaces */
    size_t P;                    /* values in an image */
    size_t cap;                  /* items in flight at most */
    dct_basis dct;
    float *x0;                   /* the batch's images in [0, 1], (batch, P) */
    int *label;                  /* per image of the batch: the model's prediction */
    /* per storage place (cap): an item's state */
    float *xi, *r;               /* (cap, P): current point, perturbation */
    int *item, *iter, *done;     /* its (image, subspace) as image * S + s; steps; 1 fooled, 2 stuck */
    int *at;                     /* (cap): in-flight position -> storage place */
    float *pix, *grads, *f, *logits; /* (cap, P), (C - 1, cap, P), (cap, C), (cap, C) */
    double *coef, *best;         /* one item's S' w_k (channels K K), the best one's */
    float *proj;                 /* (P) */
    float *margins;              /* (subspaces, ds->n) */
} margin_run;

/* The label of the item at position q. */
static int label_at(const margin_run *c, size_t q) { return c->label[c->item[c->at[q]] / c->S]; }

/* Pass j seeds d (f_k - f_k0) / d logits for the j-th class k other than the
 * item's label k0: one backward pass gives w_k = grad f_k - grad f_k0. */
static void class_seed(void *ctx, int j, size_t first, size_t count, const float *logits, float *d)
{
    const margin_run *c = ctx;
    (void)logits;
    memset(d, 0, count * c->C * sizeof *d);
    for (size_t i = 0; i < count; i++) {
        const int k0 = label_at(c, first + i);
        d[i * c->C + (j < k0 ? j : j + 1)] = 1.0f;
        d[i * c->C + k0] = -1.0f;
    }
}

/* One DeepFool step of the item at position q of m in flight (storage
 * place p): the nearest other class's linearised boundary, projected; 0
 * when no direction of the subspace moves it. */
static int deepfool_step(margin_run *c, size_t m, size_t q, size_t p)
{
    const size_t P = c->P, coefs = (size_t)c->dct.C * c->dct.K * c->dct.K;
    const int o = c->item[p] % c->S * c->spec->stride, k0 = label_at(c, q);
    const float *f = c->f + q * c->C;
    double pert = INFINITY, pnorm = 0;
    for (int j = 0; j < c->C - 1; j++) {
        const int k = j < k0 ? j : j + 1;
        double norm = coefficients(&c->dct, o, c->grads + ((size_t)j * m + q) * P, c->coef);
        double pk = fabs((double)f[k] - f[k0]) / norm;
        if (norm > 0 && pk < pert) {
            pert = pk;
            pnorm = norm;
            memcpy(c->best, c->coef, coefs * sizeof *c->best);
        }
    }
    if (!isfinite(pert)) /* no direction in the subspace moves it */
        return 0;
    back_project(&c->dct, o, c->best, c->proj);
    const double scale = (pert > 1e-4 ? pert : 1e-4) / pnorm;
    for (size_t i = 0; i < P; i++) {
        float ri = (float)(scale * c->proj[i]);
        c->r[p * P + i] += ri;
        c->xi[p * P + i] += ri;
    }
    return 1;
}

/* Item p's margin, ||(1 + overshoot) r||, or NaN when it was not fooled
 * within max_iter or no direction moved it (JSON null). */
static void finish(margin_run *c, const hfc_batch *bt, size_t p)
{
    double norm2 = 0;
    for (size_t i = 0; i < c->P; i++) {
        double v = (1.0 + c->spec->overshoot) * c->r[p * c->P + i];
        norm2 += v * v;
    }
    const int b = c->item[p] / c->S, s = c->item[p] % c->S;
    c->margins[(size_t)s * bt->ds->n + bt->first + b] = c->done[p] == 1 ? (float)sqrt(norm2) : NAN;
}

/* One iteration of every item in flight (positions 0..m-1). */
static hfc_status iterate(margin_run *c, size_t m, hfc_error *err)
{
    const size_t P = c->P;
    for (size_t q = 0; q < m; q++)
        for (size_t i = 0; i < P; i++)
            c->pix[q * P + i] = c->xi[c->at[q] * P + i] * 255.0f;
    hfc_status st = hfc_engine_input_grad(c->engine, c->pix, m, c->C - 1, class_seed, c, c->f,
                                          c->grads, err);
    if (st)
        return st;
    for (size_t i = 0; i < (size_t)(c->C - 1) * m * P; i++) /* d/dx in [0, 1] pixels */
        c->grads[i] *= 255.0f;
    for (size_t q = 0; q < m; q++) {
        size_t p = c->at[q];
        c->iter[p]++;
        if (!deepfool_step(c, m, q, p))
            c->done[p] = 2;
    }
    /* Fooled yet? The prediction at x0 + (1 + overshoot) r. */
    const float over = (float)(1.0 + c->spec->overshoot);
    for (size_t q = 0; q < m; q++) {
        size_t p = c->at[q];
        const float *x0 = c->x0 + (size_t)(c->item[p] / c->S) * P;
        for (size_t i = 0; i < P; i++)
            c->pix[q * P + i] = (x0[i] + over * c->r[p * P + i]) * 255.0f;
    }
    hfc_engine_forward(c->engine, c->pix, m, c->logits);
    for (size_t q = 0; q < m; q++) {
        size_t p = c->at[q];
        if (!c->done[p] && hfc_argmax(c->logits + q * c->C, c->C) != c->label[c->item[p] / c->S])
            c->done[p] = 1;
    }
    return HFC_OK;
}

/* One batch: the model's own predictions are the reference labels, then
 * every (image, subspace) item, in order, through the places in flight. */
static hfc_status margin_step(hfc_batch *b, void *arg, hfc_error *err)
{
    margin_run *c = arg;
    const size_t P = c->P, items = b->n * (size_t)c->S;
    for (size_t i = 0; i < b->n * P; i++)
        c->x0[i] = b->x[i] / 255.0f;
    hfc_engine_forward(c->engine, b->x, b->n, c->logits);
    for (size_t i = 0; i < b->n; i++)
        c->label[i] = hfc_argmax(c->logits + i * c->C, c->C);
    size_t next = 0, m = 0, ended = 0;
    for (size_t p = 0; p < c->cap; p++) /* every place free */
        c->at[c->cap - 1 - p] = p;
    for (;;) {
        while (m < c->cap && next < items) { /* fill: the free places follow the first m */
            size_t p = c->at[m++];
            c->item[p] = (int)next++;
            c->iter[p] = c->done[p] = 0;
            const float *x0 = c->x0 + (size_t)(c->item[p] / c->S) * P;
            memcpy(c->xi + p * P, x0, P * sizeof *c->xi);
            memset(c->r + p * P, 0, P * sizeof *c->r);
        }
        if (!m)
            return HFC_OK;
        hfc_status st = iterate(c, m, err);
        if (st)
            return st;
        size_t kept = 0; /* the ended leave, the rest keep their order */
        size_t free_places[m];
        size_t n_free = 0;
        for (size_t q = 0; q < m; q++) {
            size_t p = c->at[q];
            if (c->done[p] || c->iter[p] >= c->spec->max_iter) {
                finish(c, b, p);
                free_places[n_free++] = p;
                ended++;
            } else {
                c->at[kept++] = p;
            }
        }
        for (size_t k = 0; k < n_free; k++)
            c->at[kept + k] = free_places[k];
        m = kept;
        hfc_batch_progress(b, b->first * c->S + ended);
    }
}

hfc_status hfc_margin(hfc_engine *engine, const hfc_model *model, const hfc_dataset *ds,
                      const hfc_margin_spec *spec, size_t batch, const hfc_progress *progress,
                      float *margins, hfc_error *err)
{
    const int K = spec->block, C = model->n_classes;
    const int side = ds->height < ds->width ? ds->height : ds->width;
    const size_t P = hfc_dataset_image_size(ds);
    if (K < 1 || K > side || spec->stride < 1)
        return hfc_fail(err, HFC_ERR_USAGE, "",
                        "--block must be in 1..%d (the images' shorter side) and --stride be "
                        "positive",
                        side);
    hfc_status st = hfc_check_models(&model, 1, ds, 1, err);
    if (st)
        return st;
    hfc_engine *const engines[1] = {engine};
    batch = hfc_engines_batch(engines, 1, batch, ds->n);
    if ((spec->side > 0 ? spec->side : HFC_CIFAR_SIDE) != side)
        return hfc_fail(err, HFC_ERR_USAGE, "",
                        "the margin spec was made for images of side %d; these have %d",
                        spec->side, side);
    const int S = hfc_margin_subspaces(spec);
    /* In flight: as many items as a batch has images (whole groups). */
    const size_t cap = hfc_engines_batch(engines, 1, batch, ds->n * (size_t)S);
    margin_run c = {.engine = engine, .spec = spec, .C = C, .S = S, .P = P, .cap = cap};
    c.dct = (dct_basis){ds->channels, ds->height, ds->width, K, dct_matrix(ds->height),
                        dct_matrix(ds->width), malloc((size_t)K * ds->width * sizeof(double))};
    const size_t coefs = (size_t)ds->channels * K * K;
    c.x0 = hfc_alloc_big(batch * P * sizeof *c.x0);
    c.label = malloc(batch * sizeof *c.label);
    c.xi = hfc_alloc_big(cap * P * sizeof *c.xi), c.r = hfc_alloc_big(cap * P * sizeof *c.r);
    c.item = malloc(cap * sizeof *c.item), c.iter = malloc(cap * sizeof *c.iter);
    c.done = malloc(cap * sizeof *c.done), c.at = malloc(cap * sizeof *c.at);
    c.pix = hfc_alloc_big(cap * P * sizeof *c.pix);
    c.grads = hfc_alloc_big((size_t)(C > 1 ? C - 1 : 1) * cap * P * sizeof *c.grads);
    c.f = malloc(cap * C * sizeof *c.f);
    c.logits = malloc((batch > cap ? batch : cap) * C * sizeof *c.logits);
    c.coef = malloc(coefs * sizeof *c.coef), c.best = malloc(coefs * sizeof *c.best);
    c.proj = malloc(P * sizeof *c.proj);
    c.margins = margins;
    if (!c.x0 || !c.label || !c.xi || !c.r || !c.item || !c.iter || !c.done || !c.at ||
        !c.pix || !c.grads || !c.f || !c.logits || !c.coef || !c.best || !c.proj || !c.dct.Dh ||
        !c.dct.Dw || !c.dct.t)
        st = hfc_fail(err, HFC_ERR_NOMEM, NULL, "out of memory for a batch of %zu images", batch);
    else
        st = hfc_stream(ds, batch, NULL, 0, (size_t)S, progress, margin_step, &c, err);
    free(c.x0), free(c.label), free(c.xi), free(c.r), free(c.item), free(c.iter);
    free(c.done), free(c.at), free(c.pix), free(c.grads), free(c.f), free(c.logits);
    free(c.coef), free(c.best), free(c.proj);
    free(c.dct.Dh), free(c.dct.Dw), free(c.dct.t);
    return st;
}

int hfc_margin_subspaces(const hfc_margin_spec *spec)
{
    const int side = spec->side > 0 ? spec->side : HFC_CIFAR_SIDE;
    return spec->block < 1 || spec->block > side || spec->stride < 1
               ? 0
               : (side - spec->block) / spec->stride + 1;
}
