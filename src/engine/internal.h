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

/* What a step does besides its layer, undone first (src/engine_grad.c): a
 * fused ReLU (dy = 0 where y = 0: ReLU'(0) = 0, as PyTorch's; a ReLU6's
 * where y is 0 or 6) and a fused
 * residual Add (dres += dy, the gradient of the Add's other input). */
void backward_fused(const step_back *r, const hfc_tensor *dres);
static inline hfc_tensor slot_tensor(const hfc_engine *e, float *base, int slot, hfc_shape s, int n)
{
    return (hfc_tensor){n, s.c, s.h, s.w, base + (size_t)slot * e->slot_floats};
}

#endif
