/* hfc/model.h - a model file read and checked: the layer graph and its weights (src/model). */
#ifndef HFC_MODEL_H
#define HFC_MODEL_H

#include "hfc/core.h"

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

#endif
