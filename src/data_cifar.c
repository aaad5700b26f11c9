/* data_cifar.c - the CIFAR-10 binary format.
 *
 * A file is a sequence of 3073-byte records: 1 label byte (0..9), then
 * 1024 red, 1024 green and 1024 blue bytes, each plane row-major 32x32.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "hfc.h"

static hfc_status resolve_path(const char *path, char *out, size_t size, hfc_error *err)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return hfc_fail(err, HFC_ERR_IO, path,
                        "no such file or directory (get CIFAR-10: see README, 'Getting CIFAR-10')");
    if (S_ISDIR(st.st_mode)) {
        int n = snprintf(out, size, "%s/test_batch.bin", path);
        if (n < 0 || (size_t)n >= size)
            return hfc_fail(err, HFC_ERR_IO, path, "path too long");
        if (stat(out, &st) != 0)
            return hfc_fail(err, HFC_ERR_IO, path,
                            "directory has no test_batch.bin (expected the official cifar-10-batches-bin)");
        return HFC_OK;
    }
    snprintf(out, size, "%s", path);
    return HFC_OK;
}

hfc_status hfc_dataset_load(hfc_dataset *ds, const char *path, size_t limit, hfc_error *err)
{
    memset(ds, 0, sizeof *ds);
    hfc_status st = resolve_path(path, ds->path, sizeof ds->path, err);
    if (st)
        return st;

    uint8_t *raw;
    size_t len;
    char file[sizeof ds->path];
    memcpy(file, ds->path, sizeof file);
    if ((st = hfc_read_file(file, &raw, &len, err)))
        return st;
    st = hfc_dataset_parse(ds, raw, len, file, limit, err);
    free(raw);
    return st;
}

hfc_status hfc_dataset_parse(hfc_dataset *ds, const uint8_t *raw, size_t len, const char *path,
                             size_t limit, hfc_error *err)
{
    memset(ds, 0, sizeof *ds);
    snprintf(ds->path, sizeof ds->path, "%s", path);
    if (len == 0)
        return hfc_fail(err, HFC_ERR_DATA, ds->path, "empty file");
    if (len % HFC_CIFAR_RECORD) {
        return hfc_fail(err, HFC_ERR_DATA, ds->path,
                        "size %zu is not a multiple of %d (1 label byte + 3072 pixel bytes); "
                        "truncated or not a CIFAR-10 binary file (last record starts at byte %zu)",
                        len, HFC_CIFAR_RECORD, len - len % HFC_CIFAR_RECORD);
    }
    size_t n = len / HFC_CIFAR_RECORD;
    if (limit && limit < n)
        n = limit;
    ds->labels = malloc(n);
    ds->pixels = hfc_alloc_big(n * HFC_CIFAR_PIXELS);
    if (!ds->labels || !ds->pixels) {
        hfc_dataset_free(ds);
        return hfc_fail(err, HFC_ERR_NOMEM, ds->path, "out of memory for %zu images", n);
    }
    for (size_t i = 0; i < n; i++) {
        const uint8_t *rec = raw + i * HFC_CIFAR_RECORD;
        if (rec[0] >= HFC_CIFAR_CLASSES) {
            unsigned label = rec[0];
            hfc_dataset_free(ds);
            return hfc_fail(err, HFC_ERR_DATA, ds->path,
                            "label %u at byte offset %zu (record %zu) is not in 0..9",
                            label, i * HFC_CIFAR_RECORD, i);
        }
        ds->labels[i] = rec[0];
        memcpy(ds->pixels + i * HFC_CIFAR_PIXELS, rec + 1, HFC_CIFAR_PIXELS);
    }
    ds->n = n;
    return HFC_OK;
}

void hfc_dataset_free(hfc_dataset *ds)
{
    free(ds->labels);
    free(ds->pixels);
    ds->labels = NULL;
    ds->pixels = NULL;
    ds->n = 0;
}
