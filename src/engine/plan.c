/* engine/plan.c - plan a model once (hfc_engine_new); src/engine/run.c runs it.
 *
 * Activations are NHWC (src/kernels/ops.h); conv weights are reordered to
 * (cout, kh, kw, cin/groups) to match.
 *
 * Planning (hfc_engine_new) is a sequence of named passes over one
 * node_plan per node of the model:
 *   plan_readers     how many nodes read each value
 *   plan_conv_paths  each conv's algorithm: on a CPU with AVX2 or AVX-512F (unless
 *                    the options rule it out), a conv with groups 1, no
 *                    dilation and a multiple of 16 output channels runs
 *                    Winograd F(4x4, 3x3) when it is 3x3, stride 1, padding
 *                    1, with output sides multiples of 4 and >= 16 input
 *                    channels, else the direct kernel, except on maps of
 *                    under 16 pixels with many weights or more than one
 *                    tap (im2col, the product over the group's images and
 *                    the taps inside the image); other plain convs run
 *                    im2col + SGEMM, grouped and dilated ones a portable
 *                    direct loop (src/kernels/ops.c)
 *   plan_fusion      which nodes need no step of their own:
 *                    - a BatchNorm that is the only reader of a conv is
 *                      folded into it: W' = W * s, b' = b * s + t with
 *                      s = gamma / sqrt(var + eps), t = beta - mean * s;
 *                    - a ReLU whose producer (conv, bn, add, linear) feeds
 *                      nothing else is done by that step; a flatten of a
 *                      1x1 map is free (same memory);
 *                    - an Add (same shapes) one of whose inputs is an
 *                      tiled conv feeding nothing else, the other computed
 *                      before it, is done by the conv as it writes;
 *                    - RepVGG's training-form block, BN(conv3x3(x)) +
 *                      BN(conv1x1(x)) (+ BN(x)), is one 3x3 conv with the
 *                      branches merged into its weights and bias
 *                      (plan_branch_merge; the same sums up to rounding);
 *                    - x * sigmoid(x), the sigmoid feeding nothing else,
 *                      is one SiLU step: one pass over x instead of two
 *                      (EfficientNet 0.43 -> 0.34 s on 1,000 images); its
 *                      x / (1 + e^-x) rounds once where the two steps'
 *                      x * (1 / (1 + e^-x)) rounded twice
 *   plan_deferred_batchnorm
 *                    a BatchNorm (+ ReLU) not folded whose readers are all
 *                    tiled convs is done by each as it reads (the
 *                    pre-activation blocks). Results are bit for bit those
 *                    of the separate steps.
 *   plan_liveness    the last node that reads each buffer
 *   plan_steps       one step per remaining node, in order, with its
 *                    folded weights and an output slot; a slot is reused
 *                    once the last reader of its value has run
 *   plan_conv_weights  the group size (plan_group), the tiled convs' own
 *                    weight layouts (in panels) and scratch
 *   plan_workspaces  per-thread slots and scratch, allocated once
 * plan_steps, plan_conv_weights and plan_backward_convs are in steps.c.
 */
#include <assert.h>
#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "engine/internal.h"

/* The node whose buffer node i's value lives in. */
int root_of(const node_plan *P, int i)
{
    while (P[i].alias >= 0)
        i = P[i].alias;
    return i;
}

/* 1 when every value from node p down to its root (through aliases) has
 * exactly one reader. */
static int single_reader_chain(const node_plan *P, int p)
{
    for (;; p = P[p].alias) {
        if (P[p].readers != 1)
            return 0;
        if (P[p].alias < 0)
            return 1;
    }
}

static int is_tiled_conv(const hfc_model *m, const node_plan *P, int i)
{
    return m->nodes[i].op == HFC_OP_CONV2D &&
           (P[i].path == CONV_DIRECT || P[i].path == CONV_WINOGRAD ||
            P[i].path == CONV_WINOGRAD_S2);
}

/* We thread across images ourselves, so OpenBLAS runs on the calling thread.
 * OpenBLAS's pthread build starts its own pool when it is loaded, and the
 * pool's threads spin (sched_yield) for about 2^28 cycles before they sleep,
 * whatever openblas_set_num_threads says: on a 2-core machine that took a
 * core from our workers for the first ~0.1 s (MobileNetV2 on 1,000 images:
 * 0.27 s -> 0.22 s with the pool stopped). blas_thread_shutdown_ stops it;
 * the OpenMP and serial builds have none, hence the weak reference. */
extern int blas_thread_shutdown_(void) __attribute__((weak));
static void single_threaded_blas(void)
{
    openblas_set_num_threads(1);
    if (blas_thread_shutdown_)
        blas_thread_shutdown_();
}

static void plan_readers(const hfc_model *m, node_plan *P, int tap)
{
    for (int i = 0; i < m->n_nodes; i++) {
        P[i] = (node_plan){.alias = -1, .fold_into = -1, .residual = -1, .add_into = -1,
                           .step = -1, .merge_1x1 = -1, .merge_id = -1};
        for (int k = 0; k < m->nodes[i].n_in; k++)
            P[m->nodes[i].in[k]].readers++;
    }
    P[m->output].readers++;  /* the logits are read after the run */
    if (tap > 0)
        P[tap].readers++;    /* so is a tapped value: nothing fuses it away */
}

static void plan_conv_paths(const hfc_model *m, node_plan *P, hfc_conv_choice choice)
{
    int tiled = hfc_isa() >= HFC_ISA_AVX2 && choice != HFC_CONV_GEMM;
    int winograd = choice != HFC_CONV_DIRECT;
    for (int i = 1; i < m->n_nodes; i++) {
        const hfc_node *nd = &m->nodes[i];
        if (nd->op != HFC_OP_CONV2D)
            continue;
        const hfc_shape in = m->nodes[nd->in[0]].out;
        const int g = in.c / nd->groups;
        const int big = (double)in.c * nd->kh * nd->kw * nd->out.c >= IM2COL_WEIGHTS;
        const int pointwise = nd->kh == 1 && nd->kw == 1 && nd->sh == 1 && nd->sw == 1 &&
                              !nd->ph && !nd->pw;
        if (nd->groups != 1 || nd->dh != 1 || nd->dw != 1)
            P[i].path = tiled && g == nd->out.c / nd->groups && hfc_tiled_lanes() % g == 0
                            ? CONV_SMALL_GROUPS
                            : CONV_GROUPED;
        else if (!tiled)
            P[i].path = CONV_GEMM;
        else if ((big || !pointwise) && nd->out.h * nd->out.w < 16)
            /* few pixels: the direct kernel's products have a row of the
             * map each (1 or 2 rows on 1x1 and 2x2 maps) and add the
             * padding's zeros; im2col's run over the group's images and
             * skip the taps outside (DenseNet-121's 128 -> 32 3x3 convs at
             * 32 x 32, 1,000 images, 2 threads, Zen 5: 1.30 -> 1.16 s) */
            P[i].path = CONV_IM2COL;
        else if (winograd && nd->kh == 3 && nd->kw == 3 && nd->sh == 1 && nd->sw == 1 &&
                 nd->ph == 1 && nd->pw == 1 && winograd_fits(nd->out.h, nd->out.w) &&
                 in.c >= 16 && nd->out.c % 16 == 0)
            P[i].path = CONV_WINOGRAD;
        else if (winograd && winograd_s2(nd, in.c))
            P[i].path = CONV_WINOGRAD_S2;
        else if (big && !pointwise)
            P[i].path = CONV_IM2COL;
        else
            P[i].path = CONV_DIRECT;
    }
}

/* The single node that reads node i's value, or -1. */
static int only_reader(const hfc_model *m, const node_plan *P, int i)
{
    if (P[i].readers != 1 || i == m->output)
        return -1;
    for (int j = i + 1; j < m->n_nodes; j++)
        for (int k = 0; k < m->nodes[j].n_in; k++)
            if (m->nodes[j].in[k] == i)
                return j;
    return -1;
}

/* RepVGG's training form, Add(BN(conv3x3(x)), BN(conv1x1(x))) and perhaps
 * + BN(x) by the one Add that reads it, both BatchNorms folded (plan_fusion
 * has passed them): one 3x3 conv whose weights get the 1x1's at their centre
 * tap and the identity's scale on the centre's diagonal (merge_branches),
 * its bias all the shifts. The other nodes become aliases of the conv. */
static int plan_branch_merge(const hfc_model *m, node_plan *P, int add)
{
    const hfc_node *nd = &m->nodes[add];
    for (int side = 0; side < 2; side++) {
        const int p = nd->in[side], q = nd->in[1 - side], a = P[p].fold_into, b = P[q].fold_into;
        if (a < 0 || b < 0)
            continue;
        const hfc_node *A = &m->nodes[a], *B = &m->nodes[b];
        if (A->kh != 3 || A->kw != 3 || A->ph != 1 || A->pw != 1 || B->kh != 1 || B->kw != 1 ||
            B->ph || B->pw || A->sh != B->sh || A->sw != B->sw || A->groups != 1 ||
            B->groups != 1 || A->dh != 1 || A->dw != 1 || A->in[0] != B->in[0] ||
            P[p].readers != 1 || P[q].readers != 1 || P[a].readers != 1 || P[b].readers != 1 ||
            P[a].fused_relu || P[a].residual >= 0 || P[b].fused_relu || P[b].residual >= 0)
            continue;
        P[a].merge_1x1 = q;
        P[q].fold_into = -1;  /* done by merge_branches */
        P[b].alias = a;
        P[add].alias = p;
        const int x = A->in[0], j = only_reader(m, P, add);
        const hfc_node *J = j >= 0 ? &m->nodes[j] : NULL;
        if (J && J->op == HFC_OP_ADD && A->sh == 1 && A->sw == 1 &&
            m->nodes[x].out.c == A->out.c) {
            const int r = J->in[0] == add ? J->in[1] : J->in[0];
            if (m->nodes[r].op == HFC_OP_BATCHNORM && m->nodes[r].in[0] == x &&
                P[r].readers == 1 && P[r].alias < 0) {
                P[a].merge_id = r;
                P[r].alias = a;
                P[j].alias = add;
            }
        }
        return 1;
    }
    return 0;
}

/* batch_stats: BatchNorms use their batch's statistics, so none is folded. */
static void plan_fusion(const hfc_model *m, node_plan *P, int batch_stats)
{
    for (int i = 1; i < m->n_nodes; i++) {
        const hfc_node *nd = &m->nodes[i];
        int src = nd->in[0];
        if (nd->op == HFC_OP_FLATTEN && m->nodes[src].out.h * m->nodes[src].out.w == 1) {
            P[i].alias = src;
        } else if (nd->op == HFC_OP_BATCHNORM && !batch_stats && m->nodes[src].op == HFC_OP_CONV2D &&
                   P[src].readers == 1 && P[src].alias < 0 && !P[src].fused_relu) {
            P[i].fold_into = src;
            P[i].alias = src;
        } else if (nd->op == HFC_OP_RELU || nd->op == HFC_OP_RELU6) {
            int r = root_of(P, src);
            hfc_op rop = m->nodes[r].op;
            if (single_reader_chain(P, src) && !P[r].fused_relu &&
                (rop == HFC_OP_CONV2D ||  /* every conv kernel takes either */
                 (nd->op == HFC_OP_RELU &&
                  (rop == HFC_OP_BATCHNORM || rop == HFC_OP_ADD || rop == HFC_OP_LINEAR)))) {
                P[r].fused_relu = nd->op == HFC_OP_RELU6 ? HFC_FUSED_RELU6 : HFC_FUSED_RELU;
                P[i].alias = src;
            }
        } else if (nd->op == HFC_OP_MUL) {  /* swish written as x * x.sigmoid() */
            for (int side = 0; side < 2 && !P[i].swish; side++) {
                int sg = nd->in[side], x = nd->in[1 - side];
                if (m->nodes[sg].op == HFC_OP_SIGMOID && m->nodes[sg].in[0] == x &&
                    P[sg].readers == 1 && P[sg].alias < 0) {
                    P[sg].alias = x;
                    P[i].swish = 1;
                }
            }
        } else if (nd->op == HFC_OP_ADD) {  /* done by the conv of either input */
            if (P[i].alias >= 0 || plan_branch_merge(m, P, i))
                continue;
            hfc_shape sa = m->nodes[nd->in[0]].out, sb = m->nodes[nd->in[1]].out;
            if (sa.h != sb.h || sa.w != sb.w)
                continue;  /* a broadcast: a step of its own */
            for (int side = 0; side < 2 && P[i].alias < 0; side++) {
                int a = nd->in[side], b = nd->in[1 - side], r = root_of(P, a);
                if (!is_tiled_conv(m, P, r) || P[r].fused_relu || P[r].residual >= 0 ||
                    !single_reader_chain(P, a) || root_of(P, b) >= r)
                    continue;
                P[r].residual = b;
                P[i].add_into = r;
                P[i].alias = a;
            }
        }
    }
}

static void plan_deferred_batchnorm(const hfc_model *m, node_plan *P, int tap)
{
    for (int i = 1; i < m->n_nodes; i++) {
        const hfc_node *nd = &m->nodes[i];
        if (nd->op != HFC_OP_BATCHNORM || P[i].alias >= 0 || root_of(P, m->output) == i ||
            (tap > 0 && root_of(P, tap) == i))
            continue;
        int readers = 0, all_convs = 1;
        for (int j = i + 1; j < m->n_nodes && all_convs; j++) {
            const hfc_node *rd = &m->nodes[j];
            if (P[j].alias >= 0 && P[j].add_into < 0)
                continue;  /* on a chain of aliases, not a reader of its own */
            for (int k = 0; k < rd->n_in; k++)
                if (root_of(P, rd->in[k]) == i) {
                    readers++;
                    all_convs &= P[j].alias < 0 && is_tiled_conv(m, P, j);
                }
        }
        if (readers && all_convs) {
            P[i].bn_deferred = 1;
            P[i].alias = nd->in[0];
        }
    }
}

/* The last node that reads each root buffer (an Add done by a conv reads
 * at the conv); the logits are never released. */
static void plan_liveness(const hfc_model *m, node_plan *P, int tap)
{
    for (int i = 1; i < m->n_nodes; i++) {
        if (P[i].alias >= 0 && P[i].add_into < 0)
            continue; /* no step, no read of its own (a merged branch's read of
                         the conv's input would otherwise keep it alive) */
        int at = P[i].add_into >= 0 ? P[i].add_into : i;
        for (int k = 0; k < m->nodes[i].n_in; k++) {
            int r = root_of(P, m->nodes[i].in[k]);
            if (P[r].last_use < at)
                P[r].last_use = at;
        }
    }
    P[root_of(P, m->output)].last_use = m->n_nodes;
    if (tap > 0)
        P[root_of(P, tap)].last_use = m->n_nodes;
}

static hfc_status plan_workspaces(hfc_engine *e, hfc_error *err)
{
    e->ws = calloc((size_t)e->threads, sizeof *e->ws);
    if (!e->ws)
        return hfc_fail(err, HFC_ERR_NOMEM, e->model->path, "out of memory for thread buffers");
    for (int t = 0; t < e->threads; t++) {
        e->ws[t].slots = hfc_alloc_big(e->slot_offset[e->n_slots] * sizeof(float));
        e->ws[t].col = hfc_alloc_big(e->col_floats * sizeof(float));
        if (e->gradients) {
            e->ws[t].grads =
                hfc_alloc_big((size_t)e->n_grad_buffers * e->slot_floats * sizeof(float));
            e->ws[t].written = malloc((size_t)e->n_slots);
            e->ws[t].dtmp = hfc_alloc_big(e->slot_floats * sizeof(float));
        }
        if (!e->ws[t].slots || !e->ws[t].col ||
            (e->gradients && (!e->ws[t].grads || !e->ws[t].written || !e->ws[t].dtmp)))
            return hfc_fail(err, HFC_ERR_NOMEM, e->model->path, "out of memory for activations");
    }
    return HFC_OK;
}

hfc_status hfc_engine_new(hfc_engine **out, const hfc_model *m, const hfc_engine_options *opt,
                          hfc_error *err)
{
    *out = NULL;
    hfc_engine *e = calloc(1, sizeof *e);
    node_plan *P = calloc((size_t)m->n_nodes, sizeof *P);
    if (!e || !P) {
        free(e);
        free(P);
        return hfc_fail(err, HFC_ERR_NOMEM, m->path, "out of memory planning the model");
    }
    e->model = m;
    for (int i = 1; i < m->n_nodes; i++)
        if (m->nodes[i].op == HFC_OP_CONV2D && !m->nodes[i].weight) {
            hfc_engine_free(e);
            free(P);
            return hfc_fail(err, HFC_ERR_MODEL, m->path,
                            "the conv weights were released (hfc_model_release_conv_weights)");
        }
    if (opt->tap < 0 || opt->tap >= m->n_nodes) {
        hfc_engine_free(e);
        free(P);
        return hfc_fail(err, HFC_ERR_USAGE, m->path, "no node %d to tap", opt->tap);
    }
    single_threaded_blas();
    e->tap_node = opt->tap;
    plan_readers(m, P, opt->tap);
    plan_conv_paths(m, P, opt->conv);
    e->bn_batch = opt->bn_batch > 0 ? opt->bn_batch : 0;
    e->gradients = opt->gradients;
    e->keep_values = opt->keep_values;
    e->threads = opt->threads < 1 ? 1 : opt->threads; /* planning's transforms use them too */
    if (!e->keep_values) /* gradient engines undo it: backward_fused */
        plan_fusion(m, P, e->bn_batch);
    if (!e->bn_batch) /* gradient engines undo it: backward_deferred_bn */
        plan_deferred_batchnorm(m, P, opt->tap);
    plan_liveness(m, P, opt->tap);
    hfc_status st = plan_steps(e, P, err);
    e->tap_slot = opt->tap > 0 ? P[root_of(P, opt->tap)].slot : -1;
    if (!st)
        st = plan_conv_weights(e, err);
    if (!st && e->gradients)
        st = plan_backward_convs(e, opt->conv, err);
    if (!st && e->gradients)
        st = plan_gradient_buffers(e, err);
    if (!st)
        st = plan_workspaces(e, err);
    free(P);
    if (st) {
        hfc_engine_free(e);
        return st;
    }
    *out = e;
    return HFC_OK;
}
