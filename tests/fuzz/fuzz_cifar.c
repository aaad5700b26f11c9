/* fuzz_cifar.c - libFuzzer harness: any bytes as a CIFAR-10 file (or, when
 * the size is a multiple of 3074, a CIFAR-100 file) must load or fail with
 * a status; a file that loads is split at a radius from its first label
 * (0 to 27; the splitter serves up to 30). */
#include "hfc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    hfc_dataset ds;
    hfc_error err;
    if (hfc_dataset_parse(&ds, data, size, "fuzz", size % 3074 == 0 ? HFC_CIFAR100 : HFC_CIFAR10, 4, &err))
        return 0;
    static hfc_splitter *s;
    if (!s && hfc_splitter_new(&s, 4, 30, &err))
        return 0;
    float x[4 * HFC_CIFAR_PIXELS];
    for (size_t i = 0; i < ds.n * HFC_CIFAR_PIXELS; i++)
        x[i] = ds.pixels[i];
    hfc_split_forward(s, x, ds.n);
    hfc_split_radius(s, ds.labels[0] % 10 * 3.0, &err);
    hfc_dataset_free(&ds);
    return 0;
}
