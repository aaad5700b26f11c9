/* hfc/model.h - a model file read and checked: the layer graph and its weights (src/model). */
#ifndef HFC_MODEL_H
#define HFC_MODEL_H

#include "hfc/core.h"

/* ----------------------------------------------------------------- model */

typedef struct {
    int c, h, w;  /* one image's shape; the batch is outside */
} hfc_shape;

/* A node of the layer graph: its layer and attributes are the layers'
 * business (src/layers/node.h); outside them, a model's nodes are seen
 * through the functions below. */
typedef struct hfc_node hfc_node;

typedef struct {
    int channels, height, width;  /* the input the model expects */
    float scale;                  /* x = pixel * scale */
    float mean[4], std[4];        /* then (x - mean[c]) / std[c] */
    int n_classes;
    char **classes;               /* (n_classes) names */
    int n_nodes;
    hfc_node *nodes;              /* nodes[0] is the input, in run order (opaque) */
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
/* A model's graph, for those outside the layers (src/model/graph.c): node
 * i's name and output shape (0 <= i < n_nodes; node 0 is the input). */
const char *hfc_model_node_name(const hfc_model *m, int i);
hfc_shape hfc_model_node_shape(const hfc_model *m, int i);
/* The first conv's kernels, (cout, cin, kh, kw) as in the file (cin: per
 * group), and its node's name: NULL weights when the model has no conv. */
typedef struct {
    const char *name;
    const float *weights;
    int cout, cin, kh, kw;
} hfc_kernels;
hfc_kernels hfc_model_first_conv(const hfc_model *m);
/* The nodes whose outputs `hfc-eval id` measures, in run order: the input
 * (node 0, after preprocessing), every node that is all that is live at its
 * point of the graph (nothing computed before it is read after it) and
 * either ends a block (add, concat), is read twice (a residual block's
 * input) or feeds a conv, linear or pooling layer (a stage's output), and
 * the logits. Returns how many (at most cap). */
int hfc_block_outputs(const hfc_model *m, int *nodes, int cap);

/* A prototype network's prototype layer (ProtoPNet, "this looks like
 * that"; src/layers/prototype.c): for each of `count` prototypes p_j of
 * `depth` values, the squared L2 distance of every position's feature
 * vector z to it, relu(|z|^2 + (-2 z.p_j + |p_j|^2)) (the three products
 * of ProtoPNet's code, in its order), the minimum over the map, and the
 * similarity of that minimum d: log((d + 1) / (d + epsilon)), -d
 * ("linear"), or d itself ("distance"). Prototype j's class is the
 * class its column of the last layer (the linear layer reading the
 * similarities) weighs most. */
enum { HFC_SIMILARITY_LOG, HFC_SIMILARITY_LINEAR, HFC_SIMILARITY_DISTANCE };
#define HFC_PROTOTYPES_MAX 4096
typedef struct {
    int node;                /* the prototype layer's */
    int feature_node;        /* the node it reads: the feature map z */
    int count, depth;        /* m prototypes of D values */
    int height, width;       /* the feature map */
    int similarity;          /* HFC_SIMILARITY_* */
    float epsilon;
    const float *vectors;    /* (count, depth) */
    int n_classes;           /* of the last layer; 0 when none reads the layer */
    const float *last_weight;/* (n_classes, count), or NULL */
    int class_of[HFC_PROTOTYPES_MAX];
} hfc_prototypes;
/* HFC_ERR_MODEL when m has no prototype layer (or, for now, more than one). */
hfc_status hfc_model_prototypes(const hfc_model *m, hfc_prototypes *out, hfc_error *err);
/* The floats of scratch hfc_prototype_distances needs. */
size_t hfc_prototype_scratch(int positions, int count);
/* Distances of one image's map z (positions, depth) to every prototype:
 * dist (positions, count), as the layer computes them. */
void hfc_prototype_distances(const hfc_prototypes *p, const float *z, int positions, float *scratch,
                             float *dist);
/* The first position of the smallest of dist's column j (the position the
 * layer's minimum takes, as PyTorch's max-pool of the negated map does). */
int hfc_prototype_nearest(const float *dist, int positions, int count, int j);
/* The similarity of a distance d (HFC_SIMILARITY_*). */
float hfc_prototype_similarity(int similarity, float epsilon, float d);

/* The paper's kernel smoothing (Eq. 3, generateSmoothKernel): every kh x kw
 * kernel of the first conv layer, per (output, input) channel pair, becomes
 * its 2-D convolution with [[rho, rho, rho], [rho, 1, rho], [rho, rho, rho]],
 * mode 'same', boundary symmetric (edge values mirrored, as scipy's
 * convolve2d(..., boundary='symm')), not renormalised. In place, before any
 * BatchNorm folding (make engines afterwards). HFC_ERR_USAGE when the first
 * layer (the node reading the input) is not a conv. */
hfc_status hfc_model_smooth_first_conv(hfc_model *m, double rho, hfc_error *err);

#endif
