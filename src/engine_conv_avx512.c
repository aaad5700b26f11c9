/* engine_conv_avx512.c - convolutions without im2col or BLAS, for CPUs with
 * AVX-512F (engine_run.c picks them at planning; engine_ops.c has the
 * portable im2col + SGEMM convolution every CPU runs).
 *
 * Both are built on one register-tiled product, gemm_tile: R rows of A
 * (pixels) times 16*NB columns of B (output channels), with the rows' K
 * values read from memory at a fixed row stride, so the rows may overlap.
 *   - direct: A's rows are the receptive fields in the zero-bordered image;
 *     for a kernel row ky they are runs of kw*cin adjacent floats;
 *   - Winograd F(2x2, 3x3) (Lavin & Gray 2016): each 2x2 block of outputs
 *     comes from a 4x4 block of input; after the input transform B^T d B
 *     the convolution is 16 independent products (tiles, cin) x (cin, cout)
 *     with the transformed weights G g G^T, and the output transform
 *     A^T m A gives the 2x2 block: 16 instead of 36 multiplies per input
 *     channel per block. The transforms only add and subtract (and halve,
 *     in G), so the results differ from a direct sum by rounding only.
 */
#include <immintrin.h>
#include <string.h>

#include "engine_ops.h"

#define AVX512 __attribute__((target("avx512f")))

int hfc_conv_avx512_supported(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f");
}

/* out[r][0..16*NB) = bias + sum over ky < kh, t < kwc of
 *     a[ky*row + r*pix + t] * b[(ky*kwc + t)*ldb + 0..16*NB), then max(., 0) if relu.
 * Per value of A: one broadcast and NB fused multiply-adds into registers. */
AVX512 __attribute__((always_inline)) static inline void
gemm_tile(const float *a, size_t pix, size_t row, int kh, int kwc, const float *b, int ldb,
          const float *bias, int relu, float *out, int ldo, const int R, const int NB)
{
    __m512 acc[16][4];
    for (int r = 0; r < R; r++)
        for (int j = 0; j < NB; j++)
            acc[r][j] = bias ? _mm512_loadu_ps(bias + 16 * j) : _mm512_setzero_ps();
    for (int ky = 0; ky < kh; ky++) {
        const float *ar = a + ky * row;
        const float *br = b + (size_t)ky * kwc * ldb;
        for (int t = 0; t < kwc; t++) {
            __m512 w[4];
            for (int j = 0; j < NB; j++)
                w[j] = _mm512_loadu_ps(br + (size_t)t * ldb + 16 * j);
            for (int r = 0; r < R; r++) {
                __m512 v = _mm512_set1_ps(ar[r * pix + t]);
                for (int j = 0; j < NB; j++)
                    acc[r][j] = _mm512_fmadd_ps(v, w[j], acc[r][j]);
            }
        }
    }
    for (int r = 0; r < R; r++)
        for (int j = 0; j < NB; j++) {
            __m512 v = relu ? _mm512_max_ps(acc[r][j], _mm512_setzero_ps()) : acc[r][j];
            _mm512_storeu_ps(out + (size_t)r * ldo + 16 * j, v);
        }
}

typedef void (*tile_fn)(const float *, size_t, size_t, int, int, const float *, int,
                        const float *, int, float *, int);

/* One function per (R, NB), so that every loop above has constant bounds. */
#define GEMM_TILE_FN(R, NB)                                                                   \
    AVX512 static void gemm_tile_##R##_##NB(const float *a, size_t pix, size_t row, int kh,   \
                                            int kwc, const float *b, int ldb,                 \
                                            const float *bias, int relu, float *out, int ldo) \
    {                                                                                         \
        gemm_tile(a, pix, row, kh, kwc, b, ldb, bias, relu, out, ldo, R, NB);                 \
    }
GEMM_TILE_FN(16, 1)
GEMM_TILE_FN(8, 2)
GEMM_TILE_FN(4, 4)
GEMM_TILE_FN(1, 1)
GEMM_TILE_FN(1, 2)
GEMM_TILE_FN(1, 4)

/* n rows of out (ldo apart) for all `cols` columns (a multiple of 16): the
 * widest tiles first, single rows for the remainder. */
static void gemm_rows(const float *a, size_t pix, size_t row, int kh, int kwc, const float *b,
                      int cols, const float *bias, int relu, float *out, int ldo, int n)
{
    for (int o0 = 0; o0 < cols;) {
        int nb = (cols - o0) / 16 >= 4 ? 4 : (cols - o0) / 16 >= 2 ? 2 : 1;
        int r_full = 16 / nb;
        tile_fn full = nb == 4 ? gemm_tile_4_4 : nb == 2 ? gemm_tile_8_2 : gemm_tile_16_1;
        tile_fn one = nb == 4 ? gemm_tile_1_4 : nb == 2 ? gemm_tile_1_2 : gemm_tile_1_1;
        const float *bo = bias ? bias + o0 : NULL;
        for (int r = 0; r < n;) {
            int take = n - r >= r_full ? r_full : 1;
            (take > 1 ? full : one)(a + r * pix, pix, row, kh, kwc, b + o0, cols, bo, relu,
                                    out + (size_t)r * ldo + o0, ldo);
            r += take;
        }
        o0 += 16 * nb;
    }
}

/* Image b of x copied into pad, (x.h + 2ph, x.w + 2pw, x.c), zero border. */
static void copy_padded(const hfc_tensor *x, int b, int ph, int pw, float *pad)
{
    const size_t row = (size_t)(x->w + 2 * pw) * x->c;
    memset(pad, 0, (size_t)(x->h + 2 * ph) * row * sizeof *pad);
    for (int iy = 0; iy < x->h; iy++)
        memcpy(pad + (iy + ph) * row + (size_t)pw * x->c,
               x->data + ((size_t)b * x->h + iy) * x->w * x->c, (size_t)x->w * x->c * sizeof *pad);
}

void hfc_conv2d_direct(const hfc_tensor *x, const float *wt, const float *bias, int kh, int kw,
                       int sh, int sw, int ph, int pw, int relu, float *pad, hfc_tensor *y)
{
    const int cin = x->c, cout = y->c;
    const size_t row = (size_t)(x->w + 2 * pw) * cin;
    for (int b = 0; b < x->n; b++) {
        copy_padded(x, b, ph, pw, pad);
        for (int oy = 0; oy < y->h; oy++)
            gemm_rows(pad + (size_t)oy * sh * row, (size_t)sw * cin, row, kh, kw * cin, wt, cout,
                      bias, relu, y->data + ((size_t)b * y->h + oy) * y->w * cout, cout, y->w);
    }
}

/* ---- Winograd F(2x2, 3x3) ------------------------------------------------ */

/* The 16 planes of v and m are this many floats apart: a plane plus one
 * cache line, so that the 16 planes of one tile do not fall into the same
 * L1 set when a plane is a multiple of 4 KB. */
static size_t plane_stride(int tiles, int c) { return (size_t)tiles * c + 16; }

size_t hfc_conv2d_winograd_scratch(int h, int w, int cin, int cout)
{
    const int tiles = (h / 2) * (w / 2);
    return (size_t)(h + 2) * (w + 2) * cin + 16 * (plane_stride(tiles, cin) + plane_stride(tiles, cout));
}

void hfc_winograd_weights(const float *w, int cin, int cout, float *u)
{
    static const double G[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
    for (int o = 0; o < cout; o++)
        for (int c = 0; c < cin; c++) {
            double g[3][3], gg[4][3];
            for (int ky = 0; ky < 3; ky++)
                for (int kx = 0; kx < 3; kx++)
                    g[ky][kx] = w[(((size_t)o * 3 + ky) * 3 + kx) * cin + c];
            for (int i = 0; i < 4; i++)
                for (int kx = 0; kx < 3; kx++)
                    gg[i][kx] = G[i][0] * g[0][kx] + G[i][1] * g[1][kx] + G[i][2] * g[2][kx];
            for (int i = 0; i < 4; i++)
                for (int j = 0; j < 4; j++)
                    u[((size_t)(4 * i + j) * cin + c) * cout + o] =
                        (float)(gg[i][0] * G[j][0] + gg[i][1] * G[j][1] + gg[i][2] * G[j][2]);
        }
}

/* v[16][tiles][cin] (planes plane_stride apart) = B^T d B for every 4x4 block d of the padded image
 * (blocks 2 apart), 16 channels at a time; the last chunk is masked. */
AVX512 static void winograd_input(const float *pad, int th, int tw, int cin, float *v)
{
    const size_t row = (size_t)(2 * tw + 2) * cin, plane = plane_stride(th * tw, cin);
    for (int ty = 0; ty < th; ty++)
        for (int tx = 0; tx < tw; tx++) {
            const float *p = pad + 2 * ty * row + (size_t)2 * tx * cin;
            float *vt = v + ((size_t)ty * tw + tx) * cin;
            for (int c = 0; c < cin; c += 16) {
                __mmask16 k = cin - c >= 16 ? 0xffff : (__mmask16)((1u << (cin - c)) - 1);
                __m512 d[4][4], s[4][4];
                for (int i = 0; i < 4; i++)
                    for (int j = 0; j < 4; j++)
                        d[i][j] = _mm512_maskz_loadu_ps(k, p + i * row + (size_t)j * cin + c);
                for (int j = 0; j < 4; j++) {  /* rows: B^T d */
                    s[0][j] = _mm512_sub_ps(d[0][j], d[2][j]);
                    s[1][j] = _mm512_add_ps(d[1][j], d[2][j]);
                    s[2][j] = _mm512_sub_ps(d[2][j], d[1][j]);
                    s[3][j] = _mm512_sub_ps(d[1][j], d[3][j]);
                }
                for (int i = 0; i < 4; i++) {  /* columns: (B^T d) B */
                    __m512 r[4] = {_mm512_sub_ps(s[i][0], s[i][2]),
                                   _mm512_add_ps(s[i][1], s[i][2]),
                                   _mm512_sub_ps(s[i][2], s[i][1]),
                                   _mm512_sub_ps(s[i][1], s[i][3])};
                    for (int j = 0; j < 4; j++)
                        _mm512_mask_storeu_ps(vt + (4 * i + j) * plane + c, k, r[j]);
                }
            }
        }
}

/* y's 2x2 block of every tile = A^T m A (+ bias, ReLU) from m[16][tiles][cout]
 * (planes plane_stride apart). */
AVX512 static void winograd_output(const float *m, int th, int tw, int cout, const float *bias,
                                   int relu, float *y)
{
    const size_t plane = plane_stride(th * tw, cout), row = (size_t)2 * tw * cout;
    const __m512 zero = _mm512_setzero_ps();
    for (int ty = 0; ty < th; ty++)
        for (int tx = 0; tx < tw; tx++) {
            const float *mt = m + ((size_t)ty * tw + tx) * cout;
            float *yt = y + 2 * ty * row + (size_t)2 * tx * cout;
            for (int o = 0; o < cout; o += 16) {
                __m512 t[2][4], q[4];
                for (int j = 0; j < 4; j++) {  /* rows: A^T m */
                    for (int i = 0; i < 4; i++)
                        q[i] = _mm512_loadu_ps(mt + (4 * i + j) * plane + o);
                    t[0][j] = _mm512_add_ps(_mm512_add_ps(q[0], q[1]), q[2]);
                    t[1][j] = _mm512_sub_ps(_mm512_sub_ps(q[1], q[2]), q[3]);
                }
                __m512 b = bias ? _mm512_loadu_ps(bias + o) : zero;
                for (int i = 0; i < 2; i++) {  /* columns: (A^T m) A */
                    __m512 r0 = _mm512_add_ps(_mm512_add_ps(t[i][0], t[i][1]), t[i][2]);
                    __m512 r1 = _mm512_sub_ps(_mm512_sub_ps(t[i][1], t[i][2]), t[i][3]);
                    r0 = _mm512_add_ps(r0, b);
                    r1 = _mm512_add_ps(r1, b);
                    if (relu) {
                        r0 = _mm512_max_ps(r0, zero);
                        r1 = _mm512_max_ps(r1, zero);
                    }
                    _mm512_storeu_ps(yt + i * row + o, r0);
                    _mm512_storeu_ps(yt + i * row + cout + o, r1);
                }
            }
        }
}

void hfc_conv2d_winograd(const hfc_tensor *x, const float *u, const float *bias, int relu,
                         float *scratch, hfc_tensor *y)
{
    const int cin = x->c, cout = y->c, th = y->h / 2, tw = y->w / 2, tiles = th * tw;
    float *pad = scratch;
    float *v = pad + (size_t)(x->h + 2) * (x->w + 2) * cin;
    const size_t vplane = plane_stride(tiles, cin), mplane = plane_stride(tiles, cout);
    float *m = v + 16 * vplane;
    for (int b = 0; b < x->n; b++) {
        copy_padded(x, b, 1, 1, pad);
        winograd_input(pad, th, tw, cin, v);
        for (int k = 0; k < 16; k++)
            gemm_rows(v + k * vplane, cin, 0, 1, cin, u + (size_t)k * cin * cout, cout, NULL, 0,
                      m + k * mplane, cout, tiles);
        winograd_output(m, th, tw, cout, bias, relu,
                        y->data + (size_t)b * y->h * y->w * cout);
    }
}
