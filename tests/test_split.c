/* test_split.c - hfc_split_* against the paper's numpy split (split.ref),
 * for radii from 0 (low all zero) to past 22.63 (high all zero): once as a
 * sweep (one forward for the largest radius, every radius from it) and once
 * with a splitter made for each radius alone. */
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
    memcpy(radii, p, nr * 8);
    p += nr * 8;
    for (size_t k = 0; k < nr; k++)
        max_radius = fmax(max_radius, radii[k]);
    float *images = malloc(px * sizeof *images);
    double *ref = malloc(nr * 2 * px * sizeof *ref);
    memcpy(images, p, px * 4);
    p += px * 4;
    memcpy(ref, p, nr * 2 * px * 8);

    hfc_splitter *sweep, *alone;
    hfc_error err;
    if (hfc_splitter_new(&sweep, n + 1, max_radius, &err)) {  /* capacity > n: unused room */
        printf("FAIL: splitter: %s\n", err.reason);
        return 1;
    }
    hfc_split_forward(sweep, images, n);
    for (size_t k = 0; k < nr; k++) {
        const double *want = ref + k * 2 * px;
        double worst[2];
        check(hfc_split_radius(sweep, radii[k], &err) == HFC_OK, "split r=%g from r=%g's forward",
              radii[k], max_radius);
        worst_errors(sweep, want, px, worst);
        check(worst[0] < 1e-3 && worst[1] < 1e-3,
              "sweep r=%g vs numpy: max |low err| %.2e, max |high err| %.2e", radii[k], worst[0],
              worst[1]);
        if (hfc_splitter_new(&alone, n, radii[k], &err)) {
            printf("FAIL: splitter: %s\n", err.reason);
            return 1;
        }
        hfc_split_forward(alone, images, n);
        hfc_split_radius(alone, radii[k], &err);
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
    check(hfc_split_radius(sweep, max_radius + 0.5, &err) == HFC_ERR_USAGE,
          "a radius past the splitter's largest is refused: %s", err.reason);
    hfc_splitter_free(sweep);

    /* |fftshift(fft2(x))| of image 0 against a direct DFT in double. */
    float mag[32 * 32];
    check(hfc_spectrum_magnitude(images, mag, &err) == HFC_OK, "spectrum of image 0");
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
    int mask_ok = !hfc_split_mask(4, 16, 20) && hfc_split_mask(4, 16, 19) &&
                  hfc_split_mask(0.5, 16, 16) && !hfc_split_mask(0, 16, 16);
    check(mask_ok, "mask: strict disc around (16,16)");

    free(images);
    free(ref);
    free(r.raw);
    return test_failures != 0;
}
