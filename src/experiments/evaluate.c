/* evaluate.c - the experiment loop: data -> split -> engine -> tallies. */
#include <stdlib.h>
#include <string.h>

#include "hfc/experiments.h"

/* The paper's rescaling of one low or high image: x / max(x) * 255, max over
 * all 3072 values, in double as its numpy code; an image whose max <= 0 is
 * left as it is. Returns 1 for such an image. */
static int rescale_by_max(const float *x, float *out)
{
    double mx = x[0];
    for (size_t k = 1; k < HFC_CIFAR_PIXELS; k++)
        mx = x[k] > mx ? x[k] : mx;
    if (!(mx > 0)) {
        memcpy(out, x, HFC_CIFAR_PIXELS * sizeof *out);
        return 1;
    }
    for (size_t k = 0; k < HFC_CIFAR_PIXELS; k++)
        out[k] = (float)(x[k] / mx * 255.0);
    return 0;
}

static void count(hfc_tally *t, int version, const float *logits, int k, const uint8_t *labels,
                  size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int ok = hfc_argmax(logits + i * k, k) == labels[i];
        t->correct[version] += ok;
        t->class_correct[labels[i]][version] += ok;
    }
}

hfc_status hfc_evaluate(hfc_engine *const *engines, const hfc_model *const *models, int n_models,
                        const hfc_mask *masks, int n_masks, const hfc_dataset *ds,
                        size_t batch, const hfc_protocol *protocol,
                        const hfc_progress *progress, hfc_tally *tallies, hfc_error *err)
{
    const int K = ds->n_classes;
    for (int j = 0; j < n_models; j++) {
        const hfc_model *m = models[j];
        if (m->channels != HFC_CIFAR_CHANNELS || m->height != HFC_CIFAR_SIDE ||
            m->width != HFC_CIFAR_SIDE)
            return hfc_fail(err, HFC_ERR_MODEL, m->path,
                            "model takes %dx%dx%d input; CIFAR images are 3x32x32",
                            m->channels, m->height, m->width);
        if (m->n_classes != K)
            return hfc_fail(err, HFC_ERR_MODEL, m->path, "model has %d classes; %s has %d%s",
                            m->n_classes, hfc_dataset_name(ds->kind), K,
                            m->n_classes == 100 ? " (use --dataset cifar100)" : "");
    }
    batch = hfc_engines_batch(engines, n_models, batch, ds->n);
    const int rescale = protocol && protocol->rescale_max;

    hfc_splitter *split = NULL;
    hfc_status st = hfc_splitter_new(&split, batch, masks, n_masks, err);
    if (st)
        return st;
    float *x = malloc(batch * HFC_CIFAR_PIXELS * sizeof *x);
    float *logits = malloc(batch * (size_t)K * sizeof *logits);
    float *scaled = rescale ? malloc(batch * HFC_CIFAR_PIXELS * sizeof *scaled) : NULL;
    if (!x || !logits || (rescale && !scaled)) {
        st = hfc_fail(err, HFC_ERR_NOMEM, NULL, "out of memory for a batch of %zu images", batch);
        goto done;
    }
    for (int k = 0; k < n_models * n_masks; k++) {
        memset(&tallies[k], 0, sizeof tallies[k]);
        tallies[k].mask = masks[k % n_masks];
        tallies[k].images = ds->n;
    }
    for (size_t i = 0; i < ds->n; i++)
        for (int k = 0; k < n_models * n_masks; k++)
            tallies[k].class_images[ds->labels[i]]++;

    for (size_t first = 0; first < ds->n; first += batch) {
        size_t n = ds->n - first < batch ? ds->n - first : batch;
        const uint8_t *labels = ds->labels + first;
        const uint8_t *pixels = ds->pixels + first * HFC_CIFAR_PIXELS;
        for (size_t k = 0; k < n * HFC_CIFAR_PIXELS; k++)
            x[k] = pixels[k];
        hfc_split_forward(split, x, n);
        for (int j = 0; j < n_models; j++) {
            hfc_engine_forward(engines[j], x, n, logits);
            for (int r = 0; r < n_masks; r++)
                count(&tallies[j * n_masks + r], HFC_ORIGINAL, logits, K, labels, n);
        }
        for (int r = 0; r < n_masks; r++) {
            if ((st = hfc_split_apply(split, &masks[r], err)))
                goto done;
            for (int v = HFC_LOW; v <= HFC_HIGH; v++) {
                const float *in = v == HFC_LOW ? hfc_split_low(split) : hfc_split_high(split);
                size_t skipped = 0;
                if (rescale) {
                    for (size_t i = 0; i < n; i++)
                        skipped += rescale_by_max(in + i * HFC_CIFAR_PIXELS,
                                                  scaled + i * HFC_CIFAR_PIXELS);
                    in = scaled;
                }
                for (int j = 0; j < n_models; j++) {
                    hfc_tally *t = &tallies[j * n_masks + r];
                    t->rescale_skipped[v] += skipped;
                    hfc_engine_forward(engines[j], in, n, logits);
                    count(t, v, logits, K, labels, n);
                }
            }
        }
        if (progress && progress->update)
            progress->update(progress->ctx, first + n, ds->n);
    }
done:
    free(x);
    free(logits);
    free(scaled);
    hfc_splitter_free(split);
    return st;
}
