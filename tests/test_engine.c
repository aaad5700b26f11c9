/* test_engine.c - logits of an exported model against PyTorch's.
 *
 *   test_engine NAME MODEL.bin INPUT.in LOGITS.out
 * passes when max |ours - torch| <= 1e-4 * max |torch|, when 1 and 2
 * threads give bit-identical logits, and when the engine gives the same
 * logits after the model's conv weights are released (it reads only its
 * own copies), which no new engine accepts. */
#include <math.h>

#include "test_util.h"

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: test_engine NAME MODEL INPUT LOGITS\n");
        return 2;
    }
    ref_file in = read_ref(argv[3], 4), out = read_ref(argv[4], 4);
    size_t n = in.a;
    hfc_model m;
    hfc_error err;
    load_model_or_fail(argv[1], argv[2], &m);
    if (out.a != n || out.b != (uint32_t)m.n_classes || in.b != HFC_CIFAR_PIXELS) {
        printf("FAIL: %s: reference shapes do not match the model\n", argv[1]);
        return 1;
    }
    float *x = malloc(n * HFC_CIFAR_PIXELS * 4), *ref = malloc(n * m.n_classes * 4);
    float *y1 = malloc(n * m.n_classes * 4), *y2 = malloc(n * m.n_classes * 4);
    memcpy(x, in.body, n * HFC_CIFAR_PIXELS * 4);
    memcpy(ref, out.body, n * m.n_classes * 4);

    hfc_conv_choice choice = conv_choice_from_env();
    hfc_engine_options opt1 = {.threads = 1, .conv = choice}, opt2 = {.threads = 2, .conv = choice};
    hfc_engine *e1, *e2;
    if (hfc_engine_new(&e1, &m, &opt1, &err) || hfc_engine_new(&e2, &m, &opt2, &err)) {
        printf("FAIL: %s: engine: %s\n", argv[1], err.reason);
        return 1;
    }
    hfc_engine_forward(e1, x, n, y1);
    hfc_engine_forward(e2, x, n, y2);
    double diff = 0, scale = 0;
    for (size_t i = 0; i < n * m.n_classes; i++) {
        diff = fmax(diff, fabs((double)y1[i] - ref[i]));
        scale = fmax(scale, fabs((double)ref[i]));
    }
    double rel = diff / (scale > 0 ? scale : 1);
    check(rel <= 1e-4, "%s: logits vs PyTorch: max abs err %.3e, relative %.3e (%zu images)",
          argv[1], diff, rel, n);
    check(!memcmp(y1, y2, n * m.n_classes * 4), "%s: 1 and 2 threads give identical logits",
          argv[1]);
    const float *first = NULL;
    for (int i = 1; i < m.n_nodes && !first; i++)
        if (m.nodes[i].op == HFC_OP_CONV2D)
            first = m.nodes[i].weight;
    hfc_model_release_conv_weights(&m);
    hfc_engine_forward(e2, x, n, y1);
    hfc_engine *e3 = NULL;
    hfc_status st = hfc_engine_new(&e3, &m, &opt1, &err);
    int convs = 0, kept = 0;
    for (int i = 1; i < m.n_nodes; i++)
        if (m.nodes[i].op == HFC_OP_CONV2D) {
            convs++;
            kept += m.nodes[i].weight != NULL && m.nodes[i].weight == first;
        }
    check(!memcmp(y1, y2, n * m.n_classes * 4) && (convs ? st == HFC_ERR_MODEL && !e3 : !st) &&
              kept == (convs > 0),
          "%s: the model's conv weights released (all but the first of %d): the engine gives "
          "the same logits, a new engine is refused", argv[1], convs);
    hfc_engine_free(e3);
    hfc_engine_free(e1);
    hfc_engine_free(e2);
    hfc_model_free(&m);
    free(x);
    free(ref);
    free(y1);
    free(y2);
    free(in.raw);
    free(out.raw);
    return test_failures != 0;
}
