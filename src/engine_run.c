/* engine_run.c - plan a model once, then run it on batches of images.
 *
 * Activations are NHWC (engine_ops.h); conv weights are reordered to
 * (cout, kh, kw, cin) to match.
 * Planning (hfc_engine_new), done once per model:
 *   - a BatchNorm that is the only consumer of a conv is folded into it:
 *     W' = W * s, b' = b * s + t with s = gamma / sqrt(var + eps),
 *     t = beta - mean * s; other BatchNorms become a per-channel s, t;
 *   - a ReLU whose producer (conv, bn, add, linear) feeds nothing else is
 *     fused into it; flatten is free (same memory) when its input is 1x1,
 *     else a step that puts the values in PyTorch's (c, h, w) order;
 *   - with the AVX-512 convs (below): an Add one of whose inputs is such a
 *     conv, feeding nothing else, whose other input is computed before it,
 *     is done by the conv as it writes its output; a BatchNorm (+ ReLU)
 *     that is not folded and whose readers are all such convs is done by
 *     each of them as it reads its input (the pre-activation blocks), so
 *     neither is a pass over memory of its own. Results are bit for bit
 *     those of the separate steps;
 *   - every remaining step gets an output slot; a slot is reused once the
 *     last reader of its value has run, so a deep net needs a few slots.
 *   - each conv gets its algorithm (conv_path): on a CPU with AVX-512F, a
 *     conv with a multiple of 16 output channels runs Winograd F(4x4, 3x3)
 *     when it is 3x3, stride 1, padding 1, with output sides multiples of 4
 *     and at least 16 input channels, else the direct kernel; other convs,
 *     and every conv on other CPUs, run im2col + SGEMM. HFC_CONV=direct in
 *     the environment rules out Winograd, HFC_CONV=gemm the AVX-512 kernels.
 * Running: images go through in groups of e->group; each thread takes
 * whole groups and runs every step on a group with its own slots and
 * scratch; nothing is allocated.
 */
#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "engine_ops.h"
#include "hfc.h"

typedef enum { CONV_GEMM, CONV_DIRECT, CONV_WINOGRAD } conv_path;

typedef struct {
    const hfc_node *node;  /* attributes and shapes */
    hfc_op op;
    int relu;              /* max(y, 0) fused into this step */
    int in[2];             /* slots read */
    int out;               /* slot written */
    const float *w, *b;    /* conv/linear weights (folded), bn scale/shift */
    conv_path path;
    int chunk;             /* CONV_WINOGRAD: images per product */
    int residual;          /* conv: slot of an Add's other input done by the conv, or -1 */
    const float *in_scale, *in_shift;  /* conv: a BatchNorm done on its input, or NULL */
    int in_relu;           /* ... followed by a ReLU */
    const float *wt;       /* CONV_DIRECT: w transposed; CONV_WINOGRAD: transformed */
} step;

typedef struct {
    float *slots;  /* (n_slots, slot_floats): each slot holds a group */
    float *col;    /* im2col scratch for a group */
} workspace;

struct hfc_engine {
    const hfc_model *model;
    step *steps;
    int n_steps;
    int n_slots;
    size_t slot_floats;   /* a group's largest activation */
    size_t col_floats;    /* scratch: im2col for a group, or an AVX-512 conv's */
    int group;            /* images per forward_group: HFC_ENGINE_GROUP, or 4 when no
                             conv runs im2col + SGEMM (the activations stay in L2) */
    int output_slot;
    float *folded;        /* weights made at planning, one allocation */
    float *transposed;    /* the AVX-512 convs' wt, one allocation */
    int threads;
    workspace *ws;        /* (threads) */
    double macs;          /* multiply-adds per image */
};

/* The node whose buffer node i's value lives in. */
static int root_of(const int *alias, int i)
{
    while (alias[i] >= 0)
        i = alias[i];
    return i;
}

/* Count floats for the weights made at planning: every conv's reordered
 * weights, a bias per folded BatchNorm, scale and shift per other one. */
static size_t folded_floats(const hfc_model *m, const int *fold_into)
{
    size_t n = 0;
    for (int i = 1; i < m->n_nodes; i++) {
        const hfc_node *nd = &m->nodes[i];
        if (nd->op == HFC_OP_CONV2D)
            n += (size_t)nd->out.c * m->nodes[nd->in[0]].out.c * nd->kh * nd->kw;
        else if (nd->op == HFC_OP_BATCHNORM)
            n += (fold_into[i] >= 0 ? 1 : 2) * (size_t)nd->out.c;
    }
    return n;
}

/* w (cout, cin, kh, kw) -> out (cout, kh, kw, cin) */
static void reorder_conv_weights(const hfc_node *cv, int cin, float *out)
{
    for (int o = 0; o < cv->out.c; o++)
        for (int c = 0; c < cin; c++)
            for (int ky = 0; ky < cv->kh; ky++)
                for (int kx = 0; kx < cv->kw; kx++)
                    out[(((size_t)o * cv->kh + ky) * cv->kw + kx) * cin + c] =
                        cv->weight[(((size_t)o * cin + c) * cv->kh + ky) * cv->kw + kx];
}

static void bn_scale_shift(const hfc_node *bn, int c, float *s, float *t)
{
    double scale = (bn->weight ? bn->weight[c] : 1.0) / sqrt((double)bn->var[c] + bn->eps);
    *s = (float)scale;
    *t = (float)((bn->bias ? bn->bias[c] : 0.0) - bn->mean[c] * scale);
}

/* 1 when every value from node p down to its root (through aliases) has
 * exactly one reader. */
static int single_reader_chain(const int *consumers, const int *alias, int p)
{
    for (;; p = alias[p]) {
        if (consumers[p] != 1)
            return 0;
        if (alias[p] < 0)
            return 1;
    }
}

/* Which convs may run our AVX-512 kernels (avx512), and Winograd among
 * them: the CPU, less what HFC_CONV in the environment rules out. */
static void conv_flags(int *avx512, int *winograd)
{
    const char *env = getenv("HFC_CONV");
    *avx512 = hfc_conv_avx512_supported() && !(env && !strcmp(env, "gemm"));
    *winograd = !(env && !strcmp(env, "direct"));
}

static conv_path choose_conv_path(const hfc_model *m, const hfc_node *nd, int avx512,
                                  int winograd)
{
    const hfc_shape in = m->nodes[nd->in[0]].out;
    if (!avx512 || nd->out.c % 16)
        return CONV_GEMM;
    if (winograd && nd->kh == 3 && nd->kw == 3 && nd->sh == 1 && nd->sw == 1 && nd->ph == 1 &&
        nd->pw == 1 && nd->out.h % 4 == 0 && nd->out.w % 4 == 0 && in.c >= 16)
        return CONV_WINOGRAD;
    return CONV_DIRECT;
}

/* Pick each conv's algorithm and make its weights for it (after BatchNorm
 * folding); then the group size and the scratch (col) the convs need. */
static hfc_status plan_conv_paths(hfc_engine *e, int avx512, int winograd, hfc_error *err)
{
    const hfc_model *m = e->model;
    size_t nt = 0, im2col = 0, scratch = 0;  /* im2col: per image; scratch: per call */
    e->group = 4;
    for (int k = 0; k < e->n_steps; k++) {
        step *cs = &e->steps[k];
        const hfc_node *nd = cs->node;
        if (nd->op != HFC_OP_CONV2D)
            continue;
        cs->path = choose_conv_path(m, nd, avx512, winograd);
        size_t cin = (size_t)m->nodes[nd->in[0]].out.c;
        if (cs->path == CONV_DIRECT) {
            nt += cin * nd->kh * nd->kw * nd->out.c;
        } else if (cs->path == CONV_WINOGRAD) {
            nt += 36 * cin * nd->out.c;
        } else {
            size_t col = cin * nd->kh * nd->kw * nd->out.h * nd->out.w;
            im2col = col > im2col ? col : im2col;
            e->group = HFC_ENGINE_GROUP;  /* bigger GEMMs */
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
    float *wt = e->transposed;
    for (int k = 0; k < e->n_steps; k++) {
        step *cs = &e->steps[k];
        const hfc_node *nd = cs->node;
        const hfc_shape in = m->nodes[nd->in[0]].out;
        size_t kk = (size_t)in.c * nd->kh * nd->kw;
        if (nd->op != HFC_OP_CONV2D || cs->path == CONV_GEMM)
            continue;
        if (cs->path == CONV_DIRECT) {
            for (int o = 0; o < nd->out.c; o++)
                for (size_t t = 0; t < kk; t++)
                    wt[t * nd->out.c + o] = cs->w[o * kk + t];
            size_t padded = (size_t)(in.h + 2 * nd->ph) * (in.w + 2 * nd->pw) * in.c;
            scratch = padded > scratch ? padded : scratch;
        } else {
            hfc_winograd_weights(cs->w, in.c, nd->out.c, wt);
            kk = 36 * (size_t)in.c;
            int tiles = (nd->out.h / 4) * (nd->out.w / 4);
            cs->chunk = tiles >= 16 ? 1 : 16 / tiles < e->group ? 16 / tiles : e->group;
            size_t need = hfc_conv2d_winograd_scratch(in.h, in.w, in.c, nd->out.c, cs->chunk);
            scratch = need > scratch ? need : scratch;
        }
        cs->wt = wt;
        wt += kk * nd->out.c;
        if (scratch > e->col_floats)
            e->col_floats = scratch;
    }
    return HFC_OK;
}

hfc_status hfc_engine_new(hfc_engine **out, const hfc_model *m, int threads, hfc_error *err)
{
    *out = NULL;
    int n = m->n_nodes;
    hfc_engine *e = calloc(1, sizeof *e);
    int *consumers = calloc((size_t)n, sizeof *consumers);
    int *alias = malloc((size_t)n * sizeof *alias);
    int *fold_into = malloc((size_t)n * sizeof *fold_into);  /* bn -> conv */
    int *fused_relu = calloc((size_t)n, sizeof *fused_relu);
    int *last_use = calloc((size_t)n, sizeof *last_use);
    int *slot_of = malloc((size_t)n * sizeof *slot_of);
    int *slot_free = calloc((size_t)n, sizeof *slot_free);
    int *step_of = malloc((size_t)n * sizeof *step_of);
    int *residual_of = malloc((size_t)n * sizeof *residual_of);  /* conv -> Add's other input */
    int *add_into = malloc((size_t)n * sizeof *add_into);        /* Add -> the conv doing it */
    int *bn_deferred = calloc((size_t)n, sizeof *bn_deferred);   /* bn done by its readers */
    float **bn_params = calloc((size_t)n, sizeof *bn_params);    /* ... its scale, shift */
    hfc_status st = HFC_OK;
    if (!e || !consumers || !alias || !fold_into || !fused_relu || !last_use || !slot_of ||
        !slot_free || !step_of || !residual_of || !add_into || !bn_deferred || !bn_params) {
        st = hfc_fail(err, HFC_ERR_NOMEM, m->path, "out of memory planning the model");
        goto done;
    }
    e->model = m;
    openblas_set_num_threads(1);  /* we thread across images ourselves */
    int avx512, winograd;
    conv_flags(&avx512, &winograd);

    for (int i = 0; i < n; i++) {
        alias[i] = fold_into[i] = residual_of[i] = add_into[i] = -1;
        for (int k = 0; k < m->nodes[i].n_in; k++)
            consumers[m->nodes[i].in[k]]++;
    }
    consumers[m->output]++;  /* the logits are read after the run */

    /* Fusion: decide which nodes are absorbed into an earlier step. */
    for (int i = 1; i < n; i++) {
        const hfc_node *nd = &m->nodes[i];
        int src = nd->in[0];
        if (nd->op == HFC_OP_FLATTEN && m->nodes[src].out.h * m->nodes[src].out.w == 1) {
            alias[i] = src;
        } else if (nd->op == HFC_OP_BATCHNORM && m->nodes[src].op == HFC_OP_CONV2D &&
                   consumers[src] == 1 && alias[src] < 0 && !fused_relu[src]) {
            fold_into[i] = src;
            alias[i] = src;
        } else if (nd->op == HFC_OP_RELU) {
            int r = root_of(alias, src);
            hfc_op rop = m->nodes[r].op;
            if (single_reader_chain(consumers, alias, src) && !fused_relu[r] &&
                (rop == HFC_OP_CONV2D || rop == HFC_OP_BATCHNORM || rop == HFC_OP_ADD ||
                 rop == HFC_OP_LINEAR)) {
                fused_relu[r] = 1;
                alias[i] = src;
            }
        } else if (nd->op == HFC_OP_ADD) {  /* done by the conv of either input */
            for (int side = 0; side < 2 && alias[i] < 0; side++) {
                int a = nd->in[side], b = nd->in[1 - side], r = root_of(alias, a);
                if (m->nodes[r].op != HFC_OP_CONV2D || fused_relu[r] || residual_of[r] >= 0 ||
                    choose_conv_path(m, &m->nodes[r], avx512, winograd) == CONV_GEMM ||
                    !single_reader_chain(consumers, alias, a) || root_of(alias, b) >= r)
                    continue;
                residual_of[r] = b;
                add_into[i] = r;
                alias[i] = a;
            }
        }
    }

    /* A BatchNorm read only by AVX-512 convs is done by them as they read. */
    for (int i = 1; i < n; i++) {
        const hfc_node *nd = &m->nodes[i];
        if (nd->op != HFC_OP_BATCHNORM || alias[i] >= 0 || root_of(alias, m->output) == i)
            continue;
        int readers = 0, all_convs = 1;
        for (int j = i + 1; j < n && all_convs; j++) {
            const hfc_node *rd = &m->nodes[j];
            if (alias[j] >= 0 && add_into[j] < 0)
                continue;  /* on a chain of aliases, not a reader of its own */
            for (int k = 0; k < rd->n_in; k++)
                if (root_of(alias, rd->in[k]) == i) {
                    readers++;
                    all_convs &= alias[j] < 0 && rd->op == HFC_OP_CONV2D &&
                                 choose_conv_path(m, rd, avx512, winograd) != CONV_GEMM;
                }
        }
        if (readers && all_convs) {
            bn_deferred[i] = 1;
            alias[i] = nd->in[0];
        }
    }

    /* Folded weights. */
    size_t nf = folded_floats(m, fold_into);
    e->folded = malloc((nf ? nf : 1) * sizeof(float));
    if (!e->folded) {
        st = hfc_fail(err, HFC_ERR_NOMEM, m->path, "out of memory for folded weights");
        goto done;
    }
    e->steps = calloc((size_t)n, sizeof *e->steps);
    if (!e->steps) {
        st = hfc_fail(err, HFC_ERR_NOMEM, m->path, "out of memory planning the model");
        goto done;
    }

    /* Liveness: the last step that reads each root buffer (an Add done by
     * a conv reads at the conv). */
    for (int i = 1; i < n; i++) {
        int at = add_into[i] >= 0 ? add_into[i] : i;
        for (int k = 0; k < m->nodes[i].n_in; k++) {
            int r = root_of(alias, m->nodes[i].in[k]);
            if (last_use[r] < at)
                last_use[r] = at;
        }
    }
    last_use[root_of(alias, m->output)] = n;  /* never released */

    /* Steps and slots, in node order. */
    float *fw = e->folded;
    size_t max_floats = 0;
    for (int i = 0; i < n; i++) {
        const hfc_node *nd = &m->nodes[i];
        step_of[i] = -1;
        if (alias[i] >= 0) {
            if (fold_into[i] >= 0) {  /* scale the conv's reordered weights, fold the bias */
                step *cs = &e->steps[step_of[fold_into[i]]];
                const hfc_node *cv = cs->node;
                size_t per = (size_t)m->nodes[cv->in[0]].out.c * cv->kh * cv->kw;
                float *w = (float *)cs->w, *b = fw;
                for (int c = 0; c < cv->out.c; c++) {
                    float s, t;
                    bn_scale_shift(nd, c, &s, &t);
                    for (size_t k = 0; k < per; k++)
                        w[c * per + k] *= s;
                    b[c] = (cv->bias ? cv->bias[c] : 0.0f) * s + t;
                }
                cs->b = b;
                fw = b + cv->out.c;
            } else if (bn_deferred[i]) {
                bn_params[i] = fw;
                for (int c = 0; c < nd->out.c; c++)
                    bn_scale_shift(nd, c, &fw[c], &fw[nd->out.c + c]);
                fw += 2 * nd->out.c;
            }
            continue;
        }
        step *s = &e->steps[e->n_steps];
        s->node = nd;
        s->op = nd->op;
        s->relu = fused_relu[i];
        s->w = nd->weight;
        s->b = nd->bias;
        for (int k = 0; k < nd->n_in; k++)
            s->in[k] = slot_of[root_of(alias, nd->in[k])];
        if (nd->op == HFC_OP_CONV2D) {
            int cin = m->nodes[nd->in[0]].out.c;
            reorder_conv_weights(nd, cin, fw);
            s->w = fw;
            fw += (size_t)nd->out.c * cin * nd->kh * nd->kw;
            s->residual = residual_of[i] >= 0 ? slot_of[root_of(alias, residual_of[i])] : -1;
            for (int p = nd->in[0]; alias[p] >= 0; p = alias[p])
                if (bn_deferred[p]) {
                    s->in_scale = bn_params[p];
                    s->in_shift = bn_params[p] + m->nodes[p].out.c;
                    s->in_relu = fused_relu[p];
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
        slot_of[i] = s->out = slot;
        step_of[i] = e->n_steps++;
        /* Release the inputs whose last reader this was. */
        for (int k = 0; k <= nd->n_in; k++) {
            int in = k < nd->n_in ? nd->in[k] : residual_of[i];
            int r = in >= 0 ? root_of(alias, in) : -1;
            if (r >= 0 && last_use[r] == i)
                slot_free[slot_of[r]] = 1;
        }
        size_t floats = (size_t)nd->out.c * nd->out.h * nd->out.w;
        if (floats > max_floats)
            max_floats = floats;
        if (nd->op == HFC_OP_CONV2D) {
            size_t cin = (size_t)m->nodes[nd->in[0]].out.c;
            e->macs += (double)nd->out.c * cin * nd->kh * nd->kw * nd->out.h * nd->out.w;
        } else if (nd->op == HFC_OP_LINEAR) {
            e->macs += (double)nd->out.c * m->nodes[nd->in[0]].out.c;
        }
    }
    st = plan_conv_paths(e, avx512, winograd, err);
    if (st)
        goto done;
    e->output_slot = slot_of[root_of(alias, m->output)];
    e->slot_floats = e->group * max_floats;

    e->threads = threads < 1 ? 1 : threads;
    e->ws = calloc((size_t)e->threads, sizeof *e->ws);
    if (!e->ws) {
        st = hfc_fail(err, HFC_ERR_NOMEM, m->path, "out of memory for thread buffers");
        goto done;
    }
    for (int t = 0; t < e->threads; t++) {
        e->ws[t].slots = hfc_alloc_big((size_t)e->n_slots * e->slot_floats * sizeof(float));
        e->ws[t].col = hfc_alloc_big(e->col_floats * sizeof(float));
        if (!e->ws[t].slots || !e->ws[t].col) {
            st = hfc_fail(err, HFC_ERR_NOMEM, m->path, "out of memory for activations");
            goto done;
        }
    }
done:
    free(consumers);
    free(alias);
    free(fold_into);
    free(fused_relu);
    free(last_use);
    free(slot_of);
    free(slot_free);
    free(step_of);
    free(residual_of);
    free(add_into);
    free(bn_deferred);
    free(bn_params);
    if (st) {
        hfc_engine_free(e);
        return st;
    }
    *out = e;
    return HFC_OK;
}

void hfc_engine_free(hfc_engine *e)
{
    if (!e)
        return;
    for (int t = 0; e->ws && t < e->threads; t++) {
        free(e->ws[t].slots);
        free(e->ws[t].col);
    }
    free(e->ws);
    free(e->steps);
    free(e->folded);
    free(e->transposed);
    free(e);
}

double hfc_engine_flops(const hfc_engine *e) { return 2.0 * e->macs; }

static hfc_tensor slot_tensor(const hfc_engine *e, const workspace *ws, int slot, hfc_shape s,
                              int n)
{
    return (hfc_tensor){n, s.c, s.h, s.w, ws->slots + (size_t)slot * e->slot_floats};
}

/* Run every step on a group of n images; the logits end in the output slot. */
static void forward_group(const hfc_engine *e, const workspace *ws, const float *pixels, int n)
{
    const hfc_model *m = e->model;
    for (int i = 0; i < e->n_steps; i++) {
        const step *s = &e->steps[i];
        const hfc_node *nd = s->node;
        hfc_tensor y = slot_tensor(e, ws, s->out, nd->out, n);
        hfc_tensor x = {0};
        if (s->op != HFC_OP_INPUT)
            x = slot_tensor(e, ws, s->in[0], m->nodes[nd->in[0]].out, n);
        switch (s->op) {
        case HFC_OP_INPUT: {  /* (n, c, h, w) pixels -> normalised NHWC */
            const int c = nd->out.c;
            const size_t plane = (size_t)nd->out.h * nd->out.w;
            for (int b = 0; b < n; b++)
                for (int ch = 0; ch < c; ch++) {
                    const float *src = pixels + ((size_t)b * c + ch) * plane;
                    float *dst = y.data + (size_t)b * plane * c + ch;
                    for (size_t k = 0; k < plane; k++)
                        dst[k * c] = (src[k] * m->scale - m->mean[ch]) / m->std[ch];
                }
            break;
        }
        case HFC_OP_CONV2D: {
            hfc_conv_extras ex = {s->b, s->in_scale, s->in_shift, s->in_relu, NULL, s->relu};
            if (s->residual >= 0)
                ex.residual = slot_tensor(e, ws, s->residual, nd->out, n).data;
            if (s->path == CONV_WINOGRAD)
                hfc_conv2d_winograd(&x, s->wt, s->chunk, &ex, ws->col, &y);
            else if (s->path == CONV_DIRECT)
                hfc_conv2d_direct(&x, s->wt, nd->kh, nd->kw, nd->sh, nd->sw, nd->ph, nd->pw, &ex,
                                  ws->col, &y);
            else
                hfc_conv2d(&x, s->w, s->b, nd->kh, nd->kw, nd->sh, nd->sw, nd->ph, nd->pw,
                           s->relu, ws->col, &y);
            break;
        }
        case HFC_OP_BATCHNORM:
            hfc_scale_shift(&x, s->w, s->b, s->relu, &y);
            break;
        case HFC_OP_RELU:
            hfc_relu(&x, &y);
            break;
        case HFC_OP_MAXPOOL2D:
        case HFC_OP_AVGPOOL2D:
            hfc_pool2d(&x, s->op == HFC_OP_MAXPOOL2D, nd->kh, nd->kw, nd->sh, nd->sw, nd->ph,
                       nd->pw, nd->count_include_pad, &y);
            break;
        case HFC_OP_GLOBAL_AVGPOOL:
            hfc_global_avgpool(&x, &y);
            break;
        case HFC_OP_FLATTEN:  /* a step only when its input is not 1x1 */
            hfc_flatten(&x, &y);
            break;
        case HFC_OP_LINEAR: {
            hfc_tensor flat = {n, x.c * x.h * x.w, 1, 1, x.data};
            hfc_linear(&flat, s->w, s->b, s->relu, &y);
            break;
        }
        case HFC_OP_ADD: {
            hfc_tensor b = slot_tensor(e, ws, s->in[1], m->nodes[nd->in[1]].out, n);
            hfc_add(&x, &b, s->relu, &y);
            break;
        }
        case HFC_OP_SUBSAMPLE:
            hfc_subsample(&x, nd->sh, nd->sw, &y);
            break;
        case HFC_OP_PAD_CHANNELS:
            hfc_pad_channels(&x, nd->before, nd->after, &y);
            break;
        case HFC_OP_COUNT:
            break;
        }
    }
}

typedef struct {
    const hfc_engine *e;
    const workspace *ws;
    const float *x;
    float *logits;
    size_t first, stride, groups, n;  /* this job's groups: first, first + stride, ... */
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
        memcpy(j->logits + start * m->n_classes, out, count * m->n_classes * sizeof(float));
    }
    return NULL;
}

void hfc_engine_forward(hfc_engine *e, const float *x, size_t n, float *logits)
{
    size_t groups = (n + e->group - 1) / e->group;
    size_t t = (size_t)e->threads < groups ? (size_t)e->threads : groups;
    job jobs[t ? t : 1];
    pthread_t tid[t ? t : 1];
    int started[t ? t : 1];
    for (size_t k = 0; k < t; k++) {
        jobs[k] = (job){e, &e->ws[k], x, logits, k, t, groups, n};
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
