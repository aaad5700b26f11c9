/* hfc/engine.h - runs a model on images: forward, input gradients, captured values (src/engine). */
#ifndef HFC_ENGINE_H
#define HFC_ENGINE_H

#include "hfc/model.h"

/* ---------------------------------------------------------------- engine */

/* Images run together through each layer (one GEMM per conv for the group):
 * HFC_ENGINE_GROUP, half of it when no conv needs im2col, 2 to 8 times it
 * for models with small maps (src/engine/, plan_group; the
 * engine's is hfc_engine_group). Groups are cut at multiples of it from the
 * first image a forward call gets, and threads take whole groups, so a
 * result never depends on the thread count; callers that stream batches
 * whose sizes are multiples of it (hfc_engines_batch) get results that do
 * not depend on the batch size either. */
#define HFC_ENGINE_GROUP 8

/* Run-time state for one model: fused plan, per-thread buffers. */
typedef struct hfc_engine hfc_engine;

/* Which convolution algorithms the engine may pick (src/engine/,
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
    int tap;               /* > 0: node `tap`'s value is kept in a buffer of its own
                              for hfc_engine_forward_tap (the rest planned as usual) */
} hfc_engine_options;

hfc_status hfc_engine_new(hfc_engine **out, const hfc_model *m, const hfc_engine_options *opt,
                          hfc_error *err);
void hfc_engine_free(hfc_engine *e);
/* x: (n, c, h, w) raw pixel values (0..255 scale, preprocessing is applied
 * here); logits: (n, n_classes). */
void hfc_engine_forward(hfc_engine *e, const float *x, size_t n, float *logits);
/* The seed of backward pass `pass` of hfc_engine_input_grad: fill dlogits
 * (count, n_classes) with d loss / d logits for images [first, first +
 * count) of the call, given their logits. Called from worker threads, for
 * disjoint ranges. */
typedef void (*hfc_loss_grad)(void *ctx, int pass, size_t first, size_t count,
                              const float *logits, float *dlogits);
/* One forward and `passes` backward passes on n images x (raw pixels, as
 * hfc_engine_forward): logits (n, n_classes) and dx (passes, n, c, h, w),
 * pass p's d loss_p / d x in raw pixel units, through the model's
 * preprocessing. The passes reuse the forward's values (a Jacobian of the
 * logits is n_classes passes of one-hot seeds for the price of one
 * forward). PyTorch's conventions: ReLU'(0) = 0, max-pool routes to the
 * first maximum. HFC_ERR_USAGE when e was not made with gradients. */
hfc_status hfc_engine_input_grad(hfc_engine *e, const float *x, size_t n, int passes,
                                 hfc_loss_grad loss, void *ctx, float *logits, float *dx,
                                 hfc_error *err);
/* Forward on n images and copy node `node`'s output, (n, c*h*w) in
 * PyTorch's order, to out (node 0 is the input after preprocessing).
 * HFC_ERR_USAGE unless e was made with keep_values. */
hfc_status hfc_engine_capture(hfc_engine *e, const float *x, size_t n, int node, float *out,
                              hfc_error *err);
/* Forward on n images: logits (n, n_classes) and the value of the node the
 * engine was planned to tap, (n, h, w, c) channels last (each pixel's c
 * values together). HFC_ERR_USAGE unless made with a tap. */
hfc_status hfc_engine_forward_tap(hfc_engine *e, const float *x, size_t n, float *logits,
                                  float *tap, hfc_error *err);
/* The batch an experiment should stream: at most `images` (at least 1),
 * rounded up to whole groups of every engine (for batch statistics, whole
 * batches of them), so that results do not depend on the batch asked for. */
size_t hfc_engines_batch(hfc_engine *const *engines, int n_engines, size_t batch, size_t images);
/* Images a forward call's batches should be a multiple of for results not
 * to depend on the batch size: the engine's group (bn_batch in that mode). */
size_t hfc_engine_group(const hfc_engine *e);
/* Multiply-adds of one image's forward pass (conv and linear layers). */
double hfc_engine_flops(const hfc_engine *e);

#endif
