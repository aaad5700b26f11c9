/* src/data/cifar.c - the CIFAR-10 and CIFAR-100 binary formats.
 *
 * CIFAR-10:  3073-byte records: 1 label byte (0..9), then 1024 red, 1024
 *            green and 1024 blue bytes, each plane row-major 32x32.
 *            Directory: test_batch.bin; data_batch_1.bin ... data_batch_5.bin.
 *            Class names: batches.meta.txt, one per line.
 * CIFAR-100: 3074-byte records: coarse label (0..19), fine label (0..99),
 *            then the same 3072 pixel bytes. Directory: test.bin, train.bin.
 *            Class names (fine): fine_label_names.txt.
 * The labels kept are CIFAR-10's, or CIFAR-100's fine ones.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "hfc/data.h"

typedef struct {
    const char *name;        /* in --dataset and the JSON */
    int record;              /* bytes per image */
    int label_bytes;         /* label bytes before the pixels; the last is kept */
    int classes;             /* of the label kept */
    int coarse_classes;      /* CIFAR-100's first label byte: 0..19 */
    const char *test_files[1];
    const char *train_files[5];
    const char *names_file;
} cifar_format;

static const cifar_format FORMATS[] = {
    [HFC_CIFAR10] = {"cifar10", 3073, 1, 10, 0, {"test_batch.bin"},
                     {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                      "data_batch_4.bin", "data_batch_5.bin"},
                     "batches.meta.txt"},
    [HFC_CIFAR100] = {"cifar100", 3074, 2, 100, 20, {"test.bin"}, {"train.bin"},
                      "fine_label_names.txt"},
};

/* The message for a size that is not a whole number of records, naming the
 * other format when the size fits it. */
static hfc_status bad_size(const char *path, size_t len, hfc_dataset_kind kind, hfc_error *err)
{
    const cifar_format *f = &FORMATS[kind];
    const cifar_format *other = &FORMATS[kind == HFC_CIFAR10 ? HFC_CIFAR100 : HFC_CIFAR10];
    char hint[160] = "";
    if (len % (size_t)other->record == 0)
        snprintf(hint, sizeof hint, "; it is a whole number of %d-byte %s records: use --dataset %s",
                 other->record, other->name, other->name);
    return hfc_fail(err, HFC_ERR_DATA, path,
                    "size %zu is not a multiple of %d (%d label byte%s + 3072 pixel bytes); "
                    "truncated or not a %s binary file (last record starts at byte %zu)%s",
                    len, f->record, f->label_bytes, f->label_bytes > 1 ? "s" : "",
                    kind == HFC_CIFAR10 ? "CIFAR-10" : "CIFAR-100", len - len % (size_t)f->record,
                    hint);
}

/* Append the records of one file (raw, len) to ds, up to `limit` images in
 * all (0: no limit). ds->pixels and ds->labels have room for `room` images. */
static hfc_status append_records(hfc_dataset *ds, size_t room, const uint8_t *raw, size_t len,
                                 const char *path, hfc_error *err)
{
    const cifar_format *f = &FORMATS[ds->kind];
    if (len == 0)
        return hfc_fail(err, HFC_ERR_DATA, path, "empty file");
    if (len % (size_t)f->record)
        return bad_size(path, len, ds->kind, err);
    size_t n = len / (size_t)f->record;
    if (n > room - ds->n)
        n = room - ds->n;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *rec = raw + i * (size_t)f->record;
        if (f->coarse_classes && rec[0] >= f->coarse_classes)
            return hfc_fail(err, HFC_ERR_DATA, path,
                            "coarse label %u at byte offset %zu (record %zu) is not in 0..%d",
                            (unsigned)rec[0], i * (size_t)f->record, i, f->coarse_classes - 1);
        unsigned label = rec[f->label_bytes - 1];
        if (label >= (unsigned)f->classes)
            return hfc_fail(err, HFC_ERR_DATA, path,
                            "label %u at byte offset %zu (record %zu) is not in 0..%d", label,
                            i * (size_t)f->record + (size_t)f->label_bytes - 1, i, f->classes - 1);
        ds->labels[ds->n] = (uint8_t)label;
        memcpy(ds->pixels + ds->n * HFC_CIFAR_PIXELS, rec + f->label_bytes, HFC_CIFAR_PIXELS);
        ds->n++;
    }
    return HFC_OK;
}

static void start(hfc_dataset *ds, hfc_dataset_kind kind, hfc_set set, const char *path)
{
    memset(ds, 0, sizeof *ds);
    ds->kind = kind;
    ds->set = set;
    ds->n_classes = FORMATS[kind].classes;
    ds->channels = HFC_CIFAR_CHANNELS;
    ds->height = ds->width = HFC_CIFAR_SIDE;
    snprintf(ds->path, sizeof ds->path, "%s", path);
}

hfc_status hfc_dataset_parse(hfc_dataset *ds, const uint8_t *raw, size_t len, const char *path,
                             hfc_dataset_kind kind, size_t limit, hfc_error *err)
{
    start(ds, kind, HFC_SET_TEST, path);
    size_t n = len / (size_t)FORMATS[kind].record;
    if (limit && limit < n)
        n = limit;
    hfc_status st = hfc_dataset_alloc(ds, n, 0, path, err);
    if (!st && (st = append_records(ds, n, raw, len, path, err)))
        hfc_dataset_free(ds);
    ds->set_images = ds->n;
    return st;
}

/* Class names from the names file beside the data, when there is one: one
 * name a line, blank lines ignored, exactly n_classes of them. */
static hfc_status read_names(hfc_dataset *ds, const char *dir, hfc_error *err)
{
    char path[1100];
    if (snprintf(path, sizeof path, "%s/%s", dir, FORMATS[ds->kind].names_file) >= (int)sizeof path)
        return HFC_OK;
    struct stat sb;
    if (stat(path, &sb) != 0)
        return HFC_OK; /* optional: the model's class names are used */
    uint8_t *raw;
    size_t len;
    hfc_status st = hfc_read_file(path, &raw, &len, err);
    if (st)
        return st;
    int k = 0;
    if (!(ds->class_names = calloc((size_t)ds->n_classes, sizeof *ds->class_names))) {
        free(raw);
        return hfc_fail(err, HFC_ERR_NOMEM, path, "out of memory for class names");
    }
    for (size_t i = 0; i < len;) {
        size_t j = i;
        while (j < len && raw[j] != '\n')
            j++;
        size_t e = j;
        while (e > i && (raw[e - 1] == '\r' || raw[e - 1] == ' '))
            e--;
        if (e > i) {
            if (k == ds->n_classes || e - i >= sizeof ds->class_names[0]) {
                free(raw);
                return hfc_fail(err, HFC_ERR_DATA, path,
                                "expected %d class names of at most %zu characters, one a line",
                                ds->n_classes, sizeof ds->class_names[0] - 1);
            }
            memcpy(ds->class_names[k], raw + i, e - i);
            ds->class_names[k++][e - i] = 0;
        }
        i = j + 1;
    }
    free(raw);
    if (k != ds->n_classes)
        return hfc_fail(err, HFC_ERR_DATA, path, "has %d class names; %s has %d", k,
                        FORMATS[ds->kind].name, ds->n_classes);
    return HFC_OK;
}

/* The files a set is read from: path itself, or the official files in the
 * directory path (sb: its stat); dir: where the names file would be. */
typedef struct {
    char files[5][1024];
    char dir[1024];
    int n;
} set_files;

static hfc_status resolve_files(hfc_dataset *ds, const char *path, const struct stat *sb,
                                set_files *sf, hfc_error *err)
{
    const hfc_dataset_kind kind = ds->kind;
    const cifar_format *f = &FORMATS[kind];
    const char *const *names = ds->set == HFC_SET_TRAIN ? f->train_files : f->test_files;
    sf->n = ds->set == HFC_SET_TRAIN ? (kind == HFC_CIFAR10 ? 5 : 1) : 1;
    if (!S_ISDIR(sb->st_mode)) {
        if (ds->set == HFC_SET_TRAIN)
            return hfc_fail(err, HFC_ERR_USAGE, path,
                            "--set train needs --data to be a directory (it reads %s%s)", names[0],
                            sf->n > 1 ? " ... data_batch_5.bin" : "");
        sf->n = 1;
        snprintf(sf->files[0], sizeof sf->files[0], "%s", path);
        const char *slash = strrchr(path, '/');
        snprintf(sf->dir, sizeof sf->dir, "%.*s", slash ? (int)(slash - path) : 1,
                 slash ? path : ".");
        return HFC_OK;
    }
    snprintf(sf->dir, sizeof sf->dir, "%s", path);
    for (int i = 0; i < sf->n; i++) {
        struct stat fb;
        if (snprintf(sf->files[i], sizeof sf->files[i], "%s/%s", path, names[i]) >=
            (int)sizeof sf->files[i])
            return hfc_fail(err, HFC_ERR_IO, path, "path too long");
        if (stat(sf->files[i], &fb) != 0) {
            hfc_dataset_kind other = kind == HFC_CIFAR10 ? HFC_CIFAR100 : HFC_CIFAR10;
            char alt[1100], hint[96] = "";
            snprintf(alt, sizeof alt, "%s/%s", path, FORMATS[other].test_files[0]);
            if (stat(alt, &fb) == 0)
                snprintf(hint, sizeof hint, "; it has %s: use --dataset %s",
                         FORMATS[other].test_files[0], FORMATS[other].name);
            return hfc_fail(err, HFC_ERR_IO, path,
                            "directory has no %s (expected the official %s)%s", names[i],
                            kind == HFC_CIFAR10 ? "cifar-10-batches-bin" : "cifar-100-binary",
                            hint);
        }
    }
    /* "data": the file read, or for several the first ... the last */
    if (sf->n == 1)
        snprintf(ds->path, sizeof ds->path, "%s", sf->files[0]);
    else
        snprintf(ds->path, sizeof ds->path, "%s/{%s ... %s}", path, names[0], names[sf->n - 1]);
    return HFC_OK;
}

hfc_status hfc_dataset_load(hfc_dataset *ds, const char *path, hfc_dataset_kind kind, hfc_set set,
                            size_t limit, hfc_error *err)
{
    const cifar_format *f = &FORMATS[kind];
    start(ds, kind, set, path);
    struct stat sb;
    if (stat(path, &sb) != 0)
        return hfc_fail(err, HFC_ERR_IO, path,
                        "no such file or directory (get CIFAR-10: see README, 'Getting CIFAR-10')");
    set_files sf;
    hfc_status st = resolve_files(ds, path, &sb, &sf, err);
    if (st)
        return st;
    const int n_files = sf.n;

    /* Room for every image of every file (or the limit), then each file in turn. */
    size_t total = 0;
    for (int i = 0; i < n_files; i++) {
        if (stat(sf.files[i], &sb) != 0)
            return hfc_fail(err, HFC_ERR_IO, sf.files[i], "cannot read: no such file");
        if (!S_ISREG(sb.st_mode))
            return hfc_fail(err, HFC_ERR_IO, sf.files[i], "not a regular file");
        size_t size = (size_t)sb.st_size;
        if (size == 0) { /* empty, or a file whose size stat does not know (/proc): read it */
            uint8_t *raw;
            if ((st = hfc_read_file(sf.files[i], &raw, &size, err)))
                return st;
            free(raw);
        }
        if (size == 0) /* sizes are checked before any file is read */
            return hfc_fail(err, HFC_ERR_DATA, sf.files[i], "empty file");
        if (size % (size_t)f->record)
            return bad_size(sf.files[i], size, kind, err);
        total += size / (size_t)f->record;
    }
    if (limit && limit < total)
        total = limit;
    st = hfc_dataset_alloc(ds, total, 0, path, err);
    for (int i = 0; !st && i < n_files && ds->n < total; i++) {
        uint8_t *raw;
        size_t len;
        /* only the records still wanted (--limit): the sizes were checked above */
        if (!(st = hfc_read_file_head(sf.files[i], (total - ds->n) * (size_t)f->record, &raw, &len,
                                      err))) {
            st = append_records(ds, total, raw, len, sf.files[i], err);
            free(raw);
        }
    }
    if (!st)
        st = read_names(ds, sf.dir, err);
    if (st) {
        hfc_dataset_free(ds);
        return st;
    }
    ds->set_images = ds->n;
    return HFC_OK;
}
