/* src/report/json.c - the JSON reports: one object per model and radius
 * (evaluate), per model, eps and radius (attack), per model (heatmap).
 * Schemas: README. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hfc/report.h"

static const char *VERSION_NAMES[HFC_VERSIONS] = {"original", "low", "high"};

static double fraction(size_t num, size_t den) { return den ? (double)num / (double)den : 0.0; }

/* What every report ends with: the model, the data, the protocol, the
 * shard, the time. skipped: rescale_skipped counts by version. */
static void add_run_fields(cJSON *o, const hfc_model *m, const hfc_dataset *ds,
                           const hfc_protocol *protocol, const size_t *skipped, int shard_index,
                           int shard_count, double seconds)
{
    const char *base = strrchr(m->path, '/');
    cJSON_AddStringToObject(o, "model", base ? base + 1 : m->path);
    cJSON_AddStringToObject(o, "model_path", m->path);
    cJSON_AddStringToObject(o, "model_sha256", m->sha256);
    cJSON_AddStringToObject(o, "data", ds->path);
    cJSON_AddStringToObject(o, "dataset", hfc_dataset_name(ds->kind));
    cJSON_AddStringToObject(o, "set", hfc_set_name(ds->set));
    if (ds->corruption[0]) { /* CIFAR-10-C */
        cJSON_AddStringToObject(o, "corruption", ds->corruption);
        cJSON_AddNumberToObject(o, "severity", ds->severity);
    }
    if (ds->channels != HFC_CIFAR_CHANNELS || ds->height != HFC_CIFAR_SIDE ||
        ds->width != HFC_CIFAR_SIDE) {
        int size[3] = {ds->channels, ds->height, ds->width};
        cJSON_AddItemToObject(o, "image_size", cJSON_CreateIntArray(size, 3));
    }
    if (ds->skipped) /* image folders, --skip-bad-images */
        cJSON_AddNumberToObject(o, "skipped_images", (double)ds->skipped);
    const hfc_protocol plain = {0, 0, 0};
    const hfc_protocol *p = protocol ? protocol : &plain;
    cJSON_AddStringToObject(o, "bn_stats", p->bn_batch ? "batch" : "running");
    if (p->bn_batch)
        cJSON_AddNumberToObject(o, "bn_batch", p->bn_batch);
    cJSON_AddStringToObject(o, "rescale", p->rescale_max ? "max" : "none");
    if (p->rescale_max) { /* images left as they were: max <= 0 (hfc_merge sums them) */
        cJSON *sk = cJSON_AddObjectToObject(o, "rescale_skipped");
        cJSON_AddNumberToObject(sk, "low", (double)skipped[HFC_LOW]);
        cJSON_AddNumberToObject(sk, "high", (double)skipped[HFC_HIGH]);
    }
    cJSON_AddNumberToObject(o, "smooth", p->smooth);
    if (shard_count > 0) { /* hfc_merge removes this and sums the counts */
        cJSON *sh = cJSON_AddObjectToObject(o, "shard");
        cJSON_AddNumberToObject(sh, "index", shard_index);
        cJSON_AddNumberToObject(sh, "count", shard_count);
        cJSON_AddNumberToObject(sh, "first", (double)ds->first);
        cJSON_AddNumberToObject(sh, "end", (double)(ds->first + ds->n));
        cJSON_AddNumberToObject(sh, "set_images", (double)ds->set_images);
    }
    cJSON_AddNumberToObject(o, "seconds", seconds);
}

static char *print_and_free(cJSON *o, int pretty)
{
    char *text = pretty ? cJSON_Print(o) : cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!text)
        return NULL;
    char *copy = strdup(text);  /* callers free() it */
    cJSON_free(text);
    return copy;
}

/* "radius": 4 (a band: "4:8", as --radius spells it) and the mask itself:
 * "mask": {"kind": "disc", "radius": 4} or {"kind": "band", "inner": 4, "outer": 8}. */
static void add_mask(cJSON *o, const hfc_mask *m)
{
    cJSON *mo = cJSON_CreateObject();
    cJSON_AddStringToObject(mo, "kind", hfc_mask_kind_name(m->kind));
    if (m->kind == HFC_MASK_BAND) {
        char label[64];
        hfc_mask_label(m, label, sizeof label);
        cJSON_AddStringToObject(o, "radius", label);
        cJSON_AddNumberToObject(mo, "inner", m->r);
        cJSON_AddNumberToObject(mo, "outer", m->outer);
    } else {
        cJSON_AddNumberToObject(o, "radius", m->r);
        cJSON_AddNumberToObject(mo, "radius", m->r);
    }
    cJSON_AddItemToObject(o, "mask", mo);
}

char *hfc_report_json(const hfc_tally *t, const hfc_model *m, const hfc_dataset *ds,
                      const hfc_protocol *protocol, int shard_index, int shard_count,
                      double seconds, int pretty)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    add_mask(o, &t->mask);
    cJSON_AddNumberToObject(o, "images", (double)t->images);
    cJSON *acc = cJSON_AddObjectToObject(o, "accuracy");
    cJSON *cor = cJSON_AddObjectToObject(o, "correct");
    for (int v = 0; v < HFC_VERSIONS; v++) {
        cJSON_AddNumberToObject(acc, VERSION_NAMES[v], fraction(t->correct[v], t->images));
        cJSON_AddNumberToObject(cor, VERSION_NAMES[v], (double)t->correct[v]);
    }
    cJSON *per = cJSON_AddObjectToObject(o, "per_class");
    for (int c = 0; c < ds->n_classes && c < m->n_classes; c++) {
        cJSON *pc = cJSON_AddObjectToObject(per, ds->class_names ? ds->class_names[c] : m->classes[c]);
        if (!pc)  /* duplicate or unprintable names still get a row */
            continue;
        cJSON_AddNumberToObject(pc, "images", (double)t->class_images[c]);
        for (int v = 0; v < HFC_VERSIONS; v++)
            cJSON_AddNumberToObject(pc, VERSION_NAMES[v],
                                    fraction(t->class_correct[c][v], t->class_images[c]));
    }
    add_run_fields(o, m, ds, protocol, t->rescale_skipped, shard_index, shard_count, seconds);
    return print_and_free(o, pretty);
}

char *hfc_report_attack_json(const hfc_attack_tally *t, const hfc_attack_spec *spec,
                             const hfc_model *m, const hfc_dataset *ds,
                             const hfc_protocol *protocol, int shard_index, int shard_count,
                             double seconds, int pretty)
{
    static const char *KEYS[HFC_VERSIONS][2] = {{"clean", "adversarial"},
                                                {"low_clean", "low_adversarial"},
                                                {"high_clean", "high_adversarial"}};
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    double step = spec->step_size > 0 ? spec->step_size : spec->pgd ? t->eps / 4 : t->eps;
    cJSON_AddStringToObject(o, "attack", spec->pgd ? "pgd" : "fgsm");
    cJSON_AddNumberToObject(o, "eps", t->eps);
    cJSON_AddNumberToObject(o, "steps", spec->steps);
    cJSON_AddNumberToObject(o, "step_size", step);
    cJSON_AddBoolToObject(o, "random_start", spec->random_start);
    if (spec->random_start)
        cJSON_AddNumberToObject(o, "seed", (double)spec->seed);
    if (t->has_mask)
        add_mask(o, &t->mask);
    cJSON_AddNumberToObject(o, "images", (double)t->images);
    cJSON *acc = cJSON_AddObjectToObject(o, "accuracy");
    cJSON *cor = cJSON_AddObjectToObject(o, "correct");
    for (int v = 0; v < (t->has_mask ? HFC_VERSIONS : 1); v++)
        for (int a = 0; a < 2; a++) {
            cJSON_AddNumberToObject(acc, KEYS[v][a], fraction(t->correct[v][a], t->images));
            cJSON_AddNumberToObject(cor, KEYS[v][a], (double)t->correct[v][a]);
        }
    const size_t none[HFC_VERSIONS] = {0, 0, 0};
    hfc_protocol p = protocol ? *protocol : (hfc_protocol){0, 0, 0};
    p.rescale_max = 0; /* attacks start from the images as they are */
    add_run_fields(o, m, ds, &p, none, shard_index, shard_count, seconds);
    return print_and_free(o, pretty);
}

static int by_value(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* numpy.percentile's default (linear) of sorted v[0..n). */
static double percentile(const float *v, size_t n, double q)
{
    double pos = q * (double)(n - 1);
    size_t lo = (size_t)pos;
    double frac = pos - (double)lo;
    return lo + 1 < n ? v[lo] + (v[lo + 1] - v[lo]) * frac : v[lo];
}

char *hfc_report_margin_json(const float *margins, const hfc_margin_spec *spec,
                             const hfc_model *m, const hfc_dataset *ds,
                             const hfc_protocol *protocol, double seconds, int pretty)
{
    cJSON *o = cJSON_CreateObject();
    float *sorted = malloc((ds->n ? ds->n : 1) * sizeof *sorted);
    if (!o || !sorted) {
        cJSON_Delete(o);
        free(sorted);
        return NULL;
    }
    cJSON_AddStringToObject(o, "experiment", "margin");
    cJSON_AddStringToObject(o, "subspace", "dct");
    cJSON_AddNumberToObject(o, "block", spec->block);
    cJSON_AddNumberToObject(o, "stride", spec->stride);
    cJSON_AddNumberToObject(o, "max_iter", spec->max_iter);
    cJSON_AddNumberToObject(o, "overshoot", spec->overshoot);
    cJSON_AddNumberToObject(o, "images", (double)ds->n);
    cJSON *subs = cJSON_AddArrayToObject(o, "subspaces");
    for (int s = 0; s < hfc_margin_subspaces(spec); s++) {
        const float *ms = margins + (size_t)s * ds->n;
        cJSON *e = cJSON_CreateObject();
        cJSON_AddItemToArray(subs, e);
        cJSON_AddNumberToObject(e, "offset", s * spec->stride);
        size_t k = 0;
        for (size_t i = 0; i < ds->n; i++)
            if (!isnan(ms[i]))
                sorted[k++] = ms[i];
        qsort(sorted, k, sizeof *sorted, by_value);
        if (k) {
            cJSON_AddNumberToObject(e, "median", percentile(sorted, k, 0.5));
            cJSON_AddNumberToObject(e, "q1", percentile(sorted, k, 0.25));
            cJSON_AddNumberToObject(e, "q3", percentile(sorted, k, 0.75));
        } else {
            cJSON_AddNullToObject(e, "median");
            cJSON_AddNullToObject(e, "q1");
            cJSON_AddNullToObject(e, "q3");
        }
        cJSON_AddNumberToObject(e, "not_fooled", (double)(ds->n - k));
        cJSON *all = cJSON_AddArrayToObject(e, "margins");
        for (size_t i = 0; i < ds->n; i++)
            cJSON_AddItemToArray(all, isnan(ms[i]) ? cJSON_CreateNull() : cJSON_CreateNumber(ms[i]));
    }
    free(sorted);
    const size_t none[HFC_VERSIONS] = {0, 0, 0};
    hfc_protocol p = protocol ? *protocol : (hfc_protocol){0, 0, 0};
    p.rescale_max = 0;
    add_run_fields(o, m, ds, &p, none, 0, 0, seconds);
    return print_and_free(o, pretty);
}

char *hfc_report_heatmap_json(const hfc_heatmap_tally *t, const hfc_model *m,
                              const hfc_dataset *ds, double seconds, int pretty)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddStringToObject(o, "experiment", "heatmap");
    cJSON_AddNumberToObject(o, "eps", t->eps);
    cJSON_AddNumberToObject(o, "seed", (double)t->seed);
    cJSON_AddNumberToObject(o, "images", (double)t->images);
    cJSON_AddNumberToObject(o, "clean_error", fraction(t->clean_wrong, t->images));
    if (t->rows != t->height || t->cols != t->width) { /* only part of the grid */
        cJSON_AddNumberToObject(o, "extent", t->rows > t->cols ? t->rows : t->cols);
        int first[2] = {t->top - t->height / 2, t->left - t->width / 2};
        cJSON_AddItemToObject(o, "first_frequency", cJSON_CreateIntArray(first, 2));
    }
    cJSON *rows = cJSON_AddArrayToObject(o, "error");
    for (int i = 0; i < t->rows; i++) {
        cJSON *row = cJSON_CreateArray();
        for (int j = 0; j < t->cols; j++)
            cJSON_AddItemToArray(row, cJSON_CreateNumber(
                                          fraction(t->wrong[i * t->cols + j], t->images)));
        cJSON_AddItemToArray(rows, row);
    }
    const size_t none[HFC_VERSIONS] = {0, 0, 0};
    add_run_fields(o, m, ds, NULL, none, 0, 0, seconds);
    return print_and_free(o, pretty);
}

char *hfc_report_id_json(const hfc_id_layer *L, const hfc_id_spec *spec, const hfc_model *m,
                         const hfc_dataset *ds, double seconds, int pretty)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddStringToObject(o, "experiment", "id");
    cJSON_AddStringToObject(o, "layer", hfc_model_node_name(m, L->node));
    cJSON_AddNumberToObject(o, "depth", L->depth);
    cJSON_AddNumberToObject(o, "dim", (double)L->dim);
    cJSON_AddNumberToObject(o, "id", L->result.id);   /* NaN prints as null */
    cJSON_AddNumberToObject(o, "sd", L->result.sd);
    cJSON_AddNumberToObject(o, "points", (double)L->result.points);
    cJSON_AddNumberToObject(o, "resamples", spec->resamples);
    cJSON_AddNumberToObject(o, "images", (double)ds->n);
    cJSON_AddStringToObject(o, "version", VERSION_NAMES[L->version]);
    if (L->version != HFC_ORIGINAL)
        add_mask(o, &spec->mask);
    const size_t none[HFC_VERSIONS] = {0, 0, 0};
    add_run_fields(o, m, ds, NULL, none, 0, 0, seconds);
    return print_and_free(o, pretty);
}

/* ------------------------------------------------------------- protos */

static cJSON *three(const double v[HFC_VERSIONS])
{
    cJSON *o = cJSON_CreateObject();
    for (int k = 0; k < HFC_VERSIONS; k++)
        cJSON_AddNumberToObject(o, VERSION_NAMES[k], v[k]);
    return o;
}

static const char *class_name(const hfc_model *m, int k)
{
    return k >= 0 && k < m->n_classes ? m->classes[k] : "";
}

/* The last layer's weight from prototype j to class k (0 without one). */
static double proto_weight(const hfc_prototypes *p, int k, int j)
{
    return p->last_weight && k >= 0 ? p->last_weight[(size_t)k * p->count + j] : 0.0;
}

static cJSON *int_pair(int a, int b)
{
    int v[2] = {a, b};
    return cJSON_CreateIntArray(v, 2);
}

static void add_prototype_layer(cJSON *o, const hfc_prototypes *p, const hfc_model *m)
{
    static const char *names[] = {"log", "linear", "distance"};
    cJSON *pl = cJSON_AddObjectToObject(o, "prototypes");
    cJSON_AddStringToObject(pl, "layer", hfc_model_node_name(m, p->node));
    cJSON_AddNumberToObject(pl, "count", p->count);
    cJSON_AddNumberToObject(pl, "depth", p->depth);
    cJSON_AddItemToObject(pl, "map", int_pair(p->height, p->width));
    cJSON_AddStringToObject(pl, "similarity", names[p->similarity]);
    if (p->similarity == HFC_SIMILARITY_LOG)
        cJSON_AddNumberToObject(pl, "epsilon", p->epsilon);
}

/* One listed image's version: the prediction and its top K. */
static cJSON *explained_version(const hfc_proto_image *img, int v, int k, const hfc_prototypes *p,
                                const hfc_model *m)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "pred", img->pred[v]);
    cJSON_AddStringToObject(o, "pred_name", class_name(m, img->pred[v]));
    cJSON *top = cJSON_AddArrayToObject(o, "top");
    for (int t = 0; t < k; t++) {
        const hfc_proto_hit *h = &img->top[v][t];
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "prototype", h->prototype);
        cJSON_AddNumberToObject(e, "class", p->class_of[h->prototype]);
        cJSON_AddNumberToObject(e, "weight", proto_weight(p, p->class_of[h->prototype], h->prototype));
        cJSON_AddNumberToObject(e, "weight_pred", proto_weight(p, img->pred[v], h->prototype));
        cJSON_AddNumberToObject(e, "similarity", h->similarity);
        cJSON_AddNumberToObject(e, "distance", h->distance);
        cJSON_AddItemToObject(e, "position", int_pair(h->row, h->col));
        cJSON_AddItemToObject(e, "box", cJSON_CreateIntArray(h->box, 4));
        cJSON *map = cJSON_AddArrayToObject(e, "map");
        const float *mv = img->maps + ((size_t)v * k + t) * p->height * p->width;
        for (int y = 0; y < p->height; y++)
            cJSON_AddItemToArray(map, cJSON_CreateFloatArray(mv + (size_t)y * p->width, p->width));
        cJSON_AddItemToArray(top, e);
    }
    return o;
}

char *hfc_report_protos_json(const hfc_protos_result *r, const hfc_protos_spec *spec,
                             const hfc_push_record *rec, const hfc_model *m, const hfc_dataset *ds,
                             double seconds, int pretty)
{
    const hfc_prototypes *p = &r->info;
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddStringToObject(o, "experiment", "protos");
    add_mask(o, &spec->mask);
    cJSON_AddNumberToObject(o, "top", spec->top);
    add_prototype_layer(o, p, m);
    cJSON_AddNumberToObject(o, "images", (double)r->images);
    double acc[HFC_VERSIONS], correct[HFC_VERSIONS];
    for (int v = 0; v < HFC_VERSIONS; v++)
        acc[v] = fraction(r->correct[v], r->images), correct[v] = (double)r->correct[v];
    cJSON_AddItemToObject(o, "accuracy", three(acc));
    cJSON_AddItemToObject(o, "correct", three(correct));
    cJSON *per = cJSON_AddArrayToObject(o, "per_prototype");
    for (int j = 0; j < p->count; j++) {
        cJSON *e = cJSON_CreateObject();
        double mean[HFC_VERSIONS], rate[HFC_VERSIONS];
        for (int v = 0; v < HFC_VERSIONS; v++) {
            mean[v] = r->images ? r->similarity_sum[(size_t)v * p->count + j] / (double)r->images : 0;
            rate[v] = fraction(r->top_count[(size_t)v * p->count + j], r->images);
        }
        cJSON_AddNumberToObject(e, "prototype", j);
        cJSON_AddNumberToObject(e, "class", p->class_of[j]);
        cJSON_AddStringToObject(e, "class_name", class_name(m, p->class_of[j]));
        cJSON_AddNumberToObject(e, "weight", proto_weight(p, p->class_of[j], j));
        cJSON_AddItemToObject(e, "mean_similarity", three(mean));
        cJSON_AddItemToObject(e, "top_rate", three(rate));
        if (rec && rec->entries[j].label >= 0) {
            const hfc_push_entry *en = &rec->entries[j];
            cJSON *src = cJSON_AddObjectToObject(e, "source");
            cJSON_AddNumberToObject(src, "image", (double)en->image);
            cJSON_AddItemToObject(src, "position", int_pair(en->row, en->col));
            cJSON_AddItemToObject(src, "box", cJSON_CreateIntArray(en->box, 4));
        }
        cJSON_AddItemToArray(per, e);
    }
    cJSON *ex = cJSON_AddArrayToObject(o, "explained");
    for (int s = 0; s < r->n_explain; s++) {
        const hfc_proto_image *img = &r->explained[s];
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "index", (double)img->index);
        cJSON_AddNumberToObject(e, "label", img->label);
        cJSON_AddStringToObject(e, "label_name", class_name(m, img->label));
        cJSON *vs = cJSON_AddObjectToObject(e, "versions");
        for (int v = 0; v < HFC_VERSIONS; v++)
            cJSON_AddItemToObject(vs, VERSION_NAMES[v], explained_version(img, v, spec->top, p, m));
        cJSON_AddItemToArray(ex, e);
    }
    const size_t none[HFC_VERSIONS] = {0, 0, 0};
    add_run_fields(o, m, ds, NULL, none, 0, 0, seconds);
    return print_and_free(o, pretty);
}

char *hfc_report_push_json(const hfc_push_record *rec, const hfc_model *m, const hfc_dataset *ds,
                           double seconds, int pretty)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddStringToObject(o, "experiment", "push");
    cJSON_AddNumberToObject(o, "images", (double)rec->images);
    cJSON_AddNumberToObject(o, "channels", rec->channels);
    cJSON *ps = cJSON_AddArrayToObject(o, "prototypes");
    for (int j = 0; j < rec->count; j++) {
        const hfc_push_entry *en = &rec->entries[j];
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "prototype", j);
        cJSON_AddNumberToObject(e, "class", en->class_id);
        if (en->label >= 0) {
            const size_t bytes = (size_t)rec->channels * (en->box[2] - en->box[0]) * (en->box[3] - en->box[1]);
            char *b64 = malloc(hfc_base64_size(bytes));
            cJSON_AddNumberToObject(e, "image", (double)en->image);
            cJSON_AddNumberToObject(e, "label", en->label);
            cJSON_AddItemToObject(e, "position", int_pair(en->row, en->col));
            cJSON_AddNumberToObject(e, "distance", en->distance);
            cJSON_AddItemToObject(e, "box", cJSON_CreateIntArray(en->box, 4));
            if (!b64) {
                cJSON_Delete(o);
                return NULL;
            }
            hfc_base64_encode(en->patch, bytes, b64);
            cJSON_AddStringToObject(e, "patch", b64);
            free(b64);
        } else {
            cJSON_AddNullToObject(e, "image");  /* no image of its class */
        }
        cJSON_AddItemToArray(ps, e);
    }
    const size_t none[HFC_VERSIONS] = {0, 0, 0};
    add_run_fields(o, m, ds, NULL, none, 0, 0, seconds);
    return print_and_free(o, pretty);
}
