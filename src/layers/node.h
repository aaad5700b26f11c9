/* layers/node.h - a node of the layer graph as the layers see it: which
 * layer (hfc_op, one per row of include/hfc_layers.def) and its attributes.
 * Private to src/: the model loader fills it (src/model/load.c, with each
 * layer's parser), the engine plans and runs it; everything else sees a
 * model's nodes through include/hfc/model.h's functions. */
#ifndef HFC_LAYERS_NODE_H
#define HFC_LAYERS_NODE_H

#include "hfc/model.h"

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

#define HFC_MAX_INPUTS 64 /* of one node (concat: DenseNet-201 joins up to 49) */

/* The name of an op in model files ("conv2d"), NULL past the table. */
const char *hfc_op_name(hfc_op op);


struct hfc_node {
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
    int similarity;       /* prototype: HFC_SIMILARITY_* (eps: log's epsilon) */
    /* weights point into hfc_model.arena (never free them) */
    const float *weight;  /* conv (cout, cin/groups, kh, kw); linear (out, in); bn gamma (c) */
    const float *bias;    /* conv/linear (cout) or NULL; bn beta (c) or NULL */
    const float *mean;    /* bn (c) */
    const float *var;     /* bn (c) */
};


#endif
