/* test_grad.c - input gradients of an exported model against torch autograd.
 *
 *   test_grad NAME MODEL.bin INPUT.in GRAD.ref [BN_BATCH]
 * GRAD.ref (tests/gen_refs.py): u32 n, u32 k, f32 seed (n, k), f32 grad
 * (n, 3072): the gradient of sum(logits * seed) with respect to the raw
 * pixels, f32 near_kink (n): 1 for an image that comes within 3e-6 (relative) of a
 * ReLU-like kink or a max-pool near-tie, where float32 rounding may take
 * the other branch. Passes when every image is within 1e-4 (relative to the
 * batch's largest gradient) or near a kink, at most a quarter are not
 * within it, and 1 and 2 threads agree bit for bit. BN_BATCH > 0: BatchNorm by batch statistics over runs of that many
 * images (PyTorch's training mode over the same batch). */
#include <math.h>

#include "test_util.h"

typedef struct {
    const float *seed;
    int k;
} seed_loss;

/* d loss / d logits for loss = sum(logits * seed): the seed itself. */
static void seed_grad(void *ctx, int pass, size_t first, size_t count, const float *logits,
                      float *dlogits)
{
    const seed_loss *s = ctx;
    (void)logits;
    memcpy(dlogits, s->seed + first * s->k, count * s->k * sizeof(float));
    for (size_t i = 0; pass && i < count * s->k; i++) /* pass p: the seed times 2^p */
        dlogits[i] = ldexpf(dlogits[i], pass);
}

int main(int argc, char **argv)
{
    if (argc != 5 && argc != 6) {
        fprintf(stderr, "usage: test_grad NAME MODEL INPUT GRAD [BN_BATCH]\n");
        return 2;
    }
    ref_file in = read_ref(argv[3], 4), ref = read_ref(argv[4], 0);
    size_t n = in.a;
    hfc_model m;
    hfc_error err;
    load_model_or_fail(argv[1], argv[2], &m);
    size_t k = (size_t)m.n_classes, P = HFC_CIFAR_PIXELS;
    if (ref.a != n || ref.b != k || ref.len != 8 + 4 * (n * k + n * P + n)) {
        printf("FAIL: %s: reference shapes do not match the model\n", argv[1]);
        return 1;
    }
    float *x = malloc(n * P * 4), *want = malloc(n * P * 4), *seed = malloc(n * k * 4);
    float *g1 = malloc(n * P * 4), *g2 = malloc(n * P * 4), *logits = malloc(n * k * 4);
    memcpy(x, in.body, n * P * 4);
    memcpy(seed, ref.body, n * k * 4);
    memcpy(want, ref.body + n * k * 4, n * P * 4);
    float near[n];
    memcpy(near, ref.body + (n * k + n * P) * 4, n * 4);

    int bn_batch = argc == 6 ? atoi(argv[5]) : 0;
    hfc_conv_choice choice = conv_choice_from_env();
    hfc_engine_options o1 = {.threads = 1, .conv = choice, .bn_batch = bn_batch, .gradients = 1};
    hfc_engine_options o2 = o1;
    o2.threads = 2;
    hfc_engine *e1, *e2;
    if (hfc_engine_new(&e1, &m, &o1, &err) || hfc_engine_new(&e2, &m, &o2, &err)) {
        printf("FAIL: %s: engine: %s\n", argv[1], err.reason);
        return 1;
    }
    seed_loss sl = {seed, (int)k};
    if (hfc_engine_input_grad(e1, x, n, 1, seed_grad, &sl, logits, g1, &err) ||
        hfc_engine_input_grad(e2, x, n, 1, seed_grad, &sl, logits, g2, &err)) {
        printf("FAIL: %s: %s\n", argv[1], err.reason);
        return 1;
    }
    /* Per image, relative to the largest gradient of the batch. An image off
     * by more must be one whose forward pass comes near a kink in float64
     * (the reference marks them): float32 rounding took the other branch. */
    double scale = 0, worst = 0;
    size_t flipped = 0, unexplained = 0;
    for (size_t i = 0; i < n * P; i++)
        scale = fmax(scale, fabs((double)want[i]));
    for (size_t b = 0; b < n; b++) {
        double d = 0;
        for (size_t i = 0; i < P; i++)
            d = fmax(d, fabs((double)g1[b * P + i] - want[b * P + i]));
        if (d <= 1e-4 * scale) {
            worst = fmax(worst, d);
            continue;
        }
        flipped++;
        unexplained += !near[b];
        printf("  image %zu: max abs err %.3e (%s)\n", b, d,
               near[b] ? "near a kink: a branch flip" : "NOT near a kink");
    }
    check(scale > 0 && !unexplained && 4 * flipped <= n,
          "%s: input gradient vs torch autograd: %zu of %zu images within relative %.1e "
          "(worst %.3e), %zu off by a branch flip at a near-kink%s",
          argv[1], n - flipped, n, 1e-4, scale > 0 ? worst / scale : 0, flipped,
          bn_batch ? ", batch statistics" : "");
    check(!memcmp(g1, g2, n * P * 4), "%s: 1 and 2 threads give identical gradients", argv[1]);
    /* Three backward passes after one forward: pass p's seed is 2^p times
     * the seed, so its gradient is exactly 2^p g1 unless a pass saw what the
     * one before it left behind. */
    float *g3 = malloc(3 * n * P * 4);
    int same = g3 && !hfc_engine_input_grad(e2, x, n, 3, seed_grad, &sl, logits, g3, &err);
    for (size_t i = 0; same && i < 3 * n * P; i++)
        same = g3[i] == ldexpf(g1[i % (n * P)], (int)(i / (n * P)));
    check(same, "%s: three backward passes after one forward give g, 2g and 4g exactly", argv[1]);
    free(g3);
    /* An image's logits and gradient do not depend on where it sits in the
     * call (the margins' batches shrink as images finish): all but the
     * first image again, each one place earlier. */
    float *gs = malloc(n * P * 4), *ls = malloc(n * k * 4);
    seed_loss shifted = {seed + k, (int)k};
    int moved = bn_batch || (n > 1 && gs && ls &&
                !hfc_engine_input_grad(e1, x + P, n - 1, 1, seed_grad, &shifted, ls, gs, &err) &&
                !memcmp(gs, g1 + P, (n - 1) * P * 4));
    float *l1 = malloc(n * k * 4); /* (batch statistics: they do, by design) */
    hfc_engine_forward(e1, x, n, l1);
    moved = moved && (bn_batch || !memcmp(ls, l1 + k, (n - 1) * k * 4));
    check(moved, "%s: an image's logits and gradient do not depend on its place in the call%s",
          argv[1], bn_batch ? " (not asked of batch statistics)" : "");
    free(gs), free(ls), free(l1);
    const char *dump = getenv("HFC_GRAD_DUMP"); /* for a closer look: our gradient, raw f32 */
    FILE *f = dump ? fopen(dump, "wb") : NULL;
    if (f) {
        fwrite(g1, 4, n * P, f);
        fclose(f);
    }
    hfc_engine_free(e1);
    hfc_engine_free(e2);
    hfc_model_free(&m);
    free(x), free(want), free(seed), free(g1), free(g2), free(logits);
    free(in.raw), free(ref.raw);
    return test_failures != 0;
}
