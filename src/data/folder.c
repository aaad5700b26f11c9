/* folder.c - image folders in torchvision's ImageFolder layout:
 * ROOT/CLASS/.../IMAGE.{png,jpg,jpeg} (any case). Classes are ROOT's
 * subdirectories sorted by name (byte order, as Python sorts str), label =
 * position; each class's files are found recursively (symbolic links
 * followed) and ordered as ImageFolder orders them: by directory path, then
 * by name. A file with another image extension ImageFolder would load
 * (.bmp, .ppm, .pgm, .tif, .tiff, .webp) is refused rather than silently
 * left out. Images are decoded by image.c on `threads` threads, each into
 * its own slot (results do not depend on the thread count). */
#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "data/image.h"

#define MAX_DEPTH 32

typedef struct {
    char *path;    /* ROOT/CLASS/.../NAME */
    size_t dir;    /* length of the directory part (sorting: directory, then name) */
    int label;
} image_file;

typedef struct {
    image_file *files;
    size_t n, cap;
} file_list;

static int has_ext(const char *name, const char *const *exts)
{
    const char *dot = strrchr(name, '.');
    for (int k = 0; dot && exts[k]; k++)
        if (!strcasecmp(dot, exts[k]))
            return 1;
    return 0;
}

static const char *const READ_EXTS[] = {".png", ".jpg", ".jpeg", NULL};
static const char *const OTHER_EXTS[] = {".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp", NULL};

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The entries of dir (no "." or ".."), sorted; *n of them (free each and the array). */
static hfc_status list_dir(const char *dir, char ***names, size_t *n, hfc_error *err)
{
    *names = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return hfc_fail(err, HFC_ERR_IO, dir, "cannot read the directory");
    size_t cap = 0;
    hfc_status st = HFC_OK;
    for (struct dirent *e; !st && (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        if (*n == cap) {
            cap = cap ? 2 * cap : 64;
            char **grown = realloc(*names, cap * sizeof *grown);
            if (!grown) {
                st = hfc_fail(err, HFC_ERR_NOMEM, dir, "out of memory listing it");
                break;
            }
            *names = grown;
        }
        if (!((*names)[*n] = strdup(e->d_name)))
            st = hfc_fail(err, HFC_ERR_NOMEM, dir, "out of memory listing it");
        else
            (*n)++;
    }
    closedir(d);
    if (*n)
        qsort(*names, *n, sizeof **names, by_name);
    return st;
}

static void free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

static hfc_status add_file(file_list *fl, const char *dir, const char *name, int label,
                           hfc_error *err)
{
    if (fl->n == fl->cap) {
        size_t cap = fl->cap ? 2 * fl->cap : 1024;
        image_file *grown = realloc(fl->files, cap * sizeof *grown);
        if (!grown)
            return hfc_fail(err, HFC_ERR_NOMEM, dir, "out of memory listing images");
        fl->files = grown;
        fl->cap = cap;
    }
    size_t len = strlen(dir) + 1 + strlen(name) + 1;
    image_file *f = &fl->files[fl->n];
    if (!(f->path = malloc(len)))
        return hfc_fail(err, HFC_ERR_NOMEM, dir, "out of memory listing images");
    snprintf(f->path, len, "%s/%s", dir, name);
    f->dir = strlen(dir);
    f->label = label;
    fl->n++;
    return HFC_OK;
}

/* ImageFolder's order inside a class: sorted(os.walk(...)) sorts the
 * directories by path, and each directory's files by name. */
static int by_dir_then_name(const void *a, const void *b)
{
    const image_file *x = a, *y = b;
    size_t n = x->dir < y->dir ? x->dir : y->dir;
    int c = memcmp(x->path, y->path, n);
    if (c || x->dir != y->dir) /* one directory a prefix of the other: the shorter first */
        return c ? c : (x->dir < y->dir ? -1 : 1);
    return strcmp(x->path + x->dir + 1, y->path + y->dir + 1);
}

static hfc_status walk(file_list *fl, const char *dir, int label, int depth, hfc_error *err)
{
    if (depth > MAX_DEPTH)
        return hfc_fail(err, HFC_ERR_DATA, dir, "directories nested more than %d deep (a loop "
                        "of symbolic links?)", MAX_DEPTH);
    char **names;
    size_t n;
    hfc_status st = list_dir(dir, &names, &n, err);
    for (size_t i = 0; !st && i < n; i++) {
        size_t len = strlen(dir) + strlen(names[i]) + 2;
        char *path = malloc(len);
        struct stat sb;
        if (!path) {
            st = hfc_fail(err, HFC_ERR_NOMEM, dir, "out of memory listing images");
            break;
        }
        snprintf(path, len, "%s/%s", dir, names[i]);
        if (stat(path, &sb) != 0)
            ; /* a dangling link: ImageFolder skips it too */
        else if (S_ISDIR(sb.st_mode))
            st = walk(fl, path, label, depth + 1, err);
        else if (has_ext(names[i], READ_EXTS))
            st = add_file(fl, dir, names[i], label, err);
        else if (has_ext(names[i], OTHER_EXTS))
            st = hfc_fail(err, HFC_ERR_DATA, path,
                          "only PNG and JPEG images are read; torchvision's ImageFolder would "
                          "load this one (convert it, or move it out of the folder)");
        free(path);
    }
    free_names(names, n);
    return st;
}

/* The classes (ROOT's subdirectories) and every image file under them. */
static hfc_status scan(hfc_dataset *ds, const char *root, file_list *fl, hfc_error *err)
{
    char **names;
    size_t n;
    hfc_status st = list_dir(root, &names, &n, err);
    if (st)
        return st;
    int classes = 0;
    for (size_t i = 0; !st && i < n; i++) {
        size_t len = strlen(root) + strlen(names[i]) + 2;
        char path[len];
        snprintf(path, len, "%s/%s", root, names[i]);
        struct stat sb;
        if (stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode))
            continue;
        if (classes == HFC_MAX_CLASSES)
            st = hfc_fail(err, HFC_ERR_DATA, root, "more than %d class folders", HFC_MAX_CLASSES);
        else if (strlen(names[i]) >= HFC_CLASS_NAME)
            st = hfc_fail(err, HFC_ERR_DATA, path, "a class name longer than %d bytes",
                          HFC_CLASS_NAME - 1);
        if (st)
            break;
        size_t before = fl->n;
        if (!(st = walk(fl, path, classes, 0, err))) {
            if (fl->n == before)
                st = hfc_fail(err, HFC_ERR_DATA, path,
                              "class folder with no .png, .jpg or .jpeg images");
            else
                qsort(fl->files + before, fl->n - before, sizeof *fl->files, by_dir_then_name);
        }
        if (!st) {
            char (*grown)[HFC_CLASS_NAME] =
                realloc(ds->class_names, (size_t)(classes + 1) * sizeof *grown);
            if (!grown) {
                st = hfc_fail(err, HFC_ERR_NOMEM, root, "out of memory for class names");
                break;
            }
            ds->class_names = grown;
            snprintf(ds->class_names[classes++], HFC_CLASS_NAME, "%s", names[i]);
        }
    }
    free_names(names, n);
    if (!st && classes == 0)
        st = hfc_fail(err, HFC_ERR_DATA, root,
                      "no class folders (ImageFolder layout: ROOT/CLASS/IMAGE.png)");
    ds->n_classes = classes;
    return st;
}

/* ------------------------------------------------------------- decoding */

typedef struct {
    hfc_dataset *ds;
    const file_list *fl;
    const hfc_image_plan *plan;
    size_t n;                 /* files to decode */
    atomic_size_t next;
    uint8_t *bad;             /* (n) 1: could not be used */
    pthread_mutex_t lock;
    size_t first_bad;         /* the lowest index that failed, and why */
    hfc_error first_err;
    hfc_status first_st;
} decode_job;

/* Decode file i into slot i; the image's C x H x W must be the data's. */
static hfc_status decode_one(decode_job *j, size_t i, hfc_error *err)
{
    const char *path = j->fl->files[i].path;
    uint8_t *raw = NULL;
    size_t len;
    hfc_image im = {0};
    hfc_status st = hfc_read_file(path, &raw, &len, err);
    if (!st)
        st = hfc_image_decode(raw, len, path, j->plan->channels, &im, err);
    free(raw);
    if (!st)
        st = hfc_image_transform(&im, j->plan, path, err);
    hfc_dataset *ds = j->ds;
    if (!st && (im.height != ds->height || im.width != ds->width))
        st = hfc_fail(err, HFC_ERR_DATA, path,
                      "%dx%d (W x H)%s, where the first image is %dx%d: images of mixed sizes "
                      "need --resize S and --crop C",
                      im.width, im.height, j->plan->resize || j->plan->crop ? " after --resize/--crop" : "",
                      ds->width, ds->height);
    if (!st)
        memcpy(ds->pixels + i * hfc_dataset_image_size(ds), im.planes, hfc_dataset_image_size(ds));
    free(im.planes);
    return st;
}

static void *decode_worker(void *arg)
{
    decode_job *j = arg;
    hfc_error err;
    for (size_t i; (i = atomic_fetch_add(&j->next, 1)) < j->n;) {
        hfc_status st = decode_one(j, i, &err);
        if (!st)
            continue;
        j->bad[i] = 1;
        pthread_mutex_lock(&j->lock);
        if (i < j->first_bad) {
            j->first_bad = i;
            j->first_err = err;
            j->first_st = st;
        }
        pthread_mutex_unlock(&j->lock);
    }
    return NULL;
}

/* The data's geometry from the first image that decodes (a bad one before
 * it is an error unless skip_bad). */
static hfc_status first_geometry(hfc_dataset *ds, const file_list *fl, size_t n,
                                 const hfc_image_plan *plan, int skip_bad, hfc_error *err)
{
    hfc_status st = HFC_OK;
    for (size_t i = 0; i < n; i++) {
        uint8_t *raw = NULL;
        size_t len;
        hfc_image im = {0};
        const char *path = fl->files[i].path;
        if (!(st = hfc_read_file(path, &raw, &len, err)) &&
            !(st = hfc_image_decode(raw, len, path, plan->channels, &im, err)))
            st = hfc_image_transform(&im, plan, path, err);
        free(raw);
        free(im.planes);
        if (!st) {
            ds->channels = im.channels;
            ds->height = im.height;
            ds->width = im.width;
            if (ds->height > HFC_MAX_SIDE || ds->width > HFC_MAX_SIDE)
                return hfc_fail(err, HFC_ERR_DATA, path,
                                "%dx%d: sides up to %d are read (--resize S, --crop C)",
                                ds->width, ds->height, HFC_MAX_SIDE);
            return HFC_OK;
        }
        if (!skip_bad || st == HFC_ERR_NOMEM)
            return st;
    }
    return hfc_fail(err, HFC_ERR_DATA, ds->path, "no image could be read");
}

/* Drop the bad images, keeping the order. */
static void compact(hfc_dataset *ds, const uint8_t *bad, size_t n)
{
    const size_t P = hfc_dataset_image_size(ds);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (bad[i])
            continue;
        if (k != i) {
            memmove(ds->pixels + k * P, ds->pixels + i * P, P);
            ds->labels[k] = ds->labels[i];
        }
        k++;
    }
    ds->n = ds->set_images = k;
}

static hfc_status decode_all(hfc_dataset *ds, const file_list *fl, size_t n,
                             const hfc_folder_options *opt, hfc_error *err)
{
    const hfc_image_plan plan = {opt->channels, opt->resize, opt->crop};
    hfc_status st = first_geometry(ds, fl, n, &plan, opt->skip_bad, err);
    if (st || (st = hfc_dataset_alloc(ds, n, 0, ds->path, err)))
        return st;
    decode_job j = {.ds = ds, .fl = fl, .plan = &plan, .n = n, .first_bad = (size_t)-1};
    atomic_init(&j.next, 0);
    pthread_mutex_init(&j.lock, NULL);
    j.bad = calloc(n ? n : 1, 1);
    if (!j.bad)
        st = hfc_fail(err, HFC_ERR_NOMEM, ds->path, "out of memory");
    int threads = opt->threads < 1 ? 1 : opt->threads > 64 ? 64 : opt->threads;
    pthread_t tid[64];
    int started = 0;
    for (; !st && started < threads - 1; started++)
        if (pthread_create(&tid[started], NULL, decode_worker, &j))
            break;
    if (!st)
        decode_worker(&j);
    for (int t = 0; t < started; t++)
        pthread_join(tid[t], NULL);
    pthread_mutex_destroy(&j.lock);
    for (size_t i = 0; !st && i < n; i++)
        ds->labels[i] = (uint16_t)fl->files[i].label;
    ds->n = ds->set_images = n;
    if (!st && j.first_bad != (size_t)-1) {
        if (!opt->skip_bad || j.first_st == HFC_ERR_NOMEM) {
            *err = j.first_err;
            st = j.first_st;
        } else {
            size_t skipped = 0;
            for (size_t i = 0; i < n; i++)
                skipped += j.bad[i];
            ds->skipped = skipped;
            snprintf(ds->skipped_note, sizeof ds->skipped_note, "%.300s: %.280s",
                     j.first_err.path, j.first_err.reason);
            compact(ds, j.bad, n);
        }
    }
    free(j.bad);
    return st;
}

hfc_status hfc_dataset_load_folder(hfc_dataset *ds, const char *root,
                                   const hfc_folder_options *opt, size_t limit, hfc_error *err)
{
    memset(ds, 0, sizeof *ds);
    ds->kind = HFC_FOLDER;
    ds->set = HFC_SET_TEST;
    snprintf(ds->path, sizeof ds->path, "%s", root);
    if (opt->channels != 1 && opt->channels != 3)
        return hfc_fail(err, HFC_ERR_USAGE, root, "images become 1 or 3 channels, not %d",
                        opt->channels);
    file_list fl = {0};
    hfc_status st = scan(ds, root, &fl, err);
    size_t n = limit && limit < fl.n ? limit : fl.n;
    if (!st)
        st = decode_all(ds, &fl, n, opt, err);
    for (size_t i = 0; i < fl.n; i++)
        free(fl.files[i].path);
    free(fl.files);
    if (st)
        hfc_dataset_free(ds);
    return st;
}
