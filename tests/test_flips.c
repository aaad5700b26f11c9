/* test_flips.c - every single-bit damage of a model file is refused, or
 * changes nothing.
 *
 *   test_flips MODEL.bin FLIPS [SEED]
 * flips FLIPS random bits of the file (one at a time, in memory) and loads
 * each copy. Passes when every copy is either refused as a damaged model
 * (HFC_ERR_MODEL, exit 4 in the tool, the message naming the file) or loads
 * to the same model: the same weights bit for bit, the same graph, input,
 * classes and, on 4 fixed images, the same logits bit for bit. */
#include "test_util.h"

static uint64_t next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* The parsed model as far as a result depends on it: weights by value,
 * nodes with their tensors as offsets into the arena. */
static int same_model(const hfc_model *a, const hfc_model *b)
{
    if (a->arena_floats != b->arena_floats ||
        memcmp(a->arena, b->arena, a->arena_floats * sizeof(float)) ||
        a->n_nodes != b->n_nodes || a->output != b->output || a->n_classes != b->n_classes ||
        a->channels != b->channels || a->height != b->height || a->width != b->width ||
        memcmp(&a->scale, &b->scale, sizeof a->scale) || memcmp(a->mean, b->mean, sizeof a->mean) ||
        memcmp(a->std, b->std, sizeof a->std) || strcmp(a->metadata_json, b->metadata_json))
        return 0;
    for (int i = 0; i < a->n_classes; i++)
        if (strcmp(a->classes[i], b->classes[i]))
            return 0;
    for (int i = 0; i < a->n_nodes; i++) {
        hfc_node x = a->nodes[i], y = b->nodes[i];
        const float **px[4] = {&x.weight, &x.bias, &x.mean, &x.var};
        const float **py[4] = {&y.weight, &y.bias, &y.mean, &y.var};
        for (int k = 0; k < 4; k++) {
            if ((*px[k] == NULL) != (*py[k] == NULL) ||
                (*px[k] && *px[k] - a->arena != *py[k] - b->arena))
                return 0;
            *px[k] = *py[k] = NULL;
        }
        if (memcmp(&x, &y, sizeof x))
            return 0;
    }
    return 1;
}

static int logits(const hfc_model *m, const float *x, size_t n, float *y)
{
    hfc_engine *e;
    hfc_engine_options opt = {.threads = 1};
    hfc_error err;
    if (hfc_engine_new(&e, m, &opt, &err))
        return -1;
    hfc_engine_forward(e, x, n, y);
    hfc_engine_free(e);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: test_flips MODEL FLIPS [SEED]\n");
        return 2;
    }
    const char *path = argv[1];
    long flips = atol(argv[2]);
    uint64_t seed = argc > 3 ? strtoull(argv[3], NULL, 10) * 2654435761u + 1 : 88172645463325252u;
    uint8_t *raw;
    size_t len;
    hfc_error err = {{0}, {0}};
    hfc_model good;
    if (hfc_read_file(path, &raw, &len, &err) || hfc_model_parse(&good, raw, len, path, &err)) {
        printf("FAIL: %s: %s\n", path, err.reason);
        return 1;
    }
    /* 4 images of pseudo-random pixels, preprocessed as the model's input */
    const size_t n = 4, pixels = (size_t)good.channels * good.height * good.width;
    float *x = malloc(n * pixels * sizeof *x), *y0 = malloc(n * (size_t)good.n_classes * 4),
          *y1 = malloc(n * (size_t)good.n_classes * 4);
    uint64_t s = 12345;
    for (size_t i = 0; i < n * pixels; i++)
        x[i] = (float)(next(&s) % 256) / 64.0f - 2.0f;
    if (!x || !y0 || !y1 || logits(&good, x, n, y0)) {
        printf("FAIL: %s: no engine for the undamaged model\n", path);
        return 1;
    }
    long refused = 0, same = 0, wrong_refusal = 0, changed = 0;
    char example[600] = "";
    for (long f = 0; f < flips; f++) {
        size_t byte = (size_t)(next(&seed) % len);
        int bit = (int)(next(&seed) % 8);
        raw[byte] ^= (uint8_t)(1u << bit);
        hfc_model m;
        hfc_error e = {{0}, {0}};
        hfc_status st = hfc_model_parse(&m, raw, len, path, &e);
        if (st) {
            refused++;
            if (st != HFC_ERR_MODEL || strcmp(e.path, path)) {
                if (!wrong_refusal++)
                    snprintf(example, sizeof example, "byte %zu bit %d: status %d, path '%.200s': %.200s",
                             byte, bit, (int)st, e.path, e.reason);
            }
        } else {
            int ok = same_model(&good, &m) && !logits(&m, x, n, y1) &&
                     !memcmp(y0, y1, n * (size_t)good.n_classes * 4);
            if (ok) {
                same++;
            } else if (!changed++) {
                snprintf(example, sizeof example, "byte %zu bit %d loads to another model", byte,
                         bit);
            }
            hfc_model_free(&m);
        }
        raw[byte] ^= (uint8_t)(1u << bit);
    }
    check(!wrong_refusal && !changed,
          "%s: %ld single-bit flips: %ld refused as damaged (exit 4, the file named), %ld load "
          "to the same model and logits, %ld accepted with a change, %ld refused otherwise%s%s",
          path, flips, refused - wrong_refusal, same, changed, wrong_refusal,
          example[0] ? "; first: " : "", example);
    hfc_model_free(&good);
    free(raw);
    free(x);
    free(y0);
    free(y1);
    return test_failures != 0;
}
