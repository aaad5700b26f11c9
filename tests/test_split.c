/* test_split.c - hfc_split_* against the paper's numpy split (split.ref),
 * for radii from 0 (low all zero) to past 22.63 (high all zero). */
#include <math.h>

#include "test_util.h"

int main(int argc, char **argv)
{
    const char *path = argc > 1 ? argv[1] : "build/tests/ref/split.ref";
    ref_file r = read_ref(path, 0);
    size_t n = r.a, nr = r.b, px = n * HFC_CIFAR_PIXELS;
    size_t need = nr * 8 + px * 4 + nr * 2 * px * 8;
    if (r.len - 8 != need) {
        printf("FAIL: %s has the wrong size\n", path);
        return 1;
    }
    const uint8_t *p = r.body;
    double radii[64];
    memcpy(radii, p, nr * 8);
    p += nr * 8;
    float *images = malloc(px * sizeof *images);
    double *ref = malloc(px * sizeof *ref);
    memcpy(images, p, px * 4);
    p += px * 4;

    hfc_splitter *s;
    hfc_error err;
    if (hfc_splitter_new(&s, n + 1, &err)) {  /* capacity > n: padding images too */
        printf("FAIL: splitter: %s\n", err.reason);
        return 1;
    }
    hfc_split_forward(s, images, n);
    for (size_t k = 0; k < nr; k++) {
        hfc_split_radius(s, radii[k]);
        const float *low = hfc_split_low(s), *high = hfc_split_high(s);
        double worst[2] = {0, 0};
        for (int part = 0; part < 2; part++) {
            memcpy(ref, p, px * 8);
            p += px * 8;
            const float *got = part ? high : low;
            for (size_t i = 0; i < px; i++) {
                double d = fabs(got[i] - ref[i]);
                if (d > worst[part])
                    worst[part] = d;
            }
        }
        check(worst[0] < 1e-3 && worst[1] < 1e-3,
              "split r=%g vs numpy: max |low err| %.2e, max |high err| %.2e", radii[k], worst[0],
              worst[1]);
        if (radii[k] == 0) {
            int zero = 1;
            for (size_t i = 0; i < px; i++)
                zero &= low[i] == 0.0f;
            check(zero, "split r=0: low is exactly zero");
        }
    }
    /* |fftshift(fft2(x))| of image 0 against a direct DFT in double. */
    float mag[32 * 32];
    hfc_split_magnitude(s, 0, mag);
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

    hfc_splitter_free(s);
    free(images);
    free(ref);
    free(r.raw);
    return test_failures != 0;
}
