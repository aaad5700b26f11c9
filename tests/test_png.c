/* test_png.c - hfc_grid_predict + hfc_pictures end to end: draw every picture for a model and
 * a CIFAR file, read each PNG back with libpng and check its size and known
 * pixels (image tiles, correct/wrong borders, the spectrum's DC cell and
 * mask edge, kernel colours, plot points), using src/report/png.h's layout.
 * usage: test_png MODEL CIFAR OUTDIR */
#include <math.h>
#include <png.h>

#include "report/png.h"
#include "test_util.h"

typedef struct {
    int w, h;
    uint8_t *rgb;
} picture;

static picture read_png(const char *path)
{
    picture p = {0};
    png_image im;
    memset(&im, 0, sizeof im);
    im.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&im, path)) {
        check(0, "%s: libpng cannot read it: %s", path, im.message);
        return p;
    }
    im.format = PNG_FORMAT_RGB;
    p.rgb = malloc(PNG_IMAGE_SIZE(im));
    if (!p.rgb || !png_image_finish_read(&im, NULL, p.rgb, 0, NULL)) {
        check(0, "%s: libpng cannot decode it: %s", path, im.message);
        free(p.rgb);
        p.rgb = NULL;
        return p;
    }
    p.w = (int)im.width;
    p.h = (int)im.height;
    return p;
}

static hfc_rgb at(const picture *p, int x, int y)
{
    const uint8_t *q = p->rgb + ((size_t)y * p->w + x) * 3;
    return (hfc_rgb){q[0], q[1], q[2]};
}

static int same(hfc_rgb a, hfc_rgb b) { return a.r == b.r && a.g == b.g && a.b == b.b; }

static uint8_t clip_byte(double v) { return v <= 0 ? 0 : v >= 255 ? 255 : (uint8_t)lround(v); }

static int argmax(const float *v, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        best = v[i] > v[best] ? i : best;
    return best;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        printf("FAIL: usage: test_png MODEL CIFAR OUTDIR\n");
        return 1;
    }
    const char *dir = argv[3];
    hfc_error err;
    hfc_model m;
    hfc_dataset ds;
    hfc_engine *e;
    if (hfc_model_load(&m, argv[1], &err) || hfc_dataset_load(&ds, argv[2], HFC_CIFAR10, HFC_SET_TEST, 0, &err) ||
        hfc_engine_new(&e, &m, &(hfc_engine_options){.threads = 2}, &err)) {
        printf("FAIL: setup: %s: %s\n", err.path, err.reason);
        return 1;
    }
    const hfc_mask radii[2] = {{HFC_MASK_DISC, 4, 0}, {HFC_MASK_DISC, 30, 0}};
    const double radius_values[2] = {4, 30};
    hfc_tally tallies[2];
    const hfc_model *models[1] = {&m};
    hfc_grid_data grid;
    hfc_status st = hfc_evaluate(&e, models, 1, radii, 2, &ds, 64, NULL, NULL, tallies, &err);
    if (!st)
        st = hfc_grid_predict(&e, models, 1, radii, 2, &ds, NULL, 0, &grid, &err);
    if (!st)
        st = hfc_pictures(dir, models, 1, radii, 2, &grid, tallies, &err);
    check(st == HFC_OK, "hfc_pictures wrote %s (%s)", dir, st ? err.reason : "ok");
    if (st)
        return 1;

    /* The images the grid shows by default: the first of each class. */
    size_t pick[HFC_CIFAR_CLASSES];
    int k = 0;
    for (int cls = 0; cls < HFC_CIFAR_CLASSES; cls++)
        for (size_t i = 0; i < ds.n; i++)
            if (ds.labels[i] == cls) {
                pick[k++] = i;
                break;
            }
    const size_t P = HFC_CIFAR_PIXELS;
    float *x = malloc(k * P * sizeof *x), logits[HFC_CIFAR_CLASSES];
    for (int i = 0; i < k; i++)
        for (size_t t = 0; t < P; t++)
            x[i * P + t] = ds.pixels[pick[i] * P + t];
    hfc_splitter *s;
    const hfc_mask four = {HFC_MASK_DISC, 4, 0};
    if (hfc_splitter_new(&s, (size_t)k, 3, 32, 32, &four, 1, &err))
        return 1;
    hfc_split_forward(s, x, (size_t)k);
    if (hfc_split_apply(s, &four, &err))
        return 1;

    char path[1200];
    const char *stem_end = strrchr(argv[1], '/');
    char stem[256];
    snprintf(stem, sizeof stem, "%s", stem_end ? stem_end + 1 : argv[1]);
    if (strlen(stem) > 4 && !strcmp(stem + strlen(stem) - 4, ".bin"))
        stem[strlen(stem) - 4] = 0;

    /* grid at r = 4 */
    snprintf(path, sizeof path, "%s/%s-r4-grid.png", dir, stem);
    picture g = read_png(path);
    if (g.rgb) {
        check(g.w == grid_width(GRID_TILE) && g.h == grid_height(GRID_TILE, k), "grid: %dx%d for %d images", g.w, g.h, k);
        int tiles_ok = 1, borders_ok = 1;
        for (int r = 0; r < k; r++) {
            const float *ver[3] = {x + r * P, hfc_split_low(s) + r * P, hfc_split_high(s) + r * P};
            float hs = 1;
            for (size_t t = 0; t < P; t++)
                hs = fabsf(ver[2][t]) > hs ? fabsf(ver[2][t]) : hs;
            for (int col = 0; col < 3; col++) {
                int x0, y0;
                grid_tile_origin(GRID_TILE, r, col, &x0, &y0);
                for (int probe = 0; probe < 5; probe++) {
                    int i = (probe * 7 + r) % 32, j = (probe * 13 + 3 * col) % 32;
                    uint8_t want[3];
                    for (int ch = 0; ch < 3; ch++) {
                        float v = ver[col][ch * 1024 + i * 32 + j];
                        want[ch] = col == 0 ? (uint8_t)v : col == 1 ? clip_byte(v) : grid_high_pixel(v, hs);
                    }
                    hfc_rgb got = at(&g, x0 + j * grid_zoom(32, 32) + 1, y0 + i * grid_zoom(32, 32) + 2);
                    tiles_ok &= got.r == want[0] && got.g == want[1] && got.b == want[2];
                }
                hfc_engine_forward(e, ver[col], 1, logits);
                int ok = argmax(logits, HFC_CIFAR_CLASSES) == ds.labels[pick[r]];
                hfc_rgb border = at(&g, x0 - 1, y0 + 10);
                borders_ok &= ok ? border.g == 160 && border.r == 0 : border.r == 220 && border.g == 30;
            }
        }
        check(tiles_ok, "grid: original, low (clipped) and high (stretched) tiles hold the split's pixels");
        check(borders_ok, "grid: each border is green exactly when the model is right");
        free(g.rgb);
    }

    /* spectrum at r = 4: the DC cell is the brightest, the mask edge is drawn */
    snprintf(path, sizeof path, "%s/spectrum-r4.png", dir);
    picture sp = read_png(path);
    if (sp.rgb) {
        int x0, y0, Z = spectrum_zoom(32, 32);
        spectrum_origin(&x0, &y0);
        check(sp.w >= x0 + 32 * Z && sp.h >= y0 + 32 * Z, "spectrum: %dx%d holds 32x32 cells of %d", sp.w, sp.h, Z);
        check(same(at(&sp, x0 + 16 * Z + Z / 2, y0 + 16 * Z + Z / 2), spectrum_colour(1.0)),
              "spectrum: the DC cell (16,16) has the top colour");
        /* (16,19) is inside r=4 (distance 3), (16,20) is not (distance 4). */
        check(same(at(&sp, x0 + 19 * Z + Z - 1, y0 + 16 * Z + Z / 2), SPECTRUM_EDGE) &&
                  !same(at(&sp, x0 + 20 * Z + Z / 2, y0 + 16 * Z + Z / 2), SPECTRUM_EDGE),
              "spectrum: the mask edge runs between distance 3 and 4 at r=4");
        free(sp.rgb);
    }

    /* kernels: colour of every weight of the first conv */
    snprintf(path, sizeof path, "%s/%s-kernels.png", dir, stem);
    picture kp = read_png(path);
    if (kp.rgb) {
        const hfc_node *conv = NULL;
        for (int i = 0; i < m.n_nodes && !conv; i++)
            conv = m.nodes[i].op == HFC_OP_CONV2D ? &m.nodes[i] : NULL;
        int good = conv && m.nodes[conv->in[0]].out.c == 3, n = 0;
        for (int kk = 0; good && kk < conv->out.c; kk++) {
            const float *w = conv->weight + (size_t)kk * 3 * conv->kh * conv->kw;
            float mx = 0;
            for (int t = 0; t < 3 * conv->kh * conv->kw; t++)
                mx = fabsf(w[t]) > mx ? fabsf(w[t]) : mx;
            int x0, y0, zoom;
            kernel_origin(kk, conv->kh, conv->kw, &x0, &y0, &zoom);
            for (int i = 0; i < conv->kh; i++)
                for (int j = 0; j < conv->kw; j++, n++) {
                    hfc_rgb got = at(&kp, x0 + j * zoom + zoom / 2, y0 + i * zoom + zoom / 2);
                    const int hw = conv->kh * conv->kw;
                    good &= got.r == clip_byte(128 + 127 * w[i * conv->kw + j] / mx) &&
                            got.g == clip_byte(128 + 127 * w[hw + i * conv->kw + j] / mx) &&
                            got.b == clip_byte(128 + 127 * w[2 * hw + i * conv->kw + j] / mx);
                }
        }
        check(good, "kernels: %d weight cells have the colour 128 + 127*w/max|w|", n);
        free(kp.rgb);
    }

    /* plot: axes, the original's flat line, the low marker at r = 30 */
    snprintf(path, sizeof path, "%s/accuracy-vs-radius.png", dir);
    picture pl = read_png(path);
    if (pl.rgb) {
        double xm = plot_x_max(radius_values, 2);
        int px, py;
        check(pl.w > PLOT_LEFT + PLOT_W && pl.h > PLOT_TOP + PLOT_H && xm == 32,
              "plot: %dx%d, x axis to %g", pl.w, pl.h, xm);
        check(same(at(&pl, 1, 1), (hfc_rgb){255, 255, 255}) &&
                  same(at(&pl, PLOT_LEFT, PLOT_TOP + PLOT_H), (hfc_rgb){30, 30, 30}),
              "plot: white background, axes meet at (%d, %d)", PLOT_LEFT, PLOT_TOP + PLOT_H);
        plot_point(xm, 0, (double)tallies[0].correct[HFC_ORIGINAL] / ds.n, &px, &py);
        int flat = same(at(&pl, px + 2, py), PLOT_COLOURS[0]);
        plot_point(xm, 30, (double)tallies[1].correct[HFC_LOW] / ds.n, &px, &py);
        check(flat && same(at(&pl, px, py), PLOT_COLOURS[0]),
              "plot: original accuracy line and low-frequency point at r=30 in the model's colour");
        free(pl.rgb);
    }

    /* a path that is a file, not a directory */
    snprintf(path, sizeof path, "%s/accuracy-vs-radius.png", dir);
    st = hfc_pictures(path, models, 1, radii, 2, &grid, tallies, &err);
    check(st == HFC_ERR_IO && strstr(err.reason, "not a directory"),
          "an output path that is a file: %s", err.reason);
    size_t past = ds.n;
    hfc_grid_data none;
    st = hfc_grid_predict(&e, models, 1, radii, 2, &ds, &past, 1, &none, &err);
    check(st == HFC_ERR_USAGE, "an image index past the end: %s", err.reason);
    hfc_grid_free(&grid);

    hfc_splitter_free(s);
    free(x);
    hfc_engine_free(e);
    hfc_dataset_free(&ds);
    hfc_model_free(&m);
    return test_failures != 0;
}
