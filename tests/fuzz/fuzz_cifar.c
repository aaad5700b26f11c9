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
    static const hfc_mask kinds[] = {{HFC_MASK_DISC, 30, 0}, {HFC_MASK_SQUARE, 9, 0},
                                     {HFC_MASK_GAUSSIAN, 3, 0}, {HFC_MASK_BAND, 2, 11}};
    if (!s && hfc_splitter_new(&s, 4, 3, 32, 32, kinds, 4, &err))
        return 0;
    float x[4 * HFC_CIFAR_PIXELS];
    for (size_t i = 0; i < ds.n * HFC_CIFAR_PIXELS; i++)
        x[i] = ds.pixels[i];
    hfc_split_forward(s, x, ds.n);
    hfc_mask m = kinds[ds.labels[0] % 4];
    m.r = m.kind == HFC_MASK_DISC ? ds.labels[0] % 10 * 3.0 : m.r;
    hfc_split_apply(s, &m, &err);
    hfc_dataset_free(&ds);
    return 0;
}
