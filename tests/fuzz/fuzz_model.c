/* fuzz_model.c - libFuzzer harness: any bytes as a model file must load or
 * fail with a status, never crash, leak or read out of bounds; a model that
 * loads must also plan, and run on one image when that is cheap (most
 * mutants of a real model are still real models; running every one would
 * cut the loader's executions per second a hundredfold).
 * A version-3 input of even length gets its checksum made anew before it is
 * parsed, so that mutations reach the parser behind the checksum; odd
 * lengths keep theirs and exercise the mismatch. */
#include <stdlib.h>
#include <string.h>

#include "hfc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    hfc_model m;
    hfc_error err;
    uint8_t *copy = NULL;
    if (size >= 56 && size % 2 == 0 && !memcmp(data, "HFCMODEL\3\0\0\0", 12) &&
        (copy = malloc(size))) {
        char hex[65];
        memcpy(copy, data, size);
        hfc_sha256_prefix_and_whole(copy, size, size - 32, copy + size - 32, hex);
        data = copy;
    }
    hfc_status st = hfc_model_parse(&m, data, size, "fuzz", &err);
    free(copy);
    if (st)
        return 0;
    hfc_engine *e;
    if (!hfc_engine_new(&e, &m, &(hfc_engine_options){.threads = 1}, &err)) {
        size_t in = (size_t)m.channels * m.height * m.width;
        if (in <= 3 * 64 * 64 && hfc_engine_flops(e) <= 2e5) {
            float *x = calloc(in, sizeof *x), *y = malloc((size_t)m.n_classes * sizeof *y);
            if (x && y)
                hfc_engine_forward(e, x, 1, y);
            free(x);
            free(y);
        }
        hfc_engine_free(e);
    }
    hfc_model_free(&m);
    return 0;
}
