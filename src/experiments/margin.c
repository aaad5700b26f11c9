/* margin.c - "Hold me tight!" margins (Ortiz-Jimenez et al., NeurIPS 2020):
 * each image's distance to the decision boundary along subspaces of the
 * 2-D DCT, by DeepFool constrained to the subspace (hfc.h, hfc_margin).
 * A peer of evaluate.c and attack.c over the engine API.
 *
 * The subspace at offset o: the orthonormal DCT-II atoms (u, v) with
 * o <= u, v < o + K, each on each of the 3 channels (dimension 3K^2). With
 * D the 32x32 orthonormal DCT matrix and D_o its rows o .. o+K-1, the
 * projection of a channel w onto the subspace is D_o' (D_o w D_o') D_o, and
 * ||S'w|| is the norm of the K x K coefficients D_o w D_o'. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hfc/experiments.h"

#define SIDE HFC_CIFAR_SIDE

/* D[u][i] = c(u) cos(pi (2i + 1) u / 64), c(0) = sqrt(1/32), else sqrt(2/32). */
static void dct_matrix(double D[SIDE][SIDE])
{
    for (int u = 0; u < SIDE; u++)
        for (int i = 0; i < SIDE; i++)
            D[u][i] = sqrt((u ? 2.0 : 1.0) / SIDE) * cos(3.14159265358979323846 * (2 * i + 1) * u / (2.0 * SIDE));
}

/* proj = S S' w for one image (3 planes), and ||S' w||. */
static double project(double D[SIDE][SIDE], int o, int K, const float *w, float *proj)
{
    double norm2 = 0;
    for (int c = 0; c < HFC_CIFAR_CHANNELS; c++) {
        const float *wc = w + c * SIDE * SIDE;
        double t[SIDE][SIDE], coef[SIDE][SIDE]; /* t = D_o w (K x 32); coef = t D_o' (K x K) */
        for (int u = 0; u < K; u++)
            for (int j = 0; j < SIDE; j++) {
                double s = 0;
                for (int i = 0; i < SIDE; i++)
                    s += D[o + u][i] * wc[i * SIDE + j];
                t[u][j] = s;
            }
        for (int u = 0; u < K; u++)
            for (int v = 0; v < K; v++) {
                double s = 0;
                for (int j = 0; j < SIDE; j++)
                    s += t[u][j] * D[o + v][j];
                coef[u][v] = s;
                norm2 += s * s;
            }
        /* back: proj = D_o' coef D_o */
        for (int u = 0; u < K; u++)
            for (int j = 0; j < SIDE; j++) {
                double s = 0;
                for (int v = 0; v < K; v++)
                    s += coef[u][v] * D[o + v][j];
                t[u][j] = s;
            }
        for (int i = 0; i < SIDE; i++)
            for (int j = 0; j < SIDE; j++) {
                double s = 0;
                for (int u = 0; u < K; u++)
                    s += D[o + u][i] * t[u][j];
                proj[c * SIDE * SIDE + i * SIDE + j] = (float)s;
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

hfc_status hfc_margin(hfc_engine *engine, const hfc_model *model, const hfc_dataset *ds,
                      const hfc_margin_spec *spec, size_t batch, const hfc_progress *progress,
                      float *margins, hfc_error *err)
{
    const int K = spec->block, S = hfc_margin_subspaces(spec), C = model->n_classes;
    const size_t P = HFC_CIFAR_PIXELS;
    if (K < 1 || SIDE % K || spec->stride < 1)
        return hfc_fail(err, HFC_ERR_USAGE, "", "--block must divide 32 and --stride be positive");
    hfc_engine *const engines[1] = {engine};
    batch = hfc_engines_batch(engines, 1, batch, ds->n);
    static double D[SIDE][SIDE];
    dct_matrix(D);
    float *x0 = malloc(batch * P * sizeof *x0), *xi = malloc(batch * P * sizeof *xi);
    float *r = malloc(batch * P * sizeof *r), *pix = malloc(batch * P * sizeof *pix);
    float *grads = malloc((size_t)C * batch * P * sizeof *grads);
    float *logits = malloc((size_t)C * batch * sizeof *logits);
    float *f = malloc((size_t)C * batch * sizeof *f), *w = malloc(P * sizeof *w);
    float *proj = malloc(P * sizeof *proj), *best = malloc(P * sizeof *best);
    int *label = malloc(batch * sizeof *label), *done = malloc(batch * sizeof *done);
    hfc_status st = HFC_OK;
    if (!x0 || !xi || !r || !pix || !grads || !logits || !f || !w || !proj || !best || !label ||
        !done) {
        st = hfc_fail(err, HFC_ERR_NOMEM, NULL, "out of memory for a batch of %zu images", batch);
        goto out;
    }
    for (size_t first = 0; first < ds->n; first += batch) {
        size_t n = ds->n - first < batch ? ds->n - first : batch;
        for (size_t i = 0; i < n * P; i++) {
            pix[i] = ds->pixels[first * P + i];
            x0[i] = pix[i] / 255.0f;
        }
        hfc_engine_forward(engine, pix, n, logits);
        for (size_t b = 0; b < n; b++)
            label[b] = hfc_argmax(logits + b * C, C); /* the reference label: the prediction */
        for (int s = 0; s < S; s++) {
            const int o = s * spec->stride;
            memcpy(xi, x0, n * P * sizeof *xi);
            memset(r, 0, n * P * sizeof *r);
            memset(done, 0, n * sizeof *done);
            size_t left = n;
            for (int it = 0; it < spec->max_iter && left; it++) {
                for (size_t i = 0; i < n * P; i++)
                    pix[i] = xi[i] * 255.0f;
                for (int k = 0; k < C; k++) { /* grads[k] = d f_k / d x, x in [0, 1] */
                    one_class oc = {k, C};
                    float *gk = grads + (size_t)k * n * P;
                    if ((st = hfc_engine_input_grad(engine, pix, n, class_seed, &oc, f, gk, err)))
                        goto out;
                    for (size_t i = 0; i < n * P; i++)
                        gk[i] *= 255.0f;
                }
                for (size_t b = 0; b < n; b++) {
                    if (done[b])
                        continue;
                    const int k0 = label[b];
                    const float *g0 = grads + (size_t)k0 * n * P + b * P;
                    double pert = INFINITY, pnorm = 0;
                    for (int k = 0; k < C; k++) {
                        if (k == k0)
                            continue;
                        const float *gk = grads + (size_t)k * n * P + b * P;
                        for (size_t i = 0; i < P; i++)
                            w[i] = gk[i] - g0[i];
                        double norm = project(D, o, K, w, proj);
                        double pk = fabs((double)f[b * C + k] - f[b * C + k0]) / norm;
                        if (norm > 0 && pk < pert) {
                            pert = pk;
                            pnorm = norm;
                            memcpy(best, proj, P * sizeof *best);
                        }
                    }
                    if (!isfinite(pert)) { /* no direction in the subspace moves it */
                        done[b] = 2;
                        left--;
                        continue;
                    }
                    const double scale = (pert > 1e-4 ? pert : 1e-4) / pnorm;
                    for (size_t i = 0; i < P; i++) {
                        float ri = (float)(scale * best[i]);
                        r[b * P + i] += ri;
                        xi[b * P + i] += ri;
                    }
                }
                /* Fooled yet? The prediction at x0 + (1 + overshoot) r. */
                const float over = (float)(1.0 + spec->overshoot);
                for (size_t i = 0; i < n * P; i++)
                    pix[i] = (x0[i] + over * r[i]) * 255.0f;
                hfc_engine_forward(engine, pix, n, logits);
                for (size_t b = 0; b < n; b++)
                    if (!done[b] && hfc_argmax(logits + b * C, C) != label[b]) {
                        done[b] = 1;
                        left--;
                    }
            }
            for (size_t b = 0; b < n; b++) {
                double norm2 = 0;
                for (size_t i = 0; i < P; i++) {
                    double v = (1.0 + spec->overshoot) * r[b * P + i];
                    norm2 += v * v;
                }
                /* not fooled within max_iter, or no direction: NaN (JSON null) */
                margins[(size_t)s * ds->n + first + b] = done[b] == 1 ? (float)sqrt(norm2) : NAN;
            }
        }
        if (progress && progress->update)
            progress->update(progress->ctx, first + n, ds->n);
    }
out:
    free(x0), free(xi), free(r), free(pix), free(grads), free(logits), free(f), free(w);
    free(proj), free(best), free(label), free(done);
    return st;
}

int hfc_margin_subspaces(const hfc_margin_spec *spec)
{
    return spec->block < 1 || spec->block > SIDE || spec->stride < 1
               ? 0
               : (SIDE - spec->block) / spec->stride + 1;
}
