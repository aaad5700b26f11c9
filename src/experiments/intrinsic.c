/* intrinsic.c - intrinsic dimension per layer by TwoNN (Facco et al. 2017,
 * as Ansuini et al., NeurIPS 2019 use it on CNN representations).
 *
 * For N points (flattened activations), r1 and r2 are each point's nearest
 * and second-nearest Euclidean distances to another point. Points with
 * r1 = 0 or r1 = r2 are dropped; mu = r2 / r1 sorted ascending over the N'
 * left; F_i = i / N'; on the first floor(0.9 N') of them, x_i = log mu_i,
 * y_i = -log(1 - F_i) and id = sum x y / sum x^2 (a line through the origin).
 *
 * Distances: one SGEMM per block of rows gives |a|^2 + |b|^2 - 2 a.b for
 * every pair (norms in float64); each point's CANDIDATES closest by that are
 * then measured again exactly, sum of squared differences in float64, and r1,
 * r2 are the two smallest of those. sd: the standard deviation (population,
 * like numpy's std) of the estimate over `resamples` subsets of floor(0.9 N)
 * points, subset t being the points with the smallest splitmix64(
 * splitmix64(seed ^ t) ^ index), neighbours searched within the subset. */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hfc/experiments.h"

enum { CANDIDATES = 8, ROWS = 256 };

/* Squared distances, approximately: d2[i * n + j] for all pairs. */
static hfc_status gram_distances(const float *x, size_t n, size_t dim, float *d2, hfc_error *err)
{
    double *norm = malloc(n * sizeof *norm);
    if (!norm)
        return hfc_fail(err, HFC_ERR_NOMEM, NULL, "out of memory for %zu points", n);
    for (size_t i = 0; i < n; i++) {
        double s = 0;
        for (size_t k = 0; k < dim; k++)
            s += (double)x[i * dim + k] * x[i * dim + k];
        norm[i] = s;
    }
    for (size_t r0 = 0; r0 < n; r0 += ROWS) {
        size_t rows = n - r0 < ROWS ? n - r0 : ROWS;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, (int)n, (int)dim, -2.0f,
                    x + r0 * dim, (int)dim, x, (int)dim, 0.0f, d2 + r0 * n, (int)n);
        for (size_t i = r0; i < r0 + rows; i++)
            for (size_t j = 0; j < n; j++)
                d2[i * n + j] = (float)(d2[i * n + j] + norm[i] + norm[j]);
    }
    free(norm);
    return HFC_OK;
}

static double exact_distance(const float *x, size_t dim, size_t a, size_t b)
{
    double s = 0;
    for (size_t k = 0; k < dim; k++) {
        double d = (double)x[a * dim + k] - x[b * dim + k];
        s += d * d;
    }
    return sqrt(s);
}

static int by_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* TwoNN on the points idx[0..m) (indices into x); mu is scratch for m. */
static double twonn_subset(const float *x, size_t dim, const float *d2, size_t n,
                           const size_t *idx, size_t m, double *mu, size_t *kept)
{
    size_t left = 0;
    for (size_t a = 0; a < m; a++) {
        size_t i = idx[a];
        size_t cand[CANDIDATES];
        float cd[CANDIDATES];
        int c = 0;
        for (size_t b = 0; b < m; b++) { /* the CANDIDATES smallest approximate distances */
            size_t j = idx[b];
            if (j == i)
                continue;
            float v = d2[i * n + j];
            if (c == CANDIDATES && !(v < cd[CANDIDATES - 1]))
                continue;
            int p = c < CANDIDATES ? c++ : CANDIDATES - 1; /* insert, dropping the last if full */
            while (p > 0 && cd[p - 1] > v) {
                cd[p] = cd[p - 1];
                cand[p] = cand[p - 1];
                p--;
            }
            cd[p] = v;
            cand[p] = j;
        }
        double r1 = INFINITY, r2 = INFINITY;
        for (int k = 0; k < c; k++) {
            double d = exact_distance(x, dim, i, cand[k]);
            if (d < r1) {
                r2 = r1;
                r1 = d;
            } else if (d < r2) {
                r2 = d;
            }
        }
        if (c >= 2 && r1 > 0 && r1 != r2)
            mu[left++] = r2 / r1;
    }
    *kept = left;
    if (left < 2)
        return NAN;
    qsort(mu, left, sizeof *mu, by_double);
    size_t fit = (size_t)floor(0.9 * (double)left);
    double sxy = 0, sxx = 0;
    for (size_t i = 0; i < fit; i++) {
        double xi = log(mu[i]), yi = -log(1.0 - (double)i / (double)left);
        sxy += xi * yi;
        sxx += xi * xi;
    }
    return sxx > 0 ? sxy / sxx : NAN;
}

typedef struct {
    uint64_t key;
    size_t index;
} keyed;

static int by_key(const void *a, const void *b)
{
    const keyed *x = a, *y = b;
    if (x->key != y->key)
        return (x->key > y->key) - (x->key < y->key);
    return (x->index > y->index) - (x->index < y->index);
}

hfc_status hfc_twonn(const float *x, size_t n, size_t dim, int resamples, uint64_t seed,
                     hfc_id_result *out, hfc_error *err)
{
    memset(out, 0, sizeof *out);
    if (n < 3)
        return hfc_fail(err, HFC_ERR_USAGE, "", "TwoNN needs at least 3 points, not %zu", n);
    float *d2 = malloc(n * n * sizeof *d2);
    double *mu = malloc(n * sizeof *mu);
    size_t *idx = malloc(n * sizeof *idx);
    keyed *keys = malloc(n * sizeof *keys);
    hfc_status st = d2 && mu && idx && keys
                        ? HFC_OK
                        : hfc_fail(err, HFC_ERR_NOMEM, NULL, "out of memory for %zu points", n);
    if (!st)
        st = gram_distances(x, n, dim, d2, err);
    if (!st) {
        for (size_t i = 0; i < n; i++)
            idx[i] = i;
        out->id = twonn_subset(x, dim, d2, n, idx, n, mu, &out->points);
        double sum = 0, sum2 = 0;
        size_t m = (size_t)floor(0.9 * (double)n);
        for (int t = 0; t < resamples; t++) {
            uint64_t h = hfc_splitmix64(seed ^ (uint64_t)t);
            for (size_t i = 0; i < n; i++)
                keys[i] = (keyed){hfc_splitmix64(h ^ (uint64_t)i), i};
            qsort(keys, n, sizeof *keys, by_key);
            for (size_t i = 0; i < m; i++)
                idx[i] = keys[i].index;
            size_t kept;
            double v = twonn_subset(x, dim, d2, n, idx, m, mu, &kept);
            sum += v;
            sum2 += v * v;
        }
        out->sd = resamples > 0 ? sqrt(fmax(sum2 / resamples - (sum / resamples) * (sum / resamples), 0))
                                : 0;
    }
    free(d2);
    free(mu);
    free(idx);
    free(keys);
    return st;
}


/* What id's step needs: the model, its block outputs, where results go. */
typedef struct {
    hfc_engine *e;
    const hfc_model *m;
    const hfc_id_spec *spec;
    const int *taps;
    int n_taps;
    float *act;               /* (n, widest block output) */
    hfc_id_layer *out;
    int cap, *n_out;
} id_run;

/* The one batch of every image: per version and block output, capture the
 * values and estimate their dimension. */
static hfc_status id_step(hfc_batch *b, void *arg, hfc_error *err)
{
    id_run *c = arg;
    const size_t n = b->n;
    hfc_status st = HFC_OK;
    if (b->split)
        st = hfc_split_apply(b->split, &c->spec->mask, err);
    size_t done = 0;
    for (int v = 0; !st && v < c->spec->n_versions; v++) {
        int version = c->spec->versions[v];
        const float *in = version == HFC_LOW ? hfc_split_low(b->split)
                          : version == HFC_HIGH ? hfc_split_high(b->split) : b->x;
        for (int t = 0; !st && t < c->n_taps; t++) {
            if (*c->n_out == c->cap)
                return hfc_fail(err, HFC_ERR_USAGE, "", "more than %d layers", c->cap);
            hfc_shape s = hfc_model_node_shape(c->m, c->taps[t]);
            size_t dim = (size_t)s.c * s.h * s.w;
            hfc_id_layer *L = &c->out[(*c->n_out)++];
            *L = (hfc_id_layer){.node = c->taps[t], .depth = t, .dim = dim, .version = version};
            if ((st = hfc_engine_capture(c->e, in, n, c->taps[t], c->act, err)) ||
                (st = hfc_twonn(c->act, n, dim, c->spec->resamples, c->spec->seed, &L->result,
                                err)))
                break;
            hfc_batch_progress(b, ++done * n);
        }
    }
    return st;
}

hfc_status hfc_intrinsic_dimension(hfc_engine *e, const hfc_model *m, const hfc_dataset *ds,
                                   const hfc_id_spec *spec, const hfc_progress *progress,
                                   hfc_id_layer *out, int cap, int *n_out, hfc_error *err)
{
    *n_out = 0;
    if (ds->n < 3)
        return hfc_fail(err, HFC_ERR_USAGE, "", "id needs at least 3 images, not %zu", ds->n);
    hfc_status st = hfc_check_models(&m, 1, ds, 0, err);
    if (st)
        return st;
    int taps[HFC_MAX_ID_LAYERS];
    int n_taps = hfc_block_outputs(m, taps, HFC_MAX_ID_LAYERS);
    if (n_taps == 0)
        return hfc_fail(err, HFC_ERR_NOMEM, NULL, "out of memory");
    size_t widest = 0;
    for (int t = 0; t < n_taps; t++) {
        hfc_shape s = hfc_model_node_shape(m, taps[t]);
        widest = (size_t)s.c * s.h * s.w > widest ? (size_t)s.c * s.h * s.w : widest;
    }
    id_run c = {e, m, spec, taps, n_taps, malloc(ds->n * widest * sizeof(float)), out, cap, n_out};
    if (!c.act)
        return hfc_fail(err, HFC_ERR_NOMEM, NULL, "out of memory for %zu images' activations",
                        ds->n);
    int need_split = 0;
    for (int v = 0; v < spec->n_versions; v++)
        need_split |= spec->versions[v] != HFC_ORIGINAL;
    /* TwoNN needs every point at once: one batch of all images */
    st = hfc_stream(ds, ds->n, &spec->mask, need_split, (size_t)spec->n_versions * n_taps,
                    progress, id_step, &c, err);
    free(c.act);
    return st;
}
