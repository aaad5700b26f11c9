/* engine/internal.h - the engine's state: what planning (src/engine/plan.c)
 * makes and running (run.c, backward.c) reads. Internal. The plan of one
 * node, `step`, and what a layer's functions receive are in
 * src/layers/layer.h. */
#ifndef HFC_ENGINE_INTERNAL_H
#define HFC_ENGINE_INTERNAL_H

#include "hfc/engine.h"
#include "kernels/ops.h"
#include "layers/layer.h"

typedef struct {
    float *slots;  /* slot k at slot_offset[k]: each slot holds a group's value */
    float *col;    /* im2col scratch for a group */
    float *grads;  /* gradients: (n_grad_buffers, slot_floats), when planned for them */
    unsigned char *written; /* gradients: per slot, whether a backward pass has written
                               its gradient yet */
    float *dtmp;   /* gradients: a conv's d/dx before a deferred BatchNorm's (slot_floats) */
} workspace;

struct hfc_engine {
    const hfc_model *model;
    step *steps;
    int n_steps;
    int n_slots;
    int *grad_buffer;     /* gradient engines: slot -> its gradient's buffer in ws->grads,
                             reused once the value's producer has run backwards
                             (plan_gradient_buffers) */
    int n_grad_buffers;
    size_t slot_floats;   /* a group's largest activation */
    size_t *slot_offset;  /* (n_slots + 1): where each slot starts in ws->slots, sized for
                             the largest value it holds (in gradient engines, where every
                             value keeps its slot, VGG-16's values take 5x less than
                             n_slots largest ones); the last: the floats of all */
    size_t col_floats;    /* scratch: im2col for a group, or a tiled conv's */
    int group;            /* images per forward_group: HFC_ENGINE_GROUP, or 4 when no
                             conv runs im2col + SGEMM (the activations stay in L2);
                             bn_batch when BatchNorm uses batch statistics */
    int bn_batch;         /* hfc_engine_options.bn_batch */
    int gradients;        /* planned for hfc_engine_input_grad: no slot shared, every
                             step's output kept for the backward pass */
    int keep_values;      /* planned for hfc_engine_capture: that, and nothing fused */
    int output_slot;
    int tap_node, tap_slot; /* hfc_engine_options.tap and the slot it keeps (tap_node 0: none) */
    float *folded;        /* weights made at planning, one allocation */
    float *transposed;    /* the tiled convs' wt, one allocation */
    float *back_weights;  /* gradients: the backward convs' wt_back, one allocation */
    int threads;
    workspace *ws;        /* (threads) */
    double macs;          /* multiply-adds per image */
};

/* What a step does besides its layer, undone first (src/engine/backward.c): a
 * fused ReLU (dy = 0 where y = 0: ReLU'(0) = 0, as PyTorch's; a ReLU6's
 * where y is 0 or 6) and a fused
 * residual Add (dres += dy, the gradient of the Add's other input; = dy
 * when dres_fresh: nothing was written there yet). */
void backward_fused(const step_back *r, const hfc_tensor *dres, int dres_fresh);
/* A conv that applied a deferred BatchNorm (+ ReLU) as it read x: its d/dx
 * came as d/d(the normalised values) in dnorm; dx (+)= dnorm * scale where
 * x * scale + shift > 0 (everywhere without the ReLU). */
void backward_deferred_bn(const step *s, const hfc_tensor *x, const float *dnorm, hfc_tensor *dx,
                          int assign);
static inline hfc_tensor slot_tensor(const hfc_engine *e, float *base, int slot, hfc_shape s, int n)
{
    return (hfc_tensor){n, s.c, s.h, s.w, base + e->slot_offset[slot]};
}
/* The gradient of the value in a slot (buffers of slot_floats each). */
static inline hfc_tensor grad_tensor(const hfc_engine *e, const workspace *ws, int slot,
                                     hfc_shape s, int n)
{
    return (hfc_tensor){n, s.c, s.h, s.w,
                        ws->grads + (size_t)e->grad_buffer[slot] * e->slot_floats};
}

/* ------------------------------------------------------------ planning */

/* What planning decides about one node. */
typedef struct {
    int readers;        /* nodes that read its value (+1 for the logits) */
    int alias;          /* its value is that node's buffer (no step), or -1 */
    int fold_into;      /* BatchNorm folded into this conv, or -1 */
    int fused_relu;     /* a ReLU (HFC_FUSED_RELU) or, after a conv, a ReLU6
                           (HFC_FUSED_RELU6) after it is done by its step */
    int residual;       /* conv: the node whose value it adds as it writes, or -1 */
    int add_into;       /* Add: the conv that does it, or -1 */
    int merge_1x1;      /* conv 3x3: the BatchNorm of a 1x1 conv branch merged into
                           it (RepVGG), or -1 */
    int merge_id;       /* ... and of an identity branch, or -1 */
    int swish;          /* Mul of x and sigmoid(x), done as one SiLU step of x
                           (the Sigmoid becomes an alias of x) */
    int bn_deferred;    /* BatchNorm done by the convs that read it */
    const float *bn_scale, *bn_shift; /* ... with these */
    int last_use;       /* the last node reading its buffer */
    int slot;           /* the activation slot of its buffer */
    int step;           /* its step, or -1 */
    conv_path path;     /* conv: the algorithm */
} node_plan;

/* Convs with at least this many weights run im2col + the blocked tiled
 * product (CONV_IM2COL) where Winograd does not apply (strided convs), and
 * even where it does when the output has fewer than 16 pixels (VGG's 2x2
 * and 1x1 maps): the direct kernel streams every weight for every output
 * row (at 2x2, 4 multiply-adds per weight read), the product keeps a block
 * of weights in L1 for 256 rows of the group. 1x1 stride-1 convs are that
 * product already, on the input as it is. Measured, 1,000 images: VGG-11
 * 4.1 s -> 2.9 s (from im2col + OpenBLAS), ResNet-18 9.6 s -> 8.4 s (from
 * the direct kernel on its strided convs). */
#define IM2COL_WEIGHTS 65536.0
/* plan_group: 16, 32 or 64 images per group for models with such small maps
 * whose widest value per image is at most this many floats (512 KB). */
#define SMALL_MAP_GROUP_FLOATS 131072
#define LARGE_GROUP_FLOATS ((size_t)2 << 20) /* 8 MB a slot: plan_group */
#define FEW_TILES_SLOT_FLOATS ((size_t)3 << 20) /* 12 MB: plan_group */
/* A Winograd conv's 36 products take the tiles of this many images at once
 * that they have about this many rows (as the group allows): every weight
 * read then serves that many rows (measured with the weights in panels,
 * 1,000 images: ResNet-18 7.8 s at 16 rows and 16-image groups, 7.4 s at
 * 64 rows, 7.0 s at 64 rows and 32-image groups; VGG-16 4.9 -> 4.2 s; at
 * 128 rows no better). */
#define WINOGRAD_ROWS 64
/* ... and a Winograd conv with many weights whose products would get fewer
 * rows than this runs im2col + the product instead (plan_group). */
#define WINOGRAD_MIN_ROWS 16

/* Output sides on which a 3x3 stride-1 'same' conv runs Winograd F(4x4,
 * 3x3): multiples of 4, or any of 6 or more, whose last tiles reach past
 * the map (kernels/ops.h): at most 1.78x the multiply-adds of the pixels
 * inside (9 -> 12), still 2.25x fewer than the direct sum. ResNet-50 at
 * 224 x 224 has a quarter of its multiply-adds in 3x3 convs on 14 x 14
 * and 7 x 7 maps, which ran direct or im2col before. */
static inline int winograd_fits(int h, int w)
{
    return (h % 4 == 0 && w % 4 == 0) || (h >= 6 && w >= 6);
}

/* A conv that runs (forward) CONV_WINOGRAD_S2: 3x3, stride 2, padding 1,
 * an output of at least 4x4 and of a multiple of 16 channels. */
static inline int winograd_s2(const hfc_node *nd, int cin)
{
    return nd->kh == 3 && nd->kw == 3 && nd->sh == 2 && nd->sw == 2 && nd->ph == 1 &&
           nd->pw == 1 && nd->dh == 1 && nd->dw == 1 && nd->groups == 1 && cin >= 16 &&
           nd->out.c % 16 == 0 && nd->out.h >= 4 && nd->out.w >= 4;
}

/* The planning passes (src/engine/plan.c) and what they share with the
 * step and weight planning (src/engine/steps.c). */
int root_of(const node_plan *P, int i);
hfc_status plan_steps(hfc_engine *e, node_plan *P, hfc_error *err);
hfc_status plan_conv_weights(hfc_engine *e, hfc_error *err);
hfc_status plan_backward_convs(hfc_engine *e, hfc_conv_choice choice, hfc_error *err);
hfc_status plan_gradient_buffers(hfc_engine *e, hfc_error *err);

/* ------------------------------------------------------------- running */

/* After a forward pass on a group (src/engine/run.c): the loss's gradient
 * at the logits, then every step backwards (src/engine/backward.c). */
void backward_group(const hfc_engine *e, const workspace *ws, int n, float *dpixels);

#endif
