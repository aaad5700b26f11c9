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

/* The DCT of an image's geometry, and room for the products of project. */
typedef struct {
    int C, H, W;
    double *Dh, *Dw;     /* (H, H), (W, W) */
    double *t, *coef;    /* (K, W), (K, K) */
} dct_basis;

/* proj = S S' w for one image (C planes), and ||S' w||. */
static double project(const dct_basis *d, int o, int K, const float *w, float *proj)
{
    const int H = d->H, W = d->W;
    const double *Dh = d->Dh + (size_t)o * H, *Dw = d->Dw + (size_t)o * W;
    double *t = d->t, *coef = d->coef, norm2 = 0;
    for (int c = 0; c < d->C; c++) {
        const float *wc = w + (size_t)c * H * W;
        /* t = Dh_o w (K x W); coef = t Dw_o' (K x K) */
        for (int u = 0; u < K; u++)
            for (int j = 0; j < W; j++) {
                double s = 0;
                for (int i = 0; i < H; i++)
                    s += Dh[(size_t)u * H + i] * wc[(size_t)i * W + j];
                t[(size_t)u * W + j] = s;
            }
        for (int u = 0; u < K; u++)
            for (int v = 0; v < K; v++) {
                double s = 0;
                for (int j = 0; j < W; j++)
                    s += t[(size_t)u * W + j] * Dw[(size_t)v * W + j];
                coef[u * K + v] = s;
                norm2 += s * s;
            }
        /* back: proj = Dh_o' coef Dw_o */
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
    return sqrt(norm2);
}

/* Seed the backward pass with one class: d loss / d logits = e_k. */
typedef struct {
    int k, n_classes;
} one_class;

static void class_seed(void *ctx, size_t first, size_t count, const float *logits, float *d)
{
    const one_class *c = ctx;
    (void)first, (void)logits;
    memset(d, 0, count * c->n_classes * sizeof *d);
    for (size_t i = 0; i < count; i++)
        d[i * c->n_classes + c->k] = 1.0f;
}

/* Buffers of a batch and what every step needs (allocated once). */
typedef struct {
    hfc_engine *engine;
    const hfc_margin_spec *spec;
    int C;                       /* classes */
    size_t P;                    /* values in an image */
    dct_basis dct;
    float *x0, *xi, *r, *pix;    /* (batch, P): start, current, perturbation, pixels */
    float *grads, *logits, *f;   /* every class's gradient (C, batch, P); logits; f */
    float *w, *proj, *best;      /* one image's (P) */
    int *label, *done;           /* per image: the reference label; 1 fooled, 2 stuck */
    float *margins;              /* (subspaces, ds->n) */
} margin_run;

/* d f_k / d x for every class k, x in [0, 1]: grads[k] (n, P). */
static hfc_status class_gradients(margin_run *c, size_t n, hfc_error *err)
{
    const size_t P = c->P;
    for (size_t i = 0; i < n * P; i++)
        c->pix[i] = c->xi[i] * 255.0f;
    for (int k = 0; k < c->C; k++) {
        one_class oc = {k, c->C};
        float *gk = c->grads + (size_t)k * n * P;
        hfc_status st = hfc_engine_input_grad(c->engine, c->pix, n, class_seed, &oc, c->f, gk, err);
        if (st)
            return st;
        for (size_t i = 0; i < n * P; i++)
            gk[i] *= 255.0f;
    }
    return HFC_OK;
}

/* One DeepFool step of image b inside the subspace at offset o: the
 * nearest other class's linearised boundary, projected; 0 when no
 * direction of the subspace moves it (done[b] = 2). */
static int deepfool_step(margin_run *c, size_t n, size_t b, int o)
{
    const size_t P = c->P;
    const int k0 = c->label[b];
    const float *g0 = c->grads + (size_t)k0 * n * P + b * P;
    double pert = INFINITY, pnorm = 0;
    for (int k = 0; k < c->C; k++) {
        if (k == k0)
            continue;
        const float *gk = c->grads + (size_t)k * n * P + b * P;
        for (size_t i = 0; i < P; i++)
            c->w[i] = gk[i] - g0[i];
        double norm = project(&c->dct, o, c->spec->block, c->w, c->proj);
        double pk = fabs((double)c->f[b * c->C + k] - c->f[b * c->C + k0]) / norm;
        if (norm > 0 && pk < pert) {
            pert = pk;
            pnorm = norm;
            memcpy(c->best, c->proj, P * sizeof *c->best);
        }
    }
    if (!isfinite(pert)) /* no direction in the subspace moves it */
        return 0;
    const double scale = (pert > 1e-4 ? pert : 1e-4) / pnorm;
    for (size_t i = 0; i < P; i++) {
        float ri = (float)(scale * c->best[i]);
        c->r[b * P + i] += ri;
        c->xi[b * P + i] += ri;
    }
    return 1;
}

/* Every image of the batch along subspace s: DeepFool until fooled at
 * x0 + (1 + overshoot) r, at most max_iter steps; its margin, or NaN. */
static hfc_status subspace_margins(margin_run *c, const hfc_batch *bt, int s, hfc_error *err)
{
    const size_t P = c->P, n = bt->n;
    const int o = s * c->spec->stride;
    memcpy(c->xi, c->x0, n * P * sizeof *c->xi);
    memset(c->r, 0, n * P * sizeof *c->r);
    memset(c->done, 0, n * sizeof *c->done);
    size_t left = n;
    const float over = (float)(1.0 + c->spec->overshoot);
    for (int it = 0; it < c->spec->max_iter && left; it++) {
        hfc_status st = class_gradients(c, n, err);
        if (st)
            return st;
        for (size_t b = 0; b < n; b++)
            if (!c->done[b] && !deepfool_step(c, n, b, o)) {
                c->done[b] = 2;
                left--;
            }
        /* Fooled yet? The prediction at x0 + (1 + overshoot) r. */
        for (size_t i = 0; i < n * P; i++)
            c->pix[i] = (c->x0[i] + over * c->r[i]) * 255.0f;
        hfc_engine_forward(c->engine, c->pix, n, c->logits);
        for (size_t b = 0; b < n; b++)
            if (!c->done[b] && hfc_argmax(c->logits + b * c->C, c->C) != c->label[b]) {
                c->done[b] = 1;
                left--;
            }
    }
    for (size_t b = 0; b < n; b++) {
        double norm2 = 0;
        for (size_t i = 0; i < P; i++) {
            double v = (1.0 + c->spec->overshoot) * c->r[b * P + i];
            norm2 += v * v;
        }
        /* not fooled within max_iter, or no direction: NaN (JSON null) */
        c->margins[(size_t)s * bt->ds->n + bt->first + b] =
            c->done[b] == 1 ? (float)sqrt(norm2) : NAN;
    }
    return HFC_OK;
}

/* One batch: the model's own predictions are the reference labels, then
 * every subspace. */
static hfc_status margin_step(hfc_batch *b, void *arg, hfc_error *err)
{
    margin_run *c = arg;
    for (size_t i = 0; i < b->n * c->P; i++)
        c->x0[i] = b->x[i] / 255.0f;
    hfc_engine_forward(c->engine, b->x, b->n, c->logits);
    for (size_t i = 0; i < b->n; i++)
        c->label[i] = hfc_argmax(c->logits + i * c->C, c->C);
    hfc_status st = HFC_OK;
    for (int s = 0; !st && s < hfc_margin_subspaces(c->spec); s++)
        st = subspace_margins(c, b, s, err);
    return st;
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
    margin_run c = {.engine = engine, .spec = spec, .C = C, .P = P};
    c.dct = (dct_basis){ds->channels, ds->height, ds->width, dct_matrix(ds->height),
                        dct_matrix(ds->width), malloc((size_t)K * ds->width * sizeof(double)),
                        malloc((size_t)K * K * sizeof(double))};
    c.x0 = malloc(batch * P * sizeof *c.x0), c.xi = malloc(batch * P * sizeof *c.xi);
    c.r = malloc(batch * P * sizeof *c.r), c.pix = malloc(batch * P * sizeof *c.pix);
    c.grads = malloc((size_t)C * batch * P * sizeof *c.grads);
    c.logits = malloc((size_t)C * batch * sizeof *c.logits);
    c.f = malloc((size_t)C * batch * sizeof *c.f), c.w = malloc(P * sizeof *c.w);
    c.proj = malloc(P * sizeof *c.proj), c.best = malloc(P * sizeof *c.best);
    c.label = malloc(batch * sizeof *c.label), c.done = malloc(batch * sizeof *c.done);
    c.margins = margins;
    if (!c.x0 || !c.xi || !c.r || !c.pix || !c.grads || !c.logits || !c.f || !c.w || !c.proj ||
        !c.best || !c.label || !c.done || !c.dct.Dh || !c.dct.Dw || !c.dct.t || !c.dct.coef)
        st = hfc_fail(err, HFC_ERR_NOMEM, NULL, "out of memory for a batch of %zu images", batch);
    else
        st = hfc_stream(ds, batch, NULL, 0, 1, progress, margin_step, &c, err);
    free(c.x0), free(c.xi), free(c.r), free(c.pix), free(c.grads), free(c.logits), free(c.f);
    free(c.w), free(c.proj), free(c.best), free(c.label), free(c.done);
    free(c.dct.Dh), free(c.dct.Dw), free(c.dct.t), free(c.dct.coef);
    return st;
}

int hfc_margin_subspaces(const hfc_margin_spec *spec)
{
    const int side = spec->side > 0 ? spec->side : HFC_CIFAR_SIDE;
    return spec->block < 1 || spec->block > side || spec->stride < 1
               ? 0
               : (side - spec->block) / spec->stride + 1;
}
