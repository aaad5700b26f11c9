/* idx.c - MNIST and Fashion-MNIST: LeCun's idx files, gzip-compressed or not.
 *
 * An idx file: two zero bytes, a type byte (0x08: unsigned bytes, the only
 * one these sets use), the number of dimensions d, then d big-endian u32
 * sizes, then the values in C order. Images: d = 3, (N, H, W), one grey
 * channel (28 x 28 for MNIST); labels: d = 1, (N), each 0..9. A directory
 * holds t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte (train-* for
 * --set train), each possibly with .gz; a file of images finds its labels
 * by the same name with "labels-idx1" for "images-idx3". Every size is
 * checked against the file's (inflated) length. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "data/npy.h"

#define IDX_MAX_BYTES ((size_t)1 << 36) /* 64 GiB: past any idx set */

typedef struct {
    int ndim;
    size_t dims[3];
    size_t count;    /* values */
    size_t header;   /* 4 + 4 * ndim */
} idx_header;

static hfc_status parse_idx(const uint8_t *raw, size_t len, int want_dims, const char *path,
                            idx_header *h, hfc_error *err)
{
    if (len < 4 || raw[0] || raw[1])
        return hfc_fail(err, HFC_ERR_DATA, path, "not an idx file (no 00 00 magic)");
    if (raw[2] != 0x08)
        return hfc_fail(err, HFC_ERR_DATA, path,
                        "idx type 0x%02x at byte 2: only unsigned bytes (0x08) are read", raw[2]);
    h->ndim = raw[3];
    if (h->ndim != want_dims)
        return hfc_fail(err, HFC_ERR_DATA, path, "idx file of %d dimensions; %s need %d", h->ndim,
                        want_dims == 3 ? "images" : "labels", want_dims);
    h->header = 4 + 4 * (size_t)h->ndim;
    if (len < h->header)
        return hfc_fail(err, HFC_ERR_DATA, path, "the file ends inside its %zu-byte header",
                        h->header);
    h->count = 1;
    for (int d = 0; d < h->ndim; d++) {
        const uint8_t *p = raw + 4 + 4 * d;
        h->dims[d] = (size_t)p[0] << 24 | (size_t)p[1] << 16 | (size_t)p[2] << 8 | p[3];
        if (d > 0 && (h->dims[d] < 1 || h->dims[d] > HFC_MAX_SIDE))
            return hfc_fail(err, HFC_ERR_DATA, path, "size %zu of dimension %d is not in 1..%d",
                            h->dims[d], d, HFC_MAX_SIDE);
        h->count *= h->dims[d];
    }
    if (len - h->header != h->count)
        return hfc_fail(err, HFC_ERR_DATA, path,
                        "the header's sizes need %zu bytes of data; the file has %zu after its "
                        "%zu-byte header (truncated, or the header lies)",
                        h->count, len - h->header, h->header);
    return HFC_OK;
}

static int ends_with(const char *s, const char *tail)
{
    size_t n = strlen(s), t = strlen(tail);
    return n >= t && !strcmp(s + n - t, tail);
}

/* The bytes of an idx file, inflated when it ends in .gz: *owned is what
 * to free (NULL: *map is mapped, munmap *map_len). */
typedef struct {
    const uint8_t *data;
    size_t len;
    const uint8_t *map;
    size_t map_len;
    uint8_t *owned;
} idx_bytes;

static hfc_status read_idx(const char *path, idx_bytes *b, hfc_error *err)
{
    memset(b, 0, sizeof *b);
    hfc_status st = hfc_map_file(path, &b->map, &b->map_len, err);
    if (st)
        return st;
    if (!ends_with(path, ".gz")) {
        b->data = b->map;
        b->len = b->map_len;
        return HFC_OK;
    }
    st = hfc_inflate(b->map, b->map_len, 1, IDX_MAX_BYTES, &b->owned, &b->len, path, err);
    b->data = b->owned;
    return st;
}

static void release(idx_bytes *b)
{
    if (b->map)
        munmap((void *)b->map, b->map_len);
    free(b->owned);
}

hfc_status hfc_idx_fill(hfc_dataset *ds, const uint8_t *img, size_t img_len, const char *img_path,
                        const uint8_t *lab, size_t lab_len, const char *lab_path, size_t limit,
                        hfc_error *err)
{
    idx_header hi = {0}, hl = {0};
    hfc_status st;
    if ((st = parse_idx(img, img_len, 3, img_path, &hi, err)) ||
        (st = parse_idx(lab, lab_len, 1, lab_path, &hl, err)))
        return st;
    if (hl.dims[0] != hi.dims[0])
        return hfc_fail(err, HFC_ERR_DATA, lab_path, "%zu labels for the %zu images of %s",
                        hl.dims[0], hi.dims[0], img_path);
    ds->channels = 1;
    ds->height = (int)hi.dims[1];
    ds->width = (int)hi.dims[2];
    size_t n = limit && limit < hi.dims[0] ? limit : hi.dims[0];
    if ((st = hfc_dataset_alloc(ds, n, 0, img_path, err)))
        return st;
    const size_t P = hfc_dataset_image_size(ds);
    for (size_t i = 0; i < n; i++) {
        unsigned label = lab[hl.header + i];
        if (label >= (unsigned)ds->n_classes)
            return hfc_fail(err, HFC_ERR_DATA, lab_path,
                            "label %u at byte offset %zu (entry %zu) is not in 0..%d", label,
                            hl.header + i, i, ds->n_classes - 1);
        ds->labels[i] = (uint16_t)label;
    }
    memcpy(ds->pixels, img + hi.header, n * P);
    ds->n = ds->set_images = n;
    return HFC_OK;
}

/* The two files of a set: path itself (images) or in the directory path. */
static hfc_status idx_files(const char *path, hfc_set set, const char *labels, char *img,
                            char *lab, size_t cap, hfc_error *err)
{
    struct stat sb;
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        const char *stem = set == HFC_SET_TRAIN ? "train" : "t10k";
        for (int gz = 0; gz < 2; gz++) {
            snprintf(img, cap, "%s/%s-images-idx3-ubyte%s", path, stem, gz ? ".gz" : "");
            snprintf(lab, cap, "%s/%s-labels-idx1-ubyte%s", path, stem, gz ? ".gz" : "");
            if (stat(img, &sb) == 0)
                return HFC_OK;
        }
        return hfc_fail(err, HFC_ERR_IO, path, "no %s-images-idx3-ubyte[.gz] in this directory",
                        stem);
    }
    snprintf(img, cap, "%s", path);
    if (labels) {
        snprintf(lab, cap, "%s", labels);
        return HFC_OK;
    }
    const char *at = strstr(path, "images-idx3");
    if (!at)
        return hfc_fail(err, HFC_ERR_USAGE, path,
                        "an idx file of images needs --labels FILE (or a name with images-idx3)");
    snprintf(lab, cap, "%.*slabels-idx1%s", (int)(at - path), path, at + strlen("images-idx3"));
    return HFC_OK;
}

hfc_status hfc_dataset_load_idx(hfc_dataset *ds, const char *path, const char *labels,
                                hfc_set set, size_t limit, hfc_error *err)
{
    hfc_npy_start(ds, HFC_MNIST, path);
    ds->set = set;
    char img[1100], lab[1100];
    idx_bytes bi = {0}, bl = {0};
    hfc_status st = idx_files(path, set, labels, img, lab, sizeof img, err);
    if (!st && !(st = read_idx(img, &bi, err)) && !(st = read_idx(lab, &bl, err)))
        st = hfc_idx_fill(ds, bi.data, bi.len, img, bl.data, bl.len, lab, limit, err);
    release(&bi);
    release(&bl);
    if (st)
        hfc_dataset_free(ds);
    return st;
}
