/* data.c - the data options of the command line, and which source --data
 * names: a .npy (with --labels), a .npz, an idx file or directory (MNIST),
 * a CIFAR-10-C directory (a sweep of corruptions and severities), a folder
 * of class folders, or CIFAR's own files. --dataset settles a directory
 * that could be more than one of them. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/data.h"

#define MAX_CORRUPTIONS 64

static int ends_with(const char *s, const char *tail)
{
    size_t n = strlen(s), t = strlen(tail);
    return n >= t && !strcmp(s + n - t, tail);
}

static int is_dir(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static int exists_in(const char *dir, const char *name)
{
    char path[1200];
    struct stat sb;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return stat(path, &sb) == 0;
}

/* Whether dir holds a subdirectory (a class folder). */
static int has_subdir(const char *dir)
{
    DIR *d = opendir(dir);
    int found = 0;
    for (struct dirent *e; d && !found && (e = readdir(d));) {
        char path[1200];
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        found = is_dir(path);
    }
    if (d)
        closedir(d);
    return found;
}

static hfc_status parse_size(const char *val, const char *opt, int *out, hfc_error *err)
{
    char *end;
    long v = strtol(val, &end, 10);
    if (end == val || *end || v < 1 || v > HFC_MAX_SIDE)
        return hfc_fail(err, HFC_ERR_USAGE, "", "%s: '%s' is not a size in 1..%d", opt, val,
                        HFC_MAX_SIDE);
    *out = (int)v;
    return HFC_OK;
}

static hfc_status parse_severities(const char *val, unsigned *out, hfc_error *err)
{
    if (!strcmp(val, "all")) {
        *out = 0x3e;
        return HFC_OK;
    }
    *out = 0;
    for (const char *p = val;; p++) {
        if (*p < '1' || *p > '5' || (p[1] && p[1] != ','))
            return hfc_fail(err, HFC_ERR_USAGE, "",
                            "--severity: '%s' is not a list of 1..5 or 'all'", val);
        if (*out & (1u << (*p - '0')))
            return hfc_fail(err, HFC_ERR_USAGE, "", "--severity: %c is given twice", *p);
        *out |= 1u << (*p - '0');
        if (!*++p)
            return HFC_OK;
    }
}

int hfc_set_data_value(hfc_options *o, const char *a, const char *val, hfc_status *st,
                       hfc_error *err)
{
    if (!strcmp(a, "-d") || !strcmp(a, "--data")) {
        o->data = val;
    } else if (!strcmp(a, "--labels")) {
        o->labels = val;
    } else if (!strcmp(a, "--layout")) {
        if (!strcmp(val, "nhwc") || !strcmp(val, "nchw"))
            o->nchw = !strcmp(val, "nchw");
        else
            *st = hfc_fail(err, HFC_ERR_USAGE, "", "--layout: '%s' is not nhwc or nchw", val);
    } else if (!strcmp(a, "--set")) {
        if (!strcmp(val, "test") || !strcmp(val, "train"))
            o->set = !strcmp(val, "train") ? HFC_SET_TRAIN : HFC_SET_TEST;
        else
            *st = hfc_fail(err, HFC_ERR_USAGE, "", "--set: '%s' is not test or train", val);
    } else if (!strcmp(a, "--dataset")) {
        int k = hfc_dataset_kind_parse(val);
        if (k < 0)
            *st = hfc_fail(err, HFC_ERR_USAGE, "",
                           "--dataset: '%s' is not cifar10, cifar100, mnist, folder or cifar10-c",
                           val);
        o->dataset = k < 0 ? HFC_CIFAR10 : (hfc_dataset_kind)k;
        o->dataset_given = 1;
    } else if (!strcmp(a, "--resize")) {
        *st = parse_size(val, a, &o->resize, err);
    } else if (!strcmp(a, "--crop")) {
        *st = parse_size(val, a, &o->crop, err);
    } else if (!strcmp(a, "--corruption")) {
        o->corruptions = val;
    } else if (!strcmp(a, "--severity")) {
        *st = parse_severities(val, &o->severities, err);
    } else {
        return -1;
    }
    return 0;
}

/* What --data names, with --dataset where given. */
static hfc_dataset_kind source_kind(const hfc_options *o, int *npy, int *npz)
{
    const char *d = o->data;
    *npy = ends_with(d, ".npy");
    *npz = ends_with(d, ".npz");
    if (o->dataset_given && o->dataset != HFC_CIFAR10 && o->dataset != HFC_CIFAR100)
        return o->dataset;
    if (*npy || *npz)
        return o->dataset;
    if (ends_with(d, "-ubyte") || ends_with(d, "-ubyte.gz"))
        return HFC_MNIST;
    if (is_dir(d)) {
        if (exists_in(d, "t10k-images-idx3-ubyte") || exists_in(d, "t10k-images-idx3-ubyte.gz") ||
            exists_in(d, "train-images-idx3-ubyte") || exists_in(d, "train-images-idx3-ubyte.gz"))
            return HFC_MNIST;
        if (exists_in(d, "labels.npy"))
            return HFC_CIFAR10C;
        if (!exists_in(d, "test_batch.bin") && !exists_in(d, "test.bin") &&
            !exists_in(d, "data_batch_1.bin") && !exists_in(d, "train.bin") && has_subdir(d))
            return HFC_FOLDER;
    }
    return o->dataset;
}

hfc_status hfc_check_data_options(const hfc_options *o, hfc_error *err)
{
    if ((o->resize || o->crop || o->skip_bad) && o->dataset_given && o->dataset != HFC_FOLDER)
        return hfc_fail(err, HFC_ERR_USAGE, "",
                        "--resize, --crop and --skip-bad-images are for image folders");
    if ((o->corruptions || o->severities) && o->dataset_given && o->dataset != HFC_CIFAR10C)
        return hfc_fail(err, HFC_ERR_USAGE, "", "--corruption and --severity are for "
                        "--dataset cifar10-c");
    return HFC_OK;
}

hfc_status hfc_data_sweep(hfc_options *o, int *count, hfc_error *err)
{
    int npy, npz;
    hfc_dataset_kind kind = source_kind(o, &npy, &npz);
    *count = 1;
    if (kind != HFC_CIFAR10C) {
        if (o->corruptions || o->severities)
            return hfc_fail(err, HFC_ERR_USAGE, "",
                            "--corruption and --severity are for a CIFAR-10-C directory; %s is "
                            "not one (--dataset cifar10-c)", o->data);
        return HFC_OK;
    }
    if (!(o->sweep = calloc(MAX_CORRUPTIONS, sizeof *o->sweep)))
        return hfc_fail(err, HFC_ERR_NOMEM, "", "out of memory");
    char (*all)[32] = calloc(MAX_CORRUPTIONS, sizeof *all);
    int n_all = 0;
    hfc_status st = all ? hfc_cifar10c_list(o->data, all, MAX_CORRUPTIONS, &n_all, err)
                        : hfc_fail(err, HFC_ERR_NOMEM, "", "out of memory");
    const char *list = o->corruptions && strcmp(o->corruptions, "all") ? o->corruptions : NULL;
    o->n_sweep_corruptions = 0;
    for (int k = 0; !st && !list && k < n_all; k++)
        memcpy(o->sweep[o->n_sweep_corruptions++], all[k], 32);
    for (const char *p = list; !st && p && *p;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        int found = -1;
        for (int k = 0; k < n_all; k++)
            found = strlen(all[k]) == len && !strncmp(all[k], p, len) ? k : found;
        for (int k = 0; found >= 0 && k < o->n_sweep_corruptions; k++)
            if (!strcmp(o->sweep[k], all[found]))
                st = hfc_fail(err, HFC_ERR_USAGE, "", "--corruption: %s is given twice",
                              all[found]);
        if (!st && found < 0)
            st = hfc_fail(err, HFC_ERR_USAGE, o->data, "no corruption '%.*s' here (%s.npy)",
                          (int)len, p, "NAME");
        if (!st)
            memcpy(o->sweep[o->n_sweep_corruptions++], all[found], 32);
        p = comma ? comma + 1 : p + len;
    }
    free(all);
    if (!o->severities)
        o->severities = 0x3e;
    int severities = 0;
    for (int s = 1; s <= 5; s++)
        severities += (o->severities >> s) & 1;
    *count = o->n_sweep_corruptions * severities;
    return st;
}

hfc_status hfc_load_data(const hfc_options *o, int k, int channels, hfc_dataset *ds,
                         hfc_error *err)
{
    int npy, npz;
    hfc_dataset_kind kind = source_kind(o, &npy, &npz);
    int folder = kind == HFC_FOLDER;
    if ((o->resize || o->crop || o->skip_bad) && !folder)
        return hfc_fail(err, HFC_ERR_USAGE, "",
                        "--resize, --crop and --skip-bad-images are for image folders; %s is "
                        "not one (--dataset folder)", o->data);
    if (o->labels && !npy && kind != HFC_MNIST)
        return hfc_fail(err, HFC_ERR_USAGE, "",
                        "--labels goes with --data IMAGES.npy or an idx file; %s is neither",
                        o->data);
    if (o->set == HFC_SET_TRAIN && kind != HFC_MNIST && (npy || npz || kind != o->dataset))
        return hfc_fail(err, HFC_ERR_USAGE, "",
                        "--set train reads CIFAR's or MNIST's files, not %s", o->data);
    if (kind == HFC_CIFAR10C) { /* k: corruption k / severities, its k % severities-th severity */
        int sev[5], n_sev = 0;
        for (int s = 1; s <= 5; s++)
            if ((o->severities >> s) & 1)
                sev[n_sev++] = s;
        return hfc_dataset_load_cifar10c(ds, o->data, o->sweep[k / n_sev], sev[k % n_sev],
                                         o->limit, err);
    }
    if (kind == HFC_MNIST)
        return hfc_dataset_load_idx(ds, o->data, o->labels, o->set, o->limit, err);
    if (folder) {
        hfc_folder_options fo = {channels == 1 ? 1 : 3, o->resize, o->crop, o->threads,
                                 o->skip_bad};
        return hfc_dataset_load_folder(ds, o->data, &fo, o->limit, err);
    }
    if (npz)
        return hfc_dataset_load_npz(ds, o->data, o->nchw, o->dataset, o->limit, err);
    if (!npy)
        return hfc_dataset_load(ds, o->data, o->dataset, o->set, o->limit, err);
    if (!o->labels)
        return hfc_fail(err, HFC_ERR_USAGE, "", "--data %s: a .npy of images needs --labels FILE",
                        o->data);
    return hfc_dataset_load_npy(ds, o->data, o->labels, o->nchw, o->dataset, o->limit, err);
}
