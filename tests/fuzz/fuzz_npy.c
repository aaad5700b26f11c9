/* fuzz_npy.c - libFuzzer harness: any bytes as a pair of .npy files (the
 * images and the labels) must load or fail with a data status. The first
 * two bytes say where the images end (modulo the size); bit 0 of the third
 * picks the layout. A set that loads must hold in-range labels. */
#include "fuzz_dataset.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    size_t rest = size - 3, cut = ((size_t)data[0] | (size_t)data[1] << 8) % (rest + 1);
    hfc_dataset ds;
    hfc_error err;
    hfc_status st = hfc_dataset_parse_npy(&ds, data + 3, cut, data + 3 + cut, rest - cut,
                                          data[2] & 1, HFC_CIFAR10, 8, &err);
    return fuzz_check_dataset(st, &ds, 10);
}
