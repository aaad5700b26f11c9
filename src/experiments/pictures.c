/* pictures.c - what the pictures of a run show, computed here so that the
 * drawing (src/report/png.c) only draws: the images picked for the grids,
 * their low and high versions under each mask, and each model's prediction
 * and confidence (the largest softmax probability) on every version. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hfc/experiments.h"

static float softmax_max(const float *logits, int k, int *best)
{
    *best = 0;
    for (int i = 1; i < k; i++)
        if (logits[i] > logits[*best])
            *best = i;
    double sum = 0;
    for (int i = 0; i < k; i++)
        sum += exp((double)logits[i] - logits[*best]);
    return (float)(1.0 / sum);
}

/* The images the grids show: those asked for, else the first of each class. */
static hfc_status pick_images(const hfc_dataset *ds, const size_t *images, int n_images,
                              hfc_grid_data *g, hfc_error *err)
{
    int k = 0;
    if (n_images > 0) {
        for (; k < n_images && k < HFC_MAX_PNG_IMAGES; k++) {
            if (images[k] >= ds->n)
                return hfc_fail(err, HFC_ERR_USAGE, "",
                                "--png-images: image %zu is past the end of the %zu images used",
                                images[k], ds->n);
            g->index[k] = images[k];
        }
    } else { /* the first image of each class, in class order */
        for (int cls = 0; cls < ds->n_classes && k < HFC_MAX_PNG_IMAGES; cls++)
            for (size_t i = 0; i < ds->n; i++)
                if (ds->labels[i] == cls) {
                    g->index[k++] = i;
                    break;
                }
    }
    if (k == 0)
        return hfc_fail(err, HFC_ERR_DATA, ds->path, "no images to draw");
    g->n_images = k;
    for (int i = 0; i < k; i++)
        g->label[i] = ds->labels[g->index[i]];
    return HFC_OK;
}

/* Every model's prediction on the k images of `in` (one version). */
static void predict(hfc_engine *e, int n_classes, const float *in, int k, float *logits,
                    int *pred, float *confidence)
{
    hfc_engine_forward(e, in, (size_t)k, logits);
    for (int i = 0; i < k; i++)
        confidence[i * HFC_VERSIONS] =
            softmax_max(logits + (size_t)i * n_classes, n_classes, &pred[i * HFC_VERSIONS]);
}

hfc_status hfc_grid_predict(hfc_engine *const *engines, const hfc_model *const *models,
                            int n_models, const hfc_mask *masks, int n_masks,
                            const hfc_dataset *ds, const size_t *images, int n_images,
                            hfc_grid_data *g, hfc_error *err)
{
    memset(g, 0, sizeof *g);
    hfc_status st = pick_images(ds, images, n_images, g, err);
    if (st)
        return st;
    const int k = g->n_images;
    const size_t P = hfc_dataset_image_size(ds), per_mask = (size_t)k * P;
    g->channels = ds->channels;
    g->height = ds->height;
    g->width = ds->width;
    const size_t preds = (size_t)n_models * n_masks * k * HFC_VERSIONS;
    g->n_models = n_models;
    g->n_masks = n_masks;
    g->pixels = malloc(per_mask);
    g->original = malloc(per_mask * sizeof(float));
    g->low = malloc((size_t)n_masks * per_mask * sizeof(float));
    g->high = malloc((size_t)n_masks * per_mask * sizeof(float));
    g->pred = malloc(preds * sizeof *g->pred);
    g->confidence = malloc(preds * sizeof *g->confidence);
    float *logits = malloc((size_t)k * HFC_MAX_CLASSES * sizeof *logits);
    hfc_splitter *split = NULL;
    if (!g->pixels || !g->original || !g->low || !g->high || !g->pred || !g->confidence ||
        !logits) {
        st = hfc_fail(err, HFC_ERR_NOMEM, NULL, "out of memory for the pictures");
        goto done;
    }
    for (int i = 0; i < k; i++) {
        hfc_dataset_image(ds, g->index[i], g->original + i * P);
        for (size_t t = 0; t < P; t++) {
            float v = g->original[i * P + t];
            g->pixels[i * P + t] = v <= 0 ? 0 : v >= 255 ? 255 : (uint8_t)lrintf(v);
        }
    }
    if ((st = hfc_splitter_new(&split, (size_t)k, ds->channels, ds->height, ds->width, masks,
                               n_masks, err)))
        goto done;
    hfc_split_forward(split, g->original, (size_t)k);
    for (int r = 0; r < n_masks; r++) {
        if ((st = hfc_split_apply(split, &masks[r], err)))
            goto done;
        memcpy(g->low + r * per_mask, hfc_split_low(split), per_mask * sizeof(float));
        memcpy(g->high + r * per_mask, hfc_split_high(split), per_mask * sizeof(float));
        for (int j = 0; j < n_models; j++) {
            const float *in[HFC_VERSIONS] = {g->original, g->low + r * per_mask,
                                             g->high + r * per_mask};
            for (int v = 0; v < HFC_VERSIONS; v++) {
                size_t at = (((size_t)j * n_masks + r) * k) * HFC_VERSIONS + v;
                predict(engines[j], models[j]->n_classes, in[v], k, logits, g->pred + at,
                        g->confidence + at);
            }
        }
    }
done:
    hfc_splitter_free(split);
    free(logits);
    if (st)
        hfc_grid_free(g);
    return st;
}

void hfc_grid_free(hfc_grid_data *g)
{
    free(g->pixels);
    free(g->original);
    free(g->low);
    free(g->high);
    free(g->pred);
    free(g->confidence);
    memset(g, 0, sizeof *g);
}
