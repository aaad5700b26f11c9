/* test_sources.c - the data sources' pixels and the split at any size, for
 * tests/sources.py to compare with PIL (decoding, Resize, CenterCrop) and
 * numpy (the split):
 *   test_sources folder ROOT CHANNELS RESIZE CROP OUT   the images as read
 *   test_sources split IMAGES.npy LABELS.npy R OUT      low at radius R (disc)
 * OUT: int32 n, C, H, W, then uint8 pixels (folder) or float32 low (split). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hfc.h"

static int write_out(const char *path, const hfc_dataset *ds, const void *data, size_t bytes)
{
    FILE *f = fopen(path, "wb");
    int32_t head[4] = {(int32_t)ds->n, ds->channels, ds->height, ds->width};
    int ok = f && fwrite(head, sizeof head, 1, f) == 1 && fwrite(data, 1, bytes, f) == bytes;
    return (f && fclose(f) == 0 && ok) ? 0 : 1;
}

int main(int argc, char **argv)
{
    hfc_error err;
    hfc_dataset ds;
    if (argc == 7 && !strcmp(argv[1], "folder")) {
        hfc_folder_options fo = {atoi(argv[3]), atoi(argv[4]), atoi(argv[5]), 2, 0};
        if (hfc_dataset_load_folder(&ds, argv[2], &fo, 0, &err)) {
            fprintf(stderr, "%s: %s\n", err.path, err.reason);
            return 1;
        }
        int rc = write_out(argv[6], &ds, ds.pixels, ds.n * hfc_dataset_image_size(&ds));
        hfc_dataset_free(&ds);
        return rc;
    }
    if (argc == 6 && !strcmp(argv[1], "split")) {
        if (hfc_dataset_load_npy(&ds, argv[2], argv[3], 0, HFC_CIFAR10, 0, &err)) {
            fprintf(stderr, "%s: %s\n", err.path, err.reason);
            return 1;
        }
        const size_t P = hfc_dataset_image_size(&ds);
        float *x = malloc(ds.n * P * sizeof *x);
        hfc_mask mask = {HFC_MASK_DISC, atof(argv[4]), 0};
        hfc_splitter *s = NULL;
        if (!x || hfc_splitter_new(&s, ds.n, ds.channels, ds.height, ds.width, &mask, 1, &err))
            return 1;
        for (size_t i = 0; i < ds.n; i++)
            hfc_dataset_image(&ds, i, x + i * P);
        hfc_split_forward(s, x, ds.n);
        if (hfc_split_apply(s, &mask, &err))
            return 1;
        int rc = write_out(argv[5], &ds, hfc_split_low(s), ds.n * P * sizeof(float));
        hfc_splitter_free(s);
        free(x);
        hfc_dataset_free(&ds);
        return rc;
    }
    fprintf(stderr, "usage: test_sources folder ROOT CHANNELS RESIZE CROP OUT | split IMAGES.npy "
                    "LABELS.npy R OUT\n");
    return 2;
}
