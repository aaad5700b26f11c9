/* engine/steps.c - the plan's steps and weights: one step per node that
 * needs one, with its weights folded (BatchNorm into convs, RepVGG's
 * branches merged), its output slot, the conv weights in the tiled
 * kernels' layouts, the group size and the backward convs' weights. */
#include <assert.h>
#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "engine/internal.h"

/* Multiply-adds of one image through node nd. */
static double layer_macs(const hfc_model *m, const hfc_node *nd)
{
    const hfc_shape in = m->nodes[nd->in[0]].out;
    switch (hfc_layers[nd->op].cost) {
    case COST_CONV:
        return (double)nd->out.c * (in.c / nd->groups) * nd->kh * nd->kw * nd->out.h * nd->out.w;
    case COST_LINEAR:
        return (double)nd->out.c * in.c;
    case COST_PROTOTYPE: /* the product of the map with the prototypes */
        return (double)nd->out.c * in.c * in.h * in.w;
    default:
        return 0;
    }
}

/* A conv whose reordered, folded weights are kept after planning: those
 * of the gradient engines and of the SGEMM and portable paths. The tiled
 * paths run on their own layout (wt), made from a copy that plan_conv_weights
 * builds and drops one conv at a time: ResNet-50 would otherwise hold its 94 MB
 * of weights three times (model, folded, wt). */
static int keeps_folded(const hfc_engine *e, conv_path path)
{
    return e->gradients || !(path == CONV_DIRECT || path == CONV_WINOGRAD ||
                             path == CONV_WINOGRAD_S2 || path == CONV_SMALL_GROUPS ||
                             path == CONV_IM2COL);
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
/* A node with no step of its own: a BatchNorm folded into the conv before
 * it (that conv's reordered weights scaled, its bias folded), or one the
 * convs reading it apply (its scale and shift). fw: the folded floats left. */
static float *fold_alias(hfc_engine *e, node_plan *P, int i, float *fw)
{
    const hfc_model *m = e->model;
    const hfc_node *nd = &m->nodes[i];
    if (P[i].fold_into >= 0) {
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
            float sc, t;
            bn_scale_shift(nd, c, &sc, &t);
            b[c] = (cv->bias ? cv->bias[c] : 0.0f) * sc + t + merged_shift(m, cs, c);
        }
        cs->b = b;
        return b + cv->out.c;
    }
    if (P[i].bn_deferred) {
        P[i].bn_scale = fw;
        P[i].bn_shift = fw + nd->out.c;
        for (int c = 0; c < nd->out.c; c++)
            bn_scale_shift(nd, c, &fw[c], &fw[nd->out.c + c]);
        return fw + 2 * nd->out.c;
    }
    return fw;
}

/* What a conv's or a BatchNorm's step takes beyond the node: its weights
 * (the conv's reordered, where kept; the BatchNorm's scale and shift), the
 * branches merged into it, the Add it does, the BatchNorm it applies to its
 * input. Returns the folded floats left. */
static float *weighted_step(hfc_engine *e, const node_plan *P, int i, step *s, float *fw)
{
    const hfc_model *m = e->model;
    const hfc_node *nd = &m->nodes[i];
    if (nd->op == HFC_OP_BATCHNORM) {
        float *sc = fw, *sh = fw + nd->out.c;
        for (int c = 0; c < nd->out.c; c++)
            bn_scale_shift(nd, c, &sc[c], &sh[c]);
        s->w = sc;
        s->b = sh;
        return sh + nd->out.c;
    }
    if (nd->op != HFC_OP_CONV2D)
        return fw;
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
    return fw;
}

/* A free slot for node i's output (never one of its inputs); then the
 * slots of the inputs whose last reader it is are free again (kept for
 * gradients and captured values). */
static int take_slot(hfc_engine *e, const node_plan *P, int i, int *slot_free)
{
    const hfc_node *nd = &e->model->nodes[i];
    int slot = 0;
    while (slot < e->n_slots && !slot_free[slot])
        slot++;
    if (slot == e->n_slots)
        e->n_slots++;
    slot_free[slot] = 0;
    for (int k = 0; k <= nd->n_in && !e->gradients && !e->keep_values; k++) {
        int in = k < nd->n_in ? nd->in[k] : P[i].residual;
        int r = in >= 0 ? root_of(P, in) : -1;
        if (r >= 0 && P[r].last_use == i)
            slot_free[P[r].slot] = 1;
    }
    return slot;
}

hfc_status plan_steps(hfc_engine *e, node_plan *P, hfc_error *err)
{
    const hfc_model *m = e->model;
    const int n = m->n_nodes;
    e->folded = hfc_alloc_big((folded_floats(e, P) + 1) * sizeof(float));
    e->steps = calloc((size_t)n, sizeof *e->steps);
    int *slot_free = calloc((size_t)n, sizeof *slot_free);
    e->slot_offset = calloc((size_t)n + 1, sizeof *e->slot_offset); /* sizes, for now */
    if (!e->folded || !e->steps || !slot_free || !e->slot_offset) {
        free(slot_free);
        return hfc_fail(err, HFC_ERR_NOMEM, m->path, "out of memory planning the model");
    }
    float *fw = e->folded;
    size_t max_floats = 0;
    for (int i = 0; i < n; i++) {
        const hfc_node *nd = &m->nodes[i];
        if (P[i].alias >= 0) {
            fw = fold_alias(e, P, i, fw);
            continue;
        }
        step *s = &e->steps[e->n_steps];
        *s = (step){.node = nd, .op = nd->op, .relu = P[i].fused_relu, .w = nd->weight,
                    .b = nd->bias, .n_in = nd->n_in, .residual = -1};
        for (int k = 0; k < nd->n_in; k++)
            s->in[k] = P[root_of(P, nd->in[k])].slot;
        if (P[i].swish) { /* both inputs are x's buffer now */
            s->op = HFC_OP_SILU;
            s->n_in = 1;
        }
        fw = weighted_step(e, P, i, s, fw);
        P[i].slot = s->out = take_slot(e, P, i, slot_free);
        P[i].step = e->n_steps++;
        size_t floats = (size_t)nd->out.c * nd->out.h * nd->out.w;
        if (floats > max_floats)
            max_floats = floats;
        if (floats > e->slot_offset[s->out])
            e->slot_offset[s->out] = floats;
        if (nd->op != HFC_OP_INPUT)
            e->macs += layer_macs(m, nd);
    }
    free(slot_free);
    e->output_slot = P[root_of(P, m->output)].slot;
    e->slot_floats = max_floats; /* per image until plan_conv_weights scales it by the group */
    return HFC_OK;
}

/* A conv with fewer input channels (the first layer's 3) keeps the
 * product + col2im for its backward: as a forward conv with 3 output
 * channels it would fill one vector of 16 lanes with 3 (14% of a margin
 * run's time on preact20-bn). */
#define BACK_DIRECT_MIN_CIN 16

/* Images per product of a Winograd conv whose output has `tiles` 4x4 blocks
 * an image: as many as make WINOGRAD_ROWS rows, within the group. */
static int winograd_chunk(const hfc_engine *e, int tiles)
{
    return tiles >= WINOGRAD_ROWS                ? 1
           : WINOGRAD_ROWS / tiles < e->group ? WINOGRAD_ROWS / tiles
                                              : e->group;
}

/* A conv whose backward product runs only over the taps inside the image
 * (hfc_dx_inside_taps: VGG's 2x2 maps) reads W (cout, kh * kw * cin) in
 * panels of its own (wt_back), like the forward's: each tile then streams
 * its columns from adjacent addresses instead of one piece a row of W.
 * cin a multiple of 64: a run of taps starts at a panel. */
static int back_inside_panels(const hfc_model *m, const hfc_node *nd)
{
    const hfc_shape in = m->nodes[nd->in[0]].out;
    return hfc_isa() >= HFC_ISA_AVX2 && nd->groups == 1 && nd->dh == 1 && nd->dw == 1 &&
           in.c % 64 == 0 &&
           hfc_inside_taps_pay(in.h, in.w, nd->kh, nd->kw, nd->sh, nd->sw, nd->ph, nd->pw,
                               nd->out.h, nd->out.w);
}

/* How conv step cs's d/dx runs (plan_backward_convs): *weights grows by the
 * floats of its own weights, *scratch is what it needs per call. */
static conv_path backward_path(const hfc_engine *e, step *cs, int cin, hfc_conv_choice choice,
                               size_t *weights, size_t *scratch)
{
    const hfc_node *nd = cs->node;
    const int cout = nd->out.c;
    if (hfc_isa() < HFC_ISA_AVX2 || choice == HFC_CONV_GEMM)
        return CONV_GEMM; /* SGEMM + col2im */
    const int tiles = hfc_winograd_tiles(nd->out.h, nd->out.w);
    if (choice != HFC_CONV_DIRECT && winograd_s2(nd, cin) && cin % 16 == 0 &&
        tiles * e->group >= WINOGRAD_MIN_ROWS) {
        *weights += 36 * (size_t)cin * cout;
        *scratch = hfc_winograd_s2_scratch(nd->out.h, nd->out.w, cout, cin,
                                           winograd_chunk(e, tiles) * tiles);
        return CONV_WINOGRAD_S2;
    }
    if (nd->groups != 1 || nd->sh != 1 || nd->sw != 1 || nd->dh != 1 || nd->dw != 1 ||
        nd->kh % 2 == 0 || nd->kw % 2 == 0 || nd->ph != nd->kh / 2 || nd->pw != nd->kw / 2 ||
        cin < BACK_DIRECT_MIN_CIN)
        return CONV_IM2COL; /* the tiled product + col2im */
    /* as plan_conv_paths and plan_group would choose for this conv: the
     * product + col2im where many weights meet few pixels or few Winograd
     * rows (VGG-16's 2x2 and 4x4 maps: its single-row direct tiles were 29%
     * of a backward pass) */
    const int big = (double)cin * nd->kh * nd->kw * cout >= IM2COL_WEIGHTS;
    if (big && nd->out.h * nd->out.w < 16)
        return CONV_IM2COL;
    int wino = choice != HFC_CONV_DIRECT && nd->kh == 3 && nd->kw == 3 &&
               winograd_fits(nd->out.h, nd->out.w) && cout >= 16 && cin % 16 == 0 &&
               !(big && tiles * e->group < WINOGRAD_MIN_ROWS);
    if (big && !wino)
        return CONV_IM2COL;
    *weights += (wino ? 36 : (size_t)nd->kh * nd->kw) * cin * cout;
    *scratch = wino ? hfc_conv2d_winograd_scratch(nd->out.h, nd->out.w, cout, cin,
                                                  cs->chunk ? cs->chunk : 1)
                    : (size_t)(nd->out.h + 2 * nd->ph) * (nd->out.w + 2 * nd->pw) * cout;
    return wino ? CONV_WINOGRAD : CONV_DIRECT;
}

/* plan_backward_convs (gradient engines): a stride-1 conv with 'same'
 * padding has dx = conv(dy, W') with W'[ci][ky][kx][co] = W[co][kh-1-ky][kw-1-kx][ci]
 * and the same padding, so its backward runs on the forward's tiled
 * kernels (Winograd where the forward's conditions hold with the channels
 * swapped, else direct), adding into dx through the kernels' residual; a
 * 3x3 stride-2 conv with padding 1 runs the transposed form of its forward
 * split (CONV_WINOGRAD_S2) on the same flipped kernel. */
hfc_status plan_backward_convs(hfc_engine *e, hfc_conv_choice choice, hfc_error *err)
{
    const hfc_model *m = e->model;
    size_t total = 0, largest = 0; /* largest: the flipped kernel of a Winograd backward */
    float *flipped = NULL;
    for (int pass = 0; pass < 2; pass++) { /* 0: choose and count, 1: fill */
        float *at = e->back_weights;
        for (int k = 0; k < e->n_steps; k++) {
            step *cs = &e->steps[k];
            const hfc_node *nd = cs->node;
            if (nd->op != HFC_OP_CONV2D)
                continue;
            const int cin = m->nodes[nd->in[0]].out.c, cout = nd->out.c;
            if (pass == 0) {
                size_t need = 0;
                cs->back = backward_path(e, cs, cin, choice, &total, &need);
                if ((cs->back == CONV_WINOGRAD || cs->back == CONV_WINOGRAD_S2) &&
                    (size_t)cin * nd->kh * nd->kw * cout > largest)
                    largest = (size_t)cin * nd->kh * nd->kw * cout;
                if (cs->back == CONV_IM2COL && back_inside_panels(m, nd))
                    total += (size_t)nd->kh * nd->kw * cin * cout;
                e->col_floats = need > e->col_floats ? need : e->col_floats;
                continue;
            }
            const int kh = nd->kh, kw = nd->kw;
            const float *w = cs->w; /* (cout, kh, kw, cin) */
            if (cs->back == CONV_IM2COL && back_inside_panels(m, nd)) {
                const int k = kh * kw * cin; /* W as it is, (cout, k), in panels */
                for (int o = 0; o < cout; o++)
                    for (int t = 0; t < k; t++)
                        at[hfc_panel_offset(cout, k, o, t)] = w[(size_t)o * k + t];
                cs->wt_back = at;
                at += (size_t)k * cout;
                continue;
            }
            if (cs->back == CONV_GEMM || cs->back == CONV_IM2COL)
                continue;
            if (cs->back == CONV_WINOGRAD || cs->back == CONV_WINOGRAD_S2) {
                for (int ci = 0; ci < cin; ci++) /* (cin, kh, kw, cout) */
                    for (int ky = 0; ky < kh; ky++)
                        for (int kx = 0; kx < kw; kx++)
                            for (int co = 0; co < cout; co++)
                                flipped[((size_t)(ci * kh + ky) * kw + kx) * cout + co] =
                                    w[((size_t)(co * kh + kh - 1 - ky) * kw + kw - 1 - kx) * cin + ci];
                if (cs->back == CONV_WINOGRAD_S2) {
                    hfc_winograd_s2_weights(flipped, cout, cin, at, e->threads);
                    cs->chunk = winograd_chunk(e, hfc_winograd_tiles(nd->out.h, nd->out.w));
                } else {
                    hfc_winograd_weights(flipped, cout, cin, at, e->threads);
                }
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
        if (pass == 0 && total && !(e->back_weights = hfc_alloc_big(total * sizeof(float))))
            return hfc_fail(err, HFC_ERR_NOMEM, m->path, "out of memory for conv weights");
        if (pass == 0 && largest && !(flipped = hfc_alloc_big(largest * sizeof *flipped)))
            return hfc_fail(err, HFC_ERR_NOMEM, m->path, "out of memory for conv weights");
    }
    free(flipped);
    return HFC_OK;
}

/* plan_gradient_buffers (gradient engines): the backward pass runs the
 * steps in reverse; a value's gradient is first written by the last of its
 * readers and last read by its producer, after which its buffer takes the
 * next gradient that needs one. A pass then touches a few buffers over and
 * over instead of one per value (preact20-bn: 29 slots of 256 KB each in
 * 4-image groups). */
hfc_status plan_gradient_buffers(hfc_engine *e, hfc_error *err)
{
    int *buf = malloc((size_t)e->n_slots * sizeof *buf), *spare = malloc((size_t)e->n_slots * sizeof *spare);
    if (!buf || !spare) {
        free(buf), free(spare);
        return hfc_fail(err, HFC_ERR_NOMEM, e->model->path, "out of memory planning gradients");
    }
    int n_spare = 0, used = 0;
    for (int k = 0; k < e->n_slots; k++)
        buf[k] = -1;
#define TAKE(slot) (buf[slot] >= 0 ? 0 : (buf[slot] = n_spare ? spare[--n_spare] : used++))
    TAKE(e->output_slot);
    for (int i = e->n_steps - 1; i >= 0; i--) {
        const step *s = &e->steps[i];
        TAKE(s->out);
        if (s->residual >= 0)
            TAKE(s->residual);
        for (int k = 0; k < s->n_in; k++)
            TAKE(s->in[k]);
        spare[n_spare++] = buf[s->out]; /* its producer is done with it */
    }
#undef TAKE
    free(spare);
    e->grad_buffer = buf;
    e->n_grad_buffers = used;
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
                     hfc_winograd_tiles(nd->out.h, nd->out.w) * 2 * HFC_ENGINE_GROUP < WINOGRAD_ROWS;
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
    /* Large images: fewer per group, so that a step's input and output stay
     * in the last-level cache (torchvision's models on 224 x 224 images, 2
     * threads, Zen 5, from 4 a group: EfficientNet-B0 3.36 -> 2.98 s for 300
     * images, MobileNetV3-Large 1.75 -> 1.52 s; ResNet-50 5.1 -> 4.6 s and
     * DenseNet-121 3.9 -> 3.5 s for 100, ConvNeXt-T 8.4 -> 7.6 s; peak RSS
     * down by a third). */
    while (e->group > 1 && (size_t)e->group * e->slot_floats > LARGE_GROUP_FLOATS)
        e->group /= 2;
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
        if ((cs->path == CONV_WINOGRAD || cs->path == CONV_WINOGRAD_S2) &&
            !cs->in_scale && /* im2col reads x as it is */
            hfc_winograd_tiles(nd->out.h, nd->out.w) * e->group < WINOGRAD_MIN_ROWS &&
            (double)m->nodes[nd->in[0]].out.c * 9 * nd->out.c >= IM2COL_WEIGHTS)
            cs->path = CONV_IM2COL;
    }
}

/* A linear layer with this many weights runs the tiled product on W^T in
 * panels (its wt): OpenBLAS packed W again for each group of a few images
 * (MobileNetV3-Large's 960 x 1280 classifier: 17% of its time in
 * sgemm_incopy and its kernel). */
static int tiled_linear(const hfc_engine *e, const step *s)
{
    return s->node->op == HFC_OP_LINEAR && hfc_isa() >= HFC_ISA_AVX2 &&
           (double)e->model->nodes[s->node->in[0]].out.c * s->node->out.c >= IM2COL_WEIGHTS;
}

/* The floats the tiled convs' (and linear layers') own weight layouts take
 * (*layouts), and the largest im2col (or backward dcol) scratch of one
 * image (*im2col). */
static void conv_layout_sizes(const hfc_engine *e, size_t *layouts, size_t *im2col)
{
    const hfc_model *m = e->model;
    *layouts = *im2col = 0;
    for (int k = 0; k < e->n_steps; k++) {
        const step *cs = &e->steps[k];
        const hfc_node *nd = cs->node;
        if (tiled_linear(e, cs))
            *layouts += (size_t)m->nodes[nd->in[0]].out.c * nd->out.c;
        if (nd->op == HFC_OP_PROTOTYPE) {
            const hfc_shape in = m->nodes[nd->in[0]].out;
            size_t need = hfc_prototype_scratch(in.h * in.w, nd->out.c);
            *im2col = need > *im2col ? need : *im2col;
        }
        if (nd->op != HFC_OP_CONV2D)
            continue;
        size_t cin = (size_t)m->nodes[nd->in[0]].out.c;
        if (cs->path == CONV_DIRECT || cs->path == CONV_IM2COL || groups_layout(m, cs))
            *layouts += cin * nd->kh * nd->kw * nd->out.c / nd->groups;
        else if (cs->path == CONV_WINOGRAD || cs->path == CONV_WINOGRAD_S2)
            *layouts += 36 * cin * nd->out.c;
        if (cs->path == CONV_GEMM || cs->path == CONV_IM2COL) {
            size_t col = cin * nd->kh * nd->kw * nd->out.h * nd->out.w;
            *im2col = col > *im2col ? col : *im2col;
        }
        if (e->gradients) { /* the backward pass's dcol, as im2col's col */
            size_t col = cin / nd->groups * nd->kh * nd->kw * nd->out.h * nd->out.w;
            *im2col = col > *im2col ? col : *im2col;
        }
    }
}

/* Conv step cs's weights w (folded, (cout, kh, kw, cin/groups)) in its
 * kernel's layout at wt; returns the floats written, and raises *scratch to
 * what the kernel needs per call. */
static size_t conv_layout(const hfc_engine *e, step *cs, const float *w, float *wt,
                          size_t *scratch)
{
    const hfc_node *nd = cs->node;
    const hfc_shape in = e->model->nodes[nd->in[0]].out;
    size_t kk = (size_t)in.c * nd->kh * nd->kw;
    cs->wt = wt;
    if (groups_layout(e->model, cs)) { /* (c, kh, kw, g) -> (kh, kw, g, c) */
        const size_t taps = (size_t)nd->kh * nd->kw, g = (size_t)in.c / nd->groups;
        for (int c = 0; c < nd->out.c; c++)
            for (size_t t = 0; t < taps; t++)
                for (size_t j = 0; j < g; j++)
                    wt[(t * g + j) * nd->out.c + c] = w[(c * taps + t) * g + j];
        return taps * g * nd->out.c;
    }
    if (cs->path == CONV_DIRECT || cs->path == CONV_IM2COL) {
        for (int o = 0; o < nd->out.c; o++)
            for (size_t t = 0; t < kk; t++)
                wt[hfc_panel_offset((int)kk, nd->out.c, (int)t, o)] = w[o * kk + t];
        size_t padded = (size_t)(in.h + 2 * nd->ph) * (in.w + 2 * nd->pw) * in.c;
        if (nd->kh == 1 && nd->kw == 1 && nd->sh == 1 && nd->sw == 1 && !nd->ph && !nd->pw &&
            cs->in_scale)
            padded *= (size_t)e->group; /* hfc_conv2d_direct scales the whole group first */
        if (cs->path == CONV_DIRECT)
            *scratch = padded > *scratch ? padded : *scratch;
        return kk * nd->out.c;
    }
    int tiles = hfc_winograd_tiles(nd->out.h, nd->out.w);
    cs->chunk = winograd_chunk(e, tiles);
    size_t need;
    if (cs->path == CONV_WINOGRAD_S2) {
        hfc_winograd_s2_weights(w, in.c, nd->out.c, wt, e->threads);
        need = hfc_winograd_s2_scratch(in.h, in.w, in.c, nd->out.c, cs->chunk * tiles);
    } else {
        hfc_winograd_weights(w, in.c, nd->out.c, wt, e->threads);
        need = hfc_conv2d_winograd_scratch(in.h, in.w, in.c, nd->out.c, cs->chunk);
    }
    *scratch = need > *scratch ? need : *scratch;
    return 36 * (size_t)in.c * nd->out.c;
}

/* The tiled convs' weights in their own layouts, the group size, and the
 * scratch (col) the convs need. */
hfc_status plan_conv_weights(hfc_engine *e, hfc_error *err)
{
    const hfc_model *m = e->model;
    size_t nt, im2col, scratch = 0;  /* im2col: per image; scratch: per call */
    plan_group(e);
    conv_layout_sizes(e, &nt, &im2col);
    if (im2col > ((size_t)1 << 26))
        return hfc_fail(err, HFC_ERR_MODEL, m->path,
                        "a convolution needs %zu MB of im2col scratch per image (at most 256)",
                        im2col * sizeof(float) >> 20);
    e->col_floats = e->group * im2col;
    e->transposed = nt ? hfc_alloc_big(nt * sizeof(float)) : NULL;
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
        if (tiled_linear(e, cs)) { /* W (out, in) -> W^T (in, out) in panels */
            const int in = m->nodes[nd->in[0]].out.c, out = nd->out.c;
            for (int o = 0; o < out; o++)
                for (int t = 0; t < in; t++)
                    wt[hfc_panel_offset(in, out, t, o)] = nd->weight[(size_t)o * in + t];
            cs->wt = wt;
            wt += (size_t)in * out;
            continue;
        }
        if (nd->op != HFC_OP_CONV2D ||
            (cs->path != CONV_DIRECT && cs->path != CONV_WINOGRAD &&
             cs->path != CONV_WINOGRAD_S2 && cs->path != CONV_IM2COL &&
             !groups_layout(m, cs)))
            continue;
        const float *w = cs->w;
        if (!w) {  /* folded as plan_steps folds the kept ones */
            reorder_conv_weights(nd, m->nodes[nd->in[0]].out.c / nd->groups, copy);
            if (cs->fold_bn)
                fold_scale(cs->fold_bn, conv_weights(m, nd), copy);
            merge_branches(m, cs, copy);
            w = copy;
        }
        wt += conv_layout(e, cs, w, wt, &scratch);
        if (scratch > e->col_floats)
            e->col_floats = scratch;
    }
    free(copy);
    e->slot_floats *= (size_t)e->group;
    size_t at = 0; /* the slots' sizes (per image) become offsets, 64-byte aligned */
    for (int k = 0; k <= e->n_slots; k++) {
        const size_t floats = k < e->n_slots ? e->slot_offset[k] * e->group : 0;
        e->slot_offset[k] = at;
        at += (floats + 15) / 16 * 16;
    }
    return HFC_OK;
}
