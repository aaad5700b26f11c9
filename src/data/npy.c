/* npy.c - NumPy .npy files as a data source (CIFAR-10-C ships them so).
 *
 * Images: uint8 ('|u1') or float32 ('<f4', values in 0..255), shape
 * (N, H, W, C) as CIFAR-10-C stores them ((N, 32, 32, 3)), (N, C, H, W)
 * with `nchw`, or (N, H, W) for one channel. Labels: a second .npy of N
 * integers of any integer dtype ('|u1', '<i8', ...), each in
 * 0..classes-1. The format
 * (versions 1 to 3): the bytes "\x93NUMPY", a major and a minor version,
 * a header length (u16 for version 1, u32 after), then the header, a
 * Python dict literal {'descr': ..., 'fortran_order': ..., 'shape': (...)},
 * then the data, C order. Every size is checked against the file's length;
 * the images' file is mapped, so --limit reads only the images it keeps. */
#define _DEFAULT_SOURCE /* MAP_PRIVATE with -std=c11 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hfc/data.h"
#include "data/npy.h"

typedef struct {
    size_t data;      /* where the array's bytes start */
    char descr[16];   /* '|u1', '<i8', ... */
    int ndim;
    size_t shape[8];
    size_t count;     /* elements */
    int itemsize;
    int is_signed;
    int is_float;     /* '<f4' */
} npy_header;

/* The header's next token after optional blanks: returns p past `c`, or NULL. */
static const char *expect(const char *p, const char *end, char c)
{
    while (p < end && (*p == ' ' || *p == '\n'))
        p++;
    return p < end && *p == c ? p + 1 : NULL;
}

/* 'key': value inside the dict text [p, end): where the value starts. */
static const char *find_key(const char *p, const char *end, const char *key)
{
    size_t n = strlen(key);
    for (; p + n + 2 < end; p++)
        if (*p == '\'' && !strncmp(p + 1, key, n) && p[n + 1] == '\'')
            return expect(p + n + 2, end, ':');
    return NULL;
}

static hfc_status header_fail(const char *path, const char *what, hfc_error *err)
{
    return hfc_fail(err, HFC_ERR_DATA, path, "not a .npy array this tool reads: %s", what);
}

/* The dtype's size and kind from descr ("|u1", "<i8", "<f4"); -1: not a
 * type this reads (big-endian, float64, object, ...). */
static int integer_type(const char *d, int *is_signed, int *is_float)
{
    *is_float = !strcmp(d, "<f4");
    if (*is_float)
        return 4;
    if ((d[0] != '<' && d[0] != '|') || (d[1] != 'u' && d[1] != 'i') || d[3])
        return -1;
    *is_signed = d[1] == 'i';
    int size = d[2] - '0';
    return size == 1 || size == 2 || size == 4 || size == 8 ? size : -1;
}

static hfc_status parse_dict(const char *h, const char *end, const char *path, npy_header *out,
                             hfc_error *err)
{
    const char *p = find_key(h, end, "descr");
    const char *q = p ? expect(p, end, '\'') : NULL;
    const char *close = q ? memchr(q, '\'', (size_t)(end - q)) : NULL;
    if (!close || close - q >= (long)sizeof out->descr)
        return header_fail(path, "no 'descr'", err);
    memcpy(out->descr, q, (size_t)(close - q));
    out->descr[close - q] = 0;
    p = find_key(h, end, "fortran_order");
    while (p && p < end && *p == ' ')
        p++;
    if (!p || (size_t)(end - p) < 5 || strncmp(p, "False", 5))
        return header_fail(path, "'fortran_order' must be False (C order)", err);
    p = find_key(h, end, "shape");
    p = p ? expect(p, end, '(') : NULL;
    if (!p)
        return header_fail(path, "no 'shape'", err);
    out->ndim = 0;
    out->count = 1;
    for (;;) {
        while (p < end && *p == ' ')
            p++;
        if (p < end && *p == ')')
            break;
        char *num_end;
        errno = 0;
        unsigned long long v = strtoull(p, &num_end, 10);
        if (num_end == p || errno || out->ndim == 8 || v > ((size_t)1 << 40))
            return header_fail(path, "'shape' is not a tuple of sizes", err);
        out->shape[out->ndim++] = (size_t)v;
        if (v && out->count > ((size_t)1 << 50) / v)
            return header_fail(path, "'shape' is too large", err);
        out->count *= (size_t)v;
        p = num_end;
        while (p < end && *p == ' ')
            p++;
        if (p < end && *p == ',')
            p++;
        else if (!(p < end && *p == ')'))
            return header_fail(path, "'shape' is not a tuple of sizes", err);
    }
    return HFC_OK;
}

/* The header of the .npy bytes [raw, raw + len), checked against len. */
static hfc_status parse_npy(const uint8_t *raw, size_t len, const char *path, npy_header *out,
                            hfc_error *err)
{
    memset(out, 0, sizeof *out);
    if (len < 10 || memcmp(raw, "\x93NUMPY", 6))
        return header_fail(path, "no \\x93NUMPY magic", err);
    int major = raw[6];
    if (major < 1 || major > 3)
        return header_fail(path, "format version not 1, 2 or 3", err);
    size_t fixed = major == 1 ? 10 : 12;
    if (len < fixed)
        return header_fail(path, "the file ends inside its preamble", err);
    size_t hlen = major == 1 ? (size_t)raw[8] | (size_t)raw[9] << 8
                             : (size_t)raw[8] | (size_t)raw[9] << 8 | (size_t)raw[10] << 16 |
                                   (size_t)raw[11] << 24;
    if (hlen > len - fixed)
        return hfc_fail(err, HFC_ERR_DATA, path,
                        "header of %zu bytes runs past the end of the file (%zu bytes)", hlen,
                        len);
    const char *h = (const char *)raw + fixed, *end = h + hlen;
    if (!expect(h, end, '{'))
        return header_fail(path, "the header is not a dict", err);
    hfc_status st = parse_dict(h, end, path, out, err);
    if (st)
        return st;
    out->data = fixed + hlen;
    out->itemsize = integer_type(out->descr, &out->is_signed, &out->is_float);
    if (out->itemsize < 0) {
        char what[112];
        snprintf(what, sizeof what,
                 "dtype '%s' (images: '|u1' or '<f4'; labels: a little-endian integer)",
                 out->descr);
        return header_fail(path, what, err);
    }
    size_t need = out->count * (size_t)out->itemsize;
    if (len - out->data != need)
        return hfc_fail(err, HFC_ERR_DATA, path,
                        "the header's shape needs %zu bytes of data; the file has %zu after its "
                        "%zu-byte header (truncated, or the header lies)",
                        need, len - out->data, out->data);
    return HFC_OK;
}

hfc_status hfc_npy_count(const uint8_t *raw, size_t len, const char *path, size_t *n,
                         hfc_error *err)
{
    npy_header h;
    hfc_status st = parse_npy(raw, len, path, &h, err);
    *n = st || h.ndim < 1 ? 0 : h.shape[0];
    return st;
}

/* Label i of an integer array, as a signed value. */
static long long label_at(const uint8_t *p, const npy_header *h, size_t i)
{
    const uint8_t *q = p + i * (size_t)h->itemsize;
    unsigned long long v = 0;
    for (int b = h->itemsize - 1; b >= 0; b--)
        v = v << 8 | q[b];
    if (h->is_signed && h->itemsize < 8 && (v >> (8 * h->itemsize - 1)))
        v |= ~0ULL << (8 * h->itemsize);
    return h->is_signed ? (long long)v : (v > (unsigned long long)1 << 62 ? -1 : (long long)v);
}

/* The images' geometry from their shape: (N, H, W, C), (N, C, H, W) with
 * nchw, or (N, H, W); 0 if the shape is none of these. */
static int geometry(const npy_header *h, int nchw, hfc_dataset *ds)
{
    if (h->ndim == 3) {
        ds->channels = 1;
        ds->height = (int)(h->shape[1] <= HFC_MAX_SIDE ? h->shape[1] : 0);
        ds->width = (int)(h->shape[2] <= HFC_MAX_SIDE ? h->shape[2] : 0);
    } else if (h->ndim == 4) {
        size_t c = h->shape[nchw ? 1 : 3], y = h->shape[nchw ? 2 : 1], x = h->shape[nchw ? 3 : 2];
        ds->channels = (int)(c <= 16 ? c : 0);
        ds->height = (int)(y <= HFC_MAX_SIDE ? y : 0);
        ds->width = (int)(x <= HFC_MAX_SIDE ? x : 0);
    } else {
        return 0;
    }
    return ds->channels > 0 && ds->height > 0 && ds->width > 0;
}

/* Image i of the array (any layout) into ds's planes; a float value outside
 * 0..255 (or NaN) is HFC_ERR_DATA naming the entry. */
static hfc_status copy_image(hfc_dataset *ds, size_t i, const uint8_t *src, const npy_header *h,
                             int nchw, size_t first, const char *path, hfc_error *err)
{
    const size_t C = (size_t)ds->channels, plane = (size_t)ds->height * ds->width,
                 P = C * plane;
    const uint8_t *x = src + i * P * (size_t)h->itemsize;
    for (size_t c = 0; c < C; c++)
        for (size_t p = 0; p < plane; p++) {
            size_t from = nchw || C == 1 ? c * plane + p : p * C + c, to = i * P + c * plane + p;
            if (!h->is_float) {
                ds->pixels[to] = x[from];
                continue;
            }
            float v;
            memcpy(&v, x + 4 * from, sizeof v);
            if (!(v >= 0 && v <= 255))
                return hfc_fail(err, HFC_ERR_DATA, path,
                                "value %g of image %zu (entry %zu of the array) is not in 0..255",
                                (double)v, first + i, (first + i) * P + from);
            ds->values[to] = v;
        }
    return HFC_OK;
}

hfc_status hfc_npy_fill(hfc_dataset *ds, const uint8_t *img, size_t img_len, const char *img_path,
                        const uint8_t *lab, size_t lab_len, const char *lab_path, int nchw,
                        size_t first, size_t limit, hfc_error *err)
{
    npy_header hi, hl;
    hfc_status st;
    if ((st = parse_npy(img, img_len, img_path, &hi, err)) ||
        (st = parse_npy(lab, lab_len, lab_path, &hl, err)))
        return st;
    int ok = (hi.is_float || (hi.itemsize == 1 && !hi.is_signed)) && geometry(&hi, nchw, ds);
    if (!ok)
        return hfc_fail(err, HFC_ERR_DATA, img_path,
                        "images must be uint8 or float32 of shape %s, 1..16 channels, sides up to "
                        "%d; this is '%s' of %d dimensions",
                        nchw ? "(N, C, H, W) (--layout nchw)" : "(N, H, W, C) or (N, H, W)",
                        HFC_MAX_SIDE, hi.descr, hi.ndim);
    if (hl.is_float || hl.ndim != 1 || hl.shape[0] != hi.shape[0])
        return hfc_fail(err, HFC_ERR_DATA, lab_path,
                        "%s labels for %zu images: need one dimension of %zu integers",
                        hl.ndim == 1 && !hl.is_float ? "wrong number of" : "not a vector of",
                        hi.shape[0], hi.shape[0]);
    if (first > hi.shape[0])
        return hfc_fail(err, HFC_ERR_DATA, img_path, "has %zu images; image %zu was asked for",
                        hi.shape[0], first);
    const size_t avail = hi.shape[0] - first, n = limit && limit < avail ? limit : avail;
    if ((st = hfc_dataset_alloc(ds, n, hi.is_float, img_path, err)))
        return st;
    const size_t P = hfc_dataset_image_size(ds);
    const uint8_t *src = img + hi.data + first * P * (size_t)hi.itemsize, *labels = lab + hl.data;
    for (size_t i = 0; i < n; i++) {
        long long label = label_at(labels, &hl, first + i);
        if (label < 0 || label >= ds->n_classes)
            return hfc_fail(err, HFC_ERR_DATA, lab_path, "label %lld (entry %zu) is not in 0..%d",
                            label, first + i, ds->n_classes - 1);
        ds->labels[i] = (uint16_t)label;
        if ((st = copy_image(ds, i, src, &hi, nchw, first, img_path, err)))
            return st;
    }
    ds->n = ds->set_images = n;
    return HFC_OK;
}

void hfc_npy_start(hfc_dataset *ds, hfc_dataset_kind kind, const char *path)
{
    memset(ds, 0, sizeof *ds);
    ds->kind = kind;
    ds->set = HFC_SET_TEST;
    ds->n_classes = kind == HFC_CIFAR100 ? 100 : 10;
    snprintf(ds->path, sizeof ds->path, "%s", path);
}

hfc_status hfc_dataset_parse_npy(hfc_dataset *ds, const uint8_t *images, size_t images_len,
                                 const uint8_t *labels, size_t labels_len, int nchw,
                                 hfc_dataset_kind kind, size_t limit, hfc_error *err)
{
    hfc_npy_start(ds, kind, "images.npy");
    hfc_status st = hfc_npy_fill(ds, images, images_len, "images.npy", labels, labels_len,
                                 "labels.npy", nchw, 0, limit, err);
    if (st)
        hfc_dataset_free(ds);
    return st;
}

/* A regular file mapped read-only (never blocking on a FIFO). */
hfc_status hfc_map_file(const char *path, const uint8_t **map, size_t *len, hfc_error *err)
{
    *map = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return hfc_fail(err, HFC_ERR_IO, path, "cannot open: %s", strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return hfc_fail(err, HFC_ERR_IO, path, "not a regular file");
    }
    *len = (size_t)sb.st_size;
    void *p = *len ? mmap(NULL, *len, PROT_READ, MAP_PRIVATE, fd, 0) : NULL;
    close(fd);
    if (*len && p == MAP_FAILED)
        return hfc_fail(err, HFC_ERR_IO, path, "cannot map: %s", strerror(errno));
    *map = p;
    return HFC_OK;
}

hfc_status hfc_dataset_load_npy(hfc_dataset *ds, const char *images, const char *labels, int nchw,
                                hfc_dataset_kind kind, size_t limit, hfc_error *err)
{
    hfc_npy_start(ds, kind, images);
    const uint8_t *img = NULL, *lab = NULL;
    size_t img_len = 0, lab_len = 0;
    hfc_status st = hfc_map_file(images, &img, &img_len, err);
    if (!st && !(st = hfc_map_file(labels, &lab, &lab_len, err)))
        st = hfc_npy_fill(ds, img, img_len, images, lab, lab_len, labels, nchw, 0, limit, err);
    if (img)
        munmap((void *)img, img_len);
    if (lab)
        munmap((void *)lab, lab_len);
    if (st)
        hfc_dataset_free(ds);
    return st;
}
