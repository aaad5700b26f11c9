/* attack.c - FGSM and PGD on the engine's input gradients (hfc.h, hfc_attack).
 * A peer of evaluate.c over the same engine API: data -> split -> attack. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hfc/experiments.h"

uint64_t hfc_splitmix64(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

double hfc_uniform(uint64_t seed, uint64_t image, uint64_t value)
{
    uint64_t h = hfc_splitmix64(hfc_splitmix64(hfc_splitmix64(seed) ^ image) ^ value);
    return (double)(h >> 40) / (double)(1 << 24);
}

/* Cross-entropy with the labels: d loss / d logits = softmax - one-hot,
 * computed in float as PyTorch's log_softmax backward does, exp(z - max -
 * log(sum exp(z - max))) - one-hot: for a very confident image the gradient
 * is a few float steps of 1 - p, and computing it any other way changes
 * its signs, so FGSM's step. */
typedef struct {
    const uint16_t *labels;  /* of the call's images */
    int k;
} ce_loss;

static void ce_grad(void *ctx, int pass, size_t first, size_t count, const float *logits,
                    float *dlogits)
{
    const ce_loss *c = ctx;
    (void)pass;
    for (size_t i = 0; i < count; i++) {
        const float *z = logits + i * c->k;
        float *d = dlogits + i * c->k;
        float mx = z[0], sum = 0.0f;
        for (int j = 1; j < c->k; j++)
            mx = z[j] > mx ? z[j] : mx;
        for (int j = 0; j < c->k; j++)
            sum += expf(z[j] - mx);
        const float lse = logf(sum);
        for (int j = 0; j < c->k; j++)
            d[j] = expf(z[j] - mx - lse) - (float)(j == c->labels[first + i]);
    }
}

static size_t count_correct(const float *logits, int k, const uint16_t *labels, size_t n)
{
    size_t ok = 0;
    for (size_t i = 0; i < n; i++)
        ok += hfc_argmax(logits + i * k, k) == labels[i];
    return ok;
}

typedef struct {
    size_t P;                            /* values in an image */
    float *x0, *x, *pix, *grad, *logits; /* batch-sized buffers */
} attack_buffers;

/* Attack n images x0 (raw pixel units) of one engine at eps: returns the
 * clean and adversarial correct counts in ok[0], ok[1]. */
static hfc_status attack_batch(hfc_engine *e, const hfc_attack_spec *spec, double eps,
                               const float *raw, const uint16_t *labels, size_t n, size_t first,
                               int k, attack_buffers *b, size_t ok[2], hfc_error *err)
{
    const size_t P = b->P, total = n * P;
    const float feps = (float)eps;
    const float step = (float)(spec->step_size > 0 ? spec->step_size : spec->pgd ? eps / 4 : eps);
    ce_loss loss = {labels, k};
    hfc_status st;
    for (size_t i = 0; i < total; i++)
        b->x0[i] = raw[i] / 255.0f;
    memcpy(b->x, b->x0, total * sizeof *b->x);
    /* The clean accuracy, by the same engine: without a random start the
     * first step's forward is on the clean images themselves (as raw
     * pixels) and gives it; else a forward of its own. */
    const int first_at_clean = !spec->random_start;
    if (!first_at_clean) {
        hfc_engine_forward(e, raw, n, b->logits);
        ok[0] = count_correct(b->logits, k, labels, n);
    }
    if (spec->random_start)
        for (size_t i = 0; i < n; i++)
            for (size_t v = 0; v < P; v++) {
                float u = (float)hfc_uniform(spec->seed, first + i, v);
                float t = b->x0[i * P + v] + feps * (2.0f * u - 1.0f);
                b->x[i * P + v] = t < 0.0f ? 0.0f : t > 1.0f ? 1.0f : t;
            }
    for (int s = 0; s < spec->steps; s++) {
        const float *at = raw;
        if (s || !first_at_clean) {
            for (size_t i = 0; i < total; i++)
                b->pix[i] = b->x[i] * 255.0f;
            at = b->pix;
        }
        if ((st = hfc_engine_input_grad(e, at, n, 1, ce_grad, &loss, b->logits, b->grad, err)))
            return st;
        if (!s && first_at_clean)
            ok[0] = count_correct(b->logits, k, labels, n);
        for (size_t i = 0; i < total; i++) {
            float g = b->grad[i], t = b->x[i] + step * (float)((g > 0) - (g < 0));
            float lo = b->x0[i] - feps, hi = b->x0[i] + feps;
            t = t < lo ? lo : t > hi ? hi : t;
            b->x[i] = t < 0.0f ? 0.0f : t > 1.0f ? 1.0f : t;
        }
    }
    for (size_t i = 0; i < total; i++)
        b->pix[i] = b->x[i] * 255.0f;
    hfc_engine_forward(e, b->pix, n, b->logits);
    ok[1] = count_correct(b->logits, k, labels, n);
    return HFC_OK;
}

/* What the attack's step needs besides the batch. */
typedef struct {
    hfc_engine *const *engines;
    int n_models, n_eps, n_masks, K;
    const hfc_attack_spec *spec;
    const double *eps;
    const hfc_mask *masks;
    attack_buffers b;
    hfc_attack_tally *tallies;
} attack_run;

/* Every model at every eps on the images `in` (version v, mask r's tallies,
 * or for the originals every mask's). */
static hfc_status attack_version(attack_run *c, const hfc_batch *b, const float *in, int v,
                                 int r, hfc_error *err)
{
    const int R = c->n_masks > 0 ? c->n_masks : 1;
    for (int j = 0; j < c->n_models; j++)
        for (int q = 0; q < c->n_eps; q++) {
            size_t ok[2];
            hfc_status st = attack_batch(c->engines[j], c->spec, c->eps[q], in, b->labels, b->n,
                                         b->ds->first + b->first, c->K, &c->b, ok, err);
            if (st)
                return st;
            for (int k = v == HFC_ORIGINAL ? 0 : r; k < (v == HFC_ORIGINAL ? R : r + 1); k++) {
                hfc_attack_tally *t = &c->tallies[((size_t)j * c->n_eps + q) * R + k];
                t->correct[v][0] += ok[0];
                t->correct[v][1] += ok[1];
            }
        }
    return HFC_OK;
}

/* One batch: the original images once for every mask's report, then the
 * low and high images of each mask. */
static hfc_status attack_step(hfc_batch *b, void *arg, hfc_error *err)
{
    attack_run *c = arg;
    hfc_status st = attack_version(c, b, b->x, HFC_ORIGINAL, 0, err);
    for (int r = 0; !st && r < c->n_masks; r++) {
        if ((st = hfc_split_apply(b->split, &c->masks[r], err)))
            break;
        for (int v = HFC_LOW; !st && v <= HFC_HIGH; v++)
            st = attack_version(c, b,
                                v == HFC_LOW ? hfc_split_low(b->split) : hfc_split_high(b->split),
                                v, r, err);
    }
    return st;
}

hfc_status hfc_attack(hfc_engine *const *engines, const hfc_model *const *models, int n_models,
                      const hfc_attack_spec *spec, const double *eps, int n_eps,
                      const hfc_mask *masks, int n_masks, const hfc_dataset *ds, size_t batch,
                      const hfc_progress *progress, hfc_attack_tally *tallies, hfc_error *err)
{
    hfc_status st = hfc_check_models(models, n_models, ds, 1, err);
    if (st)
        return st;
    const int R = n_masks > 0 ? n_masks : 1;
    batch = hfc_engines_batch(engines, n_models, batch, ds->n);
    const size_t P = hfc_dataset_image_size(ds);
    attack_run c = {engines, n_models, n_eps, n_masks, ds->n_classes, spec, eps, masks, {0},
                    tallies};
    c.b.P = P;
    c.b.x0 = hfc_alloc_big(batch * P * sizeof *c.b.x0);
    c.b.x = hfc_alloc_big(batch * P * sizeof *c.b.x);
    c.b.pix = hfc_alloc_big(batch * P * sizeof *c.b.pix);
    c.b.grad = hfc_alloc_big(batch * P * sizeof *c.b.grad);
    c.b.logits = malloc(batch * (size_t)c.K * sizeof *c.b.logits);
    if (!c.b.x0 || !c.b.x || !c.b.pix || !c.b.grad || !c.b.logits)
        st = hfc_fail(err, HFC_ERR_NOMEM, NULL, "out of memory for a batch of %zu images", batch);
    for (int j = 0; j < n_models; j++)
        for (int q = 0; q < n_eps; q++)
            for (int r = 0; r < R; r++) {
                hfc_attack_tally *t = &tallies[((size_t)j * n_eps + q) * R + r];
                memset(t, 0, sizeof *t);
                t->eps = eps[q];
                t->has_mask = n_masks > 0;
                if (n_masks > 0)
                    t->mask = masks[r];
                t->images = ds->n;
            }
    if (!st)
        st = hfc_stream(ds, batch, masks, n_masks, 1, progress, attack_step, &c, err);
    free(c.b.x0);
    free(c.b.x);
    free(c.b.pix);
    free(c.b.grad);
    free(c.b.logits);
    return st;
}
