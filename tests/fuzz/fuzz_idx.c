/* fuzz_idx.c - libFuzzer harness: any bytes as a pair of idx files (images,
 * labels), gzip-compressed when bit 0 of the third byte says so, must load
 * or fail with a data status. The first two bytes say where the images end
 * (modulo the size). A set that loads holds in-range labels. */
#include <stdlib.h>

#include "data/npy.h"
#include "fuzz_dataset.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    size_t rest = size - 3, cut = ((size_t)data[0] | (size_t)data[1] << 8) % (rest + 1);
    const uint8_t *img = data + 3, *lab = data + 3 + cut;
    size_t img_len = cut, lab_len = rest - cut;
    uint8_t *inflated = NULL;
    hfc_error err;
    hfc_status st = HFC_OK;
    if (data[2] & 1) { /* the images' bytes are a gzip member */
        st = hfc_inflate(img, img_len, 1, 1 << 20, &inflated, &img_len, "images.gz", &err);
        img = inflated;
    }
    hfc_dataset ds;
    hfc_npy_start(&ds, HFC_MNIST, "images");
    if (!st)
        st = hfc_idx_fill(&ds, img, img_len, "images", lab, lab_len, "labels", 8, &err);
    free(inflated);
    return fuzz_check_dataset(st, &ds, 10);
}
