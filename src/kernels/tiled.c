/* kernels/tiled.c - what the tiled kernels share whatever the instruction
 * set: the layouts of their weights (B's panels, Winograd's transformed
 * weights) and the choice of the set that runs them, made once for the run
 * by hfc_isa (src/core/cpu.c). The kernels themselves are
 * kernels/conv_simd.h, built by simd_avx512.c and simd_avx2.c. */
#include <pthread.h>
#include <string.h>

#include "hfc/core.h"
#include "kernels/ops.h"

#define WT 6 /* Winograd's input tile side (kernels/conv_simd.h) */

/* 64 columns wide while 64 are left, then 32, 16 and the rest, for both
 * sets (AVX2's tiles take a panel 16 columns at a time; 16-wide panels for
 * them measured no faster on Zen 4). */
int hfc_panel_width(int left)
{
    return left >= 64 ? 64 : left >= 32 ? 32 : left >= 16 ? 16 : left;
}

int hfc_panel_start(int cols, int c, int *width)
{
    const int widest = hfc_panel_width(1 << 30);
    int o0 = c / widest * widest;
    if (cols - o0 < widest) /* the narrower blocks after the last widest one */
        while (c >= o0 + hfc_panel_width(cols - o0))
            o0 += hfc_panel_width(cols - o0);
    *width = hfc_panel_width(cols - o0);
    return o0;
}

size_t hfc_panel_offset(int k, int cols, int r, int c)
{
    int width, o0 = hfc_panel_start(cols, c, &width);
    return (size_t)k * o0 + (size_t)r * width + (size_t)(c - o0);
}

size_t hfc_winograd_plane_stride(int tiles, int c) { return (size_t)tiles * c + 16; }

int hfc_winograd_tiles(int h, int w) { return ((h + 3) / 4) * ((w + 3) / 4); }

size_t hfc_conv2d_winograd_scratch(int h, int w, int cin, int cout, int chunk)
{
    const int tiles = chunk * hfc_winograd_tiles(h, w);
    return (size_t)(h + 2) * (w + 2) * cin +
           WT * WT * (hfc_winograd_plane_stride(tiles, cin) + hfc_winograd_plane_stride(tiles, cout));
}

/* The transform runs on O_RUN output channels at once (vectors of doubles:
 * each lane computes the same sums in the same order as a scalar would).
 * O_RUN divides every panel's start (64, 32, 16), so a run's floats are
 * adjacent in each of the 36 planes; w's lines (o fixed, c adjacent) stay
 * in L1 while c moves on. */
enum { O_RUN = 16 };

typedef struct {
    const double (*G)[3]; /* the 6 x 3 weight transform, per side */
    const float *w;
    int cin, cout, c_from, c_to; /* this part's input channels */
    float *u;
} winograd_part;

/* F(4x4, 3x3)'s G (points 0, 1, -1, 2, -2) */
static const double G43[WT][3] = {{1 / 4., 0, 0},           {-1 / 6., -1 / 6., -1 / 6.},
                                  {-1 / 6., 1 / 6., -1 / 6.}, {1 / 24., 1 / 12., 1 / 6.},
                                  {1 / 24., -1 / 12., 1 / 6.}, {0, 0, 1}};
/* the stride-2 split (kernels/conv_simd.h): tap 1 alone, then F(4, 2)'s G
 * (points 0, 1, -1, 2) on taps 0 and 2 */
static const double G_S2[WT][3] = {{0, 1, 0},           {1 / 2., 0, 0},       {-1 / 2., 0, -1 / 2.},
                                   {-1 / 6., 0, 1 / 6.}, {1 / 6., 0, 1 / 3.}, {0, 0, 1}};

static void *winograd_weights_part(void *arg)
{
    const winograd_part *p = arg;
    const double(*G)[3] = p->G;
    const int cin = p->cin, cout = p->cout;
    const size_t plane = (size_t)cin * cout;
    for (int o0 = 0; o0 < cout; o0 += O_RUN) {
        const int n = cout - o0 < O_RUN ? cout - o0 : O_RUN;
        for (int c = p->c_from; c < p->c_to; c++) {
            double g[3][3][O_RUN], gg[WT][3][O_RUN];
            float r[O_RUN];
            for (int ky = 0; ky < 3; ky++)
                for (int kx = 0; kx < 3; kx++)
                    for (int l = 0; l < O_RUN; l++)
                        g[ky][kx][l] =
                            l < n ? p->w[(((size_t)(o0 + l) * 3 + ky) * 3 + kx) * cin + c] : 0.0;
            for (int i = 0; i < WT; i++)
                for (int kx = 0; kx < 3; kx++)
                    for (int l = 0; l < O_RUN; l++)
                        gg[i][kx][l] = G[i][0] * g[0][kx][l] + G[i][1] * g[1][kx][l] +
                                       G[i][2] * g[2][kx][l];
            float *at = p->u + hfc_panel_offset(cin, cout, c, o0);
            for (int i = 0; i < WT; i++)
                for (int j = 0; j < WT; j++) {
                    for (int l = 0; l < O_RUN; l++)
                        r[l] = (float)(gg[i][0][l] * G[j][0] + gg[i][1][l] * G[j][1] +
                                       gg[i][2][l] * G[j][2]);
                    memcpy(at + (size_t)(WT * i + j) * plane, r, (size_t)n * sizeof *r);
                }
        }
    }
    return NULL;
}

/* The input channels are shared out among the threads (each value is
 * computed alone, so the split changes nothing): a big model's planning is mostly these transforms and the first touch of the
 * pages they fill, which the threads then take in parallel (VGG-16's
 * gradient engine writes 240 MB of them). */
static void transform_weights(const double (*G)[3], const float *w, int cin, int cout, float *u,
                              int threads)
{
    enum { MAX_PARTS = 16, MIN_WEIGHTS = 65536 };
    int parts = (double)cin * cout < MIN_WEIGHTS ? 1 : threads;
    parts = parts > MAX_PARTS ? MAX_PARTS : parts < 1 ? 1 : parts;
    parts = parts > cin ? cin : parts;
    winograd_part part[MAX_PARTS];
    pthread_t tid[MAX_PARTS];
    int started[MAX_PARTS] = {0};
    for (int k = 0; k < parts; k++) {
        part[k] = (winograd_part){G, w, cin, cout, cin * k / parts, cin * (k + 1) / parts, u};
        started[k] = k > 0 && pthread_create(&tid[k], NULL, winograd_weights_part, &part[k]) == 0;
    }
    for (int k = 0; k < parts; k++)
        if (!started[k])
            winograd_weights_part(&part[k]);
    for (int k = 1; k < parts; k++)
        if (started[k])
            pthread_join(tid[k], NULL);
}

void hfc_winograd_weights(const float *w, int cin, int cout, float *u, int threads)
{
    transform_weights(G43, w, cin, cout, u, threads);
}

void hfc_winograd_s2_weights(const float *w, int cin, int cout, float *u, int threads)
{
    transform_weights(G_S2, w, cin, cout, u, threads);
}

/* 81 rows of values a tile in v and in m, 36 matrices each a cache line apart
 * (conv_simd.h, s2_block), and a padded copy of one image */
size_t hfc_winograd_s2_scratch(int h, int w, int cin, int cout, int tiles)
{
    return (size_t)(h + 2) * (w + 2) * cin + 81 * (size_t)tiles * (cin + cout) + 2 * 36 * 16;
}

/* ------------------------------------------------- one set for the run */

/* The kernels of each set (declared here: nothing else calls them). */
#define KERNEL_SET(S)                                                                             \
    void hfc_gemm_tiled_##S(const float *a, size_t rows, int k, const float *b, int cols,         \
                            const float *bias, const float *res, int relu, float *out);           \
    void hfc_conv2d_im2col_tiled_##S(const hfc_tensor *x, const float *wt, int kh, int kw,        \
                                     int sh, int sw, int ph, int pw, const hfc_conv_extras *ex,   \
                                     float *col, hfc_tensor *y);                                  \
    void hfc_conv2d_direct_##S(const hfc_tensor *x, const float *wt, int kh, int kw, int sh,      \
                               int sw, int ph, int pw, const hfc_conv_extras *ex, float *pad,     \
                               hfc_tensor *y);                                                    \
    void hfc_conv2d_winograd_##S(const hfc_tensor *x, const float *u, int chunk,                  \
                                 const hfc_conv_extras *ex, float *scratch, hfc_tensor *y);       \
    void hfc_conv2d_small_groups_##S(const hfc_tensor *x, const float *wt, int g, int kh, int kw, \
                                     int sh, int sw, int ph, int pw, int dh, int dw,              \
                                     const float *bias, int relu, hfc_tensor *y);                 \
    void hfc_dx_inside_taps_##S(const hfc_tensor *dy, const float *w, int panels, int kh, int kw, int sh,     \
                                int sw, int ph, int pw, hfc_tensor *dx);                          \
    void hfc_conv2d_winograd_s2_##S(const hfc_tensor *x, const float *u, int chunk,              \
                                    int transposed, const hfc_conv_extras *ex, float *scratch,    \
                                    hfc_tensor *y);
KERNEL_SET(avx512)
KERNEL_SET(avx2)

static int use_avx512(void) { return hfc_isa() == HFC_ISA_AVX512; }

int hfc_tiled_lanes(void)
{
    return hfc_isa() == HFC_ISA_AVX512 ? 16 : hfc_isa() == HFC_ISA_AVX2 ? 8 : 0;
}

void hfc_gemm_tiled(const float *a, size_t rows, int k, const float *b, int cols,
                    const float *bias, const float *res, int relu, float *out)
{
    (use_avx512() ? hfc_gemm_tiled_avx512 : hfc_gemm_tiled_avx2)(a, rows, k, b, cols, bias, res,
                                                                 relu, out);
}

void hfc_conv2d_im2col_tiled(const hfc_tensor *x, const float *wt, int kh, int kw, int sh, int sw,
                             int ph, int pw, const hfc_conv_extras *ex, float *col, hfc_tensor *y)
{
    (use_avx512() ? hfc_conv2d_im2col_tiled_avx512 : hfc_conv2d_im2col_tiled_avx2)(
        x, wt, kh, kw, sh, sw, ph, pw, ex, col, y);
}

void hfc_dx_inside_taps(const hfc_tensor *dy, const float *w, int panels, int kh, int kw, int sh, int sw,
                        int ph, int pw, hfc_tensor *dx)
{
    (use_avx512() ? hfc_dx_inside_taps_avx512 : hfc_dx_inside_taps_avx2)(dy, w, panels, kh, kw, sh, sw,
                                                                        ph, pw, dx);
}

void hfc_conv2d_winograd_s2(const hfc_tensor *x, const float *u, int chunk, int transposed,
                            const hfc_conv_extras *ex, float *scratch, hfc_tensor *y)
{
    (use_avx512() ? hfc_conv2d_winograd_s2_avx512 : hfc_conv2d_winograd_s2_avx2)(
        x, u, chunk, transposed, ex, scratch, y);
}

void hfc_conv2d_direct(const hfc_tensor *x, const float *wt, int kh, int kw, int sh, int sw,
                       int ph, int pw, const hfc_conv_extras *ex, float *pad, hfc_tensor *y)
{
    (use_avx512() ? hfc_conv2d_direct_avx512 : hfc_conv2d_direct_avx2)(x, wt, kh, kw, sh, sw, ph,
                                                                       pw, ex, pad, y);
}

void hfc_conv2d_winograd(const hfc_tensor *x, const float *u, int chunk,
                         const hfc_conv_extras *ex, float *scratch, hfc_tensor *y)
{
    (use_avx512() ? hfc_conv2d_winograd_avx512 : hfc_conv2d_winograd_avx2)(x, u, chunk, ex,
                                                                           scratch, y);
}

void hfc_conv2d_small_groups(const hfc_tensor *x, const float *wt, int g, int kh, int kw, int sh,
                             int sw, int ph, int pw, int dh, int dw, const float *bias, int relu,
                             hfc_tensor *y)
{
    (use_avx512() ? hfc_conv2d_small_groups_avx512 : hfc_conv2d_small_groups_avx2)(
        x, wt, g, kh, kw, sh, sw, ph, pw, dh, dw, bias, relu, y);
}
