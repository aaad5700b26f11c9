/* fuzz_dataset.h - what the data-source harnesses check of a load: a
 * failure is a data (or memory) status, a success holds labels in range.
 * Frees ds either way; returns 0 for libFuzzer. */
#ifndef HFC_FUZZ_DATASET_H
#define HFC_FUZZ_DATASET_H

#include "hfc.h"

static int fuzz_check_dataset(hfc_status st, hfc_dataset *ds, int classes)
{
    if (st && st != HFC_ERR_DATA && st != HFC_ERR_NOMEM)
        __builtin_trap();
    for (size_t i = 0; !st && i < ds->n; i++)
        if (ds->labels[i] >= classes)
            __builtin_trap();
    hfc_dataset_free(ds);
    return 0;
}

#endif
