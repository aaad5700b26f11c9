/* kernels/groups_simd.h - grouped convolutions with few channels per group
 * (depthwise: 1; RegNetX: 8), written in kernels/simd.h's vector words and
 * built once per instruction set after kernels/conv_simd.h (simd_avx512.c,
 * simd_avx2.c). Like that file, not a header to include anywhere else.
 *
 * Groups of g input and g output channels, g dividing VW. A block of VW
 * output channels reads the same VW input channels, whole groups of them,
 * so one vector load per input pixel serves the block: output lane o needs
 * input lane o - o % g + j for the group's j-th channel, one permute.
 * PIX_BLOCK output pixels of a row share each weight vector; a tap outside
 * the image reads zeros. Per output value the sum runs over taps (ky, kx)
 * then j, whatever the image, block, thread or instruction set. */
#include "kernels/ops.h"
#include "kernels/simd.h"

#define PIX_BLOCK 8 /* 8 independent sums hide the multiply-add's latency */

/* The bias (or zeros) in every sum; after them the activation and the
 * store of the block's first np pixels. */
SIMD __attribute__((always_inline)) static inline void
block_start(const float *bias, int whole, vmask mk, vf acc[PIX_BLOCK])
{
    const vf b0 = bias ? vload_lanes(whole, 1, mk, bias) : vzero();
    for (int p = 0; p < PIX_BLOCK; p++)
        acc[p] = b0;
}
SIMD __attribute__((always_inline)) static inline void
block_store(const vf acc[PIX_BLOCK], int relu, int whole, vmask mk, int c, int np, float *out)
{
    for (int p = 0; p < PIX_BLOCK; p++) {
        vf v = acc[p];
        if (relu)
            v = vmax(v, vzero());
        if (relu == HFC_FUSED_RELU6)
            v = vmin(v, vset1(6.0f));
        if (p < np)
            vstore_lanes(whole, out + (size_t)p * c, mk, v);
    }
}

/* Where a block's taps are and what it writes. row: the first kernel row
 * inside the image, at the block's channels; rows: how many there are, each
 * `step` floats after the last in the input and kw*g*c in w; ix0: the
 * block's first pixel's first tap (negative in the padding). */
typedef struct {
    const float *row, *w, *bias;
    size_t step;
    int rows, ix0, c, g, sw, kw, dw, relu, np;
    int run, ox0, w_out; /* channel_blocks: `run` blocks of pixels from ox0 of a row of w_out */
    int lanes; /* VW, or the last block's channels */
    vmask mk;
    float *out;
} block;

/* A tap's input vector; CHECKED: zeros where !inside, by a masked load of
 * no lanes rather than a branch (a branch per load was most of the checked
 * blocks' time). */
SIMD __attribute__((always_inline)) static inline vf
tap(int CHECKED, int whole, int inside, const block *b, const float *p)
{
    if (CHECKED)
        return vloadm(vmask_n(inside ? b->lanes : 0), p);
    return vload_lanes(whole, 1, b->mk, p);
}

/* One block: its sums over the kernel rows inside the image, then the
 * store. CHECKED: each tap's input is checked against the row's w_in
 * pixels (zeros outside), for the blocks near a row's ends; unchecked, the
 * taps all lie inside. G > 1: each of a group's channels by its permute.
 * Inlined with constant numbers (SHAPE_FNS: the common shapes) the compiler
 * computes each address once; at stride 1 each input is read and checked
 * once for all the taps that share it (unchecked, GCC folds the loads back
 * into the multiply-adds, which is as fast). With the shape's numbers read
 * at run time, MobileNetV3's depthwise convs at 224 x 224 spent most of
 * their time on index arithmetic. */
SIMD __attribute__((always_inline)) static inline void
block_taps(const block *b, int w_in, const vidx *lanes, int sw, int kw, int dw, int whole, int G,
           int CHECKED)
{
    const int c = b->c;
    vf acc[PIX_BLOCK];
    block_start(b->bias, whole, b->mk, acc);
    for (int r = 0; r < b->rows; r++) {
        const float *row = b->row + r * b->step;
        const float *w = b->w + (size_t)r * kw * G * c;
        if (sw == 1 && dw == 1 && G == 1 && kw <= 7) { /* each input loaded once for its taps */
            vf in[PIX_BLOCK + 6];
            for (int q = 0; q < PIX_BLOCK + kw - 1; q++) {
                const int ix = b->ix0 + q;
                const int inside = !CHECKED || (ix >= 0 && ix < w_in);
                in[q] = tap(CHECKED, whole, inside, b, inside ? row + (ptrdiff_t)ix * c : row);
            }
            for (int kx = 0; kx < kw; kx++) {
                const vf wv = vload_lanes(whole, 1, b->mk, w + (size_t)kx * c);
                for (int p = 0; p < PIX_BLOCK; p++)
                    acc[p] = vfmadd(in[p + kx], wv, acc[p]);
            }
            continue;
        }
        for (int kx = 0; kx < kw; kx++) {
            vf in[PIX_BLOCK];
            for (int p = 0; p < PIX_BLOCK; p++) {
                const int ix = b->ix0 + p * sw + kx * dw;
                const int inside = !CHECKED || (ix >= 0 && ix < w_in);
                in[p] = tap(CHECKED, whole, inside, b, inside ? row + (ptrdiff_t)ix * c : row);
            }
            for (int j = 0; j < G; j++) {
                const vf wv = vload_lanes(whole, 1, b->mk, w + ((size_t)kx * G + j) * c);
                for (int p = 0; p < PIX_BLOCK; p++)
                    acc[p] = vfmadd(G == 1 ? in[p] : vperm(lanes[j], in[p]), wv, acc[p]);
            }
        }
    }
    block_store(acc, b->relu, whole, b->mk, c, b->np, b->out);
}

/* A run of blocks of pixels along a row (b0: the first, at channel block
 * 0), each for every channel block: whole vectors, then a last masked one
 * if c is not a multiple of VW. */
SIMD __attribute__((always_inline)) static inline void
channel_blocks(const block *b0, int w_in, const vidx *lanes, int sw, int kw, int dw, int G,
               int CHECKED)
{
    const int c = b0->c, blocks = (c + VW - 1) / VW, whole = c % VW == 0 ? blocks : blocks - 1;
    block b = *b0;
    for (int k = 0; k < b0->run; k++) {
        const int ox0 = b0->ox0 + PIX_BLOCK * k;
        b.ix0 = b0->ix0 + PIX_BLOCK * sw * k;
        b.np = b0->w_out - ox0 < PIX_BLOCK ? b0->w_out - ox0 : PIX_BLOCK;
        float *out = b0->out + (size_t)PIX_BLOCK * k * c;
        for (int cb = 0; cb < blocks; cb++) {
            b.row = b0->row + VW * cb, b.w = b0->w + VW * cb, b.out = out + VW * cb;
            b.bias = b0->bias ? b0->bias + VW * cb : NULL;
            if (cb < whole) {
                b.lanes = VW, b.mk = vmask_n(VW);
                block_taps(&b, w_in, lanes, sw, kw, dw, 1, G, CHECKED);
            } else {
                b.lanes = c - VW * cb, b.mk = vmask_n(b.lanes);
                block_taps(&b, w_in, lanes, sw, kw, dw, 0, G, CHECKED);
            }
        }
    }
}

/* channel_blocks with the common shapes' numbers as constants, inside and
 * checked; chosen once per call (choose_blocks): deciding per block, from
 * the block's own fields just written, stalled on each (a load wider than
 * the stores it read), and a call per channel block was a third of a
 * 16-channel depthwise conv's time. */
typedef void (*block_fn)(const block *, int, const vidx *);
#define SHAPE_FNS(S, K)                                                                   \
    SIMD static void block_##S##_##K(const block *b, int w_in, const vidx *lanes)         \
    {                                                                                     \
        channel_blocks(b, w_in, lanes, S, K, 1, 1, 0);                                    \
    }                                                                                     \
    SIMD static void block_##S##_##K##_checked(const block *b, int w_in, const vidx *lanes) \
    {                                                                                     \
        channel_blocks(b, w_in, lanes, S, K, 1, 1, 1);                                    \
    }
SHAPE_FNS(1, 3)
SHAPE_FNS(2, 3)
SHAPE_FNS(1, 5)
SHAPE_FNS(2, 5)
SHAPE_FNS(1, 7)
#undef SHAPE_FNS
SIMD static void block_depthwise(const block *b, int w_in, const vidx *lanes)
{
    channel_blocks(b, w_in, lanes, b->sw, b->kw, b->dw, 1, 1);
}
SIMD static void block_groups(const block *b, int w_in, const vidx *lanes)
{
    channel_blocks(b, w_in, lanes, b->sw, b->kw, b->dw, b->g, 1);
}

/* fn[0]: blocks whose taps are all inside, fn[1]: the others (checked) */
static void choose_blocks(int g, int sw, int kw, int dw, block_fn fn[2])
{
    fn[0] = fn[1] = g == 1 ? block_depthwise : block_groups;
#define SHAPE(S, K)                                                             \
    if (g == 1 && sw == S && kw == K && dw == 1)                                \
        fn[0] = block_##S##_##K, fn[1] = block_##S##_##K##_checked;
    SHAPE(1, 3)
    SHAPE(2, 3)
    SHAPE(1, 5)
    SHAPE(2, 5)
    SHAPE(1, 7)
#undef SHAPE
}

SIMD void SFX(hfc_conv2d_small_groups)(const hfc_tensor *x, const float *wt, int g, int kh,
                                      int kw, int sh, int sw, int ph, int pw, int dh, int dw,
                                      const float *bias, int relu, hfc_tensor *y)
{
    const int c = y->c;
    vidx lanes[VW];
    for (int j = 0; j < g; j++) {
        int idx[VW];
        for (int l = 0; l < VW; l++)
            idx[l] = l - l % g + j;
        lanes[j] = vidx_load(idx);
    }
    block_fn fn[2];
    choose_blocks(g, sw, kw, dw, fn);
    /* Every block is computed for PIX_BLOCK pixels, the last of a row
     * storing only its np: with constant bounds on every loop the sums and
     * inputs stay in registers (with np's bounds they lived on the stack:
     * 19% -> 14% of ShuffleNetV2's samples, MobileNetV2 0.236 -> 0.227 s).
     * Pixels past the row read zeros or real inputs, and are not stored. */
    for (int img = 0; img < y->n; img++)
        for (int oy = 0; oy < y->h; oy++) {
            int ky0 = 0, ky1 = kh; /* the kernel rows inside the image */
            while (ky0 < kh && oy * sh - ph + ky0 * dh < 0)
                ky0++;
            while (ky1 > ky0 && oy * sh - ph + (ky1 - 1) * dh >= x->h)
                ky1--;
            const float *row0 = ky0 == ky1 ? x->data
                                : x->data + ((size_t)img * x->h + oy * sh - ph + ky0 * dh) * x->w * c;
            /* runs of blocks: checked, all taps inside (g = 1), checked */
            for (int ox0 = 0; ox0 < y->w;) {
                int run = 0, inside = 0;
                for (int o = ox0; o < y->w; o += PIX_BLOCK, run++) {
                    const int ix0 = o * sw - pw;
                    const int in = g == 1 && ix0 >= 0 &&
                                   ix0 + (PIX_BLOCK - 1) * sw + (kw - 1) * dw < x->w;
                    if (run == 0)
                        inside = in;
                    else if (in != inside)
                        break;
                }
                const block b = {
                    .row = row0, .ix0 = ox0 * sw - pw, .w = wt + (size_t)ky0 * kw * g * c,
                    .bias = bias, .step = (size_t)dh * x->w * c, .rows = ky1 - ky0, .c = c,
                    .g = g, .sw = sw, .kw = kw, .dw = dw, .relu = relu, .run = run, .ox0 = ox0,
                    .w_out = y->w, .out = y->data + (((size_t)img * y->h + oy) * y->w + ox0) * c};
                fn[!inside](&b, x->w, lanes);
                ox0 += run * PIX_BLOCK;
            }
        }
}
