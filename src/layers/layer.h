/* layers/layer.h - what a layer is made of, and the table of every layer.
 *
 * A layer is one row of include/hfc_layers.def and one file of src/layers/
 * (a family of rows: conv.c, pool.c, ...), which holds everything the row
 * names: parse_NAME (attributes, tensors, output shape; src/model/load.c
 * calls it), forward_NAME (one group of images; src/engine runs it) and
 * backward_NAME (the input gradient). An activation row (HFC_UNARY) names
 * its function hfc_act_NAME and its derivative hfc_dact_NAME, both in
 * activation.c. hfc_layers[] (table.c) is expanded from the same rows, so a
 * row whose function is missing does not build. Internal to src/. */
#ifndef HFC_LAYERS_LAYER_H
#define HFC_LAYERS_LAYER_H

#include <cjson/cJSON.h>

#include "kernels/ops.h"
#include "layers/node.h"

/* ------------------------------------------------------------- parsing */

#define MAX_CHANNELS 65536
#define MAX_SIDE 4096
#define MAX_IMAGE_ELEMS ((size_t)1 << 24) /* floats of one activation */

typedef struct {
    const char *name;
    int ndim;
    size_t dims[4];
    size_t count;
    size_t arena_offset;  /* floats into hfc_model.arena */
    size_t offset, nbytes; /* bytes in the data section */
    int half;             /* stored as f16 (else f32) */
} tensor_info;

/* The state of reading one model file (src/model/load.c): what the layers'
 * parsers and their helpers need to find tensors and report errors. */
typedef struct {
    const char *path;
    hfc_error *err;
    unsigned version;     /* the file's format version */
    const uint8_t *data;  /* the data section */
    size_t data_len;
    tensor_info *tensors;
    int n_tensors;
} loader;

#define FAIL(L, ...) hfc_fail((L)->err, HFC_ERR_MODEL, (L)->path, __VA_ARGS__)

/* A layer's parser reads its node's attributes and tensors and sets nd->out
 * from its inputs' shapes (in[k], already checked to exist). */
typedef struct {
    loader *L;
    hfc_model *m;
    hfc_node *nd;
    const cJSON *j;     /* the node's JSON object */
    const char *where;  /* "node NAME", for messages */
    hfc_shape in[HFC_MAX_INPUTS];
} layer_parse;

typedef hfc_status (*parse_fn)(layer_parse *p);

/* The parsers' helpers (src/layers/parse.c), each failing with the file's
 * path and `where` ("node NAME"): an integer in [lo, hi]; a pair [a, b] of
 * them (absent: both dflt); the tensor named by node[key], which must have
 * exactly `dims` (0: any) - absent and optional gives NULL. */
hfc_status get_int(loader *L, const cJSON *obj, const char *key, const char *where, long long lo,
                   long long hi, long long *out);
hfc_status get_pair(loader *L, const cJSON *obj, const char *key, const char *where, int lo,
                    int hi, int dflt, int *a, int *b);
hfc_status get_tensor(loader *L, const hfc_model *m, const cJSON *node, const char *key,
                      const char *where, int optional, int ndim, const size_t *dims,
                      const float **out, const tensor_info **info);
/* The node's "eps", a positive finite number, into p->nd->eps (batchnorm,
 * layernorm). */
hfc_status get_eps(layer_parse *p);

/* ------------------------------------------------------------- running */

/* How a conv runs (src/engine/plan.c, plan_conv_paths; docs/speed.md has the table). */
typedef enum {
    CONV_GEMM,         /* im2col + SGEMM, any CPU */
    CONV_DIRECT,       /* the tiled direct kernel (AVX-512 or AVX2) */
    CONV_WINOGRAD,     /* tiled Winograd F(4x4, 3x3) */
    CONV_GROUPED,      /* grouped or dilated, portable loops */
    CONV_SMALL_GROUPS, /* groups of g in and g out channels, g dividing the lanes (16, 8) */
    CONV_IM2COL,       /* im2col + the tiled product (maps of few pixels) */
    CONV_WINOGRAD_S2   /* 3x3 stride 2: phases, F(4, 2) on the odd ones, tiled */
} conv_path;

/* The plan of one node, made by the engine (src/engine/plan.c): its step. */
typedef struct {
    const hfc_node *node;  /* attributes and shapes */
    hfc_op op;
    int relu;              /* 0, HFC_FUSED_RELU or (convs) HFC_FUSED_RELU6: done as it writes */
    int n_in;
    int in[HFC_MAX_INPUTS];/* slots read */
    int out;               /* slot written */
    const float *w, *b;    /* conv/linear weights (folded), bn scale/shift; NULL w: a conv
                              whose weights live only in wt (forward-only engines) */
    const hfc_node *fold_bn; /* ... and the BatchNorm folded into them */
    const hfc_node *merged_1x1_bn, *merged_id_bn; /* conv: RepVGG branches merged into
                              it (plan_fusion): the BatchNorm after a 1x1 conv of the
                              same input, and one of the input itself, or NULL */
    conv_path path;
    int chunk;             /* CONV_WINOGRAD(_S2): images per product */
    int residual;          /* conv: slot of an Add's other input done by the conv, or -1 */
    const float *in_scale, *in_shift;  /* conv: a BatchNorm done on its input, or NULL */
    int in_relu;           /* ... followed by a ReLU */
    const float *wt;       /* CONV_DIRECT, CONV_IM2COL, a large linear: w transposed, in
                              panels; CONV_WINOGRAD: transformed; CONV_SMALL_GROUPS,
                              depthwise CONV_GROUPED: (kh, kw, g, c) */
    conv_path back;        /* gradients: how d/dx runs: CONV_GEMM (SGEMM + col2im),
                              CONV_IM2COL (the tiled product + col2im), or as the
                              forward conv of dy with the flipped kernel (stride 1,
                              'same' padding): CONV_WINOGRAD or CONV_DIRECT, or
                              CONV_WINOGRAD_S2 (3x3 stride 2, its transposed form) with... */
    const float *wt_back;  /* ... these weights */
} step;

/* One step on a group of n images: inputs x[0..n_in), output y. The engine
 * fills it (src/engine/run.c): a layer sees nothing of the engine but this. */
typedef struct {
    const step *s;
    const hfc_model *model;
    int bn_batch;          /* BatchNorm by the group's own statistics */
    int n;
    const float *pixels;   /* the group's raw pixels (the input step) */
    float *scratch;        /* the thread's scratch: im2col, a conv's buffers */
    const float *residual; /* conv: an Add's other input, added as it writes, or NULL */
    hfc_tensor x[HFC_MAX_INPUTS];
    hfc_tensor y;
} step_run;

/* One step backwards on a group of n images: from dy, the gradient of its
 * output (y, the value forward computed), add the gradients of its inputs
 * into dx[k] (+=: a value may have several readers). The input step writes
 * the raw pixels' gradient to dpixels instead. */
typedef struct {
    const step *s;
    const hfc_model *model;
    int bn_batch;
    int n;
    float *scratch;
    hfc_tensor x[HFC_MAX_INPUTS], y;
    hfc_tensor dx[HFC_MAX_INPUTS], dy;
    float *dpixels;       /* (n, c, h, w) */
    int assign;           /* conv: dx[0] holds nothing yet, write it instead of adding */
} step_back;

/* --------------------------------------------------------------- table */

enum { COST_NONE, COST_CONV, COST_LINEAR, COST_PROTOTYPE };

typedef struct {
    const char *name;    /* "op" in model files */
    int inputs;          /* -1: 1 to HFC_MAX_INPUTS */
    int since;           /* format version */
    int cost;            /* COST_*: what its multiply-adds are counted as */
    hfc_status (*parse)(layer_parse *p);
    void (*forward)(const step_run *r);
    void (*backward)(const step_back *r);
} hfc_layer;

extern const hfc_layer hfc_layers[HFC_OP_COUNT];

#define HFC_LAYER(E, name, inputs, cost, since)                                                   \
    hfc_status parse_##name(layer_parse *p);                                                      \
    void forward_##name(const step_run *r);                                                       \
    void backward_##name(const step_back *r);
#define HFC_UNARY(E, name, since) float hfc_act_##name(float x);
#include "hfc_layers.def"
#undef HFC_LAYER
#undef HFC_UNARY
hfc_status parse_unary(layer_parse *p);
void forward_unary(const step_run *r);
void backward_unary(const step_back *r);

static inline size_t pixels_of(const hfc_tensor *t) { return (size_t)t->n * t->h * t->w; }

#endif
