/* hfc/data.h - images and their frequency split: CIFAR files, the mask, the split (src/data). */
#ifndef HFC_DATA_H
#define HFC_DATA_H

#include "hfc/core.h"

/* ------------------------------------------------------------------ data */

#define HFC_CIFAR_SIDE 32
#define HFC_CIFAR_CHANNELS 3
#define HFC_CIFAR_PIXELS (HFC_CIFAR_CHANNELS * HFC_CIFAR_SIDE * HFC_CIFAR_SIDE) /* 3072 */
#define HFC_CIFAR_CLASSES 10
#define HFC_MAX_CLASSES 1000  /* ImageNet's; CIFAR-100 has 100 */
#define HFC_MAX_SIDE 4096     /* the largest image height or width */
#define HFC_CLASS_NAME 64     /* bytes of a class name, with its NUL */

/* Where the images came from: the name in --dataset and the JSON's "dataset". */
typedef enum {
    HFC_CIFAR10,
    HFC_CIFAR100,
    HFC_MNIST,    /* idx files (MNIST, Fashion-MNIST) */
    HFC_FOLDER,   /* ROOT/CLASS/IMAGE folders */
    HFC_CIFAR10C, /* one corruption and severity of CIFAR-10-C's .npy files */
    HFC_DATASET_KINDS
} hfc_dataset_kind;
typedef enum { HFC_SET_TEST, HFC_SET_TRAIN } hfc_set;

typedef struct {
    hfc_dataset_kind kind;
    hfc_set set;
    int n_classes;     /* 10, 100 (CIFAR-100's fine labels), a folder's class count ... */
    int channels, height, width; /* every image's: C x H x W */
    size_t n;          /* number of images held */
    uint16_t *labels;  /* (n) values 0..n_classes-1 */
    uint8_t *pixels;   /* (n, C, H, W) planes, row-major: 8-bit sources */
    float *values;     /* the same layout for float sources (float32 .npy), else NULL */
    size_t first;      /* index of images[0] in the set (a shard starts past 0) */
    size_t set_images; /* images in the whole set (after the limit) */
    char (*class_names)[HFC_CLASS_NAME]; /* (n_classes) names from the data, or NULL */
    size_t skipped;    /* images left out (image folders, --skip-bad-images) */
    char skipped_note[600]; /* the first of them: "FILE: reason" */
    char corruption[32]; /* CIFAR-10-C: the corruption's name, else "" */
    int severity;        /* CIFAR-10-C: 1..5, else 0 */
    char path[1024];   /* the file the images came from ("DIR/{a ... b}" for several) */
} hfc_dataset;

/* Values in one image: channels x height x width. */
size_t hfc_dataset_image_size(const hfc_dataset *ds);
/* Image i (0 <= i < n) as floats 0..255, (C, H, W). */
void hfc_dataset_image(const hfc_dataset *ds, size_t i, float *out);
/* Room for n images and labels of ds's geometry (pixels, or values when
 * `floats`); HFC_ERR_NOMEM naming path. */
hfc_status hfc_dataset_alloc(hfc_dataset *ds, size_t n, int floats, const char *path,
                             hfc_error *err);

/* Read a set: path is a file, or a directory holding the official files
 * (CIFAR-10: test_batch.bin, data_batch_1..5.bin; CIFAR-100: test.bin,
 * train.bin). limit > 0 keeps only the first `limit` images. Class names
 * come from batches.meta.txt / fine_label_names.txt beside the data, if
 * there. --set train with a file is HFC_ERR_USAGE. */
hfc_status hfc_dataset_load(hfc_dataset *ds, const char *path, hfc_dataset_kind kind, hfc_set set,
                            size_t limit, hfc_error *err);
/* One file already in memory (raw is not kept), as a test set. */
hfc_status hfc_dataset_parse(hfc_dataset *ds, const uint8_t *raw, size_t len, const char *path,
                             hfc_dataset_kind kind, size_t limit, hfc_error *err);
/* A NumPy data set (src/data/npy.c): images, a uint8 or float32 (values in
 * 0..255) .npy of shape (N, H, W, C) (CIFAR-10-C's layout: (N, 32, 32, 3)),
 * (N, C, H, W) with nchw, or (N, H, W) for one channel; labels,
 * a .npy of N integers of any little-endian integer dtype, each in
 * 0..classes-1 of kind. The images' file is mapped: only the first `limit`
 * images (0: all) are read. HFC_ERR_DATA names the file and what is wrong
 * (a dtype, a shape, a size the header does not account for, a label). */
hfc_status hfc_dataset_load_npy(hfc_dataset *ds, const char *images, const char *labels, int nchw,
                                hfc_dataset_kind kind, size_t limit, hfc_error *err);
/* The same from two files' bytes in memory (the fuzzer's). */
hfc_status hfc_dataset_parse_npy(hfc_dataset *ds, const uint8_t *images, size_t images_len,
                                 const uint8_t *labels, size_t labels_len, int nchw,
                                 hfc_dataset_kind kind, size_t limit, hfc_error *err);
/* A NumPy .npz (np.savez or savez_compressed) holding images.npy and
 * labels.npy, read as hfc_dataset_load_npy reads the two files
 * (src/data/npz.c); stored members are mapped, each member's CRC checked. */
hfc_status hfc_dataset_load_npz(hfc_dataset *ds, const char *path, int nchw,
                                hfc_dataset_kind kind, size_t limit, hfc_error *err);
/* MNIST / Fashion-MNIST idx files (src/data/idx.c), gzip-compressed
 * (.gz) or not: path is the images' file (labels: `labels`, or the same
 * name with "labels-idx1" for "images-idx3") or a directory holding
 * t10k-* (train-* for HFC_SET_TRAIN). 1 x H x W images, labels 0..9. */
hfc_status hfc_dataset_load_idx(hfc_dataset *ds, const char *path, const char *labels,
                                hfc_set set, size_t limit, hfc_error *err);
/* CIFAR-10-C (src/data/cifar10c.c): DIR/NAME.npy per corruption, uint8
 * (N, 32, 32, 3), and DIR/labels.npy; severity s is the s-th fifth of
 * both. hfc_cifar10c_list: the corruptions in DIR, sorted (at most max). */
hfc_status hfc_dataset_load_cifar10c(hfc_dataset *ds, const char *dir, const char *corruption,
                                     int severity, size_t limit, hfc_error *err);
hfc_status hfc_cifar10c_list(const char *dir, char (*names)[32], int max, int *n, hfc_error *err);
/* Image folders (src/data/folder.c), torchvision's ImageFolder layout:
 * ROOT/CLASS/.../IMAGE.png|.jpg|.jpeg; classes sorted by name, files in
 * ImageFolder's order; PNG (8/16-bit, grey, RGB, palette; alpha dropped)
 * and JPEG (grey, colour). Each image: `channels` (3, or 1 as PIL's "L"),
 * then torchvision's Resize(resize) and CenterCrop(crop) as on PIL images.
 * All must end the same size (the first's). A file that cannot be read is
 * HFC_ERR_DATA naming it, or with skip_bad is left out (ds->skipped). */
typedef struct {
    int channels;   /* 1 or 3 */
    int resize;     /* 0: none */
    int crop;       /* 0: none */
    int threads;    /* decoding threads */
    int skip_bad;   /* leave out images that cannot be read */
} hfc_folder_options;
hfc_status hfc_dataset_load_folder(hfc_dataset *ds, const char *root,
                                   const hfc_folder_options *opt, size_t limit, hfc_error *err);
/* Keep only shard `index` of `count`: images [index*n/count, (index+1)*n/count). */
hfc_status hfc_dataset_shard(hfc_dataset *ds, int index, int count, hfc_error *err);
void hfc_dataset_free(hfc_dataset *ds);
/* "cifar10", "cifar100", "mnist", "folder", "cifar10-c"; "test"/"train":
 * the names used by options and JSON. hfc_dataset_kind_parse: -1 if unknown. */
const char *hfc_dataset_name(hfc_dataset_kind kind);
int hfc_dataset_kind_parse(const char *name);
const char *hfc_set_name(hfc_set set);

/* ------------------------------------------------------------------ mask */

/* The frequency mask (src/data/mask.c), one value for the split, the pictures,
 * the JSON and tools/reference.py. The weight of frequency (fy, fx),
 * -16 <= fy, fx < 16 (in fftshift order, cell (i, j) holds (i - 16, j - 16)),
 * with d = sqrt(fy^2 + fx^2):
 *   disc      [d < r]                 the paper's, the default
 *   square    [max(|fy|, |fx|) < r]
 *   gaussian  exp(-d^2 / (2 r^2))     r > 0
 *   band      [r <= d < outer]        --radius A:B; low is the ring, high the rest */
typedef enum {
    HFC_MASK_DISC,
    HFC_MASK_SQUARE,
    HFC_MASK_GAUSSIAN,
    HFC_MASK_BAND,
    HFC_MASK_KINDS
} hfc_mask_kind;

typedef struct {
    hfc_mask_kind kind;
    double r;      /* radius (band: inner, A) */
    double outer;  /* band only: B */
} hfc_mask;

double hfc_mask_weight(const hfc_mask *m, int fy, int fx);
/* 1 when the weight is unchanged by flipping the sign of either frequency
 * (-16 is its own negative): what the partial-DFT split needs. */
int hfc_mask_sign_symmetric(const hfc_mask *m);
/* The largest max(|fy|, |fx|) of a nonzero weight; -1 for an empty mask. */
int hfc_mask_max_frequency(const hfc_mask *m);
/* HFC_ERR_USAGE for a radius outside 0..1000, gaussian r = 0, band A >= B. */
hfc_status hfc_mask_check(const hfc_mask *m, hfc_error *err);
const char *hfc_mask_kind_name(hfc_mask_kind kind);
int hfc_mask_kind_parse(const char *name); /* -1: unknown */
/* "4" or, for a band, "4:8": the radius as --radius spells it and JSON's "radius" */
void hfc_mask_label(const hfc_mask *m, char *buf, size_t cap);
/* "dist < 4", "4 <= dist < 8", ...: for pictures */
void hfc_mask_describe(const hfc_mask *m, char *buf, size_t cap);
/* Where the mask sits on a radius axis: r, or the middle of a band. */
double hfc_mask_position(const hfc_mask *m);
int hfc_mask_equal(const hfc_mask *a, const hfc_mask *b);

/* ----------------------------------------------------------------- split */

/* The paper's frequency split, per channel of an H x W image (shifted cell
 * (i, j) holds frequency (i - H/2, j - W/2), integer halves):
 *   F = fftshift(fft2(x)); M = the mask's weights (disc: [dist < r])
 *   low = Re(ifft2(ifftshift(F*M))), high = x - low
 * computed as the same projection by small matrix products (see split.c),
 * or by FFTW for a mask that is not sign-symmetric (at 32 x 32) or that
 * needs more than 32 basis vectors a side (other sizes).
 * A splitter serves the masks it was made with (and any symmetric mask
 * within their largest frequency) for up to `capacity` images:
 * hfc_split_forward transforms a batch once, hfc_split_apply then makes
 * low and high for any number of masks from the stored coefficients. */
typedef struct hfc_splitter hfc_splitter;

hfc_status hfc_splitter_new(hfc_splitter **out, size_t capacity, int channels, int height,
                            int width, const hfc_mask *masks, int n_masks, hfc_error *err);
void hfc_splitter_free(hfc_splitter *s);
/* Split every later mask by FFTW (tests compare the two ways). */
hfc_status hfc_splitter_use_fft(hfc_splitter *s, hfc_error *err);
/* x: (n, C, H, W) raw pixel values; n <= capacity. x is read again by
 * hfc_split_apply (high = x - low): keep it unchanged until the last one. */
void hfc_split_forward(hfc_splitter *s, const float *x, size_t n);
/* Make the low and high images of the last forward's n images under mask;
 * HFC_ERR_USAGE when the splitter was not made for it. */
hfc_status hfc_split_apply(hfc_splitter *s, const hfc_mask *mask, hfc_error *err);
/* (n, C, H, W) results of the last hfc_split_apply; owned by s. */
const float *hfc_split_low(const hfc_splitter *s);
const float *hfc_split_high(const hfc_splitter *s);
/* |fftshift(fft2(x))| of one (C, H, W) image by FFTW, channels averaged:
 * out is (H, W) in the shifted layout (DC at (H/2, W/2)). */
hfc_status hfc_spectrum_magnitude(const float *image, int channels, int height, int width,
                                  float *out, hfc_error *err);

#endif
