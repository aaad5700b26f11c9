/* cifar10c.c - CIFAR-10-C (Hendrycks & Dietterich, ICLR 2019) as its
 * directory ships: DIR/labels.npy (50,000 labels) and one DIR/NAME.npy per
 * corruption, uint8 (50,000, 32, 32, 3): severity s (1..5) is images
 * (s - 1) * 10,000 .. s * 10,000 - 1 of both. tools/corrupt.py writes the
 * same layout. A set is one corruption at one severity. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "data/npy.h"

#define SEVERITIES 5

static int by_name(const void *a, const void *b) { return strcmp(a, b); }

hfc_status hfc_cifar10c_list(const char *dir, char (*names)[32], int max, int *n, hfc_error *err)
{
    *n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return hfc_fail(err, HFC_ERR_IO, dir, "cannot read the directory (CIFAR-10-C: NAME.npy "
                        "per corruption and labels.npy)");
    hfc_status st = HFC_OK;
    for (struct dirent *e; !st && (e = readdir(d));) {
        size_t len = strlen(e->d_name);
        if (len < 5 || strcmp(e->d_name + len - 4, ".npy") || !strcmp(e->d_name, "labels.npy"))
            continue;
        if (len - 4 >= 32)
            st = hfc_fail(err, HFC_ERR_DATA, dir, "corruption name %s is too long", e->d_name);
        else if (*n == max)
            st = hfc_fail(err, HFC_ERR_DATA, dir, "more than %d corruptions", max);
        else
            snprintf(names[(*n)++], 32, "%.*s", (int)(len - 4), e->d_name);
    }
    closedir(d);
    if (!st && *n == 0)
        st = hfc_fail(err, HFC_ERR_DATA, dir, "no corruption .npy files (CIFAR-10-C layout)");
    if (!st)
        qsort(names, (size_t)*n, sizeof *names, by_name);
    return st;
}

hfc_status hfc_dataset_load_cifar10c(hfc_dataset *ds, const char *dir, const char *corruption,
                                     int severity, size_t limit, hfc_error *err)
{
    char img[1100], lab[1100];
    snprintf(img, sizeof img, "%s/%s.npy", dir, corruption);
    snprintf(lab, sizeof lab, "%s/labels.npy", dir);
    hfc_npy_start(ds, HFC_CIFAR10C, img);
    snprintf(ds->corruption, sizeof ds->corruption, "%s", corruption);
    ds->severity = severity;
    if (severity < 1 || severity > SEVERITIES)
        return hfc_fail(err, HFC_ERR_USAGE, "", "--severity %d: must be 1..5", severity);
    const uint8_t *im = NULL, *lb = NULL;
    size_t im_len = 0, lb_len = 0;
    hfc_status st = hfc_map_file(img, &im, &im_len, err);
    if (!st)
        st = hfc_map_file(lab, &lb, &lb_len, err);
    size_t total = 0;
    if (!st && !(st = hfc_npy_count(im, im_len, img, &total, err)) && total % SEVERITIES)
        st = hfc_fail(err, HFC_ERR_DATA, img,
                      "%zu images do not split into 5 severities (CIFAR-10-C: 50,000)", total);
    if (!st) {
        size_t per = total / SEVERITIES, n = limit && limit < per ? limit : per;
        st = hfc_npy_fill(ds, im, im_len, img, lb, lb_len, lab, 0, (size_t)(severity - 1) * per,
                          n ? n : per, err);
    }
    if (im)
        munmap((void *)im, im_len);
    if (lb)
        munmap((void *)lb, lb_len);
    if (st)
        hfc_dataset_free(ds);
    return st;
}
