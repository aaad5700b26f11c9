/* hfc.h - the hfc-eval library: data -> split -> engine -> report.
 *
 * Every function that can fail returns an hfc_status and fills an
 * hfc_error with the path it was reading and a one-line reason; only
 * src/main.c prints them. Objects come in load/new and free pairs; the
 * caller owns what a load or new function returns and frees it with its pair.
 */
#ifndef HFC_H
#define HFC_H

#include <stddef.h>
#include <stdint.h>

#define HFC_VERSION "1.0.0"

/* ---------------------------------------------------------------- errors */

typedef enum {
    HFC_OK = 0,
    HFC_ERR_USAGE = 1,  /* bad command line */
    HFC_ERR_IO = 2,     /* a file could not be opened, read or written */
    HFC_ERR_DATA = 3,   /* the CIFAR-10 file is malformed */
    HFC_ERR_MODEL = 4,  /* the model file is malformed or unsupported */
    HFC_ERR_NOMEM = 5,  /* out of memory or a resource could not be made */
} hfc_status;

typedef struct {
    char path[1024];   /* the file the error is about ("" for none) */
    char reason[512];  /* one line, no trailing newline */
} hfc_error;

/* Fill err and return status. fmt is printf-style. */
hfc_status hfc_fail(hfc_error *err, hfc_status status, const char *path,
                    const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

/* ------------------------------------------------------------------ data */

#define HFC_CIFAR_SIDE 32
#define HFC_CIFAR_CHANNELS 3
#define HFC_CIFAR_PIXELS (HFC_CIFAR_CHANNELS * HFC_CIFAR_SIDE * HFC_CIFAR_SIDE) /* 3072 */
#define HFC_CIFAR_CLASSES 10
#define HFC_MAX_CLASSES 100   /* CIFAR-100's fine labels */

typedef enum { HFC_CIFAR10, HFC_CIFAR100 } hfc_dataset_kind;
typedef enum { HFC_SET_TEST, HFC_SET_TRAIN } hfc_set;

typedef struct {
    hfc_dataset_kind kind;
    hfc_set set;
    int n_classes;     /* 10, or 100 (CIFAR-100's fine labels) */
    size_t n;          /* number of images held */
    uint8_t *labels;   /* (n) values 0..n_classes-1 */
    uint8_t *pixels;   /* (n, 3, 32, 32) R, G, B planes, row-major */
    size_t first;      /* index of images[0] in the set (a shard starts past 0) */
    size_t set_images; /* images in the whole set (after the limit) */
    int has_names;     /* class_names read from the names file beside the data */
    char class_names[HFC_MAX_CLASSES][32];
    char path[1024];   /* the file the images came from ("DIR/{a ... b}" for several) */
} hfc_dataset;

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
/* Keep only shard `index` of `count`: images [index*n/count, (index+1)*n/count). */
hfc_status hfc_dataset_shard(hfc_dataset *ds, int index, int count, hfc_error *err);
void hfc_dataset_free(hfc_dataset *ds);
/* "cifar10"/"cifar100", "test"/"train": the names used by options and JSON. */
const char *hfc_dataset_name(hfc_dataset_kind kind);
const char *hfc_set_name(hfc_set set);

/* -------------------------------------------------------------- progress */

/* A long run says how far it is: update(ctx, done, total) in the calling
 * thread after each batch, `done` rising to `total` (units: images). A NULL
 * hfc_progress, or a NULL update, reports nothing. */
typedef struct {
    void (*update)(void *ctx, size_t done, size_t total);
    void *ctx;
} hfc_progress;

/* ------------------------------------------------------------------ mask */

/* The frequency mask (src/mask.c), one value for the split, the pictures,
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

/* The paper's frequency split, per channel of a 32x32 image:
 *   F = fftshift(fft2(x)); M = the mask's weights (disc: [dist < r])
 *   low = Re(ifft2(ifftshift(F*M))), high = x - low
 * computed as the same projection by small matrix products (see split.c),
 * or by FFTW for a mask that is not sign-symmetric.
 * A splitter serves the masks it was made with (and any symmetric mask
 * within their largest frequency) for up to `capacity` images:
 * hfc_split_forward transforms a batch once, hfc_split_apply then makes
 * low and high for any number of masks from the stored coefficients. */
typedef struct hfc_splitter hfc_splitter;

hfc_status hfc_splitter_new(hfc_splitter **out, size_t capacity, const hfc_mask *masks,
                            int n_masks, hfc_error *err);
void hfc_splitter_free(hfc_splitter *s);
/* Split every later mask by FFTW (tests compare the two ways). */
hfc_status hfc_splitter_use_fft(hfc_splitter *s, hfc_error *err);
/* x: (n, 3, 32, 32) raw pixel values; n <= capacity. x is read again by
 * hfc_split_apply (high = x - low): keep it unchanged until the last one. */
void hfc_split_forward(hfc_splitter *s, const float *x, size_t n);
/* Make the low and high images of the last forward's n images under mask;
 * HFC_ERR_USAGE when the splitter was not made for it. */
hfc_status hfc_split_apply(hfc_splitter *s, const hfc_mask *mask, hfc_error *err);
/* (n, 3, 32, 32) results of the last hfc_split_apply; owned by s. */
const float *hfc_split_low(const hfc_splitter *s);
const float *hfc_split_high(const hfc_splitter *s);
/* |fftshift(fft2(x))| of one (3, 32, 32) image by FFTW, channels averaged:
 * out is (32, 32) in the shifted layout of hfc_split_mask. */
hfc_status hfc_spectrum_magnitude(const float *image, float *out, hfc_error *err);

/* ----------------------------------------------------------------- model */

/* Every layer kind, from include/hfc_layers.def (one row per kind: its name
 * in model files, inputs, parser, forward function and cost). */
typedef enum {
#define HFC_LAYER(E, name, inputs, cost, since) HFC_OP_##E,
#define HFC_UNARY(E, name, since) HFC_OP_##E,
#include "hfc_layers.def"
#undef HFC_LAYER
#undef HFC_UNARY
    HFC_OP_COUNT
} hfc_op;

#define HFC_MAX_INPUTS 8  /* of one node (concat) */

/* The name of an op in model files ("conv2d"), NULL past the table. */
const char *hfc_op_name(hfc_op op);

typedef struct {
    int c, h, w;  /* one image's shape; the batch is outside */
} hfc_shape;

typedef struct {
    hfc_op op;
    char name[64];
    int n_in;
    int in[HFC_MAX_INPUTS]; /* indices of earlier nodes */
    hfc_shape out;        /* worked out when the model loads */
    int kh, kw;           /* conv, pools */
    int sh, sw;           /* stride: conv, pools, subsample */
    int ph, pw;           /* padding: conv, pools */
    int dh, dw;           /* dilation: conv */
    int groups;           /* conv (cin and cout divisible by it), channel_shuffle */
    int count_include_pad;/* avgpool2d */
    int before, after;    /* pad_channels */
    int start, stop;      /* slice_channels: [start, stop) */
    float eps;            /* batchnorm */
    float scale, shift;   /* affine */
    /* weights point into hfc_model.arena (never free them) */
    const float *weight;  /* conv (cout, cin/groups, kh, kw); linear (out, in); bn gamma (c) */
    const float *bias;    /* conv/linear (cout) or NULL; bn beta (c) or NULL */
    const float *mean;    /* bn (c) */
    const float *var;     /* bn (c) */
} hfc_node;

typedef struct {
    int channels, height, width;  /* the input the model expects */
    float scale;                  /* x = pixel * scale */
    float mean[4], std[4];        /* then (x - mean[c]) / std[c] */
    int n_classes;
    char **classes;               /* (n_classes) names */
    int n_nodes;
    hfc_node *nodes;              /* nodes[0] is the input, in run order */
    int output;                   /* index of the logits node */
    float *arena;                 /* every weight, one allocation */
    size_t arena_floats;
    char *metadata_json;          /* the file's "metadata" object, printed */
    double epoch;                 /* metadata "epoch" (a checkpoint series), or -1 */
    char sha256[65];              /* of the whole file, hex */
    unsigned format_version;      /* 1, 2 (no checksum: main warns) or 3 */
    char path[1024];
} hfc_model;

/* Read and validate a model file (format: docs/model-format.md). */
hfc_status hfc_model_load(hfc_model *m, const char *path, hfc_error *err);
/* The same from a file already in memory (raw is not kept); path names it
 * in errors. */
hfc_status hfc_model_parse(hfc_model *m, const uint8_t *raw, size_t len, const char *path,
                           hfc_error *err);
/* Once its engines are planned (they hold their own copies): hands the
 * memory of every conv's weights back to the system but the first conv's
 * (the kernels picture draws those), and sets those nodes' weight to NULL;
 * hfc_engine_new refuses the model afterwards. ResNet-50 would otherwise
 * hold its 94 MB of conv weights twice. */
void hfc_model_release_conv_weights(hfc_model *m);
void hfc_model_free(hfc_model *m);
/* The paper's kernel smoothing (Eq. 3, generateSmoothKernel): every kh x kw
 * kernel of the first conv layer, per (output, input) channel pair, becomes
 * its 2-D convolution with [[rho, rho, rho], [rho, 1, rho], [rho, rho, rho]],
 * mode 'same', boundary symmetric (edge values mirrored, as scipy's
 * convolve2d(..., boundary='symm')), not renormalised. In place, before any
 * BatchNorm folding (make engines afterwards). HFC_ERR_USAGE when the first
 * layer (the node reading the input) is not a conv. */
hfc_status hfc_model_smooth_first_conv(hfc_model *m, double rho, hfc_error *err);

/* ---------------------------------------------------------------- engine */

/* Images run together through each layer (one GEMM per conv for the group):
 * HFC_ENGINE_GROUP, half of it when no conv needs im2col, 2 to 8 times it
 * for models with small maps (src/engine_run.c, plan_group; the
 * engine's is hfc_engine_group). Groups are cut at multiples of it from the
 * first image a forward call gets, and threads take whole groups, so a
 * result never depends on the thread count; callers that stream batches
 * whose sizes are multiples of it (hfc_engines_batch) get results that do
 * not depend on the batch size either. */
#define HFC_ENGINE_GROUP 8

/* Run-time state for one model: fused plan, per-thread buffers. */
typedef struct hfc_engine hfc_engine;

/* Which convolution algorithms the engine may pick (src/engine_run.c,
 * plan_conv_paths): AUTO the fastest that applies, DIRECT rules out
 * Winograd, GEMM rules out the AVX-512 kernels (im2col + SGEMM). Results
 * differ by rounding only; tests run all three. */
typedef enum { HFC_CONV_AUTO, HFC_CONV_DIRECT, HFC_CONV_GEMM } hfc_conv_choice;

typedef struct {
    int threads;           /* worker threads for a forward call (>= 1) */
    hfc_conv_choice conv;
    int bn_batch;          /* 0: BatchNorm by the file's running statistics (folded
                              into convs); N > 0: by the biased mean and variance
                              over (N, H, W) of each run of N images, counted from
                              the first image of every forward call (the paper's
                              TF code at test time) */
    int gradients;         /* plan for hfc_engine_input_grad too: every step's output
                              is kept for the backward pass (more memory), and values
                              may differ from an inference engine's by rounding */
    int keep_values;       /* plan for hfc_engine_capture: nothing fused, every node's
                              value in a buffer of its own */
} hfc_engine_options;

hfc_status hfc_engine_new(hfc_engine **out, const hfc_model *m, const hfc_engine_options *opt,
                          hfc_error *err);
void hfc_engine_free(hfc_engine *e);
/* x: (n, c, h, w) raw pixel values (0..255 scale, preprocessing is applied
 * here); logits: (n, n_classes). */
void hfc_engine_forward(hfc_engine *e, const float *x, size_t n, float *logits);
/* The loss for hfc_engine_input_grad: fill dlogits (count, n_classes) with
 * d loss / d logits for images [first, first + count) of the call, given
 * their logits. Called from worker threads, for disjoint ranges. */
typedef void (*hfc_loss_grad)(void *ctx, size_t first, size_t count, const float *logits,
                              float *dlogits);
/* Forward and backward on n images x (raw pixels, as hfc_engine_forward):
 * logits (n, n_classes) and dx (n, c, h, w) = d loss / d x, in raw pixel
 * units, through the model's preprocessing. PyTorch's conventions: ReLU'(0)
 * = 0, max-pool routes to the first maximum. HFC_ERR_USAGE when e was not
 * made with gradients. */
hfc_status hfc_engine_input_grad(hfc_engine *e, const float *x, size_t n, hfc_loss_grad loss,
                                 void *ctx, float *logits, float *dx, hfc_error *err);
/* Forward on n images and copy node `node`'s output, (n, c*h*w) in
 * PyTorch's order, to out (node 0 is the input after preprocessing).
 * HFC_ERR_USAGE unless e was made with keep_values. */
hfc_status hfc_engine_capture(hfc_engine *e, const float *x, size_t n, int node, float *out,
                              hfc_error *err);
/* The batch an experiment should stream: at most `images` (at least 1),
 * rounded up to whole groups of every engine (for batch statistics, whole
 * batches of them), so that results do not depend on the batch asked for. */
size_t hfc_engines_batch(hfc_engine *const *engines, int n_engines, size_t batch, size_t images);
/* Images a forward call's batches should be a multiple of for results not
 * to depend on the batch size: the engine's group (bn_batch in that mode). */
size_t hfc_engine_group(const hfc_engine *e);
/* Multiply-adds of one image's forward pass (conv and linear layers). */
double hfc_engine_flops(const hfc_engine *e);

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

/* ---------------------------------------------------------------- attack */

#define HFC_MAX_EPS 16

/* FGSM and PGD (L-infinity) in [0, 1] pixel space (src/attack.c): x = pixel
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

/* The Fourier heat map (src/heatmap.c; Yin et al., NeurIPS 2019): per
 * frequency cell (i, j) of the 32 x 32 grid in fftshift order, the fraction
 * of images misclassified after clip(x/255 + eps * s * U_ij, 0, 1) per
 * channel. U_ij: unit-norm Re(ifft2(ifftshift(Z))), Z = 0.5+0.5i at the
 * cell and 0.5-0.5i at its mirror ((32-i)%32, (32-j)%32), 1 at a cell that
 * is its own mirror; a cell and its mirror share one U, made from the
 * lexicographically smaller of the two, and one error. */
typedef struct {
    double eps;       /* L2 norm of each channel's perturbation, in [0, 1] pixels */
    uint64_t seed;
} hfc_heatmap_spec;

typedef struct {
    double eps;
    uint64_t seed;
    size_t images;
    size_t clean_wrong;
    size_t wrong[HFC_CIFAR_SIDE * HFC_CIFAR_SIDE]; /* [i * 32 + j], fftshift order */
} hfc_heatmap_tally;

/* U of cell (i, j)'s pair, 1024 floats. */
void hfc_fourier_basis(int i, int j, float *u);
/* The sign of (pair of (i, j), image, channel): with (i', j') the
 * lexicographically smaller of (i, j) and its mirror, h = splitmix64(seed),
 * then h = splitmix64(h ^ v) for v = i', j', image, channel in turn; -1 if h
 * is odd, else +1. image counts from the set's first image. */
int hfc_heatmap_sign(uint64_t seed, int i, int j, uint64_t image, int channel);
/* tallies: one per model. */
hfc_status hfc_heatmap(hfc_engine *const *engines, const hfc_model *const *models, int n_models,
                       const hfc_heatmap_spec *spec, const hfc_dataset *ds, size_t batch,
                       const hfc_progress *progress, hfc_heatmap_tally *tallies, hfc_error *err);

/* ------------------------------------------------------------- intrinsic */

/* Intrinsic dimension by TwoNN (src/intrinsic.c; Facco et al. 2017): id of
 * the N points, and sd over random 90% subsets (definitions there and in
 * README). points: N' after dropping r1 = 0 and r1 = r2. */
typedef struct {
    double id, sd;
    size_t points;
} hfc_id_result;

hfc_status hfc_twonn(const float *x, size_t n, size_t dim, int resamples, uint64_t seed,
                     hfc_id_result *out, hfc_error *err);

#define HFC_MAX_ID_LAYERS 512

/* The nodes whose outputs `hfc-eval id` measures, in run order: the input
 * (node 0, after preprocessing), every node that is all that is live at its
 * point of the graph (nothing computed before it is read after it) and
 * either ends a block (add, concat), is read twice (a residual block's
 * input) or feeds a conv, linear or pooling layer (a stage's output), and
 * the logits. Returns how many (at most cap). */
int hfc_block_outputs(const hfc_model *m, int *nodes, int cap);

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
char *hfc_report_id_json(const hfc_id_layer *L, const hfc_id_spec *spec, const hfc_model *m,
                         const hfc_dataset *ds, double seconds, int pretty);
/* DIR/id.png: id against depth, one line per model and version. layers:
 * n_models runs of counts[j] entries. */
hfc_status hfc_id_picture(const char *dir, const hfc_model *const *models, int n_models,
                          const hfc_id_layer *layers, const int *counts, hfc_error *err);

/* ---------------------------------------------------------------- margin */

/* "Hold me tight!" margins (src/margin.c): for each subspace of K x K DCT
 * atoms on the diagonal at offsets 0, stride, ... (each atom on all three
 * channels), DeepFool constrained to it, in [0, 1] pixels, no clipping,
 * from the model's own prediction: at x_i, for every class k != pred,
 * w_k = grad f_k - grad f_pred, pert_k = |f_k - f_pred| / ||S'w_k||; with
 * the smallest, r += max(pert, 1e-4) * SS'w / ||S'w||, x_i += the same; stop
 * when the prediction at x0 + (1 + overshoot) r changes (at most max_iter
 * steps). The margin is ||(1 + overshoot) r||_2. */
typedef struct {
    int block;         /* K: 8 on CIFAR (divides 32) */
    int stride;        /* between offsets: 2 */
    int max_iter;      /* 100 */
    double overshoot;  /* 0.02 */
} hfc_margin_spec;

/* Subspaces of a spec: (32 - K) / stride + 1 (13 for 8 and 2); 0 if invalid. */
int hfc_margin_subspaces(const hfc_margin_spec *spec);
/* margins: (subspaces, ds->n), filled here; NaN for an image not fooled
 * within max_iter. The engine must be made with gradients (and running
 * BatchNorm statistics: images are independent). */
hfc_status hfc_margin(hfc_engine *engine, const hfc_model *model, const hfc_dataset *ds,
                      const hfc_margin_spec *spec, size_t batch, const hfc_progress *progress,
                      float *margins, hfc_error *err);

/* ---------------------------------------------------------------- report */

/* One JSON object (no newline) for a model at one radius of a run over ds
 * (its path, dataset, set, class names and, when ds is a shard of shard_count,
 * the shard); caller frees. Schema: README, "Output: JSON Lines". */
char *hfc_report_json(const hfc_tally *t, const hfc_model *m, const hfc_dataset *ds,
                      const hfc_protocol *protocol, int shard_index, int shard_count,
                      double seconds, int pretty);

/* One JSON object for an attack tally (schema: README, "Attacks"); caller frees. */
char *hfc_report_attack_json(const hfc_attack_tally *t, const hfc_attack_spec *spec,
                             const hfc_model *m, const hfc_dataset *ds,
                             const hfc_protocol *protocol, int shard_index, int shard_count,
                             double seconds, int pretty);

/* One JSON object for a model's margins (schema: README, "Margins"). */
/* {"experiment":"heatmap","eps":..,"seed":..,"images":N,"clean_error":..,
 * "error":[32 rows of 32],...the run's fields}. */
char *hfc_report_heatmap_json(const hfc_heatmap_tally *t, const hfc_model *m,
                              const hfc_dataset *ds, double seconds, int pretty);
char *hfc_report_margin_json(const float *margins, const hfc_margin_spec *spec,
                             const hfc_model *m, const hfc_dataset *ds,
                             const hfc_protocol *protocol, double seconds, int pretty);

/* hfc-eval merge: read the JSON reports in paths (shards of one run, in any
 * order), check that the shards of each model, radius and settings tile the
 * set exactly, and return in *text (caller frees) what one run over the
 * whole set prints, `seconds` being the shards' sum. HFC_ERR_DATA names the
 * file for overlaps, gaps, different settings or a malformed report. */
hfc_status hfc_merge(const char *const *paths, int n_paths, int pretty, char **text,
                     hfc_error *err);

/* Draw the paper's pictures into dir (made if it does not exist; files
 * named in src/report_png.c and README): for each model and radius a
 * Figure-1 grid of `images` (test-set indices; n_images 0: the first image
 * of each class) with the model's predictions, per radius the spectrum of
 * the first of those images with the mask, per model its first conv's
 * kernels, and, with two or more radii, accuracy against radius from tallies
 * (as hfc_evaluate filled them). */
hfc_status hfc_pictures(const char *dir, hfc_engine *const *engines,
                        const hfc_model *const *models, int n_models, const hfc_mask *masks,
                        int n_masks, const hfc_dataset *ds, const size_t *images, int n_images,
                        const hfc_tally *tallies, hfc_error *err);

/* dir/margin.png: every model's median margin per subspace (discs on a
 * line, one colour each) over every image's margin (dots), low to high
 * frequency. margins: (n_models, subspaces, n) as hfc_margin fills them. */
hfc_status hfc_margin_picture(const char *dir, const hfc_model *const *models, int n_models,
                              const hfc_margin_spec *spec, const float *margins, size_t n,
                              hfc_error *err);
/* DIR/MODEL-heatmap.png per model: the error per frequency cell on a fixed
 * 0..1 colour scale with its legend. */
hfc_status hfc_heatmap_picture(const char *dir, const hfc_model *const *models, int n_models,
                               const hfc_heatmap_tally *tallies, hfc_error *err);

/* ------------------------------------------------------------------- cli */

#define HFC_MAX_RADII 64
#define HFC_MAX_MODELS 32
#define HFC_MAX_PNG_IMAGES 32

typedef enum {
    HFC_CMD_EVALUATE, /* hfc-eval [options] MODEL... */
    HFC_CMD_COMPARE,  /* hfc-eval compare: the same, a table by default */
    HFC_CMD_MERGE,    /* hfc-eval merge FILE...: shards back into one report */
    HFC_CMD_ATTACK,   /* hfc-eval attack: FGSM / PGD accuracy */
    HFC_CMD_MARGIN,   /* hfc-eval margin: DeepFool margins along DCT subspaces */
    HFC_CMD_HEATMAP,  /* hfc-eval heatmap: Fourier heat map (Yin et al.) */
    HFC_CMD_ID,       /* hfc-eval id: TwoNN intrinsic dimension per layer */
} hfc_command;

/* What the command line asks for (src/cli_args.c). Strings point into argv. */
typedef struct {
    hfc_command command;
    hfc_mask masks[HFC_MAX_RADII]; /* one per --radius entry, all of --mask's kind */
    int n_masks;
    hfc_mask_kind mask_kind; /* --mask (default disc) */
    const char *data;      /* NULL: $HFC_DATA, then data/cifar-10-batches-bin */
    size_t limit;          /* 0: every image */
    size_t batch;
    int threads;
    hfc_conv_choice conv;  /* from $HFC_CONV: auto (default), direct or gemm */
    const char *output;    /* NULL: stdout */
    int pretty;
    int table;
    const char *png_dir;   /* NULL: no pictures */
    size_t png_images[HFC_MAX_PNG_IMAGES]; /* test-set indices for the grids */
    int n_png_images;      /* 0: the first image of each class */
    int progress;          /* -1: when stderr is a terminal; 0 never; 1 always */
    int shard_index, shard_count; /* --shard K/N; shard_count 0: the whole set */
    hfc_protocol protocol; /* --bn-stats/--bn-batch, --rescale, --smooth */
    int bn_batch_size;     /* --bn-batch (default 100); used with --bn-stats batch */
    int radius_given;      /* --radius was on the command line */
    hfc_attack_spec attack; /* attack: --method, --steps, --step-size, --random-start, --seed */
    double eps[HFC_MAX_EPS]; /* attack: --eps LIST */
    hfc_heatmap_spec heatmap; /* heatmap: --eps (one value >= 0), --seed */
    hfc_id_spec id;        /* id: --version, --radius/--mask, --resamples, --seed */
    hfc_margin_spec margin; /* margin: --block, --stride, --max-iter, --overshoot */
    int n_eps;
    hfc_set set;           /* --set */
    hfc_dataset_kind dataset; /* --dataset */
    const char *models[HFC_MAX_MODELS]; /* merge: the report files */
    int n_models;
} hfc_options;

typedef enum { HFC_CLI_RUN, HFC_CLI_HELP, HFC_CLI_VERSION } hfc_cli_action;

extern const char *const hfc_usage[]; /* --help's text, in parts; NULL ends it */

/* Defaults: radii 4,8,12,16, batch 256, one thread per online CPU. */
void hfc_options_default(hfc_options *o);
/* Parse argv[1..argc-1] into o (start from hfc_options_default). Prints
 * nothing: *action says whether to run or to show help or the version. */
hfc_status hfc_parse_args(int argc, char *const *argv, hfc_options *o, hfc_cli_action *action,
                          hfc_error *err);

/* ------------------------------------------------------------------ util */

/* What this CPU can do (src/core/cpu.c): AVX-512F, the SHA extensions. */
int hfc_cpu_avx512f(void);
int hfc_cpu_sha(void);

/* SHA-256 of data as 64 hex digits: with the CPU's SHA instructions where
 * it has them (hfc_sha256_uses_cpu), else portable C; tests compare the two. */
void hfc_sha256_hex(const uint8_t *data, size_t len, char out[65]);
void hfc_sha256_hex_portable(const uint8_t *data, size_t len, char out[65]);
int hfc_sha256_uses_cpu(void);
/* In one pass: the SHA-256 of data[0, prefix) as 32 bytes and of the whole
 * data[0, len) as hex (a version-3 model's checksum and its model_sha256). */
void hfc_sha256_prefix_and_whole(const uint8_t *data, size_t len, size_t prefix,
                                 uint8_t prefix_digest[32], char whole_hex[65]);
/* Strict JSON (src/json_strict.c; RFC 8259, which cJSON does not hold to):
 * hfc_json_strict scans one value from text (leading whitespace allowed)
 * and sets *end past it; hfc_json_strict_whole also refuses anything but
 * whitespace after it. Both return 0, or -1 with why = "byte N: reason".
 * hfc_json_duplicate: the first key given twice in some object of the
 * tree, or NULL. */
int hfc_json_strict(const char *text, size_t len, size_t *end, char *why, size_t cap);
int hfc_json_strict_whole(const char *text, size_t len, char *why, size_t cap);
struct cJSON;
const char *hfc_json_duplicate(const struct cJSON *v);
/* The index of the largest of v[0..n) (the first, at a tie): a prediction. */
int hfc_argmax(const float *v, int n);
/* Memory for a big buffer (free with free()): 64-byte aligned, and from
 * 2 MiB up, 2 MiB aligned and advised to use huge pages where Linux allows
 * it: one page fault per 2 MiB instead of per 4 KiB (measured here: a 4 KiB
 * fault costs ~12 us in this VM, 18 ms for the split's 6 MB of output).
 * NULL when out of memory. */
void *hfc_alloc_big(size_t bytes);
/* Write a finished report to path (src/output.c): a regular file (or a new
 * one) is replaced atomically, symbolic links are followed and kept, the
 * target's permission bits kept; a device, a FIFO or "-", /dev/stdout,
 * /dev/stderr, /dev/fd/N is written directly. */
hfc_status hfc_write_output(const char *path, const char *text, hfc_error *err);
/* Read a whole file into *buf (caller frees). Only a regular file: a FIFO,
 * device or directory is refused without blocking (opened O_NONBLOCK, then
 * fstat); a file whose stat size is 0 (/proc) is read to its end. */
hfc_status hfc_read_file(const char *path, uint8_t **buf, size_t *len, hfc_error *err);
/* The same, its first min(size, max) bytes (HFC_ERR_IO if fewer come). */
hfc_status hfc_read_file_head(const char *path, size_t max, uint8_t **buf, size_t *len,
                              hfc_error *err);

#endif
