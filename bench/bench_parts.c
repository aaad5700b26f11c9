/* bench_parts.c - time hfc-eval's parts on one machine, print one JSON line.
 *
 *   bench_parts MODEL DATA N THREADS
 * DATA is a CIFAR-10 file or directory, or "-" for N generated images.
 * Measures: the split's forward transform, its inverse for one radius (4),
 * the whole split of a sweep over radii 2, 4, ..., 16, the engine's forward pass (and its GFLOP/s), and the SGEMM peak of the same BLAS with
 * the same thread count on 1024x1024x1024 matrices (--sgemm: that alone).
 *
 *   bench_parts --split IMAGES.npy R REPS   the split of an .npy's images at
 *       radius R, forward and inverse, the best of REPS (any size)
 *   bench_parts --folder ROOT RESIZE CROP THREADS   loading an image folder
 *   bench_parts --backward MODEL N THREADS   the gradient engine on N generated
 *       images: its forward alone, then one forward with 10 backward passes (a
 *       Jacobian of the logits, as margin runs it), best of 3; the backward's
 *       GFLOP/s count a pass as the forward's multiply-adds (d/dx of every
 *       conv and linear layer is a product of the same size), beside the
 *       inference engine's forward GFLOP/s */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hfc.h"

#define BATCH 256

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double sgemm_gflops(int threads)
{
    const int n = 1024;
    float *a = malloc(sizeof(float) * n * n), *b = malloc(sizeof(float) * n * n),
          *c = malloc(sizeof(float) * n * n);
    for (int i = 0; i < n * n; i++)
        a[i] = b[i] = (float)(i % 7) * 0.1f;
    openblas_set_num_threads(threads);
    double best = 0;
    for (int rep = 0; rep < 5; rep++) {
        double t = now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n, b, n, 0, c, n);
        t = now() - t;
        double g = 2.0 * n * n * n / t / 1e9;
        best = g > best ? g : best;
    }
    openblas_set_num_threads(1);
    free(a);
    free(b);
    free(c);
    return best;
}

/* The split of every image of a .npy (random labels file beside it not
 * needed: zeros are made here), best of reps. */
static int split_only(const char *path, double r, int reps)
{
    hfc_error err;
    hfc_dataset ds;
    char labels[1100];
    snprintf(labels, sizeof labels, "%s.labels.npy", path);
    if (hfc_dataset_load_npy(&ds, path, labels, 1, HFC_CIFAR10, 0, &err)) {
        fprintf(stderr, "bench_parts: %s: %s\n", err.path, err.reason);
        return 1;
    }
    const size_t P = hfc_dataset_image_size(&ds);
    float *x = malloc(ds.n * P * sizeof *x);
    for (size_t i = 0; i < ds.n; i++)
        hfc_dataset_image(&ds, i, x + i * P);
    hfc_mask mask = {HFC_MASK_DISC, r, 0};
    hfc_splitter *s;
    if (hfc_splitter_new(&s, ds.n, ds.channels, ds.height, ds.width, &mask, 1, &err))
        return 1;
    double best = 1e30;
    for (int k = 0; k < reps; k++) {
        double t = now();
        hfc_split_forward(s, x, ds.n);
        hfc_split_apply(s, &mask, &err);
        t = now() - t;
        best = t < best ? t : best;
    }
    printf("{\"images\":%zu,\"height\":%d,\"width\":%d,\"split_s\":%.5f}\n", ds.n, ds.height,
           ds.width, best);
    hfc_splitter_free(s);
    free(x);
    hfc_dataset_free(&ds);
    return 0;
}

/* Loading an image folder (decode, Resize, CenterCrop) on `threads` threads. */
static int folder_only(const char *root, int resize, int crop, int threads)
{
    hfc_error err;
    hfc_dataset ds;
    hfc_folder_options fo = {3, resize, crop, threads, 0};
    double t = now();
    if (hfc_dataset_load_folder(&ds, root, &fo, 0, &err)) {
        fprintf(stderr, "bench_parts: %s: %s\n", err.path, err.reason);
        return 1;
    }
    t = now() - t;
    printf("{\"images\":%zu,\"height\":%d,\"width\":%d,\"load_s\":%.4f}\n", ds.n, ds.height,
           ds.width, t);
    hfc_dataset_free(&ds);
    return 0;
}

static void one_hot(void *ctx, int k, size_t first, size_t count, const float *logits, float *d)
{
    const int classes = *(const int *)ctx;
    (void)first, (void)logits;
    memset(d, 0, count * classes * sizeof *d);
    for (size_t i = 0; i < count; i++)
        d[i * classes + k % classes] = 1.0f;
}

static int backward_only(const char *path, size_t n, int threads)
{
    hfc_error err;
    hfc_model m;
    hfc_engine *inf, *grad;
    if (hfc_model_load(&m, path, &err) ||
        hfc_engine_new(&inf, &m, &(hfc_engine_options){.threads = threads}, &err) ||
        hfc_engine_new(&grad, &m, &(hfc_engine_options){.threads = threads, .gradients = 1},
                       &err)) {
        fprintf(stderr, "bench_parts: %s: %s\n", path, err.reason);
        return 1;
    }
    const size_t P = (size_t)m.channels * m.height * m.width;
    const int passes = 10;
    float *x = malloc(n * P * sizeof *x), *logits = malloc(n * m.n_classes * sizeof *logits);
    float *dx = malloc(passes * n * P * sizeof *dx);
    if (!x || !logits || !dx)
        return 1;
    srand(1);
    for (size_t i = 0; i < n * P; i++)
        x[i] = (float)(rand() & 255);
    double t_inf = 1e30, t_fwd = 1e30, t_all = 1e30;
    for (int rep = 0; rep < 3; rep++) {
        double t = now();
        hfc_engine_forward(inf, x, n, logits);
        t_inf = fmin(t_inf, now() - t);
        t = now();
        hfc_engine_forward(grad, x, n, logits);
        t_fwd = fmin(t_fwd, now() - t);
        t = now();
        hfc_engine_input_grad(grad, x, n, passes, one_hot, &m.n_classes, logits, dx, &err);
        t_all = fmin(t_all, now() - t);
    }
    const double flops = hfc_engine_flops(inf) * (double)n, t_back = (t_all - t_fwd) / passes;
    printf("{\"images\":%zu,\"threads\":%d,\"forward_s\":%.4f,\"forward_gflops\":%.2f,"
           "\"grad_forward_s\":%.4f,\"backward_pass_s\":%.4f,\"backward_gflops\":%.2f}\n",
           n, threads, t_inf, flops / t_inf / 1e9, t_fwd, t_back, flops / t_back / 1e9);
    hfc_engine_free(inf), hfc_engine_free(grad), hfc_model_free(&m);
    free(x), free(logits), free(dx);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "--sgemm")) {  /* the SGEMM peak alone */
        double peak = sgemm_gflops(atoi(argv[2]));
        printf("{\"sgemm_peak_gflops\":%.2f,\"blas_core\":\"%s\"}\n", peak,
               openblas_get_corename());
        return 0;
    }
    if (argc == 5 && !strcmp(argv[1], "--split"))
        return split_only(argv[2], atof(argv[3]), atoi(argv[4]));
    if (argc == 5 && !strcmp(argv[1], "--backward"))
        return backward_only(argv[2], (size_t)atol(argv[3]), atoi(argv[4]));
    if (argc == 6 && !strcmp(argv[1], "--folder"))
        return folder_only(argv[2], atoi(argv[3]), atoi(argv[4]), atoi(argv[5]));
    if (argc != 5) {
        fprintf(stderr, "usage: bench_parts MODEL DATA|- N THREADS\n"
                        "       bench_parts --sgemm THREADS\n");
        return 1;
    }
    size_t n = (size_t)atol(argv[3]);
    int threads = atoi(argv[4]);
    hfc_error err;
    hfc_model m;
    hfc_dataset ds = {0};
    if (hfc_model_load(&m, argv[1], &err)) {
        fprintf(stderr, "bench_parts: %s: %s\n", err.path, err.reason);
        return 1;
    }
    uint8_t *pixels;
    if (strcmp(argv[2], "-")) {
        if (hfc_dataset_load(&ds, argv[2], HFC_CIFAR10, HFC_SET_TEST, n, &err)) {
            fprintf(stderr, "bench_parts: %s: %s\n", err.path, err.reason);
            return 1;
        }
        n = ds.n;
        pixels = ds.pixels;
    } else {
        pixels = malloc(n * HFC_CIFAR_PIXELS);
        for (size_t i = 0; i < n * HFC_CIFAR_PIXELS; i++)
            pixels[i] = (uint8_t)(rand() & 255);
    }
    hfc_engine *e;
    hfc_splitter *s, *sweep;
    hfc_mask four = {HFC_MASK_DISC, 4, 0}, sweep_masks[8];
    for (int r = 0; r < 8; r++)
        sweep_masks[r] = (hfc_mask){HFC_MASK_DISC, 2.0 * (r + 1), 0};
    if (hfc_engine_new(&e, &m, &(hfc_engine_options){.threads = threads}, &err) ||
        hfc_splitter_new(&s, BATCH, 3, 32, 32, &four, 1, &err) ||
        hfc_splitter_new(&sweep, BATCH, 3, 32, 32, sweep_masks, 8, &err)) {
        fprintf(stderr, "bench_parts: %s\n", err.reason);
        return 1;
    }
    float *x = malloc(sizeof(float) * BATCH * HFC_CIFAR_PIXELS);
    float *logits = malloc(sizeof(float) * BATCH * m.n_classes);
    double t_split_fwd = 0, t_split_inv = 0, t_sweep = 0, t_engine = 0;
    for (size_t first = 0; first < n; first += BATCH) {
        size_t b = n - first < BATCH ? n - first : BATCH;
        for (size_t k = 0; k < b * HFC_CIFAR_PIXELS; k++)
            x[k] = pixels[first * HFC_CIFAR_PIXELS + k];
        double t = now();
        hfc_split_forward(s, x, b);
        t_split_fwd += now() - t;
        t = now();
        hfc_split_apply(s, &four, &err);
        t_split_inv += now() - t;
        t = now();
        hfc_split_forward(sweep, x, b);
        for (int r = 0; r < 8; r++)
            hfc_split_apply(sweep, &sweep_masks[r], &err);
        t_sweep += now() - t;
        t = now();
        hfc_engine_forward(e, x, b, logits);
        t_engine += now() - t;
    }
    /* Last: OpenBLAS's own threads keep spinning for a while after a call. */
    double peak = sgemm_gflops(threads);
    printf("{\"images\":%zu,\"threads\":%d,\"split_forward_s\":%.4f,\"split_inverse_per_radius_s\":%.4f,"
           "\"sweep_split_s\":%.4f,"
           "\"engine_forward_s\":%.4f,\"engine_gflops\":%.2f,\"sgemm_peak_gflops\":%.2f,"
           "\"blas_core\":\"%s\"}\n",
           n, threads, t_split_fwd, t_split_inv, t_sweep, t_engine,
           hfc_engine_flops(e) * (double)n / t_engine / 1e9, peak, openblas_get_corename());
    free(x);
    free(logits);
    if (!strcmp(argv[2], "-"))
        free(pixels);
    hfc_dataset_free(&ds);
    hfc_splitter_free(s);
    hfc_splitter_free(sweep);
    hfc_engine_free(e);
    hfc_model_free(&m);
    return 0;
}
