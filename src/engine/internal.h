/* engine_internal.h - what src/engine_run.c (planning, forward) and
 * src/engine_grad.c (input gradients) share. Internal. */
#ifndef HFC_ENGINE_INTERNAL_H
#define HFC_ENGINE_INTERNAL_H

#include "kernels/ops.h"
#include "hfc/engine.h"

/* How a conv runs (engine_run.c, plan_conv_paths; docs/speed.md has the table). */
typedef enum {
    CONV_GEMM,         /* im2col + SGEMM, any CPU */
    CONV_DIRECT,       /* AVX-512 direct kernel */
    CONV_WINOGRAD,     /* AVX-512 Winograd F(4x4, 3x3) */
    CONV_GROUPED,      /* grouped or dilated, portable loops */
    CONV_SMALL_GROUPS, /* groups of g in and g out channels, g | 16, AVX-512 */
    CONV_IM2COL        /* im2col + the AVX-512 product (maps of few pixels) */
} conv_path;

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
    int chunk;             /* CONV_WINOGRAD: images per product */
    int residual;          /* conv: slot of an Add's other input done by the conv, or -1 */
    const float *in_scale, *in_shift;  /* conv: a BatchNorm done on its input, or NULL */
    int in_relu;           /* ... followed by a ReLU */
    const float *wt;       /* CONV_DIRECT, CONV_IM2COL: w transposed; CONV_WINOGRAD: transformed;
                              CONV_SMALL_GROUPS, depthwise CONV_GROUPED: (kh, kw, g, c) */
    conv_path back;        /* gradients: how d/dx runs: CONV_GEMM (SGEMM + col2im),
                              CONV_IM2COL (the AVX-512 product + col2im), or as the
                              forward conv of dy with the flipped kernel (stride 1,
                              'same' padding): CONV_WINOGRAD or CONV_DIRECT with... */
    const float *wt_back;  /* ... these weights */
} step;

typedef struct {
    float *slots;  /* (n_slots, slot_floats): each slot holds a group */
    float *col;    /* im2col scratch for a group */
    float *grads;  /* gradients: (n_slots, slot_floats), when planned for them */
    unsigned char *written; /* gradients: per slot, whether a backward pass has written
                               its gradient yet */
} workspace;

struct hfc_engine {
    const hfc_model *model;
    step *steps;
    int n_steps;
    int n_slots;
    size_t slot_floats;   /* a group's largest activation */
    size_t col_floats;    /* scratch: im2col for a group, or an AVX-512 conv's */
    int group;            /* images per forward_group: HFC_ENGINE_GROUP, or 4 when no
                             conv runs im2col + SGEMM (the activations stay in L2);
                             bn_batch when BatchNorm uses batch statistics */
    int bn_batch;         /* hfc_engine_options.bn_batch */
    int gradients;        /* planned for hfc_engine_input_grad: no slot shared, every
                             step's output kept for the backward pass */
    int keep_values;      /* planned for hfc_engine_capture: that, and nothing fused */
    int output_slot;
    float *folded;        /* weights made at planning, one allocation */
    float *transposed;    /* the AVX-512 convs' wt, one allocation */
    float *back_weights;  /* gradients: the backward convs' wt_back, one allocation */
    int threads;
    workspace *ws;        /* (threads) */
    double macs;          /* multiply-adds per image */
};

/* One step on a group of n images: inputs x[0..n_in), output y. */
typedef struct {
    const hfc_engine *e;
    const workspace *ws;
    const step *s;
    const float *pixels;  /* the group's raw pixels (the input step) */
    int n;
    hfc_tensor x[HFC_MAX_INPUTS];
    hfc_tensor y;
} step_run;

/* One step backwards on a group of n images: from dy, the gradient of its
 * output (y, the value forward computed), add the gradients of its inputs
 * into dx[k] (+=: a value may have several readers). The input step writes
 * the raw pixels' gradient to dpixels instead. */
typedef struct {
    const hfc_engine *e;
    const workspace *ws;
    const step *s;
    int n;
    hfc_tensor x[HFC_MAX_INPUTS], y;
    hfc_tensor dx[HFC_MAX_INPUTS], dy;
    float *dpixels;       /* (n, c, h, w) */
    int assign;           /* conv: dx[0] holds nothing yet, write it instead of adding */
} step_back;

/* What a step does besides its layer, undone first (src/engine_grad.c): a
 * fused ReLU (dy = 0 where y = 0: ReLU'(0) = 0, as PyTorch's; a ReLU6's
 * where y is 0 or 6) and a fused
 * residual Add (dres += dy, the gradient of the Add's other input). */
void backward_fused(const step_back *r, const hfc_tensor *dres);
/* backward_NAME for every row of include/hfc_layers.def (src/engine_grad.c). */
#define HFC_LAYER(E, name, inputs, cost, since) void backward_##name(const step_back *r);
#define HFC_UNARY(E, name, since)
#include "hfc_layers.def"
#undef HFC_LAYER
#undef HFC_UNARY
void backward_unary(const step_back *r);

static inline hfc_tensor slot_tensor(const hfc_engine *e, float *base, int slot, hfc_shape s, int n)
{
    return (hfc_tensor){n, s.c, s.h, s.w, base + (size_t)slot * e->slot_floats};
}

#endif
