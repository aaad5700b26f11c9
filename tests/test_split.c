/* test_split.c - hfc_split_* against the paper's numpy split (split.ref),
 * for radii from 0 (low all zero) to past 22.63 (high all zero): once as a
 * sweep (one forward for the largest radius, every radius from it) and once
 * with a splitter made for each radius alone. Then every mask kind
 * (masks.ref, numpy's FFT with tools/reference.py's weights) by the
 * partial DFT and by the FFTW fallback, and hfc_mask's rules. */
#include <math.h>

#include "test_util.h"

/* Largest |got - ref| of low and high against the reference's two arrays. */
static void worst_errors(const hfc_splitter *s, const double *ref, size_t px, double worst[2])
{
    for (int part = 0; part < 2; part++) {
        const float *got = part ? hfc_split_high(s) : hfc_split_low(s);
        worst[part] = 0;
        for (size_t i = 0; i < px; i++)
            worst[part] = fmax(worst[part], fabs(got[i] - ref[part * px + i]));
    }
}

/* masks.ref: every kind by the partial DFT (one sweep splitter for all the
 * symmetric masks) and by FFTW (hfc_splitter_use_fft), against numpy. */
static void test_masks(const char *path)
{
    ref_file r = read_ref(path, 0);
    size_t n = r.a, nm = r.b, px = n * HFC_CIFAR_PIXELS;
    if (nm > 64 || r.len - 8 != nm * 24 + px * 4 + nm * 2 * px * 8) {
        printf("FAIL: %s has the wrong size\n", path);
        return;
    }
    hfc_mask masks[64];
    const uint8_t *p = r.body;
    for (size_t k = 0; k < nm; k++, p += 24) {
        double v[3];
        memcpy(v, p, 24);
        masks[k] = (hfc_mask){(hfc_mask_kind)v[0], v[1], v[2]};
    }
    float *images = malloc(px * sizeof *images);
    memcpy(images, p, px * 4);
    const double *ref = (const double *)(p + px * 4); /* 8-byte aligned: 8 + 24 nm + 4 px */
    hfc_error err;
    for (int fft = 0; fft < 2; fft++) {
        hfc_splitter *s;
        if (hfc_splitter_new(&s, n, 3, 32, 32, masks, (int)nm, &err) || (fft && hfc_splitter_use_fft(s, &err))) {
            printf("FAIL: splitter: %s\n", err.reason);
            return;
        }
        hfc_split_forward(s, images, n);
        for (size_t k = 0; k < nm; k++) {
            double worst[2];
            char label[64];
            hfc_mask_label(&masks[k], label, sizeof label);
            int applied = hfc_split_apply(s, &masks[k], &err) == HFC_OK;
            worst_errors(s, ref + k * 2 * px, px, worst);
            check(applied && worst[0] < 1e-3 && worst[1] < 1e-3 && hfc_mask_sign_symmetric(&masks[k]),
                  "%s mask %s by %s vs numpy's FFT: max |low err| %.2e, |high err| %.2e",
                  hfc_mask_kind_name(masks[k].kind), label, fft ? "FFTW" : "the partial DFT",
                  worst[0], worst[1]);
        }
        hfc_splitter_free(s);
    }
    /* The rules behind the weights, at their edges. */
    hfc_mask sq = {HFC_MASK_SQUARE, 4, 0}, g = {HFC_MASK_GAUSSIAN, 2, 0}, band = {HFC_MASK_BAND, 4, 8};
    check(hfc_mask_weight(&sq, 3, -3) == 1 && hfc_mask_weight(&sq, 4, 0) == 0 &&
              hfc_mask_weight(&g, 0, 0) == 1 && fabs(hfc_mask_weight(&g, 2, 0) - exp(-0.5)) < 1e-15 &&
              hfc_mask_weight(&band, 0, 4) == 1 && hfc_mask_weight(&band, 0, 3) == 0 &&
              hfc_mask_weight(&band, 0, -8) == 0 && hfc_mask_weight(&band, 5, 6) == 1,
          "mask weights: square max(|fy|,|fx|) < r, gaussian exp(-d^2/2r^2), band A <= d < B");
    hfc_mask bad[] = {{HFC_MASK_BAND, 8, 8}, {HFC_MASK_BAND, 9, 4}, {HFC_MASK_GAUSSIAN, 0, 0},
                      {HFC_MASK_DISC, 1001, 0}};
    int refused = 0;
    for (int k = 0; k < 4; k++)
        refused += hfc_mask_check(&bad[k], &err) == HFC_ERR_USAGE;
    check(refused == 4, "hfc_mask_check refuses A = B, A > B, gaussian r = 0, r > 1000 (%s)",
          err.reason);
    check(hfc_mask_max_frequency(&band) == 7 && hfc_mask_max_frequency(&(hfc_mask){HFC_MASK_DISC, 0, 0}) == -1 &&
              hfc_mask_max_frequency(&g) == 16,
          "largest frequency a mask weighs: band 4:8 -> 7, empty -> -1, gaussian -> 16");
    free(images);
    free(r.raw);
}

int main(int argc, char **argv)
{
    const char *path = argc > 1 ? argv[1] : "build/tests/ref/split.ref";
    ref_file r = read_ref(path, 0);
    size_t n = r.a, nr = r.b, px = n * HFC_CIFAR_PIXELS;
    size_t need = nr * 8 + px * 4 + nr * 2 * px * 8;
    if (nr > 64 || r.len - 8 != need) {
        printf("FAIL: %s has the wrong size\n", path);
        return 1;
    }
    const uint8_t *p = r.body;
    double radii[64], max_radius = 0;
    hfc_mask masks[64];
    memcpy(radii, p, nr * 8);
    p += nr * 8;
    for (size_t k = 0; k < nr; k++) {
        max_radius = fmax(max_radius, radii[k]);
        masks[k] = (hfc_mask){HFC_MASK_DISC, radii[k], 0};
    }
    float *images = malloc(px * sizeof *images);
    double *ref = malloc(nr * 2 * px * sizeof *ref);
    memcpy(images, p, px * 4);
    p += px * 4;
    memcpy(ref, p, nr * 2 * px * 8);

    hfc_splitter *sweep, *alone;
    hfc_error err;
    if (hfc_splitter_new(&sweep, n + 1, 3, 32, 32, masks, (int)nr, &err)) {  /* capacity > n: unused room */
        printf("FAIL: splitter: %s\n", err.reason);
        return 1;
    }
    hfc_split_forward(sweep, images, n);
    for (size_t k = 0; k < nr; k++) {
        const double *want = ref + k * 2 * px;
        double worst[2];
        check(hfc_split_apply(sweep, &masks[k], &err) == HFC_OK, "split r=%g from r=%g's forward",
              radii[k], max_radius);
        worst_errors(sweep, want, px, worst);
        check(worst[0] < 1e-3 && worst[1] < 1e-3,
              "sweep r=%g vs numpy: max |low err| %.2e, max |high err| %.2e", radii[k], worst[0],
              worst[1]);
        if (hfc_splitter_new(&alone, n, 3, 32, 32, &masks[k], 1, &err)) {
            printf("FAIL: splitter: %s\n", err.reason);
            return 1;
        }
        hfc_split_forward(alone, images, n);
        hfc_split_apply(alone, &masks[k], &err);
        worst_errors(alone, want, px, worst);
        check(worst[0] < 1e-3 && worst[1] < 1e-3,
              "split r=%g alone vs numpy: max |low err| %.2e, max |high err| %.2e", radii[k],
              worst[0], worst[1]);
        if (radii[k] == 0) {
            int exact = 1;
            for (size_t i = 0; i < px; i++)
                exact &= hfc_split_low(alone)[i] == 0.0f && hfc_split_high(alone)[i] == images[i];
            check(exact, "split r=0: low is exactly zero, high exactly x");
        }
        hfc_splitter_free(alone);
    }
    hfc_splitter *small;
    hfc_mask four = {HFC_MASK_DISC, 4, 0}, eight = {HFC_MASK_DISC, 8, 0};
    if (!hfc_splitter_new(&small, n, 3, 32, 32, &four, 1, &err)) {
        check(hfc_split_apply(small, &eight, &err) == HFC_ERR_USAGE,
              "a mask past the splitter's largest frequency is refused: %s", err.reason);
        hfc_splitter_free(small);
    }
    hfc_splitter_free(sweep);

    /* |fftshift(fft2(x))| of image 0 against a direct DFT in double. */
    float mag[32 * 32];
    check(hfc_spectrum_magnitude(images, 3, 32, 32, mag, &err) == HFC_OK, "spectrum of image 0");
    double worst = 0, top = 0;
    for (int i = 0; i < 32; i++)
        for (int j = 0; j < 32; j++) {
            int fy = i - 16, fx = j - 16;
            double sum = 0;
            for (int ch = 0; ch < 3; ch++) {
                double re = 0, im = 0;
                for (int y = 0; y < 32; y++)
                    for (int x = 0; x < 32; x++) {
                        double a = -2 * 3.14159265358979323846 * (fy * y + fx * x) / 32.0;
                        double v = images[ch * 1024 + y * 32 + x];
                        re += v * cos(a);
                        im += v * sin(a);
                    }
                sum += hypot(re, im);
            }
            worst = fmax(worst, fabs(mag[i * 32 + j] - sum / 3));
            top = fmax(top, sum / 3);
        }
    check(worst <= 1e-5 * top, "spectrum magnitude vs a direct DFT: max error %.2e of max %.3g",
          worst, top);
    hfc_mask half = {HFC_MASK_DISC, 0.5, 0}, zero = {HFC_MASK_DISC, 0, 0};
    int mask_ok = !hfc_mask_weight(&four, 0, 4) && hfc_mask_weight(&four, 0, 3) &&
                  hfc_mask_weight(&half, 0, 0) && !hfc_mask_weight(&zero, 0, 0);
    check(mask_ok, "mask: strict disc around (16,16)");
    if (argc > 2)
        test_masks(argv[2]);

    free(images);
    free(ref);
    free(r.raw);
    return test_failures != 0;
}
