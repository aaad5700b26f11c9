/* src/model/load.c - read and validate an hfc-eval model file.
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

#include "layers/layer.h"

#define MAGIC "HFCMODEL"
#define FORMAT_VERSION 3 /* versions 1 and 2 (no checksum) still load */
#define CHECKSUM_BYTES 32 /* version 3: SHA-256 trailer */
#define PREAMBLE 24
#define ALIGN 64
#define MAX_NODES 4096
#define MAX_TENSORS 4096
#define MAX_CLASSES 1000

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

/* Tensor i's entry: name (once), dtype, shape, and bytes [offset, offset
 * + nbytes) inside the data section, as many as the shape needs. */
static hfc_status parse_tensor(loader *L, const cJSON *t, int i, tensor_info *ti)
{
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
    if (cJSON_IsString(dtype) && !strcmp(dtype->valuestring, "f32"))
        ti->half = 0;
    else if (cJSON_IsString(dtype) && !strcmp(dtype->valuestring, "f16"))
        ti->half = 1;
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
    size_t elsize = ti->half ? 2 : 4;
    if ((size_t)nbytes != ti->count * elsize)
        return FAIL(L, "%s: nbytes %lld does not match shape (%zu elements of %zu bytes)",
                    where, nbytes, ti->count, elsize);
    if ((size_t)offset > L->data_len || (size_t)nbytes > L->data_len - (size_t)offset)
        return FAIL(L, "%s: bytes %lld..%lld of the data section are past the end of the file "
                    "(data section is %zu bytes)", where, offset, offset + nbytes, L->data_len);
    ti->offset = (size_t)offset;
    ti->nbytes = (size_t)nbytes;
    return HFC_OK;
}

/* Tensor ti's values into the arena, each one finite. */
static hfc_status read_values(loader *L, const tensor_info *ti, float *dst)
{
    const uint8_t *src = L->data + ti->offset;
    for (size_t k = 0; k < ti->count; k++) {
        float v;
        if (ti->half) {
            v = half_to_float((uint16_t)read_le(src + 2 * k, 2));
        } else {
            uint32_t bits = (uint32_t)read_le(src + 4 * k, 4);
            memcpy(&v, &bits, sizeof v);
        }
        if (!isfinite(v))
            return FAIL(L, "tensor %.120s: element %zu is NaN or Inf", ti->name, k);
        dst[k] = v;
    }
    return HFC_OK;
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
    hfc_status st;
    cJSON_ArrayForEach(t, arr) {
        tensor_info *ti = &L->tensors[i];
        if ((st = parse_tensor(L, t, i++, ti)))
            return st;
        ti->arena_offset = total;
        total += ti->count;
    }
    L->n_tensors = n;
    if ((st = check_overlaps(L)))
        return st;
    m->arena = hfc_alloc_big((total ? total : 1) * sizeof(float));
    if (!m->arena)
        return hfc_fail(L->err, HFC_ERR_NOMEM, L->path, "out of memory for %zu weights", total);
    m->arena_floats = total;
    /* Second pass: copy and check the values (offsets were checked above). */
    for (i = 0; i < n; i++)
        if ((st = read_values(L, &L->tensors[i], m->arena + L->tensors[i].arena_offset)))
            return st;
    return HFC_OK;
}


static int find_node(const hfc_model *m, int before, const char *name)
{
    for (int i = 0; i < before; i++)
        if (!strcmp(m->nodes[i].name, name))
            return i;
    return -1;
}





















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
        if (!strcmp(op->valuestring, hfc_layers[k].name))
            nd->op = (hfc_op)k;
    if (nd->op == HFC_OP_COUNT)
        return FAIL(L, "%s: unknown layer type \"%.60s\"", where, op->valuestring);
    if ((unsigned)hfc_layers[nd->op].since > L->version)
        return FAIL(L, "%s: layer type \"%s\" needs format version %d; the file says %u", where,
                    hfc_layers[nd->op].name, hfc_layers[nd->op].since, L->version);

    const cJSON *inputs = cJSON_GetObjectItemCaseSensitive(j, "inputs");
    int want = hfc_layers[nd->op].inputs, got = cJSON_IsArray(inputs) ? cJSON_GetArraySize(inputs) : -1;
    if (want < 0 ? got < 1 || got > HFC_MAX_INPUTS : got != want) {
        if (want < 0)
            return FAIL(L, "%s: %s takes 1 to %d inputs", where, hfc_layers[nd->op].name,
                        HFC_MAX_INPUTS);
        return FAIL(L, "%s: %s takes %d input%s", where, hfc_layers[nd->op].name, want,
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
    hfc_status st = hfc_layers[nd->op].parse(&p);
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
