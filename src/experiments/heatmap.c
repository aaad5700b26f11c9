/* heatmap.c - the Fourier heat map (Yin et al., NeurIPS 2019, "A Fourier
 * Perspective on Model Robustness"): the error of a model when each test
 * image is perturbed along one Fourier basis image at a time.
 *
 * Cells are the H x W frequencies in fftshift order (DC at (H/2, W/2),
 * integer halves; (16, 16) at 32 x 32). A cell (i, j) and its mirror m,
 * the cell of the negated frequency ((32 - i) % 32, (32 - j) % 32 at 32 x
 * 32), form a pair with one basis image, built from the pair's
 * lexicographically smaller cell (i', j'): Z = 0 except Z[i', j'] = 0.5 +
 * 0.5i and Z[m'] = 0.5 - 0.5i (Z[i', j'] = 1 when the cell is its own
 * mirror), U = Re(ifft2(ifftshift(Z))) scaled to unit L2 norm, which is,
 * with theta = 2 pi (fy y / H + fx x / W) and (fy, fx) = (i' - H/2, j' -
 * W/2), cos theta - sin theta (cos theta for a cell that is its own mirror)
 * over its norm. Each image k and channel c gets clip(x / 255 + eps * s *
 * U, 0, 1) with the documented sign s (hfc_heatmap_sign); both cells of a
 * pair get the pair's error. Only the cells of the extent are evaluated:
 * 514 pairs instead of 1024 cells at 32 x 32. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hfc/experiments.h"

static const double PI = 3.14159265358979323846;

/* The cell of the negated frequency: index i holds i - n/2. */
static int mirror(int i, int n) { return ((n / 2) * 2 - i + n) % n; }

/* The pair's representative: the lexicographically smaller of (i, j) and its mirror. */
static void representative(int h, int w, int i, int j, int *ri, int *rj)
{
    int mi = mirror(i, h), mj = mirror(j, w);
    if (mi < i || (mi == i && mj < j)) {
        *ri = mi;
        *rj = mj;
    } else {
        *ri = i;
        *rj = j;
    }
}

void hfc_fourier_basis(int h, int w, int i, int j, float *u)
{
    int ri, rj;
    representative(h, w, i, j, &ri, &rj);
    int self = mirror(ri, h) == ri && mirror(rj, w) == rj;
    double norm = 0;
    for (int pass = 0; pass < 2; pass++)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                /* one integer numerator over the common period (h = w: as 32 x 32 always was) */
                double t = h == w ? 2 * PI * ((ri - h / 2) * y + (rj - w / 2) * x) / h
                                  : 2 * PI * ((double)(ri - h / 2) * y * w +
                                              (double)(rj - w / 2) * x * h) / ((double)h * w);
                double a = self ? cos(t) : cos(t) - sin(t);
                if (pass == 0)
                    norm += a * a;
                else
                    u[(size_t)y * w + x] = (float)(a / sqrt(norm));
            }
}

int hfc_heatmap_sign(int h, int w, uint64_t seed, int i, int j, uint64_t image, int channel)
{
    int ri, rj;
    representative(h, w, i, j, &ri, &rj);
    uint64_t v = hfc_splitmix64(seed);
    v = hfc_splitmix64(v ^ (uint64_t)ri);
    v = hfc_splitmix64(v ^ (uint64_t)rj);
    v = hfc_splitmix64(v ^ image);
    v = hfc_splitmix64(v ^ (uint64_t)channel);
    return v & 1 ? -1 : 1;
}

static size_t count_wrong(const float *logits, int k, const uint16_t *labels, size_t n)
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
    int C, H, W;              /* the images' */
    const hfc_heatmap_tally *grid; /* the cells evaluated (rows, cols, top, left) */
    int *pairs, n_pairs;      /* representative cells (i * W + j) of the pairs evaluated */
    float *basis;             /* U of the pair being evaluated */
    float *pert, *logits;
    hfc_heatmap_tally *tallies;
} heatmap_run;

/* The batch's images perturbed along cell c = (ri, rj)'s basis image, each
 * channel with its own sign, clipped to [0, 1], as raw pixels. */
static void perturb(const heatmap_run *c, const hfc_batch *b, int ri, int rj, const float *u)
{
    const size_t PLANE = (size_t)c->H * c->W, P = (size_t)c->C * PLANE;
    for (size_t i = 0; i < b->n; i++)
        for (int ch = 0; ch < c->C; ch++) {
            float e = (float)(c->spec->eps * hfc_heatmap_sign(c->H, c->W, c->spec->seed, ri, rj,
                                                              b->ds->first + b->first + i, ch));
            const float *xi = b->x + i * P + (size_t)ch * PLANE;
            float *pi = c->pert + i * P + (size_t)ch * PLANE;
            for (size_t q = 0; q < PLANE; q++) {
                float v = xi[q] / 255.0f + e * u[q];
                pi[q] = (v < 0 ? 0 : v > 1 ? 1 : v) * 255.0f;
            }
        }
}

/* Add a pair's error to its cells that lie in the grid. */
static void add_wrong(hfc_heatmap_tally *t, int i, int j, size_t wrong)
{
    int r = i - t->top, c = j - t->left;
    if (r >= 0 && r < t->rows && c >= 0 && c < t->cols)
        t->wrong[r * t->cols + c] += wrong;
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
    for (int p = 0; p < c->n_pairs; p++) {
        int ri = c->pairs[p] / c->W, rj = c->pairs[p] % c->W;
        int mi = mirror(ri, c->H), mj = mirror(rj, c->W);
        hfc_fourier_basis(c->H, c->W, ri, rj, c->basis);
        perturb(c, b, ri, rj, c->basis);
        for (int j = 0; j < c->n_models; j++) {
            hfc_engine_forward(c->engines[j], c->pert, n, c->logits);
            size_t wrong = count_wrong(c->logits, c->K, b->labels, n);
            add_wrong(&c->tallies[j], ri, rj, wrong);
            if (mi != ri || mj != rj)
                add_wrong(&c->tallies[j], mi, mj, wrong);
        }
        hfc_batch_progress(b, done += n);
    }
    return HFC_OK;
}

/* The grid of cells evaluated (tally fields height .. left) for spec. */
static void grid_of(const hfc_heatmap_spec *spec, const hfc_dataset *ds, hfc_heatmap_tally *t)
{
    int k = spec->extent > 0 ? spec->extent
                             : ds->height <= 32 && ds->width <= 32 ? HFC_MAX_EXTENT : 31;
    t->height = ds->height;
    t->width = ds->width;
    t->rows = k < ds->height ? k : ds->height;
    t->cols = k < ds->width ? k : ds->width;
    t->top = ds->height / 2 - t->rows / 2;
    t->left = ds->width / 2 - t->cols / 2;
}

/* The representative cells of the pairs that touch the grid, in grid
 * order: pairs (at most rows * cols). */
static int pairs_of(const hfc_heatmap_tally *g, int *pairs, unsigned char *seen)
{
    int n = 0;
    for (int r = 0; r < g->rows; r++)
        for (int c = 0; c < g->cols; c++) {
            int ri, rj;
            representative(g->height, g->width, g->top + r, g->left + c, &ri, &rj);
            size_t cell = (size_t)ri * g->width + rj;
            if (!seen[cell]) {
                seen[cell] = 1;
                pairs[n++] = (int)cell;
            }
        }
    return n;
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
    if (spec->extent < 0 || spec->extent > HFC_MAX_EXTENT)
        return hfc_fail(err, HFC_ERR_USAGE, "", "--extent %d: must be in 1..%d", spec->extent,
                        HFC_MAX_EXTENT);
    batch = hfc_engines_batch(engines, n_models, batch, ds->n);
    const size_t P = hfc_dataset_image_size(ds), plane = (size_t)ds->height * ds->width;
    heatmap_run c = {engines, n_models, ds->n_classes, spec, ds->channels, ds->height, ds->width,
                     &tallies[0], NULL, 0, NULL, NULL, NULL, tallies};
    unsigned char *seen = calloc(plane, 1);
    c.pairs = malloc(HFC_MAX_EXTENT * HFC_MAX_EXTENT * sizeof *c.pairs);
    c.basis = malloc(plane * sizeof *c.basis);
    c.pert = hfc_alloc_big(batch * P * sizeof *c.pert);
    c.logits = malloc(batch * (size_t)c.K * sizeof *c.logits);
    if (!seen || !c.pairs || !c.basis || !c.pert || !c.logits) {
        st = hfc_fail(err, HFC_ERR_NOMEM, NULL, "out of memory for a batch of %zu images", batch);
        goto done;
    }
    for (int j = 0; j < n_models; j++) {
        memset(&tallies[j], 0, sizeof tallies[j]);
        tallies[j].images = ds->n;
        tallies[j].eps = spec->eps;
        tallies[j].seed = spec->seed;
        grid_of(spec, ds, &tallies[j]);
    }
    c.n_pairs = pairs_of(&tallies[0], c.pairs, seen);
    st = hfc_stream(ds, batch, NULL, 0, (size_t)c.n_pairs + 1, progress, heatmap_step, &c, err);
done:
    free(seen);
    free(c.pairs);
    free(c.basis);
    free(c.pert);
    free(c.logits);
    return st;
}
