/* hfc/experiments.h - what hfc-eval measures: evaluate, attack, heatmap, intrinsic dimension, margins (src/experiments). */
#ifndef HFC_EXPERIMENTS_H
#define HFC_EXPERIMENTS_H

#include "hfc/data.h"
#include "hfc/engine.h"

/* The limits of one run: radii (masks), models, images drawn in grids. */
#define HFC_MAX_RADII 64
#define HFC_MAX_MODELS 32
#define HFC_MAX_PNG_IMAGES 32

/* ---------------------------------------------------------------- stream */

/* The skeleton every experiment shares (src/experiments/stream.c). */

/* Models that take the data's images (C x H x W) and (with `classes`) have
 * its class count, else HFC_ERR_MODEL naming the model. */
hfc_status hfc_check_models(const hfc_model *const *models, int n_models, const hfc_dataset *ds,
                            int classes, hfc_error *err);

/* One batch of a stream, as the experiment's step gets it. */
typedef struct {
    const hfc_dataset *ds;
    size_t batch;             /* images per batch */
    size_t first, n;          /* this batch: images [first, first + n) of ds */
    const uint16_t *labels;   /* theirs */
    float *x;                 /* their raw pixels as floats, (n, C, H, W) */
    hfc_splitter *split;      /* with masks: hfc_split_forward already done on x */
    const hfc_progress *progress;
    size_t units;             /* progress units an image counts for */
    size_t total;             /* progress units in all: images x units */
} hfc_batch;

typedef hfc_status (*hfc_batch_fn)(hfc_batch *b, void *ctx, hfc_error *err);

/* Stream ds in batches of `batch` images (from hfc_engines_batch, so that
 * results depend on neither the batch nor the threads): for each, x and,
 * with n_masks > 0, a splitter made for the masks with x transformed; then
 * step(b, ctx); then progress at (first + n) * units of ds->n * units. A
 * step that reports finer calls hfc_batch_progress itself. */
hfc_status hfc_stream(const hfc_dataset *ds, size_t batch, const hfc_mask *masks, int n_masks,
                      size_t units, const hfc_progress *progress, hfc_batch_fn step, void *ctx,
                      hfc_error *err);
void hfc_batch_progress(const hfc_batch *b, size_t done);

/* -------------------------------------------------------------- evaluate */

enum { HFC_ORIGINAL, HFC_LOW, HFC_HIGH, HFC_VERSIONS };

/* How an evaluation treats images and BatchNorm beyond the split: the
 * default is plain inference; the paper's own code (HaohanWang/HFC,
 * scripts/resnet.py) rescaled low and high images by their maximum, used
 * batch statistics in BatchNorm and, for Figure 7's experiment, smoothed
 * the first conv's kernels. Recorded in every report. */
typedef struct {
    int bn_batch;      /* 0: running statistics; N: each run of N images' own (the
                          engines must be made with the same bn_batch) */
    int rescale_max;   /* each low and high image x becomes x / max(x) * 255
                          (max over all its values; left as it is when max <= 0) */
    double smooth;     /* rho of hfc_model_smooth_first_conv; 0: not smoothed */
} hfc_protocol;

typedef struct {
    hfc_mask mask;
    size_t images;
    size_t correct[HFC_VERSIONS];
    size_t class_images[HFC_MAX_CLASSES];
    size_t class_correct[HFC_MAX_CLASSES][HFC_VERSIONS];
    size_t rescale_skipped[HFC_VERSIONS]; /* images whose max <= 0 (rescale_max) */
} hfc_tally;

/* The experiment: stream the dataset in batches; per batch, transform each
 * image once, run every model on the originals once and, per radius, on the
 * low and high reconstructions. tallies: (n_models, n_masks), filled here.
 * Every model must take 3x32x32 input and have the data's class count. */
hfc_status hfc_evaluate(hfc_engine *const *engines, const hfc_model *const *models, int n_models,
                        const hfc_mask *masks, int n_masks, const hfc_dataset *ds,
                        size_t batch, const hfc_protocol *protocol,
                        const hfc_progress *progress, hfc_tally *tallies, hfc_error *err);

/* -------------------------------------------------------------- pictures */

/* What the pictures of a run show (src/experiments/pictures.c): the images
 * of the grids (--png-images, else the first image of each class), their
 * low and high versions under each mask, and every model's prediction and
 * confidence (largest softmax probability) on each version. */
typedef struct {
    int n_images, n_models, n_masks;
    int channels, height, width;      /* the images' C x H x W */
    size_t index[HFC_MAX_PNG_IMAGES]; /* in the images used */
    int label[HFC_MAX_PNG_IMAGES];
    uint8_t *pixels;                  /* (n_images, C, H, W), rounded and clipped to 0..255 */
    float *original;                  /* as in the data, floats */
    float *low, *high;                /* (n_masks, n_images, C, H, W) */
    int *pred;                        /* [((model * n_masks + mask) * n_images + image)
                                          * HFC_VERSIONS + version] */
    float *confidence;                /* the same layout */
} hfc_grid_data;

/* HFC_ERR_USAGE for an index past the images used. Free with hfc_grid_free. */
hfc_status hfc_grid_predict(hfc_engine *const *engines, const hfc_model *const *models,
                            int n_models, const hfc_mask *masks, int n_masks,
                            const hfc_dataset *ds, const size_t *images, int n_images,
                            hfc_grid_data *g, hfc_error *err);
void hfc_grid_free(hfc_grid_data *g);

/* ---------------------------------------------------------------- attack */

#define HFC_MAX_EPS 16

/* FGSM and PGD (L-infinity) in [0, 1] pixel space (src/experiments/attack.c): x = pixel
 * / 255, the model's preprocessing after; cross-entropy with the file's
 * label. From x0 (plus, with random_start, eps * (2u - 1) per value, u from
 * hfc_uniform(seed, image, value), then clipped to [0, 1]), `steps` times:
 * x += step_size * sign(d loss / d x), then x is projected onto
 * [x0 - eps, x0 + eps] and clipped to [0, 1]. FGSM is 1 step of size eps. */
typedef struct {
    int pgd;              /* 0: FGSM */
    int steps;
    double step_size;     /* 0: eps / 4 (PGD), eps (FGSM) */
    int random_start;
    uint64_t seed;
} hfc_attack_spec;

/* Per model, eps and radius: correct counts of the clean and attacked
 * images, by version (original, and with a radius low and high). */
typedef struct {
    double eps;
    int has_mask;         /* 0: the original images only */
    hfc_mask mask;
    size_t images;
    size_t correct[HFC_VERSIONS][2]; /* [version][0 clean, 1 adversarial] */
} hfc_attack_tally;

/* The documented generator of the random start: splitmix64 (Steele et al.),
 * h = splitmix64(seed), h = splitmix64(h ^ image), h = splitmix64(h ^ value);
 * u = (h >> 40) / 2^24 in [0, 1). image counts from the set's first image. */
double hfc_uniform(uint64_t seed, uint64_t image, uint64_t value);
uint64_t hfc_splitmix64(uint64_t z);

/* Attack every model (engines made with gradients) at each eps on ds (and,
 * with n_masks > 0, the low and high images under each mask as well).
 * tallies: (n_models, n_eps, max(n_masks, 1)). */
hfc_status hfc_attack(hfc_engine *const *engines, const hfc_model *const *models, int n_models,
                      const hfc_attack_spec *spec, const double *eps, int n_eps,
                      const hfc_mask *masks, int n_masks, const hfc_dataset *ds, size_t batch,
                      const hfc_progress *progress, hfc_attack_tally *tallies, hfc_error *err);

/* --------------------------------------------------------------- heatmap */

/* The Fourier heat map (src/experiments/heatmap.c; Yin et al., NeurIPS 2019): per
 * frequency cell (i, j) of the H x W grid in fftshift order (frequency
 * (i - H/2, j - W/2), integer halves), the fraction of images misclassified
 * after clip(x/255 + eps * s * U_ij, 0, 1) per channel. U_ij: unit-norm
 * Re(ifft2(ifftshift(Z))), Z = 0.5+0.5i at the cell and 0.5-0.5i at its
 * mirror (the cell of the negated frequency; (32-i)%32, (32-j)%32 at 32 x
 * 32), 1 at a cell that is its own mirror; a cell and its mirror share one
 * U, made from the lexicographically smaller of the two, and one error.
 * Only the extent x extent cells centred on DC are evaluated (frequencies
 * -floor(K/2) .. K-1-floor(K/2) on each axis, clipped to the grid). */
#define HFC_MAX_EXTENT 64
typedef struct {
    double eps;       /* L2 norm of each channel's perturbation, in [0, 1] pixels */
    uint64_t seed;
    int extent;       /* K; 0: every cell of grids up to 32 x 32, else 31 */
} hfc_heatmap_spec;

typedef struct {
    double eps;
    uint64_t seed;
    size_t images;
    size_t clean_wrong;
    int height, width;   /* the frequency grid: the images' H x W */
    int rows, cols;      /* the cells evaluated, centred on DC */
    int top, left;       /* grid index of the first: cell (top + r, left + c) */
    size_t wrong[HFC_MAX_EXTENT * HFC_MAX_EXTENT]; /* [r * cols + c] */
} hfc_heatmap_tally;

/* U of cell (i, j)'s pair on an h x w grid, h * w floats. */
void hfc_fourier_basis(int h, int w, int i, int j, float *u);
/* The sign of (pair of (i, j), image, channel): with (i', j') the
 * lexicographically smaller of (i, j) and its mirror, h = splitmix64(seed),
 * then h = splitmix64(h ^ v) for v = i', j', image, channel in turn; -1 if h
 * is odd, else +1. image counts from the set's first image. */
int hfc_heatmap_sign(int h, int w, uint64_t seed, int i, int j, uint64_t image, int channel);
/* tallies: one per model. */
hfc_status hfc_heatmap(hfc_engine *const *engines, const hfc_model *const *models, int n_models,
                       const hfc_heatmap_spec *spec, const hfc_dataset *ds, size_t batch,
                       const hfc_progress *progress, hfc_heatmap_tally *tallies, hfc_error *err);

/* ------------------------------------------------------------- intrinsic */

/* Intrinsic dimension by TwoNN (src/experiments/intrinsic.c; Facco et al. 2017): id of
 * the N points, and sd over random 90% subsets (definitions there and in
 * README). points: N' after dropping r1 = 0 and r1 = r2. */
typedef struct {
    double id, sd;
    size_t points;
} hfc_id_result;

hfc_status hfc_twonn(const float *x, size_t n, size_t dim, int resamples, uint64_t seed,
                     hfc_id_result *out, hfc_error *err);

#define HFC_MAX_ID_LAYERS 512


typedef struct {
    int versions[HFC_VERSIONS]; /* HFC_ORIGINAL, HFC_LOW, HFC_HIGH */
    int n_versions;
    hfc_mask mask;              /* for low and high */
    int resamples;              /* subsets for sd; 0: none */
    uint64_t seed;
} hfc_id_spec;

typedef struct {
    int node, depth;   /* depth: position in hfc_block_outputs (0: input) */
    size_t dim;
    int version;
    hfc_id_result result;
} hfc_id_layer;

/* Every version x block output of one model (e made with gradients, which
 * keeps every value): out gets n_versions * layers entries. */
hfc_status hfc_intrinsic_dimension(hfc_engine *e, const hfc_model *m, const hfc_dataset *ds,
                                   const hfc_id_spec *spec, const hfc_progress *progress,
                                   hfc_id_layer *out, int cap, int *n_out, hfc_error *err);

/* ---------------------------------------------------------------- margin */

/* "Hold me tight!" margins (src/experiments/margin.c): for each subspace of K x K DCT
 * atoms (u, v), o <= u, v < o + K, of the image's H x W 2-D DCT, on the
 * diagonal at offsets o = 0, stride, ... up to min(H, W) - K (each atom on
 * every channel), DeepFool constrained to it, in [0, 1] pixels, no clipping,
 * from the model's own prediction: at x_i, for every class k != pred,
 * w_k = grad f_k - grad f_pred, pert_k = |f_k - f_pred| / ||S'w_k||; with
 * the smallest, r += max(pert, 1e-4) * SS'w / ||S'w||, x_i += the same; stop
 * when the prediction at x0 + (1 + overshoot) r changes (at most max_iter
 * steps). The margin is ||(1 + overshoot) r||_2. */
typedef struct {
    int block;         /* K: 8 on CIFAR */
    int stride;        /* between offsets: 2 */
    int max_iter;      /* 100 */
    double overshoot;  /* 0.02 */
    int side;          /* min(H, W) of the images: 32 for CIFAR (0 reads as 32) */
} hfc_margin_spec;

/* Subspaces of a spec: (side - K) / stride + 1 (13 for 8 and 2 at 32); 0 if invalid. */
int hfc_margin_subspaces(const hfc_margin_spec *spec);
/* margins: (subspaces, ds->n), filled here; NaN for an image not fooled
 * within max_iter. The engine must be made with gradients (and running
 * BatchNorm statistics: images are independent). */
hfc_status hfc_margin(hfc_engine *engine, const hfc_model *model, const hfc_dataset *ds,
                      const hfc_margin_spec *spec, size_t batch, const hfc_progress *progress,
                      float *margins, hfc_error *err);

/* ---------------------------------------------------------------- protos */

/* Prototype networks ("this looks like that", ProtoPNet; src/experiments/
 * protos.c): which prototypes an image's evidence comes from, on its
 * original, low and high versions (the model's prototype layer:
 * hfc_model_prototypes). The engine must be made with tap = the layer's
 * feature node. */
#define HFC_MAX_TOP 32

typedef struct {
    int prototype;
    float similarity, distance;  /* at its nearest position */
    int row, col;                /* that position on the feature map */
    int box[4];                  /* the image region where the similarity map, upsampled
                                    to the image (bilinear, half-pixel centres), is at least
                                    its 95th percentile (numpy's linear one): its bounding
                                    box, top, left, bottom, right (exclusive) */
} hfc_proto_hit;

/* One image listed in full (--images): per version, the prediction and the
 * top K prototypes by similarity (ties: the lower index), each with its
 * similarity map (positions of the feature map, row-major) and, upsampled,
 * what the pictures draw. */
typedef struct {
    size_t index;
    int label;
    int pred[HFC_VERSIONS];
    hfc_proto_hit top[HFC_VERSIONS][HFC_MAX_TOP];
    float *maps;      /* (versions, top, map h * w) */
    float *heat;      /* (versions, top, image h * w): the maps upsampled */
    float *pixels;    /* (versions, C, H, W): the image the model saw */
} hfc_proto_image;

/* The push (the paper's projection, `protos --push`): per prototype, the
 * training image and position whose feature vector is nearest to it among
 * the images of the prototype's class (of all images when the model has no
 * last layer to tell the class), the first of equals in data order, and
 * the region of that image as hfc_proto_hit's box, its pixels kept. */
typedef struct {
    int prototype, class_id;
    size_t image;
    int label;
    int row, col;
    float distance;
    int box[4];
    uint8_t *patch;   /* (C, box height, box width), rounded and clipped pixels */
} hfc_push_entry;

typedef struct {
    char model_sha256[65];
    int count, channels;
    size_t images;            /* the training images searched */
    hfc_push_entry *entries;  /* (count) */
} hfc_push_record;

typedef struct {
    int top;                  /* K, 1 .. min(HFC_MAX_TOP, prototypes) */
    hfc_mask mask;            /* low and high */
    const size_t *explain;    /* images listed in full, in the data used */
    int n_explain;            /* 0 .. HFC_MAX_PNG_IMAGES */
} hfc_protos_spec;

typedef struct {
    hfc_prototypes info;
    size_t images;
    size_t correct[HFC_VERSIONS];
    double *similarity_sum;   /* (versions, count): summed over images */
    size_t *top_count;        /* (versions, count): images with it in their top K */
    int n_explain;
    hfc_proto_image *explained;
} hfc_protos_result;

/* Per version: accuracy, every prototype's mean similarity and top-K rate,
 * and the listed images in full. Free r with hfc_protos_free. */
hfc_status hfc_protos(hfc_engine *e, const hfc_model *m, const hfc_dataset *ds,
                      const hfc_protos_spec *spec, size_t batch, const hfc_progress *progress,
                      hfc_protos_result *r, hfc_error *err);
void hfc_protos_free(hfc_protos_result *r);
/* The push over ds in one streaming pass (memory: a batch and one entry
 * per prototype). Free with hfc_push_free. */
hfc_status hfc_protos_push(hfc_engine *e, const hfc_model *m, const hfc_dataset *ds, size_t batch,
                           const hfc_progress *progress, hfc_push_record *rec, hfc_error *err);
void hfc_push_free(hfc_push_record *rec);

#endif
