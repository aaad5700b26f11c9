/* heatmap.c - the Fourier heat map (Yin et al., NeurIPS 2019, "A Fourier
 * Perspective on Model Robustness"): the error of a model when each test
 * image is perturbed along one Fourier basis image at a time.
 *
 * Cells are the 32 x 32 frequencies in fftshift order (DC at (16, 16)). A
 * cell (i, j) and its mirror m = ((32 - i) % 32, (32 - j) % 32) form a pair
 * with one basis image, built from the pair's lexicographically smaller cell
 * (i', j'): Z = 0 except Z[i', j'] = 0.5 + 0.5i and Z[m'] = 0.5 - 0.5i
 * (Z[i', j'] = 1 when the cell is its own mirror), U = Re(ifft2(ifftshift(Z)))
 * scaled to unit L2 norm, which is, with theta = 2 pi (fy y + fx x) / 32 and
 * (fy, fx) = (i' - 16, j' - 16), cos theta - sin theta (cos theta for a cell
 * that is its own mirror) over its norm. Each image k and channel c gets
 * clip(x / 255 + eps * s * U, 0, 1) with the documented sign s (hfc.h,
 * hfc_heatmap_sign); both cells of a pair get the pair's error. 514 pairs
 * instead of 1024 cells. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hfc/experiments.h"

#define SIDE HFC_CIFAR_SIDE
#define PLANE (SIDE * SIDE)

static const double PI = 3.14159265358979323846;

static int mirror(int i) { return (SIDE - i) % SIDE; }

/* The pair's representative: the lexicographically smaller of (i, j) and its mirror. */
static void representative(int i, int j, int *ri, int *rj)
{
    int mi = mirror(i), mj = mirror(j);
    if (mi < i || (mi == i && mj < j)) {
        *ri = mi;
        *rj = mj;
    } else {
        *ri = i;
        *rj = j;
    }
}

void hfc_fourier_basis(int i, int j, float *u)
{
    int ri, rj;
    representative(i, j, &ri, &rj);
    int self = mirror(ri) == ri && mirror(rj) == rj;
    double v[PLANE], norm = 0;
    for (int y = 0; y < SIDE; y++)
        for (int x = 0; x < SIDE; x++) {
            double t = 2 * PI * ((ri - SIDE / 2) * y + (rj - SIDE / 2) * x) / SIDE;
            double a = self ? cos(t) : cos(t) - sin(t);
            v[y * SIDE + x] = a;
            norm += a * a;
        }
    norm = sqrt(norm);
    for (int k = 0; k < PLANE; k++)
        u[k] = (float)(v[k] / norm);
}

int hfc_heatmap_sign(uint64_t seed, int i, int j, uint64_t image, int channel)
{
    int ri, rj;
    representative(i, j, &ri, &rj);
    uint64_t h = hfc_splitmix64(seed);
    h = hfc_splitmix64(h ^ (uint64_t)ri);
    h = hfc_splitmix64(h ^ (uint64_t)rj);
    h = hfc_splitmix64(h ^ image);
    h = hfc_splitmix64(h ^ (uint64_t)channel);
    return h & 1 ? -1 : 1;
}

static size_t count_wrong(const float *logits, int k, const uint8_t *labels, size_t n)
{
    size_t wrong = 0;
    for (size_t i = 0; i < n; i++)
        wrong += hfc_argmax(logits + i * k, k) != labels[i];
    return wrong;
}

/* What the heat map's step needs besides the batch. */
typedef struct {
    hfc_engine *const *engines;
    int n_models, K;
    const hfc_heatmap_spec *spec;
    const float *basis;       /* U of every pair's representative cell */
    float *pert, *logits;
    hfc_heatmap_tally *tallies;
} heatmap_run;

/* The batch's images perturbed along cell c = (ri, rj)'s basis image, each
 * channel with its own sign, clipped to [0, 1], as raw pixels. */
static void perturb(const heatmap_run *c, const hfc_batch *b, int ri, int rj, const float *u)
{
    const size_t P = HFC_CIFAR_PIXELS;
    for (size_t i = 0; i < b->n; i++)
        for (int ch = 0; ch < HFC_CIFAR_CHANNELS; ch++) {
            float e = (float)(c->spec->eps * hfc_heatmap_sign(c->spec->seed, ri, rj,
                                                              b->ds->first + b->first + i, ch));
            const float *xi = b->x + i * P + (size_t)ch * PLANE;
            float *pi = c->pert + i * P + (size_t)ch * PLANE;
            for (int q = 0; q < PLANE; q++) {
                float v = xi[q] / 255.0f + e * u[q];
                pi[q] = (v < 0 ? 0 : v > 1 ? 1 : v) * 255.0f;
            }
        }
}

/* One batch: the clean images, then every pair of cells once. */
static hfc_status heatmap_step(hfc_batch *b, void *arg, hfc_error *err)
{
    (void)err;
    heatmap_run *c = arg;
    const size_t n = b->n;
    for (int j = 0; j < c->n_models; j++) {
        hfc_engine_forward(c->engines[j], b->x, n, c->logits);
        c->tallies[j].clean_wrong += count_wrong(c->logits, c->K, b->labels, n);
    }
    size_t done = b->first * b->units + n;
    for (int cell = 0; cell < PLANE; cell++) {
        int ri, rj;
        representative(cell / SIDE, cell % SIDE, &ri, &rj);
        if (ri * SIDE + rj != cell)
            continue;
        perturb(c, b, ri, rj, c->basis + (size_t)cell * PLANE);
        for (int j = 0; j < c->n_models; j++) {
            hfc_engine_forward(c->engines[j], c->pert, n, c->logits);
            size_t wrong = count_wrong(c->logits, c->K, b->labels, n);
            c->tallies[j].wrong[cell] += wrong;
            int m = mirror(ri) * SIDE + mirror(rj);
            if (m != cell)
                c->tallies[j].wrong[m] += wrong;
        }
        hfc_batch_progress(b, done += n);
    }
    return HFC_OK;
}

hfc_status hfc_heatmap(hfc_engine *const *engines, const hfc_model *const *models, int n_models,
                       const hfc_heatmap_spec *spec, const hfc_dataset *ds, size_t batch,
                       const hfc_progress *progress, hfc_heatmap_tally *tallies, hfc_error *err)
{
    hfc_status st = hfc_check_models(models, n_models, ds, 1, err);
    if (st)
        return st;
    if (!(spec->eps >= 0) || !isfinite(spec->eps))
        return hfc_fail(err, HFC_ERR_USAGE, "", "--eps %g: the heat map's eps must be >= 0",
                        spec->eps);
    batch = hfc_engines_batch(engines, n_models, batch, ds->n);
    const size_t P = HFC_CIFAR_PIXELS;
    heatmap_run c = {engines, n_models, ds->n_classes, spec, NULL, NULL, NULL, tallies};
    float *basis = malloc((size_t)PLANE * PLANE * sizeof *basis);
    c.pert = malloc(batch * P * sizeof *c.pert);
    c.logits = malloc(batch * (size_t)c.K * sizeof *c.logits);
    if (!basis || !c.pert || !c.logits) {
        free(basis);
        free(c.pert);
        free(c.logits);
        return hfc_fail(err, HFC_ERR_NOMEM, NULL, "out of memory for a batch of %zu images", batch);
    }
    int pairs = 0;
    for (int cell = 0; cell < PLANE; cell++) {
        int ri, rj;
        representative(cell / SIDE, cell % SIDE, &ri, &rj);
        if (ri * SIDE + rj == cell) {
            hfc_fourier_basis(ri, rj, basis + (size_t)cell * PLANE);
            pairs++;
        }
    }
    c.basis = basis;
    for (int j = 0; j < n_models; j++) {
        memset(&tallies[j], 0, sizeof tallies[j]);
        tallies[j].images = ds->n;
        tallies[j].eps = spec->eps;
        tallies[j].seed = spec->seed;
    }
    st = hfc_stream(ds, batch, NULL, 0, (size_t)pairs + 1, progress, heatmap_step, &c, err);
    free(basis);
    free(c.pert);
    free(c.logits);
    return st;
}
