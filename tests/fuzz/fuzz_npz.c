/* fuzz_npz.c - libFuzzer harness: any bytes as a .npz archive must load or
 * fail with a data status (bit 0 of the first byte picks the layout). A set
 * that loads holds in-range labels. */
#include "data/npy.h"
#include "fuzz_dataset.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    hfc_dataset ds;
    hfc_error err;
    hfc_npy_start(&ds, HFC_CIFAR10, "fuzz.npz");
    hfc_status st = hfc_npz_fill(&ds, data + 1, size - 1, "fuzz.npz", data[0] & 1, 8, &err);
    return fuzz_check_dataset(st, &ds, 10);
}
