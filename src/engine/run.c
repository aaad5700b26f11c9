/* engine_run.c - plan a model once, then run it on batches of images.
 *
 * Activations are NHWC (engine_ops.h); conv weights are reordered to
 * (cout, kh, kw, cin/groups) to match.
 *
 * Planning (hfc_engine_new) is a sequence of named passes over one
 * node_plan per node of the model:
 *   plan_readers     how many nodes read each value
 *   plan_conv_paths  each conv's algorithm: on a CPU with AVX-512F (unless
 *                    the options rule it out), a conv with groups 1, no
 *                    dilation and a multiple of 16 output channels runs
 *                    Winograd F(4x4, 3x3) when it is 3x3, stride 1, padding
 *                    1, with output sides multiples of 4 and >= 16 input
 *                    channels, else the direct kernel, except on maps of
 *                    under 16 pixels with many weights; other plain convs run
 *                    im2col + SGEMM, grouped and dilated ones a portable
 *                    direct loop (engine_ops.c)
 *   plan_fusion      which nodes need no step of their own:
 *                    - a BatchNorm that is the only reader of a conv is
 *                      folded into it: W' = W * s, b' = b * s + t with
 *                      s = gamma / sqrt(var + eps), t = beta - mean * s;
 *                    - a ReLU whose producer (conv, bn, add, linear) feeds
 *                      nothing else is done by that step; a flatten of a
 *                      1x1 map is free (same memory);
 *                    - an Add (same shapes) one of whose inputs is an
 *                      AVX-512 conv feeding nothing else, the other computed
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
 *                    AVX-512 convs is done by each as it reads (the
 *                    pre-activation blocks). Results are bit for bit those
 *                    of the separate steps.
 *   plan_liveness    the last node that reads each buffer
 *   plan_steps       one step per remaining node, in order, with its
 *                    folded weights and an output slot; a slot is reused
 *                    once the last reader of its value has run
 *   plan_conv_weights  the group size (plan_group), the AVX-512 convs' own
 *                    weight layouts (in panels) and scratch
 *   plan_workspaces  per-thread slots and scratch, allocated once
 * Running: images go through in groups of e->group; each thread takes
 * whole groups and runs every step on a group with its own slots and
 * scratch, each step by its layer's forward function (the table from
 * include/hfc_layers.def below); nothing is allocated.
 */
#include <assert.h>
#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "engine/internal.h"

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

/* Multiply-adds of one image through node nd. */
static double layer_macs(const hfc_model *m, const hfc_node *nd)
{
    const hfc_shape in = m->nodes[nd->in[0]].out;
    switch (hfc_layers[nd->op].cost) {
    case COST_CONV:
        return (double)nd->out.c * (in.c / nd->groups) * nd->kh * nd->kw * nd->out.h * nd->out.w;
    case COST_LINEAR:
        return (double)nd->out.c * in.c;
    default:
        return 0;
    }
}

/* ------------------------------------------------------------ planning */

/* The node whose buffer node i's value lives in. */
static int root_of(const node_plan *P, int i)
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

static int is_avx512_conv(const hfc_model *m, const node_plan *P, int i)
{
    return m->nodes[i].op == HFC_OP_CONV2D &&
           (P[i].path == CONV_DIRECT || P[i].path == CONV_WINOGRAD);
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

static void plan_readers(const hfc_model *m, node_plan *P)
{
    for (int i = 0; i < m->n_nodes; i++) {
        P[i] = (node_plan){.alias = -1, .fold_into = -1, .residual = -1, .add_into = -1,
                           .step = -1, .merge_1x1 = -1, .merge_id = -1};
        for (int k = 0; k < m->nodes[i].n_in; k++)
            P[m->nodes[i].in[k]].readers++;
    }
    P[m->output].readers++;  /* the logits are read after the run */
}

/* Convs with at least this many weights run im2col + the blocked AVX-512
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
#define FEW_TILES_SLOT_FLOATS ((size_t)3 << 20) /* 12 MB: plan_group */
/* A Winograd conv's 36 products take the tiles of this many images at once
 * that they have about this many rows (as the group allows): every weight
 * read then serves that many rows (measured with the weights in panels,
 * 1,000 images: ResNet-18 7.8 s at 16 rows and 16-image groups, 7.4 s at
 * 64 rows, 7.0 s at 64 rows and 32-image groups; VGG-16 4.9 -> 4.2 s; at
 * 128 rows no better). */
#define WINOGRAD_ROWS 64

static void plan_conv_paths(const hfc_model *m, node_plan *P, hfc_conv_choice choice)
{
    int avx512 = hfc_cpu_avx512f() && choice != HFC_CONV_GEMM;
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
            P[i].path = avx512 && g == nd->out.c / nd->groups && 16 % g == 0 ? CONV_SMALL_GROUPS
                                                                             : CONV_GROUPED;
        else if (!avx512)
            P[i].path = CONV_GEMM;
        else if (big && nd->out.h * nd->out.w < 16)
            P[i].path = CONV_IM2COL;
        else if (winograd && nd->kh == 3 && nd->kw == 3 && nd->sh == 1 && nd->sw == 1 &&
                 nd->ph == 1 && nd->pw == 1 && nd->out.h % 4 == 0 && nd->out.w % 4 == 0 &&
                 in.c >= 16 && nd->out.c % 16 == 0)
            P[i].path = CONV_WINOGRAD;
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
                if (!is_avx512_conv(m, P, r) || P[r].fused_relu || P[r].residual >= 0 ||
                    !single_reader_chain(P, a) || root_of(P, b) >= r)
                    continue;
                P[r].residual = b;
                P[i].add_into = r;
                P[i].alias = a;
            }
        }
    }
}

static void plan_deferred_batchnorm(const hfc_model *m, node_plan *P)
{
    for (int i = 1; i < m->n_nodes; i++) {
        const hfc_node *nd = &m->nodes[i];
        if (nd->op != HFC_OP_BATCHNORM || P[i].alias >= 0 || root_of(P, m->output) == i)
            continue;
        int readers = 0, all_convs = 1;
        for (int j = i + 1; j < m->n_nodes && all_convs; j++) {
            const hfc_node *rd = &m->nodes[j];
            if (P[j].alias >= 0 && P[j].add_into < 0)
                continue;  /* on a chain of aliases, not a reader of its own */
            for (int k = 0; k < rd->n_in; k++)
                if (root_of(P, rd->in[k]) == i) {
                    readers++;
                    all_convs &= P[j].alias < 0 && is_avx512_conv(m, P, j);
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
static void plan_liveness(const hfc_model *m, node_plan *P)
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
}

/* A conv whose reordered, folded weights are kept after planning: those
 * of the gradient engines and of the SGEMM and portable paths. The AVX-512
 * paths run on their own layout (wt), made from a copy that plan_conv_weights
 * builds and drops one conv at a time: ResNet-50 would otherwise hold its 94 MB
 * of weights three times (model, folded, wt). */
static int keeps_folded(const hfc_engine *e, conv_path path)
{
    return e->gradients || !(path == CONV_DIRECT || path == CONV_WINOGRAD ||
                             path == CONV_SMALL_GROUPS || path == CONV_IM2COL);
}

static size_t conv_weights(const hfc_model *m, const hfc_node *nd)
{
    return (size_t)nd->out.c * (m->nodes[nd->in[0]].out.c / nd->groups) * nd->kh * nd->kw;
}

/* Floats for the weights made at planning: the kept convs' reordered
 * weights, a bias per folded BatchNorm, scale and shift per other one. */
static size_t folded_floats(const hfc_engine *e, const node_plan *P)
{
    const hfc_model *m = e->model;
    size_t n = 0;
    for (int i = 1; i < m->n_nodes; i++) {
        const hfc_node *nd = &m->nodes[i];
        if (nd->op == HFC_OP_CONV2D)
            n += keeps_folded(e, P[i].path) ? conv_weights(m, nd) : 0;
        else if (nd->op == HFC_OP_BATCHNORM)
            n += (P[i].fold_into >= 0 ? 1 : 2) * (size_t)nd->out.c;
    }
    return n;
}

/* w (cout, cin_g, kh, kw) -> out (cout, kh, kw, cin_g) */
static void reorder_conv_weights(const hfc_node *cv, int cin_g, float *out)
{
    for (int o = 0; o < cv->out.c; o++)
        for (int c = 0; c < cin_g; c++)
            for (int ky = 0; ky < cv->kh; ky++)
                for (int kx = 0; kx < cv->kw; kx++)
                    out[(((size_t)o * cv->kh + ky) * cv->kw + kx) * cin_g + c] =
                        cv->weight[(((size_t)o * cin_g + c) * cv->kh + ky) * cv->kw + kx];
}

static void bn_scale_shift(const hfc_node *bn, int c, float *s, float *t)
{
    double scale = (bn->weight ? bn->weight[c] : 1.0) / sqrt((double)bn->var[c] + bn->eps);
    *s = (float)scale;
    *t = (float)((bn->bias ? bn->bias[c] : 0.0) - bn->mean[c] * scale);
}

/* A conv's reordered weights w (n floats, out.c rows) times the scale of
 * BatchNorm bn, row by row. */
static void fold_scale(const hfc_node *bn, size_t n, float *w)
{
    const size_t per = n / (size_t)bn->out.c;
    for (int c = 0; c < bn->out.c; c++) {
        float s, t;
        bn_scale_shift(bn, c, &s, &t);
        for (size_t k = 0; k < per; k++)
            w[c * per + k] *= s;
    }
}

/* plan_branch_merge's weights: w, the 3x3 conv's reordered (cout, 3, 3, cin)
 * weights already scaled by its own BatchNorm, gets the 1x1 conv's weights
 * times their BatchNorm's scale at the centre tap, and the identity
 * BatchNorm's scale at the centre of its own channel. */
static void merge_branches(const hfc_model *m, const step *cs, float *w)
{
    const hfc_node *bn1 = cs->merged_1x1_bn, *bnid = cs->merged_id_bn;
    if (!bn1)
        return;
    const hfc_node *one = &m->nodes[bn1->in[0]];
    const int cin = m->nodes[cs->node->in[0]].out.c;
    for (int o = 0; o < cs->node->out.c; o++) {
        float s, t;
        float *centre = w + ((size_t)o * 9 + 4) * cin;
        bn_scale_shift(bn1, o, &s, &t);
        for (int c = 0; c < cin; c++)
            centre[c] += one->weight[(size_t)o * cin + c] * s;
        if (bnid) {
            bn_scale_shift(bnid, o, &s, &t);
            centre[o] += s;
        }
    }
}

/* The bias plan_branch_merge adds to the 3x3 conv's output channel c. */
static float merged_shift(const hfc_model *m, const step *cs, int c)
{
    float s, t, sum = 0.0f;
    if (cs->merged_1x1_bn) {
        const hfc_node *one = &m->nodes[cs->merged_1x1_bn->in[0]];
        bn_scale_shift(cs->merged_1x1_bn, c, &s, &t);
        sum += (one->bias ? one->bias[c] : 0.0f) * s + t;
    }
    if (cs->merged_id_bn) {
        bn_scale_shift(cs->merged_id_bn, c, &s, &t);
        sum += t;
    }
    return sum;
}

/* A step for every node that is not an alias, in node order: its folded
 * weights and its output slot. */
static hfc_status plan_steps(hfc_engine *e, node_plan *P, hfc_error *err)
{
    const hfc_model *m = e->model;
    const int n = m->n_nodes;
    e->folded = malloc((folded_floats(e, P) + 1) * sizeof(float));
    e->steps = calloc((size_t)n, sizeof *e->steps);
    int *slot_free = calloc((size_t)n, sizeof *slot_free);
    if (!e->folded || !e->steps || !slot_free) {
        free(slot_free);
        return hfc_fail(err, HFC_ERR_NOMEM, m->path, "out of memory planning the model");
    }
    float *fw = e->folded;
    size_t max_floats = 0;
    for (int i = 0; i < n; i++) {
        const hfc_node *nd = &m->nodes[i];
        if (P[i].alias >= 0) {
            if (P[i].fold_into >= 0) {  /* scale the conv's reordered weights, fold the bias */
                step *cs = &e->steps[P[P[i].fold_into].step];
                const hfc_node *cv = cs->node;
                float *b = fw;
                if (cs->w) {
                    fold_scale(nd, conv_weights(m, cv), (float *)cs->w);
                    merge_branches(m, cs, (float *)cs->w);
                } else {
                    cs->fold_bn = nd;  /* plan_conv_weights scales its copy */
                }
                for (int c = 0; c < cv->out.c; c++) {
                    float s, t;
                    bn_scale_shift(nd, c, &s, &t);
                    b[c] = (cv->bias ? cv->bias[c] : 0.0f) * s + t + merged_shift(m, cs, c);
                }
                cs->b = b;
                fw = b + cv->out.c;
            } else if (P[i].bn_deferred) {
                P[i].bn_scale = fw;
                P[i].bn_shift = fw + nd->out.c;
                for (int c = 0; c < nd->out.c; c++)
                    bn_scale_shift(nd, c, &fw[c], &fw[nd->out.c + c]);
                fw += 2 * nd->out.c;
            }
            continue;
        }
        step *s = &e->steps[e->n_steps];
        s->node = nd;
        s->op = nd->op;
        s->relu = P[i].fused_relu;
        s->w = nd->weight;
        s->b = nd->bias;
        s->n_in = nd->n_in;
        s->residual = -1;
        for (int k = 0; k < nd->n_in; k++)
            s->in[k] = P[root_of(P, nd->in[k])].slot;
        if (P[i].swish) { /* both inputs are x's buffer now */
            s->op = HFC_OP_SILU;
            s->n_in = 1;
        }
        if (nd->op == HFC_OP_CONV2D) {
            s->path = P[i].path;
            s->w = NULL;
            if (keeps_folded(e, s->path)) {
                reorder_conv_weights(nd, m->nodes[nd->in[0]].out.c / nd->groups, fw);
                s->w = fw;
                fw += conv_weights(m, nd);
            }
            s->merged_1x1_bn = P[i].merge_1x1 >= 0 ? &m->nodes[P[i].merge_1x1] : NULL;
            s->merged_id_bn = P[i].merge_id >= 0 ? &m->nodes[P[i].merge_id] : NULL;
            if (P[i].residual >= 0)
                s->residual = P[root_of(P, P[i].residual)].slot;
            for (int p = nd->in[0]; P[p].alias >= 0; p = P[p].alias)
                if (P[p].bn_deferred) {
                    s->in_scale = P[p].bn_scale;
                    s->in_shift = P[p].bn_shift;
                    s->in_relu = P[p].fused_relu;
                }
        } else if (nd->op == HFC_OP_BATCHNORM) {
            float *sc = fw, *sh = fw + nd->out.c;
            for (int c = 0; c < nd->out.c; c++)
                bn_scale_shift(nd, c, &sc[c], &sh[c]);
            s->w = sc;
            s->b = sh;
            fw = sh + nd->out.c;
        }
        /* A free slot for the output (never one of the inputs). */
        int slot = 0;
        while (slot < e->n_slots && !slot_free[slot])
            slot++;
        if (slot == e->n_slots)
            e->n_slots++;
        slot_free[slot] = 0;
        P[i].slot = s->out = slot;
        P[i].step = e->n_steps++;
        /* Release the inputs whose last reader this was (kept for gradients). */
        for (int k = 0; k <= nd->n_in && !e->gradients && !e->keep_values; k++) {
            int in = k < nd->n_in ? nd->in[k] : P[i].residual;
            int r = in >= 0 ? root_of(P, in) : -1;
            if (r >= 0 && P[r].last_use == i)
                slot_free[P[r].slot] = 1;
        }
        size_t floats = (size_t)nd->out.c * nd->out.h * nd->out.w;
        if (floats > max_floats)
            max_floats = floats;
        if (nd->op != HFC_OP_INPUT)
            e->macs += layer_macs(m, nd);
    }
    free(slot_free);
    e->output_slot = P[root_of(P, m->output)].slot;
    e->slot_floats = max_floats; /* per image until plan_conv_weights scales it by the group */
    return HFC_OK;
}

/* The AVX-512 convs' weights in their own layouts, the group size, and the
 * scratch (col) the convs need. */
/* plan_backward_convs (gradient engines): a stride-1 conv with 'same'
 * padding has dx = conv(dy, W') with W'[ci][ky][kx][co] = W[co][kh-1-ky][kw-1-kx][ci]
 * and the same padding, so its backward runs on the forward's AVX-512
 * kernels (Winograd where the forward's conditions hold with the channels
 * swapped, else direct), adding into dx through the kernels' residual. */
static hfc_status plan_backward_convs(hfc_engine *e, hfc_conv_choice choice, hfc_error *err)
{
    const hfc_model *m = e->model;
    size_t total = 0;
    int avx512 = hfc_cpu_avx512f() && choice != HFC_CONV_GEMM;
    for (int pass = 0; pass < 2; pass++) { /* 0: choose and count, 1: fill */
        float *at = e->back_weights;
        for (int k = 0; k < e->n_steps; k++) {
            step *cs = &e->steps[k];
            const hfc_node *nd = cs->node;
            if (nd->op != HFC_OP_CONV2D)
                continue;
            const int cin = m->nodes[nd->in[0]].out.c, cout = nd->out.c;
            if (pass == 0) {
                cs->back = avx512 ? CONV_IM2COL : CONV_GEMM; /* the product + col2im */
                if (!avx512 || nd->groups != 1 || nd->sh != 1 || nd->sw != 1 || nd->dh != 1 ||
                    nd->dw != 1 || nd->kh % 2 == 0 || nd->kw % 2 == 0 ||
                    nd->ph != nd->kh / 2 || nd->pw != nd->kw / 2)
                    continue;
                int wino = choice != HFC_CONV_DIRECT && nd->kh == 3 && nd->kw == 3 &&
                           nd->out.h % 4 == 0 && nd->out.w % 4 == 0 && cout >= 16 && cin % 16 == 0;
                cs->back = wino ? CONV_WINOGRAD : CONV_DIRECT;
                total += (wino ? 36 : (size_t)nd->kh * nd->kw) * cin * cout;
                size_t need = wino ? hfc_conv2d_winograd_scratch(nd->out.h, nd->out.w, cout, cin,
                                                                 cs->chunk ? cs->chunk : 1)
                                   : (size_t)(nd->out.h + 2 * nd->ph) * (nd->out.w + 2 * nd->pw) *
                                         cout;
                e->col_floats = need > e->col_floats ? need : e->col_floats;
                continue;
            }
            if (cs->back == CONV_GEMM || cs->back == CONV_IM2COL)
                continue;
            const int kh = nd->kh, kw = nd->kw;
            const float *w = cs->w; /* (cout, kh, kw, cin) */
            if (cs->back == CONV_WINOGRAD) {
                float *flipped = malloc((size_t)cin * kh * kw * cout * sizeof *flipped);
                if (!flipped)
                    return hfc_fail(err, HFC_ERR_NOMEM, m->path, "out of memory for conv weights");
                for (int ci = 0; ci < cin; ci++) /* (cin, kh, kw, cout) */
                    for (int ky = 0; ky < kh; ky++)
                        for (int kx = 0; kx < kw; kx++)
                            for (int co = 0; co < cout; co++)
                                flipped[((size_t)(ci * kh + ky) * kw + kx) * cout + co] =
                                    w[((size_t)(co * kh + kh - 1 - ky) * kw + kw - 1 - kx) * cin + ci];
                hfc_winograd_weights(flipped, cout, cin, at);
                free(flipped);
                if (!cs->chunk)
                    cs->chunk = 1;
                cs->wt_back = at;
                at += 36 * (size_t)cin * cout;
            } else { /* direct: (kh * kw * cout, cin) in panels */
                for (int ky = 0; ky < kh; ky++)
                    for (int kx = 0; kx < kw; kx++)
                        for (int co = 0; co < cout; co++)
                            for (int ci = 0; ci < cin; ci++)
                                at[hfc_panel_offset(kh * kw * cout, cin, (ky * kw + kx) * cout + co,
                                                    ci)] =
                                    w[((size_t)(co * kh + kh - 1 - ky) * kw + kw - 1 - kx) * cin + ci];
                cs->wt_back = at;
                at += (size_t)kh * kw * cout * cin;
            }
        }
        if (pass == 0 && total && !(e->back_weights = malloc(total * sizeof(float))))
            return hfc_fail(err, HFC_ERR_NOMEM, m->path, "out of memory for conv weights");
    }
    return HFC_OK;
}

/* Convs whose weights go to (kh, kw, g, c): the small-group kernel's, and
 * the portable loop's depthwise ones (one input and one output channel per
 * group). */
static int groups_layout(const hfc_model *m, const step *cs)
{
    const hfc_node *nd = cs->node;
    return cs->path == CONV_SMALL_GROUPS ||
           (cs->path == CONV_GROUPED && nd->groups == nd->out.c &&
            nd->groups == m->nodes[nd->in[0]].out.c);
}

/* plan_group: images per group. 4, or HFC_ENGINE_GROUP where OpenBLAS runs
 * a conv (bigger GEMMs), or 2, 4 or 8 times that where small maps meet many
 * weights (below); a group is one batch of statistics under bn_batch. Then a
 * Winograd conv whose products would still get fewer than
 * WINOGRAD_MIN_ROWS rows (a 4x4 map in a model whose widest value keeps
 * groups at 4) runs im2col + the product instead: its 36 planes of weights
 * for 4 rows cost more than 9 for all the group's pixels (ResNet-50, 300
 * images, alternated: 8.8 s -> 8.5 s). A conv that reads a deferred
 * BatchNorm keeps Winograd, which applies it as it reads. */
#define WINOGRAD_MIN_ROWS 16
static void plan_group(hfc_engine *e)
{
    const hfc_model *m = e->model;
    int small_map = 0, few_tiles = 0;
    e->group = 4;
    for (int k = 0; k < e->n_steps; k++) {
        const hfc_node *nd = e->steps[k].node;
        if (nd->op != HFC_OP_CONV2D)
            continue;
        size_t cin = (size_t)m->nodes[nd->in[0]].out.c;
        int big = (double)cin / nd->groups * nd->kh * nd->kw * nd->out.c >= IM2COL_WEIGHTS;
        small_map |= nd->out.h * nd->out.w <= 16 && big;
        few_tiles |= e->steps[k].path == CONV_WINOGRAD && big &&
                     (nd->out.h / 4) * (nd->out.w / 4) * 2 * HFC_ENGINE_GROUP < WINOGRAD_ROWS;
        if (e->steps[k].path == CONV_GEMM)
            e->group = HFC_ENGINE_GROUP;
    }
    /* Convs on maps of 16 pixels or fewer (ResNet-18's 4x4, VGG's 2x2) with
     * many weights read every weight for a few rows per image: 16 images per
     * group give their products more rows per weight read, where 16 of an
     * image's widest value stay small (measured, 1,000 images: ResNet-18
     * 12.2 s -> 9.7 s, VGG-11 4.9 s -> 4.1 s; ResNet-50, whose widest is
     * 1 MB, keeps 4), and 32 where Winograd convs on 4x4 maps would still
     * get few rows (with the weights in panels: ResNet-18 7.4 -> 7.0 s, peak
     * RSS 224 -> 265 MB, 351 MB at 64; RegNetX, no such conv, 2.34 s at 16
     * and 2.47 s at 32). The mobile nets' small convs at 4x4 gain nothing
     * and their elementwise steps lose L2 (EfficientNet 0.75 s -> 0.66 s
     * at 4). */
    if (small_map && e->slot_floats <= SMALL_MAP_GROUP_FLOATS)
        e->group = (few_tiles ? 4 : 2) * HFC_ENGINE_GROUP;
    /* ... and WINOGRAD_ROWS (64), so that those products get all their
     * rows, where a slot of that many images stays within 12 MB: RepVGG-A0
     * (192 KB an image) 1.76 -> 1.66 s, RSS 130 -> 151 MB; ResNet-18 (256 KB)
     * was no faster at 64 and its RSS went 265 -> 351 MB. */
    if (small_map && few_tiles && (size_t)WINOGRAD_ROWS * e->slot_floats <= FEW_TILES_SLOT_FLOATS)
        e->group = WINOGRAD_ROWS;
    if (e->bn_batch)
        e->group = e->bn_batch;
    for (int k = 0; k < e->n_steps; k++) {
        step *cs = &e->steps[k];
        const hfc_node *nd = cs->node;
        if (cs->path == CONV_WINOGRAD && !cs->in_scale && /* im2col reads x as it is */
            (nd->out.h / 4) * (nd->out.w / 4) * e->group < WINOGRAD_MIN_ROWS &&
            (double)m->nodes[nd->in[0]].out.c * 9 * nd->out.c >= IM2COL_WEIGHTS)
            cs->path = CONV_IM2COL;
    }
}

static hfc_status plan_conv_weights(hfc_engine *e, hfc_error *err)
{
    const hfc_model *m = e->model;
    size_t nt = 0, im2col = 0, scratch = 0;  /* im2col: per image; scratch: per call */
    plan_group(e);
    for (int k = 0; k < e->n_steps; k++) {
        step *cs = &e->steps[k];
        const hfc_node *nd = cs->node;
        if (nd->op != HFC_OP_CONV2D)
            continue;
        size_t cin = (size_t)m->nodes[nd->in[0]].out.c;
        if (cs->path == CONV_DIRECT || cs->path == CONV_IM2COL || groups_layout(m, cs))
            nt += cin * nd->kh * nd->kw * nd->out.c / nd->groups;
        else if (cs->path == CONV_WINOGRAD)
            nt += 36 * cin * nd->out.c;
        if (cs->path == CONV_GEMM || cs->path == CONV_IM2COL) {
            size_t col = cin * nd->kh * nd->kw * nd->out.h * nd->out.w;
            im2col = col > im2col ? col : im2col;
        }
        if (e->gradients) { /* the backward pass's dcol, as im2col's col */
            size_t col = cin / nd->groups * nd->kh * nd->kw * nd->out.h * nd->out.w;
            im2col = col > im2col ? col : im2col;
        }
    }
    if (im2col > ((size_t)1 << 26))
        return hfc_fail(err, HFC_ERR_MODEL, m->path,
                        "a convolution needs %zu MB of im2col scratch per image (at most 256)",
                        im2col * sizeof(float) >> 20);
    e->col_floats = e->group * im2col;
    e->transposed = nt ? malloc(nt * sizeof(float)) : NULL;
    if (nt && !e->transposed)
        return hfc_fail(err, HFC_ERR_NOMEM, m->path, "out of memory for conv weights");
    size_t largest = 0;  /* a copy for the convs whose folded weights are not kept */
    for (int k = 0; k < e->n_steps; k++)
        if (e->steps[k].node->op == HFC_OP_CONV2D && !e->steps[k].w &&
            conv_weights(m, e->steps[k].node) > largest)
            largest = conv_weights(m, e->steps[k].node);
    float *copy = largest ? malloc(largest * sizeof(float)) : NULL;
    if (largest && !copy)
        return hfc_fail(err, HFC_ERR_NOMEM, m->path, "out of memory for conv weights");
    float *wt = e->transposed;
    for (int k = 0; k < e->n_steps; k++) {
        step *cs = &e->steps[k];
        const hfc_node *nd = cs->node;
        if (nd->op != HFC_OP_CONV2D ||
            (cs->path != CONV_DIRECT && cs->path != CONV_WINOGRAD && cs->path != CONV_IM2COL &&
             !groups_layout(m, cs)))
            continue;
        const hfc_shape in = m->nodes[nd->in[0]].out;
        const float *w = cs->w;
        if (!w) {  /* folded as plan_steps folds the kept ones */
            reorder_conv_weights(nd, in.c / nd->groups, copy);
            if (cs->fold_bn)
                fold_scale(cs->fold_bn, conv_weights(m, nd), copy);
            merge_branches(m, cs, copy);
            w = copy;
        }
        size_t kk = (size_t)in.c * nd->kh * nd->kw;
        if (groups_layout(m, cs)) { /* (c, kh, kw, g) -> (kh, kw, g, c) */
            const size_t taps = (size_t)nd->kh * nd->kw, g = (size_t)in.c / nd->groups;
            for (int c = 0; c < nd->out.c; c++)
                for (size_t t = 0; t < taps; t++)
                    for (size_t j = 0; j < g; j++)
                        wt[(t * g + j) * nd->out.c + c] = w[(c * taps + t) * g + j];
            cs->wt = wt;
            wt += taps * g * nd->out.c;
            continue;
        }
        if (cs->path == CONV_DIRECT || cs->path == CONV_IM2COL) {
            for (int o = 0; o < nd->out.c; o++)
                for (size_t t = 0; t < kk; t++)
                    wt[hfc_panel_offset((int)kk, nd->out.c, (int)t, o)] = w[o * kk + t];
            size_t padded = (size_t)(in.h + 2 * nd->ph) * (in.w + 2 * nd->pw) * in.c;
            if (cs->path == CONV_DIRECT)
                scratch = padded > scratch ? padded : scratch;
        } else {
            hfc_winograd_weights(w, in.c, nd->out.c, wt);
            kk = 36 * (size_t)in.c;
            int tiles = (nd->out.h / 4) * (nd->out.w / 4);
            cs->chunk = tiles >= WINOGRAD_ROWS ? 1
                        : WINOGRAD_ROWS / tiles < e->group ? WINOGRAD_ROWS / tiles
                                                           : e->group;
            size_t need = hfc_conv2d_winograd_scratch(in.h, in.w, in.c, nd->out.c, cs->chunk);
            scratch = need > scratch ? need : scratch;
        }
        cs->wt = wt;
        wt += kk * nd->out.c;
        if (scratch > e->col_floats)
            e->col_floats = scratch;
    }
    free(copy);
    e->slot_floats *= (size_t)e->group;
    return HFC_OK;
}

static hfc_status plan_workspaces(hfc_engine *e, int threads, hfc_error *err)
{
    e->threads = threads < 1 ? 1 : threads;
    e->ws = calloc((size_t)e->threads, sizeof *e->ws);
    if (!e->ws)
        return hfc_fail(err, HFC_ERR_NOMEM, e->model->path, "out of memory for thread buffers");
    for (int t = 0; t < e->threads; t++) {
        e->ws[t].slots = hfc_alloc_big((size_t)e->n_slots * e->slot_floats * sizeof(float));
        e->ws[t].col = hfc_alloc_big(e->col_floats * sizeof(float));
        if (e->gradients) {
            e->ws[t].grads = hfc_alloc_big((size_t)e->n_slots * e->slot_floats * sizeof(float));
            e->ws[t].written = malloc((size_t)e->n_slots);
        }
        if (!e->ws[t].slots || !e->ws[t].col ||
            (e->gradients && (!e->ws[t].grads || !e->ws[t].written)))
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
    single_threaded_blas();
    plan_readers(m, P);
    plan_conv_paths(m, P, opt->conv);
    e->bn_batch = opt->bn_batch > 0 ? opt->bn_batch : 0;
    e->gradients = opt->gradients;
    e->keep_values = opt->keep_values;
    if (!e->keep_values) /* gradient engines undo it: backward_fused */
        plan_fusion(m, P, e->bn_batch);
    if (!e->bn_batch && !e->gradients) /* the backward convs read values as stored */
        plan_deferred_batchnorm(m, P);
    plan_liveness(m, P);
    hfc_status st = plan_steps(e, P, err);
    if (!st)
        st = plan_conv_weights(e, err);
    if (!st && e->gradients)
        st = plan_backward_convs(e, opt->conv, err);
    if (!st)
        st = plan_workspaces(e, opt->threads, err);
    free(P);
    if (st) {
        hfc_engine_free(e);
        return st;
    }
    *out = e;
    return HFC_OK;
}

/* ------------------------------------------------------------- running */

void hfc_engine_free(hfc_engine *e)
{
    if (!e)
        return;
    for (int t = 0; e->ws && t < e->threads; t++) {
        free(e->ws[t].slots);
        free(e->ws[t].col);
        free(e->ws[t].grads);
        free(e->ws[t].written);
    }
    free(e->ws);
    free(e->steps);
    free(e->folded);
    free(e->transposed);
    free(e->back_weights);
    free(e);
}

double hfc_engine_flops(const hfc_engine *e) { return 2.0 * e->macs; }

size_t hfc_engine_group(const hfc_engine *e) { return (size_t)e->group; }

static size_t gcd(size_t a, size_t b) { return b ? gcd(b, a % b) : a; }

size_t hfc_engines_batch(hfc_engine *const *engines, int n_engines, size_t batch, size_t images)
{
    if (batch > images)
        batch = images ? images : 1;
    size_t unit = HFC_ENGINE_GROUP;
    for (int j = 0; j < n_engines; j++)
        unit = unit / gcd(unit, hfc_engine_group(engines[j])) * hfc_engine_group(engines[j]);
    return (batch + unit - 1) / unit * unit;
}

/* Run every step on a group of n images; the logits end in the output slot. */
static void forward_group(const hfc_engine *e, const workspace *ws, const float *pixels, int n)
{
    const hfc_model *m = e->model;
    step_run r = {.model = m, .bn_batch = e->bn_batch, .n = n, .pixels = pixels,
                  .scratch = ws->col};
    for (int i = 0; i < e->n_steps; i++) {
        const step *s = &e->steps[i];
        r.s = s;
        r.y = slot_tensor(e, ws->slots, s->out, s->node->out, n);
        r.residual = s->residual >= 0 ? slot_tensor(e, ws->slots, s->residual, s->node->out, n).data
                                      : NULL;
        for (int k = 0; k < s->n_in; k++)
            r.x[k] = slot_tensor(e, ws->slots, s->in[k], m->nodes[s->node->in[k]].out, n);
        hfc_layers[s->op].forward(&r);
    }
}

static void zero_gradient(const workspace *ws, const hfc_tensor *t, int slot)
{
    memset(t->data, 0, hfc_tensor_size(t) * sizeof(float));
    ws->written[slot] = 1;
}

/* After forward_group: the loss's gradient at the logits, then every step
 * backwards, each adding its inputs' gradients; dpixels gets the input's. */
static void backward_group(const hfc_engine *e, const workspace *ws, int n, float *dpixels)
{
    const hfc_model *m = e->model;
    /* A gradient buffer is zeroed just before its first use rather than all
     * at the start (still in cache when it is added to); a conv that is the
     * first to write its input's gradient writes it without zeroing. */
    memset(ws->written, 0, (size_t)e->n_slots);
    ws->written[e->output_slot] = 1; /* the loss's */
    step_back r = {.model = m, .bn_batch = e->bn_batch, .n = n, .scratch = ws->col,
                   .dpixels = dpixels};
    for (int i = e->n_steps - 1; i >= 0; i--) {
        const step *s = &e->steps[i];
        r.s = s;
        r.y = slot_tensor(e, ws->slots, s->out, s->node->out, n);
        r.dy = slot_tensor(e, ws->grads, s->out, s->node->out, n);
        if (!ws->written[s->out]) /* nothing read this value */
            zero_gradient(ws, &r.dy, s->out);
        hfc_tensor dres; /* before the inputs: it may be one of them */
        if (s->residual >= 0) {
            dres = slot_tensor(e, ws->grads, s->residual, s->node->out, n);
            if (!ws->written[s->residual])
                zero_gradient(ws, &dres, s->residual);
        }
        r.assign = 0;
        for (int k = 0; k < s->n_in; k++) {
            hfc_shape sh = m->nodes[s->node->in[k]].out;
            r.x[k] = slot_tensor(e, ws->slots, s->in[k], sh, n);
            r.dx[k] = slot_tensor(e, ws->grads, s->in[k], sh, n);
            if (!ws->written[s->in[k]]) {
                if (s->op == HFC_OP_CONV2D)
                    r.assign = ws->written[s->in[k]] = 1;
                else
                    zero_gradient(ws, &r.dx[k], s->in[k]);
            }
        }
        if (s->relu || s->residual >= 0)
            backward_fused(&r, s->residual >= 0 ? &dres : NULL);
        hfc_layers[s->op].backward(&r);
    }
}

typedef struct {
    const hfc_engine *e;
    const workspace *ws;
    const float *x;
    float *logits;
    size_t first, stride, groups, n;  /* this job's groups: first, first + stride, ... */
    hfc_loss_grad loss;   /* hfc_engine_input_grad: its loss, context, and */
    void *ctx;
    float *dx;            /* ... the pixels' gradient out; NULL for forward only */
    int tap_slot;         /* hfc_engine_capture: the slot copied to tap, or -1 */
    size_t tap_floats;    /* one image's value there */
    float *tap;
} job;

static void *run_job(void *arg)
{
    const job *j = arg;
    const hfc_model *m = j->e->model;
    size_t in_floats = (size_t)m->channels * m->height * m->width;
    const float *out = j->ws->slots + (size_t)j->e->output_slot * j->e->slot_floats;
    for (size_t g = j->first; g < j->groups; g += j->stride) {
        size_t start = g * j->e->group;
        size_t count = j->n - start < (size_t)j->e->group ? j->n - start : (size_t)j->e->group;
        forward_group(j->e, j->ws, j->x + start * in_floats, (int)count);
        if (j->logits)
            memcpy(j->logits + start * m->n_classes, out, count * m->n_classes * sizeof(float));
        if (j->tap)
            memcpy(j->tap + start * j->tap_floats,
                   j->ws->slots + (size_t)j->tap_slot * j->e->slot_floats,
                   count * j->tap_floats * sizeof(float));
        if (j->dx) {
            float *dlogits = j->ws->grads + (size_t)j->e->output_slot * j->e->slot_floats;
            j->loss(j->ctx, start, count, out, dlogits);
            backward_group(j->e, j->ws, (int)count, j->dx + start * in_floats);
        }
    }
    return NULL;
}

static void run_jobs(hfc_engine *e, const float *x, size_t n, float *logits, hfc_loss_grad loss,
                     void *ctx, float *dx, const job *tap)
{
    size_t groups = (n + e->group - 1) / e->group;
    size_t t = (size_t)e->threads < groups ? (size_t)e->threads : groups;
    job jobs[t ? t : 1];
    pthread_t tid[t ? t : 1];
    int started[t ? t : 1];
    for (size_t k = 0; k < t; k++) {
        jobs[k] = (job){e, &e->ws[k], x, logits, k, t, groups, n, loss, ctx, dx, -1, 0, NULL};
        if (tap) {
            jobs[k].tap_slot = tap->tap_slot;
            jobs[k].tap_floats = tap->tap_floats;
            jobs[k].tap = tap->tap;
        }
        started[k] = k > 0 && pthread_create(&tid[k], NULL, run_job, &jobs[k]) == 0;
    }
    if (t)
        run_job(&jobs[0]);
    for (size_t k = 1; k < t; k++) {
        if (started[k])
            pthread_join(tid[k], NULL);
        else
            run_job(&jobs[k]);  /* no thread could be made: do its share here */
    }
}

void hfc_engine_forward(hfc_engine *e, const float *x, size_t n, float *logits)
{
    run_jobs(e, x, n, logits, NULL, NULL, NULL, NULL);
}

hfc_status hfc_engine_capture(hfc_engine *e, const float *x, size_t n, int node, float *out,
                              hfc_error *err)
{
    const hfc_model *m = e->model;
    if (!e->keep_values)
        return hfc_fail(err, HFC_ERR_USAGE, m->path, "the engine was not planned to keep values");
    if (node < 0 || node >= m->n_nodes)
        return hfc_fail(err, HFC_ERR_USAGE, m->path, "no node %d", node);
    for (int i = 0; i < e->n_steps; i++)
        if (e->steps[i].node == &m->nodes[node]) {
            hfc_shape s = m->nodes[node].out;
            job tap = {.tap_slot = e->steps[i].out, .tap_floats = (size_t)s.c * s.h * s.w, .tap = out};
            run_jobs(e, x, n, NULL, NULL, NULL, NULL, &tap);
            return HFC_OK;
        }
    return hfc_fail(err, HFC_ERR_USAGE, m->path, "node %s has no step of its own",
                    m->nodes[node].name);
}

hfc_status hfc_engine_input_grad(hfc_engine *e, const float *x, size_t n, hfc_loss_grad loss,
                                 void *ctx, float *logits, float *dx, hfc_error *err)
{
    if (!e->gradients)
        return hfc_fail(err, HFC_ERR_USAGE, e->model->path,
                        "the engine was not planned for gradients");
    run_jobs(e, x, n, logits, loss, ctx, dx, NULL);
    return HFC_OK;
}
