/* fuzz_image.c - libFuzzer harness: any bytes as a PNG or JPEG file must
 * decode or fail with a data status; a decoded image then goes through the
 * channel conversion, Resize and CenterCrop chosen by the first byte (small
 * sizes), whose result must have the planned size. */
#include <stdlib.h>

#include "data/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    const hfc_image_plan plan = {data[0] & 1 ? 1 : 3, (data[0] >> 1) & 7 ? ((data[0] >> 1) & 7) * 5 : 0,
                                 data[0] >> 4 ? (data[0] >> 4) * 3 : 0};
    hfc_image im;
    hfc_error err;
    hfc_status st = hfc_image_decode(data + 1, size - 1, "image", plan.channels, &im, &err);
    if (!st && (size_t)im.width * im.height > (1u << 22)) { /* the fuzzer's memory, not a bug */
        free(im.planes);
        return 0;
    }
    if (!st)
        st = hfc_image_transform(&im, &plan, "image", &err);
    if (st) {
        if (st != HFC_ERR_DATA && st != HFC_ERR_NOMEM)
            __builtin_trap();
        return 0;
    }
    if (im.channels != plan.channels || (plan.crop && (im.height != plan.crop || im.width != plan.crop)))
        __builtin_trap();
    free(im.planes);
    return 0;
}
