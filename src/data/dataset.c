/* dataset.c - what every data source shares: the images' geometry, room for
 * them, an image as floats, shards, and the names of the sources. */
#include <stdlib.h>
#include <string.h>

#include "hfc/data.h"

static const char *const NAMES[HFC_DATASET_KINDS] = {
    [HFC_CIFAR10] = "cifar10", [HFC_CIFAR100] = "cifar100", [HFC_MNIST] = "mnist",
    [HFC_FOLDER] = "folder", [HFC_CIFAR10C] = "cifar10-c",
};

const char *hfc_dataset_name(hfc_dataset_kind kind) { return NAMES[kind]; }
const char *hfc_set_name(hfc_set set) { return set == HFC_SET_TRAIN ? "train" : "test"; }

int hfc_dataset_kind_parse(const char *name)
{
    for (int k = 0; k < HFC_DATASET_KINDS; k++)
        if (!strcmp(name, NAMES[k]))
            return k;
    return -1;
}

size_t hfc_dataset_image_size(const hfc_dataset *ds)
{
    return (size_t)ds->channels * (size_t)ds->height * (size_t)ds->width;
}

void hfc_dataset_image(const hfc_dataset *ds, size_t i, float *out)
{
    const size_t P = hfc_dataset_image_size(ds);
    if (ds->values) {
        memcpy(out, ds->values + i * P, P * sizeof *out);
        return;
    }
    const uint8_t *p = ds->pixels + i * P;
    for (size_t k = 0; k < P; k++)
        out[k] = p[k];
}

hfc_status hfc_dataset_alloc(hfc_dataset *ds, size_t n, int floats, const char *path,
                             hfc_error *err)
{
    const size_t P = hfc_dataset_image_size(ds), room = n ? n : 1;
    ds->labels = malloc(room * sizeof *ds->labels);
    if (floats)
        ds->values = hfc_alloc_big(room * P * sizeof *ds->values);
    else
        ds->pixels = hfc_alloc_big(room * P);
    if (!ds->labels || (floats ? !ds->values : !ds->pixels)) {
        hfc_dataset_free(ds);
        return hfc_fail(err, HFC_ERR_NOMEM, path, "out of memory for %zu images of %dx%dx%d", n,
                        ds->channels, ds->height, ds->width);
    }
    return HFC_OK;
}

void hfc_dataset_free(hfc_dataset *ds)
{
    free(ds->labels);
    free(ds->pixels);
    free(ds->values);
    free(ds->class_names);
    ds->labels = NULL;
    ds->pixels = NULL;
    ds->values = NULL;
    ds->class_names = NULL;
    ds->n = 0;
}

hfc_status hfc_dataset_shard(hfc_dataset *ds, int index, int count, hfc_error *err)
{
    if (count < 1 || index < 0 || index >= count)
        return hfc_fail(err, HFC_ERR_USAGE, "", "--shard %d/%d: K must be in 0..N-1", index, count);
    const size_t n = ds->n, P = hfc_dataset_image_size(ds);
    size_t first = (size_t)((unsigned long long)index * n / (unsigned long long)count);
    size_t end = (size_t)((unsigned long long)(index + 1) * n / (unsigned long long)count);
    memmove(ds->labels, ds->labels + first, (end - first) * sizeof *ds->labels);
    if (ds->values)
        memmove(ds->values, ds->values + first * P, (end - first) * P * sizeof *ds->values);
    else
        memmove(ds->pixels, ds->pixels + first * P, (end - first) * P);
    ds->first = first;
    ds->n = end - first;
    return HFC_OK;
}
