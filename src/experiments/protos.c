/* protos.c - prototype networks: which prototypes an image's evidence comes
 * from on its original, low and high versions, and the push that finds each
 * prototype's nearest training patch (hfc/experiments.h). The engine runs
 * the model and hands over the feature map the prototype layer reads (its
 * tap); the distances are the layer's own function, so what is listed here
 * is what the logits were made from. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hfc/experiments.h"

/* ------------------------------------------------------------ the maps */

/* One image's map (P positions) up to the image's ih x iw, bilinear with
 * half-pixel centres (PyTorch's align_corners=False, OpenCV's INTER_LINEAR). */
static void upsample(const float *map, int h, int w, float *out, int ih, int iw)
{
    for (int y = 0; y < ih; y++) {
        double sy = (y + 0.5) * h / ih - 0.5;
        sy = sy < 0 ? 0 : sy;
        int y0 = (int)sy, y1 = y0 + 1 < h ? y0 + 1 : h - 1;
        double wy = sy - y0;
        for (int x = 0; x < iw; x++) {
            double sx = (x + 0.5) * w / iw - 0.5;
            sx = sx < 0 ? 0 : sx;
            int x0 = (int)sx, x1 = x0 + 1 < w ? x0 + 1 : w - 1;
            double wx = sx - x0;
            double top = map[y0 * w + x0] * (1 - wx) + map[y0 * w + x1] * wx;
            double bottom = map[y1 * w + x0] * (1 - wx) + map[y1 * w + x1] * wx;
            out[(size_t)y * iw + x] = (float)(top * (1 - wy) + bottom * wy);
        }
    }
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* The bounding box (top, left, bottom, right; exclusive) of the pixels of
 * heat at or above its 95th percentile (linear between order statistics,
 * numpy's default). sorted: room for ih * iw floats. */
static void high_box(const float *heat, int ih, int iw, float *sorted, int box[4])
{
    const size_t N = (size_t)ih * iw;
    memcpy(sorted, heat, N * sizeof *sorted);
    qsort(sorted, N, sizeof *sorted, cmp_float);
    double pos = 0.95 * (double)(N - 1);
    size_t lo = (size_t)pos;
    double t = sorted[lo] + (lo + 1 < N ? (sorted[lo + 1] - (double)sorted[lo]) * (pos - lo) : 0);
    box[0] = ih, box[1] = iw, box[2] = box[3] = 0;
    for (int y = 0; y < ih; y++)
        for (int x = 0; x < iw; x++)
            if (heat[(size_t)y * iw + x] >= t) {
                box[0] = y < box[0] ? y : box[0];
                box[1] = x < box[1] ? x : box[1];
                box[2] = y + 1 > box[2] ? y + 1 : box[2];
                box[3] = x + 1 > box[3] ? x + 1 : box[3];
            }
}

/* Prototype j's similarity at each position, from dist (P, count). */
static void similarity_map(const hfc_prototypes *p, const float *dist, int P, int j, float *out)
{
    for (int q = 0; q < P; q++)
        out[q] = hfc_prototype_similarity(p->similarity, p->epsilon, dist[(size_t)q * p->count + j]);
}

/* ------------------------------------------------------------- protos */

typedef struct {
    hfc_engine *e;
    const hfc_protos_spec *spec;
    hfc_protos_result *r;
    int K, P;                 /* classes, positions */
    float *logits, *feats, *dist, *scratch, *mind, *sorted;
    int *order;
} protos_run;

/* The top K prototypes of one image by similarity (the lower index first
 * among equals): a partial selection over count values. */
static void top_k(const float *sim, int count, int k, int *order)
{
    for (int t = 0; t < k; t++) {
        int best = -1;
        for (int j = 0; j < count; j++) {
            int taken = 0;
            for (int u = 0; u < t && !taken; u++)
                taken = order[u] == j;
            if (!taken && (best < 0 || sim[j] > sim[best]))
                best = j;
        }
        order[t] = best;
    }
}

/* Image i of the batch, version v, listed in full: its top hits' maps, and
 * what the pictures need. */
static void explain(protos_run *c, const hfc_batch *b, size_t i, int v, const float *pixels,
                    const float *dist, hfc_proto_image *img)
{
    const hfc_prototypes *p = &c->r->info;
    const int k = c->spec->top, ih = b->ds->height, iw = b->ds->width;
    const size_t image = hfc_dataset_image_size(b->ds);
    img->pred[v] = hfc_argmax(c->logits + i * c->K, c->K);
    memcpy(img->pixels + (size_t)v * image, pixels + i * image, image * sizeof(float));
    for (int t = 0; t < k; t++) {
        const int j = c->order[t];
        const int q = hfc_prototype_nearest(dist, c->P, p->count, j);
        float *map = img->maps + ((size_t)v * k + t) * c->P;
        float *heat = img->heat + ((size_t)v * k + t) * ih * iw;
        similarity_map(p, dist, c->P, j, map);
        upsample(map, p->height, p->width, heat, ih, iw);
        hfc_proto_hit *h = &img->top[v][t];
        const float d = dist[(size_t)q * p->count + j];
        *h = (hfc_proto_hit){j, hfc_prototype_similarity(p->similarity, p->epsilon, d), d,
                             q / p->width, q % p->width, {0, 0, 0, 0}};
        high_box(heat, ih, iw, c->sorted, h->box);
    }
}

/* One version of a batch: the model's logits and feature maps, then per
 * image its distances, similarities, top K and tallies. */
static void protos_version(protos_run *c, const hfc_batch *b, int v, const float *x)
{
    const hfc_prototypes *p = &c->r->info;
    const int m = p->count;
    const size_t feat = (size_t)c->P * p->depth;
    hfc_engine_forward_tap(c->e, x, b->n, c->logits, c->feats, NULL);
    for (size_t i = 0; i < b->n; i++) {
        hfc_prototype_distances(p, c->feats + i * feat, c->P, c->scratch, c->dist);
        for (int j = 0; j < m; j++) { /* mind: the similarity of the nearest patch */
            int q = hfc_prototype_nearest(c->dist, c->P, m, j);
            c->mind[j] = hfc_prototype_similarity(p->similarity, p->epsilon, c->dist[(size_t)q * m + j]);
            c->r->similarity_sum[(size_t)v * m + j] += c->mind[j];
        }
        top_k(c->mind, m, c->spec->top, c->order);
        for (int t = 0; t < c->spec->top; t++)
            c->r->top_count[(size_t)v * m + c->order[t]]++;
        c->r->correct[v] += hfc_argmax(c->logits + i * c->K, c->K) == b->labels[i];
        for (int s = 0; s < c->r->n_explain; s++)
            if (c->r->explained[s].index == b->first + i)
                explain(c, b, i, v, x, c->dist, &c->r->explained[s]);
    }
}

static hfc_status protos_batch(hfc_batch *b, void *arg, hfc_error *err)
{
    protos_run *c = arg;
    protos_version(c, b, HFC_ORIGINAL, b->x);
    hfc_status st = hfc_split_apply(b->split, &c->spec->mask, err);
    if (st)
        return st;
    protos_version(c, b, HFC_LOW, hfc_split_low(b->split));
    protos_version(c, b, HFC_HIGH, hfc_split_high(b->split));
    return HFC_OK;
}

/* The buffers of one run: a batch's logits, feature maps and one image's
 * distances. */
static hfc_status run_buffers(protos_run *c, const hfc_model *m, size_t batch, const hfc_dataset *ds,
                              hfc_error *err)
{
    const hfc_prototypes *p = &c->r->info;
    c->K = m->n_classes;
    c->P = p->height * p->width;
    c->logits = malloc(batch * c->K * sizeof *c->logits);
    c->feats = malloc(batch * c->P * (size_t)p->depth * sizeof *c->feats);
    c->dist = malloc((size_t)c->P * p->count * sizeof *c->dist);
    c->scratch = malloc(hfc_prototype_scratch(c->P, p->count) * sizeof *c->scratch);
    c->mind = malloc((size_t)p->count * sizeof *c->mind);
    c->sorted = malloc((size_t)ds->height * ds->width * sizeof *c->sorted);
    c->order = malloc((size_t)(p->count > HFC_MAX_TOP ? p->count : HFC_MAX_TOP) * sizeof *c->order);
    if (!c->logits || !c->feats || !c->dist || !c->scratch || !c->mind || !c->sorted || !c->order)
        return hfc_fail(err, HFC_ERR_NOMEM, m->path, "out of memory for a batch of %zu images", batch);
    return HFC_OK;
}

static void run_free(protos_run *c)
{
    free(c->logits);
    free(c->feats);
    free(c->dist);
    free(c->scratch);
    free(c->mind);
    free(c->sorted);
    free(c->order);
}

/* The model's prototype layer, and that the model takes the data. */
static hfc_status check_model(const hfc_model *m, const hfc_dataset *ds, hfc_prototypes *p,
                              hfc_error *err)
{
    hfc_status st = hfc_model_prototypes(m, p, err);
    const hfc_model *const one[1] = {m};
    return st ? st : hfc_check_models(one, 1, ds, 1, err);
}

hfc_status hfc_protos(hfc_engine *e, const hfc_model *m, const hfc_dataset *ds,
                      const hfc_protos_spec *spec, size_t batch, const hfc_progress *progress,
                      hfc_protos_result *r, hfc_error *err)
{
    memset(r, 0, sizeof *r);
    hfc_status st = check_model(m, ds, &r->info, err);
    if (st)
        return st;
    if (spec->top < 1 || spec->top > HFC_MAX_TOP || spec->top > r->info.count)
        return hfc_fail(err, HFC_ERR_USAGE, m->path, "--top %d: the model has %d prototypes (1 to %d)",
                        spec->top, r->info.count, r->info.count < HFC_MAX_TOP ? r->info.count : HFC_MAX_TOP);
    batch = hfc_engines_batch(&e, 1, batch, ds->n);
    const size_t m3 = (size_t)HFC_VERSIONS * r->info.count, image = hfc_dataset_image_size(ds);
    const size_t maps = (size_t)HFC_VERSIONS * spec->top;
    r->images = ds->n;
    r->similarity_sum = calloc(m3, sizeof *r->similarity_sum);
    r->top_count = calloc(m3, sizeof *r->top_count);
    r->explained = calloc((size_t)(spec->n_explain ? spec->n_explain : 1), sizeof *r->explained);
    protos_run c = {.e = e, .spec = spec, .r = r};
    if (!r->similarity_sum || !r->top_count || !r->explained)
        return hfc_fail(err, HFC_ERR_NOMEM, m->path, "out of memory");
    for (int s = 0; s < spec->n_explain; s++, r->n_explain++) {
        hfc_proto_image *img = &r->explained[s];
        if (spec->explain[s] >= ds->n)
            return hfc_fail(err, HFC_ERR_USAGE, ds->path, "--images: image %zu is past the %zu used",
                            spec->explain[s], ds->n);
        img->index = spec->explain[s];
        img->label = ds->labels[img->index];
        img->maps = malloc(maps * r->info.height * r->info.width * sizeof(float));
        img->heat = malloc(maps * ds->height * ds->width * sizeof(float));
        img->pixels = malloc(HFC_VERSIONS * image * sizeof(float));
        if (!img->maps || !img->heat || !img->pixels) {
            r->n_explain++;
            return hfc_fail(err, HFC_ERR_NOMEM, m->path, "out of memory");
        }
    }
    if (!(st = run_buffers(&c, m, batch, ds, err)))
        st = hfc_stream(ds, batch, &spec->mask, 1, 1, progress, protos_batch, &c, err);
    run_free(&c);
    return st;
}

void hfc_protos_free(hfc_protos_result *r)
{
    for (int s = 0; s < r->n_explain; s++) {
        free(r->explained[s].maps);
        free(r->explained[s].heat);
        free(r->explained[s].pixels);
    }
    free(r->explained);
    free(r->similarity_sum);
    free(r->top_count);
    memset(r, 0, sizeof *r);
}

/* --------------------------------------------------------------- push */

typedef struct {
    hfc_engine *e;
    const hfc_prototypes *p;
    hfc_push_record *rec;
    int P;
    float *logits, *feats, *dist, *scratch;
} push_run;

static hfc_status push_batch(hfc_batch *b, void *arg, hfc_error *err)
{
    (void)err;
    push_run *c = arg;
    const hfc_prototypes *p = c->p;
    const size_t feat = (size_t)c->P * p->depth;
    hfc_engine_forward_tap(c->e, b->x, b->n, c->logits, c->feats, NULL);
    for (size_t i = 0; i < b->n; i++) {
        hfc_prototype_distances(p, c->feats + i * feat, c->P, c->scratch, c->dist);
        for (int j = 0; j < p->count; j++) {
            hfc_push_entry *en = &c->rec->entries[j];
            if (en->class_id >= 0 && en->class_id != b->labels[i])
                continue;
            int q = hfc_prototype_nearest(c->dist, c->P, p->count, j);
            float d = c->dist[(size_t)q * p->count + j];
            if (en->label < 0 || d < en->distance) /* strictly nearer: the first of equals stays */
                *en = (hfc_push_entry){j, en->class_id, b->first + i, b->labels[i], q / p->width,
                                       q % p->width, d, {0, 0, 0, 0}, NULL};
        }
    }
    return HFC_OK;
}

/* Each chosen image again, alone: its map of the prototype, the box and
 * the patch's pixels (an image's features do not depend on the others in
 * its call, so these are the pass's). */
static hfc_status push_boxes(push_run *c, const hfc_dataset *ds, hfc_error *err)
{
    const hfc_prototypes *p = c->p;
    const size_t image = hfc_dataset_image_size(ds);
    const int ih = ds->height, iw = ds->width, ch = ds->channels;
    float *x = malloc(image * sizeof *x), *map = malloc((size_t)c->P * sizeof *map);
    float *heat = malloc((size_t)ih * iw * sizeof *heat), *sorted = malloc((size_t)ih * iw * sizeof *sorted);
    hfc_status st = x && map && heat && sorted ? HFC_OK : hfc_fail(err, HFC_ERR_NOMEM, "", "out of memory");
    for (int j = 0; !st && j < p->count; j++) {
        hfc_push_entry *en = &c->rec->entries[j];
        if (en->label < 0)
            continue;  /* no image of its class */
        hfc_dataset_image(ds, en->image, x);
        hfc_engine_forward_tap(c->e, x, 1, c->logits, c->feats, NULL);
        hfc_prototype_distances(p, c->feats, c->P, c->scratch, c->dist);
        similarity_map(p, c->dist, c->P, j, map);
        upsample(map, p->height, p->width, heat, ih, iw);
        high_box(heat, ih, iw, sorted, en->box);
        const int bh = en->box[2] - en->box[0], bw = en->box[3] - en->box[1];
        if (!(en->patch = malloc((size_t)ch * bh * bw))) {
            st = hfc_fail(err, HFC_ERR_NOMEM, "", "out of memory");
            break;
        }
        for (int k = 0; k < ch; k++)
            for (int y = 0; y < bh; y++)
                for (int u = 0; u < bw; u++) {
                    float v = x[((size_t)k * ih + en->box[0] + y) * iw + en->box[1] + u];
                    v = v < 0 ? 0 : v > 255 ? 255 : v;
                    en->patch[((size_t)k * bh + y) * bw + u] = (uint8_t)lrintf(v);
                }
    }
    free(x);
    free(map);
    free(heat);
    free(sorted);
    return st;
}

hfc_status hfc_protos_push(hfc_engine *e, const hfc_model *m, const hfc_dataset *ds, size_t batch,
                           const hfc_progress *progress, hfc_push_record *rec, hfc_error *err)
{
    memset(rec, 0, sizeof *rec);
    hfc_prototypes p;
    hfc_status st = check_model(m, ds, &p, err);
    if (st)
        return st;
    batch = hfc_engines_batch(&e, 1, batch, ds->n);
    memcpy(rec->model_sha256, m->sha256, sizeof rec->model_sha256);
    rec->count = p.count;
    rec->channels = ds->channels;
    rec->images = ds->n;
    push_run c = {e, &p, rec, p.height * p.width, NULL, NULL, NULL, NULL};
    rec->entries = calloc((size_t)p.count, sizeof *rec->entries);
    c.logits = malloc(batch * m->n_classes * sizeof *c.logits);
    c.feats = malloc(batch * c.P * (size_t)p.depth * sizeof *c.feats);
    c.dist = malloc((size_t)c.P * p.count * sizeof *c.dist);
    c.scratch = malloc(hfc_prototype_scratch(c.P, p.count) * sizeof *c.scratch);
    if (!rec->entries || !c.logits || !c.feats || !c.dist || !c.scratch)
        st = hfc_fail(err, HFC_ERR_NOMEM, m->path, "out of memory for a batch of %zu images", batch);
    for (int j = 0; !st && j < p.count; j++)
        rec->entries[j] = (hfc_push_entry){.prototype = j, .class_id = p.class_of[j], .label = -1};
    if (!st)
        st = hfc_stream(ds, batch, NULL, 0, 1, progress, push_batch, &c, err);
    if (!st)
        st = push_boxes(&c, ds, err);
    free(c.logits);
    free(c.feats);
    free(c.dist);
    free(c.scratch);
    return st;
}

void hfc_push_free(hfc_push_record *rec)
{
    for (int j = 0; rec->entries && j < rec->count; j++)
        free(rec->entries[j].patch);
    free(rec->entries);
    memset(rec, 0, sizeof *rec);
}
