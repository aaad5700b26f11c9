/* stream.c - the skeleton every experiment shares: check the models against
 * the data, then stream the data in batches (bytes to floats, the split's
 * forward transform when masks are given), hand each batch to the
 * experiment's step, and report progress. */
#include <stdlib.h>
#include <string.h>

#include "hfc/experiments.h"

hfc_status hfc_check_models(const hfc_model *const *models, int n_models, const hfc_dataset *ds,
                            int classes, hfc_error *err)
{
    for (int j = 0; j < n_models; j++) {
        const hfc_model *m = models[j];
        if (m->channels != ds->channels || m->height != ds->height || m->width != ds->width)
            return hfc_fail(err, HFC_ERR_MODEL, m->path,
                            "model takes %dx%dx%d images; %s has %dx%dx%d (C x H x W)%s",
                            m->channels, m->height, m->width, ds->path, ds->channels, ds->height,
                            ds->width,
                            ds->kind == HFC_FOLDER ? ": --resize S and --crop C make them agree"
                                                   : "");
        if (classes && m->n_classes != ds->n_classes)
            return hfc_fail(err, HFC_ERR_MODEL, m->path, "model has %d classes; %s has %d%s",
                            m->n_classes, hfc_dataset_name(ds->kind), ds->n_classes,
                            m->n_classes == 100 ? " (use --dataset cifar100)" : "");
    }
    return HFC_OK;
}

void hfc_batch_progress(const hfc_batch *b, size_t done)
{
    if (b->progress && b->progress->update)
        b->progress->update(b->progress->ctx, done, b->total);
}

hfc_status hfc_stream(const hfc_dataset *ds, size_t batch, const hfc_mask *masks, int n_masks,
                      size_t units, const hfc_progress *progress, hfc_batch_fn step, void *ctx,
                      hfc_error *err)
{
    const size_t P = hfc_dataset_image_size(ds);
    hfc_batch b = {.ds = ds, .batch = batch, .progress = progress, .units = units,
                   .total = ds->n * units};
    hfc_status st = HFC_OK;
    b.x = malloc((batch ? batch : 1) * P * sizeof *b.x);
    if (!b.x)
        return hfc_fail(err, HFC_ERR_NOMEM, NULL, "out of memory for a batch of %zu images", batch);
    if (n_masks > 0 && (st = hfc_splitter_new(&b.split, batch, ds->channels, ds->height,
                                              ds->width, masks, n_masks, err))) {
        free(b.x);
        return st;
    }
    for (b.first = 0; !st && b.first < ds->n; b.first += batch) {
        b.n = ds->n - b.first < batch ? ds->n - b.first : batch;
        b.labels = ds->labels + b.first;
        for (size_t i = 0; i < b.n; i++)
            hfc_dataset_image(ds, b.first + i, b.x + i * P);
        if (b.split)
            hfc_split_forward(b.split, b.x, b.n);
        if (!(st = step(&b, ctx, err)))
            hfc_batch_progress(&b, (b.first + b.n) * units);
    }
    hfc_splitter_free(b.split);
    free(b.x);
    return st;
}
