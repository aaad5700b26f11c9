/* fuzz_model.c - libFuzzer harness: any bytes as a model file must load or
 * fail with a status, never crash, leak or read out of bounds; a model that
 * loads must also plan, and run on one image when that is cheap (most
 * mutants of a real model are still real models; running every one would
 * cut the loader's executions per second a hundredfold). */
#include <stdlib.h>

#include "hfc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    hfc_model m;
    hfc_error err;
    if (hfc_model_parse(&m, data, size, "fuzz", &err))
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
