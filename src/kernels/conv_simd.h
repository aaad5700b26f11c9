/* kernels/conv_simd.h - convolutions without im2col or BLAS, written once in
 * kernels/simd.h's vector words and built once per instruction set: by
 * simd_avx512.c (16 lanes, 32 registers) and simd_avx2.c (8 lanes, 16
 * registers; AVX2 + FMA), each function named by SFX (f_avx512, f_avx2).
 * kernels/tiled.c picks one set for the whole run (hfc_isa, src/core/cpu.c)
 * and holds what is the same for both: the weights' panels and Winograd's
 * transformed weights. src/kernels/ops.c has the portable im2col + SGEMM
 * convolution every CPU runs.
 *
 * Both are built on one register-tiled product, gemm_tile: R rows of A
 * (pixels) times VW*NB columns of B (output channels), with the rows' K
 * values read from memory at a fixed row stride, so the rows may overlap.
 *   - direct: A's rows are the receptive fields in the zero-bordered image;
 *     for a kernel row ky they are runs of kw*cin adjacent floats;
 *   - Winograd F(4x4, 3x3) (Lavin & Gray 2016): each 4x4 block of outputs
 *     comes from a 6x6 block of input; after the input transform B^T d B
 *     the convolution is 36 independent products (tiles, cin) x (cin, cout)
 *     with the transformed weights G g G^T, and the output transform
 *     A^T m A gives the 4x4 block: 36 instead of 144 multiplies per input
 *     channel per block. The results differ from a direct sum by rounding
 *     only, a little more of it than the direct sum's (the transforms'
 *     coefficients reach 8 and 1/24; the engine tests measure it).
 * Every sum runs in the same order on both sets (over k, then the
 * epilogue), so the two differ from each other by nothing at all. Not a
 * header to include anywhere else: it defines functions. */
#include <string.h>

#include "kernels/ops.h"
#include "kernels/simd.h"


/* out[r][0..VW*NB) = bias + sum over ky < kh, t < kwc of
 *     a[ky*row + r*pix + t] * b[(ky*kwc + t)*ldb + 0..VW*NB) (+ res[r][..]),
 * then max(., 0) if relu (and min(., 6) if it is HFC_FUSED_RELU6); res (NULL
 * or laid out like out) is a residual. Meanwhile the pf_n cache lines from
 * pf are fetched into L2, one per step of the sum (gemm_rows: next_block).
 * MASKED: only the first `left` columns are read and written, for a last
 * block narrower than the tile. Per value of A: one broadcast and NB fused
 * multiply-adds into registers. */
SIMD __attribute__((always_inline)) static inline void
gemm_tile(const float *a, size_t pix, size_t row, int kh, int kwc, const float *b, int ldb,
          const float *bias, const float *res, int relu, float *out, int ldo, int left,
          const char *pf, int pf_n, const int R, const int NB, const int MASKED)
{
    vmask mk[4];
    for (int j = 0; j < NB; j++)
        mk[j] = vmask_n(MASKED ? left - VW * j : VW);
    /* only a masked tile's last vector can be partial (tile_for) */
#define LOAD(p, j) (MASKED && (j) == NB - 1 ? vloadm(mk[j], p) : vload(p))
    vf acc[16][4];
    for (int r = 0; r < R; r++)
        for (int j = 0; j < NB; j++)
            acc[r][j] = bias ? LOAD(bias + VW * j, j) : vzero();
    for (int ky = 0; ky < kh; ky++) {
        const float *ar = a + ky * row;
        const float *br = b + (size_t)ky * kwc * ldb;
        for (int t = 0; t < kwc; t++) {
            if (pf_n > 0) {
                _mm_prefetch(pf, _MM_HINT_T1);
                pf += 64;
                pf_n--;
            }
            vf w[4];
            for (int j = 0; j < NB; j++)
                w[j] = LOAD(br + (size_t)t * ldb + VW * j, j);
            for (int r = 0; r < R; r++) {
                vf v = vset1(ar[r * pix + t]);
                for (int j = 0; j < NB; j++)
                    acc[r][j] = vfmadd(v, w[j], acc[r][j]);
            }
        }
    }
    for (; pf_n > 0; pf_n--, pf += 64)
        _mm_prefetch(pf, _MM_HINT_T1);
    for (int r = 0; r < R; r++)
        for (int j = 0; j < NB; j++) {
            vf v = acc[r][j];
            if (res)
                v = vadd(v, LOAD(res + (size_t)r * ldo + VW * j, j));
            if (relu)
                v = vmax(v, vzero());
            if (relu == HFC_FUSED_RELU6)
                v = vmin(v, vset1(6.0f));
            if (MASKED && j == NB - 1)
                vstorem(out + (size_t)r * ldo + VW * j, mk[j], v);
            else
                vstore(out + (size_t)r * ldo + VW * j, v);
        }
#undef LOAD
}

typedef void (*tile_fn)(const float *, size_t, size_t, int, int, const float *, int,
                        const float *, const float *, int, float *, int, int, const char *, int);

/* One function per (R, NB, MASKED), so that every loop above has constant
 * bounds. */
#define GEMM_TILE_FN(R, NB, MASKED, name)                                                     \
    SIMD static void name(const float *a, size_t pix, size_t row, int kh, int kwc,             \
                          const float *b, int ldb, const float *bias, const float *res,       \
                          int relu, float *out, int ldo, int left, const char *pf, int pf_n)  \
    {                                                                                         \
        gemm_tile(a, pix, row, kh, kwc, b, ldb, bias, res, relu, out, ldo, left, pf, pf_n, R,  \
                  NB, MASKED);                                                                \
    }
/* The tiles by the width of the block of columns they take: all of a
 * 64-, 32- or 16-column block of B's panels, or (masked) a last block of
 * fewer than 16; for each, tiles of several row counts, the most first, the
 * last of 1 row. AVX-512's 32 registers hold 16 sums of 16 lanes: 16 x 16,
 * 8 x 32 or 4 x 64 per tile, and a remainder of rows by 8, 4 or 2 where
 * the shape allows, then one at a time (one at a time, the 4-image groups
 * of DenseNet-121's 32-channel convs on small maps spent a fifth of its
 * time in single-row tiles).
 * AVX2's 16 hold 12 of 8 lanes: 6 rows x 16 columns (the shape of the
 * classic Haswell SGEMM kernel), so its tiles take a panel 16 columns at a
 * time (reading each row of A again per 16), and a remainder of rows by 4
 * and 2 (one at a time, it took 16% of ResNet-20's time). A last block of 8
 * columns or fewer gets one vector a row, 12 rows a tile: with 6 x 16 half
 * of the multiply-adds were masked away (ShuffleNetV2's 24-channel 1x1
 * convs). In a masked tile only the last vector is partial. Each value's
 * sum runs over k in one order whatever the tile, so the shape changes no
 * result. */
typedef struct {
    int cols;       /* columns of B a tile takes */
    int n;          /* tiles of rows[0] > rows[1] > ... > rows[n-1] = 1 rows */
    int rows[4];
    tile_fn fn[4];
} tile_shape;
#if VW == 16
GEMM_TILE_FN(16, 1, 0, gemm_tile_16_1)
GEMM_TILE_FN(8, 2, 0, gemm_tile_8_2)
GEMM_TILE_FN(4, 4, 0, gemm_tile_4_4)
GEMM_TILE_FN(1, 1, 0, gemm_tile_1_1)
GEMM_TILE_FN(1, 2, 0, gemm_tile_1_2)
GEMM_TILE_FN(1, 4, 0, gemm_tile_1_4)
GEMM_TILE_FN(16, 1, 1, gemm_tile_16_1_masked)
GEMM_TILE_FN(1, 1, 1, gemm_tile_1_1_masked)
GEMM_TILE_FN(2, 4, 0, gemm_tile_2_4)
GEMM_TILE_FN(4, 2, 0, gemm_tile_4_2)
GEMM_TILE_FN(2, 2, 0, gemm_tile_2_2)
GEMM_TILE_FN(8, 1, 0, gemm_tile_8_1)
GEMM_TILE_FN(4, 1, 0, gemm_tile_4_1)
GEMM_TILE_FN(4, 1, 1, gemm_tile_4_1_masked)
tile_shape hfc_narrow_tiles_avx2(int left);
/* A last block of 8 columns or fewer runs on the AVX2 build's 8-lane
 * tiles: in a 16-lane one half the multiply-adds were masked away, and
 * where a zmm multiply-add costs two ymm ones (Zen 4) the ymm tile takes
 * half the time (ShuffleNetV2, 24 channels: 0.30 -> 0.23 s). */
static tile_shape tile_for(int left)
{
    return left >= 64   ? (tile_shape){64, 3, {4, 2, 1}, {gemm_tile_4_4, gemm_tile_2_4, gemm_tile_1_4}}
           : left >= 32 ? (tile_shape){32, 4, {8, 4, 2, 1},
                                       {gemm_tile_8_2, gemm_tile_4_2, gemm_tile_2_2, gemm_tile_1_2}}
           : left >= 16 ? (tile_shape){16, 4, {16, 8, 4, 1},
                                       {gemm_tile_16_1, gemm_tile_8_1, gemm_tile_4_1, gemm_tile_1_1}}
           : left > 8   ? (tile_shape){left, 3, {16, 4, 1},
                                       {gemm_tile_16_1_masked, gemm_tile_4_1_masked, gemm_tile_1_1_masked}}
                        : hfc_narrow_tiles_avx2(left);
}
#else
GEMM_TILE_FN(6, 2, 0, gemm_tile_6_2)
GEMM_TILE_FN(4, 2, 0, gemm_tile_4_2)
GEMM_TILE_FN(2, 2, 0, gemm_tile_2_2)
GEMM_TILE_FN(1, 2, 0, gemm_tile_1_2)
GEMM_TILE_FN(6, 2, 1, gemm_tile_6_2_masked)
GEMM_TILE_FN(1, 2, 1, gemm_tile_1_2_masked)
GEMM_TILE_FN(12, 1, 0, gemm_tile_12_1)
GEMM_TILE_FN(4, 1, 0, gemm_tile_4_1)
GEMM_TILE_FN(1, 1, 0, gemm_tile_1_1)
GEMM_TILE_FN(12, 1, 1, gemm_tile_12_1_masked)
GEMM_TILE_FN(4, 1, 1, gemm_tile_4_1_masked)
GEMM_TILE_FN(1, 1, 1, gemm_tile_1_1_masked)
static tile_shape tile_for(int left)
{
    return left >= 16 ? (tile_shape){16, 4, {6, 4, 2, 1}, {gemm_tile_6_2, gemm_tile_4_2, gemm_tile_2_2, gemm_tile_1_2}}
           : left > 8 ? (tile_shape){left, 2, {6, 1}, {gemm_tile_6_2_masked, gemm_tile_1_2_masked}}
           : left == 8 ? (tile_shape){8, 3, {12, 4, 1}, {gemm_tile_12_1, gemm_tile_4_1, gemm_tile_1_1}}
                       : (tile_shape){left, 3, {12, 4, 1},
                                      {gemm_tile_12_1_masked, gemm_tile_4_1_masked, gemm_tile_1_1_masked}};
}
/* The same tiles for the AVX-512 build's last blocks of 8 columns or fewer. */
tile_shape hfc_narrow_tiles_avx2(int left);
tile_shape hfc_narrow_tiles_avx2(int left)
{
    return tile_for(left);
}
#endif

/* The width of B's panel that starts where `left` columns are left
 * (kernels/tiled.c, hfc_panel_start: the same rule). */
static int panel_width(int left)
{
    return hfc_panel_width(left);
}

/* B of a product, (k, cols): row-major, or in panels (hfc_panel_offset);
 * next: the B the caller's next product reads first (in panels, k x cols),
 * or NULL. */
typedef struct {
    const float *data;
    int k, cols, panels;
    const float *next;
    int ld; /* row-major only: the stride of a row, if not cols (columns of a wider matrix) */
} matrix;

/* Where rows k0.. of the columns from o0 begin (o0 anywhere in a panel),
 * and their stride. */
static const float *block_at(matrix b, int k0, int o0, int *ldb)
{
    if (!b.panels) {
        *ldb = b.ld ? b.ld : b.cols;
        return b.data + (size_t)k0 * *ldb + o0;
    }
    hfc_panel_start(b.cols, o0, ldb);
    return b.data + hfc_panel_offset(b.k, b.cols, k0, o0);
}

/* The K blocks of a product: as equal as may be, at most K_BLOCK rows. */
#define K_BLOCK 128
static int k_block(int k)
{
    const int blocks = (k + K_BLOCK - 1) / K_BLOCK;
    return (k + blocks - 1) / blocks;
}

/* The block of b that the tiles after those of block (k0.. k0 + kc, o0..
 * o1) read first: the next columns, else the next K block, else the first of
 * b.next; with its length in cache lines. NULL when b is not in panels or
 * the block is over PREFETCH_LINES (the direct conv's blocks of kh * kw *
 * cin rows), which gemm_rows would not fetch. Fetched a few lines per tile
 * while a block's tiles run, the next block is in L2 when they reach it:
 * read cold, each block's first tile waited on memory (64 x 192 x 192
 * products with B out of cache, in 96-row K blocks: 114 -> 137 GFLOP/s). */
#define PREFETCH_LINES 1024
static const char *next_block(matrix b, int k0, int kc, int o1, size_t *lines)
{
    const float *p;
    int ld, rows = kc;
    *lines = 0;
    if (!b.panels)
        return NULL;
    if (o1 < b.cols) {
        p = block_at(b, k0, o1, &ld);
    } else if (k0 + kc < b.k) {
        p = block_at(b, k0 + kc, 0, &ld);
        rows = b.k - (k0 + kc) < kc ? b.k - (k0 + kc) : kc;
    } else if (b.next) {
        p = b.next;
        ld = panel_width(b.cols);
        rows = k_block(b.k);
    } else {
        return NULL;
    }
    *lines = ((size_t)rows * ld * sizeof(float) + 63) / 64;
    if (*lines > PREFETCH_LINES)
        *lines = 0;
    return (const char *)p;
}

/* n rows of out (ldo apart; res, if any, likewise) for all of b's columns,
 * from b's rows k0 .. k0 + kh * kwc: block by block of columns (tile_for),
 * the wide tiles first, single rows for the remainder. The next block of b
 * is fetched during the tiles of the last block of each panel. */
static void gemm_rows(const float *a, size_t pix, size_t row, int kh, int kwc, matrix b, int k0,
                      const float *bias, const float *res, int relu, float *out, int ldo, int n)
{
    for (int o0 = 0; o0 < b.cols;) {
        const int left = b.cols - o0;
        const tile_shape t = tile_for(left);
        const float *bo = bias ? bias + o0 : NULL;
        int ldb, pw = 0;
        const float *bp = block_at(b, k0, o0, &ldb);
        const int p0 = b.panels ? hfc_panel_start(b.cols, o0, &pw) : 0;
        size_t pf_lines = 0;
        const char *pf = !b.panels || o0 + t.cols == p0 + pw
                             ? next_block(b, k0, kh * kwc, o0 + t.cols, &pf_lines)
                             : NULL;
        int calls = 0;
        for (int r = n, k = 0; k < t.n; k++) {
            calls += r / t.rows[k];
            r %= t.rows[k];
        }
        const size_t per_call = calls ? (pf_lines + calls - 1) / calls : 0;
        size_t fetched = 0;
        for (int r = 0, k = 0; r < n;) {
            while (k < t.n - 1 && n - r < t.rows[k]) /* rows[n - 1] is 1 */
                k++;
            const size_t at = (size_t)r * ldo + o0;
            const int pf_n = (int)(pf_lines - fetched < per_call ? pf_lines - fetched : per_call);
            t.fn[k](a + r * pix, pix, row, kh, kwc, bp, ldb, bo, res ? res + at : NULL, relu,
                    out + at, ldo, left, pf ? pf + 64 * fetched : NULL, pf_n);
            fetched += pf_n;
            r += t.rows[k];
        }
        o0 += t.cols;
    }
}

/* Image b of x into pad, (x.h + 2ph, x.w + 2pw, x.c), zero border; with
 * ex->in_scale, each value as max(x * scale + shift, 0 if in_relu). */
SIMD static void copy_padded(const hfc_tensor *x, int b, int ph, int pw,
                               const hfc_conv_extras *ex, float *pad)
{
    const int c = x->c;
    const size_t row = (size_t)(x->w + 2 * pw) * c, side = (size_t)pw * c;
    const size_t inner = (size_t)x->w * c;
    const vf zero = vzero();
    memset(pad, 0, ph * row * sizeof *pad);
    memset(pad + (ph + x->h) * row, 0, ph * row * sizeof *pad);
    for (int iy = 0; iy < x->h; iy++) {
        float *dst = pad + (iy + ph) * row;
        const float *src = x->data + ((size_t)b * x->h + iy) * inner;
        memset(dst, 0, side * sizeof *pad);
        memset(dst + side + inner, 0, side * sizeof *pad);
        dst += side;
        if (!ex->in_scale) {
            memcpy(dst, src, inner * sizeof *pad);
            continue;
        }
        for (int ch = 0; ch < c; ch += VW) {
            const vmask k = vmask_n(c - ch);
            const int whole = c - ch >= VW;
            vf s = vload_lanes(whole, 1, k, ex->in_scale + ch);
            vf t = vload_lanes(whole, 1, k, ex->in_shift + ch);
            for (int px = 0; px < x->w; px++) {
                /* multiply, then add: rounded as hfc_scale_shift rounds */
                vf v = vmul(vload_lanes(whole, 1, k, src + (size_t)px * c + ch), s);
                v = vadd(v, t);
                if (ex->in_relu)
                    v = vmax(v, zero);
                vstore_lanes(whole, dst + (size_t)px * c + ch, k, v);
            }
        }
    }
}

/* The product in chunks of ROW_BLOCK rows (their values of a stay in L2
 * while every column block passes) and K blocks (k_block: a block of b, at
 * most K_BLOCK x 64, stays in L1 while the chunk's rows pass); a K block after
 * the first adds to what the earlier ones wrote, res comes with the first and
 * the ReLU with the last. (ResNet-50's 1x1 convs, run as the direct conv,
 * read every weight once per 4 pixels.) b.next is fetched during the last
 * chunk only: the others are followed by b's first block again. */
#define ROW_BLOCK 256

static void product_strided(const float *a, size_t lda, size_t rows, matrix b, const float *bias,
                            const float *res, int relu, float *out, int ldo)
{
    const int k = b.k, kb = k_block(k);
    for (size_t r0 = 0; r0 < rows; r0 += ROW_BLOCK) {
        const int n = rows - r0 < ROW_BLOCK ? (int)(rows - r0) : ROW_BLOCK;
        float *o = out + r0 * ldo;
        matrix bb = b;
        if (r0 + ROW_BLOCK < rows)
            bb.next = b.panels ? b.data : NULL;
        for (int k0 = 0; k0 < k; k0 += kb) {
            const int kc = k - k0 < kb ? k - k0 : kb;
            const float *rs = k0 ? o : res ? res + r0 * ldo : NULL;
            gemm_rows(a + r0 * lda + k0, lda, 0, 1, kc, bb, k0, k0 ? NULL : bias, rs,
                      k0 + kc == k ? relu : 0, o, ldo, n);
        }
    }
}

static void product(const float *a, size_t rows, matrix b, const float *bias, const float *res,
                    int relu, float *out)
{
    product_strided(a, (size_t)b.k, rows, b, bias, res, relu, out, b.cols);
}

/* Small maps (VGG's 2 x 2, ResNet-50's 1 x 1 at 32 x 32): a 3 x 3 conv's
 * output pixel there reads the padding through most of its taps, whose
 * im2col columns are zeros. One product per output pixel (its rows: the
 * group's images) runs only over the K blocks of taps inside the image,
 * in the full product's blocks and order: a skipped block would have
 * added 0 to each sum (hfc_inside_taps_pay says when the blocks each lie
 * within one tap). VGG-16 at 2 x 2: 4 of 9 taps. */
SIMD static void start_sums(float *o, int ldo, int rows, int cols, const float *bias,
                            const float *res)
{
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < cols; j++)
            o[(size_t)r * ldo + j] =
                (bias ? bias[j] : 0.0f) + (res ? res[(size_t)r * ldo + j] : 0.0f);
}

SIMD static void end_sums(float *o, int ldo, int rows, int cols, int relu)
{
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < cols; j++) {
            float v = o[(size_t)r * ldo + j];
            v = v > 0.0f ? v : 0.0f;
            o[(size_t)r * ldo + j] = relu == HFC_FUSED_RELU6 && v > 6.0f ? 6.0f : v;
        }
}

static void product_inside_taps(const float *col, const hfc_tensor *x, int kh, int kw, int sh,
                                int sw, int ph, int pw, const float *wt,
                                const hfc_conv_extras *ex, hfc_tensor *y)
{
    const int c = x->c, k = kh * kw * c, kb = k_block(k), cols = y->c, npix = y->h * y->w;
    const matrix b = {wt, k, cols, 1, NULL, 0};
    const size_t lda = (size_t)npix * k;
    const int ldo = npix * cols;
    for (int oy = 0; oy < y->h; oy++)
        for (int ox = 0; ox < y->w; ox++) {
            int y0, y1, x0, x1;
            hfc_taps_inside(oy, sh, ph, kh, x->h, &y0, &y1);
            hfc_taps_inside(ox, sw, pw, kw, x->w, &x0, &x1);
            const size_t p = (size_t)oy * y->w + ox;
            for (int r0 = 0; r0 < y->n; r0 += ROW_BLOCK) {
                const int n = y->n - r0 < ROW_BLOCK ? y->n - r0 : ROW_BLOCK;
                const size_t at = (size_t)r0 * npix + p;
                float *o = y->data + at * cols;
                const float *res = ex->residual ? ex->residual + at * cols : NULL;
                int last = 0;
                for (int k0 = 0; k0 < k; k0 += kb) {
                    const int kc = k - k0 < kb ? k - k0 : kb, tap = k0 / c;
                    const int ty = tap / kw, tx = tap % kw;
                    if (ty < y0 || ty >= y1 || tx < x0 || tx >= x1) {
                        if (!k0)
                            start_sums(o, ldo, n, cols, ex->bias, res);
                        continue;
                    }
                    last = k0 + kc == k;
                    gemm_rows(col + at * k + k0, lda, 0, 1, kc, b, k0, k0 ? NULL : ex->bias,
                              k0 ? o : res, last ? ex->relu : 0, o, ldo, n);
                }
                if (!last && ex->relu)
                    end_sums(o, ldo, n, cols, ex->relu);
            }
        }
}

/* The backward of a conv on small maps (as product_inside_taps):
 * dx += dy (pixels, cout) w (cout, kh * kw * c) over the taps inside the
 * image only, added straight into dx (in_h x in_w x c an image): a run of
 * taps along x lands on adjacent pixels of dx, as its columns of w are
 * adjacent, so each (output pixel, tap row) is one product over the
 * group's images that adds into dx (its rows an image apart): no dcol, no
 * col2im (which had summed each column over cout first). Each value of dx
 * gets its adds in col2im's order (output pixels, then taps); a product's
 * K blocks add into it one after another. */
void SFX(hfc_dx_inside_taps)(const hfc_tensor *dy, const float *w, int panels, int kh, int kw, int sh, int sw,
                             int ph, int pw, hfc_tensor *dx)
{
    const int c = dx->c, k = kh * kw * c, npix = dy->h * dy->w;
    const int ldo = dx->h * dx->w * c;
    for (int oy = 0; oy < dy->h; oy++)
        for (int ox = 0; ox < dy->w; ox++) {
            int y0, y1, x0, x1;
            hfc_taps_inside(oy, sh, ph, kh, dx->h, &y0, &y1);
            hfc_taps_inside(ox, sw, pw, kw, dx->w, &x0, &x1);
            const size_t p = (size_t)oy * dy->w + ox;
            for (int ty = y0; ty < y1 && x1 > x0; ty++) {
                const int iy = oy * sh - ph + ty, ix = ox * sw - pw + x0;
                float *d = dx->data + ((size_t)iy * dx->w + ix) * c;
                const int c0 = (ty * kw + x0) * c; /* panels: c0 starts one (c % 64 == 0) */
                const matrix b = panels ? (matrix){w + (size_t)dy->c * c0, dy->c, (x1 - x0) * c, 1, NULL, 0}
                                        : (matrix){w + c0, dy->c, (x1 - x0) * c, 0, NULL, k};
                product_strided(dy->data + p * dy->c, (size_t)npix * dy->c, (size_t)dy->n, b,
                                NULL, d, 0, d, ldo);
            }
        }
}

void SFX(hfc_gemm_tiled)(const float *a, size_t rows, int k, const float *b, int cols,
                     const float *bias, const float *res, int relu, float *out)
{
    product(a, rows, (matrix){b, k, cols, 0, NULL, 0}, bias, res, relu, out);
}

void SFX(hfc_conv2d_im2col_tiled)(const hfc_tensor *x, const float *wt, int kh, int kw, int sh,
                              int sw, int ph, int pw, const hfc_conv_extras *ex, float *col,
                              hfc_tensor *y)
{
    hfc_im2col(x, kh, kw, sh, sw, ph, pw, y->h, y->w, col);
    if (hfc_inside_taps_pay(x->h, x->w, kh, kw, sh, sw, ph, pw, y->h, y->w) &&
        x->c % k_block(kh * kw * x->c) == 0) {
        product_inside_taps(col, x, kh, kw, sh, sw, ph, pw, wt, ex, y);
        return;
    }
    product(col, (size_t)y->n * y->h * y->w, (matrix){wt, kh * kw * x->c, y->c, 1, NULL, 0}, ex->bias,
            ex->residual, ex->relu, y->data);
}

void SFX(hfc_conv2d_direct)(const hfc_tensor *x, const float *wt, int kh, int kw, int sh, int sw,
                       int ph, int pw, const hfc_conv_extras *ex, float *pad, hfc_tensor *y)
{
    if (kh == 1 && kw == 1 && sh == 1 && sw == 1 && !ph && !pw) {
        /* one product over the group's pixels, read in place, or with a
         * deferred BatchNorm (+ ReLU) the whole group scaled into pad first
         * (DenseNet's 1x1 convs: one product a row of the map read every
         * weight for 1 to 8 pixels) */
        const float *a = x->data;
        if (ex->in_scale) {
            for (int b = 0; b < x->n; b++)
                copy_padded(x, b, 0, 0, ex, pad + (size_t)b * x->h * x->w * x->c);
            a = pad;
        }
        product(a, (size_t)x->n * x->h * x->w, (matrix){wt, x->c, y->c, 1, NULL, 0}, ex->bias,
                ex->residual, ex->relu, y->data);
        return;
    }
    const int cin = x->c, cout = y->c;
    const size_t row = (size_t)(x->w + 2 * pw) * cin;
    for (int b = 0; b < x->n; b++) {
        copy_padded(x, b, ph, pw, ex, pad);
        for (int oy = 0; oy < y->h; oy++) {
            size_t at = ((size_t)b * y->h + oy) * y->w * cout;
            gemm_rows(pad + (size_t)oy * sh * row, (size_t)sw * cin, row, kh, kw * cin,
                      (matrix){wt, kh * kw * cin, cout, 1, NULL, 0}, 0, ex->bias,
                      ex->residual ? ex->residual + at : NULL, ex->relu, y->data + at, cout,
                      y->w);
        }
    }
}

/* ---- Winograd F(4x4, 3x3) ------------------------------------------------ */

#define WT 6          /* side of an input tile */
#define WO 4          /* side of an output tile; tiles are WO apart */
#define WP (WT * WT)  /* planes: one product per transformed position */

/* The WP planes of v and m are this many floats apart: a plane plus one
 * cache line, so that the planes of one tile do not all fall into the same
 * L1 set when a plane is a multiple of 4 KB (measured: the input transform
 * took 2.2x longer). */
static size_t plane_stride(int tiles, int c) { return hfc_winograd_plane_stride(tiles, c); }

/* y = B^T x for six vectors, with
 * B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0;
 *        0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1]. */
SIMD __attribute__((always_inline)) static inline void input_1d(const vf x[WT], vf y[WT])
{
    const vf two = vset1(2), four = vset1(4), five = vset1(5);
    vf t0 = vfnmadd(four, x[2], x[4]);              /* x4 - 4 x2 */
    vf t1 = vfnmadd(four, x[1], x[3]);              /* x3 - 4 x1 */
    vf t2 = vsub(x[4], x[2]);
    vf t3 = vmul(two, vsub(x[3], x[1]));
    y[0] = vfmadd(four, x[0], vfnmadd(five, x[2], x[4]));
    y[1] = vadd(t0, t1);
    y[2] = vsub(t0, t1);
    y[3] = vadd(t2, t3);
    y[4] = vsub(t2, t3);
    y[5] = vfmadd(four, x[1], vfnmadd(five, x[3], x[5]));
}

/* y = A^T x for six vectors, with
 * A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1]. */
SIMD __attribute__((always_inline)) static inline void output_1d(const vf x[WT], vf y[WO])
{
    vf a = vadd(x[1], x[2]), b = vsub(x[1], x[2]);
    vf c = vadd(x[3], x[4]), d = vsub(x[3], x[4]);
    y[0] = vadd(vadd(x[0], a), c);
    y[1] = vfmadd(vset1(2), d, b);
    y[2] = vfmadd(vset1(4), c, a);
    y[3] = vadd(vfmadd(vset1(8), d, b), x[5]);
}

/* One tile: vt[(WT*i + j) * plane + c] = (B^T d B)[i][j] for the 6x6 block
 * d that starts `at` floats into img (rows `row` floats apart), VW channels
 * at a time, the last VW masked. BORDER: only the rows i with bit i of
 * rows_in and the columns j with bit j of cols_in are read, the others are
 * zeros (the padding), and `at` may be negative. */
SIMD __attribute__((always_inline)) static inline void
input_tile(const float *img, ptrdiff_t at, ptrdiff_t row, int cin, unsigned rows_in,
           unsigned cols_in, size_t plane, float *vt, const float *pf, int pf_rows, int pf_cols,
           const int BORDER)
{
    for (int c = 0; c < cin; c += VW) {
        const vmask k = vmask_n(cin - c);
        const int whole = cin - c >= VW;
        vf s[WT][WT], x[WT], y[WT];
        for (int i = 0; i < pf_rows; i++)
            for (int j = 0; j < pf_cols; j++)
                _mm_prefetch((const char *)(pf + i * row + j * cin + c), _MM_HINT_T0);
        for (int j = 0; j < WT; j++) {  /* columns: B^T d */
            for (int i = 0; i < WT; i++) {
                const int in = !BORDER || (rows_in >> i & cols_in >> j & 1);
                x[i] = vload_lanes(whole, in, k, in ? img + (at + i * row + j * cin + c) : img);
            }
            input_1d(x, y);
            for (int i = 0; i < WT; i++)
                s[i][j] = y[i];
        }
        for (int i = 0; i < WT; i++) {  /* rows: (B^T d) B */
            input_1d(s[i], y);
            for (int j = 0; j < WT; j++)
                vstore_lanes(whole, vt + (WT * i + j) * plane + c, k, y[j]);
        }
    }
}

/* v[WP][th * tw][cin] (planes `plane` floats apart) = B^T d B for every 6x6
 * block d of img, (h, w, cin), zero-padded by pad pixels, the blocks WO
 * apart. Read in place: a tile on the border masks the loads of the padding
 * (copying each image into a padded buffer first was 6.5% of ResNet-18's
 * samples). */
SIMD static void winograd_input(const float *img, int h, int w, int cin, int pad, int th,
                                  int tw, size_t plane, float *v)
{
    const ptrdiff_t row = (ptrdiff_t)w * cin;
    for (int ty = 0; ty < th; ty++)
        for (int tx = 0; tx < tw; tx++) {
            const int y0 = WO * ty - pad, x0 = WO * tx - pad; /* the block's corner in img */
            const ptrdiff_t at = y0 * row + (ptrdiff_t)x0 * cin;
            float *vt = v + ((size_t)ty * tw + tx) * cin;
            /* the rows the next row of tiles adds, below this tile: fetched into
             * L1 while this tile runs (read from L3, an image's rows came too late) */
            const int py = y0 + WT, px = WO * tx;
            const int pf_rows = py >= h ? 0 : h - py < WO ? h - py : WO;
            const int pf_cols = w - px < WO ? w - px : WO;
            const float *pf = pf_rows ? img + py * row + (ptrdiff_t)px * cin : img;
            if (y0 >= 0 && x0 >= 0 && y0 + WT <= h && x0 + WT <= w) {
                input_tile(img, at, row, cin, 0, 0, plane, vt, pf, pf_rows, pf_cols, 0);
                continue;
            }
            unsigned rows_in = 0, cols_in = 0;
            for (int i = 0; i < WT; i++) {
                rows_in |= (unsigned)(y0 + i >= 0 && y0 + i < h) << i;
                cols_in |= (unsigned)(x0 + i >= 0 && x0 + i < w) << i;
            }
            input_tile(img, at, row, cin, rows_in, cols_in, plane, vt, pf, pf_rows, pf_cols, 1);
        }
}

/* y[at..] = val (+ res[at..]), then ReLU or ReLU6 (relu): the end of a
 * Winograd output transform. */
SIMD __attribute__((always_inline)) static inline void
store_epilogue(float *y, const float *res, size_t at, int relu, vf val)
{
    if (res)
        val = vadd(val, vload(res + at));
    if (relu)
        val = vmax(val, vzero());
    if (relu == HFC_FUSED_RELU6)
        val = vmin(val, vset1(6.0f));
    vstore(y + at, val);
}

/* y's 4x4 block of every tile = A^T m A (+ bias, + res, ReLU) from
 * m[WP][tiles][cout] (planes `plane` floats apart); res: NULL or like y, an
 * image of h x w pixels; the last tiles of a side that is not a multiple of 4
 * write only the pixels inside. */
SIMD static void winograd_output(const float *m, int h, int w, int th, int tw, int cout,
                                   size_t plane, const float *bias, const float *res, int relu,
                                   float *y)
{
    const size_t row = (size_t)w * cout;
    const vf zero = vzero();
    for (int ty = 0; ty < th; ty++)
        for (int tx = 0; tx < tw; tx++) {
            const float *mt = m + ((size_t)ty * tw + tx) * cout;
            const size_t base = WO * ty * row + (size_t)WO * tx * cout;  /* in y and res */
            const int rows = h - WO * ty < WO ? h - WO * ty : WO;
            const int cols = w - WO * tx < WO ? w - WO * tx : WO;
            for (int o = 0; o < cout; o += VW) {
                vf t[WO][WT], x[WT], r[WO];
                for (int j = 0; j < WT; j++) {  /* columns: A^T m */
                    for (int i = 0; i < WT; i++)
                        x[i] = vload(mt + (WT * i + j) * plane + o);
                    output_1d(x, r);
                    for (int i = 0; i < WO; i++)
                        t[i][j] = r[i];
                }
                vf b = bias ? vload(bias + o) : zero;
                for (int i = 0; i < rows; i++) {  /* rows: (A^T m) A */
                    output_1d(t[i], r);
                    for (int j = 0; j < cols; j++) {
                        size_t at = base + i * row + (size_t)j * cout + o;
                        vf val = vadd(r[j], b);
                        store_epilogue(y, res, at, relu, val);
                    }
                }
            }
        }
}

void SFX(hfc_conv2d_winograd)(const hfc_tensor *x, const float *u, int chunk,
                         const hfc_conv_extras *ex, float *scratch, hfc_tensor *y)
{
    const int cin = x->c, cout = y->c, th = (y->h + WO - 1) / WO, tw = (y->w + WO - 1) / WO;
    const int tiles = th * tw;
    const size_t vplane = plane_stride(chunk * tiles, cin);
    const size_t mplane = plane_stride(chunk * tiles, cout);
    const size_t out_image = (size_t)y->h * y->w * cout;
    float *pad = scratch;
    float *v = pad + (size_t)(x->h + 2) * (x->w + 2) * cin;
    float *m = v + WP * vplane;
    for (int b0 = 0; b0 < x->n; b0 += chunk) {
        const int nb = x->n - b0 < chunk ? x->n - b0 : chunk;
        for (int b = 0; b < nb; b++) {
            float *vb = v + (size_t)b * tiles * cin;
            if (ex->in_scale) { /* a deferred BatchNorm: applied as the image is copied */
                copy_padded(x, b0 + b, 1, 1, ex, pad);
                winograd_input(pad, x->h + 2, x->w + 2, cin, 0, th, tw, vplane, vb);
            } else {
                winograd_input(x->data + (size_t)(b0 + b) * x->h * x->w * cin, x->h, x->w, cin,
                               1, th, tw, vplane, vb);
            }
        }
        for (int k = 0; k < WP; k++)  /* rows of all nb images' tiles; each row's sum is
                                         the same whatever nb is */
            product(v + k * vplane, (size_t)nb * tiles,
                    (matrix){u + (size_t)k * cin * cout, cin, cout, 1,
                             k + 1 < WP ? u + (size_t)(k + 1) * cin * cout : NULL, 0},
                    NULL, NULL, 0, m + k * mplane);
        for (int b = 0; b < nb; b++) {
            size_t at = (size_t)(b0 + b) * out_image;
            winograd_output(m + (size_t)b * tiles * cout, y->h, y->w, th, tw, cout, mplane, ex->bias,
                            ex->residual ? ex->residual + at : NULL, ex->relu, y->data + at);
        }
    }
}

/* ---- Stride-2 3x3 convs by phases and F(4, 2) ------------------------------
 * Along each side, a 3x3 stride-2 conv with padding 1 reads the even input
 * positions through tap 1 alone and the odd ones through taps 0 and 2: the
 * odd phase is a 2-tap stride-1 correlation, done by Winograd F(4, 2) (5
 * multiplies for 4 outputs), the even phase a plain product. A 4x4 block of
 * outputs then costs (4 + 5)^2 = 81 multiplies per channel pair instead of
 * 144. The 6 x 6 weight matrices (a, b) (hfc_winograd_s2_weights): index 0
 * the even phase (tap 1), 1..5 F(4, 2)'s five of (tap 0, tap 2); matrix
 * (a, b) multiplies n(a) n(b) rows per tile, n(0) = 4, else 1.
 * The backward (d/dx of such a conv, TRANSPOSED) is the same split seen
 * from the other side: dx's even positions are dy through tap 1, its odd
 * ones dy[m] through tap 2 plus dy[m + 1] through tap 0, with the kernel
 * flipped (as plan_backward_convs passes it) again taps 0 and 2 of a 2-tap
 * correlation; one tile of dy (5 x 5 read) gives an 8 x 8 block of dx.
 * F(4, 2) on the points 0, 1, -1, 2: y = A^T [(G g) . (B^T d)], with
 * B^T = [2 -1 -2 1 0; 0 -2 -1 1 0; 0 2 -3 1 0; 0 -1 0 1 0; 0 2 -1 -2 1],
 * G = [1/2 0; -1/2 -1/2; -1/6 1/6; 1/6 1/3; 0 1] (tiled.c),
 * A^T = [1 1 1 1 0; 0 1 -1 2 0; 0 1 1 4 0; 0 1 -1 8 1]. */

#define S2_SIDE 6 /* weight matrices per side: the even phase, then F(4, 2)'s 5 */

static int s2_rows(int a, int b) { return (a ? 1 : WO) * (b ? 1 : WO); }

/* Where matrix g = S2_SIDE * a + b's rows start in v (c channels a row) or m. */
static size_t s2_block(int g, int tiles, int c)
{
    size_t at = 0;
    for (int k = 0; k < g; k++)
        at += (size_t)s2_rows(k / S2_SIDE, k % S2_SIDE) * tiles * c + 16;
    return at;
}

/* y = B^T d for five vectors. */
SIMD __attribute__((always_inline)) static inline void s2_input_1d(const vf d[5], vf y[5])
{
    const vf two = vset1(2), three = vset1(3);
    const vf t = vsub(d[3], d[1]);
    y[0] = vfmadd(two, vsub(d[0], d[2]), t);
    y[1] = vfnmadd(two, d[1], vsub(d[3], d[2]));
    y[2] = vfmadd(two, d[1], vfnmadd(three, d[2], d[3]));
    y[3] = t;
    y[4] = vfmadd(two, vsub(d[1], d[3]), vsub(d[4], d[2]));
}

/* y = A^T m for five vectors. */
SIMD __attribute__((always_inline)) static inline void s2_output_1d(const vf m[5], vf y[WO])
{
    const vf a = vadd(m[1], m[2]), b = vsub(m[1], m[2]);
    y[0] = vadd(vadd(m[0], a), m[3]);
    y[1] = vfmadd(vset1(2), m[3], b);
    y[2] = vfmadd(vset1(4), m[3], a);
    y[3] = vadd(vfmadd(vset1(8), m[3], b), m[4]);
}

/* One side's split of a patch's values p[0..n): the even phase's 4 at
 * ev[0..4) and the 5 of F(4, 2)'s input transform of the odd phase at
 * od[0..5) (forward: p has 9 values, even at 1, 3, 5, 7 and odd at 0, 2, 4,
 * 6, 8; TRANSPOSED: 5, even at 0..3, odd at 0..4); out[0..4) = even,
 * out[4..9) = transformed odd. */
SIMD __attribute__((always_inline)) static inline void s2_split(const vf *p, int transposed,
                                                                  vf out[9])
{
    vf d[5];
    for (int i = 0; i < WO; i++)
        out[i] = p[transposed ? i : 2 * i + 1];
    for (int l = 0; l < 5; l++)
        d[l] = p[transposed ? l : 2 * l];
    s2_input_1d(d, out + WO);
}

/* v: every tile's 81 values per channel, matrix by matrix (s2_block). The
 * tiles of img (h x w x cin, zero-padded by pad): forward, a 9 x 9 patch
 * at (8 ty - pad, 8 tx - pad); transposed, 5 x 5 at (4 ty, 4 tx). */
SIMD static void s2_input(const float *img, int h, int w, int cin, int pad, int th, int tw,
                          int tiles, int first_tile, int transposed, float *v)
{
    const int n = transposed ? 5 : 9;
    const ptrdiff_t row = (ptrdiff_t)w * cin;
    size_t block[S2_SIDE * S2_SIDE];
    for (int g = 0; g < S2_SIDE * S2_SIDE; g++)
        block[g] = s2_block(g, tiles, cin);
    for (int ty = 0; ty < th; ty++)
        for (int tx = 0; tx < tw; tx++) {
            const int y0 = transposed ? WO * ty : 2 * WO * ty - pad;
            const int x0 = transposed ? WO * tx : 2 * WO * tx - pad;
            const size_t t = (size_t)first_tile + (size_t)ty * tw + tx;
            for (int c = 0; c < cin; c += VW) {
                const vmask k = vmask_n(cin - c);
                const int whole = cin - c >= VW;
                vf p[9], rows[9][9], col[9], out[9];
                for (int i = 0; i < n; i++) { /* each row of the patch, split along x */
                    const int yy = y0 + i;
                    for (int j = 0; j < n; j++) {
                        const int xx = x0 + j;
                        const int in = yy >= 0 && yy < h && xx >= 0 && xx < w;
                        p[j] = vload_lanes(whole, in, k, in ? img + yy * row + (ptrdiff_t)xx * cin + c
                                                            : img);
                    }
                    s2_split(p, transposed, rows[i]);
                }
                for (int b = 0; b < 9; b++) { /* each column, split along y */
                    for (int i = 0; i < n; i++)
                        col[i] = rows[i][b];
                    s2_split(col, transposed, out);
                    for (int a = 0; a < 9; a++) {
                        const int ga = a < WO ? 0 : a - WO + 1, gb = b < WO ? 0 : b - WO + 1;
                        const int sub = (ga ? 0 : a) * (gb ? 1 : WO) + (gb ? 0 : b);
                        float *at = v + block[S2_SIDE * ga + gb] + ((size_t)sub * tiles + t) * cin + c;
                        vstore_lanes(whole, at, k, out[a]);
                    }
                }
            }
        }
}

/* m's 81 values per tile back to the output: forward, the 4x4 block at
 * (4 ty, 4 tx) of y (+ bias, + res, ReLU); TRANSPOSED, the 8x8 block at
 * (8 ty, 8 tx), added to res when not NULL (y and res the same). Only the
 * pixels inside y are written. */
SIMD static void s2_output(const float *m, int h, int w, int th, int tw, int cout, int tiles,
                           int first_tile, int transposed, const float *bias, const float *res,
                           int relu, float *y)
{
    const size_t row = (size_t)w * cout;
    const int side = transposed ? 2 * WO : WO;
    const vf zero = vzero();
    size_t block[S2_SIDE * S2_SIDE];
    for (int g = 0; g < S2_SIDE * S2_SIDE; g++)
        block[g] = s2_block(g, tiles, cout);
    for (int ty = 0; ty < th; ty++)
        for (int tx = 0; tx < tw; tx++) {
            const size_t t = (size_t)first_tile + (size_t)ty * tw + tx;
            const int oy = side * ty, ox = side * tx;
            const int rows = h - oy < side ? h - oy : side, cols = w - ox < side ? w - ox : side;
            for (int o = 0; o < cout; o += VW) {
                vf z[9][2 * WO], e[5], r[WO], col[2 * WO];
                for (int a = 0; a < 9; a++) { /* each row index: combine along x */
                    const int ga = a < WO ? 0 : a - WO + 1;
                    const int sa = ga ? 0 : a; /* the row's sub index before its columns */
                    vf ev[WO];
                    for (int j = 0; j < WO; j++)
                        ev[j] = vload(m + block[S2_SIDE * ga] +
                                      ((size_t)(sa * WO + j) * tiles + t) * cout + o);
                    for (int q = 0; q < 5; q++)
                        e[q] = vload(m + block[S2_SIDE * ga + q + 1] + ((size_t)sa * tiles + t) * cout + o);
                    s2_output_1d(e, r);
                    for (int j = 0; j < WO; j++) {
                        if (transposed) {
                            z[a][2 * j] = ev[j];
                            z[a][2 * j + 1] = r[j];
                        } else {
                            z[a][j] = vadd(ev[j], r[j]);
                        }
                    }
                }
                vf b = bias ? vload(bias + o) : zero;
                for (int j = 0; j < cols; j++) { /* each column: combine along y */
                    for (int q = 0; q < 5; q++)
                        e[q] = z[WO + q][j];
                    s2_output_1d(e, r);
                    for (int i = 0; i < WO; i++) {
                        if (transposed) {
                            col[2 * i] = z[i][j];
                            col[2 * i + 1] = r[i];
                        } else {
                            col[i] = vadd(z[i][j], r[i]);
                        }
                    }
                    for (int i = 0; i < rows; i++) {
                        size_t at = (oy + i) * row + (size_t)(ox + j) * cout + o;
                        vf val = transposed ? col[i] : vadd(col[i], b);
                        store_epilogue(y, res, at, relu, val);
                    }
                }
            }
        }
}

void SFX(hfc_conv2d_winograd_s2)(const hfc_tensor *x, const float *u, int chunk, int transposed,
                                 const hfc_conv_extras *ex, float *scratch, hfc_tensor *y)
{
    const int cin = x->c, cout = y->c;
    /* tiles cover the output (forward) or the input dy (transposed) in 4x4 blocks */
    const int th = transposed ? (x->h + WO - 1) / WO : (y->h + WO - 1) / WO;
    const int tw = transposed ? (x->w + WO - 1) / WO : (y->w + WO - 1) / WO;
    const int tiles = chunk * th * tw;
    const size_t out_image = (size_t)y->h * y->w * cout, in_image = (size_t)x->h * x->w * cin;
    float *pad = scratch;
    float *v = pad + (size_t)(x->h + 2) * (x->w + 2) * cin;
    float *m = v + s2_block(S2_SIDE * S2_SIDE, tiles, cin);
    for (int b0 = 0; b0 < x->n; b0 += chunk) {
        const int nb = x->n - b0 < chunk ? x->n - b0 : chunk;
        const int lt = nb * th * tw; /* this chunk's tiles: v and m are laid out for them */
        for (int b = 0; b < nb; b++) {
            if (ex->in_scale) { /* a deferred BatchNorm: applied as the image is copied */
                copy_padded(x, b0 + b, 1, 1, ex, pad);
                s2_input(pad, x->h + 2, x->w + 2, cin, 0, th, tw, lt, b * th * tw,
                         transposed, v);
            } else {
                s2_input(x->data + (size_t)(b0 + b) * in_image, x->h, x->w, cin, 1, th, tw, lt,
                         b * th * tw, transposed, v);
            }
        }
        /* the rows of all nb images' tiles; each row's sum is the same whatever nb is */
        for (int g = 0; g < S2_SIDE * S2_SIDE; g++) {
            const int rows = s2_rows(g / S2_SIDE, g % S2_SIDE);
            const float *next = g + 1 < S2_SIDE * S2_SIDE ? u + (size_t)(g + 1) * cin * cout : NULL;
            product(v + s2_block(g, lt, cin), (size_t)rows * lt,
                    (matrix){u + (size_t)g * cin * cout, cin, cout, 1, next, 0}, NULL, NULL, 0,
                    m + s2_block(g, lt, cout));
        }
        for (int b = 0; b < nb; b++) {
            size_t at = (size_t)(b0 + b) * out_image;
            s2_output(m, y->h, y->w, th, tw, cout, lt, b * th * tw, transposed,
                      transposed ? NULL : ex->bias, ex->residual ? ex->residual + at : NULL,
                      transposed ? 0 : ex->relu, y->data + at);
        }
    }
}
