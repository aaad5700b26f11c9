/* evaluate.c - the experiment loop: data -> split -> engine -> tallies. */
#include <stdlib.h>
#include <string.h>

#include "hfc/experiments.h"

/* The paper's rescaling of one low or high image of P values: x / max(x) *
 * 255, max over all its values (3072 for CIFAR), in double as its numpy
 * code; an image whose max <= 0 is left as it is. Returns 1 for such an image. */
static int rescale_by_max(const float *x, size_t P, float *out)
{
    double mx = x[0];
    for (size_t k = 1; k < P; k++)
        mx = x[k] > mx ? x[k] : mx;
    if (!(mx > 0)) {
        memcpy(out, x, P * sizeof *out);
        return 1;
    }
    for (size_t k = 0; k < P; k++)
        out[k] = (float)(x[k] / mx * 255.0);
    return 0;
}

static void count(hfc_tally *t, int version, const float *logits, int k, const uint16_t *labels,
                  size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int ok = hfc_argmax(logits + i * k, k) == labels[i];
        t->correct[version] += ok;
        t->class_correct[labels[i]][version] += ok;
    }
}

/* What evaluate's step needs besides the batch. */
typedef struct {
    hfc_engine *const *engines;
    int n_models, n_masks, K, rescale;
    const hfc_mask *masks;
    float *logits, *scaled;
    hfc_tally *tallies;
} evaluate_run;

/* One batch: every model on the originals once, then per mask on the low
 * and high images (rescaled by their max under --rescale max). */
static hfc_status evaluate_batch(hfc_batch *b, void *arg, hfc_error *err)
{
    evaluate_run *c = arg;
    const size_t n = b->n;
    for (int j = 0; j < c->n_models; j++) {
        hfc_engine_forward(c->engines[j], b->x, n, c->logits);
        for (int r = 0; r < c->n_masks; r++)
            count(&c->tallies[j * c->n_masks + r], HFC_ORIGINAL, c->logits, c->K, b->labels, n);
    }
    for (int r = 0; r < c->n_masks; r++) {
        hfc_status st = hfc_split_apply(b->split, &c->masks[r], err);
        if (st)
            return st;
        for (int v = HFC_LOW; v <= HFC_HIGH; v++) {
            const float *in = v == HFC_LOW ? hfc_split_low(b->split) : hfc_split_high(b->split);
            size_t skipped = 0;
            if (c->rescale) {
                const size_t P = hfc_dataset_image_size(b->ds);
                for (size_t i = 0; i < n; i++)
                    skipped += rescale_by_max(in + i * P, P, c->scaled + i * P);
                in = c->scaled;
            }
            for (int j = 0; j < c->n_models; j++) {
                hfc_tally *t = &c->tallies[j * c->n_masks + r];
                t->rescale_skipped[v] += skipped;
                hfc_engine_forward(c->engines[j], in, n, c->logits);
                count(t, v, c->logits, c->K, b->labels, n);
            }
        }
    }
    return HFC_OK;
}

hfc_status hfc_evaluate(hfc_engine *const *engines, const hfc_model *const *models, int n_models,
                        const hfc_mask *masks, int n_masks, const hfc_dataset *ds,
                        size_t batch, const hfc_protocol *protocol,
                        const hfc_progress *progress, hfc_tally *tallies, hfc_error *err)
{
    hfc_status st = hfc_check_models(models, n_models, ds, 1, err);
    if (st)
        return st;
    batch = hfc_engines_batch(engines, n_models, batch, ds->n);
    evaluate_run c = {engines, n_models, n_masks, ds->n_classes,
                      protocol && protocol->rescale_max, masks, NULL, NULL, tallies};
    c.logits = malloc(batch * (size_t)c.K * sizeof *c.logits);
    c.scaled = c.rescale
                   ? hfc_alloc_big(batch * hfc_dataset_image_size(ds) * sizeof *c.scaled)
                   : NULL;
    if (!c.logits || (c.rescale && !c.scaled)) {
        free(c.logits);
        free(c.scaled);
        return hfc_fail(err, HFC_ERR_NOMEM, NULL, "out of memory for a batch of %zu images", batch);
    }
    for (int k = 0; k < n_models * n_masks; k++) {
        memset(&tallies[k], 0, sizeof tallies[k]);
        tallies[k].mask = masks[k % n_masks];
        tallies[k].images = ds->n;
    }
    for (size_t i = 0; i < ds->n; i++)
        for (int k = 0; k < n_models * n_masks; k++)
            tallies[k].class_images[ds->labels[i]]++;
    st = hfc_stream(ds, batch, masks, n_masks, 1, progress, evaluate_batch, &c, err);
    free(c.logits);
    free(c.scaled);
    return st;
}
