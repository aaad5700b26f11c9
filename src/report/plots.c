/* plots.c - the pictures that are plots: accuracy against radius and
 * against epoch (the run's), every subspace's margins (margin), the Fourier
 * heat map (heatmap) and intrinsic dimension against depth (id). Each draws
 * the results it is given. Layout constants: report/png.h. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report/png.h"

/* ------------------------------------------------------------------ plot */

double plot_x_max(const double *radii, int n)
{
    double top = 0;
    for (int i = 0; i < n; i++)
        top = radii[i] > top ? radii[i] : top;
    static const double steps[] = {1, 2, 4, 5, 8, 10, 20, 25, 50, 100, 200, 250, 500, 1000};
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++)
        if (top <= steps[i] * 10)
            return ceil(top / steps[i]) * steps[i] > 0 ? ceil(top / steps[i]) * steps[i] : 1;
    return 1000;
}

static double x_tick_step(double x_max)
{
    static const double steps[] = {1, 2, 4, 5, 8, 10, 20, 25, 50, 100, 200, 250, 500, 1000};
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++)
        if (x_max / steps[i] <= 10)
            return steps[i];
    return 1000;
}

void plot_point(double x_max, double radius, double accuracy, int *x, int *y)
{
    *x = PLOT_LEFT + (int)lround(radius / x_max * PLOT_W);
    *y = PLOT_TOP + PLOT_H - (int)lround(accuracy * PLOT_H);
}

static void marker(hfc_canvas *c, int x, int y, int version, hfc_rgb colour)
{
    if (version == HFC_LOW) { /* filled disc */
        for (int dy = -4; dy <= 4; dy++)
            for (int dx = -4; dx <= 4; dx++)
                if (dx * dx + dy * dy <= 16)
                    canvas_pixel(c, x + dx, y + dy, colour);
    } else if (version == HFC_HIGH) { /* hollow square */
        canvas_frame(c, x - 4, y - 4, 9, 9, 2, colour);
    }
}

/* Title, grid, ticks and labels of a plot of y (0..y_max; accuracy when
 * y_max is 1) against x (0..x_max); points go through plot_point(x, y / y_max). */
static void draw_axes_y(hfc_canvas *c, const char *title, double x_max, const char *xlabel,
                        double y_max, const char *ylabel)
{
    double step = x_tick_step(x_max);
    char line[160];
    canvas_text(c, PLOT_LEFT, MARGIN, 2, INK, title);
    canvas_text(c, MARGIN, PLOT_TOP - 16, 1, INK, ylabel);
    for (int t = 0; t <= 10; t++) { /* y: 0 to y_max by tenths, labels every second */
        int x, y;
        plot_point(x_max, 0, t / 10.0, &x, &y);
        canvas_rect(c, PLOT_LEFT, y, PLOT_W, 1, GRID_LINE);
        canvas_rect(c, PLOT_LEFT - 5, y, 5, 1, INK);
        if (t % 2 == 0) {
            snprintf(line, sizeof line, y_max == 1.0 ? "%.1f" : "%g", t / 10.0 * y_max);
            canvas_text(c, PLOT_LEFT - 8 - canvas_text_width(line, 1), y - 3, 1, INK, line);
        }
    }
    for (double r = 0; r <= x_max + 1e-9; r += step) {
        int x, y;
        plot_point(x_max, r, 0, &x, &y);
        canvas_rect(c, x, PLOT_TOP, 1, PLOT_H, GRID_LINE);
        canvas_rect(c, x, y, 1, 5, INK);
        snprintf(line, sizeof line, "%g", r);
        canvas_text(c, x - canvas_text_width(line, 1) / 2, y + 8, 1, INK, line);
    }
    canvas_text(c, PLOT_LEFT + PLOT_W / 2 - canvas_text_width(xlabel, 1) / 2,
                PLOT_TOP + PLOT_H + 24, 1, INK, xlabel);
    canvas_rect(c, PLOT_LEFT, PLOT_TOP, 1, PLOT_H + 1, INK);          /* y axis */
    canvas_rect(c, PLOT_LEFT, PLOT_TOP + PLOT_H, PLOT_W + 1, 1, INK); /* x axis */
}

static void draw_axes(hfc_canvas *c, const char *title, double x_max, const char *xlabel)
{
    draw_axes_y(c, title, x_max, xlabel, 1.0, "accuracy");
}

/* The key of the markers, below a legend of `rows` entries at (x, PLOT_TOP). */
static void marker_key(hfc_canvas *c, int x, int rows, const char *original)
{
    static const hfc_rgb KEY = {90, 90, 90};
    int ky = PLOT_TOP + 14 * rows + 16;
    canvas_line(c, x, ky + 4, x + 16, ky + 4, 2, 6, KEY);
    canvas_text(c, x + 22, ky, 1, INK, original);
    marker(c, x + 8, ky + 18, HFC_LOW, KEY);
    canvas_text(c, x + 22, ky + 14, 1, INK, "low frequencies");
    marker(c, x + 8, ky + 32, HFC_HIGH, KEY);
    canvas_text(c, x + 22, ky + 28, 1, INK, "high frequencies");
}

hfc_status draw_plot(const char *path, const hfc_model *const *models, int n_models,
                     const hfc_mask *masks, int n_radii, const hfc_tally *tallies, hfc_error *err)
{
    int order[HFC_MAX_RADII];
    double radii[HFC_MAX_RADII];
    for (int i = 0; i < n_radii; i++) { /* radii in increasing order */
        radii[i] = hfc_mask_position(&masks[i]);
        int k = i;
        while (k > 0 && radii[order[k - 1]] > radii[i]) {
            order[k] = order[k - 1];
            k--;
        }
        order[k] = i;
    }
    hfc_canvas c;
    int legend_x = PLOT_LEFT + PLOT_W + 20;
    hfc_status st = canvas_new(&c, legend_x + 200, PLOT_TOP + PLOT_H + 50, WHITE, err);
    if (st)
        return st;
    double x_max = plot_x_max(radii, n_radii);
    char line[160];
    snprintf(line, sizeof line, "accuracy against radius (%zu images)", tallies[0].images);
    char axis[128];
    snprintf(axis, sizeof axis, masks[0].kind == HFC_MASK_BAND ? "band A:B, at (A + B) / 2"
                                : "radius r (low: %s)", hfc_mask_kind_name(masks[0].kind));
    draw_axes(&c, line, x_max, axis);

    for (int j = 0; j < n_models; j++) {
        hfc_rgb colour = PLOT_COLOURS[j % 10];
        const hfc_tally *t = tallies + (size_t)j * n_radii;
        for (int v = 0; v < HFC_VERSIONS; v++) {
            int px = 0, py = 0;
            for (int i = 0; i < n_radii; i++) {
                const hfc_tally *ti = &t[order[i]];
                double acc = ti->images ? (double)ti->correct[v] / ti->images : 0;
                int x, y;
                plot_point(x_max, radii[order[i]], acc, &x, &y);
                if (v == HFC_ORIGINAL && i == 0) /* flat: across the whole axis */
                    canvas_line(&c, PLOT_LEFT, y, PLOT_LEFT + PLOT_W, y, 2, 6, colour);
                if (v != HFC_ORIGINAL && i > 0)
                    canvas_line(&c, px, py, x, y, 2, 0, colour);
                px = x;
                py = y;
            }
            for (int i = 0; i < n_radii && v != HFC_ORIGINAL; i++) {
                const hfc_tally *ti = &t[order[i]];
                int x, y;
                plot_point(x_max, radii[order[i]],
                           ti->images ? (double)ti->correct[v] / ti->images : 0, &x, &y);
                marker(&c, x, y, v, colour);
            }
        }
        const char *base = strrchr(models[j]->path, '/');
        canvas_rect(&c, legend_x, PLOT_TOP + 6 + 14 * j, 16, 3, colour);
        snprintf(line, sizeof line, "%.26s", base ? base + 1 : models[j]->path);
        canvas_text(&c, legend_x + 22, PLOT_TOP + 4 + 14 * j, 1, INK, line);
    }
    marker_key(&c, legend_x, n_models, "original (flat)");
    st = canvas_write_png(&c, path, err);
    canvas_free(&c);
    return st;
}

/* A checkpoint series: every model whose metadata has an epoch, in epoch
 * order; per radius, low and high accuracy against epoch, and the original
 * accuracy (the same for every radius) dashed. */
hfc_status draw_epoch_plot(const char *path, const hfc_model *const *models, int n_models,
                           const hfc_mask *masks, int n_radii, const hfc_tally *tallies,
                           hfc_error *err)
{
    int order[HFC_MAX_MODELS], n = 0;
    double epochs[HFC_MAX_MODELS];
    for (int j = 0; j < n_models; j++) {
        if (models[j]->epoch < 0)
            continue;
        int k = n++;
        while (k > 0 && models[order[k - 1]]->epoch > models[j]->epoch) {
            order[k] = order[k - 1];
            k--;
        }
        order[k] = j;
    }
    for (int k = 0; k < n; k++)
        epochs[k] = models[order[k]]->epoch;
    hfc_canvas c;
    int legend_x = PLOT_LEFT + PLOT_W + 20;
    hfc_status st = canvas_new(&c, legend_x + 200, PLOT_TOP + PLOT_H + 50, WHITE, err);
    if (st)
        return st;
    double x_max = plot_x_max(epochs, n);
    char line[160];
    snprintf(line, sizeof line, "accuracy against epoch (%zu images)", tallies[0].images);
    draw_axes(&c, line, x_max, "epoch (metadata of each checkpoint)");
    static const hfc_rgb ORIGINAL = {60, 60, 60};
    for (int r = 0; r < n_radii; r++) {
        hfc_rgb colour = PLOT_COLOURS[r % 10];
        for (int v = 0; v < HFC_VERSIONS; v++) {
            if (v == HFC_ORIGINAL && r > 0)
                continue;
            int px = 0, py = 0;
            for (int k = 0; k < n; k++) {
                const hfc_tally *t = &tallies[(size_t)order[k] * n_radii + r];
                int x, y;
                plot_point(x_max, epochs[k], t->images ? (double)t->correct[v] / t->images : 0,
                           &x, &y);
                if (k > 0)
                    canvas_line(&c, px, py, x, y, 2, v == HFC_ORIGINAL ? 6 : 0,
                                v == HFC_ORIGINAL ? ORIGINAL : colour);
                if (v != HFC_ORIGINAL && k > 0)
                    marker(&c, px, py, v, colour);
                if (v != HFC_ORIGINAL && k == n - 1)
                    marker(&c, x, y, v, colour);
                px = x;
                py = y;
            }
        }
        canvas_rect(&c, legend_x, PLOT_TOP + 6 + 14 * r, 16, 3, colour);
        char label[64];
        hfc_mask_label(&masks[r], label, sizeof label);
        snprintf(line, sizeof line, "r = %s", label);
        canvas_text(&c, legend_x + 22, PLOT_TOP + 4 + 14 * r, 1, INK, line);
    }
    marker_key(&c, legend_x, n_radii, "original");
    st = canvas_write_png(&c, path, err);
    canvas_free(&c);
    return st;
}

/* ---------------------------------------------------------------- margins */

hfc_status hfc_margin_picture(const char *dir, const hfc_model *const *models, int n_models,
                              const hfc_margin_spec *spec, const float *margins, size_t n,
                              hfc_error *err)
{
    hfc_status st = hfc_png_dir(dir, err);
    if (st)
        return st;
    const int S = hfc_margin_subspaces(spec);
    double top = 0, offsets_max = (S - 1) * spec->stride;
    for (size_t i = 0; i < (size_t)n_models * S * n; i++)
        top = !isnan(margins[i]) && margins[i] > top ? margins[i] : top;
    double y_max = plot_x_max(&top, 1), x_max = offsets_max > 0 ? offsets_max : 1;
    hfc_canvas c;
    int legend_x = PLOT_LEFT + PLOT_W + 20;
    if ((st = canvas_new(&c, legend_x + 200, PLOT_TOP + PLOT_H + 50, WHITE, err)))
        return st;
    char line[160];
    snprintf(line, sizeof line, "margin along DCT subspaces (%zu images)", n);
    draw_axes_y(&c, line, x_max, "subspace offset (K x K DCT atoms, low -> high frequency)", y_max,
                "L2 margin");
    float *sorted = malloc((n ? n : 1) * sizeof *sorted);
    if (!sorted) {
        canvas_free(&c);
        return hfc_fail(err, HFC_ERR_NOMEM, dir, "out of memory");
    }
    for (int j = 0; j < n_models; j++) {
        hfc_rgb colour = PLOT_COLOURS[j % 10];
        hfc_rgb light = {(uint8_t)((colour.r + 2 * 255) / 3), (uint8_t)((colour.g + 2 * 255) / 3),
                         (uint8_t)((colour.b + 2 * 255) / 3)};
        int px = 0, py = 0;
        for (int s = 0; s < S; s++) {
            const float *ms = margins + ((size_t)j * S + s) * n;
            size_t k = 0;
            for (size_t i = 0; i < n; i++) {
                if (isnan(ms[i]))
                    continue;
                sorted[k++] = ms[i];
                int x, y; /* every image, jittered across the column by its index */
                plot_point(x_max, s * spec->stride, ms[i] / y_max, &x, &y);
                canvas_rect(&c, x - 6 + (int)(i % 13) - 3 * j, y - 1, 2, 2, light);
            }
            if (!k)
                continue;
            for (size_t a = 1; a < k; a++) /* insertion sort: a few hundred values */
                for (size_t b = a; b > 0 && sorted[b - 1] > sorted[b]; b--) {
                    float t = sorted[b];
                    sorted[b] = sorted[b - 1];
                    sorted[b - 1] = t;
                }
            double median = k % 2 ? sorted[k / 2] : 0.5 * (sorted[k / 2 - 1] + sorted[k / 2]);
            int x, y;
            plot_point(x_max, s * spec->stride, median / y_max, &x, &y);
            if (s > 0)
                canvas_line(&c, px, py, x, y, 2, 0, colour);
            marker(&c, x, y, HFC_LOW, colour);
            px = x;
            py = y;
        }
        const char *base = strrchr(models[j]->path, '/');
        canvas_rect(&c, legend_x, PLOT_TOP + 6 + 14 * j, 16, 3, colour);
        snprintf(line, sizeof line, "%.26s", base ? base + 1 : models[j]->path);
        canvas_text(&c, legend_x + 22, PLOT_TOP + 4 + 14 * j, 1, INK, line);
    }
    canvas_text(&c, legend_x, PLOT_TOP + 14 * n_models + 16, 1, INK, "discs: median;");
    canvas_text(&c, legend_x, PLOT_TOP + 14 * n_models + 30, 1, INK, "dots: every image");
    free(sorted);
    char path[1200];
    snprintf(path, sizeof path, "%s/margin.png", dir);
    st = canvas_write_png(&c, path, err);
    canvas_free(&c);
    return st;
}

/* --------------------------------------------------------------- heatmap */

hfc_status hfc_heatmap_picture(const char *dir, const hfc_model *const *models, int n_models,
                               const hfc_heatmap_tally *tallies, hfc_error *err)
{
    hfc_status st = hfc_png_dir(dir, err);
    for (int j = 0; !st && j < n_models; j++) {
        const hfc_heatmap_tally *t = &tallies[j];
        const int N = t->rows, M = t->cols, side = N > M ? N : M;
        const int Z = side < 256 ? 256 / side : 1, x0 = MARGIN, y0 = MARGIN + 52;
        const int bar_x = x0 + M * Z + 24, bar_h = N * Z;
        hfc_canvas c;
        if ((st = canvas_new(&c, bar_x + 90, y0 + N * Z + 40, WHITE, err)))
            break;
        const char *base = strrchr(models[j]->path, '/');
        char line[256];
        snprintf(line, sizeof line, "%.60s", base ? base + 1 : models[j]->path);
        canvas_text(&c, MARGIN, MARGIN, 1, INK, line);
        snprintf(line, sizeof line, "Fourier heat map: error, eps = %g, %zu images", t->eps,
                 t->images);
        canvas_text(&c, MARGIN, MARGIN + 12, 1, INK, line);
        snprintf(line, sizeof line, "clean error %.3f; centre = DC, edges = high", 
                 t->images ? (double)t->clean_wrong / t->images : 0);
        canvas_text(&c, MARGIN, MARGIN + 24, 1, INK, line);
        for (int i = 0; i < N; i++)
            for (int k = 0; k < M; k++) {
                double e = t->images ? (double)t->wrong[i * M + k] / t->images : 0;
                canvas_rect(&c, x0 + k * Z, y0 + i * Z, Z, Z, spectrum_colour(e));
            }
        for (int y = 0; y < bar_h; y++) /* the legend: 1 at the top, 0 at the bottom */
            canvas_rect(&c, bar_x, y0 + y, 14, 1, spectrum_colour(1.0 - (double)y / (bar_h - 1)));
        canvas_text(&c, bar_x + 20, y0 - 3, 1, INK, "error 1");
        canvas_text(&c, bar_x + 20, y0 + bar_h / 2 - 4, 1, INK, "0.5");
        canvas_text(&c, bar_x + 20, y0 + bar_h - 8, 1, INK, "0");
        char path[1200];
        if (!(st = model_file(path, sizeof path, dir, models, j, "heatmap.png", err)))
            st = canvas_write_png(&c, path, err);
        canvas_free(&c);
    }
    return st;
}

/* -------------------------------------------------------------------- id */

hfc_status hfc_id_picture(const char *dir, const hfc_model *const *models, int n_models,
                          const hfc_id_layer *layers, const int *counts, hfc_error *err)
{
    static const char *VERSION[HFC_VERSIONS] = {"original", "low", "high"};
    hfc_status st = hfc_png_dir(dir, err);
    if (st)
        return st;
    double top = 0, deepest = 0;
    size_t total = 0, images = 0;
    for (int j = 0; j < n_models; j++)
        total += (size_t)counts[j];
    for (size_t k = 0; k < total; k++) {
        top = !isnan(layers[k].result.id) && layers[k].result.id > top ? layers[k].result.id : top;
        deepest = layers[k].depth > deepest ? layers[k].depth : deepest;
        images = layers[k].result.points > images ? layers[k].result.points : images;
    }
    double y_max = plot_x_max(&top, 1), x_max = plot_x_max(&deepest, 1);
    hfc_canvas c;
    int legend_x = PLOT_LEFT + PLOT_W + 20;
    if ((st = canvas_new(&c, legend_x + 220, PLOT_TOP + PLOT_H + 50, WHITE, err)))
        return st;
    draw_axes_y(&c, "intrinsic dimension (TwoNN) against depth", x_max,
                "depth: block outputs, 0 = input, last = logits", y_max, "ID");
    int row = 0;
    const hfc_id_layer *L = layers;
    for (int j = 0; j < n_models; j++) {
        hfc_rgb colour = PLOT_COLOURS[j % 10];
        for (int k = 0; k < counts[j];) { /* one line per version: a run of equal versions */
            int v = L[k].version, end = k;
            while (end < counts[j] && L[end].version == v)
                end++;
            int px = 0, py = 0;
            for (int q = k; q < end; q++) {
                if (isnan(L[q].result.id))
                    continue;
                int x, y;
                plot_point(x_max, L[q].depth, L[q].result.id / y_max, &x, &y);
                if (q > k)
                    canvas_line(&c, px, py, x, y, 2, v == HFC_ORIGINAL ? 0 : v == HFC_LOW ? 6 : 3,
                                colour);
                marker(&c, x, y, v == HFC_ORIGINAL ? HFC_LOW : v, colour);
                px = x;
                py = y;
            }
            const char *base = strrchr(models[j]->path, '/');
            char line[160];
            int ly = PLOT_TOP + 7 + 14 * row; /* the line as drawn: solid, long or short dashes */
            canvas_line(&c, legend_x, ly, legend_x + 18, ly, 2, v == HFC_ORIGINAL ? 0 : v == HFC_LOW ? 6 : 3,
                        colour);
            snprintf(line, sizeof line, "%.22s %s", base ? base + 1 : models[j]->path, VERSION[v]);
            canvas_text(&c, legend_x + 24, PLOT_TOP + 4 + 14 * row, 1, INK, line);
            row++;
            k = end;
        }
        L += counts[j];
    }
    char line[160];
    snprintf(line, sizeof line, "TwoNN on up to %zu points", images);
    canvas_text(&c, legend_x, PLOT_TOP + 14 * row + 16, 1, INK, line);
    char path[1200];
    snprintf(path, sizeof path, "%s/id.png", dir);
    st = canvas_write_png(&c, path, err);
    canvas_free(&c);
    return st;
}
