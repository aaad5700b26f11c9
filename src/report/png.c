/* src/report/png.c - the paper's pictures, drawn with src/report/canvas.c:
 *   MODEL-rR-grid.png    Figure 1: original | low | high per image, with the
 *                        model's prediction, confidence and correctness
 *   spectrum-rR.png      log-magnitude spectrum of one image, mask edge drawn
 *   MODEL-kernels.png    Figure 7: the first convolution's kernels
 *   accuracy-vs-radius.png  every model's three accuracies against radius
 * Layout constants live in src/report/png.h (the tests use them). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "report/png.h"

const hfc_rgb WHITE = {255, 255, 255}, INK = {30, 30, 30}, GRID_LINE = {225, 225, 225};
static const hfc_rgb CORRECT = {0, 160, 60}, WRONG = {220, 30, 30};
const hfc_rgb SPECTRUM_EDGE = {0, 255, 255};
const hfc_rgb PLOT_COLOURS[10] = {{31, 119, 180}, {255, 127, 14}, {44, 160, 44},  {214, 39, 40},
                                  {148, 103, 189}, {140, 86, 75}, {227, 119, 194}, {127, 127, 127},
                                  {188, 189, 34},  {23, 190, 207}};

static uint8_t clip_byte(double v)
{
    return v <= 0 ? 0 : v >= 255 ? 255 : (uint8_t)lround(v);
}

/* Draw a (C, H, W) planar image with top-left (x, y), each pixel zoom x
 * zoom: one channel as grey, else the first three as R, G, B. */
static void draw_image(hfc_canvas *c, int x, int y, int zoom, const uint8_t *planes, int C, int H,
                       int W)
{
    const size_t plane = (size_t)H * W;
    const uint8_t *g = planes + (C >= 3 ? plane : 0), *b = planes + (C >= 3 ? 2 * plane : 0);
    for (int i = 0; i < H; i++)
        for (int j = 0; j < W; j++) {
            size_t k = (size_t)i * W + j;
            hfc_rgb p = {planes[k], g[k], b[k]};
            canvas_rect(c, x + j * zoom, y + i * zoom, zoom, zoom, p);
        }
}

int grid_zoom(int height, int width)
{
    int side = height > width ? height : width;
    return side < GRID_TILE ? GRID_TILE / side : 1;
}

/* ------------------------------------------------------------------ grid */

#define GRID_LABEL_W 84
#define GRID_CELL(tile) ((tile) + 2 * GRID_BORDER)
#define GRID_COL_GAP 12
#define GRID_CAPTION 14
#define GRID_ROW_PITCH(tile) (GRID_CELL(tile) + GRID_CAPTION + 8)
#define GRID_TOP (MARGIN + 56)

void grid_tile_origin(int tile, int row, int col, int *x, int *y)
{
    *x = MARGIN + GRID_LABEL_W + col * (GRID_CELL(tile) + GRID_COL_GAP) + GRID_BORDER;
    *y = GRID_TOP + row * GRID_ROW_PITCH(tile) + GRID_BORDER;
}

int grid_width(int tile)
{
    return MARGIN + GRID_LABEL_W + 3 * GRID_CELL(tile) + 2 * GRID_COL_GAP + MARGIN;
}
int grid_height(int tile, int rows) { return GRID_TOP + rows * GRID_ROW_PITCH(tile) + MARGIN; }

uint8_t grid_high_pixel(float h, float s) { return clip_byte(128.0 + 127.0 * h / s); }

typedef struct {
    size_t index;                 /* in the test set */
    int label;
    int pred[HFC_VERSIONS];
    float confidence[HFC_VERSIONS];
} grid_row;

static const char *class_name(const hfc_model *m, int k)
{
    return k >= 0 && k < m->n_classes ? m->classes[k] : "?";
}

/* File-name part of a mask: r4 (the paper's disc), square-r4, gaussian-r4, band-r4-8. */
static void mask_tag(const hfc_mask *m, char *buf, size_t cap)
{
    if (m->kind == HFC_MASK_DISC)
        snprintf(buf, cap, "r%g", m->r);
    else if (m->kind == HFC_MASK_BAND)
        snprintf(buf, cap, "band-r%g-%g", m->r, m->outer);
    else
        snprintf(buf, cap, "%s-r%g", hfc_mask_kind_name(m->kind), m->r);
}

static hfc_status draw_grid(const char *path, const hfc_model *m, const hfc_mask *mask,
                            const grid_row *rows, const hfc_grid_data *g, const float *low,
                            const float *high, hfc_error *err)
{
    const int n = g->n_images, C = g->channels, H = g->height, W = g->width;
    const int zoom = grid_zoom(H, W), tile = (H > W ? H : W) * zoom;
    const size_t P = (size_t)C * H * W;
    uint8_t *shown = malloc(P);
    hfc_canvas c;
    hfc_status st = shown ? canvas_new(&c, grid_width(tile), grid_height(tile, n), WHITE, err)
                          : hfc_fail(err, HFC_ERR_NOMEM, NULL, "out of memory for a grid");
    if (st) {
        free(shown);
        return st;
    }
    const char *base = strrchr(m->path, '/');
    char line[256], label[64], rule[96];
    hfc_mask_label(mask, label, sizeof label);
    hfc_mask_describe(mask, rule, sizeof rule);
    snprintf(line, sizeof line, "%.150s  r = %s (%s)", base ? base + 1 : m->path, label,
             hfc_mask_kind_name(mask->kind));
    canvas_text(&c, MARGIN, MARGIN, 2, INK, line);
    canvas_text(&c, MARGIN, MARGIN + 20, 1, INK,
                "under each image: prediction, softmax confidence; border: green = correct,");
    canvas_text(&c, MARGIN, MARGIN + 30, 1, INK,
                "red = wrong. low clipped to 0..255; high shown as 128 + 127*h/max|h|");
    char heads[3][128];
    snprintf(heads[0], sizeof heads[0], "original");
    snprintf(heads[1], sizeof heads[1], "low (%s)", rule);
    snprintf(heads[2], sizeof heads[2], "high (the rest)");
    for (int col = 0; col < 3; col++) {
        int x, y;
        grid_tile_origin(tile, 0, col, &x, &y);
        canvas_text(&c, x, GRID_TOP - 12, 1, INK, heads[col]);
    }
    for (int r = 0; r < n; r++) {
        int x, y;
        grid_tile_origin(tile, r, 0, &x, &y);
        snprintf(line, sizeof line, "#%zu", rows[r].index);
        canvas_text(&c, MARGIN, y + 4, 1, INK, line);
        canvas_text(&c, MARGIN, y + 16, 1, INK, class_name(m, rows[r].label));
        for (int col = 0; col < 3; col++) {
            const float *src = col == 1 ? low + r * P : high + r * P;
            if (col == 0) {
                memcpy(shown, g->pixels + r * P, P);
            } else if (col == 1) {
                for (size_t k = 0; k < P; k++)
                    shown[k] = clip_byte(src[k]);
            } else {
                float s = 1;
                for (size_t k = 0; k < P; k++)
                    s = fabsf(src[k]) > s ? fabsf(src[k]) : s;
                for (size_t k = 0; k < P; k++)
                    shown[k] = grid_high_pixel(src[k], s);
            }
            grid_tile_origin(tile, r, col, &x, &y);
            int ok = rows[r].pred[col] == rows[r].label;
            canvas_frame(&c, x - GRID_BORDER, y - GRID_BORDER, GRID_CELL(tile), GRID_CELL(tile),
                         GRID_BORDER, ok ? CORRECT : WRONG);
            draw_image(&c, x, y, zoom, shown, C, H, W);
            snprintf(line, sizeof line, "%.15s %.0f%%", class_name(m, rows[r].pred[col]),
                     100.0 * rows[r].confidence[col]);
            canvas_text(&c, x - GRID_BORDER, y + tile + GRID_BORDER + 3, 1,
                        ok ? CORRECT : WRONG, line);
        }
    }
    st = canvas_write_png(&c, path, err);
    canvas_free(&c);
    free(shown);
    return st;
}

/* -------------------------------------------------------------- spectrum */

void spectrum_origin(int *x, int *y)
{
    *x = MARGIN;
    *y = MARGIN + 44;
}

hfc_rgb spectrum_colour(double t)
{
    /* A few stops of an "inferno"-like ramp, interpolated linearly. */
    static const hfc_rgb stops[] = {{0, 0, 4}, {87, 16, 110}, {188, 55, 84}, {249, 142, 9},
                                    {252, 255, 164}};
    const int last = (int)(sizeof stops / sizeof stops[0]) - 1;
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    int k = (int)(t * last);
    if (k == last)
        return stops[last];
    double f = t * last - k;
    hfc_rgb a = stops[k], b = stops[k + 1];
    return (hfc_rgb){clip_byte(a.r + f * (b.r - a.r)), clip_byte(a.g + f * (b.g - a.g)),
                     clip_byte(a.b + f * (b.b - a.b))};
}

int spectrum_zoom(int height, int width)
{
    int side = height > width ? height : width;
    return side < SPECTRUM_SIDE ? SPECTRUM_SIDE / side : 1;
}

/* The mask's edge on an N x M grid of Z-pixel cells at (x0, y0): a cell
 * border between a cell inside (weight >= 0.5) and one outside (or the
 * picture's edge), two pixels wide on the inside cell. */
static void draw_mask_edge(hfc_canvas *c, const double *w, int N, int M, int x0, int y0, int Z)
{
#define IN(i, j) (w[(i) * M + (j)] >= 0.5)
    for (int i = 0; i < N; i++)
        for (int j = 0; j < M; j++) {
            if (!IN(i, j))
                continue;
            int x = x0 + j * Z, y = y0 + i * Z;
            if (i == 0 || !IN(i - 1, j))
                canvas_rect(c, x, y, Z, 2, SPECTRUM_EDGE);
            if (i == N - 1 || !IN(i + 1, j))
                canvas_rect(c, x, y + Z - 2, Z, 2, SPECTRUM_EDGE);
            if (j == 0 || !IN(i, j - 1))
                canvas_rect(c, x, y, 2, Z, SPECTRUM_EDGE);
            if (j == M - 1 || !IN(i, j + 1))
                canvas_rect(c, x + Z - 2, y, 2, Z, SPECTRUM_EDGE);
        }
#undef IN
}

static hfc_status draw_spectrum(const char *path, const hfc_grid_data *g, const char *label,
                                const hfc_mask *mask, hfc_error *err)
{
    const int N = g->height, M = g->width, Z = spectrum_zoom(N, M);
    float *mag = malloc((size_t)N * M * sizeof *mag);
    double *w = malloc((size_t)N * M * sizeof *w);
    hfc_status st = mag && w ? hfc_spectrum_magnitude(g->original, g->channels, N, M, mag, err)
                             : hfc_fail(err, HFC_ERR_NOMEM, NULL, "out of memory for a spectrum");
    if (st) {
        free(mag);
        free(w);
        return st;
    }
    double lo = INFINITY, hi = -INFINITY;
    for (int k = 0; k < N * M; k++) {
        double v = log1p(mag[k]);
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
    }
    hfc_canvas c;
    int x0, y0;
    spectrum_origin(&x0, &y0);
    if ((st = canvas_new(&c, x0 + M * Z + 80, y0 + N * Z + 30, WHITE, err))) {
        free(mag);
        free(w);
        return st;
    }
    char line[160];
    snprintf(line, sizeof line, "spectrum, image #%zu (%s)", g->index[0], label);
    canvas_text(&c, MARGIN, MARGIN, 1, INK, line);
    canvas_text(&c, MARGIN, MARGIN + 12, 1, INK,
                g->channels == 3 ? "log(1 + |fftshift(fft2(x))|), mean over R,G,B"
                                 : "log(1 + |fftshift(fft2(x))|), mean over the channels");
    char rule[96];
    hfc_mask_describe(mask, rule, sizeof rule);
    int soft = mask->kind == HFC_MASK_GAUSSIAN;
    snprintf(line, sizeof line, soft ? "cyan: weight 0.5 of the mask (%s)"
                                     : "cyan: edge of the mask, %s", rule);
    canvas_text(&c, MARGIN, MARGIN + 24, 1, INK, line);
    /* The weights as hfc_mask_weight gives them: cell (i, j) is frequency
     * (i - N/2, j - M/2), (i - 16, j - 16) at 32 x 32. */
    double total = 0;
    for (int i = 0; i < N; i++)
        for (int j = 0; j < M; j++) {
            double wij = w[i * M + j] = hfc_mask_weight(mask, i - N / 2, j - M / 2);
            total += wij;
            double t = hi > lo ? (log1p(mag[i * M + j]) - lo) / (hi - lo) : 0;
            hfc_rgb col = spectrum_colour(t);
            if (soft) { /* fade towards white by 1 - weight */
                double f = 0.7 * (1 - wij);
                col = (hfc_rgb){clip_byte(col.r + f * (255 - col.r)),
                                clip_byte(col.g + f * (255 - col.g)),
                                clip_byte(col.b + f * (255 - col.b))};
            }
            canvas_rect(&c, x0 + j * Z, y0 + i * Z, Z, Z, col);
        }
    draw_mask_edge(&c, w, N, M, x0, y0, Z);
    if (soft)
        snprintf(line, sizeof line, "paler = less weight; weights sum to %.1f of %d", total, N * M);
    else
        snprintf(line, sizeof line, "%.0f of %d frequencies in the low part", total, N * M);
    canvas_text(&c, MARGIN, y0 + N * Z + 10, 1, INK, line);
    st = canvas_write_png(&c, path, err);
    canvas_free(&c);
    free(mag);
    free(w);
    return st;
}

/* --------------------------------------------------------------- kernels */

#define KERNELS_PER_ROW 8
#define KERNEL_GAP 6

void kernel_origin(int k, int kh, int kw, int *x, int *y, int *zoom)
{
    int side = kh > kw ? kh : kw;
    *zoom = side >= 12 ? 4 : 48 / side;
    *x = MARGIN + (k % KERNELS_PER_ROW) * (kw * *zoom + KERNEL_GAP);
    *y = MARGIN + 40 + (k / KERNELS_PER_ROW) * (kh * *zoom + KERNEL_GAP);
}

static hfc_status draw_kernels(const char *path, const hfc_model *m, hfc_error *err)
{
    const hfc_kernels conv = hfc_model_first_conv(m);
    if (!conv.weights)
        return HFC_OK; /* nothing to draw */
    int cout = conv.cout, cin = conv.cin, kh = conv.kh, kw = conv.kw;
    int x, y, zoom;
    kernel_origin(cout - 1, kh, kw, &x, &y, &zoom);
    int w = MARGIN + KERNELS_PER_ROW * (kw * zoom + KERNEL_GAP) + MARGIN;
    hfc_canvas c;
    hfc_status st = canvas_new(&c, w < 420 ? 420 : w, y + kh * zoom + MARGIN, WHITE, err);
    if (st)
        return st;
    const char *base = strrchr(m->path, '/');
    char line[256];
    snprintf(line, sizeof line, "%.120s: %.60s, %d kernels %dx%dx%d", base ? base + 1 : m->path,
             conv.name, cout, cin, kh, kw);
    canvas_text(&c, MARGIN, MARGIN, 1, INK, line);
    canvas_text(&c, MARGIN, MARGIN + 12, 1, INK,
                cin == 3 ? "input channels as R,G,B; each kernel: 128 + 127*w/max|w|"
                         : "mean over input channels, grey; each kernel: 128 + 127*w/max|w|");
    canvas_text(&c, MARGIN, MARGIN + 24, 1, INK, "(weights as stored, before BatchNorm)");
    size_t per_kernel = (size_t)cin * kh * kw;
    for (int k = 0; k < cout; k++) {
        const float *wk = conv.weights + k * per_kernel;
        float s = 0;
        for (size_t t = 0; t < per_kernel; t++)
            s = fabsf(wk[t]) > s ? fabsf(wk[t]) : s;
        s = s > 0 ? s : 1;
        kernel_origin(k, kh, kw, &x, &y, &zoom);
        for (int i = 0; i < kh; i++)
            for (int j = 0; j < kw; j++) {
                double v[3] = {0, 0, 0};
                for (int ch = 0; ch < cin; ch++)
                    v[cin == 3 ? ch : 0] += wk[(ch * kh + i) * kw + j] / (cin == 3 ? 1 : cin);
                if (cin != 3)
                    v[1] = v[2] = v[0];
                hfc_rgb p = {clip_byte(128 + 127 * v[0] / s), clip_byte(128 + 127 * v[1] / s),
                             clip_byte(128 + 127 * v[2] / s)};
                canvas_rect(&c, x + j * zoom, y + i * zoom, zoom, zoom, p);
            }
    }
    st = canvas_write_png(&c, path, err);
    canvas_free(&c);
    return st;
}

/* ---------------------------------------------------------------- driver */

hfc_status hfc_png_dir(const char *dir, hfc_error *err)
{
    struct stat sb;
    if (stat(dir, &sb) == 0)
        return S_ISDIR(sb.st_mode) ? HFC_OK : hfc_fail(err, HFC_ERR_IO, dir, "not a directory");
    if (mkdir(dir, 0777) != 0)
        return hfc_fail(err, HFC_ERR_IO, dir, "cannot make the directory: %s", strerror(errno));
    return HFC_OK;
}

/* The model file's name without its directory and ".bin". */
static void model_stem(const hfc_model *m, char out[256])
{
    const char *base = strrchr(m->path, '/');
    base = base ? base + 1 : m->path;
    int len = (int)strlen(base);
    if (len > 4 && !strcmp(base + len - 4, ".bin"))
        len -= 4;
    snprintf(out, 256, "%.*s", len < 200 ? len : 200, base);
}

/* DIR/STEM-SUFFIX for model j; a stem that an earlier model already has
 * gets "-J" appended (J counted from 1), so no picture overwrites another. */
hfc_status model_file(char *out, size_t cap, const char *dir, const hfc_model *const *models, int j,
                      const char *suffix, hfc_error *err)
{
    char stem[256], other[256];
    int dup = 0;
    model_stem(models[j], stem);
    for (int i = 0; i < j; i++) {
        model_stem(models[i], other);
        dup |= !strcmp(stem, other);
    }
    int n = dup ? snprintf(out, cap, "%s/%s-%d-%s", dir, stem, j + 1, suffix)
                : snprintf(out, cap, "%s/%s-%s", dir, stem, suffix);
    return n < (int)cap ? HFC_OK : hfc_fail(err, HFC_ERR_IO, dir, "path too long");
}

/* The grid rows of model j under mask r. */
static void grid_rows(const hfc_grid_data *g, int j, int r, grid_row *rows)
{
    for (int i = 0; i < g->n_images; i++) {
        size_t at = (((size_t)j * g->n_masks + r) * g->n_images + i) * HFC_VERSIONS;
        rows[i].index = g->index[i];
        rows[i].label = g->label[i];
        for (int v = 0; v < HFC_VERSIONS; v++) {
            rows[i].pred[v] = g->pred[at + v];
            rows[i].confidence[v] = g->confidence[at + v];
        }
    }
}

hfc_status hfc_pictures(const char *dir, const hfc_model *const *models, int n_models,
                        const hfc_mask *masks, int n_radii, const hfc_grid_data *g,
                        const hfc_tally *tallies, hfc_error *err)
{
    hfc_status st = hfc_png_dir(dir, err);
    char path[1400];
    for (int j = 0; !st && j < n_models; j++)
        if (!(st = model_file(path, sizeof path, dir, models, j, "kernels.png", err)))
            st = draw_kernels(path, models[j], err);
    const size_t per_mask = (size_t)g->n_images * g->channels * g->height * g->width;
    grid_row rows[HFC_MAX_PNG_IMAGES];
    for (int r = 0; !st && r < n_radii; r++) {
        char suffix[96], tag[64];
        mask_tag(&masks[r], tag, sizeof tag);
        snprintf(path, sizeof path, "%s/spectrum-%s.png", dir, tag);
        if ((st = draw_spectrum(path, g, class_name(models[0], g->label[0]), &masks[r], err)))
            break;
        for (int j = 0; !st && j < n_models; j++) {
            grid_rows(g, j, r, rows);
            snprintf(suffix, sizeof suffix, "%s-grid.png", tag);
            if (!(st = model_file(path, sizeof path, dir, models, j, suffix, err)))
                st = draw_grid(path, models[j], &masks[r], rows, g, g->low + r * per_mask,
                               g->high + r * per_mask, err);
        }
    }
    if (!st && n_radii >= 2) {
        snprintf(path, sizeof path, "%s/accuracy-vs-radius.png", dir);
        st = draw_plot(path, models, n_models, masks, n_radii, tallies, err);
    }
    int with_epoch = 0;
    for (int j = 0; j < n_models; j++)
        with_epoch += models[j]->epoch >= 0;
    if (!st && with_epoch >= 2) {
        snprintf(path, sizeof path, "%s/accuracy-vs-epoch.png", dir);
        st = draw_epoch_plot(path, models, n_models, masks, n_radii, tallies, err);
    }
    return st;
}
