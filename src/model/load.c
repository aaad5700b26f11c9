/* model_load.c - read and validate an hfc-eval model file.
 *
 * Layout (docs/model-format.md):
 *   0   8 bytes  magic "HFCMODEL"
 *   8   u32      version (1, 2 or 3)
 *   12  u32      flags (0)
 *   16  u64      header length L
 *   24  L bytes  JSON header: input, classes, tensors, nodes, output, metadata
 *   D = 24 + L rounded up to 64: the data section; tensor offsets count from D.
 *   version 3: the last 32 bytes are the SHA-256 of every byte before them.
 * All integers little-endian; tensors are little-endian f32 or f16.
 *
 * Nothing is trusted: every size is checked against the file's length before
 * it is used, every node's inputs must come before it (no cycles, no
 * dangling names), and every tensor's shape must be what its layer needs.
 * The header must be strict JSON (no control characters, no key given
 * twice, nothing after it) and tensors may not overlap, so that a damaged
 * byte is refused rather than read as other weights; version 3's checksum
 * refuses every other damage.
 */
#define _DEFAULT_SOURCE /* madvise */
#include <assert.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "hfc/model.h"

#define MAGIC "HFCMODEL"
#define FORMAT_VERSION 3 /* versions 1 and 2 (no checksum) still load */
#define CHECKSUM_BYTES 32 /* version 3: SHA-256 trailer */
#define PREAMBLE 24
#define ALIGN 64
#define MAX_NODES 4096
#define MAX_TENSORS 4096
#define MAX_CLASSES 1000
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
} tensor_info;

/* The parse state: one struct so that helpers can report with the path. */
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

static uint64_t read_le(const uint8_t *p, int bytes)
{
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static float half_to_float(uint16_t h)
{
    int sign = h >> 15, exp = (h >> 10) & 31, frac = h & 1023;
    float v;
    if (exp == 0)
        v = ldexpf((float)frac, -24);
    else if (exp == 31)
        v = frac ? NAN : INFINITY;
    else
        v = ldexpf((float)(frac | 1024), exp - 25);
    return sign ? -v : v;
}

/* A JSON number that must be an integer in [lo, hi]. */
static hfc_status get_int(loader *L, const cJSON *obj, const char *key, const char *where,
                          long long lo, long long hi, long long *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!cJSON_IsNumber(v))
        return FAIL(L, "%s: \"%s\" is missing or not a number", where, key);
    double d = v->valuedouble;
    if (!(d >= (double)lo && d <= (double)hi) || d != floor(d))
        return FAIL(L, "%s: \"%s\" = %g is not an integer in %lld..%lld", where, key, d, lo, hi);
    *out = (long long)d;
    return HFC_OK;
}

/* [a, b] of integers in [lo, hi]; absent gives `dflt` for both. */
static hfc_status get_pair(loader *L, const cJSON *obj, const char *key, const char *where,
                           int lo, int hi, int dflt, int *a, int *b)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v) {
        *a = *b = dflt;
        return HFC_OK;
    }
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != 2)
        return FAIL(L, "%s: \"%s\" must be an array of two integers", where, key);
    int out[2];
    for (int i = 0; i < 2; i++) {
        const cJSON *e = cJSON_GetArrayItem(v, i);
        if (!cJSON_IsNumber(e) || e->valuedouble != floor(e->valuedouble) ||
            e->valuedouble < lo || e->valuedouble > hi)
            return FAIL(L, "%s: \"%s\" values must be integers in %d..%d", where, key, lo, hi);
        out[i] = (int)e->valuedouble;
    }
    *a = out[0];
    *b = out[1];
    return HFC_OK;
}

static int by_offset(const void *a, const void *b)
{
    const tensor_info *x = *(const tensor_info *const *)a, *y = *(const tensor_info *const *)b;
    return (x->offset > y->offset) - (x->offset < y->offset);
}

/* No two tensors share a byte: a damaged offset must not read another
 * tensor's weights as its own. */
static hfc_status check_overlaps(loader *L)
{
    if (L->n_tensors < 2)
        return HFC_OK;
    const tensor_info **order = malloc((size_t)L->n_tensors * sizeof *order);
    if (!order)
        return hfc_fail(L->err, HFC_ERR_NOMEM, L->path, "out of memory");
    for (int i = 0; i < L->n_tensors; i++)
        order[i] = &L->tensors[i];
    qsort(order, (size_t)L->n_tensors, sizeof *order, by_offset);
    hfc_status st = HFC_OK;
    for (int i = 1; i < L->n_tensors && !st; i++)
        if (order[i]->offset < order[i - 1]->offset + order[i - 1]->nbytes)
            st = FAIL(L, "tensor %.100s (bytes %zu..%zu) overlaps tensor %.100s (bytes %zu..%zu)",
                      order[i]->name, order[i]->offset, order[i]->offset + order[i]->nbytes,
                      order[i - 1]->name, order[i - 1]->offset,
                      order[i - 1]->offset + order[i - 1]->nbytes);
    free(order);
    return st;
}

static hfc_status parse_tensors(loader *L, const cJSON *arr, hfc_model *m)
{
    if (!cJSON_IsArray(arr))
        return FAIL(L, "header: \"tensors\" must be an array");
    int n = cJSON_GetArraySize(arr);
    if (n > MAX_TENSORS)
        return FAIL(L, "header: %d tensors (at most %d)", n, MAX_TENSORS);
    L->tensors = calloc(n ? (size_t)n : 1, sizeof *L->tensors);
    if (!L->tensors)
        return hfc_fail(L->err, HFC_ERR_NOMEM, L->path, "out of memory");
    size_t total = 0;
    const cJSON *t;
    int i = 0;
    hfc_status st0;
    cJSON_ArrayForEach(t, arr) {
        tensor_info *ti = &L->tensors[i];
        char where[192];
        snprintf(where, sizeof where, "tensor %d", i);
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(t, "name");
        if (!cJSON_IsString(name) || !name->valuestring[0])
            return FAIL(L, "%s: \"name\" is missing", where);
        ti->name = name->valuestring;
        snprintf(where, sizeof where, "tensor %.120s", ti->name);
        for (int j = 0; j < i; j++)
            if (!strcmp(L->tensors[j].name, ti->name))
                return FAIL(L, "%s: defined twice", where);
        const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(t, "dtype");
        size_t elsize;
        if (cJSON_IsString(dtype) && !strcmp(dtype->valuestring, "f32"))
            elsize = 4;
        else if (cJSON_IsString(dtype) && !strcmp(dtype->valuestring, "f16"))
            elsize = 2;
        else
            return FAIL(L, "%s: \"dtype\" must be \"f32\" or \"f16\"", where);
        const cJSON *shape = cJSON_GetObjectItemCaseSensitive(t, "shape");
        int nd = cJSON_IsArray(shape) ? cJSON_GetArraySize(shape) : -1;
        if (nd < 1 || nd > 4)
            return FAIL(L, "%s: \"shape\" must be an array of 1 to 4 sizes", where);
        ti->ndim = nd;
        ti->count = 1;
        for (int d = 0; d < nd; d++) {
            const cJSON *e = cJSON_GetArrayItem(shape, d);
            if (!cJSON_IsNumber(e) || e->valuedouble < 1 || e->valuedouble > (1 << 24) ||
                e->valuedouble != floor(e->valuedouble))
                return FAIL(L, "%s: shape[%d] is not an integer in 1..%d", where, d, 1 << 24);
            ti->dims[d] = (size_t)e->valuedouble;
            if (ti->count > SIZE_MAX / 8 / ti->dims[d])
                return FAIL(L, "%s: element count overflows", where);
            ti->count *= ti->dims[d];
        }
        long long offset, nbytes;
        hfc_status st;
        if ((st = get_int(L, t, "offset", where, 0, (long long)1 << 50, &offset)) ||
            (st = get_int(L, t, "nbytes", where, 0, (long long)1 << 50, &nbytes)))
            return st;
        if ((size_t)nbytes != ti->count * elsize)
            return FAIL(L, "%s: nbytes %lld does not match shape (%zu elements of %zu bytes)",
                        where, nbytes, ti->count, elsize);
        if ((size_t)offset > L->data_len || (size_t)nbytes > L->data_len - (size_t)offset)
            return FAIL(L, "%s: bytes %lld..%lld of the data section are past the end of the file "
                        "(data section is %zu bytes)", where, offset, offset + nbytes, L->data_len);
        ti->arena_offset = total;
        ti->offset = (size_t)offset;
        ti->nbytes = (size_t)nbytes;
        total += ti->count;
        i++;
    }
    L->n_tensors = n;
    if ((st0 = check_overlaps(L)))
        return st0;
    m->arena = malloc((total ? total : 1) * sizeof(float));
    if (!m->arena)
        return hfc_fail(L->err, HFC_ERR_NOMEM, L->path, "out of memory for %zu weights", total);
    m->arena_floats = total;
    /* Second pass: copy and check the values (offsets were checked above). */
    i = 0;
    cJSON_ArrayForEach(t, arr) {
        tensor_info *ti = &L->tensors[i++];
        size_t off = (size_t)cJSON_GetObjectItemCaseSensitive(t, "offset")->valuedouble;
        int half = !strcmp(cJSON_GetObjectItemCaseSensitive(t, "dtype")->valuestring, "f16");
        const uint8_t *src = L->data + off;
        float *dst = m->arena + ti->arena_offset;
        for (size_t k = 0; k < ti->count; k++) {
            float v;
            if (half) {
                v = half_to_float((uint16_t)read_le(src + 2 * k, 2));
            } else {
                uint32_t bits = (uint32_t)read_le(src + 4 * k, 4);
                memcpy(&v, &bits, sizeof v);
            }
            if (!isfinite(v))
                return FAIL(L, "tensor %.120s: element %zu is NaN or Inf", ti->name, k);
            dst[k] = v;
        }
    }
    return HFC_OK;
}

/* The tensor named by node[key]: must exist with exactly the given dims
 * (a dim of 0 means any). Absent and optional gives NULL. */
static hfc_status get_tensor(loader *L, const hfc_model *m, const cJSON *node, const char *key,
                             const char *where, int optional, int ndim, const size_t *dims,
                             const float **out, const tensor_info **info)
{
    *out = NULL;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(node, key);
    if (!v || cJSON_IsNull(v)) {
        if (optional)
            return HFC_OK;
        return FAIL(L, "%s: \"%s\" tensor is missing", where, key);
    }
    if (!cJSON_IsString(v))
        return FAIL(L, "%s: \"%s\" must name a tensor", where, key);
    for (int i = 0; i < L->n_tensors; i++) {
        const tensor_info *ti = &L->tensors[i];
        if (strcmp(ti->name, v->valuestring))
            continue;
        int ok = ti->ndim == ndim;
        for (int d = 0; ok && d < ndim; d++)
            ok = dims[d] == 0 || dims[d] == ti->dims[d];
        if (!ok) {
            char want[96] = "", got[96] = "";
            for (int d = 0; d < ndim; d++)
                snprintf(want + strlen(want), sizeof want - strlen(want), "%s%zu", d ? "x" : "", dims[d]);
            for (int d = 0; d < ti->ndim; d++)
                snprintf(got + strlen(got), sizeof got - strlen(got), "%s%zu", d ? "x" : "", ti->dims[d]);
            return FAIL(L, "%s: tensor %.100s has shape %s, the layer needs %s (0 = any)",
                        where, ti->name, got, want);
        }
        *out = m->arena + ti->arena_offset;
        if (info)
            *info = ti;
        return HFC_OK;
    }
    return FAIL(L, "%s: tensor \"%.100s\" is not in the file", where, v->valuestring);
}

static int find_node(const hfc_model *m, int before, const char *name)
{
    for (int i = 0; i < before; i++)
        if (!strcmp(m->nodes[i].name, name))
            return i;
    return -1;
}

/* ------------------------------------------------------------ the layers
 * One parser per row of include/hfc_layers.def: it reads the node's
 * attributes and tensors and sets nd->out from its inputs' shapes (in[k],
 * already checked to exist). The table below is expanded from the same rows. */

typedef struct {
    loader *L;
    hfc_model *m;
    hfc_node *nd;
    const cJSON *j;     /* the node's JSON object */
    const char *where;  /* "node NAME", for messages */
    hfc_shape in[HFC_MAX_INPUTS];
} layer_parse;

typedef hfc_status (*parse_fn)(layer_parse *p);

static hfc_status parse_input(layer_parse *p)
{
    return FAIL(p->L, "%s: \"input\" is the model's input, not a layer", p->where);
}

static hfc_status parse_conv2d(layer_parse *p)
{
    loader *L = p->L;
    hfc_node *nd = p->nd;
    const char *where = p->where;
    hfc_shape in = p->in[0];
    hfc_status st;
    long long groups = 1;
    if (cJSON_GetObjectItemCaseSensitive(p->j, "groups") &&
        (st = get_int(L, p->j, "groups", where, 1, MAX_CHANNELS, &groups)))
        return st;
    if ((st = get_pair(L, p->j, "stride", where, 1, MAX_SIDE, 1, &nd->sh, &nd->sw)) ||
        (st = get_pair(L, p->j, "padding", where, 0, MAX_SIDE, 0, &nd->ph, &nd->pw)) ||
        (st = get_pair(L, p->j, "dilation", where, 1, MAX_SIDE, 1, &nd->dh, &nd->dw)))
        return st;
    if (L->version < 2 && (groups != 1 || nd->dh != 1 || nd->dw != 1))
        return FAIL(L, "%s: groups and dilation need format version 2", where);
    if (in.c % groups)
        return FAIL(L, "%s: %d input channels are not divisible by groups = %lld", where, in.c,
                    groups);
    nd->groups = (int)groups;
    size_t wdims[4] = {0, (size_t)(in.c / groups), 0, 0};
    const tensor_info *wt = NULL;
    if ((st = get_tensor(L, p->m, p->j, "weight", where, 0, 4, wdims, &nd->weight, &wt)))
        return st;
    if (wt->dims[0] > MAX_CHANNELS || wt->dims[0] % (size_t)groups)
        return FAIL(L, "%s: %zu output channels (at most %d, divisible by groups = %lld)", where,
                    wt->dims[0], MAX_CHANNELS, groups);
    nd->kh = (int)wt->dims[2];
    nd->kw = (int)wt->dims[3];
    long long eh = (long long)nd->dh * (nd->kh - 1) + 1, ew = (long long)nd->dw * (nd->kw - 1) + 1;
    if (in.h + 2 * nd->ph < eh || in.w + 2 * nd->pw < ew)
        return FAIL(L, "%s: kernel %dx%d (dilated %lldx%lld) is larger than the padded input",
                    where, nd->kh, nd->kw, eh, ew);
    size_t bdims[1] = {wt->dims[0]};
    if ((st = get_tensor(L, p->m, p->j, "bias", where, 1, 1, bdims, &nd->bias, NULL)))
        return st;
    nd->out = (hfc_shape){(int)wt->dims[0], (int)((in.h + 2 * nd->ph - eh) / nd->sh + 1),
                          (int)((in.w + 2 * nd->pw - ew) / nd->sw + 1)};
    return HFC_OK;
}

static hfc_status parse_batchnorm(layer_parse *p)
{
    loader *L = p->L;
    hfc_node *nd = p->nd;
    size_t c = (size_t)p->in[0].c, dims[1] = {c};
    hfc_status st;
    if ((st = get_tensor(L, p->m, p->j, "mean", p->where, 0, 1, dims, &nd->mean, NULL)) ||
        (st = get_tensor(L, p->m, p->j, "var", p->where, 0, 1, dims, &nd->var, NULL)) ||
        (st = get_tensor(L, p->m, p->j, "weight", p->where, 1, 1, dims, &nd->weight, NULL)) ||
        (st = get_tensor(L, p->m, p->j, "bias", p->where, 1, 1, dims, &nd->bias, NULL)))
        return st;
    const cJSON *eps = cJSON_GetObjectItemCaseSensitive(p->j, "eps");
    if (!cJSON_IsNumber(eps) || !(eps->valuedouble > 0) || !isfinite(eps->valuedouble))
        return FAIL(L, "%s: \"eps\" must be a positive number", p->where);
    nd->eps = (float)eps->valuedouble;
    for (size_t k = 0; k < c; k++)
        if (nd->var[k] < 0)
            return FAIL(L, "%s: running variance %zu is negative", p->where, k);
    nd->out = p->in[0];
    return HFC_OK;
}

/* Every HFC_UNARY row: one input, the same shape out. */
static hfc_status parse_unary(layer_parse *p)
{
    p->nd->out = p->in[0];
    return HFC_OK;
}

static hfc_status parse_affine(layer_parse *p)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(p->j, "scale");
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(p->j, "shift");
    if ((a && !cJSON_IsNumber(a)) || (b && !cJSON_IsNumber(b)) ||
        !isfinite(a ? a->valuedouble : 1) || !isfinite(b ? b->valuedouble : 0) ||
        fabs(a ? a->valuedouble : 1) > 3e38 || fabs(b ? b->valuedouble : 0) > 3e38)
        return FAIL(p->L, "%s: \"scale\" and \"shift\" must be finite numbers", p->where);
    p->nd->scale = a ? (float)a->valuedouble : 1.0f;
    p->nd->shift = b ? (float)b->valuedouble : 0.0f;
    p->nd->out = p->in[0];
    return HFC_OK;
}

static hfc_status pool_shape(layer_parse *p)
{
    loader *L = p->L;
    hfc_node *nd = p->nd;
    hfc_shape in = p->in[0];
    hfc_status st;
    if ((st = get_pair(L, p->j, "kernel", p->where, 1, MAX_SIDE, 0, &nd->kh, &nd->kw)) ||
        (st = get_pair(L, p->j, "stride", p->where, 1, MAX_SIDE, 0, &nd->sh, &nd->sw)) ||
        (st = get_pair(L, p->j, "padding", p->where, 0, MAX_SIDE, 0, &nd->ph, &nd->pw)))
        return st;
    if (nd->kh == 0)
        return FAIL(L, "%s: \"kernel\" is missing", p->where);
    if (nd->sh == 0)
        nd->sh = nd->kh, nd->sw = nd->kw;
    if (2 * nd->ph > nd->kh || 2 * nd->pw > nd->kw)
        return FAIL(L, "%s: padding must be at most half the kernel", p->where);
    if (in.h + 2 * nd->ph < nd->kh || in.w + 2 * nd->pw < nd->kw)
        return FAIL(L, "%s: kernel %dx%d is larger than the padded %dx%d input",
                    p->where, nd->kh, nd->kw, in.h + 2 * nd->ph, in.w + 2 * nd->pw);
    nd->out = (hfc_shape){in.c, (in.h + 2 * nd->ph - nd->kh) / nd->sh + 1,
                          (in.w + 2 * nd->pw - nd->kw) / nd->sw + 1};
    return HFC_OK;
}

static hfc_status parse_maxpool2d(layer_parse *p) { return pool_shape(p); }

static hfc_status parse_avgpool2d(layer_parse *p)
{
    const cJSON *inc = cJSON_GetObjectItemCaseSensitive(p->j, "count_include_pad");
    p->nd->count_include_pad = inc ? cJSON_IsTrue(inc) : 1;
    return pool_shape(p);
}

static hfc_status parse_global_avgpool(layer_parse *p)
{
    p->nd->out = (hfc_shape){p->in[0].c, 1, 1};
    return HFC_OK;
}

static hfc_status parse_flatten(layer_parse *p)
{
    hfc_shape in = p->in[0];
    if ((size_t)in.c * in.h * in.w > MAX_IMAGE_ELEMS)
        return FAIL(p->L, "%s: flattened size is too large", p->where);
    p->nd->out = (hfc_shape){in.c * in.h * in.w, 1, 1};
    return HFC_OK;
}

static hfc_status parse_linear(layer_parse *p)
{
    loader *L = p->L;
    hfc_shape in = p->in[0];
    if (in.h != 1 || in.w != 1)
        return FAIL(L, "%s: linear needs a flat input, got %dx%dx%d (add a flatten)", p->where,
                    in.c, in.h, in.w);
    size_t wdims[2] = {0, (size_t)in.c};
    const tensor_info *wt = NULL;
    hfc_status st;
    if ((st = get_tensor(L, p->m, p->j, "weight", p->where, 0, 2, wdims, &p->nd->weight, &wt)))
        return st;
    size_t out = wt->dims[0];
    if (out > MAX_CHANNELS)
        return FAIL(L, "%s: %zu outputs (at most %d)", p->where, out, MAX_CHANNELS);
    size_t bdims[1] = {out};
    if ((st = get_tensor(L, p->m, p->j, "bias", p->where, 1, 1, bdims, &p->nd->bias, NULL)))
        return st;
    p->nd->out = (hfc_shape){(int)out, 1, 1};
    return HFC_OK;
}

/* add, mul: the same shape, or one of them (c, 1, 1) broadcast over the other. */
static hfc_status binary_shape(layer_parse *p)
{
    hfc_shape a = p->in[0], b = p->in[1];
    int same = a.c == b.c && a.h == b.h && a.w == b.w;
    int bcast = a.c == b.c && ((b.h == 1 && b.w == 1) || (a.h == 1 && a.w == 1));
    if (!same && !bcast)
        return FAIL(p->L, "%s: %s of %dx%dx%d and %dx%dx%d (shapes must match, or one be %dx1x1)",
                    p->where, hfc_op_name(p->nd->op), a.c, a.h, a.w, b.c, b.h, b.w, a.c);
    p->nd->out = a.h * a.w >= b.h * b.w ? a : b;
    return HFC_OK;
}

static hfc_status parse_add(layer_parse *p) { return binary_shape(p); }
static hfc_status parse_mul(layer_parse *p) { return binary_shape(p); }

static hfc_status parse_concat(layer_parse *p)
{
    long long c = 0;
    for (int k = 0; k < p->nd->n_in; k++) {
        hfc_shape s = p->in[k];
        if (s.h != p->in[0].h || s.w != p->in[0].w)
            return FAIL(p->L, "%s: concat of %dx%d and %dx%d maps (input %d): sizes must match",
                        p->where, p->in[0].h, p->in[0].w, s.h, s.w, k);
        c += s.c;
    }
    if (c > MAX_CHANNELS)
        return FAIL(p->L, "%s: %lld channels after concat (at most %d)", p->where, c, MAX_CHANNELS);
    p->nd->out = (hfc_shape){(int)c, p->in[0].h, p->in[0].w};
    return HFC_OK;
}

static hfc_status parse_slice_channels(layer_parse *p)
{
    long long start = 0, stop = 0;
    hfc_status st;
    if ((st = get_int(p->L, p->j, "start", p->where, 0, MAX_CHANNELS, &start)) ||
        (st = get_int(p->L, p->j, "stop", p->where, 0, MAX_CHANNELS, &stop)))
        return st;
    if (start >= stop || stop > p->in[0].c)
        return FAIL(p->L, "%s: channels [%lld, %lld) of %d: need start < stop <= channels",
                    p->where, start, stop, p->in[0].c);
    p->nd->start = (int)start;
    p->nd->stop = (int)stop;
    p->nd->out = (hfc_shape){(int)(stop - start), p->in[0].h, p->in[0].w};
    return HFC_OK;
}

static hfc_status parse_channel_shuffle(layer_parse *p)
{
    long long g = 1;
    hfc_status st = get_int(p->L, p->j, "groups", p->where, 1, MAX_CHANNELS, &g);
    if (st)
        return st;
    if (p->in[0].c % g)
        return FAIL(p->L, "%s: %d channels are not divisible by groups = %lld", p->where,
                    p->in[0].c, g);
    p->nd->groups = (int)g;
    p->nd->out = p->in[0];
    return HFC_OK;
}

static hfc_status parse_subsample(layer_parse *p)
{
    hfc_node *nd = p->nd;
    hfc_status st = get_pair(p->L, p->j, "stride", p->where, 1, MAX_SIDE, 1, &nd->sh, &nd->sw);
    if (st)
        return st;
    hfc_shape in = p->in[0];
    nd->out = (hfc_shape){in.c, (in.h + nd->sh - 1) / nd->sh, (in.w + nd->sw - 1) / nd->sw};
    return HFC_OK;
}

static hfc_status parse_pad_channels(layer_parse *p)
{
    long long before = 0, after = 0;
    hfc_status st;
    if ((st = get_int(p->L, p->j, "before", p->where, 0, MAX_CHANNELS, &before)) ||
        (st = get_int(p->L, p->j, "after", p->where, 0, MAX_CHANNELS, &after)))
        return st;
    if (p->in[0].c + before + after > MAX_CHANNELS)
        return FAIL(p->L, "%s: too many channels after padding", p->where);
    p->nd->before = (int)before;
    p->nd->after = (int)after;
    p->nd->out = (hfc_shape){p->in[0].c + (int)(before + after), p->in[0].h, p->in[0].w};
    return HFC_OK;
}

static const struct {
    const char *name;
    int inputs;  /* -1: 1 to HFC_MAX_INPUTS */
    int since;   /* format version */
    parse_fn parse;
} LAYERS[] = {
#define HFC_LAYER(E, name, inputs, cost, since) [HFC_OP_##E] = {#name, inputs, since, parse_##name},
#define HFC_UNARY(E, name, since) [HFC_OP_##E] = {#name, 1, since, parse_unary},
#include "hfc_layers.def"
#undef HFC_LAYER
#undef HFC_UNARY
};
static_assert(sizeof LAYERS / sizeof LAYERS[0] == HFC_OP_COUNT,
              "every hfc_op has its row in include/hfc_layers.def");

const char *hfc_op_name(hfc_op op) { return (unsigned)op < HFC_OP_COUNT ? LAYERS[op].name : NULL; }

/* Fill node i from its JSON: op, inputs, then the op's own parser. */
static hfc_status parse_node(loader *L, hfc_model *m, int i, const cJSON *j)
{
    hfc_node *nd = &m->nodes[i];
    char where[160];
    snprintf(where, sizeof where, "node %d", i);
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(j, "name");
    if (!cJSON_IsString(name) || !name->valuestring[0] || strlen(name->valuestring) >= sizeof nd->name)
        return FAIL(L, "%s: \"name\" is missing or longer than %zu characters", where, sizeof nd->name - 1);
    snprintf(nd->name, sizeof nd->name, "%s", name->valuestring);
    snprintf(where, sizeof where, "node %s", nd->name);
    if (find_node(m, i, nd->name) >= 0)
        return FAIL(L, "%s: name used twice", where);

    const cJSON *op = cJSON_GetObjectItemCaseSensitive(j, "op");
    if (!cJSON_IsString(op))
        return FAIL(L, "%s: \"op\" is missing", where);
    nd->op = HFC_OP_COUNT;
    for (int k = HFC_OP_INPUT + 1; k < HFC_OP_COUNT; k++)
        if (!strcmp(op->valuestring, LAYERS[k].name))
            nd->op = (hfc_op)k;
    if (nd->op == HFC_OP_COUNT)
        return FAIL(L, "%s: unknown layer type \"%.60s\"", where, op->valuestring);
    if ((unsigned)LAYERS[nd->op].since > L->version)
        return FAIL(L, "%s: layer type \"%s\" needs format version %d; the file says %u", where,
                    LAYERS[nd->op].name, LAYERS[nd->op].since, L->version);

    const cJSON *inputs = cJSON_GetObjectItemCaseSensitive(j, "inputs");
    int want = LAYERS[nd->op].inputs, got = cJSON_IsArray(inputs) ? cJSON_GetArraySize(inputs) : -1;
    if (want < 0 ? got < 1 || got > HFC_MAX_INPUTS : got != want) {
        if (want < 0)
            return FAIL(L, "%s: %s takes 1 to %d inputs", where, LAYERS[nd->op].name,
                        HFC_MAX_INPUTS);
        return FAIL(L, "%s: %s takes %d input%s", where, LAYERS[nd->op].name, want,
                    want > 1 ? "s" : "");
    }
    nd->n_in = got;
    layer_parse p = {L, m, nd, j, where, {{0, 0, 0}}};
    for (int k = 0; k < got; k++) {
        const cJSON *in = cJSON_GetArrayItem(inputs, k);
        if (!cJSON_IsString(in))
            return FAIL(L, "%s: inputs must be node names", where);
        nd->in[k] = find_node(m, i, in->valuestring);
        if (nd->in[k] < 0)
            return FAIL(L, "%s: input \"%.60s\" is not defined before it "
                        "(dangling name or a cycle)", where, in->valuestring);
        p.in[k] = m->nodes[nd->in[k]].out;
    }
    hfc_status st = LAYERS[nd->op].parse(&p);
    if (st)
        return st;
    if (nd->out.c < 1 || nd->out.h < 1 || nd->out.w < 1 ||
        (size_t)nd->out.c * nd->out.h * nd->out.w > MAX_IMAGE_ELEMS)
        return FAIL(L, "%s: output shape %dx%dx%d is empty or too large", where,
                    nd->out.c, nd->out.h, nd->out.w);
    return HFC_OK;
}

static hfc_status parse_input_spec(loader *L, const cJSON *in, hfc_model *m)
{
    if (!cJSON_IsObject(in))
        return FAIL(L, "header: \"input\" must be an object");
    long long c, h, w;
    hfc_status st;
    if ((st = get_int(L, in, "channels", "input", 1, 4, &c)) ||
        (st = get_int(L, in, "height", "input", 1, MAX_SIDE, &h)) ||
        (st = get_int(L, in, "width", "input", 1, MAX_SIDE, &w)))
        return st;
    m->channels = (int)c;
    m->height = (int)h;
    m->width = (int)w;
    const cJSON *scale = cJSON_GetObjectItemCaseSensitive(in, "scale");
    if (!cJSON_IsNumber(scale) || !(scale->valuedouble > 0) || !isfinite(scale->valuedouble))
        return FAIL(L, "input: \"scale\" must be a positive number");
    m->scale = (float)scale->valuedouble;
    const char *keys[2] = {"mean", "std"};
    float *dst[2] = {m->mean, m->std};
    for (int k = 0; k < 2; k++) {
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(in, keys[k]);
        if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != c)
            return FAIL(L, "input: \"%s\" must hold %lld numbers", keys[k], c);
        for (int i = 0; i < c; i++) {
            const cJSON *e = cJSON_GetArrayItem(a, i);
            if (!cJSON_IsNumber(e) || !isfinite(e->valuedouble) || (k == 1 && !(e->valuedouble > 0)))
                return FAIL(L, "input: \"%s\"[%d] is not a %snumber", keys[k], i, k ? "positive " : "");
            dst[k][i] = (float)e->valuedouble;
        }
    }
    return HFC_OK;
}

static hfc_status parse_header(loader *L, const cJSON *root, hfc_model *m)
{
    if (!cJSON_IsObject(root))
        return FAIL(L, "header is not a JSON object");
    hfc_status st;
    if ((st = parse_input_spec(L, cJSON_GetObjectItemCaseSensitive(root, "input"), m)) ||
        (st = parse_tensors(L, cJSON_GetObjectItemCaseSensitive(root, "tensors"), m)))
        return st;

    const cJSON *nodes = cJSON_GetObjectItemCaseSensitive(root, "nodes");
    if (!cJSON_IsArray(nodes) || cJSON_GetArraySize(nodes) < 1)
        return FAIL(L, "header: \"nodes\" must be a non-empty array");
    int n = cJSON_GetArraySize(nodes);
    if (n >= MAX_NODES)
        return FAIL(L, "header: %d nodes (at most %d)", n, MAX_NODES - 1);
    m->nodes = calloc((size_t)n + 1, sizeof *m->nodes);
    if (!m->nodes)
        return hfc_fail(L->err, HFC_ERR_NOMEM, L->path, "out of memory");
    m->nodes[0] = (hfc_node){.op = HFC_OP_INPUT, .name = "input",
                             .out = {m->channels, m->height, m->width}};
    m->n_nodes = 1;
    const cJSON *j;
    cJSON_ArrayForEach(j, nodes) {
        if ((st = parse_node(L, m, m->n_nodes, j)))
            return st;
        m->n_nodes++;
    }

    const cJSON *out = cJSON_GetObjectItemCaseSensitive(root, "output");
    if (!cJSON_IsString(out) || (m->output = find_node(m, m->n_nodes, out->valuestring)) < 0)
        return FAIL(L, "header: \"output\" must name a node");
    hfc_shape os = m->nodes[m->output].out;
    if (os.h != 1 || os.w != 1)
        return FAIL(L, "output node %s is %dx%dx%d, not a vector of logits", m->nodes[m->output].name,
                    os.c, os.h, os.w);

    const cJSON *classes = cJSON_GetObjectItemCaseSensitive(root, "classes");
    int k = cJSON_IsArray(classes) ? cJSON_GetArraySize(classes) : -1;
    if (k < 1 || k > MAX_CLASSES)
        return FAIL(L, "header: \"classes\" must be an array of 1..%d names", MAX_CLASSES);
    if (k != os.c)
        return FAIL(L, "header: %d class names but the model has %d outputs", k, os.c);
    m->classes = calloc((size_t)k, sizeof *m->classes);
    if (!m->classes)
        return hfc_fail(L->err, HFC_ERR_NOMEM, L->path, "out of memory");
    m->n_classes = k;
    for (int i = 0; i < k; i++) {
        const cJSON *e = cJSON_GetArrayItem(classes, i);
        if (!cJSON_IsString(e))
            return FAIL(L, "header: class %d is not a string", i);
        if (!(m->classes[i] = strdup(e->valuestring)))
            return hfc_fail(L->err, HFC_ERR_NOMEM, L->path, "out of memory");
    }

    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(root, "metadata");
    const cJSON *epoch = cJSON_GetObjectItemCaseSensitive(meta, "epoch");
    m->epoch = cJSON_IsNumber(epoch) && epoch->valuedouble >= 0 && epoch->valuedouble <= 1e9
                   ? epoch->valuedouble
                   : -1;
    char *printed = cJSON_IsObject(meta) ? cJSON_PrintUnformatted(meta) : NULL;
    m->metadata_json = strdup(printed ? printed : "{}");
    cJSON_free(printed);
    if (!m->metadata_json)
        return hfc_fail(L->err, HFC_ERR_NOMEM, L->path, "out of memory");
    return HFC_OK;
}

hfc_status hfc_model_load(hfc_model *m, const char *path, hfc_error *err)
{
    uint8_t *raw;
    size_t len;
    hfc_status st = hfc_read_file(path, &raw, &len, err);
    if (st) {
        memset(m, 0, sizeof *m);
        return st;
    }
    st = hfc_model_parse(m, raw, len, path, err);
    free(raw);
    return st;
}

hfc_status hfc_model_parse(hfc_model *m, const uint8_t *raw, size_t len, const char *path,
                           hfc_error *err)
{
    memset(m, 0, sizeof *m);
    snprintf(m->path, sizeof m->path, "%s", path);
    hfc_status st;
    loader L = {.path = path, .err = err};
    cJSON *root = NULL;
    if (len < PREAMBLE || memcmp(raw, MAGIC, 8)) {
        st = FAIL(&L, "not an hfc-eval model file (bad magic; convert with tools/export_pytorch.py)");
        goto done;
    }
    uint32_t version = (uint32_t)read_le(raw + 8, 4), flags = (uint32_t)read_le(raw + 12, 4);
    uint64_t hlen = read_le(raw + 16, 8);
    if (version < 1 || version > FORMAT_VERSION) {
        st = FAIL(&L, "format version %u, this hfc-eval reads versions 1 to %d", version,
                  FORMAT_VERSION);
        goto done;
    }
    L.version = version;
    m->format_version = version;
    size_t payload = len; /* all but the checksum */
    if (version >= 3) {
        if (len < PREAMBLE + CHECKSUM_BYTES) {
            st = FAIL(&L, "%zu bytes: too short for a version-3 file and its checksum", len);
            goto done;
        }
        payload = len - CHECKSUM_BYTES;
        uint8_t digest[32];
        hfc_sha256_prefix_and_whole(raw, len, payload, digest, m->sha256);
        if (memcmp(digest, raw + payload, CHECKSUM_BYTES)) {
            st = FAIL(&L, "checksum mismatch: the file is damaged or truncated (the SHA-256 of "
                          "its first %zu bytes is not the one its last 32 bytes record)",
                      payload);
            goto done;
        }
    } else {
        hfc_sha256_hex(raw, len, m->sha256);
    }
    if (flags) {
        st = FAIL(&L, "unknown flags 0x%x", flags);
        goto done;
    }
    if (hlen > payload - PREAMBLE) {
        st = FAIL(&L, "header length %llu runs past the end of the file (%zu bytes)",
                  (unsigned long long)hlen, len);
        goto done;
    }
    size_t base = PREAMBLE + (size_t)hlen;
    base += (ALIGN - base % ALIGN) % ALIGN;
    if (base > payload) {
        st = FAIL(&L, "data section starts at byte %zu, past the end of the file (%zu bytes)", base, len);
        goto done;
    }
    L.data = raw + base;
    L.data_len = payload - base;
    char why[160];
    if (hfc_json_strict_whole((const char *)raw + PREAMBLE, (size_t)hlen, why, sizeof why)) {
        st = FAIL(&L, "header is not valid JSON: %s", why);
        goto done;
    }
    root = cJSON_ParseWithLength((const char *)raw + PREAMBLE, (size_t)hlen);
    if (!root) {
        st = FAIL(&L, "header is not valid JSON");
        goto done;
    }
    const char *dup = hfc_json_duplicate(root);
    if (dup) {
        st = FAIL(&L, "header: key \"%.100s\" is given twice in one object", dup);
        goto done;
    }
    st = parse_header(&L, root, m);
done:
    cJSON_Delete(root);
    free(L.tensors);
    if (st)
        hfc_model_free(m);
    return st;
}

void hfc_model_free(hfc_model *m)
{
    for (int i = 0; m->classes && i < m->n_classes; i++)
        free(m->classes[i]);
    free(m->classes);
    free(m->nodes);
    free(m->arena);
    free(m->metadata_json);
    char path[sizeof m->path];
    memcpy(path, m->path, sizeof path);
    memset(m, 0, sizeof *m);
    memcpy(m->path, path, sizeof path);
}

void hfc_model_release_conv_weights(hfc_model *m)
{
    const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t keep_lo = 0, keep_hi = 0; /* the first conv's weights: the pictures' */
    for (int i = 1; i < m->n_nodes; i++) {
        hfc_node *nd = &m->nodes[i];
        if (nd->op != HFC_OP_CONV2D || !nd->weight)
            continue;
        const size_t n = (size_t)nd->out.c * (m->nodes[nd->in[0]].out.c / nd->groups) * nd->kh *
                         nd->kw;
        if (!keep_hi) {
            keep_lo = (uintptr_t)nd->weight;
            keep_hi = (uintptr_t)(nd->weight + n);
            continue;
        }
        /* The whole pages inside the tensor (none of them the first conv's,
         * should a file share tensors): their contents become zeros if ever
         * touched again, and nothing reads them (weight is NULL). madvise's
         * failure changes nothing. */
        uintptr_t lo = ((uintptr_t)nd->weight + page - 1) / page * page;
        uintptr_t hi = (uintptr_t)(nd->weight + n) / page * page;
        if (page && hi > lo && (hi <= keep_lo || lo >= keep_hi))
            madvise((void *)lo, hi - lo, MADV_DONTNEED);
        if ((uintptr_t)nd->weight != keep_lo)
            nd->weight = NULL;
    }
}

/* Index into [0, n) of a symmetric ('symm') boundary: -1 -> 0, n -> n-1. */
static int symm(int i, int n)
{
    while (i < 0 || i >= n)
        i = i < 0 ? -i - 1 : 2 * n - i - 1;
    return i;
}

hfc_status hfc_model_smooth_first_conv(hfc_model *m, double rho, hfc_error *err)
{
    int first = -1;
    for (int i = 1; i < m->n_nodes && first < 0; i++)
        if (m->nodes[i].n_in > 0 && m->nodes[i].in[0] == 0)
            first = i;
    if (first < 0 || m->nodes[first].op != HFC_OP_CONV2D)
        return hfc_fail(err, HFC_ERR_USAGE, m->path,
                        "--smooth: the first layer is %s, not a conv",
                        first < 0 ? "missing" : hfc_op_name(m->nodes[first].op));
    hfc_node *cv = &m->nodes[first];
    const int kh = cv->kh, kw = cv->kw;
    const size_t kernels = (size_t)cv->out.c * (m->nodes[0].out.c / cv->groups);
    float *w = (float *)cv->weight; /* in m->arena, which m owns */
    double k[kh * kw];
    for (size_t q = 0; q < kernels; q++) {
        float *kq = w + q * (size_t)(kh * kw);
        for (int i = 0; i < kh; i++)
            for (int j = 0; j < kw; j++) {
                double acc = 0;
                for (int di = -1; di <= 1; di++)
                    for (int dj = -1; dj <= 1; dj++)
                        acc += (di || dj ? rho : 1.0) * kq[symm(i + di, kh) * kw + symm(j + dj, kw)];
                k[i * kw + j] = acc;
            }
        for (int t = 0; t < kh * kw; t++)
            kq[t] = (float)k[t];
    }
    return HFC_OK;
}
