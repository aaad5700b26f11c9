/* split.c - the paper's low/high frequency split, as a partial DFT.
 *
 * The paper masks a centred disc of the shifted spectrum and transforms
 * back. After fftshift, index i holds frequency i - 16, so the disc is the
 * set D of frequencies (fy, fx), -16 <= fy, fx < 16, with
 * sqrt(fy^2 + fx^2) < r, and low = ifft2(F masked to D) is the orthogonal
 * projection of x onto the Fourier modes in D.
 *
 * D depends only on fy^2 and fx^2 (16 and -16 are the same frequency on 32
 * points), so it is closed under flipping either sign, and the complex modes
 * in D span the same real space as the products u_a(y) u_b(x) of the real
 * basis of R^32
 *     u = 1, cos k, sin k (k = 1..15), cos 16     (cos k = cos(2 pi k t / 32))
 * whose frequencies (|f_a|, |f_b|) lie in D. These products are orthogonal,
 * so the projection is
 *     Z = B' X B,   W = Z * Q,   low = B W B'
 * with B the 32 x m matrix of the first m basis vectors (those with
 * frequency < r) and Q(a, b) = [f_a^2 + f_b^2 < r^2] / (|u_a|^2 |u_b|^2),
 * |u|^2 = 32 for the constant and cos 16, 16 for the others. At r = 4 that
 * is m = 7 and about 18,000 multiply-adds per plane, against a pair of 32x32
 * FFTs (measured here: 24 ms for 10,000 images instead of 143 ms with FFTW's
 * float r2c/c2r). The basis is ordered by frequency, so the m of a smaller
 * radius is a prefix: the forward (Z) is done once per batch for the largest
 * radius, and each radius only repeats the inverse (low = B W B'). The high
 * image is x - low, equal to ifft2(F * (1 - M)) since the transform is linear.
 *
 * Other masks (hfc_mask: square, gaussian, band) go the same way with
 * Q(a, b) = weight(f_a, f_b) / (|u_a|^2 |u_b|^2), as long as the weight does
 * not change when either frequency changes sign: the real products cannot
 * tell +f from -f. A mask that does is split by FFTW instead (low =
 * Re(ifft2(F * M)) literally), as is everything after hfc_splitter_use_fft.
 *
 * Images of any other size (H x W, C channels) go the same way when every
 * mask weighs only the lowest frequencies (at most PROJ_MAX basis vectors
 * along each side: a disc of radius 16 or less): the basis of R^n is
 *     u = 1, cos k, sin k (0 < k < n/2), and cos(n/2) when n is even,
 * |u|^2 = n for the constant and cos(n/2), n/2 for the others, and with
 * Bh (H x mh), Bw (W x mw) the projection is low = Bh (Z * Q) Bw', Z =
 * Bh' X Bw, by row operations of W floats (general_* below). At 224 x 224,
 * r = 4, that is about 0.7 million multiply-adds per plane against a pair
 * of FFTs of 224 x 224 (FFTW took 0.26 s of the 2 s that MobileNetV3 needs
 * for 300 images). Other images are split by FFTW's real
 * transforms: per plane the half spectrum F = rfft2(x) once per batch, then
 * per mask low = irfft2(F * S), S(k) = (M(k) + M(-k)) / 2. Since F(-k) is
 * the conjugate of F(k), ifft2(F * M) has real part ifft2(F * S) exactly, so
 * this is Re(ifft2(ifftshift(F * M))) for every mask, symmetric or not. The
 * shifted cell (i, j) holds frequency (i - floor(H/2), j - floor(W/2)), as
 * fftshift places it for even and odd sizes: at 32 x 32, (i - 16, j - 16).
 *
 * FFTW also computes the spectra that the pictures show.
 */
#include <fftw3.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hfc/data.h"

#define SIDE HFC_CIFAR_SIDE         /* 32 */
#define PLANE (SIDE * SIDE)
#define VEC 8                       /* floats in a v8 */
#define ROW (SIDE / VEC)            /* v8s in a row of a plane */
#define PROJ_MAX 32                 /* basis vectors per side, any size: beyond, FFTW */

/* Eight floats, one AVX register under -march=x86-64-v3 (two SSE ones
 * without). v8u is the same in memory that is only 4-byte aligned. */
typedef float v8 __attribute__((vector_size(32)));
typedef float v8u __attribute__((vector_size(32), aligned(4), may_alias));

static const double PI = 3.14159265358979323846;

/* The first m real basis vectors of R^n (any size): b[y * m + a] = u_a(y),
 * bt the transpose, freq and norm2 as for 32 points. */
typedef struct {
    int n, m;
    float *b, *bt, *norm2;
    int *freq;
} side_basis;

struct hfc_splitter {
    size_t capacity;   /* images */
    int c, h, w;       /* each image's channels, height, width */
    size_t plane;      /* h * w */
    int general;       /* not 32 x 32: FFTW's real transforms (real_* below), or */
    int proj;          /* general and split as the projection: bases below */
    side_basis by, bx; /* along the height and the width */
    float *zg;         /* (capacity * c, by.m, bx.m) Z = Bh' X Bw of the last forward */
    float *rows_tmp;   /* (by.m, w) one plane's Bh' X, or (Z * Q) Bw' */
    fftwf_plan real_forward, real_backward;
    size_t half;       /* h * (w / 2 + 1): complex values of a half spectrum */
    float *real_in;    /* one plane for the plans */
    fftwf_complex *spectra;  /* (capacity * c, half) rfft2 of the last forward */
    fftwf_complex *work;     /* one half spectrum */
    float *weight;     /* (half) S / (h * w) of the mask being applied */
    size_t n;          /* images in the last forward */
    const float *x;    /* the last forward's images: the caller's, read again by each mask */
    int max_freq;      /* the largest |frequency| any of its masks weighs */
    int m;             /* basis vectors the forward keeps */
    int fft;           /* some mask is not sign-symmetric (or forced): FFTW plans below */
    fftwf_complex *buf;            /* one 32x32 plane */
    fftwf_plan forward, backward;
    int rows, stride;  /* Z per plane: m rounded up to 2 rows of m rounded up to 8 floats */
    float *z;          /* (capacity*3, rows, stride) Z = B'XB of the last forward */
    float *low, *high; /* (capacity*3, 32, 32) results of the last radius */
    int freq[SIDE];    /* |frequency| of basis vector a */
    float norm2[SIDE]; /* |u_a|^2 */
    float basis[SIDE][SIDE];   /* basis[y][a] = u_a(y) */
    float basis_t[SIDE][SIDE]; /* its transpose */
};

/* Basis vectors with frequency <= f: 1 + 2 per k in 1..15 + cos 16. */
static int basis_count(int f)
{
    int m = 0;
    for (int k = 0; k <= SIDE / 2 && k <= f; k++)
        m += k == 0 || k == SIDE / 2 ? 1 : 2;
    return m;
}

static hfc_status make_fft(hfc_splitter *s, hfc_error *err)
{
    if (s->buf)
        return HFC_OK;
    s->buf = fftwf_alloc_complex(PLANE);
    s->forward = s->buf ? fftwf_plan_dft_2d(SIDE, SIDE, s->buf, s->buf, FFTW_FORWARD, FFTW_ESTIMATE)
                        : NULL;
    s->backward = s->buf ? fftwf_plan_dft_2d(SIDE, SIDE, s->buf, s->buf, FFTW_BACKWARD,
                                             FFTW_ESTIMATE)
                         : NULL;
    if (!s->forward || !s->backward)
        return hfc_fail(err, HFC_ERR_NOMEM, NULL, "FFTW could not plan the split");
    return HFC_OK;
}

static v8 broadcast(float f) { return (v8){f, f, f, f, f, f, f, f}; }

/* Basis vectors of n points with frequency <= f: 1, 2 per 0 < k < n/2, and
 * 1 for k = n/2 when n is even. */
static int side_count(int n, int f)
{
    int m = 0;
    for (int k = 0; 2 * k <= n && k <= f; k++)
        m += k == 0 || 2 * k == n ? 1 : 2;
    return m;
}

/* The largest |fy| and |fx| that mask weighs on an h x w grid (shifted
 * cells), -1 where it weighs none. */
static void mask_extent(const hfc_mask *mask, int h, int w, int *fy, int *fx)
{
    *fy = *fx = -1;
    for (int i = 0; i < h; i++)
        for (int j = 0; j < w; j++) {
            const int y = abs(i - h / 2), x = abs(j - w / 2);
            if ((y > *fy || x > *fx) && hfc_mask_weight(mask, i - h / 2, j - w / 2) != 0) {
                *fy = y > *fy ? y : *fy;
                *fx = x > *fx ? x : *fx;
            }
        }
}

static int side_basis_new(side_basis *sb, int n, int m)
{
    sb->n = n;
    sb->m = m;
    sb->b = malloc((size_t)n * m * sizeof *sb->b);
    sb->bt = malloc((size_t)n * m * sizeof *sb->bt);
    sb->norm2 = malloc((size_t)m * sizeof *sb->norm2);
    sb->freq = malloc((size_t)m * sizeof *sb->freq);
    if (!sb->b || !sb->bt || !sb->norm2 || !sb->freq)
        return 0;
    for (int a = 0; a < m; a++) { /* a = 0: 1; 2k - 1: cos k; 2k: sin k; n - 1 (n even): cos n/2 */
        const int k = (a + 1) / 2, is_sin = a > 0 && a % 2 == 0;
        sb->freq[a] = k;
        sb->norm2[a] = k == 0 || 2 * k == n ? (float)n : (float)n / 2;
        for (int y = 0; y < n; y++) {
            const double t = 2 * PI * k * y / n;
            sb->b[(size_t)y * m + a] = sb->bt[(size_t)a * n + y] = (float)(is_sin ? sin(t) : cos(t));
        }
    }
    return 1;
}

static void side_basis_free(side_basis *sb)
{
    free(sb->b);
    free(sb->bt);
    free(sb->norm2);
    free(sb->freq);
}

/* The FFTW plans and spectra of the general route. */
static hfc_status make_real_fft(hfc_splitter *s, hfc_error *err)
{
    const size_t planes = s->capacity * (size_t)s->c;
    s->half = (size_t)s->h * (size_t)(s->w / 2 + 1);
    s->real_in = fftwf_alloc_real(s->plane);
    s->work = fftwf_alloc_complex(s->half);
    s->spectra = fftwf_alloc_complex(planes * s->half);
    s->weight = malloc(s->half * sizeof *s->weight);
    if (!s->real_in || !s->work || !s->spectra || !s->weight)
        return hfc_fail(err, HFC_ERR_NOMEM, NULL, "out of memory for %zu images of spectra",
                        s->capacity);
    /* FFTW_UNALIGNED: planes are executed on other arrays (new-array execute) */
    s->real_forward = fftwf_plan_dft_r2c_2d(s->h, s->w, s->real_in, s->work,
                                            FFTW_ESTIMATE | FFTW_UNALIGNED);
    s->real_backward = fftwf_plan_dft_c2r_2d(s->h, s->w, s->work, s->real_in,
                                             FFTW_ESTIMATE | FFTW_UNALIGNED);
    if (!s->real_forward || !s->real_backward)
        return hfc_fail(err, HFC_ERR_NOMEM, NULL, "FFTW could not plan a %dx%d split", s->h, s->w);
    s->proj = 0;
    return HFC_OK;
}

/* Any size: the projection when the masks' frequencies need at most
 * PROJ_MAX basis vectors per side, else FFTW; buffers for `capacity` images. */
static hfc_status make_general(hfc_splitter *s, const hfc_mask *masks, int n_masks,
                               hfc_error *err)
{
    const size_t planes = s->capacity * (size_t)s->c;
    int top_y = -1, top_x = -1;
    for (int k = 0; k < n_masks; k++) {
        int fy, fx;
        mask_extent(&masks[k], s->h, s->w, &fy, &fx);
        top_y = fy > top_y ? fy : top_y;
        top_x = fx > top_x ? fx : top_x;
    }
    const int my = side_count(s->h, top_y), mx = side_count(s->w, top_x);
    s->low = hfc_alloc_big(planes * s->plane * sizeof *s->low);
    s->high = hfc_alloc_big(planes * s->plane * sizeof *s->high);
    if (!s->low || !s->high)
        return hfc_fail(err, HFC_ERR_NOMEM, NULL, "out of memory for %zu images of splits",
                        s->capacity);
    if (n_masks < 1 || my > PROJ_MAX || mx > PROJ_MAX)
        return make_real_fft(s, err);
    s->proj = 1;
    s->zg = hfc_alloc_big(planes * (size_t)(my > 0 ? my : 1) * (mx > 0 ? mx : 1) * sizeof *s->zg);
    s->rows_tmp = malloc((size_t)(my > 0 ? my : 1) * s->w * sizeof *s->rows_tmp);
    if (!s->zg || !s->rows_tmp || !side_basis_new(&s->by, s->h, my) ||
        !side_basis_new(&s->bx, s->w, mx))
        return hfc_fail(err, HFC_ERR_NOMEM, NULL, "out of memory for %zu images of splits",
                        s->capacity);
    return HFC_OK;
}

hfc_status hfc_splitter_new(hfc_splitter **out, size_t capacity, int channels, int height,
                            int width, const hfc_mask *masks, int n_masks, hfc_error *err)
{
    *out = NULL;
    if (channels < 1 || height < 1 || width < 1 || height > HFC_MAX_SIDE || width > HFC_MAX_SIDE)
        return hfc_fail(err, HFC_ERR_USAGE, NULL, "cannot split %dx%dx%d images", channels,
                        height, width);
    hfc_splitter *s = calloc(1, sizeof *s);
    if (!s)
        return hfc_fail(err, HFC_ERR_NOMEM, NULL, "out of memory for the splitter");
    s->capacity = capacity;
    s->c = channels;
    s->h = height;
    s->w = width;
    s->plane = (size_t)height * (size_t)width;
    s->general = height != SIDE || width != SIDE;
    if (s->general) {
        hfc_status st = make_general(s, masks, n_masks, err);
        if (st)
            hfc_splitter_free(s);
        else
            *out = s;
        return st;
    }
    s->max_freq = -1;
    for (int k = 0; k < n_masks; k++) {
        int f = hfc_mask_max_frequency(&masks[k]);
        s->max_freq = f > s->max_freq ? f : s->max_freq;
        s->fft |= !hfc_mask_sign_symmetric(&masks[k]);
    }
    s->m = basis_count(s->max_freq);
    s->rows = (s->m + 1) / 2 * 2;
    s->stride = (s->m + VEC - 1) / VEC * VEC;
    size_t planes = capacity * (size_t)channels;
    s->z = hfc_alloc_big(planes * s->rows * s->stride * sizeof *s->z);
    s->low = hfc_alloc_big(planes * PLANE * sizeof *s->low);
    s->high = hfc_alloc_big(planes * PLANE * sizeof *s->high);
    if (!s->z || !s->low || !s->high) {
        hfc_splitter_free(s);
        return hfc_fail(err, HFC_ERR_NOMEM, NULL, "out of memory for %zu images of splits",
                        capacity);
    }
    hfc_status st = s->fft ? make_fft(s, err) : HFC_OK;
    if (st) {
        hfc_splitter_free(s);
        return st;
    }
    for (int a = 0; a < SIDE; a++) {
        /* a = 0: 1; a = 2k-1: cos k; a = 2k: sin k; a = 31: cos 16 */
        int k = (a + 1) / 2, is_sin = a > 0 && a % 2 == 0;
        s->freq[a] = k;
        s->norm2[a] = k == 0 || k == SIDE / 2 ? SIDE : SIDE / 2;
        for (int y = 0; y < SIDE; y++) {
            double t = 2 * PI * k * y / SIDE;
            s->basis[y][a] = s->basis_t[a][y] = (float)(is_sin ? sin(t) : cos(t));
        }
    }
    *out = s;
    return HFC_OK;
}

void hfc_splitter_free(hfc_splitter *s)
{
    if (!s)
        return;
    free(s->z);
    free(s->zg);
    free(s->rows_tmp);
    side_basis_free(&s->by);
    side_basis_free(&s->bx);
    free(s->low);
    free(s->high);
    if (s->forward)
        fftwf_destroy_plan(s->forward);
    if (s->backward)
        fftwf_destroy_plan(s->backward);
    if (s->real_forward)
        fftwf_destroy_plan(s->real_forward);
    if (s->real_backward)
        fftwf_destroy_plan(s->real_backward);
    fftwf_free(s->buf);
    fftwf_free(s->real_in);
    fftwf_free(s->work);
    fftwf_free(s->spectra);
    free(s->weight);
    free(s);
}

hfc_status hfc_splitter_use_fft(hfc_splitter *s, hfc_error *err)
{
    if (s->general)
        return s->proj ? make_real_fft(s, err) : HFC_OK;
    s->fft = 2;
    return make_fft(s, err);
}

/* z (rows x stride) = B' X B for one 32x32 plane x, first s->m basis vectors. */
static void project_plane(const hfc_splitter *s, const float *x, float *z)
{
    const v8u *X = (const v8u *)x;
    v8 t[SIDE][ROW];  /* T = B'X: row a is sum_y u_a(y) x[y][.] */
    for (int a = 0; a < s->rows; a += 2) {
        v8 t0[ROW] = {0}, t1[ROW] = {0};
        for (int y = 0; y < SIDE; y++) {
            v8 b0 = broadcast(s->basis[y][a]), b1 = broadcast(s->basis[y][a + 1]);
            for (int q = 0; q < ROW; q++) {
                t0[q] += b0 * X[y * ROW + q];
                t1[q] += b1 * X[y * ROW + q];
            }
        }
        memcpy(t[a], t0, sizeof t0);
        memcpy(t[a + 1], t1, sizeof t1);
    }
    for (int a = 0; a < s->rows; a += 2) {
        const float *t0 = (const float *)t[a], *t1 = (const float *)t[a + 1];
        for (int c = 0; c < s->stride; c += VEC) {
            /* two sums per row: shorter dependency chains */
            v8 z0 = {0}, z0b = {0}, z1 = {0}, z1b = {0};
            for (int k = 0; k < SIDE; k += 2) {
                v8 bk = *(const v8u *)&s->basis[k][c], bk1 = *(const v8u *)&s->basis[k + 1][c];
                z0 += broadcast(t0[k]) * bk;
                z0b += broadcast(t0[k + 1]) * bk1;
                z1 += broadcast(t1[k]) * bk;
                z1b += broadcast(t1[k + 1]) * bk1;
            }
            *(v8u *)&z[a * s->stride + c] = z0 + z0b;
            *(v8u *)&z[(a + 1) * s->stride + c] = z1 + z1b;
        }
    }
}

/* low = B W B' with W = z * q over the first m basis vectors; high = x - low. */
static void reconstruct_plane(const hfc_splitter *s, int m, const float *q, const float *z,
                              const float *x, float *low, float *high)
{
    v8 u[SIDE][ROW];  /* U = W B': row a is sum_b w[a][b] u_b(.) */
    const v8u *bt = (const v8u *)s->basis_t;
    for (int a = 0; a < m; a++) {
        v8 acc[ROW] = {0};
        for (int b = 0; b < m; b++) {
            v8 w = broadcast(z[a * s->stride + b] * q[a * SIDE + b]);
            for (int r = 0; r < ROW; r++)
                acc[r] += w * bt[b * ROW + r];
        }
        memcpy(u[a], acc, sizeof acc);
    }
    const v8u *X = (const v8u *)x;
    v8u *L = (v8u *)low, *H = (v8u *)high;
    for (int y = 0; y < SIDE; y += 2) {
        v8 l0[ROW] = {0}, l1[ROW] = {0};
        for (int a = 0; a < m; a++) {
            v8 b0 = broadcast(s->basis[y][a]), b1 = broadcast(s->basis[y + 1][a]);
            for (int r = 0; r < ROW; r++) {
                l0[r] += b0 * u[a][r];
                l1[r] += b1 * u[a][r];
            }
        }
        for (int r = 0; r < ROW; r++) {
            L[y * ROW + r] = l0[r];
            H[y * ROW + r] = X[y * ROW + r] - l0[r];
            L[(y + 1) * ROW + r] = l1[r];
            H[(y + 1) * ROW + r] = X[(y + 1) * ROW + r] - l1[r];
        }
    }
}

/* z (by.m x bx.m) = Bh' X Bw for one h x w plane x: first the rows
 * Bh' X (by.m x w), each a sum of image rows, then their products with Bw. */
static void general_project(const hfc_splitter *s, const float *restrict x, float *restrict z)
{
    const int h = s->h, w = s->w, my = s->by.m, mx = s->bx.m;
    float *restrict v = s->rows_tmp;
    memset(v, 0, (size_t)my * w * sizeof *v);
    for (int y = 0; y < h; y++)
        for (int a = 0; a < my; a++) {
            const float u = s->by.b[(size_t)y * my + a];
            float *restrict va = v + (size_t)a * w;
            const float *restrict xy = x + (size_t)y * w;
            for (int i = 0; i < w; i++)
                va[i] += u * xy[i];
        }
    memset(z, 0, (size_t)my * mx * sizeof *z);
    for (int a = 0; a < my; a++)
        for (int i = 0; i < w; i++) {
            const float va = v[(size_t)a * w + i];
            const float *restrict bi = s->bx.b + (size_t)i * mx;
            float *restrict za = z + (size_t)a * mx;
            for (int b = 0; b < mx; b++)
                za[b] += va * bi[b];
        }
}

/* low = Bh (Z * Q) Bw' over the first my x mx basis vectors (q: my x mx);
 * high = x - low. */
static void general_reconstruct(const hfc_splitter *s, int my, int mx, const float *q,
                                const float *z, const float *x, float *low, float *high)
{
    const int h = s->h, w = s->w;
    float *restrict p = s->rows_tmp; /* (Z * Q) Bw': my rows of w */
    memset(p, 0, (size_t)my * w * sizeof *p);
    for (int a = 0; a < my; a++)
        for (int b = 0; b < mx; b++) {
            const float c = z[(size_t)a * s->bx.m + b] * q[(size_t)a * mx + b];
            const float *restrict ub = s->bx.bt + (size_t)b * w;
            float *restrict pa = p + (size_t)a * w;
            for (int i = 0; i < w; i++)
                pa[i] += c * ub[i];
        }
    for (int y = 0; y < h; y++) {
        float *restrict ly = low + (size_t)y * w, *restrict hy = high + (size_t)y * w;
        const float *restrict xy = x + (size_t)y * w;
        memset(ly, 0, (size_t)w * sizeof *ly);
        for (int a = 0; a < my; a++) {
            const float u = s->by.b[(size_t)y * s->by.m + a];
            const float *restrict pa = p + (size_t)a * w;
            for (int i = 0; i < w; i++)
                ly[i] += u * pa[i];
        }
        for (int i = 0; i < w; i++)
            hy[i] = xy[i] - ly[i];
    }
}

/* The projection at any size for one mask, within the forward's bases. */
static hfc_status split_projected(hfc_splitter *s, const hfc_mask *mask, hfc_error *err)
{
    int fy, fx;
    mask_extent(mask, s->h, s->w, &fy, &fx);
    const int my = side_count(s->h, fy), mx = side_count(s->w, fx);
    if (my > s->by.m || mx > s->bx.m)
        return hfc_fail(err, HFC_ERR_USAGE, NULL,
                        "mask weighs frequency (%d, %d), past the splitter's largest", fy, fx);
    float q[PROJ_MAX * PROJ_MAX];
    for (int a = 0; a < my; a++)
        for (int b = 0; b < mx; b++)
            q[a * mx + b] = (float)(hfc_mask_weight(mask, s->by.freq[a], s->bx.freq[b]) /
                                    ((double)s->by.norm2[a] * s->bx.norm2[b]));
    const size_t per_plane = (size_t)s->by.m * s->bx.m;
    for (size_t p = 0; p < s->n * (size_t)s->c; p++)
        general_reconstruct(s, my, mx, q, s->zg + p * per_plane, s->x + p * s->plane,
                            s->low + p * s->plane, s->high + p * s->plane);
    return HFC_OK;
}

void hfc_split_forward(hfc_splitter *s, const float *x, size_t n)
{
    s->x = x;
    s->n = n;
    if (s->proj) {
        const size_t per_plane = (size_t)s->by.m * s->bx.m;
        for (size_t p = 0; p < n * (size_t)s->c; p++)
            general_project(s, x + p * s->plane, s->zg + p * per_plane);
        return;
    }
    if (s->general) {
        for (size_t p = 0; p < n * (size_t)s->c; p++)
            fftwf_execute_dft_r2c(s->real_forward, (float *)(x + p * s->plane),
                                  s->spectra + p * s->half);
        return;
    }
    size_t per_plane = (size_t)s->rows * s->stride;
    for (size_t p = 0; p < n * (size_t)s->c; p++)
        project_plane(s, x + p * PLANE, s->z + p * per_plane);
}

/* The frequency of unshifted index k of n points, as the shifted layout
 * numbers them: -floor(n/2) .. n - 1 - floor(n/2). */
static int frequency(int k, int n) { return k <= n - 1 - n / 2 ? k : k - n; }

/* The general route: low = irfft2(F * S) plane by plane (see the top). */
static void split_general(hfc_splitter *s, const hfc_mask *mask)
{
    const int H = s->h, W = s->w, HALF = W / 2 + 1;
    const double scale = 1.0 / ((double)H * W);
    for (int ky = 0; ky < H; ky++)
        for (int kx = 0; kx < HALF; kx++) {
            int fy = frequency(ky, H), fx = frequency(kx, W);
            int gy = frequency((H - ky) % H, H), gx = frequency((W - kx) % W, W);
            double m = hfc_mask_weight(mask, fy, fx) + hfc_mask_weight(mask, gy, gx);
            s->weight[(size_t)ky * HALF + kx] = (float)(0.5 * m * scale);
        }
    for (size_t p = 0; p < s->n * (size_t)s->c; p++) {
        fftwf_complex *f = s->spectra + p * s->half;
        for (size_t k = 0; k < s->half; k++) {
            s->work[k][0] = f[k][0] * s->weight[k];
            s->work[k][1] = f[k][1] * s->weight[k];
        }
        float *low = s->low + p * s->plane, *high = s->high + p * s->plane;
        const float *x = s->x + p * s->plane;
        fftwf_execute_dft_c2r(s->real_backward, s->work, low);
        for (size_t k = 0; k < s->plane; k++)
            high[k] = x[k] - low[k];
    }
}

/* low = Re(ifft2(F * M)) plane by plane, F = fft2(x), M in unshifted order. */
static void split_by_fft(hfc_splitter *s, const hfc_mask *mask)
{
    float w[PLANE];
    for (int ky = 0; ky < SIDE; ky++)
        for (int kx = 0; kx < SIDE; kx++)
            w[ky * SIDE + kx] = (float)(hfc_mask_weight(mask, ky < SIDE / 2 ? ky : ky - SIDE,
                                                        kx < SIDE / 2 ? kx : kx - SIDE) / PLANE);
    for (size_t p = 0; p < s->n * (size_t)s->c; p++) {
        const float *x = s->x + p * PLANE;
        for (int i = 0; i < PLANE; i++) {
            s->buf[i][0] = x[i];
            s->buf[i][1] = 0;
        }
        fftwf_execute(s->forward);
        for (int i = 0; i < PLANE; i++) {
            s->buf[i][0] *= w[i];
            s->buf[i][1] *= w[i];
        }
        fftwf_execute(s->backward);
        for (int i = 0; i < PLANE; i++) {
            s->low[p * PLANE + i] = s->buf[i][0];
            s->high[p * PLANE + i] = x[i] - s->buf[i][0];
        }
    }
}

hfc_status hfc_split_apply(hfc_splitter *s, const hfc_mask *mask, hfc_error *err)
{
    if (s->proj)
        return split_projected(s, mask, err);
    if (s->general) {
        split_general(s, mask);
        return HFC_OK;
    }
    int f = hfc_mask_max_frequency(mask);
    int symmetric = hfc_mask_sign_symmetric(mask);
    if (s->fft == 2 || !symmetric) {
        if (!s->buf)
            return hfc_fail(err, HFC_ERR_USAGE, NULL,
                            "mask is not sign-symmetric: the splitter was not made for it");
        split_by_fft(s, mask);
        return HFC_OK;
    }
    if (f > s->max_freq)
        return hfc_fail(err, HFC_ERR_USAGE, NULL,
                        "mask weighs frequency %d, past the splitter's largest %d", f, s->max_freq);
    int m = basis_count(f);
    float q[SIDE * SIDE];
    for (int a = 0; a < m; a++)
        for (int b = 0; b < m; b++)
            q[a * SIDE + b] = (float)(hfc_mask_weight(mask, s->freq[a], s->freq[b]) /
                                      (s->norm2[a] * s->norm2[b]));
    size_t per_plane = (size_t)s->rows * s->stride;
    for (size_t p = 0; p < s->n * (size_t)s->c; p++)
        reconstruct_plane(s, m, q, s->z + p * per_plane, s->x + p * PLANE, s->low + p * PLANE,
                          s->high + p * PLANE);
    return HFC_OK;
}

const float *hfc_split_low(const hfc_splitter *s) { return s->low; }
const float *hfc_split_high(const hfc_splitter *s) { return s->high; }

hfc_status hfc_spectrum_magnitude(const float *image, int channels, int height, int width,
                                  float *out, hfc_error *err)
{
    const int H = height, W = width, HALF = W / 2 + 1, CH = channels;
    const size_t plane = (size_t)H * W, spectrum = (size_t)H * HALF;
    float *in = fftwf_alloc_real((size_t)CH * plane);
    fftwf_complex *freq = fftwf_alloc_complex((size_t)CH * spectrum);
    int dims[2] = {H, W};
    fftwf_plan plan = in && freq ? fftwf_plan_many_dft_r2c(2, dims, CH, in, NULL, 1, (int)plane,
                                                           freq, NULL, 1, (int)spectrum,
                                                           FFTW_ESTIMATE)
                                 : NULL;
    if (!plan) {
        fftwf_free(in);
        fftwf_free(freq);
        return hfc_fail(err, HFC_ERR_NOMEM, NULL, "FFTW could not plan a spectrum");
    }
    memcpy(in, image, (size_t)CH * plane * sizeof *in);
    fftwf_execute(plan);
    for (int i = 0; i < H; i++)
        for (int j = 0; j < W; j++) {
            /* shifted (i, j) holds frequency (i - H/2, j - W/2); r2c keeps
             * columns 0..W/2, the rest are conjugates of (-ky, -kx). */
            int ky = (i - H / 2 + H) % H, kx = (j - W / 2 + W) % W;
            if (kx >= HALF) {
                ky = (H - ky) % H;
                kx = W - kx;
            }
            double sum = 0;
            for (int ch = 0; ch < CH; ch++) {
                const float *f = (const float *)(freq + ch * spectrum + (size_t)ky * HALF + kx);
                sum += hypot(f[0], f[1]);
            }
            out[(size_t)i * W + j] = (float)(sum / CH);
        }
    fftwf_destroy_plan(plan);
    fftwf_free(in);
    fftwf_free(freq);
    return HFC_OK;
}
