/* protos.c - the push record read back (`protos --prototypes FILE`) and the
 * pictures of `protos --png`: "this looks like that", per listed image and
 * version. The picture draws what hfc_protos computed; it runs nothing. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report/png.h"

/* ------------------------------------------------------------ the record */

static int get_int(const cJSON *o, const char *key, double lo, double hi, double *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < lo ||
        v->valuedouble > hi)
        return 0;
    *out = v->valuedouble;
    return 1;
}

static int get_ints(const cJSON *o, const char *key, int n, int *out)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != n)
        return 0;
    for (int k = 0; k < n; k++) {
        const cJSON *v = cJSON_GetArrayItem(a, k);
        if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || fabs(v->valuedouble) > 1e6)
            return 0;
        out[k] = (int)v->valuedouble;
    }
    return 1;
}

/* Entry j of the record's "prototypes", for a model taking c x h x w images. */
static int read_entry(const cJSON *e, int j, int c, int h, int w, hfc_push_entry *en)
{
    double v;
    const cJSON *image = cJSON_GetObjectItemCaseSensitive(e, "image");
    if (!get_int(e, "prototype", j, j, &v) || !get_int(e, "class", -1, 65535, &v))
        return 0;
    *en = (hfc_push_entry){.prototype = j, .class_id = (int)v, .label = -1};
    if (cJSON_IsNull(image))
        return 1;
    const cJSON *patch = cJSON_GetObjectItemCaseSensitive(e, "patch");
    int pos[2];
    if (!get_int(e, "image", 0, 1e12, &v))
        return 0;
    en->image = (size_t)v;
    if (!get_int(e, "label", 0, 65535, &v) || !get_ints(e, "position", 2, pos) ||
        !get_ints(e, "box", 4, en->box) || !cJSON_IsString(patch))
        return 0;
    en->label = (int)v, en->row = pos[0], en->col = pos[1];
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(e, "distance");
    if (!cJSON_IsNumber(d) || !isfinite(d->valuedouble))
        return 0;
    en->distance = (float)d->valuedouble;
    const int *b = en->box;
    if (b[0] < 0 || b[1] < 0 || b[2] > h || b[3] > w || b[0] >= b[2] || b[1] >= b[3])
        return 0;
    const size_t bytes = (size_t)c * (b[2] - b[0]) * (b[3] - b[1]);
    if (!(en->patch = malloc(bytes ? bytes : 1)))
        return 0;
    return hfc_base64_decode(patch->valuestring, en->patch, bytes) == (long long)bytes;
}

hfc_status hfc_push_read(const char *path, const hfc_model *m, hfc_push_record *rec,
                         hfc_error *err)
{
    memset(rec, 0, sizeof *rec);
    uint8_t *raw;
    size_t len;
    char why[160];
    hfc_status st = hfc_read_file(path, &raw, &len, err);
    if (st)
        return st;
    if (hfc_json_strict_whole((const char *)raw, len, why, sizeof why)) {
        free(raw);
        return hfc_fail(err, HFC_ERR_DATA, path, "not a push record: %s", why);
    }
    cJSON *o = cJSON_ParseWithLength((const char *)raw, len);
    free(raw);
    const cJSON *exp = cJSON_GetObjectItemCaseSensitive(o, "experiment");
    const cJSON *sha = cJSON_GetObjectItemCaseSensitive(o, "model_sha256");
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(o, "prototypes");
    double v;
    if (!o || !cJSON_IsString(exp) || strcmp(exp->valuestring, "push") || !cJSON_IsString(sha) ||
        !cJSON_IsArray(list) || !get_int(o, "channels", m->channels, m->channels, &v) ||
        !get_int(o, "images", 1, 1e12, &v)) {
        cJSON_Delete(o);
        return hfc_fail(err, HFC_ERR_DATA, path, "not a push record of hfc-eval protos --push");
    }
    rec->images = (size_t)v;
    if (strcmp(sha->valuestring, m->sha256)) {
        st = hfc_fail(err, HFC_ERR_USAGE, path, "a push record of another model (sha256 %.12s..., "
                      "%s is %.12s...): run protos --push for this model", sha->valuestring,
                      m->path, m->sha256);
        cJSON_Delete(o);
        return st;
    }
    hfc_prototypes p;
    if ((st = hfc_model_prototypes(m, &p, err))) {
        cJSON_Delete(o);
        return st;
    }
    memcpy(rec->model_sha256, m->sha256, sizeof rec->model_sha256);
    rec->channels = m->channels;
    rec->entries = calloc((size_t)p.count, sizeof *rec->entries);
    if (!rec->entries)
        st = hfc_fail(err, HFC_ERR_NOMEM, path, "out of memory");
    else if (cJSON_GetArraySize(list) != p.count)
        st = hfc_fail(err, HFC_ERR_DATA, path, "%d prototypes; the model has %d",
                      cJSON_GetArraySize(list), p.count);
    for (int j = 0; !st && j < p.count; j++, rec->count++)
        if (!read_entry(cJSON_GetArrayItem(list, j), j, m->channels, m->height, m->width,
                        &rec->entries[j])) {
            rec->count++;
            st = hfc_fail(err, HFC_ERR_DATA, path, "prototype %d: a malformed entry", j);
        }
    cJSON_Delete(o);
    if (st)
        hfc_push_free(rec);
    return st;
}

/* ----------------------------------------------------------- the picture */

#define PROTO_CAPTION 24  /* two lines of text under each cell */
#define PROTO_GAP 8

static const hfc_rgb BOX = {255, 230, 0};

static uint8_t byte_of(float v)
{
    return v <= 0 ? 0 : v >= 255 ? 255 : (uint8_t)lrintf(v);
}

/* One version's image, (C, H, W) floats, as RGB at zoom z (a high image
 * as the grids show it, zero mid-grey: grid_high_pixel); under heat
 * (normalised 0..1 per map) at half strength when heat is given. */
static void draw_cell(hfc_canvas *c, int x0, int y0, int z, const float *img, int C, int H, int W,
                      int high, const float *heat, float lo, float hi)
{
    const size_t plane = (size_t)H * W;
    float s = 1;
    for (size_t k = 0; high && k < (size_t)C * plane; k++)
        s = fabsf(img[k]) > s ? fabsf(img[k]) : s;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            size_t k = (size_t)y * W + x;
            const float *g = img + (C >= 3 ? plane : 0), *b = img + (C >= 3 ? 2 * plane : 0);
            hfc_rgb p = high ? (hfc_rgb){grid_high_pixel(img[k], s), grid_high_pixel(g[k], s),
                                         grid_high_pixel(b[k], s)}
                             : (hfc_rgb){byte_of(img[k]), byte_of(g[k]), byte_of(b[k])};
            if (heat) {
                hfc_rgb h = spectrum_colour(hi > lo ? (heat[k] - lo) / (hi - lo) : 0);
                p = (hfc_rgb){(uint8_t)((p.r + h.r) / 2), (uint8_t)((p.g + h.g) / 2),
                              (uint8_t)((p.b + h.b) / 2)};
            }
            canvas_rect(c, x0 + x * z, y0 + y * z, z, z, p);
        }
}

/* The source patch of a push entry, (C, bh, bw) bytes, centred in a cell. */
static void draw_patch(hfc_canvas *c, int x0, int y0, int z, int cell_w, int cell_h,
                       const hfc_push_entry *en, int C)
{
    const int bh = en->box[2] - en->box[0], bw = en->box[3] - en->box[1];
    const size_t plane = (size_t)bh * bw;
    x0 += (cell_w - bw * z) / 2, y0 += (cell_h - bh * z) / 2;
    for (int y = 0; y < bh; y++)
        for (int x = 0; x < bw; x++) {
            size_t k = (size_t)y * bw + x;
            const uint8_t *p = en->patch;
            hfc_rgb rgb = {p[k], p[C >= 3 ? plane + k : k], p[C >= 3 ? 2 * plane + k : k]};
            canvas_rect(c, x0 + x * z, y0 + y * z, z, z, rgb);
        }
}

static void min_max(const float *v, size_t n, float *lo, float *hi)
{
    *lo = *hi = v[0];
    for (size_t k = 1; k < n; k++) {
        *lo = v[k] < *lo ? v[k] : *lo;
        *hi = v[k] > *hi ? v[k] : *hi;
    }
}

static void draw_image_rows(hfc_canvas *c, const hfc_model *m, const hfc_proto_image *img, int k,
                            const hfc_push_record *rec, int C, int H, int W, int z)
{
    static const char *names[HFC_VERSIONS] = {"original", "low", "high"};
    const int cw = W * z, ch = H * z, pitch_y = ch + PROTO_CAPTION + PROTO_GAP;
    const size_t image = (size_t)C * H * W;
    char line[96];
    for (int v = 0; v < HFC_VERSIONS; v++) {
        const int y = MARGIN + 20 + v * pitch_y;
        const float *pix = img->pixels + v * image;
        draw_cell(c, MARGIN, y, z, pix, C, H, W, v == HFC_HIGH, NULL, 0, 0);
        snprintf(line, sizeof line, "%s: %s", names[v], m->classes[img->pred[v]]);
        canvas_text(c, MARGIN, y + ch + 3, 1, INK, line);
        for (int t = 0; t < k; t++) {
            const hfc_proto_hit *h = &img->top[v][t];
            const float *heat = img->heat + ((size_t)v * k + t) * H * W;
            const int x = MARGIN + (1 + 2 * t) * (cw + PROTO_GAP) + t * PROTO_GAP;
            float lo, hi;
            min_max(heat, (size_t)H * W, &lo, &hi);
            draw_cell(c, x, y, z, pix, C, H, W, v == HFC_HIGH, heat, lo, hi);
            canvas_frame(c, x + h->box[1] * z, y + h->box[0] * z, (h->box[3] - h->box[1]) * z,
                         (h->box[2] - h->box[0]) * z, 2, BOX);
            snprintf(line, sizeof line, "p%d sim %.3g", h->prototype, h->similarity);
            canvas_text(c, x, y + ch + 3, 1, INK, line);
            if (rec && rec->entries[h->prototype].label >= 0) {
                draw_patch(c, x + cw + PROTO_GAP, y, z, cw, ch, &rec->entries[h->prototype], C);
                snprintf(line, sizeof line, "train %zu", rec->entries[h->prototype].image);
                canvas_text(c, x + cw + PROTO_GAP, y + ch + 3, 1, INK, line);
            }
        }
    }
}

hfc_status hfc_protos_picture(const char *dir, const hfc_model *m, const hfc_protos_result *r,
                              const hfc_protos_spec *spec, const hfc_push_record *rec,
                              int channels, int height, int width, hfc_error *err)
{
    hfc_status st = hfc_png_dir(dir, err);
    const int z = grid_zoom(height, width), k = spec->top;
    const int cw = width * z, ch = height * z;
    const int w = 2 * MARGIN + (1 + 2 * k) * (cw + PROTO_GAP) + k * PROTO_GAP;
    const int h = MARGIN + 20 + HFC_VERSIONS * (ch + PROTO_CAPTION + PROTO_GAP) + MARGIN;
    for (int s = 0; !st && s < r->n_explain; s++) {
        const hfc_proto_image *img = &r->explained[s];
        hfc_canvas c;
        char path[1200], title[160];
        if ((st = canvas_new(&c, w, h, WHITE, err)))
            break;
        snprintf(title, sizeof title, "image %zu (%s): the top %d prototypes, then each one's source",
                 img->index, m->classes[img->label], k);
        canvas_text(&c, MARGIN, MARGIN, 1, INK, title);
        draw_image_rows(&c, m, img, k, rec, channels, height, width, z);
        snprintf(path, sizeof path, "%s/protos-%zu.png", dir, img->index);
        st = canvas_write_png(&c, path, err);
        canvas_free(&c);
    }
    return st;
}
