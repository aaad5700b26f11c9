/* split_fft.c - the paper's low/high frequency split with FFTW.
 *
 * The paper shifts the spectrum, masks a centred disc and shifts back. We
 * skip the shifts: after fftshift, index i holds frequency k with
 * i - 16 = k for k < 16 and k - 32 otherwise, so the disc is
 * sqrt(fy^2 + fx^2) < r with fy, fx the signed frequencies. The mask is
 * symmetric under (fy, fx) -> (-fy, -fx) (|-16| = |16 - 32|), so the masked
 * spectrum stays Hermitian: its inverse is real and a real-to-complex /
 * complex-to-real pair of transforms gives exactly Re(ifft2(...)). The
 * high image is x - low, equal to ifft2(F * (1 - M)) since the transform is
 * linear, for one inverse transform per radius instead of two.
 */
#include <fftw3.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hfc.h"

#define SIDE HFC_CIFAR_SIDE
#define HALF (SIDE / 2 + 1)         /* 17 columns kept by r2c */
#define PLANE (SIDE * SIDE)
#define SPECTRUM (SIDE * HALF)

struct hfc_splitter {
    size_t capacity;        /* images */
    size_t n;               /* images in the last forward */
    float *real;            /* (capacity*3, 32, 32) forward transform input */
    float *low, *high;      /* (capacity*3, 32, 32) results of the last radius */
    fftwf_complex *freq;    /* (capacity*3, 32, 17) spectra of the last forward */
    fftwf_complex *masked;  /* (capacity*3, 32, 17) scratch: c2r destroys its input */
    fftwf_plan r2c, c2r;
    double dist[SPECTRUM];  /* sqrt(fy^2 + fx^2) per kept frequency */
};

static int signed_freq(int k) { return k < SIDE / 2 ? k : k - SIDE; }

hfc_status hfc_splitter_new(hfc_splitter **out, size_t capacity, hfc_error *err)
{
    *out = NULL;
    hfc_splitter *s = calloc(1, sizeof *s);
    if (!s)
        return hfc_fail(err, HFC_ERR_NOMEM, NULL, "out of memory for the splitter");
    size_t planes = capacity * HFC_CIFAR_CHANNELS;
    s->capacity = capacity;
    s->real = fftwf_alloc_real(planes * PLANE);
    s->low = fftwf_alloc_real(planes * PLANE);
    s->high = fftwf_alloc_real(planes * PLANE);
    s->freq = fftwf_alloc_complex(planes * SPECTRUM);
    s->masked = fftwf_alloc_complex(planes * SPECTRUM);
    if (!s->real || !s->low || !s->high || !s->freq || !s->masked) {
        hfc_splitter_free(s);
        return hfc_fail(err, HFC_ERR_NOMEM, NULL, "out of memory for %zu images of spectra", capacity);
    }
    memset(s->masked, 0, planes * SPECTRUM * sizeof *s->masked);
    int dims[2] = {SIDE, SIDE};
    /* FFTW_ESTIMATE: the same algorithm every run, so results are repeatable. */
    s->r2c = fftwf_plan_many_dft_r2c(2, dims, (int)planes, s->real, NULL, 1, PLANE,
                                     s->freq, NULL, 1, SPECTRUM, FFTW_ESTIMATE);
    /* Planned on low; executed on low and on high (same size and alignment). */
    s->c2r = fftwf_plan_many_dft_c2r(2, dims, (int)planes, s->masked, NULL, 1, SPECTRUM,
                                     s->low, NULL, 1, PLANE, FFTW_ESTIMATE);
    if (!s->r2c || !s->c2r) {
        hfc_splitter_free(s);
        return hfc_fail(err, HFC_ERR_NOMEM, NULL, "FFTW could not make a plan");
    }
    for (int i = 0; i < SIDE; i++)
        for (int j = 0; j < HALF; j++) {
            int fy = signed_freq(i), fx = signed_freq(j);
            s->dist[i * HALF + j] = sqrt((double)(fy * fy + fx * fx));
        }
    *out = s;
    return HFC_OK;
}

void hfc_splitter_free(hfc_splitter *s)
{
    if (!s)
        return;
    if (s->r2c)
        fftwf_destroy_plan(s->r2c);
    if (s->c2r)
        fftwf_destroy_plan(s->c2r);
    fftwf_free(s->real);
    fftwf_free(s->low);
    fftwf_free(s->high);
    fftwf_free(s->freq);
    fftwf_free(s->masked);
    free(s);
}

void hfc_split_forward(hfc_splitter *s, const float *x, size_t n)
{
    size_t used = n * HFC_CIFAR_PIXELS;
    memcpy(s->real, x, used * sizeof *x);
    memset(s->real + used, 0, (s->capacity * HFC_CIFAR_PIXELS - used) * sizeof *x);
    fftwf_execute(s->r2c);
    s->n = n;
}

/* out = ifft2(freq * mask), mask already holding FFTW's 1/(32*32). */
static void inverse_masked(hfc_splitter *s, const float *mask, float *out)
{
    size_t planes = s->n * HFC_CIFAR_CHANNELS;
    for (size_t p = 0; p < planes; p++) {
        const float *src = (const float *)(s->freq + p * SPECTRUM);
        float *dst = (float *)(s->masked + p * SPECTRUM);
        for (int k = 0; k < 2 * SPECTRUM; k++)
            dst[k] = src[k] * mask[k];
    }
    fftwf_execute_dft_c2r(s->c2r, s->masked, out);
}

void hfc_split_radius(hfc_splitter *s, double radius)
{
    float low_mask[2 * SPECTRUM];  /* (re, im) interleaved */
    for (int k = 0; k < SPECTRUM; k++)
        low_mask[2 * k] = low_mask[2 * k + 1] = s->dist[k] < radius ? 1.0f / PLANE : 0.0f;
    inverse_masked(s, low_mask, s->low);
    /* high = ifft2(F * (1 - M)) = x - low: one inverse transform, not two. */
    size_t used = s->n * HFC_CIFAR_PIXELS;
    for (size_t k = 0; k < used; k++)
        s->high[k] = s->real[k] - s->low[k];
}

const float *hfc_split_low(const hfc_splitter *s) { return s->low; }
const float *hfc_split_high(const hfc_splitter *s) { return s->high; }

int hfc_split_mask(double radius, int i, int j)
{
    int dy = i - SIDE / 2, dx = j - SIDE / 2;
    return sqrt((double)(dy * dy + dx * dx)) < radius;
}

void hfc_split_magnitude(const hfc_splitter *s, size_t image, float *out)
{
    for (int i = 0; i < SIDE; i++)
        for (int j = 0; j < SIDE; j++) {
            /* shifted (i, j) holds frequency (i - 16, j - 16); r2c keeps
             * columns 0..16, the rest are conjugates of (-ky, -kx). */
            int ky = (i + SIDE / 2) % SIDE, kx = (j + SIDE / 2) % SIDE;
            if (kx >= HALF) {
                ky = (SIDE - ky) % SIDE;
                kx = SIDE - kx;
            }
            double sum = 0;
            for (int ch = 0; ch < HFC_CIFAR_CHANNELS; ch++) {
                const float *f = (const float *)(s->freq + (image * HFC_CIFAR_CHANNELS + ch) * SPECTRUM);
                sum += hypot(f[2 * (ky * HALF + kx)], f[2 * (ky * HALF + kx) + 1]);
            }
            out[i * SIDE + j] = (float)(sum / HFC_CIFAR_CHANNELS);
        }
}
